use super::*;
use pipeline_engine::stage::ErrorClass;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn image_info(train_size: usize, test_size: usize) -> DatasetInfo {
    DatasetInfo {
        format: FORMAT,
        name: "tiny".to_owned(),
        task: Task::Classification,
        classes: Some(3),
        input_shape: vec![1, 2, 2],
        input_dtype: InputDtype::U8,
        train_size,
        test_size,
        normalization: Normalization {
            divide: 255.0,
            mean: vec![0.5],
            std: vec![0.25],
        },
        source: "test".to_owned(),
        label_noise: None,
    }
}

fn images(labels: Vec<u8>) -> ImageSet {
    let pixels = (0..labels.len() * 4).map(|i| i as u8).collect();
    ImageSet {
        shape: [1, 2, 2],
        pixels,
        labels,
    }
}

#[test]
fn image_data_set_round_trips() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = Dataset::from_images(image_info(3, 1), &images(vec![0, 2, 1]), &images(vec![1]))?;
    data.write(dir.path())?;
    let back = Dataset::load(dir.path())?;
    assert_eq!(back.info, data.info);
    assert_eq!(back.train_x.size(), vec![3, 1, 2, 2]);
    assert_eq!(back.train_x.kind(), Kind::Uint8);
    assert_eq!(Vec::<i64>::try_from(&back.train_y)?, vec![0, 2, 1]);
    assert_eq!(i64::try_from(back.train_x.get(2).get(0).get(1).get(1))?, 11);
    Ok(())
}

#[test]
fn regression_data_set_round_trips() -> TestResult {
    let dir = tempfile::tempdir()?;
    let info = DatasetInfo {
        task: Task::Regression,
        classes: None,
        input_shape: vec![1],
        input_dtype: InputDtype::F32,
        normalization: Normalization::identity(1),
        ..image_info(2, 1)
    };
    let train = Points {
        x: &[0.0, 1.0],
        y: &[1.0, 0.5],
    };
    let test = Points {
        x: &[0.5],
        y: &[0.75],
    };
    Dataset::from_points(info, 1, train, test)?.write(dir.path())?;
    let back = Dataset::load(dir.path())?;
    assert_eq!(back.train_y.size(), vec![2, 1]);
    assert_eq!(f32::try_from(back.test_y.get(0).get(0))?, 0.75);
    Ok(())
}

#[test]
fn disagreement_with_the_description_names_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = Dataset::from_images(image_info(3, 1), &images(vec![0, 2, 1]), &images(vec![1]))?;
    data.write(dir.path())?;
    write_json(&dir.path().join(INFO_FILE), &image_info(4, 1))?;
    let err = Dataset::load(dir.path()).err().ok_or("expected an error")?;
    assert_eq!(err.class, ErrorClass::Input);
    assert!(
        err.message.contains("dataset.safetensors"),
        "{}",
        err.message
    );
    assert!(err.message.contains("`train_x`") && err.message.contains("[4, 1, 2, 2]"));
    let info = DatasetInfo {
        classes: Some(2),
        ..image_info(3, 1)
    };
    write_json(&dir.path().join(INFO_FILE), &info)?;
    let err = Dataset::load(dir.path())
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(
        err.contains("labels from 0 to 2") && err.contains("2 classes"),
        "{err}"
    );
    Ok(())
}

#[test]
fn inconsistent_description_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let info = DatasetInfo {
        classes: None,
        ..image_info(1, 1)
    };
    write_json(&dir.path().join(INFO_FILE), &info)?;
    let err = read_info(dir.path())
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(
        err.contains("dataset.json") && err.contains("classification needs"),
        "{err}"
    );
    Ok(())
}
