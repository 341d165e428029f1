//! The training loop: shuffled mini-batches, evaluation on a schedule, checkpoints.
//!
//! The loop is lean on purpose, since the homework's models are so small that bookkeeping
//! would otherwise cost more than the arithmetic. The data live on the device as one tensor
//! per split; a batch is an `index_select` with a slice of a permutation drawn each epoch from
//! the run's own seeded generator (so the order is reproducible and its state is one integer).
//! Gradients are taken with respect to the per-layer parameter views and concatenated into a
//! reused flat buffer, which the optimizer applies to the flat parameter vector in a few
//! element-wise operations. Each step's loss is copied into a device-side buffer and the buffer
//! is read once per epoch, so steps never wait for the host; a non-finite loss is found there
//! and fails the stage naming the epoch and step, before anything reaches a table. With a
//! step log ([`super::step_log`]), each step's gradient norm goes into a second such buffer,
//! read at the same time.
//!
//! After a finished epoch the loop saves a resume snapshot now and then ([`super::resume`]);
//! a run that starts from one continues after its epoch. libtorch's generator (dropout) is
//! reseeded from the stage's seed at the start of every epoch, so that an interrupted and a
//! whole run draw the same numbers.

use std::path::PathBuf;

use pipeline_engine::stage::{StageContext, StageError};
use pipeline_kinds::model::plan::{Op, Plan};
use tch::{Device, Kind, Tensor};

use super::data::Split;
use super::evaluate::{Score, evaluate};
use super::loss::Loss;
use super::optim::Optimizer;
use super::resume::{Progress, Snapshots, epoch_seed};
use super::step_log::{StepLog, norm_buffer, record_norm};
use crate::error::TchContext;
use crate::model::checkpoint::save_weights;
use crate::model::network::{Weights, forward};
use crate::rng::SplitMix64;

/// When to step, evaluate and save.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    /// Examples per training step.
    pub(crate) batch_size: usize,
    /// Passes over the training split.
    pub(crate) epochs: usize,
    /// Evaluate every this many epochs (and always after the last).
    pub(crate) eval_every: usize,
    /// Evaluate the initial weights too (epoch 0).
    pub(crate) eval_initial: bool,
    /// Examples per evaluation batch.
    pub(crate) eval_batch_size: usize,
    /// Save weights every this many epochs (and before training); 0 = never.
    pub(crate) checkpoint_every: usize,
}

/// One evaluation of one split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct EvalRow {
    /// Epochs completed.
    pub(crate) epoch: usize,
    /// Optimizer steps completed.
    pub(crate) step: u64,
    /// `train` or `test`.
    pub(crate) split: &'static str,
    /// Loss and accuracy.
    pub(crate) score: Score,
}

/// Everything a training run works on.
pub(crate) struct Fit<'a> {
    /// The stage's context, for progress, notes and cancellation.
    pub(crate) ctx: &'a StageContext<'a>,
    /// The model.
    pub(crate) plan: &'a Plan,
    /// Its weights, trained in place.
    pub(crate) weights: &'a Weights,
    /// The optimizer over `weights.flat`.
    pub(crate) optimizer: Optimizer,
    /// The training loss.
    pub(crate) loss: Loss,
    /// The training split.
    pub(crate) train: &'a Split,
    /// The test split.
    pub(crate) test: &'a Split,
    /// When to step, evaluate and save.
    pub(crate) schedule: Schedule,
    /// The data-order generator.
    pub(crate) order: SplitMix64,
    /// Where checkpoints go (`checkpoints/` in the output folder).
    pub(crate) checkpoint_dir: PathBuf,
    /// Where each step's loss and gradient norm go, when they are logged.
    pub(crate) steps: Option<&'a mut StepLog>,
    /// Where the run starts: epoch 0, or a resumed snapshot's epoch and evaluations.
    pub(crate) start: Start,
    /// Resume snapshots, saved now and then.
    pub(crate) snapshots: Snapshots,
    /// Stop (instead of failing) at a non-finite training loss.
    pub(crate) stop_on_nan: bool,
    /// What the run is (parameters and seed), recorded in resume snapshots.
    pub(crate) identity: serde_json::Value,
}

/// Where a run stopped because its loss stopped being a number.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub(crate) struct Divergence {
    /// The epoch it happened in.
    pub(crate) epoch: usize,
    /// The optimizer step, counted from 1 over the whole run.
    pub(crate) step: u64,
    /// The loss value (NaN or infinite), as text.
    pub(crate) loss: String,
}

/// What a run produced.
pub(crate) struct Outcome {
    /// Every evaluation.
    pub(crate) rows: Vec<EvalRow>,
    /// Where it diverged, if it stopped there.
    pub(crate) diverged: Option<Divergence>,
}

/// Where a run starts.
pub(crate) struct Start {
    /// Epochs already done.
    pub(crate) epoch: usize,
    /// Their evaluations.
    pub(crate) rows: Vec<EvalRow>,
}

/// Why an epoch ended early.
enum Stop {
    /// The loss became NaN or infinite and the run stops there.
    Diverged(Divergence),
    /// Anything else.
    Failed(StageError),
}

impl From<StageError> for Stop {
    fn from(e: StageError) -> Self {
        Stop::Failed(e)
    }
}

/// Reused across epochs: the permutation on the host, per-step losses, the flat gradient, and
/// per-step gradient norms when steps are logged.
struct Buffers {
    order: Vec<i64>,
    step_losses: Tensor,
    grad: Tensor,
    grad_norms: Option<Tensor>,
}

impl Fit<'_> {
    /// Trains for the scheduled epochs and returns every evaluation.
    pub(crate) fn run(mut self) -> Result<Outcome, StageError> {
        let batches = self.batches_per_epoch()?;
        let mut buffers = self.buffers(batches)?;
        self.ctx.note(format!(
            "training {} parameters for {} epochs of {batches} steps",
            self.plan.parameter_count(),
            self.schedule.epochs
        ));
        let first = self.start.epoch + 1;
        let mut rows = std::mem::take(&mut self.start.rows);
        if first == 1 {
            if self.schedule.eval_initial {
                self.evaluate_into(0, &mut rows)?;
            }
            self.checkpoint(0)?;
        }
        let epochs = self.schedule.epochs;
        for epoch in first..=epochs {
            self.ctx.check_cancelled()?;
            tch::manual_seed(epoch_seed(self.ctx.seed, epoch));
            let mean_loss = match self.epoch(epoch, batches, &mut buffers) {
                Err(Stop::Diverged(d)) => {
                    self.ctx.note(format!(
                        "the loss became {} at epoch {}, step {}; stopped as the pipeline asks",
                        d.loss, d.epoch, d.step
                    ));
                    return Ok(Outcome {
                        rows,
                        diverged: Some(d),
                    });
                }
                Err(Stop::Failed(e)) => return Err(e),
                Ok(mean) => mean,
            };
            let evaluate = epoch.is_multiple_of(self.schedule.eval_every.max(1)) || epoch == epochs;
            let mut message = format!("batch_loss={mean_loss:.4}");
            if evaluate && let Some(test) = self.evaluate_into(epoch, &mut rows)? {
                message.push_str(&format!(" test_loss={:.4}", test.loss));
                if let Some(acc) = test.accuracy {
                    message.push_str(&format!(" test_acc={acc:.4}"));
                }
            }
            self.checkpoint(epoch)?;
            if epoch < epochs && self.snapshots.due() {
                self.snapshot(epoch, &rows)?;
            }
            self.ctx
                .progress(epoch as u64, epochs as u64, "epoch", message);
        }
        Ok(Outcome {
            rows,
            diverged: None,
        })
    }

    /// Trains for the scheduled epochs without evaluating, saving or reporting: the training
    /// loop alone, as the benchmarks time it. Returns the optimizer steps taken.
    pub(crate) fn train_only(mut self) -> Result<u64, StageError> {
        let batches = self.batches_per_epoch()?;
        let mut buffers = self.buffers(batches)?;
        for epoch in 1..=self.schedule.epochs {
            match self.epoch(epoch, batches, &mut buffers) {
                Ok(_) => {}
                Err(Stop::Failed(e)) => return Err(e),
                Err(Stop::Diverged(d)) => {
                    return Err(StageError::numerical(format!(
                        "the loss became {} at step {}",
                        d.loss, d.step
                    )));
                }
            }
        }
        Ok(self.optimizer.steps())
    }

    /// Saves the state after `epoch` for resuming.
    fn snapshot(&mut self, epoch: usize, rows: &[EvalRow]) -> Result<(), StageError> {
        let step_rows = self
            .steps
            .as_deref()
            .map(|s| s.rows().to_vec())
            .unwrap_or_default();
        let progress = Progress::new(
            self.identity.clone(),
            epoch,
            self.optimizer.steps(),
            self.order.state(),
            rows,
            step_rows,
        );
        let mut tensors = self.weights.named(self.plan);
        tensors.extend(self.optimizer.state_tensors());
        self.snapshots.save(&tensors, &progress)
    }

    /// Full batches plus a final partial one; a final batch of one example is dropped when
    /// the model has batch normalization, which cannot normalize a single example.
    fn batches_per_epoch(&self) -> Result<i64, StageError> {
        let (n, bs) = (self.train.len, self.schedule.batch_size as i64);
        let has_bn = self
            .plan
            .ops
            .iter()
            .any(|op| matches!(op, Op::BatchNorm { .. }));
        let mut batches = (n + bs - 1) / bs;
        if has_bn && n % bs == 1 {
            batches -= 1;
            self.ctx
                .note("batch norm: the last training example of each epoch is skipped");
        }
        if batches == 0 {
            return Err(StageError::input(
                "the training split has too few examples to train on",
            ));
        }
        Ok(batches)
    }

    fn buffers(&self, batches: i64) -> Result<Buffers, StageError> {
        let device = self.train.x.device();
        let step_losses = Tensor::f_zeros([batches], (Kind::Float, device));
        let grad_norms = match self.steps {
            Some(_) => Some(norm_buffer(batches, device)?),
            None => None,
        };
        Ok(Buffers {
            order: vec![0; self.train.len as usize],
            step_losses: step_losses.ctx("allocating the step-loss buffer")?,
            grad: self
                .weights
                .flat
                .f_zeros_like()
                .ctx("allocating the gradient buffer")?,
            grad_norms,
        })
    }

    /// One pass over the training split; returns the mean of the batch losses.
    fn epoch(&mut self, epoch: usize, batches: i64, buf: &mut Buffers) -> Result<f64, Stop> {
        self.order.shuffle_into(&mut buf.order);
        let perm = Tensor::f_from_slice(&buf.order)
            .and_then(|p| p.f_to_device(self.train.x.device()))
            .ctx("uploading the epoch's example order")?;
        let bs = self.schedule.batch_size as i64;
        for s in 0..batches {
            let n = bs.min(self.train.len - s * bs);
            let index = perm
                .f_narrow(0, s * bs, n)
                .ctx("slicing the example order")?;
            let loss = self.step(&index, s, buf)?;
            let slot = buf
                .step_losses
                .f_select(0, s)
                .ctx("recording the step loss")?;
            slot.shallow_clone()
                .f_copy_(&loss)
                .ctx("recording the step loss")?;
        }
        let losses = self.check_losses(epoch, batches, &buf.step_losses)?;
        let losses = match losses {
            Ok(values) => values,
            Err(divergence) if self.stop_on_nan => return Err(Stop::Diverged(divergence)),
            Err(d) => {
                return Err(Stop::Failed(StageError::numerical(format!(
                    "the training loss became {} at epoch {epoch}, step {} overall; try a lower \
                     learning rate (or `on_nan: stop` to keep the run up to there)",
                    d.loss, d.step
                ))));
            }
        };
        if let (Some(log), Some(norms)) = (self.steps.as_deref_mut(), &buf.grad_norms) {
            let first = self.optimizer.steps() + 1 - batches as u64;
            log.push_epoch(epoch, first, &losses, norms)?;
        }
        let sum: f64 = losses.iter().map(|&v| f64::from(v)).sum();
        Ok(sum / losses.len().max(1) as f64)
    }

    /// One optimizer step on the examples at `index`, step `slot` of the epoch; returns the
    /// detached batch loss.
    fn step(&mut self, index: &Tensor, slot: i64, buf: &mut Buffers) -> Result<Tensor, StageError> {
        let x = self
            .train
            .x
            .f_index_select(0, index)
            .ctx("gathering a batch")?;
        let y = self
            .train
            .y
            .f_index_select(0, index)
            .ctx("gathering a batch")?;
        let out = forward(
            self.plan,
            &self.weights.params,
            &self.weights.buffers,
            &x,
            true,
        )?;
        let loss = self.loss.mean(&out, &y).ctx("computing the loss")?;
        let grads = Tensor::f_run_backward(&[&loss], &self.weights.params, false, false)
            .ctx("backward pass")?;
        let flat: Vec<Tensor> = grads
            .iter()
            .map(|g| g.f_reshape([-1]))
            .collect::<Result<_, _>>()
            .ctx("flattening")?;
        Tensor::f_cat_out(&buf.grad, &flat, 0)
            .ctx("gathering gradients")
            .map(drop)?;
        if let Some(norms) = &buf.grad_norms {
            record_norm(norms, slot, &buf.grad)?;
        }
        let mut grad = [buf.grad.shallow_clone()];
        self.optimizer
            .step(&[self.weights.flat.shallow_clone()], &mut grad)?;
        loss.f_detach().ctx("detaching the loss")
    }

    /// Reads the epoch's step losses once; the first non-finite one is a divergence.
    fn check_losses(
        &self,
        epoch: usize,
        batches: i64,
        losses: &Tensor,
    ) -> Result<Result<Vec<f32>, Divergence>, StageError> {
        let host = losses.f_to_device(Device::Cpu).ctx("reading step losses")?;
        let values = Vec::<f32>::try_from(&host).ctx("reading step losses")?;
        if let Some((s, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            let step = self.optimizer.steps() - batches as u64 + s as u64 + 1;
            return Ok(Err(Divergence {
                epoch,
                step,
                loss: v.to_string(),
            }));
        }
        Ok(Ok(values))
    }

    /// Scores both splits (an empty one is skipped), appends their rows, and returns the test
    /// score, if there is one.
    fn evaluate_into(
        &self,
        epoch: usize,
        rows: &mut Vec<EvalRow>,
    ) -> Result<Option<Score>, StageError> {
        let batch = self.schedule.eval_batch_size as i64;
        let mut test_score = None;
        for (name, split) in [("train", self.train), ("test", self.test)] {
            if split.len == 0 {
                continue;
            }
            let score = evaluate(self.plan, self.weights, self.loss, split, batch)?;
            if !score.loss.is_finite() {
                return Err(StageError::numerical(format!(
                    "the {name} loss is {} at epoch {epoch}; try a lower learning rate",
                    score.loss
                )));
            }
            let step = self.optimizer.steps();
            rows.push(EvalRow {
                epoch,
                step,
                split: name,
                score,
            });
            test_score = (name == "test").then_some(score);
        }
        Ok(test_score)
    }

    fn checkpoint(&self, epoch: usize) -> Result<(), StageError> {
        let every = self.schedule.checkpoint_every;
        if every == 0 || !epoch.is_multiple_of(every) {
            return Ok(());
        }
        std::fs::create_dir_all(&self.checkpoint_dir)
            .map_err(|e| StageError::io("create", &self.checkpoint_dir, &e))?;
        let path = self
            .checkpoint_dir
            .join(format!("epoch-{epoch:04}.safetensors"));
        save_weights(&path, self.plan, self.weights)
    }
}
