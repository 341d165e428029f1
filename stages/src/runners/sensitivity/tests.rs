use pipeline_kinds::predict::SplitName;
use pipeline_reports::table::Table;
use serde_json::json;
use tch::{Device, Kind, Tensor};

use super::SENSITIVITY_FILE;
use crate::data::dataset::Dataset;
use crate::model::checkpoint::load_model;
use crate::testing::{Events, mnist_subset, run_stage, subdir, torch_lock, train_model};
use crate::train::data::normalize;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The closed forms for a linear softmax model z = Wx + b: the loss gradient Wᵀ(s − onehot)
/// and the softmax Jacobian (diag(s) − s sᵀ)W, as per-example norms averaged over the rows of
/// `x`, with the mean loss and accuracy; all in `f64`.
fn closed_form(w: &Tensor, b: &Tensor, x: &Tensor, y: &Tensor) -> [f64; 4] {
    let (w, b) = (w.to_kind(Kind::Double), b.to_kind(Kind::Double));
    let x = x.to_kind(Kind::Double).flatten(1, -1);
    let logits = x.matmul(&w.tr()) + &b;
    let s = logits.softmax(1, Kind::Double);
    let onehot = y.one_hot(10).to_kind(Kind::Double);
    let grad = (&s - &onehot).matmul(&w);
    let grad_norm = grad.square().sum_dim_intlist(1, false, Kind::Double).sqrt();
    let a = s.diag_embed(0, -2, -1) - s.unsqueeze(2).matmul(&s.unsqueeze(1));
    let jacobian = a.matmul(&w);
    let jac_norm = jacobian
        .square()
        .sum_dim_intlist([1, 2].as_slice(), false, Kind::Double)
        .sqrt();
    let loss = -(s.log() * &onehot).sum_dim_intlist(1, false, Kind::Double);
    let correct = logits.argmax(1, false).eq_tensor(y).to_kind(Kind::Double);
    [loss, correct, grad_norm, jac_norm].map(|t| t.mean(Kind::Double).double_value(&[]))
}

#[test]
fn a_linear_model_matches_the_closed_form() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = mnist_subset(root.path(), "mnist", [0, 1000], [1000, 1500])?;
    let params = json!({"model": {"layers": ["flatten", {"dense": 10}]}, "epochs": 1});
    let model = train_model(root.path(), "linear", &data, params, 1)?;
    let out = subdir(root.path(), "sensitivity");
    let inputs = [("model", model.as_path()), ("data", data.as_path())];
    let params = json!({"eval_batch_size": 128, "train_limit": 300});
    run_stage("sensitivity", params, &inputs, &out, 0, &Events::default())?;
    let table = Table::read_parquet(&out.join(SENSITIVITY_FILE))?;
    let names = [
        "split",
        "examples",
        "loss",
        "accuracy",
        "grad_norm",
        "jacobian_norm",
    ];
    assert_eq!(table.names(), names);
    assert_eq!(table.strs("split")?, ["train", "test"]);
    assert_eq!(table.i64s("examples")?, [300, 500]);
    let (info, _, weights) = load_model(&model, Device::Cpu)?;
    let set = Dataset::load(&data)?;
    for (row, (name, n)) in [(SplitName::Train, 300), (SplitName::Test, 500)]
        .into_iter()
        .enumerate()
    {
        let (x, y) = match name {
            SplitName::Train => (&set.train_x, &set.train_y),
            SplitName::Test => (&set.test_x, &set.test_y),
        };
        let x = normalize(&x.narrow(0, 0, n), &info.normalization, Device::Cpu)?;
        let want = closed_form(
            &weights.params[0],
            &weights.params[1],
            &x,
            &y.narrow(0, 0, n),
        );
        for (column, want) in ["loss", "accuracy", "grad_norm", "jacobian_norm"]
            .iter()
            .zip(want)
        {
            let got = table.f64s(column)?[row].ok_or("missing value")?;
            let close = (got - want).abs() <= 1e-5 * want.abs().max(1e-3);
            assert!(
                close,
                "{column} of row {row}: stage {got}, closed form {want}"
            );
        }
    }
    Ok(())
}

#[test]
fn regression_models_are_measured_without_accuracy() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let sinc = subdir(root.path(), "sinc");
    let params = json!({"function": "sinc", "n": 50});
    run_stage("functions", params, &[], &sinc, 0, &Events::default())?;
    let params = json!({"model": {"mlp": {"hidden": [8]}}, "epochs": 1});
    let model = train_model(root.path(), "fit", &sinc, params, 1)?;
    let out = subdir(root.path(), "sensitivity");
    let inputs = [("model", model.as_path()), ("data", sinc.as_path())];
    run_stage(
        "sensitivity",
        json!({}),
        &inputs,
        &out,
        0,
        &Events::default(),
    )?;
    let table = Table::read_parquet(&out.join(SENSITIVITY_FILE))?;
    assert_eq!(table.f64s("accuracy")?, [None, None]);
    assert_eq!(table.i64s("examples")?, [50, 49]);
    let norms = table.f64s("jacobian_norm")?;
    assert!(
        norms
            .iter()
            .all(|v| v.is_some_and(|v| v > 0.0 && v.is_finite())),
        "{norms:?}"
    );
    Ok(())
}
