//! Finding a TrueType font at run time and registering it with plotters once per process.
//!
//! No font is embedded in the repository. [`font_candidates`] lists where one is looked for;
//! the first that exists is read, leaked into a `'static` buffer (plotters' `register_font`
//! wants one; it happens once) and registered under the generic family names the figures use.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

/// The environment variable naming the font file to use instead of the default locations.
pub const FONT_ENV: &str = "PIPELINE_FONT";

/// Where fonts are looked for when [`FONT_ENV`] is not set: DejaVu Sans on Debian and Ubuntu
/// (package `fonts-dejavu-core`), Arch and Fedora, then Liberation Sans.
const DEFAULT_FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// The family names the font is registered under; figures use `sans-serif`, the others guard
/// against plotters defaults.
const FAMILIES: [&str; 3] = ["sans-serif", "serif", "monospace"];

/// The font files tried, in order: only the file named by `$PIPELINE_FONT` when it is set and
/// not empty (a typo there should fail, not silently fall back), else the default locations.
/// The variable is read when the process draws its first figure; later changes are ignored.
pub fn font_candidates() -> Vec<PathBuf> {
    candidates_for(std::env::var_os(FONT_ENV))
}

fn candidates_for(env: Option<OsString>) -> Vec<PathBuf> {
    match env {
        Some(value) if !value.is_empty() => vec![PathBuf::from(value)],
        _ => DEFAULT_FONTS.iter().map(PathBuf::from).collect(),
    }
}

/// Why no font could be registered; turned into a [`super::PlotError`] naming the figure.
#[derive(Debug, Clone)]
pub(crate) enum FontProblem {
    /// None of the candidates exists.
    NotFound(Vec<PathBuf>),
    /// A candidate exists but is unreadable or not a font.
    Unusable(PathBuf, String),
}

/// Registers the font on first use; later calls return the first call's outcome.
pub(crate) fn ensure_font() -> Result<(), FontProblem> {
    static REGISTERED: OnceLock<Result<PathBuf, FontProblem>> = OnceLock::new();
    let outcome = REGISTERED.get_or_init(|| register_first(&font_candidates()));
    match outcome {
        Ok(path) => {
            tracing::debug!(font = %path.display(), "figure font");
            Ok(())
        }
        Err(problem) => Err(problem.clone()),
    }
}

fn register_first(candidates: &[PathBuf]) -> Result<PathBuf, FontProblem> {
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err(FontProblem::NotFound(candidates.to_vec()));
    };
    register_file(path)?;
    Ok(path.clone())
}

fn register_file(path: &Path) -> Result<(), FontProblem> {
    let unusable = |reason: String| FontProblem::Unusable(path.to_owned(), reason);
    let bytes = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    for family in FAMILIES {
        register_font(family, FontStyle::Normal, bytes)
            .map_err(|_| unusable("not a TrueType or OpenType font".to_owned()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_variable_replaces_the_defaults() {
        let chosen = candidates_for(Some(OsString::from("/fonts/Mine.ttf")));
        assert_eq!(chosen, vec![PathBuf::from("/fonts/Mine.ttf")]);
        assert_eq!(
            candidates_for(Some(OsString::new())).len(),
            DEFAULT_FONTS.len()
        );
        assert_eq!(candidates_for(None)[0], PathBuf::from(DEFAULT_FONTS[0]));
    }

    #[test]
    fn missing_fonts_are_listed() {
        let tried = vec![PathBuf::from("/nonexistent/a.ttf")];
        assert!(matches!(register_first(&tried), Err(FontProblem::NotFound(t)) if t == tried));
    }

    #[test]
    fn a_file_that_is_not_a_font_is_unusable() -> Result<(), std::io::Error> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("fake.ttf");
        std::fs::write(&path, b"not a font")?;
        assert!(matches!(
            register_file(&path),
            Err(FontProblem::Unusable(..))
        ));
        Ok(())
    }
}
