//! `[[slowlog]]` config: one slow-query log file.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::collectors::{Problems, Validated, at_least_one, no_problems};
use crate::poll::CommonTarget;

/// The log's format (`mysql`, `postgres`, `postgres-csv`, `postgres-json`,
/// `postgres-syslog`, `postgres-heroku`, `postgres-cnpg`, `postgres-cloudsql`).
pub use perfwatch_slowlog::LogFormat;

/// Where to start reading a log perfwatch has no saved position for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartAtConfig {
    /// Only events written from now on (default).
    #[default]
    End,
    /// The whole file.
    Beginning,
}

/// One slow-log source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowlogConfig {
    /// The log format.
    pub format: LogFormat,
    /// The log file.
    pub path: PathBuf,
    /// PostgreSQL stderr only: the server's `log_line_prefix`.
    pub log_line_prefix: Option<String>,
    /// Where to start without a saved position.
    #[serde(default)]
    pub start_at: StartAtConfig,
    /// Where to persist the read position across restarts (none: start per `start_at`).
    pub state_file: Option<PathBuf>,
    /// Query classes with their own `fingerprint` label; the rest are `other`.
    #[serde(default = "default_top_queries")]
    pub top_queries: usize,
    /// Query classes tracked at most (memory bound); beyond, new classes count as `other`.
    #[serde(default = "default_max_classes")]
    pub max_classes: usize,
    /// Window over which classes are ranked by total time.
    #[serde(default = "default_rank_window", with = "humantime_serde")]
    pub rank_window: Duration,
    /// Longest line / statement text kept (bytes); a longer statement is
    /// fingerprinted whole as it streams (its kept text is a sample), a line
    /// cut without its rest is truncated, timing kept.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Most bytes read per poll (catching up on a big log is spread over polls).
    #[serde(default = "default_max_read_bytes")]
    pub max_read_bytes_per_poll: usize,
    /// An event still open (no next header yet) is completed after this long without new data.
    #[serde(default = "default_idle_flush", with = "humantime_serde")]
    pub idle_flush: Duration,
    /// Wake the poll when the log's directory changes (inotify), so new
    /// events are read promptly; `false` polls on the interval only (e.g. on
    /// NFS, where inotify does not see other hosts' writes).
    #[serde(default = "default_watch")]
    pub watch: bool,
    /// Shortest time between two polls woken by file changes, so a busy log
    /// is read in batches instead of once per write (at least 100ms).
    #[serde(default = "default_min_interval", with = "humantime_serde")]
    pub min_interval: Duration,
    /// Serve each top class's slowest recent statement, literals and all,
    /// under `/api/slow-queries` and on the status page, and plans with
    /// their conditions unmasked. Off by default: literals can hold
    /// personal data. (Examples are kept in memory either way, at most
    /// 4 KiB per class, for the database targets that plan them.)
    #[serde(default)]
    pub keep_examples: bool,
}

/// Default `top_queries`, shared with the statement statistics (`statements.…`).
pub(crate) fn default_top_queries() -> usize {
    50
}
/// Default `max_classes`, shared with the statement statistics.
pub(crate) fn default_max_classes() -> usize {
    1000
}
/// Default `rank_window`, shared with the statement statistics.
pub(crate) fn default_rank_window() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_line_bytes() -> usize {
    64 * 1024
}
fn default_max_read_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_idle_flush() -> Duration {
    Duration::from_secs(2)
}
fn default_watch() -> bool {
    true
}
fn default_min_interval() -> Duration {
    Duration::from_millis(250)
}

/// The shortest `min_interval` accepted.
pub const MIN_WAKE_INTERVAL: Duration = Duration::from_millis(100);

/// A checked `[[slowlog]]` target (validation derives nothing).
pub type SlowlogTarget = Validated<SlowlogConfig, ()>;

impl SlowlogConfig {
    /// Checks the table: the target needs nothing beyond it, or every
    /// problem as `(key, message)`.
    pub(crate) fn validate(&self, _common: &CommonTarget) -> Result<(), Problems> {
        let mut e = Vec::new();
        at_least_one(&mut e, "top_queries", self.top_queries);
        if self.max_classes < self.top_queries {
            e.push((
                "max_classes".into(),
                format!(
                    "max_classes {} must be at least top_queries {}",
                    self.max_classes, self.top_queries
                ),
            ));
        }
        if self.max_line_bytes < 1024 {
            e.push((
                "max_line_bytes".into(),
                format!(
                    "max_line_bytes must be at least 1024, got {}",
                    self.max_line_bytes
                ),
            ));
        }
        if self.min_interval < MIN_WAKE_INTERVAL {
            e.push((
                "min_interval".into(),
                format!(
                    "min_interval must be at least {}, got {}",
                    humantime::format_duration(MIN_WAKE_INTERVAL),
                    humantime::format_duration(self.min_interval)
                ),
            ));
        }
        if self.format.takes_log_line_prefix()
            && let Err(msg) = perfwatch_slowlog::postgres::prefix_regex(
                self.log_line_prefix.as_deref().unwrap_or("%m [%p] "),
            )
        {
            e.push(("log_line_prefix".into(), msg));
        }
        if self.log_line_prefix.is_some() && !self.format.takes_log_line_prefix() {
            e.push((
                "log_line_prefix".into(),
                "log_line_prefix only applies to format = \"postgres\", \"postgres-syslog\" and \"postgres-cloudsql\"".into(),
            ));
        }
        no_problems(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> SlowlogConfig {
        toml::from_str(&format!(
            "format = \"mysql\"\npath = \"/var/log/mysql/slow.log\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn watch_keys_default_and_validate() {
        let c = parse("");
        assert!(c.watch);
        assert_eq!(c.min_interval, Duration::from_millis(250));
        let common = crate::collectors::common("s");
        assert!(c.validate(&common).is_ok());
        assert!(!parse("watch = false").watch);
        assert!(parse("min_interval = \"100ms\"").validate(&common).is_ok());
        let errors = parse("min_interval = \"50ms\"")
            .validate(&common)
            .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "min_interval");
        assert!(errors[0].1.contains("50ms"), "{}", errors[0].1);
        assert!(
            toml::from_str::<SlowlogConfig>("format = \"mysql\"\npath = \"x\"\nwatch_mode = 1")
                .is_err()
        );
    }
}
