//! The `functions` kind: samples sin(5πx)/(5πx) or sgn(sin(5πx)) on a grid as a regression
//! data set.
//!
//! ```yaml
//! sinc:
//!   kind: functions
//!   params: {function: sinc, n: 10000}
//! ```
//!
//! Training inputs are `n` evenly spaced points from `x_min` to `x_max` inclusive; test inputs
//! are the centres of `n_test` equal cells of the same interval. This is the declaration; the
//! sampling runs in the `pipeline-stages` crate.

use pipeline_engine::stage::{ParamIssue, TypedStage};
use serde::{Deserialize, Serialize};

/// The `functions` stage kind.
pub struct Functions;

/// Parameters of `functions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionsParams {
    /// `sinc` (sin(5πx)/(5πx)) or `sign` (sgn(sin(5πx)), 0 where |sin(5πx)| < 1e-9).
    pub function: Function,
    /// Training points, evenly spaced from `x_min` to `x_max` inclusive.
    #[serde(default = "default_n")]
    pub n: usize,
    /// Test points: the centres of `n_test` equal cells of the interval; `null` means `n - 1`,
    /// the midpoints between neighbouring training points.
    #[serde(default)]
    pub n_test: Option<usize>,
    /// The left end of the interval.
    #[serde(default = "default_x_min")]
    pub x_min: f64,
    /// The right end of the interval.
    #[serde(default = "default_x_max")]
    pub x_max: f64,
    /// Whether the trainer standardizes x (subtracts the training points' mean, divides by
    /// their standard deviation). Inputs in [0.0001, 1] all positive make deep, narrow ReLU
    /// networks start with many units dead for every input; centred inputs train reliably.
    /// The stored x and every table keep the original values.
    #[serde(default = "yes")]
    pub standardize: bool,
}

fn yes() -> bool {
    true
}

/// Which function to sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    /// sin(5πx)/(5πx), and 1 at x = 0.
    Sinc,
    /// sgn(sin(5πx)): 1 or -1, and 0 where |sin(5πx)| < 1e-9 (at x = k/5 up to rounding).
    Sign,
}

impl Function {
    /// The function's name as the data set records it.
    pub fn name(self) -> &'static str {
        match self {
            Function::Sinc => "sinc",
            Function::Sign => "sign",
        }
    }
}

fn default_n() -> usize {
    10_000
}

fn default_x_min() -> f64 {
    0.0001
}

fn default_x_max() -> f64 {
    1.0
}

/// The most points of a split: 100 million points are 800 MB of inputs and targets.
const MAX_POINTS: usize = 100_000_000;

impl TypedStage for Functions {
    type Params = FunctionsParams;
    const NAME: &'static str = "functions";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "samples sin(5πx)/(5πx) or sgn(sin(5πx)) as a regression data set";

    fn check(&self, p: &FunctionsParams) -> Result<(), ParamIssue> {
        if p.n < 2 {
            return Err(ParamIssue::at("n", "at least 2 training points are needed"));
        }
        if p.n_test == Some(0) {
            return Err(ParamIssue::at("n_test", "at least 1 test point is needed"));
        }
        for (key, value) in [("n", Some(p.n)), ("n_test", p.n_test)] {
            if value.is_some_and(|v| v > MAX_POINTS) {
                return Err(ParamIssue::at(
                    key,
                    format!("at most {MAX_POINTS} points (the data set must fit in memory)"),
                ));
            }
        }
        if !(p.x_min.is_finite() && p.x_max.is_finite() && p.x_min < p.x_max) {
            return Err(ParamIssue::at("x_max", "needs finite x_min < x_max"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use pipeline_engine::stage::typed;
    use serde_json::json;

    use super::*;

    #[test]
    fn bad_grids_are_refused() {
        let kind = typed(Functions);
        assert!(
            kind.canonicalize(json!({"function": "sinc", "n": 1}))
                .is_err()
        );
        assert!(
            kind.canonicalize(json!({"function": "sinc", "x_min": 1.0}))
                .is_err()
        );
        assert!(kind.canonicalize(json!({"function": "cosine"})).is_err());
        // A size that cannot fit in memory is refused before the worker tries to allocate it.
        let huge = kind.canonicalize(json!({"function": "sinc", "n": u64::MAX}));
        assert!(huge.is_err_and(|issue| issue.message.contains("at most")));
        let huge_test = kind.canonicalize(json!({"function": "sinc", "n_test": 1u64 << 40}));
        assert!(huge_test.is_err());
        let canonical = kind.canonicalize(json!({"function": "sinc"}));
        let expected = json!({"function": "sinc", "n": 10000, "n_test": null, "x_min": 0.0001, "x_max": 1.0,
                   "standardize": true});
        assert_eq!(canonical.ok(), Some(expected));
    }
}
