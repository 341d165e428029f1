//! Turning tables of upstream stages into plot series: one series per upstream stage (and per
//! value of a grouping column), labelled by the stage's name or matrix values.

use pipeline_engine::stage::{StageError, UpstreamOutput};
use pipeline_reports::{ColumnData, Table, TableError};
use serde::{Deserialize, Serialize};

/// The order in which a line joins its points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// By increasing x (rows in table order where x ties): a curve y(x), whatever order a
    /// sweep's rows came in.
    #[default]
    X,
    /// As the table's rows come: a path (a trajectory through a plane).
    Table,
}

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
    labelled_points(table, x, y, None, Order::X).map(|(pts, _)| pts)
}

/// Points and, when asked for, one label per point.
pub(crate) type Labelled = (Vec<(f64, f64)>, Vec<String>);

/// The `(x, y)` points of two columns in `order`, skipping rows where either is missing, with
/// the text of column `label` in each kept row (no labels without `label`).
pub(crate) fn labelled_points(
    table: &Table,
    x: &str,
    y: &str,
    label: Option<&str>,
    order: Order,
) -> Result<Labelled, TableError> {
    let xs = table.f64s(x)?;
    let ys = table.f64s(y)?;
    let texts = match label {
        Some(column) => texts(table, column)?,
        None => vec![String::new(); xs.len()],
    };
    let mut rows: Vec<((f64, f64), String)> = xs
        .into_iter()
        .zip(ys)
        .zip(texts)
        .filter_map(|((a, b), text)| Some(((a?, b?), text)))
        .collect();
    if order == Order::X {
        rows.sort_by(|a, b| a.0.0.total_cmp(&b.0.0));
    }
    let (pts, texts): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    Ok(match label {
        Some(_) => (pts, texts),
        None => (pts, Vec::new()),
    })
}

/// A column's values as short text: numbers with 3 significant digits, missing ones empty.
fn texts(table: &Table, column: &str) -> Result<Vec<String>, TableError> {
    Ok(match table.column(column) {
        Some(ColumnData::Str(values)) => values.clone(),
        Some(ColumnData::I64(values)) => values.iter().map(i64::to_string).collect(),
        Some(ColumnData::Bool(values)) => values.iter().map(bool::to_string).collect(),
        _ => table
            .f64s(column)?
            .into_iter()
            .map(|v| v.map_or_else(String::new, significant))
            .collect(),
    })
}

/// `value` with 3 significant digits, in plain or scientific notation, whichever is shorter.
pub(crate) fn significant(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let scientific = format!("{value:.2e}");
    let exponent = value.abs().log10().floor() as i32;
    if (-3..4).contains(&exponent) {
        let decimals = (2 - exponent).max(0) as usize;
        format!("{value:.decimals$}")
    } else {
        scientific
    }
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
