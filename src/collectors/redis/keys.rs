//! The key sampler: an incremental SCAN that resumes from its cursor on every
//! poll, bounded by a key budget and a time budget, grouping keys by prefix.
//!
//! Why: the seeds' worst Redis bug was `KEYS` blocking the server; their
//! second was cache keys written without a TTL. Counting keys and no-TTL keys
//! per prefix needs a walk of the keyspace, which must never block Redis or
//! the poll. SCAN with a COUNT hint does a bounded amount of work per call;
//! spreading one full cycle over many polls keeps each poll short. Counts are
//! exact once a cycle completes (SCAN returns every key that existed for the
//! whole cycle); until then they are reported as partial.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::MultiplexedConnection;

use super::catalog;
use super::config::KeySamplerConfig;
use super::connection::ReplyBudget;
use crate::exposition::{Families, HistogramData};

/// Upper bounds (seconds) of the TTL histogram: a minute to a week.
pub const TTL_BUCKETS: [f64; 8] = [
    60.0,
    300.0,
    900.0,
    3600.0,
    21600.0,
    86400.0,
    604_800.0,
    2_592_000.0,
];

/// The group of keys matching no configured prefix, or beyond `max_groups`.
pub const OTHER: &str = "other";

/// Statistics of one prefix group over (part of) a cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    /// Keys seen.
    pub keys: u64,
    /// Keys without a TTL.
    pub no_ttl: u64,
    /// Bytes reported by MEMORY USAGE for the sampled keys.
    pub sampled_bytes: u64,
    /// Keys sampled with MEMORY USAGE.
    pub sampled_keys: u64,
    /// TTLs of keys that have one.
    pub ttl: HistogramData,
}

impl Default for GroupStats {
    fn default() -> Self {
        Self {
            keys: 0,
            no_ttl: 0,
            sampled_bytes: 0,
            sampled_keys: 0,
            ttl: HistogramData::new(&TTL_BUCKETS),
        }
    }
}

impl GroupStats {
    /// Estimated memory of the whole group: mean sampled size × keys.
    pub fn estimated_bytes(&self) -> Option<f64> {
        (self.sampled_keys > 0)
            .then(|| self.sampled_bytes as f64 / self.sampled_keys as f64 * self.keys as f64)
    }
}

/// The group a key belongs to: the longest configured prefix it starts with,
/// or (with no prefixes configured) its first segment plus the delimiter;
/// `None` when it matches nothing (counted as `other`).
pub fn group_of<'k>(key: &'k str, prefixes: &'k [String], delimiter: &str) -> Option<&'k str> {
    if prefixes.is_empty() {
        let end = key.find(delimiter)?;
        return Some(&key[..end + delimiter.len()]);
    }
    prefixes
        .iter()
        .filter(|p| key.starts_with(p.as_str()))
        .max_by_key(|p| p.len())
        .map(String::as_str)
}

/// Per-group statistics of one cycle, with at most `max_groups` named groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cycle {
    /// Stats by group label.
    pub groups: BTreeMap<String, GroupStats>,
    /// Keys examined.
    pub keys: u64,
}

impl Cycle {
    /// The stats entry for `key`, applying the group cap.
    pub fn group_mut(&mut self, key: &str, cfg: &KeySamplerConfig) -> &mut GroupStats {
        let group = group_of(key, &cfg.prefixes, &cfg.delimiter).unwrap_or(OTHER);
        let named = self.groups.len() - usize::from(self.groups.contains_key(OTHER));
        let label = if self.groups.contains_key(group) || named < cfg.max_groups {
            group
        } else {
            OTHER
        };
        self.keys += 1;
        self.groups.entry(label.to_owned()).or_default()
    }
}

/// Keyspace lookups perfwatch itself caused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnLookups {
    /// Lookups of keys that existed.
    pub hits: u64,
    /// Lookups of keys that were gone.
    pub misses: u64,
}

/// The sampler's state across polls.
#[derive(Debug)]
pub struct KeySampler {
    cfg: KeySamplerConfig,
    db: i64,
    cursor: u64,
    current: Cycle,
    complete: Option<Cycle>,
    cycle_started: Option<Instant>,
    /// When the last cycle (complete or abandoned) began: the next one waits
    /// for `min_cycle_interval` after it.
    last_cycle_start: Option<Instant>,
    last_cycle_duration: Option<Duration>,
    keys_scanned_total: u64,
    cycles_total: u64,
    memory_counter: usize,
}

impl KeySampler {
    /// A sampler that has not scanned yet.
    pub fn new(cfg: KeySamplerConfig, db: i64) -> Self {
        Self {
            cfg,
            db,
            cursor: 0,
            current: Cycle::default(),
            complete: None,
            cycle_started: None,
            last_cycle_start: None,
            last_cycle_duration: None,
            keys_scanned_total: 0,
            cycles_total: 0,
            memory_counter: 0,
        }
    }

    /// Starts the next cycle from scratch (after a reconnect the cursor may
    /// belong to a server that restarted).
    pub fn restart_cycle(&mut self) {
        self.cursor = 0;
        self.current = Cycle::default();
        self.cycle_started = None;
    }

    /// Advances the scan within the budgets: keys, time, and bytes (no new
    /// SCAN batch once the poll has read half of `bytes`, so that long key
    /// names end the step early instead of failing the poll at
    /// `max_reply_bytes`). `memory_usage` says whether the server has MEMORY
    /// USAGE (Redis ≥ 4 and allowed by ACL).
    ///
    /// Returns the keyspace lookups the sampler itself caused: Redis counts a
    /// PTTL of an existing key as a keyspace hit and of a vanished key as a
    /// miss, so the collector subtracts these from the hit ratio.
    pub async fn step(
        &mut self,
        conn: &mut MultiplexedConnection,
        time_budget: Duration,
        bytes: &ReplyBudget,
        memory_usage: bool,
    ) -> redis::RedisResult<OwnLookups> {
        let deadline = Instant::now() + time_budget;
        let mut examined = 0usize;
        let mut own = OwnLookups::default();
        if self.cycle_started.is_none() && !self.cycle_due(Instant::now()) {
            return Ok(own);
        }
        loop {
            if self.cycle_started.is_none() {
                let now = Instant::now();
                self.cycle_started = Some(now);
                self.last_cycle_start = Some(now);
            }
            let count = self
                .cfg
                .scan_count
                .min(self.cfg.max_keys_per_poll - examined)
                .max(1);
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(self.cursor)
                .arg("COUNT")
                .arg(count)
                .query_async(conn)
                .await?;
            if !keys.is_empty() {
                let (hits, misses) = self.examine(conn, &keys, memory_usage).await?;
                own.hits += hits;
                own.misses += misses;
            }
            examined += keys.len();
            self.keys_scanned_total += keys.len() as u64;
            self.cursor = next;
            if next == 0 {
                self.finish_cycle();
                // One cycle per poll at most: the next poll starts the next one.
                return Ok(own);
            }
            if examined >= self.cfg.max_keys_per_poll
                || Instant::now() >= deadline
                || bytes.used() >= bytes.limit() / 2
            {
                return Ok(own);
            }
        }
    }

    /// Whether a new cycle may start at `now`.
    fn cycle_due(&self, now: Instant) -> bool {
        self.last_cycle_start
            .is_none_or(|t| now.duration_since(t) >= self.cfg.min_cycle_interval)
    }

    async fn examine(
        &mut self,
        conn: &mut MultiplexedConnection,
        keys: &[Vec<u8>],
        memory_usage: bool,
    ) -> redis::RedisResult<(u64, u64)> {
        // One pipelined round trip per SCAN batch: PTTL for every key, then
        // MEMORY USAGE for every n-th key (replies come back in this order).
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("PTTL").arg(key);
        }
        let mut sampled = Vec::new();
        if memory_usage {
            for (i, key) in keys.iter().enumerate() {
                self.memory_counter += 1;
                if self
                    .memory_counter
                    .is_multiple_of(self.cfg.memory_sample_every)
                {
                    pipe.cmd("MEMORY")
                        .arg("USAGE")
                        .arg(key)
                        .arg("SAMPLES")
                        .arg(5);
                    sampled.push(i);
                }
            }
        }
        let replies: Vec<Value> = pipe.query_async(conn).await?;
        let (ttls, mems) = replies.split_at(keys.len().min(replies.len()));
        let mut mem_of = vec![None; keys.len()];
        for (&i, v) in sampled.iter().zip(mems) {
            if let Value::Int(n) = v {
                mem_of[i] = Some(*n as u64);
            }
        }
        let (mut hits, mut misses) = (0, 0);
        for ((key, ttl), mem) in keys.iter().zip(ttls).zip(mem_of) {
            let Value::Int(pttl) = ttl else { continue };
            if *pttl == -2 {
                misses += 1;
            } else {
                hits += 1;
            }
            let key = String::from_utf8_lossy(key);
            record_key(&mut self.current, &self.cfg, &key, *pttl, mem);
        }
        Ok((hits, misses))
    }

    fn finish_cycle(&mut self) {
        if let Some(started) = self.cycle_started.take() {
            self.last_cycle_duration = Some(started.elapsed());
        }
        self.complete = Some(std::mem::take(&mut self.current));
        self.cycles_total += 1;
    }

    /// Exports the last complete cycle, or the partial current one before the
    /// first cycle completes.
    pub fn export(&self, out: &mut Families, target: &str) {
        let db = format!("db{}", self.db);
        let (cycle, complete) = match &self.complete {
            Some(c) => (c, 1.0),
            None => (&self.current, 0.0),
        };
        out.gauge(
            &catalog::KEY_SAMPLER_CYCLE_COMPLETE,
            &[("target", target), ("db", &db)],
            complete,
        );
        if let Some(d) = self.last_cycle_duration {
            out.gauge(
                &catalog::KEY_SAMPLER_CYCLE_DURATION_SECONDS,
                &[("target", target), ("db", &db)],
                d.as_secs_f64(),
            );
        }
        out.counter(
            &catalog::KEY_SAMPLER_KEYS_SCANNED_TOTAL,
            &[("target", target), ("db", &db)],
            self.keys_scanned_total as f64,
        );
        out.counter(
            &catalog::KEY_SAMPLER_CYCLES_TOTAL,
            &[("target", target), ("db", &db)],
            self.cycles_total as f64,
        );
        for (group, s) in &cycle.groups {
            let labels = [
                ("target", target),
                ("db", db.as_str()),
                ("prefix", group.as_str()),
            ];
            out.gauge(&catalog::KEY_GROUP_KEYS, &labels, s.keys as f64);
            out.gauge(
                &catalog::KEY_GROUP_KEYS_WITHOUT_TTL,
                &labels,
                s.no_ttl as f64,
            );
            if let Some(bytes) = s.estimated_bytes() {
                out.gauge(&catalog::KEY_GROUP_MEMORY_BYTES, &labels, bytes);
            }
            out.histogram(&catalog::KEY_GROUP_TTL_SECONDS, &labels, &s.ttl);
        }
    }
}

impl KeySampler {
    /// Exports the samplers of a cluster's primaries as one keyspace: each
    /// scans its own primary's share of the keys, so the groups are summed
    /// (and cut again to `max_groups` by keys, the rest into `other`); the
    /// numbers are complete once every sampler completed a cycle, a cycle
    /// lasts as long as the slowest, and the counters are the sums.
    pub fn export_merged(
        samplers: &[&KeySampler],
        max_groups: usize,
        out: &mut Families,
        target: &str,
    ) {
        if samplers.is_empty() {
            return;
        }
        let mut groups: BTreeMap<String, GroupStats> = BTreeMap::new();
        for s in samplers {
            let cycle = s.complete.as_ref().unwrap_or(&s.current);
            for (name, g) in &cycle.groups {
                add_group(groups.entry(name.clone()).or_default(), g);
            }
        }
        // Every primary kept at most `max_groups` named groups; together
        // they may name more: the largest stay, the rest join `other`.
        let mut named: Vec<(String, u64)> = groups
            .iter()
            .filter(|(n, _)| n.as_str() != OTHER)
            .map(|(n, g)| (n.clone(), g.keys))
            .collect();
        if named.len() > max_groups {
            named.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for (name, _) in named.split_off(max_groups) {
                if let Some(g) = groups.remove(&name) {
                    add_group(groups.entry(OTHER.to_owned()).or_default(), &g);
                }
            }
        }
        let merged = KeySampler {
            cfg: samplers[0].cfg.clone(),
            db: samplers[0].db,
            cursor: 0,
            current: Cycle {
                keys: groups.values().map(|g| g.keys).sum(),
                groups: groups.clone(),
            },
            complete: samplers
                .iter()
                .all(|s| s.complete.is_some())
                .then(|| Cycle {
                    keys: groups.values().map(|g| g.keys).sum(),
                    groups,
                }),
            cycle_started: None,
            last_cycle_start: None,
            last_cycle_duration: samplers.iter().filter_map(|s| s.last_cycle_duration).max(),
            keys_scanned_total: samplers.iter().map(|s| s.keys_scanned_total).sum(),
            cycles_total: samplers.iter().map(|s| s.cycles_total).min().unwrap_or(0),
            memory_counter: 0,
        };
        merged.export(out, target);
    }
}

/// Adds `g` to `into` (every count and the TTL histogram; same buckets).
fn add_group(into: &mut GroupStats, g: &GroupStats) {
    into.keys += g.keys;
    into.no_ttl += g.no_ttl;
    into.sampled_bytes += g.sampled_bytes;
    into.sampled_keys += g.sampled_keys;
    into.ttl.merge(&g.ttl);
}

/// Records one scanned key (pure; `pttl` as Redis returns it: -1 no TTL,
/// -2 the key vanished between SCAN and PTTL).
pub fn record_key(
    cycle: &mut Cycle,
    cfg: &KeySamplerConfig,
    key: &str,
    pttl: i64,
    mem: Option<u64>,
) {
    if pttl == -2 {
        return;
    }
    let g = cycle.group_mut(key, cfg);
    g.keys += 1;
    if pttl < 0 {
        g.no_ttl += 1;
    } else {
        g.ttl.observe(pttl as f64 / 1000.0);
    }
    if let Some(m) = mem {
        g.sampled_bytes += m;
        g.sampled_keys += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(prefixes: &[&str], max_groups: usize) -> KeySamplerConfig {
        KeySamplerConfig {
            prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
            delimiter: ":".into(),
            max_groups,
            scan_count: 100,
            max_keys_per_poll: 1000,
            time_budget_ratio: 0.5,
            memory_sample_every: 1,
            min_cycle_interval: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_new_cycle_waits_for_min_cycle_interval() {
        let t0 = Instant::now();
        let mut s = KeySampler::new(cfg(&[], 10), 0);
        assert!(s.cycle_due(t0), "the first cycle starts at once");
        s.last_cycle_start = Some(t0);
        for (after, due) in [(0, false), (59, false), (60, true), (3600, true)] {
            assert_eq!(
                s.cycle_due(t0 + Duration::from_secs(after)),
                due,
                "{after}s after the last start"
            );
        }
        s.cfg.min_cycle_interval = Duration::ZERO;
        assert!(s.cycle_due(t0), "0 = a cycle on every poll");
    }

    #[test]
    fn group_of_table() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&str, Vec<String>, &str, Option<&str>)] = &[
            (
                "bad_days:2024",
                p(&["bad_days:", "response_cache:"]),
                ":",
                Some("bad_days:"),
            ),
            (
                "response_cache:/api/x",
                p(&["bad_days:", "response_cache:"]),
                ":",
                Some("response_cache:"),
            ),
            ("session:1", p(&["bad_days:"]), ":", None),
            // longest prefix wins
            (
                "user:profile:1",
                p(&["user:", "user:profile:"]),
                ":",
                Some("user:profile:"),
            ),
            // auto grouping by first segment
            ("user:1:name", vec![], ":", Some("user:")),
            ("plainkey", vec![], ":", None),
            ("a/b", vec![], "/", Some("a/")),
        ];
        for (key, prefixes, delim, want) in cases {
            assert_eq!(group_of(key, prefixes, delim), *want, "key {key}");
        }
    }

    #[test]
    fn groups_are_capped_with_other() {
        let c = cfg(&[], 2);
        let mut cycle = Cycle::default();
        for k in ["a:1", "b:1", "c:1", "d:1", "a:2", "nodelim"] {
            record_key(&mut cycle, &c, k, -1, None);
        }
        let got: Vec<(&str, u64)> = cycle
            .groups
            .iter()
            .map(|(g, s)| (g.as_str(), s.keys))
            .collect();
        assert_eq!(got, vec![("a:", 2), ("b:", 1), ("other", 3)]);
    }

    #[test]
    fn ttl_memory_and_vanished_keys() {
        let c = cfg(&["x:"], 10);
        let mut cycle = Cycle::default();
        record_key(&mut cycle, &c, "x:1", -1, Some(100));
        record_key(&mut cycle, &c, "x:2", 30_000, Some(300));
        record_key(&mut cycle, &c, "x:3", 7_200_000, None);
        record_key(&mut cycle, &c, "x:4", -2, Some(999));
        let g = &cycle.groups["x:"];
        assert_eq!((g.keys, g.no_ttl, g.ttl.count), (3, 1, 2));
        assert_eq!(g.ttl.counts[0], 1, "30 s falls in the 60 s bucket");
        assert_eq!(g.estimated_bytes(), Some(600.0));
    }
}
