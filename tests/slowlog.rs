//! The slow-log collector against a real MariaDB writing its slow log
//! (`long_query_time=0`): exact counts per query class and exact total time,
//! through rotation (rename + FLUSH SLOW LOGS; 210 mixed rotations under
//! write load) and a perfwatch restart.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    FASTEST, Perfwatch, config, poll_errors, promtool_check_metrics, slowlog_rotations, value,
};
use perfwatch_slowlog::fingerprint::{fingerprint, fingerprint_id};
use perfwatch_testbench::MariaDbServer;

/// Every `# Query_time:` value in a log file (the test's own reading of what
/// the server wrote).
fn logged_times(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("# Query_time: "))
        .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

fn start_mariadb(dir: &Path) -> (MariaDbServer, std::path::PathBuf) {
    let db = MariaDbServer::start(&[("slow_query_log", "1"), ("long_query_time", "0")])
        .unwrap_or_else(|e| panic!("{e}"));
    let log = dir.join("slow.log");
    db.sql(&format!(
        "SET GLOBAL slow_query_log_file = '{}'",
        log.display()
    ))
    .unwrap();
    db.sql("CREATE DATABASE drive_safe_db").unwrap();
    db.sql("CREATE TABLE drive_safe_db.trip (id INT PRIMARY KEY, driver_id INT, score INT)")
        .unwrap();
    let rows: Vec<String> = (1..=200)
        .map(|i| format!("({i}, {}, {})", i % 20, i % 7))
        .collect();
    db.sql(&format!(
        "INSERT INTO drive_safe_db.trip VALUES {}",
        rows.join(",")
    ))
    .unwrap();
    (db, log)
}

/// Runs `n` statements of each shape in one client session.
fn workload(db: &MariaDbServer, n: usize) {
    let mut sql = String::from("USE drive_safe_db;\n");
    for i in 0..n {
        sql.push_str(&format!("SELECT * FROM trip WHERE driver_id = {i};\n"));
        sql.push_str(&format!(
            "SELECT COUNT(*) FROM trip WHERE driver_id IN ({i}, {}, 3) AND score > {i};\n",
            i + 1
        ));
        if i % 2 == 0 {
            sql.push_str(&format!(
                "UPDATE trip SET score = {} WHERE id = {};\n",
                i % 5,
                i + 1
            ));
        }
    }
    db.sql(&sql).unwrap();
}

fn histogram_count(body: &str, query: &str) -> Option<f64> {
    let id = fingerprint_id(&fingerprint(query));
    value(
        body,
        "perfwatch_slow_query_duration_seconds_count",
        &[("fingerprint", &id), ("db", "drive_safe_db")],
    )
}

/// Sum of a family's samples over all label sets.
fn total(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// A config with one `[[slowlog]]` target on `log`, polled every 100 ms.
fn slowlog_config(log: &Path, state: &Path) -> String {
    config(
        FASTEST,
        &format!(
            "[[slowlog]]\nname = \"mariadb\"\nformat = \"mysql\"\npath = \"{}\"\nstart_at = \"beginning\"\nstate_file = \"{}\"\nidle_flush = \"400ms\"\n",
            log.display(),
            state.display()
        ),
    )
}

/// Waits until perfwatch has counted exactly `n` events.
async fn wait_events(pw: &Perfwatch, n: usize) -> String {
    wait_events_within(pw, n, Duration::from_secs(15)).await
}

/// Waits at most `timeout` until perfwatch has counted exactly `n` events.
async fn wait_events_within(pw: &Perfwatch, n: usize, timeout: Duration) -> String {
    pw.wait_for(timeout, &format!("{n} events"), |b| {
        (total(b, "perfwatch_slow_queries_total") == n as f64).then(|| b.to_owned())
    })
    .await
}

// Multi-threaded: the workloads below block, perfwatch must keep polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_total_time_match_what_mariadb_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = start_mariadb(dir.path());
    let pw = Perfwatch::start(&slowlog_config(&log, &dir.path().join("state.json"))).await;
    workload(&db, 9);
    let expected = logged_times(&log);
    let body = wait_events(&pw, expected.len()).await;
    assert_eq!(
        histogram_count(&body, "SELECT * FROM trip WHERE driver_id = 1"),
        Some(9.0)
    );
    assert_eq!(
        histogram_count(
            &body,
            "SELECT COUNT(*) FROM trip WHERE driver_id IN (1, 2, 3) AND score > 1"
        ),
        Some(9.0)
    );
    assert_eq!(
        histogram_count(&body, "UPDATE trip SET score = 1 WHERE id = 1"),
        Some(5.0)
    );
    let sum = total(&body, "perfwatch_slow_query_duration_seconds_sum");
    let want: f64 = expected.iter().sum();
    assert!(
        (sum - want).abs() < 1e-6,
        "total time {sum} vs logged {want}"
    );
    // The JSON API lists the same classes.
    let (status, json) = pw.get("/api/slow-queries?target=mariadb").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let select = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["query"] == "select * from trip where driver_id = ?")
        .unwrap();
    assert_eq!(select["count"], 9);
    assert_eq!(select["db"], "drive_safe_db");
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_restart_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = start_mariadb(dir.path());
    let state = dir.path().join("state.json");
    let pw = Perfwatch::start(&slowlog_config(&log, &state)).await;
    // The file must be open before the first rename, or there is nothing to drain.
    pw.wait_up("mariadb", 1.0, Duration::from_secs(5)).await;
    let mut rotated = Vec::new();
    for round in 0..20 {
        workload(&db, 2);
        // rename + FLUSH SLOW LOGS: the server reopens a new file at the
        // path; events written between the two go to the renamed file.
        let old = dir.path().join(format!("slow.log.{round}"));
        std::fs::rename(&log, &old).unwrap();
        rotated.push(old);
        workload(&db, 1);
        db.sql("FLUSH SLOW LOGS").unwrap();
        // A tailer can only follow rotations it gets to see (as logrotate's
        // delaycompress assumes): wait until this one was followed.
        let want = (round + 1) as f64;
        pw.wait_for(Duration::from_secs(10), "rotation followed", |b| {
            (slowlog_rotations(b, "mariadb") == Some(want)).then_some(())
        })
        .await;
    }
    workload(&db, 3);
    let all: usize =
        rotated.iter().map(|p| logged_times(p).len()).sum::<usize>() + logged_times(&log).len();
    let body = wait_events(&pw, all).await;
    assert_eq!(slowlog_rotations(&body, "mariadb"), Some(20.0));
    let first_run = total(&body, "perfwatch_slow_queries_total") as usize;
    pw.stop().await;

    // Restart: events written while perfwatch was down are counted once.
    workload(&db, 6);
    let pw = Perfwatch::start(&slowlog_config(&log, &state)).await;
    let now_in_log =
        rotated.iter().map(|p| logged_times(p).len()).sum::<usize>() + logged_times(&log).len();
    let body = wait_events(&pw, now_in_log - first_run).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let body2 = pw.scrape().await;
    assert_eq!(
        total(&body2, "perfwatch_slow_queries_total"),
        total(&body, "perfwatch_slow_queries_total"),
        "no late duplicates"
    );
    pw.stop().await;
}

#[tokio::test]
async fn missing_log_is_an_error_metric_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("later.log");
    let pw = Perfwatch::start(&slowlog_config(&log, &dir.path().join("s.json"))).await;
    let body = pw
        .wait_for(Duration::from_secs(5), "io error", |b| {
            (poll_errors(b, "mariadb", "io") >= Some(1.0)).then(|| b.to_owned())
        })
        .await;
    assert_eq!(
        value(&body, "perfwatch_target_up", &[("target", "mariadb")]),
        Some(0.0)
    );
    std::fs::write(
        &log,
        "# Query_time: 1.5  Lock_time: 0 Rows_sent: 0  Rows_examined: 0\nselect 1;\n",
    )
    .unwrap();
    wait_events(&pw, 1).await;
    pw.stop().await;
}

/// `n` slow-log events (`select 0;` … ) in the MySQL format.
fn events(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| {
            format!("# Query_time: 0.5  Lock_time: 0 Rows_sent: 0  Rows_examined: 0\nselect {i};\n")
        })
        .collect()
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// Well under the 30 s interval of the inotify test.
const SOON: Duration = Duration::from_secs(6);

/// A config with a long interval: only a wake gets events counted quickly.
fn watch_config(log: &Path, interval: &str, watch: Option<bool>) -> String {
    let watch = watch.map(|w| format!("watch = {w}\n")).unwrap_or_default();
    format!(
        "[global]\ninterval = \"{interval}\"\ntimeout = \"900ms\"\n[[slowlog]]\nname = \"file\"\nformat = \"mysql\"\npath = \"{}\"\nstart_at = \"beginning\"\nidle_flush = \"300ms\"\n{watch}",
        log.display()
    )
}

fn watch_mode(body: &str, mode: &str) -> Option<f64> {
    value(
        body,
        "perfwatch_slowlog_watch_mode",
        &[("target", "file"), ("mode", mode)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_inotify_appended_events_are_read_long_before_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("slow.log");
    std::fs::write(&log, events(0, 1)).unwrap();
    // 30 s between interval polls: everything below happens well within
    // the first interval, so only the inotify wake can get it counted.
    let pw = Perfwatch::start(&watch_config(&log, "30s", None)).await;
    let body = wait_events_within(&pw, 1, SOON).await;
    assert_eq!(watch_mode(&body, "inotify"), Some(1.0));
    assert_eq!(watch_mode(&body, "poll"), Some(0.0));
    promtool_check_metrics(&body);
    // The last event of each batch has no next header: it is completed by
    // the idle flush, which the collector wakes the poll for too.
    append(&log, &events(1, 3));
    wait_events_within(&pw, 4, SOON).await;
    // A rotation (rename + create) is followed on a wake as well.
    std::fs::rename(&log, dir.path().join("slow.log.1")).unwrap();
    std::fs::write(&log, events(4, 2)).unwrap();
    let body = wait_events_within(&pw, 6, SOON).await;
    assert_eq!(slowlog_rotations(&body, "file"), Some(1.0));
    pw.stop().await;
}

#[tokio::test]
async fn with_watch_off_events_are_counted_on_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("slow.log");
    std::fs::write(&log, events(0, 2)).unwrap();
    let pw = Perfwatch::start(&watch_config(&log, "1s", Some(false))).await;
    let body = wait_events(&pw, 2).await;
    assert_eq!(watch_mode(&body, "poll"), Some(1.0));
    assert_eq!(watch_mode(&body, "inotify"), Some(0.0));
    append(&log, &events(2, 3));
    wait_events(&pw, 5).await;
    pw.stop().await;
}

#[tokio::test]
async fn a_log_directory_missing_at_start_is_polled_then_watched() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("later").join("slow.log");
    let pw = Perfwatch::start(&watch_config(&log, "1s", None)).await;
    pw.wait_for(Duration::from_secs(5), "io error", |b| {
        (poll_errors(b, "file", "io") >= Some(1.0)).then_some(())
    })
    .await;
    std::fs::create_dir(log.parent().unwrap()).unwrap();
    std::fs::write(&log, events(0, 2)).unwrap();
    let body = wait_events(&pw, 2).await;
    assert_eq!(watch_mode(&body, "inotify"), Some(1.0));
    pw.stop().await;
}

/// Every `# Query_time:` line from an open handle (a deleted file's only
/// remaining name), read from the start.
fn logged_in_handle(file: &mut std::fs::File) -> usize {
    use std::io::{Read, Seek};
    let mut text = String::new();
    file.seek(std::io::SeekFrom::Start(0)).unwrap();
    file.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| l.starts_with("# Query_time: "))
        .count()
}

/// 210 rotations of three kinds while a client keeps writing: rename + FLUSH
/// SLOW LOGS, delete + FLUSH SLOW LOGS (the server recreates the file), and
/// copytruncate. perfwatch's event count equals, exactly, the events in every
/// file the server wrote (renamed copies, deleted files read through handles
/// the test kept, and the current file).
///
/// copytruncate has an inherent window (logrotate documents it): what the
/// server writes between the copy and the truncate is in neither place, and
/// what the tailer had not read before the truncate is only in the copy,
/// which a tailer of the path never opens. So those rounds pause the writer
/// and let perfwatch catch up first, as a careful operator's
/// prerotate script would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_mixed_rotations_under_write_load_lose_and_duplicate_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::sync::Mutex;

    const ROUNDS: usize = 210;
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = start_mariadb(dir.path());
    let db = Arc::new(db);
    let pw = Perfwatch::start(&slowlog_config(&log, &dir.path().join("state.json"))).await;
    pw.wait_up("mariadb", 1.0, Duration::from_secs(5)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(Mutex::new(()));
    let writer = {
        let (db, stop, pause) = (db.clone(), stop.clone(), pause.clone());
        std::thread::spawn(move || {
            let mut batches = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let _writing = pause.blocking_lock();
                workload(&db, 1);
                batches += 1;
            }
            batches
        })
    };

    let mut copies = Vec::new();
    let mut deleted = Vec::new();
    let in_files = |copies: &[std::path::PathBuf], deleted: &mut [std::fs::File]| {
        copies.iter().map(|p| logged_times(p).len()).sum::<usize>()
            + deleted.iter_mut().map(logged_in_handle).sum::<usize>()
            + logged_times(&log).len()
    };
    for round in 0..ROUNDS {
        let old = dir.path().join(format!("slow.log.{round}"));
        match round % 3 {
            0 => {
                std::fs::rename(&log, &old).unwrap();
                copies.push(old);
                db.sql("FLUSH SLOW LOGS").unwrap();
            }
            1 => {
                deleted.push(std::fs::File::open(&log).unwrap());
                std::fs::remove_file(&log).unwrap();
                db.sql("FLUSH SLOW LOGS").unwrap();
            }
            _ => {
                let paused = pause.lock().await;
                // The server writes the slow-log entry around its reply:
                // give the last statement's entry time to land.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let want = in_files(&copies, &mut deleted);
                wait_events(&pw, want).await;
                std::fs::copy(&log, &old).unwrap();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&log)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                copies.push(old);
                drop(paused);
            }
        }
        // A tailer can only follow rotations it gets to see: wait for this
        // one (one rotation counted per rotation, no spurious ones).
        let want = (round + 1) as f64;
        pw.wait_for(Duration::from_secs(10), "rotation followed", |b| {
            (slowlog_rotations(b, "mariadb") == Some(want)).then_some(())
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let batches = writer.join().unwrap();
    assert!(
        batches >= ROUNDS / 3,
        "the writer ran only {batches} batches"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let all = in_files(&copies, &mut deleted);
    let body = wait_events_within(&pw, all, Duration::from_secs(30)).await;
    assert_eq!(slowlog_rotations(&body, "mariadb"), Some(ROUNDS as f64));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        total(&pw.scrape().await, "perfwatch_slow_queries_total") as usize,
        all,
        "no late duplicates"
    );
    pw.stop().await;
}

/// Runs pt-query-digest (Debian package percona-toolkit) on `log` and
/// returns its (query id as perfwatch prints it: the last 16 hex digits of
/// pt 3.x's checksum, event count) per class, and its total event count.
fn pt_query_digest(log: &Path) -> (std::collections::BTreeMap<String, u64>, u64) {
    let out = match std::process::Command::new("pt-query-digest")
        .args(["--limit", "100%", "--output", "json"])
        .arg(log)
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => panic!("pt-query-digest: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!(
            "pt-query-digest: {e} (apt-get install -y percona-toolkit, or scripts/install-test-deps.sh)"
        ),
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let classes = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let checksum = c["checksum"].as_str().unwrap();
            (
                checksum[checksum.len() - 16..].to_owned(),
                c["query_count"].as_u64().unwrap(),
            )
        })
        .collect();
    (classes, v["global"]["query_count"].as_u64().unwrap())
}

/// The slow log of the oracle test: statements far longer than
/// max_line_bytes (64 KiB), long IN lists and multi-row inserts, a latin1
/// table name (not UTF-8), `use db;`-only and `USE db;` events, and events
/// with a Query_time but no statement text.
fn oracle_log() -> Vec<u8> {
    let mut log = Vec::new();
    let mut event = |secs: f64, lines: &[&[u8]]| {
        log.extend_from_slice(
            format!("# Time: 2024-01-01T00:00:00.000000Z\n# User@Host: app[app] @ localhost []  Id: 3\n# Query_time: {secs:.6}  Lock_time: 0.000000 Rows_sent: 0  Rows_examined: 0\nSET timestamp=1704067200;\n").as_bytes(),
        );
        for l in lines {
            log.extend_from_slice(l);
            log.push(b'\n');
        }
    };
    event(0.5, &[b"select 1;"]);
    for i in 0..20 {
        let body = format!("body {i} ").repeat(10_000 + 1_000 * i);
        event(
            1.0,
            &[format!("UPDATE docs SET body='{body}' WHERE id={i};").as_bytes()],
        );
    }
    for i in 0..12 {
        let ids: Vec<String> = (0..15_000 + 500 * i).map(|n| n.to_string()).collect();
        event(
            0.25,
            &[format!(
                "SELECT * FROM t WHERE id IN ({}) AND x = {i};",
                ids.join(", ")
            )
            .as_bytes()],
        );
    }
    for i in 0..3 {
        let rows: Vec<String> = (0..8_000 + i).map(|n| format!("({n}, 'v{n}')")).collect();
        event(
            0.125,
            &[format!("INSERT INTO kv (k, v) VALUES {};", rows.join(", ")).as_bytes()],
        );
    }
    for i in 0..3 {
        event(
            0.5,
            &[format!("select * from caf\u{e9} where id = {i};").as_bytes()],
        );
        event(0.5, &[b"select * from caf\xe9 where id = 7;"]);
    }
    event(2.0, &[b"use shop;"]);
    event(2.0, &[b"USE shop;"]);
    event(3.0, &[]);
    event(3.0, &[b"use other;", b"select 2;"]);
    event(3.0, &[]);
    event(0.5, &[b"select 3;"]);
    log
}

#[test]
fn classes_counts_and_ids_match_pt_query_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.log");
    std::fs::write(&path, oracle_log()).unwrap();
    let (pt, pt_events) = pt_query_digest(&path);
    let report = perfwatch_slowlog::report::digest_file(
        &path,
        &perfwatch_slowlog::report::ReportOptions {
            format: perfwatch_slowlog::LogFormat::Mysql,
            log_line_prefix: None,
            top: 0,
            max_classes: 1000,
            max_line_bytes: 64 * 1024,
        },
    )
    .unwrap();
    let ours: std::collections::BTreeMap<String, u64> =
        report.top.iter().map(|c| (c.id.clone(), c.count)).collect();
    assert_eq!(ours, pt, "classes: {:#?}", report.top);
    assert_eq!(report.events, pt_events);
    assert_eq!(
        report.truncated_events, 0,
        "every long statement digested whole"
    );
    // The ones the issue named, by their fingerprints.
    for (fp, count) in [
        ("update docs set body=? where id=?", 20),
        ("select * from t where id in(?+) and x = ?", 12),
        ("use ?", 1),
        ("", 3),
    ] {
        let id = fingerprint_id(fp);
        assert_eq!(ours.get(&id), Some(&count), "{fp:?}");
    }
}

#[tokio::test]
async fn unrecognized_input_degrades_the_target_with_the_likely_cause() {
    // Issue 16: a PostgreSQL log read with the default log_line_prefix
    // while the server writes another: bytes read, 0 events, nothing said.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("postgresql.log");
    let line = "2024-01-01 10:00:00 UTC [42]: [1-1] user=app,db=shop,app=psql,client=[local] LOG:  duration: 1.000 ms  statement: select 1\n";
    std::fs::write(&log, line.repeat(50)).unwrap();
    let pw = Perfwatch::start(&config(
        FASTEST,
        &format!(
            "[[slowlog]]\nname = \"pg\"\nformat = \"postgres\"\npath = \"{}\"\nstart_at = \"beginning\"\n",
            log.display()
        ),
    ))
    .await;
    let t = [("target", "pg")];
    let body = pw
        .wait_for(Duration::from_secs(15), "degraded", |b| {
            (value(b, "perfwatch_slowlog_degraded", &t) == Some(1.0)).then(|| b.to_owned())
        })
        .await;
    for (name, want) in [
        ("perfwatch_slowlog_unrecognized_lines_total", 50.0),
        (
            "perfwatch_slowlog_unrecognized_bytes_total",
            line.len() as f64 * 50.0,
        ),
    ] {
        assert_eq!(value(&body, name, &t), Some(want), "{name}");
    }
    assert_eq!(total(&body, "perfwatch_slow_queries_total"), 0.0);
    promtool_check_metrics(&body);
    pw.stop().await;
}
