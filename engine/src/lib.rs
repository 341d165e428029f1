//! The core of `pipeline`: pipeline files, the stage contract, the stage graph, the planner
//! that decides what runs and why, and the scheduler that runs stages in parallel.
//!
//! This crate knows nothing of libtorch: stage kinds implement [`stage::TypedStage`] in other
//! crates and are handed to the engine in a [`stage::Registry`]. Where stages execute (this
//! process, child processes, a cluster) is an [`job::Executor`] chosen by the caller.

#![expect(
    clippy::result_large_err,
    reason = "spec errors carry a location, key path, notes and help; they are built once, \
              when a pipeline file is wrong, so their size costs nothing that matters"
)]

pub mod atomic;
pub mod child;
pub mod dag;
pub mod diff;
pub mod error;
pub mod events;
pub mod filehash;
pub mod gc;
pub mod job;
pub mod key;
pub mod outputs;
pub mod paths;
pub mod plan;
pub mod record;
pub mod run;
pub mod spec;
pub mod stage;
pub mod state;
pub mod suggest;
pub mod worker;
pub mod workspace;

pub use error::EngineError;
pub use spec::{Pipeline, StageSpec};
pub use workspace::Workspace;
