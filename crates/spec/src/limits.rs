//! The limits a document meets before its node tree is built: its size, its nesting
//! depth and what its aliases expand to. They are checked in one flat pass over the
//! parser's events, with no recursion, so that every later walk of the tree (building,
//! schema check, location, clone and drop) is bounded however hostile the text is: a
//! spec comes from Consul KV, written by anyone with access, and is loaded on a worker
//! thread with a small stack.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, ScanError, Span as RawSpan};

use crate::finding::Finding;
use crate::node::Span;
use crate::path::FieldPath;

/// Largest document accepted, in bytes: Consul's default KV value limit, so anything
/// larger cannot be a spec pushed to a default Consul.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Deepest nesting of sequences and mappings accepted, counting what aliases expand to.
/// A spec nests six levels at most; the rest is headroom.
pub const MAX_DEPTH: usize = 64;

/// Most nodes accepted, counting every alias copy: specs are small; this stops alias
/// bombs built from small values.
pub const MAX_NODES: usize = 100_000;

/// Most scalar bytes accepted, counting every alias copy: stops alias bombs built from a
/// few long values, which stay under [`MAX_NODES`].
pub const MAX_EXPANDED_BYTES: usize = 2 * MAX_DOCUMENT_BYTES;

/// The parser's events of a document that is within the limits, ready to build a tree
/// from, and the syntax error that ended them early, if one did.
pub(crate) struct Scanned<'a> {
    /// The events, without presentation-only ones (comments, anchor markers).
    pub events: Vec<(Event<'a>, RawSpan)>,
    /// Set when the parser stopped on a syntax error after the last event.
    pub error: Option<ScanError>,
}

/// The first limit a document exceeds, and where: the point it passes the size limit,
/// or the collection or alias that goes too deep or too large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    /// More than [`MAX_DOCUMENT_BYTES`] of text.
    Size { bytes: usize, at: Span },
    /// Nesting deeper than [`MAX_DEPTH`].
    Depth { at: Span },
    /// More than [`MAX_NODES`] once aliases are expanded.
    Nodes { at: Span },
    /// More than [`MAX_EXPANDED_BYTES`] of scalars once aliases are expanded.
    Text { at: Span },
}

impl Exceeded {
    /// The finding the loader reports, at its position.
    pub(crate) fn finding(self) -> (Finding, Span) {
        let (code, message, at) = match self {
            Exceeded::Size { bytes, at } => (
                "document-too-large",
                format!(
                    "the document is {bytes} bytes; a spec may be at most {} KiB",
                    MAX_DOCUMENT_BYTES / 1024
                ),
                at,
            ),
            Exceeded::Depth { at } => (
                "too-deep",
                format!(
                    "the document nests more than {MAX_DEPTH} levels of sequences and mappings (counting what aliases expand to)"
                ),
                at,
            ),
            Exceeded::Nodes { at } => (
                "document-too-large",
                format!("the document expands to more than {MAX_NODES} nodes (check aliases)"),
                at,
            ),
            Exceeded::Text { at } => (
                "document-too-large",
                format!(
                    "the document expands to more than {} KiB of text (check aliases)",
                    MAX_EXPANDED_BYTES / 1024
                ),
                at,
            ),
        };
        (Finding::error(FieldPath::root(), code, message), at)
    }
}

/// What a subtree (or an anchored node an alias copies) adds to the document.
#[derive(Debug, Clone, Copy, Default)]
struct Extent {
    /// Levels of collections, itself included (0 for a scalar).
    height: usize,
    nodes: usize,
    bytes: usize,
}

/// An open collection.
struct Frame {
    anchor: usize,
    children: Extent,
}

/// Reads the events of `text`, stopping at the first limit it exceeds.
pub(crate) fn scan(text: &str) -> Result<Scanned<'_>, Exceeded> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Exceeded::Size {
            bytes: text.len(),
            at: position_of(text, MAX_DOCUMENT_BYTES),
        });
    }
    let mut parser = Parser::new_from_str(text);
    let mut events = Vec::new();
    let mut open: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Extent> = HashMap::new();
    let mut total = Extent::default();
    let error = loop {
        let (event, raw) = match parser.next_event() {
            None => break None,
            Some(Err(error)) => break Some(error),
            Some(Ok(item)) => item,
        };
        let span = Span::from_raw(&raw);
        // (anchor, extent) of a node that is complete, and what it adds to the total.
        let (finished, added) = match &event {
            Event::SequenceStart(_, anchor, _) | Event::MappingStart(_, anchor, _) => {
                if open.len() + 1 > MAX_DEPTH {
                    return Err(Exceeded::Depth { at: span });
                }
                open.push(Frame {
                    anchor: *anchor,
                    children: Extent::default(),
                });
                (None, one_node(0))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let finished = open.pop().map(|frame| {
                    let extent = Extent {
                        height: frame.children.height + 1,
                        nodes: frame.children.nodes + 1,
                        bytes: frame.children.bytes,
                    };
                    (frame.anchor, extent)
                });
                // Its node and its children were added as they came.
                (finished, Extent::default())
            }
            Event::Scalar(value, _, anchor, _) => {
                let extent = one_node(value.len());
                (Some((*anchor, extent)), extent)
            }
            // An unknown alias is reported by the tree builder, with its position.
            Event::Alias(id) => {
                let copy = anchors.get(id).copied().unwrap_or_default();
                (Some((0, copy)), copy)
            }
            _ => (None, Extent::default()),
        };
        total.nodes += added.nodes;
        total.bytes += added.bytes;
        if total.nodes > MAX_NODES {
            return Err(Exceeded::Nodes { at: span });
        }
        if total.bytes > MAX_EXPANDED_BYTES {
            return Err(Exceeded::Text { at: span });
        }
        if let Some((anchor, extent)) = finished {
            if open.len() + extent.height > MAX_DEPTH {
                return Err(Exceeded::Depth { at: span });
            }
            if anchor != 0 {
                anchors.insert(anchor, extent);
            }
            if let Some(parent) = open.last_mut() {
                parent.children.height = parent.children.height.max(extent.height);
                parent.children.nodes += extent.nodes;
                parent.children.bytes += extent.bytes;
            }
        }
        if !is_presentation(&event) {
            events.push((event, raw));
        }
    };
    Ok(Scanned { events, error })
}

/// The extent of one scalar of `bytes` (or, with 0, of a collection's own node).
fn one_node(bytes: usize) -> Extent {
    Extent {
        height: 0,
        nodes: 1,
        bytes,
    }
}

/// The 1-based line and column (in characters) of byte `offset` of `text`, moved back to
/// the start of the character it falls in.
fn position_of(text: &str, offset: usize) -> Span {
    let mut at = offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Span::point(line, before[line_start..].chars().count() + 1)
}

/// Events that carry no node: comments and anchor markers.
pub(crate) fn is_presentation(event: &Event<'_>) -> bool {
    !event.is_node()
        && !matches!(
            event,
            Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart(..)
                | Event::DocumentEnd
                | Event::SequenceEnd
                | Event::MappingEnd
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused(text: &str) -> (String, usize, usize) {
        let Err(exceeded) = scan(text) else {
            panic!("accepted: {}", &text[..text.len().min(200)])
        };
        let (finding, span) = exceeded.finding();
        (finding.code, span.start.line, span.start.column)
    }

    #[test]
    fn nesting_at_the_limit_is_accepted_and_one_more_level_is_refused_where_it_opens() {
        let at_limit = format!("{}{}\n", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(scan(&at_limit).is_ok());
        let deeper = format!("a:\n  {}{}\n", "[".repeat(100), "]".repeat(100));
        assert_eq!(refused(&deeper), ("too-deep".into(), 2, 3 + MAX_DEPTH - 1));
        let mut block = String::new();
        for level in 0..80 {
            block.push_str(&format!("{}k{level}:\n", "  ".repeat(level)));
        }
        // The mapping of `k64` (line 65) is level 65.
        let (code, line, _) = refused(&block);
        assert_eq!((code.as_str(), line), ("too-deep", MAX_DEPTH + 1));
    }

    #[test]
    fn chained_aliases_count_the_depth_they_expand_to() {
        // Each line is one level deeper than the last once expanded: 3 levels of text,
        // thousands once expanded.
        let mut doc = String::from("a0: &a0 [x]\n");
        for i in 1..2000 {
            doc.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        // `a63: &a63 [*a62]` (line 64): the alias at column 12 would open level 65.
        assert_eq!(refused(&doc), ("too-deep".into(), MAX_DEPTH, 12));
    }

    #[test]
    fn alias_bombs_are_refused_by_nodes_or_by_bytes() {
        let mut nodes = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = format!("*a{}", i - 1);
            nodes.push_str(&format!("a{i}: &a{i} [{}]\n", vec![p; 10].join(", ")));
        }
        let (code, line, _) = refused(&nodes);
        // a4 expands to 111,111 nodes.
        assert_eq!((code.as_str(), line), ("document-too-large", 5));
        let long = format!(
            "a: &a {}\nb: [*a, *a, *a, *a, *a]\n",
            "y".repeat(300 * 1024)
        );
        // 300 KiB, then three copies pass 1 MiB: the third alias, at column 13.
        assert_eq!(refused(&long), ("document-too-large".into(), 2, 13));
    }

    #[test]
    fn documents_over_the_size_limit_are_refused_where_they_pass_it() {
        let line = format!("# {}\n", "z".repeat(1021));
        let text = format!("a: 1\n{}", line.repeat(600));
        // 5 bytes, then 1024 per line: byte 524288 is on line 513 after 1019 bytes.
        assert_eq!(refused(&text), ("document-too-large".into(), 513, 1020));
        assert!(scan(&text[..MAX_DOCUMENT_BYTES]).is_ok());
    }

    #[test]
    fn syntax_errors_are_kept_for_the_builder() {
        let scanned = scan("a: [1\nb: 2\n").ok().unwrap();
        assert!(scanned.error.is_some());
    }
}
