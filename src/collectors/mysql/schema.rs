//! Pure judgements over index and table statistics: which indexes are unused
//! or redundant, which tables look like they miss an index, and the top-N +
//! `other` bounding of per-table and per-index series.
//!
//! Inputs come from `information_schema.STATISTICS` (definitions),
//! `information_schema.KEY_COLUMN_USAGE` (foreign keys),
//! `information_schema.TABLES` (rows and sizes), `mysql.innodb_index_stats`
//! (index sizes) and one source of read counts: performance_schema
//! `table_io_waits_summary_by_index_usage` or MariaDB's userstat
//! `INDEX_STATISTICS`/`TABLE_STATISTICS`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// `(schema, table)`.
pub(crate) type TableKey = (String, String);

/// `(schema, table, index)`.
pub(crate) type IndexKey = (String, String, String);

/// `(schema, table, index, non_unique, seq_in_index, column)`: one
/// `information_schema.STATISTICS` row.
pub(crate) type StatisticsRow = (String, String, String, bool, u32, String);

/// `(schema, table, constraint, column, ordinal)`: one
/// `information_schema.KEY_COLUMN_USAGE` row.
pub(crate) type FkColumnRow = (String, String, String, String, u32);

/// Foreign keys per table, each as its columns in order.
pub(crate) type ForeignKeys = BTreeMap<TableKey, Vec<Vec<String>>>;

/// One index, from `information_schema.STATISTICS`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexDef {
    /// Schema.
    pub schema: String,
    /// Table.
    pub table: String,
    /// Index name (`PRIMARY` for the primary key).
    pub index: String,
    /// Columns in index order.
    pub columns: Vec<String>,
    /// `NON_UNIQUE = 0` (includes PRIMARY).
    pub unique: bool,
}

impl IndexDef {
    /// The table key.
    pub fn table_key(&self) -> TableKey {
        (self.schema.clone(), self.table.clone())
    }

    /// Whether this is the primary key.
    pub fn is_primary(&self) -> bool {
        self.index == "PRIMARY"
    }
}

/// Builds index definitions from `(schema, table, index, non_unique,
/// seq_in_index, column)` rows in any order.
pub(crate) fn index_defs(rows: Vec<StatisticsRow>) -> Vec<IndexDef> {
    let mut map: BTreeMap<IndexKey, (bool, Vec<(u32, String)>)> = BTreeMap::new();
    for (schema, table, index, non_unique, seq, column) in rows {
        let e = map
            .entry((schema, table, index))
            .or_insert((!non_unique, Vec::new()));
        e.1.push((seq, column));
    }
    map.into_iter()
        .map(|((schema, table, index), (unique, mut cols))| {
            cols.sort();
            IndexDef {
                schema,
                table,
                index,
                columns: cols.into_iter().map(|(_, c)| c).collect(),
                unique,
            }
        })
        .collect()
}

/// Foreign keys as `(schema, table) → [columns in order]` from
/// `(schema, table, constraint, column, ordinal)` rows.
pub(crate) fn foreign_keys(rows: Vec<FkColumnRow>) -> ForeignKeys {
    let mut by_constraint: BTreeMap<(String, String, String), Vec<(u32, String)>> = BTreeMap::new();
    for (schema, table, constraint, column, ord) in rows {
        by_constraint
            .entry((schema, table, constraint))
            .or_default()
            .push((ord, column));
    }
    let mut out: ForeignKeys = BTreeMap::new();
    for ((schema, table, _), mut cols) in by_constraint {
        cols.sort();
        out.entry((schema, table))
            .or_default()
            .push(cols.into_iter().map(|(_, c)| c).collect());
    }
    out
}

/// Whether an index can back one of the table's foreign keys: the FK's
/// columns are its leading columns. Such indexes are never called unused
/// (dropping the only one fails, and the FK checks use it without showing
/// up in every read statistic).
pub(crate) fn backs_foreign_key(def: &IndexDef, fks: &ForeignKeys) -> bool {
    fks.get(&def.table_key()).is_some_and(|list| {
        list.iter().any(|fk| {
            !fk.is_empty()
                && fk.len() <= def.columns.len()
                && fk
                    .iter()
                    .zip(&def.columns)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
        })
    })
}

/// Whether an index may be judged unused at all: not PRIMARY, not UNIQUE,
/// not backing a foreign key.
pub(crate) fn eligible_for_unused(def: &IndexDef, fks: &ForeignKeys) -> bool {
    !def.is_primary() && !def.unique && !backs_foreign_key(def, fks)
}

/// The unused verdict: an eligible index with zero reads since the stats
/// began. `reads` is `None` when the stats source has no row for the index
/// (performance_schema: table never opened; userstat: never read), which
/// means no reads either.
pub(crate) fn is_unused(def: &IndexDef, fks: &ForeignKeys, reads: Option<u64>) -> bool {
    eligible_for_unused(def, fks) && reads.unwrap_or(0) == 0
}

/// Redundant indexes: a non-unique, non-primary index whose columns are a
/// leading prefix of another index of the same table (or identical to one;
/// of two identical non-unique indexes the one with the greater name is the
/// redundant one). Returns `(index, covered_by)` pairs.
pub(crate) fn redundant_indexes(defs: &[IndexDef]) -> Vec<(&IndexDef, &IndexDef)> {
    // Only indexes of the same table can cover each other: grouping first
    // keeps this linear in the number of tables (5,000 tables with 10,000
    // indexes took seconds of CPU as a pairwise scan, which stalled the
    // single async worker).
    let mut by_table: HashMap<(&str, &str), Vec<&IndexDef>> = HashMap::new();
    for d in defs {
        by_table
            .entry((d.schema.as_str(), d.table.as_str()))
            .or_default()
            .push(d);
    }
    let mut out = Vec::new();
    for a in defs {
        if a.unique || a.is_primary() || a.columns.is_empty() {
            continue;
        }
        let siblings = &by_table[&(a.schema.as_str(), a.table.as_str())];
        let covering = siblings.iter().copied().find(|b| {
            if std::ptr::eq(*b, a) {
                return false;
            }
            let prefix = b.columns.len() >= a.columns.len()
                && a.columns
                    .iter()
                    .zip(&b.columns)
                    .all(|(x, y)| x.eq_ignore_ascii_case(y));
            if !prefix {
                return false;
            }
            if b.columns.len() > a.columns.len() || b.unique {
                return true;
            }
            // Identical non-unique pair: keep the smaller name.
            b.index < a.index
        });
        if let Some(b) = covering {
            out.push((a, b));
        }
    }
    out
}

/// Reads per table, for the missing-index rule.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TableReads {
    /// Rows read without an index (full scans).
    pub full_scan: u64,
    /// Rows read through an index.
    pub via_index: u64,
}

impl TableReads {
    /// Share of rows read without an index; `None` without reads.
    pub fn full_scan_ratio(&self) -> Option<f64> {
        let total = self.full_scan + self.via_index;
        (total > 0).then(|| self.full_scan as f64 / total as f64)
    }
}

/// From performance_schema: `(schema, table, index or None, count_read)`
/// rows. `INDEX_NAME IS NULL` rows are reads without an index.
pub(crate) fn table_reads_from_perf_schema(
    rows: &[(String, String, Option<String>, u64)],
) -> BTreeMap<TableKey, TableReads> {
    let mut out: BTreeMap<TableKey, TableReads> = BTreeMap::new();
    for (schema, table, index, reads) in rows {
        let e = out.entry((schema.clone(), table.clone())).or_default();
        match index {
            None => e.full_scan += reads,
            Some(_) => e.via_index += reads,
        }
    }
    out
}

/// From MariaDB userstat: TABLE_STATISTICS `ROWS_READ` per table (every row
/// read) and INDEX_STATISTICS `ROWS_READ` per index (rows read through it).
/// Rows read without an index = table rows read − index rows read.
pub(crate) fn table_reads_from_userstat(
    table_rows_read: &BTreeMap<TableKey, u64>,
    index_rows_read: &BTreeMap<IndexKey, u64>,
) -> BTreeMap<TableKey, TableReads> {
    let mut via: BTreeMap<TableKey, u64> = BTreeMap::new();
    for ((s, t, _), n) in index_rows_read {
        *via.entry((s.clone(), t.clone())).or_default() += n;
    }
    let mut out = BTreeMap::new();
    for (key, total) in table_rows_read {
        let v = via.get(key).copied().unwrap_or(0);
        out.insert(
            key.clone(),
            TableReads {
                full_scan: total.saturating_sub(v),
                via_index: v.min(*total),
            },
        );
    }
    out
}

/// Missing-index thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MissingIndexRule {
    /// Minimum table rows (estimate).
    pub min_rows: u64,
    /// Minimum share of rows read by full scans.
    pub min_full_scan_ratio: f64,
}

impl MissingIndexRule {
    /// Whether a table with `rows` rows and these reads is a candidate.
    pub fn is_candidate(&self, rows: u64, reads: &TableReads) -> bool {
        rows >= self.min_rows
            && reads.full_scan > 0
            && reads
                .full_scan_ratio()
                .is_some_and(|r| r >= self.min_full_scan_ratio)
    }
}

/// Splits `items` into the `n` heaviest (by `weight`, ties by original
/// order) and the rest; both keep their original order. The input order
/// should be deterministic (e.g. sorted by name) so the cut is stable.
pub(crate) fn top_n<T>(items: Vec<T>, n: usize, weight: impl Fn(&T) -> f64) -> (Vec<T>, Vec<T>) {
    if items.len() <= n {
        return (items, Vec::new());
    }
    // Each weight once: the sort compares O(n log n) times, and a weight may
    // be a map lookup with an owned key.
    let weights: Vec<f64> = items.iter().map(&weight).collect();
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        weights[b]
            .partial_cmp(&weights[a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    let keep: BTreeSet<usize> = order.into_iter().take(n).collect();
    let mut kept = Vec::with_capacity(n);
    let mut rest = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if keep.contains(&i) {
            kept.push(item);
        } else {
            rest.push(item);
        }
    }
    (kept, rest)
}

/// Tracks when the read statistics began: at server start (`Uptime`), or
/// later when perfwatch sees the totals go down (TRUNCATE of the
/// performance_schema table, `FLUSH INDEX_STATISTICS`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StatsEpoch {
    reset_at_unix: Option<f64>,
    last_total: Option<u64>,
    last_started_unix: Option<f64>,
}

impl StatsEpoch {
    /// Records one reading: the sum of all counts, the server uptime, and
    /// the current time. Returns the stats age in seconds.
    pub fn observe(&mut self, total: u64, uptime: f64, now_unix: f64) -> f64 {
        let started = now_unix - uptime;
        // A restart moves the start time forward (allow clock jitter).
        let restarted = self
            .last_started_unix
            .is_some_and(|prev| started > prev + 2.0);
        if restarted {
            self.reset_at_unix = None;
        } else if self.last_total.is_some_and(|prev| total < prev) {
            self.reset_at_unix = Some(now_unix);
        }
        self.last_total = Some(total);
        self.last_started_unix = Some(started);
        match self.reset_at_unix {
            Some(t) => (now_unix - t).clamp(0.0, uptime.max(0.0)),
            None => uptime.max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(table: &str, index: &str, cols: &[&str], unique: bool) -> IndexDef {
        IndexDef {
            schema: "app".into(),
            table: table.into(),
            index: index.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            unique,
        }
    }

    fn fks() -> ForeignKeys {
        foreign_keys(vec![
            (
                "app".into(),
                "trip".into(),
                "fk_driver".into(),
                "driver_id".into(),
                1,
            ),
            ("app".into(), "loc".into(), "fk_two".into(), "b".into(), 2),
            ("app".into(), "loc".into(), "fk_two".into(), "a".into(), 1),
        ])
    }

    #[test]
    fn index_defs_group_and_order_columns() {
        let rows = vec![
            (
                "app".into(),
                "trip".into(),
                "idx_s".into(),
                true,
                2,
                "start".into(),
            ),
            (
                "app".into(),
                "trip".into(),
                "PRIMARY".into(),
                false,
                1,
                "id".into(),
            ),
            (
                "app".into(),
                "trip".into(),
                "idx_s".into(),
                true,
                1,
                "status".into(),
            ),
        ];
        let defs = index_defs(rows);
        assert_eq!(
            defs,
            vec![
                def("trip", "PRIMARY", &["id"], true),
                def("trip", "idx_s", &["status", "start"], false)
            ]
        );
    }

    #[test]
    fn unused_verdict_table() {
        let f = fks();
        let cases = [
            (def("trip", "PRIMARY", &["id"], true), None, false),
            (def("trip", "uq_code", &["code"], true), Some(0), false),
            (def("trip", "fk_driver", &["driver_id"], false), None, false),
            (
                def("trip", "idx_driver_start", &["driver_id", "start"], false),
                Some(0),
                false,
            ),
            (def("trip", "idx_note", &["note"], false), None, true),
            (def("trip", "idx_note", &["note"], false), Some(0), true),
            (def("trip", "idx_start", &["start"], false), Some(24), false),
            (def("loc", "idx_ab", &["a", "b"], false), Some(0), false),
            (def("loc", "idx_ba", &["b", "a"], false), Some(0), true),
            (
                def("other", "fk_driver", &["driver_id"], false),
                Some(0),
                true,
            ),
        ];
        for (d, reads, want) in cases {
            assert_eq!(is_unused(&d, &f, reads), want, "{} {:?}", d.index, reads);
        }
    }

    #[test]
    fn redundant_table() {
        let defs = vec![
            def("trip", "PRIMARY", &["id"], true),
            def("trip", "idx_status", &["status"], false),
            def("trip", "idx_status_start", &["status", "start"], false),
            def("trip", "idx_dup_a", &["note"], false),
            def("trip", "idx_dup_b", &["note"], false),
            def("trip", "idx_id", &["id"], false),
            def("trip", "uq_status", &["status", "start", "x"], true),
            def("loc", "idx_status", &["status"], false),
        ];
        let got: Vec<(&str, &str)> = redundant_indexes(&defs)
            .into_iter()
            .map(|(a, b)| (a.index.as_str(), b.index.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("idx_status", "idx_status_start"),
                ("idx_status_start", "uq_status"),
                ("idx_dup_b", "idx_dup_a"),
                ("idx_id", "PRIMARY"),
            ]
        );
    }

    #[test]
    fn table_reads_and_missing_index_rule() {
        let ps = vec![
            ("app".into(), "trip".into(), None, 40_000),
            ("app".into(), "trip".into(), Some("idx_start".into()), 24),
            ("app".into(), "trip".into(), Some("PRIMARY".into()), 0),
            ("app".into(), "driver".into(), Some("PRIMARY".into()), 10),
        ];
        let reads = table_reads_from_perf_schema(&ps);
        let trip = reads[&("app".to_owned(), "trip".to_owned())];
        assert_eq!(
            trip,
            TableReads {
                full_scan: 40_000,
                via_index: 24
            }
        );
        let mut tr = BTreeMap::new();
        tr.insert(("app".to_owned(), "trip".to_owned()), 40_024);
        tr.insert(("app".to_owned(), "driver".to_owned()), 5);
        let mut ir = BTreeMap::new();
        ir.insert(
            ("app".to_owned(), "trip".to_owned(), "idx_start".to_owned()),
            24,
        );
        ir.insert(
            ("app".to_owned(), "driver".to_owned(), "PRIMARY".to_owned()),
            10,
        );
        let us = table_reads_from_userstat(&tr, &ir);
        assert_eq!(us[&("app".to_owned(), "trip".to_owned())], trip);
        assert_eq!(
            us[&("app".to_owned(), "driver".to_owned())],
            TableReads {
                full_scan: 0,
                via_index: 5
            }
        );
        let rule = MissingIndexRule {
            min_rows: 1000,
            min_full_scan_ratio: 0.5,
        };
        let r = |full, via| TableReads {
            full_scan: full,
            via_index: via,
        };
        let cases = [
            (2000, r(40_000, 24), true),
            (999, r(40_000, 24), false),
            (2000, r(10, 90), false),
            (2000, r(50, 50), true),
            (2000, r(0, 0), false),
        ];
        for (rows, reads, want) in cases {
            assert_eq!(rule.is_candidate(rows, &reads), want, "{rows} {reads:?}");
        }
    }

    #[test]
    fn top_n_keeps_heaviest_in_order() {
        let items = vec![("a", 1.0), ("b", 5.0), ("c", 3.0), ("d", 5.0)];
        let (kept, rest) = top_n(items.clone(), 2, |x| x.1);
        assert_eq!(kept, vec![("b", 5.0), ("d", 5.0)]);
        assert_eq!(rest, vec![("a", 1.0), ("c", 3.0)]);
        let (kept, rest) = top_n(items.clone(), 10, |x| x.1);
        assert_eq!((kept.len(), rest.len()), (4, 0));
        let (kept, _) = top_n(items, 3, |x| x.1);
        assert_eq!(kept, vec![("b", 5.0), ("c", 3.0), ("d", 5.0)]);
    }

    #[test]
    fn stats_epoch_table() {
        let mut e = StatsEpoch::default();
        // (total, uptime, now, want age)
        let steps = [
            (100, 1000.0, 10_000.0, 1000.0),
            (150, 1300.0, 10_300.0, 1300.0),
            // totals went down: truncation seen now
            (10, 1600.0, 10_600.0, 0.0),
            (20, 1900.0, 10_900.0, 300.0),
            // restart: back to uptime
            (5, 50.0, 11_000.0, 50.0),
            (9, 350.0, 11_300.0, 350.0),
        ];
        for (total, uptime, now, want) in steps {
            assert_eq!(
                e.observe(total, uptime, now),
                want,
                "{total} {uptime} {now}"
            );
        }
    }
}
