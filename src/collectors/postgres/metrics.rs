//! Export of what one PostgreSQL poll read into metric families: pure
//! functions of the rows and the collector's counters, so they are tested
//! without a server. Every family is declared in `catalog.rs` (or
//! `crate::catalog::SHARED`).

use std::collections::BTreeMap;
use std::ops::Add;

use super::catalog;
use super::rules::{
    self, ACTIVITY_STATES, DatabaseStat, IndexStat, LOCK_MODES, MissingIndexRule, Setting,
    TableStat,
};
use super::sql::{ActivityRow, BGWRITER_COLUMNS, DatabaseRow, Replication, ServerRow};
use crate::catalog::{COLLECTOR_DEGRADED, MetricDef, POOL_SATURATION};
use crate::collectors::fold_fields;
use crate::exposition::Families;
use crate::poll::ErrorReason;

/// The `pg_stat_bgwriter` families, in the column order of `sql::SQL_SERVER`.
const BGWRITER: [&MetricDef; BGWRITER_COLUMNS] = [
    &catalog::BGWRITER_CHECKPOINTS_TIMED,
    &catalog::BGWRITER_CHECKPOINTS_REQ,
    &catalog::BGWRITER_CHECKPOINT_WRITE_TIME,
    &catalog::BGWRITER_CHECKPOINT_SYNC_TIME,
    &catalog::BGWRITER_BUFFERS_CHECKPOINT,
    &catalog::BGWRITER_BUFFERS_CLEAN,
    &catalog::BGWRITER_MAXWRITTEN_CLEAN,
    &catalog::BGWRITER_BUFFERS_BACKEND,
    &catalog::BGWRITER_BUFFERS_BACKEND_FSYNC,
    &catalog::BGWRITER_BUFFERS_ALLOC,
    &catalog::BGWRITER_STATS_RESET,
];

/// The `pg_settings_*` families declared in the catalog (the others are
/// named from the server's list).
const DECLARED_SETTINGS: [&MetricDef; 11] = [
    &catalog::MAX_CONNECTIONS,
    &catalog::SUPERUSER_RESERVED,
    &catalog::MAX_LOCKS_PER_TRANSACTION,
    &catalog::MAX_PREPARED_TRANSACTIONS,
    &catalog::AUTOVACUUM_VACUUM_SCALE_FACTOR,
    &catalog::AUTOVACUUM_VACUUM_THRESHOLD,
    &catalog::AUTOVACUUM_ANALYZE_SCALE_FACTOR,
    &catalog::AUTOVACUUM_ANALYZE_THRESHOLD,
    &catalog::AUTOVACUUM_MAX_WORKERS,
    &catalog::AUTOVACUUM_FREEZE_MAX_AGE,
    &catalog::SHARED_BUFFERS,
];

/// The `pg_stat_database` families, in the column order of
/// `sql::SQL_DATABASES` and `DatabaseStat::columns`.
const STAT_DATABASE: [&MetricDef; rules::STAT_DATABASE_COLUMNS] = [
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
    max_query: f64,
    waiting: f64,
}

/// What the connection export found, for the landing page.
pub(super) struct Connections {
    /// Client sessions, perfwatch's own excluded.
    pub(super) used: f64,
    /// Slots for ordinary roles (`None` before the settings were read).
    pub(super) available: Option<f64>,
    /// `used / available`, when any slot is left for ordinary roles.
    pub(super) ratio: Option<f64>,
}

/// The value of the setting `name` (`pg_settings.name`).
fn setting_value(settings: &[Setting], name: &str) -> Option<f64> {
    settings.iter().find(|s| s.name == name).map(|s| s.value)
}

/// Exports client sessions by database and state (perfwatch's own view:
/// the rows `counted`), saturation from the settings, replication, and the
/// statistics age of every connectable database.
pub(super) fn export_connections(
    target: &str,
    activity: &[ActivityRow],
    server: &ServerRow,
    settings: &[Setting],
    databases: &[DatabaseRow],
    out: &mut Families,
) -> Connections {
    let t = [("target", target)];

    // Connections by database and state.
    let mut per_db: BTreeMap<String, DbActivity> = BTreeMap::new();
    for d in databases.iter().filter(|d| d.2) {
        per_db.entry(d.0.clone()).or_default();
    }
    let mut used = 0.0;
    for (datname, state, _, n, _, max_query, waiting) in activity.iter().filter(|a| a.2) {
        used += n;
        let a = per_db.entry(datname.clone()).or_default();
        *a.states.entry(state.clone()).or_default() += n;
        a.max_query = a.max_query.max(*max_query);
        a.waiting += waiting;
    }
    for (datname, a) in &per_db {
        let mut states: BTreeMap<&str, f64> = ACTIVITY_STATES.iter().map(|s| (*s, 0.0)).collect();
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
        out.gauge(&catalog::OLDEST_QUERY, &l, a.max_query);
        out.gauge(&catalog::WAITING_ON_LOCK, &l, a.waiting);
    }
    out.gauge(&catalog::CONNECTIONS_USED, &t, used);
    // reserved_connections is PostgreSQL 16+; 0 before.
    let reserved = setting_value(settings, "superuser_reserved_connections").unwrap_or(0.0)
        + setting_value(settings, "reserved_connections").unwrap_or(0.0);
    let max_conn = setting_value(settings, "max_connections");
    let available = max_conn.map(|m| m - reserved);
    if let Some(available) = available {
        out.gauge(&catalog::CONNECTIONS_AVAILABLE, &t, available);
    }
    let ratio = max_conn.and_then(|m| rules::saturation_ratio(used, m, reserved));
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
        if server.in_recovery { 1.0 } else { 0.0 },
    );
    if let Some(lag) = server.lag {
        out.gauge(&catalog::REPLICATION_LAG, &t, lag);
    }

    // Statistics age per database.
    for (datname, reset, connectable) in databases {
        if !connectable {
            continue;
        }
        let since = reset.unwrap_or(server.started_unix);
        out.gauge(
            &catalog::STATS_RESET_AGE,
            &[("target", target), ("datname", datname)],
            (server.now_unix - since).max(0.0),
        );
    }
    Connections {
        used,
        available,
        ratio,
    }
}

/// Exports `pg_stat_bgwriter` (the columns the server has).
pub(super) fn export_bgwriter(target: &str, server: &ServerRow, out: &mut Families) {
    for (def, v) in BGWRITER.iter().zip(server.bgwriter) {
        if let Some(v) = v {
            out.counter(def, &[("target", target)], v);
        }
    }
}

/// Exports every numeric setting under postgres_exporter's name: through
/// its catalog declaration when it has one, else named from the server's
/// list (a fixed list, so bounded like a custom query's families). A name
/// promtool reserves for histograms (`pg_settings_tcp_keepalives_count`)
/// is untyped instead of a gauge, as `pg_stat_activity_count` is.
pub(super) fn export_settings(target: &str, settings: &[Setting], out: &mut Families) {
    let t = [("target", target)];
    for s in settings {
        match DECLARED_SETTINGS.iter().find(|d| d.name == s.metric) {
            Some(def) => out.gauge(def, &t, s.value),
            None if ["_count", "_sum", "_bucket"]
                .iter()
                .any(|x| s.metric.ends_with(x)) =>
            {
                out.untyped_named(&s.metric, &s.help, &t, s.value)
            }
            None => out.gauge_named(&s.metric, &s.help, &t, s.value),
        }
    }
}

/// Exports `pg_stat_database`, the database sizes and, per database,
/// postgres_exporter's `pg_stat_activity_count`,
/// `pg_stat_activity_max_tx_duration` (every backend of `activity`) and
/// `pg_locks_count`: the `max` busiest databases with their own series, the
/// rest summed into `datname="other"` (`datid=""`; the oldest transaction is
/// the oldest of theirs), so cluster-wide sums stay whole.
pub(super) fn export_databases(
    target: &str,
    stats: &[DatabaseStat],
    activity: &[ActivityRow],
    max: usize,
    out: &mut Families,
) {
    let mut by_name: BTreeMap<&str, Vec<&ActivityRow>> = BTreeMap::new();
    for a in activity {
        by_name.entry(a.0.as_str()).or_default().push(a);
    }
    let mut sorted = stats.to_vec();
    for d in sorted.iter_mut().filter(|d| d.is_database()) {
        for (_, state, _, n, max_tx, _, _) in by_name.get(d.datname.as_str()).into_iter().flatten()
        {
            // postgres_exporter joins its state list: NULL ("unknown")
            // states are not counted.
            if let Some(i) = ACTIVITY_STATES.iter().position(|s| s == state) {
                d.sessions[i] += n;
                d.max_tx[i] = d.max_tx[i].max(*max_tx);
            }
        }
    }
    rules::sort_databases(&mut sorted);
    let zero = DatabaseStat::empty("", "other");
    let (kept, other) = rules::top_n_with_other(sorted, max, zero, |mut acc, d| {
        acc.absorb(d);
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
        let datname = d.datname.as_str();
        if let Some(size) = d.size_bytes {
            out.gauge(
                &catalog::DATABASE_SIZE,
                &[("target", target), ("datname", datname)],
                size,
            );
        }
        if !d.is_database() {
            continue;
        }
        for (i, state) in ACTIVITY_STATES.iter().enumerate() {
            let l = [("target", target), ("datname", datname), ("state", state)];
            out.untyped(&catalog::ACTIVITY_COUNT, &l, d.sessions[i]);
            out.gauge(&catalog::MAX_TX_DURATION, &l, d.max_tx[i]);
        }
        for (mode, n) in LOCK_MODES.iter().zip(d.locks) {
            out.untyped(
                &catalog::LOCKS_COUNT,
                &[("target", target), ("datname", datname), ("mode", mode)],
                n,
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
        fold_fields!(Add::add; acc, i: idx_scan, idx_tup_read, idx_tup_fetch, size_bytes);
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
        fold_fields!(Add::add; acc, t: seq_scan, seq_tup_read, idx_scan, n_live_tup, n_dead_tup,
            reltuples, total_bytes);
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

/// The replication families: the standbys streaming from this server and
/// its slots (postgres_exporter's names, plus perfwatch's lag in seconds
/// and standby count), and on a standby whether its WAL receiver streams.
pub(super) fn export_replication(
    target: &str,
    server: &ServerRow,
    replication: &Replication,
    out: &mut Families,
) {
    let mut by_state: BTreeMap<&str, f64> = BTreeMap::new();
    for r in &replication.replicas {
        *by_state.entry(r.state.as_str()).or_default() += 1.0;
        let labels = [
            ("target", target),
            ("application_name", r.application_name.as_str()),
            ("client_addr", r.client_addr.as_str()),
            ("slot_name", r.pid.as_str()),
            ("state", r.state.as_str()),
        ];
        for (def, value) in [
            (
                &catalog::STAT_REPLICATION_CURRENT_WAL_LSN,
                r.current_lsn_bytes,
            ),
            (
                &catalog::STAT_REPLICATION_WAL_LSN_DIFF,
                r.replay_behind_bytes,
            ),
            (&catalog::STAT_REPLICATION_REPLY_TIME, r.reply_time),
        ] {
            if let Some(v) = value {
                out.gauge(def, &labels, v);
            }
        }
        for (lag, seconds) in ["write", "flush", "replay"]
            .iter()
            .zip(r.lags.iter().flatten())
        {
            out.gauge(
                &catalog::REPLICA_LAG_SECONDS,
                &[
                    ("target", target),
                    ("application_name", r.application_name.as_str()),
                    ("client_addr", r.client_addr.as_str()),
                    ("lag", lag),
                ],
                *seconds,
            );
        }
    }
    for (state, n) in by_state {
        out.gauge(
            &catalog::REPLICAS,
            &[("target", target), ("state", state)],
            n,
        );
    }
    for slot in &replication.slots {
        let labels = [
            ("target", target),
            ("slot_name", slot.name.as_str()),
            ("database", slot.database.as_str()),
        ];
        let active = f64::from(u8::from(slot.active));
        out.gauge(&catalog::REPLICATION_SLOTS_ACTIVE, &labels, active);
        if let Some(bytes) = slot.retained_bytes {
            out.gauge(&catalog::REPLICATION_SLOTS_WAL_LSN_DIFF, &labels, bytes);
        }
    }
    // `hidden`: the role may not see the status; a 0 would be a lie.
    match server.wal_receiver.as_deref() {
        None | Some("hidden") => {}
        Some(status) => out.gauge(
            &catalog::WAL_RECEIVER_UP,
            &[("target", target)],
            if status == "streaming" { 1.0 } else { 0.0 },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{assert_samples, sample_value};

    #[test]
    fn connections_by_database_and_state() {
        let activity: Vec<ActivityRow> = vec![
            ("app".into(), "active".into(), true, 2.0, 5.0, 3.0, 1.0),
            ("app".into(), "idle".into(), true, 3.0, 0.0, 0.0, 0.0),
            // perfwatch's own session and a background worker: not counted.
            ("app".into(), "active".into(), false, 2.0, 0.0, 9.0, 0.0),
        ];
        let server = ServerRow {
            started_unix: 1000.0,
            version: "16.2".into(),
            now_unix: 1600.0,
            monitor: true,
            in_recovery: true,
            lag: Some(7.5),
            conf_loaded_unix: 1000.0,
            wal_receiver: Some("streaming".into()),
            bgwriter: [Some(1.0); BGWRITER_COLUMNS],
        };
        let settings: Vec<Setting> = [
            ("max_connections", "100"),
            ("superuser_reserved_connections", "3"),
            ("reserved_connections", "2"),
        ]
        .iter()
        .filter_map(|(n, v)| rules::setting(n, v, "", "integer"))
        .collect();
        let databases: Vec<DatabaseRow> = vec![
            ("app".into(), Some(1500.0), true),
            ("postgres".into(), None, true),
            ("template0".into(), None, false),
        ];
        let mut out = Families::new();
        let c = export_connections("pg", &activity, &server, &settings, &databases, &mut out);
        assert_eq!((c.used, c.available), (5.0, Some(95.0)));
        assert_eq!(c.ratio, Some(5.0 / 95.0));
        // Without settings (never the case after a good poll): no guess.
        let c = export_connections(
            "pg",
            &activity,
            &server,
            &[],
            &databases,
            &mut Families::new(),
        );
        assert_eq!((c.available, c.ratio), (None, None));
        let f = out.into_vec();
        let app: &[(&str, &str)] = &[("datname", "app")];
        #[rustfmt::skip]
        assert_samples(&f, &[
            ("perfwatch_postgres_sessions", &[("datname", "app"), ("state", "idle")], Some(3.0)),
            ("perfwatch_postgres_sessions", &[("datname", "app"), ("state", "active")], Some(2.0)),
            ("perfwatch_postgres_oldest_query_seconds", app, Some(3.0)),
            ("perfwatch_postgres_sessions", &[("datname", "postgres"), ("state", "disabled")], Some(0.0)),
            ("pg_replication_is_replica", &[], Some(1.0)),
            ("pg_replication_lag", &[], Some(7.5)),
            ("perfwatch_postgres_stats_reset_age_seconds", app, Some(100.0)),
            ("perfwatch_postgres_stats_reset_age_seconds", &[("datname", "postgres")], Some(600.0)),
            ("perfwatch_postgres_stats_reset_age_seconds", &[("datname", "template0")], None),
        ]);
    }

    #[test]
    fn databases_beyond_max_are_summed_into_other() {
        let db = |datid: &str, datname: &str, commits: f64, size: Option<f64>| {
            let mut columns = [0.0; rules::STAT_DATABASE_COLUMNS];
            columns[0] = 1.0; // numbackends
            columns[1] = commits; // xact_commit
            columns[4] = 10.0 * commits; // blks_hit
            let mut d = DatabaseStat::empty(datid, datname);
            d.columns = columns;
            d.size_bytes = size;
            d.locks[0] = commits; // accesssharelock
            d
        };
        let stats = [
            db("0", "", 0.0, None),
            db("5", "postgres", 3.0, Some(100.0)),
            db("16384", "app", 50.0, Some(500.0)),
            db("1", "template1", 2.0, Some(80.0)),
        ];
        let activity: Vec<ActivityRow> = vec![
            ("app".into(), "active".into(), false, 1.0, 4.0, 4.0, 0.0),
            ("app".into(), "active".into(), true, 2.0, 6.0, 6.0, 0.0),
            (
                "template1".into(),
                "idle in transaction".into(),
                true,
                2.0,
                30.0,
                0.0,
                0.0,
            ),
            // A hidden state and a background process without a database
            // are not in postgres_exporter's counts.
            ("app".into(), "unknown".into(), true, 5.0, 99.0, 0.0, 0.0),
            ("".into(), "active".into(), false, 1.0, 99.0, 0.0, 0.0),
        ];
        /// (name, labels, value) rows checked against one export.
        type Expected<'a> = [(&'a str, &'a [(&'a str, &'a str)], Option<f64>)];
        let check = |max: usize, rows: &Expected| {
            let mut out = Families::new();
            export_databases("pg", &stats, &activity, max, &mut out);
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
        #[rustfmt::skip]
        let activity_and_locks: &Expected = &[
            ("pg_stat_activity_count", &[("datname", "app"), ("state", "active")], Some(3.0)),
            ("pg_stat_activity_max_tx_duration", &[("datname", "app"), ("state", "active")], Some(6.0)),
            ("pg_stat_activity_count", &[("datname", "app"), ("state", "idle")], Some(0.0)),
            ("pg_stat_activity_count", &[("datname", "app"), ("state", "unknown")], None),
            ("pg_stat_activity_count", &[("datname", "other"), ("state", "idle in transaction")], Some(2.0)),
            ("pg_stat_activity_max_tx_duration", &[("datname", "other"), ("state", "idle in transaction")], Some(30.0)),
            ("pg_stat_activity_count", &[("datname", "postgres"), ("state", "disabled")], Some(0.0)),
            ("pg_locks_count", &[("datname", "app"), ("mode", "accesssharelock")], Some(50.0)),
            ("pg_locks_count", &[("datname", "app"), ("mode", "sireadlock")], Some(0.0)),
            ("pg_locks_count", &[("datname", "other"), ("mode", "accesssharelock")], Some(2.0)),
        ];
        check(2, activity_and_locks);
        check(
            20,
            &[
                (
                    "pg_stat_database_numbackends",
                    &[("datid", "0"), ("datname", "")],
                    Some(1.0),
                ),
                ("pg_database_size_bytes", &[("datname", "")], None),
                ("pg_stat_activity_count", &[("datname", "")], None),
                ("pg_locks_count", &[("datname", "")], None),
                (
                    "pg_stat_activity_count",
                    &[("datname", "template1"), ("state", "idle in transaction")],
                    Some(2.0),
                ),
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
        let other: &[(&str, &str)] = &[("indexrelname", "other")];
        #[rustfmt::skip]
        assert_samples(&f, &[
            ("perfwatch_postgres_unused_indexes", &[], Some(1.0)),
            ("perfwatch_postgres_unused_index_bytes", &[], Some(300.0)),
            ("perfwatch_postgres_index_scans_total", other, Some(5.0)),
            ("perfwatch_postgres_index_size_bytes", other, Some(30.0)),
            ("perfwatch_postgres_index_unused", other, None),
            ("perfwatch_postgres_index_unused", &[("indexrelname", "big")], Some(1.0)),
            ("perfwatch_postgres_missing_index_candidate", &[], Some(1.0)),
            ("perfwatch_postgres_missing_index_candidates", &[], Some(1.0)),
            ("perfwatch_collector_degraded", &[("reason", "permission")], Some(1.0)),
            ("perfwatch_collector_degraded", &[("reason", "timeout")], Some(0.0)),
        ]);
    }

    #[test]
    fn replication_of_a_primary_and_of_a_standby() {
        use super::super::sql::{Replica, Slot};
        let replica =
            |name: &str, state: &str, behind: Option<f64>, lags: Option<[f64; 3]>| Replica {
                application_name: name.into(),
                client_addr: "10.0.0.2".into(),
                pid: "4242".into(),
                state: state.into(),
                current_lsn_bytes: Some(5000.0),
                replay_behind_bytes: behind,
                reply_time: Some(1_700_000_000.0),
                lags,
            };
        let replication = Replication {
            replicas: vec![
                replica("eu", "streaming", Some(300.0), Some([0.1, 0.2, 1.5])),
                replica("us", "streaming", None, Some([0.0, 0.0, 0.0])),
                replica("new", "backup", None, None),
            ],
            slots: vec![
                Slot {
                    name: "eu".into(),
                    database: String::new(),
                    active: true,
                    retained_bytes: Some(300.0),
                },
                Slot {
                    name: "gone".into(),
                    database: String::new(),
                    active: false,
                    retained_bytes: Some(9e9),
                },
                Slot {
                    name: "fresh".into(),
                    database: "app".into(),
                    active: false,
                    retained_bytes: None,
                },
            ],
        };
        let server = |wal_receiver: Option<&str>| ServerRow {
            started_unix: 0.0,
            version: "15.2".into(),
            now_unix: 0.0,
            monitor: true,
            in_recovery: wal_receiver.is_some(),
            lag: None,
            conf_loaded_unix: 0.0,
            wal_receiver: wal_receiver.map(str::to_owned),
            bgwriter: [None; BGWRITER_COLUMNS],
        };
        let mut out = Families::new();
        export_replication("pg", &server(None), &replication, &mut out);
        let f = out.into_vec();
        let eu: &[(&str, &str)] = &[
            ("application_name", "eu"),
            ("slot_name", "4242"),
            ("state", "streaming"),
        ];
        let eu_lag = |lag| [("application_name", "eu"), ("lag", lag)];
        #[rustfmt::skip]
        assert_samples(&f, &[
            ("pg_stat_replication_pg_current_wal_lsn_bytes", eu, Some(5000.0)),
            ("pg_stat_replication_pg_wal_lsn_diff", eu, Some(300.0)),
            // Unknown (no privilege, or no replay position): absent, not 0.
            ("pg_stat_replication_pg_wal_lsn_diff", &[("application_name", "us")], None),
            ("pg_stat_replication_reply_time", eu, Some(1_700_000_000.0)),
            ("perfwatch_postgres_replica_lag_seconds", &eu_lag("write"), Some(0.1)),
            ("perfwatch_postgres_replica_lag_seconds", &eu_lag("replay"), Some(1.5)),
            ("perfwatch_postgres_replica_lag_seconds", &[("application_name", "new")], None),
            ("perfwatch_postgres_replicas", &[("state", "streaming")], Some(2.0)),
            ("perfwatch_postgres_replicas", &[("state", "backup")], Some(1.0)),
            ("pg_replication_slots_active", &[("slot_name", "gone")], Some(0.0)),
            ("pg_replication_slots_active", &[("slot_name", "eu")], Some(1.0)),
            ("pg_replication_slots_pg_wal_lsn_diff", &[("slot_name", "gone")], Some(9e9)),
            ("pg_replication_slots_pg_wal_lsn_diff", &[("slot_name", "fresh")], None),
            ("perfwatch_postgres_wal_receiver_up", &[], None),
        ]);
        // A standby: its receiver's status, unless the role may not see it.
        for (status, want) in [
            ("streaming", Some(1.0)),
            ("none", Some(0.0)),
            ("stopping", Some(0.0)),
            ("hidden", None),
        ] {
            let mut out = Families::new();
            export_replication(
                "pg",
                &server(Some(status)),
                &Replication::default(),
                &mut out,
            );
            let got = sample_value(&out.into_vec(), "perfwatch_postgres_wal_receiver_up", &[]);
            assert_eq!(got, want, "wal receiver {status}");
        }
    }
}
