//! Windowed deltas of a pair of monotonic counters (hits and misses), for
//! `perfwatch_cache_hit_ratio{window="1m|5m|15m"}` and the MySQL buffer pool
//! ratio. Shared by every source of hit/miss counters (Redis INFO, the app's
//! own `cache_hits_total`, InnoDB reads); the cache families themselves are
//! exported by `collectors::redis::hit_ratio`, next to their declaration.
//!
//! Reset-aware: when the source restarted (its epoch, e.g. Redis `run_id`,
//! changed) or a counter went down (`CONFIG RESETSTAT`), the history before
//! the reset is dropped, so a window never mixes two lifetimes of a counter.
//! A window with less history than its length uses what there is: right after
//! start or a reset, "5m" covers the last minute. `covered` says how much.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The windows perfwatch reports, with their label values.
pub const WINDOWS: [(&str, Duration); 3] = [
    ("1m", Duration::from_secs(60)),
    ("5m", Duration::from_secs(300)),
    ("15m", Duration::from_secs(900)),
];

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    hits: u64,
    misses: u64,
}

/// The history of one hits/misses pair.
#[derive(Debug, Clone)]
pub struct CounterWindows {
    samples: VecDeque<Sample>,
    epoch: Option<String>,
    keep: Duration,
}

/// Hits and misses within a window, and the time the window really covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowDelta {
    /// Hits in the window.
    pub hits: u64,
    /// Misses in the window.
    pub misses: u64,
    /// Time between the two samples the delta was taken from.
    pub covered: Duration,
}

impl WindowDelta {
    /// hits / (hits + misses); `None` when there were no lookups (never NaN).
    pub fn ratio(&self) -> Option<f64> {
        hit_ratio(self.hits, self.misses)
    }
}

/// hits / (hits + misses), `None` when both are 0.
pub fn hit_ratio(hits: u64, misses: u64) -> Option<f64> {
    let total = hits + misses;
    (total > 0).then(|| hits as f64 / total as f64)
}

impl Default for CounterWindows {
    fn default() -> Self {
        Self::new()
    }
}

impl CounterWindows {
    /// History long enough for the longest window.
    pub fn new() -> Self {
        Self {
            samples: VecDeque::new(),
            epoch: None,
            // One extra minute so the 15m window always has a base sample at
            // or before its start.
            keep: WINDOWS[2].1 + Duration::from_secs(60),
        }
    }

    /// Records the counters at `at`. Returns true when a reset was detected.
    pub fn observe(&mut self, at: Instant, epoch: &str, hits: u64, misses: u64) -> bool {
        let reset = match (self.samples.back(), &self.epoch) {
            (Some(last), Some(e)) => e != epoch || hits < last.hits || misses < last.misses,
            _ => false,
        };
        if reset {
            self.samples.clear();
        }
        self.epoch = Some(epoch.to_owned());
        self.samples.push_back(Sample { at, hits, misses });
        // Keep one sample older than `keep` as the base of the longest window.
        while self.samples.len() > 2 && at.duration_since(self.samples[1].at) > self.keep {
            self.samples.pop_front();
        }
        reset
    }

    /// The delta over the last `window` (or over the available history when it
    /// is shorter); `None` with fewer than two samples.
    pub fn delta(&self, window: Duration) -> Option<WindowDelta> {
        let latest = *self.samples.back()?;
        let start = latest.at.checked_sub(window);
        // The newest sample at or before the window start; else the oldest.
        let base = start
            .and_then(|start| self.samples.iter().rev().find(|s| s.at <= start))
            .or_else(|| self.samples.front())
            .copied()?;
        if base.at == latest.at {
            return None;
        }
        Some(WindowDelta {
            hits: latest.hits - base.hits,
            misses: latest.misses - base.misses,
            covered: latest.at.duration_since(base.at),
        })
    }

    /// The newest counters, if any.
    pub fn latest(&self) -> Option<(u64, u64)> {
        self.samples.back().map(|s| (s.hits, s.misses))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn windows_table() {
        // (samples as (t, epoch, hits, misses), window, expected (hits, misses, covered s))
        type Case = (
            &'static [(u64, &'static str, u64, u64)],
            u64,
            Option<(u64, u64, u64)>,
        );
        let cases: &[Case] = &[
            // one sample: nothing to diff
            (&[(0, "a", 10, 5)], 60, None),
            // short history: use what there is
            (
                &[(0, "a", 10, 5), (30, "a", 40, 15)],
                60,
                Some((30, 10, 30)),
            ),
            // exact window base
            (
                &[(0, "a", 0, 0), (60, "a", 90, 10), (120, "a", 100, 100)],
                60,
                Some((10, 90, 60)),
            ),
            // base is the newest sample at or before the window start
            (
                &[
                    (0, "a", 0, 0),
                    (50, "a", 5, 5),
                    (70, "a", 8, 8),
                    (130, "a", 20, 20),
                ],
                60,
                Some((12, 12, 60)),
            ),
            // restart (epoch change) drops history
            (
                &[(0, "a", 100, 100), (10, "b", 1, 1), (20, "b", 3, 2)],
                60,
                Some((2, 1, 10)),
            ),
            // CONFIG RESETSTAT (counters drop, same epoch) drops history
            (
                &[(0, "a", 100, 100), (10, "a", 0, 0), (20, "a", 7, 3)],
                300,
                Some((7, 3, 10)),
            ),
            // reset leaves a single sample
            (&[(0, "a", 100, 100), (10, "b", 1, 1)], 60, None),
        ];
        for (samples, window, want) in cases {
            let t0 = Instant::now();
            let mut w = CounterWindows::new();
            for (t, epoch, h, m) in *samples {
                w.observe(t0 + secs(*t), epoch, *h, *m);
            }
            let got = w
                .delta(secs(*window))
                .map(|d| (d.hits, d.misses, d.covered.as_secs()));
            assert_eq!(got, *want, "samples {samples:?} window {window}");
        }
    }

    #[test]
    fn ratio_never_nan() {
        assert_eq!(hit_ratio(0, 0), None);
        assert_eq!(hit_ratio(3, 1), Some(0.75));
        assert_eq!(hit_ratio(0, 4), Some(0.0));
    }

    #[test]
    fn history_is_bounded() {
        let t0 = Instant::now();
        let mut w = CounterWindows::new();
        for i in 0..10_000u64 {
            w.observe(t0 + secs(i), "a", i, i);
        }
        assert!(w.samples.len() <= 961 + 1, "kept {}", w.samples.len());
        let d = w.delta(secs(900)).unwrap();
        assert_eq!(d.covered, secs(900));
        assert_eq!(d.hits, 900);
    }
}
