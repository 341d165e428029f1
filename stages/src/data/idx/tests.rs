use super::*;
use crate::testing::{gzip, idx_images, idx_labels, mnist_images, mnist_labels, write};
use pipeline_engine::stage::ErrorClass;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn input_error(result: Result<ImageSet, StageError>) -> Result<String, String> {
    match result {
        Ok(_) => Err("expected an error".to_owned()),
        Err(e) if e.class == ErrorClass::Input => Ok(e.message),
        Err(e) => Err(format!("expected an input error, got {e:?}")),
    }
}

#[test]
fn reads_the_real_mnist_test_set() -> TestResult {
    let set = read_pair(&mnist_images(), &mnist_labels(), 10)?;
    assert_eq!(set.len(), 10_000);
    assert_eq!(set.shape, [1, 28, 28]);
    assert_eq!(set.pixels.len(), 10_000 * 784);
    let counts = set.class_counts(10);
    assert_eq!(
        counts,
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    Ok(())
}

#[test]
fn raw_files_are_read_like_gzipped_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
    let images = write(dir.path(), "images.gz", &idx_images(2, 2, 3, &[7; 12]));
    let labels = write(dir.path(), "labels", &gzip(&idx_labels(&[1, 0])));
    let set = read_pair(&images, &labels, 10)?;
    assert_eq!(set.shape, [1, 2, 3]);
    assert_eq!(set.labels, vec![1, 0]);
    assert_eq!(set.pixels, vec![7; 12]);
    Ok(())
}

#[test]
fn truncated_images_name_file_offset_and_end() -> TestResult {
    let dir = tempfile::tempdir()?;
    let images = write(dir.path(), "short-images", &idx_images(3, 2, 2, &[0; 10]));
    let labels = write(dir.path(), "labels", &idx_labels(&[0, 1, 2]));
    let msg = input_error(read_pair(&images, &labels, 10))?;
    assert!(msg.contains("short-images"), "{msg}");
    assert!(msg.contains("expected 12 bytes of pixels"), "{msg}");
    assert!(
        msg.contains("from byte offset 16") && msg.contains("ends at byte 26"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn truncated_gzip_data_says_offsets_are_unpacked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let images = write(dir.path(), "i.gz", &gzip(&idx_images(3, 2, 2, &[0; 4])));
    let labels = write(dir.path(), "l", &idx_labels(&[0, 1, 2]));
    let msg = input_error(read_pair(&images, &labels, 10))?;
    assert!(msg.contains("offsets in the unpacked data") && msg.contains("ends at byte 20"));
    Ok(())
}

#[test]
fn wrong_magic_names_found_and_expected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let swapped = write(dir.path(), "swapped", &idx_labels(&[0, 1]));
    let msg = input_error(read_pair(&swapped, &swapped, 10))?;
    assert!(
        msg.contains("swapped") && msg.contains("byte offset 0"),
        "{msg}"
    );
    assert!(msg.contains("found") || msg.contains("0x00000801"), "{msg}");
    assert!(
        msg.contains("expected 0x00000803") && msg.contains("file of IDX labels"),
        "{msg}"
    );
    let junk = write(dir.path(), "junk", b"GIF89a-not-idx");
    let msg = input_error(read_pair(&junk, &swapped, 10))?;
    assert!(
        msg.contains("wrong magic number 0x47494638 at byte offset 0"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn label_count_mismatch_names_both_files_and_counts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let images = write(dir.path(), "five-images", &idx_images(5, 1, 1, &[0; 5]));
    let labels = write(dir.path(), "four-labels", &idx_labels(&[0; 4]));
    let msg = input_error(read_pair(&images, &labels, 10))?;
    assert!(
        msg.contains("five-images") && msg.contains("holds 5 images"),
        "{msg}"
    );
    assert!(
        msg.contains("four-labels") && msg.contains("holds 4 labels"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn label_out_of_range_names_offset_and_value() -> TestResult {
    let dir = tempfile::tempdir()?;
    let images = write(dir.path(), "images", &idx_images(3, 1, 1, &[0; 3]));
    let labels = write(dir.path(), "bad-labels", &idx_labels(&[0, 12, 1]));
    let msg = input_error(read_pair(&images, &labels, 10))?;
    assert!(
        msg.contains("bad-labels") && msg.contains("label 12 at byte offset 9"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn huge_header_count_fails_without_allocating() -> TestResult {
    let dir = tempfile::tempdir()?;
    let images = write(dir.path(), "huge", &idx_images(u32::MAX, 28, 28, &[0; 100]));
    let labels = write(dir.path(), "labels", &idx_labels(&[0]));
    let msg = input_error(read_pair(&images, &labels, 10))?;
    let expected = u128::from(u32::MAX) * 784;
    assert!(
        msg.contains("huge") && msg.contains(&format!("expected {expected} bytes")),
        "{msg}"
    );
    assert!(
        msg.contains("from byte offset 16") && msg.contains("ends at byte 116"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn truncated_header_and_trailing_bytes_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let short = write(dir.path(), "short", &[0, 0, 8, 3, 0, 0]);
    let labels = write(dir.path(), "labels", &idx_labels(&[0]));
    let msg = input_error(read_pair(&short, &labels, 10))?;
    assert!(
        msg.contains("expected 16 bytes of header from byte offset 0"),
        "{msg}"
    );
    let long = write(dir.path(), "long", &idx_images(1, 1, 1, &[0, 9, 9]));
    let msg = input_error(read_pair(&long, &labels, 10))?;
    assert!(
        msg.contains("2 unexpected bytes") && msg.contains("byte offset 17"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn missing_file_is_an_environment_error() {
    let err = read_pair(
        Path::new("/no/such/images"),
        Path::new("/no/such/labels"),
        10,
    )
    .err();
    assert_eq!(err.map(|e| e.class), Some(ErrorClass::Environment));
}
