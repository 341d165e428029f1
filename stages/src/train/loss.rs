//! Training losses: mean squared error for regression, cross-entropy for classification.
//!
//! The pipeline may leave the choice to the data set (`loss: auto`): regression data sets get
//! MSE, classification data sets cross-entropy. A loss that does not fit the data (MSE on
//! class labels, cross-entropy on real targets) is an input error before training starts.

use pipeline_engine::stage::StageError;
use pipeline_kinds::train::LossSpec;
use tch::{Reduction, Tensor};

use crate::data::dataset::Task;

/// A resolved loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loss {
    /// Mean squared error between outputs `[N, 1]` and targets `[N, 1]`.
    Mse,
    /// Cross-entropy between logits `[N, C]` and labels `[N]`.
    CrossEntropy,
}

impl Loss {
    /// The loss `spec` means for a data set with `task`.
    pub(crate) fn resolve(spec: LossSpec, task: Task) -> Result<Self, StageError> {
        match (spec, task) {
            (LossSpec::Auto | LossSpec::Mse, Task::Regression) => Ok(Loss::Mse),
            (LossSpec::Auto | LossSpec::CrossEntropy, Task::Classification) => {
                Ok(Loss::CrossEntropy)
            }
            (LossSpec::Mse, Task::Classification) => Err(StageError::input(
                "`loss: mse` needs a regression data set, but the data set is a classification \
                 one; use `cross_entropy` (or `auto`)",
            )),
            (LossSpec::CrossEntropy, Task::Regression) => Err(StageError::input(
                "`loss: cross_entropy` needs a classification data set, but the data set is a \
                 regression one; use `mse` (or `auto`)",
            )),
        }
    }

    /// The loss averaged over the batch.
    pub(crate) fn mean(self, output: &Tensor, target: &Tensor) -> Result<Tensor, tch::TchError> {
        self.reduce(output, target, Reduction::Mean)
    }

    /// The loss summed over the batch (for exact averages over many batches).
    pub(crate) fn sum(self, output: &Tensor, target: &Tensor) -> Result<Tensor, tch::TchError> {
        self.reduce(output, target, Reduction::Sum)
    }

    /// The loss of every example, `[N]`: summed over a regression model's outputs, as
    /// [`Loss::sum`] sums them.
    pub(crate) fn each(self, output: &Tensor, target: &Tensor) -> Result<Tensor, tch::TchError> {
        let per_value = self.reduce(output, target, Reduction::None)?;
        match self {
            Loss::Mse => per_value
                .f_flatten(1, -1)?
                .f_sum_dim_intlist(1, false, None),
            Loss::CrossEntropy => Ok(per_value),
        }
    }

    fn reduce(
        self,
        output: &Tensor,
        target: &Tensor,
        r: Reduction,
    ) -> Result<Tensor, tch::TchError> {
        match self {
            Loss::Mse => output.f_mse_loss(target, r),
            Loss::CrossEntropy => output.f_cross_entropy_loss::<Tensor>(target, None, r, -100, 0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn auto_follows_the_task_and_misfits_are_refused() {
        assert_eq!(
            Loss::resolve(LossSpec::Auto, Task::Regression).ok(),
            Some(Loss::Mse)
        );
        let ce = Loss::resolve(LossSpec::Auto, Task::Classification).ok();
        assert_eq!(ce, Some(Loss::CrossEntropy));
        assert!(Loss::resolve(LossSpec::Mse, Task::Classification).is_err());
        assert!(Loss::resolve(LossSpec::CrossEntropy, Task::Regression).is_err());
    }

    #[test]
    fn values_match_the_definitions() -> Result<(), Box<dyn std::error::Error>> {
        let out = Tensor::from_slice(&[1.0f32, 3.0]).view([2, 1]);
        let target = Tensor::from_slice(&[0.0f32, 1.0]).view([2, 1]);
        assert_eq!(f64::try_from(Loss::Mse.mean(&out, &target)?)?, 2.5);
        assert_eq!(f64::try_from(Loss::Mse.sum(&out, &target)?)?, 5.0);
        let logits = Tensor::from_slice(&[0.0f32, 0.0]).view([1, 2]);
        let label = Tensor::from_slice(&[1i64]);
        let ce = f64::try_from(
            Loss::CrossEntropy
                .mean(&logits, &label)?
                .to_kind(Kind::Double),
        )?;
        assert!((ce - 2f64.ln()).abs() < 1e-6);
        Ok(())
    }
}
