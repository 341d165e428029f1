//! Evaluating a model on a whole split: mean loss and accuracy, in evaluation mode (no
//! dropout, batch-norm running statistics), without gradients, in large batches.
//!
//! Sums are accumulated on the device and read back once per split, so evaluation costs one
//! host synchronisation however many batches it takes. Losses are summed in `f64` so that the
//! mean over tens of thousands of examples does not lose precision.

use pipeline_engine::stage::StageError;
use pipeline_kinds::model::plan::Plan;
use tch::{Kind, Tensor};

use super::data::Split;
use super::loss::Loss;
use crate::error::TchContext;
use crate::model::network::{Weights, forward};

/// The loss and accuracy of a model on one split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Score {
    /// The mean loss per example.
    pub(crate) loss: f64,
    /// The fraction of correctly classified examples (classification only).
    pub(crate) accuracy: Option<f64>,
}

/// Scores the model on `split` in batches of `batch` examples.
pub(crate) fn evaluate(
    plan: &Plan,
    weights: &Weights,
    loss: Loss,
    split: &Split,
    batch: i64,
) -> Result<Score, StageError> {
    let _guard = tch::no_grad_guard();
    let device = split.x.device();
    let zeros = |kind| Tensor::f_zeros([], (kind, device)).ctx("allocating evaluation sums");
    let (mut loss_sum, mut correct) = (zeros(Kind::Double)?, zeros(Kind::Int64)?);
    let mut start = 0;
    while start < split.len {
        let n = batch.min(split.len - start);
        let x = split
            .x
            .f_narrow(0, start, n)
            .ctx("slicing an evaluation batch")?;
        let y = split
            .y
            .f_narrow(0, start, n)
            .ctx("slicing an evaluation batch")?;
        let out = forward(plan, &weights.params, &weights.buffers, &x, false)?;
        let batch_loss = loss.sum(&out, &y).and_then(|l| l.f_to_kind(Kind::Double));
        loss_sum
            .f_add_(&batch_loss.ctx("evaluation loss")?)
            .ctx("summing losses")
            .map(drop)?;
        if loss == Loss::CrossEntropy {
            let hits = out.f_argmax(1, false).and_then(|p| p.f_eq_tensor(&y));
            let hits = hits
                .and_then(|h| h.f_sum(Kind::Int64))
                .ctx("counting correct answers")?;
            correct
                .f_add_(&hits)
                .ctx("counting correct answers")
                .map(drop)?;
        }
        start += n;
    }
    let total = split.len.max(1) as f64;
    let loss_sum = f64::try_from(&loss_sum).ctx("reading the evaluation loss")?;
    let accuracy = if loss == Loss::CrossEntropy {
        Some(i64::try_from(&correct).ctx("reading the accuracy")? as f64 / total)
    } else {
        None
    };
    Ok(Score {
        loss: loss_sum / total,
        accuracy,
    })
}

/// The model's outputs for every row of `x`, computed in batches of `batch`, in evaluation
/// mode and without gradients.
pub(crate) fn outputs(
    plan: &Plan,
    weights: &Weights,
    x: &Tensor,
    batch: i64,
) -> Result<Tensor, StageError> {
    let _guard = tch::no_grad_guard();
    let len = x.size().first().copied().unwrap_or(0);
    let mut parts = Vec::new();
    let mut start = 0;
    while start < len {
        let n = batch.min(len - start);
        let chunk = x.f_narrow(0, start, n).ctx("slicing a prediction batch")?;
        parts.push(forward(
            plan,
            &weights.params,
            &weights.buffers,
            &chunk,
            false,
        )?);
        start += n;
    }
    if parts.is_empty() {
        return Err(StageError::input("there are no examples to predict"));
    }
    Tensor::f_cat(&parts, 0).ctx("joining predictions")
}
