//! Copies of committed outputs in a readable folder (`outputs/<pipeline>/<stage>/`).
//!
//! The folder holds copies, never links: a user who edits or deletes a file there cannot
//! change or lose the stored object. (`std::fs::copy` uses `copy_file_range`, which shares
//! blocks on file systems that support it.) A new generation is built beside the folder and
//! swapped in with one atomic exchange, so a reader never sees a folder that mixes the files
//! of two generations. A stamp of every copied file (size and modification time) lets the next
//! run tell, without reading the files, whether the folder is still intact. Every copy is
//! hashed and compared with its object's digest, so a damaged object never reaches the folder:
//! it is moved aside and [`StoreError::Damaged`] tells the caller to compute it again.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{IoContext, StoreError};
use crate::manifest::Manifest;
use crate::store::{Store, remove_tree, unique_name};

/// Size and modification time of one materialized file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i128,
}

/// Stamps of every file of a materialized folder, by relative path.
pub type Stamps = BTreeMap<String, Stamp>;

fn stamp_of(path: &Path) -> Option<Stamp> {
    let meta = fs::metadata(path).ok()?;
    Some(Stamp {
        size: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    })
}

/// Whether `dest` still holds exactly the files the stamps describe, unmodified.
pub fn is_intact(dest: &Path, stamps: &Stamps) -> bool {
    !stamps.is_empty()
        && stamps
            .iter()
            .all(|(rel, s)| stamp_of(&dest.join(rel)).as_ref() == Some(s))
}

/// Replaces `dest` with copies of the outputs in `manifest` plus `extra` files (name, bytes),
/// atomically; returns the stamps of what it wrote.
pub fn materialize(
    store: &Store,
    manifest: &Manifest,
    extra: &[(&str, &[u8])],
    dest: &Path,
) -> Result<Stamps, StoreError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).ctx("create", parent)?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{}", unique_name(&name)));
    let result = fill(store, manifest, extra, &tmp).and_then(|()| swap_in(&tmp, dest));
    let _ = remove_tree(&tmp);
    result?;
    let mut stamps = Stamps::new();
    let names = manifest
        .files
        .keys()
        .map(String::as_str)
        .chain(extra.iter().map(|(n, _)| *n));
    for rel in names {
        let path = dest.join(rel);
        let stamp = stamp_of(&path).ok_or_else(|| StoreError::Missing { path: path.clone() })?;
        stamps.insert(rel.to_owned(), stamp);
    }
    Ok(stamps)
}

fn fill(
    store: &Store,
    manifest: &Manifest,
    extra: &[(&str, &[u8])],
    tmp: &Path,
) -> Result<(), StoreError> {
    fs::create_dir_all(tmp).ctx("create", tmp)?;
    for (relative, entry) in &manifest.files {
        let target = tmp.join(relative);
        if let Some(p) = target.parent() {
            fs::create_dir_all(p).ctx("create", p)?;
        }
        let object = store.layout().object(&entry.digest);
        fs::copy(&object, &target).ctx("copy", &object)?;
        let found = Digest::of_file(&target).ctx("read", &target)?;
        if found != entry.digest.0 {
            store.quarantine(&object)?;
            return Err(StoreError::Damaged {
                path: object,
                found: found.to_hex(),
            });
        }
        let mut perms = fs::metadata(&target).ctx("stat", &target)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
        fs::set_permissions(&target, perms).ctx("set permissions of", &target)?;
    }
    for (name, bytes) in extra {
        let target = tmp.join(name);
        fs::write(&target, bytes).ctx("write", &target)?;
    }
    Ok(())
}

/// Puts `tmp` at `dest`: an atomic exchange when `dest` exists (the old generation ends up at
/// `tmp`, which the caller removes), a rename otherwise.
fn swap_in(tmp: &Path, dest: &Path) -> Result<(), StoreError> {
    if fs::symlink_metadata(dest).is_ok() {
        exchange(tmp, dest)
    } else {
        fs::rename(tmp, dest).ctx("rename", dest)
    }
}

fn exchange(a: &Path, b: &Path) -> Result<(), StoreError> {
    let to_c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| StoreError::NotAFile {
            path: p.to_path_buf(),
        })
    };
    let (ca, cb) = (to_c(a)?, to_c(b)?);
    // SAFETY: both pointers are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if matches!(err.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
        // A file system without RENAME_EXCHANGE: move the old generation aside first. A
        // reader may briefly find no folder, but never a mixed one.
        let aside = b.with_file_name(format!(".{}", unique_name("old")));
        fs::rename(b, &aside).ctx("rename", b)?;
        fs::rename(a, b).ctx("rename", b)?;
        fs::rename(&aside, a).ctx("rename", &aside)?;
        return Ok(());
    }
    Err(StoreError::io("swap in", b, err))
}
