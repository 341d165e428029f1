//! The record of one committed stage: which files it produced and their digests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::{ContentDigest, Digest, StageKey};

/// One output file of a stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The digest of its bytes, which is also its object name.
    pub digest: ContentDigest,
    /// Its size in bytes.
    pub size: u64,
}

/// The outputs of one stage key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version of this record.
    pub format: u32,
    /// The stage key the outputs belong to.
    pub key: StageKey,
    /// Output files by path relative to the stage's output folder (`/`-separated), sorted.
    pub files: BTreeMap<String, FileEntry>,
    /// Free-form facts about how the outputs were made (kind, stage name, seconds), for
    /// people; never part of any digest.
    #[serde(default)]
    pub info: BTreeMap<String, serde_json::Value>,
}

/// The current manifest format.
pub const MANIFEST_FORMAT: u32 = 1;

impl Manifest {
    /// The digest of the whole set of outputs: paths and file digests, unambiguously encoded.
    /// Two stages with byte-identical outputs have the same tree digest whatever their keys,
    /// which is what lets an unchanged rerun leave downstream stages cached.
    pub fn tree_digest(&self) -> ContentDigest {
        tree_digest(&self.files)
    }

    /// Total bytes of all outputs.
    pub fn total_size(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }
}

/// The digest of a set of files (see [`Manifest::tree_digest`]).
pub fn tree_digest(files: &BTreeMap<String, FileEntry>) -> ContentDigest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"pipeline-tree-v1\0");
    hasher.update(&(files.len() as u64).to_le_bytes());
    for (path, entry) in files {
        hasher.update(&(path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update(&entry.digest.0.0);
        hasher.update(&entry.size.to_le_bytes());
    }
    ContentDigest(Digest(*hasher.finalize().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(b: &[u8]) -> FileEntry {
        FileEntry {
            digest: ContentDigest(Digest::of(b)),
            size: b.len() as u64,
        }
    }

    #[test]
    fn tree_digest_depends_on_names_and_contents() {
        let mut a = BTreeMap::new();
        a.insert("x".to_owned(), entry(b"1"));
        let mut b = BTreeMap::new();
        b.insert("y".to_owned(), entry(b"1"));
        let mut c = BTreeMap::new();
        c.insert("x".to_owned(), entry(b"2"));
        assert_ne!(tree_digest(&a), tree_digest(&b));
        assert_ne!(tree_digest(&a), tree_digest(&c));
        assert_eq!(tree_digest(&a), tree_digest(&a.clone()));
    }

    #[test]
    fn path_boundaries_are_unambiguous() {
        let mut a = BTreeMap::new();
        a.insert("ab".to_owned(), entry(b""));
        a.insert("c".to_owned(), entry(b""));
        let mut b = BTreeMap::new();
        b.insert("a".to_owned(), entry(b""));
        b.insert("bc".to_owned(), entry(b""));
        assert_ne!(tree_digest(&a), tree_digest(&b));
    }
}
