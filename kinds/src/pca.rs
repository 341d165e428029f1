//! The `pca` kind: the paths that training runs take through weight space, projected onto the
//! plane of their two main directions of change (the course's "visualize the optimization
//! process").
//!
//! ```yaml
//! trajectories:
//!   kind: pca
//!   inputs: {runs: trajectory}          # train stages with checkpoint_every > 0
//!   params: {layer: layers.1}           # leave out for the whole model
//! ```
//!
//! Every saved snapshot of every input run (`checkpoints/epoch-NNNN.safetensors`, epoch 0 the
//! initial weights, and the final weights when the last epoch is not a checkpoint epoch) is
//! flattened into one row: the trainable tensors in the model's fixed order (each layer's
//! weight, then its bias), all of them, or only those of the layer `layer` names
//! (`layers.{i}`, as in `model.json`). The rows of ALL runs are stacked into one matrix,
//! centred by its column means, and ONE principal component analysis is fitted to it, so that
//! the runs share axes; fitting each run on its own would give each its own, incomparable
//! plane. The analysis is exact, in `f64`, through the eigenvectors of the Gram matrix of the
//! rows (a few hundred snapshots against up to millions of weights). Each axis's sign is fixed
//! so that its largest weight is positive, which makes the output deterministic. All runs must
//! be `train` stages of the same model on the same data.
//!
//! Outputs:
//! - `pca.parquet`, one row per snapshot, runs in input order and epochs ascending: `run` (the
//!   run's label: the matrix values that differ between the inputs), `epoch`, `pc1`, `pc2`
//!   (the coordinates along the first two components), `loss`, `accuracy` (the run's figures
//!   for that epoch on `split`, from its `metrics.parquet`; empty where the run did not
//!   evaluate that epoch, and accuracy empty for regression).
//! - `explained.parquet`, one row per component with non-zero variance: `component` (from 1),
//!   `variance` (the variance of the snapshots along it), `ratio` (its share of the total
//!   variance), `cumulative` (the share of the components up to it).
//!
//! This is the declaration; the analysis runs in the `pipeline-stages` crate.

use pipeline_engine::stage::{InputSlot, ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

use crate::predict::SplitName;

/// The `pca` stage kind.
pub struct Pca;

/// Parameters of `pca`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcaParams {
    /// Only the tensors of this layer (`layers.1`: its weight and bias); `null`: all.
    #[serde(default)]
    pub layer: Option<String>,
    /// Which split's loss and accuracy annotate the snapshots.
    #[serde(default = "train_split")]
    pub split: SplitName,
}

fn train_split() -> SplitName {
    SplitName::Train
}

impl TypedStage for Pca {
    type Params = PcaParams;
    const NAME: &'static str = "pca";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "one PCA of the weight snapshots of many training runs: their paths in 2-D";
    const EXAMPLE: &'static str = "trajectories:
  kind: pca
  inputs: {runs: trajectory}          # train stages with checkpoint_every > 0
  params: {layer: layers.1}           # leave out for the whole model
";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::many(
            "runs",
            "training runs of one model with checkpoints (train with checkpoint_every)",
        )];
        SLOTS
    }

    fn check(&self, p: &PcaParams) -> Result<(), ParamIssue> {
        match &p.layer {
            Some(layer) if layer.is_empty() || layer.ends_with('.') => Err(ParamIssue::at(
                "layer",
                "a layer's name as in model.json, like `layers.1`",
            )),
            _ => Ok(()),
        }
    }
}
