//! The stage kinds of `pipeline` that need libtorch: their runners, and the small
//! machine-learning library behind them. Their declarations (parameters, defaults, checks)
//! are in the `pipeline-kinds` crate, which the planning binary links without libtorch.
//!
//! Data stages (`functions`, `images`) turn synthetic functions or image files into one on-disk
//! data set format (`data::dataset`); the `train` stage fits a model described in YAML
//! (`pipeline_kinds::model::spec`) and writes metrics, checkpoints and the final weights;
//! `predict` evaluates a trained model on a data set; `random_labels` and the analyses
//! `interpolate`, `sensitivity` and `sharpness` (`analysis`) serve the generalization
//! experiments, and `pca`, `critical_point`, `parameter_curves` and `loss_surface` the
//! optimization-landscape ones. Models are functional over an ordered list of parameter tensors rather than
//! tied to tch's `VarStore`, because the analyses evaluate interpolated and perturbed weights
//! and take gradients with respect to inputs, and later work trains many models stacked into
//! one computation.
//!
//! Every runner is registered with [`register_runners`]; the `pipeline-worker` binary of this
//! crate calls it once and runs one stage job per process.

pub(crate) mod analysis;
pub mod bench;
pub(crate) mod data;
pub(crate) mod device;
pub(crate) mod error;
pub mod fuzzing;
pub(crate) mod json_file;
pub(crate) mod model;
pub(crate) mod rng;
pub(crate) mod runners;
pub(crate) mod table;
pub(crate) mod tensor_file;
pub(crate) mod train;

#[cfg(test)]
pub(crate) mod testing;

use pipeline_engine::stage::Runners;
use pipeline_kinds::critical_point::CriticalPoint;
use pipeline_kinds::functions::Functions;
use pipeline_kinds::images::Images;
use pipeline_kinds::interpolate::Interpolate;
use pipeline_kinds::loss_surface::LossSurface;
use pipeline_kinds::parameter_curves::ParameterCurves;
use pipeline_kinds::pca::Pca;
use pipeline_kinds::predict::Predict;
use pipeline_kinds::random_labels::RandomLabels;
use pipeline_kinds::sensitivity::Sensitivity;
use pipeline_kinds::sharpness::Sharpness;
use pipeline_kinds::train::Train;

/// Registers the runner of every stage kind: those of this crate, which need libtorch, and
/// those of `pipeline-kinds`, which do not, so that a worker can run any kind.
pub fn register_runners(runners: &mut Runners) {
    runners
        .add::<Functions>(crate::runners::functions::run)
        .add::<Images>(crate::runners::images::run)
        .add::<RandomLabels>(crate::runners::random_labels::run)
        .add::<Train>(crate::runners::train::run)
        .add_batched::<Train>(crate::runners::train::run_batch)
        .add::<Predict>(crate::runners::predict::run)
        .add::<Interpolate>(crate::runners::interpolate::run)
        .add::<Sensitivity>(crate::runners::sensitivity::run)
        .add::<Sharpness>(crate::runners::sharpness::run)
        .add::<Pca>(crate::runners::pca::run)
        .add::<CriticalPoint>(crate::runners::critical_point::run)
        .add::<ParameterCurves>(crate::runners::parameter_curves::run)
        .add::<LossSurface>(crate::runners::loss_surface::run);
    pipeline_kinds::register_runners(runners);
}

#[cfg(test)]
mod tests {
    use pipeline_engine::stage::Registry;

    use super::*;

    #[test]
    fn every_declared_kind_has_a_runner() {
        let mut registry = Registry::new();
        pipeline_kinds::register(&mut registry);
        let mut runners = Runners::new();
        register_runners(&mut runners);
        let missing: Vec<&str> = registry.names().filter(|n| !runners.has(n)).collect();
        assert!(missing.is_empty(), "no runner for {missing:?}");
        let analyses = [
            "random_labels",
            "interpolate",
            "sensitivity",
            "sharpness",
            "pca",
            "critical_point",
            "parameter_curves",
            "loss_surface",
        ];
        for kind in ["functions", "images", "train", "predict"]
            .iter()
            .chain(&analyses)
        {
            assert!(registry.get(kind).is_some(), "`{kind}` is not declared");
        }
    }
}
