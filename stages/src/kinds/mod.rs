//! The stage kinds this crate registers, one file per kind.
//!
//! Data kinds (`functions`, `images`) write a data set folder; `train` fits a model to one;
//! `predict` evaluates a trained model on one. Each kind's parameter struct documents its
//! keys and defaults.

pub mod functions;
pub mod images;
pub mod predict;
pub mod train;

#[cfg(test)]
mod yaml_tests;
