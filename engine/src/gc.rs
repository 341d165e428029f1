//! What garbage collection must keep: the stage keys of every pipeline's current state in every
//! workspace that uses the store, and optionally those of each pipeline's last N runs.

use std::collections::BTreeSet;
use std::path::Path;

use pipeline_cache::StageKey;

use crate::record;
use crate::state::PipelineState;
use crate::workspace::{META_DIR, Workspace};

/// The roots of a collection, and the workspaces they came from.
#[derive(Debug, Default)]
pub struct Roots {
    /// Keys to keep.
    pub keys: BTreeSet<StageKey>,
    /// Workspaces read.
    pub workspaces: Vec<std::path::PathBuf>,
    /// Registered workspaces whose folder no longer exists (their results are not kept).
    pub missing: Vec<std::path::PathBuf>,
}

/// The keys the store must keep: every registered workspace's pipeline states, plus the keys
/// of each pipeline's last `keep_runs` runs.
pub fn roots(workspace: &Workspace, keep_runs: usize) -> Roots {
    let mut roots = Roots::default();
    let mut places = Workspace::registered(workspace.store());
    if !places.contains(&workspace.root().to_path_buf()) {
        places.push(workspace.root().to_path_buf());
    }
    for place in places {
        let meta = place.join(META_DIR);
        if !meta.is_dir() {
            roots.missing.push(place);
            continue;
        }
        add_states(&meta.join("state"), &mut roots.keys);
        add_runs(&meta.join("runs"), keep_runs, &mut roots.keys);
        roots.workspaces.push(place);
    }
    roots
}

fn add_states(dir: &Path, keys: &mut BTreeSet<StageKey>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") && !path.ends_with("file-hashes.json") {
            let state = PipelineState::load(&path);
            keys.extend(state.stages.values().map(|r| r.key));
        }
    }
}

fn add_runs(dir: &Path, keep: usize, keys: &mut BTreeSet<StageKey>) {
    if keep == 0 {
        return;
    }
    let Ok(pipelines) = std::fs::read_dir(dir) else {
        return;
    };
    for pipeline in pipelines.flatten() {
        let runs = record::read_all(&pipeline.path());
        for (_, run) in runs.iter().rev().take(keep) {
            keys.extend(run.results.iter().filter_map(|r| r.key));
        }
    }
}
