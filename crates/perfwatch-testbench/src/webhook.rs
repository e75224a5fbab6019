//! A webhook receiver for Alertmanager's notifications (payload version 4):
//! the end-to-end test checks what arrives, the demo prints it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::HarnessError;
use super::local_http::LocalHttpServer;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

/// One alert of one notification.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredAlert {
    /// The Alertmanager receiver the notification was for (its route).
    pub receiver: String,
    /// `firing` or `resolved` (the alert's own status).
    pub status: String,
    /// Its labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// Its annotations (`summary`, `description`, `runbook_url`, ...).
    pub annotations: BTreeMap<String, String>,
    /// Seconds since the receiver started.
    pub at: f64,
}

/// The string values of a JSON object.
fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// An axum server on 127.0.0.1:0 recording every notification POSTed to
/// `/alerts`; stopped when dropped.
#[derive(Debug)]
pub struct AlertWebhook {
    url: String,
    state: WebhookState,
    /// Serves until the webhook is dropped.
    _server: LocalHttpServer,
}

#[derive(Clone, Debug)]
struct WebhookState {
    started: Instant,
    received: Arc<Mutex<Vec<DeliveredAlert>>>,
    raw: Arc<Mutex<Vec<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking handler leaves the list as it was: still readable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn receive(State(s): State<WebhookState>, body: Bytes) -> &'static str {
    let text = String::from_utf8_lossy(&body).into_owned();
    let at = s.started.elapsed().as_secs_f64();
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        let mut received = lock(&s.received);
        let receiver = v["receiver"].as_str().unwrap_or_default();
        for a in v["alerts"].as_array().into_iter().flatten() {
            received.push(DeliveredAlert {
                receiver: receiver.to_owned(),
                status: a["status"].as_str().unwrap_or_default().to_owned(),
                labels: string_map(&a["labels"]),
                annotations: string_map(&a["annotations"]),
                at,
            });
        }
    }
    lock(&s.raw).push(text);
    "ok"
}

impl AlertWebhook {
    /// Serves on 127.0.0.1:0. Must run inside a Tokio runtime.
    pub async fn start() -> Result<Self, HarnessError> {
        let state = WebhookState {
            started: Instant::now(),
            received: Arc::default(),
            raw: Arc::default(),
        };
        let app = Router::new()
            .route("/alerts", post(receive))
            .with_state(state.clone());
        let server = LocalHttpServer::start("webhook", app).await?;
        Ok(AlertWebhook {
            url: format!("http://{}/alerts", server.addr()),
            state,
            _server: server,
        })
    }

    /// `http://127.0.0.1:<port>/alerts`, for Alertmanager's `webhook_configs`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every alert received so far, oldest first.
    pub fn delivered(&self) -> Vec<DeliveredAlert> {
        lock(&self.state.received).clone()
    }

    /// The first received `alertname` with `status` for `target`.
    pub fn find(&self, alertname: &str, status: &str, target: &str) -> Option<DeliveredAlert> {
        self.delivered().into_iter().find(|d| {
            d.status == status
                && d.labels.get("alertname").map(String::as_str) == Some(alertname)
                && d.labels.get("target").map(String::as_str) == Some(target)
        })
    }

    /// The raw bodies received so far.
    pub fn raw(&self) -> Vec<String> {
        lock(&self.state.raw).clone()
    }
}
