//! What is submitted for one attempt at a stage: a batch script that runs the project's
//! worker binary on the job file, and the `sbatch` arguments that ask for the stage's
//! resources.
//!
//! The job's stdout (the worker's JSON lines: progress events and, on failure, the error) and
//! stderr (its logs) go to files beside the job file, in the stage's staging folder on the
//! shared store, where the controller reads them while the job runs. After the worker exits,
//! the script writes its exit code to a file by an atomic rename: the controller sees a
//! finished job at once, without waiting for the next look at the queue, and knows its exit
//! code even where Slurm keeps no accounting.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use pipeline_engine::job::StageJob;
use pipeline_engine::spec::Resources;

use crate::config::SlurmConfig;

/// The files of one attempt, in the stage's staging folder.
#[derive(Clone, Debug)]
pub struct AttemptFiles {
    /// The batch script.
    pub script: PathBuf,
    /// The job's stdout: the worker's messages.
    pub stdout: PathBuf,
    /// The job's stderr: the worker's logs.
    pub stderr: PathBuf,
    /// The worker's exit code, written when it has exited.
    pub exit: PathBuf,
}

impl AttemptFiles {
    /// The files of attempt `n` in `dir`.
    pub fn new(dir: &Path, n: u32) -> Self {
        Self {
            script: dir.join(format!("slurm-{n}.sh")),
            stdout: dir.join(format!("slurm-{n}.out")),
            stderr: dir.join(format!("slurm-{n}.err")),
            exit: dir.join(format!("slurm-{n}.exit")),
        }
    }
}

/// Everything one submission is made of.
pub struct Submission<'a> {
    /// The stages' jobs: one, or a batch that the worker computes together.
    pub jobs: &'a [StageJob],
    /// `exec-stage` for one job, `exec-batch` for a batch.
    pub subcommand: &'a str,
    /// The job (or batch) file the worker reads.
    pub job_file: &'a Path,
    /// The worker binary, as the nodes see it.
    pub worker: &'a Path,
    /// This attempt's files.
    pub files: &'a AttemptFiles,
    /// Partition, account and defaults.
    pub config: &'a SlurmConfig,
    /// The worker's environment (threads, logs, malloc settings).
    pub env: &'a [(&'static str, String)],
}

impl Submission<'_> {
    /// The resources of the stages (the most any of them asks for, in a batch), with the
    /// configuration's defaults for what they leave out.
    pub fn resources(&self) -> Resources {
        self.jobs
            .iter()
            .map(|j| j.resources)
            .fold(Resources::default(), Resources::max)
            .or(self.config.resources)
    }

    /// The Slurm job's name: `PIPELINE/STAGE`, with `+N` for the other stages of a batch.
    pub fn name(&self) -> String {
        let Some(first) = self.jobs.first() else {
            return String::new();
        };
        match self.jobs.len() {
            1 => format!("{}/{}", first.pipeline, first.stage),
            n => format!("{}/{}+{}", first.pipeline, first.stage, n - 1),
        }
    }

    /// The batch script.
    pub fn script(&self) -> String {
        let mut s = String::from("#!/bin/sh\n");
        let _ = writeln!(s, "# {}, submitted by `pipeline run`.", self.name());
        for (var, value) in self.env {
            let _ = writeln!(s, "export {var}={}", quote(value));
        }
        let exit = self.files.exit.display().to_string();
        let _ = writeln!(
            s,
            "{} {} --job {}",
            quote(&self.worker.display().to_string()),
            self.subcommand,
            quote(&self.job_file.display().to_string())
        );
        let _ = writeln!(s, "code=$?");
        let _ = writeln!(
            s,
            "echo \"$code\" > {} && mv {} {}",
            quote(&format!("{exit}.tmp")),
            quote(&format!("{exit}.tmp")),
            quote(&exit)
        );
        let _ = writeln!(s, "exit \"$code\"");
        s
    }

    /// The arguments of `sbatch`, the script last.
    pub fn sbatch_args(&self) -> Vec<String> {
        let r = self.resources();
        let threads = self.jobs.first().map_or(1, |j| j.threads);
        let cpus = r.cpus.unwrap_or(threads).max(1);
        let mut args = vec![
            "--parsable".to_owned(),
            format!("--job-name={}", self.name()),
            format!("--output={}", self.files.stdout.display()),
            format!("--error={}", self.files.stderr.display()),
        ];
        if let Some(first) = self.jobs.first() {
            args.push(format!("--chdir={}", first.workspace.display()));
        }
        args.extend([
            // A job the cluster takes away ends; the controller submits it again itself,
            // with a fresh output folder, so that every attempt is seen and counted.
            "--no-requeue".to_owned(),
            "--nodes=1".to_owned(),
            "--ntasks=1".to_owned(),
            format!("--cpus-per-task={cpus}"),
        ]);
        if let Some(mib) = r.memory_mib {
            args.push(format!("--mem={mib}M"));
        }
        if let Some(gpus) = r.gpus.filter(|&g| g > 0) {
            args.push(format!("--gres=gpu:{gpus}"));
        }
        if let Some(seconds) = r.time_seconds {
            args.push(format!("--time={}", slurm_time(seconds)));
        }
        for (flag, value) in [
            ("--partition", &self.config.partition),
            ("--account", &self.config.account),
            ("--qos", &self.config.qos),
        ] {
            if let Some(v) = value {
                args.push(format!("{flag}={v}"));
            }
        }
        args.extend(self.config.sbatch_args.iter().cloned());
        args.push(self.files.script.display().to_string());
        args
    }
}

/// Seconds as Slurm's `D-HH:MM:SS`.
pub fn slurm_time(seconds: u64) -> String {
    let (d, rest) = (seconds / 86_400, seconds % 86_400);
    format!(
        "{d}-{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A word for sh: single-quoted, with quotes inside escaped.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use pipeline_engine::stage::{Device, StageInputs};

    use super::*;

    fn job(resources: Resources) -> StageJob {
        StageJob {
            pipeline: "sweep".into(),
            stage: "fit[width=4]".into(),
            kind: "train".into(),
            params: serde_json::json!({}),
            inputs: StageInputs::default(),
            out_dir: PathBuf::from("/shared/store/staging/x/out"),
            resume_dir: PathBuf::from("/shared/store/resume/k"),
            workspace: PathBuf::from("/shared/ws"),
            seed: 0,
            threads: 2,
            device: Device::Cpu,
            resources,
        }
    }

    #[test]
    fn resources_and_configuration_become_sbatch_arguments() {
        let job = job(Resources {
            gpus: Some(1),
            time_seconds: Some(93_784),
            ..Resources::default()
        });
        let files = AttemptFiles::new(Path::new("/shared/store/staging/x"), 2);
        let config = SlurmConfig {
            partition: Some("gpu".into()),
            account: Some("lab42".into()),
            sbatch_args: vec!["--constraint=a100".into()],
            resources: Resources {
                memory_mib: Some(8192),
                time_seconds: Some(60),
                ..Resources::default()
            },
            ..SlurmConfig::default()
        };
        let s = Submission {
            jobs: std::slice::from_ref(&job),
            subcommand: "exec-stage",
            job_file: Path::new("/shared/store/staging/x/job.json"),
            worker: Path::new("/opt/pipeline/pipeline-worker"),
            files: &files,
            config: &config,
            env: &[],
        };
        let args = s.sbatch_args();
        for expected in [
            "--parsable",
            "--job-name=sweep/fit[width=4]",
            "--output=/shared/store/staging/x/slurm-2.out",
            "--error=/shared/store/staging/x/slurm-2.err",
            "--chdir=/shared/ws",
            "--no-requeue",
            "--cpus-per-task=2",
            "--mem=8192M",
            "--gres=gpu:1",
            "--time=1-02:03:04",
            "--partition=gpu",
            "--account=lab42",
            "--constraint=a100",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
        assert_eq!(
            args.last().map(String::as_str),
            Some("/shared/store/staging/x/slurm-2.sh")
        );
        assert!(!args.iter().any(|a| a.starts_with("--qos")));
    }

    #[test]
    fn the_script_runs_the_worker_and_records_its_exit_code() {
        let job = job(Resources::default());
        let files = AttemptFiles::new(Path::new("/st/it's"), 1);
        let config = SlurmConfig::default();
        let env = [("OMP_NUM_THREADS", "2".to_owned())];
        let s = Submission {
            jobs: std::slice::from_ref(&job),
            subcommand: "exec-stage",
            job_file: Path::new("/st/it's/job.json"),
            worker: Path::new("/bin/pipeline-worker"),
            files: &files,
            config: &config,
            env: &env,
        };
        let script = s.script();
        assert!(script.starts_with("#!/bin/sh\n"), "{script}");
        assert!(script.contains("export OMP_NUM_THREADS='2'\n"), "{script}");
        assert!(
            script.contains("'/bin/pipeline-worker' exec-stage --job '/st/it'\\''s/job.json'\n"),
            "{script}"
        );
        assert!(
            script.contains("mv '/st/it'\\''s/slurm-1.exit.tmp' '/st/it'\\''s/slurm-1.exit'"),
            "{script}"
        );
        assert!(
            s.sbatch_args().contains(&"--cpus-per-task=2".to_owned()),
            "a job gets a CPU per thread"
        );
    }

    #[test]
    fn a_batch_is_one_job_asking_for_the_most_any_stage_asks_for() {
        let mut a = job(Resources {
            memory_mib: Some(512),
            ..Resources::default()
        });
        let mut b = job(Resources {
            memory_mib: Some(2048),
            time_seconds: Some(60),
            ..Resources::default()
        });
        a.stage = "fit[seed=0]".into();
        b.stage = "fit[seed=1]".into();
        let jobs = [a, b];
        let files = AttemptFiles::new(Path::new("/st"), 1);
        let config = SlurmConfig::default();
        let s = Submission {
            jobs: &jobs,
            subcommand: "exec-batch",
            job_file: Path::new("/st/batch.json"),
            worker: Path::new("/bin/pipeline-worker"),
            files: &files,
            config: &config,
            env: &[],
        };
        let args = s.sbatch_args();
        for expected in [
            "--job-name=sweep/fit[seed=0]+1",
            "--mem=2048M",
            "--time=0-00:01:00",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
        assert!(
            s.script().contains("exec-batch --job '/st/batch.json'"),
            "{}",
            s.script()
        );
    }

    #[test]
    fn time_limits_are_written_as_slurm_reads_them() {
        assert_eq!(slurm_time(90), "0-00:01:30");
        assert_eq!(slurm_time(7200), "0-02:00:00");
        assert_eq!(slurm_time(86_400 * 3 + 59), "3-00:00:59");
    }
}
