//! Random directions in weight space normalized filter by filter (Li et al., 2018), which make
//! a loss-surface plot's scale comparable across layers and networks.
//!
//! A direction is drawn from a standard normal distribution (libtorch's generator) with the
//! parameters' shape. In every tensor of rank 2 or more, the slice of each neuron (a dense
//! weight's row) or filter (a convolution kernel's first index) is rescaled to the norm of
//! the same slice of the weights; a slice of zero weights gets a zero direction. Tensors of
//! rank 1 (biases, batch-norm scales and shifts) are set to zero: Li et al. leave them out.

use pipeline_engine::stage::StageError;
use pipeline_kinds::model::plan::Plan;
use tch::Tensor;

use crate::error::TchContext;
use crate::model::network::views;

/// Slice norms below this count as zero.
const TINY: f64 = 1e-30;

/// A filter-normalized random direction for the flat parameters `theta` of `plan`.
pub(crate) fn filter_normalized(plan: &Plan, theta: &Tensor) -> Result<Tensor, StageError> {
    let mut direction = theta.f_zeros_like().ctx("allocating a direction")?;
    let _ = direction.f_normal_(0.0, 1.0).ctx("drawing a direction")?;
    let weights = views(plan, theta)?;
    let parts = views(plan, &direction)?;
    let _guard = tch::no_grad_guard();
    for (w, d) in weights.iter().zip(&parts) {
        normalize_slices(w, d)?;
    }
    Ok(direction)
}

/// Rescales each first-index slice of `d` to the norm of the same slice of `w`, in place;
/// zeroes `d` when it has rank 1.
fn normalize_slices(w: &Tensor, d: &Tensor) -> Result<(), StageError> {
    if w.dim() < 2 {
        let _ = d.shallow_clone().f_zero_().ctx("leaving out a bias")?;
        return Ok(());
    }
    let norms = |t: &Tensor| {
        t.f_flatten(1, -1)
            .and_then(|t| t.f_norm_scalaropt_dim(2, [1i64].as_slice(), true))
    };
    let result = (|| {
        let (wn, dn) = (norms(w)?, norms(d)?.f_clamp_min(TINY)?);
        let mut shape = vec![-1i64];
        shape.extend(std::iter::repeat_n(1, w.dim() - 1));
        let scale = wn.f_div(&dn)?.f_view(shape.as_slice())?;
        d.shallow_clone().f_mul_(&scale).map(drop)
    })();
    result.ctx("normalizing a direction per filter")
}

#[cfg(test)]
mod tests {
    use pipeline_kinds::model::plan::plan;
    use pipeline_kinds::model::spec::ModelSpec;

    use super::*;
    use crate::analysis::host::read_f64;

    #[test]
    fn each_neuron_gets_its_weights_norm_and_biases_none() -> Result<(), Box<dyn std::error::Error>>
    {
        let _lock = crate::testing::torch_lock();
        tch::manual_seed(3);
        let spec: ModelSpec = serde_json::from_str(r#"{"mlp": {"hidden": [3]}}"#)?;
        let plan = plan(&spec, &[2], 1)?;
        let theta = Tensor::randn([plan.parameter_count() as i64], tch::kind::FLOAT_CPU);
        let d = filter_normalized(&plan, &theta)?;
        let (w, dv) = (views(&plan, &theta)?, views(&plan, &d)?);
        for (wt, dt) in w.iter().zip(&dv) {
            if wt.dim() == 1 {
                assert_eq!(read_f64(dt, "bias")?, vec![0.0; wt.numel()]);
                continue;
            }
            for i in 0..wt.size()[0] {
                let (a, b) = (
                    wt.get(i).norm().double_value(&[]),
                    dt.get(i).norm().double_value(&[]),
                );
                assert!((a - b).abs() < 1e-5 * a, "{a} vs {b}");
            }
        }
        Ok(())
    }
}
