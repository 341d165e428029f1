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

mod activation;
mod dense;
mod pass;
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
    /// The number of examples.
    pub(crate) fn len(&self) -> usize {
        self.x.len().checked_div(self.features).unwrap_or(0)
    }

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
    /// Also take each step's gradient norm (for a step log).
    pub(crate) norms: bool,
}

/// What an epoch on the host gives back, step by step (run `k` of step `s` at
/// `s · runs + k`), as the libtorch path records them.
pub(crate) struct EpochLosses {
    /// Each run's batch loss.
    pub(crate) losses: Vec<f32>,
    /// Each run's gradient norm before the update (and before weight decay), when asked for.
    pub(crate) norms: Option<Vec<f32>>,
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

/// Trains every run through one epoch.
pub(crate) fn train_epoch(epoch: &Epoch<'_>, records: &mut Records) -> EpochLosses {
    let stride = records.stride;
    let runs = records.values.len() / stride.max(1);
    let n_train = epoch.order.len() / runs.max(1);
    let batches = n_train.div_ceil(epoch.batch_size.max(1));
    let mut losses = vec![0f32; runs * batches];
    let mut norms = vec![0f32; if epoch.norms { runs * batches } else { 0 }];
    let per_thread = runs.div_ceil(epoch.threads.clamp(1, runs.max(1)));
    let norm_chunk = if epoch.norms { batches * per_thread } else { 0 };
    let mut norm_chunks = norms.chunks_mut(norm_chunk.max(1));
    let work = records
        .values
        .chunks_mut(stride * per_thread)
        .zip(losses.chunks_mut(batches * per_thread))
        .zip(epoch.order.chunks(n_train * per_thread))
        .map(|((values, losses), order)| TrainRuns {
            epoch,
            values,
            stride,
            order,
            losses,
            norms: norm_chunks.next().unwrap_or_default(),
        });
    in_threads(work);
    EpochLosses {
        losses: by_step(&losses, runs, batches),
        norms: epoch.norms.then(|| by_step(&norms, runs, batches)),
    }
}

/// Run-major values (`runs` of `steps` each) in step-major order.
fn by_step(values: &[f32], runs: usize, steps: usize) -> Vec<f32> {
    let mut out = vec![0f32; runs * steps];
    for k in 0..runs {
        for s in 0..steps {
            out[s * runs + k] = values[k * steps + s];
        }
    }
    out
}

/// Every run's `[loss sum, correct answers]` on all of `data`, in batches of `batch`, from
/// its parameters at the start of its record in `params`, as
/// [`crate::train::evaluate::sums`] gives them for a model.
pub(crate) fn evaluate(
    net: &DenseNet,
    data: &HostData,
    params: &Records,
    batch: usize,
    threads: usize,
) -> Vec<[f64; 2]> {
    let stride = params.stride;
    let runs = params.values.len() / stride.max(1);
    let mut sums = vec![[0f64; 2]; runs];
    let per_thread = runs.div_ceil(threads.clamp(1, runs.max(1)));
    let work = params
        .values
        .chunks(stride * per_thread)
        .zip(sums.chunks_mut(per_thread))
        .map(|(values, sums)| EvaluateRuns {
            net,
            data,
            batch: batch.max(1),
            values,
            stride,
            sums,
        });
    in_threads(work);
    sums
}

/// Work that runs with the fastest vector type this processor has (see [`dispatch`]).
trait VectorJob: Send {
    fn run<V: Vector>(self);
}

/// Runs each job in its own thread (the first in this one) and waits for all.
fn in_threads<J: VectorJob>(jobs: impl Iterator<Item = J>) {
    std::thread::scope(|scope| {
        let mut jobs = jobs;
        let first = jobs.next();
        for job in jobs {
            scope.spawn(move || dispatch(job));
        }
        if let Some(job) = first {
            dispatch(job);
        }
    });
}

/// Runs `job` with AVX2 registers where the processor has AVX2 and FMA, else portably.
fn dispatch<J: VectorJob>(job: J) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has just been seen to have both features.
        unsafe { run_with_avx2(job) };
        return;
    }
    job.run::<Portable>();
}

/// `job` compiled for AVX2 and FMA (its `run` is inlined here).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_with_avx2<J: VectorJob>(job: J) {
    job.run::<Avx2>();
}

/// Some runs of a batch through one epoch.
struct TrainRuns<'a, 'e> {
    epoch: &'a Epoch<'e>,
    /// The runs' records, `stride` values each.
    values: &'a mut [f32],
    stride: usize,
    /// Their example orders, one after another.
    order: &'a [i64],
    /// Their batch losses, run after run.
    losses: &'a mut [f32],
    /// Their gradient norms, run after run (empty when not asked for).
    norms: &'a mut [f32],
}

impl VectorJob for TrainRuns<'_, '_> {
    /// Each run in turn through every step of the epoch: forward and backward pass, then the
    /// optimizer's update, all in this thread's workspace.
    #[inline(always)]
    fn run<V: Vector>(self) {
        let (epoch, stride) = (self.epoch, self.stride);
        let net = epoch.net;
        let mut ws = pass::Workspace::new(net, epoch.batch_size);
        let runs = self.values.len() / stride.max(1);
        let n_train = self.order.len() / runs.max(1);
        let bs = epoch.batch_size.max(1);
        let batches = n_train.div_ceil(bs);
        let p = net.params;
        let states = state_count(epoch.optimizer);
        for k in 0..runs {
            let record = &mut self.values[k * stride..(k + 1) * stride];
            let (params, state) = record.split_at_mut(p);
            let (s0, s1) = state.split_at_mut(if states > 1 { p } else { state.len() });
            let run_order = &self.order[k * n_train..(k + 1) * n_train];
            for s in 0..batches {
                let index = &run_order[s * bs..((s + 1) * bs).min(n_train)];
                self.losses[k * batches + s] =
                    pass::step::<V>(net, epoch.data, params, index, &mut ws);
                if let Some(norm) = self.norms.get_mut(k * batches + s) {
                    *norm = ws.params_grad.iter().map(|g| g * g).sum::<f32>().sqrt();
                }
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
}

/// Some runs of a batch scored on a split.
struct EvaluateRuns<'a> {
    net: &'a DenseNet,
    data: &'a HostData,
    batch: usize,
    /// The runs' parameters, `stride` values each.
    values: &'a [f32],
    stride: usize,
    sums: &'a mut [[f64; 2]],
}

impl VectorJob for EvaluateRuns<'_> {
    #[inline(always)]
    fn run<V: Vector>(self) {
        let mut ws = pass::Workspace::new(self.net, self.batch);
        let len = self.data.len();
        let mut index = Vec::with_capacity(self.batch);
        for (params, sums) in self.values.chunks(self.stride).zip(self.sums) {
            let mut start = 0;
            while start < len {
                let end = (start + self.batch).min(len);
                index.clear();
                index.extend(start as i64..end as i64);
                let batch = pass::eval_sums::<V>(self.net, self.data, params, &index, &mut ws);
                sums[0] += batch[0];
                sums[1] += batch[1];
                start = end;
            }
        }
    }
}
