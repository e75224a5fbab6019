//! Pure picking of a few families out of the app's own `/metrics` (parsed
//! with the `prometheus-parse` crate): cache hits and misses summed per key
//! prefix, the pool gauges, and the restart epoch. Everything else in the
//! scrape is ignored: re-exporting the app's metrics is Prometheus' job.

use std::collections::{BTreeMap, BTreeSet};

use prometheus_parse::{Sample, Scrape, Value};

use super::config::ScrapePicks;
use super::pool::PoolStats;

/// The label value for hits/misses series without the prefix label.
pub const NO_PREFIX: &str = "none";
/// The label value that collects prefixes beyond `max_prefixes`.
pub const OTHER: &str = "other";

/// What was picked from one scrape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Picked {
    /// Per key prefix: (hits, misses), summed over the other labels.
    pub cache: BTreeMap<String, (f64, f64)>,
    /// The pool gauges (summed over series) when size and checked-out exist.
    pub pool: Option<PoolStats>,
    /// The restart-epoch gauge's value, if present.
    pub epoch: Option<f64>,
    /// Samples found per configured metric name (0 = the name is not in the scrape).
    pub found: BTreeMap<String, usize>,
}

impl Picked {
    /// Why the cache or pool numbers of this scrape cannot be trusted: a
    /// configured (`explicit`) name with no sample, or hits without misses (or
    /// the reverse), which would read as a 100 % or 0 % hit ratio. Empty when
    /// all is well. With the default names and neither family present, the app
    /// simply has no cache metrics: nothing is wrong.
    pub fn missing(&self, picks: &ScrapePicks, explicit: &[&str]) -> Vec<String> {
        let has = |n: &str| self.found.get(n).is_some_and(|c| *c > 0);
        let mut problems = Vec::new();
        for name in explicit {
            if !has(name) {
                problems.push(format!("configured metric \"{name}\" is not in the scrape"));
            }
        }
        for (a, b) in [
            (&picks.hits, &picks.misses),
            (&picks.pool_size, &picks.pool_checked_out),
        ] {
            for (present, absent) in [(a, b), (b, a)] {
                if has(present) && !has(absent) && !explicit.contains(&absent.as_str()) {
                    problems.push(format!(
                        "\"{present}\" is in the scrape but \"{absent}\" is not"
                    ));
                }
            }
        }
        problems
    }
}

/// Picks the configured families from Prometheus text. `Err` when the body
/// holds no sample at all (not a metrics page).
pub fn pick(text: &str, picks: &ScrapePicks) -> Result<Picked, String> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .map_err(|e| format!("cannot read the metrics text: {e}"))?;
    if scrape.samples.is_empty() {
        let first: String = text.trim().chars().take(60).collect();
        return Err(format!(
            "body has no Prometheus samples (starts with \"{}\")",
            first.escape_debug()
        ));
    }
    let mut out = Picked::default();
    let names = [
        &picks.hits,
        &picks.misses,
        &picks.pool_size,
        &picks.pool_checked_in,
        &picks.pool_checked_out,
        &picks.pool_overflow,
        &picks.pool_max_overflow,
    ];
    for n in names {
        out.found.insert(n.clone(), 0);
    }
    let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
    for s in &scrape.samples {
        let Some(v) = scalar(s) else { continue };
        if !v.is_finite() {
            continue;
        }
        let name = s.metric.as_str();
        if !picks.epoch.is_empty() && name == picks.epoch {
            out.epoch = Some(v);
            continue;
        }
        if !names.iter().any(|n| n.as_str() == name) {
            continue;
        }
        *out.found.entry(name.to_owned()).or_default() += 1;
        if name == picks.hits || name == picks.misses {
            let prefix = s.labels.get(&picks.prefix_label).unwrap_or(NO_PREFIX);
            let e = out.cache.entry(prefix.to_owned()).or_default();
            if name == picks.hits {
                e.0 += v;
            } else {
                e.1 += v;
            }
        } else {
            *sums.entry(name).or_default() += v;
        }
    }
    if let (Some(size), Some(out_)) = (
        sums.get(picks.pool_size.as_str()),
        sums.get(picks.pool_checked_out.as_str()),
    ) {
        out.pool = Some(PoolStats {
            size: *size,
            checked_out: *out_,
            checked_in: sums.get(picks.pool_checked_in.as_str()).copied(),
            overflow: sums.get(picks.pool_overflow.as_str()).copied(),
            max_overflow: sums.get(picks.pool_max_overflow.as_str()).copied(),
        });
    }
    Ok(out)
}

fn scalar(s: &Sample) -> Option<f64> {
    match s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
        Value::Histogram(_) | Value::Summary(_) => None,
    }
}

/// Which key prefixes get their own series: the first `max` seen (busiest
/// first on a tie in time), kept for the collector's life so series stay
/// stable; later prefixes are summed under `other`.
#[derive(Debug, Clone, Default)]
pub struct PrefixSlots {
    max: usize,
    slotted: BTreeSet<String>,
    other_used: bool,
}

impl PrefixSlots {
    /// Slots for at most `max` prefixes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            slotted: BTreeSet::new(),
            other_used: false,
        }
    }

    /// Groups `cache` (prefix → (hits, misses)) into label values. Every
    /// prefix ever slotted appears (with 0, 0 when absent from this scrape,
    /// as after an app restart), so its windows see the reset.
    pub fn group(&mut self, cache: &BTreeMap<String, (f64, f64)>) -> BTreeMap<String, (u64, u64)> {
        let mut new: Vec<(&String, f64)> = cache
            .iter()
            .filter(|(p, _)| !self.slotted.contains(*p))
            .map(|(p, (h, m))| (p, h + m))
            .collect();
        new.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        for (p, _) in new {
            if self.slotted.len() < self.max {
                self.slotted.insert(p.clone());
            }
        }
        let mut out: BTreeMap<String, (u64, u64)> =
            self.slotted.iter().map(|p| (p.clone(), (0, 0))).collect();
        for (p, (h, m)) in cache {
            let key = if self.slotted.contains(p) {
                p.clone()
            } else {
                OTHER.to_owned()
            };
            let e = out.entry(key).or_default();
            e.0 += count(*h);
            e.1 += count(*m);
        }
        // Once used, `other` stays (at 0, 0 when empty) like a slotted prefix.
        if out.contains_key(OTHER) {
            self.other_used = true;
        } else if self.other_used {
            out.insert(OTHER.to_owned(), (0, 0));
        }
        out
    }
}

fn count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks() -> ScrapePicks {
        ScrapePicks {
            hits: "cache_hits_total".into(),
            misses: "cache_misses_total".into(),
            prefix_label: "key_prefix".into(),
            epoch: "process_start_time_seconds".into(),
            pool_size: "db_connection_pool_size".into(),
            pool_checked_in: "db_connection_pool_checked_in".into(),
            pool_checked_out: "db_connection_pool_checked_out".into(),
            pool_overflow: "db_connection_pool_overflow".into(),
            pool_max_overflow: "db_connection_pool_max_overflow".into(),
        }
    }

    /// What Python's prometheus_client serves for the seeds' app.
    const APP: &str = r#"# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 1234.0
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.76e+09
# HELP cache_hits_total Total cache hits
# TYPE cache_hits_total counter
cache_hits_total{endpoint="bad_days",key_prefix="bad_days"} 90.0
cache_hits_total{endpoint="get_admin_dashboard_stats",key_prefix="dashboard_stats"} 3.0
cache_hits_total{endpoint="get_admin_dashboard_summary",key_prefix="dashboard_stats"} 2.0
# HELP cache_hits_created Total cache hits
# TYPE cache_hits_created gauge
cache_hits_created{endpoint="bad_days",key_prefix="bad_days"} 1.76e+09
# HELP cache_misses_total Total cache misses
# TYPE cache_misses_total counter
cache_misses_total{endpoint="bad_days",key_prefix="bad_days"} 10.0
cache_misses_total{endpoint="other_endpoint"} 4.0
# HELP db_connection_pool_size Pool size
# TYPE db_connection_pool_size gauge
db_connection_pool_size 20.0
# TYPE db_connection_pool_checked_out gauge
db_connection_pool_checked_out 7.0
# TYPE db_connection_pool_overflow gauge
db_connection_pool_overflow -13.0
# HELP http_request_duration_seconds Request latency
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/api/analytics/bad-days",le="0.1"} 3.0
http_request_duration_seconds_bucket{handler="/api/analytics/bad-days",le="+Inf"} 4.0
http_request_duration_seconds_count{handler="/api/analytics/bad-days"} 4.0
http_request_duration_seconds_sum{handler="/api/analytics/bad-days"} 165.2
"#;

    #[test]
    fn picks_the_seed_families() {
        let p = pick(APP, &picks()).unwrap();
        let cache: Vec<(&str, (f64, f64))> =
            p.cache.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            cache,
            vec![
                ("bad_days", (90.0, 10.0)),
                ("dashboard_stats", (5.0, 0.0)),
                ("none", (0.0, 4.0)),
            ]
        );
        assert_eq!(
            p.pool,
            Some(PoolStats {
                size: 20.0,
                checked_out: 7.0,
                checked_in: None,
                overflow: Some(-13.0),
                max_overflow: None,
            })
        );
        assert_eq!(p.epoch, Some(1.76e9));
        assert_eq!(p.found["cache_hits_total"], 3);
        assert_eq!(p.found["cache_misses_total"], 2);
        assert_eq!(p.found["db_connection_pool_checked_in"], 0);
    }

    #[test]
    fn pick_table() {
        // (body, want Ok(number of prefixes, pool present) or Err(substring))
        type Want = Result<(usize, bool), &'static str>;
        let cases: &[(&str, Want)] = &[
            ("", Err("body has no Prometheus samples")),
            (
                "<html><body>login</body></html>",
                Err("no Prometheus samples"),
            ),
            ("{\"status\":\"ok\"}", Err("no Prometheus samples")),
            // a valid page without the picked families
            ("# TYPE up gauge\nup 1\n", Ok((0, false))),
            // pool needs size and checked_out
            ("db_connection_pool_size 5\n", Ok((0, false))),
            (
                "db_connection_pool_size 5\ndb_connection_pool_checked_out 1\n",
                Ok((0, true)),
            ),
            // garbage values are skipped, not fatal
            (
                "cache_hits_total{key_prefix=\"a\"} 1\ncache_hits_total{key_prefix=\"b\"} NaNx\n",
                Ok((1, false)),
            ),
            // timestamps are allowed
            (
                "cache_misses_total{key_prefix=\"a\"} 3 1700000000000\n",
                Ok((1, false)),
            ),
        ];
        for (body, want) in cases {
            match (pick(body, &picks()), want) {
                (Ok(p), Ok((n, pool))) => {
                    assert_eq!(p.cache.len(), *n, "{body}");
                    assert_eq!(p.pool.is_some(), *pool, "{body}");
                }
                (Err(e), Err(w)) => assert!(e.contains(w), "{body}: {e}"),
                (got, want) => panic!("{body:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn missing_families_are_named_never_read_as_zero() {
        let both = "cache_hits_total 9\ncache_misses_total 1\n";
        let hits_only = "cache_hits_total 9\n";
        let misses_only = "cache_misses_total 1\n";
        let neither = "up 1\n";
        let half_pool = "db_connection_pool_size 5\n";
        let cases: &[(&str, &[&str], &[&str])] = &[
            (both, &[], &[]),
            // no cache metrics at all under the default names: nothing to say
            (neither, &[], &[]),
            (
                hits_only,
                &[],
                &["\"cache_hits_total\" is in the scrape but \"cache_misses_total\" is not"],
            ),
            (
                misses_only,
                &[],
                &["\"cache_misses_total\" is in the scrape but \"cache_hits_total\" is not"],
            ),
            // the field test: hits_metric misspelt in the config
            (
                misses_only,
                &["cache_hit_total", "cache_misses_total"],
                &["configured metric \"cache_hit_total\" is not in the scrape"],
            ),
            (
                neither,
                &["cache_hits_total"],
                &["configured metric \"cache_hits_total\" is not in the scrape"],
            ),
            (
                half_pool,
                &[],
                &[
                    "\"db_connection_pool_size\" is in the scrape but \"db_connection_pool_checked_out\" is not",
                ],
            ),
        ];
        for (body, explicit, want) in cases {
            let mut p = picks();
            if explicit.contains(&"cache_hit_total") {
                p.hits = "cache_hit_total".into();
            }
            let got = pick(body, &p).unwrap().missing(&p, explicit);
            assert_eq!(got, *want, "{body:?} {explicit:?}");
        }
    }

    #[test]
    fn prefix_slots_are_bounded_and_stable() {
        let mut slots = PrefixSlots::new(2);
        let scrape = |v: &[(&str, f64, f64)]| -> BTreeMap<String, (f64, f64)> {
            v.iter()
                .map(|(p, h, m)| (p.to_string(), (*h, *m)))
                .collect()
        };
        // busiest two get slots, the third goes to other
        let g = slots.group(&scrape(&[
            ("a", 1.0, 0.0),
            ("b", 50.0, 5.0),
            ("c", 10.0, 1.0),
        ]));
        let got: Vec<(&str, (u64, u64))> = g.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, vec![("b", (50, 5)), ("c", (10, 1)), ("other", (1, 0))]);
        // a new busy prefix does not steal a slot; a vanished slotted prefix reads 0
        let g = slots.group(&scrape(&[
            ("a", 2.0, 0.0),
            ("d", 100.0, 0.0),
            ("c", 12.0, 1.0),
        ]));
        let got: Vec<(&str, (u64, u64))> = g.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            got,
            vec![("b", (0, 0)), ("c", (12, 1)), ("other", (102, 0))]
        );
        // other stays once used
        let g = slots.group(&scrape(&[("b", 60.0, 5.0)]));
        let got: Vec<(&str, (u64, u64))> = g.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, vec![("b", (60, 5)), ("c", (0, 0)), ("other", (0, 0))]);
    }
}
