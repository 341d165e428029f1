//! Stage kinds that draw figures from the Parquet tables of other stages. They need no
//! libtorch and run inside the engine's process, so both their declarations and their
//! runners live in this crate.

pub mod heatmap;
pub mod line;
pub(crate) mod series;

pub use heatmap::HeatmapPlot;
pub use line::LinePlot;
pub use series::Order;
