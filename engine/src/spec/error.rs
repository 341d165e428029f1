//! Errors in pipeline files: what is wrong, where (file, line, column, key path), what was
//! expected, and a suggestion for a likely typo; rendered with the offending source line.

use std::fmt;

use super::yaml::{DeError, Span, SyntaxError};

/// One problem in a pipeline file or a `--set` override.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// Where, if the problem has a place.
    pub span: Option<Span>,
    /// The key path (`stages.train_deep.params.optimizer.lr`), empty for the whole file.
    pub key_path: String,
    /// Extra lines: what was expected, the cycle, where the other definition is.
    pub notes: Vec<String>,
    /// A suggested fix (`did you mean `lr`?`).
    pub help: Option<String>,
}

impl SpecError {
    /// An error at a node.
    pub fn new(
        message: impl Into<String>,
        span: Option<&Span>,
        key_path: impl Into<String>,
    ) -> Self {
        Self {
            message: message.into(),
            span: span.cloned(),
            key_path: key_path.into(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// Adds an explanatory note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Adds "did you mean" help when a suggestion exists.
    pub fn suggest(mut self, suggestion: Option<&str>) -> Self {
        if let Some(s) = suggestion {
            self.help = Some(format!("did you mean `{s}`?"));
        }
        self
    }

    /// Adds the list of valid names as a note.
    pub fn expected_one_of<'a>(self, names: impl IntoIterator<Item = &'a str>) -> Self {
        let list: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
        if list.is_empty() {
            return self;
        }
        self.note(format!("expected one of: {}", list.join(", ")))
    }

    /// Converts a typed-deserialization error under the node at `prefix`.
    pub fn from_de(err: DeError, prefix: &str) -> Self {
        let mut path = prefix.to_owned();
        for seg in &err.path {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(seg);
        }
        let expected: Vec<&str> = err.expected.iter().map(String::as_str).collect();
        Self::new(err.message.clone(), err.span.as_ref(), path)
            .expected_one_of(expected)
            .suggest(err.suggestion.as_deref())
    }

    /// Converts a syntax error.
    pub fn from_syntax(err: SyntaxError) -> Self {
        let line = err
            .span
            .source
            .text
            .lines()
            .nth(err.span.start.line.saturating_sub(1));
        let unquoted_reference = line.is_some_and(|l| l.contains("${") && l.contains(['{', '[']));
        let e = Self::new(err.message, Some(&err.span), "");
        if unquoted_reference {
            e.note("inside `{...}` or `[...]`, quote a reference: '${name}'")
        } else {
            e
        }
    }

    /// The error as text with the offending source line underlined.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}", self.message);
        if !self.key_path.is_empty() {
            out.push_str(&format!(" (at `{}`)", self.key_path));
        }
        out.push('\n');
        if let Some(span) = &self.span {
            out.push_str(&render_snippet(span));
        }
        for note in &self.notes {
            out.push_str(&format!("   = {note}\n"));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("   = help: {help}\n"));
        }
        out
    }
}

/// The most characters of a source line a snippet shows; a longer line (a generated or
/// minified file) is cut to a window around the error, marked with `...`.
const SNIPPET_WIDTH: usize = 120;

fn render_snippet(span: &Span) -> String {
    let line_no = span.start.line;
    let Some(line) = span.source.text.lines().nth(line_no.saturating_sub(1)) else {
        return format!("  --> {span}\n");
    };
    let gutter = line_no.to_string().len();
    let pad = " ".repeat(gutter);
    let chars: Vec<char> = line.chars().collect();
    let start = span.start.column.saturating_sub(1);
    let end = if span.end.line == span.start.line && span.end.column > span.start.column {
        span.end.column - 1
    } else {
        chars.len().max(start + 1)
    };
    // The window of the line shown: all of it, or SNIPPET_WIDTH characters from a little
    // before the error.
    let (from, to) = if chars.len() <= SNIPPET_WIDTH {
        (0, chars.len())
    } else {
        let from = start.saturating_sub(SNIPPET_WIDTH / 4);
        (from, (from + SNIPPET_WIDTH).min(chars.len()))
    };
    let before = if from > 0 { "..." } else { "" };
    let after = if to < chars.len() { "..." } else { "" };
    let shown: String = chars[from..to].iter().collect();
    let width = end.min(to.max(start + 1)).saturating_sub(start).max(1);
    let lead: String = " ".repeat(before.len())
        + &chars[from..start.min(chars.len()).max(from)]
            .iter()
            .map(|&c| if c == '\t' { '\t' } else { ' ' })
            .collect::<String>();
    format!(
        "{pad}--> {span}\n{pad} |\n{line_no} | {before}{shown}{after}\n{pad} | {lead}{}\n",
        "^".repeat(width)
    )
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.span {
            Some(span) => write!(f, "{span}: {}", self.message)?,
            None => f.write_str(&self.message)?,
        }
        if !self.key_path.is_empty() {
            write!(f, " (at `{}`)", self.key_path)?;
        }
        if let Some(help) = &self.help {
            write!(f, "; {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

/// Every problem found in a pipeline file (checking goes on past the first where it can).
#[derive(Debug, Clone, PartialEq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    /// All errors rendered with snippets, separated by blank lines.
    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(SpecError::render)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> Self {
        Self(vec![e])
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => write!(
                f,
                "{} problems in the pipeline file; the first: {}",
                many.len(),
                many.first().map(ToString::to_string).unwrap_or_default()
            ),
        }
    }
}

impl std::error::Error for SpecErrors {}
