use std::path::{Path, PathBuf};

use pipeline_engine::stage::ErrorClass;
use pipeline_reports::table::Table;
use serde_json::json;

use super::*;
use crate::testing::{Events, function_data, run_stage_threads, subdir, torch_lock};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A small tanh MLP fitted to sinc on 200 points with noisy mini-batch steps: trained, but
/// with the gradient that mini-batch training leaves along the stiff directions.
fn trained_sinc(root: &Path) -> Result<(PathBuf, PathBuf), Box<dyn std::error::Error>> {
    let data = function_data(root, "sinc", "sinc", 200)?;
    let params = json!({
        "model": {"mlp": {"hidden": [4, 4], "activation": "tanh"}},
        "optimizer": {"adam": {"lr": 0.01}},
        "batch_size": 20, "epochs": 200, "eval_every": 200,
    });
    let model = subdir(root, "fit");
    run_stage_threads(
        "train",
        params,
        &[("data", &data)],
        &model,
        4,
        &Events::default(),
        1,
    )?;
    Ok((data, model))
}

fn critical(
    root: &Path,
    name: &str,
    (data, model): &(PathBuf, PathBuf),
    params: serde_json::Value,
) -> Result<PathBuf, pipeline_engine::stage::StageError> {
    let out = subdir(root, name);
    let inputs = [("model", model.as_path()), ("data", data.as_path())];
    run_stage_threads(
        "critical_point",
        params,
        &inputs,
        &out,
        5,
        &Events::default(),
        1,
    )?;
    Ok(out)
}

fn first(table: &Table, column: &str) -> Result<f64, Box<dyn std::error::Error>> {
    Ok(table
        .f64s(column)?
        .first()
        .copied()
        .flatten()
        .ok_or("missing value")?)
}

#[test]
fn the_gradient_norm_phase_lowers_the_norm_of_a_trained_sinc_model_tenfold() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let subject = trained_sinc(root.path())?;
    let params = json!({"max_steps": 300, "samples": 200});
    let out = critical(root.path(), "a", &subject, params.clone())?;
    let table = Table::read_parquet(&out.join(CRITICAL_FILE))?;
    let names = [
        "definition",
        "minimal_ratio",
        "loss",
        "grad_norm",
        "reached",
        "steps",
        "threshold",
        "initial_loss",
        "initial_grad_norm",
        "radius",
        "samples",
        "tau",
        "positive",
        "near_zero",
        "negative",
        "max_abs_eigenvalue",
        "parameters",
        "examples",
    ];
    assert_eq!(table.names(), names);
    assert_eq!(table.strs("definition")?, ["sampled", "hessian"]);
    let (before, after) = (
        first(&table, "initial_grad_norm")?,
        first(&table, "grad_norm")?,
    );
    eprintln!(
        "gradient norm {before:.3e} -> {after:.3e} ({:.0}x)",
        before / after
    );
    assert!(after * 10.0 <= before, "{before} -> {after}");
    // The threshold was not reached: all 300 steps were taken, and the table says so.
    assert_eq!(
        (table.i64s("steps")?[0], table.bools("reached")?[0]),
        (300, false)
    );
    let ratios = table.f64s("minimal_ratio")?;
    assert!(
        ratios.iter().flatten().all(|r| (0.0..=1.0).contains(r)),
        "{ratios:?}"
    );
    let counts: i64 = ["positive", "near_zero", "negative"]
        .iter()
        .map(|c| table.i64s(c).map(|v| v[0]))
        .sum::<Result<i64, _>>()?;
    assert_eq!(counts, 33);
    let trace = Table::read_parquet(&out.join(TRACE_FILE))?;
    assert_eq!(trace.num_rows(), 301);
    let smallest = trace
        .f64s("grad_norm")?
        .into_iter()
        .flatten()
        .fold(f64::MAX, f64::min);
    assert_eq!(smallest, after, "the point kept is the best iterate");
    let eigen = Table::read_parquet(&out.join(EIGENVALUES_FILE))?;
    assert_eq!(eigen.num_rows(), 33);
    let again = critical(root.path(), "b", &subject, params)?;
    for file in [CRITICAL_FILE, TRACE_FILE, EIGENVALUES_FILE] {
        assert_eq!(
            std::fs::read(out.join(file))?,
            std::fs::read(again.join(file))?,
            "{file}"
        );
    }
    Ok(())
}

#[test]
fn a_reached_threshold_stops_the_descent_at_once() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let subject = trained_sinc(root.path())?;
    let out = critical(
        root.path(),
        "c",
        &subject,
        json!({"threshold": 1e3, "samples": 10}),
    )?;
    let table = Table::read_parquet(&out.join(CRITICAL_FILE))?;
    assert_eq!(
        (table.i64s("steps")?[0], table.bools("reached")?[0]),
        (0, true)
    );
    assert_eq!(first(&table, "loss")?, first(&table, "initial_loss")?);
    Ok(())
}

#[test]
fn classification_models_are_refused() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = crate::testing::mnist_subset(root.path(), "mnist", [0, 100], [100, 120])?;
    let params =
        json!({"model": {"layers": [{"avgpool": 7}, "flatten", {"dense": 10}]}, "epochs": 1});
    let model = subdir(root.path(), "fit");
    run_stage_threads(
        "train",
        params,
        &[("data", &data)],
        &model,
        0,
        &Events::default(),
        1,
    )?;
    let err = critical(root.path(), "c", &(data, model), json!({}))
        .err()
        .ok_or("expected an error")?;
    assert_eq!(err.class, ErrorClass::Input, "{err}");
    assert!(err.message.contains("classification model"), "{err}");
    Ok(())
}
