//! Statement statistics as slow-query sources: PostgreSQL's
//! pg_stat_statements and MariaDB's performance_schema statement digests,
//! against real, throwaway servers started by the harness. Counts are exact;
//! times are compared with the server's own view of the same interval.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    Db, Expected, FAST, Perfwatch, assert_value, assert_values, blocking, config, exec, polls,
    promtool_check_metrics, start_db, start_pg_with, start_pg_with_statements, value, wait_polls,
};
use perfwatch_slowlog::fingerprint::{fingerprint, fingerprint_id};
use perfwatch_testbench::PostgresServer;
use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Connection, Row};

/// How long [`wait_polls`] waits for the polls it asks for.
const POLL_WAIT: Duration = Duration::from_secs(20);

/// The class id a slow log would give `query` (literals and all).
fn class_of(query: &str) -> String {
    fingerprint_id(&fingerprint(query))
}

/// The labels of a sample line as a map.
fn labels(line: &str) -> BTreeMap<String, String> {
    let Some(start) = line.find('{') else {
        return BTreeMap::new();
    };
    let end = line.rfind('}').unwrap();
    let mut out = BTreeMap::new();
    let mut rest = &line[start + 1..end];
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches(',').to_owned();
        let after = &rest[eq + 2..];
        let close = after.find('"').unwrap();
        out.insert(key, after[..close].to_owned());
        rest = &after[close + 1..];
    }
    out
}

/// `(db, fingerprint) → executions` of `target` (the histogram's `_count`).
fn class_counts(body: &str, target: &str) -> BTreeMap<(String, String), f64> {
    body.lines()
        .filter(|l| l.starts_with("perfwatch_slow_query_duration_seconds_count{"))
        .filter_map(|l| {
            let lb = labels(l);
            (lb.get("target")? == target).then(|| {
                let v: f64 = l.rsplit_once(' ').unwrap().1.parse().unwrap();
                ((lb["db"].clone(), lb["fingerprint"].clone()), v)
            })
        })
        .collect()
}

fn count(body: &str, target: &str, db: &str, fp: &str) -> Option<f64> {
    class_counts(body, target)
        .get(&(db.to_owned(), fp.to_owned()))
        .copied()
}

fn sum(body: &str, target: &str, db: &str, fp: &str) -> Option<f64> {
    value(
        body,
        "perfwatch_slow_query_duration_seconds_sum",
        &[("target", target), ("db", db), ("fingerprint", fp)],
    )
}

fn reads(body: &str, target: &str) -> f64 {
    value(
        body,
        "perfwatch_slow_query_source_reads_total",
        &[("target", target)],
    )
    .unwrap_or(0.0)
}

/// Waits until `want` holds, then for two more polls, and checks it still
/// holds (nothing counted twice, nothing late).
async fn settle(pw: &Perfwatch, target: &str, what: &str, want: impl Fn(&str) -> bool) -> String {
    pw.wait_for(Duration::from_secs(20), what, |b| want(b).then_some(()))
        .await;
    let body = wait_polls(pw, target, 2.0, POLL_WAIT).await;
    assert!(want(&body), "{what} no longer holds:\n{body}");
    body
}

/// Waits for perfwatch's first read of `target`: the baseline.
async fn wait_baseline(pw: &Perfwatch, target: &str) {
    pw.wait_for(Duration::from_secs(20), "the baseline read", |b| {
        (reads(b, target) >= 1.0).then_some(())
    })
    .await;
}

/// Waits until the classes of database `app` of `target` add up to `n`
/// executions.
async fn settle_app_total(pw: &Perfwatch, target: &str, n: usize) -> String {
    settle(pw, target, "every execution counted", |b| {
        let in_app: f64 = class_counts(b, target)
            .iter()
            .filter(|((db, _), _)| db == "app")
            .map(|(_, n)| n)
            .sum();
        in_app == n as f64
    })
    .await
}

/// Waits until each shape in `ids` shows `n` executions in database `app`
/// of `target`.
async fn settle_shapes(pw: &Perfwatch, target: &str, ids: &[String], n: usize) -> String {
    settle(pw, target, &format!("{n} executions of each shape"), |b| {
        ids.iter()
            .all(|id| count(b, target, "app", id) == Some(n as f64))
    })
    .await
}

/// Exactly `n` executions of each of the 3 shapes in database `app` of
/// `target`: the total, and each shape's count and duration sum against the
/// server's own `(calls, total time)` views `before` and `after`.
fn assert_exact(
    body: &str,
    target: &str,
    ids: &[String],
    n: usize,
    before: &[(f64, f64)],
    after: &[(f64, f64)],
) {
    assert_eq!(
        value(
            body,
            "perfwatch_slow_queries_total",
            &[("target", target), ("db", "app")]
        ),
        Some((3 * n) as f64),
        "{body}"
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(after[i].0 - before[i].0, n as f64);
        let want = after[i].1 - before[i].1;
        let got = sum(body, target, "app", id).unwrap();
        assert!(close(got, want), "shape {i}: sum {got} vs server {want}");
    }
}

/// `target` reads `source` and it is up; the scrape passes promtool.
fn assert_source_up(body: &str, target: &str, source: &str) {
    let l = [("target", target), ("source", source)];
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_slow_query_source_info", &l, Some(1.0)),
        ("perfwatch_slow_query_source_up", &l, Some(1.0)),
    ];
    assert_values(body, wanted);
    promtool_check_metrics(body);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 + 1e-9 * b.abs()
}

// ---------------------------------------------------------------- PostgreSQL

/// Three statement shapes in database `app`, `n` executions each with
/// different literals, as one psql call.
fn pg_workload(shapes: &[usize], n: usize, from: usize) -> String {
    let mut w = String::new();
    for i in from..from + n {
        for s in shapes {
            w.push_str(&pg_shape(*s, i));
            w.push_str(";\n");
        }
    }
    w
}

fn pg_shape(shape: usize, i: usize) -> String {
    match shape {
        0 => format!("SELECT count(*) FROM t WHERE a = {i}"),
        1 => format!("SELECT b FROM t WHERE id = {i}"),
        2 => format!("UPDATE t SET b = 'x{i}' WHERE id = {i}"),
        3 => format!("SELECT max(a) FROM t WHERE b <> 'q{i}'"),
        4 => format!("SELECT id FROM t ORDER BY a DESC LIMIT {}", i + 1),
        _ => format!("DELETE FROM t WHERE id = -{i}"),
    }
}

/// [`pg_server_view`] of every shape in [`PG_PREFIXES`].
fn pg_server_views(pg: &PostgresServer) -> Vec<(f64, f64)> {
    PG_PREFIXES.iter().map(|p| pg_server_view(pg, p)).collect()
}

/// The server's own (calls, total seconds) for statements in `app` whose
/// text starts with `prefix` (all rows of the shape summed).
fn pg_server_view(pg: &PostgresServer, prefix: &str) -> (f64, f64) {
    let out = pg
        .psql(&format!(
            "SELECT coalesce(sum(calls), 0)::float8 || ' ' || coalesce(sum(total_exec_time), 0)::float8 \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname = 'app' AND s.toplevel AND s.query LIKE '{prefix}%'"
        ))
        .unwrap();
    let (c, t) = out.trim().split_once(' ').unwrap();
    (c.parse().unwrap(), t.parse::<f64>().unwrap() / 1000.0)
}

const PG_PREFIXES: [&str; 3] = [
    "SELECT count(*) FROM t WHERE a =",
    "SELECT b FROM t WHERE id =",
    "UPDATE t SET b =",
];

#[tokio::test]
async fn pg_stat_statements_deltas_are_exact_reset_safe_and_cost_one_statement() {
    let pg = blocking(start_pg_with_statements).await;
    // History before perfwatch starts is a baseline, not new executions.
    pg.psql_in("app", &pg_workload(&[0, 1, 2], 5, 1000))
        .unwrap();
    let dsn = pg.dsn().replace("postgres@", "pw@");
    let toml = config(
        FAST,
        &format!(
            "[[postgres]]\nname = \"pg\"\ndsn = \"{dsn}\"\n[postgres.statements]\ntop_queries = 20\n"
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    wait_baseline(&pw, "pg").await;
    let before = pg_server_views(&pg);
    assert_eq!(before[0].0, 5.0, "the server's own history: {before:?}");

    const N: usize = 7;
    pg.psql_in("app", &pg_workload(&[0, 1, 2], N, 0)).unwrap();
    let ids: Vec<String> = (0..3).map(|s| class_of(&pg_shape(s, 42))).collect();
    let body = settle_shapes(&pw, "pg", &ids, N).await;
    let after = pg_server_views(&pg);
    // Exactly the workload in app: no history, no double count.
    assert_exact(&body, "pg", &ids, N, &before, &after);
    for id in &ids {
        assert_eq!(
            value(
                &body,
                "perfwatch_slow_query_duration_seconds_bucket",
                &[("fingerprint", id), ("le", "+Inf")]
            ),
            Some(N as f64)
        );
    }
    assert_source_up(&body, "pg", "pg_stat_statements");

    // The JSON API lists the target like a slow-log one.
    let (status, json) = pw.get("/api/slow-queries").await;
    assert_eq!(status, 200, "{json}");
    let all: serde_json::Value = serde_json::from_str(&json).unwrap();
    let classes = all["pg"].as_array().unwrap_or_else(|| panic!("{json}"));
    let c = classes
        .iter()
        .find(|c| c["fingerprint"] == ids[0].as_str())
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(
        (c["db"].as_str(), c["count"].as_u64()),
        (Some("app"), Some(N as u64))
    );

    // Server-side load: one more statement per read on the same session.
    let sessions = || {
        pg.psql("SELECT pid || ' ' || backend_start FROM pg_stat_activity WHERE application_name = 'perfwatch'")
            .unwrap()
    };
    let pw_calls = || {
        let out = pg
            .psql(
                "SELECT coalesce(sum(calls), 0)::int8 || ' ' || coalesce(sum(calls) FILTER (WHERE query LIKE '%FROM pg_stat_statements s LEFT JOIN pg_database%'), 0)::int8 \
                 FROM pg_stat_statements WHERE userid = 'pw'::regrole",
            )
            .unwrap();
        let (all, ours) = out.trim().split_once(' ').unwrap();
        (all.parse::<f64>().unwrap(), ours.parse::<f64>().unwrap())
    };
    // Between polls (every 500 ms) the counts are still: read them right
    // after a poll finished.
    let s0 = sessions();
    let b0 = wait_polls(&pw, "pg", 1.0, POLL_WAIT).await;
    let (all0, ours0) = pw_calls();
    let b1 = wait_polls(&pw, "pg", 4.0, POLL_WAIT).await;
    let (all1, ours1) = pw_calls();
    let polled = polls(&b1, "pg") - polls(&b0, "pg");
    assert_eq!(ours1 - ours0, polled, "pg_stat_statements reads per poll");
    assert_eq!(
        all1 - all0,
        5.0 * polled,
        "statements per poll: 4 for connection stats (activity, server, databases, replication) + 1 read"
    );
    assert_eq!(s0, sessions(), "the same single session");
    assert_eq!(s0.lines().count(), 1, "{s0}");

    // A reset mid-test: shape 0 runs less often than before, shape 1 more
    // often (only the reset time tells that apart from +3); nothing goes
    // negative or counts twice.
    pg.psql("SELECT pg_stat_statements_reset()").unwrap();
    let sums: Vec<f64> = ids
        .iter()
        .map(|id| sum(&b1, "pg", "app", id).unwrap())
        .collect();
    pg.psql_in("app", &pg_workload(&[0], 2, 100)).unwrap();
    pg.psql_in("app", &pg_workload(&[1], 10, 100)).unwrap();
    let body = settle(&pw, "pg", "counts after the reset", |b| {
        count(b, "pg", "app", &ids[0]) == Some(9.0)
            && count(b, "pg", "app", &ids[1]) == Some(17.0)
            && count(b, "pg", "app", &ids[2]) == Some(7.0)
    })
    .await;
    assert_eq!(
        value(
            &body,
            "perfwatch_slow_queries_total",
            &[("target", "pg"), ("db", "app")]
        ),
        Some(33.0)
    );
    for i in 0..2 {
        let now = pg_server_view(&pg, PG_PREFIXES[i]);
        assert_eq!(now.0, [2.0, 10.0][i], "the server did reset");
        let got = sum(&body, "pg", "app", &ids[i]).unwrap() - sums[i];
        assert!(close(got, now.1), "shape {i}: {got} vs server {}", now.1);
    }
    promtool_check_metrics(&body);
    pw.stop().await;
}

#[tokio::test]
async fn pg_more_shapes_than_top_queries_go_to_other() {
    let pg = blocking(start_pg_with_statements).await;
    let pw = Perfwatch::start_fast(&format!(
        "[[postgres]]\nname = \"pg\"\ndsn = \"{}\"\n[postgres.statements]\ntop_queries = 2\n",
        pg.dsn()
    ))
    .await;
    wait_baseline(&pw, "pg").await;
    const N: usize = 4;
    let shapes = [0, 1, 2, 3, 4, 5];
    pg.psql_in("app", &pg_workload(&shapes, N, 0)).unwrap();
    let body = settle_app_total(&pw, "pg", shapes.len() * N).await;
    let classes = class_counts(&body, "pg");
    let named: Vec<_> = classes.keys().filter(|(_, fp)| fp != "other").collect();
    assert_eq!(
        named.len(),
        2,
        "top_queries bounds the named classes: {classes:?}"
    );
    assert!(
        classes.contains_key(&("app".to_owned(), "other".to_owned())),
        "{classes:?}"
    );
    let app = [("target", "pg"), ("db", "app")];
    let total = (shapes.len() * N) as f64;
    assert_value(&body, "perfwatch_slow_queries_total", &app, Some(total));
    promtool_check_metrics(&body);
    pw.stop().await;
}

#[tokio::test]
async fn pg_without_the_extension_degrades_and_keeps_the_rest() {
    // Not preloaded. Database "postgres": no extension (the view is
    // missing); database "ext": the extension exists but the library is
    // not loaded.
    let pg = start_pg_with(&[], |pg| {
        pg.create_database("ext").unwrap();
        pg.psql_in("ext", "CREATE EXTENSION pg_stat_statements")
            .unwrap();
    })
    .await;
    let target = |name: &str, db: &str| {
        format!(
            "[[postgres]]\nname = \"{name}\"\ndsn = \"{}\"\n[postgres.statements]\n",
            pg.dsn_for(db)
        )
    };
    let toml = config(
        FAST,
        &format!(
            "{}{}",
            target("none", "postgres"),
            target("unloaded", "ext")
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    let body = pw
        .wait_for(Duration::from_secs(20), "both sources down", |b| {
            ["none", "unloaded"]
                .iter()
                .all(|t| {
                    value(
                        b,
                        "perfwatch_postgres_part_errors_total",
                        &[("target", t), ("part", "statements")],
                    ) >= Some(1.0)
                })
                .then(|| b.to_owned())
        })
        .await;
    for t in ["none", "unloaded"] {
        let tl = [("target", t)];
        assert_eq!(
            value(&body, "perfwatch_slow_query_source_up", &tl),
            Some(0.0),
            "{t}"
        );
        assert_eq!(
            value(
                &body,
                "perfwatch_collector_degraded",
                &[("target", t), ("reason", "query")]
            ),
            Some(1.0),
            "{t}"
        );
        assert_eq!(value(&body, "perfwatch_target_up", &tl), Some(1.0), "{t}");
        assert_value(&body, "pg_settings_max_connections", &tl, Some(50.0));
        assert!(
            value(&body, "perfwatch_postgres_unused_indexes", &tl).is_some(),
            "index stats still read for {t}"
        );
    }
    promtool_check_metrics(&body);
    pw.stop().await;
}

// ------------------------------------------------------------------- MariaDB

/// [`pg_shape`] as MariaDB digests spell it (`COUNT`, `MAX`).
fn my_shape(shape: usize, i: usize) -> String {
    pg_shape(shape, i)
        .replace("count(", "COUNT(")
        .replace("max(", "MAX(")
}

async fn my_workload(conn: &mut MySqlConnection, shapes: &[usize], n: usize, from: usize) {
    for i in from..from + n {
        for s in shapes {
            exec(conn, &my_shape(*s, i)).await;
        }
    }
}

/// The server's own (calls, total seconds) for digests in `app` whose text
/// starts with `prefix`.
/// [`my_server_view`] of every shape in [`MY_PREFIXES`].
async fn my_server_views(admin: &mut MySqlConnection) -> Vec<(f64, f64)> {
    let mut views = Vec::new();
    for p in MY_PREFIXES {
        views.push(my_server_view(admin, p).await);
    }
    views
}

async fn my_server_view(admin: &mut MySqlConnection, prefix: &str) -> (f64, f64) {
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(COUNT_STAR), 0) AS CHAR), CAST(COALESCE(SUM(SUM_TIMER_WAIT), 0) AS CHAR) \
         FROM performance_schema.events_statements_summary_by_digest \
         WHERE SCHEMA_NAME = 'app' AND DIGEST_TEXT LIKE '{prefix}%'"
    );
    let row = sqlx::raw_sql(AssertSqlSafe(sql))
        .fetch_one(admin)
        .await
        .unwrap();
    let c: String = row.try_get_unchecked(0).unwrap();
    let t: String = row.try_get_unchecked(1).unwrap();
    (c.parse().unwrap(), t.parse::<f64>().unwrap() / 1e12)
}

const MY_PREFIXES: [&str; 3] = [
    "SELECT COUNT ( * ) FROM `t` WHERE `a` =",
    "SELECT `b` FROM `t` WHERE ID =",
    "UPDATE `t` SET `b` =",
];

fn my_config(dsn: &str, extra: &str) -> String {
    config(
        FAST,
        &format!("[[mysql]]\nname = \"my\"\ndsn = \"{dsn}\"\n[mysql.statements]\n{extra}\n"),
    )
}

async fn my_server_with_app(settings: &[(&str, &str)]) -> (Db, MySqlConnection, MySqlConnection) {
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let db = blocking(move || {
        let s: Vec<(&str, &str)> = settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        start_db(&s)
    })
    .await;
    let mut admin = MySqlConnection::connect(&db.server.dsn()).await.unwrap();
    exec(&mut admin, "CREATE DATABASE app").await;
    exec(
        &mut admin,
        "CREATE TABLE app.t (id INT PRIMARY KEY, a INT, b VARCHAR(20))",
    )
    .await;
    exec(
        &mut admin,
        "INSERT INTO app.t SELECT seq, seq % 7, CONCAT('b', seq) FROM mysql.seq_1_to_200",
    )
    .await;
    // The workload's own connection, opened now: its session setup is part
    // of the history perfwatch's first read takes as a baseline.
    let app = MySqlConnection::connect(&format!("{}app", db.server.dsn()))
        .await
        .unwrap();
    (db, admin, app)
}

#[tokio::test]
async fn performance_schema_digests_are_exact_reset_safe_and_cost_one_statement() {
    let (db, mut admin, mut app) = my_server_with_app(&[("performance_schema", "ON")]).await;
    my_workload(&mut app, &[0, 1, 2], 5, 1000).await;
    let pw = Perfwatch::start(&my_config(&db.server.dsn(), "top_queries = 20")).await;
    wait_baseline(&pw, "my").await;
    let before = my_server_views(&mut admin).await;
    assert_eq!(before[0].0, 5.0, "the server's own history: {before:?}");

    const N: usize = 7;
    my_workload(&mut app, &[0, 1, 2], N, 0).await;
    let ids: Vec<String> = (0..3).map(|s| class_of(&my_shape(s, 42))).collect();
    let body = settle_shapes(&pw, "my", &ids, N).await;
    let after = my_server_views(&mut admin).await;
    assert_exact(&body, "my", &ids, N, &before, &after);
    // Rows examined: shape 0 scans the 200-row table each time.
    assert_eq!(
        value(
            &body,
            "perfwatch_slow_query_rows_examined_total",
            &[("db", "app"), ("fingerprint", &ids[0])]
        ),
        Some((200 * N) as f64)
    );
    assert_source_up(&body, "my", "performance_schema");
    let (status, json) = pw.get("/api/slow-queries?target=my").await;
    assert_eq!(status, 200, "{json}");
    assert!(json.contains(&ids[1]), "{json}");

    // Server-side load on a quiet server: 3 statements per poll (2 + the
    // read) and no new connection.
    let t = [("target", "my")];
    let b0 = wait_polls(&pw, "my", 1.0, POLL_WAIT).await;
    let b1 = wait_polls(&pw, "my", 4.0, POLL_WAIT).await;
    let q = |b: &str| value(b, "mysql_global_status_questions_total", &t).unwrap();
    let c = |b: &str| value(b, "mysql_global_status_connections_total", &t).unwrap();
    let s = |b: &str| value(b, "perfwatch_mysql_statements_total", &t).unwrap();
    let polled = polls(&b1, "my") - polls(&b0, "my");
    assert_eq!((q(&b1) - q(&b0)) / polled, 3.0, "statements per poll");
    assert_eq!((s(&b1) - s(&b0)) / polled, 3.0);
    assert_eq!(c(&b1) - c(&b0), 0.0, "no new connection");
    assert_value(&b1, "perfwatch_mysql_connects_total", &t, Some(1.0));

    // TRUNCATE mid-test: fewer executions than before are counted, never
    // a negative or a repeat of history.
    exec(
        &mut admin,
        "TRUNCATE performance_schema.events_statements_summary_by_digest",
    )
    .await;
    let sums: Vec<f64> = ids
        .iter()
        .map(|id| sum(&b1, "my", "app", id).unwrap())
        .collect();
    my_workload(&mut app, &[0], 2, 100).await;
    my_workload(&mut app, &[1], 3, 100).await;
    let body = settle(&pw, "my", "counts after the truncate", |b| {
        count(b, "my", "app", &ids[0]) == Some(9.0)
            && count(b, "my", "app", &ids[1]) == Some(10.0)
            && count(b, "my", "app", &ids[2]) == Some(7.0)
    })
    .await;
    for i in 0..2 {
        let now = my_server_view(&mut admin, MY_PREFIXES[i]).await;
        let got = sum(&body, "my", "app", &ids[i]).unwrap() - sums[i];
        assert!(close(got, now.1), "shape {i}: {got} vs server {}", now.1);
    }

    // The digest consumer switched off: degraded, the rest continues.
    exec(
        &mut admin,
        "UPDATE performance_schema.setup_consumers SET ENABLED = 'NO' WHERE NAME = 'statements_digest'",
    )
    .await;
    let body = pw
        .wait_for(Duration::from_secs(20), "the source down", |b| {
            (value(b, "perfwatch_slow_query_source_up", &t) == Some(0.0)).then(|| b.to_owned())
        })
        .await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_collector_degraded", &[("target", "my"), ("reason", "statements_unavailable")], Some(1.0)),
        ("perfwatch_target_up", &t, Some(1.0)),
    ];
    assert_values(&body, wanted);
    assert_eq!(count(&body, "my", "app", &ids[2]), Some(7.0), "kept");
    promtool_check_metrics(&body);
    pw.stop().await;
}

#[tokio::test]
async fn performance_schema_more_shapes_than_top_queries_go_to_other() {
    let (db, _admin, mut app) = my_server_with_app(&[("performance_schema", "ON")]).await;
    let pw = Perfwatch::start(&my_config(&db.server.dsn(), "top_queries = 2")).await;
    wait_baseline(&pw, "my").await;
    const N: usize = 4;
    let shapes = [0, 1, 2, 3, 4, 5];
    my_workload(&mut app, &shapes, N, 0).await;
    let body = settle_app_total(&pw, "my", shapes.len() * N).await;
    let classes = class_counts(&body, "my");
    let named: Vec<_> = classes.keys().filter(|(_, fp)| fp != "other").collect();
    assert_eq!(named.len(), 2, "{classes:?}");
    assert!(classes.contains_key(&("app".to_owned(), "other".to_owned())));
    promtool_check_metrics(&body);
    pw.stop().await;
}

#[tokio::test]
async fn performance_schema_off_degrades_and_keeps_the_rest() {
    let (db, _admin, _app) = my_server_with_app(&[("performance_schema", "OFF")]).await;
    let pw = Perfwatch::start(&my_config(&db.server.dsn(), "")).await;
    let t = [("target", "my")];
    let body = pw
        .wait_until(Duration::from_secs(20), "a poll", |b| polls(b, "my") >= 2.0)
        .await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_slow_query_source_up", &t, Some(0.0)),
        ("perfwatch_collector_degraded", &[("target", "my"), ("reason", "statements_unavailable")], Some(1.0)),
        ("perfwatch_target_up", &t, Some(1.0)),
    ];
    assert_values(&body, wanted);
    assert!(value(&body, "mysql_global_status_questions_total", &t).is_some());
    // No read was even sent: 2 statements per poll.
    let b0 = wait_polls(&pw, "my", 1.0, POLL_WAIT).await;
    let b1 = wait_polls(&pw, "my", 3.0, POLL_WAIT).await;
    let s = |b: &str| value(b, "perfwatch_mysql_statements_total", &t).unwrap();
    assert_eq!(
        (s(&b1) - s(&b0)) / (polls(&b1, "my") - polls(&b0, "my")),
        2.0
    );
    promtool_check_metrics(&body);
    pw.stop().await;
}
