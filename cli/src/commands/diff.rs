//! `pipeline diff`: for each stage, what changed between a previous run and the current state
//! (the last success of each stage): parameters, seed, kind version, inputs, and the final
//! metrics (train and test loss and accuracy at the last epoch), old -> new.
//!
//! The previous side comes from the run record, which lists each stage's key; the manifest
//! of that key in the store holds the key material (parameters and all) and names the stored
//! `metrics.parquet`. Results that garbage collection removed can no longer be compared; the
//! command says so.

use pipeline_cache::{StageKey, Store};
use pipeline_engine::diff::diff;
use pipeline_engine::key::KeyMaterial;
use pipeline_engine::record::{Outcome, RunSummary, StageResult};
use pipeline_engine::state::{PipelineState, StageRecord};
use pipeline_reports::FinalMetrics;
use pipeline_reports::summary::number;

use crate::args::{Cli, DiffArgs};
use crate::failure::Failure;
use crate::report::{count, date_time, run_settings};
use crate::results::{self, METRICS_FILE};
use crate::session;

/// One side of the comparison.
struct Side {
    key: StageKey,
    material: Option<KeyMaterial>,
    metrics: Option<FinalMetrics>,
}

/// What the comparison found for one stage.
enum Verdict {
    Same,
    Changed(Vec<String>),
    Cannot(String),
    NotInRun,
    NoCurrent,
}

/// Runs the command.
pub fn execute(cli: &Cli, args: &DiffArgs) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(&args.pipeline, &registry)?;
    let workspace = session::workspace(cli)?;
    let runs = results::runs_newest_first(&workspace, &pipeline.name);
    let Some(old) = runs.get(args.run) else {
        return Err(Failure::Input(format!(
            "pipeline `{}` has {} recorded runs here; --run {} counts back from the newest (0)",
            pipeline.name,
            runs.len(),
            args.run
        )));
    };
    let state = PipelineState::load(&workspace.state_file(&pipeline.name));
    println!(
        "{}: run {} ({}) -> the current state",
        pipeline.name,
        args.run,
        describe_run(old)
    );
    let mut same = 0;
    let mut not_in_run = Vec::new();
    let mut no_current = Vec::new();
    for stage in &pipeline.stages {
        let result = old.results.iter().find(|r| r.name == stage.name);
        match compare(
            workspace.store(),
            result,
            state.stages.get(&stage.name),
            args.run,
        ) {
            Verdict::Same => same += 1,
            Verdict::NotInRun => not_in_run.push(stage.name.as_str()),
            Verdict::NoCurrent => no_current.push(stage.name.as_str()),
            Verdict::Cannot(why) => println!("{}\n  {why}", stage.name),
            Verdict::Changed(lines) => println!("{}\n  {}", stage.name, lines.join("\n  ")),
        }
    }
    println!("{} unchanged", count(same, "stage"));
    print_names(&format!("not part of run {}", args.run), &not_in_run);
    print_names("never succeeded since", &no_current);
    Ok(())
}

fn describe_run(run: &RunSummary) -> String {
    let mut text = format!("started {}", date_time(run.started_unix));
    let settings = run_settings(run);
    if !settings.is_empty() {
        text.push_str(&format!(", {}", settings.join(" ")));
    }
    text
}

fn print_names(what: &str, names: &[&str]) {
    if names.is_empty() {
        return;
    }
    let shown: Vec<&str> = names.iter().take(4).copied().collect();
    let more = if names.len() > shown.len() {
        ", ..."
    } else {
        ""
    };
    println!(
        "{what}: {} ({}{more})",
        count(names.len(), "stage"),
        shown.join(", ")
    );
}

fn compare(
    store: &Store,
    old: Option<&StageResult>,
    new: Option<&StageRecord>,
    k: usize,
) -> Verdict {
    let Some(old) = old else {
        return Verdict::NotInRun;
    };
    let Some(new) = new else {
        return Verdict::NoCurrent;
    };
    let old = match previous(store, old, k) {
        Ok(side) => side,
        Err(why) => return Verdict::Cannot(why),
    };
    if old.key == new.key {
        return Verdict::Same;
    }
    let new = Side {
        key: new.key,
        material: Some(new.material.clone()),
        metrics: stored_metrics(store, &new.key),
    };
    let mut lines = material_changes(old.material.as_ref(), new.material.as_ref());
    lines.extend(metric_changes(old.metrics.as_ref(), new.metrics.as_ref()));
    if lines.is_empty() {
        lines.push("its key changed (no parameter or metric differs)".to_owned());
    }
    Verdict::Changed(lines)
}

/// The stored result of a stage in run `k`, or why there is none to compare.
fn previous(store: &Store, result: &StageResult, k: usize) -> Result<Side, String> {
    match &result.outcome {
        Outcome::Failed { error, .. } => {
            return Err(format!("failed in run {k}: {}", error.message));
        }
        Outcome::Skipped { because } => return Err(format!("skipped in run {k}: {because}")),
        Outcome::Ran { .. } | Outcome::Cached => {}
    }
    let Some(key) = result.key else {
        return Err(format!("run {k} recorded no key for it"));
    };
    let manifest = match store.manifest(&key) {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Err(format!(
                "the results of run {k} (key {}) were removed from the store",
                key.0.short(12)
            ));
        }
        Err(e) => return Err(format!("cannot read the stored result of run {k}: {e}")),
    };
    let material = manifest
        .info
        .get("material")
        .and_then(|m| serde_json::from_value(m.clone()).ok());
    let metrics = results::stored_file(store, &manifest, METRICS_FILE)
        .and_then(|path| results::final_metrics(&path).ok().flatten());
    Ok(Side {
        key,
        material,
        metrics,
    })
}

fn stored_metrics(store: &Store, key: &StageKey) -> Option<FinalMetrics> {
    let manifest = store.manifest(key).ok().flatten()?;
    let path = results::stored_file(store, &manifest, METRICS_FILE)?;
    results::final_metrics(&path).ok().flatten()
}

/// Parameters, seed, kind version, device, inputs and files that differ.
fn material_changes(old: Option<&KeyMaterial>, new: Option<&KeyMaterial>) -> Vec<String> {
    let (Some(old), Some(new)) = (old, new) else {
        return vec!["the older result does not record its parameters".to_owned()];
    };
    let mut lines: Vec<String> = diff("", &old.params, &new.params)
        .iter()
        .map(|c| format!("param   {c}"))
        .collect();
    if old.version != new.version {
        lines.push(format!("version {} -> {}", old.version, new.version));
    }
    if old.seed != new.seed {
        lines.push(format!("seed    {} -> {}", old.seed, new.seed));
    }
    if old.device != new.device {
        lines.push(format!("device  {} -> {}", old.device, new.device));
    }
    for (slot, list) in &new.inputs {
        if old.inputs.get(slot) != Some(list) {
            lines.push(format!("input   {slot}: the upstream outputs differ"));
        }
    }
    for (path, digest) in &new.external {
        if old.external.get(path) != Some(digest) {
            lines.push(format!("file    {path} changed"));
        }
    }
    lines
}

/// Final metrics that differ, old -> new with the change.
fn metric_changes(old: Option<&FinalMetrics>, new: Option<&FinalMetrics>) -> Vec<String> {
    let (old, new) = match (old, new) {
        (None, None) => return Vec::new(),
        (Some(o), Some(n)) => (o.clone(), n.clone()),
        (None, Some(n)) => (FinalMetrics::default(), n.clone()),
        (Some(o), None) => (o.clone(), FinalMetrics::default()),
    };
    let mut lines = Vec::new();
    if old.epoch != new.epoch {
        lines.push(format!(
            "metric  last epoch: {} -> {}",
            old.epoch, new.epoch
        ));
    }
    for ((name, a), (_, b)) in old.named().into_iter().zip(new.named()) {
        if a != b {
            lines.push(format!("metric  {name}: {}", change(a, b)));
        }
    }
    lines
}

/// `0.1 -> 0.08 (-0.02, -20.0%)`.
fn change(old: Option<f64>, new: Option<f64>) -> String {
    let show = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), number);
    let (Some(a), Some(b)) = (old, new) else {
        return format!("{} -> {}", show(old), show(new));
    };
    let delta = b - a;
    let sign = if delta >= 0.0 { "+" } else { "" };
    let relative = if a == 0.0 {
        String::new()
    } else {
        format!(", {sign}{:.1}%", delta / a.abs() * 100.0)
    };
    format!(
        "{} -> {} ({sign}{}{relative})",
        number(a),
        number(b),
        number(delta)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_shows_both_values_and_the_difference() {
        assert_eq!(
            change(Some(0.1), Some(0.08)),
            "0.1000 -> 0.08000 (-0.02000, -20.0%)"
        );
        assert_eq!(
            change(Some(0.5), Some(0.75)),
            "0.5000 -> 0.7500 (+0.2500, +50.0%)"
        );
        assert_eq!(change(None, Some(0.75)), "- -> 0.7500");
    }

    #[test]
    fn only_differing_metrics_are_listed() {
        let old = FinalMetrics {
            epoch: 3,
            train_loss: Some(1.0),
            test_loss: Some(2.0),
            ..FinalMetrics::default()
        };
        let new = FinalMetrics {
            test_loss: Some(1.5),
            ..old.clone()
        };
        assert_eq!(
            metric_changes(Some(&old), Some(&new)),
            ["metric  test loss: 2.000 -> 1.500 (-0.5000, -25.0%)"]
        );
    }
}
