//! A port of the HCL v1 scanner and parser (`github.com/hashicorp/hcl` v1.0.0), the
//! language Vault parses ACL policies with.
//!
//! Vault answers an unparsable policy with the parser's own message, e.g.
//! `failed to parse policy: At 1:41: error parsing list, expected comma or list end,
//! got: EOF`, so this port keeps the original's token positions (line:column, where
//! EOF sits one column after the last character) and its error texts. Only what a
//! policy needs is kept: no comments in the tree, no line-comment bookkeeping.
//! A document whose first non-blank character is `{` is JSON, as in `hcl.Parse`;
//! JSON is read with serde_json and turned into the same tree (error texts differ
//! from HCL's JSON parser).

mod parser;
mod scanner;

use std::fmt;

/// Token types, named as `token.Type.String()` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Illegal,
    Eof,
    Comment,
    Ident,
    Number,
    Float,
    Bool,
    Str,
    Heredoc,
    LBrack,
    LBrace,
    Comma,
    Period,
    RBrack,
    RBrace,
    Assign,
    Add,
    Sub,
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::Illegal => "ILLEGAL",
            Tok::Eof => "EOF",
            Tok::Comment => "COMMENT",
            Tok::Ident => "IDENT",
            Tok::Number => "NUMBER",
            Tok::Float => "FLOAT",
            Tok::Bool => "BOOL",
            Tok::Str => "STRING",
            Tok::Heredoc => "HEREDOC",
            Tok::LBrack => "LBRACK",
            Tok::LBrace => "LBRACE",
            Tok::Comma => "COMMA",
            Tok::Period => "PERIOD",
            Tok::RBrack => "RBRACK",
            Tok::RBrace => "RBRACE",
            Tok::Assign => "ASSIGN",
            Tok::Add => "ADD",
            Tok::Sub => "SUB",
        }
    }
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A source position (`token.Pos`): byte offset, 1-based line and column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}", self.line, self.column)
        } else {
            f.write_str("-")
        }
    }
}

/// One token with its source text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub pos: Pos,
    pub text: String,
    /// Set for tokens made from JSON input, whose text is already the value.
    pub json: bool,
}

impl Token {
    /// The token's value as a string: strings unquoted, heredocs unindented,
    /// numbers and identifiers as written.
    pub fn value(&self) -> Result<String, String> {
        if self.json {
            return Ok(self.text.clone());
        }
        match self.kind {
            Tok::Str => unquote(&self.text),
            Tok::Heredoc => Ok(unindent_heredoc(&self.text)),
            _ => Ok(self.text.clone()),
        }
    }
}

/// A parse error. `Display` gives the text Vault embeds in its message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParseError {
    /// `At <pos>: <msg>` (`parser.PosError`).
    At(Pos, String),
    /// A message without position.
    Plain(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::At(pos, msg) => write!(f, "At {pos}: {msg}"),
            ParseError::Plain(msg) => f.write_str(msg),
        }
    }
}

/// A value in the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Object(ObjectType),
    List(ListType),
    Literal(Token),
}

impl Node {
    /// Where the value starts.
    pub fn pos(&self) -> Pos {
        match self {
            Node::Object(o) => o.lbrace,
            Node::List(l) => l.lbrack,
            Node::Literal(t) => t.pos,
        }
    }

    /// The Go type name `%T` prints for this node.
    pub fn go_type(&self) -> &'static str {
        match self {
            Node::Object(_) => "*ast.ObjectType",
            Node::List(_) => "*ast.ListType",
            Node::Literal(_) => "*ast.LiteralType",
        }
    }
}

/// `{ ... }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ObjectType {
    pub lbrace: Pos,
    pub list: ObjectList,
}

/// `[ ... ]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListType {
    pub lbrack: Pos,
    pub items: Vec<Node>,
}

/// A sequence of `key key ... = value` / `key key { ... }` items.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ObjectList {
    pub items: Vec<ObjectItem>,
}

/// One item: its keys, the position of `=` (zero for blocks) and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ObjectItem {
    pub keys: Vec<Token>,
    pub assign: Pos,
    pub val: Node,
}

impl ObjectList {
    /// `ObjectList.Filter`: items whose first keys match `key` (case-insensitively),
    /// with that key stripped.
    pub fn filter(&self, key: &str) -> Vec<ObjectItem> {
        self.items
            .iter()
            .filter(|item| {
                item.keys
                    .first()
                    .and_then(|k| k.value().ok())
                    .is_some_and(|k| k == key || k.eq_ignore_ascii_case(key))
            })
            .map(|item| ObjectItem {
                keys: item.keys[1..].to_vec(),
                assign: item.assign,
                val: item.val.clone(),
            })
            .collect()
    }
}

/// Parses a document the way `hcl.Parse` does (HCL, or JSON when it starts with `{`).
pub(crate) fn parse(src: &str) -> Result<ObjectList, ParseError> {
    let first = src.chars().find(|c| !c.is_whitespace());
    if first == Some('{') {
        return parse_json(src);
    }
    parser::Parser::new(src).parse()
}

// ---------------------------------------------------------------------------
// Values

/// `hcl/strconv.Unquote` for a double-quoted string token (interpolations kept).
fn unquote(text: &str) -> Result<String, String> {
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(|| "invalid syntax".to_string())?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or("invalid syntax")?;
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let d = chars
                        .next()
                        .and_then(|d| d.to_digit(16))
                        .ok_or("invalid syntax")?;
                    v = v * 16 + d;
                }
                out.push(char::from_u32(v).ok_or("invalid syntax")?);
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|d| d.to_digit(8))
                        .ok_or("invalid syntax")?;
                    v = v * 8 + d;
                }
                out.push(char::from_u32(v).ok_or("invalid syntax")?);
            }
            _ => return Err("invalid syntax".to_string()),
        }
    }
    Ok(out)
}

/// `token.unindentHeredoc`.
fn unindent_heredoc(text: &str) -> String {
    let Some(idx) = text.find('\n') else {
        return String::new();
    };
    let unindent = text.as_bytes().get(2) == Some(&b'-');
    let body_end = text.len().saturating_sub(idx) + 1;
    if !unindent {
        return text.get(idx + 1..body_end).unwrap_or("").to_string();
    }
    let lines: Vec<&str> = text
        .get(idx + 1..(body_end + 1).min(text.len()))
        .unwrap_or("")
        .split('\n')
        .collect();
    let prefix = lines.last().copied().unwrap_or("");
    if !lines.iter().all(|l| l.starts_with(prefix)) {
        return text
            .get(idx + 1..body_end)
            .unwrap_or("")
            .trim_end_matches([' ', '\t'])
            .to_string();
    }
    let n = lines.len();
    lines
        .iter()
        .enumerate()
        .map(|(k, l)| {
            if k == n - 1 {
                ""
            } else {
                l.strip_prefix(prefix).unwrap_or(l)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// JSON

fn parse_json(src: &str) -> Result<ObjectList, ParseError> {
    let value: serde_json::Value = serde_json::from_str(src).map_err(|e| {
        ParseError::At(
            Pos {
                offset: 0,
                line: e.line(),
                column: e.column(),
            },
            e.to_string(),
        )
    })?;
    match value {
        serde_json::Value::Object(map) => Ok(json_object_list(&map, Pos::default())),
        _ => Err(ParseError::Plain(
            "does not contain a root object".to_string(),
        )),
    }
}

fn json_token(kind: Tok, text: String) -> Token {
    Token {
        kind,
        pos: Pos {
            offset: 0,
            line: 1,
            column: 1,
        },
        text,
        json: true,
    }
}

/// Builds the item list of a JSON object, flattening `"a": {"b": {...}}` into an item
/// with keys `a b` the way HCL's JSON parser does for objects of objects.
fn json_object_list(map: &serde_json::Map<String, serde_json::Value>, pos: Pos) -> ObjectList {
    let mut items = Vec::new();
    for (key, value) in map {
        let key_tok = json_token(Tok::Str, key.clone());
        match value {
            serde_json::Value::Object(inner)
                if !inner.is_empty() && inner.values().all(|v| v.is_object()) =>
            {
                for (inner_key, inner_val) in inner {
                    let node = json_node(inner_val, pos);
                    items.push(ObjectItem {
                        keys: vec![key_tok.clone(), json_token(Tok::Str, inner_key.clone())],
                        assign: Pos::default(),
                        val: node,
                    });
                }
            }
            _ => items.push(ObjectItem {
                keys: vec![key_tok],
                assign: Pos {
                    offset: 0,
                    line: 1,
                    column: 1,
                },
                val: json_node(value, pos),
            }),
        }
    }
    ObjectList { items }
}

fn json_node(value: &serde_json::Value, pos: Pos) -> Node {
    use serde_json::Value;
    match value {
        Value::Object(map) => Node::Object(ObjectType {
            lbrace: pos,
            list: json_object_list(map, pos),
        }),
        Value::Array(items) => Node::List(ListType {
            lbrack: pos,
            items: items.iter().map(|v| json_node(v, pos)).collect(),
        }),
        Value::String(s) => Node::Literal(json_token(Tok::Str, s.clone())),
        Value::Number(n) => {
            let kind = if n.is_f64() { Tok::Float } else { Tok::Number };
            Node::Literal(json_token(kind, n.to_string()))
        }
        Value::Bool(b) => Node::Literal(json_token(Tok::Bool, b.to_string())),
        Value::Null => Node::Literal(json_token(Tok::Ident, "null".to_string())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn err(src: &str) -> String {
        parse(src).unwrap_err().to_string()
    }

    #[test]
    fn unterminated_list_reports_eof_one_column_past_the_end() {
        assert_eq!(
            err(r#"path "secret/*" { capabilities = ["read""#),
            "At 1:41: error parsing list, expected comma or list end, got: EOF"
        );
    }

    #[test]
    fn a_policy_parses_into_path_items() {
        let list = parse(
            "# comment\npath \"secret/data/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n",
        )
        .unwrap();
        let paths = list.filter("path");
        assert_eq!(paths.len(), 1);
        assert_eq!(paths[0].keys[0].value().unwrap(), "secret/data/*");
        let Node::Object(o) = &paths[0].val else {
            panic!("not an object")
        };
        assert_eq!(o.list.items[0].keys[0].text, "capabilities");
        assert_eq!(o.list.items[0].assign.line, 3);
    }

    #[test]
    fn missing_closing_brace_and_bad_keys_use_hcl_texts() {
        assert_eq!(
            err("path \"a\" {\n"),
            "At 2:2: object expected closing RBRACE got: EOF"
        );
        assert_eq!(
            err("foo"),
            "At 1:5: key 'foo' expected start of object ('{') or assignment ('=')"
        );
        assert_eq!(err("path \"a\" @"), "At 1:10: illegal char");
        assert_eq!(err("x = \"abc"), "At 1:9: literal not terminated");
        assert_eq!(
            err("[1]"),
            "At 1:1: expected: IDENT | STRING | ASSIGN | LBRACE got: LBRACK"
        );
    }

    #[test]
    fn json_documents_are_flattened_like_hcl_json() {
        let list = parse(r#"{"path": {"secret/*": {"capabilities": ["read"]}}}"#).unwrap();
        let paths = list.filter("path");
        assert_eq!(paths[0].keys[0].value().unwrap(), "secret/*");
    }

    #[test]
    fn strings_and_heredocs_have_values() {
        let list = parse("a = \"x\\ty\"\nb = <<EOT\nhello\nEOT\n").unwrap();
        let Node::Literal(a) = &list.items[0].val else {
            panic!()
        };
        assert_eq!(a.value().unwrap(), "x\ty");
        let Node::Literal(b) = &list.items[1].val else {
            panic!()
        };
        assert_eq!(b.value().unwrap(), "hello\n");
    }
}
