//! Matrix expansion: one stage declaration with `matrix:` becomes one stage per combination
//! of the axis values.
//!
//! An axis is a list of scalars (`lr: [0.001, 0.01]`) or a mapping from labels to values of
//! any shape (`model: {deep: {...}, shallow: {...}}`). Each expanded stage is named after its
//! values, `train[lr=0.01,batch=64]`, with axes in declaration order, so the name (and the
//! output folder, `train/lr=0.01/batch=64`) stays the same when a value list is reordered or
//! extended. Inside the declaration, `${matrix.lr}` stands for the value of the axis.

use std::collections::BTreeMap;

use super::error::SpecError;
use super::vars::{Lookup, VarLookup};
use super::yaml::{Node, Resolved, Value};
use crate::suggest::nearest;

/// One value of one axis.
#[derive(Clone, Debug)]
pub struct AxisValue {
    /// The label used in stage names and folders.
    pub label: String,
    /// The value substituted for `${matrix.axis}`.
    pub value: Node,
}

/// One axis of a matrix.
#[derive(Clone, Debug)]
pub struct Axis {
    /// The axis name.
    pub name: String,
    /// Its values in file order.
    pub values: Vec<AxisValue>,
}

/// Reads the `matrix:` node of a stage (after variables have been substituted in it).
pub fn axes(matrix: &Node, stage: &str) -> Result<Vec<Axis>, SpecError> {
    let path = format!("stages.{stage}.matrix");
    let Some(entries) = matrix.as_map() else {
        return Err(SpecError::new(
            format!(
                "`matrix` must map axis names to lists of values, found {}",
                matrix.describe()
            ),
            Some(&matrix.span),
            path,
        ));
    };
    if entries.is_empty() {
        return Err(SpecError::new(
            "`matrix` has no axes",
            Some(&matrix.span),
            path,
        ));
    }
    entries.iter().map(|(k, v)| axis(k, v, &path)).collect()
}

fn axis(key: &Node, values: &Node, path: &str) -> Result<Axis, SpecError> {
    let name = key.as_str().unwrap_or_default().to_owned();
    let path = format!("{path}.{name}");
    check_name(&name, key, &path, "axis name")?;
    let values: Vec<AxisValue> = match &values.value {
        Value::Seq(items) => items
            .iter()
            .map(|n| scalar_value(n, &path))
            .collect::<Result<_, _>>()?,
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| {
                let label = k.as_str().unwrap_or_default().to_owned();
                check_name(&label, k, &path, "label")?;
                Ok(AxisValue {
                    label,
                    value: v.clone(),
                })
            })
            .collect::<Result<_, SpecError>>()?,
        _ => {
            return Err(SpecError::new(
                format!(
                    "a matrix axis is a list of values or a mapping of labels to values, found {}",
                    values.describe()
                ),
                Some(&values.span),
                path,
            ));
        }
    };
    if values.is_empty() {
        return Err(SpecError::new(
            format!("matrix axis `{name}` has no values"),
            Some(&key.span),
            path,
        ));
    }
    for (i, v) in values.iter().enumerate() {
        if let Some(first) = values[..i].iter().find(|w| w.label == v.label) {
            return Err(SpecError::new(
                format!("matrix axis `{name}` lists `{}` twice", v.label),
                Some(&v.value.span),
                path,
            )
            .note(format!("first at line {}", first.value.span.start.line)));
        }
    }
    Ok(Axis { name, values })
}

fn scalar_value(node: &Node, path: &str) -> Result<AxisValue, SpecError> {
    let label = match &node.value {
        Value::Scalar(s) => match s.resolve() {
            Resolved::Int(i) => i.to_string(),
            Resolved::UInt(u) => u.to_string(),
            Resolved::Float(f) => {
                serde_json::Number::from_f64(f).map_or_else(|| s.text.clone(), |n| n.to_string())
            }
            Resolved::Bool(b) => b.to_string(),
            Resolved::Null => "null".to_owned(),
            Resolved::Str(t) => t.to_owned(),
        },
        _ => {
            return Err(SpecError::new(
                format!(
                    "a matrix value in a list must be a scalar, found {}",
                    node.describe()
                ),
                Some(&node.span),
                path,
            )
            .note("give values of other shapes labels: `axis: {label: value, ...}`"));
        }
    };
    check_name(&label, node, path, "value")?;
    Ok(AxisValue {
        label,
        value: node.clone(),
    })
}

fn check_name(name: &str, node: &Node, path: &str, what: &str) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() <= super::resolve::MAX_NAME
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SpecError::new(
            format!("matrix {what} `{name}` cannot be part of a stage name or folder"),
            Some(&node.span),
            path,
        )
        .note(format!(
            "use at most {} letters, digits and `._+-`; give other values a label: \
             `axis: {{label: value}}`",
            super::resolve::MAX_NAME
        )))
    }
}

/// The most stages one matrix may expand to (a typo such as a range of a million values
/// must not exhaust memory before anything is reported).
pub const MAX_STAGES: usize = 100_000;

/// Every combination of axis values, first axis outermost, in file order.
pub fn combinations(axes: &[Axis]) -> Vec<Vec<(String, AxisValue)>> {
    let mut out: Vec<Vec<(String, AxisValue)>> = vec![Vec::new()];
    for axis in axes {
        let mut next = Vec::with_capacity(out.len() * axis.values.len());
        for prefix in &out {
            for value in &axis.values {
                let mut combo = prefix.clone();
                combo.push((axis.name.clone(), value.clone()));
                next.push(combo);
            }
        }
        out = next;
    }
    out
}

/// The name of an expanded stage: `base[axis=label,...]`.
pub fn stage_name(base: &str, combo: &[(String, AxisValue)]) -> String {
    if combo.is_empty() {
        return base.to_owned();
    }
    let parts: Vec<String> = combo
        .iter()
        .map(|(a, v)| format!("{a}={}", v.label))
        .collect();
    format!("{base}[{}]", parts.join(","))
}

/// Looks references up in the matrix values of one combination, then in the variables.
pub struct MatrixLookup<'a> {
    /// The variables.
    pub vars: VarLookup<'a>,
    /// Axis name to value, for this combination.
    pub values: BTreeMap<&'a str, &'a AxisValue>,
    /// Whether the stage declares a matrix at all.
    pub has_matrix: bool,
    /// The stage's base name, for messages.
    pub stage: &'a str,
}

impl Lookup for MatrixLookup<'_> {
    fn lookup(&mut self, name: &str, at: &Node, path: &str) -> Result<Option<Node>, SpecError> {
        let Some(axis) = name.strip_prefix("matrix.") else {
            return self.vars.lookup(name, at, path);
        };
        if !self.has_matrix {
            return Err(SpecError::new(
                format!(
                    "`${{{name}}}` is used, but stage `{}` has no `matrix`",
                    self.stage
                ),
                Some(&at.span),
                path,
            ));
        }
        let (axis, rest) = super::vars::split_reference(axis);
        match self.values.get(axis) {
            Some(v) => super::vars::descend(&v.value, rest, name, at, path).map(Some),
            None => {
                let axes: Vec<&str> = self.values.keys().copied().collect();
                let near = nearest(axis, axes.iter().copied()).map(|a| format!("matrix.{a}"));
                Err(SpecError::new(
                    format!("stage `{}` has no matrix axis `{axis}`", self.stage),
                    Some(&at.span),
                    path,
                )
                .suggest(near.as_deref())
                .note(format!("its axes: {}", axes.join(", "))))
            }
        }
    }
}
