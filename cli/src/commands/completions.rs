//! `pipeline completions SHELL`: a completion script for bash, zsh, fish, elvish or PowerShell.

use clap::CommandFactory;

use crate::args::{Cli, CompletionArgs};

/// Runs the command.
pub fn execute(args: &CompletionArgs) {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "pipeline", &mut std::io::stdout());
}
