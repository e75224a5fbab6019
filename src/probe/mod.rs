//! Fleet mode: `GET /probe?target=redis://host:6379`, the multi-target
//! pattern of the Go exporters (redis_exporter's `/scrape?target=`,
//! postgres_exporter's and mysqld_exporter's `/probe?target=&auth_module=`),
//! so that Prometheus' service discovery supplies the backends and one
//! perfwatch watches a fleet.
//!
//! A probe goes through the same parts as a configured target, never a
//! second client: the target and an auth set make the kind's table
//! ([`target::kind_table`]), which the kind's own validation turns into a
//! ready target ([`crate::collectors::KindInfo::build`]); its collector is
//! polled on the engine's guarded path ([`poll_guarded_boxed`]: hard timeout,
//! panic guard), and the reply renders the poll's families and the
//! per-target self-metrics a configured target has, under the same names.
//! A probe never shows on `/metrics` and never touches a configured target;
//! only the probes' own counters do ([`catalog`]).
//!
//! Decisions:
//! - **A hung backend costs only its own probe.** Each probe has a deadline:
//!   Prometheus' scrape timeout (`X-Prometheus-Scrape-Timeout-Seconds`)
//!   minus `timeout_offset`, at most `[probe] timeout`. A backend that does
//!   not answer by then is reported down in a reply that arrives before
//!   Prometheus gives up; nothing else waits for it.
//! - **Bounded.** At most `max_concurrent` probes poll at once and
//!   `max_queued` wait for a slot (until their deadline); one more is
//!   answered 503 at once. Prometheus spreads its targets' scrapes over the
//!   interval, so a short queue absorbs bursts that a plain 503 would turn
//!   into failed scrapes.
//! - **One connection per backend, kept.** Prometheus scrapes every
//!   interval, and a new connection per scrape would cost the backend a
//!   login each time (and lose the collector's counter windows). A backend
//!   is (kind, target, auth set); it keeps its collector (one connection)
//!   between probes, and two probes of it take turns. At most
//!   `max_backends` are kept (the least recently probed one makes room),
//!   and one not probed for `idle_timeout` is dropped with its connection.

pub mod catalog;
pub mod config;
pub mod target;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::catalog::MetricDef;
use crate::collectors::{KINDS, Target};
use crate::engine::{ExtraFamilies, Store, TargetKey, TargetState, poll_guarded_boxed};
use crate::exposition::{self, Families, HistogramData};
use crate::poll::{BoxedCollector, CommonTarget, ErrorReason, PollError, Timing, unix_now};
use crate::secret::redact;
use config::{ProbeAuth, ProbeSettings};
use target::{Address, PROBED_KINDS, ProbedKind, kind_table, resolve_kind};

/// The header Prometheus sends with its scrape timeout.
pub const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// What `/probe` answers.
#[derive(Debug)]
pub struct ProbeReply {
    /// The HTTP status.
    pub status: u16,
    /// The exposition (200) or a one-line reason (anything else).
    pub body: bytes::Bytes,
}

impl ProbeReply {
    /// Whether the body is an exposition.
    pub fn is_metrics(&self) -> bool {
        self.status == 200
    }
}

/// A request answered without polling: its status, the
/// `perfwatch_probe_rejected_total` reason, and why, for the body.
struct Reject {
    status: u16,
    reason: &'static str,
    message: String,
}

impl Reject {
    fn bad(message: String) -> Self {
        Self {
            status: 400,
            reason: "bad_request",
            message,
        }
    }
    fn busy(message: String) -> Self {
        Self {
            status: 503,
            reason: "concurrency",
            message,
        }
    }
}

/// The request parameters `/probe` knows.
const PARAMS: [&str; 3] = ["target", "auth_module", "kind"];

/// The fleet prober: the `[probe]` settings in force, the cached backends
/// and the probes' own counters.
pub struct Prober {
    store: Arc<Store>,
    active: ArcSwapOption<Active>,
    cache: Mutex<HashMap<BackendKey, Arc<Backend>>>,
    stats: Arc<Stats>,
}

/// The settings in force and the slots they allow.
struct Active {
    settings: ProbeSettings,
    /// `[global] interval`: what the collectors take as the time between
    /// polls (Prometheus' scrape interval, which no header tells).
    interval: Duration,
    slots: Arc<Semaphore>,
}

/// A backend: the kind, the target as written, the auth set's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BackendKey {
    kind: &'static str,
    target: String,
    auth: Option<String>,
}

/// A cached backend: its ready target and, behind a lock probes take in
/// turn, its collector and per-target state.
struct Backend {
    target: Target,
    slot: tokio::sync::Mutex<Slot>,
    last_used: Mutex<Instant>,
}

struct Slot {
    /// The collector and the timing it was made with (a probe with another
    /// timeout gets a new one).
    collector: Option<(BoxedCollector, Timing)>,
    /// A poll started and did not finish: its request was dropped (the
    /// client went away), maybe mid-reply, so the connection is not reused.
    interrupted: bool,
    state: TargetState,
}

impl Backend {
    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
    fn last_used(&self) -> Instant {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Prober {
    /// A prober with fleet mode off; [`Self::configure`] turns it on. Its
    /// own metrics are rendered into `store`'s `/metrics`.
    pub fn new(store: Arc<Store>) -> Arc<Self> {
        let stats = Arc::new(Stats::default());
        store.add_extra(stats.clone());
        Arc::new(Self {
            store,
            active: ArcSwapOption::empty(),
            cache: Mutex::new(HashMap::new()),
            stats,
        })
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<BackendKey, Arc<Backend>>> {
        // Every update is one insert or remove: a panic elsewhere cannot
        // leave the map half-changed.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a loaded config's `[probe]` section (`None`: fleet mode off)
    /// and `[global] interval`. A change drops every cached backend: they
    /// were built with the old auth sets.
    pub fn configure(&self, settings: Option<&ProbeSettings>, interval: Duration) {
        let current = self.active.load();
        let same = match (current.as_deref(), settings) {
            (Some(a), Some(s)) => a.settings == *s && a.interval == interval,
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        self.active.store(settings.map(|s| {
            Arc::new(Active {
                settings: s.clone(),
                interval,
                slots: Arc::new(Semaphore::new(s.config.max_concurrent)),
            })
        }));
        self.stats
            .enabled
            .store(settings.is_some(), Ordering::Relaxed);
        let dropped: Vec<Arc<Backend>> = self.lock_cache().drain().map(|(_, b)| b).collect();
        self.evicted("reload", dropped);
        match settings {
            Some(s) => {
                tracing::info!(
                    max_concurrent = s.config.max_concurrent,
                    auth_sets = s.config.auth.len(),
                    "fleet probes on /probe"
                );
                // A request names the host: without an allow-list, an auth
                // set's credentials go to whatever server it names.
                if s.allow.is_empty() && !s.config.auth.is_empty() {
                    tracing::warn!(
                        "[probe] has auth sets but no allow_targets: a /probe request can send their credentials to any host it names; set allow_targets"
                    );
                }
            }
            None if current.is_some() => tracing::info!("fleet probes off"),
            None => {}
        }
    }

    /// Drops `backends` (closing their connections) and counts them.
    fn evicted(&self, reason: &'static str, backends: Vec<Arc<Backend>>) {
        let n = backends.len();
        drop(backends);
        let cached = self.lock_cache().len();
        self.stats.cached.store(cached, Ordering::Relaxed);
        if n > 0 {
            *self.stats.lock().evicted.entry(reason).or_default() += n as u64;
        }
        self.store.touch();
    }

    /// Drops the backends not probed for `idle_timeout`, every quarter of
    /// it (1 s to 1 min), until `cancel`.
    pub fn spawn_janitor(self: &Arc<Self>, cancel: CancellationToken) {
        let prober = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let tick = prober
                    .active
                    .load()
                    .as_ref()
                    .map_or(Duration::from_secs(5), |a| {
                        (a.settings.config.idle_timeout / 4)
                            .clamp(Duration::from_secs(1), Duration::from_secs(60))
                    });
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(tick) => prober.close_idle(),
                }
            }
        });
    }

    /// Drops every backend idle for `idle_timeout` that no probe holds.
    fn close_idle(&self) {
        let Some(active) = self.active.load_full() else {
            return;
        };
        let idle = active.settings.config.idle_timeout;
        let removed: Vec<Arc<Backend>> = {
            let mut cache = self.lock_cache();
            // Only through the map does a probe get a backend, so one
            // nobody holds now (count 1) stays unheld while the lock is.
            let keys: Vec<BackendKey> = cache
                .iter()
                .filter(|(_, b)| Arc::strong_count(b) == 1 && b.last_used().elapsed() >= idle)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| cache.remove(k)).collect()
        };
        if !removed.is_empty() {
            tracing::debug!(
                backends = removed.len(),
                "closed idle fleet-probe connections"
            );
            self.evicted("idle", removed);
        }
    }

    /// Answers one `GET /probe`: `params` are the query's pairs,
    /// `scrape_timeout` the value of [`SCRAPE_TIMEOUT_HEADER`].
    pub async fn probe(
        &self,
        params: &[(String, String)],
        scrape_timeout: Option<&str>,
    ) -> ProbeReply {
        let started = Instant::now();
        let Some(active) = self.active.load_full() else {
            return self.rejected(Reject {
                status: 404,
                reason: "disabled",
                message:
                    "fleet probes are off: add a [probe] section to the config to serve /probe"
                        .into(),
            });
        };
        let request = match Request::parse(&active, params, scrape_timeout) {
            Ok(r) => r,
            Err(reject) => return self.rejected(reject),
        };
        let deadline = started + request.timeout;
        let permit = match self.admit(&active, deadline).await {
            Ok(p) => p,
            Err(reject) => return self.rejected(reject),
        };
        let backend = match self.backend(&active, &request) {
            Ok(b) => b,
            Err(reject) => return self.rejected(reject),
        };
        let timing = Timing {
            interval: active.interval,
            timeout: request.timeout,
        };
        let (outcome, body) = {
            let _in_flight = Gauge::enter(&self.stats.in_flight);
            self.poll(&backend, &request, timing, deadline).await
        };
        drop(permit);
        backend.touch();
        self.stats
            .finished(request.kind.section, outcome, started.elapsed());
        self.store.touch();
        ProbeReply {
            status: 200,
            body: body.into(),
        }
    }

    fn rejected(&self, reject: Reject) -> ProbeReply {
        *self.stats.lock().rejected.entry(reject.reason).or_default() += 1;
        self.store.touch();
        ProbeReply {
            status: reject.status,
            body: format!("{}\n", reject.message).into(),
        }
    }

    /// A slot, at once or after waiting (at most until `deadline`, and only
    /// when fewer than `max_queued` wait already).
    async fn admit(
        &self,
        active: &Active,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, Reject> {
        if let Ok(p) = active.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        let config = &active.settings.config;
        // Counted before the check, so that two requests cannot both take
        // the last place in the queue.
        let waiting = Gauge::enter(&self.stats.waiting);
        if waiting.before >= config.max_queued {
            return Err(Reject::busy(format!(
                "all {} fleet probe slots are taken (max_concurrent) and {} probes wait for one (max_queued)",
                config.max_concurrent, config.max_queued
            )));
        }
        match tokio::time::timeout_at(deadline, active.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Reject::busy(format!(
                "none of the {} fleet probe slots (max_concurrent) came free before the probe's deadline",
                config.max_concurrent
            ))),
        }
    }

    /// The cached backend of `request`, or a new one: built from its table
    /// by the kind's own validation (outside the lock: that reads password
    /// and TLS files), replacing the least recently probed backend nobody
    /// holds when `max_backends` are cached.
    fn backend(&self, active: &Active, request: &Request<'_>) -> Result<Arc<Backend>, Reject> {
        if let Some(b) = self.lock_cache().get(&request.key) {
            return Ok(b.clone());
        }
        let target = request.build()?;
        let mut replaced = Vec::new();
        let backend = {
            let mut cache = self.lock_cache();
            if let Some(b) = cache.get(&request.key) {
                // Another probe of it built it meanwhile.
                return Ok(b.clone());
            }
            if cache.len() >= active.settings.config.max_backends {
                let victim = cache
                    .iter()
                    .filter(|(_, b)| Arc::strong_count(b) == 1)
                    .min_by_key(|(_, b)| b.last_used())
                    .map(|(k, _)| k.clone());
                match victim.and_then(|k| cache.remove(&k)) {
                    Some(b) => replaced.push(b),
                    // Cannot happen while max_backends ≥ max_concurrent
                    // (checked at load): every held backend holds a slot.
                    None => {
                        return Err(Reject::busy(format!(
                            "all {} cached backends are being probed (max_backends)",
                            cache.len()
                        )));
                    }
                }
            }
            let timing = Timing {
                interval: active.interval,
                timeout: request.timeout,
            };
            let backend = Arc::new(Backend {
                slot: tokio::sync::Mutex::new(Slot {
                    collector: None,
                    interrupted: false,
                    state: TargetState::new(timing, target.peer_up()),
                }),
                target,
                last_used: Mutex::new(Instant::now()),
            });
            cache.insert(request.key.clone(), backend.clone());
            backend
        };
        self.evicted("capacity", replaced);
        Ok(backend)
    }

    /// Polls `backend` once on the engine's guarded path, its deadline
    /// `deadline` (waiting for another probe of it included); the outcome
    /// label and the reply's exposition.
    async fn poll(
        &self,
        backend: &Backend,
        request: &Request<'_>,
        timing: Timing,
        deadline: Instant,
    ) -> (&'static str, Vec<u8>) {
        let key = TargetKey {
            collector: request.kind.section,
            target: request.key.target.clone(),
        };
        let mut out = Families::new();
        let Ok(mut slot) = tokio::time::timeout_at(deadline, backend.slot.lock()).await else {
            // Another probe of the same backend (a second Prometheus) still
            // holds it, up to its own deadline.
            let mut state = TargetState::new(timing, backend.target.peer_up());
            let err = PollError::new(
                ErrorReason::Timeout,
                format!(
                    "{} target \"{}\": another probe of it did not finish before this one's deadline",
                    key.collector, key.target
                ),
            );
            state.failed(&err, request.timeout, &[]);
            crate::engine::self_metrics::render_target(
                &mut out,
                &key,
                &state,
                Instant::now().into_std(),
            );
            return ("timeout", encode(out));
        };
        let slot = &mut *slot;
        slot.state.timing = timing;
        if slot.interrupted || slot.collector.as_ref().is_some_and(|(_, t)| *t != timing) {
            slot.collector = None;
        }
        let (collector, _) = slot
            .collector
            .get_or_insert_with(|| (backend.target.boxed_collector(timing), timing));
        let remaining = deadline.saturating_duration_since(Instant::now());
        let polled = Instant::now();
        slot.interrupted = true;
        let result = poll_guarded_boxed(collector, key.collector, &key.target, remaining).await;
        slot.interrupted = false;
        let took = polled.elapsed();
        let (outcome, fresh) = match result {
            Ok(output) => {
                // The reply carries the families; the state keeps none (a
                // failed probe reports the backend down, not old numbers).
                slot.state
                    .succeeded(Arc::default(), unix_now(), took, Vec::new(), None);
                ("success", Some(output.families))
            }
            Err(e) => {
                collector.reset_boxed();
                let first = slot.state.up || slot.state.polls == 0;
                slot.state.failed(&e, took, &[]);
                if first {
                    tracing::warn!(collector = key.collector, target_name = %key.target, reason = e.reason.as_str(), error = %e.message, "fleet probe failed");
                } else {
                    tracing::debug!(collector = key.collector, target_name = %key.target, reason = e.reason.as_str(), error = %e.message, "fleet probe failed again");
                }
                let outcome = if e.reason == ErrorReason::Timeout {
                    "timeout"
                } else {
                    "error"
                };
                (outcome, None)
            }
        };
        crate::engine::self_metrics::render_target(
            &mut out,
            &key,
            &slot.state,
            Instant::now().into_std(),
        );
        if let Some(families) = fresh {
            out.extend(families.into_vec());
        }
        (outcome, encode(out))
    }
}

fn encode(families: Families) -> Vec<u8> {
    exposition::encode_text(&families.into_vec())
}

/// A `/probe` request, checked: what it names and how long it may take.
struct Request<'a> {
    key: BackendKey,
    kind: &'static ProbedKind,
    auth: Option<&'a ProbeAuth>,
    /// The kind's table for this backend.
    table: toml::Table,
    /// The probe's deadline, from its start.
    timeout: Duration,
}

impl<'a> Request<'a> {
    fn parse(
        active: &'a Active,
        params: &[(String, String)],
        scrape_timeout: Option<&str>,
    ) -> Result<Self, Reject> {
        let config = &active.settings.config;
        let mut given: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in params {
            let Some(known) = PARAMS.iter().find(|p| **p == k) else {
                return Err(Reject::bad(format!(
                    "unknown parameter \"{}\" (known: {})",
                    k.escape_default(),
                    PARAMS.join(", ")
                )));
            };
            if given.insert(known, v).is_some() {
                return Err(Reject::bad(format!("parameter \"{known}\" is given twice")));
            }
        }
        let Some(target) = given.get("target").copied() else {
            return Err(Reject::bad(
                "missing parameter \"target\" (/probe?target=redis://host:6379)".into(),
            ));
        };
        let auth = match given.get("auth_module").copied() {
            None => None,
            Some(name) => match config.auth.get_key_value(name) {
                Some((n, a)) => Some((n.as_str(), a)),
                None => {
                    let known: Vec<&str> = config.auth.keys().map(String::as_str).collect();
                    return Err(Reject::bad(format!(
                        "unknown auth_module \"{}\" (configured: {})",
                        name.escape_default(),
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    )));
                }
            },
        };
        let addr = Address::parse(target).map_err(Reject::bad)?;
        let kind = resolve_kind(
            target,
            addr.scheme.as_deref(),
            given.get("kind").copied(),
            auth,
        )
        .map_err(Reject::bad)?;
        let allow = &active.settings.allow;
        if !allow.is_empty() && !allow.iter().any(|p| p.matches(&addr.host)) {
            return Err(Reject {
                status: 403,
                reason: "not_allowed",
                message: format!(
                    "host \"{}\" of target \"{}\" is not in [probe] allow_targets",
                    addr.host,
                    redact(target, &[])
                ),
            });
        }
        let table = kind_table(kind, &addr, auth.map(|(_, a)| a))
            .map_err(|e| Reject::bad(format!("target \"{}\": {e}", redact(target, &[]))))?;
        let timeout = probe_timeout(config, scrape_timeout).map_err(Reject::bad)?;
        Ok(Self {
            key: BackendKey {
                kind: kind.section,
                target: target.to_owned(),
                auth: auth.map(|(n, _)| n.to_owned()),
            },
            kind,
            auth: auth.map(|(_, a)| a),
            table,
            timeout,
        })
    }

    /// The ready target: the kind's own validation of the table. Its
    /// messages never quote a password; the auth set's is masked anyway.
    fn build(&self) -> Result<Target, Reject> {
        let Some(info) = KINDS.iter().find(|k| k.section == self.kind.section) else {
            return Err(Reject::bad(format!(
                "{} targets cannot be probed",
                self.kind.section
            )));
        };
        let common = CommonTarget {
            name: self.key.target.clone(),
            interval: None,
            timeout: None,
        };
        (info.build)(common, self.table.clone()).map_err(|problems| {
            let secret = self
                .auth
                .and_then(|a| a.password.as_ref())
                .map(|p| p.expose())
                .unwrap_or_default();
            let said: Vec<String> = problems
                .into_iter()
                .map(|(key, m)| match key.as_str() {
                    "" => m,
                    k => format!("{k}: {m}"),
                })
                .collect();
            Reject::bad(redact(
                &format!(
                    "{} target \"{}\": {}",
                    self.kind.section,
                    redact(&self.key.target, &[]),
                    said.join("; ")
                ),
                &[secret],
            ))
        })
    }
}

/// A probe's deadline: Prometheus' scrape timeout minus `timeout_offset`
/// (at least half of it), at most `[probe] timeout`, which is also the
/// deadline without the header.
fn probe_timeout(config: &config::ProbeConfig, header: Option<&str>) -> Result<Duration, String> {
    let Some(value) = header else {
        return Ok(config.timeout);
    };
    let secs: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0)
        .ok_or_else(|| {
            format!(
                "{SCRAPE_TIMEOUT_HEADER} \"{}\" is not a number of seconds",
                value.escape_default()
            )
        })?;
    let scrape = Duration::try_from_secs_f64(secs).unwrap_or(config.timeout);
    let budget = scrape.saturating_sub(config.timeout_offset).max(scrape / 2);
    Ok(budget.min(config.timeout))
}

/// Counts a gauge up while held (probes in flight, probes waiting).
struct Gauge<'a> {
    counter: &'a AtomicUsize,
    /// The count before this one entered.
    before: usize,
}

impl<'a> Gauge<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        let before = counter.fetch_add(1, Ordering::AcqRel);
        Self { counter, before }
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Bounds of `perfwatch_probe_duration_seconds`: a healthy Redis answers in
/// a millisecond, a hung backend takes the whole deadline (at most 25 s).
static DURATION_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The probes' own counters, rendered into `/metrics`.
#[derive(Default)]
struct Stats {
    /// Whether fleet mode is on: off and never used, nothing is rendered
    /// (a sidecar's `/metrics` stays as it was).
    enabled: AtomicBool,
    in_flight: AtomicUsize,
    waiting: AtomicUsize,
    cached: AtomicUsize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    probes: BTreeMap<(&'static str, &'static str), u64>,
    durations: BTreeMap<&'static str, HistogramData>,
    rejected: BTreeMap<&'static str, u64>,
    evicted: BTreeMap<&'static str, u64>,
}

/// Every outcome of a probe that polled.
const OUTCOMES: [&str; 3] = ["success", "error", "timeout"];
/// Every reason a request is answered without polling.
const REJECT_REASONS: [&str; 4] = ["bad_request", "not_allowed", "concurrency", "disabled"];
/// Every reason a cached backend is dropped.
const EVICT_REASONS: [&str; 3] = ["idle", "capacity", "reload"];

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Every update is one increment: a poisoned lock is still consistent.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finished(&self, kind: &'static str, outcome: &'static str, took: Duration) {
        let mut c = self.lock();
        *c.probes.entry((kind, outcome)).or_default() += 1;
        c.durations
            .entry(kind)
            .or_insert_with(|| HistogramData::new(&DURATION_BOUNDS))
            .observe(took.as_secs_f64());
    }
}

impl ExtraFamilies for Stats {
    fn render(&self, out: &mut Families) {
        let c = self.lock();
        if !self.enabled.load(Ordering::Relaxed) && c.probes.is_empty() && c.rejected.is_empty() {
            return;
        }
        // Every label value at 0 from the start, so that rate() works from
        // the first probe.
        for kind in PROBED_KINDS {
            for outcome in OUTCOMES {
                let n = c.probes.get(&(kind.section, outcome)).copied().unwrap_or(0);
                out.counter(
                    &catalog::PROBES_TOTAL,
                    &[("kind", kind.section), ("outcome", outcome)],
                    n as f64,
                );
            }
            let empty = HistogramData::new(&DURATION_BOUNDS);
            let h = c.durations.get(kind.section).unwrap_or(&empty);
            out.histogram(
                &catalog::PROBE_DURATION_SECONDS,
                &[("kind", kind.section)],
                h,
            );
        }
        let by_reason = |out: &mut Families,
                         def: &MetricDef,
                         reasons: &[&'static str],
                         counts: &BTreeMap<&'static str, u64>| {
            for r in reasons {
                let n = counts.get(r).copied().unwrap_or(0);
                out.counter(def, &[("reason", r)], n as f64);
            }
        };
        by_reason(
            out,
            &catalog::PROBE_REJECTED_TOTAL,
            &REJECT_REASONS,
            &c.rejected,
        );
        by_reason(
            out,
            &catalog::PROBE_BACKENDS_EVICTED_TOTAL,
            &EVICT_REASONS,
            &c.evicted,
        );
        for (def, v) in [
            (&catalog::PROBES_IN_FLIGHT, &self.in_flight),
            (&catalog::PROBES_WAITING, &self.waiting),
            (&catalog::PROBE_BACKENDS_CACHED, &self.cached),
        ] {
            out.gauge(def, &[], v.load(Ordering::Relaxed) as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> config::ProbeConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_deadline_follows_prometheus_within_the_configured_bound() {
        let c = config("timeout = \"10s\"\ntimeout_offset = \"500ms\"\n");
        let t = |h| probe_timeout(&c, h);
        assert_eq!(t(None), Ok(Duration::from_secs(10)));
        assert_eq!(t(Some("3")), Ok(Duration::from_millis(2500)));
        assert_eq!(
            t(Some("0.6")),
            Ok(Duration::from_millis(300)),
            "at least half"
        );
        assert_eq!(
            t(Some("60")),
            Ok(Duration::from_secs(10)),
            "at most timeout"
        );
        for bad in ["", "abc", "-1", "0", "NaN", "inf"] {
            let e = t(Some(bad)).unwrap_err();
            assert!(e.contains("is not a number of seconds"), "{bad}: {e}");
        }
    }
}
