//! Index advice (pure): a plan that reads a large table sequentially on a
//! column it filters or joins by, joined with what the server says of that
//! table (its size, its sequential-scan rate, its indexes, unused ones
//! included).
//!
//! Decisions:
//! - Only columns the table has (checked against its facts) are advised:
//!   a condition's identifier may name another table's column or a
//!   function's argument.
//! - An existing index that leads with the column means the planner chose
//!   not to use it (stale statistics, low selectivity): that is said,
//!   rather than advising a duplicate.
//! - At most [`MAX_INDEX_COLUMNS`] columns, in the order the conditions
//!   name them; the advice says which columns, not a perfect index.

use serde::Serialize;

use super::plan::{Plan, ScanKind};

/// Most columns one suggested index has.
pub const MAX_INDEX_COLUMNS: usize = 3;

/// What the server says of one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TableFacts {
    /// Schema (PostgreSQL) or database (MySQL).
    pub schema: String,
    /// The table.
    pub table: String,
    /// The server's row estimate.
    pub rows: f64,
    /// Its column names, lowercased.
    #[serde(skip)]
    pub columns: Vec<String>,
    /// Its indexes.
    pub indexes: Vec<IndexFacts>,
    /// Sequential scans since the server's statistics began (PostgreSQL).
    #[serde(skip)]
    pub seq_scans: Option<u64>,
    /// Rows those scans read (PostgreSQL).
    #[serde(skip)]
    pub seq_rows_read: Option<u64>,
    /// Sequential scans per second since the previous reading.
    pub seq_scans_per_second: Option<f64>,
    /// Rows each of those scans read, on average.
    pub rows_per_seq_scan: Option<f64>,
}

/// One index of a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexFacts {
    /// Its name.
    pub name: String,
    /// Its key columns in order, lowercased (an expression shows as empty).
    pub columns: Vec<String>,
    /// Scans through it since the statistics began, where the server counts.
    pub scans: Option<u64>,
}

/// Where an advice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdviceState {
    /// No index leads with the columns: one would serve the class.
    Suggested,
    /// An index leads with the column, yet the plan reads the table whole.
    IndexNotUsed,
    /// A later plan no longer reads the table sequentially (set by the
    /// slow-log side, which compares plans over time).
    Applied,
}

impl AdviceState {
    /// The `state` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AdviceState::Suggested => "suggested",
            AdviceState::IndexNotUsed => "index_not_used",
            AdviceState::Applied => "applied",
        }
    }
}

/// One piece of index advice for a class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// Where it stands.
    pub state: AdviceState,
    /// Schema or database of the table.
    pub schema: String,
    /// The table read sequentially.
    pub table: String,
    /// The columns an index would lead with.
    pub columns: Vec<String>,
    /// The existing index that leads with them, for `IndexNotUsed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_index: Option<String>,
    /// The table's size and scan rate, as read with the plan.
    pub facts: TableFacts,
    /// The statement that would create the index (for a person to review
    /// and run: perfwatch never changes a schema).
    pub create_statement: String,
    /// The advice in words.
    pub text: String,
}

/// Which SQL dialect the create statement is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `CREATE INDEX CONCURRENTLY` (no write lock while it builds).
    Postgres,
    /// `ALTER TABLE … ADD INDEX …, ALGORITHM=INPLACE, LOCK=NONE`.
    Mysql,
}

/// `12 k` style, for the advice text.
fn short(n: f64) -> String {
    match n {
        n if n >= 1e6 => format!("{:.1} M", n / 1e6),
        n if n >= 1e4 => format!("{:.0} k", n / 1e3),
        n if n >= 1e3 => format!("{:.1} k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

fn quote(d: Dialect, ident: &str) -> String {
    match d {
        Dialect::Postgres => format!("\"{}\"", ident.replace('"', "\"\"")),
        Dialect::Mysql => format!("`{}`", ident.replace('`', "``")),
    }
}

/// The table accesses of `plan` worth facts: sequential reads with
/// condition columns, largest estimate first (the caller reads the facts
/// of at most `MAX_FACT_TABLES`).
pub fn tables_to_check(plan: &Plan) -> Vec<(Option<String>, String)> {
    let mut seq: Vec<&super::plan::Scan> = plan
        .scans
        .iter()
        .filter(|s| s.kind == ScanKind::Seq && !s.condition_columns.is_empty())
        .collect();
    seq.sort_by(|a, b| b.estimated_rows.total_cmp(&a.estimated_rows));
    let mut out: Vec<(Option<String>, String)> = Vec::new();
    for s in seq {
        let key = (s.schema.clone(), s.table.clone());
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out.truncate(super::MAX_FACT_TABLES);
    out
}

/// The advice for class `class_id` from its plan and the facts of the
/// tables it reads sequentially: for the largest such table of at least
/// `min_rows` rows whose conditions name columns it has. `None`: nothing
/// to advise.
pub fn advise(
    class_id: &str,
    plan: &Plan,
    facts: &[TableFacts],
    min_rows: u64,
    dialect: Dialect,
) -> Option<Advice> {
    let mut best: Option<(&TableFacts, Vec<String>)> = None;
    for scan in plan.scans.iter().filter(|s| s.kind == ScanKind::Seq) {
        let Some(f) = facts.iter().find(|f| {
            f.table.eq_ignore_ascii_case(&scan.table)
                && scan
                    .schema
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case(&f.schema))
        }) else {
            continue;
        };
        if f.rows < min_rows as f64 {
            continue;
        }
        let mut cols: Vec<String> = scan
            .condition_columns
            .iter()
            .filter(|c| f.columns.contains(c))
            .cloned()
            .collect();
        cols.truncate(MAX_INDEX_COLUMNS);
        if cols.is_empty() {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| f.rows > b.rows) {
            best = Some((f, cols));
        }
    }
    let (f, columns) = best?;
    let existing = f
        .indexes
        .iter()
        .find(|i| i.columns.first().is_some_and(|c| columns.contains(c)));
    let short_id: String = class_id.chars().take(8).collect();
    let on = format!("{}({})", f.table, columns.join(", "));
    let evidence = match (f.seq_scans_per_second, f.rows_per_seq_scan) {
        (Some(rate), Some(each)) => format!(
            "{} seq scans/h, {} rows each",
            short(rate * 3600.0),
            short(each)
        ),
        _ => format!("{} read whole ({} rows)", f.table, short(f.rows)),
    };
    let (state, text) = match existing {
        Some(i) => (
            AdviceState::IndexNotUsed,
            format!(
                "index {} on {} exists{} but the plan of class {short_id}… reads {} whole: {evidence}; run ANALYZE on the table, then check the condition's selectivity",
                i.name,
                on,
                if i.scans == Some(0) {
                    " (never used)"
                } else {
                    ""
                },
                f.table
            ),
        ),
        None => {
            // The evidence includes the table's unused indexes: dropping or
            // widening one may beat adding another.
            let unused: Vec<&str> = f
                .indexes
                .iter()
                .filter(|i| i.scans == Some(0))
                .map(|i| i.name.as_str())
                .collect();
            let unused = if unused.is_empty() {
                String::new()
            } else {
                format!("; unused indexes on {}: {}", f.table, unused.join(", "))
            };
            (
                AdviceState::Suggested,
                format!("an index on {on} would serve class {short_id}…: {evidence}{unused}"),
            )
        }
    };
    let cols_sql: Vec<String> = columns.iter().map(|c| quote(dialect, c)).collect();
    let table_sql = format!("{}.{}", quote(dialect, &f.schema), quote(dialect, &f.table));
    let create_statement = match dialect {
        Dialect::Postgres => format!(
            "CREATE INDEX CONCURRENTLY ON {table_sql} ({})",
            cols_sql.join(", ")
        ),
        Dialect::Mysql => format!(
            "ALTER TABLE {table_sql} ADD INDEX ({}), ALGORITHM=INPLACE, LOCK=NONE",
            cols_sql.join(", ")
        ),
    };
    Some(Advice {
        state,
        schema: f.schema.clone(),
        table: f.table.clone(),
        columns,
        existing_index: existing.map(|i| i.name.clone()),
        facts: f.clone(),
        create_statement,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::plan::{Scan, ScanKind};

    fn plan(rows: f64, cols: &[&str]) -> Plan {
        Plan {
            scans: vec![Scan {
                kind: ScanKind::Seq,
                table: "trip".into(),
                schema: Some("public".into()),
                index: None,
                estimated_rows: rows,
                condition_columns: cols.iter().map(|c| (*c).to_owned()).collect(),
            }],
            estimated_rows: rows,
            total_cost: None,
            full: None,
        }
    }

    fn facts(rows: f64, indexes: Vec<IndexFacts>) -> TableFacts {
        TableFacts {
            schema: "public".into(),
            table: "trip".into(),
            rows,
            columns: vec!["id".into(), "driver_id".into(), "status".into()],
            indexes,
            seq_scans_per_second: Some(40_000.0 / 3600.0),
            rows_per_seq_scan: Some(20_000.0),
            ..TableFacts::default()
        }
    }

    /// Advice for class `X`, whose plan reads `trip` whole filtering on
    /// `cols`, the table holding `rows` rows and `indexes`.
    fn advise_trip(
        cols: &[&str],
        rows: f64,
        indexes: Vec<IndexFacts>,
        dialect: Dialect,
    ) -> Option<Advice> {
        advise(
            "X",
            &plan(9.0, cols),
            &[facts(rows, indexes)],
            10_000,
            dialect,
        )
    }

    /// A one-column index never scanned.
    fn unused_index(name: &str, column: &str) -> IndexFacts {
        IndexFacts {
            name: name.into(),
            columns: vec![column.into()],
            scans: Some(0),
        }
    }

    #[test]
    fn a_large_table_read_whole_on_a_filtered_column_gets_an_index() {
        let a = advise(
            "0D76A1B2C3",
            &plan(9.0, &["driver_id", "t"]),
            &[facts(200_000.0, vec![])],
            10_000,
            Dialect::Postgres,
        )
        .unwrap();
        assert_eq!(a.state, AdviceState::Suggested);
        assert_eq!(a.columns, ["driver_id"], "t is not a column of trip");
        assert_eq!(
            a.text,
            "an index on trip(driver_id) would serve class 0D76A1B2…: 40 k seq scans/h, 20 k rows each"
        );
        assert_eq!(
            a.create_statement,
            "CREATE INDEX CONCURRENTLY ON \"public\".\"trip\" (\"driver_id\")"
        );
    }

    #[test]
    fn unused_indexes_of_the_table_are_part_of_the_evidence() {
        let unused = unused_index("trip_note", "note");
        let a = advise_trip(&["driver_id"], 1e6, vec![unused], Dialect::Postgres).unwrap();
        assert!(
            a.text.ends_with("; unused indexes on trip: trip_note"),
            "{}",
            a.text
        );
    }

    #[test]
    fn small_tables_unknown_columns_and_existing_indexes() {
        assert!(
            advise_trip(&["driver_id"], 500.0, vec![], Dialect::Mysql).is_none(),
            "a small table is rightly read whole"
        );
        assert!(advise_trip(&["other"], 1e6, vec![], Dialect::Mysql).is_none());
        let idx = unused_index("trip_driver", "driver_id");
        let a = advise_trip(&["driver_id"], 1e6, vec![idx], Dialect::Mysql).unwrap();
        assert_eq!(a.state, AdviceState::IndexNotUsed);
        assert_eq!(a.existing_index.as_deref(), Some("trip_driver"));
        assert!(a.text.contains("(never used)"), "{}", a.text);
        assert_eq!(
            a.create_statement,
            "ALTER TABLE `public`.`trip` ADD INDEX (`driver_id`), ALGORITHM=INPLACE, LOCK=NONE"
        );
    }
}
