//! The `critical_point` kind: from a trained model, descend on the squared gradient norm to a
//! point where the gradient vanishes, then ask what kind of critical point it is (the course's
//! "what happens when the gradient is almost zero": minimal ratio against loss).
//!
//! ```yaml
//! critical:
//!   kind: critical_point
//!   inputs: {model: fit, data: sinc}
//!   params:
//!     optimizer: {adam: {lr: 0.0001}}
//!     max_steps: 1000
//!     threshold: 0.0001
//!     radius: 0.001
//!     samples: 1000
//!     tau: 0.0001
//! ```
//!
//! Everything is full-batch, on the first `train_limit` training examples (all by default),
//! in evaluation mode and in `f64`, so that it is deterministic and exact enough for tiny
//! gradients. The model must be a regression model (trained with MSE), and smooth: a ReLU's
//! kinks make the Hessian a sum of steps, so use `tanh`, `selu` or `softplus`.
//!
//! 1. **Gradient-norm phase.** The objective becomes f(θ) = ½‖∇L(θ)‖², whose gradient is
//!    H(θ)·∇L(θ) (H the Hessian of the loss), obtained by a second backward pass through the
//!    first (double backpropagation); `optimizer` minimizes it from the trained weights for at
//!    most `max_steps` steps, stopping as soon as ‖∇L‖ < `threshold`. The point kept is the
//!    iterate with the smallest gradient norm seen (the last one when the threshold is
//!    reached). A norm that stalls above the threshold is not a critical point, and
//!    `reached` says so. First-order steps on f shrink the gradient fast along the Hessian's
//!    stiff directions and very slowly along its flat ones (f's curvature there is λ²): on
//!    mini-batch-trained sinc fits the norm drops 10 to 100 times within a few hundred steps,
//!    then creeps.
//! 2. **Minimal ratio by sampling**: the fraction of `samples` random perturbations θ + δ, δ
//!    uniformly distributed in direction with ‖δ‖ = `radius`, at which the loss is above the
//!    loss at θ.
//! 3. **Minimal ratio from the Hessian**: the exact Hessian of the full-batch loss over all
//!    parameters, built row by row by double backward, symmetrized ((H + Hᵀ)/2), and its
//!    eigenvalues λ; with m = max|λ|, eigenvalues above τ·m count as positive, below −τ·m as
//!    negative, the rest as near zero, and the ratio is the fraction of positive ones (on the
//!    course's sinc fits the spectrum is clearly positive down to about 10⁻⁴·m and an even
//!    mix of tiny positive and negative values below, hence τ's default of 10⁻⁴). Models
//!    of more than 4,096 parameters are refused (the Hessian alone would hold 16.8 million
//!    values and take as many backward passes).
//!
//! Outputs:
//! - `critical_point.parquet`, long format, two rows, `definition` = `sampled` and `hessian`
//!   with `minimal_ratio`, then constant columns: `loss` and `grad_norm` (at the point kept),
//!   `reached`, `steps` (optimizer steps taken), `threshold`, `initial_loss`,
//!   `initial_grad_norm` (at the trained weights), `radius`, `samples`, `tau`, `positive`,
//!   `near_zero`, `negative`, `max_abs_eigenvalue`, `parameters`, `examples`.
//! - `trace.parquet`: one row per gradient evaluation of phase 1 (step 0 is the trained
//!   weights): `step`, `loss`, `grad_norm`, `scope` (`full_batch`).
//! - `eigenvalues.parquet`: `index` (from 0, ascending order) and `eigenvalue`.
//! - `model.safetensors` and `model.json`: the point kept, loadable like a `train` stage's
//!   model by the other analyses.
//!
//! This is the declaration; the computation runs in the `pipeline-stages` crate.

use pipeline_engine::stage::{InputSlot, ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

use crate::optim::OptimizerSpec;

/// The `critical_point` stage kind.
pub struct CriticalPoint;

/// The largest model whose exact Hessian is computed.
pub const MAX_HESSIAN_PARAMETERS: usize = 4096;

/// Parameters of `critical_point`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriticalPointParams {
    /// The optimizer of the gradient-norm phase.
    #[serde(default = "default_optimizer")]
    pub optimizer: OptimizerSpec,
    /// The most steps of the gradient-norm phase.
    #[serde(default = "default_max_steps")]
    pub max_steps: usize,
    /// Stop once the gradient norm is below this.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// The length of the random perturbations of the sampled minimal ratio.
    #[serde(default = "default_radius")]
    pub radius: f64,
    /// The number of random perturbations.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Eigenvalues within τ·max|λ| of zero count as zero.
    #[serde(default = "default_tau")]
    pub tau: f64,
    /// Use only the first this many training examples; `null` means all.
    #[serde(default)]
    pub train_limit: Option<usize>,
}

fn default_optimizer() -> OptimizerSpec {
    OptimizerSpec::adam(1e-4)
}

fn default_max_steps() -> usize {
    1000
}

fn default_threshold() -> f64 {
    1e-4
}

fn default_radius() -> f64 {
    1e-3
}

fn default_samples() -> usize {
    1000
}

fn default_tau() -> f64 {
    1e-4
}

impl TypedStage for CriticalPoint {
    type Params = CriticalPointParams;
    const NAME: &'static str = "critical_point";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "descends on the gradient norm to a critical point; its minimal ratio two ways";
    const EXAMPLE: &'static str = "critical:
  kind: critical_point
  inputs: {model: fit, data: sinc}
  params:
    optimizer: {adam: {lr: 0.0001}}
    max_steps: 1000
    threshold: 0.0001
    radius: 0.001
    samples: 1000
    tau: 0.0001
";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::one("model", "a regression model trained with MSE (train)"),
            InputSlot::one("data", "its data set (functions)"),
        ];
        SLOTS
    }

    fn check(&self, p: &CriticalPointParams) -> Result<(), ParamIssue> {
        p.optimizer.check("optimizer")?;
        for (key, value) in [("threshold", p.threshold), ("radius", p.radius)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ParamIssue::at(key, "must be a finite number above 0"));
            }
        }
        if !(p.tau.is_finite() && (0.0..1.0).contains(&p.tau)) {
            return Err(ParamIssue::at(
                "tau",
                "must be from 0 up to (not including) 1",
            ));
        }
        if p.samples == 0 {
            return Err(ParamIssue::at("samples", "must be at least 1"));
        }
        if p.train_limit == Some(0) {
            return Err(ParamIssue::at(
                "train_limit",
                "must be at least 1 (or null for all)",
            ));
        }
        Ok(())
    }
}
