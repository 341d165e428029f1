//! Runs the `sharpness` kind (declared in `pipeline_kinds::sharpness`): Keskar et al.'s
//! measure by projected gradient ascent (`crate::analysis::ascent`), the course's by random
//! sampling (`crate::analysis::random_box`) and the Hessian's largest eigenvalue
//! (`crate::analysis::power`), on the first training examples, written as
//! `sharpness.parquet`.
//!
//! The trained weights θ are never written: perturbed points live in buffers of their own,
//! refilled in place for every step or sample, so there is nothing to restore. Each measure's
//! maximum includes a loss at θ computed by the same code as the perturbed losses, so with
//! ε = 0 every difference is exactly 0, and none is ever negative.

use pipeline_engine::stage::{StageContext, StageError, TypedStage};
use pipeline_kinds::predict::SplitName;
use pipeline_kinds::sharpness::{Sharpness, SharpnessParams};
use pipeline_reports::table::{ColumnData, Table};
use tch::Tensor;

use crate::analysis::ascent::ascent_losses;
use crate::analysis::flat_loss::FlatLoss;
use crate::analysis::host::{check_finite, read_f64};
use crate::analysis::power::largest_eigenvalue;
use crate::analysis::progress::Ticker;
use crate::analysis::random_box::sampled_loss_sums;
use crate::analysis::subject::Subject;
use crate::device::init_torch;
use crate::error::TchContext;
use crate::model::network::views;
use crate::table::write_table;
use crate::train::evaluate::Score;

/// The sharpness table.
pub(crate) const SHARPNESS_FILE: &str = "sharpness.parquet";

/// The three measures.
struct Measures {
    keskar: f64,
    random: f64,
    hessian_max_eigenvalue: f64,
}

/// Measures the sharpness of the model's minimum and writes the table.
pub(crate) fn run(p: SharpnessParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    init_torch(ctx.threads, ctx.seed);
    let subject = Subject::load(ctx, "model")?;
    let examples = subject.split(SplitName::Train, Some(p.eval_size))?;
    if examples.len == 0 {
        return Err(StageError::input(
            "the data set's training split is empty: there is nothing to measure on",
        ));
    }
    if (examples.len as usize) < p.eval_size {
        ctx.note(format!(
            "the training split has only {} examples; measuring on all of them",
            examples.len
        ));
    }
    let f = FlatLoss::new(
        &subject.plan,
        &subject.weights.buffers,
        subject.loss,
        &examples,
        p.eval_batch_size as i64,
    );
    let theta = &subject.weights.flat;
    let at_theta = f.sums(&views(&subject.plan, theta)?)?;
    let at_theta = read_f64(&at_theta, "the loss at the trained weights")?;
    let score = Score::from_sums(&at_theta, subject.loss, examples.len);
    check_finite(&[score.loss], |_, v| {
        format!("the loss at the trained weights is {v}")
    })?;
    let measures = measure(ctx, &p, &f, theta, at_theta[0])?;
    let table = table(&p, score, &measures, examples.len);
    write_table(
        &ctx.out_dir.join(SHARPNESS_FILE),
        &table,
        Sharpness::NAME,
        &p,
    )
}

/// Runs the three measures; `loss_sum` is the summed loss at θ.
fn measure(
    ctx: &StageContext<'_>,
    p: &SharpnessParams,
    f: &FlatLoss<'_>,
    theta: &Tensor,
    loss_sum: f64,
) -> Result<Measures, StageError> {
    let total = (p.ascent_steps + 1 + p.samples + p.power_iterations) as u64;
    let mut ticker = Ticker::new(ctx, total, "step");
    let half_width = theta
        .f_abs()
        .and_then(|t| t.f_add_scalar(1.0))
        .and_then(|t| t.f_mul_scalar(p.epsilon))
        .ctx("computing the box")?;
    let ascent = ascent_losses(f, theta, &half_width, p.ascent_steps, &mut ticker)?;
    let sampled = sampled_loss_sums(f, theta, &half_width, p.samples, &mut ticker)?;
    let hessian_max_eigenvalue = largest_eigenvalue(f, theta, p.power_iterations, &mut ticker)?;
    let start = ascent.first().copied().unwrap_or(f64::NAN);
    let n = f.examples.len as f64;
    Ok(Measures {
        keskar: (largest(&ascent, start) - start) / (1.0 + start) * 100.0,
        random: (largest(&sampled, loss_sum) - loss_sum) / n,
        hessian_max_eigenvalue,
    })
}

/// The largest of `values` and `floor`.
fn largest(values: &[f64], floor: f64) -> f64 {
    values.iter().copied().fold(floor, f64::max)
}

/// The one-row table: the loss and accuracy at θ first, then the measures.
fn table(p: &SharpnessParams, score: Score, m: &Measures, examples: i64) -> Table {
    let mut table = Table::new();
    table
        .push("loss", ColumnData::F64(vec![Some(score.loss)]))
        .push("accuracy", ColumnData::F64(vec![score.accuracy]))
        .push_constant_f64("epsilon", p.epsilon)
        .push_constant_i64("samples", p.samples as i64)
        .push_constant_f64("keskar", m.keskar)
        .push_constant_f64("random", m.random)
        .push_constant_f64("hessian_max_eigenvalue", m.hessian_max_eigenvalue)
        .push_constant_i64("eval_size", examples);
    table
}

#[cfg(test)]
mod tests;
