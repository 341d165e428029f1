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
        "{}: valid, {} from {}",
        args.file.display(),
        count(pipeline.stages.len(), "stage"),
        count(declarations.len(), "declaration")
    );
    Ok(())
}

/// `n` things, singular for one: `1 stage`, `3 stages`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}
