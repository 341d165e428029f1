//! A model's first convolution on fixed examples as one matrix product with the examples'
//! columns, computed once.
//!
//! A convolution is a product of its kernel (`[F, C·k·k]`) with the columns of its input
//! (`im2col`: every window's values, `C·k·k` of them for each of the `L` output positions).
//! When the same examples are evaluated at many parameter values (the sharpness measures'
//! random perturbations: 1,000 evaluations of the same 1,000 images), the columns of the
//! first layer's input never change, so they are computed once, with a column of ones
//! appended that carries the bias, and each evaluation's first layer is one product of the
//! kernel and bias with them, written straight into the layer's output.
//!
//! The layout of that output depends on what follows. When only element-wise operations
//! (activations, evaluation-mode dropout and batch normalization, which act per channel) lie
//! between the convolution and a flatten, and only activations and dropout between the
//! flatten and a dense layer (the usual head of a small CNN), the product is a single
//! `[n·L, C·k·k + 1] × [C·k·k + 1, F]` one with the channels last, the flatten takes the
//! values in (position, channel) order, and the dense layer's weight is permuted to that
//! order instead: nothing is ever reordered. That head then runs in slices of about a dozen
//! examples through one reused buffer, so that the first layer's output (43 MB for 1,000
//! MNIST-CNN images) stays in the cache between the product that writes it, the activation
//! and the dense layer that read it, instead of making three trips through memory, which
//! was where most of the time went; the dense layer is computed as its weight times the
//! activation's transpose, which MKL does faster than the other way round for so few
//! outputs. Otherwise the output has the channels first, as
//! libtorch's layers expect, through one small product per example. For the bench's MNIST
//! CNN the first layer costs about 3 ms per 1,000 images channels last and 4.5 ms channels
//! first, against 8-12 ms for oneDNN's convolution (which writes a blocked layout and
//! reorders it). The columns cost memory, `C·k·k + 1` values per output position (10 per
//! pixel for a 3×3 kernel on one channel, 27 MB for 1,000 MNIST images), so they are kept
//! only up to [`MAX_VALUES`].

use pipeline_engine::stage::StageError;
use pipeline_kinds::model::plan::{Op, Plan};
use tch::Tensor;

use crate::error::TchContext;
use crate::model::network::{activate_in_place, apply, forward_rest};
use crate::train::data::Split;

/// The most values the columns may hold: 64 Mi (256 MB of `f32`); larger example sets are
/// evaluated the plain way.
pub(crate) const MAX_VALUES: i64 = 1 << 26;

/// The most values of a channels-last first layer's output computed at once: 128 Ki (512 KB
/// of `f32`, 12 MNIST-CNN examples), so that it stays in the processor's (2 MB) second-level
/// cache through the activation and the dense layer that read it again. For the bench's CNN
/// that took an evaluation of 1,000 images from 13 ms in one slice to 7.3 (134-138
/// evaluations/s; slices of 6 or 24 examples gave 129-131, of 48, 97).
const SLICE_VALUES: i64 = 1 << 17;

/// The layout of the first convolution's output.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    /// `[n·L, F]`, for a head of element-wise operations, a flatten at `flatten`, more
    /// activations or dropout, and a dense layer at `dense`.
    ChannelsLast { flatten: usize, dense: usize },
    /// `[n, F, L]`, anything following.
    ChannelsFirst,
}

/// The columns of fixed examples for a plan whose first operation is a convolution.
pub(crate) struct FirstConv<'a> {
    /// The model.
    plan: &'a Plan,
    /// The indices of the kernel and bias in the parameters.
    weight: usize,
    bias: usize,
    /// The output's height and width.
    out_hw: [i64; 2],
    /// The output's layout.
    layout: Layout,
    /// Per batch of the examples, `[n·L, C·k·k + 1]` channels last or `[n, C·k·k + 1, L]`
    /// channels first (the bias's ones last).
    columns: Vec<Tensor>,
    /// The most values of a channels-last output computed at once ([`SLICE_VALUES`]).
    slice_values: i64,
}

/// What one evaluation's batches share: the factors made from its parameters.
pub(crate) struct Factors {
    /// The kernel and bias side by side, `[C·k·k + 1, F]` channels last, `[F, C·k·k + 1]`
    /// channels first.
    kernel: Tensor,
    /// Channels last, the dense layer's weight with its inputs in (position, channel) order
    /// (`[out, L·F]`), and its bias as a column (`[out, 1]`).
    dense: Option<(Tensor, Tensor)>,
}

impl<'a> FirstConv<'a> {
    /// The columns of `examples` in batches of `batch` for `plan`, or `None` when its first
    /// operation is not a convolution or the columns would hold more than `max_values`.
    pub(crate) fn new(
        plan: &'a Plan,
        examples: &Split,
        batch: i64,
        max_values: i64,
    ) -> Result<Option<Self>, StageError> {
        let Some(&Op::Conv {
            weight,
            bias,
            stride,
            padding,
        }) = plan.ops.first()
        else {
            return Ok(None);
        };
        let kernel = plan.params.get(weight).map(|s| s.shape.as_slice());
        let (Some(&[_, channels, kh, kw]), &[_, _, height, width]) =
            (kernel, examples.x.size().as_slice())
        else {
            return Ok(None);
        };
        let side = |d: i64, k: i64| (d + 2 * padding - k) / stride + 1;
        let out_hw = [side(height, kh), side(width, kw)];
        let rows = channels * kh * kw + 1;
        if examples.len * rows * out_hw[0] * out_hw[1] > max_values {
            return Ok(None);
        }
        let layout = layout(plan);
        let mut columns = Vec::new();
        let mut start = 0;
        while start < examples.len {
            let n = batch.min(examples.len - start);
            let x = examples.x.f_narrow(0, start, n).ctx("slicing a batch")?;
            columns.push(augmented_columns(&x, [kh, kw], stride, padding, layout)?);
            start += n;
        }
        Ok(Some(Self {
            plan,
            weight,
            bias,
            out_hw,
            layout,
            columns,
            slice_values: SLICE_VALUES,
        }))
    }

    /// The factors of one evaluation with the parameters `params`.
    pub(crate) fn factors(&self, params: &[Tensor]) -> Result<Factors, StageError> {
        let (weight, bias) = (&params[self.weight], &params[self.bias]);
        let filters = bias.size().first().copied().unwrap_or(0);
        let kernel = weight
            .f_reshape([filters, -1])
            .and_then(|w| Tensor::f_cat(&[w, bias.f_reshape([filters, 1])?], 1))
            .ctx("joining the first kernel and its bias")?;
        Ok(match self.layout {
            Layout::ChannelsLast { dense, .. } => {
                let (weight, bias) = dense_layer(self.plan, dense)?;
                Factors {
                    kernel: kernel
                        .f_tr()
                        .and_then(|k| k.f_contiguous())
                        .ctx("transposing the first kernel")?,
                    dense: Some((
                        self.permuted_dense(&params[weight])?,
                        params[bias].f_unsqueeze(1).ctx("shaping the dense bias")?,
                    )),
                }
            }
            Layout::ChannelsFirst => Factors {
                kernel,
                dense: None,
            },
        })
    }

    /// A dense weight `[out, F·L]` over inputs in (channel, position) order, permuted to
    /// (position, channel) order.
    fn permuted_dense(&self, weight: &Tensor) -> Result<Tensor, StageError> {
        let outputs = weight.size().first().copied().unwrap_or(0);
        let positions = self.out_hw[0] * self.out_hw[1];
        weight
            .f_reshape([outputs, -1, positions])
            .and_then(|w| w.f_transpose(1, 2)?.f_reshape([outputs, -1]))
            .ctx("permuting the dense weight")
    }

    /// The model's outputs on batch `i` with the parameters `params` and `buffers`, in
    /// evaluation mode, `factors` made from the same parameters.
    pub(crate) fn forward(
        &self,
        i: usize,
        factors: &Factors,
        params: &[Tensor],
        buffers: &[Tensor],
    ) -> Result<Tensor, StageError> {
        let columns = self
            .columns
            .get(i)
            .ok_or_else(|| StageError::bug(format!("no columns for batch {i}")))?;
        match self.layout {
            Layout::ChannelsLast { flatten, dense } => {
                let out = self.head(columns, factors, flatten, dense, params, buffers)?;
                forward_rest(self.plan, dense + 1, params, buffers, out)
            }
            Layout::ChannelsFirst => {
                let n = columns.size().first().copied().unwrap_or(0);
                let h = factors
                    .kernel
                    .f_matmul(columns)
                    .and_then(|h| h.f_view([n, -1, self.out_hw[0], self.out_hw[1]]))
                    .ctx("the first convolution from its columns")?;
                forward_rest(self.plan, 1, params, buffers, h)
            }
        }
    }

    /// Operations 0 to `dense` on a batch of channels-last `columns`, in slices of
    /// examples whose first-layer output fits the processor's cache (see [`SLICE_VALUES`]),
    /// one buffer serving every slice: the convolution, the element-wise operations in
    /// place, the flatten at `flatten` as a view in (position, channel) order, and the dense
    /// layer with its weight permuted to match, written into the slice's part of the
    /// output.
    fn head(
        &self,
        columns: &Tensor,
        factors: &Factors,
        flatten: usize,
        dense: usize,
        params: &[Tensor],
        buffers: &[Tensor],
    ) -> Result<Tensor, StageError> {
        let (weight, bias) = factors
            .dense
            .as_ref()
            .ok_or_else(|| StageError::bug("no permuted dense weight"))?;
        let positions = (self.out_hw[0] * self.out_hw[1]).max(1);
        let len = columns.size()[0] / positions;
        let filters = factors.kernel.size()[1];
        let alloc = |shape: &[i64]| {
            Tensor::f_empty(shape, (columns.kind(), columns.device())).ctx("allocating")
        };
        // The dense layer's output, transposed: `[out, n]` takes each slice's product as
        // `weight × hᵀ`, which MKL computes about a fifth faster than `h × weightᵀ` for
        // so few outputs.
        let out = alloc(&[weight.size()[0], len])?;
        let slice_len = (self.slice_values / (positions * filters)).clamp(1, len.max(1));
        let buffer = alloc(&[slice_len * positions, filters])?;
        let mut start = 0;
        while start < len {
            let n = slice_len.min(len - start);
            let mut h = buffer.f_narrow(0, 0, n * positions).ctx("slicing")?;
            let _ = columns
                .f_narrow(0, start * positions, n * positions)
                .and_then(|c| c.f_mm_out(&h, &factors.kernel))
                .ctx("the first convolution from its columns")?;
            for (i, op) in self.plan.ops.iter().enumerate().take(dense).skip(1) {
                let result = match op {
                    Op::Act(act) => activate_in_place(*act, &mut h),
                    Op::Dropout(_) => Ok(h),
                    Op::BatchNorm { .. } => apply(op, &h, params, buffers, false),
                    Op::Flatten if i == flatten => h.f_view([n, -1]),
                    _ => Err(tch::TchError::Kind(format!(
                        "{op:?} in a channels-last head"
                    ))),
                };
                h = result.ctx(&format!("forward pass of operation {i} ({op:?})"))?;
            }
            let _ = out
                .f_narrow(1, start, n)
                .and_then(|columns| bias.f_addmm_out(&columns, weight, &h.f_tr()?))
                .ctx(&format!(
                    "forward pass of operation {dense} (the dense layer)"
                ))?;
            start += n;
        }
        out.f_tr()
            .and_then(|o| o.f_contiguous())
            .ctx("transposing the dense layer's output")
    }
}

/// The indices in the parameters of the weight and bias of the dense layer at operation
/// `dense`.
fn dense_layer(plan: &Plan, dense: usize) -> Result<(usize, usize), StageError> {
    match plan.ops.get(dense) {
        Some(Op::Dense { weight, bias }) => Ok((*weight, *bias)),
        _ => Err(StageError::bug(format!(
            "operation {dense} is not a dense layer"
        ))),
    }
}

/// Channels last when the plan's first convolution is followed by element-wise operations
/// (activations, dropout, batch normalization), a flatten, activations or dropout, and a
/// dense layer; channels first otherwise.
fn layout(plan: &Plan) -> Layout {
    let per_value = |op: &Op| matches!(op, Op::Act(_) | Op::Dropout(_));
    let mut ops = plan.ops.iter().enumerate().skip(1);
    let flatten = ops.find(|(_, op)| !(per_value(op) || matches!(op, Op::BatchNorm { .. })));
    let dense = ops.find(|(_, op)| !per_value(op));
    match (flatten, dense) {
        (Some((flatten, Op::Flatten)), Some((dense, Op::Dense { .. }))) => {
            Layout::ChannelsLast { flatten, dense }
        }
        _ => Layout::ChannelsFirst,
    }
}

/// `x`'s columns for a `kernel` with `stride` and `padding`, with the bias's ones appended:
/// `[n·L, C·k·k + 1]` channels last, `[n, C·k·k + 1, L]` channels first.
fn augmented_columns(
    x: &Tensor,
    kernel: [i64; 2],
    stride: i64,
    padding: i64,
    layout: Layout,
) -> Result<Tensor, StageError> {
    let _guard = tch::no_grad_guard();
    let columns = x
        .f_im2col(kernel, [1, 1], [padding; 2], [stride; 2])
        .ctx("unfolding the examples")?;
    let size = columns.size();
    let ones = Tensor::f_ones([size[0], 1, size[2]], (x.kind(), x.device()));
    let columns = ones
        .and_then(|ones| Tensor::f_cat(&[columns, ones], 1))
        .ctx("appending the bias row")?;
    match layout {
        Layout::ChannelsLast { .. } => columns
            .f_transpose(1, 2)
            .and_then(|c| c.f_contiguous()?.f_reshape([-1, size[1] + 1]))
            .ctx("transposing the columns"),
        Layout::ChannelsFirst => Ok(columns),
    }
}

#[cfg(test)]
mod tests;
