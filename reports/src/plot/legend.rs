//! Where the legend goes and which entries it shows.
//!
//! The legend sits on a white box in a corner of the plotting area, or the middle of its top or
//! bottom edge: wherever it covers the fewest data points (lines are sampled along their
//! length). It shows at most [`MAX_LEGEND_ENTRIES`] entries; past that, the first ones and a
//! line counting the rest, since a 50-entry legend would cover the plot and is unreadable.

use plotters::chart::SeriesLabelPosition;

use super::prepare::PreparedChart;

/// The most entries a legend shows, the "more" line included.
pub const MAX_LEGEND_ENTRIES: usize = 12;

/// The legend's size as fractions of the plotting area, for `entries` lines.
fn legend_box(entries: usize) -> (f64, f64) {
    (0.34, (0.045 * entries as f64 + 0.03).min(0.9))
}

/// The places tried, in order of preference when they cover equally little data: the four
/// corners, then the middle of the top and bottom edges. Each is `(position, horizontal,
/// vertical)` with 0 = left/bottom, 1 = middle, 2 = right/top.
const PLACES: [(SeriesLabelPosition, u8, u8); 6] = [
    (SeriesLabelPosition::UpperRight, 2, 2),
    (SeriesLabelPosition::UpperLeft, 0, 2),
    (SeriesLabelPosition::LowerRight, 2, 0),
    (SeriesLabelPosition::LowerLeft, 0, 0),
    (SeriesLabelPosition::UpperMiddle, 1, 2),
    (SeriesLabelPosition::LowerMiddle, 1, 0),
];

/// How many series get their own legend entry, and how many are summed up in a last line.
pub(crate) fn legend_split(series: usize) -> (usize, usize) {
    if series <= MAX_LEGEND_ENTRIES {
        (series, 0)
    } else {
        (MAX_LEGEND_ENTRIES - 1, series - (MAX_LEGEND_ENTRIES - 1))
    }
}

/// The place whose legend box would hide the fewest data points.
pub(crate) fn legend_corner(chart: &PreparedChart, entries: usize) -> SeriesLabelPosition {
    let points = normalized_points(chart);
    let (w, h) = legend_box(entries);
    let inside = |v: f64, place: u8, size: f64| match place {
        0 => v <= size,
        1 => (v - 0.5).abs() <= size / 2.0,
        _ => v >= 1.0 - size,
    };
    let covered = |&(_, across, up): &(SeriesLabelPosition, u8, u8)| {
        points
            .iter()
            .filter(|(x, y)| inside(*x, across, w) && inside(*y, up, h))
            .count()
    };
    let best = PLACES.iter().min_by_key(|place| covered(place));
    best.map_or(SeriesLabelPosition::UpperRight, |(position, _, _)| {
        position.clone()
    })
}

/// Every marker and points sampled along every line, as fractions of the plotting area.
fn normalized_points(chart: &PreparedChart) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for series in &chart.series {
        let y = match (&chart.y2, series.secondary) {
            (Some(axis), true) => axis.scale,
            _ => chart.y.scale,
        };
        let place = |(px, py): (f64, f64)| (chart.x.scale.fraction(px), y.fraction(py));
        out.extend(series.markers.iter().copied().map(place));
        for line in &series.lines {
            out.extend(sample_line(line).into_iter().map(place));
        }
    }
    out
}

/// Points along a polyline: its vertices and a few between each pair.
fn sample_line(line: &[(f64, f64)]) -> Vec<(f64, f64)> {
    const STEPS: usize = 8;
    let mut out: Vec<(f64, f64)> = line.first().copied().into_iter().collect();
    for pair in line.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        for i in 1..=STEPS {
            let t = i as f64 / STEPS as f64;
            out.push((x0 + t * (x1 - x0), y0 + t * (y1 - y0)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::prepare::prepare_chart;
    use crate::plot::spec::{Axis, Chart, Series};

    #[test]
    fn legend_avoids_the_data() -> Result<(), String> {
        // A falling curve passes through the upper left and lower right corners, a short line
        // sits in the lower left: the upper right is free.
        let points = (0..50)
            .map(|i| (f64::from(i), 50.0 - f64::from(i)))
            .collect();
        let chart = Chart::new("t", Axis::linear("x"), Axis::linear("y"))
            .with_series(Series::line("a", points))
            .with_series(Series::line("b", vec![(0.0, 0.0), (10.0, 1.0)]));
        let prepared = prepare_chart(&chart)?;
        assert_eq!(legend_corner(&prepared, 2), SeriesLabelPosition::UpperRight);
        Ok(())
    }

    #[test]
    fn legend_moves_away_from_a_rising_curve() -> Result<(), String> {
        let points = (0..50).map(|i| (f64::from(i), f64::from(i))).collect();
        let chart = Chart::new("t", Axis::linear("x"), Axis::linear("y"))
            .with_series(Series::line("a", points))
            .with_series(Series::line("b", vec![(0.0, 0.0), (49.0, 0.0)]));
        let prepared = prepare_chart(&chart)?;
        assert_eq!(legend_corner(&prepared, 2), SeriesLabelPosition::UpperLeft);
        Ok(())
    }

    #[test]
    fn long_legends_are_truncated_with_a_count() {
        assert_eq!(legend_split(3), (3, 0));
        assert_eq!(legend_split(12), (12, 0));
        assert_eq!(legend_split(50), (11, 39));
    }
}
