//! What can go wrong when building, writing or reading a table.
//!
//! Every variant carries the table's file as a field: the file written or read, or `None` for
//! a table that was built in memory and not read from a file.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error from the table module. Its `path` is the Parquet file concerned (`None` for a table
/// built in memory).
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A column asked for by name does not exist.
    #[error("{}: no column `{column}` (columns: {})", Origin(path), available.join(", "))]
    MissingColumn {
        /// The table's file, if any.
        path: Option<PathBuf>,
        /// The column asked for.
        column: String,
        /// The columns the table has.
        available: Vec<String>,
    },
    /// A column has another type than the one asked for.
    #[error("{}: column `{column}` is {found}, expected {expected}", Origin(path))]
    WrongType {
        /// The table's file, if any.
        path: Option<PathBuf>,
        /// The column.
        column: String,
        /// The type that was asked for.
        expected: &'static str,
        /// The type the column has.
        found: &'static str,
    },
    /// A column's length differs from the first column's.
    #[error(
        "{}: column `{column}` has {len} rows but `{first}` has {expected}",
        Origin(path)
    )]
    LengthMismatch {
        /// The table's file, if any.
        path: Option<PathBuf>,
        /// The column with the odd length.
        column: String,
        /// Its length.
        len: usize,
        /// The first column's name.
        first: String,
        /// The first column's length.
        expected: usize,
    },
    /// Two columns share a name.
    #[error("{}: column name `{column}` is used twice", Origin(path))]
    DuplicateColumn {
        /// The table's file, if any.
        path: Option<PathBuf>,
        /// The repeated name.
        column: String,
    },
    /// A column has an empty name.
    #[error("{}: column {index} has an empty name", Origin(path))]
    EmptyColumnName {
        /// The table's file, if any.
        path: Option<PathBuf>,
        /// The position of the column (from 0).
        index: usize,
    },
    /// A float column holds NaN or an infinity, which the files never contain (a missing value
    /// is `None`).
    #[error(
        "{}: column `{column}` holds {value} at row {row}; use None for a missing value",
        Origin(path)
    )]
    NonFinite {
        /// The table's file, if any.
        path: Option<PathBuf>,
        /// The column.
        column: String,
        /// The first row (from 0) with a non-finite value.
        row: usize,
        /// The value found.
        value: f64,
    },
    /// A column read from a file holds a null where the table type has no missing values.
    #[error(
        "{}: column `{column}` has a null at row {row}; only Float64 columns may have nulls",
        Origin(path)
    )]
    UnexpectedNull {
        /// The file.
        path: Option<PathBuf>,
        /// The column.
        column: String,
        /// The first row (from 0) with a null.
        row: usize,
    },
    /// A column read from a file has a type tables do not hold.
    #[error(
        "{}: column `{column}` has type {data_type}; tables hold only Int64, Float64, Utf8 \
         and Boolean columns",
        Origin(path)
    )]
    UnsupportedType {
        /// The file.
        path: Option<PathBuf>,
        /// The column.
        column: String,
        /// The Arrow type of the column in the file.
        data_type: String,
    },
    /// A metadata key that the Parquet writer reserves for itself.
    #[error(
        "{}: metadata key `{key}` is reserved by the Parquet writer",
        Origin(path)
    )]
    ReservedMetadataKey {
        /// The file.
        path: Option<PathBuf>,
        /// The key.
        key: String,
    },
    /// The file could not be created, opened or read.
    #[error("{}: {source}", Origin(path))]
    Io {
        /// The file.
        path: Option<PathBuf>,
        /// The cause.
        source: std::io::Error,
    },
    /// The Parquet library refused to write or read the file.
    #[error("{}: {source}", Origin(path))]
    Parquet {
        /// The file.
        path: Option<PathBuf>,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
    /// Arrow refused to assemble the columns into a record batch.
    #[error("{}: {source}", Origin(path))]
    Arrow {
        /// The file.
        path: Option<PathBuf>,
        /// The cause.
        source: arrow_schema::ArrowError,
    },
}

impl TableError {
    /// The table's file, or `None` for a table built in memory.
    pub fn path(&self) -> Option<&Path> {
        let path = match self {
            Self::MissingColumn { path, .. }
            | Self::WrongType { path, .. }
            | Self::LengthMismatch { path, .. }
            | Self::DuplicateColumn { path, .. }
            | Self::EmptyColumnName { path, .. }
            | Self::NonFinite { path, .. }
            | Self::UnexpectedNull { path, .. }
            | Self::UnsupportedType { path, .. }
            | Self::ReservedMetadataKey { path, .. }
            | Self::Io { path, .. }
            | Self::Parquet { path, .. }
            | Self::Arrow { path, .. } => path,
        };
        path.as_deref()
    }
}

/// Shows where a table came from: its file, or that it was built in memory.
struct Origin<'a>(&'a Option<PathBuf>);

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, "table {}", path.display()),
            None => f.write_str("in-memory table"),
        }
    }
}
