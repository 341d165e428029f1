//! Turning a [`Chart`] into what is drawn: clean points in transformed space, resolved ranges.
//!
//! This is where bad data is handled, so that drawing never sees it: non-finite points are
//! skipped and non-positive values on a log axis dropped (each with one warning per series,
//! and a line is broken where points were removed rather than joined across the gap); a log
//! axis whose data has no positive value at all becomes linear, and the title says so; ranges
//! come from the data with a margin, widened when all values are equal; lines are clipped to
//! fixed ranges.

use super::axis_scale::AxisScale;
use super::clip::{Bounds, clip_polyline};
use super::spec::{Axis, Chart, Mark, Scale, Series};

/// The margin added on each side of a range taken from the data, as a fraction of its span.
const MARGIN: f64 = 0.05;

/// Consecutive line points closer than this fraction of both axes' spans are merged (see
/// [`thin`]).
const THIN: f64 = 1.0 / 250.0;

/// The width of a chart's plotting area over its height, about (see [`split_sharp_turns`]).
const PLOT_ASPECT: f64 = 1.6;

/// A line turning by more than this (a cosine: 120°) is drawn as two lines (see
/// [`split_sharp_turns`]).
const SHARP_TURN: f64 = -0.5;

/// A resolved axis: its label and coordinate range.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreparedAxis {
    pub(crate) label: String,
    pub(crate) scale: AxisScale,
}

/// A series ready to draw: transformed, cleaned and clipped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreparedSeries {
    /// The legend label.
    pub(crate) label: String,
    /// How the series is drawn.
    pub(crate) mark: Mark,
    /// The series' position in the chart, which picks its colour and marker.
    pub(crate) style: usize,
    /// Drawn against the right-hand axis.
    pub(crate) secondary: bool,
    /// The pieces of line to draw (empty for [`Mark::Points`]).
    pub(crate) lines: Vec<Vec<(f64, f64)>>,
    /// The points to mark (empty for lines without markers).
    pub(crate) markers: Vec<(f64, f64)>,
    /// Text to write beside points, with the point (transformed, inside the box).
    pub(crate) labels: Vec<((f64, f64), String)>,
}

/// A chart ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreparedChart {
    /// The title, with a note when a log axis had to become linear.
    pub(crate) title: String,
    pub(crate) x: PreparedAxis,
    pub(crate) y: PreparedAxis,
    pub(crate) y2: Option<PreparedAxis>,
    /// Left-axis series first, then right-axis series.
    pub(crate) series: Vec<PreparedSeries>,
}

impl PreparedChart {
    /// Whether anything at all is left to draw.
    pub(crate) fn has_data(&self) -> bool {
        self.series
            .iter()
            .any(|s| !s.lines.is_empty() || !s.markers.is_empty())
    }
}

/// Prepares `chart`; fails with a message naming the axis when a fixed range is invalid, or
/// the series whose labels do not match its points.
pub(crate) fn prepare_chart(chart: &Chart) -> Result<PreparedChart, String> {
    let right: &[Series] = chart.y2.as_ref().map_or(&[], |(_, s)| s.as_slice());
    let all = || chart.series.iter().chain(right);
    check_labels(all())?;
    let mut notes = Vec::new();
    let x_log = use_log(&chart.x, all().flat_map(xs), &mut notes);
    let y_log = use_log(&chart.y, chart.series.iter().flat_map(ys), &mut notes);
    let y2_log = chart
        .y2
        .as_ref()
        .is_some_and(|(axis, _)| use_log(axis, right.iter().flat_map(ys), &mut notes));
    let runs: Vec<CleanSeries> = chart
        .series
        .iter()
        .map(|s| clean(s, (x_log, y_log), &chart.title))
        .chain(
            right
                .iter()
                .map(|s| clean(s, (x_log, y2_log), &chart.title)),
        )
        .collect();
    let (left_runs, right_runs) = runs.split_at(chart.series.len());
    let x = resolve(&chart.x, x_log, runs.iter().flat_map(|r| r.values(0)))?;
    let y = resolve(&chart.y, y_log, left_runs.iter().flat_map(|r| r.values(1)))?;
    let y2 = match &chart.y2 {
        Some((axis, _)) => Some(resolve(
            axis,
            y2_log,
            right_runs.iter().flat_map(|r| r.values(1)),
        )?),
        None => None,
    };
    let series = finish_series(chart, &runs, &x, &y, y2.as_ref());
    let title = titled(&chart.title, &notes);
    Ok(PreparedChart {
        title,
        x,
        y,
        y2,
        series,
    })
}

/// Every series' labels are absent or one per point.
fn check_labels<'a>(series: impl Iterator<Item = &'a Series>) -> Result<(), String> {
    for s in series {
        if !s.labels.is_empty() && s.labels.len() != s.points.len() {
            return Err(format!(
                "series `{}` has {} labels for {} points",
                s.label,
                s.labels.len(),
                s.points.len()
            ));
        }
    }
    Ok(())
}

fn xs(series: &Series) -> impl Iterator<Item = f64> + '_ {
    series.points.iter().map(|p| p.0)
}

fn ys(series: &Series) -> impl Iterator<Item = f64> + '_ {
    series.points.iter().map(|p| p.1)
}

/// The title with notes appended in brackets.
pub(crate) fn titled(title: &str, notes: &[String]) -> String {
    if notes.is_empty() {
        title.to_owned()
    } else {
        format!("{title} [{}]", notes.join("; "))
    }
}

/// Whether a log axis can stay logarithmic: it can unless its data has finite values but none
/// positive; then it becomes linear, with a note and a warning.
pub(crate) fn use_log(
    axis: &Axis,
    values: impl Iterator<Item = f64>,
    notes: &mut Vec<String>,
) -> bool {
    if axis.scale != Scale::Log || axis.range.is_some() {
        return axis.scale == Scale::Log;
    }
    let finite: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    if finite.is_empty() || finite.iter().any(|v| *v > 0.0) {
        return true;
    }
    tracing::warn!(axis = %axis.label, "no positive values for a log axis; drawing it linear");
    notes.push(format!("linear {}: no positive values", axis.label));
    false
}

/// A series after dropping unusable points: runs of consecutive kept points, transformed,
/// and the kept points that carry a label.
struct CleanSeries {
    runs: Vec<Vec<(f64, f64)>>,
    labels: Vec<((f64, f64), String)>,
}

impl CleanSeries {
    /// All kept x (`coordinate` 0) or y (1) values.
    fn values(&self, coordinate: usize) -> impl Iterator<Item = f64> + '_ {
        self.runs
            .iter()
            .flatten()
            .map(move |p| if coordinate == 0 { p.0 } else { p.1 })
    }
}

fn clean(series: &Series, (x_log, y_log): (bool, bool), chart: &str) -> CleanSeries {
    let (mut non_finite, mut non_positive) = (0usize, 0usize);
    let mut runs = vec![Vec::new()];
    let mut labels = Vec::new();
    for (i, &(x, y)) in series.points.iter().enumerate() {
        let dropped = if !(x.is_finite() && y.is_finite()) {
            non_finite += 1;
            true
        } else if (x_log && x <= 0.0) || (y_log && y <= 0.0) {
            non_positive += 1;
            true
        } else {
            false
        };
        let at = (transform(x, x_log), transform(y, y_log));
        match series.labels.get(i) {
            Some(text) if !dropped && !text.is_empty() => labels.push((at, text.clone())),
            _ => {}
        }
        match runs.last_mut() {
            Some(run) if !dropped => run.push(at),
            Some(run) if !run.is_empty() => runs.push(Vec::new()),
            _ => {}
        }
    }
    runs.retain(|r| !r.is_empty());
    if non_finite > 0 {
        tracing::warn!(chart, series = %series.label, skipped = non_finite, "skipped non-finite points");
    }
    if non_positive > 0 {
        tracing::warn!(chart, series = %series.label, dropped = non_positive, "dropped non-positive values on a log axis");
    }
    CleanSeries { runs, labels }
}

/// A value in the axis' transformed space.
pub(crate) fn transform(value: f64, log: bool) -> f64 {
    if log { value.log10() } else { value }
}

/// The axis range: the fixed one if given (checked), else the data's with a margin.
pub(crate) fn resolve(
    axis: &Axis,
    log: bool,
    values: impl Iterator<Item = f64>,
) -> Result<PreparedAxis, String> {
    let scale = match axis.range {
        Some(range) => fixed_scale(axis, log, range)?,
        None => data_scale(log, values).ok_or_else(|| {
            format!(
                "axis `{}`: the data's values are too large to draw",
                axis.label
            )
        })?,
    };
    Ok(PreparedAxis {
        label: axis.label.clone(),
        scale,
    })
}

fn fixed_scale(axis: &Axis, log: bool, (lo, hi): (f64, f64)) -> Result<AxisScale, String> {
    let problem = if !(lo.is_finite() && hi.is_finite()) {
        Some("is not finite")
    } else if lo >= hi {
        Some("is empty or reversed")
    } else if log && lo <= 0.0 {
        Some("must be positive on a log axis")
    } else {
        None
    };
    let scale = AxisScale::new(transform(lo, log), transform(hi, log), log);
    match (problem, scale) {
        (None, Some(scale)) => Ok(scale),
        (problem, _) => Err(format!(
            "axis `{}`: fixed range ({lo}, {hi}) {}",
            axis.label,
            problem.unwrap_or("cannot be drawn")
        )),
    }
}

/// The range of `values` (transformed) with a margin; `(0, 1)` without values.
fn data_scale(log: bool, values: impl Iterator<Item = f64>) -> Option<AxisScale> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo > hi { (0.0, 1.0) } else { widen(lo, hi) };
    let margin = (hi - lo) * MARGIN;
    AxisScale::new(lo - margin, hi + margin, log).or_else(|| AxisScale::new(lo, hi, log))
}

/// A non-empty range around `lo..=hi`: unchanged unless all values are equal.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        return (lo, hi);
    }
    let half = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
    (lo - half, hi + half)
}

fn finish_series(
    chart: &Chart,
    runs: &[CleanSeries],
    x: &PreparedAxis,
    y: &PreparedAxis,
    y2: Option<&PreparedAxis>,
) -> Vec<PreparedSeries> {
    let right: &[Series] = chart.y2.as_ref().map_or(&[], |(_, s)| s.as_slice());
    let specs = chart
        .series
        .iter()
        .map(|s| (s, false))
        .chain(right.iter().map(|s| (s, true)));
    specs
        .zip(runs)
        .enumerate()
        .map(|(style, ((spec, secondary), clean))| {
            let y_axis = if secondary { y2.unwrap_or(y) } else { y };
            let bounds = Bounds {
                x: (x.scale.lo(), x.scale.hi()),
                y: (y_axis.scale.lo(), y_axis.scale.hi()),
            };
            let label = if secondary {
                format!("{} (right axis)", spec.label)
            } else {
                spec.label.clone()
            };
            place(
                label,
                spec.mark,
                spec.color.unwrap_or(style),
                secondary,
                clean,
                bounds,
            )
        })
        .collect()
}

fn place(
    label: String,
    mark: Mark,
    style: usize,
    secondary: bool,
    clean: &CleanSeries,
    bounds: Bounds,
) -> PreparedSeries {
    let has_line = mark != Mark::Points;
    let has_markers = matches!(mark, Mark::Points | Mark::LineAndPoints);
    let lines = if has_line {
        clean
            .runs
            .iter()
            .flat_map(|run| clip_polyline(run, bounds))
            .flat_map(|line| split_sharp_turns(thin(&line, bounds), bounds))
            .collect()
    } else {
        Vec::new()
    };
    let markers = if has_markers {
        clean
            .runs
            .iter()
            .flatten()
            .copied()
            .filter(|p| bounds.contains(*p))
            .collect()
    } else {
        Vec::new()
    };
    let labels = clean
        .labels
        .iter()
        .filter(|(at, _)| bounds.contains(*at))
        .cloned()
        .collect();
    PreparedSeries {
        label,
        mark,
        style,
        secondary,
        lines,
        markers,
        labels,
    }
}

/// The polyline without the points that lie within [`THIN`] of both axes' spans of the last
/// point kept (the last point always stays). At the figures' sizes such points fall on the
/// same pixel or its neighbour, where they change nothing visible but make plotters' wide
/// lines fail: two consecutive points on one pixel give its line-joining code a zero-length
/// segment, whose direction is NaN, and a spike from the point to the image's edge. Noisy
/// series of thousands of points (a loss at every training step) have many such pairs.
fn thin(line: &[(f64, f64)], bounds: Bounds) -> Vec<(f64, f64)> {
    let (tx, ty) = (
        (bounds.x.1 - bounds.x.0) * THIN,
        (bounds.y.1 - bounds.y.0) * THIN,
    );
    let mut kept: Vec<(f64, f64)> = Vec::with_capacity(line.len());
    for (i, &p) in line.iter().enumerate() {
        let near = kept
            .last()
            .is_some_and(|q| (p.0 - q.0).abs() < tx && (p.1 - q.1).abs() < ty);
        if !near {
            kept.push(p);
        } else if i + 1 == line.len() && kept.len() > 1 {
            let end = kept.len() - 1;
            kept[end] = p;
        }
    }
    kept
}

/// The polyline cut into pieces wherever it turns back by more than 120° (in the plot's
/// proportions), each piece ending where the next begins. plotters draws a wide line as one
/// polygon whose corners are the intersections of the edges of neighbouring segments; at a
/// turn of nearly 180° (a noisy series going up and down from one point to the next) those
/// intersections lie far away and the line grows spikes across the figure. Pieces have no
/// such corners.
fn split_sharp_turns(line: Vec<(f64, f64)>, bounds: Bounds) -> Vec<Vec<(f64, f64)>> {
    let (sx, sy) = (
        bounds.x.1 - bounds.x.0,
        (bounds.y.1 - bounds.y.0) * PLOT_ASPECT,
    );
    let direction = |a: (f64, f64), b: (f64, f64)| ((b.0 - a.0) / sx, (b.1 - a.1) / sy);
    let mut pieces = Vec::new();
    let mut piece: Vec<(f64, f64)> = Vec::new();
    for (i, &p) in line.iter().enumerate() {
        piece.push(p);
        let (Some(&before), Some(&after)) =
            (i.checked_sub(1).and_then(|j| line.get(j)), line.get(i + 1))
        else {
            continue;
        };
        let (u, v) = (direction(before, p), direction(p, after));
        let lengths = (u.0.hypot(u.1) * v.0.hypot(v.1)).max(f64::MIN_POSITIVE);
        if (u.0 * v.0 + u.1 * v.1) / lengths < SHARP_TURN {
            pieces.push(std::mem::replace(&mut piece, vec![p]));
        }
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_turns_back_is_cut_at_the_turn() {
        let bounds = Bounds {
            x: (0.0, 10.0),
            y: (0.0, 10.0),
        };
        let zigzag = vec![(0.0, 0.0), (1.0, 8.0), (2.0, 0.0), (3.0, 1.0), (4.0, 2.0)];
        let pieces = split_sharp_turns(zigzag, bounds);
        assert_eq!(
            pieces,
            [
                vec![(0.0, 0.0), (1.0, 8.0)],
                // A turn of about 110° at (2, 0) in the plot's proportions: kept whole.
                vec![(1.0, 8.0), (2.0, 0.0), (3.0, 1.0), (4.0, 2.0)]
            ]
        );
        let gentle = vec![(0.0, 0.0), (1.0, 1.0), (2.0, 1.5)];
        assert_eq!(split_sharp_turns(gentle.clone(), bounds), [gentle]);
    }

    #[test]
    fn points_on_one_pixel_are_merged_and_the_ends_kept() {
        let bounds = Bounds {
            x: (0.0, 1000.0),
            y: (0.0, 1000.0),
        };
        let line = [
            (0.0, 0.0),
            (1.0, 1.0),
            (2.0, 500.0),
            (2.5, 500.5),
            (3.0, 501.0),
        ];
        assert_eq!(thin(&line, bounds), [(0.0, 0.0), (3.0, 501.0)]);
        let far = [(0.0, 0.0), (10.0, 10.0), (20.0, 20.0)];
        assert_eq!(thin(&far, bounds), far);
        assert_eq!(thin(&[(0.0, 0.0), (1.0, 1.0)], bounds), [(0.0, 0.0)]);
    }

    fn loss_chart(points: Vec<(f64, f64)>) -> Chart {
        Chart::new("loss", Axis::linear("epoch"), Axis::log("loss"))
            .with_series(Series::line("a", points))
    }

    #[test]
    fn non_positive_values_on_a_log_axis_are_dropped_and_break_the_line() -> Result<(), String> {
        let chart = loss_chart(vec![(0.0, 1.0), (1.0, 0.0), (2.0, 0.1), (3.0, 0.01)]);
        let prepared = prepare_chart(&chart)?;
        assert_eq!(prepared.series[0].lines.len(), 2);
        assert_eq!(prepared.series[0].lines[1], vec![(2.0, -1.0), (3.0, -2.0)]);
        assert!(prepared.y.scale.is_log());
        Ok(())
    }

    #[test]
    fn log_axis_without_positive_values_becomes_linear_with_a_note() -> Result<(), String> {
        let prepared = prepare_chart(&loss_chart(vec![(0.0, 0.0), (1.0, -1.0)]))?;
        assert!(!prepared.y.scale.is_log());
        assert_eq!(prepared.title, "loss [linear loss: no positive values]");
        assert!(prepared.has_data());
        Ok(())
    }

    #[test]
    fn equal_values_get_a_non_empty_range() -> Result<(), String> {
        let prepared = prepare_chart(&loss_chart(vec![(1.0, 0.5), (1.0, 0.5)]))?;
        assert!(prepared.x.scale.lo() < 1.0 && prepared.x.scale.hi() > 1.0);
        Ok(())
    }

    #[test]
    fn non_finite_points_are_skipped() -> Result<(), String> {
        let chart = loss_chart(vec![
            (f64::NAN, 1.0),
            (1.0, f64::INFINITY),
            (2.0, 1.0),
            (3.0, 10.0),
        ]);
        let prepared = prepare_chart(&chart)?;
        assert_eq!(prepared.series[0].lines, vec![vec![(2.0, 0.0), (3.0, 1.0)]]);
        Ok(())
    }

    #[test]
    fn invalid_fixed_ranges_name_the_axis() {
        let mut chart = loss_chart(vec![(1.0, 1.0)]);
        chart.y.range = Some((0.0, 1.0));
        let err = prepare_chart(&chart).err().unwrap_or_default();
        assert_eq!(
            err,
            "axis `loss`: fixed range (0, 1) must be positive on a log axis"
        );
        chart.y.range = Some((f64::NAN, 1.0));
        assert!(prepare_chart(&chart).is_err());
    }

    #[test]
    fn labels_follow_their_points_and_must_match_them() -> Result<(), String> {
        let series = Series::line("a", vec![(0.0, 1.0), (1.0, 0.0), (2.0, 0.1)]).with_labels(vec![
            "one".into(),
            "dropped".into(),
            String::new(),
        ]);
        let chart =
            Chart::new("loss", Axis::linear("epoch"), Axis::log("loss")).with_series(series);
        let prepared = prepare_chart(&chart)?;
        assert_eq!(
            prepared.series[0].labels,
            vec![((0.0, 0.0), "one".to_owned())]
        );
        let mut bad = chart;
        bad.series[0].labels.pop();
        let err = prepare_chart(&bad).err().unwrap_or_default();
        assert_eq!(err, "series `a` has 2 labels for 3 points");
        Ok(())
    }

    #[test]
    fn no_points_at_all_still_gives_axes() -> Result<(), String> {
        let prepared = prepare_chart(&loss_chart(Vec::new()))?;
        assert!(!prepared.has_data());
        assert_eq!(
            (prepared.x.scale.lo() < 0.0, prepared.x.scale.hi() > 1.0),
            (true, true)
        );
        Ok(())
    }
}
