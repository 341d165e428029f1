//! Helpers shared by the unit tests: where the real MNIST test set lives, and writers of small
//! files in the formats the readers accept.

use std::path::{Path, PathBuf};

/// The folder holding the real MNIST test set (`../shared/data/mnist-t10k` from the project
/// root), read in place and never copied into the repository.
pub(crate) fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist-t10k")
}

/// The real MNIST test images.
pub(crate) fn mnist_images() -> PathBuf {
    mnist_dir().join("t10k-images-idx3-ubyte.gz")
}

/// The real MNIST test labels.
pub(crate) fn mnist_labels() -> PathBuf {
    mnist_dir().join("t10k-labels-idx1-ubyte.gz")
}

/// The bytes of an IDX image file with the given header counts and pixels.
pub(crate) fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0x0000_0803, count, rows, cols] {
        out.extend_from_slice(&u32::to_be_bytes(v));
    }
    out.extend_from_slice(pixels);
    out
}

/// The bytes of an IDX label file holding `labels`.
pub(crate) fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0x0000_0801, labels.len() as u32] {
        out.extend_from_slice(&u32::to_be_bytes(v));
    }
    out.extend_from_slice(labels);
    out
}

/// `data` gzip-compressed.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let written = enc.write_all(data);
    assert!(written.is_ok());
    enc.finish().unwrap_or_default()
}

/// Writes `data` to `dir/name` and returns the path.
pub(crate) fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    assert!(
        std::fs::write(&path, data).is_ok(),
        "cannot write {}",
        path.display()
    );
    path
}

/// Serializes tests that use libtorch's global state: its generator (initialisation, dropout,
/// training) and its intra-op thread count. The test harness runs tests on parallel threads;
/// a draw or a reseeding by one test between another's seeding and drawing, or a thread count
/// changed under it, would break the other's reproducibility. Every stage runner reseeds and
/// sets the thread count (`init_torch`), so every test that runs a stage takes this lock.
pub(crate) fn torch_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Collects the events a stage reports.
#[derive(Default)]
pub(crate) struct Events(pub(crate) std::sync::Mutex<Vec<pipeline_engine::stage::StageEvent>>);

impl pipeline_engine::stage::EventSink for Events {
    fn emit(&self, _stage: &str, event: pipeline_engine::stage::StageEvent) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event);
    }
}

/// Runs a stage kind the way the engine does: parameters given as JSON are canonicalized by
/// the kind's declaration (defaults filled, checks run), then the runner registered for it
/// runs on CPU with 2 threads, its inputs bound to the given folders, writing into `out`.
pub(crate) fn run_stage(
    kind: &str,
    params: serde_json::Value,
    inputs: &[(&str, &Path)],
    out: &Path,
    seed: u64,
    events: &Events,
) -> Result<(), pipeline_engine::stage::StageError> {
    run_stage_threads(kind, params, inputs, out, seed, events, 2)
}

/// [`run_stage`] with a chosen number of intra-op threads.
pub(crate) fn run_stage_threads(
    kind: &str,
    params: serde_json::Value,
    inputs: &[(&str, &Path)],
    out: &Path,
    seed: u64,
    events: &Events,
    threads: usize,
) -> Result<(), pipeline_engine::stage::StageError> {
    let resume = out.join("../resume");
    let mut results = run_stages(
        kind,
        params,
        inputs,
        &[(out, &resume, seed)],
        events,
        threads,
    );
    results.pop().unwrap_or(Ok(()))
}

/// Runs stages of one kind and parameters that differ only in their seeds as the engine runs
/// a batch of them (through the kind's batch runner, if it has one), on CPU with 2 threads:
/// one `(output folder, seed)` per stage; each gets the resume folder `<output>.resume`.
pub(crate) fn run_batch(
    kind: &str,
    params: serde_json::Value,
    inputs: &[(&str, &Path)],
    runs: &[(&Path, u64)],
    events: &Events,
) -> Vec<Result<(), pipeline_engine::stage::StageError>> {
    let resume: Vec<PathBuf> = runs
        .iter()
        .map(|(out, _)| out.with_extension("resume"))
        .collect();
    let runs: Vec<(&Path, &Path, u64)> = runs
        .iter()
        .zip(&resume)
        .map(|(&(out, seed), r)| (out, r.as_path(), seed))
        .collect();
    run_stages(kind, params, inputs, &runs, events, 2)
}

/// Canonicalizes `params` as the engine does, binds `inputs`, and runs one stage per
/// `(output, resume folder, seed)`: alone when there is one, as a batch otherwise.
fn run_stages(
    kind: &str,
    params: serde_json::Value,
    inputs: &[(&str, &Path)],
    runs: &[(&Path, &Path, u64)],
    events: &Events,
    threads: usize,
) -> Vec<Result<(), pipeline_engine::stage::StageError>> {
    use pipeline_engine::stage::{
        Device, Registry, Runners, StageContext, StageError, StageInputs, UpstreamOutput,
    };
    let mut registry = Registry::new();
    pipeline_kinds::register(&mut registry);
    let mut runners = Runners::new();
    crate::register_runners(&mut runners);
    let params = registry
        .get(kind)
        .ok_or_else(|| StageError::bug(format!("no kind `{kind}` is declared")))
        .and_then(|declaration| {
            declaration
                .canonicalize(params)
                .map_err(|issue| StageError::input(format!("{:?}: {}", issue.path, issue.message)))
        });
    let params = match params {
        Ok(p) => p,
        Err(e) => return runs.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut slots = StageInputs::default();
    for (slot, dir) in inputs {
        let upstream = UpstreamOutput {
            stage: format!("upstream-{slot}"),
            matrix: Default::default(),
            dir: dir.to_path_buf(),
        };
        slots.slots.insert((*slot).to_owned(), vec![upstream]);
    }
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let names: Vec<String> = (0..runs.len()).map(|i| format!("test-stage-{i}")).collect();
    let ctxs: Vec<StageContext<'_>> = runs
        .iter()
        .zip(&names)
        .map(|(&(out, resume, seed), name)| StageContext {
            stage: if runs.len() == 1 { "test-stage" } else { name },
            pipeline: "test",
            inputs: &slots,
            out_dir: out,
            resume_dir: resume,
            workspace: Path::new(env!("CARGO_MANIFEST_DIR")),
            seed,
            threads,
            device: Device::Cpu,
            events,
            cancel: &cancel,
        })
        .collect();
    match ctxs.as_slice() {
        [ctx] => vec![runners.run(kind, &params, ctx)],
        _ => runners.run_batch(kind, &params, &ctxs),
    }
}

/// A fresh folder `name` inside `parent`.
pub(crate) fn subdir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    assert!(
        std::fs::create_dir_all(&dir).is_ok(),
        "cannot create {}",
        dir.display()
    );
    dir
}

/// A data set cut from the real MNIST test set by the `images` stage, written into
/// `root/name`: images `train[0]..train[1]` for training and `test[0]..test[1]` for testing.
pub(crate) fn mnist_subset(
    root: &Path,
    name: &str,
    train: [usize; 2],
    test: [usize; 2],
) -> Result<PathBuf, pipeline_engine::stage::StageError> {
    let out = subdir(root, name);
    let source = serde_json::json!({"idx_split": {
        "images": mnist_images(), "labels": mnist_labels(), "train": train, "test": test}});
    let params = serde_json::json!({"source": source});
    run_stage("images", params, &[], &out, 0, &Events::default())?;
    Ok(out)
}

/// Runs a `train` stage with `params` on the data set `data`, into `root/name`.
pub(crate) fn train_model(
    root: &Path,
    name: &str,
    data: &Path,
    params: serde_json::Value,
    seed: u64,
) -> Result<PathBuf, pipeline_engine::stage::StageError> {
    let out = subdir(root, name);
    run_stage(
        "train",
        params,
        &[("data", data)],
        &out,
        seed,
        &Events::default(),
    )?;
    Ok(out)
}

/// A 1-D function data set (`sinc` or `sign`) of `n` training points, written into
/// `root/name` by the `functions` stage.
pub(crate) fn function_data(
    root: &Path,
    name: &str,
    function: &str,
    n: usize,
) -> Result<PathBuf, pipeline_engine::stage::StageError> {
    let out = subdir(root, name);
    let params = serde_json::json!({"function": function, "n": n});
    run_stage("functions", params, &[], &out, 0, &Events::default())?;
    Ok(out)
}

/// Runs `f` with a stage context that binds no inputs, drops events and is never cancelled,
/// for tests of analysis code that reports progress.
pub(crate) fn with_quiet_context<R>(
    f: impl FnOnce(&pipeline_engine::stage::StageContext<'_>) -> R,
) -> R {
    let inputs = pipeline_engine::stage::StageInputs::default();
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ctx = pipeline_engine::stage::StageContext {
        stage: "test-stage",
        pipeline: "test",
        inputs: &inputs,
        out_dir: here,
        resume_dir: here,
        workspace: here,
        seed: 0,
        threads: 1,
        device: pipeline_engine::stage::Device::Cpu,
        events: &pipeline_engine::stage::NoEvents,
        cancel: &cancel,
    };
    f(&ctx)
}
