//! Slurm's client commands (`sbatch`, `squeue`, `scancel`, `sinfo`), run as processes, with
//! their failures turned into errors that say what to do.
//!
//! Slurm has no stable library interface across versions, and its commands are what every
//! login node has and what users know; `--parsable` and `--format` make their output stable
//! enough to read. `SLURM_CONF` and the rest of the environment pass through.

use std::process::{Command, Stdio};

use pipeline_engine::stage::{ErrorClass, StageError};

use super::state::{self, JobState};

/// Why a command gave no answer.
#[derive(Debug)]
pub enum CommandError {
    /// The program is not installed or not on `PATH`.
    Missing(&'static str),
    /// It ran and failed; its stderr says why.
    Failed {
        /// The program.
        program: &'static str,
        /// Its stderr (or stdout when stderr is empty), trimmed.
        output: String,
    },
    /// It could not be started for another reason.
    Io(&'static str, std::io::Error),
}

impl CommandError {
    /// As a stage's error.
    pub fn into_stage_error(self) -> StageError {
        match self {
            CommandError::Missing(program) => StageError::environment(format!(
                "`{program}` is not installed here (or not on PATH): submitting stages to \
                 Slurm needs its client commands; run on a login node of the cluster, or use \
                 `--executor local`"
            )),
            CommandError::Failed { program, output } => {
                let mut e = StageError::environment(format!("`{program}` failed"));
                e.causes.extend(output.lines().map(str::to_owned));
                e
            }
            CommandError::Io(program, err) => {
                StageError::environment(format!("cannot run `{program}`")).caused_by(&err)
            }
        }
    }
}

/// Runs `program` with `args`; its stdout on success.
pub fn run(program: &'static str, args: &[String]) -> Result<String, CommandError> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CommandError::Missing(program)
            } else {
                CommandError::Io(program, e)
            }
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(CommandError::Failed {
        program,
        output: if stderr.is_empty() {
            format!("{} ({})", stdout.trim(), output.status)
        } else {
            stderr
        },
    })
}

/// Submits a batch job; its id.
pub fn sbatch(args: &[String]) -> Result<u64, StageError> {
    let out = run("sbatch", args).map_err(|e| match e {
        CommandError::Failed { output, .. } => refused(&output),
        other => other.into_stage_error(),
    })?;
    // `--parsable` prints `ID` or `ID;CLUSTER`.
    let id = out.trim().split(';').next().unwrap_or_default();
    id.parse().map_err(|_| {
        StageError::environment(format!(
            "`sbatch --parsable` printed `{}`, not a job id",
            out.trim()
        ))
    })
}

/// The error for a job Slurm would not take: the user's settings are at fault (a partition,
/// account or QOS it does not know, resources no node has), so it is an input error.
fn refused(output: &str) -> StageError {
    let reason = output
        .lines()
        .rev()
        .find_map(|l| l.split_once("submission failed:").map(|(_, r)| r.trim()))
        .unwrap_or("see below");
    let mut e = StageError::new(
        ErrorClass::Input,
        format!("Slurm refused the stage's job: {reason}"),
    );
    // The details sbatch gives before its last line (which the message repeats).
    e.causes.extend(
        output
            .lines()
            .filter(|l| !l.contains("submission failed:"))
            .map(str::to_owned),
    );
    e.causes.push(
        "check the stage's `resources:` and the `slurm:` settings of the configuration file"
            .to_owned(),
    );
    e
}

/// The partitions of the cluster.
pub fn partitions() -> Result<Vec<String>, StageError> {
    let out = run("sinfo", &["--noheader".into(), "--format=%R".into()])
        .map_err(CommandError::into_stage_error)?;
    let mut names: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The states of these jobs that the queue still knows (it forgets ended jobs after a while).
pub fn squeue(ids: &[u64]) -> Result<Vec<(u64, JobState)>, CommandError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    let args = [
        "--noheader".to_owned(),
        "--states=all".to_owned(),
        format!("--format={}", state::SQUEUE_FORMAT),
        format!("--jobs={}", list.join(",")),
    ];
    match run("squeue", &args) {
        Ok(out) => Ok(out.lines().filter_map(state::parse_line).collect()),
        // Asked only about jobs it has forgotten, squeue fails; that is an empty answer.
        Err(CommandError::Failed { output, .. }) if output.contains("Invalid job id") => {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// Cancels a job (nothing happens if it has ended).
pub fn scancel(id: u64) -> Result<(), CommandError> {
    run("scancel", &[id.to_string()]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_job_names_slurms_reason() {
        let e = refused(
            "sbatch: error: Memory specification can not be satisfied\n\
             sbatch: error: Batch job submission failed: \
             Requested node configuration is not available",
        );
        assert_eq!(e.class, ErrorClass::Input);
        assert_eq!(
            e.message,
            "Slurm refused the stage's job: Requested node configuration is not available"
        );
        assert!(e.causes[0].contains("Memory specification"), "{e:?}");
    }

    #[test]
    fn a_missing_command_says_where_to_run() {
        let e = match run("pipeline-test-no-such-program", &[]) {
            Err(e) => e.into_stage_error(),
            Ok(_) => panic!("the program does not exist"),
        };
        assert_eq!(e.class, ErrorClass::Environment);
        assert!(
            e.message.contains("not installed") && e.message.contains("--executor local"),
            "{e}"
        );
    }
}
