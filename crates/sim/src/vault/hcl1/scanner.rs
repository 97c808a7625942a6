//! The HCL v1 scanner (`hcl/scanner`), position for position.

use super::{Pos, Tok, Token};

const EOF: char = '\0';

pub(super) struct Scanner<'a> {
    src: &'a str,
    cursor: usize,
    src_pos: Pos,
    prev_pos: Pos,
    last_char_len: usize,
    last_line_len: usize,
    /// The last error reported (the parser returns it in preference to its own).
    pub(super) error: Option<(Pos, String)>,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Scanner {
            src,
            cursor: 0,
            src_pos: Pos {
                offset: 0,
                line: 1,
                column: 0,
            },
            prev_pos: Pos::default(),
            last_char_len: 0,
            last_line_len: 0,
            error: None,
        }
    }

    fn next(&mut self) -> char {
        let Some(ch) = self.src[self.cursor..].chars().next() else {
            self.src_pos.column += 1;
            self.last_char_len = 0;
            return EOF;
        };
        let size = ch.len_utf8();
        self.cursor += size;
        self.prev_pos = self.src_pos;
        self.src_pos.column += 1;
        self.last_char_len = size;
        self.src_pos.offset += size;
        if ch == '\n' {
            self.src_pos.line += 1;
            self.last_line_len = self.src_pos.column;
            self.src_pos.column = 0;
        }
        ch
    }

    fn unread(&mut self) {
        self.cursor -= self.last_char_len;
        self.src_pos = self.prev_pos;
    }

    fn peek(&self) -> char {
        self.src[self.cursor..].chars().next().unwrap_or(EOF)
    }

    fn recent_position(&self) -> Pos {
        let offset = self.src_pos.offset.saturating_sub(self.last_char_len);
        if self.src_pos.column > 0 {
            Pos {
                offset,
                line: self.src_pos.line,
                column: self.src_pos.column,
            }
        } else if self.last_line_len > 0 {
            Pos {
                offset,
                line: self.src_pos.line - 1,
                column: self.last_line_len,
            }
        } else {
            Pos {
                offset,
                line: 1,
                column: 1,
            }
        }
    }

    fn err(&mut self, msg: &str) {
        // The parser keeps the last scanner error it was told about.
        self.error = Some((self.recent_position(), msg.to_string()));
    }

    pub(super) fn scan(&mut self) -> Token {
        let mut ch = self.next();
        while is_whitespace(ch) {
            ch = self.next();
        }
        let tok_start = self.src_pos.offset - self.last_char_len;
        let tok_pos = if self.src_pos.column > 0 {
            Pos {
                offset: tok_start,
                line: self.src_pos.line,
                column: self.src_pos.column,
            }
        } else {
            Pos {
                offset: tok_start,
                line: self.src_pos.line - 1,
                column: self.last_line_len,
            }
        };
        let kind = if is_letter(ch) {
            let lit = self.scan_identifier();
            if lit == "true" || lit == "false" {
                Tok::Bool
            } else {
                Tok::Ident
            }
        } else if is_decimal(ch) {
            self.scan_number(ch)
        } else {
            match ch {
                EOF => Tok::Eof,
                '"' => {
                    self.scan_string();
                    Tok::Str
                }
                '#' | '/' => {
                    self.scan_comment(ch);
                    Tok::Comment
                }
                '.' => {
                    let next = self.peek();
                    if is_decimal(next) {
                        let c = self.scan_mantissa(next);
                        self.scan_exponent(c);
                        Tok::Float
                    } else {
                        Tok::Period
                    }
                }
                '<' => {
                    self.scan_heredoc();
                    Tok::Heredoc
                }
                '[' => Tok::LBrack,
                ']' => Tok::RBrack,
                '{' => Tok::LBrace,
                '}' => Tok::RBrace,
                ',' => Tok::Comma,
                '=' => Tok::Assign,
                '+' => Tok::Add,
                '-' => {
                    if is_decimal(self.peek()) {
                        let c = self.next();
                        self.scan_number(c)
                    } else {
                        Tok::Sub
                    }
                }
                _ => {
                    self.err("illegal char");
                    Tok::Illegal
                }
            }
        };
        let tok_end = self.src_pos.offset;
        let text = self
            .src
            .get(tok_start..tok_end.max(tok_start))
            .unwrap_or("")
            .to_string();
        Token {
            kind,
            pos: tok_pos,
            text,
            json: false,
        }
    }

    fn scan_comment(&mut self, ch: char) {
        if ch == '#' || (ch == '/' && self.peek() != '*') {
            let mut c = self.next();
            while c != '\n' && c != EOF {
                c = self.next();
            }
            if c != EOF {
                self.unread();
            }
            return;
        }
        let mut c = ch;
        if c == '/' {
            self.next();
            c = self.next();
        }
        loop {
            if c == EOF {
                self.err("comment not terminated");
                break;
            }
            let c0 = c;
            c = self.next();
            if c0 == '*' && c == '/' {
                break;
            }
        }
    }

    fn scan_number(&mut self, ch: char) -> Tok {
        let mut ch = ch;
        if ch == '0' {
            ch = self.next();
            if ch == 'x' || ch == 'X' {
                ch = self.next();
                let mut found = false;
                while ch.is_ascii_hexdigit() {
                    ch = self.next();
                    found = true;
                }
                if !found {
                    self.err("illegal hexadecimal number");
                }
                if ch != EOF {
                    self.unread();
                }
                return Tok::Number;
            }
            let mut illegal_octal = false;
            while is_decimal(ch) {
                ch = self.next();
                if ch == '8' || ch == '9' {
                    illegal_octal = true;
                }
            }
            if ch == 'e' || ch == 'E' {
                self.scan_exponent(ch);
                return Tok::Float;
            }
            if ch == '.' {
                ch = self.scan_fraction(ch);
                if ch == 'e' || ch == 'E' {
                    ch = self.next();
                    self.scan_exponent(ch);
                }
                return Tok::Float;
            }
            if illegal_octal {
                self.err("illegal octal number");
            }
            if ch != EOF {
                self.unread();
            }
            return Tok::Number;
        }
        self.scan_mantissa(ch);
        ch = self.next();
        if ch == 'e' || ch == 'E' {
            self.scan_exponent(ch);
            return Tok::Float;
        }
        if ch == '.' {
            ch = self.scan_fraction(ch);
            if ch == 'e' || ch == 'E' {
                ch = self.next();
                self.scan_exponent(ch);
            }
            return Tok::Float;
        }
        if ch != EOF {
            self.unread();
        }
        Tok::Number
    }

    fn scan_mantissa(&mut self, ch: char) -> char {
        let mut ch = ch;
        let mut scanned = false;
        while is_decimal(ch) {
            ch = self.next();
            scanned = true;
        }
        if scanned && ch != EOF {
            self.unread();
        }
        ch
    }

    fn scan_fraction(&mut self, ch: char) -> char {
        if ch == '.' {
            let c = self.peek();
            return self.scan_mantissa(c);
        }
        ch
    }

    fn scan_exponent(&mut self, ch: char) -> char {
        let mut ch = ch;
        if ch == 'e' || ch == 'E' {
            ch = self.next();
            if ch == '-' || ch == '+' {
                ch = self.next();
            }
            ch = self.scan_mantissa(ch);
        }
        ch
    }

    fn scan_heredoc(&mut self) {
        if self.next() != '<' {
            self.err("heredoc expected second '<', didn't see it");
            return;
        }
        let offs = self.src_pos.offset;
        let mut ch = self.next();
        if ch == '-' {
            ch = self.next();
        }
        while is_letter(ch) || is_digit(ch) {
            ch = self.next();
        }
        if ch == EOF {
            self.err("heredoc not terminated");
            return;
        }
        if ch == '\r' && self.peek() == '\n' {
            ch = self.next();
        }
        if ch != '\n' {
            self.err("invalid characters in heredoc anchor");
            return;
        }
        let ident_end = self.src_pos.offset - self.last_char_len;
        let ident = self.src.get(offs..ident_end).unwrap_or("").to_string();
        if ident.is_empty() {
            self.err("zero-length heredoc anchor");
            return;
        }
        let anchor = ident.strip_prefix('-').unwrap_or(&ident).to_string();
        let mut line_start = self.src_pos.offset;
        loop {
            let ch = self.next();
            if ch == '\n' {
                let line_end = self.src_pos.offset - self.last_char_len;
                let line = self.src.get(line_start..line_end).unwrap_or("");
                if line.len() >= ident.len() && line.ends_with(anchor.as_str()) {
                    break;
                }
                line_start = self.src_pos.offset;
            }
            if ch == EOF {
                self.err("heredoc not terminated");
                return;
            }
        }
    }

    fn scan_string(&mut self) {
        let mut braces = 0;
        loop {
            let ch = self.next();
            if ch == EOF {
                self.err("literal not terminated");
                return;
            }
            if ch == '"' && braces == 0 {
                break;
            }
            if braces == 0 && ch == '$' && self.peek() == '{' {
                braces += 1;
                self.next();
            } else if braces > 0 && ch == '{' {
                braces += 1;
            }
            if braces > 0 && ch == '}' {
                braces -= 1;
            }
            if ch == '\\' {
                self.scan_escape();
            }
        }
    }

    fn scan_escape(&mut self) {
        let ch = self.next();
        match ch {
            'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' | '"' => {}
            '0'..='7' => self.scan_digits(ch, 8, 3),
            'x' => {
                let c = self.next();
                self.scan_digits(c, 16, 2)
            }
            'u' => {
                let c = self.next();
                self.scan_digits(c, 16, 4)
            }
            'U' => {
                let c = self.next();
                self.scan_digits(c, 16, 8)
            }
            _ => self.err("illegal char escape"),
        }
    }

    fn scan_digits(&mut self, ch: char, base: u32, n: usize) {
        let start = n;
        let mut n = n;
        let mut ch = ch;
        while n > 0 && ch.to_digit(16).is_some_and(|d| d < base) {
            ch = self.next();
            if ch == EOF {
                break;
            }
            n -= 1;
        }
        if n > 0 {
            self.err("illegal char escape");
        }
        if n != start {
            self.unread();
        }
    }

    fn scan_identifier(&mut self) -> String {
        let offs = self.src_pos.offset - self.last_char_len;
        let mut ch = self.next();
        while is_letter(ch) || is_digit(ch) || ch == '-' || ch == '.' {
            ch = self.next();
        }
        if ch != EOF {
            self.unread();
        }
        self.src
            .get(offs..self.src_pos.offset)
            .unwrap_or("")
            .to_string()
    }
}

fn is_letter(ch: char) -> bool {
    ch.is_ascii_alphabetic() || ch == '_' || (ch as u32 >= 0x80 && ch.is_alphabetic())
}

fn is_digit(ch: char) -> bool {
    ch.is_ascii_digit() || (ch as u32 >= 0x80 && ch.is_numeric())
}

fn is_decimal(ch: char) -> bool {
    ch.is_ascii_digit()
}

fn is_whitespace(ch: char) -> bool {
    matches!(ch, ' ' | '\t' | '\n' | '\r')
}
