//! Runs the `parameter_curves` kind (declared in `pipeline_kinds::parameter_curves`): moves
//! one parameter of a trained model at a time over its offsets, evaluates the loss at each,
//! and writes `parameter_curves.parquet`.
//!
//! One buffer holds the trained parameters; for each chosen parameter, the buffer's entry is
//! set to each offset value in turn and restored afterwards, so every evaluation sees the
//! trained weights but for one entry. The sums of every evaluation stay on the device and are
//! read back once.

use pipeline_engine::stage::{StageContext, StageError, TypedStage};
use pipeline_kinds::model::plan::Plan;
use pipeline_kinds::parameter_curves::{ParameterCurves, ParameterCurvesParams};
use pipeline_kinds::predict::SplitName;
use pipeline_reports::table::{ColumnData, Table};
use tch::Tensor;

use crate::analysis::host::{check_finite, read_f64};
use crate::analysis::progress::Ticker;
use crate::analysis::subject::Subject;
use crate::device::init_torch;
use crate::error::TchContext;
use crate::model::network::views;
use crate::rng::SplitMix64;
use crate::table::write_table;
use crate::train::evaluate::{Score, sums};

/// The curves table.
pub(crate) const CURVES_FILE: &str = "parameter_curves.parquet";
/// Parameters closer to zero than this move by offsets of this size instead of their own.
const MIN_SCALE: f64 = 1e-3;
/// Mixed into the seed for choosing parameters.
const CHOICE_STREAM: u64 = 0x7061_7261_6d63_686f;

/// Evaluates the curves and writes the table.
pub(crate) fn run(p: ParameterCurvesParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    init_torch(ctx.threads, ctx.seed);
    let subject = Subject::load(ctx, "model")?;
    let examples = subject.split(SplitName::Train, p.train_limit)?;
    if examples.len == 0 {
        return Err(StageError::input(
            "the data set's training split is empty: there is nothing to evaluate on",
        ));
    }
    let theta = read_f64(&subject.weights.flat, "the trained weights")?;
    let chosen = choose(theta.len(), p.parameters, ctx.seed);
    let offsets = p.offsets();
    let point = subject
        .weights
        .flat
        .f_detach_copy()
        .ctx("copying the weights")?;
    let params = views(&subject.plan, &point)?;
    let batch = p.eval_batch_size as i64;
    let mut ticker = Ticker::new(ctx, chosen.len() as u64, "parameter");
    let mut results = Vec::with_capacity(chosen.len() * offsets.len());
    for &i in &chosen {
        let entry = point.f_select(0, i as i64).ctx("selecting a parameter")?;
        for value in offsets.iter().map(|t| moved(theta[i], *t)) {
            set(&entry, value)?;
            let loss = sums(
                &subject.plan,
                &params,
                &subject.weights.buffers,
                subject.loss,
                &examples,
                batch,
            )?;
            results.push(loss);
        }
        set(&entry, theta[i])?;
        ticker.advance(1, "parameter curves")?;
    }
    let all = Tensor::f_stack(&results, 0).ctx("collecting results")?;
    let values = read_f64(&all, "the parameter curves")?;
    let names = element_names(&subject.plan);
    let mut rows = Rows::default();
    for (k, &i) in chosen.iter().enumerate() {
        for (j, &t) in offsets.iter().enumerate() {
            let at = 2 * (k * offsets.len() + j);
            let score = Score::from_sums(&values[at..at + 2], subject.loss, examples.len);
            check_finite(&[score.loss], |_, v| {
                format!(
                    "the loss is {v} with parameter {} moved by offset {t}",
                    names[i]
                )
            })?;
            rows.push(i, &names[i], t, moved(theta[i], t), score);
        }
    }
    write_table(
        &ctx.out_dir.join(CURVES_FILE),
        &rows.table(),
        ParameterCurves::NAME,
        &p,
    )
}

/// θ + t·max(|θ|, MIN_SCALE).
fn moved(theta: f64, t: f64) -> f64 {
    theta + t * theta.abs().max(MIN_SCALE)
}

fn set(entry: &Tensor, value: f64) -> Result<(), StageError> {
    entry
        .shallow_clone()
        .f_fill_(value)
        .map(drop)
        .ctx("setting a parameter")
}

/// Every index below `n`, or `k` of them drawn without repetition from `seed`, ascending.
fn choose(n: usize, k: Option<usize>, seed: u64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    let Some(k) = k.filter(|&k| k < n) else {
        return all;
    };
    let mut rng = SplitMix64::new(seed ^ CHOICE_STREAM);
    for i in 0..k {
        let j = i + rng.below((n - i) as u64) as usize;
        all.swap(i, j);
    }
    let mut chosen = all[..k].to_vec();
    chosen.sort_unstable();
    chosen
}

/// The name of every parameter entry in flat order: `layers.1.weight[3,17]`.
fn element_names(plan: &Plan) -> Vec<String> {
    let mut names = Vec::with_capacity(plan.parameter_count());
    for spec in &plan.params {
        for flat in 0..spec.numel() {
            let mut index = Vec::with_capacity(spec.shape.len());
            let mut rest = flat;
            for &dim in spec.shape.iter().rev() {
                let dim = dim.max(1) as usize;
                index.push(rest % dim);
                rest /= dim;
            }
            index.reverse();
            let index: Vec<String> = index.iter().map(usize::to_string).collect();
            names.push(format!("{}[{}]", spec.name, index.join(",")));
        }
    }
    names
}

/// The table's columns, row by row.
#[derive(Default)]
struct Rows {
    parameter: Vec<i64>,
    name: Vec<String>,
    offset: Vec<Option<f64>>,
    value: Vec<Option<f64>>,
    loss: Vec<Option<f64>>,
    accuracy: Vec<Option<f64>>,
}

impl Rows {
    fn push(&mut self, index: usize, name: &str, offset: f64, value: f64, score: Score) {
        self.parameter.push(index as i64);
        self.name.push(name.to_owned());
        self.offset.push(Some(offset));
        self.value.push(Some(value));
        self.loss.push(Some(score.loss));
        self.accuracy.push(score.accuracy);
    }

    fn table(self) -> Table {
        let mut table = Table::new();
        table
            .push("parameter", ColumnData::I64(self.parameter))
            .push("name", ColumnData::Str(self.name))
            .push("offset", ColumnData::F64(self.offset))
            .push("value", ColumnData::F64(self.value))
            .push("loss", ColumnData::F64(self.loss))
            .push("accuracy", ColumnData::F64(self.accuracy));
        table
    }
}

#[cfg(test)]
mod tests {
    use pipeline_kinds::model::plan::plan;
    use pipeline_kinds::model::spec::ModelSpec;

    use super::*;

    #[test]
    fn a_random_choice_is_sorted_distinct_and_reproducible() {
        let a = choose(100, Some(10), 7);
        assert_eq!(a, choose(100, Some(10), 7));
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a.iter().all(|&i| i < 100));
        assert_eq!(choose(3, Some(10), 7), [0, 1, 2]);
        assert_eq!(choose(3, None, 7), [0, 1, 2]);
    }

    #[test]
    fn entries_are_named_by_tensor_and_index() -> Result<(), StageError> {
        let spec: ModelSpec = serde_json::from_str(r#"{"mlp": {"hidden": [2]}}"#)
            .map_err(|e| StageError::bug(e.to_string()))?;
        let names = element_names(&plan(&spec, &[3], 1)?);
        assert_eq!(names.len(), 11);
        assert_eq!(names[0], "layers.0.weight[0,0]");
        assert_eq!(names[5], "layers.0.weight[1,2]");
        assert_eq!(names[6], "layers.0.bias[0]");
        assert_eq!(names[10], "layers.2.bias[0]");
        Ok(())
    }

    #[test]
    fn every_curve_passes_through_the_trained_loss() -> Result<(), Box<dyn std::error::Error>> {
        use crate::runners::train::METRICS_FILE;
        use crate::testing::{Events, function_data, run_stage_threads, subdir, train_model};
        let _lock = crate::testing::torch_lock();
        let root = tempfile::tempdir()?;
        let data = function_data(root.path(), "sinc", "sinc", 100)?;
        let params = serde_json::json!({"model": {"mlp": {"hidden": [4]}}, "epochs": 2});
        let model = train_model(root.path(), "fit", &data, params, 2)?;
        let out = subdir(root.path(), "curves");
        let inputs = [("model", model.as_path()), ("data", data.as_path())];
        let params = serde_json::json!({"parameters": 5, "points": 5});
        run_stage_threads(
            "parameter_curves",
            params,
            &inputs,
            &out,
            1,
            &Events::default(),
            1,
        )?;
        let table = Table::read_parquet(&out.join(CURVES_FILE))?;
        assert_eq!(
            table.names(),
            ["parameter", "name", "offset", "value", "loss", "accuracy"]
        );
        assert_eq!(table.num_rows(), 25);
        let trained =
            Table::read_parquet(&model.join(METRICS_FILE))?.filter_eq("split", "train")?;
        let trained = trained.f64s("loss")?.last().copied().flatten();
        let at_zero = table.filter_eq("parameter", &table.i64s("parameter")?[0].to_string())?;
        assert_eq!(at_zero.f64s("offset")?[2], Some(0.0));
        // The curve evaluates with libtorch; the training's own evaluation (the host trainer,
        // for this small MLP) sums in another order: equal up to rounding.
        let trained = trained.ok_or("no trained loss")?;
        for (offset, loss) in table.f64s("offset")?.iter().zip(table.f64s("loss")?) {
            if *offset == Some(0.0) {
                let loss = loss.ok_or("no loss at offset 0")?;
                assert!(
                    (loss - trained).abs() <= 1e-6 * trained,
                    "{loss} vs {trained}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn offsets_scale_with_the_parameter_with_a_floor() {
        assert_eq!(moved(2.0, -1.0), 0.0);
        assert_eq!(moved(-2.0, 1.0), 0.0);
        assert_eq!(moved(0.0, 1.0), MIN_SCALE);
    }
}
