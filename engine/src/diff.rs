//! The smallest difference between two JSON values, as `path: old -> new` lines: what
//! `plan` prints to explain why a stage's parameters no longer match its last run.

use serde_json::Value;

/// One changed value.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Dotted path (`optimizer.adam.lr`); list items by index.
    pub path: String,
    /// The old value, `None` where the key is new.
    pub old: Option<Value>,
    /// The new value, `None` where the key is gone.
    pub new: Option<Value>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "(absent)".to_owned(), compact);
        write!(
            f,
            "{}: {} -> {}",
            self.path,
            show(&self.old),
            show(&self.new)
        )
    }
}

/// A value in one short line (long lists and mappings are abbreviated).
pub fn compact(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        let head: String = text.chars().take(57).collect();
        format!("{head}...")
    } else {
        text
    }
}

/// Every leaf that differs between `old` and `new`, under `prefix`.
pub fn diff(prefix: &str, old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(prefix, old, new, &mut out);
    out
}

fn join(prefix: &str, seg: &str) -> String {
    if prefix.is_empty() {
        seg.to_owned()
    } else {
        format!("{prefix}.{seg}")
    }
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => walk(&join(path, k), va, vb, out),
                    None => out.push(Change {
                        path: join(path, k),
                        old: Some(va.clone()),
                        new: None,
                    }),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(Change {
                        path: join(path, k),
                        old: None,
                        new: Some(vb.clone()),
                    });
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                walk(&join(path, &i.to_string()), va, vb, out);
            }
        }
        _ => out.push(Change {
            path: path.to_owned(),
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_one_changed_leaf() {
        let old = json!({"optimizer": {"adam": {"lr": 0.001, "eps": 1e-8}}, "epochs": 5});
        let new = json!({"optimizer": {"adam": {"lr": 0.01, "eps": 1e-8}}, "epochs": 5});
        let changes = diff("train_deep", &old, &new);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].to_string(),
            "train_deep.optimizer.adam.lr: 0.001 -> 0.01"
        );
    }

    #[test]
    fn a_switched_variant_shows_both_sides() {
        let old = json!({"optimizer": {"adam": {"lr": 0.001}}});
        let new = json!({"optimizer": {"sgd": {"lr": 0.001}}});
        let lines: Vec<String> = diff("", &old, &new)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            vec![
                "optimizer.adam: {\"lr\":0.001} -> (absent)".to_owned(),
                "optimizer.sgd: (absent) -> {\"lr\":0.001}".to_owned(),
            ]
        );
    }

    #[test]
    fn lists_of_other_lengths_change_as_a_whole() {
        let changes = diff(
            "m",
            &json!({"hidden": [5, 10]}),
            &json!({"hidden": [5, 10, 10]}),
        );
        assert_eq!(changes[0].to_string(), "m.hidden: [5,10] -> [5,10,10]");
    }
}
