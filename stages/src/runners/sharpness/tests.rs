use std::path::{Path, PathBuf};

use pipeline_engine::stage::{ErrorClass, StageError};
use pipeline_reports::table::Table;
use serde_json::json;
use tch::{Device, Kind, Tensor};

use super::SHARPNESS_FILE;
use crate::data::dataset::Dataset;
use crate::model::checkpoint::load_model;
use crate::model::network::{forward, views};
use crate::testing::{Events, mnist_subset, run_stage, subdir, torch_lock, train_model};
use crate::train::data::normalize;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A data set and a tiny trained model: 4×4 average-pooled digits into a linear layer, 170
/// parameters, small enough for an exact Hessian.
fn tiny_model(root: &Path) -> Result<(PathBuf, PathBuf), Box<dyn std::error::Error>> {
    let data = mnist_subset(root, "mnist", [0, 1000], [1000, 1100])?;
    let params = json!({
        "model": {"layers": [{"avgpool": 7}, "flatten", {"dense": 10}]},
        "optimizer": {"adam": {"lr": 0.01}}, "epochs": 2,
    });
    let model = train_model(root, "tiny", &data, params, 1)?;
    Ok((data, model))
}

fn sharpness(
    root: &Path,
    name: &str,
    (data, model): &(PathBuf, PathBuf),
    params: serde_json::Value,
) -> Result<(Table, PathBuf), Box<dyn std::error::Error>> {
    let out = subdir(root, name);
    let inputs = [("model", model.as_path()), ("data", data.as_path())];
    run_stage("sharpness", params, &inputs, &out, 3, &Events::default())?;
    let path = out.join(SHARPNESS_FILE);
    Ok((Table::read_parquet(&path)?, path))
}

fn value(table: &Table, column: &str) -> Result<f64, Box<dyn std::error::Error>> {
    Ok(table
        .f64s(column)?
        .first()
        .copied()
        .flatten()
        .ok_or("missing value")?)
}

#[test]
fn sharpness_is_never_negative_exactly_zero_without_a_box_and_reproducible() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let subject = tiny_model(root.path())?;
    let params = json!({"epsilon": 0.01, "samples": 40, "ascent_steps": 5, "eval_size": 300,
                        "power_iterations": 5, "eval_batch_size": 128});
    let (table, first) = sharpness(root.path(), "a", &subject, params.clone())?;
    let names = [
        "loss",
        "accuracy",
        "epsilon",
        "samples",
        "keskar",
        "random",
        "hessian_max_eigenvalue",
        "eval_size",
    ];
    assert_eq!(table.names(), names);
    assert_eq!(table.i64s("eval_size")?, [300]);
    let (keskar, random) = (value(&table, "keskar")?, value(&table, "random")?);
    eprintln!("epsilon 0.01: keskar {keskar}, random {random}");
    assert!(
        keskar > 0.0 && random >= 0.0,
        "keskar {keskar}, random {random}"
    );
    // Gradient ascent finds a larger loss than random directions do.
    let loss = value(&table, "loss")?;
    assert!(
        keskar / 100.0 * (1.0 + loss) > random,
        "keskar {keskar}, random {random}"
    );
    assert!(value(&table, "hessian_max_eigenvalue")? > 0.0);
    let (_, second) = sharpness(root.path(), "b", &subject, params.clone())?;
    assert_eq!(
        std::fs::read(first)?,
        std::fs::read(second)?,
        "a second run differs"
    );
    let mut flat = params;
    flat["epsilon"] = json!(0.0);
    let (table, _) = sharpness(root.path(), "zero", &subject, flat.clone())?;
    assert_eq!(
        (value(&table, "keskar")?, value(&table, "random")?),
        (0.0, 0.0)
    );
    let mut huge = flat;
    huge["epsilon"] = json!(1e300);
    let err = sharpness(root.path(), "huge", &subject, huge)
        .err()
        .ok_or("expected an error")?;
    let err = err.downcast::<StageError>()?;
    assert_eq!(err.class, ErrorClass::Numerical, "{err}");
    assert!(
        err.message.contains("at step 1 of the gradient ascent"),
        "{err}"
    );
    Ok(())
}

/// The exact Hessian of the mean loss over the first `n` training examples, row by row.
fn exact_hessian(data: &Path, model: &Path, n: i64) -> Result<Tensor, Box<dyn std::error::Error>> {
    let (info, plan, weights) = load_model(model, Device::Cpu)?;
    let set = Dataset::load(data)?;
    let x = normalize(
        &set.train_x.narrow(0, 0, n),
        &info.normalization,
        Device::Cpu,
    )?;
    let y = set.train_y.narrow(0, 0, n);
    let flat = weights.flat.detach().set_requires_grad(true);
    let out = forward(&plan, &views(&plan, &flat)?, &weights.buffers, &x, false)?;
    let loss = out.cross_entropy_for_logits(&y);
    let grad = Tensor::run_backward(&[&loss], &[&flat], true, true).remove(0);
    let size = flat.size()[0];
    let rows: Vec<Tensor> = (0..size)
        .map(|i| Tensor::run_backward(&[grad.get(i)], &[&flat], true, false).remove(0))
        .collect();
    Ok(Tensor::stack(&rows, 0).to_kind(Kind::Double))
}

#[test]
fn the_hessian_eigenvalue_matches_an_exact_hessian() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let subject = tiny_model(root.path())?;
    let params = json!({"samples": 1, "ascent_steps": 1, "eval_size": 300,
                        "power_iterations": 100});
    let (table, _) = sharpness(root.path(), "sharpness", &subject, params)?;
    let estimate = value(&table, "hessian_max_eigenvalue")?;
    let hessian = exact_hessian(&subject.0, &subject.1, 300)?;
    let symmetric = (&hessian - hessian.tr()).abs().max().double_value(&[]);
    assert!(symmetric < 1e-4, "asymmetry {symmetric}");
    let exact = hessian.linalg_eigvalsh("L").max().double_value(&[]);
    eprintln!("largest Hessian eigenvalue: power iteration {estimate}, exact {exact}");
    assert!(
        (estimate - exact).abs() <= 0.03 * exact,
        "{estimate} vs {exact}"
    );
    Ok(())
}

#[test]
fn a_convolutional_model_is_measured_from_its_first_layers_columns_as_plainly() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = mnist_subset(root.path(), "mnist", [0, 600], [600, 700])?;
    let params = json!({
        "model": {"layers": [{"conv": {"filters": 4, "kernel": 3, "stride": 2}}, "relu",
                             "flatten", {"dense": 10}]},
        "epochs": 1,
    });
    let subject = (
        data.clone(),
        train_model(root.path(), "cnn", &data, params, 1)?,
    );
    let params = json!({"epsilon": 0.0, "samples": 3, "ascent_steps": 1, "eval_size": 250,
                        "power_iterations": 1, "eval_batch_size": 100});
    let (table, _) = sharpness(root.path(), "zero", &subject, params)?;
    // The random measure compares losses taken from the columns with the loss at θ taken the
    // same way: exactly zero without a box.
    assert_eq!(value(&table, "random")?, 0.0);
    let (info, plan, weights) = load_model(&subject.1, Device::Cpu)?;
    let set = Dataset::load(&subject.0)?;
    let x = normalize(
        &set.train_x.narrow(0, 0, 250),
        &info.normalization,
        Device::Cpu,
    )?;
    let out = forward(&plan, &weights.params, &weights.buffers, &x, false)?;
    let plain = out
        .cross_entropy_for_logits(&set.train_y.narrow(0, 0, 250))
        .double_value(&[]);
    let loss = value(&table, "loss")?;
    assert!((loss - plain).abs() <= 1e-5 * plain, "{loss} vs {plain}");
    Ok(())
}
