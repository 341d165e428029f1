//! The `train` kind: fits a model to a data set and records how training went.
//!
//! ```yaml
//! train_deep:
//!   kind: train
//!   inputs: {data: sinc}
//!   params:
//!     model: {mlp: {hidden: [5, 10, 10, 10, 10, 10, 5]}}
//!     optimizer: {adam: {lr: 0.001}}
//!     batch_size: 128
//!     epochs: 200
//!     eval_every: 5
//!     checkpoint_every: 50
//! ```
//!
//! Outputs: `metrics.parquet` (one row per evaluated epoch and split: `epoch`, `step`,
//! `split`, `loss`, `accuracy`, then the run's settings as constant columns `batch_size`, `lr`,
//! `optimizer`, `epochs`, `parameters`, `seed`), `model.safetensors` and `model.json` (the final
//! model), and `checkpoints/epoch-NNNN.safetensors` when `checkpoint_every` is above 0 (epoch 0
//! is the initial weights).

use pipeline_engine::stage::{InputSlot, ParamIssue, StageContext, StageError, TypedStage};
use pipeline_reports::table::{ColumnData, Table};
use serde::{Deserialize, Serialize};

use crate::data::dataset::Dataset;
use crate::device::{init_torch, torch_device};
use crate::model::checkpoint::{ModelInfo, save_model};
use crate::model::network::Weights;
use crate::model::plan::plan;
use crate::model::spec::ModelSpec;
use crate::rng::SplitMix64;
use crate::table::write_table;
use crate::train::data::prepare;
use crate::train::fit::{EvalRow, Fit, Schedule};
use crate::train::loss::{Loss, LossSpec};
use crate::train::optim::{Optimizer, OptimizerSpec};

/// The metrics table of a training run.
pub(crate) const METRICS_FILE: &str = "metrics.parquet";
/// Mixed into the seed for the data-order generator, so that it is not the same stream as
/// libtorch's generator would be for the same seed.
const DATA_ORDER_STREAM: u64 = 0x6461_7461_6f72_6465;

/// The `train` stage kind.
pub struct Train;

/// Parameters of `train`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// The model (`{mlp: {...}}` or `{layers: [...]}`).
    pub model: ModelSpec,
    /// The optimizer (default `{adam: {lr: 0.001}}`).
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    /// `auto` (from the data set's task), `mse` or `cross_entropy`.
    #[serde(default)]
    pub loss: LossSpec,
    /// Examples per training step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Passes over the training split.
    pub epochs: usize,
    /// Evaluate both splits every this many epochs (also before training and at the end).
    #[serde(default = "one")]
    pub eval_every: usize,
    /// Examples per evaluation batch (affects speed and memory only).
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
    /// Save weights every this many epochs into `checkpoints/`; 0 = never.
    #[serde(default)]
    pub checkpoint_every: usize,
}

fn default_batch_size() -> usize {
    64
}

fn one() -> usize {
    1
}

fn default_eval_batch_size() -> usize {
    1000
}

impl TypedStage for Train {
    type Params = TrainParams;
    const NAME: &'static str = "train";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str = "trains a model on a data set; writes metrics and checkpoints";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::one("data", "a data set (functions, images)")];
        SLOTS
    }

    fn check(&self, p: &TrainParams) -> Result<(), ParamIssue> {
        p.model.check("model")?;
        p.optimizer.check("optimizer")?;
        for (key, value) in [
            ("batch_size", p.batch_size),
            ("epochs", p.epochs),
            ("eval_every", p.eval_every),
            ("eval_batch_size", p.eval_batch_size),
        ] {
            if value == 0 {
                return Err(ParamIssue::at(key, "must be at least 1"));
            }
        }
        Ok(())
    }

    fn run(&self, p: TrainParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
        init_torch(ctx.threads, ctx.seed);
        let device = torch_device(ctx.device)?;
        let data = Dataset::load(&ctx.inputs.one("data")?.dir)?;
        let loss = Loss::resolve(p.loss, data.info.task)?;
        let plan = plan(&p.model, &data.info.input_shape, data.info.outputs())?;
        let info = ModelInfo::new(&p.model, &plan, &data.info);
        let (train, test) = prepare(&data, device)?;
        drop(data);
        let weights = Weights::init(&plan, device)?;
        tracing::debug!(parameters = info.parameters, "model initialised");
        let fit = Fit {
            ctx,
            plan: &plan,
            weights: &weights,
            optimizer: Optimizer::new(&p.optimizer, &[weights.flat.shallow_clone()])?,
            loss,
            train: &train,
            test: &test,
            schedule: schedule(&p),
            order: SplitMix64::new(ctx.seed ^ DATA_ORDER_STREAM),
            checkpoint_dir: ctx.out_dir.join("checkpoints"),
        };
        let rows = fit.run()?;
        let table = metrics_table(&rows, &p, info.parameters, ctx.seed);
        write_table(&ctx.out_dir.join(METRICS_FILE), &table, Self::NAME, &p)?;
        save_model(ctx.out_dir, &info, &plan, &weights)
    }
}

fn schedule(p: &TrainParams) -> Schedule {
    Schedule {
        batch_size: p.batch_size,
        epochs: p.epochs,
        eval_every: p.eval_every,
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
