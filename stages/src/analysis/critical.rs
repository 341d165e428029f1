//! Descending on half the squared gradient norm to a critical point of the loss.
//!
//! From a starting point (trained weights), an optimizer minimizes f(θ) = ½‖∇L(θ)‖², whose
//! gradient H·∇L comes from [`FlatLoss::gradient_and_hessian_grad`], full-batch, so that the
//! path is deterministic. Each step's loss and gradient norm are read back at once (one small
//! read per step of a full-batch second-order pass, negligible beside the pass itself), because
//! the stopping rule needs the norm: the descent stops as soon as ‖∇L‖ falls below the
//! threshold, or after the step budget. The point returned is the iterate of smallest gradient
//! norm seen, which is the last one when the threshold was reached; whether it was is part of
//! the result, since a norm that stalls above the threshold marks no critical point.

use pipeline_engine::stage::StageError;
use pipeline_kinds::optim::OptimizerSpec;
use tch::Tensor;

use super::flat_loss::FlatLoss;
use super::progress::Ticker;
use crate::error::TchContext;
use crate::train::optim::Optimizer;

/// The loss and gradient norm at one iterate (step 0: the start).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TraceRow {
    /// Optimizer steps taken before this iterate.
    pub(crate) step: usize,
    /// The mean loss.
    pub(crate) loss: f64,
    /// ‖∇L‖.
    pub(crate) grad_norm: f64,
}

/// Where the descent ended.
pub(crate) struct Descent {
    /// The iterate of smallest gradient norm.
    pub(crate) point: Tensor,
    /// Its loss and gradient norm.
    pub(crate) best: TraceRow,
    /// Every iterate's loss and gradient norm, in order.
    pub(crate) trace: Vec<TraceRow>,
    /// Optimizer steps taken.
    pub(crate) steps: usize,
    /// Whether the gradient norm fell below the threshold.
    pub(crate) reached: bool,
}

/// How to descend.
pub(crate) struct Budget<'a> {
    /// The optimizer of f = ½‖∇L‖².
    pub(crate) optimizer: &'a OptimizerSpec,
    /// The most optimizer steps.
    pub(crate) max_steps: usize,
    /// Stop once ‖∇L‖ is below this.
    pub(crate) threshold: f64,
}

/// Descends from `start` (left unchanged) on ½‖∇L‖².
pub(crate) fn descend(
    f: &FlatLoss<'_>,
    start: &Tensor,
    budget: &Budget<'_>,
    ticker: &mut Ticker<'_>,
) -> Result<Descent, StageError> {
    let alloc = |t: Result<Tensor, tch::TchError>| t.ctx("allocating descent buffers");
    let point = alloc(start.f_detach_copy())?;
    let best_point = alloc(start.f_detach_copy())?;
    let mut optimizer = Optimizer::new(budget.optimizer, &[point.shallow_clone()])?;
    let mut trace = Vec::new();
    let mut best: Option<TraceRow> = None;
    let mut reached = false;
    for step in 0..=budget.max_steps {
        let g = f.gradient_and_hessian_grad(&point)?;
        let row = TraceRow {
            step,
            loss: g.loss.f_double_value(&[]).ctx("reading the loss")?,
            grad_norm: g
                .grad
                .f_norm()
                .and_then(|n| n.f_double_value(&[]))
                .ctx("reading the gradient norm")?,
        };
        if !(row.loss.is_finite() && row.grad_norm.is_finite()) {
            return Err(StageError::numerical(format!(
                "the loss is {} and the gradient norm {} after {step} steps of the \
                 gradient-norm descent; try a lower learning rate",
                row.loss, row.grad_norm
            )));
        }
        trace.push(row);
        if best.is_none_or(|b| row.grad_norm < b.grad_norm) {
            best = Some(row);
            best_point
                .shallow_clone()
                .f_copy_(&point)
                .ctx("keeping the best point")?;
        }
        reached = row.grad_norm < budget.threshold;
        if reached || step == budget.max_steps {
            break;
        }
        let mut direction = [g.hessian_grad];
        optimizer.step(&[point.shallow_clone()], &mut direction)?;
        ticker.advance(1, "critical point: gradient-norm descent")?;
    }
    let best = best.ok_or_else(|| StageError::bug("the descent evaluated no point"))?;
    Ok(Descent {
        point: best_point,
        best,
        steps: optimizer.steps() as usize,
        trace,
        reached,
    })
}
