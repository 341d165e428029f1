//! Runs the `interpolate` kind (declared in `pipeline_kinds::interpolate`): evaluates the
//! weights (1 − α)·θa + α·θb over the whole α grid on both splits and writes
//! `interpolation.parquet`.
//!
//! With `a_epoch` or `b_epoch`, that model's weights come from its checkpoint of that epoch
//! instead of its final weights (both inputs may be the same run: its initial to its final
//! weights).
//!
//! One buffer holds the interpolated parameters and one set the interpolated buffers; every α
//! rewrites them with `lerp`, which returns its ends exactly at α = 0 and α = 1, and the
//! evaluation goes through the same code as `train`'s, so the ends of the curve are the two
//! models' own losses. The per-α sums stay on the device and are read back once at the end.

use pipeline_engine::stage::{StageContext, StageError, TypedStage};
use pipeline_kinds::interpolate::{Interpolate, InterpolateParams};
use pipeline_kinds::model::plan::Op;
use pipeline_kinds::predict::SplitName;
use pipeline_reports::table::{ColumnData, Table};
use tch::Tensor;

use crate::analysis::host::{check_finite, read_f64};
use crate::analysis::progress::Ticker;
use crate::analysis::subject::{Subject, model_json, split_label};
use crate::device::init_torch;
use crate::error::TchContext;
use crate::model::checkpoint::{
    ModelInfo, checkpoint_epochs, checkpoint_file, load_model, load_weights,
};
use crate::model::network::{Weights, views};
use crate::table::write_table;
use crate::train::data::Split;
use crate::train::evaluate::{Score, sums};

/// The interpolation table.
pub(crate) const INTERPOLATION_FILE: &str = "interpolation.parquet";

/// Evaluates the line through the models `a` and `b` and writes the table.
pub(crate) fn run(p: InterpolateParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    init_torch(ctx.threads, ctx.seed);
    let mut a = Subject::load(ctx, "a")?;
    let (b_info, b_plan, mut b) = load_model(&ctx.inputs.one("b")?.dir, a.device)?;
    same_architecture(ctx, &a.info, &b_info)?;
    if let Some(epoch) = p.a_epoch {
        a.weights = checkpoint(ctx, "a", &a.plan, epoch, a.device)?;
    }
    if let Some(epoch) = p.b_epoch {
        b = checkpoint(ctx, "b", &b_plan, epoch, a.device)?;
    }
    let grid = p.grid();
    if !grid.contains(&0.0) || !grid.contains(&1.0) {
        return Err(StageError::bug(format!(
            "the grid {grid:?} misses alpha = 0 or 1"
        )));
    }
    let splits = [SplitName::Train, SplitName::Test]
        .into_iter()
        .map(|name| Ok((split_label(name), a.split(name, None)?)))
        .filter(|s| !matches!(s, Ok((_, split)) if split.len == 0))
        .collect::<Result<Vec<(&str, Split)>, StageError>>()?;
    let sums = evaluate_grid(ctx, &a, &b, &grid, &splits, p.eval_batch_size as i64)?;
    let values = read_f64(&sums, "the interpolation results")?;
    let table = rows(&a, &grid, &splits, &values)?;
    write_table(
        &ctx.out_dir.join(INTERPOLATION_FILE),
        &table,
        Interpolate::NAME,
        &p,
    )
}

/// The weights of the run bound to `slot` at its checkpoint of `epoch`; a missing checkpoint is
/// an input error listing the ones there are.
fn checkpoint(
    ctx: &StageContext<'_>,
    slot: &str,
    plan: &pipeline_kinds::model::plan::Plan,
    epoch: usize,
    device: tch::Device,
) -> Result<Weights, StageError> {
    let up = ctx.inputs.one(slot)?;
    let path = checkpoint_file(&up.dir, epoch);
    if !path.is_file() {
        let saved: Vec<String> = checkpoint_epochs(&up.dir)?
            .iter()
            .map(usize::to_string)
            .collect();
        let saved = if saved.is_empty() {
            "none; train it with `checkpoint_every`".to_owned()
        } else {
            saved.join(", ")
        };
        return Err(StageError::input(format!(
            "`{}` has no checkpoint of epoch {epoch} (`{slot}_epoch`); its checkpoints: {saved}",
            up.stage
        )));
    }
    load_weights(&path, plan, device)
}

/// Refuses two models whose descriptions, tensors or input normalizations differ.
fn same_architecture(
    ctx: &StageContext<'_>,
    a: &ModelInfo,
    b: &ModelInfo,
) -> Result<(), StageError> {
    let what = if a.spec != b.spec {
        "their model descriptions differ"
    } else if a.tensors != b.tensors {
        "their tensors differ in names or shapes"
    } else if (&a.input_shape, a.outputs, a.task) != (&b.input_shape, b.outputs, b.task) {
        "they were trained for different inputs or outputs"
    } else if a.normalization != b.normalization {
        "they were trained on differently normalized inputs"
    } else {
        return Ok(());
    };
    let (up_a, up_b) = (ctx.inputs.one("a")?, ctx.inputs.one("b")?);
    Err(StageError::input(format!(
        "cannot interpolate between `{}` ({}) and `{}` ({}): {what}; both must be `train` \
         stages of the same model on the same data",
        up_a.stage,
        model_json(up_a),
        up_b.stage,
        model_json(up_b)
    )))
}

/// `[loss sum, correct]` for every α and split, in that order, as one `[points × splits, 2]`
/// tensor on the device.
fn evaluate_grid(
    ctx: &StageContext<'_>,
    a: &Subject,
    b: &Weights,
    grid: &[f64],
    splits: &[(&str, Split)],
    batch: i64,
) -> Result<Tensor, StageError> {
    let alloc = |t: Result<Tensor, tch::TchError>| t.ctx("allocating interpolated weights");
    let flat = alloc(a.weights.flat.f_zeros_like())?;
    let buffers = a
        .weights
        .buffers
        .iter()
        .map(|t| alloc(t.f_zeros_like()))
        .collect::<Result<Vec<_>, _>>()?;
    let params = views(&a.plan, &flat)?;
    let mut ticker = Ticker::new(ctx, grid.len() as u64, "point");
    let mut results = Vec::with_capacity(grid.len() * splits.len());
    for &alpha in grid {
        lerp(&a.weights.flat, &b.flat, alpha, &flat)?;
        for (mine, (from, to)) in buffers.iter().zip(a.weights.buffers.iter().zip(&b.buffers)) {
            lerp(from, to, alpha, mine)?;
        }
        for (_, split) in splits {
            results.push(sums(&a.plan, &params, &buffers, a.loss, split, batch)?);
        }
        ticker.advance(1, &format!("interpolation: alpha={alpha}"))?;
    }
    Tensor::f_stack(&results, 0).ctx("collecting results")
}

/// `out ← (1 − α)·from + α·to`, exact at α = 0 and 1.
fn lerp(from: &Tensor, to: &Tensor, alpha: f64, out: &Tensor) -> Result<(), StageError> {
    from.f_lerp_scalar_out(out, to, alpha)
        .map(drop)
        .ctx("interpolating weights")
}

/// The long-format table, after checking every value is finite.
fn rows(
    a: &Subject,
    grid: &[f64],
    splits: &[(&str, Split)],
    values: &[f64],
) -> Result<Table, StageError> {
    let (mut alphas, mut names, mut losses, mut accuracies) = (vec![], vec![], vec![], vec![]);
    let pairs = grid.iter().flat_map(|alpha| {
        splits
            .iter()
            .map(move |(name, split)| (*alpha, *name, split))
    });
    for (i, (alpha, name, split)) in pairs.enumerate() {
        let score = Score::from_sums(&values[2 * i..2 * i + 2], a.loss, split.len);
        check_finite(&[score.loss], |_, v| {
            format!(
                "the {name} loss is {v} at alpha = {alpha}{}",
                hint(a, alpha)
            )
        })?;
        alphas.push(Some(alpha));
        names.push(name.to_owned());
        losses.push(Some(score.loss));
        accuracies.push(score.accuracy);
    }
    let mut table = Table::new();
    table
        .push("alpha", ColumnData::F64(alphas))
        .push("split", ColumnData::Str(names))
        .push("loss", ColumnData::F64(losses))
        .push("accuracy", ColumnData::F64(accuracies));
    Ok(table)
}

/// Why a loss may be non-finite away from both models.
fn hint(a: &Subject, alpha: f64) -> &'static str {
    let batch_norm = a
        .plan
        .ops
        .iter()
        .any(|op| matches!(op, Op::BatchNorm { .. }));
    if batch_norm && !(0.0..=1.0).contains(&alpha) {
        " (outside [0, 1] the interpolated batch-norm running variances can turn negative; \
         narrow alpha_min and alpha_max)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests;
