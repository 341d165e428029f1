//! What can go wrong when drawing a figure.

use std::path::PathBuf;

/// An error from the plot module; `path` is the figure file (or stem) concerned.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No TrueType font was found for the figure's text.
    #[error(
        "{}: no TrueType font for the figure text (tried {}); set PIPELINE_FONT to a .ttf \
         file, or install the Debian package fonts-dejavu-core",
        path.display(),
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    FontNotFound {
        /// The figure that could not be drawn.
        path: PathBuf,
        /// The font files looked for, in order.
        tried: Vec<PathBuf>,
    },
    /// A font file exists but could not be read or parsed.
    #[error("{}: cannot use font {}: {reason}", path.display(), font.display())]
    FontUnusable {
        /// The figure that could not be drawn.
        path: PathBuf,
        /// The font file.
        font: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// The figure's description cannot be drawn (an invalid fixed range, a ragged heatmap).
    #[error("{}: {reason}", path.display())]
    InvalidInput {
        /// The figure's stem.
        path: PathBuf,
        /// What is wrong, naming the axis or series.
        reason: String,
    },
    /// plotters reported an error while drawing.
    #[error("{}: drawing failed: {message}", path.display())]
    Draw {
        /// The file being drawn.
        path: PathBuf,
        /// plotters' message.
        message: String,
    },
    /// Drawing panicked inside plotters: a bug in this module's input checks.
    #[error(
        "{}: drawing panicked ({message}); this is a bug in pipeline-reports, please report it",
        path.display()
    )]
    Panicked {
        /// The file being drawn.
        path: PathBuf,
        /// The panic message.
        message: String,
    },
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}
