//! The metric catalog: every family perfwatch exports is declared once, with
//! its name, type, HELP text and label names, next to the code that fills it.
//!
//! Why a catalog instead of string literals at the call sites:
//! - one HELP per name, even for a family several kinds fill
//!   (`perfwatch_pool_saturation_ratio` comes from four collectors and is
//!   declared once, in [`SHARED`]);
//! - the dashboards, alert rules and docs are checked against the declared
//!   names, not against whatever string happens to appear in the source;
//! - the label set of every sample is checked against its declaration (in
//!   debug builds, so every test run checks it; release builds skip the
//!   check to keep polls cheap).
//!
//! A kind declares its families with [`metric_catalog!`] in its own
//! `catalog.rs`; `metric_index` lists every catalog, and a test walks them.
//! This module imports nothing of perfwatch: everything may use it.

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that goes up and down.
    Gauge,
    /// A monotonic count (the name ends in `_total`).
    Counter,
    /// Bucketed observations.
    Histogram,
    /// No type (`# TYPE … untyped`): only for a peer exporter's gauge whose
    /// name promtool rejects for a gauge (a `_count` suffix, e.g.
    /// postgres_exporter's `pg_stat_activity_count`), so its dashboards keep
    /// working and `promtool check metrics` stays clean. Prometheus treats it
    /// like a gauge.
    Untyped,
}

impl MetricType {
    /// The `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Counter => "counter",
            Self::Histogram => "histogram",
            Self::Untyped => "untyped",
        }
    }
}

/// One metric family as declared in a catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// The family name, e.g. `redis_connected_clients`.
    pub name: &'static str,
    /// Gauge, counter, histogram or (for a peer's `_count` gauge) untyped.
    pub kind: MetricType,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The label names every sample carries (order is free; the set is fixed).
    pub labels: &'static [&'static str],
}

impl MetricDef {
    /// Whether `labels` carries exactly the declared label names.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels.len() == self.labels.len()
            && labels.iter().all(|(k, _)| self.labels.contains(k))
            && self
                .labels
                .iter()
                .all(|d| labels.iter().any(|(k, _)| k == d))
    }
}

/// Declares metric families as constants plus a slice listing them all.
///
/// The labels are a list of names or the name of a `&[&str]` constant, for a
/// label set several families of a catalog share:
///
/// ```ignore
/// const PER_DB: &[&str] = &["target", "db"];
///
/// perfwatch::metric_catalog! {
///     /// Everything the Redis collector exports.
///     pub const ALL;
///     UPTIME = Gauge("redis_uptime_in_seconds", ["target"], "Seconds since the server started.");
///     DB_KEYS = Gauge("redis_db_keys", PER_DB, "Keys in the database.");
/// }
/// ```
#[macro_export]
macro_rules! metric_catalog {
    (
        $(#[$all_meta:meta])*
        $vis:vis const $all:ident;
        $(
            $(#[$meta:meta])*
            $id:ident = $kind:ident($name:literal, $labels:tt, $help:expr);
        )*
    ) => {
        $(
            $(#[$meta])*
            #[doc = concat!("`", $name, "`")]
            $vis const $id: $crate::catalog::MetricDef = $crate::catalog::MetricDef {
                name: $name,
                kind: $crate::catalog::MetricType::$kind,
                help: $help,
                labels: $crate::metric_labels!($labels),
            };
        )*
        $(#[$all_meta])*
        $vis const $all: &[&$crate::catalog::MetricDef] = &[$(&$id),*];
    };
}

/// The labels of a [`metric_catalog!`] entry: a list of names, or the name
/// of a shared label set.
#[doc(hidden)]
#[macro_export]
macro_rules! metric_labels {
    ([$($label:literal),* $(,)?]) => {
        &[$($label),*]
    };
    ($set:ident) => {
        $set
    };
}

metric_catalog! {
    /// Families filled by more than one collector kind: declared once here so
    /// that each has one HELP text whichever kind answers first.
    pub const SHARED;
    /// `database` is PgBouncer's (one series per database: its fullest
    /// pool); the other sources have no database and leave it empty, which
    /// Prometheus stores as no label.
    POOL_SATURATION = Gauge(
        "perfwatch_pool_saturation_ratio",
        ["source", "target", "database"],
        "Share of a connection pool in use: in-use / capacity, by source (postgres, mysql, pgbouncer, app); 1 = full, new clients wait or are refused. source=\"pgbouncer\": the fullest (database, user) pool of each database, above 1 when the reserve pool is in use; database is empty for the other sources."
    );
    /// Filled by the SQL collectors (postgres: failing parts by reason;
    /// mysql: performance_schema_off, permission_denied, statements_unavailable).
    COLLECTOR_DEGRADED = Gauge(
        "perfwatch_collector_degraded",
        ["collector", "target", "reason"],
        "1 when part of a target's metrics is missing right now, by reason (e.g. permission, timeout, performance_schema_off, statements_unavailable); the target itself is up."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_check() {
        const D: MetricDef = MetricDef {
            name: "x",
            kind: MetricType::Gauge,
            help: "h",
            labels: &["a", "b"],
        };
        assert!(D.has_labels(&[("b", "1"), ("a", "2")]));
        assert!(!D.has_labels(&[("a", "2")]));
        assert!(!D.has_labels(&[("a", "2"), ("c", "1")]));
    }
}
