//! The poll engine: one loop per target, and the [`Store`] the loops write to
//! and `/metrics` reads from.
//!
//! Decisions:
//! - Every target has its own task, interval and hard timeout, so a hung
//!   target delays nothing but itself.
//! - A poll's families replace the target's previous set in one step; a
//!   target that has not succeeded for 3 intervals serves only self-metrics.
//! - `/metrics` never polls. It serves bytes rendered from the store; a render
//!   happens when a poll changed the store (or the process metrics are older
//!   than a second), and a scrape that finds another render under way serves
//!   the previous bytes instead of waiting.

pub mod history;
pub mod self_metrics;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use prometheus::proto::MetricFamily;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::catalog::MetricDef;
use crate::exposition::{self, Families};
use crate::poll::Timing;
use crate::poll::{Collector, ErrorReason, PollError, PollOutput, unix_now};

/// Identifies one target: its kind and its configured name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    /// The kind, e.g. `redis` (the `collector` label).
    pub collector: &'static str,
    /// The configured name (the `target` label).
    pub target: String,
}

/// What the store knows about one target.
#[derive(Debug, Clone)]
pub struct TargetState {
    /// Interval and timeout, to judge staleness.
    pub timing: Timing,
    /// Whether the last poll succeeded.
    pub up: bool,
    /// Whether the server answered the last poll: it succeeded, or failed
    /// with an error the server itself returned (a query or a privilege),
    /// which the Go exporters still count as up. Fills [`Self::peer_up`].
    pub answered: bool,
    /// The kind's peer exporter's up gauge (`redis_up`, `pg_up`,
    /// `mysql_up`), so that the community mixins' "down" alerts work.
    pub peer_up: Option<&'static MetricDef>,
    /// Whether any poll has finished (for `/-/ready`).
    pub polled: bool,
    /// Families of the last successful poll.
    pub families: Arc<Vec<MetricFamily>>,
    /// Families a failed poll could still read
    /// ([`crate::poll::PollError::partial`]),
    /// and when: served while fresh, whatever [`Self::families`]' age.
    pub partial: Arc<Vec<MetricFamily>>,
    /// Monotonic time of the last failed poll that brought [`Self::partial`].
    pub partial_at: Option<Instant>,
    /// Monotonic time of the last success (for staleness).
    pub last_success: Option<Instant>,
    /// Wall-clock time of the last success, seconds since the epoch.
    pub last_success_unix: Option<f64>,
    /// Duration of the last poll in seconds.
    pub last_duration: f64,
    /// Polls finished, successful or not.
    pub polls: u64,
    /// Failed polls by reason.
    pub errors: BTreeMap<ErrorReason, u64>,
    /// The last error message, for the landing page and logs.
    pub last_error: Option<String>,
    /// Headline numbers for the landing page.
    pub headline: Vec<(String, String)>,
    /// Structured details of the last successful poll (JSON API).
    pub details: Option<serde_json::Value>,
}

impl TargetState {
    /// A target not polled yet.
    pub fn new(timing: Timing, peer_up: Option<&'static MetricDef>) -> Self {
        Self {
            timing,
            up: false,
            answered: false,
            peer_up,
            polled: false,
            families: Arc::new(Vec::new()),
            partial: Arc::new(Vec::new()),
            partial_at: None,
            last_success: None,
            last_success_unix: None,
            last_duration: 0.0,
            polls: 0,
            errors: BTreeMap::new(),
            last_error: None,
            headline: Vec::new(),
            details: None,
        }
    }

    /// Records a successful poll: `families` replace the previous set.
    pub fn succeeded(
        &mut self,
        families: Arc<Vec<MetricFamily>>,
        now_unix: f64,
        took: Duration,
        headline: Vec<(String, String)>,
        details: Option<serde_json::Value>,
    ) {
        self.up = true;
        self.answered = true;
        self.polled = true;
        self.polls += 1;
        self.families = families;
        self.partial = Arc::new(Vec::new());
        self.partial_at = None;
        self.last_success = Some(Instant::now());
        self.last_success_unix = Some(now_unix);
        self.last_duration = took.as_secs_f64();
        self.last_error = None;
        self.headline = headline;
        self.details = details;
    }

    /// Records a failed poll. The previous families are kept until they go
    /// stale, except those in `dropped` (what the collector says describes
    /// the target's answer right now).
    pub fn failed(&mut self, err: &PollError, took: Duration, dropped: &[&MetricDef]) {
        if self
            .families
            .iter()
            .any(|f| dropped.iter().any(|d| d.name == f.name()))
        {
            self.families = Arc::new(
                self.families
                    .iter()
                    .filter(|f| !dropped.iter().any(|d| d.name == f.name()))
                    .cloned()
                    .collect(),
            );
        }
        if let Some(partial) = &err.partial {
            // The fresher reading replaces the last good poll's families
            // of the same names.
            let fresh = |f: &MetricFamily| partial.iter().any(|p| p.name() == f.name());
            if self.families.iter().any(fresh) {
                self.families = Arc::new(
                    self.families
                        .iter()
                        .filter(|f| !fresh(f))
                        .cloned()
                        .collect(),
                );
            }
            self.partial = partial.clone();
            self.partial_at = Some(Instant::now());
        }
        self.up = false;
        self.answered = err.reason.server_answered();
        self.polled = true;
        self.polls += 1;
        self.last_duration = took.as_secs_f64();
        *self.errors.entry(err.reason).or_default() += 1;
        self.last_error = Some(err.message.clone());
    }

    /// Whether the target's series are too old to serve (3 intervals without success).
    pub fn is_stale(&self, now: Instant) -> bool {
        match self.last_success {
            Some(t) => now.duration_since(t) > self.timing.interval * 3,
            None => true,
        }
    }

    /// The families to serve at `now`: the last good poll's unless stale,
    /// and those failed polls still read while they keep coming (the same
    /// 3 intervals).
    pub fn served(&self, now: Instant) -> Vec<&Arc<Vec<MetricFamily>>> {
        let mut out = Vec::new();
        if !self.is_stale(now) {
            out.push(&self.families);
        }
        if self
            .partial_at
            .is_some_and(|t| now.duration_since(t) <= self.timing.interval * 3)
        {
            out.push(&self.partial);
        }
        out
    }
}

/// One rendered exposition.
pub struct Rendered {
    generation: u64,
    at: Instant,
    /// The text format body.
    pub text: Bytes,
    gzip: OnceLock<Bytes>,
}

impl Rendered {
    /// The body gzip-compressed, computed once per render.
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                // Writing to a Vec cannot fail.
                let _ = enc.write_all(&self.text);
                Bytes::from(enc.finish().unwrap_or_default())
            })
            .clone()
    }
}

/// Process-wide facts the renderer adds beside the targets.
#[derive(Debug, Clone)]
pub struct GlobalState {
    /// Whether the last config (re)load succeeded.
    pub reload_ok: bool,
    /// When the config was last loaded successfully (unix seconds).
    pub reload_success_unix: f64,
    /// Reload attempts that failed.
    pub reload_failures: u64,
}

/// Shared state between the poll loops and the HTTP server.
pub struct Store {
    targets: Mutex<BTreeMap<TargetKey, TargetState>>,
    globals: Mutex<GlobalState>,
    generation: AtomicU64,
    rendered: ArcSwap<Rendered>,
    render_lock: Mutex<()>,
    process: Option<prometheus::process_collector::ProcessCollector>,
    /// Extra families computed from the whole store after polls (phase triggers).
    derived: Mutex<Arc<Vec<MetricFamily>>>,
    /// What the status page charts: bounded, fed by the polls above.
    history: Mutex<history::History>,
    /// The signals the history keeps (none: no history).
    signals: &'static [history::Signal],
    /// Where slow-log and database targets exchange examples and plans
    /// (here so that it outlives reloads).
    explain: Arc<crate::explain::Board>,
    /// Families rendered from outside the store (the fleet probes'
    /// self-metrics), asked for at every render.
    extra: Mutex<Vec<Arc<dyn ExtraFamilies>>>,
}

/// A source of families that `/metrics` renders beside the store's (the
/// fleet probes' own metrics): it keeps its state itself and calls
/// [`Store::touch`] when that changed, so the next scrape renders again.
pub trait ExtraFamilies: Send + Sync {
    /// Adds the source's families as they are now.
    fn render(&self, out: &mut Families);
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// How old the process metrics in a served body may be.
const PROCESS_METRICS_MAX_AGE: Duration = Duration::from_secs(1);

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            targets: Mutex::new(BTreeMap::new()),
            globals: Mutex::new(GlobalState {
                reload_ok: true,
                reload_success_unix: unix_now(),
                reload_failures: 0,
            }),
            generation: AtomicU64::new(1),
            rendered: ArcSwap::from_pointee(Rendered {
                generation: 0,
                at: Instant::now(),
                text: Bytes::new(),
                gzip: OnceLock::new(),
            }),
            render_lock: Mutex::new(()),
            process: Some(prometheus::process_collector::ProcessCollector::for_self()),
            derived: Mutex::new(Arc::new(Vec::new())),
            history: Mutex::new(history::History::default()),
            signals: &[],
            explain: Arc::default(),
            extra: Mutex::new(Vec::new()),
        }
    }

    /// The board where slow-log targets post examples and database targets
    /// post plans (see `crate::explain`).
    pub fn explain_board(&self) -> &Arc<crate::explain::Board> {
        &self.explain
    }

    /// An empty store whose polls also feed the history of `signals`
    /// (what the status page charts).
    pub fn with_history(signals: &'static [history::Signal]) -> Self {
        Self {
            signals,
            ..Self::new()
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Renders `source`'s families into every `/metrics` from now on.
    pub fn add_extra(&self, source: Arc<dyn ExtraFamilies>) {
        self.extra
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(source);
        self.bump();
    }

    /// Says that an extra source's families changed: the next scrape of
    /// `/metrics` renders again instead of serving the previous bytes.
    pub fn touch(&self) {
        self.bump();
    }

    fn with_targets<R>(&self, f: impl FnOnce(&mut BTreeMap<TargetKey, TargetState>) -> R) -> R {
        // A poisoned lock only means a panic elsewhere mid-update; the map is
        // still consistent (every update is a single assignment), so keep going.
        let mut guard = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    fn with_history_lock<R>(&self, f: impl FnOnce(&mut history::History) -> R) -> R {
        // As with the targets: every update leaves the history consistent.
        let mut guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Adds a target (before its loop starts), so `/-/ready` waits for it.
    pub fn register(&self, key: TargetKey, timing: Timing, peer_up: Option<&'static MetricDef>) {
        self.with_targets(|t| t.insert(key, TargetState::new(timing, peer_up)));
        self.bump();
    }

    /// Forgets a target and all its series (config reload removed it).
    pub fn remove(&self, key: &TargetKey) {
        self.with_targets(|t| t.remove(key));
        self.with_history_lock(|h| h.targets.remove(key));
        self.bump();
    }

    /// Records a successful poll.
    pub fn record_success(&self, key: &TargetKey, out: PollOutput, took: Duration) {
        self.record_success_with(key, out, None, took);
    }

    /// Records a successful poll with the collector's structured details.
    pub fn record_success_with(
        &self,
        key: &TargetKey,
        out: PollOutput,
        details: Option<serde_json::Value>,
        took: Duration,
    ) {
        let families = Arc::new(out.families.into_vec());
        // One clock reading for the history's point and the target's
        // last-success time, so a point can be matched with a scrape.
        let now_unix = unix_now();
        self.with_history_lock(|h| {
            h.targets.entry(key.clone()).or_default().record(
                self.signals,
                key.collector,
                &families,
                now_unix,
            );
        });
        self.with_targets(|t| {
            if let Some(s) = t.get_mut(key) {
                s.succeeded(families, now_unix, took, out.headline, details);
            }
        });
        self.bump();
    }

    /// Records a failed poll (see [`TargetState::failed`]).
    pub fn record_failure(
        &self,
        key: &TargetKey,
        err: &PollError,
        took: Duration,
        dropped: &[&crate::catalog::MetricDef],
    ) {
        let now_unix = unix_now();
        self.with_history_lock(|h| {
            if let Some(t) = h.targets.get_mut(key) {
                t.prune(now_unix);
            }
        });
        self.with_targets(|t| {
            if let Some(s) = t.get_mut(key) {
                s.failed(err, took, dropped);
            }
        });
        self.bump();
    }

    /// Records a config reload attempt.
    pub fn record_reload(&self, ok: bool) {
        {
            let mut g = self.globals.lock().unwrap_or_else(|e| e.into_inner());
            g.reload_ok = ok;
            if ok {
                g.reload_success_unix = unix_now();
            } else {
                g.reload_failures += 1;
            }
        }
        self.bump();
    }

    /// Replaces the families derived from the whole store (phase triggers).
    pub fn set_derived(&self, families: Vec<MetricFamily>) {
        *self.derived.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(families);
        self.bump();
    }

    /// Appends one evaluation of the phase triggers to the history.
    pub fn record_triggers(&self, points: &[history::TriggerPoint]) {
        let now = unix_now();
        self.with_history_lock(|h| h.record_triggers(points, now));
    }

    /// A copy of the history of every target (or only of those named
    /// `only`), copied out under the lock and sorted as the store is.
    pub fn history(&self, only: Option<&str>) -> Vec<(TargetKey, Vec<history::Series>)> {
        self.with_history_lock(|h| {
            h.targets
                .iter()
                .filter(|(k, _)| only.is_none_or(|o| k.target == o))
                .map(|(k, t)| (k.clone(), t.copy()))
                .collect()
        })
    }

    /// A copy of one phase trigger's history (value, threshold, active).
    pub fn trigger_history(&self, phase: &str, trigger: &str) -> Vec<history::Series> {
        self.with_history_lock(|h| h.trigger(phase, trigger))
    }

    /// A copy of every target's state.
    pub fn targets(&self) -> BTreeMap<TargetKey, TargetState> {
        self.with_targets(|t| t.clone())
    }

    /// True once every registered target has finished at least one poll.
    pub fn ready(&self) -> bool {
        self.with_targets(|t| t.values().all(|s| s.polled))
    }

    /// The families of every target that is not stale, merged (what `/metrics`
    /// serves, minus self and process metrics).
    pub fn target_families(&self) -> Vec<MetricFamily> {
        let now = Instant::now();
        let sets: Vec<Arc<Vec<MetricFamily>>> =
            self.with_targets(|t| t.values().flat_map(|s| s.served(now)).cloned().collect());
        exposition::merge(sets.iter().map(|s| s.as_slice()))
    }

    /// The exposition to serve. Re-renders when the store changed; never waits
    /// for a render already under way in another request.
    pub fn metrics(&self) -> Arc<Rendered> {
        let current = self.rendered.load_full();
        let generation = self.generation.load(Ordering::Acquire);
        let fresh =
            current.generation == generation && current.at.elapsed() < PROCESS_METRICS_MAX_AGE;
        if fresh {
            return current;
        }
        let Ok(_guard) = self.render_lock.try_lock() else {
            if current.generation != 0 {
                return current;
            }
            // First render ever: wait for whoever is doing it (microseconds).
            let _guard = self.render_lock.lock().unwrap_or_else(|e| e.into_inner());
            return self.rendered.load_full();
        };
        let rendered = Arc::new(self.render(generation));
        self.rendered.store(rendered.clone());
        rendered
    }

    fn render(&self, generation: u64) -> Rendered {
        let now = Instant::now();
        let targets = self.targets();
        let globals = self
            .globals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let history_points = self.with_history_lock(|h| h.points());
        let mut all = Families::new();
        self_metrics::render(&mut all, &targets, &globals, history_points, now);
        if let Some(p) = &self.process {
            all.extend(prometheus::core::Collector::collect(p));
        }
        for set in targets.values().flat_map(|s| s.served(now)) {
            all.extend(set.iter().cloned());
        }
        all.extend(
            self.derived
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        let extra = self.extra.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for source in extra {
            source.render(&mut all);
        }
        Rendered {
            generation,
            at: now,
            text: Bytes::from(exposition::encode_text(&all.into_vec())),
            gzip: OnceLock::new(),
        }
    }
}

/// Everything a target's loop needs except the collector itself.
pub struct PollLoop {
    /// Which target.
    pub key: TargetKey,
    /// Interval and timeout.
    pub timing: Timing,
    /// Where results go.
    pub store: Arc<Store>,
    /// Cancelled when the target is removed or perfwatch shuts down.
    pub cancel: CancellationToken,
    /// Woken after every finished poll (phase triggers evaluate then).
    pub polled: Arc<tokio::sync::Notify>,
    /// The kind's peer-exporter up gauge (see [`TargetState::peer_up`]).
    pub peer_up: Option<&'static MetricDef>,
}

/// A running target loop.
pub struct TargetHandle {
    cancel: CancellationToken,
    join: JoinHandle<()>,
}

impl TargetHandle {
    /// Stops the loop and waits for it (it drops its connections on the way out).
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.join.await;
    }
}

/// First retry after a failure; doubles per consecutive failure up to the interval.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Shortest time between two poll starts brought forward by a wake.
const MIN_WAKE_GAP: Duration = Duration::from_millis(100);

impl PollLoop {
    /// Spawns the loop for `collector` on the current tokio runtime.
    pub fn spawn<C: Collector>(self, collector: C) -> TargetHandle {
        self.store
            .register(self.key.clone(), self.timing, self.peer_up);
        let cancel = self.cancel.clone();
        let join = tokio::spawn(self.run(collector));
        TargetHandle { cancel, join }
    }

    async fn run<C: Collector>(self, mut collector: C) {
        let Timing { interval, timeout } = self.timing;
        // Spread the first polls so that many targets do not hit at once.
        let jitter = interval
            .mul_f64(rand::random::<f64>() * 0.1)
            .min(Duration::from_secs(2));
        let mut next = tokio::time::Instant::now() + jitter;
        let mut failures: u32 = 0;
        let wake = collector.wake();
        let mut last_started: Option<tokio::time::Instant> = None;
        loop {
            // A wake brings the next poll forward, never closer than the
            // minimum gap to the previous one; while the target is failing
            // the backoff alone decides.
            let woken = async {
                match wake.as_ref().filter(|_| failures == 0) {
                    Some(w) => {
                        w.notify.notified().await;
                        if let Some(s) = last_started {
                            tokio::time::sleep_until(s + w.min_gap.max(MIN_WAKE_GAP)).await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = tokio::time::sleep_until(next) => {}
                _ = woken => {}
            }
            let started = tokio::time::Instant::now();
            last_started = Some(started);
            if let Some(w) = &wake {
                // This poll reads whatever woke us so far: only a wake from
                // now on asks for another one.
                let _ = futures_util::FutureExt::now_or_never(w.notify.notified());
            }
            let outcome = tokio::select! {
                _ = self.cancel.cancelled() => break,
                r = poll_guarded(&mut collector, self.key.collector, &self.key.target, timeout) => r,
            };
            let took = started.elapsed();
            match outcome {
                Ok(out) => {
                    if failures > 0 {
                        tracing::info!(collector = self.key.collector, target_name = %self.key.target, "target is up again");
                    }
                    failures = 0;
                    self.store
                        .record_success_with(&self.key, out, collector.details(), took);
                    next = started + interval;
                }
                Err(e) => {
                    collector.reset();
                    if failures == 0 {
                        tracing::warn!(collector = self.key.collector, target_name = %self.key.target, reason = e.reason.as_str(), error = %e.message, "poll failed");
                    } else {
                        tracing::debug!(collector = self.key.collector, target_name = %self.key.target, reason = e.reason.as_str(), error = %e.message, "poll failed again");
                    }
                    failures = failures.saturating_add(1);
                    self.store
                        .record_failure(&self.key, &e, took, collector.dropped_on_failure());
                    // Retry a quick failure (connection refused) sooner than
                    // the interval so recovery shows fast, backing off to the
                    // interval; never poll more often than every FIRST_RETRY.
                    let backoff = FIRST_RETRY
                        .saturating_mul(1 << failures.min(16).saturating_sub(1))
                        .min(interval);
                    next = (tokio::time::Instant::now() + backoff).min(started + interval);
                    if next <= tokio::time::Instant::now() {
                        next = tokio::time::Instant::now() + FIRST_RETRY.min(interval);
                    }
                }
            }
            self.polled.notify_waiters();
        }
    }
}

/// One poll of `collector` under the hard `timeout`, with the panic guard:
/// the path every poll takes, in the loops and in `perfwatch once`.
pub async fn poll_guarded<C: Collector>(
    collector: &mut C,
    kind: &str,
    target: &str,
    timeout: Duration,
) -> Result<PollOutput, PollError> {
    guarded(collector.poll(), kind, target, timeout).await
}

/// [`poll_guarded`] of a boxed collector (a fleet probe's, see the `probe`
/// module).
pub async fn poll_guarded_boxed(
    collector: &mut crate::poll::BoxedCollector,
    kind: &str,
    target: &str,
    timeout: Duration,
) -> Result<PollOutput, PollError> {
    guarded(collector.poll_boxed(), kind, target, timeout).await
}

/// The guard of [`poll_guarded`] around one poll's future.
async fn guarded(
    poll: impl std::future::Future<Output = Result<PollOutput, PollError>>,
    kind: &str,
    target: &str,
    timeout: Duration,
) -> Result<PollOutput, PollError> {
    // A panic in a collector is a bug, but it must cost one poll of one
    // target, not the target's loop or the process.
    let guarded = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(poll));
    match tokio::time::timeout(timeout, guarded).await {
        Ok(Ok(result)) => result,
        Ok(Err(_panic)) => Err(PollError::new(
            ErrorReason::Internal,
            format!("{kind} target \"{target}\": the collector panicked (a bug; please report it)"),
        )),
        Err(_) => Err(PollError::new(
            ErrorReason::Timeout,
            format!(
                "{kind} target \"{target}\": poll did not finish within {}",
                humantime::format_duration(timeout)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Panics on its first poll, then succeeds.
    struct Flaky(u32);

    impl Collector for Flaky {
        async fn poll(&mut self) -> Result<PollOutput, PollError> {
            self.0 += 1;
            if self.0 == 1 {
                panic!("collector bug");
            }
            Ok(PollOutput::default())
        }
        fn reset(&mut self) {}
    }

    fn redis_key(target: &str) -> TargetKey {
        TargetKey {
            collector: "redis",
            target: target.into(),
        }
    }

    /// The peer up gauge follows reachability, not success: a server that
    /// answered with an error is up for the Go exporters' mixins.
    #[test]
    fn the_peer_up_gauge_is_zero_only_when_the_server_did_not_answer() {
        let store = Store::new();
        let key = redis_key("cache");
        let peer_up = &crate::collectors::redis::catalog::UP;
        let timing = Timing {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
        };
        store.register(key.clone(), timing, Some(peer_up));
        let read = |store: &Store| {
            let text = String::from_utf8(store.metrics().text.to_vec()).unwrap();
            text.lines()
                .find(|l| l.starts_with("redis_up{"))
                .unwrap_or_else(|| panic!("no redis_up in {text}"))
                .to_owned()
        };
        assert_eq!(
            read(&store),
            r#"redis_up{target="cache"} 0"#,
            "before a poll"
        );
        let took = Duration::from_millis(1);
        store.record_success(&key, PollOutput::default(), took);
        assert_eq!(read(&store), r#"redis_up{target="cache"} 1"#);
        let fail = |reason| PollError::new(reason, "x");
        store.record_failure(&key, &fail(ErrorReason::Query), took, &[]);
        assert_eq!(
            read(&store),
            r#"redis_up{target="cache"} 1"#,
            "a query error"
        );
        for reason in [
            ErrorReason::Connect,
            ErrorReason::Auth,
            ErrorReason::Timeout,
            ErrorReason::Tls,
        ] {
            store.record_success(&key, PollOutput::default(), took);
            store.record_failure(&key, &fail(reason), took, &[]);
            assert_eq!(read(&store), r#"redis_up{target="cache"} 0"#, "{reason:?}");
        }
    }

    /// A failed poll's partial families replace the last good poll's of
    /// the same names, are served while failed polls keep bringing them
    /// (even after the rest went stale), and go with the next success.
    #[test]
    fn partial_families_of_failed_polls_replace_and_outlive_the_stale_rest() {
        use crate::collectors::redis::catalog::{CONNECTED_CLIENTS, SENTINEL_MASTER_ADDRESSES};
        let store = Store::new();
        let key = redis_key("ha");
        let timing = Timing {
            interval: Duration::from_millis(20),
            timeout: Duration::from_millis(10),
        };
        store.register(key.clone(), timing, None);
        let t = [("target", "ha")];
        let families = |addresses: f64| {
            let mut f = Families::new();
            f.gauge(&SENTINEL_MASTER_ADDRESSES, &t, addresses);
            f
        };
        let read = |store: &Store, name: &str| {
            let text = String::from_utf8(store.metrics().text.to_vec()).unwrap();
            text.lines()
                .find(|l| l.starts_with(&format!("{name}{{")))
                .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        };
        let took = Duration::from_millis(1);
        let mut good = families(1.0);
        good.gauge(&CONNECTED_CLIENTS, &t, 3.0);
        store.record_success(
            &key,
            PollOutput {
                families: good,
                headline: vec![],
            },
            took,
        );
        let failed =
            PollError::new(ErrorReason::Connect, "primary down").with_partial(families(2.0));
        store.record_failure(&key, &failed, took, &[]);
        assert_eq!(
            read(&store, "perfwatch_redis_sentinel_master_addresses").as_deref(),
            Some("2")
        );
        assert_eq!(
            read(&store, "redis_connected_clients").as_deref(),
            Some("3"),
            "kept until stale"
        );
        std::thread::sleep(timing.interval * 4);
        store.record_failure(&key, &failed, took, &[]);
        assert_eq!(read(&store, "redis_connected_clients"), None, "stale");
        assert_eq!(
            read(&store, "perfwatch_redis_sentinel_master_addresses").as_deref(),
            Some("2")
        );
        std::thread::sleep(timing.interval * 4);
        store.record_failure(&key, &PollError::new(ErrorReason::Connect, "x"), took, &[]);
        assert_eq!(
            read(&store, "perfwatch_redis_sentinel_master_addresses"),
            None,
            "not brought again"
        );
        store.record_success(
            &key,
            PollOutput {
                families: families(1.0),
                headline: vec![],
            },
            took,
        );
        assert_eq!(
            read(&store, "perfwatch_redis_sentinel_master_addresses").as_deref(),
            Some("1")
        );
    }

    #[tokio::test]
    async fn a_panicking_poll_costs_one_poll_not_the_loop() {
        let store = Arc::new(Store::new());
        let key = TargetKey {
            collector: "test",
            target: "flaky".into(),
        };
        let handle = PollLoop {
            key: key.clone(),
            timing: Timing {
                interval: Duration::from_millis(50),
                timeout: Duration::from_millis(40),
            },
            store: store.clone(),
            cancel: CancellationToken::new(),
            polled: Arc::new(tokio::sync::Notify::new()),
            peer_up: None,
        }
        .spawn(Flaky(0));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = store.targets()[&key].clone();
            if s.up && s.errors.get(&ErrorReason::Internal) == Some(&1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "state: up={} errors={:?}",
                s.up,
                s.errors
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        handle.stop().await;
    }

    /// Counts its polls; wakes the engine through its handle.
    struct Woken {
        polls: Arc<AtomicU64>,
        started: Arc<Mutex<Vec<tokio::time::Instant>>>,
        notify: Arc<tokio::sync::Notify>,
    }

    impl Collector for Woken {
        async fn poll(&mut self) -> Result<PollOutput, PollError> {
            self.started
                .lock()
                .unwrap()
                .push(tokio::time::Instant::now());
            self.polls.fetch_add(1, Ordering::SeqCst);
            Ok(PollOutput::default())
        }
        fn reset(&mut self) {}
        fn wake(&self) -> Option<crate::poll::WakeHandle> {
            Some(crate::poll::WakeHandle {
                notify: self.notify.clone(),
                min_gap: Duration::from_millis(0),
            })
        }
    }

    #[tokio::test]
    async fn a_wake_polls_before_the_interval_but_not_in_a_storm() {
        let polls = Arc::new(AtomicU64::new(0));
        let started = Arc::new(Mutex::new(Vec::new()));
        let notify = Arc::new(tokio::sync::Notify::new());
        let handle = PollLoop {
            key: TargetKey {
                collector: "test",
                target: "woken".into(),
            },
            timing: Timing {
                interval: Duration::from_secs(3600),
                timeout: Duration::from_secs(10),
            },
            store: Arc::new(Store::new()),
            cancel: CancellationToken::new(),
            polled: Arc::new(tokio::sync::Notify::new()),
            peer_up: None,
        }
        .spawn(Woken {
            polls: polls.clone(),
            started: started.clone(),
            notify: notify.clone(),
        });
        let wait_polls = |n: u64| {
            let polls = polls.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(10);
                while polls.load(Ordering::SeqCst) < n {
                    assert!(Instant::now() < deadline, "no poll {n}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        // The first poll comes after the jitter (capped at 2 s), the next
        // one only when woken: the interval is an hour.
        wait_polls(1).await;
        notify.notify_one();
        wait_polls(2).await;
        // A burst of wakes is one poll, at least MIN_WAKE_GAP after the last.
        for _ in 0..100 {
            notify.notify_one();
        }
        wait_polls(3).await;
        let t = started.lock().unwrap().clone();
        assert!(
            t[2] - t[1] >= MIN_WAKE_GAP,
            "{:?} between polls",
            t[2] - t[1]
        );
        tokio::time::sleep(MIN_WAKE_GAP * 3).await;
        assert_eq!(polls.load(Ordering::SeqCst), 3, "one poll per burst");
        handle.stop().await;
    }
}
