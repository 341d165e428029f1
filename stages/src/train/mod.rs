//! Training: optimizers over plain tensors, losses, the data a trainer holds on its device,
//! evaluation, and the training loop itself.

pub(crate) mod data;
pub(crate) mod evaluate;
pub(crate) mod fit;
pub(crate) mod loss;
pub(crate) mod optim;
