//! `[[redis]]` config: one Redis (or Valkey) server per table.

use crate::tls::{TlsReady, TlsSettings};
use std::path::PathBuf;
use std::time::Duration;

use redis::{ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};
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
    /// With `sentinels` it may be left out (`redis://` is assumed); its
    /// scheme, credentials and db still apply, its host and port are
    /// replaced by the address the sentinels report.
    #[serde(default)]
    pub url: String,
    /// Sentinels (`host:port`) to ask for the primary's address by
    /// `master_name`, every poll; perfwatch follows a failover without a
    /// reload.
    #[serde(default)]
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the primary under (required with
    /// `sentinels`).
    pub master_name: Option<String>,
    /// ACL user for the sentinels (their `requirepass`/ACL, not the data
    /// nodes').
    pub sentinel_username: Option<String>,
    /// Password for the sentinels; `${ENV}` is expanded.
    pub sentinel_password: Option<Secret>,
    /// File holding the sentinels' password.
    pub sentinel_password_file: Option<PathBuf>,
    /// Whether a server that reports `cluster_enabled:1` is watched as a
    /// whole Redis Cluster (every node found from it). `false` polls the
    /// one node the url names.
    #[serde(default = "default_cluster")]
    pub cluster: bool,
    /// More cluster nodes (`host:port`) to discover the cluster from when
    /// the url's node is down.
    #[serde(default)]
    pub cluster_seeds: Vec<String>,
    /// Most cluster nodes polled; nodes beyond it (by address) are counted
    /// in `perfwatch_redis_cluster_nodes_not_polled`.
    #[serde(default = "default_max_cluster_nodes")]
    pub max_cluster_nodes: usize,
    /// ACL user, when not in the URL.
    pub username: Option<String>,
    /// TLS for a `rediss://` url (Prometheus' `tls_config` keys); without
    /// it, the system roots and the url's host.
    pub tls: Option<TlsSettings>,
    /// Password, when not in the URL; `${ENV}` is expanded.
    pub password: Option<Secret>,
    /// File holding the password (Kubernetes secret mounts).
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
    pub keys: Option<KeySamplerConfig>,
    /// The optional key checks (`redis_key_size`, `redis_key_value`).
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

/// Most `sentinels`: a set has three or five; each is one connection and
/// one pipeline per poll.
pub const MAX_SENTINELS: usize = 16;

fn default_cluster() -> bool {
    true
}
fn default_max_cluster_nodes() -> usize {
    64
}

/// Most `max_cluster_nodes`: each node is a connection and a pipeline per
/// poll, and a share of the poll's time.
pub const MAX_CLUSTER_NODES: usize = 1_000;
/// Most `cluster_seeds`.
pub const MAX_CLUSTER_SEEDS: usize = 64;

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
        let with_sentinels = !self.sentinels.is_empty();
        if self.url.is_empty() && !with_sentinels {
            errors.push((
                "url".into(),
                "url is required (or sentinels and master_name)".into(),
            ));
            return Err(errors);
        }
        // With sentinels the url's host and port are only a placeholder: the
        // sentinels name the primary.
        let url = if self.url.is_empty() {
            "redis://sentinel-resolved/0"
        } else {
            self.url.as_str()
        };
        let shown = redact(url, &[]);
        let scheme_ok = [
            "redis://",
            "rediss://",
            "unix://",
            "redis+unix://",
            "valkey://",
            "valkeys://",
        ]
        .iter()
        .any(|s| url.starts_with(s));
        let parsed = if !scheme_ok {
            errors.push((
                "url".into(),
                format!("url \"{shown}\" must start with redis://, rediss:// or unix://"),
            ));
            None
        } else {
            match url.into_connection_info() {
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
        let unix = parsed
            .as_ref()
            .is_some_and(|i| matches!(i.addr(), redis::ConnectionAddr::Unix(_)));
        let sentinel = self.check_sentinels(unix, &mut errors);
        let cluster_seeds = self.check_cluster(unix, &mut errors);
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
                let connection = info.set_redis_settings(settings);
                let sentinel = sentinel.map(|(master_name, settings)| SentinelReady {
                    master_name,
                    password_file: self.sentinel_password_file.clone(),
                    sentinels: self
                        .sentinels
                        .iter()
                        .filter_map(|entry| {
                            let (host, port) = parse_host_port(entry).ok()?;
                            let info = at_addr(&connection, &host, port)?;
                            Some((entry.clone(), info.set_redis_settings(settings.clone())))
                        })
                        .collect(),
                });
                let cluster_seeds = cluster_seeds
                    .into_iter()
                    .filter_map(|(host, port)| at_addr(&connection, &host, port))
                    .collect();
                Ok(RedisReady {
                    connection,
                    tls,
                    sentinel,
                    cluster_seeds,
                })
            }
            _ => Err(errors),
        }
    }
}

impl RedisConfig {
    /// Checks the sentinel keys: the master name and the sentinels'
    /// handshake settings (their own user and password), when the table
    /// has sentinels.
    fn check_sentinels(
        &self,
        unix: bool,
        errors: &mut Problems,
    ) -> Option<(String, RedisConnectionInfo)> {
        if self.sentinels.is_empty() {
            for (key, set) in [
                ("master_name", self.master_name.is_some()),
                ("sentinel_username", self.sentinel_username.is_some()),
                ("sentinel_password", self.sentinel_password.is_some()),
                (
                    "sentinel_password_file",
                    self.sentinel_password_file.is_some(),
                ),
            ] {
                if set {
                    errors.push((key.into(), format!("{key} applies only with sentinels")));
                }
            }
            return None;
        }
        if self.sentinels.len() > MAX_SENTINELS {
            errors.push((
                "sentinels".into(),
                format!(
                    "at most {MAX_SENTINELS} sentinels, got {}",
                    self.sentinels.len()
                ),
            ));
        }
        for (i, entry) in self.sentinels.iter().enumerate() {
            if let Err(why) = parse_host_port(entry) {
                errors.push(("sentinels".into(), format!("sentinels[{i}] {why}")));
            }
        }
        if unix {
            errors.push((
                "url".into(),
                "a unix:// url cannot be combined with sentinels (they report a TCP address)"
                    .into(),
            ));
        }
        let name = self.master_name.clone().unwrap_or_default();
        if name.is_empty() {
            errors.push((
                "master_name".into(),
                "master_name is required with sentinels".into(),
            ));
        }
        if self.sentinel_password.is_some() && self.sentinel_password_file.is_some() {
            errors.push((
                "sentinel_password_file".into(),
                "set sentinel_password or sentinel_password_file, not both".into(),
            ));
        }
        let from_file = self.sentinel_password_file.as_deref().and_then(|path| {
            read_secret_file(path)
                .map_err(|e| errors.push(("sentinel_password_file".into(), e)))
                .ok()
        });
        let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(user) = &self.sentinel_username {
            settings = settings.set_username(user);
        }
        if let Some(pw) = self.sentinel_password.clone().or(from_file) {
            settings = settings.set_password(pw.expose());
        }
        Some((name, settings))
    }

    /// Checks the cluster keys; the seed addresses.
    fn check_cluster(&self, unix: bool, errors: &mut Problems) -> Vec<(String, u16)> {
        if !(1..=MAX_CLUSTER_NODES).contains(&self.max_cluster_nodes) {
            errors.push((
                "max_cluster_nodes".into(),
                format!(
                    "max_cluster_nodes must be between 1 and {MAX_CLUSTER_NODES}, got {}",
                    self.max_cluster_nodes
                ),
            ));
        }
        if self.cluster_seeds.is_empty() {
            return Vec::new();
        }
        if !self.sentinels.is_empty() {
            errors.push((
                "cluster_seeds".into(),
                "cluster_seeds cannot be combined with sentinels (a Redis Cluster has no sentinels)"
                    .into(),
            ));
        }
        if !self.cluster {
            errors.push((
                "cluster_seeds".into(),
                "cluster_seeds needs cluster = true".into(),
            ));
        }
        if unix {
            errors.push((
                "url".into(),
                "a unix:// url cannot be combined with cluster_seeds".into(),
            ));
        }
        if self.cluster_seeds.len() > MAX_CLUSTER_SEEDS {
            errors.push((
                "cluster_seeds".into(),
                format!(
                    "at most {MAX_CLUSTER_SEEDS} cluster_seeds, got {}",
                    self.cluster_seeds.len()
                ),
            ));
        }
        let mut seeds = Vec::new();
        for (i, entry) in self.cluster_seeds.iter().enumerate() {
            match parse_host_port(entry) {
                Ok(hp) => seeds.push(hp),
                Err(why) => {
                    errors.push(("cluster_seeds".into(), format!("cluster_seeds[{i}] {why}")))
                }
            }
        }
        seeds
    }
}

/// `host:port` (`[v6]:port` for an IPv6 address) as written in
/// `sentinels` and `cluster_seeds`, or why it is not one.
pub(crate) fn parse_host_port(entry: &str) -> Result<(String, u16), String> {
    let bad = || format!("\"{entry}\" is not host:port");
    let (host, port) = entry.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.contains(['/', '@', ' ']) {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// `template` (its scheme, TLS-ness and handshake settings) pointed at
/// `host:port`: the address a sentinel reports for the primary, a cluster
/// node's. `None` when the address does not parse as a url host.
pub(crate) fn at_addr(template: &ConnectionInfo, host: &str, port: u16) -> Option<ConnectionInfo> {
    let scheme = match template.addr() {
        redis::ConnectionAddr::TcpTls { .. } => "rediss",
        _ => "redis",
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!("{scheme}://{host}:{port}/")
        .into_connection_info()
        .ok()
        .map(|i| i.set_redis_settings(template.redis_settings().clone()))
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
    /// The sentinels to resolve the primary through, if any.
    pub(crate) sentinel: Option<SentinelReady>,
    /// `cluster_seeds`, as connection infos like the url's.
    pub(crate) cluster_seeds: Vec<ConnectionInfo>,
}

/// The sentinel keys, checked: the master name and one connection info per
/// sentinel (its own credentials, the url's scheme).
#[derive(Clone)]
pub(crate) struct SentinelReady {
    pub master_name: String,
    /// `sentinel_password_file`: read again before each new connection.
    pub password_file: Option<PathBuf>,
    /// (the entry as configured, the label value; how to connect).
    pub sentinels: Vec<(String, ConnectionInfo)>,
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

    fn load_table(table: &str) -> Result<Config, String> {
        let body = format!("[[redis]]\nname = \"c\"\n{table}");
        Config::from_source("t.toml", &body, &|_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn sentinel_keys_are_checked_together_and_name_every_problem() {
        let err = load_table(
            "sentinels = [\"10.0.0.1\", \"h:0\", \"10.0.0.3:26379\"]\n\
             sentinel_password = \"pw\"\nsentinel_password_file = \"/nonexistent/pw\"\n",
        )
        .unwrap_err();
        for want in [
            "redis[0].sentinels: sentinels[0] \"10.0.0.1\" is not host:port",
            "redis[0].sentinels: sentinels[1] \"h:0\" is not host:port",
            "redis[0].master_name: master_name is required with sentinels",
            "redis[0].sentinel_password_file: set sentinel_password or sentinel_password_file, not both",
            "redis[0].sentinel_password_file: cannot read secret file",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
        let err =
            load_table("url = \"redis://h/0\"\nmaster_name = \"m\"\nsentinel_password = \"pw\"\n")
                .unwrap_err();
        assert!(
            err.contains("redis[0].master_name: master_name applies only with sentinels"),
            "{err}"
        );
        assert!(
            err.contains(
                "redis[0].sentinel_password: sentinel_password applies only with sentinels"
            ),
            "{err}"
        );
        let err = load_table("").unwrap_err();
        assert!(
            err.contains("url is required (or sentinels and master_name)"),
            "{err}"
        );
        let err =
            load_table("url = \"unix:///r.sock\"\nsentinels = [\"a:1\"]\nmaster_name = \"m\"\n")
                .unwrap_err();
        assert!(
            err.contains("a unix:// url cannot be combined with sentinels"),
            "{err}"
        );
        let many: Vec<String> = (0..17).map(|i| format!("\"h{i}:26379\"")).collect();
        let err = load_table(&format!(
            "sentinels = [{}]\nmaster_name = \"m\"\n",
            many.join(",")
        ))
        .unwrap_err();
        assert!(err.contains("at most 16 sentinels, got 17"), "{err}");
    }

    #[test]
    fn sentinels_get_their_own_credentials_and_the_url_scheme() {
        let c = load_table(
            "url = \"rediss://:data-pw@ignored:1/2\"\nsentinels = [\"[::1]:26379\", \"s2:26380\"]\n\
             master_name = \"m\"\nsentinel_username = \"su\"\nsentinel_password = \"spw\"\n",
        )
        .unwrap();
        let ReadyTarget::Redis(r) = &c.targets[0].ready else {
            panic!("not redis")
        };
        let s = r.ready.sentinel.as_ref().unwrap();
        assert_eq!(s.master_name, "m");
        let labels: Vec<&str> = s.sentinels.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["[::1]:26379", "s2:26380"]);
        let info = &s.sentinels[1].1;
        assert!(
            matches!(info.addr(), redis::ConnectionAddr::TcpTls { host, port: 26380, .. } if host == "s2")
        );
        assert_eq!(info.redis_settings().username(), Some("su"));
        assert_eq!(info.redis_settings().password(), Some("spw"));
        // The primary keeps the url's credentials and db, at the address
        // the sentinels report.
        let primary = super::at_addr(&r.connection_info(false).unwrap(), "10.0.0.9", 6380).unwrap();
        assert_eq!(primary.addr().to_string(), "10.0.0.9:6380");
        assert_eq!(primary.redis_settings().password(), Some("data-pw"));
        assert_eq!(primary.redis_settings().db(), 2);
        // Without a url: plain redis://, db 0.
        let c = load_table("sentinels = [\"s:26379\"]\nmaster_name = \"m\"\n").unwrap();
        let ReadyTarget::Redis(r) = &c.targets[0].ready else {
            panic!("not redis")
        };
        let info = &r.ready.sentinel.as_ref().unwrap().sentinels[0].1;
        assert!(matches!(info.addr(), redis::ConnectionAddr::Tcp(host, 26379) if host == "s"));
        assert_eq!(info.redis_settings().password(), None);
    }

    #[test]
    fn cluster_keys_are_checked_and_seeds_keep_the_url_scheme_and_credentials() {
        let err = load_table(
            "url = \"unix:///r.sock\"\ncluster = false\ncluster_seeds = [\"a\", \"b:7000\"]\nmax_cluster_nodes = 0\n",
        )
        .unwrap_err();
        for want in [
            "redis[0].max_cluster_nodes: max_cluster_nodes must be between 1 and 1000, got 0",
            "redis[0].cluster_seeds: cluster_seeds needs cluster = true",
            "redis[0].url: a unix:// url cannot be combined with cluster_seeds",
            "redis[0].cluster_seeds: cluster_seeds[0] \"a\" is not host:port",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
        let err = load_table(
            "sentinels = [\"s:1\"]\nmaster_name = \"m\"\ncluster_seeds = [\"b:7000\"]\n",
        )
        .unwrap_err();
        assert!(
            err.contains("cluster_seeds cannot be combined with sentinels"),
            "{err}"
        );
        let c =
            load_table("url = \"redis://:pw@a:7000/0\"\ncluster_seeds = [\"b:7001\"]\n").unwrap();
        let ReadyTarget::Redis(r) = &c.targets[0].ready else {
            panic!("not redis")
        };
        assert!(r.cluster);
        assert_eq!(r.max_cluster_nodes, 64);
        let seed = &r.ready.cluster_seeds[0];
        assert_eq!(seed.addr().to_string(), "b:7001");
        assert_eq!(seed.redis_settings().password(), Some("pw"));
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
