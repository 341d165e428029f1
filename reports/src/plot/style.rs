//! Colours, markers, line styles and text sizes shared by all figures.
//!
//! Series take colours from a fixed palette of [`PALETTE`]`.len()` distinct colours in order;
//! past the end, colours repeat with another marker shape, and lines alternate between solid
//! and dashed, so that series 1 and 13 still differ.

use plotters::style::RGBColor;

use super::spec::Mark;

/// The series colours, chosen to differ in hue and lightness.
pub(crate) const PALETTE: [RGBColor; 12] = [
    RGBColor(31, 94, 180),
    RGBColor(232, 113, 14),
    RGBColor(38, 148, 58),
    RGBColor(206, 38, 46),
    RGBColor(132, 84, 184),
    RGBColor(139, 88, 58),
    RGBColor(222, 92, 172),
    RGBColor(96, 96, 96),
    RGBColor(164, 166, 22),
    RGBColor(22, 170, 190),
    RGBColor(10, 50, 110),
    RGBColor(244, 178, 0),
];

/// Cell colour for missing values in heatmaps.
pub(crate) const MISSING: RGBColor = RGBColor(205, 205, 205);

/// Title text size (plotters draws text at about 0.8 of the nominal size).
pub(crate) const TITLE_SIZE: u32 = 27;
/// Axis description size.
pub(crate) const AXIS_LABEL_SIZE: u32 = 21;
/// Tick label size.
pub(crate) const TICK_SIZE: u32 = 18;
/// Legend text size.
pub(crate) const LEGEND_SIZE: u32 = 18;
/// Tick mark length in pixels.
pub(crate) const TICK_MARK: i32 = 5;
/// Line width in pixels.
pub(crate) const LINE_WIDTH: u32 = 2;
/// Marker size (radius) in pixels.
pub(crate) const MARKER_SIZE: i32 = 4;

/// A marker shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Circle,
    Triangle,
    Cross,
    Square,
}

const SHAPES: [Shape; 4] = [Shape::Circle, Shape::Triangle, Shape::Square, Shape::Cross];

/// How series number `index` with `mark` is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SeriesStyle {
    pub(crate) color: RGBColor,
    /// Whether its line (if any) is dashed.
    pub(crate) dashed: bool,
    /// The marker drawn at points (if any).
    pub(crate) shape: Shape,
}

impl SeriesStyle {
    /// The style of the `index`-th series of a chart.
    pub(crate) fn of(index: usize, mark: Mark) -> Self {
        let round = index / PALETTE.len();
        let color = PALETTE[index % PALETTE.len()];
        let dashed = match mark {
            Mark::Dashed => round.is_multiple_of(2),
            _ => !round.is_multiple_of(2),
        };
        Self {
            color,
            dashed,
            shape: SHAPES[round % SHAPES.len()],
        }
    }
}

/// The colour for `t` in `[0, 1]` on a dark-blue to yellow map of increasing lightness, so
/// that it reads in greyscale too. Outside values are clamped.
pub(crate) fn color_map(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (48.0, 18.0, 88.0),
        (38.0, 84.0, 150.0),
        (24.0, 146.0, 140.0),
        (112.0, 196.0, 84.0),
        (248.0, 230.0, 50.0),
    ];
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let position = t * (STOPS.len() - 1) as f64;
    let i = (position.floor() as usize).min(STOPS.len() - 2);
    let f = position - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round().clamp(0.0, 255.0) as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_past_the_palette_change_line_or_marker() {
        let first = SeriesStyle::of(0, Mark::Line);
        let thirteenth = SeriesStyle::of(12, Mark::Line);
        assert_eq!(first.color, thirteenth.color);
        assert_ne!(
            (first.dashed, first.shape),
            (thirteenth.dashed, thirteenth.shape)
        );
        assert!(SeriesStyle::of(0, Mark::Dashed).dashed);
    }

    #[test]
    fn color_map_ends_and_clamps() {
        assert_eq!(color_map(0.0), RGBColor(48, 18, 88));
        assert_eq!(color_map(1.0), RGBColor(248, 230, 50));
        assert_eq!(color_map(7.0), color_map(1.0));
        assert_eq!(color_map(f64::NAN), color_map(0.0));
    }
}
