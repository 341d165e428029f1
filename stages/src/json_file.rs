//! Small JSON side files (`dataset.json`, `model.json`): pretty, newline-terminated, and read
//! back with errors that name the file.
//!
//! serde_json writes struct fields in declaration order and this crate keeps no maps with
//! unordered keys in them, so the same value always gives the same bytes.

use std::path::Path;

use pipeline_engine::stage::StageError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Writes `value` to `path` as pretty JSON with a final newline.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StageError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| StageError::bug(format!("cannot encode {}", path.display())).caused_by(&e))?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| StageError::io("write", path, &e))
}

/// Reads `path` as JSON describing `what` (for the message); a missing file is an environment
/// error, a malformed one an input error naming it.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T, StageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            StageError::environment(format!("{} does not exist", path.display()))
        } else {
            StageError::io("read", path, &e)
        }
    })?;
    serde_json::from_str(&text).map_err(|e| {
        StageError::input(format!("{} is not a valid {what}", path.display())).caused_by(&e)
    })
}
