//! `pipeline dag`: the expanded stage graph as a Mermaid flowchart or Graphviz dot: one node
//! per stage (each matrix member its own), labelled with its name and kind, and one edge per
//! input, labelled with the input slot.

use pipeline_engine::spec::Pipeline;

use crate::args::{DagArgs, GraphFormat};
use crate::failure::Failure;
use crate::session;

/// Runs the command.
pub fn execute(args: &DagArgs) -> Result<(), Failure> {
    let registry = session::registry();
    let pipeline = session::pipeline(&args.pipeline, &registry)?;
    let text = match args.format {
        GraphFormat::Mermaid => mermaid(&pipeline),
        GraphFormat::Dot => dot(&pipeline),
    };
    print!("{text}");
    Ok(())
}

/// Every edge as (upstream index, downstream index, slot), in stage order.
fn edges(pipeline: &Pipeline) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    for (to, stage) in pipeline.stages.iter().enumerate() {
        for (slot, ups) in &stage.inputs {
            out.extend(ups.iter().map(|&from| (from, to, slot.as_str())));
        }
    }
    out
}

/// A Mermaid flowchart, left to right.
pub fn mermaid(pipeline: &Pipeline) -> String {
    let quote = |s: &str| {
        s.replace('"', "#quot;")
            .replace('<', "#lt;")
            .replace('>', "#gt;")
    };
    let mut out = format!(
        "%% {} ({})\nflowchart LR\n",
        pipeline.name,
        pipeline.file.display()
    );
    for (i, stage) in pipeline.stages.iter().enumerate() {
        out.push_str(&format!(
            "  s{i}[\"{}<br/><i>{}</i>\"]\n",
            quote(&stage.name),
            quote(&stage.kind)
        ));
    }
    for (from, to, slot) in edges(pipeline) {
        out.push_str(&format!("  s{from} -->|{}| s{to}\n", quote(slot)));
    }
    out
}

/// A Graphviz digraph, left to right.
pub fn dot(pipeline: &Pipeline) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n",
        quote(&pipeline.name)
    );
    for (i, stage) in pipeline.stages.iter().enumerate() {
        let label = quote(&format!("{}\n({})", stage.name, stage.kind)).replace('\n', "\\n");
        out.push_str(&format!("  s{i} [label={label}];\n"));
    }
    for (from, to, slot) in edges(pipeline) {
        out.push_str(&format!("  s{from} -> s{to} [label={}];\n", quote(slot)));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> Pipeline {
        let text = "name: tiny
stages:
  data:
    kind: functions
    matrix: {function: [sinc, sign]}
    params: {function: '${matrix.function}', n: 10}
  fit:
    kind: train
    inputs: {data: 'data[function=sinc]'}
    params: {model: {mlp: {hidden: [2]}}, epochs: 1}
  curves:
    kind: line_plot
    inputs: {runs: fit}
    params: {x: epoch, y: loss, title: t, x_label: e, y_label: l}
";
        pipeline_engine::spec::parse_str(
            std::path::Path::new("tiny.yaml"),
            text,
            &[],
            &session::registry(),
        )
        .unwrap_or_else(|e| panic!("{}", e.render()))
    }

    #[test]
    fn mermaid_has_a_node_per_member_and_labelled_edges() {
        assert_eq!(
            mermaid(&pipeline()),
            "%% tiny (tiny.yaml)
flowchart LR
  s0[\"data[function=sinc]<br/><i>functions</i>\"]
  s1[\"data[function=sign]<br/><i>functions</i>\"]
  s2[\"fit<br/><i>train</i>\"]
  s3[\"curves<br/><i>line_plot</i>\"]
  s0 -->|data| s2
  s2 -->|runs| s3
"
        );
    }

    #[test]
    fn dot_quotes_labels() {
        let text = dot(&pipeline());
        assert!(
            text.starts_with("digraph \"tiny\" {\n  rankdir=LR;\n"),
            "{text}"
        );
        assert!(
            text.contains("  s0 [label=\"data[function=sinc]\\n(functions)\"];\n"),
            "{text}"
        );
        assert!(text.contains("  s0 -> s2 [label=\"data\"];\n"), "{text}");
        assert!(text.ends_with("}\n"));
    }
}
