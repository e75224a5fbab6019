//! Redis Cluster: a `[[redis]]` target whose server reports
//! `cluster_enabled:1` (and `cluster` is not `false`) watches every node of
//! the cluster, found from its url (and `cluster_seeds`).
//!
//! # Per poll
//!
//! Every known node is polled at once, each on its own persistent
//! connection with its own byte budget (`max_reply_bytes`), all within three
//! quarters of the poll timeout. Each node gets one pipeline: `INFO` (the
//! sections perfwatch reads), `CLUSTER INFO`, and the topology (`CLUSTER
//! SHARDS` on Redis ≥ 7, `CLUSTER NODES` before). A node that fails or does
//! not answer in time is its own error (`perfwatch_redis_cluster_node_up 0`,
//! its connection dropped, reconnected next poll), not the target's: the
//! poll fails only when no node answered.
//!
//! The topology of the first node (by address) that answered decides which
//! nodes the next poll visits; nodes that appear in it and were not polled
//! yet are polled in a second round of the same poll, so a new cluster is
//! seen whole on the first poll and a resharding or a new node within one
//! interval. The role of a node is what its own `INFO` says this poll, so a
//! failover shows on the next poll. At most `max_cluster_nodes` nodes are
//! polled (the first by address); the rest are counted.
//!
//! # Labels: why node-level families of their own
//!
//! The catalog has one label set per family, and the single-node families
//! (`redis_connected_clients{target}`, ...) are redis_exporter's, compared
//! with it label for label. A per-node series of a cluster needs `node`,
//! `role` and `shard` besides `target`. Adding those labels to every
//! single-node family would change every existing series (and put a `role`
//! that flips on failover into every single-node series); emitting the same
//! family with two label sets would break the catalog rule and any query
//! that sums by label. So a cluster target exports a node-level family set
//! of its own, `redis_cluster_node_<redis_exporter's name>{target, node,
//! role, shard}` for the INFO facts that matter per node (clients, memory,
//! keys, hits and misses, commands, replication), next to redis_exporter's
//! cluster families from `CLUSTER INFO` (`redis_cluster_state`,
//! `redis_cluster_slots_ok`, ... with `target`) and a cluster-wide
//! `perfwatch_cache_hit_ratio{target}` (hits / lookups summed over the
//! primaries). A cluster target does not export the single-node families.
//!
//! `role` is the node's INFO role (`master` or `slave`, as in
//! `redis_instance_info`). `shard` is the shard id (Redis ≥ 7.2), else the
//! smallest node id among the shard's primary and replicas: it stays the
//! same across a failover inside the shard (before 7.2, once the nodes
//! agree again on the shard's members: a poll taken just after a failover
//! may see the shard split and label a part of it by its own smallest id).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::{ConnectionInfo, RedisError, Value};

use super::catalog;
use super::config::{RedisTarget, at_addr};
use super::connection::{self, ReplyBudget, Session};
use super::hit_ratio::export_hit_ratio;
use super::info::{self, Info};
use super::keys::{KeySampler, OwnLookups};
use super::reply::{pairs, text};
use super::{Capabilities, INFO_SECTIONS, detect_capabilities, set_client_name};
use crate::catalog::MetricDef;
use crate::counter_window::CounterWindows;
use crate::exposition::Families;
use crate::poll::{ErrorReason, PollError, PollOutput, Timing};
use crate::tls::TlsReady;

/// One node as a topology reply names it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TopoNode {
    /// The node id (40 hex characters).
    pub id: String,
    /// `ip:port`, the `node` label and the key of the node map.
    pub addr: String,
    pub host: String,
    pub port: u16,
    /// `master` or `replica`, as the topology says (the exported role is
    /// the node's own INFO).
    pub role: String,
    /// The `shard` label (see the module docs).
    pub shard: String,
    /// Slots its shard serves.
    pub slots: u32,
}

/// A node being polled.
struct Node {
    host: String,
    port: u16,
    session: Option<Session>,
    caps: Option<Capabilities>,
    budget: ReplyBudget,
    /// The key sampler's share on this node, while it is a primary.
    sampler: Option<KeySampler>,
}

/// What one node said this poll.
struct NodeReply {
    info: Info,
    cluster_info: HashMap<String, String>,
    topology: Option<Vec<TopoNode>>,
    own: OwnLookups,
}

impl Node {
    async fn poll(
        &mut self,
        template: &ConnectionInfo,
        sampler: Option<(&super::KeySamplerConfig, Duration, usize)>,
        tls: Option<&TlsReady>,
    ) -> Result<NodeReply, String> {
        self.budget.reset();
        if self.session.is_none() {
            let info = at_addr(template, &self.host, self.port)
                .ok_or_else(|| format!("unusable address {}:{}", self.host, self.port))?;
            let mut s = connection::connect(&info, &self.budget, tls)
                .await
                .map_err(|e| match e {
                    connection::ConnectError::Tls(why) => why,
                    connection::ConnectError::Redis(e) => e.to_string(),
                })?;
            set_client_name(&mut s.conn).await;
            let caps = detect_capabilities(&mut s.conn)
                .await
                .map_err(|e| e.to_string())?;
            self.session = Some(s);
            self.caps = Some(caps);
            if let Some(s) = &mut self.sampler {
                s.restart_cycle();
            }
        }
        let (Some(session), Some(caps)) = (self.session.as_mut(), self.caps.as_ref()) else {
            unreachable!("connected above")
        };
        let mut pipe = redis::pipe();
        // A CLUSTER command the ACL denies must not cost the node's INFO:
        // error replies come back as values.
        pipe.ignore_errors();
        if caps.multi_section_info {
            pipe.cmd("INFO").arg(&INFO_SECTIONS[..]);
        } else {
            pipe.cmd("INFO").arg("all");
        }
        pipe.cmd("CLUSTER").arg("INFO");
        if caps.multi_section_info {
            pipe.cmd("CLUSTER").arg("SHARDS");
        } else {
            pipe.cmd("CLUSTER").arg("NODES");
        }
        let replies: Vec<Value> = pipe
            .query_async(&mut session.conn)
            .await
            .map_err(|e| describe(&self.budget, &e))?;
        let bulk = |v: Option<&Value>| match v {
            Some(Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Some(Value::VerbatimString { text, .. }) => Some(text.clone()),
            _ => None,
        };
        let info_text = match replies.first() {
            Some(Value::ServerError(e)) => {
                return Err(format!("INFO: {} {}", e.code(), e.details().unwrap_or("")));
            }
            v => bulk(v).ok_or("INFO answered no text")?,
        };
        let (info, _) = info::parse_info(&info_text);
        if info.text("redis_version").is_none() {
            return Err("INFO reply has no redis_version".into());
        }
        let cluster_info = bulk(replies.get(1))
            .map(|t| parse_cluster_info(&t))
            .unwrap_or_default();
        let topology = if caps.multi_section_info {
            replies.get(2).and_then(parse_shards)
        } else {
            bulk(replies.get(2)).map(|t| parse_nodes(&t))
        };
        let mut own = OwnLookups::default();
        // The sampler runs on primaries only (a replica holds the same
        // keys), each with its share of the keys per poll.
        let is_primary = info.text("role") == Some("master");
        match (sampler, is_primary) {
            (Some((cfg, time_budget, primaries)), true) => {
                let s = self.sampler.get_or_insert_with(|| {
                    let mut share = cfg.clone();
                    share.max_keys_per_poll = (cfg.max_keys_per_poll / primaries.max(1)).max(1);
                    KeySampler::new(share, 0)
                });
                let memory_usage = caps.memory_usage;
                own = s
                    .step(&mut session.conn, time_budget, &self.budget, memory_usage)
                    .await
                    .map_err(|e| describe(&self.budget, &e))?;
            }
            _ => self.sampler = None,
        }
        Ok(NodeReply {
            info,
            cluster_info,
            topology,
            own,
        })
    }
}

/// A node's error in words; a reply over the byte budget names the bound.
fn describe(budget: &ReplyBudget, e: &RedisError) -> String {
    if budget.exceeded() {
        format!(
            "the node sent more than max_reply_bytes ({} bytes) in one poll",
            budget.limit()
        )
    } else {
        e.to_string()
    }
}

/// The cluster behind one target, across polls.
pub(crate) struct ClusterWatch {
    /// The url's connection info: scheme and credentials of every node.
    template: ConnectionInfo,
    max_reply_bytes: usize,
    max_nodes: usize,
    /// Where to start when nothing else is known: the url's node and
    /// `cluster_seeds`, as `ip:port`.
    seeds: Vec<(String, u16)>,
    /// The last topology, by address.
    topology: BTreeMap<String, TopoNode>,
    nodes: BTreeMap<String, Node>,
    /// Hits and misses summed over the primaries.
    hits: CounterWindows,
    /// Lookups by the key sampler since the epoch changed.
    own_lookups: OwnLookups,
    last_epoch: String,
}

/// What the poll of every node gave, for the export.
struct Round {
    replies: BTreeMap<String, Result<NodeReply, String>>,
}

impl ClusterWatch {
    /// A watch starting from the node `cfg`'s url names (and its seeds).
    pub(crate) fn new(cfg: &RedisTarget, template: ConnectionInfo) -> Self {
        let mut seeds: Vec<(String, u16)> = Vec::new();
        if let redis::ConnectionAddr::Tcp(h, p)
        | redis::ConnectionAddr::TcpTls {
            host: h, port: p, ..
        } = template.addr()
        {
            seeds.push((h.clone(), *p));
        }
        for s in &cfg.ready.cluster_seeds {
            if let redis::ConnectionAddr::Tcp(h, p)
            | redis::ConnectionAddr::TcpTls {
                host: h, port: p, ..
            } = s.addr()
            {
                seeds.push((h.clone(), *p));
            }
        }
        Self {
            template,
            max_reply_bytes: cfg.max_reply_bytes,
            max_nodes: cfg.max_cluster_nodes,
            seeds,
            topology: BTreeMap::new(),
            nodes: BTreeMap::new(),
            hits: CounterWindows::new(),
            own_lookups: OwnLookups::default(),
            last_epoch: String::new(),
        }
    }

    /// The addresses to poll: the topology's (capped), or the seeds while
    /// no topology is known (or none of its nodes answered).
    fn wanted(&self) -> (Vec<(String, String, u16)>, usize) {
        let mut all: Vec<(String, String, u16)> = if self.topology.is_empty() {
            self.seeds
                .iter()
                .map(|(h, p)| (format!("{h}:{p}"), h.clone(), *p))
                .collect()
        } else {
            self.topology
                .values()
                .map(|n| (n.addr.clone(), n.host.clone(), n.port))
                .collect()
        };
        all.sort();
        all.dedup();
        let over = all.len().saturating_sub(self.max_nodes);
        all.truncate(self.max_nodes);
        (all, over)
    }

    /// Makes the node map match `wanted`: new nodes get a (not yet
    /// connected) entry, nodes no longer wanted are dropped with their
    /// connections.
    fn sync_nodes(&mut self, wanted: &[(String, String, u16)]) {
        self.nodes
            .retain(|addr, _| wanted.iter().any(|(a, _, _)| a == addr));
        for (addr, host, port) in wanted {
            if self.nodes.contains_key(addr) {
                continue;
            }
            self.nodes.insert(
                addr.clone(),
                Node {
                    host: host.clone(),
                    port: *port,
                    session: None,
                    caps: None,
                    budget: ReplyBudget::new(self.max_reply_bytes),
                    sampler: None,
                },
            );
        }
    }

    /// Polls the nodes in `addrs` at once, each within `timeout`.
    async fn poll_nodes(
        &mut self,
        addrs: &[String],
        cfg: &RedisTarget,
        timing: Timing,
        timeout: Duration,
        round: &mut Round,
    ) {
        let primaries = self
            .topology
            .values()
            .filter(|n| n.role == "master")
            .count()
            .max(1);
        let sampler_time = cfg
            .keys
            .as_ref()
            .map(|k| timing.timeout.mul_f64(k.time_budget_ratio).min(timeout / 2));
        let sampler = cfg
            .keys
            .as_ref()
            .zip(sampler_time)
            .map(|(k, t)| (k, t, primaries));
        let tls = cfg.tls();
        if cfg.password_file.is_some()
            && self
                .nodes
                .iter()
                .any(|(a, n)| n.session.is_none() && addrs.contains(a))
        {
            // New connections read password_file again, as the single-node
            // path does, so that a rotated secret is picked up.
            match cfg.connection_info(true) {
                Ok(t) => self.template = t,
                Err(e) => {
                    tracing::warn!(target_name = %cfg.common.name, error = %e, "cannot read password_file again")
                }
            }
        }
        let template = &self.template;
        let polls = self
            .nodes
            .iter_mut()
            .filter(|(addr, _)| addrs.contains(addr))
            .map(|(addr, node)| async move {
                let r = match tokio::time::timeout(timeout, node.poll(template, sampler, tls)).await
                {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer within {timeout:?}")),
                };
                if let Err(e) = &r {
                    tracing::debug!(node = %addr, error = %e, "cluster node poll failed");
                    node.session = None;
                    node.caps = None;
                }
                (addr.clone(), r)
            });
        for (addr, r) in join_all(polls).await {
            round.replies.insert(addr, r);
        }
    }

    /// One poll of the whole cluster (see the module docs).
    pub(crate) async fn poll(
        &mut self,
        cfg: &RedisTarget,
        timing: Timing,
    ) -> Result<PollOutput, PollError> {
        let name = cfg.common.name.as_str();
        let started = Instant::now();
        let phase = timing.timeout.mul_f64(0.75);
        let mut round = Round {
            replies: BTreeMap::new(),
        };
        let (wanted, _) = self.wanted();
        self.sync_nodes(&wanted);
        let first: Vec<String> = wanted.iter().map(|(a, _, _)| a.clone()).collect();
        self.poll_nodes(&first, cfg, timing, phase, &mut round)
            .await;
        self.learn_topology(&round);
        // Nodes the topology names that this poll has not visited yet (a
        // first discovery, a node added): a second round, in the time left.
        let (wanted, over) = self.wanted();
        let new: Vec<String> = wanted
            .iter()
            .map(|(a, _, _)| a.clone())
            .filter(|a| !round.replies.contains_key(a))
            .collect();
        self.sync_nodes(&wanted);
        let left = phase.saturating_sub(started.elapsed());
        if !new.is_empty() && !left.is_zero() {
            self.poll_nodes(&new, cfg, timing, left, &mut round).await;
        }
        // Nodes polled in the first round that the topology no longer names
        // are gone (forgotten): their replies are dropped with them.
        round
            .replies
            .retain(|a, _| wanted.iter().any(|(w, _, _)| w == a));
        if !round.replies.values().any(Result::is_ok) {
            // None of the known nodes answered: they may all have moved
            // (new addresses after a restart); start again from the seeds.
            self.topology.clear();
            let why = round
                .replies
                .iter()
                .map(|(a, r)| format!("{a}: {}", r.as_ref().err().map_or("?", String::as_str)))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(PollError::new(
                ErrorReason::Connect,
                format!("redis target \"{name}\": no cluster node answered ({why})"),
            ));
        }
        let mut families = Families::new();
        let headline = self.export(name, cfg, &round, over, &mut families);
        Ok(PollOutput { families, headline })
    }

    /// Takes the topology of the first node (by address) that sent one.
    fn learn_topology(&mut self, round: &Round) {
        let found = round
            .replies
            .values()
            .filter_map(|r| r.as_ref().ok())
            .find_map(|r| r.topology.as_ref().filter(|t| !t.is_empty()));
        if let Some(t) = found {
            self.topology = t.iter().map(|n| (n.addr.clone(), n.clone())).collect();
        }
    }

    fn export(
        &mut self,
        target: &str,
        cfg: &RedisTarget,
        round: &Round,
        over: usize,
        out: &mut Families,
    ) -> Vec<(String, String)> {
        let t = [("target", target)];
        // The cluster's own state, from the first node that answered.
        if let Some(ci) = round
            .replies
            .values()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| &r.cluster_info)
            .find(|ci| !ci.is_empty())
        {
            for (field, def) in CLUSTER_INFO {
                let v = match ci.get(*field).map(String::as_str) {
                    Some("ok") => Some(1.0),
                    Some("fail") => Some(0.0),
                    Some(v) => v.parse().ok(),
                    None => None,
                };
                if let Some(v) = v {
                    out.gauge(def, &t, v);
                }
            }
        }
        out.gauge(&catalog::CLUSTER_NODES_NOT_POLLED, &t, over as f64);
        let (mut hits, mut misses, mut epoch) = (0u64, 0u64, Vec::new());
        let mut own = OwnLookups::default();
        let mut primaries = 0;
        for (addr, reply) in &round.replies {
            let topo = self.topology.get(addr);
            let shard = topo.map_or("", |n| n.shard.as_str());
            let role = match reply {
                Ok(r) => r.info.text("role").unwrap_or(""),
                Err(_) => topo.map_or("", |n| {
                    if n.role == "master" {
                        "master"
                    } else {
                        "slave"
                    }
                }),
            };
            let l = [
                ("target", target),
                ("node", addr.as_str()),
                ("role", role),
                ("shard", shard),
            ];
            out.gauge(
                &catalog::CLUSTER_NODE_UP,
                &l,
                f64::from(u8::from(reply.is_ok())),
            );
            if let Some(n) = topo {
                out.gauge(&catalog::CLUSTER_NODE_SLOTS, &l, f64::from(n.slots));
            }
            let Ok(r) = reply else { continue };
            export_node(&r.info, &l, out);
            own.hits += r.own.hits;
            own.misses += r.own.misses;
            if role == "master" {
                primaries += 1;
                hits += r.info.number("keyspace_hits").unwrap_or(0.0) as u64;
                misses += r.info.number("keyspace_misses").unwrap_or(0.0) as u64;
                epoch.push(format!("{addr}={}", r.info.text("run_id").unwrap_or("")));
            }
        }
        // The cluster-wide hit ratio: the sums over the primaries that
        // answered. A new set of primaries (a failover, a node down or
        // back, a restart) is a new epoch: the windows start over rather
        // than mix two sets' counters.
        let epoch = epoch.join(",");
        if epoch != self.last_epoch {
            self.own_lookups = OwnLookups::default();
            self.last_epoch = epoch.clone();
        }
        let hits_net = hits.saturating_sub(self.own_lookups.hits);
        let misses_net = misses.saturating_sub(self.own_lookups.misses);
        self.hits
            .observe(Instant::now(), &epoch, hits_net, misses_net);
        export_hit_ratio(&self.hits, hits_net, misses_net, target, "", out);
        self.own_lookups.hits += own.hits;
        self.own_lookups.misses += own.misses;

        if let Some(k) = &cfg.keys {
            let samplers: Vec<&KeySampler> = self
                .nodes
                .values()
                .filter_map(|n| n.sampler.as_ref())
                .collect();
            KeySampler::export_merged(&samplers, k.max_groups, out, target);
        }
        let answered = round.replies.values().filter(|r| r.is_ok()).count();
        vec![
            (
                "cluster nodes".into(),
                format!("{answered}/{} answering", round.replies.len()),
            ),
            ("primaries".into(), primaries.to_string()),
        ]
    }

    /// Forgets every connection (after a poll that failed as a whole).
    pub(crate) fn reset(&mut self) {
        for n in self.nodes.values_mut() {
            n.session = None;
            n.caps = None;
        }
    }
}

/// `CLUSTER INFO` fields exported under redis_exporter's names (the field
/// with `redis_`; `ok` is 1 and `fail` 0, as redis_exporter reads them).
const CLUSTER_INFO: &[(&str, &MetricDef)] = &[
    ("cluster_state", &catalog::CLUSTER_STATE),
    ("cluster_slots_assigned", &catalog::CLUSTER_SLOTS_ASSIGNED),
    ("cluster_slots_ok", &catalog::CLUSTER_SLOTS_OK),
    ("cluster_slots_pfail", &catalog::CLUSTER_SLOTS_PFAIL),
    ("cluster_slots_fail", &catalog::CLUSTER_SLOTS_FAIL),
    ("cluster_known_nodes", &catalog::CLUSTER_KNOWN_NODES),
    ("cluster_size", &catalog::CLUSTER_SIZE),
    ("cluster_current_epoch", &catalog::CLUSTER_CURRENT_EPOCH),
];

/// INFO gauges exported per node: (field, family).
const NODE_GAUGES: &[(&str, &MetricDef)] = &[
    (
        "uptime_in_seconds",
        &catalog::CLUSTER_NODE_UPTIME_IN_SECONDS,
    ),
    (
        "connected_clients",
        &catalog::CLUSTER_NODE_CONNECTED_CLIENTS,
    ),
    ("used_memory", &catalog::CLUSTER_NODE_MEMORY_USED_BYTES),
    ("maxmemory", &catalog::CLUSTER_NODE_MEMORY_MAX_BYTES),
    ("connected_slaves", &catalog::CLUSTER_NODE_CONNECTED_SLAVES),
    (
        "master_repl_offset",
        &catalog::CLUSTER_NODE_MASTER_REPL_OFFSET,
    ),
];

/// INFO counters exported per node: (field, family).
const NODE_COUNTERS: &[(&str, &MetricDef)] = &[
    ("keyspace_hits", &catalog::CLUSTER_NODE_KEYSPACE_HITS_TOTAL),
    (
        "keyspace_misses",
        &catalog::CLUSTER_NODE_KEYSPACE_MISSES_TOTAL,
    ),
    ("evicted_keys", &catalog::CLUSTER_NODE_EVICTED_KEYS_TOTAL),
    ("expired_keys", &catalog::CLUSTER_NODE_EXPIRED_KEYS_TOTAL),
    (
        "total_commands_processed",
        &catalog::CLUSTER_NODE_COMMANDS_PROCESSED_TOTAL,
    ),
    (
        "total_net_input_bytes",
        &catalog::CLUSTER_NODE_NET_INPUT_BYTES_TOTAL,
    ),
    (
        "total_net_output_bytes",
        &catalog::CLUSTER_NODE_NET_OUTPUT_BYTES_TOTAL,
    ),
];

/// The per-node INFO facts (pure), labelled `l` (target, node, role,
/// shard).
fn export_node(info: &Info, l: &[(&str, &str)], out: &mut Families) {
    for (field, def) in NODE_GAUGES {
        if let Some(v) = info.number(field) {
            out.gauge(def, l, v);
        }
    }
    for (field, def) in NODE_COUNTERS {
        if let Some(v) = info.number(field) {
            out.counter(def, l, v);
        }
    }
    // A cluster has database 0 only.
    let keys: u64 = info.keyspace.iter().map(|k| k.keys).sum();
    out.gauge(&catalog::CLUSTER_NODE_DB_KEYS, l, keys as f64);
    if let Some(link) = info.primary_link() {
        out.gauge(
            &catalog::CLUSTER_NODE_MASTER_LINK_UP,
            l,
            f64::from(u8::from(link.up)),
        );
    }
}

/// `CLUSTER INFO`'s `field:value` lines.
pub(crate) fn parse_cluster_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// `CLUSTER SHARDS` (Redis ≥ 7): per shard its slot ranges and nodes (pure).
pub(crate) fn parse_shards(v: &Value) -> Option<Vec<TopoNode>> {
    let Value::Array(shards) = v else { return None };
    let mut out = Vec::new();
    for shard in shards {
        let fields = pairs(shard);
        let slots: u32 = match fields.get("slots") {
            Some(Value::Array(bounds)) => bounds
                .chunks(2)
                .filter_map(|c| match c {
                    [Value::Int(a), Value::Int(b)] if b >= a => Some((b - a + 1) as u32),
                    _ => None,
                })
                .sum(),
            _ => 0,
        };
        let Some(Value::Array(nodes)) = fields.get("nodes") else {
            continue;
        };
        let mut members: Vec<TopoNode> = nodes
            .iter()
            .filter_map(|n| {
                let f = pairs(n);
                let text = |k: &str| f.get(k).and_then(|v| text(v));
                let id = text("id")?;
                let host = text("ip")
                    .or_else(|| text("endpoint"))
                    .filter(|h| !h.is_empty() && h != "?")?;
                let port: u16 = text("port")?.parse().ok()?;
                Some(TopoNode {
                    addr: format!("{host}:{port}"),
                    id,
                    host,
                    port,
                    role: text("role").unwrap_or_default(),
                    shard: String::new(),
                    slots,
                })
            })
            .collect();
        let shard = fields
            .get("id")
            .and_then(|v| text(v))
            .or_else(|| members.iter().map(|m| m.id.clone()).min())
            .unwrap_or_default();
        for m in &mut members {
            m.shard = shard.clone();
        }
        out.extend(members);
    }
    Some(out)
}

/// `CLUSTER NODES` (before Redis 7): one line per node (pure). Shards are
/// a primary and the replicas naming it.
pub(crate) fn parse_nodes(text: &str) -> Vec<TopoNode> {
    let mut nodes = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (id, address, flags, primary) = (f[0], f[1], f[2], f[3]);
        if flags.contains("noaddr") || flags.contains("handshake") {
            continue;
        }
        // ip:port@cport[,hostname]
        let hostport = address.split(['@', ',']).next().unwrap_or("");
        let Some((host, port)) = hostport.rsplit_once(':') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if host.is_empty() || port == 0 {
            continue;
        }
        let is_primary = flags.split(',').any(|fl| fl == "master");
        let slots: u32 = f[8..]
            .iter()
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some(b.parse::<u32>().ok()? + 1 - a.parse::<u32>().ok()?),
                None => s.parse::<u32>().ok().map(|_| 1),
            })
            .sum();
        nodes.push((
            TopoNode {
                id: id.to_owned(),
                addr: format!("{host}:{port}"),
                host: host.to_owned(),
                port,
                role: if is_primary { "master" } else { "replica" }.to_owned(),
                shard: String::new(),
                slots,
            },
            if is_primary {
                id.to_owned()
            } else {
                primary.to_owned()
            },
        ));
    }
    // A shard: the primary's id as the group key; the label is the
    // smallest member id (stable across a failover within the shard).
    let mut groups: HashMap<String, (String, u32)> = HashMap::new();
    for (n, group) in &nodes {
        let e = groups.entry(group.clone()).or_insert((n.id.clone(), 0));
        if n.id < e.0 {
            e.0 = n.id.clone();
        }
        e.1 = e.1.max(n.slots);
    }
    nodes
        .into_iter()
        .map(|(mut n, group)| {
            if let Some((shard, slots)) = groups.get(&group) {
                n.shard = shard.clone();
                n.slots = *slots;
            }
            n
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    /// `(addr, role, shard, slots)` of each node, in order.
    fn summary(nodes: &[TopoNode]) -> Vec<(&str, &str, &str, u32)> {
        nodes
            .iter()
            .map(|n| (n.addr.as_str(), n.role.as_str(), n.shard.as_str(), n.slots))
            .collect()
    }

    fn node(id: &str, port: i64, role: &str) -> Value {
        Value::Array(vec![
            bulk("id"),
            bulk(id),
            bulk("port"),
            Value::Int(port),
            bulk("ip"),
            bulk("127.0.0.1"),
            bulk("role"),
            bulk(role),
            bulk("health"),
            bulk("online"),
        ])
    }

    #[test]
    fn shards_give_every_node_its_shard_and_slot_count() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("slots"),
                Value::Array(vec![Value::Int(0), Value::Int(5460)]),
                bulk("nodes"),
                Value::Array(vec![
                    node("bbb", 7000, "master"),
                    node("aaa", 7003, "replica"),
                ]),
            ]),
            Value::Array(vec![
                bulk("slots"),
                Value::Array(vec![
                    Value::Int(5461),
                    Value::Int(10922),
                    Value::Int(16000),
                    Value::Int(16383),
                ]),
                bulk("nodes"),
                Value::Array(vec![node("ccc", 7001, "master")]),
            ]),
        ]);
        assert_eq!(
            summary(&parse_shards(&reply).unwrap()),
            [
                ("127.0.0.1:7000", "master", "aaa", 5461),
                ("127.0.0.1:7003", "replica", "aaa", 5461),
                ("127.0.0.1:7001", "master", "ccc", 5846),
            ]
        );
    }

    #[test]
    fn cluster_nodes_lines_group_replicas_with_their_primary() {
        let text = "\
e1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
a2 127.0.0.1:7003@17003 slave e1 0 1 1 connected
f3 127.0.0.1:7001@17001,host1 master - 0 1 2 connected 5461-10922 [5461->-e1]
b4 127.0.0.1:7004@17004 slave,fail f3 0 1 2 disconnected
c5 :0@0 master,noaddr - 0 1 3 disconnected
";
        assert_eq!(
            summary(&parse_nodes(text)),
            [
                ("127.0.0.1:7000", "master", "a2", 5461),
                ("127.0.0.1:7003", "replica", "a2", 5461),
                ("127.0.0.1:7001", "master", "b4", 5462),
                ("127.0.0.1:7004", "replica", "b4", 5462),
            ]
        );
    }

    #[test]
    fn cluster_info_states_read_as_redis_exporter_reads_them() {
        let ci = parse_cluster_info("cluster_state:fail\r\ncluster_slots_ok:16000\r\n");
        assert_eq!(ci["cluster_state"], "fail");
        assert_eq!(ci["cluster_slots_ok"], "16000");
    }
}
