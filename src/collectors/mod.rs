//! Every collector kind perfwatch knows, registered in one list ([`KINDS`]).
//!
//! A kind contributes a config section (`[[redis]]`), a config type, and a
//! running [`Collector`]. Adding a kind means: a folder under
//! `src/collectors/`, one entry in [`KINDS`], one variant in [`TargetConfig`]
//! and one arm in [`TargetConfig::start`].
//!
//! Two modules are shared by several kinds rather than being kinds:
//! `custom_query` (`[[x.query]]` SQL metrics) and `statement_stats`
//! (`[x.statements]`, per-statement statistics as a slow-query source).

pub mod custom_query;
pub mod http;
pub mod mysql;
pub mod pgbouncer;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod slowlog;
pub mod statement_stats;

use std::future::Future;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::DeValue;

use crate::config::{CommonTarget, ConfigError, Timing};
use crate::engine::{PollLoop, TargetHandle};
use crate::exposition::Families;

/// One collector kind: its config section and metric namespace.
pub struct Kind {
    /// The TOML array-of-tables name and the `collector` label value.
    pub section: &'static str,
    /// Metric name prefixes this kind emits (checked unique across kinds by a test).
    pub metric_prefixes: &'static [&'static str],
    /// Deserializes one `[[section]]` table.
    pub parse: ParseFn,
}

/// Signature of a kind's table parser (see [`parse_table`]).
pub type ParseFn = fn(
    &crate::config::Document<'_>,
    &str,
    &Spanned<DeValue<'_>>,
    &mut Vec<ConfigError>,
) -> Option<TargetConfig>;

/// The registry of every collector kind.
pub const KINDS: &[Kind] = &[
    Kind {
        section: "redis",
        metric_prefixes: &["redis_", "perfwatch_redis_", "perfwatch_cache_"],
        parse: |doc, path, value, errors| {
            parse_table::<redis::RedisConfig>(doc, path, value, errors).map(TargetConfig::Redis)
        },
    },
    Kind {
        section: "postgres",
        metric_prefixes: &["pg_", "perfwatch_postgres_"],
        parse: |doc, path, value, errors| {
            parse_table::<postgres::PostgresConfig>(doc, path, value, errors)
                .map(TargetConfig::Postgres)
        },
    },
    Kind {
        section: "mysql",
        metric_prefixes: &["mysql_", "perfwatch_mysql_"],
        parse: |doc, path, value, errors| {
            parse_table::<mysql::MysqlConfig>(doc, path, value, errors).map(TargetConfig::Mysql)
        },
    },
    Kind {
        section: "pgbouncer",
        metric_prefixes: &["pgbouncer_", "perfwatch_pgbouncer_"],
        parse: |doc, path, value, errors| {
            parse_table::<pgbouncer::PgbouncerConfig>(doc, path, value, errors)
                .map(TargetConfig::Pgbouncer)
        },
    },
    Kind {
        section: "http",
        metric_prefixes: &["perfwatch_app_", "perfwatch_http_"],
        parse: |doc, path, value, errors| {
            parse_table::<http::HttpConfig>(doc, path, value, errors).map(TargetConfig::Http)
        },
    },
    Kind {
        section: "slowlog",
        metric_prefixes: &["perfwatch_slow_query", "perfwatch_slowlog_"],
        parse: |doc, path, value, errors| {
            parse_table::<slowlog::SlowlogConfig>(doc, path, value, errors)
                .map(TargetConfig::Slowlog)
        },
    },
    Kind {
        section: "process",
        metric_prefixes: &["perfwatch_process_"],
        parse: |doc, path, value, errors| {
            parse_table::<process::ProcessConfig>(doc, path, value, errors)
                .map(TargetConfig::Process)
        },
    },
];

/// Deserializes one table strictly, collecting every error.
pub fn parse_table<T: DeserializeOwned>(
    doc: &crate::config::Document<'_>,
    path: &str,
    value: &Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    crate::config::deserialize_collecting(doc, path, value, errors)
}

/// A configured target of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetConfig {
    /// `[[redis]]`.
    Redis(redis::RedisConfig),
    /// `[[postgres]]`.
    Postgres(postgres::PostgresConfig),
    /// `[[mysql]]` (MySQL and MariaDB).
    Mysql(mysql::MysqlConfig),
    /// `[[pgbouncer]]`.
    Pgbouncer(pgbouncer::PgbouncerConfig),
    /// `[[http]]`: the app's own endpoints.
    Http(http::HttpConfig),
    /// `[[process]]`: neighbour processes (the app's workers).
    Process(process::ProcessConfig),
    /// `[[slowlog]]`: a slow-query log file.
    Slowlog(slowlog::SlowlogConfig),
}

/// Expands to `$body` with `$c` bound to the inner config of any variant.
macro_rules! each_kind {
    ($self:expr, $c:ident => $body:expr) => {
        match $self {
            TargetConfig::Redis($c) => $body,
            TargetConfig::Postgres($c) => $body,
            TargetConfig::Mysql($c) => $body,
            TargetConfig::Pgbouncer($c) => $body,
            TargetConfig::Http($c) => $body,
            TargetConfig::Process($c) => $body,
            TargetConfig::Slowlog($c) => $body,
        }
    };
}

impl TargetConfig {
    /// The kind's section name, used as the `collector` label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Redis(_) => "redis",
            Self::Postgres(_) => "postgres",
            Self::Mysql(_) => "mysql",
            Self::Pgbouncer(_) => "pgbouncer",
            Self::Http(_) => "http",
            Self::Process(_) => "process",
            Self::Slowlog(_) => "slowlog",
        }
    }

    /// Name, interval and timeout.
    pub fn common(&self) -> CommonTarget {
        each_kind!(self, c => c.common())
    }

    /// Kind-specific cross-field checks: `(key relative to the table, message)`.
    pub fn validate(&self) -> Vec<(String, String)> {
        each_kind!(self, c => c.validate())
    }

    /// Polls this target once under `timeout` (for `perfwatch once`).
    pub async fn poll_once(&self, timing: Timing) -> Result<PollOutput, PollError> {
        let t = timing.timeout;
        match self {
            Self::Redis(c) => {
                poll_once_with(redis::RedisCollector::new(c.clone(), timing), t).await
            }
            Self::Postgres(c) => {
                poll_once_with(postgres::PostgresCollector::new(c.clone(), timing), t).await
            }
            Self::Mysql(c) => {
                poll_once_with(mysql::MysqlCollector::new(c.clone(), timing), t).await
            }
            Self::Pgbouncer(c) => {
                poll_once_with(pgbouncer::PgbouncerCollector::new(c.clone(), timing), t).await
            }
            Self::Http(c) => poll_once_with(http::HttpCollector::new(c.clone(), timing), t).await,
            Self::Process(c) => {
                poll_once_with(process::ProcessCollector::new(c.clone(), timing), t).await
            }
            Self::Slowlog(c) => {
                poll_once_with(slowlog::SlowlogCollector::new(c.clone(), timing), t).await
            }
        }
    }

    /// Starts the poll loop of this target.
    pub fn start(&self, poll_loop: PollLoop) -> TargetHandle {
        let timing = poll_loop.timing;
        match self {
            Self::Redis(c) => poll_loop.spawn(redis::RedisCollector::new(c.clone(), timing)),
            Self::Postgres(c) => {
                poll_loop.spawn(postgres::PostgresCollector::new(c.clone(), timing))
            }
            Self::Mysql(c) => poll_loop.spawn(mysql::MysqlCollector::new(c.clone(), timing)),
            Self::Pgbouncer(c) => {
                poll_loop.spawn(pgbouncer::PgbouncerCollector::new(c.clone(), timing))
            }
            Self::Http(c) => poll_loop.spawn(http::HttpCollector::new(c.clone(), timing)),
            Self::Process(c) => poll_loop.spawn(process::ProcessCollector::new(c.clone(), timing)),
            Self::Slowlog(c) => poll_loop.spawn(slowlog::SlowlogCollector::new(c.clone(), timing)),
        }
    }
}

async fn poll_once_with<C: Collector>(
    mut collector: C,
    timeout: std::time::Duration,
) -> Result<PollOutput, PollError> {
    tokio::time::timeout(timeout, collector.poll())
        .await
        .unwrap_or_else(|_| {
            Err(PollError::new(
                ErrorReason::Timeout,
                format!(
                    "poll did not finish within {}",
                    humantime::format_duration(timeout)
                ),
            ))
        })
}

/// Why a poll failed; becomes the `reason` label of `perfwatch_poll_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorReason {
    /// The server could not be reached.
    Connect,
    /// The server refused our credentials.
    Auth,
    /// The poll did not finish before its deadline.
    Timeout,
    /// The server answered something we could not understand.
    Protocol,
    /// The server answered with an error to a command or query.
    Query,
    /// Our account lacks a privilege.
    Permission,
    /// A local file could not be read or written.
    Io,
    /// A bug: the collector panicked (the target keeps being polled).
    Internal,
}

impl ErrorReason {
    /// Every reason, for exporting zeros.
    pub const ALL: &'static [ErrorReason] = &[
        Self::Connect,
        Self::Auth,
        Self::Timeout,
        Self::Protocol,
        Self::Query,
        Self::Permission,
        Self::Io,
        Self::Internal,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Auth => "auth",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
            Self::Query => "query",
            Self::Permission => "permission",
            Self::Io => "io",
            Self::Internal => "internal",
        }
    }
}

/// A failed poll: why, and a message naming the target and the bad value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct PollError {
    /// The reason label.
    pub reason: ErrorReason,
    /// Human-readable detail (never contains a secret).
    pub message: String,
}

impl PollError {
    /// Builds an error.
    pub fn new(reason: ErrorReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// What a successful poll produced.
#[derive(Debug, Default)]
pub struct PollOutput {
    /// Every series of this target; replaces the previous poll's set.
    pub families: Families,
    /// A few `(label, value)` pairs for the landing page.
    pub headline: Vec<(String, String)>,
}

/// A running collector for one target. The engine calls `poll` on its interval
/// under a hard timeout; a poll that times out is dropped mid-way, so the engine
/// then calls `reset` to throw away connection state that may be half-used.
pub trait Collector: Send + 'static {
    /// Polls the target once.
    fn poll(&mut self) -> impl Future<Output = Result<PollOutput, PollError>> + Send;
    /// Forgets connections after a timeout or error; the next poll reconnects.
    fn reset(&mut self);
    /// Structured details of the last poll for the JSON API (slow-query digests).
    fn details(&self) -> Option<serde_json::Value> {
        None
    }
    /// For a collector that learns of new input between polls (a slow log
    /// being written): the engine then polls early when woken. Called once,
    /// before the first poll.
    fn wake(&self) -> Option<WakeHandle> {
        None
    }
}

/// How a collector asks for an early poll.
#[derive(Debug, Clone)]
pub struct WakeHandle {
    /// Notified (`notify_one`, so a wake during a poll is kept) when new input waits.
    pub notify: std::sync::Arc<tokio::sync::Notify>,
    /// Shortest time between the starts of two polls when woken (the engine
    /// never goes below 100 ms), so a busy input cannot cause a poll storm.
    pub min_gap: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_prefixes_are_unique() {
        let mut sections: Vec<_> = KINDS.iter().map(|k| k.section).collect();
        sections.sort();
        sections.dedup();
        assert_eq!(sections.len(), KINDS.len(), "duplicate section");
        let prefixes: Vec<_> = KINDS.iter().flat_map(|k| k.metric_prefixes).collect();
        for (i, a) in prefixes.iter().enumerate() {
            for b in &prefixes[i + 1..] {
                assert_ne!(a, b, "prefix {a} registered twice");
            }
        }
    }
}
