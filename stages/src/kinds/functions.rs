//! The `functions` kind: samples sin(5πx)/(5πx) or sgn(sin(5πx)) on a grid as a regression
//! data set.
//!
//! ```yaml
//! sinc:
//!   kind: functions
//!   params: {function: sinc, n: 10000}
//! ```

use pipeline_engine::stage::{ParamIssue, StageContext, StageError, TypedStage};
use serde::{Deserialize, Serialize};

use crate::data::dataset::{Dataset, DatasetInfo, FORMAT, InputDtype, Normalization, Points, Task};
use crate::data::functions::{Function, sample, test_grid, train_grid};

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
        if !(p.x_min.is_finite() && p.x_max.is_finite() && p.x_min < p.x_max) {
            return Err(ParamIssue::at("x_max", "needs finite x_min < x_max"));
        }
        Ok(())
    }

    fn run(&self, p: FunctionsParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
        crate::device::init_torch(ctx.threads, ctx.seed);
        let n_test = p.n_test.unwrap_or(p.n - 1);
        let (train_x, train_y) = sample(p.function, &train_grid(p.n, p.x_min, p.x_max));
        let (test_x, test_y) = sample(p.function, &test_grid(n_test, p.x_min, p.x_max));
        let info = DatasetInfo {
            format: FORMAT,
            name: p.function.name().to_owned(),
            task: Task::Regression,
            classes: None,
            input_shape: vec![1],
            input_dtype: InputDtype::F32,
            train_size: p.n,
            test_size: n_test,
            normalization: Normalization::identity(1),
            source: source(&p, n_test),
        };
        let train = Points {
            x: &train_x,
            y: &train_y,
        };
        let test = Points {
            x: &test_x,
            y: &test_y,
        };
        Dataset::from_points(info, 1, train, test)?.write(ctx.out_dir)
    }
}

fn source(p: &FunctionsParams, n_test: usize) -> String {
    let formula = match p.function {
        Function::Sinc => "sin(5πx)/(5πx)",
        Function::Sign => "sgn(sin(5πx)), 0 where |sin(5πx)| < 1e-9",
    };
    format!(
        "{formula} at {} evenly spaced points of [{}, {}] (train) and the centres of {n_test} \
         equal cells (test)",
        p.n, p.x_min, p.x_max
    )
}

#[cfg(test)]
mod tests {
    use pipeline_engine::stage::typed;
    use serde_json::json;

    use super::*;
    use crate::testing::{Events, run_stage, subdir};

    #[test]
    fn sign_data_set_holds_the_function_at_the_grid() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let out = subdir(root.path(), "out");
        let params = json!({"function": "sign", "n": 11, "x_min": 0.0, "x_max": 1.0});
        run_stage(typed(Functions), params, &[], &out, 0, &Events::default())?;
        let data = Dataset::load(&out)?;
        assert_eq!((data.info.train_size, data.info.test_size), (11, 10));
        let x = Vec::<f32>::try_from(data.train_x.view([-1]))?;
        let y = Vec::<f32>::try_from(data.train_y.view([-1]))?;
        assert_eq!(x[2], 0.2);
        // sgn(sin(5πx)) on x = 0, 0.1, ..., 1: zeros at multiples of 0.2, else ±1.
        let want = [0.0, 1.0, 0.0, -1.0, 0.0, 1.0, 0.0, -1.0, 0.0, 1.0, 0.0];
        assert_eq!(y, want);
        let test_x = Vec::<f32>::try_from(data.test_x.view([-1]))?;
        assert_eq!((test_x[0], test_x[9]), (0.05, 0.95));
        Ok(())
    }

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
        let canonical = kind.canonicalize(json!({"function": "sinc"}));
        let expected =
            json!({"function": "sinc", "n": 10000, "n_test": null, "x_min": 0.0001, "x_max": 1.0});
        assert_eq!(canonical.ok(), Some(expected));
    }
}
