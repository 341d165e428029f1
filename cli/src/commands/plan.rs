//! `pipeline plan` (alias `status`): what a run would do and why, without running anything.

use std::collections::BTreeSet;

use pipeline_engine::filehash::FileHasher;
use pipeline_engine::plan::{Planner, plan_all, select, stage_indices};
use pipeline_engine::state::PipelineState;

use crate::args::{Cli, PlanArgs};
use crate::config;
use crate::failure::Failure;
use crate::{report, session};

/// Runs the command.
pub fn execute(cli: &Cli, args: &PlanArgs) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(&args.pipeline, &registry)?;
    let workspace = session::workspace(cli)?;
    session::check_paths(&pipeline, &registry, &workspace)?;
    let selected = select(&pipeline, &args.stages).map_err(Failure::Input)?;
    let mut forced = BTreeSet::new();
    for name in &args.force {
        forced.extend(stage_indices(&pipeline, name).map_err(Failure::Input)?);
    }
    let hasher = FileHasher::load(workspace.file_hashes());
    let planner = Planner {
        workspace: &workspace,
        pipeline: &pipeline,
        registry: &registry,
        state: PipelineState::load(&workspace.state_file(&pipeline.name)),
        hasher: &hasher,
        cuda: session::cuda(args.executor.executor.or(config::load()?.executor)),
        forced,
    };
    let decisions = plan_all(&planner, &selected)?;
    hasher.save();
    print!("{}", report::plan(&pipeline, &decisions));
    Ok(())
}
