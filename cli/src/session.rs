//! What most commands start from: the workspace, the stage kinds this binary knows, and a
//! loaded pipeline file.

use std::path::PathBuf;

use pipeline_engine::Workspace;
use pipeline_engine::plan::Cuda;
use pipeline_engine::spec::{self, Pipeline};
use pipeline_engine::stage::{Registry, Runners};

use crate::args::{Cli, PipelineArgs};
use crate::config::ExecutorKind;
use crate::failure::Failure;

/// The declarations of every stage kind.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    pipeline_kinds::register(&mut registry);
    registry
}

/// The runners this binary has itself: the kinds that need no libtorch. Every other kind
/// runs in a `pipeline-worker` process.
pub fn runners() -> Runners {
    let mut runners = Runners::new();
    pipeline_kinds::register_runners(&mut runners);
    runners
}

/// The folder of the workspace the command works in (`--workspace`, else found from the
/// current folder), without opening it.
pub fn workspace_root(cli: &Cli) -> Result<std::path::PathBuf, Failure> {
    match &cli.workspace {
        Some(dir) => Ok(dir.clone()),
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| Failure::environment("cannot read the current folder", &e))?;
            Ok(Workspace::find_root(&cwd))
        }
    }
}

/// The workspace the command works in.
pub fn workspace(cli: &Cli) -> Result<Workspace, Failure> {
    let root = workspace_root(cli)?;
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
        return Err(Failure::Input(format!(
            "pipeline file {} does not exist",
            args.file.display()
        )));
    }
    Ok(spec::load(&args.file, &args.set, registry)?)
}

/// Refuses data files outside the workspace and the pipeline's `data_roots`.
pub fn check_paths(
    pipeline: &Pipeline,
    registry: &Registry,
    workspace: &Workspace,
) -> Result<(), Failure> {
    Ok(pipeline_engine::paths::check_data_paths(
        pipeline,
        registry,
        workspace.root(),
    )?)
}

/// The number of cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The worker binary that runs stages needing libtorch: `$PIPELINE_WORKER`, else
/// `pipeline-worker` next to this binary.
pub fn worker() -> Result<PathBuf, Failure> {
    if let Some(path) = std::env::var_os("PIPELINE_WORKER") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()
        .map_err(|e| Failure::environment("cannot find the pipeline binary", &e))?;
    let worker = exe.with_file_name("pipeline-worker");
    if worker.exists() {
        Ok(worker)
    } else {
        Err(Failure::Environment {
            message: format!("the stage worker {} is missing", worker.display()),
            hint: Some(
                "build it with `cargo build --release -p pipeline-stages` (scripts/setup.sh does)"
                    .into(),
            ),
            causes: Vec::new(),
        })
    }
}

/// Whether CUDA is usable: only asked of the worker (which links libtorch, 0.2 s to start)
/// on machines where the NVIDIA driver is loaded; everywhere else the answer is no.
pub fn cuda_available() -> bool {
    if !std::path::Path::new("/proc/driver/nvidia/version").exists() {
        return false;
    }
    let Ok(worker) = worker() else { return false };
    let output = std::process::Command::new(worker).arg("probe").output();
    let Ok(output) = output else { return false };
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .ok()
        .and_then(|v| v.get("cuda").and_then(serde_json::Value::as_bool))
        .unwrap_or(false)
}

/// Where the stages of a run on `executor` find CUDA: on this machine, or under Slurm in the
/// jobs of stages that ask for GPUs.
pub fn cuda(executor: Option<ExecutorKind>) -> Cuda {
    match executor.unwrap_or_default() {
        ExecutorKind::Local => Cuda::Here(cuda_available()),
        ExecutorKind::Slurm => Cuda::WhereRequested,
    }
}
