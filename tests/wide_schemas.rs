//! Wide schemas: 5,000 tables in PostgreSQL and in MariaDB against the
//! `max_tables`/`max_indexes` caps. Every table-level family must stay at
//! cap + `other`, `other` must be exactly the rest (checked against the
//! server's own totals), the poll must succeed, and promtool must accept the
//! scrape.

mod common;

use std::time::{Duration, Instant};

use common::{Perfwatch, assert_value, blocking, promtool_check_metrics, value};
use perfwatch_testbench::{MariaDbServer, PostgresServer};

/// These tests are CPU-heavy (thousands of rows per poll): one at a time,
/// so one's load does not push the other past its timeouts.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cfg(interval_ms: u64, timeout_ms: u64, body: &str) -> String {
    format!("[global]\ninterval = \"{interval_ms}ms\"\ntimeout = \"{timeout_ms}ms\"\n{body}")
}

/// Every sample line of `family` (exact name, with labels) for `target`.
fn series<'a>(body: &'a str, family: &str, target: &str) -> Vec<&'a str> {
    let prefix = format!("{family}{{");
    let t = format!("target=\"{target}\"");
    body.lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(&t))
        .collect()
}

fn sum(lines: &[&str]) -> f64 {
    lines
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

fn with_label<'a>(lines: &[&'a str], label: &str) -> Vec<&'a str> {
    lines
        .iter()
        .copied()
        .filter(|l| l.contains(label))
        .collect()
}

const TABLES: usize = 5000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_5000_tables_stay_within_max_tables_and_max_indexes() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let pg = blocking(|| {
        let pg = PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
        pg.create_database("app").unwrap();
        // One psql call; a commit every 500 tables keeps the lock table small.
        pg.psql_in(
            "app",
            &format!(
                "DO $$ BEGIN FOR i IN 1..{TABLES} LOOP \
                 EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v int)', i); \
                 IF i % 500 = 0 THEN COMMIT; END IF; END LOOP; END $$;"
            ),
        )
        .unwrap();
        pg.psql_in("app", &known_reads(Server::Postgres)).unwrap();
        pg
    })
    .await;
    let number = |sql: &'static str| {
        let out = pg.psql_in("app", sql).unwrap();
        out.trim()
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("{sql}: {out:?}: {e}"))
    };
    let want_seq = number("SELECT sum(seq_scan) FROM pg_stat_user_tables");
    let want_idx = number("SELECT sum(idx_scan) FROM pg_stat_user_indexes");
    let want_tables = number("SELECT count(*) FROM pg_stat_user_tables");
    assert_eq!(want_tables, TABLES as f64);
    assert!(
        want_idx >= 24.0 && want_seq >= 36.0,
        "{want_idx} {want_seq}"
    );

    let (max_tables, max_indexes) = (40, 30);
    let toml = cfg(
        4000,
        3000,
        &format!(
            "[[postgres]]\nname = \"wide\"\ndsn = \"{}\"\nindex_interval = \"4s\"\nmax_tables = {max_tables}\nmax_indexes = {max_indexes}\n",
            pg.dsn_for("app")
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    // Statistics reach perfwatch on its next table read: wait until the
    // kept series plus `other` add up to the server's totals.
    let body = pw
        .wait_for(Duration::from_secs(30), "series adding up", |b| {
            (sum(&series(b, "pg_stat_user_tables_seq_scan", "wide")) == want_seq
                && sum(&series(b, "perfwatch_postgres_index_scans_total", "wide")) == want_idx)
                .then(|| b.to_owned())
        })
        .await;
    let table_families = [
        "pg_stat_user_tables_seq_scan",
        "pg_stat_user_tables_seq_tup_read",
        "pg_stat_user_tables_idx_scan",
        "pg_stat_user_tables_n_live_tup",
        "pg_stat_user_tables_n_dead_tup",
        "perfwatch_postgres_table_estimated_rows",
        "perfwatch_postgres_table_size_bytes",
    ];
    let index_families = [
        "perfwatch_postgres_index_scans_total",
        "perfwatch_postgres_index_tuples_read_total",
        "perfwatch_postgres_index_tuples_fetched_total",
        "perfwatch_postgres_index_size_bytes",
    ];
    // Each family: `max` series of their own and one `other`.
    for (families, max, other) in [
        (&table_families[..], max_tables, "relname=\"other\""),
        (&index_families[..], max_indexes, "indexrelname=\"other\""),
    ] {
        for family in families {
            let s = series(&body, family, "wide");
            assert_eq!(s.len(), max + 1, "{family}: {max} + other");
            assert_eq!(with_label(&s, other).len(), 1, "{family}");
        }
    }
    assert!(
        series(&body, "perfwatch_postgres_missing_index_candidate", "wide").len() <= max_tables
    );
    // `other` is exactly the rest: kept + other = every table's live rows.
    let want_live = number("SELECT sum(n_live_tup) FROM pg_stat_user_tables");
    assert_eq!(
        sum(&series(&body, "pg_stat_user_tables_n_live_tup", "wide")),
        want_live
    );
    let want_index_bytes =
        number("SELECT sum(pg_relation_size(indexrelid)) FROM pg_stat_user_indexes");
    assert_eq!(
        sum(&series(
            &body,
            "perfwatch_postgres_index_size_bytes",
            "wide"
        )),
        want_index_bytes
    );
    let took = value(
        &body,
        "perfwatch_poll_duration_seconds",
        &[("target", "wide")],
    )
    .unwrap();
    assert!(took < 3.0, "the poll finished within its timeout: {took}");
    assert_clean(&body, "perfwatch_postgres_part_errors_total", "part");
    pw.stop().await;
}

/// A MariaDB server with schema `app` of [`TABLES`] InnoDB tables (each a
/// primary key and one secondary index, so twice as many indexes), rows in
/// t1..t5, index reads on t1..t3 and full scans of t3..t5, and a `pw` login
/// for perfwatch.
fn mariadb_with_5000_tables() -> MariaDbServer {
    // MariaDB syncs every CREATE TABLE: on disk 5,000 take ~2 minutes
    // on a busy machine, on tmpfs a few seconds.
    let db = MariaDbServer::start_in(
        std::path::Path::new("/dev/shm"),
        &[("performance_schema", "ON")],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    db.sql("CREATE DATABASE app").unwrap();
    for chunk in 0..(TABLES / 1000) {
        let mut ddl = String::from("USE app;");
        for i in chunk * 1000 + 1..=(chunk + 1) * 1000 {
            ddl.push_str(&format!(
                "CREATE TABLE t{i} (id INT PRIMARY KEY, v INT, KEY iv (v)) ENGINE=InnoDB;"
            ));
        }
        db.sql(&ddl).unwrap();
    }
    db.sql(&format!("USE app;{}", known_reads(Server::Mariadb)))
        .unwrap();
    db.sql("CREATE USER 'pw'@'127.0.0.1'; GRANT ALL PRIVILEGES ON *.* TO 'pw'@'127.0.0.1';")
        .unwrap();
    db
}

/// The server [`known_reads`] writes its statements for.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    Postgres,
    Mariadb,
}

/// Rows in a few tables, index scans on some, sequential scans on others,
/// alike on both servers: 100 × i rows in t_i (i = 1..5), 4 × i index reads
/// of t1..t3 and 3 × i full scans of t3..t5.
fn known_reads(server: Server) -> String {
    let pg = server == Server::Postgres;
    let mut w = String::new();
    for i in 1..=5 {
        let rows = i * 100;
        w.push_str(&match server {
            Server::Postgres => {
                format!("INSERT INTO t{i} SELECT g, g FROM generate_series(1, {rows}) g;\n")
            }
            Server::Mariadb => format!("INSERT INTO t{i} SELECT seq, seq FROM seq_1_to_{rows};"),
        });
    }
    // PostgreSQL's planner would scan tables this small: index reads are forced.
    w.push_str(match server {
        Server::Postgres => "ANALYZE t1, t2, t3, t4, t5;\nSET enable_seqscan = off;\n",
        Server::Mariadb => "ANALYZE TABLE t1, t2, t3, t4, t5;",
    });
    for i in 1..=3 {
        for k in 0..(i * 4) {
            w.push_str(&match server {
                Server::Postgres => format!("SELECT v FROM t{i} WHERE id = {k};\n"),
                Server::Mariadb => format!("SELECT v FROM t{i} FORCE INDEX (iv) WHERE v = {k};"),
            });
        }
    }
    if pg {
        w.push_str("RESET enable_seqscan;\n");
    }
    for i in 3..=5 {
        for _ in 0..(i * 3) {
            w.push_str(&match server {
                Server::Postgres => format!("SELECT count(*) FROM t{i};\n"),
                Server::Mariadb => {
                    format!("SELECT count(*) FROM t{i} IGNORE INDEX (iv) WHERE v + 0 > 0;")
                }
            });
        }
    }
    if pg {
        // Pending statistics are published at most once a second: now.
        w.push_str("SELECT pg_stat_force_next_flush();\n");
    }
    w
}

fn mariadb_wide_target(db: &MariaDbServer, extra: &str) -> String {
    format!(
        "[[mysql]]\nname = \"wide\"\ndsn = \"mysql://pw@127.0.0.1:{}/app\"\n{extra}",
        db.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_5000_tables_stay_within_max_tables_and_max_indexes() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let db = blocking(mariadb_with_5000_tables).await;
    let number = |sql: &str| {
        let out = db.sql(sql).unwrap();
        out.trim()
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("{sql}: {out:?}: {e}"))
    };
    let tables =
        number("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'");
    assert_eq!(tables, TABLES as f64);

    let (max_tables, max_indexes) = (40, 30);
    // A generous timeout: this test is about the caps and the sums; the
    // test below holds a tight timeout with the same schema.
    let toml = cfg(
        60000,
        50000,
        &mariadb_wide_target(
            &db,
            &format!("max_tables = {max_tables}\nmax_indexes = {max_indexes}\n"),
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    let fetches = |b: &str| {
        sum(&with_label(
            &series(b, "mysql_perf_schema_index_io_waits_total", "wide"),
            "operation=\"fetch\"",
        ))
    };
    let want_fetch = number(
        "SELECT SUM(COUNT_FETCH) FROM performance_schema.table_io_waits_summary_by_index_usage WHERE OBJECT_SCHEMA = 'app'",
    );
    assert!(want_fetch > 0.0);
    let body = pw
        .wait_for(Duration::from_secs(60), "table statistics", |b| {
            (fetches(b) == want_fetch
                && !series(b, "perfwatch_mysql_index_size_bytes", "wide").is_empty())
            .then(|| b.to_owned())
        })
        .await;
    // Per family: the cap plus one `other` (one schema).
    let rows = series(&body, "mysql_info_schema_table_rows", "wide");
    assert_eq!(rows.len(), max_tables + 1, "table rows");
    assert_eq!(with_label(&rows, "table=\"other\"").len(), 1);
    let size = series(&body, "mysql_info_schema_table_size", "wide");
    assert_eq!(size.len(), 3 * (max_tables + 1), "3 components per table");
    let index_size = series(&body, "perfwatch_mysql_index_size_bytes", "wide");
    assert_eq!(index_size.len(), max_indexes + 1, "index sizes");
    assert_eq!(with_label(&index_size, "index=\"other\"").len(), 1);
    let io = series(&body, "mysql_perf_schema_index_io_waits_total", "wide");
    assert!(
        io.len() <= 4 * (max_indexes + 1),
        "{} index I/O series",
        io.len()
    );
    assert!(
        series(&body, "perfwatch_mysql_table_rows_read_total", "wide").len()
            <= 2 * (max_tables + 1)
    );
    for family in [
        "perfwatch_mysql_index_unused",
        "perfwatch_mysql_table_full_scan_ratio",
        "perfwatch_mysql_missing_index_candidate",
    ] {
        let n = series(&body, family, "wide").len();
        assert!(n <= max_tables.max(max_indexes), "{family}: {n} series");
    }
    // `other` is exactly the rest: kept + other = the server's totals.
    for component in ["data_length", "index_length"] {
        let want = number(&format!(
            "SELECT SUM({}) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'",
            component.to_uppercase()
        ));
        let got = sum(&with_label(&size, &format!("component=\"{component}\"")));
        assert_eq!(got, want, "{component}");
    }
    let aggregated = Some((TABLES - max_tables) as f64);
    let wide = [("target", "wide")];
    assert_value(
        &body,
        "perfwatch_mysql_tables_aggregated",
        &wide,
        aggregated,
    );
    assert_clean(&body, "perfwatch_mysql_section_errors_total", "section");
    pw.stop().await;
}

/// Target `wide` is up, no poll and no `what` failed (the samples of
/// `perfwatch_poll_errors_total` and `part_errors` add up to 0), and the
/// scrape passes promtool.
fn assert_clean(body: &str, part_errors: &str, what: &str) {
    let l = [("target", "wide")];
    assert_eq!(value(body, "perfwatch_target_up", &l), Some(1.0), "{body}");
    let errors: f64 = body
        .lines()
        .filter(|l| {
            (l.starts_with("perfwatch_poll_errors_total{")
                || l.starts_with(&format!("{part_errors}{{")))
                && l.contains("target=\"wide\"")
        })
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(errors, 0.0, "no poll or {what} failed:\n{body}");
    promtool_check_metrics(body);
}

/// A raw `GET /metrics` from outside the runtime; how long the full reply took.
fn timed_raw_scrape(addr: std::net::SocketAddr) -> Duration {
    use std::io::{Read, Write};
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 200"), "scrape failed");
    start.elapsed()
}

/// perfwatch's default runtime has one worker thread, like this test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn mariadb_5000_tables_index_pass_keeps_its_timeout_and_never_stalls_metrics() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let db = blocking(mariadb_with_5000_tables).await;
    let toml = cfg(
        4000,
        3000,
        &mariadb_wide_target(
            &db,
            "index_interval = \"4s\"\nmax_tables = 40\nmax_indexes = 30\n",
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    // Scrape from a plain thread for three index passes.
    let addr = pw.addr;
    let scraper = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(13);
        let mut worst = Duration::ZERO;
        while Instant::now() < until {
            worst = worst.max(timed_raw_scrape(addr));
            std::thread::sleep(Duration::from_millis(50));
        }
        worst
    });
    let mut longest_poll = 0.0f64;
    let until = Instant::now() + Duration::from_secs(13);
    while Instant::now() < until {
        let body = pw.scrape().await;
        if let Some(t) = value(
            &body,
            "perfwatch_poll_duration_seconds",
            &[("target", "wide")],
        ) {
            longest_poll = longest_poll.max(t);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let worst = blocking(move || scraper.join().unwrap()).await;
    let body = pw.scrape().await;
    eprintln!("longest poll {longest_poll} s, slowest scrape {worst:?}");
    assert!(
        worst < Duration::from_millis(500),
        "/metrics waited {worst:?} on a target"
    );
    assert!(
        longest_poll <= 3.2,
        "a poll took {longest_poll} s with a 3 s timeout (+0.2 s scheduling slack)"
    );
    assert!(
        series(&body, "perfwatch_mysql_index_size_bytes", "wide").len() == 31,
        "an index pass completed:\n{body}"
    );
    pw.stop().await;
}
