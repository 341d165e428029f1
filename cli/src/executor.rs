//! Runs each stage job that needs libtorch in a child process (`pipeline-worker exec-stage`);
//! the cheap kinds that need none (plots) run in this process.
//!
//! A child of its own gives a stage a real intra-op thread count (libtorch's pool is
//! process-wide), isolates crashes inside libtorch, lets a stop or a timeout kill exactly one
//! stage, and returns its memory when it ends. It is also the unit a cluster runs. The child
//! reports on stdout, one JSON object per line: progress events, and on failure the error.
//! Its stderr is kept (the last lines go into the error if it dies without saying why). It
//! dies with its parent (`PR_SET_PDEATHSIG`), so a killed run leaves no orphan computing.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pipeline_engine::child::receive_line;
use pipeline_engine::job::{Executor, StageJob, run_job};
use pipeline_engine::stage::{ErrorClass, EventSink, Runners, StageError};

/// Lines of a child's stderr kept for error messages.
pub const STDERR_TAIL: usize = 30;
/// How long a child gets to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// Runs jobs in child processes, or in this process for kinds that ask for it.
pub struct ChildProcesses<'a> {
    /// The worker binary.
    pub program: PathBuf,
    /// Runners for in-process jobs.
    pub runners: &'a Runners,
    /// Whether the run is verbose: the worker then logs at debug level (unless `RUST_LOG`
    /// says otherwise), and its log lines appear among this process's debug logs.
    pub verbose: bool,
}

/// The worker's log filter under `--verbose`, as `logging` sets this process's.
/// (`pipeline` matches every target that starts with it: all of `pipeline_*`.)
const VERBOSE_WORKER_LOG: &str = "warn,pipeline=debug";

impl Executor for ChildProcesses<'_> {
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
        let job_file = job.out_dir.with_file_name("job.json");
        write_json(&job_file, job)?;
        let end = self.run_child("exec-stage", &job_file, job, events, cancel)?;
        let reported = end.reported.into_iter().map(|(_, e)| e).next_back();
        outcome(end.status, reported, cancel, &end.tail)
    }

    fn execute_batch(
        &self,
        jobs: &[StageJob],
        events: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Vec<Result<(), StageError>> {
        let Some(first) = jobs.first() else {
            return Vec::new();
        };
        let batch_file = first.out_dir.with_file_name("batch.json");
        let end = write_json(&batch_file, &jobs)
            .and_then(|()| self.run_child("exec-batch", &batch_file, first, events, cancel));
        let end = match end {
            Ok(end) => end,
            Err(e) => return jobs.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut reported: BTreeMap<String, StageError> = BTreeMap::new();
        let mut general = None;
        for (stage, error) in end.reported {
            match stage {
                Some(stage) => {
                    reported.insert(stage, error);
                }
                None => general = Some(error),
            }
        }
        // Exit code 1 with errors naming stages is an orderly end: the worker reports every
        // stage that failed, so the others are done. Anything else (a crash, a kill, an error
        // naming no stage) fails the stages that reported nothing.
        let orderly = match &end.status {
            Ok(s) => {
                s.success() || (s.code() == Some(1) && general.is_none() && !reported.is_empty())
            }
            Err(_) => false,
        };
        jobs.iter()
            .map(|job| match reported.remove(&job.stage) {
                Some(error) => Err(error),
                None if orderly => Ok(()),
                None => outcome(
                    clone_status(&end.status),
                    general.clone(),
                    cancel,
                    &end.tail,
                ),
            })
            .collect()
    }
}

/// How a child process ended: its status, the errors it reported (with the stage each names,
/// if any), and the last lines of its stderr.
struct ChildEnd {
    status: std::io::Result<std::process::ExitStatus>,
    reported: Vec<(Option<String>, StageError)>,
    tail: Vec<String>,
}

fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<(), StageError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| StageError::bug("cannot encode the job").caused_by(&e))?;
    std::fs::write(path, bytes).map_err(|e| StageError::io("write", path, &e))
}

fn clone_status(
    status: &std::io::Result<std::process::ExitStatus>,
) -> std::io::Result<std::process::ExitStatus> {
    match status {
        Ok(s) => Ok(*s),
        Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
    }
}

impl ChildProcesses<'_> {
    /// Runs `pipeline-worker <subcommand> --job <job_file>` to its end, forwarding its events
    /// (attributed to the stage each names, else to `job`'s) and keeping its stderr's tail.
    fn run_child(
        &self,
        subcommand: &str,
        job_file: &std::path::Path,
        job: &StageJob,
        events: &dyn EventSink,
        cancel: &AtomicBool,
    ) -> Result<ChildEnd, StageError> {
        let mut child = self.spawn(subcommand, job, job_file)?;
        let tail = Mutex::new(VecDeque::new());
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (status, reported) = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                stdout
                    .map(|out| read_messages(out, job, events))
                    .unwrap_or_default()
            });
            if let Some(err) = stderr {
                scope.spawn(|| keep_tail(err, &tail, &job.stage));
            }
            let status = wait(&mut child, cancel);
            (status, reader.join().unwrap_or_default())
        });
        let tail: Vec<String> = tail.into_inner().map(Vec::from).unwrap_or_default();
        Ok(ChildEnd {
            status,
            reported,
            tail,
        })
    }

    fn spawn(
        &self,
        subcommand: &str,
        job: &StageJob,
        job_file: &std::path::Path,
    ) -> Result<Child, StageError> {
        let mut cmd = Command::new(&self.program);
        cmd.arg(subcommand)
            .arg("--job")
            .arg(job_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .envs(worker_env(job.threads, self.verbose));
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().map_err(|e| {
            StageError::environment(format!("cannot start {}", self.program.display()))
                .caused_by(&e)
        })
    }
}

/// The environment a worker runs a job in, wherever it runs: the job's thread count for
/// OpenMP and MKL, debug logs under `--verbose` (unless `RUST_LOG` says otherwise), and
/// glibc's malloc thresholds raised (unless set): large tensors (a 1,000-image batch through
/// a conv layer is tens of MB) would be mapped and unmapped on every use under the defaults.
pub fn worker_env(threads: usize, verbose: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("OMP_NUM_THREADS", threads.to_string()),
        ("MKL_NUM_THREADS", threads.to_string()),
    ];
    if verbose && std::env::var_os("RUST_LOG").is_none() {
        env.push(("RUST_LOG", VERBOSE_WORKER_LOG.to_owned()));
    }
    for var in ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"] {
        if std::env::var_os(var).is_none() {
            env.push((var, "1000000000".to_owned()));
        }
    }
    env
}

/// The last lines a stage's process wrote on stderr, as a cause of its error.
pub fn last_output(tail: &[String]) -> String {
    format!("its last output:\n    {}", tail.join("\n    "))
}

fn keep_tail(stderr: std::process::ChildStderr, tail: &Mutex<VecDeque<String>>, stage: &str) {
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        tracing::debug!(stage, "{line}");
        if let Ok(mut t) = tail.lock() {
            if t.len() == STDERR_TAIL {
                t.pop_front();
            }
            t.push_back(line);
        }
    }
}

/// Forwards the child's events until its stdout closes; returns the errors it reported, with
/// the stage each names.
fn read_messages(
    stdout: std::process::ChildStdout,
    job: &StageJob,
    events: &dyn EventSink,
) -> Vec<(Option<String>, StageError)> {
    let mut errors = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(reported) = receive_line(&line, &job.stage, events) {
            errors.push(reported);
        }
    }
    errors
}

fn wait(child: &mut Child, cancel: &AtomicBool) -> std::io::Result<std::process::ExitStatus> {
    let mut term_sent: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if cancel.load(Ordering::Relaxed) {
            match term_sent {
                None => {
                    // SAFETY: signalling our own child by its pid.
                    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                    term_sent = Some(Instant::now());
                }
                Some(t) if t.elapsed() > GRACE => {
                    let _ = child.kill();
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn outcome(
    status: std::io::Result<std::process::ExitStatus>,
    reported: Option<StageError>,
    cancel: &AtomicBool,
    tail: &[String],
) -> Result<(), StageError> {
    let status = status
        .map_err(|e| StageError::environment("lost track of the stage's process").caused_by(&e))?;
    if status.success() {
        return Ok(());
    }
    if let Some(error) = reported {
        return Err(error);
    }
    let signal = status.signal();
    if cancel.load(Ordering::Relaxed) || matches!(signal, Some(libc::SIGINT | libc::SIGTERM)) {
        return Err(StageError::new(
            ErrorClass::Cancelled,
            "stopped before it finished",
        ));
    }
    let how = match signal {
        Some(libc::SIGKILL) => "was killed (SIGKILL; out of memory?)".to_owned(),
        Some(s) => format!("crashed with signal {s}"),
        None => format!("exited with code {}", status.code().unwrap_or(-1)),
    };
    let mut error = StageError::bug(format!(
        "the stage's process {how} without reporting an error"
    ));
    if !tail.is_empty() {
        error.causes.push(last_output(tail));
    }
    Err(error)
}
