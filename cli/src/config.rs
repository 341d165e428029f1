//! The user's configuration file: where `pipeline run` executes stages, and how it submits
//! them to Slurm (partition, account, default resources).
//!
//! These settings belong to a machine and a person, not to an experiment: the same pipeline
//! file runs on a laptop and on a cluster, so they live here rather than in the pipeline
//! file. The file is `$PIPELINE_CONFIG`, else `$XDG_CONFIG_HOME/pipeline/config.yaml`
//! (`~/.config/pipeline/config.yaml`); a missing file means the defaults (local execution).
//! Command-line flags override it. It is read with the pipeline files' YAML reader, so its
//! errors name the file, line, column and key, and unknown keys are errors.
//!
//! ```yaml
//! executor: slurm
//! slurm:
//!   partition: gpu
//!   account: lab42
//!   resources: {time: 2h, memory: 8G}
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pipeline_engine::spec::yaml::{self, Node, Source};
use pipeline_engine::spec::{Resources, SpecError, SpecErrors, resources};
use serde::Deserialize;

use crate::failure::Failure;

/// Where stages run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// On this machine, in worker processes.
    #[default]
    Local,
    /// One Slurm batch job per stage.
    Slurm,
}

/// How stages are submitted to Slurm.
#[derive(Clone, Debug, PartialEq)]
pub struct SlurmConfig {
    /// `--partition`, if not the cluster's default.
    pub partition: Option<String>,
    /// `--account`, if not the user's default.
    pub account: Option<String>,
    /// `--qos`, if not the default.
    pub qos: Option<String>,
    /// More `sbatch` arguments, passed as given (`--constraint=a100`).
    pub sbatch_args: Vec<String>,
    /// Most jobs submitted and not finished at once.
    pub max_jobs: usize,
    /// How often the queue is asked for the state of the jobs.
    pub poll: Duration,
    /// The worker binary as the compute nodes see it (default: `pipeline-worker` next to
    /// `pipeline`, which must then be on a shared file system).
    pub worker: Option<PathBuf>,
    /// Resources of stages that leave them out.
    pub resources: Resources,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            partition: None,
            account: None,
            qos: None,
            sbatch_args: Vec::new(),
            max_jobs: 64,
            poll: Duration::from_secs(2),
            worker: None,
            resources: Resources::default(),
        }
    }
}

/// The configuration file's contents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// The executor when the command line names none.
    pub executor: Option<ExecutorKind>,
    /// Slurm settings.
    pub slurm: SlurmConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    executor: Option<ExecutorKind>,
    slurm: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlurm {
    partition: Option<String>,
    account: Option<String>,
    qos: Option<String>,
    sbatch_args: Option<Vec<String>>,
    max_jobs: Option<usize>,
    poll: Option<String>,
    worker: Option<PathBuf>,
    /// Read from the node by `resources::read_plain`, which knows the units.
    #[serde(rename = "resources")]
    _resources: Option<serde::de::IgnoredAny>,
}

/// Where the configuration file is looked for.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PIPELINE_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("pipeline").join("config.yaml"))
}

/// Reads the configuration file; defaults if there is none.
pub fn load() -> Result<Config, Failure> {
    let Some(path) = path() else {
        return Ok(Config::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var_os("PIPELINE_CONFIG").is_some() {
                return Err(Failure::Input(format!(
                    "the configuration file {} (PIPELINE_CONFIG) does not exist",
                    path.display()
                )));
            }
            return Ok(Config::default());
        }
        Err(e) => {
            return Err(Failure::environment(
                format!("cannot read the configuration file {}", path.display()),
                &e,
            ));
        }
    };
    Ok(parse(&path, &text)?)
}

/// Reads configuration text as if from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, SpecErrors> {
    let source = Arc::new(Source {
        name: path.display().to_string(),
        text: text.to_owned(),
    });
    let root = yaml::parse(&source).map_err(SpecError::from_syntax)?;
    if matches!(root.value, yaml::Value::Null) {
        return Ok(Config::default());
    }
    let raw: RawConfig = yaml::from_node(&root).map_err(|e| SpecError::from_de(e, ""))?;
    let slurm = match root.get("slurm") {
        // `slurm:` with nothing under it reads as absent.
        Some(node) if raw.slurm.is_some() => slurm(node)?,
        _ => SlurmConfig::default(),
    };
    Ok(Config {
        executor: raw.executor,
        slurm,
    })
}

fn slurm(node: &Node) -> Result<SlurmConfig, SpecErrors> {
    let raw: RawSlurm = yaml::from_node(node).map_err(|e| SpecError::from_de(e, "slurm"))?;
    let defaults = SlurmConfig::default();
    let poll = match (raw.poll, node.get("poll")) {
        (Some(text), Some(at)) => {
            let seconds = resources::seconds(text.trim())
                .map_err(|why| SpecError::new(why, Some(&at.span), "slurm.poll"))?;
            Duration::from_secs(seconds)
        }
        _ => defaults.poll,
    };
    if raw.max_jobs == Some(0) {
        let at = node.get("max_jobs").map(|n| &n.span);
        return Err(SpecError::new("expected at least 1, found 0", at, "slurm.max_jobs").into());
    }
    let resources = match node.get("resources") {
        Some(r) => resources::read_plain(r, "slurm.resources")?,
        None => Resources::default(),
    };
    Ok(SlurmConfig {
        partition: raw.partition,
        account: raw.account,
        qos: raw.qos,
        sbatch_args: raw.sbatch_args.unwrap_or_default(),
        max_jobs: raw.max_jobs.unwrap_or(defaults.max_jobs),
        poll,
        worker: raw.worker,
        resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        match parse(Path::new("config.yaml"), text) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.render(),
        }
    }

    #[test]
    fn a_full_configuration_is_read() {
        let text = "executor: slurm\nslurm:\n  partition: gpu\n  account: lab42\n  qos: short\n  \
                    sbatch_args: ['--constraint=a100']\n  max_jobs: 8\n  poll: 10s\n  \
                    worker: /shared/bin/pipeline-worker\n  resources: {time: 2h, memory: 8G}\n";
        let config = parse(Path::new("config.yaml"), text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config.executor, Some(ExecutorKind::Slurm));
        let s = &config.slurm;
        assert_eq!(s.partition.as_deref(), Some("gpu"));
        assert_eq!(s.account.as_deref(), Some("lab42"));
        assert_eq!(s.qos.as_deref(), Some("short"));
        assert_eq!(s.sbatch_args, ["--constraint=a100"]);
        assert_eq!(s.max_jobs, 8);
        assert_eq!(s.poll, Duration::from_secs(10));
        assert_eq!(
            s.worker.as_deref(),
            Some(Path::new("/shared/bin/pipeline-worker"))
        );
        assert_eq!(s.resources.time_seconds, Some(7200));
        assert_eq!(s.resources.memory_mib, Some(8192));
    }

    #[test]
    fn an_empty_file_means_the_defaults() {
        let config = parse(Path::new("config.yaml"), "").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config, Config::default());
    }

    #[test]
    fn mistakes_are_located() {
        let msg = parse_err("executor: slurm\nslurm:\n  partiton: gpu\n");
        assert!(msg.contains("unknown"), "{msg}");
        assert!(msg.contains("did you mean `partition`?"), "{msg}");
        assert!(msg.contains("config.yaml:3:3"), "{msg}");
        let msg = parse_err("executor: pbs\n");
        assert!(msg.contains("local") && msg.contains("slurm"), "{msg}");
        let msg = parse_err("slurm:\n  resources: {memory: 8}\n");
        assert!(
            msg.contains("no unit") && msg.contains("slurm.resources.memory"),
            "{msg}"
        );
        let msg = parse_err("slurm:\n  poll: soon\n");
        assert!(msg.contains("slurm.poll"), "{msg}");
    }
}
