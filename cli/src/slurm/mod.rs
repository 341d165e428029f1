//! Running stages on a Slurm cluster (`pipeline run --executor slurm`): each stage that needs
//! a worker is one batch job; the run itself stays on the machine it was started on (a login
//! node), plans, holds the locks, commits, and shows progress as a local run does.
//!
//! [`executor`] follows a stage's jobs from submission to the end; [`script`] writes what is
//! submitted; [`queue`] asks Slurm for the states of all jobs at once; [`state`] sorts those
//! states into what to do; [`client`] runs Slurm's commands.

pub mod client;
pub mod executor;
pub mod queue;
pub mod script;
pub mod state;

pub use executor::SlurmExecutor;
