//! Writing a stage's result table as Parquet, with the stage kind and its canonical
//! parameters in the file metadata.
//!
//! All tables of this crate go through [`write_table`], so the metadata keys and the mapping
//! of writer failures to error classes live in one place. The parameters are written as JSON
//! with sorted keys (through `serde_json::Value`), the same canonical form the cache key uses;
//! the stage's name is not written, because it is not part of the cache key and two stages
//! with identical keys must produce identical bytes.

use std::path::Path;

use pipeline_engine::stage::StageError;
use pipeline_reports::table::{Table, TableError};
use serde::Serialize;

/// Metadata key holding the stage kind.
const KIND_KEY: &str = "pipeline.kind";
/// Metadata key holding the stage's canonical parameters as JSON.
const PARAMS_KEY: &str = "pipeline.params";

/// Writes `table` to `path` with the kind and canonical `params` as metadata.
pub(crate) fn write_table<P: Serialize>(
    path: &Path,
    table: &Table,
    kind: &str,
    params: &P,
) -> Result<(), StageError> {
    let params = serde_json::to_value(params)
        .map_err(|e| StageError::bug("parameters cannot be encoded as JSON").caused_by(&e))?;
    let metadata = [
        (KIND_KEY.to_owned(), kind.to_owned()),
        (PARAMS_KEY.to_owned(), params.to_string()),
    ];
    table.write_parquet(path, &metadata).map_err(|err| {
        let base = match err {
            TableError::Io { .. } => {
                StageError::environment(format!("cannot write {}", path.display()))
            }
            _ => StageError::bug(format!("the table for {} is malformed", path.display())),
        };
        base.caused_by(&err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_reports::table::{ColumnData, read_metadata};

    #[test]
    fn metadata_holds_kind_and_sorted_params() -> Result<(), Box<dyn std::error::Error>> {
        #[derive(Serialize)]
        struct Params {
            zeta: u32,
            alpha: &'static str,
        }
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.parquet");
        let mut table = Table::new();
        table.push("epoch", ColumnData::I64(vec![0, 1]));
        write_table(
            &path,
            &table,
            "train",
            &Params {
                zeta: 1,
                alpha: "a",
            },
        )?;
        let metadata = read_metadata(&path)?;
        assert!(metadata.contains(&(KIND_KEY.to_owned(), "train".to_owned())));
        let params = (
            PARAMS_KEY.to_owned(),
            r#"{"alpha":"a","zeta":1}"#.to_owned(),
        );
        assert!(metadata.contains(&params), "{metadata:?}");
        Ok(())
    }
}
