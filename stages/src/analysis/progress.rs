//! Progress of a long analysis loop, reported at most once per percent, with a cancellation
//! check at every unit.
//!
//! An analysis may run thousands of cheap units (random perturbations, batches); one event
//! per unit would flood the engine's event stream, while checking the cancellation flag is an
//! atomic load and is done every time, so that Ctrl-C stops a stage within one unit.

use pipeline_engine::stage::{StageContext, StageError};

/// Counts units of work done out of a known total.
pub(crate) struct Ticker<'a> {
    ctx: &'a StageContext<'a>,
    unit: &'static str,
    total: u64,
    done: u64,
    shown_percent: Option<u64>,
}

impl<'a> Ticker<'a> {
    /// A ticker for `total` units called `unit` (`point`, `example`).
    pub(crate) fn new(ctx: &'a StageContext<'a>, total: u64, unit: &'static str) -> Self {
        Self {
            ctx,
            unit,
            total,
            done: 0,
            shown_percent: None,
        }
    }

    /// Records `units` more done; fails once the run is being stopped.
    pub(crate) fn advance(&mut self, units: u64, message: &str) -> Result<(), StageError> {
        self.ctx.check_cancelled()?;
        self.done = (self.done + units).min(self.total);
        let percent = self.done * 100 / self.total.max(1);
        if self.shown_percent != Some(percent) {
            self.shown_percent = Some(percent);
            self.ctx.progress(self.done, self.total, self.unit, message);
        }
        Ok(())
    }
}
