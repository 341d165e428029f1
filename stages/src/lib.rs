//! The stage kinds of `pipeline` that need libtorch, and the small machine-learning library
//! behind them.
//!
//! Data stages (`functions`, `images`) turn synthetic functions or image files into one on-disk
//! data set format (`data::dataset`); the `train` stage fits a model described in YAML
//! (`model::spec`) and writes metrics, checkpoints and the final weights; `predict` evaluates a
//! trained model on a data set. Models are functional over an ordered list of parameter tensors
//! rather than tied to tch's `VarStore`, because later analyses evaluate interpolated and
//! perturbed weights, take gradients with respect to inputs and train many models stacked into
//! one computation.
//!
//! Every kind is registered with [`register`]; the binary calls it once.

pub(crate) mod data;
pub(crate) mod device;
pub(crate) mod error;
pub(crate) mod json_file;
pub mod kinds;
pub(crate) mod model;
pub mod plot;
pub(crate) mod rng;
pub(crate) mod table;
pub(crate) mod tensor_file;
pub(crate) mod train;

#[cfg(test)]
pub(crate) mod testing;

use pipeline_engine::stage::{Registry, typed};

/// Registers every stage kind of this crate.
pub fn register(registry: &mut Registry) {
    registry
        .register(typed(kinds::functions::Functions))
        .register(typed(kinds::images::Images))
        .register(typed(kinds::train::Train))
        .register(typed(kinds::predict::Predict))
        .register(typed(plot::LinePlot));
}
