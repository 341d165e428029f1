//! `pipeline show`: what a stage left in its output folder: the files with their sizes, each
//! Parquet table's schema and first rows, and the parameters that produced them.

use std::fmt::Write;
use std::path::Path;

use pipeline_engine::Workspace;
use pipeline_engine::plan::stage_indices;
use pipeline_engine::record::RunSummary;
use pipeline_engine::spec::{Pipeline, StageSpec};
use pipeline_engine::state::PipelineState;
use pipeline_reports::summary::number;
use pipeline_reports::{ColumnData, Table, read_schema};

use crate::args::{Cli, ShowArgs};
use crate::failure::Failure;
use crate::report::{aligned, duration, params_text, size};
use crate::results::{self, relative};
use crate::session;

/// Longest text shown in a table cell.
const CELL_CHARS: usize = 32;

/// What a stage is shown with.
struct Context<'a> {
    workspace: &'a Workspace,
    pipeline: &'a Pipeline,
    state: PipelineState,
    last_run: Option<RunSummary>,
    rows: usize,
}

/// Runs the command.
pub fn execute(cli: &Cli, args: &ShowArgs) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(&args.pipeline, &registry)?;
    let workspace = session::workspace(cli)?;
    let indices = stage_indices(&pipeline, &args.stage).map_err(Failure::Input)?;
    let context = Context {
        workspace: &workspace,
        pipeline: &pipeline,
        state: PipelineState::load(&workspace.state_file(&pipeline.name)),
        last_run: results::runs_newest_first(&workspace, &pipeline.name)
            .into_iter()
            .next(),
        rows: args.rows,
    };
    let sections: Vec<String> = indices
        .iter()
        .map(|&i| describe(&context, &pipeline.stages[i]))
        .collect();
    print!("{}", sections.join("\n"));
    Ok(())
}

fn describe(cx: &Context<'_>, stage: &StageSpec) -> String {
    let dir = cx.workspace.output_dir(&cx.pipeline.name, stage);
    let mut out = format!("{} ({})\n", stage.name, stage.kind);
    let info = results::stage_info(&dir);
    let mut facts = vec![vec!["folder".to_owned(), relative(cx.workspace, &dir)]];
    if let Some(key) = info
        .as_ref()
        .and_then(|i| i.get("key"))
        .and_then(|k| k.as_str())
    {
        facts.push(vec!["key".to_owned(), key.to_owned()]);
    }
    facts.push(vec!["last run".to_owned(), last_run(cx, stage)]);
    out.push_str(&aligned(&facts, ""));
    out.push_str(&params(cx, stage, info.as_ref()));
    let files = results::files(&dir);
    if files.is_empty() {
        out.push_str("no outputs yet: `pipeline run` the stage first\n");
        return out;
    }
    out.push_str("files:\n");
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|(name, bytes)| vec![name.clone(), size(*bytes)])
        .collect();
    out.push_str(&aligned(&rows, "  "));
    for (name, _) in files.iter().filter(|(n, _)| n.ends_with(".parquet")) {
        out.push_str(&table(&dir.join(name), name, cx.rows));
    }
    out
}

fn last_run(cx: &Context<'_>, stage: &StageSpec) -> String {
    let found = cx
        .last_run
        .as_ref()
        .and_then(|r| r.results.iter().find(|x| x.name == stage.name));
    let Some(result) = found else {
        return "not part of the newest run".to_owned();
    };
    let (what, seconds, detail) = results::outcome_words(result);
    let mut text = what.to_owned();
    if let Some(s) = seconds {
        let _ = write!(text, " in {}", duration(s));
    }
    if let Some(d) = detail {
        let _ = write!(text, ": {d}");
    }
    text
}

/// The parameters of the outputs in the folder, else of the last success, else of the file.
fn params(cx: &Context<'_>, stage: &StageSpec, info: Option<&serde_json::Value>) -> String {
    let (source, value) = match info.and_then(|i| i.get("params")) {
        Some(p) => ("_stage.json", p.clone()),
        None => match cx.state.stages.get(&stage.name) {
            Some(record) => ("the last successful run", record.material.params.clone()),
            None => ("the pipeline file; not run yet", stage.params.clone()),
        },
    };
    let indented: Vec<String> = params_text(&value)
        .lines()
        .map(|l| format!("  {l}"))
        .collect();
    format!("parameters (from {source}):\n{}\n", indented.join("\n"))
}

/// A table's schema and first rows.
fn table(path: &Path, name: &str, rows: usize) -> String {
    let schema = match read_schema(path) {
        Ok(s) => s,
        Err(e) => return format!("{name}: cannot read: {e}\n"),
    };
    let mut out = format!(
        "{name}: {} rows, {} columns\n",
        schema.rows,
        schema.columns.len()
    );
    let described: Vec<Vec<String>> = schema
        .columns
        .iter()
        .zip(&schema.nullable)
        .map(|((column, ty), &nullable)| {
            vec![
                column.clone(),
                if nullable {
                    format!("{ty} (nullable)")
                } else {
                    ty.clone()
                },
            ]
        })
        .collect();
    out.push_str(&aligned(&described, "  "));
    if rows == 0 || schema.rows == 0 {
        return out;
    }
    match Table::read_parquet(path) {
        Ok(t) => {
            let _ = writeln!(out, "  first {} rows:", rows.min(t.num_rows()));
            out.push_str(&aligned(&first_rows(&t, rows), "    "));
        }
        Err(e) => {
            let _ = writeln!(out, "  cannot read the rows: {e}");
        }
    }
    out
}

/// A header row and up to `n` rows of cells.
fn first_rows(table: &Table, n: usize) -> Vec<Vec<String>> {
    let mut out = vec![
        table
            .names()
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>(),
    ];
    for row in 0..table.num_rows().min(n) {
        out.push(table.columns().map(|(_, data)| cell(data, row)).collect());
    }
    out
}

fn cell(data: &ColumnData, row: usize) -> String {
    let text = match data {
        ColumnData::I64(v) => v.get(row).map(ToString::to_string),
        ColumnData::F64(v) => v
            .get(row)
            .map(|x| x.map_or_else(|| "null".to_owned(), number)),
        ColumnData::Str(v) => v.get(row).cloned(),
        ColumnData::Bool(v) => v.get(row).map(ToString::to_string),
    }
    .unwrap_or_default();
    if text.chars().count() > CELL_CHARS {
        let head: String = text.chars().take(CELL_CHARS - 3).collect();
        format!("{head}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_nulls_and_shorten_long_text() {
        let t = Table::new()
            .with_column("loss", ColumnData::F64(vec![Some(0.25), None]))
            .with_column("name", ColumnData::Str(vec!["x".repeat(40), "y".into()]));
        let rows = first_rows(&t, 5);
        assert_eq!(rows[0], ["loss", "name"]);
        assert_eq!(rows[1][0], "0.2500");
        assert_eq!(rows[1][1], format!("{}...", "x".repeat(29)));
        assert_eq!(rows[2], ["null", "y"]);
    }
}
