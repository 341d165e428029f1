//! The `sharpness` kind: how sharp the minimum a trained model sits in is, by three measures
//! side by side (the course's sharpness against batch size).
//!
//! ```yaml
//! sharpness_batch64:
//!   kind: sharpness
//!   inputs: {model: train_batch64, data: mnist}
//!   params: {epsilon: 0.0001, samples: 1000, ascent_steps: 20, eval_size: 1000}
//! ```
//!
//! Everything is measured on one fixed subset, the first `eval_size` training examples, in
//! evaluation mode, with L the mean loss at the trained weights θ. Perturbations δ stay in the
//! box |δᵢ| ≤ ε·(|θᵢ| + 1) of Keskar et al. (2017), over all trainable parameters (batch-norm
//! running statistics are not parameters and stay put).
//!
//! - `keskar`: Keskar et al.'s measure, (max L(θ + δ) − L) / (1 + L) × 100, a percentage. The
//!   max is sought by projected gradient ascent from θ: `ascent_steps` steps, each moving every
//!   parameter by 2.5 / `ascent_steps` of its box half-width (at most the whole width) in the
//!   direction of the gradient's sign and clipping back into the box, keeping the largest
//!   loss seen, θ's included.
//! - `random`: the course's version, the largest loss at `samples` points θ + δ with δ drawn
//!   uniformly from the box, minus L: a raw loss difference, not a percentage. Random
//!   directions rarely point the sharp way, so it underestimates what `keskar` finds.
//! - `hessian_max_eigenvalue`: the largest eigenvalue of the Hessian of L with respect to the
//!   parameters, by `power_iterations` steps of power iteration on Hessian-vector products
//!   (double backward), reported as the last Rayleigh quotient. Power iteration finds the
//!   eigenvalue of largest magnitude; when that one is negative, a second run on the Hessian
//!   shifted by it finds the largest.
//!
//! Both maxima include θ itself, so `keskar` and `random` are never negative, and with ε = 0
//! they are exactly 0. Random draws come from the stage's seed.
//!
//! Output: `sharpness.parquet`, one row: `loss`, `accuracy` (at θ on the subset; empty for
//! regression), `epsilon`, `samples`, `keskar`, `random`, `hessian_max_eigenvalue`,
//! `eval_size` (the examples actually used: fewer when the training split is smaller).
//!
//! This is the declaration; the measures are computed in the `pipeline-stages` crate.

use pipeline_engine::stage::{InputSlot, ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

/// The `sharpness` stage kind.
pub struct Sharpness;

/// Parameters of `sharpness`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharpnessParams {
    /// The box's relative half-width ε.
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// Random points drawn for `random`.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Projected gradient-ascent steps for `keskar`.
    #[serde(default = "default_ascent_steps")]
    pub ascent_steps: usize,
    /// The subset: the first this many training examples.
    #[serde(default = "default_eval_size")]
    pub eval_size: usize,
    /// Power-iteration steps for `hessian_max_eigenvalue`.
    #[serde(default = "default_power_iterations")]
    pub power_iterations: usize,
    /// Examples per batch when evaluating the subset (affects speed and memory only).
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
}

fn default_epsilon() -> f64 {
    1e-4
}

fn default_samples() -> usize {
    1000
}

fn default_ascent_steps() -> usize {
    20
}

fn default_eval_size() -> usize {
    1000
}

fn default_power_iterations() -> usize {
    20
}

fn default_eval_batch_size() -> usize {
    1000
}

impl TypedStage for Sharpness {
    type Params = SharpnessParams;
    const NAME: &'static str = "sharpness";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "sharpness of a trained model's minimum: Keskar's, random sampling, Hessian eigenvalue";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::one("model", "a trained model (train)"),
            InputSlot::one("data", "a data set (functions, images)"),
        ];
        SLOTS
    }

    fn check(&self, p: &SharpnessParams) -> Result<(), ParamIssue> {
        if !p.epsilon.is_finite() || p.epsilon < 0.0 {
            return Err(ParamIssue::at(
                "epsilon",
                "must be a finite number, 0 or above",
            ));
        }
        for (key, value) in [
            ("samples", p.samples),
            ("ascent_steps", p.ascent_steps),
            ("eval_size", p.eval_size),
            ("power_iterations", p.power_iterations),
            ("eval_batch_size", p.eval_batch_size),
        ] {
            if value == 0 {
                return Err(ParamIssue::at(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}
