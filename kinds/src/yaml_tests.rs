//! The parameter examples shown in the kinds' documentation, parsed the way the engine parses
//! pipeline files, so that the documented YAML stays valid.

use std::sync::Arc;

use pipeline_engine::spec::yaml::{Node, Source, parse};
use pipeline_engine::stage::{Registry, StageKind, typed};
use serde_json::{Value, json};

use crate::critical_point::CriticalPoint;
use crate::functions::Functions;
use crate::images::Images;
use crate::interpolate::Interpolate;
use crate::loss_surface::LossSurface;
use crate::parameter_curves::ParameterCurves;
use crate::pca::Pca;
use crate::plot::{HeatmapPlot, LinePlot};
use crate::predict::Predict;
use crate::random_labels::RandomLabels;
use crate::sensitivity::Sensitivity;
use crate::sharpness::Sharpness;
use crate::train::Train;

fn yaml(text: &str) -> Result<Node, String> {
    let source = Arc::new(Source {
        name: "test.yaml".to_owned(),
        text: text.to_owned(),
    });
    parse(&source).map_err(|e| format!("{e:?}"))
}

fn canonical(kind: &dyn StageKind, text: &str) -> Result<Value, String> {
    kind.canonicalize_yaml(&yaml(text)?)
        .map_err(|e| format!("{e:?}"))
}

/// The `//!` documentation of a source file, without the comment markers.
fn module_doc(source: &str) -> String {
    let lines = source.lines().map_while(|line| {
        line.strip_prefix("//! ")
            .or_else(|| (line == "//!").then_some(""))
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// Every kind that carries a whole-stage example: it is one stage of its own kind whose
/// `params` canonicalize.
#[test]
fn every_stage_example_parses_as_a_stage_of_its_kind() -> Result<(), String> {
    let mut registry = Registry::new();
    crate::register(&mut registry);
    for kind in registry.kinds().filter(|k| !k.example().is_empty()) {
        let node = yaml(kind.example())?;
        let [(_, stage)] = node.as_map().ok_or("not a mapping")? else {
            return Err(format!("{}: the example is not one stage", kind.name()));
        };
        assert_eq!(stage.get("kind").and_then(Node::as_str), Some(kind.name()));
        let params = stage.get("params").ok_or("no params")?;
        kind.canonicalize_yaml(params)
            .map_err(|e| format!("{}: {e:?}", kind.name()))?;
        for slot in stage.get("inputs").and_then(Node::as_map).unwrap_or(&[]) {
            let name = slot.0.as_str().unwrap_or_default();
            assert!(
                kind.inputs().iter().any(|s| s.name == name),
                "{}: no input `{name}`",
                kind.name()
            );
        }
    }
    Ok(())
}

/// The examples of the new kinds are the ones their module documentation shows.
#[test]
fn stage_examples_are_the_documented_ones() {
    let kinds = [
        (typed(Pca), include_str!("pca.rs")),
        (typed(CriticalPoint), include_str!("critical_point.rs")),
        (typed(ParameterCurves), include_str!("parameter_curves.rs")),
        (typed(LossSurface), include_str!("loss_surface.rs")),
        (typed(HeatmapPlot), include_str!("plot/heatmap.rs")),
    ];
    for (kind, source) in kinds {
        let example = kind.example().trim_end();
        assert!(!example.is_empty(), "{}", kind.name());
        assert!(module_doc(source).contains(example), "{}", kind.name());
    }
}

#[test]
fn landscape_options_of_existing_kinds_canonicalize_and_keep_old_keys() -> Result<(), String> {
    let train = "model: {mlp: {hidden: [5]}}\nepochs: 1\n";
    let plain = canonical(typed(Train).as_ref(), train)?;
    assert_eq!(plain.get("log_steps"), None, "the default is left out");
    let logged = canonical(typed(Train).as_ref(), &format!("{train}log_steps: true\n"))?;
    assert_eq!(logged["log_steps"], json!(true));
    let i = canonical(
        typed(Interpolate).as_ref(),
        "{a_epoch: 0, alpha_min: -0.5, alpha_max: 1.5, points: 41}",
    )?;
    assert_eq!((i["a_epoch"].clone(), i.get("b_epoch")), (json!(0), None));
    let steps = "table: steps.parquet\nx: step\ny: loss\nlog_y: true\npanels:\n  - \
                 {y: grad_norm, y_label: gradient norm (log scale), log_y: true}\n\
                 title: loss and gradient norm per iteration\nx_label: iteration\n\
                 y_label: loss (log scale)\nfile: steps\n";
    let p = canonical(typed(LinePlot).as_ref(), steps)?;
    assert_eq!(p["panels"][0]["log_y"], json!(true));
    assert_eq!(p.get("order"), None);
    let path = "{x: pc1, y: pc2, split_by: run, order: table, color_by: split, annotate: loss, \
                title: t, x_label: a, y_label: b}";
    let p = canonical(typed(LinePlot).as_ref(), path)?;
    assert_eq!(
        (p["order"].clone(), p["color_by"].clone()),
        (json!("table"), json!("split"))
    );
    Ok(())
}

#[test]
fn documented_examples_canonicalize() -> Result<(), String> {
    let f = canonical(typed(Functions).as_ref(), "{function: sinc, n: 10000}")?;
    assert_eq!(f["n_test"], Value::Null);
    let images = [
        "{source: fashion_mnist}",
        "source:\n  idx_split: {images: a.gz, labels: b.gz, train: [0, 8000], test: [8000, 10000]}",
        "source:\n  idx: {train_images: a, train_labels: b, test_images: c, test_labels: d}",
        "{source: {cifar10: {dir: data/cifar-10-batches-bin}}, train_limit: 10000}",
    ];
    for yaml in images {
        canonical(typed(Images).as_ref(), yaml)?;
    }
    let train = "model: {mlp: {hidden: [5, 10, 10, 10, 10, 10, 5]}}\n\
                 optimizer: {adam: {lr: 0.001}}\nbatch_size: 128\nepochs: 200\n\
                 eval_every: 5\ncheckpoint_every: 50\n";
    let t = canonical(typed(Train).as_ref(), train)?;
    assert_eq!(t["loss"], json!("auto"));
    assert_eq!(t["optimizer"]["adam"]["betas"], json!([0.9, 0.999]));
    let cnn = "model:\n  layers:\n    - {conv: {filters: 32, kernel: 3, padding: same}}\n    - relu\n\
               \x20   - {maxpool: 2}\n    - {dropout: 0.25}\n    - flatten\n    - {dense: 512}\n\
               \x20   - relu\n    - {dense: 10}\n\
               optimizer: {rmsprop: {lr: 0.0001, decay: 0.000001, rho: 0.9}}\nepochs: 3\n";
    let c = canonical(typed(Train).as_ref(), cnn)?;
    assert_eq!(c["optimizer"]["rmsprop"]["alpha"], json!(0.9));
    canonical(typed(Predict).as_ref(), "{split: test}")?;
    let plot = "x: epoch\ny: loss\nsplit_by: split\nkeep: [train]\nlog_y: true\n\
                title: training loss of two MLPs\nx_label: epoch\ny_label: MSE (log scale)\n\
                file: loss\n";
    let p = canonical(typed(LinePlot).as_ref(), plot)?;
    assert_eq!(p["table"], json!("metrics.parquet"));
    assert_eq!(p["mark"], json!("line"));
    Ok(())
}

#[test]
fn documented_analysis_examples_canonicalize() -> Result<(), String> {
    let r = canonical(typed(RandomLabels).as_ref(), "{fraction: 1.0}")?;
    assert_eq!(r, json!({"fraction": 1.0}));
    assert_eq!(canonical(typed(RandomLabels).as_ref(), "{}")?, r);
    let i = canonical(
        typed(Interpolate).as_ref(),
        "{alpha_min: -1.0, alpha_max: 2.0, points: 31}",
    )?;
    assert_eq!(i["eval_batch_size"], json!(1000));
    let s = canonical(
        typed(Sensitivity).as_ref(),
        "{eval_batch_size: 1000, train_limit: 10000}",
    )?;
    assert_eq!(s["train_limit"], json!(10000));
    let s = canonical(typed(Sensitivity).as_ref(), "{}")?;
    assert_eq!(s["train_limit"], Value::Null);
    let yaml = "{epsilon: 0.0001, samples: 1000, ascent_steps: 20, eval_size: 1000}";
    let h = canonical(typed(Sharpness).as_ref(), yaml)?;
    assert_eq!(h["power_iterations"], json!(20));
    assert_eq!(h["epsilon"], json!(0.0001));
    Ok(())
}

#[test]
fn analysis_mistakes_point_at_the_key() {
    let cases = [
        (typed(RandomLabels), "{fraction: 1.5}", "fraction"),
        (typed(Interpolate), "{points: 1}", "points"),
        (typed(Sensitivity), "{train_limit: 0}", "train_limit"),
        (typed(Sharpness), "{epsilon: -1.0}", "epsilon"),
        (typed(Sharpness), "{sample: 10}", "sample"),
        (typed(CriticalPoint), "{tau: 1.5}", "tau"),
        (typed(CriticalPoint), "{radius: 0}", "radius"),
        (typed(ParameterCurves), "{points: 4}", "points"),
        (typed(LossSurface), "{range: -1}", "range"),
        (typed(Pca), "{layer: ''}", "layer"),
        (
            typed(LinePlot),
            "{x: a, y: b, title: t, x_label: a, y_label: b, color_by: split}",
            "color_by",
        ),
    ];
    for (kind, yaml, key) in cases {
        let err = canonical(kind.as_ref(), yaml);
        assert!(
            err.as_ref().is_err_and(|e| e.contains(key)),
            "{yaml}: {err:?}"
        );
    }
}

#[test]
fn mistakes_point_at_the_key() {
    let err = canonical(
        typed(Train).as_ref(),
        "model: {mlp: {hidden: [5]}}\nepochs: 0\n",
    );
    assert!(err.is_err_and(|e| e.contains("epochs")));
    let err = canonical(
        typed(Train).as_ref(),
        "model: {mlp: {hiden: [5]}}\nepochs: 1\n",
    );
    assert!(err.is_err_and(|e| e.contains("hiden")));
    let err = canonical(
        typed(Train).as_ref(),
        "model: {mlp: {hidden: [5]}}\nepochs: 1\nlr: 1\n",
    );
    assert!(err.is_err_and(|e| e.contains("lr")));
}

/// A range is two numbers: a third is an error naming the key, not silently dropped.
#[test]
fn a_range_of_three_numbers_is_refused() {
    let text =
        "source:\n  idx_split: {images: a.gz, labels: b.gz, train: [0, 1000, 5], test: [0, 10]}\n";
    let err = canonical(typed(Images).as_ref(), text)
        .err()
        .unwrap_or_default();
    assert!(
        err.contains("expected a list of 2 values, found a list of 3"),
        "{err}"
    );
    assert!(err.contains("train"), "{err}");
}

/// An override may set a key nested in a parameter the file leaves out: the missing
/// mappings are made on the way, and a typo among them is caught by the kind's check.
#[test]
fn an_override_reaches_into_a_parameter_the_file_leaves_out() {
    let mut registry = Registry::new();
    crate::register(&mut registry);
    let text = "stages:\n  data:\n    kind: functions\n    params: {function: sinc}\n  fit:\n    kind: train\n    inputs: {data: data}\n    params:\n      model: {mlp: {hidden: [4]}}\n      epochs: 1\n";
    let path = std::path::Path::new("test.yaml");
    let set = |o: &str| {
        pipeline_engine::spec::parse_str(path, text, &[o.to_owned()], &registry)
            .map_err(|e| e.render())
    };
    let pipeline = set("fit.params.optimizer.adam.lr=0.002").unwrap_or_else(|e| panic!("{e}"));
    let fit = pipeline
        .stages
        .iter()
        .find(|s| s.name == "fit")
        .map(|s| &s.params);
    assert_eq!(
        fit.map(|p| &p["optimizer"]["adam"]["lr"]),
        Some(&json!(0.002))
    );
    let typo = set("fit.params.optimzer.adam.lr=0.002")
        .err()
        .unwrap_or_default();
    assert!(typo.contains("unknown key `optimzer`"), "{typo}");
    assert!(typo.contains("did you mean `optimizer`?"), "{typo}");
}
