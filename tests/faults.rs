//! Fault injection: servers killed, stopped, hung, lying or hanging up
//! mid-reply; broken slow logs; huge key spaces. perfwatch must never crash,
//! never delay /metrics, report what happened, and recover.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{Perfwatch, blocking, both_up, poll_errors, rss_kb, timed, value};
use perfwatch::collectors::redis::catalog::KEY_SAMPLER_CYCLE_COMPLETE as CYCLE_COMPLETE;
use perfwatch_testbench::RedisServer;

fn cfg(interval_ms: u64, body: &str) -> String {
    format!(
        "[global]\ninterval = \"{interval_ms}ms\"\ntimeout = \"{}ms\"\n{body}",
        interval_ms * 8 / 10
    )
}

fn redis_target(name: &str, url: &str) -> String {
    format!("[[redis]]\nname = \"{name}\"\nurl = \"{url}\"\n")
}

fn perfwatch_clients(redis: &RedisServer) -> usize {
    let list = redis.command(&["CLIENT", "LIST"]).unwrap_or_default();
    list.lines()
        .filter(|l| l.contains("name=perfwatch"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_25_times() {
    let mut redis = RedisServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let pw = Perfwatch::start(&cfg(200, &redis_target("flappy", &redis.url()))).await;
    let up = |v: f64| move |b: &str| both_up(b, "flappy", "redis_up", v);
    pw.wait_for(Duration::from_secs(5), "up", up(1.0)).await;
    let rss_before = rss_kb();
    let mut worst_down = Duration::ZERO;
    let mut worst_up = Duration::ZERO;
    for round in 0..25 {
        redis.kill().unwrap();
        let (_, t) = timed(pw.wait_for(Duration::from_secs(5), "down", up(0.0))).await;
        worst_down = worst_down.max(t);
        redis = blocking(move || {
            redis.restart().unwrap();
            redis
        })
        .await;
        let (_, t) = timed(pw.wait_for(Duration::from_secs(5), "up again", up(1.0))).await;
        worst_up = worst_up.max(t);
        assert!(
            perfwatch_clients(&redis) <= 1,
            "round {round}: more than one connection"
        );
    }
    // One interval plus the poll timeout and scrape granularity.
    assert!(
        worst_down < Duration::from_millis(600),
        "slowest down detection {worst_down:?}"
    );
    assert!(
        worst_up < Duration::from_millis(600),
        "slowest recovery {worst_up:?}"
    );
    let grown = rss_kb().saturating_sub(rss_before);
    assert!(
        grown < 20 * 1024,
        "test process RSS grew by {grown} kB over 25 restarts"
    );
    let body = pw.scrape().await;
    assert!(poll_errors(&body, "flappy", "connect").unwrap() >= 25.0);
    pw.stop().await;
}

/// A fake "Redis" that accepts connections and then misbehaves.
fn fake_server(behaviour: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                match behaviour {
                    // Accept, read, never answer.
                    "silent" => loop {
                        if s.read(&mut buf).map_or(true, |n| n == 0) {
                            return;
                        }
                    },
                    // Answer every request with bytes that are not RESP.
                    "garbage" => loop {
                        if s.read(&mut buf).map_or(true, |n| n == 0) {
                            return;
                        }
                        let _ = s.write_all(b"\x00\xff\x13 this is not redis \r\n\x7f");
                    },
                    // Start a bulk reply and hang up in the middle of it.
                    _ => {
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(b"$5000\r\nredis_version:7.0.0\r\nuptime_in");
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_garbage_and_hangup_servers_fail_cleanly_and_delay_nothing() {
    let healthy = RedisServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let mut targets = redis_target("healthy", &healthy.url());
    for b in ["silent", "garbage", "hangup"] {
        targets.push_str(&redis_target(
            b,
            &format!("redis://127.0.0.1:{}/0", fake_server(b)),
        ));
    }
    let pw = Perfwatch::start(&cfg(300, &targets)).await;
    let body = pw
        .wait_for(
            Duration::from_secs(10),
            "every bad target failing twice",
            |b| {
                ["silent", "garbage", "hangup"]
                    .iter()
                    .all(|t| {
                        let errs: f64 = ["timeout", "protocol", "connect", "query"]
                            .iter()
                            .filter_map(|r| poll_errors(b, t, r))
                            .sum();
                        errs >= 2.0
                    })
                    .then(|| b.to_owned())
            },
        )
        .await;
    for t in ["silent", "garbage", "hangup"] {
        assert_eq!(
            value(&body, "perfwatch_target_up", &[("target", t)]),
            Some(0.0),
            "{t}"
        );
    }
    assert!(
        poll_errors(&body, "silent", "timeout").unwrap() >= 1.0,
        "a server that never answers is a timeout"
    );
    // The healthy target keeps its schedule and scrapes stay fast.
    let before = value(&body, "perfwatch_polls_total", &[("target", "healthy")]).unwrap();
    let start = Instant::now();
    let mut times = Vec::new();
    while start.elapsed() < Duration::from_secs(2) {
        let (_, t) = timed(pw.scrape()).await;
        times.push(t);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    times.sort();
    let (median, worst) = (times[times.len() / 2], times[times.len() - 1]);
    let body = pw.scrape().await;
    assert!(
        value(&body, "perfwatch_polls_total", &[("target", "healthy")]).unwrap() >= before + 5.0
    );
    assert_eq!(
        value(&body, "perfwatch_target_up", &[("target", "healthy")]),
        Some(1.0)
    );
    // A scrape that waited on a hung target would take up to its poll
    // timeout (240 ms), every time: the median says whether scrapes wait,
    // the worst stays below one timeout (one scheduling hiccup on a busy
    // machine is not a wait).
    assert!(
        median < Duration::from_millis(50) && worst < Duration::from_millis(200),
        "median scrape {median:?}, slowest {worst:?}"
    );
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_times_out_without_backlog() {
    let redis = RedisServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let pw = Perfwatch::start(&cfg(200, &redis_target("frozen", &redis.url()))).await;
    pw.wait_up("frozen", 1.0, Duration::from_secs(5)).await;
    redis.pause().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let body = pw.scrape().await;
    let polls_paused = value(&body, "perfwatch_polls_total", &[("target", "frozen")]).unwrap();
    assert!(poll_errors(&body, "frozen", "timeout").unwrap() >= 3.0);
    redis.resume().unwrap();
    let body = pw.wait_up("frozen", 1.0, Duration::from_secs(3)).await;
    // No backlog: polls continue one per interval, not a burst of queued ones.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = value(
        &pw.scrape().await,
        "perfwatch_polls_total",
        &[("target", "frozen")],
    )
    .unwrap();
    let resumed_at = value(&body, "perfwatch_polls_total", &[("target", "frozen")]).unwrap();
    assert!(
        after - resumed_at <= 7.0,
        "{} polls in 1 s after SIGCONT",
        after - resumed_at
    );
    assert!(resumed_at >= polls_paused);
    assert_eq!(perfwatch_clients(&redis), 1);
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_prefixes_stay_within_max_groups() {
    let redis = RedisServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let url = redis.url();
    blocking(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        for chunk in 0..10 {
            let mut pipe = redis::pipe();
            for i in 0..10_000 {
                pipe.cmd("SET")
                    .arg(format!("p{}:{i}", chunk * 10_000 + i))
                    .arg("v")
                    .ignore();
            }
            let _: () = pipe.query(&mut con).unwrap();
        }
    })
    .await;
    let toml = cfg(
        300,
        &format!(
            "{}[redis.keys]\nmax_groups = 20\nmax_keys_per_poll = 50000\n",
            redis_target("wide", &redis.url())
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    let wide = [("target", "wide")];
    let body = pw
        .wait_value(Duration::from_secs(30), CYCLE_COMPLETE.name, &wide, 1.0)
        .await;
    let groups = body
        .lines()
        .filter(|l| {
            l.starts_with("perfwatch_redis_key_group_keys{") && l.contains("target=\"wide\"")
        })
        .count();
    assert_eq!(groups, 21, "20 groups + other");
    let total: f64 = body
        .lines()
        .filter(|l| l.starts_with("perfwatch_redis_key_group_keys{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    assert_eq!(total, 100_000.0);
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_slow_logs_are_reported_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("slow.log");
    std::fs::write(&log, "").unwrap();
    // The state file's directory does not exist: every save fails, like a full disk.
    let state = dir.path().join("missing-dir").join("state.json");
    let toml = cfg(
        200,
        &format!(
            "[[slowlog]]\nname = \"s\"\nformat = \"mysql\"\npath = \"{}\"\nstate_file = \"{}\"\nidle_flush = \"300ms\"\n",
            log.display(),
            state.display()
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    let event = "# Query_time: 1.0  Lock_time: 0 Rows_sent: 0  Rows_examined: 0\nselect 1;\n";
    let append = |n: usize| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for _ in 0..n {
            f.write_all(event.as_bytes()).unwrap();
        }
    };
    let events = |b: &str| value(b, "perfwatch_slow_queries_total", &[("target", "s")]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    append(3);
    let body = pw
        .wait_for(Duration::from_secs(5), "3 events", |b| {
            (events(b) == Some(3.0)).then(|| b.to_owned())
        })
        .await;
    assert!(
        value(
            &body,
            "perfwatch_slowlog_state_write_errors_total",
            &[("target", "s")]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        value(&body, "perfwatch_target_up", &[("target", "s")]),
        Some(1.0),
        "a state error is not fatal"
    );
    // Deleted: the open file is drained, then the path is missing → io errors.
    std::fs::remove_file(&log).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Replaced by a directory.
    std::fs::create_dir(&log).unwrap();
    pw.wait_for(Duration::from_secs(5), "io errors", |b| {
        (poll_errors(b, "s", "io") >= Some(1.0)).then_some(())
    })
    .await;
    let (_, t) = timed(pw.scrape()).await;
    assert!(t < Duration::from_millis(100));
    // Fixed: a file again.
    std::fs::remove_dir(&log).unwrap();
    std::fs::write(&log, event.repeat(2)).unwrap();
    pw.wait_for(Duration::from_secs(5), "recovered", |b| {
        (events(b) == Some(5.0) && value(b, "perfwatch_target_up", &[("target", "s")]) == Some(1.0))
            .then_some(())
    })
    .await;
    pw.stop().await;
}

/// A table name of letters only: fingerprints mask digits in names, so
/// `t1`, `t2`... would all be one class.
fn letters(mut i: usize) -> String {
    let mut s = String::new();
    loop {
        s.push(char::from(b'a' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            return s;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_fingerprints_stay_within_top_queries_and_max_classes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("slow.log");
    let (top, max_classes, shapes) = (10, 200, 10_000);
    // 10,000 distinct query shapes, 0.1 s each; the last 100 (classes
    // 9,900..) get 5 s: the heaviest by far, but they arrive after
    // max_classes is reached, so they must stay in `other`.
    let mut text = String::new();
    for i in 0..shapes {
        let t = if i >= shapes - 100 { 5.0 } else { 0.1 };
        text.push_str(&format!(
            "# Query_time: {t}  Lock_time: 0 Rows_sent: 1  Rows_examined: 2\nSELECT a FROM tbl_{} WHERE id = {i};\n",
            letters(i)
        ));
    }
    // The first 10 shapes again, heavier than the rest of the first 200.
    for i in 0..top {
        text.push_str(&format!(
            "# Query_time: 1.0  Lock_time: 0 Rows_sent: 1  Rows_examined: 2\nSELECT a FROM tbl_{} WHERE id = 7;\n",
            letters(i)
        ));
    }
    std::fs::write(&log, &text).unwrap();
    let toml = cfg(
        300,
        &format!(
            "[[slowlog]]\nname = \"s\"\nformat = \"mysql\"\npath = \"{}\"\nstart_at = \"beginning\"\nidle_flush = \"300ms\"\ntop_queries = {top}\nmax_classes = {max_classes}\n",
            log.display()
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    let total = (shapes + top) as f64;
    let body = pw
        .wait_for(Duration::from_secs(20), "every event read", |b| {
            (value(b, "perfwatch_slow_queries_total", &[("target", "s")]) == Some(total))
                .then(|| b.to_owned())
        })
        .await;
    let counts: Vec<(&str, f64)> = body
        .lines()
        .filter(|l| {
            l.starts_with("perfwatch_slow_query_duration_seconds_count{")
                && l.contains("target=\"s\"")
        })
        .map(|l| {
            let fp = l.split("fingerprint=\"").nth(1).unwrap();
            let fp = &fp[..fp.find('"').unwrap()];
            (fp, l.rsplit_once(' ').unwrap().1.parse().unwrap())
        })
        .collect();
    assert_eq!(counts.len(), top + 1, "top_queries + other: {counts:?}");
    let other = counts.iter().find(|(fp, _)| *fp == "other").unwrap().1;
    // The top 10 are the first shapes (2 events each; which ones is checked
    // by their info series below); everything else, including the late
    // heavy shapes beyond max_classes, is `other`. A shape that was in
    // `other` when an earlier poll ranked it keeps what `other` already
    // showed of it there (so `other` never goes down) and counts on in its
    // own series: each own series holds 1 or 2, and all series together
    // hold every event exactly once.
    assert!(
        counts
            .iter()
            .filter(|(fp, _)| *fp != "other")
            .all(|(_, n)| *n == 1.0 || *n == 2.0),
        "{counts:?}"
    );
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<f64>(), total);
    assert!(other >= total - 2.0 * top as f64, "{counts:?}");
    let infos: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("perfwatch_slow_query_fingerprint_info{"))
        .collect();
    assert_eq!(infos.len(), top);
    for i in 0..top {
        let table = format!("tbl_{}", letters(i));
        assert!(
            infos.iter().any(|l| l.contains(&format!("from {table} "))),
            "{table} among the top classes: {infos:?}"
        );
    }
    for family in [
        "perfwatch_slow_query_lock_seconds_total",
        "perfwatch_slow_query_rows_examined_total",
        "perfwatch_slow_query_rows_sent_total",
    ] {
        let n = body
            .lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .count();
        assert_eq!(n, top + 1, "{family}");
    }
    // `other`'s rows are 2 per event it holds, the same split as the counts.
    assert_eq!(
        value(
            &body,
            "perfwatch_slow_query_rows_examined_total",
            &[("fingerprint", "other")]
        ),
        Some(2.0 * other)
    );
    pw.stop().await;
}
