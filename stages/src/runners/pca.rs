//! Runs the `pca` kind (declared in `pipeline_kinds::pca`): reads every weight snapshot of
//! every input run, fits one principal component analysis to all of them
//! (`crate::analysis::pca`), and writes `pca.parquet` and `explained.parquet`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pipeline_engine::stage::{StageContext, StageError, TypedStage, UpstreamOutput, short_labels};
use pipeline_kinds::model::plan::Plan;
use pipeline_kinds::pca::{Pca, PcaParams};
use pipeline_kinds::predict::SplitName;
use pipeline_reports::table::{ColumnData, Table};
use tch::{Kind, Tensor};

use crate::analysis::host::check_finite;
use crate::analysis::pca::fit;
use crate::analysis::progress::Ticker;
use crate::analysis::subject::{model_json, split_label};
use crate::device::init_torch;
use crate::error::TchContext;
use crate::json_file::read_json;
use crate::model::checkpoint::{
    MODEL_JSON, MODEL_WEIGHTS, ModelInfo, checkpoint_epochs, checkpoint_file,
};
use crate::runners::train::METRICS_FILE;
use crate::table::write_table;
use crate::tensor_file::{read_tensors, take_checked};

/// The projected snapshots.
pub(crate) const PCA_FILE: &str = "pca.parquet";
/// The variance of every component.
pub(crate) const EXPLAINED_FILE: &str = "explained.parquet";

/// One snapshot: its run, epoch, and the run's loss and accuracy at that epoch.
struct Snapshot {
    run: String,
    epoch: usize,
    loss: Option<f64>,
    accuracy: Option<f64>,
}

/// Projects every snapshot of every run and writes the tables.
pub(crate) fn run(p: PcaParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    init_torch(ctx.threads, ctx.seed);
    let runs = ctx.inputs.many("runs");
    let first = runs
        .first()
        .ok_or_else(|| StageError::bug("pca was given no runs"))?;
    let info = model_info(first)?;
    let plan = info.plan(&first.file(MODEL_JSON))?;
    let selected = select(&plan, p.layer.as_deref(), first)?;
    let mut ticker = Ticker::new(ctx, runs.len() as u64, "run");
    let mut rows = Vec::new();
    let mut snapshots = Vec::new();
    for (up, label) in runs.iter().zip(short_labels(runs)) {
        same_model(&info, first, up)?;
        let scores = scores(up, p.split)?;
        for (epoch, file) in snapshot_files(up, &scores.final_epoch)? {
            rows.push(flat_row(&file, &plan, &selected)?);
            let (loss, accuracy) = scores.at.get(&epoch).copied().unwrap_or((None, None));
            snapshots.push(Snapshot {
                run: label.clone(),
                epoch,
                loss,
                accuracy,
            });
        }
        ticker.advance(1, "pca: reading snapshots")?;
    }
    let matrix = Tensor::f_stack(&rows, 0).ctx("stacking the snapshots")?;
    drop(rows);
    let pca = fit(&matrix, 2)?;
    check_finite(&pca.variances, |j, v| {
        format!("the variance along component {} is {v}", j + 1)
    })?;
    for (snapshot, c) in snapshots.iter().zip(&pca.coordinates) {
        check_finite(c, |j, v| {
            format!(
                "coordinate {} of run {} at epoch {} is {v} (are its weights finite?)",
                j + 1,
                snapshot.run,
                snapshot.epoch
            )
        })?;
    }
    let out = |file: &str| ctx.out_dir.join(file);
    let projected = projection_table(&snapshots, &pca.coordinates);
    write_table(&out(PCA_FILE), &projected, Pca::NAME, &p)?;
    let explained = explained_table(&pca.variances, &pca.ratios());
    write_table(&out(EXPLAINED_FILE), &explained, Pca::NAME, &p)
}

fn model_info(up: &UpstreamOutput) -> Result<ModelInfo, StageError> {
    read_json(&up.file(MODEL_JSON), "model description")
}

/// The indices of the parameters taken: all, or those of `layer`.
fn select(plan: &Plan, layer: Option<&str>, up: &UpstreamOutput) -> Result<Vec<usize>, StageError> {
    let Some(layer) = layer else {
        return Ok((0..plan.params.len()).collect());
    };
    let prefix = format!("{layer}.");
    let chosen: Vec<usize> = (0..plan.params.len())
        .filter(|&i| plan.params[i].name.starts_with(&prefix))
        .collect();
    if chosen.is_empty() {
        let mut layers: Vec<&str> = plan
            .params
            .iter()
            .filter_map(|t| t.name.rsplit_once('.').map(|(l, _)| l))
            .collect();
        layers.dedup();
        return Err(StageError::input(format!(
            "the model of `{}` has no layer `{layer}` with parameters (it has: {})",
            up.stage,
            layers.join(", ")
        )));
    }
    Ok(chosen)
}

/// Refuses a run whose model differs from the first run's.
fn same_model(
    first: &ModelInfo,
    first_up: &UpstreamOutput,
    up: &UpstreamOutput,
) -> Result<(), StageError> {
    let info = model_info(up)?;
    if info.tensors == first.tensors && info.spec == first.spec {
        return Ok(());
    }
    Err(StageError::input(format!(
        "`{}` ({}) has another model than `{}`; all runs of one analysis must share it",
        up.stage,
        model_json(up),
        first_up.stage
    )))
}

/// A run's loss and accuracy by evaluated epoch on one split, and its last epoch.
struct Scores {
    at: BTreeMap<usize, (Option<f64>, Option<f64>)>,
    final_epoch: Option<usize>,
}

fn scores(up: &UpstreamOutput, split: SplitName) -> Result<Scores, StageError> {
    let path = up.file(METRICS_FILE);
    let table_error = |e: pipeline_reports::TableError| {
        StageError::input(format!("cannot read the metrics of `{}`", up.stage)).caused_by(&e)
    };
    let table = Table::read_parquet(&path).map_err(table_error)?;
    let final_epoch = table
        .i64s("epochs")
        .map_err(table_error)?
        .first()
        .and_then(|&e| usize::try_from(e).ok());
    let rows = table
        .filter_eq("split", split_label(split))
        .map_err(table_error)?;
    let epochs = rows.i64s("epoch").map_err(table_error)?;
    let losses = rows.f64s("loss").map_err(table_error)?;
    let accuracies = rows.f64s("accuracy").map_err(table_error)?;
    let at = epochs
        .into_iter()
        .zip(losses.into_iter().zip(accuracies))
        .filter_map(|(e, scores)| Some((usize::try_from(e).ok()?, scores)))
        .collect();
    Ok(Scores { at, final_epoch })
}

/// A run's snapshots by epoch: its checkpoints, and its final weights when the last epoch was
/// not checkpointed.
fn snapshot_files(
    up: &UpstreamOutput,
    final_epoch: &Option<usize>,
) -> Result<Vec<(usize, PathBuf)>, StageError> {
    let epochs = checkpoint_epochs(&up.dir)?;
    if epochs.is_empty() {
        return Err(StageError::input(format!(
            "`{}` saved no checkpoints; train it with `checkpoint_every` above 0",
            up.stage
        )));
    }
    let mut files: Vec<(usize, PathBuf)> = epochs
        .iter()
        .map(|&e| (e, checkpoint_file(&up.dir, e)))
        .collect();
    if let Some(last) = *final_epoch
        && epochs.last().is_some_and(|&e| e < last)
    {
        files.push((last, up.file(MODEL_WEIGHTS)));
    }
    Ok(files)
}

/// The chosen parameters of the weights file at `path`, flattened in order into one `f64` row.
fn flat_row(path: &Path, plan: &Plan, selected: &[usize]) -> Result<Tensor, StageError> {
    let mut stored = read_tensors(path)?;
    let parts = selected
        .iter()
        .map(|&i| {
            let spec = &plan.params[i];
            take_checked(&mut stored, path, &spec.name, Kind::Float, &spec.shape)?
                .f_reshape([-1])
                .ctx("flattening a snapshot")
        })
        .collect::<Result<Vec<_>, _>>()?;
    Tensor::f_cat(&parts, 0)
        .and_then(|t| t.f_to_kind(Kind::Double))
        .ctx("flattening a snapshot")
}

/// `run`, `epoch`, `pc1`, `pc2`, `loss`, `accuracy`.
fn projection_table(snapshots: &[Snapshot], coordinates: &[Vec<f64>]) -> Table {
    let coordinate =
        |j: usize| ColumnData::F64(coordinates.iter().map(|c| c.get(j).copied()).collect());
    let mut table = Table::new();
    table
        .push(
            "run",
            ColumnData::Str(snapshots.iter().map(|s| s.run.clone()).collect()),
        )
        .push(
            "epoch",
            ColumnData::I64(snapshots.iter().map(|s| s.epoch as i64).collect()),
        )
        .push("pc1", coordinate(0))
        .push("pc2", coordinate(1))
        .push(
            "loss",
            ColumnData::F64(snapshots.iter().map(|s| s.loss).collect()),
        )
        .push(
            "accuracy",
            ColumnData::F64(snapshots.iter().map(|s| s.accuracy).collect()),
        );
    table
}

/// `component`, `variance`, `ratio`, `cumulative`.
fn explained_table(variances: &[f64], ratios: &[f64]) -> Table {
    let cumulative: Vec<Option<f64>> = ratios
        .iter()
        .scan(0.0, |sum, r| {
            *sum += r;
            Some(Some(*sum))
        })
        .collect();
    let mut table = Table::new();
    table
        .push(
            "component",
            ColumnData::I64((1..=variances.len() as i64).collect()),
        )
        .push(
            "variance",
            ColumnData::F64(variances.iter().copied().map(Some).collect()),
        )
        .push(
            "ratio",
            ColumnData::F64(ratios.iter().copied().map(Some).collect()),
        )
        .push("cumulative", ColumnData::F64(cumulative));
    table
}

#[cfg(test)]
mod tests;
