//! The HTTP side: `/metrics`, health and readiness, reload, the status page
//! (`/`) and its JSON (`/api/status`, `/api/history`), and the fleet probes
//! (`/probe`, see [`crate::probe`]).
//! [`app`] builds the router apart from serving it, so tests drive it with
//! `oneshot` or a real listener on port 0.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

use crate::engine::Store;
use crate::status;

/// A reload request: the reply says whether the new config was applied.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The poll results.
    pub store: Arc<Store>,
    /// Where `POST /-/reload` sends its request.
    pub reload: mpsc::Sender<ReloadRequest>,
    /// The phase engine, for the status page.
    pub phases: Arc<std::sync::Mutex<crate::phase::PhaseEngine>>,
    /// Whether `POST /-/reload` is served.
    pub reload_enabled: bool,
    /// The fleet prober behind `/probe` (off without a `[probe]` section).
    pub probe: Arc<crate::probe::Prober>,
}

/// Largest request body we read (only `/-/reload` takes POST, with no body).
const MAX_BODY: usize = 4096;

/// The router.
pub fn app(state: AppState) -> Router {
    // `get` also answers HEAD; any other method gets 405.
    let router = Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/probe", get(probe))
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(ready))
        .route("/api/slow-queries", get(slow_queries))
        .route("/api/status", get(api_status))
        .route("/api/history", get(api_history));
    let router = if state.reload_enabled {
        router.route("/-/reload", post(reload))
    } else {
        router
    };
    router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// The longest any request may take (a fleet probe's deadline is below it:
/// `crate::probe::config::MAX_TIMEOUT`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The Prometheus text format content type (version 0.0.4).
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let rendered = state.store.metrics();
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut resp = if gzip {
        let mut r = rendered.gzip().into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        rendered.text.clone().into_response()
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    resp
}

/// `GET /probe?target=…[&auth_module=…][&kind=…]`: polls one backend now
/// and answers its families (see [`crate::probe`]); 4xx/503 with the reason
/// as plain text when the request is refused.
async fn probe(
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let timeout = headers
        .get(crate::probe::SCRAPE_TIMEOUT_HEADER)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let reply = state.probe.probe(&params, timeout).await;
    let content_type = if reply.is_metrics() {
        TEXT_FORMAT
    } else {
        "text/plain; charset=utf-8"
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, reply.body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// `?target=` of `/api/slow-queries` and `/api/history`.
#[derive(serde::Deserialize)]
struct TargetParams {
    target: Option<String>,
}

/// Top query classes per slow-log target (and per PostgreSQL/MySQL target
/// with `statements` on), as JSON: `{"<target>": [...]}`,
/// or one target's list with `?target=`.
async fn slow_queries(
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<TargetParams>,
) -> Response {
    let targets = state.store.targets();
    let mut all = serde_json::Map::new();
    // Slow-log targets, then PostgreSQL/MySQL targets reading statement
    // statistics (those report details only with the source on); a name
    // used by both keeps the slow log's.
    let slowlog = targets.iter().filter(|(k, _)| k.collector == "slowlog");
    let statements = targets
        .iter()
        .filter(|(k, s)| matches!(k.collector, "postgres" | "mysql") && s.details.is_some());
    for (key, s) in slowlog.chain(statements) {
        if all.contains_key(&key.target) {
            continue;
        }
        all.insert(
            key.target.clone(),
            s.details
                .clone()
                .unwrap_or(serde_json::Value::Array(vec![])),
        );
    }
    match params.target {
        Some(t) => match all.remove(&t) {
            Some(v) => axum::Json(v).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                format!("no slow-query target \"{t}\"\n"),
            )
                .into_response(),
        },
        None => axum::Json(serde_json::Value::Object(all)).into_response(),
    }
}

async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.store.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first poll of every target\n",
        )
    }
}

async fn reload(State(state): State<AppState>) -> (StatusCode, String) {
    let (tx, rx) = oneshot::channel();
    if state.reload.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
    }
    match rx.await {
        Ok(Ok(())) => (StatusCode::OK, "config reloaded\n".into()),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            format!("config not reloaded, the previous one keeps running:\n{e}"),
        ),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into()),
    }
}

/// The phase engine's summary, the lock held only to copy it.
fn phase_summary(state: &AppState) -> Vec<crate::phase::PhaseSummary> {
    state
        .phases
        .lock()
        .map(|p| p.summary(tokio::time::Instant::now()))
        .unwrap_or_default()
}

/// The status page: copied out of the store and the phase engine, then
/// formatted without holding either (a scrape of `/metrics` never waits
/// for it).
async fn landing(State(state): State<AppState>) -> Html<String> {
    let snapshot = status::snapshot(&state.store, phase_summary(&state));
    Html(status::page(&snapshot))
}

/// Targets, their condition and last error, phases and why, as JSON.
async fn api_status(State(state): State<AppState>) -> Response {
    let snapshot = status::snapshot(&state.store, phase_summary(&state));
    axum::Json(status::status_json(&snapshot)).into_response()
}

/// The status page's history as JSON: every target's series and points
/// (or one target's with `?target=`), and every phase trigger's.
async fn api_history(
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<TargetParams>,
) -> Response {
    let phases = phase_summary(&state);
    match status::history_json(&state.store, params.target.as_deref(), &phases) {
        Some(v) => axum::Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!(
                "no target \"{}\"\n",
                params.target.as_deref().unwrap_or_default()
            ),
        )
            .into_response(),
    }
}
