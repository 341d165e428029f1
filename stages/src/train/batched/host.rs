//! The host trainer: a batch of small fully connected networks trained on the CPU with
//! hand-written loops, each run's whole epoch in the processor's cache.
//!
//! Through libtorch, a step of a hundred 10-unit MLPs is some fifty operations on tensors so
//! small that dispatch and the batched GEMMs' set-up cost more than the arithmetic (about 3 ms
//! a step on this project's machine). These networks fit in a few kilobytes: a run's weights,
//! optimizer state and activations (one `features × batch` buffer per operation) stay in the
//! first-level cache while it goes through every step of an epoch, forward pass, backward pass
//! and optimizer update, before the next run starts. Activations are kept feature-major, so
//! every loop runs along the batch, `L` examples at a time in fixed-size arrays that the
//! compiler keeps in vector registers; on x86-64 processors with AVX2 and FMA (checked at run
//! time) the loops are compiled for them, elsewhere for the baseline instruction set. Runs
//! are spread over the stage's threads; no run's numbers reach another's.
//!
//! What it computes is what [`super::BatchedFit`]'s libtorch path computes (the same batches,
//! losses, gradients and updates); sums are taken in a different order, so results agree up to
//! rounding. It trains between evaluations only: evaluation, checkpoints and snapshots read
//! the stacked tensors, which this module fills back after every epoch.

use pipeline_engine::stage::StageError;
use pipeline_kinds::model::plan::{Op, Plan};
use pipeline_kinds::model::spec::Activation;
use pipeline_kinds::optim::OptimizerSpec;
use tch::{Device, Kind, Tensor};

use super::host_optim::{self, state_count};
use crate::error::TchContext;

mod dense;
#[cfg(test)]
mod tests;
mod vector;

use crate::train::data::Split;
use crate::train::loss::Loss;
#[cfg(target_arch = "x86_64")]
use vector::Avx2;
use vector::{Portable, Vector};

/// The most inputs a network trained here may have. The weight gradients are dot products
/// along the batch, one horizontal sum per weight; for a first layer of hundreds of inputs
/// those sums cost more than libtorch's GEMMs lose to dispatch (measured on 8 seeds of the
/// course's 784-128-128-10 MLP, batch 64: 10-25 % slower here, while a sinc MLP of any width
/// up to 128×128 was as fast or, for the homework's sizes, 2.7-5 times as fast here).
const MAX_INPUTS: usize = 64;

/// One operation of a network as the host trainer runs it.
#[derive(Clone, Copy, Debug)]
enum Layer {
    /// `W·h + b` with `W` (`[out, inp]`) and `b` at these offsets in a run's parameters.
    Dense {
        inp: usize,
        out: usize,
        weight: usize,
        bias: usize,
    },
    /// An element-wise activation.
    Act(Activation),
}

/// A fully connected network's shapes, and where each parameter lies in a run's values (the
/// layout of a run alone: the plan's parameters one after another).
#[derive(Debug)]
pub(crate) struct DenseNet {
    layers: Vec<Layer>,
    /// Width of each buffer: the input's features, then each layer's output.
    widths: Vec<usize>,
    /// Values per run.
    params: usize,
}

impl DenseNet {
    /// The network of `plan` with `features` inputs, or `None` when it has anything but
    /// dense layers, activations and flattening, or more than [`MAX_INPUTS`] inputs.
    pub(crate) fn new(plan: &Plan, features: usize) -> Option<Self> {
        if !plan.buffers.is_empty() || features > MAX_INPUTS {
            return None;
        }
        let mut offsets = Vec::with_capacity(plan.params.len());
        let mut params = 0;
        for spec in &plan.params {
            offsets.push(params);
            params += spec.numel();
        }
        let mut layers = Vec::new();
        let mut widths = vec![features];
        for op in &plan.ops {
            let width = *widths.last()?;
            match *op {
                Op::Dense { weight, bias } => {
                    let shape = &plan.params.get(weight)?.shape;
                    let (out, inp) = (*shape.first()? as usize, *shape.get(1)? as usize);
                    if inp != width || plan.params.get(bias)?.numel() != out {
                        return None;
                    }
                    layers.push(Layer::Dense {
                        inp,
                        out,
                        weight: offsets[weight],
                        bias: offsets[bias],
                    });
                    widths.push(out);
                }
                Op::Act(act) => {
                    layers.push(Layer::Act(act));
                    widths.push(width);
                }
                Op::Flatten => {}
                _ => return None,
            }
        }
        Some(Self {
            layers,
            widths,
            params,
        })
    }

    /// The number of outputs.
    pub(crate) fn outputs(&self) -> usize {
        self.widths.last().copied().unwrap_or(0)
    }
}

/// Targets as the host trainer reads them.
enum Targets {
    /// Regression targets, `outputs` per example.
    Values(Vec<f32>),
    /// Class labels, each checked to be below the number of outputs.
    Labels(Vec<usize>),
}

/// A training split copied to host memory once.
pub(crate) struct HostData {
    /// Inputs, `features` per example.
    x: Vec<f32>,
    y: Targets,
    features: usize,
}

impl HostData {
    /// Copies `split` (on the CPU) for a network with `outputs` outputs trained with `loss`.
    pub(crate) fn new(split: &Split, loss: Loss, outputs: usize) -> Result<Self, StageError> {
        if split.x.device() != Device::Cpu {
            return Err(StageError::bug("the host trainer was given data on a GPU"));
        }
        let len = split.len.max(0) as usize;
        let read = |t: &Tensor| -> Result<Vec<f32>, StageError> {
            let flat = t
                .f_reshape([-1])
                .and_then(|t| t.f_to_kind(Kind::Float))
                .ctx("reading the training split")?;
            Vec::<f32>::try_from(&flat).ctx("reading the training split")
        };
        let x = read(&split.x)?;
        let features = x.len().checked_div(len).unwrap_or(0);
        let y = match loss {
            Loss::Mse => {
                let values = read(&split.y)?;
                if values.len() != len * outputs {
                    return Err(StageError::input(format!(
                        "the targets have {} values for {len} examples of a model with {outputs} \
                         output(s)",
                        values.len()
                    )));
                }
                Targets::Values(values)
            }
            Loss::CrossEntropy => {
                let labels = Vec::<i64>::try_from(&split.y.f_reshape([-1]).ctx("reading labels")?)
                    .ctx("reading labels")?;
                let checked = labels
                    .iter()
                    .map(|&l| usize::try_from(l).ok().filter(|&l| l < outputs))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| {
                        StageError::input(format!(
                            "a training label is outside the model's {outputs} classes"
                        ))
                    })?;
                Targets::Labels(checked)
            }
        };
        Ok(Self { x, y, features })
    }
}

/// One epoch of every run of a batch: what the host trainer is given and fills in.
pub(crate) struct Epoch<'a> {
    pub(crate) net: &'a DenseNet,
    pub(crate) data: &'a HostData,
    pub(crate) optimizer: &'a OptimizerSpec,
    /// Optimizer steps made before this epoch.
    pub(crate) steps: u64,
    pub(crate) batch_size: usize,
    /// Each run's order of the training examples, one after another.
    pub(crate) order: &'a [i64],
    /// Threads to spread the runs over.
    pub(crate) threads: usize,
}

/// Every run's values, one run after another: its parameters, then each optimizer state
/// vector (each the parameters' size).
pub(crate) struct Records {
    pub(crate) values: Vec<f32>,
    /// Values per run.
    pub(crate) stride: usize,
}

impl Records {
    /// Gathers the runs' parameters from `flat` and the optimizer's `states` (all in the
    /// stacked layout of [`super::Stacked`], parameter block by parameter block).
    pub(crate) fn gather(
        flat: &Tensor,
        states: &[&Tensor],
        sizes: &[i64],
        runs: usize,
    ) -> Result<Self, StageError> {
        let params: usize = sizes.iter().map(|&n| n as usize).sum();
        let stride = params * (1 + states.len());
        let mut values = vec![0f32; stride * runs];
        for (slot, t) in std::iter::once(flat)
            .chain(states.iter().copied())
            .enumerate()
        {
            let stacked = Vec::<f32>::try_from(t).ctx("reading stacked values")?;
            let (mut from, mut alone) = (0, 0);
            for &n in sizes {
                let n = n as usize;
                for k in 0..runs {
                    let at = k * stride + slot * params + alone;
                    values[at..at + n].copy_from_slice(&stacked[from + k * n..from + (k + 1) * n]);
                }
                from += n * runs;
                alone += n;
            }
        }
        Ok(Self { values, stride })
    }

    /// Writes the runs' values back into `flat` and `states` (the inverse of
    /// [`Records::gather`]).
    pub(crate) fn scatter(
        &self,
        flat: &Tensor,
        states: &[&Tensor],
        sizes: &[i64],
        runs: usize,
    ) -> Result<(), StageError> {
        let params: usize = sizes.iter().map(|&n| n as usize).sum();
        let _guard = tch::no_grad_guard();
        for (slot, t) in std::iter::once(flat)
            .chain(states.iter().copied())
            .enumerate()
        {
            let mut stacked = vec![0f32; params * runs];
            let (mut to, mut alone) = (0, 0);
            for &n in sizes {
                let n = n as usize;
                for k in 0..runs {
                    let at = k * self.stride + slot * params + alone;
                    stacked[to + k * n..to + (k + 1) * n].copy_from_slice(&self.values[at..at + n]);
                }
                to += n * runs;
                alone += n;
            }
            let host = Tensor::f_from_slice(&stacked).ctx("writing stacked values")?;
            t.shallow_clone()
                .f_copy_(&host)
                .ctx("writing stacked values")?;
        }
        Ok(())
    }
}

/// Trains every run through one epoch; returns the runs' batch losses, step by step (run `k`
/// of step `s` at `s · runs + k`), as the libtorch path records them.
pub(crate) fn train_epoch(epoch: &Epoch<'_>, records: &mut Records) -> Vec<f32> {
    let stride = records.stride;
    let runs = records.values.len() / stride.max(1);
    let n_train = epoch.order.len() / runs.max(1);
    let batches = n_train.div_ceil(epoch.batch_size.max(1));
    let mut losses = vec![0f32; runs * batches];
    let threads = epoch.threads.clamp(1, runs.max(1));
    let per_thread = runs.div_ceil(threads);
    std::thread::scope(|scope| {
        let mut work = records
            .values
            .chunks_mut(stride * per_thread)
            .zip(losses.chunks_mut(batches * per_thread))
            .zip(epoch.order.chunks(n_train * per_thread));
        let first = work.next();
        for ((values, losses), order) in work {
            scope.spawn(move || train_runs(epoch, values, stride, order, losses));
        }
        if let Some(((values, losses), order)) = first {
            train_runs(epoch, values, stride, order, losses);
        }
    });
    // Run-major to step-major.
    let mut by_step = vec![0f32; runs * batches];
    for k in 0..runs {
        for s in 0..batches {
            by_step[s * runs + k] = losses[k * batches + s];
        }
    }
    by_step
}

/// Trains the runs of `values` (records of `stride` values each) through the epoch with the
/// fastest loops this processor runs.
fn train_runs(
    epoch: &Epoch<'_>,
    values: &mut [f32],
    stride: usize,
    order: &[i64],
    losses: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has just been seen to have both features.
        unsafe { train_runs_avx2(epoch, values, stride, order, losses) };
        return;
    }
    train_runs_with::<Portable>(epoch, values, stride, order, losses);
}

/// [`train_runs_with`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn train_runs_avx2(
    epoch: &Epoch<'_>,
    values: &mut [f32],
    stride: usize,
    order: &[i64],
    losses: &mut [f32],
) {
    train_runs_with::<Avx2>(epoch, values, stride, order, losses);
}

/// Buffers of one thread: each layer's input and output, two gradient buffers and the
/// gradient of a run's parameters.
struct Workspace {
    acts: Vec<Vec<f32>>,
    grad: [Vec<f32>; 2],
    params_grad: Vec<f32>,
    /// Examples per buffer row: the batch size rounded up to a multiple of
    /// [`dense::ROW_BLOCK`] (the rest of a row is padding, with zero gradients).
    row: usize,
}

impl Workspace {
    fn new(net: &DenseNet, batch_size: usize) -> Self {
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

/// Each run of `values` in turn through every step of the epoch: forward and backward pass,
/// then the optimizer's update, all in this thread's workspace.
#[inline(always)]
fn train_runs_with<V: Vector>(
    epoch: &Epoch<'_>,
    values: &mut [f32],
    stride: usize,
    order: &[i64],
    losses: &mut [f32],
) {
    let net = epoch.net;
    let mut ws = Workspace::new(net, epoch.batch_size);
    let runs = values.len() / stride.max(1);
    let n_train = order.len() / runs.max(1);
    let bs = epoch.batch_size.max(1);
    let batches = n_train.div_ceil(bs);
    let p = net.params;
    let states = state_count(epoch.optimizer);
    for k in 0..runs {
        let record = &mut values[k * stride..(k + 1) * stride];
        let (params, state) = record.split_at_mut(p);
        let (s0, s1) = state.split_at_mut(if states > 1 { p } else { state.len() });
        let run_order = &order[k * n_train..(k + 1) * n_train];
        for s in 0..batches {
            let index = &run_order[s * bs..((s + 1) * bs).min(n_train)];
            losses[k * batches + s] = step::<V>(net, epoch.data, params, index, &mut ws);
            host_optim::update(
                epoch.optimizer,
                epoch.steps + s as u64,
                params,
                &mut ws.params_grad,
                s0,
                s1,
            );
        }
    }
}

/// One forward and backward pass of one run on the examples `index`; leaves the gradient of
/// the batch's mean loss in `ws.params_grad` and returns that loss.
#[inline(always)]
fn step<V: Vector>(
    net: &DenseNet,
    data: &HostData,
    params: &[f32],
    index: &[i64],
    ws: &mut Workspace,
) -> f32 {
    let (n, row) = (index.len(), ws.row);
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

/// SELU's constants, as libtorch has them.
const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_SCALE: f32 = 1.050_701;
/// Above this input softplus is the identity (libtorch's default threshold).
const SOFTPLUS_THRESHOLD: f32 = 20.0;

/// `dst = act(src)`, as libtorch computes it (a NaN stays a NaN).
#[inline(always)]
fn activate(act: Activation, src: &[f32], dst: &mut [f32]) {
    let pairs = dst.iter_mut().zip(src);
    match act {
        Activation::Relu => pairs.for_each(|(y, &x)| *y = if x < 0.0 { 0.0 } else { x }),
        Activation::Tanh => pairs.for_each(|(y, &x)| *y = x.tanh()),
        Activation::Sigmoid => pairs.for_each(|(y, &x)| *y = 1.0 / (1.0 + (-x).exp())),
        Activation::Elu => pairs.for_each(|(y, &x)| *y = if x > 0.0 { x } else { x.exp_m1() }),
        Activation::Selu => pairs.for_each(|(y, &x)| {
            *y = if x > 0.0 {
                SELU_SCALE * x
            } else {
                SELU_SCALE * SELU_ALPHA * x.exp_m1()
            }
        }),
        Activation::Softplus => pairs.for_each(|(y, &x)| {
            *y = if x > SOFTPLUS_THRESHOLD {
                x
            } else {
                x.exp().ln_1p()
            }
        }),
    }
}

/// `g ← g·act'(x)` from the activation's input `x` and output `y`, as libtorch's backward
/// passes compute it.
#[inline(always)]
fn activation_grad(act: Activation, x: &[f32], y: &[f32], g: &mut [f32]) {
    let triples = g.iter_mut().zip(x).zip(y);
    match act {
        Activation::Relu => triples.for_each(|((g, _), &y)| *g = if y <= 0.0 { 0.0 } else { *g }),
        Activation::Tanh => triples.for_each(|((g, _), &y)| *g *= 1.0 - y * y),
        Activation::Sigmoid => triples.for_each(|((g, _), &y)| *g *= (1.0 - y) * y),
        Activation::Elu => triples.for_each(|((g, _), &y)| {
            if y <= 0.0 {
                *g *= y + 1.0;
            }
        }),
        Activation::Selu => triples.for_each(|((g, _), &y)| {
            *g *= if y <= 0.0 {
                y + SELU_SCALE * SELU_ALPHA
            } else {
                SELU_SCALE
            }
        }),
        Activation::Softplus => triples.for_each(|((g, &x), _)| {
            if x <= SOFTPLUS_THRESHOLD {
                let z = x.exp();
                *g *= z / (z + 1.0);
            }
        }),
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
