//! The HTTP app endpoint collector: the app's health check, expensive
//! endpoints to time, its connection-pool endpoint and its own `/metrics`.
//!
//! Per target, one persistent `reqwest` client (connections are reused,
//! redirects limited, user agent `perfwatch/<version>`, no proxy: a sidecar
//! talks to its neighbour directly). Bodies are streamed and reading stops at
//! `max_body_bytes`, so a huge body costs at most that much memory.
//!
//! What a poll's outcome means (see `docs/collectors/http.md`):
//! - no HTTP exchange (connection refused, timeout, not HTTP) → the poll
//!   fails (`connect`, `timeout`, `protocol`);
//! - an exchange happened → the poll succeeds whatever the status;
//!   `perfwatch_app_up` says whether the status was expected, so it is never
//!   stale while the app answers;
//! - `health`: the body is read whatever the status (a 503 often lists the
//!   failing checks); with an expected status, a body that is not usable
//!   health JSON (or too large) is counted in
//!   `perfwatch_app_health_parse_errors_total`; up/down follows the status;
//! - `latency`, `pool`, `prometheus` exist for their body: with an expected
//!   status, a body that is too large or unreadable fails the poll with
//!   `protocol`.
//!
//! Layout: `config.rs` (the `[[http]]` table), `health.rs`, `pool.rs` and
//! `scrape.rs` (pure parsers with table tests), this file (I/O and metrics).

pub mod catalog;
pub mod config;
pub(crate) mod health;
pub(crate) mod pool;
pub(crate) mod scrape;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Client;

pub use config::{EndpointKind, HttpConfig, HttpReady, HttpTarget, PoolFormat};
use pool::PoolStats;
use scrape::PrefixSlots;

use crate::collectors::redis::hit_ratio::export_hit_ratio;
use crate::counter_window::{CounterWindows, WINDOWS};
use crate::exposition::{Families, HistogramData};
use crate::poll::Timing;
use crate::poll::{Collector, ErrorReason, PollError, PollOutput};
use crate::secret::redact;

/// Buckets of `perfwatch_app_request_duration_seconds`: 5 ms to 300 s (the
/// seeds' bad-days endpoint went from 165 s to 79 ms).
pub(crate) const DURATION_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

const USER_AGENT: &str = concat!("perfwatch/", env!("CARGO_PKG_VERSION"));

/// Most bytes reserved before a body arrives, whatever its Content-Length
/// says: a server may lie (a declared 9 EB once aborted the process), so the
/// buffer grows with what is actually read.
const INITIAL_BODY_CAPACITY: u64 = 64 * 1024;

/// One finished HTTP exchange.
#[derive(Debug)]
struct Exchange {
    status: u16,
    body: Body,
    /// From sending the request to the end of the body (or the point reading stopped).
    took: Duration,
}

#[derive(Debug)]
enum Body {
    Complete(Vec<u8>),
    /// Reading stopped at `max_body_bytes`; `declared` is the Content-Length, if sent.
    TooLarge {
        read: u64,
        declared: Option<u64>,
    },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Complete(b) => b.len() as u64,
            Body::TooLarge { read, .. } => *read,
        }
    }
}

/// A running HTTP app endpoint collector.
pub struct HttpCollector {
    cfg: HttpTarget,
    timing: Timing,
    client: Option<Client>,
    /// A client was built before: the next one re-reads `header_files`.
    rebuilt: bool,
    health_parse_errors: u64,
    /// latency: durations of the first request of each poll, and of the repeats.
    first: HistogramData,
    repeat: HistogramData,
    /// latency: requests by attempt and result.
    requests: BTreeMap<(&'static str, &'static str), u64>,
    /// prometheus: hit/miss history per key prefix label.
    windows: BTreeMap<String, CounterWindows>,
    slots: PrefixSlots,
    /// The last body problem logged, to log changes only.
    last_problem: Option<String>,
    /// Requests sent again after the server closed an idle connection.
    retries: AtomicU64,
}

impl HttpCollector {
    /// A collector whose client is built on its first poll.
    pub fn new(cfg: &HttpTarget, timing: Timing) -> Self {
        let slots = PrefixSlots::new(cfg.max_prefixes());
        Self {
            cfg: cfg.clone(),
            timing,
            client: None,
            rebuilt: false,
            health_parse_errors: 0,
            first: HistogramData::new(&DURATION_BUCKETS),
            repeat: HistogramData::new(&DURATION_BUCKETS),
            requests: BTreeMap::new(),
            windows: BTreeMap::new(),
            slots,
            last_problem: None,
            retries: AtomicU64::new(0),
        }
    }

    fn name(&self) -> &str {
        &self.cfg.common.name
    }

    fn err(&self, reason: ErrorReason, msg: impl std::fmt::Display) -> PollError {
        PollError::new(
            reason,
            format!("http target \"{}\": {msg}", self.cfg.common.name),
        )
    }

    /// The persistent client, built once (and again after a reset, which
    /// also re-reads `header_files`: rotated secrets).
    fn client(&mut self) -> Result<Client, PollError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let reread_files = std::mem::replace(&mut self.rebuilt, true);
        let headers = self
            .cfg
            .headers(reread_files)
            .map_err(|e| self.err(ErrorReason::Io, e))?;
        let max_redirects = self.cfg.max_redirects;
        // Configured headers are secrets (API keys) meant for this app only:
        // a redirect to another origin (scheme, host or port) is not followed,
        // so they are never sent there. reqwest itself strips only
        // Authorization and cookies on such redirects.
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if max_redirects == 0 || !same_origin {
                attempt.stop()
            } else if attempt.previous().len() > max_redirects {
                attempt.error(format!(
                    "more than {max_redirects} redirects (max_redirects)"
                ))
            } else {
                attempt.follow()
            }
        });
        let tls = self
            .cfg
            .tls_client_config()
            .map_err(|e| self.err(ErrorReason::Tls, e))?;
        let client = Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .redirect(redirect)
            .no_proxy()
            .connect_timeout(self.timing.timeout)
            .timeout(self.timing.timeout)
            // One idle connection: after a stale one fails, the retry in
            // `send` can only get a fresh connection.
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|e| {
                self.err(
                    ErrorReason::Io,
                    format!("cannot build the http client: {}", e.without_url()),
                )
            })?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Sends the request. A reused keep-alive connection that the server
    /// closed while it sat idle fails at once (uvicorn closes idle
    /// connections after 5 s, which a 5 s poll races); the request then never
    /// reached the app, so an idempotent one is sent once more, on a fresh
    /// connection, and counted.
    async fn send(&self, client: &Client) -> Result<reqwest::Response, PollError> {
        let request = || {
            let mut req = client.request(self.cfg.method(), self.cfg.url().clone());
            if let Some(b) = &self.cfg.body {
                req = req.body(b.clone());
            }
            req
        };
        match request().send().await {
            Ok(resp) => Ok(resp),
            Err(e) if self.cfg.method().is_idempotent() && closed_by_peer(&e) => {
                self.retries.fetch_add(1, Ordering::Relaxed);
                request().send().await.map_err(|e| self.classify(e))
            }
            Err(e) => Err(self.classify(e)),
        }
    }

    /// One request; the body is streamed and reading stops past `max_body_bytes`.
    async fn exchange(&self, client: &Client) -> Result<Exchange, PollError> {
        let started = Instant::now();
        let mut resp = self.send(client).await?;
        let status = resp.status().as_u16();
        let max = self.cfg.max_body_bytes;
        let declared = resp.content_length();
        if let Some(len) = declared
            && len > max
        {
            // Dropping the response closes the connection without reading it.
            return Ok(Exchange {
                status,
                body: Body::TooLarge { read: 0, declared },
                took: started.elapsed(),
            });
        }
        let mut buf =
            Vec::with_capacity(declared.unwrap_or(0).min(max).min(INITIAL_BODY_CAPACITY) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.classify(e))? {
            let read = buf.len() as u64 + chunk.len() as u64;
            if read > max {
                return Ok(Exchange {
                    status,
                    body: Body::TooLarge { read, declared },
                    took: started.elapsed(),
                });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Exchange {
            status,
            body: Body::Complete(buf),
            took: started.elapsed(),
        })
    }

    /// Maps a reqwest error to a reason and a message naming the target, with
    /// the URL masked (reqwest's own message would show it).
    fn classify(&self, e: reqwest::Error) -> PollError {
        if let Some(tls) = crate::tls::describe_failure(&e) {
            return self.err(
                ErrorReason::Tls,
                format!(
                    "{} {}: {tls}",
                    self.cfg.method(),
                    redact(&self.cfg.url, &[])
                ),
            );
        }
        let reason = if e.is_timeout() {
            ErrorReason::Timeout
        } else if e.is_connect() || io_error_in(&e) {
            ErrorReason::Connect
        } else {
            ErrorReason::Protocol
        };
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let s_text = s.to_string();
            if !detail.contains(&s_text) {
                detail.push_str(": ");
                detail.push_str(&s_text);
            }
            source = s.source();
        }
        self.err(
            reason,
            format!(
                "{} {}: {detail}",
                self.cfg.method(),
                redact(&self.cfg.url, &[])
            ),
        )
    }

    fn expected(&self, status: u16) -> bool {
        self.cfg.expect_status.contains(&status)
    }

    /// A 401, 403 or 407 that `expect_status` does not list: the app (or a
    /// proxy) refused perfwatch's credentials. That is a failed poll with
    /// reason `auth`, logged with the target and status, not an unhealthy app.
    fn refused(&self, ex: &Exchange) -> Result<(), PollError> {
        if matches!(ex.status, 401 | 403 | 407) && !self.expected(ex.status) {
            let reason = reqwest::StatusCode::from_u16(ex.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            return Err(self.err(
                ErrorReason::Auth,
                format!(
                    "{} {} answered {} {reason}: the app refused perfwatch's credentials (check headers and header_files)",
                    self.cfg.method(),
                    redact(&self.cfg.url, &[]),
                    ex.status
                ),
            ));
        }
        Ok(())
    }

    fn too_large_message(&self, body: &Body) -> String {
        match body {
            Body::TooLarge {
                declared: Some(len),
                ..
            } => format!(
                "response body of {len} bytes (Content-Length) exceeds max_body_bytes = {}; not read",
                self.cfg.max_body_bytes
            ),
            _ => format!(
                "response body exceeds max_body_bytes = {}; stopped reading after {} bytes",
                self.cfg.max_body_bytes,
                body.len()
            ),
        }
    }

    /// Logs a body problem of a successful poll when it changes.
    fn note_problem(&mut self, problem: Option<String>) {
        if problem != self.last_problem {
            if let Some(p) = &problem {
                tracing::warn!(collector = "http", target_name = %self.cfg.common.name, error = %p, "unusable response");
            }
            self.last_problem = problem;
        }
    }

    /// Series every kind exports about the exchange.
    fn export_exchange(
        &self,
        ex: &Exchange,
        out: &mut Families,
        headline: &mut Vec<(String, String)>,
    ) {
        let t = [("target", self.name())];
        let up = self.expected(ex.status);
        out.gauge(&catalog::UP, &t, if up { 1.0 } else { 0.0 });
        out.gauge(&catalog::RESPONSE_STATUS_CODE, &t, f64::from(ex.status));
        out.gauge(&catalog::RESPONSE_BODY_BYTES, &t, ex.body.len() as f64);
        if let Body::Complete(_) = ex.body {
            out.gauge(&catalog::RESPONSE_SECONDS, &t, ex.took.as_secs_f64());
            headline.push((
                "response".into(),
                format!("{} in {:.0} ms", ex.status, ex.took.as_secs_f64() * 1000.0),
            ));
        } else {
            headline.push(("response".into(), format!("{} (body too large)", ex.status)));
        }
    }

    fn poll_health(
        &mut self,
        ex: &Exchange,
        out: &mut Families,
        headline: &mut Vec<(String, String)>,
    ) {
        let parsed = match &ex.body {
            Body::Complete(b) => health::parse_health(
                b,
                self.cfg.status_pointer(),
                self.cfg.checks_pointer(),
                &self.cfg.healthy_values(),
                self.cfg.max_checks(),
            ),
            Body::TooLarge { .. } => Err(self.too_large_message(&ex.body)),
        };
        let name = self.cfg.common.name.clone();
        let t = [("target", name.as_str())];
        let problem = match parsed {
            Ok(report) => {
                if let Some(overall) = report.overall {
                    out.gauge(
                        &catalog::HEALTH_STATUS_UP,
                        &t,
                        if overall { 1.0 } else { 0.0 },
                    );
                }
                for (check, up) in &report.checks {
                    out.gauge(
                        &catalog::HEALTH_CHECK_UP,
                        &[("target", name.as_str()), ("check", check.as_str())],
                        if *up { 1.0 } else { 0.0 },
                    );
                }
                out.gauge(&catalog::HEALTH_CHECKS, &t, report.checks_found as f64);
                out.gauge(
                    &catalog::HEALTH_CHECKS_UNREADABLE,
                    &t,
                    report.checks_unreadable as f64,
                );
                let failing: Vec<&str> = report
                    .checks
                    .iter()
                    .filter(|(_, up)| !up)
                    .map(|(n, _)| n.as_str())
                    .collect();
                headline.push((
                    "checks".into(),
                    if failing.is_empty() {
                        format!("{} healthy", report.checks.len())
                    } else {
                        format!("failing: {}", failing.join(", "))
                    },
                ));
                None
            }
            // An unexpected status (401, a proxy's 502 page) already says
            // what is wrong; its body not being health JSON is no news.
            Err(_) if !self.expected(ex.status) => None,
            Err(e) => {
                self.health_parse_errors += 1;
                Some(e)
            }
        };
        out.counter(
            &catalog::HEALTH_PARSE_ERRORS_TOTAL,
            &t,
            self.health_parse_errors as f64,
        );
        self.note_problem(problem);
    }

    async fn poll_latency(
        &mut self,
        client: &Client,
        first: Exchange,
        out: &mut Families,
        headline: &mut Vec<(String, String)>,
    ) -> Result<(), PollError> {
        let mut ex = first;
        for attempt in 0..self.cfg.repeat() {
            if attempt > 0 {
                ex = self.exchange(client).await?;
            }
            if let Body::TooLarge { .. } = ex.body {
                return Err(self.err(ErrorReason::Protocol, self.too_large_message(&ex.body)));
            }
            let label = if attempt == 0 { "first" } else { "repeat" };
            let ok = self.expected(ex.status);
            *self
                .requests
                .entry((label, if ok { "ok" } else { "unexpected_status" }))
                .or_default() += 1;
            // Only answers with an expected status are response times; a fast
            // 500 would make a slow endpoint look fast.
            if ok {
                let h = if attempt == 0 {
                    &mut self.first
                } else {
                    &mut self.repeat
                };
                h.observe(ex.took.as_secs_f64());
            }
            if attempt > 0 {
                headline.push((
                    "repeat".into(),
                    format!("{} in {:.0} ms", ex.status, ex.took.as_secs_f64() * 1000.0),
                ));
            }
        }
        let name = self.name();
        out.histogram(
            &catalog::REQUEST_DURATION_SECONDS,
            &[("target", name), ("attempt", "first")],
            &self.first,
        );
        if self.cfg.repeat() > 1 {
            out.histogram(
                &catalog::REQUEST_DURATION_SECONDS,
                &[("target", name), ("attempt", "repeat")],
                &self.repeat,
            );
        }
        for ((attempt, result), n) in &self.requests {
            out.counter(
                &catalog::REQUESTS_TOTAL,
                &[("target", name), ("attempt", attempt), ("result", result)],
                *n as f64,
            );
        }
        Ok(())
    }

    /// The body of a data kind (pool, prometheus): `None` when the status was
    /// unexpected (nothing to read), an error when it is too large.
    fn data_body<'a>(&self, ex: &'a Exchange) -> Result<Option<&'a [u8]>, PollError> {
        if !self.expected(ex.status) {
            return Ok(None);
        }
        match &ex.body {
            Body::Complete(b) => Ok(Some(b)),
            Body::TooLarge { .. } => {
                Err(self.err(ErrorReason::Protocol, self.too_large_message(&ex.body)))
            }
        }
    }

    fn poll_pool(
        &self,
        body: &[u8],
        out: &mut Families,
        headline: &mut Vec<(String, String)>,
    ) -> Result<(), PollError> {
        let stats = pool::parse_pool(body, self.cfg.pool_format(), &self.cfg.pool_pointers())
            .map_err(|e| self.err(ErrorReason::Protocol, e))?;
        export_pool(&stats, self.cfg.max_overflow(), self.name(), out, headline);
        Ok(())
    }

    fn poll_prometheus(
        &mut self,
        body: &[u8],
        out: &mut Families,
        headline: &mut Vec<(String, String)>,
    ) -> Result<(), PollError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| self.err(ErrorReason::Protocol, "metrics body is not UTF-8"))?;
        let picks = self.cfg.scrape_picks();
        let picked = scrape::pick(text, &picks).map_err(|e| self.err(ErrorReason::Protocol, e))?;
        let name = self.cfg.common.name.clone();
        for (metric, n) in &picked.found {
            out.gauge(
                &catalog::METRICS_SAMPLES,
                &[("target", name.as_str()), ("metric", metric.as_str())],
                *n as f64,
            );
        }
        // A misspelt name must never read as a 0 % (or 100 %) hit ratio:
        // degraded, logged, and no ratio or pool numbers from this scrape.
        let missing = picked.missing(&picks, &self.cfg.explicit_metrics());
        out.gauge(
            &crate::catalog::COLLECTOR_DEGRADED,
            &[
                ("collector", "http"),
                ("target", name.as_str()),
                ("reason", "metric_missing"),
            ],
            if missing.is_empty() { 0.0 } else { 1.0 },
        );
        if !missing.is_empty() {
            let problem = format!("{}; no hit ratio or pool numbers", missing.join("; "));
            headline.push(("degraded".into(), problem.clone()));
            self.note_problem(Some(problem));
            return Ok(());
        }
        self.note_problem(None);
        let epoch = picked.epoch.map(|e| e.to_string()).unwrap_or_default();
        let now = Instant::now();
        let groups = self.slots.group(&picked.cache);
        let mut worst: Option<(String, f64)> = None;
        for (prefix, (hits, misses)) in &groups {
            let w = self.windows.entry(prefix.clone()).or_default();
            w.observe(now, &epoch, *hits, *misses);
            export_hit_ratio(w, *hits, *misses, &name, prefix, out);
            if let Some(r) = w.delta(WINDOWS[1].1).and_then(|d| d.ratio())
                && worst.as_ref().is_none_or(|(_, x)| r < *x)
            {
                worst = Some((prefix.clone(), r));
            }
        }
        if let Some((p, r)) = worst {
            headline.push((
                "lowest hit ratio 5m".into(),
                format!("{p}: {:.1} %", r * 100.0),
            ));
        }
        if let Some(stats) = &picked.pool {
            export_pool(stats, self.cfg.max_overflow(), &name, out, headline);
        }
        Ok(())
    }
}

/// Whether the server closed the connection under a request that was sent
/// (not a timeout, not a failed connect): hyper's "connection closed before
/// message completed", or a reset / broken pipe while sending.
fn closed_by_peer(e: &reqwest::Error) -> bool {
    if e.is_timeout() || e.is_connect() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(io.kind(), ConnectionReset | BrokenPipe | UnexpectedEof);
        }
        source = s.source();
    }
    false
}

/// Whether an I/O error (reset, refused, broken pipe) is among the causes.
fn io_error_in(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | BrokenPipe
                    | UnexpectedEof
            );
        }
        source = s.source();
    }
    false
}

/// Exports the pool gauges and `perfwatch_pool_saturation_ratio{source="app"}` (pure).
pub(crate) fn export_pool(
    s: &PoolStats,
    max_overflow: Option<i64>,
    target: &str,
    out: &mut Families,
    headline: &mut Vec<(String, String)>,
) {
    let t = [("target", target)];
    out.gauge(&catalog::POOL_SIZE, &t, s.size);
    out.gauge(&catalog::POOL_CHECKED_OUT, &t, s.checked_out);
    if let Some(v) = s.checked_in {
        out.gauge(&catalog::POOL_CHECKED_IN, &t, v);
    }
    if let Some(v) = s.open() {
        out.gauge(&catalog::POOL_CONNECTIONS_OPEN, &t, v);
    }
    if let Some(v) = s.overflow_in_use() {
        out.gauge(&catalog::POOL_OVERFLOW, &t, v);
        out.gauge(
            &catalog::POOL_OVERFLOW_IN_USE,
            &t,
            if v > 0.0 { 1.0 } else { 0.0 },
        );
    }
    if let Some(limit) = s.overflow_limit(max_overflow).filter(|l| *l >= 0.0) {
        out.gauge(&catalog::POOL_MAX_OVERFLOW, &t, limit);
    }
    if let Some(r) = s.saturation(max_overflow) {
        // No database behind an app pool: the label is empty (absent to
        // Prometheus), as the shared declaration carries pgbouncer's.
        out.gauge(
            &crate::catalog::POOL_SATURATION,
            &[("source", "app"), ("target", target), ("database", "")],
            r,
        );
        headline.push((
            "pool".into(),
            format!("{} in use, {:.0} % saturated", s.checked_out, r * 100.0),
        ));
    } else {
        headline.push((
            "pool".into(),
            format!("{} of {} in use", s.checked_out, s.size),
        ));
    }
}

impl Collector for HttpCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        let client = self.client()?;
        let first = self.exchange(&client).await?;
        self.refused(&first)?;
        let mut families = Families::new();
        let mut headline = Vec::new();
        self.export_exchange(&first, &mut families, &mut headline);
        families.counter(
            &catalog::REQUEST_RETRIES_TOTAL,
            &[("target", self.name())],
            self.retries.load(Ordering::Relaxed) as f64,
        );
        match self.cfg.kind {
            EndpointKind::Health => self.poll_health(&first, &mut families, &mut headline),
            EndpointKind::Latency => {
                self.poll_latency(&client, first, &mut families, &mut headline)
                    .await?
            }
            EndpointKind::Pool => {
                if let Some(body) = self.data_body(&first)? {
                    self.poll_pool(body, &mut families, &mut headline)?
                }
            }
            EndpointKind::Prometheus => {
                if let Some(body) = self.data_body(&first)? {
                    self.poll_prometheus(body, &mut families, &mut headline)?
                }
            }
        }
        Ok(PollOutput { families, headline })
    }

    fn reset(&mut self) {
        // A dropped request already closes its connection; a fresh client
        // also re-reads header_files (rotated secrets).
        self.client = None;
    }

    fn dropped_on_failure(&self) -> &'static [&'static crate::catalog::MetricDef] {
        &catalog::CURRENT_ANSWER
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{encode_text, sample_value};

    #[test]
    fn pool_export_matches_the_seed() {
        let s = PoolStats {
            size: 5.0,
            checked_out: 2.0,
            checked_in: Some(3.0),
            overflow: Some(0.0),
            max_overflow: None,
        };
        let mut out = Families::new();
        export_pool(&s, Some(10), "api", &mut out, &mut Vec::new());
        let f = out.into_vec();
        let v = |n: &str| sample_value(&f, n, &[("target", "api")]);
        assert_eq!(v("perfwatch_pool_saturation_ratio"), Some(2.0 / 15.0));
        assert_eq!(v("perfwatch_app_pool_overflow_in_use"), Some(0.0));
        assert_eq!(v("perfwatch_app_pool_connections_open"), Some(5.0));
        let text = String::from_utf8(encode_text(&f)).unwrap();
        assert!(
            text.contains(
                "perfwatch_pool_saturation_ratio{source=\"app\",target=\"api\",database=\"\"}"
            ),
            "{text}"
        );
    }
}
