//! One run's passes through a fully connected network on the host: the forward pass, the
//! loss and its gradient, the backward pass to every parameter, and evaluation sums.
//!
//! Buffers are feature-major (`features × row`, `row` the batch rounded up to
//! [`dense::ROW_BLOCK`]); the columns past the batch are padding whose gradients are zero,
//! so they add nothing to any sum.

use super::activation::{activate, activation_grad};
use super::dense;
use super::vector::Vector;
use super::{DenseNet, HostData, Layer, Targets};

/// Buffers of one thread: each layer's input and output, two gradient buffers and the
/// gradient of a run's parameters.
pub(super) struct Workspace {
    acts: Vec<Vec<f32>>,
    grad: [Vec<f32>; 2],
    pub(super) params_grad: Vec<f32>,
    /// Examples per buffer row: the batch size rounded up to a multiple of
    /// [`dense::ROW_BLOCK`] (the rest of a row is padding, with zero gradients).
    row: usize,
}

impl Workspace {
    pub(super) fn new(net: &DenseNet, batch_size: usize) -> Self {
        let row = batch_size.div_ceil(dense::ROW_BLOCK).max(1) * dense::ROW_BLOCK;
        let widest = net.widths.iter().copied().max().unwrap_or(0);
        Self {
            acts: net.widths.iter().map(|&w| vec![0f32; w * row]).collect(),
            grad: [vec![0f32; widest * row], vec![0f32; widest * row]],
            params_grad: vec![0f32; net.params],
            row,
        }
    }
}

/// The forward pass of one run on the examples `index`: every layer's output in
/// `ws.acts`, the network's output last.
#[inline(always)]
fn forward<V: Vector>(
    net: &DenseNet,
    data: &HostData,
    params: &[f32],
    index: &[i64],
    ws: &mut Workspace,
) {
    let row = ws.row;
    gather(data, index, &mut ws.acts[0], row);
    for (i, layer) in net.layers.iter().enumerate() {
        let (done, rest) = ws.acts.split_at_mut(i + 1);
        let (src, dst) = (&done[i], &mut rest[0]);
        match *layer {
            Layer::Dense {
                inp,
                out,
                weight,
                bias,
            } => dense::forward::<V>(
                &params[weight..weight + out * inp],
                &params[bias..bias + out],
                src,
                dst,
                inp,
                row,
            ),
            Layer::Act(act) => activate(act, &src[..], dst),
        }
    }
}

/// One forward and backward pass of one run on the examples `index`; leaves the gradient of
/// the batch's mean loss in `ws.params_grad` and returns that loss.
#[inline(always)]
pub(super) fn step<V: Vector>(
    net: &DenseNet,
    data: &HostData,
    params: &[f32],
    index: &[i64],
    ws: &mut Workspace,
) -> f32 {
    let (n, row) = (index.len(), ws.row);
    forward::<V>(net, data, params, index, ws);
    // The gradient with respect to the current layer's output, and room for its input's.
    let [g, other] = &mut ws.grad;
    let outputs = net.outputs();
    let loss = loss_gradient(
        data,
        index,
        &ws.acts[net.layers.len()],
        &mut g[..outputs * row],
        row,
        n,
    );
    let (mut g, mut other) = (g, other);
    for (i, layer) in net.layers.iter().enumerate().rev() {
        let (src, dst) = (&ws.acts[i], &ws.acts[i + 1]);
        match *layer {
            Layer::Dense {
                inp,
                out,
                weight,
                bias,
            } => {
                let (head, tail) = ws.params_grad.split_at_mut(weight.max(bias));
                let (g_weight, g_bias) = if weight < bias {
                    (&mut head[weight..weight + out * inp], &mut tail[..out])
                } else {
                    (&mut tail[..out * inp], &mut head[bias..bias + out])
                };
                dense::param_grads::<V>(&g[..out * row], src, g_weight, g_bias, inp, row);
                if i > 0 {
                    dense::input_grad::<V>(
                        &params[weight..weight + out * inp],
                        &g[..out * row],
                        &mut other[..inp * row],
                        inp,
                        row,
                    );
                    std::mem::swap(&mut g, &mut other);
                }
            }
            Layer::Act(act) if i > 0 => activation_grad(act, src, dst, &mut g[..dst.len()]),
            Layer::Act(_) => {}
        }
    }
    loss
}

/// Copies the inputs of the examples `index` into `dst`, feature-major, zeros past the batch.
#[inline(always)]
fn gather(data: &HostData, index: &[i64], dst: &mut [f32], row: usize) {
    let f = data.features;
    dst.fill(0.0);
    for (b, &i) in index.iter().enumerate() {
        let example = &data.x[i as usize * f..(i as usize + 1) * f];
        for (j, &v) in example.iter().enumerate() {
            dst[j * row + b] = v;
        }
    }
}

/// The batch's mean loss; writes its gradient with respect to the outputs `out` into `g`
/// (zeros past the batch).
#[inline(always)]
fn loss_gradient(
    data: &HostData,
    index: &[i64],
    out: &[f32],
    g: &mut [f32],
    row: usize,
    n: usize,
) -> f32 {
    g.fill(0.0);
    let outputs = out.len() / row;
    match &data.y {
        Targets::Values(targets) => {
            // The mean over every output value, as `mse_loss` takes it.
            let count = (n * outputs) as f32;
            let mut sum = 0f32;
            for (b, &i) in index.iter().enumerate() {
                for o in 0..outputs {
                    let d = out[o * row + b] - targets[i as usize * outputs + o];
                    sum += d * d;
                    g[o * row + b] = 2.0 * d / count;
                }
            }
            sum / count
        }
        Targets::Labels(labels) => {
            // Softmax cross-entropy, averaged over the examples.
            let mut sum = 0f32;
            for (b, &i) in index.iter().enumerate() {
                let label = labels[i as usize];
                let logit = |o: usize| out[o * row + b];
                let max = (0..outputs).map(logit).fold(f32::NEG_INFINITY, f32::max);
                let total: f32 = (0..outputs).map(|o| (logit(o) - max).exp()).sum();
                let log_total = max + total.ln();
                sum += log_total - logit(label);
                for o in 0..outputs {
                    let p = (logit(o) - log_total).exp();
                    let target = if o == label { 1.0 } else { 0.0 };
                    g[o * row + b] = (p - target) / n as f32;
                }
            }
            sum / n as f32
        }
    }
}

/// `[loss sum, correct answers]` of one run on the examples `index` (evaluation: no
/// gradients), summed as [`crate::train::evaluate::sums`] sums them: squared errors over every
/// output value, cross-entropy over examples; an answer is correct when the label's output is
/// the first largest.
#[inline(always)]
pub(super) fn eval_sums<V: Vector>(
    net: &DenseNet,
    data: &HostData,
    params: &[f32],
    index: &[i64],
    ws: &mut Workspace,
) -> [f64; 2] {
    forward::<V>(net, data, params, index, ws);
    let row = ws.row;
    let out = &ws.acts[net.layers.len()];
    let outputs = out.len() / row;
    let (mut loss, mut correct) = (0f32, 0f64);
    match &data.y {
        Targets::Values(targets) => {
            for (b, &i) in index.iter().enumerate() {
                for o in 0..outputs {
                    let d = out[o * row + b] - targets[i as usize * outputs + o];
                    loss += d * d;
                }
            }
        }
        Targets::Labels(labels) => {
            for (b, &i) in index.iter().enumerate() {
                let label = labels[i as usize];
                let logit = |o: usize| out[o * row + b];
                let (best, max) = (0..outputs).fold((0, f32::NEG_INFINITY), |(best, max), o| {
                    if logit(o) > max {
                        (o, logit(o))
                    } else {
                        (best, max)
                    }
                });
                let total: f32 = (0..outputs).map(|o| (logit(o) - max).exp()).sum();
                loss += max + total.ln() - logit(label);
                if best == label {
                    correct += 1.0;
                }
            }
        }
    }
    [f64::from(loss), correct]
}
