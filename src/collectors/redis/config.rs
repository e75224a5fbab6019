//! `[[redis]]` config: one Redis (or Valkey) server per table.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::poll::CommonTarget;
use crate::secret::{Secret, read_secret_file};

/// One Redis target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// The `target` label; unique among `[[redis]]` tables.
    pub name: String,
    /// `redis://[user:password@]host:port/db`, `rediss://…` (TLS) or
    /// `unix:///path/to/redis.sock?db=0`. The db is the one the key sampler scans.
    pub url: String,
    /// ACL user, when not in the URL.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, when not in the URL; `${ENV}` is expanded.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File holding the password (Kubernetes secret mounts).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Overrides `global.interval`.
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Overrides `global.timeout`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// How many SLOWLOG entries to fetch per poll (0 turns the slowlog off).
    #[serde(default = "default_slowlog_entries")]
    pub slowlog_entries: u32,
    /// The optional key sampler.
    #[serde(default)]
    pub keys: Option<KeySamplerConfig>,
}

fn default_slowlog_entries() -> u32 {
    128
}

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
    /// Name, interval and timeout.
    pub fn common(&self) -> CommonTarget {
        CommonTarget {
            name: self.name.clone(),
            interval: self.interval,
            timeout: self.timeout,
        }
    }

    /// Cross-field checks; `(key, message)` pairs.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
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
        if !scheme_ok {
            errors.push((
                "url".into(),
                format!(
                    "url \"{}\" must start with redis://, rediss:// or unix://",
                    crate::collectors::redis::mask_url(&self.url)
                ),
            ));
        } else if let Err(e) = redis::Client::open(self.url.as_str()) {
            errors.push((
                "url".into(),
                format!(
                    "url \"{}\" is not valid: {e}",
                    crate::collectors::redis::mask_url(&self.url)
                ),
            ));
        }
        if self.password.is_some() && self.password_file.is_some() {
            errors.push((
                "password_file".into(),
                "set password or password_file, not both".into(),
            ));
        }
        if let Some(path) = &self.password_file
            && let Err(e) = read_secret_file(path)
        {
            errors.push(("password_file".into(), e));
        }
        if let Some(k) = &self.keys {
            if k.max_groups == 0 {
                errors.push((
                    "keys.max_groups".into(),
                    "max_groups must be at least 1, got 0".into(),
                ));
            }
            if k.scan_count == 0 {
                errors.push((
                    "keys.scan_count".into(),
                    "scan_count must be at least 1, got 0".into(),
                ));
            }
            if k.max_keys_per_poll == 0 {
                errors.push((
                    "keys.max_keys_per_poll".into(),
                    "max_keys_per_poll must be at least 1, got 0".into(),
                ));
            }
            if !(k.time_budget_ratio > 0.0 && k.time_budget_ratio <= 1.0) {
                errors.push((
                    "keys.time_budget_ratio".into(),
                    format!(
                        "time_budget_ratio must be in (0, 1], got {}",
                        k.time_budget_ratio
                    ),
                ));
            }
            if k.memory_sample_every == 0 {
                errors.push((
                    "keys.memory_sample_every".into(),
                    "memory_sample_every must be at least 1, got 0".into(),
                ));
            }
            if k.prefixes.is_empty() && k.delimiter.is_empty() {
                errors.push((
                    "keys.delimiter".into(),
                    "delimiter must not be empty when prefixes is empty".into(),
                ));
            }
        }
        errors
    }

    /// The password from `password` or `password_file`, if any.
    pub fn resolved_password(&self) -> Result<Option<Secret>, String> {
        match (&self.password, &self.password_file) {
            (Some(p), _) => Ok(Some(p.clone())),
            (None, Some(path)) => read_secret_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }
}
