//! What the MySQL collector sends and how it reads the answers: statement
//! texts of the index/table pass, the text-protocol fetch, and the decoding
//! of rows into the pure types of `schema.rs`, statement statistics and
//! custom-query rows. No connection handling here (see `session.rs`).

use std::collections::BTreeMap;

use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{AssertSqlSafe, Column, Row};

use super::config::SYSTEM_SCHEMAS;
use super::schema::{self, ForeignKeys, IndexDef, IndexKey, TableKey};
use super::statements;
use super::status;
use crate::collectors::custom_query::{CustomQueryConfig, QueryRow};
use crate::collectors::statement_stats::{Counters, StatementRow};

/// The `TABLE_SCHEMA …` condition of the index/table pass for the
/// target's schemas (see `MysqlTarget::schemas`); `None` when no schema is
/// to be examined.
pub(super) fn schema_filter(schemas: Option<&[String]>) -> Option<String> {
    match schemas {
        None => Some(format!(
            "NOT IN ({})",
            status::quote_list(SYSTEM_SCHEMAS.iter().copied())
        )),
        Some([]) => None,
        Some(list) => Some(format!(
            "IN ({})",
            status::quote_list(list.iter().map(String::as_str))
        )),
    }
}

/// Index columns (information_schema.STATISTICS).
pub(super) fn index_definitions_sql(filter: &str) -> String {
    format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA {filter}"
    )
}

/// Index definitions from [`index_definitions_sql`] rows.
pub(super) fn index_definitions(rows: &[MySqlRow]) -> Vec<IndexDef> {
    schema::index_defs(
        rows.iter()
            .filter_map(|r| {
                let (schema, table, index) = leading_names(r)?;
                Some((
                    schema,
                    table,
                    index,
                    number(r, 3) != 0,
                    number(r, 4) as u32,
                    text(r, 5).unwrap_or_default(),
                ))
            })
            .collect(),
    )
}

/// Foreign-key columns (information_schema.KEY_COLUMN_USAGE).
pub(super) fn foreign_keys_sql(filter: &str) -> String {
    format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, ORDINAL_POSITION FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_NAME IS NOT NULL AND TABLE_SCHEMA {filter}"
    )
}

/// Foreign keys from [`foreign_keys_sql`] rows.
pub(super) fn foreign_keys(rows: &[MySqlRow]) -> ForeignKeys {
    schema::foreign_keys(
        rows.iter()
            .filter_map(|r| {
                let (schema, table, constraint) = leading_names(r)?;
                Some((schema, table, constraint, text(r, 3)?, number(r, 4) as u32))
            })
            .collect(),
    )
}

/// One base table: key, rows, data length, index length, data free.
pub(super) type TableRow = (TableKey, u64, u64, u64, u64);

/// Base tables with rows and sizes (information_schema.TABLES).
pub(super) fn tables_sql(filter: &str) -> String {
    format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, DATA_FREE FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA {filter} ORDER BY TABLE_SCHEMA, TABLE_NAME"
    )
}

/// Tables from [`tables_sql`] rows.
pub(super) fn tables(rows: &[MySqlRow]) -> Vec<TableRow> {
    rows.iter()
        .filter_map(|r| {
            Some((
                (text(r, 0)?, text(r, 1)?),
                number(r, 2),
                number(r, 3),
                number(r, 4),
                number(r, 5),
            ))
        })
        .collect()
}

/// Index sizes in pages (InnoDB persistent stats).
pub(super) fn index_sizes_sql(filter: &str) -> String {
    format!(
        "SELECT database_name, table_name, index_name, stat_value FROM mysql.innodb_index_stats WHERE stat_name = 'size' AND database_name {filter}"
    )
}

/// Index sizes in bytes from [`index_sizes_sql`] rows (partitions summed).
pub(super) fn index_sizes(rows: &[MySqlRow], page_size: f64) -> BTreeMap<IndexKey, f64> {
    let mut sizes: BTreeMap<IndexKey, f64> = BTreeMap::new();
    for r in rows {
        if let Some((s, t, i)) = leading_names(r) {
            let t = t.split("#P#").next().unwrap_or_default().to_owned();
            *sizes.entry((s, t, i)).or_default() += number(r, 3) as f64 * page_size;
        }
    }
    sizes
}

/// One performance_schema index I/O row.
pub(super) struct IoRow {
    pub(super) schema: String,
    pub(super) table: String,
    /// `None`: rows accessed without an index.
    pub(super) index: Option<String>,
    pub(super) read: u64,
    /// fetch, insert, update, delete.
    pub(super) ops: [u64; 4],
}

/// Index I/O (performance_schema.table_io_waits_summary_by_index_usage).
pub(super) fn index_io_waits_sql(filter: &str) -> String {
    format!(
        "SELECT OBJECT_SCHEMA, OBJECT_NAME, INDEX_NAME, COUNT_READ, COUNT_FETCH, COUNT_INSERT, COUNT_UPDATE, COUNT_DELETE FROM performance_schema.table_io_waits_summary_by_index_usage WHERE OBJECT_TYPE = 'TABLE' AND OBJECT_SCHEMA {filter} ORDER BY OBJECT_SCHEMA, OBJECT_NAME, INDEX_NAME"
    )
}

/// [`IoRow`]s from [`index_io_waits_sql`] rows.
pub(super) fn io_rows(rows: &[MySqlRow]) -> Vec<IoRow> {
    rows.iter()
        .filter_map(|r| {
            Some(IoRow {
                schema: text(r, 0)?,
                table: text(r, 1)?,
                index: text(r, 2),
                read: number(r, 3),
                ops: [number(r, 4), number(r, 5), number(r, 6), number(r, 7)],
            })
        })
        .collect()
}

/// Rows read per index (MariaDB userstat).
pub(super) fn index_statistics_sql(filter: &str) -> String {
    format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, ROWS_READ FROM information_schema.INDEX_STATISTICS WHERE TABLE_SCHEMA {filter}"
    )
}

/// Rows read per index from [`index_statistics_sql`] rows.
pub(super) fn index_statistics(rows: &[MySqlRow]) -> BTreeMap<IndexKey, u64> {
    rows.iter()
        .filter_map(|r| Some((leading_names(r)?, number(r, 3))))
        .collect()
}

/// Rows read per table (MariaDB userstat).
pub(super) fn table_statistics_sql(filter: &str) -> String {
    format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, ROWS_READ FROM information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA {filter}"
    )
}

/// Rows read per table from [`table_statistics_sql`] rows.
pub(super) fn table_statistics(rows: &[MySqlRow]) -> BTreeMap<TableKey, u64> {
    rows.iter()
        .filter_map(|r| Some(((text(r, 0)?, text(r, 1)?), number(r, 2))))
        .collect()
}

/// Statement digests from `statements::digest_sql` rows, keyed by
/// (SCHEMA_NAME, DIGEST); `None` when the first column says the
/// statements_digest consumer is disabled.
pub(super) fn digest_rows(rows: &[MySqlRow]) -> Option<Vec<StatementRow<(String, String)>>> {
    let enabled = rows
        .first()
        .and_then(|r| text(r, 0))
        .is_some_and(|e| e.eq_ignore_ascii_case("YES"));
    if !enabled {
        return None;
    }
    const PICO: f64 = 1e12;
    Some(
        rows.iter()
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
            .collect(),
    )
}

/// Runs one statement over the text protocol (no prepare round trip, one
/// Question per statement).
pub(super) async fn fetch(
    conn: &mut MySqlConnection,
    sql: String,
    statements: &mut u64,
) -> Result<Vec<MySqlRow>, sqlx::Error> {
    *statements += 1;
    sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(conn).await
}

/// A column as text (text protocol: every value arrives as text, whatever
/// its SQL type, so BIGINT UNSIGNED and DECIMAL decode the same way).
/// Every column of a row with its name, values as text (`SHOW SLAVE
/// STATUS`, whose columns differ between versions).
pub(super) fn named_texts(row: &MySqlRow) -> Vec<(String, Option<String>)> {
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name().to_owned(), text(row, i)))
        .collect()
}

/// A `compat::PROCESSLIST_SQL` row: command, state, threads, seconds.
pub(super) fn processlist_row(row: &MySqlRow) -> Option<(String, String, f64, f64)> {
    Some((
        text(row, 0)?,
        text(row, 1)?,
        text(row, 2)?.parse().ok()?,
        text(row, 3)?.parse().ok()?,
    ))
}

pub(super) fn text(row: &MySqlRow, i: usize) -> Option<String> {
    row.try_get_unchecked::<Option<String>, _>(i).ok().flatten()
}

/// The first three columns as text (schema, table and index or constraint
/// name: how most of these queries start); `None` when one is NULL.
fn leading_names(row: &MySqlRow) -> Option<(String, String, String)> {
    Some((text(row, 0)?, text(row, 1)?, text(row, 2)?))
}

/// A column as an unsigned number (0 when NULL or not a number).
pub(super) fn number(row: &MySqlRow, i: usize) -> u64 {
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
pub(super) fn query_rows(
    q: &CustomQueryConfig,
    rows: &[MySqlRow],
) -> Result<Vec<QueryRow>, String> {
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
