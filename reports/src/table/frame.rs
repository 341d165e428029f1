//! The in-memory table: ordered, named, typed columns, and the accessors stages and plots use.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::column::ColumnData;
use super::error::TableError;

/// An ordered list of named columns of equal length.
///
/// Columns are added with [`Table::push`] (or [`Table::with_column`]); lengths and names are
/// checked when the table is written, so that a stage can build it in any order. A table read
/// from a file remembers that file, and its errors name it.
#[derive(Debug, Clone, Default)]
pub struct Table {
    columns: Vec<(String, ColumnData)>,
    source: Option<PathBuf>,
}

impl PartialEq for Table {
    /// Two tables are equal when their columns are; where they came from does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.columns == other.columns
    }
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a column (builder style).
    pub fn push(&mut self, name: &str, data: ColumnData) -> &mut Self {
        self.columns.push((name.to_owned(), data));
        self
    }

    /// Appends a column, taking and returning the table by value.
    pub fn with_column(mut self, name: &str, data: ColumnData) -> Self {
        self.push(name, data);
        self
    }

    /// Appends a string column holding `value` in every row, as many rows as the table has now;
    /// push the data columns first.
    pub fn push_constant_str(&mut self, name: &str, value: &str) -> &mut Self {
        let rows = self.num_rows();
        self.push(name, ColumnData::Str(vec![value.to_owned(); rows]))
    }

    /// Appends a float column holding `value` in every row (see [`Table::push_constant_str`]).
    pub fn push_constant_f64(&mut self, name: &str, value: f64) -> &mut Self {
        let rows = self.num_rows();
        self.push(name, ColumnData::F64(vec![Some(value); rows]))
    }

    /// Appends an integer column holding `value` in every row (see [`Table::push_constant_str`]).
    pub fn push_constant_i64(&mut self, name: &str, value: i64) -> &mut Self {
        let rows = self.num_rows();
        self.push(name, ColumnData::I64(vec![value; rows]))
    }

    /// The number of rows: the length of the first column, 0 without columns.
    pub fn num_rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, data)| data.len())
    }

    /// The column called `name`, if there is one.
    pub fn column(&self, name: &str) -> Option<&ColumnData> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, data)| data)
    }

    /// The column names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// The columns, in order, with their names.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &ColumnData)> {
        self.columns
            .iter()
            .map(|(name, data)| (name.as_str(), data))
    }

    /// The file this table was read from, if it was.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The values of a float column; an integer column converts (exactly up to 2^53).
    pub fn f64s(&self, name: &str) -> Result<Vec<Option<f64>>, TableError> {
        match self.require(name)? {
            ColumnData::F64(values) => Ok(values.clone()),
            ColumnData::I64(values) => Ok(values.iter().map(|v| Some(*v as f64)).collect()),
            other => Err(self.wrong_type(name, "Float64 or Int64", other)),
        }
    }

    /// The values of an integer column.
    pub fn i64s(&self, name: &str) -> Result<Vec<i64>, TableError> {
        match self.require(name)? {
            ColumnData::I64(values) => Ok(values.clone()),
            other => Err(self.wrong_type(name, "Int64", other)),
        }
    }

    /// The values of a string column.
    pub fn strs(&self, name: &str) -> Result<Vec<String>, TableError> {
        match self.require(name)? {
            ColumnData::Str(values) => Ok(values.clone()),
            other => Err(self.wrong_type(name, "Utf8", other)),
        }
    }

    /// The values of a boolean column.
    pub fn bools(&self, name: &str) -> Result<Vec<bool>, TableError> {
        match self.require(name)? {
            ColumnData::Bool(values) => Ok(values.clone()),
            other => Err(self.wrong_type(name, "Boolean", other)),
        }
    }

    /// The rows where `column` equals `value`: the string itself for a string column, the
    /// decimal form for an integer column, `true`/`false` for a boolean column. Float columns
    /// cannot be filtered this way.
    pub fn filter_eq(&self, column: &str, value: &str) -> Result<Table, TableError> {
        self.validate_shape()?;
        let key = self.require(column)?;
        if let ColumnData::F64(_) = key {
            return Err(self.wrong_type(column, "Utf8, Int64 or Boolean", key));
        }
        let keep: Vec<bool> = (0..key.len())
            .map(|row| key.key_at(row).as_deref() == Some(value))
            .collect();
        let columns = self
            .columns
            .iter()
            .map(|(name, data)| (name.clone(), data.select(&keep)))
            .collect();
        Ok(Table {
            columns,
            source: self.source.clone(),
        })
    }

    /// Checks that names are non-empty and unique, and that all columns have the same length.
    pub fn validate_shape(&self) -> Result<(), TableError> {
        let mut seen = HashSet::new();
        for (index, (name, _)) in self.columns.iter().enumerate() {
            if name.is_empty() {
                return Err(TableError::EmptyColumnName {
                    path: self.source.clone(),
                    index,
                });
            }
            if !seen.insert(name.as_str()) {
                let path = self.source.clone();
                return Err(TableError::DuplicateColumn {
                    path,
                    column: name.clone(),
                });
            }
        }
        self.check_lengths()
    }

    /// Builds a table read from `source`; used by the reader.
    pub(crate) fn from_file(columns: Vec<(String, ColumnData)>, source: &Path) -> Self {
        Self {
            columns,
            source: Some(source.to_owned()),
        }
    }

    /// Returns the same table with errors naming `path` (the file being written).
    pub(crate) fn located(&self, path: &Path) -> Table {
        Table {
            columns: self.columns.clone(),
            source: Some(path.to_owned()),
        }
    }

    fn check_lengths(&self) -> Result<(), TableError> {
        let Some((first, data)) = self.columns.first() else {
            return Ok(());
        };
        let expected = data.len();
        match self.columns.iter().find(|(_, d)| d.len() != expected) {
            None => Ok(()),
            Some((column, d)) => Err(TableError::LengthMismatch {
                path: self.source.clone(),
                column: column.clone(),
                len: d.len(),
                first: first.clone(),
                expected,
            }),
        }
    }

    fn require(&self, name: &str) -> Result<&ColumnData, TableError> {
        self.column(name).ok_or_else(|| TableError::MissingColumn {
            path: self.source.clone(),
            column: name.to_owned(),
            available: self.names().into_iter().map(str::to_owned).collect(),
        })
    }

    fn wrong_type(&self, name: &str, expected: &'static str, found: &ColumnData) -> TableError {
        TableError::WrongType {
            path: self.source.clone(),
            column: name.to_owned(),
            expected,
            found: found.type_name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs() -> Table {
        let mut table = Table::new();
        table
            .push(
                "run",
                ColumnData::Str(vec!["a".into(), "b".into(), "a".into()]),
            )
            .push("epoch", ColumnData::I64(vec![1, 1, 2]))
            .push("loss", ColumnData::F64(vec![Some(0.5), None, Some(0.25)]));
        table
    }

    #[test]
    fn filter_eq_on_strings_keeps_matching_rows() -> Result<(), TableError> {
        let a = runs().filter_eq("run", "a")?;
        assert_eq!(a.num_rows(), 2);
        assert_eq!(a.i64s("epoch")?, vec![1, 2]);
        Ok(())
    }

    #[test]
    fn filter_eq_on_integers_compares_decimal_text() -> Result<(), TableError> {
        let first = runs().filter_eq("epoch", "1")?;
        assert_eq!(first.strs("run")?, vec!["a".to_owned(), "b".to_owned()]);
        Ok(())
    }

    #[test]
    fn filter_eq_on_floats_is_refused() {
        let err = runs().filter_eq("loss", "0.5");
        assert!(matches!(err, Err(TableError::WrongType { .. })));
    }

    #[test]
    fn integer_columns_convert_to_floats() -> Result<(), TableError> {
        assert_eq!(runs().f64s("epoch")?, vec![Some(1.0), Some(1.0), Some(2.0)]);
        Ok(())
    }

    #[test]
    fn wrong_type_names_column_and_types() {
        let err = runs().i64s("run").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("in-memory table: column `run` is Utf8, expected Int64")
        );
    }

    #[test]
    fn missing_column_lists_the_columns() {
        let err = runs()
            .strs("split")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("no column `split` (columns: run, epoch, loss)"),
            "{err}"
        );
    }

    #[test]
    fn constant_columns_match_the_row_count() -> Result<(), TableError> {
        let mut table = runs();
        table
            .push_constant_str("model", "deep")
            .push_constant_i64("width", 8);
        table.push_constant_f64("lr", 1e-3);
        assert_eq!(table.strs("model")?.len(), 3);
        assert_eq!(table.i64s("width")?, vec![8, 8, 8]);
        table.validate_shape()
    }

    #[test]
    fn shape_checks_name_the_column() {
        let mut table = runs();
        table.push("epoch", ColumnData::Bool(vec![true; 3]));
        assert!(matches!(
            table.validate_shape(),
            Err(TableError::DuplicateColumn { .. })
        ));
        let mut table = runs();
        table.push("", ColumnData::Bool(vec![true; 3]));
        assert!(matches!(
            table.validate_shape(),
            Err(TableError::EmptyColumnName { index: 3, .. })
        ));
    }
}
