//! Per-statement statistics as a slow-query source without a log file, the
//! part shared by PostgreSQL's `pg_stat_statements`
//! (`collectors::postgres::statements`) and MySQL's
//! `performance_schema.events_statements_summary_by_digest`
//! (`collectors::mysql::statements`): config, delta computation, the
//! source's state and export.
//!
//! The server keeps cumulative counters per statement. Each read fetches the
//! top `max_rows` by total time; the first read is only a baseline (history
//! from before perfwatch started is not reported as new executions), later
//! reads feed the difference per statement into the same [`Digest`] the
//! slow-log collector uses, so the `perfwatch_slow_query_*` families, their
//! labels, buckets, top-N + `other` and the `/api/slow-queries` JSON are the
//! same whichever the source. See [`Digest::add_summary`] for what the
//! histogram can and cannot say from aggregates. The families, this
//! module's own included (`perfwatch_slow_query_source_*`), are declared in
//! `collectors::slowlog::catalog`.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use serde::Deserialize;

use perfwatch_slowlog::{Digest, StatementSummary};

use crate::collectors::slowlog::config::{
    default_max_classes, default_rank_window, default_top_queries,
};
use crate::collectors::slowlog::{catalog, export};
use crate::exposition::Families;

/// `[postgres.statements]` / `[mysql.statements]`: read the server's
/// per-statement statistics as a slow-query source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementsConfig {
    /// Off switch that keeps the table (default on when the table exists).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Query classes with their own `fingerprint` label; the rest are `other`.
    #[serde(default = "default_top_queries")]
    pub top_queries: usize,
    /// Query classes tracked at most (memory bound).
    #[serde(default = "default_max_classes")]
    pub max_classes: usize,
    /// Window over which classes are ranked by total time.
    #[serde(default = "default_rank_window", with = "humantime_serde")]
    pub rank_window: Duration,
    /// Rows read per read (the statement's `LIMIT`, most total time first).
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Read less often than the target's poll (the last result is
    /// re-exported in between); default: every poll.
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
}

fn default_enabled() -> bool {
    true
}
fn default_max_rows() -> usize {
    500
}

impl StatementsConfig {
    /// Checks; keys are relative to the target's table (`statements.…`).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        for (key, v) in [
            ("top_queries", self.top_queries),
            ("max_classes", self.max_classes),
            ("max_rows", self.max_rows),
        ] {
            if v == 0 {
                errors.push((
                    format!("statements.{key}"),
                    format!("statements.{key} must be at least 1, got 0"),
                ));
            }
        }
        if self.max_rows > 100_000 {
            errors.push((
                "statements.max_rows".into(),
                format!(
                    "statements.max_rows must be at most 100000, got {}",
                    self.max_rows
                ),
            ));
        }
        if self.top_queries > self.max_classes {
            errors.push((
                "statements.top_queries".into(),
                format!(
                    "statements.top_queries ({}) must not exceed statements.max_classes ({})",
                    self.top_queries, self.max_classes
                ),
            ));
        }
        if self.rank_window.is_zero() {
            errors.push((
                "statements.rank_window".into(),
                "statements.rank_window must be longer than 0s".into(),
            ));
        }
        if self.interval.is_some_and(|i| i.is_zero()) {
            errors.push((
                "statements.interval".into(),
                "statements.interval must be longer than 0s".into(),
            ));
        }
        errors
    }
}

/// Cumulative counters of one statement as the server reports them (the
/// digest's own type: a difference of two readings is what it adds).
pub use perfwatch_slowlog::StatementCounters as Counters;

/// One statement row of a read.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementRow<K> {
    /// The server's identity of the statement (e.g. user, db, queryid).
    pub key: K,
    /// Database name (`""` when none).
    pub db: String,
    /// Normalized statement text, ready for `fingerprint()`.
    pub query: String,
    /// Cumulative counters.
    pub counters: Counters,
    /// Seconds since the server created this row, when it says so
    /// (performance_schema's FIRST_SEEN).
    pub age_seconds: Option<f64>,
}

/// One read of the statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementRead<K> {
    /// The rows (at most `max_rows`, most total time first).
    pub rows: Vec<StatementRow<K>>,
    /// The read hit its `LIMIT`: statements beyond it were not seen.
    pub full: bool,
    /// When the server last reset all statistics (pg_stat_statements_info),
    /// when it says so.
    pub reset_epoch: Option<f64>,
}

/// How soon a missing source (no extension, performance_schema off) is
/// read again.
const RETRY_MISSING: Duration = Duration::from_secs(60);

/// Slack for `age_seconds` (FIRST_SEEN has one-second resolution, and the
/// server's clock and our interval are measured at slightly different
/// moments): a row counts as created since the previous read only when it is
/// clearly younger than the interval.
const AGE_SLACK_SECONDS: f64 = 1.0;

/// The difference between two cumulative readings of one statement (pure).
///
/// * no previous reading: `count_new` decides: the current values (a
///   statement that appeared since the previous read) or nothing (a
///   baseline);
/// * the same number of calls: nothing (no execution in between);
/// * fewer calls or less time than before: the statistics were reset or the
///   entry evicted and re-added, so everything it holds now is new: the
///   current values (never a negative delta);
/// * otherwise the difference; the maximum is exact when the server's
///   maximum grew in between, else 0 (unknown; the mean is the lower bound).
pub fn counters_delta(
    prev: Option<&Counters>,
    cur: &Counters,
    count_new: bool,
) -> Option<Counters> {
    let Some(p) = prev else {
        return (count_new && cur.calls > 0).then_some(*cur);
    };
    if cur.calls == p.calls {
        return None;
    }
    let went_down = cur.calls < p.calls
        || cur.total_seconds < p.total_seconds
        || cur.lock_seconds < p.lock_seconds
        || cur.rows_examined < p.rows_examined
        || cur.rows_sent < p.rows_sent
        || cur.full_scans < p.full_scans;
    if went_down {
        return Some(*cur);
    }
    Some(Counters {
        calls: cur.calls - p.calls,
        total_seconds: cur.total_seconds - p.total_seconds,
        lock_seconds: cur.lock_seconds - p.lock_seconds,
        rows_examined: cur.rows_examined - p.rows_examined,
        rows_sent: cur.rows_sent - p.rows_sent,
        full_scans: cur.full_scans - p.full_scans,
        max_seconds: if cur.max_seconds > p.max_seconds {
            cur.max_seconds
        } else {
            0.0
        },
    })
}

/// The previous read's counters per statement key: only the keys of the last
/// read are kept, so memory is bounded by `max_rows`.
#[derive(Debug)]
pub struct StatementDeltas<K> {
    prev: Option<HashMap<K, Counters>>,
    prev_full: bool,
    prev_reset_epoch: Option<f64>,
}

impl<K> Default for StatementDeltas<K> {
    fn default() -> Self {
        Self {
            prev: None,
            prev_full: false,
            prev_reset_epoch: None,
        }
    }
}

impl<K: Eq + Hash + Clone> StatementDeltas<K> {
    /// Takes a read made `since_prev` after the previous one and returns the
    /// rows that executed in between with their deltas (pure; the first read
    /// returns nothing).
    ///
    /// A statement not in the previous read counts in full when it cannot
    /// have been hidden from it: the previous read did not hit its `LIMIT`,
    /// or the server says the row is younger than the interval. Otherwise
    /// (it may merely have climbed into the top `max_rows`) its counters
    /// become a baseline, so its history is never reported as a burst.
    pub fn update(
        &mut self,
        read: StatementRead<K>,
        since_prev: Duration,
    ) -> Vec<(StatementRow<K>, Counters)> {
        let mut out = Vec::new();
        let mut next = HashMap::with_capacity(read.rows.len());
        let all_reset = matches!(
            (self.prev_reset_epoch, read.reset_epoch),
            (Some(a), Some(b)) if a != b
        );
        if let Some(prev) = &self.prev {
            for row in read.rows {
                let young = row
                    .age_seconds
                    .is_some_and(|a| a + AGE_SLACK_SECONDS < since_prev.as_secs_f64());
                let delta = if all_reset || young {
                    counters_delta(None, &row.counters, true)
                } else {
                    counters_delta(prev.get(&row.key), &row.counters, !self.prev_full)
                };
                next.insert(row.key.clone(), row.counters);
                if let Some(d) = delta {
                    out.push((row, d));
                }
            }
        } else {
            for row in read.rows {
                next.insert(row.key, row.counters);
            }
        }
        self.prev = Some(next);
        self.prev_full = read.full;
        self.prev_reset_epoch = read.reset_epoch;
        out
    }

    /// Keys remembered from the last read.
    pub fn len(&self) -> usize {
        self.prev.as_ref().map_or(0, HashMap::len)
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A statement-statistics source inside a database collector: its digest,
/// delta state, schedule and health.
#[derive(Debug)]
pub struct StatementSource<K> {
    /// The settings.
    pub cfg: StatementsConfig,
    /// `pg_stat_statements` or `performance_schema` (the `source` label).
    pub source: &'static str,
    digest: Digest,
    deltas: StatementDeltas<K>,
    last_attempt: Option<Instant>,
    last_read: Option<Instant>,
    /// The last read worked (None before the first attempt).
    up: Option<bool>,
    reads: u64,
}

impl<K: Eq + Hash + Clone> StatementSource<K> {
    /// The source a database target's `[x.statements]` table asks for:
    /// none when the table is absent or `enabled = false`.
    pub fn configured(cfg: Option<&StatementsConfig>, source: &'static str) -> Option<Self> {
        cfg.filter(|s| s.enabled)
            .map(|s| Self::new(s.clone(), source))
    }

    /// A source named `source` (the label value).
    pub fn new(cfg: StatementsConfig, source: &'static str) -> Self {
        let digest = Digest::new(cfg.top_queries, cfg.max_classes, cfg.rank_window);
        Self {
            cfg,
            source,
            digest,
            deltas: StatementDeltas::default(),
            last_attempt: None,
            last_read: None,
            up: None,
            reads: 0,
        }
    }

    /// Whether a read is due now: every poll without `interval`; a missing
    /// source is retried once a minute (each failed read is an error line in
    /// the server's log).
    pub fn due(&self) -> bool {
        let Some(t) = self.last_attempt else {
            return true;
        };
        let every = if self.up == Some(false) {
            RETRY_MISSING
        } else {
            match self.cfg.interval {
                Some(i) => i,
                None => return true,
            }
        };
        t.elapsed() + Duration::from_millis(50) >= every
    }

    /// Marks the start of a read attempt.
    pub fn attempt(&mut self) {
        self.last_attempt = Some(Instant::now());
    }

    /// Records a successful read; returns true when the source just came
    /// back (for a log line once per state change).
    pub fn record(&mut self, read: StatementRead<K>) -> bool {
        let now = Instant::now();
        let now_unix = crate::poll::unix_now();
        let since = self.last_read.map_or(Duration::ZERO, |t| now - t);
        for (row, d) in self.deltas.update(read, since) {
            self.digest.add_summary(
                &StatementSummary {
                    db: &row.db,
                    query: &row.query,
                    counters: d,
                },
                now,
                now_unix,
            );
        }
        self.digest.rank();
        self.last_read = Some(now);
        self.reads += 1;
        let recovered = self.up == Some(false);
        self.up = Some(true);
        recovered
    }

    /// Records that the source cannot be read; returns true when it just
    /// went down (for a log line once per state change).
    pub fn record_down(&mut self) -> bool {
        let went = self.up != Some(false);
        self.up = Some(false);
        went
    }

    /// Whether the last read worked.
    pub fn is_up(&self) -> bool {
        self.up == Some(true)
    }

    /// Exports the `perfwatch_slow_query_*` families and the source's own
    /// health.
    pub fn export(&self, target: &str, out: &mut Families) {
        export::digest(&self.digest, target, out);
        let l = [("target", target), ("source", self.source)];
        out.gauge(&catalog::SOURCE_INFO, &l, 1.0);
        out.gauge(
            &catalog::SOURCE_UP,
            &l,
            if self.is_up() { 1.0 } else { 0.0 },
        );
        out.counter(&catalog::SOURCE_READS, &l, self.reads as f64);
    }

    /// The `/api/slow-queries` JSON (same shape as a slow-log target's).
    pub fn details(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self.digest.summary(50, false)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(calls: u64, total: f64) -> Counters {
        Counters {
            calls,
            total_seconds: total,
            rows_sent: calls,
            max_seconds: 0.1,
            ..Counters::default()
        }
    }

    fn row(key: u32, calls: u64, total: f64) -> StatementRow<u32> {
        StatementRow {
            key,
            db: "app".into(),
            query: format!("select {key}"),
            counters: c(calls, total),
            age_seconds: None,
        }
    }

    fn read(rows: Vec<StatementRow<u32>>) -> StatementRead<u32> {
        StatementRead {
            rows,
            full: false,
            reset_epoch: None,
        }
    }

    /// `(key, calls, total)` of each delta, in row order.
    fn deltas(out: &[(StatementRow<u32>, Counters)]) -> Vec<(u32, u64, f64)> {
        out.iter()
            .map(|(r, d)| (r.key, d.calls, d.total_seconds))
            .collect()
    }

    /// (name, previous, current, count a new key, want (calls, total, max)).
    type DeltaCase = (
        &'static str,
        Option<Counters>,
        Counters,
        bool,
        Option<(u64, f64, f64)>,
    );

    #[test]
    fn counters_delta_table() {
        let mut grew_max = c(5, 2.0);
        grew_max.max_seconds = 0.9;
        let cases: &[DeltaCase] = &[
            (
                "new key counted",
                None,
                c(3, 1.5),
                true,
                Some((3, 1.5, 0.1)),
            ),
            ("new key baseline", None, c(3, 1.5), false, None),
            ("new key without calls", None, c(0, 0.0), true, None),
            (
                "normal delta",
                Some(c(3, 1.5)),
                c(5, 2.0),
                true,
                Some((2, 0.5, 0.0)),
            ),
            (
                "max grew: exact",
                Some(c(3, 1.5)),
                grew_max,
                true,
                Some((2, 0.5, 0.9)),
            ),
            (
                "counters equal: no event",
                Some(c(3, 1.5)),
                c(3, 1.5),
                true,
                None,
            ),
            (
                "reset: fewer calls",
                Some(c(10, 5.0)),
                c(2, 0.2),
                true,
                Some((2, 0.2, 0.1)),
            ),
            (
                "reset: less time",
                Some(c(2, 5.0)),
                c(4, 1.0),
                true,
                Some((4, 1.0, 0.1)),
            ),
        ];
        for (name, prev, cur, count_new, want) in cases {
            let got = counters_delta(prev.as_ref(), cur, *count_new)
                .map(|d| (d.calls, d.total_seconds, d.max_seconds));
            assert_eq!(got, *want, "{name}");
        }
    }

    #[test]
    fn reads_table() {
        let mut d = StatementDeltas::default();
        let s = Duration::from_secs(10);
        // First read: a baseline only.
        assert_eq!(
            deltas(&d.update(read(vec![row(1, 100, 50.0), row(2, 10, 1.0)]), s)),
            vec![]
        );
        // Normal delta, one unchanged, one new key (the previous read was
        // not full, so it cannot have been hidden).
        assert_eq!(
            deltas(&d.update(
                read(vec![row(1, 103, 51.5), row(2, 10, 1.0), row(3, 4, 0.4)]),
                s
            )),
            vec![(1, 3, 1.5), (3, 4, 0.4)]
        );
        // Key 2 evicted: forgotten (state holds the last read's keys only).
        assert_eq!(
            deltas(&d.update(read(vec![row(1, 103, 51.5), row(3, 4, 0.4)]), s)),
            vec![]
        );
        assert_eq!(d.len(), 2);
        // Key 2 re-added after eviction: its current values; key 1 reset.
        assert_eq!(
            deltas(&d.update(
                read(vec![row(1, 2, 0.1), row(3, 4, 0.4), row(2, 1, 0.01)]),
                s
            )),
            vec![(1, 2, 0.1), (2, 1, 0.01)]
        );
        // A full read: a key new after it may just have climbed into the
        // top rows, so it is a baseline...
        let mut full = read(vec![row(1, 2, 0.1)]);
        full.full = true;
        assert_eq!(deltas(&d.update(full, s)), vec![]);
        assert_eq!(
            deltas(&d.update(read(vec![row(1, 2, 0.1), row(9, 500, 90.0)]), s)),
            vec![]
        );
        // ...unless the server says it is younger than the interval.
        let mut full = read(vec![row(1, 2, 0.1)]);
        full.full = true;
        d.update(full, s);
        let mut young = row(8, 6, 0.6);
        young.age_seconds = Some(3.0);
        let mut old = row(7, 600, 60.0);
        old.age_seconds = Some(30.0);
        assert_eq!(
            deltas(&d.update(read(vec![row(1, 2, 0.1), young, old]), s)),
            vec![(8, 6, 0.6)]
        );
        // A known key recreated since the previous read (TRUNCATE, then
        // more executions than before): its current values, not the
        // difference.
        let mut again = row(7, 700, 61.0);
        again.age_seconds = Some(2.0);
        assert_eq!(
            deltas(&d.update(read(vec![again]), s)),
            vec![(7, 700, 61.0)]
        );
    }

    #[test]
    fn a_global_reset_time_change_counts_everything_anew() {
        let mut d = StatementDeltas::default();
        let s = Duration::from_secs(10);
        let at = |epoch: f64, rows| StatementRead {
            rows,
            full: false,
            reset_epoch: Some(epoch),
        };
        d.update(at(1.0, vec![row(1, 10, 1.0)]), s);
        assert_eq!(
            deltas(&d.update(at(1.0, vec![row(1, 12, 1.2)]), s)),
            vec![(1, 2, 1.2 - 1.0)]
        );
        // Reset, then more calls than before: without the reset time this
        // would look like +8.
        assert_eq!(
            deltas(&d.update(at(2.0, vec![row(1, 20, 2.0)]), s)),
            vec![(1, 20, 2.0)]
        );
    }

    #[test]
    fn schedule_every_poll_every_interval_and_retry_when_missing() {
        let every_poll: StatementsConfig = toml::from_str("").unwrap();
        let mut src = StatementSource::<u32>::new(every_poll, "pg_stat_statements");
        assert!(src.due());
        src.attempt();
        assert!(src.due(), "no interval: every poll");
        let hourly: StatementsConfig = toml::from_str("interval = \"1h\"").unwrap();
        let mut src = StatementSource::<u32>::new(hourly, "pg_stat_statements");
        src.attempt();
        assert!(!src.record(read(vec![row(1, 1, 0.1)])), "up from the start");
        assert!(src.is_up());
        assert!(!src.due(), "re-exported until the interval passes");
        let mut src =
            StatementSource::<u32>::new(toml::from_str("").unwrap(), "pg_stat_statements");
        src.attempt();
        assert!(src.record_down(), "went down: log once");
        assert!(!src.record_down(), "still down: no second log line");
        assert!(!src.due(), "a missing source is retried once a minute");
        assert!(src.record(read(vec![])), "came back: log once");
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: StatementsConfig = toml::from_str("").unwrap();
        assert!(c.enabled);
        assert_eq!((c.top_queries, c.max_rows, c.interval), (50, 500, None));
        assert!(c.validate().is_empty());
        let cases: &[(&str, &[&str])] = &[
            ("max_rows = 0", &["statements.max_rows"]),
            ("top_queries = 0", &["statements.top_queries"]),
            ("interval = \"0s\"", &["statements.interval"]),
            (
                "top_queries = 20\nmax_classes = 10",
                &["statements.top_queries"],
            ),
        ];
        for (text, want) in cases {
            let c: StatementsConfig = toml::from_str(text).unwrap();
            let got: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
            assert_eq!(got, *want, "{text}");
        }
        assert!(toml::from_str::<StatementsConfig>("max_row = 3").is_err());
    }
}
