//! Figures as PNG and SVG files, drawn with plotters.
//!
//! A stage describes a figure as data ([`Chart`], [`Heatmap`]) and calls [`render_chart`],
//! [`render_panels`] or [`render_heatmap`] with a file stem; each writes `<stem>.png` and
//! `<stem>.svg` and returns both paths. The module takes care of what makes figures trustworthy
//! to researchers: data-derived ranges with a margin, log axes that drop (and report)
//! non-positive values instead of failing, skipped non-finite values, distinct series styles
//! and a legend placed in the emptiest corner. Bad input gives a [`PlotError`], never a panic.
//!
//! Text needs a TrueType font, loaded once per process at run time (see [`font_candidates`]);
//! without one no file is written, because plotters needs the font's metrics to lay out the
//! SVG as well as to rasterize the PNG.
//!
//! A legend shows at most [`MAX_LEGEND_ENTRIES`] entries; beyond that the first ones are shown
//! followed by a line saying how many more series the figure has. Figures with that many series
//! (50 widths, say) are read by their shape, and the table holds the exact values.

mod axis_scale;
mod clip;
mod draw_chart;
mod draw_heatmap;
mod error;
mod figure;
mod font;
mod legend;
mod marker;
mod prepare;
mod prepare_heatmap;
mod render;
mod spec;
mod style;
mod ticks;

pub use error::PlotError;
pub use font::{FONT_ENV, font_candidates};
pub use legend::MAX_LEGEND_ENTRIES;
pub use render::{
    CHART_SIZE, HEATMAP_SIZE, PANEL_SIZE, panels_size, render_chart, render_heatmap, render_panels,
};
pub use spec::{Axis, Chart, Heatmap, Mark, Scale, Series};
