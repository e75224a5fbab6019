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

/// The session states postgres_exporter exports per database, zeros
/// included (its `pg_stat_activity` query joins them to `pg_database`).
pub(crate) const ACTIVITY_STATES: [&str; 6] = [
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
];

/// The lock modes postgres_exporter exports per database (`pg_locks.mode`
/// lowercased), zeros included.
pub(crate) const LOCK_MODES: [&str; 9] = [
    "accesssharelock",
    "rowsharelock",
    "rowexclusivelock",
    "shareupdateexclusivelock",
    "sharelock",
    "sharerowexclusivelock",
    "exclusivelock",
    "accessexclusivelock",
    "sireadlock",
];

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
    /// Sessions by state ([`ACTIVITY_STATES`] order), every backend as
    /// postgres_exporter counts them (monitoring sessions included).
    pub sessions: [f64; ACTIVITY_STATES.len()],
    /// Age in seconds of the oldest transaction per state (0 when none).
    pub max_tx: [f64; ACTIVITY_STATES.len()],
    /// Locks held or awaited by mode ([`LOCK_MODES`] order).
    pub locks: [f64; LOCK_MODES.len()],
}

impl DatabaseStat {
    /// A database with every count 0 and no size.
    pub(crate) fn empty(datid: &str, datname: &str) -> Self {
        DatabaseStat {
            datid: datid.into(),
            datname: datname.into(),
            columns: [0.0; STAT_DATABASE_COLUMNS],
            size_bytes: None,
            sessions: [0.0; ACTIVITY_STATES.len()],
            max_tx: [0.0; ACTIVITY_STATES.len()],
            locks: [0.0; LOCK_MODES.len()],
        }
    }

    /// Whether this is a database of `pg_database` or `other` (not the
    /// shared-objects row `datid = 0`): only those have sessions and locks,
    /// as in postgres_exporter.
    pub(crate) fn is_database(&self) -> bool {
        self.datid != "0"
    }

    /// Adds `d`'s counts to these (`max_tx` is the larger of both): what
    /// `datname="other"` shows.
    pub(crate) fn absorb(&mut self, d: &DatabaseStat) {
        for (sum, v) in self.columns.iter_mut().zip(d.columns) {
            *sum += v;
        }
        if let Some(size) = d.size_bytes {
            self.size_bytes = Some(self.size_bytes.unwrap_or(0.0) + size);
        }
        for (sum, v) in self.sessions.iter_mut().zip(d.sessions) {
            *sum += v;
        }
        for (max, v) in self.max_tx.iter_mut().zip(d.max_tx) {
            *max = max.max(v);
        }
        for (sum, v) in self.locks.iter_mut().zip(d.locks) {
            *sum += v;
        }
    }

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

/// A numeric `pg_settings` row exported the way postgres_exporter does it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Setting {
    /// The setting (`pg_settings.name`), e.g. `max_connections`.
    pub name: String,
    /// The family: `pg_settings_` + the name with `.` and `-` as `_`, plus
    /// `_seconds` or `_bytes` for a setting with a time or size unit.
    pub metric: String,
    /// The value in seconds or bytes (a bool is 1 or 0; -1, "disabled" for
    /// many settings, is kept as -1).
    pub value: f64,
    /// The HELP text, postgres_exporter's (made once, when read).
    pub help: String,
}

/// postgres_exporter's conversion of a `pg_settings` row (`vartype` bool,
/// integer or real): the unit word of the family name, and the factor to
/// base units. `None` for a unit it does not know (the row is skipped, as
/// postgres_exporter skips it).
fn setting_unit(unit: &str) -> Option<(&'static str, f64)> {
    let kib = 1024.0;
    Some(match unit {
        "" => ("", 1.0),
        "ms" => ("seconds", 0.001),
        "s" => ("seconds", 1.0),
        "min" => ("seconds", 60.0),
        "h" => ("seconds", 3600.0),
        "d" => ("seconds", 86_400.0),
        "B" => ("bytes", 1.0),
        "kB" | "1kB" => ("bytes", kib),
        "2kB" => ("bytes", 2.0 * kib),
        "4kB" => ("bytes", 4.0 * kib),
        "8kB" => ("bytes", 8.0 * kib),
        "16kB" => ("bytes", 16.0 * kib),
        "32kB" => ("bytes", 32.0 * kib),
        "64kB" => ("bytes", 64.0 * kib),
        "MB" => ("bytes", kib * kib),
        "16MB" => ("bytes", 16.0 * kib * kib),
        "32MB" => ("bytes", 32.0 * kib * kib),
        "64MB" => ("bytes", 64.0 * kib * kib),
        "GB" => ("bytes", kib * kib * kib),
        "TB" => ("bytes", kib * kib * kib * kib),
        _ => return None,
    })
}

/// One `pg_settings` row (`name`, `setting`, `unit`, `vartype`) as
/// postgres_exporter exports it; `None` when it would skip it (an unknown
/// unit or vartype, a value that is no number) or the name cannot be a
/// metric name.
pub(crate) fn setting(name: &str, setting: &str, unit: &str, vartype: &str) -> Option<Setting> {
    let base = name.replace(['.', '-'], "_");
    let valid = base.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if base.is_empty() || !valid {
        return None;
    }
    let (suffix, value) = match vartype {
        "bool" => ("", if setting == "on" { 1.0 } else { 0.0 }),
        "integer" | "real" => {
            let v: f64 = setting.trim().parse().ok()?;
            let (suffix, factor) = setting_unit(unit)?;
            // -1 means "disabled" for many settings: kept as is.
            (suffix, if v == -1.0 { v } else { v * factor })
        }
        _ => return None,
    };
    let (metric, help) = if suffix.is_empty() {
        (
            format!("pg_settings_{base}"),
            format!("Server Parameter: {name}"),
        )
    } else {
        (
            format!("pg_settings_{base}_{suffix}"),
            format!("Server Parameter: {name} [Units converted to {suffix}.]"),
        )
    };
    Some(Setting {
        name: name.to_owned(),
        metric,
        value,
        help,
    })
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
    fn settings_are_named_and_converted_like_postgres_exporter() {
        /// (name, setting, unit, vartype, expected family and value)
        type Case<'a> = (&'a str, &'a str, &'a str, &'a str, Option<(&'a str, f64)>);
        #[rustfmt::skip]
        let cases: [Case; 11] = [
            ("max_connections", "100", "", "integer", Some(("pg_settings_max_connections", 100.0))),
            ("shared_buffers", "16384", "8kB", "integer", Some(("pg_settings_shared_buffers_bytes", 134_217_728.0))),
            ("work_mem", "4096", "kB", "integer", Some(("pg_settings_work_mem_bytes", 4_194_304.0))),
            ("bgwriter_delay", "200", "ms", "integer", Some(("pg_settings_bgwriter_delay_seconds", 0.2))),
            ("autovacuum_naptime", "1", "min", "integer", Some(("pg_settings_autovacuum_naptime_seconds", 60.0))),
            ("autovacuum_work_mem", "-1", "kB", "integer", Some(("pg_settings_autovacuum_work_mem_bytes", -1.0))),
            ("autovacuum_vacuum_scale_factor", "0.2", "", "real", Some(("pg_settings_autovacuum_vacuum_scale_factor", 0.2))),
            ("log_file_mode", "0600", "", "integer", Some(("pg_settings_log_file_mode", 600.0))),
            ("fsync", "on", "", "bool", Some(("pg_settings_fsync", 1.0))),
            ("pg_stat_statements.track-x", "off", "", "bool", Some(("pg_settings_pg_stat_statements_track_x", 0.0))),
            ("odd", "1", "parsec", "integer", None),
        ];
        for (name, value, unit, vartype, want) in cases {
            let got = setting(name, value, unit, vartype).map(|s| (s.metric, s.value));
            assert_eq!(
                got,
                want.map(|(m, v)| (m.to_owned(), v)),
                "{name} = {value} {unit}"
            );
        }
        assert_eq!(setting("application_name", "x", "", "string"), None);
        assert_eq!(setting("x", "abc", "", "integer"), None);
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
