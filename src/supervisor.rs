//! Starts, stops and replaces target loops when the config is loaded or
//! reloaded. A reload only touches targets whose config changed: unchanged
//! targets keep their connections and their counter history. Also
//! `perfwatch once`: every target polled once on the loops' own guarded path.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::collectors::Target;
use crate::config::{Config, Timing};
use crate::engine::{PollLoop, Store, TargetHandle, TargetKey};
use crate::poll::PollError;

struct Running {
    config: Target,
    timing: Timing,
    handle: TargetHandle,
}

/// Owns every running target loop.
pub struct Supervisor {
    store: Arc<Store>,
    running: BTreeMap<TargetKey, Running>,
    shutdown: CancellationToken,
    polled: Arc<tokio::sync::Notify>,
}

impl Supervisor {
    /// A supervisor with nothing running; `shutdown` stops every loop it starts.
    pub fn new(store: Arc<Store>, shutdown: CancellationToken) -> Self {
        Self {
            store,
            running: BTreeMap::new(),
            shutdown,
            polled: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Notified after every finished poll of any target.
    pub fn polled(&self) -> Arc<tokio::sync::Notify> {
        self.polled.clone()
    }

    /// Makes the running targets match `config`: removed and changed targets
    /// stop (their series disappear), new and changed ones start.
    pub async fn apply(&mut self, config: &Config) {
        let mut wanted: BTreeMap<TargetKey, (Target, Timing)> = BTreeMap::new();
        for t in &config.targets {
            let key = TargetKey {
                collector: t.kind(),
                target: t.common().name.clone(),
            };
            wanted.insert(key, (t.clone(), config.timing(t)));
        }
        let stale: Vec<TargetKey> = self
            .running
            .iter()
            .filter(|(k, r)| wanted.get(*k) != Some(&(r.config.clone(), r.timing)))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(r) = self.running.remove(&key) {
                r.handle.stop().await;
                self.store.remove(&key);
                tracing::info!(collector = key.collector, target_name = %key.target, "target stopped");
            }
        }
        for (key, (config, timing)) in wanted {
            if self.running.contains_key(&key) {
                continue;
            }
            let poll_loop = PollLoop {
                key: key.clone(),
                timing,
                store: self.store.clone(),
                cancel: self.shutdown.child_token(),
                polled: self.polled.clone(),
                peer_up: config.peer_up(),
            };
            let handle = config.start(poll_loop);
            tracing::info!(collector = key.collector, target_name = %key.target, interval = %humantime::format_duration(timing.interval), "target started");
            self.running.insert(
                key,
                Running {
                    config,
                    timing,
                    handle,
                },
            );
        }
    }

    /// Stops every loop and waits for them.
    pub async fn stop_all(&mut self) {
        for (_, r) in std::mem::take(&mut self.running) {
            r.handle.stop().await;
        }
    }
}

/// Polls every target once, concurrently, each under its timeout; for
/// `perfwatch once`. Returns the rendered exposition and the failures.
pub async fn poll_once(config: &Config) -> (Bytes, Vec<(TargetKey, PollError)>) {
    let store = Arc::new(Store::new());
    let mut tasks = Vec::new();
    for target in &config.targets {
        let key = TargetKey {
            collector: target.kind(),
            target: target.common().name.clone(),
        };
        let timing = config.timing(target);
        store.register(key.clone(), timing, target.peer_up());
        let target = target.clone();
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let result = target.poll_once(timing).await;
            match result {
                Ok(out) => {
                    store.record_success(&key, out, started.elapsed());
                    None
                }
                Err(e) => {
                    store.record_failure(&key, &e, started.elapsed(), &[]);
                    Some((key, e))
                }
            }
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Ok(Some(f)) = t.await {
            failures.push(f);
        }
    }
    (store.metrics().text.clone(), failures)
}
