//! Aggregation of slow-query events by (db, fingerprint), bounded, and the
//! series and JSON summary built from it.
//!
//! Bounded: at most `max_classes` classes are tracked; beyond that new
//! fingerprints are folded into the `other` class at once. Only the
//! `top_queries` classes with the most total time over the recent window get
//! their own `fingerprint` label in metrics; the rest are summed into
//! `fingerprint="other"`. Classes changing places never make a series go
//! down (see `Ranked`), so rate() sees no false resets.
//!
//! [`Digest::series`] is what an exporter turns into metric families (the
//! perfwatch sidecar: `perfwatch_slow_query_*`); this crate knows no metric
//! names.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::{Duration, Instant};

use hashbrown::{Equivalent, HashMap};
use serde::Serialize;

use crate::event::SlowEvent;
use crate::fingerprint::{
    digits_cannot_change_class, fingerprint, fingerprint_id, insert_cut, is_plain_string_byte,
    is_s, strings_cannot_change_class,
};
use crate::histogram::{HistogramData, bucket_quantile};
use crate::words;

/// Duration buckets (seconds): the seeds span 13 ms to 165 s.
pub const DURATION_BUCKETS: [f64; 17] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// The label for classes without their own.
pub const OTHER: &str = "other";

/// The text shown for the class of events without statement text (its
/// fingerprint is empty, its id the MD5 of nothing), as pt-query-digest
/// shows it.
pub const NO_QUERY: &str = "/* No query */";

/// Most bytes of fingerprint text kept for the info metric and API.
const MAX_TEXT: usize = 200;
/// Most distinct databases with their own label.
const MAX_DBS: usize = 50;
/// Longest statement kept as a class's example (bytes); a longer one is not
/// kept (an example cut short could not be explained, and would only cost
/// memory: up to this much per tracked class).
pub const MAX_EXAMPLE: usize = 4096;

/// The slowest recent statement of a class, literals and all: kept for
/// `EXPLAIN` and, only where the user opted in, shown (literals can hold
/// personal data, so whether it leaves the process is the caller's call).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The statement as logged (at most [`MAX_EXAMPLE`] bytes).
    pub text: String,
    /// Its execution time, seconds.
    pub seconds: f64,
    /// When it was seen (unix seconds).
    pub at_unix: f64,
}

/// Statistics of one query class.
#[derive(Debug, Clone)]
pub struct Class {
    /// pt-query-digest style id.
    pub id: String,
    /// Fingerprint text, truncated.
    pub text: String,
    /// Events (scaled by sampling).
    pub count: u64,
    /// Total time, seconds.
    pub total: f64,
    /// Longest single execution.
    pub max: f64,
    /// Lock time, seconds.
    pub lock: f64,
    /// Rows examined.
    pub rows_examined: u64,
    /// Rows sent.
    pub rows_sent: u64,
    /// Duration histogram.
    pub hist: HistogramData,
    /// First and last seen (unix seconds).
    pub first_seen: f64,
    /// Last seen (unix seconds).
    pub last_seen: f64,
    /// The slowest statement seen within the ranking window (from a log;
    /// statement statistics have none).
    pub example: Option<Example>,
    /// Recent (time, seconds) for the sliding-window ranking.
    recent: VecDeque<(Instant, f64)>,
    /// Where the last [`Digest::rank`] put the class.
    ranked: Ranked,
}

/// The exported counters of a class (or of several, summed): each only
/// grows from one [`Digest::series`] to the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Counters {
    /// Lock wait, seconds.
    pub lock: f64,
    /// Rows examined.
    pub rows_examined: u64,
    /// Rows sent.
    pub rows_sent: u64,
    /// Execution times, seconds ([`DURATION_BUCKETS`]).
    pub hist: HistogramData,
}

impl Counters {
    fn zero() -> Self {
        Self {
            lock: 0.0,
            rows_examined: 0,
            rows_sent: 0,
            hist: HistogramData::new(&DURATION_BUCKETS),
        }
    }

    fn add(&mut self, o: &Counters) {
        self.lock += o.lock;
        self.rows_examined += o.rows_examined;
        self.rows_sent += o.rows_sent;
        self.hist.merge(&o.hist);
    }

    fn minus(&self, o: &Counters) -> Counters {
        let mut d = self.clone();
        d.lock -= o.lock;
        d.rows_examined -= o.rows_examined;
        d.rows_sent -= o.rows_sent;
        for (a, b) in d.hist.counts.iter_mut().zip(&o.hist.counts) {
            *a -= b;
        }
        d.hist.count -= o.hist.count;
        d.hist.sum -= o.hist.sum;
        d
    }
}

/// A class's place in the exported series. Neither a class's own series nor
/// `other` may ever go down: a counter that drops is a reset to Prometheus,
/// and rate() turns it into a spike. So a class that gets its own label
/// leaves in `other` what `other` already showed of it (its `baseline`) and
/// counts on from there in its own series; one that loses its label goes
/// back to `other` whole, which only makes `other` grow.
#[derive(Debug, Clone)]
enum Ranked {
    /// New since the last ranking (never exported).
    New,
    /// In `other`, with its counters as of the last ranking.
    Other(Counters),
    /// Its own label; `other` keeps `baseline`.
    Own { baseline: Counters },
}

impl Class {
    fn new(id: String, text: String, now_unix: f64) -> Self {
        Self {
            id,
            text,
            count: 0,
            total: 0.0,
            max: 0.0,
            lock: 0.0,
            rows_examined: 0,
            rows_sent: 0,
            hist: HistogramData::new(&DURATION_BUCKETS),
            first_seen: now_unix,
            last_seen: now_unix,
            example: None,
            recent: VecDeque::new(),
            ranked: Ranked::New,
        }
    }

    /// Keeps `e` as the example when it is the slowest within `window`, or
    /// the example kept is older than that ("slowest recent": an example
    /// from before an index was added must not stand for the class forever).
    fn note_example(&mut self, e: &SlowEvent, now_unix: f64, window: Duration) {
        if e.truncated || e.query.len() > MAX_EXAMPLE || e.query.is_empty() {
            return;
        }
        let replace = self
            .example
            .as_ref()
            .is_none_or(|x| e.duration > x.seconds || now_unix - x.at_unix > window.as_secs_f64());
        if replace {
            self.example = Some(Example {
                text: e.query.clone(),
                seconds: e.duration,
                at_unix: now_unix,
            });
        }
    }

    fn counters(&self) -> Counters {
        Counters {
            lock: self.lock,
            rows_examined: self.rows_examined,
            rows_sent: self.rows_sent,
            hist: self.hist.clone(),
        }
    }

    fn window_total(&self) -> f64 {
        self.recent.iter().map(|(_, d)| d).sum()
    }
}

/// The class map's hasher (rustc's FxHash: a multiply and a rotate per 8
/// bytes): a class is looked up for every event, by its fingerprint, and
/// SipHash over it was a visible share of digesting a log. Keys come from
/// logs, so collisions can be forced; the map holds at most `max_classes`
/// entries, which bounds what they cost.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length too: "a" and "a\0" differ.
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// The fingerprints of recently seen statements.
///
/// Statements come again and again with the same shape: applications that
/// send bind parameters (the extended protocol, prepared statements, most
/// ORMs) log the same text to the byte (`SELECT … WHERE id = $1`), others
/// the same text with other numbers and strings. A statement is keyed by
/// its text with what cannot change its class folded: each run of digits
/// to one `0` where digits cannot ([`digits_cannot_change_class`]), and the
/// content of each plain `'…'` string dropped where strings cannot either
/// ([`strings_cannot_change_class`]), an `IN (…)` list of plain integers
/// as one item, a multi-row INSERT up to its first row; any other
/// statement by its exact text. A repeat then costs one pass to build the
/// key, a hash and a compare instead of the fingerprint's passes. On the
/// first 20 MB of the
/// PostgreSQL benchmark's stderr log, 91 % of the statements repeat a key
/// the memo holds.
///
/// Bounded: [`FingerprintMemo::SLOTS`] direct-mapped slots (a key takes
/// the slot of its hash, replacing what was there), keys built for
/// statements of up to [`FingerprintMemo::MAX_STATEMENT`] bytes (a
/// multi-row INSERT's key ends with its first row) and kept when at most
/// [`FingerprintMemo::MAX_KEY`] bytes long, keys and fingerprints together
/// at most [`FingerprintMemo::MAX_BYTES`] (past that a new one is not
/// kept). Keys chosen to collide only miss.
#[derive(Debug, Default)]
struct FingerprintMemo {
    /// Empty until first used; a slot never filled has an empty key, which
    /// no statement's key is.
    slots: Vec<MemoSlot>,
    /// Bytes of the keys and fingerprints held.
    bytes: usize,
    /// The key being built (reused).
    key: Vec<u8>,
}

/// One memo entry: (hash of the key, key, fingerprint).
type MemoSlot = (u64, Box<[u8]>, Box<str>);

impl FingerprintMemo {
    const SLOTS: usize = 1024;
    const MAX_STATEMENT: usize = 16 * 1024;
    const MAX_KEY: usize = 1024;
    const MAX_BYTES: usize = 512 * 1024;

    /// `query`'s fingerprint (as [`fingerprint`] gives it).
    fn fingerprint(&mut self, query: &str) -> Cow<'_, str> {
        // A long IN list folds to a short key: the statement's size is
        // bounded for the work of building it, the key's for keeping it.
        if !memo_key(query.as_bytes(), Self::MAX_STATEMENT, &mut self.key)
            || self.key.len() > Self::MAX_KEY
        {
            self.key.shrink_to(Self::MAX_KEY);
            return Cow::Owned(fingerprint(query));
        }
        if self.slots.is_empty() {
            self.slots.resize_with(Self::SLOTS, Default::default);
        }
        let mut h = FxHasher::default();
        h.write(&self.key);
        let hash = h.finish();
        // FxHash's high bits are its best mixed.
        let slot = &mut self.slots[(hash >> 54) as usize % Self::SLOTS];
        if !(slot.0 == hash && *slot.1 == *self.key) {
            let fp: Box<str> = fingerprint(query).into();
            let held = self.bytes - slot.1.len() - slot.2.len();
            let size = self.key.len() + fp.len();
            if held + size > Self::MAX_BYTES {
                // Full of long statements: this one is not kept.
                return Cow::Owned(fp.into());
            }
            self.bytes = held + size;
            *slot = (hash, self.key.as_slice().into(), fp);
        }
        Cow::Borrowed(&slot.2)
    }
}

/// The memo's key of statement `b`, into `out` (cleared first): its first
/// byte says which kind of key it is, so the kinds never match each other.
/// `false` (and no key) when the part of `b` the key covers is longer than
/// `max`.
fn memo_key(b: &[u8], max: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    if !digits_cannot_change_class(b) {
        if b.len() > max {
            return false;
        }
        out.push(b'=');
        out.extend_from_slice(b);
        return true;
    }
    // Past the checks the digits rule covers (which read the whole text),
    // the fingerprint reads a multi-row INSERT only up to its first row:
    // so does the key.
    let b = &b[..insert_cut(b).unwrap_or(b.len())];
    if b.len() > max {
        return false;
    }
    if !strings_cannot_change_class(b) {
        out.push(b'0');
        fold_digit_runs(b, out);
    } else {
        out.push(b'\'');
        let mut rest = b;
        while let Some(open) = memchr::memchr(b'\'', rest) {
            fold_digit_runs(&rest[..=open], out);
            let Some(len) = memchr::memchr(b'\'', &rest[open + 1..]) else {
                // An unpaired quote: the rest as it is (digits folded).
                rest = &rest[open + 1..];
                break;
            };
            let content = &rest[open + 1..open + 1 + len];
            if !content.iter().all(|&c| is_plain_string_byte(c)) {
                fold_digit_runs(content, out);
            }
            out.push(b'\'');
            rest = &rest[open + 2 + len..];
        }
        fold_digit_runs(rest, out);
    }
    fold_in_lists(out);
    true
}

/// In a key whose digit runs are folded, each `IN (0, 0, …)` (a list of
/// plain integers, after `in` as a whole word) as `IN (0)`: the
/// fingerprint makes any such list `in(?+)`, whatever its length. Where
/// the list sits in a string or a comment, both go whole.
fn fold_in_lists(key: &mut Vec<u8>) {
    let mut from = 0;
    while let Some(at) = memchr::memchr(b'(', &key[from..]) {
        let open = from + at;
        from = open + 1;
        let word_end = key[..open]
            .iter()
            .rposition(|&c| !is_s(c))
            .map_or(0, |i| i + 1);
        if word_end < 3 || !key[word_end - 2..word_end].eq_ignore_ascii_case(b"in") {
            continue;
        }
        // A whole word (the key's first byte is its kind, never part of one).
        let before = key[word_end - 3];
        if before.is_ascii_alphanumeric() || before == b'_' || before >= 0x80 {
            continue;
        }
        let skip = |mut j: usize| {
            while key.get(j).is_some_and(|&c| is_s(c)) {
                j += 1;
            }
            j
        };
        let mut j = skip(open + 1);
        let close = loop {
            if key.get(j) != Some(&b'0') {
                break None;
            }
            j = skip(j + 1);
            match key.get(j) {
                Some(b')') => break Some(j),
                Some(b',') => j = skip(j + 1),
                _ => break None,
            }
        };
        if let Some(close) = close {
            key.splice(open + 1..close, [b'0']);
        }
    }
}

/// Appends `b` to `out` with each run of ASCII digits as one `0`. Eight
/// bytes are read and written at a time (a word without a digit is copied
/// whole; one with a digit up to it), so no copy is a call.
fn fold_digit_runs(b: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    // The folded text is never longer than `b`, and what is written stays
    // behind what is read: every word written fits.
    out.resize(start + b.len(), 0);
    let (mut i, mut w) = (0, start);
    while i + 8 <= b.len() {
        let chunk = words::word(&b[i..]);
        out[w..w + 8].copy_from_slice(&chunk.to_le_bytes());
        let digits = words::digit_bytes(chunk);
        if digits == 0 {
            i += 8;
            w += 8;
            continue;
        }
        let first = digits.trailing_zeros() as usize / 8;
        w += first;
        out[w] = b'0';
        w += 1;
        i = next_non_digit(b, i + first + 1);
    }
    while i < b.len() {
        if b[i].is_ascii_digit() {
            out[w] = b'0';
            i = next_non_digit(b, i + 1);
        } else {
            out[w] = b[i];
            i += 1;
        }
        w += 1;
    }
    out.truncate(w);
}

/// The first index from `i` on whose byte is no digit; `b.len()` if none.
#[inline]
fn next_non_digit(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let others = !words::digit_bytes(words::word(&b[i..])) & words::HIGHS;
        if others != 0 {
            return i + others.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// A class's key, (database, fingerprint), borrowed: the class map is
/// looked up for every event without building the owned key (two
/// allocations an event). Hashes as the owned tuple does (field by field).
#[derive(Hash)]
struct ClassKeyRef<'a>(&'a str, &'a str);

impl Equivalent<(String, String)> for ClassKeyRef<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

impl From<&ClassKeyRef<'_>> for (String, String) {
    fn from(key: &ClassKeyRef<'_>) -> Self {
        (key.0.to_owned(), key.1.to_owned())
    }
}

/// The aggregate of one slow-log source.
#[derive(Debug)]
pub struct Digest {
    classes: HashMap<(String, String), Class, BuildHasherDefault<FxHasher>>,
    memo: FingerprintMemo,
    other: BTreeMap<String, Class>,
    per_db: BTreeMap<String, (u64, u64)>,
    top_queries: usize,
    max_classes: usize,
    window: Duration,
    /// Events seen, scaled by sampling.
    pub events: u64,
    /// Events whose server sampled (Percona rate limit > 1).
    pub sampled_events: u64,
    /// Events whose text was truncated.
    pub truncated_events: u64,
}

impl Digest {
    /// A digest exporting `top_queries` classes by name.
    pub fn new(top_queries: usize, max_classes: usize, window: Duration) -> Self {
        Self {
            classes: HashMap::default(),
            memo: FingerprintMemo::default(),
            other: BTreeMap::new(),
            per_db: BTreeMap::new(),
            top_queries,
            max_classes: max_classes.max(top_queries),
            window,
            events: 0,
            sampled_events: 0,
            truncated_events: 0,
        }
    }

    /// Adds one event.
    pub fn add(&mut self, e: &SlowEvent, now: Instant, now_unix: f64) {
        let weight = u64::from(e.sample_rate.max(1));
        self.events += weight;
        if e.sample_rate > 1 {
            self.sampled_events += 1;
        }
        if e.truncated {
            self.truncated_events += 1;
        }
        let full = if e.full_scan { weight } else { 0 };
        let db = self.count_db(e.db.as_deref().unwrap_or(""), weight, full);
        let window = self.window;
        let class = self.class_mut(db, &e.query, now_unix);
        class.count += weight;
        class.total += e.duration * weight as f64;
        class.max = class.max.max(e.duration);
        class.lock += e.lock_time * weight as f64;
        class.rows_examined += e.rows_examined * weight;
        class.rows_sent += e.rows_sent * weight;
        for _ in 0..weight {
            class.hist.observe(e.duration);
        }
        class.last_seen = now_unix;
        class.note_example(e, now_unix, window);
        note_recent(class, now, e.duration * weight as f64, window);
    }

    /// Adds many executions of one statement at once, from a server's
    /// per-statement statistics (pg_stat_statements,
    /// performance_schema.events_statements_summary_by_digest) rather than
    /// a log: `summary.counters` is the difference between two reads.
    ///
    /// Counts, total time, lock time and rows are exact. The duration
    /// histogram is not: the server keeps no per-execution times, so all
    /// `counters.calls` observations are placed at the mean (`total / calls`) of
    /// this difference; `_count` and `_sum` stay exact, the bucket spread
    /// within one read interval is lost. `counters.max_seconds` is the longest
    /// execution when the server's own maximum grew in this interval,
    /// otherwise a lower bound (the mean).
    pub fn add_summary(&mut self, summary: &StatementSummary<'_>, now: Instant, now_unix: f64) {
        let s = &summary.counters;
        if s.calls == 0 {
            return;
        }
        self.events += s.calls;
        let db = self.count_db(summary.db, s.calls, s.full_scans.min(s.calls));
        let window = self.window;
        let class = self.class_mut(db, summary.query, now_unix);
        let total = s.total_seconds.max(0.0);
        let mean = total / s.calls as f64;
        class.count += s.calls;
        class.total += total;
        class.max = class.max.max(s.max_seconds.max(mean));
        class.lock += s.lock_seconds.max(0.0);
        class.rows_examined += s.rows_examined;
        class.rows_sent += s.rows_sent;
        if let Some(i) = class.hist.bounds.iter().position(|&b| mean <= b) {
            class.hist.counts[i] += s.calls;
        }
        class.hist.count += s.calls;
        class.hist.sum += total;
        class.last_seen = now_unix;
        note_recent(class, now, total, window);
    }

    /// Counts `n` events (`full` of them full scans) for database `db_in`
    /// and returns its label (`other` beyond [`MAX_DBS`]), without
    /// allocating for a database already seen.
    fn count_db<'a>(&mut self, db_in: &'a str, n: u64, full: u64) -> &'a str {
        // A database already seen (nearly every event): one lookup.
        if let Some(entry) = self.per_db.get_mut(db_in) {
            entry.0 += n;
            entry.1 += full;
            return db_in;
        }
        let db = if self.per_db.contains_key(db_in) || self.per_db.len() < MAX_DBS {
            db_in
        } else {
            OTHER
        };
        if !self.per_db.contains_key(db) {
            self.per_db.insert(db.to_owned(), (0, 0));
        }
        if let Some(entry) = self.per_db.get_mut(db) {
            entry.0 += n;
            entry.1 += full;
        }
        db
    }

    /// The class of `query` in `db`: its own while fewer than `max_classes`
    /// exist, else the database's `other`.
    fn class_mut(&mut self, db: &str, query: &str, now_unix: f64) -> &mut Class {
        let fp = self.memo.fingerprint(query);
        let key = ClassKeyRef(db, &fp);
        // One lookup while there is room (the usual case), two when full.
        let tracked = self.classes.len() < self.max_classes || self.classes.contains_key(&key);
        if tracked {
            self.classes.entry_ref(&key).or_insert_with(|| {
                // A byte that is not UTF-8 shows as U+FFFD (the id has it);
                // events without text are named as pt-query-digest does.
                let mut text = if fp.is_empty() {
                    NO_QUERY.to_owned()
                } else {
                    crate::fingerprint::display_text(&fp).into_owned()
                };
                if text.len() > MAX_TEXT {
                    let mut end = MAX_TEXT;
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.truncate(end);
                }
                Class::new(fingerprint_id(&fp), text, now_unix)
            })
        } else {
            self.other
                .entry(db.to_owned())
                .or_insert_with(|| Class::new(OTHER.into(), String::new(), now_unix))
        }
    }

    /// Keys of the classes that get their own label, by window total time.
    fn top_keys(&self) -> Vec<(String, String)> {
        let mut ranked: Vec<(&(String, String), f64)> = self
            .classes
            .iter()
            .map(|(k, c)| (k, c.window_total()))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ranked
            .into_iter()
            .take(self.top_queries)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Picks the classes with their own label, by total time over the
    /// window (see `Ranked`). Call after each batch of events, before
    /// [`Digest::series`].
    pub fn rank(&mut self) {
        let top = self.top_keys();
        for (key, class) in &mut self.classes {
            let own = top.contains(key);
            class.ranked = match (own, std::mem::replace(&mut class.ranked, Ranked::New)) {
                (true, Ranked::Own { baseline }) => Ranked::Own { baseline },
                (true, Ranked::Other(shown)) => Ranked::Own { baseline: shown },
                (true, Ranked::New) => Ranked::Own {
                    baseline: Counters::zero(),
                },
                (false, _) => Ranked::Other(class.counters()),
            };
        }
    }

    /// The exported series as of the last [`Digest::rank`]: the classes
    /// with their own label, and per database `other` and the totals.
    pub fn series(&self) -> Series<'_> {
        let mut other: BTreeMap<&str, Counters> = BTreeMap::new();
        for (db, c) in &self.other {
            other
                .entry(db.as_str())
                .or_insert_with(Counters::zero)
                .add(&c.counters());
        }
        let mut own = Vec::new();
        for (key, class) in &self.classes {
            let o = other.entry(key.0.as_str()).or_insert_with(Counters::zero);
            match &class.ranked {
                Ranked::Own { baseline } => {
                    o.add(baseline);
                    own.push(OwnSeries {
                        db: &key.0,
                        id: &class.id,
                        text: &class.text,
                        counters: class.counters().minus(baseline),
                        key: &key.1,
                    });
                }
                // Not ranked yet (events since the last rank): `other`.
                Ranked::Other(_) | Ranked::New => o.add(&class.counters()),
            }
        }
        own.sort_by(|a, b| (a.db, a.key).cmp(&(b.db, b.key)));
        let databases = self
            .per_db
            .iter()
            .map(|(db, (statements, full_scans))| {
                (
                    db.as_str(),
                    DbTotals {
                        statements: *statements,
                        full_scans: *full_scans,
                    },
                )
            })
            .collect();
        Series {
            own,
            other,
            databases,
        }
    }

    /// The classes beyond `max_classes` (every database's `other`) summed:
    /// (events, total seconds, longest, rows examined).
    pub fn other_totals(&self) -> (u64, f64, f64, u64) {
        self.other
            .values()
            .fold((0, 0.0, 0.0, 0), |(n, t, m, r), c| {
                (n + c.count, t + c.total, m.max(c.max), r + c.rows_examined)
            })
    }

    /// The JSON summary for `/api/slow-queries`; each class's example only
    /// with `with_examples` (see [`Example`]).
    pub fn summary(&self, limit: usize, with_examples: bool) -> Vec<ClassSummary> {
        let mut all: Vec<(&(String, String), &Class)> = self.classes.iter().collect();
        all.sort_by(|a, b| b.1.total.total_cmp(&a.1.total));
        all.into_iter()
            .take(limit)
            .map(|((db, _), c)| ClassSummary {
                fingerprint: c.id.clone(),
                db: db.clone(),
                query: c.text.clone(),
                count: c.count,
                total_seconds: c.total,
                mean_seconds: if c.count > 0 {
                    c.total / c.count as f64
                } else {
                    0.0
                },
                p95_seconds: bucket_quantile(0.95, &c.hist.cumulative()),
                max_seconds: c.max,
                rows_examined: c.rows_examined,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
                example: with_examples
                    .then(|| c.example.as_ref().map(|x| x.text.clone()))
                    .flatten(),
            })
            .collect()
    }

    /// The classes with their own label as of the last [`Digest::rank`],
    /// most window time first, at most `limit`: `(db, class)`. What the
    /// plans are asked for (the classes a user sees by name).
    pub fn top_classes(&self, limit: usize) -> Vec<(&str, &Class)> {
        let mut own: Vec<(&(String, String), &Class)> = self
            .classes
            .iter()
            .filter(|(_, c)| matches!(c.ranked, Ranked::Own { .. }))
            .collect();
        own.sort_by(|a, b| {
            b.1.window_total()
                .total_cmp(&a.1.window_total())
                .then_with(|| a.0.cmp(b.0))
        });
        own.into_iter()
            .take(limit)
            .map(|((db, _), c)| (db.as_str(), c))
            .collect()
    }

    /// The duration histogram of class `id` in database `db` so far (all
    /// its executions, not only those since it got its own label).
    pub fn class_histogram(&self, db: &str, id: &str) -> Option<&HistogramData> {
        self.classes
            .iter()
            .find(|((d, _), c)| d == db && c.id == id)
            .map(|(_, c)| &c.hist)
    }
}

/// Adds `spent` seconds at `now` to the ranking window of `class`: one entry
/// per poll (all events of a poll share `now`), bounded in time and, for a
/// pathological flood of one class, in entries.
fn note_recent(class: &mut Class, now: Instant, spent: f64, window: Duration) {
    match class.recent.back_mut() {
        Some((t, d)) if *t == now => *d += spent,
        _ => class.recent.push_back((now, spent)),
    }
    while class.recent.len() > 10_000
        || class
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > window)
    {
        class.recent.pop_front();
    }
}

/// Executions of one statement between two reads of a server's statement
/// statistics (the input of [`Digest::add_summary`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatementSummary<'a> {
    /// Database (`""` when the server names none).
    pub db: &'a str,
    /// Statement text as the server normalized it (literals masked); it is
    /// fingerprinted like a logged query.
    pub query: &'a str,
    /// What the executions counted.
    pub counters: StatementCounters,
}

/// What a server's statement statistics count for one statement: the
/// cumulative values of one read, or the difference between two reads.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StatementCounters {
    /// Executions.
    pub calls: u64,
    /// Total execution time, seconds.
    pub total_seconds: f64,
    /// Total lock time, seconds (0 where the server does not measure it).
    pub lock_seconds: f64,
    /// Rows examined (0 where the server does not count them).
    pub rows_examined: u64,
    /// Rows returned or affected.
    pub rows_sent: u64,
    /// Executions that scanned a table without an index.
    pub full_scans: u64,
    /// Longest execution, when known; otherwise 0.
    pub max_seconds: f64,
}

/// What a digest exports, as of its last [`Digest::rank`] (see
/// [`Digest::series`]).
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// Classes with their own `fingerprint` label, by (db, fingerprint).
    pub own: Vec<OwnSeries<'a>>,
    /// Per database, every other class summed (`fingerprint="other"`).
    pub other: BTreeMap<&'a str, Counters>,
    /// Per database (`other` beyond 50 databases), by name.
    pub databases: Vec<(&'a str, DbTotals)>,
}

/// A query class with its own label.
#[derive(Debug, Clone)]
pub struct OwnSeries<'a> {
    /// Database (`""` when unknown).
    pub db: &'a str,
    /// pt-query-digest query id (the `fingerprint` label).
    pub id: &'a str,
    /// Fingerprint text (literals masked, truncated to 200 bytes).
    pub text: &'a str,
    /// Its counters since it got its own label (`other` keeps the rest).
    pub counters: Counters,
    /// The full fingerprint (the sort key).
    key: &'a str,
}

/// Statements seen in one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbTotals {
    /// Slow-log events (scaled by sampling) or executions.
    pub statements: u64,
    /// Of those, full table scans.
    pub full_scans: u64,
}

/// One query class in `/api/slow-queries`.
#[derive(Debug, Clone, Serialize)]
pub struct ClassSummary {
    /// Query id.
    pub fingerprint: String,
    /// Database.
    pub db: String,
    /// Fingerprint text (literals masked).
    pub query: String,
    /// Events.
    pub count: u64,
    /// Total time.
    pub total_seconds: f64,
    /// Mean time.
    pub mean_seconds: f64,
    /// p95 from the histogram (bucket-interpolated).
    pub p95_seconds: Option<f64>,
    /// Longest.
    pub max_seconds: f64,
    /// Rows examined.
    pub rows_examined: u64,
    /// First seen, unix seconds.
    pub first_seen: f64,
    /// Last seen, unix seconds.
    pub last_seen: f64,
    /// The slowest recent statement, literals and all: only where the user
    /// opted in (`keep_examples`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_runs_fold_as_a_byte_at_a_time_reading_does() {
        let mut rng = crate::test_rng::Rng(0x0123_4567_89AB_CDEF);
        let alphabet = b"0123456789/:;@ \xffa";
        for _ in 0..5_000 {
            let len = rng.below(40);
            let b = rng.bytes(alphabet, len);
            let mut fast = Vec::new();
            fold_digit_runs(&b, &mut fast);
            let mut slow = Vec::new();
            let mut after = false;
            for &c in &b {
                if !(c.is_ascii_digit() && after) {
                    slow.push(if c.is_ascii_digit() { b'0' } else { c });
                }
                after = c.is_ascii_digit();
            }
            assert_eq!(fast, slow, "{b:?}");
        }
    }

    /// Statements with the same memo key have the same fingerprint: random
    /// statements, and copies with other digit runs, other plain contents
    /// in their strings (drawn from every byte `is_plain_string_byte`
    /// allows), other lengths of their lists of integers and anything
    /// after a multi-row INSERT's first row; where the two keys are equal,
    /// the fingerprints must be. A rule widened past what is sound gives
    /// equal keys to copies with another fingerprint.
    #[test]
    fn statements_with_one_memo_key_have_one_fingerprint() {
        // The fingerprint's own test pieces, and strings of every kind.
        let strings = [
            "'x'",
            "''",
            "'a)b'",
            "'(1, 2)'",
            "'VALUES'",
            "' values (1), (2'",
            "'--'",
            "'#'",
            "'/*'",
            "'\\'",
            "'\"'",
            "'é'",
            "'in (1)'",
            "'limit 1'",
            "E'",
            "$$it's$$",
            " in ('a', 'b')",
            " values (1, 'a'), (2, 'b')",
            " values ('a)', 1), (2, 'b')",
            "INSERT INTO t (a) VALUES ",
            "xin (1, 2)",
            " IN(3,4)",
            "min(5, 6)",
            "=",
            "+",
            "%",
            "@",
            ":",
        ];
        let fragments: Vec<&str> = crate::fingerprint::tests::FRAGMENTS
            .iter()
            .chain(&strings)
            .copied()
            .collect();
        let plain: Vec<u8> = (0..128u8).filter(|&c| is_plain_string_byte(c)).collect();
        // Any parenthesized list of integers, whatever comes before it.
        let list =
            regex::Regex::new(r"\(\s*[0-9]+(?:\s*,\s*[0-9]+)*\s*\)").expect("a valid pattern");
        let mut rng = crate::test_rng::Rng(0x05EE_D0FC_1A55_E5E5);
        // Pairs with one key: all, with string contents varied, with list
        // lengths varied, with a multi-row INSERT's rows varied.
        let (mut same, mut strings, mut lists, mut rows) = (0, 0, 0, 0);
        for _ in 0..40_000 {
            let mut q = String::new();
            if rng.below(4) == 0 {
                q.push_str("INSERT INTO t (a) VALUES ");
            }
            for _ in 0..rng.below(12) + 1 {
                q.push_str(fragments[rng.below(fragments.len())]);
            }
            let b = q.as_bytes();
            // The copy: every digit run another of 1 to 4 digits, every
            // string (paired from the left) of plain bytes another plain one.
            let mut varied = Vec::new();
            let (mut i, mut open, mut varied_strings) = (0, false, false);
            while i < b.len() {
                let c = b[i];
                if c == b'\'' {
                    if !open
                        && let Some(len) = memchr::memchr(b'\'', &b[i + 1..])
                        && b[i + 1..i + 1 + len]
                            .iter()
                            .all(|&c| is_plain_string_byte(c))
                    {
                        varied.push(b'\'');
                        for _ in 0..rng.below(5) {
                            varied.push(plain[rng.below(plain.len())]);
                        }
                        varied.push(b'\'');
                        varied_strings = true;
                        i += len + 2;
                        continue;
                    }
                    open = !open;
                }
                if c.is_ascii_digit() {
                    let run = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                    for _ in 0..rng.below(4) + 1 {
                        varied.push(b'0' + rng.below(10) as u8);
                    }
                    i += run;
                    continue;
                }
                varied.push(c);
                i += 1;
            }
            let varied = String::from_utf8(varied).expect("only ASCII was replaced");
            // Every list of integers another of 1 to 4.
            let mut varied_lists = false;
            let mut varied = list
                .replace_all(&varied, |_: &regex::Captures<'_>| {
                    varied_lists = true;
                    format!("({})", vec!["7"; rng.below(4) + 1].join(", "))
                })
                .into_owned();
            // Anything after a multi-row INSERT's first row.
            let varied_rows = insert_cut(b).is_some();
            if varied_rows {
                for _ in 0..rng.below(3) {
                    varied.push_str(fragments[rng.below(fragments.len())]);
                }
            }
            let (mut k1, mut k2) = (Vec::new(), Vec::new());
            assert!(memo_key(b, usize::MAX, &mut k1));
            assert!(memo_key(varied.as_bytes(), usize::MAX, &mut k2));
            if k1 == k2 {
                assert_eq!(fingerprint(&q), fingerprint(&varied), "{q:?} vs {varied:?}");
                same += 1;
                strings += usize::from(varied_strings);
                lists += usize::from(varied_lists);
                rows += usize::from(varied_rows);
            }
        }
        assert!(
            same > 10_000 && strings > 3_000 && lists > 1_000 && rows > 500,
            "{same} {strings} {lists} {rows}"
        );
    }

    fn ev(q: &str, d: f64) -> SlowEvent {
        SlowEvent {
            db: Some("app".into()),
            user: None,
            duration: d,
            lock_time: 0.0,
            rows_sent: 1,
            rows_examined: 10,
            full_scan: false,
            sample_rate: 1,
            query: q.into(),
            truncated: false,
        }
    }

    /// Rows examined in the series with `fingerprint` label `fp` (every
    /// event of these tests is in database `app`).
    fn rows_examined(s: &Series<'_>, fp: &str) -> Option<f64> {
        let counters = if fp == OTHER {
            s.other.get("app")
        } else {
            s.own.iter().find(|o| o.id == fp).map(|o| &o.counters)
        };
        counters.map(|c| c.rows_examined as f64)
    }

    #[test]
    fn classes_group_by_fingerprint_and_cap_labels() {
        let mut d = Digest::new(2, 100, Duration::from_secs(3600));
        let now = Instant::now();
        for i in 0..5 {
            d.add(
                &ev(&format!("select * from a where id = {i}"), 1.0),
                now,
                0.0,
            );
        }
        for i in 0..3 {
            d.add(
                &ev(&format!("select * from b where id = {i}"), 2.0),
                now,
                0.0,
            );
        }
        d.add(&ev("select * from c", 0.5), now, 0.0);
        d.rank();
        let series = d.series();
        let count = |fp: &str| rows_examined(&series, fp);
        let a = fingerprint_id("select * from a where id = ?");
        let b = fingerprint_id("select * from b where id = ?");
        assert_eq!(count(&a), Some(50.0));
        assert_eq!(count(&b), Some(30.0));
        assert_eq!(
            count(OTHER),
            Some(10.0),
            "the third class is folded into other"
        );
        assert_eq!(
            series.databases,
            [(
                "app",
                DbTotals {
                    statements: 9,
                    full_scans: 0
                }
            )]
        );
        let s = d.summary(10, false);
        assert_eq!(s[0].fingerprint, b, "ordered by total time");
        assert_eq!(
            (s[0].count, s[0].total_seconds, s[0].max_seconds),
            (3, 6.0, 2.0)
        );
    }

    #[test]
    fn the_example_is_the_slowest_recent_statement() {
        let mut d = Digest::new(5, 100, Duration::from_secs(60));
        let now = Instant::now();
        d.add(&ev("select * from t where id = 1", 0.5), now, 1000.0);
        d.add(&ev("select * from t where id = 2", 2.0), now, 1001.0);
        d.add(&ev("select * from t where id = 3", 1.0), now, 1002.0);
        d.rank();
        let example = |d: &Digest| d.top_classes(5)[0].1.example.clone().unwrap();
        assert_eq!(example(&d).text, "select * from t where id = 2");
        // Older than the window: the next statement replaces it, slower or not.
        d.add(&ev("select * from t where id = 4", 0.1), now, 1100.0);
        assert_eq!(example(&d).text, "select * from t where id = 4");
        // Only served when asked for.
        assert_eq!(d.summary(1, false)[0].example, None);
        assert_eq!(
            d.summary(1, true)[0].example.as_deref(),
            Some("select * from t where id = 4")
        );
        // Too long to be planned whole: not kept.
        let long = format!(
            "select * from t where id = 5 /* {} */",
            "x".repeat(MAX_EXAMPLE)
        );
        d.add(&ev(&long, 9.0), now, 1101.0);
        assert_eq!(example(&d).text, "select * from t where id = 4");
    }

    fn letters(mut i: usize) -> String {
        let mut s = String::new();
        loop {
            s.push(char::from(b'a' + (i % 26) as u8));
            i /= 26;
            if i == 0 {
                return s;
            }
        }
    }

    #[test]
    fn tracked_classes_are_bounded() {
        let mut d = Digest::new(5, 20, Duration::from_secs(3600));
        let now = Instant::now();
        for i in 0..10_000 {
            d.add(
                // Letters only: pt-style fingerprints mask digits in names.
                &ev(&format!("select * from t{} where a = 1", letters(i)), 0.1),
                now,
                0.0,
            );
        }
        assert_eq!(d.classes.len(), 20);
        d.rank();
        let series = d.series();
        assert_eq!(
            (series.own.len(), series.other.len()),
            (5, 1),
            "5 top classes + other"
        );
        assert_eq!(d.events, 10_000);
    }

    #[test]
    fn sampling_scales_counts() {
        let mut d = Digest::new(5, 20, Duration::from_secs(3600));
        let mut e = ev("select 1", 1.0);
        e.sample_rate = 4;
        d.add(&e, Instant::now(), 0.0);
        assert_eq!((d.events, d.sampled_events), (4, 1));
    }

    #[test]
    fn summaries_feed_the_same_classes_with_exact_count_and_sum() {
        let mut d = Digest::new(5, 20, Duration::from_secs(3600));
        let now = Instant::now();
        d.add(&ev("select * from a where id = 7", 0.5), now, 0.0);
        let counters = StatementCounters {
            calls: 4,
            total_seconds: 0.2,
            lock_seconds: 0.01,
            rows_examined: 40,
            rows_sent: 4,
            full_scans: 1,
            max_seconds: 0.0,
        };
        let s = StatementSummary {
            db: "app",
            query: "SELECT * FROM a WHERE id = ?",
            counters,
        };
        d.add_summary(&s, now, 0.0);
        let none = StatementCounters {
            calls: 0,
            ..counters
        };
        d.add_summary(
            &StatementSummary {
                counters: none,
                ..s
            },
            now,
            0.0,
        );
        let c = &d.classes[&("app".to_owned(), "select * from a where id = ?".to_owned())];
        assert_eq!((c.count, c.hist.count), (5, 5));
        assert!((c.total - 0.7).abs() < 1e-12 && (c.hist.sum - 0.7).abs() < 1e-12);
        // The 4 calls sit at their mean (50 ms), the logged one at 500 ms.
        let at =
            |bound: f64| c.hist.counts[c.hist.bounds.iter().position(|b| *b == bound).unwrap()];
        assert_eq!((at(0.05), at(0.5)), (4, 1));
        assert_eq!(c.max, 0.5);
        assert_eq!(d.per_db["app"], (5, 1));
        assert_eq!(d.events, 5);
    }

    #[test]
    fn series_never_go_down_when_classes_change_places() {
        // One label: "a" leads, then "b" overtakes it, then "a" again.
        let mut d = Digest::new(1, 100, Duration::from_secs(3600));
        let now = Instant::now();
        let (a, b) = (
            fingerprint_id("select * from a where id = ?"),
            fingerprint_id("select * from b where id = ?"),
        );
        // (class, events, hours later): b's early 50 leave the window with
        // b's next events, so "a" then leads with less in total; when b
        // takes over again, `other` must keep the 52 it already showed of b.
        let rounds: [(&str, usize, u64); 6] = [
            ("b", 50, 0),
            ("a", 5, 2),
            ("b", 2, 2),
            ("b", 10, 2),
            ("a", 20, 2),
            ("b", 1, 2),
        ];
        let mut last: BTreeMap<String, f64> = BTreeMap::new();
        let mut owners = Vec::new();
        let mut events = 0.0;
        for (table, n, hours) in rounds {
            for i in 0..n {
                d.add(
                    &ev(&format!("select * from {table} where id = {i}"), 1.0),
                    now + Duration::from_secs(3600 * hours),
                    0.0,
                );
            }
            events += 10.0 * n as f64; // rows examined: 10 per event
            d.rank();
            let series = d.series();
            let count = |fp: &str| rows_examined(&series, fp);
            let mut sum = 0.0;
            let mut now_shown = BTreeMap::new();
            for fp in [a.as_str(), b.as_str(), OTHER] {
                let Some(v) = count(fp) else { continue };
                sum += v;
                // A series shown in consecutive exports never goes down
                // (one that went away and came back is a new series).
                if let Some(prev) = last.get(fp) {
                    assert!(v >= *prev, "{fp}: {prev} -> {v}");
                }
                now_shown.insert(fp.to_owned(), v);
            }
            last = now_shown;
            assert_eq!(sum, events, "every row is in exactly one series");
            let own: Vec<_> = [&a, &b]
                .into_iter()
                .filter(|fp| count(fp).is_some())
                .cloned()
                .collect();
            assert_eq!(own.len(), 1, "one class with its own label");
            owners.push(own[0].clone());
        }
        assert_eq!(
            owners,
            [b.clone(), b.clone(), a.clone(), b.clone(), a.clone(), a],
            "who leads"
        );
    }
}
