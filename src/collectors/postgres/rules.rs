//! Pure judgements of the PostgreSQL collector: pool saturation, the
//! unused-index verdict, the missing-index rule, top-N + `other` bounding,
//! and error classification by SQLSTATE. No I/O here.

use crate::poll::ErrorReason;

/// `used / (max_connections - superuser_reserved_connections - reserved_connections)`,
/// the share of the connection slots ordinary roles can use. `None` when no
/// slot is left for them (a misconfigured server) rather than a division by 0.
pub(crate) fn saturation_ratio(used: f64, max_connections: f64, reserved: f64) -> Option<f64> {
    let available = max_connections - reserved;
    (available > 0.0).then(|| used / available)
}

/// One index as read from `pg_stat_user_indexes` joined with `pg_index`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexStat {
    /// Schema of the table.
    pub schemaname: String,
    /// The table.
    pub relname: String,
    /// The index.
    pub indexrelname: String,
    /// Index scans since the statistics were reset.
    pub idx_scan: f64,
    /// Index entries returned by scans.
    pub idx_tup_read: f64,
    /// Live table rows fetched by simple index scans.
    pub idx_tup_fetch: f64,
    /// `pg_relation_size` of the index.
    pub size_bytes: f64,
    /// Primary key, unique, or backing a constraint (never "unused": it
    /// enforces something even when no query reads it).
    pub enforces_constraint: bool,
}

#[cfg(test)]
impl IndexStat {
    /// A test index `public.t.<name>` with these scans, size and constraint
    /// flag (no tuples read or fetched).
    pub(crate) fn sample(name: &str, scans: f64, size: f64, enforces: bool) -> Self {
        IndexStat {
            schemaname: "public".into(),
            relname: "t".into(),
            indexrelname: name.into(),
            idx_scan: scans,
            idx_tup_read: 0.0,
            idx_tup_fetch: 0.0,
            size_bytes: size,
            enforces_constraint: enforces,
        }
    }
}

/// How many `pg_stat_database` columns perfwatch exports (numbackends
/// through deadlocks, in `metrics::STAT_DATABASE` order).
pub(crate) const STAT_DATABASE_COLUMNS: usize = 14;

/// One row of `pg_stat_database` with the database's size.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DatabaseStat {
    /// The database's OID as text (`"0"` for the shared-objects row).
    pub datid: String,
    /// The database (empty for the shared-objects row).
    pub datname: String,
    /// The exported columns, in `metrics::STAT_DATABASE` order.
    pub columns: [f64; STAT_DATABASE_COLUMNS],
    /// `pg_database_size`, when the role may read it.
    pub size_bytes: Option<f64>,
}

impl DatabaseStat {
    /// Transactions since the statistics were reset (columns 1 and 2:
    /// xact_commit + xact_rollback).
    fn transactions(&self) -> f64 {
        self.columns[1] + self.columns[2]
    }
}

/// Sorts databases for bounding: most transactions first (the busy ones are
/// what the dashboards look at; a cumulative count keeps the order stable),
/// then by name.
pub(crate) fn sort_databases(v: &mut [DatabaseStat]) {
    v.sort_by(|a, b| {
        b.transactions()
            .total_cmp(&a.transactions())
            .then_with(|| a.datname.cmp(&b.datname))
    });
}

/// Whether an index is unused: no scan since the statistics were reset and
/// it enforces no constraint (primary keys, unique indexes and indexes
/// backing a constraint are never reported).
pub(crate) fn index_unused(i: &IndexStat) -> bool {
    i.idx_scan == 0.0 && !i.enforces_constraint
}

/// One table as read from `pg_stat_user_tables` joined with `pg_class`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TableStat {
    /// Schema.
    pub schemaname: String,
    /// Table.
    pub relname: String,
    /// Sequential scans.
    pub seq_scan: f64,
    /// Rows read by sequential scans.
    pub seq_tup_read: f64,
    /// Index scans over all the table's indexes (0 when it has none).
    pub idx_scan: f64,
    /// Estimated live rows (`n_live_tup`).
    pub n_live_tup: f64,
    /// Estimated dead rows.
    pub n_dead_tup: f64,
    /// Planner's row estimate (`pg_class.reltuples`, -1 → 0 when never analyzed).
    pub reltuples: f64,
    /// `pg_total_relation_size` (table + indexes + TOAST).
    pub total_bytes: f64,
}

/// Thresholds of the missing-index rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MissingIndexRule {
    /// Live rows a table needs (small tables are fine to scan).
    pub min_table_rows: f64,
    /// Sequential scans a table needs.
    pub min_seq_scans: f64,
    /// `seq_scan / (seq_scan + idx_scan)` must be above this.
    pub seq_ratio: f64,
}

impl MissingIndexRule {
    /// Whether `t` looks like it lacks an index: big enough (live rows ≥
    /// `min_table_rows`), scanned sequentially often enough (≥ `min_seq_scans`),
    /// mostly sequentially (share above `seq_ratio`) and reading on average at
    /// least `min_table_rows` rows per sequential scan (so `LIMIT 1` probes
    /// and scans of a then-empty table do not count).
    pub fn candidate(&self, t: &TableStat) -> bool {
        let rows = t.n_live_tup.max(t.reltuples);
        if rows < self.min_table_rows || t.seq_scan < self.min_seq_scans || t.seq_scan <= 0.0 {
            return false;
        }
        let share = t.seq_scan / (t.seq_scan + t.idx_scan);
        let per_scan = t.seq_tup_read / t.seq_scan;
        share > self.seq_ratio && per_scan >= self.min_table_rows
    }
}

/// Keeps the first `n` items of `items` (already in priority order) and
/// folds the rest into one with `fold`; returns the kept items and the
/// aggregate of the rest (`None` when nothing was dropped).
pub(crate) fn top_n_with_other<T, A>(
    items: Vec<T>,
    n: usize,
    init: A,
    mut fold: impl FnMut(A, &T) -> A,
) -> (Vec<T>, Option<A>) {
    if items.len() <= n {
        return (items, None);
    }
    let mut kept = items;
    let rest = kept.split_off(n);
    let other = rest.iter().fold(init, &mut fold);
    (kept, Some(other))
}

/// Sorts indexes for bounding: largest first, then by name (stable series).
pub(crate) fn sort_indexes(v: &mut [IndexStat]) {
    v.sort_by(|a, b| {
        b.size_bytes
            .total_cmp(&a.size_bytes)
            .then_with(|| a.schemaname.cmp(&b.schemaname))
            .then_with(|| a.indexrelname.cmp(&b.indexrelname))
    });
}

/// Sorts tables for bounding: missing-index candidates first (what users
/// look at), then by total size, then by scans (size + activity), then name.
pub(crate) fn sort_tables(v: &mut [TableStat], rule: &MissingIndexRule) {
    v.sort_by(|a, b| {
        rule.candidate(b)
            .cmp(&rule.candidate(a))
            .then_with(|| b.total_bytes.total_cmp(&a.total_bytes))
            .then_with(|| (b.seq_scan + b.idx_scan).total_cmp(&(a.seq_scan + a.idx_scan)))
            .then_with(|| a.schemaname.cmp(&b.schemaname))
            .then_with(|| a.relname.cmp(&b.relname))
    });
}

/// The reason label for a PostgreSQL SQLSTATE.
pub(crate) fn classify_sqlstate(code: &str) -> ErrorReason {
    match code {
        "28P01" | "28000" => ErrorReason::Auth,
        "42501" => ErrorReason::Permission,
        "57014" | "55P03" => ErrorReason::Timeout,
        // too_many_connections, admin_shutdown, crash_shutdown, cannot_connect_now,
        // database does not exist.
        "53300" | "57P01" | "57P02" | "57P03" | "3D000" => ErrorReason::Connect,
        c if c.starts_with("08") => ErrorReason::Connect,
        _ => ErrorReason::Query,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_table() {
        let cases = [
            (5.0, 20.0, 3.0, Some(5.0 / 17.0)),
            (0.0, 100.0, 3.0, Some(0.0)),
            (17.0, 20.0, 3.0, Some(1.0)),
            (1.0, 3.0, 3.0, None),
            (1.0, 2.0, 3.0, None),
        ];
        for (used, max, reserved, want) in cases {
            assert_eq!(
                saturation_ratio(used, max, reserved),
                want,
                "{used}/{max}-{reserved}"
            );
        }
    }

    fn idx(name: &str, scans: f64, size: f64, enforces: bool) -> IndexStat {
        IndexStat::sample(name, scans, size, enforces)
    }

    #[test]
    fn unused_verdict_table() {
        let cases = [
            (idx("used", 3.0, 1.0, false), false),
            (idx("unused", 0.0, 1.0, false), true),
            (idx("pkey_unscanned", 0.0, 1.0, true), false),
            (idx("unique_scanned", 1.0, 1.0, true), false),
        ];
        for (i, want) in cases {
            assert_eq!(index_unused(&i), want, "{}", i.indexrelname);
        }
    }

    fn table(seq: f64, seq_read: f64, idx: f64, live: f64) -> TableStat {
        TableStat {
            schemaname: "public".into(),
            relname: "t".into(),
            seq_scan: seq,
            seq_tup_read: seq_read,
            idx_scan: idx,
            n_live_tup: live,
            n_dead_tup: 0.0,
            reltuples: 0.0,
            total_bytes: 0.0,
        }
    }

    #[test]
    fn missing_index_table() {
        let rule = MissingIndexRule {
            min_table_rows: 1000.0,
            min_seq_scans: 10.0,
            seq_ratio: 0.5,
        };
        let cases = [
            // 20 full scans of 5000 rows, no index use: candidate.
            (table(20.0, 100_000.0, 0.0, 5000.0), true),
            // Small table: scanning is fine.
            (table(20.0, 10_000.0, 0.0, 500.0), false),
            // Too few scans.
            (table(9.0, 45_000.0, 0.0, 5000.0), false),
            // Mostly index scans.
            (table(20.0, 100_000.0, 100.0, 5000.0), false),
            // Exactly half sequential: not above the ratio.
            (table(20.0, 100_000.0, 20.0, 5000.0), false),
            // LIMIT probes reading few rows per scan.
            (table(50.0, 50.0, 0.0, 5000.0), false),
            // Never scanned.
            (table(0.0, 0.0, 0.0, 5000.0), false),
        ];
        for (i, (t, want)) in cases.iter().enumerate() {
            assert_eq!(rule.candidate(t), *want, "case {i}: {t:?}");
        }
        // reltuples counts when n_live_tup is not known yet.
        let mut t = table(20.0, 100_000.0, 0.0, 0.0);
        t.reltuples = 5000.0;
        assert!(rule.candidate(&t));
    }

    #[test]
    fn top_n_with_other_table() {
        /// (items, n, kept, sum of the rest)
        type Case = (Vec<u32>, usize, Vec<u32>, Option<u32>);
        let cases: [Case; 4] = [
            (vec![5, 4, 3], 5, vec![5, 4, 3], None),
            (vec![5, 4, 3], 3, vec![5, 4, 3], None),
            (vec![5, 4, 3, 2], 2, vec![5, 4], Some(5)),
            (vec![5, 4, 3, 2], 1, vec![5], Some(9)),
        ];
        for (items, n, kept, other) in cases {
            let (k, o) = top_n_with_other(items, n, 0, |acc, x| acc + x);
            assert_eq!((k, o), (kept, other));
        }
    }

    #[test]
    fn sorting_is_by_size_then_name() {
        let mut v = vec![
            idx("b", 0.0, 10.0, false),
            idx("a", 0.0, 10.0, false),
            idx("c", 0.0, 99.0, false),
        ];
        sort_indexes(&mut v);
        let names: Vec<_> = v.iter().map(|i| i.indexrelname.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        let rule = MissingIndexRule {
            min_table_rows: 1000.0,
            min_seq_scans: 10.0,
            seq_ratio: 0.5,
        };
        let mut big = table(0.0, 0.0, 0.0, 10.0);
        big.total_bytes = 1e9;
        big.relname = "big".into();
        let mut cand = table(20.0, 100_000.0, 0.0, 5000.0);
        cand.relname = "cand".into();
        let mut tables = vec![big, cand];
        sort_tables(&mut tables, &rule);
        assert_eq!(tables[0].relname, "cand");
    }

    #[test]
    fn sqlstate_table() {
        let cases = [
            ("28P01", ErrorReason::Auth),
            ("28000", ErrorReason::Auth),
            ("42501", ErrorReason::Permission),
            ("57014", ErrorReason::Timeout),
            ("55P03", ErrorReason::Timeout),
            ("53300", ErrorReason::Connect),
            ("08006", ErrorReason::Connect),
            ("3D000", ErrorReason::Connect),
            ("42601", ErrorReason::Query),
        ];
        for (code, want) in cases {
            assert_eq!(classify_sqlstate(code), want, "{code}");
        }
    }
}
