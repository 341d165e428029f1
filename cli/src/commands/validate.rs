//! `pipeline validate`: check a pipeline file without touching data or the store: its
//! syntax, names, kinds, parameters, inputs and cycles, and that the data files it names lie
//! where stages may read (as `run` and `plan` check).

use crate::args::{Cli, PipelineArgs};
use crate::failure::Failure;
use crate::session;

/// Runs the command.
pub fn execute(cli: &Cli, args: &PipelineArgs) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(args, &registry)?;
    let root = session::workspace_root(cli)?;
    pipeline_engine::paths::check_data_paths(&pipeline, &registry, &root)?;
    let declarations: std::collections::BTreeSet<&str> =
        pipeline.stages.iter().map(|s| s.base.as_str()).collect();
    println!(
        "{}: valid, {} stages from {} declarations",
        args.file.display(),
        pipeline.stages.len(),
        declarations.len()
    );
    Ok(())
}
