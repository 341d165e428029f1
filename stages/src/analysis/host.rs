//! Reading an analysis's results back from the device once, and refusing non-finite ones.
//!
//! Results are collected on the device while an analysis runs and read here in one transfer;
//! a NaN or an infinity is then a numerical error that says where it arose (the α, the
//! sample, the example), because a table entry of NaN would only surface later as a hole in
//! a plot.

use pipeline_engine::stage::StageError;
use tch::{Device, Kind, Tensor};

use crate::error::TchContext;

/// Every value of `t`, flattened, as `f64` on the host.
pub(crate) fn read_f64(t: &Tensor, what: &str) -> Result<Vec<f64>, StageError> {
    let host = t
        .f_to_device(Device::Cpu)
        .and_then(|t| t.f_to_kind(Kind::Double))
        .and_then(|t| t.f_reshape([-1]))
        .ctx(&format!("reading {what}"))?;
    Vec::<f64>::try_from(&host).ctx(&format!("reading {what}"))
}

/// Fails with a numerical error built by `describe(index, value)` at the first value that is
/// not finite.
pub(crate) fn check_finite(
    values: &[f64],
    describe: impl Fn(usize, f64) -> String,
) -> Result<(), StageError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(StageError::numerical(describe(i, values[i]))),
        None => Ok(()),
    }
}

/// The mean of `values` (NaN when empty).
pub(crate) fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_finite_value_is_named() {
        assert!(check_finite(&[1.0, 2.0], |_, _| String::new()).is_ok());
        let err = check_finite(&[1.0, f64::NAN, f64::INFINITY], |i, v| {
            format!("{v} at {i}")
        });
        assert_eq!(err.err().map(|e| e.message), Some("NaN at 1".to_owned()));
    }
}
