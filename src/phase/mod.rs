//! Phase triggers: the seeds' architecture phases ("trips > 2,000: time for
//! pre-aggregated summary tables"; "hit ratio < 70 %") turned into gauges.
//!
//! After each poll round the engine reads the latest value of every trigger's
//! selector from the series perfwatch exports, runs each trigger's state
//! machine (`for` duration, hysteresis) and exports `perfwatch_phase_*`.
//!
//! Decisions:
//! - No data (the selector matches nothing, e.g. the target is down and its
//!   series went stale) clears a trigger and restarts its `for`, as a
//!   Prometheus alert would resolve; `perfwatch_phase_trigger_no_data` says why.
//! - Phases are ordered as declared; `perfwatch_phase_recommended` is the
//!   1-based position of the last declared phase whose rule is met (0: none).
//! - A phase's rule (`when`) reads only its `signal` triggers. `health`
//!   triggers watch a phase already in place (phase 3's jobs falling behind):
//!   a late job must not read as "time for phase 3". They share the trigger
//!   families; `perfwatch_phase_trigger_info{kind}` tells the two apart.

pub mod config;
pub(crate) mod selector;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use prometheus::proto::MetricFamily;
use tokio::time::Instant;

pub use config::{Aggregate, PhaseConfig, TriggerConfig, TriggerKind, When, validate_phases};
use perfwatch_slowlog::histogram::bucket_quantile;
use selector::{Buckets, Matched, Selector};

use crate::exposition::Families;

// Label sets several families share.
const PER_TRIGGER: &[&str] = &["phase", "trigger"];

crate::metric_catalog! {
    /// The phase families (filled by [`PhaseEngine::evaluate`]).
    pub const CATALOG;
    ACTIVE = Gauge(
        "perfwatch_phase_active",
        ["phase"],
        "1 when the phase's rule (any/all of its triggers) is met."
    );
    INFO = Gauge(
        "perfwatch_phase_info",
        ["phase", "description", "order"],
        "A constant 1 with the phase's description and its position in the config (order)."
    );
    RECOMMENDED = Gauge(
        "perfwatch_phase_recommended",
        [],
        "Position (1-based, as declared) of the last phase whose rule is met; 0 when none is."
    );
    TRIGGER_INFO = Gauge(
        "perfwatch_phase_trigger_info",
        ["phase", "trigger", "kind"],
        "A constant 1 with the trigger's kind: signal (counts toward the phase's rule) or health (the phase's health once in place; never counts)."
    );
    TRIGGER_ACTIVE = Gauge(
        "perfwatch_phase_trigger_active",
        PER_TRIGGER,
        "1 when the trigger's condition has held for its `for` duration (and not cleared by hysteresis)."
    );
    TRIGGER_VALUE = Gauge(
        "perfwatch_phase_trigger_value",
        PER_TRIGGER,
        "The trigger's current value (its selector, aggregated)."
    );
    TRIGGER_THRESHOLD = Gauge(
        "perfwatch_phase_trigger_threshold",
        ["phase", "trigger", "direction"],
        "The trigger's threshold; direction says whether it fires above or below it."
    );
    TRIGGER_ACTIVE_SECONDS = Gauge(
        "perfwatch_phase_trigger_active_seconds",
        PER_TRIGGER,
        "How long the trigger has been active (0 when inactive)."
    );
    TRIGGER_NO_DATA = Gauge(
        "perfwatch_phase_trigger_no_data",
        PER_TRIGGER,
        "1 when the trigger's selector matched no series perfwatch exports."
    );
}

/// The state of one trigger across evaluations.
/// Most histogram snapshots a windowed quantile keeps per window.
const MAX_SNAPSHOTS_PER_WINDOW: u32 = 256;

#[derive(Debug, Default, Clone)]
pub(crate) struct TriggerState {
    /// Since when the firing condition has held (pending).
    pub pending_since: Option<Instant>,
    /// Since when the trigger is active.
    pub active_since: Option<Instant>,
    /// The last evaluated value.
    pub value: Option<f64>,
    /// Histogram snapshots for windowed quantiles.
    history: VecDeque<(Instant, Buckets)>,
}

impl TriggerState {
    /// Whether the trigger is active.
    pub fn active(&self) -> bool {
        self.active_since.is_some()
    }

    /// Advances the state machine with the value observed at `now`.
    pub fn step(&mut self, rule: &TriggerConfig, now: Instant, value: Option<f64>) {
        self.value = value;
        let Some(v) = value else {
            self.pending_since = None;
            self.active_since = None;
            return;
        };
        let (threshold, fires_above) = rule.threshold();
        if self.active() {
            let clears = if fires_above {
                rule.clear_below.map_or(v <= threshold, |c| v < c)
            } else {
                rule.clear_above.map_or(v >= threshold, |c| v > c)
            };
            if clears {
                self.active_since = None;
                self.pending_since = None;
            }
            return;
        }
        let firing = if fires_above {
            v > threshold
        } else {
            v < threshold
        };
        if !firing {
            self.pending_since = None;
            return;
        }
        let since = *self.pending_since.get_or_insert(now);
        if now.duration_since(since) >= rule.for_.unwrap_or(Duration::ZERO) {
            self.active_since = Some(now);
        }
    }

    /// The windowed quantile of a histogram selector: bucket deltas between
    /// now and the newest snapshot at or before the window start.
    fn windowed_quantile(
        &mut self,
        q: f64,
        window: Duration,
        now: Instant,
        buckets: Buckets,
    ) -> Option<f64> {
        let reset = self.history.back().is_some_and(|(_, last)| {
            last.len() != buckets.len() || last.iter().zip(&buckets).any(|(a, b)| b.1 < a.1)
        });
        if reset {
            self.history.clear();
        }
        let first = self.history.is_empty();
        // Bounded history: a snapshot equal to the last one adds nothing (the
        // newest snapshot at or before any start has the same counts), and
        // snapshots closer together than 1/256 of the window add little
        // resolution; otherwise every poll of every target would keep a copy
        // for the whole window.
        let keep = self.history.back().is_none_or(|(t, last)| {
            *last != buckets && now.duration_since(*t) >= window / MAX_SNAPSHOTS_PER_WINDOW
        });
        if keep {
            self.history.push_back((now, buckets.clone()));
        }
        while self.history.len() > 2 && now.duration_since(self.history[1].0) > window {
            self.history.pop_front();
        }
        if first {
            // A single snapshot: the lifetime so far is all there is.
            return bucket_quantile(q, &buckets);
        }
        let start = now.checked_sub(window);
        let (_, base) = start
            .and_then(|s| self.history.iter().rev().find(|(t, _)| *t <= s))
            .or_else(|| self.history.front())?;
        let delta: Buckets = buckets
            .iter()
            .zip(base)
            .map(|(l, b)| (l.0, l.1 - b.1))
            .collect();
        bucket_quantile(q, &delta)
    }
}

struct Trigger {
    config: TriggerConfig,
    selector: Option<Selector>,
    state: TriggerState,
}

struct Phase {
    config: PhaseConfig,
    triggers: Vec<Trigger>,
}

/// Evaluates every configured phase.
#[derive(Default)]
pub struct PhaseEngine {
    phases: Vec<Phase>,
}

impl PhaseEngine {
    /// An engine for `phases` (already validated).
    pub fn new(phases: &[PhaseConfig]) -> Self {
        let mut e = Self::default();
        e.reconfigure(phases);
        e
    }

    /// Replaces the config, keeping the state of triggers whose phase,
    /// name and rule are unchanged (a reload does not restart their `for`).
    pub fn reconfigure(&mut self, phases: &[PhaseConfig]) {
        let mut old: BTreeMap<(String, String), Trigger> = BTreeMap::new();
        for p in self.phases.drain(..) {
            for t in p.triggers {
                old.insert((p.config.name.clone(), t.config.name.clone()), t);
            }
        }
        self.phases = phases
            .iter()
            .map(|p| Phase {
                config: p.clone(),
                triggers: p
                    .triggers
                    .iter()
                    .map(|t| match old.remove(&(p.name.clone(), t.name.clone())) {
                        Some(prev) if prev.config == *t => prev,
                        _ => Trigger {
                            config: t.clone(),
                            selector: selector::parse(&t.metric).ok(),
                            state: TriggerState::default(),
                        },
                    })
                    .collect(),
            })
            .collect();
    }

    /// `(phase, trigger, metric)` of every trigger whose selector names a
    /// family `known` rejects (a typo would leave the trigger without data
    /// forever; the caller warns).
    pub fn unknown_metrics(&self, known: impl Fn(&str) -> bool) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for p in &self.phases {
            for t in &p.triggers {
                if !t.selector.as_ref().is_some_and(|s| known(&s.name)) {
                    out.push((
                        p.config.name.clone(),
                        t.config.name.clone(),
                        t.config.metric.clone(),
                    ));
                }
            }
        }
        out
    }

    /// Evaluates all triggers against `families` at `now` and returns the
    /// `perfwatch_phase_*` families.
    pub fn evaluate(&mut self, families: &[MetricFamily], now: Instant) -> Families {
        let mut out = Families::new();
        let mut recommended = 0usize;
        for (index, phase) in self.phases.iter_mut().enumerate() {
            let pname = phase.config.name.clone();
            for t in &mut phase.triggers {
                let value = t
                    .selector
                    .as_ref()
                    .and_then(|s| match s.evaluate(families) {
                        Matched::None => None,
                        Matched::Values(v) => Some(aggregate(t.config.aggregate, &v)),
                        Matched::Histogram(b) => {
                            let window = t.config.window.unwrap_or(config::DEFAULT_QUANTILE_WINDOW);
                            t.state
                                .windowed_quantile(s.quantile.unwrap_or(0.5), window, now, b)
                        }
                    });
                t.state.step(&t.config, now, value);
                export_trigger(&mut out, &pname, t, now);
            }
            let mut signals = phase
                .triggers
                .iter()
                .filter(|t| t.config.kind == TriggerKind::Signal)
                .peekable();
            let active = match phase.config.when {
                When::Any => signals.any(|t| t.state.active()),
                When::All => signals.peek().is_some() && signals.all(|t| t.state.active()),
            };
            if active {
                recommended = index + 1;
            }
            out.gauge(
                &ACTIVE,
                &[("phase", &pname)],
                if active { 1.0 } else { 0.0 },
            );
            out.gauge(
                &INFO,
                &[
                    ("phase", &pname),
                    ("description", &phase.config.description),
                    ("order", &(index + 1).to_string()),
                ],
                1.0,
            );
        }
        if !self.phases.is_empty() {
            out.gauge(&RECOMMENDED, &[], recommended as f64);
        }
        out
    }

    /// Every phase with its triggers' state, for the status page and
    /// `/api/status`; `now` dates how long active triggers have been active.
    pub fn summary(&self, now: Instant) -> Vec<PhaseSummary> {
        self.phases
            .iter()
            .map(|p| {
                let triggers: Vec<TriggerSummary> = p
                    .triggers
                    .iter()
                    .map(|t| {
                        let (threshold, fires_above) = t.config.threshold();
                        TriggerSummary {
                            name: t.config.name.clone(),
                            kind: t.config.kind,
                            active: t.state.active(),
                            value: t.state.value,
                            threshold,
                            fires_above,
                            clear: if fires_above {
                                t.config.clear_below
                            } else {
                                t.config.clear_above
                            },
                            active_for: t.state.active_since.map(|s| now.duration_since(s)),
                        }
                    })
                    .collect();
                // The same rule as `evaluate`: only signal triggers count.
                let mut signals = triggers
                    .iter()
                    .filter(|t| t.kind == TriggerKind::Signal)
                    .peekable();
                let active = match p.config.when {
                    When::Any => signals.any(|t| t.active),
                    When::All => signals.peek().is_some() && signals.all(|t| t.active),
                };
                PhaseSummary {
                    name: p.config.name.clone(),
                    description: p.config.description.clone(),
                    active,
                    triggers,
                }
            })
            .collect()
    }
}

/// A phase as the status page shows it.
#[derive(Debug, Clone)]
pub struct PhaseSummary {
    /// Phase name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Whether its rule is met (its signal triggers, `when`).
    pub active: bool,
    /// Its triggers, as declared.
    pub triggers: Vec<TriggerSummary>,
}

/// One trigger as the status page shows it.
#[derive(Debug, Clone)]
pub struct TriggerSummary {
    /// Trigger name.
    pub name: String,
    /// Signal (counts toward the phase) or health.
    pub kind: TriggerKind,
    /// Whether it is active.
    pub active: bool,
    /// The last evaluated value (None: no data).
    pub value: Option<f64>,
    /// Its threshold.
    pub threshold: f64,
    /// Whether it fires above the threshold (else below).
    pub fires_above: bool,
    /// The hysteresis edge that clears it (`clear_below` for a trigger
    /// firing above, `clear_above` for one firing below), if set.
    pub clear: Option<f64>,
    /// How long it has been active.
    pub active_for: Option<Duration>,
}

/// The recommended phase: the last declared phase whose rule is met (the
/// rule of `perfwatch_phase_recommended`).
pub fn recommended(phases: &[PhaseSummary]) -> Option<&PhaseSummary> {
    phases.iter().rev().find(|p| p.active)
}

fn aggregate(how: Aggregate, values: &[f64]) -> f64 {
    match how {
        Aggregate::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregate::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregate::Sum => values.iter().sum(),
    }
}

fn export_trigger(out: &mut Families, phase: &str, t: &Trigger, now: Instant) {
    let l = [("phase", phase), ("trigger", t.config.name.as_str())];
    out.gauge(
        &TRIGGER_INFO,
        &[
            ("phase", phase),
            ("trigger", t.config.name.as_str()),
            ("kind", t.config.kind.as_str()),
        ],
        1.0,
    );
    out.gauge(
        &TRIGGER_ACTIVE,
        &l,
        if t.state.active() { 1.0 } else { 0.0 },
    );
    if let Some(v) = t.state.value {
        out.gauge(&TRIGGER_VALUE, &l, v);
    }
    let (threshold, above) = t.config.threshold();
    out.gauge(
        &TRIGGER_THRESHOLD,
        &[
            ("phase", phase),
            ("trigger", t.config.name.as_str()),
            ("direction", if above { "above" } else { "below" }),
        ],
        threshold,
    );
    out.gauge(
        &TRIGGER_ACTIVE_SECONDS,
        &l,
        t.state
            .active_since
            .map_or(0.0, |s| now.duration_since(s).as_secs_f64()),
    );
    out.gauge(
        &TRIGGER_NO_DATA,
        &l,
        if t.state.value.is_none() { 1.0 } else { 0.0 },
    );
}

#[cfg(test)]
mod tests;
