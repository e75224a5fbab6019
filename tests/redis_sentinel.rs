//! A `[[redis]]` target resolved through Redis Sentinel, on a real set the
//! test starts on loopback: one primary, one replica, three sentinels (with
//! a password of their own). perfwatch must poll the primary the sentinels
//! name, follow `SENTINEL FAILOVER` within two poll intervals without a
//! reload, and report the sentinels' view (replicas and sentinels known,
//! quorum, which sentinels answer), with redis_exporter's names, labels
//! and values (Debian's redis_exporter 1.45 pointed at one sentinel).

mod common;

use std::time::{Duration, Instant};

use common::peer::{PeerExporter, Scrape};
use common::{Perfwatch, assert_value, blocking, config, start_redis, value, wait_redis_info};
use perfwatch_testbench::{RedisSentinel, RedisServer};

/// perfwatch's poll interval here: the failover must show within two.
const INTERVAL: Duration = Duration::from_secs(1);
const MASTER: &str = "mymaster";
const SENTINEL_PASSWORD: &str = "sentinel-s3cret";
/// Long enough for sentinels to find each other and the replica (hello
/// messages every 2 s, INFO of the primary every 10 s).
const SETUP_WAIT: Duration = Duration::from_secs(40);

fn resolved(body: &str, port: u16) -> bool {
    let address = format!("127.0.0.1:{port}");
    value(
        body,
        "perfwatch_redis_sentinel_resolved_master_info",
        &[("target", "ha"), ("master_address", &address)],
    ) == Some(1.0)
}

/// The target polls the server on `port`, and that server is a primary.
fn polls_primary_on(body: &str, port: u16) -> bool {
    let port = port.to_string();
    resolved(body, port.parse().unwrap())
        && value(
            body,
            "redis_instance_info",
            &[("target", "ha"), ("role", "master"), ("tcp_port", &port)],
        ) == Some(1.0)
}

/// The sentinel families redis_exporter 1.45 (Debian's) exports for one
/// sentinel; `redis_sentinel_master_setting_ckquorum` is newer.
const PEER_FAMILIES: [&str; 6] = [
    "redis_sentinel_master_status",
    "redis_sentinel_master_slaves",
    "redis_sentinel_master_ok_slaves",
    "redis_sentinel_master_sentinels",
    "redis_sentinel_master_ok_sentinels",
    "redis_sentinel_master_ckquorum_status",
];

/// redis_exporter pointed at `sentinel` and perfwatch's series for that
/// sentinel: the same families, types, label names (plus perfwatch's
/// `target` and `sentinel`), series and values.
async fn same_view_as_redis_exporter(pw: &Perfwatch, sentinel: &RedisSentinel) {
    let addr = format!("-redis.addr=redis://{}", sentinel.host_port());
    let password = format!("-redis.password={SENTINEL_PASSWORD}");
    let peer = PeerExporter::start(
        "prometheus-redis-exporter",
        &[addr.as_str(), password.as_str()],
        &[],
        &[],
        "redis_up 1",
    )
    .await;
    let theirs = peer.scrape().await;
    let ours = Scrape::parse(&pw.scrape().await).target("ha");
    let label = sentinel.host_port();
    for family in PEER_FAMILIES {
        assert_eq!(theirs.types.get(family), ours.types.get(family), "{family}");
        let mut want = theirs.label_names(family);
        assert!(!want.is_empty(), "the peer has no {family}");
        want.insert("sentinel".into());
        assert_eq!(ours.label_names(family), want, "{family}");
        let mut keys: Vec<String> = theirs.label_names(family).into_iter().collect();
        keys.push("sentinel".into());
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mine: Vec<_> = ours
            .series(family, &keys)
            .into_iter()
            .filter(|(k, _)| k.last() == Some(&label))
            .map(|(mut k, v)| {
                k.pop();
                (k, v)
            })
            .collect();
        let peer: Vec<_> = theirs
            .series(family, &keys[..keys.len() - 1])
            .into_iter()
            .collect();
        assert_eq!(mine, peer, "{family}");
    }
}

#[tokio::test]
async fn a_sentinel_failover_is_followed_within_two_intervals() {
    let primary = start_redis(&[]);
    let replica = primary.start_replica(&[]).unwrap_or_else(|e| panic!("{e}"));
    let (primary_port, replica_port) = (primary.port(), replica.port());
    // The replica linked before the sentinels start, so that they find it
    // in their first INFO of the primary.
    let link_up = ("replication", "master_link_status", "up");
    wait_redis_info(&replica, link_up, SETUP_WAIT, "the replica never linked").await;
    let (primary, replica, sentinels) = blocking(move || {
        let sentinels: Vec<RedisSentinel> = (0..3)
            .map(|_| {
                RedisSentinel::start(&primary, MASTER, 2, Some(SENTINEL_PASSWORD))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        for s in &sentinels {
            s.wait_for_peers(1, 2, SETUP_WAIT)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        (primary, replica, sentinels)
    })
    .await;
    let list = sentinels
        .iter()
        .map(|s| format!("\"{}\"", s.host_port()))
        .collect::<Vec<_>>()
        .join(", ");
    let targets = format!(
        "[[redis]]\nname = \"ha\"\nsentinels = [{list}]\nmaster_name = \"{MASTER}\"\n\
         sentinel_password = \"{SENTINEL_PASSWORD}\"\n\
         [redis.key_checks]\nkeys = [\"marker\"]\n"
    );
    let pw = Perfwatch::start(&config("interval = \"1s\"\ntimeout = \"800ms\"", &targets)).await;
    primary.command(&["SET", "marker", "1"]).unwrap();

    // Before: the primary the sentinels name is polled, and every sentinel
    // answers with the same, right view.
    let body = pw
        .wait_until(
            SETUP_WAIT,
            "the primary polled through the sentinels",
            |b| {
                polls_primary_on(b, primary_port)
                    && value(b, "redis_connected_slaves", &[("target", "ha")]) == Some(1.0)
                    && value(b, "redis_key_value", &[("target", "ha"), ("key", "marker")])
                        == Some(1.0)
            },
        )
        .await;
    let primary_address = format!("127.0.0.1:{primary_port}");
    for s in &sentinels {
        let l = [
            ("target", "ha"),
            ("sentinel", &s.host_port()),
            ("master_name", MASTER),
            ("master_address", &primary_address),
        ];
        for (name, want) in [
            ("redis_sentinel_master_slaves", 1.0),
            ("redis_sentinel_master_ok_slaves", 1.0),
            ("redis_sentinel_master_sentinels", 3.0),
            ("redis_sentinel_master_ok_sentinels", 3.0),
            ("redis_sentinel_master_setting_ckquorum", 2.0),
        ] {
            assert_eq!(value(&body, name, &l), Some(want), "{name}{l:?}");
        }
        let mut status = l.to_vec();
        status.push(("master_status", "ok"));
        assert_value(&body, "redis_sentinel_master_status", &status, Some(1.0));
        let one = [("target", "ha"), ("sentinel", &s.host_port())];
        assert_value(&body, "perfwatch_redis_sentinel_up", &one, Some(1.0));
        assert_eq!(
            value(&body, "redis_sentinel_master_ckquorum_status", &one),
            Some(1.0)
        );
    }
    let t = [("target", "ha")];
    assert_eq!(
        value(&body, "perfwatch_redis_sentinel_master_addresses", &t),
        Some(1.0)
    );
    assert_eq!(
        value(&body, "perfwatch_redis_sentinel_failovers_total", &t),
        Some(0.0)
    );
    assert!(
        !body.contains(SENTINEL_PASSWORD),
        "the sentinel password is in the scrape"
    );
    same_view_as_redis_exporter(&pw, &sentinels[0]).await;

    // The failover: from the moment a sentinel names the replica, perfwatch
    // must poll it within two intervals.
    sentinels[0]
        .command(&["SENTINEL", "FAILOVER", MASTER])
        .unwrap_or_else(|e| panic!("{e}"));
    let switched = Instant::now();
    loop {
        if sentinels
            .iter()
            .any(|s| s.master_port().ok() == Some(replica_port))
        {
            break;
        }
        assert!(
            switched.elapsed() < SETUP_WAIT,
            "no sentinel ever named the replica"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let named = Instant::now();
    pw.wait_until(2 * INTERVAL, "the new primary polled", |b| {
        polls_primary_on(b, replica_port)
    })
    .await;
    let followed = named.elapsed();
    assert!(followed <= 2 * INTERVAL, "followed after {followed:?}");

    // A value written to the new primary reads back through perfwatch, and
    // the old primary is its replica now.
    replica.command(&["SET", "marker", "2"]).unwrap();
    let body = pw
        .wait_until(SETUP_WAIT, "the new primary's value and replica", |b| {
            value(b, "redis_key_value", &[("target", "ha"), ("key", "marker")]) == Some(2.0)
                && value(b, "redis_connected_slaves", &t) == Some(1.0)
                && value(b, "perfwatch_redis_sentinel_master_addresses", &t) == Some(1.0)
        })
        .await;
    assert!(polls_primary_on(&body, replica_port));
    assert_eq!(
        value(&body, "perfwatch_redis_sentinel_failovers_total", &t),
        Some(1.0)
    );
    assert!(
        !resolved(&body, primary_port),
        "the old address is still exported"
    );

    // Sentinels die: the one asked no more is down, the others still
    // decide; with one of three left, no quorum for a failover.
    let mut sentinels = sentinels;
    sentinels[2].kill().unwrap();
    let dead = sentinels[2].host_port();
    let alive = sentinels[0].host_port();
    let replica_address = format!("127.0.0.1:{replica_port}");
    let ok_sentinels = [
        ("target", "ha"),
        ("sentinel", alive.as_str()),
        ("master_address", replica_address.as_str()),
    ];
    let dead_sentinel = [("target", "ha"), ("sentinel", dead.as_str())];
    let alive_sentinel = [("target", "ha"), ("sentinel", alive.as_str())];
    pw.wait_until(SETUP_WAIT, "one sentinel down, two ok", |b| {
        value(b, "perfwatch_redis_sentinel_up", &dead_sentinel) == Some(0.0)
            && value(b, "redis_sentinel_master_ok_sentinels", &ok_sentinels) == Some(2.0)
            && value(b, "perfwatch_target_up", &t) == Some(1.0)
    })
    .await;
    sentinels[1].kill().unwrap();
    pw.wait_until(SETUP_WAIT, "no quorum with one sentinel left", |b| {
        value(b, "redis_sentinel_master_ckquorum_status", &alive_sentinel) == Some(0.0)
            && value(b, "perfwatch_target_up", &t) == Some(1.0)
    })
    .await;

    // The primary dies and no failover can happen: the target is down, and
    // the sentinel's view still comes with every failed poll (the primary
    // seen down, sdown), also after the primary's own series went stale
    // (3 intervals).
    let mut replica = replica;
    replica.kill().unwrap();
    let down = [
        ("target", "ha"),
        ("sentinel", alive.as_str()),
        ("master_address", replica_address.as_str()),
        ("master_status", "sdown"),
    ];
    pw.wait_until(SETUP_WAIT, "the target down, the primary sdown", |b| {
        value(b, "perfwatch_target_up", &t) == Some(0.0)
            && value(b, "redis_sentinel_master_status", &down) == Some(0.0)
    })
    .await;
    tokio::time::sleep(4 * INTERVAL).await;
    let body = pw.scrape().await;
    assert_eq!(value(&body, "redis_connected_slaves", &t), None, "stale");
    assert_value(&body, "redis_sentinel_master_status", &down, Some(0.0));
    assert_eq!(
        value(
            &body,
            "perfwatch_redis_sentinel_up",
            &[("target", "ha"), ("sentinel", &alive)]
        ),
        Some(1.0)
    );
    assert_value(&body, "redis_up", &t, Some(0.0));
    pw.stop().await;
    drop(primary);
}

#[tokio::test]
async fn without_any_sentinel_the_target_is_down_and_says_why() {
    let primary: RedisServer = start_redis(&[]);
    let port = perfwatch_testbench::free_port().unwrap();
    let targets = format!(
        "[[redis]]\nname = \"ha\"\nsentinels = [\"127.0.0.1:{port}\"]\nmaster_name = \"{MASTER}\"\n"
    );
    let pw = Perfwatch::start(&config(
        "interval = \"500ms\"\ntimeout = \"400ms\"",
        &targets,
    ))
    .await;
    let body = pw
        .wait_until(SETUP_WAIT, "a failed poll", |b| {
            common::failed_polls(b, "ha") >= 1.0
        })
        .await;
    assert_value(&body, "redis_up", &[("target", "ha")], Some(0.0));
    // Every failure is a connect failure (no sentinel to ask).
    assert_eq!(
        common::poll_errors(&body, "ha", "connect"),
        Some(common::failed_polls(&body, "ha"))
    );
    let (_, status) = pw.get("/api/status").await;
    assert!(
        status.contains("no sentinel answered about master \\\"mymaster\\\""),
        "{status}"
    );
    pw.stop().await;
    drop(primary);
}
