//! Variables (`vars:`) and `${...}` interpolation.
//!
//! A scalar that is exactly `${name}` takes the variable's value with its type (a number stays
//! a number, a list stays a list); `${name}` inside a longer scalar is replaced by the
//! variable's text. Variables may refer to other variables; a cycle or an undefined name is an
//! error at the place of the reference. `${matrix.axis}` is left for matrix expansion, and
//! `$${` writes a literal `${`.

use std::collections::BTreeMap;

use super::error::SpecError;
use super::yaml::{Node, Scalar, Value};
use crate::suggest::nearest;

/// One `${...}` reference found in a scalar.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(String),
    Ref(&'a str),
}

/// Splits a scalar into literal text and references; `None` when it has no references.
fn pieces(text: &str) -> Result<Option<Vec<Piece<'_>>>, String> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find("${") {
        if rest[..pos].ends_with('$') {
            literal.push_str(&rest[..pos - 1]);
            literal.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        literal.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{text}`"))?;
        let name = after[..end].trim();
        if name.is_empty() {
            return Err(format!("empty `${{}}` in `{text}`"));
        }
        if !literal.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut literal)));
        }
        out.push(Piece::Ref(name));
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        out.push(Piece::Text(literal));
    }
    Ok(Some(out))
}

/// Something that can look up the value of a reference.
pub trait Lookup {
    /// The value of `name`, or an error message when it has none.
    fn lookup(&mut self, name: &str, at: &Node, path: &str) -> Result<Option<Node>, SpecError>;
}

/// Replaces every `${...}` in `node` for which `lookup` has a value.
pub fn substitute(node: &mut Node, path: &str, lookup: &mut dyn Lookup) -> Result<(), SpecError> {
    match &mut node.value {
        Value::Scalar(s) => {
            let replacement = substitute_scalar(s, node_ref(&node.span, s), path, lookup)?;
            if let Some(value) = replacement {
                node.value = value;
            }
            Ok(())
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &join(path, &i.to_string()), lookup)?;
            }
            Ok(())
        }
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                let key = k.as_str().unwrap_or_default().to_owned();
                substitute(v, &join(path, &key), lookup)?;
            }
            Ok(())
        }
        Value::Null => Ok(()),
    }
}

fn node_ref(span: &super::yaml::Span, s: &Scalar) -> Node {
    Node::new(Value::Scalar(s.clone()), span.clone())
}

/// Joins a key path and a segment with a dot.
pub fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_owned()
    } else {
        format!("{path}.{seg}")
    }
}

fn substitute_scalar(
    s: &Scalar,
    at: Node,
    path: &str,
    lookup: &mut dyn Lookup,
) -> Result<Option<Value>, SpecError> {
    let parts = pieces(&s.text).map_err(|m| SpecError::new(m, Some(&at.span), path))?;
    let Some(parts) = parts else { return Ok(None) };
    if let [Piece::Ref(name)] = parts.as_slice() {
        return Ok(lookup.lookup(name, &at, path)?.map(|n| n.value));
    }
    let mut text = String::new();
    let mut unresolved = false;
    for part in &parts {
        match part {
            Piece::Text(t) => text.push_str(t),
            Piece::Ref(name) => match lookup.lookup(name, &at, path)? {
                Some(value) => match &value.value {
                    Value::Scalar(v) => text.push_str(&v.text),
                    Value::Null => {}
                    _ => {
                        return Err(SpecError::new(
                            format!(
                                "`${{{name}}}` is {}; only a scalar can be part of a longer text",
                                value.describe()
                            ),
                            Some(&at.span),
                            path,
                        ));
                    }
                },
                None => {
                    unresolved = true;
                    text.push_str(&format!("${{{name}}}"));
                }
            },
        }
    }
    if unresolved && text == s.text {
        return Ok(None);
    }
    Ok(Some(Value::Scalar(Scalar {
        text,
        plain: s.plain,
    })))
}

/// Resolves the `vars:` block: each variable's references to others, with cycle detection.
pub fn resolve_vars(vars: Option<&Node>) -> Result<BTreeMap<String, Node>, SpecError> {
    let Some(vars) = vars else {
        return Ok(BTreeMap::new());
    };
    let entries = match &vars.value {
        Value::Map(entries) => entries.clone(),
        Value::Null => return Ok(BTreeMap::new()),
        _ => {
            return Err(SpecError::new(
                format!(
                    "`vars` must be a mapping of names to values, found {}",
                    vars.describe()
                ),
                Some(&vars.span),
                "vars",
            ));
        }
    };
    let mut resolver = VarResolver {
        raw: entries
            .iter()
            .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.clone()))
            .collect(),
        done: BTreeMap::new(),
        active: Vec::new(),
    };
    for (key, _) in &entries {
        let name = key.as_str().unwrap_or_default().to_owned();
        resolver.resolve(&name)?;
    }
    Ok(resolver.done)
}

struct VarResolver {
    raw: BTreeMap<String, Node>,
    done: BTreeMap<String, Node>,
    active: Vec<String>,
}

impl VarResolver {
    fn resolve(&mut self, name: &str) -> Result<(), SpecError> {
        if self.done.contains_key(name) {
            return Ok(());
        }
        let mut node = self
            .raw
            .get(name)
            .cloned()
            .ok_or_else(|| SpecError::new(format!("undefined variable `{name}`"), None, ""))?;
        self.active.push(name.to_owned());
        let path = format!("vars.{name}");
        substitute(&mut node, &path, self)?;
        self.active.pop();
        self.done.insert(name.to_owned(), node);
        Ok(())
    }
}

impl Lookup for VarResolver {
    fn lookup(&mut self, name: &str, at: &Node, path: &str) -> Result<Option<Node>, SpecError> {
        if name.starts_with("matrix.") {
            return Err(SpecError::new(
                format!("`${{{name}}}` can only be used inside a stage that has a `matrix`"),
                Some(&at.span),
                path,
            ));
        }
        if let Some(start) = self.active.iter().position(|a| a == name) {
            let mut cycle: Vec<&str> = self.active[start..].iter().map(String::as_str).collect();
            cycle.push(name);
            return Err(SpecError::new(
                "variables refer to each other in a cycle",
                Some(&at.span),
                path,
            )
            .note(format!("the cycle: {}", cycle.join(" -> "))));
        }
        if !self.raw.contains_key(name) {
            return Err(undefined(
                name,
                self.raw.keys().map(String::as_str),
                at,
                path,
            ));
        }
        self.resolve(name)?;
        Ok(self.done.get(name).cloned())
    }
}

/// The error for a reference to a variable that does not exist.
pub fn undefined<'a>(
    name: &str,
    known: impl Iterator<Item = &'a str> + Clone,
    at: &Node,
    path: &str,
) -> SpecError {
    let list: Vec<&str> = known.clone().collect();
    let mut err = SpecError::new(format!("undefined variable `{name}`"), Some(&at.span), path)
        .suggest(nearest(name, known));
    err = err.note(if list.is_empty() {
        "the file defines no variables (add them under `vars:`)".to_owned()
    } else {
        format!("defined variables: {}", list.join(", "))
    });
    err
}

/// Looks references up in resolved variables, leaving `${matrix.*}` for later.
pub struct VarLookup<'a> {
    /// The resolved variables.
    pub vars: &'a BTreeMap<String, Node>,
}

impl Lookup for VarLookup<'_> {
    fn lookup(&mut self, name: &str, at: &Node, path: &str) -> Result<Option<Node>, SpecError> {
        if name.starts_with("matrix.") {
            return Ok(None);
        }
        let (head, rest) = split_reference(name);
        match self.vars.get(head) {
            Some(node) => descend(node, rest, name, at, path).map(Some),
            None => Err(undefined(
                head,
                self.vars.keys().map(String::as_str),
                at,
                path,
            )),
        }
    }
}

/// A reference `a.b.c` as its first name and the rest (`b.c`, or empty).
pub fn split_reference(name: &str) -> (&str, &str) {
    name.split_once('.').unwrap_or((name, ""))
}

/// The part of `value` at a dotted `rest` (mapping keys, list indices); `value` itself when
/// `rest` is empty. `reference` is the whole reference, for messages.
pub fn descend(
    value: &Node,
    rest: &str,
    reference: &str,
    at: &Node,
    path: &str,
) -> Result<Node, SpecError> {
    let mut node = value;
    for seg in rest.split('.').filter(|s| !s.is_empty()) {
        let next = match &node.value {
            Value::Map(_) => node.get(seg),
            Value::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        node = next.ok_or_else(|| {
            let keys: Vec<&str> = node
                .as_map()
                .map(|e| e.iter().filter_map(|(k, _)| k.as_str()).collect())
                .unwrap_or_default();
            let err = SpecError::new(
                format!("`${{{reference}}}`: {} has no `{seg}`", node.describe()),
                Some(&at.span),
                path,
            );
            if keys.is_empty() {
                err
            } else {
                err.suggest(crate::suggest::nearest(seg, keys.iter().copied()))
                    .note(format!("its keys: {}", keys.join(", ")))
            }
        })?;
    }
    Ok(Node::new(node.value.clone(), at.span.clone()))
}

#[cfg(test)]
mod tests {
    use super::{Piece, pieces};

    #[test]
    fn splits_text_and_references() {
        let got = pieces("run-${lr}-x").unwrap().unwrap();
        assert_eq!(
            got,
            vec![
                Piece::Text("run-".into()),
                Piece::Ref("lr"),
                Piece::Text("-x".into())
            ]
        );
        assert_eq!(pieces("plain").unwrap(), None);
    }

    #[test]
    fn an_escaped_reference_is_literal() {
        let got = pieces("cost $${x}").unwrap().unwrap();
        assert_eq!(got, vec![Piece::Text("cost ${x}".into())]);
    }

    #[test]
    fn an_unclosed_reference_is_an_error() {
        assert!(pieces("${oops").is_err());
    }
}
