//! Evaluating a model on a whole split: mean loss and accuracy, in evaluation mode (no
//! dropout, batch-norm running statistics), without gradients, in large batches.
//!
//! Sums are accumulated on the device and read back once per split, so evaluation costs one
//! host synchronisation however many batches it takes; [`sums`] leaves them there for callers
//! that score many sets of weights and read everything back once. Losses are summed in `f64`
//! so that the mean over tens of thousands of examples does not lose precision.

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
    let sums = sums(plan, &weights.params, &weights.buffers, loss, split, batch)?;
    let sums = Vec::<f64>::try_from(&sums).ctx("reading the evaluation sums")?;
    Ok(Score::from_sums(&sums, loss, split.len))
}

impl Score {
    /// The score from `[loss sum, correct answers]` over `len` examples, as [`sums`] gives.
    pub(crate) fn from_sums(sums: &[f64], loss: Loss, len: i64) -> Self {
        let total = len.max(1) as f64;
        let at = |i: usize| sums.get(i).copied().unwrap_or(f64::NAN);
        Self {
            loss: at(0) / total,
            accuracy: (loss == Loss::CrossEntropy).then(|| at(1) / total),
        }
    }
}

/// The summed loss and the number of correct answers (0 for regression) on `split`, as a
/// `f64` tensor `[2]` left on the device, so that a caller scoring many weights reads them all
/// back at once. The model is given as parameter and buffer tensors, in evaluation mode.
pub(crate) fn sums(
    plan: &Plan,
    params: &[Tensor],
    buffers: &[Tensor],
    loss: Loss,
    split: &Split,
    batch: i64,
) -> Result<Tensor, StageError> {
    sums_with(loss, split, batch, |_, x| {
        forward(plan, params, buffers, x, false)
    })
}

/// [`sums`] with the model's outputs on each batch given by `outputs` (from the batch's
/// index and inputs), for callers that compute part of the forward pass their own way.
pub(crate) fn sums_with(
    loss: Loss,
    split: &Split,
    batch: i64,
    mut outputs: impl FnMut(usize, &Tensor) -> Result<Tensor, StageError>,
) -> Result<Tensor, StageError> {
    let _guard = tch::no_grad_guard();
    let device = split.x.device();
    let sums = Tensor::f_zeros([2], (Kind::Double, device)).ctx("allocating evaluation sums")?;
    let mut start = 0;
    let mut index = 0;
    while start < split.len {
        let n = batch.min(split.len - start);
        let slice = |t: &Tensor| t.f_narrow(0, start, n).ctx("slicing an evaluation batch");
        let (x, y) = (slice(&split.x)?, slice(&split.y)?);
        let out = outputs(index, &x)?;
        let batch_loss = loss.sum(&out, &y).ctx("evaluation loss")?;
        let hits = match loss {
            Loss::CrossEntropy => out.f_argmax(1, false).and_then(|p| p.f_eq_tensor(&y)),
            Loss::Mse => out.f_zeros_like(),
        };
        let batch_sums = hits
            .and_then(|h| h.f_sum(Kind::Double))
            .and_then(|h| Tensor::f_stack(&[batch_loss.f_to_kind(Kind::Double)?, h], 0))
            .ctx("counting correct answers")?;
        let _ = sums
            .shallow_clone()
            .f_add_(&batch_sums)
            .ctx("summing losses")?;
        start += n;
        index += 1;
    }
    Ok(sums)
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
