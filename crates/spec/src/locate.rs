//! Maps a finding's JSON path back to a line and column through the node tree.

use crate::finding::Anchor;
use crate::node::{Kind, Node, Pos, Span};
use crate::path::{FieldPath, Segment};

/// Finds where a finding at `path` should point.
///
/// The whole path is looked up; when part of it does not exist in the document (e.g. a
/// defaulted field) the deepest existing ancestor is used, pointing at its key.
pub(crate) fn locate(root: &Node, path: &FieldPath, anchor: Anchor) -> Span {
    let mut node = root;
    let mut key_span: Option<Span> = None;
    let mut complete = true;
    for segment in path.segments() {
        let next = match (segment, &node.kind) {
            (Segment::Key(k), Kind::Map(entries)) => entries
                .iter()
                .find(|e| &e.key == k)
                .map(|e| (&e.value, Some(e.key_span))),
            (Segment::Index(i), Kind::Seq(items)) => items.get(*i).map(|n| (n, None)),
            _ => None,
        };
        match next {
            Some((child, span)) => {
                node = child;
                key_span = span;
            }
            None => {
                complete = false;
                break;
            }
        }
    }
    if !complete || anchor == Anchor::Key {
        if let Some(span) = key_span {
            return span;
        }
        if !complete {
            return first_line(node);
        }
    }
    match (&node.kind, key_span) {
        (Kind::Scalar(_), _) if !node.span.is_empty() => node.span,
        // A collection written on the key's line (`[1, 2]`, `{a: b}`) is pointed at
        // itself; a block collection below its key through the key.
        (Kind::Seq(_) | Kind::Map(_), Some(key)) if key.start.line == node.span.start.line => {
            first_line(node)
        }
        (_, Some(key)) => key,
        (_, None) => first_line(node),
    }
}

/// The node's span cut at the end of its first line (a block collection spans many).
fn first_line(node: &Node) -> Span {
    let mut span = node.span;
    if span.end.line != span.start.line {
        span.end = Pos {
            line: span.start.line,
            column: usize::MAX,
        };
    }
    span
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::node::parse;

    fn root(text: &str) -> Node {
        let parsed = parse(text);
        assert!(parsed.findings.is_empty());
        parsed.root.unwrap()
    }

    #[test]
    fn locates_keys_values_and_missing_children() {
        let doc = "a:\n  b: [x, \"y\"]\n  c:\n    d: 1\n";
        let node = root(doc);
        let span = locate(&node, &FieldPath::parse("a.b[1]"), Anchor::Value);
        assert_eq!(
            (span.start, span.end.column),
            (
                Pos {
                    line: 2,
                    column: 10
                },
                13
            )
        );
        let key = locate(&node, &FieldPath::parse("a.c"), Anchor::Key);
        assert_eq!(
            (key.start.line, key.start.column, key.end.column),
            (3, 3, 4)
        );
        // A block mapping value is pointed at through its key, a flow one directly.
        let map = locate(&node, &FieldPath::parse("a.c"), Anchor::Value);
        assert_eq!(map, key);
        let flow = locate(&node, &FieldPath::parse("a.b"), Anchor::Value);
        assert_eq!(
            (flow.start.line, flow.start.column, flow.end.column),
            (2, 6, 14)
        );
        // Missing child: the deepest existing ancestor's key.
        let missing = locate(&node, &FieldPath::parse("a.c.e"), Anchor::Value);
        assert_eq!(missing, key);
    }
}
