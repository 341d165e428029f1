//! A data set as a trainer holds it: on the device, as normalized `f32` inputs, converted once.
//!
//! Training takes batches by indexing these tensors, so nothing is copied per example and
//! nothing is converted per step. The normalization is the one the data set prescribes (or, at
//! prediction time, the one recorded with the model).

use pipeline_engine::stage::StageError;
use tch::{Device, Kind, Tensor};

use crate::data::dataset::{Dataset, Normalization};
use crate::error::TchContext;

/// One split on the device.
pub(crate) struct Split {
    /// Normalized `f32` inputs, `[N, ...]`.
    pub(crate) x: Tensor,
    /// Labels (`i64 [N]`) or targets (`f32 [N, 1]`).
    pub(crate) y: Tensor,
    /// The number of examples.
    pub(crate) len: i64,
}

impl Split {
    /// Moves `x` and `y` to `device`, normalizing `x` with `norm`.
    pub(crate) fn new(
        x: &Tensor,
        y: &Tensor,
        norm: &Normalization,
        device: Device,
    ) -> Result<Self, StageError> {
        let x = normalize(x, norm, device)?;
        let y = y.f_to_device(device).ctx("moving targets to the device")?;
        let len = x.size().first().copied().unwrap_or(0);
        Ok(Self { x, y, len })
    }
}

/// The training and test splits of `data` on `device`.
pub(crate) fn prepare(data: &Dataset, device: Device) -> Result<(Split, Split), StageError> {
    let norm = &data.info.normalization;
    let train = Split::new(&data.train_x, &data.train_y, norm, device)?;
    let test = Split::new(&data.test_x, &data.test_y, norm, device)?;
    Ok((train, test))
}

/// `(x / divide − mean[c]) / std[c]` in `f32` on `device`, `c` indexing dimension 1.
pub(crate) fn normalize(
    x: &Tensor,
    norm: &Normalization,
    device: Device,
) -> Result<Tensor, StageError> {
    let rank = x.dim();
    let mut shape = vec![1i64; rank.max(2)];
    shape[1] = norm.mean.len() as i64;
    let stats = |values: &[f64]| {
        let v: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Tensor::f_from_slice(&v)
            .and_then(|t| t.f_view(shape.as_slice()))
            .and_then(|t| t.f_to_device(device))
    };
    let (mean, std) = (stats(&norm.mean), stats(&norm.std));
    let result = (|| {
        let x = x.f_to_device(device)?.f_to_kind(Kind::Float)?;
        x.f_div_scalar(norm.divide)?.f_sub(&mean?)?.f_div(&std?)
    })();
    result.ctx("normalizing inputs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_is_per_channel() -> Result<(), Box<dyn std::error::Error>> {
        let x = Tensor::from_slice(&[0u8, 255, 51, 102]).view([1, 2, 1, 2]);
        let norm = Normalization {
            divide: 255.0,
            mean: vec![0.5, 0.0],
            std: vec![0.5, 0.2],
        };
        let y = normalize(&x, &norm, Device::Cpu)?;
        assert_eq!(y.kind(), Kind::Float);
        let values = Vec::<f32>::try_from(y.view([4]))?;
        let want = [-1.0f32, 1.0, 1.0, 2.0];
        assert!(
            values.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{values:?}"
        );
        Ok(())
    }
}
