//! The core of `pipeline`: pipeline files, the stage contract, the stage graph, the planner
//! that decides what runs and why, and the scheduler that runs stages in parallel.
//!
//! This crate knows nothing of libtorch: stage kinds implement [`stage::TypedStage`] in other
//! crates and are handed to the engine in a [`stage::Registry`].

pub mod dag;
pub mod spec;
pub mod stage;
pub mod suggest;
