//! Trivial stage kinds and helpers for the engine's tests (no libtorch).

#![allow(
    dead_code,
    missing_docs,
    reason = "shared by several test crates; each uses a part"
)]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pipeline_engine::Workspace;
use pipeline_engine::events::Quiet;
use pipeline_engine::job::InProcess;
use pipeline_engine::plan::Cuda;
use pipeline_engine::record::RunSummary;
use pipeline_engine::run::{RunOptions, run};
use pipeline_engine::spec::{self, Pipeline};
use pipeline_engine::stage::{
    InputSlot, ParamIssue, Registry, Runners, StageContext, StageError, TypedStage, typed,
};
use serde::{Deserialize, Serialize};

/// Writes `text` to `out.txt`; counts its executions in `count_file` if given.
pub struct WriteText;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteParams {
    pub text: String,
    #[serde(default)]
    pub repeat: u32,
    #[serde(default)]
    pub count_file: Option<PathBuf>,
    #[serde(default)]
    pub sleep_ms: u64,
    #[serde(default)]
    pub log_file: Option<PathBuf>,
}

fn count(path: &Option<PathBuf>, stage: &str) {
    if let Some(p) = path {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .unwrap();
        std::io::Write::write_all(&mut f, format!("{stage}\n").as_bytes()).unwrap();
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

impl TypedStage for WriteText {
    type Params = WriteParams;
    const NAME: &'static str = "write";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str = "writes a text";
    fn check(&self, p: &WriteParams) -> Result<(), ParamIssue> {
        if p.repeat > 1000 {
            return Err(ParamIssue::at("repeat", "at most 1000"));
        }
        Ok(())
    }
    fn in_process(&self) -> bool {
        true
    }
}

impl WriteText {
    fn run(p: WriteParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
        let start = now();
        count(&p.count_file, ctx.stage);
        std::thread::sleep(Duration::from_millis(p.sleep_ms));
        let text = p.text.repeat(p.repeat.max(1) as usize);
        fs::write(ctx.out_dir.join("out.txt"), text)
            .map_err(|e| StageError::io("write", ctx.out_dir, &e))?;
        if let Some(log) = &p.log_file {
            let mut f = fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(log)
                .unwrap();
            std::io::Write::write_all(
                &mut f,
                format!("{} {start} {}\n", ctx.stage, now()).as_bytes(),
            )
            .unwrap();
        }
        Ok(())
    }
}

/// Joins the `out.txt` of its inputs, upper-cased, with their stage names.
pub struct Join;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinParams {
    #[serde(default)]
    pub upper: bool,
    #[serde(default)]
    pub count_file: Option<PathBuf>,
}

impl TypedStage for Join {
    type Params = JoinParams;
    const NAME: &'static str = "join";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str = "joins texts";
    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::many("parts", "stages with out.txt"),
            InputSlot::optional("extra", "one more"),
        ];
        SLOTS
    }
    fn in_process(&self) -> bool {
        true
    }
}

impl Join {
    fn run(p: JoinParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
        count(&p.count_file, ctx.stage);
        let mut out = String::new();
        for part in ctx
            .inputs
            .many("parts")
            .iter()
            .chain(ctx.inputs.optional("extra"))
        {
            let text = fs::read_to_string(part.file("out.txt"))
                .map_err(|e| StageError::io("read", &part.dir, &e))?;
            out.push_str(&format!(
                "{}={}\n",
                part.label(),
                if p.upper { text.to_uppercase() } else { text }
            ));
        }
        fs::write(ctx.out_dir.join("out.txt"), out)
            .map_err(|e| StageError::io("write", ctx.out_dir, &e))
    }
}

/// Always fails.
pub struct Fail;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailParams {}

impl TypedStage for Fail {
    type Params = FailParams;
    const NAME: &'static str = "fail";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str = "fails";
    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::optional("data", "anything")];
        SLOTS
    }
}

impl Fail {
    fn run(_p: FailParams, _ctx: &StageContext<'_>) -> Result<(), StageError> {
        Err(StageError::input("this stage always fails"))
    }
}

/// Reads one input and writes its length: a stage whose output often does not change.
pub struct Length;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LengthParams {
    #[serde(default)]
    pub count_file: Option<PathBuf>,
}

impl TypedStage for Length {
    type Params = LengthParams;
    const NAME: &'static str = "length";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str = "length of a text";
    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::one("data", "a stage with out.txt")];
        SLOTS
    }
}

impl Length {
    fn run(p: LengthParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
        count(&p.count_file, ctx.stage);
        let data = ctx.inputs.one("data")?;
        let text = fs::read_to_string(data.file("out.txt"))
            .map_err(|e| StageError::io("read", &data.dir, &e))?;
        fs::write(ctx.out_dir.join("out.txt"), text.len().to_string())
            .map_err(|e| StageError::io("write", ctx.out_dir, &e))
    }
}

/// Writes its seed after its input's text; batchable (unless `alone`): a batch logs
/// `batch <n>` to `count_file`, a stage run alone logs its name. The stage whose seed is
/// `fail_seed` fails.
pub struct Seeded;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeededParams {
    pub count_file: PathBuf,
    #[serde(default)]
    pub fail_seed: Option<u64>,
    #[serde(default)]
    pub alone: bool,
    /// Where a batch writes the intra-op threads it was given.
    #[serde(default)]
    pub threads_file: Option<PathBuf>,
}

impl TypedStage for Seeded {
    type Params = SeededParams;
    const NAME: &'static str = "seeded";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str = "writes its seed";
    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::one("data", "a stage with out.txt")];
        SLOTS
    }
    fn batchable(&self, p: &SeededParams) -> bool {
        !p.alone
    }
}

impl Seeded {
    fn run(p: SeededParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
        count(&Some(p.count_file.clone()), ctx.stage);
        Self::write(&p, ctx)
    }

    fn run_batch(p: SeededParams, ctxs: &[StageContext<'_>]) -> Vec<Result<(), StageError>> {
        count(
            &Some(p.count_file.clone()),
            &format!("batch {}", ctxs.len()),
        );
        if let (Some(file), Some(ctx)) = (&p.threads_file, ctxs.first()) {
            fs::write(file, ctx.threads.to_string()).unwrap();
        }
        ctxs.iter().map(|ctx| Self::write(&p, ctx)).collect()
    }

    fn write(p: &SeededParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
        if p.fail_seed == Some(ctx.seed) {
            return Err(StageError::numerical(format!("seed {} fails", ctx.seed)));
        }
        let data = ctx.inputs.one("data")?;
        let text = fs::read_to_string(data.file("out.txt"))
            .map_err(|e| StageError::io("read", &data.dir, &e))?;
        fs::write(ctx.out_dir.join("out.txt"), format!("{text} {}", ctx.seed))
            .map_err(|e| StageError::io("write", ctx.out_dir, &e))
    }
}

/// Writes the intra-op threads it was given; runs in a worker (so it may get idle cores).
pub struct Threads;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadsParams {}

impl TypedStage for Threads {
    type Params = ThreadsParams;
    const NAME: &'static str = "threads";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str = "writes its thread count";
}

impl Threads {
    fn run(_p: ThreadsParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
        fs::write(ctx.out_dir.join("out.txt"), ctx.threads.to_string())
            .map_err(|e| StageError::io("write", ctx.out_dir, &e))
    }
}

pub fn runners() -> Runners {
    let mut r = Runners::new();
    r.add::<WriteText>(WriteText::run)
        .add::<Join>(Join::run)
        .add::<Fail>(Fail::run)
        .add::<Length>(Length::run)
        .add::<Seeded>(Seeded::run)
        .add_batched::<Seeded>(Seeded::run_batch)
        .add::<Threads>(Threads::run);
    r
}

pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(typed(WriteText))
        .register(typed(Join))
        .register(typed(Fail))
        .register(typed(Length))
        .register(typed(Seeded))
        .register(typed(Threads));
    r
}

pub fn parse(text: &str, overrides: &[&str]) -> Result<Pipeline, spec::SpecErrors> {
    let o: Vec<String> = overrides.iter().map(|s| (*s).to_owned()).collect();
    spec::parse_str(Path::new("test.yaml"), text, &o, &registry())
}

pub fn parse_err(text: &str, overrides: &[&str]) -> String {
    match parse(text, overrides) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.render(),
    }
}

pub fn options() -> RunOptions {
    RunOptions {
        jobs: 2,
        threads: 1,
        budget: 2,
        targets: vec![],
        force: vec![],
        cuda: Cuda::Here(false),
        lend_idle_threads: true,
        batch: 1,
    }
}

pub fn run_text(dir: &Path, text: &str, opts: &RunOptions) -> RunSummary {
    let pipeline = parse(text, &[]).unwrap_or_else(|e| panic!("{}", e.render()));
    let ws = Workspace::open(dir, None).unwrap();
    let registry = registry();
    let runners = runners();
    let executor = InProcess { runners: &runners };
    run(
        &ws,
        &pipeline,
        &registry,
        &executor,
        opts,
        &Quiet,
        &AtomicBool::new(false),
    )
    .unwrap()
}

pub fn ran(summary: &RunSummary) -> Vec<String> {
    let mut names: Vec<String> = summary
        .results
        .iter()
        .filter(|r| matches!(r.outcome, pipeline_engine::record::Outcome::Ran { .. }))
        .map(|r| r.name.clone())
        .collect();
    names.sort();
    names
}

pub fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}
