//! Training many runs of one fully connected model at once: a sweep over seeds as one batched
//! computation.
//!
//! The homework trains hundreds of tiny MLPs that differ only in their seed. One at a time,
//! each step is a dozen small operations whose fixed cost dwarfs their arithmetic; stacked,
//! the same dozen operations do the work of every run. Each parameter becomes a `[runs, ...]`
//! tensor, dense layers become batched matrix products (`baddbmm`), every run draws its own
//! batch through its own data order, and the objective is the sum of the runs' mean losses,
//! whose gradient with respect to one run's weights is exactly that run's gradient. The
//! optimizers (Adam, SGD, RMSprop) work element by element, so one optimizer over the stacked
//! parameters is exactly one optimizer per run.
//!
//! Every run starts from the weights it would get alone: libtorch's generator is seeded with
//! the run's seed and its parameters are drawn in the same order. Its data order comes from
//! the same generator as alone. Results match separate training up to floating-point rounding
//! (batched and plain matrix products sum in different orders).
//!
//! A run whose loss stops being a number ends alone (failing, or stopping as `on_nan: stop`
//! asks); the others go on, since no run's numbers reach another's.
//!
//! Now and then after an epoch, each run still going saves a resume snapshot into its own
//! stage's resume folder, in exactly the format a run alone saves (its weights, its slice of
//! the optimizer's state, its data order, its evaluations), so a killed batch resumes as a
//! batch, or each run alone, from where it was. A batch resumes only when every run has a
//! snapshot of the same epoch (they share one optimizer step count); otherwise it starts over,
//! which is always safe.

mod host;
mod host_optim;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pipeline_engine::stage::{StageContext, StageError};
use pipeline_kinds::model::plan::{Op, Plan};
use tch::{Device, Kind, Reduction, Tensor};

use super::data::Split;
use super::evaluate::Score;
use super::fit::{Divergence, EvalRow, Outcome, Schedule};
use super::loss::Loss;
use super::optim::Optimizer;
use super::resume::{self, Progress, Snapshots, at};
use super::step_log::StepLog;
use crate::error::TchContext;
use crate::model::checkpoint::save_weights;
use crate::model::network::{Weights, activate, activate_in_place, fill};
use crate::rng::SplitMix64;

/// Most values of a stacked evaluation input (`runs × examples × features`), so that
/// evaluating a hundred runs of an image MLP does not copy the batch a hundred times at once.
const EVAL_VALUES: i64 = 1 << 24;
/// Least time between progress reports of a batch (every run reports each time).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The parameters of several runs of one plan, stacked.
pub(crate) struct Stacked {
    /// Every value: for each parameter of the plan, in plan order, a block of
    /// `runs × numel` values, run after run.
    pub(crate) flat: Tensor,
    /// Each parameter as a `[runs, ...shape]` view of `flat`, requiring gradients.
    pub(crate) params: Vec<Tensor>,
    /// The number of runs.
    pub(crate) runs: i64,
    /// Values per parameter of one run, in plan order.
    pub(crate) sizes: Vec<i64>,
}

impl Stacked {
    /// The weights each seed gives a run alone: libtorch's generator seeded with it, the
    /// parameters drawn in plan order.
    pub(crate) fn init(plan: &Plan, seeds: &[u64], device: Device) -> Result<Self, StageError> {
        if !plan.buffers.is_empty() || !is_dense_only(plan) {
            return Err(StageError::bug(
                "a batched training was given a model with more than dense layers",
            ));
        }
        let runs = seeds.len() as i64;
        let total = plan.parameter_count() as i64 * runs;
        let flat = Tensor::f_zeros([total], (Kind::Float, device)).ctx("allocating parameters")?;
        let mut params = Vec::with_capacity(plan.params.len());
        let mut offset = 0;
        for spec in &plan.params {
            let n = spec.numel() as i64 * runs;
            let shape: Vec<i64> = std::iter::once(runs).chain(spec.shape.clone()).collect();
            let view = flat
                .f_narrow(0, offset, n)
                .and_then(|t| t.f_view(shape.as_slice()))
                .and_then(|t| t.f_set_requires_grad(true))
                .ctx("creating a parameter view")?;
            params.push(view);
            offset += n;
        }
        {
            let _guard = tch::no_grad_guard();
            for (k, &seed) in seeds.iter().enumerate() {
                tch::manual_seed(i64::from_ne_bytes(seed.to_ne_bytes()));
                for (p, spec) in params.iter().zip(&plan.params) {
                    let one = p.f_select(0, k as i64).ctx("selecting a run")?;
                    fill(&one, spec)?;
                }
            }
        }
        let sizes = plan.params.iter().map(|p| p.numel() as i64).collect();
        Ok(Self {
            flat,
            params,
            runs,
            sizes,
        })
    }

    /// Run `k`'s part of `t`, a tensor laid out like [`Stacked::flat`] (the parameters, or
    /// an optimizer state over them), in the layout of a run alone: one parameter after
    /// another.
    pub(crate) fn member(&self, t: &Tensor, k: usize) -> Result<Tensor, StageError> {
        let parts = self
            .blocks(t, k)?
            .into_iter()
            .map(|(_, part)| part)
            .collect::<Vec<_>>();
        Tensor::f_cat(&parts, 0).ctx("gathering a run's values")
    }

    /// Writes `values` (in the layout of a run alone) into run `k`'s part of `t`.
    pub(crate) fn set_member(
        &self,
        t: &Tensor,
        k: usize,
        values: &Tensor,
    ) -> Result<(), StageError> {
        let _guard = tch::no_grad_guard();
        for (offset, part) in self.blocks(t, k)? {
            let n = part.size()[0];
            values
                .f_narrow(0, offset, n)
                .and_then(|v| part.shallow_clone().f_copy_(&v))
                .ctx("restoring a run's values")?;
        }
        Ok(())
    }

    /// Each parameter's values of run `k` in `t` (views), with their offset in a lone run's
    /// layout.
    fn blocks(&self, t: &Tensor, k: usize) -> Result<Vec<(i64, Tensor)>, StageError> {
        let (mut stacked, mut alone) = (0, 0);
        let mut blocks = Vec::with_capacity(self.sizes.len());
        for &n in &self.sizes {
            let part = t
                .f_narrow(0, stacked, self.runs * n)
                .and_then(|b| b.f_view([self.runs, n]))
                .and_then(|b| b.f_select(0, k as i64))
                .ctx("selecting a run's values")?;
            blocks.push((alone, part));
            stacked += self.runs * n;
            alone += n;
        }
        Ok(blocks)
    }

    /// Copies run `k`'s parameters into `into` (weights of the same plan).
    pub(crate) fn extract(&self, k: usize, into: &Weights) -> Result<(), StageError> {
        let _guard = tch::no_grad_guard();
        for (target, stacked) in into.params.iter().zip(&self.params) {
            stacked
                .f_select(0, k as i64)
                .and_then(|one| target.shallow_clone().f_copy_(&one))
                .ctx("copying a run's parameters")?;
        }
        Ok(())
    }
}

/// Whether `plan` has only dense layers, activations and flattening.
fn is_dense_only(plan: &Plan) -> bool {
    plan.ops
        .iter()
        .all(|op| matches!(op, Op::Dense { .. } | Op::Act(_) | Op::Flatten))
}

/// The forward pass of every run at once: `x` is `[runs, examples, ...]`, the result
/// `[runs, examples, outputs]`.
///
/// Inside, activations are kept feature-major (`[runs, features, examples]`), so that each
/// dense layer is `W·h + b` with the weights as they are stored (`[out, in]`): batched matrix
/// products of this shape run about a third faster than the example-major `h·Wᵀ`.
pub(crate) fn forward(plan: &Plan, params: &[Tensor], x: &Tensor) -> Result<Tensor, StageError> {
    let mut h = x
        .f_flatten(2, -1)
        .and_then(|h| h.f_transpose(1, 2))
        .ctx("arranging inputs")?;
    // As in the single forward pass: an activation may overwrite what a dense layer made,
    // since the layer keeps its inputs, not its output.
    let mut overwritable = false;
    for (i, op) in plan.ops.iter().enumerate() {
        let result = match *op {
            Op::Dense { weight, bias } => params[bias]
                .f_unsqueeze(2)
                .and_then(|b| b.f_baddbmm(&params[weight], &h, 1.0, 1.0)),
            Op::Act(act) if overwritable => activate_in_place(act, &mut h),
            Op::Act(act) => activate(act, &h),
            // Features are already one dimension.
            Op::Flatten => Ok(h),
            _ => {
                return Err(StageError::bug(format!(
                    "operation {i} ({op:?}) cannot run batched"
                )));
            }
        };
        h = result.ctx(&format!("batched forward pass of operation {i} ({op:?})"))?;
        overwritable = matches!(op, Op::Dense { .. });
    }
    h.f_transpose(1, 2).ctx("arranging outputs")
}

/// Each run's loss summed over its examples, `[runs]`: `out` is `[runs, n, outputs]`, `y` is
/// `[runs, n, 1]` (regression) or `[runs, n]` (labels).
fn loss_sums(loss: Loss, out: &Tensor, y: &Tensor) -> Result<Tensor, tch::TchError> {
    let runs = out.size()[0];
    let each = match loss {
        Loss::Mse => out.f_mse_loss(y, Reduction::None)?,
        Loss::CrossEntropy => out.f_flatten(0, 1)?.f_cross_entropy_loss::<Tensor>(
            &y.f_flatten(0, 1)?,
            None,
            Reduction::None,
            -100,
            0.0,
        )?,
    };
    each.f_view([runs, -1])?
        .f_sum_dim_intlist(1, false, Kind::Float)
}

/// Where one run of the batch stands.
struct RunState {
    /// Its evaluations so far.
    rows: Vec<EvalRow>,
    /// How it ended early, if it did.
    end: Option<Result<Divergence, StageError>>,
}

/// Everything a batched training works on (the batched counterpart of
/// [`super::fit::Fit`]).
pub(crate) struct BatchedFit<'a> {
    /// One context per run (its seed, output and resume folders, events).
    pub(crate) ctxs: &'a [StageContext<'a>],
    /// The model.
    pub(crate) plan: &'a Plan,
    /// Every run's parameters, trained in place.
    pub(crate) stacked: &'a Stacked,
    /// The optimizer over `stacked.flat`.
    pub(crate) optimizer: Optimizer,
    /// The training loss.
    pub(crate) loss: Loss,
    /// The training split.
    pub(crate) train: &'a Split,
    /// The test split.
    pub(crate) test: &'a Split,
    /// When to step, evaluate and save.
    pub(crate) schedule: Schedule,
    /// Each run's data-order generator.
    pub(crate) orders: Vec<SplitMix64>,
    /// Stop (instead of failing) a run at a non-finite training loss.
    pub(crate) stop_on_nan: bool,
    /// Scratch weights of one run, for checkpoints and snapshots.
    pub(crate) scratch: &'a Weights,
    /// Each run's resume snapshots and identity (parameters and seed).
    pub(crate) snapshots: Vec<(Snapshots, serde_json::Value)>,
    /// The step log of a run trained alone on the host trainer (see
    /// [`crate::train::step_log`]); only a batch of one on the host keeps one.
    pub(crate) steps: Option<&'a mut StepLog>,
}

/// Where a resumed batch starts: the epoch every run's snapshot is of, and each run's
/// evaluations so far.
pub(crate) struct BatchStart {
    /// Epochs already done.
    pub(crate) epoch: usize,
    /// Each run's evaluations, in order.
    pub(crate) rows: Vec<Vec<EvalRow>>,
}

impl BatchStart {
    /// The start of a batch of `runs` that resumes nothing.
    pub(crate) fn fresh(runs: usize) -> Self {
        Self {
            epoch: 0,
            rows: vec![Vec::new(); runs],
        }
    }
}

/// Restores every run of the batch from its snapshot of the latest epoch they all have one
/// of (before the last epoch); returns where the batch starts (epoch 0 when there is none).
pub(crate) fn resume(fit: &mut BatchedFit<'_>, epochs: usize) -> Result<BatchStart, StageError> {
    let runs = fit.ctxs.len();
    let fresh = BatchStart::fresh(runs);
    // The latest epoch every run has a snapshot of.
    let mut common: Option<Vec<usize>> = None;
    for ctx in fit.ctxs {
        let mine = resume::epochs(ctx.resume_dir);
        common = Some(match common {
            None => mine,
            Some(c) => c.into_iter().filter(|e| mine.contains(e)).collect(),
        });
    }
    let Some(epoch) = common.and_then(|c| c.last().copied()) else {
        return Ok(fresh);
    };
    if epoch == 0 || epoch >= epochs {
        return Ok(fresh);
    }
    let mut found = Vec::with_capacity(runs);
    for (ctx, (_, identity)) in fit.ctxs.iter().zip(&fit.snapshots) {
        match at(ctx.resume_dir, identity, epoch) {
            Some(snapshot) => found.push(snapshot),
            None => return Ok(fresh),
        }
    }
    let steps = found[0].1.steps;
    if found.iter().any(|(_, p)| p.steps != steps) {
        return Ok(fresh);
    }
    let mut rows = Vec::with_capacity(runs);
    for (k, (mut tensors, progress)) in found.into_iter().enumerate() {
        let mut weights = Vec::with_capacity(fit.plan.params.len());
        for spec in &fit.plan.params {
            let t = tensors.remove(&spec.name).ok_or_else(|| {
                StageError::bug(format!("the resume snapshot lacks {}", spec.name))
            })?;
            weights.push(t.f_reshape([-1]).ctx("flattening a snapshot")?);
        }
        let values = Tensor::f_cat(&weights, 0).ctx("joining a snapshot's weights")?;
        fit.stacked.set_member(&fit.stacked.flat, k, &values)?;
        for (name, state) in fit.optimizer.state_tensors() {
            let saved = tensors.remove(&name).ok_or_else(|| {
                StageError::bug(format!("the resume snapshot lacks optimizer state {name}"))
            })?;
            fit.stacked.set_member(state, k, &saved)?;
        }
        fit.orders[k] = SplitMix64::new(progress.order_state);
        if let Some(log) = fit.steps.as_deref_mut() {
            log.restore(progress.step_rows.clone());
        }
        rows.push(progress.rows());
    }
    fit.optimizer.set_steps(steps);
    for ctx in fit.ctxs {
        ctx.note(format!("resumed after epoch {epoch} of {epochs}, batched"));
    }
    Ok(BatchStart { epoch, rows })
}

impl BatchedFit<'_> {
    /// Trains every run for the scheduled epochs from `start`; returns each run's outcome,
    /// in order.
    pub(crate) fn run(
        mut self,
        start: BatchStart,
    ) -> Result<Vec<Result<Outcome, StageError>>, StageError> {
        let runs = self.ctxs.len();
        let batches = self.batches_per_epoch()?;
        let host = self.on_host()?;
        let mut how = String::new();
        if runs > 1 {
            how.push_str(&format!(
                ", batched with {} other run(s) of the same model",
                runs - 1
            ));
        }
        if host.is_some() {
            how.push_str(", on the host trainer");
        }
        for ctx in self.ctxs {
            ctx.note(format!(
                "training {} parameters for {} epochs of {batches} steps{how}",
                self.plan.parameter_count(),
                self.schedule.epochs,
            ));
        }
        let mut states: Vec<RunState> = start
            .rows
            .into_iter()
            .map(|rows| RunState { rows, end: None })
            .collect();
        if start.epoch == 0 {
            if self.schedule.eval_initial {
                let records = match &host {
                    Some(_) => Some(self.host_records()?),
                    None => None,
                };
                self.evaluate_into(0, &mut states, host.as_ref().zip(records.as_ref()))?;
            }
            self.checkpoint(0, &states)?;
        }
        let device = self.train.x.device();
        let mut order = vec![0i64; runs * self.train.len as usize];
        let step_losses =
            Tensor::f_zeros([batches, runs as i64], (Kind::Float, device)).ctx("allocating")?;
        let grad = self.stacked.flat.f_zeros_like().ctx("allocating")?;
        // On the host trainer the runs' values live in host memory while it trains; the
        // tensors get them back only where they are read (checkpoints, snapshots, the end).
        let mut records = match &host {
            Some(_) => Some(self.host_records()?),
            None => None,
        };
        let mut last_report: Option<Instant> = None;
        let epochs = self.schedule.epochs;
        for epoch in start.epoch + 1..=epochs {
            self.ctxs[0].check_cancelled()?;
            let (losses, norms) = match (&host, &mut records) {
                (Some(host), Some(records)) => {
                    let out = self.epoch_on_host(host, records, batches, &mut order)?;
                    (out.losses, out.norms)
                }
                _ => {
                    self.epoch(batches, &mut order, &step_losses, &grad)?;
                    (read_losses(&step_losses)?, None)
                }
            };
            let means = self.check_losses(epoch, batches, &losses, &mut states)?;
            if states.iter().all(|s| s.end.is_some()) {
                break;
            }
            if let (Some(log), Some(norms)) = (self.steps.as_deref_mut(), &norms) {
                let first = self.optimizer.steps() + 1 - batches as u64;
                log.push_epoch_values(epoch, first, &losses, norms)?;
            }
            let evaluate = epoch.is_multiple_of(self.schedule.eval_every.max(1)) || epoch == epochs;
            let on_host = host.as_ref().zip(records.as_ref());
            if evaluate {
                self.evaluate_into(epoch, &mut states, on_host)?;
            }
            let snapshot = epoch < epochs && self.snapshots.first().is_some_and(|(s, _)| s.due());
            if snapshot || self.checkpoint_due(epoch) {
                self.write_back(records.as_ref())?;
            }
            self.checkpoint(epoch, &states)?;
            if snapshot {
                self.snapshot(epoch, &states)?;
            }
            if epoch == epochs || last_report.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                last_report = Some(Instant::now());
                for ((ctx, state), mean) in self.ctxs.iter().zip(&states).zip(&means) {
                    if state.end.is_none() {
                        ctx.progress(epoch as u64, epochs as u64, "epoch", progress(*mean, state));
                    }
                }
            }
        }
        self.write_back(records.as_ref())?;
        Ok(states
            .into_iter()
            .map(|s| match s.end {
                None => Ok(Outcome {
                    rows: s.rows,
                    diverged: None,
                }),
                Some(Ok(divergence)) => Ok(Outcome {
                    rows: s.rows,
                    diverged: Some(divergence),
                }),
                Some(Err(e)) => Err(e),
            })
            .collect())
    }

    /// Full batches plus a final partial one (no batch normalization here, so no batch is
    /// dropped).
    fn batches_per_epoch(&self) -> Result<i64, StageError> {
        let (n, bs) = (self.train.len, self.schedule.batch_size as i64);
        let batches = (n + bs - 1) / bs;
        if batches == 0 {
            return Err(StageError::input(
                "the training split has too few examples to train on",
            ));
        }
        Ok(batches)
    }

    /// The host trainer's network and splits, when it can train this batch (see
    /// [`host_trains`]).
    fn on_host(&self) -> Result<Option<OnHost>, StageError> {
        if self.optimizer.state_tensors().len() != host_optim::state_count(self.optimizer.spec()) {
            return Ok(None);
        }
        if self.steps.is_some() && self.ctxs.len() != 1 {
            return Err(StageError::bug(
                "a step log was asked of a batch of several runs",
            ));
        }
        let Some(net) = host_net(self.plan, self.train) else {
            return Ok(None);
        };
        let train = host::HostData::new(self.train, self.loss, net.outputs())?;
        let test = host::HostData::new(self.test, self.loss, net.outputs())?;
        let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1).max(1);
        tch::set_num_threads(1);
        Ok(Some(OnHost {
            net,
            train,
            test,
            threads,
        }))
    }

    /// One pass of every run over the training split on the host trainer, each in its own
    /// order; returns the runs' batch losses (and gradient norms for a step log) step by step.
    fn epoch_on_host(
        &mut self,
        host: &OnHost,
        records: &mut host::Records,
        batches: i64,
        order: &mut [i64],
    ) -> Result<host::EpochLosses, StageError> {
        let n_train = self.train.len as usize;
        for (rng, slice) in self.orders.iter_mut().zip(order.chunks_mut(n_train)) {
            rng.shuffle_into(slice);
        }
        let epoch = host::Epoch {
            net: &host.net,
            data: &host.train,
            optimizer: self.optimizer.spec(),
            steps: self.optimizer.steps(),
            batch_size: self.schedule.batch_size,
            order,
            threads: host.threads,
            norms: self.steps.is_some(),
        };
        let losses = host::train_epoch(&epoch, records);
        self.optimizer
            .set_steps(self.optimizer.steps() + batches as u64);
        Ok(losses)
    }

    /// One pass of every run over the training split, each in its own order; the runs'
    /// batch losses go into row `s` of `step_losses` at step `s`.
    fn epoch(
        &mut self,
        batches: i64,
        order: &mut [i64],
        step_losses: &Tensor,
        grad: &Tensor,
    ) -> Result<(), StageError> {
        let n_train = self.train.len as usize;
        for (rng, slice) in self.orders.iter_mut().zip(order.chunks_mut(n_train)) {
            rng.shuffle_into(slice);
        }
        let runs = self.stacked.runs;
        let perm = Tensor::f_from_slice(order)
            .and_then(|p| p.f_view([runs, self.train.len]))
            .and_then(|p| p.f_to_device(self.train.x.device()))
            .ctx("uploading the epoch's example orders")?;
        let bs = self.schedule.batch_size as i64;
        for s in 0..batches {
            let n = bs.min(self.train.len - s * bs);
            let index = perm
                .f_narrow(1, s * bs, n)
                .and_then(|i| i.f_reshape([-1]))
                .ctx("slicing the example orders")?;
            let gather = |t: &Tensor| -> Result<Tensor, tch::TchError> {
                let mut shape = vec![runs, n];
                shape.extend_from_slice(&t.size()[1..]);
                t.f_index_select(0, &index)?.f_view(shape.as_slice())
            };
            let x = gather(&self.train.x).ctx("gathering a batch")?;
            let y = gather(&self.train.y).ctx("gathering a batch")?;
            let out = forward(self.plan, &self.stacked.params, &x)?;
            let per_value = match self.loss {
                // MSE averages over every output value, cross-entropy over examples.
                Loss::Mse => out.size()[2] * n,
                Loss::CrossEntropy => n,
            } as f64;
            let losses = loss_sums(self.loss, &out, &y)
                .and_then(|l| l.f_div_scalar(per_value))
                .ctx("computing the losses")?;
            let total = losses.f_sum(Kind::Float).ctx("summing the losses")?;
            let grads = Tensor::f_run_backward(&[&total], &self.stacked.params, false, false)
                .ctx("backward pass")?;
            let flat: Vec<Tensor> = grads
                .iter()
                .map(|g| g.f_reshape([-1]))
                .collect::<Result<_, _>>()
                .ctx("flattening")?;
            Tensor::f_cat_out(grad, &flat, 0)
                .ctx("gathering gradients")
                .map(drop)?;
            let mut grads = [grad.shallow_clone()];
            self.optimizer
                .step(&[self.stacked.flat.shallow_clone()], &mut grads)?;
            step_losses
                .f_select(0, s)
                .and_then(|row| row.shallow_clone().f_copy_(&losses.f_detach()?))
                .ctx("recording the step losses")?;
        }
        Ok(())
    }

    /// Reads the epoch's step losses once; a run whose loss is not finite ends there (failing,
    /// or stopping when the pipeline asks). Returns each run's mean batch loss.
    fn check_losses(
        &self,
        epoch: usize,
        batches: i64,
        values: &[f32],
        states: &mut [RunState],
    ) -> Result<Vec<f64>, StageError> {
        let runs = states.len();
        let first_step = self.optimizer.steps() - batches as u64 + 1;
        let mut means = Vec::with_capacity(runs);
        for (k, state) in states.iter_mut().enumerate() {
            let run = values.iter().skip(k).step_by(runs);
            let mean = run.clone().map(|&v| f64::from(v)).sum::<f64>() / batches.max(1) as f64;
            means.push(mean);
            if state.end.is_some() {
                continue;
            }
            if let Some((s, v)) = run.enumerate().find(|(_, v)| !v.is_finite()) {
                let divergence = Divergence {
                    epoch,
                    step: first_step + s as u64,
                    loss: v.to_string(),
                };
                let ctx = &self.ctxs[k];
                state.end = Some(if self.stop_on_nan {
                    ctx.note(format!(
                        "the loss became {} at epoch {epoch}, step {}; stopped as the pipeline asks",
                        divergence.loss, divergence.step
                    ));
                    Ok(divergence)
                } else {
                    Err(StageError::numerical(format!(
                        "the training loss became {} at epoch {epoch}, step {} overall; try a \
                         lower learning rate (or `on_nan: stop` to keep the run up to there)",
                        divergence.loss, divergence.step
                    )))
                });
            }
        }
        Ok(means)
    }

    /// Scores every run that is still going on both splits (an empty one is skipped) and
    /// appends their rows; a run whose score is not finite fails.
    fn evaluate_into(
        &self,
        epoch: usize,
        states: &mut [RunState],
        host: Option<(&OnHost, &host::Records)>,
    ) -> Result<(), StageError> {
        for (name, split) in [("train", self.train), ("test", self.test)] {
            if split.len == 0 {
                continue;
            }
            let sums = match host {
                Some((host, records)) => {
                    let data = if name == "train" {
                        &host.train
                    } else {
                        &host.test
                    };
                    let batch = self.schedule.eval_batch_size;
                    host::evaluate(&host.net, data, records, batch, host.threads).concat()
                }
                None => {
                    let sums = self.sums(split)?;
                    Vec::<f64>::try_from(sums.f_reshape([-1]).ctx("reading sums")?)
                        .ctx("reading the evaluation sums")?
                }
            };
            for (state, pair) in states.iter_mut().zip(sums.chunks(2)) {
                if state.end.is_some() {
                    continue;
                }
                let score = Score::from_sums(pair, self.loss, split.len);
                if !score.loss.is_finite() {
                    state.end = Some(Err(StageError::numerical(format!(
                        "the {name} loss is {} at epoch {epoch}; try a lower learning rate",
                        score.loss
                    ))));
                    continue;
                }
                state.rows.push(EvalRow {
                    epoch,
                    step: self.optimizer.steps(),
                    split: name,
                    score,
                });
            }
        }
        Ok(())
    }

    /// Every run's summed loss and correct answers on `split`, `f64 [runs, 2]`.
    fn sums(&self, split: &Split) -> Result<Tensor, StageError> {
        let _guard = tch::no_grad_guard();
        let runs = self.stacked.runs;
        let device = split.x.device();
        let features: i64 = split.x.size()[1..].iter().product::<i64>().max(1);
        let batch = (self.schedule.eval_batch_size as i64)
            .min(EVAL_VALUES / (runs * features))
            .max(1);
        let sums =
            Tensor::f_zeros([runs, 2], (Kind::Double, device)).ctx("allocating evaluation sums")?;
        let mut start = 0;
        while start < split.len {
            let n = batch.min(split.len - start);
            let stack = |t: &Tensor| -> Result<Tensor, tch::TchError> {
                let part = t.f_narrow(0, start, n)?;
                let mut shape = vec![runs];
                shape.extend_from_slice(&part.size());
                part.f_unsqueeze(0)?.f_expand(shape.as_slice(), false)
            };
            let (x, y) = (stack(&split.x), stack(&split.y));
            let (x, y) = (x.ctx("stacking a batch")?, y.ctx("stacking a batch")?);
            let out = forward(self.plan, &self.stacked.params, &x)?;
            let losses = loss_sums(self.loss, &out, &y).ctx("evaluation loss")?;
            let hits = match self.loss {
                Loss::CrossEntropy => out
                    .f_argmax(2, false)
                    .and_then(|p| p.f_eq_tensor(&y))
                    .and_then(|h| h.f_sum_dim_intlist(1, false, Kind::Double)),
                Loss::Mse => Tensor::f_zeros([runs], (Kind::Double, device)),
            };
            let batch_sums = hits
                .and_then(|h| Tensor::f_stack(&[losses.f_to_kind(Kind::Double)?, h], 1))
                .ctx("counting correct answers")?;
            let _ = sums
                .shallow_clone()
                .f_add_(&batch_sums)
                .ctx("summing losses")?;
            start += n;
        }
        Ok(sums)
    }

    /// Saves a resume snapshot of every run still going after `epoch`, each in its own
    /// resume folder and in a lone run's format.
    fn snapshot(&mut self, epoch: usize, states: &[RunState]) -> Result<(), StageError> {
        for (k, state) in states.iter().enumerate() {
            if state.end.is_some() {
                continue;
            }
            self.stacked.extract(k, self.scratch)?;
            let mut owned: Vec<(String, Tensor)> = Vec::new();
            for (name, t) in self.optimizer.state_tensors() {
                owned.push((name, self.stacked.member(t, k)?));
            }
            let mut tensors = self.scratch.named(self.plan);
            tensors.extend(owned.iter().map(|(n, t)| (n.clone(), t)));
            let (snapshots, identity) = &mut self.snapshots[k];
            let progress = Progress::new(
                identity.clone(),
                epoch,
                self.optimizer.steps(),
                self.orders[k].state(),
                &state.rows,
                self.steps
                    .as_deref()
                    .map(|s| s.rows().to_vec())
                    .unwrap_or_default(),
            );
            snapshots.save(&tensors, &progress)?;
        }
        Ok(())
    }

    /// Whether a checkpoint is due after `epoch`.
    fn checkpoint_due(&self, epoch: usize) -> bool {
        let every = self.schedule.checkpoint_every;
        every != 0 && epoch.is_multiple_of(every)
    }

    /// The optimizer's state tensors, in the order the host trainer keeps them.
    fn state_tensors(&self) -> Vec<&Tensor> {
        let states = self.optimizer.state_tensors().into_iter();
        states.map(|(_, t)| t).collect()
    }

    /// Every run's parameters and optimizer state, read from the tensors into host memory.
    fn host_records(&self) -> Result<host::Records, StageError> {
        let runs = self.stacked.runs as usize;
        let (flat, sizes) = (&self.stacked.flat, &self.stacked.sizes);
        host::Records::gather(flat, &self.state_tensors(), sizes, runs)
    }

    /// Writes the host trainer's values (if it trains this batch) back into the tensors.
    fn write_back(&self, records: Option<&host::Records>) -> Result<(), StageError> {
        let Some(records) = records else {
            return Ok(());
        };
        let runs = self.stacked.runs as usize;
        let (flat, sizes) = (&self.stacked.flat, &self.stacked.sizes);
        records.scatter(flat, &self.state_tensors(), sizes, runs)
    }

    /// Saves the weights of every run still going, when a checkpoint is due.
    fn checkpoint(&self, epoch: usize, states: &[RunState]) -> Result<(), StageError> {
        if !self.checkpoint_due(epoch) {
            return Ok(());
        }
        for (k, (ctx, state)) in self.ctxs.iter().zip(states).enumerate() {
            if state.end.is_some() {
                continue;
            }
            let dir = checkpoint_dir(ctx);
            std::fs::create_dir_all(&dir).map_err(|e| StageError::io("create", &dir, &e))?;
            self.stacked.extract(k, self.scratch)?;
            let path = dir.join(format!("epoch-{epoch:04}.safetensors"));
            save_weights(&path, self.plan, self.scratch)?;
        }
        Ok(())
    }
}

/// The host trainer's view of a batch: its network and both splits in host memory.
struct OnHost {
    net: host::DenseNet,
    train: host::HostData,
    test: host::HostData,
    /// The threads the stage was given, which the host trainer spreads runs over. libtorch
    /// itself is set to one thread meanwhile: its few operations per epoch are tiny, and its
    /// idle OpenMP threads would otherwise spin for the same cores (they took an eighth of a
    /// two-core run of 100 seeds).
    threads: usize,
}

impl Drop for OnHost {
    fn drop(&mut self) {
        tch::set_num_threads(i32::try_from(self.threads).unwrap_or(i32::MAX));
    }
}

/// The host trainer's network for `plan` on `train`, when the host trainer can train it:
/// fully connected, on the CPU, with few inputs (see [`host`]).
fn host_net(plan: &Plan, train: &Split) -> Option<host::DenseNet> {
    if train.x.device() != Device::Cpu {
        return None;
    }
    let features = train.x.size()[1..].iter().product::<i64>().max(1) as usize;
    host::DenseNet::new(plan, features)
}

/// Whether the host trainer trains `plan` on `train` (a batch, or a run alone as a batch of
/// one).
pub(crate) fn host_trains(plan: &Plan, train: &Split) -> bool {
    host_net(plan, train).is_some()
}

/// The step losses of an epoch (`[steps, runs]` on the device), read once.
fn read_losses(step_losses: &Tensor) -> Result<Vec<f32>, StageError> {
    let host = step_losses
        .f_to_device(Device::Cpu)
        .ctx("reading step losses")?;
    Vec::<f32>::try_from(host.f_reshape([-1]).ctx("reading step losses")?)
        .ctx("reading step losses")
}

/// Where a run's scheduled checkpoints go while it trains (as for a run alone).
pub(crate) fn checkpoint_dir(ctx: &StageContext<'_>) -> PathBuf {
    ctx.resume_dir.join("checkpoints")
}

/// The message next to a run's progress bar.
fn progress(mean_loss: f64, state: &RunState) -> String {
    let mut message = format!("batch_loss={mean_loss:.4}");
    if let Some(test) = state.rows.iter().rev().find(|r| r.split == "test") {
        message.push_str(&format!(" test_loss={:.4}", test.score.loss));
        if let Some(acc) = test.score.accuracy {
            message.push_str(&format!(" test_acc={acc:.4}"));
        }
    }
    message
}
