//! The protocol between the engine and a stage running in a child process: the child reads a
//! [`StageJob`] (or, for a batch, a list of them) from a JSON file, runs it, and writes one
//! JSON object per line on stdout, progress events as they come and, for each stage that
//! fails, the error, each naming its stage. Its exit code says whether everything succeeded.
//! Both sides live here so they cannot drift apart.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::job::{StageJob, run_batch, run_job};
use crate::stage::{EventSink, Runners, StageError, StageEvent};

/// One line a child writes on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChildMessage {
    /// A progress event of the stage.
    Event {
        /// The stage it concerns (the job's own stage when absent).
        #[serde(default)]
        stage: Option<String>,
        /// The event.
        event: StageEvent,
    },
    /// The stage failed.
    Error {
        /// The stage that failed (the job's own stage when absent).
        #[serde(default)]
        stage: Option<String>,
        /// Why.
        error: StageError,
    },
}

/// Writes events as JSON lines on stdout (the child's side).
pub struct StdoutEvents;

impl EventSink for StdoutEvents {
    fn emit(&self, stage: &str, event: StageEvent) {
        print_message(&ChildMessage::Event {
            stage: Some(stage.to_owned()),
            event,
        });
    }
}

/// Writes one message line on stdout and flushes it.
pub fn print_message(message: &ChildMessage) {
    if let Ok(line) = serde_json::to_string(message) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// The engine's side of one line a child wrote on stdout: an event goes to `events` (under
/// the stage it names, else `stage`), an error is returned with the stage it names; anything
/// else (a stray print of a library) is logged at debug level.
pub fn receive_line(
    line: &str,
    stage: &str,
    events: &dyn EventSink,
) -> Option<(Option<String>, StageError)> {
    match serde_json::from_str::<ChildMessage>(line) {
        Ok(ChildMessage::Event {
            stage: named,
            event,
        }) => {
            events.emit(named.as_deref().unwrap_or(stage), event);
            None
        }
        Ok(ChildMessage::Error {
            stage: named,
            error,
        }) => Some((named, error)),
        Err(_) => {
            tracing::debug!(stage, "{line}");
            None
        }
    }
}

/// Reads a job file.
pub fn read_job(path: &Path) -> Result<StageJob, StageError> {
    let bytes = std::fs::read(path).map_err(|e| StageError::io("read", path, &e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StageError::bug("the job file does not decode").caused_by(&e))
}

/// The child's whole work: run the job in `path`, report on stdout, return the exit code.
/// `before` runs once the job is read (to set up thread pools, say).
pub fn exec_job_file(
    runners: &Runners,
    path: &Path,
    cancel: &AtomicBool,
    before: impl FnOnce(&StageJob),
) -> i32 {
    let result = read_job(path).and_then(|job| {
        before(&job);
        run_job(runners, &job, &StdoutEvents, cancel)
    });
    match result {
        Ok(()) => 0,
        Err(error) => {
            print_message(&ChildMessage::Error { stage: None, error });
            1
        }
    }
}

/// The child's whole work for a batch: run the jobs listed in `path` together, report on
/// stdout (each failure naming its stage), return the exit code (0 when every stage
/// succeeded). `before` runs once the jobs are read.
pub fn exec_batch_file(
    runners: &Runners,
    path: &Path,
    cancel: &AtomicBool,
    before: impl FnOnce(&[StageJob]),
) -> i32 {
    let jobs = match read_batch(path) {
        Ok(jobs) => jobs,
        Err(error) => {
            print_message(&ChildMessage::Error { stage: None, error });
            return 1;
        }
    };
    before(&jobs);
    let mut code = 0;
    for (job, result) in jobs
        .iter()
        .zip(run_batch(runners, &jobs, &StdoutEvents, cancel))
    {
        if let Err(error) = result {
            print_message(&ChildMessage::Error {
                stage: Some(job.stage.clone()),
                error,
            });
            code = 1;
        }
    }
    code
}

/// Reads a batch file: a JSON list of jobs.
pub fn read_batch(path: &Path) -> Result<Vec<StageJob>, StageError> {
    let bytes = std::fs::read(path).map_err(|e| StageError::io("read", path, &e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StageError::bug("the batch file does not decode").caused_by(&e))
}
