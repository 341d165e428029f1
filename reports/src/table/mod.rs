//! Long-format result tables and their Parquet files.
//!
//! A stage builds a [`Table`] column by column (one row per run x epoch x split, say, with the
//! varied parameters as constant columns) and writes it with [`Table::write_parquet`]. The files
//! are meant to be opened in pandas, polars or DuckDB with no options, so only four plain
//! column types exist (Int64, nullable Float64, Utf8, Boolean), and they are written
//! deterministically: the same table gives the same bytes, which lets the cache stop a rerun
//! from invalidating downstream stages when nothing changed.

mod column;
mod error;
mod frame;
mod read;
mod write;

pub use column::ColumnData;
pub use error::TableError;
pub use frame::Table;
pub use read::{FileSchema, read_metadata, read_schema};
