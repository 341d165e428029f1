//! The inspection commands through the real binary: `show`, `dag`, `runs`, `diff` and
//! `report` on a small pipeline run twice with different parameters; and every command's
//! `--help` carries examples.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

mod support;

use support::{Workspace, text};

const PIPELINE: &str = "name: look
stages:
  data:
    kind: functions
    params: {function: sinc, n: 200}
  fit:
    kind: train
    matrix: {width: [4, 8]}
    inputs: {data: data}
    params: {model: {mlp: {hidden: ['${matrix.width}']}}, epochs: 2, batch_size: 50}
  curves:
    kind: line_plot
    inputs: {runs: fit}
    params: {x: epoch, y: loss, split_by: split, title: loss, x_label: epoch, y_label: MSE}
";

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A workspace where `look` ran twice: with 2 epochs, then with 3.
fn two_runs() -> (Workspace, String) {
    let ws = Workspace::new();
    let file = ws.write("look.yaml", PIPELINE).to_str().unwrap().to_owned();
    stdout(&ws.pipeline(&["run", &file]));
    stdout(&ws.pipeline(&["run", &file, "--set", "fit.params.epochs=3"]));
    (ws, file)
}

#[test]
fn inspection_commands_describe_runs_stages_and_changes() {
    let (ws, file) = two_runs();

    let runs = stdout(&ws.pipeline(&["runs", &file]));
    assert!(
        runs.starts_with("look: 2 runs recorded in .pipeline/runs/look, newest first"),
        "{runs}"
    );
    let newest = runs.lines().nth(2).unwrap();
    assert!(
        newest.starts_with("  0  ") && newest.ends_with("--set fit.params.epochs=3"),
        "{runs}"
    );
    assert!(stdout(&ws.pipeline(&["runs", &file, "--last", "1"])).contains("... and 1 older run"));

    let diff = stdout(&ws.pipeline(&["diff", &file]));
    assert!(
        diff.contains("fit[width=4]\n  param   epochs: 2 -> 3\n  metric  last epoch: 2 -> 3\n"),
        "{diff}"
    );
    assert!(diff.contains("metric  test loss: "), "{diff}");
    assert!(
        diff.contains("curves\n  input   runs: the upstream outputs differ"),
        "{diff}"
    );
    assert!(diff.contains("1 stage unchanged"), "{diff}");

    let show = stdout(&ws.pipeline(&["show", &file, "fit[width=8]", "--rows", "2"]));
    for part in [
        "fit[width=8] (train)\n",
        "folder    outputs/look/fit/width=8\n",
        "last run  ran in ",
        "parameters (from _stage.json):\n",
        "  epochs: 3\n",
        "      hidden: [8]\n",
        "  metrics.parquet    ",
        "metrics.parquet: 8 rows, 11 columns\n",
        "  accuracy    Float64 (nullable)\n",
        "  first 2 rows:\n    epoch  step  split  loss",
    ] {
        assert!(show.contains(part), "{part:?} in\n{show}");
    }
    let both = stdout(&ws.pipeline(&["show", &file, "fit", "--rows", "0"]));
    assert!(
        both.contains("fit[width=4] (train)") && both.contains("fit[width=8] (train)"),
        "{both}"
    );

    let dag = stdout(&ws.pipeline(&["dag", &file]));
    assert!(
        dag.contains("  s1[\"fit[width=4]<br/><i>train</i>\"]\n"),
        "{dag}"
    );
    assert!(
        dag.contains("  s0 -->|data| s1\n  s0 -->|data| s2\n  s1 -->|runs| s3\n"),
        "{dag}"
    );
    let dot = stdout(&ws.pipeline(&["dag", &file, "--format", "dot"]));
    assert!(dot.contains("s1 -> s3 [label=\"runs\"];"), "{dot}");

    let report = stdout(&ws.pipeline(&["report", &file]));
    assert_eq!(
        report.trim(),
        ws.path().join("outputs/look/report.html").to_str().unwrap()
    );
}

#[test]
fn diff_says_when_the_older_results_are_gone() {
    let (ws, file) = two_runs();
    let key = ws.last_run("look")["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "fit[width=4]")
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .unwrap();
    let runs = std::fs::read_dir(ws.path().join(".pipeline/runs/look"))
        .unwrap()
        .count();
    assert_eq!(runs, 2);
    // Remove the first run's result of fit[width=4] from the store, as garbage collection would.
    let first = oldest_key(&ws, "fit[width=4]");
    assert_ne!(first, key);
    let manifest = ws
        .path()
        .join(".pipeline/store/manifests")
        .join(&first[..2])
        .join(format!("{}.json", &first[2..]));
    std::fs::remove_file(&manifest).unwrap();
    let diff = stdout(&ws.pipeline(&["diff", &file]));
    assert!(
        diff.contains(&format!(
            "fit[width=4]\n  the results of run 1 (key {}) were removed from the store",
            &first[..12]
        )),
        "{diff}"
    );
    let out = ws.pipeline(&["diff", &file, "--run", "5"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has 2 recorded runs here"),
        "{}",
        text(&out)
    );
}

fn oldest_key(ws: &Workspace, stage: &str) -> String {
    let dir = ws.path().join(".pipeline/runs/look");
    let mut runs: Vec<serde_json::Value> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    runs.sort_by(|a, b| {
        a["started_unix"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["started_unix"].as_f64().unwrap())
    });
    let results = runs[0]["results"].as_array().unwrap();
    results.iter().find(|r| r["name"] == stage).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn every_command_documents_examples() {
    let ws = Workspace::new();
    let commands = [
        "run",
        "plan",
        "status",
        "validate",
        "kinds",
        "verify",
        "report",
        "show",
        "dag",
        "runs",
        "diff",
        "completions",
    ];
    for command in commands {
        let help = stdout(&ws.pipeline(&[command, "--help"]));
        assert!(
            help.contains("Example"),
            "`pipeline {command} --help` has no example:\n{help}"
        );
    }
    let completions = stdout(&ws.pipeline(&["completions", "bash"]));
    for command in ["report", "show", "dag", "runs", "diff"] {
        assert!(
            completions.contains(command),
            "{command} is missing from the completions"
        );
    }
}
