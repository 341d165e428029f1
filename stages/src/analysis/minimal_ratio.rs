//! The minimal ratio of a critical point, the course's measure of how close to a minimum it
//! is, by two definitions.
//!
//! - Sampled: the fraction of random perturbations θ + δ, of fixed length ‖δ‖ = r and uniformly
//!   distributed direction (a standard normal vector scaled to length r), at which the loss is
//!   above the loss at θ. At a strict minimum every perturbation small enough raises the loss
//!   (ratio 1); at a saddle some lower it.
//! - From the Hessian's eigenvalues λ: with m = max|λ|, those above τ·m count as positive,
//!   below −τ·m as negative, the rest as near zero (flat directions, plentiful in
//!   over-parameterized networks, whose sign is rounding noise); the ratio is the fraction of
//!   positive eigenvalues among all.
//!
//! The sampled losses are collected on the device and read back once; the loss at θ goes
//! through the same evaluation code, so an unperturbed sample would compare exactly equal.

use pipeline_engine::stage::StageError;
use tch::{Kind, Tensor};

use super::ascent::record;
use super::flat_loss::FlatLoss;
use super::host::{check_finite, read_f64};
use super::progress::Ticker;
use crate::error::TchContext;
use crate::model::network::views;

/// The fraction of `samples` perturbations of length `radius` around `theta` that raise the
/// loss above its value at `theta`.
pub(crate) fn sampled_ratio(
    f: &FlatLoss<'_>,
    theta: &Tensor,
    radius: f64,
    samples: usize,
    ticker: &mut Ticker<'_>,
) -> Result<f64, StageError> {
    let alloc = |t: Result<Tensor, tch::TchError>| t.ctx("allocating sampling buffers");
    let point = alloc(theta.f_detach_copy())?;
    let params = views(f.plan, &point)?;
    let at_theta = f.sums(&params)?.f_select(0, 0).ctx("reading a loss")?;
    let at_theta = at_theta.f_double_value(&[]).ctx("reading a loss")?;
    let mut direction = alloc(theta.f_zeros_like())?;
    let sums = alloc(Tensor::f_zeros(
        [samples as i64],
        (Kind::Double, theta.device()),
    ))?;
    for s in 0..samples {
        let _ = direction.f_normal_(0.0, 1.0).ctx("drawing a direction")?;
        let scale = direction
            .f_norm()
            .and_then(|n| n.f_clamp_min(f64::MIN_POSITIVE))
            .and_then(|n| n.f_reciprocal())
            .and_then(|n| n.f_mul_scalar(radius))
            .ctx("scaling a direction")?;
        let _ = theta
            .f_addcmul_out(&point, &direction, &scale)
            .ctx("perturbing the parameters")?;
        let loss_sum = f.sums(&params)?.f_select(0, 0).ctx("reading a loss")?;
        record(&sums, s, &loss_sum)?;
        ticker.advance(1, "minimal ratio: random perturbations")?;
    }
    let values = read_f64(&sums, "the perturbed losses")?;
    check_finite(&values, |s, v| {
        format!(
            "the loss is {v} at random perturbation {} of {samples}",
            s + 1
        )
    })?;
    let raised = values.iter().filter(|&&v| v > at_theta).count();
    Ok(raised as f64 / samples as f64)
}

/// The Hessian's eigenvalues sorted into signs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Spectrum {
    /// Eigenvalues above τ·max|λ|.
    pub(crate) positive: usize,
    /// Eigenvalues within τ·max|λ| of zero.
    pub(crate) near_zero: usize,
    /// Eigenvalues below −τ·max|λ|.
    pub(crate) negative: usize,
    /// max|λ| (0 without eigenvalues).
    pub(crate) max_abs: f64,
}

impl Spectrum {
    /// Sorts `eigenvalues` with the relative tolerance `tau`.
    pub(crate) fn of(eigenvalues: &[f64], tau: f64) -> Self {
        let max_abs = eigenvalues.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let cut = tau * max_abs;
        let count = |keep: &dyn Fn(f64) -> bool| eigenvalues.iter().filter(|&&v| keep(v)).count();
        let positive = count(&|v| v > cut);
        let negative = count(&|v| v < -cut);
        Self {
            positive,
            negative,
            near_zero: eigenvalues.len() - positive - negative,
            max_abs,
        }
    }

    /// The fraction of positive eigenvalues (0 without eigenvalues).
    pub(crate) fn ratio(&self) -> f64 {
        let total = self.positive + self.near_zero + self.negative;
        self.positive as f64 / total.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvalues_are_sorted_by_sign_with_a_relative_tolerance() {
        let s = Spectrum::of(&[-2.0, -1e-4, 0.0, 1e-3, 3.0, 4.0], 1e-3);
        assert_eq!(
            (s.positive, s.near_zero, s.negative, s.max_abs),
            (2, 3, 1, 4.0)
        );
        assert_eq!(s.ratio(), 2.0 / 6.0);
        let zero = Spectrum::of(&[0.0, 0.0], 0.1);
        assert_eq!((zero.near_zero, zero.ratio()), (2, 0.0));
    }
}
