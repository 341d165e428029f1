//! Stage kinds that draw figures from the Parquet tables of other stages. They need no
//! libtorch and run inside the engine's process, so both their declarations and their
//! runners live in this crate.

pub mod line;
pub(crate) mod series;

pub use line::LinePlot;
