//! The HTML report: one self-contained page per pipeline with every figure, the final metrics
//! of every training stage, what the last run did and how long each stage took, and each
//! stage's parameters.
//!
//! The page is built from plain data ([`Report`]) by a compile-time template (maud), which
//! escapes every piece of text. It loads nothing: figures are embedded as `data:` URIs, the
//! style sheet is inline, there is no script, and a Content-Security-Policy forbids every
//! other source, so the file reads the same offline, mailed, or years later.

mod base64;
mod page;

pub use page::render;

use crate::summary::FinalMetrics;

/// Everything the page shows.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its description.
    pub description: Option<String>,
    /// The pipeline file, as given.
    pub file: String,
    /// When the page was written, for people (`2025-01-31 12:00:00 UTC`).
    pub generated: String,
    /// The newest run, if any.
    pub last_run: Option<LastRun>,
    /// Every stage, in pipeline order.
    pub stages: Vec<StageView>,
}

/// The newest run of the pipeline.
#[derive(Clone, Debug, Default)]
pub struct LastRun {
    /// When it started.
    pub started: String,
    /// How long it took.
    pub took: String,
    /// Stages that ran.
    pub ran: usize,
    /// Stages found in the store.
    pub cached: usize,
    /// Stages that failed.
    pub failed: usize,
    /// Stages skipped.
    pub skipped: usize,
    /// Whether it was stopped before the end.
    pub stopped: bool,
    /// Its settings, one line each (`--set fit_lr=0.01`, `targets: fit`).
    pub settings: Vec<String>,
}

/// What the newest run did with one stage.
#[derive(Clone, Debug, Default)]
pub struct StageOutcome {
    /// `ran`, `cached`, `failed` or `skipped`.
    pub what: String,
    /// How long it took, where it ran.
    pub time: Option<String>,
    /// Why it failed or was skipped.
    pub detail: Option<String>,
}

/// One stage.
#[derive(Clone, Debug, Default)]
pub struct StageView {
    /// Its full name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its output folder, relative to the workspace.
    pub folder: String,
    /// What the newest run did with it (`None`: not part of that run).
    pub outcome: Option<StageOutcome>,
    /// The key of the outputs in its folder.
    pub key: Option<String>,
    /// The parameters of the outputs in its folder, as preformatted text.
    pub params: Option<String>,
    /// Input slots and the stages bound to them.
    pub inputs: Vec<(String, Vec<String>)>,
    /// Its final metrics, for stages with a metrics table.
    pub metrics: Option<FinalMetrics>,
    /// Its figures.
    pub figures: Vec<Figure>,
    /// Remarks (no outputs yet, an unreadable table).
    pub notes: Vec<String>,
}

/// One figure file.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The file name in the stage's folder.
    pub file: String,
    /// Its contents.
    pub image: Image,
}

/// The bytes of an image and its format.
#[derive(Clone, Debug)]
pub enum Image {
    /// A PNG file.
    Png(Vec<u8>),
    /// An SVG file.
    Svg(Vec<u8>),
}

impl Image {
    /// The image as a `data:` URI.
    pub fn data_uri(&self) -> String {
        let (mime, bytes) = match self {
            Image::Png(b) => ("image/png", b),
            Image::Svg(b) => ("image/svg+xml", b),
        };
        format!("data:{mime};base64,{}", base64::encode(bytes))
    }
}
