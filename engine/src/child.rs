//! The protocol between the engine and a stage running in a child process: the child reads a
//! [`StageJob`] from a JSON file, runs it, and writes one JSON object per line on stdout,
//! progress events as they come and, if it fails, the error. Its exit code says whether it
//! succeeded. Both sides live here so they cannot drift apart.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::job::{StageJob, run_job};
use crate::stage::{EventSink, Runners, StageError, StageEvent};

/// One line a child writes on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChildMessage {
    /// A progress event of the stage.
    Event {
        /// The event.
        event: StageEvent,
    },
    /// The stage failed.
    Error {
        /// Why.
        error: StageError,
    },
}

/// Writes events as JSON lines on stdout (the child's side).
pub struct StdoutEvents;

impl EventSink for StdoutEvents {
    fn emit(&self, _stage: &str, event: StageEvent) {
        print_message(&ChildMessage::Event { event });
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

/// The engine's side of one line a child wrote on stdout: an event goes to `events`, an
/// error is returned; anything else (a stray print of a library) is logged at debug level.
pub fn receive_line(line: &str, stage: &str, events: &dyn EventSink) -> Option<StageError> {
    match serde_json::from_str::<ChildMessage>(line) {
        Ok(ChildMessage::Event { event }) => {
            events.emit(stage, event);
            None
        }
        Ok(ChildMessage::Error { error }) => Some(error),
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
            print_message(&ChildMessage::Error { error });
            1
        }
    }
}
