//! Timings of the three analyses on MNIST-sized work at one thread, beside the plain-PyTorch
//! reference of `../shared/bench` (its CNN: conv 1→16 3×3, ReLU, dense 10). Run with
//! `MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 cargo test -p
//! pipeline-stages --release -- --ignored --nocapture timing_analyses` (the allocator settings
//! the engine gives its workers).

use serde_json::json;

use crate::testing::{Events, mnist_subset, run_stage_threads, subdir, torch_lock, train_model};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
#[ignore = "timing, not a check"]
fn timing_analyses_on_mnist_at_one_thread() -> TestResult {
    let _lock = torch_lock();
    let root = tempfile::tempdir()?;
    let data = mnist_subset(root.path(), "mnist", [0, 9000], [9000, 10000])?;
    let cnn = |batch_size: usize| {
        json!({
            "model": {"layers": [{"conv": {"filters": 16, "kernel": 3}}, "relu", "flatten",
                                 {"dense": 10}]},
            "batch_size": batch_size, "epochs": 1,
        })
    };
    let a = train_model(root.path(), "a", &data, cnn(64), 1)?;
    let b = train_model(root.path(), "b", &data, cnn(1024), 2)?;
    eprintln!(
        "one evaluation of 1,000 images: {:.1} ms",
        evaluation_ms(&a, &data)?
    );
    let runs = [
        ("sensitivity, 10,000 examples", "sensitivity", json!({})),
        (
            "sharpness, 1,000 samples on 1,000 images",
            "sharpness",
            json!({}),
        ),
        (
            "interpolation, 31 points x 10,000 examples",
            "interpolate",
            json!({}),
        ),
    ];
    for (what, kind, params) in runs {
        let out = subdir(root.path(), kind);
        let inputs: Vec<(&str, &std::path::Path)> = match kind {
            "interpolate" => vec![("a", &a), ("b", &b), ("data", &data)],
            _ => vec![("model", &a), ("data", &data)],
        };
        let started = std::time::Instant::now();
        run_stage_threads(kind, params, &inputs, &out, 0, &Events::default(), 1)?;
        eprintln!("{what}: {:.2} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The time of one no-gradient evaluation of the model in `run` on 1,000 training images, the
/// unit of work of a sharpness sample.
fn evaluation_ms(
    run: &std::path::Path,
    data: &std::path::Path,
) -> Result<f64, Box<dyn std::error::Error>> {
    let (info, plan, weights) = crate::model::checkpoint::load_model(run, tch::Device::Cpu)?;
    let set = crate::data::dataset::Dataset::load(data)?;
    let (x, y) = (
        set.train_x.narrow(0, 0, 1000),
        set.train_y.narrow(0, 0, 1000),
    );
    let split = crate::train::data::Split::new(&x, &y, &info.normalization, tch::Device::Cpu)?;
    let loss = crate::train::loss::Loss::CrossEntropy;
    tch::set_num_threads(1);
    let started = std::time::Instant::now();
    for _ in 0..50 {
        crate::train::evaluate::evaluate(&plan, &weights, loss, &split, 1000)?;
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0 / 50.0)
}
