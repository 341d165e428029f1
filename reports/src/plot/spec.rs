//! The description of a figure: axes, series, charts and heatmaps, as plain data.

use serde::{Deserialize, Serialize};

/// How an axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scale {
    /// Equal distances for equal differences.
    Linear,
    /// Equal distances for equal ratios (base 10); only positive values can be shown.
    Log,
}

/// One axis: its label (with units), its scale and, optionally, a fixed range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The label, with units, e.g. `"cross-entropy loss (nats)"`.
    pub label: String,
    /// Linear or logarithmic.
    pub scale: Scale,
    /// A fixed `(low, high)` range; `None` takes the data's range plus a small margin.
    pub range: Option<(f64, f64)>,
}

impl Axis {
    /// A linear axis with a range taken from the data.
    pub fn linear(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            scale: Scale::Linear,
            range: None,
        }
    }

    /// A logarithmic axis with a range taken from the data.
    pub fn log(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            scale: Scale::Log,
            range: None,
        }
    }

    /// The same axis with a fixed range.
    pub fn with_range(mut self, low: f64, high: f64) -> Self {
        self.range = Some((low, high));
        self
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mark {
    /// A solid line through the points in order.
    Line,
    /// A dashed line through the points in order.
    Dashed,
    /// A marker at each point, no line (a scatter plot).
    Points,
    /// A solid line with markers.
    LineAndPoints,
}

/// A named list of `(x, y)` points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The legend label.
    pub label: String,
    /// The points, in drawing order for lines.
    pub points: Vec<(f64, f64)>,
    /// How the points are drawn.
    pub mark: Mark,
    /// The palette slot to colour it with; series that share a slot share a colour (a run's
    /// train and test curves, say). `None`: the series' position in the chart.
    #[serde(default)]
    pub color: Option<usize>,
    /// Text written beside each point (a loss value at each point of a trajectory, say): empty
    /// for no labels, else one entry per point, in the order of `points`; an empty entry leaves
    /// its point unlabelled.
    #[serde(default)]
    pub labels: Vec<String>,
}

impl Series {
    /// A series drawn as a solid line.
    pub fn line(label: &str, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.to_owned(),
            points,
            mark: Mark::Line,
            color: None,
            labels: Vec::new(),
        }
    }

    /// A series drawn as markers only (for scatter plots).
    pub fn points(label: &str, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.to_owned(),
            points,
            mark: Mark::Points,
            color: None,
            labels: Vec::new(),
        }
    }

    /// The same series with another mark.
    pub fn with_mark(mut self, mark: Mark) -> Self {
        self.mark = mark;
        self
    }

    /// The same series coloured from palette slot `slot`.
    pub fn with_color(mut self, slot: usize) -> Self {
        self.color = Some(slot);
        self
    }

    /// The same series with a text label beside each point (see [`Series::labels`]).
    pub fn with_labels(mut self, labels: Vec<String>) -> Self {
        self.labels = labels;
        self
    }
}

/// A two-dimensional chart: line plots and scatter plots, optionally with a second y axis on the
/// right (accuracy next to a log-scale loss, say).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// The title above the chart.
    pub title: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The left vertical axis.
    pub y: Axis,
    /// The series drawn against `x` and `y`.
    pub series: Vec<Series>,
    /// A right-hand vertical axis and the series drawn against it; their legend labels get a
    /// "(right axis)" suffix.
    pub y2: Option<(Axis, Vec<Series>)>,
}

impl Chart {
    /// A chart with no series yet.
    pub fn new(title: &str, x: Axis, y: Axis) -> Self {
        Self {
            title: title.to_owned(),
            x,
            y,
            series: Vec::new(),
            y2: None,
        }
    }

    /// The same chart with one more series on the left axis.
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// The same chart with a right-hand axis and its series.
    pub fn with_y2(mut self, axis: Axis, series: Vec<Series>) -> Self {
        self.y2 = Some((axis, series));
        self
    }
}

/// Values on a grid, drawn as coloured cells with a colour bar (a loss surface, say).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heatmap {
    /// The title above the map.
    pub title: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis.
    pub y: Axis,
    /// The cell centres along x, strictly increasing.
    pub xs: Vec<f64>,
    /// The cell centres along y, strictly increasing.
    pub ys: Vec<f64>,
    /// The values, one row per y: `values[iy][ix]`. Non-finite values are drawn as missing.
    pub values: Vec<Vec<f64>>,
    /// The label of the colour bar, with units.
    pub value_label: String,
    /// Colour by the logarithm of the values; non-positive values are drawn as missing.
    pub log_values: bool,
}
