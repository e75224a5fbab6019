//! The MySQL / MariaDB collector: connections and saturation on every poll,
//! index usage and table growth every `index_interval`, custom SQL metrics
//! on their own intervals.
//!
//! Per poll, on one persistent connection: `SHOW GLOBAL STATUS` and
//! `SHOW GLOBAL VARIABLES [WHERE …]` (2 statements, no new connection; all
//! variables on a new connection and every 5 minutes, the few perfwatch
//! judges by in between). mysqld_exporter's `mysql_global_status_*` and
//! `mysql_global_variables_*` families come from those rows (`compat.rs`). Every
//! `index_interval` up to 6 more read index definitions, foreign keys, table
//! sizes, index sizes and index reads (performance_schema, or MariaDB's
//! userstat tables when performance_schema is off). Raw server facts keep
//! mysqld_exporter's names (plus `target`); counters get `_total`.
//!
//! Connection handling: one connection per target, opened lazily and kept,
//! with server-side statement limits (`session.rs`). A poll that is cut off drops
//! its connection (the engine calls [`Collector::reset`]); the server ends
//! the abandoned statement within its limit, so at most one abandoned
//! connection lingers beside the live one.
//!
//! With `[mysql.statements]`, one more statement per read:
//! `performance_schema.events_statements_summary_by_digest`, fed as deltas
//! into the slow-log digest so the `perfwatch_slow_query_*` families come
//! without a log file; when it is missing the target stays up, degraded.
//!
//! Layout: `config.rs` (the `[[mysql]]` table, validated into a ready
//! [`MysqlTarget`]), `dsn.rs` (DSN parsing), `session.rs` (the connection,
//! session limits, error classification), `sql.rs` (statement texts, fetch
//! and row decoding), `status.rs` (pure status/variables parsing,
//! saturation, error numbers), `schema.rs` (pure index verdicts,
//! missing-index rule, top-N), `index_pass.rs` (the index and table pass in
//! named steps), `metrics.rs` and `index_metrics.rs` (pure export),
//! `compat.rs` (mysqld_exporter's generic families), `catalog.rs` (the
//! families), `statements.rs` (the digest read and
//! digest-text normalization), this file (what one poll does, and the kind).

pub(crate) mod catalog;
mod compat;
mod config;
mod dsn;
mod explain;
mod index_metrics;
mod index_pass;
mod metrics;
mod schema;
mod session;
mod sql;
pub(crate) mod statements;
mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlRow};

pub use config::{MysqlConfig, MysqlReady, MysqlTarget};
use schema::StatsEpoch;
use session::Live;
use sql::fetch;
use status::Vars;

use super::custom_query::{CustomQueries, CustomQueryConfig};
use super::statement_stats::{StatementRead, StatementSource};
use crate::counter_window::{CounterWindows, WINDOWS};
use crate::exposition::Families;
use crate::poll::{Collector, ErrorReason, PollError, PollOutput, Timing};

/// A running MySQL/MariaDB collector.
pub struct MysqlCollector {
    cfg: MysqlTarget,
    /// Connect options with the password applied (parsed at validation).
    options: Arc<MySqlConnectOptions>,
    /// Schemas the index pass examines (see `MysqlTarget::schemas`).
    schemas: Option<Vec<String>>,
    /// The DSN with its password masked, for messages.
    dsn_shown: String,
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
    /// More status variables or global variables than `compat::MAX_VARIABLES`.
    too_many_variables: status::WarnOnce,
    /// The last processlist read (`processlist = true`); `None` when it
    /// failed (counted in the section errors).
    processlist: Option<compat::Processlist>,
    /// The last slave status read (empty: no replica) and when; read on
    /// every poll while the server is a replica.
    slave_status: Option<compat::SlaveStatus>,
    slave_status_read: Option<Instant>,
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
    /// Plans of slow-log examples (`[mysql.explain]`, `explain.rs`), with
    /// the board they come from (attached before the first poll).
    explainer: Option<crate::explain::Explainer>,
    board: Option<Arc<crate::explain::Board>>,
}

impl MysqlCollector {
    /// A collector for a checked target; it connects on its first poll.
    pub(crate) fn new(target: &MysqlTarget, timing: Timing) -> Self {
        let cfg = target.clone();
        Self {
            digests: StatementSource::configured(cfg.statements.as_ref(), "performance_schema"),
            digests_missing: None,
            options: Arc::clone(&target.ready.options),
            schemas: target.ready.schemas.clone(),
            dsn_shown: target.ready.dsn_shown.clone(),
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
            too_many_variables: status::WarnOnce::default(),
            processlist: None,
            slave_status: None,
            slave_status_read: None,
            section_errors: BTreeMap::new(),
            permission_denied: false,
            statements: 0,
            connects: 0,
            pass_deadline: None,
            explainer: target.explain.clone().map(|e| {
                crate::explain::Explainer::new(
                    e,
                    &target.common.name,
                    crate::explain::advice::Dialect::Mysql,
                )
            }),
            board: None,
        }
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
        let target = &self.cfg.common.name;
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
        let Some(read) = sql::digest_rows(rows) else {
            return Some("the statements_digest consumer is disabled (UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME = 'statements_digest')".into());
        };
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

    /// Runs the due custom queries; `false` when the connection must be
    /// dropped (it broke, or a query outlived its limit).
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
                Ok(Ok(rows)) => match sql::query_rows(q, &rows) {
                    Ok(rows) => self.queries.record_rows(q, rows, took),
                    Err(m) => {
                        tracing::warn!(target_name = %self.cfg.common.name, query = %q.name, error = %m, "custom query result unusable");
                        self.queries.record_error(q, took);
                    }
                },
                Ok(Err(e)) => {
                    let pe = self.err(&format!("custom query \"{}\"", q.name), &e);
                    tracing::warn!(target_name = %self.cfg.common.name, query = %q.name, reason = pe.reason.as_str(), error = %pe.message, "custom query failed");
                    self.queries.record_error(q, took);
                    if !matches!(e, sqlx::Error::Database(_)) {
                        return false;
                    }
                }
                Err(_) => {
                    tracing::warn!(target_name = %self.cfg.common.name, query = %q.name, "custom query did not finish within {}; dropping the connection", humantime::format_duration(client_limit));
                    self.queries.record_error(q, took);
                    return false;
                }
            }
        }
        true
    }

    /// Exports everything of this poll; returns the landing-page headline.
    fn export(
        &mut self,
        live: &Live,
        st: &Vars,
        vars: &Vars,
        out: &mut Families,
    ) -> Vec<(String, String)> {
        let target = self.cfg.common.name.as_str();
        let version = vars.text("version").unwrap_or(&live.version);
        let server = metrics::Server {
            version,
            version_comment: vars
                .text("version_comment")
                .unwrap_or(&live.version_comment),
            flavor: live.flavor,
        };
        let dropped = metrics::export_status(target, st, vars, &server, out);
        if self.too_many_variables.observe(dropped > 0) {
            tracing::warn!(target_name = %target, dropped, limit = compat::MAX_VARIABLES, "the server lists more status or global variables than perfwatch exports; the rest are left out");
        }

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
        metrics::export_hit_ratios(target, &windows, out);

        // Degraded modes.
        let perf_schema_off = vars.flag("performance_schema") == Some(false);
        if self.perf_schema_off.observe(perf_schema_off) {
            tracing::warn!(target_name = %target, userstat = vars.flag("userstat").unwrap_or(false), "performance_schema is OFF: no per-index I/O; using MariaDB userstat or index sizes only. Set performance_schema=ON (needs a restart) for full index statistics");
        }
        if perf_schema_off {
            metrics::export_degraded(target, "performance_schema_off", out);
        }
        if self.permission_denied {
            metrics::export_degraded(target, "permission_denied", out);
        }
        metrics::export_own_work(
            target,
            &self.section_errors,
            self.statements,
            self.connects,
            out,
        );
        if let Some(rows) = &self.slave_status {
            compat::export_slave_status(target, rows, out);
        }
        if let Some(list) = &self.processlist {
            compat::export_processlist(target, list, out);
        }
        out.extend(self.index_families.clone().into_vec());
        self.queries.export(&self.cfg.query, target, out);
        if let Some(src) = &self.digests {
            src.export(target, out);
            if !src.is_up() {
                metrics::export_degraded(target, "statements_unavailable", out);
            }
        }

        let mut headline = vec![("version".to_owned(), version.to_owned())];
        if let (Some(tc), Some(m)) = (
            st.number("Threads_connected"),
            vars.number("max_connections"),
        ) {
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
        let replica_due = self.slave_status.as_ref().is_some_and(|r| !r.is_empty())
            || self
                .slave_status_read
                .is_none_or(|t| t.elapsed() >= status::FULL_VARIABLES_EVERY);
        if replica_due {
            self.slave_status_read = Some(Instant::now());
            let sql = compat::slave_status_sql(live.flavor).into();
            self.slave_status = self
                .section(&mut live, "slave_status", sql)
                .await?
                .map(|rows| rows.iter().map(sql::named_texts).collect());
        }
        if self.cfg.processlist {
            self.processlist = self
                .section(&mut live, "processlist", compat::PROCESSLIST_SQL.into())
                .await?
                .map(|rows| compat::processlist(rows.iter().filter_map(sql::processlist_row)));
        }
        self.read_statements(&mut live, &vars, deadline).await?;
        self.explain_pass(&mut live, deadline).await?;
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

    fn attach_board(&mut self, board: &Arc<crate::explain::Board>) {
        self.board = Some(board.clone());
    }

    fn details(&self) -> Option<serde_json::Value> {
        self.digests.as_ref().and_then(StatementSource::details)
    }
}
