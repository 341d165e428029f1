//! Running pipelines of trivial stages: incremental reruns, early cut-off, parallelism,
//! failures, forcing and selecting stages, and the output folders.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

mod common;

use std::fs;
use std::sync::atomic::AtomicBool;

use common::{lines, options, parse, ran, registry, run_text, runners};
use pipeline_engine::Workspace;
use pipeline_engine::events::Quiet;
use pipeline_engine::filehash::FileHasher;
use pipeline_engine::job::InProcess;
use pipeline_engine::plan::{Cuda, Decision, Planner, plan_all};
use pipeline_engine::record::Outcome;
use pipeline_engine::run::run;
use pipeline_engine::state::PipelineState;

fn pipeline(dir: &std::path::Path, a_text: &str, b_text: &str) -> String {
    let count = dir.join("count.log");
    format!(
        "name: demo\nstages:\n  a:\n    kind: write\n    params: {{text: {a_text}, count_file: '{c}'}}\n  b:\n    kind: write\n    params: {{text: {b_text}, count_file: '{c}'}}\n  len_a:\n    kind: length\n    inputs: {{data: a}}\n    params: {{count_file: '{c}'}}\n  all:\n    kind: join\n    inputs: {{parts: [len_a, b]}}\n    params: {{count_file: '{c}'}}\n",
        c = count.display()
    )
}

fn plan_lines(dir: &std::path::Path, text: &str) -> Vec<String> {
    let p = parse(text, &[]).unwrap();
    let ws = Workspace::open(dir, None).unwrap();
    let registry = registry();
    let hasher = FileHasher::load(ws.file_hashes());
    let planner = Planner {
        workspace: &ws,
        pipeline: &p,
        registry: &registry,
        state: PipelineState::load(&ws.state_file(&p.name)),
        hasher: &hasher,
        cuda: Cuda::Here(false),
        forced: Default::default(),
    };
    let decisions = plan_all(&planner, &vec![true; p.stages.len()]).unwrap();
    p.stages
        .iter()
        .zip(decisions)
        .map(|(s, d)| match d.unwrap() {
            Decision::Cached { .. } => format!("{}: cached", s.name),
            Decision::Run { reasons, .. } | Decision::Pending { reasons } => {
                let r: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                format!("{}: {}", s.name, r.join("; "))
            }
            Decision::Impossible { message } => format!("{}: {message}", s.name),
        })
        .collect()
}

#[test]
fn edit_reruns_what_it_touches_and_revert_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_text(
        dir.path(),
        &pipeline(dir.path(), "hello", "world"),
        &options(),
    );
    assert!(first.succeeded());
    assert_eq!(ran(&first), ["a", "all", "b", "len_a"]);

    let again = run_text(
        dir.path(),
        &pipeline(dir.path(), "hello", "world"),
        &options(),
    );
    assert_eq!(
        ran(&again),
        Vec::<String>::new(),
        "a no-op rerun runs nothing"
    );

    let edited = pipeline(dir.path(), "hello", "moon");
    let plan = plan_lines(dir.path(), &edited);
    assert_eq!(plan[1], "b: b.text: \"world\" -> \"moon\"");
    assert_eq!(plan[0], "a: cached");
    assert!(plan[3].starts_with("all: waits for b"), "{plan:?}");
    let second = run_text(dir.path(), &edited, &options());
    assert_eq!(ran(&second), ["all", "b"]);

    let reverted = run_text(
        dir.path(),
        &pipeline(dir.path(), "hello", "world"),
        &options(),
    );
    assert_eq!(
        ran(&reverted),
        Vec::<String>::new(),
        "the old results are still in the store"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("outputs/demo/all/out.txt")).unwrap(),
        "len_a=5\nb=world\n"
    );
    assert_eq!(
        lines(&dir.path().join("count.log")).len(),
        6,
        "every execution counted once"
    );
}

#[test]
fn an_unchanged_output_leaves_readers_cached() {
    let dir = tempfile::tempdir().unwrap();
    run_text(
        dir.path(),
        &pipeline(dir.path(), "hello", "world"),
        &options(),
    );
    // Same length, different text: `a` and `len_a` run, `len_a` writes the same bytes, so
    // `all` stays cached.
    let second = run_text(
        dir.path(),
        &pipeline(dir.path(), "jelly", "world"),
        &options(),
    );
    assert_eq!(ran(&second), ["a", "len_a"]);
}

#[test]
fn independent_stages_overlap_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("times.log");
    let text = format!(
        "stages:\n  s1: {{kind: write, params: {{text: a, sleep_ms: 400, log_file: '{l}'}}}}\n  s2: {{kind: write, params: {{text: b, sleep_ms: 400, log_file: '{l}'}}}}\n",
        l = log.display()
    );
    let summary = run_text(dir.path(), &text, &options());
    assert!(summary.succeeded());
    let spans: Vec<(f64, f64)> = lines(&log)
        .iter()
        .map(|l| {
            let parts: Vec<f64> = l.split(' ').skip(1).map(|x| x.parse().unwrap()).collect();
            (parts[0], parts[1])
        })
        .collect();
    assert_eq!(spans.len(), 2);
    let overlap = spans[0].1.min(spans[1].1) - spans[0].0.max(spans[1].0);
    assert!(
        overlap > 0.0,
        "the two stages ran one after the other: {spans:?}"
    );
}

#[test]
fn with_one_job_stages_do_not_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("times.log");
    let text = format!(
        "stages:\n  s1: {{kind: write, params: {{text: a, sleep_ms: 100, log_file: '{l}'}}}}\n  s2: {{kind: write, params: {{text: b, sleep_ms: 100, log_file: '{l}'}}}}\n",
        l = log.display()
    );
    let mut opts = options();
    opts.jobs = 1;
    run_text(dir.path(), &text, &opts);
    let spans: Vec<Vec<f64>> = lines(&log)
        .iter()
        .map(|l| l.split(' ').skip(1).map(|x| x.parse().unwrap()).collect())
        .collect();
    let overlap = spans[0][1].min(spans[1][1]) - spans[0][0].max(spans[1][0]);
    assert!(overlap <= 0.0, "{spans:?}");
}

#[test]
fn a_failure_skips_its_dependents_and_spares_independent_branches() {
    let dir = tempfile::tempdir().unwrap();
    let text = "stages:\n  bad: {kind: fail}\n  after: {kind: length, inputs: {data: bad}}\n  fine: {kind: write, params: {text: ok}}\n  later: {kind: length, inputs: {data: fine}}\n";
    let summary = run_text(dir.path(), text, &options());
    assert!(!summary.succeeded());
    assert_eq!(summary.counts(), (2, 0, 1, 1));
    let outcome = |name: &str| {
        summary
            .results
            .iter()
            .find(|r| r.name == name)
            .unwrap()
            .outcome
            .clone()
    };
    assert!(matches!(outcome("bad"), Outcome::Failed { .. }));
    assert!(matches!(outcome("after"), Outcome::Skipped { .. }));
    assert!(
        !dir.path().join("outputs/test/bad").exists(),
        "nothing of a failed stage is materialized"
    );
    let staging = fs::read_dir(dir.path().join(".pipeline/store/staging"))
        .unwrap()
        .count();
    assert_eq!(staging, 0, "staging folders are cleaned up");
}

#[test]
fn force_reruns_a_stage_and_targets_limit_the_run() {
    let dir = tempfile::tempdir().unwrap();
    run_text(
        dir.path(),
        &pipeline(dir.path(), "hello", "world"),
        &options(),
    );
    let mut opts = options();
    opts.force = vec!["a".into()];
    let forced = run_text(dir.path(), &pipeline(dir.path(), "hello", "world"), &opts);
    assert_eq!(
        ran(&forced),
        ["a"],
        "same bytes, so nothing downstream runs"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut opts = options();
    opts.targets = vec!["len_a".into()];
    let partial = run_text(dir.path(), &pipeline(dir.path(), "hello", "world"), &opts);
    assert_eq!(ran(&partial), ["a", "len_a"]);
}

#[test]
fn output_folders_are_copies_with_a_stage_record() {
    let dir = tempfile::tempdir().unwrap();
    run_text(
        dir.path(),
        &pipeline(dir.path(), "hello", "world"),
        &options(),
    );
    let out = dir.path().join("outputs/demo/a");
    let info: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("_stage.json")).unwrap()).unwrap();
    assert_eq!(info["kind"], "write");
    assert_eq!(info["params"]["text"], "hello");
    // Deleting an output file by hand is repaired on the next run, without running anything.
    fs::remove_file(out.join("out.txt")).unwrap();
    let summary = run_text(
        dir.path(),
        &pipeline(dir.path(), "hello", "world"),
        &options(),
    );
    assert_eq!(ran(&summary), Vec::<String>::new());
    assert_eq!(fs::read_to_string(out.join("out.txt")).unwrap(), "hello");
}

#[test]
fn two_runs_at_once_compute_each_stage_once() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count.log");
    let text = format!(
        "name: race\nstages:\n  slow: {{kind: write, params: {{text: x, sleep_ms: 300, count_file: '{c}'}}}}\n  after: {{kind: length, inputs: {{data: slow}}, params: {{count_file: '{c}'}}}}\n",
        c = count.display()
    );
    let p = parse(&text, &[]).unwrap();
    let registry = registry();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let ws = Workspace::open(dir.path(), None).unwrap();
                let runners = runners();
                let executor = InProcess { runners: &runners };
                let summary = run(
                    &ws,
                    &p,
                    &registry,
                    &executor,
                    &options(),
                    &Quiet,
                    &AtomicBool::new(false),
                )
                .unwrap();
                assert!(summary.succeeded());
            });
        }
    });
    let mut executed = lines(&count);
    executed.sort();
    assert_eq!(executed, ["after", "slow"]);
}

#[test]
fn run_records_say_what_ran() {
    let dir = tempfile::tempdir().unwrap();
    run_text(
        dir.path(),
        &pipeline(dir.path(), "hello", "world"),
        &options(),
    );
    run_text(
        dir.path(),
        &pipeline(dir.path(), "hello", "world"),
        &options(),
    );
    let runs = pipeline_engine::record::read_all(&dir.path().join(".pipeline/runs/demo"));
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].1.counts(), (4, 0, 0, 0));
    assert_eq!(runs[1].1.counts(), (0, 4, 0, 0));
}

#[test]
fn idle_cores_go_to_the_last_stage_ready_unless_it_sets_its_threads() {
    let dir = tempfile::tempdir().unwrap();
    let opts = pipeline_engine::run::RunOptions {
        jobs: 4,
        threads: 1,
        budget: 4,
        ..options()
    };
    let text = "name: t\nstages:\n  a:\n    kind: threads\n  b:\n    kind: threads\n  c:\n    kind: threads\n    threads: 1\n    inputs: {}\n";
    run_text(dir.path(), text, &opts);
    let read =
        |s: &str| fs::read_to_string(dir.path().join(format!("outputs/t/{s}/out.txt"))).unwrap();
    // a and b are ready together with c: a gets its one thread; b, dispatched next while c
    // still waits, too; c sets its threads.
    assert_eq!(
        (read("a"), read("b"), read("c")),
        ("1".into(), "1".into(), "1".into())
    );
    let alone = tempfile::tempdir().unwrap();
    run_text(
        alone.path(),
        "name: t\nstages:\n  a:\n    kind: threads\n",
        &opts,
    );
    let out = fs::read_to_string(alone.path().join("outputs/t/a/out.txt")).unwrap();
    assert_eq!(out, "4", "a stage alone gets the idle cores");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_damaged_object_is_never_copied_into_outputs_and_its_stage_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let text = pipeline(dir.path(), "hello", "world");
    run_text(dir.path(), &text, &options());
    // Damage the stored copy of a's output, and delete the readable folder so that the next
    // run copies it out of the store again.
    let objects = dir.path().join(".pipeline/store/objects");
    let damaged: Vec<_> = files_under(&objects)
        .into_iter()
        .filter(|p| fs::read(p).is_ok_and(|b| b == b"hello"))
        .collect();
    assert_eq!(damaged.len(), 1, "one object holds a's output");
    let mut perms = fs::metadata(&damaged[0]).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    fs::set_permissions(&damaged[0], perms).unwrap();
    fs::write(&damaged[0], "hellO").unwrap();
    fs::remove_dir_all(dir.path().join("outputs/demo/a")).unwrap();
    let summary = run_text(dir.path(), &text, &options());
    assert_eq!(ran(&summary), ["a"], "a is computed again");
    let out = dir.path().join("outputs/demo/a/out.txt");
    assert_eq!(fs::read_to_string(out).unwrap(), "hello");
    let quarantined = files_under(&dir.path().join(".pipeline/store/quarantine"));
    assert_eq!(quarantined.len(), 1, "the damaged object is kept aside");
}
