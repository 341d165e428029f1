//! The public entry points: describe a figure, get `<stem>.png` and `<stem>.svg`.
//!
//! Each function checks and prepares its input, makes sure a font is registered, then draws
//! the figure once per backend. Files are written under a temporary name and renamed, so a
//! failure leaves no half-written figure; a panic inside plotters is caught and returned as
//! [`PlotError::Panicked`]. The same input gives the same bytes: neither backend writes
//! timestamps.

use std::ffi::OsString;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};
use plotters::style::WHITE;

use super::draw_chart::DrawFailure;
use super::error::PlotError;
use super::figure::{Figure, Panels, panel_grid};
use super::font::{FontProblem, ensure_font};
use super::prepare::prepare_chart;
use super::prepare_heatmap::prepare_heatmap;
use super::spec::{Chart, Heatmap};

/// The size in pixels of a single chart.
pub const CHART_SIZE: (u32, u32) = (1000, 650);
/// The size in pixels of one panel of a multi-panel figure.
pub const PANEL_SIZE: (u32, u32) = (900, 585);
/// The size in pixels of a heatmap with its colour bar.
pub const HEATMAP_SIZE: (u32, u32) = (1000, 760);
/// The height of the band holding a multi-panel figure's overall title.
const PANEL_TITLE_BAND: u32 = 50;

/// The size in pixels of a figure of `n` panels.
pub fn panels_size(n: usize) -> (u32, u32) {
    let (rows, columns) = panel_grid(n);
    let (rows, columns) = (
        u32::try_from(rows).unwrap_or(1),
        u32::try_from(columns).unwrap_or(1),
    );
    (
        PANEL_SIZE.0 * columns,
        PANEL_SIZE.1 * rows + PANEL_TITLE_BAND,
    )
}

/// Draws `chart` to `<stem>.png` and `<stem>.svg` and returns their paths (PNG first).
pub fn render_chart(chart: &Chart, stem: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let prepared = prepare_chart(chart).map_err(|reason| invalid(stem, reason))?;
    write_figure(&prepared, stem, CHART_SIZE)
}

/// Draws several charts as panels of one figure under `title`: side by side for two or three,
/// in a near-square grid for more. Returns the paths written (PNG first).
pub fn render_panels(
    title: &str,
    panels: &[Chart],
    stem: &Path,
) -> Result<Vec<PathBuf>, PlotError> {
    if panels.is_empty() {
        return Err(invalid(
            stem,
            "a panel figure needs at least one chart".to_owned(),
        ));
    }
    let charts = panels
        .iter()
        .enumerate()
        .map(|(i, chart)| {
            prepare_chart(chart).map_err(|reason| invalid(stem, format!("panel {i}: {reason}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let figure = Panels {
        title: title.to_owned(),
        charts,
    };
    write_figure(&figure, stem, panels_size(panels.len()))
}

/// Draws `map` with its colour bar to `<stem>.png` and `<stem>.svg` (PNG first).
pub fn render_heatmap(map: &Heatmap, stem: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let prepared = prepare_heatmap(map).map_err(|reason| invalid(stem, reason))?;
    write_figure(&prepared, stem, HEATMAP_SIZE)
}

fn invalid(stem: &Path, reason: String) -> PlotError {
    PlotError::InvalidInput {
        path: stem.to_owned(),
        reason,
    }
}

fn write_figure<F: Figure>(
    figure: &F,
    stem: &Path,
    size: (u32, u32),
) -> Result<Vec<PathBuf>, PlotError> {
    let png = with_suffix(stem, "png");
    let svg = with_suffix(stem, "svg");
    ensure_font().map_err(|problem| font_error(problem, &png))?;
    write_svg(figure, &svg, size)?;
    write_png(figure, &png, size)?;
    Ok(vec![png, svg])
}

fn font_error(problem: FontProblem, path: &Path) -> PlotError {
    let path = path.to_owned();
    match problem {
        FontProblem::NotFound(tried) => PlotError::FontNotFound { path, tried },
        FontProblem::Unusable(font, reason) => PlotError::FontUnusable { path, font, reason },
    }
}

/// `stem` with `.extension` appended (not replacing a dot already in the stem's name).
fn with_suffix(stem: &Path, extension: &str) -> PathBuf {
    let mut name = OsString::from(stem.as_os_str());
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

/// A sibling of `path` to write into before renaming, with the same extension (the bitmap
/// backend picks the image format from it).
fn temporary(path: &Path, extension: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_stem().map(OsString::from).unwrap_or_default();
    name.push(format!(".tmp-{}-{n}.{extension}", std::process::id()));
    path.with_file_name(name)
}

fn write_svg<F: Figure>(figure: &F, path: &Path, size: (u32, u32)) -> Result<(), PlotError> {
    let mut text = String::new();
    guarded(path, || {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE)?;
        figure.draw(&root)?;
        root.present()?;
        Ok(())
    })?;
    let tmp = temporary(path, "svg");
    let written = std::fs::write(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
    finish(written, &tmp, path)
}

fn write_png<F: Figure>(figure: &F, path: &Path, size: (u32, u32)) -> Result<(), PlotError> {
    let tmp = temporary(path, "png");
    let drawn = guarded(path, || {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE)?;
        figure.draw(&root)?;
        root.present()?;
        Ok(())
    });
    if let Err(error) = drawn {
        // Best effort: the drawing failed already; a stray temporary file is harmless.
        let _ = std::fs::remove_file(&tmp);
        return Err(error);
    }
    finish(std::fs::rename(&tmp, path), &tmp, path)
}

fn finish(result: std::io::Result<()>, tmp: &Path, path: &Path) -> Result<(), PlotError> {
    result.map_err(|source| {
        let _ = std::fs::remove_file(tmp);
        PlotError::Io {
            path: path.to_owned(),
            source,
        }
    })
}

/// Runs a drawing, turning plotters errors and panics into [`PlotError`]s about `path`.
fn guarded(path: &Path, draw: impl FnOnce() -> Result<(), DrawFailure>) -> Result<(), PlotError> {
    match catch_unwind(AssertUnwindSafe(draw)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(DrawFailure(message))) => Err(PlotError::Draw {
            path: path.to_owned(),
            message,
        }),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(PlotError::Panicked {
                path: path.to_owned(),
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_appended_not_substituted() {
        assert_eq!(
            with_suffix(Path::new("out/loss.v2"), "png"),
            PathBuf::from("out/loss.v2.png")
        );
    }

    #[test]
    fn temporary_keeps_the_extension() {
        let tmp = temporary(Path::new("/d/loss.png"), "png");
        assert_eq!(tmp.extension().and_then(|e| e.to_str()), Some("png"));
        assert_eq!(tmp.parent(), Some(Path::new("/d")));
    }

    #[test]
    fn missing_font_error_says_what_was_tried_and_what_to_install() {
        let problem = FontProblem::NotFound(vec![PathBuf::from("/a.ttf"), PathBuf::from("/b.ttf")]);
        let message = font_error(problem, Path::new("out/loss.png")).to_string();
        assert!(
            message.starts_with("out/loss.png: no TrueType font"),
            "{message}"
        );
        assert!(message.contains("/a.ttf, /b.ttf") && message.contains("fonts-dejavu-core"));
        assert!(message.contains("PIPELINE_FONT"));
    }

    #[test]
    fn panel_sizes_grow_with_the_grid() {
        assert_eq!(panels_size(2), (1800, 635));
        assert_eq!(panels_size(4), (1800, 1220));
    }
}
