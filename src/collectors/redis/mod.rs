//! The Redis (and Valkey) collector.
//!
//! Per poll, one pipelined round trip on one persistent connection: `INFO`
//! (only the sections we read) and `SLOWLOG GET`/`LEN`. The optional key
//! sampler adds bounded SCAN batches, the optional key checks a few
//! pipelines (`key_checks.rs`). What a poll reads is bounded in bytes
//! (`max_reply_bytes`, see `connection.rs`), and the INFO families with a
//! label per command, error code or database in series (`top.rs`). Raw INFO
//! facts keep redis_exporter's names and labels (plus `target`) so its
//! dashboards work; perfwatch's own judgements (hit ratio windows, memory
//! ratio, eviction rate, key groups) are under `perfwatch_`.
//!
//! Layout: `config.rs` (the `[[redis]]` table), `connection.rs` (the
//! byte-bounded connection), `info.rs` (pure INFO parser), `top.rs` (top-N +
//! `other` of the INFO families), `slowlog.rs` (pure SLOWLOG parsing and
//! counting), `keys.rs` (key sampler), `key_checks.rs` (redis_exporter's
//! key checks), `sentinel.rs` (the primary resolved through Redis Sentinel
//! on every poll, and the sentinels' view), `cluster.rs` (a cluster node's
//! whole Redis Cluster, every node polled at once), `reply.rs` (reading
//! their structured replies), this file (capabilities, metric mapping).

pub mod catalog;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod connection;
pub(crate) mod hit_ratio;
pub(crate) mod info;
pub(crate) mod key_checks;
pub(crate) mod keys;
pub(crate) mod reply;
pub(crate) mod sentinel;
pub(crate) mod slowlog;
pub(crate) mod top;

use std::time::Instant;

use redis::aio::MultiplexedConnection;
use redis::{RedisError, Value};

use cluster::ClusterWatch;
pub use config::{KeyChecksConfig, KeySamplerConfig, RedisConfig, RedisReady, RedisTarget};
use connection::ConnectError;
use connection::{ReplyBudget, Session};
use hit_ratio::export_hit_ratio;
use info::Info;
use key_checks::KeyChecker;
use keys::{KeySampler, OwnLookups};
use sentinel::SentinelWatch;
use slowlog::SlowlogTracker;
use top::SeriesLimits;

use crate::catalog::MetricDef;
use crate::counter_window::{CounterWindows, WINDOWS, hit_ratio};
use crate::exposition::{Families, with_labels};
use crate::poll::Timing;
use crate::poll::{Collector, ErrorReason, PollError, PollOutput};

/// INFO sections perfwatch reads (Redis ≥ 7 accepts several in one call).
/// `cluster` is read for `cluster_enabled` only: a cluster node's target
/// watches the whole cluster (`cluster.rs`).
pub(crate) const INFO_SECTIONS: [&str; 11] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "commandstats",
    "errorstats",
    "keyspace",
    "cluster",
];

/// What a connected server supports, detected once per connection instead of
/// probing (and failing) on every poll.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Capabilities {
    /// `redis_version` (or Valkey's compatible version).
    pub version: String,
    /// `INFO a b c` (Redis ≥ 7); older servers get `INFO all`.
    pub multi_section_info: bool,
    /// SLOWLOG is allowed (not renamed or denied by ACL).
    pub slowlog: bool,
    /// MEMORY USAGE is available (Redis ≥ 4, allowed by ACL).
    pub memory_usage: bool,
}

struct Live {
    session: Session,
    caps: Capabilities,
}

/// A running Redis collector.
pub struct RedisCollector {
    cfg: RedisTarget,
    timing: Timing,
    live: Option<Live>,
    /// Bytes the current poll (or connect) may still read; the live
    /// connection's stream spends it.
    budget: ReplyBudget,
    /// A connection was attempted before: read `password_file` again.
    reconnecting: bool,
    hits: CounterWindows,
    evictions: CounterWindows,
    slowlog: SlowlogTracker,
    sampler: Option<KeySampler>,
    key_checks: Option<KeyChecker>,
    info_malformed_lines: u64,
    /// Lookups by our own key sampler since the server's counters were last
    /// reset, subtracted from the hit ratio.
    own_lookups: OwnLookups,
    /// The raw counters and epoch of the previous poll, to detect resets.
    last_raw: Option<(String, u64, u64)>,
    /// With `sentinels`: where the primary is, asked on every poll.
    sentinel: Option<SentinelWatch>,
    /// Once the url's server reported `cluster_enabled:1` (and `cluster`
    /// is on): the whole cluster, polled instead of the one node.
    cluster: Option<ClusterWatch>,
}

impl RedisCollector {
    /// A collector that connects on its first poll.
    pub fn new(cfg: &RedisTarget, timing: Timing) -> Self {
        let db = cfg
            .connection_info(false)
            .map_or(0, |i| i.redis_settings().db());
        let sampler = cfg.keys.clone().map(|k| KeySampler::new(k, db));
        let key_checks = cfg.key_checks.clone().map(|k| KeyChecker::new(k, db));
        Self {
            cfg: cfg.clone(),
            timing,
            live: None,
            budget: ReplyBudget::new(cfg.max_reply_bytes),
            reconnecting: false,
            hits: CounterWindows::new(),
            evictions: CounterWindows::new(),
            slowlog: SlowlogTracker::default(),
            sampler,
            key_checks,
            info_malformed_lines: 0,
            own_lookups: OwnLookups::default(),
            last_raw: None,
            sentinel: cfg.ready.sentinel.as_ref().map(SentinelWatch::new),
            cluster: None,
        }
    }

    async fn connect(&mut self) -> Result<Live, PollError> {
        let reread_secret = std::mem::replace(&mut self.reconnecting, true);
        let name = &self.cfg.common.name;
        let mut info = self.cfg.connection_info(reread_secret).map_err(|m| {
            PollError::new(ErrorReason::Io, format!("redis target \"{name}\": {m}"))
        })?;
        if let Some((host, port)) = self.sentinel.as_ref().and_then(|s| s.current.as_ref()) {
            info = config::at_addr(&info, host, *port).ok_or_else(|| {
                PollError::new(
                    ErrorReason::Protocol,
                    format!("redis target \"{name}\": the sentinels report an unusable address {host}:{port}"),
                )
            })?;
        }
        // The handshake has a budget of its own, as a poll does. Its time is
        // the engine's one deadline per poll.
        self.budget.reset();
        let plaintext = !matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        // What a failure during the handshake (connect, then the first
        // command) means, when the plain message would mislead.
        let handshake_error = |e: &RedisError, cert_requested: bool| {
            if cert_requested {
                // A TLS 1.3 server that wanted a client certificate closes
                // the connection after the handshake.
                return PollError::new(
                    ErrorReason::Tls,
                    format!(
                        "redis target \"{name}\": {}",
                        crate::tls::CertRequested::MESSAGE
                    ),
                );
            }
            let mut err = classify(name, &self.budget, e);
            // A TLS-only port closes a plaintext handshake at once.
            if plaintext && (e.is_io_error() || e.is_connection_dropped()) {
                err.message.push_str(
                    " (the server closed the connection during the handshake: if it accepts only TLS, use rediss://)",
                );
            }
            err
        };
        let mut session = connection::connect(&info, &self.budget, self.cfg.tls())
            .await
            .map_err(|e| match e {
                ConnectError::Tls(why) => {
                    PollError::new(ErrorReason::Tls, format!("redis target \"{name}\": {why}"))
                }
                ConnectError::Redis(e) => handshake_error(&e, false),
            })?;
        set_client_name(&mut session.conn).await;
        let caps = detect_capabilities(&mut session.conn).await.map_err(|e| {
            let requested = session.cert_requested.as_ref().is_some_and(|r| r.get());
            handshake_error(&e, requested)
        })?;
        tracing::debug!(target_name = %name, version = %caps.version, slowlog = caps.slowlog, memory_usage = caps.memory_usage, "connected to redis");
        Ok(Live { session, caps })
    }

    /// The url's server is a cluster node: from now on the target watches
    /// the whole cluster (see `cluster.rs`), starting with this poll.
    async fn start_cluster(&mut self) -> Result<PollOutput, PollError> {
        let name = &self.cfg.common.name;
        let template = self.cfg.connection_info(false).map_err(|m| {
            PollError::new(ErrorReason::Io, format!("redis target \"{name}\": {m}"))
        })?;
        tracing::info!(target_name = %name, "the server is a Redis Cluster node: watching the whole cluster");
        // Key checks are asked for explicitly: say once, loudly, that a
        // cluster target does not run them (the slowlog is on by default,
        // so its skip stays a debug line).
        if self.cfg.key_checks.is_some() {
            tracing::warn!(target_name = %name, "[redis.key_checks] is not run on a cluster target (set cluster = false and add a target per node to check keys)");
        }
        if self.cfg.slowlog_entries > 0 {
            tracing::debug!(target_name = %name, "the slowlog is not read from cluster targets");
        }
        let cluster = self.cluster.insert(ClusterWatch::new(&self.cfg, template));
        cluster.poll(&self.cfg, self.timing).await
    }

    fn export(
        &mut self,
        info: &Info,
        slowlog_len: Option<i64>,
        out: &mut Families,
    ) -> Vec<(String, String)> {
        let target = self.cfg.common.name.as_str();
        let t = [("target", target)];
        export_info(info, target, self.cfg.series_limits(), out);
        out.counter(
            &catalog::INFO_MALFORMED_LINES_TOTAL,
            &t,
            self.info_malformed_lines as f64,
        );

        // Hit ratio windows from the counter history, minus our own lookups.
        let now = Instant::now();
        let epoch = info.text("run_id").unwrap_or("");
        let raw_hits = info.number("keyspace_hits").unwrap_or(0.0) as u64;
        let raw_misses = info.number("keyspace_misses").unwrap_or(0.0) as u64;
        let reset = self
            .last_raw
            .as_ref()
            .is_some_and(|(e, h, m)| e != epoch || raw_hits < *h || raw_misses < *m);
        if reset {
            self.own_lookups = OwnLookups::default();
        }
        self.last_raw = Some((epoch.to_owned(), raw_hits, raw_misses));
        let hits = raw_hits.saturating_sub(self.own_lookups.hits);
        let misses = raw_misses.saturating_sub(self.own_lookups.misses);
        self.hits.observe(now, epoch, hits, misses);
        let evicted = info.number("evicted_keys").unwrap_or(0.0) as u64;
        self.evictions.observe(now, epoch, evicted, 0);
        // The whole keyspace: no key prefix.
        export_hit_ratio(&self.hits, hits, misses, target, "", out);
        for (label, window) in WINDOWS {
            if let Some(d) = self.evictions.delta(window) {
                out.gauge(
                    &catalog::EVICTED_KEYS_PER_SECOND,
                    &[("target", target), ("window", label)],
                    d.hits as f64 / d.covered.as_secs_f64(),
                );
            }
        }

        if let Some(len) = slowlog_len {
            out.gauge(&catalog::SLOWLOG_LENGTH, &t, len as f64);
            out.gauge(
                &catalog::SLOWLOG_LAST_ID,
                &t,
                self.slowlog.last_seen_id as f64,
            );
            self.slowlog.export(out, target);
        }
        if let Some(s) = &self.sampler {
            s.export(out, target);
        }
        if let Some(k) = &self.key_checks {
            k.export(out, target);
        }
        if let Some(s) = &self.sentinel {
            s.export(target, out);
        }

        let mut headline = vec![(
            "version".to_owned(),
            info.text("redis_version").unwrap_or("?").to_owned(),
        )];
        if let Some(r) = self.hits.delta(WINDOWS[1].1).and_then(|d| d.ratio()) {
            headline.push(("hit ratio 5m".into(), format!("{:.1} %", r * 100.0)));
        } else if let Some(r) = hit_ratio(hits, misses) {
            headline.push(("hit ratio (total)".into(), format!("{:.1} %", r * 100.0)));
        }
        if let Some((host, port)) = self.sentinel.as_ref().and_then(|s| s.current.as_ref()) {
            headline.push(("primary".into(), format!("{host}:{port}")));
        }
        if let Some(m) = info.number("used_memory") {
            headline.push(("memory".into(), format!("{:.1} MiB", m / 1048576.0)));
        }
        headline.push((
            "keys".into(),
            info.keyspace
                .iter()
                .map(|k| k.keys)
                .sum::<u64>()
                .to_string(),
        ));
        headline
    }
}

impl Collector for RedisCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        if self.sentinel.is_none() {
            return self.poll_target().await;
        }
        // The sentinels' view matters most while the primary they name
        // does not answer: the primary gets a deadline of its own inside
        // the engine's, and a failed poll still brings the sentinels'
        // families (PollError::partial).
        let deadline = self.timing.timeout.mul_f64(0.9);
        let name = self.cfg.common.name.clone();
        let result = match tokio::time::timeout(deadline, self.poll_target()).await {
            Ok(r) => r,
            Err(_) => {
                self.live = None;
                Err(PollError::new(
                    ErrorReason::Timeout,
                    format!(
                        "redis target \"{name}\": the primary did not answer within {}",
                        humantime::format_duration(deadline)
                    ),
                ))
            }
        };
        match (result, &self.sentinel) {
            (Err(e), Some(s)) if s.any_answered() => {
                let mut families = Families::new();
                s.export(&name, &mut families);
                Err(e.with_partial(families))
            }
            (r, _) => r,
        }
    }

    fn reset(&mut self) {
        self.live = None;
        if let Some(c) = &mut self.cluster {
            c.reset();
        }
    }
}

impl RedisCollector {
    /// One poll of the server (the primary the sentinels name, with
    /// sentinels), or of the whole cluster.
    async fn poll_target(&mut self) -> Result<PollOutput, PollError> {
        if let Some(sentinel) = &mut self.sentinel {
            // The sentinels share a quarter of the poll's time; the primary
            // gets the rest.
            if sentinel
                .resolve(self.cfg.tls(), self.timing.timeout / 4)
                .await
            {
                self.live = None;
            }
            if sentinel.current.is_none() {
                let why = if sentinel.any_answered() {
                    "no sentinel knows"
                } else {
                    "no sentinel answered about"
                };
                return Err(PollError::new(
                    ErrorReason::Connect,
                    format!(
                        "redis target \"{}\": {why} master \"{}\"",
                        self.cfg.common.name,
                        sentinel.master_name()
                    ),
                ));
            }
        }
        if let Some(cluster) = &mut self.cluster {
            return cluster.poll(&self.cfg, self.timing).await;
        }
        if self.live.is_none() {
            let live = self.connect().await?;
            self.live = Some(live);
            if let Some(s) = &mut self.sampler {
                s.restart_cycle();
            }
            if let Some(k) = &mut self.key_checks {
                k.restart();
            }
        }
        self.budget.reset();
        let Some(live) = self.live.as_mut() else {
            unreachable!("connected above")
        };
        let caps = live.caps.clone();
        let mut pipe = redis::pipe();
        if caps.multi_section_info {
            pipe.cmd("INFO").arg(&INFO_SECTIONS[..]);
        } else {
            pipe.cmd("INFO").arg("all");
        }
        let with_slowlog = caps.slowlog && self.cfg.slowlog_entries > 0;
        if with_slowlog {
            pipe.cmd("SLOWLOG").arg("GET").arg(self.cfg.slowlog_entries);
            pipe.cmd("SLOWLOG").arg("LEN");
        }
        let replies: Vec<Value> = pipe
            .query_async(&mut live.session.conn)
            .await
            .map_err(|e| classify(&self.cfg.common.name, &self.budget, &e))?;
        let text = match replies.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::VerbatimString { text, .. }) => text.clone(),
            other => {
                return Err(PollError::new(
                    ErrorReason::Protocol,
                    format!(
                        "redis target \"{}\": INFO answered {other:?}",
                        self.cfg.common.name
                    ),
                ));
            }
        };
        let (info, malformed) = info::parse_info(&text);
        self.info_malformed_lines += malformed as u64;
        if info.text("redis_version").is_none() {
            return Err(PollError::new(
                ErrorReason::Protocol,
                format!(
                    "redis target \"{}\": INFO reply has no redis_version",
                    self.cfg.common.name
                ),
            ));
        }
        if info.text("cluster_enabled") == Some("1") && self.cfg.cluster && self.sentinel.is_none()
        {
            // This poll's single-node numbers are dropped: from now on the
            // target is the whole cluster, starting with this poll.
            self.live = None;
            return self.start_cluster().await;
        }
        let epoch = info.text("run_id").unwrap_or("").to_owned();
        let slowlog_len = if with_slowlog {
            let (entries, _bad) = slowlog::parse_slowlog(replies.get(1).unwrap_or(&Value::Nil));
            self.slowlog.observe(&epoch, &entries);
            match replies.get(2) {
                Some(Value::Int(n)) => Some(*n),
                _ => None,
            }
        } else {
            None
        };
        // Lookups our own commands cause (key sampler, key checks): INFO
        // was read before them, so they show in the counters of the next
        // poll; export first, then add them.
        let mut own = OwnLookups::default();
        if let Some(sampler) = &mut self.sampler {
            let budget = self
                .timing
                .timeout
                .mul_f64(self.cfg.keys.as_ref().map_or(0.5, |k| k.time_budget_ratio));
            let o = sampler
                .step(
                    &mut live.session.conn,
                    budget,
                    &self.budget,
                    caps.memory_usage,
                )
                .await
                .map_err(|e| classify(&self.cfg.common.name, &self.budget, &e))?;
            own.hits += o.hits;
            own.misses += o.misses;
        }
        if let Some(checks) = &mut self.key_checks {
            let o = checks
                .step(&mut live.session.conn, &self.budget)
                .await
                .map_err(|e| classify(&self.cfg.common.name, &self.budget, &e))?;
            own.hits += o.hits;
            own.misses += o.misses;
        }
        let mut families = Families::new();
        let headline = self.export(&info, slowlog_len, &mut families);
        self.own_lookups.hits += own.hits;
        self.own_lookups.misses += own.misses;
        Ok(PollOutput { families, headline })
    }
}

/// Tags a new session so `CLIENT LIST` shows who we are. Best effort: a
/// server that refuses `CLIENT SETNAME` is polled all the same.
pub(crate) async fn set_client_name(conn: &mut MultiplexedConnection) {
    let _: Result<Value, _> = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("perfwatch")
        .query_async(conn)
        .await;
}

pub(crate) async fn detect_capabilities(
    conn: &mut MultiplexedConnection,
) -> Result<Capabilities, RedisError> {
    let server: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    let (info, _) = info::parse_info(&server);
    let version = info.text("redis_version").unwrap_or("0").to_owned();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let slowlog = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query_async::<i64>(conn)
        .await
        .is_ok();
    // MEMORY USAGE of a key that does not exist answers nil when the command
    // exists and we may run it.
    let memory_usage = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("perfwatch:capability-probe")
        .query_async::<Option<i64>>(conn)
        .await
        .is_ok();
    Ok(Capabilities {
        version,
        multi_section_info: major >= 7,
        slowlog,
        memory_usage,
    })
}

/// Maps a redis error to a reason and a message naming the target. A reply
/// over the byte budget is a protocol error naming the bound: the crate's
/// own error then only says that the read failed.
fn classify(target: &str, budget: &ReplyBudget, e: &RedisError) -> PollError {
    if budget.exceeded() {
        return PollError::new(
            ErrorReason::Protocol,
            format!(
                "redis target \"{target}\": the server sent more than max_reply_bytes ({} bytes) in one poll; connection dropped",
                budget.limit()
            ),
        );
    }
    let reason = match e.code() {
        Some("NOPERM") => ErrorReason::Permission,
        Some("NOAUTH" | "WRONGPASS") => ErrorReason::Auth,
        Some(_) => ErrorReason::Query,
        None if e.kind() == redis::ErrorKind::AuthenticationFailed => ErrorReason::Auth,
        None if e.is_timeout() => ErrorReason::Timeout,
        None if e.is_connection_refusal() || e.is_io_error() => ErrorReason::Connect,
        None => ErrorReason::Protocol,
    };
    PollError::new(reason, format!("redis target \"{target}\": {e}"))
}

/// INFO fields exported as gauges: (field, family, divisor to the base
/// unit). Dividing, not multiplying by 1e-6, gives redis_exporter's exact
/// values (519 / 1e6 is 0.000519; 519 * 1e-6 is not).
const GAUGES: &[(&str, &MetricDef, f64)] = &[
    ("uptime_in_seconds", &catalog::UPTIME_IN_SECONDS, 1.0),
    ("connected_clients", &catalog::CONNECTED_CLIENTS, 1.0),
    ("blocked_clients", &catalog::BLOCKED_CLIENTS, 1.0),
    ("maxclients", &catalog::CONFIG_MAXCLIENTS, 1.0),
    ("used_memory", &catalog::MEMORY_USED_BYTES, 1.0),
    ("used_memory_rss", &catalog::MEMORY_USED_RSS_BYTES, 1.0),
    ("used_memory_peak", &catalog::MEMORY_USED_PEAK_BYTES, 1.0),
    ("used_memory_lua", &catalog::MEMORY_USED_LUA_BYTES, 1.0),
    ("maxmemory", &catalog::MEMORY_MAX_BYTES, 1.0),
    (
        "mem_fragmentation_ratio",
        &catalog::MEM_FRAGMENTATION_RATIO,
        1.0,
    ),
    ("connected_slaves", &catalog::CONNECTED_SLAVES, 1.0),
    ("pubsub_channels", &catalog::PUBSUB_CHANNELS, 1.0),
    (
        "rdb_changes_since_last_save",
        &catalog::RDB_CHANGES_SINCE_LAST_SAVE,
        1.0,
    ),
    ("latest_fork_usec", &catalog::LATEST_FORK_SECONDS, 1e6),
    (
        "total_system_memory",
        &catalog::TOTAL_SYSTEM_MEMORY_BYTES,
        1.0,
    ),
    ("loading", &catalog::LOADING_DUMP_FILE, 1.0),
    // Persistence.
    (
        "rdb_bgsave_in_progress",
        &catalog::RDB_BGSAVE_IN_PROGRESS,
        1.0,
    ),
    (
        "rdb_last_save_time",
        &catalog::RDB_LAST_SAVE_TIMESTAMP_SECONDS,
        1.0,
    ),
    (
        "rdb_last_bgsave_time_sec",
        &catalog::RDB_LAST_BGSAVE_DURATION_SECONDS,
        1.0,
    ),
    (
        "rdb_current_bgsave_time_sec",
        &catalog::RDB_CURRENT_BGSAVE_DURATION_SECONDS,
        1.0,
    ),
    ("rdb_last_cow_size", &catalog::RDB_LAST_COW_SIZE_BYTES, 1.0),
    ("aof_enabled", &catalog::AOF_ENABLED, 1.0),
    (
        "aof_rewrite_in_progress",
        &catalog::AOF_REWRITE_IN_PROGRESS,
        1.0,
    ),
    (
        "aof_rewrite_scheduled",
        &catalog::AOF_REWRITE_SCHEDULED,
        1.0,
    ),
    (
        "aof_last_rewrite_time_sec",
        &catalog::AOF_LAST_REWRITE_DURATION_SECONDS,
        1.0,
    ),
    (
        "aof_current_rewrite_time_sec",
        &catalog::AOF_CURRENT_REWRITE_DURATION_SECONDS,
        1.0,
    ),
    ("aof_last_cow_size", &catalog::AOF_LAST_COW_SIZE_BYTES, 1.0),
    ("aof_current_size", &catalog::AOF_CURRENT_SIZE_BYTES, 1.0),
    ("aof_base_size", &catalog::AOF_BASE_SIZE_BYTES, 1.0),
    ("aof_pending_rewrite", &catalog::AOF_PENDING_REWRITE, 1.0),
    ("aof_buffer_length", &catalog::AOF_BUFFER_LENGTH, 1.0),
    (
        "aof_rewrite_buffer_length",
        &catalog::AOF_REWRITE_BUFFER_LENGTH,
        1.0,
    ),
    (
        "aof_pending_bio_fsync",
        &catalog::AOF_PENDING_BIO_FSYNC,
        1.0,
    ),
    ("aof_delayed_fsync", &catalog::AOF_DELAYED_FSYNC, 1.0),
    // Replication.
    ("master_repl_offset", &catalog::MASTER_REPL_OFFSET, 1.0),
    ("second_repl_offset", &catalog::SECOND_REPL_OFFSET, 1.0),
    ("repl_backlog_active", &catalog::REPL_BACKLOG_IS_ACTIVE, 1.0),
    (
        "repl_backlog_size",
        &catalog::REPLICATION_BACKLOG_BYTES,
        1.0,
    ),
    (
        "repl_backlog_first_byte_offset",
        &catalog::REPL_BACKLOG_FIRST_BYTE_OFFSET,
        1.0,
    ),
    (
        "repl_backlog_histlen",
        &catalog::REPL_BACKLOG_HISTORY_BYTES,
        1.0,
    ),
    (
        "slave_expires_tracked_keys",
        &catalog::SLAVE_EXPIRES_TRACKED_KEYS,
        1.0,
    ),
    ("slave_priority", &catalog::SLAVE_PRIORITY, 1.0),
];

/// INFO status fields (`ok` or `err`), exported as 1 or 0.
const STATUSES: &[(&str, &MetricDef)] = &[
    ("rdb_last_bgsave_status", &catalog::RDB_LAST_BGSAVE_STATUS),
    (
        "aof_last_bgrewrite_status",
        &catalog::AOF_LAST_BGREWRITE_STATUS,
    ),
    ("aof_last_write_status", &catalog::AOF_LAST_WRITE_STATUS),
];

/// Most `slaveN:` lines exported as series: a primary has a handful of
/// replicas; a server that lists thousands is broken or hostile, and each
/// line is two series.
pub(crate) const MAX_REPLICAS: usize = 64;

/// INFO fields exported as counters: (field, family, divisor).
const COUNTERS: &[(&str, &MetricDef, f64)] = &[
    ("keyspace_hits", &catalog::KEYSPACE_HITS_TOTAL, 1.0),
    ("keyspace_misses", &catalog::KEYSPACE_MISSES_TOTAL, 1.0),
    ("evicted_keys", &catalog::EVICTED_KEYS_TOTAL, 1.0),
    ("expired_keys", &catalog::EXPIRED_KEYS_TOTAL, 1.0),
    (
        "total_connections_received",
        &catalog::CONNECTIONS_RECEIVED_TOTAL,
        1.0,
    ),
    (
        "rejected_connections",
        &catalog::REJECTED_CONNECTIONS_TOTAL,
        1.0,
    ),
    (
        "total_commands_processed",
        &catalog::COMMANDS_PROCESSED_TOTAL,
        1.0,
    ),
    (
        "total_net_input_bytes",
        &catalog::NET_INPUT_BYTES_TOTAL,
        1.0,
    ),
    (
        "total_net_output_bytes",
        &catalog::NET_OUTPUT_BYTES_TOTAL,
        1.0,
    ),
    ("used_cpu_sys", &catalog::CPU_SYS_SECONDS_TOTAL, 1.0),
    ("used_cpu_user", &catalog::CPU_USER_SECONDS_TOTAL, 1.0),
];

/// Exports the raw INFO facts under redis_exporter's names (pure); the
/// families with a label per command, error code or database are cut to
/// `limits` (top N + `other`).
pub(crate) fn export_info(info: &Info, target: &str, limits: SeriesLimits, out: &mut Families) {
    let t = [("target", target)];
    for (field, def, divisor) in GAUGES {
        if let Some(v) = info.number(field) {
            out.gauge(def, &t, v / divisor);
        }
    }
    for (field, def, divisor) in COUNTERS {
        if let Some(v) = info.number(field) {
            out.counter(def, &t, v / divisor);
        }
    }
    // Every label of the instance info but `target` is the INFO field of the
    // same name (empty when the server does not report it).
    let facts: Vec<(&str, &str)> = catalog::INSTANCE_INFO
        .labels
        .iter()
        .map(|&k| match k {
            "target" => (k, target),
            field => (k, info.text(field).unwrap_or("")),
        })
        .collect();
    out.gauge(&catalog::INSTANCE_INFO, &facts, 1.0);
    for (field, def) in STATUSES {
        if let Some(v) = info.status(field) {
            out.gauge(def, &t, v);
        }
    }
    export_replication(info, target, out);
    for db in top::top_dbs(&info.keyspace, limits.dbs) {
        let l = [("target", target), ("db", db.label.as_str())];
        out.gauge(&catalog::DB_KEYS, &l, db.keys as f64);
        out.gauge(&catalog::DB_KEYS_EXPIRING, &l, db.expires as f64);
        if let Some(ms) = db.avg_ttl_ms {
            out.gauge(&catalog::DB_AVG_TTL_SECONDS, &l, ms / 1000.0);
        }
        out.gauge(
            &catalog::DB_KEYS_WITHOUT_TTL,
            &l,
            db.keys.saturating_sub(db.expires) as f64,
        );
    }
    for c in &top::top_commands(&info.commandstats, limits.commands) {
        let l = [("target", target), ("cmd", c.cmd.as_str())];
        out.counter(&catalog::COMMANDS_TOTAL, &l, c.calls as f64);
        out.counter(
            &catalog::COMMANDS_DURATION_SECONDS_TOTAL,
            &l,
            c.usec as f64 / 1e6,
        );
        if let Some(n) = c.rejected_calls {
            out.counter(&catalog::COMMANDS_REJECTED_CALLS_TOTAL, &l, n as f64);
        }
        if let Some(n) = c.failed_calls {
            out.counter(&catalog::COMMANDS_FAILED_CALLS_TOTAL, &l, n as f64);
        }
    }
    for (err, n) in &top::top_error_codes(&info.errorstats, limits.error_codes) {
        out.counter(
            &catalog::ERRORS_TOTAL,
            &[("target", target), ("err", err.as_str())],
            *n as f64,
        );
    }
    if let (Some(used), Some(max)) = (info.number("used_memory"), info.number("maxmemory"))
        && max > 0.0
    {
        out.gauge(&catalog::MEMORY_USED_RATIO, &t, used / max);
    }
    if let (Some(c), Some(max)) = (info.number("connected_clients"), info.number("maxclients"))
        && max > 0.0
    {
        out.gauge(&catalog::CLIENTS_USED_RATIO, &t, c / max);
    }
}

/// The replication facts with labels of their own: per connected replica on
/// a primary, the link to the primary on a replica (redis_exporter's names
/// and labels).
fn export_replication(info: &Info, target: &str, out: &mut Families) {
    let replicas = info.replicas();
    for r in replicas.iter().take(MAX_REPLICAS) {
        let l = [
            ("target", target),
            ("slave_ip", r.ip.as_str()),
            ("slave_port", r.port.as_str()),
            ("slave_state", r.state.as_str()),
        ];
        out.gauge(&catalog::CONNECTED_SLAVE_OFFSET_BYTES, &l, r.offset);
        if let Some(lag) = r.lag {
            out.gauge(&catalog::CONNECTED_SLAVE_LAG_SECONDS, &l, lag);
        }
    }
    out.gauge(
        &catalog::REPLICAS_NOT_EXPORTED,
        &[("target", target)],
        replicas.len().saturating_sub(MAX_REPLICAS) as f64,
    );
    let Some(link) = info.primary_link() else {
        return;
    };
    let l = [
        ("target", target),
        ("master_host", link.host.as_str()),
        ("master_port", link.port.as_str()),
    ];
    out.gauge(&catalog::MASTER_LINK_UP, &l, f64::from(u8::from(link.up)));
    for (def, v) in [
        (
            &catalog::MASTER_LAST_IO_SECONDS_AGO,
            link.last_io_seconds_ago,
        ),
        (&catalog::MASTER_SYNC_IN_PROGRESS, link.sync_in_progress),
        (&catalog::SLAVE_REPL_OFFSET, link.repl_offset),
    ] {
        if let Some(v) = v {
            out.gauge(def, &l, v);
        }
    }
    let with_read_only = with_labels(&l, &[("read_only", link.read_only.as_str())]);
    out.gauge(&catalog::SLAVE_INFO, &with_read_only, 1.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::sample_value;

    const LIMITS: SeriesLimits = SeriesLimits {
        commands: 100,
        error_codes: 50,
        dbs: 16,
    };

    fn export(file: &str) -> Vec<prometheus::proto::MetricFamily> {
        let path = format!(
            "{}/tests/data/redis-info/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let (info, _) = info::parse_info(&std::fs::read_to_string(path).unwrap());
        let mut out = Families::new();
        export_info(&info, "t", LIMITS, &mut out);
        out.into_vec()
    }

    #[test]
    fn a_primary_exports_persistence_and_one_series_per_replica() {
        let f = export("redis-7.0-primary.txt");
        let replica = [
            ("target", "t"),
            ("slave_ip", "127.0.0.1"),
            ("slave_port", "16392"),
            ("slave_state", "online"),
        ];
        let t = [("target", "t")];
        for (name, labels, want) in [
            (
                "redis_connected_slave_offset_bytes",
                &replica[..],
                Some(417.0),
            ),
            ("redis_connected_slave_lag_seconds", &replica[..], Some(0.0)),
            ("redis_master_repl_offset", &t[..], Some(417.0)),
            ("redis_repl_backlog_history_bytes", &t[..], Some(417.0)),
            (
                "redis_total_system_memory_bytes",
                &t[..],
                Some(25276182528.0),
            ),
            ("redis_rdb_last_bgsave_status", &t[..], Some(1.0)),
            ("redis_rdb_last_bgsave_duration_seconds", &t[..], Some(0.0)),
            (
                "redis_aof_last_rewrite_duration_seconds",
                &t[..],
                Some(-1.0),
            ),
            (
                "redis_rdb_last_save_timestamp_seconds",
                &t[..],
                Some(1796620777.0),
            ),
            ("perfwatch_redis_replicas_not_exported", &t[..], Some(0.0)),
            ("redis_master_link_up", &t[..], None),
            ("redis_slave_info", &t[..], None),
            ("redis_aof_current_size_bytes", &t[..], None),
        ] {
            assert_eq!(sample_value(&f, name, labels), want, "{name}");
        }
        assert_eq!(
            sample_value(
                &f,
                "redis_instance_info",
                &[("tcp_port", "16391"), ("redis_build_id", "ae4d7c971a948f0")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn a_replica_exports_its_link_labelled_with_its_primary() {
        let primary = [
            ("target", "t"),
            ("master_host", "127.0.0.1"),
            ("master_port", "16391"),
        ];
        for (file, up, last_io) in [
            ("redis-7.0-replica.txt", 1.0, 8.0),
            ("redis-7.0-replica-link-down.txt", 0.0, -1.0),
        ] {
            let f = export(file);
            for (name, want) in [
                ("redis_master_link_up", Some(up)),
                ("redis_master_last_io_seconds_ago", Some(last_io)),
                ("redis_master_sync_in_progress", Some(0.0)),
                ("redis_slave_repl_offset", Some(417.0)),
                ("redis_connected_slave_offset_bytes", None),
            ] {
                assert_eq!(sample_value(&f, name, &primary), want, "{file}: {name}");
            }
            let mut info = primary.to_vec();
            info.push(("read_only", "1"));
            assert_eq!(sample_value(&f, "redis_slave_info", &info), Some(1.0));
            assert_eq!(
                sample_value(&f, "redis_slave_priority", &[("target", "t")]),
                Some(100.0)
            );
        }
    }

    #[test]
    fn replicas_beyond_the_cap_are_counted() {
        let mut text = String::from("role:master\r\n");
        for i in 0..MAX_REPLICAS + 3 {
            text.push_str(&format!(
                "slave{i}:ip=10.0.0.1,port={},state=online,offset=1,lag=0\r\n",
                7000 + i
            ));
        }
        let (info, _) = info::parse_info(&text);
        let mut out = Families::new();
        export_info(&info, "t", LIMITS, &mut out);
        let f = out.into_vec();
        let offsets = f
            .iter()
            .find(|m| m.name() == "redis_connected_slave_offset_bytes")
            .map_or(0, |m| m.get_metric().len());
        assert_eq!(offsets, MAX_REPLICAS);
        assert_eq!(
            sample_value(
                &f,
                "perfwatch_redis_replicas_not_exported",
                &[("target", "t")]
            ),
            Some(3.0)
        );
    }
}
