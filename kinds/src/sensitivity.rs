//! The `sensitivity` kind: how strongly a trained model's loss and outputs react to its
//! inputs, one of the course's measures of generalization (sensitivity against batch size).
//!
//! ```yaml
//! sensitivity_batch64:
//!   kind: sensitivity
//!   inputs: {model: train_batch64, data: mnist}
//!   params: {eval_batch_size: 1000, train_limit: 10000}
//! ```
//!
//! For each split, in evaluation mode (no dropout, batch-norm running statistics), averaged
//! over the examples:
//!
//! - `grad_norm`, the course's definition: the Frobenius norm of the gradient of the loss
//!   with respect to the input, per example. It is taken from the loss summed over the batch,
//!   whose gradient with respect to one example's input is that example's own loss gradient
//!   (examples are independent in evaluation mode); a batch mean would divide every gradient
//!   by the batch size and make the figure an artifact of it.
//! - `jacobian_norm`, Novak et al.'s (2018): the Frobenius norm of the Jacobian of the softmax
//!   output with respect to the input, per example. For a regression model (one output, no
//!   softmax) it is the norm of the output's own gradient, and `accuracy` is empty.
//!
//! Inputs are what the model sees, after the normalization recorded with it. `train_limit`
//! keeps the first N training examples (for cost); the test split is always whole.
//!
//! Output: `sensitivity.parquet`, one row per split: `split` (`train`, `test`), `examples`,
//! `loss`, `accuracy`, `grad_norm`, `jacobian_norm`.
//!
//! This is the declaration; the gradients are taken in the `pipeline-stages` crate.

use pipeline_engine::stage::{InputSlot, ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

/// The `sensitivity` stage kind.
pub struct Sensitivity;

/// Parameters of `sensitivity`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitivityParams {
    /// Examples per evaluation batch (affects speed and memory only).
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
    /// Use only the first this many training examples; `null` means all.
    #[serde(default)]
    pub train_limit: Option<usize>,
}

fn default_eval_batch_size() -> usize {
    1000
}

impl TypedStage for Sensitivity {
    type Params = SensitivityParams;
    const NAME: &'static str = "sensitivity";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "input-gradient and softmax-Jacobian norms of a trained model, per split";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::one("model", "a trained model (train)"),
            InputSlot::one("data", "a data set (functions, images)"),
        ];
        SLOTS
    }

    fn check(&self, p: &SensitivityParams) -> Result<(), ParamIssue> {
        if p.eval_batch_size == 0 {
            return Err(ParamIssue::at("eval_batch_size", "must be at least 1"));
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
