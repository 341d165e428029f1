//! `pipeline run`: plan and run a pipeline, show progress, print the summary.

use std::sync::atomic::AtomicBool;

use pipeline_engine::Workspace;
use pipeline_engine::plan::Cuda;
use pipeline_engine::run::{RunOptions, run};
use pipeline_engine::spec::Pipeline;

use crate::args::{Cli, RunArgs};
use crate::executor::ChildProcesses;
use crate::failure::Failure;
use crate::progress::Progress;
use crate::{commands, page, report, session};

/// Runs the command.
pub fn execute(cli: &Cli, args: &RunArgs, cancel: &AtomicBool) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(&args.pipeline, &registry)?;
    let workspace = session::workspace(cli)?;
    session::check_paths(&pipeline, &registry, &workspace)?;
    let opts = options(args)?;
    let runners = session::runners();
    let executor = ChildProcesses {
        program: session::worker()?,
        runners: &runners,
        verbose: cli.verbose,
    };
    let progress = Progress::new(cli.quiet, cli.verbose);
    let summary = run(
        &workspace, &pipeline, &registry, &executor, &opts, &progress, cancel,
    )?;
    progress.finish();
    let outputs = workspace.root().join("outputs").join(&pipeline.name);
    eprint!("{}", report::summary(&summary, &outputs, cli.verbose));
    // A run that computed nothing leaves the report of the last run that did (rewriting a
    // report of every figure would be most of a no-op rerun's time); `pipeline report`
    // rewrites it on demand.
    let (ran, _, failed, skipped) = summary.counts();
    if ran + failed + skipped > 0 || !outputs.join("report.html").exists() {
        write_report(cli, &workspace, &pipeline);
    }
    if summary.succeeded() {
        Ok(())
    } else {
        Err(Failure::StagesFailed)
    }
}

/// Writes the HTML report; a failure to write it is a warning, not a failed run.
fn write_report(cli: &Cli, workspace: &Workspace, pipeline: &Pipeline) {
    match page::write(workspace, pipeline) {
        Ok(written) if cli.verbose => eprintln!("{}", commands::report::describe(&written)),
        Ok(written) => eprintln!("report in {}", written.path.display()),
        Err(e) => {
            let dir = workspace.root().join("outputs").join(&pipeline.name);
            tracing::warn!(error = %e, folder = %dir.display(), "could not write the report");
        }
    }
}

/// Jobs, threads and the thread budget: by default as many one-thread stages as cores, so
/// that stages x threads never exceeds the cores (oversubscription slows small-op training
/// down many times over).
fn options(args: &RunArgs) -> Result<RunOptions, Failure> {
    let cores = session::cores();
    if args.jobs == Some(0) || args.threads == Some(0) {
        return Err(Failure::Input(
            "--jobs and --threads must be at least 1".into(),
        ));
    }
    let jobs = args.jobs.unwrap_or(cores);
    let threads = args.threads.unwrap_or_else(|| (cores / jobs).max(1));
    let budget = if jobs * threads > cores {
        if args.jobs.is_some() && args.threads.is_some() {
            tracing::warn!(
                jobs,
                threads,
                cores,
                "jobs x threads exceeds the cores; stages will compete for them"
            );
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
        cuda: Cuda::Here(session::cuda_available()),
    })
}
