//! The PostgreSQL collector: connections and saturation, index usage (with
//! the unused-index verdict), missing-index candidates, table growth and
//! custom SQL metrics.
//!
//! Per poll, on one persistent connection to the DSN's database: three
//! statements for the connection stats (`pg_stat_activity` grouped by
//! database and state, the connection settings, `pg_database` joined with
//! `pg_stat_database`). Index and table stats are heavier: two statements per
//! configured database, only every `index_interval`, on one persistent
//! connection per database (at most `max_databases`); their last result is
//! re-exported in between. A part that fails (permission, lock timeout) is
//! counted in `perfwatch_postgres_part_errors_total` and flagged in
//! `perfwatch_collector_degraded`; the rest of the target keeps working.
//!
//! Connections: one `PgConnection` per database, owned by the collector (not
//! a pool: a refused connection must show as `connect` at once, not as a
//! pool timeout), tagged `application_name=perfwatch` and started with
//! `statement_timeout` (80 % of the poll timeout) and `lock_timeout` (a fifth
//! of it) as startup options, so a held lock or a slow catalog fails our
//! statement instead of piling up sessions. After a timeout or error the
//! connection is not dropped but marked dirty and drained with a ping on the
//! next poll (dropped only if that fails), so a query still running on the
//! server is never joined by a second session.
//!
//! With `[postgres.statements]`, one more statement per read on the main
//! session: `pg_stat_statements`, fed as deltas into the slow-log digest so
//! the `perfwatch_slow_query_*` families come without a log file; a missing
//! extension is the failing part `statements`, never a failed poll.
//!
//! Layout: `config.rs` (the `[[postgres]]` table), `rules.rs` (pure verdicts,
//! bounding, classification), `statements.rs` (statement statistics as a
//! slow-query source, shared with MySQL), this file (I/O and metric mapping).

pub mod config;
pub mod rules;
pub mod statements;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

use super::statement_stats::{Counters, StatementRead, StatementRow, StatementSource};
pub use config::PostgresConfig;
use rules::{IndexStat, MissingIndexRule, TableStat};

use super::custom_query::{CustomQueries, CustomQueryConfig, QueryRow};
use crate::exposition::Families;
use crate::poll::Timing;
use crate::poll::{Collector, ErrorReason, PollError, PollOutput};

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

/// Connection settings, server start and version.
const SQL_SETTINGS: &str = "SELECT current_setting('max_connections')::float8, \
current_setting('superuser_reserved_connections')::float8, \
coalesce(current_setting('reserved_connections', true), '0')::float8, \
extract(epoch FROM pg_postmaster_start_time())::float8, \
current_setting('server_version')::text, \
extract(epoch FROM now())::float8, \
pg_has_role('pg_monitor', 'USAGE')";

/// Every database with its statistics reset time.
const SQL_DATABASES: &str = "SELECT d.datname::text, extract(epoch FROM s.stats_reset)::float8, \
(d.datallowconn AND NOT d.datistemplate) \
FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid ORDER BY 1";

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

/// States postgres_exporter always exports (zeros included) per database.
const STATES: [&str; 6] = [
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
];

/// How soon a failing index/table part is retried (capped by index_interval).
const RETRY_FAILED_PART: Duration = Duration::from_secs(60);

/// Reasons exported by `perfwatch_collector_degraded`.
const DEGRADED_REASONS: [ErrorReason; 5] = [
    ErrorReason::Connect,
    ErrorReason::Auth,
    ErrorReason::Permission,
    ErrorReason::Timeout,
    ErrorReason::Query,
];

/// A boxed future borrowing a connection.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

type ActivityRow = (String, String, f64, f64, f64, f64);
type SettingsRow = (f64, f64, f64, f64, String, f64, bool);
type DatabaseRow = (String, Option<f64>, bool);
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
type StatementKey = (i64, i64, i64);

/// One persistent session to one database.
struct Session {
    conn: PgConnection,
    /// A poll was dropped or failed while using it: drain it before use.
    dirty: bool,
}

/// Why an operation failed: the server said so, or our own deadline passed.
enum Fail {
    Sql(sqlx::Error),
    Deadline(Duration),
    /// Before talking to the server (bad DSN, unreadable password file).
    Setup(PollError),
}

/// The last index/table result of one database.
#[derive(Default)]
struct Heavy {
    last_attempt: Option<Instant>,
    indexes: Option<Vec<IndexStat>>,
    tables: Option<Vec<TableStat>>,
    last_success_unix: Option<f64>,
}

/// Per-database connection stats from `pg_stat_activity`.
#[derive(Default, Clone)]
struct DbActivity {
    states: BTreeMap<String, f64>,
    max_tx: f64,
    max_query: f64,
    waiting: f64,
}

/// A running PostgreSQL collector.
pub struct PostgresCollector {
    cfg: PostgresConfig,
    timing: Timing,
    /// The DSN's database (connection stats and custom queries run there).
    main_db: String,
    sessions: BTreeMap<String, Session>,
    heavy: BTreeMap<String, Heavy>,
    custom: CustomQueries,
    /// `(datname, part, reason)` → failures.
    part_errors: BTreeMap<(String, &'static str, ErrorReason), u64>,
    /// `(datname, part)` → reason, for parts failing right now.
    failing: BTreeMap<(String, &'static str), ErrorReason>,
    databases_skipped: usize,
    /// Custom queries whose last run failed (to warn once per streak).
    custom_failing: std::collections::BTreeSet<String>,
    /// pg_stat_statements as a slow-query source, when configured.
    statements: Option<StatementSource<StatementKey>>,
}

impl PostgresCollector {
    /// A collector that connects on its first poll.
    pub fn new(cfg: PostgresConfig, timing: Timing) -> Self {
        let main_db = PgConnectOptions::from_str(&cfg.dsn)
            .ok()
            .map(|o| {
                o.get_database()
                    .unwrap_or_else(|| o.get_username())
                    .to_owned()
            })
            .unwrap_or_else(|| "postgres".into());
        let statements = cfg
            .statements
            .clone()
            .filter(|s| s.enabled)
            .map(|s| StatementSource::new(s, "pg_stat_statements"));
        Self {
            statements,
            cfg,
            timing,
            main_db,
            sessions: BTreeMap::new(),
            heavy: BTreeMap::new(),
            custom: CustomQueries::default(),
            part_errors: BTreeMap::new(),
            failing: BTreeMap::new(),
            databases_skipped: 0,
            custom_failing: Default::default(),
        }
    }

    fn statement_timeout(&self) -> Duration {
        self.timing
            .timeout
            .mul_f64(0.8)
            .max(Duration::from_millis(1))
    }

    fn lock_timeout(&self) -> Duration {
        self.cfg
            .lock_timeout
            .unwrap_or(self.timing.timeout / 5)
            .max(Duration::from_millis(1))
    }

    fn prefix(&self) -> String {
        format!("postgres target \"{}\"", self.cfg.name)
    }

    /// Connection options for `database`, with the session settings.
    fn options(&self, database: &str) -> Result<PgConnectOptions, PollError> {
        let masked = rules::mask_dsn(&self.cfg.dsn);
        let mut opts = PgConnectOptions::from_str(&self.cfg.dsn).map_err(|e| {
            PollError::new(
                ErrorReason::Connect,
                format!(
                    "{}: dsn \"{masked}\" is not valid: {}",
                    self.prefix(),
                    self.scrub(&e.to_string())
                ),
            )
        })?;
        if let Some(pw) = self
            .cfg
            .resolved_password()
            .map_err(|e| PollError::new(ErrorReason::Io, format!("{}: {e}", self.prefix())))?
        {
            opts = opts.password(pw.expose());
        }
        let ms = |d: Duration| d.as_millis().max(1).to_string();
        let idle_tx = self.timing.interval + self.timing.timeout;
        Ok(opts
            .database(database)
            .application_name("perfwatch")
            .options([
                ("statement_timeout", ms(self.statement_timeout())),
                ("lock_timeout", ms(self.lock_timeout())),
                ("idle_in_transaction_session_timeout", ms(idle_tx)),
            ])
            .log_statements(tracing::log::LevelFilter::Trace))
    }

    /// Removes the DSN and password from a driver message.
    fn scrub(&self, msg: &str) -> String {
        let mut m = msg.replace(&self.cfg.dsn, &rules::mask_dsn(&self.cfg.dsn));
        if let Ok(Some(pw)) = self.cfg.resolved_password()
            && !pw.expose().is_empty()
        {
            m = m.replace(pw.expose(), "***");
        }
        m
    }

    fn reason(e: &Fail) -> ErrorReason {
        match e {
            Fail::Deadline(_) => ErrorReason::Timeout,
            Fail::Sql(e) => classify(e),
            Fail::Setup(e) => e.reason,
        }
    }

    fn fail_message(&self, what: &str, e: &Fail) -> String {
        match e {
            Fail::Deadline(d) => format!(
                "{}: {what}: no answer within {}",
                self.prefix(),
                humantime::format_duration(*d)
            ),
            Fail::Sql(e) => format!("{}: {what}: {}", self.prefix(), self.scrub(&e.to_string())),
            Fail::Setup(e) => e.message.clone(),
        }
    }

    fn poll_error(&self, what: &str, e: &Fail) -> PollError {
        PollError::new(Self::reason(e), self.fail_message(what, e))
    }

    /// A ready session to `database` (connecting or draining as needed),
    /// within `budget`.
    async fn session(&mut self, database: &str, budget: Duration) -> Result<(), Fail> {
        if let Some(s) = self.sessions.get_mut(database) {
            if !s.dirty {
                return Ok(());
            }
            match tokio::time::timeout(budget, s.conn.ping()).await {
                Ok(Ok(())) => {
                    s.dirty = false;
                    return Ok(());
                }
                _ => {
                    tracing::debug!(target_name = %self.cfg.name, database, "dropping a postgres session that did not recover");
                    self.sessions.remove(database);
                }
            }
        }
        let opts = self.options(database).map_err(Fail::Setup)?;
        let conn = match tokio::time::timeout(budget, opts.connect()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(Fail::Sql(e)),
            Err(_) => return Err(Fail::Deadline(budget)),
        };
        tracing::debug!(target_name = %self.cfg.name, database, "connected to postgres");
        self.sessions
            .insert(database.to_owned(), Session { conn, dirty: false });
        Ok(())
    }

    /// Runs `f` on the session of `database` under `budget`; marks it dirty
    /// when the run fails or is cut short.
    async fn on_session<T>(
        &mut self,
        database: &str,
        budget: Duration,
        f: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> Result<T, Fail> {
        let started = Instant::now();
        self.session(database, budget).await?;
        let left = budget.saturating_sub(started.elapsed());
        let s = self
            .sessions
            .get_mut(database)
            .expect("session() inserted it");
        s.dirty = true;
        let r = match tokio::time::timeout(left, f(&mut s.conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Fail::Sql(e)),
            Err(_) => Err(Fail::Deadline(budget)),
        };
        if r.is_ok() {
            s.dirty = false;
        } else if let Err(Fail::Sql(e)) = &r
            && matches!(e, sqlx::Error::Database(_))
        {
            // The server answered with an error: the session is in sync.
            s.dirty = false;
        }
        r
    }

    /// Drops the session of `db` after an error that means it is gone
    /// (network, server shutdown); others keep it.
    fn forget_broken(&mut self, db: &str, e: &Fail) {
        if matches!(e, Fail::Sql(_)) && Self::reason(e) == ErrorReason::Connect {
            self.sessions.remove(db);
        }
    }

    fn record_part(
        &mut self,
        datname: &str,
        part: &'static str,
        result: Result<(), ErrorReason>,
        message: Option<String>,
    ) {
        let key = (datname.to_owned(), part);
        match result {
            Ok(()) => {
                if self.failing.remove(&key).is_some() {
                    tracing::info!(target_name = %self.cfg.name, datname, part, "postgres stats readable again");
                }
            }
            Err(reason) => {
                *self
                    .part_errors
                    .entry((datname.to_owned(), part, reason))
                    .or_default() += 1;
                let before = self.failing.insert(key, reason);
                let msg = message.unwrap_or_default();
                if before != Some(reason) {
                    tracing::warn!(target_name = %self.cfg.name, datname, part, reason = reason.as_str(), error = %msg, "postgres stats part failed; the target's other metrics continue");
                } else {
                    tracing::debug!(target_name = %self.cfg.name, datname, part, reason = reason.as_str(), error = %msg, "postgres stats part failed again");
                }
            }
        }
    }

    /// Reads index and table stats of `db` when due; failures are recorded
    /// per part, never returned.
    async fn poll_heavy(&mut self, db: &str, deadline: Instant) {
        // Intervals are measured between attempt starts (like polls).
        let attempt = Instant::now();
        // A failing part is retried sooner (but at most once a poll, and at
        // least once a minute), so a lock or a grant fixed shows up quickly
        // without a failing connect attempt on every poll.
        let failing = self
            .failing
            .keys()
            .any(|(d, part)| d == db && !matches!(*part, "privileges" | "statements"));
        let every = if failing {
            self.cfg.index_interval.min(RETRY_FAILED_PART)
        } else {
            self.cfg.index_interval
        };
        let due = self
            .heavy
            .get(db)
            .and_then(|h| h.last_attempt)
            .is_none_or(|t| t.elapsed() + Duration::from_millis(50) >= every);
        if !due {
            return;
        }
        // Leave room: a database that cannot finish now is retried next poll.
        let left = deadline.saturating_duration_since(Instant::now());
        if left < self.timing.timeout / 4 {
            return;
        }
        if let Err(e) = self.session(db, left).await {
            let msg = self.fail_message(&format!("connecting to database \"{db}\""), &e);
            if matches!(e, Fail::Sql(_)) {
                self.sessions.remove(db);
            }
            self.record_part(db, "connect", Err(Self::reason(&e)), Some(msg));
            self.heavy.entry(db.to_owned()).or_default().last_attempt = Some(attempt);
            return;
        }
        self.record_part(db, "connect", Ok(()), None);
        let schemas = self.cfg.exclude_schemas.clone();
        let left = deadline.saturating_duration_since(Instant::now());
        let s2 = schemas.clone();
        let indexes = self
            .on_session(db, left, move |c| {
                Box::pin(async move {
                    sqlx::query_as::<_, IndexRow>(SQL_INDEXES)
                        .bind(s2)
                        .fetch_all(c)
                        .await
                })
            })
            .await;
        let mut any_ok = false;
        match indexes {
            Ok(rows) => {
                let v = rows
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
                    .collect();
                self.heavy.entry(db.to_owned()).or_default().indexes = Some(v);
                self.record_part(db, "indexes", Ok(()), None);
                any_ok = true;
            }
            Err(e) => {
                self.forget_broken(db, &e);
                let msg = self.fail_message(&format!("index stats of database \"{db}\""), &e);
                self.record_part(db, "indexes", Err(Self::reason(&e)), Some(msg));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let tables = if left.is_zero() {
            Err(Fail::Deadline(self.timing.timeout))
        } else {
            self.on_session(db, left, move |c| {
                Box::pin(async move {
                    sqlx::query_as::<_, TableRow>(SQL_TABLES)
                        .bind(schemas)
                        .fetch_all(c)
                        .await
                })
            })
            .await
        };
        match tables {
            Ok(rows) => {
                let v = rows
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
                    .collect();
                self.heavy.entry(db.to_owned()).or_default().tables = Some(v);
                self.record_part(db, "tables", Ok(()), None);
                any_ok = true;
            }
            Err(e) => {
                self.forget_broken(db, &e);
                let msg = self.fail_message(&format!("table stats of database \"{db}\""), &e);
                self.record_part(db, "tables", Err(Self::reason(&e)), Some(msg));
            }
        }
        let h = self.heavy.entry(db.to_owned()).or_default();
        h.last_attempt = Some(attempt);
        if any_ok {
            h.last_success_unix = Some(crate::poll::unix_now());
        }
    }

    /// Reads pg_stat_statements when due: one statement on the main session
    /// (its `statement_timeout` applies). A missing extension, library or
    /// grant is recorded as the `statements` part, never returned.
    async fn poll_statements(&mut self, main: &str, version: &str, deadline: Instant) {
        let Some(src) = &mut self.statements else {
            return;
        };
        if !src.due() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(10) {
            return;
        }
        src.attempt();
        let limit = i64::try_from(src.cfg.max_rows).unwrap_or(i64::MAX);
        let sql = statements::pg_statements_sql(statements::pg_major(version));
        let result = self
            .on_session(main, left, move |c| {
                Box::pin(async move {
                    sqlx::query_as::<_, StatementSqlRow>(AssertSqlSafe(sql))
                        .bind(limit)
                        .fetch_all(c)
                        .await
                })
            })
            .await;
        match result {
            Ok(rows) => {
                let full = rows.len() as i64 >= limit;
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
                if let Some(src) = &mut self.statements {
                    src.record(StatementRead {
                        rows,
                        full,
                        reset_epoch,
                    });
                }
                self.record_part(main, "statements", Ok(()), None);
            }
            Err(e) => {
                self.forget_broken(main, &e);
                let code = match &e {
                    Fail::Sql(sqlx::Error::Database(d)) => d.code().map(|c| c.into_owned()),
                    _ => None,
                };
                let hint = match &e {
                    Fail::Sql(sqlx::Error::Database(_)) => {
                        statements::pg_missing_hint(code.as_deref(), main)
                    }
                    _ => "pg_stat_statements could not be read".into(),
                };
                let msg = format!(
                    "{hint}; {}",
                    self.fail_message("reading pg_stat_statements", &e)
                );
                if let Some(src) = &mut self.statements {
                    src.record_down();
                }
                self.record_part(main, "statements", Err(Self::reason(&e)), Some(msg));
            }
        }
    }

    /// Runs the due custom queries on the main session.
    async fn poll_custom(&mut self, deadline: Instant) {
        let queries = self.cfg.query.clone();
        for q in &queries {
            if !self.custom.due(q, self.timing.interval, Instant::now()) {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(10) {
                return;
            }
            let timeout = q.timeout.unwrap_or(self.statement_timeout()).min(left);
            let started = Instant::now();
            let main = self.main_db.clone();
            let qc = q.clone();
            let r = self
                .on_session(&main, left, move |c| Box::pin(run_custom(c, qc, timeout)))
                .await;
            let error = match r {
                Ok(Ok(rows)) => {
                    self.custom.record_rows(q, rows, started.elapsed());
                    if self.custom_failing.remove(&q.name) {
                        tracing::info!(target_name = %self.cfg.name, query = %q.name, "custom query works again");
                    }
                    continue;
                }
                Ok(Err(msg)) => format!(
                    "{}: custom query \"{}\" returned rows perfwatch cannot export: {msg}",
                    self.prefix(),
                    q.name
                ),
                Err(e) => {
                    self.forget_broken(&main, &e);
                    self.fail_message(&format!("custom query \"{}\"", q.name), &e)
                }
            };
            self.custom.record_error(q, started.elapsed());
            // Warn once per failure streak; the counter keeps the count.
            if self.custom_failing.insert(q.name.clone()) {
                tracing::warn!(target_name = %self.cfg.name, query = %q.name, error = %error, "custom query failed; the target's other metrics continue");
            } else {
                tracing::debug!(target_name = %self.cfg.name, query = %q.name, error = %error, "custom query failed again");
            }
        }
    }
}

/// Runs one custom query in a read-only transaction with its own
/// `statement_timeout`, always rolled back.
async fn run_custom(
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

/// Maps a sqlx error to a reason.
fn classify(e: &sqlx::Error) -> ErrorReason {
    match e {
        sqlx::Error::Database(d) => d
            .code()
            .map_or(ErrorReason::Query, |c| rules::classify_sqlstate(&c)),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => {
            ErrorReason::Connect
        }
        sqlx::Error::PoolTimedOut => ErrorReason::Timeout,
        sqlx::Error::Protocol(_) => ErrorReason::Protocol,
        _ => ErrorReason::Query,
    }
}

impl Collector for PostgresCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        let started = Instant::now();
        // Finish our own work before the engine's hard deadline.
        let deadline = started + self.timing.timeout.mul_f64(0.9);
        let main = self.main_db.clone();
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = self.session(&main, left).await {
            if matches!(e, Fail::Sql(_)) {
                self.sessions.remove(&main);
            }
            return Err(self.poll_error(
                &format!("connecting to {}", rules::mask_dsn(&self.cfg.dsn)),
                &e,
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let stats = self
            .on_session(&main, left, |c| {
                Box::pin(async move {
                    let a = sqlx::query_as::<_, ActivityRow>(SQL_ACTIVITY)
                        .fetch_all(&mut *c)
                        .await?;
                    let s = sqlx::query_as::<_, SettingsRow>(SQL_SETTINGS)
                        .fetch_one(&mut *c)
                        .await?;
                    let d = sqlx::query_as::<_, DatabaseRow>(SQL_DATABASES)
                        .fetch_all(&mut *c)
                        .await?;
                    Ok::<_, sqlx::Error>((a, s, d))
                })
            })
            .await;
        let (activity, settings, databases) = match stats {
            Ok(v) => v,
            Err(e) => {
                if matches!(&e, Fail::Sql(_)) && Self::reason(&e) == ErrorReason::Connect {
                    self.sessions.remove(&main);
                }
                return Err(self.poll_error("reading connection stats", &e));
            }
        };
        // Without pg_monitor, other roles' sessions show no state or query:
        // the numbers would be wrong, so say so.
        let privileged = settings.6;
        self.record_part(
            &main,
            "privileges",
            if privileged {
                Ok(())
            } else {
                Err(ErrorReason::Permission)
            },
            Some(format!(
                "{}: the role is not a member of pg_monitor; other roles' sessions show as state \"unknown\" (GRANT pg_monitor TO <role>)",
                self.prefix()
            )),
        );

        // Which databases get index/table stats.
        let connectable: Vec<&str> = databases
            .iter()
            .filter(|d| d.2)
            .map(|d| d.0.as_str())
            .collect();
        let mut wanted: Vec<String> = if self.cfg.databases.is_empty() {
            vec![main.clone()]
        } else if self.cfg.databases.iter().any(|d| d == "*") {
            connectable.iter().map(|s| (*s).to_owned()).collect()
        } else {
            self.cfg.databases.clone()
        };
        self.databases_skipped = wanted.len().saturating_sub(self.cfg.max_databases);
        if self.databases_skipped > 0 {
            tracing::debug!(target_name = %self.cfg.name, skipped = self.databases_skipped, "more databases than max_databases; the rest get no index/table stats");
            wanted.truncate(self.cfg.max_databases);
        }
        // Forget databases no longer wanted (dropped, or config "*").
        self.heavy.retain(|d, _| wanted.contains(d));
        self.sessions
            .retain(|d, _| *d == main || wanted.contains(d));
        self.failing
            .retain(|(d, _), _| wanted.contains(d) || *d == main);
        self.poll_statements(&main, &settings.4, deadline).await;
        for db in &wanted {
            self.poll_heavy(db, deadline).await;
        }
        self.poll_custom(deadline).await;
        self.custom.retain(&self.cfg.query);

        let mut out = Families::new();
        let headline = self.export(&activity, &settings, &databases, &wanted, &mut out);
        Ok(PollOutput {
            families: out,
            headline,
        })
    }

    fn details(&self) -> Option<serde_json::Value> {
        self.statements.as_ref().and_then(StatementSource::details)
    }

    fn reset(&mut self) {
        // Keep the sessions (a query may still run on them; a new session
        // would add to the server's count) but drain them before reuse.
        for s in self.sessions.values_mut() {
            s.dirty = true;
        }
    }
}

impl PostgresCollector {
    fn export(
        &self,
        activity: &[ActivityRow],
        settings: &SettingsRow,
        databases: &[DatabaseRow],
        wanted: &[String],
        out: &mut Families,
    ) -> Vec<(String, String)> {
        let target = self.cfg.name.as_str();
        let t = [("target", target)];
        let (max_conn, su_reserved, reserved, started_unix, version, now_unix, _) = settings;

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
                // postgres_exporter calls this pg_stat_activity_count, a
                // gauge name promtool rejects (`_count` is reserved for
                // histograms and summaries); docs show the rename rule.
                out.gauge_named(
                    "perfwatch_postgres_sessions",
                    "Client sessions by database and state, perfwatch's own excluded (postgres_exporter: pg_stat_activity_count).",
                    &[("target", target), ("datname", datname), ("state", state)],
                    n,
                );
            }
            let l = [("target", target), ("datname", datname.as_str())];
            out.gauge_named(
                "pg_stat_activity_max_tx_duration",
                "Age in seconds of the oldest open transaction in the database (0 when none).",
                &l,
                a.max_tx,
            );
            out.gauge_named(
                "perfwatch_postgres_oldest_query_seconds",
                "Age in seconds of the oldest running (state active) query in the database (0 when none).",
                &l,
                a.max_query,
            );
            out.gauge_named(
                "perfwatch_postgres_sessions_waiting_on_lock",
                "Client sessions waiting for a lock (wait_event_type Lock).",
                &l,
                a.waiting,
            );
        }
        out.gauge_named(
            "pg_settings_max_connections",
            "The max_connections setting.",
            &t,
            *max_conn,
        );
        out.gauge_named(
            "pg_settings_superuser_reserved_connections",
            "The superuser_reserved_connections setting.",
            &t,
            *su_reserved,
        );
        out.gauge_named(
            "perfwatch_postgres_connections_used",
            "Client sessions on the server, perfwatch's own excluded.",
            &t,
            used,
        );
        let available = max_conn - su_reserved - reserved;
        out.gauge_named(
            "perfwatch_postgres_connections_available",
            "Connection slots for ordinary roles: max_connections - superuser_reserved_connections - reserved_connections.",
            &t,
            available,
        );
        let ratio = rules::saturation_ratio(used, *max_conn, su_reserved + reserved);
        if let Some(r) = ratio {
            out.gauge_named(
                "perfwatch_pool_saturation_ratio",
                "Used / available connections of a pool or server (1 = full; new connections are refused).",
                &[("source", "postgres"), ("target", target)],
                r,
            );
        }

        // Statistics age per database.
        for (datname, reset, connectable) in databases {
            if !connectable {
                continue;
            }
            let since = reset.unwrap_or(*started_unix);
            out.gauge_named(
                "perfwatch_postgres_stats_reset_age_seconds",
                "Seconds since the database's statistics were reset (or the server started, when never reset): index usage is only meaningful over a long enough age.",
                &[("target", target), ("datname", datname)],
                (now_unix - since).max(0.0),
            );
        }

        // Index and table stats, bounded.
        let rule = MissingIndexRule {
            min_table_rows: self.cfg.min_table_rows as f64,
            min_seq_scans: self.cfg.min_seq_scans as f64,
            seq_ratio: self.cfg.seq_ratio,
        };
        for db in wanted {
            let Some(h) = self.heavy.get(db) else {
                continue;
            };
            if let Some(ix) = &h.indexes {
                export_indexes(ix, self.cfg.max_indexes, target, db, out);
            }
            if let Some(tb) = &h.tables {
                export_tables(tb, self.cfg.max_tables, &rule, target, db, out);
            }
            if let Some(ts) = h.last_success_unix {
                out.gauge_named(
                    "perfwatch_postgres_index_stats_last_success_timestamp_seconds",
                    "When the index/table stats of the database were last read (they are re-exported until the next read, every index_interval).",
                    &[("target", target), ("datname", db.as_str())],
                    ts,
                );
            }
        }
        out.gauge_named(
            "perfwatch_postgres_databases_skipped",
            "Databases without index/table stats because of max_databases.",
            &t,
            self.databases_skipped as f64,
        );

        // Errors of parts.
        for ((datname, part, reason), n) in &self.part_errors {
            out.counter_named(
                "perfwatch_postgres_part_errors_total",
                "Failed reads of one part of a target (connect, indexes, tables) by reason; the other parts keep working.",
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
            let on = self.failing.values().any(|r| *r == reason);
            out.gauge_named(
                "perfwatch_collector_degraded",
                "1 when part of a target's metrics is missing right now for this reason (the target itself is up).",
                &[
                    ("collector", "postgres"),
                    ("target", target),
                    ("reason", reason.as_str()),
                ],
                if on { 1.0 } else { 0.0 },
            );
        }

        self.custom.export(&self.cfg.query, target, out);
        if let Some(src) = &self.statements {
            src.export(target, out);
        }

        let mut headline = vec![
            ("version".to_owned(), version.clone()),
            ("connections".to_owned(), format!("{used} / {available}")),
        ];
        if let Some(r) = ratio {
            headline.push(("saturation".into(), format!("{:.1} %", r * 100.0)));
        }
        let unused: usize = self
            .heavy
            .values()
            .filter_map(|h| h.indexes.as_ref())
            .map(|ix| ix.iter().filter(|i| rules::index_unused(i)).count())
            .sum();
        headline.push(("unused indexes".into(), unused.to_string()));
        headline
    }
}

/// Exports per-index series (top `max` by size, the rest as `other`) and the
/// per-database unused-index summary (pure).
fn export_indexes(ix: &[IndexStat], max: usize, target: &str, db: &str, out: &mut Families) {
    let unused: Vec<&IndexStat> = ix.iter().filter(|i| rules::index_unused(i)).collect();
    let dl = [("target", target), ("datname", db)];
    out.gauge_named(
        "perfwatch_postgres_unused_indexes",
        "Indexes with no scan since the statistics were reset, excluding primary keys, unique and constraint-backing indexes.",
        &dl,
        unused.len() as f64,
    );
    out.gauge_named(
        "perfwatch_postgres_unused_index_bytes",
        "Total size of the unused indexes (space and write cost they waste).",
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
        out.counter_named(
            "perfwatch_postgres_index_scans_total",
            "Index scans (pg_stat_user_indexes.idx_scan); indexrelname=\"other\" sums the indexes beyond max_indexes.",
            &l,
            i.idx_scan,
        );
        out.counter_named(
            "perfwatch_postgres_index_tuples_read_total",
            "Index entries returned by scans of the index (idx_tup_read).",
            &l,
            i.idx_tup_read,
        );
        out.counter_named(
            "perfwatch_postgres_index_tuples_fetched_total",
            "Live table rows fetched by simple scans of the index (idx_tup_fetch).",
            &l,
            i.idx_tup_fetch,
        );
        out.gauge_named(
            "perfwatch_postgres_index_size_bytes",
            "Size of the index (pg_relation_size).",
            &l,
            i.size_bytes,
        );
        let is_other = other_is_some && i.indexrelname == "other" && i.schemaname == "other";
        if !is_other {
            out.gauge_named(
                "perfwatch_postgres_index_unused",
                "1 when the index had no scan since the statistics were reset and enforces no constraint (a candidate to drop: check perfwatch_postgres_stats_reset_age_seconds first).",
                &l,
                if rules::index_unused(i) { 1.0 } else { 0.0 },
            );
        }
    }
}

/// Exports per-table series (top `max`, the rest as `other`) with the
/// missing-index verdict (pure).
fn export_tables(
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
    out.gauge_named(
        "perfwatch_postgres_missing_index_candidates",
        "Tables in the database matching the missing-index rule.",
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
        // postgres_exporter's names; gauges here (see docs/collectors/postgres.md).
        for (name, help, v) in [
            (
                "pg_stat_user_tables_seq_scan",
                "Sequential scans of the table (a counter exported as a gauge under postgres_exporter's name).",
                t.seq_scan,
            ),
            (
                "pg_stat_user_tables_seq_tup_read",
                "Rows read by sequential scans (a counter exported as a gauge under postgres_exporter's name).",
                t.seq_tup_read,
            ),
            (
                "pg_stat_user_tables_idx_scan",
                "Index scans of the table (a counter exported as a gauge under postgres_exporter's name).",
                t.idx_scan,
            ),
            (
                "pg_stat_user_tables_n_live_tup",
                "Estimated live rows.",
                t.n_live_tup,
            ),
            (
                "pg_stat_user_tables_n_dead_tup",
                "Estimated dead rows.",
                t.n_dead_tup,
            ),
        ] {
            out.gauge_named(name, help, &l, v);
        }
        out.gauge_named(
            "perfwatch_postgres_table_estimated_rows",
            "The planner's row estimate (pg_class.reltuples; 0 before the first ANALYZE).",
            &l,
            t.reltuples,
        );
        out.gauge_named(
            "perfwatch_postgres_table_size_bytes",
            "Total size of the table with its indexes and TOAST (pg_total_relation_size).",
            &l,
            t.total_bytes,
        );
        if pos < n_kept {
            out.gauge_named(
                "perfwatch_postgres_missing_index_candidate",
                "1 when the table is mostly scanned sequentially while big (see min_table_rows, min_seq_scans, seq_ratio): it likely misses an index.",
                &l,
                if rule.candidate(t) { 1.0 } else { 0.0 },
            );
        }
    }
}

/// The `[[postgres]]` collector kind (registered in `collectors::register_kinds!`).
pub struct PostgresKind;

impl super::Kind for PostgresKind {
    const SECTION: &'static str = "postgres";
    const METRIC_PREFIXES: &'static [&'static str] = &["pg_", "perfwatch_postgres_"];
    const CATALOG: &'static [&'static crate::catalog::MetricDef] = &[];
    type Config = PostgresConfig;
    type Target = PostgresConfig;
    type Collector = PostgresCollector;

    fn common(config: &PostgresConfig) -> crate::poll::CommonTarget {
        config.common()
    }

    fn validate(config: PostgresConfig) -> Result<PostgresConfig, Vec<(String, String)>> {
        super::checked(config, PostgresConfig::validate)
    }

    fn collector(target: &PostgresConfig, timing: crate::poll::Timing) -> PostgresCollector {
        PostgresCollector::new(target.clone(), timing)
    }
}
