//! The `gather` kind: one table from the tables of many stages, with each stage's name and
//! matrix values as columns, so that a sweep can be plotted or queried as a whole (test
//! accuracy against the number of parameters over 50 widths, sensitivity against batch size).
//!
//! ```yaml
//! widths:
//!   kind: gather
//!   inputs: {runs: train_width}        # every member of the matrix
//!   params: {table: metrics.parquet, last_epoch: true}
//! ```
//!
//! Output: `gathered.parquet` (or `file`): the rows of every input's table, in input order,
//! preceded by a `stage` column and one column per matrix axis, in alphabetical order (integers
//! or numbers where every value parses as one, text otherwise). An axis whose name is already a
//! column of the tables is not added again. With `last_epoch`, only the rows of each table's largest `epoch` are
//! kept: the final metrics of each run.

use pipeline_engine::stage::{
    InputSlot, ParamIssue, StageContext, StageError, TypedStage, UpstreamOutput,
};
use pipeline_reports::{ColumnData, Table};
use serde::{Deserialize, Serialize};

use crate::plot::series::{read_table, table_error};

/// The `gather` kind.
pub struct Gather;

/// Parameters of `gather`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatherParams {
    /// The table file in each input's outputs.
    #[serde(default = "default_table")]
    pub table: String,
    /// Keep only the rows of each table's largest `epoch`.
    #[serde(default)]
    pub last_epoch: bool,
    /// The output file name.
    #[serde(default = "default_file")]
    pub file: String,
}

fn default_table() -> String {
    "metrics.parquet".to_owned()
}

fn default_file() -> String {
    "gathered.parquet".to_owned()
}

impl TypedStage for Gather {
    type Params = GatherParams;
    const NAME: &'static str = "gather";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "one table from the tables of many stages, with their matrix values as columns";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::many("runs", "stages whose tables to join")];
        SLOTS
    }

    fn check(&self, p: &GatherParams) -> Result<(), ParamIssue> {
        if !p.file.ends_with(".parquet") || p.file.contains('/') || p.file.starts_with('.') {
            return Err(ParamIssue::at(
                "file",
                "a plain file name ending in .parquet",
            ));
        }
        Ok(())
    }

    fn in_process(&self) -> bool {
        true
    }
}

/// Joins the input tables.
pub(crate) fn run(p: GatherParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    let runs = ctx.inputs.many("runs");
    let mut parts = Vec::with_capacity(runs.len());
    for up in runs {
        let table = read_table(up, &p.table)?;
        let table = if p.last_epoch {
            last_epoch(&table, up)?
        } else {
            table
        };
        parts.push((up, table));
    }
    let joined = join(&parts)?;
    let metadata = vec![
        ("pipeline.kind".to_owned(), Gather::NAME.to_owned()),
        (
            "pipeline.params".to_owned(),
            serde_json::to_string(&p).unwrap_or_default(),
        ),
    ];
    joined
        .write_parquet(&ctx.out_dir.join(&p.file), &metadata)
        .map_err(|e| StageError::environment("cannot write the gathered table").caused_by(&e))
}

fn last_epoch(table: &Table, up: &UpstreamOutput) -> Result<Table, StageError> {
    let epochs = table.i64s("epoch").map_err(|e| table_error(up, &e))?;
    let Some(last) = epochs.iter().max() else {
        return Ok(table.clone());
    };
    table
        .filter_eq("epoch", &last.to_string())
        .map_err(|e| table_error(up, &e))
}

/// The rows of all parts, with `stage` and matrix columns in front.
fn join(parts: &[(&UpstreamOutput, Table)]) -> Result<Table, StageError> {
    let Some((first_up, first)) = parts.first() else {
        return Ok(Table::new());
    };
    let names: Vec<String> = first.names().iter().map(|s| (*s).to_owned()).collect();
    let axes: Vec<String> = first_up
        .matrix
        .keys()
        .filter(|a| !names.contains(a))
        .cloned()
        .collect();
    let mut out = Table::new();
    let rows = |t: &Table| t.num_rows();
    out.push(
        "stage",
        ColumnData::Str(
            parts
                .iter()
                .flat_map(|(up, t)| vec![up.stage.clone(); rows(t)])
                .collect(),
        ),
    );
    for axis in &axes {
        let values: Vec<String> = parts
            .iter()
            .flat_map(|(up, t)| vec![up.matrix.get(axis).cloned().unwrap_or_default(); rows(t)])
            .collect();
        out.push(axis, typed_column(values));
    }
    for name in &names {
        let mut column: Option<ColumnData> = None;
        for (up, table) in parts {
            let part = table.column(name).ok_or_else(|| {
                StageError::input(format!(
                    "the table of {} has no column `{name}` that {} has",
                    up.stage, first_up.stage
                ))
            })?;
            column = Some(match column {
                None => part.clone(),
                Some(acc) => append(acc, part).ok_or_else(|| {
                    StageError::input(format!(
                        "column `{name}` of {} has type {}, unlike in {}",
                        up.stage,
                        part.type_name(),
                        first_up.stage
                    ))
                })?,
            });
        }
        if let Some(c) = column {
            out.push(name, c);
        }
    }
    Ok(out)
}

/// A column of matrix labels: integers if all parse, else numbers, else text.
fn typed_column(values: Vec<String>) -> ColumnData {
    if let Ok(ints) = values
        .iter()
        .map(|v| v.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
    {
        return ColumnData::I64(ints);
    }
    if let Ok(floats) = values
        .iter()
        .map(|v| v.parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        && floats.iter().all(|f| f.is_finite())
    {
        return ColumnData::F64(floats.into_iter().map(Some).collect());
    }
    ColumnData::Str(values)
}

fn append(acc: ColumnData, part: &ColumnData) -> Option<ColumnData> {
    Some(match (acc, part) {
        (ColumnData::I64(mut a), ColumnData::I64(b)) => {
            a.extend_from_slice(b);
            ColumnData::I64(a)
        }
        (ColumnData::F64(mut a), ColumnData::F64(b)) => {
            a.extend_from_slice(b);
            ColumnData::F64(a)
        }
        (ColumnData::Str(mut a), ColumnData::Str(b)) => {
            a.extend_from_slice(b);
            ColumnData::Str(a)
        }
        (ColumnData::Bool(mut a), ColumnData::Bool(b)) => {
            a.extend_from_slice(b);
            ColumnData::Bool(a)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;

    fn write_run(dir: &Path, name: &str, width: &str, epochs: &[i64]) -> UpstreamOutput {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        let mut t = Table::new();
        t.push("epoch", ColumnData::I64(epochs.to_vec())).push(
            "loss",
            ColumnData::F64(
                epochs
                    .iter()
                    .map(|e| Some(1.0 / (*e as f64 + 1.0)))
                    .collect(),
            ),
        );
        t.write_parquet(&folder.join("metrics.parquet"), &[])
            .unwrap();
        UpstreamOutput {
            stage: format!("train[width={width}]"),
            matrix: BTreeMap::from([("width".to_owned(), width.to_owned())]),
            dir: folder,
        }
    }

    #[test]
    fn joins_tables_with_matrix_columns_and_final_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_run(dir.path(), "a", "2", &[0, 1, 2]);
        let b = write_run(dir.path(), "b", "16", &[0, 1, 2]);
        let tables: Vec<(&UpstreamOutput, Table)> = [&a, &b]
            .iter()
            .map(|u| {
                (
                    *u,
                    last_epoch(&read_table(u, "metrics.parquet").unwrap(), u).unwrap(),
                )
            })
            .collect();
        let joined = join(&tables).unwrap();
        assert_eq!(joined.names(), ["stage", "width", "epoch", "loss"]);
        assert_eq!(joined.i64s("width").unwrap(), [2, 16]);
        assert_eq!(joined.i64s("epoch").unwrap(), [2, 2]);
        assert_eq!(
            joined.strs("stage").unwrap(),
            ["train[width=2]", "train[width=16]"]
        );
    }

    #[test]
    fn tables_that_differ_in_columns_are_an_error_naming_the_stage() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_run(dir.path(), "a", "2", &[0]);
        let folder = dir.path().join("c");
        std::fs::create_dir_all(&folder).unwrap();
        let mut t = Table::new();
        t.push("epoch", ColumnData::I64(vec![0]));
        t.write_parquet(&folder.join("metrics.parquet"), &[])
            .unwrap();
        let c = UpstreamOutput {
            stage: "other".into(),
            matrix: BTreeMap::new(),
            dir: folder,
        };
        let parts = vec![
            (&a, read_table(&a, "metrics.parquet").unwrap()),
            (&c, read_table(&c, "metrics.parquet").unwrap()),
        ];
        let err = join(&parts).unwrap_err();
        assert!(
            err.message.contains("other") && err.message.contains("loss"),
            "{err}"
        );
    }

    #[test]
    fn labels_become_typed_columns() {
        assert_eq!(
            typed_column(vec!["1".into(), "20".into()]),
            ColumnData::I64(vec![1, 20])
        );
        assert_eq!(
            typed_column(vec!["0.5".into(), "1".into()]),
            ColumnData::F64(vec![Some(0.5), Some(1.0)])
        );
        assert_eq!(
            typed_column(vec!["deep".into()]),
            ColumnData::Str(vec!["deep".into()])
        );
    }
}
