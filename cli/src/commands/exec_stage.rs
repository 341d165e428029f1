//! `pipeline exec-stage --job FILE` (hidden): the child side of the process executor. Runs
//! one stage job and reports on stdout as JSON lines.

use std::sync::atomic::AtomicBool;

use pipeline_engine::job::{StageJob, run_job};
use pipeline_engine::stage::StageError;

use crate::args::ExecStageArgs;
use crate::executor::{ChildMessage, StdoutEvents, print_message};
use crate::session;

/// Runs the job; the exit code says whether it succeeded (the error went to stdout).
pub fn execute(args: &ExecStageArgs, cancel: &AtomicBool) -> i32 {
    let result = read_job(args).and_then(|job| {
        tch::set_num_threads(i32::try_from(job.threads).unwrap_or(1));
        let registry = session::registry();
        run_job(&registry, &job, &StdoutEvents, cancel)
    });
    match result {
        Ok(()) => 0,
        Err(error) => {
            print_message(&ChildMessage::Error { error });
            1
        }
    }
}

fn read_job(args: &ExecStageArgs) -> Result<StageJob, StageError> {
    let bytes = std::fs::read(&args.job).map_err(|e| StageError::io("read", &args.job, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| StageError::bug("the job file does not decode").caused_by(&e))
}
