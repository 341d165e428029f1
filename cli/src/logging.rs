//! Logs through `tracing`, filtered by `RUST_LOG` (default: warnings; `--verbose`: debug for
//! `pipeline`'s own crates). While progress bars own the terminal, log lines are printed above
//! them instead of through them.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use indicatif::MultiProgress;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The progress display log lines must step around, once there is one.
static BARS: OnceLock<Arc<MultiProgress>> = OnceLock::new();

/// Routes log lines around the given progress display from now on.
pub fn around_bars(bars: Arc<MultiProgress>) {
    let _ = BARS.set(bars);
}

/// Installs the subscriber.
pub fn init(verbose: bool, quiet: bool) {
    // A directive matches every target that starts with it: `pipeline` covers this binary
    // (whose crate is `pipeline`, not `pipeline_cli`) and every `pipeline_*` library.
    let default = if verbose {
        "warn,pipeline=debug"
    } else if quiet {
        "error"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(AroundBars)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

struct AroundBars;

/// Buffers one log line and prints it on drop, suspending the bars while it does.
struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let emit = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match BARS.get() {
            Some(bars) if !bars.is_hidden() => bars.suspend(emit),
            _ => emit(),
        }
    }
}

impl<'a> MakeWriter<'a> for AroundBars {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(Vec::new())
    }
}
