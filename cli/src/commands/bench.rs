//! `pipeline bench`: times fixed training and analysis workloads with this project's code
//! (`pipeline-worker bench`) and, where a Python with PyTorch is at hand, the same workloads
//! in plain PyTorch (the reference script), in one command so that both see the same machine
//! load, and prints the ratios side by side. Also the ratio of a sweep over seeds trained as
//! one batch to the same seeds trained one at a time.
//!
//! By default both sides run under the same allocator settings (glibc's mmap and trim
//! thresholds raised to 1e9, as `pipeline run` sets them for its workers), so that the
//! comparison is of the computation, not of `malloc`; `--reference-default-allocator` runs
//! the reference as a plain script runs instead. The header says which.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::args::BenchArgs;
use crate::failure::Failure;
use crate::session;

/// glibc's allocator settings both sides run under.
const ALLOCATOR: [(&str, &str); 2] = [
    ("MALLOC_MMAP_THRESHOLD_", "1000000000"),
    ("MALLOC_TRIM_THRESHOLD_", "1000000000"),
];

/// Where the reference script and its Python are looked for when not given.
const REFERENCE_SCRIPT: &str = "../shared/bench/torch_ref.py";
const REFERENCE_PYTHON: &str = ".cache/torch-ref/bin/python";

/// The workloads of the batching ratios: a batch of seeds, and the seeds one at a time as
/// `train` runs them now (the host trainer) and as it ran them before (libtorch's loop).
const BATCHED: &str = "sinc_seeds_batched";
const ALONE: &str = "sinc_seeds_alone";
const ALONE_LIBTORCH: &str = "sinc_seeds_alone_libtorch";

/// The suffix of a workload timed through libtorch's training loop instead of the host
/// trainer; such a workload is compared with the reference's workload of the bare name.
const LIBTORCH: &str = "_libtorch";

/// One line of timings: seconds and units of work.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Timing {
    seconds: f64,
    units: f64,
}

impl Timing {
    fn rate(self) -> f64 {
        self.units / self.seconds.max(1e-9)
    }
}

/// Runs the benchmarks and prints the table.
pub fn execute(args: &BenchArgs) -> Result<(), Failure> {
    if args.threads == 0 {
        return Err(Failure::Input("--threads must be at least 1".into()));
    }
    let worker = session::worker()?;
    let known = workloads(&worker)?;
    if let Some(unknown) = args.only.iter().find(|o| !known.contains(o)) {
        return Err(Failure::Input(format!(
            "no workload `{unknown}`; known: {}",
            known.join(", ")
        )));
    }
    let allocator = ALLOCATOR
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let sides = if args.reference_default_allocator {
        "this project with {allocator}, the reference with glibc's defaults"
    } else {
        "both sides with {allocator}"
    };
    println!(
        "pipeline bench: {} intra-op thread(s) on {} core(s); {}",
        args.threads,
        session::cores(),
        sides.replace("{allocator}", &allocator)
    );
    let reference = reference(args);
    let mut only = args.only.clone();
    if only.iter().any(|o| o == BATCHED) {
        for alone in [ALONE, ALONE_LIBTORCH] {
            if !only.iter().any(|o| o == alone) {
                only.push(alone.to_owned());
            }
        }
    }
    let mut ours_cmd = Command::new(&worker);
    ours_cmd
        .arg("bench")
        .arg("--threads")
        .arg(args.threads.to_string())
        .arg("--only")
        .arg(only.join(","));
    let ours = timings(ours_cmd, "pipeline-worker bench", true)?;
    let theirs = match &reference {
        Some((python, script)) => {
            let names: Vec<&String> = ours.keys().collect();
            let mut cmd = Command::new(python);
            cmd.arg(script)
                .arg("--threads")
                .arg(args.threads.to_string());
            // The reference knows its own workloads only; ask for those it has.
            let known = reference_workloads(script);
            let mut asked: Vec<&str> = names
                .iter()
                .map(|n| n.strip_suffix(LIBTORCH).unwrap_or(n))
                .filter(|n| known.iter().any(|k| k == n))
                .collect();
            asked.dedup();
            if asked.is_empty() {
                BTreeMap::new()
            } else {
                cmd.arg("--only").arg(asked.join(","));
                timings(
                    cmd,
                    "the PyTorch reference",
                    !args.reference_default_allocator,
                )?
            }
        }
        None => BTreeMap::new(),
    };
    print_table(&ours, &theirs, reference.as_ref());
    Ok(())
}

/// The workload names `pipeline-worker bench --list` gives.
fn workloads(worker: &Path) -> Result<Vec<String>, Failure> {
    let output = Command::new(worker)
        .args(["bench", "--list"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::environment("cannot start pipeline-worker", &e))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect())
}

/// The Python and script of the reference, if both are there. The script is looked for
/// next to the current folder and next to the repository the binary was built in
/// (`<repo>/target/release/pipeline` -> `<repo>/../shared/bench`).
fn reference(args: &BenchArgs) -> Option<(PathBuf, PathBuf)> {
    let beside_repo = std::env::current_exe().ok().and_then(|exe| {
        let repo = exe.parent()?.parent()?.parent()?;
        Some(repo.join(REFERENCE_SCRIPT))
    });
    let script = args.reference.clone().unwrap_or_else(|| {
        [Some(PathBuf::from(REFERENCE_SCRIPT)), beside_repo]
            .into_iter()
            .flatten()
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(REFERENCE_SCRIPT))
    });
    let python = args.python.clone().or_else(|| {
        let home = std::env::var_os("HOME")?;
        let path = Path::new(&home).join(REFERENCE_PYTHON);
        path.exists().then_some(path)
    });
    match python {
        Some(python) if script.is_file() => Some((python, script)),
        _ => None,
    }
}

/// The workload names the reference script defines (its `WORKLOADS` keys).
fn reference_workloads(script: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(script).unwrap_or_default();
    let Some(start) = text.find("WORKLOADS = {") else {
        return Vec::new();
    };
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('}'))
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Runs `cmd` (under this project's allocator settings when `tuned`) and reads its
/// `name<TAB>seconds<TAB>units<TAB>rate` lines; what it says on stderr is printed above the
/// table, or becomes the error's causes if it fails.
fn timings(mut cmd: Command, what: &str, tuned: bool) -> Result<BTreeMap<String, Timing>, Failure> {
    for (k, v) in ALLOCATOR {
        if tuned {
            cmd.env(k, v);
        } else {
            cmd.env_remove(k);
        }
    }
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::environment(format!("cannot start {what}"), &e))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(Failure::Environment {
            message: format!("{what} failed ({})", output.status),
            hint: None,
            causes: stderr.lines().map(str::to_owned).collect(),
        });
    }
    // What the side says of itself (the reference: its torch version and threads).
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("{what}: {}", line.trim_start_matches("# "));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?.to_owned();
            let seconds = fields.next()?.parse().ok()?;
            let units = fields.next()?.parse().ok()?;
            Some((name, Timing { seconds, units }))
        })
        .collect())
}

fn print_table(
    ours: &BTreeMap<String, Timing>,
    theirs: &BTreeMap<String, Timing>,
    reference: Option<&(PathBuf, PathBuf)>,
) {
    match reference {
        Some((python, script)) => println!(
            "reference: {} {} (plain PyTorch from Python)",
            python.display(),
            script.display()
        ),
        None => println!(
            "reference: none (give --python and --reference, or install PyTorch as \
             ../shared/bench/README.md says); only this project's rates are shown"
        ),
    }
    println!();
    println!(
        "{:<28} {:>16} {:>16} {:>9}",
        "workload", "pipeline units/s", "PyTorch units/s", "ratio"
    );
    for (name, t) in ours {
        let reference = name.strip_suffix(LIBTORCH).unwrap_or(name);
        let (theirs_rate, ratio) = match theirs.get(reference) {
            Some(r) => (
                format!("{:.1}", r.rate()),
                format!("{:.2}x", t.rate() / r.rate().max(1e-9)),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!("{name:<28} {:>16.1} {theirs_rate:>16} {ratio:>9}", t.rate());
    }
    let mut blank = Some(());
    for (alone, how) in [
        (ALONE, "on the host trainer"),
        (ALONE_LIBTORCH, "through libtorch's loop"),
    ] {
        if let (Some(batched), Some(alone)) = (ours.get(BATCHED), ours.get(alone)) {
            if blank.take().is_some() {
                println!();
            }
            println!(
                "seeds as one batch vs one at a time {how} (model-steps/s): {:.2}x",
                batched.rate() / alone.rate().max(1e-9)
            );
        }
    }
    println!("(ratios above 1 mean this project is faster; absolute figures drift between runs)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_workloads_are_read_from_the_script() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let script = dir.path().join("ref.py");
        std::fs::write(
            &script,
            "x = 1\nWORKLOADS = {\n    \"a_steps\": lambda: f(),\n    \"b\": g,\n}\n",
        )?;
        assert_eq!(reference_workloads(&script), ["a_steps", "b"]);
        assert!(reference_workloads(&dir.path().join("missing.py")).is_empty());
        Ok(())
    }
}
