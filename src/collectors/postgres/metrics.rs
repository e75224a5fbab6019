//! Export of what one PostgreSQL poll read into metric families: pure
//! functions of the rows and the collector's counters, so they are tested
//! without a server. Every family is declared in `catalog.rs` (or
//! `crate::catalog::SHARED`).

use std::collections::BTreeMap;

use super::catalog;
use super::rules::{
    self, DatabaseStat, IndexStat, MissingIndexRule, STAT_DATABASE_COLUMNS, TableStat,
};
use super::sql::{ActivityRow, DatabaseRow, SettingsRow};
use crate::catalog::{COLLECTOR_DEGRADED, MetricDef, POOL_SATURATION};
use crate::exposition::Families;
use crate::poll::ErrorReason;

/// States postgres_exporter always exports (zeros included) per database.
const STATES: [&str; 6] = [
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
];

/// The `pg_stat_database` families, in the column order of
/// `sql::SQL_STAT_DATABASE` and `DatabaseStat::columns`.
const STAT_DATABASE: [&MetricDef; STAT_DATABASE_COLUMNS] = [
    &catalog::STAT_DATABASE_NUMBACKENDS,
    &catalog::STAT_DATABASE_XACT_COMMIT,
    &catalog::STAT_DATABASE_XACT_ROLLBACK,
    &catalog::STAT_DATABASE_BLKS_READ,
    &catalog::STAT_DATABASE_BLKS_HIT,
    &catalog::STAT_DATABASE_TUP_RETURNED,
    &catalog::STAT_DATABASE_TUP_FETCHED,
    &catalog::STAT_DATABASE_TUP_INSERTED,
    &catalog::STAT_DATABASE_TUP_UPDATED,
    &catalog::STAT_DATABASE_TUP_DELETED,
    &catalog::STAT_DATABASE_CONFLICTS,
    &catalog::STAT_DATABASE_TEMP_FILES,
    &catalog::STAT_DATABASE_TEMP_BYTES,
    &catalog::STAT_DATABASE_DEADLOCKS,
];

/// Reasons exported by `perfwatch_collector_degraded`.
const DEGRADED_REASONS: [ErrorReason; 5] = [
    ErrorReason::Connect,
    ErrorReason::Auth,
    ErrorReason::Permission,
    ErrorReason::Timeout,
    ErrorReason::Query,
];

/// Per-database connection stats from `pg_stat_activity`.
#[derive(Default, Clone)]
struct DbActivity {
    states: BTreeMap<String, f64>,
    max_tx: f64,
    max_query: f64,
    waiting: f64,
}

/// What the connection export found, for the landing page.
pub(super) struct Connections {
    /// Client sessions, perfwatch's own excluded.
    pub(super) used: f64,
    /// Slots for ordinary roles.
    pub(super) available: f64,
    /// `used / available`, when any slot is left for ordinary roles.
    pub(super) ratio: Option<f64>,
}

/// Exports sessions by database and state, the connection settings and
/// saturation, and the statistics age of every connectable database.
pub(super) fn export_connections(
    target: &str,
    activity: &[ActivityRow],
    settings: &SettingsRow,
    databases: &[DatabaseRow],
    out: &mut Families,
) -> Connections {
    let t = [("target", target)];
    let (max_conn, su_reserved, reserved, started_unix, _, now_unix, _, in_recovery, lag) =
        settings;

    // Connections by database and state.
    let mut per_db: BTreeMap<String, DbActivity> = BTreeMap::new();
    for d in databases.iter().filter(|d| d.2) {
        per_db.entry(d.0.clone()).or_default();
    }
    let mut used = 0.0;
    for (datname, state, n, max_tx, max_query, waiting) in activity {
        used += n;
        let a = per_db.entry(datname.clone()).or_default();
        *a.states.entry(state.clone()).or_default() += n;
        a.max_tx = a.max_tx.max(*max_tx);
        a.max_query = a.max_query.max(*max_query);
        a.waiting += waiting;
    }
    for (datname, a) in &per_db {
        let mut states: BTreeMap<&str, f64> = STATES.iter().map(|s| (*s, 0.0)).collect();
        for (s, n) in &a.states {
            *states.entry(s.as_str()).or_default() += n;
        }
        for (state, n) in states {
            out.gauge(
                &catalog::SESSIONS,
                &[("target", target), ("datname", datname), ("state", state)],
                n,
            );
        }
        let l = [("target", target), ("datname", datname.as_str())];
        out.gauge(&catalog::MAX_TX_DURATION, &l, a.max_tx);
        out.gauge(&catalog::OLDEST_QUERY, &l, a.max_query);
        out.gauge(&catalog::WAITING_ON_LOCK, &l, a.waiting);
    }
    out.gauge(&catalog::MAX_CONNECTIONS, &t, *max_conn);
    out.gauge(&catalog::SUPERUSER_RESERVED, &t, *su_reserved);
    out.gauge(&catalog::CONNECTIONS_USED, &t, used);
    let available = max_conn - su_reserved - reserved;
    out.gauge(&catalog::CONNECTIONS_AVAILABLE, &t, available);
    let ratio = rules::saturation_ratio(used, *max_conn, su_reserved + reserved);
    if let Some(r) = ratio {
        out.gauge(
            &POOL_SATURATION,
            &[("source", "postgres"), ("target", target), ("database", "")],
            r,
        );
    }

    out.gauge(
        &catalog::REPLICATION_IS_REPLICA,
        &t,
        if *in_recovery { 1.0 } else { 0.0 },
    );
    if let Some(lag) = lag {
        out.gauge(&catalog::REPLICATION_LAG, &t, *lag);
    }

    // Statistics age per database.
    for (datname, reset, connectable) in databases {
        if !connectable {
            continue;
        }
        let since = reset.unwrap_or(*started_unix);
        out.gauge(
            &catalog::STATS_RESET_AGE,
            &[("target", target), ("datname", datname)],
            (now_unix - since).max(0.0),
        );
    }
    Connections {
        used,
        available,
        ratio,
    }
}

/// Exports `pg_stat_database` and the database sizes: the `max` busiest
/// databases with their own series, the rest summed into `datname="other"`
/// (`datid=""`), so cluster-wide sums stay whole.
pub(super) fn export_databases(
    target: &str,
    stats: &[DatabaseStat],
    max: usize,
    out: &mut Families,
) {
    let mut sorted = stats.to_vec();
    rules::sort_databases(&mut sorted);
    let zero = DatabaseStat {
        datid: String::new(),
        datname: "other".into(),
        columns: [0.0; STAT_DATABASE_COLUMNS],
        size_bytes: None,
    };
    let (kept, other) = rules::top_n_with_other(sorted, max, zero, |mut acc, d| {
        for (sum, v) in acc.columns.iter_mut().zip(d.columns) {
            *sum += v;
        }
        if let Some(size) = d.size_bytes {
            acc.size_bytes = Some(acc.size_bytes.unwrap_or(0.0) + size);
        }
        acc
    });
    out.gauge(
        &catalog::DATABASES_SUMMED_INTO_OTHER,
        &[("target", target)],
        stats.len().saturating_sub(kept.len()) as f64,
    );
    for d in kept.iter().chain(other.iter()) {
        let l = [
            ("target", target),
            ("datid", d.datid.as_str()),
            ("datname", d.datname.as_str()),
        ];
        for (def, v) in STAT_DATABASE.iter().zip(d.columns) {
            out.gauge(def, &l, v);
        }
        if let Some(size) = d.size_bytes {
            out.gauge(
                &catalog::DATABASE_SIZE,
                &[("target", target), ("datname", d.datname.as_str())],
                size,
            );
        }
    }
}

/// Exports the failures of parts (`(datname, part, reason)` → count) and
/// the degraded flags of the parts failing right now.
pub(super) fn export_parts(
    target: &str,
    part_errors: &BTreeMap<(String, &'static str, ErrorReason), u64>,
    failing: &BTreeMap<(String, &'static str), ErrorReason>,
    out: &mut Families,
) {
    for ((datname, part, reason), n) in part_errors {
        out.counter(
            &catalog::PART_ERRORS,
            &[
                ("target", target),
                ("datname", datname.as_str()),
                ("part", part),
                ("reason", reason.as_str()),
            ],
            *n as f64,
        );
    }
    for reason in DEGRADED_REASONS {
        let on = failing.values().any(|r| *r == reason);
        out.gauge(
            &COLLECTOR_DEGRADED,
            &[
                ("collector", "postgres"),
                ("target", target),
                ("reason", reason.as_str()),
            ],
            if on { 1.0 } else { 0.0 },
        );
    }
}

/// Exports per-index series (top `max` by size, the rest as `other`) and the
/// per-database unused-index summary.
pub(super) fn export_indexes(
    ix: &[IndexStat],
    max: usize,
    target: &str,
    db: &str,
    out: &mut Families,
) {
    let unused: Vec<&IndexStat> = ix.iter().filter(|i| rules::index_unused(i)).collect();
    let dl = [("target", target), ("datname", db)];
    out.gauge(&catalog::UNUSED_INDEXES, &dl, unused.len() as f64);
    out.gauge(
        &catalog::UNUSED_INDEX_BYTES,
        &dl,
        unused.iter().map(|i| i.size_bytes).sum(),
    );
    let mut sorted = ix.to_vec();
    rules::sort_indexes(&mut sorted);
    let zero = IndexStat {
        schemaname: "other".into(),
        relname: "other".into(),
        indexrelname: "other".into(),
        idx_scan: 0.0,
        idx_tup_read: 0.0,
        idx_tup_fetch: 0.0,
        size_bytes: 0.0,
        enforces_constraint: true,
    };
    let (kept, other) = rules::top_n_with_other(sorted, max, zero, |mut acc, i| {
        acc.idx_scan += i.idx_scan;
        acc.idx_tup_read += i.idx_tup_read;
        acc.idx_tup_fetch += i.idx_tup_fetch;
        acc.size_bytes += i.size_bytes;
        acc
    });
    let other_is_some = other.is_some();
    for i in kept.iter().chain(other.iter()) {
        let l = [
            ("target", target),
            ("datname", db),
            ("schemaname", i.schemaname.as_str()),
            ("relname", i.relname.as_str()),
            ("indexrelname", i.indexrelname.as_str()),
        ];
        out.counter(&catalog::INDEX_SCANS, &l, i.idx_scan);
        out.counter(&catalog::INDEX_TUPLES_READ, &l, i.idx_tup_read);
        out.counter(&catalog::INDEX_TUPLES_FETCHED, &l, i.idx_tup_fetch);
        out.gauge(&catalog::INDEX_SIZE, &l, i.size_bytes);
        let is_other = other_is_some && i.indexrelname == "other" && i.schemaname == "other";
        if !is_other {
            out.gauge(
                &catalog::INDEX_UNUSED,
                &l,
                if rules::index_unused(i) { 1.0 } else { 0.0 },
            );
        }
    }
}

/// Exports per-table series (top `max`, the rest as `other`) with the
/// missing-index verdict.
pub(super) fn export_tables(
    tb: &[TableStat],
    max: usize,
    rule: &MissingIndexRule,
    target: &str,
    db: &str,
    out: &mut Families,
) {
    let mut sorted = tb.to_vec();
    rules::sort_tables(&mut sorted, rule);
    let candidates = tb.iter().filter(|t| rule.candidate(t)).count();
    out.gauge(
        &catalog::MISSING_INDEX_CANDIDATES,
        &[("target", target), ("datname", db)],
        candidates as f64,
    );
    let zero = TableStat {
        schemaname: "other".into(),
        relname: "other".into(),
        seq_scan: 0.0,
        seq_tup_read: 0.0,
        idx_scan: 0.0,
        n_live_tup: 0.0,
        n_dead_tup: 0.0,
        reltuples: 0.0,
        total_bytes: 0.0,
    };
    let (kept, other) = rules::top_n_with_other(sorted, max, zero, |mut acc, t| {
        acc.seq_scan += t.seq_scan;
        acc.seq_tup_read += t.seq_tup_read;
        acc.idx_scan += t.idx_scan;
        acc.n_live_tup += t.n_live_tup;
        acc.n_dead_tup += t.n_dead_tup;
        acc.reltuples += t.reltuples;
        acc.total_bytes += t.total_bytes;
        acc
    });
    let n_kept = kept.len();
    for (pos, t) in kept.iter().chain(other.iter()).enumerate() {
        let l = [
            ("target", target),
            ("datname", db),
            ("schemaname", t.schemaname.as_str()),
            ("relname", t.relname.as_str()),
        ];
        for (def, v) in [
            (&catalog::TABLE_SEQ_SCAN, t.seq_scan),
            (&catalog::TABLE_SEQ_TUP_READ, t.seq_tup_read),
            (&catalog::TABLE_IDX_SCAN, t.idx_scan),
            (&catalog::TABLE_LIVE_TUP, t.n_live_tup),
            (&catalog::TABLE_DEAD_TUP, t.n_dead_tup),
            (&catalog::TABLE_ESTIMATED_ROWS, t.reltuples),
            (&catalog::TABLE_SIZE, t.total_bytes),
        ] {
            out.gauge(def, &l, v);
        }
        if pos < n_kept {
            out.gauge(
                &catalog::MISSING_INDEX_CANDIDATE,
                &l,
                if rule.candidate(t) { 1.0 } else { 0.0 },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::sample_value;

    #[test]
    fn connections_by_database_and_state() {
        let activity: Vec<ActivityRow> = vec![
            ("app".into(), "active".into(), 2.0, 5.0, 3.0, 1.0),
            ("app".into(), "idle".into(), 3.0, 0.0, 0.0, 0.0),
        ];
        let settings: SettingsRow = (
            100.0,
            3.0,
            2.0,
            1000.0,
            "16.2".into(),
            1600.0,
            true,
            true,
            Some(7.5),
        );
        let databases: Vec<DatabaseRow> = vec![
            ("app".into(), Some(1500.0), true),
            ("postgres".into(), None, true),
            ("template0".into(), None, false),
        ];
        let mut out = Families::new();
        let c = export_connections("pg", &activity, &settings, &databases, &mut out);
        assert_eq!((c.used, c.available), (5.0, 95.0));
        assert_eq!(c.ratio, Some(5.0 / 95.0));
        let f = out.into_vec();
        let v = |name: &str, labels: &[(&str, &str)]| sample_value(&f, name, labels);
        let app = [("datname", "app")];
        assert_eq!(
            v(
                "perfwatch_postgres_sessions",
                &[("datname", "app"), ("state", "idle")]
            ),
            Some(3.0)
        );
        assert_eq!(
            v(
                "perfwatch_postgres_sessions",
                &[("datname", "postgres"), ("state", "disabled")]
            ),
            Some(0.0)
        );
        assert_eq!(v("pg_stat_activity_max_tx_duration", &app), Some(5.0));
        assert_eq!(v("pg_replication_is_replica", &[]), Some(1.0));
        assert_eq!(v("pg_replication_lag", &[]), Some(7.5));
        assert_eq!(
            v("perfwatch_postgres_stats_reset_age_seconds", &app),
            Some(100.0)
        );
        assert_eq!(
            v(
                "perfwatch_postgres_stats_reset_age_seconds",
                &[("datname", "postgres")]
            ),
            Some(600.0)
        );
        assert_eq!(
            v(
                "perfwatch_postgres_stats_reset_age_seconds",
                &[("datname", "template0")]
            ),
            None
        );
    }

    #[test]
    fn databases_beyond_max_are_summed_into_other() {
        let db = |datid: &str, datname: &str, commits: f64, size: Option<f64>| {
            let mut columns = [0.0; STAT_DATABASE_COLUMNS];
            columns[0] = 1.0; // numbackends
            columns[1] = commits; // xact_commit
            columns[4] = 10.0 * commits; // blks_hit
            DatabaseStat {
                datid: datid.into(),
                datname: datname.into(),
                columns,
                size_bytes: size,
            }
        };
        let stats = [
            db("0", "", 0.0, None),
            db("5", "postgres", 3.0, Some(100.0)),
            db("16384", "app", 50.0, Some(500.0)),
            db("1", "template1", 2.0, Some(80.0)),
        ];
        /// (name, labels, value) rows checked against one export.
        type Expected<'a> = [(&'a str, &'a [(&'a str, &'a str)], Option<f64>)];
        let check = |max: usize, rows: &Expected| {
            let mut out = Families::new();
            export_databases("pg", &stats, max, &mut out);
            let f = out.into_vec();
            for (name, labels, want) in rows {
                assert_eq!(
                    sample_value(&f, name, labels),
                    *want,
                    "max {max}: {name}{labels:?}"
                );
            }
        };
        let app: &[(&str, &str)] = &[("datid", "16384"), ("datname", "app")];
        // The busiest two keep their series; template1 and the shared row
        // (no size) are summed.
        let other: &[(&str, &str)] = &[("datid", ""), ("datname", "other")];
        check(
            2,
            &[
                ("pg_stat_database_xact_commit", app, Some(50.0)),
                ("pg_stat_database_blks_hit", app, Some(500.0)),
                ("pg_database_size_bytes", &[("datname", "app")], Some(500.0)),
                ("pg_stat_database_xact_commit", other, Some(2.0)),
                ("pg_stat_database_numbackends", other, Some(2.0)),
                (
                    "pg_database_size_bytes",
                    &[("datname", "other")],
                    Some(80.0),
                ),
                (
                    "pg_stat_database_xact_commit",
                    &[("datname", "template1")],
                    None,
                ),
                (
                    "perfwatch_postgres_databases_summed_into_other",
                    &[],
                    Some(2.0),
                ),
            ],
        );
        check(
            20,
            &[
                (
                    "pg_stat_database_numbackends",
                    &[("datid", "0"), ("datname", "")],
                    Some(1.0),
                ),
                ("pg_database_size_bytes", &[("datname", "")], None),
                (
                    "pg_stat_database_xact_commit",
                    &[("datname", "other")],
                    None,
                ),
                (
                    "perfwatch_postgres_databases_summed_into_other",
                    &[],
                    Some(0.0),
                ),
            ],
        );
    }

    #[test]
    fn indexes_and_tables_beyond_max_become_other() {
        let ix = |name: &str, scans: f64, size: f64| IndexStat::sample(name, scans, size, false);
        let mut out = Families::new();
        export_indexes(
            &[
                ix("big", 0.0, 300.0),
                ix("a", 2.0, 10.0),
                ix("b", 3.0, 20.0),
            ],
            1,
            "pg",
            "app",
            &mut out,
        );
        let tb = TableStat {
            schemaname: "public".into(),
            relname: "t".into(),
            seq_scan: 50.0,
            seq_tup_read: 500_000.0,
            idx_scan: 0.0,
            n_live_tup: 10_000.0,
            n_dead_tup: 0.0,
            reltuples: 10_000.0,
            total_bytes: 1.0,
        };
        let rule = MissingIndexRule {
            min_table_rows: 1000.0,
            min_seq_scans: 10.0,
            seq_ratio: 0.5,
        };
        export_tables(&[tb], 5, &rule, "pg", "app", &mut out);
        let mut failing = BTreeMap::new();
        failing.insert(("app".to_owned(), "indexes"), ErrorReason::Permission);
        export_parts("pg", &BTreeMap::new(), &failing, &mut out);
        let f = out.into_vec();
        let v = |name: &str, labels: &[(&str, &str)]| sample_value(&f, name, labels);
        assert_eq!(v("perfwatch_postgres_unused_indexes", &[]), Some(1.0));
        assert_eq!(v("perfwatch_postgres_unused_index_bytes", &[]), Some(300.0));
        let other = [("indexrelname", "other")];
        assert_eq!(v("perfwatch_postgres_index_scans_total", &other), Some(5.0));
        assert_eq!(v("perfwatch_postgres_index_size_bytes", &other), Some(30.0));
        assert_eq!(v("perfwatch_postgres_index_unused", &other), None);
        assert_eq!(
            v(
                "perfwatch_postgres_index_unused",
                &[("indexrelname", "big")]
            ),
            Some(1.0)
        );
        assert_eq!(
            v("perfwatch_postgres_missing_index_candidate", &[]),
            Some(1.0)
        );
        assert_eq!(
            v("perfwatch_postgres_missing_index_candidates", &[]),
            Some(1.0)
        );
        assert_eq!(
            v("perfwatch_collector_degraded", &[("reason", "permission")]),
            Some(1.0)
        );
        assert_eq!(
            v("perfwatch_collector_degraded", &[("reason", "timeout")]),
            Some(0.0)
        );
    }
}
