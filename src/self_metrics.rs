//! perfwatch's own metrics, all defined here: per-target poll health, config
//! reloads and build info. Process metrics (RSS, CPU, fds) come from the
//! `prometheus` crate's process collector.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::engine::{GlobalState, TargetKey, TargetState};
use crate::exposition::Families;

/// Adds the self-metrics for the current store state to `out`.
pub fn render(
    out: &mut Families,
    targets: &BTreeMap<TargetKey, TargetState>,
    globals: &GlobalState,
    now: Instant,
) {
    out.gauge_named(
        "perfwatch_build_info",
        "A constant 1 labelled with the perfwatch version.",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    out.gauge_named(
        "perfwatch_config_last_reload_successful",
        "Whether the last configuration load or reload succeeded (1) or failed and the previous config is still running (0).",
        &[],
        if globals.reload_ok { 1.0 } else { 0.0 },
    );
    out.gauge_named(
        "perfwatch_config_last_reload_success_timestamp_seconds",
        "When the configuration was last loaded successfully.",
        &[],
        globals.reload_success_unix,
    );
    out.counter_named(
        "perfwatch_config_reload_failures_total",
        "Configuration reloads that failed.",
        &[],
        globals.reload_failures as f64,
    );
    for (key, s) in targets {
        let labels = [
            ("collector", key.collector),
            ("target", key.target.as_str()),
        ];
        out.gauge_named(
            "perfwatch_target_up",
            "Whether the last poll of the target succeeded.",
            &labels,
            if s.up { 1.0 } else { 0.0 },
        );
        out.gauge_named(
            "perfwatch_target_stale",
            "1 when the target has not been polled successfully for 3 intervals and its series are withheld.",
            &labels,
            if s.is_stale(now) { 1.0 } else { 0.0 },
        );
        out.gauge_named(
            "perfwatch_poll_duration_seconds",
            "How long the last poll of the target took.",
            &labels,
            s.last_duration,
        );
        out.gauge_named(
            "perfwatch_poll_interval_seconds",
            "The configured poll interval of the target.",
            &labels,
            s.timing.interval.as_secs_f64(),
        );
        out.counter_named(
            "perfwatch_polls_total",
            "Polls of the target that finished, successful or not.",
            &labels,
            s.polls as f64,
        );
        if let Some(t) = s.last_success_unix {
            out.gauge_named(
                "perfwatch_last_success_timestamp_seconds",
                "When the target was last polled successfully.",
                &labels,
                t,
            );
        }
        // Every reason appears (at 0) so that rate() works from the first error.
        for reason in crate::poll::ErrorReason::ALL {
            let n = s.errors.get(reason).copied().unwrap_or(0);
            out.counter_named(
                "perfwatch_poll_errors_total",
                "Polls of the target that failed, by reason.",
                &[
                    ("collector", key.collector),
                    ("target", key.target.as_str()),
                    ("reason", reason.as_str()),
                ],
                n as f64,
            );
        }
    }
}

crate::metric_catalog! {
    /// perfwatch's own families (filled by [`render`]).
    pub const CATALOG;
}
