//! Second derivatives of a [`FlatLoss`] formed in full: the exact Hessian, row by row, and the
//! gradient of half the squared gradient norm, the objective that descends to critical points.
//!
//! Both differentiate the gradient itself (double backpropagation): the first backward pass
//! keeps its graph (`create_graph`), so that the gradient is a differentiable function of the
//! parameters. Row i of the Hessian is the gradient of the gradient's i-th entry, one more
//! backward pass each through the same graph, so a model of n parameters costs n backward
//! passes per batch: fine for the few hundred parameters of the course's 1-D fits, hopeless
//! for an image model (callers refuse those). The gradient of f(θ) = ½‖∇L(θ)‖² is H·∇L,
//! obtained as the gradient of ½ g·g with one backward pass through the gradient's graph, with
//! no Hessian formed. Callers use `f64` points and examples where the results feed
//! eigenvalues or small thresholds.

use pipeline_engine::stage::StageError;
use tch::{Kind, Tensor};

use super::flat_loss::{FlatLoss, backward, differentiable};
use super::progress::Ticker;
use crate::error::TchContext;

/// The mean loss and its gradient at one point, both detached.
pub(crate) struct Gradient {
    /// The mean loss (a scalar tensor).
    pub(crate) loss: Tensor,
    /// ∇L.
    pub(crate) grad: Tensor,
    /// H·∇L, the gradient of ½‖∇L‖².
    pub(crate) hessian_grad: Tensor,
}

impl FlatLoss<'_> {
    /// The mean loss at `point`, its gradient g and H·g, from one batch holding every example
    /// (½‖g‖² is not a sum over batches, so its gradient needs the whole gradient at once).
    pub(crate) fn gradient_and_hessian_grad(&self, point: &Tensor) -> Result<Gradient, StageError> {
        if self.batch < self.examples.len {
            return Err(StageError::bug(
                "the squared gradient norm needs every example in one batch",
            ));
        }
        let alias = differentiable(point)?;
        let n = self.examples.len as f64;
        let sum = self.batch_sum(&alias, &self.examples.x, &self.examples.y)?;
        let loss = sum.f_div_scalar(n).ctx("averaging the loss")?;
        let grad = backward(&loss, &alias, true)?;
        let half_square = grad
            .f_dot(&grad)
            .and_then(|s| s.f_mul_scalar(0.5))
            .ctx("squaring the gradient")?;
        let hessian_grad = backward(&half_square, &alias, false)?;
        let detach = |t: &Tensor| t.f_detach().ctx("detaching");
        Ok(Gradient {
            loss: detach(&loss)?,
            grad: detach(&grad)?,
            hessian_grad,
        })
    }

    /// The exact Hessian `[n, n]` of the mean loss at `point`, in the point's dtype, row by
    /// row; not symmetrized (see [`symmetrized`]).
    pub(crate) fn hessian(
        &self,
        point: &Tensor,
        ticker: &mut Ticker<'_>,
    ) -> Result<Tensor, StageError> {
        let size = point.size().first().copied().unwrap_or(0);
        let hessian = Tensor::f_zeros([size, size], (point.kind(), point.device()))
            .ctx("allocating the Hessian")?;
        for (x, y) in self.batches()? {
            let alias = differentiable(point)?;
            let sum = self.batch_sum(&alias, &x, &y)?;
            let grad = backward(&sum, &alias, true)?;
            for i in 0..size {
                let entry = grad.f_select(0, i).ctx("taking a gradient entry")?;
                let row = row_of(&entry, &alias)?;
                hessian
                    .f_select(0, i)
                    .and_then(|mut r| r.f_add_(&row))
                    .map(drop)
                    .ctx("summing Hessian rows")?;
                ticker.advance(1, "Hessian rows")?;
            }
        }
        hessian
            .f_div_scalar(self.examples.len as f64)
            .ctx("averaging the Hessian")
    }
}

/// The gradient of one gradient entry with respect to `alias`, keeping the graph for the next
/// row; zero where the entry does not depend on the parameters (a linear model's bias row).
fn row_of(entry: &Tensor, alias: &Tensor) -> Result<Tensor, StageError> {
    if !entry.requires_grad() {
        return alias.f_zeros_like().ctx("allocating a zero row");
    }
    let mut rows = Tensor::f_run_backward(&[entry], &[alias], true, false)
        .ctx("backward pass for a Hessian row")?;
    match rows.pop().filter(Tensor::defined) {
        Some(row) => Ok(row),
        None => alias.f_zeros_like().ctx("allocating a zero row"),
    }
}

/// (H + Hᵀ) / 2 in `f64`.
pub(crate) fn symmetrized(hessian: &Tensor) -> Result<Tensor, StageError> {
    let h = hessian
        .f_to_kind(Kind::Double)
        .ctx("converting the Hessian")?;
    h.f_transpose(0, 1)
        .and_then(|t| t.f_add(&h))
        .and_then(|s| s.f_mul_scalar(0.5))
        .ctx("symmetrizing the Hessian")
}

/// The eigenvalues of the symmetric matrix `h`, ascending, on the host.
pub(crate) fn eigenvalues(h: &Tensor) -> Result<Vec<f64>, StageError> {
    let values = h.f_linalg_eigvalsh("L").ctx("eigenvalues of the Hessian")?;
    super::host::read_f64(&values, "the Hessian's eigenvalues")
}

#[cfg(test)]
mod tests;
