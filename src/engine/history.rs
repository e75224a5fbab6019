//! A bounded in-memory history of the signals the status page charts, fed
//! by the poll loops (no poll of its own) and by the phase evaluation.
//!
//! Decisions:
//! - What is kept is a fixed, declared list of [`Signal`]s (the status
//!   page's `status::signals::SIGNALS`, handed to the store at
//!   start: the engine imports no collector) read from the families a poll
//!   already produced, through their catalog declarations; counters become
//!   per-second rates from the delta between two polls.
//! - Every series is a ring of at most [`WINDOW`] and [`MAX_POINTS`]; a
//!   target holds at most [`MAX_SERIES`] series and a signal at most
//!   [`MAX_SPLITS`] of them, so memory is bounded whatever the targets
//!   answer (a health endpoint with a thousand checks, say).
//! - Readers copy the points out under a short lock: rendering the page
//!   never holds the lock while it formats, and never touches a target.

use std::collections::{BTreeMap, VecDeque};

use prometheus::proto::{Metric, MetricFamily, MetricType};

use crate::catalog::MetricDef;

/// How far back the history goes, in seconds.
pub const WINDOW: f64 = 15.0 * 60.0;
/// Most points one series keeps (15 minutes at one poll a second); faster
/// polls keep a shorter time span.
pub const MAX_POINTS: usize = 900;
/// Most series one target (or one phase trigger) keeps.
pub const MAX_SERIES: usize = 32;
/// Most series one signal of a target keeps (one per state, check, ...).
pub const MAX_SPLITS: usize = 8;
/// Most phase triggers whose history is kept.
pub const MAX_TRIGGERS: usize = 64;

/// How a value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// 0..1, shown as a percentage.
    Ratio,
    /// Events per second.
    PerSecond,
    /// Bytes.
    Bytes,
    /// Seconds.
    Seconds,
    /// A count.
    Count,
    /// CPU cores in use (CPU seconds per second).
    Cores,
    /// 1 = up / active, 0 = down / inactive.
    Flag,
    /// The unit of whatever a phase trigger reads.
    Plain,
}

/// How a signal is read from a poll's families.
#[derive(Debug, Clone, Copy)]
pub enum Read {
    /// The sum of a gauge's matching samples.
    Gauge,
    /// The per-second rate of a counter's matching samples, summed.
    Rate,
    /// The mean observation of a histogram since the previous poll.
    HistogramMean,
}

/// One charted signal.
#[derive(Debug)]
pub struct Signal {
    /// Stable id (the JSON key and the chart's `data-signal`).
    pub id: &'static str,
    /// Chart title.
    pub title: &'static str,
    /// How values are shown.
    pub unit: Unit,
    /// The collector kinds whose targets have it.
    pub kinds: &'static [&'static str],
    /// The family it reads.
    pub def: &'static MetricDef,
    /// Labels the samples must have.
    pub labels: &'static [(&'static str, &'static str)],
    /// A label whose values become one series each (sessions by state).
    pub split: Option<&'static str>,
    /// Whether 0 means "not set" and is left out (maxmemory 0 = no limit).
    pub zero_is_unset: bool,
    read: Read,
}

/// A signal of `kinds` read from `def` (builder: [`Signal::with_labels`],
/// [`Signal::split`], [`Signal::zero_is_unset`]).
pub const fn signal(
    id: &'static str,
    title: &'static str,
    unit: Unit,
    kinds: &'static [&'static str],
    def: &'static MetricDef,
    read: Read,
) -> Signal {
    Signal {
        id,
        title,
        unit,
        kinds,
        def,
        labels: &[],
        split: None,
        zero_is_unset: false,
        read,
    }
}

impl Signal {
    /// Only samples with these labels.
    pub const fn with_labels(mut self, labels: &'static [(&'static str, &'static str)]) -> Self {
        self.labels = labels;
        self
    }

    /// One series per value of this label.
    pub const fn split(mut self, label: &'static str) -> Self {
        self.split = Some(label);
        self
    }

    /// 0 means "not set": left out.
    pub const fn zero_is_unset(mut self) -> Self {
        self.zero_is_unset = true;
        self
    }
}

/// One series' points, oldest first: `(unix seconds, value)`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Series {
    /// The signal id (or `value`/`threshold`/`active` for a trigger).
    pub signal: &'static str,
    /// What tells it apart from the signal's other series (a state, a
    /// check, a key prefix; the title when there is one series).
    pub label: String,
    /// How values are shown.
    pub unit: Option<Unit>,
    /// `(unix seconds, value)`, oldest first.
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Default)]
struct Ring {
    unit: Option<Unit>,
    points: VecDeque<(f64, f64)>,
}

impl Ring {
    fn push(&mut self, t: f64, v: f64) {
        if !v.is_finite() || !t.is_finite() {
            return;
        }
        if self.points.len() >= MAX_POINTS {
            self.points.pop_front();
        }
        self.points.push_back((t, v));
    }

    fn prune(&mut self, now: f64) {
        while self.points.front().is_some_and(|(t, _)| *t < now - WINDOW) {
            self.points.pop_front();
        }
    }
}

/// A set of rings under a cap, keyed by (signal id, label).
#[derive(Debug, Default)]
struct Rings {
    rings: BTreeMap<(&'static str, String), Ring>,
}

impl Rings {
    /// The ring for `key`, unless the caps are reached.
    fn ring(&mut self, signal: &'static str, label: &str, unit: Option<Unit>) -> Option<&mut Ring> {
        let key = (signal, label.to_owned());
        if !self.rings.contains_key(&key) {
            let of_signal = self.rings.keys().filter(|(s, _)| *s == signal).count();
            if self.rings.len() >= MAX_SERIES || of_signal >= MAX_SPLITS {
                return None;
            }
        }
        let ring = self.rings.entry(key).or_default();
        ring.unit = unit;
        Some(ring)
    }

    fn prune(&mut self, now: f64) {
        for r in self.rings.values_mut() {
            r.prune(now);
        }
        self.rings.retain(|_, r| !r.points.is_empty());
    }

    fn points(&self) -> usize {
        self.rings.values().map(|r| r.points.len()).sum()
    }

    fn copy(&self) -> Vec<Series> {
        self.rings
            .iter()
            .map(|((signal, label), r)| Series {
                signal,
                label: label.clone(),
                unit: r.unit,
                points: r.points.iter().copied().collect(),
            })
            .collect()
    }
}

/// The history of one target.
#[derive(Debug, Default)]
pub(crate) struct TargetHistory {
    rings: Rings,
    /// The previous poll's counter (or histogram sum and count) per series,
    /// for rates: `(unix seconds, value, count)`.
    previous: BTreeMap<(&'static str, String), (f64, f64, f64)>,
}

impl TargetHistory {
    /// Appends the points of one successful poll at `now` (unix seconds).
    pub(crate) fn record(
        &mut self,
        signals: &[Signal],
        kind: &str,
        families: &[MetricFamily],
        now: f64,
    ) {
        for s in signals.iter().filter(|s| s.kinds.contains(&kind)) {
            for (label, value, count) in read(s, families) {
                let label = if label.is_empty() && s.split.is_none() && shares_id(signals, kind, s)
                {
                    // Two signals on one chart (memory used and maxmemory)
                    // tell their series apart by title.
                    s.title.to_owned()
                } else {
                    label
                };
                let point = match s.read {
                    Read::Gauge if s.zero_is_unset && value == 0.0 => None,
                    Read::Gauge => Some(value),
                    Read::Rate | Read::HistogramMean => {
                        let key = (s.id, label.clone());
                        let prev = self.previous.get(&key).copied();
                        if self.previous.len() < MAX_SERIES || prev.is_some() {
                            self.previous.insert(key, (now, value, count));
                        }
                        prev.and_then(|(t0, v0, c0)| {
                            rate(s.read, (t0, v0, c0), (now, value, count))
                        })
                    }
                };
                if let Some(v) = point
                    && let Some(ring) = self.rings.ring(s.id, &label, Some(s.unit))
                {
                    ring.push(now, v);
                }
            }
        }
        self.rings.prune(now);
    }

    /// Drops points older than the window (a target that stopped answering
    /// keeps nothing older than 15 minutes either).
    pub(crate) fn prune(&mut self, now: f64) {
        self.rings.prune(now);
    }

    /// Points held.
    pub(crate) fn points(&self) -> usize {
        self.rings.points()
    }

    /// A copy of every series.
    pub(crate) fn copy(&self) -> Vec<Series> {
        self.rings.copy()
    }
}

/// Whether another signal of `kind` has the id of `s` (one chart, two
/// signals: memory used and maxmemory).
fn shares_id(signals: &[Signal], kind: &str, s: &Signal) -> bool {
    signals
        .iter()
        .filter(|o| o.id == s.id && o.kinds.contains(&kind))
        .count()
        > 1
}

/// A rate (or a histogram's mean) between two readings; None across a
/// counter reset or without elapsed time.
fn rate(how: Read, (t0, v0, c0): (f64, f64, f64), (t1, v1, c1): (f64, f64, f64)) -> Option<f64> {
    if v1 < v0 || c1 < c0 || t1 <= t0 {
        return None;
    }
    match how {
        Read::Rate => Some((v1 - v0) / (t1 - t0)),
        // No request between the polls: no mean, a gap in the line.
        Read::HistogramMean => (c1 > c0).then(|| (v1 - v0) / (c1 - c0)),
        Read::Gauge => None,
    }
}

fn label<'a>(m: &'a Metric, name: &str) -> &'a str {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map_or("", |l| l.value())
}

/// `(split label value, value, count)` per series of `s` in `families`:
/// the summed gauge or counter value, or a histogram's sample sum and count.
fn read(s: &Signal, families: &[MetricFamily]) -> Vec<(String, f64, f64)> {
    let Some(f) = families.iter().find(|f| f.name() == s.def.name) else {
        return Vec::new();
    };
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for m in f.get_metric() {
        if !s.labels.iter().all(|(k, v)| label(m, k) == *v) {
            continue;
        }
        let split = s.split.map_or("", |l| label(m, l)).to_owned();
        if !out.contains_key(&split) && out.len() >= MAX_SPLITS {
            continue;
        }
        let (value, count) = match f.get_field_type() {
            MetricType::COUNTER => (m.get_counter().get_value(), 0.0),
            MetricType::HISTOGRAM => {
                let h = m.get_histogram();
                (h.get_sample_sum(), h.get_sample_count() as f64)
            }
            _ => (m.get_gauge().get_value(), 0.0),
        };
        let slot = out.entry(split).or_default();
        slot.0 += value;
        slot.1 += count;
    }
    out.into_iter().map(|(k, (v, c))| (k, v, c)).collect()
}

/// One phase trigger's state after an evaluation.
#[derive(Debug, Clone)]
pub struct TriggerPoint {
    /// Phase name.
    pub phase: String,
    /// Trigger name.
    pub trigger: String,
    /// Its value (None: no data).
    pub value: Option<f64>,
    /// Its threshold.
    pub threshold: f64,
    /// Whether it is active.
    pub active: bool,
}

/// The histories of every target and phase trigger.
#[derive(Debug, Default)]
pub(crate) struct History {
    pub(crate) targets: BTreeMap<super::TargetKey, TargetHistory>,
    triggers: BTreeMap<(String, String), Rings>,
}

impl History {
    /// Appends one evaluation of every trigger at `now`; forgets triggers
    /// no longer configured.
    pub(crate) fn record_triggers(&mut self, points: &[TriggerPoint], now: f64) {
        self.triggers
            .retain(|(p, t), _| points.iter().any(|x| &x.phase == p && &x.trigger == t));
        for p in points {
            let key = (p.phase.clone(), p.trigger.clone());
            if !self.triggers.contains_key(&key) && self.triggers.len() >= MAX_TRIGGERS {
                continue;
            }
            let rings = self.triggers.entry(key).or_default();
            if let Some(v) = p.value
                && let Some(r) = rings.ring("value", "", Some(Unit::Plain))
            {
                r.push(now, v);
            }
            if let Some(r) = rings.ring("threshold", "", Some(Unit::Plain)) {
                r.push(now, p.threshold);
            }
            if let Some(r) = rings.ring("active", "", Some(Unit::Flag)) {
                r.push(now, if p.active { 1.0 } else { 0.0 });
            }
            rings.prune(now);
        }
    }

    /// A copy of one trigger's series.
    pub(crate) fn trigger(&self, phase: &str, trigger: &str) -> Vec<Series> {
        self.triggers
            .get(&(phase.to_owned(), trigger.to_owned()))
            .map(Rings::copy)
            .unwrap_or_default()
    }

    /// Points held, all series together.
    pub(crate) fn points(&self) -> usize {
        self.targets
            .values()
            .map(TargetHistory::points)
            .sum::<usize>()
            + self.triggers.values().map(Rings::points).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::POOL_SATURATION;
    use crate::collectors::{http, postgres, redis};
    use crate::exposition::Families;
    use crate::status::signals::SIGNALS;

    fn redis_poll(hits: f64, commands: f64, memory: f64) -> Vec<MetricFamily> {
        let mut f = Families::new();
        let t = [("target", "cache")];
        f.gauge(
            &redis::catalog::CACHE_HIT_RATIO,
            &[("target", "cache"), ("key_prefix", ""), ("window", "1m")],
            hits,
        );
        f.gauge(
            &redis::catalog::CACHE_HIT_RATIO,
            &[("target", "cache"), ("key_prefix", ""), ("window", "5m")],
            0.5,
        );
        f.counter(&redis::catalog::COMMANDS_PROCESSED_TOTAL, &t, commands);
        f.gauge(&redis::catalog::MEMORY_USED_BYTES, &t, memory);
        f.gauge(&redis::catalog::MEMORY_MAX_BYTES, &t, 1000.0);
        f.into_vec()
    }

    fn series<'a>(h: &'a [Series], signal: &str, label: &str) -> &'a Series {
        h.iter()
            .find(|s| s.signal == signal && s.label == label)
            .unwrap_or_else(|| panic!("no {signal}/{label} in {h:#?}"))
    }

    #[test]
    fn a_poll_adds_gauges_at_once_and_rates_from_the_second_poll() {
        let mut h = TargetHistory::default();
        h.record(SIGNALS, "redis", &redis_poll(0.9, 100.0, 10.0), 1000.0);
        h.record(SIGNALS, "redis", &redis_poll(0.8, 150.0, 20.0), 1002.0);
        // A counter reset: no rate point.
        h.record(SIGNALS, "redis", &redis_poll(0.7, 10.0, 30.0), 1004.0);
        let all = h.copy();
        assert_eq!(
            series(&all, "hit_ratio", "").points,
            vec![(1000.0, 0.9), (1002.0, 0.8), (1004.0, 0.7)],
            "the 1m window only"
        );
        assert_eq!(series(&all, "ops", "").points, vec![(1002.0, 25.0)]);
        assert_eq!(series(&all, "memory", "memory used").points.len(), 3);
        assert_eq!(
            series(&all, "memory", "maxmemory").points[0],
            (1000.0, 1000.0)
        );
    }

    /// The bound: however many polls and however many series a target
    /// answers with, a target keeps at most MAX_SERIES × MAX_POINTS points,
    /// none older than the window.
    #[test]
    fn the_history_is_bounded_in_points_series_and_age() {
        let mut h = TargetHistory::default();
        let mut now = 0.0;
        for poll in 0..(MAX_POINTS * 2) {
            let mut f = Families::new();
            // A health endpoint with 100 checks and a new one every poll.
            for c in 0..100 {
                let check = format!("check{c}-{poll}");
                f.gauge(
                    &http::catalog::HEALTH_CHECK_UP,
                    &[("target", "app"), ("check", &check)],
                    1.0,
                );
            }
            f.gauge(
                &POOL_SATURATION,
                &[("source", "app"), ("target", "app"), ("database", "")],
                0.5,
            );
            h.record(SIGNALS, "http", &f.into_vec(), now);
            now += 0.1;
        }
        let all = h.copy();
        assert!(all.len() <= MAX_SERIES, "{} series", all.len());
        let health = all.iter().filter(|s| s.signal == "health").count();
        assert!(health <= MAX_SPLITS, "{health} health series");
        let pool = series(&all, "pool_saturation", "");
        assert_eq!(pool.points.len(), MAX_POINTS, "the ring is full, no more");
        assert_eq!(pool.points.last().unwrap().0, now - 0.1);
        assert!(h.points() <= MAX_SERIES * MAX_POINTS);

        // 15 minutes later, one more poll: everything older is gone.
        now += WINDOW + 1.0;
        h.record(SIGNALS, "http", &[], now);
        assert_eq!(h.points(), 0, "{:#?}", h.copy());

        let mut history = History::default();
        let many: Vec<TriggerPoint> = (0..MAX_TRIGGERS + 10)
            .map(|i| TriggerPoint {
                phase: "p".into(),
                trigger: format!("t{i}"),
                value: Some(1.0),
                threshold: 2.0,
                active: false,
            })
            .collect();
        for i in 0..MAX_POINTS + 5 {
            history.record_triggers(&many, i as f64);
        }
        assert_eq!(history.triggers.len(), MAX_TRIGGERS);
        assert_eq!(history.points(), MAX_TRIGGERS * 3 * MAX_POINTS);
        // A reload that removes the triggers forgets them.
        history.record_triggers(&many[..1], 2000.0);
        assert_eq!(history.triggers.len(), 1);
    }

    #[test]
    fn sessions_split_by_state_and_latency_is_the_mean_since_the_last_poll() {
        let mut h = TargetHistory::default();
        let sessions = |idle: f64| {
            let mut f = Families::new();
            for (db, state, n) in [
                ("a", "active", 2.0),
                ("b", "active", 1.0),
                ("a", "idle", idle),
            ] {
                f.gauge(
                    &postgres::catalog::SESSIONS,
                    &[("target", "db"), ("datname", db), ("state", state)],
                    n,
                );
            }
            f.into_vec()
        };
        h.record(SIGNALS, "postgres", &sessions(4.0), 10.0);
        let all = h.copy();
        assert_eq!(series(&all, "sessions", "active").points, vec![(10.0, 3.0)]);
        assert_eq!(series(&all, "sessions", "idle").points, vec![(10.0, 4.0)]);

        let mut h = TargetHistory::default();
        let latency = |sum: f64, count: u64| {
            let mut f = Families::new();
            let data = crate::exposition::HistogramData::new(&[0.1, 1.0]);
            let mut data = data;
            data.sum = sum;
            data.count = count;
            f.histogram(
                &http::catalog::REQUEST_DURATION_SECONDS,
                &[("target", "api"), ("attempt", "first")],
                &data,
            );
            f.into_vec()
        };
        h.record(SIGNALS, "http", &latency(1.0, 10), 1.0);
        h.record(SIGNALS, "http", &latency(3.0, 14), 2.0);
        h.record(SIGNALS, "http", &latency(3.0, 14), 3.0);
        let all = h.copy();
        assert_eq!(series(&all, "latency", "first").points, vec![(2.0, 0.5)]);
    }
}
