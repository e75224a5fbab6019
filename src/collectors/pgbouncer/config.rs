//! `[[pgbouncer]]` config: one PgBouncer admin console per table.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::PgConnectOptions;

use crate::poll::CommonTarget;
use crate::secret::{Secret, read_secret_file};

/// One PgBouncer target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgbouncerConfig {
    /// The `target` label; unique among `[[pgbouncer]]` tables.
    pub name: String,
    /// `postgres://user[:password]@host:port/pgbouncer`: the admin console
    /// (the database must be `pgbouncer`). The user must be in PgBouncer's
    /// `stats_users` (read-only `SHOW`) or `admin_users`.
    pub dsn: String,
    /// Password, when not in the DSN; `${ENV}` is expanded.
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
    /// Most (database, user) pools, and most databases, exported with their
    /// own labels; the rest (by name order) are summed into
    /// `database="other"` (and `user="other"`), so a PgBouncer with
    /// thousands of pools cannot explode the series count.
    #[serde(default = "default_max_pools")]
    pub max_pools: usize,
}

fn default_max_pools() -> usize {
    100
}

impl PgbouncerConfig {
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
        let masked = super::mask_dsn(&self.dsn);
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
                        super::redact(&e.to_string(), &self.dsn_password())
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
                Ok(_) => {}
            }
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
        if self.max_pools == 0 {
            errors.push((
                "max_pools".into(),
                "max_pools must be at least 1, got 0".into(),
            ));
        }
        errors
    }

    /// The password from `password` or `password_file`, if any (a password
    /// in the DSN is used when neither is set).
    pub fn resolved_password(&self) -> Result<Option<Secret>, String> {
        match (&self.password, &self.password_file) {
            (Some(p), _) => Ok(Some(p.clone())),
            (None, Some(path)) => read_secret_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Every password that could show up in a message: the DSN's and the
    /// configured one (never the file's path).
    pub(super) fn dsn_password(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = super::dsn_password(&self.dsn) {
            out.push(p);
        }
        if let Some(p) = &self.password {
            out.push(p.expose().to_owned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dsn: &str) -> PgbouncerConfig {
        PgbouncerConfig {
            name: "b".into(),
            dsn: dsn.into(),
            password: None,
            password_file: None,
            interval: None,
            timeout: None,
            max_pools: 100,
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
            let errors = cfg(dsn).validate();
            assert_eq!(errors.len(), want.len(), "{dsn}: {errors:?}");
            for ((key, msg), w) in errors.iter().zip(want.iter()) {
                assert_eq!(key, "dsn");
                assert!(msg.contains(w), "{dsn}: {msg}");
                assert!(!msg.contains("secret"), "{dsn}: password leaked: {msg}");
            }
        }
    }

    #[test]
    fn validate_password_and_max_pools() {
        let mut c = cfg("postgres://u@h/pgbouncer");
        c.password = Some(Secret::new("p"));
        c.password_file = Some("/nonexistent/perfwatch-test".into());
        c.max_pools = 0;
        let keys: Vec<_> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["password_file", "password_file", "max_pools"]);
    }
}
