//! `[mysql.explain]`: plans of slow-log examples on the target's one
//! connection (see `crate::explain`), and the facts of the tables a plan
//! reads whole.
//!
//! Per planned class: `START TRANSACTION READ ONLY`, `USE` the class's
//! database when the log named one other than the DSN's, `EXPLAIN
//! FORMAT=JSON` as one unnamed prepared statement (the server refuses a
//! second statement in it; the session's `max_statement_time` /
//! `max_execution_time` bounds it), `ROLLBACK`, `USE` the DSN's database
//! again; then one statement of information_schema facts per table read
//! whole (at most `explain::MAX_FACT_TABLES`).

use std::sync::Arc;
use std::time::Instant;

use sqlx::mysql::MySqlRow;
use sqlx::{AssertSqlSafe, Row};

use super::MysqlCollector;
use super::session::Live;
use super::sql::{fetch, text};
use crate::explain::advice::{self, IndexFacts, TableFacts};
use crate::explain::{Candidate, Plan};
use crate::poll::PollError;

/// A table's size, columns and indexes (key columns in order, separated
/// by `\x01`), as `(kind, name, rows, columns)` text rows; the schema is
/// the class's database or the connection's.
const TABLE_FACTS_SQL: &str = "SELECT 'table', TABLE_SCHEMA, CAST(TABLE_ROWS AS CHAR), NULL
FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
UNION ALL
SELECT 'column', COLUMN_NAME, NULL, NULL
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
UNION ALL
SELECT 'index', INDEX_NAME, NULL, GROUP_CONCAT(COALESCE(COLUMN_NAME, '') ORDER BY SEQ_IN_INDEX SEPARATOR '\u{1}')
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
GROUP BY INDEX_NAME";

/// `` `name` `` with backquotes doubled.
fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The facts rows as one table's facts (`None`: no such table).
fn facts_of(rows: &[MySqlRow], table: &str) -> Option<TableFacts> {
    let mut facts: Option<TableFacts> = None;
    let (mut columns, mut indexes) = (Vec::new(), Vec::new());
    for row in rows {
        let (Some(kind), Some(name)) = (text(row, 0), text(row, 1)) else {
            continue;
        };
        match kind.as_str() {
            "table" => {
                facts = Some(TableFacts {
                    schema: name,
                    table: table.to_owned(),
                    rows: text(row, 2).and_then(|r| r.parse().ok()).unwrap_or(0.0),
                    ..TableFacts::default()
                })
            }
            "column" => columns.push(name.to_lowercase()),
            _ => indexes.push(IndexFacts {
                name,
                columns: text(row, 3)
                    .unwrap_or_default()
                    .split('\u{1}')
                    .map(str::to_lowercase)
                    .collect(),
                scans: None,
            }),
        }
    }
    facts.map(|f| TableFacts {
        columns,
        indexes,
        ..f
    })
}

impl MysqlCollector {
    /// Plans the due examples of the `[mysql.explain]` sources and posts
    /// every outcome to the board. `Err` only when the connection broke
    /// (the poll then drops it, as for any other statement).
    pub(super) async fn explain_pass(
        &mut self,
        live: &mut Live,
        deadline: Instant,
    ) -> Result<(), PollError> {
        let (Some(ex), Some(board)) = (&mut self.explainer, &self.board) else {
            return Ok(());
        };
        let board = Arc::clone(board);
        for (source, cand) in ex.due(&board, Instant::now()) {
            let plan = self.plan_one(live, &cand, deadline).await?;
            let mut facts = Vec::new();
            if let Ok(plan) = &plan {
                let schema = (!cand.db.is_empty()).then(|| cand.db.clone());
                for (_, table) in advice::tables_to_check(plan) {
                    if Instant::now() >= deadline {
                        break;
                    }
                    self.statements += 1;
                    let rows = sqlx::query(TABLE_FACTS_SQL)
                        .bind(&schema)
                        .bind(&table)
                        .bind(&schema)
                        .bind(&table)
                        .bind(&schema)
                        .bind(&table)
                        .fetch_all(&mut live.conn)
                        .await;
                    match rows {
                        Ok(rows) => facts.extend(facts_of(&rows, &table)),
                        Err(sqlx::Error::Database(_)) => break,
                        Err(e) => return Err(self.err("table facts", &e)),
                    }
                }
            }
            if let Some(ex) = &self.explainer {
                ex.finish(&board, &source, &cand, plan, &facts);
            }
        }
        Ok(())
    }

    /// One `EXPLAIN FORMAT=JSON` of `cand`, parsed: the outer `Err` when
    /// the connection broke, the inner one (a message naming the target,
    /// never the example) when the server refused or the plan is unreadable.
    async fn plan_one(
        &mut self,
        live: &mut Live,
        cand: &Candidate,
        deadline: Instant,
    ) -> Result<Result<Plan, String>, PollError> {
        let name = format!("mysql target \"{}\"", self.cfg.common.name);
        // Leave room: a plan is optional and must not push the poll past
        // its deadline (the server's statement limit is 80 % of the
        // timeout; planning takes milliseconds unless the server struggles).
        if deadline.saturating_duration_since(Instant::now()) < self.timing.timeout / 4 {
            return Ok(Err(format!(
                "{name}: no time left in the poll to plan class {}",
                cand.id
            )));
        }
        let dsn_db = self.options.get_database().map(str::to_owned);
        let switch = !cand.db.is_empty() && Some(cand.db.as_str()) != dsn_db.as_deref();
        let mut steps: Vec<String> = vec!["START TRANSACTION READ ONLY".into()];
        if switch {
            steps.push(format!("USE {}", quote_ident(&cand.db)));
        }
        let mut result = Ok(String::new());
        for sql in steps {
            if let Err(e) = fetch(&mut live.conn, sql, &mut self.statements).await {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            self.statements += 1;
            result = sqlx::query(AssertSqlSafe(format!(
                "EXPLAIN FORMAT=JSON {}",
                cand.example
            )))
            .persistent(false)
            .fetch_one(&mut live.conn)
            .await
            .and_then(|row| row.try_get_unchecked::<String, _>(0));
        }
        // Always: end the transaction and go back to the DSN's database.
        let mut after = vec!["ROLLBACK".to_owned()];
        if switch && let Some(db) = &dsn_db {
            after.push(format!("USE {}", quote_ident(db)));
        }
        for sql in after {
            if let Err(e) = fetch(&mut live.conn, sql, &mut self.statements).await
                && !matches!(e, sqlx::Error::Database(_))
            {
                return Err(self.err("ending a plan's transaction", &e));
            }
        }
        match result {
            Ok(text) => Ok(crate::explain::plan::parse_mysql(&text)
                .map_err(|e| format!("{name}: planning class {}: {e}", cand.id))),
            Err(e @ sqlx::Error::Database(_)) => {
                Ok(Err(format!("{name}: planning class {}: {e}", cand.id)))
            }
            Err(e) => Err(self.err(&format!("planning class {}", cand.id), &e)),
        }
    }
}
