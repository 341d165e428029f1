//! A network as a function of its tensors: initialisation and the forward pass.
//!
//! The forward pass takes the parameters and buffers as arguments instead of owning them, so
//! that the same network evaluates any weights of the right shapes: a checkpoint, a point on
//! the line between two checkpoints, a perturbation, or weights whose gradient is wanted with
//! respect to the inputs. [`Weights`] is the usual owner of a set of tensors: all parameters
//! live in one flat `f32` vector, and the per-layer tensors are views into it, so an optimizer
//! updates the whole model with a handful of element-wise operations instead of a handful per
//! tensor (which dominates the step time of the homework's tiny models).

use pipeline_engine::stage::StageError;
use pipeline_kinds::model::plan::{Init, Op, Plan, TensorSpec};
use pipeline_kinds::model::spec::Activation;
use tch::{Device, Kind, Tensor};

use crate::error::TchContext;

/// Batch normalization's running-statistics momentum and epsilon (PyTorch's defaults).
const BN_MOMENTUM: f64 = 0.1;
pub(crate) const BN_EPS: f64 = 1e-5;

/// A model's tensors: trainable parameters (views into one flat vector) and buffers.
pub(crate) struct Weights {
    /// Every parameter value, in [`Plan::params`] order, one tensor after another.
    pub(crate) flat: Tensor,
    /// The parameters as shaped views of `flat`, requiring gradients.
    pub(crate) params: Vec<Tensor>,
    /// Batch-norm running statistics, updated in place by training forward passes.
    pub(crate) buffers: Vec<Tensor>,
}

impl Weights {
    /// Zero-filled weights for `plan` on `device` (parameters require gradients).
    pub(crate) fn zeros(plan: &Plan, device: Device) -> Result<Self, StageError> {
        let total = plan.parameter_count() as i64;
        let flat = Tensor::f_zeros([total], (Kind::Float, device)).ctx("allocating parameters")?;
        let params = views(plan, &flat)?
            .into_iter()
            .map(|v| v.f_set_requires_grad(true))
            .collect::<Result<_, _>>()
            .ctx("creating a parameter view")?;
        let buffers = plan
            .buffers
            .iter()
            .map(|b| Tensor::f_zeros(b.shape.as_slice(), (Kind::Float, device)))
            .collect::<Result<_, _>>()
            .ctx("allocating buffers")?;
        Ok(Self {
            flat,
            params,
            buffers,
        })
    }

    /// Freshly initialised weights, drawn from libtorch's global generator in parameter order
    /// (each layer's weight, then its bias), as PyTorch's layers initialise themselves.
    pub(crate) fn init(plan: &Plan, device: Device) -> Result<Self, StageError> {
        let weights = Self::zeros(plan, device)?;
        let _guard = tch::no_grad_guard();
        for (tensor, spec) in weights.params.iter().zip(&plan.params) {
            fill(tensor, spec)?;
        }
        for (tensor, spec) in weights.buffers.iter().zip(&plan.buffers) {
            fill(tensor, spec)?;
        }
        Ok(weights)
    }

    /// Every tensor by name, parameters first, in the plan's order.
    pub(crate) fn named<'a>(&'a self, plan: &'a Plan) -> Vec<(String, &'a Tensor)> {
        let params = plan.params.iter().zip(&self.params);
        let buffers = plan.buffers.iter().zip(&self.buffers);
        params
            .chain(buffers)
            .map(|(spec, t)| (spec.name.clone(), t))
            .collect()
    }
}

/// The parameters of `plan` as shaped views of the flat vector `flat`, in [`Plan::params`]
/// order. Views of a tensor that requires gradients carry them back to it, which is how the
/// analyses differentiate with respect to all parameters as one vector.
pub(crate) fn views(plan: &Plan, flat: &Tensor) -> Result<Vec<Tensor>, StageError> {
    let mut views = Vec::with_capacity(plan.params.len());
    let mut offset = 0;
    for spec in &plan.params {
        let n = spec.numel() as i64;
        let view = flat
            .f_narrow(0, offset, n)
            .and_then(|t| t.f_view(spec.shape.as_slice()))
            .ctx("creating a parameter view")?;
        views.push(view);
        offset += n;
    }
    Ok(views)
}

pub(crate) fn fill(tensor: &Tensor, spec: &TensorSpec) -> Result<(), StageError> {
    let mut t = tensor.shallow_clone();
    let done = match spec.init {
        Init::Uniform(bound) => t.f_uniform_(-bound, bound),
        Init::Zeros => t.f_zero_(),
        Init::Ones => t.f_fill_(1.0),
    };
    done.map(|_| ()).ctx(&format!("initialising {}", spec.name))
}

/// The forward pass of a plan over tensors passed in.
pub(crate) fn forward(
    plan: &Plan,
    params: &[Tensor],
    buffers: &[Tensor],
    x: &Tensor,
    train: bool,
) -> Result<Tensor, StageError> {
    check_counts(plan, params, buffers)?;
    run_ops(plan, 0, params, buffers, x.shallow_clone(), false, train)
}

/// The evaluation-mode forward pass from operation `first` on, given `h`, the output of the
/// operations before it, made by the caller for this pass alone (so that an activation may
/// overwrite it): for a caller that computes the first layers its own way.
pub(crate) fn forward_rest(
    plan: &Plan,
    first: usize,
    params: &[Tensor],
    buffers: &[Tensor],
    h: Tensor,
) -> Result<Tensor, StageError> {
    check_counts(plan, params, buffers)?;
    run_ops(plan, first, params, buffers, h, true, false)
}

fn check_counts(plan: &Plan, params: &[Tensor], buffers: &[Tensor]) -> Result<(), StageError> {
    if params.len() != plan.params.len() || buffers.len() != plan.buffers.len() {
        return Err(StageError::bug(format!(
            "forward pass given {} parameters and {} buffers for a model of {} and {}",
            params.len(),
            buffers.len(),
            plan.params.len(),
            plan.buffers.len()
        )));
    }
    Ok(())
}

/// Operations `first..` of `plan` applied to `h`; `overwritable` says whether `h` may be
/// overwritten.
fn run_ops(
    plan: &Plan,
    first: usize,
    params: &[Tensor],
    buffers: &[Tensor],
    mut h: Tensor,
    mut overwritable: bool,
    train: bool,
) -> Result<Tensor, StageError> {
    // Whether `h` was made by this pass and is not kept by its maker for the backward pass, so
    // that an activation may overwrite it rather than allocate another batch-sized tensor (a
    // third of the time of a small CNN's forward pass goes to such memory traffic). Layers
    // keep their inputs, not their outputs; activations keep their outputs, and flatten and
    // dropout pass the status on (in evaluation mode, dropout returns its input itself).
    for (i, op) in plan.ops.iter().enumerate().skip(first) {
        let result = match op {
            Op::Act(act) if overwritable => activate_in_place(*act, &mut h),
            _ => apply(op, &h, params, buffers, train),
        };
        h = result.ctx(&format!("forward pass of operation {i} ({op:?})"))?;
        overwritable = match op {
            Op::Flatten | Op::Dropout(_) => overwritable,
            Op::Act(_) => false,
            _ => true,
        };
    }
    Ok(h)
}

/// One operation applied to `h` (a new tensor or, for flatten and evaluation-mode dropout, a
/// view of `h` or `h` itself).
pub(crate) fn apply(
    op: &Op,
    h: &Tensor,
    p: &[Tensor],
    b: &[Tensor],
    train: bool,
) -> Result<Tensor, tch::TchError> {
    match *op {
        Op::Dense { weight, bias } => h.f_linear(&p[weight], Some(&p[bias])),
        Op::Conv {
            weight,
            bias,
            stride,
            padding,
        } => h.f_conv2d(
            &p[weight],
            Some(&p[bias]),
            [stride; 2],
            [padding; 2],
            [1, 1],
            1,
        ),
        Op::MaxPool(k) => h.f_max_pool2d([k; 2], [k; 2], [0, 0], [1, 1], false),
        Op::AvgPool(k) => h.f_avg_pool2d([k; 2], [k; 2], [0, 0], false, true, None),
        Op::Flatten => h.f_flatten(1, -1),
        Op::Act(act) => activate(act, h),
        Op::Dropout(prob) => h.f_dropout(prob, train),
        Op::BatchNorm {
            weight,
            bias,
            mean,
            var,
        } => h.f_batch_norm(
            Some(&p[weight]),
            Some(&p[bias]),
            Some(&b[mean]),
            Some(&b[var]),
            train,
            BN_MOMENTUM,
            BN_EPS,
            true,
        ),
    }
}

/// [`activate`] writing into `h` (softplus, which has no in-place form, allocates).
pub(crate) fn activate_in_place(act: Activation, h: &mut Tensor) -> Result<Tensor, tch::TchError> {
    match act {
        Activation::Relu => h.f_relu_(),
        Activation::Tanh => h.f_tanh_(),
        Activation::Selu => h.f_selu_(),
        Activation::Sigmoid => h.f_sigmoid_(),
        Activation::Softplus => h.f_softplus(),
        Activation::Elu => h.f_elu_(),
    }
}

pub(crate) fn activate(act: Activation, h: &Tensor) -> Result<Tensor, tch::TchError> {
    match act {
        Activation::Relu => h.f_relu(),
        Activation::Tanh => h.f_tanh(),
        Activation::Selu => h.f_selu(),
        Activation::Sigmoid => h.f_sigmoid(),
        Activation::Softplus => h.f_softplus(),
        Activation::Elu => h.f_elu(),
    }
}

#[cfg(test)]
mod tests;
