//! `pipeline report`: write the pipeline's HTML report and print where it is.

use crate::args::{Cli, PipelineArgs};
use crate::failure::Failure;
use crate::{page, report, session};

/// Runs the command.
pub fn execute(cli: &Cli, args: &PipelineArgs) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(args, &registry)?;
    let workspace = session::workspace(cli)?;
    let written = page::write(&workspace, &pipeline)
        .map_err(|e| Failure::environment("cannot write the report", &e))?;
    println!("{}", written.path.display());
    if cli.verbose {
        eprintln!("{}", describe(&written));
    }
    Ok(())
}

/// `report: PATH (SIZE, rendered in TIME)`.
pub fn describe(written: &page::Written) -> String {
    format!(
        "report {} ({}, written in {})",
        written.path.display(),
        report::size(written.bytes),
        report::duration(written.seconds)
    )
}
