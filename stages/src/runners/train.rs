//! Runs the `train` kind (declared in `pipeline_kinds::train`): fits the model to the data
//! set and writes `metrics.parquet`, the final model and the scheduled checkpoints, and
//! `steps.parquet` when steps are logged.

use pipeline_engine::stage::{StageContext, StageError, TypedStage};
use pipeline_kinds::model::plan::plan;
use pipeline_kinds::train::{OnNonFinite, Train, TrainParams};
use pipeline_reports::table::{ColumnData, Table};

use crate::data::dataset::Dataset;
use crate::device::{init_torch, torch_device};
use crate::model::checkpoint::{ModelInfo, save_model};
use crate::model::network::Weights;
use crate::rng::SplitMix64;
use crate::table::write_table;
use crate::train::batched::{self, BatchedFit, Stacked, checkpoint_dir};
use crate::train::data::prepare;
use crate::train::fit::{EvalRow, Fit, Outcome, Schedule, Start};
use crate::train::loss::Loss;
use crate::train::optim::Optimizer;
use crate::train::resume::{self, Snapshots};
use crate::train::step_log::{STEPS_FILE, StepLog};

/// The metrics table of a training run.
pub(crate) const METRICS_FILE: &str = "metrics.parquet";
/// Mixed into the seed for the data-order generator, so that it is not the same stream as
/// libtorch's generator would be for the same seed.
const DATA_ORDER_STREAM: u64 = 0x6461_7461_6f72_6465;

/// Trains the model of `p` on the stage's `data` input and writes its outputs.
pub(crate) fn run(p: TrainParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    let splits = Splits::load(&p, ctx)?;
    if batched::host_trains(&splits.plan, &splits.train) {
        // The host trainer is several times faster for such models, and a run trained by it
        // alone gets exactly the numbers it would get in a batch.
        let mut steps = StepLog::default();
        let log = p.log_steps.then_some(&mut steps);
        fit_batch(&p, std::slice::from_ref(ctx), &splits, log)?
            .pop()
            .unwrap_or_else(|| Err(StageError::bug("a batch of one gave no result")))?;
        return write_steps(ctx, &p, &steps);
    }
    let Splits {
        loss,
        plan,
        info,
        train,
        test,
    } = splits;
    let device = train.x.device();
    let weights = Weights::init(&plan, device)?;
    tracing::debug!(parameters = info.parameters, "model initialised");
    let mut steps = StepLog::default();
    let mut optimizer = Optimizer::new(&p.optimizer, &[weights.flat.shallow_clone()])?;
    let mut order = SplitMix64::new(ctx.seed ^ DATA_ORDER_STREAM);
    let start = resume(
        ctx,
        &p,
        &plan,
        &weights,
        &mut optimizer,
        &mut order,
        &mut steps,
    )?;
    let checkpoint_dir = ctx.resume_dir.join(CHECKPOINTS);
    let fit = Fit {
        ctx,
        plan: &plan,
        weights: &weights,
        optimizer,
        loss,
        train: &train,
        test: &test,
        schedule: schedule(&p),
        order,
        checkpoint_dir: checkpoint_dir.clone(),
        steps: p.log_steps.then_some(&mut steps),
        start,
        snapshots: Snapshots::new(ctx.resume_dir),
        stop_on_nan: p.on_nan == OnNonFinite::Stop,
        identity: identity(&p, ctx.seed),
    };
    let outcome = fit.run()?;
    write_outputs(ctx, &p, &info, &plan, &weights, &outcome, &checkpoint_dir)?;
    write_steps(ctx, &p, &steps)
}

/// Writes the step log, when the pipeline asks for one.
fn write_steps(ctx: &StageContext<'_>, p: &TrainParams, steps: &StepLog) -> Result<(), StageError> {
    if !p.log_steps {
        return Ok(());
    }
    write_table(
        &ctx.out_dir.join(STEPS_FILE),
        &steps.table(),
        Train::NAME,
        p,
    )
}

/// Trains several runs of a fully connected model that differ only in their seeds as one
/// batched computation ([`crate::train::batched`]) and writes each run's outputs as
/// [`run`] would. Returns one result per run.
pub(crate) fn run_batch(p: TrainParams, ctxs: &[StageContext<'_>]) -> Vec<Result<(), StageError>> {
    match train_batch(&p, ctxs) {
        Ok(results) => results,
        Err(e) => ctxs.iter().map(|_| Err(e.clone())).collect(),
    }
}

fn train_batch(
    p: &TrainParams,
    ctxs: &[StageContext<'_>],
) -> Result<Vec<Result<(), StageError>>, StageError> {
    let Some(first) = ctxs.first() else {
        return Ok(Vec::new());
    };
    if p.log_steps {
        return Err(StageError::bug("a training with a step log was batched"));
    }
    fit_batch(p, ctxs, &Splits::load(p, first)?, None)
}

/// What a training works on: the loss, the model and the data, prepared once.
struct Splits {
    loss: Loss,
    plan: pipeline_kinds::model::plan::Plan,
    info: ModelInfo,
    train: crate::train::data::Split,
    test: crate::train::data::Split,
}

impl Splits {
    /// Sets libtorch up for `ctx` (threads, seed) and loads its `data` input on its device.
    fn load(p: &TrainParams, ctx: &StageContext<'_>) -> Result<Self, StageError> {
        init_torch(ctx.threads, ctx.seed);
        let device = torch_device(ctx.device)?;
        let data = Dataset::load(&ctx.inputs.one("data")?.dir)?;
        let loss = Loss::resolve(p.loss, data.info.task)?;
        let plan = plan(&p.model, &data.info.input_shape, data.info.outputs())?;
        let info = ModelInfo::new(&p.model, &plan, &data.info);
        let (train, test) = prepare(&data, device)?;
        Ok(Self {
            loss,
            plan,
            info,
            train,
            test,
        })
    }
}

/// Trains the runs of `ctxs` as one batch and writes each one's outputs; one result per run.
/// A batch of one on the host trainer may keep a step log.
fn fit_batch(
    p: &TrainParams,
    ctxs: &[StageContext<'_>],
    splits: &Splits,
    steps: Option<&mut StepLog>,
) -> Result<Vec<Result<(), StageError>>, StageError> {
    let Splits {
        loss,
        plan,
        info,
        train,
        test,
    } = splits;
    let loss = *loss;
    let device = train.x.device();
    let seeds: Vec<u64> = ctxs.iter().map(|c| c.seed).collect();
    let stacked = Stacked::init(plan, &seeds, device)?;
    // One run's weights at a time, for checkpoints, snapshots and the final models.
    let weights = Weights::zeros(plan, device)?;
    let mut fit = BatchedFit {
        ctxs,
        plan,
        stacked: &stacked,
        optimizer: Optimizer::new(&p.optimizer, &[stacked.flat.shallow_clone()])?,
        loss,
        train,
        test,
        schedule: schedule(p),
        orders: seeds
            .iter()
            .map(|&seed| SplitMix64::new(seed ^ DATA_ORDER_STREAM))
            .collect(),
        stop_on_nan: p.on_nan == OnNonFinite::Stop,
        scratch: &weights,
        snapshots: ctxs
            .iter()
            .map(|c| (Snapshots::new(c.resume_dir), identity(p, c.seed)))
            .collect(),
        steps,
    };
    let start = batched::resume(&mut fit, p.epochs)?;
    let outcomes = fit.run(start)?;
    let mut results = Vec::with_capacity(ctxs.len());
    for (k, (ctx, outcome)) in ctxs.iter().zip(outcomes).enumerate() {
        results.push(outcome.and_then(|outcome| {
            stacked.extract(k, &weights)?;
            write_outputs(ctx, p, info, plan, &weights, &outcome, &checkpoint_dir(ctx))
        }));
    }
    Ok(results)
}

/// Writes a finished run's metrics, checkpoints and model (or, if it diverged, where).
fn write_outputs(
    ctx: &StageContext<'_>,
    p: &TrainParams,
    info: &ModelInfo,
    plan: &pipeline_kinds::model::plan::Plan,
    weights: &Weights,
    outcome: &Outcome,
    checkpoint_dir: &std::path::Path,
) -> Result<(), StageError> {
    let table = metrics_table(&outcome.rows, p, info.parameters, ctx.seed);
    write_table(&ctx.out_dir.join(METRICS_FILE), &table, Train::NAME, p)?;
    move_checkpoints(checkpoint_dir, &ctx.out_dir.join(CHECKPOINTS))?;
    match &outcome.diverged {
        // The weights are no numbers any more: record where, and write no model.
        Some(divergence) => crate::json_file::write_json(&ctx.out_dir.join(DIVERGED), divergence),
        None => save_model(ctx.out_dir, info, plan, weights),
    }
}

/// Written instead of a model when training stopped at a non-finite loss (`on_nan: stop`).
const DIVERGED: &str = "diverged.json";

/// What a run is, for matching resume snapshots: its parameters and seed.
fn identity(p: &TrainParams, seed: u64) -> serde_json::Value {
    serde_json::json!({ "params": p, "seed": seed })
}

/// The folder of scheduled checkpoints, in the resume folder while training (so that those of
/// an interrupted run are kept) and in the outputs at the end.
const CHECKPOINTS: &str = "checkpoints";

/// Continues from the latest resume snapshot, if there is one for this stage's key.
fn resume(
    ctx: &StageContext<'_>,
    p: &TrainParams,
    plan: &pipeline_kinds::model::plan::Plan,
    weights: &Weights,
    optimizer: &mut Optimizer,
    order: &mut SplitMix64,
    steps: &mut StepLog,
) -> Result<Start, StageError> {
    let Some((mut tensors, progress)) = resume::latest(ctx.resume_dir, &identity(p, ctx.seed))
    else {
        return Ok(Start {
            epoch: 0,
            rows: Vec::new(),
        });
    };
    if progress.epoch >= p.epochs {
        return Ok(Start {
            epoch: 0,
            rows: Vec::new(),
        });
    }
    restore_weights(plan, weights, &mut tensors)?;
    optimizer.restore(&mut tensors, progress.steps)?;
    *order = SplitMix64::new(progress.order_state);
    steps.restore(progress.step_rows.clone());
    ctx.note(format!(
        "resumed after epoch {} of {}",
        progress.epoch, p.epochs
    ));
    Ok(Start {
        epoch: progress.epoch,
        rows: progress.rows(),
    })
}

fn restore_weights(
    plan: &pipeline_kinds::model::plan::Plan,
    weights: &Weights,
    saved: &mut std::collections::BTreeMap<String, tch::Tensor>,
) -> Result<(), StageError> {
    let _guard = tch::no_grad_guard();
    for (name, target) in weights.named(plan) {
        let value = saved
            .remove(&name)
            .ok_or_else(|| StageError::bug(format!("the resume snapshot lacks {name}")))?;
        target
            .shallow_clone()
            .f_copy_(&value)
            .map_err(|e| StageError::bug(format!("cannot restore {name}")).caused_by(&e))?;
    }
    Ok(())
}

/// Moves the checkpoints into the outputs (a rename: both folders are in the store).
fn move_checkpoints(from: &std::path::Path, to: &std::path::Path) -> Result<(), StageError> {
    if !from.exists() {
        return Ok(());
    }
    std::fs::rename(from, to).map_err(|e| StageError::io("move checkpoints to", to, &e))
}

fn schedule(p: &TrainParams) -> Schedule {
    Schedule {
        batch_size: p.batch_size,
        epochs: p.epochs,
        eval_every: p.eval_every,
        eval_initial: p.eval_initial,
        eval_batch_size: p.eval_batch_size,
        checkpoint_every: p.checkpoint_every,
    }
}

/// The long-format metrics: one row per evaluation, the run's settings as constant columns.
fn metrics_table(rows: &[EvalRow], p: &TrainParams, parameters: usize, seed: u64) -> Table {
    let mut table = Table::new();
    table
        .push(
            "epoch",
            ColumnData::I64(rows.iter().map(|r| r.epoch as i64).collect()),
        )
        .push(
            "step",
            ColumnData::I64(rows.iter().map(|r| r.step as i64).collect()),
        )
        .push(
            "split",
            ColumnData::Str(rows.iter().map(|r| r.split.to_owned()).collect()),
        )
        .push(
            "loss",
            ColumnData::F64(rows.iter().map(|r| Some(r.score.loss)).collect()),
        )
        .push(
            "accuracy",
            ColumnData::F64(rows.iter().map(|r| r.score.accuracy).collect()),
        );
    table
        .push_constant_i64("batch_size", p.batch_size as i64)
        .push_constant_f64("lr", p.optimizer.lr())
        .push_constant_str("optimizer", p.optimizer.name())
        .push_constant_i64("epochs", p.epochs as i64)
        .push_constant_i64("parameters", parameters as i64)
        .push_constant_i64("seed", i64::from_ne_bytes(seed.to_ne_bytes()));
    table
}

#[cfg(test)]
mod tests;
