//! perfwatch's database-level PostgreSQL families against the peer they are
//! named after: prometheus-postgres-exporter (Debian's 0.11) and perfwatch
//! watch the same throwaway server, and every family must have the peer's
//! name, the peer's label names (`server` replaced by perfwatch's `target`),
//! the same series and the same values. Types differ only where the rules
//! make them: the peer's counters lack `_total`, which `promtool check
//! metrics` rejects, so perfwatch declares them gauges (as it does for
//! `pg_stat_user_tables_*`; docs/collectors/postgres.md, "Names").

mod common;

use std::time::{Duration, Instant};

use common::peer::{PeerExporter, Scrape};
use common::{FAST, Perfwatch, config, wait_polls};
use perfwatch_testbench::PostgresServer;

/// The peer's `pg_stat_database` families and the type it gives each.
const STAT_DATABASE: [(&str, &str); 14] = [
    ("pg_stat_database_numbackends", "gauge"),
    ("pg_stat_database_xact_commit", "counter"),
    ("pg_stat_database_xact_rollback", "counter"),
    ("pg_stat_database_blks_read", "counter"),
    ("pg_stat_database_blks_hit", "counter"),
    ("pg_stat_database_tup_returned", "counter"),
    ("pg_stat_database_tup_fetched", "counter"),
    ("pg_stat_database_tup_inserted", "counter"),
    ("pg_stat_database_tup_updated", "counter"),
    ("pg_stat_database_tup_deleted", "counter"),
    ("pg_stat_database_conflicts", "counter"),
    ("pg_stat_database_temp_files", "counter"),
    ("pg_stat_database_temp_bytes", "counter"),
    ("pg_stat_database_deadlocks", "counter"),
];

/// postgres_exporter 0.11 has no built-in replication lag: it is the
/// `pg_replication` entry of the example queries.yaml Debian ships
/// (/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml),
/// reproduced here because docs may be stripped from an image.
const PEER_REPLICATION_QUERY: &str = r#"pg_replication:
  query: "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 ELSE GREATEST (0, EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))) END AS lag"
  master: true
  metrics:
    - lag:
        usage: "GAUGE"
        description: "Replication lag behind master in seconds"
"#;

/// prometheus-postgres-exporter the way scripts/lib/bench-common.sh starts it
/// (`DATA_SOURCE_NAME`), on database `database`, with the example
/// `pg_replication` query, once it reaches the server.
async fn start_peer(pg: &PostgresServer, database: &str) -> PeerExporter {
    let dsn = format!(
        "postgresql://postgres@127.0.0.1:{}/{database}?sslmode=disable",
        pg.port()
    );
    PeerExporter::start(
        "prometheus-postgres-exporter",
        &["--extend.query-path={dir}/queries.yaml"],
        &[("DATA_SOURCE_NAME", &dsn)],
        &[("queries.yaml", PEER_REPLICATION_QUERY)],
        "pg_up 1",
    )
    .await
}

/// Commits, rollbacks, inserted/updated/deleted rows and temporary files in
/// database `work`, which neither exporter connects to: its counters stop
/// moving when the workload ends, so both must read exactly the same.
fn workload() -> String {
    let mut w = String::from(
        "CREATE TABLE item (id int PRIMARY KEY, v text);\n\
         INSERT INTO item SELECT g, 'v' || g FROM generate_series(1, 2000) g;\n",
    );
    for i in 0..200 {
        w.push_str(&format!(
            "BEGIN; INSERT INTO item VALUES ({}, 'x'); COMMIT;\n",
            10_000 + i
        ));
    }
    for i in 0..20 {
        w.push_str(&format!(
            "BEGIN; INSERT INTO item VALUES ({}, 'x'); ROLLBACK;\n",
            20_000 + i
        ));
    }
    w.push_str(
        "UPDATE item SET v = 'u' WHERE id <= 500;\n\
         DELETE FROM item WHERE id > 1900 AND id <= 2000;\n\
         SET work_mem = '64kB';\n\
         SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC) s;\n\
         SELECT pg_stat_force_next_flush();\n",
    );
    w
}

#[tokio::test]
async fn database_families_match_postgres_exporter() {
    let pg = PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    pg.create_database("app").unwrap();
    pg.create_database("work").unwrap();
    let peer = start_peer(&pg, "app").await;
    let toml = config(
        FAST,
        &format!(
            "[[postgres]]\nname = \"db\"\ndsn = \"{}\"\n",
            pg.dsn_for("app")
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    pg.psql_in("work", &workload()).unwrap();

    // Wait until perfwatch has read the workload's final counters (two
    // polls in a row agree) before both are scraped.
    let commits = |s: &Scrape| {
        s.series("pg_stat_database_xact_commit", &["datname"])
            .get(&vec!["work".to_owned()])
            .copied()
    };
    let mut last = None;
    let started = Instant::now();
    loop {
        let body = wait_polls(&pw, "db", 2.0, Duration::from_secs(15)).await;
        let now = commits(&Scrape::parse(&body));
        if now.is_some_and(|c| c >= 200.0) && now == last {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "work's xact_commit never settled: {now:?}"
        );
        last = now;
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    // The exporters' own queries keep moving the counters of `app` (and of
    // the shared row): the peer's reading must lie between perfwatch's
    // reading before it and one taken after the server flushed the peer's
    // statistics (backends flush at most once a second).
    let ours = Scrape::parse(&pw.scrape().await);
    let theirs = peer.scrape().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ours_after = Scrape::parse(&wait_polls(&pw, "db", 2.0, Duration::from_secs(15)).await);

    let mut families: Vec<(&str, &str, &[&str])> = STAT_DATABASE
        .iter()
        .map(|(f, t)| (*f, *t, &["datid", "datname"][..]))
        .collect();
    families.push(("pg_database_size_bytes", "gauge", &["datname"]));
    families.push(("pg_replication_lag", "gauge", &[]));
    for (family, peer_type, keys) in families {
        // Type: the peer's as expected (a newer peer would show here); ours
        // the same, except counters declared gauges for promtool.
        assert_eq!(
            theirs.types.get(family).map(String::as_str),
            Some(peer_type),
            "peer TYPE of {family}"
        );
        assert_eq!(
            ours.types.get(family).map(String::as_str),
            Some("gauge"),
            "perfwatch TYPE of {family}"
        );
        // Label names: the peer's, `server` replaced by `target`.
        let mut want = theirs.label_names(family);
        assert!(
            want.remove("server"),
            "{family}: the peer has no server label"
        );
        want.insert("target".to_owned());
        assert_eq!(ours.label_names(family), want, "label names of {family}");
        // Series and values.
        let (t, o) = (theirs.series(family, keys), ours.series(family, keys));
        let after = ours_after.series(family, keys);
        assert_eq!(
            t.keys().collect::<Vec<_>>(),
            o.keys().collect::<Vec<_>>(),
            "series of {family}"
        );
        for (key, peer_value) in &t {
            let our_value = o[key];
            let datname = key.last().map(String::as_str).unwrap_or("");
            let ok = if family == "pg_database_size_bytes" {
                // Sizes move only with writes; allow a few pages of catalog
                // or free-space-map churn.
                (peer_value - our_value).abs() <= 4.0 * 8192.0
            } else if datname == "work" || family == "pg_replication_lag" {
                *peer_value == our_value
            } else if family == "pg_stat_database_numbackends" {
                // Both exporters' sessions are persistent; a psql session
                // may still be ending.
                (peer_value - our_value).abs() <= 1.0
            } else {
                our_value <= *peer_value && *peer_value <= after[key]
            };
            assert!(
                ok,
                "{family}{key:?}: peer {peer_value}, perfwatch {our_value} before and {} after",
                after[key]
            );
        }
    }

    // The workload really shows (values the comparison above would also
    // accept if both read nothing).
    let work = |family: &str| {
        ours.samples
            .iter()
            .find(|(n, l, _)| n == family && l.get("datname").is_some_and(|d| d == "work"))
            .map(|s| s.2)
            .unwrap_or_else(|| panic!("{family}{{datname=\"work\"}} missing"))
    };
    assert!(work("pg_stat_database_xact_commit") >= 200.0);
    assert!(work("pg_stat_database_xact_rollback") >= 20.0);
    assert!(work("pg_stat_database_tup_inserted") >= 2200.0);
    assert!(work("pg_stat_database_tup_updated") >= 500.0);
    assert!(work("pg_stat_database_tup_deleted") >= 100.0);
    assert!(work("pg_stat_database_temp_files") >= 1.0);
    assert!(work("pg_stat_database_temp_bytes") > 0.0);
    assert!(work("pg_database_size_bytes") > 1e6);

    // A primary: lag 0 (the peer's query), not a replica. postgres_exporter
    // 0.11 has no pg_replication_is_replica (later versions do); compare
    // when the peer has it.
    let is_replica = ours.series("pg_replication_is_replica", &[]);
    assert_eq!(is_replica.values().collect::<Vec<_>>(), [&0.0]);
    if theirs.types.contains_key("pg_replication_is_replica") {
        assert_eq!(theirs.series("pg_replication_is_replica", &[]), is_replica);
    }
    assert_eq!(
        ours.series("perfwatch_postgres_databases_summed_into_other", &[])
            .values()
            .collect::<Vec<_>>(),
        [&0.0]
    );
    pw.stop().await;
}
