//! Models described in YAML, and their resolution against a data set's shapes.
//!
//! [`spec`] is what users write; [`plan`] checks it against a data set's input shape and
//! resolves it into operations and named tensor shapes, with the parameter count. Both are
//! pure (no libtorch), so that a model's description is checked and its size known without
//! loading libtorch; the network that runs a plan lives in the `pipeline-stages` crate.

pub mod plan;
pub mod spec;
