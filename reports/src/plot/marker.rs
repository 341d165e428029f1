//! Custom plotters elements: a series marker at a data point, and a legend sample.
//!
//! Both draw straight onto the backend, so one element type covers every marker shape and
//! every line/marker combination, instead of one plotters element type per case.

use plotters::element::{Drawable, PointCollection};
use plotters::style::{Color, RGBColor, ShapeStyle};
use plotters_backend::{BackendCoord, DrawingBackend, DrawingErrorKind};

use super::style::{LINE_WIDTH, MARKER_SIZE, SeriesStyle, Shape};

/// A marker of a series at one data point (transformed coordinates).
pub(crate) struct Marker {
    pub(crate) at: (f64, f64),
    pub(crate) shape: Shape,
    pub(crate) color: RGBColor,
}

impl<'a> PointCollection<'a, (f64, f64)> for &'a Marker {
    type Point = &'a (f64, f64);
    type IntoIter = std::iter::Once<&'a (f64, f64)>;

    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<DB: DrawingBackend> Drawable<DB> for Marker {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut pos: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        match pos.next() {
            Some(center) => draw_marker(backend, center, self.shape, self.color),
            None => Ok(()),
        }
    }
}

/// The sample drawn before a legend entry: a short line and/or a marker, or nothing.
pub(crate) struct LegendSample {
    pub(crate) at: BackendCoord,
    pub(crate) style: Option<SeriesStyle>,
    pub(crate) line: bool,
    pub(crate) marker: bool,
}

/// The width of a legend sample in pixels.
pub(crate) const SAMPLE_WIDTH: i32 = 24;

impl<'a> PointCollection<'a, BackendCoord> for &'a LegendSample {
    type Point = &'a BackendCoord;
    type IntoIter = std::iter::Once<&'a BackendCoord>;

    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<DB: DrawingBackend> Drawable<DB> for LegendSample {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut pos: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let (Some((x, y)), Some(style)) = (pos.next(), self.style) else {
            return Ok(());
        };
        let stroke = style.color.stroke_width(LINE_WIDTH);
        if self.line && style.dashed {
            backend.draw_line((x, y), (x + 8, y), &stroke)?;
            backend.draw_line((x + 16, y), (x + SAMPLE_WIDTH, y), &stroke)?;
        } else if self.line {
            backend.draw_line((x, y), (x + SAMPLE_WIDTH, y), &stroke)?;
        }
        if self.marker {
            draw_marker(backend, (x + SAMPLE_WIDTH / 2, y), style.shape, style.color)?;
        }
        Ok(())
    }
}

/// Draws one marker centred on `(x, y)`.
fn draw_marker<DB: DrawingBackend>(
    backend: &mut DB,
    (x, y): BackendCoord,
    shape: Shape,
    color: RGBColor,
) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
    let r = MARKER_SIZE;
    let fill: ShapeStyle = color.filled();
    match shape {
        Shape::Circle => backend.draw_circle((x, y), r.unsigned_abs(), &fill, true),
        Shape::Square => backend.draw_rect((x - r, y - r), (x + r, y + r), &fill, true),
        Shape::Triangle => backend.fill_polygon(
            [(x, y - r - 1), (x - r - 1, y + r), (x + r + 1, y + r)],
            &fill,
        ),
        Shape::Cross => {
            let stroke = color.stroke_width(LINE_WIDTH);
            backend.draw_line((x - r, y - r), (x + r, y + r), &stroke)?;
            backend.draw_line((x - r, y + r), (x + r, y - r), &stroke)
        }
    }
}
