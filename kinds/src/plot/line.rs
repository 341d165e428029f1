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
//! Further options draw trajectories and multi-panel figures: `order: table` joins points in
//! the table's row order instead of by increasing x (a path through the plane of two principal
//! components), `color_by: split` gives every `split_by` value a colour of its own (one
//! trajectory per run in one table), `annotate` writes a column's value beside each point, and
//! `panels` adds panels of further y columns against the same x, side by side in one figure:
//!
//! ```yaml
//! steps_plot:
//!   kind: line_plot
//!   inputs: {runs: steps_sinc}
//!   params:
//!     table: steps.parquet
//!     x: step
//!     y: loss
//!     log_y: true
//!     panels:
//!       - {y: grad_norm, y_label: gradient norm (log scale), log_y: true}
//!     title: loss and gradient norm per iteration
//!     x_label: iteration
//!     y_label: loss (log scale)
//!     file: steps
//! ```
//!
//! Outputs: `<file>.png` and `<file>.svg`. The kind needs no libtorch: it is declared and run
//! from this crate, inside the engine's process.

use pipeline_engine::stage::{
    InputSlot, ParamIssue, StageContext, StageError, TypedStage, UpstreamOutput, short_labels,
};
use pipeline_reports::{Axis, Chart, Mark, Series, Table, render_chart, render_panels};
use serde::{Deserialize, Serialize};

use super::series::{Order, distinct, labelled_points, points, read_table, table_error};

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

/// Which series share a colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColorBy {
    /// One colour per input stage; the `split_by` values of one input are told apart by
    /// dashes (train solid, test dashed).
    #[default]
    Input,
    /// One colour per series: every `split_by` value of every input gets its own (runs of a
    /// sweep gathered into one table).
    Split,
}

/// One more panel of a multi-panel figure: another column against the same x.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelSpec {
    /// The column on the panel's y axis.
    pub y: String,
    /// The panel's y axis label, with units; also the panel's title.
    pub y_label: String,
    /// Logarithmic y axis.
    #[serde(default)]
    pub log_y: bool,
}

/// Parameters of `line_plot`. The options added after the first release (`order`, `color_by`,
/// `annotate`, `panels`) are left out of the canonical form while they have their default
/// values, so that adding them kept the cache keys of existing plots.
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
    /// In which order a line joins its points: by increasing x, or as the table's rows come.
    #[serde(default, skip_serializing_if = "is_default")]
    pub order: Order,
    /// Which series share a colour.
    #[serde(default, skip_serializing_if = "is_default")]
    pub color_by: ColorBy,
    /// A column whose value is written beside each point (numbers with 3 significant digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotate: Option<String>,
    /// Further panels: other columns against the same x, in one figure under `title`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub panels: Vec<PanelSpec>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
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
        if p.color_by == ColorBy::Split && p.split_by.is_none() {
            return Err(ParamIssue::at(
                "color_by",
                "`color_by: split` needs `split_by`",
            ));
        }
        if !p.panels.is_empty() && (p.y2.is_some() || p.reference.is_some()) {
            return Err(ParamIssue::at(
                "panels",
                "`panels` cannot be combined with `y2` or `reference`",
            ));
        }
        Ok(())
    }

    fn in_process(&self) -> bool {
        true
    }
}

/// Draws the chart (or the panels): one series per input stage (and per value of
/// `split_by`), PNG and SVG.
pub(crate) fn run(p: LinePlotParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    let runs = ctx.inputs.many("runs");
    let tables = runs
        .iter()
        .map(|up| read_table(up, &p.table))
        .collect::<Result<Vec<_>, _>>()?;
    let stem = ctx.out_dir.join(&p.file);
    let drawn = if p.panels.is_empty() {
        let main = Quantity {
            y: &p.y,
            label: &p.y_label,
            log: p.log_y,
            title: &p.title,
        };
        render_chart(&chart(&p, runs, &tables, &main)?, &stem)
    } else {
        let first = PanelSpec {
            y: p.y.clone(),
            y_label: p.y_label.clone(),
            log_y: p.log_y,
        };
        let charts = std::iter::once(&first)
            .chain(&p.panels)
            .map(|panel| {
                let quantity = Quantity {
                    y: &panel.y,
                    label: &panel.y_label,
                    log: panel.log_y,
                    title: &panel.y_label,
                };
                chart(&p, runs, &tables, &quantity)
            })
            .collect::<Result<Vec<_>, _>>()?;
        render_panels(&p.title, &charts, &stem)
    };
    drawn.map_err(|e| StageError::environment("cannot draw the figure").caused_by(&e))?;
    Ok(())
}

/// The y column of one chart, with its axis and title.
struct Quantity<'a> {
    y: &'a str,
    label: &'a str,
    log: bool,
    title: &'a str,
}

/// One chart of `quantity` against `p.x` over every input's table.
fn chart(
    p: &LinePlotParams,
    runs: &[UpstreamOutput],
    tables: &[Table],
    quantity: &Quantity<'_>,
) -> Result<Chart, StageError> {
    let mut chart = Chart::new(
        quantity.title,
        axis(&p.x_label, p.log_x),
        axis(quantity.label, quantity.log),
    );
    let mut right = Vec::new();
    let labels = short_labels(runs);
    let single = runs.len() == 1;
    let mut next_slot = 0;
    for (i, ((up, run_label), table)) in runs.iter().zip(&labels).zip(tables).enumerate() {
        if i == 0
            && let Some(reference) = &p.reference
        {
            let pts = points(table, &p.x, reference).map_err(|e| table_error(up, &e))?;
            chart.series.push(
                Series::line(&format!("{reference} (reference)"), pts)
                    .with_mark(Mark::Dashed)
                    .with_color(REFERENCE_SLOT),
            );
        }
        let style = Style::new(p, single, i);
        for (k, (split, part)) in parts(p, table)
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
            let series = |column: &str| {
                labelled_points(&part, &p.x, column, p.annotate.as_deref(), p.order)
                    .map_err(|e| table_error(up, &e))
            };
            let (pts, texts) = series(quantity.y)?;
            let (left_slot, right_slot) = match p.color_by {
                ColorBy::Input => (style.left_slot, style.right_slot),
                ColorBy::Split => {
                    next_slot += 1;
                    (palette_slot(next_slot - 1), palette_slot(next_slot - 1))
                }
            };
            chart.series.push(
                Series::line(&label(quantity.y), pts)
                    .with_mark(style.left(k, p.color_by))
                    .with_color(left_slot)
                    .with_labels(texts),
            );
            if let Some(y2) = &p.y2 {
                let (pts, texts) = series(y2)?;
                right.push(
                    Series::line(&label(y2), pts)
                        .with_mark(style.right(k, p.color_by))
                        .with_color(right_slot)
                        .with_labels(texts),
                );
            }
        }
    }
    if let Some(label) = &p.y2_label {
        chart = chart.with_y2(axis(label, p.log_y2), right);
    }
    Ok(chart)
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
        let slot = palette_slot(run);
        let by_quantity = single && p.y2.is_some();
        Self {
            mark: p.mark,
            left_slot: slot,
            right_slot: if by_quantity { slot + 1 } else { slot },
            right_markers: !by_quantity,
        }
    }

    /// The mark of the left-axis series of split `part`; with a colour per split, every
    /// split is drawn as the first.
    fn left(&self, part: usize, color_by: ColorBy) -> Mark {
        let part = if color_by == ColorBy::Split { 0 } else { part };
        match (self.mark, part) {
            (MarkChoice::Points, _) => Mark::Points,
            (choice, 0) => mark(choice),
            (_, _) => Mark::Dashed,
        }
    }

    fn right(&self, part: usize, color_by: ColorBy) -> Mark {
        let part = if color_by == ColorBy::Split { 0 } else { part };
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

/// The palette slot of the `n`-th run or series: the slots in order, skipping the grey one.
fn palette_slot(n: usize) -> usize {
    if n >= REFERENCE_SLOT { n + 1 } else { n }
}

/// The parts of a table that become series, with the `split_by` value of each.
fn parts(
    p: &LinePlotParams,
    table: &Table,
) -> Result<Vec<(Option<String>, Table)>, pipeline_reports::TableError> {
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
