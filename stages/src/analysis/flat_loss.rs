//! The mean loss on a fixed set of examples as a function of the flat parameter vector, with
//! its gradient and Hessian-vector products, for the sharpness measures.
//!
//! The point at which the loss is taken is any `f32` vector of the model's parameter count,
//! with the layers as views of it ([`views`]), so a caller perturbs or steps one vector in
//! place and never rebuilds a model. For gradients the vector is aliased by a detached tensor
//! that requires gradients (and the views are taken of that alias, a handful of view
//! operations per pass), so the caller's vector itself stays a plain tensor that may be
//! written in place between passes. Everything runs
//! in evaluation mode, in batches of a fixed size, and the loss is summed per batch in `f64`
//! and divided by the number of examples at the end, exactly as `train` evaluates.
//!
//! The examples never change, so the loss without gradients ([`FlatLoss::sums`], what the
//! random-perturbation measures evaluate a thousand times) takes a first convolution from the
//! examples' columns, computed at the first call ([`FirstConv`]); gradients and Hessian
//! products take the plain forward pass.

use std::cell::OnceCell;

use pipeline_engine::stage::StageError;
use pipeline_kinds::model::plan::Plan;
use tch::{Kind, Tensor};

use crate::error::TchContext;
use crate::model::first_conv::{FirstConv, MAX_VALUES};
use crate::model::network::{forward, views};
use crate::train::data::Split;
use crate::train::evaluate::{sums, sums_with};
use crate::train::loss::Loss;

/// The loss of a model with fixed buffers on fixed examples, as a function of its parameters.
pub(crate) struct FlatLoss<'a> {
    /// The model.
    pub(crate) plan: &'a Plan,
    /// Its buffers (batch-norm running statistics), held fixed.
    pub(crate) buffers: &'a [Tensor],
    /// The loss.
    pub(crate) loss: Loss,
    /// The examples.
    pub(crate) examples: &'a Split,
    /// Examples per batch.
    pub(crate) batch: i64,
    /// The examples' columns for a first convolution, once [`FlatLoss::sums`] has run
    /// (`None` inside when the model has none or they would be too large).
    first_conv: OnceCell<Option<FirstConv<'a>>>,
}

impl<'a> FlatLoss<'a> {
    /// The loss of the model `plan` with `buffers` and `loss` on `examples` in batches of
    /// `batch`.
    pub(crate) fn new(
        plan: &'a Plan,
        buffers: &'a [Tensor],
        loss: Loss,
        examples: &'a Split,
        batch: i64,
    ) -> Self {
        Self {
            plan,
            buffers,
            loss,
            examples,
            batch,
            first_conv: OnceCell::new(),
        }
    }

    /// `[loss sum, correct answers]` with the parameters `params` (views of a point, see
    /// [`views`]), without gradients, left on the device (see [`sums`]); a first convolution
    /// comes from the examples' columns where they are kept.
    pub(crate) fn sums(&self, params: &[Tensor]) -> Result<Tensor, StageError> {
        let Some(first) = self.first_conv()? else {
            return sums(
                self.plan,
                params,
                self.buffers,
                self.loss,
                self.examples,
                self.batch,
            );
        };
        let factors = first.factors(params)?;
        sums_with(self.loss, self.examples, self.batch, |i, _| {
            first.forward(i, &factors, params, self.buffers)
        })
    }

    /// The examples' first-convolution columns, computed at the first call.
    fn first_conv(&self) -> Result<Option<&FirstConv<'a>>, StageError> {
        if let Some(first) = self.first_conv.get() {
            return Ok(first.as_ref());
        }
        let first = FirstConv::new(self.plan, self.examples, self.batch, MAX_VALUES)?;
        Ok(self.first_conv.get_or_init(|| first).as_ref())
    }

    /// The mean loss at `point` (an `f64` scalar on the device); its gradient is written into
    /// `grad`.
    pub(crate) fn gradient(&self, point: &Tensor, grad: &Tensor) -> Result<Tensor, StageError> {
        let mut total = Tensor::f_zeros([], (Kind::Double, point.device())).ctx("allocating")?;
        let _ = grad
            .shallow_clone()
            .f_zero_()
            .ctx("clearing the gradient")?;
        for (x, y) in self.batches()? {
            let alias = differentiable(point)?;
            let sum = self.batch_sum(&alias, &x, &y)?;
            let g = backward(&sum, &alias, false)?;
            let _ = grad.shallow_clone().f_add_(&g).ctx("summing gradients")?;
            total = total
                .f_add(&sum.f_detach().ctx("detaching the loss")?)
                .ctx("summing losses")?;
        }
        let n = self.examples.len as f64;
        let _ = grad
            .shallow_clone()
            .f_div_scalar_(n)
            .ctx("averaging the gradient")?;
        total.f_div_scalar(n).ctx("averaging the loss")
    }

    /// Writes the product of the Hessian of the mean loss at `point` with `v` into `out`: the
    /// gradient of (∇L · v), by a second backward pass through the first.
    pub(crate) fn hessian_times(
        &self,
        point: &Tensor,
        v: &Tensor,
        out: &Tensor,
    ) -> Result<(), StageError> {
        let _ = out.shallow_clone().f_zero_().ctx("clearing the product")?;
        for (x, y) in self.batches()? {
            let alias = differentiable(point)?;
            let sum = self.batch_sum(&alias, &x, &y)?;
            let g = backward(&sum, &alias, true)?;
            let gv = g.f_dot(v).ctx("projecting the gradient")?;
            let hv = backward(&gv, &alias, false)?;
            let _ = out.shallow_clone().f_add_(&hv).ctx("summing products")?;
        }
        let n = self.examples.len as f64;
        let _ = out
            .shallow_clone()
            .f_div_scalar_(n)
            .ctx("averaging the product")?;
        Ok(())
    }

    /// The batches of the examples, in order.
    pub(super) fn batches(&self) -> Result<Vec<(Tensor, Tensor)>, StageError> {
        let mut batches = Vec::new();
        let mut start = 0;
        while start < self.examples.len {
            let n = self.batch.min(self.examples.len - start);
            let slice = |t: &Tensor| t.f_narrow(0, start, n).ctx("slicing a batch");
            batches.push((slice(&self.examples.x)?, slice(&self.examples.y)?));
            start += n;
        }
        Ok(batches)
    }

    /// The summed loss of one batch, differentiable with respect to `alias`.
    pub(super) fn batch_sum(
        &self,
        alias: &Tensor,
        x: &Tensor,
        y: &Tensor,
    ) -> Result<Tensor, StageError> {
        let out = forward(self.plan, &views(self.plan, alias)?, self.buffers, x, false)?;
        let sum = self.loss.sum(&out, y).ctx("computing the loss")?;
        sum.f_to_kind(Kind::Double).ctx("computing the loss")
    }
}

/// A tensor sharing `point`'s values that requires gradients.
pub(super) fn differentiable(point: &Tensor) -> Result<Tensor, StageError> {
    point
        .f_detach()
        .and_then(|t| t.f_set_requires_grad(true))
        .ctx("preparing the parameters for gradients")
}

/// The gradient of the scalar `y` with respect to `x`; `create_graph` keeps it differentiable.
pub(super) fn backward(y: &Tensor, x: &Tensor, create_graph: bool) -> Result<Tensor, StageError> {
    let mut grads = Tensor::f_run_backward(&[y], &[x], create_graph, create_graph)
        .ctx("backward pass with respect to the parameters")?;
    let g = grads.pop().filter(Tensor::defined);
    match g {
        Some(g) => Ok(g),
        None => Ok(x.f_zeros_like().ctx("allocating a zero gradient")?),
    }
}
