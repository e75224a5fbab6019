//! A whole slow log digested at once: the report behind `perfwatch digest`,
//! a small pt-query-digest. It reads the file with the same tailer, parser
//! and digest the sidecar's collector follows logs with (from the
//! beginning, no saved position), so its classes and ids are the ones the
//! collector exports.
//!
//! Classes are keyed by (db, fingerprint) in the digest; here they are
//! merged by query id, as pt-query-digest groups by fingerprint alone, so the
//! counts can be compared with its report. Printing is the caller's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::diagnose::diagnose;
use crate::digest::{Digest, OTHER};
use crate::parser::{LogFormat, LogParser};
use crate::tail::{StartAt, Tailer, read_gz};

/// What to digest and how.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The log's format.
    pub format: LogFormat,
    /// PostgreSQL stderr logs: the server's `log_line_prefix`.
    pub log_line_prefix: Option<String>,
    /// Classes kept in [`Report::top`] (0: all).
    pub top: usize,
    /// Most distinct classes tracked (beyond: counted as `other`).
    pub max_classes: usize,
    /// Longest line / statement kept, bytes (as the collector's
    /// `max_line_bytes`).
    pub max_line_bytes: usize,
}

/// Why a log could not be digested.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The `log_line_prefix` cannot be turned into a pattern (the text says
    /// why).
    #[error("log_line_prefix: {0}")]
    LogLinePrefix(String),
    /// The file cannot be opened or read.
    #[error("cannot read \"{}\"", path.display())]
    Read {
        /// The log file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The path is a directory or a device, not a log file.
    #[error("\"{}\" is not a regular file", .0.display())]
    NotAFile(PathBuf),
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
    /// Bytes read (decompressed, for a `*.gz` file).
    pub bytes: u64,
    /// Events parsed (all of them: those of classes beyond
    /// `max_classes` are in the `other` row).
    pub events: u64,
    /// Distinct query classes (by id) tracked; beyond `max_classes`, the
    /// `other` row.
    pub classes: usize,
    /// Lines that are no part of the format.
    pub unrecognized_lines: u64,
    /// Their bytes.
    pub unrecognized_bytes: u64,
    /// Why much of the input was not recognized (the likely cause), when
    /// it was not.
    pub diagnosis: Option<String>,
    /// Events whose text was cut at `max_line_bytes`.
    pub truncated_events: u64,
    /// Execution time of all events, seconds.
    pub total_seconds: f64,
    /// Wall time of reading, parsing and aggregating, seconds.
    pub seconds: f64,
    /// Bytes / seconds / 10^6.
    pub mb_per_second: f64,
    /// Classes by total time, descending (at most `top` unless 0), then an
    /// `other` row (id `other`) for the events of classes beyond
    /// `max_classes`, if any.
    pub top: Vec<ReportClass>,
}

/// Reads and digests the whole file at `path`.
pub fn digest_file(path: &Path, opts: &ReportOptions) -> Result<Report, ReportError> {
    let mut parser = LogParser::new(
        opts.format,
        opts.log_line_prefix.as_deref(),
        opts.max_line_bytes,
    )
    .map_err(ReportError::LogLinePrefix)?;
    let read_error = |source| ReportError::Read {
        path: path.to_owned(),
        source,
    };
    if !std::fs::metadata(path).map_err(read_error)?.is_file() {
        return Err(ReportError::NotAFile(path.to_owned()));
    }
    let started = Instant::now();
    // One ranking window for the whole run: every event is "now".
    let mut digest = Digest::new(
        opts.max_classes.max(1),
        opts.max_classes.max(1),
        Duration::from_secs(3600),
    );
    let now = Instant::now();
    let now_unix = crate::unix_now();
    let mut on_piece = |text: &str, _: u64, more: bool| {
        if let Some(e) = parser.piece(text, more) {
            digest.add(&e, now, now_unix);
            parser.recycle(e);
        }
    };
    let bytes = if path.extension().is_some_and(|x| x == "gz") {
        // A rotated, compressed log (logrotate's `compress`).
        read_gz(path, opts.max_line_bytes, &mut on_piece)
            .map_err(read_error)?
            .0
    } else {
        let mut tailer = Tailer::new(
            path.to_owned(),
            StartAt::Beginning,
            None,
            opts.max_line_bytes,
        );
        tailer
            .read_pieces(usize::MAX, &mut on_piece)
            .map_err(read_error)?;
        tailer.stats.bytes
    };
    while let Some(e) = parser.flush() {
        digest.add(&e, now, now_unix);
    }
    // Merge (db, fingerprint) classes by id, as pt-query-digest reports them.
    let mut by_id: HashMap<String, ReportClass> = HashMap::new();
    for c in digest.summary(usize::MAX, false) {
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
    let (other_events, other_seconds, other_max, other_rows) = digest.other_totals();
    let total_seconds = classes.iter().map(|c| c.total_seconds).sum::<f64>() + other_seconds;
    if opts.top > 0 {
        classes.truncate(opts.top);
    }
    if other_events > 0 {
        classes.push(ReportClass {
            id: OTHER.into(),
            count: other_events,
            total_seconds: other_seconds,
            max_seconds: other_max,
            rows_examined: other_rows,
            fingerprint: format!("(classes beyond --max-classes {})", opts.max_classes),
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    let unrecognized = parser.unrecognized();
    Ok(Report {
        bytes,
        events: digest.events,
        classes: n_classes,
        unrecognized_lines: unrecognized.lines,
        unrecognized_bytes: unrecognized.bytes,
        diagnosis: diagnose(
            opts.format,
            opts.log_line_prefix.as_deref(),
            digest.events,
            bytes,
            unrecognized,
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options(format: LogFormat) -> ReportOptions {
        ReportOptions {
            format,
            log_line_prefix: None,
            top: 0,
            max_classes: 100,
            max_line_bytes: 64 * 1024,
        }
    }

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
        let r = digest_file(&p, &options(LogFormat::Mysql)).unwrap();
        assert_eq!(r.events, 4);
        assert_eq!(r.bytes, log.len() as u64);
        assert_eq!(r.classes, 2, "two dbs, one id: {:?}", r.top);
        assert_eq!(r.top[0].count, 3);
        assert_eq!(r.top[0].total_seconds, 4.5);
        assert_eq!(r.top[0].rows_examined, 30);
        assert_eq!(r.top[0].fingerprint, "select * from t where id in(?+)");
        assert_eq!(
            r.top[0].id,
            crate::fingerprint::fingerprint_id("select * from t where id in(?+)")
        );
        assert_eq!(r.top[1].fingerprint, "select ?");
        let mut top1 = options(LogFormat::Mysql);
        top1.top = 1;
        let r = digest_file(&p, &top1).unwrap();
        assert_eq!((r.classes, r.top.len()), (2, 1), "top cuts the list only");
    }

    #[test]
    fn max_classes_keeps_every_event_in_the_totals_with_an_other_row() {
        // Issue 16: with --max-classes 10 the report covered 208 of 645
        // events and 10.28 of 32.20 s.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slow.log");
        let mut log = String::new();
        let mut total = 0.0;
        for i in 0..645u32 {
            let secs = f64::from(i % 7) * 0.125;
            total += secs;
            // Letters only: pt-style fingerprints mask digits in names.
            let table: String = [b'a' + (i % 26) as u8, b'a' + (i / 26 % 26) as u8]
                .iter()
                .map(|&b| char::from(b))
                .collect();
            log.push_str(&format!(
                "# Query_time: {secs}  Lock_time: 0 Rows_sent: 0  Rows_examined: 1\nselect * from t{table} where id = {i};\n"
            ));
        }
        std::fs::write(&p, &log).unwrap();
        let mut opts = options(LogFormat::Mysql);
        opts.max_classes = 10;
        opts.top = 3;
        let r = digest_file(&p, &opts).unwrap();
        assert_eq!(r.events, 645);
        assert!(
            (r.total_seconds - total).abs() < 1e-9,
            "{} vs {total}",
            r.total_seconds
        );
        assert_eq!((r.classes, r.top.len()), (10, 4), "3 shown + other");
        let other = r.top.last().unwrap();
        assert_eq!(other.id, "other");
        let tracked: u64 = digest_file(
            &p,
            &ReportOptions {
                top: 0,
                ..opts.clone()
            },
        )
        .unwrap()
        .top
        .iter()
        .filter(|c| c.id != "other")
        .map(|c| c.count)
        .sum();
        assert_eq!(tracked + other.count, 645, "every event in one row");
    }

    #[test]
    fn unrecognized_input_says_why_table() {
        // (file name, content, format, log_line_prefix, events, what the
        // diagnosis must say; None: no diagnosis)
        let gz = {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(
                b"# Query_time: 1.5  Lock_time: 0 Rows_sent: 0  Rows_examined: 0\nselect 1;\n",
            )
            .unwrap();
            e.finish().unwrap()
        };
        let pg_t = b"2024-01-01 10:00:00 UTC [42]: [1-1] user=app,db=shop,app=psql,client=[local] LOG:  duration: 1.000 ms  statement: select 1\n".to_vec();
        type Case<'a> = (
            &'a str,
            Vec<u8>,
            LogFormat,
            Option<&'a str>,
            u64,
            Option<&'a str>,
        );
        let cases: Vec<Case<'_>> = vec![
            ("slow.log.gz", gz.clone(), LogFormat::Mysql, None, 1, None),
            (
                "slow.log.1",
                gz,
                LogFormat::Mysql,
                None,
                0,
                Some("gzip-compressed"),
            ),
            (
                "postgresql.log",
                pg_t.clone(),
                LogFormat::Postgres,
                None,
                0,
                Some("log_line_prefix = '%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h '"),
            ),
            (
                "postgresql.log",
                pg_t,
                LogFormat::Postgres,
                Some("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h "),
                1,
                None,
            ),
            (
                "x.log",
                b"hello\nworld\n".to_vec(),
                LogFormat::PostgresCsv,
                None,
                0,
                Some("unknown layout"),
            ),
        ];
        for (name, content, format, prefix, events, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join(name);
            std::fs::write(&p, &content).unwrap();
            let mut opts = options(format);
            opts.log_line_prefix = prefix.map(str::to_owned);
            let r = digest_file(&p, &opts).unwrap();
            assert_eq!(r.events, events, "{name} {format}");
            match want {
                None => assert_eq!(r.diagnosis, None, "{name}"),
                Some(w) => {
                    let d = r.diagnosis.unwrap_or_default();
                    assert!(d.contains(w), "{name}: {d}");
                    assert!(
                        r.unrecognized_lines > 0 && r.unrecognized_bytes > 0,
                        "{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn missing_file_directory_and_bad_prefix_fail() {
        let err = digest_file(
            Path::new("/nonexistent/slow.log"),
            &options(LogFormat::Mysql),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ReportError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "cannot read \"/nonexistent/slow.log\"");
        let dir = tempfile::tempdir().unwrap();
        let err = digest_file(dir.path(), &options(LogFormat::Mysql)).unwrap_err();
        assert!(matches!(err, ReportError::NotAFile(_)), "{err:?}");
        let mut bad_prefix = options(LogFormat::Postgres);
        // Two %p: the pattern would name one group twice.
        bad_prefix.log_line_prefix = Some("%p %p ".into());
        let err = digest_file(dir.path(), &bad_prefix).unwrap_err();
        assert!(err.to_string().starts_with("log_line_prefix: "), "{err}");
    }
}
