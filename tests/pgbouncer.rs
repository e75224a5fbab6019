//! The PgBouncer collector against real, throwaway PostgreSQL + PgBouncer
//! instances started by the harness.

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{
    Expected, FAST, Perfwatch, assert_values, blocking, config, once, poll_errors, sample, value,
};
use perfwatch_testbench::pki::TestPki;
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
        .wait_until(Duration::from_secs(4), "3 waiting clients", |b| {
            value(b, "pgbouncer_pools_client_waiting_connections", &pool) == Some(3.0)
                && value(b, "pgbouncer_pools_client_maxwait_seconds", &pool)
                    .is_some_and(|w| w > 0.0)
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
    let maxwait = sample(&body, "pgbouncer_pools_client_maxwait_seconds", &pool);
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

/// The test PKI's server files, copied where PgBouncer (running as the
/// `postgres` system user when the tests run as root) can read them.
fn pgbouncer_readable_certs(pki: &TestPki) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let owner = perfwatch_testbench::run_as_postgres("pgbouncer").unwrap_or_else(|e| panic!("{e}"));
    for name in ["server.crt", "server.key", "ca.crt"] {
        let to = dir.path().join(name);
        std::fs::copy(pki.dir().join(name), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&to, Some(uid), Some(gid)).unwrap();
        }
    }
    dir
}

/// perfwatch's TLS client sessions on a PgBouncer's admin console, as
/// "port connect_time" lines (one per session; a new handshake is a new line).
fn tls_sessions(bouncer: &PgbouncerServer) -> String {
    let clients = bouncer.admin("SHOW CLIENTS").unwrap();
    let mut sessions: Vec<String> = clients
        .lines()
        // Not the psql that runs this SHOW (application_name, the last column).
        .filter(|row| {
            row.contains("|perfwatch|pgbouncer|")
                && row.contains("TLSv1")
                && !row.ends_with("|psql")
        })
        .map(|row| {
            // type|user|database|state|addr|port|local_addr|local_port|connect_time|...
            let fields: Vec<&str> = row.split('|').collect();
            format!("{} {}", fields[5], fields[8])
        })
        .collect();
    sessions.sort();
    sessions.join("\n")
}

/// PgBouncer with TLS on its client side (`client_tls_sslmode = require`,
/// and a second one with `verify-full`, which wants a client certificate):
/// libpq's DSN parameters and the tls table work as against PostgreSQL, each
/// failure has `reason="tls"` and its cause, and a session keeps its one
/// handshake over polls.
#[tokio::test]
async fn pgbouncer_over_tls_follows_libpq_sslmode_and_keeps_one_handshake() {
    let pki = TestPki::new(&["localhost"]).unwrap();
    let certs = pgbouncer_readable_certs(&pki);
    let tls_settings = |mode: &'static str| {
        let file = |name: &str| certs.path().join(name).display().to_string();
        vec![
            ("client_tls_sslmode", mode.to_owned()),
            ("client_tls_cert_file", file("server.crt")),
            ("client_tls_key_file", file("server.key")),
            ("client_tls_ca_file", file("ca.crt")),
        ]
    };
    let (require, verify) = (tls_settings("require"), tls_settings("verify-full"));
    let (_pg, bouncer, mtls_bouncer) = blocking(move || {
        let start = |pg: &PostgresServer, s: &[(&'static str, String)]| {
            let s: Vec<(&str, &str)> = s.iter().map(|(k, v)| (*k, v.as_str())).collect();
            PgbouncerServer::start(pg, &s).unwrap_or_else(|e| panic!("{e}"))
        };
        let pg = PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
        let bouncer = start(&pg, &require);
        let mtls = start(&pg, &verify);
        (pg, bouncer, mtls)
    })
    .await;
    let ca = pki.path("ca.crt");
    let target = |name: &str, port: u16, host: &str, params: &str, extra: &str| {
        format!(
            "[[pgbouncer]]\nname = \"{name}\"\n\
             dsn = \"postgres://perfwatch@{host}:{port}/pgbouncer?{params}\"\n{extra}"
        )
    };
    let (port, mtls_port) = (bouncer.port(), mtls_bouncer.port());
    let verify_full = format!("sslmode=verify-full&sslrootcert={ca}");
    let client_files = format!(
        "{verify_full}&sslcert={}&sslkey={}",
        pki.path("client.crt"),
        pki.path("client.key")
    );
    let targets = [
        target("verify-full", port, "localhost", &verify_full, ""),
        target(
            "table",
            port,
            "localhost",
            "",
            &format!("[pgbouncer.tls]\nca_file = \"{ca}\"\n"),
        ),
        target("client-cert", mtls_port, "localhost", &client_files, ""),
        target(
            "wrong-ca",
            port,
            "localhost",
            &format!(
                "sslmode=verify-full&sslrootcert={}",
                pki.path("wrong-ca.crt")
            ),
            "",
        ),
        target("by-ip", port, "127.0.0.1", &verify_full, ""),
        target("no-client-cert", mtls_port, "localhost", &verify_full, ""),
        target("plaintext", port, "localhost", "sslmode=disable", ""),
    ]
    .concat();
    let pw = Perfwatch::start(&config(FAST, &targets)).await;
    let want = common::TlsOutcome {
        kind: "pgbouncer",
        up: &["verify-full", "table", "client-cert"],
        down: &[
            ("wrong-ca", "tls", "unknown authority"),
            ("by-ip", "tls", "hostname mismatch"),
            ("no-client-cert", "tls", "client certificate required"),
            ("plaintext", "tls", "accepts only TLS"),
        ],
        steady: &["verify-full", "table"],
    };
    common::assert_tls_outcome(&pw, &want, Duration::from_secs(20), || {
        let sessions = tls_sessions(&bouncer);
        assert_eq!(
            sessions.lines().count(),
            2,
            "want one TLS session each for `verify-full` and `table`: {sessions:?}"
        );
        sessions
    })
    .await;
    pw.stop().await;
}
