//! `pipeline-worker`: the process that runs stages on libtorch, one stage job per process.
//!
//! The `pipeline` binary plans, checks the cache and draws plots without linking libtorch
//! (whose start-up alone costs about 220 ms); every stage that needs libtorch it hands to a
//! child `pipeline-worker exec-stage --job FILE`, which reports progress and errors as JSON
//! lines on stdout (`pipeline_engine::child`); `exec-batch` runs several stages of one kind
//! that differ only in their seeds as one computation (a sweep over seeds).
//! `pipeline-worker probe` tells the planner what libtorch sees on this machine.

mod signals;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pipeline_engine::stage::Runners;
use serde::Serialize;
use tracing_subscriber::EnvFilter;

/// Runs `pipeline` stages that need libtorch; started by `pipeline`, not by hand.
#[derive(Debug, Parser)]
#[command(name = "pipeline-worker", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one stage job and reports on stdout, one JSON object per line.
    ExecStage {
        /// The job description (JSON), as written by `pipeline`.
        #[arg(long, value_name = "FILE")]
        job: PathBuf,
    },
    /// Runs a batch of stage jobs (one kind, the same parameters, different seeds) together
    /// and reports on stdout like `exec-stage`, each failure naming its stage.
    ExecBatch {
        /// The list of jobs (JSON), as written by `pipeline`.
        #[arg(long, value_name = "FILE")]
        job: PathBuf,
    },
    /// Prints one JSON line saying whether libtorch sees CUDA, how many devices, and its
    /// intra-op thread count.
    Probe,
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::ExecStage { job } => exec_stage(&job),
        Command::ExecBatch { job } => exec_batch(&job),
        Command::Probe => probe(),
    };
    std::process::exit(code);
}

/// Runs the job in `path`; the exit code says whether it succeeded.
fn exec_stage(path: &std::path::Path) -> i32 {
    init_logging();
    signals::install();
    let mut runners = Runners::new();
    pipeline_stages::register_runners(&mut runners);
    pipeline_engine::child::exec_job_file(&runners, path, &signals::CANCEL, |job| {
        tch::set_num_threads(i32::try_from(job.threads.max(1)).unwrap_or(i32::MAX));
    })
}

/// Runs the batch in `path`; the exit code says whether every stage succeeded.
fn exec_batch(path: &std::path::Path) -> i32 {
    init_logging();
    signals::install();
    let mut runners = Runners::new();
    pipeline_stages::register_runners(&mut runners);
    pipeline_engine::child::exec_batch_file(&runners, path, &signals::CANCEL, |jobs| {
        let threads = jobs.first().map_or(1, |j| j.threads.max(1));
        tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
    })
}

/// Logs go to stderr, which `pipeline` keeps for error messages; `RUST_LOG` filters them
/// (default: warnings).
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let ansi = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// What `probe` prints.
#[derive(Serialize)]
struct Probe {
    cuda: bool,
    cuda_devices: i64,
    torch_threads: i32,
}

fn probe() -> i32 {
    let probe = Probe {
        cuda: tch::Cuda::is_available(),
        cuda_devices: tch::Cuda::device_count(),
        torch_threads: tch::get_num_threads(),
    };
    let Ok(line) = serde_json::to_string(&probe) else {
        return 1;
    };
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}
