//! The course's sharpness by random sampling: losses at points drawn uniformly from the box
//! around the trained weights.
//!
//! Each sample fills one reused buffer with uniform values in [−1, 1] from libtorch's
//! generator (seeded with the stage's seed) and writes θ + u·w into a second reused buffer
//! that the layers are views of (taken once), then evaluates: two element-wise passes over
//! the parameters and one evaluation per sample, with no allocation that grows with the
//! sample count beyond one `f64` per sample, read back once at the end.

use pipeline_engine::stage::StageError;
use tch::{Kind, Tensor};

use super::ascent::record;
use super::flat_loss::FlatLoss;
use super::host::{check_finite, read_f64};
use super::progress::Ticker;
use crate::error::TchContext;
use crate::model::network::views;

/// The summed loss at each of `samples` points θ + δ, δ uniform in the box of half-widths
/// `half_width` (divide by the number of examples for the mean).
pub(crate) fn sampled_loss_sums(
    f: &FlatLoss<'_>,
    theta: &Tensor,
    half_width: &Tensor,
    samples: usize,
    ticker: &mut Ticker<'_>,
) -> Result<Vec<f64>, StageError> {
    let alloc = |t: Result<Tensor, tch::TchError>| t.ctx("allocating sampling buffers");
    let point = alloc(theta.f_zeros_like())?;
    let params = views(f.plan, &point)?;
    let mut unit = alloc(theta.f_zeros_like())?;
    let sums = alloc(Tensor::f_zeros(
        [samples as i64],
        (Kind::Double, theta.device()),
    ))?;
    for s in 0..samples {
        let _ = unit.f_uniform_(-1.0, 1.0).ctx("drawing a perturbation")?;
        let _ = theta
            .f_addcmul_out(&point, &unit, half_width)
            .ctx("perturbing the parameters")?;
        let loss_sum = f.sums(&params)?.f_select(0, 0).ctx("reading a loss")?;
        record(&sums, s, &loss_sum)?;
        ticker.advance(1, "sharpness: random perturbations")?;
    }
    let values = read_f64(&sums, "the sampled losses")?;
    check_finite(&values, |s, v| {
        format!(
            "the loss is {v} at random perturbation {} of {samples}",
            s + 1
        )
    })?;
    Ok(values)
}
