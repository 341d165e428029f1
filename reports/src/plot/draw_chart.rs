//! Drawing a prepared chart onto a plotters drawing area of either backend.
//!
//! Every chart is built as a dual-coordinate chart, its right axis shown only when the chart
//! has one, so that left and right series go through the same code.

use plotters::chart::{ChartBuilder, DualCoordChartContext, SeriesAnno};
use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind};
use plotters::element::{
    DashedPathElement, Drawable, EmptyElement, PathElement, PointCollection, Text,
};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{BLACK, Color, IntoFont, RGBColor, TextStyle, WHITE};
use plotters_backend::DrawingBackend;

use super::axis_scale::{AxisScale, LABELS};
use super::legend::{legend_corner, legend_split};
use super::marker::{LegendSample, Marker, SAMPLE_WIDTH};
use super::prepare::{PreparedChart, PreparedSeries};
use super::spec::Mark;
use super::style::{
    AXIS_LABEL_SIZE, LEGEND_SIZE, LINE_WIDTH, SeriesStyle, TICK_MARK, TICK_SIZE, TITLE_SIZE,
};

/// A plotters error, as text (the backend's error type differs between PNG and SVG).
#[derive(Debug)]
pub(crate) struct DrawFailure(pub(crate) String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawFailure {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        Self(error.to_string())
    }
}

type Coord = Cartesian2d<AxisScale, AxisScale>;
type Dual<'a, DB> = DualCoordChartContext<'a, DB, Coord, Coord>;

/// Draws mesh lines in a light grey.
const GRID_BOLD: RGBColor = RGBColor(214, 214, 214);
const GRID_LIGHT: RGBColor = RGBColor(240, 240, 240);

/// The text size of point labels.
const POINT_LABEL_SIZE: u32 = 14;
/// Where a point label starts, in pixels from its point (right and up).
const POINT_LABEL_OFFSET: (i32, i32) = (5, -16);

/// The most markers drawn on a line-and-points series; longer series get every k-th point.
const MAX_LINE_MARKERS: usize = 40;

/// Draws `chart` filling `area`.
pub(crate) fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &PreparedChart,
) -> Result<(), DrawFailure> {
    let mut ctx = build(area, chart)?;
    draw_axes(&mut ctx, chart)?;
    for series in &chart.series {
        draw_series(&mut ctx, series)?;
    }
    if !chart.has_data() {
        draw_no_data(&ctx, chart)?;
    }
    if chart.series.len() > 1 {
        draw_legend(&mut ctx, chart)?;
    }
    Ok(())
}

/// A text style of the figures' font.
pub(crate) fn text(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

fn build<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    chart: &PreparedChart,
) -> Result<Dual<'a, DB>, DrawFailure> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&chart.title, text(TITLE_SIZE))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(84);
    if chart.y2.is_some() {
        builder.right_y_label_area_size(84);
    }
    let ctx = builder.build_cartesian_2d(chart.x.scale, chart.y.scale)?;
    let y2 = chart.y2.as_ref().map_or(chart.y.scale, |axis| axis.scale);
    Ok(ctx.set_secondary_coord(chart.x.scale, y2))
}

fn draw_axes<'a, DB: DrawingBackend + 'a>(
    ctx: &mut Dual<'a, DB>,
    chart: &PreparedChart,
) -> Result<(), DrawFailure> {
    ctx.configure_mesh()
        .x_desc(chart.x.label.as_str())
        .y_desc(chart.y.label.as_str())
        .x_labels(LABELS)
        .y_labels(LABELS)
        .label_style(text(TICK_SIZE))
        .set_all_tick_mark_size(TICK_MARK)
        .axis_desc_style(text(AXIS_LABEL_SIZE))
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .draw()?;
    if let Some(y2) = &chart.y2 {
        ctx.configure_secondary_axes()
            .y_desc(y2.label.as_str())
            .y_labels(LABELS)
            .label_style(text(TICK_SIZE))
            .set_all_tick_mark_size(TICK_MARK)
            .axis_desc_style(text(AXIS_LABEL_SIZE))
            .draw()?;
    }
    Ok(())
}

/// Draws `elements` against the left or right axis; the returned annotation is the legend
/// entry of that draw call.
fn draw_on<'a, 'c, DB, E>(
    ctx: &'c mut Dual<'a, DB>,
    secondary: bool,
    elements: Vec<E>,
) -> Result<&'c mut SeriesAnno<'a, DB>, DrawFailure>
where
    DB: DrawingBackend + 'a,
    E: Drawable<DB>,
    for<'b> &'b E: PointCollection<'b, (f64, f64)>,
{
    if secondary {
        Ok(ctx.draw_secondary_series(elements)?)
    } else {
        Ok(ctx.draw_series(elements)?)
    }
}

fn draw_series<'a, DB: DrawingBackend + 'a>(
    ctx: &mut Dual<'a, DB>,
    series: &PreparedSeries,
) -> Result<(), DrawFailure> {
    let style = SeriesStyle::of(series.style, series.mark);
    let stroke = style.color.stroke_width(LINE_WIDTH);
    let parts = series.lines.iter().cloned();
    if style.dashed {
        let dashed = parts
            .map(|p| DashedPathElement::new(p, 9, 6, stroke))
            .collect();
        draw_on(ctx, series.secondary, dashed)?;
    } else {
        draw_on(
            ctx,
            series.secondary,
            parts.map(|p| PathElement::new(p, stroke)).collect(),
        )?;
    }
    let stride = if series.lines.is_empty() {
        1
    } else {
        series.markers.len().div_ceil(MAX_LINE_MARKERS)
    };
    let markers = series.markers.iter().step_by(stride.max(1));
    let markers = markers
        .map(|&at| Marker {
            at,
            shape: style.shape,
            color: style.color,
        })
        .collect();
    draw_on(ctx, series.secondary, markers)?;
    draw_labels(ctx, series, style)
}

/// Writes each point label of `series` just above and right of its point, in its colour.
fn draw_labels<'a, DB: DrawingBackend + 'a>(
    ctx: &mut Dual<'a, DB>,
    series: &PreparedSeries,
    style: SeriesStyle,
) -> Result<(), DrawFailure> {
    if series.labels.is_empty() {
        return Ok(());
    }
    let font = text(POINT_LABEL_SIZE).color(&style.color);
    let labels = series
        .labels
        .iter()
        .map(|(at, label)| {
            EmptyElement::at(*at) + Text::new(label.clone(), POINT_LABEL_OFFSET, font.clone())
        })
        .collect();
    draw_on(ctx, series.secondary, labels)?;
    Ok(())
}

fn draw_legend<'a, DB: DrawingBackend + 'a>(
    ctx: &mut Dual<'a, DB>,
    chart: &PreparedChart,
) -> Result<(), DrawFailure> {
    let (shown, rest) = legend_split(chart.series.len());
    for series in &chart.series[..shown] {
        let style = Some(SeriesStyle::of(series.style, series.mark));
        let line = series.mark != Mark::Points;
        let marker = matches!(series.mark, Mark::Points | Mark::LineAndPoints);
        if series.lines.is_empty() && series.markers.is_empty() {
            let label = format!("{} (nothing to draw)", series.label);
            legend_entry(ctx, &label, style, line, marker)?;
        } else {
            legend_entry(ctx, &series.label, style, line, marker)?;
        }
    }
    if rest > 0 {
        legend_entry(
            ctx,
            &format!("... and {rest} more series"),
            None,
            false,
            false,
        )?;
    }
    let entries = shown + usize::from(rest > 0);
    ctx.configure_series_labels()
        .position(legend_corner(chart, entries))
        .background_style(WHITE.mix(0.92).filled())
        .border_style(RGBColor(150, 150, 150))
        .label_font(text(LEGEND_SIZE))
        .legend_area_size(SAMPLE_WIDTH + 6)
        .margin(10)
        .draw()?;
    Ok(())
}

/// Adds a legend line through an empty draw call.
fn legend_entry<'a, DB: DrawingBackend + 'a>(
    ctx: &mut Dual<'a, DB>,
    label: &str,
    style: Option<SeriesStyle>,
    line: bool,
    marker: bool,
) -> Result<(), DrawFailure> {
    let anno = draw_on(ctx, false, Vec::<Marker>::new())?;
    anno.label(label).legend(move |at| LegendSample {
        at,
        style,
        line,
        marker,
    });
    Ok(())
}

fn draw_no_data<'a, DB: DrawingBackend + 'a>(
    ctx: &Dual<'a, DB>,
    chart: &PreparedChart,
) -> Result<(), DrawFailure> {
    let middle = |s: AxisScale| (s.lo() + s.hi()) / 2.0;
    let at = (middle(chart.x.scale), middle(chart.y.scale));
    let style = text(AXIS_LABEL_SIZE).pos(Pos::new(HPos::Center, VPos::Center));
    ctx.plotting_area()
        .draw(&Text::new("no data to plot", at, style))?;
    Ok(())
}
