//! The `random_labels` kind: replaces a fraction of a classification data set's training
//! labels with random ones, the data of the "fitting random labels" experiment (Zhang et al.,
//! 2017): a network large enough memorizes labels that carry no information, so training
//! accuracy alone says nothing about generalization.
//!
//! ```yaml
//! mnist_random:
//!   kind: random_labels
//!   inputs: {data: mnist}
//!   params: {fraction: 1.0}
//! ```
//!
//! A seeded random subset of exactly `round(fraction × N)` of the `N` training examples gets
//! labels drawn uniformly from all classes (so about one in `classes` of them keeps its true
//! label by chance). The subset and the labels are drawn once, from the stage's seed, before
//! any training: every epoch sees the same wrong labels. Test labels stay true and images are
//! untouched. The output is a data set in the input's format (`dataset.safetensors`,
//! `dataset.json`), with `label_noise` in `dataset.json` recording the fraction, the seed, how
//! many labels were replaced and how many of them actually changed. Regression data sets and
//! data sets that already carry random labels are refused.
//!
//! This is the declaration; the labels are drawn in the `pipeline-stages` crate.

use pipeline_engine::stage::{InputSlot, ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

/// The `random_labels` stage kind.
pub struct RandomLabels;

/// Parameters of `random_labels`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomLabelsParams {
    /// The fraction of training labels replaced, from 0 to 1.
    #[serde(default = "one")]
    pub fraction: f64,
}

fn one() -> f64 {
    1.0
}

impl TypedStage for RandomLabels {
    type Params = RandomLabelsParams;
    const NAME: &'static str = "random_labels";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "replaces a fraction of a data set's training labels with random classes";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::one("data", "a classification data set (images)")];
        SLOTS
    }

    fn check(&self, p: &RandomLabelsParams) -> Result<(), ParamIssue> {
        if !(0.0..=1.0).contains(&p.fraction) {
            return Err(ParamIssue::at(
                "fraction",
                format!("must be from 0 to 1, not {}", p.fraction),
            ));
        }
        Ok(())
    }
}
