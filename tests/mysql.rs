//! The MySQL/MariaDB collector against real, throwaway MariaDB 10.11 servers
//! started by the harness. Every number asserted here is exact.

mod common;

use std::time::{Duration, Instant};

use common::{
    Db, Expected, FAST, Perfwatch, assert_value, assert_values, blocking, config, exec,
    poll_errors, polls, secret_file, start_db, value, wait_polls,
};
use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Connection, Row};

/// The test schema: a used index, unused ones, a redundant one, PRIMARY,
/// UNIQUE and a foreign-key index; 2000 trips, 10 drivers (the demo's
/// schema).
const SCHEMA: &str = perfwatch_testbench::workload::MARIADB_SCHEMA;

/// A server with `performance_schema` `ON` or `OFF` and [`SCHEMA`] loaded.
fn app_db(performance_schema: &str) -> Db {
    let db = start_db(&[("performance_schema", performance_schema)]);
    db.sql(SCHEMA).unwrap();
    db
}

/// Index reads on idx_start and `scans` full scans of trip (2000 rows each).
fn workload(scans: usize) -> String {
    let mut sql = String::from(
        "USE app; SELECT COUNT(*) FROM trip WHERE start_time BETWEEN 10 AND 20; SELECT COUNT(*) FROM trip WHERE start_time BETWEEN 100 AND 120;",
    );
    for _ in 0..scans {
        sql.push_str(" SELECT COUNT(*) FROM trip WHERE status + 0 = 1 AND note <> 'zzz';");
    }
    sql
}

fn mysql_target(dsn: &str, extra: &str) -> String {
    format!(
        "[[mysql]]\nname = \"db\"\ndsn = \"{dsn}\"\nindex_interval = \"1s\"\nmissing_index_min_rows = 1000\n{extra}\n"
    )
}

fn dsn(db: &Db, user: &str, schema: &str) -> String {
    format!("mysql://{user}@127.0.0.1:{}/{schema}", db.port())
}

async fn connect(db: &Db) -> MySqlConnection {
    MySqlConnection::connect(&db.dsn()).await.unwrap()
}

async fn scalar(conn: &mut MySqlConnection, sql: &str) -> i64 {
    let row = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let s: String = row.try_get_unchecked(0).unwrap();
    s.parse().unwrap()
}

/// `mysql_global_status_threads_connected` of target `db`.
fn threads_connected(body: &str) -> Option<f64> {
    value(
        body,
        "mysql_global_status_threads_connected",
        &[("target", "db")],
    )
}

/// The mysql target `db` is up and reports the server's status counters.
fn assert_up_with_status(body: &str) {
    let l = [("collector", "mysql"), ("target", "db")];
    assert_eq!(value(body, "perfwatch_target_up", &l), Some(1.0), "{body}");
    assert!(threads_connected(body).is_some());
}

/// `perfwatch_mysql_index_size_bytes` of `table`.`index`.
fn index_size(body: &str, table: &str, index: &str) -> Option<f64> {
    value(
        body,
        "perfwatch_mysql_index_size_bytes",
        &[("table", table), ("index", index)],
    )
}

fn verdict(body: &str, table: &str, index: &str) -> Option<f64> {
    value(
        body,
        "perfwatch_mysql_index_unused",
        &[("schema", "app"), ("table", table), ("index", index)],
    )
}

use common::promtool_check_metrics as promtool_check;

/// How long [`wait_polls`] waits for the polls it asks for.
const POLL_WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn performance_schema_verdicts_custom_queries_and_promtool() {
    let before_start = std::time::Instant::now();
    let (db, uptime_before) = blocking(|| {
        let db = start_db(&[("performance_schema", "ON")]);
        db.sql(SCHEMA).unwrap();
        db.sql(&workload(3)).unwrap();
        // At least 2 s of server uptime before perfwatch starts, so a stats
        // age counted from perfwatch's first poll instead of the server's
        // start is told apart below.
        let uptime = || -> f64 {
            db.sql("SHOW GLOBAL STATUS LIKE 'Uptime'")
                .unwrap()
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse()
                .unwrap()
        };
        while uptime() < 2.0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        let up = uptime();
        (db, up)
    })
    .await;
    let target = mysql_target(
        &dsn(&db, "root", "app"),
        "[[mysql.query]]\nname = \"trips_total\"\nsql = \"SELECT count(*) AS value FROM trip\"\n\
         [[mysql.query]]\nname = \"broken\"\nsql = \"SELEC oops FROM trip\"\n",
    );
    let pw = Perfwatch::start(&config(FAST, &target)).await;
    let body = pw
        .wait_for(Duration::from_secs(20), "index verdicts", |b| {
            verdict(b, "trip", "idx_note").map(|_| b.to_owned())
        })
        .await;

    // Verdicts: exactly the three never-read secondary indexes.
    assert_eq!(verdict(&body, "trip", "idx_start"), Some(0.0), "{body}");
    assert_eq!(verdict(&body, "trip", "idx_note"), Some(1.0));
    assert_eq!(verdict(&body, "trip", "idx_status"), Some(1.0));
    assert_eq!(verdict(&body, "trip", "idx_status_start"), Some(1.0));
    for (table, index) in [
        ("trip", "PRIMARY"),
        ("trip", "fk_driver"),
        ("driver", "PRIMARY"),
        ("driver", "uq_email"),
    ] {
        assert_eq!(
            verdict(&body, table, index),
            None,
            "{table}.{index} is never judged"
        );
    }
    let t = [("target", "db")];
    assert_value(&body, "perfwatch_mysql_unused_indexes", &t, Some(3.0));
    assert!(value(&body, "perfwatch_mysql_unused_index_bytes", &t).unwrap() > 0.0);
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_mysql_index_redundant", &[("table", "trip"), ("index", "idx_status"), ("covered_by", "idx_status_start")], Some(1.0)),
        ("perfwatch_mysql_redundant_indexes", &t, Some(1.0)),
    ];
    assert_values(&body, wanted);
    // Full scans: 3 × 2000 rows read without an index.
    let io = |index: &str, op: &str| {
        value(
            &body,
            "mysql_perf_schema_index_io_waits_total",
            &[
                ("schema", "app"),
                ("name", "trip"),
                ("index", index),
                ("operation", op),
            ],
        )
    };
    assert_eq!(io("NONE", "fetch"), Some(6000.0));
    assert_eq!(io("NONE", "insert"), Some(2000.0));
    assert_eq!(io("idx_note", "fetch"), Some(0.0));
    assert!(io("idx_start", "fetch").unwrap() > 0.0);
    let cand = |table: &str| {
        value(
            &body,
            "perfwatch_mysql_missing_index_candidate",
            &[("schema", "app"), ("table", table)],
        )
    };
    assert_eq!(cand("trip"), Some(1.0));
    assert_eq!(
        value(&body, "perfwatch_mysql_missing_index_candidates", &t),
        Some(1.0)
    );
    // No reset of the statistics: their age is the server's uptime (whole
    // seconds) at the last index pass, which may be a poll or two (each
    // index_interval = 1 s) older than this poll's uptime.
    let age = value(&body, "perfwatch_mysql_stats_age_seconds", &t).unwrap();
    let uptime = value(&body, "mysql_global_status_uptime", &t).unwrap();
    assert_eq!(age.fract(), 0.0, "{age}");
    assert!(
        age <= uptime && age >= uptime - 3.0,
        "stats age {age} s, server uptime {uptime} s"
    );
    assert!(
        age >= uptime_before,
        "stats age {age} s, but the server was up {uptime_before} s before perfwatch started"
    );
    let since_start = before_start.elapsed().as_secs_f64();
    assert!(
        age <= since_start.ceil(),
        "stats age {age} s but the server started at most {since_start:.1} s ago"
    );
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_mysql_index_stats_source_info", &[("source", "performance_schema")], Some(1.0)),
        ("perfwatch_collector_degraded", &[("target", "db")], None),
    ];
    assert_values(&body, wanted);
    // Table growth.
    assert!(
        value(
            &body,
            "mysql_info_schema_table_size",
            &[
                ("schema", "app"),
                ("table", "trip"),
                ("component", "data_length")
            ]
        )
        .unwrap()
            > 0.0
    );
    assert!(index_size(&body, "trip", "idx_note").unwrap() > 0.0);

    // Custom queries: the good one is exact, the broken one is counted and
    // does not take the target down.
    let body = pw
        .wait_for(Duration::from_secs(10), "custom query results", |b| {
            (value(
                b,
                "perfwatch_custom_query_errors_total",
                &[("query", "broken")],
            )? >= 2.0)
                .then(|| b.to_owned())
        })
        .await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_custom_query_value", &[("query", "trips_total")], Some(2000.0)),
        ("perfwatch_custom_query_errors_total", &[("query", "trips_total")], Some(0.0)),
        ("perfwatch_target_up", &[("collector", "mysql"), ("target", "db")], Some(1.0)),
    ];
    assert_values(&body, wanted);
    assert!(value(&body, "mysql_global_status_threads_connected", &t).is_some());
    promtool_check(&body);
    pw.stop().await;
}

#[tokio::test]
async fn performance_schema_off_degrades_then_uses_userstat() {
    let db = blocking(|| app_db("OFF")).await;
    let pw = Perfwatch::start(&config(FAST, &mysql_target(&dsn(&db, "root", "app"), ""))).await;
    // userstat off: sizes and definitions only, no verdicts.
    let body = pw
        .wait_for(Duration::from_secs(20), "the degraded signal", |b| {
            value(
                b,
                "perfwatch_mysql_index_stats_source_info",
                &[("source", "none")],
            )
            .map(|_| b.to_owned())
        })
        .await;
    let degraded = [
        ("collector", "mysql"),
        ("target", "db"),
        ("reason", "performance_schema_off"),
    ];
    assert_value(&body, "perfwatch_collector_degraded", &degraded, Some(1.0));
    assert_eq!(verdict(&body, "trip", "idx_note"), None);
    assert!(value(&body, "mysql_perf_schema_index_io_waits_total", &[]).is_none());
    assert!(index_size(&body, "trip", "idx_note").unwrap() > 0.0);
    assert_eq!(
        value(
            &body,
            "perfwatch_mysql_index_redundant",
            &[("index", "idx_status")]
        ),
        Some(1.0)
    );

    // MariaDB's userstat is dynamic: the fallback with read counts.
    let db = blocking(move || {
        db.sql("SET GLOBAL userstat = 1").unwrap();
        db.sql(&workload(2)).unwrap();
        db
    })
    .await;
    let body = pw
        .wait_for(Duration::from_secs(20), "userstat verdicts", |b| {
            verdict(b, "trip", "idx_note").map(|_| b.to_owned())
        })
        .await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_collector_degraded", &degraded, Some(1.0)),
        ("perfwatch_mysql_index_stats_source_info", &[("source", "userstat")], Some(1.0)),
    ];
    assert_values(&body, wanted);
    assert_eq!(verdict(&body, "trip", "idx_start"), Some(0.0), "{body}");
    assert_eq!(verdict(&body, "trip", "idx_note"), Some(1.0));
    assert_eq!(verdict(&body, "trip", "idx_status"), Some(1.0));
    assert_eq!(verdict(&body, "trip", "idx_status_start"), Some(1.0));
    assert_eq!(verdict(&body, "trip", "fk_driver"), None);
    assert_eq!(verdict(&body, "driver", "uq_email"), None);
    assert_eq!(
        value(&body, "perfwatch_mysql_unused_indexes", &[("target", "db")]),
        Some(3.0)
    );
    // 2 full scans × 2000 rows without an index.
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_mysql_table_rows_read_total", &[("table", "trip"), ("access", "full_scan")], Some(4000.0)),
        ("perfwatch_mysql_missing_index_candidate", &[("table", "trip")], Some(1.0)),
        ("perfwatch_target_up", &[("collector", "mysql"), ("target", "db")], Some(1.0)),
    ];
    assert_values(&body, wanted);
    pw.stop().await;
    drop(db);
}

#[tokio::test]
async fn saturation_is_exact_and_polls_reuse_one_connection() {
    let db = blocking(|| start_db(&[("max_connections", "20")])).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect(&db).await);
    }
    let pw = Perfwatch::start(&config(FAST, &mysql_target(&dsn(&db, "root", ""), ""))).await;
    let t = [("target", "db")];
    let body = wait_polls(&pw, "db", 2.0, POLL_WAIT).await;
    assert_eq!(
        value(
            &body,
            "perfwatch_pool_saturation_ratio",
            &[("source", "mysql"), ("target", "db")]
        ),
        Some(5.0 / 20.0),
        "{body}"
    );
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("mysql_global_variables_max_connections", &t, Some(20.0)),
        ("mysql_global_status_threads_connected", &t, Some(6.0)),
    ];
    assert_values(&body, wanted);
    // Over several polls: no new connection, and exactly 2 statements per
    // poll (the only client doing anything is perfwatch).
    let q0 = value(&body, "mysql_global_status_questions_total", &t).unwrap();
    let c0 = value(&body, "mysql_global_status_connections_total", &t).unwrap();
    let p0 = polls(&body, "db");
    let body = wait_polls(&pw, "db", 4.0, POLL_WAIT).await;
    let q1 = value(&body, "mysql_global_status_questions_total", &t).unwrap();
    let c1 = value(&body, "mysql_global_status_connections_total", &t).unwrap();
    let p1 = polls(&body, "db");
    assert_eq!(c1 - c0, 0.0, "connections opened during {} polls", p1 - p0);
    assert_eq!((q1 - q0) / (p1 - p0), 2.0, "statements per poll");
    assert_value(&body, "perfwatch_mysql_connects_total", &t, Some(1.0));
    held.truncate(2);
    let body = pw
        .wait_for(Duration::from_secs(10), "saturation after closing 3", |b| {
            (value(b, "perfwatch_pool_saturation_ratio", &[("source", "mysql")]) == Some(0.1))
                .then(|| b.to_owned())
        })
        .await;
    assert_eq!(
        value(&body, "mysql_global_status_threads_connected", &t),
        Some(3.0)
    );
    drop(held);
    pw.stop().await;
}

/// perfwatch's server-side connections (it logs in as `pw`).
async fn pw_connections(admin: &mut MySqlConnection) -> i64 {
    scalar(
        admin,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'pw'",
    )
    .await
}

async fn create_pw_user(admin: &mut MySqlConnection) {
    exec(
        admin,
        "CREATE USER 'pw'@'127.0.0.1'; GRANT ALL PRIVILEGES ON *.* TO 'pw'@'127.0.0.1'",
    )
    .await;
}

#[tokio::test]
async fn metadata_lock_does_not_pile_up_connections() {
    let db = blocking(|| app_db("ON")).await;
    let mut admin = connect(&db).await;
    create_pw_user(&mut admin).await;
    let target = mysql_target(
        &dsn(&db, "pw", "app"),
        "[[mysql.query]]\nname = \"trips_total\"\nsql = \"SELECT count(*) AS value FROM trip\"\n",
    );
    let pw = Perfwatch::start(&config("interval = \"2s\"\ntimeout = \"1500ms\"", &target)).await;
    pw.wait_for(Duration::from_secs(20), "a first value", |b| {
        value(
            b,
            "perfwatch_custom_query_value",
            &[("query", "trips_total")],
        )
    })
    .await;

    // An open transaction holds a shared metadata lock on trip; an ALTER
    // queues for the exclusive lock, and every new reader of trip queues
    // behind the ALTER: the classic pile-up.
    let mut holder = connect(&db).await;
    exec(&mut holder, "USE app; BEGIN; SELECT * FROM trip LIMIT 1").await;
    let mut alter_conn = connect(&db).await;
    let alter = tokio::spawn(async move {
        exec(&mut alter_conn, "ALTER TABLE app.trip ADD COLUMN extra INT").await;
        alter_conn
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = scalar(
        &mut admin,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table metadata lock'",
    )
    .await;
    assert_eq!(waiting, 1, "the ALTER must be waiting");

    let errors = |b: &str| {
        value(
            b,
            "perfwatch_custom_query_errors_total",
            &[("query", "trips_total")],
        )
        .unwrap_or(0.0)
    };
    let start_errors = errors(&pw.scrape().await);
    let mut max_conns = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        max_conns = max_conns.max(pw_connections(&mut admin).await);
        let b = pw.scrape().await;
        if errors(&b) >= start_errors + 2.0 || Instant::now() > deadline {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        errors(&body) >= start_errors + 2.0,
        "the blocked query is counted as failed:\n{body}"
    );
    assert_up_with_status(&body);
    let l = [("collector", "mysql"), ("target", "db")];
    let took = value(&body, "perfwatch_poll_duration_seconds", &l).unwrap();
    assert!(took < 1.5, "the poll finished within its timeout: {took}");
    assert_eq!(
        value(
            &body,
            "perfwatch_custom_query_value",
            &[("query", "trips_total")]
        ),
        None
    );
    assert!(
        max_conns <= 2,
        "perfwatch held {max_conns} server connections"
    );
    let poll_errors: f64 = ["timeout", "query", "connect"]
        .iter()
        .map(|r| poll_errors(&body, "db", r).unwrap_or(0.0))
        .sum();
    assert_eq!(poll_errors, 0.0, "the target never failed a poll");

    // Release: the ALTER runs, the query answers again, one connection left.
    exec(&mut holder, "ROLLBACK").await;
    let _ = alter.await.unwrap();
    pw.wait_for(Duration::from_secs(10), "the value again", |b| {
        value(
            b,
            "perfwatch_custom_query_value",
            &[("query", "trips_total")],
        )
    })
    .await;
    assert_eq!(pw_connections(&mut admin).await, 1);
    pw.stop().await;
}

#[tokio::test]
async fn server_restart_gives_up_0_then_1_without_leaks() {
    let mut db = blocking(|| start_db(&[])).await;
    let mut admin = connect(&db).await;
    create_pw_user(&mut admin).await;
    drop(admin);
    let pw = Perfwatch::start(&config(FAST, &mysql_target(&dsn(&db, "pw", ""), ""))).await;
    let l = [("collector", "mysql"), ("target", "db")];
    pw.wait_value(Duration::from_secs(20), "perfwatch_target_up", &l, 1.0)
        .await;
    db = blocking(move || {
        db.kill().unwrap();
        db
    })
    .await;
    let body = pw
        .wait_value(Duration::from_secs(20), "perfwatch_target_up", &l, 0.0)
        .await;
    let connect_errors = poll_errors(&body, "db", "connect").unwrap();
    assert!(connect_errors >= 1.0, "{body}");
    db = blocking(move || {
        std::thread::sleep(Duration::from_secs(1));
        db.restart().unwrap();
        db
    })
    .await;
    pw.wait_value(Duration::from_secs(30), "perfwatch_target_up", &l, 1.0)
        .await;
    wait_polls(&pw, "db", 3.0, POLL_WAIT).await;
    let mut admin = connect(&db).await;
    assert_eq!(
        pw_connections(&mut admin).await,
        1,
        "exactly one perfwatch connection after recovery"
    );
    pw.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pw_connections(&mut admin).await, 0, "closed on stop");
}

#[tokio::test]
async fn least_privilege_user_works_and_reports_what_it_cannot_read() {
    let db = blocking(|| {
        let db = start_db(&[("performance_schema", "ON")]);
        db.sql(SCHEMA).unwrap();
        db.sql(&workload(1)).unwrap();
        // The documented grants (MariaDB >= 10.5 names; REPLICATION CLIENT
        // is BINLOG MONITOR there).
        db.sql(
            "CREATE USER 'mon'@'127.0.0.1' IDENTIFIED BY 's3cret';
             GRANT PROCESS, SLAVE MONITOR, BINLOG MONITOR ON *.* TO 'mon'@'127.0.0.1';
             GRANT SELECT ON performance_schema.* TO 'mon'@'127.0.0.1';",
        )
        .unwrap();
        db
    })
    .await;
    let (_dir, pw_file) = secret_file("s3cret");
    // No database in the DSN: the user has no privilege on `app`, which a
    // default database would need; `databases` names the schema instead.
    let target = mysql_target(
        &dsn(&db, "mon", ""),
        &format!(
            "password_file = \"{}\"\ndatabases = [\"app\"]",
            pw_file.display()
        ),
    );
    let pw = Perfwatch::start(&config(FAST, &target)).await;
    let body = pw
        .wait_for(Duration::from_secs(20), "a permission section error", |b| {
            value(
                b,
                "perfwatch_mysql_section_errors_total",
                &[("section", "index_sizes"), ("reason", "permission")],
            )
            .map(|_| b.to_owned())
        })
        .await;
    assert_up_with_status(&body);
    assert!(
        value(
            &body,
            "perfwatch_pool_saturation_ratio",
            &[("source", "mysql")]
        )
        .is_some()
    );
    assert_eq!(
        value(
            &body,
            "perfwatch_collector_degraded",
            &[("target", "db"), ("reason", "permission_denied")]
        ),
        Some(1.0)
    );
    // performance_schema is readable: the full-scan reads are there.
    assert_eq!(
        value(
            &body,
            "mysql_perf_schema_index_io_waits_total",
            &[("name", "trip"), ("index", "NONE"), ("operation", "fetch")]
        ),
        Some(2000.0)
    );
    assert!(!body.contains("s3cret"));

    // A wrong password is an auth error, not a crash.
    let bad = mysql_target(&dsn(&db, "mon:wrong", "app"), "");
    let pw2 = Perfwatch::start(&config(FAST, &bad)).await;
    pw2.wait_for(Duration::from_secs(20), "an auth error", |b| {
        (poll_errors(b, "db", "auth")? >= 1.0).then_some(())
    })
    .await;
    pw2.stop().await;
    pw.stop().await;
}

/// A rotated `password_file` (a Kubernetes secret mount) is read again when
/// perfwatch reconnects, without a reload: the server changes the user's
/// password, the file gets the new one, the old session ends, and the next
/// connect uses the file's new content. Reading the file only at load would
/// reconnect with the old password and fail with `auth` forever.
#[tokio::test]
async fn rotated_password_file_is_read_again_at_reconnect() {
    let db = blocking(|| {
        let db = start_db(&[]);
        db.sql(
            "CREATE USER 'rot'@'127.0.0.1' IDENTIFIED BY 'first';
             GRANT PROCESS ON *.* TO 'rot'@'127.0.0.1';",
        )
        .unwrap();
        db
    })
    .await;
    let (_dir, pw_file) = secret_file("first");
    let target = mysql_target(
        &dsn(&db, "rot", ""),
        &format!("password_file = \"{}\"", pw_file.display()),
    );
    let pw = Perfwatch::start(&config(FAST, &target)).await;
    pw.wait_up("db", 1.0, POLL_WAIT).await;

    let mut admin = connect(&db).await;
    exec(
        &mut admin,
        "ALTER USER 'rot'@'127.0.0.1' IDENTIFIED BY 'second'",
    )
    .await;
    std::fs::write(&pw_file, "second\n").unwrap();
    let old = scalar(
        &mut admin,
        "SELECT CAST(ID AS CHAR) FROM information_schema.PROCESSLIST WHERE USER = 'rot'",
    )
    .await;
    exec(&mut admin, &format!("KILL CONNECTION {old}")).await;

    // Polls go on, up, on a new session of `rot`.
    let body = wait_polls(&pw, "db", 3.0, POLL_WAIT).await;
    assert_eq!(
        value(&body, "perfwatch_target_up", &[("target", "db")]),
        Some(1.0),
        "{body}"
    );
    let new = scalar(
        &mut admin,
        "SELECT CAST(ID AS CHAR) FROM information_schema.PROCESSLIST WHERE USER = 'rot'",
    )
    .await;
    assert_ne!(new, old, "perfwatch reconnected");
    assert_eq!(poll_errors(&body, "db", "auth"), Some(0.0), "{body}");
    pw.stop().await;
}
