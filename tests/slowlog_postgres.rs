//! The slow-log collector against a real PostgreSQL 15 writing stderr, csvlog
//! and jsonlog at once (`log_min_duration_statement=0`, logging collector on):
//! exact counts per query class and exact total time in all three formats,
//! with a multi-line statement and extended-protocol executions (parse and
//! bind log their own durations; only the execute counts), and through many
//! `pg_rotate_logfile()` rotations.
//!
//! perfwatch is pointed at the log *directory*: it follows the file that
//! `current_logfiles` names for each format. What the server wrote is read
//! independently here from its jsonlog files with serde_json.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{FASTEST, Perfwatch, config, polls, slowlog_rotations, value};
use perfwatch_slowlog::fingerprint::{fingerprint, fingerprint_id};
use perfwatch_testbench::PostgresServer;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const PREFIX: &str = "%m [%p] %q%u@%d ";

/// The three targets: (name, format, file extension the server uses).
const TARGETS: [(&str, &str, &str); 3] = [
    ("pg-stderr", "postgres", "log"),
    ("pg-csv", "postgres-csv", "csv"),
    ("pg-json", "postgres-json", "json"),
];

/// The workload's query shapes: (name, a representative statement).
const SHAPES: [(&str, &str); 4] = [
    ("point", "SELECT * FROM trip WHERE driver_id = 1"),
    (
        "multiline",
        "SELECT driver_id, count(*) AS \"n\"\nFROM trip\nWHERE score > 1\n  AND note <> 'a\nb'\nGROUP BY driver_id",
    ),
    ("update", "UPDATE trip SET score = 1 WHERE id = 1"),
    ("prepared", "SELECT id, score FROM trip WHERE id = $1"),
];

/// Which shape a logged statement is (by its text), if any.
fn shape_of(text: &str) -> Option<&'static str> {
    if text.starts_with("SELECT * FROM trip WHERE driver_id = ") {
        Some("point")
    } else if text.starts_with("SELECT driver_id, count(*) AS \"n\"\nFROM trip\nWHERE score > ") {
        Some("multiline")
    } else if text.starts_with("UPDATE trip SET score = ") {
        Some("update")
    } else if text == "SELECT id, score FROM trip WHERE id = $1" {
        Some("prepared")
    } else {
        None
    }
}

fn start_pg() -> PostgresServer {
    PostgresServer::start(&[
        ("log_min_duration_statement", "0"),
        ("logging_collector", "on"),
        ("log_destination", "stderr,csvlog,jsonlog"),
        ("log_line_prefix", PREFIX),
        ("log_directory", "log"),
        ("log_filename", "postgresql-%Y%m%d-%H%M%S.log"),
        ("log_rotation_age", "0"),
        ("log_rotation_size", "0"),
        ("lc_messages", "C"),
    ])
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn connect(pg: &PostgresServer) -> PgConnection {
    PgConnection::connect(&pg.dsn()).await.unwrap()
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn setup(conn: &mut PgConnection) {
    exec(
        conn,
        "CREATE TABLE trip (id int PRIMARY KEY, driver_id int, score int, note text)",
    )
    .await;
    exec(
        conn,
        "INSERT INTO trip SELECT i, i % 20, i % 7, 'n' || i FROM generate_series(1, 200) i",
    )
    .await;
}

/// `n` rounds of the shapes, each statement on its own (simple protocol,
/// one message each) except `prepared` (extended protocol: parse, bind,
/// execute; named and cached for most rounds, unnamed for every third).
async fn workload(conn: &mut PgConnection, n: usize) {
    for i in 0..n {
        exec(conn, &format!("SELECT * FROM trip WHERE driver_id = {i}")).await;
        exec(
            conn,
            &format!(
                "SELECT driver_id, count(*) AS \"n\"\nFROM trip\nWHERE score > {}\n  AND note <> 'a\nb'\nGROUP BY driver_id",
                i % 7
            ),
        )
        .await;
        if i % 2 == 0 {
            exec(
                conn,
                &format!("UPDATE trip SET score = {} WHERE id = {}", i % 5, i + 1),
            )
            .await;
        }
        let row: Option<(i32, i32)> = sqlx::query_as("SELECT id, score FROM trip WHERE id = $1")
            .bind(i as i32 + 1)
            .persistent(i % 3 != 0)
            .fetch_optional(&mut *conn)
            .await
            .unwrap();
        assert!(row.is_some());
    }
}

/// Executions the server logged: count and total seconds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Logged {
    count: usize,
    secs: f64,
}

/// What the server wrote, from all its jsonlog files: executions per shape
/// (`None`: other statements) — every `duration:` LOG message except the
/// extended protocol's parse and bind steps.
fn logged(dir: &Path) -> BTreeMap<Option<&'static str>, Logged> {
    let mut out: BTreeMap<Option<&'static str>, Logged> = BTreeMap::new();
    for file in files(dir, "json") {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            if v["error_severity"] != "LOG" {
                continue;
            }
            let Some(rest) = v["message"]
                .as_str()
                .and_then(|m| m.strip_prefix("duration: "))
            else {
                continue;
            };
            let (ms, rest) = rest.split_once(" ms").unwrap();
            let ms: f64 = ms.parse().unwrap();
            let (kind, text) = rest
                .strip_prefix("  ")
                .and_then(|r| r.split_once(": "))
                .unwrap_or_else(|| panic!("unexpected duration message {line}"));
            if kind.starts_with("parse ") || kind.starts_with("bind ") {
                continue;
            }
            let e = out.entry(shape_of(text)).or_default();
            e.count += 1;
            e.secs += ms / 1000.0;
        }
    }
    out
}

/// The log files with extension `ext`, oldest first.
/// Asserts that every target followed `rotations` rotations of its log.
#[track_caller]
fn assert_every_target_followed(body: &str, rotations: usize) {
    for (target, _, _) in TARGETS {
        assert_eq!(
            slowlog_rotations(body, target),
            Some(rotations as f64),
            "{target}: every file followed"
        );
    }
}

fn files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// Runs a unique marker statement and waits until the logging collector has
/// written it to every format's current file (so everything the workload
/// connection ran before it is on disk).
async fn sync_logs(pg: &PostgresServer, conn: &mut PgConnection, tag: &str) {
    let marker = format!("SELECT 'sync {tag}'");
    exec(conn, &marker).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let all = TARGETS.iter().all(|(_, _, ext)| {
            files(pg.log_dir(), ext).iter().any(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .contains(&format!("sync {tag}"))
            })
        });
        if all {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never logged {marker}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A config with one `[[slowlog]]` target per log format of `pg`, polled
/// every 100 ms.
fn slowlog_config(pg: &PostgresServer) -> String {
    let mut toml = String::new();
    for (name, format, _) in TARGETS {
        toml.push_str(&format!(
            "[[slowlog]]\nname = \"{name}\"\nformat = \"{format}\"\npath = \"{}\"\nstart_at = \"beginning\"\nidle_flush = \"300ms\"\n",
            pg.log_dir().display()
        ));
        if format == "postgres" {
            toml.push_str(&format!("log_line_prefix = \"{PREFIX}\"\n"));
        }
    }
    config(FASTEST, &toml)
}

/// Sum of a family's samples of one target.
fn target_total(body: &str, name: &str, target: &str) -> f64 {
    let label = format!("target=\"{target}\"");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(&label))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Waits until every target has counted exactly `n` events.
/// A server with [`setup`] done, and the connection that did it.
async fn start_pg_set_up() -> (PostgresServer, PgConnection) {
    let pg = start_pg();
    let mut conn = connect(&pg).await;
    setup(&mut conn).await;
    (pg, conn)
}

/// A while later the scrape still matches `logged`: nothing counted twice
/// (the stderr parser's held message, the idle flush).
async fn assert_still_matches(pw: &Perfwatch, logged: &BTreeMap<Option<&'static str>, Logged>) {
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_matches(&pw.scrape().await, logged);
}

/// Waits until every target counted all `logged` events, checks them
/// against the log and returns that scrape.
async fn wait_logged(pw: &Perfwatch, logged: &BTreeMap<Option<&'static str>, Logged>) -> String {
    let n: usize = logged.values().map(|l| l.count).sum();
    let body = wait_events(pw, n).await;
    assert_matches(&body, logged);
    body
}

async fn wait_events(pw: &Perfwatch, n: usize) -> String {
    pw.wait_for(
        Duration::from_secs(20),
        &format!("{n} events in each format"),
        |b| {
            TARGETS
                .iter()
                .all(|(t, _, _)| target_total(b, "perfwatch_slow_queries_total", t) == n as f64)
                .then(|| b.to_owned())
        },
    )
    .await
}

/// perfwatch's numbers equal the server's, per shape and in total, for each
/// format.
fn assert_matches(body: &str, logged: &BTreeMap<Option<&'static str>, Logged>) {
    let all = Logged {
        count: logged.values().map(|l| l.count).sum(),
        secs: logged.values().map(|l| l.secs).sum(),
    };
    for (target, _, _) in TARGETS {
        for (shape, query) in SHAPES {
            let want = logged.get(&Some(shape)).copied().unwrap_or_default();
            assert!(want.count > 0, "the server logged no {shape}");
            let id = fingerprint_id(&fingerprint(query));
            let l = [
                ("target", target),
                ("fingerprint", id.as_str()),
                ("db", "postgres"),
            ];
            let count = value(body, "perfwatch_slow_query_duration_seconds_count", &l);
            let sum = value(body, "perfwatch_slow_query_duration_seconds_sum", &l).unwrap_or(-1.0);
            assert_eq!(count, Some(want.count as f64), "{target}: {shape} count");
            assert!(
                (sum - want.secs).abs() < 1e-6,
                "{target}: {shape} total time {sum} vs logged {}",
                want.secs
            );
        }
        assert_eq!(
            target_total(body, "perfwatch_slow_queries_total", target),
            all.count as f64,
            "{target}: all events"
        );
        let sum = target_total(body, "perfwatch_slow_query_duration_seconds_sum", target);
        assert!(
            (sum - all.secs).abs() < 1e-6,
            "{target}: total time {sum} vs logged {}",
            all.secs
        );
    }
}

// Multi-threaded: the workloads below block, perfwatch must keep polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_total_time_match_what_postgres_wrote_in_all_formats() {
    let (pg, mut conn) = start_pg_set_up().await;
    let pw = Perfwatch::start(&slowlog_config(&pg)).await;
    workload(&mut conn, 12).await;
    sync_logs(&pg, &mut conn, "end").await;
    let logged = logged(pg.log_dir());
    assert_eq!(logged[&Some("point")].count, 12);
    assert_eq!(logged[&Some("multiline")].count, 12);
    assert_eq!(logged[&Some("update")].count, 6);
    assert_eq!(
        logged[&Some("prepared")].count,
        12,
        "one execution per prepared query, parse and bind not counted"
    );
    // The extended protocol was really used: its parse and bind steps were
    // logged with durations of their own (and are not counted above).
    let json: String = files(pg.log_dir(), "json")
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(json.contains(" ms  parse sqlx_s_") && json.contains(" ms  parse <unnamed>: "));
    assert_eq!(
        json.matches(" ms  bind ").count(),
        12,
        "one bind per execution"
    );
    wait_logged(&pw, &logged).await;
    // Nothing counted twice later (the stderr parser's held message, the
    // idle flush).
    assert_still_matches(&pw, &logged).await;
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_lose_and_duplicate_nothing_in_all_formats() {
    let (pg, mut conn) = start_pg_set_up().await;
    let pw = Perfwatch::start(&slowlog_config(&pg)).await;
    const ROUNDS: usize = 22;
    // The first rotation must get a file name of its own (a new second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for round in 0..ROUNDS {
        workload(&mut conn, 2).await;
        exec(&mut conn, "SELECT pg_rotate_logfile()").await;
        // Some statements right after the rotation, while perfwatch may
        // still be on the old file (it drains that one first).
        if round % 2 == 0 {
            workload(&mut conn, 1).await;
        }
        // New file names need a new second (log_filename has %S), and a
        // tailer can only follow rotations it gets to see: one per poll.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    workload(&mut conn, 3).await;
    sync_logs(&pg, &mut conn, "end").await;
    let rotations = files(pg.log_dir(), "json").len() - 1;
    assert!(rotations >= 20, "only {rotations} new files");
    for (_, _, ext) in TARGETS {
        assert_eq!(
            files(pg.log_dir(), ext).len(),
            rotations + 1,
            "as many {ext} files as json files"
        );
    }
    let logged = logged(pg.log_dir());
    assert_eq!(logged[&Some("point")].count, 2 * ROUNDS + ROUNDS / 2 + 3);
    let body = wait_logged(&pw, &logged).await;
    assert_every_target_followed(&body, rotations);
    assert_still_matches(&pw, &logged).await;
    pw.stop().await;
}

/// Several `pg_rotate_logfile()` between two polls (5 s interval, no
/// inotify wake): the files created and superseded in between are read in
/// order before the current one, so nothing is lost or counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_rotations_between_two_polls_lose_nothing_in_all_formats() {
    let (pg, mut conn) = start_pg_set_up().await;
    let toml = slowlog_config(&pg)
        .replace("interval = \"100ms\"", "interval = \"5s\"")
        .replace("timeout = \"90ms\"", "timeout = \"4s\"")
        .replace("[[slowlog]]\n", "[[slowlog]]\nwatch = false\n");
    let pw = Perfwatch::start(&toml).await;
    let all_polls = |b: &str| -> Vec<f64> { TARGETS.iter().map(|(t, _, _)| polls(b, t)).collect() };
    let before = pw
        .wait_for(Duration::from_secs(5), "the first polls", |b| {
            let p = all_polls(b);
            p.iter().all(|&n| n >= 1.0).then_some(p)
        })
        .await;
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        // New file names need a new second (log_filename has %S).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // A known number of statements in each file: one round of the
        // workload, twice in every third file.
        workload(&mut conn, 1 + usize::from(round % 3 == 0)).await;
        exec(&mut conn, "SELECT pg_rotate_logfile()").await;
    }
    let after = all_polls(&pw.scrape().await);
    for (b, a) in before.iter().zip(&after) {
        // The point of the test: rotations outnumber the polls in between.
        assert!(
            a - b < ROUNDS as f64 / 2.0,
            "{} polls during {ROUNDS} rotations",
            a - b
        );
    }
    workload(&mut conn, 2).await;
    sync_logs(&pg, &mut conn, "end").await;
    let rotations = files(pg.log_dir(), "json").len() - 1;
    assert_eq!(rotations, ROUNDS, "one new file per rotation");
    let logged = logged(pg.log_dir());
    assert_eq!(
        logged[&Some("point")].count,
        ROUNDS + ROUNDS.div_ceil(3) + 2
    );
    let body = wait_logged(&pw, &logged).await;
    assert_every_target_followed(&body, rotations);
    for (target, _, _) in TARGETS {
        assert_eq!(
            value(
                &body,
                "perfwatch_slowlog_skipped_files_total",
                &[("target", target)]
            ),
            Some(0.0),
            "{target}"
        );
        assert_eq!(
            value(
                &body,
                "perfwatch_slowlog_watch_mode",
                &[("target", target), ("mode", "poll")]
            ),
            Some(1.0),
            "{target}"
        );
    }
    // A later poll counts nothing twice.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_matches(&pw.scrape().await, &logged);
    pw.stop().await;
}
