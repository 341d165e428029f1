//! Per-example sensitivity of a model to its inputs: the norm of the loss's input gradient
//! and the Frobenius norm of the softmax output's input Jacobian.
//!
//! In evaluation mode every example's outputs depend on its own input only, so one backward
//! pass of a sum over the batch yields every example's own gradient at once: the summed loss
//! gives each example's loss gradient (a batch mean would scale them all by 1 / batch), and
//! the sum of output `c` over the batch gives row `c` of every example's Jacobian. A batch
//! therefore costs one forward pass and 1 + C backward passes with respect to the input only
//! (the parameters are views of a vector that does not require gradients, so no weight
//! gradient is ever computed). For a regression model the "softmax output" is the model's
//! own output.

use pipeline_engine::stage::StageError;
use tch::{Kind, Tensor};

use super::host::read_f64;
use super::progress::Ticker;
use crate::error::TchContext;
use crate::model::network::forward;
use crate::train::data::Split;
use crate::train::loss::Loss;

/// What an analysis needs of a model to differentiate with respect to its inputs.
pub(crate) struct InputModel<'a> {
    /// The model.
    pub(crate) plan: &'a pipeline_kinds::model::plan::Plan,
    /// Its parameters, not requiring gradients.
    pub(crate) params: &'a [Tensor],
    /// Its buffers.
    pub(crate) buffers: &'a [Tensor],
    /// The loss it was trained with.
    pub(crate) loss: Loss,
}

/// Per-example figures of one split, in example order.
pub(crate) struct PerExample {
    /// The loss.
    pub(crate) loss: Vec<f64>,
    /// 1 for a correct answer, 0 otherwise (always 0 for regression).
    pub(crate) correct: Vec<f64>,
    /// ‖∂loss/∂x‖ (Frobenius).
    pub(crate) grad_norm: Vec<f64>,
    /// ‖∂softmax/∂x‖ (Frobenius).
    pub(crate) jacobian_norm: Vec<f64>,
}

/// The per-example figures of `split`, in batches of `batch`.
pub(crate) fn per_example(
    model: &InputModel<'_>,
    split: &Split,
    batch: i64,
    ticker: &mut Ticker<'_>,
) -> Result<PerExample, StageError> {
    let mut parts: Vec<Tensor> = Vec::new();
    let mut start = 0;
    while start < split.len {
        let n = batch.min(split.len - start);
        let slice = |t: &Tensor| t.f_narrow(0, start, n).ctx("slicing a batch");
        parts.push(batch_figures(model, &slice(&split.x)?, &slice(&split.y)?)?);
        ticker.advance(n as u64, "sensitivity: examples")?;
        start += n;
    }
    let all = Tensor::f_cat(&parts, 1).ctx("joining batches")?;
    let values = read_f64(&all, "per-example sensitivities")?;
    let len = split.len as usize;
    let row = |i: usize| values[i * len..(i + 1) * len].to_vec();
    Ok(PerExample {
        loss: row(0),
        correct: row(1),
        grad_norm: row(2),
        jacobian_norm: row(3),
    })
}

/// `[4, B]`: loss, correct, gradient norm and Jacobian norm of each example of one batch.
fn batch_figures(model: &InputModel<'_>, x: &Tensor, y: &Tensor) -> Result<Tensor, StageError> {
    let x = x
        .f_detach()
        .and_then(|x| x.f_set_requires_grad(true))
        .ctx("preparing inputs for gradients")?;
    let (out, losses, grad_norm) = loss_gradient_norms(model, &x, y, true)?;
    let jacobian_norm = jacobian_norms(model.loss, &out, &x)?;
    let correct = match model.loss {
        Loss::CrossEntropy => out.f_argmax(1, false).and_then(|p| p.f_eq_tensor(y)),
        Loss::Mse => losses.f_zeros_like(),
    };
    let rows = [
        losses.f_detach(),
        correct.and_then(|c| c.f_to_kind(Kind::Float)),
        Ok(grad_norm),
        Ok(jacobian_norm),
    ];
    let rows = rows.into_iter().collect::<Result<Vec<_>, _>>();
    rows.and_then(|r| Tensor::f_stack(&r, 0))
        .ctx("collecting a batch's figures")
}

/// The model's outputs, each example's loss, and the norm of each example's loss gradient
/// with respect to its input (one forward and one backward pass; `x` requires gradients).
/// `keep` keeps the graph for more backward passes.
pub(crate) fn loss_gradient_norms(
    model: &InputModel<'_>,
    x: &Tensor,
    y: &Tensor,
    keep: bool,
) -> Result<(Tensor, Tensor, Tensor), StageError> {
    let out = forward(model.plan, model.params, model.buffers, x, false)?;
    let losses = model.loss.each(&out, y).ctx("computing the loss")?;
    let total = losses.f_sum(Kind::Float).ctx("summing the loss")?;
    let grad_norm = squared_norms(&input_gradient(&total, x, keep)?)?
        .f_sqrt()
        .ctx("taking norms")?;
    Ok((out, losses, grad_norm))
}

/// The Frobenius norm of each example's Jacobian of the softmax output (the raw output for
/// regression) with respect to its input: one backward pass per output.
fn jacobian_norms(loss: Loss, out: &Tensor, x: &Tensor) -> Result<Tensor, StageError> {
    let probs = match loss {
        Loss::CrossEntropy => out.f_softmax(1, Kind::Float).ctx("softmax")?,
        Loss::Mse => out.shallow_clone(),
    };
    let classes = probs.size().get(1).copied().unwrap_or(1);
    let mut squares = Tensor::f_zeros([x.size()[0]], (Kind::Float, x.device()))
        .ctx("allocating Jacobian norms")?;
    for c in 0..classes {
        let output = probs
            .f_select(1, c)
            .and_then(|p| p.f_sum(Kind::Float))
            .ctx("selecting an output")?;
        let row = input_gradient(&output, x, c + 1 < classes)?;
        squares = squares
            .f_add(&squared_norms(&row)?)
            .ctx("summing Jacobian rows")?;
    }
    squares.f_sqrt().ctx("taking norms")
}

/// The gradient of the scalar `y` with respect to the inputs `x`, keeping the graph for more
/// passes when `keep` is set. An output that does not depend on the inputs has a zero gradient.
fn input_gradient(y: &Tensor, x: &Tensor, keep: bool) -> Result<Tensor, StageError> {
    let mut grads =
        Tensor::f_run_backward(&[y], &[x], keep, false).ctx("backward pass to the inputs")?;
    match grads.pop().filter(Tensor::defined) {
        Some(g) => Ok(g),
        None => x.f_zeros_like().ctx("allocating a zero gradient"),
    }
}

/// The squared Frobenius norm of each example's slice of `g`, `[B]`.
fn squared_norms(g: &Tensor) -> Result<Tensor, StageError> {
    g.f_flatten(1, -1)
        .and_then(|g| g.f_square())
        .and_then(|g| g.f_sum_dim_intlist(1, false, Kind::Float))
        .ctx("taking norms")
}
