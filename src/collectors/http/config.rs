//! `[[http]]` config: one endpoint of the app per table.
//!
//! Keys shared by every kind come first; kind-specific keys are `Option`s so
//! that [`HttpConfig::validate`] can reject a key given to the wrong kind
//! (`repeat` on a `health` target is a mistake worth reporting). The
//! accessors apply the defaults.

use crate::tls::{TlsReady, TlsSettings};
use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::collectors::{Problems, Ready, Validated};
use crate::poll::CommonTarget;
use crate::secret::{Secret, read_secret_file, redact};

/// What the endpoint is, and so what perfwatch reads from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// A health check: status code, response time, JSON checks.
    Health,
    /// An expensive endpoint to time (first and repeated requests).
    Latency,
    /// The app's connection-pool endpoint (JSON or SQLAlchemy `pool.status()`).
    Pool,
    /// The app's own `/metrics`: cache hit ratios and pool gauges picked from it.
    Prometheus,
}

impl EndpointKind {
    /// The config value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Latency => "latency",
            Self::Pool => "pool",
            Self::Prometheus => "prometheus",
        }
    }
}

/// How a `pool` endpoint's body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolFormat {
    /// JSON when the body is a JSON object, SQLAlchemy text otherwise (also a
    /// JSON string holding the text).
    #[default]
    Auto,
    /// A JSON object read through the `*_pointer` keys.
    Json,
    /// SQLAlchemy `QueuePool.status()` text.
    Sqlalchemy,
}

/// One HTTP app endpoint target: the `[[http]]` table, boxed (it has many
/// optional keys and would otherwise make every `TargetConfig` large).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct HttpConfig(Box<HttpSettings>);

impl std::ops::Deref for HttpConfig {
    type Target = HttpSettings;
    fn deref(&self) -> &HttpSettings {
        &self.0
    }
}

impl HttpConfig {
    /// Checks the table, parses the url and builds the headers once: what
    /// the collector needs, or every problem as `(key, message)`.
    pub(crate) fn validate(&self, _common: &CommonTarget) -> Result<HttpReady, Problems> {
        let mut url = None;
        let mut headers = HeaderMap::new();
        let mut errors = self.0.check(&mut url, &mut headers);
        let tls = match self.0.tls.as_ref().map(TlsSettings::validate) {
            Some(Ok(ready)) => Some(ready),
            Some(Err(problems)) => {
                errors.extend(problems);
                None
            }
            None => None,
        };
        if self.0.tls.is_some() && url.as_ref().is_some_and(|u| u.scheme() != "https") {
            errors.push((
                "tls".into(),
                "a tls table applies to https:// urls only".into(),
            ));
        }
        match url {
            Some(url) if errors.is_empty() => Ok(HttpReady {
                url,
                header_map: headers,
                tls,
            }),
            _ => Err(errors),
        }
    }
}

/// What validating an `[[http]]` table derives: its url parsed and its
/// headers (values resolved, marked sensitive) built once.
#[derive(Clone)]
pub struct HttpReady {
    url: reqwest::Url,
    header_map: HeaderMap,
    /// The `[http.tls]` table, checked (https only; without it, the system
    /// roots and the url's host).
    tls: Option<TlsReady>,
}

impl Ready for HttpReady {}

/// A checked `[[http]]` target.
pub type HttpTarget = Validated<HttpConfig, HttpReady>;

impl HttpTarget {
    /// The parsed url.
    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.ready.url
    }

    /// The TLS client config for an https url: the `[http.tls]` table, else
    /// the system roots.
    pub(crate) fn tls_client_config(&self) -> Result<rustls::ClientConfig, String> {
        match &self.ready.tls {
            Some(t) => t.client_config(),
            None => TlsSettings::default()
                .validate()
                .map_err(|p| format!("{p:?}"))?
                .client_config(),
        }
    }

    /// The headers to send. `reread_files`: after a failed poll the client is
    /// rebuilt and `header_files` are read again, so a rotated secret is
    /// picked up without a reload.
    pub(crate) fn headers(&self, reread_files: bool) -> Result<HeaderMap, String> {
        let mut headers = self.ready.header_map.clone();
        if reread_files {
            for (name, path) in &self.config.header_files {
                let (n, v) = header(name, &read_secret_file(path)?).map_err(|e| e.join("; "))?;
                headers.insert(n, v);
            }
        }
        Ok(headers)
    }
}

/// The keys of one `[[http]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// `http://host:port/path` or `https://…` (userinfo is masked in messages).
    pub url: String,
    /// TLS to an `https://` url (Prometheus' `tls_config` keys).
    pub tls: Option<TlsSettings>,
    /// `health`, `latency`, `pool` or `prometheus`.
    pub kind: EndpointKind,
    /// Request method (default GET).
    pub method: Option<String>,
    /// Request body (e.g. for a POST to time).
    pub body: Option<String>,
    /// Request headers; values are secrets (`${ENV}` is expanded) and never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Request headers whose values are read from files (secret mounts).
    #[serde(default)]
    pub header_files: BTreeMap<String, PathBuf>,
    /// Status codes that mean the endpoint is up (default `[200]`).
    #[serde(default = "default_expect_status")]
    pub expect_status: Vec<u16>,
    /// Most bytes of a body perfwatch reads; larger bodies are not read further.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Redirects followed at most (0 = none).
    #[serde(default = "default_max_redirects")]
    pub max_redirects: usize,

    /// health: status words that mean healthy (case-insensitive).
    pub healthy_values: Option<Vec<String>>,
    /// health: JSON pointer to the overall status (default `/status`).
    pub status_pointer: Option<String>,
    /// health: JSON pointer to the checks object or array (default `/checks`).
    pub checks_pointer: Option<String>,
    /// health: most checks exported (default 50).
    pub max_checks: Option<usize>,

    /// latency: requests per poll; the first is `attempt="first"`, the others
    /// `attempt="repeat"` (default 1).
    pub repeat: Option<u32>,

    /// pool: body format (default auto).
    pub pool_format: Option<PoolFormat>,
    /// pool: JSON pointer to the pool size (default `/pool_size`).
    pub pool_size_pointer: Option<String>,
    /// pool: JSON pointer to idle connections (default `/checked_in`).
    pub checked_in_pointer: Option<String>,
    /// pool: JSON pointer to connections in use (default `/checked_out`).
    pub checked_out_pointer: Option<String>,
    /// pool: JSON pointer to the overflow (default `/overflow`).
    pub overflow_pointer: Option<String>,
    /// pool: JSON pointer to the overflow limit the app reports (default
    /// `/max_overflow`; absent in the body = not reported).
    pub max_overflow_pointer: Option<String>,
    /// pool, prometheus: the app's `max_overflow` when the endpoint does not
    /// report it (-1 = unlimited, then no saturation ratio). Unset and not
    /// reported: saturation is checked_out / pool_size, the seed guide's rule.
    pub max_overflow: Option<i64>,

    /// prometheus: counter of cache hits (default `cache_hits_total`).
    pub hits_metric: Option<String>,
    /// prometheus: counter of cache misses (default `cache_misses_total`).
    pub misses_metric: Option<String>,
    /// prometheus: label holding the key prefix (default `key_prefix`).
    pub prefix_label: Option<String>,
    /// prometheus: most prefixes with their own series (default 50); the rest are `other`.
    pub max_prefixes: Option<usize>,
    /// prometheus: gauge whose change means the app restarted (default
    /// `process_start_time_seconds`; empty = rely on counters going down).
    pub epoch_metric: Option<String>,
    /// prometheus: pool size gauge (default `db_connection_pool_size`).
    pub pool_size_metric: Option<String>,
    /// prometheus: idle connections gauge (default `db_connection_pool_checked_in`).
    pub pool_checked_in_metric: Option<String>,
    /// prometheus: connections in use gauge (default `db_connection_pool_checked_out`).
    pub pool_checked_out_metric: Option<String>,
    /// prometheus: overflow gauge (default `db_connection_pool_overflow`).
    pub pool_overflow_metric: Option<String>,
    /// prometheus: overflow limit gauge (default `db_connection_pool_max_overflow`;
    /// absent from the scrape = not reported).
    pub pool_max_overflow_metric: Option<String>,
}

fn default_expect_status() -> Vec<u16> {
    vec![200]
}
fn default_max_body_bytes() -> u64 {
    1024 * 1024
}
fn default_max_redirects() -> usize {
    5
}

/// `(key, &value)` of each named field of a config, the key being the
/// field's name (so a message can never name another key than the one read).
macro_rules! by_key {
    ($cfg:expr => $($field:ident),+ $(,)?) => {
        [$((stringify!($field), &$cfg.$field)),+]
    };
}

/// Largest `max_body_bytes`: a body is held in memory while it is parsed, and
/// no health, pool or metrics body needs more.
const MAX_BODY_BYTES_LIMIT: u64 = 256 * 1024 * 1024;

/// Most checks / prefixes a user may ask for (label cardinality guard).
const MAX_SERIES_LIMIT: usize = 1000;

/// Default status words of a healthy check.
pub const DEFAULT_HEALTHY_VALUES: [&str; 4] = ["healthy", "ok", "up", "pass"];

/// The prometheus-kind settings, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapePicks {
    /// Cache hits counter name.
    pub hits: String,
    /// Cache misses counter name.
    pub misses: String,
    /// The key-prefix label.
    pub prefix_label: String,
    /// The restart-epoch gauge ("" = none).
    pub epoch: String,
    /// Pool size gauge.
    pub pool_size: String,
    /// Idle connections gauge.
    pub pool_checked_in: String,
    /// In-use connections gauge.
    pub pool_checked_out: String,
    /// Overflow gauge.
    pub pool_overflow: String,
    /// Overflow limit gauge (max_overflow).
    pub pool_max_overflow: String,
}

/// The pool-kind JSON pointers, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolPointers {
    /// Pool size.
    pub pool_size: String,
    /// Idle connections.
    pub checked_in: String,
    /// Connections in use.
    pub checked_out: String,
    /// Overflow.
    pub overflow: String,
    /// The overflow limit (max_overflow), optional.
    pub max_overflow: String,
}

impl HttpSettings {
    /// The request method (validated).
    pub fn method(&self) -> reqwest::Method {
        self.method
            .as_deref()
            .and_then(|m| reqwest::Method::from_bytes(m.as_bytes()).ok())
            .unwrap_or(reqwest::Method::GET)
    }

    /// Healthy status words, lowercased.
    pub fn healthy_values(&self) -> Vec<String> {
        match &self.healthy_values {
            Some(v) => v.iter().map(|s| s.to_lowercase()).collect(),
            None => DEFAULT_HEALTHY_VALUES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// JSON pointer of the overall health status.
    pub fn status_pointer(&self) -> &str {
        self.status_pointer.as_deref().unwrap_or("/status")
    }

    /// JSON pointer of the health checks.
    pub fn checks_pointer(&self) -> &str {
        self.checks_pointer.as_deref().unwrap_or("/checks")
    }

    /// Most checks exported.
    pub fn max_checks(&self) -> usize {
        self.max_checks.unwrap_or(50)
    }

    /// Requests per latency poll.
    pub fn repeat(&self) -> u32 {
        self.repeat.unwrap_or(1)
    }

    /// The pool body format.
    pub fn pool_format(&self) -> PoolFormat {
        self.pool_format.unwrap_or_default()
    }

    /// The pool JSON pointers.
    pub fn pool_pointers(&self) -> PoolPointers {
        let p = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_owned());
        PoolPointers {
            pool_size: p(&self.pool_size_pointer, "/pool_size"),
            checked_in: p(&self.checked_in_pointer, "/checked_in"),
            checked_out: p(&self.checked_out_pointer, "/checked_out"),
            overflow: p(&self.overflow_pointer, "/overflow"),
            max_overflow: p(&self.max_overflow_pointer, "/max_overflow"),
        }
    }

    /// The app's max_overflow as configured (`None`: not configured; what
    /// the endpoint reports, else the seed rule, applies).
    pub fn max_overflow(&self) -> Option<i64> {
        self.max_overflow
    }

    /// Most key prefixes with their own series.
    pub fn max_prefixes(&self) -> usize {
        self.max_prefixes.unwrap_or(50)
    }

    /// The metric names picked from the app's `/metrics`.
    pub fn scrape_picks(&self) -> ScrapePicks {
        let p = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_owned());
        ScrapePicks {
            hits: p(&self.hits_metric, "cache_hits_total"),
            misses: p(&self.misses_metric, "cache_misses_total"),
            prefix_label: p(&self.prefix_label, "key_prefix"),
            epoch: p(&self.epoch_metric, "process_start_time_seconds"),
            pool_size: p(&self.pool_size_metric, "db_connection_pool_size"),
            pool_checked_in: p(
                &self.pool_checked_in_metric,
                "db_connection_pool_checked_in",
            ),
            pool_checked_out: p(
                &self.pool_checked_out_metric,
                "db_connection_pool_checked_out",
            ),
            pool_overflow: p(&self.pool_overflow_metric, "db_connection_pool_overflow"),
            pool_max_overflow: p(
                &self.pool_max_overflow_metric,
                "db_connection_pool_max_overflow",
            ),
        }
    }

    /// The metric names the config sets explicitly (prometheus kind): each
    /// must be in the scrape, else the target is degraded.
    pub fn explicit_metrics(&self) -> Vec<&str> {
        [
            &self.hits_metric,
            &self.misses_metric,
            &self.pool_size_metric,
            &self.pool_checked_in_metric,
            &self.pool_checked_out_metric,
            &self.pool_overflow_metric,
            &self.pool_max_overflow_metric,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect()
    }

    /// Kind-specific keys that are set, with the kinds they apply to.
    fn kind_keys(&self) -> Vec<(&'static str, bool, &'static [EndpointKind])> {
        use EndpointKind::*;
        // `(key, set, kinds)` of each field, its key being its name.
        macro_rules! keys {
            ($($kinds:expr => [$($field:ident),+ $(,)?]),+ $(,)?) => {
                vec![$($((stringify!($field), self.$field.is_some(), $kinds)),+),+]
            };
        }
        keys![
            &[Health] => [healthy_values, status_pointer, checks_pointer, max_checks],
            &[Latency] => [repeat],
            &[Pool] => [
                pool_format,
                pool_size_pointer,
                checked_in_pointer,
                checked_out_pointer,
                overflow_pointer,
                max_overflow_pointer,
            ],
            &[Pool, Prometheus] => [max_overflow],
            &[Prometheus] => [
                hits_metric,
                misses_metric,
                prefix_label,
                max_prefixes,
                epoch_metric,
                pool_size_metric,
                pool_checked_in_metric,
                pool_checked_out_metric,
                pool_overflow_metric,
                pool_max_overflow_metric,
            ],
        ]
    }

    /// Cross-field checks as `(key, message)` pairs; fills in the parsed url
    /// and the headers when they are valid.
    fn check(
        &self,
        url: &mut Option<reqwest::Url>,
        headers: &mut HeaderMap,
    ) -> Vec<(String, String)> {
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut err = |k: &str, m: String| errors.push((k.to_owned(), m));
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => *url = Some(u),
            Ok(_) => err(
                "url",
                format!(
                    "url \"{}\" must be http(s)://host[:port]/path",
                    redact(&self.url, &[])
                ),
            ),
            Err(e) => err(
                "url",
                format!("url \"{}\" is not valid: {e}", redact(&self.url, &[])),
            ),
        }
        if let Some(m) = &self.method
            && (m.is_empty() || reqwest::Method::from_bytes(m.as_bytes()).is_err())
        {
            err(
                "method",
                format!("method \"{m}\" is not a valid HTTP method"),
            );
        }
        let files = self.header_files.iter().map(|(name, path)| {
            if self.headers.contains_key(name) {
                err(
                    "header_files",
                    format!("header \"{name}\" is set in both headers and header_files"),
                );
            }
            ("header_files", name, read_secret_file(path))
        });
        let given = self
            .headers
            .iter()
            .map(|(n, v)| ("headers", n, Ok(v.clone())));
        let candidates: Vec<_> = given.chain(files).collect();
        for (key, name, value) in candidates {
            match value.map(|v| header(name, &v)) {
                Ok(Ok((n, v))) => {
                    headers.insert(n, v);
                }
                Ok(Err(problems)) => problems.into_iter().for_each(|m| err(key, m)),
                Err(e) => err(key, e),
            }
        }
        if self.expect_status.is_empty() {
            err("expect_status", "expect_status must not be empty".into());
        }
        for s in &self.expect_status {
            if !(100..=599).contains(s) {
                err(
                    "expect_status",
                    format!("status {s} is not an HTTP status code (100-599)"),
                );
            }
        }
        if !(1..=MAX_BODY_BYTES_LIMIT).contains(&self.max_body_bytes) {
            err(
                "max_body_bytes",
                format!(
                    "max_body_bytes must be between 1 and {MAX_BODY_BYTES_LIMIT} (256 MiB), got {}",
                    self.max_body_bytes
                ),
            );
        }
        for (key, set, kinds) in self.kind_keys() {
            if set && !kinds.contains(&self.kind) {
                let names: Vec<String> = kinds
                    .iter()
                    .map(|k| format!("\"{}\"", k.as_str()))
                    .collect();
                err(
                    key,
                    format!(
                        "{key} only applies to kind = {}, not \"{}\"",
                        names.join(" or "),
                        self.kind.as_str()
                    ),
                );
            }
        }
        if let Some(v) = &self.healthy_values
            && v.is_empty()
        {
            err("healthy_values", "healthy_values must not be empty".into());
        }
        for (key, p) in by_key!(self =>
            status_pointer, checks_pointer, pool_size_pointer, checked_in_pointer,
            checked_out_pointer, overflow_pointer, max_overflow_pointer
        ) {
            if let Some(p) = p
                && !p.is_empty()
                && !p.starts_with('/')
            {
                err(
                    key,
                    format!(
                        "{key} \"{p}\" is not a JSON pointer: it must start with / (e.g. \"/pool_size\")"
                    ),
                );
            }
        }
        for (key, v) in by_key!(self => max_checks, max_prefixes) {
            if let Some(n) = v
                && !(1..=MAX_SERIES_LIMIT).contains(n)
            {
                err(
                    key,
                    format!("{key} must be between 1 and {MAX_SERIES_LIMIT}, got {n}"),
                );
            }
        }
        if let Some(r) = self.repeat
            && !(1..=10).contains(&r)
        {
            err(
                "repeat",
                format!("repeat must be between 1 and 10, got {r}"),
            );
        }
        if let Some(m) = self.max_overflow
            && m < -1
        {
            err(
                "max_overflow",
                format!("max_overflow must be -1 (unlimited) or more, got {m}"),
            );
        }
        let metric_re = regex::Regex::new("^[a-zA-Z_:][a-zA-Z0-9_:]*$").expect("static regex");
        for (key, v) in by_key!(self =>
            hits_metric, misses_metric, pool_size_metric, pool_checked_in_metric,
            pool_checked_out_metric, pool_overflow_metric, pool_max_overflow_metric,
            epoch_metric, prefix_label
        ) {
            if let Some(name) = v
                && !(name.is_empty() && key == "epoch_metric")
                && !metric_re.is_match(name)
            {
                err(
                    key,
                    format!("{key} \"{name}\" is not a valid Prometheus metric or label name"),
                );
            }
        }
        errors
    }
}

/// One header to send, its value marked sensitive (never logged); the
/// problems never quote the value: it is a secret.
fn header(name: &str, value: &Secret) -> Result<(HeaderName, HeaderValue), Vec<String>> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("\"{name}\" is not a valid header name"));
    let v = HeaderValue::from_str(value.expose()).map_err(|_| {
        format!("the value of header \"{name}\" is not a valid header value (control characters?)")
    });
    match (n, v) {
        (Ok(n), Ok(mut v)) => {
            v.set_sensitive(true);
            Ok((n, v))
        }
        (n, v) => Err([n.err(), v.err()].into_iter().flatten().collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(body: &str) -> Result<Config, String> {
        let env = |k: &str| (k == "API_KEY").then(|| "s3cret-key".to_owned());
        Config::from_source("t.toml", body, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn minimal_health_target_gets_defaults() {
        let c = load("[[http]]\nname = \"api\"\nurl = \"http://127.0.0.1:8000/health\"\nkind = \"health\"\nheaders = { \"X-API-Key\" = \"${API_KEY}\" }\n").unwrap();
        let crate::collectors::ReadyTarget::Http(h) = &c.targets[0].ready else {
            panic!("not http")
        };
        assert_eq!(h.kind, EndpointKind::Health);
        assert_eq!(h.expect_status, vec![200]);
        assert_eq!(h.max_body_bytes, 1024 * 1024);
        assert_eq!(h.healthy_values(), vec!["healthy", "ok", "up", "pass"]);
        assert_eq!(h.headers["X-API-Key"].expose(), "s3cret-key");
        assert!(!format!("{h:?}").contains("s3cret"), "secret in Debug");
        assert_eq!(h.method(), reqwest::Method::GET);
    }

    #[test]
    fn validation_table() {
        let base = "[[http]]\nname = \"a\"\n";
        let cases: &[(&str, &str)] = &[
            (
                "url = \"ftp://x/\"\nkind = \"health\"\n",
                "http[0].url: url \"ftp://x/\" must be http(s)://host[:port]/path",
            ),
            (
                "url = \"https://x/\"\nkind = \"health\"\n[http.tls]\nca_file = \"/nonexistent/ca.crt\"\n",
                "http[0].tls.ca_file: cannot read \"/nonexistent/ca.crt\"",
            ),
            (
                "url = \"http://x/\"\nkind = \"health\"\n[http.tls]\ninsecure_skip_verify = false\n",
                "http[0].tls: a tls table applies to https:// urls only",
            ),
            (
                "url = \"http://u:pw@x/\"\nkind = \"health\"\nmethod = \"G E T\"\n",
                "http[0].method: method \"G E T\" is not a valid HTTP method",
            ),
            (
                "url = \"http://x/\"\nkind = \"health\"\nrepeat = 2\n",
                "http[0].repeat: repeat only applies to kind = \"latency\", not \"health\"",
            ),
            (
                "url = \"http://x/\"\nkind = \"latency\"\nrepeat = 0\n",
                "http[0].repeat: repeat must be between 1 and 10, got 0",
            ),
            (
                "url = \"http://x/\"\nkind = \"health\"\nmax_overflow = 3\n",
                "http[0].max_overflow: max_overflow only applies to kind = \"pool\" or \"prometheus\", not \"health\"",
            ),
            (
                "url = \"http://x/\"\nkind = \"pool\"\npool_size_pointer = \"pool_size\"\n",
                "http[0].pool_size_pointer: pool_size_pointer \"pool_size\" is not a JSON pointer",
            ),
            (
                "url = \"http://x/\"\nkind = \"health\"\nexpect_status = [200, 700]\n",
                "http[0].expect_status: status 700 is not an HTTP status code",
            ),
            (
                "url = \"http://x/\"\nkind = \"prometheus\"\nhits_metric = \"cache hits\"\n",
                "http[0].hits_metric: hits_metric \"cache hits\" is not a valid Prometheus metric",
            ),
            (
                "url = \"http://x/\"\nkind = \"health\"\nheaders = { \"X Bad\" = \"v\" }\n",
                "http[0].headers: \"X Bad\" is not a valid header name",
            ),
            (
                "url = \"http://x/\"\nkind = \"health\"\nmax_body_bytes = 0\n",
                "http[0].max_body_bytes: max_body_bytes must be between 1 and 268435456 (256 MiB), got 0",
            ),
            // A lying Content-Length below a huge limit once aborted the process.
            (
                "url = \"http://x/\"\nkind = \"health\"\nmax_body_bytes = 9000000000000000000\n",
                "http[0].max_body_bytes: max_body_bytes must be between 1 and 268435456 (256 MiB), got 9000000000000000000",
            ),
            (
                "url = \"http://x/\"\nkind = \"bogus\"\n",
                "unknown variant `bogus`",
            ),
            (
                "url = \"http://x/\"\nkind = \"health\"\ncolour = 1\n",
                "t.toml:5: http[0].colour: unknown field `colour`",
            ),
        ];
        for (table, want) in cases {
            let err = load(&format!("{base}{table}")).unwrap_err();
            assert!(err.contains(want), "want {want:?} in:\n{err}");
            assert!(!err.contains(":pw@"), "password shown: {err}");
        }
    }

    #[test]
    fn header_value_errors_do_not_show_the_value() {
        let err = load("[[http]]\nname = \"a\"\nurl = \"http://x/\"\nkind = \"health\"\nheaders = { \"X-Key\" = \"bad\\nsecretvalue\" }\n").unwrap_err();
        assert!(
            err.contains("the value of header \"X-Key\" is not a valid header value"),
            "{err}"
        );
        assert!(!err.contains("secretvalue"), "{err}");
    }
}
