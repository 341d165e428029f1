//! The entry points of the data-reader fuzz targets (`fuzz/fuzz_targets/idx.rs` and
//! `cifar.rs`) and of the tests that replay every input those targets once failed on
//! (`fuzz/regressions/idx/`, `fuzz/regressions/cifar/`), so that both run exactly the same
//! code. Nothing else uses them.
//!
//! The readers take files; these functions hand them bytes in memory as the contents of a
//! file called `fuzz-input`, through the same parsing code the files go through. When a reader
//! accepts its input, the sizes of what it returns are checked against the input (a mismatch
//! panics, which is what a fuzzer reports).

use std::path::Path;

use pipeline_engine::stage::StageError;

use crate::data::{cifar, file, idx};

/// The file name the readers' messages give the input.
const NAME: &str = "fuzz-input";

/// Reads `data` with the IDX reader. The first byte says how: even, the rest is an image file;
/// odd, a label file with `byte / 2` classes (0 to 127). The rest is unpacked first when it
/// starts with gzip's magic bytes, as a file would be. Returns the number of images or labels.
pub fn idx(data: &[u8]) -> Result<usize, StageError> {
    let Some((&how, rest)) = data.split_first() else {
        return Ok(0);
    };
    let bytes = file::unpack_maybe_gzip(Path::new(NAME), rest.to_vec())?;
    let unpacked = bytes.data.len();
    if how % 2 == 0 {
        let images = idx::parse_images(bytes)?;
        let size = images.count * images.rows * images.cols;
        assert!(images.rows > 0 && images.cols > 0);
        assert_eq!((images.pixels.len(), 16 + size), (size, unpacked));
        Ok(images.count)
    } else {
        let classes = usize::from(how / 2);
        let labels = idx::parse_labels(bytes, classes)?;
        assert_eq!(8 + labels.len(), unpacked);
        assert!(labels.iter().all(|&l| usize::from(l) < classes));
        Ok(labels.len())
    }
}

/// Reads `data` as one CIFAR-10 batch file. Returns the number of images.
pub fn cifar(data: &[u8]) -> Result<usize, StageError> {
    let mut set = cifar::empty();
    cifar::append_records(Path::new(NAME), data, &mut set)?;
    assert_eq!(set.pixels.len(), set.len() * set.image_size());
    assert_eq!(data.len(), set.len() * (1 + set.image_size()));
    assert!(set.labels.iter().all(|&l| l < 10));
    Ok(set.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gzip, idx_images, idx_labels};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Runs `read` on every input saved in `fuzz/regressions/{target}`.
    fn replay(target: &str, read: fn(&[u8]) -> Result<usize, StageError>) -> TestResult {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/regressions")
            .join(target);
        if !dir.exists() {
            return Ok(());
        }
        for entry in std::fs::read_dir(&dir)? {
            let _ = read(&std::fs::read(entry?.path())?);
        }
        Ok(())
    }

    /// Every input in `fuzz/regressions/idx/` (each once crashed, hung or exhausted memory in
    /// the fuzz target) reads to a result.
    #[test]
    fn saved_idx_fuzz_inputs_read_to_a_result() -> TestResult {
        replay("idx", idx)
    }

    /// Every input in `fuzz/regressions/cifar/` reads to a result.
    #[test]
    fn saved_cifar_fuzz_inputs_read_to_a_result() -> TestResult {
        replay("cifar", cifar)
    }

    #[test]
    fn the_first_byte_chooses_images_or_labels_with_a_class_count() -> TestResult {
        let images = [&[0][..], &gzip(&idx_images(2, 1, 3, &[5; 6]))].concat();
        assert_eq!(idx(&images)?, 2);
        let labels = [&[2 * 4 + 1][..], &idx_labels(&[3, 0, 1])].concat();
        assert_eq!(idx(&labels)?, 3);
        let out_of_range = [&[2 * 3 + 1][..], &idx_labels(&[3, 0, 1])].concat();
        assert!(idx(&out_of_range).is_err());
        Ok(())
    }

    #[test]
    fn cifar_counts_whole_records() -> TestResult {
        let mut data = vec![0; 2 * 3073];
        data[3073] = 9;
        assert_eq!(cifar(&data)?, 2);
        assert!(cifar(&data[..3072]).is_err());
        Ok(())
    }
}
