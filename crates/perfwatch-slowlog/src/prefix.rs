//! A PostgreSQL stderr line's head (its `log_line_prefix`, severity and
//! `:  `) matched by a small backtracking matcher instead of the regex
//! [`crate::postgres`] builds from the prefix: the regex with captures ran
//! once per line and was the largest single cost of reading a stderr log.
//!
//! The matcher follows the regex exactly: the same pieces per `%` escape,
//! tried in the regex's priority order (greedy longest first, lazy shortest
//! first, `%q`'s optional group first taken), so the first match found has
//! the regex's captures. It handles ASCII heads only (the regex's `\d` and
//! `\S` are Unicode classes) and gives up after a bounded number of steps
//! (a garbage line against `.*?` escapes); the caller then asks the regex,
//! so the result is the regex's in every case.

use crate::words;

/// Steps (token attempts) before the matcher gives up on a line.
const BUDGET: u32 = 2_000;

/// One piece of the prefix's pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// An ASCII byte as written.
    Lit(u8),
    /// `%m` (`frac`) or `%t`: `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?(?: \S+)?`.
    Time { frac: bool },
    /// `%n`: `\d+(?:\.\d+)?`.
    Epoch,
    /// `%p`: `(?P<pid>\d+)`.
    Pid,
    /// `%d`, `%u` (captured) and the other one-word escapes: `\S*?`.
    Word(Cap),
    /// `%h`, `%r`, `%a` and unknown escapes: `.*?`.
    Any,
    /// `%q`: what follows, up to the severity, is an optional group.
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cap {
    None,
    Db,
    User,
}

/// Byte ranges of a head's captures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HeadCaps {
    pub(crate) pid: Option<(usize, usize)>,
    pub(crate) db: Option<(usize, usize)>,
    pub(crate) user: Option<(usize, usize)>,
    pub(crate) sev: (usize, usize),
}

/// A `log_line_prefix` compiled for [`PrefixMatcher::head`].
#[derive(Debug, Clone)]
pub(crate) struct PrefixMatcher {
    toks: Vec<Tok>,
}

/// What [`PrefixMatcher::head`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadMatch {
    /// The regex matches, with these captures.
    Match(HeadCaps),
    /// The regex does not match.
    NoMatch,
    /// Not decided here (non-ASCII, or too many steps): ask the regex.
    Unknown,
}

impl PrefixMatcher {
    /// The matcher of `prefix`, as `prefix_regex_ending` translates it;
    /// `None` for a prefix with non-ASCII text (the regex alone reads
    /// those).
    pub(crate) fn new(prefix: &str) -> Option<Self> {
        if !prefix.is_ascii() {
            return None;
        }
        let mut toks = Vec::new();
        let mut bytes = prefix.bytes();
        while let Some(c) = bytes.next() {
            if c != b'%' {
                toks.push(Tok::Lit(c));
                continue;
            }
            let Some(spec) = bytes.next() else { break };
            let tok = match spec {
                b'm' => Tok::Time { frac: true },
                b't' => Tok::Time { frac: false },
                b'n' => Tok::Epoch,
                b'p' => Tok::Pid,
                b'd' => Tok::Word(Cap::Db),
                b'u' => Tok::Word(Cap::User),
                b'l' | b'x' | b'v' | b'c' | b'e' | b'Q' | b's' | b'i' | b'b' | b'P' => {
                    Tok::Word(Cap::None)
                }
                b'%' => Tok::Lit(b'%'),
                b'q' => {
                    // The last %q opens the group (as in the regex).
                    toks.retain(|t| *t != Tok::Optional);
                    Tok::Optional
                }
                _ => Tok::Any,
            };
            toks.push(tok);
        }
        Some(Self { toks })
    }

    /// Matches `head` (a line up to and including a `:  `) as the head
    /// regex does.
    pub(crate) fn head(&self, head: &[u8]) -> HeadMatch {
        // `.` stops at a newline: the regex reads those.
        if !head.ends_with(b":  ") || !ascii_without_newline(head) {
            return HeadMatch::Unknown;
        }
        if let Some(caps) = self.first_path(head) {
            return HeadMatch::Match(caps);
        }
        let mut budget = BUDGET;
        let mut caps = HeadCaps::default();
        let found = self.run(head, 0, 0, &mut caps, &mut budget);
        if budget == 0 {
            return HeadMatch::Unknown;
        }
        if found {
            HeadMatch::Match(caps)
        } else {
            HeadMatch::NoMatch
        }
    }

    /// The path [`PrefixMatcher::run`] tries first (each token's first
    /// candidate), followed without backtracking: when it matches, it is
    /// the first match `run` finds, and it is how nearly every line
    /// matches; `None` sends the line to `run`.
    fn first_path(&self, h: &[u8]) -> Option<HeadCaps> {
        let mut caps = HeadCaps::default();
        let mut pos = 0;
        for (ti, &tok) in self.toks.iter().enumerate() {
            match tok {
                Tok::Lit(c) => {
                    if h.get(pos) != Some(&c) {
                        return None;
                    }
                    pos += 1;
                }
                Tok::Optional => {}
                Tok::Pid => {
                    let n = digits(h, pos);
                    if n == 0 {
                        return None;
                    }
                    caps.pid = Some((pos, pos + n));
                    pos += n;
                }
                Tok::Epoch => {
                    pos += digits(h, pos).checked_sub(1)? + 1;
                    if h.get(pos) == Some(&b'.') && digits(h, pos + 1) > 0 {
                        pos += 1 + digits(h, pos + 1);
                    }
                }
                Tok::Time { frac } => {
                    pos = time_end(h, pos)?;
                    if frac {
                        if h.get(pos) != Some(&b'.') {
                            return None;
                        }
                        pos += 1 + digits(h, pos + 1).checked_sub(1)? + 1;
                    }
                    if h.get(pos) == Some(&b' ') {
                        pos += 1 + h[pos + 1..].iter().take_while(|c| !is_space(**c)).count();
                        if h[pos - 1] == b' ' {
                            // No word after the space: the zone is skipped.
                            pos -= 1;
                        }
                    }
                }
                Tok::Word(cap) => {
                    let n = h[pos..].iter().take_while(|c| !is_space(**c)).count();
                    let k = match self.next_lit(ti) {
                        Some(c) => (0..=n).find(|&k| h.get(pos + k) == Some(&c))?,
                        None => 0,
                    };
                    let range = Some((pos, pos + k));
                    match cap {
                        Cap::Db => caps.db = range,
                        Cap::User => caps.user = range,
                        Cap::None => {}
                    }
                    pos += k;
                }
                Tok::Any => {
                    pos += match self.next_lit(ti) {
                        Some(c) => h[pos..].iter().position(|&x| x == c)?,
                        None => 0,
                    };
                }
            }
        }
        caps.sev = ending(h, pos)?;
        Some(caps)
    }

    /// Whether tokens `ti..` and the ending match from `pos`, trying the
    /// candidates in the regex's priority order; `caps` holds the first
    /// match's captures (a capture is set before trying what follows it
    /// and put back when that fails).
    fn run(&self, h: &[u8], ti: usize, pos: usize, caps: &mut HeadCaps, budget: &mut u32) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let Some(&tok) = self.toks.get(ti) else {
            return self.end(h, pos, caps);
        };
        match tok {
            Tok::Lit(c) => h.get(pos) == Some(&c) && self.run(h, ti + 1, pos + 1, caps, budget),
            // The group taken first, else skipped: it runs to the prefix's
            // end, so the severity follows (no capture inside it is set
            // on this path).
            Tok::Optional => {
                self.run(h, ti + 1, pos, caps, budget) || (*budget > 0 && self.end(h, pos, caps))
            }
            Tok::Pid => {
                let old = caps.pid;
                for k in (1..=digits(h, pos)).rev() {
                    caps.pid = Some((pos, pos + k));
                    if self.run(h, ti + 1, pos + k, caps, budget) {
                        return true;
                    }
                }
                caps.pid = old;
                false
            }
            Tok::Epoch => {
                for k in (1..=digits(h, pos)).rev() {
                    let at = pos + k;
                    // `(?:\.\d+)?`: taken (longest first) before skipped.
                    let frac = if h.get(at) == Some(&b'.') {
                        digits(h, at + 1)
                    } else {
                        0
                    };
                    for f in (1..=frac).rev() {
                        if self.run(h, ti + 1, at + 1 + f, caps, budget) {
                            return true;
                        }
                    }
                    if self.run(h, ti + 1, at, caps, budget) {
                        return true;
                    }
                }
                false
            }
            Tok::Time { frac } => {
                let Some(at) = time_end(h, pos) else {
                    return false;
                };
                if !frac {
                    return self.zone(h, ti, at, caps, budget);
                }
                if h.get(at) != Some(&b'.') {
                    return false;
                }
                (1..=digits(h, at + 1))
                    .rev()
                    .any(|k| self.zone(h, ti, at + 1 + k, caps, budget))
            }
            Tok::Word(cap) => {
                let n = h[pos..].iter().take_while(|c| !is_space(**c)).count();
                let next = self.next_lit(ti);
                let old = (caps.db, caps.user);
                for k in 0..=n {
                    if next.is_some_and(|c| h.get(pos + k) != Some(&c)) {
                        continue;
                    }
                    match cap {
                        Cap::Db => caps.db = Some((pos, pos + k)),
                        Cap::User => caps.user = Some((pos, pos + k)),
                        Cap::None => {}
                    }
                    if self.run(h, ti + 1, pos + k, caps, budget) {
                        return true;
                    }
                }
                (caps.db, caps.user) = old;
                false
            }
            Tok::Any => {
                let next = self.next_lit(ti);
                (0..=h.len() - pos)
                    .filter(|&k| next.is_none_or(|c| h.get(pos + k) == Some(&c)))
                    .any(|k| self.run(h, ti + 1, pos + k, caps, budget))
            }
        }
    }

    /// `(?: \S+)?` after a time that ends at `at` (token `ti`): a space and
    /// the longest word first, then without; then the tokens after it.
    fn zone(&self, h: &[u8], ti: usize, at: usize, caps: &mut HeadCaps, budget: &mut u32) -> bool {
        let word = if h.get(at) == Some(&b' ') {
            h[at + 1..].iter().take_while(|c| !is_space(**c)).count()
        } else {
            0
        };
        (1..=word)
            .rev()
            .any(|k| self.run(h, ti + 1, at + 1 + k, caps, budget))
            || self.run(h, ti + 1, at, caps, budget)
    }

    /// The severity and `:  ` at `pos`, to the end.
    fn end(&self, h: &[u8], pos: usize, caps: &mut HeadCaps) -> bool {
        match ending(h, pos) {
            Some(sev) => {
                caps.sev = sev;
                true
            }
            None => false,
        }
    }
}

/// ASCII digits at `h[from..]`.
fn digits(h: &[u8], from: usize) -> usize {
    h.get(from..)
        .map_or(0, |t| t.iter().take_while(|c| c.is_ascii_digit()).count())
}

impl PrefixMatcher {
    /// The literal byte token `ti + 1` requires, if it is one: a lazy
    /// token's candidate ends are only where that byte is (the others fail
    /// on it at once).
    fn next_lit(&self, ti: usize) -> Option<u8> {
        match self.toks.get(ti + 1) {
            Some(&Tok::Lit(c)) => Some(c),
            _ => None,
        }
    }
}

/// `\s` on ASCII.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `(?P<sev>[A-Z]+[0-9]?):  $` from `pos`: the severity's range.
fn ending(h: &[u8], pos: usize) -> Option<(usize, usize)> {
    let end = h.len().checked_sub(3)?;
    if pos >= end {
        return None;
    }
    let sev = &h[pos..end];
    let upper = sev.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let ok = upper > 0
        && (upper == sev.len() || (upper + 1 == sev.len() && sev[upper].is_ascii_digit()));
    ok.then_some((pos, end))
}

/// `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d` at `pos`: where it ends.
fn time_end(h: &[u8], pos: usize) -> Option<usize> {
    const SHAPE: &[u8; 19] = b"dddd-dd-dd dd:dd:dd";
    let t = h.get(pos..pos + SHAPE.len())?;
    let ok = t.iter().zip(SHAPE).all(|(&c, &s)| {
        if s == b'd' {
            c.is_ascii_digit()
        } else {
            c == s
        }
    });
    ok.then_some(pos + SHAPE.len())
}

/// Whether `b` is ASCII and has no newline: one pass, eight bytes at a
/// time (two searches cost more than matching the head itself).
fn ascii_without_newline(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(8);
    let mut flags = 0;
    for chunk in &mut chunks {
        let w = words::word(chunk);
        flags |= (w & words::HIGHS) | words::bytes_equal(w, b'\n');
    }
    flags == 0
        && chunks
            .remainder()
            .iter()
            .all(|&c| c.is_ascii() && c != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    #[test]
    fn ascii_without_newline_reads_as_a_byte_at_a_time_check() {
        let alphabet = b"a \n\x7f\x80\xff:";
        let mut rng = Rng(0xA5C1_1000);
        for _ in 0..20_000 {
            let len = rng.below(20);
            let b = rng.bytes(alphabet, len);
            let want = b.is_ascii() && !b.contains(&b'\n');
            assert_eq!(ascii_without_newline(&b), want, "{b:?}");
        }
    }

    #[test]
    fn the_matcher_finds_what_the_regex_finds() {
        // Random prefixes and lines built from the same pieces: wherever the
        // matcher decides, it agrees with the regex, captures included.
        let escapes = [
            "%m", "%t", "%n", "%p", "%d", "%u", "%l", "%x", "%a", "%h", "%r", "%q", "%%", "%c",
            "%z", " ", "[", "]", "@", ":", "-", "=", ",", "db=", "user=",
        ];
        let pieces = [
            "2024-01-01 10:00:00.123 UTC",
            "2024-01-01 10:00:00 UTC",
            "2024-01-01 10:00:00.5",
            "1704103200.123",
            "42",
            "[42]",
            "[4242]:",
            "app@shop",
            "@",
            " ",
            "  ",
            "[",
            "]",
            "[3-1]",
            "db=shop,user=app",
            "db=,user=",
            "%",
            "LOG",
            "ERROR",
            "DETAIL",
            "FATAL2",
            "LOGx",
            "Log",
            ":",
            ": ",
            ":  ",
            "-",
            "1",
            "x",
            "[unknown]",
            "=",
            ",",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut decided, mut matched) = (0, 0);
        for _ in 0..4_000 {
            let prefix: String = (0..rng.below(6) + 1)
                .map(|_| escapes[rng.below(escapes.len())])
                .collect();
            // A prefix with %p twice has no regex (and no parser).
            let Ok(re) = crate::postgres::head_regex(&prefix) else {
                continue;
            };
            let m = PrefixMatcher::new(&prefix).unwrap();
            for _ in 0..10 {
                let mut line: String = (0..rng.below(8))
                    .map(|_| pieces[rng.below(pieces.len())])
                    .collect();
                line.push_str(["LOG:  ", "ERROR:  ", ":  ", "X1:  "][rng.below(4)]);
                let want = re.captures(&line).map(|c| {
                    let r = |n: &str| c.name(n).map(|m| (m.start(), m.end()));
                    HeadCaps {
                        pid: r("pid"),
                        db: r("db"),
                        user: r("user"),
                        sev: r("sev").unwrap(),
                    }
                });
                match m.head(line.as_bytes()) {
                    HeadMatch::Unknown => continue,
                    HeadMatch::NoMatch => assert_eq!(want, None, "{prefix:?} {line:?}"),
                    HeadMatch::Match(got) => {
                        matched += 1;
                        assert_eq!(Some(got), want, "{prefix:?} {line:?}");
                    }
                }
                decided += 1;
            }
        }
        assert!(decided > 35_000 && matched > 2_000, "{decided} {matched}");
    }

    #[test]
    fn common_prefixes_read_their_lines() {
        let cases = [
            (
                "%m [%p] ",
                "2024-01-01 10:00:00.123 UTC [42] LOG:  ",
                (Some("42"), None, None, "LOG"),
            ),
            (
                "%m [%p] %q%u@%d ",
                "2024-01-01 10:00:00.123 UTC [42] app@shop LOG:  ",
                (Some("42"), Some("shop"), Some("app"), "LOG"),
            ),
            (
                "%m [%p] %q%u@%d ",
                "2024-01-01 10:00:00.123 UTC [42] LOG:  ",
                (Some("42"), None, None, "LOG"),
            ),
            (
                "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
                "2024-01-01 10:00:00 UTC [42]: [3-1] user=app,db=shop,app=psql,client=10.0.0.1 ERROR:  ",
                (Some("42"), Some("shop"), Some("app"), "ERROR"),
            ),
        ];
        for (prefix, line, (pid, db, user, sev)) in cases {
            let HeadMatch::Match(c) = PrefixMatcher::new(prefix).unwrap().head(line.as_bytes())
            else {
                panic!("{prefix:?} {line:?}");
            };
            let s = |r: Option<(usize, usize)>| r.map(|(a, b)| &line[a..b]);
            assert_eq!(
                (s(c.pid), s(c.db), s(c.user), &line[c.sev.0..c.sev.1]),
                (pid, db, user, sev)
            );
        }
    }
}
