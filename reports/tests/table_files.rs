//! Parquet round trips, determinism and the errors a stage or user meets.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Date32Array, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use pipeline_reports::{ColumnData, Table, TableError, read_metadata};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn metrics() -> Table {
    let mut table = Table::new();
    table
        .push(
            "run",
            ColumnData::Str(vec!["deep".into(), "deep".into(), "shallow ü".into()]),
        )
        .push("epoch", ColumnData::I64(vec![0, 1, i64::MAX]))
        .push(
            "loss",
            ColumnData::F64(vec![Some(0.5), None, Some(-1e-300)]),
        )
        .push("converged", ColumnData::Bool(vec![false, true, false]))
        .push_constant_f64("lr", 1e-3);
    table
}

fn metadata() -> Vec<(String, String)> {
    vec![
        ("stage_key".to_owned(), "abc123".to_owned()),
        ("params".to_owned(), r#"{"lr":0.001}"#.to_owned()),
        ("a_last_sorted_first".to_owned(), String::new()),
    ]
}

#[test]
fn every_column_type_round_trips_with_nulls() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("metrics.parquet");
    let table = metrics();
    table.write_parquet(&path, &metadata())?;
    let back = Table::read_parquet(&path)?;
    assert_eq!(back, table);
    assert_eq!(
        back.names(),
        vec!["run", "epoch", "loss", "converged", "lr"]
    );
    assert_eq!(back.source(), Some(path.as_path()));
    Ok(())
}

#[test]
fn writing_twice_gives_identical_bytes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    metrics().write_parquet(&a, &metadata())?;
    metrics().write_parquet(&b, &metadata())?;
    assert_eq!(std::fs::read(&a)?, std::fs::read(&b)?);
    Ok(())
}

#[test]
fn file_does_not_name_the_library_version() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.parquet");
    metrics().write_parquet(&path, &[])?;
    let bytes = std::fs::read(&path)?;
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("parquet-rs"), "created_by should be fixed");
    assert!(text.contains("pipeline"));
    Ok(())
}

#[test]
fn metadata_round_trips_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.parquet");
    metrics().write_parquet(&path, &metadata())?;
    assert_eq!(read_metadata(&path)?, metadata());
    Ok(())
}

#[test]
fn nan_is_rejected_naming_column_and_row() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.parquet");
    let mut table = metrics();
    table.push(
        "accuracy",
        ColumnData::F64(vec![Some(0.1), Some(f64::NAN), Some(f64::INFINITY)]),
    );
    let err = table
        .write_parquet(&path, &[])
        .err()
        .ok_or("NaN accepted")?;
    assert!(matches!(&err, TableError::NonFinite { column, row: 1, .. } if column == "accuracy"));
    let message = err.to_string();
    assert!(
        message.contains("t.parquet") && message.contains("`accuracy`"),
        "{message}"
    );
    assert!(!path.exists(), "no file is written on error");
    Ok(())
}

#[test]
fn length_mismatch_is_rejected_naming_column() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.parquet");
    let mut table = metrics();
    table.push("step", ColumnData::I64(vec![1, 2]));
    let err = table
        .write_parquet(&path, &[])
        .err()
        .ok_or("mismatch accepted")?;
    assert_eq!(err.path(), Some(path.as_path()));
    assert!(
        matches!(&err, TableError::LengthMismatch { column, len: 2, expected: 3, .. } if column == "step"),
        "{err}"
    );
    Ok(())
}

#[test]
fn reserved_metadata_key_is_rejected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.parquet");
    let pairs = vec![("ARROW:schema".to_owned(), "x".to_owned())];
    let err = metrics().write_parquet(&path, &pairs);
    assert!(matches!(err, Err(TableError::ReservedMetadataKey { .. })));
    Ok(())
}

fn write_plain(path: &Path, columns: Vec<(&str, ArrayRef)>) -> TestResult {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
    let mut writer = ArrowWriter::try_new(File::create(path)?, batch.schema(), None)?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}

#[test]
fn unsupported_column_type_names_file_and_column() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dates.parquet");
    let dates: ArrayRef = Arc::new(Date32Array::from(vec![1, 2]));
    write_plain(&path, vec![("day", dates)])?;
    let err = Table::read_parquet(&path)
        .err()
        .ok_or("date column accepted")?;
    let message = err.to_string();
    assert!(
        message.contains("dates.parquet") && message.contains("`day`"),
        "{message}"
    );
    assert!(message.contains("Date32"), "{message}");
    Ok(())
}

#[test]
fn plain_narrow_integers_widen_and_nulls_in_strings_are_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("plain.parquet");
    let ints: ArrayRef = Arc::new(Int32Array::from(vec![3, -4]));
    write_plain(&path, vec![("width", ints)])?;
    assert_eq!(Table::read_parquet(&path)?.i64s("width")?, vec![3, -4]);

    let names: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
    write_plain(&path, vec![("run", names)])?;
    let err = Table::read_parquet(&path).err().ok_or("null accepted")?;
    assert!(
        matches!(&err, TableError::UnexpectedNull { row: 1, .. }),
        "{err}"
    );
    Ok(())
}

#[test]
fn not_a_parquet_file_names_the_path() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("notes.parquet");
    std::fs::write(&path, "not parquet at all")?;
    let err = Table::read_parquet(&path).err().ok_or("garbage accepted")?;
    assert_eq!(err.path(), Some(path.as_path()));
    assert!(err.to_string().contains("notes.parquet"));
    Ok(())
}

#[test]
fn errors_of_a_read_table_name_its_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m.parquet");
    metrics().write_parquet(&path, &[])?;
    let err = Table::read_parquet(&path)?
        .i64s("loss")
        .err()
        .ok_or("wrong type accepted")?;
    assert!(err.to_string().contains("m.parquet"), "{err}");
    let schema_type = DataType::Float64.to_string();
    assert!(err.to_string().contains(&schema_type), "{err}");
    Ok(())
}

#[test]
fn large_table_is_one_row_group() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big.parquet");
    let n = 200_000;
    let mut table = Table::new();
    table.push("step", ColumnData::I64((0..n).collect()));
    table.push(
        "loss",
        ColumnData::F64((0..n).map(|i| Some(1.0 / (i as f64 + 1.0))).collect()),
    );
    table.write_parquet(&path, &[])?;
    let reader = parquet::file::reader::SerializedFileReader::new(File::open(&path)?)?;
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().num_row_groups(), 1);
    assert_eq!(Table::read_parquet(&path)?, table);
    Ok(())
}
