//! The MySQL / MariaDB collector: connections and saturation on every poll,
//! index usage and table growth every `index_interval`, custom SQL metrics
//! on their own intervals.
//!
//! Per poll, on one persistent connection: `SHOW GLOBAL STATUS WHERE …` and
//! `SHOW GLOBAL VARIABLES WHERE …` (2 statements, no new connection). Every
//! `index_interval` up to 6 more read index definitions, foreign keys, table
//! sizes, index sizes and index reads (performance_schema, or MariaDB's
//! userstat tables when performance_schema is off). Raw server facts keep
//! mysqld_exporter's names (plus `target`); counters get `_total`.
//!
//! Connection handling: one connection per target, opened lazily and kept
//! (a pool of one). A new connection first runs `SELECT VERSION(), …` and
//! a `SET SESSION` giving every statement a server-side limit below the poll
//! timeout (`max_statement_time` on MariaDB, `max_execution_time` on MySQL)
//! and `lock_wait_timeout` ≥ 1 s, so a query stuck behind a metadata lock is
//! stopped by the server instead of piling up. A poll that is cut off drops
//! its connection (the engine calls [`Collector::reset`]); the server ends
//! the abandoned statement within its limit, so at most one abandoned
//! connection lingers beside the live one.
//!
//! With `[mysql.statements]`, one more statement per read:
//! `performance_schema.events_statements_summary_by_digest`, fed as deltas
//! into the slow-log digest so the `perfwatch_slow_query_*` families come
//! without a log file; when it is missing the target stays up, degraded.
//!
//! Layout: `config.rs` (the `[[mysql]]` table and DSN), `status.rs` (pure
//! status/variables parsing, saturation, error numbers), `schema.rs` (pure
//! index verdicts, missing-index rule, top-N), `statements.rs` (the digest
//! read and digest-text normalization), this file (I/O and export).

pub mod config;
pub mod schema;
pub mod statements;
pub mod status;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::mysql::{
    MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlRow, MySqlSslMode,
};
use sqlx::{AssertSqlSafe, Connection, Row};

pub use config::MysqlConfig;
use config::{SYSTEM_SCHEMAS, mask_dsn, parse_dsn};
use schema::{ForeignKeys, IndexDef, IndexKey, MissingIndexRule, StatsEpoch, TableKey, TableReads};
use status::{Flavor, Vars};

use super::custom_query::{CustomQueries, CustomQueryConfig, QueryRow};
use super::statement_stats::{Counters, StatementRead, StatementRow, StatementSource};
use crate::counter_window::{CounterWindows, WINDOWS, hit_ratio};
use crate::exposition::Families;
use crate::poll::Timing;
use crate::poll::{Collector, ErrorReason, PollError, PollOutput};

/// Share of the poll timeout a statement may run on the server.
const STATEMENT_BUDGET: f64 = 0.8;

struct Live {
    conn: MySqlConnection,
    flavor: Flavor,
    version: String,
    version_comment: String,
    /// Whether a statement already succeeded on this connection (a failure
    /// of the first statement of a poll on a reused connection is retried
    /// once on a new connection: the server may have closed an idle one).
    used: bool,
}

/// A running MySQL/MariaDB collector.
pub struct MysqlCollector {
    cfg: MysqlConfig,
    timing: Timing,
    live: Option<Live>,
    buffer_pool: CounterWindows,
    queries: CustomQueries,
    last_index_poll: Option<Instant>,
    /// Families of the last index/table pass, re-exported on every poll.
    index_families: Families,
    index_headline: Option<(usize, usize)>,
    stats_epoch: StatsEpoch,
    perf_schema_off: status::WarnOnce,
    section_errors: BTreeMap<(&'static str, ErrorReason), u64>,
    /// Sections that failed with a permission error in the last index pass.
    permission_denied: bool,
    statements: u64,
    connects: u64,
    /// Deadline of the index pass under way (sections past it are skipped).
    pass_deadline: Option<Instant>,
    /// performance_schema statement digests as a slow-query source, keyed by
    /// (SCHEMA_NAME, DIGEST), when configured.
    digests: Option<StatementSource<(String, String)>>,
    /// Why the statement digests cannot be read right now (logged once per
    /// change).
    digests_missing: Option<String>,
}

impl MysqlCollector {
    /// A collector that connects on its first poll.
    pub fn new(cfg: MysqlConfig, timing: Timing) -> Self {
        let digests = cfg
            .statements
            .clone()
            .filter(|s| s.enabled)
            .map(|s| StatementSource::new(s, "performance_schema"));
        Self {
            digests,
            digests_missing: None,
            cfg,
            timing,
            live: None,
            buffer_pool: CounterWindows::new(),
            queries: CustomQueries::default(),
            last_index_poll: None,
            index_families: Families::new(),
            index_headline: None,
            stats_epoch: StatsEpoch::default(),
            perf_schema_off: status::WarnOnce::default(),
            section_errors: BTreeMap::new(),
            permission_denied: false,
            statements: 0,
            connects: 0,
            pass_deadline: None,
        }
    }

    fn err(&self, context: &str, e: &sqlx::Error) -> PollError {
        classify(&self.cfg.name, context, e)
    }

    fn connect_options(&self) -> Result<MySqlConnectOptions, PollError> {
        let name = &self.cfg.name;
        let bad = |m: String| {
            PollError::new(
                ErrorReason::Connect,
                format!("mysql target \"{name}\": {m}"),
            )
        };
        let d = parse_dsn(&self.cfg.dsn).map_err(bad)?;
        let mut o = MySqlConnectOptions::new()
            .host(&d.host)
            .port(d.port)
            .username(&d.user)
            // sqlx is built without TLS support here.
            .ssl_mode(MySqlSslMode::Disabled)
            .statement_cache_capacity(0);
        if let Some(s) = &d.socket {
            o = o.socket(s);
        }
        if let Some(db) = &d.database {
            o = o.database(db);
        }
        let pw = match d.password {
            Some(p) => Some(p),
            None => self
                .cfg
                .resolved_password()
                .map_err(bad)?
                .map(|s| s.expose().to_owned()),
        };
        if let Some(p) = pw {
            o = o.password(&p);
        }
        Ok(o)
    }

    async fn connect(&mut self) -> Result<Live, PollError> {
        let opts = self.connect_options()?;
        let name = self.cfg.name.clone();
        let timeout = self.timing.timeout;
        let mut conn =
            match tokio::time::timeout(timeout, MySqlConnection::connect_with(&opts)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    return Err(self.err(&format!("connecting to {}", mask_dsn(&self.cfg.dsn)), &e));
                }
                Err(_) => {
                    return Err(PollError::new(
                        ErrorReason::Timeout,
                        format!(
                            "mysql target \"{name}\": connecting to {} did not finish within {}",
                            mask_dsn(&self.cfg.dsn),
                            humantime::format_duration(timeout)
                        ),
                    ));
                }
            };
        self.connects += 1;
        let rows = fetch(
            &mut conn,
            "SELECT VERSION(), @@version_comment, CONNECTION_ID()".into(),
            &mut self.statements,
        )
        .await
        .map_err(|e| self.err("reading the server version", &e))?;
        let row = rows.first();
        let version = row.and_then(|r| text(r, 0)).unwrap_or_default();
        let version_comment = row.and_then(|r| text(r, 1)).unwrap_or_default();
        let id = row.and_then(|r| text(r, 2)).unwrap_or_default();
        let flavor = Flavor::detect(&version, &version_comment);
        let budget = timeout.mul_f64(STATEMENT_BUDGET);
        fetch(
            &mut conn,
            status::session_sql(flavor, budget),
            &mut self.statements,
        )
        .await
        .map_err(|e| self.err("setting session timeouts", &e))?;
        tracing::debug!(target_name = %name, %version, connection_id = %id, "connected to mysql");
        Ok(Live {
            conn,
            flavor,
            version,
            version_comment,
            used: false,
        })
    }

    /// Status and variables, retrying once on a fresh connection when a
    /// reused one turns out to be dead.
    async fn read_status(&mut self, live: &mut Live) -> Result<(Vars, Vars), PollError> {
        let result = self.read_status_once(live).await;
        match result {
            Err(e) if live.used && matches!(e, sqlx::Error::Io(_)) => {
                tracing::debug!(target_name = %self.cfg.name, error = %e, "reused connection is dead, reconnecting");
                *live = self.connect().await?;
                self.read_status_once(live)
                    .await
                    .map_err(|e| self.err("reading global status", &e))
            }
            r => r.map_err(|e| self.err("reading global status", &e)),
        }
    }

    async fn read_status_once(&mut self, live: &mut Live) -> Result<(Vars, Vars), sqlx::Error> {
        let s = fetch(&mut live.conn, status::status_sql(), &mut self.statements).await?;
        let v = fetch(
            &mut live.conn,
            status::variables_sql(),
            &mut self.statements,
        )
        .await?;
        live.used = true;
        let pairs = |rows: Vec<MySqlRow>| {
            Vars::from_rows(
                rows.iter()
                    .filter_map(|r| Some((text(r, 0)?, text(r, 1).unwrap_or_default()))),
            )
        };
        Ok((pairs(s), pairs(v)))
    }

    fn section_failed(&mut self, section: &'static str, e: &sqlx::Error) {
        let pe = self.err(section, e);
        if pe.reason == ErrorReason::Permission {
            self.permission_denied = true;
        }
        *self.section_errors.entry((section, pe.reason)).or_default() += 1;
        tracing::warn!(target_name = %self.cfg.name, section, reason = pe.reason.as_str(), error = %pe.message, "mysql statistics section failed; the other metrics continue");
    }

    /// Runs one optional section; `None` (recorded) on a server error, `Err`
    /// when the connection itself broke.
    async fn section(
        &mut self,
        live: &mut Live,
        name: &'static str,
        sql: String,
    ) -> Result<Option<Vec<MySqlRow>>, PollError> {
        // Out of poll time: skip the rest of the pass (retried next
        // index_interval) rather than let the engine cut the poll off.
        if self
            .pass_deadline
            .is_some_and(|d| Instant::now() + Duration::from_millis(20) >= d)
        {
            *self
                .section_errors
                .entry((name, ErrorReason::Timeout))
                .or_default() += 1;
            tracing::warn!(target_name = %self.cfg.name, section = name, "no poll time left for this statistics section; skipped until the next index pass");
            return Ok(None);
        }
        match fetch(&mut live.conn, sql, &mut self.statements).await {
            Ok(rows) => Ok(Some(rows)),
            Err(e @ sqlx::Error::Database(_)) => {
                self.section_failed(name, &e);
                Ok(None)
            }
            Err(e) => Err(self.err(name, &e)),
        }
    }

    /// The index and table pass.
    async fn index_pass(
        &mut self,
        live: &mut Live,
        vars: &Vars,
        status: &Vars,
    ) -> Result<(), PollError> {
        self.permission_denied = false;
        let target = self.cfg.name.clone();
        let mut out = Families::new();
        let filter = match self.cfg.schemas() {
            None => Some(format!(
                "NOT IN ({})",
                status::quote_list(SYSTEM_SCHEMAS.iter().copied())
            )),
            Some(list) if list.is_empty() => None,
            Some(list) => Some(format!(
                "IN ({})",
                status::quote_list(list.iter().map(String::as_str))
            )),
        };
        let Some(filter) = filter else {
            self.index_families = out;
            self.index_headline = None;
            return Ok(());
        };
        let perf_schema = vars.flag("performance_schema").unwrap_or(false);
        let userstat = vars.flag("userstat").unwrap_or(false);
        let page_size = vars.number("innodb_page_size").unwrap_or(16384.0);

        // Definitions and foreign keys.
        let defs = self
            .section(
                live,
                "index_definitions",
                format!(
                    "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA {filter}"
                ),
            )
            .await?
            .map(|rows| {
                schema::index_defs(
                    rows.iter()
                        .filter_map(|r| {
                            Some((
                                text(r, 0)?,
                                text(r, 1)?,
                                text(r, 2)?,
                                number(r, 3) != 0,
                                number(r, 4) as u32,
                                text(r, 5).unwrap_or_default(),
                            ))
                        })
                        .collect(),
                )
            })
            .unwrap_or_default();
        let fks = self
            .section(
                live,
                "foreign_keys",
                format!(
                    "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, ORDINAL_POSITION FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_NAME IS NOT NULL AND TABLE_SCHEMA {filter}"
                ),
            )
            .await?
            .map(|rows| {
                schema::foreign_keys(
                    rows.iter()
                        .filter_map(|r| Some((text(r, 0)?, text(r, 1)?, text(r, 2)?, text(r, 3)?, number(r, 4) as u32)))
                        .collect(),
                )
            })
            .unwrap_or_default();

        // Tables: rows and sizes.
        let tables: Vec<(TableKey, u64, u64, u64, u64)> = self
            .section(
                live,
                "tables",
                format!(
                    "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, DATA_FREE FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA {filter} ORDER BY TABLE_SCHEMA, TABLE_NAME"
                ),
            )
            .await?
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| Some(((text(r, 0)?, text(r, 1)?), number(r, 2), number(r, 3), number(r, 4), number(r, 5))))
                    .collect()
            })
            .unwrap_or_default();
        let table_rows: BTreeMap<TableKey, u64> = tables
            .iter()
            .map(|(k, rows, ..)| (k.clone(), *rows))
            .collect();
        export_tables(&target, &tables, self.cfg.max_tables, &mut out);

        // Index sizes (InnoDB persistent stats; partitions summed).
        let mut sizes: BTreeMap<IndexKey, f64> = BTreeMap::new();
        if let Some(rows) = self
            .section(
                live,
                "index_sizes",
                format!(
                    "SELECT database_name, table_name, index_name, stat_value FROM mysql.innodb_index_stats WHERE stat_name = 'size' AND database_name {filter}"
                ),
            )
            .await?
        {
            for r in &rows {
                if let (Some(s), Some(t), Some(i)) = (text(r, 0), text(r, 1), text(r, 2)) {
                    let t = t.split("#P#").next().unwrap_or_default().to_owned();
                    *sizes.entry((s, t, i)).or_default() += number(r, 3) as f64 * page_size;
                }
            }
        }

        // Read statistics.
        let mut index_reads: Option<BTreeMap<IndexKey, u64>> = None;
        let mut table_reads: Option<BTreeMap<TableKey, TableReads>> = None;
        let mut source = "none";
        if perf_schema {
            if let Some(rows) = self
                .section(
                    live,
                    "index_io_waits",
                    format!(
                        "SELECT OBJECT_SCHEMA, OBJECT_NAME, INDEX_NAME, COUNT_READ, COUNT_FETCH, COUNT_INSERT, COUNT_UPDATE, COUNT_DELETE FROM performance_schema.table_io_waits_summary_by_index_usage WHERE OBJECT_TYPE = 'TABLE' AND OBJECT_SCHEMA {filter} ORDER BY OBJECT_SCHEMA, OBJECT_NAME, INDEX_NAME"
                    ),
                )
                .await?
            {
                source = "performance_schema";
                let io: Vec<IoRow> = rows
                    .iter()
                    .filter_map(|r| {
                        Some(IoRow {
                            schema: text(r, 0)?,
                            table: text(r, 1)?,
                            index: text(r, 2),
                            read: number(r, 3),
                            ops: [number(r, 4), number(r, 5), number(r, 6), number(r, 7)],
                        })
                    })
                    .collect();
                export_io_waits(&target, &io, self.cfg.max_indexes, &mut out);
                let ps: Vec<(String, String, Option<String>, u64)> =
                    io.iter().map(|r| (r.schema.clone(), r.table.clone(), r.index.clone(), r.read)).collect();
                table_reads = Some(schema::table_reads_from_perf_schema(&ps));
                index_reads = Some(
                    io.iter()
                        .filter_map(|r| Some(((r.schema.clone(), r.table.clone(), r.index.clone()?), r.read)))
                        .collect(),
                );
            }
        } else if userstat {
            let idx = self
                .section(
                    live,
                    "index_statistics",
                    format!("SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, ROWS_READ FROM information_schema.INDEX_STATISTICS WHERE TABLE_SCHEMA {filter}"),
                )
                .await?;
            let tbl = self
                .section(
                    live,
                    "table_statistics",
                    format!("SELECT TABLE_SCHEMA, TABLE_NAME, ROWS_READ FROM information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA {filter}"),
                )
                .await?;
            if let (Some(idx), Some(tbl)) = (idx, tbl) {
                source = "userstat";
                let ir: BTreeMap<IndexKey, u64> = idx
                    .iter()
                    .filter_map(|r| Some(((text(r, 0)?, text(r, 1)?, text(r, 2)?), number(r, 3))))
                    .collect();
                let tr: BTreeMap<TableKey, u64> = tbl
                    .iter()
                    .filter_map(|r| Some(((text(r, 0)?, text(r, 1)?), number(r, 2))))
                    .collect();
                table_reads = Some(schema::table_reads_from_userstat(&tr, &ir));
                index_reads = Some(ir);
            }
        }
        out.gauge_named(
            "perfwatch_mysql_index_stats_source_info",
            "A constant 1 naming where index read counts come from: performance_schema, userstat (MariaDB INDEX_STATISTICS) or none (sizes and definitions only, no unused/missing-index verdicts).",
            &[("target", &target), ("source", source)],
            1.0,
        );
        if let Some(reads) = &table_reads {
            let total: u64 = reads.values().map(|r| r.full_scan + r.via_index).sum();
            let uptime = status.number("Uptime").unwrap_or(0.0);
            let age = self
                .stats_epoch
                .observe(total, uptime, crate::poll::unix_now());
            out.gauge_named(
                "perfwatch_mysql_stats_age_seconds",
                "Seconds of history behind the index read counts (since the server started or the statistics were last seen reset); judge unused indexes only once this covers a full business cycle.",
                &[("target", &target)],
                age,
            );
        }
        let unused = export_indexes(
            &target,
            &defs,
            &fks,
            &sizes,
            index_reads.as_ref(),
            self.cfg.max_indexes,
            &mut out,
        );
        let rule = MissingIndexRule {
            min_rows: self.cfg.missing_index_min_rows,
            min_full_scan_ratio: self.cfg.missing_index_min_full_scan_ratio,
        };
        let candidates = table_reads.as_ref().map(|r| {
            export_table_reads(&target, r, &table_rows, rule, self.cfg.max_tables, &mut out)
        });
        self.index_headline = Some((unused.unwrap_or(0), candidates.unwrap_or(0)));
        self.index_families = out;
        Ok(())
    }

    /// Reads the statement digests when due: one statement. A missing
    /// source (performance_schema off, consumer off, no privilege) is
    /// exported as `perfwatch_slow_query_source_up 0` and logged once;
    /// `Err` only when the connection itself broke.
    async fn read_statements(
        &mut self,
        live: &mut Live,
        vars: &Vars,
        deadline: Instant,
    ) -> Result<(), PollError> {
        let Some(src) = &mut self.digests else {
            return Ok(());
        };
        if !src.due()
            || deadline.saturating_duration_since(Instant::now()) < Duration::from_millis(20)
        {
            return Ok(());
        }
        src.attempt();
        let max_rows = src.cfg.max_rows;
        let missing = if vars.flag("performance_schema") == Some(false) {
            Some(
                "performance_schema is OFF (set performance_schema=ON and restart the server)"
                    .to_owned(),
            )
        } else {
            match fetch(
                &mut live.conn,
                statements::digest_sql(max_rows),
                &mut self.statements,
            )
            .await
            {
                Ok(rows) => self.record_statements(&rows, max_rows),
                Err(e @ sqlx::Error::Database(_)) => {
                    let pe = self.err(
                        "reading performance_schema.events_statements_summary_by_digest",
                        &e,
                    );
                    let hint = if pe.reason == ErrorReason::Permission {
                        " (GRANT SELECT ON performance_schema.* TO <user>)"
                    } else {
                        ""
                    };
                    Some(format!("{}{hint}", pe.message))
                }
                Err(e) => return Err(self.err("reading statement digests", &e)),
            }
        };
        let target = &self.cfg.name;
        match missing {
            Some(what) => {
                if let Some(src) = &mut self.digests {
                    src.record_down();
                }
                if self.digests_missing.as_deref() != Some(what.as_str()) {
                    tracing::warn!(target_name = %target, missing = %what, "mysql statement digests unavailable; no perfwatch_slow_query_* from them, the target's other metrics continue");
                    self.digests_missing = Some(what);
                }
            }
            None => {
                if self.digests_missing.take().is_some() {
                    tracing::info!(target_name = %target, "mysql statement digests readable again");
                }
            }
        }
        Ok(())
    }

    /// Feeds one read into the source; `Some(what is missing)` when the
    /// digest consumer is off.
    fn record_statements(&mut self, rows: &[MySqlRow], max_rows: usize) -> Option<String> {
        let enabled = rows
            .first()
            .and_then(|r| text(r, 0))
            .is_some_and(|e| e.eq_ignore_ascii_case("YES"));
        if !enabled {
            return Some("the statements_digest consumer is disabled (UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME = 'statements_digest')".into());
        }
        const PICO: f64 = 1e12;
        let read: Vec<StatementRow<(String, String)>> = rows
            .iter()
            .filter_map(|r| {
                let digest = text(r, 2)?;
                let schema = text(r, 1).unwrap_or_default();
                Some(StatementRow {
                    key: (schema.clone(), digest),
                    db: schema,
                    query: statements::digest_text_to_sql(&text(r, 3).unwrap_or_default()),
                    counters: Counters {
                        calls: number(r, 4),
                        total_seconds: number(r, 5) as f64 / PICO,
                        lock_seconds: number(r, 6) as f64 / PICO,
                        rows_sent: number(r, 7),
                        rows_examined: number(r, 8),
                        full_scans: number(r, 9),
                        max_seconds: number(r, 11) as f64 / PICO,
                    },
                    age_seconds: text(r, 12)
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .map(|us| us / 1e6),
                })
            })
            .collect();
        let full = read.len() >= max_rows;
        if let Some(src) = &mut self.digests {
            src.record(StatementRead {
                rows: read,
                full,
                reset_epoch: None,
            });
        }
        None
    }

    async fn run_custom_queries(&mut self, live: &mut Live, deadline: Instant) -> bool {
        let queries: Vec<CustomQueryConfig> = self.cfg.query.clone();
        self.queries.retain(&queries);
        for q in &queries {
            let now = Instant::now();
            if !self.queries.due(q, self.timing.interval, now) {
                continue;
            }
            let remaining = deadline.saturating_duration_since(now);
            if remaining < Duration::from_millis(20) {
                break;
            }
            let limit = q.timeout.unwrap_or(self.timing.timeout).min(remaining);
            let sql = status::with_statement_timeout(live.flavor, &q.sql, limit);
            let started = Instant::now();
            // Server-side limit first; the client-side one is the backstop
            // (MySQL, or a server that does not answer).
            let client_limit = remaining.min(limit + Duration::from_millis(200));
            let result = tokio::time::timeout(
                client_limit,
                fetch(&mut live.conn, sql, &mut self.statements),
            )
            .await;
            let took = started.elapsed();
            match result {
                Ok(Ok(rows)) => match query_rows(q, &rows) {
                    Ok(rows) => self.queries.record_rows(q, rows, took),
                    Err(m) => {
                        tracing::warn!(target_name = %self.cfg.name, query = %q.name, error = %m, "custom query result unusable");
                        self.queries.record_error(q, took);
                    }
                },
                Ok(Err(e)) => {
                    let pe = self.err(&format!("custom query \"{}\"", q.name), &e);
                    tracing::warn!(target_name = %self.cfg.name, query = %q.name, reason = pe.reason.as_str(), error = %pe.message, "custom query failed");
                    self.queries.record_error(q, took);
                    if !matches!(e, sqlx::Error::Database(_)) {
                        return false;
                    }
                }
                Err(_) => {
                    tracing::warn!(target_name = %self.cfg.name, query = %q.name, "custom query did not finish within {}; dropping the connection", humantime::format_duration(client_limit));
                    self.queries.record_error(q, took);
                    return false;
                }
            }
        }
        true
    }

    fn export(
        &mut self,
        live: &Live,
        st: &Vars,
        vars: &Vars,
        out: &mut Families,
    ) -> Vec<(String, String)> {
        let target = self.cfg.name.as_str();
        let t = [("target", target)];
        for (field, name, help) in STATUS_GAUGES {
            if let Some(v) = st.number(field) {
                out.gauge_named(name, help, &t, v);
            }
        }
        for (field, name, help) in STATUS_COUNTERS {
            if let Some(v) = st.number(field) {
                out.counter_named(name, help, &t, v);
            }
        }
        for (error, n) in st.with_prefix("Connection_errors_") {
            out.counter_named(
                "mysql_global_status_connection_errors_total",
                "Connection errors by kind (Connection_errors_*; max_connections = refused because the server was full).",
                &[("target", target), ("error", &error)],
                n as f64,
            );
        }
        let handlers = st.with_prefix("Handler_read_");
        for (h, n) in &handlers {
            let handler = format!("read_{h}");
            out.counter_named(
                "mysql_global_status_handlers_total",
                "Handler read calls (read_rnd_next = rows read by full table scans).",
                &[("target", target), ("handler", &handler)],
                *n as f64,
            );
        }
        if let Some(r) = status::full_scan_read_ratio(&handlers) {
            out.gauge_named(
                "perfwatch_mysql_full_scan_read_ratio",
                "Handler_read_rnd_next / all Handler_read_* since the server started: the share of row reads done by full table scans.",
                &t,
                r,
            );
        }
        let max_conn = vars.number("max_connections");
        if let Some(m) = max_conn {
            out.gauge_named(
                "mysql_global_variables_max_connections",
                "The max_connections server variable.",
                &t,
                m,
            );
        }
        if let (Some(tc), Some(m)) = (st.number("Threads_connected"), max_conn)
            && let Some(r) = status::saturation(tc, 1.0, m)
        {
            out.gauge_named(
                "perfwatch_pool_saturation_ratio",
                "Connections in use / connection limit. source=mysql: (Threads_connected - perfwatch's own connection) / max_connections.",
                &[("source", "mysql"), ("target", target)],
                r,
            );
        }
        let version = vars.text("version").unwrap_or(&live.version);
        let comment = vars
            .text("version_comment")
            .unwrap_or(&live.version_comment);
        out.gauge_named(
            "mysql_version_info",
            "A constant 1 labelled with the server version.",
            &[
                ("target", target),
                ("version", version),
                ("version_comment", comment),
                ("flavor", live.flavor.as_str()),
            ],
            1.0,
        );

        // Buffer pool hit ratio, windowed like the cache hit ratio.
        let (hits, misses) = status::buffer_pool_hits_misses(
            st.counter("Innodb_buffer_pool_read_requests").unwrap_or(0),
            st.counter("Innodb_buffer_pool_reads").unwrap_or(0),
        );
        // The server's start time is the counters' epoch.
        let uptime = st.number("Uptime").unwrap_or(0.0);
        let epoch = format!("{:.0}", ((crate::poll::unix_now() - uptime) / 10.0).round());
        self.buffer_pool
            .observe(Instant::now(), &epoch, hits, misses);
        let mut windows: Vec<(&str, u64, u64)> = WINDOWS
            .iter()
            .filter_map(|(label, w)| {
                self.buffer_pool
                    .delta(*w)
                    .map(|d| (*label, d.hits, d.misses))
            })
            .collect();
        windows.push(("total", hits, misses));
        for (label, h, m) in windows {
            if let Some(r) = hit_ratio(h, m) {
                out.gauge_named(
                    "perfwatch_mysql_buffer_pool_hit_ratio",
                    "InnoDB buffer pool reads served from memory: 1 - Innodb_buffer_pool_reads / Innodb_buffer_pool_read_requests over the window (absent without reads); window=\"total\" is since the server started.",
                    &[("target", target), ("window", label)],
                    r,
                );
            }
        }

        // Degraded modes.
        let perf_schema_off = vars.flag("performance_schema") == Some(false);
        if self.perf_schema_off.observe(perf_schema_off) {
            tracing::warn!(target_name = %target, userstat = vars.flag("userstat").unwrap_or(false), "performance_schema is OFF: no per-index I/O; using MariaDB userstat or index sizes only. Set performance_schema=ON (needs a restart) for full index statistics");
        }
        if perf_schema_off {
            out.gauge_named(
                "perfwatch_collector_degraded",
                "1 when a collector runs with reduced data, by reason (e.g. performance_schema_off, permission_denied).",
                &[("collector", "mysql"), ("target", target), ("reason", "performance_schema_off")],
                1.0,
            );
        }
        if self.permission_denied {
            out.gauge_named(
                "perfwatch_collector_degraded",
                "1 when a collector runs with reduced data, by reason (e.g. performance_schema_off, permission_denied).",
                &[("collector", "mysql"), ("target", target), ("reason", "permission_denied")],
                1.0,
            );
        }
        for ((section, reason), n) in &self.section_errors {
            out.counter_named(
                "perfwatch_mysql_section_errors_total",
                "Statistics sections (index definitions, sizes, reads, tables) that failed; the target's other metrics continue.",
                &[("target", target), ("section", section), ("reason", reason.as_str())],
                *n as f64,
            );
        }
        out.counter_named(
            "perfwatch_mysql_statements_total",
            "Statements perfwatch sent to the server (its own load: 2 per poll, more on index passes and custom queries).",
            &t,
            self.statements as f64,
        );
        out.counter_named(
            "perfwatch_mysql_connects_total",
            "Connections perfwatch opened to the server (one, kept across polls; more only after errors).",
            &t,
            self.connects as f64,
        );
        out.extend(self.index_families.clone().into_vec());
        self.queries.export(&self.cfg.query, target, out);
        if let Some(src) = &self.digests {
            src.export(target, out);
            if !src.is_up() {
                out.gauge_named(
                    "perfwatch_collector_degraded",
                    "1 when a collector runs with reduced data, by reason (e.g. performance_schema_off, permission_denied).",
                    &[("collector", "mysql"), ("target", target), ("reason", "statements_unavailable")],
                    1.0,
                );
            }
        }

        let mut headline = vec![("version".to_owned(), version.to_owned())];
        if let (Some(tc), Some(m)) = (st.number("Threads_connected"), max_conn) {
            headline.push(("connections".into(), format!("{tc} / {m}")));
        }
        if let Some((unused, missing)) = self.index_headline {
            headline.push(("unused indexes".into(), unused.to_string()));
            headline.push(("missing-index candidates".into(), missing.to_string()));
        }
        headline
    }
}

impl Collector for MysqlCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        let started = Instant::now();
        let deadline = started + self.timing.timeout.mul_f64(0.9);
        // Taken out so a poll cut off by the engine drops the connection.
        let mut live = match self.live.take() {
            Some(l) => l,
            None => self.connect().await?,
        };
        let (st, vars) = self.read_status(&mut live).await?;
        let index_due = self
            .last_index_poll
            .is_none_or(|t| t.elapsed() >= self.cfg.index_interval);
        if index_due {
            // Set first: a pass cut off by the poll deadline is not retried
            // on every poll (it would keep the target down).
            self.last_index_poll = Some(Instant::now());
            self.pass_deadline = Some(deadline);
            let r = self.index_pass(&mut live, &vars, &st).await;
            self.pass_deadline = None;
            r?;
        }
        self.read_statements(&mut live, &vars, deadline).await?;
        let keep = self.run_custom_queries(&mut live, deadline).await;
        let mut families = Families::new();
        let headline = self.export(&live, &st, &vars, &mut families);
        if keep {
            self.live = Some(live);
        }
        Ok(PollOutput { families, headline })
    }

    fn reset(&mut self) {
        self.live = None;
    }

    fn details(&self) -> Option<serde_json::Value> {
        self.digests.as_ref().and_then(StatementSource::details)
    }
}

/// Runs one statement over the text protocol (no prepare round trip, one
/// Question per statement).
async fn fetch(
    conn: &mut MySqlConnection,
    sql: String,
    statements: &mut u64,
) -> Result<Vec<MySqlRow>, sqlx::Error> {
    *statements += 1;
    sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(conn).await
}

/// A column as text (text protocol: every value arrives as text, whatever
/// its SQL type, so BIGINT UNSIGNED and DECIMAL decode the same way).
fn text(row: &MySqlRow, i: usize) -> Option<String> {
    row.try_get_unchecked::<Option<String>, _>(i).ok().flatten()
}

/// A column as an unsigned number (0 when NULL or not a number).
fn number(row: &MySqlRow, i: usize) -> u64 {
    text(row, i)
        .and_then(|s| {
            let s = s.trim();
            s.parse::<u64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(|f| f.max(0.0) as u64))
        })
        .unwrap_or(0)
}

/// Splits custom-query rows into label and value columns.
fn query_rows(q: &CustomQueryConfig, rows: &[MySqlRow]) -> Result<Vec<QueryRow>, String> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = first
        .columns()
        .iter()
        .map(|c| sqlx::Column::name(c).to_owned())
        .collect();
    let find = |want: &str| -> Result<usize, String> {
        names
            .iter()
            .position(|n| n == want)
            .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(want)))
            .ok_or_else(|| {
                format!(
                    "column \"{want}\" not in the result (columns: {})",
                    names.join(", ")
                )
            })
    };
    let label_cols: Vec<(String, usize)> = q
        .labels
        .iter()
        .map(|l| find(l).map(|i| (l.clone(), i)))
        .collect::<Result<_, _>>()?;
    let value_cols: Vec<(String, usize)> = q
        .values
        .iter()
        .map(|v| find(v).map(|i| (v.clone(), i)))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut values = Vec::new();
        for (name, i) in &value_cols {
            let Some(t) = text(r, *i) else { continue };
            let v: f64 = t
                .trim()
                .parse()
                .map_err(|_| format!("column \"{name}\" value \"{t}\" is not a number"))?;
            values.push((name.clone(), v));
        }
        out.push(QueryRow {
            labels: label_cols
                .iter()
                .map(|(name, i)| (name.clone(), text(r, *i).unwrap_or_default()))
                .collect(),
            values,
        });
    }
    Ok(out)
}

/// Maps an sqlx error to a reason and a message naming the target.
fn classify(target: &str, context: &str, e: &sqlx::Error) -> PollError {
    let reason = match e {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<MySqlDatabaseError>() {
            Some(m) => status::reason_for_error_number(m.number()),
            None => ErrorReason::Query,
        },
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => ErrorReason::Timeout,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => ErrorReason::Connect,
        sqlx::Error::PoolTimedOut => ErrorReason::Timeout,
        sqlx::Error::Protocol(_) | sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => {
            ErrorReason::Protocol
        }
        _ => ErrorReason::Query,
    };
    let detail = match e {
        sqlx::Error::Database(db) => {
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|m| m.number().to_string())
                .unwrap_or_default();
            format!("server error {number}: {}", db.message())
        }
        other => other.to_string(),
    };
    PollError::new(
        reason,
        format!("mysql target \"{target}\": {context}: {detail}"),
    )
}

/// One performance_schema index I/O row.
struct IoRow {
    schema: String,
    table: String,
    index: Option<String>,
    read: u64,
    /// fetch, insert, update, delete.
    ops: [u64; 4],
}

const OPERATIONS: [&str; 4] = ["fetch", "insert", "update", "delete"];

fn export_io_waits(target: &str, rows: &[IoRow], max: usize, out: &mut Families) {
    let (kept, rest) = schema::top_n(rows.iter().collect(), max, |r| {
        r.ops.iter().sum::<u64>() as f64
    });
    let name = "mysql_perf_schema_index_io_waits_total";
    let help = "Index I/O operations from performance_schema.table_io_waits_summary_by_index_usage; index=\"NONE\" = rows accessed without an index (full scans). Indexes beyond max_indexes are summed as name=\"other\", index=\"other\" per schema.";
    for r in kept {
        let index = r.index.as_deref().unwrap_or("NONE");
        for (op, n) in OPERATIONS.iter().zip(r.ops) {
            out.counter_named(
                name,
                help,
                &[
                    ("target", target),
                    ("schema", &r.schema),
                    ("name", &r.table),
                    ("index", index),
                    ("operation", op),
                ],
                n as f64,
            );
        }
    }
    let mut other: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
    for r in rest {
        let e = other.entry(r.schema.as_str()).or_default();
        for (a, b) in e.iter_mut().zip(r.ops) {
            *a += b;
        }
    }
    for (schema, ops) in other {
        for (op, n) in OPERATIONS.iter().zip(ops) {
            out.counter_named(
                name,
                help,
                &[
                    ("target", target),
                    ("schema", schema),
                    ("name", "other"),
                    ("index", "other"),
                    ("operation", op),
                ],
                n as f64,
            );
        }
    }
}

fn export_tables(
    target: &str,
    tables: &[(TableKey, u64, u64, u64, u64)],
    max: usize,
    out: &mut Families,
) {
    let (kept, rest) = schema::top_n(tables.iter().collect(), max, |t| (t.2 + t.3) as f64);
    let rows_help = "Estimated rows per table (information_schema.TABLES.TABLE_ROWS; InnoDB's is an estimate). Tables beyond max_tables are summed per schema as table=\"other\".";
    let size_help = "Table size in bytes by component (data_length, index_length, data_free) from information_schema.TABLES. Tables beyond max_tables are summed per schema as table=\"other\".";
    let mut emit = |schema: &str, table: &str, rows: u64, data: u64, index: u64, free: u64| {
        let l = [("target", target), ("schema", schema), ("table", table)];
        out.gauge_named("mysql_info_schema_table_rows", rows_help, &l, rows as f64);
        for (component, v) in [
            ("data_length", data),
            ("index_length", index),
            ("data_free", free),
        ] {
            out.gauge_named(
                "mysql_info_schema_table_size",
                size_help,
                &[
                    ("target", target),
                    ("schema", schema),
                    ("table", table),
                    ("component", component),
                ],
                v as f64,
            );
        }
    };
    for ((s, t), rows, data, index, free) in kept {
        emit(s, t, *rows, *data, *index, *free);
    }
    let mut other: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
    for ((s, _), rows, data, index, free) in &rest {
        let e = other.entry(s.as_str()).or_default();
        for (a, b) in e.iter_mut().zip([*rows, *data, *index, *free]) {
            *a += b;
        }
    }
    for (s, [rows, data, index, free]) in other {
        emit(s, "other", rows, data, index, free);
    }
    out.gauge_named(
        "perfwatch_mysql_tables_aggregated",
        "Tables summed into table=\"other\" because of max_tables.",
        &[("target", target)],
        rest.len() as f64,
    );
}

/// Exports index sizes and verdicts; returns the unused count when read
/// statistics exist.
fn export_indexes(
    target: &str,
    defs: &[IndexDef],
    fks: &ForeignKeys,
    sizes: &BTreeMap<IndexKey, f64>,
    reads: Option<&BTreeMap<IndexKey, u64>>,
    max: usize,
    out: &mut Families,
) -> Option<usize> {
    let key = |d: &IndexDef| (d.schema.clone(), d.table.clone(), d.index.clone());
    let unused =
        |d: &IndexDef| reads.is_some_and(|r| schema::is_unused(d, fks, r.get(&key(d)).copied()));
    let redundant: BTreeMap<(String, String, String), String> = schema::redundant_indexes(defs)
        .into_iter()
        .map(|(a, b)| (key(a), b.index.clone()))
        .collect();
    let size = |d: &IndexDef| sizes.get(&key(d)).copied();
    // Unused and redundant ones first, then the biggest.
    let (kept, rest) = schema::top_n(defs.iter().collect(), max, |d| {
        let flag = if unused(d) || redundant.contains_key(&key(d)) {
            1e18
        } else {
            0.0
        };
        flag + size(d).unwrap_or(0.0)
    });
    for d in &kept {
        let l = [
            ("target", target),
            ("schema", d.schema.as_str()),
            ("table", d.table.as_str()),
            ("index", d.index.as_str()),
        ];
        if let Some(s) = size(d) {
            out.gauge_named(
                "perfwatch_mysql_index_size_bytes",
                "Index size (mysql.innodb_index_stats size pages × innodb_page_size). Indexes beyond max_indexes are summed per schema as table=\"other\", index=\"other\".",
                &l,
                s,
            );
        }
        if reads.is_some() && schema::eligible_for_unused(d, fks) {
            out.gauge_named(
                "perfwatch_mysql_index_unused",
                "1 when the index had no reads since the statistics began (see perfwatch_mysql_stats_age_seconds), 0 when it was read. PRIMARY, UNIQUE and foreign-key indexes are never judged.",
                &l,
                if unused(d) { 1.0 } else { 0.0 },
            );
        }
        if let Some(by) = redundant.get(&key(d)) {
            out.gauge_named(
                "perfwatch_mysql_index_redundant",
                "1 when the index's columns are a leading prefix of (or equal to) another index of the table, named in covered_by.",
                &[("target", target), ("schema", d.schema.as_str()), ("table", d.table.as_str()), ("index", d.index.as_str()), ("covered_by", by.as_str())],
                1.0,
            );
        }
    }
    let mut other: BTreeMap<&str, f64> = BTreeMap::new();
    for d in &rest {
        if let Some(s) = size(d) {
            *other.entry(d.schema.as_str()).or_default() += s;
        }
    }
    for (s, bytes) in other {
        out.gauge_named(
            "perfwatch_mysql_index_size_bytes",
            "Index size (mysql.innodb_index_stats size pages × innodb_page_size). Indexes beyond max_indexes are summed per schema as table=\"other\", index=\"other\".",
            &[("target", target), ("schema", s), ("table", "other"), ("index", "other")],
            bytes,
        );
    }
    out.gauge_named(
        "perfwatch_mysql_indexes_aggregated",
        "Indexes summed into index=\"other\" because of max_indexes.",
        &[("target", target)],
        rest.len() as f64,
    );
    out.gauge_named(
        "perfwatch_mysql_redundant_indexes",
        "Indexes whose columns are a prefix of another index of the same table.",
        &[("target", target)],
        redundant.len() as f64,
    );
    reads?;
    let unused_defs: Vec<&IndexDef> = defs.iter().filter(|d| unused(d)).collect();
    out.gauge_named(
        "perfwatch_mysql_unused_indexes",
        "Indexes with no reads since the statistics began (PRIMARY, UNIQUE and foreign-key indexes excluded).",
        &[("target", target)],
        unused_defs.len() as f64,
    );
    out.gauge_named(
        "perfwatch_mysql_unused_index_bytes",
        "Total size of the unused indexes: space and write work spent on indexes nothing reads.",
        &[("target", target)],
        unused_defs.iter().filter_map(|d| size(d)).sum(),
    );
    Some(unused_defs.len())
}

/// Exports per-table read shares and missing-index candidates; returns the
/// candidate count.
fn export_table_reads(
    target: &str,
    reads: &BTreeMap<TableKey, TableReads>,
    table_rows: &BTreeMap<TableKey, u64>,
    rule: MissingIndexRule,
    max: usize,
    out: &mut Families,
) -> usize {
    // Only tables perfwatch knows the size of (the examined schemas' base tables).
    let items: Vec<(&TableKey, &TableReads, u64)> = reads
        .iter()
        .filter_map(|(k, r)| Some((k, r, *table_rows.get(k)?)))
        .collect();
    let candidates = items
        .iter()
        .filter(|(_, r, rows)| rule.is_candidate(*rows, r))
        .count();
    let (kept, rest) = schema::top_n(items, max, |(_, r, _)| r.full_scan as f64);
    // Tables beyond max_tables are summed per schema as table="other", like
    // the size families, so sums over the family stay the server's totals.
    let mut other: BTreeMap<&str, TableReads> = BTreeMap::new();
    for (k, r, _) in &rest {
        let o = other.entry(k.0.as_str()).or_default();
        o.full_scan += r.full_scan;
        o.via_index += r.via_index;
    }
    for (schema, r) in &other {
        for (access, n) in [("full_scan", r.full_scan), ("index", r.via_index)] {
            out.counter_named(
                "perfwatch_mysql_table_rows_read_total",
                "Rows read from the table since the statistics began, by access: full_scan (no index) or index. Tables beyond max_tables are summed per schema as table=\"other\".",
                &[("target", target), ("schema", schema), ("table", "other"), ("access", access)],
                n as f64,
            );
        }
    }
    for (k, r, rows) in kept {
        let l = [
            ("target", target),
            ("schema", k.0.as_str()),
            ("table", k.1.as_str()),
        ];
        for (access, n) in [("full_scan", r.full_scan), ("index", r.via_index)] {
            out.counter_named(
                "perfwatch_mysql_table_rows_read_total",
                "Rows read from the table since the statistics began, by access: full_scan (no index) or index. Tables beyond max_tables are summed per schema as table=\"other\".",
                &[("target", target), ("schema", k.0.as_str()), ("table", k.1.as_str()), ("access", access)],
                n as f64,
            );
        }
        if let Some(ratio) = r.full_scan_ratio() {
            out.gauge_named(
                "perfwatch_mysql_table_full_scan_ratio",
                "Share of the table's rows read without an index since the statistics began.",
                &l,
                ratio,
            );
        }
        out.gauge_named(
            "perfwatch_mysql_missing_index_candidate",
            "1 when the table has at least missing_index_min_rows rows and at least missing_index_min_full_scan_ratio of its reads were full scans.",
            &l,
            if rule.is_candidate(rows, r) { 1.0 } else { 0.0 },
        );
    }
    out.gauge_named(
        "perfwatch_mysql_missing_index_candidates",
        "Tables flagged by perfwatch_mysql_missing_index_candidate.",
        &[("target", target)],
        candidates as f64,
    );
    candidates
}

/// Status fields exported as gauges: (variable, metric, help).
const STATUS_GAUGES: &[(&str, &str, &str)] = &[
    (
        "Threads_connected",
        "mysql_global_status_threads_connected",
        "Open client connections (Threads_connected), perfwatch's own included.",
    ),
    (
        "Threads_running",
        "mysql_global_status_threads_running",
        "Connections running a statement (Threads_running).",
    ),
    (
        "Max_used_connections",
        "mysql_global_status_max_used_connections",
        "Most connections open at once since the server started.",
    ),
    (
        "Uptime",
        "mysql_global_status_uptime",
        "Seconds since the server started.",
    ),
];

/// Status counters: (variable, metric, help). mysqld_exporter exports these
/// without `_total`; perfwatch types them as counters, which need it.
const STATUS_COUNTERS: &[(&str, &str, &str)] = &[
    (
        "Aborted_connects",
        "mysql_global_status_aborted_connects_total",
        "Failed connection attempts (Aborted_connects; mysqld_exporter: mysql_global_status_aborted_connects).",
    ),
    (
        "Aborted_clients",
        "mysql_global_status_aborted_clients_total",
        "Connections closed without a proper quit (Aborted_clients).",
    ),
    (
        "Connections",
        "mysql_global_status_connections_total",
        "Connection attempts, successful or not (Connections).",
    ),
    (
        "Questions",
        "mysql_global_status_questions_total",
        "Statements sent by clients (Questions).",
    ),
    (
        "Slow_queries",
        "mysql_global_status_slow_queries_total",
        "Statements slower than long_query_time (Slow_queries; mysqld_exporter: mysql_global_status_slow_queries).",
    ),
    (
        "Innodb_buffer_pool_read_requests",
        "mysql_global_status_innodb_buffer_pool_read_requests_total",
        "Logical reads from the InnoDB buffer pool.",
    ),
    (
        "Innodb_buffer_pool_reads",
        "mysql_global_status_innodb_buffer_pool_reads_total",
        "Logical reads the buffer pool could not serve (read from disk).",
    ),
];

/// The `[[mysql]]` collector kind (registered in `collectors::register_kinds!`).
pub struct MysqlKind;

impl super::Kind for MysqlKind {
    const SECTION: &'static str = "mysql";
    const METRIC_PREFIXES: &'static [&'static str] = &["mysql_", "perfwatch_mysql_"];
    const CATALOG: &'static [&'static crate::catalog::MetricDef] = &[];
    type Config = MysqlConfig;
    type Target = MysqlConfig;
    type Collector = MysqlCollector;

    fn common(config: &MysqlConfig) -> crate::poll::CommonTarget {
        config.common()
    }

    fn validate(config: MysqlConfig) -> Result<MysqlConfig, Vec<(String, String)>> {
        super::checked(config, MysqlConfig::validate)
    }

    fn collector(target: &MysqlConfig, timing: crate::poll::Timing) -> MysqlCollector {
        MysqlCollector::new(target.clone(), timing)
    }
}
