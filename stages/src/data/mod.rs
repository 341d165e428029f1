//! Data sets: readers for the file formats users have (MNIST's IDX, CIFAR-10's binary
//! batches), the synthetic 1-D functions of the homework, random labels for the memorization
//! experiment, and the one on-disk format that data stages write and training stages read.

pub(crate) mod cifar;
pub(crate) mod dataset;
pub(crate) mod file;
pub(crate) mod functions;
pub(crate) mod idx;
pub(crate) mod images;
pub(crate) mod label_noise;
pub(crate) mod stats;
