//! The cache as a database, through the real binary: `kill -9` at many moments of a run,
//! several runs at once on overlapping pipelines, an interrupted sweep, a store that cannot be
//! written, a flipped byte in a stored object, and two runs from empty caches that must give
//! byte-identical files.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Workspace, all_files, text};

fn spawn(ws: &Workspace, args: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("pipeline"))
        .current_dir(ws.path())
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A sweep of small training stages over the sinc data, with a plot over all of them.
fn sweep(n: usize, epochs: usize) -> String {
    let widths: Vec<String> = (1..=n).map(|w| w.to_string()).collect();
    format!(
        "name: sweep
stages:
  data:
    kind: functions
    params: {{function: sinc, n: 400}}
  fit:
    kind: train
    matrix: {{width: [{}]}}
    inputs: {{data: data}}
    params:
      model: {{mlp: {{hidden: ['${{matrix.width}}']}}}}
      batch_size: 20
      epochs: {epochs}
      eval_every: 5
  final:
    kind: gather
    inputs: {{runs: fit}}
    params: {{last_epoch: true}}
",
        widths.join(", ")
    )
}

fn verify_clean(ws: &Workspace) {
    let out = ws.pipeline(&["verify"]);
    assert!(
        out.status.success(),
        "the store must be sound: {}",
        text(&out)
    );
}

fn no_workers_left(ws: &Workspace) {
    // Workers die with their parent (PR_SET_PDEATHSIG); give the kernel a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
        let listing = String::from_utf8_lossy(&ps.stdout);
        let orphans = listing
            .lines()
            .filter(|l| l.contains("pipeline-worker") && l.contains(ws.path().to_str().unwrap()))
            .count();
        if orphans == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{orphans} worker processes outlived a killed run"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kill_9_at_many_moments_leaves_a_sound_store_and_the_next_run_finishes() {
    let ws = Workspace::new();
    let file = ws.write("sweep.yaml", &sweep(6, 30));
    let f = file.to_str().unwrap();
    let mut survived = 0;
    for delay_ms in [150u64, 400, 700, 1000, 1300, 1700, 2200, 2800] {
        let mut child = spawn(&ws, &["run", f, "--quiet"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        no_workers_left(&ws);
        verify_clean(&ws);
        survived += 1;
    }
    let out = ws.pipeline(&["run", f]);
    assert!(out.status.success(), "{}", text(&out));
    verify_clean(&ws);
    // Whatever the kills interrupted, the finished result equals a run that was never killed.
    let fresh = Workspace::new();
    let fresh_file = fresh.write("sweep.yaml", &sweep(6, 30));
    let out = fresh.pipeline(&["run", fresh_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let killed = all_files(&ws.path().join("outputs/sweep/final"));
    let clean = all_files(&fresh.path().join("outputs/sweep/final"));
    assert_eq!(killed, clean);
    println!("kill points tried and survived: {survived}");
}

#[test]
fn several_runs_at_once_compute_each_stage_once() {
    let ws = Workspace::new();
    let a = ws.write("a.yaml", &sweep(4, 20));
    let b = ws.write(
        "b.yaml",
        &sweep(4, 20).replace("name: sweep", "name: other"),
    );
    let children: Vec<Child> = [&a, &b, &a]
        .iter()
        .map(|f| spawn(&ws, &["run", f.to_str().unwrap(), "--quiet"]))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Across the records of all runs, each stage key ran exactly once.
    let mut ran: BTreeMap<String, usize> = BTreeMap::new();
    for pipeline in ["sweep", "other"] {
        for entry in std::fs::read_dir(ws.path().join(".pipeline/runs").join(pipeline)).unwrap() {
            let run: serde_json::Value =
                serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            for r in run["results"].as_array().unwrap() {
                if r["outcome"] == "ran" {
                    *ran.entry(r["key"].as_str().unwrap().to_owned())
                        .or_default() += 1;
                }
            }
        }
    }
    assert_eq!(ran.len(), 6, "data, four fits and the gather: {ran:?}");
    assert!(ran.values().all(|&n| n == 1), "{ran:?}");
    verify_clean(&ws);
}

#[test]
fn an_interrupted_sweep_resumes_with_exactly_the_missing_points() {
    let ws = Workspace::new();
    let file = ws.write("sweep.yaml", &sweep(20, 40));
    let f = file.to_str().unwrap();
    let mut child = spawn(&ws, &["run", f, "--quiet", "--jobs", "1"]);
    let done_dir = ws.path().join("outputs/sweep/fit");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let finished = std::fs::read_dir(&done_dir).map(|d| d.count()).unwrap_or(0);
        if finished >= 10 {
            break;
        }
        assert!(Instant::now() < deadline, "the sweep made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let finished: Vec<String> = std::fs::read_dir(&done_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    // No folder mixes generations: each finished member's folder is complete.
    for name in &finished {
        let dir = done_dir.join(name);
        for file in [
            "metrics.parquet",
            "model.safetensors",
            "model.json",
            "_stage.json",
        ] {
            assert!(dir.join(file).exists(), "{name}/{file}");
        }
    }
    // What the store holds now: every folder that appeared, and perhaps one more point that
    // was committed when the kill came before its folder was written (one stage at a time).
    let plan = ws.pipeline(&["plan", f]);
    assert!(plan.status.success(), "{}", text(&plan));
    let committed = String::from_utf8_lossy(&plan.stdout)
        .lines()
        .filter(|l| l.contains("cached") && l.contains("fit["))
        .count();
    assert!(
        committed == finished.len() || committed == finished.len() + 1,
        "{committed} committed, {} folders",
        finished.len()
    );
    let out = ws.pipeline(&["run", f]);
    assert!(out.status.success(), "{}", text(&out));
    let ran = ws.stages_with("sweep", "ran");
    let fits_ran = ran.iter().filter(|n| n.starts_with("fit[")).count();
    assert_eq!(
        fits_ran,
        20 - committed,
        "ran: {ran:?}, finished before: {finished:?}"
    );
    assert!(ran.contains(&"final".to_owned()));
}

#[test]
fn a_store_that_cannot_be_written_fails_the_run_loudly() {
    let ws = Workspace::new();
    let file = ws.write("sweep.yaml", &sweep(1, 2));
    // Open the store once, then make its objects folder impossible to write into.
    let out = ws.pipeline(&["validate", file.to_str().unwrap()]);
    assert!(out.status.success());
    let store = ws.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("objects"), b"not a folder").unwrap();
    let out = ws.pipeline(&[
        "--store",
        store.to_str().unwrap(),
        "run",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store"), "{err}");
    assert!(
        !ws.path().join("outputs/sweep/data/dataset.json").exists(),
        "nothing is served as if cached"
    );
}

#[test]
fn a_read_only_store_fails_each_stage_with_a_clear_message() {
    let ws = Workspace::new();
    let file = ws.write("sweep.yaml", &sweep(1, 2));
    let store = ws.path().join("ro-store");
    let out = ws.pipeline(&[
        "--store",
        store.to_str().unwrap(),
        "validate",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let out = ws.pipeline(&[
        "--store",
        store.to_str().unwrap(),
        "plan",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let objects = store.join("objects");
    // As root, permission bits do not stop writes; the immutable attribute does.
    let made_read_only = Command::new("chattr")
        .args(["+i", objects.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        made_read_only,
        "chattr +i failed on {}: this test needs a file system with the immutable attribute",
        objects.display()
    );
    let out = ws.pipeline(&[
        "--store",
        store.to_str().unwrap(),
        "run",
        file.to_str().unwrap(),
    ]);
    let _ = Command::new("chattr")
        .args(["-i", objects.to_str().unwrap()])
        .status();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be written"), "{err}");
    assert_eq!(
        std::fs::read_dir(store.join("manifests")).unwrap().count(),
        0,
        "nothing committed"
    );
}

#[test]
fn a_damaged_input_is_recomputed_and_verify_reports_damage() {
    let ws = Workspace::new();
    let file = ws.write("sweep.yaml", &sweep(2, 3));
    let f = file.to_str().unwrap();
    assert!(ws.pipeline(&["run", f]).status.success());
    // Flip a byte of the data set stored for the `data` stage.
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.path().join(".pipeline/state/sweep.json")).unwrap(),
    )
    .unwrap();
    let key = state["stages"]["data"]["key"].as_str().unwrap();
    let manifest_path = ws
        .path()
        .join(".pipeline/store/manifests")
        .join(&key[..2])
        .join(format!("{}.json", &key[2..]));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest_path).unwrap()).unwrap();
    let digest = manifest["files"]["dataset.safetensors"]["digest"]
        .as_str()
        .unwrap();
    let object = ws
        .path()
        .join(".pipeline/store/objects")
        .join(&digest[..2])
        .join(&digest[2..]);
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&object, bytes).unwrap();

    let out = ws.pipeline(&["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("damaged object"),
        "{}",
        text(&out)
    );

    // A run whose stages read the damaged data recomputes it first.
    let out = ws.pipeline(&["run", f, "--force", "fit"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("damaged"),
        "{}",
        text(&out)
    );
    let ran = ws.stages_with("sweep", "ran");
    assert!(ran.contains(&"data".to_owned()), "{ran:?}");
    let out = ws.pipeline(&["verify", "--repair"]);
    assert!(out.status.success(), "{}", text(&out));
    verify_clean(&ws);
}

#[test]
fn two_runs_from_empty_caches_write_identical_bytes() {
    let a = Workspace::new();
    let b = Workspace::new();
    for ws in [&a, &b] {
        let file = ws.write("sweep.yaml", &sweep(2, 4));
        let out = ws.pipeline(&["run", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let fa = all_files(&a.path().join("outputs"));
    let fb = all_files(&b.path().join("outputs"));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    let mut compared = 0;
    for (path, bytes) in &fa {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "parquet" | "safetensors") {
            assert!(
                bytes == &fb[path],
                "{} differs between two fresh runs",
                path.display()
            );
            compared += 1;
        }
    }
    assert!(compared >= 5, "compared {compared} files");
}

/// A training stage of `epochs` epochs on the sinc data.
fn training(epochs: usize) -> String {
    training_seeds(epochs, "")
}

/// [`training`], as a sweep over seeds when `seeds` lists some (`[1, 2, 3]`): the sweep then
/// trains as one batch.
fn training_seeds(epochs: usize, seeds: &str) -> String {
    let sweep = if seeds.is_empty() {
        String::new()
    } else {
        format!("    matrix: {{run: {seeds}}}\n    seed: ${{matrix.run}}\n")
    };
    format!(
        "name: resume
stages:
  data:
    kind: functions
    params: {{function: sinc, n: 2000}}
  fit:
    kind: train
{sweep}    inputs: {{data: data}}
    params:
      model: {{mlp: {{hidden: [16, 16]}}}}
      batch_size: 20
      epochs: {epochs}
      eval_every: 3
      checkpoint_every: 5
"
    )
}

fn snapshots(ws: &Workspace) -> Vec<PathBuf> {
    let resume = ws.path().join(".pipeline/store/resume");
    let mut found = Vec::new();
    for key in std::fs::read_dir(&resume).into_iter().flatten().flatten() {
        for snap in std::fs::read_dir(key.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if snap.file_name().to_string_lossy().starts_with("epoch-") {
                found.push(snap.path());
            }
        }
    }
    found
}

#[test]
fn an_interrupted_training_resumes_and_ends_with_the_same_bytes() {
    interrupted_training_resumes(&training(40), &[""], 1);
}

/// The same for three seeds trained as one batch: each run saves its own snapshots, the
/// batch resumes from the latest epoch all of them have, and every run ends with the bytes
/// of an uninterrupted batch.
#[test]
fn an_interrupted_batch_of_seeds_resumes_and_ends_with_the_same_bytes() {
    let text = training_seeds(40, "[1, 2, 3]");
    interrupted_training_resumes(&text, &["run=1/", "run=2/", "run=3/"], 3);
}

/// Runs `pipeline` whole in one workspace; in another, kills its run once each of `runs`
/// training stages has saved a snapshot of epoch 10 or later, runs it again, and compares
/// the outputs of the stages under `outputs/resume/fit/<folder>` for each of `folders`.
fn interrupted_training_resumes(pipeline: &str, folders: &[&str], runs: usize) {
    let whole = Workspace::new();
    let file = whole.write("resume.yaml", pipeline);
    let out = whole.pipeline(&["run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    let ws = Workspace::new();
    let file = ws.write("resume.yaml", pipeline);
    let f = file.to_str().unwrap();
    let spawn_run = || {
        Command::new(assert_cmd::cargo::cargo_bin("pipeline"))
            .current_dir(ws.path())
            .env("PIPELINE_RESUME_EVERY_SECS", "0")
            .args(["run", f])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = spawn_run();
    let deadline = Instant::now() + Duration::from_secs(120);
    let epoch_of = |p: &PathBuf| -> usize {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("epoch-")
            .parse()
            .unwrap_or(0)
    };
    // Kill the run once every training has saved its state after epoch 10 or later (of 40).
    let ready = || {
        let late: BTreeSet<PathBuf> = snapshots(&ws)
            .iter()
            .filter(|p| epoch_of(p) >= 10)
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        late.len() >= runs
    };
    while !ready() {
        assert!(Instant::now() < deadline, "no resume snapshot appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    no_workers_left(&ws);
    assert!(!snapshots(&ws).is_empty(), "the killed run left a snapshot");

    let out = spawn_run().wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("resumed after epoch"), "{err}");
    for folder in folders {
        for file in [
            "metrics.parquet",
            "model.safetensors",
            "checkpoints/epoch-0005.safetensors",
            "checkpoints/epoch-0040.safetensors",
        ] {
            let path = format!("outputs/resume/fit/{folder}{file}");
            let a = std::fs::read(whole.path().join(&path)).unwrap();
            let b = std::fs::read(ws.path().join(&path)).unwrap();
            assert!(
                a == b,
                "{path} differs between a resumed and an uninterrupted run"
            );
        }
    }
    assert!(
        snapshots(&ws).is_empty(),
        "snapshots are removed once the stage is committed"
    );
}
