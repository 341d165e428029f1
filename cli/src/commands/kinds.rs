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
            let text = serde_json::to_string_pretty(&defaults).unwrap_or_default();
            out.push_str(&format!("parameters with their defaults:\n{text}\n"));
        }
        Err(issue) => out.push_str(&format!(
            "parameters: some are required ({})\n",
            issue.message
        )),
    }
    out
}
