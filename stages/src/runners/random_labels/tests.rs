use std::path::Path;

use pipeline_engine::stage::ErrorClass;
use pipeline_reports::table::Table;
use serde_json::json;

use crate::data::dataset::Dataset;
use crate::runners::train::METRICS_FILE;
use crate::testing::{Events, mnist_subset, run_stage, subdir, torch_lock, train_model};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn randomize(
    root: &Path,
    data: &Path,
    fraction: f64,
) -> Result<Dataset, Box<dyn std::error::Error>> {
    let out = subdir(root, &format!("random-{fraction}"));
    let params = json!({"fraction": fraction});
    run_stage(
        "random_labels",
        params,
        &[("data", data)],
        &out,
        5,
        &Events::default(),
    )?;
    Ok(Dataset::load(&out)?)
}

fn labels(t: &tch::Tensor) -> Result<Vec<i64>, tch::TchError> {
    Vec::<i64>::try_from(t)
}

/// The final accuracy on `split` in a training run's metrics.
fn final_accuracy(run: &Path, split: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let table = Table::read_parquet(&run.join(METRICS_FILE))?.filter_eq("split", split)?;
    let last = table.f64s("accuracy")?.last().copied().flatten();
    Ok(last.ok_or("no accuracy")?)
}

#[test]
fn random_labels_are_memorized_but_do_not_generalize() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = mnist_subset(root.path(), "mnist", [0, 500], [500, 1000])?;
    let truth = Dataset::load(&data)?;
    let noisy = randomize(root.path(), &data, 1.0)?;
    let noise = noisy
        .info
        .label_noise
        .clone()
        .ok_or("no label noise recorded")?;
    assert_eq!((noise.replaced, noise.fraction, noise.seed), (500, 1.0, 5));
    let (before, after) = (labels(&truth.train_y)?, labels(&noisy.train_y)?);
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert_eq!(changed, noise.changed);
    assert!(
        (425..=475).contains(&changed),
        "{changed} of 500 labels changed"
    );
    assert_eq!(labels(&noisy.test_y)?, labels(&truth.test_y)?);
    assert!(noisy.train_x.equal(&truth.train_x) && noisy.test_x.equal(&truth.test_x));
    let noisy_dir = root.path().join("random-1");
    let params = json!({
        "model": {"mlp": {"hidden": [512, 512]}},
        "optimizer": {"adam": {"lr": 0.001}},
        "batch_size": 32, "epochs": 30, "eval_every": 30,
    });
    let run = train_model(root.path(), "train", &noisy_dir, params, 1)?;
    let (train_acc, test_acc) = (
        final_accuracy(&run, "train")?,
        final_accuracy(&run, "test")?,
    );
    eprintln!("random labels: training accuracy {train_acc}, held-out accuracy {test_acc}");
    assert!(train_acc > 0.9, "training accuracy {train_acc}");
    assert!(test_acc < 0.2, "held-out accuracy {test_acc}");
    Ok(())
}

#[test]
fn fraction_zero_changes_nothing_and_a_part_changes_that_part() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = mnist_subset(root.path(), "mnist", [0, 300], [300, 310])?;
    let truth = labels(&Dataset::load(&data)?.train_y)?;
    let none = randomize(root.path(), &data, 0.0)?;
    assert_eq!(labels(&none.train_y)?, truth);
    let noise = none.info.label_noise.ok_or("no label noise recorded")?;
    assert_eq!((noise.replaced, noise.changed), (0, 0));
    let part = randomize(root.path(), &data, 0.3)?;
    let noise = part.info.label_noise.ok_or("no label noise recorded")?;
    let changed = labels(&part.train_y)?
        .iter()
        .zip(&truth)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!((noise.replaced, noise.changed), (90, changed));
    assert!(changed <= 90 && changed > 60, "{changed}");
    Ok(())
}

#[test]
fn regression_data_and_noise_twice_are_input_errors() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let sinc = subdir(root.path(), "sinc");
    let params = json!({"function": "sinc", "n": 20});
    run_stage("functions", params, &[], &sinc, 0, &Events::default())?;
    let out = subdir(root.path(), "out");
    let params = json!({"fraction": 0.5});
    let err = run_stage(
        "random_labels",
        params.clone(),
        &[("data", &sinc)],
        &out,
        0,
        &Events::default(),
    )
    .err()
    .ok_or("expected an error")?;
    assert_eq!(err.class, ErrorClass::Input);
    assert!(
        err.message.contains("dataset.json") && err.message.contains("regression"),
        "{err}"
    );
    let data = mnist_subset(root.path(), "mnist", [0, 20], [20, 30])?;
    randomize(root.path(), &data, 0.5)?;
    let again = subdir(root.path(), "again");
    let noisy = root.path().join("random-0.5");
    let err = run_stage(
        "random_labels",
        params,
        &[("data", &noisy)],
        &again,
        0,
        &Events::default(),
    )
    .err()
    .ok_or("expected an error")?;
    assert!(err.message.contains("already has random labels"), "{err}");
    Ok(())
}
