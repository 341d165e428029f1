//! `pipeline run`: plan and run a pipeline, show progress, print the summary.

use std::sync::atomic::AtomicBool;

use pipeline_engine::Workspace;
use pipeline_engine::job::Executor;
use pipeline_engine::run::{RunOptions, run};
use pipeline_engine::spec::Pipeline;

use crate::args::{Cli, RunArgs};
use crate::config::{self, ExecutorKind};
use crate::executor::ChildProcesses;
use crate::failure::Failure;
use crate::progress::Progress;
use crate::slurm::SlurmExecutor;
use crate::{commands, page, report, session};

/// Runs the command.
pub fn execute(cli: &Cli, args: &RunArgs, cancel: &AtomicBool) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(&args.pipeline, &registry)?;
    let workspace = session::workspace(cli)?;
    session::check_paths(&pipeline, &registry, &workspace)?;
    let config = config::load()?;
    let kind = args
        .executor
        .executor
        .or(config.executor)
        .unwrap_or_default();
    let opts = options(args, kind, &config)?;
    let runners = session::runners();
    let local;
    let slurm;
    let executor: &dyn Executor = match kind {
        ExecutorKind::Local => {
            local = ChildProcesses {
                program: session::worker()?,
                runners: &runners,
                verbose: cli.verbose,
            };
            &local
        }
        ExecutorKind::Slurm => {
            let mut settings = config.slurm;
            settings.partition = args.partition.clone().or(settings.partition);
            settings.account = args.account.clone().or(settings.account);
            let worker = match settings.worker.clone() {
                Some(path) => path,
                None => session::worker()?,
            };
            slurm = SlurmExecutor::new(settings, worker, &runners, cli.verbose);
            &slurm
        }
    };
    let progress = Progress::new(cli.quiet, cli.verbose);
    let summary = run(
        &workspace, &pipeline, &registry, executor, &opts, &progress, cancel,
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

/// Jobs, threads and the thread budget. Locally, by default as many one-thread stages as
/// cores, so that stages x threads never exceeds the cores (oversubscription slows small-op
/// training down many times over). Under Slurm the cluster shares out the cores: up to
/// `max_jobs` stages are submitted at once, each with the CPUs it asks for.
fn options(
    args: &RunArgs,
    kind: ExecutorKind,
    config: &config::Config,
) -> Result<RunOptions, Failure> {
    if args.jobs == Some(0) || args.threads == Some(0) || args.batch == 0 {
        return Err(Failure::Input(
            "--jobs, --threads and --batch must be at least 1".into(),
        ));
    }
    if kind == ExecutorKind::Local && (args.partition.is_some() || args.account.is_some()) {
        return Err(Failure::Input(
            "--partition and --account are for `--executor slurm`".into(),
        ));
    }
    if kind == ExecutorKind::Slurm {
        return Ok(RunOptions {
            jobs: args.jobs.unwrap_or(config.slurm.max_jobs),
            threads: args.threads.unwrap_or(1),
            budget: usize::MAX,
            targets: args.stages.clone(),
            force: args.force.clone(),
            cuda: session::cuda(Some(kind)),
            lend_idle_threads: false,
            batch: args.batch,
        });
    }
    let cores = session::cores();
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
        cuda: session::cuda(Some(kind)),
        lend_idle_threads: true,
        batch: args.batch,
    })
}
