//! mysqld_exporter's own families, computed from the `SHOW GLOBAL STATUS`
//! and `SHOW GLOBAL VARIABLES` rows a poll already read (no statement of
//! their own), so dashboards and alert rules written for
//! prometheus-mysqld-exporter work on perfwatch. Pure functions.
//!
//! The rules are mysqld_exporter's (collector/global_status.go,
//! global_variables.go and utils.go, checked against Debian's 0.14):
//! - a value counts when it is a number or one of the words `Yes`/`ON` (1),
//!   `No`/`OFF`/`Connecting`/`Disconnected`/`non-Primary` (0), `Primary`
//!   (1); other text (file names, dates, empty) is skipped;
//! - the name is the variable lowercased, characters outside `[a-z0-9_]`
//!   replaced by `_`;
//! - status variables named `com_*`, `handler_*`, `connection_errors_*`,
//!   `innodb_buffer_pool_pages_*`, `innodb_rows_*` and
//!   `performance_schema_*` become labelled families (declared in
//!   `catalog.rs`); every other one is `mysql_global_status_<name>`, which
//!   the peer types `untyped` (the server does not say which status
//!   variables are counters) and so does perfwatch: an untyped family needs
//!   no `_total`, and Prometheus treats it like a gauge;
//! - every numeric variable is the gauge `mysql_global_variables_<name>`;
//! - every numeric column of the slave status is the untyped
//!   `mysql_slave_status_<column>` (one series per source connection);
//! - with `processlist = true`, threads by command and state.
//!
//! Where the peer's name breaks a rule of `promtool check metrics` (e.g.
//! `mysql_global_variables_max_error_count`: a `_count` suffix,
//! `..._expire_logs_days`: a non-base unit), perfwatch leaves the family out
//! ([`promtool_rejects`]): its exposition stays lint-clean. The names the
//! declared families of `catalog.rs` already cover (e.g.
//! `mysql_global_status_threads_connected`, a gauge) are not repeated.

use std::collections::BTreeMap;

use super::catalog;
use super::status::{Flavor, Vars};
use crate::catalog::MetricDef;
use crate::exposition::Families;

/// The most status variables (and, separately, global variables) exported
/// as families per target. Both are fixed, server-defined sets: MariaDB
/// 10.11 has about 560 status variables (≈540 numeric) and 650 variables
/// (≈480 numeric), MySQL 8.0 fewer; plugins add a few dozen. The cap only
/// guards against a server (or proxy) answering something else.
pub(super) const MAX_VARIABLES: usize = 2000;

/// `HELP` of the generic status families (mysqld_exporter's text).
const STATUS_HELP: &str = "Generic metric from SHOW GLOBAL STATUS.";
/// `HELP` of the generic variable families (mysqld_exporter's text).
const VARIABLES_HELP: &str = "Generic gauge metric from SHOW GLOBAL VARIABLES.";

/// A status or variable value the way mysqld_exporter reads it
/// (`parseStatus`): a word it maps to 1 or 0 (case-insensitive), a
/// timestamp it turns into Unix seconds, or a number; `None` for other text.
pub(super) fn peer_value(text: &str) -> Option<f64> {
    match text.to_lowercase().as_str() {
        "yes" | "on" | "primary" => return Some(1.0),
        "no" | "off" | "disabled" | "connecting" | "non-primary" | "disconnected" => {
            return Some(0.0);
        }
        _ => {}
    }
    if let Some(t) = peer_timestamp(text) {
        return Some(t);
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The two timestamp layouts mysqld_exporter reads (Go's `Jan 02 15:04:05
/// 2006 MST`, e.g. `Ssl_server_not_after`, and `2006-01-02 15:04:05`), as
/// Unix seconds; the zone abbreviation is taken as UTC, as Go does for one
/// it does not know.
fn peer_timestamp(text: &str) -> Option<f64> {
    let iso = if text.len() == 19 && text.as_bytes()[10] == b' ' {
        format!("{}T{}Z", &text[..10], &text[11..])
    } else {
        let (month, rest) = (text.get(..3)?, text.get(3..)?);
        let month = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .iter()
        .position(|m| *m == month)?
            + 1;
        let parts: Vec<&str> = rest.split(' ').collect();
        let ["", day, time, year, zone] = parts.as_slice() else {
            return None;
        };
        if day.len() != 2 || year.len() != 4 || zone.is_empty() {
            return None;
        }
        format!("{year}-{month:02}-{day}T{time}Z")
    };
    let t = humantime::parse_rfc3339(&iso).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(secs as f64)
}

/// The metric name suffix for a variable (`validPrometheusName`).
pub(super) fn metric_suffix(variable: &str) -> String {
    variable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Non-base units `promtool check metrics` names (client_golang's promlint
/// `units` table: the words it maps to another base unit).
const NON_BASE_UNITS: &[&str] = &[
    "minutes",
    "hours",
    "days",
    "weeks",
    "kelvins",
    "fahrenheit",
    "rankine",
    "inches",
    "yards",
    "miles",
    "bits",
    "calories",
    "pounds",
    "ounces",
];
/// Base units: a name part equal to one (after a unit prefix) is fine.
const BASE_UNITS: &[&str] = &[
    "amperes", "bytes", "celsius", "grams", "joules", "kelvin", "meters", "metres", "seconds",
    "volts",
];
/// Unit prefixes promlint strips before looking a part up.
const UNIT_PREFIXES: &[&str] = &[
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];
/// Abbreviated units promlint rejects as a whole name part.
const UNIT_ABBREVIATIONS: &[&str] = &[
    "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
];

/// Whether `promtool check metrics` would complain about a family named
/// `name`, untyped (`gauge = false`) or a gauge: the promlint rules that
/// can fire on a name built from a server variable (a gauge's reserved
/// `_count`, `_sum`, `_bucket` suffixes; a type word; a non-base or
/// abbreviated unit).
pub(super) fn promtool_rejects(name: &str, gauge: bool) -> bool {
    // promlint leaves untyped families out of the reserved-suffix rule.
    if gauge
        && ["_count", "_sum", "_bucket"]
            .iter()
            .any(|s| name.ends_with(s))
    {
        return true;
    }
    // promlint looks for `_<word>_` or a `_<word>` suffix: a part after
    // the first (no allocation: this runs for every variable of a poll).
    let has_part = |word: &str| name.split('_').skip(1).any(|p| p == word);
    if ["counter", "gauge", "histogram", "summary"]
        .iter()
        .any(|t| has_part(t))
    {
        return true;
    }
    if UNIT_ABBREVIATIONS.iter().any(|a| has_part(a)) {
        return true;
    }
    // promlint judges the first part that is a unit (possibly prefixed).
    for part in name.split('_') {
        let unit = std::iter::once(part)
            .chain(UNIT_PREFIXES.iter().filter_map(|p| part.strip_prefix(p)))
            .find(|u| BASE_UNITS.contains(u) || NON_BASE_UNITS.contains(u));
        if let Some(unit) = unit {
            return unit != part || NON_BASE_UNITS.contains(&unit);
        }
    }
    false
}

/// The status variable groups mysqld_exporter exports as one labelled
/// counter family each: (name prefix, family, label).
const COUNTER_GROUPS: &[(&str, &MetricDef, &str)] = &[
    ("com_", &catalog::COMMANDS, "command"),
    ("handler_", &catalog::HANDLERS, "handler"),
    ("connection_errors_", &catalog::CONNECTION_ERRORS, "error"),
    ("innodb_rows_", &catalog::INNODB_ROW_OPS, "operation"),
    (
        "performance_schema_",
        &catalog::PERFORMANCE_SCHEMA_LOST,
        "instrumentation",
    ),
];

/// Whether the mysql catalog declares `name` (exported by its own code).
fn declared(name: &str) -> bool {
    catalog::ALL.iter().any(|d| d.name == name)
}

/// Exports every numeric status variable the way mysqld_exporter does (see
/// the module docs); returns how many variables were left out because of
/// [`MAX_VARIABLES`].
pub(super) fn export_global_status(target: &str, st: &Vars, out: &mut Families) -> usize {
    let mut dropped = 0;
    for (i, (variable, text)) in st.iter().enumerate() {
        if i >= MAX_VARIABLES {
            dropped += 1;
            continue;
        }
        let Some(v) = peer_value(text) else {
            continue;
        };
        let key = metric_suffix(variable);
        if let Some(p) = key.strip_prefix("innodb_buffer_pool_pages_") {
            match p {
                "data" | "free" | "misc" | "old" => out.gauge(
                    &catalog::BUFFER_POOL_PAGES,
                    &[("target", target), ("state", p)],
                    v,
                ),
                "dirty" => out.gauge(&catalog::BUFFER_POOL_DIRTY_PAGES, &[("target", target)], v),
                // The peer leaves the total out (it is the sum of the states).
                "total" => {}
                _ => out.counter(
                    &catalog::BUFFER_POOL_PAGE_CHANGES,
                    &[("target", target), ("operation", p)],
                    v,
                ),
            }
            continue;
        }
        let group = COUNTER_GROUPS
            .iter()
            .find_map(|(prefix, def, label)| Some((key.strip_prefix(prefix)?, *def, *label)));
        match group {
            Some((value, def, label)) => out.counter(def, &[("target", target), (label, value)], v),
            None => {
                let name = format!("mysql_global_status_{key}");
                if !declared(&name) && !promtool_rejects(&name, false) {
                    out.untyped_named(&name, STATUS_HELP, &[("target", target)], v);
                }
            }
        }
    }
    dropped
}

/// Exports every numeric global variable as mysqld_exporter's gauge
/// `mysql_global_variables_<name>`; returns how many were left out because
/// of [`MAX_VARIABLES`].
pub(super) fn export_global_variables(target: &str, vars: &Vars, out: &mut Families) -> usize {
    let mut dropped = 0;
    for (i, (variable, text)) in vars.iter().enumerate() {
        if i >= MAX_VARIABLES {
            dropped += 1;
            continue;
        }
        let Some(v) = peer_value(text) else {
            continue;
        };
        let name = format!("mysql_global_variables_{}", metric_suffix(variable));
        if !declared(&name) && !promtool_rejects(&name, true) {
            out.gauge_named(&name, VARIABLES_HELP, &[("target", target)], v);
        }
    }
    dropped
}

/// With `processlist = true`, one more statement per poll: threads by
/// command and state (mysqld_exporter's `--collect.info_schema.processlist`
/// query without its user and host split), perfwatch's own connection left
/// out as the peer leaves out its own.
pub(super) const PROCESSLIST_SQL: &str = "SELECT COALESCE(COMMAND, ''), COALESCE(STATE, ''), CAST(COUNT(*) AS CHAR), CAST(COALESCE(SUM(TIME), 0) AS CHAR) FROM information_schema.PROCESSLIST WHERE ID != CONNECTION_ID() GROUP BY COMMAND, STATE";

/// Most (command, state) series; the rest (fewest threads first) are summed
/// into `command="other", state="other"`. Commands are a fixed set of about
/// 30 and states a fixed set of server messages, so a real server stays far
/// below.
pub(super) const MAX_PROCESSLIST_SERIES: usize = 100;

/// Threads and their summed seconds in the current state, by (command,
/// state) label values.
pub(super) type Processlist = BTreeMap<(String, String), (f64, f64)>;

/// A command or state as a label value, the way mysqld_exporter writes it
/// (`sanitizeState`): empty = `unknown`, lowercased, `;,:.()` removed,
/// spaces and `-` as `_`.
pub(super) fn sanitize_state(s: &str) -> String {
    if s.is_empty() {
        return "unknown".into();
    }
    s.to_lowercase()
        .chars()
        .filter(|c| !matches!(c, ';' | ',' | ':' | '.' | '(' | ')'))
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

/// Sums `(command, state, threads, seconds)` rows by their label values and
/// caps the series at [`MAX_PROCESSLIST_SERIES`].
pub(super) fn processlist(
    rows: impl IntoIterator<Item = (String, String, f64, f64)>,
) -> Processlist {
    let mut by: Processlist = BTreeMap::new();
    for (command, state, n, secs) in rows {
        let e = by
            .entry((sanitize_state(&command), sanitize_state(&state)))
            .or_default();
        e.0 += n;
        e.1 += secs;
    }
    if by.len() > MAX_PROCESSLIST_SERIES {
        let mut all: Vec<_> = by.into_iter().collect();
        all.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
        let rest = all.split_off(MAX_PROCESSLIST_SERIES - 1);
        by = all.into_iter().collect();
        let other = by.entry(("other".into(), "other".into())).or_default();
        for (_, (n, secs)) in rest {
            other.0 += n;
            other.1 += secs;
        }
    }
    by
}

/// Exports `mysql_info_schema_processlist_threads` and `_seconds`.
pub(super) fn export_processlist(target: &str, list: &Processlist, out: &mut Families) {
    for ((command, state), (n, secs)) in list {
        let labels = [("target", target), ("command", command), ("state", state)];
        out.gauge(&catalog::PROCESSLIST_THREADS, &labels, *n);
        out.gauge(&catalog::PROCESSLIST_SECONDS, &labels, *secs);
    }
}

/// A replica's replication state (mysqld_exporter's `slave_status`):
/// MariaDB lists every source connection with `SHOW ALL SLAVES STATUS`.
/// Read on the first poll and every `FULL_VARIABLES_EVERY` while the server
/// is no replica, on every poll while it is one.
pub(super) fn slave_status_sql(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Mariadb => "SHOW ALL SLAVES STATUS",
        Flavor::Mysql => "SHOW SLAVE STATUS",
    }
}

/// Most source connections exported (multi-source replication); a real
/// replica has a handful.
pub(super) const MAX_SOURCES: usize = 32;

/// Rows of the slave status: `(column, value)` in the server's order.
pub(super) type SlaveStatus = Vec<Vec<(String, Option<String>)>>;

/// The slave status families declared in the catalog (the alerts and
/// dashboards read them); the other columns keep the generated name.
const DECLARED_SLAVE_STATUS: [&MetricDef; 3] = [
    &catalog::SLAVE_SECONDS_BEHIND_MASTER,
    &catalog::SLAVE_IO_RUNNING,
    &catalog::SLAVE_SQL_RUNNING,
];

/// `HELP` of the other slave status families (mysqld_exporter's text).
const SLAVE_STATUS_HELP: &str = "Generic metric from SHOW SLAVE STATUS.";

/// Exports every numeric column of every source connection as
/// mysqld_exporter's untyped `mysql_slave_status_<column>`, labelled with
/// the source's `master_host`, `master_uuid` (MySQL), `channel_name`
/// (MySQL) and `connection_name` (MariaDB), empty where the server has no
/// such column.
pub(super) fn export_slave_status(target: &str, rows: &SlaveStatus, out: &mut Families) {
    for row in rows.iter().take(MAX_SOURCES) {
        let column = |name: &str| {
            row.iter()
                .find(|(c, _)| c == name)
                .and_then(|(_, v)| v.as_deref())
                .unwrap_or("")
        };
        let labels = [
            ("target", target),
            ("master_host", column("Master_Host")),
            ("master_uuid", column("Master_UUID")),
            ("channel_name", column("Channel_Name")),
            ("connection_name", column("Connection_name")),
        ];
        for (col, value) in row {
            let Some(v) = value.as_deref().and_then(peer_value) else {
                continue;
            };
            let name = format!("mysql_slave_status_{}", col.to_lowercase());
            if let Some(def) = DECLARED_SLAVE_STATUS.iter().find(|d| d.name == name) {
                out.untyped(def, &labels, v);
            } else if !promtool_rejects(&name, false) {
                out.untyped_named(&name, SLAVE_STATUS_HELP, &labels, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::sample_value;

    #[test]
    fn values_the_way_the_peer_reads_them() {
        let cases = [
            ("42", Some(42.0)),
            ("0.25", Some(0.25)),
            ("-1", Some(-1.0)),
            ("ON", Some(1.0)),
            ("Yes", Some(1.0)),
            ("Primary", Some(1.0)),
            ("OFF", Some(0.0)),
            ("No", Some(0.0)),
            ("Connecting", Some(0.0)),
            ("Disconnected", Some(0.0)),
            ("Non-Primary", Some(0.0)),
            ("on", Some(1.0)),
            ("YES", Some(1.0)),
            ("DISABLED", Some(0.0)),
            ("2018-02-14 00:28:07", Some(1518568087.0)),
            ("Feb 14 00:28:07 2018 GMT", Some(1518568087.0)),
            // Go's `02` wants two digits.
            ("Feb  4 00:28:07 2018 GMT", None),
            ("", None),
            ("mysql-bin.000003", None),
            ("AUTH_MASTER", None),
            ("NaN", None),
        ];
        for (text, want) in cases {
            assert_eq!(peer_value(text), want, "{text:?}");
        }
        assert_eq!(
            metric_suffix("Innodb_buffer_pool_pages_data"),
            "innodb_buffer_pool_pages_data"
        );
        assert_eq!(metric_suffix("Ssl-x.y"), "ssl_x_y");
    }

    #[test]
    fn promtool_rules_on_names() {
        let cases = [
            // (name, gauge, rejected): the first five are names promtool
            // 2.42 flags in mysqld_exporter's output for MariaDB 10.11.
            ("mysql_global_variables_max_error_count", true, true),
            ("mysql_global_variables_expire_logs_days", true, true),
            ("mysql_global_variables_histogram_size", true, true),
            (
                "mysql_global_variables_innodb_stats_modified_counter",
                true,
                true,
            ),
            ("mysql_global_variables_sql_slave_skip_counter", true, true),
            ("mysql_global_variables_net_read_timeout", true, false),
            (
                "mysql_global_variables_innodb_buffer_pool_size",
                true,
                false,
            ),
            ("mysql_global_variables_max_allowed_packet", true, false),
            ("mysql_global_variables_key_cache_block_size", true, false),
            ("mysql_global_variables_foo_kilobytes", true, true),
            ("mysql_global_variables_foo_ms", true, true),
            ("mysql_global_status_bytes_received", false, false),
            ("mysql_global_status_threads_created", false, false),
            ("mysql_global_status_histogram_size", false, true),
            ("mysql_slave_status_skip_counter", false, true),
            ("mysql_global_status_prepared_stmt_count", false, false),
            ("mysql_global_status_x_ms", false, true),
        ];
        for (name, gauge, want) in cases {
            assert_eq!(promtool_rejects(name, gauge), want, "{name}");
        }
    }

    /// (family, labels, value).
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<f64>);

    #[test]
    fn status_groups_and_generic_names() {
        let st = Vars::from_rows([
            ("Com_select", "7"),
            ("Handler_commit", "3"),
            ("Handler_read_rnd_next", "30"),
            ("Connection_errors_max_connections", "2"),
            ("Innodb_buffer_pool_pages_data", "296"),
            ("Innodb_buffer_pool_pages_dirty", "4"),
            ("Innodb_buffer_pool_pages_total", "2028"),
            ("Innodb_buffer_pool_pages_flushed", "9"),
            ("Innodb_rows_read", "11"),
            ("Performance_schema_accounts_lost", "0"),
            ("Questions", "42"),
            ("Threads_created", "5"),
            ("Threads_connected", "3"),
            ("Slave_running", "OFF"),
            ("Binlog_snapshot_file", ""),
            ("Rpl_status", "AUTH_MASTER"),
        ]);
        let mut out = Families::new();
        assert_eq!(export_global_status("db", &st, &mut out), 0);
        let f = out.into_vec();
        let v = |name: &str, labels: &[(&str, &str)]| sample_value(&f, name, labels);
        let cases: &[Case] = &[
            (
                "mysql_global_status_commands_total",
                &[("command", "select")],
                Some(7.0),
            ),
            (
                "mysql_global_status_handlers_total",
                &[("handler", "commit")],
                Some(3.0),
            ),
            (
                "mysql_global_status_handlers_total",
                &[("handler", "read_rnd_next")],
                Some(30.0),
            ),
            (
                "mysql_global_status_connection_errors_total",
                &[("error", "max_connections")],
                Some(2.0),
            ),
            (
                "mysql_global_status_buffer_pool_pages",
                &[("state", "data")],
                Some(296.0),
            ),
            (
                "mysql_global_status_buffer_pool_pages",
                &[("state", "total")],
                None,
            ),
            (
                "mysql_global_status_buffer_pool_dirty_pages",
                &[],
                Some(4.0),
            ),
            (
                "mysql_global_status_buffer_pool_page_changes_total",
                &[("operation", "flushed")],
                Some(9.0),
            ),
            (
                "mysql_global_status_innodb_row_ops_total",
                &[("operation", "read")],
                Some(11.0),
            ),
            (
                "mysql_global_status_performance_schema_lost_total",
                &[("instrumentation", "accounts_lost")],
                Some(0.0),
            ),
            (
                "mysql_global_status_questions",
                &[("target", "db")],
                Some(42.0),
            ),
            ("mysql_global_status_threads_created", &[], Some(5.0)),
            ("mysql_global_status_slave_running", &[], Some(0.0)),
            ("mysql_global_status_binlog_snapshot_file", &[], None),
            ("mysql_global_status_rpl_status", &[], None),
            // Declared as a gauge in the catalog: exported there, not here.
            ("mysql_global_status_threads_connected", &[], None),
        ];
        for (name, labels, want) in cases {
            assert_eq!(v(name, labels), *want, "{name}{labels:?}");
        }
        let questions = f
            .iter()
            .find(|f| f.name() == "mysql_global_status_questions")
            .unwrap();
        assert_eq!(
            questions.get_field_type(),
            prometheus::proto::MetricType::UNTYPED
        );
    }

    #[test]
    fn processlist_labels_and_cap() {
        let cases = [
            ("", "unknown"),
            ("Sleep", "sleep"),
            ("Query", "query"),
            ("User sleep", "user_sleep"),
            (
                "Waiting for table metadata lock",
                "waiting_for_table_metadata_lock",
            ),
            ("Filling schema table", "filling_schema_table"),
            ("Binlog Dump", "binlog_dump"),
            (
                "Master has sent all binlog to slave; waiting for more updates",
                "master_has_sent_all_binlog_to_slave_waiting_for_more_updates",
            ),
            ("Copying to tmp table (x.y)", "copying_to_tmp_table_xy"),
            ("Pre-commit: x", "pre_commit_x"),
        ];
        for (raw, want) in cases {
            assert_eq!(sanitize_state(raw), want, "{raw:?}");
        }
        let list = processlist([
            ("Sleep".to_owned(), String::new(), 2.0, 10.0),
            ("Sleep".to_owned(), "".to_owned(), 1.0, 5.0),
            ("Query".to_owned(), "User sleep".to_owned(), 1.0, 3.0),
        ]);
        assert_eq!(list[&("sleep".into(), "unknown".into())], (3.0, 15.0));
        let mut out = Families::new();
        export_processlist("db", &list, &mut out);
        let f = out.into_vec();
        assert_eq!(
            sample_value(
                &f,
                "mysql_info_schema_processlist_seconds",
                &[("command", "query"), ("state", "user_sleep")]
            ),
            Some(3.0)
        );
        let many = processlist(
            (0..150).map(|i| ("Query".to_owned(), format!("s{i:03}"), f64::from(i), 1.0)),
        );
        assert_eq!(many.len(), MAX_PROCESSLIST_SERIES);
        // The busiest stay; the 51 smallest (0..=50 threads) are summed.
        assert!(many.contains_key(&("query".into(), "s149".into())));
        assert!(!many.contains_key(&("query".into(), "s050".into())));
        assert_eq!(
            many[&("other".into(), "other".into())],
            ((0..=50).sum::<i32>() as f64, 51.0)
        );
    }

    #[test]
    fn slave_status_columns() {
        let row = |name: &str, ts: &str| {
            vec![
                ("Connection_name".to_owned(), Some(name.to_owned())),
                ("Master_Host".to_owned(), Some("10.0.0.1".to_owned())),
                ("Slave_IO_Running".to_owned(), Some("Yes".to_owned())),
                ("Slave_SQL_Running".to_owned(), Some("No".to_owned())),
                ("Seconds_Behind_Master".to_owned(), None),
                (
                    "Master_Log_File".to_owned(),
                    Some("mysql-bin.000003".to_owned()),
                ),
                ("Read_Master_Log_Pos".to_owned(), Some(ts.to_owned())),
            ]
        };
        let mut out = Families::new();
        export_slave_status("db", &vec![row("", "42"), row("b", "7")], &mut out);
        let f = out.into_vec();
        let v = |name: &str, conn: &str| {
            sample_value(&f, name, &[("connection_name", conn), ("master_uuid", "")])
        };
        assert_eq!(v("mysql_slave_status_slave_io_running", ""), Some(1.0));
        assert_eq!(v("mysql_slave_status_slave_sql_running", "b"), Some(0.0));
        assert_eq!(v("mysql_slave_status_read_master_log_pos", "b"), Some(7.0));
        assert_eq!(v("mysql_slave_status_seconds_behind_master", ""), None);
        assert_eq!(v("mysql_slave_status_master_log_file", ""), None);
        assert_eq!(slave_status_sql(Flavor::Mariadb), "SHOW ALL SLAVES STATUS");
    }

    #[test]
    fn variables_as_gauges() {
        let vars = Vars::from_rows([
            ("innodb_buffer_pool_size", "33554432"),
            ("read_only", "OFF"),
            ("max_error_count", "64"),
            ("max_connections", "50"),
            ("version", "10.11.19-MariaDB"),
        ]);
        let mut out = Families::new();
        assert_eq!(export_global_variables("db", &vars, &mut out), 0);
        let f = out.into_vec();
        let v = |name: &str| sample_value(&f, name, &[("target", "db")]);
        assert_eq!(
            v("mysql_global_variables_innodb_buffer_pool_size"),
            Some(33554432.0)
        );
        assert_eq!(v("mysql_global_variables_read_only"), Some(0.0));
        assert_eq!(v("mysql_global_variables_max_error_count"), None);
        assert_eq!(v("mysql_global_variables_max_connections"), None);
        assert_eq!(v("mysql_global_variables_version"), None);
    }
}
