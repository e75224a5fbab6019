//! Plans and index advice (issue 19) against a real PostgreSQL 15 and a
//! real MariaDB, each writing its slow log with every statement, a table
//! of 200,000 trips without an index on `driver_id`, and a workload of
//! three classes: a `SELECT` filtering on `driver_id` (read whole: the
//! advice), a `SELECT` by primary key (an index scan: no advice) and an
//! `UPDATE` (never planned).
//!
//! Asserted, for each server: the right suggestion (trip(driver_id)); the
//! `UPDATE` never explained (no plan, `plan_skipped = not_select`, and no
//! `EXPLAIN` of it in what the server counted or logged); the `EXPLAIN`
//! load within its budget, counted by the server itself (PostgreSQL's
//! pg_stat_statements, MariaDB's slow log) over a measured window; with
//! `keep_examples = false` no literal of the workload in `/metrics`,
//! `/api/slow-queries`, `/api/status` or `/`, while a perfwatch with
//! `keep_examples = true` serves them (so that check can fail); after
//! `CREATE INDEX`, the plan changes (no sequential scan), the advice is
//! `applied`, and the class's p95 after is below its p95 before.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Perfwatch, blocking, config, polls, value};
use perfwatch_slowlog::{fingerprint, fingerprint_id};
use perfwatch_testbench::{MariaDbServer, PostgresServer};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection};

/// Literals of the workload that must never leave perfwatch unless it
/// keeps examples.
const SECRET_NUMBER: &str = "987654";
const SECRET_TEXT: &str = "pii-marker-7731";

/// The class reading `trip` whole (the advice's).
fn scan_statement() -> String {
    format!(
        "SELECT id, fare FROM trip WHERE driver_id = {SECRET_NUMBER} AND status <> '{SECRET_TEXT}'"
    )
}

/// A class that writes: never planned.
fn update_statement() -> String {
    format!(
        "UPDATE trip SET fare = fare + 1 WHERE driver_id = {SECRET_NUMBER} AND status <> '{SECRET_TEXT}'"
    )
}

/// A class that already has its index (the primary key).
const PK_STATEMENT: &str = "SELECT fare FROM trip WHERE id = 4242";

/// The query id of the class of `statement`.
fn class_id(statement: &str) -> String {
    fingerprint_id(&fingerprint(statement))
}

/// How long the budget window is, and the plan interval it is checked
/// against.
const WINDOW: Duration = Duration::from_secs(6);
const EXPLAIN_INTERVAL_SECS: u64 = 2;

/// perfwatch polling the database every 300 ms, planning at most one
/// example per poll and each class at most every 2 s.
fn advice_config(slowlog: &str, db_kind: &str, db_table: &str) -> String {
    config(
        "interval = \"300ms\"\ntimeout = \"280ms\"",
        &format!(
            "{slowlog}\n{db_table}\n[{db_kind}.explain]\nsources = [\"slow\"]\ninterval = \"{EXPLAIN_INTERVAL_SECS}s\"\nmax_per_poll = 1\n"
        ),
    )
}

/// Runs the three classes on `conn` every 40 ms until `stop`.
fn workload<C>(mut conn: C, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()>
where
    C: Connection + Send + 'static,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            for sql in [
                scan_statement(),
                update_statement(),
                PK_STATEMENT.to_owned(),
            ] {
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    })
}

/// The advice series of class `id` of target `slow` in `state`, if served.
fn advice(body: &str, id: &str, state: &str) -> Option<f64> {
    value(
        body,
        "perfwatch_slow_query_index_advice_info",
        &[
            ("target", "slow"),
            ("fingerprint", id),
            ("table", "trip"),
            ("columns", "driver_id"),
            ("state", state),
        ],
    )
}

/// Table accesses of `scan` kind in the last plan of class `id`.
fn plan_scans(body: &str, id: &str, scan: &str) -> Option<f64> {
    value(
        body,
        "perfwatch_slow_query_plan_scans",
        &[("target", "slow"), ("fingerprint", id), ("scan", scan)],
    )
}

/// The `/api/slow-queries` entry of class `id`.
async fn class_json(pw: &Perfwatch, id: &str) -> Value {
    let (status, body) = pw.get("/api/slow-queries?target=slow").await;
    assert_eq!(status, 200, "{body}");
    let all: Value = serde_json::from_str(&body).unwrap();
    all.as_array()
        .and_then(|a| a.iter().find(|c| c["fingerprint"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Every output of perfwatch a user or a scraper sees.
async fn every_output(pw: &Perfwatch) -> String {
    let mut all = String::new();
    for path in [
        "/metrics",
        "/api/slow-queries?target=slow",
        "/api/status",
        "/api/history",
        "/",
    ] {
        let (status, body) = pw.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        all.push_str(&body);
    }
    all
}

/// The first part, common to both servers: the suggestion, the classes
/// without one, and no literal anywhere. Returns the last scrape.
async fn assert_suggested(pw: &Perfwatch, server: &str) -> String {
    let scan = class_id(&scan_statement());
    let body = pw
        .wait_until(Duration::from_secs(90), "the index advice", |b| {
            advice(b, &scan, "suggested").is_some()
        })
        .await;
    assert_eq!(plan_scans(&body, &scan, "seq"), Some(1.0), "{server}");
    let read_whole = |b: &str| {
        value(
            b,
            "perfwatch_slow_query_plan_seq_scan_rows",
            &[
                ("target", "slow"),
                ("fingerprint", &scan),
                ("table", "trip"),
            ],
        )
    };
    assert!(read_whole(&body).is_some_and(|r| r > 0.0), "{server}");
    common::promtool_check_metrics(&body);
    let json = class_json(pw, &scan).await;
    let a = &json["advice"];
    assert_eq!(a["state"], "suggested", "{server}: {json}");
    assert!(
        a["text"]
            .as_str()
            .unwrap()
            .starts_with("an index on trip(driver_id) would serve class"),
        "{server}: {a}"
    );
    assert!(
        a["create_statement"]
            .as_str()
            .unwrap()
            .contains("driver_id"),
        "{server}: {a}"
    );
    assert!(a["facts"]["rows"].as_f64().unwrap() >= 100_000.0, "{a}");

    // The primary-key class: planned, an index access, no advice.
    let pk = class_id(PK_STATEMENT);
    let body = pw
        .wait_until(
            Duration::from_secs(30),
            "the primary-key class's plan",
            |b| plan_scans(b, &pk, "seq").is_some(),
        )
        .await;
    assert_eq!(plan_scans(&body, &pk, "seq"), Some(0.0), "{server}");
    assert_eq!(
        plan_scans(&body, &pk, "index").unwrap_or(0.0)
            + plan_scans(&body, &pk, "index_only").unwrap_or(0.0),
        1.0,
        "{server}"
    );
    assert!(class_json(pw, &pk).await["advice"].is_null());

    // The UPDATE: never planned.
    let update = class_id(&update_statement());
    let json = class_json(pw, &update).await;
    assert_eq!(json["plan_skipped"], "not_select", "{server}: {json}");
    assert!(json["plan"].is_null(), "{server}: {json}");
    assert_eq!(plan_scans(&body, &update, "seq"), None, "{server}");

    // keep_examples = false: no literal in anything served.
    let all = every_output(pw).await;
    for secret in [SECRET_NUMBER, SECRET_TEXT] {
        assert!(
            !all.contains(secret),
            "{server}: literal {secret} served without keep_examples"
        );
    }
    body
}

/// The second part: after the index, the plan changes, the advice is
/// applied and the class's p95 fell.
async fn assert_applied(pw: &Perfwatch, server: &str) {
    let scan = class_id(&scan_statement());
    let p95 = |b: &str, period: &str| {
        value(
            b,
            "perfwatch_slow_query_index_advice_p95_seconds",
            &[
                ("target", "slow"),
                ("fingerprint", &scan),
                ("period", period),
            ],
        )
    };
    let body = pw
        .wait_until(Duration::from_secs(60), "the advice applied", |b| {
            advice(b, &scan, "applied").is_some() && p95(b, "after").is_some()
        })
        .await;
    assert_eq!(plan_scans(&body, &scan, "seq"), Some(0.0), "{server}");
    assert_eq!(
        value(
            &body,
            "perfwatch_slow_query_plan_seq_scan_rows",
            &[
                ("target", "slow"),
                ("fingerprint", &scan),
                ("table", "trip")
            ],
        ),
        None,
        "{server}: the new plan reads trip through the index"
    );
    let (before, after) = (p95(&body, "before").unwrap(), p95(&body, "after").unwrap());
    assert!(
        after < before,
        "{server}: p95 after the index {after} s, before {before} s"
    );
    let json = class_json(pw, &scan).await;
    assert_eq!(json["advice"]["state"], "applied", "{json}");
    // The same number through the text format and through JSON.
    let api_before = json["advice"]["p95_before_seconds"].as_f64().unwrap();
    assert!((api_before - before).abs() <= 1e-9 * before.abs(), "{json}");
    let (_, page) = pw.get("/").await;
    assert!(
        page.contains("applied: index on trip(driver_id); p95 "),
        "{server}: the status page shows the advice applied"
    );
}

/// The end of each test: `create_index`, run on `admin`, changes the plans
/// and the advice is applied ([`assert_applied`]); then perfwatch stops, one
/// with `keep_examples = true` serves the literals
/// ([`assert_examples_kept`]), and the workload stops.
async fn create_the_index<C>(
    mut admin: C,
    create_index: &'static str,
    pw: Perfwatch,
    server: &str,
    slowlog: &str,
    stop: Arc<AtomicBool>,
    load: tokio::task::JoinHandle<()>,
) where
    C: Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    sqlx::raw_sql(create_index)
        .execute(&mut admin)
        .await
        .unwrap();
    assert_applied(&pw, server).await;
    pw.stop().await;
    assert_examples_kept(slowlog).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
}

/// With keep_examples = true the literals are served: the privacy check
/// above would have seen them.
async fn assert_examples_kept(slowlog: &str) {
    let pw = Perfwatch::start(&config(
        "interval = \"300ms\"\ntimeout = \"280ms\"",
        &format!("{slowlog}keep_examples = true\n"),
    ))
    .await;
    let scan = class_id(&scan_statement());
    let mut json = Value::Null;
    for _ in 0..100 {
        json = class_json(&pw, &scan).await;
        if json["example"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let example = json["example"].as_str().unwrap_or_default();
    assert!(
        example.contains(SECRET_NUMBER) && example.contains(SECRET_TEXT),
        "{json}"
    );
    let (_, page) = pw.get("/").await;
    assert!(
        page.contains(SECRET_TEXT),
        "the status page shows the example"
    );
    pw.stop().await;
}

/// Asserts `counts` (EXPLAIN statements per class text, counted by the
/// server over [`WINDOW`]) keep the budget: each class at most once per
/// interval (plus the one at the window's edge), at most one per poll, at
/// least one, and never the UPDATE.
fn assert_budget(server: &str, counts: &[(String, u64)], polls_in_window: f64) {
    let total: u64 = counts.iter().map(|c| c.1).sum();
    let per_class = WINDOW.as_secs() / EXPLAIN_INTERVAL_SECS + 1;
    assert!(total >= 1, "{server}: no EXPLAIN in the window: {counts:?}");
    for (text, n) in counts {
        assert!(
            *n <= per_class,
            "{server}: {n} EXPLAINs of one class in {WINDOW:?} (at most {per_class}): {text}"
        );
        assert!(
            !text.to_uppercase().contains("UPDATE"),
            "{server}: an UPDATE was explained: {text}"
        );
    }
    assert!(
        total as f64 <= polls_in_window + 1.0,
        "{server}: {total} EXPLAINs in {polls_in_window} polls (max_per_poll = 1)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_plans_advise_an_index_and_show_it_helped() {
    let pg: PostgresServer = blocking(|| {
        let pg = common::start_pg(&[
            ("log_min_duration_statement", "0"),
            ("logging_collector", "on"),
            ("log_destination", "jsonlog"),
            ("log_directory", "log"),
            ("shared_preload_libraries", "pg_stat_statements"),
            ("lc_messages", "C"),
        ]);
        // perfwatch's own role: monitoring, SELECT for planning, and its
        // statements kept out of the slow log it reads.
        pg.psql(
            "CREATE EXTENSION pg_stat_statements;
             CREATE ROLE watcher LOGIN;
             GRANT pg_monitor TO watcher;
             ALTER ROLE watcher SET log_min_duration_statement = -1;
             CREATE TABLE trip (id int PRIMARY KEY, driver_id int, status text, fare int);
             INSERT INTO trip SELECT i, i % 1000, 'done', i % 50 FROM generate_series(1, 200000) i;
             GRANT SELECT ON trip TO watcher;
             ANALYZE trip;",
        )
        .unwrap();
        pg
    })
    .await;
    let slowlog = format!(
        "[[slowlog]]\nname = \"slow\"\nformat = \"postgres-json\"\npath = \"{}\"\nstart_at = \"beginning\"\ntop_queries = 20\n",
        pg.log_dir().display()
    );
    let db = format!(
        "[[postgres]]\nname = \"db\"\ndsn = \"postgres://watcher@127.0.0.1:{}/postgres\"",
        pg.port()
    );
    let pw = Perfwatch::start(&advice_config(&slowlog, "postgres", &db)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let conn = sqlx::PgConnection::connect(&pg.dsn()).await.unwrap();
    let load = workload(conn, stop.clone());

    assert_suggested(&pw, "postgresql").await;

    // The budget, counted by the server: EXPLAINs per class text.
    let count_sql =
        "SELECT query, calls FROM pg_stat_statements WHERE query LIKE 'EXPLAIN%' ORDER BY query";
    let mut admin = sqlx::PgConnection::connect(&pg.dsn()).await.unwrap();
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(&mut admin)
        .await
        .unwrap();
    let before = polls(&pw.scrape().await, "db");
    tokio::time::sleep(WINDOW).await;
    let counts: Vec<(String, i64)> = sqlx::query_as(count_sql)
        .fetch_all(&mut admin)
        .await
        .unwrap();
    let polled = polls(&pw.scrape().await, "db") - before;
    let counts: Vec<(String, u64)> = counts.into_iter().map(|(q, n)| (q, n as u64)).collect();
    assert_budget("postgresql", &counts, polled);

    let index = "CREATE INDEX trip_driver ON trip (driver_id)";
    create_the_index(admin, index, pw, "postgresql", &slowlog, stop, load).await;
}

/// Every `EXPLAIN` statement in the MariaDB slow log from byte `from`, by
/// text.
fn logged_explains(log: &Path, from: u64) -> Vec<(String, u64)> {
    let text = std::fs::read(log).unwrap();
    let text = String::from_utf8_lossy(&text[from as usize..]).into_owned();
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for line in text.lines().filter(|l| l.starts_with("EXPLAIN")) {
        *counts.entry(line.to_owned()).or_default() += 1;
    }
    counts.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_plans_advise_an_index_and_show_it_helped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("slow.log");
    let log2 = log.clone();
    let db: MariaDbServer = blocking(move || {
        let db = MariaDbServer::start(&[("slow_query_log", "1"), ("long_query_time", "0")])
            .unwrap_or_else(|e| panic!("{e}"));
        db.sql(&format!(
            "SET GLOBAL slow_query_log_file = '{}';
             CREATE DATABASE app;
             USE app;
             CREATE TABLE app.trip (id INT PRIMARY KEY, driver_id INT, status VARCHAR(20), fare INT);
             INSERT INTO app.trip SELECT seq, seq % 1000, 'done', seq % 50 FROM seq_1_to_200000;
             ANALYZE TABLE app.trip;",
            log2.display()
        ))
        .unwrap();
        db
    })
    .await;
    let slowlog = format!(
        "[[slowlog]]\nname = \"slow\"\nformat = \"mysql\"\npath = \"{}\"\nstart_at = \"beginning\"\ntop_queries = 20\n",
        log.display()
    );
    let target = format!(
        "[[mysql]]\nname = \"db\"\ndsn = \"mysql://root@127.0.0.1:{}/app\"",
        db.port()
    );
    let pw = Perfwatch::start(&advice_config(&slowlog, "mysql", &target)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let conn = sqlx::MySqlConnection::connect(&format!("{}app", db.dsn()))
        .await
        .unwrap();
    let load = workload(conn, stop.clone());

    assert_suggested(&pw, "mariadb").await;

    let from = std::fs::metadata(&log).unwrap().len();
    let before = polls(&pw.scrape().await, "db");
    tokio::time::sleep(WINDOW).await;
    let polled = polls(&pw.scrape().await, "db") - before;
    assert_budget("mariadb", &logged_explains(&log, from), polled);

    let admin = sqlx::MySqlConnection::connect(&format!("{}app", db.dsn()))
        .await
        .unwrap();
    let index = "ALTER TABLE trip ADD INDEX trip_driver (driver_id)";
    create_the_index(admin, index, pw, "mariadb", &slowlog, stop, load).await;
}
