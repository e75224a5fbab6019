//! The PostgreSQL collector: connections and saturation, index usage (with
//! the unused-index verdict), missing-index candidates, table growth and
//! custom SQL metrics.
//!
//! Per poll, on one persistent connection to the DSN's database: three
//! statements for the connection stats (`pg_stat_activity` grouped by
//! database and state, the connection settings with the replication state,
//! `pg_stat_database` joined with `pg_database`, with database sizes). Index and table stats are heavier: two statements per
//! configured database, only every `index_interval`, on one persistent
//! connection per database (at most `max_databases`); their last result is
//! re-exported in between. A part that fails (permission, lock timeout) is
//! counted in `perfwatch_postgres_part_errors_total` and flagged in
//! `perfwatch_collector_degraded`; the rest of the target keeps working.
//!
//! Connections: one persistent session per database with server-side
//! timeouts, drained rather than dropped after a failure (`session.rs`).
//!
//! With `[postgres.statements]`, one more statement per read on the main
//! session: `pg_stat_statements`, fed as deltas into the slow-log digest so
//! the `perfwatch_slow_query_*` families come without a log file; a missing
//! extension is the failing part `statements`, never a failed poll.
//!
//! Layout: `config.rs` (the `[[postgres]]` table, validated into a ready
//! [`PostgresTarget`]), `session.rs` (connections, session settings,
//! recovery), `sql.rs` (statement texts and row decoding), `rules.rs` (pure
//! verdicts, bounding, SQLSTATE classification), `metrics.rs` (pure export
//! of a poll's results), `catalog.rs` (the families), `statements.rs`
//! (pg_stat_statements as a slow-query source), this file (what one poll
//! does, and the kind).

pub(crate) mod catalog;
mod config;
mod metrics;
mod rules;
mod session;
mod sql;
pub(crate) mod statements;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use config::apply_tls;
pub use config::{PostgresConfig, PostgresReady, PostgresTarget};
use rules::{IndexStat, MissingIndexRule, Setting, TableStat};
use session::{Fail, Sessions};
use sql::{ActivityRow, DatabaseRow, ServerRow, StatementKey};

use super::custom_query::CustomQueries;
use super::statement_stats::{StatementRead, StatementSource};
use crate::explain::advice::{self, Dialect};
use crate::explain::{Board, Candidate, Explainer};
use crate::exposition::Families;
use crate::poll::{Collector, ErrorReason, PollError, PollOutput, Timing};

/// How soon a failing index/table part is retried (capped by index_interval).
const RETRY_FAILED_PART: Duration = Duration::from_secs(60);

/// The last index/table result of one database.
#[derive(Default)]
struct Heavy {
    last_attempt: Option<Instant>,
    indexes: Option<Vec<IndexStat>>,
    tables: Option<Vec<TableStat>>,
    last_success_unix: Option<f64>,
}

/// A running PostgreSQL collector.
pub struct PostgresCollector {
    cfg: PostgresTarget,
    timing: Timing,
    /// The DSN's database (connection stats and custom queries run there).
    main_db: String,
    /// The DSN with its password masked, for messages.
    dsn_shown: String,
    sessions: Sessions,
    heavy: BTreeMap<String, Heavy>,
    custom: CustomQueries,
    /// `(datname, part, reason)` → failures.
    part_errors: BTreeMap<(String, &'static str, ErrorReason), u64>,
    /// `(datname, part)` → reason, for parts failing right now.
    failing: BTreeMap<(String, &'static str), ErrorReason>,
    databases_skipped: usize,
    /// Custom queries whose last run failed (to warn once per streak).
    custom_failing: BTreeSet<String>,
    /// pg_stat_statements as a slow-query source, when configured.
    statements: Option<StatementSource<StatementKey>>,
    /// The numeric settings with the `pg_conf_load_time()` they were read
    /// at: re-read only when the server reloads its configuration.
    settings: Option<(f64, Vec<Setting>)>,
    /// Plans of slow-log examples (`[postgres.explain]`), with the board
    /// they come from (attached before the first poll).
    explainer: Option<Explainer>,
    board: Option<Arc<Board>>,
}

impl PostgresCollector {
    /// A collector for a checked target; it connects on its first poll.
    pub(crate) fn new(target: &PostgresTarget, timing: Timing) -> Self {
        let cfg = target.clone();
        Self {
            statements: StatementSource::configured(cfg.statements.as_ref(), "pg_stat_statements"),
            sessions: Sessions::new(target, timing),
            main_db: target.ready.main_db.clone(),
            dsn_shown: target.ready.dsn_shown.clone(),
            cfg,
            timing,
            heavy: BTreeMap::new(),
            custom: CustomQueries::default(),
            part_errors: BTreeMap::new(),
            failing: BTreeMap::new(),
            databases_skipped: 0,
            custom_failing: BTreeSet::new(),
            settings: None,
            explainer: target
                .explain
                .clone()
                .map(|e| Explainer::new(e, &target.common.name, Dialect::Postgres)),
            board: None,
        }
    }

    /// Plans the due examples of the `[postgres.explain]` sources, each in
    /// its database's session (the main one when the log names none),
    /// then reads the facts of the tables a plan reads sequentially; every
    /// outcome, failures included, goes to the board. A failure never
    /// fails the poll or marks the target degraded: it is the class's.
    async fn poll_explain(&mut self, wanted: &[String], deadline: Instant) {
        let (Some(ex), Some(board)) = (&mut self.explainer, &self.board) else {
            return;
        };
        let board = board.clone();
        for (source, cand) in ex.due(&board, Instant::now()) {
            let db = if cand.db.is_empty() {
                self.main_db.clone()
            } else {
                cand.db.clone()
            };
            let plan = if db != self.main_db && !wanted.contains(&db) {
                Err(format!(
                    "{}: database \"{db}\" is not one this target reads (add it to databases)",
                    self.sessions.prefix()
                ))
            } else {
                self.plan_one(&db, &cand, deadline).await
            };
            let mut facts = Vec::new();
            if let Ok(plan) = &plan {
                for (schema, table) in advice::tables_to_check(plan) {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let (s2, t2) = (schema.clone(), table.clone());
                    match self
                        .sessions
                        .run(&db, left, move |c| Box::pin(sql::table_facts(c, s2, t2)))
                        .await
                    {
                        Ok(Some(mut f)) => {
                            if let Some(ex) = &mut self.explainer {
                                let key = format!("{db}.{}.{}", f.schema, f.table);
                                ex.rate(&key, &mut f, Instant::now());
                            }
                            facts.push(f);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            self.sessions.forget_broken(&db, &e);
                            break;
                        }
                    }
                }
            }
            if let Some(ex) = &self.explainer {
                ex.finish(&board, &source, &cand, plan, &facts);
            }
        }
    }

    /// One `EXPLAIN` of `cand` in database `db`, parsed.
    async fn plan_one(
        &mut self,
        db: &str,
        cand: &Candidate,
        deadline: Instant,
    ) -> Result<crate::explain::Plan, String> {
        // Leave room: a plan is the poll's last, optional part, and must
        // not push the poll past its deadline (the class waits its turn).
        let left = deadline.saturating_duration_since(Instant::now());
        if left < self.timing.timeout / 4 {
            return Err(format!(
                "{}: no time left in the poll to plan class {}",
                self.sessions.prefix(),
                cand.id
            ));
        }
        let example = cand.example.clone();
        let what = format!("planning class {}", cand.id);
        match self
            .sessions
            .run(db, left, move |c| Box::pin(sql::explain(c, example)))
            .await
        {
            Ok(text) => crate::explain::plan::parse_postgres(&text)
                .map_err(|e| format!("{}: {what}: {e}", self.sessions.prefix())),
            Err(e) => {
                self.sessions.forget_broken(db, &e);
                Err(self.sessions.fail_message(&what, &e))
            }
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
                    tracing::info!(target_name = %self.cfg.common.name, datname, part, "postgres stats readable again");
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
                    tracing::warn!(target_name = %self.cfg.common.name, datname, part, reason = reason.as_str(), error = %msg, "postgres stats part failed; the target's other metrics continue");
                } else {
                    tracing::debug!(target_name = %self.cfg.common.name, datname, part, reason = reason.as_str(), error = %msg, "postgres stats part failed again");
                }
            }
        }
    }

    /// Reads index and table stats of `db` when due; failures are recorded
    /// per part, never returned.
    async fn poll_heavy(&mut self, db: &str, deadline: Instant) {
        // Intervals are measured between attempt starts (like polls).
        let attempt = Instant::now();
        if !self.heavy_due(db) {
            return;
        }
        // Leave room: a database that cannot finish now is retried next poll.
        let left = deadline.saturating_duration_since(Instant::now());
        if left < self.timing.timeout / 4 {
            return;
        }
        if let Err(e) = self.sessions.ensure(db, left).await {
            let msg = self
                .sessions
                .fail_message(&format!("connecting to database \"{db}\""), &e);
            self.sessions.forget_failed_connect(db, &e);
            self.record_part(db, "connect", Err(e.reason()), Some(msg));
            self.heavy.entry(db.to_owned()).or_default().last_attempt = Some(attempt);
            return;
        }
        self.record_part(db, "connect", Ok(()), None);
        let schemas = self.cfg.exclude_schemas.clone();
        let left = deadline.saturating_duration_since(Instant::now());
        let s2 = schemas.clone();
        let indexes = self
            .sessions
            .run(db, left, move |c| Box::pin(sql::indexes(c, s2)))
            .await;
        let mut any_ok = self.record_heavy_part(db, "indexes", "index stats", indexes, |h, v| {
            h.indexes = Some(v)
        });
        let left = deadline.saturating_duration_since(Instant::now());
        let tables = if left.is_zero() {
            Err(Fail::Deadline(self.timing.timeout))
        } else {
            self.sessions
                .run(db, left, move |c| Box::pin(sql::tables(c, schemas)))
                .await
        };
        any_ok |= self.record_heavy_part(db, "tables", "table stats", tables, |h, v| {
            h.tables = Some(v)
        });
        let h = self.heavy.entry(db.to_owned()).or_default();
        h.last_attempt = Some(attempt);
        if any_ok {
            h.last_success_unix = Some(crate::poll::unix_now());
        }
    }

    /// Whether the index/table stats of `db` are due. A failing part is
    /// retried sooner (but at most once a poll, and at least once a minute),
    /// so a lock or a grant fixed shows up quickly without a failing connect
    /// attempt on every poll.
    fn heavy_due(&self, db: &str) -> bool {
        let failing = self
            .failing
            .keys()
            .any(|(d, part)| d == db && !matches!(*part, "privileges" | "statements"));
        let every = if failing {
            self.cfg.index_interval.min(RETRY_FAILED_PART)
        } else {
            self.cfg.index_interval
        };
        self.heavy
            .get(db)
            .and_then(|h| h.last_attempt)
            .is_none_or(|t| t.elapsed() + Duration::from_millis(50) >= every)
    }

    /// Records an index or table read of `db`: a result is kept with `keep`
    /// (true returned); a failure forgets a broken session and is recorded.
    fn record_heavy_part<T>(
        &mut self,
        db: &str,
        part: &'static str,
        what: &str,
        result: Result<T, Fail>,
        keep: impl FnOnce(&mut Heavy, T),
    ) -> bool {
        match result {
            Ok(v) => {
                keep(self.heavy.entry(db.to_owned()).or_default(), v);
                self.record_part(db, part, Ok(()), None);
                true
            }
            Err(e) => {
                self.sessions.forget_broken(db, &e);
                let msg = self
                    .sessions
                    .fail_message(&format!("{what} of database \"{db}\""), &e);
                self.record_part(db, part, Err(e.reason()), Some(msg));
                false
            }
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
            .sessions
            .run(main, left, move |c| {
                Box::pin(sql::statement_rows(c, sql, limit))
            })
            .await;
        match result {
            Ok((rows, reset_epoch)) => {
                let full = rows.len() as i64 >= limit;
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
                self.sessions.forget_broken(main, &e);
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
                    self.sessions.fail_message("reading pg_stat_statements", &e)
                );
                if let Some(src) = &mut self.statements {
                    src.record_down();
                }
                self.record_part(main, "statements", Err(e.reason()), Some(msg));
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
            let timeout = q
                .timeout
                .unwrap_or(self.sessions.statement_timeout())
                .min(left);
            let started = Instant::now();
            let main = self.main_db.clone();
            let qc = q.clone();
            let r = self
                .sessions
                .run(&main, left, move |c| {
                    Box::pin(sql::run_custom(c, qc, timeout))
                })
                .await;
            let error = match r {
                Ok(Ok(rows)) => {
                    self.custom.record_rows(q, rows, started.elapsed());
                    if self.custom_failing.remove(&q.name) {
                        tracing::info!(target_name = %self.cfg.common.name, query = %q.name, "custom query works again");
                    }
                    continue;
                }
                Ok(Err(msg)) => format!(
                    "{}: custom query \"{}\" returned rows perfwatch cannot export: {msg}",
                    self.sessions.prefix(),
                    q.name
                ),
                Err(e) => {
                    self.sessions.forget_broken(&main, &e);
                    self.sessions
                        .fail_message(&format!("custom query \"{}\"", q.name), &e)
                }
            };
            self.custom.record_error(q, started.elapsed());
            // Warn once per failure streak; the counter keeps the count.
            if self.custom_failing.insert(q.name.clone()) {
                tracing::warn!(target_name = %self.cfg.common.name, query = %q.name, error = %error, "custom query failed; the target's other metrics continue");
            } else {
                tracing::debug!(target_name = %self.cfg.common.name, query = %q.name, error = %error, "custom query failed again");
            }
        }
    }
}

impl Collector for PostgresCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        let started = Instant::now();
        // Finish our own work before the engine's hard deadline.
        let deadline = started + self.timing.timeout.mul_f64(0.9);
        let main = self.main_db.clone();
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = self.sessions.ensure(&main, left).await {
            self.sessions.forget_failed_connect(&main, &e);
            return Err(self
                .sessions
                .poll_error(&format!("connecting to {}", self.dsn_shown), &e));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let loaded = self.settings.as_ref().map(|s| s.0);
        let stats = self
            .sessions
            .run(&main, left, move |c| {
                Box::pin(sql::connection_stats(c, loaded))
            })
            .await;
        let sql::ConnectionStats {
            activity,
            server,
            databases,
            stat_databases,
            settings,
            replication,
        } = match stats {
            Ok(v) => v,
            Err(e) => {
                self.sessions.forget_broken(&main, &e);
                return Err(self.sessions.poll_error("reading connection stats", &e));
            }
        };
        if settings.is_some() {
            self.settings = settings;
        }
        // Without pg_monitor, other roles' sessions show no state or query:
        // the numbers would be wrong, so say so.
        let privileged = server.monitor;
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
                self.sessions.prefix()
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
            tracing::debug!(target_name = %self.cfg.common.name, skipped = self.databases_skipped, "more databases than max_databases; the rest get no index/table stats");
            wanted.truncate(self.cfg.max_databases);
        }
        // Forget databases no longer wanted (dropped, or config "*").
        self.heavy.retain(|d, _| wanted.contains(d));
        self.sessions
            .retain(|d| d == main || wanted.iter().any(|w| w == d));
        self.failing
            .retain(|(d, _), _| wanted.contains(d) || *d == main);
        self.poll_statements(&main, &server.version, deadline).await;
        for db in &wanted {
            self.poll_heavy(db, deadline).await;
        }
        self.poll_custom(deadline).await;
        self.custom.retain(&self.cfg.query);
        self.poll_explain(&wanted, deadline).await;

        let mut out = Families::new();
        let headline = self.export(&activity, &server, &databases, &wanted, &mut out);
        metrics::export_replication(&self.cfg.common.name, &server, &replication, &mut out);
        metrics::export_databases(
            &self.cfg.common.name,
            &stat_databases,
            &activity,
            self.cfg.max_databases,
            &mut out,
        );
        Ok(PollOutput {
            families: out,
            headline,
        })
    }

    fn details(&self) -> Option<serde_json::Value> {
        self.statements.as_ref().and_then(StatementSource::details)
    }

    fn reset(&mut self) {
        self.sessions.mark_all_dirty();
    }

    fn attach_board(&mut self, board: &Arc<Board>) {
        self.board = Some(board.clone());
    }
}

impl PostgresCollector {
    /// Exports everything of this poll; returns the landing-page headline.
    fn export(
        &self,
        activity: &[ActivityRow],
        server: &ServerRow,
        databases: &[DatabaseRow],
        wanted: &[String],
        out: &mut Families,
    ) -> Vec<(String, String)> {
        let target = self.cfg.common.name.as_str();
        let settings = self
            .settings
            .as_ref()
            .map(|s| s.1.as_slice())
            .unwrap_or(&[]);
        let conns = metrics::export_connections(target, activity, server, settings, databases, out);
        metrics::export_settings(target, settings, out);
        metrics::export_bgwriter(target, server, out);

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
                metrics::export_indexes(ix, self.cfg.max_indexes, target, db, out);
            }
            if let Some(tb) = &h.tables {
                metrics::export_tables(tb, self.cfg.max_tables, &rule, target, db, out);
            }
            if let Some(ts) = h.last_success_unix {
                out.gauge(
                    &catalog::INDEX_STATS_LAST_SUCCESS,
                    &[("target", target), ("datname", db.as_str())],
                    ts,
                );
            }
        }
        out.gauge(
            &catalog::DATABASES_SKIPPED,
            &[("target", target)],
            self.databases_skipped as f64,
        );
        metrics::export_parts(target, &self.part_errors, &self.failing, out);

        self.custom.export(&self.cfg.query, target, out);
        if let Some(src) = &self.statements {
            src.export(target, out);
        }

        let mut headline = vec![
            ("version".to_owned(), server.version.clone()),
            (
                "connections".to_owned(),
                match conns.available {
                    Some(a) => format!("{} / {a}", conns.used),
                    None => conns.used.to_string(),
                },
            ),
        ];
        if let Some(r) = conns.ratio {
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
