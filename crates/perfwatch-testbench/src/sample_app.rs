//! A small stand-in for the FastAPI-style app perfwatch watches, for the
//! end-to-end test and `perfwatch-demo`: the endpoints perfwatch's `[[http]]`
//! collector reads, and (with backends) a cache-aside analytics endpoint
//! whose traffic makes real Redis hits and misses and real slow PostgreSQL
//! queries.
//!
//! Endpoints:
//! - `GET /health`: JSON status with `database` and `cache` checks (with
//!   backends: a `SELECT 1` and a `PING`; without: always healthy).
//! - `GET /report`: a cheap endpoint to time.
//! - `GET /pool`: the connection pool as JSON (`pool_size`, `checked_in`,
//!   `checked_out`, `overflow`); with backends, the real PostgreSQL pool;
//!   without, a fixed pool in overflow.
//! - `GET /metrics`: `cache_hits_total` / `cache_misses_total` per
//!   `key_prefix` and `db_connection_pool_*` gauges. With backends, the
//!   analytics endpoint's real counts; without, counters that grow by 9 hits
//!   and 1 miss on every scrape.
//! - `GET /api/analytics/bad-days?driver=N` (backends only): Redis `GET
//!   bad_days:N`; on a miss the PostgreSQL query (which costs
//!   [`ANALYTICS_COST`], so a 10 ms slow-log threshold catches it) and a
//!   `SET` with a 300 s TTL. Every 50th miss also writes a session key
//!   without TTL, the bug the key sampler is there to find.
//! - `POST /demo/warm|cold|recover|auto` (with a [`ModeSwitch`]): forces the
//!   cache workload's mode, or hands it back to the demo's timer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::HarnessError;
use super::local_http::LocalHttpServer;
use super::workload::{Mode, ModeSwitch};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

const SERVER: &str = "sample-app";

/// What the analytics query costs on the server (a `pg_sleep`, so slow-log
/// entries come without burning CPU).
pub const ANALYTICS_COST: Duration = Duration::from_millis(20);

/// TTL of the cached analytics responses.
const CACHE_TTL_SECONDS: u64 = 300;

/// Bytes of each cached response: cold traffic fills a small `maxmemory`
/// and makes Redis evict.
const RESPONSE_PADDING: usize = 2048;

/// The Redis and PostgreSQL the analytics endpoint reads.
#[derive(Debug, Clone)]
pub struct SampleAppBackends {
    /// `redis://` URL of the cache.
    pub redis_url: String,
    /// `postgres://` DSN of the database seeded with
    /// [`PG_SCHEMA`](super::workload::PG_SCHEMA).
    pub postgres_dsn: String,
}

/// A running sample app on 127.0.0.1; stopped when dropped.
#[derive(Debug)]
pub struct SampleApp {
    server: LocalHttpServer,
}

#[derive(Clone)]
struct AppState {
    backends: Option<Backends>,
    switch: Option<ModeSwitch>,
    hits: Arc<AtomicU64>,
    misses: Arc<AtomicU64>,
    scrapes: Arc<AtomicU64>,
}

#[derive(Clone)]
struct Backends {
    redis: redis::aio::MultiplexedConnection,
    pool: sqlx::PgPool,
}

/// Most connections of the app's PostgreSQL pool.
const POOL_SIZE: u32 = 5;

impl SampleApp {
    /// Connects to the backends (if any) and serves on 127.0.0.1:0. Must run
    /// inside a Tokio runtime.
    pub async fn start(
        backends: Option<SampleAppBackends>,
        switch: Option<ModeSwitch>,
    ) -> Result<Self, HarnessError> {
        let backends = match backends {
            Some(b) => Some(connect(&b).await?),
            None => None,
        };
        let state = AppState {
            backends,
            switch,
            hits: Arc::default(),
            misses: Arc::default(),
            scrapes: Arc::default(),
        };
        let router = Router::new()
            .route("/health", get(health))
            .route("/report", get(|| async { "computed" }))
            .route("/pool", get(pool))
            .route("/metrics", get(metrics))
            .route("/api/analytics/bad-days", get(bad_days))
            .route("/demo/{mode}", post(set_mode))
            .with_state(state);
        let server = LocalHttpServer::start(SERVER, router).await?;
        Ok(SampleApp { server })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }
}

async fn connect(b: &SampleAppBackends) -> Result<Backends, HarnessError> {
    let fail = |what: &str, e: String| HarnessError::BadReply {
        server: SERVER,
        request: format!("connecting to {what}"),
        reply: e,
    };
    let redis = redis::Client::open(b.redis_url.as_str())
        .map_err(|e| fail("redis", e.to_string()))?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| fail("redis", e.to_string()))?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&b.postgres_dsn)
        .await
        .map_err(|e| fail("postgres", e.to_string()))?;
    Ok(Backends { redis, pool })
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn health(State(s): State<AppState>) -> Response {
    let Some(b) = &s.backends else {
        return json(
            r#"{"status":"healthy","checks":{"database":{"status":"healthy"},"cache":{"status":"healthy"}}}"#.into(),
        );
    };
    let db = sqlx::query("SELECT 1").execute(&b.pool).await.is_ok();
    let mut con = b.redis.clone();
    let cache = redis::cmd("PING")
        .query_async::<String>(&mut con)
        .await
        .is_ok();
    let word = |ok: bool| if ok { "healthy" } else { "unhealthy" };
    let body = format!(
        r#"{{"status":"{}","checks":{{"database":{{"status":"{}"}},"cache":{{"status":"{}"}}}}}}"#,
        word(db && cache),
        word(db),
        word(cache)
    );
    let status = if db && cache {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, json(body)).into_response()
}

/// `(pool_size, checked_in, checked_out, overflow)`.
fn pool_numbers(s: &AppState) -> (u64, u64, u64, i64) {
    match &s.backends {
        Some(b) => {
            let open = u64::from(b.pool.size());
            let idle = b.pool.num_idle() as u64;
            (u64::from(POOL_SIZE), idle, open.saturating_sub(idle), 0)
        }
        None => (5, 0, 7, 2),
    }
}

async fn pool(State(s): State<AppState>) -> Response {
    let (size, checked_in, checked_out, overflow) = pool_numbers(&s);
    json(format!(
        r#"{{"pool_size":{size},"checked_in":{checked_in},"checked_out":{checked_out},"overflow":{overflow}}}"#
    ))
}

async fn metrics(State(s): State<AppState>) -> String {
    let (hits, misses) = if s.backends.is_some() {
        (
            s.hits.load(Ordering::SeqCst),
            s.misses.load(Ordering::SeqCst),
        )
    } else {
        let n = s.scrapes.fetch_add(1, Ordering::SeqCst) + 1;
        (9 * n, n)
    };
    let (size, _, checked_out, _) = pool_numbers(&s);
    let size = if s.backends.is_some() { size } else { 20 };
    format!(
        "# TYPE cache_hits_total counter\ncache_hits_total{{key_prefix=\"bad_days\"}} {hits}\n\
         # TYPE cache_misses_total counter\ncache_misses_total{{key_prefix=\"bad_days\"}} {misses}\n\
         # TYPE db_connection_pool_size gauge\ndb_connection_pool_size {size}\n\
         # TYPE db_connection_pool_checked_out gauge\ndb_connection_pool_checked_out {checked_out}\n"
    )
}

#[derive(serde::Deserialize)]
struct BadDaysParams {
    driver: u64,
}

async fn bad_days(State(s): State<AppState>, Query(p): Query<BadDaysParams>) -> Response {
    let Some(b) = &s.backends else {
        return (StatusCode::NOT_FOUND, "no backends\n").into_response();
    };
    let key = format!("bad_days:{}", p.driver);
    let mut con = b.redis.clone();
    match redis::cmd("GET")
        .arg(&key)
        .query_async::<Option<String>>(&mut con)
        .await
    {
        Ok(Some(cached)) => {
            s.hits.fetch_add(1, Ordering::SeqCst);
            return json(cached);
        }
        Ok(None) => {}
        Err(e) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("cache: {e}\n")).into_response();
        }
    }
    let misses = s.misses.fetch_add(1, Ordering::SeqCst) + 1;
    let driver = i32::try_from(p.driver % 50).unwrap_or(0);
    let row: Result<(i64,), _> =
        sqlx::query_as("SELECT count(*) FROM trip, pg_sleep($2) WHERE driver_id = $1")
            .bind(driver)
            .bind(ANALYTICS_COST.as_secs_f64())
            .fetch_one(&b.pool)
            .await;
    let trips = match row {
        Ok((n,)) => n,
        Err(e) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")).into_response();
        }
    };
    let body = format!(
        r#"{{"driver":{},"trips":{trips},"padding":"{}"}}"#,
        p.driver,
        "x".repeat(RESPONSE_PADDING)
    );
    // A failed SET (OOM on a full cache) only means the next read misses too.
    let _ = redis::cmd("SET")
        .arg(&key)
        .arg(&body)
        .arg("EX")
        .arg(CACHE_TTL_SECONDS)
        .query_async::<()>(&mut con)
        .await;
    if misses.is_multiple_of(50) {
        let _ = redis::cmd("SET")
            .arg(format!("session:{misses}"))
            .arg("user")
            .query_async::<()>(&mut con)
            .await;
    }
    json(body)
}

async fn set_mode(State(s): State<AppState>, Path(mode): Path<String>) -> Response {
    let Some(switch) = &s.switch else {
        return (StatusCode::NOT_FOUND, "no workload to switch\n").into_response();
    };
    let forced = match mode.as_str() {
        "warm" => Mode::Warm,
        "cold" => Mode::Cold,
        "recover" => Mode::Recover,
        "auto" => {
            switch.set_auto(true);
            return "workload mode: auto (the demo's timer alternates warm and cold)\n"
                .into_response();
        }
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("unknown mode \"{other}\": use warm, cold, recover or auto\n"),
            )
                .into_response();
        }
    };
    switch.set_auto(false);
    switch.set(forced);
    format!("workload mode: {} (until POST /demo/auto)\n", forced.name()).into_response()
}
