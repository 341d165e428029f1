//! The stage kinds of `pipeline` as the planner sees them: for every kind its name, version,
//! typed parameters with their defaults and checks, input slots and external files, and the
//! runners of the kinds that need no libtorch.
//!
//! This crate must never depend on libtorch (`tch`, `torch-sys`), directly or through another
//! crate: linking libtorch costs about 220 ms at every start of a process, and the `pipeline`
//! binary, which plans, validates and reruns cached pipelines, links this crate and not the
//! machine-learning code. The kinds that run on libtorch (`functions`, `images`,
//! `random_labels`, `train`, `predict`, the analyses `interpolate`, `sensitivity` and
//! `sharpness`, and the landscape analyses `pca`, `critical_point`, `parameter_curves` and
//! `loss_surface`) are declared here and run by the `pipeline-worker` binary of the
//! `pipeline-stages` crate; the kinds that do not (`line_plot`, `heatmap`, `gather`) are
//! declared and run here.
//!
//! What the declarations need and what the runners share without libtorch lives here too:
//! model descriptions and their resolution into layer shapes ([`model`]), and optimizer
//! hyper-parameters ([`optim`]).

pub mod critical_point;
pub mod functions;
pub mod fuzzing;
pub mod gather;
pub mod grid;
pub mod images;
pub mod interpolate;
pub mod loss_surface;
pub mod model;
pub mod optim;
pub mod parameter_curves;
pub mod pca;
pub mod plot;
pub mod predict;
pub mod random_labels;
pub mod sensitivity;
pub mod sharpness;
pub mod train;

#[cfg(test)]
mod yaml_tests;

use pipeline_engine::stage::{Registry, Runners, typed};

/// Registers the declaration of every stage kind, including those that run on libtorch.
pub fn register(registry: &mut Registry) {
    registry
        .register(typed(functions::Functions))
        .register(typed(images::Images))
        .register(typed(random_labels::RandomLabels))
        .register(typed(train::Train))
        .register(typed(predict::Predict))
        .register(typed(interpolate::Interpolate))
        .register(typed(sensitivity::Sensitivity))
        .register(typed(sharpness::Sharpness))
        .register(typed(pca::Pca))
        .register(typed(critical_point::CriticalPoint))
        .register(typed(parameter_curves::ParameterCurves))
        .register(typed(loss_surface::LossSurface))
        .register(typed(plot::LinePlot))
        .register(typed(plot::HeatmapPlot))
        .register(typed(gather::Gather));
}

/// Registers the runners of the kinds that need no libtorch (`line_plot`, `heatmap`,
/// `gather`).
pub fn register_runners(runners: &mut Runners) {
    runners
        .add::<plot::LinePlot>(plot::line::run)
        .add::<plot::HeatmapPlot>(plot::heatmap::run)
        .add::<gather::Gather>(gather::run);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_declared_and_only_tch_free_kinds_run_here() {
        let mut registry = Registry::new();
        register(&mut registry);
        let names: Vec<&str> = registry.names().collect();
        let expected = [
            "critical_point",
            "functions",
            "gather",
            "heatmap",
            "images",
            "interpolate",
            "line_plot",
            "loss_surface",
            "parameter_curves",
            "pca",
            "predict",
            "random_labels",
            "sensitivity",
            "sharpness",
            "train",
        ];
        assert_eq!(names, expected);
        let mut runners = Runners::new();
        register_runners(&mut runners);
        let runnable: Vec<&str> = names.into_iter().filter(|n| runners.has(n)).collect();
        assert_eq!(runnable, ["gather", "heatmap", "line_plot"]);
        let in_process = registry.kinds().filter(|k| k.in_process());
        assert_eq!(
            in_process.map(|k| k.name()).collect::<Vec<_>>(),
            ["gather", "heatmap", "line_plot"]
        );
    }
}
