//! The HTTP app endpoint collector against a real HTTP app started by the
//! test (axum on 127.0.0.1:0, with state the test flips) plus a raw TCP
//! server for the 50 MB bodies (so the bytes actually written are counted).
//! Every number asserted here is exact.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use common::{
    Expected, FAST_SHORT_TIMEOUT, Perfwatch, assert_value, assert_values, config, poll_errors,
    polls, sample, value, wait_polls,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long [`wait_polls`] waits for the polls it asks for.
const POLL_WAIT: Duration = Duration::from_secs(15);

const API_KEY: &str = "k3y-very-secret";

#[derive(Default)]
struct AppState {
    db_healthy: AtomicBool,
    /// /health never answers (after checking the key) while set.
    stalled: AtomicBool,
    /// Client ports seen by /health (connection reuse) and user agents.
    health_ports: Mutex<BTreeSet<u16>>,
    user_agents: Mutex<BTreeSet<String>>,
    /// /slow: whether the next request finds the cache warm.
    warm: AtomicBool,
    /// /metrics: prefix -> (hits, misses), the restart epoch, pool gauges.
    cache: Mutex<BTreeMap<String, (u64, u64)>>,
    epoch: AtomicU64,
}

impl AppState {
    /// Sets the /metrics cache counters: prefix -> (hits, misses).
    fn set_cache(&self, counts: &[(&str, (u64, u64))]) {
        let mut cache = self.cache.lock().unwrap();
        for (prefix, hits_misses) in counts {
            cache.insert((*prefix).to_owned(), *hits_misses);
        }
    }
}

type Shared = Arc<AppState>;

async fn health(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(ua) = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        s.user_agents.lock().unwrap().insert(ua.to_owned());
    }
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return (StatusCode::UNAUTHORIZED, "no key").into_response();
    }
    s.health_ports.lock().unwrap().insert(peer.port());
    if s.stalled.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let db = if s.db_healthy.load(Ordering::SeqCst) {
        "healthy"
    } else {
        "unhealthy"
    };
    let overall = if db == "healthy" {
        "healthy"
    } else {
        "degraded"
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(
            r#"{{"status":"{overall}","checks":{{"database":{{"status":"{db}"}},"cache":{{"status":"healthy"}},"rate_limiter":{{"status":"healthy"}}}}}}"#
        ),
    )
        .into_response()
}

async fn slow(State(s): State<Shared>) -> &'static str {
    // A cache that the test app forgets after each hit: every poll's first
    // request is a miss (300 ms), the repeat right after it a hit.
    if s.warm.swap(false, Ordering::SeqCst) {
        "cached"
    } else {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.warm.store(true, Ordering::SeqCst);
        "computed"
    }
}

async fn metrics(State(s): State<Shared>) -> String {
    let mut out = String::from(
        "# HELP process_start_time_seconds Start time.\n# TYPE process_start_time_seconds gauge\n",
    );
    out.push_str(&format!(
        "process_start_time_seconds {}\n",
        s.epoch.load(Ordering::SeqCst)
    ));
    out.push_str("# HELP cache_hits_total Total cache hits\n# TYPE cache_hits_total counter\n");
    let cache = s.cache.lock().unwrap().clone();
    for (p, (h, _)) in &cache {
        // Two endpoints share a prefix: perfwatch sums them.
        out.push_str(&format!(
            "cache_hits_total{{endpoint=\"a\",key_prefix=\"{p}\"}} {}.0\n",
            h / 2
        ));
        out.push_str(&format!(
            "cache_hits_total{{endpoint=\"b\",key_prefix=\"{p}\"}} {}.0\n",
            h - h / 2
        ));
    }
    out.push_str(
        "# HELP cache_misses_total Total cache misses\n# TYPE cache_misses_total counter\n",
    );
    for (p, (_, m)) in &cache {
        out.push_str(&format!(
            "cache_misses_total{{endpoint=\"a\",key_prefix=\"{p}\"}} {m}.0\n"
        ));
    }
    out.push_str("# TYPE db_connection_pool_size gauge\ndb_connection_pool_size 20.0\n");
    out.push_str(
        "# TYPE db_connection_pool_checked_out gauge\ndb_connection_pool_checked_out 7.0\n",
    );
    out.push_str("# TYPE db_connection_pool_overflow gauge\ndb_connection_pool_overflow -13.0\n");
    out.push_str("# TYPE http_requests_total counter\nhttp_requests_total{handler=\"/a,b\"} 5.0\n");
    out
}

async fn app() -> (SocketAddr, Shared) {
    let state = Shared::default();
    state.db_healthy.store(true, Ordering::SeqCst);
    state.epoch.store(1_700_000_000, Ordering::SeqCst);
    let router = Router::new()
        .route("/health", get(health))
        .route(
            "/health500",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"status":"unhealthy","checks":{"database":{"status":"unhealthy"}}}"#,
                )
            }),
        )
        .route("/garbage", get(|| async { "<html>oops</html>" }))
        .route("/slow", get(slow))
        .route(
            "/pool",
            get(|| async { r#"{"pool_size":5,"checked_in":3,"checked_out":2,"overflow":0}"# }),
        )
        // The field test's exhausted pool, which the old default
        // max_overflow = 10 read as 0.67.
        .route(
            "/pool-exhausted",
            get(|| async { r#"{"pool_size":10,"checked_in":0,"checked_out":10,"overflow":5}"# }),
        )
        .route(
            "/pool-reported",
            get(|| async { r#"{"pool_size":10,"checked_out":6,"overflow":0,"max_overflow":5}"# }),
        )
        .route(
            "/pool-text",
            get(|| async {
                "Pool size: 5  Connections in pool: 0 Current Overflow: 3 Current Checked out connections: 8"
            }),
        )
        .route("/metrics", get(metrics))
        .route("/hang", get(std::future::pending::<&'static str>))
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (addr, state)
}

/// A raw HTTP server answering every request with a 50 MB body (chunked, or
/// with Content-Length when `declared`), counting the bytes it managed to
/// write before the client hung up.
async fn huge_server(declared: bool) -> (SocketAddr, Arc<AtomicU64>) {
    const TOTAL: u64 = 50 * 1024 * 1024;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 4096];
                let _ = sock.read(&mut req).await;
                let head = if declared {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {TOTAL}\r\n\r\n")
                } else {
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned()
                };
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut written = 0;
                while written < TOTAL {
                    let r = if declared {
                        sock.write_all(&chunk).await
                    } else {
                        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                        framed.extend_from_slice(&chunk);
                        framed.extend_from_slice(b"\r\n");
                        sock.write_all(&framed).await
                    };
                    if r.is_err() {
                        return;
                    }
                    written += chunk.len() as u64;
                    counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
                if !declared {
                    let _ = sock.write_all(b"0\r\n\r\n").await;
                }
            });
        }
    });
    (addr, sent)
}

fn target(name: &str, url: &str, kind: &str, extra: &str) -> String {
    format!("[[http]]\nname = \"{name}\"\nurl = \"{url}\"\nkind = \"{kind}\"\n{extra}")
}

/// perfwatch polling `targets` every 500 ms (300 ms timeout).
async fn watch(targets: &str) -> Perfwatch {
    Perfwatch::start(&config(FAST_SHORT_TIMEOUT, targets)).await
}

/// A [`target`] of `kind` for `path` on the test app at `addr`, no extra
/// lines.
fn local(name: &str, addr: SocketAddr, path: &str, kind: &str) -> String {
    local_with(name, addr, path, kind, "")
}

/// A [`local`] target with `extra` lines.
fn local_with(name: &str, addr: SocketAddr, path: &str, kind: &str, extra: &str) -> String {
    target(name, &format!("http://{addr}{path}"), kind, extra)
}

fn key_file(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("api-key");
    std::fs::write(&path, format!("{API_KEY}\n")).unwrap();
    path.display().to_string()
}

/// Target `api`: the app's health endpoint with the API key from a file.
fn keyed_health_target(addr: SocketAddr, dir: &tempfile::TempDir) -> String {
    local_with(
        "api",
        addr,
        "/health",
        "health",
        &format!(
            "header_files = {{ \"X-API-Key\" = \"{}\" }}\n",
            key_file(dir)
        ),
    )
}

/// A failed poll of the target `labels`: it reads down, and no verdict
/// about the app is served (neither up nor a health status).
#[track_caller]
fn assert_down_without_verdict(body: &str, labels: &[(&str, &str)]) {
    assert_value(body, "perfwatch_target_up", labels, Some(0.0));
    assert_value(body, "perfwatch_app_up", labels, None);
    assert_value(body, "perfwatch_app_health_status_up", labels, None);
}

#[tokio::test]
async fn health_checks_flip_exactly_and_the_secret_never_shows() {
    let (addr, state) = app().await;
    let dir = tempfile::tempdir().unwrap();
    let pw = watch(&format!(
        "{}{}",
        keyed_health_target(addr, &dir),
        // Same endpoint without the key: the app refuses perfwatch.
        local("nokey", addr, "/health", "health"),
    ))
    .await;
    let body = wait_polls(&pw, "api", 1.0, POLL_WAIT).await;
    let api = [("target", "api")];
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_app_up", &api, Some(1.0)),
        ("perfwatch_app_health_status_up", &api, Some(1.0)),
    ];
    assert_values(&body, wanted);
    for check in ["database", "cache", "rate_limiter"] {
        let labels = [("target", "api"), ("check", check)];
        assert_value(&body, "perfwatch_app_health_check_up", &labels, Some(1.0));
    }
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_app_health_checks", &api, Some(3.0)),
        ("perfwatch_app_health_parse_errors_total", &api, Some(0.0)),
    ];
    assert_values(&body, wanted);
    assert!(value(&body, "perfwatch_app_response_seconds", &api).unwrap() < 0.3);

    state.db_healthy.store(false, Ordering::SeqCst);
    let body = wait_polls(&pw, "api", 1.0, POLL_WAIT).await;
    let db = [("target", "api"), ("check", "database")];
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_app_health_check_up", &db, Some(0.0)),
        ("perfwatch_app_health_check_up", &[("target", "api"), ("check", "cache")], Some(1.0)),
        ("perfwatch_app_health_status_up", &api, Some(0.0)),
    ];
    assert_values(&body, wanted);
    assert_eq!(
        value(&body, "perfwatch_app_up", &api),
        Some(1.0),
        "200 is up"
    );

    state.db_healthy.store(true, Ordering::SeqCst);
    let body = wait_polls(&pw, "api", 1.0, POLL_WAIT).await;
    assert_value(&body, "perfwatch_app_health_check_up", &db, Some(1.0));

    // A 401 is perfwatch's credentials refused, not an unhealthy app: the
    // poll fails with reason auth, and no verdict about the app is served.
    let nokey = [("target", "nokey")];
    assert_down_without_verdict(&body, &nokey);
    assert_value(&body, "perfwatch_app_response_status_code", &nokey, None);
    assert!(
        poll_errors(&body, "nokey", "auth").unwrap() >= 1.0,
        "{body}"
    );
    let (_, targets) = pw.get("/").await;
    assert!(
        targets.contains("answered 401 Unauthorized: the app refused perfwatch's credentials"),
        "the landing page shows why: {targets}"
    );

    // One persistent connection per target, our user agent.
    let api_polls = polls(&body, "api");
    assert!(api_polls >= 3.0);
    let ports = state.health_ports.lock().unwrap().clone();
    assert_eq!(
        ports.len(),
        1,
        "one connection for the keyed target, reused: {ports:?}"
    );
    let agents = state.user_agents.lock().unwrap().clone();
    assert_eq!(
        agents.into_iter().collect::<Vec<_>>(),
        vec![format!("perfwatch/{}", env!("CARGO_PKG_VERSION"))]
    );
    let (_, landing) = pw.get("/").await;
    for text in [&body, &landing] {
        assert!(!text.contains(API_KEY), "secret leaked");
    }

    // A health endpoint that stops answering: its checks read unknown
    // (absent), never the last good answer.
    state.stalled.store(true, Ordering::SeqCst);
    let body = pw
        .wait_for(POLL_WAIT, "a timed-out poll of api", |b| {
            (poll_errors(b, "api", "timeout").unwrap_or(0.0) >= 1.0).then(|| b.to_owned())
        })
        .await;
    assert_down_without_verdict(&body, &api);
    assert_value(&body, "perfwatch_app_health_check_up", &db, None);
    // Counters stay: they are history, not a verdict.
    assert_value(
        &body,
        "perfwatch_app_health_parse_errors_total",
        &api,
        Some(0.0),
    );
    state.stalled.store(false, Ordering::SeqCst);
    let body = pw
        .wait_value(POLL_WAIT, "perfwatch_app_health_check_up", &db, 1.0)
        .await;
    assert_value(&body, "perfwatch_app_up", &api, Some(1.0));
    pw.stop().await;
}

#[tokio::test]
async fn latency_separates_first_and_repeated_requests() {
    let (addr, _state) = app().await;
    let pw = watch(&local_with(
        "bad-days",
        addr,
        "/slow",
        "latency",
        "repeat = 2\ninterval = \"1s\"\ntimeout = \"900ms\"\n",
    ))
    .await;
    let body = wait_polls(&pw, "bad-days", 2.0, POLL_WAIT).await;
    let n = polls(&body, "bad-days");
    let bucket = |attempt: &str, le: &str| {
        value(
            &body,
            "perfwatch_app_request_duration_seconds_bucket",
            &[("target", "bad-days"), ("attempt", attempt), ("le", le)],
        )
    };
    let count = |attempt: &str| {
        value(
            &body,
            "perfwatch_app_request_duration_seconds_count",
            &[("target", "bad-days"), ("attempt", attempt)],
        )
    };
    assert_eq!(count("first"), Some(n));
    assert_eq!(count("repeat"), Some(n));
    // cold: 300 ms (plus scheduling), in (0.25, 1]
    assert_eq!(bucket("first", "0.25"), Some(0.0));
    assert_eq!(bucket("first", "1"), Some(n));
    // cached: well under 250 ms
    assert_eq!(bucket("repeat", "0.25"), Some(n));
    assert_eq!(bucket("first", "300"), Some(n));
    assert_eq!(bucket("first", "+Inf"), Some(n));
    let repeat_ok = [
        ("target", "bad-days"),
        ("attempt", "repeat"),
        ("result", "ok"),
    ];
    assert_value(&body, "perfwatch_app_requests_total", &repeat_ok, Some(n));
    let first = [("target", "bad-days"), ("attempt", "first")];
    let first_sum = sample(&body, "perfwatch_app_request_duration_seconds_sum", &first);
    assert!(
        first_sum >= 0.3 * n,
        "sum {first_sum} for {n} cold requests"
    );
    pw.stop().await;
}

#[tokio::test]
async fn pool_json_and_sqlalchemy_text_give_exact_gauges() {
    let (addr, _state) = app().await;
    let pw = watch(
        &[
            local_with("pool", addr, "/pool", "pool", "max_overflow = 10\n"),
            local_with(
                "pool-text",
                addr,
                "/pool-text",
                "pool",
                "pool_format = \"sqlalchemy\"\nmax_overflow = 10\n",
            ),
            local("exhausted", addr, "/pool-exhausted", "pool"),
            local_with(
                "reported",
                addr,
                "/pool-reported",
                "pool",
                "max_overflow = 20\n",
            ),
        ]
        .concat(),
    )
    .await;
    wait_polls(&pw, "pool", 1.0, POLL_WAIT).await;
    wait_polls(&pw, "exhausted", 1.0, POLL_WAIT).await;
    wait_polls(&pw, "reported", 1.0, POLL_WAIT).await;
    let body = wait_polls(&pw, "pool-text", 1.0, POLL_WAIT).await;
    let p = [("target", "pool")];
    let t = [("target", "pool-text")];
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_app_pool_size", &p, Some(5.0)),
        ("perfwatch_app_pool_checked_out", &p, Some(2.0)),
        ("perfwatch_app_pool_checked_in", &p, Some(3.0)),
        ("perfwatch_app_pool_overflow", &p, Some(0.0)),
        ("perfwatch_app_pool_overflow_in_use", &p, Some(0.0)),
        ("perfwatch_pool_saturation_ratio", &[("source", "app"), ("target", "pool")], Some(2.0 / (5.0 + 10.0))),
        ("perfwatch_app_pool_size", &t, Some(5.0)),
        ("perfwatch_app_pool_checked_out", &t, Some(8.0)),
        ("perfwatch_app_pool_overflow", &t, Some(3.0)),
        ("perfwatch_app_pool_overflow_in_use", &t, Some(1.0)),
        ("perfwatch_pool_saturation_ratio", &[("source", "app"), ("target", "pool-text")], Some(8.0 / 15.0)),
        // No limit reported or configured: checked_out / pool_size (the seed
        // guide's rule), so an exhausted pool reads full.
        ("perfwatch_pool_saturation_ratio", &[("source", "app"), ("target", "exhausted")], Some(1.0)),
        ("perfwatch_app_pool_max_overflow", &[("target", "exhausted")], None),
        // The limit the app reports wins over the config's.
        ("perfwatch_pool_saturation_ratio", &[("source", "app"), ("target", "reported")], Some(6.0 / 15.0)),
        ("perfwatch_app_pool_max_overflow", &[("target", "reported")], Some(5.0)),
    ];
    assert_values(&body, wanted);
    pw.stop().await;
}

#[tokio::test]
async fn app_metrics_give_exact_windowed_ratios_per_prefix() {
    let (addr, state) = app().await;
    state.set_cache(&[("bad_days", (100, 100)), ("dashboard_stats", (0, 0))]);
    let pw = watch(&local_with(
        "app",
        addr,
        "/metrics",
        "prometheus",
        "max_overflow = 20\n",
    ))
    .await;
    wait_polls(&pw, "app", 1.0, POLL_WAIT).await;
    state.set_cache(&[("bad_days", (130, 110)), ("dashboard_stats", (5, 5))]);
    let body = wait_polls(&pw, "app", 2.0, POLL_WAIT).await;
    let w = |prefix: &'static str, window: &'static str| {
        [
            ("target", "app"),
            ("key_prefix", prefix),
            ("window", window),
        ]
    };
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_cache_hit_ratio", &w("bad_days", "1m"), Some(0.75)),
        ("perfwatch_cache_lookups_in_window", &w("bad_days", "1m"), Some(40.0)),
        ("perfwatch_cache_hit_ratio", &w("bad_days", "total"), Some(130.0 / 240.0)),
        ("perfwatch_cache_hit_ratio", &w("dashboard_stats", "5m"), Some(0.5)),
    ];
    assert_values(&body, wanted);
    // pool gauges picked from the same scrape
    let t = [("target", "app")];
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_app_pool_size", &t, Some(20.0)),
        ("perfwatch_app_pool_overflow", &t, Some(0.0)),
        ("perfwatch_pool_saturation_ratio", &[("source", "app"), ("target", "app")], Some(7.0 / 40.0)),
        ("perfwatch_app_metrics_samples", &[("target", "app"), ("metric", "cache_hits_total")], Some(4.0)),
    ];
    assert_values(&body, wanted);
    // Nothing of the app is re-exported wholesale.
    assert!(!body.contains("http_requests_total"), "{body}");

    // The app restarts: new epoch, counters from scratch. The windows drop
    // the old lifetime instead of mixing it in.
    // The counters first: /metrics reads the epoch, then the counters, so a
    // scrape that sees the new epoch sees the new counters.
    state.set_cache(&[("bad_days", (1, 1)), ("dashboard_stats", (0, 0))]);
    state.epoch.store(1_700_000_500, Ordering::SeqCst);
    wait_polls(&pw, "app", 1.0, POLL_WAIT).await;
    state.set_cache(&[("bad_days", (4, 1))]);
    let body = wait_polls(&pw, "app", 2.0, POLL_WAIT).await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_cache_hit_ratio", &w("bad_days", "1m"), Some(1.0)),
        ("perfwatch_cache_lookups_in_window", &w("bad_days", "15m"), Some(3.0)),
        ("perfwatch_cache_lookups_in_window", &w("dashboard_stats", "1m"), Some(0.0)),
    ];
    assert_values(&body, wanted);
    assert_eq!(
        value(
            &body,
            "perfwatch_cache_hit_ratio",
            &w("dashboard_stats", "1m")
        ),
        None,
        "no lookups, no ratio, no NaN"
    );
    assert!(!body.contains("NaN"));
    pw.stop().await;
}

#[tokio::test]
async fn failures_are_classified_bounded_and_isolated() {
    let (addr, _state) = app().await;
    let (huge, huge_sent) = huge_server(false).await;
    let (declared, declared_sent) = huge_server(true).await;
    let refused = perfwatch_testbench::free_port().unwrap();
    let pw = watch(
        &[
            local("hang", addr, "/hang", "health"),
            target(
                "refused",
                &format!("http://user:hunter2@127.0.0.1:{refused}/health"),
                "health",
                "",
            ),
            target("huge", &format!("http://{huge}/metrics"), "prometheus", ""),
            target("declared", &format!("http://{declared}/pool"), "pool", ""),
            target(
                "huge-health",
                &format!("http://{huge}/health"),
                "health",
                "",
            ),
            local("garbage-pool", addr, "/garbage", "pool"),
            local("garbage-health", addr, "/garbage", "health"),
            local("down-health", addr, "/health500", "health"),
            local("loop", addr, "/loop", "health"),
            local("ok", addr, "/pool", "pool"),
        ]
        .concat(),
    )
    .await;
    let errors = |b: &str, t: &str, reason: &str| poll_errors(b, t, reason).unwrap_or(0.0);
    let body = pw
        .wait_for(
            Duration::from_secs(15),
            "every failure at least twice",
            |b| {
                let done = errors(b, "hang", "timeout") >= 2.0
                    && errors(b, "refused", "connect") >= 2.0
                    && errors(b, "huge", "protocol") >= 2.0
                    && errors(b, "declared", "protocol") >= 2.0
                    && errors(b, "garbage-pool", "protocol") >= 2.0
                    && errors(b, "loop", "protocol") >= 1.0
                    && polls(b, "huge-health") >= 2.0
                    && polls(b, "garbage-health") >= 2.0
                    && polls(b, "down-health") >= 2.0
                    && polls(b, "ok") >= 4.0;
                done.then(|| b.to_owned())
            },
        )
        .await;
    let up = |t: &str| value(&body, "perfwatch_target_up", &[("target", t)]);
    for t in [
        "hang",
        "refused",
        "huge",
        "declared",
        "garbage-pool",
        "loop",
    ] {
        assert_eq!(up(t), Some(0.0), "{t}");
    }
    // The hung request was given up at the poll timeout.
    let took = value(
        &body,
        "perfwatch_poll_duration_seconds",
        &[("target", "hang")],
    )
    .unwrap();
    assert!((0.29..0.8).contains(&took), "hang poll took {took}");

    // Health endpoints stay up/down by status code; bad bodies are counted.
    let gh = [("target", "garbage-health")];
    assert_eq!(up("garbage-health"), Some(1.0));
    assert_value(&body, "perfwatch_app_up", &gh, Some(1.0));
    assert_eq!(
        value(&body, "perfwatch_app_health_parse_errors_total", &gh),
        Some(polls(&body, "garbage-health"))
    );
    assert_value(&body, "perfwatch_app_health_status_up", &gh, None);
    let hh = [("target", "huge-health")];
    assert_value(&body, "perfwatch_app_up", &hh, Some(1.0));
    assert!(value(&body, "perfwatch_app_health_parse_errors_total", &hh).unwrap() >= 2.0);
    let dh = [("target", "down-health")];
    assert_eq!(up("down-health"), Some(1.0));
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_app_up", &dh, Some(0.0)),
        ("perfwatch_app_response_status_code", &dh, Some(503.0)),
        ("perfwatch_app_health_status_up", &dh, Some(0.0)),
        ("perfwatch_app_health_check_up", &[("target", "down-health"), ("check", "database")], Some(0.0)),
    ];
    assert_values(&body, wanted);

    // Nothing else was disturbed: the healthy target kept its pace.
    assert_eq!(up("ok"), Some(1.0));
    for reason in ["connect", "timeout", "protocol", "query", "io"] {
        assert_eq!(errors(&body, "ok", reason), 0.0, "{reason}");
    }
    assert_eq!(
        value(&body, "perfwatch_app_pool_size", &[("target", "ok")]),
        Some(5.0)
    );

    // 50 MB bodies: reading stopped at max_body_bytes (1 MiB), the declared
    // one was not read at all. What the servers managed to write is what
    // the kernel's socket buffers took, far below 50 MB per request.
    let requests = polls(&body, "huge") + polls(&body, "huge-health") + 2.0;
    let per_request = huge_sent.load(Ordering::SeqCst) as f64 / requests;
    assert!(
        per_request < 16.0 * 1024.0 * 1024.0,
        "{per_request} bytes written per request"
    );
    let per_declared =
        declared_sent.load(Ordering::SeqCst) as f64 / (polls(&body, "declared") + 1.0);
    assert!(
        per_declared < 16.0 * 1024.0 * 1024.0,
        "{per_declared} bytes written per request"
    );

    // Messages name the target and the problem, and never the password.
    let (_, landing) = pw.get("/").await;
    assert!(
        landing.contains(
            "http target &quot;huge&quot;: response body exceeds max_body_bytes = 1048576"
        ) || landing
            .contains("http target \"huge\": response body exceeds max_body_bytes = 1048576"),
        "{landing}"
    );
    assert!(landing.contains("user:***@127.0.0.1"), "{landing}");
    assert!(!landing.contains("hunter2") && !body.contains("hunter2"));
    pw.stop().await;
}

#[tokio::test]
async fn exposition_with_every_kind_passes_promtool() {
    let (addr, state) = app().await;
    state.set_cache(&[("bad_days", (3, 1))]);
    let dir = tempfile::tempdir().unwrap();
    let pw = watch(
        &[
            keyed_health_target(addr, &dir),
            local_with(
                "slow",
                addr,
                "/slow",
                "latency",
                "repeat = 2\ninterval = \"1s\"\ntimeout = \"900ms\"\n",
            ),
            local("pool", addr, "/pool", "pool"),
            local("app", addr, "/metrics", "prometheus"),
        ]
        .concat(),
    )
    .await;
    let body = pw
        .wait_for(Duration::from_secs(15), "every kind polled twice", |b| {
            ["api", "slow", "pool", "app"]
                .iter()
                .all(|t| polls(b, t) >= 2.0)
                .then(|| b.to_owned())
        })
        .await;
    assert!(body.contains("perfwatch_app_request_duration_seconds_bucket"));
    assert!(body.contains("perfwatch_cache_hit_ratio{"), "{body}");
    common::promtool_check_metrics(&body);
    pw.stop().await;
}

/// The field test: `hits_metric` misspelt (`cache_hit_total`, the app says
/// `cache_hits_total`) read as a 0 % hit ratio over thousands of lookups. A
/// configured name the scrape lacks is a degraded target with a reason, and
/// no ratio at all.
#[tokio::test]
async fn a_misspelt_metric_name_degrades_instead_of_reading_zero() {
    let (addr, state) = app().await;
    state.set_cache(&[("bad_days", (95, 5))]);
    let pw = watch(
        &[
            local_with(
                "misspelt",
                addr,
                "/metrics",
                "prometheus",
                "hits_metric = \"cache_hit_total\"\n",
            ),
            local("right", addr, "/metrics", "prometheus"),
        ]
        .concat(),
    )
    .await;
    wait_polls(&pw, "misspelt", 2.0, POLL_WAIT).await;
    let body = wait_polls(&pw, "right", 2.0, POLL_WAIT).await;
    let degraded = |t: &'static str| {
        [
            ("collector", "http"),
            ("target", t),
            ("reason", "metric_missing"),
        ]
    };
    let ratio = |t: &'static str| {
        [
            ("target", t),
            ("key_prefix", "bad_days"),
            ("window", "total"),
        ]
    };
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_collector_degraded", &degraded("misspelt"), Some(1.0)),
        ("perfwatch_cache_hit_ratio", &ratio("misspelt"), None),
        ("perfwatch_app_metrics_samples", &[("target", "misspelt"), ("metric", "cache_hit_total")], Some(0.0)),
        // The target itself answers: up, but degraded.
        ("perfwatch_target_up", &[("target", "misspelt")], Some(1.0)),
        ("perfwatch_collector_degraded", &degraded("right"), Some(0.0)),
        ("perfwatch_cache_hit_ratio", &ratio("right"), Some(0.95)),
    ];
    assert_values(&body, wanted);
    let (_, landing) = pw.get("/").await;
    assert!(
        landing.contains("configured metric \"cache_hit_total\" is not in the scrape")
            || landing
                .contains("configured metric &quot;cache_hit_total&quot; is not in the scrape"),
        "the landing page says why: {landing}"
    );
    pw.stop().await;
}

/// Configured headers (an API key) are meant for the app: a redirect to
/// another origin is not followed, so they never reach it; a redirect on the
/// same origin still is.
#[tokio::test]
async fn redirects_never_carry_headers_to_another_origin() {
    #[derive(Default)]
    struct Seen {
        requests: AtomicU64,
        keys: Mutex<Vec<String>>,
    }
    async fn record(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> &'static str {
        seen.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            seen.keys.lock().unwrap().push(k.to_owned());
        }
        "ok"
    }
    async fn serve(router: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }
    let other = Arc::new(Seen::default());
    let other_addr = serve(
        Router::new()
            .fallback(get(record))
            .with_state(other.clone()),
    )
    .await;
    let app_seen = Arc::new(Seen::default());
    let app_addr =
        serve(
            Router::new()
                .route(
                    "/cross",
                    get(move || async move {
                        Redirect::temporary(&format!("http://{other_addr}/steal"))
                    }),
                )
                .route("/same", get(|| async { Redirect::temporary("/ok") }))
                .route("/ok", get(record))
                .with_state(app_seen.clone()),
        )
        .await;
    let key = "headers = { \"X-API-Key\" = \"redirect-secret\" }\n";
    let pw = watch(
        &[
            target("cross", &format!("http://{app_addr}/cross"), "latency", key),
            target("same", &format!("http://{app_addr}/same"), "latency", key),
        ]
        .concat(),
    )
    .await;
    wait_polls(&pw, "cross", 2.0, POLL_WAIT).await;
    let body = wait_polls(&pw, "same", 2.0, POLL_WAIT).await;
    assert_eq!(
        other.requests.load(Ordering::SeqCst),
        0,
        "another origin was contacted; keys it saw: {:?}",
        other.keys.lock().unwrap()
    );
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        // The redirect itself is the answer: not an expected status.
        ("perfwatch_app_response_status_code", &[("target", "cross")], Some(307.0)),
        ("perfwatch_app_up", &[("target", "cross")], Some(0.0)),
        ("perfwatch_app_response_status_code", &[("target", "same")], Some(200.0)),
        ("perfwatch_app_up", &[("target", "same")], Some(1.0)),
    ];
    assert_values(&body, wanted);
    let keys = app_seen.keys.lock().unwrap().clone();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == "redirect-secret"),
        "same-origin redirects keep the header: {keys:?}"
    );
    pw.stop().await;
}

/// A server that answers the first request of each connection (keep-alive)
/// and closes the connection, unanswered, on the next one: what uvicorn does
/// when its 5 s keep-alive timeout races a poll that reuses the connection.
async fn closes_idle_connections() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut answered = false;
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                    if !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        continue;
                    }
                    head.clear();
                    if answered {
                        return; // closed under the request, no answer
                    }
                    let reply =
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";
                    if sock.write_all(reply).await.is_err() {
                        return;
                    }
                    answered = true;
                }
            });
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_retried_once_on_a_fresh_one() {
    let (addr, connections) = closes_idle_connections().await;
    let pw = watch(&local("keepalive", addr, "/", "latency")).await;
    let body = wait_polls(&pw, "keepalive", 4.0, POLL_WAIT).await;
    let t = [("target", "keepalive")];
    let failed = common::failed_polls(&body, "keepalive");
    assert_eq!(failed, 0.0, "no poll failed: {body}");
    let retries = value(&body, "perfwatch_app_request_retries_total", &t).unwrap();
    let polls = polls(&body, "keepalive");
    // Every poll after the first found its idle connection closed.
    assert!(
        retries >= polls - 2.0 && retries <= polls,
        "retries {retries} of {polls} polls"
    );
    assert!(connections.load(Ordering::SeqCst) as f64 >= polls);
    pw.stop().await;
}
