//! The real binary on real data: a small CNN trained for one epoch on 8,000 images of the
//! MNIST test set reaches over 90% accuracy on the other 2,000.

mod support;

use pipeline_reports::Table;
use support::{Workspace, mnist_dir, text};

#[test]
fn a_small_cnn_learns_mnist_in_one_epoch() {
    let ws = Workspace::new();
    let mnist = mnist_dir();
    let file = ws.write(
        "mnist.yaml",
        &format!(
            "name: mnist\ndata_roots: [{d}]\nstages:\n  digits:\n    kind: images\n    params:\n      source:\n        idx_split:\n          images: {d}/t10k-images-idx3-ubyte.gz\n          labels: {d}/t10k-labels-idx1-ubyte.gz\n          train: [0, 8000]\n          test: [8000, 10000]\n  cnn:\n    kind: train\n    inputs: {{data: digits}}\n    threads: 2\n    params:\n      model:\n        layers:\n          - {{conv: {{filters: 16, kernel: 3, padding: same}}}}\n          - relu\n          - {{maxpool: 2}}\n          - flatten\n          - {{dense: 10}}\n      optimizer: {{adam: {{lr: 0.002}}}}\n      batch_size: 32\n      epochs: 1\n",
            d = mnist.display()
        ),
    );
    let out = ws.pipeline(&["run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(ws.stages_with("mnist", "ran"), ["cnn", "digits"]);

    let metrics =
        Table::read_parquet(&ws.path().join("outputs/mnist/cnn/metrics.parquet")).unwrap();
    let test = metrics.filter_eq("split", "test").unwrap();
    let epochs = test.i64s("epoch").unwrap();
    let accuracy = test.f64s("accuracy").unwrap();
    let last = epochs
        .iter()
        .position(|&e| e == 1)
        .expect("a row for epoch 1");
    let acc = accuracy[last].unwrap();
    assert!(acc > 0.90, "test accuracy after one epoch: {acc}");
    for file in ["model.safetensors", "model.json", "_stage.json"] {
        assert!(
            ws.path().join("outputs/mnist/cnn").join(file).exists(),
            "{file}"
        );
    }

    let again = ws.pipeline(&["run", file.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(ws.stages_with("mnist", "cached"), ["cnn", "digits"]);
}
