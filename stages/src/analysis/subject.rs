//! The subject of an analysis: a trained model, read from a `train` stage's outputs, with the
//! data set it is studied on, checked to fit each other, and the loss it was trained with.
//!
//! Inputs are normalized the way the model's training data were (the normalization recorded
//! in `model.json`), not the way the analysed data set prescribes: a model must see what it
//! was trained to see. The loss follows the task (cross-entropy for classification, MSE for
//! regression), which is what `train` resolves for the only losses that fit each task.

use pipeline_engine::stage::{StageContext, StageError, UpstreamOutput};
use pipeline_kinds::model::plan::Plan;
use pipeline_kinds::predict::SplitName;
use pipeline_kinds::train::LossSpec;
use tch::Device;

use crate::data::dataset::Dataset;
use crate::device::torch_device;
use crate::error::TchContext;
use crate::model::checkpoint::{ModelInfo, load_model};
use crate::model::network::Weights;
use crate::train::data::Split;
use crate::train::loss::Loss;

/// A trained model and the data set it is analysed on.
pub(crate) struct Subject {
    /// The model's description.
    pub(crate) info: ModelInfo,
    /// Its resolved layers.
    pub(crate) plan: Plan,
    /// Its trained weights.
    pub(crate) weights: Weights,
    /// The loss it was trained with.
    pub(crate) loss: Loss,
    /// The data set, on the host.
    pub(crate) data: Dataset,
    /// Where the analysis computes.
    pub(crate) device: Device,
}

impl Subject {
    /// Reads the model bound to the input `model_slot` and the data set bound to `data`.
    pub(crate) fn load(ctx: &StageContext<'_>, model_slot: &str) -> Result<Self, StageError> {
        let device = torch_device(ctx.device)?;
        let (info, plan, weights) = load_model(&ctx.inputs.one(model_slot)?.dir, device)?;
        let data = Dataset::load(&ctx.inputs.one("data")?.dir)?;
        info.check_data(&data.info)?;
        let loss = Loss::resolve(LossSpec::Auto, info.task)?;
        Ok(Self {
            info,
            plan,
            weights,
            loss,
            data,
            device,
        })
    }

    /// The first `limit` examples of a split (all of them when `None` or fewer), normalized
    /// for the model, on the device.
    pub(crate) fn split(&self, name: SplitName, limit: Option<usize>) -> Result<Split, StageError> {
        let (x, y) = match name {
            SplitName::Train => (&self.data.train_x, &self.data.train_y),
            SplitName::Test => (&self.data.test_x, &self.data.test_y),
        };
        let len = x.size().first().copied().unwrap_or(0);
        let n = limit.map_or(len, |l| len.min(l as i64));
        let head = |t: &tch::Tensor| t.f_narrow(0, 0, n).ctx("taking the first examples");
        Split::new(&head(x)?, &head(y)?, &self.info.normalization, self.device)
    }
}

/// The name of a split in tables and messages.
pub(crate) fn split_label(name: SplitName) -> &'static str {
    match name {
        SplitName::Train => "train",
        SplitName::Test => "test",
    }
}

/// The path of the model description of an upstream `train` stage, for messages.
pub(crate) fn model_json(up: &UpstreamOutput) -> String {
    up.file(crate::model::checkpoint::MODEL_JSON)
        .display()
        .to_string()
}
