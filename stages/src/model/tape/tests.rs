use super::*;
use crate::model::network::{Weights, forward};
use crate::testing::torch_lock;
use pipeline_kinds::model::plan::plan;
use pipeline_kinds::model::spec::ModelSpec;
use tch::{Device, Kind};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Models covering every operation and activation, with their input shapes: convolutions with
/// stride 2 and padding, both poolings, batch normalization after a convolution and after a
/// dense layer, dropout, activations after activations, and an activation first and last.
const MODELS: &[(&str, &[usize])] = &[
    (
        r#"[{"conv": {"filters": 4, "kernel": 3, "stride": 2, "padding": "same"}}, "batchnorm",
            "relu", {"maxpool": 2}, "flatten", {"dense": 5}, "tanh", {"dense": 3}]"#,
        &[2, 10, 10],
    ),
    (
        r#"[{"conv": {"filters": 3, "kernel": 3}}, "sigmoid", {"avgpool": 2}, "selu",
            {"conv": {"filters": 2, "kernel": 2, "stride": 2}}, "flatten", {"dropout": 0.5},
            {"dense": 6}, "batchnorm", "elu", {"dense": 4}, "softplus", {"dense": 3}]"#,
        &[1, 11, 11],
    ),
    (
        r#"[{"conv": {"filters": 3, "kernel": 5, "padding": "same"}}, "relu", "tanh",
            {"maxpool": 3}, "softplus", "relu", "flatten", {"dense": 3}]"#,
        &[2, 7, 7],
    ),
    (
        r#"["relu", "flatten", {"dense": 8}, "relu", "sigmoid", {"dense": 3}, "sigmoid"]"#,
        &[4],
    ),
];

/// A model of `layers` for `input` with 3 outputs, random parameters and batch-norm
/// statistics far from their initial values (so that a wrong scale would show).
fn model(layers: &str, input: &[usize]) -> Result<(Plan, Weights), Box<dyn std::error::Error>> {
    let spec: ModelSpec = serde_json::from_str(&format!(r#"{{"layers": {layers}}}"#))?;
    let p = plan(&spec, input, 3)?;
    let w = Weights::init(&p, Device::Cpu)?;
    let _guard = tch::no_grad_guard();
    let _ = w.flat.shallow_clone().f_normal_(0.0, 0.5)?;
    for b in &w.buffers {
        let _ = b.shallow_clone().f_uniform_(0.5, 2.0)?;
    }
    Ok((p, w))
}

/// Random examples for `input`, with values of both signs.
fn examples(n: i64, input: &[usize]) -> Result<Tensor, TchError> {
    let mut shape = vec![n];
    shape.extend(input.iter().map(|&d| d as i64));
    Tensor::f_randn(shape.as_slice(), (Kind::Float, Device::Cpu))
}

/// Autograd's gradient of Σ `r` ⊙ f(x) with respect to `x`, in evaluation mode, and f(x).
fn autograd(
    p: &Plan,
    w: &Weights,
    x: &Tensor,
    r: &Tensor,
) -> Result<(Tensor, Tensor), Box<dyn std::error::Error>> {
    let params: Vec<Tensor> = w.params.iter().map(Tensor::detach).collect();
    let x = x.detach().set_requires_grad(true);
    let out = forward(p, &params, &w.buffers, &x, false)?;
    let total = (&out * r).sum(Kind::Float);
    let g = Tensor::f_run_backward(&[&total], &[&x], false, false)?.remove(0);
    Ok((g, out.detach()))
}

/// Whether `a` equals `b` up to float rounding, relative to `b`'s largest value.
fn close(a: &Tensor, b: &Tensor) -> Result<bool, TchError> {
    let scale = f64::try_from(b.f_abs()?.f_max()?)?.max(1e-30);
    let diff = f64::try_from(a.f_sub(b)?.f_abs()?.f_max()?)?;
    Ok(a.size() == b.size() && diff <= 1e-5 * scale)
}

#[test]
fn input_gradients_match_autograd_for_every_operation() -> TestResult {
    let _lock = torch_lock();
    tch::manual_seed(11);
    for (layers, input) in MODELS {
        let (p, w) = model(layers, input)?;
        let x = examples(6, input)?;
        let tape = Tape::record(&p, &w.params, &w.buffers, &x)?;
        for _ in 0..2 {
            let r = tape.out.f_randn_like()?;
            let (expected, out) = autograd(&p, &w, &x, &r)?;
            assert!(close(&tape.out, &out)?, "outputs of {layers}");
            let ours = tape.input_gradient(&r)?;
            assert!(
                close(&ours, &expected)?,
                "input gradient of {layers}: {ours} vs {expected}"
            );
            assert!(
                f64::try_from(expected.abs().max())? > 0.0,
                "a nonzero gradient: {layers}"
            );
        }
    }
    Ok(())
}

#[test]
fn a_wrong_gradient_would_be_noticed() -> TestResult {
    let _lock = torch_lock();
    tch::manual_seed(12);
    let (layers, input) = MODELS[0];
    let (p, w) = model(layers, input)?;
    let x = examples(4, input)?;
    let tape = Tape::record(&p, &w.params, &w.buffers, &x)?;
    let r = tape.out.f_randn_like()?;
    let (expected, _) = autograd(&p, &w, &x, &r)?;
    let ours = tape.input_gradient(&r)?;
    // The comparison is strict enough to reject a gradient off by a factor or a sign flip of
    // one example.
    assert!(!close(&(&ours * 1.001), &expected)?);
    let flipped = ours.copy();
    let _ = flipped.select(0, 1).f_neg_()?;
    assert!(!close(&flipped, &expected)?);
    Ok(())
}

#[test]
fn recording_and_backward_passes_write_nothing_of_the_callers() -> TestResult {
    let _lock = torch_lock();
    tch::manual_seed(13);
    for (layers, input) in MODELS {
        let (p, w) = model(layers, input)?;
        let x = examples(3, input)?;
        let x_before = x.copy();
        let tape = Tape::record(&p, &w.params, &w.buffers, &x)?;
        let r = tape.out.f_randn_like()?;
        let r_before = r.copy();
        let first = tape.input_gradient(&r)?;
        let second = tape.input_gradient(&r)?;
        assert!(x.equal(&x_before) && r.equal(&r_before), "{layers}");
        assert!(
            first.equal(&second),
            "a second pass gives the same: {layers}"
        );
    }
    Ok(())
}

#[test]
fn widest_counts_the_largest_activation() -> TestResult {
    let (p, w) = model(MODELS[0].0, MODELS[0].1)?;
    // 2×10×10 input, conv stride 2 padding 1 → 4×5×5 = 100, pool → 4×2×2.
    assert_eq!(widest(&p, &w.params, &[2, 10, 10]), 200);
    let (p, w) = model(MODELS[1].0, MODELS[1].1)?;
    // 1×11×11 → 3×9×9 = 243 → 3×4×4 → 2×2×2.
    assert_eq!(widest(&p, &w.params, &[1, 11, 11]), 243);
    Ok(())
}
