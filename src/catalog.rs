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
//! `catalog.rs`; [`all`] lists every catalog, and a test walks them.

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that goes up and down.
    Gauge,
    /// A monotonic count (the name ends in `_total`).
    Counter,
    /// Bucketed observations.
    Histogram,
}

impl MetricType {
    /// The `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Counter => "counter",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric family as declared in a catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// The family name, e.g. `redis_connected_clients`.
    pub name: &'static str,
    /// Gauge, counter or histogram.
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
/// ```ignore
/// perfwatch::metric_catalog! {
///     /// Everything the Redis collector exports.
///     pub const ALL;
///     UPTIME = Gauge("redis_uptime_in_seconds", ["target"], "Seconds since the server started.");
/// }
/// ```
#[macro_export]
macro_rules! metric_catalog {
    (
        $(#[$all_meta:meta])*
        $vis:vis const $all:ident;
        $(
            $(#[$meta:meta])*
            $id:ident = $kind:ident($name:literal, [$($label:literal),* $(,)?], $help:expr);
        )*
    ) => {
        $(
            $(#[$meta])*
            #[doc = concat!("`", $name, "`")]
            $vis const $id: $crate::catalog::MetricDef = $crate::catalog::MetricDef {
                name: $name,
                kind: $crate::catalog::MetricType::$kind,
                help: $help,
                labels: &[$($label),*],
            };
        )*
        $(#[$all_meta])*
        $vis const $all: &[&$crate::catalog::MetricDef] = &[$(&$id),*];
    };
}

metric_catalog! {
    /// Families filled by more than one collector kind: declared once here so
    /// that each has one HELP text whichever kind answers first.
    pub const SHARED;
    POOL_SATURATION = Gauge(
        "perfwatch_pool_saturation_ratio",
        ["source", "target"],
        "Share of a connection pool in use (0-1): in-use / capacity, by source (postgres, mysql, pgbouncer, app)."
    );
}

/// Every catalog: the shared one, perfwatch's own, and each collector kind's.
pub fn all() -> Vec<(&'static str, &'static [&'static MetricDef])> {
    let mut out = vec![
        ("shared", SHARED),
        ("self", crate::self_metrics::CATALOG),
        ("phase", crate::phase::CATALOG),
    ];
    out.extend(
        crate::collectors::KINDS
            .iter()
            .map(|k| (k.section, k.catalog)),
    );
    out
}

/// Looks a family up by name in every catalog.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    all()
        .into_iter()
        .flat_map(|(_, c)| c.iter().copied())
        .find(|d| d.name == name)
}

/// The declared family a series belongs to: the name itself, or for a
/// histogram's `_bucket`, `_sum` and `_count` series, the histogram.
pub fn family_of_series(series: &str) -> Option<&'static MetricDef> {
    find(series).or_else(|| {
        ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| series.strip_suffix(suffix))
            .find_map(find)
            .filter(|d| d.kind == MetricType::Histogram)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn valid_name(s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    /// Every catalog at once: names unique across kinds (so one HELP per
    /// name), the naming rules `promtool check metrics` applies, and label
    /// names that are valid and not reserved.
    #[test]
    fn every_family_is_declared_once_and_named_by_the_rules() {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (catalog, defs) in all() {
            for d in defs {
                if let Some(other) = seen.insert(d.name, catalog) {
                    panic!("{} is declared in both {other} and {catalog}", d.name);
                }
                assert!(valid_name(d.name), "{catalog}: bad name {}", d.name);
                assert!(!d.help.is_empty(), "{catalog}: {} has no HELP", d.name);
                match d.kind {
                    MetricType::Counter => {
                        assert!(d.name.ends_with("_total"), "counter {}", d.name)
                    }
                    _ => assert!(
                        !d.name.ends_with("_total"),
                        "{} ends in _total but is a {}",
                        d.name,
                        d.kind.as_str()
                    ),
                }
                for suffix in ["_bucket", "_count", "_sum", "_created"] {
                    assert!(!d.name.ends_with(suffix), "{}: reserved suffix", d.name);
                }
                let mut labels: Vec<_> = d.labels.to_vec();
                labels.sort();
                labels.dedup();
                assert_eq!(labels.len(), d.labels.len(), "{}: label twice", d.name);
                for l in d.labels {
                    assert!(valid_name(l) && !l.starts_with("__"), "{}: {l}", d.name);
                    assert!(
                        !(d.kind == MetricType::Histogram && *l == "le"),
                        "{}: le",
                        d.name
                    );
                }
            }
        }
    }

    #[test]
    fn kinds_own_their_prefixes() {
        for k in crate::collectors::KINDS {
            for d in k.catalog {
                assert!(
                    k.metric_prefixes.iter().any(|p| d.name.starts_with(p)),
                    "{}: {} is outside its prefixes {:?}",
                    k.section,
                    d.name,
                    k.metric_prefixes
                );
            }
        }
    }

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
