//! Slurm's job states, as `squeue --format=%T` prints them, sorted into what the executor does
//! about each: wait, report, finish, fail, or submit the stage again.
//!
//! A job that the cluster took away through no fault of the stage (preemption, a node that
//! failed or did not boot) is submitted again; a stage that trains resumes from its last
//! snapshot in the store. Everything else that ends a job without success is the stage's
//! failure, with a message that says which limit it hit.

use std::fmt;

/// What a job is doing, from the executor's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for resources (or held, or requeued by Slurm itself).
    Queued,
    /// Started (or finishing, or suspended for a while).
    Running,
    /// Ended with exit code 0.
    Completed,
    /// Ended with a non-zero exit code or a signal.
    Failed,
    /// Killed at its time limit.
    TimedOut,
    /// Killed for using more memory than it asked for.
    OutOfMemory,
    /// Cancelled (by this run on Ctrl-C, or by someone with `scancel`).
    Cancelled,
    /// Taken away through no fault of the stage: preempted, or its node failed.
    Lost,
}

/// One job's state as the queue reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    /// Slurm's name of the state (`PENDING`, `PREEMPTED`...).
    pub name: String,
    /// Why it is in that state (`Resources`, `Priority`, `None`...).
    pub reason: String,
    /// The node it runs on, once it runs.
    pub node: String,
}

impl JobState {
    /// What the executor makes of it.
    pub fn phase(&self) -> Phase {
        match self.name.as_str() {
            "RUNNING" | "COMPLETING" | "SIGNALING" | "STAGE_OUT" | "RESIZING" | "SUSPENDED"
            | "STOPPED" => Phase::Running,
            "COMPLETED" => Phase::Completed,
            "FAILED" | "SPECIAL_EXIT" | "DEADLINE" => Phase::Failed,
            "TIMEOUT" => Phase::TimedOut,
            "OUT_OF_MEMORY" => Phase::OutOfMemory,
            "CANCELLED" | "REVOKED" => Phase::Cancelled,
            "PREEMPTED" | "NODE_FAIL" | "BOOT_FAIL" => Phase::Lost,
            // PENDING, CONFIGURING, REQUEUED, REQUEUE_HOLD, REQUEUE_FED, RESV_DEL_HOLD, and
            // any state a later Slurm adds: the job has not ended, so keep waiting.
            _ => Phase::Queued,
        }
    }

    /// Whether the job has ended.
    pub fn ended(&self) -> bool {
        !matches!(self.phase(), Phase::Queued | Phase::Running)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name.to_lowercase().replace('_', " "))?;
        if !self.reason.is_empty() && self.reason != "None" {
            write!(f, " ({})", self.reason)?;
        }
        Ok(())
    }
}

/// The `--format` that [`parse_line`] reads.
pub const SQUEUE_FORMAT: &str = "%i|%T|%r|%N";

/// One line of `squeue --noheader --format=SQUEUE_FORMAT`: the job id and its state.
pub fn parse_line(line: &str) -> Option<(u64, JobState)> {
    let mut fields = line.trim().splitn(4, '|');
    let id = fields.next()?.trim().parse().ok()?;
    let name = fields.next()?.trim().to_owned();
    if name.is_empty() {
        return None;
    }
    let reason = fields.next().unwrap_or_default().trim().to_owned();
    let node = fields.next().unwrap_or_default().trim().to_owned();
    Some((id, JobState { name, reason, node }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str) -> JobState {
        JobState {
            name: name.into(),
            reason: "None".into(),
            node: String::new(),
        }
    }

    #[test]
    fn states_map_to_what_the_executor_does() {
        for (name, phase) in [
            ("PENDING", Phase::Queued),
            ("REQUEUED", Phase::Queued),
            ("CONFIGURING", Phase::Queued),
            ("RUNNING", Phase::Running),
            ("COMPLETING", Phase::Running),
            ("SUSPENDED", Phase::Running),
            ("COMPLETED", Phase::Completed),
            ("FAILED", Phase::Failed),
            ("TIMEOUT", Phase::TimedOut),
            ("OUT_OF_MEMORY", Phase::OutOfMemory),
            ("CANCELLED", Phase::Cancelled),
            ("PREEMPTED", Phase::Lost),
            ("NODE_FAIL", Phase::Lost),
            ("BOOT_FAIL", Phase::Lost),
            ("SOME_FUTURE_STATE", Phase::Queued),
        ] {
            assert_eq!(state(name).phase(), phase, "{name}");
        }
        assert!(state("PREEMPTED").ended());
        assert!(!state("PENDING").ended());
    }

    #[test]
    fn squeue_lines_are_read() {
        let (id, s) = parse_line("4711|PENDING|Resources|\n").unwrap();
        assert_eq!(id, 4711);
        assert_eq!(s.phase(), Phase::Queued);
        assert_eq!(s.to_string(), "pending (Resources)");
        let (_, s) = parse_line("12|RUNNING|None|node-3").unwrap();
        assert_eq!(s.node, "node-3");
        assert_eq!(s.to_string(), "running");
        assert_eq!(parse_line("slurm_load_jobs error: Invalid job id"), None);
        assert_eq!(parse_line(""), None);
    }
}
