//! Runs the `functions` kind (declared in `pipeline_kinds::functions`): samples the function
//! on its training and test grids and writes them as a regression data set.

use pipeline_engine::stage::{StageContext, StageError};
use pipeline_kinds::functions::{Function, FunctionsParams};

use crate::data::dataset::{Dataset, DatasetInfo, FORMAT, InputDtype, Normalization, Points, Task};
use crate::data::functions::{sample, test_grid, train_grid};

/// Writes the data set of `p` into the stage's output folder.
pub(crate) fn run(p: FunctionsParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
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
        normalization: if p.standardize {
            standardization(&train_x)
        } else {
            Normalization::identity(1)
        },
        source: source(&p, n_test),
        label_noise: None,
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

/// The mean and standard deviation of the training inputs, computed in f64.
fn standardization(x: &[f32]) -> Normalization {
    let n = x.len().max(1) as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let std = if var > 0.0 { var.sqrt() } else { 1.0 };
    Normalization {
        divide: 1.0,
        mean: vec![mean],
        std: vec![std],
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
    use serde_json::json;

    use super::*;
    use crate::testing::{Events, run_stage, subdir};

    #[test]
    fn sign_data_set_holds_the_function_at_the_grid() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let out = subdir(root.path(), "out");
        let params = json!({"function": "sign", "n": 11, "x_min": 0.0, "x_max": 1.0});
        run_stage("functions", params, &[], &out, 0, &Events::default())?;
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
}
