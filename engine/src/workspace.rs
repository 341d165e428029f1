//! A workspace: the folder a user runs `pipeline` in. It holds `.pipeline/` (the store, the
//! state of each pipeline, the run history, logs) and `outputs/` (readable copies of every
//! stage's outputs at `outputs/<pipeline>/<stage folder>/`).

use std::path::{Path, PathBuf};

use pipeline_cache::{Store, StoreError};

use crate::spec::StageSpec;

/// The name of the workspace's metadata folder.
pub const META_DIR: &str = ".pipeline";

/// An opened workspace.
#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
    store: Store,
}

impl Workspace {
    /// Opens the workspace at `root`; the store lives at `store` if given, else in
    /// `.pipeline/store` (a store may be shared by several workspaces).
    pub fn open(root: &Path, store: Option<&Path>) -> Result<Self, StoreError> {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        // Absolute, because jobs may run with another working folder (on a cluster node).
        let store_dir = store.map_or_else(
            || root.join(META_DIR).join("store"),
            |s| std::path::absolute(s).unwrap_or_else(|_| s.to_path_buf()),
        );
        let store = Store::open(store_dir)?;
        let workspace = Self { root, store };
        workspace.register();
        Ok(workspace)
    }

    /// Records this workspace in the store, so that garbage collection of a store shared by
    /// several workspaces keeps what each of them uses (best effort: a store on a read-only
    /// disk still serves cached results).
    fn register(&self) {
        let dir = self.store.layout().workspaces();
        let id = pipeline_cache::Digest::of(self.root.as_os_str().as_encoded_bytes()).short(16);
        let file = dir.join(format!("{id}.json"));
        if file.exists() {
            return;
        }
        let record = serde_json::json!({ "path": self.root });
        let _ = crate::atomic::write(&file, record.to_string().as_bytes());
    }

    /// Every workspace registered in a store (including ones whose folder is gone).
    pub fn registered(store: &Store) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(store.layout().workspaces()) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter_map(|v| v.get("path").and_then(|p| p.as_str()).map(PathBuf::from))
            .collect();
        paths.sort();
        paths
    }

    /// The folder of state files (one per pipeline).
    pub fn state_dir(&self) -> PathBuf {
        self.meta().join("state")
    }

    /// The nearest folder at or above `start` that has a `.pipeline` folder, else `start`.
    pub fn find_root(start: &Path) -> PathBuf {
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        start
            .ancestors()
            .find(|dir| dir.join(META_DIR).is_dir())
            .map_or(start.clone(), Path::to_path_buf)
    }

    /// The workspace folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The metadata folder.
    pub fn meta(&self) -> PathBuf {
        self.root.join(META_DIR)
    }

    /// Where a stage's outputs are copied for people to read.
    pub fn output_dir(&self, pipeline: &str, stage: &StageSpec) -> PathBuf {
        self.root
            .join("outputs")
            .join(pipeline)
            .join(stage.folder())
    }

    /// The state file of a pipeline (last successful inputs and outputs of each stage).
    pub fn state_file(&self, pipeline: &str) -> PathBuf {
        self.meta().join("state").join(format!("{pipeline}.json"))
    }

    /// The folder of a pipeline's run records.
    pub fn runs_dir(&self, pipeline: &str) -> PathBuf {
        self.meta().join("runs").join(pipeline)
    }

    /// The cache of external file digests.
    pub fn file_hashes(&self) -> PathBuf {
        self.meta().join("state").join("file-hashes.json")
    }

    /// The folder for log files of runs.
    pub fn logs_dir(&self) -> PathBuf {
        self.meta().join("logs")
    }
}
