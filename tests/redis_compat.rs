//! perfwatch's Redis families against the peer they are named after:
//! prometheus-redis-exporter (Debian's redis_exporter 1.45) and perfwatch
//! watch the same throwaway primary (AOF on, one replica) and replica, and
//! every family both export must have the peer's name, TYPE, label names
//! (plus perfwatch's `target`), series and values. The key checks are
//! compared with the peer's `-check-single-keys` and `-check-keys`.
//!
//! Values: facts that do not move are compared exactly. Counters and other
//! values that only grow (offsets, uptime, CPU, the peak) are read by
//! perfwatch before and after the peer's scrape, and the peer's reading
//! must lie between. Each exporter's own connection shows in the other's
//! reading of `connected_clients` and moves the memory figures, hence a
//! small absolute or relative tolerance there.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::peer::{PeerExporter, Scrape};
use common::{FAST, Perfwatch, config, wait_polls};
use perfwatch_testbench::RedisServer;

/// How a perfwatch value is compared with the peer's.
#[derive(Clone, Copy, Debug)]
enum Tol {
    /// The same value in both perfwatch scrapes and the peer's.
    Exact,
    /// Only grows: perfwatch before ≤ peer ≤ perfwatch after.
    Between,
    /// Within this much of perfwatch's readings.
    Abs(f64),
    /// Within this share of perfwatch's readings.
    Rel(f64),
}
use Tol::*;

/// redis_exporter's `…_duration_sec` families, exported as `…_seconds`:
/// promtool rejects abbreviated units (docs/collectors/redis.md, Metrics).
const RENAMED: [(&str, &str); 4] = [
    (
        "redis_rdb_last_bgsave_duration_sec",
        "redis_rdb_last_bgsave_duration_seconds",
    ),
    (
        "redis_rdb_current_bgsave_duration_sec",
        "redis_rdb_current_bgsave_duration_seconds",
    ),
    (
        "redis_aof_last_rewrite_duration_sec",
        "redis_aof_last_rewrite_duration_seconds",
    ),
    (
        "redis_aof_current_rewrite_duration_sec",
        "redis_aof_current_rewrite_duration_seconds",
    ),
];

/// Every family compared (peer names), with its tolerance. Families only a
/// replica or only a primary has are compared where the peer has them.
const FAMILIES: &[(&str, Tol)] = &[
    // Server, clients, memory.
    ("redis_up", Exact),
    ("redis_uptime_in_seconds", Between),
    ("redis_connected_clients", Abs(2.0)),
    ("redis_blocked_clients", Exact),
    ("redis_config_maxclients", Exact),
    ("redis_memory_used_bytes", Rel(0.15)),
    ("redis_memory_used_rss_bytes", Rel(0.15)),
    ("redis_memory_used_peak_bytes", Between),
    ("redis_memory_used_lua_bytes", Rel(0.15)),
    ("redis_memory_max_bytes", Exact),
    ("redis_mem_fragmentation_ratio", Rel(0.3)),
    ("redis_total_system_memory_bytes", Exact),
    ("redis_instance_info", Exact),
    ("redis_pubsub_channels", Exact),
    ("redis_loading_dump_file", Exact),
    // Stats.
    ("redis_keyspace_hits_total", Between),
    ("redis_keyspace_misses_total", Between),
    ("redis_evicted_keys_total", Between),
    ("redis_expired_keys_total", Between),
    ("redis_connections_received_total", Between),
    ("redis_rejected_connections_total", Between),
    ("redis_commands_processed_total", Between),
    ("redis_net_input_bytes_total", Between),
    ("redis_net_output_bytes_total", Between),
    ("redis_cpu_sys_seconds_total", Between),
    ("redis_cpu_user_seconds_total", Between),
    ("redis_latest_fork_seconds", Exact),
    ("redis_commands_total", Between),
    ("redis_commands_duration_seconds_total", Between),
    ("redis_commands_rejected_calls_total", Between),
    ("redis_commands_failed_calls_total", Between),
    ("redis_errors_total", Between),
    ("redis_slowlog_length", Between),
    ("redis_slowlog_last_id", Between),
    // Keyspace.
    ("redis_db_keys", Exact),
    ("redis_db_keys_expiring", Exact),
    ("redis_db_avg_ttl_seconds", Exact),
    // Persistence.
    ("redis_rdb_changes_since_last_save", Between),
    ("redis_rdb_bgsave_in_progress", Exact),
    ("redis_rdb_last_save_timestamp_seconds", Exact),
    ("redis_rdb_last_bgsave_status", Exact),
    ("redis_rdb_last_bgsave_duration_sec", Exact),
    ("redis_rdb_current_bgsave_duration_sec", Exact),
    ("redis_rdb_last_cow_size_bytes", Exact),
    ("redis_aof_enabled", Exact),
    ("redis_aof_rewrite_in_progress", Exact),
    ("redis_aof_rewrite_scheduled", Exact),
    ("redis_aof_last_rewrite_duration_sec", Exact),
    ("redis_aof_current_rewrite_duration_sec", Exact),
    ("redis_aof_last_cow_size_bytes", Exact),
    ("redis_aof_last_bgrewrite_status", Exact),
    ("redis_aof_last_write_status", Exact),
    ("redis_aof_current_size_bytes", Between),
    ("redis_aof_base_size_bytes", Exact),
    ("redis_aof_pending_rewrite", Exact),
    ("redis_aof_buffer_length", Exact),
    // (redis_aof_rewrite_buffer_length: Redis < 7 only, not on this server.)
    ("redis_aof_pending_bio_fsync", Exact),
    ("redis_aof_delayed_fsync", Exact),
    // Replication. The primary pings its replica every second
    // (repl-ping-replica-period 1) and the replica acknowledges every
    // second: offsets grow, the replica's last I/O and the primary's view of
    // its lag stay between 0 and 1 (2 on a busy machine).
    ("redis_connected_slaves", Exact),
    ("redis_master_repl_offset", Between),
    ("redis_second_repl_offset", Exact),
    ("redis_repl_backlog_is_active", Exact),
    ("redis_replication_backlog_bytes", Exact),
    ("redis_repl_backlog_first_byte_offset", Exact),
    ("redis_repl_backlog_history_bytes", Between),
    ("redis_slave_expires_tracked_keys", Exact),
    ("redis_connected_slave_offset_bytes", Between),
    ("redis_connected_slave_lag_seconds", Abs(2.0)),
    ("redis_master_link_up", Exact),
    ("redis_master_last_io_seconds_ago", Abs(2.0)),
    ("redis_master_sync_in_progress", Exact),
    ("redis_slave_repl_offset", Between),
    ("redis_slave_priority", Exact),
    ("redis_slave_info", Exact),
    // Key checks.
    ("redis_key_size", Exact),
    ("redis_key_value", Exact),
];

/// Keys named to both exporters (`-check-single-keys`, `keys`); "missing"
/// does not exist, "db1list" is in database 1.
const SINGLE_KEYS: &[&str] = &[
    "celery",
    "counter",
    "flt",
    "name",
    "s",
    "z",
    "h",
    "st",
    "hll",
    "missing",
    "db1=db1list",
];
/// Pattern for both (`-check-keys`, `patterns`).
const PATTERN: &str = "queue:*";

fn cmd(redis: &RedisServer, args: &[&str]) -> String {
    redis
        .command(args)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Keys of every type, in db0 and db1.
fn populate(p: &RedisServer) {
    cmd(p, &["RPUSH", "celery", "j1", "j2", "j3", "j4", "j5"]);
    cmd(p, &["SET", "counter", "42"]);
    cmd(p, &["SET", "flt", "3.5"]);
    cmd(p, &["SET", "name", "hello"]);
    cmd(p, &["SADD", "s", "a", "b", "c"]);
    cmd(p, &["ZADD", "z", "1", "a", "2", "b"]);
    cmd(p, &["HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4"]);
    cmd(p, &["XADD", "st", "*", "a", "1"]);
    cmd(p, &["XADD", "st", "*", "a", "2"]);
    cmd(p, &["PFADD", "hll", "a", "b", "c", "d", "e", "f", "g"]);
    cmd(p, &["RPUSH", "queue:a", "x", "y"]);
    cmd(p, &["SET", "queue:n", "7"]);
    cmd(p, &["RPUSH", "db1list", "x", "y", "z"]);
    cmd(p, &["MOVE", "db1list", "1"]);
}

/// Waits until the replica's link is up and the primary lists it online.
fn wait_replicating(primary: &RedisServer, replica: &RedisServer) {
    let started = Instant::now();
    loop {
        let r = cmd(replica, &["INFO", "replication"]);
        let p = cmd(primary, &["INFO", "replication"]);
        if r.contains("master_link_status:up") && p.contains("state=online") {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replica never came online:\n{r}\n{p}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn start_peer(redis: &RedisServer, extra: &[&str]) -> PeerExporter {
    let addr = format!("-redis.addr=redis://127.0.0.1:{}", redis.port());
    let mut args = vec![addr.as_str(), "-include-system-metrics"];
    args.extend_from_slice(extra);
    PeerExporter::start("prometheus-redis-exporter", &args, &[], &[], "redis_up 1").await
}

/// A series' label values, in the order of the peer's label names.
fn key_of(labels: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn series(s: &Scrape, family: &str) -> std::collections::BTreeMap<Vec<(String, String)>, f64> {
    s.samples
        .iter()
        .filter(|(n, _, _)| n == family)
        .map(|(_, l, v)| (key_of(l), *v))
        .collect()
}

/// Compares every family of `FAMILIES` the peer exports for one server;
/// returns the families compared.
fn compare(server: &str, theirs: &Scrape, before: &Scrape, after: &Scrape) -> BTreeSet<String> {
    let mut compared = BTreeSet::new();
    for (family, tol) in FAMILIES {
        if !theirs.types.contains_key(*family) || series(theirs, family).is_empty() {
            continue;
        }
        compared.insert((*family).to_owned());
        let ours = RENAMED
            .iter()
            .find(|(p, _)| p == family)
            .map_or(*family, |(_, o)| *o);
        let what = format!("{server}: {family}");
        assert_eq!(
            after.types.get(ours),
            theirs.types.get(*family),
            "{what}: TYPE"
        );
        assert_eq!(
            after.label_names(ours),
            theirs.label_names(family),
            "{what}: label names (besides target)"
        );
        let (t, b, a) = (
            series(theirs, family),
            series(before, ours),
            series(after, ours),
        );
        for (key, peer) in &t {
            let Some(&hi) = a.get(key) else {
                // redis_exporter lists every database up to CONFIG GET
                // databases, empty ones as 0; perfwatch only those in INFO
                // keyspace.
                assert!(
                    family.starts_with("redis_db_keys") && *peer == 0.0,
                    "{what}{key:?}: perfwatch has no such series (peer {peer})"
                );
                continue;
            };
            let lo = b.get(key).copied().unwrap_or(0.0);
            let ok = match tol {
                Exact => *peer == lo && *peer == hi,
                Between => lo <= *peer && *peer <= hi,
                Abs(d) => (peer - lo).abs() <= *d && (peer - hi).abs() <= *d,
                Rel(r) => {
                    (peer - lo).abs() <= r * peer.abs() && (peer - hi).abs() <= r * peer.abs()
                }
            };
            assert!(
                ok,
                "{what}{key:?} ({tol:?}): peer {peer}, perfwatch {lo} before and {hi} after"
            );
        }
        for key in a.keys() {
            assert!(
                t.contains_key(key),
                "{what}{key:?}: perfwatch has a series the peer does not"
            );
        }
    }
    compared
}

#[tokio::test]
async fn redis_families_match_redis_exporter() {
    let primary = RedisServer::start(&[("appendonly", "yes"), ("repl-ping-replica-period", "1")])
        .unwrap_or_else(|e| panic!("{e}"));
    let replicaof = format!("127.0.0.1 {}", primary.port());
    let replica =
        RedisServer::start(&[("replicaof", &replicaof)]).unwrap_or_else(|e| panic!("{e}"));
    wait_replicating(&primary, &replica);
    populate(&primary);

    let single = format!("-check-single-keys={}", SINGLE_KEYS.join(","));
    let pattern = format!("-check-keys={PATTERN}");
    let peer_p = start_peer(&primary, &[&single, &pattern]).await;
    let peer_r = start_peer(&replica, &[]).await;
    let quoted: Vec<String> = SINGLE_KEYS.iter().map(|k| format!("\"{k}\"")).collect();
    let toml = config(
        FAST,
        &format!(
            "[[redis]]\nname = \"primary\"\nurl = \"{}\"\n\
             [redis.key_checks]\nkeys = [{}]\npatterns = [\"{PATTERN}\"]\n\
             [[redis]]\nname = \"replica\"\nurl = \"{}\"\n",
            primary.url(),
            quoted.join(", "),
            replica.url()
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    for t in ["primary", "replica"] {
        wait_polls(&pw, t, 2.0, Duration::from_secs(15)).await;
    }

    let before = Scrape::parse(&pw.scrape().await);
    let (theirs_p, theirs_r) = (peer_p.scrape().await, peer_r.scrape().await);
    // Two more polls: the second began after the peers' scrapes.
    for t in ["primary", "replica"] {
        wait_polls(&pw, t, 2.0, Duration::from_secs(15)).await;
    }
    let after = Scrape::parse(&pw.scrape().await);

    let mut compared = compare(
        "primary",
        &theirs_p,
        &before.target("primary"),
        &after.target("primary"),
    );
    compared.extend(compare(
        "replica",
        &theirs_r,
        &before.target("replica"),
        &after.target("replica"),
    ));

    // Every family on the list was compared on one server or the other (so
    // the list holds no name the peer does not have) ...
    let listed: BTreeSet<String> = FAMILIES.iter().map(|(f, _)| (*f).to_owned()).collect();
    let never: Vec<&String> = listed.difference(&compared).collect();
    assert!(never.is_empty(), "never compared: {never:?}");
    // ... and every redis_ family both export is on it.
    let peer_families: BTreeSet<&String> =
        theirs_p.types.keys().chain(theirs_r.types.keys()).collect();
    for family in after.types.keys().filter(|f| f.starts_with("redis_")) {
        assert!(
            !peer_families.contains(family) || listed.contains(family),
            "{family} is exported by both but not compared"
        );
    }
    let not_exported: Vec<&&String> = peer_families
        .iter()
        .filter(|f| f.starts_with("redis_") && !after.types.contains_key(f.as_str()))
        .filter(|f| !RENAMED.iter().any(|(p, _)| *p == f.as_str()))
        .collect();
    eprintln!("redis_exporter families perfwatch does not export: {not_exported:?}");

    // The comparisons above saw real values, not two empty readings.
    let p = after.target("primary");
    let key = |k: &str, family: &str| {
        let (db, name) = k.split_once('=').unwrap_or(("db0", k));
        p.series(family, &["db", "key"])
            .get(&vec![db.to_owned(), name.to_owned()])
            .copied()
    };
    assert_eq!(key("celery", "redis_key_size"), Some(5.0));
    assert_eq!(key("hll", "redis_key_size"), Some(7.0));
    assert_eq!(key("missing", "redis_key_size"), Some(0.0));
    assert_eq!(key("db1=db1list", "redis_key_size"), Some(3.0));
    assert_eq!(key("queue:a", "redis_key_size"), Some(2.0));
    assert_eq!(key("flt", "redis_key_value"), Some(3.5));
    assert_eq!(key("name", "redis_key_value"), None);
    assert!(compared.contains("redis_connected_slave_offset_bytes"));
    assert!(compared.contains("redis_master_link_up"));
    assert!(compared.contains("redis_aof_current_size_bytes"));
    assert_eq!(
        p.series("perfwatch_redis_key_checks_over_limit", &[])
            .values()
            .collect::<Vec<_>>(),
        [&0.0]
    );
    assert_eq!(
        p.series("perfwatch_redis_key_check_errors_total", &[])
            .values()
            .collect::<Vec<_>>(),
        [&0.0]
    );
    common::promtool_check_metrics(&pw.scrape().await);
    pw.stop().await;
}

/// The grants of docs/SECURITY.md for the INFO poll plus those for
/// `[redis.key_checks]`.
const KEY_CHECK_ACL: &str = "ACL SETUSER perfwatch on >kc-secret resetkeys resetchannels -@all \
    +info +slowlog|get +slowlog|len +client|setname \
    +scan +pttl +memory|usage \
    +type +llen +scard +zcard +hlen +xlen +strlen +getrange +pfcount +select %R~*";

#[tokio::test]
async fn key_checks_are_bounded_counted_and_need_only_the_documented_grants() {
    let redis = RedisServer::start(&[("databases", "2")]).unwrap_or_else(|e| panic!("{e}"));
    cmd(&redis, &["SET", "a", "12"]);
    for i in 0..30 {
        cmd(&redis, &["RPUSH", &format!("q:{i}"), "job"]);
    }
    let acl: Vec<&str> = KEY_CHECK_ACL.split_whitespace().collect();
    cmd(&redis, &acl);
    cmd(&redis, &["ACL", "LOG", "RESET"]);
    let url = format!("redis://perfwatch:kc-secret@127.0.0.1:{}/0", redis.port());
    // db5 does not exist (databases 2); 30 matches of q:* with room for 10
    // keys; SCAN walks 5 keys per call and 10 per poll, so the pattern
    // needs several polls for one pass.
    let toml = config(
        FAST,
        &format!(
            "[[redis]]\nname = \"kc\"\nurl = \"{url}\"\n[redis.key_checks]\n\
             keys = [\"db5=nope\", \"a\"]\npatterns = [\"q:*\"]\n\
             max_keys = 10\nscan_count = 5\nmax_scan_per_poll = 10\n"
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    let pattern = [("target", "kc"), ("db", "db0"), ("pattern", "q:*")];
    let first = pw
        .wait_for(Duration::from_secs(15), "a first key-check poll", |b| {
            common::value(b, "perfwatch_redis_key_check_pattern_complete", &pattern)
                .map(|_| b.to_owned())
        })
        .await;
    assert_eq!(
        common::value(
            &first,
            "perfwatch_redis_key_check_pattern_complete",
            &pattern
        ),
        Some(0.0),
        "30+ keys at 10 per poll: not one pass after the first poll"
    );
    pw.wait_value(
        Duration::from_secs(20),
        "perfwatch_redis_key_check_pattern_complete",
        &pattern,
        1.0,
    )
    .await;
    let body = wait_polls(&pw, "kc", 1.0, Duration::from_secs(15)).await;
    let s = Scrape::parse(&body).target("kc");
    // Named first ("nope" fails its SELECT), then the 10 smallest matches
    // cut to the 8 that fit: q:0, q:1, q:10 … q:15.
    let mut want: Vec<Vec<String>> = vec![vec!["db0".into(), "a".into()]];
    for k in ["q:0", "q:1", "q:10", "q:11", "q:12", "q:13", "q:14", "q:15"] {
        want.push(vec!["db0".into(), k.into()]);
    }
    want.sort();
    let sizes = s.series("redis_key_size", &["db", "key"]);
    assert_eq!(sizes.keys().cloned().collect::<Vec<_>>(), want);
    assert_eq!(sizes[&vec!["db0".to_owned(), "a".to_owned()]], 2.0);
    assert!(
        sizes
            .iter()
            .filter(|(k, _)| k[1] != "a")
            .all(|(_, v)| *v == 1.0)
    );
    assert_eq!(
        s.series("redis_key_value", &["key"])
            .into_iter()
            .collect::<Vec<_>>(),
        [(vec!["a".to_owned()], 12.0)]
    );
    // 20 matches not kept by the pattern, 2 more cut by max_keys.
    assert_eq!(
        s.series("perfwatch_redis_key_checks_over_limit", &[])
            .values()
            .collect::<Vec<_>>(),
        [&22.0]
    );
    let errors = s.series("perfwatch_redis_key_check_errors_total", &[]);
    assert!(errors.values().all(|e| *e >= 1.0), "{errors:?}");
    // The failed SELECT left the connection in db0: the poll goes on.
    assert_eq!(
        s.series("perfwatch_target_up", &[])
            .values()
            .collect::<Vec<_>>(),
        [&1.0]
    );
    // The checks' own lookups are not cache traffic.
    let l = [("target", "kc"), ("window", "1m")];
    assert_eq!(
        common::value(&body, "perfwatch_cache_lookups_in_window", &l),
        Some(0.0)
    );
    // Nothing was denied.
    assert_eq!(cmd(&redis, &["ACL", "LOG"]), "");
    pw.stop().await;
}
