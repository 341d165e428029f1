//! Models as functional networks over ordered lists of tensors.
//!
//! The description users write and its resolution into operations and named tensor shapes
//! are pure and live in `pipeline_kinds::model` (`spec`, `plan`); here, [`network`]
//! initialises the tensors and runs the forward pass over any list of tensors of those
//! shapes, and [`checkpoint`] saves and restores them with a JSON description that rebuilds
//! the network without the pipeline; [`tape`] records a forward pass and differentiates it
//! with respect to the inputs by hand, and [`first_conv`] evaluates a first convolution on
//! fixed examples from their precomputed columns.

pub(crate) mod checkpoint;
pub(crate) mod first_conv;
pub(crate) mod network;
pub(crate) mod tape;
