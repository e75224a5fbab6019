//! Config reload under load: broken files (syntax, unknown key, bad
//! duration) through `POST /-/reload` and SIGHUP keep the old config running;
//! a changed target list removes the dropped target's series and connection,
//! starts the new one, and leaves the unchanged target (its session and its
//! counters) alone. /metrics is scraped continuously throughout and must
//! never fail or stall.
//!
//! This file holds a single test on purpose: it sends SIGHUP to the test
//! process, which would also reload any other perfwatch running in it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Perfwatch, assert_value, blocking, polls, value};
use perfwatch_testbench::{MariaDbServer, PostgresServer, RedisServer};

const GLOBAL: &str = "[global]\ninterval = \"300ms\"\ntimeout = \"250ms\"\n";

fn redis_target(url: &str, extra: &str) -> String {
    format!("[[redis]]\nname = \"cache\"\nurl = \"{url}\"\n{extra}")
}

fn pg_target(dsn: &str, extra: &str) -> String {
    format!("[[postgres]]\nname = \"db\"\ndsn = \"{dsn}\"\n{extra}")
}

fn mysql_target(port: u16) -> String {
    format!("[[mysql]]\nname = \"sql\"\ndsn = \"mysql://pw@127.0.0.1:{port}/\"\n")
}

/// perfwatch's PostgreSQL sessions as `pid backend_start` lines.
fn pg_sessions(pg: &PostgresServer) -> Vec<String> {
    pg.psql(
        "SELECT pid || ' ' || backend_start FROM pg_stat_activity \
         WHERE application_name = 'perfwatch' ORDER BY pid",
    )
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect()
}

fn redis_clients(redis: &RedisServer) -> usize {
    redis
        .command(&["CLIENT", "LIST"])
        .unwrap()
        .lines()
        .filter(|l| l.contains("name=perfwatch"))
        .count()
}

/// Scrapes /metrics back to back on its own task until stopped.
struct ScrapeLoad {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Vec<String>, Duration)>,
}

impl ScrapeLoad {
    fn start(pw: &Perfwatch) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("http://{}/metrics", pw.addr);
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let (mut scrapes, mut failures, mut worst) = (0, Vec::new(), Duration::ZERO);
            while !s.load(Ordering::Relaxed) {
                let start = Instant::now();
                let res = client.get(&url).send().await;
                let outcome = match res {
                    Ok(r) if r.status().is_success() => match r.text().await {
                        Ok(b) if b.contains("perfwatch_build_info") => Ok(()),
                        Ok(b) => Err(format!("body without self-metrics: {b}")),
                        Err(e) => Err(format!("reading the body: {e}")),
                    },
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(e.to_string()),
                };
                worst = worst.max(start.elapsed());
                scrapes += 1;
                if let Err(e) = outcome {
                    failures.push(e);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (scrapes, failures, worst)
        });
        Self { stop, task }
    }

    fn finish(self) -> impl std::future::Future<Output = (usize, Vec<String>, Duration)> {
        self.stop.store(true, Ordering::Relaxed);
        async move { self.task.await.unwrap() }
    }
}

/// The line of `needle`'s first occurrence in `text` (1-based).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in {text}"))
        + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_keeps_old_config_on_errors_and_swaps_targets_without_leaks() {
    let mariadb = tokio::task::spawn_blocking(|| {
        let db = MariaDbServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
        db.sql("CREATE USER 'pw'@'127.0.0.1'; GRANT ALL PRIVILEGES ON *.* TO 'pw'@'127.0.0.1';")
            .unwrap();
        db
    });
    let (redis, pg) = blocking(|| {
        (
            RedisServer::start(&[]).unwrap_or_else(|e| panic!("{e}")),
            PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}")),
        )
    })
    .await;
    let good = format!(
        "{GLOBAL}{}{}",
        redis_target(&redis.url(), ""),
        pg_target(&pg.dsn(), "")
    );
    let pw = Perfwatch::start(&good).await;
    let path = pw.config_path.display().to_string();
    pw.wait_for(Duration::from_secs(10), "both targets up", |b| {
        ["cache", "db"]
            .iter()
            .all(|t| value(b, "perfwatch_target_up", &[("target", t)]) == Some(1.0))
            .then_some(())
    })
    .await;
    let load = ScrapeLoad::start(&pw);
    let pg_before = pg_sessions(&pg);
    assert_eq!(pg_before.len(), 1, "{pg_before:?}");
    assert_eq!(redis_clients(&redis), 1);

    // Broken files: each reply names the file and line; the old targets keep polling.
    let unknown_key = format!(
        "{GLOBAL}{}{}",
        redis_target(&redis.url(), "colour = \"blue\"\n"),
        pg_target(&pg.dsn(), "")
    );
    let bad_duration = format!(
        "{GLOBAL}{}{}",
        redis_target(&redis.url(), ""),
        pg_target(&pg.dsn(), "interval = \"5 parsecs\"\n")
    );
    let broken = [
        (
            "syntax error",
            format!("{GLOBAL}[[redis]\nname = \"cache\"\n"),
            line_of(&format!("{GLOBAL}[[redis]"), "[[redis]"),
            "",
        ),
        (
            "unknown key",
            unknown_key.clone(),
            line_of(&unknown_key, "colour"),
            "redis[0].colour",
        ),
        (
            "bad duration",
            bad_duration.clone(),
            line_of(&bad_duration, "parsecs"),
            "postgres[0].interval",
        ),
    ];
    let mut failures_seen = 0.0;
    for (what, text, line, key) in &broken {
        std::fs::write(&pw.config_path, text).unwrap();
        let body = pw.scrape().await;
        let (cache0, db0) = (polls(&body, "cache"), polls(&body, "db"));

        let (status, msg) = pw.reload().await;
        assert_eq!(status, 400, "{what}: {msg}");
        eprintln!("{what}: {msg}");
        assert!(
            msg.contains(&format!("{path}:{line}")) && msg.contains(key),
            "{what}: the reply names file, line {line} and key {key:?}:\n{msg}"
        );
        assert!(msg.contains("previous one keeps running"), "{msg}");
        failures_seen += 1.0;

        // SIGHUP: perfwatch runs in this process and listens for it.
        // SAFETY: plain kill(2) of our own pid with a handled signal.
        unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
        failures_seen += 1.0;
        let body = pw
            .wait_for(
                Duration::from_secs(5),
                "the SIGHUP reload failing, 2 more polls of each old target",
                |b| {
                    (value(b, "perfwatch_config_reload_failures_total", &[]) == Some(failures_seen)
                        && polls(b, "cache") >= cache0 + 2.0
                        && polls(b, "db") >= db0 + 2.0)
                        .then(|| b.to_owned())
                },
            )
            .await;
        assert_eq!(
            value(&body, "perfwatch_config_last_reload_successful", &[]),
            Some(0.0),
            "{what}"
        );
        for t in ["cache", "db"] {
            assert_eq!(
                value(&body, "perfwatch_target_up", &[("target", t)]),
                Some(1.0),
                "{what}: {t}"
            );
        }
    }
    assert_eq!(
        pg_sessions(&pg),
        pg_before,
        "broken reloads touched nothing"
    );
    assert_eq!(redis_clients(&redis), 1);

    // A changed target list: Redis removed, MariaDB added, PostgreSQL as is.
    let db = mariadb.await.unwrap();
    let swapped = format!(
        "{GLOBAL}{}{}",
        pg_target(&pg.dsn(), ""),
        mysql_target(db.port())
    );
    std::fs::write(&pw.config_path, &swapped).unwrap();
    let db_polls_before = polls(&pw.scrape().await, "db");
    let (status, msg) = pw.reload().await;
    assert_eq!(status, 200, "{msg}");
    let body = pw.wait_up("sql", 1.0, Duration::from_secs(15)).await;
    assert_eq!(
        value(&body, "perfwatch_config_last_reload_successful", &[]),
        Some(1.0)
    );
    let removed: Vec<&str> = body
        .lines()
        .filter(|l| l.contains("target=\"cache\""))
        .collect();
    assert!(
        removed.is_empty(),
        "the removed target's series are gone (self-metrics included):\n{}",
        removed.join("\n")
    );
    assert!(
        value(
            &body,
            "mysql_global_status_threads_connected",
            &[("target", "sql")]
        )
        .is_some(),
        "{body}"
    );
    // The kept target was not restarted: same session, counters continue.
    assert!(
        polls(&body, "db") >= db_polls_before,
        "polls of the kept target went from {db_polls_before} to {}",
        polls(&body, "db")
    );
    assert_value(&body, "perfwatch_target_up", &[("target", "db")], Some(1.0));
    assert_eq!(pg_sessions(&pg), pg_before, "the kept target's session");
    // The removed target's connection is closed within a bounded wait.
    let deadline = Instant::now() + Duration::from_secs(3);
    while redis_clients(&redis) > 0 {
        assert!(
            Instant::now() < deadline,
            "perfwatch still connected to the removed Redis"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pw_on_mariadb = db
        .sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'pw'")
        .unwrap();
    assert_eq!(pw_on_mariadb.trim(), "1");

    let (scrapes, failures, worst) = load.finish().await;
    eprintln!("{scrapes} scrapes during the reloads, slowest {worst:?}");
    assert!(scrapes >= 20, "only {scrapes} scrapes under load");
    assert!(failures.is_empty(), "failed scrapes: {failures:?}");
    assert!(
        worst < Duration::from_secs(1),
        "slowest scrape during reloads: {worst:?}"
    );
    pw.stop().await;
    drop(db);
}
