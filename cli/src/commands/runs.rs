//! `pipeline runs`: the run history of a pipeline in this workspace, newest first: when each
//! run started (UTC), how long it took, how many stages ran, were cached, failed or were
//! skipped, and with which overrides, targets and forced stages.

use pipeline_engine::record::RunSummary;

use crate::args::{Cli, RunsArgs};
use crate::failure::Failure;
use crate::report::{aligned, count, date_time, duration, run_settings};
use crate::results::{self, relative};
use crate::session;

/// Runs the command.
pub fn execute(cli: &Cli, args: &RunsArgs) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(&args.pipeline, &registry)?;
    let workspace = session::workspace(cli)?;
    let runs = results::runs_newest_first(&workspace, &pipeline.name);
    let dir = relative(&workspace, &workspace.runs_dir(&pipeline.name));
    if runs.is_empty() {
        println!("{}: no runs recorded in {dir}", pipeline.name);
        return Ok(());
    }
    let shown = args.last.unwrap_or(runs.len()).min(runs.len());
    println!(
        "{}: {} recorded in {dir}, newest first",
        pipeline.name,
        count(runs.len(), "run")
    );
    print!("{}", table(&runs[..shown]));
    if shown < runs.len() {
        println!("  ... and {} more", count(runs.len() - shown, "older run"));
    }
    Ok(())
}

/// One line per run under a header; K counts back from the newest.
fn table(runs: &[RunSummary]) -> String {
    let header = [
        "K", "started", "took", "ran", "cached", "failed", "skipped", "settings",
    ];
    let mut rows = vec![header.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()];
    for (k, run) in runs.iter().enumerate() {
        let (ran, cached, failed, skipped) = run.counts();
        let mut settings = run_settings(run).join(" ");
        if run.cancelled {
            settings = format!("(stopped) {settings}");
        }
        rows.push(vec![
            k.to_string(),
            date_time(run.started_unix),
            duration(run.seconds),
            ran.to_string(),
            cached.to_string(),
            failed.to_string(),
            skipped.to_string(),
            settings,
        ]);
    }
    aligned(&rows, "  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_engine::record::{Outcome, StageResult};

    #[test]
    fn a_run_is_one_line_with_its_settings() {
        let run = RunSummary {
            pipeline: "p".into(),
            file: "p.yaml".into(),
            overrides: vec!["lr=0.1".into()],
            targets: vec!["fit".into()],
            forced: vec!["data".into()],
            jobs: 2,
            threads: 1,
            started_unix: 86_400.0,
            seconds: 2.5,
            cancelled: false,
            results: vec![
                StageResult {
                    name: "data".into(),
                    key: None,
                    outcome: Outcome::Ran { seconds: 1.0 },
                },
                StageResult {
                    name: "fit".into(),
                    key: None,
                    outcome: Outcome::Cached,
                },
            ],
        };
        let text = table(&[run]);
        let line = text.lines().nth(1).unwrap();
        assert_eq!(
            line,
            "  0  1970-01-02 00:00:00 UTC  2.5 s  1    1       0       0        --set lr=0.1 stages fit --force data"
        );
    }
}
