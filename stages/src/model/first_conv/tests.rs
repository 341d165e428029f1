use super::*;
use crate::model::network::{Weights, views};
use crate::testing::torch_lock;
use crate::train::evaluate::{sums, sums_with};
use crate::train::loss::Loss;
use pipeline_kinds::model::plan::plan;
use pipeline_kinds::model::spec::ModelSpec;
use tch::{Device, Kind};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn model_plan(layers: &str, input: &[usize], outputs: usize) -> Result<Plan, StageError> {
    let spec: ModelSpec = serde_json::from_str(&format!(r#"{{"layers": {layers}}}"#))
        .map_err(|e| StageError::input(e.to_string()))?;
    plan(&spec, input, outputs)
}

/// A CNN head as in the bench, a head with batch normalization and activations on both sides
/// of the flatten, and two models that need the channels first.
const MODELS: &[(&str, &[usize], Layout)] = &[
    (
        r#"[{"conv": {"filters": 5, "kernel": 3}}, "relu", "flatten", {"dense": 4}]"#,
        &[1, 9, 9],
        Layout::ChannelsLast {
            flatten: 2,
            dense: 3,
        },
    ),
    (
        r#"[{"conv": {"filters": 4, "kernel": 3, "stride": 2, "padding": "same"}}, "batchnorm",
            "tanh", {"dropout": 0.5}, "flatten", "sigmoid", {"dropout": 0.2}, {"dense": 6},
            "relu", {"dense": 4}]"#,
        &[3, 10, 9],
        Layout::ChannelsLast {
            flatten: 4,
            dense: 7,
        },
    ),
    (
        r#"[{"conv": {"filters": 3, "kernel": 3, "padding": "same"}}, "elu", {"maxpool": 2},
            "flatten", {"dense": 4}]"#,
        &[2, 8, 8],
        Layout::ChannelsFirst,
    ),
    (
        r#"[{"conv": {"filters": 3, "kernel": 2, "stride": 2}}, "flatten", "batchnorm",
            {"dense": 4}]"#,
        &[2, 7, 7],
        Layout::ChannelsFirst,
    ),
];

/// Random weights for `p` with batch-norm statistics away from their initial values.
fn weights(p: &Plan) -> Result<Weights, Box<dyn std::error::Error>> {
    let w = Weights::init(p, Device::Cpu)?;
    let _guard = tch::no_grad_guard();
    let _ = w.flat.shallow_clone().f_normal_(0.0, 0.5)?;
    for b in &w.buffers {
        let _ = b.shallow_clone().f_uniform_(0.5, 2.0)?;
    }
    Ok(w)
}

/// `n` random examples of `input` with labels of 4 classes.
fn split(n: i64, input: &[usize]) -> Result<Split, tch::TchError> {
    let mut shape = vec![n];
    shape.extend(input.iter().map(|&d| d as i64));
    Ok(Split {
        x: Tensor::f_randn(shape.as_slice(), (Kind::Float, Device::Cpu))?,
        y: Tensor::f_randint(4, [n], (Kind::Int64, Device::Cpu))?,
        len: n,
    })
}

#[test]
fn layouts_follow_the_operations_after_the_convolution() -> TestResult {
    for (layers, input, expected) in MODELS {
        assert_eq!(
            layout(&model_plan(layers, input, 4)?),
            *expected,
            "{layers}"
        );
    }
    Ok(())
}

#[test]
fn outputs_from_the_columns_equal_the_plain_forward_pass() -> TestResult {
    let _lock = torch_lock();
    tch::manual_seed(31);
    for (layers, input, _) in MODELS {
        let p = model_plan(layers, input, 4)?;
        let w = weights(&p)?;
        let params = views(&p, &w.flat.detach())?;
        let data = split(11, input)?;
        // One batch, batches of 4, 4 and 3, and one batch in slices of 972 values (3 examples
        // of the first model, 9 of the second; the last slice shorter).
        for (batch, slice) in [(11, SLICE_VALUES), (4, SLICE_VALUES), (11, 972)] {
            let mut first = FirstConv::new(&p, &data, batch, MAX_VALUES)?.ok_or("no columns")?;
            first.slice_values = slice;
            let factors = first.factors(&params)?;
            let mut start = 0;
            for i in 0..first.columns.len() {
                let n = batch.min(data.len - start);
                let x = data.x.narrow(0, start, n);
                let plain = crate::model::network::forward(&p, &params, &w.buffers, &x, false)?;
                let ours = first.forward(i, &factors, &params, &w.buffers)?;
                let scale = f64::try_from(plain.abs().max())?;
                let diff = f64::try_from((&ours - &plain).abs().max())?;
                assert!(
                    diff <= 1e-5 * scale,
                    "{layers}, batch {i}: {ours} vs {plain}"
                );
                start += n;
            }
            assert_eq!(start, data.len);
        }
    }
    Ok(())
}

#[test]
fn loss_sums_from_the_columns_equal_the_plain_ones() -> TestResult {
    let _lock = torch_lock();
    tch::manual_seed(32);
    for (layers, input, _) in MODELS {
        let p = model_plan(layers, input, 4)?;
        let w = weights(&p)?;
        let params = views(&p, &w.flat.detach())?;
        let data = split(50, input)?;
        let first = FirstConv::new(&p, &data, 16, MAX_VALUES)?.ok_or("no columns")?;
        let factors = first.factors(&params)?;
        let ours = sums_with(Loss::CrossEntropy, &data, 16, |i, _| {
            first.forward(i, &factors, &params, &w.buffers)
        })?;
        let plain = sums(&p, &params, &w.buffers, Loss::CrossEntropy, &data, 16)?;
        let (ours, plain) = (Vec::<f64>::try_from(&ours)?, Vec::<f64>::try_from(&plain)?);
        assert!(
            (ours[0] - plain[0]).abs() <= 1e-5 * plain[0],
            "{ours:?} vs {plain:?}"
        );
        assert_eq!(ours[1], plain[1], "{layers}");
    }
    Ok(())
}

#[test]
fn no_columns_without_a_first_convolution_or_beyond_the_limit() -> TestResult {
    let data = split(10, &[1, 6, 6])?;
    let mlp = model_plan(r#"["flatten", {"dense": 4}]"#, &[1, 6, 6], 4)?;
    assert!(FirstConv::new(&mlp, &data, 10, MAX_VALUES)?.is_none());
    let cnn = model_plan(MODELS[0].0, &[1, 6, 6], 4)?;
    // 10 examples × (1·3·3 + 1) rows × 4·4 positions = 1,600 values.
    assert!(FirstConv::new(&cnn, &data, 10, 1600)?.is_some());
    assert!(FirstConv::new(&cnn, &data, 10, 1599)?.is_none());
    Ok(())
}
