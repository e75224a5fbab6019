//! Export of what every MySQL poll reads (global status and variables) into
//! metric families: pure functions, tested without a server. The index and
//! table pass exports in `index_metrics.rs`.

use std::collections::BTreeMap;

use super::catalog;
use super::compat;
use super::status::{self, Flavor, Vars};
use crate::catalog::{COLLECTOR_DEGRADED, MetricDef, POOL_SATURATION};
use crate::exposition::Families;
use crate::poll::ErrorReason;

/// Status fields exported as gauges: (variable, family).
const STATUS_GAUGES: &[(&str, &MetricDef)] = &[
    ("Threads_connected", &catalog::THREADS_CONNECTED),
    ("Threads_running", &catalog::THREADS_RUNNING),
    ("Max_used_connections", &catalog::MAX_USED_CONNECTIONS),
    ("Uptime", &catalog::UPTIME),
];

/// Status counters: (variable, family). mysqld_exporter exports these
/// without `_total`; perfwatch types them as counters, which need it.
const STATUS_COUNTERS: &[(&str, &MetricDef)] = &[
    ("Aborted_connects", &catalog::ABORTED_CONNECTS),
    ("Aborted_clients", &catalog::ABORTED_CLIENTS),
    ("Connections", &catalog::CONNECTIONS),
    ("Questions", &catalog::QUESTIONS),
    ("Slow_queries", &catalog::SLOW_QUERIES),
    (
        "Innodb_buffer_pool_read_requests",
        &catalog::BUFFER_POOL_READ_REQUESTS,
    ),
    ("Innodb_buffer_pool_reads", &catalog::BUFFER_POOL_READS),
];

/// The server as the connection saw it, for `mysql_version_info`.
pub(super) struct Server<'a> {
    pub(super) version: &'a str,
    pub(super) version_comment: &'a str,
    pub(super) flavor: Flavor,
}

/// Exports status counters and gauges, mysqld_exporter's status and
/// variable families (`compat.rs`), saturation and the version; returns how
/// many variables were left out for `compat::MAX_VARIABLES`.
pub(super) fn export_status(
    target: &str,
    st: &Vars,
    vars: &Vars,
    server: &Server<'_>,
    out: &mut Families,
) -> usize {
    let t = [("target", target)];
    let mut dropped = 0;
    for (field, def) in STATUS_GAUGES {
        if let Some(v) = st.number(field) {
            out.gauge(def, &t, v);
        }
    }
    for (field, def) in STATUS_COUNTERS {
        if let Some(v) = st.number(field) {
            out.counter(def, &t, v);
        }
    }
    // Connection errors, handlers and every other status variable under
    // mysqld_exporter's names: from the same rows.
    dropped += compat::export_global_status(target, st, out);
    dropped += compat::export_global_variables(target, vars, out);
    let handlers = st.with_prefix("Handler_read_");
    if let Some(r) = status::full_scan_read_ratio(&handlers) {
        out.gauge(&catalog::FULL_SCAN_READ_RATIO, &t, r);
    }
    let max_conn = vars.number("max_connections");
    if let Some(m) = max_conn {
        out.gauge(&catalog::MAX_CONNECTIONS, &t, m);
    }
    // source=mysql: (Threads_connected - perfwatch's own connection) / max_connections.
    if let (Some(tc), Some(m)) = (st.number("Threads_connected"), max_conn)
        && let Some(r) = status::saturation(tc, 1.0, m)
    {
        out.gauge(
            &POOL_SATURATION,
            &[("source", "mysql"), ("target", target), ("database", "")],
            r,
        );
    }
    out.gauge(
        &catalog::VERSION_INFO,
        &[
            ("target", target),
            ("version", server.version),
            ("version_comment", server.version_comment),
            ("flavor", server.flavor.as_str()),
        ],
        1.0,
    );
    dropped
}

/// Exports the buffer pool hit ratio per `(window, hits, misses)`; a window
/// without reads has no sample.
pub(super) fn export_hit_ratios(target: &str, windows: &[(&str, u64, u64)], out: &mut Families) {
    for (label, h, m) in windows {
        if let Some(r) = crate::counter_window::hit_ratio(*h, *m) {
            out.gauge(
                &catalog::BUFFER_POOL_HIT_RATIO,
                &[("target", target), ("window", label)],
                r,
            );
        }
    }
}

/// Exports perfwatch's own work on the server and its failed sections.
pub(super) fn export_own_work(
    target: &str,
    section_errors: &BTreeMap<(&'static str, ErrorReason), u64>,
    statements: u64,
    connects: u64,
    out: &mut Families,
) {
    for ((section, reason), n) in section_errors {
        out.counter(
            &catalog::SECTION_ERRORS,
            &[
                ("target", target),
                ("section", section),
                ("reason", reason.as_str()),
            ],
            *n as f64,
        );
    }
    out.counter(
        &catalog::STATEMENTS,
        &[("target", target)],
        statements as f64,
    );
    out.counter(&catalog::CONNECTS, &[("target", target)], connects as f64);
}

/// Flags the target as running with reduced data for `reason`.
pub(super) fn export_degraded(target: &str, reason: &str, out: &mut Families) {
    out.gauge(
        &COLLECTOR_DEGRADED,
        &[
            ("collector", "mysql"),
            ("target", target),
            ("reason", reason),
        ],
        1.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::assert_samples;

    #[test]
    fn status_export_names_and_values() {
        let st = Vars::from_rows([
            ("Threads_connected", "11"),
            ("Questions", "42"),
            ("Connection_errors_max_connections", "3"),
            ("Handler_read_rnd_next", "30"),
            ("Handler_read_key", "10"),
        ]);
        let vars = Vars::from_rows([("max_connections", "100")]);
        let server = Server {
            version: "11.4.2-MariaDB",
            version_comment: "MariaDB Server",
            flavor: Flavor::detect("11.4.2-MariaDB", "MariaDB Server"),
        };
        let mut out = Families::new();
        export_status("db", &st, &vars, &server, &mut out);
        export_hit_ratios("db", &[("5m", 0, 0), ("total", 9, 1)], &mut out);
        export_own_work("db", &BTreeMap::new(), 7, 1, &mut out);
        export_degraded("db", "performance_schema_off", &mut out);
        let f = out.into_vec();
        #[rustfmt::skip]
        assert_samples(&f, &[
            ("mysql_global_status_threads_connected", &[], Some(11.0)),
            ("mysql_global_status_questions_total", &[], Some(42.0)),
            ("mysql_global_status_connection_errors_total", &[("error", "max_connections")], Some(3.0)),
            ("mysql_global_status_handlers_total", &[("handler", "read_rnd_next")], Some(30.0)),
            ("perfwatch_mysql_full_scan_read_ratio", &[], Some(0.75)),
            ("perfwatch_pool_saturation_ratio", &[("source", "mysql")], Some(0.1)),
            ("mysql_version_info", &[("flavor", "mariadb")], Some(1.0)),
            ("perfwatch_mysql_buffer_pool_hit_ratio", &[("window", "5m")], None),
            ("perfwatch_mysql_buffer_pool_hit_ratio", &[("window", "total")], Some(0.9)),
            ("perfwatch_mysql_statements_total", &[], Some(7.0)),
            ("perfwatch_collector_degraded", &[("reason", "performance_schema_off")], Some(1.0)),
        ]);
    }
}
