//! Rendering every kind of figure to files, and the inputs that must not break it.

use std::path::{Path, PathBuf};

use pipeline_reports::plot::{CHART_SIZE, HEATMAP_SIZE, MAX_LEGEND_ENTRIES, panels_size};
use pipeline_reports::{
    Axis, Chart, Heatmap, Mark, PlotError, Series, render_chart, render_heatmap, render_panels,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Where figures go: `$PIPELINE_REPORTS_FIGURES` when set (to look at them), else a tempdir.
fn out_dir() -> std::io::Result<(Option<tempfile::TempDir>, PathBuf)> {
    match std::env::var_os("PIPELINE_REPORTS_FIGURES") {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            Ok((None, PathBuf::from(dir)))
        }
        None => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().to_owned();
            Ok((Some(dir), path))
        }
    }
}

/// The width and height in a PNG's IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> Result<(u32, u32), Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    let signature = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    if bytes.len() < 24 || bytes[..8] != signature || &bytes[12..16] != b"IHDR" {
        return Err(format!("{} is not a PNG", path.display()).into());
    }
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Ok((word(16), word(20)))
}

fn check_pair(files: &[PathBuf], size: (u32, u32)) -> Result<String, Box<dyn std::error::Error>> {
    let [png, svg] = files else {
        return Err("expected two files".into());
    };
    assert_eq!(png.extension().and_then(|e| e.to_str()), Some("png"));
    assert_eq!(png_size(png)?, size);
    let text = std::fs::read_to_string(svg)?;
    assert!(
        text.starts_with("<svg"),
        "not an SVG: {}",
        &text[..text.len().min(40)]
    );
    Ok(text)
}

fn epochs(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    (0..60).map(|e| (f64::from(e), f(f64::from(e)))).collect()
}

fn training_chart() -> Chart {
    Chart::new(
        "Deep vs shallow: training loss",
        Axis::linear("epoch"),
        Axis::log("MSE loss"),
    )
    .with_series(Series::line(
        "deep (571 params)",
        epochs(|e| 0.5 * (-e / 9.0).exp() + 1e-4),
    ))
    .with_series(
        Series::line("medium", epochs(|e| 0.5 * (-e / 14.0).exp() + 4e-4)).with_mark(Mark::Dashed),
    )
    .with_series(
        Series::line("shallow", epochs(|e| 0.5 * (-e / 25.0).exp() + 2e-3))
            .with_mark(Mark::LineAndPoints),
    )
}

#[test]
fn line_chart_writes_png_and_svg_with_labels() -> TestResult {
    let (_keep, dir) = out_dir()?;
    let files = render_chart(&training_chart(), &dir.join("loss"))?;
    let svg = check_pair(&files, CHART_SIZE)?;
    for text in [
        "epoch",
        "MSE loss",
        "deep (571 params)",
        "medium",
        "shallow",
        "Deep vs shallow",
    ] {
        assert!(svg.contains(text), "SVG lacks {text:?}");
    }
    Ok(())
}

#[test]
fn twin_axis_chart_labels_both_axes() -> TestResult {
    let (_keep, dir) = out_dir()?;
    let chart = Chart::new(
        "CNN on CIFAR-10",
        Axis::linear("epoch"),
        Axis::log("cross-entropy (nats)"),
    )
    .with_series(Series::line(
        "train loss",
        epochs(|e| 2.3 * (-e / 20.0).exp() + 0.05),
    ))
    .with_y2(
        Axis::linear("accuracy (fraction)").with_range(0.0, 1.0),
        vec![Series::line(
            "test accuracy",
            epochs(|e| 0.9 - 0.8 * (-e / 10.0).exp()),
        )],
    );
    let svg = check_pair(&render_chart(&chart, &dir.join("twin"))?, CHART_SIZE)?;
    assert!(svg.contains("accuracy (fraction)") && svg.contains("test accuracy (right axis)"));
    Ok(())
}

#[test]
fn scatter_plot_of_many_runs() -> TestResult {
    let (_keep, dir) = out_dir()?;
    let points = (0..100).map(|i| {
        let f = f64::from(i);
        (
            0.5 + 0.4 * (f * 0.7).sin().abs(),
            1e-3 * (1.0 + (f * 1.3).cos().powi(2)) * 10f64.powf(f / 50.0),
        )
    });
    let chart = Chart::new(
        "Minimal ratio vs loss (100 runs)",
        Axis::linear("minimal ratio"),
        Axis::log("loss (MSE)"),
    )
    .with_series(Series::points("runs", points.collect()));
    let svg = check_pair(&render_chart(&chart, &dir.join("scatter"))?, CHART_SIZE)?;
    assert!(svg.contains("minimal ratio"));
    assert!(!svg.contains(">runs<"), "a single series needs no legend");
    Ok(())
}

#[test]
fn many_series_truncate_the_legend() -> TestResult {
    let (_keep, dir) = out_dir()?;
    let mut chart = Chart::new(
        "Width sweep",
        Axis::log("parameters"),
        Axis::linear("test accuracy (fraction)"),
    );
    for w in 0..50 {
        let width = f64::from(w + 1);
        chart.series.push(Series::line(
            &format!("width {w}"),
            vec![(width * 1e3, 0.5), (width * 2e3, 0.5 + width / 120.0)],
        ));
    }
    let svg = check_pair(&render_chart(&chart, &dir.join("widths"))?, CHART_SIZE)?;
    let more = 50 - (MAX_LEGEND_ENTRIES - 1);
    assert!(svg.contains(&format!("and {more} more series")));
    assert!(svg.contains("width 10") && !svg.contains("width 11<"));
    Ok(())
}

#[test]
fn panels_stack_charts_under_one_title() -> TestResult {
    let (_keep, dir) = out_dir()?;
    let fit = Chart::new(
        "Fit of sin(5πx)/(5πx)",
        Axis::linear("x"),
        Axis::linear("y"),
    )
    .with_series(Series::line(
        "target",
        (0..200)
            .map(|i| {
                let x = f64::from(i) / 200.0 + 1e-3;
                (
                    x,
                    (5.0 * std::f64::consts::PI * x).sin() / (5.0 * std::f64::consts::PI * x),
                )
            })
            .collect(),
    ))
    .with_series(Series::points(
        "deep",
        (0..20).map(|i| (f64::from(i) / 20.0 + 0.01, 0.1)).collect(),
    ));
    let panels = [training_chart(), fit];
    let svg = check_pair(
        &render_panels("hw1-1 function fit", &panels, &dir.join("panels"))?,
        panels_size(2),
    )?;
    assert!(svg.contains("hw1-1 function fit") && svg.contains("Fit of sin"));
    Ok(())
}

fn surface() -> Heatmap {
    let xs: Vec<f64> = (0..41).map(|i| -1.0 + f64::from(i) * 0.05).collect();
    let ys: Vec<f64> = (0..31).map(|i| -1.0 + f64::from(i) * 0.066).collect();
    let values = ys
        .iter()
        .map(|y| {
            xs.iter()
                .map(|x| 0.05 + x * x + 2.0 * y * y + 0.3 * (4.0 * x).sin())
                .collect()
        })
        .collect();
    Heatmap {
        title: "Loss surface around the final weights".into(),
        x: Axis::linear("direction 1 (α)"),
        y: Axis::linear("direction 2 (β)"),
        xs,
        ys,
        values,
        value_label: "loss (MSE)".into(),
        log_values: true,
    }
}

#[test]
fn heatmap_has_a_labelled_colour_bar() -> TestResult {
    let (_keep, dir) = out_dir()?;
    let svg = check_pair(
        &render_heatmap(&surface(), &dir.join("surface"))?,
        HEATMAP_SIZE,
    )?;
    assert!(svg.contains("loss (MSE)") && svg.contains("direction 1"));
    Ok(())
}

#[test]
fn log_axes_with_zeros_and_negatives_do_not_panic() -> TestResult {
    let (_keep, dir) = out_dir()?;
    let chart = Chart::new("bad log", Axis::log("step"), Axis::log("gradient norm"))
        .with_series(Series::line(
            "a",
            vec![(0.0, 1.0), (1.0, 0.0), (2.0, -3.0), (3.0, 0.5), (4.0, 0.25)],
        ))
        .with_series(Series::line("all negative", vec![(1.0, -1.0), (2.0, -2.0)]));
    check_pair(&render_chart(&chart, &dir.join("badlog"))?, CHART_SIZE)?;
    let only_negative = Chart::new("negative", Axis::linear("step"), Axis::log("value"))
        .with_series(Series::line("a", vec![(1.0, -1.0), (2.0, 0.0)]));
    let svg = check_pair(
        &render_chart(&only_negative, &dir.join("neglog"))?,
        CHART_SIZE,
    )?;
    assert!(svg.contains("linear value: no positive values"));
    Ok(())
}

#[test]
fn nan_and_degenerate_input_do_not_panic() -> TestResult {
    let (_keep, dir) = out_dir()?;
    let charts = [
        Chart::new("nan", Axis::linear("x"), Axis::linear("y")).with_series(Series::line(
            "a",
            vec![(f64::NAN, 1.0), (1.0, f64::INFINITY), (2.0, f64::NAN)],
        )),
        Chart::new("flat", Axis::linear("x"), Axis::linear("y"))
            .with_series(Series::line("a", vec![(1.0, 3.0); 4])),
        Chart::new("empty", Axis::log("x"), Axis::log("y")),
        Chart::new("huge", Axis::linear("x"), Axis::linear("y"))
            .with_series(Series::points("a", vec![(-1e308, 1e-308), (1e308, 1.0)])),
    ];
    for (i, chart) in charts.iter().enumerate() {
        let stem = dir.join(format!("degenerate{i}"));
        match render_chart(chart, &stem) {
            Ok(files) => drop(check_pair(&files, CHART_SIZE)?),
            Err(PlotError::InvalidInput { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let mut map = surface();
    map.values[3][4] = f64::NAN;
    map.values[5] = vec![0.0; map.xs.len()];
    check_pair(&render_heatmap(&map, &dir.join("holes"))?, HEATMAP_SIZE)?;
    Ok(())
}

#[test]
fn invalid_input_is_an_error_naming_the_figure() -> TestResult {
    let (_keep, dir) = out_dir()?;
    let stem = dir.join("ragged");
    let mut map = surface();
    map.values[0].pop();
    let err = render_heatmap(&map, &stem)
        .err()
        .ok_or("ragged heatmap accepted")?;
    assert!(
        matches!(&err, PlotError::InvalidInput { path, .. } if *path == stem),
        "{err}"
    );
    let chart = Chart::new(
        "t",
        Axis::log("x").with_range(-1.0, 10.0),
        Axis::linear("y"),
    );
    let err = render_chart(&chart, &stem)
        .err()
        .ok_or("negative log range accepted")?;
    assert!(err.to_string().contains("axis `x`"), "{err}");
    assert!(render_panels("none", &[], &stem).is_err());
    Ok(())
}

#[test]
fn rendering_twice_gives_identical_bytes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = render_chart(&training_chart(), &dir.path().join("a"))?;
    let second = render_chart(&training_chart(), &dir.path().join("b"))?;
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(
            std::fs::read(a)?,
            std::fs::read(b)?,
            "{} differs",
            a.display()
        );
    }
    let first = render_heatmap(&surface(), &dir.path().join("c"))?;
    let second = render_heatmap(&surface(), &dir.path().join("d"))?;
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(
            std::fs::read(a)?,
            std::fs::read(b)?,
            "{} differs",
            a.display()
        );
    }
    Ok(())
}
