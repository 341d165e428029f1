//! The per-step log of `train` with `log_steps`: each optimizer step's mini-batch loss and the
//! norm of its gradient, for the course's "gradient norm during training" figure.
//!
//! The gradient norm is the square root of the sum of squares over every parameter tensor,
//! which for this crate's models is simply the 2-norm of the flat gradient vector the training
//! loop has already assembled for the optimizer, taken before the update (and before weight
//! decay is added to it). Taking it costs one reduction per step and no extra backward pass.
//! The loop writes each norm into a device-side buffer, as it does the step's loss, and both
//! buffers are read once per epoch, so logging adds no host synchronisation per step. A norm
//! that is not finite fails the stage naming the step, before anything reaches a table.

use pipeline_engine::stage::StageError;
use pipeline_reports::table::{ColumnData, Table};
use tch::{Device, Kind, Tensor};

use crate::error::TchContext;

/// The steps table of a training run.
pub(crate) const STEPS_FILE: &str = "steps.parquet";

/// One optimizer step.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StepRow {
    step: u64,
    epoch: usize,
    loss: f64,
    grad_norm: f64,
}

/// The rows logged so far.
#[derive(Debug, Default)]
pub(crate) struct StepLog {
    rows: Vec<StepRow>,
}

impl StepLog {
    /// The rows so far (saved with a resume snapshot).
    pub(crate) fn rows(&self) -> &[StepRow] {
        &self.rows
    }

    /// Replaces the rows (restored from a resume snapshot).
    pub(crate) fn restore(&mut self, rows: Vec<StepRow>) {
        self.rows = rows;
    }
}

/// A device buffer for one epoch's gradient norms, one `f32` per step.
pub(crate) fn norm_buffer(batches: i64, device: Device) -> Result<Tensor, StageError> {
    Tensor::f_zeros([batches], (Kind::Float, device)).ctx("allocating the gradient-norm buffer")
}

/// Writes the 2-norm of the flat gradient `grad` into `norms[slot]`, on the device.
pub(crate) fn record_norm(norms: &Tensor, slot: i64, grad: &Tensor) -> Result<(), StageError> {
    let norm = grad.f_norm().ctx("taking the gradient norm")?;
    norms
        .f_select(0, slot)
        .and_then(|mut cell| cell.f_copy_(&norm))
        .map(drop)
        .ctx("recording the gradient norm")
}

impl StepLog {
    /// Appends one epoch: `losses` (read already) and the norms in `norms` (read here), for
    /// steps `first_step`, `first_step + 1`, ... of `epoch`.
    pub(crate) fn push_epoch(
        &mut self,
        epoch: usize,
        first_step: u64,
        losses: &[f32],
        norms: &Tensor,
    ) -> Result<(), StageError> {
        let host = norms
            .f_to_device(Device::Cpu)
            .ctx("reading gradient norms")?;
        let norms = Vec::<f32>::try_from(&host).ctx("reading gradient norms")?;
        self.push_epoch_values(epoch, first_step, losses, &norms)
    }

    /// Appends one epoch from values read already: each step's loss and gradient norm.
    pub(crate) fn push_epoch_values(
        &mut self,
        epoch: usize,
        first_step: u64,
        losses: &[f32],
        norms: &[f32],
    ) -> Result<(), StageError> {
        if let Some((s, v)) = norms.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(StageError::numerical(format!(
                "the gradient norm became {v} at epoch {epoch}, step {} of the epoch (step {} \
                 overall); try a lower learning rate",
                s + 1,
                first_step + s as u64
            )));
        }
        let steps = losses.iter().zip(norms).enumerate();
        self.rows.extend(steps.map(|(s, (&loss, &norm))| StepRow {
            step: first_step + s as u64,
            epoch,
            loss: f64::from(loss),
            grad_norm: f64::from(norm),
        }));
        Ok(())
    }

    /// The table: `step`, `epoch`, `loss`, `grad_norm`, `scope` (`mini_batch`).
    pub(crate) fn table(&self) -> Table {
        let column = |f: fn(&StepRow) -> f64| {
            ColumnData::F64(self.rows.iter().map(|r| Some(f(r))).collect())
        };
        let mut table = Table::new();
        table
            .push(
                "step",
                ColumnData::I64(self.rows.iter().map(|r| r.step as i64).collect()),
            )
            .push(
                "epoch",
                ColumnData::I64(self.rows.iter().map(|r| r.epoch as i64).collect()),
            )
            .push("loss", column(|r| r.loss))
            .push("grad_norm", column(|r| r.grad_norm))
            .push_constant_str("scope", "mini_batch");
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_are_recorded_on_the_device_and_read_per_epoch() -> Result<(), StageError> {
        let norms = norm_buffer(2, Device::Cpu)?;
        record_norm(&norms, 0, &Tensor::from_slice(&[3.0f32, 4.0]))?;
        record_norm(&norms, 1, &Tensor::from_slice(&[0.0f32, 1.0]))?;
        let mut log = StepLog::default();
        log.push_epoch(1, 1, &[0.5, 0.25], &norms)?;
        let table = log.table();
        assert_eq!(
            table.names(),
            ["step", "epoch", "loss", "grad_norm", "scope"]
        );
        assert_eq!(
            table.f64s("grad_norm").ok(),
            Some(vec![Some(5.0), Some(1.0)])
        );
        record_norm(&norms, 1, &Tensor::from_slice(&[f32::INFINITY]))?;
        let err = log.push_epoch(2, 3, &[0.5, 0.25], &norms).err();
        assert!(err.is_some_and(|e| e.message.contains("epoch 2, step 2 of the epoch (step 4")));
        Ok(())
    }
}
