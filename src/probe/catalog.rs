//! The fleet probes' own families, on `/metrics` (never in a probe's reply:
//! that carries the probed backend's families and its per-target
//! self-metrics, the same a configured target has).

crate::metric_catalog! {
    /// Every family of the fleet probes.
    pub const CATALOG;
    PROBES_TOTAL = Counter(
        "perfwatch_probes_total",
        ["kind", "outcome"],
        "Fleet probes (GET /probe) that polled a backend, by kind and outcome: success, error (the backend failed: connect, auth, TLS, a query; the reply says why in perfwatch_poll_errors_total) or timeout (no answer within the probe's deadline)."
    );
    PROBE_DURATION_SECONDS = Histogram(
        "perfwatch_probe_duration_seconds",
        ["kind"],
        "Time from a fleet probe request to its reply, waiting for a slot included, of the probes that polled a backend."
    );
    PROBE_REJECTED_TOTAL = Counter(
        "perfwatch_probe_rejected_total",
        ["reason"],
        "Fleet probe requests answered without polling, by reason: bad_request (400: a bad target, parameter or auth_module), not_allowed (403: the host is not in allow_targets), concurrency (503: max_concurrent probes running and max_queued waiting, or no slot before the deadline), disabled (404: the config has no [probe] section)."
    );
    PROBES_IN_FLIGHT = Gauge(
        "perfwatch_probes_in_flight",
        [],
        "Fleet probes holding a slot right now (at most max_concurrent)."
    );
    PROBES_WAITING = Gauge(
        "perfwatch_probes_waiting",
        [],
        "Fleet probes waiting for a slot right now (at most max_queued)."
    );
    PROBE_BACKENDS_CACHED = Gauge(
        "perfwatch_probe_backends_cached",
        [],
        "Backends (kind, target, auth set) kept between probes with their collector and connection (at most max_backends)."
    );
    PROBE_BACKENDS_EVICTED_TOTAL = Counter(
        "perfwatch_probe_backends_evicted_total",
        ["reason"],
        "Cached backends dropped with their connection, by reason: idle (not probed for idle_timeout), capacity (max_backends reached by a new backend), reload (the [probe] section changed)."
    );
}
