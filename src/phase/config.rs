//! `[[phase]]` and `[[phase.trigger]]` config.

use std::time::Duration;

use serde::Deserialize;

use super::selector;

/// Whether a phase needs any or all of its triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// Any active trigger activates the phase.
    #[default]
    Any,
    /// Every trigger must be active.
    All,
}

/// How several matching series combine into one trigger value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// The largest value.
    #[default]
    Max,
    /// The smallest value.
    Min,
    /// The sum.
    Sum,
}

/// What a trigger says about its phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// A sign that it is time for the phase: counts toward its `when` rule
    /// and so toward `perfwatch_phase_recommended`.
    #[default]
    Signal,
    /// The health of the phase once it is in place (phase 3's jobs falling
    /// behind): exported like any trigger, never part of the phase's rule,
    /// since a phase whose machinery lags is no reason to recommend it.
    Health,
}

impl TriggerKind {
    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "signal",
            Self::Health => "health",
        }
    }
}

/// One architecture phase: a description and the signals that say it is time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseConfig {
    /// The `phase` label; unique.
    pub name: String,
    /// What moving to this phase means (shown in alerts and on the landing page).
    #[serde(default)]
    pub description: String,
    /// `any` or `all` of the `signal` triggers.
    #[serde(default)]
    pub when: When,
    /// The triggers, `[[phase.trigger]]`.
    #[serde(default, rename = "trigger")]
    pub triggers: Vec<TriggerConfig>,
}

/// One `[[phase.trigger]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// The `trigger` label; unique within the phase.
    pub name: String,
    /// `signal` (default: counts toward the phase's rule) or `health`
    /// (watched and exported, never part of the rule).
    #[serde(default)]
    pub kind: TriggerKind,
    /// A selector over perfwatch's own series: `name{label="v",l2=~"re"}` or
    /// `histogram_quantile(0.95, name{…})`.
    pub metric: String,
    /// Active when the value is above this.
    pub above: Option<f64>,
    /// Active when the value is below this.
    pub below: Option<f64>,
    /// How long the condition must hold before the trigger activates
    /// ("consistently"); default 0.
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub for_: Option<Duration>,
    /// Hysteresis for `above` triggers: once active, stays active until the
    /// value falls below this (default: the `above` threshold).
    pub clear_below: Option<f64>,
    /// Hysteresis for `below` triggers: stays active until the value rises
    /// above this (default: the `below` threshold).
    pub clear_above: Option<f64>,
    /// How several matching series combine.
    #[serde(default)]
    pub aggregate: Aggregate,
    /// For `histogram_quantile` selectors: the window the quantile covers.
    #[serde(default, with = "humantime_serde")]
    pub window: Option<Duration>,
}

/// The quantile window when none is configured.
pub const DEFAULT_QUANTILE_WINDOW: Duration = Duration::from_secs(300);

impl TriggerConfig {
    /// `(threshold, fires when above)`; validation guarantees exactly one.
    pub fn threshold(&self) -> (f64, bool) {
        match (self.above, self.below) {
            (Some(a), _) => (a, true),
            (None, Some(b)) => (b, false),
            (None, None) => (f64::NAN, true),
        }
    }
}

/// Checks every phase; `(key, message)` with keys like `phase[1].trigger[0].above`.
pub fn validate_phases(phases: &[PhaseConfig]) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, p) in phases.iter().enumerate() {
        let at = |k: &str| format!("phase[{i}].{k}");
        if !names.insert(p.name.as_str()) {
            errors.push((at("name"), format!("duplicate phase name \"{}\"", p.name)));
        }
        if p.triggers.is_empty() {
            errors.push((
                at("name"),
                format!("phase \"{}\" has no [[phase.trigger]]", p.name),
            ));
        }
        let mut tnames = std::collections::BTreeSet::new();
        for (j, t) in p.triggers.iter().enumerate() {
            let tk = |k: &str| format!("phase[{i}].trigger[{j}].{k}");
            if !tnames.insert(t.name.as_str()) {
                errors.push((tk("name"), format!("duplicate trigger name \"{}\"", t.name)));
            }
            if let Err(e) = selector::parse(&t.metric) {
                errors.push((tk("metric"), e));
            }
            match (t.above, t.below) {
                (Some(_), Some(_)) => {
                    errors.push((tk("below"), "set above or below, not both".into()))
                }
                (None, None) => errors.push((tk("above"), "set one of above or below".into())),
                _ => {}
            }
            if let (Some(above), Some(clear)) = (t.above, t.clear_below)
                && clear > above
            {
                errors.push((
                    tk("clear_below"),
                    format!("clear_below {clear} must not exceed above {above}"),
                ));
            }
            if let (Some(below), Some(clear)) = (t.below, t.clear_above)
                && clear < below
            {
                errors.push((
                    tk("clear_above"),
                    format!("clear_above {clear} must not be under below {below}"),
                ));
            }
            if t.above.is_some() && t.clear_above.is_some() {
                errors.push((
                    tk("clear_above"),
                    "hysteresis on the wrong side: an `above` trigger clears with clear_below"
                        .into(),
                ));
            }
            if t.below.is_some() && t.clear_below.is_some() {
                errors.push((
                    tk("clear_below"),
                    "hysteresis on the wrong side: a `below` trigger clears with clear_above"
                        .into(),
                ));
            }
            let is_quantile = selector::parse(&t.metric).is_ok_and(|s| s.quantile.is_some());
            if t.window.is_some() && !is_quantile {
                errors.push((
                    tk("window"),
                    "window only applies to histogram_quantile selectors".into(),
                ));
            }
        }
    }
    errors
}
