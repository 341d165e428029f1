use std::path::{Path, PathBuf};

use pipeline_engine::stage::{
    Device, ErrorClass, NoEvents, Runners, StageContext, StageInputs, UpstreamOutput,
};
use pipeline_reports::table::Table;
use serde_json::json;

use super::*;
use crate::testing::{function_data, subdir, torch_lock, train_model};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Two runs of one small model on sinc, checkpointed every 2 of 5 epochs (0, 2, 4, and the
/// final weights of epoch 5), evaluated every epoch.
fn runs(root: &Path) -> Result<Vec<UpstreamOutput>, Box<dyn std::error::Error>> {
    let data = function_data(root, "sinc", "sinc", 100)?;
    let params = json!({"model": {"mlp": {"hidden": [5, 3], "activation": "tanh"}},
                        "optimizer": {"adam": {"lr": 0.01}}, "batch_size": 20, "epochs": 5,
                        "checkpoint_every": 2});
    let mut runs = Vec::new();
    for seed in [1u64, 2] {
        let dir = train_model(root, &format!("run{seed}"), &data, params.clone(), seed)?;
        runs.push(UpstreamOutput {
            stage: format!("trajectory[seed={seed}]"),
            matrix: [("seed".to_owned(), seed.to_string())].into(),
            dir,
        });
    }
    Ok(runs)
}

fn pca(runs: &[UpstreamOutput], out: &Path, params: serde_json::Value) -> Result<(), StageError> {
    let mut registry = pipeline_engine::stage::Registry::new();
    pipeline_kinds::register(&mut registry);
    let declaration = registry
        .get("pca")
        .ok_or_else(|| StageError::bug("no pca"))?;
    let params = declaration
        .canonicalize(params)
        .map_err(|issue| StageError::input(issue.message))?;
    let mut runners = Runners::new();
    crate::register_runners(&mut runners);
    let inputs = StageInputs {
        slots: [("runs".to_owned(), runs.to_vec())].into(),
    };
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let resume: PathBuf = out.join("../resume");
    let ctx = StageContext {
        stage: "pca",
        pipeline: "test",
        inputs: &inputs,
        out_dir: out,
        resume_dir: &resume,
        workspace: out,
        seed: 0,
        threads: 1,
        device: Device::Cpu,
        events: &NoEvents,
        cancel: &cancel,
    };
    runners.run("pca", &params, &ctx)
}

#[test]
fn every_snapshot_of_every_run_is_projected_with_its_scores() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let runs = runs(root.path())?;
    let out = subdir(root.path(), "pca");
    pca(&runs, &out, json!({}))?;
    let table = Table::read_parquet(&out.join(PCA_FILE))?;
    assert_eq!(
        table.names(),
        ["run", "epoch", "pc1", "pc2", "loss", "accuracy"]
    );
    assert_eq!(table.strs("run")?, ["1", "1", "1", "1", "2", "2", "2", "2"]);
    assert_eq!(table.i64s("epoch")?, [0, 2, 4, 5, 0, 2, 4, 5]);
    // The scores are the runs' own train losses at those epochs.
    let metrics = Table::read_parquet(&runs[0].file(METRICS_FILE))?.filter_eq("split", "train")?;
    let first_run: Vec<Option<f64>> = table.f64s("loss")?[..4].to_vec();
    let want: Vec<Option<f64>> = [0usize, 2, 4, 5]
        .iter()
        .map(|&e| metrics.f64s("loss").ok()?[e])
        .collect();
    assert_eq!(first_run, want);
    // Coordinates are centred: they sum to zero over all snapshots.
    for column in ["pc1", "pc2"] {
        let sum: f64 = table.f64s(column)?.into_iter().flatten().sum();
        assert!(sum.abs() < 1e-9, "{column}: {sum}");
    }
    let explained = Table::read_parquet(&out.join(EXPLAINED_FILE))?;
    let ratios: Vec<f64> = explained.f64s("ratio")?.into_iter().flatten().collect();
    assert_eq!(ratios.len(), 7, "8 snapshots span 7 dimensions");
    assert!(ratios.windows(2).all(|w| w[0] >= w[1]));
    let cumulative = explained.f64s("cumulative")?;
    assert!((cumulative[6].ok_or("none")? - 1.0).abs() < 1e-12);
    let again = subdir(root.path(), "again");
    pca(&runs, &again, json!({}))?;
    for file in [PCA_FILE, EXPLAINED_FILE] {
        assert_eq!(
            std::fs::read(out.join(file))?,
            std::fs::read(again.join(file))?
        );
    }
    Ok(())
}

#[test]
fn one_layer_alone_and_an_unknown_layer_named_with_the_others() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let runs = runs(root.path())?;
    let out = subdir(root.path(), "layer");
    pca(&runs, &out, json!({"layer": "layers.2"}))?;
    let whole = subdir(root.path(), "whole");
    pca(&runs, &whole, json!({}))?;
    let read = |dir: &Path| Table::read_parquet(&dir.join(PCA_FILE))?.f64s("pc1");
    assert_ne!(read(&out)?, read(&whole)?);
    let err = pca(
        &runs,
        &subdir(root.path(), "bad"),
        json!({"layer": "layers.9"}),
    )
    .err()
    .ok_or("expected an error")?;
    assert_eq!(err.class, ErrorClass::Input);
    assert!(
        err.message
            .contains("(it has: layers.0, layers.2, layers.4)"),
        "{err}"
    );
    Ok(())
}
