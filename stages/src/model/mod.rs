//! Models described in YAML, built as functional networks over ordered lists of tensors.
//!
//! [`spec`] is what users write; [`plan`] checks it against a data set's input shape and
//! resolves it into operations and named tensor shapes; [`network`] initialises the tensors
//! and runs the forward pass over any list of tensors of those shapes; [`checkpoint`] saves
//! and restores them with a JSON description that rebuilds the network without the pipeline.

pub(crate) mod checkpoint;
pub(crate) mod network;
pub(crate) mod plan;
pub(crate) mod spec;
