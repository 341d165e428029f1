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

use std::path::{Path, PathBuf};

use pipeline_engine::stage::{ParamIssue, StageContext, StageError, TypedStage};
use serde::{Deserialize, Serialize};

use crate::data::dataset::{Dataset, DatasetInfo, FORMAT, InputDtype, Normalization, Task};
use crate::data::images::ImageSet;
use crate::data::stats::channel_stats;
use crate::data::{cifar, idx};

/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST.
const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The four IDX files of an MNIST-style distribution.
const IDX_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

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

    fn external_files(&self, p: &ImagesParams, workspace: &Path) -> Vec<PathBuf> {
        files(&p.source)
            .into_iter()
            .map(|f| workspace.join(f))
            .collect()
    }

    fn run(&self, p: ImagesParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
        crate::device::init_torch(ctx.threads, ctx.seed);
        let (mut train, mut test, classes) = read(&p.source, ctx.workspace)?;
        if let Some(limit) = p.train_limit {
            train.truncate(limit);
        }
        if let Some(limit) = p.test_limit {
            test.truncate(limit);
        }
        if train.len() == 0 || test.len() == 0 {
            return Err(StageError::input(
                "the training and test splits must not be empty",
            ));
        }
        let info = describe(&p, &train, &test, classes);
        tracing::debug!(train = train.len(), test = test.len(), "images read");
        Dataset::from_images(info, &train, &test)?.write(ctx.out_dir)
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

/// Every file the source reads, as written (relative to the workspace unless absolute).
fn files(source: &ImageSource) -> Vec<PathBuf> {
    match source {
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
        ImageSource::Cifar10(c) => cifar::files(&c.dir),
    }
}

/// Reads the training and test sets and returns the number of classes.
fn read(source: &ImageSource, workspace: &Path) -> Result<(ImageSet, ImageSet, usize), StageError> {
    let at = |p: &Path| workspace.join(p);
    match source {
        ImageSource::FashionMnist => read_fashion(),
        ImageSource::Idx(f) => {
            let train = idx::read_pair(&at(&f.train_images), &at(&f.train_labels), f.classes)?;
            let test = idx::read_pair(&at(&f.test_images), &at(&f.test_labels), f.classes)?;
            Ok((train, test, f.classes))
        }
        ImageSource::IdxSplit(s) => {
            let all = idx::read_pair(&at(&s.images), &at(&s.labels), s.classes)?;
            let train = cut(&all, s.train, &s.images)?;
            let test = cut(&all, s.test, &s.images)?;
            Ok((train, test, s.classes))
        }
        ImageSource::Cifar10(c) => {
            let (train, test) = cifar::read(&at(&c.dir))?;
            Ok((train, test, 10))
        }
    }
}

fn read_fashion() -> Result<(ImageSet, ImageSet, usize), StageError> {
    let paths = files(&ImageSource::FashionMnist);
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        return Err(StageError::environment(format!(
            "Fashion-MNIST is not installed: {} does not exist; install the Debian package \
             `dataset-fashion-mnist` (`apt-get install dataset-fashion-mnist`)",
            missing.display()
        )));
    }
    let train = idx::read_pair(&paths[0], &paths[1], 10)?;
    let test = idx::read_pair(&paths[2], &paths[3], 10)?;
    Ok((train, test, 10))
}

fn cut(all: &ImageSet, [start, end]: [usize; 2], images: &Path) -> Result<ImageSet, StageError> {
    if end > all.len() {
        return Err(StageError::input(format!(
            "the range [{start}, {end}] reaches past the {} images of {}",
            all.len(),
            images.display()
        )));
    }
    Ok(all.slice(start..end))
}

fn describe(p: &ImagesParams, train: &ImageSet, test: &ImageSet, classes: usize) -> DatasetInfo {
    let channels = train.shape[0];
    let normalization = match p.normalize {
        NormalizeMode::Scale => Normalization {
            divide: 255.0,
            ..Normalization::identity(channels)
        },
        NormalizeMode::Standardize => {
            let (mean, std) = channel_stats(train);
            Normalization {
                divide: 255.0,
                mean,
                std,
            }
        }
    };
    let (name, source) = origin(&p.source);
    DatasetInfo {
        format: FORMAT,
        name: p.name.clone().unwrap_or(name),
        task: Task::Classification,
        classes: Some(classes),
        input_shape: train.shape.to_vec(),
        input_dtype: InputDtype::U8,
        train_size: train.len(),
        test_size: test.len(),
        normalization,
        source,
    }
}

/// The default name and a description of where the images came from.
fn origin(source: &ImageSource) -> (String, String) {
    let list = |paths: Vec<PathBuf>| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match source {
        ImageSource::FashionMnist => (
            "fashion-mnist".to_owned(),
            format!("Fashion-MNIST: {}", list(files(source))),
        ),
        ImageSource::Idx(_) => (
            "mnist".to_owned(),
            format!("IDX files: {}", list(files(source))),
        ),
        ImageSource::IdxSplit(s) => (
            "mnist".to_owned(),
            format!(
                "IDX files {} split by index: train {:?}, test {:?}",
                list(files(source)),
                s.train,
                s.test
            ),
        ),
        ImageSource::Cifar10(c) => (
            "cifar10".to_owned(),
            format!("CIFAR-10 binary batches in {}", c.dir.display()),
        ),
    }
}

#[cfg(test)]
mod tests;
