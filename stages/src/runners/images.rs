//! Runs the `images` kind (declared in `pipeline_kinds::images`): reads the source's files,
//! cuts and limits the splits, computes the normalization and writes the data set folder.
//!
//! Relative paths are resolved against the workspace. Paths are recorded in the data set as
//! written, never resolved, so that outputs do not depend on where the workspace is.

use std::path::{Path, PathBuf};

use pipeline_engine::stage::{StageContext, StageError};
use pipeline_kinds::images::{ImageSource, ImagesParams, NormalizeMode};

use crate::data::dataset::{Dataset, DatasetInfo, FORMAT, InputDtype, Normalization, Task};
use crate::data::images::ImageSet;
use crate::data::stats::channel_stats;
use crate::data::{cifar, idx};

/// Reads the images of `p` and writes them as a data set into the stage's output folder.
pub(crate) fn run(p: ImagesParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
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
    let paths = ImageSource::FashionMnist.files();
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
        label_noise: None,
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
            format!("Fashion-MNIST: {}", list(source.files())),
        ),
        ImageSource::Idx(_) => (
            "mnist".to_owned(),
            format!("IDX files: {}", list(source.files())),
        ),
        ImageSource::IdxSplit(s) => (
            "mnist".to_owned(),
            format!(
                "IDX files {} split by index: train {:?}, test {:?}",
                list(source.files()),
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
