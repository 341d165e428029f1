//! Pipeline files: from YAML text to a checked [`Pipeline`] that holds every expanded stage
//! with canonical parameters and resolved inputs.
//!
//! The phases, in order: parse into a located tree ([`yaml`]), apply `--set` overrides
//! ([`overrides`]), resolve variables ([`vars`]), expand matrices ([`matrix`]), then check
//! names, kinds, parameters and inputs and order the stages ([`resolve`]). Nothing here reads
//! data files or touches a device; that happens when stages run.

pub mod error;
pub mod matrix;
pub mod overrides;
pub mod resolve;
pub mod resources;
pub mod vars;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use error::{SpecError, SpecErrors};
pub use resources::Resources;
use yaml::Span;

use crate::stage::Registry;

/// Where a stage asks to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when a GPU is available, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// A CUDA GPU (an error where there is none).
    Cuda,
}

/// One stage after expansion and checking.
#[derive(Clone, Debug)]
pub struct StageSpec {
    /// The full name, `train[width=4]` for a matrix member.
    pub name: String,
    /// The name of the declaration it came from (`train`).
    pub base: String,
    /// Matrix axis names and value labels, in declaration order (empty outside a matrix).
    pub matrix: Vec<(String, String)>,
    /// The stage kind.
    pub kind: String,
    /// The kind's version.
    pub version: u32,
    /// Canonical parameters: every default filled in, keys sorted.
    pub params: serde_json::Value,
    /// Input slot to the indices (into [`Pipeline::stages`]) of the upstream stages.
    pub inputs: BTreeMap<String, Vec<usize>>,
    /// The seed.
    pub seed: u64,
    /// Where it asks to run.
    pub device: DeviceChoice,
    /// Intra-op threads it asks for, if it says.
    pub threads: Option<usize>,
    /// What it asks of a cluster scheduler (`resources:`); not part of the key.
    pub resources: Resources,
    /// A line of description from the file.
    pub description: Option<String>,
    /// Where the stage is declared.
    pub span: Span,
}

impl StageSpec {
    /// The intra-op threads the stage runs with: its `threads:`, else the CPUs its
    /// `resources:` ask for (a job should use what it is granted), else the run's default.
    pub fn threads_or(&self, default: usize) -> usize {
        self.threads
            .or(self.resources.cpus)
            .unwrap_or(default)
            .max(1)
    }

    /// The output folder below the pipeline's folder: `train/width=4` (nested per axis, in
    /// the `key=value` style that pandas, polars and DuckDB read as partition columns).
    pub fn folder(&self) -> PathBuf {
        let mut path = PathBuf::from(&self.base);
        for (axis, label) in &self.matrix {
            path.push(format!("{axis}={label}"));
        }
        path
    }
}

/// A checked pipeline.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// Its name (the `name:` key, else the file's stem).
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// A description from the file.
    pub description: Option<String>,
    /// Every stage, in an order where inputs come before the stages that read them.
    pub stages: Vec<StageSpec>,
    /// The overrides applied, as given.
    pub overrides: Vec<String>,
    /// Folders outside the workspace that stages may read data from (`data_roots:`).
    pub data_roots: Vec<PathBuf>,
}

impl Pipeline {
    /// The index of the stage with this full name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// The indices of the stages that read the outputs of `stage`.
    pub fn dependents(&self, stage: usize) -> Vec<usize> {
        (0..self.stages.len())
            .filter(|&i| self.stages[i].inputs.values().any(|v| v.contains(&stage)))
            .collect()
    }
}

/// Reads, checks and expands a pipeline file with overrides.
pub fn load(
    path: &Path,
    overrides: &[String],
    registry: &Registry,
) -> Result<Pipeline, SpecErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(
            format!("cannot read pipeline file {}: {e}", path.display()),
            None,
            "",
        )
    })?;
    parse_str(path, &text, overrides, registry)
}

/// Checks and expands pipeline text as if read from `path`.
pub fn parse_str(
    path: &Path,
    text: &str,
    overrides: &[String],
    registry: &Registry,
) -> Result<Pipeline, SpecErrors> {
    let source = Arc::new(yaml::Source {
        name: path.display().to_string(),
        text: text.to_owned(),
    });
    let mut root = yaml::parse(&source).map_err(SpecError::from_syntax)?;
    overrides::apply(&mut root, overrides)?;
    let mut pipeline = resolve::resolve(&root, path, registry)?;
    pipeline.overrides = overrides.to_vec();
    Ok(pipeline)
}
