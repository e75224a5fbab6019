//! What the PostgreSQL collector sends and how it reads the answers: the
//! statement texts, their row types, and the decoding of rows into the
//! pure types of `rules.rs`, statement statistics and custom-query rows.
//! No session handling here (see `session.rs`).

use std::time::Duration;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::rules::{DatabaseStat, IndexStat, STAT_DATABASE_COLUMNS, TableStat};
use super::statements;
use crate::collectors::custom_query::{CustomQueryConfig, QueryRow};
use crate::collectors::statement_stats::{Counters, StatementRow};

/// Connection stats, one row per (database, state). Our own sessions are
/// excluded (this backend and every `application_name = 'perfwatch'`).
const SQL_ACTIVITY: &str = "SELECT coalesce(datname, '')::text, coalesce(state, 'unknown')::text, \
count(*)::float8, \
coalesce(max(extract(epoch FROM now() - xact_start)), 0)::float8, \
coalesce(max(extract(epoch FROM now() - query_start)) FILTER (WHERE state = 'active'), 0)::float8, \
(count(*) FILTER (WHERE wait_event_type = 'Lock'))::float8 \
FROM pg_stat_activity \
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
AND application_name IS DISTINCT FROM 'perfwatch' \
GROUP BY 1, 2";

/// Connection settings, server start and version, and replication: the lag
/// is postgres_exporter 0.11's `pg_replication` query (0 on a primary; NULL
/// on a standby that has replayed nothing yet).
const SQL_SETTINGS: &str = "SELECT current_setting('max_connections')::float8, \
current_setting('superuser_reserved_connections')::float8, \
coalesce(current_setting('reserved_connections', true), '0')::float8, \
extract(epoch FROM pg_postmaster_start_time())::float8, \
current_setting('server_version')::text, \
extract(epoch FROM now())::float8, \
pg_has_role('pg_monitor', 'USAGE'), \
pg_is_in_recovery(), \
CASE WHEN NOT pg_is_in_recovery() THEN 0 \
ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END::float8";

/// Every database with its statistics reset time, whether it accepts
/// connections and is no template, its `pg_stat_database` counters and its
/// size. Every row of the view, the shared-objects row `datid = 0` included
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
OR pg_has_role('pg_read_all_stats', 'USAGE')) THEN pg_database_size(s.datid)::float8 END \
FROM pg_stat_database s LEFT JOIN pg_database d ON d.oid = s.datid ORDER BY 2";

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

/// `(datname, state, sessions, oldest transaction s, oldest active query s,
/// sessions waiting on a lock)`.
pub(super) type ActivityRow = (String, String, f64, f64, f64, f64);
/// `(max_connections, superuser_reserved_connections, reserved_connections,
/// server start epoch, server_version, now epoch, member of pg_monitor,
/// in recovery, replication lag s)`.
pub(super) type SettingsRow = (f64, f64, f64, f64, String, f64, bool, bool, Option<f64>);
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
    /// Settings, server start, version, replication.
    pub(super) settings: SettingsRow,
    /// Every database with its statistics reset time.
    pub(super) databases: Vec<DatabaseRow>,
    /// `pg_stat_database` with sizes (the same statement as `databases`).
    pub(super) stat_databases: Vec<DatabaseStat>,
}

/// The connection stats of one poll: activity, settings, databases,
/// database statistics.
pub(super) async fn connection_stats(c: &mut PgConnection) -> Result<ConnectionStats, sqlx::Error> {
    let a = sqlx::query_as::<_, ActivityRow>(SQL_ACTIVITY)
        .fetch_all(&mut *c)
        .await?;
    let s = sqlx::query_as::<_, SettingsRow>(SQL_SETTINGS)
        .fetch_one(&mut *c)
        .await?;
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
    Ok(ConnectionStats {
        activity: a,
        settings: s,
        databases,
        stat_databases,
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
    Ok(DatabaseStat {
        datid: row.try_get::<i64, _>(0)?.to_string(),
        datname: row.try_get(1)?,
        columns,
        size_bytes: row.try_get(DATABASE_KEY_COLUMNS + STAT_DATABASE_COLUMNS)?,
    })
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
