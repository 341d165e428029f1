//! Keskar et al.'s sharpness: the largest loss in a box around the trained weights, sought by
//! projected gradient ascent.
//!
//! The box is |δᵢ| ≤ ε·(|θᵢ| + 1). Starting at δ = 0, every step moves each coordinate by a
//! fixed fraction of its half-width in the direction of the gradient's sign (an ℓ∞ steepest
//! ascent step, as in Madry et al.'s PGD) and clips δ back into the box. Sign steps make the
//! step length independent of the gradient's scale, which varies by orders of magnitude
//! between models; the fraction, 2.5 / steps (at most 1), lets the ascent cross the box and
//! still move along its faces afterwards. The loss at every iterate, θ's included, is kept on
//! the device and read back once.

use pipeline_engine::stage::StageError;
use tch::{Kind, Tensor};

use super::flat_loss::FlatLoss;
use super::host::{check_finite, read_f64};
use super::progress::Ticker;
use crate::error::TchContext;

/// The ascent's step as a fraction of the box's half-width.
fn step_fraction(steps: usize) -> f64 {
    (2.5 / steps.max(1) as f64).min(1.0)
}

/// The mean loss at each of the `steps + 1` iterates of the ascent from `theta` (the first is
/// `theta` itself) inside the box of half-widths `half_width`.
pub(crate) fn ascent_losses(
    f: &FlatLoss<'_>,
    theta: &Tensor,
    half_width: &Tensor,
    steps: usize,
    ticker: &mut Ticker<'_>,
) -> Result<Vec<f64>, StageError> {
    let alloc = |t: Result<Tensor, tch::TchError>| t.ctx("allocating ascent buffers");
    let point = alloc(theta.f_detach_copy())?;
    let delta = alloc(theta.f_zeros_like())?;
    let grad = alloc(theta.f_zeros_like())?;
    let step = alloc(half_width.f_mul_scalar(step_fraction(steps)))?;
    let low = alloc(half_width.f_neg())?;
    let losses = alloc(Tensor::f_zeros(
        [steps as i64 + 1],
        (Kind::Double, theta.device()),
    ))?;
    for k in 0..=steps {
        let loss = f.gradient(&point, &grad)?;
        record(&losses, k, &loss)?;
        if k < steps {
            climb(&point, theta, &delta, &grad, &step, (&low, half_width))?;
        }
        ticker.advance(1, "sharpness: gradient ascent")?;
    }
    let values = read_f64(&losses, "the ascent's losses")?;
    check_finite(&values, |k, v| {
        format!("the loss is {v} at step {k} of the gradient ascent (keskar)")
    })?;
    Ok(values)
}

/// One projected sign step: δ ← clip(δ + step·sign(∇L), −w, w), point ← θ + δ.
fn climb(
    point: &Tensor,
    theta: &Tensor,
    delta: &Tensor,
    grad: &Tensor,
    step: &Tensor,
    (low, high): (&Tensor, &Tensor),
) -> Result<(), StageError> {
    let _guard = tch::no_grad_guard();
    let result = (|| {
        let direction = grad.f_sign()?;
        let _ = delta.shallow_clone().f_addcmul_(step, &direction)?;
        let _ = delta
            .shallow_clone()
            .f_clamp_tensor_(Some(low), Some(high))?;
        theta.f_add_out(point, delta)
    })();
    result.map(drop).ctx("stepping inside the box")
}

/// Copies the scalar `value` into `losses[k]` on the device.
pub(crate) fn record(losses: &Tensor, k: usize, value: &Tensor) -> Result<(), StageError> {
    losses
        .f_select(0, k as i64)
        .and_then(|mut slot| slot.f_copy_(value))
        .map(drop)
        .ctx("recording a loss")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_a_fraction_of_the_box_at_most_the_whole() {
        assert_eq!(step_fraction(20), 0.125);
        assert_eq!(step_fraction(1), 1.0);
        assert_eq!(step_fraction(2), 1.0);
    }
}
