//! Export of the index and table pass (pure: rows in, families out).
//! Everything is bounded: indexes beyond `max_indexes` and tables beyond
//! `max_tables` are summed per schema as `other`, so the series count stays
//! fixed whatever the schema size.

use std::collections::BTreeMap;

use super::catalog;
use super::schema::{
    self, ForeignKeys, IndexDef, IndexKey, MissingIndexRule, TableKey, TableReads,
};
use super::sql::{IoRow, TableRow};
use crate::exposition::{Families, with_labels};

/// The `operation` label values, in `IoRow::ops` order.
const OPERATIONS: [&str; 4] = ["fetch", "insert", "update", "delete"];

/// Exports performance_schema index I/O by operation (the busiest `max`
/// indexes, the rest summed per schema).
pub(super) fn export_io_waits(target: &str, rows: &[IoRow], max: usize, out: &mut Families) {
    let (kept, rest) = schema::top_n(rows.iter().collect(), max, |r| {
        r.ops.iter().sum::<u64>() as f64
    });
    for r in kept {
        let index = r.index.as_deref().unwrap_or("NONE");
        for (op, n) in OPERATIONS.iter().zip(r.ops) {
            out.counter(
                &catalog::INDEX_IO_WAITS,
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
            out.counter(
                &catalog::INDEX_IO_WAITS,
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

/// Exports table rows and sizes (the largest `max` tables, the rest summed
/// per schema).
pub(super) fn export_tables(target: &str, tables: &[TableRow], max: usize, out: &mut Families) {
    let (kept, rest) = schema::top_n(tables.iter().collect(), max, |t| (t.2 + t.3) as f64);
    let mut emit = |schema: &str, table: &str, rows: u64, data: u64, index: u64, free: u64| {
        let l = [("target", target), ("schema", schema), ("table", table)];
        out.gauge(&catalog::TABLE_ROWS, &l, rows as f64);
        for (component, v) in [
            ("data_length", data),
            ("index_length", index),
            ("data_free", free),
        ] {
            out.gauge(
                &catalog::TABLE_SIZE,
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
    out.gauge(
        &catalog::TABLES_AGGREGATED,
        &[("target", target)],
        rest.len() as f64,
    );
}

/// Exports index sizes and verdicts; returns the unused count when read
/// statistics exist.
pub(super) fn export_indexes(
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
            out.gauge(&catalog::INDEX_SIZE, &l, s);
        }
        if reads.is_some() && schema::eligible_for_unused(d, fks) {
            out.gauge(
                &catalog::INDEX_UNUSED,
                &l,
                if unused(d) { 1.0 } else { 0.0 },
            );
        }
        if let Some(by) = redundant.get(&key(d)) {
            let with_cover = with_labels(&l, &[("covered_by", by.as_str())]);
            out.gauge(&catalog::INDEX_REDUNDANT, &with_cover, 1.0);
        }
    }
    let mut other: BTreeMap<&str, f64> = BTreeMap::new();
    for d in &rest {
        if let Some(s) = size(d) {
            *other.entry(d.schema.as_str()).or_default() += s;
        }
    }
    for (s, bytes) in other {
        out.gauge(
            &catalog::INDEX_SIZE,
            &[
                ("target", target),
                ("schema", s),
                ("table", "other"),
                ("index", "other"),
            ],
            bytes,
        );
    }
    let t = [("target", target)];
    out.gauge(&catalog::INDEXES_AGGREGATED, &t, rest.len() as f64);
    out.gauge(&catalog::REDUNDANT_INDEXES, &t, redundant.len() as f64);
    reads?;
    let unused_defs: Vec<&IndexDef> = defs.iter().filter(|d| unused(d)).collect();
    out.gauge(&catalog::UNUSED_INDEXES, &t, unused_defs.len() as f64);
    let unused_bytes = unused_defs.iter().filter_map(|d| size(d)).sum();
    out.gauge(&catalog::UNUSED_INDEX_BYTES, &t, unused_bytes);
    Some(unused_defs.len())
}

/// Exports per-table read shares and missing-index candidates; returns the
/// candidate count.
pub(super) fn export_table_reads(
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
            out.counter(
                &catalog::TABLE_ROWS_READ,
                &[
                    ("target", target),
                    ("schema", schema),
                    ("table", "other"),
                    ("access", access),
                ],
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
            out.counter(
                &catalog::TABLE_ROWS_READ,
                &[
                    ("target", target),
                    ("schema", k.0.as_str()),
                    ("table", k.1.as_str()),
                    ("access", access),
                ],
                n as f64,
            );
        }
        if let Some(ratio) = r.full_scan_ratio() {
            out.gauge(&catalog::TABLE_FULL_SCAN_RATIO, &l, ratio);
        }
        out.gauge(
            &catalog::MISSING_INDEX_CANDIDATE,
            &l,
            if rule.is_candidate(rows, r) { 1.0 } else { 0.0 },
        );
    }
    out.gauge(
        &catalog::MISSING_INDEX_CANDIDATES,
        &[("target", target)],
        candidates as f64,
    );
    candidates
}
