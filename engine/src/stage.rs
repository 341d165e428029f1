//! The stage contract: what a stage kind declares (name, version, typed parameters, input
//! slots, external files) and what it is handed when it runs (a [`StageContext`]).
//!
//! A stage is a pure function of (kind, version, parameters, input contents, seed, device
//! class): everything that changes its outputs must be in one of those, because that is what
//! the cache key covers. A stage writes its outputs into the fresh directory it is given and
//! nowhere else; it never spawns threads of its own beyond the intra-op threads it is granted,
//! and it reports progress through the context instead of printing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How many upstream stages an input slot takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly one upstream stage.
    One,
    /// Zero or one upstream stage.
    Optional,
    /// One or more upstream stages (a list, or a whole matrix group).
    Many,
}

/// One named input of a stage kind.
#[derive(Clone, Copy, Debug)]
pub struct InputSlot {
    /// The key under `inputs:` in the pipeline file.
    pub name: &'static str,
    /// How many upstream stages it takes.
    pub arity: Arity,
    /// What the slot expects, for `--help` output and error messages.
    pub doc: &'static str,
}

impl InputSlot {
    /// A slot that takes exactly one upstream stage.
    pub const fn one(name: &'static str, doc: &'static str) -> Self {
        Self {
            name,
            arity: Arity::One,
            doc,
        }
    }
    /// A slot that takes zero or one upstream stage.
    pub const fn optional(name: &'static str, doc: &'static str) -> Self {
        Self {
            name,
            arity: Arity::Optional,
            doc,
        }
    }
    /// A slot that takes one or more upstream stages.
    pub const fn many(name: &'static str, doc: &'static str) -> Self {
        Self {
            name,
            arity: Arity::Many,
            doc,
        }
    }
}

/// The device class a stage runs on. Part of the cache key: CPU and CUDA results differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The host CPU.
    #[default]
    Cpu,
    /// An NVIDIA GPU through CUDA (the first visible one).
    Cuda,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

/// The committed outputs of one upstream stage, as a stage sees them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UpstreamOutput {
    /// The upstream stage's full name (`train[width=4]`).
    pub stage: String,
    /// The matrix values that produced the upstream stage, by axis (empty outside a matrix).
    pub matrix: BTreeMap<String, String>,
    /// A read-only directory holding the upstream stage's output files.
    pub dir: PathBuf,
}

impl UpstreamOutput {
    /// A short label for plots and tables: the matrix values if any, else the stage name.
    pub fn label(&self) -> String {
        if self.matrix.is_empty() {
            self.stage.clone()
        } else {
            let parts: Vec<String> = self
                .matrix
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.join(",")
        }
    }

    /// The path of one output file of the upstream stage.
    pub fn file(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }
}

/// Short, distinct labels for a list of upstream outputs, for legends and table columns: the
/// values of the matrix axes that differ between them (`deep`, `shallow`; or `lr=0.01,batch=64`
/// when several axes differ), else their stage names.
pub fn short_labels(list: &[UpstreamOutput]) -> Vec<String> {
    let all_matrix = !list.is_empty() && list.iter().all(|u| !u.matrix.is_empty());
    if !all_matrix {
        return list.iter().map(|u| u.stage.clone()).collect();
    }
    let first = &list[0].matrix;
    let varying: Vec<&String> = first
        .keys()
        .filter(|axis| list.iter().any(|u| u.matrix.get(*axis) != first.get(*axis)))
        .collect();
    let bases_differ = list
        .iter()
        .any(|u| base_name(&u.stage) != base_name(&list[0].stage));
    if varying.is_empty() || bases_differ {
        return list.iter().map(|u| u.stage.clone()).collect();
    }
    list.iter()
        .map(|u| match varying.as_slice() {
            [axis] => u.matrix.get(*axis).cloned().unwrap_or_default(),
            axes => axes
                .iter()
                .map(|a| format!("{a}={}", u.matrix.get(*a).map_or("", String::as_str)))
                .collect::<Vec<_>>()
                .join(","),
        })
        .collect()
}

fn base_name(stage: &str) -> &str {
    stage.split('[').next().unwrap_or(stage)
}

/// The inputs of a stage, by slot name, in the order the pipeline file lists them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StageInputs {
    /// Slot name to the upstream outputs bound to it.
    pub slots: BTreeMap<String, Vec<UpstreamOutput>>,
}

impl StageInputs {
    /// The single upstream output bound to `slot`.
    pub fn one(&self, slot: &str) -> Result<&UpstreamOutput, StageError> {
        match self.slots.get(slot).map(Vec::as_slice) {
            Some([only]) => Ok(only),
            Some(many) if !many.is_empty() => Err(StageError::bug(format!(
                "input `{slot}` has {} stages bound where one was declared",
                many.len()
            ))),
            _ => Err(StageError::bug(format!("input `{slot}` is not bound"))),
        }
    }

    /// The upstream output bound to an optional `slot`, if any.
    pub fn optional(&self, slot: &str) -> Option<&UpstreamOutput> {
        self.slots.get(slot).and_then(|v| v.first())
    }

    /// Every upstream output bound to `slot` (empty if none).
    pub fn many(&self, slot: &str) -> &[UpstreamOutput] {
        self.slots.get(slot).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// What a running stage reports; the engine forwards it to progress bars and run records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StageEvent {
    /// Units of work done so far out of a total (epochs, perturbations, points...).
    Progress {
        /// Units finished.
        done: u64,
        /// Units in all.
        total: u64,
        /// What a unit is (`epoch`, `point`).
        unit: String,
        /// Latest figures worth showing next to the bar (`loss=0.031`), may be empty.
        message: String,
    },
    /// A one-line note that belongs in the run log (`resumed from epoch 40`).
    Note {
        /// The note.
        message: String,
    },
}

/// Receives the events of running stages.
pub trait EventSink: Send + Sync {
    /// Called from the stage's thread each time it reports.
    fn emit(&self, stage: &str, event: StageEvent);
}

/// An [`EventSink`] that drops everything.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _stage: &str, _event: StageEvent) {}
}

/// What a stage is given when it runs.
pub struct StageContext<'a> {
    /// The stage's full name in the pipeline (`train[width=4]`).
    pub stage: &'a str,
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// The upstream outputs bound to each input slot.
    pub inputs: &'a StageInputs,
    /// A fresh, empty, private directory for the stage's outputs.
    pub out_dir: &'a Path,
    /// A directory that survives an interrupted run of the same stage key (resume state);
    /// removed once the outputs are committed.
    pub resume_dir: &'a Path,
    /// The directory relative paths in parameters are resolved against.
    pub workspace: &'a Path,
    /// The stage's seed.
    pub seed: u64,
    /// Intra-op threads granted to this stage.
    pub threads: usize,
    /// The device class the stage runs on.
    pub device: Device,
    /// Where to send progress.
    pub events: &'a dyn EventSink,
    /// Set when the run is being stopped; long stages check it between units of work.
    pub cancel: &'a AtomicBool,
}

impl StageContext<'_> {
    /// Reports progress: `done` of `total` units, with a short message.
    pub fn progress(&self, done: u64, total: u64, unit: &str, message: impl Into<String>) {
        let event = StageEvent::Progress {
            done,
            total,
            unit: unit.to_owned(),
            message: message.into(),
        };
        self.events.emit(self.stage, event);
    }

    /// Reports a one-line note for the run log.
    pub fn note(&self, message: impl Into<String>) {
        let event = StageEvent::Note {
            message: message.into(),
        };
        self.events.emit(self.stage, event);
    }

    /// Fails with [`ErrorClass::Cancelled`] once the run is being stopped.
    pub fn check_cancelled(&self) -> Result<(), StageError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(StageError::new(
                ErrorClass::Cancelled,
                "stopped before it finished",
            ))
        } else {
            Ok(())
        }
    }

    /// Resolves a path from the parameters against the workspace.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.workspace.join(path)
    }
}

/// Who is to blame for a failure; decides the wording and the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Bad input from the user: a malformed data file, an impossible parameter combination.
    Input,
    /// A problem of the machine: a missing file, no GPU, a full disk.
    Environment,
    /// The computation itself failed (a loss became NaN, say).
    Numerical,
    /// The run was stopped.
    Cancelled,
    /// A bug in `pipeline`.
    Bug,
}

/// Why a stage failed: a class, a one-line summary, and the chain of causes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StageError {
    /// Who is to blame.
    pub class: ErrorClass,
    /// A lowercase one-line summary.
    pub message: String,
    /// Causes, outermost first.
    pub causes: Vec<String>,
}

impl StageError {
    /// An error of the given class.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            causes: Vec::new(),
        }
    }
    /// Bad input from the user.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Input, message)
    }
    /// A problem of the machine.
    pub fn environment(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Environment, message)
    }
    /// A numerical failure.
    pub fn numerical(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Numerical, message)
    }
    /// A bug in `pipeline`.
    pub fn bug(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Bug, message)
    }
    /// Adds the chain of an underlying error as causes.
    pub fn caused_by(mut self, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = next {
            self.causes.push(e.to_string());
            next = e.source();
        }
        self
    }
    /// Wraps an I/O error on `path` as an environment problem.
    pub fn io(action: &str, path: &Path, err: &std::io::Error) -> Self {
        Self::environment(format!("cannot {action} {}", path.display())).caused_by(err)
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for cause in &self.causes {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StageError {}

/// A problem with a parameter value found after it was parsed (a range, a combination).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamIssue {
    /// The key path inside `params`, e.g. `["optimizer", "lr"]`; empty for the whole block.
    pub path: Vec<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ParamIssue {
    /// An issue at a key path given as dotted text (`optimizer.lr`).
    pub fn at(path: &str, message: impl Into<String>) -> Self {
        let path = path
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Self {
            path,
            message: message.into(),
        }
    }
}

/// The declaration of a stage kind with a typed parameter struct: name, version, inputs and
/// parameters, everything the planner needs. Implement this; the engine wraps it with [`typed`]
/// into the object-safe [`StageKind`] it plans with. The code that runs the kind is a
/// [`RunFn`] registered in [`Runners`].
pub trait TypedStage: Send + Sync + 'static {
    /// The parameters, deserialized from the stage's `params:` block. Reject unknown keys
    /// (`#[serde(deny_unknown_fields)]`) and give every optional key a default, so that the
    /// canonical form (what the cache key covers) has every value filled in.
    type Params: Serialize + DeserializeOwned;

    /// The `kind:` name in pipeline files.
    const NAME: &'static str;
    /// Bump when the outputs for the same parameters and inputs change.
    const VERSION: u32;
    /// One line for `pipeline kinds` and error messages.
    const SUMMARY: &'static str;
    /// A YAML example of a stage of this kind, for `pipeline kinds NAME` (parsed by tests).
    const EXAMPLE: &'static str = "";

    /// The input slots.
    fn inputs(&self) -> &'static [InputSlot] {
        &[]
    }

    /// Checks of values and combinations that serde cannot express.
    fn check(&self, _params: &Self::Params) -> Result<(), ParamIssue> {
        Ok(())
    }

    /// Files outside the store that the stage reads (data sets), as written in the
    /// parameters: relative paths are resolved against the workspace by the engine. Their
    /// contents join the stage's key (their paths, as written, too), and the engine refuses
    /// paths outside the workspace unless the pipeline lists a folder holding them under
    /// `data_roots`.
    fn external_files(&self, _params: &Self::Params) -> Vec<PathBuf> {
        Vec::new()
    }

    /// Whether the stage is cheap and touches no libtorch state, so that it can run inside the
    /// engine's process instead of a child process of its own.
    fn in_process(&self) -> bool {
        false
    }

    /// Whether a stage with these parameters may be computed together with other stages of
    /// the same kind, parameters and inputs that differ only in their seed (a sweep over
    /// seeds), by the batch runner registered with [`Runners::add_batched`]. The outputs and
    /// cache keys stay per stage; only the computation is shared. The batch runner must give
    /// each stage what running it alone gives (up to floating-point rounding).
    fn batchable(&self, _params: &Self::Params) -> bool {
        false
    }

    /// Whether a stage with these parameters runs faster with more intra-op threads. When
    /// nothing else is ready to run, the scheduler gives such a stage the cores that would
    /// otherwise idle (unless the pipeline sets its `threads:`); work made of tiny operations
    /// (small fully connected models) gains nothing from a second thread and says no.
    fn scales_with_threads(&self, _params: &Self::Params) -> bool {
        !self.in_process()
    }
}

/// The code that runs a stage kind: a function of its typed parameters and the context.
/// Declarations ([`TypedStage`]) and runners are registered separately, so that a binary that
/// only plans (and must start fast) need not link what the stages run on (libtorch).
pub type RunFn<P> = fn(P, &StageContext<'_>) -> Result<(), StageError>;

/// The code that runs several stages of one kind and the same parameters at once (see
/// [`TypedStage::batchable`]): one context per stage, one result per stage, in order.
pub type BatchRunFn<P> = fn(P, &[StageContext<'_>]) -> Vec<Result<(), StageError>>;

/// The object-safe form of a stage kind that the engine schedules.
pub trait StageKind: Send + Sync {
    /// The `kind:` name.
    fn name(&self) -> &'static str;
    /// The version, part of the cache key.
    fn version(&self) -> u32;
    /// One line describing the kind.
    fn summary(&self) -> &'static str;
    /// A YAML example of a stage of this kind (may be empty).
    fn example(&self) -> &'static str;
    /// The input slots.
    fn inputs(&self) -> &'static [InputSlot];
    /// Deserializes parameters from JSON (no positions), fills defaults, runs the checks, and
    /// returns the canonical form. The engine calls this with parameters it has already
    /// located in YAML; see [`crate::spec`] for the located path.
    fn canonicalize(&self, params: serde_json::Value) -> Result<serde_json::Value, ParamIssue>;
    /// Deserializes from a located YAML node, so errors can point at the offending line.
    fn canonicalize_yaml(
        &self,
        params: &crate::spec::yaml::Node,
    ) -> Result<serde_json::Value, crate::spec::yaml::DeError>;
    /// External files the stage reads, as written, given canonical parameters.
    fn external_files(&self, params: &serde_json::Value) -> Vec<PathBuf>;
    /// Whether the stage may run in the engine's own process.
    fn in_process(&self) -> bool;
    /// Whether stages with these canonical parameters may be batched with others that differ
    /// only in their seed ([`TypedStage::batchable`]).
    fn batchable(&self, params: &serde_json::Value) -> bool;
    /// Whether more intra-op threads speed a stage with these parameters up
    /// ([`TypedStage::scales_with_threads`]).
    fn scales_with_threads(&self, params: &serde_json::Value) -> bool;
}

struct Typed<T>(T);

/// Wraps a [`TypedStage`] into a boxed [`StageKind`].
pub fn typed<T: TypedStage>(kind: T) -> Box<dyn StageKind> {
    Box::new(Typed(kind))
}

impl<T: TypedStage> Typed<T> {
    fn finish(&self, params: T::Params) -> Result<serde_json::Value, ParamIssue> {
        self.0.check(&params)?;
        serde_json::to_value(&params).map_err(|e| ParamIssue {
            path: Vec::new(),
            message: format!("parameters cannot be encoded: {e}"),
        })
    }
}

impl<T: TypedStage> StageKind for Typed<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn version(&self) -> u32 {
        T::VERSION
    }
    fn summary(&self) -> &'static str {
        T::SUMMARY
    }
    fn example(&self) -> &'static str {
        T::EXAMPLE
    }
    fn inputs(&self) -> &'static [InputSlot] {
        self.0.inputs()
    }
    fn canonicalize(&self, params: serde_json::Value) -> Result<serde_json::Value, ParamIssue> {
        let parsed = T::Params::deserialize(params).map_err(|e| ParamIssue {
            path: Vec::new(),
            message: e.to_string(),
        })?;
        self.finish(parsed)
    }
    fn canonicalize_yaml(
        &self,
        params: &crate::spec::yaml::Node,
    ) -> Result<serde_json::Value, crate::spec::yaml::DeError> {
        let parsed: T::Params = crate::spec::yaml::from_node(params)?;
        self.finish(parsed)
            .map_err(|issue| crate::spec::yaml::DeError::from_issue(params, issue))
    }
    fn external_files(&self, params: &serde_json::Value) -> Vec<PathBuf> {
        match decode::<T>(params) {
            Ok(p) => self.0.external_files(&p),
            Err(_) => Vec::new(),
        }
    }
    fn in_process(&self) -> bool {
        self.0.in_process()
    }
    fn batchable(&self, params: &serde_json::Value) -> bool {
        decode::<T>(params).is_ok_and(|p| self.0.batchable(&p))
    }
    fn scales_with_threads(&self, params: &serde_json::Value) -> bool {
        decode::<T>(params).is_ok_and(|p| self.0.scales_with_threads(&p))
    }
}

/// The stage kinds a binary knows, by name.
#[derive(Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Box<dyn StageKind>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind; a later kind of the same name replaces an earlier one.
    pub fn register(&mut self, kind: Box<dyn StageKind>) -> &mut Self {
        self.kinds.insert(kind.name(), kind);
        self
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&dyn StageKind> {
        self.kinds.get(name).map(|k| k.as_ref())
    }

    /// Every kind's name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// Every kind, sorted by name.
    pub fn kinds(&self) -> impl Iterator<Item = &dyn StageKind> + '_ {
        self.kinds.values().map(|k| k.as_ref())
    }
}

fn decode<T: TypedStage>(params: &serde_json::Value) -> Result<T::Params, StageError> {
    T::Params::deserialize(params).map_err(|e| {
        StageError::bug(format!(
            "canonical parameters of `{}` do not decode",
            T::NAME
        ))
        .caused_by(&e)
    })
}

type ErasedRun =
    Box<dyn Fn(&serde_json::Value, &StageContext<'_>) -> Result<(), StageError> + Send + Sync>;
type ErasedBatchRun = Box<
    dyn Fn(&serde_json::Value, &[StageContext<'_>]) -> Vec<Result<(), StageError>> + Send + Sync,
>;

/// The runners a binary has, by kind name.
#[derive(Default)]
pub struct Runners {
    runs: BTreeMap<&'static str, ErasedRun>,
    batches: BTreeMap<&'static str, ErasedBatchRun>,
}

impl Runners {
    /// No runners.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the runner of kind `T`.
    pub fn add<T: TypedStage>(&mut self, run: RunFn<T::Params>) -> &mut Self {
        let erased: ErasedRun = Box::new(move |params, ctx| run(decode::<T>(params)?, ctx));
        self.runs.insert(T::NAME, erased);
        self
    }

    /// Adds the batch runner of kind `T` (see [`TypedStage::batchable`]).
    pub fn add_batched<T: TypedStage>(&mut self, run: BatchRunFn<T::Params>) -> &mut Self {
        let erased: ErasedBatchRun = Box::new(move |params, ctxs| match decode::<T>(params) {
            Ok(p) => run(p, ctxs),
            Err(e) => ctxs.iter().map(|_| Err(e.clone())).collect(),
        });
        self.batches.insert(T::NAME, erased);
        self
    }

    /// Runs several stages of `kind` with the same canonical parameters, one context each:
    /// together through the kind's batch runner if it has one, else one after another.
    /// Returns one result per context, in order.
    pub fn run_batch(
        &self,
        kind: &str,
        params: &serde_json::Value,
        ctxs: &[StageContext<'_>],
    ) -> Vec<Result<(), StageError>> {
        match self.batches.get(kind) {
            Some(run) if ctxs.len() > 1 => run(params, ctxs),
            _ => ctxs.iter().map(|ctx| self.run(kind, params, ctx)).collect(),
        }
    }

    /// Whether this binary can run `kind`.
    pub fn has(&self, kind: &str) -> bool {
        self.runs.contains_key(kind)
    }

    /// Runs `kind` with canonical parameters.
    pub fn run(
        &self,
        kind: &str,
        params: &serde_json::Value,
        ctx: &StageContext<'_>,
    ) -> Result<(), StageError> {
        match self.runs.get(kind) {
            Some(run) => run(params, ctx),
            None => Err(StageError::bug(format!(
                "this binary cannot run stage kind `{kind}`"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(stage: &str, matrix: &[(&str, &str)]) -> UpstreamOutput {
        UpstreamOutput {
            stage: stage.to_owned(),
            matrix: matrix
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
            dir: PathBuf::new(),
        }
    }

    #[test]
    fn short_labels_keep_only_what_differs() {
        let list = [
            up(
                "fit[function=sinc,model=deep]",
                &[("function", "sinc"), ("model", "deep")],
            ),
            up(
                "fit[function=sinc,model=shallow]",
                &[("function", "sinc"), ("model", "shallow")],
            ),
        ];
        assert_eq!(short_labels(&list), ["deep", "shallow"]);
        let list = [up("a", &[]), up("b", &[])];
        assert_eq!(short_labels(&list), ["a", "b"]);
        let list = [
            up("t[lr=1,b=2]", &[("lr", "1"), ("b", "2")]),
            up("t[lr=3,b=4]", &[("lr", "3"), ("b", "4")]),
        ];
        assert_eq!(short_labels(&list), ["b=2,lr=1", "b=4,lr=3"]);
    }
}
