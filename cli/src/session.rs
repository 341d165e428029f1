//! What most commands start from: the workspace, the stage kinds this binary knows, and a
//! loaded pipeline file.

use std::path::PathBuf;

use pipeline_engine::Workspace;
use pipeline_engine::spec::{self, Pipeline};
use pipeline_engine::stage::Registry;

use crate::args::{Cli, PipelineArgs};
use crate::failure::Failure;

/// The stage kinds of this binary.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    pipeline_stages::register(&mut registry);
    registry
}

/// The workspace the command works in.
pub fn workspace(cli: &Cli) -> Result<Workspace, Failure> {
    let root = match &cli.workspace {
        Some(dir) => dir.clone(),
        None => {
            let cwd = std::env::current_dir().map_err(|e| Failure::environment("cannot read the current folder", &e))?;
            Workspace::find_root(&cwd)
        }
    };
    Workspace::open(&root, cli.store.as_deref()).map_err(|e| {
        let mut f = Failure::from(e);
        if let Failure::Environment { hint, .. } = &mut f {
            hint.get_or_insert_with(|| format!("the workspace is {}", root.display()));
        }
        f
    })
}

/// Reads and checks a pipeline file with its overrides.
pub fn pipeline(args: &PipelineArgs, registry: &Registry) -> Result<Pipeline, Failure> {
    if !args.file.exists() {
        return Err(Failure::Input(format!("pipeline file {} does not exist", args.file.display())));
    }
    Ok(spec::load(&args.file, &args.set, registry)?)
}

/// The number of cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// This binary's path, for child processes.
pub fn current_exe() -> Result<PathBuf, Failure> {
    std::env::current_exe().map_err(|e| Failure::environment("cannot find the pipeline binary", &e))
}

/// Whether CUDA is usable in this process.
pub fn cuda_available() -> bool {
    tch::Cuda::is_available()
}
