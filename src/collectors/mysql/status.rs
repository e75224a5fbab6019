//! Pure parsing and derivation for the connection-level statistics:
//! `SHOW GLOBAL STATUS` / `SHOW GLOBAL VARIABLES` rows, pool saturation, the
//! buffer pool hit inputs, the global full-scan share, the server flavor, the
//! session settings perfwatch applies, and MySQL error numbers → reasons.
//!
//! Both statements answer `(Variable_name, Value)` rows with VARCHAR values
//! on every version (MySQL 5.7/8.0, MariaDB 10.x/11.x), so everything is kept
//! as text and converted on demand, like the Redis INFO parser.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::poll::ErrorReason;

/// Global variables read on every poll.
pub(crate) const VARIABLE_NAMES: &[&str] = &[
    "innodb_page_size",
    "max_connections",
    "performance_schema",
    "userstat",
    "version",
    "version_comment",
];

/// The one status statement of a poll: every status variable, because
/// mysqld_exporter's families cover all of them (`compat.rs`). The server
/// builds the whole list for a `WHERE` too, so the filter saved only the
/// transfer (about 20 kB per poll on MariaDB 10.11).
pub(crate) const STATUS_SQL: &str = "SHOW GLOBAL STATUS";

/// Every global variable, read on a new connection and then every
/// [`FULL_VARIABLES_EVERY`] instead of [`variables_sql`]: they change
/// rarely, and only by an administrator.
pub(crate) const ALL_VARIABLES_SQL: &str = "SHOW GLOBAL VARIABLES";

/// How old the full variables read may get; the values of the polls in
/// between are the last full read with [`VARIABLE_NAMES`] read fresh.
pub(crate) const FULL_VARIABLES_EVERY: Duration = Duration::from_secs(300);

/// The variables statement of the polls between full reads.
pub(crate) fn variables_sql() -> String {
    format!(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN ({})",
        quote_list(VARIABLE_NAMES.iter().copied())
    )
}

/// `'a', 'b'` with `'` and `\` escaped (for names that come from the config).
pub(crate) fn quote_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(Variable_name, Value)` rows by name, case-insensitive (MySQL 8 writes
/// `Threads_connected`, old releases sometimes upper-case).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Vars {
    map: BTreeMap<String, String>,
}

impl Vars {
    /// Builds from rows; later duplicates win.
    pub fn from_rows<I, K, V>(rows: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        Self {
            map: rows
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
                .collect(),
        }
    }

    /// The raw value.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.map.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// A value as a finite number; `ON`/`OFF` and other words give `None`.
    pub fn number(&self, name: &str) -> Option<f64> {
        self.text(name)?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
    }

    /// A value as an unsigned counter.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.text(name)?.trim().parse().ok()
    }

    /// `ON`/`1`/`YES` → true, `OFF`/`0`/`NO` → false.
    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.text(name)?.trim().to_ascii_uppercase().as_str() {
            "ON" | "1" | "YES" | "TRUE" => Some(true),
            "OFF" | "0" | "NO" | "FALSE" => Some(false),
            _ => None,
        }
    }

    /// Every `(name, value)`, names lowercased, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets every variable of `other` (fresher values win).
    pub fn overlay(&mut self, other: &Vars) {
        for (k, v) in &other.map {
            self.map.insert(k.clone(), v.clone());
        }
    }

    /// `(suffix, value)` of every variable named `prefix<suffix>`, suffix
    /// lowercased, sorted by suffix.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, u64)> {
        let prefix = prefix.to_ascii_lowercase();
        self.map
            .iter()
            .filter_map(|(k, v)| {
                let suffix = k.strip_prefix(&prefix)?;
                Some((suffix.to_owned(), v.trim().parse().ok()?))
            })
            .collect()
    }
}

/// MySQL or MariaDB: they name the statement timeout differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Oracle MySQL (and Percona Server).
    Mysql,
    /// MariaDB.
    Mariadb,
}

impl Flavor {
    /// From `VERSION()` (`10.11.19-MariaDB-0+deb12u1`, `8.0.36`) and
    /// optionally `version_comment`.
    pub fn detect(version: &str, comment: &str) -> Self {
        if version.to_ascii_lowercase().contains("mariadb")
            || comment.to_ascii_lowercase().contains("mariadb")
        {
            Self::Mariadb
        } else {
            Self::Mysql
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mysql => "mysql",
            Self::Mariadb => "mariadb",
        }
    }
}

/// The statement run once per new connection so a query of perfwatch can
/// never outlive its poll or queue behind a lock for long: MariaDB's
/// `max_statement_time` (seconds, fractional; applies to every statement,
/// including metadata-lock waits) or MySQL's `max_execution_time`
/// (milliseconds, read-only SELECTs), plus `lock_wait_timeout` (metadata
/// locks, whole seconds ≥ 1) and `innodb_lock_wait_timeout` (row locks).
pub(crate) fn session_sql(flavor: Flavor, budget: Duration) -> String {
    let lock_secs = budget.as_secs().max(1);
    match flavor {
        Flavor::Mariadb => format!(
            "SET SESSION max_statement_time = {:.3}, lock_wait_timeout = {lock_secs}, innodb_lock_wait_timeout = {lock_secs}",
            budget.as_secs_f64().max(0.001)
        ),
        Flavor::Mysql => format!(
            "SET SESSION max_execution_time = {}, lock_wait_timeout = {lock_secs}, innodb_lock_wait_timeout = {lock_secs}",
            budget.as_millis().max(1)
        ),
    }
}

/// Wraps a custom query so the server stops it after `timeout` (MariaDB's
/// `SET STATEMENT … FOR`). MySQL has no per-statement form that works for
/// every statement; there the session limit and the client-side deadline
/// apply.
pub(crate) fn with_statement_timeout(flavor: Flavor, sql: &str, timeout: Duration) -> String {
    match flavor {
        Flavor::Mariadb => format!(
            "SET STATEMENT max_statement_time = {:.3} FOR {}",
            timeout.as_secs_f64().max(0.001),
            sql.trim().trim_end_matches(';')
        ),
        Flavor::Mysql => sql.to_owned(),
    }
}

/// Connections in use by others / max_connections. perfwatch's own
/// connections (`own`) are not counted; `None` when max_connections is
/// unknown or 0.
pub(crate) fn saturation(threads_connected: f64, own: f64, max_connections: f64) -> Option<f64> {
    (max_connections > 0.0).then(|| (threads_connected - own).max(0.0) / max_connections)
}

/// Buffer pool `(hits, misses)` from the two counters: logical read requests
/// that did not have to read from disk, and disk reads.
pub(crate) fn buffer_pool_hits_misses(read_requests: u64, reads: u64) -> (u64, u64) {
    (read_requests.saturating_sub(reads), reads)
}

/// Share of rows read by full scans (`Handler_read_rnd_next`) among all
/// handler reads since the server started; `None` without reads.
pub(crate) fn full_scan_read_ratio(handler_reads: &[(String, u64)]) -> Option<f64> {
    let total: u64 = handler_reads.iter().map(|(_, n)| n).sum();
    let rnd_next = handler_reads
        .iter()
        .find(|(k, _)| k == "rnd_next")
        .map_or(0, |(_, n)| *n);
    (total > 0).then(|| rnd_next as f64 / total as f64)
}

/// Logs a condition once when it appears, not on every poll; again only
/// after it cleared and came back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WarnOnce {
    active: bool,
}

impl WarnOnce {
    /// Records whether the condition holds now; true when a warning should
    /// be logged (it just appeared).
    pub fn observe(&mut self, holds: bool) -> bool {
        let warn = holds && !self.active;
        self.active = holds;
        warn
    }
}

/// Maps a server error number to a reason.
pub(crate) fn reason_for_error_number(number: u16) -> ErrorReason {
    match number {
        // ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR,
        // ER_MUST_CHANGE_PASSWORD(_LOGIN)
        1045 | 1698 | 1820 | 1862 => ErrorReason::Auth,
        // ER_DBACCESS_DENIED, ER_TABLEACCESS_DENIED, ER_COLUMNACCESS_DENIED,
        // ER_SPECIFIC_ACCESS_DENIED, ER_PROCACCESS_DENIED
        1044 | 1142 | 1143 | 1227 | 1370 => ErrorReason::Permission,
        // ER_QUERY_TIMEOUT (MySQL max_execution_time), ER_STATEMENT_TIMEOUT
        // (MariaDB max_statement_time), ER_LOCK_WAIT_TIMEOUT, ER_QUERY_INTERRUPTED
        3024 | 1969 | 1205 | 1317 => ErrorReason::Timeout,
        // ER_CON_COUNT_ERROR, ER_HANDSHAKE_ERROR ("Bad handshake": the login
        // exchange itself failed), ER_HOST_IS_BLOCKED, ER_HOST_NOT_PRIVILEGED,
        // ER_SERVER_SHUTDOWN
        1040 | 1043 | 1129 | 1130 | 1053 => ErrorReason::Connect,
        _ => ErrorReason::Query,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(rows: &[(&str, &str)]) -> Vars {
        Vars::from_rows(rows.iter().map(|(k, v)| (*k, v.to_string())))
    }

    #[test]
    fn vars_parse_values_by_name() {
        let v = vars(&[
            ("Threads_connected", "7"),
            ("UPTIME", "  123 "),
            ("performance_schema", "OFF"),
            ("userstat", "ON"),
            ("version", "10.11.19-MariaDB-0+deb12u1"),
            ("Connection_errors_max_connections", "3"),
            ("Connection_errors_accept", "0"),
            ("Connection_errors_bogus", "x"),
            ("Handler_read_rnd_next", "900"),
            ("Handler_read_key", "100"),
            ("Innodb_buffer_pool_read_requests", "18446744073709551615"),
        ]);
        let cases: &[(&str, Option<f64>)] = &[
            ("threads_connected", Some(7.0)),
            ("Uptime", Some(123.0)),
            ("performance_schema", None),
            ("missing", None),
        ];
        for (name, want) in cases {
            assert_eq!(v.number(name), *want, "{name}");
        }
        assert_eq!(v.flag("performance_schema"), Some(false));
        assert_eq!(v.flag("userstat"), Some(true));
        assert_eq!(v.flag("version"), None);
        assert_eq!(
            v.counter("Innodb_buffer_pool_read_requests"),
            Some(u64::MAX)
        );
        assert_eq!(
            v.with_prefix("Connection_errors_"),
            vec![("accept".into(), 0), ("max_connections".into(), 3)]
        );
        let handlers = v.with_prefix("Handler_read_");
        assert_eq!(full_scan_read_ratio(&handlers), Some(0.9));
        assert_eq!(full_scan_read_ratio(&[]), None);
    }

    #[test]
    fn saturation_table() {
        let cases = [
            // (threads_connected, own, max, want)
            (6.0, 1.0, 20.0, Some(0.25)),
            (1.0, 1.0, 20.0, Some(0.0)),
            (0.0, 1.0, 20.0, Some(0.0)),
            (21.0, 1.0, 20.0, Some(1.0)),
            (5.0, 1.0, 0.0, None),
        ];
        for (tc, own, max, want) in cases {
            assert_eq!(saturation(tc, own, max), want, "{tc} {own} {max}");
        }
    }

    #[test]
    fn buffer_pool_and_flavor() {
        assert_eq!(buffer_pool_hits_misses(1000, 10), (990, 10));
        assert_eq!(buffer_pool_hits_misses(5, 10), (0, 10));
        let cases = [
            ("10.11.19-MariaDB-0+deb12u1", "Debian 12", Flavor::Mariadb),
            ("5.5.5-10.6.12-MariaDB", "", Flavor::Mariadb),
            ("11.4.2", "mariadb.org binary distribution", Flavor::Mariadb),
            ("8.0.36", "MySQL Community Server - GPL", Flavor::Mysql),
            ("5.7.44-log", "", Flavor::Mysql),
        ];
        for (v, c, want) in cases {
            assert_eq!(Flavor::detect(v, c), want, "{v}");
        }
    }

    #[test]
    fn session_and_statement_timeouts() {
        assert_eq!(
            session_sql(Flavor::Mariadb, Duration::from_millis(1600)),
            "SET SESSION max_statement_time = 1.600, lock_wait_timeout = 1, innodb_lock_wait_timeout = 1"
        );
        assert_eq!(
            session_sql(Flavor::Mysql, Duration::from_secs(4)),
            "SET SESSION max_execution_time = 4000, lock_wait_timeout = 4, innodb_lock_wait_timeout = 4"
        );
        assert_eq!(
            with_statement_timeout(Flavor::Mariadb, " SELECT 1; ", Duration::from_millis(250)),
            "SET STATEMENT max_statement_time = 0.250 FOR SELECT 1"
        );
        assert_eq!(
            with_statement_timeout(Flavor::Mysql, "SELECT 1", Duration::from_secs(1)),
            "SELECT 1"
        );
    }

    #[test]
    fn statements_quote_names() {
        assert_eq!(quote_list(["a", "o'k", "b\\"]), "'a', 'o''k', 'b\\\\'");
        assert!(variables_sql().contains("'max_connections'"));
    }

    #[test]
    fn warn_once_table() {
        let mut w = WarnOnce::default();
        let steps = [
            (true, true),
            (true, false),
            (true, false),
            (false, false),
            (true, true),
        ];
        for (i, (holds, want)) in steps.into_iter().enumerate() {
            assert_eq!(w.observe(holds), want, "step {i}");
        }
    }

    #[test]
    fn error_numbers_table() {
        let cases = [
            (1045, ErrorReason::Auth),
            (1142, ErrorReason::Permission),
            (1227, ErrorReason::Permission),
            (1044, ErrorReason::Permission),
            (3024, ErrorReason::Timeout),
            (1969, ErrorReason::Timeout),
            (1205, ErrorReason::Timeout),
            (1040, ErrorReason::Connect),
            (1043, ErrorReason::Connect),
            (1064, ErrorReason::Query),
            (1146, ErrorReason::Query),
        ];
        for (n, want) in cases {
            assert_eq!(reason_for_error_number(n), want, "{n}");
        }
    }
}
