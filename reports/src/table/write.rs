//! Writing a table to a Parquet file, byte for byte the same every time.
//!
//! Determinism matters because the cache compares output bytes to decide whether downstream
//! stages must run again. The writer therefore pins everything that could vary between runs or
//! library upgrades that it can: a fixed `created_by`, Parquet format 1.0 pages, Zstd level 3,
//! chunk-level statistics only (computed from the data alone), and one row group for tables up
//! to [`ROW_GROUP_ROWS`] rows. The file is written next to its destination and renamed into
//! place, so a failed write leaves no partial file behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};

use super::column::ColumnData;
use super::error::TableError;
use super::frame::Table;

/// The largest row group; tables up to this many rows are one row group.
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// The `created_by` string of every file, fixed so that a library upgrade does not change it.
const CREATED_BY: &str = "pipeline";

/// The metadata key under which the writer stores the Arrow schema.
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

impl Table {
    /// Writes the table to `path` as Parquet, with `metadata` as the file's key-value metadata
    /// in the order given. Fails, naming the column, if columns differ in length, names repeat
    /// or are empty, or a float column holds NaN or an infinity.
    pub fn write_parquet(
        &self,
        path: &Path,
        metadata: &[(String, String)],
    ) -> Result<(), TableError> {
        let located = self.located(path);
        located.validate_shape()?;
        located.check_finite()?;
        check_metadata_keys(path, metadata)?;
        let batch = located.record_batch()?;
        let tmp = temporary_path(path);
        let written = write_batch(&tmp, &batch, metadata);
        let renamed = written
            .and_then(|()| std::fs::rename(&tmp, path).map_err(|source| io_error(path, source)));
        if renamed.is_err() {
            // Best effort: the write already failed, and a stray temporary file is harmless.
            let _ = std::fs::remove_file(&tmp);
        }
        renamed
    }

    /// Fails on the first NaN or infinity in a float column.
    fn check_finite(&self) -> Result<(), TableError> {
        for (name, data) in self.columns() {
            let ColumnData::F64(values) = data else {
                continue;
            };
            let bad = values.iter().enumerate().find_map(|(row, v)| match v {
                Some(x) if !x.is_finite() => Some((row, *x)),
                _ => None,
            });
            if let Some((row, value)) = bad {
                let path = self.source().map(Path::to_owned);
                return Err(TableError::NonFinite {
                    path,
                    column: name.to_owned(),
                    row,
                    value,
                });
            }
        }
        Ok(())
    }

    /// The table as one Arrow record batch.
    fn record_batch(&self) -> Result<RecordBatch, TableError> {
        let fields: Vec<Field> = self
            .columns()
            .map(|(name, data)| Field::new(name, arrow_type(data), nullable(data)))
            .collect();
        let arrays: Vec<ArrayRef> = self.columns().map(|(_, data)| to_array(data)).collect();
        let schema = Arc::new(Schema::new(fields));
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(self.num_rows()));
        RecordBatch::try_new_with_options(schema, arrays, &options).map_err(|source| {
            TableError::Arrow {
                path: self.source().map(Path::to_owned),
                source,
            }
        })
    }
}

fn arrow_type(data: &ColumnData) -> DataType {
    match data {
        ColumnData::I64(_) => DataType::Int64,
        ColumnData::F64(_) => DataType::Float64,
        ColumnData::Str(_) => DataType::Utf8,
        ColumnData::Bool(_) => DataType::Boolean,
    }
}

fn nullable(data: &ColumnData) -> bool {
    matches!(data, ColumnData::F64(_))
}

fn to_array(data: &ColumnData) -> ArrayRef {
    match data {
        ColumnData::I64(v) => Arc::new(Int64Array::from(v.clone())),
        ColumnData::F64(v) => Arc::new(Float64Array::from(v.clone())),
        ColumnData::Str(v) => Arc::new(StringArray::from_iter_values(v)),
        ColumnData::Bool(v) => Arc::new(BooleanArray::from(v.clone())),
    }
}

fn check_metadata_keys(path: &Path, metadata: &[(String, String)]) -> Result<(), TableError> {
    match metadata.iter().find(|(key, _)| key == ARROW_SCHEMA_KEY) {
        Some((key, _)) => Err(TableError::ReservedMetadataKey {
            path: Some(path.to_owned()),
            key: key.clone(),
        }),
        None => Ok(()),
    }
}

/// The writer settings that make the bytes depend on the data and metadata only.
fn writer_properties(metadata: &[(String, String)]) -> WriterProperties {
    let pairs = metadata
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    let zstd = ZstdLevel::try_new(3).unwrap_or_default();
    WriterProperties::builder()
        .set_created_by(CREATED_BY.to_owned())
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(zstd))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(pairs))
        .build()
}

fn write_batch(
    path: &Path,
    batch: &RecordBatch,
    metadata: &[(String, String)],
) -> Result<(), TableError> {
    let parquet_error = |source| TableError::Parquet {
        path: Some(path.to_owned()),
        source,
    };
    let file = File::create(path).map_err(|source| io_error(path, source))?;
    let options = ArrowWriterOptions::new().with_properties(writer_properties(metadata));
    let mut writer =
        ArrowWriter::try_new_with_options(BufWriter::new(file), batch.schema(), options)
            .map_err(parquet_error)?;
    writer.write(batch).map_err(parquet_error)?;
    let mut out = writer.into_inner().map_err(parquet_error)?;
    out.flush().map_err(|source| io_error(path, source))?;
    let file = out
        .into_inner()
        .map_err(|e| io_error(path, e.into_error()))?;
    file.sync_all().map_err(|source| io_error(path, source))
}

/// A sibling of `path` to write into before renaming.
fn temporary_path(path: &Path) -> std::path::PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    path.with_file_name(name)
}

fn io_error(path: &Path, source: std::io::Error) -> TableError {
    TableError::Io {
        path: Some(path.to_owned()),
        source,
    }
}
