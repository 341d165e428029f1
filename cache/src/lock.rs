//! Per-key locks, so that one stage key is computed by one process at a time.
//!
//! A lock is an exclusive `flock` on a file in `locks/`: the kernel releases it when the
//! holder exits or dies, so a killed run can never leave a lock behind that blocks others.
//! The file also records who holds it (host, process id, start time) so that a waiting run
//! can say whom it waits for, and a run that takes over a key from a dead holder can say so.
//! (`flock` on NFS is emulated with POSIX locks by Linux clients, which lockd releases when
//! the holder dies; the holder record includes the host for that reason.)
//!
//! Whether a holder is alive is only ever the kernel's answer (the lock itself), never a look
//! at the recorded process id: on a store shared by the nodes of a cluster the holder may run
//! on another host, where the same number names another process or none. The record serves
//! messages only. The file system must therefore support locks across hosts (NFSv4, Lustre
//! mounted with `flock`, GPFS, CephFS); one mounted with `localflock` or `nolock` does not.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, StoreError};

/// Who holds (or last held) a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Host name.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// What the holder is doing (a stage name).
    pub purpose: String,
    /// Seconds since the Unix epoch when it took the lock.
    pub since: u64,
}

impl Holder {
    /// A record for this process.
    pub fn me(purpose: &str) -> Self {
        Self {
            host: hostname(),
            pid: std::process::id(),
            purpose: purpose.to_owned(),
            since: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// The host name, from the kernel.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned())
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
    /// The previous holder's record, when the lock was found left behind by a process that
    /// is gone (it was killed before it could clear its record).
    pub taken_over: Option<Holder>,
}

impl LockGuard {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Clear the record so the next holder does not report a take-over; the kernel drops
        // the lock itself when the file is closed.
        let _ = self.file.set_len(0);
    }
}

/// The outcome of trying to take a lock without waiting.
#[derive(Debug)]
pub enum TryLock {
    /// Taken.
    Acquired(LockGuard),
    /// Someone else holds it.
    Busy(Option<Holder>),
}

fn open(path: &Path) -> Result<File, StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ctx("create", parent)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ctx("open", path)
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn finish(mut file: File, path: &Path, purpose: &str) -> Result<LockGuard, StoreError> {
    let taken_over = read_holder(&mut file);
    let record = serde_json::to_vec(&Holder::me(purpose)).unwrap_or_default();
    file.set_len(0).ctx("truncate", path)?;
    file.seek(SeekFrom::Start(0)).ctx("seek", path)?;
    file.write_all(&record).ctx("write", path)?;
    file.flush().ctx("write", path)?;
    Ok(LockGuard {
        file,
        path: path.to_path_buf(),
        taken_over,
    })
}

/// Takes the lock at `path` if it is free.
pub fn try_lock(path: &Path, purpose: &str) -> Result<TryLock, StoreError> {
    let mut file = open(path)?;
    match file.try_lock() {
        Ok(()) => finish(file, path, purpose).map(TryLock::Acquired),
        Err(TryLockError::WouldBlock) => Ok(TryLock::Busy(read_holder(&mut file))),
        Err(TryLockError::Error(e)) => Err(StoreError::io("lock", path, e)),
    }
}

/// Takes the lock at `path`, waiting as long as it takes.
pub fn lock(path: &Path, purpose: &str) -> Result<LockGuard, StoreError> {
    let file = open(path)?;
    file.lock().ctx("lock", path)?;
    finish(file, path, purpose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_sees_busy_and_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let TryLock::Acquired(guard) = try_lock(&path, "first").unwrap() else {
            panic!()
        };
        match try_lock(&path, "second").unwrap() {
            TryLock::Busy(Some(h)) => assert_eq!(h.purpose, "first"),
            other => panic!("expected busy, got {other:?}"),
        }
        drop(guard);
        let TryLock::Acquired(again) = try_lock(&path, "second").unwrap() else {
            panic!()
        };
        assert!(
            again.taken_over.is_none(),
            "a cleanly released lock is not a take-over"
        );
    }

    #[test]
    fn a_held_lock_is_busy_whatever_its_record_says() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let TryLock::Acquired(guard) = try_lock(&path, "train").unwrap() else {
            panic!()
        };
        // As a holder on another node looks from here: a process id this host does not have.
        let remote = Holder {
            host: "node-17".into(),
            pid: 999_999_999,
            purpose: "train".into(),
            since: 1,
        };
        std::fs::write(&path, serde_json::to_vec(&remote).unwrap()).unwrap();
        match try_lock(&path, "second").unwrap() {
            TryLock::Busy(Some(h)) => assert_eq!(h, remote),
            other => panic!("a lock held elsewhere must stay busy, got {other:?}"),
        }
        drop(guard);
    }

    #[test]
    fn a_record_left_behind_is_reported_as_a_take_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let stale = Holder {
            host: "h".into(),
            pid: 999_999,
            purpose: "train".into(),
            since: 1,
        };
        std::fs::write(&path, serde_json::to_vec(&stale).unwrap()).unwrap();
        let guard = lock(&path, "mine").unwrap();
        assert_eq!(guard.taken_over, Some(stale));
    }
}
