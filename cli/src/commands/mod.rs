//! One file per subcommand.

pub mod bench;
pub mod completions;
pub mod dag;
pub mod diff;
pub mod gc;
pub mod kinds;
pub mod plan;
pub mod report;
pub mod run;
pub mod runs;
pub mod show;
pub mod validate;
pub mod verify;
