//! Running one stage on a worker thread: take its key's lock, lay out its inputs, hand the job
//! to the executor, and commit and materialize what it wrote.
//!
//! The lock makes a key's computation exclusive across processes: a second run that reaches
//! the same key waits (saying for whom) and then finds the outputs committed. Inputs are
//! re-hashed before use, so a damaged object is never fed to a stage; the scheduler then has
//! its producer run again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pipeline_cache::lock::{LockGuard, TryLock};
use pipeline_cache::materialize::Stamps;
use pipeline_cache::{Manifest, StageKey, StoreError};

use crate::events::{Observer, RunEvent};
use crate::job::{Executor, StageJob};
use crate::key::KeyMaterial;
use crate::spec::Pipeline;
use crate::stage::{ErrorClass, EventSink, StageError, StageEvent, StageInputs, UpstreamOutput};
use crate::state::StageRecord;
use crate::workspace::Workspace;

/// What the scheduler hands a worker.
pub struct Assignment {
    /// The stage index.
    pub index: usize,
    /// Its key.
    pub key: StageKey,
    /// What the key covers.
    pub material: KeyMaterial,
    /// Intra-op threads.
    pub threads: usize,
    /// Manifests of its upstream stages, by index.
    pub upstream: BTreeMap<usize, Manifest>,
    /// The last successful record of the stage, if any.
    pub previous: Option<StageRecord>,
    /// Whether the kind runs in the engine's process.
    pub in_process: bool,
    /// Run even if the key is committed meanwhile (the user forced it).
    pub forced: bool,
}

/// How a worker's stage ended.
pub enum WorkResult {
    /// It ran and its outputs are committed and materialized.
    Ran {
        /// The outputs.
        manifest: Manifest,
        /// Stamps of the output folder.
        stamps: Stamps,
    },
    /// Another run committed the key while this one waited for the lock.
    CachedByOther {
        /// The outputs.
        manifest: Manifest,
        /// Stamps of the output folder.
        stamps: Stamps,
    },
    /// Objects of these upstream stages were damaged; they were forgotten and must run again.
    InputsDamaged(Vec<usize>),
    /// It failed.
    Failed(StageError),
}

/// Forwards stage events to the run's observer.
struct Forward<'a> {
    observer: &'a dyn Observer,
}

impl EventSink for Forward<'_> {
    fn emit(&self, stage: &str, event: StageEvent) {
        self.observer.event(RunEvent::Progress {
            stage,
            event: &event,
        });
    }
}

/// Everything a worker borrows from the run.
pub struct WorkerEnv<'a> {
    /// The workspace.
    pub workspace: &'a Workspace,
    /// The pipeline.
    pub pipeline: &'a Pipeline,
    /// Where jobs run.
    pub executor: &'a dyn Executor,
    /// Who hears about it.
    pub observer: &'a dyn Observer,
    /// Set to stop.
    pub cancel: &'a AtomicBool,
}

/// Runs one stage to a [`WorkResult`].
pub fn work(env: &WorkerEnv<'_>, a: &Assignment) -> WorkResult {
    work_inner(env, a).unwrap_or_else(|e| store_failure(&e))
}

/// A stage's failure because the store failed.
fn store_failure(e: &StoreError) -> WorkResult {
    let (class, message) = if e.is_unwritable() {
        (
            ErrorClass::Environment,
            "the store cannot be written (disk full or read-only?); nothing was cached",
        )
    } else {
        (ErrorClass::Bug, "the store failed")
    };
    WorkResult::Failed(StageError::new(class, message).caused_by(e))
}

/// A stage made ready to execute: its key locked, its staging folder laid out, its job written.
struct Prepared {
    _guard: LockGuard,
    _staging: pipeline_cache::store::Staging,
    job: StageJob,
}

/// What preparing a stage gave: a result already (cached meanwhile, damaged inputs, stopped),
/// or a job to execute.
enum Preparation {
    Done(WorkResult),
    Execute(Box<Prepared>),
}

fn work_inner(env: &WorkerEnv<'_>, a: &Assignment) -> Result<WorkResult, StoreError> {
    let prepared = match prepare(env, a)? {
        Preparation::Done(result) => return Ok(result),
        Preparation::Execute(p) => p,
    };
    let started = Instant::now();
    let sink = Forward {
        observer: env.observer,
    };
    if let Err(e) = env
        .executor
        .execute(&prepared.job, a.in_process, &sink, env.cancel)
    {
        return Ok(WorkResult::Failed(e));
    }
    commit(env, a, &prepared, started.elapsed().as_secs_f64())
}

/// Runs stages that differ only in their seeds as one batch (see
/// [`crate::stage::TypedStage::batchable`]) and commits each one's outputs under its own key.
/// Keys are locked in key order, so that two runs batching overlapping stages cannot deadlock.
/// Returns one result per assignment, in order.
pub fn work_batch(env: &WorkerEnv<'_>, assignments: &[Assignment]) -> Vec<WorkResult> {
    let mut order: Vec<usize> = (0..assignments.len()).collect();
    order.sort_by_key(|&i| assignments[i].key);
    let mut results: Vec<Option<WorkResult>> = assignments.iter().map(|_| None).collect();
    let mut prepared = Vec::new();
    for i in order {
        match prepare(env, &assignments[i]) {
            Ok(Preparation::Done(result)) => results[i] = Some(result),
            Ok(Preparation::Execute(p)) => prepared.push((i, p)),
            Err(e) => results[i] = Some(store_failure(&e)),
        }
    }
    let jobs: Vec<StageJob> = prepared.iter().map(|(_, p)| p.job.clone()).collect();
    let started = Instant::now();
    let sink = Forward {
        observer: env.observer,
    };
    let outcomes = match jobs.len() {
        0 => Vec::new(),
        1 => vec![env.executor.execute(&jobs[0], false, &sink, env.cancel)],
        _ => env.executor.execute_batch(&jobs, &sink, env.cancel),
    };
    let seconds = started.elapsed().as_secs_f64();
    for ((i, p), outcome) in prepared.iter().zip(outcomes) {
        let a = &assignments[*i];
        results[*i] = Some(match outcome {
            Err(e) => WorkResult::Failed(e),
            Ok(()) => commit(env, a, p, seconds).unwrap_or_else(|e| store_failure(&e)),
        });
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| WorkResult::Failed(StageError::bug("a batch lost a stage"))))
        .collect()
}

/// Locks the stage's key and lays out its staging folder and job, unless another run
/// committed the key meanwhile, an input is damaged, or the run is stopped.
fn prepare(env: &WorkerEnv<'_>, a: &Assignment) -> Result<Preparation, StoreError> {
    let stage = &env.pipeline.stages[a.index];
    let store = env.workspace.store();
    let Some(guard) = acquire(env, &stage.name, &a.key)? else {
        return Ok(Preparation::Done(WorkResult::Failed(StageError::new(
            ErrorClass::Cancelled,
            "stopped while waiting",
        ))));
    };
    if let Some(manifest) = store.manifest(&a.key)?.filter(|_| !a.forced)
        && store.check_present(&manifest).is_ok()
    {
        let stamps = materialize(env, a, &manifest, a.previous.as_ref())?;
        return Ok(Preparation::Done(WorkResult::CachedByOther {
            manifest,
            stamps,
        }));
    }
    let staging = store.staging(&sanitize(&stage.name))?;
    let damaged = check_inputs(env, a)?;
    if !damaged.is_empty() {
        return Ok(Preparation::Done(WorkResult::InputsDamaged(damaged)));
    }
    let inputs = input_views(env, a, staging.path())?;
    let out_dir = staging.path().join("out");
    std::fs::create_dir_all(&out_dir).map_err(|e| StoreError::io("create", &out_dir, e))?;
    let resume_dir = store.layout().resume(&a.key);
    std::fs::create_dir_all(&resume_dir).map_err(|e| StoreError::io("create", &resume_dir, e))?;
    let job = StageJob {
        pipeline: env.pipeline.name.clone(),
        stage: stage.name.clone(),
        kind: stage.kind.clone(),
        params: stage.params.clone(),
        inputs,
        out_dir,
        resume_dir,
        workspace: env.workspace.root().to_path_buf(),
        seed: stage.seed,
        threads: a.threads,
        device: a.material.device,
        resources: stage.resources,
    };
    Ok(Preparation::Execute(Box::new(Prepared {
        _guard: guard,
        _staging: staging,
        job,
    })))
}

/// Commits what an executed stage wrote and materializes it.
fn commit(
    env: &WorkerEnv<'_>,
    a: &Assignment,
    p: &Prepared,
    seconds: f64,
) -> Result<WorkResult, StoreError> {
    let stage = &env.pipeline.stages[a.index];
    let info = BTreeMap::from([
        ("kind".to_owned(), serde_json::json!(stage.kind)),
        ("stage".to_owned(), serde_json::json!(stage.name)),
        ("pipeline".to_owned(), serde_json::json!(env.pipeline.name)),
        ("seconds".to_owned(), serde_json::json!(seconds)),
        ("threads".to_owned(), serde_json::json!(a.threads)),
        (
            "host".to_owned(),
            serde_json::json!(pipeline_cache::lock::hostname()),
        ),
        (
            "finished_unix".to_owned(),
            serde_json::json!(crate::record::now_unix()),
        ),
        // What the key covers, so that any stored result can be explained (and compared
        // with another) without the pipeline file that produced it.
        (
            "material".to_owned(),
            serde_json::to_value(&a.material).unwrap_or_default(),
        ),
    ]);
    let manifest = env.workspace.store().commit(&a.key, &p.job.out_dir, info)?;
    let _ = pipeline_cache::store::remove_tree(&p.job.resume_dir);
    let stamps = materialize(env, a, &manifest, None)?;
    Ok(WorkResult::Ran { manifest, stamps })
}

/// Copies the committed outputs into the stage's output folder (unless `previous` shows they
/// are there already, intact).
fn materialize(
    env: &WorkerEnv<'_>,
    a: &Assignment,
    manifest: &Manifest,
    previous: Option<&StageRecord>,
) -> Result<Stamps, StoreError> {
    let stage = &env.pipeline.stages[a.index];
    crate::outputs::ensure(
        env.workspace,
        env.pipeline,
        stage,
        &a.key,
        &a.material,
        manifest,
        previous,
    )
}

/// Takes the key's lock, waiting (and saying so) while another process holds it; `None` if
/// the run is stopped meanwhile.
fn acquire(
    env: &WorkerEnv<'_>,
    stage: &str,
    key: &StageKey,
) -> Result<Option<LockGuard>, StoreError> {
    let store = env.workspace.store();
    let mut announced = false;
    loop {
        match store.try_lock(key, stage)? {
            TryLock::Acquired(guard) => {
                if let Some(holder) = &guard.taken_over {
                    env.observer.event(RunEvent::TookOver { stage, holder });
                }
                return Ok(Some(guard));
            }
            TryLock::Busy(holder) => {
                if !announced {
                    env.observer.event(RunEvent::Waiting {
                        stage,
                        holder: holder.as_ref(),
                    });
                    announced = true;
                }
                if env.cancel.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Re-hashes every input object; damaged ones are moved aside and their stages forgotten.
fn check_inputs(env: &WorkerEnv<'_>, a: &Assignment) -> Result<Vec<usize>, StoreError> {
    let store = env.workspace.store();
    let mut damaged = Vec::new();
    for (&u, manifest) in &a.upstream {
        for entry in manifest.files.values() {
            match store.verify_entry(entry) {
                Ok(()) => {}
                Err(StoreError::Damaged { path, .. } | StoreError::Missing { path }) => {
                    tracing::warn!(object = %path.display(), "damaged input object; recomputing");
                    store.quarantine(&path)?;
                    store.forget(&manifest.key)?;
                    damaged.push(u);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(damaged)
}

fn input_views(
    env: &WorkerEnv<'_>,
    a: &Assignment,
    staging: &std::path::Path,
) -> Result<StageInputs, StoreError> {
    let stage = &env.pipeline.stages[a.index];
    let mut slots = BTreeMap::new();
    for (slot, upstream) in &stage.inputs {
        let mut list = Vec::with_capacity(upstream.len());
        for (n, u) in upstream.iter().enumerate() {
            let dir = staging.join("inputs").join(slot).join(n.to_string());
            std::fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
            if let Some(manifest) = a.upstream.get(u) {
                env.workspace.store().input_view(manifest, &dir)?;
            }
            let up = &env.pipeline.stages[*u];
            list.push(UpstreamOutput {
                stage: up.name.clone(),
                matrix: up.matrix.iter().cloned().collect(),
                dir,
            });
        }
        slots.insert(slot.clone(), list);
    }
    Ok(StageInputs { slots })
}

/// A stage name as a file name (its first 100 characters: a matrix member's full name can be
/// longer than a file name may be).
fn sanitize(name: &str) -> String {
    name.chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
