//! Edit one parameter and exactly the stages it touches run again; revert it and nothing
//! runs; `plan` names the changed parameter. Through the real binary and real stages.

mod support;

use support::{Workspace, text};

fn pipeline(lr: &str) -> String {
    format!(
        "name: inc
vars:
  epochs: 3
stages:
  sinc:
    kind: functions
    params: {{function: sinc, n: 500}}
  sign:
    kind: functions
    params: {{function: sign, n: 500}}
  train_a:
    kind: train
    inputs: {{data: sinc}}
    params:
      model: {{mlp: {{hidden: [8]}}}}
      optimizer: {{adam: {{lr: {lr}}}}}
      batch_size: 50
      epochs: ${{epochs}}
  train_b:
    kind: train
    inputs: {{data: sign}}
    params:
      model: {{mlp: {{hidden: [8]}}}}
      batch_size: 50
      epochs: ${{epochs}}
  curves:
    kind: line_plot
    inputs: {{runs: [train_a, train_b]}}
    params: {{x: epoch, y: loss, split_by: split, log_y: true, title: loss, x_label: epoch, y_label: MSE}}
"
    )
}

#[test]
fn an_edit_reruns_exactly_what_it_touches() {
    let ws = Workspace::new();
    let file = ws.write("inc.yaml", &pipeline("0.001"));
    let f = file.to_str().unwrap();
    let out = ws.pipeline(&["run", f]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        ws.stages_with("inc", "ran"),
        ["curves", "sign", "sinc", "train_a", "train_b"]
    );
    for figure in ["plot.png", "plot.svg"] {
        assert!(
            ws.path().join("outputs/inc/curves").join(figure).exists(),
            "{figure}"
        );
    }

    ws.write("inc.yaml", &pipeline("0.01"));
    let plan = ws.pipeline(&["plan", f]);
    assert!(plan.status.success(), "{}", text(&plan));
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert!(
        shown.contains("train_a.optimizer.adam.lr: 0.001 -> 0.01"),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.contains("cached") && l.contains("train_b")),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.contains("pending") && l.contains("curves")),
        "{shown}"
    );

    let out = ws.pipeline(&["run", f]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(ws.stages_with("inc", "ran"), ["curves", "train_a"]);

    ws.write("inc.yaml", &pipeline("0.001"));
    let out = ws.pipeline(&["run", f]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        ws.stages_with("inc", "ran").is_empty(),
        "a reverted edit is served from the store"
    );

    let out = ws.pipeline(&["run", f, "--set", "epochs=4"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        ws.stages_with("inc", "ran"),
        ["curves", "train_a", "train_b"]
    );
}

#[test]
fn one_stage_runs_with_its_upstream_only() {
    let ws = Workspace::new();
    let file = ws.write("inc.yaml", &pipeline("0.001"));
    let out = ws.pipeline(&["run", file.to_str().unwrap(), "train_b"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(ws.stages_with("inc", "ran"), ["sign", "train_b"]);
    let out = ws.pipeline(&["run", file.to_str().unwrap(), "--force", "sign"]);
    assert!(out.status.success(), "{}", text(&out));
    let ran = ws.stages_with("inc", "ran");
    assert!(
        ran.contains(&"sign".to_owned()) && !ran.contains(&"train_b".to_owned()),
        "{ran:?}: a forced stage with the same outputs leaves its readers cached"
    );
}
