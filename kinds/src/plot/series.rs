//! Turning tables of upstream stages into plot series: one series per upstream stage (and per
//! value of a grouping column), labelled by the stage's name or matrix values.

use pipeline_engine::stage::{StageError, UpstreamOutput};
use pipeline_reports::{Table, TableError};

/// Reads `table` from an upstream output, as a stage error that names the stage.
pub(crate) fn read_table(up: &UpstreamOutput, table: &str) -> Result<Table, StageError> {
    let path = up.file(table);
    if !path.exists() {
        return Err(StageError::input(format!(
            "input stage {} has no table {table}",
            up.stage
        )));
    }
    Table::read_parquet(&path).map_err(|e| table_error(up, &e))
}

/// A table error as a stage error naming the upstream stage.
pub(crate) fn table_error(up: &UpstreamOutput, e: &TableError) -> StageError {
    StageError::input(format!("cannot use the table of input stage {}", up.stage)).caused_by(e)
}

/// The `(x, y)` points of two columns in increasing x (rows in table order where x ties),
/// skipping rows where either is missing: a line then joins neighbours along x whatever order
/// a sweep's rows came in.
pub(crate) fn points(table: &Table, x: &str, y: &str) -> Result<Vec<(f64, f64)>, TableError> {
    let xs = table.f64s(x)?;
    let ys = table.f64s(y)?;
    let mut pts: Vec<(f64, f64)> = xs
        .into_iter()
        .zip(ys)
        .filter_map(|(a, b)| Some((a?, b?)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(pts)
}

/// The distinct values of a column, in order of first appearance.
pub(crate) fn distinct(table: &Table, column: &str) -> Result<Vec<String>, TableError> {
    let mut seen = Vec::new();
    for value in table.strs(column)? {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    Ok(seen)
}
