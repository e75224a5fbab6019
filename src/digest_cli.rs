//! `perfwatch digest FILE`: reads a whole slow log once with the collector's
//! own tailer, parser and digest (from the beginning, no state file) and
//! prints the query classes by total time, like a small pt-query-digest.
//!
//! Classes are keyed by (db, fingerprint) in the collector; here they are
//! merged by query id, as pt-query-digest groups by fingerprint alone, so the
//! counts can be compared with its report. The throughput (bytes, events,
//! seconds, MB/s with MB = 10^6 bytes) goes to stderr, the report to stdout.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::collectors::slowlog::digest::Digest;
use crate::collectors::slowlog::event::SlowEvent;
use crate::collectors::slowlog::mysql::MysqlParser;
use crate::collectors::slowlog::postgres::{PgFormat, PgParser};
use crate::collectors::slowlog::tail::{StartAt, Tailer};

/// What `perfwatch digest` was asked for.
#[derive(Debug, Clone)]
pub struct DigestOptions {
    /// The log file.
    pub path: PathBuf,
    /// `mysql` (default), `postgres`, `postgres-csv` or `postgres-json`.
    pub format: String,
    /// PostgreSQL stderr logs: the server's `log_line_prefix`.
    pub log_line_prefix: Option<String>,
    /// Classes printed (0: all).
    pub top: usize,
    /// Most distinct classes tracked (beyond: counted as `other`).
    pub max_classes: usize,
    /// Longest line / statement kept, bytes (as `max_line_bytes`).
    pub max_line_bytes: usize,
    /// JSON instead of a table.
    pub json: bool,
}

/// One query class of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportClass {
    /// pt-query-digest's query id (16 hex digits).
    pub id: String,
    /// Events.
    pub count: u64,
    /// Total execution time, seconds.
    pub total_seconds: f64,
    /// Longest execution, seconds.
    pub max_seconds: f64,
    /// Rows examined.
    pub rows_examined: u64,
    /// Fingerprint (truncated to 200 bytes).
    pub fingerprint: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Bytes read.
    pub bytes: u64,
    /// Events parsed.
    pub events: u64,
    /// Distinct query classes (by id).
    pub classes: usize,
    /// Events whose text was cut at `max_line_bytes`.
    pub truncated_events: u64,
    /// Execution time of all events, seconds.
    pub total_seconds: f64,
    /// Wall time of reading, parsing and aggregating, seconds.
    pub seconds: f64,
    /// Bytes / seconds / 10^6.
    pub mb_per_second: f64,
    /// Classes by total time, descending (at most `top` unless 0).
    pub top: Vec<ReportClass>,
}

enum Parser {
    Mysql(MysqlParser),
    Pg(PgParser),
}

impl Parser {
    fn line(&mut self, line: &str) -> Option<SlowEvent> {
        match self {
            Self::Mysql(p) => p.line(line),
            Self::Pg(p) => p.line(line),
        }
    }
    fn flush(&mut self) -> Option<SlowEvent> {
        match self {
            Self::Mysql(p) => p.flush(),
            Self::Pg(p) => p.flush(),
        }
    }
}

/// Reads and digests the whole file.
pub fn digest_file(opts: &DigestOptions) -> anyhow::Result<Report> {
    let mut parser = match opts.format.as_str() {
        "mysql" => Parser::Mysql(MysqlParser::new(opts.max_line_bytes)),
        f @ ("postgres" | "postgres-csv" | "postgres-json") => {
            let pg = match f {
                "postgres-csv" => PgFormat::Csv,
                "postgres-json" => PgFormat::Json,
                _ => PgFormat::Stderr,
            };
            Parser::Pg(
                PgParser::new(pg, opts.log_line_prefix.as_deref(), opts.max_line_bytes)
                    .map_err(|e| anyhow::anyhow!("log_line_prefix: {e}"))?,
            )
        }
        other => {
            bail!("unknown --format \"{other}\" (mysql, postgres, postgres-csv, postgres-json)")
        }
    };
    check_readable(&opts.path)?;
    let started = Instant::now();
    let mut tailer = Tailer::new(
        opts.path.clone(),
        StartAt::Beginning,
        None,
        opts.max_line_bytes,
    );
    // One ranking window for the whole run: every event is "now".
    let mut digest = Digest::new(
        opts.max_classes.max(1),
        opts.max_classes.max(1),
        Duration::from_secs(3600),
    );
    let now = Instant::now();
    let now_unix = crate::poll::unix_now();
    tailer
        .read(usize::MAX, &mut |line, _| {
            if let Some(e) = parser.line(line) {
                digest.add(&e, now, now_unix);
            }
        })
        .with_context(|| format!("cannot read \"{}\"", opts.path.display()))?;
    if let Some(e) = parser.flush() {
        digest.add(&e, now, now_unix);
    }
    // Merge (db, fingerprint) classes by id, as pt-query-digest reports them.
    let mut by_id: HashMap<String, ReportClass> = HashMap::new();
    for c in digest.summary(usize::MAX) {
        let r = by_id
            .entry(c.fingerprint.clone())
            .or_insert_with(|| ReportClass {
                id: c.fingerprint.clone(),
                count: 0,
                total_seconds: 0.0,
                max_seconds: 0.0,
                rows_examined: 0,
                fingerprint: c.query.clone(),
            });
        r.count += c.count;
        r.total_seconds += c.total_seconds;
        r.max_seconds = r.max_seconds.max(c.max_seconds);
        r.rows_examined += c.rows_examined;
    }
    let mut classes: Vec<ReportClass> = by_id.into_values().collect();
    classes.sort_by(|a, b| {
        b.total_seconds
            .total_cmp(&a.total_seconds)
            .then_with(|| a.id.cmp(&b.id))
    });
    let n_classes = classes.len();
    let total_seconds = classes.iter().map(|c| c.total_seconds).sum();
    if opts.top > 0 {
        classes.truncate(opts.top);
    }
    let seconds = started.elapsed().as_secs_f64();
    let bytes = tailer.stats.bytes;
    Ok(Report {
        bytes,
        events: digest.events,
        classes: n_classes,
        truncated_events: digest.truncated_events,
        total_seconds,
        seconds,
        mb_per_second: if seconds > 0.0 {
            bytes as f64 / seconds / 1e6
        } else {
            0.0
        },
        top: classes,
    })
}

fn check_readable(path: &Path) -> anyhow::Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read \"{}\"", path.display()))?;
    if !meta.is_file() {
        bail!("\"{}\" is not a regular file", path.display());
    }
    Ok(())
}

/// Runs `perfwatch digest`: the report to stdout, the throughput to stderr.
/// A file without a single event is an error (nothing was measured).
pub fn run(opts: &DigestOptions) -> anyhow::Result<()> {
    let report = digest_file(opts)?;
    let mut out = std::io::stdout().lock();
    if opts.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &report)?;
    }
    out.flush()?;
    eprintln!(
        "perfwatch digest: {} bytes, {} events, {} classes, {:.3} s, {:.1} MB/s",
        report.bytes, report.events, report.classes, report.seconds, report.mb_per_second
    );
    if report.events == 0 {
        bail!(
            "no {} slow-log event found in \"{}\"",
            opts.format,
            opts.path.display()
        );
    }
    Ok(())
}

fn write_table(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>4}  {:<16}  {:>10}  {:>12}  {:>6}  fingerprint",
        "rank", "query id", "count", "total (s)", "time%"
    )?;
    let all = r.total_seconds.max(f64::MIN_POSITIVE);
    for (i, c) in r.top.iter().enumerate() {
        writeln!(
            out,
            "{:>4}  {:<16}  {:>10}  {:>12.6}  {:>5.1}%  {}",
            i + 1,
            c.id,
            c.count,
            c.total_seconds,
            100.0 * c.total_seconds / all,
            c.fingerprint.replace('\n', " ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_a_mysql_log_by_query_id() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slow.log");
        let mut log = String::new();
        for (i, db) in ["a", "b", "a"].iter().enumerate() {
            log.push_str(&format!(
                "# Time: 240101 12:00:0{i}\n# User@Host: root[root] @ localhost []\n# Thread_id: 8  Schema: {db}  QC_hit: No\n# Query_time: 1.5  Lock_time: 0.0  Rows_sent: 1  Rows_examined: 10\nSET timestamp=1704110400;\nSELECT * FROM t WHERE id IN ({i}, 5);\n"
            ));
        }
        log.push_str(
            "# Query_time: 0.25  Lock_time: 0 Rows_sent: 0  Rows_examined: 0\nselect 1;\n",
        );
        std::fs::write(&p, &log).unwrap();
        let opts = DigestOptions {
            path: p,
            format: "mysql".into(),
            log_line_prefix: None,
            top: 0,
            max_classes: 100,
            max_line_bytes: 64 * 1024,
            json: false,
        };
        let r = digest_file(&opts).unwrap();
        assert_eq!(r.events, 4);
        assert_eq!(r.bytes, log.len() as u64);
        assert_eq!(r.classes, 2, "two dbs, one id: {:?}", r.top);
        assert_eq!(r.top[0].count, 3);
        assert_eq!(r.top[0].total_seconds, 4.5);
        assert_eq!(r.top[0].fingerprint, "select * from t where id in(?+)");
        assert_eq!(
            r.top[0].id,
            crate::collectors::slowlog::fingerprint::fingerprint_id(
                "select * from t where id in(?+)"
            )
        );
        let mut table = Vec::new();
        write_table(&mut table, &r).unwrap();
        assert!(String::from_utf8(table).unwrap().contains("select ?"));
    }

    #[test]
    fn missing_file_and_bad_format_fail() {
        let mut opts = DigestOptions {
            path: "/nonexistent/slow.log".into(),
            format: "mysql".into(),
            log_line_prefix: None,
            top: 10,
            max_classes: 100,
            max_line_bytes: 64 * 1024,
            json: true,
        };
        assert!(digest_file(&opts).is_err());
        opts.format = "oracle".into();
        assert!(digest_file(&opts).is_err());
    }
}
