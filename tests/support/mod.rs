//! Helpers for the end-to-end tests: run the real `pipeline` binary in a fresh workspace,
//! find the real MNIST test set, read run records.

#![allow(dead_code, reason = "each test file uses a part of the helpers")]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A temporary workspace.
pub struct Workspace {
    /// The folder (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// A new empty workspace.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file into the workspace and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `pipeline ARGS...` in the workspace, with stdin closed and colours off.
    pub fn pipeline(&self, args: &[&str]) -> Output {
        Command::cargo_bin("pipeline")
            .unwrap()
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("PIPELINE_WORKSPACE")
            .env_remove("PIPELINE_STORE")
            .args(args)
            .output()
            .unwrap()
    }

    /// The newest run record of a pipeline.
    pub fn last_run(&self, pipeline: &str) -> serde_json::Value {
        let dir = self.path().join(".pipeline/runs").join(pipeline);
        let mut runs: Vec<(f64, serde_json::Value)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
                (v["started_unix"].as_f64().unwrap(), v)
            })
            .collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        runs.pop().unwrap().1
    }

    /// The stages of the newest run with the given outcome (`ran`, `cached`, `failed`,
    /// `skipped`), sorted.
    pub fn stages_with(&self, pipeline: &str, outcome: &str) -> Vec<String> {
        let run = self.last_run(pipeline);
        let mut names: Vec<String> = run["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == outcome)
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    /// How many stage manifests the store holds.
    pub fn manifests(&self) -> usize {
        count_files(&self.path().join(".pipeline/store/manifests"))
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                count_files(&p)
            } else {
                usize::from(!p.file_name().unwrap().to_string_lossy().starts_with('.'))
            }
        })
        .sum()
}

/// The real MNIST test set, read in place from `../shared/data/mnist-t10k` (or
/// `$PIPELINE_TEST_MNIST`).
pub fn mnist_dir() -> PathBuf {
    let dir = std::env::var_os("PIPELINE_TEST_MNIST").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist-t10k"),
        PathBuf::from,
    );
    let dir = std::path::absolute(&dir).unwrap();
    assert!(
        dir.join("t10k-images-idx3-ubyte.gz").exists(),
        "the MNIST test set is not at {} (set PIPELINE_TEST_MNIST)",
        dir.display()
    );
    dir
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Stderr and stdout of a run, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every file under `dir`, recursively, by path relative to `dir`, with its bytes.
pub fn all_files(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}
