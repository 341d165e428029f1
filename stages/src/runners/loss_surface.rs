//! Runs the `loss_surface` kind (declared in `pipeline_kinds::loss_surface`): draws two
//! filter-normalized random directions (`crate::analysis::directions`), evaluates the loss on
//! the grid of the plane they span through the trained weights, and writes `surface.parquet`.
//!
//! One buffer is rewritten for every grid point as θ + α·d₁ + β·d₂ (the layers are views of
//! it, taken once); the sums of every evaluation stay on the device and are read back once.

use pipeline_engine::stage::{StageContext, StageError, TypedStage};
use pipeline_kinds::loss_surface::{LossSurface, LossSurfaceParams};
use pipeline_kinds::predict::SplitName;
use pipeline_reports::table::{ColumnData, Table};
use tch::Tensor;

use crate::analysis::directions::filter_normalized;
use crate::analysis::host::{check_finite, read_f64};
use crate::analysis::progress::Ticker;
use crate::analysis::subject::Subject;
use crate::device::init_torch;
use crate::error::TchContext;
use crate::model::network::views;
use crate::table::write_table;
use crate::train::evaluate::{Score, sums};

/// The surface table.
pub(crate) const SURFACE_FILE: &str = "surface.parquet";

/// Evaluates the surface and writes the table.
pub(crate) fn run(p: LossSurfaceParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    init_torch(ctx.threads, ctx.seed);
    let subject = Subject::load(ctx, "model")?;
    let examples = subject.split(SplitName::Train, p.train_limit)?;
    if examples.len == 0 {
        return Err(StageError::input(
            "the data set's training split is empty: there is nothing to evaluate on",
        ));
    }
    let theta = &subject.weights.flat;
    let d1 = filter_normalized(&subject.plan, theta)?;
    let d2 = filter_normalized(&subject.plan, theta)?;
    let point = theta.f_zeros_like().ctx("allocating the grid point")?;
    let params = views(&subject.plan, &point)?;
    let axis = p.axis();
    let batch = p.eval_batch_size as i64;
    let mut ticker = Ticker::new(ctx, (axis.len() * axis.len()) as u64, "point");
    let mut results = Vec::with_capacity(axis.len() * axis.len());
    for &beta in &axis {
        for &alpha in &axis {
            place(&point, theta, (&d1, alpha), (&d2, beta))?;
            let loss = sums(
                &subject.plan,
                &params,
                &subject.weights.buffers,
                subject.loss,
                &examples,
                batch,
            )?;
            results.push(loss);
            ticker.advance(1, "loss surface")?;
        }
    }
    let all = Tensor::f_stack(&results, 0).ctx("collecting results")?;
    let values = read_f64(&all, "the loss surface")?;
    let mut columns: [Vec<Option<f64>>; 4] = Default::default();
    let grid = axis.iter().flat_map(|&b| axis.iter().map(move |&a| (a, b)));
    for (k, (alpha, beta)) in grid.enumerate() {
        let score = Score::from_sums(&values[2 * k..2 * k + 2], subject.loss, examples.len);
        check_finite(&[score.loss], |_, v| {
            format!("the loss is {v} at alpha = {alpha}, beta = {beta}")
        })?;
        for (column, value) in
            columns
                .iter_mut()
                .zip([Some(alpha), Some(beta), Some(score.loss), score.accuracy])
        {
            column.push(value);
        }
    }
    let [alpha, beta, loss, accuracy] = columns;
    let mut table = Table::new();
    table
        .push("alpha", ColumnData::F64(alpha))
        .push("beta", ColumnData::F64(beta))
        .push("loss", ColumnData::F64(loss))
        .push("accuracy", ColumnData::F64(accuracy));
    write_table(
        &ctx.out_dir.join(SURFACE_FILE),
        &table,
        LossSurface::NAME,
        &p,
    )
}

/// `point ← θ + α·d₁ + β·d₂`.
fn place(
    point: &Tensor,
    theta: &Tensor,
    (d1, alpha): (&Tensor, f64),
    (d2, beta): (&Tensor, f64),
) -> Result<(), StageError> {
    let _guard = tch::no_grad_guard();
    let result = (|| {
        let mut p = point.shallow_clone();
        p.f_copy_(theta)?;
        let _ = p.f_add_(&d1.f_mul_scalar(alpha)?)?;
        p.f_add_(&d2.f_mul_scalar(beta)?).map(drop)
    })();
    result.ctx("placing a grid point")
}

#[cfg(test)]
mod tests;
