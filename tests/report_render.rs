//! The HTML report of a small pipeline loads in a real browser (headless Chromium) with every
//! figure shown: PNG figures, and an SVG figure where a stage has no PNG. A screenshot is kept
//! at `target/artifacts/report.png` for people and CI to look at.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Workspace, text};

const CHROMIUM: &str = "/usr/bin/chromium";

const PIPELINE: &str = "name: tiny
description: a report <render> test
stages:
  data:
    kind: functions
    params: {function: sinc, n: 200}
  fit:
    kind: train
    inputs: {data: data}
    params: {model: {mlp: {hidden: [8]}}, epochs: 3, batch_size: 50}
  loss:
    kind: line_plot
    inputs: {runs: fit}
    params: {x: epoch, y: loss, split_by: split, log_y: true, title: loss, x_label: epoch, y_label: MSE}
  steps:
    kind: line_plot
    inputs: {runs: fit}
    params: {x: step, y: loss, split_by: split, title: loss by step, x_label: step, y_label: MSE}
";

/// Marks each image loaded or not once the page has loaded, for `--dump-dom` to show.
const PROBE: &str = "<script>
window.addEventListener('load', function () {
  for (const img of document.images) {
    img.setAttribute('data-loaded', img.complete && img.naturalWidth > 0 ? 'yes' : 'no');
  }
  document.body.setAttribute('data-probe', 'done');
});
</script>";

#[test]
fn the_report_shows_every_figure_in_a_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the report render test needs the Debian package `chromium`, \
         which scripts/test.sh installs (scripts/setup.sh --test)"
    );
    let ws = Workspace::new();
    let file = ws.write("tiny.yaml", PIPELINE);
    let out = ws.pipeline(&["run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let report = ws.path().join("outputs/tiny/report.html");
    let said = format!("report in {}\n", report.display());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&said),
        "{}",
        text(&out)
    );

    // One figure as SVG only: the report then embeds the SVG.
    std::fs::remove_file(ws.path().join("outputs/tiny/steps/plot.png")).unwrap();
    let out = ws.pipeline(&["report", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        report.to_str().unwrap()
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert_self_contained(&html);
    assert_eq!(
        html.matches("<img src=\"data:image/png;base64,").count(),
        1,
        "one PNG figure"
    );
    assert_eq!(
        html.matches("<img src=\"data:image/svg+xml;base64,")
            .count(),
        1,
        "one SVG figure"
    );
    assert!(
        html.contains("a report &lt;render&gt; test"),
        "text is escaped"
    );

    let profile = tempfile::tempdir().unwrap();
    let dom = probe(&ws, &html, profile.path());
    assert!(
        dom.contains("data-probe=\"done\""),
        "the page never finished loading:\n{dom}"
    );
    assert_eq!(
        dom.matches("data-loaded=\"yes\"").count(),
        2,
        "every image loads:\n{dom}"
    );
    assert!(
        !dom.contains("data-loaded=\"no\""),
        "a broken image:\n{dom}"
    );

    let shot = artifacts().join("report.png");
    let _ = std::fs::remove_file(&shot);
    let url = format!("file://{}", report.display());
    let out = chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400",
            &url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot at {}",
        shot.display()
    );
}

/// No external resource of any kind, and a policy that forbids loading one.
fn assert_self_contained(html: &str) {
    assert!(html.contains("http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"));
    for outside in [
        "http://",
        "https://",
        "<link",
        "<script",
        "src=\"file:",
        "url(",
    ] {
        assert!(
            !html.contains(outside),
            "the report refers to something outside it: {outside}"
        );
    }
}

/// The DOM after the page loaded, with each image marked loaded or not. The probe copy keeps
/// the page's policy and adds only permission for its own inline script.
fn probe(ws: &Workspace, html: &str, profile: &Path) -> String {
    let page = html
        .replacen(
            "default-src 'none';",
            "default-src 'none'; script-src 'unsafe-inline';",
            1,
        )
        .replacen("</body>", &format!("{PROBE}</body>"), 1);
    let path = ws.write("probe.html", &page);
    let url = format!("file://{}", path.display());
    let out = chromium(
        profile,
        &["--dump-dom", "--virtual-time-budget=10000", &url],
    );
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Headless Chromium with a throw-away profile and nothing that reaches the network. Its
/// output goes to files (a DOM with embedded images is larger than a pipe holds).
fn chromium(profile: &Path, args: &[&str]) -> Output {
    let (out_path, err_path) = (profile.join("stdout.txt"), profile.join("stderr.txt"));
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// `target/artifacts`, which CI keeps.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
