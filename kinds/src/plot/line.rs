//! `line_plot`: one chart of one or two columns against another, one series per input stage,
//! optionally split by a column (train vs test). Loss curves of several runs, accuracy curves,
//! a predicted function against the ground truth, a metric against model size.
//!
//! ```yaml
//! loss_curves:
//!   kind: line_plot
//!   inputs: {runs: [train_deep, train_shallow]}
//!   params:
//!     x: epoch
//!     y: loss
//!     split_by: split
//!     keep: [train]
//!     log_y: true
//!     title: training loss of two MLPs
//!     x_label: epoch
//!     y_label: MSE (log scale)
//!     file: loss
//! ```
//!
//! Outputs: `<file>.png` and `<file>.svg`. The kind needs no libtorch: it is declared and run
//! from this crate, inside the engine's process.

use pipeline_engine::stage::{
    InputSlot, ParamIssue, StageContext, StageError, TypedStage, short_labels,
};
use pipeline_reports::{Axis, Chart, Mark, Series, render_chart};
use serde::{Deserialize, Serialize};

use super::series::{distinct, points, read_table, table_error};

/// The `line_plot` kind.
pub struct LinePlot;

/// How series are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkChoice {
    /// Lines.
    Line,
    /// Points only (a scatter plot).
    Points,
    /// Lines with points.
    LineAndPoints,
}

/// Parameters of `line_plot`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinePlotParams {
    /// The table file in each input's outputs.
    #[serde(default = "default_table")]
    pub table: String,
    /// The column on the x axis.
    pub x: String,
    /// The column on the left y axis.
    pub y: String,
    /// A column on a right-hand y axis (accuracy next to a loss), drawn dashed.
    #[serde(default)]
    pub y2: Option<String>,
    /// A column whose values split each input into several series (`split`: train, test).
    #[serde(default)]
    pub split_by: Option<String>,
    /// Keep only these values of `split_by` (all when empty).
    #[serde(default)]
    pub keep: Vec<String>,
    /// A column of the first input drawn once as a reference (the ground truth of a fit).
    #[serde(default)]
    pub reference: Option<String>,
    /// The figure's title.
    pub title: String,
    /// The x axis label, with units.
    pub x_label: String,
    /// The left y axis label, with units.
    pub y_label: String,
    /// The right y axis label, with units.
    #[serde(default)]
    pub y2_label: Option<String>,
    /// Logarithmic x axis.
    #[serde(default)]
    pub log_x: bool,
    /// Logarithmic left y axis.
    #[serde(default)]
    pub log_y: bool,
    /// Logarithmic right y axis.
    #[serde(default)]
    pub log_y2: bool,
    /// How series are drawn.
    #[serde(default = "default_mark")]
    pub mark: MarkChoice,
    /// The file stem of the figure (`<file>.png`, `<file>.svg`).
    #[serde(default = "default_file")]
    pub file: String,
}

fn default_table() -> String {
    "metrics.parquet".to_owned()
}

fn default_file() -> String {
    "plot".to_owned()
}

fn default_mark() -> MarkChoice {
    MarkChoice::Line
}

impl TypedStage for LinePlot {
    type Params = LinePlotParams;
    const NAME: &'static str = "line_plot";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "a chart of table columns of one or more stages (loss curves, fits, sweeps), PNG and SVG";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::many("runs", "stages whose tables to plot")];
        SLOTS
    }

    fn check(&self, p: &LinePlotParams) -> Result<(), ParamIssue> {
        if p.file.is_empty() || p.file.contains('/') || p.file.starts_with('.') {
            return Err(ParamIssue::at("file", "a plain file name without folders"));
        }
        if p.y2.is_some() != p.y2_label.is_some() {
            return Err(ParamIssue::at(
                "y2_label",
                "give `y2` and `y2_label` together",
            ));
        }
        if !p.keep.is_empty() && p.split_by.is_none() {
            return Err(ParamIssue::at("keep", "`keep` needs `split_by`"));
        }
        Ok(())
    }

    fn in_process(&self) -> bool {
        true
    }
}

/// Draws the chart: one series per input stage (and per value of `split_by`), PNG and SVG.
pub(crate) fn run(p: LinePlotParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    let left = axis(&p.x_label, p.log_x);
    let mut chart = Chart::new(&p.title, left, axis(&p.y_label, p.log_y));
    let mut right = Vec::new();
    let runs = ctx.inputs.many("runs");
    let labels = short_labels(runs);
    let single = runs.len() == 1;
    for (i, (up, run_label)) in runs.iter().zip(&labels).enumerate() {
        let table = read_table(up, &p.table)?;
        if i == 0
            && let Some(reference) = &p.reference
        {
            let pts = points(&table, &p.x, reference).map_err(|e| table_error(up, &e))?;
            chart.series.push(
                Series::line(&format!("{reference} (reference)"), pts)
                    .with_mark(Mark::Dashed)
                    .with_color(REFERENCE_SLOT),
            );
        }
        let style = Style::new(&p, single, i);
        for (k, (split, part)) in parts(&p, &table)
            .map_err(|e| table_error(up, &e))?
            .into_iter()
            .enumerate()
        {
            let label = |column: &str| {
                let mut words = Vec::new();
                if !single {
                    words.push(run_label.as_str());
                }
                if p.y2.is_some() || (single && split.is_none()) {
                    words.push(column);
                }
                if let Some(value) = &split {
                    words.push(value);
                }
                words.join(" ")
            };
            let pts = points(&part, &p.x, &p.y).map_err(|e| table_error(up, &e))?;
            chart.series.push(
                Series::line(&label(&p.y), pts)
                    .with_mark(style.left(k))
                    .with_color(style.left_slot),
            );
            if let Some(y2) = &p.y2 {
                let pts = points(&part, &p.x, y2).map_err(|e| table_error(up, &e))?;
                right.push(
                    Series::line(&label(y2), pts)
                        .with_mark(style.right(k))
                        .with_color(style.right_slot),
                );
            }
        }
    }
    if let Some(label) = &p.y2_label {
        chart = chart.with_y2(axis(label, p.log_y2), right);
    }
    render_chart(&chart, &ctx.out_dir.join(&p.file))
        .map_err(|e| StageError::environment("cannot draw the figure").caused_by(&e))?;
    Ok(())
}

/// Colours and marks of one input's series. A run keeps the same colour slot in every figure
/// (slot i for input i; the reference is grey). With a single input and a right-hand axis,
/// colour tells the two quantities apart instead; splits are solid (the first, e.g. train) and
/// dashed (the others), and with several inputs the right-hand quantity gets markers.
struct Style {
    mark: MarkChoice,
    left_slot: usize,
    right_slot: usize,
    right_markers: bool,
}

impl Style {
    fn new(p: &LinePlotParams, single: bool, run: usize) -> Self {
        let slot = if run >= REFERENCE_SLOT { run + 1 } else { run };
        let by_quantity = single && p.y2.is_some();
        Self {
            mark: p.mark,
            left_slot: slot,
            right_slot: if by_quantity { slot + 1 } else { slot },
            right_markers: !by_quantity,
        }
    }

    fn left(&self, part: usize) -> Mark {
        match (self.mark, part) {
            (MarkChoice::Points, _) => Mark::Points,
            (choice, 0) => mark(choice),
            (_, _) => Mark::Dashed,
        }
    }

    fn right(&self, part: usize) -> Mark {
        match (self.mark, part, self.right_markers) {
            (MarkChoice::Points, _, _) => Mark::Points,
            (_, 0, true) => Mark::LineAndPoints,
            (_, _, true) => Mark::Points,
            (choice, 0, false) => mark(choice),
            (_, _, false) => Mark::Dashed,
        }
    }
}

fn axis(label: &str, log: bool) -> Axis {
    if log {
        Axis::log(label)
    } else {
        Axis::linear(label)
    }
}

fn mark(choice: MarkChoice) -> Mark {
    match choice {
        MarkChoice::Points => Mark::Points,
        MarkChoice::LineAndPoints => Mark::LineAndPoints,
        MarkChoice::Line => Mark::Line,
    }
}

/// The palette slot of a reference curve (the ground truth): the grey one.
const REFERENCE_SLOT: usize = 7;

/// The parts of a table that become series, with the `split_by` value of each.
fn parts(
    p: &LinePlotParams,
    table: &pipeline_reports::Table,
) -> Result<Vec<(Option<String>, pipeline_reports::Table)>, pipeline_reports::TableError> {
    let Some(column) = &p.split_by else {
        return Ok(vec![(None, table.clone())]);
    };
    let mut out = Vec::new();
    for value in distinct(table, column)? {
        if p.keep.is_empty() || p.keep.contains(&value) {
            let part = table.filter_eq(column, &value)?;
            out.push((Some(value), part));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
