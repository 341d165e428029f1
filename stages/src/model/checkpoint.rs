//! Saving and restoring a model: weights as safetensors, the description as `model.json`.
//!
//! `model.json` ([`ModelInfo`]) holds everything needed to rebuild the network without the
//! pipeline: the model description, the input shape and output count it was resolved for,
//! the task, the input normalization of the data it was trained on, the parameter count and
//! the tensor names and shapes in order. Weights files hold the tensors by those names, so
//! PyTorch users can load them with `safetensors.torch.load_file` and map the names onto an
//! `nn.Sequential` of the same layers.

use std::path::{Path, PathBuf};

use pipeline_engine::stage::StageError;
use pipeline_kinds::model::plan::{Plan, TensorSpec, plan};
use pipeline_kinds::model::spec::ModelSpec;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use super::network::Weights;
use crate::data::dataset::{DatasetInfo, Normalization, Task};
use crate::error::TchContext;
use crate::json_file::{read_json, write_json};
use crate::tensor_file::{read_tensors, take_checked, write_tensors};

/// The description file of a saved model.
pub(crate) const MODEL_JSON: &str = "model.json";
/// The final weights of a saved model.
pub(crate) const MODEL_WEIGHTS: &str = "model.safetensors";
/// The folder of a training run's checkpoints.
pub(crate) const CHECKPOINTS_DIR: &str = "checkpoints";
/// The version of `model.json`'s layout.
const FORMAT: u32 = 1;

/// The checkpoint of `epoch` in the output folder `dir` of a training run
/// (`checkpoints/epoch-NNNN.safetensors`).
pub(crate) fn checkpoint_file(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(CHECKPOINTS_DIR)
        .join(format!("epoch-{epoch:04}.safetensors"))
}

/// The epochs of the checkpoints in the output folder `dir` of a training run, ascending
/// (none when it has no checkpoint folder).
pub(crate) fn checkpoint_epochs(dir: &Path) -> Result<Vec<usize>, StageError> {
    let folder = dir.join(CHECKPOINTS_DIR);
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(&folder).map_err(|e| StageError::io("list", &folder, &e))?;
    let mut epochs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StageError::io("list", &folder, &e))?;
        let name = entry.file_name();
        let epoch = name
            .to_str()
            .and_then(|n| n.strip_prefix("epoch-"))
            .and_then(|n| n.strip_suffix(".safetensors"))
            .and_then(|n| n.parse::<usize>().ok());
        epochs.extend(epoch);
    }
    epochs.sort_unstable();
    Ok(epochs)
}

/// Whether a tensor is trained or is running state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    /// A trainable parameter.
    Parameter,
    /// A buffer (batch-norm running statistics).
    Buffer,
}

/// One tensor of a saved model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TensorEntry {
    /// Its name in the weights file.
    pub(crate) name: String,
    /// Its shape.
    pub(crate) shape: Vec<i64>,
    /// Parameter or buffer.
    pub(crate) role: Role,
}

/// The description of a saved model (`model.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelInfo {
    /// The layout version.
    pub(crate) format: u32,
    /// The model as written in the pipeline.
    pub(crate) spec: ModelSpec,
    /// One input's shape.
    pub(crate) input_shape: Vec<usize>,
    /// Outputs per example.
    pub(crate) outputs: usize,
    /// What the outputs mean.
    pub(crate) task: Task,
    /// The normalization applied to stored inputs before the model sees them.
    pub(crate) normalization: Normalization,
    /// Trainable values.
    pub(crate) parameters: usize,
    /// Every tensor, parameters first, in forward-pass order.
    pub(crate) tensors: Vec<TensorEntry>,
}

impl ModelInfo {
    /// The description of `spec` resolved as `plan` for the data set `data`.
    pub(crate) fn new(spec: &ModelSpec, plan: &Plan, data: &DatasetInfo) -> Self {
        Self {
            format: FORMAT,
            spec: spec.clone(),
            input_shape: data.input_shape.clone(),
            outputs: data.outputs(),
            task: data.task,
            normalization: data.normalization.clone(),
            parameters: plan.parameter_count(),
            tensors: entries(plan),
        }
    }

    /// Checks that the model fits the data set `data`: the same input shape, number of
    /// outputs and task. A misfit is an input error naming both.
    pub(crate) fn check_data(&self, data: &DatasetInfo) -> Result<(), StageError> {
        if data.input_shape == self.input_shape
            && data.outputs() == self.outputs
            && data.task == self.task
        {
            return Ok(());
        }
        Err(StageError::input(format!(
            "the model was trained on inputs {:?} with {} outputs ({:?}), but the data set `{}` \
             has inputs {:?} with {} outputs ({:?})",
            self.input_shape,
            self.outputs,
            self.task,
            data.name,
            data.input_shape,
            data.outputs(),
            data.task
        )))
    }

    /// Resolves the description again, checking it against the recorded tensors.
    pub(crate) fn plan(&self, path: &Path) -> Result<Plan, StageError> {
        let plan = plan(&self.spec, &self.input_shape, self.outputs)?;
        if entries(&plan) != self.tensors || plan.parameter_count() != self.parameters {
            return Err(StageError::input(format!(
                "{}: the recorded tensors do not match the model description",
                path.display()
            )));
        }
        Ok(plan)
    }
}

fn entries(plan: &Plan) -> Vec<TensorEntry> {
    let entry = |role| {
        move |t: &TensorSpec| TensorEntry {
            name: t.name.clone(),
            shape: t.shape.clone(),
            role,
        }
    };
    let params = plan.params.iter().map(entry(Role::Parameter));
    params
        .chain(plan.buffers.iter().map(entry(Role::Buffer)))
        .collect()
}

/// Writes the weights of a model to `path`.
pub(crate) fn save_weights(path: &Path, plan: &Plan, weights: &Weights) -> Result<(), StageError> {
    write_tensors(path, &weights.named(plan))
}

/// Reads weights for `plan` from `path` onto `device`, checking every name and shape.
pub(crate) fn load_weights(
    path: &Path,
    plan: &Plan,
    device: Device,
) -> Result<Weights, StageError> {
    let mut stored = read_tensors(path)?;
    let weights = Weights::zeros(plan, device)?;
    let _guard = tch::no_grad_guard();
    let targets = plan.params.iter().zip(&weights.params);
    for (spec, target) in targets.chain(plan.buffers.iter().zip(&weights.buffers)) {
        let value = take_checked(&mut stored, path, &spec.name, Kind::Float, &spec.shape)?;
        target
            .shallow_clone()
            .f_copy_(&value)
            .ctx(&format!("loading {}", spec.name))?;
    }
    Ok(weights)
}

/// Writes `model.json` and `model.safetensors` into `dir`.
pub(crate) fn save_model(
    dir: &Path,
    info: &ModelInfo,
    plan: &Plan,
    weights: &Weights,
) -> Result<(), StageError> {
    save_weights(&dir.join(MODEL_WEIGHTS), plan, weights)?;
    write_json(&dir.join(MODEL_JSON), info)
}

/// Reads a model saved by [`save_model`] onto `device`.
pub(crate) fn load_model(
    dir: &Path,
    device: Device,
) -> Result<(ModelInfo, Plan, Weights), StageError> {
    let json = dir.join(MODEL_JSON);
    let info: ModelInfo = read_json(&json, "model description")?;
    if info.format != FORMAT {
        return Err(StageError::input(format!(
            "{}: format {} is not supported (expected {FORMAT})",
            json.display(),
            info.format
        )));
    }
    let plan = info.plan(&json)?;
    let weights = load_weights(&dir.join(MODEL_WEIGHTS), &plan, device)?;
    Ok((info, plan, weights))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::torch_lock;

    fn data_info() -> DatasetInfo {
        DatasetInfo {
            format: 1,
            name: "t".to_owned(),
            task: Task::Classification,
            classes: Some(3),
            input_shape: vec![1, 6, 6],
            input_dtype: crate::data::dataset::InputDtype::U8,
            train_size: 1,
            test_size: 1,
            normalization: Normalization::identity(1),
            source: String::new(),
            label_noise: None,
        }
    }

    #[test]
    fn checkpoint_names_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        assert!(checkpoint_epochs(dir.path())?.is_empty());
        std::fs::create_dir_all(dir.path().join(CHECKPOINTS_DIR))?;
        for epoch in [12, 0, 3] {
            std::fs::write(checkpoint_file(dir.path(), epoch), b"")?;
        }
        std::fs::write(dir.path().join(CHECKPOINTS_DIR).join("notes.txt"), b"")?;
        assert_eq!(checkpoint_epochs(dir.path())?, [0, 3, 12]);
        let name = checkpoint_file(dir.path(), 3);
        assert!(name.ends_with("checkpoints/epoch-0003.safetensors"));
        Ok(())
    }

    #[test]
    fn a_saved_model_rebuilds_with_equal_tensors() -> Result<(), Box<dyn std::error::Error>> {
        let _lock = torch_lock();
        let spec: ModelSpec = serde_json::from_str(
            r#"{"layers": [{"conv": {"filters": 2, "kernel": 3}}, "batchnorm", "relu",
                "flatten", {"dense": 3}]}"#,
        )?;
        let data = data_info();
        let plan = plan(&spec, &data.input_shape, 3)?;
        let weights = Weights::init(&plan, Device::Cpu)?;
        let _ = weights.buffers[0].shallow_clone().f_fill_(0.25)?;
        let info = ModelInfo::new(&spec, &plan, &data);
        let dir = tempfile::tempdir()?;
        save_model(dir.path(), &info, &plan, &weights)?;
        let (info2, plan2, weights2) = load_model(dir.path(), Device::Cpu)?;
        assert_eq!((info2, plan2), (info, plan));
        assert!(weights2.flat.equal(&weights.flat));
        assert!(weights2.buffers[0].equal(&weights.buffers[0]));
        let json = std::fs::read_to_string(dir.path().join(MODEL_JSON))?;
        assert!(json.contains("\"layers.1.running_var\"") && json.contains("\"parameters\": 123"));
        Ok(())
    }
}
