//! The `images` kind: reads an image classification data set from files into a data set
//! folder.
//!
//! ```yaml
//! fashion:
//!   kind: images
//!   params: {source: fashion_mnist}
//! mnist:
//!   kind: images
//!   params:
//!     source:
//!       idx: {train_images: data/train-images-idx3-ubyte.gz, train_labels: ...,
//!             test_images: ..., test_labels: ...}
//! mnist_small:
//!   kind: images
//!   params:
//!     source:
//!       idx_split: {images: ../shared/data/mnist-t10k/t10k-images-idx3-ubyte.gz,
//!                   labels: ../shared/data/mnist-t10k/t10k-labels-idx1-ubyte.gz,
//!                   train: [0, 8000], test: [8000, 10000]}
//! cifar:
//!   kind: images
//!   params: {source: {cifar10: {dir: data/cifar-10-batches-bin}}, train_limit: 10000}
//! ```
//!
//! Relative paths are resolved against the workspace; every file read is declared through
//! `external_files`, so editing a data file reruns the stage. Paths are recorded in the data
//! set as written, never resolved, so that outputs do not depend on where the workspace is.
//!
//! This is the declaration, with the list of files each source reads; the readers run in the
//! `pipeline-stages` crate.

use std::path::{Path, PathBuf};

use pipeline_engine::stage::{ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST.
pub const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The four IDX files of an MNIST-style distribution: training images and labels, then test
/// images and labels.
pub const IDX_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];
/// The training batches of CIFAR-10's binary distribution, in the order their images are
/// concatenated.
pub const CIFAR_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch of CIFAR-10's binary distribution.
pub const CIFAR_TEST_FILE: &str = "test_batch.bin";

/// The `images` stage kind.
pub struct Images;

/// Parameters of `images`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesParams {
    /// Which files to read.
    pub source: ImageSource,
    /// Keep only the first this many training images.
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Keep only the first this many test images.
    #[serde(default)]
    pub test_limit: Option<usize>,
    /// How the trainer normalizes pixels.
    #[serde(default)]
    pub normalize: NormalizeMode,
    /// The data set's name (default: `fashion-mnist`, `mnist` for IDX files, `cifar10`).
    #[serde(default)]
    pub name: Option<String>,
}

/// The files an image data set comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// Fashion-MNIST from the Debian package `dataset-fashion-mnist`.
    FashionMnist,
    /// A training and a test pair of IDX files.
    Idx(IdxFiles),
    /// One pair of IDX files split into training and test sets by index ranges.
    IdxSplit(IdxSplit),
    /// CIFAR-10's binary distribution.
    Cifar10(CifarDir),
}

/// A training and a test pair of IDX files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdxFiles {
    /// Training images (IDX, gzip or raw).
    pub train_images: PathBuf,
    /// Training labels.
    pub train_labels: PathBuf,
    /// Test images.
    pub test_images: PathBuf,
    /// Test labels.
    pub test_labels: PathBuf,
    /// Labels are `0..classes`.
    #[serde(default = "ten")]
    pub classes: usize,
}

/// One pair of IDX files cut into training and test sets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdxSplit {
    /// Images (IDX, gzip or raw).
    pub images: PathBuf,
    /// Labels.
    pub labels: PathBuf,
    /// `[start, end)` of the training images.
    pub train: [usize; 2],
    /// `[start, end)` of the test images (must not overlap `train`).
    pub test: [usize; 2],
    /// Labels are `0..classes`.
    #[serde(default = "ten")]
    pub classes: usize,
}

/// The `cifar-10-batches-bin` folder of CIFAR-10's binary distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CifarDir {
    /// The folder holding `data_batch_1.bin`..`data_batch_5.bin` and `test_batch.bin`.
    pub dir: PathBuf,
}

/// How pixels are normalized for training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalizeMode {
    /// Divide by 255, then standardize each channel with the training split's mean and std.
    #[default]
    Standardize,
    /// Divide by 255 only (values in [0, 1]), as the course's Keras examples do.
    Scale,
}

fn ten() -> usize {
    10
}

impl TypedStage for Images {
    type Params = ImagesParams;
    const NAME: &'static str = "images";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str = "reads MNIST-style IDX files or CIFAR-10 into a data set";

    fn check(&self, p: &ImagesParams) -> Result<(), ParamIssue> {
        if p.train_limit == Some(0) || p.test_limit == Some(0) {
            return Err(ParamIssue::at("train_limit", "limits must be at least 1"));
        }
        match &p.source {
            ImageSource::Idx(f) => check_classes(f.classes, "source.idx.classes"),
            ImageSource::IdxSplit(s) => {
                check_classes(s.classes, "source.idx_split.classes")?;
                check_ranges(s)
            }
            ImageSource::FashionMnist | ImageSource::Cifar10(_) => Ok(()),
        }
    }

    fn external_files(&self, p: &ImagesParams) -> Vec<PathBuf> {
        p.source.files()
    }
}

fn check_classes(classes: usize, at: &str) -> Result<(), ParamIssue> {
    if (2..=256).contains(&classes) {
        Ok(())
    } else {
        Err(ParamIssue::at(
            at,
            format!("must be from 2 to 256 (labels are bytes), found {classes}"),
        ))
    }
}

fn check_ranges(s: &IdxSplit) -> Result<(), ParamIssue> {
    for (key, [start, end]) in [("train", s.train), ("test", s.test)] {
        if start >= end {
            let at = format!("source.idx_split.{key}");
            return Err(ParamIssue::at(
                &at,
                format!("[{start}, {end}] is empty: needs start < end"),
            ));
        }
    }
    let ([a, b], [c, d]) = (s.train, s.test);
    if a < d && c < b {
        return Err(ParamIssue::at(
            "source.idx_split.test",
            format!("[{c}, {d}] overlaps the training range [{a}, {b}]"),
        ));
    }
    Ok(())
}

impl ImageSource {
    /// Every file the source reads, as written (relative to the workspace unless absolute).
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            ImageSource::FashionMnist => IDX_NAMES
                .iter()
                .map(|n| Path::new(FASHION_DIR).join(n))
                .collect(),
            ImageSource::Idx(f) => vec![
                f.train_images.clone(),
                f.train_labels.clone(),
                f.test_images.clone(),
                f.test_labels.clone(),
            ],
            ImageSource::IdxSplit(s) => vec![s.images.clone(), s.labels.clone()],
            ImageSource::Cifar10(c) => cifar_files(&c.dir),
        }
    }
}

/// Every file of CIFAR-10's binary distribution in `dir`: the five training batches, then the
/// test batch.
pub fn cifar_files(dir: &Path) -> Vec<PathBuf> {
    CIFAR_TRAIN_FILES
        .iter()
        .chain([&CIFAR_TEST_FILE])
        .map(|name| dir.join(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_files_are_every_file_read() {
        let params = ImagesParams {
            source: ImageSource::IdxSplit(IdxSplit {
                images: "a/images.gz".into(),
                labels: "/abs/labels.gz".into(),
                train: [0, 1],
                test: [1, 2],
                classes: 10,
            }),
            train_limit: None,
            test_limit: None,
            normalize: NormalizeMode::Standardize,
            name: None,
        };
        let files = Images.external_files(&params);
        assert_eq!(
            files,
            vec![
                PathBuf::from("a/images.gz"),
                PathBuf::from("/abs/labels.gz")
            ],
            "paths as written: the engine resolves relative ones"
        );
        let cifar = ImagesParams {
            source: ImageSource::Cifar10(CifarDir { dir: "c".into() }),
            ..params
        };
        let files = Images.external_files(&cifar);
        assert_eq!(files.len(), 6);
        assert_eq!(files[5], PathBuf::from("c/test_batch.bin"));
    }

    #[test]
    fn split_ranges_must_be_ordered_and_apart() {
        let split = |train, test| {
            ImageSource::IdxSplit(IdxSplit {
                images: "i".into(),
                labels: "l".into(),
                train,
                test,
                classes: 10,
            })
        };
        let check = |source| {
            let params = ImagesParams {
                source,
                train_limit: None,
                test_limit: None,
                normalize: NormalizeMode::Standardize,
                name: None,
            };
            Images.check(&params).err().map(|i| i.path.join("."))
        };
        assert_eq!(check(split([0, 100], [100, 200])), None);
        let overlap = check(split([0, 100], [50, 150]));
        assert_eq!(overlap.as_deref(), Some("source.idx_split.test"));
        let empty = check(split([5, 5], [10, 20]));
        assert_eq!(empty.as_deref(), Some("source.idx_split.train"));
    }
}
