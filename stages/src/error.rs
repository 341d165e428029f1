//! Turning libtorch failures into [`StageError`]s that say what was being done.
//!
//! tch's errors carry little context (a C++ message, sometimes with a backtrace), so every
//! fallible tch call in this crate goes through [`TchContext`], which names the operation and
//! picks the error class: running out of memory is a problem of the machine, anything else
//! that libtorch rejects after our own checks passed is a bug.

use pipeline_engine::stage::StageError;

/// Adds context to a libtorch result.
pub(crate) trait TchContext<T> {
    /// Wraps a failure of `what` (an operation: "forward pass of layer 3") as a bug, or as an
    /// environment error when libtorch ran out of memory.
    fn ctx(self, what: &str) -> Result<T, StageError>;
}

impl<T> TchContext<T> for Result<T, tch::TchError> {
    fn ctx(self, what: &str) -> Result<T, StageError> {
        self.map_err(|err| classify(what, &err))
    }
}

fn classify(what: &str, err: &tch::TchError) -> StageError {
    let text = first_line(&err.to_string());
    let lower = text.to_lowercase();
    let base = if lower.contains("out of memory") || lower.contains("can't allocate memory") {
        StageError::environment(format!("{what}: libtorch ran out of memory"))
    } else {
        StageError::bug(format!("{what} failed in libtorch"))
    };
    StageError {
        causes: vec![text],
        ..base
    }
}

/// libtorch appends a C++ backtrace to its messages; the first line is the message itself.
fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_engine::stage::ErrorClass;

    #[test]
    fn out_of_memory_is_an_environment_problem() {
        let err: Result<(), _> = Err(tch::TchError::Torch("CUDA out of memory.\n trace".into()));
        let err = err.ctx("forward pass").err();
        assert_eq!(err.as_ref().map(|e| e.class), Some(ErrorClass::Environment));
        let causes = err.map(|e| e.causes).unwrap_or_default();
        assert_eq!(causes.len(), 1);
        assert!(causes[0].ends_with("CUDA out of memory."), "{causes:?}");
    }

    #[test]
    fn other_failures_are_bugs_naming_the_operation() {
        let err: Result<(), _> = Err(tch::TchError::Shape("bad".into()));
        let err = err.ctx("forward pass").err().map(|e| (e.class, e.message));
        assert_eq!(
            err,
            Some((
                ErrorClass::Bug,
                "forward pass failed in libtorch".to_owned()
            ))
        );
    }
}
