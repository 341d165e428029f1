//! Drawing a prepared heatmap: the coloured grid on the left, a labelled colour bar on the right.

use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::{Rectangle, Text};
use plotters::style::{Color, RGBColor};
use plotters_backend::DrawingBackend;

use super::axis_scale::{AxisScale, LABELS};
use super::draw_chart::{DrawFailure, text};
use super::prepare_heatmap::PreparedHeatmap;
use super::style::{AXIS_LABEL_SIZE, TICK_MARK, TICK_SIZE, TITLE_SIZE, color_map};

/// The width of the colour-bar panel in pixels.
const COLOR_BAR_WIDTH: u32 = 160;
/// The number of bands the colour bar is drawn with.
const COLOR_BAR_BANDS: usize = 128;
/// Margin and label-area sizes shared by the grid and the bar, so their plot areas align.
const MARGIN: u32 = 16;
const X_LABEL_AREA: u32 = 56;

/// Draws `map` filling `area`.
pub(crate) fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    map: &PreparedHeatmap,
) -> Result<(), DrawFailure> {
    let body = area
        .margin(10, 0, 0, 0)
        .titled(&map.title, text(TITLE_SIZE))?;
    let width = body.dim_in_pixel().0;
    let (grid, bar) = body.split_horizontally(width.saturating_sub(COLOR_BAR_WIDTH));
    draw_grid(&grid, map)?;
    draw_color_bar(&bar, map)
}

fn draw_grid<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    map: &PreparedHeatmap,
) -> Result<(), DrawFailure> {
    let mut ctx = ChartBuilder::on(area)
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(84)
        .build_cartesian_2d(map.x.scale, map.y.scale)?;
    ctx.configure_mesh()
        .disable_mesh()
        .x_desc(map.x.label.as_str())
        .y_desc(map.y.label.as_str())
        .x_labels(LABELS)
        .y_labels(LABELS)
        .label_style(text(TICK_SIZE))
        .set_all_tick_mark_size(TICK_MARK)
        .axis_desc_style(text(AXIS_LABEL_SIZE))
        .draw()?;
    let cells = map
        .cells
        .iter()
        .map(|c| Rectangle::new([(c.x.0, c.y.0), (c.x.1, c.y.1)], c.color.filled()));
    ctx.draw_series(cells)?;
    Ok(())
}

fn draw_color_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    map: &PreparedHeatmap,
) -> Result<(), DrawFailure> {
    let values = map.values.scale;
    let unit = AxisScale::new(0.0, 1.0, false).ok_or_else(|| DrawFailure("unit range".into()))?;
    let mut ctx = ChartBuilder::on(area)
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(0)
        .right_y_label_area_size(100)
        .build_cartesian_2d(unit, values)?;
    let step = (values.hi() - values.lo()) / COLOR_BAR_BANDS as f64;
    let bands = (0..COLOR_BAR_BANDS).map(|i| {
        let lo = values.lo() + step * i as f64;
        let color = color_map((i as f64 + 0.5) / COLOR_BAR_BANDS as f64);
        Rectangle::new([(0.0, lo), (1.0, lo + step)], color.filled())
    });
    ctx.draw_series(bands)?;
    let frame = Rectangle::new(
        [(0.0, values.lo()), (1.0, values.hi())],
        RGBColor(90, 90, 90),
    );
    ctx.draw_series(std::iter::once(frame))?;
    // The axis goes on last: drawn first, its labels were partly covered by the bands.
    ctx.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(map.values.label.as_str())
        .y_labels(LABELS)
        .label_style(text(TICK_SIZE))
        .set_all_tick_mark_size(TICK_MARK)
        .axis_desc_style(text(AXIS_LABEL_SIZE))
        .draw()?;
    if map.has_missing {
        let (_, height) = area.dim_in_pixel();
        let at = (8, i32::try_from(height).unwrap_or(0) - 30);
        area.draw(&Text::new("grey: no value", at, text(TICK_SIZE)))?;
    }
    Ok(())
}
