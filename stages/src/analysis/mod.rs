//! The machinery of the analysis kinds, which study trained models rather than train them:
//! `interpolate` (the loss along the line between two models), `sensitivity` (how strongly
//! the loss and outputs react to the inputs), `sharpness` (how sharp the minimum is), and the
//! landscape analyses: `pca` (training paths in weight space), `critical_point` (descending
//! on the gradient norm; the Hessian's exact spectrum), `parameter_curves` and `loss_surface`
//! (the loss along single parameters and on a random plane).
//!
//! They share one way of working: the model's parameters are one flat vector (the layers are
//! views into it, see [`crate::model::network`]), so a point on a line, a perturbation or a
//! gradient-ascent step is a few element-wise operations on that vector, never a rebuilt
//! model; everything is evaluated in evaluation mode; per-point results stay on the device
//! until the end and are read back once, then checked for non-finite values, which fail the
//! stage naming the point instead of reaching a table.

pub(crate) mod ascent;
pub(crate) mod critical;
pub(crate) mod directions;
pub(crate) mod flat_loss;
pub(crate) mod host;
pub(crate) mod input_grad;
pub(crate) mod minimal_ratio;
pub(crate) mod pca;
pub(crate) mod power;
pub(crate) mod progress;
pub(crate) mod random_box;
pub(crate) mod second_order;
pub(crate) mod subject;

#[cfg(test)]
mod timing;
