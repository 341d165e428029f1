//! The run's view of the Slurm queue: one `squeue` call per poll interval for all the jobs the
//! run follows, shared by the threads that follow them. A cluster's controller daemon serves
//! every user, and a run with a hundred jobs in flight must not ask it a hundred times a
//! second.
//!
//! A queue that does not answer for a while (the controller restarting, a network hiccup) is
//! waited out with a warning; only one silent for [`PATIENCE`] fails the stages.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pipeline_engine::stage::StageError;

use super::client::{self, CommandError};
use super::state::JobState;

/// How long the queue may fail to answer before the stages that wait on it fail.
pub const PATIENCE: Duration = Duration::from_secs(600);

/// The latest answers of the queue.
pub struct Queue {
    poll: Duration,
    inner: Mutex<Snapshot>,
}

#[derive(Default)]
struct Snapshot {
    watched: BTreeSet<u64>,
    states: HashMap<u64, JobState>,
    taken: Option<Instant>,
    failing_since: Option<Instant>,
}

impl Queue {
    /// A queue asked at most once per `poll`.
    pub fn new(poll: Duration) -> Self {
        Self {
            poll,
            inner: Mutex::new(Snapshot::default()),
        }
    }

    /// Starts following a job.
    pub fn watch(&self, id: u64) {
        if let Ok(mut s) = self.inner.lock() {
            s.watched.insert(id);
        }
    }

    /// Stops following a job.
    pub fn forget(&self, id: u64) {
        if let Ok(mut s) = self.inner.lock() {
            s.watched.remove(&id);
            s.states.remove(&id);
        }
    }

    /// The latest known state of job `id` (`None` while the queue has not reported it), asking
    /// the queue first when its last answer is older than the poll interval.
    pub fn state(&self, id: u64) -> Result<Option<JobState>, StageError> {
        let mut s = self
            .inner
            .lock()
            .map_err(|_| StageError::bug("the queue's state was poisoned by a panic"))?;
        if s.taken.is_none_or(|t| t.elapsed() >= self.poll) {
            s.taken = Some(Instant::now());
            let ids: Vec<u64> = s.watched.iter().copied().collect();
            match client::squeue(&ids) {
                Ok(states) => {
                    s.states = states.into_iter().collect();
                    s.failing_since = None;
                }
                Err(CommandError::Failed { output, .. }) => {
                    let since = *s.failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > PATIENCE {
                        let mut e = StageError::environment(format!(
                            "the Slurm queue has not answered for {} minutes",
                            PATIENCE.as_secs() / 60
                        ));
                        e.causes.push(output);
                        return Err(e);
                    }
                    tracing::warn!(error = %output, "squeue failed; asking again");
                }
                Err(other) => return Err(other.into_stage_error()),
            }
        }
        Ok(s.states.get(&id).cloned())
    }
}
