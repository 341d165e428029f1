//! The `pipeline-worker` binary run the way `pipeline` runs it: a job file in, JSON lines on
//! stdout, the exit code saying whether the stage succeeded, and SIGTERM stopping a stage.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pipeline_engine::child::ChildMessage;
use pipeline_engine::job::StageJob;
use pipeline_engine::stage::{Device, ErrorClass, StageEvent, StageInputs, UpstreamOutput};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WORKER: &str = env!("CARGO_BIN_EXE_pipeline-worker");

/// A job of `kind` writing into `root/<stage>/out`, its inputs bound to the given folders.
fn job(root: &Path, stage: &str, kind: &str, params: serde_json::Value) -> StageJob {
    let dir = root.join(stage);
    StageJob {
        pipeline: "test".to_owned(),
        stage: stage.to_owned(),
        kind: kind.to_owned(),
        params,
        inputs: StageInputs::default(),
        out_dir: dir.join("out"),
        resume_dir: dir.join("resume"),
        workspace: root.to_path_buf(),
        seed: 1,
        threads: 1,
        device: Device::Cpu,
        resources: Default::default(),
    }
}

fn with_input(mut job: StageJob, slot: &str, dir: PathBuf) -> StageJob {
    let upstream = UpstreamOutput {
        stage: format!("upstream-{slot}"),
        matrix: Default::default(),
        dir,
    };
    job.inputs.slots.insert(slot.to_owned(), vec![upstream]);
    job
}

/// Writes the job file next to the output folder (as `pipeline` does) and returns its path.
fn write_job(job: &StageJob) -> Result<PathBuf, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&job.out_dir)?;
    let path = job.out_dir.with_file_name("job.json");
    std::fs::write(&path, serde_json::to_vec(job)?)?;
    Ok(path)
}

fn exec(job: &StageJob) -> Result<Output, Box<dyn std::error::Error>> {
    let path = write_job(job)?;
    Ok(Command::new(WORKER)
        .args(["exec-stage", "--job"])
        .arg(path)
        .output()?)
}

fn messages(stdout: &[u8]) -> Result<Vec<ChildMessage>, serde_json::Error> {
    stdout
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(serde_json::from_slice)
        .collect()
}

fn sinc_data(root: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let data = job(
        root,
        "sinc",
        "functions",
        json!({"function": "sinc", "n": 200}),
    );
    let output = exec(&data)?;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    Ok(data.out_dir)
}

#[test]
fn probe_prints_one_json_line() -> TestResult {
    let output = Command::new(WORKER).arg("probe").output()?;
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout)?;
    assert_eq!(text.lines().count(), 1, "{text}");
    let probe: serde_json::Value = serde_json::from_str(&text)?;
    assert!(probe["cuda"].is_boolean(), "{probe}");
    assert!(
        probe["cuda_devices"].as_i64().is_some_and(|n| n >= 0),
        "{probe}"
    );
    assert!(
        probe["torch_threads"].as_i64().is_some_and(|n| n >= 1),
        "{probe}"
    );
    Ok(())
}

#[test]
fn a_job_runs_and_reports_progress_on_stdout() -> TestResult {
    let root = tempfile::tempdir()?;
    let data = sinc_data(root.path())?;
    assert!(data.join("dataset.json").is_file() && data.join("dataset.safetensors").is_file());
    let params = json!({"model": {"mlp": {"hidden": [4]}}, "epochs": 2});
    let train = with_input(job(root.path(), "train", "train", params), "data", data);
    let output = exec(&train)?;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(train.out_dir.join("metrics.parquet").is_file());
    let progress: Vec<(u64, u64)> = messages(&output.stdout)?
        .into_iter()
        .filter_map(|m| match m {
            ChildMessage::Event {
                event: StageEvent::Progress { done, total, .. },
                ..
            } => Some((done, total)),
            _ => None,
        })
        .collect();
    assert_eq!(progress, [(1, 2), (2, 2)]);
    Ok(())
}

#[test]
fn a_failed_stage_exits_1_with_the_error_as_the_last_line() -> TestResult {
    let root = tempfile::tempdir()?;
    let params = json!({"model": {"mlp": {"hidden": [4]}}, "epochs": 1});
    let missing = root.path().join("no-such-data-set");
    let train = with_input(job(root.path(), "train", "train", params), "data", missing);
    let output = exec(&train)?;
    assert_eq!(output.status.code(), Some(1));
    match messages(&output.stdout)?.pop() {
        Some(ChildMessage::Error { error, .. }) => {
            assert_eq!(error.class, ErrorClass::Environment, "{error}");
            assert!(error.message.contains("no-such-data-set"), "{error}");
        }
        other => panic!("expected an error message, got {other:?}"),
    }
    Ok(())
}

#[test]
fn an_unreadable_job_file_is_reported_too() -> TestResult {
    let output = Command::new(WORKER)
        .args(["exec-stage", "--job", "/nonexistent/job.json"])
        .output()?;
    assert_eq!(output.status.code(), Some(1));
    let last = messages(&output.stdout)?.pop();
    assert!(
        matches!(&last, Some(ChildMessage::Error { error, .. }) if error.message.contains("job.json")),
        "{last:?}"
    );
    Ok(())
}

#[test]
fn sigterm_stops_the_stage_as_cancelled() -> TestResult {
    let root = tempfile::tempdir()?;
    let data = sinc_data(root.path())?;
    let params = json!({"model": {"mlp": {"hidden": [4]}}, "epochs": 100000, "batch_size": 200});
    let train = with_input(job(root.path(), "train", "train", params), "data", data);
    let path = write_job(&train)?;
    let mut child = Command::new(WORKER)
        .args(["exec-stage", "--job"])
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    // Training is under way once the first epoch is reported.
    let progress = lines.by_ref().find(|line| {
        line.as_ref()
            .is_ok_and(|l| l.contains(r#""event":"progress""#))
    });
    assert!(progress.is_some(), "no progress reported");
    let pid = i32::try_from(child.id())?;
    // SAFETY: kill only sends a signal to the child started above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let rest: Vec<String> = lines.collect::<Result<_, _>>()?;
    let status = child.wait()?;
    assert_eq!(status.code(), Some(1));
    let last = rest.last().ok_or("no error line")?;
    match serde_json::from_str::<ChildMessage>(last)? {
        ChildMessage::Error { error, .. } => assert_eq!(error.class, ErrorClass::Cancelled),
        other => panic!("expected an error message, got {other:?}"),
    }
    assert!(!train.out_dir.join("metrics.parquet").exists());
    Ok(())
}
