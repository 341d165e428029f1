//! Runs the `sensitivity` kind (declared in `pipeline_kinds::sensitivity`): per split, the
//! mean loss, accuracy, input-gradient norm and softmax-Jacobian norm of a trained model
//! (`crate::analysis::input_grad`), written as `sensitivity.parquet`.

use pipeline_engine::stage::{StageContext, StageError, TypedStage};
use pipeline_kinds::predict::SplitName;
use pipeline_kinds::sensitivity::{Sensitivity, SensitivityParams};
use pipeline_reports::table::{ColumnData, Table};

use crate::analysis::host::{check_finite, mean};
use crate::analysis::input_grad::{InputModel, PerExample, per_example};
use crate::analysis::progress::Ticker;
use crate::analysis::subject::{Subject, split_label};
use crate::device::init_torch;
use crate::model::network::views;
use crate::table::write_table;
use crate::train::data::Split;
use crate::train::loss::Loss;

/// The sensitivity table.
pub(crate) const SENSITIVITY_FILE: &str = "sensitivity.parquet";

/// One row of the table.
struct Row {
    split: &'static str,
    examples: usize,
    loss: f64,
    accuracy: Option<f64>,
    grad_norm: f64,
    jacobian_norm: f64,
}

/// Measures the model's sensitivity on both splits and writes the table.
pub(crate) fn run(p: SensitivityParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    init_torch(ctx.threads, ctx.seed);
    let subject = Subject::load(ctx, "model")?;
    let train = subject.split(SplitName::Train, p.train_limit)?;
    let test = subject.split(SplitName::Test, None)?;
    let params = views(&subject.plan, &subject.weights.flat)?;
    let model = InputModel {
        plan: &subject.plan,
        params: &params,
        buffers: &subject.weights.buffers,
        loss: subject.loss,
    };
    let mut ticker = Ticker::new(ctx, (train.len + test.len) as u64, "example");
    let mut rows = Vec::new();
    for (name, split) in [(SplitName::Train, &train), (SplitName::Test, &test)] {
        if split.len == 0 {
            continue;
        }
        let figures = per_example(&model, split, p.eval_batch_size as i64, &mut ticker)?;
        rows.push(summarize(split_label(name), split, &figures, subject.loss)?);
    }
    write_table(
        &ctx.out_dir.join(SENSITIVITY_FILE),
        &table(&rows),
        Sensitivity::NAME,
        &p,
    )
}

/// The means over a split's examples, after checking every example's figures are finite.
fn summarize(
    split: &'static str,
    examples: &Split,
    f: &PerExample,
    loss: Loss,
) -> Result<Row, StageError> {
    for (what, values) in [
        ("loss", &f.loss),
        ("input-gradient norm", &f.grad_norm),
        ("softmax-Jacobian norm", &f.jacobian_norm),
    ] {
        check_finite(values, |i, v| {
            format!("the {what} of {split} example {i} is {v}")
        })?;
    }
    Ok(Row {
        split,
        examples: examples.len as usize,
        loss: mean(&f.loss),
        accuracy: (loss == Loss::CrossEntropy).then(|| mean(&f.correct)),
        grad_norm: mean(&f.grad_norm),
        jacobian_norm: mean(&f.jacobian_norm),
    })
}

fn table(rows: &[Row]) -> Table {
    let floats =
        |get: fn(&Row) -> f64| ColumnData::F64(rows.iter().map(|r| Some(get(r))).collect());
    let mut table = Table::new();
    table
        .push(
            "split",
            ColumnData::Str(rows.iter().map(|r| r.split.to_owned()).collect()),
        )
        .push(
            "examples",
            ColumnData::I64(rows.iter().map(|r| r.examples as i64).collect()),
        )
        .push("loss", floats(|r| r.loss))
        .push(
            "accuracy",
            ColumnData::F64(rows.iter().map(|r| r.accuracy).collect()),
        )
        .push("grad_norm", floats(|r| r.grad_norm))
        .push("jacobian_norm", floats(|r| r.jacobian_norm));
    table
}

#[cfg(test)]
mod tests;
