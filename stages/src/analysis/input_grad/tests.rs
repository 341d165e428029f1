use super::*;
use crate::model::network::Weights;
use crate::testing::torch_lock;
use pipeline_kinds::model::plan::{Plan, plan};
use pipeline_kinds::model::spec::ModelSpec;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A model of `layers` for `input` with `outputs` outputs, random parameters and batch-norm
/// statistics away from their initial values.
fn model(
    layers: &str,
    input: &[usize],
    outputs: usize,
) -> Result<(Plan, Weights), Box<dyn std::error::Error>> {
    let spec: ModelSpec = serde_json::from_str(&format!(r#"{{"layers": {layers}}}"#))?;
    let p = plan(&spec, input, outputs)?;
    let w = Weights::init(&p, Device::Cpu)?;
    let _guard = tch::no_grad_guard();
    let _ = w.flat.shallow_clone().f_normal_(0.0, 0.5)?;
    for b in &w.buffers {
        let _ = b.shallow_clone().f_uniform_(0.5, 2.0)?;
    }
    Ok((p, w))
}

/// Whether `a` equals `b` up to float rounding, relative to `b`'s largest value.
fn close(a: &Tensor, b: &Tensor) -> Result<bool, tch::TchError> {
    let scale = f64::try_from(b.f_abs()?.f_max()?)?.max(1e-30);
    let diff = f64::try_from(a.f_sub(b)?.f_abs()?.f_max()?)?;
    Ok(a.size() == b.size() && diff <= 1e-5 * scale)
}

/// Checks that the figures by hand, in slices of at most `slice_values` values, equal
/// autograd's.
fn check(
    p: &Plan,
    w: &Weights,
    loss: Loss,
    x: &Tensor,
    y: &Tensor,
    slice_values: i64,
) -> TestResult {
    let params: Vec<Tensor> = w.params.iter().map(Tensor::detach).collect();
    let model = InputModel {
        plan: p,
        params: &params,
        buffers: &w.buffers,
        loss,
    };
    let hand = in_slices(&model, x, y, true, slice_values)?;
    let auto = by_autograd(&model, x, y, true)?;
    let pairs = [
        ("outputs", &hand.out, &auto.out),
        ("losses", &hand.losses, &auto.losses),
        ("gradient norms", &hand.grad_norm, &auto.grad_norm),
    ];
    for (what, a, b) in pairs {
        assert!(close(a, b)?, "{what}: {a} vs {b}");
    }
    let (a, b) = (hand.jacobian_norm, auto.jacobian_norm);
    let (a, b) = (a.ok_or("no Jacobian by hand")?, b.ok_or("no Jacobian")?);
    assert!(close(&a, &b)?, "Jacobian norms: {a} vs {b}");
    assert!(f64::try_from(b.min())? > 0.0 && f64::try_from(auto.grad_norm.min())? > 0.0);
    Ok(())
}

#[test]
fn cross_entropy_figures_by_hand_equal_autograds_in_any_slices() -> TestResult {
    let _lock = torch_lock();
    tch::manual_seed(21);
    let (p, w) = model(
        r#"[{"conv": {"filters": 4, "kernel": 3, "stride": 2, "padding": "same"}}, "batchnorm",
            "relu", {"maxpool": 2}, {"conv": {"filters": 3, "kernel": 1}}, "tanh",
            {"avgpool": 2}, "flatten", {"dropout": 0.3}, {"dense": 6}, "sigmoid", {"dense": 4}]"#,
        &[2, 12, 12],
        4,
    )?;
    let x = Tensor::f_randn([7, 2, 12, 12], (Kind::Float, Device::Cpu))?;
    let y = Tensor::f_randint(4, [7], (Kind::Int64, Device::Cpu))?;
    // The widest activation is the input itself, 2×12×12 = 288 values per example (the first
    // convolution gives 4×6×6): one slice, slices of 3, 3 and 1, and one example per slice.
    let widest = widest(&p, &w.params, &[2, 12, 12]);
    assert_eq!(widest, 288);
    for slice_values in [1 << 20, 3 * widest, 1] {
        check(&p, &w, Loss::CrossEntropy, &x, &y, slice_values)?;
    }
    Ok(())
}

#[test]
fn squared_error_figures_by_hand_equal_autograds() -> TestResult {
    let _lock = torch_lock();
    tch::manual_seed(22);
    for outputs in [1, 2] {
        let (p, w) = model(
            r#"[{"dense": 8}, "elu", "batchnorm", {"dense": 8}, "selu", {"dense": 6},
                "softplus", {"dense": OUT}]"#
                .replace("OUT", &outputs.to_string())
                .as_str(),
            &[3],
            outputs,
        )?;
        let x = Tensor::f_randn([9, 3], (Kind::Float, Device::Cpu))?;
        let y = Tensor::f_randn([9, outputs as i64], (Kind::Float, Device::Cpu))?;
        check(&p, &w, Loss::Mse, &x, &y, 20)?;
    }
    Ok(())
}
