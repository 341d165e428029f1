//! Errors that stop the engine before or around a run (as opposed to a failed stage, which
//! is a result of the run).

use pipeline_cache::StoreError;

use crate::spec::SpecErrors;

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The pipeline file is wrong.
    #[error("{0}")]
    Spec(#[from] SpecErrors),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stage named on the command line does not exist.
    #[error("{0}")]
    Selection(String),
    /// The machine refused something (threads, files).
    #[error("{action}")]
    Environment {
        /// What failed.
        action: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
