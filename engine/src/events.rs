//! What a run reports while it goes, as typed events: the progress display, the log and the
//! run record are consumers; the scheduler and the stages never print.

use pipeline_cache::lock::Holder;

use crate::plan::Reason;
use crate::stage::{StageError, StageEvent};

/// One thing that happened during a run.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// The run starts with this many stages selected.
    Started {
        /// Stages in the run.
        stages: usize,
    },
    /// A stage's outputs were found in the store.
    Cached {
        /// The stage.
        stage: &'a str,
        /// True when another run computed them while this one waited.
        by_other_run: bool,
    },
    /// A stage starts running.
    Running {
        /// The stage.
        stage: &'a str,
        /// Intra-op threads it has.
        threads: usize,
        /// Why it runs.
        reasons: &'a [Reason],
    },
    /// A stage waits for another process that computes the same key.
    Waiting {
        /// The stage.
        stage: &'a str,
        /// Who holds the key, if known.
        holder: Option<&'a Holder>,
    },
    /// A stage's key was left locked by a process that is gone; this run took it over.
    TookOver {
        /// The stage.
        stage: &'a str,
        /// The previous holder.
        holder: &'a Holder,
    },
    /// A running stage reported progress.
    Progress {
        /// The stage.
        stage: &'a str,
        /// What it said.
        event: &'a StageEvent,
    },
    /// A stage finished and its outputs are committed.
    Finished {
        /// The stage.
        stage: &'a str,
        /// Wall time.
        seconds: f64,
    },
    /// A stage failed.
    Failed {
        /// The stage.
        stage: &'a str,
        /// Why.
        error: &'a StageError,
    },
    /// A stage did not run because an upstream stage failed or the run was stopped.
    Skipped {
        /// The stage.
        stage: &'a str,
        /// Why.
        because: &'a str,
    },
    /// An input of a stage was damaged in the store; its producer runs again.
    Recomputing {
        /// The stage whose outputs were damaged.
        stage: &'a str,
    },
}

/// Receives run events (from several threads).
pub trait Observer: Send + Sync {
    /// Called for each event.
    fn event(&self, event: RunEvent<'_>);
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _event: RunEvent<'_>) {}
}
