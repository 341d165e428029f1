//! The `pipeline` binary: parses the command line and hands each subcommand to its module.

mod args;
mod commands;
mod config;
mod executor;
mod failure;
mod logging;
mod page;
mod progress;
mod report;
mod results;
mod session;
mod signals;
mod slurm;

use clap::Parser;

use args::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    signals::install();
    let cancel = &signals::CANCEL;
    let result = match &cli.command {
        Command::Run(a) => commands::run::execute(&cli, a, cancel),
        Command::Plan(a) => commands::plan::execute(&cli, a),
        Command::Validate(a) => commands::validate::execute(&cli, a),
        Command::Kinds(a) => commands::kinds::execute(a),
        Command::Verify(a) => commands::verify::execute(&cli, a),
        Command::Gc(a) => commands::gc::execute(&cli, a),
        Command::Report(a) => commands::report::execute(&cli, a),
        Command::Show(a) => commands::show::execute(&cli, a),
        Command::Dag(a) => commands::dag::execute(a),
        Command::Bench(a) => commands::bench::execute(a),
        Command::Runs(a) => commands::runs::execute(&cli, a),
        Command::Diff(a) => commands::diff::execute(&cli, a),
        Command::Completions(a) => {
            commands::completions::execute(a);
            Ok(())
        }
    };
    if let Err(failure) = result {
        eprint!("{}", failure.render());
        std::process::exit(failure.exit_code());
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
