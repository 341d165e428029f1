//! Turning a [`Heatmap`] into coloured cells, checked axes and a colour-bar range.
//!
//! The grid must be rectangular with strictly increasing, finite cell centres (an error
//! otherwise, since no sensible picture exists). Cell edges lie halfway between centres, in the
//! axis' transformed space. Non-finite values, and non-positive ones when colouring by the
//! logarithm, are drawn as missing (grey) with one warning. A log axis with a non-positive
//! centre becomes linear, and the title says so.

use plotters::style::RGBColor;

use super::axis_scale::AxisScale;
use super::clip::Bounds;
use super::prepare::{PreparedAxis, resolve, titled, transform};
use super::spec::{Axis, Heatmap, Scale};
use super::style::{MISSING, color_map};

/// One grid cell: its rectangle in transformed space and its colour.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub(crate) x: (f64, f64),
    pub(crate) y: (f64, f64),
    pub(crate) color: RGBColor,
}

/// A heatmap ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreparedHeatmap {
    pub(crate) title: String,
    pub(crate) x: PreparedAxis,
    pub(crate) y: PreparedAxis,
    pub(crate) cells: Vec<Cell>,
    /// The colour bar's axis: the value range (transformed when colouring by the logarithm).
    pub(crate) values: PreparedAxis,
    /// Whether some cells have no usable value (drawn grey).
    pub(crate) has_missing: bool,
}

/// Prepares `map`; fails with a message when the grid is ragged, empty or unordered, or a
/// fixed range is invalid.
pub(crate) fn prepare_heatmap(map: &Heatmap) -> Result<PreparedHeatmap, String> {
    check_grid(map)?;
    let mut notes = Vec::new();
    let x_log = grid_log(&map.x, &map.xs, &mut notes);
    let y_log = grid_log(&map.y, &map.ys, &mut notes);
    let x_edges = edges(&map.xs, x_log);
    let y_edges = edges(&map.ys, y_log);
    let x = grid_axis(&map.x, x_log, &x_edges)?;
    let y = grid_axis(&map.y, y_log, &y_edges)?;
    let levels = color_levels(map);
    let has_missing = levels.iter().flatten().any(Option::is_none);
    let values = value_axis(map, &levels)?;
    let bounds = Bounds {
        x: (x.scale.lo(), x.scale.hi()),
        y: (y.scale.lo(), y.scale.hi()),
    };
    let cells = cells(&levels, &x_edges, &y_edges, values.scale, bounds);
    Ok(PreparedHeatmap {
        title: titled(&map.title, &notes),
        x,
        y,
        cells,
        values,
        has_missing,
    })
}

fn check_grid(map: &Heatmap) -> Result<(), String> {
    for (name, centres) in [("xs", &map.xs), ("ys", &map.ys)] {
        if centres.is_empty() {
            return Err(format!("heatmap {name} is empty"));
        }
        let increasing = centres.windows(2).all(|w| w[0] < w[1]);
        if !increasing || centres.iter().any(|v| !v.is_finite()) {
            return Err(format!(
                "heatmap {name} must be finite and strictly increasing"
            ));
        }
    }
    if map.values.len() != map.ys.len() {
        let (rows, ys) = (map.values.len(), map.ys.len());
        return Err(format!("heatmap has {rows} rows of values for {ys} ys"));
    }
    match map.values.iter().position(|row| row.len() != map.xs.len()) {
        Some(iy) => Err(format!(
            "heatmap row {iy} has {} values for {} xs",
            map.values[iy].len(),
            map.xs.len()
        )),
        None => Ok(()),
    }
}

/// Whether a grid axis stays logarithmic: only if every centre is positive.
fn grid_log(axis: &Axis, centres: &[f64], notes: &mut Vec<String>) -> bool {
    if axis.scale != Scale::Log || centres.iter().all(|c| *c > 0.0) {
        return axis.scale == Scale::Log;
    }
    tracing::warn!(axis = %axis.label, "grid has non-positive values; drawing the axis linear");
    notes.push(format!("linear {}: non-positive grid values", axis.label));
    false
}

/// A grid axis: the fixed range if given, else exactly the outer cell edges (no margin, so the
/// cells fill the plot).
fn grid_axis(axis: &Axis, log: bool, edges: &[f64]) -> Result<PreparedAxis, String> {
    let (first, last) = (edges[0], edges[edges.len() - 1]);
    match (axis.range, AxisScale::new(first, last, log)) {
        (None, Some(scale)) => Ok(PreparedAxis {
            label: axis.label.clone(),
            scale,
        }),
        _ => resolve(axis, log, [first, last].into_iter()),
    }
}

/// The cell edges around `centres` (sorted, finite), in transformed space.
fn edges(centres: &[f64], log: bool) -> Vec<f64> {
    let t: Vec<f64> = centres.iter().map(|c| transform(*c, log)).collect();
    if let [only] = t.as_slice() {
        return vec![only - 0.5, only + 0.5];
    }
    let mids = t.windows(2).map(|w| (w[0] + w[1]) / 2.0);
    let first = t[0] - (t[1] - t[0]) / 2.0;
    let last = t[t.len() - 1] + (t[t.len() - 1] - t[t.len() - 2]) / 2.0;
    std::iter::once(first)
        .chain(mids)
        .chain(std::iter::once(last))
        .collect()
}

/// The values to colour by, `None` where missing, as `[iy][ix]`.
fn color_levels(map: &Heatmap) -> Vec<Vec<Option<f64>>> {
    let mut missing = 0usize;
    let levels = map
        .values
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| {
                    let usable = v.is_finite() && (!map.log_values || *v > 0.0);
                    missing += usize::from(!usable);
                    usable.then(|| transform(*v, map.log_values))
                })
                .collect()
        })
        .collect();
    if missing > 0 {
        tracing::warn!(heatmap = %map.title, missing, "cells without a usable value are drawn grey");
    }
    levels
}

fn value_axis(map: &Heatmap, levels: &[Vec<Option<f64>>]) -> Result<PreparedAxis, String> {
    let scale = if map.log_values {
        Scale::Log
    } else {
        Scale::Linear
    };
    let axis = Axis {
        label: map.value_label.clone(),
        scale,
        range: None,
    };
    let values = levels.iter().flatten().flatten().copied();
    let prepared = resolve(&axis, map.log_values, values)?;
    // No margin on a colour bar: its ends are the smallest and largest values.
    let (lo, hi) = levels
        .iter()
        .flatten()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let scale = AxisScale::new(lo, hi, map.log_values).unwrap_or(prepared.scale);
    Ok(PreparedAxis {
        label: prepared.label,
        scale,
    })
}

fn cells(
    levels: &[Vec<Option<f64>>],
    x_edges: &[f64],
    y_edges: &[f64],
    values: AxisScale,
    bounds: Bounds,
) -> Vec<Cell> {
    let mut out = Vec::new();
    for (iy, row) in levels.iter().enumerate() {
        for (ix, level) in row.iter().enumerate() {
            let color = level.map_or(MISSING, |v| color_map(values.fraction(v)));
            let x = clamp_span((x_edges[ix], x_edges[ix + 1]), bounds.x);
            let y = clamp_span((y_edges[iy], y_edges[iy + 1]), bounds.y);
            if let (Some(x), Some(y)) = (x, y) {
                out.push(Cell { x, y, color });
            }
        }
    }
    out
}

/// The part of `span` inside `limits`, if any.
fn clamp_span(span: (f64, f64), limits: (f64, f64)) -> Option<(f64, f64)> {
    let (lo, hi) = (span.0.max(limits.0), span.1.min(limits.1));
    (lo < hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn surface() -> Heatmap {
        Heatmap {
            title: "surface".into(),
            x: Axis::linear("alpha"),
            y: Axis::linear("beta"),
            xs: vec![0.0, 1.0, 2.0],
            ys: vec![0.0, 1.0],
            values: vec![vec![1.0, 2.0, f64::NAN], vec![4.0, 5.0, 6.0]],
            value_label: "loss".into(),
            log_values: false,
        }
    }

    #[test]
    fn cells_cover_the_grid_and_missing_values_are_grey() -> Result<(), String> {
        let prepared = prepare_heatmap(&surface())?;
        assert_eq!(prepared.cells.len(), 6);
        assert_eq!(prepared.cells[0].x, (-0.5, 0.5));
        assert_eq!(prepared.cells[2].color, MISSING);
        assert_eq!(
            (prepared.values.scale.lo(), prepared.values.scale.hi()),
            (1.0, 6.0)
        );
        Ok(())
    }

    #[test]
    fn ragged_or_unordered_grids_are_refused() {
        let mut ragged = surface();
        ragged.values[1].pop();
        assert_eq!(
            prepare_heatmap(&ragged).err().as_deref(),
            Some("heatmap row 1 has 2 values for 3 xs")
        );
        let mut unordered = surface();
        unordered.xs = vec![0.0, 2.0, 1.0];
        assert!(prepare_heatmap(&unordered).is_err());
    }

    #[test]
    fn log_values_skip_non_positive_cells() -> Result<(), String> {
        let mut map = surface();
        map.log_values = true;
        map.values[0][0] = 0.0;
        let prepared = prepare_heatmap(&map)?;
        assert_eq!(prepared.cells[0].color, MISSING);
        assert!(prepared.values.scale.is_log());
        Ok(())
    }

    #[test]
    fn log_grid_axes_need_positive_centres() -> Result<(), String> {
        let mut map = surface();
        map.y = Axis::log("batch size");
        map.ys = vec![64.0, 1024.0];
        map.x = Axis::log("learning rate");
        let prepared = prepare_heatmap(&map)?;
        assert_eq!(
            prepared.title,
            "surface [linear learning rate: non-positive grid values]"
        );
        assert_eq!(
            prepared.y.scale.lo(),
            64f64.log10() - (1024f64.log10() - 64f64.log10()) / 2.0
        );
        Ok(())
    }

    #[test]
    fn constant_values_still_give_a_colour_range() -> Result<(), String> {
        let mut map = surface();
        map.values = vec![vec![2.0; 3]; 2];
        let prepared = prepare_heatmap(&map)?;
        assert!(prepared.values.scale.lo() < prepared.values.scale.hi());
        Ok(())
    }
}
