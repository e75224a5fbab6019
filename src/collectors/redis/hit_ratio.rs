//! Exports the cache hit-ratio windows (`perfwatch_cache_*`, declared in
//! [`super::catalog`]) from a [`CounterWindows`] history. Every hit/miss
//! source exports through here (Redis INFO for the whole keyspace, the HTTP
//! collector for the app's own counters per key prefix), so the families
//! (names, HELP, labels, NaN rule) are the same and one alert covers all.
//!
//! It lives with the Redis collector, whose catalog declares the families,
//! rather than in `counter_window` (which stays a pure history of counter
//! pairs that the MySQL collector also uses), so that no shared module
//! depends on a collector kind.

use std::time::Duration;

use super::catalog;
use crate::counter_window::{CounterWindows, WINDOWS, hit_ratio};
use crate::exposition::Families;

/// Exports `perfwatch_cache_hit_ratio`, `perfwatch_cache_lookups_in_window`
/// and `perfwatch_cache_window_covered_seconds` for every window plus
/// `window="total"` (`hits`/`misses` since the last reset). `key_prefix` is
/// `""` for a source without prefixes (Redis' whole keyspace; Prometheus
/// stores an empty label as no label). A window without lookups has no ratio
/// sample, never NaN; its lookups are 0.
pub(crate) fn export_hit_ratio(
    history: &CounterWindows,
    hits: u64,
    misses: u64,
    target: &str,
    key_prefix: &str,
    out: &mut Families,
) {
    let mut windows: Vec<(&str, u64, u64, Option<Duration>)> = WINDOWS
        .iter()
        .filter_map(|(label, w)| {
            history
                .delta(*w)
                .map(|d| (*label, d.hits, d.misses, Some(d.covered)))
        })
        .collect();
    windows.push(("total", hits, misses, None));
    for (window, h, m, covered) in windows {
        let l = [
            ("target", target),
            ("key_prefix", key_prefix),
            ("window", window),
        ];
        if let Some(r) = hit_ratio(h, m) {
            out.gauge(&catalog::CACHE_HIT_RATIO, &l, r);
        }
        out.gauge(&catalog::CACHE_LOOKUPS_IN_WINDOW, &l, (h + m) as f64);
        if let Some(c) = covered {
            out.gauge(&catalog::CACHE_WINDOW_COVERED_SECONDS, &l, c.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::exposition::sample_value;

    #[test]
    fn a_window_without_lookups_has_no_ratio() {
        let t0 = Instant::now();
        let mut w = CounterWindows::new();
        w.observe(t0, "e", 10, 0);
        w.observe(t0 + Duration::from_secs(10), "e", 10, 0);
        let mut out = Families::new();
        export_hit_ratio(&w, 10, 0, "api", "bad_days", &mut out);
        let f = out.into_vec();
        let l = [("key_prefix", "bad_days"), ("window", "1m")];
        assert_eq!(sample_value(&f, "perfwatch_cache_hit_ratio", &l), None);
        assert_eq!(
            sample_value(&f, "perfwatch_cache_lookups_in_window", &l),
            Some(0.0)
        );
        let total = [("key_prefix", "bad_days"), ("window", "total")];
        assert_eq!(
            sample_value(&f, "perfwatch_cache_hit_ratio", &total),
            Some(1.0)
        );
    }
}
