//! Bad input through the real binary: pipeline-file mistakes exit with code 2 and a located
//! message; bad data files fail their stage with a message naming the file and offset, and
//! leave nothing in the store.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

mod support;

use std::io::Write;

use support::{Workspace, text};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn pipeline_file_mistakes_exit_2_with_a_location() {
    let ws = Workspace::new();
    let cases = [
        (
            "stages:\n  a:\n    kind: functons\n",
            "unknown stage kind `functons`",
            "bad.yaml:3:11",
            "did you mean `functions`?",
        ),
        (
            "stages:\n  a:\n    kind: functions\n    params: {function: sinc, n: lots}\n",
            "expected a non-negative integer, found `lots`",
            "bad.yaml:4:33",
            "stages.a.params.n",
        ),
        (
            "stages:\n  a:\n    kind: functions\n    params: {functon: sinc}\n",
            "unknown key `functon`",
            "bad.yaml:4:14",
            "did you mean `function`?",
        ),
        (
            "stages:\n  a:\n    kind: train\n    inputs: {data: nowhere}\n    params: {model: {mlp: {hidden: [4]}}, epochs: 1}\n",
            "input `data` names no stage `nowhere`",
            "bad.yaml:4:20",
            "",
        ),
    ];
    for (yaml, message, place, extra) in cases {
        let file = ws.write("bad.yaml", yaml);
        let out = ws.pipeline(&["run", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = stderr(&out);
        assert!(err.contains(message), "{err}");
        assert!(err.contains(place), "{err}");
        assert!(err.contains(extra), "{err}");
    }
    let file = ws.write(
        "ok.yaml",
        "vars: {n: 10}\nstages:\n  a: {kind: functions, params: {function: sinc, n: '${n}'}}\n",
    );
    let out = ws.pipeline(&["validate", file.to_str().unwrap(), "--set", "m=3"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("names no variable, stage or top-level key `m`"),
        "{}",
        text(&out)
    );
    assert_eq!(ws.manifests(), 0);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_images(n: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        b.extend(d.to_be_bytes());
    }
    b.extend(std::iter::repeat_n(7u8, pixels));
    b
}

fn idx_labels(n: u32, count: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend(n.to_be_bytes());
    b.extend((0..count).map(|i| (i % 10) as u8));
    b
}

fn data_pipeline(ws: &Workspace) -> String {
    let file = ws.write(
        "data.yaml",
        "name: data\nstages:\n  digits:\n    kind: images\n    params:\n      source:\n        idx_split: {images: img.gz, labels: lab.gz, train: [0, 8], test: [8, 10]}\n",
    );
    file.to_str().unwrap().to_owned()
}

#[test]
fn bad_data_files_fail_with_file_and_offset_and_store_nothing() {
    let ws = Workspace::new();
    let f = data_pipeline(&ws);
    // (images, labels, what the message must name): a truncated image file and a wrong magic
    // number are located by byte offset; a count mismatch names both files and both counts.
    let cases: [(Vec<u8>, Vec<u8>, &[&str]); 3] = [
        (
            idx_images(10, 4, 4, 100),
            idx_labels(10, 10),
            &["img.gz", "offset"],
        ),
        (
            {
                let mut b = idx_images(10, 4, 4, 160);
                b[3] = 9;
                b
            },
            idx_labels(10, 10),
            &["img.gz", "magic", "offset"],
        ),
        (
            idx_images(10, 4, 4, 160),
            idx_labels(12, 12),
            &["img.gz", "lab.gz", "10 images", "12 labels"],
        ),
    ];
    for (i, (images, labels, expected)) in cases.into_iter().enumerate() {
        std::fs::write(ws.path().join("img.gz"), gzip(&images)).unwrap();
        std::fs::write(ws.path().join("lab.gz"), gzip(&labels)).unwrap();
        let out = ws.pipeline(&["run", &f]);
        assert_eq!(out.status.code(), Some(1), "case {i}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains("FAILED") && err.contains("digits"),
            "case {i}: {err}"
        );
        for expect in expected {
            assert!(
                err.contains(expect),
                "case {i}: `{expect}` missing in {err}"
            );
        }
        assert_eq!(ws.manifests(), 0, "case {i}: nothing committed");
        assert!(!ws.path().join("outputs/data/digits").exists(), "case {i}");
    }
    // Fixing the file makes the same pipeline succeed: the data file is part of the key.
    std::fs::write(ws.path().join("img.gz"), gzip(&idx_images(10, 4, 4, 160))).unwrap();
    std::fs::write(ws.path().join("lab.gz"), gzip(&idx_labels(10, 10))).unwrap();
    let out = ws.pipeline(&["run", &f]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_missing_cifar_folder_names_the_files_and_how_to_get_them() {
    let ws = Workspace::new();
    let file = ws.write("c.yaml", "name: c\nstages:\n  cifar: {kind: images, params: {source: {cifar10: {dir: nowhere/cifar-10-batches-bin}}}}\n");
    let out = ws.pipeline(&["run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("data_batch_1.bin") && err.contains("test_batch.bin"),
        "{err}"
    );
    assert!(err.contains("cifar-10-binary.tar.gz"), "{err}");
}

#[test]
fn data_outside_the_workspace_needs_data_roots() {
    let ws = Workspace::new();
    let yaml = "name: p\nstages:\n  d: {kind: images, params: {source: {idx_split: {images: ../../etc/img.gz, labels: /etc/passwd, train: [0, 1], test: [1, 2]}}}}\n";
    let file = ws.write("p.yaml", yaml);
    // `validate` refuses what `plan` and `run` refuse.
    let out = ws.pipeline(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("outside the workspace"),
        "{}",
        text(&out)
    );
    let out = ws.pipeline(&["plan", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("reads ../../etc/img.gz, which is outside the workspace"),
        "{err}"
    );
    assert!(err.contains("reads /etc/passwd"), "{err}");
    assert!(err.contains("data_roots"), "{err}");
    let allowed = format!(
        "data_roots: [/etc, {}]\n{yaml}",
        ws.path()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("etc")
            .display()
    );
    let file = ws.write("p.yaml", &allowed);
    let out = ws.pipeline(&["plan", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_symbolic_link_in_the_workspace_does_not_open_a_way_out() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path().join("data")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", ws.path().join("data/link")).unwrap();
    let yaml = "name: p\nstages:\n  d: {kind: images, params: {source: {idx_split: {images: data/link, labels: data/link, train: [0, 1], test: [1, 2]}}}}\n";
    let file = ws.write("p.yaml", yaml);
    let out = ws.pipeline(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("reads data/link, which is outside the workspace"),
        "{}",
        text(&out)
    );
}
