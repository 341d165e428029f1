//! Training: optimizers over plain tensors, losses, the data a trainer holds on its device,
//! evaluation, the training loop itself, its optional per-step log, and resuming.

pub(crate) mod batched;
pub(crate) mod data;
pub(crate) mod evaluate;
pub(crate) mod fit;
pub(crate) mod loss;
pub(crate) mod optim;
pub(crate) mod resume;
pub(crate) mod step_log;
