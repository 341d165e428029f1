use pipeline_engine::stage::ErrorClass;
use pipeline_kinds::images::FASHION_DIR;
use serde_json::json;

use super::*;
use crate::data::dataset::read_info;
use crate::testing::{Events, mnist_images, mnist_labels, run_stage, subdir, torch_lock};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn split(train: [usize; 2], test: [usize; 2]) -> serde_json::Value {
    json!({"idx_split": {"images": mnist_images(), "labels": mnist_labels(),
                         "train": train, "test": test}})
}

#[test]
fn idx_split_writes_the_described_data_set() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let out = subdir(root.path(), "out");
    let params = json!({"source": split([0, 8000], [8000, 10000]), "test_limit": 500});
    run_stage("images", params, &[], &out, 0, &Events::default())?;
    let info = read_info(&out)?;
    assert_eq!(
        (info.name.as_str(), info.train_size, info.test_size),
        ("mnist", 8000, 500)
    );
    assert_eq!(
        (info.input_shape.clone(), info.classes),
        (vec![1, 28, 28], Some(10))
    );
    // MNIST's pixel mean is about 0.13 and its standard deviation about 0.31.
    let norm = &info.normalization;
    assert!(
        (norm.mean[0] - 0.13).abs() < 0.01 && (norm.std[0] - 0.31).abs() < 0.01,
        "{norm:?}"
    );
    let data = Dataset::load(&out)?;
    assert_eq!(data.test_x.size(), vec![500, 1, 28, 28]);
    Ok(())
}

#[test]
fn scale_normalization_only_divides() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let out = subdir(root.path(), "out");
    let params = json!({"source": split([0, 10], [10, 20]), "normalize": "scale", "name": "tiny"});
    run_stage("images", params, &[], &out, 0, &Events::default())?;
    let info = read_info(&out)?;
    assert_eq!(info.name, "tiny");
    assert_eq!(
        info.normalization,
        Normalization {
            divide: 255.0,
            ..Normalization::identity(1)
        }
    );
    Ok(())
}

#[test]
fn bad_ranges_are_refused_before_or_while_reading() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let out = subdir(root.path(), "out");
    let overlap = json!({"source": split([0, 100], [50, 150])});
    let err = run_stage("images", overlap, &[], &out, 0, &Events::default()).err();
    assert!(err.is_some_and(|e| e.message.contains("overlaps the training range")));
    let past = json!({"source": split([0, 100], [9000, 10001])});
    let err = run_stage("images", past, &[], &out, 0, &Events::default()).err();
    let err = err.ok_or("expected an error")?;
    assert_eq!(err.class, ErrorClass::Input);
    assert!(
        err.message
            .contains("[9000, 10001] reaches past the 10000 images"),
        "{err}"
    );
    Ok(())
}

#[test]
fn cifar_source_reads_the_binary_batches() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let dir = subdir(root.path(), "cifar-10-batches-bin");
    for name in pipeline_kinds::images::cifar_files(&dir) {
        let mut record = vec![3u8];
        record.extend((0..3072).map(|i| (i % 251) as u8));
        std::fs::write(name, [record.clone(), record].concat())?;
    }
    let out = subdir(root.path(), "out");
    let params = json!({"source": {"cifar10": {"dir": dir}}, "train_limit": 7});
    run_stage("images", params, &[], &out, 0, &Events::default())?;
    let info = read_info(&out)?;
    assert_eq!(
        (info.name.as_str(), info.train_size, info.test_size),
        ("cifar10", 7, 2)
    );
    assert_eq!(info.input_shape, vec![3, 32, 32]);
    assert_eq!(info.normalization.mean.len(), 3);
    Ok(())
}

#[test]
fn fashion_mnist_preset_reads_the_debian_package() -> TestResult {
    let _lock = torch_lock();
    if !Path::new(FASHION_DIR).is_dir() {
        eprintln!("skipped: {FASHION_DIR} is not installed");
        return Ok(());
    }
    let root = tempfile::tempdir()?;
    let out = subdir(root.path(), "out");
    let params = json!({"source": "fashion_mnist", "train_limit": 100, "test_limit": 10});
    run_stage("images", params, &[], &out, 0, &Events::default())?;
    let info = read_info(&out)?;
    assert_eq!(
        (info.name.as_str(), info.train_size, info.test_size),
        ("fashion-mnist", 100, 10)
    );
    Ok(())
}
