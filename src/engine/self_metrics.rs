//! perfwatch's own metrics, all defined here: per-target poll health, config
//! reloads and build info. Process metrics (RSS, CPU, fds) come from the
//! `prometheus` crate's process collector.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{GlobalState, TargetKey, TargetState};
use crate::exposition::Families;

/// Adds the self-metrics for the current store state to `out`.
pub(crate) fn render(
    out: &mut Families,
    targets: &BTreeMap<TargetKey, TargetState>,
    globals: &GlobalState,
    history_points: usize,
    now: Instant,
) {
    out.gauge(&BUILD_INFO, &crate::build_info::LABELS, 1.0);
    out.gauge(&HISTORY_POINTS, &[], history_points as f64);
    out.gauge(
        &CONFIG_LAST_RELOAD_SUCCESSFUL,
        &[],
        if globals.reload_ok { 1.0 } else { 0.0 },
    );
    out.gauge(
        &CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
        &[],
        globals.reload_success_unix,
    );
    out.counter(
        &CONFIG_RELOAD_FAILURES_TOTAL,
        &[],
        globals.reload_failures as f64,
    );
    for (key, s) in targets {
        render_target(out, key, s, now);
    }
}

/// Adds the self-metrics of one target: on `/metrics` for every configured
/// target, and in a fleet probe's reply for the probed backend.
pub(crate) fn render_target(out: &mut Families, key: &TargetKey, s: &TargetState, now: Instant) {
    let labels = [
        ("collector", key.collector),
        ("target", key.target.as_str()),
    ];
    out.gauge(&TARGET_UP, &labels, if s.up { 1.0 } else { 0.0 });
    if let Some(peer_up) = s.peer_up {
        // Before the first poll the peers have no answer either: 0.
        let answered = if s.answered { 1.0 } else { 0.0 };
        out.gauge(peer_up, &[("target", key.target.as_str())], answered);
    }
    out.gauge(
        &TARGET_STALE,
        &labels,
        if s.is_stale(now) { 1.0 } else { 0.0 },
    );
    out.gauge(&POLL_DURATION_SECONDS, &labels, s.last_duration);
    out.gauge(
        &POLL_INTERVAL_SECONDS,
        &labels,
        s.timing.interval.as_secs_f64(),
    );
    out.counter(&POLLS_TOTAL, &labels, s.polls as f64);
    if let Some(t) = s.last_success_unix {
        out.gauge(&LAST_SUCCESS_TIMESTAMP_SECONDS, &labels, t);
    }
    // Every reason appears (at 0) so that rate() works from the first error.
    for reason in crate::poll::ErrorReason::ALL {
        let n = s.errors.get(reason).copied().unwrap_or(0);
        out.counter(
            &POLL_ERRORS_TOTAL,
            &[
                ("collector", key.collector),
                ("target", key.target.as_str()),
                ("reason", reason.as_str()),
            ],
            n as f64,
        );
    }
}

// Label sets several families share.
const PER_TARGET: &[&str] = &["collector", "target"];

crate::metric_catalog! {
    /// perfwatch's own families (filled by [`render`]).
    pub const CATALOG;
    BUILD_INFO = Gauge(
        "perfwatch_build_info",
        ["version", "revision", "build_date", "rustc_version"],
        "A constant 1 labelled with the perfwatch version, the git commit it was built from, its build date and the rustc version (each `unknown` when the build could not tell)."
    );
    CONFIG_LAST_RELOAD_SUCCESSFUL = Gauge(
        "perfwatch_config_last_reload_successful",
        [],
        "Whether the last configuration load or reload succeeded (1) or failed and the previous config is still running (0)."
    );
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS = Gauge(
        "perfwatch_config_last_reload_success_timestamp_seconds",
        [],
        "When the configuration was last loaded successfully."
    );
    CONFIG_RELOAD_FAILURES_TOTAL = Counter(
        "perfwatch_config_reload_failures_total",
        [],
        "Configuration reloads that failed."
    );
    TARGET_UP = Gauge(
        "perfwatch_target_up",
        PER_TARGET,
        "Whether the last poll of the target succeeded."
    );
    TARGET_STALE = Gauge(
        "perfwatch_target_stale",
        PER_TARGET,
        "1 when the target has not been polled successfully for 3 intervals and its series are withheld."
    );
    POLL_DURATION_SECONDS = Gauge(
        "perfwatch_poll_duration_seconds",
        PER_TARGET,
        "How long the last poll of the target took."
    );
    POLL_INTERVAL_SECONDS = Gauge(
        "perfwatch_poll_interval_seconds",
        PER_TARGET,
        "The configured poll interval of the target."
    );
    POLLS_TOTAL = Counter(
        "perfwatch_polls_total",
        PER_TARGET,
        "Polls of the target that finished, successful or not."
    );
    LAST_SUCCESS_TIMESTAMP_SECONDS = Gauge(
        "perfwatch_last_success_timestamp_seconds",
        PER_TARGET,
        "When the target was last polled successfully."
    );
    HISTORY_POINTS = Gauge(
        "perfwatch_status_history_points",
        [],
        "Points the status page's in-memory history holds (every series of every target and phase trigger; bounded, at most 15 minutes)."
    );
    POLL_ERRORS_TOTAL = Counter(
        "perfwatch_poll_errors_total",
        ["collector", "target", "reason"],
        "Polls of the target that failed, by reason."
    );
}
