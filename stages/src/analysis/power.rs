//! The largest eigenvalue of the loss's Hessian by power iteration on Hessian-vector
//! products, which never form the Hessian (a model of n parameters has n² entries).
//!
//! Each iteration multiplies the current unit vector v by the Hessian (two backward passes),
//! records the Rayleigh quotient v·Hv and moves v to Hv / ‖Hv‖; the last quotient is the
//! estimate. Power iteration converges to the eigenvalue of largest magnitude; when that one is
//! negative, a second run on H − λI (whose eigenvalues are shifted to be 0 or above) converges
//! to the largest eigenvalue instead. The start vector is drawn from libtorch's generator,
//! seeded with the stage's seed. A Hessian that maps the vector to zero gives 0, not a
//! division by zero.

use pipeline_engine::stage::StageError;
use tch::{Kind, Tensor};

use super::ascent::record;
use super::flat_loss::FlatLoss;
use super::host::{check_finite, read_f64};
use super::progress::Ticker;
use crate::error::TchContext;

/// Norms below this are treated as zero when normalizing.
const TINY: f64 = 1e-30;

/// The largest eigenvalue of the Hessian of `f` at `theta`, after `iterations` steps (twice
/// as many when the dominant eigenvalue is negative).
pub(crate) fn largest_eigenvalue(
    f: &FlatLoss<'_>,
    theta: &Tensor,
    iterations: usize,
    ticker: &mut Ticker<'_>,
) -> Result<f64, StageError> {
    let dominant = power_iteration(f, theta, iterations, 0.0, ticker)?;
    if dominant >= 0.0 {
        return Ok(dominant);
    }
    power_iteration(f, theta, iterations, dominant, ticker)
}

/// Power iteration on H − shift·I; returns the last Rayleigh quotient of H itself.
fn power_iteration(
    f: &FlatLoss<'_>,
    theta: &Tensor,
    iterations: usize,
    shift: f64,
    ticker: &mut Ticker<'_>,
) -> Result<f64, StageError> {
    let alloc = |t: Result<Tensor, tch::TchError>| t.ctx("allocating power-iteration buffers");
    let mut v = alloc(theta.f_randn_like())?;
    normalize(&mut v)?;
    let hv = alloc(theta.f_zeros_like())?;
    let quotients = alloc(Tensor::f_zeros(
        [iterations as i64],
        (Kind::Double, theta.device()),
    ))?;
    for k in 0..iterations {
        f.hessian_times(theta, &v, &hv)?;
        let quotient = v
            .f_dot(&hv)
            .and_then(|q| q.f_to_kind(Kind::Double))
            .ctx("computing the Rayleigh quotient")?;
        record(&quotients, k, &quotient)?;
        let _ = v
            .f_mul_scalar_(-shift)
            .and_then(|mut w| w.f_add_(&hv))
            .ctx("shifting the product")?;
        normalize(&mut v)?;
        ticker.advance(1, "sharpness: Hessian power iteration")?;
    }
    let values = read_f64(&quotients, "the Rayleigh quotients")?;
    check_finite(&values, |k, q| {
        format!(
            "the Rayleigh quotient is {q} at power iteration {} of {iterations}",
            k + 1
        )
    })?;
    values
        .last()
        .copied()
        .ok_or_else(|| StageError::bug("power iteration ran no iteration"))
}

/// Scales `v` to unit length in place (a zero vector stays zero).
fn normalize(v: &mut Tensor) -> Result<(), StageError> {
    let norm = v
        .f_norm()
        .and_then(|n| n.f_clamp_min(TINY))
        .ctx("normalizing")?;
    let _ = v.f_div_(&norm).ctx("normalizing")?;
    Ok(())
}
