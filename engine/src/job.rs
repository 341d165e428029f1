//! A unit of work for an executor: one stage with its parameters and the folders of its
//! inputs and outputs. Jobs serialize to JSON, so the same description runs in this process,
//! in a child process of the `pipeline` binary, or on a cluster node.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use crate::spec::Resources;
use crate::stage::{Device, EventSink, Runners, StageContext, StageError, StageInputs};

/// Everything needed to run one stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageJob {
    /// The pipeline's name.
    pub pipeline: String,
    /// The stage's full name.
    pub stage: String,
    /// The stage kind.
    pub kind: String,
    /// Canonical parameters.
    pub params: serde_json::Value,
    /// Input folders by slot.
    pub inputs: StageInputs,
    /// The empty folder to write outputs into.
    pub out_dir: PathBuf,
    /// The folder that survives interruption (resume state).
    pub resume_dir: PathBuf,
    /// The workspace folder (relative paths in parameters resolve against it).
    pub workspace: PathBuf,
    /// The seed.
    pub seed: u64,
    /// Intra-op threads granted.
    pub threads: usize,
    /// The device class.
    pub device: Device,
    /// What the stage asks of a cluster scheduler (read by executors that submit jobs).
    #[serde(default)]
    pub resources: Resources,
}

/// Runs a job in the current process.
pub fn run_job(
    runners: &Runners,
    job: &StageJob,
    events: &dyn EventSink,
    cancel: &AtomicBool,
) -> Result<(), StageError> {
    runners.run(&job.kind, &job.params, &context(job, events, cancel))
}

/// Runs a batch of jobs (one kind, the same parameters; see
/// [`crate::stage::TypedStage::batchable`]) in the current process, together where the kind
/// has a batch runner. Returns one result per job, in order.
pub fn run_batch(
    runners: &Runners,
    jobs: &[StageJob],
    events: &dyn EventSink,
    cancel: &AtomicBool,
) -> Vec<Result<(), StageError>> {
    let Some(first) = jobs.first() else {
        return Vec::new();
    };
    if jobs
        .iter()
        .any(|j| j.kind != first.kind || j.params != first.params)
    {
        let error = StageError::bug("a batch mixes stage kinds or parameters");
        return jobs.iter().map(|_| Err(error.clone())).collect();
    }
    let ctxs: Vec<StageContext<'_>> = jobs.iter().map(|j| context(j, events, cancel)).collect();
    runners.run_batch(&first.kind, &first.params, &ctxs)
}

fn context<'a>(
    job: &'a StageJob,
    events: &'a dyn EventSink,
    cancel: &'a AtomicBool,
) -> StageContext<'a> {
    StageContext {
        stage: &job.stage,
        pipeline: &job.pipeline,
        inputs: &job.inputs,
        out_dir: &job.out_dir,
        resume_dir: &job.resume_dir,
        workspace: &job.workspace,
        seed: job.seed,
        threads: job.threads,
        device: job.device,
        events,
        cancel,
    }
}

/// Runs jobs somewhere: in this process, in child processes, on a cluster.
pub trait Executor: Send + Sync {
    /// Runs one job to completion (or failure, or cancellation). `in_process` says the kind
    /// is cheap and safe to run inside the engine's process.
    fn execute(
        &self,
        job: &StageJob,
        in_process: bool,
        events: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<(), StageError>;

    /// Runs a batch of jobs of one kind and the same parameters, which differ only in their
    /// seeds and folders, as one computation where the executor can. Returns one result per
    /// job, in order. By default the jobs run one after another.
    fn execute_batch(
        &self,
        jobs: &[StageJob],
        events: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Vec<Result<(), StageError>> {
        jobs.iter()
            .map(|job| self.execute(job, false, events, cancel))
            .collect()
    }
}

/// Runs every job inside this process, on the scheduler's worker thread.
pub struct InProcess<'a> {
    /// The runners of the stage kinds.
    pub runners: &'a Runners,
}

impl Executor for InProcess<'_> {
    fn execute(
        &self,
        job: &StageJob,
        _in_process: bool,
        events: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<(), StageError> {
        run_job(self.runners, job, events, cancel)
    }

    fn execute_batch(
        &self,
        jobs: &[StageJob],
        events: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Vec<Result<(), StageError>> {
        run_batch(self.runners, jobs, events, cancel)
    }
}
