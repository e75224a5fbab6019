//! `[[pgbouncer]]` config: one PgBouncer admin console per table.

use crate::collectors::postgres::apply_tls;
use crate::tls::TlsSettings;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

use crate::collectors::{Problems, Ready, Validated, at_least_one};
use crate::poll::CommonTarget;
use crate::secret::{Secret, check_password_keys, read_secret_file, redact};

/// One PgBouncer target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgbouncerConfig {
    /// `postgres://user[:password]@host:port/pgbouncer`: the admin console
    /// (the database must be `pgbouncer`). The user must be in PgBouncer's
    /// `stats_users` (read-only `SHOW`) or `admin_users`.
    pub dsn: String,
    /// Password, when not in the DSN; `${ENV}` is expanded.
    pub password: Option<Secret>,
    /// File holding the password (Kubernetes secret mounts).
    pub password_file: Option<PathBuf>,
    /// Most (database, user) pools, and most databases, exported with their
    /// own labels; the rest (by name order) are summed into
    /// `database="other"` (and `user="other"`), so a PgBouncer with
    /// thousands of pools cannot explode the series count.
    #[serde(default = "default_max_pools")]
    pub max_pools: usize,
    /// TLS (Prometheus' `tls_config` keys), instead of libpq's `sslmode`,
    /// `sslrootcert`, `sslcert` and `sslkey` in the DSN (not both).
    pub tls: Option<TlsSettings>,
}

fn default_max_pools() -> usize {
    100
}

impl PgbouncerConfig {
    /// Checks the table and parses the DSN once: the ready target, or every
    /// problem as `(key, message)`.
    pub(crate) fn validate(&self, _common: &CommonTarget) -> Result<PgbouncerReady, Problems> {
        let mut errors = Vec::new();
        let secrets = self.known_secrets();
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let masked = redact(&self.dsn, &[]);
        let mut parsed = None;
        if !(self.dsn.starts_with("postgres://") || self.dsn.starts_with("postgresql://")) {
            errors.push((
                "dsn".into(),
                format!("dsn \"{masked}\" must start with postgres:// or postgresql://"),
            ));
        } else {
            match PgConnectOptions::from_str(&self.dsn) {
                Err(e) => errors.push((
                    "dsn".into(),
                    format!(
                        "dsn \"{masked}\" is not valid: {}",
                        redact(&e.to_string(), &secret_refs)
                    ),
                )),
                Ok(opts) if opts.get_database() != Some("pgbouncer") => errors.push((
                    "dsn".into(),
                    format!(
                        "dsn \"{masked}\" must name the admin console database \"pgbouncer\", got {}",
                        opts.get_database()
                            .map_or("none".to_owned(), |d| format!("\"{d}\""))
                    ),
                )),
                Ok(opts) => match apply_tls(opts, &self.dsn, self.tls.as_ref()) {
                    Ok(opts) => parsed = Some(opts),
                    Err(problems) => errors.extend(problems),
                },
            }
        }
        let password = check_password_keys(
            self.password.as_ref(),
            self.password_file.as_deref(),
            &mut errors,
        );
        at_least_one(&mut errors, "max_pools", self.max_pools);
        match parsed {
            Some(opts) if errors.is_empty() => {
                let opts = opts
                    .extra_float_digits(None)
                    .application_name("perfwatch")
                    .statement_cache_capacity(0)
                    .disable_statement_logging();
                Ok(PgbouncerReady {
                    options: match &password {
                        Some(pw) => opts.password(pw.expose()),
                        None => opts,
                    },
                    secrets,
                })
            }
            _ => Err(errors),
        }
    }

    /// Every password that could show up in a message: the DSN's and the
    /// configured one (never the file's path).
    fn known_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = dsn_password(&self.dsn) {
            out.push(p);
        }
        if let Some(p) = &self.password {
            out.push(p.expose().to_owned());
        }
        out
    }
}

/// The password in a DSN's userinfo, if any (not percent-decoded: `redact`
/// masks both forms).
fn dsn_password(dsn: &str) -> Option<String> {
    let rest = &dsn[dsn.find("://")? + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let pw = &userinfo[userinfo.find(':')? + 1..];
    (!pw.is_empty()).then(|| pw.to_owned())
}

/// What validating a `[[pgbouncer]]` table derives: the connect options
/// parsed from its DSN once, with the resolved password and the admin
/// console's startup settings applied.
#[derive(Clone)]
pub struct PgbouncerReady {
    options: PgConnectOptions,
    /// Passwords to mask in messages (see [`redact`]).
    secrets: Vec<String>,
}

impl Ready for PgbouncerReady {}

impl PgbouncerReady {
    /// `text` with every URL password and known secret masked.
    pub(crate) fn redact(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact(text, &secrets)
    }
}

/// A checked `[[pgbouncer]]` target.
pub type PgbouncerTarget = Validated<PgbouncerConfig, PgbouncerReady>;

impl PgbouncerTarget {
    /// The options to connect with. `reread_secret`: after a failed session,
    /// `password_file` is read again so that a rotated secret (a Kubernetes
    /// secret mount) is picked up without a reload.
    pub(crate) fn connect_options(&self, reread_secret: bool) -> Result<PgConnectOptions, String> {
        let options = self.ready.options.clone();
        match &self.config.password_file {
            Some(path) if reread_secret => Ok(options.password(read_secret_file(path)?.expose())),
            _ => Ok(options),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::common;

    fn cfg(dsn: &str) -> PgbouncerConfig {
        PgbouncerConfig {
            dsn: dsn.into(),
            password: None,
            password_file: None,
            max_pools: 100,
            tls: None,
        }
    }

    #[test]
    fn validate_table() {
        let cases: &[(&str, &[&str])] = &[
            ("postgres://perfwatch@127.0.0.1:6432/pgbouncer", &[]),
            ("postgresql://u:secret@host/pgbouncer", &[]),
            (
                "mysql://u@host/pgbouncer",
                &["must start with postgres:// or postgresql://"],
            ),
            (
                "postgres://u:secret@host:6432/app",
                &["must name the admin console database \"pgbouncer\", got \"app\""],
            ),
            (
                "postgres://u@host:6432",
                &["must name the admin console database \"pgbouncer\", got none"],
            ),
            ("postgres://u@host:99999/pgbouncer", &["is not valid"]),
        ];
        for (dsn, want) in cases {
            let errors = cfg(dsn).validate(&common("b")).err().unwrap_or_default();
            assert_eq!(errors.len(), want.len(), "{dsn}: {errors:?}");
            for ((key, msg), w) in errors.iter().zip(want.iter()) {
                assert_eq!(key, "dsn");
                assert!(msg.contains(w), "{dsn}: {msg}");
                assert!(!msg.contains("secret"), "{dsn}: password leaked: {msg}");
            }
        }
    }

    #[test]
    fn dsn_password_is_a_known_secret() {
        assert_eq!(
            dsn_password("postgres://u:s%40cret@h/pgbouncer").as_deref(),
            Some("s%40cret")
        );
        assert_eq!(dsn_password("postgres://u@h/pgbouncer"), None);
        let t = cfg("postgres://u:s%40cret@h/pgbouncer")
            .validate(&common("b"))
            .unwrap();
        assert_eq!(t.redact("bad s@cret and s%40cret"), "bad *** and ***");
    }

    #[test]
    fn validate_password_and_max_pools() {
        let mut c = cfg("postgres://u@h/pgbouncer");
        c.password = Some(Secret::new("p"));
        c.password_file = Some("/nonexistent/perfwatch-test".into());
        c.max_pools = 0;
        let keys: Vec<_> = c
            .validate(&common("b"))
            .err()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["password_file", "password_file", "max_pools"]);
    }
}
