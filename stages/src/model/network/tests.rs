use super::*;
use crate::testing::torch_lock;
use pipeline_kinds::model::plan::plan;
use pipeline_kinds::model::spec::ModelSpec;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn spec(json: &str) -> Result<ModelSpec, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn built_models_have_the_planned_parameter_counts() -> TestResult {
    let _lock = torch_lock();
    for (hidden, expected) in [
        ("[5,10,10,10,10,10,5]", 571),
        ("[10,18,15,4]", 572),
        ("[190]", 571),
    ] {
        let p = plan(
            &spec(&format!(r#"{{"mlp": {{"hidden": {hidden}}}}}"#))?,
            &[1],
            1,
        )?;
        let w = Weights::init(&p, Device::Cpu)?;
        let built: usize = w.params.iter().map(Tensor::numel).sum();
        assert_eq!((built, w.flat.numel()), (expected, expected), "{hidden}");
    }
    Ok(())
}

#[test]
fn initialisation_is_seeded_and_within_pytorch_bounds() -> TestResult {
    let _lock = torch_lock();
    let p = plan(&spec(r#"{"mlp": {"hidden": [16]}}"#)?, &[4], 3)?;
    tch::manual_seed(5);
    let a = Weights::init(&p, Device::Cpu)?;
    tch::manual_seed(5);
    let b = Weights::init(&p, Device::Cpu)?;
    assert!(a.flat.equal(&b.flat));
    let w0 = f64::try_from(a.params[0].abs().max())?;
    assert!(
        w0 <= 0.5 && w0 > 0.4,
        "layer 0 weights within 1/sqrt(4): {w0}"
    );
    let w1 = f64::try_from(a.params[2].abs().max())?;
    assert!(w1 <= 0.25, "layer 2 weights within 1/sqrt(16): {w1}");
    Ok(())
}

#[test]
fn parameters_are_views_of_the_flat_vector() -> TestResult {
    let _lock = torch_lock();
    let p = plan(&spec(r#"{"mlp": {"hidden": [2]}}"#)?, &[1], 1)?;
    let w = Weights::init(&p, Device::Cpu)?;
    {
        let _guard = tch::no_grad_guard();
        let _ = w.flat.shallow_clone().f_fill_(0.5)?;
    }
    assert_eq!(f64::try_from(w.params[3].sum(Kind::Double))?, 0.5);
    let names: Vec<String> = w.named(&p).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "layers.0.weight",
            "layers.0.bias",
            "layers.2.weight",
            "layers.2.bias"
        ]
    );
    Ok(())
}

#[test]
fn forward_and_gradients_through_views() -> TestResult {
    let _lock = torch_lock();
    let s = spec(
        r#"{"layers": [{"conv": {"filters": 4, "kernel": 3, "padding": "same"}}, "batchnorm",
            "tanh", {"avgpool": 2}, "flatten", {"dropout": 0.5}, {"dense": 3}]}"#,
    )?;
    let p = plan(&s, &[2, 4, 4], 3)?;
    let w = Weights::init(&p, Device::Cpu)?;
    let x = Tensor::f_randn([5, 2, 4, 4], (Kind::Float, Device::Cpu))?;
    let y = forward(&p, &w.params, &w.buffers, &x, true)?;
    assert_eq!(y.size(), vec![5, 3]);
    let grads = Tensor::f_run_backward(&[y.sum(Kind::Float)], &w.params, false, false)?;
    assert_eq!(grads.len(), w.params.len());
    assert_eq!(grads[0].size(), vec![4, 2, 3, 3]);
    // Training mode moved the running mean away from zero.
    assert!(f64::try_from(w.buffers[0].abs().sum(Kind::Double))? > 0.0);
    let eval1 = forward(&p, &w.params, &w.buffers, &x, false)?;
    let eval2 = forward(&p, &w.params, &w.buffers, &x, false)?;
    assert!(
        eval1.equal(&eval2),
        "evaluation mode is deterministic (no dropout)"
    );
    Ok(())
}

#[test]
fn wrong_tensor_count_is_a_bug_not_a_panic() -> TestResult {
    let p = plan(&spec(r#"{"mlp": {"hidden": [2]}}"#)?, &[1], 1)?;
    let x = Tensor::f_zeros([1, 1], (Kind::Float, Device::Cpu))?;
    assert!(forward(&p, &[], &[], &x, false).is_err());
    Ok(())
}

#[test]
fn activations_in_place_match_the_plain_computation_to_second_order() -> TestResult {
    let _lock = torch_lock();
    let s = spec(
        r#"{"layers": [{"conv": {"filters": 3, "kernel": 3}}, "relu", {"maxpool": 2}, "elu",
            "flatten", {"dense": 6}, "tanh", "sigmoid", {"dense": 2}]}"#,
    )?;
    let p = plan(&s, &[1, 6, 6], 2)?;
    let w = Weights::init(&p, Device::Cpu)?;
    let x = Tensor::f_randn([4, 1, 6, 6], (Kind::Float, Device::Cpu))?;
    let flat = w.flat.detach().set_requires_grad(true);
    let v = views(&p, &flat)?;
    let plain = x
        .conv2d(&v[0], Some(&v[1]), [1, 1], [0, 0], [1, 1], 1)
        .relu()
        .max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
        .elu()
        .flatten(1, -1)
        .linear(&v[2], Some(&v[3]))
        .tanh()
        .sigmoid()
        .linear(&v[4], Some(&v[5]));
    let ours = forward(&p, &v, &w.buffers, &x, false)?;
    assert!(ours.equal(&plain));
    // Gradients and a Hessian-vector product agree as well.
    let direction = flat.randn_like();
    let hvp = |out: &Tensor| -> Result<(Tensor, Tensor), tch::TchError> {
        let loss = out.square().sum(Kind::Float);
        let g = Tensor::f_run_backward(&[&loss], &[&flat], true, true)?.remove(0);
        let hv = Tensor::f_run_backward(&[&g.dot(&direction)], &[&flat], true, false)?.remove(0);
        Ok((g, hv))
    };
    let ((g1, h1), (g2, h2)) = (hvp(&ours)?, hvp(&plain)?);
    assert!(g1.allclose(&g2, 1e-6, 1e-7, false) && h1.allclose(&h2, 1e-5, 1e-6, false));
    Ok(())
}
