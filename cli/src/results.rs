//! Reading back what stages left: the `_stage.json` of an output folder, its files, final
//! metrics of a table, a file of a stored result, and the newest run record. `report`, `show`
//! and `diff` share these.

use std::path::{Path, PathBuf};

use pipeline_cache::{Manifest, Store};
use pipeline_engine::Workspace;
use pipeline_engine::record::{self, Outcome, RunSummary, StageResult};
use pipeline_reports::{FinalMetrics, Table, TableError};

/// The name of the table whose final metrics reports show.
pub const METRICS_FILE: &str = "metrics.parquet";

/// The `_stage.json` of an output folder, if it is there and readable.
pub fn stage_info(dir: &Path) -> Option<serde_json::Value> {
    let bytes = std::fs::read(dir.join("_stage.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every file below `dir` with its size, as `/`-separated relative paths, sorted.
pub fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    collect(dir, "", &mut out);
    out.sort();
    out
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            collect(&entry.path(), &format!("{name}/"), out);
        } else {
            out.push((name, meta.len()));
        }
    }
}

/// The final metrics of a metrics table; `None` if it is not one.
pub fn final_metrics(path: &Path) -> Result<Option<FinalMetrics>, TableError> {
    FinalMetrics::of(&Table::read_parquet(path)?)
}

/// Where the store keeps file `name` of a stored result.
pub fn stored_file(store: &Store, manifest: &Manifest, name: &str) -> Option<PathBuf> {
    let entry = manifest.files.get(name)?;
    Some(store.layout().object(&entry.digest))
}

/// The run records of a pipeline, newest first.
pub fn runs_newest_first(workspace: &Workspace, pipeline: &str) -> Vec<RunSummary> {
    let mut runs: Vec<RunSummary> = record::read_all(&workspace.runs_dir(pipeline))
        .into_iter()
        .map(|(_, run)| run)
        .collect();
    runs.reverse();
    runs
}

/// What a run did with a stage, in a word, with the time where it ran and the reason where it
/// failed or was skipped.
pub fn outcome_words(result: &StageResult) -> (&'static str, Option<f64>, Option<String>) {
    match &result.outcome {
        Outcome::Ran { seconds } => ("ran", Some(*seconds), None),
        Outcome::Cached => ("cached", None, None),
        Outcome::Failed { error, seconds } => {
            ("failed", Some(*seconds), Some(error.message.clone()))
        }
        Outcome::Skipped { because } => ("skipped", None, Some(because.clone())),
    }
}

/// A path relative to the workspace, for display.
pub fn relative(workspace: &Workspace, path: &Path) -> String {
    path.strip_prefix(workspace.root())
        .unwrap_or(path)
        .display()
        .to_string()
}
