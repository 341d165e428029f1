//! The HTML report of a pipeline: gathers what the page shows from the workspace (each
//! stage's `_stage.json`, figures and metrics table in its output folder, the newest run
//! record) and writes `outputs/<pipeline>/report.html`. The page itself is rendered by
//! `pipeline_reports::html` from plain data.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pipeline_engine::Workspace;
use pipeline_engine::record::{RunSummary, now_unix};
use pipeline_engine::spec::{Pipeline, StageSpec};
use pipeline_engine::state::PipelineState;
use pipeline_reports::html::{Figure, Image, LastRun, Report, StageOutcome, StageView, render};

use crate::report::{date_time, duration, params_text, run_settings};
use crate::results::{self, METRICS_FILE, relative};

/// The file name of the report in the pipeline's output folder.
pub const REPORT_FILE: &str = "report.html";

/// A written report.
pub struct Written {
    /// Where.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Seconds spent gathering, rendering and writing it.
    pub seconds: f64,
}

/// Gathers, renders and writes the report of `pipeline`.
pub fn write(workspace: &Workspace, pipeline: &Pipeline) -> std::io::Result<Written> {
    let started = Instant::now();
    let html = render(&gather(workspace, pipeline));
    let path = workspace
        .root()
        .join("outputs")
        .join(&pipeline.name)
        .join(REPORT_FILE);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    pipeline_engine::atomic::write(&path, html.as_bytes())?;
    Ok(Written {
        path,
        bytes: html.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What the page shows.
fn gather(workspace: &Workspace, pipeline: &Pipeline) -> Report {
    let state = PipelineState::load(&workspace.state_file(&pipeline.name));
    let run = results::runs_newest_first(workspace, &pipeline.name)
        .into_iter()
        .next();
    let stages = pipeline
        .stages
        .iter()
        .map(|stage| stage_view(workspace, pipeline, stage, &state, run.as_ref()))
        .collect();
    Report {
        pipeline: pipeline.name.clone(),
        description: pipeline.description.clone(),
        file: pipeline.file.display().to_string(),
        generated: date_time(now_unix()),
        last_run: run.as_ref().map(last_run),
        stages,
    }
}

fn last_run(run: &RunSummary) -> LastRun {
    let (ran, cached, failed, skipped) = run.counts();
    LastRun {
        started: date_time(run.started_unix),
        took: duration(run.seconds),
        ran,
        cached,
        failed,
        skipped,
        stopped: run.cancelled,
        settings: run_settings(run),
    }
}

fn stage_view(
    workspace: &Workspace,
    pipeline: &Pipeline,
    stage: &StageSpec,
    state: &PipelineState,
    run: Option<&RunSummary>,
) -> StageView {
    let dir = workspace.output_dir(&pipeline.name, stage);
    let mut view = StageView {
        name: stage.name.clone(),
        kind: stage.kind.clone(),
        folder: relative(workspace, &dir),
        inputs: stage
            .inputs
            .iter()
            .map(|(slot, ups)| {
                (
                    slot.clone(),
                    ups.iter()
                        .map(|&u| pipeline.stages[u].name.clone())
                        .collect(),
                )
            })
            .collect(),
        outcome: run
            .and_then(|r| r.results.iter().find(|x| x.name == stage.name))
            .map(outcome),
        ..StageView::default()
    };
    describe_outputs(&dir, stage, state, &mut view);
    view
}

fn outcome(result: &pipeline_engine::record::StageResult) -> StageOutcome {
    let (what, seconds, detail) = results::outcome_words(result);
    StageOutcome {
        what: what.to_owned(),
        time: seconds.map(duration),
        detail,
    }
}

/// Key, parameters, metrics and figures of the outputs in `dir`, or notes saying why not.
fn describe_outputs(dir: &Path, stage: &StageSpec, state: &PipelineState, view: &mut StageView) {
    let Some(info) = results::stage_info(dir) else {
        match state.stages.get(&stage.name) {
            Some(record) => {
                view.notes.push(
                    "its output folder is missing or incomplete; parameters of its last success"
                        .into(),
                );
                view.key = Some(record.key.to_string());
                view.params = Some(params_text(&record.material.params));
            }
            None => view.notes.push("no outputs yet".into()),
        }
        return;
    };
    view.key = info.get("key").and_then(|k| k.as_str()).map(str::to_owned);
    view.params = info.get("params").map(params_text);
    let metrics = dir.join(METRICS_FILE);
    if metrics.is_file() {
        match results::final_metrics(&metrics) {
            Ok(found) => view.metrics = found,
            Err(e) => view.notes.push(format!("cannot read {METRICS_FILE}: {e}")),
        }
    }
    view.figures = figures(dir, &mut view.notes);
}

/// The figures in a stage's folder: every PNG, and every SVG that has no PNG beside it.
fn figures(dir: &Path, notes: &mut Vec<String>) -> Vec<Figure> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let has = |p: &Path, ext: &str| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext));
    let mut out = Vec::new();
    for path in &paths {
        let png = has(path, "png");
        let lone_svg = has(path, "svg") && !path.with_extension("png").is_file();
        if !png && !lone_svg {
            continue;
        }
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read(path) {
            Ok(bytes) => {
                let image = if png {
                    Image::Png(bytes)
                } else {
                    Image::Svg(bytes)
                };
                out.push(Figure { file, image });
            }
            Err(e) => notes.push(format!("cannot read {file}: {e}")),
        }
    }
    out
}
