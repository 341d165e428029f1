//! `pipeline run --executor slurm` against a real Slurm: a one-node cluster (munged,
//! slurmctld, slurmd from Debian's slurm-wlm and munge) that `scripts/slurm-local.sh` starts
//! on this machine, listening on 127.0.0.1 only. The same pipeline gives the same keys and the
//! same bytes as a local run, a second run submits nothing, failures say why, Ctrl-C cancels
//! the jobs, and a preempted job is submitted again and resumes.
//!
//! Where Slurm cannot run (the packages are missing, or not root), every test here passes
//! after printing a loud SKIPPED message; `scripts/setup.sh --test` installs the packages, so
//! CI runs them for real. The cluster is started once for this test binary and stopped when
//! it exits (unless it was running before). The tests take turns: they share one small node,
//! and the preemption test needs all of it.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use support::{Workspace, all_files, repo, text};

/// The running test cluster.
struct Cluster {
    conf: PathBuf,
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
static TURN: Mutex<()> = Mutex::new(());

fn script() -> PathBuf {
    repo().join("scripts/slurm-local.sh")
}

extern "C" fn stop_cluster() {
    let _ = Command::new(script())
        .arg("stop")
        .stdout(Stdio::null())
        .status();
}

/// The cluster, started on first use; `None` (after a loud message) where Slurm cannot run.
fn cluster() -> Option<&'static Cluster> {
    CLUSTER
        .get_or_init(|| {
            let out = Command::new(script()).arg("start").output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => {}
                Some(77) => {
                    // Straight to stderr, past the test harness's capture of passing tests.
                    let _ = writeln!(
                        std::io::stderr(),
                        "\n{bar}\nSKIPPED: the Slurm tests cannot run here: {}\n{bar}\n",
                        stderr.trim(),
                        bar = "!".repeat(78)
                    );
                    return None;
                }
                _ => panic!("the test cluster did not start:\n{stdout}\n{stderr}"),
            }
            let value = |name: &str| {
                stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::to_owned)
            };
            if value("SLURM_STARTED=").as_deref() == Some("yes") {
                // SAFETY: registers a plain function with no captured state.
                unsafe { libc::atexit(stop_cluster) };
            }
            let conf = PathBuf::from(value("SLURM_CONF=").expect("the script names SLURM_CONF"));
            Some(Cluster { conf })
        })
        .as_ref()
}

/// The cluster and this test's turn on it.
fn take_turn() -> Option<(&'static Cluster, MutexGuard<'static, ()>)> {
    let cluster = cluster()?;
    let turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Some((cluster, turn))
}

impl Cluster {
    /// A Slurm client command against the test cluster.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    /// `pipeline ARGS...` in `ws` with the test cluster and the configuration file `config`.
    fn pipeline(&self, ws: &Workspace, config: &Path, args: &[&str]) -> Command {
        let mut cmd = self.command(assert_cmd::cargo::cargo_bin("pipeline").to_str().unwrap());
        cmd.current_dir(ws.path())
            .env("NO_COLOR", "1")
            .env("PIPELINE_CONFIG", config)
            .env_remove("PIPELINE_WORKSPACE")
            .env_remove("PIPELINE_STORE")
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, ws: &Workspace, config: &Path, args: &[&str]) -> Output {
        self.pipeline(ws, config, args).output().unwrap()
    }

    /// The names and states of the jobs whose names start with `prefix`, oldest first.
    fn queue(&self, prefix: &str) -> Vec<(String, String)> {
        let out = self
            .command("squeue")
            .args(["--noheader", "--states=all", "--sort=i", "--format=%j|%T"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('|'))
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, state)| (name.to_owned(), state.to_owned()))
            .collect()
    }

    /// The states of the jobs whose names start with `prefix`, oldest first.
    fn jobs(&self, prefix: &str) -> Vec<String> {
        self.queue(prefix).into_iter().map(|(_, s)| s).collect()
    }

    /// The names of the jobs whose names start with `prefix`, oldest first.
    fn job_names(&self, prefix: &str) -> Vec<String> {
        self.queue(prefix).into_iter().map(|(n, _)| n).collect()
    }
}

/// A configuration file `name` that polls the queue every second.
fn config(ws: &Workspace, name: &str, extra: &str) -> PathBuf {
    ws.write(
        &format!("{name}.yaml"),
        &format!("executor: slurm\nslurm:\n  poll: 1s\n{extra}"),
    )
}

/// Every output file of a pipeline but the report (which records timings), by path.
fn outputs(ws: &Workspace, pipeline: &str) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = all_files(&ws.path().join("outputs").join(pipeline));
    files.remove(Path::new("report.html"));
    files
}

/// The key of every stage in the newest run record.
fn keys(ws: &Workspace, pipeline: &str) -> BTreeMap<String, String> {
    ws.last_run(pipeline)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const SMALL_DAG: &str = "name: slurmcmp
stages:
  sinc:
    kind: functions
    params: {function: sinc, n: 400}
  fit:
    kind: train
    matrix: {width: [4, 8]}
    inputs: {data: sinc}
    resources: {memory: 512M, time: 10m}
    params:
      model: {mlp: {hidden: ['${matrix.width}']}}
      batch_size: 40
      epochs: 4
  seeds:
    kind: train
    matrix: {run: [0, 1, 2]}
    seed: '${matrix.run}'
    inputs: {data: sinc}
    params:
      model: {mlp: {hidden: [6]}}
      batch_size: 40
      epochs: 4
  final:
    kind: gather
    inputs: {runs: fit}
    params: {last_epoch: true}
  curves:
    kind: line_plot
    inputs: {runs: fit}
    params: {x: epoch, y: loss, split_by: split, title: loss, x_label: epoch, y_label: MSE}
";

#[test]
fn a_slurm_run_has_the_keys_and_bytes_of_a_local_run_and_a_rerun_submits_nothing() {
    let Some((cluster, _turn)) = take_turn() else {
        return;
    };
    let local = Workspace::new();
    let file = local.write("p.yaml", SMALL_DAG);
    let out = local.pipeline(&["run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    let ws = Workspace::new();
    let file = ws.write("p.yaml", SMALL_DAG);
    let config = config(&ws, "debug", "  partition: debug\n");
    let before = cluster.jobs("slurmcmp/").len();
    let out = cluster.run(&ws, &config, &["run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let jobs = cluster.jobs("slurmcmp/");
    assert_eq!(
        jobs.len() - before,
        4,
        "sinc, both fits and one batch of the three seeds ran as jobs; gather and the plot \
         in the controller: {jobs:?}"
    );
    let names = cluster.job_names("slurmcmp/");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("slurmcmp/seeds[run=") && n.ends_with("]+2")),
        "the three seeds are one job: {names:?}"
    );
    assert_eq!(
        ws.stages_with("slurmcmp", "ran"),
        [
            "curves",
            "final",
            "fit[width=4]",
            "fit[width=8]",
            "seeds[run=0]",
            "seeds[run=1]",
            "seeds[run=2]",
            "sinc"
        ]
    );
    assert_eq!(keys(&ws, "slurmcmp"), keys(&local, "slurmcmp"));
    let (ours, theirs) = (outputs(&ws, "slurmcmp"), outputs(&local, "slurmcmp"));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &ours {
        assert!(
            *bytes == theirs[path],
            "{} differs between the Slurm and the local run",
            path.display()
        );
    }

    let out = cluster.run(&ws, &config, &["run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        ws.stages_with("slurmcmp", "ran").is_empty(),
        "{}",
        text(&out)
    );
    assert_eq!(
        cluster.jobs("slurmcmp/").len(),
        jobs.len(),
        "a run served from the cache submits nothing"
    );
}

#[test]
fn failed_and_refused_jobs_say_why() {
    let Some((cluster, _turn)) = take_turn() else {
        return;
    };
    let ws = Workspace::new();
    let stderr_of = |config: &Path, yaml: &str| {
        let file = ws.write("f.yaml", yaml);
        let out = cluster.run(&ws, config, &["run", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let plain = config(&ws, "plain", "");
    let sinc =
        "name: fails\nstages:\n  sinc: {kind: functions, params: {function: sinc, n: 100}}\n";

    // The worker reports its own error.
    let err = stderr_of(
        &plain,
        "name: fails\nstages:\n  cifar: {kind: images, params: {source: {cifar10: {dir: nowhere/cifar-10-batches-bin}}}}\n",
    );
    assert!(
        err.contains("FAILED   cifar") && err.contains("nowhere"),
        "{err}"
    );

    // A worker that dies without a word: the end of its stderr is shown.
    let fake = ws.write(
        "fake-worker.sh",
        "#!/bin/sh\necho 'loading the model' >&2\necho 'Segmentation fault in libtorch' >&2\nexit 3\n",
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let crashing = config(&ws, "crashing", &format!("  worker: {}\n", fake.display()));
    let err = stderr_of(&crashing, sinc);
    assert!(
        err.contains("exited with code 3 without reporting an error"),
        "{err}"
    );
    assert!(
        err.contains("its last output") && err.contains("Segmentation fault in libtorch"),
        "{err}"
    );

    // Settings Slurm cannot take.
    let nowhere = config(&ws, "nowhere", "  partition: nowhere\n");
    let err = stderr_of(&nowhere, sinc);
    assert!(
        err.contains("Slurm has no partition `nowhere`; its partitions: debug, urgent"),
        "{err}"
    );
    let err = stderr_of(
        &plain,
        "name: fails\nstages:\n  sinc: {kind: functions, params: {function: sinc, n: 100}, resources: {memory: 100T}}\n",
    );
    assert!(
        err.contains(
            "Slurm refused the stage's job: Requested node configuration is not available"
        ),
        "{err}"
    );
    assert!(err.contains("resources:"), "{err}");
}

/// A training stage that takes several seconds.
fn long_training(name: &str, epochs: usize) -> String {
    format!(
        "name: {name}
stages:
  data:
    kind: functions
    params: {{function: sinc, n: 2000}}
  fit:
    kind: train
    inputs: {{data: data}}
    resources: {{cpus: 1, time: 10m}}
    params:
      model: {{mlp: {{hidden: [16, 16]}}}}
      batch_size: 20
      epochs: {epochs}
      eval_every: 10
"
    )
}

/// Reads `child`'s stderr until a line contains `needle`; the lines read.
fn read_until(stderr: &mut impl BufRead, needle: &str, deadline: Instant) -> String {
    let mut seen = String::new();
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains(needle) {
            return seen;
        }
    }
    panic!("no line with `{needle}` appeared:\n{seen}");
}

#[test]
fn ctrl_c_cancels_the_submitted_jobs() {
    let Some((cluster, _turn)) = take_turn() else {
        return;
    };
    let ws = Workspace::new();
    let file = ws.write("c.yaml", &long_training("slurmcancel", 3000));
    let config = config(&ws, "plain", "");
    let before = cluster.jobs("slurmcancel/fit").len();
    let mut child = cluster
        .pipeline(&ws, &config, &["run", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    read_until(&mut stderr, "fit: epoch", deadline);
    assert_eq!(cluster.jobs("slurmcancel/fit")[before..], ["RUNNING"]);
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{rest}");
    assert!(rest.contains("cancelled"), "{rest}");
    assert_eq!(
        cluster.jobs("slurmcancel/fit")[before..],
        ["CANCELLED"],
        "the run waits until its jobs are gone: {rest}"
    );
}

#[test]
fn a_preempted_job_is_submitted_again_and_resumes_to_the_same_bytes() {
    let Some((cluster, _turn)) = take_turn() else {
        return;
    };
    let yaml = long_training("slurmpreempt", 400);
    let local = Workspace::new();
    let file = local.write("p.yaml", &yaml);
    let out = local.pipeline(&["run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    let ws = Workspace::new();
    let file = ws.write("p.yaml", &yaml);
    let config = config(&ws, "debug", "  partition: debug\n");
    let before = cluster.jobs("slurmpreempt/fit").len();
    let mut child = cluster
        .pipeline(&ws, &config, &["run", file.to_str().unwrap()])
        .env("PIPELINE_RESUME_EVERY_SECS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen = read_until(&mut stderr, "fit: epoch", deadline);
    // A job of the higher-priority partition that wants the whole node preempts the stage's.
    let blocker = cluster
        .command("sbatch")
        .args([
            "--parsable",
            "--partition=urgent",
            "--exclusive",
            "--job-name=blocker",
            "--output=/dev/null",
            "--wrap=sleep 2",
        ])
        .output()
        .unwrap();
    assert!(blocker.status.success(), "{blocker:?}");
    seen.push_str(&read_until(&mut stderr, "submitting it again", deadline));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    seen.push_str(&rest);
    assert!(child.wait().unwrap().success(), "{seen}");
    assert!(seen.contains("preempted"), "{seen}");
    assert!(seen.contains("resumed after epoch"), "{seen}");
    assert_eq!(
        cluster.jobs("slurmpreempt/fit")[before..],
        ["PREEMPTED", "COMPLETED"],
        "{seen}"
    );
    assert_eq!(keys(&ws, "slurmpreempt"), keys(&local, "slurmpreempt"));
    for file in ["metrics.parquet", "model.safetensors"] {
        let a = std::fs::read(local.path().join("outputs/slurmpreempt/fit").join(file)).unwrap();
        let b = std::fs::read(ws.path().join("outputs/slurmpreempt/fit").join(file)).unwrap();
        assert!(
            a == b,
            "{file} differs between a preempted Slurm run and a local run"
        );
    }
}
