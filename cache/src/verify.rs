//! `verify`: re-hash every object, check that every manifest's objects exist, and move
//! damaged objects and manifests aside so that the stages that made them run again.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::digest::Digest;
use crate::error::{IoContext, StoreError};
use crate::manifest::Manifest;
use crate::store::{Store, list_files};

/// What `verify` found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Objects re-hashed.
    pub objects: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Objects whose bytes do not match their name (moved to the quarantine when repairing).
    pub damaged: Vec<PathBuf>,
    /// Manifests read.
    pub manifests: usize,
    /// Manifests that name a missing or damaged object (removed when repairing, so the stage
    /// runs again).
    pub broken_manifests: Vec<PathBuf>,
}

impl VerifyReport {
    /// Whether the store is sound.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty() && self.broken_manifests.is_empty()
    }
}

/// Re-hashes the store with `threads` threads; with `repair`, moves damaged objects to the
/// quarantine and removes the manifests that name them.
pub fn verify(store: &Store, threads: usize, repair: bool) -> Result<VerifyReport, StoreError> {
    let layout = store.layout();
    let objects = list_files(&layout.objects())?;
    let next = Mutex::new(objects.iter());
    let found = Mutex::new((0usize, 0u64, Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let item = next.lock().ok().and_then(|mut it| it.next());
                    let Some((relative, path)) = item else { break };
                    let result = check_object(relative, path);
                    if let Ok(mut f) = found.lock() {
                        f.0 += 1;
                        f.1 += result.1;
                        if !result.0 {
                            f.2.push(path.clone());
                        }
                    }
                }
            });
        }
    });
    let (count, bytes, mut damaged) = found.into_inner().unwrap_or_default();
    damaged.sort();
    if repair {
        for path in &damaged {
            store.quarantine(path)?;
        }
    }
    let (manifests, broken_manifests) = check_manifests(store, repair)?;
    Ok(VerifyReport {
        objects: count,
        bytes,
        damaged,
        manifests,
        broken_manifests,
    })
}

/// Whether an object's bytes hash to its name, and its size.
fn check_object(relative: &str, path: &std::path::Path) -> (bool, u64) {
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let expected: String = relative.chars().filter(|c| *c != '/').collect();
    let ok = Digest::of_file(path).is_ok_and(|d| d.to_hex() == expected);
    (ok, size)
}

fn check_manifests(store: &Store, repair: bool) -> Result<(usize, Vec<PathBuf>), StoreError> {
    let mut count = 0;
    let mut broken = Vec::new();
    for (_, path) in list_files(&store.layout().manifests())? {
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        count += 1;
        let bytes = std::fs::read(&path).ctx("read", &path)?;
        let sound = serde_json::from_slice::<Manifest>(&bytes)
            .ok()
            .is_some_and(|m| store.check_present(&m).is_ok());
        if !sound {
            broken.push(path.clone());
            if repair {
                store.quarantine(&path)?;
            }
        }
    }
    Ok((count, broken))
}
