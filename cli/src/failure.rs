//! The one error type of the binary: each class maps to a documented exit code and prints as
//! a one-line summary, an optional hint, then the cause chain.

use std::fmt::Write;

use pipeline_engine::spec::SpecErrors;

/// Why a command failed.
pub enum Failure {
    /// The pipeline file or the command line is wrong (exit 2).
    Input(String),
    /// The pipeline file is wrong, with located errors (exit 2).
    Spec(SpecErrors),
    /// Stages failed; the summary has been printed (exit 1).
    StagesFailed,
    /// A problem of the machine (exit 3).
    Environment {
        /// The summary.
        message: String,
        /// A suggestion.
        hint: Option<String>,
        /// Causes, outermost first.
        causes: Vec<String>,
    },
}

impl Failure {
    /// An environment failure from an error and its chain.
    pub fn environment(
        message: impl Into<String>,
        err: &(dyn std::error::Error + 'static),
    ) -> Self {
        let mut causes = Vec::new();
        let mut next = Some(err);
        while let Some(e) = next {
            causes.push(e.to_string());
            next = e.source();
        }
        Self::Environment {
            message: message.into(),
            hint: None,
            causes,
        }
    }

    /// The exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::StagesFailed => 1,
            Failure::Input(_) | Failure::Spec(_) => 2,
            Failure::Environment { .. } => 3,
        }
    }

    /// The text printed on stderr.
    pub fn render(&self) -> String {
        match self {
            Failure::Input(message) => format!("error: {message}\n"),
            Failure::Spec(errors) => errors.render(),
            Failure::StagesFailed => String::new(),
            Failure::Environment {
                message,
                hint,
                causes,
            } => {
                let mut out = format!("error: {message}\n");
                for cause in causes {
                    let _ = writeln!(out, "  caused by: {cause}");
                }
                if let Some(h) = hint {
                    let _ = writeln!(out, "  hint: {h}");
                }
                out
            }
        }
    }
}

impl From<SpecErrors> for Failure {
    fn from(e: SpecErrors) -> Self {
        Failure::Spec(e)
    }
}

impl From<pipeline_engine::EngineError> for Failure {
    fn from(e: pipeline_engine::EngineError) -> Self {
        use pipeline_engine::EngineError as E;
        match e {
            E::Spec(s) => Failure::Spec(s),
            E::Selection(m) => Failure::Input(m),
            E::Store(s) => {
                let unwritable = s.is_unwritable();
                let mut f = Failure::environment("the store failed", &s);
                if unwritable && let Failure::Environment { hint, .. } = &mut f {
                    *hint = Some("is the disk full or the store read-only? see --store".into());
                }
                f
            }
            E::Environment { action, source } => Failure::environment(action, &source),
        }
    }
}

impl From<pipeline_cache::StoreError> for Failure {
    fn from(e: pipeline_cache::StoreError) -> Self {
        pipeline_engine::EngineError::Store(e).into()
    }
}
