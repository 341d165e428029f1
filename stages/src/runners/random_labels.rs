//! Runs the `random_labels` kind (declared in `pipeline_kinds::random_labels`): reads a
//! classification data set, replaces a seeded fraction of its training labels with random
//! classes (`crate::data::label_noise`), and writes the data set again with the noise
//! recorded in `dataset.json`.

use pipeline_engine::stage::{StageContext, StageError};
use pipeline_kinds::random_labels::RandomLabelsParams;
use tch::Tensor;

use crate::data::dataset::{Dataset, INFO_FILE, Task};
use crate::data::label_noise::randomize;
use crate::device::init_torch;
use crate::error::TchContext;

/// Writes the input data set with random training labels into the stage's output folder.
pub(crate) fn run(p: RandomLabelsParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    init_torch(ctx.threads, ctx.seed);
    let dir = &ctx.inputs.one("data")?.dir;
    let mut data = Dataset::load(dir)?;
    let info_path = dir.join(INFO_FILE);
    let classes = match (data.info.task, data.info.classes) {
        (Task::Classification, Some(classes)) => classes,
        _ => {
            return Err(StageError::input(format!(
                "{}: `random_labels` needs a classification data set, and `{}` is a \
                 regression one",
                info_path.display(),
                data.info.name
            )));
        }
    };
    if data.info.label_noise.is_some() {
        return Err(StageError::input(format!(
            "{}: the data set already has random labels; draw them once, from the data set \
             with true labels",
            info_path.display()
        )));
    }
    let mut labels = Vec::<i64>::try_from(&data.train_y).ctx("reading the training labels")?;
    let noise = randomize(&mut labels, classes, p.fraction, ctx.seed);
    ctx.note(format!(
        "{} of {} training labels replaced at random, {} of them changed",
        noise.replaced,
        labels.len(),
        noise.changed
    ));
    data.train_y = Tensor::f_from_slice(&labels).ctx("building the label tensor")?;
    data.info.label_noise = Some(noise);
    data.write(ctx.out_dir)
}

#[cfg(test)]
mod tests;
