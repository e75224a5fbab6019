//! PostgreSQL logs (pure): stderr with a `log_line_prefix`, csvlog and
//! jsonlog, turned into slow-query events.
//!
//! What counts as one event: a `duration: X ms  statement: …` or
//! `duration: X ms  execute <name>: …` message, or a bare `duration: X ms`
//! joined with the `statement: …` the same backend (pid) logged before it
//! (`log_statement` + `log_min_duration_statement`). The extended protocol's
//! `parse` and `bind` steps log their own durations; they are not executions,
//! so they are not counted (they would triple-count every prepared query).
//! Multi-line messages continue on lines starting with a TAB (stderr) or
//! inside quoted CSV fields.
//!
//! # Statements of any size
//! A line longer than the tailer's `max_line` comes as its first
//! `max_line` bytes, then pieces ([`PgParser::more`]). In every layout the
//! statement streams through [`Statement`], which keeps a bounded text with
//! the fingerprint of the whole statement: stderr (also through syslog,
//! logplex) takes the pieces as they are; jsonlog, CloudNativePG and Cloud
//! SQL decode the rest of the JSON message string (escapes split across
//! pieces included) and csvlog the rest of its quoted message field
//! (doubled quotes, newlines, a record over many lines), up to the string's
//! end (what follows it in the line is not needed). A line cut without its
//! rest (no piece came, or the string never ends) still gives its event
//! with its timing, marked truncated.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use regex::Regex;

use crate::diagnose::Unrecognized;
use crate::event::{EventBuffers, SlowEvent, give_back, refill};
use crate::prefix::{HeadMatch, PrefixMatcher};
use crate::quoted::{CsvPart, CsvRecord, JsonString, json_escape};
use crate::statement::Statement;
use crate::words;

/// The three PostgreSQL log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgFormat {
    /// `log_destination = stderr` with `log_line_prefix`.
    Stderr,
    /// `csvlog`.
    Csv,
    /// `jsonlog` (PG 15+).
    Json,
    /// stderr messages through syslog (`log_destination = syslog`, rsyslog
    /// or journald writing a file): `… ident[pid]: [N-M] ` before each
    /// line, a message's further lines as `[N-2]`, `[N-3]`, … (a TAB, or
    /// rsyslog's `#011`, first when the message had a newline there).
    Syslog,
    /// Heroku Postgres through logplex: `… app[postgres.PID]: [COLOR]
    /// [N-M] sql_error_code = … LOG:  …` (its own prefix, `key="value"`
    /// fields with `database` and `user` in newer plans).
    Heroku,
    /// CloudNativePG's JSON lines: the csvlog fields under `record`.
    Cnpg,
    /// A Google Cloud Logging export of Cloud SQL (JSON lines): the stderr
    /// message in `textPayload`, Cloud SQL's prefix `%m [%p]: [%l-1]
    /// db=%d,user=%u `.
    CloudSql,
}

/// The search for `:  `, where a stderr line's head may end (built once).
static HEAD_END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b":  "));

/// syslog's part of a line: the pid and the `[N-M]` line number, then the
/// message line.
static SYSLOG: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(r"^.*? \S+\[(?P<pid>\d+)\]: \[(?P<seq>\d+)-(?P<n>\d+)\] (?P<rest>.*)$")
        .expect("static regex")
});

/// logplex's part of a Heroku Postgres line.
static HEROKU: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(r"^.*? app(?:\[postgres\.(?P<pid>\d+)\]:| postgres\.(?P<pid2>\d+) -) (?:\[[A-Z0-9_]+\] )?\[(?P<seq>\d+)-(?P<n>\d+)\] (?P<rest>.*)$")
        .expect("static regex")
});

/// What a syslog or logplex line carries besides a stderr line.
#[derive(Debug, Default)]
struct Wrapped {
    /// The pid syslog or logplex gave the line (when the prefix has no %p):
    /// the pending message's.
    pid: String,
    /// Messages of other backends whose continuation lines may still come,
    /// with their wrapper pid, oldest first (see [`PgParser::wrapped_line`]).
    aside: VecDeque<(String, Message)>,
}

/// Most syslog or logplex messages set aside while other backends' lines
/// come in between (see [`PgParser::wrapped_line`]): 8 backends writing a
/// multi-line message at the same moment.
const MAX_ASIDE: usize = 8;

/// Cloud SQL for PostgreSQL's `log_line_prefix` (not settable there).
pub const CLOUD_SQL_PREFIX: &str = "%m [%p]: [%l-1] db=%d,user=%u ";

/// One log message, whatever the format.
#[derive(Debug, Default, Clone)]
struct Message {
    pid: String,
    db: Option<String>,
    user: Option<String>,
    severity: Severity,
    text: String,
    /// A line of it reached the cap (the tailer cuts lines there): the text
    /// is incomplete.
    cut: bool,
    /// The statement of a `duration: … statement:` / `execute …:` /
    /// `statement:` message as it streams (`text` then holds only the
    /// words before it), so its size does not matter: stderr messages, and
    /// the message of a json or csv line longer than the cap.
    body: Option<Statement>,
}

/// A message's severity, as far as it matters: only `LOG` messages are
/// events (an enum, not the text: one allocation less per line).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Severity {
    /// None given (or empty).
    #[default]
    Missing,
    Log,
    Other,
}

impl Severity {
    fn of(s: &str) -> Self {
        match s {
            "" => Self::Missing,
            "LOG" => Self::Log,
            _ => Self::Other,
        }
    }
}

/// Bytes of a message's text within which its statement starts, when it has
/// one (`duration: … ms  execute <name>: `): looked for only there, so a long
/// message without one is not searched again for every piece.
const STATEMENT_HEAD: usize = 1024;

impl Message {
    /// Appends decoded text of a long line's message: to the statement once
    /// its start is known, else to the words before it (at most `cap`
    /// bytes; more is cut).
    fn append(&mut self, s: &str, cap: usize) {
        if let Some(body) = &mut self.body {
            body.push(s);
            return;
        }
        if self.text.len() > STATEMENT_HEAD {
            // No statement: the words, bounded.
            let mut end = s.len().min(cap.saturating_sub(self.text.len()));
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&s[..end]);
            self.cut |= end < s.len();
            return;
        }
        // Whole (one piece at most) until the statement's start is known:
        // what follows it in this piece is the statement's.
        self.text.push_str(s);
        if let Some((at, _)) = statement_start(&self.text) {
            let mut body = Statement::new(cap);
            body.push(&self.text[at..]);
            self.text.truncate(at);
            self.body = Some(body);
        } else if self.text.len() > cap {
            let mut end = cap;
            while !self.text.is_char_boundary(end) {
                end -= 1;
            }
            self.text.truncate(end);
            self.cut = true;
        }
    }

    /// Appends decoded text of a stderr message (Cloud SQL's `textPayload`)
    /// as [`PgParser::stderr_message`] reads it: a TAB after a newline is
    /// stderr's continuation mark, not text. `after_newline` carries over
    /// between pieces.
    fn append_stderr(&mut self, s: &str, cap: usize, after_newline: &mut bool) {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                self.append("\n", cap);
                *after_newline = true;
            }
            let part = if *after_newline {
                part.strip_prefix('\t').unwrap_or(part)
            } else {
                part
            };
            if !part.is_empty() {
                *after_newline = false;
                self.append(part, cap);
            }
        }
    }
}

/// The rest of a jsonlog, CloudNativePG or Cloud SQL line longer than the
/// cap: its message string, decoded as the pieces come into the pending
/// message.
#[derive(Debug)]
struct LongJson {
    text: JsonString,
    /// The string is a stderr message (Cloud SQL's `textPayload`).
    stderr: bool,
    /// stderr: the last text was a newline (a TAB may follow).
    after_newline: bool,
}

/// A csvlog record read as it streams (a line of it longer than the cap, or
/// more lines than kept): its message goes into the pending message.
#[derive(Debug)]
struct CsvStream {
    record: CsvRecord,
    /// Its last line reached the cap and no piece of its rest came yet: if
    /// the next line comes first, that line was cut.
    awaiting_more: bool,
    /// The record's first bytes, for [`Unrecognized`] when it is no record.
    head: String,
}

/// What a stderr line's head says: slices of the line.
#[derive(Debug, Clone, Copy)]
struct Head<'l> {
    pid: Option<&'l str>,
    db: Option<&'l str>,
    user: Option<&'l str>,
    sev: &'l str,
    /// Heroku: all before the severity.
    pre: Option<&'l str>,
}

/// Streaming parser.
#[derive(Debug)]
pub struct PgParser {
    format: PgFormat,
    prefix: Option<Regex>,
    /// The prefix's matcher, asked before the regex (see [`crate::prefix`]).
    matcher: Option<Box<PrefixMatcher>>,
    pending: Option<Message>,
    /// CSV records spanning lines (quoted newlines).
    csv_buffer: String,
    /// Quotes seen in the record so far: odd means a quoted field is still
    /// open.
    csv_quotes: usize,
    /// A record longer than `csv_buffer` keeps, read as it streams (boxed:
    /// rare, and the parser stays small).
    csv_stream: Option<Box<CsvStream>>,
    /// A record was cut inside a quoted field and closed by force: its other
    /// lines are skipped up to the next line that starts a record.
    csv_resync: bool,
    /// A json line longer than the cap whose message string goes on in the
    /// next pieces (boxed: rare).
    long: Option<Box<LongJson>>,
    /// Events completed and not handed out yet: a long line's event
    /// completes when the next line shows it ended, and that line may
    /// complete its own (one goes out a call, see [`PgParser::flush`]).
    ready: VecDeque<SlowEvent>,
    /// `statement:` messages waiting for their bare `duration:` line, by
    /// pid (with whether their text was cut).
    statements: HashMap<String, (String, bool)>,
    max_query_bytes: usize,
    /// syslog's and logplex's state (boxed: the parser stays small).
    wrapped: Box<Wrapped>,
    /// Buffers of the last message and of the last event handed back, for
    /// the next ones (boxed: the parser stays small).
    spare: Box<Spare>,
    /// Lines that are no message of the format (stderr: no
    /// `log_line_prefix` match and no TAB continuation; csv: no record;
    /// json: no object with an `error_severity`).
    pub unrecognized: Unrecognized,
}

/// Buffers reused from one message and event to the next: each is taken
/// ([`refill`]) to hold a new value and comes back when the message or
/// the event is done with.
#[derive(Debug, Default)]
struct Spare {
    /// A message's text.
    text: String,
    /// A message's pid.
    pid: String,
    /// An event's statement, database and user (also a message's database
    /// and user: they become the event's).
    event: EventBuffers,
}

/// Translates a `log_line_prefix` into a regex with named groups for the
/// fields we use; everything else matches loosely.
pub fn prefix_regex(prefix: &str) -> Result<Regex, String> {
    prefix_regex_ending(prefix, r"(?P<sev>[A-Z]+[0-9]?):  (?P<msg>.*)$")
}

/// The regex of a line's head only: the prefix, the severity and its
/// `:  `, to the end of what it is given (see [`PgParser::head`]).
pub(crate) fn head_regex(prefix: &str) -> Result<Regex, String> {
    prefix_regex_ending(prefix, r"(?P<sev>[A-Z]+[0-9]?):  $")
}

fn prefix_regex_ending(prefix: &str, ending: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let mut optional_from = None;
    let mut chars = prefix.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            re.push_str(&regex::escape(&c.to_string()));
            continue;
        }
        let Some(spec) = chars.next() else { break };
        let part = match spec {
            'm' => r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+(?: \S+)?",
            't' => r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: \S+)?",
            'n' => r"\d+(?:\.\d+)?",
            'p' => r"(?P<pid>\d+)",
            'd' => r"(?P<db>\S*?)",
            'u' => r"(?P<user>\S*?)",
            'l' | 'x' | 'v' | 'c' | 'e' | 'Q' | 's' | 'i' | 'b' | 'P' => r"\S*?",
            'h' | 'r' | 'a' => r".*?",
            '%' => "%",
            'q' => {
                // Everything after %q is absent for non-session processes.
                optional_from = Some(re.len());
                ""
            }
            _ => r".*?",
        };
        re.push_str(part);
    }
    if let Some(at) = optional_from {
        re.insert_str(at, "(?:");
        re.push_str(")?");
    }
    re.push_str(ending);
    Regex::new(&re).map_err(|e| format!("log_line_prefix \"{prefix}\" cannot be parsed: {e}"))
}

/// The start of a csvlog record: its `log_time`.
static CSV_RECORD_START: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").expect("static regex")
});

/// A `duration: X ms` message read as the pattern
/// `^duration: (?P<ms>[0-9.]+) ms(?:  (?P<kind>statement|execute [^:]*|parse [^:]*|bind [^:]*): (?P<q>(?s:.*)))?$`
/// reads it (`execute fetch from …` is an `execute …`), by hand: it runs
/// once per event, where a regex with captures cost more than the rest of
/// the message's handling.
#[derive(Debug, PartialEq, Eq)]
struct DurationMessage<'t> {
    ms: &'t str,
    /// The kind (`statement`, `execute <name>`, …) and the statement, when
    /// the message has them.
    kind: Option<(&'t str, &'t str)>,
}

fn parse_duration(text: &str) -> Option<DurationMessage<'_>> {
    let rest = text.strip_prefix("duration: ")?;
    let digits = rest
        .bytes()
        .take_while(|&b| b.is_ascii_digit() || b == b'.')
        .count();
    if digits == 0 {
        return None;
    }
    let (ms, rest) = rest.split_at(digits);
    let rest = rest.strip_prefix(" ms")?;
    if rest.is_empty() {
        return Some(DurationMessage { ms, kind: None });
    }
    let rest = rest.strip_prefix("  ")?;
    let kind_end = if rest.starts_with("statement: ") {
        "statement".len()
    } else if rest.starts_with("execute ")
        || rest.starts_with("parse ")
        || rest.starts_with("bind ")
    {
        // `[^:]*` then `: `: the first colon, or no match at all.
        let colon = rest.find(':')?;
        if !rest[colon + 1..].starts_with(' ') {
            return None;
        }
        colon
    } else {
        return None;
    };
    Some(DurationMessage {
        ms,
        kind: Some((&rest[..kind_end], &rest[kind_end + 2..])),
    })
}

impl PgParser {
    /// A parser for `format`; stderr needs the server's `log_line_prefix`.
    pub fn new(
        format: PgFormat,
        log_line_prefix: Option<&str>,
        max_query_bytes: usize,
    ) -> Result<Self, String> {
        let stderr_prefix = match format {
            PgFormat::Stderr | PgFormat::Syslog => Some(log_line_prefix.unwrap_or("%m [%p] ")),
            PgFormat::CloudSql => Some(log_line_prefix.unwrap_or(CLOUD_SQL_PREFIX)),
            _ => None,
        };
        let prefix = match (format, stderr_prefix) {
            (_, Some(p)) => Some(head_regex(p)?),
            // Heroku's own prefix: anything before the severity;
            // `database="…"` / `user="…"` are picked from it.
            (PgFormat::Heroku, _) => {
                Some(Regex::new(r"^(?P<pre>.*?)(?P<sev>[A-Z]+[0-9]?):  $").expect("static regex"))
            }
            _ => None,
        };
        let matcher = stderr_prefix.and_then(PrefixMatcher::new).map(Box::new);
        Ok(Self {
            format,
            prefix,
            matcher,
            pending: None,
            csv_buffer: String::new(),
            csv_quotes: 0,
            csv_stream: None,
            csv_resync: false,
            long: None,
            ready: VecDeque::new(),
            statements: HashMap::new(),
            max_query_bytes,
            unrecognized: Unrecognized::default(),
            wrapped: Box::default(),
            spare: Default::default(),
        })
    }

    fn unrecognized(&mut self, line: &str) {
        self.unrecognized.note(line);
    }

    /// Feeds the next piece of the last line (a line longer than the
    /// tailer's `max_line`); returns an event it completed (a json or csv
    /// message whose string ended in it).
    pub fn more(&mut self, piece: &str) -> Option<SlowEvent> {
        if self.long.is_some() {
            self.more_json(piece);
        } else if let Some(mut stream) = self.csv_stream.take() {
            stream.awaiting_more = false;
            self.csv_feed(&mut stream, piece);
            self.csv_stream = Some(stream);
        } else if let Some(Message {
            body: Some(body),
            cut,
            ..
        }) = &mut self.pending
        {
            body.push(piece);
            // The rest of the cut line came after all.
            *cut = false;
        }
        self.ready.pop_front()
    }

    /// Feeds one line; returns an event it completed.
    pub fn line(&mut self, line: &str) -> Option<SlowEvent> {
        // A long json line before this one ended without its string's end.
        self.end_long_json();
        let done = match self.format {
            PgFormat::Stderr => self.stderr_line(line),
            PgFormat::Json => self.json_line(line),
            PgFormat::Csv => self.csv_line(line),
            PgFormat::Syslog | PgFormat::Heroku => self.wrapped_line(line),
            PgFormat::Cnpg | PgFormat::CloudSql => self.cloud_json_line(line),
        };
        if self.ready.is_empty() {
            return done;
        }
        self.ready.extend(done);
        self.ready.pop_front()
    }

    /// Completes the held message.
    fn take_pending(&mut self) -> Option<SlowEvent> {
        let m = self.pending.take()?;
        self.message(m)
    }

    /// Hands a completed message's event out (through `ready`).
    fn complete(&mut self, m: Message) {
        if let Some(e) = self.message(m) {
            self.ready.push_back(e);
        }
    }

    /// The message string of a long json line goes on in `piece`.
    fn more_json(&mut self, piece: &str) {
        let cap = self.max_query_bytes;
        let (Some(long), Some(m)) = (&mut self.long, &mut self.pending) else {
            self.long = None;
            return;
        };
        let LongJson {
            text,
            stderr,
            after_newline,
        } = &mut **long;
        let closed = if *stderr {
            text.feed(piece, &mut |t| m.append_stderr(t, cap, after_newline))
        } else {
            text.feed(piece, &mut |t| m.append(t, cap))
        }
        .is_some();
        if closed {
            self.long = None;
            if let Some(m) = self.pending.take() {
                self.complete(m);
            }
        }
    }

    /// A long json line ended (the next line came, or the input ended)
    /// before its message string did: it was cut, its event has what came.
    fn end_long_json(&mut self) {
        if self.long.take().is_some()
            && let Some(mut m) = self.pending.take()
        {
            m.cut = true;
            self.complete(m);
        }
    }

    /// Starts reading a long json line's message (`text` has read its
    /// first piece into `m`): complete already when the string ended in it.
    fn start_long_json(&mut self, m: Message, text: JsonString) -> Option<SlowEvent> {
        if text.is_closed() {
            return self.message(m);
        }
        self.pending = Some(m);
        self.long = Some(Box::new(LongJson {
            text,
            stderr: false,
            after_newline: false,
        }));
        None
    }

    /// The prefix and severity of a stderr line, and where its message
    /// starts: the first `:  ` whose head matches the prefix (what the
    /// whole-line regex's lazy groups pick), without running a regex with
    /// captures over the whole message (the bulk of a log's bytes).
    fn head<'l>(&self, line: &'l str) -> Option<(Head<'l>, usize)> {
        let re = self.prefix.as_ref()?;
        let b = line.as_bytes();
        let (mut from, mut no_newline) = (0, 0);
        // Each `:  ` in turn (one search for the three bytes: the
        // timestamp's colons are not stopped at one by one).
        while let Some(p) = HEAD_END.find(&b[from..]) {
            let colon = from + p;
            from = colon + 1;
            let end = colon + 3;
            let h = &line[..end];
            let matched = self.matcher.as_ref().map(|m| m.head(h.as_bytes()));
            // `.` of the regex does not match a newline (as before); the
            // matcher decides only heads without one.
            if !matches!(matched, Some(HeadMatch::Match(_) | HeadMatch::NoMatch))
                && b[no_newline..end].contains(&b'\n')
            {
                return None;
            }
            no_newline = end;
            let found = match matched {
                Some(HeadMatch::Match(c)) => {
                    let at = |r: Option<(usize, usize)>| r.map(|(a, b)| &h[a..b]);
                    Some(Head {
                        pid: at(c.pid),
                        db: at(c.db),
                        user: at(c.user),
                        sev: &h[c.sev.0..c.sev.1],
                        pre: None,
                    })
                }
                Some(HeadMatch::NoMatch) => None,
                Some(HeadMatch::Unknown) | None => re.captures(h).map(|caps| {
                    let at = |n: &str| caps.name(n).map(|m| m.as_str());
                    Head {
                        pid: at("pid"),
                        db: at("db"),
                        user: at("user"),
                        sev: at("sev").unwrap_or_default(),
                        pre: at("pre"),
                    }
                }),
            };
            if let Some(head) = found {
                return Some((head, end));
            }
        }
        None
    }

    /// A syslog or logplex line: its first part (`[N-1]`) is a stderr
    /// line, the others continue the message.
    fn wrapped_line(&mut self, line: &str) -> Option<SlowEvent> {
        let re = if self.format == PgFormat::Syslog {
            &*SYSLOG
        } else {
            &*HEROKU
        };
        let Some(caps) = re.captures(line) else {
            self.unrecognized(line);
            return None;
        };
        let rest = caps.name("rest").map_or("", |m| m.as_str());
        let pid = caps
            .name("pid")
            .or_else(|| caps.name("pid2"))
            .map_or("", |m| m.as_str());
        // Each backend sends its lines to syslog on its own, so another
        // backend's lines may come between the lines of one message. A
        // message stays pending while its backend may still continue it;
        // when another backend's message starts, it is set aside (at most
        // MAX_ASIDE, the oldest completed beyond) until its backend starts
        // its next message or the input ends.
        if caps.name("n").is_some_and(|n| n.as_str() != "1") {
            if self.wrapped.pid != pid && !self.resume_aside(pid) {
                // The start of this message was not in the input.
                self.unrecognized(line);
                return None;
            }
            // rsyslog writes control characters as `#ooo`.
            match rest
                .strip_prefix("#011")
                .or_else(|| rest.strip_prefix('\t'))
            {
                Some(after_tab) => {
                    let continued = format!("\t{after_tab}");
                    return self.stderr_line(&continued);
                }
                // A line split at syslog's length limit: the same line goes on.
                None => return self.more(rest),
            }
        }
        // The backend starts a new message: its last one is complete.
        if let Some((_, m)) = self.take_aside(pid) {
            self.complete(m);
        }
        if self.wrapped.pid != pid
            && let Some(m) = self.pending.take()
        {
            self.wrapped
                .aside
                .push_back((std::mem::take(&mut self.wrapped.pid), m));
            if self.wrapped.aside.len() > MAX_ASIDE
                && let Some((_, oldest)) = self.wrapped.aside.pop_front()
            {
                self.complete(oldest);
            }
        }
        self.wrapped.pid.clear();
        self.wrapped.pid.push_str(pid);
        self.stderr_line(rest)
    }

    /// Removes the message set aside for wrapper pid `pid`, if any.
    fn take_aside(&mut self, pid: &str) -> Option<(String, Message)> {
        let at = self.wrapped.aside.iter().position(|(p, _)| p == pid)?;
        self.wrapped.aside.remove(at)
    }

    /// Makes the message set aside for wrapper pid `pid` the pending one
    /// (the pending one goes aside); false when there is none.
    fn resume_aside(&mut self, pid: &str) -> bool {
        let Some((pid, m)) = self.take_aside(pid) else {
            return false;
        };
        let before = std::mem::replace(&mut self.wrapped.pid, pid);
        if let Some(current) = self.pending.replace(m) {
            self.wrapped.aside.push_back((before, current));
        }
        true
    }

    /// CloudNativePG and Cloud SQL JSON lines.
    fn cloud_json_line(&mut self, line: &str) -> Option<SlowEvent> {
        // A `gcloud logging read --format=json` array, one entry a line.
        let trimmed = line
            .trim()
            .trim_start_matches('[')
            .trim_end_matches([',', ']']);
        if trimmed.is_empty() {
            return None;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed) else {
            if line.len() >= self.max_query_bytes {
                // The first piece of a long line (or a line cut at the cap).
                return self.long_cloud_json(line);
            }
            self.unrecognized(line);
            return None;
        };
        if self.format == PgFormat::CloudSql {
            let Some(text) = v.get("textPayload").and_then(|t| t.as_str()) else {
                // Another entry (an audit log, a jsonPayload): not ours.
                if v.get("jsonPayload").is_none() && v.get("protoPayload").is_none() {
                    self.unrecognized(line);
                }
                return None;
            };
            // One entry is one whole message: its lines as stderr gives them.
            let done = self.stderr_message(text);
            return done.or_else(|| self.take_pending());
        }
        let Some(r) = v.get("record") else {
            // CloudNativePG's own messages (instance manager): not ours.
            if v.get("logger").is_none() {
                self.unrecognized(line);
            }
            return None;
        };
        self.message(json_message(
            r,
            ["process_id", "database_name", "user_name"],
        ))
    }

    /// A whole stderr message with its newlines (Cloud SQL's textPayload),
    /// line by line as stderr writes it (a TAB after each newline); the
    /// caller completes it.
    fn stderr_message(&mut self, text: &str) -> Option<SlowEvent> {
        let mut done = None;
        for (i, l) in text.split('\n').enumerate() {
            let l = if i == 0 {
                l.to_owned()
            } else {
                format!("\t{}", l.strip_prefix('\t').unwrap_or(l))
            };
            done = done.or(self.stderr_line(&l));
        }
        done
    }

    /// The first piece of a CloudNativePG or Cloud SQL line longer than
    /// the cap: the fields it has, and its message as far as it goes (the
    /// rest comes with [`PgParser::more`]).
    fn long_cloud_json(&mut self, line: &str) -> Option<SlowEvent> {
        if self.format == PgFormat::Cnpg {
            let at = line.find("\"record\":")?;
            let (m, text) = long_json(&line[at + "\"record\":".len()..], self.max_query_bytes)?;
            return self.start_long_json(m, text);
        }
        let at = line.find("\"textPayload\":")?;
        let rest = line[at + "\"textPayload\":".len()..]
            .trim_start()
            .strip_prefix('"')?;
        let mut string = JsonString::default();
        let mut first = String::new();
        string.feed(rest, &mut |t| first.push_str(t));
        if let Some(e) = self.stderr_message(&first) {
            self.ready.push_back(e);
        }
        if string.is_closed() || self.pending.is_none() {
            // Complete already (events go out in order through `ready`).
            if let Some(m) = self.pending.take() {
                self.complete(m);
            }
            return None;
        }
        self.long = Some(Box::new(LongJson {
            text: string,
            stderr: true,
            after_newline: first.ends_with('\n'),
        }));
        None
    }

    fn stderr_line(&mut self, line: &str) -> Option<SlowEvent> {
        let cut = line.len() >= self.max_query_bytes;
        if let Some(rest) = line.strip_prefix('\t') {
            match &mut self.pending {
                Some(Message {
                    body: Some(body),
                    cut: was_cut,
                    ..
                }) => {
                    body.push("\n");
                    body.push(rest);
                    *was_cut |= cut;
                }
                // The lines of a message that gives nothing: not kept.
                Some(p) if p.severity != Severity::Log => {}
                Some(p) => {
                    if p.text.len() < self.max_query_bytes {
                        p.text.push('\n');
                        p.text.push_str(rest);
                        p.cut |= cut;
                    } else {
                        p.cut = true;
                    }
                }
                None => self.unrecognized(line),
            }
            return None;
        }
        let Some((head, head_len)) = self.head(line) else {
            self.unrecognized(line);
            return None;
        };
        let rest = &line[head_len..];
        let mut severity = Severity::of(head.sev);
        if severity == Severity::Log
            && !rest.starts_with("duration: ")
            && !rest.starts_with("statement: ")
        {
            // A LOG message that is no event and no statement (a
            // connection, a checkpoint): like any other severity, nothing
            // of it is read, so its text is not kept.
            severity = Severity::Other;
        }
        let relevant = severity == Severity::Log;
        let (text, body) = match relevant.then(|| statement_start(rest)).flatten() {
            Some((at, kind)) => {
                let mut body = match kind {
                    // Dropped once complete: its text need not be read.
                    StatementKind::Prepare => Statement::ignored(self.max_query_bytes),
                    StatementKind::Run => Statement::in_buffer(
                        self.max_query_bytes,
                        std::mem::take(&mut self.spare.event.query),
                    ),
                };
                body.push(&rest[at..]);
                (refill(&mut self.spare.text, &rest[..at]), Some(body))
            }
            None if relevant => (refill(&mut self.spare.text, rest), None),
            None => (String::new(), None),
        };
        // Heroku's `key="value"` fields before the severity.
        let pre = head.pre.unwrap_or("");
        let field = |key: &str| {
            let at = pre.find(key)? + key.len();
            pre[at..].split('"').next().map(str::to_owned)
        };
        // Only a LOG message can give an event: nothing of the others is
        // copied (two allocations a line).
        let (db, user) = if relevant {
            let db = match head.db {
                Some(db) => Some(refill(&mut self.spare.event.db, db)),
                None => field("database=\""),
            };
            let user = match head.user {
                Some(user) => Some(refill(&mut self.spare.event.user, user)),
                None => field(" user=\""),
            };
            (db, user)
        } else {
            (None, None)
        };
        let msg = Message {
            pid: match head.pid {
                Some(pid) => refill(&mut self.spare.pid, pid),
                None => self.wrapped.pid.clone(),
            },
            db: db.filter(|s| !s.is_empty() && s != "[unknown]"),
            user: user.filter(|s| !s.is_empty()),
            severity,
            text,
            cut,
            body,
        };
        let done = self.pending.take().and_then(|m| self.message(m));
        self.pending = Some(msg);
        done
    }

    fn json_line(&mut self, line: &str) -> Option<SlowEvent> {
        match JsonFields::read(line) {
            Some(JsonLine::Fields(f)) => {
                // What `message` would drop anyway is not copied.
                if f.severity != "LOG" {
                    return None;
                }
                return self.record_message(f.pid.unwrap_or_default(), f.db, f.user, f.message);
            }
            Some(JsonLine::NoSeverity) => {
                self.unrecognized(line);
                return None;
            }
            None => {}
        }
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            // The first piece of a long line (or a line cut at the cap).
            Err(_) if line.len() >= self.max_query_bytes => {
                let (m, text) = long_json(line, self.max_query_bytes)?;
                return self.start_long_json(m, text);
            }
            Err(_) => {
                self.unrecognized(line);
                return None;
            }
        };
        if v.get("error_severity").is_none() {
            self.unrecognized(line);
            return None;
        }
        self.message(json_message(&v, ["pid", "dbname", "user"]))
    }

    fn csv_line(&mut self, line: &str) -> Option<SlowEvent> {
        if let Some(mut stream) = self.csv_stream.take() {
            if stream.awaiting_more {
                // No piece came after the line that reached the cap: the
                // rest of it is unknown (it may even open a quoted field).
                // Close the record here and skip its other lines up to the
                // next record.
                self.end_csv_record(stream, true);
                self.csv_resync = true;
            } else if stream.record.in_quotes() && CSV_RECORD_START.is_match(line) {
                // A record starts while a quote is open: the open one was
                // garbage or lost its end (a stray quote must not swallow
                // the records after it).
                self.end_csv_record(stream, true);
            } else {
                self.csv_feed(&mut stream, "\n");
                if !stream.record.in_quotes() {
                    // The record ended with the line before.
                    self.end_csv_record(stream, false);
                } else {
                    // A quoted field goes on on this line.
                    self.csv_feed(&mut stream, line);
                    self.keep_csv_record(stream, line.len() >= self.max_query_bytes);
                    return None;
                }
            }
        }
        if self.csv_resync {
            if !CSV_RECORD_START.is_match(line) {
                return None;
            }
            self.csv_resync = false;
        }
        // The tailer cuts lines at the cap: the rest of this one comes in
        // pieces (or was dropped).
        let cut = line.len() >= self.max_query_bytes;
        let open = self.csv_quotes % 2 == 1;
        if cut || self.csv_buffer.len() + line.len() >= self.max_query_bytes {
            // A record longer than the cap (its message may be): read as it
            // streams, the message through the statement reader, bounded.
            let mut stream = Box::new(CsvStream {
                record: CsvRecord::new(),
                awaiting_more: false,
                head: String::new(),
            });
            let buffered = std::mem::take(&mut self.csv_buffer);
            self.csv_quotes = 0;
            if open {
                self.csv_feed(&mut stream, &buffered);
                self.csv_feed(&mut stream, "\n");
            }
            self.csv_feed(&mut stream, line);
            self.keep_csv_record(stream, cut);
            return None;
        }
        if !open
            && let Some(f) = CsvFields::read(line)
            && count_quotes(&line[f.rest..]).is_multiple_of(2)
        {
            // A whole record on one line (most are): fields read in place
            // have their quotes paired, so the rest of the line says
            // whether the record goes on (no count over the message).
            return self.csv_fields_message(f);
        }
        let quotes = count_quotes(line);
        if !open && quotes.is_multiple_of(2) {
            // A whole record on one line (most are): read in place.
            return self.csv_record(line);
        }
        if open {
            self.csv_buffer.push('\n');
        }
        self.csv_buffer.push_str(line);
        self.csv_quotes += quotes;
        if self.csv_quotes % 2 == 1 {
            // A quoted field goes on on the next line.
            return None;
        }
        let record = std::mem::take(&mut self.csv_buffer);
        self.csv_quotes = 0;
        let done = self.csv_record(&record);
        // The buffer's allocation is kept for the next multi-line record.
        self.csv_buffer = record;
        self.csv_buffer.clear();
        done
    }

    /// The event of a csvlog record read in place.
    fn csv_fields_message(&mut self, f: CsvFields<'_>) -> Option<SlowEvent> {
        // What `message` would drop anyway is not copied.
        if f.severity != "LOG" {
            return None;
        }
        self.record_message(&f.pid, Some(f.db), Some(f.user), Some(f.message))
    }

    /// One whole csvlog record (its lines joined): its message's event.
    fn csv_record(&mut self, record: &str) -> Option<SlowEvent> {
        if let Some(f) = CsvFields::read(record) {
            return self.csv_fields_message(f);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(record.as_bytes());
        let Some(Ok(row)) = reader.records().next() else {
            self.unrecognized(record);
            return None;
        };
        if row.len() < 14 {
            self.unrecognized(record);
            return None;
        }
        let field = |i: usize| row.get(i).map(str::to_owned).filter(|s| !s.is_empty());
        let msg = Message {
            pid: field(3).unwrap_or_default(),
            db: field(2),
            user: field(1),
            severity: Severity::of(&field(11).unwrap_or_default()),
            text: field(13).unwrap_or_default(),
            cut: false,
            body: None,
        };
        self.message(msg)
    }

    /// Reads `text` (the next bytes of a streamed csv record): the message
    /// starts as the pending message, its text goes into it, and it is
    /// complete when its field ends.
    fn csv_feed(&mut self, stream: &mut CsvStream, text: &str) {
        if stream.head.len() < 256 {
            let mut end = text.len().min(256);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            stream.head.push_str(&text[..end]);
        }
        let cap = self.max_query_bytes;
        let pending = &mut self.pending;
        let mut ended = false;
        stream.record.feed(text, &mut |part| match part {
            CsvPart::MessageStart([user, db, pid, severity]) => {
                let some = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
                *pending = Some(Message {
                    pid: pid.clone(),
                    db: some(db),
                    user: some(user),
                    severity: Severity::of(severity),
                    ..Message::default()
                });
            }
            CsvPart::Text(t) => {
                if let Some(m) = pending {
                    m.append(t, cap);
                }
            }
            CsvPart::MessageEnd => ended = true,
        });
        if ended && let Some(m) = self.pending.take() {
            self.complete(m);
        }
    }

    /// After a line of a streamed record (`cut`: it reached the cap): the
    /// record goes on (in quotes, or pieces may come), or it ended there.
    fn keep_csv_record(&mut self, mut stream: Box<CsvStream>, cut: bool) {
        stream.awaiting_more = cut;
        if cut || stream.record.in_quotes() {
            self.csv_stream = Some(stream);
        } else {
            self.end_csv_record(stream, false);
        }
    }

    /// A streamed record ended (`cut`: where it was cut, before its end):
    /// its message's event, if not out yet.
    fn end_csv_record(&mut self, mut stream: Box<CsvStream>, cut: bool) {
        if !cut {
            // The newline that ends it closes an unquoted last field.
            self.csv_feed(&mut stream, "\n");
        }
        if !stream.record.reached_message() {
            self.unrecognized(&stream.head.clone());
        }
        if let Some(mut m) = self.pending.take() {
            m.cut |= cut;
            self.complete(m);
        }
    }

    /// Turns a complete message into an event, or remembers a statement.
    fn message(&mut self, mut m: Message) -> Option<SlowEvent> {
        let event = self.message_event(&mut m);
        // The text's and pid's buffers serve the next message (two
        // allocations less per line), and so do the db's and user's when
        // no event took them (a `parse`/`bind` duration, an error).
        give_back(&mut self.spare.text, std::mem::take(&mut m.text));
        give_back(&mut self.spare.pid, std::mem::take(&mut m.pid));
        if let Some(db) = m.db.take() {
            give_back(&mut self.spare.event.db, db);
        }
        if let Some(user) = m.user.take() {
            give_back(&mut self.spare.event.user, user);
        }
        event
    }

    /// Takes back an event's buffers once it was digested: the next event's
    /// query, db and user are copied into them (three allocations less an
    /// event).
    pub fn recycle(&mut self, e: SlowEvent) {
        self.spare.event.take_back(e);
    }

    /// The event of a `LOG` message whose csv or json record was read in
    /// place (empty fields are none).
    fn record_message(
        &mut self,
        pid: &str,
        db: Option<Cow<'_, str>>,
        user: Option<Cow<'_, str>>,
        text: Option<Cow<'_, str>>,
    ) -> Option<SlowEvent> {
        let some = |s: Option<Cow<'_, str>>, buf: &mut String| match s? {
            Cow::Borrowed("") => None,
            Cow::Borrowed(s) => Some(refill(buf, s)),
            Cow::Owned(s) => Some(s).filter(|s| !s.is_empty()),
        };
        let (db, user) = (
            some(db, &mut self.spare.event.db),
            some(user, &mut self.spare.event.user),
        );
        // A text already decoded is kept as it is; else the spare buffer.
        let text = match text {
            Some(Cow::Owned(t)) => t,
            Some(Cow::Borrowed(t)) => refill(&mut self.spare.text, t),
            None => String::new(),
        };
        let msg = Message {
            pid: refill(&mut self.spare.pid, pid),
            db,
            user,
            severity: Severity::Log,
            text,
            cut: false,
            body: None,
        };
        self.message(msg)
    }

    fn message_event(&mut self, m: &mut Message) -> Option<SlowEvent> {
        if m.severity != Severity::Log {
            return None;
        }
        let body = m.body.take().map(Statement::finish);
        if let Some(q) = m.text.strip_prefix("statement: ") {
            // log_statement: the duration may follow as a bare line.
            if self.statements.len() > 10_000 {
                self.statements.clear();
            }
            let q = body
                .map(|(q, t)| (q, t || m.cut))
                .unwrap_or_else(|| (q.to_owned(), m.cut));
            self.statements.insert(m.pid.clone(), q);
            return None;
        }
        let d = parse_duration(&m.text)?;
        if let Some((k, _)) = d.kind
            && (k.starts_with("parse ") || k.starts_with("bind "))
        {
            return None;
        }
        let ms = crate::decimal::parse_f64(d.ms)?;
        let (mut query, cut) = match d.kind {
            Some((_, q)) => match body {
                Some((q, t)) => (q, t || m.cut),
                None => (refill(&mut self.spare.event.query, q), m.cut),
            },
            // A bare duration with no statement logged before it
            // (`log_duration`): an execution without text, counted like
            // pt-query-digest's text-less events (empty fingerprint).
            None => self
                .statements
                .remove(&m.pid)
                .unwrap_or_else(|| (String::new(), false)),
        };
        let truncated = cut || query.len() > self.max_query_bytes;
        if query.len() > self.max_query_bytes {
            let mut end = self.max_query_bytes;
            while !query.is_char_boundary(end) {
                end -= 1;
            }
            query.truncate(end);
        }
        Some(SlowEvent {
            db: m.db.take(),
            user: m.user.take(),
            duration: ms / 1000.0,
            lock_time: 0.0,
            rows_sent: 0,
            rows_examined: 0,
            full_scan: false,
            sample_rate: 1,
            query,
            truncated,
        })
    }

    /// Completes a held message (stderr: continuation lines may still come;
    /// a long line's rest may still come): the input ended, or is idle.
    /// Returns one event a call: call it until it returns `None` (a long
    /// line's event and the next line's may both wait).
    pub fn flush(&mut self) -> Option<SlowEvent> {
        self.end_long_json();
        if let Some(stream) = self.csv_stream.take() {
            // Cut where the input stops unless the record was complete.
            let cut = stream.awaiting_more || stream.record.in_quotes();
            self.end_csv_record(stream, cut);
            self.csv_resync |= cut;
        }
        while let Some((_, m)) = self.wrapped.aside.pop_front() {
            self.complete(m);
        }
        if let Some(m) = self.pending.take() {
            self.complete(m);
        }
        self.ready.pop_front()
    }

    /// Whether lines of an unfinished message, or completed events, are
    /// held.
    pub fn has_partial(&self) -> bool {
        self.pending.is_some()
            || !self.wrapped.aside.is_empty()
            || !self.csv_buffer.is_empty()
            || self.csv_quotes % 2 == 1
            || self.csv_stream.is_some()
            || !self.ready.is_empty()
    }
}

/// A message from a JSON record whose pid, database and user fields are
/// named `keys` (jsonlog's, or csvlog's names in CloudNativePG's record).
fn json_message(v: &serde_json::Value, [pid, db, user]: [&str; 3]) -> Message {
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
    };
    Message {
        // jsonlog's pid is a number, CloudNativePG's a string.
        pid: v
            .get(pid)
            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
            .unwrap_or_default(),
        db: s(db),
        user: s(user),
        severity: Severity::of(&s("error_severity").unwrap_or_default()),
        text: s("message").unwrap_or_default(),
        cut: false,
        body: None,
    }
}

/// What a message's statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatementKind {
    /// Run (`statement: `, `execute …: `): the event's text.
    Run,
    /// The extended protocol's `parse …: ` / `bind …: ` steps: no event
    /// comes of them, so their text is not read.
    Prepare,
}

/// Where the statement starts in a stderr `LOG` message that carries one
/// (`duration: X ms  statement: `, `… execute <name>: `, `statement: `),
/// and what it is for.
fn statement_start(text: &str) -> Option<(usize, StatementKind)> {
    if text.starts_with("statement: ") {
        return Some(("statement: ".len(), StatementKind::Run));
    }
    let rest = text.strip_prefix("duration: ")?;
    // The usual `duration: 1.234 ms  statement: `: no substring search (it
    // runs for every message). The first ` ms  ` cannot start inside
    // `duration: 1.234`, which has no space after `duration:`.
    let digits = rest
        .bytes()
        .take_while(|&b| b.is_ascii_digit() || b == b'.')
        .count();
    let after_ms = match rest[digits..].strip_prefix(" ms  ") {
        Some(after) if digits > 0 => after,
        _ => rest.split_once(" ms  ")?.1,
    };
    let kind_end = if after_ms.starts_with("statement: ") {
        "statement".len()
    } else {
        // The first `: ` (found by its colon: a substring search's setup
        // costs more than this whole function).
        let b = after_ms.as_bytes();
        memchr::memchr_iter(b':', b).find(|&i| b.get(i + 1) == Some(&b' '))?
    };
    let kind = &after_ms[..kind_end];
    let what = if kind == "statement" || kind.starts_with("execute ") {
        StatementKind::Run
    } else if kind.starts_with("parse ") || kind.starts_with("bind ") {
        StatementKind::Prepare
    } else {
        return None;
    };
    Some((text.len() - after_ms.len() + kind_end + 2, what))
}

/// The fields of a csvlog record a message needs, read in place: the csv
/// crate's reader costs a buffer and a record per line, more than the rest
/// of a csv message's handling.
#[derive(Debug, PartialEq, Eq)]
struct CsvFields<'r> {
    user: Cow<'r, str>,
    db: Cow<'r, str>,
    pid: Cow<'r, str>,
    severity: Cow<'r, str>,
    message: Cow<'r, str>,
    /// Where the fields after `message` start (the record's end if none).
    rest: usize,
}

impl<'r> CsvFields<'r> {
    /// Reads `record` as the csv crate would when it is plainly formed;
    /// `None` when it has fewer than 14 fields or anything where a plain
    /// reading could differ from the crate's (a quote inside an unquoted
    /// field, text after a closing quote, a CR or newline outside quotes,
    /// a byte-order mark): the crate reads those.
    fn read(record: &'r str) -> Option<Self> {
        if record.starts_with('\u{feff}') {
            return None;
        }
        let b = record.as_bytes();
        let mut kept: [Cow<'r, str>; 5] = Default::default();
        let mut i = 0;
        for field in 0..=MESSAGE_FIELD {
            let value: Cow<'r, str> = if b.get(i) == Some(&b'"') {
                // Quoted: up to the quote not doubled; `""` is a quote.
                let start = i + 1;
                let mut j = start;
                let mut doubled = false;
                loop {
                    let q = start_of_quote(&b[j..])? + j;
                    if b.get(q + 1) == Some(&b'"') {
                        doubled = true;
                        j = q + 2;
                        continue;
                    }
                    j = q;
                    break;
                }
                let raw = &record[start..j];
                i = j + 1;
                if doubled {
                    Cow::Owned(raw.replace("\"\"", "\""))
                } else {
                    Cow::Borrowed(raw)
                }
            } else {
                let end = b[i..]
                    .iter()
                    .position(|&c| matches!(c, b',' | b'"' | b'\r' | b'\n'))
                    .map_or(b.len(), |p| i + p);
                if end < b.len() && b[end] != b',' {
                    return None;
                }
                let raw = &record[i..end];
                i = end;
                Cow::Borrowed(raw)
            };
            // The field ends here: a comma, or the record's end (then no
            // field follows, and 14 are needed).
            match b.get(i) {
                Some(b',') => i += 1,
                None if field == MESSAGE_FIELD => {}
                _ => return None,
            }
            if let Some(k) = [1, 2, 3, 11, MESSAGE_FIELD]
                .iter()
                .position(|&f| f == field)
            {
                kept[k] = value;
            }
        }
        let [user, db, pid, severity, message] = kept;
        Some(Self {
            user,
            db,
            pid,
            severity,
            message,
            rest: i,
        })
    }
}

/// What [`JsonFields::read`] made of a jsonlog line.
#[derive(Debug, PartialEq, Eq)]
enum JsonLine<'l> {
    /// An object with an `error_severity`.
    Fields(JsonFields<'l>),
    /// A valid object without one (not a jsonlog message).
    NoSeverity,
}

/// The fields of a jsonlog line a message needs, read in place: parsing the
/// line into a `serde_json::Value` (a map of every field, each value
/// allocated) cost more than the rest of a json message's handling.
#[derive(Debug, PartialEq, Eq)]
struct JsonFields<'l> {
    user: Option<Cow<'l, str>>,
    db: Option<Cow<'l, str>>,
    /// jsonlog's pid, a number (as written).
    pid: Option<&'l str>,
    severity: Cow<'l, str>,
    message: Option<Cow<'l, str>>,
}

impl<'l> JsonFields<'l> {
    /// Reads a flat JSON object as serde_json would (a later duplicate key
    /// wins); `None` when the line is anything else or has what this
    /// reader leaves to serde_json (a nested value, a `\u` escape, a
    /// control character, a number of another form than jsonlog writes,
    /// a needed field of an unexpected type), and for invalid JSON.
    fn read(line: &'l str) -> Option<JsonLine<'l>> {
        let b = line.as_bytes();
        // A control byte (raw inside a string: invalid; TAB, CR or LF
        // between tokens) is left to serde_json: jsonlog writes none, and
        // the strings are then searched for `"` and `\` alone.
        if has_control_byte(b) {
            return None;
        }
        let mut i = skip_ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let (mut user, mut db, mut pid, mut severity, mut message) = (None, None, None, None, None);
        if b.get(i) == Some(&b'}') {
            i += 1;
        } else {
            loop {
                let (key, after) = json_key(line, i)?;
                i = skip_ws(b, after);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i = skip_ws(b, i + 1);
                let slot = match key {
                    "user" => Some(&mut user),
                    "dbname" => Some(&mut db),
                    "error_severity" => Some(&mut severity),
                    "message" => Some(&mut message),
                    _ => None,
                };
                match b.get(i)? {
                    b'"' if key == "pid" => return None,
                    b'"' => {
                        i = match slot {
                            Some(slot) => {
                                let (value, after) = json_plain_string(line, i)?;
                                *slot = Some(value);
                                after
                            }
                            // Most of a line's strings are not needed: only
                            // their end is looked for.
                            None => skip_json_string(b, i)?,
                        };
                    }
                    b'-' | b'0'..=b'9' => {
                        let end = json_number(b, i)?;
                        if slot.is_some() {
                            return None;
                        }
                        if key == "pid" {
                            // As serde_json prints it back: a plain integer.
                            let n = &line[i..end];
                            if !n.bytes().all(|c| c.is_ascii_digit()) || n.len() > 19 {
                                return None;
                            }
                            pid = Some(n);
                        }
                        i = end;
                    }
                    _ => {
                        let lit = ["true", "false", "null"]
                            .into_iter()
                            .find(|l| line[i..].starts_with(l))?;
                        if slot.is_some() || key == "pid" {
                            return None;
                        }
                        i += lit.len();
                    }
                }
                i = skip_ws(b, i);
                match b.get(i)? {
                    b',' => i = skip_ws(b, i + 1),
                    b'}' => {
                        i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if skip_ws(b, i) != b.len() {
            return None;
        }
        let Some(severity) = severity else {
            return Some(JsonLine::NoSeverity);
        };
        Some(JsonLine::Fields(JsonFields {
            user,
            db,
            pid,
            severity,
            message,
        }))
    }
}

/// Past JSON whitespace from `i`.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Whether `b` has a byte below 0x20, eight bytes at a time, without an
/// early exit.
fn has_control_byte(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(8);
    let mut found = 0;
    for chunk in &mut chunks {
        found |= words::bytes_below(words::word(chunk), 0x20);
    }
    found != 0 || chunks.remainder().iter().any(|&c| c < 0x20)
}

/// The first `"` or `\` in `b` from `from`, eight bytes at a time: most
/// JSON strings and keys are shorter than memchr's setup is worth.
#[inline(always)]
fn quote_or_backslash(b: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(chunk) = b.get(at..at + 8) {
        let w = words::word(chunk);
        // The lowest flag of either is a true match.
        let hits = words::bytes_equal(w, b'"') | words::bytes_equal(w, b'\\');
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = b.get(at..)?;
    rest.iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|p| at + p)
}

/// A JSON object key at `s[i]` (a quote) and the index past it; `None`
/// when it has an escape (left to serde_json: jsonlog's keys have none).
#[inline(always)]
fn json_key(s: &str, i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let end = quote_or_backslash(b, i + 1)?;
    // The quote is ASCII: `end` is a character boundary.
    (b[end] == b'"').then(|| (&s[i + 1..end], end + 1))
}

/// The index past the JSON string at `b[i]` (a quote) whose value is not
/// needed: its escapes are checked as [`json_plain_string`] checks them,
/// not decoded.
#[inline]
fn skip_json_string(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        // No control byte is in the line (JsonFields::read checked).
        j = quote_or_backslash(b, j)?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        json_escape(*b.get(j + 1)?)?;
        j += 2;
    }
}

/// The JSON string starting at `s[i]` (a quote) decoded, and the index past
/// it; `None` for a `\u` escape or an invalid escape (left to serde_json).
/// `s` holds no control byte (see [`JsonFields::read`]).
fn json_plain_string(s: &str, i: usize) -> Option<(Cow<'_, str>, usize)> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let mut j = start;
    let mut owned: Option<String> = None;
    let mut run = start;
    loop {
        // No control byte is in the line (JsonFields::read checked).
        let p = memchr::memchr2(b'"', b'\\', &b[j..])? + j;
        match b[p] {
            b'"' => {
                let value = match owned {
                    Some(mut o) => {
                        o.push_str(&s[run..p]);
                        Cow::Owned(o)
                    }
                    None => Cow::Borrowed(&s[start..p]),
                };
                return Some((value, p + 1));
            }
            b'\\' => {
                let c = json_escape(*b.get(p + 1)?)?;
                let o = owned.get_or_insert_with(String::new);
                o.push_str(&s[run..p]);
                o.push(c);
                j = p + 2;
                run = j;
            }
            _ => return None,
        }
    }
}

/// The end of the JSON number at `b[i]`, of the forms jsonlog writes
/// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`, at most 19 integer digits, so that it
/// always fits where serde_json puts it); `None` otherwise.
fn json_number(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || (digits > 1 && b[i] == b'0') {
        return None;
    }
    i += digits;
    if b.get(i) == Some(&b'.') {
        let frac = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return None;
        }
        i += 1 + frac;
    }
    if matches!(b.get(i), Some(b'e' | b'E' | b'.')) {
        return None;
    }
    Some(i)
}

/// The `"` in `b`.
fn count_quotes(b: &str) -> usize {
    b.bytes().filter(|&c| c == b'"').count()
}

/// csvlog's `message` field.
const MESSAGE_FIELD: usize = 13;

/// The first `"` in `b`.
fn start_of_quote(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'"', b)
}

/// The first piece of a jsonlog line (or CloudNativePG's `record`) longer
/// than the cap, no JSON by itself: `"key":value` pairs in order up to the
/// cut (the fields we need come before `message`), and the message string
/// decoded into the message as far as it goes, with the decoder that takes
/// its rest. `None` when the line has no severity or no message.
fn long_json(line: &str, cap: usize) -> Option<(Message, JsonString)> {
    let mut m = Message::default();
    let mut message = None;
    let mut rest = line.trim_start().strip_prefix('{')?;
    loop {
        // Whatever the cut left (a key, a colon, a value in part) ends it.
        rest = rest.trim_start_matches([',', ' ']);
        let Some((key, after, true)) = json_string(rest) else {
            break;
        };
        let Some(after) = after.trim_start().strip_prefix(':') else {
            break;
        };
        let after = after.trim_start();
        if key == "message"
            && let Some(content) = after.strip_prefix('"')
        {
            let mut text = JsonString::default();
            let after = text.feed(content, &mut |t| m.append(t, cap));
            message = Some(text);
            match after {
                Some(after) => {
                    rest = after;
                    continue;
                }
                None => break,
            }
        }
        if after.starts_with('"') {
            let Some((value, after, complete)) = json_string(after) else {
                break;
            };
            match key.as_str() {
                // jsonlog's names, and csvlog's (CloudNativePG's record).
                "user" | "user_name" => m.user = Some(value),
                "dbname" | "database_name" => m.db = Some(value),
                "process_id" => m.pid = value,
                "error_severity" => m.severity = Severity::of(&value),
                _ => {}
            }
            if !complete {
                break;
            }
            rest = after;
        } else {
            let end = after.find([',', '}']).unwrap_or(after.len());
            if key == "pid" {
                m.pid = after[..end].trim().to_owned();
            }
            rest = &after[end..];
            if !rest.starts_with(',') {
                break;
            }
        }
    }
    if m.severity == Severity::Missing {
        return None;
    }
    Some((m, message?))
}

/// A JSON string at the start of `s`: (decoded text, the rest, whether it
/// was closed). An unclosed one is decoded as far as it goes.
fn json_string(s: &str) -> Option<(String, &str, bool)> {
    let body = s.strip_prefix('"')?;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => {
                let text: String = serde_json::from_str(&s[..i + 2]).ok()?;
                return Some((text, &body[i + 1..], true));
            }
            _ => i += 1,
        }
    }
    // Cut: close it, dropping a half escape sequence at the end.
    let mut end = body.len();
    for _ in 0..8 {
        if let Ok(text) = serde_json::from_str::<String>(&format!("\"{}\"", &body[..end])) {
            return Some((text, "", false));
        }
        end = body[..end].char_indices().next_back()?.0;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    /// An event as the cut-line tables compare it: (query, ms, truncated).
    type Event = (String, f64, bool);

    /// The events of `log`, each handed back to the parser (a copy) as the
    /// digest does, so that every table also checks that a recycled
    /// event's buffers never show in the next one.
    fn run(format: PgFormat, prefix: Option<&str>, log: &str) -> Vec<SlowEvent> {
        let mut p = PgParser::new(format, prefix, 1 << 20).unwrap();
        let mut out = Vec::new();
        for line in log.lines() {
            if let Some(e) = p.line(line) {
                p.recycle(e.clone());
                out.push(e);
            }
        }
        out.extend(p.flush());
        out
    }

    /// Feeds `log` as the tailer hands it out (each line cut at `cap`) and
    /// returns the events as the cut-line tables compare them.
    fn run_capped(p: &mut PgParser, cap: usize, log: &str) -> Vec<Event> {
        let event = |e: SlowEvent| (e.query, e.duration * 1000.0, e.truncated);
        let mut got: Vec<Event> = log
            .lines()
            .filter_map(|l| p.line(&l[..l.len().min(cap)]))
            .map(event)
            .collect();
        got.extend(p.flush().map(event));
        got
    }

    #[test]
    fn stderr_messages_table() {
        let prefix = "%m [%p] %q%u@%d ";
        let log = "2024-01-01 10:00:00.123 UTC [101] app@shop LOG:  duration: 12.500 ms  statement: SELECT *
\tFROM trip
\tWHERE driver_id = 7
2024-01-01 10:00:00.200 UTC [102] app@shop LOG:  duration: 0.300 ms  parse <unnamed>: SELECT 1
2024-01-01 10:00:00.201 UTC [102] app@shop LOG:  duration: 0.100 ms  bind <unnamed>: SELECT 1
2024-01-01 10:00:00.202 UTC [102] app@shop LOG:  duration: 2.000 ms  execute <unnamed>: SELECT 1
2024-01-01 10:00:00.203 UTC [102] app@shop DETAIL:  parameters: $1 = '1'
2024-01-01 10:00:01.000 UTC [103] app@shop LOG:  statement: UPDATE trip SET x = 1
2024-01-01 10:00:01.000 UTC [104] app@other LOG:  statement: SELECT 2
2024-01-01 10:00:01.500 UTC [103] app@shop LOG:  duration: 500.000 ms
2024-01-01 10:00:02.000 UTC [99] LOG:  checkpoint starting: time
2024-01-01 10:00:02.000 UTC [105] app@shop ERROR:  duration: 1.000 ms  statement: nope
";
        let e = run(PgFormat::Stderr, Some(prefix), log);
        let got: Vec<(&str, f64, Option<&str>)> = e
            .iter()
            .map(|e| (e.query.as_str(), e.duration, e.db.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "SELECT *\nFROM trip\nWHERE driver_id = 7",
                    0.0125,
                    Some("shop")
                ),
                ("SELECT 1", 0.002, Some("shop")),
                ("UPDATE trip SET x = 1", 0.5, Some("shop")),
            ]
        );
        assert_eq!(e[0].user.as_deref(), Some("app"));
    }

    #[test]
    fn prefix_table() {
        let cases = [
            (
                "%m [%p] ",
                "2024-01-01 10:00:00.123 UTC [42] LOG:  duration: 1.000 ms  statement: select 1",
                Some("42"),
            ),
            (
                "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
                "2024-01-01 10:00:00 UTC [7]: [3-1] user=u,db=d,app=psql,client=[local] LOG:  duration: 1.000 ms  statement: select 1",
                Some("7"),
            ),
            ("%m [%p] ", "garbage line", None),
        ];
        for (prefix, line, pid) in cases {
            let re = prefix_regex(prefix).unwrap();
            assert_eq!(
                re.captures(line)
                    .and_then(|c| c.name("pid").map(|m| m.as_str().to_owned()))
                    .as_deref(),
                pid,
                "{prefix}"
            );
        }
    }

    #[test]
    fn csv_with_quoted_newlines() {
        let log = r#"2024-01-01 10:00:00.123 UTC,"app","shop",4242,"127.0.0.1:5000",65a1.1,1,"SELECT",2024-01-01 10:00:00 UTC,3/4,0,LOG,00000,"duration: 3.250 ms  statement: SELECT ""x""
FROM t
WHERE a = 'b'",,,,,,,,,"psql","client backend",,0
2024-01-01 10:00:00.200 UTC,"app","shop",4242,"127.0.0.1:5000",65a1.1,2,"idle",2024-01-01 10:00:00 UTC,3/5,0,LOG,00000,"connection received",,,,,,,,,"","client backend",,0
"#;
        let e = run(PgFormat::Csv, None, log);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].query, "SELECT \"x\"\nFROM t\nWHERE a = 'b'");
        assert_eq!(e[0].duration, 0.00325);
        assert_eq!(e[0].db.as_deref(), Some("shop"));
    }

    #[test]
    fn lines_cut_at_the_cap_table() {
        // Found by tests/slowlog_props.rs (100 MB statement): the tailer cuts
        // a line at max_line_bytes (= the parser's cap). A cut jsonlog line is
        // no longer JSON and the event was lost; a cut stderr line was counted
        // but not reported as truncated. (format, cap, log, events as
        // (query, ms, truncated)).
        let json_head = r#"{"timestamp":"2024-01-01 10:00:00.123 UTC","user":"app","dbname":"shop","pid":42,"error_severity":"LOG","message":"duration: 12.500 ms  statement: INSERT INTO t VALUES ('\u00e9\n"#;
        let stderr_head = "2024-01-01 10:00:00.123 UTC [42] app@shop LOG:  duration: 12.500 ms  statement: INSERT INTO t VALUES ('x";
        let cut_json = format!("{json_head}xxxxxxxx");
        let half_escape = format!("{json_head}xx\\u00");
        let cases: Vec<(PgFormat, usize, String, Vec<Event>)> = vec![
            (
                PgFormat::Json,
                cut_json.len(),
                format!("{cut_json}\n"),
                vec![("INSERT INTO t VALUES ('é\nxxxxxxxx".into(), 12.5, true)],
            ),
            (
                PgFormat::Json,
                half_escape.len(),
                format!("{half_escape}\n"),
                vec![("INSERT INTO t VALUES ('é\nxx".into(), 12.5, true)],
            ),
            // Shorter than the cap: broken JSON is garbage, not a cut line.
            (
                PgFormat::Json,
                200,
                format!("{}\n", &json_head[..60]),
                vec![],
            ),
            (
                PgFormat::Stderr,
                200,
                format!("{stderr_head}{}\n", "x".repeat(200 - stderr_head.len())),
                vec![(
                    format!(
                        "INSERT INTO t VALUES ('{}",
                        "x".repeat(200 - stderr_head.len() + 1)
                    ),
                    12.5,
                    true,
                )],
            ),
            (
                PgFormat::Stderr,
                200,
                format!("{stderr_head}\n\t{}\n", "y".repeat(300)),
                vec![(
                    format!("INSERT INTO t VALUES ('x\n{}", "y".repeat(300))
                        .chars()
                        .take(200)
                        .collect(),
                    12.5,
                    true,
                )],
            ),
            (
                PgFormat::Stderr,
                200,
                format!("{stderr_head}\n"),
                vec![("INSERT INTO t VALUES ('x".into(), 12.5, false)],
            ),
        ];
        for (format, cap, log, want) in cases {
            let mut p = PgParser::new(format, Some("%m [%p] %q%u@%d "), cap).unwrap();
            let got = run_capped(&mut p, cap, &log);
            assert_eq!(got, want, "{format:?} {log:?}");
        }
    }

    #[test]
    fn csv_records_cut_or_longer_than_the_cap() {
        // A csvlog record whose line the tailer cut at the cap left its quotes
        // open: it swallowed the records after it until a size limit, then
        // all of them were dropped; a multi-line record longer than that
        // limit was dropped too, timing and all. (cap, log, (query, ms,
        // truncated) per event).
        let head = "2024-01-01 10:00:00.123 UTC,\"app\",\"shop\",42,\"h\",s,1,\"SELECT\",t,1/2,0,LOG,00000,\"duration: ";
        let tail = "\",,,,,,,,,\"psql\",\"client backend\",,0";
        let good = format!("{head}1.000 ms  statement: select 2{tail}");
        let long = format!("{head}12.500 ms  statement: select 'x{}", "x".repeat(200));
        let long_kept = long[..200].split_once("statement: ").unwrap().1.to_owned();
        let pad = "\n-- padding ........................................".repeat(100);
        let cases: Vec<(usize, String, Vec<Event>)> = vec![
            // Cut on its first line, more lines of it follow, then a record.
            (
                200,
                format!("{long}\nmore ' text\n\"more\"' \"\n{good}\n"),
                vec![
                    (long_kept.clone(), 12.5, true),
                    ("select 2".into(), 1.0, false),
                ],
            ),
            // Cut and nothing more of it.
            (
                200,
                format!("{long}'{tail}\n{good}\n"),
                vec![
                    (long_kept.clone(), 12.5, true),
                    ("select 2".into(), 1.0, false),
                ],
            ),
            // Many lines, each under the cap, more than kept in all.
            (
                200,
                format!("{head}7.000 ms  statement: select 1{pad}{tail}\n{good}\n"),
                vec![
                    (
                        format!(
                            "select 1{}",
                            "\n-- padding ........................................".repeat(50)
                        )[..200]
                            .to_owned(),
                        7.0,
                        true,
                    ),
                    ("select 2".into(), 1.0, false),
                ],
            ),
        ];
        for (cap, log, want) in cases {
            let mut p = PgParser::new(PgFormat::Csv, None, cap).unwrap();
            let got = run_capped(&mut p, cap, &log);
            assert_eq!(got, want, "{log:?}");
        }
    }

    #[test]
    fn statements_longer_than_the_cap_get_their_class_as_they_stream() {
        // Issue 16 on the PostgreSQL path: a 2 MB statement handed out as
        // the tailer does (the first `cap` bytes, then pieces), plain and
        // through syslog's continuation lines.
        let cap = 64 * 1024;
        let body = "lorem ipsum ".repeat(200_000);
        let ids: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        let stderr = [
            format!(
                "2024-01-01 10:00:00.123 UTC [42] LOG:  duration: 12.500 ms  statement: UPDATE docs SET body='{body}' WHERE id=7"
            ),
            format!(
                "2024-01-01 10:00:00.123 UTC [43] LOG:  duration: 1.500 ms  execute <unnamed>: SELECT * FROM t WHERE id IN ({})",
                ids.join(", ")
            ),
        ];
        let want = [
            "update docs set body=? where id=?",
            "select * from t where id in(?+)",
        ];
        let mut p = PgParser::new(PgFormat::Stderr, None, cap).unwrap();
        let mut got = Vec::new();
        for line in &stderr {
            got.extend(p.line(&line[..cap]));
            for piece in line.as_bytes()[cap..].chunks(65_536) {
                p.more(std::str::from_utf8(piece).unwrap());
            }
        }
        got.extend(p.flush());
        let got: Vec<(String, bool)> = got
            .iter()
            .map(|e| (crate::fingerprint::fingerprint(&e.query), e.truncated))
            .collect();
        assert_eq!(
            got,
            want.map(|w| (w.to_owned(), false)),
            "classes, not truncated"
        );
    }

    #[test]
    fn cut_cloud_json_lines_keep_their_timing() {
        // A CloudNativePG or Cloud SQL line longer than the cap is no
        // longer JSON: the event is kept (truncated), not lost.
        let long = "x".repeat(500);
        let cnpg = format!(
            r#"{{"level":"info","logger":"postgres","msg":"record","record":{{"user_name":"app","database_name":"shop","process_id":"88","error_severity":"LOG","message":"duration: 7.250 ms  statement: select '{long}'"}}}}"#
        );
        let cloudsql = format!(
            r#"{{"insertId":"1","textPayload":"2024-01-01 10:00:00.123 UTC [4242]: [3-1] db=shop,user=app LOG:  duration: 7.250 ms  statement: select '{long}'","timestamp":"2024-01-01T10:00:00.123Z"}}"#
        );
        for (format, line) in [(PgFormat::Cnpg, cnpg), (PgFormat::CloudSql, cloudsql)] {
            let cap = 300;
            let mut p = PgParser::new(format, None, cap).unwrap();
            let got = run_capped(&mut p, cap, &format!("{line}\n"));
            assert_eq!(got.len(), 1, "{format:?}");
            assert_eq!((got[0].1, got[0].2), (7.25, true), "{format:?}");
            assert!(got[0].0.starts_with("select 'xxx"), "{format:?}: {got:?}");
            assert_eq!(p.unrecognized.lines, 0, "{format:?}");
        }
    }

    #[test]
    fn layouts_table() {
        // Samples written from each layout's documentation: (format,
        // log_line_prefix, log, events as (query, ms, db, user)).
        type Want = (
            &'static str,
            f64,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: Vec<(PgFormat, Option<&str>, &str, Vec<Want>)> = vec![
            // rsyslog's traditional file format (TAB as #011), a message
            // split at syslog's length limit, journald's ISO time with TABs.
            (
                PgFormat::Syslog,
                Some("%q%u@%d "),
                "Jan  1 10:00:00 dbhost postgres[4242]: [3-1] app@shop LOG:  duration: 12.500 ms  statement: SELECT *
Jan  1 10:00:00 dbhost postgres[4242]: [3-2] #011FROM trips
Jan  1 10:00:00 dbhost postgres[4242]: [3-3] #011WHERE driver_id = 7
Jan  1 10:00:01 dbhost postgres[4243]: [4-1] app@shop LOG:  duration: 1.000 ms  statement: SELECT 'aaa
Jan  1 10:00:01 dbhost postgres[4243]: [4-2]  bbb'
Jan  1 10:00:02 dbhost postgres[17]: [5-1] LOG:  checkpoint starting: time
2024-01-01T10:00:03.123456+00:00 dbhost postgres[4244]: [6-1] app@other LOG:  duration: 2.000 ms  statement: select 1
2024-01-01T10:00:03.123456+00:00 dbhost postgres[4244]: [6-2] \tfrom t
",
                vec![
                    ("SELECT *\nFROM trips\nWHERE driver_id = 7", 12.5, Some("shop"), Some("app")),
                    ("SELECT 'aaa bbb'", 1.0, Some("shop"), Some("app")),
                    ("select 1\nfrom t", 2.0, Some("other"), Some("app")),
                ],
            ),
            // Heroku Dev Center's examples: the old prefix-less lines, the
            // newer key="value" fields, a syslog drain (RFC 5424).
            (
                PgFormat::Heroku,
                None,
                r#"2014-08-27T17:58:23+00:00 app[postgres.5280]: [BRONZE] [14-1] LOG:  duration: 2004.117 ms  statement: SELECT pg_sleep(2);
2024-01-01T10:00:00+00:00 app[postgres.1234567]: [DATABASE] [15-1] sql_error_code = 00000 time_ms = "2024-01-01 10:00:00.123 UTC" pid="1234567" proc_start_time="2024-01-01 09:00:00 UTC" session_id="a.b" vtid="4/5" tid="0" log_line="3" database="d8abc" connection_source="1.2.3.4(5678)" user="u1abc" application_name="web.1" LOG:  duration: 12.345 ms  statement: SELECT * FROM users
2024-01-01T10:00:00+00:00 app[postgres.1234567]: [DATABASE] [15-2] #011WHERE id = 7
2024-01-01T10:00:01+00:00 app[postgres.1234567]: [DATABASE] [16-1] sql_error_code = 00000 LOG:  checkpoint starting: time
<134>1 2024-01-01T10:00:02+00:00 host app postgres.1234 - [DATABASE] [17-1] sql_error_code = 00000 LOG:  duration: 3.000 ms  statement: select 1
"#,
                vec![
                    ("SELECT pg_sleep(2);", 2004.117, None, None),
                    ("SELECT * FROM users\nWHERE id = 7", 12.345, Some("d8abc"), Some("u1abc")),
                    ("select 1", 3.0, None, None),
                ],
            ),
            // CloudNativePG's documented record, one with a duration, and
            // the instance manager's own lines.
            (
                PgFormat::Cnpg,
                None,
                r#"{"level":"info","ts":1619781249.7188137,"logger":"postgres","msg":"record","logging_pod":"cluster-example-1","record":{"log_time":"2021-04-30 11:14:09.718 UTC","user_name":"","database_name":"","process_id":"25","connection_from":"","session_id":"608be681.19","session_line_num":"1","session_start_time":"2021-04-30 11:14:09 UTC","virtual_transaction_id":"","transaction_id":"0","error_severity":"LOG","sql_state_code":"00000","message":"database system was interrupted; last known up at 2021-04-30 11:14:07 UTC","backend_type":"startup"}}
{"level":"info","ts":1619781250.1,"logger":"postgres","msg":"record","logging_pod":"cluster-example-1","record":{"log_time":"2021-04-30 11:14:10.100 UTC","user_name":"app","database_name":"app","process_id":"88","connection_from":"10.0.0.7:51234","session_id":"608be682.58","session_line_num":"3","command_tag":"SELECT","session_start_time":"2021-04-30 11:14:10 UTC","virtual_transaction_id":"3/12","transaction_id":"0","error_severity":"LOG","sql_state_code":"00000","message":"duration: 7.250 ms  statement: select * from t\nwhere a = 1","backend_type":"client backend","query_id":"0"}}
{"level":"info","ts":1619781251.2,"logger":"instance-manager","msg":"Checking for free disk space for WALs","logging_pod":"cluster-example-1"}
"#,
                vec![("select * from t\nwhere a = 1", 7.25, Some("app"), Some("app"))],
            ),
            // A Cloud Logging export of Cloud SQL (JSON lines, and the
            // array `gcloud logging read --format=json` prints).
            (
                PgFormat::CloudSql,
                None,
                r#"{"insertId":"s=abc;i=1","logName":"projects/my-proj/logs/cloudsql.googleapis.com%2Fpostgres.log","receiveTimestamp":"2024-01-01T10:00:01.000Z","resource":{"labels":{"database_id":"my-proj:pg1","project_id":"my-proj","region":"us-central1"},"type":"cloudsql_database"},"severity":"INFO","textPayload":"2024-01-01 10:00:00.123 UTC [4242]: [3-1] db=shop,user=app LOG:  duration: 12.500 ms  statement: SELECT *\n\tFROM trips\n\tWHERE driver_id = 7","timestamp":"2024-01-01T10:00:00.123Z"}
[{"insertId":"s=abc;i=2","logName":"projects/my-proj/logs/cloudsql.googleapis.com%2Fpostgres.log","severity":"INFO","textPayload":"2024-01-01 10:00:01.000 UTC [4243]: [1-1] db=shop,user=app LOG:  duration: 1.000 ms  statement: select 1","timestamp":"2024-01-01T10:00:01Z"},
{"insertId":"s=abc;i=3","logName":"projects/my-proj/logs/cloudaudit.googleapis.com%2Factivity","protoPayload":{"methodName":"cloudsql.instances.update"},"timestamp":"2024-01-01T10:00:02Z"}]
"#,
                vec![
                    ("SELECT *\nFROM trips\nWHERE driver_id = 7", 12.5, Some("shop"), Some("app")),
                    ("select 1", 1.0, Some("shop"), Some("app")),
                ],
            ),
        ];
        for (format, prefix, log, want) in cases {
            let mut p = PgParser::new(format, prefix, 1 << 20).unwrap();
            let mut got: Vec<SlowEvent> = log.lines().filter_map(|l| p.line(l)).collect();
            while let Some(e) = p.flush() {
                got.push(e);
            }
            let got: Vec<(&str, f64, Option<&str>, Option<&str>)> = got
                .iter()
                .map(|e| {
                    (
                        e.query.as_str(),
                        e.duration * 1000.0,
                        e.db.as_deref(),
                        e.user.as_deref(),
                    )
                })
                .collect();
            // syslog and logplex messages may complete out of order (a
            // backend's message waits aside while others write).
            let (mut got, mut want) = (got, want);
            got.sort_by(|a, b| a.1.total_cmp(&b.1));
            want.sort_by(|a, b| a.1.total_cmp(&b.1));
            assert_eq!(got, want, "{format:?}");
            assert_eq!(
                p.unrecognized.lines, 0,
                "{format:?}: {:?}",
                p.unrecognized.sample
            );
        }
    }

    #[test]
    fn syslog_lines_of_backends_writing_at_once_join_their_own_messages() {
        // Backend b's lines come between backend a's. Up to MAX_ASIDE
        // backends: every message whole; one more: the oldest is completed
        // with what it had, and its later line is counted unrecognized.
        let line = |pid: usize, seq: usize, n: usize, text: &str| {
            format!("Jan  1 10:00:00 dbhost postgres[{pid}]: [{seq}-{n}] {text}\n")
        };
        for backends in [2, MAX_ASIDE + 1, MAX_ASIDE + 2] {
            let mut log = String::new();
            for b in 0..backends {
                let text = format!("app@shop LOG:  duration: {b}.000 ms  statement: SELECT {b}");
                log.push_str(&line(100 + b, 1, 1, &text));
            }
            for b in 0..backends {
                log.push_str(&line(100 + b, 1, 2, &format!("#011FROM t{b}")));
            }
            log.push_str(&line(
                100,
                2,
                1,
                "app@shop LOG:  duration: 9.000 ms  statement: SELECT 9",
            ));
            let mut p = PgParser::new(PgFormat::Syslog, Some("%q%u@%d "), 1 << 20).unwrap();
            let mut got: Vec<(String, f64)> = Vec::new();
            for l in log.lines() {
                got.extend(p.line(l).map(|e| (e.query, e.duration * 1000.0)));
            }
            while let Some(e) = p.flush() {
                got.push((e.query, e.duration * 1000.0));
            }
            got.sort_by(|a, b| a.1.total_cmp(&b.1));
            let cut = backends.saturating_sub(MAX_ASIDE + 1);
            let mut want: Vec<(String, f64)> = (0..backends)
                .map(|b| {
                    let query = if b < cut {
                        format!("SELECT {b}")
                    } else {
                        format!("SELECT {b}\nFROM t{b}")
                    };
                    (query, b as f64)
                })
                .collect();
            want.push(("SELECT 9".into(), 9.0));
            assert_eq!(got, want, "{backends} backends");
            assert_eq!(p.unrecognized.lines, cut as u64, "{backends} backends");
        }
    }

    #[test]
    fn duration_messages_read_as_the_pattern_did() {
        // The hand-written reader against the regex it replaced, on every
        // combination of the pieces that matter.
        let re = Regex::new(r"^duration: (?P<ms>[0-9.]+) ms(?:  (?P<kind>statement|execute [^:]*|parse [^:]*|bind [^:]*|execute fetch from [^:]*): (?P<q>(?s:.*)))?$").unwrap();
        let heads = ["duration: ", "duration:", "Duration: ", ""];
        let numbers = ["12.500", "0", ".", "1.2.3", "", "x1", "7 "];
        let units = [" ms", " ms ", "ms", " s"];
        let tails = [
            "",
            "  statement: select 1",
            "  statement:select 1",
            "  statement: ",
            "  statementx: select 1",
            "  execute <unnamed>: select 1",
            "  execute P_1: select a:b",
            "  execute fetch from c1/p1: select 1",
            "  execute x:y: select 1",
            "  execute : q",
            "  parse s1: select 1",
            "  bind <unnamed>: select\n1",
            "  bind x",
            " statement: select 1",
            "  other: x",
            "\n",
        ];
        for h in heads {
            for n in numbers {
                for u in units {
                    for t in tails {
                        let text = format!("{h}{n}{u}{t}").replace("\\n", "\n");
                        let want = re.captures(&text).map(|c| DurationMessage {
                            ms: c.name("ms").unwrap().as_str(),
                            kind: c
                                .name("kind")
                                .map(|k| (k.as_str(), c.name("q").unwrap().as_str())),
                        });
                        assert_eq!(parse_duration(&text), want, "{text:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn csv_fields_read_in_place_as_the_csv_crate_reads_them() {
        // Random records of plain and awkward fields: whenever the in-place
        // reader answers, the csv crate gives the same fields.
        let parts = [
            "",
            "app",
            "\"app\"",
            "\"a,b\"",
            "\"say \"\"hi\"\"\"",
            "\"x\"y",
            "x\"y",
            "\"a\nb\"",
            "a\rb",
            "42",
            "LOG",
            "\"LOG\"",
            "ERROR",
            "\"duration: 1.000 ms  statement: select \"\"a\"\", 'b'\"",
            "\u{feff}x",
            "é",
            "\"\"",
            "\"unclosed",
        ];
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut fast = 0;
        for _ in 0..20_000 {
            let n = 10 + rng.below(10);
            // Mostly plain fields, so that many records are read in place.
            let fields: Vec<&str> = (0..n)
                .map(|_| {
                    let pool = if rng.below(8) == 0 { parts.len() } else { 5 };
                    parts[rng.below(pool)]
                })
                .collect();
            let record = fields.join(",");
            let Some(f) = CsvFields::read(&record) else {
                continue;
            };
            fast += 1;
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(record.as_bytes());
            let row = reader.records().next().unwrap().unwrap();
            assert!(row.len() >= 14, "{record:?}");
            let want = [&row[1], &row[2], &row[3], &row[11], &row[13]];
            let got = [&*f.user, &*f.db, &*f.pid, &*f.severity, &*f.message];
            assert_eq!(got, want, "{record:?}");
        }
        assert!(fast > 1_000, "{fast}");
    }

    #[test]
    fn word_at_a_time_searches_find_what_a_byte_at_a_time_search_finds() {
        let alphabet = b"\"\\ \x00\x01\x1f\x20\x21\x5b\x5d\xa2\xdc\x80\xffa0";
        let mut rng = crate::test_rng::Rng(0x0B1E_55ED_C0DE_F00D);
        for _ in 0..20_000 {
            let len = rng.below(40);
            let b = rng.bytes(alphabet, len);
            assert_eq!(has_control_byte(&b), b.iter().any(|&c| c < 0x20), "{b:?}");
            let from = rng.below(b.len() + 2);
            let slow = b
                .get(from..)
                .and_then(|r| r.iter().position(|&c| c == b'"' || c == b'\\'))
                .map(|p| from + p);
            assert_eq!(quote_or_backslash(&b, from), slow, "{b:?} from {from}");
        }
    }

    #[test]
    fn json_fields_read_in_place_as_serde_json_reads_them() {
        // Random objects of jsonlog's fields and awkward values: whenever the
        // in-place reader answers, serde_json gives the same message.
        let keys = [
            "user",
            "dbname",
            "pid",
            "error_severity",
            "message",
            "timestamp",
            "query_id",
            "u\\u0073er",
        ];
        let values = [
            "\"app\"",
            "\"\"",
            "42",
            "-7",
            "0",
            "01",
            "1.5",
            "1e3",
            "12345678901234567890",
            "-9153834604857680218",
            "true",
            "null",
            "\"LOG\"",
            "\"ERROR\"",
            "\"duration: 1.000 ms  statement: select 1\\nfrom \\\"t\\\"\\t\\/\"",
            "\"\\u00e9\"",
            "\"bad \\x\"",
            "\"raw\ttab\"",
            "{\"a\":1}",
            "[1]",
            "\"é\"",
            "nul",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut fast = 0;
        for _ in 0..20_000 {
            let n = rng.below(8);
            let mut line = String::from([" {", "{", "["][rng.below(3)]);
            for i in 0..n {
                if i > 0 {
                    line.push_str([",", " , ", ""][rng.below(3)]);
                }
                line.push_str(&format!(
                    "\"{}\":{}",
                    keys[rng.below(keys.len())],
                    values[rng.below(values.len())]
                ));
            }
            line.push_str(["}", "} ", "}x", ""][rng.below(4)]);
            let Some(got) = JsonFields::read(&line) else {
                continue;
            };
            fast += 1;
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            match got {
                JsonLine::NoSeverity => assert!(v.get("error_severity").is_none(), "{line:?}"),
                JsonLine::Fields(f) => {
                    let want = json_message(&v, ["pid", "dbname", "user"]);
                    let some =
                        |s: Option<Cow<'_, str>>| s.map(Cow::into_owned).filter(|s| !s.is_empty());
                    assert_eq!(Some(&*f.severity), v["error_severity"].as_str(), "{line:?}");
                    assert_eq!(
                        (
                            f.pid.unwrap_or_default(),
                            some(f.db),
                            some(f.user),
                            Severity::of(&f.severity),
                            f.message.map(Cow::into_owned).unwrap_or_default()
                        ),
                        (
                            want.pid.as_str(),
                            want.db,
                            want.user,
                            want.severity,
                            want.text
                        ),
                        "{line:?}"
                    );
                }
            }
        }
        assert!(fast > 1_000, "{fast}");
    }

    #[test]
    fn jsonlog() {
        let log = r#"{"timestamp":"2024-01-01 10:00:00.123 UTC","user":"app","dbname":"shop","pid":4242,"error_severity":"LOG","message":"duration: 7.000 ms  statement: select 1\nfrom t"}
{"timestamp":"2024-01-01 10:00:00.123 UTC","pid":1,"error_severity":"LOG","message":"checkpoint complete"}
not json
{"timestamp":"2024-01-01 10:00:01.000 UTC","pid":4243,"error_severity":"LOG","message":"duration: 2.000 ms  statement: select 2"}
"#;
        let e = run(PgFormat::Json, None, log);
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].query.as_str(), e[0].duration, e[0].db.as_deref()),
            ("select 1\nfrom t", 0.007, Some("shop"))
        );
        // After a recycled event with a db and a user: none of them.
        assert_eq!(
            (
                e[1].query.as_str(),
                e[1].db.as_deref(),
                e[1].user.as_deref()
            ),
            ("select 2", None, None)
        );
    }
}
