//! Where things live inside a store directory. Every name below `objects/` and `manifests/`
//! is derived from a digest and nothing else.
//!
//! ```text
//! objects/ab/cdef…      content-addressed files, read-only
//! manifests/ab/cdef….json  one per stage key: the files a stage produced
//! staging/<id>/          outputs of running stages, and input views; same file system
//! locks/<key>.lock       one per stage key being computed
//! resume/<key>/          state an interrupted stage resumes from
//! quarantine/            damaged objects moved aside by `verify`
//! ```

use std::path::{Path, PathBuf};

use crate::digest::{ContentDigest, StageKey};

/// Paths inside one store directory.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of the store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The store's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of all objects.
    pub fn objects(&self) -> PathBuf {
        self.root.join("objects")
    }

    /// Where the object with this digest lives.
    pub fn object(&self, digest: &ContentDigest) -> PathBuf {
        let hex = digest.0.to_hex();
        self.objects().join(&hex[..2]).join(&hex[2..])
    }

    /// The folder of all manifests.
    pub fn manifests(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// Where the manifest of this key lives.
    pub fn manifest(&self, key: &StageKey) -> PathBuf {
        let hex = key.0.to_hex();
        self.manifests()
            .join(&hex[..2])
            .join(format!("{}.json", &hex[2..]))
    }

    /// The folder of in-progress work.
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// The folder of lock files.
    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// The lock file of a key.
    pub fn lock(&self, key: &StageKey) -> PathBuf {
        self.locks().join(format!("{}.lock", key.0.to_hex()))
    }

    /// The resume folder of a key.
    pub fn resume(&self, key: &StageKey) -> PathBuf {
        self.root.join("resume").join(key.0.to_hex())
    }

    /// The lock every run holds shared and garbage collection holds exclusively.
    pub fn run_lock(&self) -> PathBuf {
        self.locks().join("runs.lock")
    }

    /// The folder where workspaces using this store register themselves (their state files
    /// are the roots of garbage collection).
    pub fn workspaces(&self) -> PathBuf {
        self.root.join("workspaces")
    }

    /// Where damaged objects are moved.
    pub fn quarantine(&self) -> PathBuf {
        self.root.join("quarantine")
    }
}
