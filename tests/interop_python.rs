//! Every table the shipped pipeline `hw1-1` writes opens in DuckDB, pyarrow and polars with no
//! options, with the schema the README documents, and all three agree with each other and with
//! our own reader on column names, types and row counts. A single DuckDB query with hive
//! partitioning groups the `fit` sweep by its matrix columns.
//!
//! The readers come from PyPI into a throw-away virtual environment, cached in
//! `target/interop-venv` between runs (made afresh whenever it is missing or broken). If pip
//! cannot install them, the test fails: it never passes without having read the files.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use pipeline_reports::Table;
use serde_json::Value;
use support::{Workspace, repo, text};

/// The Python packages the test reads with.
const PACKAGES: [&str; 3] = ["duckdb", "pyarrow", "polars"];

/// hw1-1 at a tiny scale: 2 epochs of 200 points per fit (evaluated at epochs 0 and 2), one
/// epoch of 2,000 images per CNN.
const OVERRIDES: [&str; 5] = [
    "fit_epochs=2",
    "fit_points=200",
    "image_epochs=1",
    "images.params.train_limit=2000",
    "images.params.test_limit=500",
];

/// Reads each table named in the JSON list argv[1] with the three libraries, no options, and
/// runs the sweep query; prints one JSON object.
const SCRIPT: &str = r#"
import json, sys
import duckdb, polars, pyarrow, pyarrow.parquet as pq

def sql_text(s):
    return "'" + s.replace("'", "''") + "'"

con = duckdb.connect()
tables = {}
for path in json.load(open(sys.argv[1])):
    rel = con.sql("SELECT * FROM read_parquet(" + sql_text(path) + ")")
    duck = {"columns": [[n, str(t)] for n, t in zip(rel.columns, rel.types)],
            "rows": con.sql("SELECT count(*) FROM read_parquet(" + sql_text(path) + ")").fetchall()[0][0]}
    t = pq.read_table(path)
    arrow = {"columns": [[f.name, str(f.type)] for f in t.schema], "rows": t.num_rows}
    df = polars.read_parquet(path)
    pol = {"columns": [[n, str(d)] for n, d in zip(df.columns, df.dtypes)], "rows": df.height}
    tables[path] = {"duckdb": duck, "pyarrow": arrow, "polars": pol}

sweep = con.sql("""
    SELECT function, CAST(run AS VARCHAR) AS run, model, count(*) AS rows,
           min(loss) FILTER (WHERE split = 'test') AS best_test_loss
    FROM read_parquet('outputs/hw1-1/fit/*/*/*/metrics.parquet', hive_partitioning = true)
    GROUP BY ALL ORDER BY ALL
""").fetchall()
versions = {"duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__, "polars": polars.__version__}
print(json.dumps({"versions": versions, "tables": tables,
                  "sweep": [[r[0], r[1], r[2], r[3], r[4]] for r in sweep]}))
"#;

#[test]
fn every_table_reads_alike_in_duckdb_pyarrow_and_polars() {
    let python = venv_python();
    let ws = Workspace::new();
    let file = repo().join("pipelines/hw1-1.yaml");
    let mut args = vec!["run".to_owned(), file.to_str().unwrap().to_owned()];
    for o in OVERRIDES {
        args.extend(["--set".to_owned(), o.to_owned()]);
    }
    let out = ws.pipeline(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out));

    let tables = parquet_files(ws.path(), Path::new("outputs"));
    assert!(
        tables.len() >= 40,
        "hw1-1 writes at least 40 tables: {tables:?}"
    );
    let list = ws.write("tables.json", &serde_json::to_string(&tables).unwrap());
    let script = ws.write("interop.py", SCRIPT);
    let out = Command::new(&python)
        .arg(&script)
        .arg(&list)
        .current_dir(ws.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the Python readers failed: {}",
        text(&out)
    );
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();

    let mut listing = format!(
        "tables of hw1-1 as DuckDB reads them ({})\n",
        versions(&found)
    );
    for path in &tables {
        let read = &found["tables"][path];
        check_table(ws.path(), path, read);
        listing.push_str(&format!(
            "{:>6} rows  {path}\n",
            read["duckdb"]["rows"].as_u64().unwrap_or(0)
        ));
    }
    check_sweep(&tables, &found["sweep"]);
    print!("{listing}");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("interop-tables.txt"), &listing).unwrap();
}

fn versions(found: &Value) -> String {
    PACKAGES
        .iter()
        .map(|p| format!("{p} {}", found["versions"][p].as_str().unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One table: the documented schema, and the same columns, types and rows in every reader.
fn check_table(root: &Path, path: &str, read: &Value) {
    let ours = Table::read_parquet(&root.join(path)).unwrap();
    let columns: Vec<(String, &str)> = ours
        .columns()
        .map(|(n, d)| (n.to_owned(), d.type_name()))
        .collect();
    if let Some(documented) = documented(path) {
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        let expected: Vec<&str> = documented.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, expected, "{path}: the columns the README documents");
        for ((name, ty), (_, doc)) in columns.iter().zip(&documented) {
            assert_eq!(ty, doc, "{path}: column {name}");
        }
    }
    let rows = ours.num_rows() as u64;
    for (library, naming) in [("pyarrow", 1), ("polars", 2), ("duckdb", 3)] {
        let seen = &read[library];
        assert_eq!(
            seen["rows"].as_u64(),
            Some(rows),
            "{path}: rows in {library}"
        );
        let seen: Vec<(String, String)> = seen["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c[0].as_str().unwrap().to_owned(),
                    c[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut expected: Vec<(String, String)> = columns
            .iter()
            .map(|(n, t)| (n.clone(), type_in(t, naming).to_owned()))
            .collect();
        if library == "duckdb" {
            // DuckDB's SQL reader detects `key=value` folders by itself and adds them after the
            // file's columns, in name order (a file's own column of that name stays as it is).
            let mut keys = hive_keys(path, &columns);
            keys.sort();
            expected.extend(keys.into_iter().map(|k| (k, String::new())));
        }
        let names = |v: &[(String, String)]| v.iter().map(|c| c.0.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&seen),
            names(&expected),
            "{path}: column names in {library}"
        );
        for ((name, ty), (_, want)) in seen.iter().zip(&expected).filter(|(_, e)| !e.1.is_empty()) {
            assert_eq!(ty, want, "{path}: type of {name} in {library}");
        }
    }
}

/// The schema pipelines/README.md gives for a table of hw1-1, by file name.
fn documented(path: &str) -> Option<Vec<(&'static str, &'static str)>> {
    let metrics = [
        ("epoch", "Int64"),
        ("step", "Int64"),
        ("split", "Utf8"),
        ("loss", "Float64"),
        ("accuracy", "Float64"),
        ("batch_size", "Int64"),
        ("lr", "Float64"),
        ("optimizer", "Utf8"),
        ("epochs", "Int64"),
        ("parameters", "Int64"),
        ("seed", "Int64"),
    ];
    let name = path.rsplit('/').next()?;
    match name {
        "metrics.parquet" => Some(metrics.to_vec()),
        "predictions.parquet" => Some(vec![
            ("x", "Float64"),
            ("target", "Float64"),
            ("prediction", "Float64"),
        ]),
        "gathered.parquet" => {
            // A `stage` column and one per matrix axis (in alphabetical order).
            let mut columns = vec![
                ("stage", "Utf8"),
                ("function", "Utf8"),
                ("model", "Utf8"),
                ("run", "Int64"),
            ];
            columns.extend(metrics);
            Some(columns)
        }
        _ => None,
    }
}

/// The name of our column type in pyarrow (1), polars (2) or DuckDB (3).
fn type_in(ours: &str, library: usize) -> &'static str {
    let names: [&str; 4] = match ours {
        "Int64" => ["Int64", "int64", "Int64", "BIGINT"],
        "Float64" => ["Float64", "double", "Float64", "DOUBLE"],
        "Utf8" => ["Utf8", "string", "String", "VARCHAR"],
        "Boolean" => ["Boolean", "bool", "Boolean", "BOOLEAN"],
        other => panic!("unknown column type {other}"),
    };
    names[library]
}

/// The `key=value` folders of a path whose key is not a column of the file.
fn hive_keys(path: &str, columns: &[(String, &str)]) -> Vec<String> {
    path.split('/')
        .filter_map(|part| part.split_once('=').map(|(k, _)| k.to_owned()))
        .filter(|k| !columns.iter().any(|(n, _)| n == k))
        .collect()
}

/// One group per member of the sweep, each with all its rows; the groups are exactly the
/// members whose tables are on disk.
fn check_sweep(tables: &[String], sweep: &Value) {
    let members: BTreeSet<Vec<String>> = tables
        .iter()
        .filter(|p| p.starts_with("outputs/hw1-1/fit/") && p.ends_with("/metrics.parquet"))
        .map(|p| {
            p.split('/')
                .filter_map(|s| s.split_once('='))
                .map(|(_, v)| v.to_owned())
                .collect()
        })
        .collect();
    let groups = sweep.as_array().unwrap();
    let seen: BTreeSet<Vec<String>> = groups
        .iter()
        .map(|g| (0..3).map(|i| g[i].as_str().unwrap().to_owned()).collect())
        .collect();
    assert_eq!(members.len(), 18, "2 functions x 3 runs x 3 models");
    assert_eq!(seen, members, "one group per (function, run, model)");
    for g in groups {
        assert_eq!(
            g[3].as_u64(),
            Some(4),
            "epochs 0 and 2, train and test: {g}"
        );
        assert!(
            g[4].as_f64().is_some_and(f64::is_finite),
            "a test loss: {g}"
        );
    }
}

/// Every `.parquet` file below `root/dir`, as sorted `/`-separated paths relative to `root`.
fn parquet_files(root: &Path, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join(dir)).unwrap() {
        let entry = entry.unwrap();
        let rel = dir.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            out.extend(parquet_files(root, &rel));
        } else if rel.extension().is_some_and(|e| e == "parquet") {
            out.push(rel.to_str().unwrap().to_owned());
        }
    }
    out.sort();
    out
}

/// The Python of a virtual environment with the readers: the cached one if it works, else a
/// new one made in a temporary folder and moved into the cache.
fn venv_python() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let cached = target.join("interop-venv");
    if imports(&cached) {
        return cached.join("bin/python");
    }
    let fresh = tempfile::Builder::new()
        .prefix("interop-venv-")
        .tempdir_in(&target)
        .unwrap();
    let venv = fresh.path().join("venv");
    let out = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output();
    let out =
        out.unwrap_or_else(|e| panic!("cannot run python3 ({e}); scripts/test.sh installs it"));
    assert!(
        out.status.success(),
        "python3 -m venv failed (on Debian the package python3-venv is needed; scripts/test.sh \
         installs it): {}",
        text(&out)
    );
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip could not install {} from PyPI; the interop test needs them (is PyPI reachable?): {}",
        PACKAGES.join(", "),
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&cached);
    // A virtual environment's own Python finds its packages after a move (its pyvenv.cfg
    // names only the base interpreter); another test run may have put one there meanwhile.
    if std::fs::rename(&venv, &cached).is_ok() || imports(&cached) {
        return cached.join("bin/python");
    }
    let kept = fresh.keep();
    kept.join("venv/bin/python")
}

/// Whether the environment at `venv` imports all the readers.
fn imports(venv: &Path) -> bool {
    let python = venv.join("bin/python");
    python.exists()
        && Command::new(&python)
            .args(["-c", &format!("import {}", PACKAGES.join(", "))])
            .output()
            .is_ok_and(|o| o.status.success())
}
