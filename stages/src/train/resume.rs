//! Resuming an interrupted training run.
//!
//! While a run trains, its state after a finished epoch is saved now and then (at most every
//! [`DEFAULT_EVERY_SECS`] seconds, `PIPELINE_RESUME_EVERY_SECS` to change it) into the stage's
//! resume folder, which the engine keeps under the stage's key until its outputs are committed.
//! A snapshot is everything the rest of the run depends on: the weights and batch-norm
//! statistics, the optimizer's tensors and step count, the data-order generator's state, the
//! evaluations and logged steps so far. libtorch's own generator (dropout) is reseeded from the
//! stage's seed at the start of every epoch, so it needs no saving. A run that starts and finds
//! a snapshot continues after its epoch, and ends with the same bytes as a run that was never
//! interrupted (on the same device with the same thread count).
//!
//! A snapshot is a folder `epoch-NNNN` written under a temporary name and renamed when
//! complete; all but the two latest are removed after. A kill at any moment leaves at least
//! one complete snapshot or none. (Two are kept so that the runs of a batch, saved one after
//! another, always share an epoch to resume from, even when a kill falls between them.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pipeline_engine::stage::StageError;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::fit::EvalRow;
use super::step_log::StepRow;
use crate::tensor_file::{read_tensors, write_tensors};

/// Seconds between snapshots unless `PIPELINE_RESUME_EVERY_SECS` says otherwise.
pub(crate) const DEFAULT_EVERY_SECS: u64 = 10;
/// The format of a snapshot; a snapshot of another format is ignored.
const FORMAT: u32 = 1;
const TENSORS: &str = "state.safetensors";
const STATE: &str = "state.json";
/// Complete snapshots kept in a folder.
const KEEP: usize = 2;

/// The host-side part of a snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Progress {
    format: u32,
    /// What the run is (its parameters and seed): a snapshot of another run is never used,
    /// even if it were found in this run's folder.
    pub(crate) identity: serde_json::Value,
    /// Epochs completed.
    pub(crate) epoch: usize,
    /// Optimizer steps made.
    pub(crate) steps: u64,
    /// The data-order generator's state.
    pub(crate) order_state: u64,
    /// Evaluations so far.
    rows: Vec<SavedRow>,
    /// Logged steps so far.
    pub(crate) step_rows: Vec<StepRow>,
}

impl Progress {
    /// A snapshot's host-side part.
    pub(crate) fn new(
        identity: serde_json::Value,
        epoch: usize,
        steps: u64,
        order_state: u64,
        rows: &[EvalRow],
        step_rows: Vec<StepRow>,
    ) -> Self {
        let rows = rows.iter().map(SavedRow::from).collect();
        Self {
            format: FORMAT,
            identity,
            epoch,
            steps,
            order_state,
            rows,
            step_rows,
        }
    }

    /// The evaluations so far.
    pub(crate) fn rows(&self) -> Vec<EvalRow> {
        self.rows.iter().map(SavedRow::to_row).collect()
    }
}

/// An evaluation as saved (the split by name).
#[derive(Debug, Serialize, Deserialize)]
struct SavedRow {
    epoch: usize,
    step: u64,
    split: String,
    loss: f64,
    accuracy: Option<f64>,
}

impl SavedRow {
    fn from(row: &EvalRow) -> Self {
        Self {
            epoch: row.epoch,
            step: row.step,
            split: row.split.to_owned(),
            loss: row.score.loss,
            accuracy: row.score.accuracy,
        }
    }

    fn to_row(&self) -> EvalRow {
        EvalRow {
            epoch: self.epoch,
            step: self.step,
            split: if self.split == "train" {
                "train"
            } else {
                "test"
            },
            score: super::evaluate::Score {
                loss: self.loss,
                accuracy: self.accuracy,
            },
        }
    }
}

/// Decides when to save and does it.
pub(crate) struct Snapshots {
    dir: PathBuf,
    every: Duration,
    last: Instant,
}

impl Snapshots {
    /// Snapshots in `dir`, at the interval from the environment.
    pub(crate) fn new(dir: &Path) -> Self {
        let secs = std::env::var("PIPELINE_RESUME_EVERY_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_EVERY_SECS);
        Self {
            dir: dir.to_path_buf(),
            every: Duration::from_secs(secs),
            last: Instant::now(),
        }
    }

    /// Whether a snapshot is due.
    pub(crate) fn due(&self) -> bool {
        self.last.elapsed() >= self.every
    }

    /// Saves a snapshot of `tensors` (weights and optimizer state, by name) and `progress`.
    pub(crate) fn save(
        &mut self,
        tensors: &[(String, &Tensor)],
        progress: &Progress,
    ) -> Result<(), StageError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| StageError::io("create", &self.dir, &e))?;
        let name = format!("epoch-{:06}", progress.epoch);
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| StageError::io("create", &tmp, &e))?;
        write_tensors(&tmp.join(TENSORS), tensors)?;
        let json = serde_json::to_vec(progress)
            .map_err(|e| StageError::bug("cannot encode the resume state").caused_by(&e))?;
        std::fs::write(tmp.join(STATE), json).map_err(|e| StageError::io("write", &tmp, &e))?;
        let done = self.dir.join(&name);
        let _ = std::fs::remove_dir_all(&done);
        std::fs::rename(&tmp, &done).map_err(|e| StageError::io("rename", &done, &e))?;
        let all = snapshots(&self.dir);
        for old in &all[..all.len().saturating_sub(KEEP)] {
            let _ = std::fs::remove_dir_all(&old.1);
        }
        self.last = Instant::now();
        Ok(())
    }
}

/// The complete snapshots in `dir`, by epoch.
fn snapshots(dir: &Path) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let epoch = name.strip_prefix("epoch-")?.parse().ok()?;
            Some((epoch, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The latest snapshot in `dir` of the run `identity`, if any can be read: its tensors and
/// progress. A snapshot that cannot be read is skipped with a warning (the run then starts
/// over, which is always safe).
pub(crate) fn latest(
    dir: &Path,
    identity: &serde_json::Value,
) -> Option<(BTreeMap<String, Tensor>, Progress)> {
    for (_, path) in snapshots(dir).into_iter().rev() {
        match read(&path) {
            Ok(found) if found.1.identity == *identity => return Some(found),
            Ok(_) => tracing::warn!(snapshot = %path.display(), "resume snapshot of another run"),
            Err(e) => {
                tracing::warn!(snapshot = %path.display(), error = %e, "unreadable resume snapshot")
            }
        }
    }
    None
}

/// The epochs of the complete snapshots in `dir`, ascending.
pub(crate) fn epochs(dir: &Path) -> Vec<usize> {
    snapshots(dir).into_iter().map(|(e, _)| e).collect()
}

/// The snapshot of `epoch` in `dir`, if it is there, readable and of the run `identity`.
pub(crate) fn at(
    dir: &Path,
    identity: &serde_json::Value,
    epoch: usize,
) -> Option<(BTreeMap<String, Tensor>, Progress)> {
    let (_, path) = snapshots(dir).into_iter().find(|(e, _)| *e == epoch)?;
    match read(&path) {
        Ok(found) if found.1.identity == *identity => Some(found),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(snapshot = %path.display(), error = %e, "unreadable resume snapshot");
            None
        }
    }
}

fn read(path: &Path) -> Result<(BTreeMap<String, Tensor>, Progress), StageError> {
    let bytes = std::fs::read(path.join(STATE)).map_err(|e| StageError::io("read", path, &e))?;
    let progress: Progress = serde_json::from_slice(&bytes)
        .map_err(|e| StageError::input("unreadable resume state").caused_by(&e))?;
    if progress.format != FORMAT {
        return Err(StageError::input(format!(
            "resume state of format {}",
            progress.format
        )));
    }
    Ok((read_tensors(&path.join(TENSORS))?, progress))
}

/// The libtorch seed for `epoch` of a run with `seed` (dropout draws from it).
pub(crate) fn epoch_seed(seed: u64, epoch: usize) -> i64 {
    let mixed = seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    i64::from_ne_bytes(mixed.to_ne_bytes())
}
