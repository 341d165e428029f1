//! One file per subcommand.

pub mod completions;
pub mod kinds;
pub mod plan;
pub mod run;
pub mod validate;
pub mod verify;
