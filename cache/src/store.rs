//! Opening a store, committing a stage's output folder under its key, looking entries up,
//! and giving running stages read-only views of their inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{ContentDigest, Digest, StageKey};
use crate::error::{IoContext, StoreError};
use crate::layout::Layout;
use crate::lock::{self, LockGuard, TryLock};
use crate::manifest::{FileEntry, MANIFEST_FORMAT, Manifest};

/// A content-addressed store in one directory.
#[derive(Clone, Debug)]
pub struct Store {
    layout: Layout,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A name no other process or thread will pick: pid, time and a counter.
pub fn unique_name(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{}-{nanos}-{n}", std::process::id())
}

/// A private folder under `staging/`, removed when dropped.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
}

impl Staging {
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = remove_tree(&self.path);
    }
}

/// Removes a folder tree, making read-only entries writable first.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let layout = Layout::new(root);
        for dir in [
            layout.objects(),
            layout.manifests(),
            layout.staging(),
            layout.locks(),
        ] {
            fs::create_dir_all(&dir).ctx("create", &dir)?;
        }
        Ok(Self { layout })
    }

    /// Where things are.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The manifest committed under `key`, if any. A manifest that cannot be parsed (which an
    /// atomic commit never leaves, but a damaged disk might) counts as absent and is moved to
    /// the quarantine so that the stage is recomputed.
    pub fn manifest(&self, key: &StageKey) -> Result<Option<Manifest>, StoreError> {
        let path = self.layout.manifest(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", &path, e)),
        };
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) if m.key == *key && m.format == MANIFEST_FORMAT => Ok(Some(m)),
            Ok(_) | Err(_) => {
                tracing::warn!(path = %path.display(), "unreadable manifest moved to quarantine");
                self.quarantine(&path)?;
                Ok(None)
            }
        }
    }

    /// Checks that every object of a manifest is present with the right size (cheap; a full
    /// check of the bytes is [`Store::verify_entry`]).
    pub fn check_present(&self, manifest: &Manifest) -> Result<(), StoreError> {
        for entry in manifest.files.values() {
            let path = self.layout.object(&entry.digest);
            match fs::metadata(&path) {
                Ok(meta) if meta.len() == entry.size => {}
                Ok(meta) => {
                    return Err(StoreError::Damaged {
                        path,
                        found: format!("a file of {} bytes", meta.len()),
                    });
                }
                Err(_) => return Err(StoreError::Missing { path }),
            }
        }
        Ok(())
    }

    /// Re-hashes one object and compares it with its name.
    pub fn verify_entry(&self, entry: &FileEntry) -> Result<(), StoreError> {
        let path = self.layout.object(&entry.digest);
        if !path.exists() {
            return Err(StoreError::Missing { path });
        }
        let found = Digest::of_file(&path).ctx("read", &path)?;
        if found == entry.digest.0 {
            Ok(())
        } else {
            Err(StoreError::Damaged {
                path,
                found: found.to_hex(),
            })
        }
    }

    /// Moves a damaged file out of the way (so lookups treat it as missing).
    pub fn quarantine(&self, path: &Path) -> Result<(), StoreError> {
        let dir = self.layout.quarantine();
        fs::create_dir_all(&dir).ctx("create", &dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = dir.join(unique_name(&name));
        match fs::rename(path, &dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("move to quarantine", path, e)),
        }
    }

    /// A fresh private folder under `staging/`, named `LABEL-PID-NANOS-N@HOST`: the process
    /// and host that own it, so that cleaning up after killed runs can tell whose it is.
    pub fn staging(&self, label: &str) -> Result<Staging, StoreError> {
        let name = format!("{}@{}", unique_name(label), lock::hostname());
        let path = self.layout.staging().join(name);
        fs::create_dir_all(&path).ctx("create", &path)?;
        Ok(Staging { path })
    }

    /// Takes the lock of `key` if free.
    pub fn try_lock(&self, key: &StageKey, purpose: &str) -> Result<TryLock, StoreError> {
        lock::try_lock(&self.layout.lock(key), purpose)
    }

    /// Takes the lock of `key`, waiting for it.
    pub fn lock(&self, key: &StageKey, purpose: &str) -> Result<LockGuard, StoreError> {
        lock::lock(&self.layout.lock(key), purpose)
    }

    /// Commits every regular file under `dir` as the outputs of `key`: each file is synced
    /// and moved into `objects/` under its digest, then the manifest is written atomically.
    /// `dir` is consumed (its files are moved away).
    pub fn commit(
        &self,
        key: &StageKey,
        dir: &Path,
        info: BTreeMap<String, serde_json::Value>,
    ) -> Result<Manifest, StoreError> {
        let mut files = BTreeMap::new();
        let mut touched = BTreeSet::new();
        for (relative, path) in list_files(dir)? {
            let entry = self.put_file(&path, &mut touched)?;
            files.insert(relative, entry);
        }
        for parent in &touched {
            sync_dir(parent)?;
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            key: *key,
            files,
            info,
        };
        self.write_manifest(&manifest)?;
        Ok(manifest)
    }

    fn put_file(
        &self,
        path: &Path,
        touched: &mut BTreeSet<PathBuf>,
    ) -> Result<FileEntry, StoreError> {
        let file = File::open(path).ctx("open", path)?;
        file.sync_all().ctx("sync", path)?;
        let size = file.metadata().ctx("stat", path)?.len();
        drop(file);
        let digest = ContentDigest(Digest::of_file(path).ctx("read", path)?);
        let object = self.layout.object(&digest);
        let present = fs::metadata(&object).is_ok_and(|m| m.len() == size);
        if !present {
            let parent = object.parent().unwrap_or(self.layout.root());
            fs::create_dir_all(parent).ctx("create", parent)?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o444))
                .ctx("set permissions of", path)?;
            fs::rename(path, &object).ctx("move into the store", &object)?;
            touched.insert(parent.to_path_buf());
        }
        Ok(FileEntry { digest, size })
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let path = self.layout.manifest(&manifest.key);
        let parent = path.parent().unwrap_or(self.layout.root()).to_path_buf();
        fs::create_dir_all(&parent).ctx("create", &parent)?;
        let tmp = parent.join(format!(".{}", unique_name("manifest")));
        let bytes = serde_json::to_vec_pretty(manifest).map_err(|e| StoreError::BadManifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let result = (|| {
            let mut f = File::create(&tmp).ctx("create", &tmp)?;
            f.write_all(&bytes).ctx("write", &tmp)?;
            f.sync_all().ctx("sync", &tmp)?;
            fs::rename(&tmp, &path).ctx("rename", &path)?;
            sync_dir(&parent)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Forgets the manifest of `key` (its objects stay until garbage collection).
    pub fn forget(&self, key: &StageKey) -> Result<(), StoreError> {
        let path = self.layout.manifest(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", &path, e)),
        }
    }

    /// Lays out the outputs of `manifest` under `dest` as read-only hard links to the objects
    /// (copies where a link is impossible), for a stage that reads them.
    pub fn input_view(&self, manifest: &Manifest, dest: &Path) -> Result<(), StoreError> {
        for (relative, entry) in &manifest.files {
            let target = dest.join(relative);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).ctx("create", parent)?;
            }
            let object = self.layout.object(&entry.digest);
            if fs::hard_link(&object, &target).is_err() {
                fs::copy(&object, &target).ctx("copy", &object)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(0o444))
                    .ctx("set permissions of", &target)?;
            }
        }
        Ok(())
    }
}

/// Every regular file under `dir` as (relative `/`-separated path, full path), sorted.
pub fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).ctx("list", dir)? {
        let entry = entry.ctx("list", dir)?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type().ctx("stat", &path)?;
        if kind.is_dir() {
            walk(&path, &relative, out)?;
        } else if kind.is_file() {
            out.push((relative, path));
        } else {
            return Err(StoreError::NotAFile { path });
        }
    }
    Ok(())
}

/// Syncs a directory so that renames into it survive a power loss.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).ctx("sync", dir)
}

#[cfg(test)]
mod tests;
