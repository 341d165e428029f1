//! The entry point of the pipeline-file fuzz target (`fuzz/fuzz_targets/spec.rs`) and of the
//! test that replays every input that target once failed on (`fuzz/regressions/spec/`), so
//! that both run exactly the same code. Nothing else uses it.
//!
//! It lives in this crate because it needs the real stage kinds ([`crate::register`]) next to
//! the engine's parser, and this crate has both without libtorch.

use std::path::Path;
use std::sync::OnceLock;

use pipeline_engine::spec::{self, Pipeline, SpecErrors};
use pipeline_engine::stage::Registry;

/// A line of the input that starts with this (a YAML comment, so the document is unchanged)
/// gives a `--set` override: `#set epochs=5`.
pub const OVERRIDE_PREFIX: &str = "#set ";

/// The most overrides taken from one input.
const MAX_OVERRIDES: usize = 4;

/// Parses `data` as a pipeline file against every real stage kind, first as it is and then
/// with the overrides its `#set ` lines give (when it has any), rendering every error as the
/// command line would. Input that is not UTF-8 is skipped, as a file that is not UTF-8 is
/// refused before parsing. Returns what each parse gave.
pub fn parse_pipeline(data: &[u8]) -> Vec<Result<Pipeline, SpecErrors>> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Vec::new();
    };
    let registry = registry();
    let path = Path::new("fuzz.yaml");
    let overrides = overrides(text);
    let mut results = vec![spec::parse_str(path, text, &[], registry)];
    if !overrides.is_empty() {
        results.push(spec::parse_str(path, text, &overrides, registry));
    }
    for errors in results.iter().filter_map(|r| r.as_ref().err()) {
        let _ = (errors.render(), errors.to_string());
    }
    results
}

/// The `--set` arguments an input's `#set ` lines give, in order.
pub fn overrides(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix(OVERRIDE_PREFIX))
        .take(MAX_OVERRIDES)
        .map(str::to_owned)
        .collect()
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Registry::new();
        crate::register(&mut registry);
        registry
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input in `fuzz/regressions/spec/` (each once crashed, hung or exhausted memory in
    /// the fuzz target) parses to a result.
    #[test]
    fn saved_fuzz_inputs_parse_to_a_result() -> Result<(), Box<dyn std::error::Error>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/spec");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir)? {
            parse_pipeline(&std::fs::read(entry?.path())?);
            count += 1;
        }
        assert!(count > 0, "no inputs in {}", dir.display());
        Ok(())
    }

    #[test]
    fn set_lines_give_overrides_and_leave_the_document_alone() {
        let text = "#set epochs=5\nstages: {}\n  #set not=this\n#set a.b=[1, 2]\n";
        assert_eq!(overrides(text), ["epochs=5", "a.b=[1, 2]"]);
        let results = parse_pipeline(text.as_bytes());
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(Result::is_err));
    }
}
