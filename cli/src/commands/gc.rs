//! `pipeline gc`: remove from the store what no pipeline's current state (in any workspace
//! that uses the store) and none of the last N runs refers to.

use std::collections::BTreeSet;
use std::fs::TryLockError;

use pipeline_cache::gc::{clean_staging, collect};
use pipeline_engine::gc::roots;

use crate::args::{Cli, GcArgs};
use crate::failure::Failure;
use crate::session;

/// Runs the command.
pub fn execute(cli: &Cli, args: &GcArgs) -> Result<(), Failure> {
    let workspace = session::workspace(cli)?;
    let lock_path = workspace.store().layout().run_lock();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Failure::environment("cannot open the store's run lock", &e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            eprintln!("a run is using the store; waiting for it to finish (Ctrl-C to give up)");
            lock.lock()
                .map_err(|e| Failure::environment("cannot lock the store", &e))?;
        }
        Err(TryLockError::Error(e)) => {
            return Err(Failure::environment("cannot lock the store", &e));
        }
    }
    let found = roots(&workspace, args.keep_runs);
    for gone in &found.missing {
        eprintln!(
            "note: workspace {} is gone; its results are not kept",
            gone.display()
        );
    }
    let keys: BTreeSet<_> = found.keys;
    let report = collect(workspace.store(), &keys, args.dry_run)?;
    let staging = if args.dry_run {
        0
    } else {
        clean_staging(workspace.store())?
    };
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if args.dry_run || cli.verbose {
        for path in report
            .removed_manifests
            .iter()
            .chain(&report.removed_objects)
        {
            println!("{verb} {}", path.display());
        }
    }
    println!(
        "{verb} {} stage results and {} objects ({:.1} MB); kept {} stage results of {} workspace(s){}",
        report.removed_manifests.len(),
        report.removed_objects.len(),
        report.freed_bytes as f64 / 1e6,
        report.kept_manifests,
        found.workspaces.len(),
        if staging > 0 {
            format!("; removed {staging} staging folders of killed runs")
        } else {
            String::new()
        }
    );
    Ok(())
}
