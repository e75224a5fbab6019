//! Key checks: redis_exporter's `-check-single-keys` and `-check-keys`, the
//! length (`redis_key_size`) and numeric value (`redis_key_value`) of keys
//! the config names or its patterns match.
//!
//! Why: a background-job queue is a Redis list (Celery's default queue is
//! the list `celery`); its length is the queue depth, the first sign of jobs
//! falling behind. redis_exporter finds pattern matches with a complete
//! SCAN on every scrape and checks every key it finds; here each pattern's
//! SCAN resumes from its cursor within a per-poll budget
//! (`max_scan_per_poll`), and at most `max_keys` keys are checked per poll,
//! the rest counted in `perfwatch_redis_key_checks_over_limit`. Keys in
//! another database than the url's are reached with `SELECT` in the same
//! pipeline, which ends with a `SELECT` back.
//!
//! Commands per poll: one pipelined `TYPE` per key, then one pipeline of
//! `LLEN`/`SCARD`/`ZCARD`/`HLEN`/`XLEN`, and for strings `STRLEN` plus
//! `GETRANGE key 0 127` (the value of a number, never a whole large
//! string); a string starting with `HYLL` is a HyperLogLog and gets a
//! `PFCOUNT` (a third round trip, only then). redis_exporter tries
//! `PFCOUNT` on every string and `GET` on every key, which leaves
//! `WRONGTYPE` errors in the server's errorstats; these commands do not.

use std::collections::BTreeSet;

use redis::aio::MultiplexedConnection;
use redis::{Pipeline, RedisError, Value};

use super::catalog;
use super::config::KeyChecksConfig;
use super::connection::ReplyBudget;
use super::keys::OwnLookups;
use crate::exposition::Families;

/// Bytes of a string read to find a number in it: longer strings are not
/// numbers anyone writes (`-1.7976931348623157e308` is 24 bytes).
const VALUE_PREFIX_BYTES: usize = 128;

/// A `keys` or `patterns` entry: `db3=name` for database 3, or a bare name
/// for the url's database. Only a `db<digits>=` prefix is taken as a
/// database, so a key containing `=` needs no escaping (a key that itself
/// starts with `db<N>=` is written with a prefix: `db0=db5=x`).
pub(crate) fn parse_entry(entry: &str) -> (Option<i64>, &str) {
    if let Some((db, key)) = entry.split_once('=')
        && let Some(index) = db.strip_prefix("db")
        && !index.is_empty()
        && index.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = index.parse::<i64>()
    {
        return (Some(n), key);
    }
    (None, entry)
}

/// One pattern's incremental SCAN.
#[derive(Debug)]
struct PatternScan {
    db: i64,
    pattern: String,
    cursor: u64,
    /// Matches of the running cycle (at most `max_keys`).
    current: BTreeSet<String>,
    /// Matches of the running cycle not kept because of `max_keys`.
    current_over: u64,
    /// The last complete cycle's matches and how many were not kept.
    complete: Option<(BTreeSet<String>, u64)>,
}

impl PatternScan {
    /// The matches to check, and how many matches were not kept: the last
    /// complete cycle's (a key created since shows when the running cycle
    /// completes, a deleted one is gone then), or before the first cycle
    /// completes the running one's so far.
    fn matches(&self) -> (BTreeSet<&str>, u64) {
        let (keys, over) = match &self.complete {
            Some((done, over)) => (done, *over),
            None => (&self.current, self.current_over),
        };
        (keys.iter().map(String::as_str).collect(), over)
    }

    /// Records one SCAN batch, keeping at most `max_keys` matches (the
    /// smallest names, so the kept set does not depend on SCAN order).
    fn record(&mut self, keys: Vec<String>, max_keys: usize) {
        for k in keys {
            self.current.insert(k);
            if self.current.len() > max_keys {
                self.current.pop_last();
                // SCAN may return a key twice during a rehash: this can
                // overcount, never undercount.
                self.current_over += 1;
            }
        }
    }
}

/// The result of checking one key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checked {
    /// The database index.
    pub db: i64,
    /// The key.
    pub key: String,
    /// Its length (0 for a named key that does not exist).
    pub size: f64,
    /// Its value, for a string holding a number.
    pub value: Option<f64>,
}

/// What the size of a key of `key_type` is read with; None for `none` and
/// types redis_exporter does not size either (module types).
fn size_command(key_type: &str) -> Option<&'static str> {
    Some(match key_type {
        "list" => "LLEN",
        "set" => "SCARD",
        "zset" => "ZCARD",
        "hash" => "HLEN",
        "stream" => "XLEN",
        "string" => "STRLEN",
        _ => return None,
    })
}

/// A number as redis_exporter reads it from a string value (Go's
/// `ParseFloat`); infinities and NaN are left out.
pub(crate) fn numeric_value(bytes: &[u8]) -> Option<f64> {
    std::str::from_utf8(bytes)
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::SimpleString(s) => Some(s),
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

/// The key checks of one target, across polls.
#[derive(Debug)]
pub struct KeyChecker {
    cfg: KeyChecksConfig,
    url_db: i64,
    exact: Vec<(i64, String)>,
    patterns: Vec<PatternScan>,
    /// Which pattern scans first this poll: turns rotate, so one large
    /// database cannot take every poll's budget.
    turn: usize,
    last: Vec<Checked>,
    over_limit: u64,
    errors: u64,
}

impl KeyChecker {
    /// Checks of `cfg` (validated) on a connection to database `url_db`.
    pub fn new(cfg: KeyChecksConfig, url_db: i64) -> Self {
        let mut exact: Vec<(i64, String)> = Vec::new();
        for entry in &cfg.keys {
            let (db, key) = parse_entry(entry);
            let k = (db.unwrap_or(url_db), key.to_owned());
            if !exact.contains(&k) {
                exact.push(k);
            }
        }
        let patterns = cfg
            .patterns
            .iter()
            .map(|entry| {
                let (db, pattern) = parse_entry(entry);
                PatternScan {
                    db: db.unwrap_or(url_db),
                    pattern: pattern.to_owned(),
                    cursor: 0,
                    current: BTreeSet::new(),
                    current_over: 0,
                    complete: None,
                }
            })
            .collect();
        Self {
            cfg,
            url_db,
            exact,
            patterns,
            turn: 0,
            last: Vec::new(),
            over_limit: 0,
            errors: 0,
        }
    }

    /// Starts every pattern's SCAN again (after a reconnect the cursor may
    /// belong to a server that restarted).
    pub fn restart(&mut self) {
        for p in &mut self.patterns {
            p.cursor = 0;
            p.current.clear();
            p.current_over = 0;
        }
    }

    /// Runs `build`'s commands in database `db`: with `SELECT db` first and
    /// `SELECT url_db` last when `db` is another. Their replies, and false
    /// when the first `SELECT` failed: the commands then ran in the url's
    /// database, so the replies are not about `db`. An error when the
    /// `SELECT` back failed, since the connection is then in an unknown
    /// database and must be dropped.
    async fn in_db(
        &self,
        conn: &mut MultiplexedConnection,
        db: i64,
        build: impl FnOnce(&mut Pipeline),
    ) -> redis::RedisResult<(bool, Vec<Value>)> {
        let switch = db != self.url_db;
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        if switch {
            pipe.cmd("SELECT").arg(db);
        }
        build(&mut pipe);
        if switch {
            pipe.cmd("SELECT").arg(self.url_db);
        }
        let mut replies: Vec<Value> = pipe.query_async(conn).await?;
        if !switch {
            return Ok((true, replies));
        }
        if let Some(Value::ServerError(e)) = replies.pop() {
            return Err(RedisError::from(e.clone()));
        }
        let selected = !replies.is_empty() && !matches!(replies.remove(0), Value::ServerError(_));
        Ok((selected, replies))
    }

    /// Advances the pattern SCANs within the budgets, then checks the keys.
    /// Returns the keyspace lookups the checks caused (Redis counts `TYPE`
    /// and the size commands as hits or misses), which the hit ratio leaves
    /// out.
    pub async fn step(
        &mut self,
        conn: &mut MultiplexedConnection,
        bytes: &ReplyBudget,
    ) -> redis::RedisResult<OwnLookups> {
        self.scan(conn, bytes).await?;
        let (keys, over) = self.keys_to_check();
        self.over_limit = over;
        let mut own = OwnLookups::default();
        let mut checked = Vec::new();
        let dbs: BTreeSet<i64> = keys.iter().map(|(db, _, _)| *db).collect();
        for db in dbs {
            let in_db: Vec<(&str, bool)> = keys
                .iter()
                .filter(|(d, _, _)| *d == db)
                .map(|(_, k, named)| (k.as_str(), *named))
                .collect();
            self.check_db(conn, db, &in_db, &mut checked, &mut own)
                .await?;
        }
        self.last = checked;
        Ok(own)
    }

    /// One step of every pattern's SCAN, pattern by pattern from this
    /// poll's turn, until `max_scan_per_poll` keys were asked for or half
    /// of the poll's byte budget is spent. A pattern finishing its cycle
    /// waits for the next poll to start another.
    async fn scan(
        &mut self,
        conn: &mut MultiplexedConnection,
        bytes: &ReplyBudget,
    ) -> redis::RedisResult<()> {
        let n = self.patterns.len();
        if n == 0 {
            return Ok(());
        }
        let first = self.turn % n;
        self.turn = self.turn.wrapping_add(1);
        let mut asked = 0usize;
        for i in (0..n).map(|i| (first + i) % n) {
            loop {
                if asked >= self.cfg.max_scan_per_poll || bytes.used() >= bytes.limit() / 2 {
                    return Ok(());
                }
                let count = self
                    .cfg
                    .scan_count
                    .min(self.cfg.max_scan_per_poll - asked)
                    .max(1);
                asked += count;
                let p = &self.patterns[i];
                let (db, cursor, pattern) = (p.db, p.cursor, p.pattern.clone());
                let replies = self
                    .in_db(conn, db, |pipe| {
                        pipe.cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(count);
                    })
                    .await?;
                let (selected, replies) = replies;
                let batch = replies
                    .into_iter()
                    .next()
                    .filter(|_| selected)
                    .and_then(|v| redis::from_redis_value::<(u64, Vec<String>)>(v).ok());
                let Some((next, keys)) = batch else {
                    self.errors += 1;
                    break;
                };
                let max_keys = self.cfg.max_keys;
                let p = &mut self.patterns[i];
                p.record(keys, max_keys);
                p.cursor = next;
                if next == 0 {
                    let done = std::mem::take(&mut p.current);
                    p.complete = Some((done, std::mem::take(&mut p.current_over)));
                    break;
                }
            }
        }
        Ok(())
    }

    /// The keys to check this poll, `(db, key, named)`: the named keys in
    /// config order, then pattern matches by database and name, without
    /// repeats, at most `max_keys`; and how many were left out.
    fn keys_to_check(&self) -> (Vec<(i64, String, bool)>, u64) {
        let mut seen: BTreeSet<(i64, &str)> = BTreeSet::new();
        let mut all: Vec<(i64, String, bool)> = Vec::new();
        let mut over = 0u64;
        for (db, key) in &self.exact {
            if seen.insert((*db, key)) {
                all.push((*db, key.clone(), true));
            }
        }
        let mut matched: BTreeSet<(i64, &str)> = BTreeSet::new();
        for p in &self.patterns {
            let (keys, not_kept) = p.matches();
            over += not_kept;
            matched.extend(keys.into_iter().map(|k| (p.db, k)));
        }
        for (db, key) in matched {
            if seen.insert((db, key)) {
                all.push((db, key.to_owned(), false));
            }
        }
        if all.len() > self.cfg.max_keys {
            over += (all.len() - self.cfg.max_keys) as u64;
            all.truncate(self.cfg.max_keys);
        }
        (all, over)
    }

    async fn check_db(
        &mut self,
        conn: &mut MultiplexedConnection,
        db: i64,
        keys: &[(&str, bool)],
        checked: &mut Vec<Checked>,
        own: &mut OwnLookups,
    ) -> redis::RedisResult<()> {
        let (selected, types) = self
            .in_db(conn, db, |pipe| {
                for (k, _) in keys {
                    pipe.cmd("TYPE").arg(*k);
                }
            })
            .await?;
        if !selected {
            // The TYPEs ran in the url's database: still lookups to leave
            // out of the hit ratio.
            for t in &types {
                match text(t) {
                    Some("none") => own.misses += 1,
                    Some(_) => own.hits += 1,
                    None => {}
                }
            }
            self.errors += keys.len() as u64;
            return Ok(());
        }
        // (key, named, type) of the keys that exist, or are named.
        let mut sized: Vec<(&str, &str)> = Vec::new();
        for ((key, named), t) in keys.iter().zip(&types) {
            match text(t) {
                Some("none") => {
                    own.misses += 1;
                    // A named key that does not exist is 0, as in
                    // redis_exporter (an empty queue is deleted by Redis).
                    if *named {
                        checked.push(Checked {
                            db,
                            key: (*key).to_owned(),
                            size: 0.0,
                            value: None,
                        });
                    }
                }
                Some(t) => {
                    own.hits += 1;
                    if let Some(cmd) = size_command(t) {
                        sized.push((key, cmd));
                    }
                }
                None => self.errors += 1,
            }
        }
        if sized.is_empty() {
            return Ok(());
        }
        let (selected, replies) = self
            .in_db(conn, db, |pipe| {
                for (k, cmd) in &sized {
                    pipe.cmd(cmd).arg(*k);
                    if *cmd == "STRLEN" {
                        pipe.cmd("GETRANGE")
                            .arg(*k)
                            .arg(0)
                            .arg(VALUE_PREFIX_BYTES - 1);
                    }
                }
            })
            .await?;
        if !selected {
            self.errors += sized.len() as u64;
            return Ok(());
        }
        let mut replies = replies.iter();
        let mut hll: Vec<usize> = Vec::new();
        for (key, cmd) in &sized {
            let size = replies.next().and_then(int);
            own.hits += 1;
            let mut value = None;
            if *cmd == "STRLEN" {
                own.hits += 1;
                let head = match replies.next() {
                    Some(Value::BulkString(b)) => b.as_slice(),
                    _ => &[],
                };
                if head.starts_with(b"HYLL") {
                    hll.push(checked.len());
                } else if size.is_some_and(|n| n as usize <= VALUE_PREFIX_BYTES) {
                    value = numeric_value(head);
                }
            }
            match size {
                Some(n) => checked.push(Checked {
                    db,
                    key: (*key).to_owned(),
                    size: n as f64,
                    value,
                }),
                None => self.errors += 1,
            }
        }
        if hll.is_empty() {
            return Ok(());
        }
        // HyperLogLogs: the size is the estimated cardinality.
        let names: Vec<String> = hll.iter().map(|&i| checked[i].key.clone()).collect();
        let (selected, counts) = self
            .in_db(conn, db, |pipe| {
                for k in &names {
                    pipe.cmd("PFCOUNT").arg(k);
                }
            })
            .await?;
        let counts = if selected { counts } else { Vec::new() };
        for (n, &i) in hll.iter().enumerate() {
            own.hits += 1;
            match counts.get(n).and_then(int) {
                Some(c) => checked[i].size = c as f64,
                None => self.errors += 1,
            }
        }
        Ok(())
    }

    /// Exports the last poll's checks.
    pub fn export(&self, out: &mut Families, target: &str) {
        for c in &self.last {
            let db = format!("db{}", c.db);
            let l = [
                ("target", target),
                ("db", db.as_str()),
                ("key", c.key.as_str()),
            ];
            out.gauge(&catalog::KEY_SIZE, &l, c.size);
            if let Some(v) = c.value {
                out.gauge(&catalog::KEY_VALUE, &l, v);
            }
        }
        let t = [("target", target)];
        out.gauge(&catalog::KEY_CHECKS_OVER_LIMIT, &t, self.over_limit as f64);
        out.counter(&catalog::KEY_CHECK_ERRORS_TOTAL, &t, self.errors as f64);
        for p in &self.patterns {
            let db = format!("db{}", p.db);
            out.gauge(
                &catalog::KEY_CHECK_PATTERN_COMPLETE,
                &[
                    ("target", target),
                    ("db", db.as_str()),
                    ("pattern", p.pattern.as_str()),
                ],
                f64::from(u8::from(p.complete.is_some())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(keys: &[&str], patterns: &[&str], max_keys: usize) -> KeyChecksConfig {
        KeyChecksConfig {
            keys: keys.iter().map(|s| s.to_string()).collect(),
            patterns: patterns.iter().map(|s| s.to_string()).collect(),
            max_keys,
            scan_count: 100,
            max_scan_per_poll: 1000,
        }
    }

    #[test]
    fn entries_name_a_database_only_with_a_db_prefix() {
        let cases: &[(&str, Option<i64>, &str)] = &[
            ("celery", None, "celery"),
            ("db3=jobs", Some(3), "jobs"),
            ("db0=db5=x", Some(0), "db5=x"),
            ("a=b", None, "a=b"),
            ("db=x", None, "db=x"),
            ("dbx=1", None, "dbx=1"),
            ("db12=queue:*", Some(12), "queue:*"),
        ];
        for (entry, db, key) in cases {
            assert_eq!(parse_entry(entry), (*db, *key), "{entry}");
        }
    }

    #[test]
    fn numbers_are_finite_decimal_text() {
        let cases: &[(&[u8], Option<f64>)] = &[
            (b"42", Some(42.0)),
            (b"-3.5", Some(-3.5)),
            (b"1e3", Some(1000.0)),
            (b"hello", None),
            (b" 42", None),
            (b"inf", None),
            (b"NaN", None),
            (b"", None),
            (b"\xff\x00", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(numeric_value(bytes), *want, "{bytes:?}");
        }
    }

    #[test]
    fn sizes_by_type() {
        for (t, want) in [
            ("list", Some("LLEN")),
            ("set", Some("SCARD")),
            ("zset", Some("ZCARD")),
            ("hash", Some("HLEN")),
            ("stream", Some("XLEN")),
            ("string", Some("STRLEN")),
            ("none", None),
            ("ReJSON-RL", None),
        ] {
            assert_eq!(size_command(t), want, "{t}");
        }
    }

    #[test]
    fn named_keys_first_then_matches_capped_at_max_keys_and_counted() {
        let mut c = KeyChecker::new(cfg(&["b", "db1=q", "b"], &["x*", "db1=y*"], 4), 0);
        c.patterns[0].record(vec!["x2".into(), "x1".into(), "b".into()], 4);
        c.patterns[1].record(vec!["y1".into()], 4);
        let (keys, over) = c.keys_to_check();
        let got: Vec<(i64, &str, bool)> =
            keys.iter().map(|(d, k, n)| (*d, k.as_str(), *n)).collect();
        // "b" once (named wins), matches by (db, key); 6 distinct, 4 kept.
        assert_eq!(
            got,
            vec![
                (0, "b", true),
                (1, "q", true),
                (0, "x1", false),
                (0, "x2", false)
            ]
        );
        assert_eq!(over, 1, "y1 in db1 is left out and counted");
    }

    #[test]
    fn a_pattern_keeps_at_most_max_keys_matches_and_counts_the_rest() {
        let mut c = KeyChecker::new(cfg(&[], &["k*"], 2), 0);
        let p = &mut c.patterns[0];
        p.record(vec!["k3".into(), "k1".into(), "k2".into()], 2);
        assert_eq!(
            p.current.iter().map(String::as_str).collect::<Vec<_>>(),
            ["k1", "k2"]
        );
        assert_eq!(p.current_over, 1);
        let (keys, over) = p.matches();
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(over, 1, "before the first complete cycle: the partial one");
        // A complete cycle is what is checked while the next one runs.
        p.complete = Some((std::mem::take(&mut p.current), 1));
        p.current_over = 0;
        p.record(vec!["k0".into()], 2);
        let (keys, over) = p.matches();
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(over, 1);
    }
}
