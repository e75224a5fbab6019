//! `[probe]`: fleet mode, and its named credential sets (`[probe.auth.<name>]`,
//! the Go exporters' `auth_modules`). Checked once at load like every other
//! section: the bounds, the host patterns, and each auth set by building a
//! trial target of its kind with it, so a missing password file or a bad
//! `tls` table is a config error naming file, line and key, not a 400 at the
//! first scrape.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::target::{Address, HostPattern, PROBED_KINDS, kind_table, probed_kind};
use crate::collectors::{KINDS, Problems};
use crate::poll::CommonTarget;
use crate::secret::Secret;
use crate::tls::TlsSettings;

/// `[probe]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// The most one probe may take. Prometheus' scrape timeout (its
    /// `X-Prometheus-Scrape-Timeout-Seconds` header) minus `timeout_offset`
    /// shortens it; without the header (curl) it is the deadline.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Taken off Prometheus' scrape timeout so that the reply (with the
    /// backend reported down) arrives before Prometheus gives up.
    #[serde(default = "default_timeout_offset", with = "humantime_serde")]
    pub timeout_offset: Duration,
    /// Probes polling a backend at once.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Probes waiting for a slot beyond those; one more is answered 503 at
    /// once, and a waiting one that gets no slot before its deadline too.
    #[serde(default = "default_max_queued")]
    pub max_queued: usize,
    /// Distinct backends (kind, target, auth set) kept with a collector and
    /// its connection between probes; a new one beyond it replaces the one
    /// probed least recently.
    #[serde(default = "default_max_backends")]
    pub max_backends: usize,
    /// A backend not probed for this long is dropped and its connection
    /// closed.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Hosts a target may name: host name patterns (`*` for any run of
    /// characters), IP addresses or CIDR blocks. Empty: any host.
    #[serde(default)]
    pub allow_targets: Vec<String>,
    /// Named credential sets, chosen per request with `auth_module=<name>`.
    #[serde(default)]
    pub auth: BTreeMap<String, ProbeAuth>,
}

/// `[probe.auth.<name>]`: how to log in to one kind of backend.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeAuth {
    /// The kind it logs in to: `redis`, `postgres` or `mysql`.
    pub kind: String,
    /// User (Redis ACL user; required for PostgreSQL and MySQL).
    pub username: Option<String>,
    /// Password; `${ENV}` is expanded.
    pub password: Option<Secret>,
    /// File holding the password, read again at every reconnect.
    pub password_file: Option<PathBuf>,
    /// TLS as the kind's own `tls` table (Prometheus' `tls_config` keys).
    pub tls: Option<TlsSettings>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_timeout_offset() -> Duration {
    Duration::from_millis(500)
}
fn default_max_concurrent() -> usize {
    16
}
fn default_max_queued() -> usize {
    64
}
fn default_max_backends() -> usize {
    1000
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(300)
}

/// Shortest probe timeout accepted: no backend answers a poll faster.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest probe timeout accepted: below the HTTP server's 30 s request
/// timeout, so that a probe always answers itself.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(25);
/// Most probes at once: each holds a backend connection.
pub const MAX_CONCURRENT: usize = 1024;
/// Most probes waiting for a slot.
pub const MAX_QUEUED: usize = 10_000;
/// Most backends cached (one collector and connection each).
pub const MAX_BACKENDS: usize = 100_000;
/// Shortest idle timeout: below it Prometheus' next scrape would reconnect.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// A checked `[probe]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSettings {
    /// The section as written.
    pub config: ProbeConfig,
    /// `allow_targets`, parsed.
    pub allow: Vec<HostPattern>,
}

impl ProbeConfig {
    /// Checks the section: every problem as `(key relative to probe, message)`.
    pub fn validate(&self) -> Result<ProbeSettings, Problems> {
        let mut problems = Problems::new();
        let ms = humantime::format_duration;
        if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&self.timeout) {
            problems.push((
                "timeout".into(),
                format!(
                    "timeout \"{}\" must be between {} and {} (the HTTP request timeout is 30s)",
                    ms(self.timeout),
                    ms(MIN_TIMEOUT),
                    ms(MAX_TIMEOUT)
                ),
            ));
        }
        if self.timeout_offset >= self.timeout {
            problems.push((
                "timeout_offset".into(),
                format!(
                    "timeout_offset \"{}\" must be shorter than timeout \"{}\"",
                    ms(self.timeout_offset),
                    ms(self.timeout)
                ),
            ));
        }
        let bounded = [
            ("max_concurrent", self.max_concurrent, 1, MAX_CONCURRENT),
            ("max_queued", self.max_queued, 0, MAX_QUEUED),
            ("max_backends", self.max_backends, 1, MAX_BACKENDS),
        ];
        for (key, value, low, high) in bounded {
            if !(low..=high).contains(&value) {
                problems.push((
                    key.into(),
                    format!("{key} must be between {low} and {high}, got {value}"),
                ));
            }
        }
        // Every probe holds its backend's entry: with fewer entries than
        // slots, a new backend could find none to replace.
        if self.max_backends < self.max_concurrent {
            problems.push((
                "max_backends".into(),
                format!(
                    "max_backends ({}) must be at least max_concurrent ({})",
                    self.max_backends, self.max_concurrent
                ),
            ));
        }
        if self.idle_timeout < MIN_IDLE_TIMEOUT {
            problems.push((
                "idle_timeout".into(),
                format!(
                    "idle_timeout \"{}\" is below the floor of {}",
                    ms(self.idle_timeout),
                    ms(MIN_IDLE_TIMEOUT)
                ),
            ));
        }
        let mut allow = Vec::new();
        for (i, pattern) in self.allow_targets.iter().enumerate() {
            match HostPattern::parse(pattern) {
                Ok(p) => allow.push(p),
                Err(e) => problems.push((format!("allow_targets[{i}]"), e)),
            }
        }
        for (name, auth) in &self.auth {
            problems.extend(check_auth(name, auth));
        }
        if problems.is_empty() {
            Ok(ProbeSettings {
                config: self.clone(),
                allow,
            })
        } else {
            Err(problems)
        }
    }
}

/// Longest auth set name (it is a request parameter and shows in messages).
const MAX_AUTH_NAME: usize = 64;

/// An auth set's problems, keyed `auth.<name>[.key]`: its name and kind,
/// then a trial target of its kind built with it (a placeholder host), so
/// that the kind's own validation reads its password file and TLS files now.
fn check_auth(name: &str, auth: &ProbeAuth) -> Problems {
    let at = format!("auth.{name}");
    let name_ok = !name.is_empty()
        && name.len() <= MAX_AUTH_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !name_ok {
        return vec![(
            at,
            format!(
                "auth set name \"{}\" must be 1-{MAX_AUTH_NAME} letters, digits, _, - or .",
                name.escape_default()
            ),
        )];
    }
    let Some(kind) = probed_kind(&auth.kind) else {
        let kinds: Vec<&str> = PROBED_KINDS.iter().map(|k| k.section).collect();
        return vec![(
            format!("{at}.kind"),
            format!(
                "kind \"{}\" cannot be probed (probed kinds: {})",
                auth.kind,
                kinds.join(", ")
            ),
        )];
    };
    if kind.section != "redis" && auth.username.is_none() {
        return vec![(
            format!("{at}.username"),
            format!("a {} auth set needs a username", kind.section),
        )];
    }
    let placeholder = Address {
        scheme: None,
        host: "localhost".into(),
        port: None,
        path: String::new(),
        params: Vec::new(),
    };
    let table = match kind_table(kind, &placeholder, Some(auth)) {
        Ok(t) => t,
        Err(e) => return vec![(at, e)],
    };
    let Some(info) = KINDS.iter().find(|k| k.section == kind.section) else {
        return vec![(at, format!("{} is not a collector kind", kind.section))];
    };
    let common = CommonTarget {
        name: format!("auth set {name}"),
        interval: None,
        timeout: None,
    };
    match (info.build)(common, table) {
        Ok(_) => Vec::new(),
        // The kind's url/dsn is the one made from the auth set here.
        Err(problems) => problems
            .into_iter()
            .map(|(key, message)| match key.as_str() {
                "" | "url" | "dsn" => (at.clone(), message),
                k => (format!("{at}.{k}"), message),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<ProbeSettings, Vec<String>> {
        let config: ProbeConfig = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        config
            .validate()
            .map_err(|p| p.into_iter().map(|(k, m)| format!("{k}: {m}")).collect())
    }

    #[test]
    fn a_probe_always_answers_before_the_http_request_timeout() {
        assert!(MAX_TIMEOUT < crate::http::REQUEST_TIMEOUT);
    }

    #[test]
    fn defaults_are_bounded_and_documented_ones() {
        let s = check("").unwrap();
        let c = &s.config;
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.timeout_offset, Duration::from_millis(500));
        assert_eq!(
            (c.max_concurrent, c.max_queued, c.max_backends),
            (16, 64, 1000)
        );
        assert_eq!(c.idle_timeout, Duration::from_secs(300));
        assert!(s.allow.is_empty() && c.auth.is_empty());
    }

    #[test]
    fn every_problem_names_its_key_and_value() {
        let errs = check(
            "timeout = \"26s\"\ntimeout_offset = \"30s\"\nmax_concurrent = 0\nmax_queued = 10001\nmax_backends = 2000000\nidle_timeout = \"10ms\"\nallow_targets = [\"10.0.0.0/40\", \"ok.example\"]\n",
        )
        .unwrap_err();
        for want in [
            "timeout: timeout \"26s\" must be between 100ms and 25s (the HTTP request timeout is 30s)",
            "timeout_offset: timeout_offset \"30s\" must be shorter than timeout \"26s\"",
            "max_concurrent: max_concurrent must be between 1 and 1024, got 0",
            "max_queued: max_queued must be between 0 and 10000, got 10001",
            "max_backends: max_backends must be between 1 and 100000, got 2000000",
            "idle_timeout: idle_timeout \"10ms\" is below the floor of 1s",
            "allow_targets[0]: \"10.0.0.0/40\": prefix length \"40\" is not 0-32",
        ] {
            assert!(errs.iter().any(|e| e == want), "want {want:?} in {errs:#?}");
        }
        assert_eq!(errs.len(), 7, "{errs:#?}");
        let errs = check("max_concurrent = 50\nmax_backends = 10\n").unwrap_err();
        assert_eq!(
            errs,
            ["max_backends: max_backends (10) must be at least max_concurrent (50)"]
        );
    }

    #[test]
    fn auth_sets_are_checked_as_their_kind_would_be() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let ok = check(&format!(
            "[auth.cache]\nkind = \"redis\"\npassword = \"x\"\n[auth.pg]\nkind = \"postgres\"\nusername = \"mon\"\npassword_file = \"{}\"\n[auth.\"client.servers\"]\nkind = \"mysql\"\nusername = \"exporter\"\n",
            pw.display()
        ));
        assert_eq!(ok.unwrap().config.auth.len(), 3);
        let missing = dir.path().join("missing");
        for (table, want) in [
            (
                "[auth.a]\nkind = \"pgbouncer\"\n".to_owned(),
                "auth.a.kind: kind \"pgbouncer\" cannot be probed (probed kinds: redis, postgres, mysql)",
            ),
            (
                "[auth.a]\nkind = \"mysql\"\npassword = \"x\"\n".to_owned(),
                "auth.a.username: a mysql auth set needs a username",
            ),
            (
                format!(
                    "[auth.a]\nkind = \"redis\"\npassword_file = \"{}\"\n",
                    missing.display()
                ),
                "auth.a.password_file: cannot read secret file",
            ),
            (
                "[auth.a]\nkind = \"redis\"\npassword = \"x\"\npassword_file = \"/x\"\n".to_owned(),
                "auth.a.password_file: set password or password_file, not both",
            ),
            (
                format!(
                    "[auth.a]\nkind = \"postgres\"\nusername = \"u\"\n[auth.a.tls]\nca_file = \"{}\"\n",
                    missing.display()
                ),
                "auth.a.tls.ca_file: cannot read",
            ),
            (
                "[auth.\"a b\"]\nkind = \"redis\"\n".to_owned(),
                "auth.a b: auth set name \"a b\" must be 1-64 letters",
            ),
        ] {
            let errs = check(&table).unwrap_err();
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "{table}: want {want:?}, got {errs:#?}"
            );
        }
    }
}
