use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use pipeline_engine::stage::{
    Device, ErrorClass, NoEvents, Runners, StageInputs, UpstreamOutput, typed,
};
use pipeline_reports::table::{ColumnData, Table};
use serde_json::json;

use super::*;
use crate::plot::series::Order;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A metrics table of three epochs for train and test, in `dir`.
fn metrics(dir: &Path, scale: f64) -> TestResult {
    std::fs::create_dir_all(dir)?;
    let mut table = Table::new();
    table
        .push("epoch", ColumnData::I64(vec![0, 0, 1, 1, 2, 2]))
        .push(
            "split",
            ColumnData::Str(
                ["train", "test"]
                    .repeat(3)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            ),
        )
        .push(
            "loss",
            ColumnData::F64(
                [1.0, 1.1, 0.5, 0.6, 0.25, 0.3]
                    .map(|v| Some(v * scale))
                    .to_vec(),
            ),
        );
    table.write_parquet(&dir.join("metrics.parquet"), &[])?;
    Ok(())
}

fn upstream(stage: &str, dir: PathBuf) -> UpstreamOutput {
    UpstreamOutput {
        stage: stage.to_owned(),
        matrix: Default::default(),
        dir,
    }
}

/// Canonicalizes `params` as the engine does and runs the registered runner.
fn run_plot(params: serde_json::Value, runs: Vec<UpstreamOutput>, out: &Path) -> TestResult {
    let params = typed(LinePlot)
        .canonicalize(params)
        .map_err(|issue| issue.message)?;
    let mut runners = Runners::new();
    crate::register_runners(&mut runners);
    let inputs = StageInputs {
        slots: [("runs".to_owned(), runs)].into(),
    };
    let cancel = AtomicBool::new(false);
    let ctx = StageContext {
        stage: "plot",
        pipeline: "test",
        inputs: &inputs,
        out_dir: out,
        resume_dir: &out.join("../resume"),
        workspace: out,
        seed: 0,
        threads: 1,
        device: Device::Cpu,
        events: &NoEvents,
        cancel: &cancel,
    };
    runners.run(LinePlot::NAME, &params, &ctx)?;
    Ok(())
}

fn loss_plot() -> serde_json::Value {
    json!({"x": "epoch", "y": "loss", "split_by": "split", "keep": ["train"], "log_y": true,
           "title": "loss", "x_label": "epoch", "y_label": "MSE", "file": "loss"})
}

#[test]
fn loss_curves_of_two_runs_are_drawn_as_png_and_svg() -> TestResult {
    let root = tempfile::tempdir()?;
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    metrics(&a, 1.0)?;
    metrics(&b, 2.0)?;
    let out = root.path().join("out");
    std::fs::create_dir_all(&out)?;
    run_plot(
        loss_plot(),
        vec![upstream("deep", a), upstream("shallow", b)],
        &out,
    )?;
    for file in ["loss.png", "loss.svg"] {
        assert!(std::fs::metadata(out.join(file))?.len() > 0, "{file}");
    }
    let svg = std::fs::read_to_string(out.join("loss.svg"))?;
    assert!(svg.contains("deep train") && svg.contains("shallow train"));
    assert!(!svg.contains("deep test"));
    Ok(())
}

#[test]
fn a_missing_table_is_an_input_error_naming_the_stage() -> TestResult {
    let root = tempfile::tempdir()?;
    let out = root.path().join("out");
    std::fs::create_dir_all(&out)?;
    let empty = upstream("train_deep", root.path().join("nothing"));
    let err = run_plot(loss_plot(), vec![empty], &out)
        .err()
        .ok_or("expected an error")?;
    let err = err
        .downcast::<StageError>()
        .map_err(|_| "not a stage error")?;
    assert_eq!(err.class, ErrorClass::Input);
    assert_eq!(
        err.message,
        "input stage train_deep has no table metrics.parquet"
    );
    Ok(())
}

/// Two runs' paths through a plane in one table, with a loss at each point.
fn trajectories(dir: &Path) -> TestResult {
    std::fs::create_dir_all(dir)?;
    let mut table = Table::new();
    let runs = ["0", "0", "0", "1", "1", "1"].map(str::to_owned).to_vec();
    table
        .push("run", ColumnData::Str(runs))
        .push(
            "pc1",
            ColumnData::F64([3.0, 1.0, 2.0, -1.0, -3.0, -2.0].map(Some).to_vec()),
        )
        .push(
            "pc2",
            ColumnData::F64([0.0, 1.0, 2.0, 0.0, -1.0, -2.0].map(Some).to_vec()),
        )
        .push(
            "loss",
            ColumnData::F64([2.5, 0.1234, 0.01, 2.4, 0.2, 0.000123].map(Some).to_vec()),
        );
    table.write_parquet(&dir.join("pca.parquet"), &[])?;
    Ok(())
}

#[test]
fn trajectories_keep_table_order_get_a_colour_per_run_and_loss_labels() -> TestResult {
    let root = tempfile::tempdir()?;
    let input = root.path().join("pca");
    trajectories(&input)?;
    let out = root.path().join("out");
    std::fs::create_dir_all(&out)?;
    let params = json!({"table": "pca.parquet", "x": "pc1", "y": "pc2", "split_by": "run",
                        "order": "table", "color_by": "split", "annotate": "loss",
                        "mark": "line_and_points", "title": "paths", "x_label": "pc1",
                        "y_label": "pc2", "file": "paths"});
    run_plot(params, vec![upstream("pca", input.clone())], &out)?;
    let svg = std::fs::read_to_string(out.join("paths.svg"))?;
    for label in ["2.50", "0.123", "0.0100", "1.23e-4"] {
        assert!(svg.contains(&format!("\n{label}\n</text>")), "{label}");
    }
    // Each run has its own colour: the first two palette colours both appear.
    assert!(
        svg.contains("#1F5EB4") && svg.contains("#E8710E"),
        "two run colours"
    );
    let table = Table::read_parquet(&input.join("pca.parquet"))?;
    let (pts, labels) =
        crate::plot::series::labelled_points(&table, "pc1", "pc2", Some("loss"), Order::Table)?;
    assert_eq!(
        pts[..3],
        [(3.0, 0.0), (1.0, 1.0), (2.0, 2.0)],
        "rows in table order"
    );
    assert_eq!(labels[1], "0.123");
    Ok(())
}

#[test]
fn panels_draw_further_columns_against_the_same_x() -> TestResult {
    let root = tempfile::tempdir()?;
    let a = root.path().join("a");
    metrics(&a, 1.0)?;
    let out = root.path().join("out");
    std::fs::create_dir_all(&out)?;
    let params = json!({"x": "epoch", "y": "loss", "log_y": true, "split_by": "split",
                        "panels": [{"y": "loss", "y_label": "loss again", "log_y": false}],
                        "title": "two panels", "x_label": "epoch", "y_label": "loss (log)",
                        "file": "panels"});
    run_plot(params, vec![upstream("deep", a)], &out)?;
    let svg = std::fs::read_to_string(out.join("panels.svg"))?;
    assert!(svg.contains("two panels") && svg.contains("loss again") && svg.contains("loss (log)"));
    let size = std::fs::metadata(out.join("panels.png"))?.len();
    assert!(size > 0);
    Ok(())
}
