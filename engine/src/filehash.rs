//! Digests of files outside the store (data sets), remembered by their stat so that an
//! unchanged file is not read again on every run: the digest is reused while the size,
//! modification time, change time and inode all stay the same (the rule git and DVC use).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use pipeline_cache::{ContentDigest, Digest};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
    digest: ContentDigest,
}

/// The digest used for a file that does not exist (the stage then fails with its own message).
pub fn missing_file_digest(path: &Path) -> ContentDigest {
    ContentDigest(Digest::of(
        format!("missing file {}", path.display()).as_bytes(),
    ))
}

/// A cache of file digests, kept in a JSON file.
pub struct FileHasher {
    file: PathBuf,
    seen: Mutex<BTreeMap<PathBuf, Seen>>,
    dirty: Mutex<bool>,
}

impl FileHasher {
    /// Loads the cache kept at `file` (an unreadable cache is simply empty).
    pub fn load(file: PathBuf) -> Self {
        let seen = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            file,
            seen: Mutex::new(seen),
            dirty: Mutex::new(false),
        }
    }

    /// The digest of the file at `path`; `None` if it cannot be read.
    pub fn digest(&self, path: &Path) -> Option<ContentDigest> {
        let meta = std::fs::metadata(path).ok()?;
        let stamp = |digest| Seen {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            inode: meta.ino(),
            digest,
        };
        let key = path.to_path_buf();
        if let Some(seen) = self.seen.lock().ok()?.get(&key)
            && *seen == stamp(seen.digest)
        {
            return Some(seen.digest);
        }
        tracing::debug!(path = %path.display(), "hashing external file");
        let digest = ContentDigest(Digest::of_file(path).ok()?);
        self.seen.lock().ok()?.insert(key, stamp(digest));
        if let Ok(mut d) = self.dirty.lock() {
            *d = true;
        }
        Some(digest)
    }

    /// Writes the cache back if it changed (best effort: a lost cache only costs a re-read).
    pub fn save(&self) {
        let changed = self.dirty.lock().map(|d| *d).unwrap_or(false);
        if !changed {
            return;
        }
        let Ok(seen) = self.seen.lock() else { return };
        if let Ok(bytes) = serde_json::to_vec(&*seen) {
            let _ = crate::atomic::write(&self.file, &bytes);
        }
    }
}
