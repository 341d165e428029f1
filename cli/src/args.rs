//! The command line: subcommands and flags, with help text and examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Declarative experiment pipelines: YAML stages, a content-hashed cache, Parquet and figures.
#[derive(Debug, Parser)]
#[command(name = "pipeline", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// The workspace folder (holds .pipeline/ and outputs/); default: the nearest folder at or
    /// above the current one that has a .pipeline/ folder, else the current folder.
    #[arg(long, global = true, env = "PIPELINE_WORKSPACE", value_name = "DIR")]
    pub workspace: Option<PathBuf>,

    /// Keep the content-addressed store here instead of .pipeline/store (a store can be shared
    /// by several workspaces).
    #[arg(long, global = true, env = "PIPELINE_STORE", value_name = "DIR")]
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

const EXAMPLES: &str = "\
Examples:
  pipeline run pipelines/hw1-1.yaml
  pipeline run pipelines/hw1-1.yaml --set epochs=100 --jobs 2
  pipeline plan pipelines/hw1-1.yaml --set train_deep.params.optimizer.adam.lr=0.01
  pipeline run pipelines/hw1-1.yaml train_deep        # one stage and what it needs
  pipeline kinds                                       # the stage kinds and their parameters

Exit codes: 0 success; 1 a stage failed; 2 bad command line or pipeline file;
3 a problem of the machine (store not writable, missing libtorch); 101 a bug.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline: every stage whose inputs or parameters changed since it last ran.
    #[command(after_help = "Examples:\n  pipeline run pipelines/hw1-1.yaml\n  pipeline run pipelines/hw1-1.yaml --set epochs=50 --force train_deep\n  pipeline run pipelines/hw1-1.yaml plot_loss     # plot_loss and its upstream stages")]
    Run(RunArgs),
    /// Show what a run would do and why, without running anything (alias: status).
    #[command(visible_alias = "status", after_help = "Examples:\n  pipeline plan pipelines/hw1-1.yaml\n  pipeline plan pipelines/hw1-1.yaml --set train_deep.params.epochs=10")]
    Plan(PlanArgs),
    /// Check a pipeline file (names, kinds, parameters, inputs, cycles) without touching data.
    #[command(after_help = "Example:\n  pipeline validate pipelines/hw1-3.yaml --set epochs=5")]
    Validate(PipelineArgs),
    /// List the stage kinds, their inputs and parameters.
    #[command(after_help = "Examples:\n  pipeline kinds\n  pipeline kinds train")]
    Kinds(KindsArgs),
    /// Re-hash every object in the store and report damage; --repair moves damaged objects
    /// aside so that the stages that made them run again.
    #[command(after_help = "Example:\n  pipeline verify --repair")]
    Verify(VerifyArgs),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  pipeline completions bash > ~/.local/share/bash-completion/completions/pipeline")]
    Completions(CompletionArgs),
}

/// A pipeline file and overrides.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The pipeline file (YAML).
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
    /// Stages running at once (default: the number of cores).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Intra-op threads per stage (default: cores / jobs, at least 1); a stage's `threads:`
    /// key overrides it.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Run this stage even if it is cached (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,
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
