//! Keeping `outputs/<pipeline>/<stage>/` in step with the store: a folder is rewritten only
//! when its stage's key changed or someone touched the files, and each folder carries a
//! `_stage.json` that says what produced it.

use std::collections::BTreeMap;

use pipeline_cache::materialize::{Stamps, is_intact, materialize};
use pipeline_cache::{Manifest, StageKey, StoreError};
use serde::Serialize;

use crate::key::KeyMaterial;
use crate::spec::{Pipeline, StageSpec};
use crate::state::StageRecord;
use crate::workspace::Workspace;

/// The `_stage.json` written beside a stage's outputs.
#[derive(Serialize)]
struct StageInfo<'a> {
    pipeline: &'a str,
    stage: &'a str,
    kind: &'a str,
    version: u32,
    key: String,
    outputs_digest: String,
    seed: u64,
    device: String,
    params: &'a serde_json::Value,
    inputs: BTreeMap<&'a str, Vec<&'a str>>,
}

/// Makes the stage's output folder hold `manifest`'s files; returns their stamps.
pub fn ensure(
    workspace: &Workspace,
    pipeline: &Pipeline,
    stage: &StageSpec,
    key: &StageKey,
    material: &KeyMaterial,
    manifest: &Manifest,
    previous: Option<&StageRecord>,
) -> Result<Stamps, StoreError> {
    let dest = workspace.output_dir(&pipeline.name, stage);
    if let Some(prev) = previous
        && prev.key == *key
        && is_intact(&dest, &prev.stamps)
    {
        return Ok(prev.stamps.clone());
    }
    let info = StageInfo {
        pipeline: &pipeline.name,
        stage: &stage.name,
        kind: &stage.kind,
        version: stage.version,
        key: key.to_string(),
        outputs_digest: manifest.tree_digest().to_string(),
        seed: stage.seed,
        device: material.device.to_string(),
        params: &stage.params,
        inputs: stage
            .inputs
            .iter()
            .map(|(slot, ups)| {
                (
                    slot.as_str(),
                    ups.iter()
                        .map(|&u| pipeline.stages[u].name.as_str())
                        .collect(),
                )
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&info).unwrap_or_default();
    tracing::debug!(stage = %stage.name, dest = %dest.display(), "materializing outputs");
    materialize(
        workspace.store(),
        manifest,
        &[("_stage.json", &json)],
        &dest,
    )
}
