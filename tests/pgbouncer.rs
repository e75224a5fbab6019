//! The PgBouncer collector against real, throwaway PostgreSQL + PgBouncer
//! instances started by the harness.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Expected, FAST, Perfwatch, assert_values, blocking, config, poll_errors, value};
use perfwatch_testbench::{PgbouncerServer, PostgresServer};

/// A PostgreSQL and a PgBouncer in front of it with `settings`.
fn start_stack(settings: &[(&str, &str)]) -> (PostgresServer, PgbouncerServer) {
    let pg = PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let bouncer = PgbouncerServer::start(&pg, settings).unwrap_or_else(|e| panic!("{e}"));
    (pg, bouncer)
}

/// A config with one `[[pgbouncer]]` target.
fn bouncer_config(name: &str, dsn: &str) -> String {
    config(
        FAST,
        &format!("[[pgbouncer]]\nname = \"{name}\"\ndsn = \"{dsn}\"\n"),
    )
}

fn up(body: &str, target: &str) -> Option<f64> {
    value(body, "perfwatch_target_up", &[("target", target)])
}

/// Spawns `n` clients through PgBouncer, each running `sql`.
fn spawn_clients(bouncer: &PgbouncerServer, n: usize, sql: &str) -> Vec<Child> {
    (0..n)
        .map(|_| {
            bouncer
                .psql_command("postgres", "postgres", sql)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn full_pool_shows_waiting_clients_and_saturation() {
    let (_pg, bouncer) =
        blocking(|| start_stack(&[("pool_mode", "session"), ("default_pool_size", "2")])).await;
    let pw = Perfwatch::start(&bouncer_config("bouncer", &bouncer.dsn())).await;
    pw.wait_up("bouncer", 1.0, Duration::from_secs(10)).await;

    // Each holds its server connection 4 s: two run, three wait, in rounds
    // of 2, 2 and 1.
    let clients = spawn_clients(&bouncer, 5, "SELECT pg_sleep(4)");
    let pool = [
        ("target", "bouncer"),
        ("database", "postgres"),
        ("user", "postgres"),
    ];
    let body = pw
        .wait_for(Duration::from_secs(4), "3 waiting clients", |b| {
            (value(b, "pgbouncer_pools_client_waiting_connections", &pool) == Some(3.0)
                && value(b, "pgbouncer_pools_client_maxwait_seconds", &pool)
                    .is_some_and(|w| w > 0.0))
            .then(|| b.to_owned())
        })
        .await;
    assert_eq!(
        value(&body, "pgbouncer_pools_server_active_connections", &pool),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        value(&body, "pgbouncer_pools_client_active_connections", &pool),
        Some(2.0)
    );
    let maxwait = value(&body, "pgbouncer_pools_client_maxwait_seconds", &pool).unwrap();
    assert!(maxwait > 0.0 && maxwait < 4.0, "maxwait {maxwait}");
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_pool_saturation_ratio", &[("source", "pgbouncer"), ("target", "bouncer"), ("database", "postgres")], Some(1.0)),
        ("pgbouncer_databases_pool_size", &[("target", "bouncer"), ("database", "postgres")], Some(2.0)),
    ];
    assert_values(&body, wanted);

    // All five finish (after about 12 s); nobody waits any more.
    let statuses = blocking(move || {
        clients
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await;
    for out in &statuses {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let body = pw
        .wait_for(Duration::from_secs(5), "no waiting clients", |b| {
            (value(b, "pgbouncer_pools_client_waiting_connections", &pool) == Some(0.0))
                .then(|| b.to_owned())
        })
        .await;
    assert_eq!(
        value(&body, "pgbouncer_pools_client_maxwait_seconds", &pool),
        Some(0.0)
    );
    let db = [("target", "bouncer"), ("database", "postgres")];
    assert!(
        value(&body, "pgbouncer_stats_queries_pooled_total", &db).unwrap() >= 5.0,
        "{body}"
    );
    // Two clients waited about 4 s, the last one about 8 s.
    let waited = value(&body, "pgbouncer_stats_client_wait_seconds_total", &db).unwrap();
    assert!(waited > 5.0, "client wait total {waited}");
    assert!(
        value(&body, "pgbouncer_version_info", &[("target", "bouncer")]) == Some(1.0),
        "{body}"
    );
    pw.stop().await;
}

#[tokio::test]
async fn killed_pgbouncer_goes_down_and_recovers() {
    let (pg, mut bouncer) = blocking(|| start_stack(&[])).await;
    let pw = Perfwatch::start(&bouncer_config("k", &bouncer.dsn())).await;
    pw.wait_up("k", 1.0, Duration::from_secs(10)).await;
    bouncer.kill().unwrap();
    let body = pw.wait_up("k", 0.0, Duration::from_secs(5)).await;
    assert!(poll_errors(&body, "k", "connect").unwrap() >= 1.0, "{body}");
    let mut bouncer = blocking(move || {
        bouncer.restart().unwrap();
        bouncer
    })
    .await;
    pw.wait_up("k", 1.0, Duration::from_secs(10)).await;
    // Exactly one admin console connection from perfwatch after the reconnect.
    let clients = bouncer.admin("SHOW CLIENTS").unwrap();
    assert_eq!(
        clients
            .lines()
            .filter(|l| l.split('|').next_back() == Some("perfwatch"))
            .count(),
        1,
        "{clients}"
    );
    bouncer.kill().unwrap();
    drop(pg);
    pw.stop().await;
}

#[tokio::test]
async fn paused_pgbouncer_times_out_and_comes_back() {
    let (_pg, bouncer) = blocking(|| start_stack(&[])).await;
    let pw = Perfwatch::start(&bouncer_config("p", &bouncer.dsn())).await;
    pw.wait_up("p", 1.0, Duration::from_secs(10)).await;
    bouncer.pause().unwrap();
    let body = pw
        .wait_for(Duration::from_secs(5), "timeouts", |b| {
            (poll_errors(b, "p", "timeout") >= Some(2.0)).then(|| b.to_owned())
        })
        .await;
    assert_eq!(up(&body, "p"), Some(0.0));
    bouncer.resume().unwrap();
    pw.wait_up("p", 1.0, Duration::from_secs(5)).await;
    pw.stop().await;
}

#[tokio::test]
async fn unknown_user_is_an_auth_error_without_the_password() {
    let (_pg, bouncer) = blocking(|| start_stack(&[])).await;
    let dsn = format!(
        "postgres://nobody:hunter2@127.0.0.1:{}/pgbouncer",
        bouncer.port()
    );
    let out = once(&bouncer_config("nobody", &dsn));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("pgbouncer target \"nobody\""), "{err}");
    assert!(
        !err.contains("hunter2") && !text.contains("hunter2"),
        "{err}"
    );
    assert_eq!(
        poll_errors(&text, "nobody", "auth"),
        Some(1.0),
        "{text}\n{err}"
    );
}

#[tokio::test]
async fn user_outside_stats_users_is_a_permission_error() {
    let (_pg, bouncer) = blocking(|| start_stack(&[])).await;
    let dsn = format!("postgres://app@127.0.0.1:{}/pgbouncer", bouncer.port());
    let out = once(&bouncer_config("app", &dsn));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        poll_errors(&text, "app", "permission"),
        Some(1.0),
        "{text}\n{err}"
    );
}

fn once(config: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_perfwatch"))
        .arg("once")
        .arg(format!("--config.file={}", path.display()))
        .output()
        .unwrap()
}

#[tokio::test]
async fn scrape_with_pgbouncer_metrics_passes_promtool() {
    let (_pg, bouncer) = blocking(|| {
        let (pg, bouncer) = start_stack(&[("default_pool_size", "3")]);
        // Some traffic, so the stats counters are not all zero.
        bouncer.psql("postgres", "SELECT 1").unwrap();
        (pg, bouncer)
    })
    .await;
    let pw = Perfwatch::start(&bouncer_config("bouncer", &bouncer.dsn())).await;
    let body = pw
        .wait_for(Duration::from_secs(10), "pgbouncer metrics", |b| {
            b.contains("pgbouncer_stats_queries_pooled_total{")
                .then(|| b.to_owned())
        })
        .await;
    pw.stop().await;
    for name in [
        "pgbouncer_pools_client_active_connections",
        "pgbouncer_pools_client_waiting_connections",
        "pgbouncer_pools_server_active_connections",
        "pgbouncer_pools_server_idle_connections",
        "pgbouncer_pools_client_maxwait_seconds",
        "pgbouncer_databases_pool_size",
        "pgbouncer_stats_queries_duration_seconds_total",
        "pgbouncer_stats_client_wait_seconds_total",
        "perfwatch_pool_saturation_ratio",
    ] {
        assert!(
            body.contains(&format!("\n{name}{{")),
            "{name} missing:\n{body}"
        );
    }
    common::promtool_check_metrics(&body);
}
