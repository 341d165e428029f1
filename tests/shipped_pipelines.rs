//! The pipelines shipped in `pipelines/` are valid, and `pipeline kinds` lists every kind.

mod support;

use support::{Workspace, repo, text};

#[test]
fn every_shipped_pipeline_validates() {
    let ws = Workspace::new();
    let dir = repo().join("pipelines");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = ws.pipeline(&["validate", path.to_str().unwrap()]);
            assert!(out.status.success(), "{}: {}", path.display(), text(&out));
            seen += 1;
        }
    }
    assert!(seen >= 1);
}

#[test]
fn help_and_kinds_work_without_a_workspace() {
    let ws = Workspace::new();
    let out = ws.pipeline(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"));
    let out = ws.pipeline(&["kinds"]);
    assert!(out.status.success(), "{}", text(&out));
    for kind in ["functions", "images", "train", "predict", "line_plot"] {
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(kind),
            "{kind}"
        );
    }
    assert!(
        !ws.path().join(".pipeline").exists(),
        "listing kinds creates no workspace"
    );
}
