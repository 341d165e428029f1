//! Shows a run as it goes: on a terminal, an overall bar and one line per running stage
//! (epoch, loss, ETA); otherwise (stderr not a terminal, `TERM=dumb`, `CI` set, or with
//! `--verbose`) plain lines, one per event, with progress lines (and their ETA) at most every
//! few seconds per stage so that logs of long runs stay short. `--quiet` keeps only failures
//! and notices. Colours follow `NO_COLOR` (the bar's styles through the console crate).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipeline_engine::events::{Observer, RunEvent};
use pipeline_engine::stage::StageEvent;

/// How often a stage's progress is printed in line mode.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// The run's display.
pub struct Progress {
    bars: Option<Bars>,
    verbose: bool,
    quiet: bool,
    last_line: Mutex<HashMap<String, Instant>>,
    /// When each stage reported progress first, and how far it was then (its pace since
    /// then gives the ETA; the time before includes start-up and data loading).
    first_progress: Mutex<HashMap<String, (Instant, u64)>>,
}

struct Bars {
    multi: Arc<MultiProgress>,
    overall: ProgressBar,
    stages: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    /// Bars when stderr is a terminal (and not quiet or verbose), lines otherwise.
    pub fn new(quiet: bool, verbose: bool) -> Self {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let tty = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() && !dumb;
        let bars = (tty && !quiet && !verbose).then(|| {
            let multi = Arc::new(MultiProgress::with_draw_target(
                ProgressDrawTarget::stderr_with_hz(8),
            ));
            crate::logging::around_bars(Arc::clone(&multi));
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} [{bar:30}] {pos}/{len} stages  {elapsed}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            overall.set_prefix("pipeline");
            Bars {
                multi,
                overall,
                stages: Mutex::new(HashMap::new()),
            }
        });
        Self {
            bars,
            verbose,
            quiet,
            last_line: Mutex::new(HashMap::new()),
            first_progress: Mutex::new(HashMap::new()),
        }
    }

    /// Prints a line above the bars (or plainly).
    pub fn line(&self, text: &str) {
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// Removes the bars before the summary is printed.
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.overall.finish_and_clear();
            let _ = b.multi.clear();
        }
    }

    fn stage_bar(&self, stage: &str) -> Option<ProgressBar> {
        let bars = self.bars.as_ref()?;
        let mut map = bars.stages.lock().ok()?;
        Some(
            map.entry(stage.to_owned())
                .or_insert_with(|| {
                    let bar = bars.multi.insert_before(&bars.overall, ProgressBar::new(0));
                    bar.set_style(
                        // Position and ETA before the message, so that a narrow terminal cuts the
                        // tail of the message (the losses), never the ETA.
                        ProgressStyle::with_template(
                            "  {prefix:28!} {pos:>5}/{len:<5} {bar:8} ETA {eta:<4} {wide_msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(stage.to_owned());
                    bar
                })
                .clone(),
        )
    }

    fn end_stage(&self, stage: &str) {
        if let Some(bars) = &self.bars {
            if let Some(bar) = bars.stages.lock().ok().and_then(|mut m| m.remove(stage)) {
                bar.finish_and_clear();
                bars.multi.remove(&bar);
            }
            bars.overall.inc(1);
        }
    }

    fn progress(&self, stage: &str, event: &StageEvent) {
        match event {
            StageEvent::Progress {
                done,
                total,
                unit,
                message,
            } => {
                if let Some(bar) = self.stage_bar(stage) {
                    bar.set_length(*total);
                    bar.set_position(*done);
                    bar.set_message(message.clone());
                } else if !self.quiet {
                    let eta = self.eta(stage, *done, *total);
                    if !self.due(stage, done == total) {
                        return;
                    }
                    let eta = eta.map(|e| format!(" (ETA {e})")).unwrap_or_default();
                    eprintln!("  {stage}: {unit} {done}/{total} {message}{eta}");
                }
            }
            StageEvent::Note { message } => {
                if !self.quiet {
                    self.line(&format!("  {stage}: {message}"));
                }
            }
        }
    }

    /// The time left at the stage's pace since its first progress report.
    fn eta(&self, stage: &str, done: u64, total: u64) -> Option<String> {
        let mut first = self.first_progress.lock().ok()?;
        let (since, from) = *first
            .entry(stage.to_owned())
            .or_insert((Instant::now(), done));
        if done <= from || done >= total {
            return None;
        }
        let per_unit = since.elapsed().as_secs_f64() / (done - from) as f64;
        Some(crate::report::duration(per_unit * (total - done) as f64))
    }

    fn due(&self, stage: &str, last: bool) -> bool {
        let Ok(mut map) = self.last_line.lock() else {
            return true;
        };
        let now = Instant::now();
        let due = last
            || map
                .get(stage)
                .is_none_or(|t| now.duration_since(*t) >= LINE_EVERY);
        if due {
            map.insert(stage.to_owned(), now);
        }
        due
    }
}

impl Observer for Progress {
    fn event(&self, event: RunEvent<'_>) {
        match event {
            RunEvent::Started { stages } => {
                if let Some(b) = &self.bars {
                    b.overall.set_length(stages as u64);
                }
            }
            RunEvent::Cached {
                stage,
                by_other_run,
            } => {
                if let Some(b) = &self.bars {
                    b.overall.inc(1);
                }
                if by_other_run && !self.quiet {
                    self.line(&format!(
                        "cached   {stage} (computed meanwhile, by a stage of the same key or \
                         another run)"
                    ));
                } else if self.verbose {
                    self.line(&format!("cached   {stage}"));
                }
            }
            RunEvent::Running {
                stage,
                threads,
                reasons,
            } => {
                if let Some(bar) = self.stage_bar(stage) {
                    bar.set_message("starting");
                }
                if self.bars.is_none() && !self.quiet {
                    let why: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                    let threads = if threads == 1 {
                        "1 thread".to_owned()
                    } else {
                        format!("{threads} threads")
                    };
                    eprintln!("run      {stage} ({threads}): {}", why.join("; "));
                }
            }
            RunEvent::Waiting { stage, holder } => {
                let who = holder.map_or_else(
                    || "another run".to_owned(),
                    |h| {
                        format!(
                            "process {} on {} (since {})",
                            h.pid,
                            h.host,
                            crate::report::clock(h.since)
                        )
                    },
                );
                self.line(&format!(
                    "waiting  {stage}: {who} is computing the same stage; its result will be reused"
                ));
            }
            RunEvent::TookOver { stage, holder } => {
                self.line(&format!(
                    "notice   {stage}: process {} on {} was computing this stage and is gone; \
                     taking over",
                    holder.pid, holder.host
                ));
            }
            RunEvent::Progress { stage, event } => self.progress(stage, event),
            RunEvent::Finished { stage, seconds } => {
                self.end_stage(stage);
                if !self.quiet {
                    self.line(&format!(
                        "done     {stage} ({})",
                        crate::report::duration(seconds)
                    ));
                }
            }
            // A stage the user stopped did not fail: the summary counts it as skipped.
            RunEvent::Failed { stage, error }
                if error.class == pipeline_engine::stage::ErrorClass::Cancelled =>
            {
                self.end_stage(stage);
                self.line(&format!("stopped  {stage}: {error}"));
            }
            RunEvent::Failed { stage, error } => {
                self.end_stage(stage);
                self.line(&format!("FAILED   {stage}: {error}"));
            }
            RunEvent::Skipped { stage, because } => {
                if let Some(b) = &self.bars {
                    b.overall.inc(1);
                }
                if !self.quiet {
                    self.line(&format!("skipped  {stage}: {because}"));
                }
            }
            RunEvent::Recomputing { stage } => {
                self.line(&format!(
                    "notice   {stage}: its stored outputs are damaged; running it again"
                ));
            }
        }
    }
}
