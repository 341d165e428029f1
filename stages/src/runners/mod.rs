//! The runners of the kinds that need libtorch, one file per kind; their declarations
//! (parameters, defaults, checks) are in the `pipeline-kinds` crate.
//!
//! Data kinds (`functions`, `images`) write a data set folder; `train` fits a model to one;
//! `predict` evaluates a trained model on one. Each file has one `run` function, registered
//! by [`crate::register_runners`].

pub(crate) mod functions;
pub(crate) mod images;
pub(crate) mod predict;
pub(crate) mod train;
