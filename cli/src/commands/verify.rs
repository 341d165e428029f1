//! `pipeline verify`: re-hash the store and report (or repair) damage.

use std::time::Instant;

use pipeline_cache::verify::verify;

use crate::args::{Cli, VerifyArgs};
use crate::failure::Failure;
use crate::{report, session};

/// Runs the command.
pub fn execute(cli: &Cli, args: &VerifyArgs) -> Result<(), Failure> {
    let workspace = session::workspace(cli)?;
    let started = Instant::now();
    let threads = args.threads.unwrap_or_else(session::cores);
    let found = verify(workspace.store(), threads, args.repair)?;
    println!(
        "checked {} objects ({:.1} MB) and {} manifests in {}",
        found.objects,
        found.bytes as f64 / 1e6,
        found.manifests,
        report::duration(started.elapsed().as_secs_f64())
    );
    for path in &found.damaged {
        println!("  damaged object {}", path.display());
    }
    for path in &found.broken_manifests {
        println!(
            "  stage entry {} names a missing or damaged object",
            path.display()
        );
    }
    if found.is_clean() {
        println!("the store is sound");
        return Ok(());
    }
    if args.repair {
        println!("moved the damage aside; the affected stages run again on the next run");
        Ok(())
    } else {
        Err(Failure::Environment {
            message: format!(
                "{} damaged objects in the store",
                found.damaged.len() + found.broken_manifests.len()
            ),
            hint: Some(
                "`pipeline verify --repair` moves them aside so the stages that made them run again"
                    .into(),
            ),
            causes: Vec::new(),
        })
    }
}
