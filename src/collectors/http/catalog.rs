//! Every family the HTTP app endpoint collector exports, declared once (see
//! [`crate::catalog`]). It also fills two families declared elsewhere:
//! `perfwatch_pool_saturation_ratio{source="app"}`
//! ([`crate::catalog::POOL_SATURATION`]) and the `perfwatch_cache_*` hit
//! ratios (declared with the Redis collector, per `key_prefix` here).

crate::metric_catalog! {
    /// Everything the HTTP collector declares.
    pub const ALL;

    // Every kind: the exchange itself.
    UP = Gauge(
        "perfwatch_app_up",
        ["target"],
        "1 when the endpoint answered with an expected status (expect_status), else 0. Connection failures show in perfwatch_target_up instead."
    );
    RESPONSE_STATUS_CODE = Gauge(
        "perfwatch_app_response_status_code",
        ["target"],
        "HTTP status code of the last response."
    );
    RESPONSE_BODY_BYTES = Gauge(
        "perfwatch_app_response_body_bytes",
        ["target"],
        "Bytes of the last response body read (at most max_body_bytes + one chunk)."
    );
    RESPONSE_SECONDS = Gauge(
        "perfwatch_app_response_seconds",
        ["target"],
        "Time from sending the request to the end of the response body (first request of the poll)."
    );

    // kind = "health".
    HEALTH_STATUS_UP = Gauge(
        "perfwatch_app_health_status_up",
        ["target"],
        "1 when the health body's overall status is one of healthy_values, else 0."
    );
    HEALTH_CHECK_UP = Gauge(
        "perfwatch_app_health_check_up",
        ["target", "check"],
        "1 when the health check's status is one of healthy_values, else 0 (at most max_checks checks)."
    );
    HEALTH_CHECKS = Gauge(
        "perfwatch_app_health_checks",
        ["target"],
        "Checks found in the health body (more than exported when above max_checks)."
    );
    HEALTH_CHECKS_UNREADABLE = Gauge(
        "perfwatch_app_health_checks_unreadable",
        ["target"],
        "Checks in the health body whose status could not be read (skipped)."
    );
    HEALTH_PARSE_ERRORS_TOTAL = Counter(
        "perfwatch_app_health_parse_errors_total",
        ["target"],
        "Health responses with an expected status whose body was not usable health JSON (not JSON, no status or checks, or larger than max_body_bytes)."
    );

    // kind = "latency".
    REQUEST_DURATION_SECONDS = Histogram(
        "perfwatch_app_request_duration_seconds",
        ["target", "attempt"],
        "Response time of the endpoint (request to end of body), expected statuses only. attempt=\"first\" is each poll's first request, \"repeat\" the ones right after it (repeat > 1): cold vs cached."
    );
    REQUESTS_TOTAL = Counter(
        "perfwatch_app_requests_total",
        ["target", "attempt", "result"],
        "Requests to a latency endpoint by attempt and result (ok = expected status)."
    );

    // kind = "pool", and the pool gauges picked by kind = "prometheus".
    POOL_SIZE = Gauge(
        "perfwatch_app_pool_size",
        ["target"],
        "The app's connection pool size (connections kept open)."
    );
    POOL_CHECKED_OUT = Gauge(
        "perfwatch_app_pool_checked_out",
        ["target"],
        "Pool connections in use by the app."
    );
    POOL_CHECKED_IN = Gauge(
        "perfwatch_app_pool_checked_in",
        ["target"],
        "Idle connections in the app's pool."
    );
    POOL_CONNECTIONS_OPEN = Gauge(
        "perfwatch_app_pool_connections_open",
        ["target"],
        "Connections the pool holds open (checked in + checked out)."
    );
    POOL_OVERFLOW = Gauge(
        "perfwatch_app_pool_overflow",
        ["target"],
        "Connections open beyond pool_size. SQLAlchemy's negative overflow (pool not yet filled) is reported as 0."
    );
    POOL_OVERFLOW_IN_USE = Gauge(
        "perfwatch_app_pool_overflow_in_use",
        ["target"],
        "1 when the pool has connections open beyond pool_size (overflow > 0): pool_size is too small."
    );
    POOL_MAX_OVERFLOW = Gauge(
        "perfwatch_app_pool_max_overflow",
        ["target"],
        "The pool's overflow limit: as the app reports it (max_overflow_pointer, pool_max_overflow_metric), else as configured (max_overflow). Absent when neither says: saturation is then checked_out / pool_size."
    );

    REQUEST_RETRIES_TOTAL = Counter(
        "perfwatch_app_request_retries_total",
        ["target"],
        "Requests sent a second time, on a fresh connection, because the server had closed the idle keep-alive connection they were sent on (a race with its keep-alive timeout, e.g. uvicorn's 5 s)."
    );

    // kind = "prometheus".
    METRICS_SAMPLES = Gauge(
        "perfwatch_app_metrics_samples",
        ["target", "metric"],
        "Samples of each configured metric name found in the app's /metrics (0 = not there: check the name)."
    );
}

/// Families that state what the endpoint answers right now: dropped when a
/// poll fails (timeout, refused, auth), so a stalled app never keeps reading
/// "healthy" from its last good answer. Absent means unknown;
/// `perfwatch_target_up` says why.
pub static CURRENT_ANSWER: [&crate::catalog::MetricDef; 5] = [
    &UP,
    &RESPONSE_STATUS_CODE,
    &RESPONSE_SECONDS,
    &HEALTH_STATUS_UP,
    &HEALTH_CHECK_UP,
];
