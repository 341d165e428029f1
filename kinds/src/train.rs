//! The `train` kind: fits a model to a data set and records how training went.
//!
//! ```yaml
//! train_deep:
//!   kind: train
//!   inputs: {data: sinc}
//!   params:
//!     model: {mlp: {hidden: [5, 10, 10, 10, 10, 10, 5]}}
//!     optimizer: {adam: {lr: 0.001}}
//!     batch_size: 128
//!     epochs: 200
//!     eval_every: 5
//!     checkpoint_every: 50
//! ```
//!
//! Outputs: `metrics.parquet` (one row per evaluated epoch and split: `epoch`, `step`,
//! `split`, `loss`, `accuracy`, then the run's settings as constant columns `batch_size`, `lr`,
//! `optimizer`, `epochs`, `parameters`, `seed`), `model.safetensors` and `model.json` (the final
//! model), and `checkpoints/epoch-NNNN.safetensors` when `checkpoint_every` is above 0 (epoch 0
//! is the initial weights).
//!
//! With `log_steps: true`, also `steps.parquet`: one row per optimizer step, `step` (from 1),
//! `epoch`, `loss` (the step's mini-batch loss), `grad_norm` (the norm of the mini-batch
//! gradient over all parameters, the square root of the sum of squares over every parameter
//! tensor, taken before the optimizer's update and before weight decay is added to it) and
//! `scope` (`mini_batch`: these are figures of one batch, not of the whole training split).
//! Both come from the backward pass the step makes anyway, and the loop reads them from the
//! device once per epoch. `log_steps` is left out of the canonical parameters while it is
//! false, so existing stages kept their cache keys and their `metrics.parquet` bytes.
//!
//! This is the declaration; the training itself runs in the `pipeline-stages` crate.

use pipeline_engine::stage::{InputSlot, ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

use crate::model::spec::ModelSpec;
use crate::optim::OptimizerSpec;

/// The `train` stage kind.
pub struct Train;

/// Parameters of `train`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// The model (`{mlp: {...}}` or `{layers: [...]}`).
    pub model: ModelSpec,
    /// The optimizer (default `{adam: {lr: 0.001}}`).
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    /// `auto` (from the data set's task), `mse` or `cross_entropy`.
    #[serde(default)]
    pub loss: LossSpec,
    /// Examples per training step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Passes over the training split.
    pub epochs: usize,
    /// Evaluate both splits every this many epochs (also before training and at the end).
    #[serde(default = "one")]
    pub eval_every: usize,
    /// Evaluate the initial weights (epoch 0) too; a sweep that only needs final metrics
    /// saves a pass over both splits per run by turning it off.
    #[serde(default = "yes")]
    pub eval_initial: bool,
    /// Examples per evaluation batch (affects speed and memory only).
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
    /// Save weights every this many epochs into `checkpoints/`; 0 = never.
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Write every step's mini-batch loss and gradient norm to `steps.parquet`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub log_steps: bool,
    /// What a loss that becomes NaN or infinite does: `fail` the stage (naming the epoch and
    /// step), or `stop` the run there and record it (`diverged.json`, the evaluations before
    /// it, no model). Left out of the canonical parameters while `fail`.
    #[serde(default, skip_serializing_if = "OnNonFinite::is_fail")]
    pub on_nan: OnNonFinite,
}

/// What a non-finite training loss does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNonFinite {
    /// The stage fails, naming the epoch and step.
    #[default]
    Fail,
    /// Training stops there; the stage succeeds and records where it diverged.
    Stop,
}

impl OnNonFinite {
    fn is_fail(&self) -> bool {
        *self == OnNonFinite::Fail
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The training loss as written in a pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossSpec {
    /// MSE for regression data sets, cross-entropy for classification ones.
    #[default]
    Auto,
    /// Mean squared error.
    Mse,
    /// Softmax cross-entropy on logits.
    CrossEntropy,
}

fn default_batch_size() -> usize {
    64
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

fn default_eval_batch_size() -> usize {
    1000
}

impl TypedStage for Train {
    type Params = TrainParams;
    const NAME: &'static str = "train";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str = "trains a model on a data set; writes metrics and checkpoints";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::one("data", "a data set (functions, images)")];
        SLOTS
    }

    fn check(&self, p: &TrainParams) -> Result<(), ParamIssue> {
        p.model.check("model")?;
        p.optimizer.check("optimizer")?;
        for (key, value) in [
            ("batch_size", p.batch_size),
            ("epochs", p.epochs),
            ("eval_every", p.eval_every),
            ("eval_batch_size", p.eval_batch_size),
        ] {
            if value == 0 {
                return Err(ParamIssue::at(key, "must be at least 1"));
            }
        }
        Ok(())
    }

    /// Runs of a fully connected model (dense layers, activations, flatten) that differ only in
    /// their seeds train together as one batched computation: stacked weights, batched matrix
    /// products, one element-wise optimizer over all of them, each run with its own
    /// initialisation and data order. Dropout and batch normalization draw from or update
    /// state shared by a batch, and step logs record per-run gradient norms, so those runs
    /// train alone.
    fn batchable(&self, p: &TrainParams) -> bool {
        !p.log_steps && p.model.is_dense_only()
    }

    /// Fully connected models are the course's tiny ones (hundreds to thousands of
    /// parameters), whose steps are too small to split across threads; convolutional ones
    /// gain (the bench's CNN epoch: 1.6x with a second thread).
    fn scales_with_threads(&self, p: &TrainParams) -> bool {
        !p.model.is_dense_only()
    }
}
