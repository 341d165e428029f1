//! Text the commands print: durations, times of day, the run summary and the plan.

use pipeline_engine::plan::Decision;
use pipeline_engine::record::{Outcome, RunSummary};
use pipeline_engine::spec::Pipeline;

/// A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else {
        let whole = seconds.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// A Unix time as UTC `HH:MM:SS`.
pub fn clock(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// The summary after a run: counts, times, failures with their causes, where outputs are.
pub fn summary(run: &RunSummary, outputs: &std::path::Path, verbose: bool) -> String {
    let (ran, cached, failed, skipped) = run.counts();
    let mut out = format!(
        "{}: ran {ran}, cached {cached}, failed {failed}, skipped {skipped} in {}{}\n",
        run.pipeline,
        duration(run.seconds),
        if run.cancelled { " (stopped)" } else { "" }
    );
    let mut slowest: Vec<(&str, f64)> = run
        .results
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Ran { seconds } => Some((r.name.as_str(), seconds)),
            _ => None,
        })
        .collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let shown = if verbose { slowest.len() } else { slowest.len().min(5) };
    for (name, seconds) in &slowest[..shown] {
        out.push_str(&format!("  ran      {name:<40} {}\n", duration(*seconds)));
    }
    if shown < slowest.len() {
        out.push_str(&format!("  ... and {} more (--verbose lists all)\n", slowest.len() - shown));
    }
    for r in &run.results {
        if let Outcome::Failed { error, .. } = &r.outcome {
            out.push_str(&format!("  FAILED   {}: {}\n", r.name, error.message));
            for cause in &error.causes {
                out.push_str(&format!("           caused by: {cause}\n"));
            }
        }
    }
    if ran + cached > 0 {
        out.push_str(&format!("outputs in {}\n", outputs.display()));
    }
    out
}

/// The plan: one line per stage with its decision and reasons.
pub fn plan(pipeline: &Pipeline, decisions: &[Option<Decision>]) -> String {
    let width = pipeline.stages.iter().map(|s| s.name.len()).max().unwrap_or(0).min(48);
    let mut counts = (0, 0, 0);
    let mut lines = String::new();
    for (stage, decision) in pipeline.stages.iter().zip(decisions) {
        let Some(decision) = decision else { continue };
        let (tag, why) = match decision {
            Decision::Cached { .. } => {
                counts.0 += 1;
                ("cached ", String::new())
            }
            Decision::Run { reasons, .. } => {
                counts.1 += 1;
                ("run    ", join(reasons))
            }
            Decision::Pending { reasons } => {
                counts.2 += 1;
                ("pending", join(reasons))
            }
            Decision::Impossible { message } => {
                counts.1 += 1;
                ("cannot ", message.clone())
            }
        };
        lines.push_str(&format!("  {tag}  {:<width$}  {why}\n", stage.name).trim_end().to_owned());
        lines.push('\n');
    }
    format!(
        "{} ({}): {} cached, {} to run, {} waiting on stages that run\n{lines}",
        pipeline.name,
        pipeline.file.display(),
        counts.0,
        counts.1,
        counts.2
    )
}

fn join(reasons: &[pipeline_engine::plan::Reason]) -> String {
    reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
