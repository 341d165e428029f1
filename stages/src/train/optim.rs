//! Adam, SGD and RMSprop over plain parameter tensors, updated in place.
//!
//! tch's `nn::Optimizer` is bound to a `VarStore`; these work on any list of tensors with
//! matching gradients instead. Every update is element by element, so applying one of them to
//! the stacked `[K, ...]` parameters of K models is exactly K independent optimizers, and
//! applying it to a model's single flat parameter vector (see `model::network::Weights`) is
//! the same as applying it per tensor, in a handful of operations. All state (moments, momentum
//! buffers) is held in tensors, and the step count in [`Optimizer::steps`], so that it can be
//! saved for resuming.
//!
//! The formulas follow PyTorch's `torch.optim` (L2 weight decay added to the gradient, Adam's
//! bias corrections, RMSprop's `eps` outside the square root), plus Keras's inverse-time
//! learning-rate decay `lr_t = lr / (1 + decay · t)` for RMSprop, with `t` the number of
//! updates already made, which the course's CIFAR-10 example uses. The hyper-parameters and
//! their checks are declared with the `train` kind, in `pipeline_kinds::optim`.

use pipeline_engine::stage::StageError;
use pipeline_kinds::optim::{AdamSpec, OptimizerSpec, RmspropSpec, SgdSpec};
use tch::Tensor;

use crate::error::TchContext;

/// Per-parameter state of each algorithm, as tensors shaped like the parameters.
enum State {
    Adam {
        m: Vec<Tensor>,
        v: Vec<Tensor>,
    },
    Sgd {
        momentum: Vec<Tensor>,
    },
    Rmsprop {
        square_avg: Vec<Tensor>,
        momentum: Vec<Tensor>,
    },
}

/// An optimizer with its state for a fixed list of parameters.
pub(crate) struct Optimizer {
    spec: OptimizerSpec,
    state: State,
    /// A reusable buffer per parameter for intermediate results.
    scratch: Vec<Tensor>,
    steps: u64,
}

impl Optimizer {
    /// An optimizer for `params` with zeroed state.
    pub(crate) fn new(spec: &OptimizerSpec, params: &[Tensor]) -> Result<Self, StageError> {
        let zeros = || -> Result<Vec<Tensor>, StageError> {
            params
                .iter()
                .map(|p| p.f_zeros_like().ctx("allocating optimizer state"))
                .collect()
        };
        let state = match spec {
            OptimizerSpec::Adam(_) => State::Adam {
                m: zeros()?,
                v: zeros()?,
            },
            OptimizerSpec::Sgd(_) => State::Sgd { momentum: zeros()? },
            OptimizerSpec::Rmsprop(_) => State::Rmsprop {
                square_avg: zeros()?,
                momentum: zeros()?,
            },
        };
        Ok(Self {
            spec: spec.clone(),
            state,
            scratch: zeros()?,
            steps: 0,
        })
    }

    /// The algorithm and its hyper-parameters.
    pub(crate) fn spec(&self) -> &OptimizerSpec {
        &self.spec
    }

    /// Updates made so far.
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }

    /// Sets the step count (a resumed run's).
    pub(crate) fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// The state tensors by name (`adam.m.0`...), for a resume snapshot.
    pub(crate) fn state_tensors(&self) -> Vec<(String, &Tensor)> {
        let lists: Vec<(&str, &Vec<Tensor>)> = match &self.state {
            State::Adam { m, v } => vec![("adam.m", m), ("adam.v", v)],
            State::Sgd { momentum } => vec![("sgd.momentum", momentum)],
            State::Rmsprop {
                square_avg,
                momentum,
            } => {
                vec![
                    ("rmsprop.square_avg", square_avg),
                    ("rmsprop.momentum", momentum),
                ]
            }
        };
        lists
            .into_iter()
            .flat_map(|(what, list)| {
                list.iter()
                    .enumerate()
                    .map(move |(i, t)| (format!("{what}.{i}"), t))
            })
            .collect()
    }

    /// Restores the state saved by [`Optimizer::state_tensors`] and the step count.
    pub(crate) fn restore(
        &mut self,
        saved: &mut std::collections::BTreeMap<String, Tensor>,
        steps: u64,
    ) -> Result<(), StageError> {
        let _guard = tch::no_grad_guard();
        for (name, target) in self.state_tensors() {
            let value = saved.remove(&name).ok_or_else(|| {
                StageError::bug(format!("the resume snapshot lacks optimizer state {name}"))
            })?;
            target
                .shallow_clone()
                .f_copy_(&value)
                .ctx("restoring optimizer state")?;
        }
        self.steps = steps;
        Ok(())
    }

    /// One update of `params` in place from `grads` (one per parameter, same shapes), which
    /// the update may overwrite.
    pub(crate) fn step(
        &mut self,
        params: &[Tensor],
        grads: &mut [Tensor],
    ) -> Result<(), StageError> {
        if params.len() != grads.len() || params.len() != self.scratch.len() {
            return Err(StageError::bug(
                "optimizer step with mismatched parameter lists",
            ));
        }
        let _guard = tch::no_grad_guard();
        let t = self.steps;
        for i in 0..params.len() {
            self.update(i, &params[i], &mut grads[i], t)
                .ctx("optimizer step")?;
        }
        self.steps += 1;
        Ok(())
    }

    fn update(
        &mut self,
        i: usize,
        p: &Tensor,
        g: &mut Tensor,
        t: u64,
    ) -> Result<(), tch::TchError> {
        let scratch = &self.scratch[i];
        match (&self.spec, &mut self.state) {
            (OptimizerSpec::Adam(h), State::Adam { m, v }) => {
                decay_into(g, p, h.weight_decay, scratch)?;
                adam(h, t, p, g, &m[i], &v[i], scratch)
            }
            (OptimizerSpec::Sgd(h), State::Sgd { momentum }) => {
                decay_into(g, p, h.weight_decay, scratch)?;
                sgd(h, p, g, &momentum[i], scratch)
            }
            (
                OptimizerSpec::Rmsprop(h),
                State::Rmsprop {
                    square_avg,
                    momentum,
                },
            ) => {
                decay_into(g, p, h.weight_decay, scratch)?;
                rmsprop(h, t, p, g, &square_avg[i], &momentum[i], scratch)
            }
            _ => Err(tch::TchError::Kind(
                "optimizer state does not match its kind".to_owned(),
            )),
        }
    }
}

/// `g += weight_decay · p` (L2 regularisation), using `scratch`.
fn decay_into(g: &mut Tensor, p: &Tensor, wd: f64, scratch: &Tensor) -> Result<(), tch::TchError> {
    if wd != 0.0 {
        p.f_mul_scalar_out(scratch, wd).map(drop)?;
        g.f_add_(scratch).map(drop)?;
    }
    Ok(())
}

/// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
/// p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε), with t counted from 1.
fn adam(
    h: &AdamSpec,
    t: u64,
    p: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    scratch: &Tensor,
) -> Result<(), tch::TchError> {
    let [b1, b2] = h.betas;
    let t = (t + 1) as f64;
    let (bc1, bc2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
    m.shallow_clone().f_lerp_(g, 1.0 - b1).map(drop)?;
    g.f_mul_out(scratch, g).map(drop)?;
    v.shallow_clone().f_lerp_(scratch, 1.0 - b2).map(drop)?;
    let mut denom = v.f_sqrt_out(scratch)?;
    denom.f_div_scalar_(bc2.sqrt()).map(drop)?;
    denom.f_add_scalar_(h.eps).map(drop)?;
    let mut step = m.f_div_out(scratch, &denom)?;
    step.f_mul_scalar_(-h.lr / bc1).map(drop)?;
    p.shallow_clone().f_add_(&step).map(drop)?;
    Ok(())
}

/// With momentum μ: b ← μ·b + g, d = g + μ·b (Nesterov) or b; p ← p − lr·d.
fn sgd(
    h: &SgdSpec,
    p: &Tensor,
    g: &Tensor,
    buf: &Tensor,
    scratch: &Tensor,
) -> Result<(), tch::TchError> {
    let direction = if h.momentum == 0.0 {
        g.shallow_clone()
    } else {
        let mut b = buf.shallow_clone();
        b.f_mul_scalar_(h.momentum).map(drop)?;
        b.f_add_(g).map(drop)?;
        if h.nesterov {
            let mut d = b.f_mul_scalar_out(scratch, h.momentum)?;
            d.f_add_(g).map(drop)?;
            d
        } else {
            b
        }
    };
    let step = direction.f_mul_scalar_out(scratch, -h.lr)?;
    p.shallow_clone().f_add_(&step).map(drop)?;
    Ok(())
}

/// s ← α·s + (1−α)·g²; a = √s + ε; with momentum μ: b ← μ·b + g/a, p ← p − lr_t·b;
/// without: p ← p − lr_t·g/a; lr_t = lr / (1 + decay·t), t counted from 0.
fn rmsprop(
    h: &RmspropSpec,
    t: u64,
    p: &Tensor,
    g: &Tensor,
    square_avg: &Tensor,
    buf: &Tensor,
    scratch: &Tensor,
) -> Result<(), tch::TchError> {
    let lr = h.lr / (1.0 + h.decay * t as f64);
    g.f_mul_out(scratch, g).map(drop)?;
    square_avg
        .shallow_clone()
        .f_lerp_(scratch, 1.0 - h.alpha)
        .map(drop)?;
    let mut avg = square_avg.f_sqrt_out(scratch)?;
    avg.f_add_scalar_(h.eps).map(drop)?;
    let step = if h.momentum == 0.0 {
        let mut step = g.f_div_out(scratch, &avg)?;
        step.f_mul_scalar_(-lr).map(drop)?;
        step
    } else {
        let mut b = buf.shallow_clone();
        b.f_mul_scalar_(h.momentum).map(drop)?;
        b.f_addcdiv_(g, &avg).map(drop)?;
        b.f_mul_scalar_out(scratch, -lr)?
    };
    p.shallow_clone().f_add_(&step).map(drop)?;
    Ok(())
}

#[cfg(test)]
mod tests;
