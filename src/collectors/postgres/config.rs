//! `[[postgres]]` config: one PostgreSQL server per table, and its
//! validation into a [`PostgresTarget`] the collector takes as it is (the
//! DSN parsed once, the password resolved once).

use crate::tls::{TlsSettings, as_dsn_problems, dsn_table_conflicts};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::PgConnectOptions;

use crate::collectors::custom_query::{CustomQueryConfig, validate_queries};
use crate::collectors::statement_stats::StatementsConfig;
use crate::collectors::{Problems, Ready, Validated, at_least_one, no_problems};
use crate::poll::CommonTarget;
use crate::secret::{Secret, check_password_keys, redact};

/// One PostgreSQL target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user[:password]@host:port/db[?params]`; the password may
    /// come from `password`/`password_file` instead.
    pub dsn: String,
    /// Password, when not in the DSN; `${ENV}` is expanded.
    pub password: Option<Secret>,
    /// File holding the password (Kubernetes secret mounts).
    pub password_file: Option<PathBuf>,
    /// Databases whose index and table stats are read (default: the DSN's
    /// database); `["*"]` means every database that accepts connections and is
    /// not a template.
    #[serde(default)]
    pub databases: Vec<String>,
    /// Most databases with their own connection (each at most one).
    #[serde(default = "default_max_databases")]
    pub max_databases: usize,
    /// Schemas ignored by the index and table stats.
    #[serde(default = "default_exclude_schemas")]
    pub exclude_schemas: Vec<String>,
    /// Most tables per database with their own series; the rest are summed
    /// into `relname="other"`.
    #[serde(default = "default_max_tables")]
    pub max_tables: usize,
    /// Most indexes per database with their own series (largest first); the
    /// rest are summed into `indexrelname="other"`.
    #[serde(default = "default_max_indexes")]
    pub max_indexes: usize,
    /// How often the index and table stats are read (their last result is
    /// re-exported in between).
    #[serde(default = "default_index_interval", with = "humantime_serde")]
    pub index_interval: Duration,
    /// Missing-index rule: live rows a table needs.
    #[serde(default = "default_min_table_rows")]
    pub min_table_rows: u64,
    /// Missing-index rule: sequential scans a table needs.
    #[serde(default = "default_min_seq_scans")]
    pub min_seq_scans: u64,
    /// Missing-index rule: share of scans that are sequential, above which a
    /// table is a candidate (0–1).
    #[serde(default = "default_seq_ratio")]
    pub seq_ratio: f64,
    /// `lock_timeout` of perfwatch's sessions (default: a fifth of the poll
    /// timeout). Must be shorter than the timeout.
    #[serde(default, with = "humantime_serde")]
    pub lock_timeout: Option<Duration>,
    /// Custom SQL metrics (`[[postgres.query]]`).
    #[serde(default)]
    pub query: Vec<CustomQueryConfig>,
    /// `pg_stat_statements` as a slow-query source (`[postgres.statements]`).
    pub statements: Option<StatementsConfig>,
    /// Plans of slow-log examples and index advice (`[postgres.explain]`).
    pub explain: Option<crate::explain::ExplainConfig>,
    /// TLS (Prometheus' `tls_config` keys), instead of libpq's `sslmode`,
    /// `sslrootcert`, `sslcert` and `sslkey` in the DSN (not both).
    pub tls: Option<TlsSettings>,
}

fn default_max_databases() -> usize {
    20
}
fn default_exclude_schemas() -> Vec<String> {
    vec![
        "pg_catalog".into(),
        "information_schema".into(),
        "pg_toast".into(),
    ]
}
fn default_max_tables() -> usize {
    200
}
fn default_max_indexes() -> usize {
    200
}
fn default_index_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_min_table_rows() -> u64 {
    1000
}
fn default_min_seq_scans() -> u64 {
    10
}
fn default_seq_ratio() -> f64 {
    0.5
}

impl PostgresConfig {
    /// Cross-field checks (`timeout` from the common keys); `(key, message)`
    /// pairs.
    #[cfg(test)]
    pub(crate) fn check(&self, common: &CommonTarget) -> Problems {
        self.check_reading_password(common).0
    }

    /// [`Self::check`], and the password from `password` or `password_file`
    /// (read once here, so validation does not read the file twice).
    fn check_reading_password(&self, common: &CommonTarget) -> (Problems, Option<Secret>) {
        let mut errors = Vec::new();
        if let Err(e) = self.parse_dsn() {
            errors.push(("dsn".into(), e));
        }
        let password = check_password_keys(
            self.password.as_ref(),
            self.password_file.as_deref(),
            &mut errors,
        );
        if self.databases.iter().any(|d| d == "*") && self.databases.len() > 1 {
            errors.push((
                "databases".into(),
                "\"*\" already means every database; list it alone".into(),
            ));
        }
        if self.databases.iter().any(|d| d.is_empty()) {
            errors.push((
                "databases".into(),
                "database names must not be empty".into(),
            ));
        }
        at_least_one(&mut errors, "max_databases", self.max_databases);
        at_least_one(&mut errors, "max_tables", self.max_tables);
        at_least_one(&mut errors, "max_indexes", self.max_indexes);
        if self.index_interval.is_zero() {
            errors.push((
                "index_interval".into(),
                "index_interval must be longer than 0s".into(),
            ));
        }
        if !(self.seq_ratio >= 0.0 && self.seq_ratio < 1.0) {
            errors.push((
                "seq_ratio".into(),
                format!("seq_ratio must be in [0, 1), got {}", self.seq_ratio),
            ));
        }
        if let (Some(lock), Some(timeout)) = (self.lock_timeout, common.timeout)
            && lock >= timeout
        {
            errors.push((
                "lock_timeout".into(),
                format!(
                    "lock_timeout \"{}\" must be shorter than timeout \"{}\"",
                    humantime::format_duration(lock),
                    humantime::format_duration(timeout)
                ),
            ));
        }
        if self.lock_timeout.is_some_and(|l| l.is_zero()) {
            errors.push((
                "lock_timeout".into(),
                "lock_timeout must be longer than 0s (0 would wait forever)".into(),
            ));
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

    /// The DSN as sqlx's options; the message names only the redacted DSN.
    fn parse_dsn(&self) -> Result<PgConnectOptions, String> {
        let masked = redact(&self.dsn, &[]);
        if !(self.dsn.starts_with("postgres://") || self.dsn.starts_with("postgresql://")) {
            return Err(format!(
                "dsn \"{masked}\" must start with postgres:// or postgresql://"
            ));
        }
        // sqlx's message may quote the URL; redact masks it there too.
        PgConnectOptions::from_str(&self.dsn).map_err(|e| {
            format!(
                "dsn \"{masked}\" is not valid: {}",
                redact(&e.to_string(), &[])
            )
        })
    }

    /// Checks the table and derives what the collector needs: every problem
    /// as `(key, message)`, or the parsed options with the password applied.
    pub(crate) fn validate(&self, common: &CommonTarget) -> Result<PostgresReady, Problems> {
        let (problems, password) = self.check_reading_password(common);
        no_problems(problems)?;
        let options = self.parse_dsn().map_err(|e| vec![("dsn".to_owned(), e)])?;
        let mut options = apply_tls(options, &self.dsn, self.tls.as_ref())?;
        if let Some(pw) = &password {
            options = options.password(pw.expose());
        }
        // Connection stats and custom queries run in the DSN's database
        // (libpq's default: the user name).
        let main_db = options
            .get_database()
            .unwrap_or_else(|| options.get_username())
            .to_owned();
        Ok(PostgresReady {
            dsn_shown: redact(&self.dsn, &[]),
            main_db,
            options: Arc::new(options),
            password,
        })
    }
}

/// libpq's TLS parameters, as PostgreSQL users write them in a DSN.
const DSN_TLS_PARAMS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Applies TLS to options parsed from `dsn` (PostgreSQL and PgBouncer):
/// libpq's `sslmode` (sqlx reads it), with the `sslrootcert`, `sslcert` and
/// `sslkey` files read now (bounded; sqlx would read them at every connect,
/// unbounded), or a `tls` table. Both at once, a file that cannot be read,
/// `server_name` (sqlx checks the DSN's host) or a verify mode without a CA
/// file on a system with no roots are problems.
pub(crate) fn apply_tls(
    mut options: PgConnectOptions,
    dsn: &str,
    table: Option<&TlsSettings>,
) -> Result<PgConnectOptions, Problems> {
    use sqlx::postgres::PgSslMode;
    let mut problems = Problems::new();
    let params: Vec<(String, String)> = reqwest::Url::parse(dsn)
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let in_dsn: Vec<&str> = DSN_TLS_PARAMS
        .into_iter()
        .filter(|p| param(p).is_some())
        .collect();
    // One set of files either way: the table's, or the DSN's parameters.
    let (settings, dsn_names) = match table {
        Some(t) => {
            problems.extend(dsn_table_conflicts(t, &in_dsn, "sslmode=verify-ca"));
            options = options.ssl_mode(if t.insecure_skip_verify {
                PgSslMode::Require
            } else {
                PgSslMode::VerifyFull
            });
            (t.clone(), None)
        }
        None => (
            TlsSettings {
                ca_file: param("sslrootcert").map(PathBuf::from),
                cert_file: param("sslcert").map(PathBuf::from),
                key_file: param("sslkey").map(PathBuf::from),
                ..TlsSettings::default()
            },
            Some(["sslrootcert", "sslcert", "sslkey"]),
        ),
    };
    match (settings.validate(), dsn_names) {
        (Err(p), Some(names)) => problems.extend(as_dsn_problems(p, names)),
        (Err(p), None) => problems.extend(p),
        (Ok(ready), _) => {
            if let Some(ca) = ready.ca_pem {
                options = options.ssl_root_cert_from_pem(ca);
            }
            if let Some((cert, key)) = ready.client_pem {
                options = options
                    .ssl_client_cert_from_pem(cert)
                    .ssl_client_key_from_pem(key);
            }
        }
    }
    let verifying = matches!(
        options.get_ssl_mode(),
        PgSslMode::VerifyCa | PgSslMode::VerifyFull
    );
    if table.is_none()
        && verifying
        && settings.ca_file.is_none()
        && crate::tls::system_roots().is_empty()
    {
        problems.push((
            "dsn".into(),
            "sslmode=verify-ca/verify-full needs sslrootcert: this system has no CA roots installed".into(),
        ));
    }
    if problems.is_empty() {
        Ok(options)
    } else {
        Err(problems)
    }
}

/// What validating a `[[postgres]]` table derives: the DSN parsed into
/// sqlx's options with the password from `password`/`password_file`
/// applied, so the collector never parses or reads anything again.
#[derive(Clone)]
pub struct PostgresReady {
    /// The DSN's options without the session settings (the collector adds
    /// the database, `application_name` and timeouts per connection). Behind
    /// an `Arc`: sqlx's options are large, and every kind's target shares one
    /// enum.
    pub(crate) options: Arc<PgConnectOptions>,
    /// The password resolved from `password`/`password_file` (redacted from
    /// driver messages).
    pub(crate) password: Option<Secret>,
    /// The DSN's database (or user name): connection stats and custom
    /// queries run there.
    pub(crate) main_db: String,
    /// The DSN with its password masked, for messages.
    pub(crate) dsn_shown: String,
}

/// The resolved password is compared on reload, so that a rotated password
/// file restarts the target.
impl Ready for PostgresReady {
    fn reload_secret(&self) -> Option<&Secret> {
        self.password.as_ref()
    }
}

/// A checked `[[postgres]]` target.
pub type PostgresTarget = Validated<PostgresConfig, PostgresReady>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::parse_split;

    fn parse(toml_text: &str) -> (CommonTarget, PostgresConfig) {
        parse_split(toml_text).unwrap()
    }

    fn target(toml_text: &str) -> Result<PostgresReady, Problems> {
        let (common, c) = parse(toml_text);
        c.validate(&common)
    }

    #[test]
    fn defaults_and_validation_table() {
        let base = "name = \"main\"\ndsn = \"postgres://perfwatch@127.0.0.1:5432/app\"\n";
        let (common, c) = parse(base);
        assert_eq!(c.max_tables, 200);
        assert_eq!(c.max_indexes, 200);
        assert_eq!(c.max_databases, 20);
        assert_eq!(c.index_interval, Duration::from_secs(300));
        assert_eq!(c.exclude_schemas.len(), 3);
        assert!(c.check(&common).is_empty(), "{:?}", c.check(&common));
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("databases = [\"*\"]\n", &[]),
            ("databases = [\"*\", \"app\"]\n", &["databases"]),
            ("max_tables = 0\n", &["max_tables"]),
            ("seq_ratio = 1.5\n", &["seq_ratio"]),
            ("index_interval = \"0s\"\n", &["index_interval"]),
            (
                "timeout = \"1s\"\nlock_timeout = \"2s\"\n",
                &["lock_timeout"],
            ),
            (
                "[[query]]\nname = \"a\"\nsql = \"select 1 as value\"\n[[query]]\nname = \"a\"\nsql = \"select 2 as value\"\n",
                &["query[1].name"],
            ),
            ("[statements]\nmax_rows = 0\n", &["statements.max_rows"]),
            ("[statements]\ninterval = \"1m\"\n", &[]),
        ];
        for (extra, want) in cases {
            let (common, c) = parse(&format!("{base}{extra}"));
            let got: Vec<String> = c.check(&common).into_iter().map(|(k, _)| k).collect();
            assert_eq!(got, *want, "{extra}");
        }
        let errs = target("name = \"x\"\ndsn = \"mysql://u:hunter2@h/db\"\n")
            .err()
            .unwrap();
        assert_eq!(errs.len(), 1);
        assert!(!errs[0].1.contains("hunter2"), "{errs:?}");
    }

    #[test]
    fn target_is_parsed_once_with_the_password_applied() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "hunter2\n").unwrap();
        let (common, config) = parse(&format!(
            "name = \"x\"\ndsn = \"postgres://u@h:5433/app\"\npassword_file = \"{}\"\n",
            file.display()
        ));
        let validated = |config: &PostgresConfig| PostgresTarget {
            ready: config.validate(&common).unwrap(),
            common: common.clone(),
            config: config.clone(),
        };
        let t = validated(&config);
        assert_eq!(t.ready.main_db, "app");
        assert_eq!(t.ready.options.get_port(), 5433);
        assert_eq!(
            t.ready.password.as_ref().map(Secret::expose),
            Some("hunter2")
        );
        assert!(!format!("{t:?}").contains("hunter2"));
        // The same table with a rotated password file is a different target.
        std::fs::write(&file, "other").unwrap();
        assert_ne!(validated(&config), t);
        // Without a database in the DSN, libpq's default: the user name.
        let t = target("name = \"x\"\ndsn = \"postgres://u:pw@h\"\n").unwrap();
        assert_eq!(
            (t.main_db.as_str(), t.dsn_shown.as_str()),
            ("u", "postgres://u:***@h")
        );
        let errs = target("name = \"x\"\ndsn = \"postgres://u:pw@h:notaport/db\"\n")
            .err()
            .unwrap();
        assert_eq!(errs[0].0, "dsn");
        assert!(!errs[0].1.contains("pw@"), "{errs:?}");
    }

    #[test]
    fn tls_comes_from_the_dsn_or_the_table_and_files_are_checked() {
        use sqlx::postgres::PgSslMode;
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let ca_path = dir.path().join("ca.crt");
        std::fs::write(&ca_path, cert.cert.pem()).unwrap();
        let ca = ca_path.display().to_string();
        let missing = dir.path().join("missing.crt").display().to_string();
        let problems = |text: &str| -> Vec<String> {
            match target(text) {
                Ok(_) => Vec::new(),
                Err(p) => p.into_iter().map(|(k, m)| format!("{k}: {m}")).collect(),
            }
        };
        // libpq's parameters, files read at load.
        let ok = target(&format!(
            "name = \"x\"\ndsn = \"postgres://u@h/db?sslmode=verify-full&sslrootcert={ca}\"\n"
        ))
        .unwrap();
        assert!(matches!(ok.options.get_ssl_mode(), PgSslMode::VerifyFull));
        // The table: verify-full by default, require with insecure_skip_verify.
        let table = target(&format!(
            "name = \"x\"\ndsn = \"postgres://u@h/db\"\n[tls]\nca_file = \"{ca}\"\n"
        ))
        .unwrap();
        assert!(matches!(
            table.options.get_ssl_mode(),
            PgSslMode::VerifyFull
        ));
        let insecure = target(
            "name = \"x\"\ndsn = \"postgres://u@h/db\"\n[tls]\ninsecure_skip_verify = true\n",
        )
        .unwrap();
        assert!(matches!(
            insecure.options.get_ssl_mode(),
            PgSslMode::Require
        ));
        for (text, want) in [
            (
                format!("name = \"x\"\ndsn = \"postgres://u@h/db?sslrootcert={missing}\"\n"),
                "dsn: sslrootcert: cannot read",
            ),
            (
                format!(
                    "name = \"x\"\ndsn = \"postgres://u@h/db?sslmode=require\"\n[tls]\nca_file = \"{ca}\"\n"
                ),
                "tls: TLS is set both in the dsn (sslmode) and in the tls table",
            ),
            (
                "name = \"x\"\ndsn = \"postgres://u@h/db\"\n[tls]\nserver_name = \"db\"\n".into(),
                "tls.server_name: server_name is not supported here",
            ),
            (
                format!("name = \"x\"\ndsn = \"postgres://u@h/db\"\n[tls]\ncert_file = \"{ca}\"\n"),
                "tls.key_file: key_file is required with cert_file",
            ),
        ] {
            let got = problems(&text);
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "{text}: want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let r = parse_split::<PostgresConfig>(
            "name = \"x\"\ndsn = \"postgres://h/db\"\nmax_table = 3\n",
        );
        assert!(r.is_err());
        let r = parse_split::<PostgresConfig>(
            "name = \"x\"\ndsn = \"postgres://h/db\"\n[statements]\ntop_query = 3\n",
        );
        assert!(r.is_err());
    }
}
