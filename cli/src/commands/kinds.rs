//! `pipeline kinds`: the stage kinds this binary knows, with their inputs and default
//! parameters (the canonical form of an empty parameter block, where every key has a default).

use pipeline_engine::stage::{Arity, StageKind};

use crate::args::KindsArgs;
use crate::failure::Failure;
use crate::session;

/// Runs the command.
pub fn execute(args: &KindsArgs) -> Result<(), Failure> {
    let registry = session::registry();
    match &args.kind {
        None => {
            for kind in registry.kinds() {
                println!("{:<20} {}", kind.name(), kind.summary());
            }
            println!("\n`pipeline kinds NAME` shows a kind's inputs and parameters.");
        }
        Some(name) => {
            let kind = registry.get(name).ok_or_else(|| {
                let hint = pipeline_engine::suggest::nearest(name, registry.names())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                Failure::Input(format!("no stage kind `{name}`{hint}"))
            })?;
            print!("{}", describe(kind));
        }
    }
    Ok(())
}

fn describe(kind: &dyn StageKind) -> String {
    let mut out = format!(
        "{} (version {}): {}\n",
        kind.name(),
        kind.version(),
        kind.summary()
    );
    if kind.inputs().is_empty() {
        out.push_str("inputs: none\n");
    } else {
        out.push_str("inputs:\n");
        for slot in kind.inputs() {
            let arity = match slot.arity {
                Arity::One => "one stage",
                Arity::Optional => "optional",
                Arity::Many => "one or more stages",
            };
            out.push_str(&format!("  {:<12} {arity}: {}\n", slot.name, slot.doc));
        }
    }
    if !kind.example().is_empty() {
        out.push_str(&format!("example:\n{}\n", kind.example().trim_end()));
    }
    match kind.canonicalize(serde_json::json!({})) {
        Ok(defaults) => {
            out.push_str("parameters with their defaults:\n");
            yaml_lines(&defaults, 1, &mut out);
        }
        Err(issue) => {
            // serde says "missing field `model`": name the key the way a pipeline file does.
            let required = issue
                .message
                .strip_prefix("missing field ")
                .unwrap_or(&issue.message);
            out.push_str(&format!(
                "parameters: {required} is required; every key and its default is in \
                 pipelines/README.md\n"
            ));
        }
    }
    out
}

/// Writes `value` as YAML, `depth` levels indented (two spaces each): mappings as keys,
/// lists of scalars inline, other lists as items.
fn yaml_lines(value: &serde_json::Value, depth: usize, out: &mut String) {
    use serde_json::Value;
    let pad = "  ".repeat(depth);
    let Value::Object(map) = value else {
        out.push_str(&format!("{pad}{}\n", scalar(value)));
        return;
    };
    for (key, v) in map {
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push_str(&format!("{pad}{key}:\n"));
                yaml_lines(v, depth + 1, out);
            }
            Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
                out.push_str(&format!("{pad}{key}:\n"));
                for item in items {
                    out.push_str(&format!("{pad}  - {}\n", scalar(item)));
                }
            }
            _ => out.push_str(&format!("{pad}{key}: {}\n", scalar(v))),
        }
    }
}

/// A value on one line, in YAML's flow style (JSON is valid flow YAML).
fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".to_owned(),
        serde_json::Value::String(s) if !s.is_empty() && !s.contains([':', '#', '{', '[']) => {
            s.clone()
        }
        other => other.to_string(),
    }
}
