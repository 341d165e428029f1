//! The typed data of one table column.

/// The values of one column. Only `F64` columns may hold missing values (`None`, written as a
/// Parquet null); a missing value is never stored as NaN.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// 64-bit integers (epochs, steps, widths, seeds).
    I64(Vec<i64>),
    /// 64-bit floats, `None` where the value is missing.
    F64(Vec<Option<f64>>),
    /// UTF-8 strings (run names, splits, model names).
    Str(Vec<String>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl ColumnData {
    /// The number of values in the column.
    pub fn len(&self) -> usize {
        match self {
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::Str(v) => v.len(),
            Self::Bool(v) => v.len(),
        }
    }

    /// Whether the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name of the column's type as the Parquet file shows it, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::I64(_) => "Int64",
            Self::F64(_) => "Float64",
            Self::Str(_) => "Utf8",
            Self::Bool(_) => "Boolean",
        }
    }

    /// The rows of the column where `keep` is true; `keep` has one entry per row.
    pub(crate) fn select(&self, keep: &[bool]) -> Self {
        fn pick<T: Clone>(values: &[T], keep: &[bool]) -> Vec<T> {
            values
                .iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| v.clone())
                .collect()
        }
        match self {
            Self::I64(v) => Self::I64(pick(v, keep)),
            Self::F64(v) => Self::F64(pick(v, keep)),
            Self::Str(v) => Self::Str(pick(v, keep)),
            Self::Bool(v) => Self::Bool(pick(v, keep)),
        }
    }

    /// The value in `row` as text, for comparing with a filter value; `None` for floats, whose
    /// text form is not a sound key.
    pub(crate) fn key_at(&self, row: usize) -> Option<String> {
        match self {
            Self::I64(v) => v.get(row).map(i64::to_string),
            Self::Str(v) => v.get(row).cloned(),
            Self::Bool(v) => v.get(row).map(bool::to_string),
            Self::F64(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_keeps_marked_rows_in_order() {
        let column = ColumnData::Str(vec!["a".into(), "b".into(), "c".into()]);
        let kept = column.select(&[true, false, true]);
        assert_eq!(kept, ColumnData::Str(vec!["a".into(), "c".into()]));
    }

    #[test]
    fn key_at_formats_integers_and_refuses_floats() {
        assert_eq!(ColumnData::I64(vec![7]).key_at(0).as_deref(), Some("7"));
        assert_eq!(ColumnData::F64(vec![Some(1.0)]).key_at(0), None);
    }
}
