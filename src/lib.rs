//! perfwatch: a sidecar that polls the backend of a web app (Redis, the
//! database, slow-query logs, the app's own endpoints) and serves what it
//! learned on `/metrics` for Prometheus.
//!
//! # Layout
//! (docs/ARCHITECTURE.md is the same map with the path of data drawn out.)
//!
//! Leaf modules, the vocabulary every other part shares (they import nothing
//! of perfwatch above them; `tests/architecture.rs` fails on a cycle):
//! - [`poll`]: `Collector`, `PollError`, `ErrorReason`, `Timing`, `CommonTarget`.
//! - [`document`]: the spanned TOML document and `ConfigError`.
//! - [`secret`]: `Secret` and [`secret::redact`], the one redaction function.
//! - [`local_file`]: bounded, non-blocking reads of the files a config names.
//! - [`catalog`]: `MetricDef` and `metric_catalog!`: every family declared once.
//! - [`exposition`]: metric families, merging and text encoding.
//! - [`counter_window`]: windowed, reset-aware ratios of counter pairs.
//! - [`build_info`]: version, git commit, build date, rustc (from `build.rs`).
//!
//! Above them:
//! - [`collectors`]: one folder per source (config, catalog, pure parsers,
//!   thin I/O), registered by one entry each in `register_kinds!`, which
//!   makes [`collectors::KINDS`].
//! - [`config`]: `[global]`, `[[phase]]` and every kind's tables, validated
//!   once into ready targets, every error at once with file, line and key.
//! - [`engine`]: one poll loop per target under a hard timeout and a panic
//!   guard, the store `/metrics` renders from (it never waits on a target),
//!   the bounded history the polls feed for the status page, and
//!   perfwatch's own metrics.
//! - [`supervisor`]: starts and stops loops on load and reload; `perfwatch once`.
//! - [`probe`]: fleet mode, `GET /probe?target=…`: a backend named by the
//!   request (Prometheus' service discovery) polled on the engine's guarded
//!   path with a cached collector, bounded in probes, backends and time.
//! - [`phase`]: phase triggers, evaluated after every poll round.
//! - [`metric_index`]: every catalog in one index (tests, docs, phase checks).
//! - [`status`]: the status page (`/`: inline SVG charts of the engine's
//!   bounded history, targets down first, phases and why) and its JSON.
//! - [`http`]: the axum router (`/metrics`, `/probe`, `/-/healthy`,
//!   `/-/ready`, `/-/reload`, `/`, `/api/*`); [`web`]: plain or TLS with
//!   basic auth.
//!
//! Other crates of the workspace: `crates/perfwatch-slowlog`
//! ([`perfwatch_slowlog`]: slow-log formats, fingerprints, digest, tailer; a
//! library on its own, under the `[[slowlog]]` collector and `perfwatch
//! digest`), and `crates/perfwatch-testbench` (throwaway servers for tests,
//! benchmarks and the `perfwatch-demo` binary; a dev-dependency only, so
//! none of it is linked into the sidecar).
//!
//! `main.rs` only parses flags, sets up logging, loads the config and calls
//! [`run`].

pub mod build_info;
pub mod catalog;
pub mod collectors;
pub mod config;
pub mod counter_window;
pub mod document;
pub mod engine;
pub mod explain;
pub mod exposition;
pub mod http;
pub mod local_file;
pub mod metric_index;
pub mod phase;
pub mod poll;
pub mod probe;
pub mod secret;
pub mod status;
pub mod supervisor;
pub mod tls;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use config::Config;
use engine::Store;
use supervisor::Supervisor;

/// Errors that stop perfwatch.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The HTTP server failed.
    #[error("http server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// How perfwatch serves HTTP.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// TLS and basic auth (`--web.config.file`); default: plain, open.
    pub config: web::WebConfig,
    /// Where the web config came from (for error messages).
    pub config_path: Option<std::path::PathBuf>,
    /// Whether `POST /-/reload` is served (SIGHUP always reloads).
    pub enable_reload: bool,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            config: web::WebConfig::default(),
            config_path: None,
            enable_reload: true,
        }
    }
}

/// Runs perfwatch until `shutdown` completes: starts every target's poll loop,
/// serves plain HTTP on `listener`, and reloads the config on `POST /-/reload`
/// or SIGHUP (keeping the old one when the new one has errors).
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    run_with(config, listener, WebOptions::default(), shutdown).await
}

/// [`run`] with TLS, basic auth and reload settings.
pub async fn run_with(
    config: Config,
    listener: tokio::net::TcpListener,
    web: WebOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    tls::install_default_provider();
    let store = Arc::new(Store::with_history(status::signals::SIGNALS));
    let cancel = CancellationToken::new();
    let mut supervisor = Supervisor::new(store.clone(), cancel.clone());
    let engine = phase::PhaseEngine::new(&config.phases);
    warn_unknown_trigger_metrics(&engine);
    let phases = Arc::new(std::sync::Mutex::new(engine));
    spawn_phase_evaluator(
        store.clone(),
        phases.clone(),
        supervisor.polled(),
        cancel.clone(),
    );
    supervisor.apply(&config).await;
    let prober = probe::Prober::new(store.clone());
    prober.configure(config.probe.as_ref(), config.global.interval);
    prober.spawn_janitor(cancel.clone());

    let (reload_tx, mut reload_rx) = mpsc::channel::<http::ReloadRequest>(4);
    spawn_sighup(reload_tx.clone(), cancel.clone());

    let app = http::app(http::AppState {
        store: store.clone(),
        reload: reload_tx,
        phases: phases.clone(),
        reload_enabled: web.enable_reload,
        probe: prober.clone(),
    });
    let app = web::protect(app, &web.config);
    let server_cancel = cancel.clone();
    let server = tokio::spawn(async move {
        web::serve(
            listener,
            app,
            &web.config,
            web.config_path.as_deref(),
            server_cancel,
        )
        .await
    });

    let mut current = config;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(reply) = reload_rx.recv() => {
                let result = reload(&mut current, &mut supervisor, &store).await;
                if result.is_ok() {
                    prober.configure(current.probe.as_ref(), current.global.interval);
                    let mut engine = lock(&phases);
                    engine.reconfigure(&current.phases);
                    warn_unknown_trigger_metrics(&engine);
                }
                let _ = reply.send(result);
            }
        }
    }
    tracing::info!("shutting down");
    cancel.cancel();
    supervisor.stop_all().await;
    match server.await {
        Ok(r) => r.map_err(RunError::Serve),
        Err(e) => Err(RunError::Serve(std::io::Error::other(e))),
    }
}

async fn reload(
    current: &mut Config,
    supervisor: &mut Supervisor,
    store: &Store,
) -> Result<(), String> {
    let Some(path) = current.path.clone() else {
        return Err("perfwatch was started without a config file".into());
    };
    match Config::load(&path) {
        Ok(new) => {
            supervisor.apply(&new).await;
            *current = new;
            store.record_reload(true);
            tracing::info!(file = %path.display(), "config reloaded");
            Ok(())
        }
        Err(errors) => {
            store.record_reload(false);
            tracing::error!(file = %path.display(), "config reload failed, keeping the previous config:\n{errors}");
            Err(errors.to_string())
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM: what the `perfwatch` binary
/// and the test bench's `perfwatch-demo` stop on.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM ({e}); stop with Ctrl-C");
            let _ = ctrl_c.await;
        }
    }
}

/// Locks the phase engine; a panic elsewhere cannot leave it half-updated
/// (every update is one evaluation), so a poisoned lock is still usable.
fn lock(
    phases: &std::sync::Mutex<phase::PhaseEngine>,
) -> std::sync::MutexGuard<'_, phase::PhaseEngine> {
    phases.lock().unwrap_or_else(|e| e.into_inner())
}

/// Re-evaluates the phase triggers after every finished poll.
fn spawn_phase_evaluator(
    store: Arc<Store>,
    phases: Arc<std::sync::Mutex<phase::PhaseEngine>>,
    polled: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = polled.notified() => {}
            }
            // Polls of several targets often finish together: evaluate once
            // for the whole round.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            let families = store.target_families();
            let now = tokio::time::Instant::now();
            let (out, summary) = {
                let mut engine = lock(&phases);
                let out = engine.evaluate(&families, now);
                (out, engine.summary(now))
            };
            store.set_derived(out.into_vec());
            store.record_triggers(&trigger_points(&summary));
        }
    });
}

/// The history's view of an evaluation: each trigger's value, threshold
/// and state.
fn trigger_points(phases: &[phase::PhaseSummary]) -> Vec<engine::history::TriggerPoint> {
    phases
        .iter()
        .flat_map(|p| {
            p.triggers.iter().map(|t| engine::history::TriggerPoint {
                phase: p.name.clone(),
                trigger: t.name.clone(),
                value: t.value,
                threshold: t.threshold,
                active: t.active,
            })
        })
        .collect()
}

fn spawn_sighup(reload: mpsc::Sender<http::ReloadRequest>, cancel: CancellationToken) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload");
            return;
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                Some(()) = hup.recv() => {
                    let (tx, _rx) = tokio::sync::oneshot::channel();
                    if reload.send(tx).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// A trigger whose selector names no family perfwatch may export would wait
/// for data forever: say so at load and reload.
fn warn_unknown_trigger_metrics(engine: &phase::PhaseEngine) {
    for (phase, trigger, metric) in engine.unknown_metrics(metric_index::may_export) {
        tracing::warn!(%phase, %trigger, %metric, "trigger selector names no metric family perfwatch exports");
    }
}
