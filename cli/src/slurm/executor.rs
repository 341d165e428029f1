//! The Slurm executor: every stage that needs a worker becomes one batch job that runs the
//! project's worker binary on a compute node, against the shared store.
//!
//! The controller (this process) keeps everything else: it plans, takes the stage key's lock,
//! lays out the inputs and the empty output folder in the store's staging area, and after the
//! job commits the outputs itself, exactly as a local run does; a job only computes. So
//! commits stay atomic and keys stay those of a local run, and the lock is held by a process
//! that lives as long as the job matters. The cheap kinds that run inside `pipeline` (plots,
//! tables of a sweep) run here too: a job would wait in the queue longer than they take.
//!
//! While a job runs, the controller reads its stdout file for the worker's progress events
//! (shown as in a local run) and watches for the exit code the batch script leaves; the
//! queue ([`super::queue`]) says whether the job waits, runs, or ended some other way. A job
//! that was preempted or lost its node is submitted again (a training stage resumes from its
//! last snapshot); one that hit its time or memory limit fails with a message naming the
//! limit; one that failed shows the worker's error, or the end of its stderr. Ctrl-C cancels
//! the jobs with `scancel`.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pipeline_engine::child::receive_line;
use pipeline_engine::job::{Executor, StageJob, run_job};
use pipeline_engine::stage::{ErrorClass, EventSink, Runners, StageError, StageEvent};

use super::client;
use super::queue::Queue;
use super::script::{AttemptFiles, Submission};
use super::state::{JobState, Phase};
use crate::config::SlurmConfig;
use crate::executor::{STDERR_TAIL, last_output, worker_env};

/// How often a running job's files are read.
const TICK: Duration = Duration::from_millis(200);
/// Submissions of one stage, counting the first, when the cluster keeps taking its job away.
const MAX_ATTEMPTS: u32 = 4;
/// How long after `scancel` the controller waits for the job to end before it lets go.
const STOP_WAIT: Duration = Duration::from_secs(60);
/// How long after the queue reports a job ended its exit-code file may take to be seen (a
/// shared file system caches directory contents for some seconds).
const EXIT_FILE_WAIT: Duration = Duration::from_secs(30);
/// How long a job waits in the queue before the display says so.
const QUEUED_NOTE_AFTER: Duration = Duration::from_secs(5);
/// How long a submitted job may be absent from the queue's answers before it counts as lost.
const UNSEEN_WAIT: Duration = Duration::from_secs(120);

/// Runs stages as Slurm batch jobs.
pub struct SlurmExecutor<'a> {
    config: SlurmConfig,
    worker: PathBuf,
    runners: &'a Runners,
    verbose: bool,
    queue: Queue,
    cluster_checked: OnceLock<Result<(), StageError>>,
}

/// How a followed job ended, when Slurm did not end it for a limit or a cancellation.
enum Ended {
    /// The worker exited (`code`; `None` when only the queue knows it failed).
    Exited {
        /// Its exit code, when the batch script could record it.
        code: Option<i32>,
        /// The errors it reported, with the stage each names.
        reported: Vec<(Option<String>, StageError)>,
        /// The error of a worker that exited non-zero: how, and the end of its stderr.
        crash: StageError,
    },
    /// The cluster took the job away; it should be submitted again.
    Lost(JobState),
}

impl<'a> SlurmExecutor<'a> {
    /// An executor submitting with `config`; `worker` is the worker binary as the nodes see it.
    pub fn new(config: SlurmConfig, worker: PathBuf, runners: &'a Runners, verbose: bool) -> Self {
        let queue = Queue::new(config.poll);
        Self {
            config,
            worker,
            runners,
            verbose,
            queue,
            cluster_checked: OnceLock::new(),
        }
    }

    /// Once per run, before the first submission: the client commands are there, the
    /// controller answers, and the configured partition exists. A run served from the cache
    /// submits nothing and never gets here, so it needs no Slurm at all.
    fn check_cluster(&self) -> Result<(), StageError> {
        self.cluster_checked
            .get_or_init(|| {
                let partitions = client::partitions()?;
                match &self.config.partition {
                    Some(p) if !partitions.contains(p) => Err(StageError::input(format!(
                        "Slurm has no partition `{p}`; its partitions: {}",
                        partitions.join(", ")
                    ))),
                    _ => Ok(()),
                }
            })
            .clone()
    }

    fn submit(
        &self,
        jobs: &[StageJob],
        subcommand: &str,
        job_file: &Path,
        files: &AttemptFiles,
    ) -> Result<u64, StageError> {
        let threads = jobs.first().map_or(1, |j| j.threads);
        let env = worker_env(threads, self.verbose);
        let submission = Submission {
            jobs,
            subcommand,
            job_file,
            worker: &self.worker,
            files,
            config: &self.config,
            env: &env,
        };
        std::fs::write(&files.script, submission.script())
            .map_err(|e| StageError::io("write", &files.script, &e))?;
        let id = client::sbatch(&submission.sbatch_args())?;
        self.queue.watch(id);
        tracing::debug!(job = id, name = %submission.name(), "submitted");
        Ok(id)
    }

    /// Follows job `id` until it ends.
    fn follow(
        &self,
        id: u64,
        job: &StageJob,
        files: &AttemptFiles,
        events: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<Ended, StageError> {
        let mut stdout = NewLines::new(&files.stdout);
        let mut reported = Vec::new();
        let mut forward = |stdout: &mut NewLines| {
            for line in stdout.read() {
                reported.extend(receive_line(&line, &job.stage, events));
            }
        };
        let mut announced: Option<Phase> = None;
        let mut ended_at: Option<Instant> = None;
        let following = Instant::now();
        let mut last_seen = following;
        loop {
            forward(&mut stdout);
            if cancel.load(Ordering::Relaxed) {
                return Err(self.stop(id));
            }
            if let Some(code) = exit_code(&files.exit) {
                forward(&mut stdout);
                let crash = crashed(id, Some(code), files, &self.worker);
                return Ok(Ended::Exited {
                    code: Some(code),
                    reported,
                    crash,
                });
            }
            let Some(state) = self.queue.state(id)? else {
                if last_seen.elapsed() > UNSEEN_WAIT {
                    return Err(StageError::environment(format!(
                        "Slurm no longer knows job {id}, and the job left no exit code"
                    )));
                }
                std::thread::sleep(TICK);
                continue;
            };
            last_seen = Instant::now();
            let phase = state.phase();
            // A job that waits only a moment is not worth a line.
            let worth_saying = phase != Phase::Queued || following.elapsed() >= QUEUED_NOTE_AFTER;
            if announced.as_ref() != Some(&phase) && worth_saying {
                announce(id, &state, &job.stage, events);
                announced = Some(phase.clone());
            }
            match phase {
                Phase::Queued | Phase::Running => {}
                Phase::Completed | Phase::Failed => {
                    // The script writes the exit code before the job ends; wait for the file
                    // system to show it, then go by the queue's word.
                    let since = *ended_at.get_or_insert_with(Instant::now);
                    if since.elapsed() > EXIT_FILE_WAIT {
                        forward(&mut stdout);
                        let code = (phase == Phase::Completed).then_some(0);
                        let crash = crashed(id, code, files, &self.worker);
                        return Ok(Ended::Exited {
                            code,
                            reported,
                            crash,
                        });
                    }
                }
                Phase::Lost => return Ok(Ended::Lost(state)),
                Phase::TimedOut | Phase::OutOfMemory | Phase::Cancelled => {
                    forward(&mut stdout);
                    return Err(limit_hit(id, &phase, job, &self.config, files));
                }
            }
            std::thread::sleep(TICK);
        }
    }

    /// Cancels job `id` and waits (a while) until the queue says it ended, so that the stage's
    /// lock is not given up while its job still writes.
    fn stop(&self, id: u64) -> StageError {
        if let Err(e) = client::scancel(id) {
            tracing::warn!(job = id, error = ?e, "scancel failed");
        }
        let asked = Instant::now();
        while asked.elapsed() < STOP_WAIT {
            match self.queue.state(id) {
                Ok(Some(state)) if !state.ended() => std::thread::sleep(TICK),
                _ => break,
            }
        }
        StageError::new(
            ErrorClass::Cancelled,
            format!("stopped before it finished (Slurm job {id} cancelled)"),
        )
    }
}

impl SlurmExecutor<'_> {
    /// Submits `jobs` as one Slurm job (the worker's `subcommand` on `file`) and follows it
    /// to its end, submitting it again when the cluster takes it away.
    fn run_jobs(
        &self,
        jobs: &[StageJob],
        subcommand: &str,
        file: &str,
        events: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<Ended, StageError> {
        let first = jobs
            .first()
            .ok_or_else(|| StageError::bug("an empty batch"))?;
        self.check_cluster()?;
        let job_file = first.out_dir.with_file_name(file);
        let dir = job_file
            .parent()
            .ok_or_else(|| StageError::bug("the output folder has no parent"))?;
        let bytes = match jobs {
            [job] => serde_json::to_vec(job),
            _ => serde_json::to_vec(jobs),
        }
        .map_err(|e| StageError::bug("cannot encode the job").caused_by(&e))?;
        std::fs::write(&job_file, bytes).map_err(|e| StageError::io("write", &job_file, &e))?;
        for attempt in 1..=MAX_ATTEMPTS {
            if attempt > 1 {
                for job in jobs {
                    fresh_folder(&job.out_dir)?;
                }
            }
            let files = AttemptFiles::new(dir, attempt);
            let id = self.submit(jobs, subcommand, &job_file, &files)?;
            let ended = self.follow(id, first, &files, events, cancel);
            self.queue.forget(id);
            match ended? {
                Ended::Lost(state) => events.emit(
                    &first.stage,
                    StageEvent::Note {
                        message: format!(
                            "Slurm job {id} {state}; submitting it again ({} of {} tries left)",
                            MAX_ATTEMPTS - attempt,
                            MAX_ATTEMPTS - 1
                        ),
                    },
                ),
                exited => return Ok(exited),
            }
        }
        Err(StageError::environment(format!(
            "the cluster took the stage's job away {MAX_ATTEMPTS} times (preempted, or its node \
             failed)"
        )))
    }
}

impl Executor for SlurmExecutor<'_> {
    fn execute(
        &self,
        job: &StageJob,
        in_process: bool,
        events: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<(), StageError> {
        if in_process && self.runners.has(&job.kind) {
            return run_job(self.runners, job, events, cancel);
        }
        let jobs = std::slice::from_ref(job);
        match self.run_jobs(jobs, "exec-stage", "job.json", events, cancel)? {
            Ended::Exited { code: Some(0), .. } => Ok(()),
            Ended::Exited {
                mut reported,
                crash,
                ..
            } => Err(reported.pop().map_or(crash, |(_, e)| e)),
            Ended::Lost(_) => Err(StageError::bug("a lost job was not submitted again")),
        }
    }

    fn execute_batch(
        &self,
        jobs: &[StageJob],
        events: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Vec<Result<(), StageError>> {
        match self.run_jobs(jobs, "exec-batch", "batch.json", events, cancel) {
            Ok(Ended::Exited {
                code,
                reported,
                crash,
            }) => batch_results(jobs, code, reported, &crash),
            Ok(Ended::Lost(_)) => {
                let e = StageError::bug("a lost job was not submitted again");
                jobs.iter().map(|_| Err(e.clone())).collect()
            }
            Err(e) => jobs.iter().map(|_| Err(e.clone())).collect(),
        }
    }
}

/// The result of each stage of a batch whose worker exited with `code`. Exit code 1 with
/// errors that all name stages is an orderly end: the worker reports every stage that failed,
/// so the others are done. Anything else (a crash, an error naming no stage) fails the stages
/// that reported nothing, with the general error or the crash.
fn batch_results(
    jobs: &[StageJob],
    code: Option<i32>,
    reported: Vec<(Option<String>, StageError)>,
    crash: &StageError,
) -> Vec<Result<(), StageError>> {
    let mut named = std::collections::BTreeMap::new();
    let mut general = None;
    for (stage, error) in reported {
        match stage {
            Some(stage) => {
                named.insert(stage, error);
            }
            None => general = Some(error),
        }
    }
    let orderly = code == Some(0) || (code == Some(1) && general.is_none() && !named.is_empty());
    jobs.iter()
        .map(|job| match named.remove(&job.stage) {
            Some(error) => Err(error),
            None if orderly => Ok(()),
            None => Err(general.clone().unwrap_or_else(|| crash.clone())),
        })
        .collect()
}

/// Tells the run's display that a job waits or runs.
fn announce(id: u64, state: &JobState, stage: &str, events: &dyn EventSink) {
    let message = match state.phase() {
        Phase::Queued => format!("Slurm job {id} is {state}"),
        Phase::Running if !state.node.is_empty() => {
            format!("Slurm job {id} is running on {}", state.node)
        }
        Phase::Running => format!("Slurm job {id} is running"),
        _ => return,
    };
    events.emit(stage, StageEvent::Note { message });
}

/// The error of a job whose worker exited non-zero (`code`, when known) without saying why.
fn crashed(id: u64, code: Option<i32>, files: &AttemptFiles, worker: &Path) -> StageError {
    let mut error = match code {
        Some(126 | 127) => StageError::environment(format!(
            "Slurm job {id} could not start the worker {} (is it on a file system the nodes see? \
             the `worker:` setting of the configuration names another path)",
            worker.display()
        )),
        Some(c) if c > 128 => StageError::bug(format!(
            "the worker of Slurm job {id} died of signal {} without reporting an error{}",
            c - 128,
            if c - 128 == libc::SIGKILL {
                " (out of memory?)"
            } else {
                ""
            }
        )),
        Some(c) => StageError::bug(format!(
            "the worker of Slurm job {id} exited with code {c} without reporting an error"
        )),
        None => StageError::bug(format!("Slurm job {id} failed without reporting an error")),
    };
    add_stderr_tail(&mut error, files);
    error
}

/// The error of a job that Slurm ended: at its time or memory limit, or cancelled by
/// someone else.
fn limit_hit(
    id: u64,
    phase: &Phase,
    job: &StageJob,
    config: &SlurmConfig,
    files: &AttemptFiles,
) -> StageError {
    let resources = job.resources.or(config.resources);
    let mut error = match phase {
        Phase::TimedOut => StageError::input(format!(
            "Slurm job {id} reached its time limit ({}); raise the stage's `resources.time`",
            resources.time_seconds.map_or_else(
                || "the partition's default".to_owned(),
                |s| crate::report::duration(s as f64)
            )
        )),
        Phase::OutOfMemory => StageError::input(format!(
            "Slurm job {id} ran out of memory ({}); raise the stage's `resources.memory`",
            resources.memory_mib.map_or_else(
                || "the partition's default".to_owned(),
                |m| format!("it asked for {m} MiB")
            )
        )),
        _ => StageError::environment(format!(
            "Slurm job {id} was cancelled by someone other than this run (scancel?)"
        )),
    };
    add_stderr_tail(&mut error, files);
    error
}

fn add_stderr_tail(error: &mut StageError, files: &AttemptFiles) {
    let tail = last_lines(&files.stderr, STDERR_TAIL);
    if !tail.is_empty() {
        error.causes.push(last_output(&tail));
    }
}

/// The exit code the batch script left, once it is there.
fn exit_code(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Empties a folder for another attempt (the last one may have left partial outputs).
fn fresh_folder(dir: &Path) -> Result<(), StageError> {
    pipeline_cache::store::remove_tree(dir).map_err(|e| StageError::io("empty", dir, &e))?;
    std::fs::create_dir_all(dir).map_err(|e| StageError::io("create", dir, &e))
}

/// The last `n` lines of a file (of its last 64 KiB).
fn last_lines(path: &Path, n: usize) -> Vec<String> {
    const WINDOW: u64 = 64 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::new();
    if file
        .seek(SeekFrom::Start(len.saturating_sub(WINDOW)))
        .is_err()
        || file.read_to_end(&mut bytes).is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

/// Reads the lines appended to a file since the last call (the job's stdout, which the
/// worker writes a line at a time). The file is opened anew each time: on a shared file
/// system, only a fresh open is sure to see what another host wrote.
struct NewLines {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl NewLines {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn read(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err()
        {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn new_lines_are_read_once_and_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut lines = NewLines::new(&path);
        assert!(lines.read().is_empty(), "no file yet");
        let mut f = std::fs::File::create(&path).unwrap();
        write!(f, "one\ntw").unwrap();
        assert_eq!(lines.read(), ["one"]);
        write!(f, "o\nthree\n").unwrap();
        assert_eq!(lines.read(), ["two", "three"]);
        assert!(lines.read().is_empty());
    }

    #[test]
    fn the_tail_of_stderr_is_its_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("err");
        let text: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(last_lines(&path, 2), ["line 49", "line 50"]);
        assert!(last_lines(&dir.path().join("none"), 2).is_empty());
    }

    #[test]
    fn a_worker_that_could_not_start_is_an_environment_problem() {
        let dir = tempfile::tempdir().unwrap();
        let files = AttemptFiles::new(dir.path(), 1);
        std::fs::write(&files.stderr, "sh: 1: /x/pipeline-worker: not found\n").unwrap();
        let e = crashed(7, Some(127), &files, Path::new("/x/pipeline-worker"));
        assert_eq!(e.class, ErrorClass::Environment);
        assert!(e.message.contains("could not start the worker"), "{e}");
        assert!(e.causes[0].contains("not found"), "{e:?}");
    }

    #[test]
    fn a_batch_fails_exactly_the_stages_that_say_so_unless_the_worker_crashed() {
        let job = |stage: &str| StageJob {
            stage: stage.into(),
            ..serde_json::from_value(serde_json::json!({
                "pipeline": "p", "stage": "", "kind": "train", "params": {},
                "inputs": {"slots": {}}, "out_dir": "/o", "resume_dir": "/r",
                "workspace": "/w", "seed": 0, "threads": 1, "device": "cpu"
            }))
            .unwrap()
        };
        let jobs = [job("a"), job("b")];
        let crash = StageError::bug("crashed");
        let diverged = StageError::numerical("loss became NaN");
        let named = vec![(Some("b".to_owned()), diverged.clone())];
        assert_eq!(
            batch_results(&jobs, Some(1), named.clone(), &crash),
            [Ok(()), Err(diverged.clone())]
        );
        assert_eq!(
            batch_results(&jobs, Some(139), named, &crash),
            [Err(crash.clone()), Err(diverged)]
        );
        assert_eq!(
            batch_results(&jobs, Some(0), Vec::new(), &crash),
            [Ok(()), Ok(())]
        );
    }
}
