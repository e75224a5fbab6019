//! The status page's database cards in a real browser (issue 17), each
//! against a throwaway server polled by perfwatch every 500 ms and loaded
//! in headless Chromium (Debian package `chromium`; a missing binary fails
//! the test with the install hint, as a missing server does):
//!
//! - PostgreSQL with `pg_stat_statements` and `[postgres.statements]`: five
//!   statement shapes that sleep, each its own query class run a different
//!   number of times; the card's top-queries table lists the classes
//!   `/api/slow-queries` reports first, by database and fingerprint id,
//!   with their counts.
//! - MariaDB with `processlist = true`: sessions held in `SELECT SLEEP` and
//!   waiting on `GET_LOCK`, started and ended at different times; every
//!   point of the "threads by state" chart is what `/metrics` served for
//!   `mysql_info_schema_processlist_threads` (summed over `command`, as the
//!   chart sums it) at that poll, and every state served is drawn.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::chromium::chromium;
use common::peer::Scrape;
use common::status::{
    Served, TopRow, assert_lines_served, dom_lines, poll_time, record_served, top_rows,
};
use common::{FAST, Perfwatch, blocking, config, start_db, start_pg_with_statements, value};
use serde_json::Value;

/// A window wide enough for every card; the layout at other widths is
/// tests/status_page.rs's.
const WINDOW: (u32, u32) = (1280, 1800);

/// Rows the card's table lists: the first classes of `/api/slow-queries`
/// (`TOP_QUERIES` in src/status/mod.rs).
const TABLE_ROWS: usize = 5;

/// Statement shapes, each its own query class, each sleeping 0.25 s: at
/// 4 to 8 runs each they hold seconds of total time, far above perfwatch's
/// own statements (milliseconds over the test), so they are the first
/// classes by total time, and their counts tell them apart.
const SHAPES: [&str; TABLE_ROWS] = [
    "SELECT pg_sleep(0.25)",
    "SELECT 1 AS one, pg_sleep(0.25)",
    "SELECT pg_sleep(0.25) FROM t WHERE id = 1",
    "SELECT pg_sleep(0.25) FROM t WHERE id = 1 AND a >= 0",
    "SELECT id, pg_sleep(0.25) FROM t WHERE id = 1",
];

/// Runs of shape `i`.
fn runs(i: usize) -> u64 {
    4 + i as u64
}

/// What the top-queries table `rows` gets wrong against the
/// `/api/slow-queries` list `classes`, in words: the table must list the
/// list's first [`TABLE_ROWS`] classes, each once, identified by database
/// and fingerprint id, with the list's count, and nothing else.
fn table_mismatches(rows: &[TopRow], classes: &[Value]) -> Vec<String> {
    let want: Vec<(&str, &str, String)> = classes
        .iter()
        .take(TABLE_ROWS)
        .map(|c| {
            (
                c["db"].as_str().unwrap_or(""),
                c["fingerprint"].as_str().unwrap_or(""),
                c["count"].to_string(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for (db, fp, count) in &want {
        let listed: Vec<&TopRow> = rows
            .iter()
            .filter(|r| r.db == *db && r.fingerprint == *fp)
            .collect();
        match listed[..] {
            [] => out.push(format!(
                "class {db}/{fp} (count {count}) is not in the table"
            )),
            [r] if r.count != *count => out.push(format!(
                "class {db}/{fp}: the table says count {}, /api/slow-queries {count}",
                r.count
            )),
            [_] => {}
            _ => out.push(format!("class {db}/{fp} is listed {} times", listed.len())),
        }
    }
    for r in rows {
        if !want
            .iter()
            .any(|(db, fp, _)| r.db == *db && r.fingerprint == *fp)
        {
            out.push(format!(
                "{r:?} is not among the first {TABLE_ROWS} classes of /api/slow-queries"
            ));
        }
    }
    out
}

/// `/api/slow-queries?target=pg`.
async fn classes(pw: &Perfwatch) -> Vec<Value> {
    let (status, body) = pw.get("/api/slow-queries?target=pg").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| panic!("not a JSON list: {body}"))
}

/// The counts of the classes whose text sleeps, smallest first.
fn sleeping_counts(classes: &[Value]) -> Vec<u64> {
    let mut counts: Vec<u64> = classes
        .iter()
        .filter(|c| c["query"].as_str().is_some_and(|q| q.contains("pg_sleep")))
        .filter_map(|c| c["count"].as_u64())
        .collect();
    counts.sort_unstable();
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_top_queries_table_lists_the_classes_api_slow_queries_reports() {
    let pg = Arc::new(blocking(start_pg_with_statements).await);
    let dsn = pg.dsn().replace("postgres@", "pw@");
    let toml = config(
        FAST,
        &format!("[[postgres]]\nname = \"pg\"\ndsn = \"{dsn}\"\n[postgres.statements]\n"),
    );
    let pw = Perfwatch::start(&toml).await;
    // The first read is the baseline: only what runs after it is counted.
    pw.wait_for(Duration::from_secs(30), "the baseline read", |b| {
        let reads = value(
            b,
            "perfwatch_slow_query_source_reads_total",
            &[("target", "pg")],
        );
        reads.is_some_and(|r| r >= 1.0).then_some(())
    })
    .await;

    // Every shape in a session of its own, all at once (2 s at most).
    let server = pg.clone();
    blocking(move || {
        std::thread::scope(|s| {
            for (i, shape) in SHAPES.iter().enumerate() {
                let server = &server;
                s.spawn(move || {
                    let sql = format!("{shape};\n").repeat(runs(i) as usize);
                    server.psql_in("app", &sql).unwrap();
                });
            }
        })
    })
    .await;
    let want: Vec<u64> = (0..SHAPES.len()).map(runs).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let listed = classes(&pw).await;
        if sleeping_counts(&listed) == want {
            break listed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/api/slow-queries never listed the shapes with counts {want:?}: {listed:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        listed
            .iter()
            .take(TABLE_ROWS)
            .all(|c| c["query"].as_str().is_some_and(|q| q.contains("pg_sleep"))),
        "the sleeping shapes have the most total time: {listed:#?}"
    );

    // The table in the browser lists those classes, by id, with their counts.
    let url = format!("http://{}/", pw.addr);
    let dom = tokio::task::block_in_place(|| chromium(&url, WINDOW, None));
    let rows = top_rows(&dom, "pg").unwrap_or_else(|| panic!("no top-queries table: {dom}"));
    // Listed again after the page was drawn: the sleeping classes' counts
    // no longer change, perfwatch's own statements' do.
    let listed = classes(&pw).await;
    let wrong = table_mismatches(&rows, &listed);
    assert!(
        wrong.is_empty(),
        "{}\ntable: {rows:#?}\n/api/slow-queries: {listed:#?}",
        wrong.join("\n")
    );
    assert_eq!(rows.len(), TABLE_ROWS, "{rows:#?}");
    eprintln!("the table lists {rows:?}");
    pw.stop().await;
}

#[test]
fn the_table_check_sees_a_missing_class_a_wrong_count_and_a_stray_row() {
    let classes: Vec<Value> = (0..7)
        .map(|i| serde_json::json!({"db": "app", "fingerprint": format!("f{i}"), "count": 10 - i}))
        .collect();
    let row = |fp: &str, count: &str| TopRow {
        db: "app".into(),
        fingerprint: fp.into(),
        count: count.into(),
    };
    let right: Vec<TopRow> = (0..5)
        .map(|i| row(&format!("f{i}"), &(10 - i).to_string()))
        .collect();
    assert!(table_mismatches(&right, &classes).is_empty());
    let mut missing = right.clone();
    missing.remove(2);
    assert_eq!(table_mismatches(&missing, &classes).len(), 1);
    let mut miscounted = right.clone();
    miscounted[0].count = "11".into();
    assert_eq!(table_mismatches(&miscounted, &classes).len(), 1);
    let mut stray = right.clone();
    stray[4] = row("f5", "5");
    assert_eq!(table_mismatches(&stray, &classes).len(), 2);
    let mut other_db = right;
    other_db[1].db = "postgres".into();
    assert_eq!(table_mismatches(&other_db, &classes).len(), 2);

    // Rows are read by their data attributes and the count by its header,
    // whatever other columns stand beside it.
    let dom = r#"<article class="card up" data-target="pg"><table class="top"><caption>top</caption>
        <thead><tr><th>query</th><th>example</th><th>count</th><th>p95</th></tr></thead>
        <tbody><tr data-db="app" data-fingerprint="f0"><td>SELECT ?</td><td><details><summary>plan</summary>Seq Scan</details></td><td>10</td><td>1 s</td></tr></tbody>
        </table></article>"#;
    assert_eq!(top_rows(dom, "pg"), Some(vec![row("f0", "10")]));
    assert_eq!(top_rows(dom, "other"), None);
}

/// `mysql_info_schema_processlist_threads` of target `db` summed by state
/// (the chart's lines), at the time of the poll that read it.
fn served_threads(body: &str) -> Option<Served> {
    let t = poll_time(body, "db")?;
    let mut by_state = BTreeMap::new();
    for (name, labels, v) in Scrape::parse(body).target("db").samples {
        if name == "mysql_info_schema_processlist_threads" {
            *by_state.entry(labels["state"].clone()).or_insert(0.0) += v;
        }
    }
    Some((t, by_state))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_threads_by_state_chart_draws_what_metrics_served() {
    let db = Arc::new(blocking(|| start_db(&[])).await);
    let toml = config(
        FAST,
        &format!(
            "[[mysql]]\nname = \"db\"\ndsn = \"{}\"\nprocesslist = true\n",
            db.dsn()
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    pw.wait_up("db", 1.0, Duration::from_secs(60)).await;
    let served = record_served(pw.addr, served_threads);

    // Sessions in two states, coming and going: (start after, statement).
    // The first takes a user lock and sleeps 6 s; the second sleeps 3 s
    // from 2 s on; the third waits for the lock from 3 s on, gets it when
    // the first ends, and ends. Threads sleeping: 1, 2, then 1 again;
    // waiting for the lock: 1 from 3 s to 6 s.
    let sessions: [(u64, &str); 3] = [
        (0, "SELECT GET_LOCK('status_test', 0), SLEEP(6)"),
        (2000, "SELECT SLEEP(3)"),
        (3000, "SELECT GET_LOCK('status_test', 20)"),
    ];
    let server = db.clone();
    blocking(move || {
        std::thread::scope(|s| {
            for (after, sql) in sessions {
                let server = &server;
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(after));
                    server.sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                });
            }
        })
    })
    .await;
    // Two polls after the last session ended: the chart shows every state.
    common::wait_polls(&pw, "db", 2.0, Duration::from_secs(20)).await;

    let url = format!("http://{}/", pw.addr);
    let dom = tokio::task::block_in_place(|| chromium(&url, WINDOW, None));
    let served = served.stop().await;
    let lines = dom_lines(&dom, "db", "sessions");
    let matched = assert_lines_served("threads by state", &lines, &served, 10);
    // The workload is what the chart shows: its peaks are the sessions held.
    let peak = |state: &str| {
        lines
            .get(state)
            .unwrap_or_else(|| panic!("no {state} line among {:?}", lines.keys()))
            .iter()
            .map(|(_, v)| *v)
            .fold(f64::MIN, f64::max)
    };
    assert_eq!(peak("user_sleep"), 2.0, "{lines:?}");
    assert_eq!(peak("user_lock"), 1.0, "{lines:?}");
    eprintln!(
        "{matched} threads-by-state points matched /metrics; lines {:?}",
        lines.keys()
    );
    pw.stop().await;
}
