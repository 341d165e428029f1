//! The on-disk data set that data stages write and training stages read.
//!
//! A data set is a folder with two files. `dataset.safetensors` holds `train_x`, `train_y`,
//! `test_x` and `test_y`: images as `u8` `[N, C, H, W]` with `i64` class labels `[N]`, or
//! regression inputs and targets as `f32` `[N, D]` and `[N, 1]`. `dataset.json` describes
//! them ([`DatasetInfo`]): the task, classes, input shape, split sizes, where the data came
//! from, and the normalization a trainer must apply. Keeping pixels as bytes makes the file
//! four times smaller than floats and leaves the choice of normalization visible in the JSON;
//! the loader checks that the tensors agree with the description, so a hand-edited or
//! foreign folder fails with a message naming the file instead of deep inside training.

use std::path::Path;

use pipeline_engine::stage::StageError;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::images::ImageSet;
use crate::error::TchContext;
use crate::json_file::{read_json, write_json};
use crate::tensor_file::{read_tensors, take_checked, write_tensors};

/// The tensors file of a data set folder.
pub(crate) const TENSORS_FILE: &str = "dataset.safetensors";
/// The description file of a data set folder.
pub(crate) const INFO_FILE: &str = "dataset.json";
/// The version of the folder layout; bumped when it changes incompatibly.
pub(crate) const FORMAT: u32 = 1;

/// What a model trained on the data set predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Task {
    /// One class label per example; models output one logit per class.
    Classification,
    /// One real target per example; models output one value.
    Regression,
}

/// How the inputs are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum InputDtype {
    /// Bytes (pixels).
    U8,
    /// 32-bit floats.
    F32,
}

/// The transformation a trainer applies to stored inputs: `(x / divide - mean[c]) / std[c]`,
/// where `c` indexes the first input dimension (the channel of an image, the feature of a
/// vector).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Normalization {
    /// What raw values are divided by first (255 for pixels, 1 otherwise).
    pub(crate) divide: f64,
    /// Per-channel means subtracted after dividing (computed on the training split).
    pub(crate) mean: Vec<f64>,
    /// Per-channel standard deviations divided by last (computed on the training split).
    pub(crate) std: Vec<f64>,
}

impl Normalization {
    /// The identity: divide by 1, subtract 0, divide by 1 for each of `channels`.
    pub(crate) fn identity(channels: usize) -> Self {
        Self {
            divide: 1.0,
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }
}

/// The description of a data set (`dataset.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetInfo {
    /// The folder layout version.
    pub(crate) format: u32,
    /// A short name (`mnist`, `fashion-mnist`, `cifar10`, `sinc`).
    pub(crate) name: String,
    /// Classification or regression.
    pub(crate) task: Task,
    /// The number of classes (classification only).
    pub(crate) classes: Option<usize>,
    /// The shape of one input: `[C, H, W]` for images, `[D]` for vectors.
    pub(crate) input_shape: Vec<usize>,
    /// How inputs are stored.
    pub(crate) input_dtype: InputDtype,
    /// Examples in the training split.
    pub(crate) train_size: usize,
    /// Examples in the test split.
    pub(crate) test_size: usize,
    /// The normalization a trainer must apply to inputs.
    pub(crate) normalization: Normalization,
    /// Where the data came from, for people reading the folder.
    pub(crate) source: String,
    /// Random training labels put in by `random_labels`; absent for true labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) label_noise: Option<LabelNoise>,
}

/// How many training labels `random_labels` replaced with random classes, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabelNoise {
    /// The fraction of training examples whose label was replaced.
    pub(crate) fraction: f64,
    /// The seed the examples and their new labels were drawn from.
    pub(crate) seed: u64,
    /// Labels replaced: `round(fraction × train_size)`.
    pub(crate) replaced: usize,
    /// Replaced labels that differ from the true one (a uniform draw keeps it by chance).
    pub(crate) changed: usize,
}

impl DatasetInfo {
    /// The number of model outputs: one per class, or one for regression.
    pub(crate) fn outputs(&self) -> usize {
        self.classes.unwrap_or(1)
    }
}

/// A data set in memory (tensors on the CPU).
pub(crate) struct Dataset {
    /// The description.
    pub(crate) info: DatasetInfo,
    /// Training inputs.
    pub(crate) train_x: Tensor,
    /// Training labels or targets.
    pub(crate) train_y: Tensor,
    /// Test inputs.
    pub(crate) test_x: Tensor,
    /// Test labels or targets.
    pub(crate) test_y: Tensor,
}

/// One split of a regression data set: inputs `[N, D]` and targets `[N]`.
pub(crate) struct Points<'a> {
    /// Input vectors, `D` values each, one after another.
    pub(crate) x: &'a [f32],
    /// One target per input.
    pub(crate) y: &'a [f32],
}

impl Dataset {
    /// A classification data set of `u8` images.
    pub(crate) fn from_images(
        info: DatasetInfo,
        train: &ImageSet,
        test: &ImageSet,
    ) -> Result<Self, StageError> {
        let (train_x, train_y) = image_tensors(train)?;
        let (test_x, test_y) = image_tensors(test)?;
        Ok(Self {
            info,
            train_x,
            train_y,
            test_x,
            test_y,
        })
    }

    /// A regression data set with `d`-dimensional inputs.
    pub(crate) fn from_points(
        info: DatasetInfo,
        d: usize,
        train: Points<'_>,
        test: Points<'_>,
    ) -> Result<Self, StageError> {
        let (train_x, train_y) = point_tensors(d, &train)?;
        let (test_x, test_y) = point_tensors(d, &test)?;
        Ok(Self {
            info,
            train_x,
            train_y,
            test_x,
            test_y,
        })
    }

    /// Writes the folder's two files into `dir`.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), StageError> {
        let tensors = [
            ("train_x".to_owned(), &self.train_x),
            ("train_y".to_owned(), &self.train_y),
            ("test_x".to_owned(), &self.test_x),
            ("test_y".to_owned(), &self.test_y),
        ];
        write_tensors(&dir.join(TENSORS_FILE), &tensors)?;
        write_json(&dir.join(INFO_FILE), &self.info)
    }

    /// Reads a data set folder written by [`Dataset::write`], checking that the tensors agree
    /// with the description.
    pub(crate) fn load(dir: &Path) -> Result<Self, StageError> {
        let info = read_info(dir)?;
        let path = dir.join(TENSORS_FILE);
        let mut tensors = read_tensors(&path)?;
        let (x_kind, y_kind) = kinds(&info);
        let mut take = |name: &str, kind, shape: Vec<i64>| {
            take_checked(&mut tensors, &path, name, kind, &shape)
        };
        let train_x = take("train_x", x_kind, x_shape(&info, info.train_size))?;
        let train_y = take("train_y", y_kind, y_shape(&info, info.train_size))?;
        let test_x = take("test_x", x_kind, x_shape(&info, info.test_size))?;
        let test_y = take("test_y", y_kind, y_shape(&info, info.test_size))?;
        let data = Self {
            info,
            train_x,
            train_y,
            test_x,
            test_y,
        };
        data.check_labels(&path)?;
        Ok(data)
    }

    fn check_labels(&self, path: &Path) -> Result<(), StageError> {
        let Some(classes) = self.info.classes else {
            return Ok(());
        };
        for (name, y) in [("train_y", &self.train_y), ("test_y", &self.test_y)] {
            if y.numel() == 0 {
                continue;
            }
            let min = i64::try_from(y.f_min().ctx("reading labels")?).ctx("reading labels")?;
            let max = i64::try_from(y.f_max().ctx("reading labels")?).ctx("reading labels")?;
            if min < 0 || max >= classes as i64 {
                return Err(StageError::input(format!(
                    "{}: `{name}` holds labels from {min} to {max}, but {INFO_FILE} declares {classes} \
                     classes",
                    path.display()
                )));
            }
        }
        Ok(())
    }
}

/// Reads and checks `dataset.json` in `dir`.
pub(crate) fn read_info(dir: &Path) -> Result<DatasetInfo, StageError> {
    let path = dir.join(INFO_FILE);
    let info: DatasetInfo = read_json(&path, "data set description")?;
    check_info(&info).map_err(|msg| StageError::input(format!("{}: {msg}", path.display())))?;
    Ok(info)
}

fn check_info(info: &DatasetInfo) -> Result<(), String> {
    if info.format != FORMAT {
        return Err(format!(
            "format {} is not supported (expected {FORMAT})",
            info.format
        ));
    }
    let channels = info.input_shape.first().copied().unwrap_or(0);
    let size = info
        .input_shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    if info.input_shape.is_empty() || size.is_none_or(|s| s == 0 || s > 1 << 36) {
        return Err(format!(
            "input_shape {:?} is empty or too large",
            info.input_shape
        ));
    }
    let n = &info.normalization;
    if n.mean.len() != channels || n.std.len() != channels {
        return Err(format!(
            "normalization needs {channels} means and standard deviations"
        ));
    }
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(n.divide) || !n.std.iter().all(|s| positive(*s)) {
        return Err("normalization divides by a value that is not positive and finite".to_owned());
    }
    match (info.task, info.classes) {
        (Task::Classification, Some(c)) if c >= 2 => Ok(()),
        (Task::Regression, None) => Ok(()),
        _ => Err("classification needs `classes` of at least 2; regression has none".to_owned()),
    }
}

fn kinds(info: &DatasetInfo) -> (Kind, Kind) {
    let x = match info.input_dtype {
        InputDtype::U8 => Kind::Uint8,
        InputDtype::F32 => Kind::Float,
    };
    let y = match info.task {
        Task::Classification => Kind::Int64,
        Task::Regression => Kind::Float,
    };
    (x, y)
}

fn x_shape(info: &DatasetInfo, n: usize) -> Vec<i64> {
    std::iter::once(n)
        .chain(info.input_shape.iter().copied())
        .map(|d| d as i64)
        .collect()
}

fn y_shape(info: &DatasetInfo, n: usize) -> Vec<i64> {
    match info.task {
        Task::Classification => vec![n as i64],
        Task::Regression => vec![n as i64, 1],
    }
}

fn image_tensors(set: &ImageSet) -> Result<(Tensor, Tensor), StageError> {
    let [c, h, w] = set.shape.map(|d| d as i64);
    let x = Tensor::f_from_slice(&set.pixels)
        .and_then(|t| t.f_view([set.len() as i64, c, h, w]))
        .ctx("building the image tensor")?;
    let labels: Vec<i64> = set.labels.iter().map(|&l| i64::from(l)).collect();
    let y = Tensor::f_from_slice(&labels).ctx("building the label tensor")?;
    Ok((x, y))
}

fn point_tensors(d: usize, points: &Points<'_>) -> Result<(Tensor, Tensor), StageError> {
    let n = points.y.len() as i64;
    let x = Tensor::f_from_slice(points.x)
        .and_then(|t| t.f_view([n, d as i64]))
        .ctx("building the input tensor")?;
    let y = Tensor::f_from_slice(points.y)
        .and_then(|t| t.f_view([n, 1]))
        .ctx("building the target tensor")?;
    Ok((x, y))
}

#[cfg(test)]
mod tests;
