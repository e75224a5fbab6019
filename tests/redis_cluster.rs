//! A `[[redis]]` target on a Redis Cluster the test starts on loopback:
//! three primaries and three replicas (six `redis-server --cluster-enabled
//! yes`, joined by `redis-cli --cluster create --cluster-replicas 1`).
//! From one seed node perfwatch must find all six, report the slot state,
//! compute the cluster-wide hit ratio exactly as the primaries' INFO gives
//! it, follow a `CLUSTER FAILOVER` within two poll intervals (the node's
//! role label flips), and treat a dead node as that node's error only.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Perfwatch, assert_value, blocking, config, value, wait_polls, wait_redis_info};
use perfwatch_testbench::{RedisCluster, RedisServer};

/// perfwatch's poll interval here: the failover must show within two.
const INTERVAL: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(30);

/// Every `perfwatch_redis_cluster_node_up` series of target `c`: node →
/// (role, shard, value).
fn nodes(body: &str) -> BTreeMap<String, (String, String, f64)> {
    let mut out = BTreeMap::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix("perfwatch_redis_cluster_node_up{") else {
            continue;
        };
        let (labels, v) = rest.rsplit_once("} ").unwrap();
        if !labels.contains("target=\"c\"") {
            continue;
        }
        let label = |k: &str| {
            labels
                .split(&format!("{k}=\""))
                .nth(1)
                .map(|r| r.split('"').next().unwrap().to_owned())
                .unwrap_or_default()
        };
        out.insert(
            label("node"),
            (label("role"), label("shard"), v.parse().unwrap()),
        );
    }
    out
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// One INFO field of a node, as a number.
fn info_number(node: &RedisServer, field: &str) -> f64 {
    node.command(&["INFO", "stats"])
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Names of `n` keys that `node` serves (a write elsewhere answers MOVED).
fn owned_keys(node: &RedisServer, n: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0.. {
        let key = format!("k{i}");
        if node.command(&["SET", &key, "v"]).is_ok() {
            keys.push(key);
            if keys.len() == n {
                break;
            }
        }
    }
    keys
}

#[tokio::test]
async fn a_cluster_is_found_from_one_seed_and_followed_through_a_failover() {
    let cluster = blocking(|| RedisCluster::start(3, 1).unwrap_or_else(|e| panic!("{e}"))).await;
    let seed = &cluster.nodes()[0];
    let targets = format!(
        "[[redis]]\nname = \"c\"\nurl = \"{url}\"\n\
         [[redis]]\nname = \"one\"\nurl = \"{url}\"\ncluster = false\n",
        url = seed.url()
    );
    let pw = Perfwatch::start(&config("interval = \"1s\"\ntimeout = \"800ms\"", &targets)).await;

    // All six nodes from one seed, each up with its role and shard.
    let body = pw
        .wait_until(
            WAIT,
            "six nodes up, and the single-node target polled",
            |b| {
                let n = nodes(b);
                n.len() == 6
                    && n.values().all(|(_, _, up)| *up == 1.0)
                    && value(b, "perfwatch_target_up", &[("target", "one")]) == Some(1.0)
            },
        )
        .await;
    let found = nodes(&body);
    let mut want: Vec<String> = cluster.nodes().iter().map(|n| addr(n.port())).collect();
    want.sort();
    assert_eq!(found.keys().cloned().collect::<Vec<_>>(), want);
    let masters = cluster.ports_with_role("master").unwrap();
    let replicas = cluster.ports_with_role("slave").unwrap();
    assert_eq!((masters.len(), replicas.len()), (3, 3));
    for p in &masters {
        assert_eq!(found[&addr(*p)].0, "master", "{p}");
    }
    for p in &replicas {
        assert_eq!(found[&addr(*p)].0, "slave", "{p}");
    }
    // Three shards, each one primary and one replica.
    let mut shards: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (role, shard, _) in found.values() {
        shards
            .entry(shard.as_str())
            .or_default()
            .push(role.as_str());
    }
    assert_eq!(shards.len(), 3, "{shards:?}");
    for roles in shards.values_mut() {
        roles.sort();
        assert_eq!(roles, &["master", "slave"]);
    }
    // Slot state, from CLUSTER INFO, with redis_exporter's names.
    let t = [("target", "c")];
    for (name, want) in [
        ("redis_cluster_state", 1.0),
        ("redis_cluster_slots_assigned", 16384.0),
        ("redis_cluster_slots_ok", 16384.0),
        ("redis_cluster_slots_pfail", 0.0),
        ("redis_cluster_slots_fail", 0.0),
        ("redis_cluster_known_nodes", 6.0),
        ("redis_cluster_size", 3.0),
        ("perfwatch_redis_cluster_nodes_not_polled", 0.0),
    ] {
        assert_eq!(value(&body, name, &t), Some(want), "{name}");
    }
    let slots: f64 = masters
        .iter()
        .map(|p| {
            value(
                &body,
                "perfwatch_redis_cluster_node_slots",
                &[("target", "c"), ("node", &addr(*p))],
            )
            .unwrap()
        })
        .sum();
    assert_eq!(slots, 16384.0);
    // The single-node families are not mixed into a cluster target; the
    // same node with `cluster = false` is an ordinary target.
    assert_value(&body, "redis_connected_clients", &t, None);
    let one = [("target", "one")];
    assert!(value(&body, "redis_connected_clients", &one).is_some());
    assert_value(&body, "redis_cluster_state", &one, None);

    // The cluster-wide hit ratio: every primary gets other hits and
    // misses; perfwatch's total must equal the sum over the primaries'
    // INFO.
    let cluster = blocking(move || {
        for (i, port) in masters.iter().enumerate() {
            let node = cluster.node(*port).unwrap();
            for key in owned_keys(node, 10) {
                for _ in 0..i + 1 {
                    node.command(&["GET", &key]).unwrap();
                }
                // Same slot as `key` (hash tag): a miss on this primary.
                node.command(&["GET", &format!("{{{key}}}:absent")])
                    .unwrap();
            }
        }
        cluster
    })
    .await;
    let body = wait_polls(&pw, "c", 2.0, WAIT).await;
    let masters = cluster.ports_with_role("master").unwrap();
    let (mut hits, mut misses) = (0.0, 0.0);
    for p in &masters {
        let node = cluster.node(*p).unwrap();
        hits += info_number(node, "keyspace_hits");
        misses += info_number(node, "keyspace_misses");
    }
    assert!(hits >= 60.0 && misses >= 30.0, "{hits} {misses}");
    let total = [("target", "c"), ("window", "total")];
    assert_eq!(
        value(&body, "perfwatch_cache_hit_ratio", &total),
        Some(hits / (hits + misses))
    );
    assert_eq!(
        value(&body, "perfwatch_cache_lookups_in_window", &total),
        Some(hits + misses)
    );

    // A replica takes over its shard (CLUSTER FAILOVER): from the moment it
    // says it is a primary, perfwatch must label it so within two
    // intervals, and its old primary as a replica.
    let promoted = replicas[0];
    let node = cluster.node(promoted).unwrap();
    let old_primary: u16 = node
        .info_field("replication", "master_port")
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    node.command(&["CLUSTER", "FAILOVER"]).unwrap();
    let role_master = ("replication", "role", "master");
    wait_redis_info(node, role_master, WAIT, "the replica was never promoted").await;
    let promoted_at = Instant::now();
    let flipped = |b: &str| {
        nodes(b)
            .get(&addr(promoted))
            .is_some_and(|n| n.0 == "master")
    };
    pw.wait_until(
        2 * INTERVAL,
        "the promoted replica labelled master",
        flipped,
    )
    .await;
    let took = promoted_at.elapsed();
    assert!(took <= 2 * INTERVAL, "followed after {took:?}");
    // The shard is the same shard: its label is the one it had. Redis 7.0
    // has no shard id, so the label is the smallest member id, and a poll
    // taken while the nodes still disagree on the shard's members (right
    // after the failover) may show another: the label must come back.
    let shard_before = found[&addr(promoted)].1.clone();
    let body = pw
        .wait_until(
            WAIT,
            "the old primary labelled slave, the shard label as before",
            |b| {
                let now = nodes(b);
                now.get(&addr(old_primary))
                    .is_some_and(|n| n.0 == "slave" && n.2 == 1.0)
                    && now
                        .get(&addr(promoted))
                        .is_some_and(|n| n.1 == shard_before)
            },
        )
        .await;
    let after = nodes(&body);
    assert_eq!(after[&addr(promoted)].1, found[&addr(promoted)].1);
    assert_value(&body, "redis_cluster_slots_ok", &t, Some(16384.0));

    // A dead node is its own error: it reads down, the target stays up and
    // the others keep being polled.
    let mut cluster = cluster;
    let victim = old_primary;
    let nodes_before = cluster.nodes().len();
    let _cluster = blocking(move || {
        let n = cluster
            .nodes_mut()
            .iter_mut()
            .find(|n| n.port() == victim)
            .unwrap();
        n.kill().unwrap();
        cluster
    })
    .await;
    let body = pw
        .wait_until(WAIT, "the dead node down, the target up", |b| {
            let n = nodes(b);
            n.get(&addr(victim)).is_some_and(|v| v.2 == 0.0)
                && n.values().filter(|v| v.2 == 1.0).count() == nodes_before - 1
                && value(b, "perfwatch_target_up", &t) == Some(1.0)
        })
        .await;
    assert_value(&body, "redis_up", &t, Some(1.0));
    pw.stop().await;
}

#[tokio::test]
async fn the_key_sampler_counts_the_keys_of_every_primary() {
    let cluster = blocking(|| RedisCluster::start(3, 0).unwrap_or_else(|e| panic!("{e}"))).await;
    // Keys on every primary: 10 `user:` keys each, and 5 `order:` keys on
    // one of them (each written where its slot lives).
    let cluster = blocking(move || {
        for (i, node) in cluster.nodes().iter().enumerate() {
            let mut written = 0;
            for j in 0.. {
                if node
                    .command(&["SET", &format!("user:{i}:{j}"), "v"])
                    .is_ok()
                {
                    written += 1;
                    if written == 10 {
                        break;
                    }
                }
            }
        }
        let first = &cluster.nodes()[0];
        let mut written = 0;
        for j in 0.. {
            if first.command(&["SET", &format!("order:{j}"), "v"]).is_ok() {
                written += 1;
                if written == 5 {
                    break;
                }
            }
        }
        cluster
    })
    .await;
    let targets = format!(
        "[[redis]]\nname = \"c\"\nurl = \"{}\"\n[redis.keys]\nmax_keys_per_poll = 30\n",
        cluster.nodes()[1].url()
    );
    let pw = Perfwatch::start(&config("interval = \"1s\"\ntimeout = \"800ms\"", &targets)).await;
    let group = |b: &str, prefix: &str| {
        value(
            b,
            "perfwatch_redis_key_group_keys",
            &[("target", "c"), ("db", "db0"), ("prefix", prefix)],
        )
    };
    let body = pw
        .wait_until(WAIT, "a complete cycle over every primary", |b| {
            value(
                b,
                "perfwatch_redis_key_sampler_cycle_complete",
                &[("target", "c")],
            ) == Some(1.0)
        })
        .await;
    assert_eq!(group(&body, "user:"), Some(30.0));
    assert_eq!(group(&body, "order:"), Some(5.0));
    assert_eq!(
        value(
            &body,
            "perfwatch_redis_key_sampler_keys_scanned_total",
            &[("target", "c")]
        ),
        Some(35.0)
    );

    // Resharding: 100 slots move from one primary to another
    // (`redis-cli --cluster reshard`); the slot counts follow on the next
    // polls, without a reload.
    let slots = |b: &str, port: u16| {
        value(
            b,
            "perfwatch_redis_cluster_node_slots",
            &[("target", "c"), ("node", &addr(port))],
        )
    };
    let (from, to) = (cluster.nodes()[0].port(), cluster.nodes()[2].port());
    let (from_before, to_before) = (slots(&body, from).unwrap(), slots(&body, to).unwrap());
    let cluster = blocking(move || {
        let id = |port: u16| {
            cluster
                .node(port)
                .unwrap()
                .command(&["CLUSTER", "MYID"])
                .unwrap()
        };
        cluster
            .reshard(&id(from), &id(to), 100)
            .unwrap_or_else(|e| panic!("{e}"));
        cluster
    })
    .await;
    let moved = Instant::now();
    pw.wait_until(2 * INTERVAL, "100 slots moved", |b| {
        slots(b, from) == Some(from_before - 100.0) && slots(b, to) == Some(to_before + 100.0)
    })
    .await;
    assert!(moved.elapsed() <= 2 * INTERVAL);
    pw.stop().await;
    drop(cluster);
}
