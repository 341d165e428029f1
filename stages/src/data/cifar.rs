//! A reader for CIFAR-10's binary distribution (`cifar-10-batches-bin/`).
//!
//! The folder holds `data_batch_1.bin` to `data_batch_5.bin` (training, 10,000 images each) and
//! `test_batch.bin`. Every file is a sequence of 3,073-byte records: one label byte (0-9), then
//! 3,072 pixel bytes, the 32x32 red plane, then green, then blue. That is already the
//! channel-major layout the data set stores, so records are copied as they are.
//!
//! The file names are declared with the `images` kind (`pipeline_kinds::images`), which lists
//! them as the stage's external files.
//!
//! CIFAR-10 cannot be downloaded from inside these machines, so a missing file is an
//! environment error that lists every missing file and says how to get them.

use std::path::Path;

use pipeline_engine::stage::StageError;
use pipeline_kinds::images::{
    CIFAR_TEST_FILE as TEST_FILE, CIFAR_TRAIN_FILES as TRAIN_FILES, cifar_files,
};

use super::file::read_raw;
use super::images::ImageSet;

/// Channels, height, width of a CIFAR-10 image.
const SHAPE: [usize; 3] = [3, 32, 32];
/// One label byte plus the pixels.
const RECORD: usize = 1 + 3 * 32 * 32;
/// Labels are 0 to 9.
const CLASSES: u8 = 10;
/// Where the binary distribution comes from.
const URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";

/// Reads the training and test sets from a `cifar-10-batches-bin` folder.
pub(crate) fn read(dir: &Path) -> Result<(ImageSet, ImageSet), StageError> {
    check_present(dir)?;
    let mut train = empty();
    for name in TRAIN_FILES {
        read_batch(&dir.join(name), &mut train)?;
    }
    let mut test = empty();
    read_batch(&dir.join(TEST_FILE), &mut test)?;
    Ok((train, test))
}

/// An empty set of CIFAR-10's shape.
pub(crate) fn empty() -> ImageSet {
    ImageSet {
        shape: SHAPE,
        pixels: Vec::new(),
        labels: Vec::new(),
    }
}

fn check_present(dir: &Path) -> Result<(), StageError> {
    let missing: Vec<String> = cifar_files(dir)
        .iter()
        .filter(|p| !p.is_file())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(StageError::environment(format!(
        "CIFAR-10 files missing in {}: {}; download {URL}, unpack it (`tar xzf \
         cifar-10-binary.tar.gz`) and point the stage's `dir` at the cifar-10-batches-bin folder \
         it creates",
        dir.display(),
        missing.join(", ")
    )))
}

/// Appends the records of one batch file to `set`.
fn read_batch(path: &Path, set: &mut ImageSet) -> Result<(), StageError> {
    append_records(path, &read_raw(path)?, set)
}

/// Appends the records in `data`, the contents of the batch file `path`, to `set`.
pub(crate) fn append_records(
    path: &Path,
    data: &[u8],
    set: &mut ImageSet,
) -> Result<(), StageError> {
    let complete = data.len() / RECORD * RECORD;
    if complete != data.len() {
        return Err(StageError::input(format!(
            "{}: incomplete record at byte offset {complete}: records are {RECORD} bytes (1 \
             label + 3072 pixels), but the file ends at byte {}",
            path.display(),
            data.len()
        )));
    }
    set.pixels.reserve(complete / RECORD * (RECORD - 1));
    for (i, record) in data.chunks_exact(RECORD).enumerate() {
        let label = record[0];
        if label >= CLASSES {
            return Err(StageError::input(format!(
                "{}: label {label} at byte offset {} is out of range, expected 0 to 9",
                path.display(),
                i * RECORD
            )));
        }
        set.labels.push(label);
        set.pixels.extend_from_slice(&record[1..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::write;
    use pipeline_engine::stage::ErrorClass;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A record whose label is `label` and whose pixels are `base + channel`.
    fn record(label: u8, base: u8) -> Vec<u8> {
        let mut r = vec![label];
        for channel in 0..3u8 {
            r.extend(std::iter::repeat_n(base + channel, 1024));
        }
        r
    }

    fn write_all(dir: &Path) {
        for (i, name) in TRAIN_FILES.iter().enumerate() {
            let i = i as u8;
            let data = [record(i, 10 * i), record(9 - i, 100)].concat();
            write(dir, name, &data);
        }
        write(dir, TEST_FILE, &record(3, 200));
    }

    #[test]
    fn reads_records_in_file_order_channel_major() -> TestResult {
        let dir = tempfile::tempdir()?;
        write_all(dir.path());
        let (train, test) = read(dir.path())?;
        assert_eq!(train.len(), 10);
        assert_eq!(train.labels, vec![0, 9, 1, 8, 2, 7, 3, 6, 4, 5]);
        assert_eq!(train.shape, [3, 32, 32]);
        let third = &train.pixels[2 * 3072..3 * 3072];
        assert_eq!(
            (third[0], third[1024], third[2048], third[3071]),
            (10, 11, 12, 12)
        );
        assert_eq!((test.labels.clone(), test.pixels[0]), (vec![3], 200));
        Ok(())
    }

    #[test]
    fn missing_files_are_listed_with_download_instructions() -> TestResult {
        let dir = tempfile::tempdir()?;
        write(dir.path(), "data_batch_1.bin", &record(0, 0));
        let err = read(dir.path()).err().ok_or("expected an error")?;
        assert_eq!(err.class, ErrorClass::Environment);
        let msg = err.message;
        for name in ["data_batch_2.bin", "data_batch_5.bin", "test_batch.bin"] {
            assert!(msg.contains(name), "{msg}");
        }
        assert!(!msg.contains("data_batch_1.bin"), "{msg}");
        assert!(
            msg.contains(URL) && msg.contains("cifar-10-batches-bin"),
            "{msg}"
        );
        Ok(())
    }

    #[test]
    fn incomplete_record_names_file_and_offset() -> TestResult {
        let dir = tempfile::tempdir()?;
        write_all(dir.path());
        let mut data = [record(1, 1), record(2, 2)].concat();
        data.truncate(RECORD + 100);
        write(dir.path(), "data_batch_4.bin", &data);
        let err = read(dir.path()).err().ok_or("expected an error")?;
        assert_eq!(err.class, ErrorClass::Input);
        assert!(err.message.contains("data_batch_4.bin"), "{}", err.message);
        assert!(
            err.message
                .contains("incomplete record at byte offset 3073"),
            "{}",
            err.message
        );
        assert!(err.message.contains("ends at byte 3173"), "{}", err.message);
        Ok(())
    }

    #[test]
    fn label_out_of_range_names_offset() -> TestResult {
        let dir = tempfile::tempdir()?;
        write_all(dir.path());
        write(
            dir.path(),
            TEST_FILE,
            &[record(1, 1), record(10, 1)].concat(),
        );
        let err = read(dir.path())
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(
            err.contains("test_batch.bin: label 10 at byte offset 3073"),
            "{err}"
        );
        Ok(())
    }
}
