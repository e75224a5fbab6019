//! `[[mysql]]` config: one MySQL 5.7/8.0 or MariaDB 10.x/11.x server per table.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::collectors::custom_query::{CustomQueryConfig, validate_queries};
use crate::collectors::statement_stats::StatementsConfig;
use crate::poll::CommonTarget;
use crate::secret::{Secret, read_secret_file};

/// One MySQL/MariaDB target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// The `target` label; unique among `[[mysql]]` tables.
    pub name: String,
    /// `mysql://user[:password]@host[:port][/db]` (or `mariadb://`); the
    /// password may come from `password`/`password_file` instead.
    pub dsn: String,
    /// Password, when not in the DSN; `${ENV}` is expanded.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Overrides `global.interval`.
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Overrides `global.timeout`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
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
    /// Custom SQL metrics (`[[mysql.query]]`).
    #[serde(default)]
    pub query: Vec<CustomQueryConfig>,
    /// performance_schema's statement digests as a slow-query source
    /// (`[mysql.statements]`).
    #[serde(default)]
    pub statements: Option<StatementsConfig>,
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
pub const SYSTEM_SCHEMAS: &[&str] = &["mysql", "sys", "information_schema", "performance_schema"];

impl MysqlConfig {
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
        if self.max_tables == 0 {
            errors.push((
                "max_tables".into(),
                "max_tables must be at least 1, got 0".into(),
            ));
        }
        if self.max_indexes == 0 {
            errors.push((
                "max_indexes".into(),
                "max_indexes must be at least 1, got 0".into(),
            ));
        }
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

    /// The schemas to examine: `None` = every non-system schema, `Some(list)`
    /// otherwise (empty when neither `databases` nor the DSN names one).
    pub fn schemas(&self) -> Option<Vec<String>> {
        if self.databases.iter().any(|d| d == "*") {
            return None;
        }
        if !self.databases.is_empty() {
            return Some(self.databases.clone());
        }
        Some(
            parse_dsn(&self.dsn)
                .ok()
                .and_then(|d| d.database)
                .into_iter()
                .collect(),
        )
    }
}

/// The parts of a DSN perfwatch uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// Host name or address.
    pub host: String,
    /// TCP port (3306 when absent).
    pub port: u16,
    /// User name (percent-decoded).
    pub user: String,
    /// Password in the DSN, if any (percent-decoded).
    pub password: Option<String>,
    /// Default database, if any.
    pub database: Option<String>,
    /// `?socket=/path` for a Unix socket.
    pub socket: Option<String>,
}

/// Parses `mysql://user[:pw]@host[:port][/db][?socket=/path]` (also
/// `mariadb://`). Error messages never contain the password.
pub fn parse_dsn(dsn: &str) -> Result<Dsn, String> {
    let masked = mask_dsn(dsn);
    let rest = dsn
        .strip_prefix("mysql://")
        .or_else(|| dsn.strip_prefix("mariadb://"))
        .ok_or_else(|| format!("dsn \"{masked}\" must start with mysql:// or mariadb://"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (u, h),
        None => ("", authority),
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        // [::1]:3306
        let (h, after) = h
            .split_once(']')
            .ok_or_else(|| format!("dsn \"{masked}\": unclosed [ in the host"))?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("dsn \"{masked}\": port \"{p}\" is not a number 1-65535"))?,
        None => 3306,
    };
    let mut socket = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("socket", v)) => socket = Some(percent_decode(v)?),
            _ => {
                return Err(format!(
                    "dsn \"{masked}\": unknown parameter \"{pair}\" (only socket=/path is supported)"
                ));
            }
        }
    }
    if host.is_empty() && socket.is_none() {
        return Err(format!("dsn \"{masked}\" has no host"));
    }
    let user = percent_decode(user)?;
    if user.is_empty() {
        return Err(format!("dsn \"{masked}\" has no user"));
    }
    let database = (!path.is_empty())
        .then(|| percent_decode(path))
        .transpose()?;
    Ok(Dsn {
        host,
        port,
        user,
        password: password.map(percent_decode).transpose()?,
        database,
        socket,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad percent-escape in the dsn".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the dsn is not valid UTF-8 after percent-decoding".into())
}

/// Shows a DSN with its password replaced by `***`.
pub fn mask_dsn(dsn: &str) -> String {
    let Some(scheme_end) = dsn.find("://") else {
        return dsn.to_owned();
    };
    let rest = &dsn[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return dsn.to_owned();
    };
    let userinfo = &rest[..at];
    let masked = match userinfo.split_once(':') {
        Some((u, _)) => format!("{u}:***"),
        None => userinfo.to_owned(),
    };
    format!("{}{masked}{}", &dsn[..scheme_end + 3], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dsn: &str) -> MysqlConfig {
        MysqlConfig {
            name: "db".into(),
            dsn: dsn.into(),
            password: None,
            password_file: None,
            interval: None,
            timeout: None,
            databases: vec![],
            max_tables: 200,
            max_indexes: 500,
            index_interval: Duration::from_secs(300),
            missing_index_min_rows: 10_000,
            missing_index_min_full_scan_ratio: 0.5,
            query: vec![],
            statements: None,
        }
    }

    #[test]
    fn dsn_table() {
        let ok =
            |dsn: &str, host: &str, port: u16, user: &str, pw: Option<&str>, db: Option<&str>| {
                let d = parse_dsn(dsn).unwrap_or_else(|e| panic!("{dsn}: {e}"));
                assert_eq!(
                    (
                        d.host.as_str(),
                        d.port,
                        d.user.as_str(),
                        d.password.as_deref(),
                        d.database.as_deref()
                    ),
                    (host, port, user, pw, db),
                    "{dsn}"
                );
            };
        ok(
            "mysql://perfwatch@127.0.0.1:3306/drive_safe_db",
            "127.0.0.1",
            3306,
            "perfwatch",
            None,
            Some("drive_safe_db"),
        );
        ok(
            "mysql://u:p%40ss@db/x",
            "db",
            3306,
            "u",
            Some("p@ss"),
            Some("x"),
        );
        ok(
            "mariadb://root@[::1]:3307/",
            "::1",
            3307,
            "root",
            None,
            None,
        );
        ok("mysql://u:a:b@h:1", "h", 1, "u", Some("a:b"), None);
        let s = parse_dsn("mysql://u@localhost/db?socket=/run/mysqld/mysqld.sock").unwrap();
        assert_eq!(s.socket.as_deref(), Some("/run/mysqld/mysqld.sock"));
        for bad in [
            "postgres://u@h/db",
            "mysql://u@h:99999/db",
            "mysql://@h/db",
            "mysql://u@/db",
            "mysql://u@h/db?sslmode=x",
        ] {
            assert!(parse_dsn(bad).is_err(), "{bad}");
        }
        let e = parse_dsn("mysql://u:secret@h:x/db").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn mask_table() {
        for (dsn, want) in [
            ("mysql://u:secret@h/db", "mysql://u:***@h/db"),
            ("mysql://u@h/db", "mysql://u@h/db"),
            ("mysql://h:3306", "mysql://h:3306"),
            (
                "mysql://u:p@ss@h/d?socket=/x@y",
                "mysql://u:***@h/d?socket=/x@y",
            ),
        ] {
            assert_eq!(mask_dsn(dsn), want);
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
        let crate::collectors::ReadyTarget::Mysql(c) = &config.targets[0].ready else {
            panic!("not a mysql target");
        };
        assert_eq!(c.index_interval, Duration::from_secs(300));
        assert_eq!(c.query[0].interval, Some(Duration::from_secs(60)));
        assert_eq!(c.password.as_ref().map(|p| p.expose()), Some("pw"));

        let bad = "[[mysql]]\nname = \"x\"\ndsn = \"mysql://u@h/db\"\nmax_table = 3\n[[mysql.query]]\nname = \"q\"\nsql = \"\"\n";
        let errors = crate::config::Config::from_source("t.toml", bad, &env)
            .unwrap_err()
            .to_string();
        assert!(errors.contains("max_table"), "{errors}");
    }

    #[test]
    fn validation_and_schemas() {
        let mut c = cfg("mysql://u:pw@h/app");
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.schemas(), Some(vec!["app".to_owned()]));
        c.password = Some(Secret::new("x"));
        c.max_tables = 0;
        c.missing_index_min_full_scan_ratio = 0.0;
        c.databases = vec!["*".into(), "app".into()];
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
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
        assert_eq!(c.schemas(), Some(vec![]));
        c.databases = vec!["*".into()];
        assert_eq!(c.schemas(), None);
        assert_eq!(cfg("redis://h").validate()[0].0, "dsn");
        let mut c = cfg("mysql://u@h");
        c.statements = Some(toml::from_str("max_rows = 0").unwrap());
        assert_eq!(c.validate()[0].0, "statements.max_rows");
    }
}
