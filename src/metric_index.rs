//! Every metric catalog in one index: for the tests that check dashboards,
//! alert rules and docs against what perfwatch declares, and for lookups by
//! name. It sits above the catalogs (the shared one, perfwatch's own, the
//! phases' and each collector kind's) so that none of them depends on another.

use crate::catalog::{MetricDef, MetricType, SHARED};

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
}
