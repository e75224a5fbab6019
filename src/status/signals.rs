//! The signals the status page charts, declared once: which family each
//! reads (through its catalog declaration, never a name string), how, and
//! for which collector kinds. The engine's history keeps exactly these.

use crate::catalog::POOL_SATURATION;
use crate::collectors::{http, mysql, postgres, process, redis, slowlog};
use crate::engine::history::{Read, Signal, Unit, signal};

/// Every signal the history keeps, in chart order. Several entries may share
/// an id (memory used and maxmemory): they are drawn on one chart.
pub static SIGNALS: &[Signal] = &[
    // Redis.
    signal(
        "hit_ratio",
        "hit ratio (1m)",
        Unit::Ratio,
        &["redis", "http"],
        &redis::catalog::CACHE_HIT_RATIO,
        Read::Gauge,
    )
    .with_labels(&[("window", "1m")])
    .split("key_prefix"),
    signal(
        "ops",
        "operations/s",
        Unit::PerSecond,
        &["redis"],
        &redis::catalog::COMMANDS_PROCESSED_TOTAL,
        Read::Rate,
    ),
    signal(
        "evictions",
        "evictions/s",
        Unit::PerSecond,
        &["redis"],
        &redis::catalog::EVICTED_KEYS_TOTAL,
        Read::Rate,
    ),
    signal(
        "memory",
        "memory used",
        Unit::Bytes,
        &["redis"],
        &redis::catalog::MEMORY_USED_BYTES,
        Read::Gauge,
    ),
    signal(
        "memory",
        "maxmemory",
        Unit::Bytes,
        &["redis"],
        &redis::catalog::MEMORY_MAX_BYTES,
        Read::Gauge,
    )
    .zero_is_unset(),
    // Databases.
    signal(
        "connection_saturation",
        "connection saturation",
        Unit::Ratio,
        &["postgres", "mysql", "pgbouncer"],
        &POOL_SATURATION,
        Read::Gauge,
    )
    .split("database"),
    signal(
        "sessions",
        "sessions by state",
        Unit::Count,
        &["postgres"],
        &postgres::catalog::SESSIONS,
        Read::Gauge,
    )
    .split("state"),
    signal(
        "sessions",
        "threads by state",
        Unit::Count,
        &["mysql"],
        &mysql::catalog::PROCESSLIST_THREADS,
        Read::Gauge,
    )
    .split("state"),
    signal(
        "slow_queries",
        "slow queries/s",
        Unit::PerSecond,
        &["postgres", "mysql", "slowlog"],
        &slowlog::catalog::QUERIES,
        Read::Rate,
    ),
    // The app.
    signal(
        "health",
        "health per check",
        Unit::Flag,
        &["http"],
        &http::catalog::HEALTH_CHECK_UP,
        Read::Gauge,
    )
    .split("check"),
    signal(
        "pool_saturation",
        "pool saturation",
        Unit::Ratio,
        &["http"],
        &POOL_SATURATION,
        Read::Gauge,
    )
    .with_labels(&[("source", "app")]),
    signal(
        "latency",
        "latency, first vs repeat",
        Unit::Seconds,
        &["http"],
        &http::catalog::REQUEST_DURATION_SECONDS,
        Read::HistogramMean,
    )
    .split("attempt"),
    // Processes.
    signal(
        "cpu",
        "CPU",
        Unit::Cores,
        &["process"],
        &process::catalog::CPU_SECONDS_TOTAL,
        Read::Rate,
    ),
    signal(
        "rss",
        "resident memory",
        Unit::Bytes,
        &["process"],
        &process::catalog::RESIDENT_MEMORY_BYTES,
        Read::Gauge,
    ),
];

/// The signal ids of a collector kind, in chart order, deduplicated.
pub fn signal_ids(kind: &str) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = Vec::new();
    for s in SIGNALS.iter().filter(|s| s.kinds.contains(&kind)) {
        if !ids.contains(&s.id) {
            ids.push(s.id);
        }
    }
    ids
}
