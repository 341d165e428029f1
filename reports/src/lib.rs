//! Tables and figures for `pipeline` stages.
//!
//! [`table`] holds long-format result tables and writes them as deterministic Parquet files
//! that pandas, polars and DuckDB open with no options; [`plot`] draws line charts, scatter
//! plots, multi-panel figures and heatmaps as PNG and SVG files; [`summary`] reads the final
//! metrics of a training table; [`html`] renders a pipeline's report page from plain data. The
//! crate knows nothing of stages, the cache or libtorch, so it builds and tests quickly on its
//! own.

pub mod html;
pub mod plot;
pub mod summary;
pub mod table;

pub use plot::{
    Axis, Chart, Heatmap, Mark, PlotError, Scale, Series, render_chart, render_heatmap,
    render_panels,
};
pub use summary::FinalMetrics;
pub use table::{ColumnData, FileSchema, Table, TableError, read_metadata, read_schema};
