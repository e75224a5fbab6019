//! The HTTP side: `/metrics`, health and readiness, reload, and a landing page.
//! [`app`] builds the router apart from serving it, so tests drive it with
//! `oneshot` or a real listener on port 0.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

use crate::engine::Store;

/// A reload request: the reply says whether the new config was applied.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The poll results.
    pub store: Arc<Store>,
    /// Where `POST /-/reload` sends its request.
    pub reload: mpsc::Sender<ReloadRequest>,
    /// The phase engine, for the landing page.
    pub phases: Arc<std::sync::Mutex<crate::phase::PhaseEngine>>,
    /// Whether `POST /-/reload` is served.
    pub reload_enabled: bool,
}

/// Largest request body we read (only `/-/reload` takes POST, with no body).
const MAX_BODY: usize = 4096;

/// The router.
pub fn app(state: AppState) -> Router {
    // `get` also answers HEAD; any other method gets 405.
    let router = Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(ready))
        .route("/api/slow-queries", get(slow_queries));
    let router = if state.reload_enabled {
        router.route("/-/reload", post(reload))
    } else {
        router
    };
    router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
}

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

/// `?target=` of `/api/slow-queries`.
#[derive(serde::Deserialize)]
struct SlowQueriesParams {
    target: Option<String>,
}

/// Top query classes per slow-log target (and per PostgreSQL/MySQL target
/// with `statements` on), as JSON: `{"<target>": [...]}`,
/// or one target's list with `?target=`.
async fn slow_queries(
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<SlowQueriesParams>,
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

async fn landing(State(state): State<AppState>) -> Html<String> {
    let phases = state.phases.lock().map(|p| p.summary()).unwrap_or_default();
    Html(landing_page(&state.store, &phases))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The landing page: targets, their state and headline numbers, and phases.
pub fn landing_page(store: &Store, phases: &[crate::phase::PhaseSummary]) -> String {
    let now = Instant::now();
    let mut html = String::from(concat!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>perfwatch</title>",
        "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}",
        "td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}.up{color:#080}.down{color:#b00}</style>",
        "</head><body><h1>perfwatch</h1>",
        "<p>Performance watcher for web backends. <a href=\"/metrics\">Metrics</a> · ",
        "<a href=\"/-/healthy\">healthy</a> · <a href=\"/-/ready\">ready</a></p>",
        "<h2>Targets</h2><table><tr><th>collector</th><th>target</th><th>state</th>",
        "<th>last poll</th><th>headline</th></tr>"
    ));
    for (key, s) in store.targets() {
        let (class, state) = match (s.polled, s.up) {
            (false, _) => ("", "waiting"),
            (true, true) => ("up", "up"),
            (true, false) => ("down", "down"),
        };
        let last = match s.last_success {
            Some(t) => format!(
                "{:.0} s ago ({:.1} ms)",
                now.duration_since(t).as_secs_f64(),
                s.last_duration * 1000.0
            ),
            None => "never".into(),
        };
        let mut headline = String::new();
        for (k, v) in &s.headline {
            let _ = write!(headline, "{}: {}<br>", escape(k), escape(v));
        }
        if let Some(e) = &s.last_error {
            let _ = write!(headline, "<span class=\"down\">{}</span>", escape(e));
        }
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{state}</td><td>{last}</td><td>{headline}</td></tr>",
            escape(key.collector),
            escape(&key.target)
        );
    }
    html.push_str("</table>");
    if !phases.is_empty() {
        html.push_str(
            "<h2>Phases</h2><table><tr><th>phase</th><th>description</th><th>triggers</th></tr>",
        );
        for p in phases {
            let mut triggers = String::new();
            for (name, kind, active, value) in &p.triggers {
                let value = value.map_or("no data".to_owned(), |v| format!("{v:.3}"));
                let (class, state) = if *active {
                    ("down", "ACTIVE")
                } else {
                    ("up", "inactive")
                };
                // Health triggers watch the phase once in place; they never
                // recommend it, so the page says which is which.
                let health = if *kind == crate::phase::TriggerKind::Health {
                    " [health]"
                } else {
                    ""
                };
                let _ = write!(
                    triggers,
                    "{}{health}: <span class=\"{class}\">{state}</span> ({})<br>",
                    escape(name),
                    escape(&value)
                );
            }
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{triggers}</td></tr>",
                escape(&p.name),
                escape(&p.description)
            );
        }
        html.push_str("</table>");
    }
    html.push_str("</body></html>\n");
    html
}
