//! The PostgreSQL collector against real, throwaway PostgreSQL clusters
//! started by the harness. Every number asserted here is exact.

mod common;

use std::time::Duration;

use common::{
    Expected, FAST, Perfwatch, assert_value, assert_values, blocking, config, poll_errors, sample,
    secret_file, start_pg, start_pg_with_password_role, value, wait_polls,
};
use perfwatch_testbench::PostgresServer;
use sqlx::{Connection, Executor};

fn pg_target(name: &str, dsn: &str, extra: &str) -> String {
    format!("[[postgres]]\nname = \"{name}\"\ndsn = \"{dsn}\"\n{extra}")
}

/// `(pid, backend_start)` of every perfwatch session on the server.
fn perfwatch_sessions(pg: &PostgresServer) -> Vec<String> {
    pg.psql(
        "SELECT pid || ' ' || backend_start || ' ' || datname FROM pg_stat_activity \
         WHERE application_name = 'perfwatch' ORDER BY pid",
    )
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The app schema: used, unused, primary/unique, redundant and
/// constraint-backing indexes, and a workload with known scans.
const SCHEMA: &str = "
CREATE TABLE trip (id bigint PRIMARY KEY, driver_id int NOT NULL, code text NOT NULL UNIQUE, created_at timestamptz NOT NULL);
CREATE INDEX trip_driver_idx ON trip (driver_id);
CREATE INDEX trip_created_idx ON trip (created_at);
CREATE INDEX trip_code_dup_idx ON trip (code);
CREATE TABLE booking (slot int, EXCLUDE USING btree (slot WITH =));
CREATE TABLE event (id bigint PRIMARY KEY, kind text NOT NULL);
CREATE TABLE tiny (id int, note text);
INSERT INTO trip SELECT g, g % 50, 'c' || g, now() - g * interval '1 minute' FROM generate_series(1, 5000) g;
INSERT INTO event SELECT g, CASE WHEN g % 100 = 0 THEN 'x' ELSE 'y' END FROM generate_series(1, 5000) g;
INSERT INTO tiny SELECT g, 'n' FROM generate_series(1, 10) g;
ANALYZE;
";

/// 30 index scans on trip_driver_idx, 20 full sequential scans of `event`,
/// 30 sequential scans of the 10-row `tiny`.
fn workload() -> String {
    let mut w = String::from("SET enable_seqscan = off;\n");
    for i in 0..30 {
        w.push_str(&format!(
            "SELECT count(*) FROM trip WHERE driver_id = {};\n",
            i % 50
        ));
    }
    w.push_str("RESET enable_seqscan;\n");
    for _ in 0..20 {
        w.push_str("SELECT count(*) FROM event WHERE kind = 'x';\n");
    }
    for _ in 0..30 {
        w.push_str("SELECT count(*) FROM tiny WHERE note = 'n';\n");
    }
    w.push_str("SELECT pg_stat_force_next_flush();\n");
    w
}

/// A server with database `app` holding [`SCHEMA`] after [`workload`].
fn app_server(settings: &[(&str, &str)]) -> PostgresServer {
    let pg = start_pg(settings);
    pg.create_database("app").unwrap();
    pg.psql_in("app", SCHEMA).unwrap();
    pg.psql_in("app", &workload()).unwrap();
    pg
}

/// [`app_server`] without settings, watched by perfwatch as target `db`
/// on database `app` with `extra` target lines.
async fn watch_app(extra: &str) -> (PostgresServer, Perfwatch) {
    let pg = app_server(&[]);
    let toml = config(FAST, &pg_target("db", &pg.dsn_for("app"), extra));
    let pw = Perfwatch::start(&toml).await;
    (pg, pw)
}

fn psql_number(pg: &PostgresServer, db: &str, sql: &str) -> f64 {
    let out = pg.psql_in(db, sql).unwrap();
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {out:?}: {e}"))
}

use common::promtool_check_metrics as promtool_check;

/// How long [`wait_polls`] waits for the polls it asks for.
const POLL_WAIT: Duration = Duration::from_secs(15);

fn ix(index: &str) -> [(&str, &str); 3] {
    [
        ("target", "db"),
        ("datname", "app"),
        ("indexrelname", index),
    ]
}

#[tokio::test]
async fn index_verdicts_and_missing_index_candidates_are_exact() {
    let (pg, pw) = watch_app("index_interval = \"1s\"\n").await;
    // Statistics are flushed asynchronously: wait for the workload's counts.
    let want_event_seq = psql_number(
        &pg,
        "app",
        "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'event'",
    );
    assert!(want_event_seq >= 20.0, "{want_event_seq}");
    let tl = |t: &'static str| [("target", "db"), ("datname", "app"), ("relname", t)];
    let body = pw
        .wait_for(Duration::from_secs(15), "the workload's scans", |b| {
            (value(b, "pg_stat_user_tables_seq_scan", &tl("event")) == Some(want_event_seq)
                && value(
                    b,
                    "perfwatch_postgres_index_scans_total",
                    &ix("trip_driver_idx"),
                ) >= Some(30.0))
            .then(|| b.to_owned())
        })
        .await;

    // Unused: only the never-scanned plain indexes.
    for (index, unused) in [
        ("trip_created_idx", 1.0),
        ("trip_code_dup_idx", 1.0),
        ("trip_driver_idx", 0.0),
        ("trip_pkey", 0.0),
        ("trip_code_key", 0.0),
        ("booking_slot_excl", 0.0),
        ("event_pkey", 0.0),
    ] {
        assert_eq!(
            value(&body, "perfwatch_postgres_index_unused", &ix(index)),
            Some(unused),
            "{index}"
        );
    }
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_postgres_index_scans_total", &ix("trip_created_idx"), Some(0.0)),
        ("perfwatch_postgres_unused_indexes", &[("target", "db"), ("datname", "app")], Some(2.0)),
    ];
    assert_values(&body, wanted);
    let wasted = psql_number(
        &pg,
        "app",
        "SELECT pg_relation_size('trip_created_idx') + pg_relation_size('trip_code_dup_idx')",
    );
    let app = [("target", "db"), ("datname", "app")];
    assert_value(
        &body,
        "perfwatch_postgres_unused_index_bytes",
        &app,
        Some(wasted),
    );
    let size = psql_number(&pg, "app", "SELECT pg_relation_size('trip_created_idx')");
    let created_idx = ix("trip_created_idx");
    assert_value(
        &body,
        "perfwatch_postgres_index_size_bytes",
        &created_idx,
        Some(size),
    );
    let age = sample(&body, "perfwatch_postgres_stats_reset_age_seconds", &app);
    assert!((0.0..120.0).contains(&age), "stats age {age}");

    // Missing index: the big, sequentially scanned table only.
    for (table, candidate) in [
        ("event", 1.0),
        ("tiny", 0.0),
        ("trip", 0.0),
        ("booking", 0.0),
    ] {
        assert_eq!(
            value(
                &body,
                "perfwatch_postgres_missing_index_candidate",
                &tl(table)
            ),
            Some(candidate),
            "{table}"
        );
    }
    assert_eq!(
        value(&body, "pg_stat_user_tables_n_live_tup", &tl("event")),
        Some(5000.0)
    );
    assert_eq!(
        value(&body, "pg_stat_user_tables_seq_tup_read", &tl("event")),
        Some(psql_number(
            &pg,
            "app",
            "SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = 'event'"
        ))
    );
    assert_eq!(
        value(
            &body,
            "perfwatch_postgres_table_estimated_rows",
            &tl("trip")
        ),
        Some(5000.0)
    );
    let total = psql_number(&pg, "app", "SELECT pg_total_relation_size('trip')");
    assert_eq!(
        value(&body, "perfwatch_postgres_table_size_bytes", &tl("trip")),
        Some(total)
    );
    pw.stop().await;
}

#[tokio::test]
async fn max_tables_and_max_indexes_aggregate_the_rest_as_other() {
    let (pg, pw) = watch_app("max_tables = 2\nmax_indexes = 3\n").await;
    let body = wait_polls(&pw, "db", 2.0, POLL_WAIT).await;
    let series = |name: &str| {
        body.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .count()
    };
    // 4 tables → 2 + other; 7 indexes → 3 + other.
    assert_eq!(series("perfwatch_postgres_table_size_bytes"), 3, "{body}");
    assert_eq!(series("perfwatch_postgres_index_size_bytes"), 4, "{body}");
    let total = psql_number(
        &pg,
        "app",
        "SELECT sum(pg_relation_size(indexrelid)) FROM pg_stat_user_indexes",
    );
    let sum: f64 = body
        .lines()
        .filter(|l| l.starts_with("perfwatch_postgres_index_size_bytes{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(sum, total, "kept + other add up to every index");
    // The missing-index candidate is kept before bigger tables.
    let event = [("relname", "event")];
    assert_value(
        &body,
        "perfwatch_postgres_missing_index_candidate",
        &event,
        Some(1.0),
    );
    pw.stop().await;
}

#[tokio::test]
async fn saturation_is_exact_and_the_session_is_reused() {
    let pg = start_pg(&[
        ("max_connections", "20"),
        ("superuser_reserved_connections", "3"),
    ]);
    pg.create_database("app").unwrap();
    let toml = config(FAST, &pg_target("db", &pg.dsn_for("app"), ""));
    let pw = Perfwatch::start(&toml).await;
    wait_polls(&pw, "db", 1.0, POLL_WAIT).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(
            sqlx::PgConnection::connect(&pg.dsn_for("app"))
                .await
                .unwrap(),
        );
    }
    let l = [("source", "postgres"), ("target", "db")];
    // 5 of 17 slots used.
    let body = pw
        .wait_value(
            Duration::from_secs(10),
            "perfwatch_pool_saturation_ratio",
            &l,
            5.0 / 17.0,
        )
        .await;
    let t = [("target", "db")];
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("pg_settings_max_connections", &t, Some(20.0)),
        ("pg_settings_superuser_reserved_connections", &t, Some(3.0)),
        ("perfwatch_postgres_connections_available", &t, Some(17.0)),
        ("perfwatch_postgres_sessions", &[("target", "db"), ("datname", "app"), ("state", "idle")], Some(5.0)),
    ];
    assert_values(&body, wanted);
    assert_eq!(
        value(
            &body,
            "perfwatch_postgres_sessions",
            &[("target", "db"), ("datname", "app"), ("state", "active")]
        ),
        Some(0.0),
        "perfwatch's own active session is not counted"
    );
    // An open transaction shows in max_tx_duration.
    held[0].execute("BEGIN").await.unwrap();
    held[0].execute("SELECT 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let body = wait_polls(&pw, "db", 1.0, POLL_WAIT).await;
    let tx = value(
        &body,
        "pg_stat_activity_max_tx_duration",
        &[
            ("target", "db"),
            ("datname", "app"),
            ("state", "idle in transaction"),
        ],
    )
    .unwrap();
    assert!((1.0..30.0).contains(&tx), "max_tx_duration {tx}");
    drop(held);
    // One session, the same one, over many polls.
    let before = perfwatch_sessions(&pg);
    assert_eq!(before.len(), 1, "{before:?}");
    wait_polls(&pw, "db", 4.0, POLL_WAIT).await;
    let after = perfwatch_sessions(&pg);
    assert_eq!(before, after, "perfwatch must reuse its session");
    let body = pw
        .wait_for(Duration::from_secs(10), "the held sessions gone", |b| {
            (value(b, "perfwatch_pool_saturation_ratio", &l) == Some(0.0)).then(|| b.to_owned())
        })
        .await;
    assert_value(&body, "perfwatch_postgres_connections_used", &t, Some(0.0));
    pw.stop().await;
}

#[tokio::test]
async fn a_held_access_exclusive_lock_does_not_stall_the_poll() {
    let (pg, pw) = watch_app("index_interval = \"1s\"\n[[postgres.query]]\nname = \"trips\"\nsql = \"SELECT count(*) AS value FROM trip\"\n").await;
    wait_polls(&pw, "db", 1.0, POLL_WAIT).await;
    let mut locker = sqlx::PgConnection::connect(&pg.dsn_for("app"))
        .await
        .unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("LOCK TABLE trip IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let part = [("target", "db"), ("part", "tables"), ("reason", "timeout")];
    let body = pw
        .wait_for(
            Duration::from_secs(15),
            "table stats failing on the lock",
            |b| {
                (value(b, "perfwatch_postgres_part_errors_total", &part) >= Some(3.0))
                    .then(|| b.to_owned())
            },
        )
        .await;
    // Still up, polls finish within the timeout, the other metrics arrive.
    let t = [("target", "db")];
    assert_eq!(value(&body, "perfwatch_target_up", &t), Some(1.0), "{body}");
    assert_eq!(poll_errors(&body, "db", "timeout").unwrap_or(0.0), 0.0);
    let took = value(&body, "perfwatch_poll_duration_seconds", &t).unwrap();
    assert!(took < 0.4, "poll took {took}s");
    assert!(value(&body, "pg_settings_max_connections", &t).is_some());
    assert_eq!(
        value(
            &body,
            "perfwatch_collector_degraded",
            &[("target", "db"), ("reason", "timeout")]
        ),
        Some(1.0)
    );
    assert!(
        value(
            &body,
            "perfwatch_custom_query_errors_total",
            &[("query", "trips")]
        )
        .unwrap()
            >= 1.0
    );
    // Never more than one server-side session from perfwatch.
    for _ in 0..10 {
        let s = perfwatch_sessions(&pg);
        assert!(s.len() <= 1, "{s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    locker.execute("ROLLBACK").await.unwrap();
    drop(locker);
    let body = pw
        .wait_for(Duration::from_secs(15), "recovery after the lock", |b| {
            (value(
                b,
                "perfwatch_collector_degraded",
                &[("target", "db"), ("reason", "timeout")],
            ) == Some(0.0)
                && value(b, "perfwatch_custom_query_value", &[("query", "trips")]) == Some(5000.0))
            .then(|| b.to_owned())
        })
        .await;
    assert!(
        value(
            &body,
            "perfwatch_postgres_table_size_bytes",
            &[("relname", "trip")]
        )
        .is_some()
    );
    assert_eq!(perfwatch_sessions(&pg).len(), 1);
    pw.stop().await;
}

#[tokio::test]
async fn killed_server_goes_down_and_recovers_without_leaking_sessions() {
    let mut pg = start_pg(&[]);
    let toml = config(FAST, &pg_target("k", &pg.dsn(), ""));
    let pw = Perfwatch::start(&toml).await;
    let up = |want: f64| {
        move |b: &str| {
            (value(b, "perfwatch_target_up", &[("target", "k")]) == Some(want)).then_some(())
        }
    };
    pw.wait_for(Duration::from_secs(10), "up", up(1.0)).await;
    pg.kill().unwrap();
    pw.wait_for(Duration::from_secs(10), "down", up(0.0)).await;
    let body = pw.scrape().await;
    assert!(poll_errors(&body, "k", "connect").unwrap() >= 1.0, "{body}");
    let pg = blocking(move || {
        pg.restart().unwrap();
        pg
    })
    .await;
    pw.wait_for(Duration::from_secs(15), "up again", up(1.0))
        .await;
    wait_polls(&pw, "k", 3.0, POLL_WAIT).await;
    assert_eq!(perfwatch_sessions(&pg).len(), 1);
    pw.stop().await;
}

#[tokio::test]
async fn a_pg_monitor_role_works_and_missing_grants_degrade_not_kill() {
    let pg = app_server(&[]);
    pg.create_database("secret").unwrap();
    // The documented grants: pg_monitor, CONNECT on the databases, SELECT on
    // the tables custom queries read.
    pg.psql(
        "CREATE ROLE mon LOGIN IN ROLE pg_monitor;
         CREATE ROLE plain LOGIN;
         GRANT CONNECT ON DATABASE app TO plain;
         REVOKE CONNECT ON DATABASE app FROM PUBLIC;
         GRANT CONNECT ON DATABASE app TO mon;
         REVOKE CONNECT ON DATABASE secret FROM PUBLIC;",
    )
    .unwrap();
    pg.psql_in("app", "GRANT SELECT ON trip TO mon;").unwrap();
    let dsn = pg.dsn_for("app").replace("postgres@", "mon@");
    let plain = pg.dsn_for("app").replace("postgres@", "plain@");
    let toml = config(
        FAST,
        &format!(
            "{}{}",
            pg_target("plain", &plain, ""),
            pg_target(
                "mon",
                &dsn,
                "databases = [\"app\", \"secret\"]\n\
         [[postgres.query]]\nname = \"trips\"\nsql = \"SELECT count(*) AS value FROM trip\"\n\
         [[postgres.query]]\nname = \"events\"\nsql = \"SELECT count(*) AS value FROM event\"\n",
            )
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    let l = [
        ("target", "mon"),
        ("datname", "secret"),
        ("part", "connect"),
        ("reason", "permission"),
    ];
    let body = pw
        .wait_for(Duration::from_secs(15), "permission error on secret", |b| {
            (value(b, "perfwatch_postgres_part_errors_total", &l) >= Some(1.0)
                && value(b, "perfwatch_custom_query_value", &[("query", "trips")]).is_some())
            .then(|| b.to_owned())
        })
        .await;
    let t = [("target", "mon")];
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_target_up", &t, Some(1.0)),
        ("perfwatch_collector_degraded", &[("target", "mon"), ("reason", "permission")], Some(1.0)),
    ];
    assert_values(&body, wanted);
    // pg_monitor sees everything the collector reads.
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_postgres_unused_indexes", &[("datname", "app")], Some(2.0)),
        ("perfwatch_postgres_missing_index_candidate", &[("datname", "app"), ("relname", "event")], Some(1.0)),
    ];
    assert_values(&body, wanted);
    assert!(value(&body, "pg_settings_max_connections", &t).is_some());
    let trips = [("query", "trips")];
    assert_value(&body, "perfwatch_custom_query_value", &trips, Some(5000.0));
    // No SELECT on event: that query's errors are counted, nothing else breaks.
    let events = [("query", "events")];
    assert!(sample(&body, "perfwatch_custom_query_errors_total", &events) >= 1.0);
    assert_value(&body, "perfwatch_custom_query_value", &events, None);
    // Without pg_monitor: up, but flagged (other roles' sessions are hidden).
    let body = pw
        .wait_for(Duration::from_secs(10), "the plain role flagged", |b| {
            (value(
                b,
                "perfwatch_collector_degraded",
                &[("target", "plain"), ("reason", "permission")],
            ) == Some(1.0))
            .then(|| b.to_owned())
        })
        .await;
    assert_eq!(
        value(&body, "perfwatch_target_up", &[("target", "plain")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &body,
            "perfwatch_postgres_part_errors_total",
            &[("target", "mon"), ("part", "privileges")]
        ),
        None,
        "the pg_monitor role is not flagged"
    );
    pw.stop().await;
}

#[tokio::test]
async fn custom_query_errors_are_counted_and_good_queries_are_exact() {
    let (_pg, pw) = watch_app("[[postgres.query]]\nname = \"broken\"\nsql = \"SELEC count(*) AS value FROM trip\"\n\
         [[postgres.query]]\nname = \"trips_total\"\nsql = \"SELECT count(*) AS value FROM trip\"\ninterval = \"1m\"\n\
         [[postgres.query]]\nname = \"by_kind\"\nsql = \"SELECT kind, count(*) AS value FROM event GROUP BY kind\"\nlabels = [\"kind\"]\n\
         [[postgres.query]]\nname = \"slow\"\nsql = \"SELECT pg_sleep(1) IS NULL AS value\"\ntimeout = \"50ms\"\n").await;
    let q = |name: &'static str| [("target", "db"), ("query", name)];
    let body = pw
        .wait_for(Duration::from_secs(15), "three broken runs", |b| {
            (value(b, "perfwatch_custom_query_errors_total", &q("broken")) >= Some(3.0))
                .then(|| b.to_owned())
        })
        .await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_target_up", &[("target", "db")], Some(1.0)),
        ("perfwatch_custom_query_value", &q("trips_total"), Some(5000.0)),
        ("perfwatch_custom_query_value", &[("query", "by_kind"), ("kind", "x")], Some(50.0)),
        ("perfwatch_custom_query_value", &[("query", "by_kind"), ("kind", "y")], Some(4950.0)),
    ];
    assert_values(&body, wanted);
    assert!(value(&body, "perfwatch_custom_query_errors_total", &q("slow")).unwrap() >= 1.0);
    assert_eq!(
        value(
            &body,
            "perfwatch_custom_query_errors_total",
            &q("trips_total")
        ),
        Some(0.0)
    );
    assert!(value(&body, "pg_settings_max_connections", &[("target", "db")]).is_some());
    pw.stop().await;
}

#[tokio::test]
async fn a_scrape_with_postgres_metrics_passes_promtool() {
    let pg = app_server(&[]);
    pg.create_database("other_db").unwrap();
    let toml = config(
        FAST,
        &pg_target(
            "db",
            &pg.dsn_for("app"),
            "databases = [\"*\"]\nmax_tables = 2\nmax_indexes = 2\n\
         [[postgres.query]]\nname = \"trips\"\nsql = \"SELECT count(*) AS value FROM trip\"\n",
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    let body = pw
        .wait_for(
            Duration::from_secs(15),
            "index stats of every database",
            |b| {
                (value(
                    b,
                    "perfwatch_postgres_unused_indexes",
                    &[("datname", "app")],
                )
                .is_some()
                    && value(
                        b,
                        "perfwatch_postgres_unused_indexes",
                        &[("datname", "other_db")],
                    )
                    .is_some())
                .then(|| b.to_owned())
            },
        )
        .await;
    assert!(body.contains("perfwatch_postgres_sessions{"), "{body}");
    assert!(body.contains("pg_stat_user_tables_seq_scan{"), "{body}");
    assert!(
        body.contains("perfwatch_postgres_index_scans_total{"),
        "{body}"
    );
    assert!(body.contains("perfwatch_custom_query_value{"), "{body}");
    promtool_check(&body);
    pw.stop().await;
}

/// A rotated `password_file` (a Kubernetes secret mount) is read again when
/// perfwatch reconnects, without a reload: the role's password changes, the
/// file gets the new one, the old session ends, and the next connect uses
/// the file's new content. Reading the file only at load would reconnect
/// with the old password and fail with `auth` forever.
#[tokio::test]
async fn rotated_password_file_is_read_again_at_reconnect() {
    let pg = start_pg_with_password_role("rot", "first", "").await;
    let (_dir, pw_file) = secret_file("first");
    let dsn = format!("postgres://rot@127.0.0.1:{}/postgres", pg.port());
    let extra = format!("password_file = \"{}\"\n", pw_file.display());
    let pw = Perfwatch::start(&config(FAST, &pg_target("db", &dsn, &extra))).await;
    pw.wait_up("db", 1.0, POLL_WAIT).await;
    let before = perfwatch_sessions(&pg);
    assert!(!before.is_empty());

    std::fs::write(&pw_file, "second\n").unwrap();
    pg.psql(
        "ALTER ROLE rot PASSWORD 'second'; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'rot';",
    )
    .unwrap();

    // Polls go on, up, on new sessions of `rot`.
    wait_polls(&pw, "db", 3.0, POLL_WAIT).await;
    let body = pw.wait_up("db", 1.0, POLL_WAIT).await;
    let after = perfwatch_sessions(&pg);
    assert!(!after.is_empty() && after.iter().all(|s| !before.contains(s)));
    let auth = poll_errors(&body, "db", "auth").unwrap_or(0.0);
    assert_eq!(auth, 0.0, "reconnected with the old password: {body}");
    pw.stop().await;
}

/// The `[[postgres.query]]` named `name` and the phase-3 trigger named
/// `trigger` of config/perfwatch.example.toml, as TOML tables.
fn example_query_and_trigger(name: &str, trigger: &str) -> (toml::Table, toml::Table) {
    let query = common::example_config()["postgres"].as_array().unwrap()[0]["query"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("the example has no [[postgres.query]] {name}"))
        .as_table()
        .unwrap()
        .clone();
    (query, common::example_trigger(trigger))
}

/// Phase 3 (background pre-computation): the example config's job
/// freshness query and its "jobs falling behind" trigger, as shipped, on a
/// summary table whose `computed_at` falls behind and then catches up. A
/// health trigger: late jobs never recommend phase 3.
#[tokio::test]
async fn the_example_job_freshness_query_and_trigger_see_jobs_falling_behind() {
    let (mut query, mut trigger) =
        example_query_and_trigger("trip_summary_age_seconds", "jobs_falling_behind");
    let sql = query["sql"].as_str().unwrap().to_owned();
    let above = common::toml_number(&trigger, "above");
    // Every poll here, and no `for`: the test is about what is measured.
    query.remove("interval");
    trigger.remove("for");
    let pg = start_pg(&[]);
    pg.create_database("app").unwrap();
    // The last run filled the summary two runs' worth of `above` ago.
    pg.psql_in(
        "app",
        &format!(
            "CREATE TABLE trip_summary (day date, trips int, computed_at timestamptz NOT NULL);\n\
             INSERT INTO trip_summary VALUES (current_date - 1, 10, now() - interval '{} seconds'),\n\
             (current_date - 2, 12, now() - interval '{} seconds');",
            2.0 * above,
            4.0 * above
        ),
    )
    .unwrap();
    let toml = format!(
        "{}\n[[postgres.query]]\n{}\n[[phase]]\nname = \"phase3\"\n[[phase.trigger]]\n{}",
        config(FAST, &pg_target("db", &pg.dsn_for("app"), "")),
        toml::to_string(&query).unwrap(),
        toml::to_string(&trigger).unwrap()
    );
    let pw = Perfwatch::start(&toml).await;
    let age_of = |b: &str| {
        value(
            b,
            "perfwatch_custom_query_value",
            &[("target", "db"), ("query", "trip_summary_age_seconds")],
        )
    };
    let active = [("phase", "phase3"), ("trigger", "jobs_falling_behind")];
    let body = pw
        .wait_for(POLL_WAIT, "the trigger to fire", |b| {
            (value(b, "perfwatch_phase_trigger_active", &active) == Some(1.0)).then(|| b.to_owned())
        })
        .await;
    let health = [("trigger", "jobs_falling_behind"), ("kind", "health")];
    assert_value(&body, "perfwatch_phase_trigger_info", &health, Some(1.0));
    assert_value(&body, "perfwatch_phase_active", &[], Some(0.0));
    assert_value(&body, "perfwatch_phase_recommended", &[], Some(0.0));
    // now() - max(computed_at): the newer row, 2 x above seconds ago.
    let age = age_of(&body).unwrap();
    assert!((2.0 * above..2.0 * above + 60.0).contains(&age), "{age}");
    // The job runs again: fresh, the trigger clears.
    pg.psql_in(
        "app",
        "INSERT INTO trip_summary VALUES (current_date, 3, now());",
    )
    .unwrap();
    let body = pw
        .wait_for(POLL_WAIT, "the trigger to clear", |b| {
            (value(b, "perfwatch_phase_trigger_active", &active) == Some(0.0)).then(|| b.to_owned())
        })
        .await;
    assert!(age_of(&body).unwrap() < 60.0);
    // The job never ran (empty summary): no sample, never a made-up age.
    pg.psql_in("app", "TRUNCATE trip_summary;").unwrap();
    pw.wait_for(POLL_WAIT, "no freshness sample", |b| {
        (value(b, "perfwatch_phase_trigger_no_data", &active) == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(age_of(&pw.scrape().await), None, "{sql}");
    pw.stop().await;
}
