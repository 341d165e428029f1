//! The `predict` kind: runs a trained model over a data set split and tabulates its answers.
//!
//! ```yaml
//! predict_deep:
//!   kind: predict
//!   inputs: {model: train_deep, data: sinc}
//!   params: {split: test}
//! ```
//!
//! Output: `predictions.parquet`. For regression on 1-D inputs: `x`, `target`, `prediction`
//! (other regression inputs: `index` instead of `x`); for classification: `index`, `label`,
//! `predicted`, `confidence` (the softmax probability of the predicted class). Inputs are
//! normalized the way the model's training data were (recorded in `model.json`).
//!
//! This is the declaration; the predictions are computed in the `pipeline-stages` crate.

use pipeline_engine::stage::{InputSlot, ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

/// The `predict` stage kind.
pub struct Predict;

/// Parameters of `predict`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictParams {
    /// Which split of the data set to predict.
    #[serde(default)]
    pub split: SplitName,
    /// Examples per batch (affects speed and memory only).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

/// A data set split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitName {
    /// The test split.
    #[default]
    Test,
    /// The training split.
    Train,
}

fn default_batch_size() -> usize {
    1000
}

impl TypedStage for Predict {
    type Params = PredictParams;
    const NAME: &'static str = "predict";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str = "tabulates a trained model's predictions on a data set";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::one("model", "a trained model (train)"),
            InputSlot::one("data", "a data set (functions, images)"),
        ];
        SLOTS
    }

    fn check(&self, p: &PredictParams) -> Result<(), ParamIssue> {
        if p.batch_size == 0 {
            return Err(ParamIssue::at("batch_size", "must be at least 1"));
        }
        Ok(())
    }
}
