//! perfwatch's `mysql_global_status_*` and `mysql_global_variables_*`
//! families against the peer they are named after: prometheus-mysqld-exporter
//! (Debian's 0.14) and perfwatch watch the same throwaway MariaDB, and every
//! family the peer exports there must come from perfwatch with the peer's
//! name, type, label names (plus perfwatch's `target`), series and values.
//!
//! The documented differences, each asserted rather than skipped:
//! - names `promtool check metrics` rejects in the peer's output (e.g.
//!   `mysql_global_variables_max_error_count`) are left out by perfwatch:
//!   the omitted set must equal what promtool flags;
//! - four status variables perfwatch declared before as gauges keep that
//!   type (the peer says `untyped`): threads_connected, threads_running,
//!   max_used_connections, uptime;
//! - perfwatch's older `_total` counter names for a few status variables
//!   (e.g. `mysql_global_status_questions_total`) exist beside the peer's
//!   untyped ones, from the same read;
//! - of the processlist families, perfwatch has no `..._processes_by_user`
//!   and `..._processes_by_host` (a series per client user and host).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::Connection;

use common::peer::{PeerExporter, Scrape};
use common::{Perfwatch, promtool_check_metrics, promtool_report, start_db, wait_polls};

/// Declared as gauges by perfwatch before the peer's families came.
const GAUGES_BY_PERFWATCH: &[&str] = &[
    "mysql_global_status_threads_connected",
    "mysql_global_status_threads_running",
    "mysql_global_status_max_used_connections",
    "mysql_global_status_uptime",
];

/// perfwatch's own counter names for status variables the peer exports
/// untyped without `_total` (kept: dashboards and alert rules use them).
const PERFWATCH_ONLY: &[&str] = &[
    "mysql_global_status_aborted_clients_total",
    "mysql_global_status_aborted_connects_total",
    "mysql_global_status_connections_total",
    "mysql_global_status_innodb_buffer_pool_read_requests_total",
    "mysql_global_status_innodb_buffer_pool_reads_total",
    "mysql_global_status_questions_total",
    "mysql_global_status_slow_queries_total",
];

/// The peer's families perfwatch leaves out on purpose (unbounded labels).
const NOT_EXPORTED: &[&str] = &[
    "mysql_info_schema_processlist_processes_by_host",
    "mysql_info_schema_processlist_processes_by_user",
];

/// The labels that tell a family's series apart.
fn series_labels(family: &str) -> Vec<&'static str> {
    if family.starts_with("mysql_info_schema_processlist_") {
        return vec!["command", "state"];
    }
    series_label(family).into_iter().collect()
}

/// The label that tells a labelled status family's series apart.
fn series_label(family: &str) -> Option<&'static str> {
    Some(match family {
        "mysql_global_status_commands_total" => "command",
        "mysql_global_status_handlers_total" => "handler",
        "mysql_global_status_connection_errors_total" => "error",
        "mysql_global_status_buffer_pool_pages" => "state",
        "mysql_global_status_buffer_pool_page_changes_total" => "operation",
        "mysql_global_status_innodb_row_ops_total" => "operation",
        "mysql_global_status_performance_schema_lost_total" => "instrumentation",
        _ => return None,
    })
}

/// Status variables that are not counters and move with every statement
/// or allocation, so the peer's reading need not lie between two of
/// perfwatch's: compared within a tolerance instead.
fn volatile(family: &str) -> Option<f64> {
    match family {
        // Bytes of memory the server's threads hold right now.
        "mysql_global_status_memory_used" | "mysql_global_status_memory_used_initial" => Some(0.05),
        // Statements running and tables open at the moment of the read
        // (each exporter's own statement counts).
        "mysql_global_status_threads_running" | "mysql_global_status_open_tables" => Some(0.5),
        // Seconds in the current state: the idle time of each exporter's
        // own connection as the other sees it depends on when it last ran.
        "mysql_info_schema_processlist_seconds" => Some(1.0),
        _ => None,
    }
}

/// mysqld_exporter 0.14 opens a connection per scrape: it counts its own
/// in `Threads_connected` and sees perfwatch's idle one in the processlist,
/// while perfwatch (polling on its kept connection between the peer's
/// scrapes) sees neither. Takes both out of the peer's reading.
fn without_each_others_connection(
    family: &str,
    peer: &mut std::collections::BTreeMap<Vec<String>, f64>,
) {
    let idle = vec!["sleep".to_owned(), "unknown".to_owned()];
    match family {
        "mysql_global_status_threads_connected" => {
            if let Some(v) = peer.get_mut(&Vec::new()) {
                *v -= 1.0;
            }
        }
        "mysql_info_schema_processlist_threads" => {
            let n = peer.get(&idle).copied().unwrap_or(0.0);
            assert!(n >= 1.0, "the peer does not see perfwatch's connection");
            if n == 1.0 {
                peer.remove(&idle);
            } else {
                peer.insert(idle, n - 1.0);
            }
        }
        // perfwatch's idle seconds (under a second: it polls every 500 ms).
        "mysql_info_schema_processlist_seconds" if peer.get(&idle).is_some_and(|s| *s <= 1.0) => {
            peer.remove(&idle);
        }
        _ => {}
    }
}

/// The metric names `promtool check metrics` complains about in `body`.
fn promtool_flagged(body: &str) -> BTreeSet<String> {
    promtool_report(body)
        .1
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Statements that move many status counters: selects, sorts, temporary
/// tables, inserts, updates, deletes, commits and rollbacks.
const WORKLOAD: &str = "CREATE DATABASE work; USE work;
CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), n INT) ENGINE=InnoDB;
INSERT INTO t SELECT seq, CONCAT('v', seq), seq % 7 FROM seq_1_to_3000;
SELECT n, COUNT(*) FROM t GROUP BY n ORDER BY COUNT(*) DESC;
SELECT * FROM t ORDER BY v DESC LIMIT 5;
SELECT COUNT(*) FROM t a JOIN t b ON a.n = b.n WHERE a.id < 50;
UPDATE t SET n = n + 1 WHERE id <= 500;
DELETE FROM t WHERE id > 2900;
BEGIN; INSERT INTO t VALUES (5001, 'x', 1); COMMIT;
BEGIN; INSERT INTO t VALUES (5002, 'y', 1); ROLLBACK;";

/// The peer logs in as `exporter` (its my.cnf needs a password); perfwatch
/// as root.
const PEER_USER: &str = "CREATE USER 'exporter'@'127.0.0.1' IDENTIFIED BY 'exporter-pw';
GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'exporter'@'127.0.0.1';";

/// perfwatch and the peer on one server, and three scrapes: perfwatch's
/// before the peer's and one after (a counter the peer read must lie
/// between them).
struct Run {
    pw: Perfwatch,
    _peer: PeerExporter,
    before: Scrape,
    theirs: Scrape,
    theirs_body: String,
    after: Scrape,
}

/// Starts the peer (with `peer_args`, logging in as `exporter`, see
/// [`PEER_USER`]) and perfwatch (as root, with `target_extra` in its
/// `[[mysql]]` table) on `db` and scrapes them; perfwatch's last scrape
/// must pass `promtool check metrics`.
async fn compare_run(db: &common::Db, peer_args: &[&str], target_extra: &str) -> Run {
    let my_cnf = format!(
        "[client]\nuser = exporter\npassword = exporter-pw\nhost = 127.0.0.1\nport = {}\n",
        db.port()
    );
    let mut args = vec!["--config.my-cnf={dir}/my.cnf"];
    args.extend_from_slice(peer_args);
    let peer = PeerExporter::start(
        "prometheus-mysqld-exporter",
        &args,
        &[],
        &[("my.cnf", &my_cnf)],
        "mysql_up 1",
    )
    .await;
    let pw = Perfwatch::start_fast(&format!(
        "[[mysql]]\nname = \"db\"\ndsn = \"mysql://root@127.0.0.1:{}/\"\n{target_extra}",
        db.port()
    ))
    .await;
    let before_body = wait_polls(&pw, "db", 2.0, Duration::from_secs(15)).await;
    let theirs_body = peer.body().await;
    let after_body = wait_polls(&pw, "db", 2.0, Duration::from_secs(15)).await;
    promtool_check_metrics(&after_body);
    Run {
        pw,
        _peer: peer,
        before: Scrape::parse(&before_body),
        theirs: Scrape::parse(&theirs_body),
        theirs_body,
        after: Scrape::parse(&after_body),
    }
}

/// Compares `families` (exported by both): type, label names (the peer's
/// plus `target`), series and values; returns the differences.
fn compare_families(
    families: &[&String],
    before: &Scrape,
    theirs: &Scrape,
    after: &Scrape,
) -> Vec<String> {
    let mut problems = Vec::new();
    for family in families.iter().copied() {
        // Type.
        let want_type = if GAUGES_BY_PERFWATCH.contains(&family.as_str()) {
            "gauge"
        } else {
            theirs.types[family].as_str()
        };
        if after.types[family] != want_type {
            problems.push(format!(
                "{family}: TYPE {} (peer {})",
                after.types[family], theirs.types[family]
            ));
        }
        // Label names.
        let mut want_labels = theirs.label_names(family);
        want_labels.insert("target".into());
        if after.label_names(family) != want_labels {
            problems.push(format!(
                "{family}: labels {:?}, peer {:?}",
                after.label_names(family),
                theirs.label_names(family)
            ));
        }
        // Series and values.
        let keys = series_labels(family);
        let (mut t, b, a) = (
            theirs.series(family, &keys),
            before.series(family, &keys),
            after.series(family, &keys),
        );
        without_each_others_connection(family, &mut t);
        if t.keys().collect::<Vec<_>>() != a.keys().collect::<Vec<_>>() {
            problems.push(format!(
                "{family}: series {:?}, peer {:?}",
                a.keys().collect::<Vec<_>>(),
                t.keys().collect::<Vec<_>>()
            ));
            continue;
        }
        for (key, peer_value) in &t {
            let b = b.get(key).copied().unwrap_or(f64::NAN);
            let a = a[key];
            let (lo, hi) = (b.min(a), b.max(a));
            let ok = match volatile(family) {
                Some(share) => (peer_value - a).abs() <= share * a.abs().max(10.0),
                None => lo <= *peer_value && *peer_value <= hi,
            };
            if !ok {
                problems.push(format!(
                    "{family}{key:?}: peer {peer_value}, perfwatch {b} before and {a} after"
                ));
            }
        }
    }
    problems
}

#[tokio::test]
async fn status_and_variable_families_match_mysqld_exporter() {
    let db = start_db(&[]);
    db.sql(PEER_USER).unwrap();
    db.sql(WORKLOAD).unwrap();
    // A client in a known state for the processlist families.
    let mut sleeper = sqlx::mysql::MySqlConnection::connect(&db.dsn())
        .await
        .unwrap();
    let sleeping = tokio::spawn(async move {
        sqlx::raw_sql("SELECT SLEEP(60)")
            .execute(&mut sleeper)
            .await
            .map(drop)
    });
    let run = compare_run(
        &db,
        &["--collect.info_schema.processlist"],
        "processlist = true\n",
    )
    .await;
    let (before, theirs, after) = (&run.before, &run.theirs, &run.after);
    let compared = |s: &Scrape| -> BTreeSet<String> {
        s.types
            .keys()
            .filter(|n| {
                n.starts_with("mysql_global_status_")
                    || n.starts_with("mysql_global_variables_")
                    || n.starts_with("mysql_info_schema_processlist_")
            })
            .cloned()
            .collect()
    };
    let (peer_names, our_names) = (compared(theirs), compared(after));

    // Names: the peer's, minus what promtool rejects, plus perfwatch's own
    // older counters.
    let flagged = promtool_flagged(&run.theirs_body);
    let missing: BTreeSet<_> = peer_names.difference(&our_names).cloned().collect();
    let mut flagged_here: BTreeSet<_> = flagged.intersection(&peer_names).cloned().collect();
    assert!(
        !flagged_here.is_empty(),
        "promtool flags none of the peer's names: is the check broken?"
    );
    flagged_here.extend(NOT_EXPORTED.iter().map(|s| s.to_string()));
    assert_eq!(
        missing, flagged_here,
        "families of the peer perfwatch lacks (left) vs. the ones promtool rejects and the unbounded ones (right)"
    );
    let extra: BTreeSet<_> = our_names.difference(&peer_names).cloned().collect();
    let expected_extra: BTreeSet<String> = PERFWATCH_ONLY.iter().map(|s| s.to_string()).collect();
    assert_eq!(extra, expected_extra, "families only perfwatch exports");
    assert!(
        peer_names.len() > 700,
        "only {} peer families",
        peer_names.len()
    );

    let both: Vec<&String> = peer_names.intersection(&our_names).collect();
    let problems = compare_families(&both, before, theirs, after);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The workload shows (the comparison above would also accept zeros on
    // both sides).
    let value = |family: &str, key: &[&str]| {
        let k: Vec<String> = key.iter().map(|s| s.to_string()).collect();
        after
            .series(family, &series_labels(family))
            .get(&k)
            .copied()
    };
    for (family, key, at_least) in [
        (
            "mysql_global_status_commands_total",
            &["insert_select"][..],
            1.0,
        ),
        ("mysql_global_status_commands_total", &["update"], 1.0),
        ("mysql_global_status_commands_total", &["rollback"], 1.0),
        ("mysql_global_status_handlers_total", &["write"], 3000.0),
        (
            "mysql_global_status_handlers_total",
            &["read_rnd_next"],
            3000.0,
        ),
        ("mysql_global_status_buffer_pool_pages", &["data"], 1.0),
        ("mysql_global_status_created_tmp_tables", &[], 1.0),
        ("mysql_global_status_sort_rows", &[], 5.0),
        ("mysql_global_status_select_full_join", &[], 1.0),
        ("mysql_global_status_bytes_received", &[], 1000.0),
        ("mysql_global_status_queries", &[], 10.0),
        ("mysql_global_variables_max_connections", &[], 50.0),
        (
            "mysql_global_variables_innodb_buffer_pool_size",
            &[],
            32.0 * 1024.0 * 1024.0,
        ),
        (
            "mysql_info_schema_processlist_threads",
            &["query", "user_sleep"],
            1.0,
        ),
    ] {
        let v = value(family, key);
        assert!(
            v.is_some_and(|v| v >= at_least),
            "{family}{key:?} = {v:?}, want at least {at_least}"
        );
    }
    sleeping.abort();
    run.pw.stop().await;
}

/// A MariaDB replica of a second throwaway server: `mysql_slave_status_*`
/// from both exporters (MariaDB's `SHOW ALL SLAVES STATUS`).
#[tokio::test]
async fn slave_status_families_match_mysqld_exporter_on_a_replica() {
    let primary = start_db(&[("server_id", "1"), ("log_bin", "mysql-bin")]);
    primary
        .sql(
            "CREATE DATABASE shop; CREATE TABLE shop.o (id INT PRIMARY KEY);
             USE shop; INSERT INTO o SELECT seq FROM seq_1_to_100;",
        )
        .unwrap();
    let replica = start_db(&[("server_id", "2")]);
    replica.sql(PEER_USER).unwrap();
    replica
        .sql("GRANT SLAVE MONITOR ON *.* TO 'exporter'@'127.0.0.1';")
        .unwrap();
    replica.replicate_from(&primary).unwrap();
    // Caught up: the 100 rows are there (the primary stays idle from here,
    // so the positions both exporters read do not move).
    let started = std::time::Instant::now();
    while replica
        .sql("SELECT COUNT(*) FROM shop.o")
        .map(|o| o.trim() != "100")
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replica never caught up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let run = compare_run(&replica, &[], "").await;
    let slave = |s: &Scrape| -> BTreeSet<String> {
        s.types
            .keys()
            .filter(|n| n.starts_with("mysql_slave_status_"))
            .cloned()
            .collect()
    };
    let (peer_names, our_names) = (slave(&run.theirs), slave(&run.after));
    let flagged: BTreeSet<_> = promtool_flagged(&run.theirs_body)
        .intersection(&peer_names)
        .cloned()
        .collect();
    let missing: BTreeSet<_> = peer_names.difference(&our_names).cloned().collect();
    assert_eq!(missing, flagged, "slave status families perfwatch lacks");
    assert!(our_names.is_subset(&peer_names), "{our_names:?}");
    assert!(peer_names.len() > 20, "{peer_names:?}");
    let both: Vec<&String> = our_names.iter().collect();
    let problems = compare_families(&both, &run.before, &run.theirs, &run.after);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for (family, want) in [
        ("mysql_slave_status_slave_io_running", 1.0),
        ("mysql_slave_status_slave_sql_running", 1.0),
        ("mysql_slave_status_seconds_behind_master", 0.0),
        ("mysql_slave_status_master_port", primary.port() as f64),
    ] {
        let got: Vec<f64> = run.after.series(family, &[]).into_values().collect();
        assert_eq!(got, [want], "{family}");
    }
    run.pw.stop().await;
}
