//! The `interpolate` kind: the loss and accuracy along the straight line through two trained
//! models' weights, the flatness experiment of Goodfellow et al. (2015) and Keskar et al.
//! (2017) as the course runs it (a model trained with batch 64 against one trained with batch
//! 1024, or with two learning rates).
//!
//! ```yaml
//! interpolate_batch:
//!   kind: interpolate
//!   inputs: {a: train_batch64, b: train_batch1024, data: mnist}
//!   params: {alpha_min: -1.0, alpha_max: 2.0, points: 31}
//! ```
//!
//! Every α of the grid gives the weights θ(α) = (1 − α)·θa + α·θb (batch-norm running
//! statistics are interpolated the same way), evaluated on the whole training and test
//! splits of `data` in evaluation mode, without gradients. The grid is [`grid`]: `points`
//! evenly spaced values from `alpha_min` to `alpha_max`, always holding 0 and 1 exactly, so
//! that its ends reproduce the two models' own losses. Both models must come from `train`
//! stages of the same architecture and fit `data`.
//!
//! `a_epoch` and `b_epoch` take a model's weights from one of its checkpoints instead of its
//! final weights (`checkpoints/epoch-NNNN.safetensors`, written by `train` with
//! `checkpoint_every`); one training run bound to both inputs with `a_epoch: 0` gives the line
//! from its initial to its final weights (Goodfellow et al.'s first experiment):
//!
//! ```yaml
//! init_to_final:
//!   kind: interpolate
//!   inputs: {a: train_deep, b: train_deep, data: sinc}
//!   params: {a_epoch: 0, alpha_min: -0.5, alpha_max: 1.5, points: 41}
//! ```
//!
//! Output: `interpolation.parquet`, long format, one row per α and split: `alpha`, `split`
//! (`train`, `test`), `loss`, `accuracy` (empty for regression).
//!
//! This is the declaration; the evaluation runs in the `pipeline-stages` crate.

use pipeline_engine::stage::{InputSlot, ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

/// The `interpolate` stage kind.
pub struct Interpolate;

/// The most grid points one stage evaluates.
const MAX_POINTS: usize = 100_000;

/// Parameters of `interpolate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterpolateParams {
    /// The first α of the grid (0 is model `a`).
    #[serde(default = "default_alpha_min")]
    pub alpha_min: f64,
    /// The last α of the grid (1 is model `b`).
    #[serde(default = "default_alpha_max")]
    pub alpha_max: f64,
    /// Evenly spaced grid points (0 and 1 are added if the spacing misses them).
    #[serde(default = "default_points")]
    pub points: usize,
    /// Examples per evaluation batch (affects speed and memory only).
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
    /// Model `a`'s checkpoint of this epoch instead of its final weights (left out of the
    /// canonical parameters when absent, so that existing stages kept their cache keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a_epoch: Option<usize>,
    /// Model `b`'s checkpoint of this epoch instead of its final weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b_epoch: Option<usize>,
}

fn default_alpha_min() -> f64 {
    -1.0
}

fn default_alpha_max() -> f64 {
    2.0
}

fn default_points() -> usize {
    31
}

fn default_eval_batch_size() -> usize {
    1000
}

impl InterpolateParams {
    /// The α values to evaluate, ascending; see [`grid`].
    pub fn grid(&self) -> Vec<f64> {
        grid(self.alpha_min, self.alpha_max, self.points)
    }
}

/// `points` evenly spaced values from `min` to `max` (both included), with 0 and 1 always
/// present exactly: a value within a millionth of the spacing (at most 0.25) of 0 or 1, off
/// by rounding, is set to it, and 0 or 1 is inserted where no value is that close. The result
/// is ascending without repeats, so it may hold one or two values more than `points`.
/// `points` below 2 gives `min` alone before 0 and 1 are added.
pub fn grid(min: f64, max: f64, points: usize) -> Vec<f64> {
    let last = points.saturating_sub(1).max(1) as f64;
    let step = (max - min) / last;
    let mut values: Vec<f64> = (0..points.max(1))
        .map(|i| min + (max - min) * i as f64 / last)
        .collect();
    // Less than half the spacing and than half the distance between 0 and 1, so that no
    // value is taken for both and no two values for one.
    let tolerance = (step.abs() * 1e-6).min(0.25);
    for anchor in [0.0, 1.0] {
        match values
            .iter_mut()
            .find(|v| (**v - anchor).abs() <= tolerance)
        {
            Some(v) => *v = anchor,
            None => values.push(anchor),
        }
    }
    values.sort_by(f64::total_cmp);
    values.dedup();
    values
}

impl TypedStage for Interpolate {
    type Params = InterpolateParams;
    const NAME: &'static str = "interpolate";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "loss and accuracy along the line between two trained models' weights";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::one("a", "a trained model (train), at alpha = 0"),
            InputSlot::one(
                "b",
                "a trained model of the same architecture, at alpha = 1",
            ),
            InputSlot::one("data", "the data set to evaluate on (functions, images)"),
        ];
        SLOTS
    }

    fn check(&self, p: &InterpolateParams) -> Result<(), ParamIssue> {
        for (key, value) in [("alpha_min", p.alpha_min), ("alpha_max", p.alpha_max)] {
            if !value.is_finite() {
                return Err(ParamIssue::at(key, "must be a finite number"));
            }
        }
        if p.alpha_min >= p.alpha_max {
            return Err(ParamIssue::at("alpha_max", "must be above alpha_min"));
        }
        if !(2..=MAX_POINTS).contains(&p.points) {
            return Err(ParamIssue::at(
                "points",
                format!("must be from 2 to {MAX_POINTS}"),
            ));
        }
        if p.eval_batch_size == 0 {
            return Err(ParamIssue::at("eval_batch_size", "must be at least 1"));
        }
        let grid = p.grid();
        if !grid.contains(&0.0) || !grid.contains(&1.0) {
            return Err(ParamIssue::at(
                "points",
                "the grid misses alpha = 0 or 1 (a bug in `pipeline`)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_grid_steps_by_a_tenth_through_both_models() {
        let g = grid(-1.0, 2.0, 31);
        assert_eq!(g.len(), 31);
        assert_eq!((g[0], g[10], g[20], g[30]), (-1.0, 0.0, 1.0, 2.0));
        assert!(g.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn zero_and_one_are_exact_or_inserted() {
        // Steps of a tenth from -0.3: rounding may miss 0 or 1 by an ulp; both come out exact.
        let g = grid(-0.3, 1.2, 16);
        assert_eq!(g.len(), 16);
        assert!(g.contains(&0.0) && g.contains(&1.0), "{g:?}");
        let g = grid(-1.0, 2.0, 4);
        assert_eq!(g, [-1.0, 0.0, 1.0, 2.0]);
        let g = grid(-0.5, 1.5, 3);
        assert_eq!(g, [-0.5, 0.0, 0.5, 1.0, 1.5]);
        let g = grid(2.0, 3.0, 2);
        assert_eq!(g, [0.0, 1.0, 2.0, 3.0]);
        let g = grid(0.0, 1e38, 2);
        assert_eq!(g, [0.0, 1.0, 1e38]);
    }

    #[test]
    fn checks_name_the_key() {
        let p = |min: f64, max: f64, points: usize| InterpolateParams {
            alpha_min: min,
            alpha_max: max,
            points,
            eval_batch_size: 1000,
            a_epoch: None,
            b_epoch: None,
        };
        let key = |p: InterpolateParams| Interpolate.check(&p).err().map(|e| e.path.join("."));
        assert_eq!(key(p(-1.0, 2.0, 31)), None);
        assert_eq!(key(p(1.0, 1.0, 31)).as_deref(), Some("alpha_max"));
        assert_eq!(key(p(f64::NAN, 1.0, 31)).as_deref(), Some("alpha_min"));
        assert_eq!(key(p(0.0, 1.0, 1)).as_deref(), Some("points"));
    }
}
