//! The `loss_surface` kind: the loss of a trained model on a plane through its weights,
//! spanned by two random directions normalized filter by filter (Li et al., 2018, "Visualizing
//! the loss landscape of neural nets").
//!
//! ```yaml
//! surface:
//!   kind: loss_surface
//!   inputs: {model: trajectory, data: images}
//!   params: {range: 1.0, points: 21, train_limit: 2000}
//! ```
//!
//! Two directions d₁, d₂ shaped like the parameters are drawn from a standard normal
//! distribution (libtorch's generator, seeded with the stage's seed). In every weight tensor
//! (rank 2 or more: a dense layer's rows are its neurons, a convolution's first dimension its
//! filters), each neuron's or filter's slice of a direction is rescaled to the norm of the
//! same slice of the trained weights θ, so that the plot's scale means the same for every
//! layer whatever its weights' size; biases and other one-dimensional tensors (batch-norm
//! scales and shifts) are left out (zero in both directions), as Li et al. do. The loss is
//! evaluated at θ + α·d₁ + β·d₂ for α and β each on `points` evenly spaced values from
//! −`range` to `range` (`points` odd, so that θ itself is the centre), as the mean over the
//! first `train_limit` training examples (all by default), in evaluation mode, without
//! gradients.
//!
//! Output: `surface.parquet`, one row per grid point, β-major: `alpha`, `beta`, `loss`,
//! `accuracy` (empty for regression). Draw it with `heatmap`.
//!
//! This is the declaration; the evaluation runs in the `pipeline-stages` crate.

use pipeline_engine::stage::{InputSlot, ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

/// The `loss_surface` stage kind.
pub struct LossSurface;

/// The most grid points along one axis.
const MAX_POINTS: usize = 1001;

/// Parameters of `loss_surface`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossSurfaceParams {
    /// α and β reach from −range to range.
    #[serde(default = "one")]
    pub range: f64,
    /// Grid values per axis (odd, so that the trained weights are the centre).
    #[serde(default = "default_points")]
    pub points: usize,
    /// Use only the first this many training examples; `null` means all.
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Examples per evaluation batch (affects speed and memory only).
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
}

fn one() -> f64 {
    1.0
}

fn default_points() -> usize {
    21
}

fn default_eval_batch_size() -> usize {
    1000
}

impl LossSurfaceParams {
    /// The grid values along one axis, ascending from −range to range, 0 exactly in the middle.
    pub fn axis(&self) -> Vec<f64> {
        crate::grid::symmetric(self.range, self.points)
    }
}

impl TypedStage for LossSurface {
    type Params = LossSurfaceParams;
    const NAME: &'static str = "loss_surface";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "the loss on a plane of two filter-normalized random directions (Li et al. 2018)";
    const EXAMPLE: &'static str = "surface:
  kind: loss_surface
  inputs: {model: trajectory, data: images}
  params: {range: 1.0, points: 21, train_limit: 2000}
";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::one("model", "a trained model (train)"),
            InputSlot::one("data", "a data set (functions, images)"),
        ];
        SLOTS
    }

    fn check(&self, p: &LossSurfaceParams) -> Result<(), ParamIssue> {
        if !(p.range.is_finite() && p.range > 0.0) {
            return Err(ParamIssue::at("range", "must be a finite number above 0"));
        }
        if !(3..=MAX_POINTS).contains(&p.points) || p.points.is_multiple_of(2) {
            return Err(ParamIssue::at(
                "points",
                format!("must be odd, from 3 to {MAX_POINTS}"),
            ));
        }
        for (key, value) in [
            ("train_limit", p.train_limit),
            ("eval_batch_size", Some(p.eval_batch_size)),
        ] {
            if value == Some(0) {
                return Err(ParamIssue::at(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}
