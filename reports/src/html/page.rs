//! The page template. Every value goes through maud's escaping; the only raw text is the
//! constant style sheet below.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{Figure, LastRun, Report, StageView};
use crate::summary::{FinalMetrics, number};

/// Nothing may be loaded from anywhere: images come as `data:` URIs, style is inline.
const POLICY: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2rem; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2.5rem; }
.meta { color: #666; font-size: 0.9rem; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; border: 1px solid #ddd; padding: 0.5rem; background: #fff;
         flex: 1 1 30rem; max-width: 40rem; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.85rem; color: #555; margin-top: 0.3rem; }
pre { background: #f7f7f7; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }
.failed { color: #b00020; font-weight: bold; }
.note { color: #8a5a00; }
";

/// The whole page as HTML text.
pub fn render(report: &Report) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(POLICY);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (report.pipeline) " - pipeline report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (header(report))
                (metrics(&report.stages))
                (figures(&report.stages))
                (last_run(report))
                (stages(&report.stages))
            }
        }
    }
    .into_string()
}

fn header(report: &Report) -> Markup {
    html! {
        h1 { (report.pipeline) }
        @if let Some(text) = &report.description {
            p { (text) }
        }
        p.meta { "From " code { (report.file) } ". Written " (report.generated) "." }
        nav {
            a href="#metrics" { "Final metrics" }
            a href="#figures" { "Figures" }
            a href="#run" { "Last run" }
            a href="#stages" { "Stages" }
        }
    }
}

fn metrics(stages: &[StageView]) -> Markup {
    let rows: Vec<(usize, &StageView, &FinalMetrics)> = stages
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.metrics.as_ref().map(|m| (i, s, m)))
        .collect();
    html! {
        section #metrics {
            h2 { "Final metrics" }
            @if rows.is_empty() {
                p { "No stage has a metrics table yet." }
            } @else {
                p.meta { "At the last evaluated epoch of each stage's " code { "metrics.parquet" } "." }
                table {
                    tr { th { "stage" } th { "epoch" }
                         @for (name, _) in FinalMetrics::default().named() { th { (name) } } }
                    @for (i, stage, m) in rows {
                        tr {
                            td { a href={ "#stage-" (i) } { (stage.name) } }
                            td.num { (m.epoch) }
                            @for (_, value) in m.named() { td.num { (optional(value)) } }
                        }
                    }
                }
            }
        }
    }
}

fn optional(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), number)
}

fn figures(stages: &[StageView]) -> Markup {
    let count: usize = stages.iter().map(|s| s.figures.len()).sum();
    html! {
        section #figures {
            h2 { "Figures (" (count) ")" }
            @if count == 0 {
                p { "No stage has drawn a figure yet." }
            }
            div.figures {
                @for (i, stage) in stages.iter().enumerate() {
                    @for figure in &stage.figures { (image(i, stage, figure)) }
                }
            }
        }
    }
}

fn image(index: usize, stage: &StageView, figure: &Figure) -> Markup {
    let path = format!("{}/{}", stage.folder, figure.file);
    html! {
        figure {
            img src=(figure.image.data_uri()) alt=(path);
            figcaption { a href={ "#stage-" (index) } { (stage.name) } br; code { (path) } }
        }
    }
}

fn last_run(report: &Report) -> Markup {
    html! {
        section #run {
            h2 { "Last run" }
            @match &report.last_run {
                None => p { "The pipeline has not run in this workspace yet." },
                Some(run) => {
                    (run_summary(run))
                    (timings(&report.stages))
                }
            }
        }
    }
}

fn run_summary(run: &LastRun) -> Markup {
    html! {
        p {
            "Started " (run.started) ", took " (run.took)
            @if run.stopped { " (stopped before the end)" }
            ": ran " (run.ran) ", cached " (run.cached) ", failed " (run.failed)
            ", skipped " (run.skipped) "."
        }
        @if !run.settings.is_empty() {
            ul { @for line in &run.settings { li { code { (line) } } } }
        }
    }
}

fn timings(stages: &[StageView]) -> Markup {
    html! {
        table {
            tr { th { "stage" } th { "kind" } th { "outcome" } th { "time" } th { "detail" } }
            @for (i, stage) in stages.iter().enumerate() {
                @if let Some(outcome) = &stage.outcome {
                    tr {
                        td { a href={ "#stage-" (i) } { (stage.name) } }
                        td { (stage.kind) }
                        td class=[(outcome.what == "failed").then_some("failed")] { (outcome.what) }
                        td.num { (outcome.time.as_deref().unwrap_or("")) }
                        td { (outcome.detail.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

fn stages(stages: &[StageView]) -> Markup {
    html! {
        section #stages {
            h2 { "Stages (" (stages.len()) ")" }
            @for (i, stage) in stages.iter().enumerate() { (stage_section(i, stage)) }
        }
    }
}

fn stage_section(index: usize, stage: &StageView) -> Markup {
    html! {
        h3 id={ "stage-" (index) } { (stage.name) " " span.meta { "(" (stage.kind) ")" } }
        p.meta {
            "Outputs in " code { (stage.folder) }
            @if let Some(key) = &stage.key { ", key " code { (key) } }
        }
        @for note in &stage.notes { p.note { (note) } }
        @if !stage.inputs.is_empty() {
            p {
                "Inputs: "
                @for (n, (slot, names)) in stage.inputs.iter().enumerate() {
                    @if n > 0 { "; " }
                    code { (slot) } " = " (names.join(", "))
                }
            }
        }
        @if let Some(params) = &stage.params {
            details open {
                summary { "Parameters" }
                pre { (params) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::{Image, StageOutcome};

    fn report() -> Report {
        Report {
            pipeline: "demo <&>".into(),
            file: "pipelines/demo.yaml".into(),
            generated: "2025-01-01 00:00:00 UTC".into(),
            last_run: Some(LastRun {
                started: "then".into(),
                took: "1 s".into(),
                ran: 1,
                ..LastRun::default()
            }),
            stages: vec![StageView {
                name: "train[model=<deep>]".into(),
                kind: "train".into(),
                folder: "outputs/demo/train/model=<deep>".into(),
                outcome: Some(StageOutcome {
                    what: "ran".into(),
                    time: Some("1 s".into()),
                    detail: None,
                }),
                params: Some("{\"note\": \"</pre><script>\"}".into()),
                metrics: Some(FinalMetrics {
                    epoch: 3,
                    test_loss: Some(0.5),
                    ..FinalMetrics::default()
                }),
                figures: vec![Figure {
                    file: "plot.png".into(),
                    image: Image::Png(vec![1, 2, 3]),
                }],
                ..StageView::default()
            }],
            ..Report::default()
        }
    }

    #[test]
    fn every_text_is_escaped() {
        let page = render(&report());
        assert!(page.contains("demo &lt;&amp;&gt;"), "{page}");
        assert!(page.contains("train[model=&lt;deep&gt;]"));
        assert!(page.contains("&lt;/pre&gt;&lt;script&gt;"));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn figures_are_embedded_and_nothing_is_loaded_from_elsewhere() {
        let page = render(&report());
        assert!(
            page.contains("src=\"data:image/png;base64,AQID\""),
            "{page}"
        );
        assert!(page.contains(POLICY));
        for outside in ["http:", "https:", "<link", "src=\"/", "@import"] {
            assert!(!page.contains(outside), "{outside}");
        }
    }

    #[test]
    fn the_summary_table_has_the_final_metrics() {
        let page = render(&report());
        assert!(page.contains("<td class=\"num\">0.5000</td>"), "{page}");
        assert!(page.contains("Figures (1)"));
    }
}
