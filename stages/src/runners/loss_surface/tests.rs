use pipeline_reports::table::Table;
use serde_json::json;

use super::*;
use crate::runners::train::METRICS_FILE;
use crate::testing::{Events, function_data, run_stage_threads, subdir, torch_lock, train_model};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn the_centre_of_the_surface_is_the_trained_model_and_runs_repeat() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = function_data(root.path(), "sinc", "sinc", 100)?;
    let params = json!({"model": {"mlp": {"hidden": [6, 6], "activation": "tanh"}},
                        "optimizer": {"adam": {"lr": 0.01}}, "batch_size": 20, "epochs": 4,
                        "eval_every": 4});
    let model = train_model(root.path(), "fit", &data, params, 2)?;
    let inputs = [("model", model.as_path()), ("data", data.as_path())];
    let mut files = Vec::new();
    for name in ["a", "b"] {
        let out = subdir(root.path(), name);
        let params = json!({"range": 0.5, "points": 5});
        run_stage_threads(
            "loss_surface",
            params,
            &inputs,
            &out,
            9,
            &Events::default(),
            1,
        )?;
        files.push(std::fs::read(out.join(SURFACE_FILE))?);
    }
    assert_eq!(files[0], files[1], "a second run differs");
    let table = Table::read_parquet(&root.path().join("a").join(SURFACE_FILE))?;
    assert_eq!(table.names(), ["alpha", "beta", "loss", "accuracy"]);
    assert_eq!(table.num_rows(), 25);
    let alpha = table.f64s("alpha")?;
    assert_eq!(
        alpha[..5],
        [Some(-0.5), Some(-0.25), Some(0.0), Some(0.25), Some(0.5)]
    );
    let losses = table.f64s("loss")?;
    let trained = Table::read_parquet(&model.join(METRICS_FILE))?.filter_eq("split", "train")?;
    let trained = trained
        .f64s("loss")?
        .last()
        .copied()
        .flatten()
        .ok_or("no trained loss")?;
    // The surface is evaluated with libtorch, the training's own evaluations by the host
    // trainer (a small MLP), which sums in another order: equal up to rounding.
    let centre = losses[12].ok_or("no loss at the centre")?;
    assert!(
        (centre - trained).abs() <= 1e-6 * trained,
        "the centre is the trained weights: {centre} vs {trained}"
    );
    let highest = losses.iter().flatten().fold(f64::MIN, |a, &b| a.max(b));
    assert!(highest > trained, "moving away raises the loss somewhere");
    Ok(())
}
