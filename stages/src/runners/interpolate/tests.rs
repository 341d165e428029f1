use std::path::Path;

use pipeline_engine::stage::ErrorClass;
use pipeline_reports::table::Table;
use serde_json::json;

use super::INTERPOLATION_FILE;
use crate::runners::train::METRICS_FILE;
use crate::testing::{Events, mnist_subset, run_stage, subdir, torch_lock, train_model};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn mlp(hidden: usize, batch_size: usize, epochs: usize) -> serde_json::Value {
    json!({
        "model": {"mlp": {"hidden": [hidden]}},
        "batch_size": batch_size, "epochs": epochs, "eval_every": epochs,
    })
}

/// The final `(loss, accuracy)` of each split in a training run, train first.
fn final_scores(run: &Path) -> Result<Vec<(f64, f64)>, Box<dyn std::error::Error>> {
    let table = Table::read_parquet(&run.join(METRICS_FILE))?;
    let mut scores = Vec::new();
    for split in ["train", "test"] {
        let rows = table.filter_eq("split", split)?;
        let loss = rows.f64s("loss")?.last().copied().flatten();
        let accuracy = rows.f64s("accuracy")?.last().copied().flatten();
        scores.push((loss.ok_or("no loss")?, accuracy.ok_or("no accuracy")?));
    }
    Ok(scores)
}

#[test]
fn the_ends_of_the_line_are_the_two_models() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = mnist_subset(root.path(), "mnist", [0, 1000], [1000, 1500])?;
    let a = train_model(root.path(), "a", &data, mlp(32, 16, 1), 1)?;
    let b = train_model(root.path(), "b", &data, mlp(32, 256, 2), 2)?;
    let out = subdir(root.path(), "interpolate");
    let params = json!({"alpha_min": -0.5, "alpha_max": 1.5, "points": 3, "eval_batch_size": 300});
    let inputs = [
        ("a", a.as_path()),
        ("b", b.as_path()),
        ("data", data.as_path()),
    ];
    run_stage("interpolate", params, &inputs, &out, 0, &Events::default())?;
    let table = Table::read_parquet(&out.join(INTERPOLATION_FILE))?;
    assert_eq!(table.names(), ["alpha", "split", "loss", "accuracy"]);
    let alphas: Vec<f64> = table.f64s("alpha")?.into_iter().flatten().collect();
    assert_eq!(alphas, [-0.5, -0.5, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.5, 1.5]);
    assert_eq!(table.strs("split")?[..2], ["train", "test"]);
    let (losses, accuracies) = (table.f64s("loss")?, table.f64s("accuracy")?);
    for (row, run) in [(2, &a), (6, &b)] {
        for (i, (loss, accuracy)) in final_scores(run)?.into_iter().enumerate() {
            let got = losses[row + i].ok_or("no loss")?;
            assert!(
                (got - loss).abs() <= 1e-6 * loss,
                "row {}: {got} vs {loss}",
                row + i
            );
            assert_eq!(accuracies[row + i], Some(accuracy), "row {}", row + i);
        }
    }
    assert!(losses.iter().all(|l| l.is_some_and(f64::is_finite)));
    let far = json!({"alpha_min": 0.0, "alpha_max": 1e38, "points": 2});
    let out = subdir(root.path(), "far");
    let err = run_stage("interpolate", far, &inputs, &out, 0, &Events::default())
        .err()
        .ok_or("expected a numerical error")?;
    assert_eq!(err.class, ErrorClass::Numerical, "{err}");
    assert!(
        err.message.contains("train loss is") && err.message.contains("at alpha = 1000"),
        "{err}"
    );
    assert!(!out.join(INTERPOLATION_FILE).exists());
    Ok(())
}

#[test]
fn models_of_different_architectures_are_refused_naming_both() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = mnist_subset(root.path(), "mnist", [0, 50], [50, 60])?;
    let a = train_model(root.path(), "a", &data, mlp(8, 50, 1), 1)?;
    let b = train_model(root.path(), "b", &data, mlp(9, 50, 1), 1)?;
    let out = subdir(root.path(), "interpolate");
    let inputs = [
        ("a", a.as_path()),
        ("b", b.as_path()),
        ("data", data.as_path()),
    ];
    let err = run_stage(
        "interpolate",
        json!({}),
        &inputs,
        &out,
        0,
        &Events::default(),
    )
    .err()
    .ok_or("expected an error")?;
    assert_eq!(err.class, ErrorClass::Input);
    for name in ["upstream-a", "upstream-b", "a/model.json", "b/model.json"] {
        assert!(err.message.contains(name), "{name} missing: {err}");
    }
    assert!(!out.join(INTERPOLATION_FILE).exists());
    Ok(())
}

/// The train loss of a run at each evaluated epoch, in order.
fn train_losses(run: &Path) -> Result<Vec<(i64, f64)>, Box<dyn std::error::Error>> {
    let rows = Table::read_parquet(&run.join(METRICS_FILE))?.filter_eq("split", "train")?;
    let losses = rows.f64s("loss")?.into_iter().flatten();
    Ok(rows.i64s("epoch")?.into_iter().zip(losses).collect())
}

#[test]
fn from_initial_to_final_weights_the_line_ends_at_both_losses() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = crate::testing::function_data(root.path(), "sinc", "sinc", 100)?;
    let params = json!({"model": {"mlp": {"hidden": [6], "activation": "tanh"}},
                        "optimizer": {"adam": {"lr": 0.01}}, "batch_size": 20, "epochs": 5,
                        "eval_every": 5, "checkpoint_every": 5});
    let run = train_model(root.path(), "run", &data, params, 3)?;
    let out = subdir(root.path(), "interpolate");
    let params = json!({"a_epoch": 0, "alpha_min": 0.0, "alpha_max": 1.0, "points": 5});
    let inputs = [
        ("a", run.as_path()),
        ("b", run.as_path()),
        ("data", data.as_path()),
    ];
    run_stage("interpolate", params, &inputs, &out, 0, &Events::default())?;
    let table = Table::read_parquet(&out.join(INTERPOLATION_FILE))?.filter_eq("split", "train")?;
    let losses: Vec<f64> = table.f64s("loss")?.into_iter().flatten().collect();
    let expected = train_losses(&run)?;
    assert_eq!(expected.iter().map(|e| e.0).collect::<Vec<_>>(), [0, 5]);
    let (initial, last) = (expected[0].1, expected[1].1);
    assert!(
        initial > 2.0 * last,
        "training lowered the loss: {initial} -> {last}"
    );
    // The line is evaluated with libtorch, the training's own evaluations by the host trainer
    // (a small MLP), which sums in another order: equal up to rounding.
    for (got, want) in [(losses[0], initial), (losses[4], last)] {
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "{got} on the line, {want} trained"
        );
    }
    let err = run_stage(
        "interpolate",
        json!({"b_epoch": 3}),
        &inputs,
        &subdir(root.path(), "missing"),
        0,
        &Events::default(),
    )
    .err()
    .ok_or("expected an error")?;
    assert_eq!(err.class, ErrorClass::Input);
    assert!(
        err.message
            .contains("no checkpoint of epoch 3 (`b_epoch`); its checkpoints: 0, 5"),
        "{err}"
    );
    Ok(())
}
