//! `perfwatch-demo` (issue 6), started in-process through the same library
//! calls `main` makes: every target comes up, the numbers the demo is there
//! to show move (hit ratio, slow queries from both logs, the growing table),
//! the cold phase can be forced from the sample app, Prometheus scrapes
//! perfwatch with the real rules and has data for every dashboard panel,
//! headless Chromium renders the landing page, and stopping the demo stops
//! every server.
//!
//! Prometheus, Alertmanager and Chromium come from Debian packages
//! (`apt-get install prometheus prometheus-alertmanager chromium`); a
//! missing one fails the test with that hint.

mod common;
mod support_dashboards;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::chromium::{chromium, png_size};
use common::value;
use perfwatch_testbench::demo::{DemoOptions, start};
use perfwatch_testbench::{PrometheusServer, deploy, port_accepts};

/// Every target of the demo, as `(collector, target)`.
const TARGETS: &[(&str, &str)] = &[
    ("redis", "cache"),
    ("redis", "cache-ha"),
    ("redis", "sessions"),
    ("postgres", "db"),
    ("pgbouncer", "bouncer"),
    ("mysql", "legacy"),
    ("http", "api-health"),
    ("http", "bad-days"),
    ("http", "api-pool"),
    ("http", "api-metrics"),
    ("slowlog", "postgres-log"),
    ("slowlog", "mysql-slow"),
    ("process", "databases"),
];

/// The seed phases the demo loads from the example config.
const PHASES: &[&str] = &["phase2", "phase3"];

async fn scrape(addr: SocketAddr) -> String {
    // This process's reqwest clients need the rustls provider perfwatch
    // uses (the demo's perfwatch may run in another process).
    perfwatch::tls::install_default_provider();
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Scrapes until `f` returns Some, or panics after `timeout` with the last
/// scrape.
async fn wait_for<T>(
    addr: SocketAddr,
    timeout: Duration,
    what: &str,
    f: impl Fn(&str) -> Option<T>,
) -> T {
    let every = Duration::from_millis(500);
    common::scrape_until(timeout, every, what, || scrape(addr), f).await
}

/// Sum of every sample of `name` whose labels include `labels`.
fn sum(body: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    body.lines()
        .filter(|l| {
            l.starts_with(&format!("{name}{{"))
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The numbers that must move, in one scrape.
#[derive(Debug, Clone, Copy)]
struct Moving {
    pg_slow: f64,
    mysql_slow: f64,
    pg_trips: f64,
    mysql_trips: f64,
}

fn moving(body: &str) -> Moving {
    Moving {
        pg_slow: sum(
            body,
            "perfwatch_slow_queries_total",
            &[("target", "postgres-log")],
        ),
        mysql_slow: sum(
            body,
            "perfwatch_slow_queries_total",
            &[("target", "mysql-slow")],
        ),
        pg_trips: sum(
            body,
            "perfwatch_custom_query_value",
            &[("target", "db"), ("query", "trips_total")],
        ),
        mysql_trips: sum(
            body,
            "perfwatch_custom_query_value",
            &[("target", "legacy"), ("query", "legacy_trips_total")],
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_starts_everything_and_its_numbers_move_in_perfwatch_and_prometheus() {
    let started = Instant::now();
    let demo = start(DemoOptions {
        listen: "127.0.0.1:0".into(),
        // Long enough that the timer never flips the mode during the test:
        // the test forces it.
        phase: Duration::from_secs(3600),
        interval: Duration::from_secs(1),
        fast_alerts: false,
    })
    .await
    .unwrap_or_else(|e| panic!("the demo did not start: {e}"));
    eprintln!("demo started in {:?}", started.elapsed());
    assert!(
        demo.missing().is_empty(),
        "the demo runs Prometheus and Alertmanager when installed, and this test needs them: {:?}",
        demo.missing()
    );
    let urls = demo.urls().clone();
    let pw = urls.perfwatch;
    let text = demo.describe();
    for url in [
        format!("http://{pw}/"),
        format!("http://{pw}/metrics"),
        format!("curl -X POST http://{}/demo/cold", urls.app),
        urls.prometheus.clone().unwrap(),
        urls.alertmanager.clone().unwrap(),
    ] {
        assert!(text.contains(&url), "the printed text lacks {url}:\n{text}");
    }

    // Every target up.
    wait_for(pw, Duration::from_secs(60), "every target up", |body| {
        TARGETS
            .iter()
            .all(|(c, t)| {
                value(
                    body,
                    "perfwatch_target_up",
                    &[("collector", c), ("target", t)],
                ) == Some(1.0)
            })
            .then_some(())
    })
    .await;

    // Slow queries from both logs and both trip tables grow.
    let before = wait_for(pw, Duration::from_secs(30), "first counts", |body| {
        let m = moving(body);
        (m.pg_trips > 0.0 && m.mysql_trips > 0.0).then_some(m)
    })
    .await;
    let after = wait_for(
        pw,
        Duration::from_secs(60),
        "slow-query counts of both logs and both trip tables to grow",
        |body| {
            let m = moving(body);
            (m.pg_slow > before.pg_slow
                && m.mysql_slow > before.mysql_slow
                && m.pg_trips > before.pg_trips
                && m.mysql_trips > before.mysql_trips)
                .then_some(m)
        },
    )
    .await;
    eprintln!("moving: {before:?} -> {after:?}");

    // Warm: the Redis hit ratio is high; forcing the cold phase on the app
    // (the command the demo prints) brings it below the alert threshold.
    let ratio = |body: &str| {
        value(
            body,
            "perfwatch_cache_hit_ratio",
            &[("target", "cache"), ("window", "1m")],
        )
    };
    wait_for(
        pw,
        Duration::from_secs(60),
        "a warm hit ratio above 0.9",
        |b| ratio(b).filter(|r| *r > 0.9),
    )
    .await;
    let resp = reqwest::Client::new()
        .post(format!("http://{}/demo/cold", urls.app))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!demo.workload().is_auto(), "a forced mode stops the timer");
    wait_for(
        pw,
        Duration::from_secs(90),
        "a cold hit ratio below 0.7",
        |b| ratio(b).filter(|r| *r < 0.7),
    )
    .await;

    // Prometheus scrapes perfwatch and loaded the real rules.
    let prom = demo.prometheus().expect("checked above");
    wait_query(
        prom,
        Duration::from_secs(30),
        &format!("up{{job=\"{}\"}} == 1", deploy::JOB),
    )
    .await;
    let rules = tokio::task::block_in_place(|| prom.rules()).unwrap();
    let low = rules
        .iter()
        .find(|r| r.name == "CacheHitRatioLow" && r.kind == "alerting")
        .unwrap_or_else(|| panic!("CacheHitRatioLow not loaded: {rules:#?}"));
    assert!(
        low.query.contains("window=\"5m\""),
        "the demo loads the real rules by default: {}",
        low.query
    );
    let bad: Vec<_> = rules.iter().filter(|r| r.health == "err").collect();
    assert!(bad.is_empty(), "rules failing to evaluate: {bad:#?}");

    // Every dashboard panel query has data.
    let instance = pw.to_string();
    let queries = support_dashboards::panel_queries();
    assert!(!queries.is_empty(), "no panel queries found in dashboards/");
    let deadline = Instant::now() + Duration::from_secs(120);
    let empty = loop {
        let mut empty = Vec::new();
        for (dashboard, panel, expr) in &queries {
            let q = support_dashboards::substitute(expr, deploy::JOB, &instance, ".+");
            match tokio::task::block_in_place(|| prom.query(&q)) {
                Ok(samples) if !samples.is_empty() => {}
                Ok(_) => empty.push(format!("{dashboard} / {panel}: no series: {q}")),
                Err(e) => empty.push(format!("{dashboard} / {panel}: error {e}: {q}")),
            }
        }
        if empty.is_empty() || Instant::now() > deadline {
            break empty;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(
        empty.is_empty(),
        "{} of {} dashboard panel queries have no data in the demo:\n  {}",
        empty.len(),
        queries.len(),
        empty.join("\n  ")
    );

    // The landing page renders in a real browser.
    let landing = format!("http://{pw}/");
    tokio::task::block_in_place(|| landing_page_renders_in_chromium(&landing));

    // Stopping (what Ctrl-C does) stops every server.
    let ports: Vec<u16> = [
        urls.prometheus.as_deref().unwrap(),
        urls.alertmanager.as_deref().unwrap(),
        &urls.redis,
        &urls.postgres,
        &urls.pgbouncer,
        &urls.mariadb,
    ]
    .iter()
    .map(|u| port_of(u))
    .chain([pw.port(), urls.app.port()])
    .collect();
    demo.run_until(async {}).await.unwrap();
    let open: Vec<u16> = ports
        .into_iter()
        .filter(|p| port_accepts(*p, Duration::from_millis(200)))
        .collect();
    assert!(
        open.is_empty(),
        "still listening after the demo stopped: {open:?}"
    );
}

/// The port of `scheme://[user@]127.0.0.1:<port>[/...]`.
fn port_of(url: &str) -> u16 {
    let rest = url
        .rsplit_once("127.0.0.1:")
        .unwrap_or_else(|| panic!("{url}"))
        .1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no port in {url}"))
}

async fn wait_query(prom: &PrometheusServer, timeout: Duration, expr: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = tokio::task::block_in_place(|| prom.query(expr));
        if matches!(&got, Ok(s) if !s.is_empty()) {
            return;
        }
        if Instant::now() > deadline {
            let targets = tokio::task::block_in_place(|| prom.targets());
            panic!(
                "timed out after {timeout:?} waiting for `{expr}`; last answer: {got:?}\n\
                 targets: {targets:#?}\nPrometheus log:\n{}",
                prom.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// ---------------------------------------------------------------------------
// Headless Chromium
// ---------------------------------------------------------------------------

/// The screenshot's size.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 1600;
/// The landing page's DOM names every target and phase, and its screenshot
/// is a PNG of the window's size, larger than a blank page's.
fn landing_page_renders_in_chromium(url: &str) {
    let dom = chromium(url, (WIDTH, HEIGHT), None);
    let mut missing: BTreeSet<&str> = BTreeSet::new();
    for name in TARGETS
        .iter()
        .map(|(_, t)| *t)
        .chain(PHASES.iter().copied())
    {
        if !dom.contains(&format!(">{name}<")) {
            missing.insert(name);
        }
    }
    assert!(
        missing.is_empty(),
        "the rendered landing page lacks {missing:?}:\n{dom}"
    );

    let dir = keep_dir();
    let landing = dir.join("landing.png");
    let blank = dir.join("blank.png");
    chromium(url, (WIDTH, HEIGHT), Some(&landing));
    chromium(
        "data:text/html,<html><body></body></html>",
        (WIDTH, HEIGHT),
        Some(&blank),
    );
    let (landing_png, blank_png) = (
        std::fs::read(&landing).unwrap(),
        std::fs::read(&blank).unwrap(),
    );
    for (name, png) in [("landing", &landing_png), ("blank", &blank_png)] {
        assert_eq!(
            png_size(png),
            Ok((WIDTH, HEIGHT)),
            "{name} screenshot at {}",
            dir.display()
        );
    }
    assert!(
        landing_png.len() > 10 * blank_png.len(),
        "the landing page screenshot ({} bytes) is hardly larger than a blank page's ({} bytes): {}",
        landing_png.len(),
        blank_png.len(),
        landing.display()
    );
    eprintln!("landing page screenshot: {}", landing.display());
}

/// Where the screenshots go: `target/demo-screenshots` (kept for a look).
fn keep_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn png_size_reads_ihdr_and_rejects_other_files() {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&1280u32.to_be_bytes());
    png.extend_from_slice(&1600u32.to_be_bytes());
    assert_eq!(png_size(&png), Ok((1280, 1600)));
    assert!(png_size(b"GIF89a").is_err());
    png[12] = b'X';
    assert!(png_size(&png).is_err());
}

#[test]
fn port_of_reads_every_url_kind() {
    assert_eq!(port_of("http://127.0.0.1:9090"), 9090);
    assert_eq!(port_of("redis://127.0.0.1:6380/0"), 6380);
    assert_eq!(port_of("postgres://postgres@127.0.0.1:5433/app"), 5433);
}
