//! Garbage collection: remove the manifests no root refers to, then every object no remaining
//! manifest names. Roots come from the caller (the stage keys of current pipelines and of
//! recent runs). A run holds the store's run lock shared for its whole duration, and collection
//! takes it exclusively, so it never removes what a running pipeline is using or about to
//! commit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::digest::StageKey;
use crate::error::{IoContext, StoreError};
use crate::manifest::Manifest;
use crate::store::{Store, list_files};

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Manifests kept (referenced by a root).
    pub kept_manifests: usize,
    /// Manifests removed.
    pub removed_manifests: Vec<PathBuf>,
    /// Objects removed.
    pub removed_objects: Vec<PathBuf>,
    /// Bytes the removed objects held.
    pub freed_bytes: u64,
}

/// Removes everything not reachable from `roots`; with `dry_run`, only reports.
pub fn collect(
    store: &Store,
    roots: &BTreeSet<StageKey>,
    dry_run: bool,
) -> Result<GcReport, StoreError> {
    let mut report = GcReport::default();
    let mut live = BTreeSet::new();
    for (_, path) in list_files(&store.layout().manifests())? {
        if is_temporary(&path) {
            continue;
        }
        let bytes = std::fs::read(&path).ctx("read", &path)?;
        let manifest: Option<Manifest> = serde_json::from_slice(&bytes).ok();
        match manifest {
            Some(m) if roots.contains(&m.key) => {
                report.kept_manifests += 1;
                live.extend(m.files.values().map(|f| store.layout().object(&f.digest)));
            }
            _ => {
                if !dry_run {
                    std::fs::remove_file(&path).ctx("remove", &path)?;
                }
                report.removed_manifests.push(path);
            }
        }
    }
    for (_, path) in list_files(&store.layout().objects())? {
        if live.contains(&path) {
            continue;
        }
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        if !dry_run {
            std::fs::remove_file(&path).ctx("remove", &path)?;
        }
        report.freed_bytes += size;
        report.removed_objects.push(path);
    }
    Ok(report)
}

fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Removes staging folders left by processes of this host that are gone (a killed run cannot
/// clean up after itself). Folders of live processes, and of other hosts, are left alone: on a
/// store shared by the machines of a cluster, a process id means nothing on another host, so
/// a folder whose owner runs elsewhere is never judged by the process table of this one.
pub fn clean_staging(store: &Store) -> Result<usize, StoreError> {
    let dir = store.layout().staging();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let here = crate::lock::hostname();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Names without a host come from versions that ran on one machine only.
        let (base, host) = name
            .rsplit_once('@')
            .map_or((name.as_str(), None), |(b, h)| (b, Some(h)));
        if host.is_some_and(|h| h != here) {
            continue;
        }
        let Some(pid) = owner_pid(base) else {
            continue;
        };
        if !process_alive(pid) {
            crate::store::remove_tree(&entry.path()).ctx("remove", &entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The pid in a name made by `unique_name`: `label-PID-NANOS-N`.
fn owner_pid(name: &str) -> Option<u32> {
    let parts: Vec<&str> = name.rsplitn(4, '-').collect();
    // rsplitn yields N, NANOS, PID, label.
    parts.get(2)?.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::digest::Digest;

    fn commit(store: &Store, n: u8, files: &[(&str, &[u8])]) -> Manifest {
        let staging = store.staging("t").unwrap();
        for (name, bytes) in files {
            std::fs::write(staging.path().join(name), bytes).unwrap();
        }
        store
            .commit(&StageKey(Digest::of(&[n])), staging.path(), BTreeMap::new())
            .unwrap()
    }

    #[test]
    fn keeps_what_roots_reach_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = commit(&store, 1, &[("shared", b"same"), ("a", b"only a")]);
        let b = commit(&store, 2, &[("shared", b"same"), ("b", b"only b")]);
        let roots = BTreeSet::from([a.key]);
        let dry = collect(&store, &roots, true).unwrap();
        assert_eq!(dry.removed_manifests.len(), 1);
        assert_eq!(dry.removed_objects.len(), 1, "the shared object stays");
        assert!(
            store.manifest(&b.key).unwrap().is_some(),
            "a dry run removes nothing"
        );
        let done = collect(&store, &roots, false).unwrap();
        assert_eq!(done.freed_bytes, 6);
        assert!(store.manifest(&b.key).unwrap().is_none());
        store.check_present(&a).unwrap();
    }

    #[test]
    fn staging_of_another_host_is_never_judged_by_local_process_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let elsewhere = store
            .layout()
            .staging()
            .join("train-999999999-1-0@another-node.cluster");
        std::fs::create_dir_all(elsewhere.join("out")).unwrap();
        let dead_here = store
            .layout()
            .staging()
            .join(format!("train-999999999-1-1@{}", crate::lock::hostname()));
        std::fs::create_dir_all(&dead_here).unwrap();
        assert_eq!(clean_staging(&store).unwrap(), 1);
        assert!(
            elsewhere.exists(),
            "pid 999999999 may well be alive on its own host"
        );
        assert!(!dead_here.exists());
    }

    #[test]
    fn staging_of_dead_processes_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mine = store.staging("live").unwrap();
        let dead = store.layout().staging().join("train-999999999-1-0");
        std::fs::create_dir_all(dead.join("out")).unwrap();
        assert_eq!(clean_staging(&store).unwrap(), 1);
        assert!(!dead.exists());
        assert!(mine.path().exists());
        assert_eq!(owner_pid("fit_function_sign_-123-456-7"), Some(123));
    }
}
