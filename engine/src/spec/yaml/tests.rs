use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::*;

fn node(text: &str) -> Node {
    parse(&Arc::new(Source {
        name: "t.yaml".into(),
        text: text.into(),
    }))
    .unwrap()
}

fn syntax_error(text: &str) -> SyntaxError {
    parse(&Arc::new(Source {
        name: "t.yaml".into(),
        text: text.into(),
    }))
    .unwrap_err()
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Optimizer {
    Adam {
        lr: f64,
    },
    Sgd {
        lr: f64,
        #[serde(default)]
        momentum: f64,
    },
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Params {
    epochs: u32,
    optimizer: Optimizer,
    #[serde(default)]
    hidden: Vec<u32>,
    #[serde(default)]
    name: Option<String>,
}

#[test]
fn reads_typed_values_with_core_schema_scalars() {
    let p: Params = from_node(&node(
        "epochs: 5\noptimizer: {adam: {lr: 1e-3}}\nhidden: [5, 10]\n",
    ))
    .unwrap();
    assert_eq!(
        p,
        Params {
            epochs: 5,
            optimizer: Optimizer::Adam { lr: 0.001 },
            hidden: vec![5, 10],
            name: None
        }
    );
}

#[test]
fn positions_are_one_based_line_and_column() {
    let n = node("a: 1\nbb:\n  c: x\n");
    let c = n.get("bb").unwrap().get("c").unwrap();
    assert_eq!((c.span.start.line, c.span.start.column), (3, 6));
}

#[test]
fn an_unknown_key_is_located_and_gets_a_suggestion() {
    let err = from_node::<Params>(&node(
        "epochs: 5\noptimizer:\n  sgd:\n    lr: 0.1\n    momentun: 0.9\n",
    ))
    .unwrap_err();
    assert_eq!(err.message, "unknown key `momentun`");
    assert_eq!(err.path, vec!["optimizer", "sgd", "momentun"]);
    assert_eq!(err.suggestion.as_deref(), Some("momentum"));
    let span = err.span.unwrap();
    assert_eq!((span.start.line, span.start.column), (5, 5));
}

#[test]
fn a_wrong_type_names_what_was_expected_and_found() {
    let err = from_node::<Params>(&node("epochs: many\noptimizer: {adam: {lr: 1}}\n")).unwrap_err();
    assert!(
        err.message.contains("expected a non-negative integer"),
        "{}",
        err.message
    );
    assert!(err.message.contains("many"), "{}", err.message);
    assert_eq!(err.path, vec!["epochs"]);
    assert_eq!(err.span.unwrap().start.line, 1);
}

#[test]
fn an_unknown_variant_gets_a_suggestion() {
    let err = from_node::<Params>(&node("epochs: 1\noptimizer: {adma: {lr: 1}}\n")).unwrap_err();
    assert_eq!(err.suggestion.as_deref(), Some("adam"));
    assert_eq!(err.span.unwrap().start.line, 2);
}

#[test]
fn a_missing_key_points_at_the_mapping() {
    let err = from_node::<Params>(&node("optimizer: {adam: {lr: 1}}\n")).unwrap_err();
    assert_eq!(err.message, "missing key `epochs`");
}

#[test]
fn quoted_numbers_stay_strings() {
    let n = node("a: '5'\nb: 5\n");
    assert_eq!(
        n.get("a").unwrap().as_scalar().unwrap().resolve(),
        Resolved::Str("5")
    );
    assert_eq!(
        n.get("b").unwrap().as_scalar().unwrap().resolve(),
        Resolved::Int(5)
    );
    let err = from_node::<BTreeMap<String, u32>>(&n).unwrap_err();
    assert!(err.message.contains("expected"), "{}", err.message);
}

#[test]
fn duplicate_keys_are_an_error_naming_both_lines() {
    let err = syntax_error("stages:\n  a: 1\n  b: 2\n  a: 3\n");
    assert!(err.message.contains("duplicate key `a`"), "{}", err.message);
    assert!(err.message.contains("line 2"), "{}", err.message);
    assert_eq!(err.span.start.line, 4);
}

#[test]
fn custom_tags_and_second_documents_are_refused() {
    assert!(
        syntax_error("a: !!python/object x\n")
            .message
            .contains("tags are not supported")
    );
    assert!(
        syntax_error("a: 1\n---\nb: 2\n")
            .message
            .contains("one YAML document")
    );
}

#[test]
fn aliases_expand_but_bombs_are_stopped() {
    let n = node("base: &b {lr: 1}\nother: *b\n");
    assert_eq!(
        n.get("other").unwrap().get("lr").unwrap().as_str(),
        Some("1")
    );
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..8 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
    }
    assert!(syntax_error(&bomb).message.contains("more than"));
}

#[test]
fn a_syntax_error_has_a_position() {
    let err = syntax_error("a: [1, 2\nb: 3\n");
    assert!(err.span.start.line >= 1);
}

#[test]
fn integers_parse_with_signs_radix_and_limits() {
    assert_eq!(resolve_plain("-12"), Resolved::Int(-12));
    assert_eq!(resolve_plain("0x1f"), Resolved::Int(31));
    assert_eq!(
        resolve_plain("18446744073709551615"),
        Resolved::UInt(u64::MAX)
    );
    assert_eq!(resolve_plain("1e-3"), Resolved::Float(0.001));
    assert_eq!(resolve_plain(".5"), Resolved::Float(0.5));
    assert_eq!(resolve_plain("1.2.3"), Resolved::Str("1.2.3"));
    assert_eq!(resolve_plain("e5"), Resolved::Str("e5"));
}
