//! The figures the renderer can draw on any plotters backend, and the multi-panel layout.

use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters_backend::DrawingBackend;

use super::draw_chart::{DrawFailure, draw_chart, text};
use super::draw_heatmap::draw_heatmap;
use super::prepare::PreparedChart;
use super::prepare_heatmap::PreparedHeatmap;
use super::style::TITLE_SIZE;

/// Something that draws itself onto a drawing area of any backend.
pub(crate) trait Figure {
    /// Draws the figure filling `area` (already cleared to white).
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure>;
}

impl Figure for PreparedChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        draw_chart(area, self)
    }
}

impl Figure for PreparedHeatmap {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        draw_heatmap(area, self)
    }
}

/// Several charts in a grid under one title.
pub(crate) struct Panels {
    pub(crate) title: String,
    pub(crate) charts: Vec<PreparedChart>,
}

/// The grid `(rows, columns)` for `n` panels: side by side for 2 and 3, then a near-square
/// grid filled row by row.
pub(crate) fn panel_grid(n: usize) -> (usize, usize) {
    let columns = match n {
        0..=3 => n.max(1),
        _ => (1..=n).find(|c| c * c >= n).unwrap_or(n),
    };
    (n.div_ceil(columns), columns)
}

impl Figure for Panels {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        let body = area
            .margin(10, 0, 0, 0)
            .titled(&self.title, text(TITLE_SIZE + 4))?;
        let cells = body.split_evenly(panel_grid(self.charts.len()));
        for (chart, cell) in self.charts.iter().zip(&cells) {
            draw_chart(cell, chart)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_grids() {
        assert_eq!(panel_grid(1), (1, 1));
        assert_eq!(panel_grid(2), (1, 2));
        assert_eq!(panel_grid(3), (1, 3));
        assert_eq!(panel_grid(4), (2, 2));
        assert_eq!(panel_grid(5), (2, 3));
        assert_eq!(panel_grid(10), (3, 4));
    }
}
