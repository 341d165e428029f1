//! One step of the host trainer against libtorch's autograd on the same weights and batch:
//! the loss and every parameter's gradient, for each activation and both losses, with the
//! portable loops and (where the processor has them) the AVX2 ones.

use pipeline_kinds::model::plan::plan;
use pipeline_kinds::model::spec::ModelSpec;
use serde_json::json;
use tch::{Device, Kind, Tensor};

use super::pass::{Workspace, step};
use super::vector::Portable;
use super::{DenseNet, HostData};
use crate::model::network::{Weights, forward};
use crate::testing::torch_lock;
use crate::train::data::Split;
use crate::train::loss::Loss;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The loss and gradient of one step on the host, with the loops `avx2` asks for.
fn host_step(
    net: &DenseNet,
    data: &HostData,
    params: &[f32],
    index: &[i64],
    avx2: bool,
) -> (f32, Vec<f32>) {
    let mut ws = Workspace::new(net, index.len());
    let loss = if avx2 {
        avx2_step(net, data, params, index, &mut ws)
    } else {
        step::<Portable>(net, data, params, index, &mut ws)
    };
    (loss, ws.params_grad)
}

#[cfg(target_arch = "x86_64")]
fn avx2_step(
    net: &DenseNet,
    data: &HostData,
    params: &[f32],
    index: &[i64],
    ws: &mut Workspace,
) -> f32 {
    #[target_feature(enable = "avx2,fma")]
    fn with_avx2(
        net: &DenseNet,
        data: &HostData,
        params: &[f32],
        index: &[i64],
        ws: &mut Workspace,
    ) -> f32 {
        step::<super::Avx2>(net, data, params, index, ws)
    }
    // SAFETY: only called after `avx2_available` saw both features.
    unsafe { with_avx2(net, data, params, index, ws) }
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_step(_: &DenseNet, _: &HostData, _: &[f32], _: &[i64], _: &mut Workspace) -> f32 {
    unreachable!("AVX2 is an x86-64 feature")
}

fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Checks one step of `model` (on `features` inputs, `outputs` outputs) with `loss` on a
/// batch of `batch` of 50 random examples, against autograd.
fn check(
    model: serde_json::Value,
    features: usize,
    outputs: usize,
    loss: Loss,
    batch: usize,
) -> TestResult {
    let spec: ModelSpec = serde_json::from_value(model.clone())?;
    let plan = plan(&spec, &[features], outputs)?;
    tch::manual_seed(3);
    let weights = Weights::init(&plan, Device::Cpu)?;
    let n = 50i64;
    let x = Tensor::f_randn([n, features as i64], (Kind::Float, Device::Cpu))?;
    let y = match loss {
        Loss::Mse => Tensor::f_randn([n, outputs as i64], (Kind::Float, Device::Cpu))?,
        Loss::CrossEntropy => Tensor::f_randint(outputs as i64, [n], (Kind::Int64, Device::Cpu))?,
    };
    let split = Split { x, y, len: n };
    let data = HostData::new(&split, loss, outputs)?;
    let net = DenseNet::new(&plan, features).ok_or("the host trainer refused the model")?;
    let params = Vec::<f32>::try_from(&weights.flat)?;
    // Examples in a scrambled order, as an epoch's permutation gives them.
    let index: Vec<i64> = (0..batch as i64).map(|i| (i * 7 + 3) % n).collect();

    let picked = Tensor::from_slice(&index);
    let out = forward(
        &plan,
        &weights.params,
        &weights.buffers,
        &split.x.index_select(0, &picked),
        true,
    )?;
    let expected_loss = loss.mean(&out, &split.y.index_select(0, &picked))?;
    let grads = Tensor::f_run_backward(&[&expected_loss], &weights.params, false, false)?;
    let flat: Vec<Tensor> = grads.iter().map(|g| g.reshape([-1])).collect();
    let expected = Vec::<f32>::try_from(Tensor::cat(&flat, 0))?;
    let expected_loss = expected_loss.double_value(&[]) as f32;

    let mut kinds = vec![false];
    if avx2_available() {
        kinds.push(true);
    }
    for avx2 in kinds {
        let what = format!("{model} with {loss:?}, avx2 {avx2}");
        let (got_loss, got) = host_step(&net, &data, &params, &index, avx2);
        assert!(
            (got_loss - expected_loss).abs() <= 1e-5 * expected_loss.abs().max(1.0),
            "{what}: loss {got_loss} here, {expected_loss} by libtorch"
        );
        let scale = expected.iter().fold(0f32, |m, g| m.max(g.abs())).max(1e-6);
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                (g - e).abs() <= 1e-4 * scale,
                "{what}: gradient {i} is {g} here, {e} by libtorch"
            );
        }
        assert!(
            expected.iter().any(|&g| g != 0.0),
            "{what}: no gradient at all"
        );
    }
    Ok(())
}

#[test]
fn one_step_matches_autograd_for_every_activation_and_loss() -> TestResult {
    let _lock = torch_lock();
    for act in ["relu", "tanh", "sigmoid", "selu", "elu", "softplus"] {
        for (loss, outputs) in [(Loss::Mse, 2), (Loss::CrossEntropy, 3)] {
            // An activation on the inputs, between layers and on the outputs; 37 examples,
            // not a multiple of any block.
            let model = json!({"layers": [act, {"dense": 9}, act, {"dense": 5}, act, {"dense": outputs}, act]});
            check(model, 3, outputs, loss, 37)?;
        }
    }
    // The homework's deep sinc MLP, a batch of whole blocks.
    check(
        json!({"mlp": {"hidden": [5, 10, 10, 10, 10, 10, 5]}}),
        1,
        1,
        Loss::Mse,
        128,
    )?;
    Ok(())
}

#[test]
fn wide_inputs_and_other_layers_are_left_to_libtorch() -> TestResult {
    let spec: ModelSpec = serde_json::from_value(json!({"mlp": {"hidden": [8]}}))?;
    assert!(DenseNet::new(&plan(&spec, &[784], 10)?, 784).is_none());
    assert!(DenseNet::new(&plan(&spec, &[64], 10)?, 64).is_some());
    let conv: ModelSpec = serde_json::from_value(
        json!({"layers": [{"conv": {"filters": 2, "kernel": 3}}, "flatten", {"dense": 2}]}),
    )?;
    assert!(DenseNet::new(&plan(&conv, &[1, 8, 8], 2)?, 64).is_none());
    Ok(())
}
