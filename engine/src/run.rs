//! The scheduler: runs every selected stage whose inputs are ready, in parallel on a rayon
//! pool, within a thread budget, until nothing is left; then records the run.
//!
//! The main thread owns all state and makes every decision (through the [`Planner`]); worker
//! threads only execute. A stage whose inputs are finished is decided at once: cached stages
//! complete on the spot (so a long chain of cache hits never waits behind a running stage),
//! others join a first-in first-out ready queue. Ready stages start while the number of
//! running stages stays within `jobs` and their intra-op threads within the budget. A failed
//! stage fails only its dependents; independent branches go on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pipeline_cache::{ContentDigest, Manifest, StageKey, StoreError};

use crate::error::EngineError;
use crate::events::{Observer, RunEvent};
use crate::filehash::FileHasher;
use crate::job::Executor;
use crate::key::KeyMaterial;
use crate::plan::{Cuda, Decision, Planner, Reason, select, stage_indices};
use crate::record::{self, Outcome, RunSummary, StageResult};
use crate::spec::Pipeline;
use crate::stage::{ErrorClass, Registry, StageError};
use crate::state::{PipelineState, StageRecord};
use crate::worker::{Assignment, WorkResult, WorkerEnv, work, work_batch};
use crate::workspace::Workspace;

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Most stages running at once.
    pub jobs: usize,
    /// Intra-op threads per stage unless the stage says otherwise.
    pub threads: usize,
    /// Most intra-op threads in use at once (normally the number of cores).
    pub budget: usize,
    /// Run only these stages and what they need (all when empty).
    pub targets: Vec<String>,
    /// Run these even if cached.
    pub force: Vec<String>,
    /// Where stages find a CUDA device.
    pub cuda: Cuda,
    /// Whether a stage may take the idle threads of the budget at the tail of a run (true
    /// where the budget is this machine's cores; a cluster gives each job what it asks for).
    pub lend_idle_threads: bool,
    /// Most stages computed together as one batch (stages of a batchable kind that differ
    /// only in their seeds; see [`crate::stage::TypedStage::batchable`]); 1 turns batching off.
    pub batch: usize,
}

/// How often a waiting scheduler checks for cancellation.
const POLL: Duration = Duration::from_millis(100);
/// How often one stage's producer may be recomputed because of damaged objects.
const MAX_RECOMPUTE: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    NotSelected,
    Waiting,
    Ready,
    Running,
    Done,
    Failed,
}

struct Ready {
    index: usize,
    key: StageKey,
    material: KeyMaterial,
    reasons: Vec<Reason>,
    threads: usize,
    /// What a stage must share with others to be computed in one batch with them (kind,
    /// parameters, inputs' contents, device, threads); `None` when its kind cannot batch.
    batch: Option<String>,
}

/// What one dispatch (a stage, or a batch of stages) gave back.
struct Dispatched {
    /// The intra-op threads it held.
    threads: usize,
    /// Each stage's end.
    finished: Vec<Finished>,
}

struct Finished {
    index: usize,
    key: StageKey,
    material: KeyMaterial,
    seconds: f64,
    result: WorkResult,
}

/// The mutable state of one run, owned by the scheduler's thread.
struct Scheduler<'a> {
    planner: Planner<'a>,
    opts: &'a RunOptions,
    observer: &'a dyn Observer,
    status: Vec<Status>,
    outputs: Vec<Option<ContentDigest>>,
    manifests: Vec<Option<Manifest>>,
    outcomes: Vec<Option<Outcome>>,
    keys: Vec<Option<StageKey>>,
    updates: BTreeMap<String, StageRecord>,
    recomputed: Vec<u32>,
    ready: VecDeque<Ready>,
    running: usize,
    running_threads: usize,
    /// Set when a decision sent a stage back to waiting, to be decided again at once.
    decide_again: bool,
}

/// Runs a pipeline and records the run; failed stages are in the summary, not an error.
pub fn run(
    workspace: &Workspace,
    pipeline: &Pipeline,
    registry: &Registry,
    executor: &dyn Executor,
    opts: &RunOptions,
    observer: &dyn Observer,
    cancel: &AtomicBool,
) -> Result<RunSummary, EngineError> {
    let started = Instant::now();
    let started_unix = record::now_unix();
    let _run_lock = hold_run_lock(workspace)?;
    match pipeline_cache::gc::clean_staging(workspace.store()) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            folders = n,
            "removed staging folders of runs that were killed"
        ),
        Err(e) => tracing::warn!(error = %e, "could not clean up staging folders"),
    }
    let selected = select(pipeline, &opts.targets).map_err(EngineError::Selection)?;
    let mut forced = BTreeSet::new();
    for name in &opts.force {
        forced.extend(stage_indices(pipeline, name).map_err(EngineError::Selection)?);
    }
    let hasher = FileHasher::load(workspace.file_hashes());
    let state = PipelineState::load(&workspace.state_file(&pipeline.name));
    let planner = Planner {
        workspace,
        pipeline,
        registry,
        state,
        hasher: &hasher,
        cuda: opts.cuda,
        forced,
    };
    let n = pipeline.stages.len();
    let mut sched = Scheduler {
        planner,
        opts,
        observer,
        status: selected
            .iter()
            .map(|&s| {
                if s {
                    Status::Waiting
                } else {
                    Status::NotSelected
                }
            })
            .collect(),
        outputs: vec![None; n],
        manifests: vec![None; n],
        outcomes: vec![None; n],
        keys: vec![None; n],
        updates: BTreeMap::new(),
        recomputed: vec![0; n],
        ready: VecDeque::new(),
        running: 0,
        running_threads: 0,
        decide_again: false,
    };
    observer.event(RunEvent::Started {
        stages: selected.iter().filter(|&&s| s).count(),
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .thread_name(|i| format!("stage-worker-{i}"))
        .build()
        .map_err(|e| EngineError::Environment {
            action: "start worker threads".into(),
            source: std::io::Error::other(e),
        })?;
    let env = WorkerEnv {
        workspace,
        pipeline,
        executor,
        observer,
        cancel,
    };
    let (tx, rx) = mpsc::channel::<Dispatched>();
    pool.in_place_scope(|scope| {
        loop {
            sched.decide_ready_stages(workspace, pipeline, cancel);
            while let Some(group) = sched.next_dispatch(cancel) {
                let threads = group[0].threads;
                sched.running += 1;
                sched.running_threads += threads;
                let mut assignments = Vec::with_capacity(group.len());
                for job in &group {
                    sched.status[job.index] = Status::Running;
                    assignments.push(sched.assignment(job, registry));
                    observer.event(RunEvent::Running {
                        stage: &pipeline.stages[job.index].name,
                        threads: job.threads,
                        reasons: &job.reasons,
                    });
                }
                if group.len() > 1 {
                    tracing::info!(
                        stages = group.len(),
                        kind = %pipeline.stages[group[0].index].kind,
                        "computing stages that differ only in their seeds as one batch"
                    );
                }
                let tx = tx.clone();
                let env = &env;
                scope.spawn(move |_| {
                    let t0 = Instant::now();
                    let results = if assignments.len() == 1 {
                        vec![work(env, &assignments[0])]
                    } else {
                        work_batch(env, &assignments)
                    };
                    let seconds = t0.elapsed().as_secs_f64();
                    let finished = group
                        .into_iter()
                        .zip(results)
                        .map(|(job, result)| Finished {
                            index: job.index,
                            key: job.key,
                            material: job.material,
                            seconds,
                            result,
                        })
                        .collect();
                    let _ = tx.send(Dispatched { threads, finished });
                });
            }
            // Every stage whose inputs are finished has been decided above, so with nothing
            // running and nothing ready, nothing is left (or the run is stopping).
            if sched.running == 0 && (sched.ready.is_empty() || cancel.load(Ordering::Relaxed)) {
                break;
            }
            match rx.recv_timeout(POLL) {
                Ok(done) => {
                    sched.running -= 1;
                    sched.running_threads = sched.running_threads.saturating_sub(done.threads);
                    for finished in done.finished {
                        sched.finish(finished);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    sched.skip_remaining(cancel.load(Ordering::Relaxed));
    hasher.save();
    if let Err(e) = PipelineState::merge_into(&workspace.state_file(&pipeline.name), &sched.updates)
    {
        tracing::warn!(error = %e, "could not write the pipeline state (only explanations are affected)");
    }
    let results = (0..n)
        .filter_map(|i| {
            let outcome = sched.outcomes[i].take()?;
            Some(StageResult {
                name: pipeline.stages[i].name.clone(),
                key: sched.keys[i],
                outcome,
            })
        })
        .collect();
    let summary = RunSummary {
        pipeline: pipeline.name.clone(),
        file: pipeline.file.clone(),
        overrides: pipeline.overrides.clone(),
        targets: opts.targets.clone(),
        forced: opts.force.clone(),
        jobs: opts.jobs,
        threads: opts.threads,
        started_unix,
        seconds: started.elapsed().as_secs_f64(),
        cancelled: cancel.load(Ordering::Relaxed),
        results,
    };
    if let Err(e) = record::write(&workspace.runs_dir(&pipeline.name), &summary) {
        tracing::warn!(error = %e, "could not write the run record");
    }
    Ok(summary)
}

/// Holds the store's run lock shared for the whole run, so that garbage collection (which takes
/// it exclusively) never removes what this run uses or is about to commit.
fn hold_run_lock(workspace: &Workspace) -> Result<std::fs::File, EngineError> {
    let path = workspace.store().layout().run_lock();
    let io = |source| EngineError::Environment {
        action: format!("take the run lock {}", path.display()),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock_shared() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::warn!("garbage collection is running on this store; waiting for it to finish");
            file.lock_shared().map_err(io)?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    Ok(file)
}

impl Scheduler<'_> {
    /// Decides every waiting stage whose inputs are all done, in pipeline order (so a chain
    /// of cached stages resolves in one pass), and skips those whose inputs failed; passes
    /// again while a pass sent a stage back to waiting (a damaged cached entry).
    fn decide_ready_stages(
        &mut self,
        workspace: &Workspace,
        pipeline: &Pipeline,
        cancel: &AtomicBool,
    ) {
        loop {
            self.decide_again = false;
            self.decide_pass(workspace, pipeline, cancel);
            if !self.decide_again {
                return;
            }
        }
    }

    fn decide_pass(&mut self, workspace: &Workspace, pipeline: &Pipeline, cancel: &AtomicBool) {
        for i in 0..self.status.len() {
            if self.status[i] != Status::Waiting {
                continue;
            }
            let upstream: Vec<usize> = pipeline.stages[i]
                .inputs
                .values()
                .flatten()
                .copied()
                .collect();
            if let Some(&bad) = upstream.iter().find(|&&u| self.status[u] == Status::Failed) {
                let because = format!("input {} failed", pipeline.stages[bad].name);
                self.fail_skipped(i, because);
                continue;
            }
            if cancel.load(Ordering::Relaxed)
                || !upstream.iter().all(|&u| self.status[u] == Status::Done)
            {
                continue;
            }
            let decision = self.planner.decide(i, &self.outputs);
            match decision {
                Ok(Decision::Cached {
                    key,
                    material,
                    manifest,
                }) => {
                    self.complete_cached(workspace, pipeline, i, key, material, manifest, false);
                }
                Ok(Decision::Run {
                    key,
                    material,
                    reasons,
                }) => {
                    let threads = pipeline.stages[i].threads_or(self.opts.threads);
                    self.keys[i] = Some(key);
                    self.status[i] = Status::Ready;
                    let batch = self.batch_identity(i, &material, threads);
                    self.ready.push_back(Ready {
                        index: i,
                        key,
                        material,
                        reasons,
                        threads,
                        batch,
                    });
                }
                Ok(Decision::Impossible { message }) => {
                    self.fail(i, StageError::environment(message), 0.0);
                }
                Ok(Decision::Pending { .. }) => {
                    self.fail(
                        i,
                        StageError::bug("inputs finished but the key is unknown"),
                        0.0,
                    );
                }
                Err(e) => {
                    self.fail(
                        i,
                        StageError::environment("cannot read the store").caused_by(&e),
                        0.0,
                    );
                }
            }
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the pieces are distinct facts"
    )]
    fn complete_cached(
        &mut self,
        workspace: &Workspace,
        pipeline: &Pipeline,
        i: usize,
        key: StageKey,
        material: KeyMaterial,
        manifest: Manifest,
        by_other_run: bool,
    ) {
        let stage = &pipeline.stages[i];
        let previous = self.planner.state.stages.get(&stage.name);
        match crate::outputs::ensure(
            workspace, pipeline, stage, &key, &material, &manifest, previous,
        ) {
            Ok(stamps) => {
                self.observer.event(RunEvent::Cached {
                    stage: &stage.name,
                    by_other_run,
                });
                let mut record = Planner::record(key, material, &manifest);
                record.stamps = stamps;
                self.remember(i, key, record, manifest);
                self.outcomes[i] = Some(Outcome::Cached);
            }
            // A stored object turned out damaged while being copied (it has been moved aside):
            // forget the entry, so that the stage is decided again and computed.
            Err(StoreError::Damaged { .. } | StoreError::Missing { .. })
                if self.recomputed[i] < MAX_RECOMPUTE =>
            {
                self.recomputed[i] += 1;
                match workspace.store().forget(&key) {
                    Ok(()) => {
                        self.observer
                            .event(RunEvent::Recomputing { stage: &stage.name });
                        self.status[i] = Status::Waiting;
                        self.decide_again = true;
                    }
                    Err(e) => {
                        let error =
                            StageError::environment("cannot forget a damaged entry").caused_by(&e);
                        self.fail(i, error, 0.0);
                    }
                }
            }
            Err(e) => {
                let error = StageError::environment("cannot copy cached outputs into outputs/")
                    .caused_by(&e);
                self.fail(i, error, 0.0);
            }
        }
    }

    fn remember(&mut self, i: usize, key: StageKey, record: StageRecord, manifest: Manifest) {
        let name = self.planner.pipeline.stages[i].name.clone();
        if self.planner.state.stages.get(&name) != Some(&record) {
            self.updates.insert(name, record);
        }
        self.keys[i] = Some(key);
        self.outputs[i] = Some(manifest.tree_digest());
        self.manifests[i] = Some(manifest);
        self.status[i] = Status::Done;
    }

    /// The next ready stage that fits the budget, unless the run is stopping, together with
    /// the ready stages it can be batched with (up to [`RunOptions::batch`] in all).
    fn next_dispatch(&mut self, cancel: &AtomicBool) -> Option<Vec<Ready>> {
        if cancel.load(Ordering::Relaxed) || self.running >= self.opts.jobs.max(1) {
            return None;
        }
        let front = self.ready.front()?;
        let fits =
            self.running == 0 || self.running_threads + front.threads <= self.opts.budget.max(1);
        if !fits {
            return None;
        }
        let first = self.ready.pop_front()?;
        let batch = first.batch.clone();
        let mut group = vec![first];
        if let Some(batch) = batch {
            let limit = self.opts.batch.max(1);
            let mut rest = VecDeque::with_capacity(self.ready.len());
            while let Some(r) = self.ready.pop_front() {
                // Two stages with one key (the same computation declared twice) never share a
                // batch: the batch locks each member's key, and would wait on itself. The
                // second waits for the first outside it and then finds it cached.
                let duplicate = group.iter().any(|g| g.key == r.key);
                if group.len() < limit && r.batch.as_ref() == Some(&batch) && !duplicate {
                    group.push(r);
                } else {
                    rest.push_back(r);
                }
            }
            self.ready = rest;
        }
        let spare = self.spare_threads(&group);
        for member in &mut group {
            member.threads += spare;
        }
        Some(group)
    }

    /// The idle cores a dispatch may have on top of its threads: all of the budget left over
    /// when nothing else is waiting to run, the stage does not set its `threads:`, and it
    /// gains from threads (its kind says so, or it is a batch). (The tail of a run, a long
    /// training left alone, then uses the machine; while many stages are ready, each keeps
    /// its one thread.)
    fn spare_threads(&self, group: &[Ready]) -> usize {
        let Some(first) = group.first() else {
            return 0;
        };
        let stage = &self.planner.pipeline.stages[first.index];
        // A batch is one computation as large as all its stages together: it gains from
        // threads even where one of its stages alone would not.
        let scales = group.len() > 1
            || self
                .planner
                .registry
                .get(&stage.kind)
                .is_some_and(|k| k.scales_with_threads(&stage.params));
        let fixed = stage.threads.is_some() || stage.resources.cpus.is_some();
        if !self.opts.lend_idle_threads || !self.ready.is_empty() || fixed || !scales {
            return 0;
        }
        let budget = self.opts.budget.max(1);
        budget.saturating_sub(self.running_threads + first.threads)
    }

    /// The batch identity of stage `i` (see [`Ready::batch`]), when its kind can batch: what
    /// its key covers but the seed (kind, version, parameters, input contents, device), and
    /// its threads.
    fn batch_identity(&self, i: usize, material: &KeyMaterial, threads: usize) -> Option<String> {
        let stage = &self.planner.pipeline.stages[i];
        let kind = self.planner.registry.get(&stage.kind)?;
        if self.opts.batch <= 1 || !kind.batchable(&stage.params) {
            return None;
        }
        let mut identity = serde_json::to_value(material).ok()?;
        let fields = identity.as_object_mut()?;
        fields.remove("seed");
        fields.insert("threads".into(), threads.into());
        Some(identity.to_string())
    }

    fn assignment(&self, job: &Ready, registry: &Registry) -> Assignment {
        let stage = &self.planner.pipeline.stages[job.index];
        let upstream = stage
            .inputs
            .values()
            .flatten()
            .filter_map(|&u| self.manifests[u].clone().map(|m| (u, m)))
            .collect();
        Assignment {
            index: job.index,
            key: job.key,
            material: job.material.clone(),
            threads: job.threads,
            upstream,
            previous: self.planner.state.stages.get(&stage.name).cloned(),
            in_process: registry.get(&stage.kind).is_some_and(|k| k.in_process()),
            forced: job.reasons.contains(&Reason::Forced),
        }
    }

    fn finish(&mut self, done: Finished) {
        let i = done.index;
        let name = self.planner.pipeline.stages[i].name.clone();
        match done.result {
            WorkResult::Ran { manifest, stamps } => {
                self.observer.event(RunEvent::Finished {
                    stage: &name,
                    seconds: done.seconds,
                });
                let mut record = Planner::record(done.key, done.material, &manifest);
                record.stamps = stamps;
                self.remember(i, done.key, record, manifest);
                self.outcomes[i] = Some(Outcome::Ran {
                    seconds: done.seconds,
                });
            }
            WorkResult::CachedByOther { manifest, stamps } => {
                self.observer.event(RunEvent::Cached {
                    stage: &name,
                    by_other_run: true,
                });
                let mut record = Planner::record(done.key, done.material, &manifest);
                record.stamps = stamps;
                self.remember(i, done.key, record, manifest);
                self.outcomes[i] = Some(Outcome::Cached);
            }
            WorkResult::InputsDamaged(upstream) => self.recompute(i, &upstream),
            WorkResult::Failed(error) => self.fail(i, error, done.seconds),
        }
    }

    /// Sends the producers of damaged inputs back to be decided again (their manifests are
    /// gone, so they run), and the reader back to waiting for them.
    fn recompute(&mut self, i: usize, upstream: &[usize]) {
        for &u in upstream {
            let name = self.planner.pipeline.stages[u].name.clone();
            if self.status[u] != Status::Done {
                // Another reader found the same damage first: the producer already runs again.
                continue;
            }
            self.recomputed[u] += 1;
            if self.recomputed[u] > MAX_RECOMPUTE {
                let error = StageError::environment(format!(
                    "outputs of {name} were damaged in the store {MAX_RECOMPUTE} times; check the disk"
                ));
                self.fail(i, error, 0.0);
                return;
            }
            self.observer.event(RunEvent::Recomputing { stage: &name });
            self.status[u] = Status::Waiting;
            self.outputs[u] = None;
            self.manifests[u] = None;
            self.outcomes[u] = None;
        }
        self.status[i] = Status::Waiting;
    }

    fn fail(&mut self, i: usize, error: StageError, seconds: f64) {
        let name = self.planner.pipeline.stages[i].name.clone();
        self.observer.event(RunEvent::Failed {
            stage: &name,
            error: &error,
        });
        self.status[i] = Status::Failed;
        let outcome = if error.class == ErrorClass::Cancelled {
            Outcome::Skipped {
                because: "the run was stopped".into(),
            }
        } else {
            Outcome::Failed { error, seconds }
        };
        self.outcomes[i] = Some(outcome);
    }

    fn fail_skipped(&mut self, i: usize, because: String) {
        let name = self.planner.pipeline.stages[i].name.clone();
        self.observer.event(RunEvent::Skipped {
            stage: &name,
            because: &because,
        });
        self.status[i] = Status::Failed;
        self.outcomes[i] = Some(Outcome::Skipped { because });
    }

    fn skip_remaining(&mut self, cancelled: bool) {
        let because = if cancelled {
            "the run was stopped"
        } else {
            "not reached"
        };
        for i in 0..self.status.len() {
            if matches!(self.status[i], Status::Waiting | Status::Ready) {
                self.fail_skipped(i, because.to_owned());
            }
        }
    }
}
