//! `pipeline run`: plan and run a pipeline, show progress, print the summary.

use std::sync::atomic::AtomicBool;

use pipeline_engine::run::{RunOptions, run};

use crate::args::{Cli, RunArgs};
use crate::executor::ChildProcesses;
use crate::failure::Failure;
use crate::progress::Progress;
use crate::{report, session};

/// Runs the command.
pub fn execute(cli: &Cli, args: &RunArgs, cancel: &AtomicBool) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(&args.pipeline, &registry)?;
    let workspace = session::workspace(cli)?;
    let opts = options(args)?;
    let runners = session::runners();
    let executor = ChildProcesses { program: session::worker()?, runners: &runners };
    let progress = Progress::new(cli.quiet, cli.verbose);
    let summary = run(&workspace, &pipeline, &registry, &executor, &opts, &progress, cancel)?;
    progress.finish();
    let outputs = workspace.root().join("outputs").join(&pipeline.name);
    eprint!("{}", report::summary(&summary, &outputs, cli.verbose));
    if summary.succeeded() { Ok(()) } else { Err(Failure::StagesFailed) }
}

/// Jobs, threads and the thread budget: by default as many one-thread stages as cores, so
/// that stages x threads never exceeds the cores (oversubscription slows small-op training
/// down many times over).
fn options(args: &RunArgs) -> Result<RunOptions, Failure> {
    let cores = session::cores();
    if args.jobs == Some(0) || args.threads == Some(0) {
        return Err(Failure::Input("--jobs and --threads must be at least 1".into()));
    }
    let jobs = args.jobs.unwrap_or(cores);
    let threads = args.threads.unwrap_or_else(|| (cores / jobs).max(1));
    let budget = if jobs * threads > cores {
        if args.jobs.is_some() && args.threads.is_some() {
            tracing::warn!(jobs, threads, cores, "jobs x threads exceeds the cores; stages will compete for them");
            jobs * threads
        } else {
            cores.max(threads)
        }
    } else {
        cores
    };
    Ok(RunOptions {
        jobs,
        threads,
        budget,
        targets: args.stages.clone(),
        force: args.force.clone(),
        cuda_available: session::cuda_available(),
    })
}
