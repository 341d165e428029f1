//! Errors of the store, each carrying the path it concerns.

use std::io;
use std::path::PathBuf;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done (`write`, `rename`, `read`).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A stage left something other than regular files and folders in its output folder.
    #[error("stage output {} is not a regular file or folder", path.display())]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },
    /// An object's bytes do not match its name.
    #[error("stored object {} is damaged (its content hashes to {found})", path.display())]
    Damaged {
        /// The object file.
        path: PathBuf,
        /// What its bytes hash to now.
        found: String,
    },
    /// An object a manifest names is not in the store.
    #[error("stored object {} is missing", path.display())]
    Missing {
        /// Where it should be.
        path: PathBuf,
    },
    /// A manifest could not be read as one.
    #[error("manifest {} is unreadable: {message}", path.display())]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl StoreError {
    /// Wraps an I/O error with the action and path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Whether the error means the disk is full or the store is read-only.
    pub fn is_unwritable(&self) -> bool {
        match self {
            Self::Io { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::ENOSPC | libc::EROFS | libc::EACCES | libc::EPERM | libc::EDQUOT)
            ),
            _ => false,
        }
    }
}

/// Adds the action and path to an I/O result.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::io(action, path, e))
    }
}
