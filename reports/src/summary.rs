//! The final metrics of a training table: train and test loss and accuracy at the last
//! evaluated epoch. The HTML report's summary table and `pipeline diff` show these.

use crate::table::{ColumnData, Table, TableError};

/// Loss and accuracy of both splits at a table's last evaluated epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FinalMetrics {
    /// The last epoch with an evaluation.
    pub epoch: i64,
    /// Loss on the training split.
    pub train_loss: Option<f64>,
    /// Loss on the test split.
    pub test_loss: Option<f64>,
    /// Accuracy on the training split (none for regression).
    pub train_accuracy: Option<f64>,
    /// Accuracy on the test split (none for regression).
    pub test_accuracy: Option<f64>,
}

impl FinalMetrics {
    /// The final metrics of a long-format table with `epoch`, `split`, `loss` and optionally
    /// `accuracy` columns; `None` when the table lacks one of the required columns or has no
    /// rows. Where a split has several rows at the last epoch (several steps), the last one
    /// counts.
    pub fn of(table: &Table) -> Result<Option<Self>, TableError> {
        let required = ["epoch", "split", "loss"];
        if required.iter().any(|c| table.column(c).is_none()) {
            return Ok(None);
        }
        let epochs = table.i64s("epoch")?;
        let Some(&last) = epochs.iter().max() else {
            return Ok(None);
        };
        let splits = table.strs("split")?;
        let losses = table.f64s("loss")?;
        let accuracies = match table.column("accuracy") {
            Some(ColumnData::F64(values)) => values.clone(),
            _ => vec![None; epochs.len()],
        };
        let mut out = Self {
            epoch: last,
            ..Self::default()
        };
        for row in (0..epochs.len()).filter(|&r| epochs[r] == last) {
            let (loss, accuracy) = (losses[row], accuracies.get(row).copied().flatten());
            match splits[row].as_str() {
                "train" => (out.train_loss, out.train_accuracy) = (loss, accuracy),
                "test" => (out.test_loss, out.test_accuracy) = (loss, accuracy),
                _ => {}
            }
        }
        Ok(Some(out))
    }

    /// The four values with their names, in the order reports show them.
    pub fn named(&self) -> [(&'static str, Option<f64>); 4] {
        [
            ("train loss", self.train_loss),
            ("test loss", self.test_loss),
            ("train accuracy", self.train_accuracy),
            ("test accuracy", self.test_accuracy),
        ]
    }
}

/// A number for people: four significant digits, scientific notation for very small or
/// large magnitudes.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        "0".to_owned()
    } else if !(1e-3..1e6).contains(&magnitude) {
        format!("{value:.3e}")
    } else {
        let digits = (3 - magnitude.log10().floor() as i32).max(0) as usize;
        format!("{value:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table::new()
            .with_column("epoch", ColumnData::I64(vec![0, 0, 5, 5]))
            .with_column(
                "split",
                ColumnData::Str(vec![
                    "train".into(),
                    "test".into(),
                    "train".into(),
                    "test".into(),
                ]),
            )
            .with_column(
                "loss",
                ColumnData::F64(vec![Some(1.0), Some(1.1), Some(0.2), Some(0.3)]),
            )
            .with_column(
                "accuracy",
                ColumnData::F64(vec![None, None, Some(0.9), Some(0.8)]),
            )
    }

    #[test]
    fn takes_both_splits_at_the_last_epoch() {
        let m = FinalMetrics::of(&table()).unwrap().unwrap();
        assert_eq!(m.epoch, 5);
        assert_eq!((m.train_loss, m.test_loss), (Some(0.2), Some(0.3)));
        assert_eq!((m.train_accuracy, m.test_accuracy), (Some(0.9), Some(0.8)));
    }

    #[test]
    fn a_table_without_epochs_has_no_final_metrics() {
        let t = Table::new().with_column("x", ColumnData::F64(vec![Some(1.0)]));
        assert_eq!(FinalMetrics::of(&t).unwrap(), None);
    }

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(number(0.012346), "0.01235");
        assert_eq!(number(12.346), "12.35");
        assert_eq!(number(1234.6), "1235");
        assert_eq!(number(0.00001234), "1.234e-5");
        assert_eq!(number(0.0), "0");
    }
}
