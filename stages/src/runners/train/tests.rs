use std::path::{Path, PathBuf};

use pipeline_engine::stage::{ErrorClass, StageError, StageEvent};
use pipeline_reports::table::Table;
use serde_json::json;

use super::*;
use crate::model::checkpoint::{MODEL_JSON, MODEL_WEIGHTS};
use crate::runners::predict::PREDICTIONS_FILE;
use crate::testing::{
    Events, mnist_images, mnist_labels, run_batch, run_stage, subdir, torch_lock,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The first 8,000 MNIST test images for training, the last 2,000 for testing.
fn mnist_split(root: &Path) -> Result<PathBuf, StageError> {
    let out = subdir(root, "mnist");
    let source = json!({"idx_split": {
        "images": mnist_images(), "labels": mnist_labels(),
        "train": [0, 8000], "test": [8000, 10000]}});
    run_stage(
        "images",
        json!({"source": source}),
        &[],
        &out,
        0,
        &Events::default(),
    )?;
    Ok(out)
}

fn sinc(root: &Path, n: usize) -> Result<PathBuf, StageError> {
    let out = subdir(root, "sinc");
    let params = json!({"function": "sinc", "n": n});
    run_stage("functions", params, &[], &out, 0, &Events::default())?;
    Ok(out)
}

fn small_cnn() -> serde_json::Value {
    json!({
        "model": {"layers": [{"conv": {"filters": 16, "kernel": 3}}, "relu", {"maxpool": 2},
                             "flatten", {"dense": 10}]},
        "optimizer": {"adam": {"lr": 0.002}},
        "batch_size": 32,
        "epochs": 1,
    })
}

fn last_test_row(metrics: &Path) -> Result<(f64, Option<f64>), Box<dyn std::error::Error>> {
    let table = Table::read_parquet(metrics)?.filter_eq("split", "test")?;
    let loss = table
        .f64s("loss")?
        .last()
        .copied()
        .flatten()
        .ok_or("no loss")?;
    Ok((loss, table.f64s("accuracy")?.last().copied().flatten()))
}

#[test]
fn small_cnn_learns_mnist_in_one_epoch_reproducibly() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = mnist_split(root.path())?;
    let (a, b) = (subdir(root.path(), "a"), subdir(root.path(), "b"));
    let events = Events::default();
    let started = std::time::Instant::now();
    run_stage("train", small_cnn(), &[("data", &data)], &a, 7, &events)?;
    let seconds = started.elapsed().as_secs_f64();
    let (_, accuracy) = last_test_row(&a.join(METRICS_FILE))?;
    let accuracy = accuracy.ok_or("no accuracy")?;
    eprintln!("small CNN: one epoch on 8,000 images in {seconds:.2} s, test accuracy {accuracy}");
    assert!(accuracy > 0.9, "test accuracy {accuracy}");
    run_stage(
        "train",
        small_cnn(),
        &[("data", &data)],
        &b,
        7,
        &Events::default(),
    )?;
    for file in [METRICS_FILE, MODEL_WEIGHTS, MODEL_JSON] {
        assert_eq!(
            std::fs::read(a.join(file))?,
            std::fs::read(b.join(file))?,
            "{file} differs"
        );
    }
    let progress = events.0.lock().map(|e| e.clone()).unwrap_or_default();
    assert!(matches!(
        progress.last(),
        Some(StageEvent::Progress {
            done: 1,
            total: 1,
            ..
        })
    ));
    Ok(())
}

#[test]
fn metrics_table_has_the_documented_columns() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = sinc(root.path(), 200)?;
    let out = subdir(root.path(), "train");
    let params = json!({
        "model": {"mlp": {"hidden": [5, 10, 10, 10, 10, 10, 5]}},
        "batch_size": 16, "epochs": 4, "eval_every": 3, "checkpoint_every": 2,
    });
    run_stage(
        "train",
        params,
        &[("data", &data)],
        &out,
        3,
        &Events::default(),
    )?;
    let table = Table::read_parquet(&out.join(METRICS_FILE))?;
    let names = [
        "epoch",
        "step",
        "split",
        "loss",
        "accuracy",
        "batch_size",
        "lr",
        "optimizer",
        "epochs",
        "parameters",
        "seed",
    ];
    assert_eq!(table.names(), names);
    // Evaluations at epochs 0, 3 and 4 (the last), each for train and test.
    assert_eq!(table.i64s("epoch")?, vec![0, 0, 3, 3, 4, 4]);
    assert_eq!(table.i64s("step")?, vec![0, 0, 39, 39, 52, 52]);
    assert_eq!(table.f64s("accuracy")?, vec![None; 6]);
    assert_eq!(table.i64s("parameters")?, vec![571; 6]);
    assert_eq!(table.strs("optimizer")?[0], "adam");
    let checkpoints: Vec<String> = std::fs::read_dir(out.join("checkpoints"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let expected = [
        "epoch-0000.safetensors",
        "epoch-0002.safetensors",
        "epoch-0004.safetensors",
    ];
    assert_eq!(checkpoints, expected);
    Ok(())
}

#[test]
fn divergence_fails_naming_epoch_and_step() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = sinc(root.path(), 100)?;
    let out = subdir(root.path(), "train");
    let params = json!({
        "model": {"mlp": {"hidden": [64, 64]}},
        "optimizer": {"sgd": {"lr": 1e6}},
        "batch_size": 10, "epochs": 3,
    });
    let err = run_stage(
        "train",
        params,
        &[("data", &data)],
        &out,
        0,
        &Events::default(),
    )
    .err()
    .ok_or("expected divergence")?;
    assert_eq!(err.class, ErrorClass::Numerical, "{err}");
    assert!(err.message.contains("at epoch 1, step"), "{err}");
    assert!(!out.join(METRICS_FILE).exists());
    Ok(())
}

#[test]
fn with_on_nan_stop_a_diverging_run_is_recorded_and_stops() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = sinc(root.path(), 100)?;
    let out = subdir(root.path(), "train");
    let params = json!({
        "model": {"mlp": {"hidden": [64, 64]}},
        "optimizer": {"sgd": {"lr": 1e6}},
        "batch_size": 10, "epochs": 3, "on_nan": "stop",
    });
    run_stage(
        "train",
        params,
        &[("data", &data)],
        &out,
        0,
        &Events::default(),
    )?;
    let diverged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("diverged.json"))?)?;
    assert_eq!(diverged["epoch"], 1, "{diverged}");
    assert!(
        diverged["step"].as_u64().is_some_and(|s| s >= 1),
        "{diverged}"
    );
    assert!(
        !out.join("model.safetensors").exists(),
        "no model of non-numbers"
    );
    let table = pipeline_reports::Table::read_parquet(&out.join(METRICS_FILE))?;
    let losses = table.f64s("loss")?;
    assert!(!losses.is_empty() && losses.iter().all(|l| l.is_some_and(f64::is_finite)));
    Ok(())
}

#[test]
fn predictions_of_a_regression_model() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = sinc(root.path(), 101)?;
    let model = subdir(root.path(), "train");
    let params = json!({"model": {"mlp": {"hidden": [8]}}, "epochs": 1});
    run_stage(
        "train",
        params,
        &[("data", &data)],
        &model,
        1,
        &Events::default(),
    )?;
    let out = subdir(root.path(), "predict");
    let inputs = [("model", model.as_path()), ("data", data.as_path())];
    run_stage("predict", json!({}), &inputs, &out, 1, &Events::default())?;
    let table = Table::read_parquet(&out.join(PREDICTIONS_FILE))?;
    assert_eq!(table.names(), ["x", "target", "prediction"]);
    let x = table.f64s("x")?;
    assert_eq!(x.len(), 100);
    assert!((x[0].unwrap_or_default() - (0.0001 + 0.9999 / 200.0)).abs() < 1e-7);
    Ok(())
}

#[test]
fn a_model_that_does_not_fit_the_data_is_an_input_error() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = sinc(root.path(), 10)?;
    let out = subdir(root.path(), "train");
    let params = json!({"model": {"layers": [{"conv": {"filters": 2, "kernel": 3}}]}, "epochs": 1});
    let err = run_stage(
        "train",
        params,
        &[("data", &data)],
        &out,
        0,
        &Events::default(),
    )
    .err()
    .ok_or("expected an error")?;
    assert_eq!(err.class, ErrorClass::Input);
    assert!(err.message.contains("layer 0"), "{err}");
    Ok(())
}

/// Throughput of the homework's deep sinc MLP (batch 128, Adam, 1 thread); run with
/// `cargo test -p pipeline-stages --release -- --ignored --nocapture timing`.
#[test]
#[ignore = "timing, not a check"]
fn timing_sinc_deep_steps_per_second() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = sinc(root.path(), 10_000)?;
    let out = subdir(root.path(), "train");
    let epochs = 40;
    let params = json!({
        "model": {"mlp": {"hidden": [5, 10, 10, 10, 10, 10, 5]}},
        "batch_size": 128, "epochs": epochs, "eval_every": epochs,
    });
    let started = std::time::Instant::now();
    let events = Events::default();
    crate::testing::run_stage_threads("train", params, &[("data", &data)], &out, 0, &events, 1)?;
    let seconds = started.elapsed().as_secs_f64();
    let steps = (epochs * 79) as f64;
    eprintln!(
        "sinc deep: {steps} steps in {seconds:.2} s = {:.0} steps/s",
        steps / seconds
    );
    Ok(())
}

/// One epoch of the test CNN, timed without data loading or evaluation.
#[test]
#[ignore = "timing, not a check"]
fn timing_small_cnn_epoch() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = mnist_split(root.path())?;
    for epochs in [1, 3] {
        let out = subdir(root.path(), &format!("e{epochs}"));
        let mut params = small_cnn();
        params["epochs"] = json!(epochs);
        params["eval_every"] = json!(100);
        let started = std::time::Instant::now();
        run_stage(
            "train",
            params,
            &[("data", &data)],
            &out,
            7,
            &Events::default(),
        )?;
        eprintln!(
            "small CNN, {epochs} epochs: {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Full-batch steps make the first step's figures checkable: its loss is the train loss of
/// the initial weights, its gradient norm that of the full gradient there.
#[test]
fn logged_steps_are_the_losses_and_gradient_norms_before_each_update() -> TestResult {
    use crate::analysis::flat_loss::FlatLoss;
    use crate::train::step_log::STEPS_FILE;
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = sinc(root.path(), 100)?;
    let out = subdir(root.path(), "train");
    let params = json!({
        "model": {"mlp": {"hidden": [6], "activation": "tanh"}},
        "batch_size": 100, "epochs": 3, "checkpoint_every": 1, "log_steps": true,
    });
    crate::testing::run_stage_threads(
        "train",
        params,
        &[("data", &data)],
        &out,
        3,
        &Events::default(),
        1,
    )?;
    let steps = Table::read_parquet(&out.join(STEPS_FILE))?;
    assert_eq!(
        steps.names(),
        ["step", "epoch", "loss", "grad_norm", "scope"]
    );
    assert_eq!(steps.i64s("step")?, [1, 2, 3]);
    assert_eq!(steps.i64s("epoch")?, [1, 2, 3]);
    assert_eq!(steps.strs("scope")?, ["mini_batch"; 3]);
    let metrics = Table::read_parquet(&out.join(METRICS_FILE))?.filter_eq("split", "train")?;
    let initial_loss = metrics.f64s("loss")?[0].ok_or("no loss")?;
    let first_loss = steps.f64s("loss")?[0].ok_or("no loss")?;
    assert!(
        (first_loss - initial_loss).abs() < 1e-6 * initial_loss,
        "{first_loss} vs {initial_loss}"
    );
    let (info, plan, _) = crate::model::checkpoint::load_model(&out, tch::Device::Cpu)?;
    let initial = crate::model::checkpoint::load_weights(
        &crate::model::checkpoint::checkpoint_file(&out, 0),
        &plan,
        tch::Device::Cpu,
    )?;
    let set = Dataset::load(&data)?;
    let split = crate::train::data::Split::new(
        &set.train_x,
        &set.train_y,
        &info.normalization,
        tch::Device::Cpu,
    )?;
    let f = FlatLoss::new(&plan, &[], Loss::Mse, &split, 1000);
    let grad = initial.flat.zeros_like();
    let _loss = f.gradient(&initial.flat.detach(), &grad)?;
    let want = grad.norm().double_value(&[]);
    let got = steps.f64s("grad_norm")?[0].ok_or("no norm")?;
    assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
    Ok(())
}

#[test]
fn logging_steps_changes_nothing_else() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = sinc(root.path(), 100)?;
    let params = |log: bool| {
        let mut p = json!({"model": {"mlp": {"hidden": [4]}}, "batch_size": 20, "epochs": 2});
        if log {
            p["log_steps"] = json!(true);
        }
        p
    };
    let (plain, logged) = (subdir(root.path(), "plain"), subdir(root.path(), "logged"));
    for (dir, log) in [(&plain, false), (&logged, true)] {
        crate::testing::run_stage_threads(
            "train",
            params(log),
            &[("data", &data)],
            dir,
            1,
            &Events::default(),
            1,
        )?;
    }
    let read =
        |dir: &Path| Table::read_parquet(&dir.join(METRICS_FILE)).and_then(|t| t.f64s("loss"));
    assert_eq!(read(&plain)?, read(&logged)?);
    assert_eq!(
        std::fs::read(plain.join(MODEL_WEIGHTS))?,
        std::fs::read(logged.join(MODEL_WEIGHTS))?
    );
    assert!(!plain.join(crate::train::step_log::STEPS_FILE).exists());
    let metadata = pipeline_reports::table::read_metadata(&plain.join(METRICS_FILE))?;
    assert!(
        metadata.iter().all(|(_, v)| !v.contains("log_steps")),
        "{metadata:?}"
    );
    let steps = Table::read_parquet(&logged.join(crate::train::step_log::STEPS_FILE))?;
    assert_eq!(steps.i64s("step")?, (1..=10).collect::<Vec<i64>>());
    assert_eq!(steps.i64s("epoch")?, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    Ok(())
}

/// Trains one `train` stage per seed, each alone, into `root/alone-<seed>`.
fn train_alone(
    root: &Path,
    params: &serde_json::Value,
    data: &Path,
    seeds: &[u64],
) -> Result<Vec<PathBuf>, StageError> {
    let mut outs = Vec::new();
    for &seed in seeds {
        let out = subdir(root, &format!("alone-{seed}"));
        run_stage(
            "train",
            params.clone(),
            &[("data", data)],
            &out,
            seed,
            &Events::default(),
        )?;
        outs.push(out);
    }
    Ok(outs)
}

/// Trains one `train` stage per seed as one batch into `root/<prefix>-<seed>`; returns the
/// folders, or the first stage's error.
fn train_batched(
    root: &Path,
    prefix: &str,
    params: &serde_json::Value,
    data: &Path,
    seeds: &[u64],
) -> Result<Vec<PathBuf>, StageError> {
    let outs: Vec<PathBuf> = seeds
        .iter()
        .map(|s| subdir(root, &format!("{prefix}-{s}")))
        .collect();
    let runs: Vec<(&Path, u64)> = outs
        .iter()
        .map(PathBuf::as_path)
        .zip(seeds.iter().copied())
        .collect();
    let events = Events::default();
    for result in run_batch("train", params.clone(), &[("data", data)], &runs, &events) {
        result?;
    }
    Ok(outs)
}

/// A run's losses and accuracies (in row order) and final weights.
type RunResults = (Vec<f64>, Vec<f64>, Vec<f32>);

/// Each run's metrics (loss and accuracy in row order) and final weights.
fn run_results(out: &Path) -> Result<RunResults, Box<dyn std::error::Error>> {
    let table = Table::read_parquet(&out.join(METRICS_FILE))?;
    let losses = table
        .f64s("loss")?
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect();
    let accuracies = table
        .f64s("accuracy")?
        .iter()
        .map(|v| v.unwrap_or(-1.0))
        .collect();
    let weights = crate::tensor_file::read_tensors(&out.join(MODEL_WEIGHTS))?
        .into_values()
        .flat_map(|t| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap_or_default())
        .collect();
    Ok((losses, accuracies, weights))
}

fn assert_close(what: &str, a: &[f64], b: &[f64], tolerance: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs()).max(1e-3);
        assert!(
            (x - y).abs() <= tolerance * scale,
            "{what}[{i}]: {x} alone, {y} batched"
        );
    }
}

/// Three seeds of the deep sinc MLP trained alone and as one batch: both go through the host
/// trainer, whose runs never share a number, so every evaluation, every checkpoint and the
/// final weights are bit for bit the same; and the seeds differ from each other (so the
/// agreement is not that of one run copied three times).
#[test]
fn seeds_trained_as_one_batch_match_seeds_trained_alone() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = sinc(root.path(), 300)?;
    let params = json!({
        "model": {"mlp": {"hidden": [5, 10, 10, 10, 10, 10, 5]}},
        "batch_size": 32, "epochs": 6, "eval_every": 2, "checkpoint_every": 3,
        "optimizer": {"adam": {"lr": 0.01}},
    });
    let seeds = [3u64, 11, 4];
    let alone = train_alone(root.path(), &params, &data, &seeds)?;
    let batched = train_batched(root.path(), "batch", &params, &data, &seeds)?;
    let mut finals = Vec::new();
    for (a, b) in alone.iter().zip(&batched) {
        let (loss_a, acc_a, w_a) = run_results(a)?;
        let (loss_b, acc_b, w_b) = run_results(b)?;
        assert_eq!(
            loss_a.len(),
            4 * 2,
            "evaluations at epochs 0, 2, 4, 6 on two splits"
        );
        assert_eq!(loss_a, loss_b);
        assert_eq!(acc_a, acc_b);
        assert_eq!(w_a, w_b);
        let bytes = |dir: &Path| std::fs::read(dir.join("checkpoints/epoch-0003.safetensors"));
        assert_eq!(bytes(a)?, bytes(b)?);
        let listing = |dir: &Path| -> Result<Vec<_>, std::io::Error> {
            let mut names: Vec<_> = std::fs::read_dir(dir.join("checkpoints"))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            names.sort();
            Ok(names)
        };
        assert_eq!(listing(a)?, listing(b)?);
        assert_eq!(listing(b)?.len(), 3, "checkpoints at epochs 0, 3, 6");
        finals.push(loss_a[loss_a.len() - 1]);
    }
    assert!(
        finals[0] != finals[1] && finals[1] != finals[2],
        "{finals:?}"
    );
    Ok(())
}

/// The host trainer (which trains small fully connected models on the CPU with its own loops)
/// against libtorch's loop, for every activation and optimizer it implements: evaluations and
/// final weights agree up to rounding. A dropout layer of probability 0 (the identity, which
/// draws no random numbers) keeps a run on libtorch's loop. Batches of 30 over 100 examples
/// leave a partial last batch, and none is a multiple of the trainer's block of 64 examples.
#[test]
fn host_trainer_matches_libtorch_for_every_activation_and_optimizer() -> TestResult {
    let _lock = torch_lock();
    let cases = [
        ("tanh", json!({"adam": {"lr": 0.01, "weight_decay": 0.001}})),
        (
            "sigmoid",
            json!({"sgd": {"lr": 0.05, "momentum": 0.9, "nesterov": true}}),
        ),
        (
            "selu",
            json!({"sgd": {"lr": 0.02, "momentum": 0.5, "weight_decay": 0.01}}),
        ),
        (
            "elu",
            json!({"rmsprop": {"lr": 0.001, "momentum": 0.5, "decay": 0.01}}),
        ),
        ("softplus", json!({"rmsprop": {"lr": 0.002, "alpha": 0.9}})),
        ("relu", json!({"sgd": {"lr": 0.05}})),
    ];
    for (activation, optimizer) in cases {
        let root = tempfile::tempdir()?;
        let data = sinc(root.path(), 100)?;
        let params = json!({
            "model": {"layers": [
                "flatten", {"dense": 6}, activation, {"dense": 7}, activation, {"dense": 1},
            ]},
            "batch_size": 30, "epochs": 3, "optimizer": optimizer,
        });
        let seeds = [7u64, 8];
        let mut on_libtorch = params.clone();
        on_libtorch["model"]["layers"][0] = json!({"dropout": 0.0});
        let alone = train_alone(root.path(), &on_libtorch, &data, &seeds)?;
        let batched = train_batched(root.path(), "host", &params, &data, &seeds)?;
        for (a, b) in alone.iter().zip(&batched) {
            let (loss_a, _, w_a) = run_results(a)?;
            let (loss_b, _, w_b) = run_results(b)?;
            let what = format!("{activation} with {optimizer}");
            assert_close(&format!("{what}: loss"), &loss_a, &loss_b, 1e-4);
            let as_f64 = |w: &[f32]| w.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
            assert_close(
                &format!("{what}: weights"),
                &as_f64(&w_a),
                &as_f64(&w_b),
                1e-3,
            );
            assert!(w_a.iter().all(|v| v.is_finite()), "{what}: {w_a:?}");
        }
    }
    Ok(())
}

/// A classifier MLP on real MNIST images, two seeds alone and batched: the test loss and
/// accuracy after an epoch agree up to rounding (a few borderline images may flip).
#[test]
fn batched_classifiers_match_classifiers_trained_alone() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = mnist_split(root.path())?;
    let params = json!({"model": {"mlp": {"hidden": [32]}}, "batch_size": 64, "epochs": 1});
    let seeds = [1u64, 2];
    let alone = train_alone(root.path(), &params, &data, &seeds)?
        .iter()
        .map(|out| last_test_row(&out.join(METRICS_FILE)))
        .collect::<Result<Vec<_>, _>>()?;
    let outs = train_batched(root.path(), "b", &params, &data, &seeds)?;
    for ((loss_a, acc_a), out) in alone.iter().zip(&outs) {
        let (loss_b, acc_b) = last_test_row(&out.join(METRICS_FILE))?;
        assert!(
            (loss_a - loss_b).abs() < 1e-3 * loss_a,
            "{loss_a} alone, {loss_b} batched"
        );
        let (acc_a, acc_b) = (acc_a.ok_or("no accuracy")?, acc_b.ok_or("no accuracy")?);
        assert!(
            (acc_a - acc_b).abs() <= 0.002,
            "{acc_a} alone, {acc_b} batched"
        );
        assert!(acc_b > 0.85, "accuracy {acc_b}");
    }
    Ok(())
}

/// Runs in a batch whose loss stops being a number end alone: failing by default, stopping
/// with `diverged.json` and no model under `on_nan: stop`.
#[test]
fn diverging_runs_in_a_batch_fail_or_stop_each_on_its_own() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = sinc(root.path(), 100)?;
    let diverging = json!({
        "model": {"mlp": {"hidden": [16, 16]}}, "batch_size": 10, "epochs": 3,
        "optimizer": {"sgd": {"lr": 1e12}},
    });
    let outs: Vec<PathBuf> = (0..2)
        .map(|i| subdir(root.path(), &format!("fail-{i}")))
        .collect();
    let runs: Vec<(&Path, u64)> = outs.iter().map(PathBuf::as_path).zip([5, 6]).collect();
    for result in run_batch(
        "train",
        diverging.clone(),
        &[("data", &data)],
        &runs,
        &Events::default(),
    ) {
        let error = result.err().ok_or("a diverging run succeeded")?;
        assert_eq!(error.class, ErrorClass::Numerical, "{error}");
    }
    let mut stopping = diverging;
    stopping["on_nan"] = json!("stop");
    let outs = train_batched(root.path(), "stop", &stopping, &data, &[5, 6])?;
    for out in &outs {
        assert!(out.join(DIVERGED).is_file());
        assert!(!out.join(MODEL_WEIGHTS).exists());
        assert!(out.join(METRICS_FILE).is_file());
    }
    Ok(())
}
