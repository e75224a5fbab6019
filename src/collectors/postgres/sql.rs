//! What the PostgreSQL collector sends and how it reads the answers: the
//! statement texts, their row types, and the decoding of rows into the
//! pure types of `rules.rs`, statement statistics and custom-query rows.
//! No session handling here (see `session.rs`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::rules::{self, DatabaseStat, IndexStat, STAT_DATABASE_COLUMNS, Setting, TableStat};
use super::statements;
use crate::collectors::custom_query::{CustomQueryConfig, QueryRow};
use crate::collectors::statement_stats::{Counters, StatementRow};
use crate::explain::advice::{IndexFacts, TableFacts};

/// Sessions, one row per (database, state, counted by perfwatch): every
/// backend, as postgres_exporter's `pg_stat_activity_count` counts them;
/// `counted` marks the client sessions perfwatch's own families count (not
/// this backend, not any `application_name = 'perfwatch'` session, no
/// background process; NULL `backend_type`, another role's session seen
/// without pg_monitor, is not counted either). One read of the view serves
/// both.
const SQL_ACTIVITY: &str = "SELECT coalesce(datname, '')::text, coalesce(state, 'unknown')::text, \
coalesce(backend_type = 'client backend' AND pid <> pg_backend_pid() \
AND application_name IS DISTINCT FROM 'perfwatch', false) AS counted, \
count(*)::float8, \
coalesce(max(extract(epoch FROM now() - xact_start)), 0)::float8, \
coalesce(max(extract(epoch FROM now() - query_start)) FILTER (WHERE state = 'active'), 0)::float8, \
(count(*) FILTER (WHERE wait_event_type = 'Lock'))::float8 \
FROM pg_stat_activity GROUP BY 1, 2, 3";

/// The head of [`SQL_SERVER`]: server start and version, privileges,
/// replication (the lag is postgres_exporter 0.11's `pg_replication` query:
/// 0 on a primary, NULL on a standby that has replayed nothing yet), when
/// the configuration was last loaded (`pg_settings` is re-read when it
/// changes), and on a standby its WAL receiver's status (`none` when no
/// receiver runs, `hidden` when the role may not see it).
macro_rules! server_head {
    () => {
        "SELECT extract(epoch FROM pg_postmaster_start_time())::float8, \
current_setting('server_version')::text, \
extract(epoch FROM now())::float8, \
pg_has_role('pg_monitor', 'USAGE'), \
pg_is_in_recovery(), \
CASE WHEN NOT pg_is_in_recovery() THEN 0 \
ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END::float8, \
extract(epoch FROM pg_conf_load_time())::float8, \
CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT coalesce(status, 'hidden') \
FROM pg_stat_wal_receiver LIMIT 1), 'none') END::text, "
    };
}

/// Server facts and `pg_stat_bgwriter` in one row (PostgreSQL < 17): the
/// columns after the head in `metrics::BGWRITER` order; `stats_reset` in
/// whole seconds, as postgres_exporter exports it.
const SQL_SERVER: &str = concat!(
    server_head!(),
    "b.checkpoints_timed::float8, b.checkpoints_req::float8, \
b.checkpoint_write_time::float8, b.checkpoint_sync_time::float8, \
b.buffers_checkpoint::float8, b.buffers_clean::float8, b.maxwritten_clean::float8, \
b.buffers_backend::float8, b.buffers_backend_fsync::float8, b.buffers_alloc::float8, \
floor(extract(epoch FROM b.stats_reset))::float8 FROM pg_stat_bgwriter b"
);

/// [`SQL_SERVER`] for PostgreSQL 17+, whose `pg_stat_bgwriter` lost the
/// checkpoint and backend columns (moved to `pg_stat_checkpointer` and
/// `pg_stat_io`): those read NULL, so their families are absent, as they
/// are with postgres_exporter 0.11 there.
const SQL_SERVER_17: &str = concat!(
    server_head!(),
    "NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, \
b.buffers_clean::float8, b.maxwritten_clean::float8, NULL::float8, NULL::float8, \
b.buffers_alloc::float8, floor(extract(epoch FROM b.stats_reset))::float8 \
FROM pg_stat_bgwriter b"
);

/// Columns of [`SQL_SERVER`] before `pg_stat_bgwriter`'s.
const SERVER_HEAD_COLUMNS: usize = 8;

/// How many `pg_stat_bgwriter` columns perfwatch exports.
pub(super) const BGWRITER_COLUMNS: usize = 11;

/// The numeric settings, as postgres_exporter reads them, except those the
/// client set for its own session (`source = 'client'`: perfwatch's
/// `statement_timeout`, `lock_timeout`, `idle_in_transaction_session_timeout`
/// and sqlx's `extra_float_digits` are the session's values, not the
/// server's). The view is a fixed list of the server's settings (~250 on
/// PostgreSQL 15, plus those of loaded extensions); the LIMIT is only a
/// ceiling.
const SQL_PG_SETTINGS: &str = "SELECT name::text, coalesce(setting, '')::text, \
coalesce(unit, '')::text, vartype::text FROM pg_settings \
WHERE vartype IN ('bool', 'integer', 'real') AND source <> 'client' \
ORDER BY name LIMIT 2000";

/// Every database with its statistics reset time, whether it accepts
/// connections and is no template, its `pg_stat_database` counters, its
/// size and its locks by mode (`rules::LOCK_MODES` order; one read of
/// `pg_locks`, grouped, as postgres_exporter's `pg_locks` query counts
/// them). Every row of the view, the shared-objects row `datid = 0` included
/// (as postgres_exporter reads it); the view lists every database of
/// `pg_database`. The size needs CONNECT on the database or
/// pg_read_all_stats: without them it is NULL instead of an error failing
/// the whole statement. The counters (after the first four columns) are in
/// `metrics::STAT_DATABASE` order.
const SQL_DATABASES: &str = "SELECT s.datid::int8, coalesce(s.datname, '')::text, \
extract(epoch FROM s.stats_reset)::float8, \
coalesce(d.datallowconn AND NOT d.datistemplate, false), \
s.numbackends::float8, s.xact_commit::float8, s.xact_rollback::float8, \
s.blks_read::float8, s.blks_hit::float8, s.tup_returned::float8, s.tup_fetched::float8, \
s.tup_inserted::float8, s.tup_updated::float8, s.tup_deleted::float8, \
s.conflicts::float8, s.temp_files::float8, s.temp_bytes::float8, s.deadlocks::float8, \
CASE WHEN s.datid <> 0 AND (has_database_privilege(s.datid, 'CONNECT') \
OR pg_has_role('pg_read_all_stats', 'USAGE')) THEN pg_database_size(s.datid)::float8 END, \
coalesce(l.m0, 0)::float8, coalesce(l.m1, 0)::float8, coalesce(l.m2, 0)::float8, \
coalesce(l.m3, 0)::float8, coalesce(l.m4, 0)::float8, coalesce(l.m5, 0)::float8, \
coalesce(l.m6, 0)::float8, coalesce(l.m7, 0)::float8, coalesce(l.m8, 0)::float8 \
FROM pg_stat_database s LEFT JOIN pg_database d ON d.oid = s.datid \
LEFT JOIN (SELECT database, \
count(*) FILTER (WHERE lower(mode) = 'accesssharelock') AS m0, \
count(*) FILTER (WHERE lower(mode) = 'rowsharelock') AS m1, \
count(*) FILTER (WHERE lower(mode) = 'rowexclusivelock') AS m2, \
count(*) FILTER (WHERE lower(mode) = 'shareupdateexclusivelock') AS m3, \
count(*) FILTER (WHERE lower(mode) = 'sharelock') AS m4, \
count(*) FILTER (WHERE lower(mode) = 'sharerowexclusivelock') AS m5, \
count(*) FILTER (WHERE lower(mode) = 'exclusivelock') AS m6, \
count(*) FILTER (WHERE lower(mode) = 'accessexclusivelock') AS m7, \
count(*) FILTER (WHERE lower(mode) = 'sireadlock') AS m8 \
FROM pg_locks WHERE database IS NOT NULL AND database <> 0 GROUP BY database) l \
ON l.database = s.datid ORDER BY 2";

/// Replication in one statement: the standbys streaming from this server
/// (`pg_stat_replication`, the 64 furthest behind; LSN positions as
/// postgres_exporter 0.11 reads them, NULL on a standby, and NULL for a
/// role without pg_read_all_stats; lags NULL while a standby has no replay
/// position yet), then its replication slots (the first 64 by name) and the
/// WAL each keeps back. Column 1 says which: `r` or `s`. A primary has a
/// handful of each; the bound keeps a misconfigured one from exploding the
/// series count.
const SQL_REPLICATION: &str = "(SELECT 'r'::text, coalesce(application_name, '')::text, \
coalesce(host(client_addr), '')::text, pid::text, coalesce(state, '')::text, ''::text, \
CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') END::float8, \
CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) END::float8, \
floor(extract(epoch FROM reply_time))::float8, \
CASE WHEN replay_lsn IS NOT NULL THEN coalesce(extract(epoch FROM write_lag), 0) END::float8, \
CASE WHEN replay_lsn IS NOT NULL THEN coalesce(extract(epoch FROM flush_lag), 0) END::float8, \
CASE WHEN replay_lsn IS NOT NULL THEN coalesce(extract(epoch FROM replay_lag), 0) END::float8, \
NULL::bool FROM pg_stat_replication ORDER BY 8 DESC NULLS LAST, 4 LIMIT 64) \
UNION ALL (SELECT 's', slot_name::text, '', '', '', coalesce(database::text, ''), \
NULL, pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() \
ELSE pg_current_wal_lsn() END, restart_lsn)::float8, NULL, NULL, NULL, NULL, active \
FROM pg_replication_slots ORDER BY 2 LIMIT 64)";

/// A row of [`SQL_REPLICATION`].
type ReplicationRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<bool>,
);

/// Columns of [`SQL_DATABASES`] before the counters.
const DATABASE_KEY_COLUMNS: usize = 4;

/// Index usage of the connected database.
const SQL_INDEXES: &str = "SELECT s.schemaname::text, s.relname::text, s.indexrelname::text, \
coalesce(s.idx_scan, 0)::float8, coalesce(s.idx_tup_read, 0)::float8, \
coalesce(s.idx_tup_fetch, 0)::float8, pg_relation_size(s.indexrelid)::float8, \
(i.indisprimary OR i.indisunique OR EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)) \
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid \
WHERE s.schemaname <> ALL($1::text[])";

/// Table scans and growth of the connected database.
const SQL_TABLES: &str = "SELECT s.schemaname::text, s.relname::text, \
coalesce(s.seq_scan, 0)::float8, coalesce(s.seq_tup_read, 0)::float8, \
coalesce(s.idx_scan, 0)::float8, coalesce(s.n_live_tup, 0)::float8, \
coalesce(s.n_dead_tup, 0)::float8, greatest(c.reltuples, 0)::float8, \
pg_total_relation_size(s.relid)::float8 \
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
WHERE s.schemaname <> ALL($1::text[])";

/// `(datname, state, counted by perfwatch, sessions, oldest transaction s,
/// oldest active query s, sessions waiting on a lock)`.
pub(super) type ActivityRow = (String, String, bool, f64, f64, f64, f64);

/// The one-row server facts of every poll.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ServerRow {
    /// When the server started (epoch seconds).
    pub(super) started_unix: f64,
    /// `server_version`.
    pub(super) version: String,
    /// The server's clock (epoch seconds).
    pub(super) now_unix: f64,
    /// Whether the role is a member of pg_monitor.
    pub(super) monitor: bool,
    /// `pg_is_in_recovery()`.
    pub(super) in_recovery: bool,
    /// Replication lag in seconds (0 on a primary).
    pub(super) lag: Option<f64>,
    /// `pg_conf_load_time()` (epoch seconds).
    pub(super) conf_loaded_unix: f64,
    /// On a standby, its WAL receiver's status (`streaming`, …; `none`: no
    /// receiver runs; `hidden`: the role may not see it); `None` on a
    /// primary.
    pub(super) wal_receiver: Option<String>,
    /// `pg_stat_bgwriter` in `metrics::BGWRITER` order (NULL: the server has
    /// no such column).
    pub(super) bgwriter: [Option<f64>; BGWRITER_COLUMNS],
}

/// `(datname, stats reset epoch, accepts connections and is no template)`.
pub(super) type DatabaseRow = (String, Option<f64>, bool);
type IndexRow = (String, String, String, f64, f64, f64, f64, bool);
type TableRow = (String, String, f64, f64, f64, f64, f64, f64, f64);
/// userid, dbid, queryid, datname, query, calls, total ms, max ms, rows,
/// reset epoch.
type StatementSqlRow = (
    i64,
    i64,
    i64,
    String,
    String,
    i64,
    f64,
    f64,
    i64,
    Option<f64>,
);
/// A pg_stat_statements entry's identity: (userid, dbid, queryid).
pub(super) type StatementKey = (i64, i64, i64);

/// What every poll reads on the main session.
pub(super) struct ConnectionStats {
    /// Sessions by database and state.
    pub(super) activity: Vec<ActivityRow>,
    /// Server start, version, replication, bgwriter.
    pub(super) server: ServerRow,
    /// Every database with its statistics reset time.
    pub(super) databases: Vec<DatabaseRow>,
    /// `pg_stat_database` with sizes and locks (the same statement as
    /// `databases`).
    pub(super) stat_databases: Vec<DatabaseStat>,
    /// The numeric settings, when they were (re)read by this call, with the
    /// configuration load time they belong to.
    pub(super) settings: Option<(f64, Vec<Setting>)>,
    /// Standbys streaming from this server, and its replication slots.
    pub(super) replication: Replication,
}

/// One row of `pg_stat_replication`: a standby streaming from this server.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Replica {
    /// `application_name` (the standby's `cluster_name`, or `walreceiver`).
    pub(super) application_name: String,
    /// The standby's address (empty over a Unix socket).
    pub(super) client_addr: String,
    /// The walsender's pid (postgres_exporter's `slot_name` label).
    pub(super) pid: String,
    /// `state`: startup, catchup, streaming, backup, stopping.
    pub(super) state: String,
    /// This server's WAL position in bytes (None on a standby).
    pub(super) current_lsn_bytes: Option<f64>,
    /// WAL bytes the standby has not replayed (None on a standby, or
    /// without pg_read_all_stats).
    pub(super) replay_behind_bytes: Option<f64>,
    /// When the standby last replied, Unix seconds.
    pub(super) reply_time: Option<f64>,
    /// `write_lag`, `flush_lag`, `replay_lag` in seconds (NULL: caught up,
    /// read as 0); None while it has no replay position.
    pub(super) lags: Option<[f64; 3]>,
}

/// One row of `pg_replication_slots`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Slot {
    /// `slot_name`.
    pub(super) name: String,
    /// The database of a logical slot; empty for a physical one.
    pub(super) database: String,
    /// Whether a client streams from it now.
    pub(super) active: bool,
    /// WAL bytes it keeps back (None before it has a restart position).
    pub(super) retained_bytes: Option<f64>,
}

/// What [`SQL_REPLICATION`] read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Replication {
    /// Standbys, furthest behind first.
    pub(super) replicas: Vec<Replica>,
    /// Replication slots by name.
    pub(super) slots: Vec<Slot>,
}

impl Replication {
    /// Sorts the rows of [`SQL_REPLICATION`] into standbys and slots.
    fn from_rows(rows: Vec<ReplicationRow>) -> Self {
        let mut r = Self::default();
        for (kind, name, addr, pid, state, database, current, behind, reply, wl, fl, rl, active) in
            rows
        {
            if kind == "s" {
                r.slots.push(Slot {
                    name,
                    database,
                    active: active.unwrap_or(false),
                    retained_bytes: behind,
                });
                continue;
            }
            r.replicas.push(Replica {
                application_name: name,
                client_addr: addr,
                pid,
                state,
                current_lsn_bytes: current,
                replay_behind_bytes: behind,
                reply_time: reply,
                lags: match (wl, fl, rl) {
                    (Some(w), Some(f), Some(r)) => Some([w, f, r]),
                    _ => None,
                },
            });
        }
        r
    }
}

/// The connection stats of one poll: activity, server facts, databases,
/// database statistics, and the settings when the configuration was
/// (re)loaded since `settings_loaded` (the `pg_conf_load_time()` of the
/// settings the caller has; `None`: it has none).
pub(super) async fn connection_stats(
    c: &mut PgConnection,
    settings_loaded: Option<f64>,
) -> Result<ConnectionStats, sqlx::Error> {
    let a = sqlx::query_as::<_, ActivityRow>(SQL_ACTIVITY)
        .fetch_all(&mut *c)
        .await?;
    let server_sql = if c.server_version_num().is_some_and(|v| v >= 170_000) {
        SQL_SERVER_17
    } else {
        SQL_SERVER
    };
    let server = server_row(&sqlx::query(server_sql).fetch_one(&mut *c).await?)?;
    let rows = sqlx::query(SQL_DATABASES).fetch_all(&mut *c).await?;
    let mut databases = Vec::with_capacity(rows.len());
    let mut stat_databases = Vec::with_capacity(rows.len());
    for row in &rows {
        let stat = database_stat(row)?;
        // The shared-objects row is no database.
        if stat.datid != "0" {
            databases.push((stat.datname.clone(), row.try_get(2)?, row.try_get(3)?));
        }
        stat_databases.push(stat);
    }
    // Settings change only when the configuration is reloaded (or the
    // server restarts, which reloads it): read them then, not every poll.
    let settings = if settings_loaded != Some(server.conf_loaded_unix) {
        let rows = sqlx::query_as::<_, (String, String, String, String)>(SQL_PG_SETTINGS)
            .fetch_all(&mut *c)
            .await?;
        let parsed = rows
            .iter()
            .filter_map(|(name, value, unit, vartype)| rules::setting(name, value, unit, vartype))
            .collect();
        Some((server.conf_loaded_unix, parsed))
    } else {
        None
    };
    let replication = Replication::from_rows(
        sqlx::query_as::<_, ReplicationRow>(SQL_REPLICATION)
            .fetch_all(&mut *c)
            .await?,
    );
    Ok(ConnectionStats {
        activity: a,
        server,
        databases,
        stat_databases,
        settings,
        replication,
    })
}

/// Decodes the row of [`SQL_SERVER`].
fn server_row(row: &PgRow) -> Result<ServerRow, sqlx::Error> {
    let mut bgwriter = [None; BGWRITER_COLUMNS];
    for (i, v) in bgwriter.iter_mut().enumerate() {
        *v = row.try_get(SERVER_HEAD_COLUMNS + i)?;
    }
    Ok(ServerRow {
        started_unix: row.try_get(0)?,
        version: row.try_get(1)?,
        now_unix: row.try_get(2)?,
        monitor: row.try_get(3)?,
        in_recovery: row.try_get(4)?,
        lag: row.try_get(5)?,
        conf_loaded_unix: row.try_get(6)?,
        wal_receiver: row.try_get(7)?,
        bgwriter,
    })
}

/// Decodes the `pg_stat_database` part of one row of [`SQL_DATABASES`] (a
/// NULL counter, which the view never returns for a real database, reads as
/// 0).
fn database_stat(row: &PgRow) -> Result<DatabaseStat, sqlx::Error> {
    let mut columns = [0.0; STAT_DATABASE_COLUMNS];
    for (i, v) in columns.iter_mut().enumerate() {
        *v = row
            .try_get::<Option<f64>, _>(DATABASE_KEY_COLUMNS + i)?
            .unwrap_or(0.0);
    }
    let size_at = DATABASE_KEY_COLUMNS + STAT_DATABASE_COLUMNS;
    let datname: String = row.try_get(1)?;
    let mut stat = DatabaseStat::empty(&row.try_get::<i64, _>(0)?.to_string(), &datname);
    stat.columns = columns;
    stat.size_bytes = row.try_get(size_at)?;
    for (i, v) in stat.locks.iter_mut().enumerate() {
        *v = row.try_get(size_at + 1 + i)?;
    }
    Ok(stat)
}

/// Index usage of the connected database, schemas in `exclude` left out.
pub(super) async fn indexes(
    c: &mut PgConnection,
    exclude: Vec<String>,
) -> Result<Vec<IndexStat>, sqlx::Error> {
    let rows = sqlx::query_as::<_, IndexRow>(SQL_INDEXES)
        .bind(exclude)
        .fetch_all(c)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| IndexStat {
            schemaname: r.0,
            relname: r.1,
            indexrelname: r.2,
            idx_scan: r.3,
            idx_tup_read: r.4,
            idx_tup_fetch: r.5,
            size_bytes: r.6,
            enforces_constraint: r.7,
        })
        .collect())
}

/// Table scans and growth of the connected database, schemas in `exclude`
/// left out.
pub(super) async fn tables(
    c: &mut PgConnection,
    exclude: Vec<String>,
) -> Result<Vec<TableStat>, sqlx::Error> {
    let rows = sqlx::query_as::<_, TableRow>(SQL_TABLES)
        .bind(exclude)
        .fetch_all(c)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| TableStat {
            schemaname: r.0,
            relname: r.1,
            seq_scan: r.2,
            seq_tup_read: r.3,
            idx_scan: r.4,
            n_live_tup: r.5,
            n_dead_tup: r.6,
            reltuples: r.7,
            total_bytes: r.8,
        })
        .collect())
}

/// One read of pg_stat_statements (`sql` for the server's major version,
/// at most `limit` rows): the rows and the statistics reset epoch.
pub(super) async fn statement_rows(
    c: &mut PgConnection,
    sql: String,
    limit: i64,
) -> Result<(Vec<StatementRow<StatementKey>>, Option<f64>), sqlx::Error> {
    let rows = sqlx::query_as::<_, StatementSqlRow>(AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(c)
        .await?;
    let reset_epoch = rows.first().and_then(|r| r.9);
    let rows = rows
        .into_iter()
        .map(|r| StatementRow {
            key: (r.0, r.1, r.2),
            db: r.3,
            query: statements::pg_statement_text(&r.4),
            counters: Counters {
                calls: r.5.max(0) as u64,
                total_seconds: r.6 / 1000.0,
                max_seconds: r.7 / 1000.0,
                rows_sent: r.8.max(0) as u64,
                ..Counters::default()
            },
            age_seconds: None,
        })
        .collect();
    Ok((rows, reset_epoch))
}

/// `EXPLAIN (FORMAT JSON, VERBOSE)` of a class's example (checked to be a
/// single `SELECT` by `explain::statement::check`) in a read-only
/// transaction, always rolled back; never `ANALYZE`, so nothing runs. One
/// unnamed prepared statement: the server refuses a second statement in it,
/// and no statement cache entry is left behind per example.
pub(super) async fn explain(
    c: &mut PgConnection,
    example: Arc<str>,
) -> Result<String, sqlx::Error> {
    let mut tx = c.begin_with("BEGIN READ ONLY").await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "EXPLAIN (FORMAT JSON, VERBOSE) {example}"
    )))
    .persistent(false)
    .fetch_one(&mut *tx)
    .await;
    tx.rollback().await?;
    // The plan is `json`, whose binary form is its text.
    row?.try_get_unchecked::<String, _>(0)
}

/// What index advice needs of one table (`schema` `None`: the first table
/// of that name on the search path): its size, sequential scans, columns
/// and indexes (key columns in order; an expression as empty), in one
/// statement of `(kind, name, rows, scans, rows read, columns)` rows.
const TABLE_FACTS_SQL: &str = "WITH t AS (
  SELECT c.oid, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relname = $2 AND c.relkind IN ('r', 'p', 'm')
    AND (n.nspname = $1 OR ($1 IS NULL AND pg_table_is_visible(c.oid)))
  LIMIT 1)
SELECT 'table'::text, t.nspname::text,
  greatest(c.reltuples::float8, s.seq_tup_read::float8 / nullif(s.seq_scan, 0)),
  s.seq_scan::int8, s.seq_tup_read::int8, NULL::text
FROM t JOIN pg_class c ON c.oid = t.oid LEFT JOIN pg_stat_all_tables s ON s.relid = t.oid
UNION ALL
SELECT 'column', a.attname::text, NULL, NULL, NULL, NULL
FROM t JOIN pg_attribute a ON a.attrelid = t.oid WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index', ic.relname::text, NULL, si.idx_scan::int8, NULL,
  (SELECT string_agg(coalesce(a.attname::text, ''), chr(1) ORDER BY k.o)
   FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
   LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
   WHERE k.o <= i.indnkeyatts)
FROM t JOIN pg_index i ON i.indrelid = t.oid JOIN pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_stat_all_indexes si ON si.indexrelid = i.indexrelid";

type FactsRow = (
    String,
    String,
    Option<f64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

/// The facts of table `table` (see [`TABLE_FACTS_SQL`]); `None` when no
/// such table is visible.
pub(super) async fn table_facts(
    c: &mut PgConnection,
    schema: Option<String>,
    table: String,
) -> Result<Option<TableFacts>, sqlx::Error> {
    let rows = sqlx::query_as::<_, FactsRow>(TABLE_FACTS_SQL)
        .bind(schema)
        .bind(&table)
        .fetch_all(c)
        .await?;
    let mut facts: Option<TableFacts> = None;
    let (mut columns, mut indexes) = (Vec::new(), Vec::new());
    for (kind, name, rows, scans, read, cols) in rows {
        match kind.as_str() {
            "table" => {
                facts = Some(TableFacts {
                    schema: name,
                    table: table.clone(),
                    rows: rows.unwrap_or(0.0).max(0.0),
                    seq_scans: scans.map(|v| v.max(0) as u64),
                    seq_rows_read: read.map(|v| v.max(0) as u64),
                    ..TableFacts::default()
                })
            }
            "column" => columns.push(name.to_lowercase()),
            _ => indexes.push(IndexFacts {
                name,
                columns: cols
                    .unwrap_or_default()
                    .split('\u{1}')
                    .map(str::to_lowercase)
                    .collect(),
                scans: scans.map(|v| v.max(0) as u64),
            }),
        }
    }
    Ok(facts.map(|f| TableFacts {
        columns,
        indexes,
        ..f
    }))
}

/// Runs one custom query in a read-only transaction with its own
/// `statement_timeout`, always rolled back.
pub(super) async fn run_custom(
    conn: &mut PgConnection,
    q: CustomQueryConfig,
    timeout: Duration,
) -> Result<Result<Vec<QueryRow>, String>, sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN READ ONLY").await?;
    // SET LOCAL, as one prepared statement whatever the value.
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(timeout.as_millis().max(1).to_string())
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query(AssertSqlSafe(q.sql.clone()))
        .fetch_all(&mut *tx)
        .await;
    tx.rollback().await?;
    Ok(to_query_rows(&rows?, &q))
}

/// Splits result rows into label and value columns.
fn to_query_rows(rows: &[PgRow], q: &CustomQueryConfig) -> Result<Vec<QueryRow>, String> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut labels = Vec::new();
        for col in &q.labels {
            let v = cell_text(row, col).map_err(|e| format!("label column \"{col}\": {e}"))?;
            labels.push((col.clone(), v));
        }
        let mut values = Vec::new();
        for col in &q.values {
            match cell_number(row, col).map_err(|e| format!("value column \"{col}\": {e}"))? {
                Some(v) => values.push((col.clone(), v)),
                None => continue, // NULL: no sample
            }
        }
        out.push(QueryRow { labels, values });
    }
    Ok(out)
}

/// A cell as a number (float, integer or boolean columns).
fn cell_number(row: &PgRow, col: &str) -> Result<Option<f64>, String> {
    if let Err(sqlx::Error::ColumnNotFound(_)) = row.try_get_raw(col) {
        return Err("no such column".into());
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(col) {
        return Ok(v);
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(col) {
        return Ok(v.map(|v| v as f64));
    }
    if let Ok(v) = row.try_get::<Option<i32>, _>(col) {
        return Ok(v.map(f64::from));
    }
    if let Ok(v) = row.try_get::<Option<i16>, _>(col) {
        return Ok(v.map(f64::from));
    }
    if let Ok(v) = row.try_get::<Option<f32>, _>(col) {
        return Ok(v.map(f64::from));
    }
    if let Ok(v) = row.try_get::<Option<bool>, _>(col) {
        return Ok(v.map(|b| if b { 1.0 } else { 0.0 }));
    }
    Err("not a float, integer or boolean (cast numeric columns with ::float8)".into())
}

/// A cell as label text (text, integer or boolean columns; NULL → "").
fn cell_text(row: &PgRow, col: &str) -> Result<String, String> {
    if let Err(sqlx::Error::ColumnNotFound(_)) = row.try_get_raw(col) {
        return Err("no such column".into());
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(col) {
        return Ok(v.unwrap_or_default());
    }
    if let Ok(Some(v)) = cell_number(row, col) {
        return Ok(v.to_string());
    }
    if let Ok(None) = cell_number(row, col) {
        return Ok(String::new());
    }
    Err("not text, a number or a boolean (cast it with ::text)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock columns of [`SQL_DATABASES`] follow `rules::LOCK_MODES`,
    /// which names the exported series.
    #[test]
    fn lock_columns_follow_the_lock_modes() {
        for (i, mode) in rules::LOCK_MODES.iter().enumerate() {
            assert!(
                SQL_DATABASES.contains(&format!("lower(mode) = '{mode}') AS m{i},"))
                    || SQL_DATABASES.contains(&format!("lower(mode) = '{mode}') AS m{i} ")),
                "{mode} is not column m{i}"
            );
            assert!(SQL_DATABASES.contains(&format!("coalesce(l.m{i}, 0)::float8")));
        }
    }

    /// Both versions of the server statement have the same columns.
    #[test]
    fn server_statements_have_the_same_columns() {
        let columns = |sql: &str| sql.matches("::float8").count();
        assert_eq!(columns(SQL_SERVER), columns(SQL_SERVER_17));
        assert_eq!(
            columns(SQL_SERVER),
            SERVER_HEAD_COLUMNS - 4 + BGWRITER_COLUMNS,
            "head: 4 float8 (start, now, lag, conf load) and 4 others"
        );
    }
}
