//! The slow-query log collector: follows a log file, parses events,
//! fingerprints them like pt-query-digest and exports bounded histograms.
//!
//! Layout: `config.rs`, `tail.rs` (rotation-safe, resumable follower),
//! `mysql.rs` (MySQL/MariaDB/Percona parser, pure), `fingerprint.rs` (pure),
//! `event.rs`, `digest.rs` (bounded aggregation and export), this file (the
//! poll: read, parse, persist the position).
//!
//! Exactly once across restarts: the saved offset is the start of the event
//! still being assembled (not the end of what was read), with the parser's
//! carried-forward `use db;`, so a restart re-reads that event whole.

pub mod config;
pub mod digest;
pub mod event;
pub mod fingerprint;
pub mod mysql;
pub mod postgres;
pub mod tail;

use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use config::{LogFormat, SlowlogConfig, StartAtConfig};
use digest::Digest;
use mysql::MysqlParser;
use postgres::{PgFormat, PgParser};
use serde::{Deserialize, Serialize};
use tail::{Position, StartAt, Tailer};

use super::{Collector, ErrorReason, PollError, PollOutput};
use crate::config::Timing;
use crate::exposition::Families;

/// What the state file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedState {
    position: Position,
    /// The MySQL parser's current `use db;`.
    db: Option<String>,
}

/// The parser for the configured format.
enum Parser {
    Mysql(MysqlParser),
    Pg(PgParser),
}

impl Parser {
    fn line(&mut self, line: &str) -> Option<event::SlowEvent> {
        match self {
            Self::Mysql(p) => p.line(line),
            Self::Pg(p) => p.line(line),
        }
    }
    fn flush(&mut self) -> Option<event::SlowEvent> {
        match self {
            Self::Mysql(p) => p.flush(),
            Self::Pg(p) => p.flush(),
        }
    }
    fn has_partial(&self) -> bool {
        match self {
            Self::Mysql(p) => p.has_partial(),
            Self::Pg(p) => p.has_partial(),
        }
    }
    /// Whether a complete-looking event waits for the idle flush.
    fn pending(&self) -> bool {
        match self {
            Self::Mysql(p) => p.pending(),
            Self::Pg(p) => p.has_partial(),
        }
    }
    fn db(&self) -> Option<&str> {
        match self {
            Self::Mysql(p) => p.db(),
            Self::Pg(_) => None,
        }
    }
}

/// For PostgreSQL, `path` may be the log directory: the file to follow is
/// the one `current_logfiles` names for our format (in the directory or in
/// its parent, the data directory), else the newest file with our extension.
fn resolve_path(cfg: &SlowlogConfig) -> std::path::PathBuf {
    let path = &cfg.path;
    if cfg.format == LogFormat::Mysql || !path.is_dir() {
        return path.clone();
    }
    let (kind, ext) = match cfg.format {
        LogFormat::PostgresCsv => ("csvlog", "csv"),
        LogFormat::PostgresJson => ("jsonlog", "json"),
        _ => ("stderr", "log"),
    };
    for base in [Some(path.as_path()), path.parent()].into_iter().flatten() {
        if let Ok(text) = std::fs::read_to_string(base.join("current_logfiles")) {
            for line in text.lines() {
                if let Some(rel) = line.strip_prefix(kind).and_then(|r| r.strip_prefix(' ')) {
                    let p = std::path::Path::new(rel.trim());
                    let candidates = [base.join(p), path.join(p.file_name().unwrap_or_default())];
                    if let Some(found) = candidates.into_iter().find(|c| c.is_file()) {
                        return found;
                    }
                }
            }
        }
    }
    std::fs::read_dir(path)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == ext))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| path.clone())
}

struct Inner {
    tailer: Tailer,
    parser: Parser,
    digest: Digest,
    /// Offset of the first line of the event being assembled.
    event_start: Option<u64>,
    last_data: Instant,
    state_write_errors: u64,
}

/// A running slow-log collector.
pub struct SlowlogCollector {
    cfg: SlowlogConfig,
    inner: Arc<Mutex<Inner>>,
    details: Option<serde_json::Value>,
}

impl SlowlogCollector {
    /// A collector; the file is opened on the first poll.
    pub fn new(cfg: SlowlogConfig, _timing: Timing) -> Self {
        let saved: Option<SavedState> = cfg
            .state_file
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok());
        let start_at = match cfg.start_at {
            StartAtConfig::End => StartAt::End,
            StartAtConfig::Beginning => StartAt::Beginning,
        };
        let parser = match cfg.format {
            LogFormat::Mysql => {
                let mut p = MysqlParser::new(cfg.max_line_bytes);
                if let Some(db) = saved.as_ref().and_then(|s| s.db.clone()) {
                    p.set_db(db);
                }
                Parser::Mysql(p)
            }
            format => {
                let pg = match format {
                    LogFormat::PostgresCsv => PgFormat::Csv,
                    LogFormat::PostgresJson => PgFormat::Json,
                    _ => PgFormat::Stderr,
                };
                // The prefix was validated with the config.
                match PgParser::new(pg, cfg.log_line_prefix.as_deref(), cfg.max_line_bytes) {
                    Ok(p) => Parser::Pg(p),
                    Err(_) => Parser::Mysql(MysqlParser::new(cfg.max_line_bytes)),
                }
            }
        };
        let inner = Inner {
            tailer: Tailer::new(
                cfg.path.clone(),
                start_at,
                saved.map(|s| s.position),
                cfg.max_line_bytes,
            ),
            parser,
            digest: Digest::new(cfg.top_queries, cfg.max_classes, cfg.rank_window),
            event_start: None,
            last_data: Instant::now(),
            state_write_errors: 0,
        };
        Self {
            cfg,
            inner: Arc::new(Mutex::new(inner)),
            details: None,
        }
    }
}

/// Reads, parses and persists (blocking file I/O).
fn read_and_parse(cfg: &SlowlogConfig, inner: &mut Inner) -> Result<(), PollError> {
    let name = &cfg.name;
    // PostgreSQL opens new files on rotation: follow the current one (the
    // tailer drains the old file before switching).
    let current = resolve_path(cfg);
    if current != inner.tailer.path() {
        inner.tailer.switch_to(current);
    }
    let before = inner.tailer.stats.bytes;
    let now = Instant::now();
    let now_unix = crate::engine::unix_now();
    let Inner {
        tailer,
        parser,
        digest,
        event_start,
        ..
    } = inner;
    let result = tailer.read(cfg.max_read_bytes_per_poll, &mut |line, offset| {
        let had_partial = parser.has_partial();
        let done = parser.line(line);
        if let Some(e) = &done {
            digest.add(e, now, now_unix);
        }
        if done.is_some() || !had_partial {
            *event_start = Some(offset);
        }
        if !parser.has_partial() {
            *event_start = None;
        }
    });
    if let Err(e) = result {
        inner.tailer.close();
        let reason = ErrorReason::Io;
        return Err(PollError::new(
            reason,
            format!(
                "slowlog target \"{name}\": \"{}\": {e}",
                inner.tailer.path().display()
            ),
        ));
    }
    if inner.tailer.stats.bytes > before {
        inner.last_data = now;
    } else if inner.parser.pending() && now.duration_since(inner.last_data) >= cfg.idle_flush {
        if let Some(e) = inner.parser.flush() {
            inner.digest.add(&e, now, now_unix);
        }
        inner.event_start = None;
    }
    if let Some(path) = &cfg.state_file
        && let Some(position) = inner.tailer.position(inner.event_start)
    {
        let state = SavedState {
            position,
            db: inner.parser.db().map(str::to_owned),
        };
        let written = serde_json::to_string(&state)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, json)?;
                std::fs::rename(&tmp, path)
            });
        if let Err(e) = written {
            // Not fatal: metrics keep flowing; a restart would re-read more.
            inner.state_write_errors += 1;
            tracing::warn!(target_name = %name, file = %path.display(), error = %e, "cannot save the slow-log position");
        }
    }
    Ok(())
}

fn export(cfg: &SlowlogConfig, inner: &Inner, out: &mut Families) {
    let t = [("target", cfg.name.as_str())];
    inner.digest.export(&cfg.name, out);
    let s = inner.tailer.stats;
    out.counter(
        "perfwatch_slowlog_bytes_read_total",
        "Bytes read from the slow log.",
        &t,
        s.bytes as f64,
    );
    out.counter(
        "perfwatch_slowlog_rotations_total",
        "Rotations, truncations and replacements of the log followed.",
        &t,
        s.rotations as f64,
    );
    out.counter(
        "perfwatch_slowlog_long_lines_total",
        "Lines cut at max_line_bytes.",
        &t,
        s.long_lines as f64,
    );
    out.counter(
        "perfwatch_slowlog_truncated_events_total",
        "Events whose statement text was cut at max_line_bytes (timing kept).",
        &t,
        inner.digest.truncated_events as f64,
    );
    out.counter(
        "perfwatch_slowlog_sampled_events_total",
        "Events logged under server-side sampling (counts are scaled; totals are estimates).",
        &t,
        inner.digest.sampled_events as f64,
    );
    out.counter(
        "perfwatch_slowlog_state_write_errors_total",
        "Failures to persist the read position (e.g. disk full).",
        &t,
        inner.state_write_errors as f64,
    );
}

impl Collector for SlowlogCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        let cfg = self.cfg.clone();
        let inner = self.inner.clone();
        let (output, details) = tokio::task::spawn_blocking(move || {
            // A poll that timed out may still be reading: never wait for it.
            let Ok(mut guard) = inner.try_lock() else {
                return Err(PollError::new(
                    ErrorReason::Timeout,
                    format!(
                        "slowlog target \"{}\": the previous read is still running",
                        cfg.name
                    ),
                ));
            };
            read_and_parse(&cfg, &mut guard)?;
            let mut families = Families::new();
            export(&cfg, &guard, &mut families);
            let headline = vec![
                ("events".to_owned(), guard.digest.events.to_string()),
                (
                    "bytes read".to_owned(),
                    guard.tailer.stats.bytes.to_string(),
                ),
            ];
            let details = serde_json::to_value(guard.digest.summary(50)).ok();
            Ok((PollOutput { families, headline }, details))
        })
        .await
        .map_err(|e| {
            PollError::new(
                ErrorReason::Io,
                format!("slowlog target \"{}\": {e}", self.cfg.name),
            )
        })??;
        self.details = details;
        Ok(output)
    }

    fn reset(&mut self) {}

    fn details(&self) -> Option<serde_json::Value> {
        self.details.clone()
    }
}
