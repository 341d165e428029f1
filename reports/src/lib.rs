//! Tables and figures for `pipeline` stages.
//!
//! [`table`] holds long-format result tables and writes them as deterministic Parquet files
//! that pandas, polars and DuckDB open with no options; [`plot`] draws line charts, scatter
//! plots, multi-panel figures and heatmaps as PNG and SVG files. The crate knows nothing of
//! stages, the cache or libtorch, so it builds and tests quickly on its own.

pub mod plot;
pub mod table;

pub use plot::{
    Axis, Chart, Heatmap, Mark, PlotError, Scale, Series, render_chart, render_heatmap,
    render_panels,
};
pub use table::{ColumnData, Table, TableError, read_metadata};
