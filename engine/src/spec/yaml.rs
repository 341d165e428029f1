//! A YAML tree that remembers where every node came from, and a serde deserializer over it.
//!
//! Pipeline files are parsed with `saphyr-parser` (the maintained successor of yaml-rust,
//! which gives a span for every event) into [`Node`]s. Every later step (overrides, variables,
//! matrix expansion, typed parameters) works on this tree, so any error can name the file,
//! line and column and the key path. Only the data part of YAML is accepted: one document,
//! no custom tags, aliases expanded with a size limit; nothing in a file can run code.

use std::fmt;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as RawSpan};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::stage::ParamIssue;
use crate::suggest::nearest;

/// A text that nodes point into: a pipeline file, or one `--set` argument.
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    /// What to call it in messages: a path, or `--set epochs=5`.
    pub name: String,
    /// The whole text.
    pub text: String,
}

/// A position in a [`Source`]: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// Where a node is: its source and its first and last positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The text it is in.
    pub source: Arc<Source>,
    /// Where it starts.
    pub start: Pos,
    /// Where it ends (exclusive).
    pub end: Pos,
}

impl Span {
    fn from_raw(source: &Arc<Source>, raw: &RawSpan) -> Self {
        let pos = |m: &saphyr_parser::Marker| Pos {
            line: m.line(),
            column: m.col() + 1,
        };
        Self {
            source: source.clone(),
            start: pos(&raw.start),
            end: pos(&raw.end),
        }
    }

    /// A span over the whole of a one-line source (used for `--set` values).
    pub fn whole(source: &Arc<Source>) -> Self {
        let width = source.text.chars().count();
        Self {
            source: source.clone(),
            start: Pos { line: 1, column: 1 },
            end: Pos {
                line: 1,
                column: width + 1,
            },
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.source.name, self.start.line, self.start.column
        )
    }
}

/// The value of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `~`, `null`, or nothing at all.
    Null,
    /// A scalar, as written (its type is decided by what reads it).
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; keys are unique.
    Map(Vec<(Node, Node)>),
}

/// A scalar's text and whether it was quoted (quoted scalars are always strings).
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The text after unescaping.
    pub text: String,
    /// True for plain (unquoted) scalars, whose type follows YAML 1.2's core schema.
    pub plain: bool,
}

/// A YAML node with its location.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What it holds.
    pub value: Value,
    /// Where it was written.
    pub span: Span,
}

/// What a plain scalar means under YAML 1.2's core schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved<'a> {
    /// `null`, `~`, or empty.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in i64.
    Int(i64),
    /// An integer above i64's range.
    UInt(u64),
    /// A floating-point number (including `.inf` and `.nan`).
    Float(f64),
    /// Anything else.
    Str(&'a str),
}

impl Scalar {
    /// The scalar's meaning under the core schema (quoted scalars are strings).
    pub fn resolve(&self) -> Resolved<'_> {
        if !self.plain {
            return Resolved::Str(&self.text);
        }
        resolve_plain(&self.text)
    }
}

fn resolve_plain(t: &str) -> Resolved<'_> {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(t) {
        return i;
    }
    if looks_like_float(t)
        && let Ok(f) = t.parse::<f64>()
    {
        return Resolved::Float(f);
    }
    Resolved::Str(t)
}

fn parse_int(t: &str) -> Option<Resolved<'_>> {
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(&clean, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude)
            .ok()
            .map(|m| -m)
            .or_else(|| (magnitude == i64::MIN.unsigned_abs()).then_some(i64::MIN))?;
        Some(Resolved::Int(v))
    } else {
        Some(i64::try_from(magnitude).map_or(Resolved::UInt(magnitude), Resolved::Int))
    }
}

fn looks_like_float(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let mut chars = body.chars().peekable();
    let mut digits = 0;
    while chars
        .peek()
        .is_some_and(|c| c.is_ascii_digit() || *c == '_')
    {
        chars.next();
        digits += 1;
    }
    if chars.peek() == Some(&'.') {
        chars.next();
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || *c == '_')
        {
            chars.next();
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if matches!(chars.peek(), Some('e' | 'E')) {
        chars.next();
        if matches!(chars.peek(), Some('+' | '-')) {
            chars.next();
        }
        let mut exp = 0;
        while chars.peek().is_some_and(char::is_ascii_digit) {
            chars.next();
            exp += 1;
        }
        if exp == 0 {
            return false;
        }
    }
    chars.next().is_none()
}

impl Node {
    /// A new node.
    pub fn new(value: Value, span: Span) -> Self {
        Self { value, span }
    }

    /// The entries if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The scalar if this is one.
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a scalar key or value (`None` for anything else).
    pub fn as_str(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.text.as_str())
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The entry (key node and value node) under `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<&(Node, Node)> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key))
    }

    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// What the node is, in words, for error messages.
    pub fn describe(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => "nothing (null)",
                Resolved::Bool(_) => "a boolean",
                Resolved::Int(_) | Resolved::UInt(_) => "an integer",
                Resolved::Float(_) => "a number",
                Resolved::Str(_) => "a string",
            },
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The node as JSON (plain scalars resolved by the core schema), for hashing and display.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => J::Null,
                Resolved::Bool(b) => J::Bool(b),
                Resolved::Int(i) => J::from(i),
                Resolved::UInt(u) => J::from(u),
                Resolved::Float(f) => serde_json::Number::from_f64(f)
                    .map_or_else(|| J::String(s.text.clone()), J::Number),
                Resolved::Str(t) => J::String(t.to_owned()),
            },
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The deepest node along `path` (mapping keys or sequence indices) and how many
    /// segments of the path it got through.
    pub fn find(&self, path: &[String]) -> (&Node, usize) {
        let mut node = self;
        for (depth, seg) in path.iter().enumerate() {
            let next = match &node.value {
                Value::Map(_) => node.get(seg),
                Value::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return (node, depth),
            }
        }
        (node, path.len())
    }
}

/// A YAML text that could not be read as a pipeline file's data.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where.
    pub span: Span,
    /// What.
    pub message: String,
}

/// Most nodes one file may expand to through aliases (a guard against alias bombs).
const MAX_NODES: usize = 1_000_000;

/// Parses one YAML document into a located tree.
pub fn parse(source: &Arc<Source>) -> Result<Node, SyntaxError> {
    let mut builder = TreeBuilder {
        source: source.clone(),
        stack: Vec::new(),
        anchors: Vec::new(),
        count: 0,
        root: None,
        documents: 0,
    };
    let parser = Parser::new_from_str(&source.text);
    for item in parser {
        let (event, span) = item.map_err(|e| SyntaxError {
            span: Span {
                source: source.clone(),
                start: Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                },
                end: Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 2,
                },
            },
            message: e.info().to_owned(),
        })?;
        builder.event(event, Span::from_raw(source, &span))?;
    }
    Ok(builder
        .root
        .unwrap_or_else(|| Node::new(Value::Null, Span::whole(source))))
}

enum Open {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        span: Span,
        anchor: usize,
    },
}

struct TreeBuilder {
    source: Arc<Source>,
    stack: Vec<Open>,
    anchors: Vec<(usize, Node)>,
    count: usize,
    root: Option<Node>,
    documents: usize,
}

impl TreeBuilder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let err = |message: &str| SyntaxError {
            span: span.clone(),
            message: message.to_owned(),
        };
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(err(
                        "a pipeline file holds one YAML document; found a second `---`",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = matches!(style, ScalarStyle::Plain);
                let mut plain = plain;
                if let Some(tag) = tag {
                    if tag.handle == "tag:yaml.org,2002:" && tag.suffix == "str" {
                        plain = false;
                    } else {
                        return Err(err(&format!(
                            "YAML tags are not supported (found `{}{}`)",
                            tag.handle, tag.suffix
                        )));
                    }
                }
                let node = Node::new(
                    Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain,
                    }),
                    span,
                );
                self.add(node, anchor)?;
            }
            Event::SequenceStart(anchor, tag) => {
                Self::reject_tag(tag.as_deref(), &span)?;
                self.stack.push(Open::Seq {
                    items: Vec::new(),
                    span,
                    anchor,
                });
            }
            Event::MappingStart(anchor, tag) => {
                Self::reject_tag(tag.as_deref(), &span)?;
                self.stack.push(Open::Map {
                    entries: Vec::new(),
                    key: None,
                    span,
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(&span)?,
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| n.clone())
                    .ok_or_else(|| err("alias to an unknown anchor"))?;
                self.count += count_nodes(&node);
                let node = Node { span, ..node };
                self.add(node, 0)?;
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        if self.count > MAX_NODES {
            return Err(SyntaxError {
                span: Span::whole(&self.source),
                message: format!("the file expands to more than {MAX_NODES} nodes through aliases"),
            });
        }
        Ok(())
    }

    fn reject_tag(tag: Option<&saphyr_parser::Tag>, span: &Span) -> Result<(), SyntaxError> {
        match tag {
            Some(t) => Err(SyntaxError {
                span: span.clone(),
                message: format!(
                    "YAML tags are not supported (found `{}{}`)",
                    t.handle, t.suffix
                ),
            }),
            None => Ok(()),
        }
    }

    fn close(&mut self, end: &Span) -> Result<(), SyntaxError> {
        let open = self.stack.pop().ok_or_else(|| SyntaxError {
            span: end.clone(),
            message: "unbalanced end of a collection".to_owned(),
        })?;
        let (value, mut span, anchor) = match open {
            Open::Seq {
                items,
                span,
                anchor,
            } => (Value::Seq(items), span, anchor),
            Open::Map {
                entries,
                span,
                anchor,
                ..
            } => (Value::Map(entries), span, anchor),
        };
        if end.end > span.start {
            span.end = end.end;
        }
        self.add(Node::new(value, span), anchor)
    }

    fn add(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        self.count += 1;
        if anchor != 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { entries, key, .. }) => match key.take() {
                None => {
                    if !matches!(node.value, Value::Scalar(_) | Value::Null) {
                        return Err(SyntaxError {
                            span: node.span,
                            message: "mapping keys must be plain names, not lists or mappings"
                                .to_owned(),
                        });
                    }
                    if let Some((first, _)) =
                        entries.iter().find(|(k, _)| k.as_str() == node.as_str())
                    {
                        return Err(SyntaxError {
                            message: format!(
                                "duplicate key `{}` (first defined at line {})",
                                node.as_str().unwrap_or_default(),
                                first.span.start.line
                            ),
                            span: node.span,
                        });
                    }
                    *key = Some(node);
                }
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(count_nodes).sum(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| count_nodes(k) + count_nodes(v))
            .sum(),
        _ => 0,
    }
}

/// An error found while reading typed values from a [`Node`] tree.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// Where (the innermost node that was being read).
    pub span: Option<Span>,
    /// Key path from the node deserialization started at.
    pub path: Vec<String>,
    /// The valid names, for an unknown key or variant.
    pub expected: Vec<String>,
    /// The nearest valid name to a misspelled one.
    pub suggestion: Option<String>,
}

impl DeError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            span: None,
            path: Vec::new(),
            expected: Vec::new(),
            suggestion: None,
        }
    }

    fn at(mut self, span: &Span) -> Self {
        if self.span.is_none() {
            self.span = Some(span.clone());
        }
        self
    }

    fn under(mut self, segment: &str) -> Self {
        self.path.insert(0, segment.to_owned());
        self
    }

    /// Locates a [`ParamIssue`] found after parsing in the parameter tree it came from.
    pub fn from_issue(params: &Node, issue: ParamIssue) -> Self {
        let (node, _) = params.find(&issue.path);
        Self {
            span: Some(node.span.clone()),
            path: issue.path,
            ..Self::new(issue.message)
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(msg.to_string())
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new(format!(
            "expected {exp}, found {}",
            describe_unexpected(&unexp)
        ))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new(format!(
            "expected {exp}, found {}",
            describe_unexpected(&unexp)
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::new(format!("unknown key `{field}`"));
        e.expected = expected.iter().map(|s| (*s).to_owned()).collect();
        e.suggestion = nearest(field, expected.iter().copied()).map(str::to_owned);
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::new(format!("unknown value `{variant}`"));
        e.expected = expected.iter().map(|s| (*s).to_owned()).collect();
        e.suggestion = nearest(variant, expected.iter().copied()).map(str::to_owned);
        e
    }

    fn missing_field(field: &'static str) -> Self {
        Self::new(format!("missing key `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::new(format!("key `{field}` given twice"))
    }
}

fn describe_unexpected(u: &de::Unexpected<'_>) -> String {
    match u {
        de::Unexpected::Str(s) => format!("the string `{s}`"),
        de::Unexpected::Signed(i) => format!("the integer {i}"),
        de::Unexpected::Unsigned(i) => format!("the integer {i}"),
        de::Unexpected::Float(x) => format!("the number {x}"),
        de::Unexpected::Bool(b) => format!("the boolean {b}"),
        de::Unexpected::Unit => "nothing (null)".to_owned(),
        de::Unexpected::Seq => "a list".to_owned(),
        de::Unexpected::Map => "a mapping".to_owned(),
        other => other.to_string(),
    }
}

/// Reads a typed value from a node tree; errors carry the location and key path.
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> Result<T, DeError> {
    T::deserialize(NodeDeserializer { node })
}

struct NodeDeserializer<'a> {
    node: &'a Node,
}

impl<'a> NodeDeserializer<'a> {
    fn scalar(&self) -> Option<&'a Scalar> {
        self.node.as_scalar()
    }

    fn wrong(&self, exp: &str) -> DeError {
        DeError::new(format!("expected {exp}, found {}", self.node.describe())).at(&self.node.span)
    }

    fn number<T: std::str::FromStr>(&self, exp: &str) -> Result<T, DeError> {
        let s = self
            .scalar()
            .filter(|s| s.plain)
            .ok_or_else(|| self.wrong(exp))?;
        let clean: String = s.text.chars().filter(|c| *c != '_').collect();
        clean.parse::<T>().map_err(|_| {
            DeError::new(format!("expected {exp}, found `{}`", s.text)).at(&self.node.span)
        })
    }

    fn float(&self) -> Result<f64, DeError> {
        match self.scalar().filter(|s| s.plain).map(Scalar::resolve) {
            Some(Resolved::Float(f)) => Ok(f),
            Some(Resolved::Int(i)) => Ok(i as f64),
            Some(Resolved::UInt(u)) => Ok(u as f64),
            _ => Err(self.wrong("a number")),
        }
    }
}

macro_rules! deserialize_int {
    ($($method:ident => $visit:ident, $ty:ty, $what:literal;)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let value: $ty = match self.scalar().filter(|s| s.plain).map(Scalar::resolve) {
                Some(Resolved::Int(i)) => <$ty>::try_from(i).map_err(|_| {
                    DeError::new(format!("{i} is out of range for {}", $what)).at(&self.node.span)
                })?,
                Some(Resolved::UInt(u)) => <$ty>::try_from(u).map_err(|_| {
                    DeError::new(format!("{u} is out of range for {}", $what)).at(&self.node.span)
                })?,
                _ => self.number::<$ty>($what)?,
            };
            visitor.$visit(value).map_err(|e: DeError| e.at(&self.node.span))
        })*
    };
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = &self.node.span;
        let result = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::UInt(u) => visitor.visit_u64(u),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(t) => visitor.visit_str(t),
            },
            Value::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
                index: 0,
            }),
            Value::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                pending: None,
            }),
        };
        result.map_err(|e: DeError| e.at(span))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar().filter(|s| s.plain).map(Scalar::resolve) {
            Some(Resolved::Bool(b)) => visitor
                .visit_bool(b)
                .map_err(|e: DeError| e.at(&self.node.span)),
            _ => Err(self.wrong("`true` or `false`")),
        }
    }

    deserialize_int! {
        deserialize_i8 => visit_i8, i8, "an integer (i8)";
        deserialize_i16 => visit_i16, i16, "an integer (i16)";
        deserialize_i32 => visit_i32, i32, "an integer";
        deserialize_i64 => visit_i64, i64, "an integer";
        deserialize_u8 => visit_u8, u8, "a non-negative integer below 256";
        deserialize_u16 => visit_u16, u16, "a non-negative integer below 65536";
        deserialize_u32 => visit_u32, u32, "a non-negative integer";
        deserialize_u64 => visit_u64, u64, "a non-negative integer";
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        visitor
            .visit_f32(f as f32)
            .map_err(|e: DeError| e.at(&self.node.span))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        visitor
            .visit_f64(f)
            .map_err(|e: DeError| e.at(&self.node.span))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(s) if !(s.plain && s.resolve() == Resolved::Null) => visitor
                .visit_str(&s.text)
                .map_err(|e: DeError| e.at(&self.node.span)),
            _ => Err(self.wrong("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let is_null = match &self.node.value {
            Value::Null => true,
            Value::Scalar(s) => s.resolve() == Resolved::Null,
            _ => false,
        };
        let span = &self.node.span;
        if is_null {
            visitor.visit_none().map_err(|e: DeError| e.at(span))
        } else {
            visitor.visit_some(self).map_err(|e: DeError| e.at(span))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = &self.node.span;
        visitor
            .visit_newtype_struct(self)
            .map_err(|e: DeError| e.at(span))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) => visitor
                .visit_seq(SeqAccess {
                    items: items.iter(),
                    index: 0,
                })
                .map_err(|e: DeError| e.at(&self.node.span)),
            _ => Err(self.wrong("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        // A fixed-size list (a range `[start, end]`) takes exactly that many values; serde's
        // visitors stop reading after them and would drop the rest without a word.
        if let Value::Seq(items) = &self.node.value
            && items.len() != len
        {
            return Err(DeError::new(format!(
                "expected a list of {len} values, found a list of {}",
                items.len()
            ))
            .at(&self.node.span));
        }
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(entries) => visitor
                .visit_map(MapAccess {
                    entries: entries.iter(),
                    pending: None,
                })
                .map_err(|e: DeError| e.at(&self.node.span)),
            _ => Err(self.wrong("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = &self.node.span;
        match &self.node.value {
            Value::Scalar(s) => visitor
                .visit_enum(s.text.as_str().into_deserializer())
                .map_err(|e: DeError| e.at(span)),
            Value::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor
                    .visit_enum(EnumAccess { key, value })
                    .map_err(|e: DeError| e.at(span))
            }
            _ => Err(DeError::new(format!(
                "expected one of {} (a name, or a mapping with one of them as its only key), \
                 found {}",
                variants
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.node.describe()
            ))
            .at(span)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'a> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(NodeDeserializer { node })
            .map(Some)
            .map_err(|e: DeError| e.at(&node.span).under(&index.to_string()))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    pending: Option<&'a (Node, Node)>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some(entry);
        let key = &entry.0;
        let name = key.as_str().unwrap_or_default();
        seed.deserialize(NodeDeserializer { node: key })
            .map(Some)
            .map_err(|e: DeError| e.at(&key.span).under(name))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(DeError::new("a value was read before its key"));
        };
        let name = key.as_str().unwrap_or_default();
        seed.deserialize(NodeDeserializer { node: value })
            .map_err(|e: DeError| e.at(&value.span).under(name))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumAccess<'a> {
    key: &'a Node,
    value: &'a Node,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = DeError;
    type Variant = VariantAccess<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let name = self.key.as_str().unwrap_or_default();
        let variant = seed
            .deserialize(NodeDeserializer { node: self.key })
            .map_err(|e: DeError| e.at(&self.key.span))?;
        Ok((
            variant,
            VariantAccess {
                value: self.value,
                name: name.to_owned(),
            },
        ))
    }
}

struct VariantAccess<'a> {
    value: &'a Node,
    name: String,
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match &self.value.value {
            Value::Null => Ok(()),
            Value::Scalar(s) if s.resolve() == Resolved::Null => Ok(()),
            _ => Err(DeError::new(format!("`{}` takes no value", self.name)).at(&self.value.span)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(NodeDeserializer { node: self.value })
            .map_err(|e: DeError| e.at(&self.value.span).under(&self.name))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(NodeDeserializer { node: self.value }, visitor)
            .map_err(|e| e.under(&self.name))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(NodeDeserializer { node: self.value }, visitor)
            .map_err(|e| e.under(&self.name))
    }
}

#[cfg(test)]
mod tests;
