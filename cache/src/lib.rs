//! The content-addressed store behind `pipeline`'s cache.
//!
//! A stage's outputs are files. Committing them moves each file into `objects/` under the
//! blake3 hash of its bytes and then writes a [`Manifest`] under the stage's key; the manifest
//! is the commit point, written by atomic rename after everything it names is on disk, so a
//! crash at any moment leaves either a complete entry or none. Objects are never modified
//! in place; readers take no locks; writers of the same key serialize on a per-key lock that
//! the kernel releases when its holder dies.
//!
//! This crate knows nothing about pipelines or stages beyond keys and files.

pub mod digest;
pub mod error;
pub mod gc;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod materialize;
pub mod store;
pub mod verify;

pub use digest::{ContentDigest, Digest, StageKey};
pub use error::StoreError;
pub use manifest::{FileEntry, Manifest};
pub use store::Store;
