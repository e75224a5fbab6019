//! `perfwatch demo`: a throwaway local stack from the test harness (Redis with
//! a small maxmemory), a synthetic cache-aside workload with hits, misses and
//! evictions, and perfwatch watching it — what a new user runs first.
//!
//! The workload alternates between a warm phase (small key space, hit ratio
//! above 0.9) and a cold phase (large key space, hit ratio well below 0.7) so
//! the hit-ratio gauges, and later the alert, have something to show.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::harness::{HarnessError, RedisServer};

/// Errors that stop the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A throwaway server could not start.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// The generated config did not load (a bug).
    #[error("demo config: {0}")]
    Config(#[from] crate::config::ConfigErrors),
    /// perfwatch itself failed.
    #[error(transparent)]
    Run(#[from] crate::RunError),
    /// A local file operation failed.
    #[error("demo: {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How long each workload phase lasts.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Duration of the warm and of the cold phase.
    pub phase: Duration,
    /// Poll interval of perfwatch.
    pub interval: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            phase: Duration::from_secs(120),
            interval: Duration::from_secs(5),
        }
    }
}

/// The config the demo runs perfwatch with.
pub fn demo_config(redis_url: &str, interval: Duration) -> String {
    let interval = humantime::format_duration(interval);
    format!(
        r#"[global]
interval = "{interval}"
timeout = "2s"

[[redis]]
name = "cache"
url = "{redis_url}"
[redis.keys]
prefixes = ["bad_days:", "response_cache:", "session:"]
max_keys_per_poll = 5000
"#
    )
}

/// Runs the demo until `shutdown` completes.
pub async fn run_demo(
    listen: &str,
    options: DemoOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let redis = tokio::task::spawn_blocking(|| {
        RedisServer::start(&[("maxmemory", "4mb"), ("maxmemory-policy", "allkeys-lru")])
    })
    .await
    .map_err(|e| DemoError::Io {
        context: "starting redis",
        source: std::io::Error::other(e),
    })??;
    let dir = tempfile::tempdir().map_err(|source| DemoError::Io {
        context: "creating the demo config dir",
        source,
    })?;
    let config_path = dir.path().join("perfwatch.toml");
    std::fs::write(&config_path, demo_config(&redis.url(), options.interval)).map_err(
        |source| DemoError::Io {
            context: "writing the demo config",
            source,
        },
    )?;
    let config = Config::load(&config_path)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DemoError::Listen {
            addr: listen.to_owned(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| DemoError::Listen {
        addr: listen.to_owned(),
        source,
    })?;
    println!("perfwatch demo");
    println!("  redis (throwaway): {}", redis.url());
    println!("  config:            {}", config_path.display());
    println!("  landing page:      http://{addr}/");
    println!("  metrics:           http://{addr}/metrics");
    println!(
        "  workload: {} warm (hit ratio > 0.9), then {} cold (< 0.7), repeating. Ctrl-C stops everything.",
        humantime::format_duration(options.phase),
        humantime::format_duration(options.phase)
    );
    let cancel = CancellationToken::new();
    let workload = tokio::spawn(workload(redis.url(), options.phase, cancel.clone()));
    let result = crate::run(config, listener, shutdown).await;
    cancel.cancel();
    let _ = workload.await;
    drop(redis);
    result.map_err(DemoError::from)
}

/// A cache-aside workload: GET a key, on a miss SET it with a TTL.
async fn workload(url: String, phase: Duration, cancel: CancellationToken) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut con) = client.get_multiplexed_async_connection().await else {
        tracing::error!("demo workload cannot connect to redis");
        return;
    };
    let cold = Arc::new(AtomicBool::new(false));
    let toggle = {
        let cold = cold.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(phase) => {
                        let now_cold = !cold.load(Ordering::Relaxed);
                        cold.store(now_cold, Ordering::Relaxed);
                        tracing::info!(phase = if now_cold { "cold" } else { "warm" }, "demo workload phase");
                    }
                }
            }
        })
    };
    let value = "x".repeat(2048);
    let mut i: u64 = 0;
    while !cancel.is_cancelled() {
        i += 1;
        // Warm: 200 hot keys; cold: 200,000 keys, so most lookups miss and
        // the 4 MB maxmemory evicts.
        let space = if cold.load(Ordering::Relaxed) {
            200_000
        } else {
            200
        };
        let n = rand::random::<u64>() % space;
        let key = if n.is_multiple_of(3) {
            format!("response_cache:/api/analytics/{n}")
        } else {
            format!("bad_days:{n}")
        };
        let got: redis::RedisResult<Option<String>> =
            redis::cmd("GET").arg(&key).query_async(&mut con).await;
        if let Ok(None) = got {
            let _: redis::RedisResult<()> = redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("EX")
                .arg(300)
                .query_async(&mut con)
                .await;
        }
        // The seeds' bug: now and then a key written without a TTL.
        if i.is_multiple_of(500) {
            let _: redis::RedisResult<()> = redis::cmd("SET")
                .arg(format!("session:{i}"))
                .arg("user")
                .query_async(&mut con)
                .await;
        }
        if i.is_multiple_of(50) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    toggle.abort();
}
