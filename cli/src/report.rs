//! Text the commands print: durations, times and dates, sizes, aligned columns, the run
//! summary and the plan.

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

/// A Unix time as a UTC date and time, `2025-01-31 23:59:59 UTC`.
pub fn date_time(unix: f64) -> String {
    let seconds = unix.max(0.0).floor() as i64;
    let (year, month, day) = civil_date(seconds.div_euclid(86_400));
    let s = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A count with its noun, plural when it is not one: `1 stage`, `3 stages`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A size in bytes for people: `512 B`, `1.2 kB`, `3.4 MB`.
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1000 {
        format!("{bytes} B")
    } else if b < 1e6 {
        format!("{:.1} kB", b / 1e3)
    } else if b < 1e9 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.2} GB", b / 1e9)
    }
}

/// Rows of cells as aligned columns (two spaces apart), each line indented; the last column
/// is not padded.
pub fn aligned(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            let cell = |r: &Vec<String>| r.get(c).map_or(0, |s| s.chars().count());
            rows.iter().map(cell).max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_owned();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(&format!("{cell:<width$}", width = widths[c]));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Parameters as indented `key: value` lines, the way a pipeline file writes them: mappings
/// nest, lists of plain values stay on one line, other lists get a `-` per item.
pub fn params_text(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_value(value, 0, &mut out);
    out
}

fn write_value(value: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                if is_inline(item) {
                    out.push_str(&format!("{pad}{key}: {}\n", inline(item)));
                } else {
                    out.push_str(&format!("{pad}{key}:\n"));
                    write_value(item, indent + 2, out);
                }
            }
        }
        Value::Array(items) if !is_inline(value) => {
            for item in items {
                if is_inline(item) {
                    out.push_str(&format!("{pad}- {}\n", inline(item)));
                } else {
                    out.push_str(&format!("{pad}-\n"));
                    write_value(item, indent + 2, out);
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", inline(other))),
    }
}

/// Scalars, empty containers, and lists of scalars fit on one line.
fn is_inline(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => map.is_empty(),
        serde_json::Value::Array(items) => items.iter().all(|v| !v.is_object() && !v.is_array()),
        _ => true,
    }
}

fn inline(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) if is_plain(s) => s.clone(),
        serde_json::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// Text that reads unambiguously without quotes.
fn is_plain(s: &str) -> bool {
    let words = ["true", "false", "null", "yes", "no", "on", "off", "~"];
    !s.is_empty()
        && s.parse::<f64>().is_err()
        && !words.contains(&s.to_ascii_lowercase().as_str())
        && s.chars().all(|c| c.is_alphanumeric() || "_-./".contains(c))
}

/// The settings of a run, one short line each: overrides, targets, forced stages.
pub fn run_settings(run: &RunSummary) -> Vec<String> {
    let mut lines: Vec<String> = run.overrides.iter().map(|o| format!("--set {o}")).collect();
    if !run.targets.is_empty() {
        lines.push(format!("stages {}", run.targets.join(" ")));
    }
    lines.extend(run.forced.iter().map(|f| format!("--force {f}")));
    lines
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
    let shown = if verbose {
        slowest.len()
    } else {
        slowest.len().min(5)
    };
    for (name, seconds) in &slowest[..shown] {
        out.push_str(&format!("  ran      {name:<40} {}\n", duration(*seconds)));
    }
    if shown < slowest.len() {
        out.push_str(&format!(
            "  ... and {} more (--verbose lists all)\n",
            slowest.len() - shown
        ));
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
    let width = pipeline
        .stages
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0)
        .min(48);
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
            // A stage that waits for inputs still to be computed but has changes of its own
            // (or never ran) runs whatever its inputs turn out to be.
            Decision::Pending { reasons }
                if reasons
                    .iter()
                    .any(|r| !matches!(r, pipeline_engine::plan::Reason::Waiting { .. })) =>
            {
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
        lines.push_str(format!("  {tag}  {:<width$}  {why}\n", stage.name).trim_end());
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
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(date_time(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date_time(951_782_400.0), "2000-02-29 00:00:00 UTC");
        assert_eq!(date_time(1_767_225_599.9), "2025-12-31 23:59:59 UTC");
    }

    #[test]
    fn sizes_use_decimal_units() {
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_234), "1.2 kB");
        assert_eq!(size(5_600_000), "5.6 MB");
    }

    #[test]
    fn params_read_like_a_pipeline_file() {
        let value = serde_json::json!({
            "epochs": 3,
            "model": {"layers": [{"conv": {"filters": 8}}, "relu"]},
            "optimizer": {"adam": {"betas": [0.9, 0.999], "lr": 0.001}},
            "name": "1e3",
            "split": "test",
        });
        let expected = "epochs: 3
model:
  layers:
    -
      conv:
        filters: 8
    - relu
name: \"1e3\"
optimizer:
  adam:
    betas: [0.9, 0.999]
    lr: 0.001
split: test
";
        assert_eq!(params_text(&value), expected);
    }

    #[test]
    fn columns_line_up() {
        let rows = vec![
            vec!["a".to_owned(), "long".to_owned(), "x".to_owned()],
            vec!["bbb".to_owned(), "c".to_owned(), "y".to_owned()],
        ];
        assert_eq!(aligned(&rows, "  "), "  a    long  x\n  bbb  c     y\n");
    }
}
