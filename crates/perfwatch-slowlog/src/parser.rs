//! The supported log formats and one streaming parser for any of them, so
//! that a reader (the sidecar's collector, the `digest` report) picks the
//! parser by format once instead of matching on the format for every line.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::event::SlowEvent;
use crate::mysql::MysqlParser;
use crate::postgres::{PgFormat, PgParser};

/// A slow-query log format, named as in perfwatch's config (`format = …`)
/// and `perfwatch digest --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// MySQL 5.7/8.0 (incl. log_slow_extra), MariaDB, Percona.
    Mysql,
    /// PostgreSQL stderr log (`log_min_duration_statement`).
    Postgres,
    /// PostgreSQL csvlog.
    PostgresCsv,
    /// PostgreSQL jsonlog (PG 15+).
    PostgresJson,
    /// PostgreSQL stderr messages through syslog (rsyslog, journald).
    PostgresSyslog,
    /// Heroku Postgres through logplex.
    PostgresHeroku,
    /// CloudNativePG's JSON lines (the record under `record`).
    PostgresCnpg,
    /// Google Cloud SQL for PostgreSQL, a Cloud Logging JSON export.
    PostgresCloudsql,
}

impl LogFormat {
    /// Every format by name, in the order documentation lists them.
    pub const NAMES: [&'static str; 8] = [
        "mysql",
        "postgres",
        "postgres-csv",
        "postgres-json",
        "postgres-syslog",
        "postgres-heroku",
        "postgres-cnpg",
        "postgres-cloudsql",
    ];

    /// Every format, in the order of [`LogFormat::NAMES`].
    pub const ALL: [LogFormat; 8] = [
        Self::Mysql,
        Self::Postgres,
        Self::PostgresCsv,
        Self::PostgresJson,
        Self::PostgresSyslog,
        Self::PostgresHeroku,
        Self::PostgresCnpg,
        Self::PostgresCloudsql,
    ];

    /// Whether the format reads a `log_line_prefix` (stderr lines, also
    /// through syslog or Cloud SQL's export).
    pub fn takes_log_line_prefix(self) -> bool {
        matches!(
            self,
            Self::Postgres | Self::PostgresSyslog | Self::PostgresCloudsql
        )
    }

    /// The name (as in the config).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mysql => Self::NAMES[0],
            Self::Postgres => Self::NAMES[1],
            Self::PostgresCsv => Self::NAMES[2],
            Self::PostgresJson => Self::NAMES[3],
            Self::PostgresSyslog => Self::NAMES[4],
            Self::PostgresHeroku => Self::NAMES[5],
            Self::PostgresCnpg => Self::NAMES[6],
            Self::PostgresCloudsql => Self::NAMES[7],
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is none of [`LogFormat::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown log format \"{0}\" (mysql, postgres, postgres-csv, postgres-json, postgres-syslog, postgres-heroku, postgres-cnpg, postgres-cloudsql)"
)]
pub struct UnknownFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// The streaming parser of one log.
#[derive(Debug)]
pub enum LogParser {
    /// MySQL / MariaDB / Percona.
    Mysql(MysqlParser),
    /// PostgreSQL, any of its three formats.
    Pg(PgParser),
}

impl LogParser {
    /// A parser for `format`, keeping at most `max_line_bytes` of statement
    /// text; PostgreSQL stderr logs need the server's `log_line_prefix`
    /// (default `%m [%p] `). The error says why the prefix cannot be used.
    pub fn new(
        format: LogFormat,
        log_line_prefix: Option<&str>,
        max_line_bytes: usize,
    ) -> Result<Self, String> {
        let pg = match format {
            LogFormat::Mysql => return Ok(Self::Mysql(MysqlParser::new(max_line_bytes))),
            LogFormat::Postgres => PgFormat::Stderr,
            LogFormat::PostgresCsv => PgFormat::Csv,
            LogFormat::PostgresJson => PgFormat::Json,
            LogFormat::PostgresSyslog => PgFormat::Syslog,
            LogFormat::PostgresHeroku => PgFormat::Heroku,
            LogFormat::PostgresCnpg => PgFormat::Cnpg,
            LogFormat::PostgresCloudsql => PgFormat::CloudSql,
        };
        PgParser::new(pg, log_line_prefix, max_line_bytes).map(Self::Pg)
    }

    /// Feeds one line; returns an event it completed.
    pub fn line(&mut self, line: &str) -> Option<SlowEvent> {
        match self {
            Self::Mysql(p) => p.line(line),
            Self::Pg(p) => p.line(line),
        }
    }

    /// Feeds the next piece of the last line, when it was longer than the
    /// tailer's `max_line` ([`crate::tail::Tailer::read_pieces`]); returns an
    /// event it completed (PostgreSQL json and csv lines: the message string
    /// ended in it).
    pub fn more(&mut self, piece: &str) -> Option<SlowEvent> {
        match self {
            Self::Mysql(p) => {
                p.more(piece);
                None
            }
            Self::Pg(p) => p.more(piece),
        }
    }

    /// Feeds a line or a piece of one as [`crate::tail::Tailer::read_pieces`]
    /// hands them out.
    pub fn piece(&mut self, text: &str, more: bool) -> Option<SlowEvent> {
        if more {
            self.more(text)
        } else {
            self.line(text)
        }
    }

    /// Takes back an event handed out, once digested, so that its buffers
    /// serve the next one.
    pub fn recycle(&mut self, e: SlowEvent) {
        match self {
            Self::Mysql(p) => p.recycle(e),
            Self::Pg(p) => p.recycle(e),
        }
    }

    /// Lines that are no part of the format (see [`crate::diagnose`]).
    pub fn unrecognized(&self) -> &crate::diagnose::Unrecognized {
        match self {
            Self::Mysql(p) => &p.unrecognized,
            Self::Pg(p) => &p.unrecognized,
        }
    }

    /// Completes the event being assembled (end of input, idle timeout).
    /// One event a call: call it until it returns `None`.
    pub fn flush(&mut self) -> Option<SlowEvent> {
        match self {
            Self::Mysql(p) => p.flush(),
            Self::Pg(p) => p.flush(),
        }
    }

    /// Whether an event is being assembled.
    pub fn has_partial(&self) -> bool {
        match self {
            Self::Mysql(p) => p.has_partial(),
            Self::Pg(p) => p.has_partial(),
        }
    }

    /// Whether a complete-looking event waits for the idle flush.
    pub fn pending(&self) -> bool {
        match self {
            Self::Mysql(p) => p.pending(),
            Self::Pg(p) => p.has_partial(),
        }
    }

    /// The MySQL log's current `use db;` (to persist with the position).
    pub fn db(&self) -> Option<&str> {
        match self {
            Self::Mysql(p) => p.db(),
            Self::Pg(_) => None,
        }
    }

    /// Restores a persisted `use db;` (MySQL; ignored for PostgreSQL).
    pub fn set_db(&mut self, db: String) {
        if let Self::Mysql(p) = self {
            p.set_db(db);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for name in LogFormat::NAMES {
            let f: LogFormat = name.parse().unwrap();
            assert_eq!(f.as_str(), name);
        }
        assert_eq!(
            "oracle".parse::<LogFormat>(),
            Err(UnknownFormat("oracle".into()))
        );
    }

    #[test]
    fn the_format_picks_the_parser() {
        let mut p = LogParser::new(LogFormat::Mysql, None, 1024).unwrap();
        assert!(
            p.line("# Query_time: 1.5  Lock_time: 0 Rows_sent: 0  Rows_examined: 0")
                .is_none()
        );
        assert!(p.line("select 1;").is_none());
        assert_eq!(p.flush().map(|e| e.duration), Some(1.5));
        let mut p = LogParser::new(LogFormat::Postgres, None, 1024).unwrap();
        let e = p
            .line("2024-01-01 12:00:00.000 UTC [42] LOG:  duration: 2.000 ms  statement: select 1");
        assert_eq!(
            e.or_else(|| p.flush()).map(|e| e.query),
            Some("select 1".into())
        );
        assert!(LogParser::new(LogFormat::Postgres, Some("%"), 1024).is_ok());
        assert!(LogParser::new(LogFormat::PostgresCsv, Some("(unused"), 1024).is_ok());
    }
}
