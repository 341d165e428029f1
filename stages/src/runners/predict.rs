//! Runs the `predict` kind (declared in `pipeline_kinds::predict`): evaluates a trained model
//! on a data set split and writes `predictions.parquet`.

use pipeline_engine::stage::{StageContext, StageError, TypedStage};
use pipeline_kinds::predict::{Predict, PredictParams, SplitName};
use pipeline_reports::table::{ColumnData, Table};
use tch::{Device, Kind, Tensor};

use crate::data::dataset::{Dataset, Task};
use crate::device::{init_torch, torch_device};
use crate::error::TchContext;
use crate::model::checkpoint::{ModelInfo, load_model};
use crate::table::write_table;
use crate::train::data::normalize;
use crate::train::evaluate::outputs;

/// The predictions table.
pub(crate) const PREDICTIONS_FILE: &str = "predictions.parquet";

/// Tabulates the model's predictions on the chosen split into the stage's output folder.
pub(crate) fn run(p: PredictParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    init_torch(ctx.threads, ctx.seed);
    let device = torch_device(ctx.device)?;
    let (info, plan, weights) = load_model(&ctx.inputs.one("model")?.dir, device)?;
    let data = Dataset::load(&ctx.inputs.one("data")?.dir)?;
    info.check_data(&data.info)?;
    let (x, y) = match p.split {
        SplitName::Test => (&data.test_x, &data.test_y),
        SplitName::Train => (&data.train_x, &data.train_y),
    };
    let inputs = normalize(x, &info.normalization, device)?;
    let out = outputs(&plan, &weights, &inputs, p.batch_size as i64)?;
    let table = match info.task {
        Task::Regression => regression_table(x, y, &out, &info)?,
        Task::Classification => classification_table(y, &out)?,
    };
    write_table(
        &ctx.out_dir.join(PREDICTIONS_FILE),
        &table,
        Predict::NAME,
        &p,
    )
}

fn regression_table(
    x: &Tensor,
    y: &Tensor,
    out: &Tensor,
    info: &ModelInfo,
) -> Result<Table, StageError> {
    let mut table = Table::new();
    if info.input_shape == [1] {
        table.push("x", floats(x)?);
    } else {
        table.push("index", ColumnData::I64((0..rows(y)).collect()));
    }
    table
        .push("target", floats(y)?)
        .push("prediction", floats(out)?);
    Ok(table)
}

fn classification_table(y: &Tensor, logits: &Tensor) -> Result<Table, StageError> {
    let probs = logits.f_softmax(1, Kind::Float).ctx("softmax")?;
    let (confidence, predicted) = probs.f_max_dim(1, false).ctx("picking predictions")?;
    let mut table = Table::new();
    table
        .push("index", ColumnData::I64((0..rows(y)).collect()))
        .push("label", ColumnData::I64(ints(y)?))
        .push("predicted", ColumnData::I64(ints(&predicted)?))
        .push("confidence", floats(&confidence)?);
    Ok(table)
}

/// The number of rows (first dimension) of `t`.
fn rows(t: &Tensor) -> i64 {
    t.size().first().copied().unwrap_or(0)
}

fn host(t: &Tensor, kind: Kind) -> Result<Tensor, StageError> {
    t.f_to_device(Device::Cpu)
        .and_then(|t| t.f_to_kind(kind))
        .and_then(|t| t.f_reshape([-1]))
        .ctx("reading results")
}

fn floats(t: &Tensor) -> Result<ColumnData, StageError> {
    let values = Vec::<f64>::try_from(&host(t, Kind::Double)?).ctx("reading results")?;
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(StageError::numerical(format!("the model predicts {bad}")));
    }
    Ok(ColumnData::F64(values.into_iter().map(Some).collect()))
}

fn ints(t: &Tensor) -> Result<Vec<i64>, StageError> {
    Vec::<i64>::try_from(&host(t, Kind::Int64)?).ctx("reading results")
}
