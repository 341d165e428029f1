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
    /// Times fixed workloads of this project's training and analysis code (for
    /// `pipeline bench`): one line per workload, `name<TAB>seconds<TAB>units<TAB>units/s`.
    Bench {
        /// Intra-op threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Comma-separated workload names (default: all).
        #[arg(long, default_value = "")]
        only: String,
        /// List the workloads instead.
        #[arg(long)]
        list: bool,
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
        Command::Bench {
            threads,
            only,
            list,
        } => bench(threads, &only, list),
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

/// Runs the benchmark workloads named in `only` (all when empty), printing a line each.
fn bench(threads: usize, only: &str, list: bool) -> i32 {
    init_logging();
    let workloads = pipeline_stages::bench::WORKLOADS;
    if list {
        for (name, what) in workloads {
            println!("{name}\t{what}");
        }
        return 0;
    }
    let names: Vec<&str> = if only.is_empty() {
        workloads.iter().map(|w| w.0).collect()
    } else {
        only.split(',').map(str::trim).collect()
    };
    for name in names {
        match pipeline_stages::bench::run(name, threads) {
            Ok(t) => {
                let rate = t.units as f64 / t.seconds.max(1e-9);
                println!("{}\t{:.3}\t{}\t{rate:.1}", t.name, t.seconds, t.units);
                let _ = std::io::stdout().flush();
            }
            Err(e) => {
                eprintln!("pipeline-worker bench: {name}: {e}");
                return 1;
            }
        }
    }
    0
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
