//! Fixed workloads that time this project's training and analysis code, for
//! `pipeline bench` (through `pipeline-worker bench`).
//!
//! The workloads mirror the PyTorch reference script the bench compares against (its README
//! lists them): the same models, optimizers, batch sizes and amounts of work on random inputs
//! (or the sinc curve), timed around the loop only, after a warm-up, as the reference times
//! its own. Two more compare a sweep over seeds trained one model at a time with the same
//! sweep trained as one batch ([`crate::train::batched`]). Each prints
//! `name<TAB>seconds<TAB>units<TAB>units/s`, the reference's format.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use pipeline_engine::stage::{Device, NoEvents, StageContext, StageError, StageInputs};
use pipeline_kinds::model::plan::{Plan, plan};
use pipeline_kinds::model::spec::ModelSpec;
use pipeline_kinds::optim::OptimizerSpec;
use serde_json::json;
use tch::{Kind, Tensor};

use crate::analysis::flat_loss::FlatLoss;
use crate::analysis::input_grad::{InputModel, figures};
use crate::analysis::progress::Ticker;
use crate::analysis::random_box::sampled_loss_sums;
use crate::error::TchContext;
use crate::model::network::Weights;
use crate::rng::SplitMix64;
use crate::train::batched::{BatchStart, BatchedFit, Stacked};
use crate::train::data::Split;
use crate::train::fit::{Fit, Schedule, Start};
use crate::train::loss::Loss;
use crate::train::optim::Optimizer;
use crate::train::resume::Snapshots;

/// The deep sinc MLP's hidden widths (571 parameters).
const DEEP: &[usize] = &[5, 10, 10, 10, 10, 10, 5];
/// Seeds in the batched sweep.
const SWEEP: usize = 100;
/// Seeds trained one at a time for the comparison (the rate per model-step does not depend
/// on how many; fewer keep the bench short).
const ALONE: usize = 5;

/// One timed workload.
pub struct Timing {
    /// The workload's name (the reference's where it has one).
    pub name: &'static str,
    /// Seconds the timed part took.
    pub seconds: f64,
    /// Units of work done (steps, samples, perturbations, model-steps).
    pub units: u64,
}

/// The workloads, by name, with a line saying what each times.
pub const WORKLOADS: &[(&str, &str)] = &[
    (
        "sinc_deep_steps",
        "deep sinc MLP, Adam, batch 128: 2,000 steps, as a run alone trains (host trainer)",
    ),
    (
        "sinc_deep_steps_libtorch",
        "the same through libtorch's training loop",
    ),
    (
        "sinc_shallow_steps",
        "MLP 1-190-1, Adam, batch 128: 2,000 steps (host trainer)",
    ),
    (
        "sinc_shallow_steps_libtorch",
        "the same through libtorch's training loop",
    ),
    (
        "mnist_cnn_epoch",
        "conv(16, 3x3)+linear, Adam, batch 64: 60,000 samples",
    ),
    (
        "mnist_mlp_epoch",
        "MLP 784-128-128-10, Adam, batch 64: 60,000 samples",
    ),
    (
        "cifar_cnn_epoch",
        "Keras CIFAR CNN, RMSprop, batch 32: 10,000 samples",
    ),
    (
        "sensitivity",
        "input-gradient norms of the MNIST CNN: 10,000 samples",
    ),
    (
        "sharpness_1000",
        "MNIST CNN loss on 1,000 images at 1,000 random perturbations",
    ),
    (
        "sinc_seeds_alone",
        "deep sinc MLP, one seed at a time (host trainer): model-steps",
    ),
    (
        "sinc_seeds_alone_libtorch",
        "deep sinc MLP, one seed at a time through libtorch's loop: model-steps",
    ),
    (
        "sinc_seeds_batched",
        "deep sinc MLP, 100 seeds as one batch: model-steps",
    ),
];

/// Runs the workload `name` with `threads` intra-op threads.
pub fn run(name: &str, threads: usize) -> Result<Timing, StageError> {
    tch::set_num_threads(i32::try_from(threads.max(1)).unwrap_or(i32::MAX));
    tch::manual_seed(0);
    let (seconds, units) = match name {
        "sinc_deep_steps" => sinc_steps(DEEP, Trainer::Host)?,
        "sinc_deep_steps_libtorch" => sinc_steps(DEEP, Trainer::Libtorch)?,
        "sinc_shallow_steps" => sinc_steps(&[190], Trainer::Host)?,
        "sinc_shallow_steps_libtorch" => sinc_steps(&[190], Trainer::Libtorch)?,
        "mnist_cnn_epoch" => image_epoch(mnist_cnn(), 60_000, [1, 28, 28], adam(), 64)?,
        "mnist_mlp_epoch" => image_epoch(mlp(&[128, 128]), 60_000, [1, 28, 28], adam(), 64)?,
        "cifar_cnn_epoch" => image_epoch(cifar_cnn(), 10_000, [3, 32, 32], rmsprop(), 32)?,
        "sensitivity" => sensitivity()?,
        "sharpness_1000" => sharpness()?,
        "sinc_seeds_alone" => seeds_alone(Trainer::Host)?,
        "sinc_seeds_alone_libtorch" => seeds_alone(Trainer::Libtorch)?,
        "sinc_seeds_batched" => seeds_batched()?,
        other => {
            return Err(StageError::input(format!(
                "no workload `{other}`; known: {}",
                WORKLOADS.iter().map(|w| w.0).collect::<Vec<_>>().join(", ")
            )));
        }
    };
    let name = WORKLOADS.iter().find(|w| w.0 == name).map_or("?", |w| w.0);
    Ok(Timing {
        name,
        seconds,
        units,
    })
}

fn model(value: serde_json::Value) -> ModelSpec {
    serde_json::from_value(value).unwrap_or(ModelSpec::Layers(Vec::new()))
}

fn mlp(hidden: &[usize]) -> ModelSpec {
    model(json!({"mlp": {"hidden": hidden}}))
}

fn mnist_cnn() -> ModelSpec {
    model(
        json!({"layers": [{"conv": {"filters": 16, "kernel": 3}}, "relu", "flatten", {"dense": 10}]}),
    )
}

fn cifar_cnn() -> ModelSpec {
    model(json!({"layers": [
        {"conv": {"filters": 32, "kernel": 3, "padding": "same"}}, "relu",
        {"conv": {"filters": 32, "kernel": 3}}, "relu", {"maxpool": 2},
        {"conv": {"filters": 64, "kernel": 3, "padding": "same"}}, "relu",
        {"conv": {"filters": 64, "kernel": 3}}, "relu", {"maxpool": 2},
        "flatten", {"dense": 512}, "relu", {"dense": 10}]}))
}

fn adam() -> OptimizerSpec {
    OptimizerSpec::adam(1e-3)
}

fn rmsprop() -> OptimizerSpec {
    serde_json::from_value(json!({"rmsprop": {"lr": 1e-4}})).unwrap_or_else(|_| adam())
}

/// 10,000 points of sin(5πx)/(5πx) on [0.0001, 1].
fn sinc_split() -> Result<Split, StageError> {
    let x = Tensor::f_linspace(0.0001, 1.0, 10_000, (Kind::Float, tch::Device::Cpu))
        .and_then(|x| x.f_unsqueeze(1))
        .ctx("making sinc inputs")?;
    let y = (|| {
        let t = x.f_mul_scalar(5.0 * std::f64::consts::PI)?;
        t.f_sin()?.f_div(&t)
    })()
    .ctx("making sinc targets")?;
    Ok(Split { x, y, len: 10_000 })
}

/// `n` random images of `shape` with random labels of 10 classes.
fn random_images(n: i64, shape: [i64; 3]) -> Result<Split, StageError> {
    let options = (Kind::Float, tch::Device::Cpu);
    let x = Tensor::f_rand([n, shape[0], shape[1], shape[2]], options).ctx("making images")?;
    let y = Tensor::f_randint(10, [n], (Kind::Int64, tch::Device::Cpu)).ctx("making labels")?;
    Ok(Split { x, y, len: n })
}

fn empty_like(split: &Split) -> Result<Split, StageError> {
    let slice = |t: &Tensor| t.f_narrow(0, 0, 0).ctx("making an empty split");
    Ok(Split {
        x: slice(&split.x)?,
        y: slice(&split.y)?,
        len: 0,
    })
}

/// A scratch folder for the contexts the training code needs (nothing is written to it).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, StageError> {
        let dir = std::env::temp_dir().join(format!("pipeline-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| StageError::io("create", &dir, &e))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What every workload's context shares.
struct Env {
    scratch: Scratch,
    inputs: StageInputs,
    cancel: AtomicBool,
}

impl Env {
    fn new() -> Result<Self, StageError> {
        Ok(Self {
            scratch: Scratch::new()?,
            inputs: StageInputs::default(),
            cancel: AtomicBool::new(false),
        })
    }

    fn ctx(&self, seed: u64) -> StageContext<'_> {
        StageContext {
            stage: "bench",
            pipeline: "bench",
            inputs: &self.inputs,
            out_dir: &self.scratch.0,
            resume_dir: &self.scratch.0,
            workspace: &self.scratch.0,
            seed,
            threads: 1,
            device: Device::Cpu,
            events: &NoEvents,
            cancel: &self.cancel,
        }
    }
}

fn schedule(batch_size: usize, epochs: usize) -> Schedule {
    Schedule {
        batch_size,
        epochs,
        eval_every: epochs.max(1),
        eval_initial: false,
        eval_batch_size: 1000,
        checkpoint_every: 0,
    }
}

/// Trains a fresh model of `plan` on `train` for `epochs` with the training loop alone;
/// returns the steps taken.
#[expect(clippy::too_many_arguments, reason = "the facts of one training")]
fn train(
    env: &Env,
    plan: &Plan,
    optimizer: &OptimizerSpec,
    loss: Loss,
    train: &Split,
    test: &Split,
    batch_size: usize,
    epochs: usize,
    seed: u64,
) -> Result<u64, StageError> {
    tch::manual_seed(i64::from_ne_bytes(seed.to_ne_bytes()));
    let weights = Weights::init(plan, tch::Device::Cpu)?;
    let ctx = env.ctx(seed);
    let fit = Fit {
        ctx: &ctx,
        plan,
        weights: &weights,
        optimizer: Optimizer::new(optimizer, &[weights.flat.shallow_clone()])?,
        loss,
        train,
        test,
        schedule: schedule(batch_size, epochs),
        order: SplitMix64::new(seed),
        checkpoint_dir: env.scratch.0.join("checkpoints"),
        steps: None,
        start: Start {
            epoch: 0,
            rows: Vec::new(),
        },
        snapshots: Snapshots::new(&env.scratch.0),
        stop_on_nan: false,
        identity: serde_json::Value::Null,
    };
    fit.train_only()
}

/// Which code trains a small fully connected model.
#[derive(Clone, Copy)]
enum Trainer {
    /// The host trainer ([`crate::train::batched`]), as `train` stages run such models.
    Host,
    /// libtorch's training loop ([`Fit`]), as they ran before the host trainer.
    Libtorch,
}

/// Trains a fresh deep sinc-like MLP of `plan` per seed, one after another, for `epochs`
/// each with `trainer`; returns the model-steps taken.
fn sinc_runs(
    env: &Env,
    plan: &Plan,
    data: &Split,
    seeds: &[u64],
    epochs: usize,
    trainer: Trainer,
) -> Result<u64, StageError> {
    let test = empty_like(data)?;
    let mut steps = 0;
    for &seed in seeds {
        steps += match trainer {
            Trainer::Host => train_batch(env, plan, data, &[seed], epochs)?,
            Trainer::Libtorch => train(
                env,
                plan,
                &adam(),
                Loss::Mse,
                data,
                &test,
                128,
                epochs,
                seed,
            )?,
        };
    }
    Ok(steps)
}

/// At least 2,000 steps of batch 128 on the sinc data (26 whole epochs of 79 steps), after
/// a warm-up epoch.
fn sinc_steps(hidden: &[usize], trainer: Trainer) -> Result<(f64, u64), StageError> {
    let env = Env::new()?;
    let data = sinc_split()?;
    let plan = plan(&mlp(hidden), &[1], 1)?;
    sinc_runs(&env, &plan, &data, &[1], 1, trainer)?;
    let start = Instant::now();
    let steps = sinc_runs(&env, &plan, &data, &[0], 26, trainer)?;
    Ok((start.elapsed().as_secs_f64(), steps))
}

/// One shuffled epoch of cross-entropy training on `n` random images, after a warm-up on
/// the first 5 batches.
fn image_epoch(
    spec: ModelSpec,
    n: i64,
    shape: [i64; 3],
    optimizer: OptimizerSpec,
    batch: usize,
) -> Result<(f64, u64), StageError> {
    let env = Env::new()?;
    let data = random_images(n, shape)?;
    let test = empty_like(&data)?;
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let plan = plan(&spec, &dims, 10)?;
    let warm = Split {
        x: data.x.f_narrow(0, 0, 5 * batch as i64).ctx("warm-up")?,
        y: data.y.f_narrow(0, 0, 5 * batch as i64).ctx("warm-up")?,
        len: 5 * batch as i64,
    };
    let ce = Loss::CrossEntropy;
    train(&env, &plan, &optimizer, ce, &warm, &test, batch, 1, 1)?;
    let start = Instant::now();
    train(&env, &plan, &optimizer, ce, &data, &test, batch, 1, 0)?;
    Ok((start.elapsed().as_secs_f64(), n as u64))
}

/// The MNIST CNN with fresh weights, and its parameters as one flat vector.
fn cnn_subject() -> Result<(Plan, Weights), StageError> {
    let plan = plan(&mnist_cnn(), &[1, 28, 28], 10)?;
    let weights = Weights::init(&plan, tch::Device::Cpu)?;
    Ok((plan, weights))
}

/// Each example's input-gradient norm over 10,000 images in batches of 1,000, after a
/// warm-up batch.
fn sensitivity() -> Result<(f64, u64), StageError> {
    let (plan, weights) = cnn_subject()?;
    let params: Vec<Tensor> = weights.params.iter().map(Tensor::detach).collect();
    let model = InputModel {
        plan: &plan,
        params: &params,
        buffers: &weights.buffers,
        loss: Loss::CrossEntropy,
    };
    let data = random_images(10_000, [1, 28, 28])?;
    let measure = |count: i64| -> Result<f64, StageError> {
        let mut total = 0.0;
        let mut start = 0;
        while start < count {
            let x = data.x.f_narrow(0, start, 1000).ctx("slicing")?;
            let y = data.y.f_narrow(0, start, 1000).ctx("slicing")?;
            total += figures(&model, &x, &y, false)?
                .grad_norm
                .f_square()
                .and_then(|n| n.f_sum(Kind::Double))
                .and_then(|n| n.f_double_value(&[]))
                .ctx("reading norms")?;
            start += 1000;
        }
        Ok(total.sqrt())
    };
    measure(1000)?;
    let start = Instant::now();
    measure(10_000)?;
    Ok((start.elapsed().as_secs_f64(), 10_000))
}

/// The loss on 1,000 images at 1,000 points drawn uniformly from the box of half-width 1e-4
/// around the weights, after 5 warm-up samples.
fn sharpness() -> Result<(f64, u64), StageError> {
    let env = Env::new()?;
    let ctx = env.ctx(0);
    let (plan, weights) = cnn_subject()?;
    let examples = random_images(1000, [1, 28, 28])?;
    let f = FlatLoss::new(&plan, &weights.buffers, Loss::CrossEntropy, &examples, 1000);
    let theta = weights.flat.f_detach_copy().ctx("copying weights")?;
    let half_width = theta.f_full_like(1e-4).ctx("making the box")?;
    let mut ticker = Ticker::new(&ctx, 1005, "perturbations");
    sampled_loss_sums(&f, &theta, &half_width, 5, &mut ticker)?;
    let start = Instant::now();
    sampled_loss_sums(&f, &theta, &half_width, 1000, &mut ticker)?;
    Ok((start.elapsed().as_secs_f64(), 1000))
}

/// Epochs of each seed in the sweep comparison (the shipped sweeps train for hundreds; a
/// batch's set-up and final evaluation weigh too much in two).
const SWEEP_EPOCHS: usize = 20;

/// [`ALONE`] seeds of the deep sinc MLP trained one after another, [`SWEEP_EPOCHS`] each.
fn seeds_alone(trainer: Trainer) -> Result<(f64, u64), StageError> {
    let env = Env::new()?;
    let data = sinc_split()?;
    let plan = plan(&mlp(DEEP), &[1], 1)?;
    sinc_runs(&env, &plan, &data, &[99], 1, trainer)?;
    let start = Instant::now();
    let seeds: Vec<u64> = (0..ALONE as u64).collect();
    let steps = sinc_runs(&env, &plan, &data, &seeds, SWEEP_EPOCHS, trainer)?;
    Ok((start.elapsed().as_secs_f64(), steps))
}

/// [`SWEEP`] seeds of the deep sinc MLP trained as one batch, [`SWEEP_EPOCHS`] each, with
/// the batched evaluation at the end (a whole batched run).
fn seeds_batched() -> Result<(f64, u64), StageError> {
    let env = Env::new()?;
    let data = sinc_split()?;
    let plan = plan(&mlp(DEEP), &[1], 1)?;
    let seeds: Vec<u64> = (0..SWEEP as u64).collect();
    train_batch(&env, &plan, &data, &seeds, 1)?;
    let start = Instant::now();
    let model_steps = train_batch(&env, &plan, &data, &seeds, SWEEP_EPOCHS)?;
    Ok((start.elapsed().as_secs_f64(), model_steps))
}

/// Trains fresh models of `plan` (MSE, Adam, batch 128), one per seed, as one batch (the host
/// trainer for a small MLP), with an evaluation of the training split at the end, as a
/// `train` stage does; returns the model-steps taken.
fn train_batch(
    env: &Env,
    plan: &Plan,
    data: &Split,
    seeds: &[u64],
    epochs: usize,
) -> Result<u64, StageError> {
    let test = empty_like(data)?;
    let ctxs: Vec<StageContext<'_>> = seeds.iter().map(|&s| env.ctx(s)).collect();
    let stacked = Stacked::init(plan, seeds, tch::Device::Cpu)?;
    let scratch = Weights::zeros(plan, tch::Device::Cpu)?;
    let fit = BatchedFit {
        ctxs: &ctxs,
        plan,
        stacked: &stacked,
        optimizer: Optimizer::new(&adam(), &[stacked.flat.shallow_clone()])?,
        loss: Loss::Mse,
        train: data,
        test: &test,
        schedule: schedule(128, epochs),
        orders: seeds.iter().map(|&s| SplitMix64::new(s)).collect(),
        stop_on_nan: false,
        scratch: &scratch,
        snapshots: Vec::new(),
        steps: None,
    };
    for outcome in fit.run(BatchStart::fresh(seeds.len()))? {
        outcome?;
    }
    let steps_per_run = epochs as u64 * (data.len as u64).div_ceil(128);
    Ok(steps_per_run * seeds.len() as u64)
}
