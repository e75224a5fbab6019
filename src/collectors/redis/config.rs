//! `[[redis]]` config: one Redis (or Valkey) server per table.

use crate::tls::{TlsReady, TlsSettings};
use std::path::PathBuf;
use std::time::Duration;

use redis::{ConnectionInfo, IntoConnectionInfo};
use serde::Deserialize;

use super::top::SeriesLimits;
use crate::collectors::{Problems, Ready, Validated, at_least_one};
use crate::poll::CommonTarget;
use crate::secret::{Secret, check_password_keys, read_secret_file, redact};

/// One Redis target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`, `rediss://…` (TLS) or
    /// `unix:///path/to/redis.sock?db=0`. The db is the one the key sampler scans.
    pub url: String,
    /// ACL user, when not in the URL.
    #[serde(default)]
    pub username: Option<String>,
    /// TLS for a `rediss://` url (Prometheus' `tls_config` keys); without
    /// it, the system roots and the url's host.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Password, when not in the URL; `${ENV}` is expanded.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File holding the password (Kubernetes secret mounts).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// How many SLOWLOG entries to fetch per poll (0 turns the slowlog off).
    #[serde(default = "default_slowlog_entries")]
    pub slowlog_entries: u32,
    /// Most bytes read from the server in one poll, and in one connect
    /// handshake. A reply beyond it fails the poll (reason `protocol`) and
    /// drops the connection; perfwatch never buffers much more than this.
    #[serde(default = "default_max_reply_bytes")]
    pub max_reply_bytes: usize,
    /// Commands with a `cmd` label of their own (the busiest by calls); the
    /// rest are summed into `cmd="other"`.
    #[serde(default = "default_max_commands")]
    pub max_commands: usize,
    /// Error codes with an `err` label of their own (the most frequent); the
    /// rest are summed into `err="other"`.
    #[serde(default = "default_max_error_codes")]
    pub max_error_codes: usize,
    /// Databases with a `db` label of their own (the largest by keys); the
    /// rest are summed into `db="other"`.
    #[serde(default = "default_max_dbs")]
    pub max_dbs: usize,
    /// The optional key sampler.
    #[serde(default)]
    pub keys: Option<KeySamplerConfig>,
    /// The optional key checks (`redis_key_size`, `redis_key_value`).
    #[serde(default)]
    pub key_checks: Option<KeyChecksConfig>,
}

/// `[redis.key_checks]`: redis_exporter's `-check-single-keys` (`keys`)
/// and `-check-keys` (`patterns`), bounded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyChecksConfig {
    /// Keys to check, checked on every poll (a missing one reads 0):
    /// `name` in the url's database, `db<N>=name` in database N.
    #[serde(default)]
    pub keys: Vec<String>,
    /// SCAN MATCH patterns (`celery*`, `db2=queue:*`); the keys they match
    /// are checked.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Most keys checked per poll; the rest are counted in
    /// `perfwatch_redis_key_checks_over_limit`.
    #[serde(default = "default_max_checked_keys")]
    pub max_keys: usize,
    /// COUNT hint of each pattern SCAN call.
    #[serde(default = "default_scan_count")]
    pub scan_count: usize,
    /// Most keys the pattern SCANs may walk per poll (the sum of their
    /// COUNT hints); a SCAN resumes from its cursor on the next poll.
    #[serde(default = "default_max_scan_per_poll")]
    pub max_scan_per_poll: usize,
}

fn default_max_checked_keys() -> usize {
    100
}
fn default_max_scan_per_poll() -> usize {
    10_000
}

/// Most `max_keys`: each checked key is one or two series.
pub const MAX_CHECKED_KEYS: usize = 10_000;
/// Most `keys` plus `patterns` entries.
pub const MAX_KEY_CHECK_ENTRIES: usize = 1_000;

fn default_slowlog_entries() -> u32 {
    128
}

/// What one poll reads from a real server is far below this: `INFO all` of
/// Redis 7 with a few hundred commands is ~50 KB, `SLOWLOG GET 128` at most
/// ~0.6 MB (Redis truncates each entry to 32 arguments of 128 bytes), and
/// the key sampler stops starting SCAN batches past half of it.
fn default_max_reply_bytes() -> usize {
    8 * 1024 * 1024
}
fn default_max_commands() -> usize {
    100
}
fn default_max_error_codes() -> usize {
    50
}
fn default_max_dbs() -> usize {
    16
}

/// Least `max_reply_bytes`: below it even the handshake's `INFO server` and
/// a small `INFO` fail.
pub const MIN_REPLY_BYTES: usize = 64 * 1024;
/// Most `max_reply_bytes`: the bound exists to keep a hostile reply from
/// taking the sidecar's memory, and a bigger one would not.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024 * 1024;

/// `[redis.keys]`: the incremental SCAN-based key sampler.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySamplerConfig {
    /// Key prefixes to group by (longest match wins). Empty: group by the first
    /// segment before `delimiter`.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Delimiter for automatic grouping.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Most groups with their own label; the rest are counted as `other`.
    #[serde(default = "default_max_groups")]
    pub max_groups: usize,
    /// COUNT hint passed to each SCAN call.
    #[serde(default = "default_scan_count")]
    pub scan_count: usize,
    /// Most keys examined per poll; the scan resumes from its cursor next poll.
    #[serde(default = "default_max_keys_per_poll")]
    pub max_keys_per_poll: usize,
    /// Share of the poll timeout the sampler may use (0–1).
    #[serde(default = "default_time_budget")]
    pub time_budget_ratio: f64,
    /// One in how many keys gets a `MEMORY USAGE` call (1 = every key).
    #[serde(default = "default_memory_sample_every")]
    pub memory_sample_every: usize,
    /// Least time between the starts of two SCAN cycles. A small keyspace
    /// would otherwise be walked completely on every poll, costing the
    /// server a PTTL per key per poll for numbers that change slowly.
    #[serde(default = "default_min_cycle_interval", with = "humantime_serde")]
    pub min_cycle_interval: Duration,
}

fn default_delimiter() -> String {
    ":".into()
}
fn default_max_groups() -> usize {
    50
}
fn default_scan_count() -> usize {
    1000
}
fn default_max_keys_per_poll() -> usize {
    20_000
}
fn default_time_budget() -> f64 {
    0.5
}
fn default_memory_sample_every() -> usize {
    10
}
fn default_min_cycle_interval() -> Duration {
    Duration::from_secs(60)
}

impl RedisConfig {
    /// Checks the table and parses the url once: what the collector needs,
    /// or every problem as `(key, message)`.
    pub(crate) fn validate(&self, _common: &CommonTarget) -> Result<RedisReady, Problems> {
        let mut errors = Vec::new();
        let shown = redact(&self.url, &[]);
        let scheme_ok = [
            "redis://",
            "rediss://",
            "unix://",
            "redis+unix://",
            "valkey://",
            "valkeys://",
        ]
        .iter()
        .any(|s| self.url.starts_with(s));
        let parsed = if !scheme_ok {
            errors.push((
                "url".into(),
                format!("url \"{shown}\" must start with redis://, rediss:// or unix://"),
            ));
            None
        } else {
            match self.url.as_str().into_connection_info() {
                Ok(info) => Some(info),
                Err(e) => {
                    errors.push(("url".into(), format!("url \"{shown}\" is not valid: {e}")));
                    None
                }
            }
        };
        let password = check_password_keys(
            self.password.as_ref(),
            self.password_file.as_deref(),
            &mut errors,
        );
        if !(MIN_REPLY_BYTES..=MAX_REPLY_BYTES).contains(&self.max_reply_bytes) {
            errors.push((
                "max_reply_bytes".into(),
                format!(
                    "max_reply_bytes must be between {MIN_REPLY_BYTES} and {MAX_REPLY_BYTES}, got {}",
                    self.max_reply_bytes
                ),
            ));
        }
        at_least_one(&mut errors, "max_commands", self.max_commands);
        at_least_one(&mut errors, "max_error_codes", self.max_error_codes);
        at_least_one(&mut errors, "max_dbs", self.max_dbs);
        if let Some(k) = &self.keys {
            check_keys(k, &mut errors);
        }
        if let Some(k) = &self.key_checks {
            check_key_checks(k, &mut errors);
        }
        let tls = match self.tls.as_ref().map(TlsSettings::validate) {
            Some(Ok(ready)) => Some(ready),
            Some(Err(problems)) => {
                errors.extend(problems);
                None
            }
            None => None,
        };
        if self.tls.is_some()
            && parsed
                .as_ref()
                .is_some_and(|i| !matches!(i.addr(), redis::ConnectionAddr::TcpTls { .. }))
        {
            errors.push((
                "tls".into(),
                "a tls table applies to rediss:// urls only".into(),
            ));
        }
        match parsed {
            Some(info) if errors.is_empty() => {
                let mut settings = info
                    .redis_settings()
                    .clone()
                    // CLIENT SETINFO fails on Redis < 7.2 and would show up as
                    // an application error in errorstat_ERR on every reconnect.
                    .set_skip_set_lib_name();
                if let Some(user) = &self.username {
                    settings = settings.set_username(user);
                }
                if let Some(pw) = &password {
                    settings = settings.set_password(pw.expose());
                }
                Ok(RedisReady {
                    connection: info.set_redis_settings(settings),
                    tls,
                })
            }
            _ => Err(errors),
        }
    }
}

fn check_keys(k: &KeySamplerConfig, errors: &mut Problems) {
    at_least_one(errors, "keys.max_groups", k.max_groups);
    at_least_one(errors, "keys.scan_count", k.scan_count);
    at_least_one(errors, "keys.max_keys_per_poll", k.max_keys_per_poll);
    if !(k.time_budget_ratio > 0.0 && k.time_budget_ratio <= 1.0) {
        errors.push((
            "keys.time_budget_ratio".into(),
            format!(
                "time_budget_ratio must be in (0, 1], got {}",
                k.time_budget_ratio
            ),
        ));
    }
    at_least_one(errors, "keys.memory_sample_every", k.memory_sample_every);
    if k.prefixes.is_empty() && k.delimiter.is_empty() {
        errors.push((
            "keys.delimiter".into(),
            "delimiter must not be empty when prefixes is empty".into(),
        ));
    }
}

fn check_key_checks(k: &KeyChecksConfig, errors: &mut Problems) {
    let entries = k.keys.len() + k.patterns.len();
    if entries == 0 {
        errors.push((
            "key_checks".into(),
            "key_checks needs at least one entry in keys or patterns".into(),
        ));
    }
    if entries > MAX_KEY_CHECK_ENTRIES {
        errors.push((
            "key_checks".into(),
            format!(
                "keys and patterns may have at most {MAX_KEY_CHECK_ENTRIES} entries together, got {entries}"
            ),
        ));
    }
    for (list, items) in [("keys", &k.keys), ("patterns", &k.patterns)] {
        for (i, entry) in items.iter().enumerate() {
            let (_, key) = super::key_checks::parse_entry(entry);
            if key.is_empty() {
                errors.push((
                    format!("key_checks.{list}"),
                    format!("{list}[{i}] \"{entry}\" names no key"),
                ));
            }
        }
    }
    at_least_one(errors, "key_checks.max_keys", k.max_keys);
    if k.max_keys > MAX_CHECKED_KEYS {
        errors.push((
            "key_checks.max_keys".into(),
            format!(
                "max_keys must be at most {MAX_CHECKED_KEYS}, got {}",
                k.max_keys
            ),
        ));
    }
    at_least_one(errors, "key_checks.scan_count", k.scan_count);
    at_least_one(errors, "key_checks.max_scan_per_poll", k.max_scan_per_poll);
}

/// What validating a `[[redis]]` table derives: the connection info parsed
/// from its url once, with `username` and the resolved password applied.
#[derive(Clone)]
pub struct RedisReady {
    connection: ConnectionInfo,
    /// The `[redis.tls]` table, checked.
    tls: Option<TlsReady>,
}

impl Ready for RedisReady {}

/// A checked `[[redis]]` target.
pub type RedisTarget = Validated<RedisConfig, RedisReady>;

impl RedisTarget {
    /// The `[redis.tls]` table, if any.
    pub(crate) fn tls(&self) -> Option<&TlsReady> {
        self.ready.tls.as_ref()
    }

    /// The series bounds of the INFO families.
    pub(crate) fn series_limits(&self) -> SeriesLimits {
        SeriesLimits {
            commands: self.config.max_commands,
            error_codes: self.config.max_error_codes,
            dbs: self.config.max_dbs,
        }
    }

    /// The connection info to connect with. `reread_secret`: after a failed
    /// session, `password_file` is read again so that a rotated secret (a
    /// Kubernetes secret mount) is picked up without a reload.
    pub(crate) fn connection_info(&self, reread_secret: bool) -> Result<ConnectionInfo, String> {
        let connection = &self.ready.connection;
        match &self.config.password_file {
            Some(path) if reread_secret => {
                let pw = read_secret_file(path)?;
                let settings = connection
                    .redis_settings()
                    .clone()
                    .set_password(pw.expose());
                Ok(connection.clone().set_redis_settings(settings))
            }
            _ => Ok(connection.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::collectors::ReadyTarget;
    use crate::config::Config;

    fn load(keys: &str) -> Result<Config, String> {
        let body = format!("[[redis]]\nname = \"c\"\nurl = \"redis://127.0.0.1/0\"\n{keys}");
        Config::from_source("t.toml", &body, &|_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn bounds_have_defaults() {
        let c = load("").unwrap();
        let ReadyTarget::Redis(r) = &c.targets[0].ready else {
            panic!("not redis")
        };
        assert_eq!(r.max_reply_bytes, 8 * 1024 * 1024);
        let l = r.series_limits();
        assert_eq!((l.commands, l.error_codes, l.dbs), (100, 50, 16));
    }

    #[test]
    fn bad_bounds_name_the_key_and_the_value() {
        for (keys, want) in [
            (
                "max_reply_bytes = 0",
                "redis[0].max_reply_bytes: max_reply_bytes must be between 65536 and 1073741824, got 0",
            ),
            (
                "max_reply_bytes = 1099511627776",
                "max_reply_bytes must be between 65536 and 1073741824, got 1099511627776",
            ),
            (
                "max_commands = 0",
                "redis[0].max_commands: max_commands must be at least 1, got 0",
            ),
            (
                "max_error_codes = 0",
                "redis[0].max_error_codes: max_error_codes must be at least 1, got 0",
            ),
            (
                "max_dbs = 0",
                "redis[0].max_dbs: max_dbs must be at least 1, got 0",
            ),
        ] {
            let err = load(keys).unwrap_err();
            assert!(err.contains(want), "{keys}: {err}");
        }
        assert!(load("max_reply_bytes = 65536").is_ok());
    }

    #[test]
    fn key_checks_are_bounded_and_name_the_bad_value() {
        for (table, want) in [
            (
                "[redis.key_checks]\n",
                "redis[0].key_checks: key_checks needs at least one entry in keys or patterns",
            ),
            (
                "[redis.key_checks]\nkeys = [\"db2=\"]\n",
                "redis[0].key_checks.keys: keys[0] \"db2=\" names no key",
            ),
            (
                "[redis.key_checks]\npatterns = [\"\"]\n",
                "redis[0].key_checks.patterns: patterns[0] \"\" names no key",
            ),
            (
                "[redis.key_checks]\nkeys = [\"q\"]\nmax_keys = 0\n",
                "max_keys must be at least 1, got 0",
            ),
            (
                "[redis.key_checks]\nkeys = [\"q\"]\nmax_keys = 10001\n",
                "max_keys must be at most 10000, got 10001",
            ),
            (
                "[redis.key_checks]\nkeys = [\"q\"]\nmax_scan_per_poll = 0\n",
                "max_scan_per_poll must be at least 1, got 0",
            ),
        ] {
            let err = load(table).unwrap_err();
            assert!(err.contains(want), "{table}: {err}");
        }
        let c =
            load("[redis.key_checks]\nkeys = [\"celery\"]\npatterns = [\"db1=q:*\"]\n").unwrap();
        let ReadyTarget::Redis(r) = &c.targets[0].ready else {
            panic!("not redis")
        };
        let k = r.key_checks.as_ref().unwrap();
        assert_eq!(
            (k.max_keys, k.scan_count, k.max_scan_per_poll),
            (100, 1000, 10_000)
        );
    }
}
