//! The Redis collector against real, throwaway redis-server instances started
//! by the harness. Every number asserted here is exact.

mod common;

use std::time::Duration;

use common::{
    Expected, FAST_SHORT_TIMEOUT, Perfwatch, assert_value, assert_values, blocking, config,
    poll_errors, polls, sample, start_redis, timed, value, wait_polls,
};
use perfwatch::collectors::redis::catalog::KEY_SAMPLER_CYCLE_COMPLETE as CYCLE_COMPLETE;
use perfwatch_testbench::RedisServer;

/// How long [`wait_polls`] waits for the polls it asks for.
const POLL_WAIT: Duration = Duration::from_secs(10);

/// Sends the commands `fill` queues on one pipeline to `redis`.
async fn pipeline(redis: &RedisServer, fill: impl FnOnce(&mut redis::Pipeline) + Send + 'static) {
    let url = redis.url();
    blocking(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let mut pipe = redis::pipe();
        fill(&mut pipe);
        let _: () = pipe.query(&mut con).unwrap();
    })
    .await;
}

/// A fresh Redis watched by perfwatch as target `name`.
async fn watch_redis(name: &str) -> (RedisServer, Perfwatch) {
    let redis = start_redis(&[]);
    let pw = Perfwatch::start(&config(
        FAST_SHORT_TIMEOUT,
        &redis_target(name, &redis.url()),
    ))
    .await;
    (redis, pw)
}

fn client(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Sets `{prefix}0` .. `{prefix}{n - 1}` to `value`, one command each.
fn set_keys(con: &mut redis::Connection, prefix: &str, n: usize, value: &str) {
    for i in 0..n {
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}{i}"))
            .arg(value)
            .query(con)
            .unwrap();
    }
}

fn redis_target(name: &str, url: &str) -> String {
    format!("[[redis]]\nname = \"{name}\"\nurl = \"{url}\"\n")
}

#[tokio::test]
async fn hits_and_misses_give_exact_deltas_and_ratio() {
    let (redis, pw) = watch_redis("cache").await;
    let url = redis.url();
    // Let the first poll take the baseline before the workload.
    let body = wait_polls(&pw, "cache", 1.0, POLL_WAIT).await;
    let base_hits = value(&body, "redis_keyspace_hits_total", &[("target", "cache")]).unwrap();
    let base_misses = value(&body, "redis_keyspace_misses_total", &[("target", "cache")]).unwrap();
    blocking(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        set_keys(&mut con, "k", 10, "v");
        for i in 0..30 {
            let _: Option<String> = redis::cmd("GET")
                .arg(format!("k{}", i % 10))
                .query(&mut con)
                .unwrap();
        }
        for i in 0..10 {
            let _: Option<String> = redis::cmd("GET")
                .arg(format!("missing{i}"))
                .query(&mut con)
                .unwrap();
        }
    })
    .await;
    let body = wait_polls(&pw, "cache", 2.0, POLL_WAIT).await;
    let hits = value(&body, "redis_keyspace_hits_total", &[("target", "cache")]).unwrap();
    let misses = value(&body, "redis_keyspace_misses_total", &[("target", "cache")]).unwrap();
    assert_eq!(hits - base_hits, 30.0);
    assert_eq!(misses - base_misses, 10.0);
    let l = [("target", "cache"), ("window", "1m")];
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_cache_lookups_in_window", &l, Some(40.0)),
        ("perfwatch_cache_hit_ratio", &l, Some(0.75)),
        ("perfwatch_cache_hit_ratio", &[("target", "cache"), ("window", "total")], Some(0.75)),
    ];
    assert_values(&body, wanted);
    pw.stop().await;
}

#[tokio::test]
async fn idle_cache_has_no_ratio_but_zero_lookups() {
    let (_redis, pw) = watch_redis("idle").await;
    let body = wait_polls(&pw, "idle", 3.0, POLL_WAIT).await;
    let l = [("target", "idle"), ("window", "1m")];
    assert_value(&body, "perfwatch_cache_lookups_in_window", &l, Some(0.0));
    assert_eq!(
        value(&body, "perfwatch_cache_hit_ratio", &l),
        None,
        "no NaN, no sample"
    );
    assert!(!body.contains("NaN"), "{body}");
    pw.stop().await;
}

#[tokio::test]
async fn evictions_are_counted() {
    let redis = start_redis(&[("maxmemory", "2mb"), ("maxmemory-policy", "allkeys-lru")]);
    let pw = Perfwatch::start(&config(
        FAST_SHORT_TIMEOUT,
        &redis_target("small", &redis.url()),
    ))
    .await;
    let url = redis.url();
    let evicted = blocking(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let blob = "x".repeat(1024);
        set_keys(&mut con, "blob:", 5000, &blob);
        info_field(&mut con, "stats", "evicted_keys")
            .parse::<f64>()
            .unwrap()
    })
    .await;
    assert!(
        evicted > 1000.0,
        "the workload must force evictions, got {evicted}"
    );
    let body = wait_polls(&pw, "small", 2.0, POLL_WAIT).await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("redis_evicted_keys_total", &[("target", "small")], Some(evicted)),
        ("redis_memory_max_bytes", &[("target", "small")], Some(2.0 * 1024.0 * 1024.0)),
    ];
    assert_values(&body, wanted);
    let ratio = value(
        &body,
        "perfwatch_redis_memory_used_ratio",
        &[("target", "small")],
    )
    .unwrap();
    assert!(ratio > 0.5 && ratio <= 1.1, "memory ratio {ratio}");
    assert!(body.contains("maxmemory_policy=\"allkeys-lru\""));
    pw.stop().await;
}

#[tokio::test]
async fn key_sampler_counts_prefixes_exactly_without_keys_command() {
    let redis = start_redis(&[]);
    pipeline(&redis, |pipe| {
        // The seeds' bug: cache entries written without a TTL (`session:`).
        for (prefix, n, ttl) in [
            ("bad_days:", 5000, Some(3600)),
            ("response_cache:", 3000, Some(60)),
            ("session:", 2000, None),
        ] {
            for i in 0..n {
                let set = pipe.cmd("SET").arg(format!("{prefix}{i}")).arg("v");
                if let Some(ttl) = ttl {
                    set.arg("EX").arg(ttl);
                }
                set.ignore();
            }
        }
    })
    .await;
    let toml = config(
        FAST_SHORT_TIMEOUT,
        &format!(
            "{}[redis.keys]\ndelimiter = \":\"\nmax_keys_per_poll = 3000\nscan_count = 500\n",
            redis_target("keys", &redis.url())
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    let l = |p: &'static str| [("target", "keys"), ("prefix", p)];
    // 10k keys at 3k per poll: the first polls report a partial cycle.
    let body = wait_polls(&pw, "keys", 1.0, POLL_WAIT).await;
    let keys = [("target", "keys")];
    assert_eq!(value(&body, CYCLE_COMPLETE.name, &keys), Some(0.0));
    let body = pw
        .wait_value(Duration::from_secs(15), CYCLE_COMPLETE.name, &keys, 1.0)
        .await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_redis_key_group_keys", &l("bad_days:"), Some(5000.0)),
        ("perfwatch_redis_key_group_keys", &l("response_cache:"), Some(3000.0)),
        ("perfwatch_redis_key_group_keys", &l("session:"), Some(2000.0)),
        ("perfwatch_redis_key_group_keys_without_ttl", &l("session:"), Some(2000.0)),
        ("perfwatch_redis_key_group_keys_without_ttl", &l("bad_days:"), Some(0.0)),
        ("perfwatch_redis_key_group_ttl_seconds_count", &l("response_cache:"), Some(3000.0)),
    ];
    assert_values(&body, wanted);
    // TTL 60 s lands in the le=60 bucket; 3600 s in le=3600 but not le=900.
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_redis_key_group_ttl_seconds_bucket", &[("prefix", "response_cache:"), ("le", "60")], Some(3000.0)),
        ("perfwatch_redis_key_group_ttl_seconds_bucket", &[("prefix", "bad_days:"), ("le", "900")], Some(0.0)),
    ];
    assert_values(&body, wanted);
    assert!(
        value(
            &body,
            "perfwatch_redis_key_group_memory_bytes",
            &l("bad_days:")
        )
        .unwrap()
            > 0.0
    );
    assert!(
        value(
            &body,
            "perfwatch_redis_key_sampler_cycle_duration_seconds",
            &[("target", "keys")]
        )
        .is_some()
    );
    assert_eq!(
        value(
            &body,
            "perfwatch_redis_db_keys_without_ttl",
            &[("target", "keys"), ("db", "db0")]
        ),
        Some(2000.0)
    );
    // Never KEYS, and our own lookups do not move the hit ratio.
    assert_eq!(
        value(
            &body,
            "redis_commands_total",
            &[("target", "keys"), ("cmd", "keys")]
        ),
        None
    );
    let scans = [("target", "keys"), ("cmd", "scan")];
    assert!(sample(&body, "redis_commands_total", &scans) >= 4.0);
    assert_eq!(
        value(
            &body,
            "perfwatch_cache_lookups_in_window",
            &[("target", "keys"), ("window", "1m")]
        ),
        Some(0.0),
        "the sampler's PTTL lookups must not count as cache traffic"
    );
    pw.stop().await;
}

#[tokio::test]
async fn slowlog_entries_are_counted_once() {
    let redis = start_redis(&[
        ("slowlog-log-slower-than", "0"),
        ("slowlog-max-len", "1000"),
    ]);
    let pw = Perfwatch::start(&config(
        FAST_SHORT_TIMEOUT,
        &redis_target("slow", &redis.url()),
    ))
    .await;
    wait_polls(&pw, "slow", 1.0, POLL_WAIT).await;
    let url = redis.url();
    blocking(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        set_keys(&mut con, "s", 7, "v");
    })
    .await;
    let body = wait_polls(&pw, "slow", 3.0, POLL_WAIT).await;
    let l = [("target", "slow"), ("cmd", "set")];
    assert_eq!(
        value(&body, "perfwatch_redis_slowlog_duration_seconds_count", &l),
        Some(7.0)
    );
    assert!(value(&body, "redis_slowlog_length", &[("target", "slow")]).unwrap() >= 7.0);
    pw.stop().await;
}

#[tokio::test]
async fn killed_redis_goes_down_and_recovers_without_slowing_metrics() {
    let (mut redis, pw) = watch_redis("k").await;
    pw.wait_up("k", 1.0, Duration::from_secs(5)).await;
    redis.kill().unwrap();
    let (_, took) = timed(pw.wait_up("k", 0.0, Duration::from_secs(5))).await;
    assert!(
        took < Duration::from_millis(1500),
        "down after {took:?}, interval is 500ms"
    );
    let (body, scrape_time) = timed(pw.scrape()).await;
    assert!(
        scrape_time < Duration::from_millis(200),
        "/metrics took {scrape_time:?}"
    );
    assert!(poll_errors(&body, "k", "connect").unwrap() >= 1.0);
    let mut redis = blocking(move || {
        redis.restart().unwrap();
        redis
    })
    .await;
    let (_, took) = timed(pw.wait_up("k", 1.0, Duration::from_secs(5))).await;
    assert!(took < Duration::from_millis(1500), "up after {took:?}");
    // Only one connection from perfwatch at a time.
    let mut con = client(&redis);
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert_eq!(
        clients
            .lines()
            .filter(|l| l.contains("name=perfwatch"))
            .count(),
        1,
        "{clients}"
    );
    redis.kill().unwrap();
    pw.stop().await;
}

#[tokio::test]
async fn stopped_redis_delays_nothing_else() {
    let paused = start_redis(&[]);
    let healthy = start_redis(&[]);
    let toml = config(
        FAST_SHORT_TIMEOUT,
        &format!(
            "{}{}",
            redis_target("paused", &paused.url()),
            redis_target("healthy", &healthy.url())
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    wait_polls(&pw, "paused", 1.0, POLL_WAIT).await;
    paused.pause().unwrap();
    let body = pw
        .wait_for(
            Duration::from_secs(5),
            "timeout of the paused target",
            |b| (poll_errors(b, "paused", "timeout") >= Some(2.0)).then(|| b.to_owned()),
        )
        .await;
    assert_eq!(
        value(&body, "perfwatch_target_up", &[("target", "paused")]),
        Some(0.0)
    );
    // The healthy target keeps polling on schedule and /metrics stays fast.
    let before = polls(&body, "healthy");
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let (_, t) = timed(pw.scrape()).await;
        worst = worst.max(t);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = pw.scrape().await;
    assert!(
        polls(&body, "healthy") >= before + 3.0,
        "healthy target stalled"
    );
    assert_eq!(
        value(&body, "perfwatch_target_up", &[("target", "healthy")]),
        Some(1.0)
    );
    assert!(
        worst < Duration::from_millis(200),
        "slowest scrape {worst:?}"
    );
    paused.resume().unwrap();
    pw.wait_up("paused", 1.0, Duration::from_secs(5)).await;
    pw.stop().await;
}

#[tokio::test]
async fn series_of_a_dead_target_are_dropped_after_three_intervals() {
    let (mut redis, pw) = watch_redis("gone").await;
    wait_polls(&pw, "gone", 1.0, POLL_WAIT).await;
    redis.kill().unwrap();
    let body = pw
        .wait_for(Duration::from_secs(5), "stale", |b| {
            (value(b, "perfwatch_target_stale", &[("target", "gone")]) == Some(1.0))
                .then(|| b.to_owned())
        })
        .await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("redis_connected_clients", &[("target", "gone")], None),
        ("perfwatch_target_up", &[("target", "gone")], Some(0.0)),
    ];
    assert_values(&body, wanted);
    pw.stop().await;
}

#[tokio::test]
async fn reload_keeps_old_config_on_error_and_applies_target_changes() {
    let a = start_redis(&[]);
    let b = start_redis(&[]);
    let pw = Perfwatch::start(&config(FAST_SHORT_TIMEOUT, &redis_target("a", &a.url()))).await;
    wait_polls(&pw, "a", 1.0, POLL_WAIT).await;
    std::fs::write(&pw.config_path, "[[redis]]\nname = \"a\"\nurl = 5\n").unwrap();
    let (status, msg) = pw.reload().await;
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("redis[0].url"), "{msg}");
    let body = wait_polls(&pw, "a", 1.0, POLL_WAIT).await;
    assert_eq!(
        value(&body, "perfwatch_config_last_reload_successful", &[]),
        Some(0.0)
    );
    std::fs::write(
        &pw.config_path,
        config(FAST_SHORT_TIMEOUT, &redis_target("b", &b.url())),
    )
    .unwrap();
    let (status, msg) = pw.reload().await;
    assert_eq!(status, 200, "{msg}");
    let body = wait_polls(&pw, "b", 1.0, POLL_WAIT).await;
    assert_eq!(
        value(&body, "perfwatch_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(&body, "perfwatch_target_up", &[("target", "a")]),
        None,
        "removed target's series gone"
    );
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("redis_connected_clients", &[("target", "a")], None),
        ("perfwatch_target_up", &[("target", "b")], Some(1.0)),
    ];
    assert_values(&body, wanted);
    // The removed target's connection is closed.
    let mut con = client(&a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert!(!clients.contains("name=perfwatch"), "{clients}");
    pw.stop().await;
}

#[tokio::test]
async fn health_ready_landing_and_gzip() {
    let (_redis, pw) = watch_redis("web").await;
    assert_eq!(pw.get("/-/healthy").await.0, 200);
    wait_polls(&pw, "web", 1.0, POLL_WAIT).await;
    assert_eq!(pw.get("/-/ready").await.0, 200);
    let (status, page) = pw.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("web") && page.contains("class=\"up\""),
        "{page}"
    );
    let resp = reqwest::Client::new()
        .get(format!("http://{}/metrics", pw.addr))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let body = resp.bytes().await.unwrap();
    assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic");
    let text = pw.scrape().await;
    assert!(text.contains("perfwatch_build_info{version="));
    assert!(text.contains("process_resident_memory_bytes"));
    pw.stop().await;
}

/// The ACL documented in docs/SECURITY.md is enough for every part of the
/// collector (INFO, SLOWLOG, the key sampler's SCAN/PTTL/MEMORY USAGE), and
/// perfwatch runs nothing else: Redis's ACL LOG records every denied command,
/// so an empty log after several polls proves it.
#[tokio::test]
async fn the_documented_acl_user_is_enough_and_nothing_is_denied() {
    let redis = start_redis(&[("slowlog-log-slower-than", "0")]);
    let url = redis.url();
    blocking(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let acl = "ACL SETUSER perfwatch on >s3cret-acl resetkeys resetchannels -@all \
                   +info +slowlog|get +slowlog|len +client|setname \
                   +scan +pttl +memory|usage %R~*";
        let args: Vec<&str> = acl.split_whitespace().collect();
        let _: () = redis::cmd(args[0]).arg(&args[1..]).query(&mut con).unwrap();
        let mut pipe = redis::pipe();
        for i in 0..300 {
            pipe.cmd("SET")
                .arg(format!("bad_days:{i}"))
                .arg("v")
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        let _: () = redis::cmd("ACL")
            .arg("LOG")
            .arg("RESET")
            .query(&mut con)
            .unwrap();
    })
    .await;
    let target = format!(
        "[[redis]]\nname = \"acl\"\nurl = \"{}\"\nusername = \"perfwatch\"\npassword = \"s3cret-acl\"\n\
         [redis.keys]\ndelimiter = \":\"\nmemory_sample_every = 1\n",
        redis.url()
    );
    let pw = Perfwatch::start(&config(FAST_SHORT_TIMEOUT, &target)).await;
    let body = wait_polls(&pw, "acl", 3.0, POLL_WAIT).await;
    assert_eq!(
        value(&body, "perfwatch_target_up", &[("target", "acl")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &body,
            "perfwatch_redis_key_group_keys_without_ttl",
            &[("target", "acl"), ("prefix", "bad_days:")]
        ),
        Some(300.0),
        "the key sampler ran under the ACL user"
    );
    assert!(
        value(
            &body,
            "perfwatch_redis_key_group_memory_bytes",
            &[("target", "acl"), ("prefix", "bad_days:")]
        )
        .is_some_and(|b| b > 0.0),
        "MEMORY USAGE ran under the ACL user"
    );
    assert!(value(&body, "redis_slowlog_length", &[("target", "acl")]).is_some());
    let url = redis.url();
    let denied = blocking(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let log: Vec<redis::Value> = redis::cmd("ACL").arg("LOG").query(&mut con).unwrap();
        format!("{log:?}")
    })
    .await;
    assert_eq!(denied, "[]", "perfwatch ran commands outside its ACL");
    pw.stop().await;
}

/// A keyspace smaller than one poll's budget is walked once per
/// `min_cycle_interval`, not on every poll; "0s" restores a cycle per poll.
#[tokio::test]
async fn key_sampler_waits_min_cycle_interval_between_cycles() {
    let redis = start_redis(&[]);
    pipeline(&redis, |pipe| {
        for i in 0..100 {
            pipe.cmd("SET").arg(format!("k:{i}")).arg("v").ignore();
        }
    })
    .await;
    let toml = config(
        FAST_SHORT_TIMEOUT,
        &format!(
            "{}[redis.keys]\n{}[redis.keys]\nmin_cycle_interval = \"0s\"\n",
            redis_target("default", &redis.url()),
            redis_target("every", &redis.url()),
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    wait_polls(&pw, "default", 1.0, POLL_WAIT).await;
    let body = wait_polls(&pw, "default", 4.0, POLL_WAIT).await;
    let cycles = |t| {
        value(
            &body,
            "perfwatch_redis_key_sampler_cycles_total",
            &[("target", t)],
        )
    };
    let scanned = |t| {
        value(
            &body,
            "perfwatch_redis_key_sampler_keys_scanned_total",
            &[("target", t)],
        )
    };
    assert_eq!(
        cycles("default"),
        Some(1.0),
        "one cycle within the first minute"
    );
    assert_eq!(scanned("default"), Some(100.0));
    assert!(cycles("every").unwrap() >= 4.0, "{:?}", cycles("every"));
    pw.stop().await;
}
