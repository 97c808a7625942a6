//! A span-annotated YAML node tree built from the parser's events (JSON is YAML too).
//!
//! serde stops at the first error, so the loader first builds this tree, checks it
//! against the schema to find every structural problem, and maps the path of every later
//! finding back to a line and column through it. The tree is built recursively, so only
//! from events [`crate::limits`] has checked: its depth and size are bounded.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{ErrorKind, Event, ScalarStyle, ScanError, Span as RawSpan};

use crate::finding::Finding;
use crate::limits;
use crate::path::FieldPath;

/// A 1-based position; columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A source range; `end` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    pub(crate) fn from_raw(raw: &RawSpan) -> Self {
        Self {
            start: Pos {
                line: raw.start.line(),
                column: raw.start.col() + 1,
            },
            end: Pos {
                line: raw.end.line(),
                column: raw.end.col() + 1,
            },
        }
    }

    pub(crate) fn point(line: usize, column: usize) -> Self {
        let pos = Pos { line, column };
        Self {
            start: pos,
            end: pos,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// How a scalar was written; only plain scalars are resolved to null/bool/number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    pub text: String,
    pub style: Style,
    /// Core-schema tag suffix (`str`, `int`, ...) when one was given.
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub span: Span,
}

/// What a plain scalar resolves to under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    Null,
    Bool(bool),
    Int,
    Float,
    Str,
}

impl Scalar {
    pub(crate) fn resolve(&self) -> Resolved {
        match (self.style, self.tag.as_deref()) {
            (_, Some("str")) | (Style::Quoted | Style::Block, _) => return Resolved::Str,
            (_, Some("null")) => return Resolved::Null,
            _ => {}
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => Resolved::Null,
            "true" | "True" | "TRUE" => Resolved::Bool(true),
            "false" | "False" | "FALSE" => Resolved::Bool(false),
            _ if parse_int(t).is_some() || is_int_syntax(t) => Resolved::Int,
            _ if is_float_syntax(t) => Resolved::Float,
            _ => Resolved::Str,
        }
    }
}

fn is_int_syntax(t: &str) -> bool {
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a YAML 1.2 core-schema integer (`12`, `-3`, `0x1F`, `0o17`).
pub(crate) fn parse_int(t: &str) -> Option<i128> {
    if let Some(hex) = t.strip_prefix("0x") {
        return i128::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return i128::from_str_radix(oct, 8).ok();
    }
    if is_int_syntax(t) {
        return t.parse().ok();
    }
    None
}

fn is_float_syntax(t: &str) -> bool {
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.strip_prefix(['-', '+']).unwrap_or(&lower);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    let (mantissa, exponent) = match unsigned.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit()))
                && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

impl Node {
    /// A short human name of what this node is, for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            Kind::Seq(_) => "a sequence".to_owned(),
            Kind::Map(_) => "a mapping".to_owned(),
            Kind::Scalar(s) => match s.resolve() {
                Resolved::Null => "null (an empty value)".to_owned(),
                Resolved::Bool(_) => format!("the boolean `{}`", s.text),
                Resolved::Int => format!("the integer `{}`", s.text),
                Resolved::Float => format!("the number `{}`", s.text),
                Resolved::Str if s.style == Style::Quoted && parse_int(&s.text).is_some() => {
                    format!(
                        "the string \"{}\" (remove the quotes to write a number)",
                        s.text
                    )
                }
                Resolved::Str => format!("the string `{}`", shorten(&s.text)),
            },
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s) if s.resolve() == Resolved::Null)
    }
}

fn shorten(text: &str) -> String {
    let first_line = text.lines().next().unwrap_or("");
    if first_line.chars().count() > 40 || first_line.len() < text.trim_end().len() {
        let cut: String = first_line.chars().take(40).collect();
        format!("{cut}…")
    } else {
        first_line.to_owned()
    }
}

/// Outcome of parsing: the root node (if any) and problems found while building it.
pub(crate) struct Parsed {
    pub root: Option<Node>,
    pub findings: Vec<(Finding, Span)>,
}

struct Builder<'a> {
    events: std::vec::IntoIter<(Event<'a>, RawSpan)>,
    /// The syntax error that ended the events early, if one did.
    error: Option<ScanError>,
    anchors: HashMap<usize, Node>,
    findings: Vec<(Finding, Span)>,
}

enum Stop {
    Syntax(ScanError),
    UnexpectedEnd,
}

/// Parses one YAML (or JSON) document into a node tree, once it is known to be within
/// [`crate::limits`] (otherwise: no tree, and the limit it exceeds as the finding).
pub(crate) fn parse(text: &str) -> Parsed {
    let scanned = match limits::scan(text) {
        Ok(scanned) => scanned,
        Err(exceeded) => {
            return Parsed {
                root: None,
                findings: vec![exceeded.finding()],
            };
        }
    };
    let mut builder = Builder {
        events: scanned.events.into_iter(),
        error: scanned.error,
        anchors: HashMap::new(),
        findings: Vec::new(),
    };
    let root = match builder.document() {
        Ok(root) => root,
        Err(stop) => {
            let (finding, span) = match stop {
                Stop::Syntax(error) => {
                    let mark = error.marker();
                    let span = Span::point(mark.line().max(1), mark.col() + 1);
                    let message = format!(
                        "invalid YAML: {}{}",
                        error.info(),
                        syntax_hint(error.kind())
                    );
                    (
                        Finding::error(FieldPath::root(), "yaml-syntax", message),
                        span,
                    )
                }
                Stop::UnexpectedEnd => (
                    Finding::error(
                        FieldPath::root(),
                        "yaml-syntax",
                        "invalid YAML: unexpected end of input",
                    ),
                    Span::point(text.lines().count().max(1), 1),
                ),
            };
            builder.findings.push((finding, span));
            None
        }
    };
    Parsed {
        root,
        findings: builder.findings,
    }
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, RawSpan), Stop> {
        match self.events.next() {
            Some(item) => Ok(item),
            None => Err(self.error.take().map_or(Stop::UnexpectedEnd, Stop::Syntax)),
        }
    }

    fn document(&mut self) -> Result<Option<Node>, Stop> {
        let mut root = None;
        let mut documents = 0usize;
        loop {
            let (event, _) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd => {}
                Event::StreamEnd => break,
                Event::DocumentStart(..) => {
                    documents += 1;
                    let (event, span) = self.next()?;
                    if matches!(event, Event::DocumentEnd) {
                        continue;
                    }
                    let node = self.node(event, span, &FieldPath::root())?;
                    if documents > 1 || root.is_some() {
                        self.findings.push((
                            Finding::error(
                                FieldPath::root(),
                                "multiple-documents",
                                "only one document per file is allowed; remove the `---` separator and what follows, or split the file",
                            ),
                            node.span,
                        ));
                        return Ok(None);
                    }
                    root = Some(node);
                }
                _ => {}
            }
        }
        if root.is_none() {
            self.findings.push((
                Finding::error(FieldPath::root(), "empty-document", "the document is empty"),
                Span::point(1, 1),
            ));
        }
        Ok(root)
    }

    fn node(&mut self, event: Event<'a>, raw: RawSpan, path: &FieldPath) -> Result<Node, Stop> {
        let span = Span::from_raw(&raw);
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                };
                let tag = tag.and_then(|tag| self.core_tag(&tag, span, path));
                let node = Node {
                    kind: Kind::Scalar(Scalar {
                        text: text.into_owned(),
                        style,
                        tag,
                    }),
                    span,
                };
                (node, anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                if let Some(tag) = tag {
                    self.core_tag(&tag, span, path);
                }
                let mut items = Vec::new();
                let end = loop {
                    let (event, raw) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break Span::from_raw(&raw).end;
                    }
                    let item_path = path.index(items.len());
                    items.push(self.node(event, raw, &item_path)?);
                };
                let node = Node {
                    kind: Kind::Seq(items),
                    span: Span {
                        start: span.start,
                        end,
                    },
                };
                (node, anchor)
            }
            Event::MappingStart(_, anchor, tag) => {
                if let Some(tag) = tag {
                    self.core_tag(&tag, span, path);
                }
                let (entries, end) = self.mapping_entries(path)?;
                let node = Node {
                    kind: Kind::Map(entries),
                    span: Span {
                        start: span.start,
                        end,
                    },
                };
                (node, anchor)
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id).cloned() else {
                    return Err(Stop::Syntax(ScanError::new(raw.start, "unknown alias")));
                };
                return Ok(target);
            }
            _ => {
                return Err(Stop::Syntax(ScanError::new(
                    raw.start,
                    "unexpected YAML event",
                )));
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    /// Reads key/value pairs up to `MappingEnd`; applies `<<` merge keys (explicit keys
    /// win) and reports duplicate and non-scalar keys.
    fn mapping_entries(&mut self, path: &FieldPath) -> Result<(Vec<Entry>, Pos), Stop> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut merged: Vec<Entry> = Vec::new();
        let end = loop {
            let (event, raw) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break Span::from_raw(&raw).end;
            }
            let key_node = self.node(event, raw, path)?;
            let (value_event, value_raw) = self.next()?;
            let value_path = match &key_node.kind {
                Kind::Scalar(key) => path.key(key.text.clone()),
                _ => path.clone(),
            };
            let value = self.node(value_event, value_raw, &value_path)?;
            let Kind::Scalar(key) = &key_node.kind else {
                self.findings.push((
                    Finding::error(
                        path.clone(),
                        "invalid-key",
                        "mapping keys must be plain strings, not sequences or mappings",
                    ),
                    key_node.span,
                ));
                continue;
            };
            if key.style == Style::Plain && key.text == "<<" {
                self.merge(&value, &mut merged, path);
                continue;
            }
            if let Some(first) = entries.iter().find(|e| e.key == key.text) {
                let message = format!(
                    "duplicate key `{}` (first defined at line {}); remove one of them",
                    key.text, first.key_span.start.line
                );
                self.findings.push((
                    Finding::error(value_path, "duplicate-key", message).at_key(),
                    key_node.span,
                ));
                continue;
            }
            entries.push(Entry {
                key: key.text.clone(),
                key_span: key_node.span,
                value,
            });
        };
        for entry in merged {
            if !entries.iter().any(|e| e.key == entry.key) {
                entries.push(entry);
            }
        }
        Ok((entries, end))
    }

    fn merge(&mut self, value: &Node, merged: &mut Vec<Entry>, path: &FieldPath) {
        match &value.kind {
            Kind::Map(entries) => {
                for entry in entries {
                    if !merged.iter().any(|e| e.key == entry.key) {
                        merged.push(entry.clone());
                    }
                }
            }
            Kind::Seq(items) if items.iter().all(|i| matches!(i.kind, Kind::Map(_))) => {
                for item in items {
                    self.merge(item, merged, path);
                }
            }
            _ => self.findings.push((
                Finding::error(
                    path.clone(),
                    "invalid-merge",
                    "a `<<` merge key needs a mapping or a list of mappings (usually an alias like `*defaults`)",
                ),
                value.span,
            )),
        }
    }

    /// Returns the core-schema suffix of a tag (`str`, `int`, ...); other tags are reported.
    fn core_tag(
        &mut self,
        tag: &serde_saphyr::granit_parser::Tag,
        span: Span,
        path: &FieldPath,
    ) -> Option<String> {
        if let Some(suffix) = tag.core_suffix() {
            return Some(suffix.to_owned());
        }
        self.findings.push((
            Finding::error(
                path.clone(),
                "unsupported-tag",
                format!("unsupported YAML tag `{}`; remove it", tag.original()),
            ),
            span,
        ));
        None
    }
}

/// A hint for the syntax errors service teams hit most.
fn syntax_hint(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::MappingValueNotAllowed | ErrorKind::InvalidIndentation => {
            " (check this line's indentation, or quote a value that contains `: `)"
        }
        ErrorKind::TabNotAllowed
        | ErrorKind::TabInIndentation
        | ErrorKind::TabInBlockIndentation => " (YAML indentation must use spaces, not tabs)",
        ErrorKind::UnclosedQuotedScalar => " (add the closing quote)",
        _ => "",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resolves_plain_scalars_like_yaml_1_2() {
        let plain = |t: &str| Scalar {
            text: t.into(),
            style: Style::Plain,
            tag: None,
        };
        assert_eq!(plain("~").resolve(), Resolved::Null);
        assert_eq!(plain("True").resolve(), Resolved::Bool(true));
        assert_eq!(plain("yes").resolve(), Resolved::Str);
        assert_eq!(plain("-12").resolve(), Resolved::Int);
        assert_eq!(plain("0x1F").resolve(), Resolved::Int);
        assert_eq!(plain("1.5e3").resolve(), Resolved::Float);
        assert_eq!(plain("08:30").resolve(), Resolved::Str);
        assert_eq!(plain("1.4.2").resolve(), Resolved::Str);
        let quoted = Scalar {
            text: "3".into(),
            style: Style::Quoted,
            tag: None,
        };
        assert_eq!(quoted.resolve(), Resolved::Str);
    }

    #[test]
    fn reports_duplicate_keys_and_applies_merge_keys() {
        let parsed = parse("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\nm2: 1\nm2: 2\n");
        assert_eq!(parsed.findings.len(), 1);
        assert_eq!(parsed.findings[0].0.code, "duplicate-key");
        assert_eq!(parsed.findings[0].1.start, Pos { line: 6, column: 1 });
        let root = parsed.root.unwrap();
        let Kind::Map(entries) = &root.kind else {
            panic!()
        };
        let Kind::Map(m) = &entries[1].value.kind else {
            panic!()
        };
        let keys: Vec<_> = m.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["y", "x"]);
    }

    #[test]
    fn syntax_errors_and_extra_documents_are_located() {
        let parsed = parse("a: [1\nb: 2\n");
        assert!(parsed.root.is_none());
        assert_eq!(parsed.findings[0].0.code, "yaml-syntax");
        assert_eq!(parsed.findings[0].1.start.line, 2);
        let multi = parse("a: 1\n---\nb: 2\n");
        assert_eq!(multi.findings[0].0.code, "multiple-documents");
        assert_eq!(multi.findings[0].1.start.line, 3);
        assert_eq!(parse("# nothing\n").findings[0].0.code, "empty-document");
    }

    #[test]
    fn alias_bombs_are_stopped() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let parsed = parse(&doc);
        assert!(parsed.root.is_none());
        assert_eq!(parsed.findings[0].0.code, "document-too-large");
    }
}
