//! The quoted message of a JSON or csv log line decoded as the line's pieces
//! arrive (issue 16): a line longer than the tailer's `max_line` comes as its
//! first `max_line` bytes, then pieces ([`crate::tail::Tailer::read_pieces`]),
//! so an escape (`\u00e9`, csv's `""`) may be split across two pieces and
//! nothing may hold the whole line.
//!
//! Both decoders hand out the decoded text in runs (slices of the input
//! where no escape intervenes), so a reader can push them through
//! [`crate::statement::Statement`] without copying the line.

/// A JSON string's content decoded as it streams, from just after its
/// opening quote to its closing one.
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonString {
    /// An escape sequence begun and not complete yet (`\`, `\u`, `\u00`…):
    /// the piece ended inside it.
    esc: [u8; 6],
    esc_len: usize,
    /// A high surrogate (`\ud83d`) waiting for its low half.
    high: Option<u32>,
    closed: bool,
}

impl JsonString {
    /// Decodes `s` (the next bytes of the string) into `out`; returns what
    /// follows the closing quote once the string closed in `s`.
    pub(crate) fn feed<'s>(&mut self, s: &'s str, out: &mut dyn FnMut(&str)) -> Option<&'s str> {
        if self.closed {
            return Some(s);
        }
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if self.esc_len > 0 {
                if !b[i].is_ascii() {
                    // No escape goes on with a non-ASCII byte: not JSON, kept
                    // as written (and `i` stays on a character boundary).
                    self.invalid_escape(out);
                    continue;
                }
                self.esc[self.esc_len] = b[i];
                self.esc_len += 1;
                i += 1;
                self.escape(out);
                continue;
            }
            let end = s[i..].find(['"', '\\']).map_or(b.len(), |p| i + p);
            if end > i {
                self.lone_high(out);
                out(&s[i..end]);
            }
            if end == b.len() {
                break;
            }
            if b[end] == b'"' {
                self.lone_high(out);
                self.closed = true;
                return Some(&s[end + 1..]);
            }
            self.esc[0] = b'\\';
            self.esc_len = 1;
            i = end + 1;
        }
        None
    }

    /// Whether the closing quote was read.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Completes the escape in `esc` when it is whole.
    fn escape(&mut self, out: &mut dyn FnMut(&str)) {
        let e = &self.esc[..self.esc_len];
        if e.len() == 2 {
            let c = match (e[1], json_escape(e[1])) {
                (_, Some(c)) => c,
                (b'u', None) => return,
                _ => return self.invalid_escape(out),
            };
            self.lone_high(out);
            emit_char(c, out);
            self.esc_len = 0;
            return;
        }
        if !e[e.len() - 1].is_ascii_hexdigit() {
            return self.invalid_escape(out);
        }
        if e.len() < 6 {
            return;
        }
        // Four hex digits: always a valid number.
        let code = std::str::from_utf8(&e[2..])
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .unwrap_or(0xFFFD);
        self.esc_len = 0;
        match code {
            0xD800..=0xDBFF => {
                self.lone_high(out);
                self.high = Some(code);
            }
            0xDC00..=0xDFFF => {
                let c = self
                    .high
                    .take()
                    .and_then(|h| char::from_u32(0x10000 + ((h - 0xD800) << 10) + (code - 0xDC00)));
                emit_char(c.unwrap_or('\u{FFFD}'), out);
            }
            _ => {
                self.lone_high(out);
                emit_char(char::from_u32(code).unwrap_or('\u{FFFD}'), out);
            }
        }
    }

    /// An escape JSON does not have: its bytes as written (all ASCII).
    fn invalid_escape(&mut self, out: &mut dyn FnMut(&str)) {
        self.lone_high(out);
        if let Ok(raw) = std::str::from_utf8(&self.esc[..self.esc_len]) {
            out(raw);
        }
        self.esc_len = 0;
    }

    /// A high surrogate not followed by its low half: U+FFFD.
    fn lone_high(&mut self, out: &mut dyn FnMut(&str)) {
        if self.high.take().is_some() {
            out("\u{FFFD}");
        }
    }
}

/// The character of JSON's two-byte escape `\` + `b` (`None` for `\u`,
/// which takes four hex digits, and for what JSON does not have).
pub(crate) fn json_escape(b: u8) -> Option<char> {
    Some(match b {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        _ => return None,
    })
}

fn emit_char(c: char, out: &mut dyn FnMut(&str)) {
    out(c.encode_utf8(&mut [0; 4]));
}

/// The csvlog fields a message needs, by position: user_name,
/// database_name, process_id, error_severity.
const KEPT: [usize; 4] = [1, 2, 3, 11];
/// The position of csvlog's `message`.
const MESSAGE: usize = 13;
/// Bytes kept of each of the [`KEPT`] fields (they are short; garbage is
/// not held).
const FIELD_BYTES: usize = 256;

/// What [`CsvRecord::feed`] reads of the message field.
pub(crate) enum CsvPart<'a> {
    /// The message field starts: the [`KEPT`] fields before it (user,
    /// database, pid, severity), unquoted.
    MessageStart(&'a [String; 4]),
    /// Decoded text of the message (`""` as `"`).
    Text(&'a str),
    /// The message field ended (its closing quote, or the next field).
    MessageEnd,
}

/// A csvlog record read as it streams, across lines and pieces of lines:
/// which field it is in, whether inside quotes, the few fields a message
/// needs, and the message decoded as it comes.
#[derive(Debug, Clone)]
pub(crate) struct CsvRecord {
    field: usize,
    /// Inside a quoted field.
    quoted: bool,
    /// Inside a quoted field, a `"` was just read: a doubled quote or the
    /// field's end, as the next byte says (maybe in the next piece).
    quote: bool,
    /// Nothing of the current field read yet.
    at_start: bool,
    message_done: bool,
    kept: [String; 4],
}

impl CsvRecord {
    /// A record from its first byte.
    pub(crate) fn new() -> Self {
        Self {
            field: 0,
            quoted: false,
            quote: false,
            at_start: true,
            message_done: false,
            kept: Default::default(),
        }
    }

    /// Reads the next bytes of the record; a newline is the record's end
    /// unless it is inside quotes.
    pub(crate) fn feed(&mut self, s: &str, out: &mut dyn FnMut(CsvPart<'_>)) {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if self.quoted {
                if self.quote {
                    self.quote = false;
                    if b[i] == b'"' {
                        self.content("\"", out);
                        i += 1;
                        continue;
                    }
                    // The quote closed the field: this byte comes after it.
                    self.quoted = false;
                    if self.field == MESSAGE {
                        self.end_message(out);
                    }
                } else {
                    let end = s[i..].find('"').map_or(b.len(), |p| i + p);
                    if end > i {
                        self.content(&s[i..end], out);
                    }
                    if end < b.len() {
                        self.quote = true;
                    }
                    i = end + 1;
                    continue;
                }
            }
            match b[i] {
                b',' | b'\n' => {
                    if self.field == MESSAGE {
                        self.end_message(out);
                    }
                    self.at_start = true;
                    if b[i] == b',' {
                        self.field += 1;
                        if self.field == MESSAGE {
                            out(CsvPart::MessageStart(&self.kept));
                        }
                    }
                    i += 1;
                }
                b'"' if self.at_start => {
                    self.quoted = true;
                    self.at_start = false;
                    i += 1;
                }
                _ => {
                    self.at_start = false;
                    let end = s[i..].find([',', '\n']).map_or(b.len(), |p| i + p);
                    self.content(&s[i..end], out);
                    i = end;
                }
            }
        }
    }

    /// Whether a quoted field is open at a line's end (the newline is part
    /// of it). A `"` just read closes the field there (a doubled one would
    /// need another `"` next).
    pub(crate) fn in_quotes(&self) -> bool {
        self.quoted && !self.quote
    }

    /// Whether the message field was reached.
    pub(crate) fn reached_message(&self) -> bool {
        self.field >= MESSAGE
    }

    fn content(&mut self, s: &str, out: &mut dyn FnMut(CsvPart<'_>)) {
        if self.field == MESSAGE {
            if !self.message_done {
                out(CsvPart::Text(s));
            }
            return;
        }
        if let Some(k) = KEPT.iter().position(|&f| f == self.field) {
            let kept = &mut self.kept[k];
            let room = FIELD_BYTES.saturating_sub(kept.len());
            let mut end = s.len().min(room);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            kept.push_str(&s[..end]);
        }
    }

    fn end_message(&mut self, out: &mut dyn FnMut(CsvPart<'_>)) {
        if !self.message_done {
            self.message_done = true;
            out(CsvPart::MessageEnd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `pieces` in turn: (text, what followed the closing quote).
    fn json(pieces: &[&str]) -> (String, Option<String>) {
        let mut d = JsonString::default();
        let mut text = String::new();
        let mut after = None::<String>;
        for p in pieces {
            match &mut after {
                Some(a) => a.push_str(p),
                None => after = d.feed(p, &mut |t| text.push_str(t)).map(str::to_owned),
            }
        }
        (text, after)
    }

    #[test]
    fn json_strings_split_anywhere_decode_as_serde_does() {
        // (string's content and closing quote, then what follows).
        let cases = [
            r#"plain"#,
            r#"a \"quoted\" \\ back\/slash\n\t\r\b\f"#,
            r#"\u00e9t\u00E9 caf\u00e9"#,
            r#"emoji \ud83d\ude00 and é raw"#,
            r#"\\\\\"\\"#,
        ];
        for content in cases {
            let whole = format!("{content}\",\"next\":1}}");
            let want: String = serde_json::from_str(&format!("\"{content}\"")).unwrap();
            for a in 0..=whole.len() {
                for b in a..=whole.len() {
                    if !whole.is_char_boundary(a) || !whole.is_char_boundary(b) {
                        continue;
                    }
                    let got = json(&[&whole[..a], &whole[a..b], &whole[b..]]);
                    assert_eq!(
                        got,
                        (want.clone(), Some(",\"next\":1}".to_owned())),
                        "{content:?} split at {a}, {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn json_strings_that_are_not_json_never_panic() {
        // (pieces, text): invalid escapes kept as written, lone surrogates
        // as U+FFFD, an unclosed string as far as it goes.
        let cases: [(&[&str], &str); 5] = [
            (&["a\\xb", "\""], "a\\xb"),
            (&["\\ud83d", "x\""], "\u{FFFD}x"),
            (&["\\ude00\""], "\u{FFFD}"),
            (&["\\u12", "g\""], "\\u12g"),
            (&["\\", "é\""], "\\é"),
        ];
        for (pieces, want) in cases {
            assert_eq!(json(pieces).0, want, "{pieces:?}");
        }
        assert_eq!(json(&["abc\\u00"]), ("abc".to_owned(), None));
    }

    /// Reads a record's pieces: (kept fields at the message's start, the
    /// message, whether it ended, in quotes at the end).
    fn csv(pieces: &[&str]) -> (Vec<String>, String, bool, bool) {
        let mut r = CsvRecord::new();
        let (mut kept, mut text, mut ended) = (Vec::new(), String::new(), false);
        for p in pieces {
            r.feed(p, &mut |part| match part {
                CsvPart::MessageStart(k) => kept = k.to_vec(),
                CsvPart::Text(t) => text.push_str(t),
                CsvPart::MessageEnd => ended = true,
            });
        }
        (kept, text, ended, r.in_quotes())
    }

    #[test]
    fn csv_records_split_anywhere_read_as_the_csv_crate_does() {
        let records = [
            "2024-01-01 10:00:00.123 UTC,\"app\",\"shop\",42,\"h\",s,1,\"SELECT\",t,1/2,0,LOG,00000,\"duration: 1.000 ms  statement: select \"\"x\"\"\n from t\",,,,,,,\"a \"\"q\"\"\nb\",,\"psql\"\n",
            "2024-01-01 10:00:00.123 UTC,,,7,,s,1,,t,1/2,0,LOG,00000,unquoted message,,\n",
        ];
        for record in records {
            let row = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(record.as_bytes())
                .records()
                .next()
                .unwrap()
                .unwrap();
            let want = (
                KEPT.map(|i| row[i].to_owned()).to_vec(),
                row[MESSAGE].to_owned(),
                true,
                false,
            );
            for a in 0..=record.len() {
                if record.is_char_boundary(a) {
                    assert_eq!(
                        csv(&[&record[..a], &record[a..]]),
                        want,
                        "{record:?} split at {a}"
                    );
                }
            }
            // Open until its last newline.
            let open = csv(&[&record[..record.len() - 1]]);
            assert!(!open.3, "{record:?}");
        }
        assert!(csv(&["2024,a,b,c,d,e,f,g,h,i,j,LOG,0,\"msg\n"]).3);
    }
}
