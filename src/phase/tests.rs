//! The trigger state machine and phase rules, on paused tokio time.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn trigger(metric: &str, above: Option<f64>, below: Option<f64>) -> TriggerConfig {
    TriggerConfig {
        name: "t".into(),
        kind: TriggerKind::Signal,
        metric: metric.into(),
        above,
        below,
        for_: None,
        clear_below: None,
        clear_above: None,
        aggregate: Aggregate::Max,
        window: None,
    }
}

/// An engine with one phase "p" (`when = "any"`) of the one trigger `t`.
fn engine_of(t: TriggerConfig) -> PhaseEngine {
    PhaseEngine::new(&[PhaseConfig {
        name: "p".into(),
        description: String::new(),
        when: When::Any,
        triggers: vec![t],
    }])
}

fn gauge(name: &str, labels: &[(&str, &str)], v: f64) -> Vec<MetricFamily> {
    let mut f = Families::new();
    f.gauge_named(name, "h", labels, v);
    f.into_vec()
}

#[tokio::test(start_paused = true)]
async fn for_duration_must_hold_continuously() {
    let mut rule = trigger("x", None, Some(0.7));
    rule.for_ = Some(Duration::from_secs(15 * 60));
    let mut st = TriggerState::default();
    let t0 = Instant::now();
    // (minutes after t0, value, expected active)
    let steps: &[(u64, Option<f64>, bool)] = &[
        (0, Some(0.6), false),
        (10, Some(0.65), false),
        (14, Some(0.8), false), // interruption restarts the clock
        (15, Some(0.6), false),
        (29, Some(0.6), false),
        (30, Some(0.6), true),
        (31, Some(0.69), true),
        (32, Some(0.7), false), // no hysteresis: clears at the threshold
    ];
    for (min, v, want) in steps {
        st.step(&rule, t0 + Duration::from_secs(min * 60), *v);
        assert_eq!(st.active(), *want, "minute {min} value {v:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn hysteresis_table() {
    // above 2000, clear below 1900
    let mut up = trigger("x", Some(2000.0), None);
    up.clear_below = Some(1900.0);
    // below 0.70, clear above 0.75
    let mut down = trigger("x", None, Some(0.70));
    down.clear_above = Some(0.75);
    type Steps = &'static [(f64, bool)];
    let cases: [(&TriggerConfig, Steps); 2] = [
        (
            &up,
            &[
                (1999.0, false),
                (2001.0, true),
                (1950.0, true),
                (1900.0, true),
                (1899.0, false),
                (1950.0, false),
            ],
        ),
        (
            &down,
            &[
                (0.71, false),
                (0.69, true),
                (0.72, true),
                (0.75, true),
                (0.76, false),
                (0.72, false),
            ],
        ),
    ];
    for (rule, steps) in cases {
        let mut st = TriggerState::default();
        let t0 = Instant::now();
        for (i, (v, want)) in steps.iter().enumerate() {
            st.step(rule, t0 + Duration::from_secs(i as u64), Some(*v));
            assert_eq!(
                st.active(),
                *want,
                "rule {:?} step {i} value {v}",
                rule.threshold()
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn no_data_clears_and_is_reported() {
    let rule = trigger("x", Some(1.0), None);
    let phase = PhaseConfig {
        name: "p".into(),
        description: "d".into(),
        when: When::Any,
        triggers: vec![rule],
    };
    let mut engine = PhaseEngine::new(&[phase]);
    let now = Instant::now();
    let out = engine.evaluate(&gauge("x", &[], 5.0), now).into_vec();
    let v = |fams: &[MetricFamily], n: &str| crate::exposition::sample_value(fams, n, &[]);
    assert_eq!(v(&out, "perfwatch_phase_trigger_active"), Some(1.0));
    assert_eq!(v(&out, "perfwatch_phase_recommended"), Some(1.0));
    let out = engine
        .evaluate(&[], now + Duration::from_secs(1))
        .into_vec();
    assert_eq!(v(&out, "perfwatch_phase_trigger_active"), Some(0.0));
    assert_eq!(v(&out, "perfwatch_phase_trigger_no_data"), Some(1.0));
    assert_eq!(v(&out, "perfwatch_phase_trigger_value"), None);
    assert_eq!(v(&out, "perfwatch_phase_recommended"), Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn any_all_and_recommended_phase() {
    let mk = |name: &str, when: When, triggers: Vec<TriggerConfig>| PhaseConfig {
        name: name.into(),
        description: format!("{name} description"),
        when,
        triggers,
    };
    let named = |n: &str, metric: &str, above: f64| TriggerConfig {
        name: n.into(),
        ..trigger(metric, Some(above), None)
    };
    let phase2 = mk(
        "phase2",
        When::Any,
        vec![named("trips", "trips", 2000.0), named("slow", "slow", 10.0)],
    );
    let phase3 = mk(
        "phase3",
        When::All,
        vec![
            named("drivers", "drivers", 10_000.0),
            named("cached", "cached", 0.5),
        ],
    );
    let mut engine = PhaseEngine::new(&[phase2, phase3]);
    let families = |trips: f64, drivers: f64, cached: f64| {
        let mut f = Families::new();
        f.gauge_named("trips", "h", &[], trips);
        f.gauge_named("slow", "h", &[], 1.0);
        f.gauge_named("drivers", "h", &[], drivers);
        f.gauge_named("cached", "h", &[], cached);
        f.into_vec()
    };
    let t0 = Instant::now();
    let rec = |out: Families| {
        crate::exposition::sample_value(&out.into_vec(), "perfwatch_phase_recommended", &[])
    };
    // (trips, drivers, cached latency) → recommended phase position
    let steps = [
        (100.0, 10.0, 0.1, 0.0),
        (2500.0, 10.0, 0.1, 1.0),
        (2500.0, 20_000.0, 0.1, 1.0),
        (2500.0, 20_000.0, 0.9, 2.0),
    ];
    for (i, (trips, drivers, cached, want)) in steps.into_iter().enumerate() {
        let out = engine.evaluate(
            &families(trips, drivers, cached),
            t0 + Duration::from_secs(i as u64),
        );
        assert_eq!(rec(out), Some(want), "step {i}");
    }
}

/// Phase 3 in place, its jobs late: a health trigger is exported and
/// alertable but never makes its phase active or recommended, under `any`
/// or `all`; an inactive one does not hold back an `all` rule either.
#[tokio::test(start_paused = true)]
async fn health_triggers_are_exported_but_never_recommend_their_phase() {
    let named = |n: &str, kind: TriggerKind| TriggerConfig {
        name: n.into(),
        kind,
        ..trigger(n, Some(1.0), None)
    };
    // (when, signal value, health value) → (phase active, health active)
    let cases = [
        (When::Any, 0.0, 5.0, 0.0, 1.0),
        (When::All, 0.0, 5.0, 0.0, 1.0),
        (When::Any, 5.0, 0.0, 1.0, 0.0),
        (When::All, 5.0, 0.0, 1.0, 0.0),
        (When::All, 5.0, 5.0, 1.0, 1.0),
    ];
    for (when, signal, health, want_phase, want_health) in cases {
        let mut engine = PhaseEngine::new(&[PhaseConfig {
            name: "phase3".into(),
            description: String::new(),
            when,
            triggers: vec![
                named("load", TriggerKind::Signal),
                named("late", TriggerKind::Health),
            ],
        }]);
        let mut f = Families::new();
        f.gauge_named("load", "h", &[], signal);
        f.gauge_named("late", "h", &[], health);
        let out = engine.evaluate(&f.into_vec(), Instant::now()).into_vec();
        let v = |n: &str, l: &[(&str, &str)]| crate::exposition::sample_value(&out, n, l);
        let case = format!("{when:?} signal {signal} health {health}");
        assert_eq!(v("perfwatch_phase_active", &[]), Some(want_phase), "{case}");
        assert_eq!(
            v("perfwatch_phase_recommended", &[]),
            Some(want_phase),
            "{case}"
        );
        let late = [("trigger", "late")];
        assert_eq!(
            v("perfwatch_phase_trigger_active", &late),
            Some(want_health),
            "{case}"
        );
        assert_eq!(
            v("perfwatch_phase_trigger_value", &late),
            Some(health),
            "{case}"
        );
        for (trigger, kind) in [("late", "health"), ("load", "signal")] {
            let info = [("trigger", trigger), ("kind", kind)];
            assert_eq!(
                v("perfwatch_phase_trigger_info", &info),
                Some(1.0),
                "{case}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn aggregate_and_label_matching() {
    // As the Redis collector exports them (no key prefix).
    let mut f = Families::new();
    let ratio = &crate::collectors::redis::catalog::CACHE_HIT_RATIO;
    for (target, window, v) in [("a", "5m", 0.9), ("b", "5m", 0.6), ("b", "1m", 0.1)] {
        let labels = [("target", target), ("key_prefix", ""), ("window", window)];
        f.gauge(ratio, &labels, v);
    }
    let fams = f.into_vec();
    let cases = [
        (
            Aggregate::Min,
            "perfwatch_cache_hit_ratio{window=\"5m\"}",
            0.6,
        ),
        (
            Aggregate::Max,
            "perfwatch_cache_hit_ratio{window=\"5m\"}",
            0.9,
        ),
        (
            Aggregate::Sum,
            "perfwatch_cache_hit_ratio{target=\"b\"}",
            0.7,
        ),
        (
            Aggregate::Max,
            "perfwatch_cache_hit_ratio{target=~\"b\",window!=\"5m\"}",
            0.1,
        ),
    ];
    for (agg, metric, want) in cases {
        let mut t = trigger(metric, None, Some(0.0));
        t.aggregate = agg;
        let mut engine = engine_of(t);
        let out = engine.evaluate(&fams, Instant::now()).into_vec();
        let v =
            crate::exposition::sample_value(&out, "perfwatch_phase_trigger_value", &[]).unwrap();
        assert!((v - want).abs() < 1e-9, "{agg:?} {metric}: {v}");
    }
}

#[tokio::test(start_paused = true)]
async fn windowed_histogram_quantile() {
    static B: [f64; 3] = [0.1, 1.0, 10.0];
    let mut h = crate::exposition::HistogramData::new(&B);
    let snapshot = |h: &crate::exposition::HistogramData| {
        let mut f = Families::new();
        f.histogram_named("d_seconds", "h", &[], h);
        f.into_vec()
    };
    let mut t = trigger("histogram_quantile(0.5, d_seconds)", Some(5.0), None);
    t.window = Some(Duration::from_secs(60));
    let mut engine = engine_of(t);
    let t0 = Instant::now();
    let value = |out: Families| {
        crate::exposition::sample_value(&out.into_vec(), "perfwatch_phase_trigger_value", &[])
    };
    // An old burst of fast queries…
    for _ in 0..100 {
        h.observe(0.05);
    }
    assert_eq!(value(engine.evaluate(&snapshot(&h), t0)), Some(0.05));
    // …then, in the last minute, only slow ones: the window must forget the burst.
    for _ in 0..10 {
        h.observe(8.0);
    }
    let v = value(engine.evaluate(&snapshot(&h), t0 + Duration::from_secs(120))).unwrap();
    assert!(v > 1.0 && v <= 10.0, "windowed p50 {v}");
}

#[test]
fn windowed_quantile_history_stays_bounded() {
    let window = Duration::from_secs(900);
    let t0 = Instant::now();
    let buckets = |n: f64| vec![(0.1, n), (1.0, 2.0 * n), (f64::INFINITY, 2.0 * n)];
    // Unchanged histograms: one snapshot, however many polls.
    let mut idle = TriggerState::default();
    for i in 0..10_000u64 {
        idle.windowed_quantile(
            0.5,
            window,
            t0 + Duration::from_millis(100 * i),
            buckets(5.0),
        );
    }
    assert_eq!(idle.history.len(), 1);
    // A histogram changing on every 100 ms poll for 20 minutes: at most one
    // snapshot per window/256, plus the one before the window.
    let mut busy = TriggerState::default();
    let mut last = None;
    for i in 0..12_000u64 {
        last = busy.windowed_quantile(
            0.5,
            window,
            t0 + Duration::from_millis(100 * i),
            buckets(i as f64),
        );
    }
    assert!(
        busy.history.len() <= 258,
        "{} snapshots",
        busy.history.len()
    );
    // Still a windowed answer: the last 15 minutes' observations all fell
    // into the first bucket's half-and-half split, so the median is ≤ 1.
    assert!(last.is_some_and(|v| v > 0.0 && v <= 1.0), "{last:?}");
}
