//! Stages that differ only in their seeds, computed as one batch: each keeps its own key,
//! outputs and cache entry; a failure in a batch fails only its stage.

mod common;

use std::fs;

use common::{lines, options, ran, run_text};
use pipeline_engine::record::Outcome;
use pipeline_engine::run::RunOptions;

/// A data stage, a sweep over `runs` seeds of a batchable stage, a join of the sweep, and one
/// more batchable stage with other parameters (so it cannot join the batch).
fn sweep(dir: &std::path::Path, runs: &str, extra: &str) -> String {
    let count = dir.join("count.log");
    format!(
        "name: sweep\nstages:\n  data:\n    kind: write\n    params: {{text: x}}\n  fit:\n    kind: seeded\n    matrix: {{run: {runs}}}\n    seed: ${{matrix.run}}\n    inputs: {{data: data}}\n    params: {{count_file: '{c}'{extra}}}\n  other:\n    kind: seeded\n    seed: 9\n    inputs: {{data: data}}\n    params: {{count_file: '{c}', alone: true}}\n  all:\n    kind: join\n    inputs: {{parts: fit}}\n",
        c = count.display()
    )
}

/// `lines` in order: stages that run at the same time log in either order.
fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

fn batching(batch: usize) -> RunOptions {
    RunOptions { batch, ..options() }
}

#[test]
fn a_sweep_over_seeds_runs_as_one_batch_and_caches_per_stage() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count.log");
    let text = sweep(dir.path(), "[1, 2, 3, 4]", "");
    let first = run_text(dir.path(), &text, &batching(8));
    assert_eq!(ran(&first).len(), 7, "{first:?}");
    assert_eq!(sorted(lines(&count)), ["batch 4", "other"]);
    for run in 1..=4 {
        let out = dir
            .path()
            .join(format!("outputs/sweep/fit/run={run}/out.txt"));
        assert_eq!(fs::read_to_string(out).unwrap(), format!("x {run}"));
    }
    // Nothing changed: everything is cached, stage by stage.
    let again = run_text(dir.path(), &text, &batching(8));
    assert!(ran(&again).is_empty(), "{:?}", ran(&again));
    // One more seed runs alone; the four others stay cached.
    let more = sweep(dir.path(), "[1, 2, 3, 4, 5]", "");
    let grown = run_text(dir.path(), &more, &batching(8));
    assert_eq!(ran(&grown), ["all", "fit[run=5]"]);
    assert_eq!(lines(&count).last().map(String::as_str), Some("fit[run=5]"));
}

#[test]
fn batches_are_limited_in_size_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count.log");
    let text = sweep(dir.path(), "[1, 2, 3, 4, 5]", "");
    run_text(dir.path(), &text, &batching(2));
    let mut batches = lines(&count);
    batches.sort();
    assert_eq!(batches, ["batch 2", "batch 2", "fit[run=5]", "other"]);
    let alone = tempfile::tempdir().unwrap();
    let text = sweep(alone.path(), "[1, 2, 3]", "");
    run_text(alone.path(), &text, &batching(1));
    assert!(
        !lines(&alone.path().join("count.log"))
            .iter()
            .any(|l| l.starts_with("batch"))
    );
}

#[test]
fn a_stage_failing_in_a_batch_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count.log");
    let text = sweep(dir.path(), "[1, 2, 3]", ", fail_seed: 2");
    let summary = run_text(dir.path(), &text, &batching(8));
    assert_eq!(sorted(lines(&count)), ["batch 3", "other"]);
    let outcome = |name: &str| {
        summary
            .results
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.outcome.clone())
            .unwrap()
    };
    assert!(matches!(outcome("fit[run=2]"), Outcome::Failed { .. }));
    assert!(matches!(outcome("fit[run=1]"), Outcome::Ran { .. }));
    assert!(matches!(outcome("fit[run=3]"), Outcome::Ran { .. }));
    assert!(matches!(outcome("all"), Outcome::Skipped { .. }));
    // The two that succeeded were committed: the next run tries only the failed one again.
    let again = run_text(dir.path(), &text, &batching(8));
    assert!(ran(&again).is_empty(), "{:?}", ran(&again));
    assert_eq!(lines(&count).last().map(String::as_str), Some("fit[run=2]"));
}

/// The same computation declared twice (equal kind, parameters, inputs and seed) is one key:
/// it is computed once, outside any batch with itself, and the other declaration finds it
/// cached (a batch locking one key twice would wait on itself forever).
#[test]
fn two_declarations_of_one_computation_do_not_batch_with_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count.log");
    let text = format!(
        "name: twice\nstages:\n  data:\n    kind: write\n    params: {{text: x}}\n  a:\n    kind: seeded\n    seed: 1\n    inputs: {{data: data}}\n    params: {{count_file: '{c}'}}\n  b:\n    kind: seeded\n    seed: 1\n    inputs: {{data: data}}\n    params: {{count_file: '{c}'}}\n  c:\n    kind: seeded\n    seed: 2\n    inputs: {{data: data}}\n    params: {{count_file: '{c}'}}\n",
        c = count.display()
    );
    let summary = run_text(dir.path(), &text, &batching(8));
    let outcomes: Vec<_> = summary
        .results
        .iter()
        .map(|r| (r.name.clone(), r.outcome.clone()))
        .collect();
    assert!(
        summary
            .results
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Ran { .. } | Outcome::Cached)),
        "{outcomes:?}"
    );
    // Two computations in all: the shared key once and c once. (Usually a and c are one
    // batch and b finds a's key computed; when b takes the key's lock first, it runs alone,
    // the batch finds a computed and runs c alone.)
    let computed: usize = lines(&count)
        .iter()
        .map(|l| {
            l.strip_prefix("batch ")
                .map_or(1, |n| n.parse().unwrap_or(0))
        })
        .sum();
    assert_eq!(computed, 2, "{:?}", lines(&count));
}

/// A batch that runs with nothing else ready gets the idle cores (it is one computation as
/// large as all its stages together).
#[test]
fn a_batch_alone_gets_the_idle_cores() {
    let dir = tempfile::tempdir().unwrap();
    let threads = dir.path().join("threads.txt");
    let text = format!(
        "name: idle\nstages:\n  data:\n    kind: write\n    params: {{text: x}}\n  fit:\n    kind: seeded\n    matrix: {{run: [1, 2, 3]}}\n    seed: ${{matrix.run}}\n    inputs: {{data: data}}\n    params: {{count_file: '{c}', threads_file: '{t}'}}\n",
        c = dir.path().join("count.log").display(),
        t = threads.display()
    );
    let opts = RunOptions {
        jobs: 4,
        threads: 1,
        budget: 4,
        batch: 8,
        ..options()
    };
    run_text(dir.path(), &text, &opts);
    assert_eq!(lines(&dir.path().join("count.log")), ["batch 3"]);
    assert_eq!(fs::read_to_string(&threads).unwrap(), "4");
}
