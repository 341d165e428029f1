//! Runs the `critical_point` kind (declared in `pipeline_kinds::critical_point`): descends
//! from a trained model on half its squared gradient norm (`crate::analysis::critical`), then
//! measures the minimal ratio of the point reached by random perturbations and from the exact
//! Hessian (`crate::analysis::minimal_ratio`, `crate::analysis::second_order`), and writes
//! `critical_point.parquet`, `trace.parquet`, `eigenvalues.parquet` and the point itself as a
//! model.
//!
//! The model, its buffers and the examples are converted to `f64` once, and every step works
//! on the whole training split (or its first `train_limit` examples) as one batch.

use std::time::Instant;

use pipeline_engine::stage::{StageContext, StageError, TypedStage};
use pipeline_kinds::critical_point::{CriticalPoint, CriticalPointParams, MAX_HESSIAN_PARAMETERS};
use pipeline_kinds::predict::SplitName;
use pipeline_reports::table::{ColumnData, Table};
use tch::{Kind, Tensor};

use crate::analysis::critical::{Budget, Descent, descend};
use crate::analysis::flat_loss::FlatLoss;
use crate::analysis::host::check_finite;
use crate::analysis::minimal_ratio::{Spectrum, sampled_ratio};
use crate::analysis::progress::Ticker;
use crate::analysis::second_order::{eigenvalues, symmetrized};
use crate::analysis::subject::{Subject, model_json};
use crate::device::init_torch;
use crate::error::TchContext;
use crate::model::checkpoint::save_model;
use crate::model::network::Weights;
use crate::table::write_table;
use crate::train::data::Split;
use crate::train::loss::Loss;

/// The one-row-per-definition result table.
pub(crate) const CRITICAL_FILE: &str = "critical_point.parquet";
/// The descent's loss and gradient norm at every iterate.
pub(crate) const TRACE_FILE: &str = "trace.parquet";
/// The Hessian's eigenvalues.
pub(crate) const EIGENVALUES_FILE: &str = "eigenvalues.parquet";

/// What the stage found.
struct Findings {
    descent: Descent,
    initial: (f64, f64),
    sampled: f64,
    spectrum: Spectrum,
    eigenvalues: Vec<f64>,
    parameters: usize,
    examples: i64,
}

/// Finds a critical point near the trained model, measures it and writes the tables.
pub(crate) fn run(p: CriticalPointParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    init_torch(ctx.threads, ctx.seed);
    let subject = Subject::load(ctx, "model")?;
    check_subject(ctx, &subject)?;
    let examples = in_f64(&subject.split(SplitName::Train, p.train_limit)?)?;
    if examples.len == 0 {
        return Err(StageError::input(
            "the data set's training split is empty: there is nothing to measure on",
        ));
    }
    let buffers = subject
        .weights
        .buffers
        .iter()
        .map(|b| b.f_to_kind(Kind::Double))
        .collect::<Result<Vec<_>, _>>()
        .ctx("converting buffers")?;
    let f = FlatLoss::new(
        &subject.plan,
        &buffers,
        subject.loss,
        &examples,
        examples.len,
    );
    let start = subject
        .weights
        .flat
        .f_to_kind(Kind::Double)
        .ctx("converting the weights to f64")?;
    let findings = find(ctx, &p, &f, &start)?;
    write_outputs(ctx, &p, &subject, &findings)
}

/// Refuses classification models and models too large for an exact Hessian.
fn check_subject(ctx: &StageContext<'_>, subject: &Subject) -> Result<(), StageError> {
    let up = ctx.inputs.one("model")?;
    if subject.loss != Loss::Mse {
        return Err(StageError::input(format!(
            "`{}` ({}) is a classification model; critical_point studies regression models \
             trained with MSE",
            up.stage,
            model_json(up)
        )));
    }
    let n = subject.plan.parameter_count();
    if n > MAX_HESSIAN_PARAMETERS {
        return Err(StageError::input(format!(
            "`{}` has {n} parameters; an exact Hessian is computed for at most \
             {MAX_HESSIAN_PARAMETERS}",
            up.stage
        )));
    }
    Ok(())
}

/// A copy of `split` in `f64` (targets too; class labels stay integers).
fn in_f64(split: &Split) -> Result<Split, StageError> {
    let convert = |t: &Tensor| {
        if t.kind() == Kind::Int64 {
            Ok(t.shallow_clone())
        } else {
            t.f_to_kind(Kind::Double)
        }
    };
    Ok(Split {
        x: convert(&split.x).ctx("converting examples to f64")?,
        y: convert(&split.y).ctx("converting targets to f64")?,
        len: split.len,
    })
}

/// The descent from `start`, the sampled ratio and the spectrum.
fn find(
    ctx: &StageContext<'_>,
    p: &CriticalPointParams,
    f: &FlatLoss<'_>,
    start: &Tensor,
) -> Result<Findings, StageError> {
    let parameters = f.plan.parameter_count();
    let total = (p.max_steps + p.samples + parameters) as u64;
    let mut ticker = Ticker::new(ctx, total, "step");
    let budget = Budget {
        optimizer: &p.optimizer,
        max_steps: p.max_steps,
        threshold: p.threshold,
    };
    let descent = descend(f, start, &budget, &mut ticker)?;
    let first = descent.trace.first().copied();
    let initial = first.map_or((f64::NAN, f64::NAN), |r| (r.loss, r.grad_norm));
    let sampled = sampled_ratio(f, &descent.point, p.radius, p.samples, &mut ticker)?;
    let started = Instant::now();
    let hessian = symmetrized(&f.hessian(&descent.point, &mut ticker)?)?;
    let eigenvalues = eigenvalues(&hessian)?;
    let seconds = started.elapsed().as_secs_f64();
    check_finite(&eigenvalues, |i, v| {
        format!("Hessian eigenvalue {i} is {v} at the critical point")
    })?;
    ctx.note(format!(
        "exact Hessian of {parameters} parameters and its eigenvalues in {seconds:.3} s"
    ));
    tracing::debug!(parameters, seconds, "exact Hessian");
    Ok(Findings {
        spectrum: Spectrum::of(&eigenvalues, p.tau),
        descent,
        initial,
        sampled,
        eigenvalues,
        parameters,
        examples: f.examples.len,
    })
}

/// Writes the three tables and the point found as a model.
fn write_outputs(
    ctx: &StageContext<'_>,
    p: &CriticalPointParams,
    subject: &Subject,
    found: &Findings,
) -> Result<(), StageError> {
    let out = |file: &str| ctx.out_dir.join(file);
    write_table(
        &out(CRITICAL_FILE),
        &result_table(p, found),
        CriticalPoint::NAME,
        p,
    )?;
    write_table(
        &out(TRACE_FILE),
        &trace_table(&found.descent),
        CriticalPoint::NAME,
        p,
    )?;
    let eigen = eigenvalue_table(&found.eigenvalues);
    write_table(&out(EIGENVALUES_FILE), &eigen, CriticalPoint::NAME, p)?;
    save_point(ctx, subject, &found.descent.point)
}

/// Two rows, `sampled` and `hessian`, with every figure of the point as constant columns.
fn result_table(p: &CriticalPointParams, found: &Findings) -> Table {
    let (best, spectrum) = (found.descent.best, found.spectrum);
    let count = |n: usize| n as i64;
    let mut table = Table::new();
    table
        .push(
            "definition",
            ColumnData::Str(vec!["sampled".to_owned(), "hessian".to_owned()]),
        )
        .push(
            "minimal_ratio",
            ColumnData::F64(vec![Some(found.sampled), Some(spectrum.ratio())]),
        )
        .push_constant_f64("loss", best.loss)
        .push_constant_f64("grad_norm", best.grad_norm)
        .push("reached", ColumnData::Bool(vec![found.descent.reached; 2]))
        .push_constant_i64("steps", found.descent.steps as i64)
        .push_constant_f64("threshold", p.threshold)
        .push_constant_f64("initial_loss", found.initial.0)
        .push_constant_f64("initial_grad_norm", found.initial.1)
        .push_constant_f64("radius", p.radius)
        .push_constant_i64("samples", p.samples as i64)
        .push_constant_f64("tau", p.tau)
        .push_constant_i64("positive", count(spectrum.positive))
        .push_constant_i64("near_zero", count(spectrum.near_zero))
        .push_constant_i64("negative", count(spectrum.negative))
        .push_constant_f64("max_abs_eigenvalue", spectrum.max_abs)
        .push_constant_i64("parameters", found.parameters as i64)
        .push_constant_i64("examples", found.examples);
    table
}

/// `step`, `loss`, `grad_norm`, `scope` (`full_batch`) of every iterate.
fn trace_table(descent: &Descent) -> Table {
    let rows = &descent.trace;
    let mut table = Table::new();
    table
        .push(
            "step",
            ColumnData::I64(rows.iter().map(|r| r.step as i64).collect()),
        )
        .push(
            "loss",
            ColumnData::F64(rows.iter().map(|r| Some(r.loss)).collect()),
        )
        .push(
            "grad_norm",
            ColumnData::F64(rows.iter().map(|r| Some(r.grad_norm)).collect()),
        )
        .push_constant_str("scope", "full_batch");
    table
}

/// `index`, `eigenvalue`, ascending.
fn eigenvalue_table(values: &[f64]) -> Table {
    let mut table = Table::new();
    table
        .push("index", ColumnData::I64((0..values.len() as i64).collect()))
        .push(
            "eigenvalue",
            ColumnData::F64(values.iter().copied().map(Some).collect()),
        );
    table
}

/// Saves `point` (rounded to `f32`) with the subject's buffers and description.
fn save_point(ctx: &StageContext<'_>, subject: &Subject, point: &Tensor) -> Result<(), StageError> {
    let weights = Weights::zeros(&subject.plan, subject.device)?;
    let _guard = tch::no_grad_guard();
    let copy = |to: &Tensor, from: &Tensor| {
        to.shallow_clone()
            .f_copy_(from)
            .map(drop)
            .ctx("copying the point found")
    };
    copy(&weights.flat, point)?;
    for (to, from) in weights.buffers.iter().zip(&subject.weights.buffers) {
        copy(to, from)?;
    }
    save_model(ctx.out_dir, &subject.info, &subject.plan, &weights)
}

#[cfg(test)]
mod tests;
