//! Statement text as it streams in, reduced to a bounded text with the same
//! pt-query-digest fingerprint, so a statement of any size gets its right
//! class (issue 16: 20 long `UPDATE docs SET body='…'` made 20 classes).
//!
//! A statement that fits the cap is kept as it came: it is the whole text,
//! whose fingerprint is pt's. Once it grows past the cap (a log line, or
//! a piece of a line longer than the tailer's `max_line`), [`Statement`]
//! reads what it has and what follows, and keeps:
//! - everything outside quoted strings as written (up to the cap);
//! - of a `'…'` or `"…"` string longer than 256 bytes only its quotes, once
//!   it closed: every string becomes `?` in the fingerprint whatever it
//!   held;
//! - of a list after `IN` / `VALUE(S)` whose items are all literals, longer
//!   than 1 KiB, only `(?)`: pt-query-digest folds any such list into
//!   `in(?+)`;
//! - of a multi-row `INSERT`/`REPLACE … VALUES (…), (…)` only the first row
//!   (pt cuts there too).
//!
//! Those reductions are exactly pt's only while its earlier passes (block
//! comments, `\'` removal, double-quoted strings over the whole text) pair
//! quotes as a left-to-right reading does. The reader watches for what would
//! make them differ (a `/*` inside a string, a string holding an odd number
//! of `"`): from there on the text is kept as written, and what goes beyond
//! the cap is cut (and reported as truncated) as before.

/// Bytes of a string's content kept until it closes (and dropped then): a
/// short string that turns out to need pt's step-by-step path is whole.
const STRING_WINDOW: usize = 256;
/// Bytes of a literal list kept before it is folded to `(?`.
const LIST_WINDOW: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    /// In a `'…'` (`b'\''`) or `"…"` string opened at `start` in `out`.
    Quoted {
        quote: u8,
        start: usize,
        /// Content bytes seen (kept up to [`STRING_WINDOW`]).
        len: usize,
        /// `"` inside a `'…'` string.
        dq: usize,
        /// `/*` inside (pt strips it as a comment before it sees quotes),
        /// or, in an `INSERT`/`REPLACE`, `), (` (pt cuts the statement
        /// there before it sees quotes).
        comment: bool,
        /// How much of `)\s*,\s*(` was just read (0: none, 1: `)`, 2: `,`).
        paren: u8,
    },
    /// After `/*`: the next byte decides (`/*!` is a hint, kept as text).
    BlockOpen,
    Block,
    /// After `#` or `--`: a comment to the end of the line unless a quote
    /// comes first (pt's rule).
    LineComment,
}

/// Where the reader stands with respect to a foldable list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListContext {
    None,
    /// After `in`/`value`/`values` (or a folded list), only `[\s,]` since.
    Keyword,
    /// Inside a list started at `start`.
    Item {
        start: usize,
        token: Token,
        folded: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// After `(`, a space or a comma.
    Separator,
    /// A number `[0-9+-][0-9a-f.xb+-]*`.
    Number,
    /// A word: its first bytes, lower-cased, packed.
    Word { len: u8, bytes: u32 },
    /// After a string or `?`.
    Item,
}

/// A statement's text, reduced as it streams (see the module doc).
#[derive(Debug, Clone)]
pub struct Statement {
    out: Vec<u8>,
    cap: usize,
    state: State,
    list: ListContext,
    /// Reductions are no longer exact (see the module doc).
    dirty: bool,
    /// Text was dropped that the fingerprint needed.
    truncated: bool,
    /// A multi-row insert's first row is complete: the rest is not needed.
    done: bool,
    /// Still within `raw_window`: kept as it came (in `raw_text`, so that
    /// it needs no UTF-8 check), not yet read byte by byte.
    raw: bool,
    raw_text: String,
    /// Bytes kept as they came before reduction starts: the cap. A
    /// statement that fits is the whole text, whose fingerprint is pt's by
    /// definition, so reading it here would only repeat the fingerprint's
    /// own pass (it was 11 % of the PostgreSQL path's instructions when
    /// reduction started at STRING_WINDOW). Reduction is for what would
    /// not fit.
    raw_window: usize,
    prev: u8,
    /// The current word so far (lower-cased, packed) and its length, and
    /// whether a non-word byte came before it.
    word: u32,
    word_len: u8,
    word_at_boundary: bool,
    /// The last byte read in the normal state that pt keeps: `\'` and
    /// `\"` are deleted before pt looks for word boundaries, so the
    /// bytes around them join.
    last_kept: u8,
    /// `last_kept` before the last backslash (restored when it turns out
    /// to start a deleted pair).
    before_backslash: u8,
    /// `last_kept` before the last `/` (restored after a block comment,
    /// which pt deletes).
    before_slash: u8,
}

fn is_w(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_s(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

const fn pack(w: &[u8]) -> u32 {
    let mut v = 0u32;
    let mut i = 0;
    while i < w.len() && i < 4 {
        v = (v << 8) | w[i] as u32;
        i += 1;
    }
    v
}

impl Statement {
    /// An empty statement keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            out: Vec::new(),
            cap,
            state: State::Normal,
            list: ListContext::None,
            dirty: false,
            truncated: false,
            done: false,
            raw: true,
            raw_text: String::new(),
            raw_window: cap,
            prev: b'\n',
            word: 0,
            word_len: 0,
            word_at_boundary: true,
            last_kept: b'\n',
            before_backslash: b'\n',
            before_slash: b'\n',
        }
    }

    /// An empty statement keeping at most `cap` bytes, written into `buf`'s
    /// memory (a digested event's query handed back: one allocation, and
    /// the regrowth of a long statement, less per event).
    pub fn in_buffer(cap: usize, mut buf: String) -> Self {
        buf.clear();
        Self {
            raw_text: buf,
            ..Self::new(cap)
        }
    }

    /// A statement reduced from its `STRING_WINDOW`th byte on instead of
    /// from the cap (the tests' way to read reductions with room to spare).
    #[cfg(test)]
    fn reducing(cap: usize) -> Self {
        Self {
            raw_window: STRING_WINDOW.min(cap),
            ..Self::new(cap)
        }
    }

    /// A statement whose text is not needed (its message gives no event):
    /// what is pushed is not read.
    pub fn ignored(cap: usize) -> Self {
        Self {
            done: true,
            ..Self::new(cap)
        }
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty() && self.raw_text.is_empty() && !self.truncated
    }

    /// Marks the text as cut (its source was cut before it got here).
    pub fn mark_truncated(&mut self) {
        self.truncated = true;
    }

    /// Appends text.
    pub fn push(&mut self, text: &str) {
        if self.done {
            return;
        }
        if self.raw {
            // Nothing is reduced while the text fits: most statements are
            // only copied.
            if self.raw_text.len() + text.len() <= self.raw_window {
                self.raw_text.push_str(text);
                return;
            }
            self.raw = false;
            let kept = std::mem::take(&mut self.raw_text);
            self.push_bytes(kept.as_bytes());
        }
        if !self.done {
            self.push_bytes(text.as_bytes());
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            // Runs of bytes whose handling is known in advance go at once;
            // each other byte through the state machine.
            let n = self.run(&bytes[i..]);
            if n > 0 {
                i += n;
                continue;
            }
            self.byte(bytes[i]);
            i += 1;
            if self.done {
                return;
            }
        }
    }

    /// Reads the longest run at the start of `bytes` that [`Statement::byte`]
    /// would read without a decision (the content of a string, the numbers
    /// of a list), with exactly its effect; returns its length (0: none).
    /// Long statements are mostly such runs.
    fn run(&mut self, bytes: &[u8]) -> usize {
        match self.state {
            // Bytes that close the string, escape, count as `"`, may start
            // or end a comment or a `), (`: one at a time. After any other
            // byte `paren` is 0, and then whitespace is plain text too.
            State::Quoted { len, paren: 0, .. } => {
                let n = bytes
                    .iter()
                    .position(|&c| matches!(c, b'\'' | b'"' | b'\\' | b'*' | b')' | b',' | b'('))
                    .unwrap_or(bytes.len());
                if n == 0 {
                    return 0;
                }
                // `keep` of each byte while the string is within its window.
                let kept = STRING_WINDOW.saturating_sub(len).min(n);
                self.keep_all(&bytes[..kept]);
                self.prev = bytes[n - 1];
                if let State::Quoted { len, .. } = &mut self.state {
                    *len += n;
                }
                n
            }
            State::Normal if self.list == ListContext::None => self.plain_run(bytes),
            State::Normal => {
                let ListContext::Item {
                    start,
                    token: Token::Separator | Token::Number,
                    folded,
                } = self.list
                else {
                    return 0;
                };
                let n = bytes
                    .iter()
                    .position(|&c| !matches!(c, b'0'..=b'9' | b' ' | b','))
                    .unwrap_or(bytes.len());
                let mut folded = folded;
                let mut token = Token::Separator;
                let mut i = 0;
                let mut skipped = false;
                while i < n {
                    if folded && !skipped && self.out.len() <= start + 2 && start + 2 <= self.cap {
                        // Folded: each byte leaves `?` and itself after the
                        // list's start, and a separator ends the word. Up to
                        // the run's last separator, only that one's effect
                        // is left to make.
                        skipped = true;
                        if let Some(last) = bytes[i..n].iter().rposition(|&c| !c.is_ascii_digit()) {
                            let sep = bytes[i + last];
                            self.out.truncate(start);
                            self.out.push(b'?');
                            self.out.push(sep);
                            self.prev = sep;
                            self.last_kept = sep;
                            self.word_len = 0;
                            token = Token::Separator;
                            i += last + 1;
                            continue;
                        }
                    }
                    let b = bytes[i];
                    i += 1;
                    // As `normal` reads a digit, a space or a comma of a list
                    // of numbers: the word, the list's token, its fold, kept.
                    let before = self.last_kept;
                    self.prev = b;
                    self.last_kept = b;
                    // Inside a list a word's end opens nothing.
                    let _ = self.word_byte(b, before);
                    token = if b.is_ascii_digit() {
                        Token::Number
                    } else {
                        Token::Separator
                    };
                    folded = folded || self.out.len().saturating_sub(start) > LIST_WINDOW;
                    if folded && self.out.len() > start + 1 {
                        self.out.truncate(start);
                        self.out.push(b'?');
                    }
                    self.keep(b);
                }
                if n > 0 {
                    self.list = ListContext::Item {
                        start,
                        token,
                        folded,
                    };
                }
                n
            }
            _ => 0,
        }
    }

    /// A run of text outside strings, comments and lists: words and the
    /// bytes between them that start nothing (no quote, comment mark,
    /// backslash or parenthesis), read as `normal` reads them, up to and
    /// including a byte after which a list may start (`in`, `value(s)`).
    fn plain_run(&mut self, bytes: &[u8]) -> usize {
        let mut n = 0;
        for &b in bytes {
            if matches!(b, b'\'' | b'"' | b'/' | b'*' | b'#' | b'-' | b'(' | b'\\') {
                break;
            }
            n += 1;
            let before = self.last_kept;
            self.prev = b;
            self.last_kept = b;
            let keyword = self
                .word_byte(b, before)
                .is_some_and(|w| self.word_at_boundary && !self.dirty && self.is_list_keyword(w));
            self.keep(b);
            if keyword && (is_s(b) || b == b',') {
                // What follows may open a list: byte by byte from here. (A
                // keyword ended by another byte opens none.)
                self.list = ListContext::Keyword;
                break;
            }
        }
        n
    }

    /// `keep` of each byte of `bytes`.
    fn keep_all(&mut self, bytes: &[u8]) {
        let room = self.cap.saturating_sub(self.out.len());
        self.out.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if bytes.len() > room {
            self.truncated = true;
        }
    }

    fn keep(&mut self, b: u8) {
        if self.out.len() < self.cap {
            self.out.push(b);
        } else {
            self.truncated = true;
        }
    }

    fn byte(&mut self, b: u8) {
        let prev = self.prev;
        self.prev = b;
        match self.state {
            State::Quoted {
                quote,
                start,
                len,
                dq,
                comment,
                paren,
            } => {
                // pt deletes `\'` and `\"` before it pairs quotes.
                if b == quote && prev != b'\\' {
                    self.close_string(quote, start, len, dq, comment);
                    return;
                }
                let escaped_quote = prev == b'\\' && matches!(b, b'\'' | b'"');
                let dq = dq + usize::from(b == b'"' && !escaped_quote);
                let paren = match (paren, b) {
                    (_, b')') => 1,
                    (1, b',') => 2,
                    (1 | 2, c) if is_s(c) => paren,
                    (2, b'(') if self.is_insert() => 3,
                    _ => 0,
                };
                let comment = comment || (prev == b'/' && b == b'*') || paren == 3;
                if len < STRING_WINDOW {
                    self.keep(b);
                }
                // A backslash-quote pair is gone for pt: the next byte has
                // no backslash before it.
                if escaped_quote {
                    self.prev = 0;
                }
                self.state = State::Quoted {
                    quote,
                    start,
                    len: len + 1,
                    dq,
                    comment,
                    paren,
                };
            }
            State::BlockOpen => {
                self.keep(b);
                self.state = if b == b'!' {
                    self.last_kept = b;
                    State::Normal
                } else {
                    self.prev = 0;
                    State::Block
                };
            }
            State::Block => {
                self.keep(b);
                if prev == b'*' && b == b'/' {
                    self.state = State::Normal;
                    self.prev = 0;
                    // pt deletes the comment: what was before it joins what
                    // comes after.
                    self.last_kept = self.before_slash;
                }
            }
            State::LineComment => match b {
                b'\n' | b'\r' => {
                    self.keep(b);
                    self.last_kept = b;
                    self.state = State::Normal;
                }
                b'\'' | b'"' => {
                    self.state = State::Normal;
                    self.prev = prev;
                    self.byte(b);
                }
                _ => {
                    self.track(prev, b);
                    self.keep(b);
                }
            },
            State::Normal => self.normal(prev, b),
        }
    }

    /// Notes `b` as read where pt keeps it (not in a string or a block
    /// comment); returns the kept byte before it.
    fn track(&mut self, prev: u8, b: u8) -> u8 {
        let escaped_quote = prev == b'\\' && matches!(b, b'\'' | b'"');
        if escaped_quote {
            self.last_kept = self.before_backslash;
        } else if b == b'\\' {
            self.before_backslash = self.last_kept;
        } else if b == b'/' {
            self.before_slash = self.last_kept;
        }
        let before = self.last_kept;
        if !escaped_quote {
            self.last_kept = b;
        }
        before
    }

    fn normal(&mut self, prev: u8, b: u8) {
        let before = self.track(prev, b);
        // Words, for `in` / `value(s)` before a list.
        if let Some(w) = self.word_byte(b, before)
            && self.word_at_boundary
            && !self.dirty
            && matches!(self.list, ListContext::None | ListContext::Keyword)
        {
            self.list = if self.is_list_keyword(w) {
                ListContext::Keyword
            } else {
                ListContext::None
            };
        }
        let quote_opens = matches!(b, b'\'' | b'"') && prev != b'\\';
        if let ListContext::Item {
            start,
            token,
            folded,
        } = self.list
        {
            self.list_byte(b, start, token, folded, quote_opens);
        } else if self.list == ListContext::Keyword {
            if b == b'(' && !self.dirty {
                // `start`: just after the `(` kept below.
                self.list = ListContext::Item {
                    start: self.out.len() + 1,
                    token: Token::Separator,
                    folded: false,
                };
            } else if !(is_s(b) || b == b',') {
                self.list = ListContext::None;
            }
        } else if !is_w(b) {
            self.list = ListContext::None;
        }
        match b {
            b'\'' | b'"' if quote_opens => {
                self.keep(b);
                self.state = State::Quoted {
                    quote: b,
                    start: self.out.len(),
                    len: 0,
                    dq: 0,
                    comment: false,
                    paren: 0,
                };
            }
            b'*' if prev == b'/' => {
                self.keep(b);
                self.state = State::BlockOpen;
            }
            b'#' => {
                self.keep(b);
                self.state = State::LineComment;
            }
            b'-' if prev == b'-' => {
                self.keep(b);
                self.state = State::LineComment;
            }
            b'(' => {
                self.keep(b);
                self.maybe_cut_insert();
            }
            _ => self.keep(b),
        }
        if matches!(self.state, State::LineComment | State::BlockOpen) {
            // A comment inside a list: not a list of literals.
            if let ListContext::Item { folded, .. } = self.list {
                self.truncated |= folded;
                self.list = ListContext::None;
            }
        }
    }

    /// Reads `b` into the current word (`before`: the byte kept before
    /// it); returns the word (length, packed) that `b` ended, if any.
    fn word_byte(&mut self, b: u8, before: u8) -> Option<(u8, u32)> {
        if is_w(b) {
            if self.word_len == 0 {
                self.word_at_boundary = !is_w(before);
                self.word = 0;
            }
            if self.word_len < 8 {
                self.word = (self.word << 8) | u32::from(b.to_ascii_lowercase());
            }
            self.word_len = self.word_len.saturating_add(1);
            None
        } else if self.word_len > 0 {
            let w = (self.word_len, self.word);
            self.word_len = 0;
            Some(w)
        } else {
            None
        }
    }

    /// `in`, `value` or `values`: a list may follow.
    fn is_list_keyword(&self, w: (u8, u32)) -> bool {
        w == (2, pack(b"in")) || self.word_is_value(w)
    }

    /// `value` or `values` (`value` is 5 bytes: only its last 4 are packed).
    fn word_is_value(&self, (len, packed): (u8, u32)) -> bool {
        (len == 5 && packed == pack(b"alue")) || (len == 6 && packed == pack(b"lues"))
    }

    fn list_byte(&mut self, b: u8, start: usize, token: Token, folded: bool, quote_opens: bool) {
        let next = match (token, b) {
            (_, b')') if token_ends(token) => {
                // A list of literals: `(?)` folds like the whole list (a
                // short one stays as written).
                if folded {
                    self.out.truncate(start);
                    self.out.push(b'?');
                }
                self.list = ListContext::Keyword;
                return;
            }
            (_, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',') if token_ends(token) => {
                Some(Token::Separator)
            }
            (Token::Separator, b'0'..=b'9' | b'+' | b'-') => Some(Token::Number),
            (Token::Number, b'0'..=b'9' | b'a'..=b'f' | b'.' | b'x' | b'+' | b'-') => {
                Some(Token::Number)
            }
            (Token::Separator, b'?') => Some(Token::Item),
            (Token::Separator, b'\'' | b'"') if quote_opens => Some(Token::Item),
            (Token::Separator, c) if c.is_ascii_alphabetic() => Some(Token::Word {
                len: 1,
                bytes: u32::from(c.to_ascii_lowercase()),
            }),
            (Token::Word { len, bytes }, c) if c.is_ascii_alphabetic() && len < 5 => {
                Some(Token::Word {
                    len: len + 1,
                    bytes: (bytes << 8) | u32::from(c.to_ascii_lowercase()),
                })
            }
            _ => None,
        };
        match next {
            Some(token) => {
                let folded = folded || self.out.len().saturating_sub(start) > LIST_WINDOW;
                if folded && self.out.len() > start + 1 {
                    self.out.truncate(start);
                    self.out.push(b'?');
                }
                self.list = ListContext::Item {
                    start,
                    token,
                    folded,
                };
            }
            None => {
                // Not a list of literals after all: what was folded is lost.
                self.truncated |= folded;
                self.list = ListContext::None;
            }
        }
    }

    fn close_string(&mut self, quote: u8, start: usize, len: usize, dq: usize, comment: bool) {
        self.state = State::Normal;
        let exact = quote == b'"' || dq.is_multiple_of(2);
        if self.dirty || comment || !exact {
            self.dirty = true;
            if len > STRING_WINDOW {
                self.truncated = true;
            }
            if let ListContext::Item { folded, .. } = self.list {
                self.truncated |= folded;
                self.list = ListContext::None;
            }
        } else if len > STRING_WINDOW {
            // A short string stays as written.
            self.out.truncate(start);
        }
        self.keep(quote);
        // A string ends a word like any non-word byte.
        self.word_len = 0;
    }

    /// Whether the statement is an `INSERT` or a `REPLACE` (pt's cut).
    fn is_insert(&self) -> bool {
        let o = &self.out;
        let starts = |w: &[u8]| o.len() >= w.len() && o[..w.len()].eq_ignore_ascii_case(w);
        starts(b"insert") || starts(b"replace")
    }

    /// pt keeps only the first row of a multi-row insert: once the text has
    /// `VALUES (…), (` nothing after matters.
    fn maybe_cut_insert(&mut self) {
        if !self.is_insert() {
            return;
        }
        let o = &self.out;
        // `)\s*,\s*(` just written?
        let mut i = o.len() - 1;
        while i > 0 && is_s(o[i - 1]) {
            i -= 1;
        }
        if i == 0 || o[i - 1] != b',' {
            return;
        }
        i -= 1;
        while i > 0 && is_s(o[i - 1]) {
            i -= 1;
        }
        if i == 0 || o[i - 1] != b')' {
            return;
        }
        if let Some(end) = crate::fingerprint::insert_cut(o) {
            self.out.truncate(end);
            self.done = true;
        }
    }

    /// The reduced text and whether something the fingerprint needed was
    /// cut.
    pub fn finish(mut self) -> (String, bool) {
        if self.raw {
            return (self.raw_text, self.truncated);
        }
        if let State::Quoted { len, .. } = self.state
            && len > STRING_WINDOW
        {
            // Never closed: pt reads on after a lone quote.
            self.truncated = true;
        }
        if let ListContext::Item { folded: true, .. } = self.list {
            self.truncated = true;
        }
        let text = match String::from_utf8(self.out) {
            Ok(s) => s,
            Err(e) => {
                // Cut inside a character: drop its first bytes.
                let valid = e.utf8_error().valid_up_to();
                let mut v = e.into_bytes();
                if v.len() - valid < 4 {
                    v.truncate(valid);
                    String::from_utf8(v).unwrap_or_default()
                } else {
                    String::from_utf8_lossy(&v).into_owned()
                }
            }
        };
        (text, self.truncated)
    }
}

fn token_ends(t: Token) -> bool {
    match t {
        Token::Separator | Token::Number | Token::Item => true,
        Token::Word { len, bytes } => {
            (len == 4 && (bytes == pack(b"null") || bytes == pack(b"true")))
                || (len == 5 && bytes == pack(b"alse"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::fingerprint;
    use crate::test_rng::Rng;

    fn reduce(text: &str, cap: usize, piece: usize) -> (String, bool) {
        let mut s = Statement::reducing(cap);
        let mut rest = text;
        while !rest.is_empty() {
            let mut at = piece.min(rest.len());
            while !rest.is_char_boundary(at) {
                at += 1;
            }
            s.push(&rest[..at]);
            rest = &rest[at..];
        }
        s.finish()
    }

    #[test]
    fn long_literals_keep_the_class_in_bounded_memory() {
        // (statement, what its fingerprint is): each is far longer than the
        // 4 KiB kept.
        let body = "lorem ipsum ".repeat(100_000);
        let ints: Vec<String> = (0..50_000).map(|i| i.to_string()).collect();
        let strs: Vec<String> = (0..20_000).map(|i| format!("'k{i}'")).collect();
        let rows: Vec<String> = (0..20_000).map(|i| format!("({i}, 'r{i}')")).collect();
        let cases = [
            (
                format!("UPDATE docs SET body='{body}' WHERE id=7"),
                "update docs set body=? where id=?",
            ),
            (
                format!("UPDATE docs SET body=\"{body}\" WHERE id=7"),
                "update docs set body=? where id=?",
            ),
            (
                format!("select * from t where id in ({})", ints.join(", ")),
                "select * from t where id in(?+)",
            ),
            (
                format!("SELECT * FROM t WHERE k IN ({}) AND x = 1", strs.join(",")),
                "select * from t where k in(?+) and x = ?",
            ),
            (
                format!("INSERT INTO t (a, b) VALUES {}", rows.join(", ")),
                "insert into t (a, b) values(?+)",
            ),
            (
                format!(
                    "insert into t values ({}) , ({})",
                    ints.join(","),
                    ints.join(",")
                ),
                "insert into t values(?+)",
            ),
            (
                format!(
                    "UPDATE docs SET body='{}' WHERE id=7",
                    "it\\'s ".repeat(10_000)
                ),
                "update docs set body=? where id=?",
            ),
            (
                format!(
                    "UPDATE docs SET body='{}' WHERE id=7",
                    "\"a\" ".repeat(10_000)
                ),
                "update docs set body=? where id=?",
            ),
        ];
        for (q, want) in cases {
            for piece in [1 << 16, 7] {
                let (text, truncated) = reduce(&q, 4096, piece);
                assert!(text.len() <= 4096, "{want}: {} bytes", text.len());
                assert!(!truncated, "{want}");
                assert_eq!(fingerprint(&text), want, "piece {piece}");
            }
            assert_eq!(fingerprint(&q), want, "the full text");
        }
    }

    #[test]
    fn what_the_reader_cannot_reduce_exactly_is_cut_and_said() {
        // A `/*` inside a long string (pt strips comments before it sees
        // quotes), a long list that turns out not to be one of literals.
        let long = "x".repeat(10_000);
        let ints: Vec<String> = (0..5_000).map(|i| i.to_string()).collect();
        for q in [
            format!("select '{long} /* ' from t"),
            format!("select * from t where a in ({}, b)", ints.join(", ")),
            format!("select '{long}"),
        ] {
            let (text, truncated) = reduce(&q, 4096, 1 << 16);
            assert!(truncated, "{}", &q[..40]);
            assert!(text.len() <= 4096);
        }
    }

    /// The state that can still matter: between words (`word_len` 0) the
    /// last word's bytes and boundary are never read again.
    fn observable(s: &Statement) -> String {
        let mut s = s.clone();
        if s.word_len == 0 {
            s.word = 0;
            s.word_at_boundary = false;
        }
        format!("{s:?}")
    }

    #[test]
    fn runs_read_at_once_leave_the_state_a_byte_at_a_time_leaves() {
        // Statements of strings, lists and the bytes around them, pushed in
        // pieces: with the runs (`push`) and a byte at a time only, the
        // whole state (not only the text) is the same after every piece.
        let fragments = [
            "select * from t where a in (",
            "INSERT INTO t VALUES (",
            " in=",
            " value,",
            "VALUES\t",
            " IN ",
            "x_in ",
            "1, 2, 3",
            "12345",
            " ,, ",
            "-5",
            "0x1f",
            "abc",
            "'",
            "\"",
            "\\'",
            "''",
            "lorem ipsum dolor ",
            "/*",
            "*/",
            "), (",
            ")",
            "(",
            "null",
            "\n",
            "é",
        ];
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..3_000 {
            // Room for lists past LIST_WINDOW (folded), and a cap reached.
            let cap = [700, 8192][rng.below(2)];
            let mut fast = Statement::reducing(cap);
            let mut slow = Statement::reducing(cap);
            // Past the raw window at once: the runs only apply after it.
            let lead = "x".repeat(STRING_WINDOW + 1);
            fast.push(&lead);
            slow.push(&lead);
            for _ in 0..rng.below(60) + 1 {
                let mut piece = String::new();
                for _ in 0..rng.below(6) + 1 {
                    let f = fragments[rng.below(fragments.len())];
                    for _ in 0..[1, 1, 3, 40, 400][rng.below(5)] {
                        piece.push_str(f);
                    }
                }
                fast.push(&piece);
                if !slow.done {
                    for &b in piece.as_bytes() {
                        slow.byte(b);
                        if slow.done {
                            break;
                        }
                    }
                }
                assert_eq!(observable(&fast), observable(&slow), "{piece:?}");
            }
            assert_eq!(fast.finish(), slow.finish());
        }
    }

    #[test]
    fn reduced_text_has_the_fingerprint_of_the_whole_text() {
        // Random statements made of the fragments pt's passes care about,
        // some literals long enough to be reduced: whenever the reader says
        // it kept what mattered, the fingerprint is the full text's.
        let long = "y".repeat(300);
        let list: String = (0..400).map(|i| format!("{i}, ")).collect::<String>() + "7";
        let fragments: Vec<String> = [
            "select ",
            "SELECT ",
            "* from t ",
            "where ",
            "a = ",
            "1",
            "-2.5e3",
            "0x1F",
            "'",
            "\"",
            "\\'",
            "\\\"",
            "\\\\",
            "/*",
            "*/",
            "/*!",
            "#",
            "--",
            "-",
            "\n",
            " ",
            ",",
            "(",
            ")",
            "in ",
            "IN (",
            "values ",
            "VALUES (",
            "null",
            "TRUE",
            "?",
            "insert into t ",
            "REPLACE INTO t ",
            "), (",
            "union ",
            "limit 5, 6",
            "order by a asc",
            "use db",
            "é",
            "x",
            "b'01'",
            "t1",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            format!("'{long}'"),
            format!("\"{long}\""),
            format!("'{long}\"'"),
            format!("({list})"),
            format!("in ({list})"),
            format!("VALUES ({list}), ({list})"),
        ])
        .collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut exact = 0;
        for _ in 0..8_000 {
            let mut q = String::new();
            for _ in 0..rng.below(12) + 1 {
                q.push_str(&fragments[rng.below(fragments.len())]);
            }
            let piece = [1, 3, 64, 1 << 20][rng.below(4)];
            let (text, truncated) = reduce(&q, 1 << 20, piece);
            if !truncated {
                exact += 1;
                assert_eq!(fingerprint(&text), fingerprint(&q), "{q:?} -> {text:?}");
            }
        }
        // The adversarial mix makes some reductions inexact (then cut and said).
        assert!(exact > 6_000, "{exact}");
    }
}
