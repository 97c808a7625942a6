//! The HCL v1 parser (`hcl/parser`), with its error texts.

use super::scanner::Scanner;
use super::{ListType, Node, ObjectItem, ObjectList, ObjectType, ParseError, Pos, Tok, Token};

enum ItemErr {
    Eof,
    Err(ParseError),
}

impl From<ParseError> for ItemErr {
    fn from(e: ParseError) -> Self {
        ItemErr::Err(e)
    }
}

pub(super) struct Parser<'a> {
    sc: Scanner<'a>,
    tok: Token,
    buffered: bool,
}

impl<'a> Parser<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Parser {
            sc: Scanner::new(src),
            tok: Token {
                kind: Tok::Illegal,
                pos: Pos::default(),
                text: String::new(),
                json: false,
            },
            buffered: false,
        }
    }

    pub(super) fn parse(mut self) -> Result<ObjectList, ParseError> {
        let result = self.object_list(false);
        if let Some((pos, msg)) = self.sc.error.take() {
            return Err(ParseError::At(pos, msg));
        }
        result
    }

    fn scan(&mut self) -> Token {
        if self.buffered {
            self.buffered = false;
            return self.tok.clone();
        }
        let mut tok = self.sc.scan();
        while tok.kind == Tok::Comment {
            tok = self.sc.scan();
        }
        self.tok = tok;
        self.tok.clone()
    }

    fn unscan(&mut self) {
        self.buffered = true;
    }

    fn object_list(&mut self, obj: bool) -> Result<ObjectList, ParseError> {
        let mut list = ObjectList::default();
        loop {
            if obj {
                let tok = self.scan();
                self.unscan();
                if tok.kind == Tok::RBrace {
                    break;
                }
            }
            match self.object_item() {
                Ok(item) => list.items.push(item),
                Err(ItemErr::Eof) => break,
                Err(ItemErr::Err(e)) => return Err(e),
            }
            let tok = self.scan();
            if tok.kind != Tok::Comma {
                self.unscan();
            }
        }
        Ok(list)
    }

    fn object_item(&mut self) -> Result<ObjectItem, ItemErr> {
        let (keys, mut err) = self.object_key();
        if !keys.is_empty() && matches!(err, Some(ItemErr::Eof)) {
            err = None;
        }
        if !keys.is_empty() && err.is_some() && self.tok.kind == Tok::RBrace {
            err = None;
            self.tok.kind = Tok::Eof;
        }
        if let Some(e) = err {
            return Err(e);
        }
        let (assign, val) = match self.tok.kind {
            Tok::Assign => (self.tok.pos, self.object()?),
            Tok::LBrace => (Pos::default(), Node::Object(self.object_type()?)),
            _ => {
                let key_str: Vec<&str> = keys.iter().map(|k| k.text.as_str()).collect();
                return Err(ItemErr::Err(ParseError::At(
                    self.tok.pos,
                    format!(
                        "key '{}' expected start of object ('{{') or assignment ('=')",
                        key_str.join(" ")
                    ),
                )));
            }
        };
        Ok(ObjectItem { keys, assign, val })
    }

    fn object_key(&mut self) -> (Vec<Token>, Option<ItemErr>) {
        let mut keys: Vec<Token> = Vec::new();
        loop {
            let tok = self.scan();
            match tok.kind {
                Tok::Eof => return (keys, Some(ItemErr::Eof)),
                Tok::Assign => {
                    if keys.len() > 1 {
                        return (
                            Vec::new(),
                            Some(ItemErr::Err(ParseError::At(
                                tok.pos,
                                format!("nested object expected: LBRACE got: {}", tok.kind),
                            ))),
                        );
                    }
                    if keys.is_empty() {
                        return (
                            Vec::new(),
                            Some(ItemErr::Err(ParseError::At(
                                tok.pos,
                                "no object keys found!".to_string(),
                            ))),
                        );
                    }
                    return (keys, None);
                }
                Tok::LBrace => {
                    let err = keys.is_empty().then(|| {
                        ItemErr::Err(ParseError::At(
                            tok.pos,
                            format!("expected: IDENT | STRING got: {}", tok.kind),
                        ))
                    });
                    return (keys, err);
                }
                Tok::Ident | Tok::Str => keys.push(tok),
                Tok::Illegal => {
                    return (
                        keys,
                        Some(ItemErr::Err(ParseError::At(
                            tok.pos,
                            "illegal character".to_string(),
                        ))),
                    );
                }
                other => {
                    return (
                        keys,
                        Some(ItemErr::Err(ParseError::At(
                            tok.pos,
                            format!("expected: IDENT | STRING | ASSIGN | LBRACE got: {other}"),
                        ))),
                    );
                }
            }
        }
    }

    fn object(&mut self) -> Result<Node, ItemErr> {
        let tok = self.scan();
        match tok.kind {
            Tok::Number | Tok::Float | Tok::Bool | Tok::Str | Tok::Heredoc => {
                Ok(Node::Literal(tok))
            }
            Tok::LBrace => Ok(Node::Object(self.object_type()?)),
            Tok::LBrack => Ok(Node::List(self.list_type()?)),
            Tok::Eof => Err(ItemErr::Eof),
            _ => Err(ItemErr::Err(ParseError::At(
                tok.pos,
                format!(
                    "Unknown token: {{Type:{} Pos:{{Filename: Offset:{} Line:{} Column:{}}} Text:{} JSON:false}}",
                    tok.kind, tok.pos.offset, tok.pos.line, tok.pos.column, tok.text
                ),
            ))),
        }
    }

    fn object_type(&mut self) -> Result<ObjectType, ParseError> {
        let lbrace = self.tok.pos;
        let list = match self.object_list(true) {
            Ok(l) => l,
            Err(e) if self.tok.kind != Tok::RBrace => return Err(e),
            Err(_) => ObjectList::default(),
        };
        let tok = self.scan();
        if tok.kind != Tok::RBrace {
            return Err(ParseError::At(
                tok.pos,
                format!("object expected closing RBRACE got: {}", tok.kind),
            ));
        }
        Ok(ObjectType { lbrace, list })
    }

    fn list_type(&mut self) -> Result<ListType, ParseError> {
        let lbrack = self.tok.pos;
        let mut items = Vec::new();
        let mut need_comma = false;
        loop {
            let tok = self.scan();
            if need_comma && !matches!(tok.kind, Tok::Comma | Tok::RBrack) {
                return Err(ParseError::At(
                    tok.pos,
                    format!(
                        "error parsing list, expected comma or list end, got: {}",
                        tok.kind
                    ),
                ));
            }
            match tok.kind {
                Tok::Bool | Tok::Number | Tok::Float | Tok::Str | Tok::Heredoc => {
                    items.push(Node::Literal(tok));
                    need_comma = true;
                }
                Tok::Comma => {
                    need_comma = false;
                }
                Tok::LBrace => {
                    let node = self.object_type().map_err(|e| {
                        ParseError::At(
                            tok.pos,
                            format!("error while trying to parse object within list: {e}"),
                        )
                    })?;
                    items.push(Node::Object(node));
                    need_comma = true;
                }
                Tok::LBrack => {
                    let node = self.list_type().map_err(|e| {
                        ParseError::At(
                            tok.pos,
                            format!("error while trying to parse list within list: {e}"),
                        )
                    })?;
                    items.push(Node::List(node));
                }
                Tok::RBrack => return Ok(ListType { lbrack, items }),
                other => {
                    return Err(ParseError::At(
                        tok.pos,
                        format!("unexpected token while parsing list: {other}"),
                    ));
                }
            }
        }
    }
}
