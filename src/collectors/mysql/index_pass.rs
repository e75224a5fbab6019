//! The index and table pass of the MySQL collector, every `index_interval`:
//! up to 6 statements (index definitions, foreign keys, table sizes, index
//! sizes, then index reads from performance_schema or MariaDB's userstat
//! tables), each an optional *section* whose failure is counted and never
//! fails the poll. Its families are kept and re-exported on every poll until
//! the next pass.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlRow;

use super::index_metrics;
use super::schema::{self, IndexKey, MissingIndexRule, TableKey, TableReads};
use super::session::Live;
use super::sql::{self, fetch};
use super::status::Vars;
use super::{MysqlCollector, catalog};
use crate::exposition::Families;
use crate::poll::{ErrorReason, PollError};

/// Where index read counts come from, and what they say.
#[derive(Default)]
struct Usage {
    /// The `source` label: performance_schema, userstat or none.
    source: &'static str,
    index_reads: Option<BTreeMap<IndexKey, u64>>,
    table_reads: Option<BTreeMap<TableKey, TableReads>>,
}

impl MysqlCollector {
    /// The index and table pass: reads every section, then replaces the
    /// kept families and headline. `Err` only when the connection broke.
    pub(super) async fn index_pass(
        &mut self,
        live: &mut Live,
        vars: &Vars,
        status: &Vars,
    ) -> Result<(), PollError> {
        self.permission_denied = false;
        let Some(filter) = sql::schema_filter(self.schemas.as_deref()) else {
            self.index_families = Families::new();
            self.index_headline = None;
            return Ok(());
        };
        let target = self.cfg.common.name.clone();
        let mut out = Families::new();

        let defs = self
            .section(
                live,
                "index_definitions",
                sql::index_definitions_sql(&filter),
            )
            .await?
            .map(|rows| sql::index_definitions(&rows))
            .unwrap_or_default();
        let fks = self
            .section(live, "foreign_keys", sql::foreign_keys_sql(&filter))
            .await?
            .map(|rows| sql::foreign_keys(&rows))
            .unwrap_or_default();
        let tables = self
            .section(live, "tables", sql::tables_sql(&filter))
            .await?
            .map(|rows| sql::tables(&rows))
            .unwrap_or_default();
        index_metrics::export_tables(&target, &tables, self.cfg.max_tables, &mut out);
        let page_size = vars.number("innodb_page_size").unwrap_or(16384.0);
        let sizes = self
            .section(live, "index_sizes", sql::index_sizes_sql(&filter))
            .await?
            .map(|rows| sql::index_sizes(&rows, page_size))
            .unwrap_or_default();
        let usage = self
            .read_usage(live, vars, &filter, &target, &mut out)
            .await?;

        out.gauge(
            &catalog::INDEX_STATS_SOURCE,
            &[("target", &target), ("source", usage.source)],
            1.0,
        );
        if let Some(reads) = &usage.table_reads {
            let total: u64 = reads.values().map(|r| r.full_scan + r.via_index).sum();
            let uptime = status.number("Uptime").unwrap_or(0.0);
            let age = self
                .stats_epoch
                .observe(total, uptime, crate::poll::unix_now());
            out.gauge(&catalog::STATS_AGE, &[("target", &target)], age);
        }
        let unused = index_metrics::export_indexes(
            &target,
            &defs,
            &fks,
            &sizes,
            usage.index_reads.as_ref(),
            self.cfg.max_indexes,
            &mut out,
        );
        let rule = MissingIndexRule {
            min_rows: self.cfg.missing_index_min_rows,
            min_full_scan_ratio: self.cfg.missing_index_min_full_scan_ratio,
        };
        let table_rows: BTreeMap<TableKey, u64> = tables
            .iter()
            .map(|(k, rows, ..)| (k.clone(), *rows))
            .collect();
        let candidates = usage.table_reads.as_ref().map(|r| {
            index_metrics::export_table_reads(
                &target,
                r,
                &table_rows,
                rule,
                self.cfg.max_tables,
                &mut out,
            )
        });
        self.index_headline = Some((unused.unwrap_or(0), candidates.unwrap_or(0)));
        self.index_families = out;
        Ok(())
    }

    /// Index and table read counts: performance_schema's index I/O (its
    /// families exported into `out`), else MariaDB's userstat tables, else
    /// none.
    async fn read_usage(
        &mut self,
        live: &mut Live,
        vars: &Vars,
        filter: &str,
        target: &str,
        out: &mut Families,
    ) -> Result<Usage, PollError> {
        let none = Usage {
            source: "none",
            ..Usage::default()
        };
        if vars.flag("performance_schema").unwrap_or(false) {
            let Some(rows) = self
                .section(live, "index_io_waits", sql::index_io_waits_sql(filter))
                .await?
            else {
                return Ok(none);
            };
            let io = sql::io_rows(&rows);
            index_metrics::export_io_waits(target, &io, self.cfg.max_indexes, out);
            let ps: Vec<(String, String, Option<String>, u64)> = io
                .iter()
                .map(|r| (r.schema.clone(), r.table.clone(), r.index.clone(), r.read))
                .collect();
            return Ok(Usage {
                source: "performance_schema",
                table_reads: Some(schema::table_reads_from_perf_schema(&ps)),
                index_reads: Some(
                    io.iter()
                        .filter_map(|r| {
                            Some((
                                (r.schema.clone(), r.table.clone(), r.index.clone()?),
                                r.read,
                            ))
                        })
                        .collect(),
                ),
            });
        }
        if !vars.flag("userstat").unwrap_or(false) {
            return Ok(none);
        }
        let idx = self
            .section(live, "index_statistics", sql::index_statistics_sql(filter))
            .await?;
        let tbl = self
            .section(live, "table_statistics", sql::table_statistics_sql(filter))
            .await?;
        let (Some(idx), Some(tbl)) = (idx, tbl) else {
            return Ok(none);
        };
        let ir = sql::index_statistics(&idx);
        let tr = sql::table_statistics(&tbl);
        Ok(Usage {
            source: "userstat",
            table_reads: Some(schema::table_reads_from_userstat(&tr, &ir)),
            index_reads: Some(ir),
        })
    }

    /// Counts a failed section (and notes a permission problem).
    fn section_failed(&mut self, section: &'static str, e: &sqlx::Error) {
        let pe = self.err(section, e);
        if pe.reason == ErrorReason::Permission {
            self.permission_denied = true;
        }
        *self.section_errors.entry((section, pe.reason)).or_default() += 1;
        tracing::warn!(target_name = %self.cfg.common.name, section, reason = pe.reason.as_str(), error = %pe.message, "mysql statistics section failed; the other metrics continue");
    }

    /// Runs one optional section; `None` (recorded) on a server error, `Err`
    /// when the connection itself broke.
    pub(super) async fn section(
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
            tracing::warn!(target_name = %self.cfg.common.name, section = name, "no poll time left for this statistics section; skipped until the next index pass");
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
}
