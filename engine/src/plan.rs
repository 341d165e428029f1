//! The planner: for one stage, given the outputs of its upstream stages, is it cached, must it
//! run (and why), or does it wait for an upstream stage that will run first?
//!
//! `pipeline plan` and `pipeline run` call the same [`Planner::decide`]: `plan` walks the
//! stages in order treating every stage that would run as pending, `run` asks again each
//! time a stage's inputs are all finished, when the key can be computed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use pipeline_cache::{ContentDigest, Manifest, StageKey, StoreError};

use crate::diff::{Change, diff};
use crate::filehash::{FileHasher, missing_file_digest};
use crate::key::{InputMaterial, KEY_FORMAT, KeyMaterial};
use crate::spec::{DeviceChoice, Pipeline, StageSpec};
use crate::stage::{Arity, Device, Registry};
use crate::state::{PipelineState, StageRecord};
use crate::workspace::Workspace;

/// Why a stage will run.
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    /// Nothing is recorded for this stage.
    NeverRun,
    /// Parameters differ from the last successful run.
    Params(Vec<Change>),
    /// The stage kind's version changed.
    Version {
        /// Before.
        old: u32,
        /// Now.
        new: u32,
    },
    /// The seed changed.
    Seed {
        /// Before.
        old: u64,
        /// Now.
        new: u64,
    },
    /// The device class changed.
    Device {
        /// Before.
        old: Device,
        /// Now.
        new: Device,
    },
    /// The outputs of an input changed.
    Input {
        /// The slot.
        slot: String,
        /// The upstream stages bound to it.
        stages: Vec<String>,
    },
    /// A file outside the store changed.
    File {
        /// The path as written.
        path: String,
    },
    /// An upstream stage runs first; this stage's key is known only after it finishes.
    Waiting {
        /// The upstream stages that will run.
        upstream: Vec<String>,
    },
    /// The user forced it.
    Forced,
    /// The key is unchanged but its outputs are no longer in the store.
    OutputsGone,
    /// The key differs in a way the record does not explain (an older record format).
    KeyChanged,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NeverRun => f.write_str("not run before"),
            Reason::Params(changes) => {
                let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
                f.write_str(&lines.join("; "))
            }
            Reason::Version { old, new } => write!(f, "stage kind version {old} -> {new}"),
            Reason::Seed { old, new } => write!(f, "seed: {old} -> {new}"),
            Reason::Device { old, new } => write!(f, "device: {old} -> {new}"),
            Reason::Input { slot, stages } => {
                write!(f, "input {slot} ({}) changed", stages.join(", "))
            }
            Reason::File { path } => write!(f, "file {path} changed"),
            Reason::Waiting { upstream } => {
                write!(
                    f,
                    "waits for {} (runs if its outputs change)",
                    upstream.join(", ")
                )
            }
            Reason::Forced => f.write_str("forced"),
            Reason::OutputsGone => f.write_str("its outputs are no longer in the store"),
            Reason::KeyChanged => f.write_str("its key changed"),
        }
    }
}

/// What the planner decided for a stage.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Outputs for its key are in the store.
    Cached {
        /// The key.
        key: StageKey,
        /// What the key covers.
        material: KeyMaterial,
        /// The stored outputs.
        manifest: Manifest,
    },
    /// It must run.
    Run {
        /// The key.
        key: StageKey,
        /// What the key covers.
        material: KeyMaterial,
        /// Why.
        reasons: Vec<Reason>,
    },
    /// It waits for upstream stages that will run (only while planning ahead).
    Pending {
        /// Why it may run.
        reasons: Vec<Reason>,
    },
    /// It cannot run here (e.g. it asks for CUDA on a machine without).
    Impossible {
        /// Why.
        message: String,
    },
}

impl Decision {
    /// Whether the stage would run (or may run).
    pub fn runs(&self) -> bool {
        !matches!(self, Decision::Cached { .. })
    }
}

/// Decides, stage by stage, what runs and why.
pub struct Planner<'a> {
    /// The workspace.
    pub workspace: &'a Workspace,
    /// The pipeline.
    pub pipeline: &'a Pipeline,
    /// The stage kinds.
    pub registry: &'a Registry,
    /// The last successful state.
    pub state: PipelineState,
    /// Digests of external files.
    pub hasher: &'a FileHasher,
    /// Where stages find a CUDA device.
    pub cuda: Cuda,
    /// Stages forced to run.
    pub forced: BTreeSet<usize>,
}

/// Whether the stages of a run can use a CUDA device, which decides the device class (part of
/// the key) of stages with `device: auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cuda {
    /// Every stage runs on this machine, which has a usable CUDA device or not.
    Here(bool),
    /// Each stage runs in a cluster job, which has a GPU exactly when the stage's
    /// `resources.gpus` asks for one (the machine that plans may have none).
    WhereRequested,
}

impl Cuda {
    /// Whether `stage` will have a CUDA device.
    pub fn usable_by(self, stage: &StageSpec) -> bool {
        match self {
            Cuda::Here(usable) => usable,
            Cuda::WhereRequested => stage.resources.wants_gpu(),
        }
    }
}

impl Planner<'_> {
    /// The device class a stage runs on.
    pub fn device(&self, stage: &StageSpec) -> Result<Device, String> {
        let usable = self.cuda.usable_by(stage);
        match stage.device {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda if usable => Ok(Device::Cuda),
            DeviceChoice::Cuda => Err(match self.cuda {
                Cuda::Here(_) => format!(
                    "stage `{}` asks for `device: cuda`, and no CUDA device is usable here \
                     (use `device: auto` to fall back to the CPU)",
                    stage.name
                ),
                Cuda::WhereRequested => format!(
                    "stage `{}` asks for `device: cuda` without a GPU for its job \
                     (add `resources: {{gpus: 1}}`)",
                    stage.name
                ),
            }),
            DeviceChoice::Auto => Ok(if usable { Device::Cuda } else { Device::Cpu }),
        }
    }

    /// The external files of a stage, resolved against the workspace.
    pub fn external_files(&self, stage: &StageSpec) -> Vec<PathBuf> {
        match self.registry.get(&stage.kind) {
            Some(kind) => kind.external_files(&stage.params),
            None => Vec::new(),
        }
    }

    /// The key material of stage `index`, given its upstream output digests (`None` while
    /// any upstream is unfinished).
    pub fn material(
        &self,
        index: usize,
        outputs: &[Option<ContentDigest>],
        device: Device,
    ) -> Option<KeyMaterial> {
        let stage = &self.pipeline.stages[index];
        let kind = self.registry.get(&stage.kind)?;
        let mut inputs = BTreeMap::new();
        for (slot, upstream) in &stage.inputs {
            let many = kind
                .inputs()
                .iter()
                .any(|s| s.name == slot && s.arity == Arity::Many);
            let mut list = Vec::with_capacity(upstream.len());
            for &u in upstream {
                let content = outputs[u]?;
                let name = many.then(|| self.pipeline.stages[u].name.clone());
                list.push(InputMaterial {
                    stage: name,
                    content,
                });
            }
            inputs.insert(slot.clone(), list);
        }
        let external = self
            .external_files(stage)
            .into_iter()
            .map(|path| {
                let full = self.workspace.root().join(&path);
                let digest = self
                    .hasher
                    .digest(&full)
                    .unwrap_or_else(|| missing_file_digest(&full));
                (path.display().to_string(), digest)
            })
            .collect();
        Some(KeyMaterial {
            format: KEY_FORMAT,
            kind: stage.kind.clone(),
            version: stage.version,
            params: stage.params.clone(),
            inputs,
            external,
            seed: stage.seed,
            device,
        })
    }

    /// Decides what happens to stage `index` given what is known of upstream outputs.
    pub fn decide(
        &self,
        index: usize,
        outputs: &[Option<ContentDigest>],
    ) -> Result<Decision, StoreError> {
        let stage = &self.pipeline.stages[index];
        let device = match self.device(stage) {
            Ok(d) => d,
            Err(message) => return Ok(Decision::Impossible { message }),
        };
        let Some(material) = self.material(index, outputs, device) else {
            let own = self.own_changes(stage);
            if own == [Reason::NeverRun] {
                return Ok(Decision::Pending { reasons: own });
            }
            let upstream = self.pending_upstream(index, outputs);
            let mut reasons = vec![Reason::Waiting { upstream }];
            reasons.extend(own);
            return Ok(Decision::Pending { reasons });
        };
        let key = material.key();
        if self.forced.contains(&index) {
            return Ok(Decision::Run {
                key,
                material,
                reasons: vec![Reason::Forced],
            });
        }
        let store = self.workspace.store();
        if let Some(manifest) = store.manifest(&key)? {
            match store.check_present(&manifest) {
                Ok(()) => {
                    return Ok(Decision::Cached {
                        key,
                        material,
                        manifest,
                    });
                }
                Err(e) => {
                    tracing::warn!(stage = %stage.name, error = %e, "cached outputs incomplete")
                }
            }
        }
        let reasons = self.explain(stage, &key, &material);
        Ok(Decision::Run {
            key,
            material,
            reasons,
        })
    }

    fn pending_upstream(&self, index: usize, outputs: &[Option<ContentDigest>]) -> Vec<String> {
        let mut names: Vec<String> = self.pipeline.stages[index]
            .inputs
            .values()
            .flatten()
            .filter(|&&u| outputs[u].is_none())
            .map(|&u| self.pipeline.stages[u].name.clone())
            .collect();
        names.dedup();
        names
    }

    /// Changes of the stage's own settings (not its inputs) since its last success.
    fn own_changes(&self, stage: &StageSpec) -> Vec<Reason> {
        let Some(prev) = self.state.stages.get(&stage.name) else {
            return vec![Reason::NeverRun];
        };
        let mut reasons = Vec::new();
        let m = &prev.material;
        if m.version != stage.version {
            reasons.push(Reason::Version {
                old: m.version,
                new: stage.version,
            });
        }
        let changes = diff(&stage.name, &m.params, &stage.params);
        if !changes.is_empty() {
            reasons.push(Reason::Params(changes));
        }
        if m.seed != stage.seed {
            reasons.push(Reason::Seed {
                old: m.seed,
                new: stage.seed,
            });
        }
        reasons
    }

    /// Why a stage whose key has no outputs must run, as the smallest difference from its
    /// last successful run.
    pub fn explain(
        &self,
        stage: &StageSpec,
        key: &StageKey,
        material: &KeyMaterial,
    ) -> Vec<Reason> {
        let Some(prev) = self.state.stages.get(&stage.name) else {
            return vec![Reason::NeverRun];
        };
        if prev.key == *key {
            return vec![Reason::OutputsGone];
        }
        let mut reasons = self.own_changes(stage);
        if prev.material.device != material.device {
            reasons.push(Reason::Device {
                old: prev.material.device,
                new: material.device,
            });
        }
        reasons.extend(input_changes(
            self.pipeline,
            stage,
            &prev.material,
            material,
        ));
        for (path, digest) in &material.external {
            if prev.material.external.get(path) != Some(digest) {
                reasons.push(Reason::File { path: path.clone() });
            }
        }
        if reasons.is_empty() {
            reasons.push(Reason::KeyChanged);
        }
        reasons
    }

    /// A record of a stage that succeeded, for the state file.
    pub fn record(key: StageKey, material: KeyMaterial, manifest: &Manifest) -> StageRecord {
        StageRecord {
            key,
            material,
            outputs: manifest.tree_digest(),
            stamps: Default::default(),
        }
    }
}

fn input_changes(
    pipeline: &Pipeline,
    stage: &StageSpec,
    old: &KeyMaterial,
    new: &KeyMaterial,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    for (slot, list) in &new.inputs {
        if old.inputs.get(slot) != Some(list) {
            let stages = stage.inputs[slot]
                .iter()
                .map(|&u| pipeline.stages[u].name.clone())
                .collect();
            reasons.push(Reason::Input {
                slot: slot.clone(),
                stages,
            });
        }
    }
    reasons
}

/// Plans the whole pipeline without running anything: cached stages pass their outputs on,
/// and everything downstream of a stage that runs is pending.
pub fn plan_all(
    planner: &Planner<'_>,
    selected: &[bool],
) -> Result<Vec<Option<Decision>>, StoreError> {
    let n = planner.pipeline.stages.len();
    let mut outputs: Vec<Option<ContentDigest>> = vec![None; n];
    let mut decisions = Vec::with_capacity(n);
    for i in 0..n {
        if !selected[i] {
            decisions.push(None);
            continue;
        }
        let decision = planner.decide(i, &outputs)?;
        if let Decision::Cached { manifest, .. } = &decision {
            outputs[i] = Some(manifest.tree_digest());
        }
        decisions.push(Some(decision));
    }
    Ok(decisions)
}

/// Which stages a run covers: all, or the named stages and everything upstream of them.
/// Names may be full names (`train[width=4]`) or declaration names (`train`: every member).
pub fn select(pipeline: &Pipeline, targets: &[String]) -> Result<Vec<bool>, String> {
    let n = pipeline.stages.len();
    if targets.is_empty() {
        return Ok(vec![true; n]);
    }
    let mut selected = vec![false; n];
    let mut stack = Vec::new();
    for target in targets {
        let found = stage_indices(pipeline, target)?;
        stack.extend(found);
    }
    while let Some(i) = stack.pop() {
        if !selected[i] {
            selected[i] = true;
            stack.extend(pipeline.stages[i].inputs.values().flatten().copied());
        }
    }
    Ok(selected)
}

/// The stages a name refers to: one full name, or all members of a declaration.
pub fn stage_indices(pipeline: &Pipeline, name: &str) -> Result<Vec<usize>, String> {
    let found: Vec<usize> = (0..pipeline.stages.len())
        .filter(|&i| pipeline.stages[i].name == name || pipeline.stages[i].base == name)
        .collect();
    if found.is_empty() {
        let mut names: Vec<&str> = pipeline.stages.iter().map(|s| s.base.as_str()).collect();
        names.dedup();
        let hint = crate::suggest::nearest(name, names.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        return Err(format!(
            "pipeline `{}` has no stage `{name}`{hint}",
            pipeline.name
        ));
    }
    Ok(found)
}
