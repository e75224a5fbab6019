//! Every metric catalog in one index: for the tests that check dashboards,
//! alert rules and docs against what perfwatch declares, and for lookups by
//! name. It sits above the catalogs (the shared one, perfwatch's own, the
//! phases' and each collector kind's) so that none of them depends on another.

use crate::catalog::{MetricDef, MetricType, SHARED};

/// Every catalog: the shared one, perfwatch's own, the fleet probes', and
/// each collector kind's.
pub fn all() -> Vec<(&'static str, &'static [&'static MetricDef])> {
    let mut out = vec![
        ("shared", SHARED),
        ("self", crate::engine::self_metrics::CATALOG),
        ("phase", crate::phase::CATALOG),
        ("custom_query", crate::collectors::custom_query::CATALOG),
        ("probe", crate::probe::catalog::CATALOG),
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

/// Whether perfwatch may export a family named `name`: a declared family,
/// a name under a collector kind's prefixes (custom-query families are named
/// by the user), or the `process_` families of perfwatch's own process (the
/// `prometheus` crate's process collector). Derived from the registry, so a
/// new kind needs no edit here.
pub fn may_export(name: &str) -> bool {
    find(name).is_some()
        || name.starts_with("process_")
        || crate::collectors::KINDS
            .iter()
            .flat_map(|k| k.metric_prefixes)
            .any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Families exported under these names before the catalog checked the
    /// rules; dashboards and the README use them, and names are never
    /// renamed. Nothing may join this list.
    const NAMED_BEFORE_THE_RULES: &[&str] = &["perfwatch_process_count"];

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
                    // promtool accepts a `_count` name on an untyped family
                    // (a peer's gauge kept under its name, see
                    // `MetricType::Untyped`), never on a gauge or counter.
                    let peer_untyped = d.kind == MetricType::Untyped && suffix == "_count";
                    assert!(
                        !d.name.ends_with(suffix)
                            || peer_untyped
                            || NAMED_BEFORE_THE_RULES.contains(&d.name),
                        "{}: reserved suffix",
                        d.name
                    );
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
    fn known_families_come_from_the_catalogs_and_kind_prefixes() {
        for name in [
            "perfwatch_cache_hit_ratio",
            "perfwatch_target_up",
            "perfwatch_pool_saturation_ratio",
            "redis_connected_clients",
            "pg_custom_query_rows",
            "process_resident_memory_bytes",
        ] {
            assert!(may_export(name), "{name}");
        }
        for name in [
            "perfwatch_nonsense",
            "app_requests_total",
            "cache_hits_total",
        ] {
            assert!(!may_export(name), "{name}");
        }
    }
}
