//! What a collector is and what a poll returns: the types every part of
//! perfwatch shares (collectors, the engine, the config loader).
//!
//! Why a module of its own: these types used to live in `config`, `engine`
//! and `collectors`, which then imported each other in a circle. This module
//! imports nothing of perfwatch but the exposition types, so everything can
//! depend on it and it on nothing.

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::exposition::Families;

/// How often and how long one target polls, after applying global defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Time between poll starts.
    pub interval: Duration,
    /// Hard deadline of one poll.
    pub timeout: Duration,
}

/// Keys every `[[kind]]` table has. The config loader splits them off the
/// table and deserializes them here, the rest into the kind's own config
/// (serde's `flatten` does not mix with `deny_unknown_fields`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonTarget {
    /// The `target` label; unique among the tables of one kind.
    pub name: String,
    /// Overrides `global.interval`.
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Overrides `global.timeout`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

impl CommonTarget {
    /// The keys [`CommonTarget`] is deserialized from.
    pub const KEYS: [&'static str; 3] = ["name", "interval", "timeout"];
}

/// Why a poll failed; becomes the `reason` label of `perfwatch_poll_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorReason {
    /// The server could not be reached.
    Connect,
    /// The server refused our credentials.
    Auth,
    /// The poll did not finish before its deadline.
    Timeout,
    /// The server answered something we could not understand.
    Protocol,
    /// The server answered with an error to a command or query.
    Query,
    /// Our account lacks a privilege.
    Permission,
    /// A local file could not be read or written.
    Io,
    /// The TLS handshake failed (unknown authority, hostname mismatch,
    /// expired certificate, client certificate required, no TLS on the server).
    Tls,
    /// A bug: the collector panicked (the target keeps being polled).
    Internal,
}

impl ErrorReason {
    /// Every reason, for exporting zeros.
    pub const ALL: &'static [ErrorReason] = &[
        Self::Connect,
        Self::Auth,
        Self::Timeout,
        Self::Protocol,
        Self::Query,
        Self::Permission,
        Self::Io,
        Self::Tls,
        Self::Internal,
    ];

    /// Whether this failure came from a server that answered (it returned
    /// an error to a statement, or our account lacks a privilege): the Go
    /// exporters' `*_up` stays 1 then, since they report reachability.
    pub fn server_answered(self) -> bool {
        matches!(self, Self::Query | Self::Permission)
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Auth => "auth",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
            Self::Query => "query",
            Self::Permission => "permission",
            Self::Io => "io",
            Self::Tls => "tls",
            Self::Internal => "internal",
        }
    }
}

/// A failed poll: why, and a message naming the target and the bad value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct PollError {
    /// The reason label.
    pub reason: ErrorReason,
    /// Human-readable detail (never contains a secret).
    pub message: String,
    /// Families the collector could still read although the poll failed
    /// (a Redis target's sentinels, which answer while the primary they
    /// name does not). They replace the families of the same names from
    /// the last good poll and are served as long as failed polls keep
    /// bringing them; the poll still counts as failed.
    pub partial: Option<std::sync::Arc<Vec<prometheus::proto::MetricFamily>>>,
}

impl PollError {
    /// Builds an error.
    pub fn new(reason: ErrorReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            partial: None,
        }
    }

    /// This error, with the families the poll could still read (see
    /// [`PollError::partial`]).
    pub fn with_partial(mut self, families: Families) -> Self {
        self.partial = Some(std::sync::Arc::new(families.into_vec()));
        self
    }
}

/// What a successful poll produced.
#[derive(Debug, Default)]
pub struct PollOutput {
    /// Every series of this target; replaces the previous poll's set.
    pub families: Families,
    /// A few `(label, value)` pairs for the landing page.
    pub headline: Vec<(String, String)>,
}

/// A running collector for one target. The engine calls `poll` on its interval
/// under a hard timeout; a poll that times out is dropped mid-way, so the engine
/// then calls `reset` to throw away connection state that may be half-used.
pub trait Collector: Send + 'static {
    /// Polls the target once.
    fn poll(&mut self) -> impl Future<Output = Result<PollOutput, PollError>> + Send;
    /// Forgets connections after a timeout or error; the next poll reconnects.
    fn reset(&mut self);
    /// Structured details of the last poll for the JSON API (slow-query digests).
    fn details(&self) -> Option<serde_json::Value> {
        None
    }
    /// Families that state the target's answer right now (an up/down
    /// verdict, a health check): the engine drops them when a poll fails, so
    /// they read as unknown instead of the last good answer. Every other
    /// family is kept until it goes stale.
    fn dropped_on_failure(&self) -> &'static [&'static crate::catalog::MetricDef] {
        &[]
    }
    /// For a collector that learns of new input between polls (a slow log
    /// being written): the engine then polls early when woken. Called once,
    /// before the first poll.
    fn wake(&self) -> Option<WakeHandle> {
        None
    }
    /// For a collector that exchanges examples or plans with other targets
    /// (`crate::explain`): the engine's board. Called once, before the
    /// first poll.
    fn attach_board(&mut self, _board: &std::sync::Arc<crate::explain::Board>) {}
}

/// A collector of any kind behind one type: the fleet probes keep one per
/// backend between requests, whatever its kind (see [`DynCollector`]).
pub type BoxedCollector = Box<dyn DynCollector>;

/// [`Collector`] in a form that can be boxed: `poll`'s future is boxed too.
/// Every collector is one (a blanket impl); the engine's guarded path takes
/// a boxed one too (`engine::poll_guarded_boxed`).
pub trait DynCollector: Send {
    /// [`Collector::poll`], boxed.
    fn poll_boxed(
        &mut self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<PollOutput, PollError>> + Send + '_>>;
    /// [`Collector::reset`].
    fn reset_boxed(&mut self);
}

impl<C: Collector> DynCollector for C {
    fn poll_boxed(
        &mut self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<PollOutput, PollError>> + Send + '_>> {
        Box::pin(self.poll())
    }
    fn reset_boxed(&mut self) {
        self.reset();
    }
}

/// How a collector asks for an early poll.
#[derive(Debug, Clone)]
pub struct WakeHandle {
    /// Notified (`notify_one`, so a wake during a poll is kept) when new input waits.
    pub notify: std::sync::Arc<tokio::sync::Notify>,
    /// Shortest time between the starts of two polls when woken (the engine
    /// never goes below 100 ms), so a busy input cannot cause a poll storm.
    pub min_gap: std::time::Duration,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
