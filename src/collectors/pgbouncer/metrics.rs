//! Maps parsed `SHOW` results to metric families (pure).
//!
//! Raw PgBouncer facts keep pgbouncer_exporter's names (plus a `target`
//! label) so its dashboards work; perfwatch's judgement (pool saturation) is
//! the cross-collector `perfwatch_pool_saturation_ratio`.
//!
//! Series are bounded: the first `max_pools` (database, user) pools and the
//! first `max_pools` databases, in name order (stable across polls, so a
//! series never hops between its own label and `other`), keep their labels;
//! the rest are summed into `database="other"` (`user="other"`), with the
//! maximum for `maxwait` and saturation.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::catalog;
use super::parse::{Database, Pool, Stats};
use crate::catalog::{MetricDef, POOL_SATURATION};
use crate::collectors::fold_fields;
use crate::exposition::Families;

/// The label value that folded pools and databases share.
pub const OTHER: &str = "other";

/// What one poll read from the admin console.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// From `SHOW VERSION`.
    pub version: Option<String>,
    /// `SHOW POOLS`.
    pub pools: Vec<Pool>,
    /// `SHOW STATS`.
    pub stats: Vec<Stats>,
    /// `SHOW DATABASES`.
    pub databases: Vec<Database>,
}

/// A column exported as-is: (field, family).
type Column<T> = (fn(&T) -> Option<u64>, &'static MetricDef);

/// A column exported divided by a unit: (field, family, divisor).
type ScaledColumn<T> = (fn(&T) -> Option<u64>, &'static MetricDef, f64);

/// Pool gauges.
const POOL_GAUGES: &[Column<Pool>] = &[
    (|p| p.cl_active, &catalog::POOLS_CLIENT_ACTIVE_CONNECTIONS),
    (|p| p.cl_waiting, &catalog::POOLS_CLIENT_WAITING_CONNECTIONS),
    (|p| p.sv_active, &catalog::POOLS_SERVER_ACTIVE_CONNECTIONS),
    (|p| p.sv_idle, &catalog::POOLS_SERVER_IDLE_CONNECTIONS),
    (|p| p.sv_used, &catalog::POOLS_SERVER_USED_CONNECTIONS),
    (|p| p.sv_tested, &catalog::POOLS_SERVER_TESTING_CONNECTIONS),
    (|p| p.sv_login, &catalog::POOLS_SERVER_LOGIN_CONNECTIONS),
];

/// Stats counters. Dividing microseconds by 1e6 (rather than multiplying by
/// 1e-6) keeps 413 µs at 0.000413.
const STATS_COUNTERS: &[ScaledColumn<Stats>] = &[
    (|s| s.query_count, &catalog::STATS_QUERIES_POOLED_TOTAL, 1.0),
    (
        |s| s.query_time_us,
        &catalog::STATS_QUERIES_DURATION_SECONDS_TOTAL,
        1e6,
    ),
    (
        |s| s.wait_time_us,
        &catalog::STATS_CLIENT_WAIT_SECONDS_TOTAL,
        1e6,
    ),
    (
        |s| s.xact_count,
        &catalog::STATS_SQL_TRANSACTIONS_POOLED_TOTAL,
        1.0,
    ),
    (
        |s| s.xact_time_us,
        &catalog::STATS_SERVER_IN_TRANSACTION_SECONDS_TOTAL,
        1e6,
    ),
    (
        |s| s.received_bytes,
        &catalog::STATS_RECEIVED_BYTES_TOTAL,
        1.0,
    ),
    (|s| s.sent_bytes, &catalog::STATS_SENT_BYTES_TOTAL, 1.0),
];

/// Database gauges.
const DATABASE_GAUGES: &[Column<Database>] = &[
    (|d| d.pool_size, &catalog::DATABASES_POOL_SIZE),
    (|d| d.min_pool_size, &catalog::DATABASES_MIN_POOL_SIZE),
    (|d| d.reserve_pool, &catalog::DATABASES_RESERVE_POOL),
    (|d| d.max_connections, &catalog::DATABASES_MAX_CONNECTIONS),
    (
        |d| d.current_connections,
        &catalog::DATABASES_CURRENT_CONNECTIONS,
    ),
    (|d| d.paused.map(u64::from), &catalog::DATABASES_PAUSED),
    (|d| d.disabled.map(u64::from), &catalog::DATABASES_DISABLED),
];

/// Totals for the landing page and self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Pools PgBouncer reported.
    pub pools: usize,
    /// Pools summed into `other`.
    pub pools_folded: usize,
    /// Databases summed into `other` (SHOW DATABASES and SHOW STATS).
    pub databases_folded: usize,
    /// Waiting clients over all pools.
    pub waiting: u64,
    /// Active clients over all pools.
    pub active: u64,
    /// Highest saturation over all databases.
    pub max_saturation: Option<f64>,
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

fn max_f(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `rows` in `order`, the ones past `max` added by `add_into` into `other`
/// (appended when there are any); with how many were folded.
fn fold_past_max<T: Clone>(
    rows: &[T],
    max: usize,
    order: impl Fn(&T, &T) -> Ordering,
    mut other: T,
    add_into: impl Fn(&mut T, &T),
) -> (Vec<T>, usize) {
    let mut sorted: Vec<&T> = rows.iter().collect();
    sorted.sort_by(|a, b| order(a, b));
    let mut out: Vec<T> = sorted.iter().take(max).map(|r| (*r).clone()).collect();
    let rest = &sorted[max.min(sorted.len())..];
    if !rest.is_empty() {
        for r in rest {
            add_into(&mut other, r);
        }
        out.push(other);
    }
    (out, rest.len())
}

/// Pools in name order, the ones past `max` summed into one `other` pool.
fn fold_pools(pools: &[Pool], max: usize) -> (Vec<Pool>, usize) {
    let other = Pool {
        database: OTHER.into(),
        user: OTHER.into(),
        ..Pool::default()
    };
    fold_past_max(
        pools,
        max,
        |a, b| (&a.database, &a.user).cmp(&(&b.database, &b.user)),
        other,
        |o, p| {
            fold_fields!(add; o, p: cl_active, cl_waiting, sv_active, sv_idle, sv_used, sv_tested,
                sv_login);
            o.maxwait_seconds = max_f(o.maxwait_seconds, p.maxwait_seconds);
        },
    )
}

fn fold_stats(stats: &[Stats], max: usize) -> (Vec<Stats>, usize) {
    let other = Stats {
        database: OTHER.into(),
        ..Stats::default()
    };
    fold_past_max(
        stats,
        max,
        |a, b| a.database.cmp(&b.database),
        other,
        |o, s| {
            fold_fields!(add; o, s: xact_count, query_count, received_bytes, sent_bytes,
                xact_time_us, query_time_us, wait_time_us);
        },
    )
}

fn fold_databases(dbs: &[Database], max: usize) -> (Vec<Database>, usize) {
    let other = Database {
        name: OTHER.into(),
        ..Database::default()
    };
    // `paused` and `disabled` are flags; the export counts them for
    // `other` (see `export`).
    fold_past_max(
        dbs,
        max,
        |a, b| a.name.cmp(&b.name),
        other,
        |o, d| {
            fold_fields!(add; o, d: pool_size, min_pool_size, reserve_pool, max_connections,
                current_connections);
        },
    )
}

/// Saturation per PgBouncer database: the fullest of its pools, in use /
/// `pool_size`. Databases without a pool size (or 0) and the admin console's
/// own `pgbouncer` database have none.
pub fn saturation(pools: &[Pool], databases: &[Database]) -> BTreeMap<String, f64> {
    let sizes: BTreeMap<&str, u64> = databases
        .iter()
        .filter_map(|d| Some((d.name.as_str(), d.pool_size.filter(|&n| n > 0)?)))
        .collect();
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for p in pools {
        if p.database == "pgbouncer" {
            continue;
        }
        let Some(&size) = sizes.get(p.database.as_str()) else {
            continue;
        };
        let in_use = p.sv_active.unwrap_or(0) + p.sv_tested.unwrap_or(0) + p.sv_login.unwrap_or(0);
        let ratio = in_use as f64 / size as f64;
        let e = out.entry(p.database.clone()).or_insert(ratio);
        *e = e.max(ratio);
    }
    out
}

/// Writes every family of one poll; returns the totals.
pub fn export(s: &Snapshot, target: &str, max_pools: usize, out: &mut Families) -> Summary {
    let max = max_pools.max(1);
    let mut summary = Summary {
        pools: s.pools.len(),
        ..Summary::default()
    };

    let (pools, folded) = fold_pools(&s.pools, max);
    summary.pools_folded = folded;
    for p in &pools {
        let l = [
            ("target", target),
            ("database", p.database.as_str()),
            ("user", p.user.as_str()),
        ];
        for (field, def) in POOL_GAUGES {
            if let Some(v) = field(p) {
                out.gauge(def, &l, v as f64);
            }
        }
        if let Some(w) = p.maxwait_seconds {
            out.gauge(&catalog::POOLS_CLIENT_MAXWAIT_SECONDS, &l, w);
        }
        summary.waiting += p.cl_waiting.unwrap_or(0);
        summary.active += p.cl_active.unwrap_or(0);
    }

    let (stats, stats_folded) = fold_stats(&s.stats, max);
    for st in &stats {
        let l = [("target", target), ("database", st.database.as_str())];
        for (field, def, divisor) in STATS_COUNTERS {
            if let Some(v) = field(st) {
                out.counter(def, &l, v as f64 / divisor);
            }
        }
    }

    let (dbs, dbs_folded) = fold_databases(&s.databases, max);
    summary.databases_folded = stats_folded.max(dbs_folded);
    let mut folded_flags = (None, None);
    if dbs_folded > 0 {
        let mut sorted: Vec<&Database> = s.databases.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for d in &sorted[max..] {
            folded_flags.0 = add(folded_flags.0, d.paused.map(u64::from));
            folded_flags.1 = add(folded_flags.1, d.disabled.map(u64::from));
        }
    }
    for d in &dbs {
        let l = [("target", target), ("database", d.name.as_str())];
        let is_other = dbs_folded > 0 && d.name == OTHER;
        for (field, def) in DATABASE_GAUGES {
            let v = match is_other {
                true if **def == catalog::DATABASES_PAUSED => folded_flags.0,
                true if **def == catalog::DATABASES_DISABLED => folded_flags.1,
                _ => field(d),
            };
            if let Some(v) = v {
                out.gauge(def, &l, v as f64);
            }
        }
    }

    // Saturation from every pool (before folding), then bounded like the
    // databases: the first `max` by name, the rest as their maximum.
    let sat = saturation(&s.pools, &s.databases);
    for (i, (db, ratio)) in sat.iter().enumerate() {
        summary.max_saturation = max_f(summary.max_saturation, Some(*ratio));
        if i < max {
            out.gauge(
                &POOL_SATURATION,
                &[
                    ("source", "pgbouncer"),
                    ("target", target),
                    ("database", db.as_str()),
                ],
                *ratio,
            );
        }
    }
    if sat.len() > max {
        let worst = sat.values().skip(max).fold(0.0_f64, |a, &b| a.max(b));
        out.gauge(
            &POOL_SATURATION,
            &[
                ("source", "pgbouncer"),
                ("target", target),
                ("database", OTHER),
            ],
            worst,
        );
    }

    if let Some(v) = &s.version {
        out.gauge(
            &catalog::VERSION_INFO,
            &[("target", target), ("version", v.as_str())],
            1.0,
        );
    }
    let t = [("target", target)];
    out.gauge(&catalog::POOLS, &t, summary.pools as f64);
    out.gauge(&catalog::POOLS_FOLDED, &t, summary.pools_folded as f64);
    out.gauge(
        &catalog::DATABASES_FOLDED,
        &t,
        summary.databases_folded as f64,
    );
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::sample_value;

    fn pool(db: &str, user: &str, active: u64, waiting: u64, sv_active: u64) -> Pool {
        Pool {
            database: db.into(),
            user: user.into(),
            cl_active: Some(active),
            cl_waiting: Some(waiting),
            sv_active: Some(sv_active),
            sv_idle: Some(0),
            sv_used: Some(0),
            sv_tested: Some(0),
            sv_login: Some(0),
            maxwait_seconds: Some(waiting as f64 * 0.5),
            pool_mode: Some("session".into()),
        }
    }

    fn db(name: &str, pool_size: u64) -> Database {
        Database {
            name: name.into(),
            backend_database: Some(name.into()),
            pool_size: Some(pool_size),
            paused: Some(false),
            disabled: Some(false),
            ..Database::default()
        }
    }

    #[test]
    fn saturation_table() {
        type Case = (
            &'static str,
            Vec<Pool>,
            Vec<Database>,
            &'static [(&'static str, f64)],
        );
        let cases: &[Case] = &[
            (
                "full pool",
                vec![pool("app", "web", 2, 3, 2)],
                vec![db("app", 2)],
                &[("app", 1.0)],
            ),
            (
                "fullest user pool wins",
                vec![pool("app", "a", 1, 0, 1), pool("app", "b", 3, 0, 3)],
                vec![db("app", 4)],
                &[("app", 0.75)],
            ),
            (
                "reserve pool in use",
                vec![pool("app", "web", 5, 0, 5)],
                vec![db("app", 4)],
                &[("app", 1.25)],
            ),
            (
                "admin console and unknown or zero pool sizes are skipped",
                vec![
                    pool("pgbouncer", "pgbouncer", 1, 0, 0),
                    pool("nosize", "u", 1, 0, 1),
                    pool("zero", "u", 1, 0, 1),
                ],
                vec![db("pgbouncer", 2), db("zero", 0)],
                &[],
            ),
        ];
        for (name, pools, dbs, want) in cases {
            let got = saturation(pools, dbs);
            let want: BTreeMap<String, f64> =
                want.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn export_names_labels_and_units() {
        let s = Snapshot {
            version: Some("1.18.0".into()),
            pools: vec![Pool {
                maxwait_seconds: Some(1.000_25),
                ..pool("app", "web", 2, 3, 2)
            }],
            stats: vec![Stats {
                database: "app".into(),
                query_count: Some(12),
                query_time_us: Some(1_500_000),
                wait_time_us: Some(250),
                ..Stats::default()
            }],
            databases: vec![db("app", 2)],
        };
        let mut f = Families::new();
        let sum = export(&s, "b", 100, &mut f);
        assert_eq!(sum.waiting, 3);
        assert_eq!(sum.max_saturation, Some(1.0));
        let f = f.into_vec();
        let pl = [("target", "b"), ("database", "app"), ("user", "web")];
        let v = |n: &str, l: &[(&str, &str)]| sample_value(&f, n, l);
        assert_eq!(
            v("pgbouncer_pools_client_waiting_connections", &pl),
            Some(3.0)
        );
        assert_eq!(
            v("pgbouncer_pools_server_active_connections", &pl),
            Some(2.0)
        );
        assert_eq!(
            v("pgbouncer_pools_client_maxwait_seconds", &pl),
            Some(1.000_25)
        );
        let dl = [("target", "b"), ("database", "app")];
        assert_eq!(v("pgbouncer_stats_queries_pooled_total", &dl), Some(12.0));
        assert_eq!(
            v("pgbouncer_stats_queries_duration_seconds_total", &dl),
            Some(1.5)
        );
        assert_eq!(
            v("pgbouncer_stats_client_wait_seconds_total", &dl),
            Some(0.00025)
        );
        assert_eq!(
            v("pgbouncer_stats_sent_bytes_total", &dl),
            None,
            "absent column"
        );
        assert_eq!(v("pgbouncer_databases_pool_size", &dl), Some(2.0));
        assert_eq!(v("pgbouncer_databases_paused", &dl), Some(0.0));
        assert_eq!(
            v(
                POOL_SATURATION.name,
                &[
                    ("source", "pgbouncer"),
                    ("target", "b"),
                    ("database", "app")
                ]
            ),
            Some(1.0)
        );
        assert_eq!(
            v("pgbouncer_version_info", &[("version", "1.18.0")]),
            Some(1.0)
        );
        for fam in &f {
            let name = fam.name();
            assert!(
                name.starts_with("pgbouncer_")
                    || name.starts_with("perfwatch_pgbouncer_")
                    || name == POOL_SATURATION.name,
                "{name}"
            );
            if fam.get_field_type() == prometheus::proto::MetricType::COUNTER {
                assert!(name.ends_with("_total"), "{name}");
            }
        }
    }

    #[test]
    fn pools_and_databases_are_bounded() {
        let mut s = Snapshot::default();
        for i in 0..5 {
            let name = format!("db{i}");
            s.pools.push(pool(&name, "u", 1, i, 1));
            s.databases.push(Database {
                paused: Some(i % 2 == 0),
                ..db(&name, 10)
            });
            s.stats.push(Stats {
                database: name,
                query_count: Some(10),
                ..Stats::default()
            });
        }
        let mut f = Families::new();
        let sum = export(&s, "b", 3, &mut f);
        assert_eq!(sum.pools, 5);
        assert_eq!(sum.pools_folded, 2);
        assert_eq!(sum.databases_folded, 2);
        let f = f.into_vec();
        let count = |n: &str| {
            f.iter()
                .find(|x| x.name() == n)
                .map_or(0, |x| x.get_metric().len())
        };
        assert_eq!(count("pgbouncer_pools_client_waiting_connections"), 4);
        assert_eq!(count("pgbouncer_stats_queries_pooled_total"), 4);
        assert_eq!(count("pgbouncer_databases_pool_size"), 4);
        assert_eq!(count(POOL_SATURATION.name), 4);
        let other_pool: &[(&str, &str)] = &[("database", OTHER), ("user", OTHER)];
        let other: &[(&str, &str)] = &[("database", OTHER)];
        let want = [
            // db3 (3 waiting) and db4 (4 waiting) folded.
            (
                "pgbouncer_pools_client_waiting_connections",
                other_pool,
                7.0,
            ),
            ("pgbouncer_pools_client_maxwait_seconds", other_pool, 2.0),
            ("pgbouncer_stats_queries_pooled_total", other, 20.0),
            ("pgbouncer_databases_pool_size", other, 20.0),
            // db4 is paused, db3 is not: one paused database in "other".
            ("pgbouncer_databases_paused", other, 1.0),
            (POOL_SATURATION.name, other, 0.1),
            ("perfwatch_pgbouncer_pools_folded", &[], 2.0),
        ];
        for (name, labels, value) in want {
            assert_eq!(sample_value(&f, name, labels), Some(value), "{name}");
        }
    }
}
