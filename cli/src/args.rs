//! The command line: subcommands and flags, with help text and examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueHint};

use crate::config::ExecutorKind;

/// Declarative experiment pipelines: YAML stages, a content-hashed cache, Parquet and figures.
#[derive(Debug, Parser)]
#[command(name = "pipeline", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// The workspace folder (holds .pipeline/ and outputs/); default: the nearest folder at or
    /// above the current one that has a .pipeline/ folder, else the current folder.
    #[arg(
        long,
        global = true,
        env = "PIPELINE_WORKSPACE",
        value_name = "DIR",
        value_hint = ValueHint::DirPath
    )]
    pub workspace: Option<PathBuf>,

    /// Keep the content-addressed store here instead of .pipeline/store (a store can be shared
    /// by several workspaces).
    #[arg(
        long,
        global = true,
        env = "PIPELINE_STORE",
        value_name = "DIR",
        value_hint = ValueHint::DirPath
    )]
    pub store: Option<PathBuf>,

    /// Print only errors and the final summary.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print each stage's reasons and progress lines, and debug logs (RUST_LOG overrides).
    #[arg(long, short, global = true)]
    pub verbose: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const RUN_EXAMPLES: &str = "\
Examples:
  pipeline run pipelines/hw1-1.yaml
  pipeline run pipelines/hw1-1.yaml --set image_epochs=5 --force cnn
  pipeline run pipelines/hw1-1.yaml fit_loss      # fit_loss and its upstream stages
  pipeline run pipelines/hw1-3.yaml --executor slurm --partition gpu";

const PLAN_EXAMPLES: &str = "\
Examples:
  pipeline plan pipelines/hw1-1.yaml
  pipeline plan pipelines/hw1-1.yaml --set cnn.params.epochs=10";

const COMPLETION_EXAMPLE: &str = "\
Example:
  pipeline completions bash > ~/.local/share/bash-completion/completions/pipeline";

const BENCH_EXAMPLES: &str = "\
Examples:
  pipeline bench
  pipeline bench --only sinc_deep_steps,mnist_cnn_epoch --threads 2";

const EXAMPLES: &str = "\
Examples:
  pipeline run pipelines/hw1-1.yaml
  pipeline run pipelines/hw1-1.yaml --set fit_epochs=100 --jobs 2
  pipeline plan pipelines/hw1-1.yaml --set fit_lr=0.01
  pipeline run pipelines/hw1-1.yaml cnn_accuracy      # one stage and what it needs
  pipeline kinds                                       # the stage kinds and their parameters
  pipeline report pipelines/hw1-1.yaml                 # outputs/hw1-1/report.html
  pipeline show pipelines/hw1-1.yaml fit_final         # a stage's files, tables, parameters
  pipeline diff pipelines/hw1-1.yaml                   # what changed since the run before

Exit codes: 0 success; 1 a stage failed; 2 bad command line or pipeline file;
3 a problem of the machine (store not writable, missing libtorch); 101 a bug.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline: every stage whose inputs or parameters changed since it last ran.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Show what a run would do and why, without running anything.
    #[command(
        visible_alias = "status",
        after_help = PLAN_EXAMPLES
    )]
    Plan(PlanArgs),
    /// Check a pipeline file (names, kinds, parameters, inputs, cycles) without touching data.
    #[command(
        after_help = "Example:\n  pipeline validate pipelines/hw1-3.yaml --set width_epochs=5"
    )]
    Validate(PipelineArgs),
    /// List the stage kinds, their inputs and parameters.
    #[command(after_help = "Examples:\n  pipeline kinds\n  pipeline kinds train")]
    Kinds(KindsArgs),
    /// Re-hash every object in the store and report damage; --repair moves damaged objects
    /// aside so that the stages that made them run again.
    #[command(after_help = "Example:\n  pipeline verify --repair")]
    Verify(VerifyArgs),
    /// Remove from the store what no pipeline's current state refers to (in every workspace
    /// that uses the store), keeping also what the last N runs of each pipeline used.
    #[command(after_help = "Examples:\n  pipeline gc --dry-run\n  pipeline gc --keep-runs 5")]
    Gc(GcArgs),
    /// Write the pipeline's HTML report (every figure, final metrics, parameters, the last
    /// run's timings) to outputs/<pipeline>/report.html; `run` writes it too.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(PipelineArgs),
    /// Show a stage's output folder: its files, each table's schema and first rows, and its
    /// parameters.
    #[command(after_help = SHOW_EXAMPLES)]
    Show(ShowArgs),
    /// Print the expanded stage graph (one node per matrix member) as Mermaid or Graphviz.
    #[command(after_help = DAG_EXAMPLES)]
    Dag(DagArgs),
    /// List the pipeline's runs: when, how long, what ran, with which settings.
    #[command(after_help = RUNS_EXAMPLES)]
    Runs(RunsArgs),
    /// Compare parameters and final metrics of each stage between the current state and a
    /// previous run.
    #[command(after_help = DIFF_EXAMPLES)]
    Diff(DiffArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETION_EXAMPLE)]
    Completions(CompletionArgs),
    /// Time fixed training and analysis workloads against plain PyTorch (where a Python with
    /// PyTorch is at hand) and batched seeds against seeds one at a time; prints ratios.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
}

/// A pipeline file and overrides.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The pipeline file (YAML).
    #[arg(value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
    /// Override a value: a variable (`epochs=5`) or any key path
    /// (`train.params.optimizer.adam.lr=0.01`); the value is YAML. Repeatable.
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline and overrides.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Run only these stages and the stages they need (names, or declaration names for every
    /// member of a matrix).
    #[arg(value_name = "STAGE")]
    pub stages: Vec<String>,
    /// Stages running at once (default: the number of cores; under Slurm, jobs submitted at
    /// once, default `max_jobs` of the configuration file, 64).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Intra-op threads per stage (default: cores / jobs, at least 1); a stage's `threads:`
    /// key overrides it.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Run this stage even if it is cached (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,
    /// Most stages that differ only in their seeds (a sweep over seeds of one training, say)
    /// computed together as one batched computation; each keeps its own outputs and cache
    /// key. 1 runs every stage on its own.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub batch: usize,
    /// Where stages run.
    #[command(flatten)]
    pub executor: ExecutorArgs,
    /// Slurm partition to submit to (default: the configuration file's, else the cluster's).
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,
    /// Slurm account to charge (default: the configuration file's, else yours).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
}

/// The executor flag, shared by `run` and `plan` (under Slurm, a stage's device class
/// follows the GPUs its job asks for).
#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// Where stages run: `local` (worker processes on this machine) or `slurm` (one batch
    /// job per stage); default: `executor:` of the configuration file
    /// ($PIPELINE_CONFIG or ~/.config/pipeline/config.yaml), else local.
    #[arg(long, value_enum, value_name = "WHERE")]
    pub executor: Option<ExecutorKind>,
}

/// Flags of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Intra-op threads on both sides.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// Only these workloads (comma-separated; `pipeline-worker bench --list` lists them).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub only: Vec<String>,
    /// The Python with PyTorch for the reference (default: ~/.cache/torch-ref/bin/python,
    /// where ../shared/bench/README.md installs it).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// The reference script (default: ../shared/bench/torch_ref.py).
    #[arg(long, value_name = "PATH")]
    pub reference: Option<PathBuf>,
    /// Run the reference under glibc's default allocator settings (as a plain PyTorch script
    /// runs) instead of this project's.
    #[arg(long)]
    pub reference_default_allocator: bool,
}

/// Flags of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The pipeline and overrides.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Plan only these stages and the stages they need.
    #[arg(value_name = "STAGE")]
    pub stages: Vec<String>,
    /// Plan these stages as forced.
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,
    /// Where the stages would run.
    #[command(flatten)]
    pub executor: ExecutorArgs,
}

/// Flags of `kinds`.
#[derive(Debug, Args)]
pub struct KindsArgs {
    /// Show one kind in detail.
    pub kind: Option<String>,
}

/// Flags of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Move damaged objects to the quarantine and forget the stages that made them.
    #[arg(long)]
    pub repair: bool,
    /// Hashing threads (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Flags of `completions`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Flags of `gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Also keep what each pipeline's last N runs used.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_runs: usize,
    /// List what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

const REPORT_EXAMPLES: &str = "\
Examples:
  pipeline report pipelines/hw1-1.yaml
  pipeline report pipelines/hw1-1.yaml --set fit_epochs=20000   # the report of that variant

The page is self-contained (figures embedded, no scripts, nothing loaded from elsewhere).";

const SHOW_EXAMPLES: &str = "\
Examples:
  pipeline show pipelines/hw1-1.yaml 'fit[function=sinc,run=0,model=deep]'
  pipeline show pipelines/hw1-1.yaml fit_final --rows 20
  pipeline show pipelines/hw1-1.yaml cnn            # every member of a matrix";

const DAG_EXAMPLES: &str = "\
Examples:
  pipeline dag pipelines/hw1-1.yaml > hw1-1.mmd                  # paste into a Markdown file
  pipeline dag pipelines/hw1-1.yaml --format dot | dot -Tsvg > hw1-1.svg";

const RUNS_EXAMPLES: &str = "\
Examples:
  pipeline runs pipelines/hw1-1.yaml
  pipeline runs pipelines/hw1-1.yaml --last 3

Column K is what `pipeline diff FILE --run K` takes (0 is the newest run).";

const DIFF_EXAMPLES: &str = "\
Examples:
  pipeline diff pipelines/hw1-1.yaml             # against the run before the last
  pipeline diff pipelines/hw1-1.yaml --run 3     # against the fourth newest run

Stages whose outputs are the same on both sides are counted, not listed.";

/// Flags of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The pipeline and overrides.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The stage: a full name (`fit[function=sinc,run=0,model=deep]`), or a declaration name
    /// for every member of a matrix.
    pub stage: String,
    /// Rows of each table to print.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 5)]
    pub rows: usize,
}

/// The formats `dag` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Mermaid flowchart (GitHub and GitLab render it in Markdown).
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// Flags of `dag`.
#[derive(Debug, Args)]
pub struct DagArgs {
    /// The pipeline and overrides.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The output format.
    #[arg(long, short, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

/// Flags of `runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The pipeline (its name picks the run history; overrides may change the name).
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Show only the N newest runs.
    #[arg(long, short = 'n', value_name = "N")]
    pub last: Option<usize>,
}

/// Flags of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The pipeline and overrides.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The run to compare with, counted back from the newest (0: the newest run, 1: the one
    /// before it); see `pipeline runs`.
    #[arg(long, short = 'r', value_name = "K", default_value_t = 1)]
    pub run: usize,
}
