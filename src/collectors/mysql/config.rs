//! `[[mysql]]` config: one MySQL 5.7/8.0 or MariaDB 10.x/11.x server per
//! table, and its validation into a [`MysqlTarget`] the collector takes as it
//! is (the DSN parsed once, the password resolved once).

use crate::tls::{TlsSettings, as_dsn_problems, dsn_table_conflicts};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};

use super::dsn::{Dsn, parse_dsn};

use crate::collectors::custom_query::{CustomQueryConfig, validate_queries};
use crate::collectors::statement_stats::StatementsConfig;
use crate::collectors::{Problems, Ready, Validated, at_least_one, no_problems};
use crate::poll::CommonTarget;
use crate::secret::{Secret, check_password_keys, redact};

/// One MySQL/MariaDB target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// `mysql://user[:password]@host[:port][/db]` (or `mariadb://`); the
    /// password may come from `password`/`password_file` instead.
    pub dsn: String,
    /// TLS (Prometheus' `tls_config` keys), instead of `ssl-mode`, `ssl-ca`,
    /// `ssl-cert` and `ssl-key` in the DSN (not both).
    pub tls: Option<TlsSettings>,
    /// Password, when not in the DSN; `${ENV}` is expanded.
    pub password: Option<Secret>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// Schemas whose tables and indexes are examined. Empty: the DSN's
    /// database (none in the DSN: no per-table stats). `["*"]`: every schema
    /// except mysql, sys, information_schema and performance_schema.
    #[serde(default)]
    pub databases: Vec<String>,
    /// Most tables with their own series; the rest are summed per schema as
    /// `table="other"`.
    #[serde(default = "default_max_tables")]
    pub max_tables: usize,
    /// Most indexes with their own series (index I/O, size, verdicts); the
    /// rest are summed as `index="other"`.
    #[serde(default = "default_max_indexes")]
    pub max_indexes: usize,
    /// How often the heavier index and table statistics are read.
    #[serde(default = "default_index_interval", with = "humantime_serde")]
    pub index_interval: Duration,
    /// A table is a missing-index candidate only with at least this many rows
    /// (information_schema estimate).
    #[serde(default = "default_missing_index_min_rows")]
    pub missing_index_min_rows: u64,
    /// ...and when at least this share (0–1] of the rows read from it since
    /// the stats began were read without an index (full scans).
    #[serde(default = "default_missing_index_min_full_scan_ratio")]
    pub missing_index_min_full_scan_ratio: f64,
    /// Read `information_schema.PROCESSLIST` on every poll (one more
    /// statement) for mysqld_exporter's `mysql_info_schema_processlist_*`.
    #[serde(default)]
    pub processlist: bool,
    /// Custom SQL metrics (`[[mysql.query]]`).
    #[serde(default)]
    pub query: Vec<CustomQueryConfig>,
    /// performance_schema's statement digests as a slow-query source
    /// (`[mysql.statements]`).
    pub statements: Option<StatementsConfig>,
    /// Plans of slow-log examples and index advice (`[mysql.explain]`).
    pub explain: Option<crate::explain::ExplainConfig>,
}

fn default_max_tables() -> usize {
    200
}
fn default_max_indexes() -> usize {
    500
}
fn default_index_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_missing_index_min_rows() -> u64 {
    10_000
}
fn default_missing_index_min_full_scan_ratio() -> f64 {
    0.5
}

/// Schemas never examined, even with `databases = ["*"]`.
pub(crate) const SYSTEM_SCHEMAS: &[&str] =
    &["mysql", "sys", "information_schema", "performance_schema"];

impl MysqlConfig {
    /// Cross-field checks; `(key, message)` pairs.
    #[cfg(test)]
    pub(crate) fn check(&self) -> Problems {
        self.check_reading_password().0
    }

    /// Cross-field checks as `(key, message)` pairs, and the password from
    /// `password` or `password_file` (read once here, so validation does not
    /// read the file twice).
    fn check_reading_password(&self) -> (Problems, Option<Secret>) {
        let mut errors = Vec::new();
        match parse_dsn(&self.dsn) {
            Ok(d) => {
                if d.password.is_some() && (self.password.is_some() || self.password_file.is_some())
                {
                    errors.push((
                        "password".into(),
                        "the dsn already has a password; drop password/password_file or the one in the dsn".into(),
                    ));
                }
            }
            Err(e) => errors.push(("dsn".into(), e)),
        }
        let password = check_password_keys(
            self.password.as_ref(),
            self.password_file.as_deref(),
            &mut errors,
        );
        at_least_one(&mut errors, "max_tables", self.max_tables);
        at_least_one(&mut errors, "max_indexes", self.max_indexes);
        if self.index_interval.is_zero() {
            errors.push((
                "index_interval".into(),
                "index_interval must be longer than 0s".into(),
            ));
        }
        let r = self.missing_index_min_full_scan_ratio;
        if !(r > 0.0 && r <= 1.0) {
            errors.push((
                "missing_index_min_full_scan_ratio".into(),
                format!("missing_index_min_full_scan_ratio must be in (0, 1], got {r}"),
            ));
        }
        if self.databases.iter().any(|d| d == "*") && self.databases.len() > 1 {
            errors.push((
                "databases".into(),
                "\"*\" already means every non-system schema; list schemas or use [\"*\"] alone"
                    .into(),
            ));
        }
        for (i, d) in self.databases.iter().enumerate() {
            if d.is_empty() {
                errors.push((format!("databases[{i}]"), "schema name is empty".into()));
            }
        }
        errors.extend(validate_queries(&self.query));
        if let Some(st) = &self.statements {
            errors.extend(st.validate());
        }
        if let Some(ex) = &self.explain {
            errors.extend(ex.validate());
        }
        (errors, password)
    }

    /// Checks the table and derives what the collector needs: every problem
    /// as `(key, message)`, or the connect options with the password applied.
    pub(crate) fn validate(&self, _common: &CommonTarget) -> Result<MysqlReady, Problems> {
        let (problems, from_keys) = self.check_reading_password();
        no_problems(problems)?;
        let d = parse_dsn(&self.dsn).map_err(|e| vec![("dsn".to_owned(), e)])?;
        let password = match &d.password {
            Some(p) => Some(Secret::new(p.as_str())),
            None => from_keys,
        };
        let options = apply_tls(
            connect_options(&d, password.as_ref()),
            &d,
            self.tls.as_ref(),
        )?;
        let client_cert =
            d.ssl_cert.is_some() || self.tls.as_ref().is_some_and(|t| t.cert_file.is_some());
        let access_denied_hint = if matches!(options.get_ssl_mode(), MySqlSslMode::Disabled) {
            " (a server with require_secure_transport = ON refuses plaintext with this same error: set ssl-mode=REQUIRED or VERIFY_IDENTITY)"
        } else if !client_cert {
            " (an account that REQUIREs X509 gives this same error without a client certificate: set ssl-cert and ssl-key, or tls.cert_file and tls.key_file)"
        } else {
            ""
        };
        Ok(MysqlReady {
            access_denied_hint,
            options: Arc::new(options),
            schemas: schemas(&self.databases, d.database.as_deref()),
            dsn_shown: redact(&self.dsn, &[]),
            password,
        })
    }
}

/// sqlx's options for a parsed DSN.
fn connect_options(d: &Dsn, password: Option<&Secret>) -> MySqlConnectOptions {
    let mut o = MySqlConnectOptions::new()
        .host(&d.host)
        .port(d.port)
        .username(&d.user)
        // The mysql client's default: TLS when the server offers it.
        .ssl_mode(MySqlSslMode::Preferred)
        .statement_cache_capacity(0);
    if let Some(s) = &d.socket {
        o = o.socket(s);
    }
    if let Some(db) = &d.database {
        o = o.database(db);
    }
    if let Some(p) = password {
        o = o.password(p.expose());
    }
    o
}

/// Applies TLS: the DSN's `ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key` (files
/// read now, bounded, instead of by sqlx at every connect), or a `tls`
/// table (VERIFY_IDENTITY against `ca_file` or the system roots; REQUIRED
/// with `insecure_skip_verify`). Both at once, an unreadable file,
/// `server_name` (sqlx checks the DSN's host) or a verify mode without a CA
/// on a system with no roots are problems.
fn apply_tls(
    mut o: MySqlConnectOptions,
    d: &Dsn,
    table: Option<&TlsSettings>,
) -> Result<MySqlConnectOptions, Problems> {
    let mut problems = Problems::new();
    let in_dsn: Vec<&str> = [
        ("ssl-mode", &d.ssl_mode),
        ("ssl-ca", &d.ssl_ca),
        ("ssl-cert", &d.ssl_cert),
        ("ssl-key", &d.ssl_key),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_some())
    .map(|(k, _)| k)
    .collect();
    let (settings, mode) = match table {
        Some(t) => {
            problems.extend(dsn_table_conflicts(t, &in_dsn, "ssl-mode=VERIFY_CA"));
            let mode = if t.insecure_skip_verify {
                MySqlSslMode::Required
            } else {
                MySqlSslMode::VerifyIdentity
            };
            (t.clone(), mode)
        }
        None => {
            let mode = match d.ssl_mode.as_deref() {
                Some("DISABLED") => MySqlSslMode::Disabled,
                Some("REQUIRED") => MySqlSslMode::Required,
                Some("VERIFY_CA") => MySqlSslMode::VerifyCa,
                Some("VERIFY_IDENTITY") => MySqlSslMode::VerifyIdentity,
                _ => MySqlSslMode::Preferred,
            };
            let files = TlsSettings {
                ca_file: d.ssl_ca.as_ref().map(PathBuf::from),
                cert_file: d.ssl_cert.as_ref().map(PathBuf::from),
                key_file: d.ssl_key.as_ref().map(PathBuf::from),
                ..TlsSettings::default()
            };
            (files, mode)
        }
    };
    match settings.validate() {
        Err(p) if table.is_some() => problems.extend(p),
        Err(p) => problems.extend(as_dsn_problems(p, ["ssl-ca", "ssl-cert", "ssl-key"])),
        Ok(ready) => {
            o = o.ssl_mode(mode);
            let verifying = matches!(mode, MySqlSslMode::VerifyCa | MySqlSslMode::VerifyIdentity);
            if let Some(ca) = ready.ca_pem {
                o = o.ssl_ca_from_pem(ca);
            } else if verifying && crate::tls::system_roots().is_empty() {
                problems.push((
                    "dsn".into(),
                    "ssl-mode=VERIFY_CA/VERIFY_IDENTITY needs ssl-ca: this system has no CA roots installed".into(),
                ));
            }
            if let Some((cert, key)) = ready.client_pem {
                o = o
                    .ssl_client_cert_from_pem(cert)
                    .ssl_client_key_from_pem(key);
            }
        }
    }
    if problems.is_empty() {
        Ok(o)
    } else {
        Err(problems)
    }
}

/// The schemas to examine: `None` = every non-system schema, `Some(list)`
/// otherwise (empty when neither `databases` nor the DSN names one).
fn schemas(databases: &[String], dsn_database: Option<&str>) -> Option<Vec<String>> {
    if databases.iter().any(|d| d == "*") {
        return None;
    }
    if !databases.is_empty() {
        return Some(databases.to_vec());
    }
    Some(dsn_database.map(str::to_owned).into_iter().collect())
}

/// What validating a `[[mysql]]` table derives: the DSN parsed into sqlx's
/// options with the password (from the DSN, `password` or `password_file`)
/// applied, so the collector never parses or reads anything again.
#[derive(Clone)]
pub struct MysqlReady {
    /// Connect options (behind an `Arc`: sqlx's options are large, and every
    /// kind's target shares one enum).
    pub(crate) options: Arc<MySqlConnectOptions>,
    /// The resolved password.
    pub(crate) password: Option<Secret>,
    /// See [`schemas`].
    pub(crate) schemas: Option<Vec<String>>,
    /// The DSN with its password masked, for messages.
    pub(crate) dsn_shown: String,
    /// What an "access denied" may really mean for this target's TLS
    /// settings (MariaDB answers a refused plaintext session, and an account
    /// that REQUIREs X509 without a client certificate, with the same error
    /// as a wrong password).
    pub(crate) access_denied_hint: &'static str,
}

/// The resolved password is compared on reload, so that a rotated password
/// file restarts the target.
impl Ready for MysqlReady {
    fn reload_secret(&self) -> Option<&Secret> {
        self.password.as_ref()
    }
}

/// A checked `[[mysql]]` target.
pub type MysqlTarget = Validated<MysqlConfig, MysqlReady>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::common;

    fn cfg(dsn: &str) -> MysqlConfig {
        MysqlConfig {
            dsn: dsn.into(),
            tls: None,
            password: None,
            password_file: None,
            databases: vec![],
            max_tables: 200,
            max_indexes: 500,
            index_interval: Duration::from_secs(300),
            missing_index_min_rows: 10_000,
            missing_index_min_full_scan_ratio: 0.5,
            processlist: false,
            query: vec![],
            statements: None,
            explain: None,
        }
    }

    #[test]
    fn documented_example_parses_and_errors_name_keys() {
        let toml = r#"
[[mysql]]
name = "legacy"
dsn  = "mysql://perfwatch@127.0.0.1:3306/drive_safe_db"
password = "${MYSQL_PASSWORD}"
databases = ["drive_safe_db"]
max_tables = 200
max_indexes = 500
index_interval = "5m"
missing_index_min_rows = 10000
missing_index_min_full_scan_ratio = 0.5
[[mysql.query]]
name = "trips_total"
sql  = "SELECT count(*) AS value FROM trip"
interval = "1m"
"#;
        let env = |k: &str| (k == "MYSQL_PASSWORD").then(|| "pw".to_owned());
        let config = crate::config::Config::from_source("t.toml", toml, &env)
            .unwrap_or_else(|e| panic!("{e}"));
        let crate::collectors::ReadyTarget::Mysql(t) = &config.targets[0].ready else {
            panic!("not a mysql target");
        };
        let c = &t.config;
        assert_eq!(c.index_interval, Duration::from_secs(300));
        assert_eq!(c.query[0].interval, Some(Duration::from_secs(60)));
        assert_eq!(c.password.as_ref().map(|p| p.expose()), Some("pw"));
        assert_eq!(t.ready.password.as_ref().map(|p| p.expose()), Some("pw"));
        assert_eq!(t.ready.schemas, Some(vec!["drive_safe_db".to_owned()]));
        assert!(!format!("{t:?}").contains("\"pw\""), "{t:?}");

        let bad = "[[mysql]]\nname = \"x\"\ndsn = \"mysql://u@h/db\"\nmax_table = 3\n[[mysql.query]]\nname = \"q\"\nsql = \"\"\n";
        let errors = crate::config::Config::from_source("t.toml", bad, &env)
            .unwrap_err()
            .to_string();
        assert!(errors.contains("max_table"), "{errors}");
    }

    #[test]
    fn validation_and_schemas() {
        let mut c = cfg("mysql://u:pw@h/app");
        assert!(c.check().is_empty(), "{:?}", c.check());
        let t = c.validate(&common("db")).unwrap();
        assert_eq!(t.schemas, Some(vec!["app".to_owned()]));
        assert_eq!(t.password.as_ref().map(Secret::expose), Some("pw"));
        assert_eq!(t.dsn_shown, "mysql://u:***@h/app");
        c.password = Some(Secret::new("x"));
        c.max_tables = 0;
        c.missing_index_min_full_scan_ratio = 0.0;
        c.databases = vec!["*".into(), "app".into()];
        let keys: Vec<String> = c
            .check_reading_password()
            .0
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "password",
                "max_tables",
                "missing_index_min_full_scan_ratio",
                "databases"
            ]
        );
        let mut c = cfg("mysql://u@h");
        assert_eq!(c.validate(&common("db")).unwrap().schemas, Some(vec![]));
        c.databases = vec!["*".into()];
        assert_eq!(c.validate(&common("db")).unwrap().schemas, None);
        assert_eq!(cfg("redis://h").check()[0].0, "dsn");
        let mut c = cfg("mysql://u@h");
        c.statements = Some(toml::from_str("max_rows = 0").unwrap());
        assert_eq!(c.check()[0].0, "statements.max_rows");
    }
}
