//! `--set key=value` overrides, applied to the YAML tree before variables are resolved.
//!
//! A key is a dotted path from the top of the file (`stages.train.params.epochs`), or starts
//! at a variable (`epochs` means `vars.epochs`) or a stage (`train.params.epochs` means
//! `stages.train.params.epochs`). Every key on the path must exist, so that a typo is an error
//! rather than a silently ignored setting; the one exception is the last key inside a stage's
//! `params` or `resources`, which may name a parameter the file leaves at its default (the
//! stage kind, or the resources reader, then checks that the name is valid).

use std::sync::Arc;

use super::error::SpecError;
use super::resolve::TOP_LEVEL;
use super::yaml::{self, Node, Scalar, Source, Span, Value};
use crate::suggest::nearest;

/// Top-level keys an override may add.
const OPTIONAL_TOP_LEVEL: &[&str] = &["name", "description", "seed", "data_roots"];
/// Stage keys an override may add.
const OPTIONAL_STAGE_KEYS: &[&str] = &[
    "params",
    "seed",
    "device",
    "threads",
    "resources",
    "description",
];

/// Optional stage keys whose value is a mapping.
const MAPPING_STAGE_KEYS: &[&str] = &["params", "resources"];

/// Applies each `key=value` override in order.
pub fn apply(root: &mut Node, overrides: &[String]) -> Result<(), SpecError> {
    for text in overrides {
        apply_one(root, text)?;
    }
    Ok(())
}

fn apply_one(root: &mut Node, text: &str) -> Result<(), SpecError> {
    let source = Arc::new(Source {
        name: format!("--set {text}"),
        text: text.to_owned(),
    });
    let whole = Span::whole(&source);
    let Some((key, value_text)) = text.split_once('=') else {
        return Err(SpecError::new(
            "an override is `key=value`; this one has no `=`",
            Some(&whole),
            "",
        )
        .note("for example: --set epochs=5 or --set stages.train.params.optimizer.lr=0.01"));
    };
    let value = parse_value(&source, key.len() + 1, value_text)?;
    let segments: Vec<&str> = key.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(SpecError::new(
            format!("`{key}` is not a valid key path"),
            Some(&whole),
            key,
        ));
    }
    let path = full_path(root, &segments, &whole)?;
    set_path(root, &path, value, &whole)
}

fn parse_value(source: &Arc<Source>, offset: usize, text: &str) -> Result<Node, SpecError> {
    let value_source = Arc::new(Source {
        name: source.name.clone(),
        text: text.to_owned(),
    });
    let mut node = yaml::parse(&value_source).map_err(|e| {
        SpecError::new(
            format!("the value of the override is not valid YAML: {}", e.message),
            Some(&Span::whole(source)),
            "",
        )
    })?;
    // Point every node of the value at the whole argument, so messages quote `--set k=v`.
    relocate(&mut node, &Span::whole(source));
    let _ = offset;
    if let Value::Null = node.value {
        node.value = Value::Scalar(Scalar {
            text: String::new(),
            plain: true,
        });
    }
    Ok(node)
}

fn relocate(node: &mut Node, span: &Span) {
    node.span = span.clone();
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| relocate(n, span)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            relocate(k, span);
            relocate(v, span);
        }),
        _ => {}
    }
}

/// Turns a short key (`epochs`, `train.params.lr`) into a path from the top of the file.
fn full_path(root: &Node, segments: &[&str], whole: &Span) -> Result<Vec<String>, SpecError> {
    let first = segments[0];
    let owned = |prefix: Option<&str>| {
        prefix
            .into_iter()
            .map(str::to_owned)
            .chain(segments.iter().map(|s| (*s).to_owned()))
            .collect()
    };
    if TOP_LEVEL.contains(&first) {
        return Ok(owned(None));
    }
    let vars = names_under(root, "vars");
    let stages = names_under(root, "stages");
    if vars.contains(&first) {
        return Ok(owned(Some("vars")));
    }
    if stages.contains(&first) {
        return Ok(owned(Some("stages")));
    }
    let candidates = TOP_LEVEL
        .iter()
        .copied()
        .chain(vars.iter().copied())
        .chain(stages.iter().copied());
    Err(SpecError::new(
        format!(
            "`--set {}` names no variable, stage or top-level key `{first}`",
            segments.join(".")
        ),
        Some(whole),
        segments.join("."),
    )
    .suggest(nearest(first, candidates))
    .note(format!(
        "variables: {}; stages: {}",
        list_or_none(&vars),
        list_or_none(&stages)
    )))
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn names_under<'a>(root: &'a Node, key: &str) -> Vec<&'a str> {
    root.get(key)
        .and_then(Node::as_map)
        .map(|entries| entries.iter().filter_map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default()
}

fn set_path(root: &mut Node, path: &[String], value: Node, whole: &Span) -> Result<(), SpecError> {
    let mut node = root;
    for (depth, seg) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        let here = path[..depth].join(".");
        let inside_params = path.len() >= 4
            && path[0] == "stages"
            && (path[2] == "params" || path[2] == "resources")
            && depth >= 3;
        // Keys the file may leave out: they can be set although absent.
        let optional_key = (depth == 0 && OPTIONAL_TOP_LEVEL.contains(&seg.as_str()))
            || (depth == 2 && path[0] == "stages" && OPTIONAL_STAGE_KEYS.contains(&seg.as_str()));
        let may_add = inside_params || optional_key;
        let exists = match &node.value {
            Value::Map(entries) => entries.iter().any(|(k, _)| k.as_str() == Some(seg)),
            Value::Seq(items) => seg.parse::<usize>().is_ok_and(|i| i < items.len()),
            _ => false,
        };
        if !exists {
            let is_map = matches!(node.value, Value::Map(_))
                || (may_add && matches!(node.value, Value::Null));
            // A mapping the file leaves out (`params`, `resources`, or one inside `params`,
            // such as `optimizer: {adam: ...}`) is made on the way to a key inside it; the
            // kind's parameter check then judges the result as if the file had written it.
            let opens_map =
                (optional_key && depth == 2 && MAPPING_STAGE_KEYS.contains(&seg.as_str()))
                    || inside_params;
            if !(may_add && is_map && (last || opens_map)) {
                return Err(missing_key(node, seg, &here, path, whole));
            }
            if matches!(node.value, Value::Null) {
                node.value = Value::Map(Vec::new());
            }
            if let Value::Map(entries) = &mut node.value {
                let key = Node::new(
                    Value::Scalar(Scalar {
                        text: seg.clone(),
                        plain: true,
                    }),
                    whole.clone(),
                );
                if last {
                    entries.push((key, value));
                    return Ok(());
                }
                entries.push((key, Node::new(Value::Map(Vec::new()), whole.clone())));
            }
        }
        let next = match &mut node.value {
            Value::Map(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.as_str() == Some(seg))
                .map(|(_, v)| v),
            Value::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        };
        let Some(next) = next else {
            return Err(missing_key(
                &Node::new(Value::Null, whole.clone()),
                seg,
                &here,
                path,
                whole,
            ));
        };
        if last {
            *next = value;
            return Ok(());
        }
        node = next;
    }
    Ok(())
}

fn missing_key(parent: &Node, seg: &str, here: &str, path: &[String], whole: &Span) -> SpecError {
    let siblings: Vec<&str> = parent
        .as_map()
        .map(|entries| entries.iter().filter_map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default();
    let place = if here.is_empty() {
        "the top level".to_owned()
    } else {
        format!("`{here}`")
    };
    let mut err = SpecError::new(
        format!(
            "`--set {}` names key `{seg}`, which does not exist in {place}",
            path.join(".")
        ),
        Some(whole),
        path.join("."),
    )
    .suggest(nearest(seg, siblings.iter().copied()));
    if !siblings.is_empty() {
        err = err.note(format!("keys there: {}", siblings.join(", ")));
    } else if !matches!(parent.value, Value::Map(_)) {
        err = err.note(format!("{place} is {}, not a mapping", parent.describe()));
    }
    err
}
