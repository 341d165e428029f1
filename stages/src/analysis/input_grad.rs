//! Per-example sensitivity of a model to its inputs: the norm of the loss's input gradient
//! and the Frobenius norm of the softmax output's input Jacobian.
//!
//! In evaluation mode every example's outputs depend on its own input only, so one backward
//! pass of a sum over the batch yields every example's own gradient at once: the summed loss
//! gives each example's loss gradient (a batch mean would scale them all by 1 / batch), and
//! the sum of output `c` over the batch gives row `c` of every example's Jacobian. A batch
//! therefore costs one forward pass and 1 + C backward passes with respect to the input only.
//! For a regression model the "softmax output" is the model's own output.
//!
//! On the CPU the backward passes are taken by hand ([`Tape`]): one recorded forward pass,
//! then the output gradients in closed form (softmax − one-hot for the summed cross-entropy,
//! 2(out − y) for the summed squared error, p_c(e_c − p) for row `c` of the softmax's
//! Jacobian) carried back layer by layer, in slices of the batch small enough for the
//! saved activations to stay in the processor's caches. That is about 2.5 times faster than
//! autograd there (see [`crate::model::tape`] for where autograd loses the time). Elsewhere
//! autograd does it (the parameters are views of a vector that does not require gradients, so
//! no weight gradient is ever computed); the two agree up to float rounding.
use pipeline_engine::stage::StageError;
use tch::{Device, Kind, Tensor};

use super::host::read_f64;
use super::progress::Ticker;
use crate::error::TchContext;
use crate::model::network::forward;
use crate::model::tape::{Tape, widest};
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

/// The most values a slice of a batch may hold in its widest activation in the backward pass
/// by hand: 6 Mi `f32`s (24 MB), 500 examples of the bench's MNIST CNN, which it ran fastest
/// with (35-36k examples/s against 33k with slices of 250, 30-32k with 334 and 29-30k with
/// 1,000 in one).
const SLICE_VALUES: i64 = 6 << 20;

/// Per-example figures of one batch, each `[B]` but the outputs.
pub(crate) struct Figures {
    /// The model's outputs, `[B, C]`.
    pub(crate) out: Tensor,
    /// Each example's loss.
    pub(crate) losses: Tensor,
    /// ‖∂loss/∂x‖ of each example.
    pub(crate) grad_norm: Tensor,
    /// ‖∂softmax/∂x‖ of each example, when asked for.
    pub(crate) jacobian_norm: Option<Tensor>,
}

/// `[4, B]`: loss, correct, gradient norm and Jacobian norm of each example of one batch.
fn batch_figures(model: &InputModel<'_>, x: &Tensor, y: &Tensor) -> Result<Tensor, StageError> {
    let f = figures(model, x, y, true)?;
    let correct = match model.loss {
        Loss::CrossEntropy => f.out.f_argmax(1, false).and_then(|p| p.f_eq_tensor(y)),
        Loss::Mse => f.losses.f_zeros_like(),
    };
    let jacobian_norm = f
        .jacobian_norm
        .ok_or_else(|| StageError::bug("the Jacobian norms were asked for but not computed"))?;
    let rows = [
        Ok(f.losses),
        correct.and_then(|c| c.f_to_kind(Kind::Float)),
        Ok(f.grad_norm),
        Ok(jacobian_norm),
    ];
    let rows = rows.into_iter().collect::<Result<Vec<_>, _>>();
    rows.and_then(|r| Tensor::f_stack(&r, 0))
        .ctx("collecting a batch's figures")
}

/// The outputs, losses and input-gradient norms of the examples `x` with targets `y`, and
/// their softmax-Jacobian norms if `jacobian` is set: by hand on the CPU, by autograd on
/// other devices.
pub(crate) fn figures(
    model: &InputModel<'_>,
    x: &Tensor,
    y: &Tensor,
    jacobian: bool,
) -> Result<Figures, StageError> {
    if x.device() != Device::Cpu {
        return by_autograd(model, x, y, jacobian);
    }
    in_slices(model, x, y, jacobian, SLICE_VALUES)
}

/// [`figures`] by hand, in slices of the batch whose widest activation holds at most
/// `slice_values` values (at least one example each).
fn in_slices(
    model: &InputModel<'_>,
    x: &Tensor,
    y: &Tensor,
    jacobian: bool,
    slice_values: i64,
) -> Result<Figures, StageError> {
    let len = x.size().first().copied().unwrap_or(0);
    let example = x.size().get(1..).map(<[i64]>::to_vec).unwrap_or_default();
    let values = len * widest(model.plan, model.params, &example);
    let slices = ceil_div(values, slice_values).clamp(1, len.max(1));
    let slice_len = ceil_div(len, slices).max(1);
    let mut parts = Vec::new();
    let mut start = 0;
    while start < len || parts.is_empty() {
        let n = slice_len.min(len - start);
        let slice = |t: &Tensor| t.f_narrow(0, start, n).ctx("slicing a batch");
        parts.push(by_hand(model, &slice(x)?, &slice(y)?, jacobian)?);
        start += n;
    }
    join(parts)
}

/// ⌈a / b⌉ for non-negative `a` and positive `b`.
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// The figures of consecutive slices of a batch as the batch's.
fn join(parts: Vec<Figures>) -> Result<Figures, StageError> {
    if parts.len() == 1 {
        return parts
            .into_iter()
            .next()
            .ok_or_else(|| StageError::bug("no slices"));
    }
    let cat = |get: &dyn Fn(&Figures) -> Option<&Tensor>| -> Result<Option<Tensor>, StageError> {
        let all: Option<Vec<&Tensor>> = parts.iter().map(get).collect();
        all.map(|t| Tensor::f_cat(&t, 0).ctx("joining slices"))
            .transpose()
    };
    let required = |t: Option<Tensor>| t.ok_or_else(|| StageError::bug("a slice lacks a figure"));
    Ok(Figures {
        out: required(cat(&|f| Some(&f.out))?)?,
        losses: required(cat(&|f| Some(&f.losses))?)?,
        grad_norm: required(cat(&|f| Some(&f.grad_norm))?)?,
        jacobian_norm: cat(&|f| f.jacobian_norm.as_ref())?,
    })
}

/// [`figures`] of one slice by hand: one recorded forward pass, then 1 + C backward passes
/// through it.
fn by_hand(
    model: &InputModel<'_>,
    x: &Tensor,
    y: &Tensor,
    jacobian: bool,
) -> Result<Figures, StageError> {
    let tape = Tape::record(model.plan, model.params, model.buffers, x)?;
    let losses = model.loss.each(&tape.out, y).ctx("computing the loss")?;
    let grad = loss_output_gradient(model.loss, &tape.out, y)?;
    let grad_norm = norms(&tape.input_gradient(&grad)?)?;
    let jacobian_norm = if jacobian {
        Some(jacobian_norms_by_hand(model.loss, &tape)?)
    } else {
        None
    };
    Ok(Figures {
        out: tape.out,
        losses,
        grad_norm,
        jacobian_norm,
    })
}

/// The gradient of the summed loss with respect to the outputs: softmax − one-hot for
/// cross-entropy, 2(out − y) for the squared error.
fn loss_output_gradient(loss: Loss, out: &Tensor, y: &Tensor) -> Result<Tensor, StageError> {
    let _guard = tch::no_grad_guard();
    match loss {
        Loss::CrossEntropy => {
            let classes = out.size().get(1).copied().unwrap_or(1);
            let onehot = y.f_one_hot(classes).and_then(|o| o.f_to_kind(out.kind()));
            onehot.and_then(|o| out.f_softmax(1, out.kind())?.f_sub(&o))
        }
        Loss::Mse => out.f_sub(y).and_then(|d| d.f_mul_scalar(2.0)),
    }
    .ctx("the loss's gradient with respect to the outputs")
}

/// The Frobenius norm of each example's Jacobian of the softmax output (the raw output for
/// regression), one backward pass per output through `tape`.
fn jacobian_norms_by_hand(loss: Loss, tape: &Tape<'_>) -> Result<Tensor, StageError> {
    let _guard = tch::no_grad_guard();
    let out = &tape.out;
    let probs = match loss {
        Loss::CrossEntropy => out.f_softmax(1, out.kind()).ctx("softmax")?,
        Loss::Mse => out.shallow_clone(),
    };
    let classes = probs.size().get(1).copied().unwrap_or(1);
    let mut squares = Tensor::f_zeros([out.size()[0]], (out.kind(), out.device()))
        .ctx("allocating Jacobian norms")?;
    for c in 0..classes {
        let row = jacobian_row(loss, &probs, c)?;
        let _ = squares
            .f_add_(&squared_norms(&tape.input_gradient(&row)?)?)
            .ctx("summing Jacobian rows")?;
    }
    squares.f_sqrt().ctx("taking norms")
}

/// Row `c` of each example's Jacobian of `probs` with respect to the outputs, `[B, C]`:
/// p_c(e_c − p) for the softmax, e_c for the raw output.
fn jacobian_row(loss: Loss, probs: &Tensor, c: i64) -> Result<Tensor, StageError> {
    let row = match loss {
        Loss::CrossEntropy => (|| {
            let p_c = probs.f_narrow(1, c, 1)?;
            let row = probs.f_mul(&p_c)?.f_neg()?;
            let _ = row.f_narrow(1, c, 1)?.f_add_(&p_c)?;
            Ok(row)
        })(),
        Loss::Mse => (|| {
            let row = probs.f_zeros_like()?;
            let _ = row.f_narrow(1, c, 1)?.f_fill_(1.0)?;
            Ok(row)
        })(),
    };
    row.ctx("a row of the output's Jacobian")
}

/// [`figures`] by autograd: one forward pass, then 1 + C backward passes with respect to the
/// inputs.
fn by_autograd(
    model: &InputModel<'_>,
    x: &Tensor,
    y: &Tensor,
    jacobian: bool,
) -> Result<Figures, StageError> {
    let x = x
        .f_detach()
        .and_then(|x| x.f_set_requires_grad(true))
        .ctx("preparing inputs for gradients")?;
    let (out, losses, grad_norm) = loss_gradient_norms(model, &x, y, jacobian)?;
    let jacobian_norm = if jacobian {
        Some(jacobian_norms(model.loss, &out, &x)?)
    } else {
        None
    };
    Ok(Figures {
        out: out.f_detach().ctx("detaching the outputs")?,
        losses: losses.f_detach().ctx("detaching the losses")?,
        grad_norm,
        jacobian_norm,
    })
}

/// The model's outputs, each example's loss, and the norm of each example's loss gradient
/// with respect to its input (one forward and one backward pass; `x` requires gradients).
/// `keep` keeps the graph for more backward passes.
fn loss_gradient_norms(
    model: &InputModel<'_>,
    x: &Tensor,
    y: &Tensor,
    keep: bool,
) -> Result<(Tensor, Tensor, Tensor), StageError> {
    let out = forward(model.plan, model.params, model.buffers, x, false)?;
    let losses = model.loss.each(&out, y).ctx("computing the loss")?;
    let total = losses.f_sum(Kind::Float).ctx("summing the loss")?;
    let grad_norm = norms(&input_gradient(&total, x, keep)?)?;
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

/// The Frobenius norm of each example's slice of `g`, `[B]`.
fn norms(g: &Tensor) -> Result<Tensor, StageError> {
    squared_norms(g)?.f_sqrt().ctx("taking norms")
}

/// The squared Frobenius norm of each example's slice of `g`, `[B]`.
fn squared_norms(g: &Tensor) -> Result<Tensor, StageError> {
    g.f_flatten(1, -1)
        .and_then(|g| g.f_square())
        .and_then(|g| g.f_sum_dim_intlist(1, false, Kind::Float))
        .ctx("taking norms")
}

#[cfg(test)]
mod tests;
