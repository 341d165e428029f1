//! `pipeline validate`: check a pipeline file without touching data or the store.

use crate::args::PipelineArgs;
use crate::failure::Failure;
use crate::session;

/// Runs the command.
pub fn execute(args: &PipelineArgs) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(args, &registry)?;
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
