//! What each stage of a pipeline looked like when it last succeeded: its key material, output
//! digest and the stamps of its materialized folder. The planner diffs against this record to
//! say *why* a stage will run; correctness never depends on it (a stage is cached exactly when
//! its key has a manifest in the store), so a lost or stale state file only costs explanations
//! and a re-copy of output folders.

use std::collections::BTreeMap;
use std::path::Path;

use pipeline_cache::materialize::Stamps;
use pipeline_cache::{ContentDigest, StageKey};
use serde::{Deserialize, Serialize};

use crate::key::KeyMaterial;

/// The last successful run of one stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// The key it ran (or was found cached) under.
    pub key: StageKey,
    /// What the key covered.
    pub material: KeyMaterial,
    /// The digest of its outputs.
    pub outputs: ContentDigest,
    /// Stamps of the materialized output folder.
    #[serde(default)]
    pub stamps: Stamps,
}

/// The state of one pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineState {
    /// Records by full stage name.
    pub stages: BTreeMap<String, StageRecord>,
}

impl PipelineState {
    /// Reads the state file (missing or unreadable: empty state).
    pub fn load(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable state file");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Merges `updates` into the state on disk and writes it back atomically. Concurrent runs
    /// of the same pipeline serialize on a lock file next to it.
    pub fn merge_into(path: &Path, updates: &BTreeMap<String, StageRecord>) -> std::io::Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let lock_path = path.with_extension("lock");
        if let Some(parent) = lock_path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        lock.lock()?;
        let mut state = Self::load(path);
        for (name, record) in updates {
            state.stages.insert(name.clone(), record.clone());
        }
        let bytes = serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?;
        crate::atomic::write(path, &bytes)
    }
}
