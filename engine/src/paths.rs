//! Where stages may read data: inside the workspace, in Debian's data-set folder, or under a
//! folder the pipeline file lists in `data_roots`. A path that escapes these (an absolute path
//! elsewhere, or `..` climbing out of the workspace) is refused before anything runs, so that
//! a pipeline file cannot quietly read arbitrary files of the machine it is run on.

use std::path::{Component, Path, PathBuf};

use crate::spec::{Pipeline, SpecError, SpecErrors};
use crate::stage::Registry;

/// Folders every pipeline may read: Debian's packaged data sets.
pub const SYSTEM_DATA_ROOTS: &[&str] = &["/usr/share/datasets"];

/// `path` with `.` and `..` resolved lexically (symbolic links are not followed).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `path` with symbolic links resolved where it exists (else only `.` and `..` removed).
fn real(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| normalize(path))
}

/// Checks every external file of every stage against the allowed folders.
pub fn check_data_paths(
    pipeline: &Pipeline,
    registry: &Registry,
    workspace: &Path,
) -> Result<(), SpecErrors> {
    let workspace = normalize(workspace);
    // Each root as written and with its links resolved (a file that does not exist yet is
    // compared as written).
    let roots = std::iter::once(workspace.clone())
        .chain(SYSTEM_DATA_ROOTS.iter().map(PathBuf::from))
        .chain(pipeline.data_roots.iter().map(|r| workspace.join(r)));
    let allowed: Vec<PathBuf> = roots
        .flat_map(|root| [normalize(&root), real(&root)])
        .collect();
    let mut errors = Vec::new();
    for stage in &pipeline.stages {
        let Some(kind) = registry.get(&stage.kind) else {
            continue;
        };
        for file in kind.external_files(&stage.params) {
            // Where the file really is: a symbolic link inside the workspace that points
            // outside it does not make its target readable.
            let resolved = real(&workspace.join(&file));
            if allowed.iter().any(|root| resolved.starts_with(root)) {
                continue;
            }
            let error = SpecError::new(
                format!(
                    "stage `{}` reads {}, which is outside the workspace",
                    stage.name,
                    file.display()
                ),
                Some(&stage.span),
                format!("stages.{}.params", stage.base),
            )
            .note(format!(
                "to allow it, list a folder that holds it under `data_roots:` at the top of the \
                 pipeline file, e.g. `data_roots: [{}]`",
                resolved.parent().unwrap_or(&resolved).display()
            ));
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SpecErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;
    use std::path::Path;

    #[test]
    fn normalizing_climbs_lexically() {
        assert_eq!(
            normalize(Path::new("/ws/a/../../etc/passwd")),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            normalize(Path::new("/ws/./data/x")),
            Path::new("/ws/data/x")
        );
    }
}
