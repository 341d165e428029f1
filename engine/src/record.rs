//! Run records: one JSON file per run under `.pipeline/runs/<pipeline>/`, saying when it ran,
//! with which overrides and settings, and what each stage did and how long it took. `pipeline
//! runs` and `pipeline diff` read them.

use std::path::{Path, PathBuf};

use pipeline_cache::StageKey;
use serde::{Deserialize, Serialize};

use crate::stage::StageError;

/// What happened to one stage in a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// It ran and succeeded.
    Ran {
        /// Wall time.
        seconds: f64,
    },
    /// Its outputs were in the store.
    Cached,
    /// It failed.
    Failed {
        /// Why.
        error: StageError,
        /// Wall time until it failed.
        seconds: f64,
    },
    /// It did not run.
    Skipped {
        /// Why.
        because: String,
    },
}

/// One stage's line in a run record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    /// The stage's full name.
    pub name: String,
    /// Its key, when it got that far.
    pub key: Option<StageKey>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its file.
    pub file: PathBuf,
    /// `--set` overrides.
    pub overrides: Vec<String>,
    /// Stages asked for (all when empty).
    pub targets: Vec<String>,
    /// Stages forced.
    pub forced: Vec<String>,
    /// Parallel stages.
    pub jobs: usize,
    /// Default threads per stage.
    pub threads: usize,
    /// When it started, seconds since the epoch.
    pub started_unix: f64,
    /// Wall time.
    pub seconds: f64,
    /// Whether it was stopped.
    pub cancelled: bool,
    /// Every selected stage.
    pub results: Vec<StageResult>,
}

impl RunSummary {
    /// How many stages ran, were cached, failed and were skipped.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for r in &self.results {
            match r.outcome {
                Outcome::Ran { .. } => c.0 += 1,
                Outcome::Cached => c.1 += 1,
                Outcome::Failed { .. } => c.2 += 1,
                Outcome::Skipped { .. } => c.3 += 1,
            }
        }
        c
    }

    /// Whether every stage ran or was cached.
    pub fn succeeded(&self) -> bool {
        let (_, _, failed, skipped) = self.counts();
        failed == 0 && skipped == 0 && !self.cancelled
    }
}

/// Seconds since the epoch.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Writes a run record into `dir`.
pub fn write(dir: &Path, summary: &RunSummary) -> std::io::Result<PathBuf> {
    let name = format!(
        "{:.0}-{}.json",
        summary.started_unix * 1000.0,
        std::process::id()
    );
    let path = dir.join(name);
    let bytes = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
    crate::atomic::write(&path, &bytes)?;
    Ok(path)
}

/// Every run record in `dir`, oldest first (unreadable ones skipped).
pub fn read_all(dir: &Path) -> Vec<(PathBuf, RunSummary)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut runs: Vec<(PathBuf, RunSummary)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            let run = serde_json::from_slice(&bytes).ok()?;
            Some((p, run))
        })
        .collect();
    runs.sort_by(|a, b| a.1.started_unix.total_cmp(&b.1.started_unix));
    runs
}
