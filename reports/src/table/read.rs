//! Reading a Parquet file back into a [`Table`], and reading a file's key-value metadata.
//!
//! Besides the files [`Table::write_parquet`] writes, plain files of the same four kinds of
//! columns are read: narrower integers (Int8 to Int32, UInt8 to UInt64 when the values fit)
//! become Int64, Float32 becomes Float64, LargeUtf8 and Utf8View become strings. A NaN read
//! from a float column becomes a missing value, since polars and some pandas paths store
//! missing floats as NaN. Anything else (dates, lists, dictionaries, nulls in non-float
//! columns) is an error naming the file and the column. Only the compressions this build of
//! the parquet crate enables (Zstd, and uncompressed) can be read.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::column::ColumnData;
use super::error::TableError;
use super::frame::Table;

/// The metadata key under which the writer stores the Arrow schema; not shown to callers.
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

impl Table {
    /// Reads a Parquet file. Errors name the file, and the column where one is at fault.
    pub fn read_parquet(path: &Path) -> Result<Table, TableError> {
        let builder = open(path)?;
        let fields: Vec<(String, DataType)> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let reader = builder
            .build()
            .map_err(|source| parquet_error(path, source))?;
        let mut columns: Vec<(String, ColumnData)> = fields
            .iter()
            .map(|(name, ty)| empty_column(path, name, ty))
            .collect::<Result<_, _>>()?;
        let mut offset = 0;
        for batch in reader {
            let batch = batch.map_err(|source| TableError::Arrow {
                path: Some(path.to_owned()),
                source,
            })?;
            append_batch(path, &mut columns, &batch, offset)?;
            offset += batch.num_rows();
        }
        Ok(Table::from_file(columns, path))
    }
}

/// The key-value metadata of a Parquet file, in file order, without the Arrow schema the
/// writer adds. A key stored without a value reads as an empty string.
pub fn read_metadata(path: &Path) -> Result<Vec<(String, String)>, TableError> {
    let builder = open(path)?;
    let pairs = builder.metadata().file_metadata().key_value_metadata();
    Ok(pairs
        .into_iter()
        .flatten()
        .filter(|kv| kv.key != ARROW_SCHEMA_KEY)
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect())
}

/// The columns of a Parquet file as stored, and its row count, from the footer alone.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSchema {
    /// Column names and Arrow types (`Int64`, `Float64`, `Utf8`, `Boolean`...), in file order.
    pub columns: Vec<(String, String)>,
    /// Whether each column may hold nulls, in the same order.
    pub nullable: Vec<bool>,
    /// The number of rows.
    pub rows: u64,
}

/// Reads the schema and row count of a Parquet file without reading its data.
pub fn read_schema(path: &Path) -> Result<FileSchema, TableError> {
    let builder = open(path)?;
    let fields = builder.schema().fields();
    let rows = builder.metadata().file_metadata().num_rows();
    Ok(FileSchema {
        columns: fields
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect(),
        nullable: fields.iter().map(|f| f.is_nullable()).collect(),
        rows: u64::try_from(rows).unwrap_or(0),
    })
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, TableError> {
    let file = File::open(path).map_err(|source| TableError::Io {
        path: Some(path.to_owned()),
        source,
    })?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| parquet_error(path, source))
}

fn parquet_error(path: &Path, source: parquet::errors::ParquetError) -> TableError {
    TableError::Parquet {
        path: Some(path.to_owned()),
        source,
    }
}

/// An empty column of the table type that holds the Arrow type `ty`.
fn empty_column(
    path: &Path,
    name: &str,
    ty: &DataType,
) -> Result<(String, ColumnData), TableError> {
    use DataType as D;
    let data = match ty {
        D::Int8 | D::Int16 | D::Int32 | D::Int64 => ColumnData::I64(Vec::new()),
        D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => ColumnData::I64(Vec::new()),
        D::Float32 | D::Float64 => ColumnData::F64(Vec::new()),
        D::Utf8 | D::LargeUtf8 | D::Utf8View => ColumnData::Str(Vec::new()),
        D::Boolean => ColumnData::Bool(Vec::new()),
        other => return Err(unsupported(path, name, other)),
    };
    Ok((name.to_owned(), data))
}

fn unsupported(path: &Path, column: &str, ty: &DataType) -> TableError {
    TableError::UnsupportedType {
        path: Some(path.to_owned()),
        column: column.to_owned(),
        data_type: ty.to_string(),
    }
}

/// Appends the rows of `batch`, whose first row is row `offset` of the file, to `columns`.
fn append_batch(
    path: &Path,
    columns: &mut [(String, ColumnData)],
    batch: &RecordBatch,
    offset: usize,
) -> Result<(), TableError> {
    for ((name, data), array) in columns.iter_mut().zip(batch.columns()) {
        let at = Place {
            path,
            column: name,
            offset,
        };
        match data {
            ColumnData::I64(values) => append_integers(&at, values, array.as_ref())?,
            ColumnData::F64(values) => append_floats(&at, values, array.as_ref())?,
            ColumnData::Str(values) => append_strings(&at, values, array.as_ref())?,
            ColumnData::Bool(values) => append_bools(&at, values, array.as_ref())?,
        }
    }
    Ok(())
}

/// Where in the file a batch's column is, for errors.
struct Place<'a> {
    path: &'a Path,
    column: &'a str,
    offset: usize,
}

impl Place<'_> {
    fn null_at(&self, row: usize) -> TableError {
        TableError::UnexpectedNull {
            path: Some(self.path.to_owned()),
            column: self.column.to_owned(),
            row: self.offset + row,
        }
    }

    fn unsupported(&self, ty: &DataType) -> TableError {
        unsupported(self.path, self.column, ty)
    }

    /// Fails at the first null of `array`.
    fn no_nulls(&self, array: &dyn Array) -> Result<(), TableError> {
        match (0..array.len()).find(|&i| array.is_null(i)) {
            Some(row) => Err(self.null_at(row)),
            None => Ok(()),
        }
    }
}

fn append_integers(at: &Place, out: &mut Vec<i64>, array: &dyn Array) -> Result<(), TableError> {
    at.no_nulls(array)?;
    match array.data_type() {
        DataType::Int8 => extend_ints(at, out, array.as_primitive::<Int8Type>()),
        DataType::Int16 => extend_ints(at, out, array.as_primitive::<Int16Type>()),
        DataType::Int32 => extend_ints(at, out, array.as_primitive::<Int32Type>()),
        DataType::Int64 => extend_ints(at, out, array.as_primitive::<Int64Type>()),
        DataType::UInt8 => extend_ints(at, out, array.as_primitive::<UInt8Type>()),
        DataType::UInt16 => extend_ints(at, out, array.as_primitive::<UInt16Type>()),
        DataType::UInt32 => extend_ints(at, out, array.as_primitive::<UInt32Type>()),
        DataType::UInt64 => extend_ints(at, out, array.as_primitive::<UInt64Type>()),
        other => Err(at.unsupported(other)),
    }
}

fn extend_ints<T>(
    at: &Place,
    out: &mut Vec<i64>,
    array: &PrimitiveArray<T>,
) -> Result<(), TableError>
where
    T: ArrowPrimitiveType,
    T::Native: TryInto<i64>,
{
    for value in array.values().iter() {
        let converted = (*value)
            .try_into()
            .map_err(|_| at.unsupported(&DataType::UInt64))?;
        out.push(converted);
    }
    Ok(())
}

fn append_floats(
    at: &Place,
    out: &mut Vec<Option<f64>>,
    array: &dyn Array,
) -> Result<(), TableError> {
    let missing_nan = |v: Option<f64>| v.filter(|x| !x.is_nan());
    match array.data_type() {
        DataType::Float64 => {
            out.extend(array.as_primitive::<Float64Type>().iter().map(missing_nan));
        }
        DataType::Float32 => {
            let values = array.as_primitive::<Float32Type>().iter();
            out.extend(values.map(|v| missing_nan(v.map(f64::from))));
        }
        other => return Err(at.unsupported(other)),
    }
    Ok(())
}

fn append_strings(at: &Place, out: &mut Vec<String>, array: &dyn Array) -> Result<(), TableError> {
    at.no_nulls(array)?;
    let owned = |s: Option<&str>| s.unwrap_or_default().to_owned();
    match array.data_type() {
        DataType::Utf8 => out.extend(array.as_string::<i32>().iter().map(owned)),
        DataType::LargeUtf8 => out.extend(array.as_string::<i64>().iter().map(owned)),
        DataType::Utf8View => out.extend(array.as_string_view().iter().map(owned)),
        other => return Err(at.unsupported(other)),
    }
    Ok(())
}

fn append_bools(at: &Place, out: &mut Vec<bool>, array: &dyn Array) -> Result<(), TableError> {
    at.no_nulls(array)?;
    match array.as_boolean_opt() {
        Some(values) => out.extend(values.values().iter()),
        None => return Err(at.unsupported(array.data_type())),
    }
    Ok(())
}
