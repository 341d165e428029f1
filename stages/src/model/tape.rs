//! A forward pass that keeps what differentiating with respect to its inputs needs, and that
//! derivative taken layer by layer by hand.
//!
//! The sensitivity analysis wants, for every example, gradients with respect to the input
//! and never with respect to the parameters. Autograd gets them through libtorch's general
//! backward formulas, and on the CPU the one for a convolution's input goes through oneDNN's
//! backward-data path, which for the thin first layer of the homework's CNNs costs several
//! times the forward pass (about 50 ms per 1,000 MNIST images, against 7 ms for the product
//! and strided additions of [`conv_input_gradient`]), and it keeps the whole graph besides.
//! Here each operation keeps only what its input gradient needs, in evaluation mode: a dense
//! layer nothing but its weight, a convolution its input's shape, max pooling its input and
//! the argmax indices, an activation its output (softplus its input), batch normalization its
//! per-channel factor (a fixed affine map with running statistics), dropout nothing (the
//! identity). One recorded pass serves any number of backward passes: the loss's gradient
//! and one per output for a Jacobian.
//!
//! The backward formulas are libtorch's own kernels where it has them (`threshold_backward`,
//! `tanh_backward`, the poolings' backward, ...), the ones autograd calls, so results equal
//! autograd's up to float rounding.

use pipeline_engine::stage::StageError;
use pipeline_kinds::model::plan::{Op, Plan};
use pipeline_kinds::model::spec::Activation;
use tch::{TchError, Tensor};

use crate::error::TchContext;
use crate::model::network::{BN_EPS, activate, activate_in_place, apply};

/// SELU's constants (PyTorch's).
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
/// Softplus's β and linear threshold (PyTorch's defaults, which the forward pass uses).
const SOFTPLUS_BETA: f64 = 1.0;
const SOFTPLUS_THRESHOLD: f64 = 20.0;

/// What one operation keeps for its input gradient.
enum Saved {
    /// `g W`, with the index of `W` in the parameters.
    Dense(usize),
    /// The transposed convolution of `g`, which needs the input's shape.
    Conv {
        weight: usize,
        input: Vec<i64>,
        stride: i64,
        padding: i64,
    },
    /// `g` scattered back to the argmax of each window.
    MaxPool {
        window: i64,
        input: Tensor,
        indices: Tensor,
    },
    /// `g` spread evenly over each window.
    AvgPool { window: i64, input: Tensor },
    /// `g` reshaped to the input's shape.
    Flatten(Vec<i64>),
    /// `g` times the activation's derivative, from its output (softplus: its input).
    Act { act: Activation, kept: Tensor },
    /// `g` times a per-channel factor (evaluation-mode batch normalization).
    Scale(Tensor),
    /// `g` itself (evaluation-mode dropout).
    Identity,
}

/// A recorded evaluation-mode forward pass of one batch.
pub(crate) struct Tape<'a> {
    /// The model's parameters.
    params: &'a [Tensor],
    /// What each operation kept, in forward order.
    saved: Vec<Saved>,
    /// The model's outputs.
    pub(crate) out: Tensor,
}

impl<'a> Tape<'a> {
    /// The evaluation-mode forward pass of `plan` on `x`, keeping what
    /// [`Tape::input_gradient`] needs. Runs without gradients; `x` is never written.
    pub(crate) fn record(
        plan: &Plan,
        params: &'a [Tensor],
        buffers: &[Tensor],
        x: &Tensor,
    ) -> Result<Self, StageError> {
        if params.len() != plan.params.len() || buffers.len() != plan.buffers.len() {
            return Err(StageError::bug(format!(
                "recorded pass given {} parameters and {} buffers for a model of {} and {}",
                params.len(),
                buffers.len(),
                plan.params.len(),
                plan.buffers.len()
            )));
        }
        let _guard = tch::no_grad_guard();
        let mut saved = Vec::with_capacity(plan.ops.len());
        let mut h = x.shallow_clone();
        // Whether `h` was made by this pass and is kept by nobody, so that an activation may
        // overwrite it (see `network::forward`; here layers keep their inputs and
        // activations their outputs, as there).
        let mut overwritable = false;
        for (i, op) in plan.ops.iter().enumerate() {
            let (next, kept) = step(op, h, overwritable, params, buffers)
                .ctx(&format!("recorded forward pass of operation {i} ({op:?})"))?;
            overwritable = match op {
                Op::Flatten | Op::Dropout(_) => overwritable,
                Op::Act(_) => false,
                _ => true,
            };
            h = next;
            saved.push(kept);
        }
        Ok(Self {
            params,
            saved,
            out: h,
        })
    }

    /// The gradient with respect to the inputs of Σ `grad_out` ⊙ outputs: for each example,
    /// the vector-Jacobian product of its own outputs' weights `grad_out` (the shape of the
    /// outputs) with its input.
    pub(crate) fn input_gradient(&self, grad_out: &Tensor) -> Result<Tensor, StageError> {
        let _guard = tch::no_grad_guard();
        let mut g = grad_out.shallow_clone();
        // Whether `g` was made by this pass (not the caller's), so that an element-wise step
        // may overwrite it instead of writing another batch-sized tensor.
        let mut owned = false;
        for (i, kept) in self.saved.iter().enumerate().rev() {
            g = back(kept, &g, owned, self.params)
                .ctx(&format!("backward pass of operation {i} to the inputs"))?;
            owned = owned || !matches!(kept, Saved::Flatten(_) | Saved::Identity);
        }
        Ok(g)
    }
}

/// One operation of the recorded pass: its output and what it keeps.
fn step(
    op: &Op,
    mut h: Tensor,
    overwritable: bool,
    p: &[Tensor],
    b: &[Tensor],
) -> Result<(Tensor, Saved), TchError> {
    Ok(match *op {
        Op::Dense { weight, .. } => (apply(op, &h, p, b, false)?, Saved::Dense(weight)),
        Op::Conv {
            weight,
            stride,
            padding,
            ..
        } => {
            let out = apply(op, &h, p, b, false)?;
            let input = h.size();
            (
                out,
                Saved::Conv {
                    weight,
                    input,
                    stride,
                    padding,
                },
            )
        }
        Op::MaxPool(window) => {
            let (out, indices) =
                h.f_max_pool2d_with_indices([window; 2], [window; 2], [0, 0], [1, 1], false)?;
            let input = h;
            let kept = Saved::MaxPool {
                window,
                input,
                indices,
            };
            (out, kept)
        }
        Op::AvgPool(window) => {
            let out = apply(op, &h, p, b, false)?;
            (out, Saved::AvgPool { window, input: h })
        }
        Op::Flatten => (apply(op, &h, p, b, false)?, Saved::Flatten(h.size())),
        Op::Dropout(_) => (h, Saved::Identity),
        Op::BatchNorm { weight, var, .. } => {
            let out = apply(op, &h, p, b, false)?;
            (
                out,
                Saved::Scale(channel_factor(&p[weight], &b[var], h.dim())?),
            )
        }
        Op::Act(Activation::Softplus) => {
            let out = activate(Activation::Softplus, &h)?;
            let kept = Saved::Act {
                act: Activation::Softplus,
                kept: h,
            };
            (out, kept)
        }
        Op::Act(act) => {
            let out = if overwritable {
                activate_in_place(act, &mut h)?
            } else {
                activate(act, &h)?
            };
            let kept = out.shallow_clone();
            (out, Saved::Act { act, kept })
        }
    })
}

/// Batch normalization's input derivative in evaluation mode, `weight / √(var + ε)`, shaped
/// `[C, 1, …]` to broadcast over an input of `rank` dimensions `[N, C, …]`.
fn channel_factor(weight: &Tensor, var: &Tensor, rank: usize) -> Result<Tensor, TchError> {
    let mut shape = vec![-1i64];
    shape.resize(rank.saturating_sub(1).max(1), 1);
    weight
        .f_div(&var.f_add_scalar(BN_EPS)?.f_sqrt()?)?
        .f_reshape(shape.as_slice())
}

/// The gradient with respect to an operation's input, from the gradient `g` with respect to
/// its output; `owned` allows writing into `g`.
fn back(kept: &Saved, g: &Tensor, owned: bool, p: &[Tensor]) -> Result<Tensor, TchError> {
    let into = || {
        if owned {
            Ok(g.shallow_clone())
        } else {
            g.f_empty_like()
        }
    };
    match kept {
        Saved::Dense(weight) => g.f_matmul(&p[*weight]),
        Saved::Conv {
            weight,
            input,
            stride,
            padding,
        } => conv_input_gradient(g, input, &p[*weight], *stride, *padding),
        Saved::MaxPool {
            window,
            input,
            indices,
        } => input.f_max_pool2d_with_indices_backward(
            g,
            [*window; 2],
            [*window; 2],
            [0, 0],
            [1, 1],
            false,
            indices,
        ),
        Saved::AvgPool { window, input } => {
            input.f_avg_pool2d_backward(g, [*window; 2], [*window; 2], [0, 0], false, true, None)
        }
        Saved::Flatten(shape) => g.f_reshape(shape.as_slice()),
        Saved::Act { act, kept } => act_backward(*act, g, kept, &into()?),
        Saved::Scale(factor) => g.f_mul_out(&into()?, factor),
        Saved::Identity => Ok(g.shallow_clone()),
    }
}

/// The input gradient of a convolution, the transposed convolution of `g`: the product of
/// the kernel's transpose with `g` gives every window's share (`[B, C, k, k, H', W']`), and
/// one strided addition per kernel offset puts the shares back where their windows lie in the
/// (padded) input. libtorch's own kernels for this are slow on the CPU (oneDNN's
/// backward-data about 30 ms per 1,000 MNIST images, `slow_conv_transpose2d` 13 ms, `col2im`
/// 10 ms, against 7 ms here), and the one fast one (`_slow_conv2d_backward`, 4.5 ms) cannot
/// be asked for the input gradient alone through tch.
fn conv_input_gradient(
    g: &Tensor,
    input: &[i64],
    weight: &Tensor,
    stride: i64,
    padding: i64,
) -> Result<Tensor, TchError> {
    let [filters, channels, kh, kw] = four(&weight.size())?;
    let [batch, _, height, width] = four(input)?;
    let [_, _, out_h, out_w] = four(&g.size())?;
    let shares = weight
        .f_reshape([filters, channels * kh * kw])?
        .f_tr()?
        .f_matmul(&g.f_reshape([batch, filters, out_h * out_w])?)?
        .f_reshape([batch, channels, kh, kw, out_h, out_w])?;
    let padded = Tensor::f_zeros(
        [batch, channels, height + 2 * padding, width + 2 * padding],
        (g.kind(), g.device()),
    )?;
    for i in 0..kh {
        for j in 0..kw {
            let rows = padded.f_slice(2, i, i + stride * (out_h - 1) + 1, stride)?;
            let mut window = rows.f_slice(3, j, j + stride * (out_w - 1) + 1, stride)?;
            let _ = window.f_add_(&shares.f_select(2, i)?.f_select(2, j)?)?;
        }
    }
    if padding == 0 {
        return Ok(padded);
    }
    padded
        .f_narrow(2, padding, height)?
        .f_narrow(3, padding, width)?
        .f_contiguous()
}

/// The four sizes of a 4-D tensor.
fn four(size: &[i64]) -> Result<[i64; 4], TchError> {
    <[i64; 4]>::try_from(size)
        .map_err(|_| TchError::Shape(format!("expected a 4-D tensor, got shape {size:?}")))
}

/// `g` times the derivative of `act`, from its output (softplus: from its input), written
/// into `into` (`g` itself, or an empty tensor).
fn act_backward(
    act: Activation,
    g: &Tensor,
    kept: &Tensor,
    into: &Tensor,
) -> Result<Tensor, TchError> {
    match act {
        Activation::Relu => kept.f_threshold_backward_grad_input(into, g, 0.0),
        Activation::Tanh => Tensor::f_tanh_backward_grad_input(into, g, kept),
        Activation::Sigmoid => Tensor::f_sigmoid_backward_grad_input(into, g, kept),
        Activation::Elu => Tensor::f_elu_backward_grad_input(into, g, 1.0, 1.0, 1.0, true, kept),
        Activation::Selu => {
            Tensor::f_elu_backward_grad_input(into, g, SELU_ALPHA, SELU_SCALE, 1.0, true, kept)
        }
        Activation::Softplus => {
            kept.f_softplus_backward_grad_input(into, g, SOFTPLUS_BETA, SOFTPLUS_THRESHOLD)
        }
    }
}

/// The most values one example holds at any point of the forward pass of `plan`, for an
/// example of shape `example` (without the batch dimension): how large a batch's saved state
/// grows, so that callers can size their batches.
pub(crate) fn widest(plan: &Plan, params: &[Tensor], example: &[i64]) -> i64 {
    let mut shape = example.to_vec();
    let mut widest = shape.iter().product::<i64>();
    for op in &plan.ops {
        let dim = |i: usize| shape.get(i).copied().unwrap_or(1);
        let out_dim = |i: usize| params.get(i).and_then(|t| t.size().first().copied());
        shape = match *op {
            Op::Dense { weight, .. } => vec![out_dim(weight).unwrap_or(1)],
            Op::Conv {
                weight,
                stride,
                padding,
                ..
            } => {
                let k = params
                    .get(weight)
                    .map_or(1, |t| t.size().last().copied().unwrap_or(1));
                let side = |d: i64| (d + 2 * padding - k) / stride.max(1) + 1;
                vec![out_dim(weight).unwrap_or(1), side(dim(1)), side(dim(2))]
            }
            Op::MaxPool(k) | Op::AvgPool(k) => vec![dim(0), dim(1) / k.max(1), dim(2) / k.max(1)],
            Op::Flatten => vec![shape.iter().product()],
            Op::Act(_) | Op::Dropout(_) | Op::BatchNorm { .. } => shape,
        };
        widest = widest.max(shape.iter().product());
    }
    widest
}

#[cfg(test)]
mod tests;
