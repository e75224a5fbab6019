//! perfwatch's database-level PostgreSQL families against the peer they are
//! named after: prometheus-postgres-exporter (Debian's 0.11) and perfwatch
//! watch the same throwaway server, and every family must have the peer's
//! name, the peer's label names (`server` replaced by perfwatch's `target`),
//! the same series and the same values. Types differ only where the rules
//! make them: the peer's counters lack `_total`, which `promtool check
//! metrics` rejects, so perfwatch declares them gauges (as it does for
//! `pg_stat_user_tables_*`; docs/collectors/postgres.md, "Names").

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::peer::{PG_REPLICATION_QUERY, PeerExporter, Scrape};
use common::{FAST, Perfwatch, config, wait_polls};
use perfwatch_testbench::PostgresServer;

/// One family's series: label values (in the order asked for) → value.
type Series = BTreeMap<Vec<String>, f64>;

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

/// prometheus-postgres-exporter the way scripts/lib/bench-common.sh starts it
/// (`DATA_SOURCE_NAME`), on database `database`, with
/// [`PG_REPLICATION_QUERY`], once it reaches the server.
async fn start_peer(pg: &PostgresServer, database: &str) -> PeerExporter {
    let dsn = format!(
        "postgresql://postgres@127.0.0.1:{}/{database}?sslmode=disable",
        pg.port()
    );
    PeerExporter::start(
        "prometheus-postgres-exporter",
        &["--extend.query-path={dir}/queries.yaml"],
        &[("DATA_SOURCE_NAME", &dsn)],
        &[("queries.yaml", PG_REPLICATION_QUERY)],
        "pg_up 1",
    )
    .await
}

/// The peer and perfwatch (target `db`, [`FAST`] polls) on database `app`.
async fn start_both(pg: &PostgresServer) -> (PeerExporter, Perfwatch) {
    let peer = start_peer(pg, "app").await;
    let toml = config(
        FAST,
        &format!(
            "[[postgres]]\nname = \"db\"\ndsn = \"{}\"\n",
            pg.dsn_for("app")
        ),
    );
    (peer, Perfwatch::start(&toml).await)
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

/// Checks `family`'s TYPEs (the peer's `peer_type`, perfwatch's `ours`) and
/// label names (the peer's, `server` replaced by `target`).
fn assert_type_and_labels(
    theirs: &Scrape,
    ours: &Scrape,
    family: &str,
    peer_type: &str,
    our_type: &str,
) {
    assert_eq!(
        theirs.types.get(family).map(String::as_str),
        Some(peer_type),
        "peer TYPE of {family}"
    );
    assert_eq!(
        ours.types.get(family).map(String::as_str),
        Some(our_type),
        "perfwatch TYPE of {family}"
    );
    let mut want = theirs.label_names(family);
    assert!(
        want.remove("server"),
        "{family}: the peer has no server label"
    );
    want.insert("target".to_owned());
    assert_eq!(ours.label_names(family), want, "label names of {family}");
}

/// The series of `family` by `keys` in the peer's scrape and perfwatch's
/// before and after it, once the peer and perfwatch are checked to have
/// the same series.
fn same_series(
    theirs: &Scrape,
    ours: &Scrape,
    ours_after: &Scrape,
    family: &str,
    keys: &[&str],
) -> [Series; 3] {
    let (t, o) = (theirs.series(family, keys), ours.series(family, keys));
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        o.keys().collect::<Vec<_>>(),
        "series of {family}"
    );
    [t, o, ours_after.series(family, keys)]
}

#[tokio::test]
async fn database_families_match_postgres_exporter() {
    let pg = PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    pg.create_database("app").unwrap();
    pg.create_database("work").unwrap();
    let (peer, pw) = start_both(&pg).await;
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
        // the same, except counters declared gauges for promtool. Label
        // names: the peer's, `server` replaced by `target`.
        assert_type_and_labels(&theirs, &ours, family, peer_type, "gauge");
        // Series and values.
        let [t, o, after] = same_series(&theirs, &ours, &ours_after, family, keys);
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

    // A primary: lag 0, not a replica (the peer has both through
    // PG_REPLICATION_QUERY; later peers built in).
    let is_replica = ours.series("pg_replication_is_replica", &[]);
    assert_eq!(is_replica.values().collect::<Vec<_>>(), [&0.0]);
    assert_eq!(theirs.series("pg_replication_is_replica", &[]), is_replica);
    assert_eq!(
        ours.series("perfwatch_postgres_databases_summed_into_other", &[])
            .values()
            .collect::<Vec<_>>(),
        [&0.0]
    );
    pw.stop().await;
}

/// Settings the client sets for its own session (`pg_settings.source =
/// 'client'`): perfwatch's session timeouts and sqlx's
/// `extra_float_digits`. They are the session's values, not the server's,
/// so perfwatch leaves them out while the peer reports its own session's.
const CLIENT_SETTINGS: [&str; 4] = [
    "pg_settings_extra_float_digits",
    "pg_settings_idle_in_transaction_session_timeout_seconds",
    "pg_settings_lock_timeout_seconds",
    "pg_settings_statement_timeout_seconds",
];

#[tokio::test]
async fn activity_locks_settings_and_bgwriter_match_postgres_exporter() {
    use sqlx::{Connection, Executor, PgConnection};

    let pg = PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    pg.create_database("app").unwrap();
    pg.create_database("work").unwrap();
    // A requested checkpoint, so pg_stat_bgwriter has non-zero counters.
    pg.psql_in(
        "work",
        "CREATE TABLE item (id int PRIMARY KEY, v text);\n\
         INSERT INTO item SELECT g, 'v' || g FROM generate_series(1, 5000) g;\n\
         CHECKPOINT;\n",
    )
    .unwrap();

    // Sessions in `work`, which neither exporter connects to: one idle in a
    // transaction holding a lock, one whose transaction failed, one running
    // a long statement in an old transaction, one waiting for the lock.
    let work = pg.dsn_for("work");
    let mut holder = PgConnection::connect(&work).await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder
        .execute("LOCK TABLE item IN SHARE ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut aborted = PgConnection::connect(&work).await.unwrap();
    aborted.execute("BEGIN").await.unwrap();
    assert!(aborted.execute("SELECT 1 / 0").await.is_err());
    let mut sleeper = PgConnection::connect(&work).await.unwrap();
    sleeper.execute("BEGIN").await.unwrap();
    let sleeping = tokio::spawn(async move {
        let _ = sleeper.execute("SELECT pg_sleep(120)").await;
        sleeper
    });
    let mut waiter = PgConnection::connect(&work).await.unwrap();
    waiter.execute("BEGIN").await.unwrap();
    let waiting = tokio::spawn(async move {
        let _ = waiter
            .execute("LOCK TABLE item IN ACCESS EXCLUSIVE MODE")
            .await;
        waiter
    });

    let (peer, pw) = start_both(&pg).await;
    // Until perfwatch sees every induced session (and transactions old
    // enough that the ages are not all ~0).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let count = |s: &Scrape, state: &str| {
        s.series("pg_stat_activity_count", &["datname", "state"])
            .get(&vec!["work".to_owned(), state.to_owned()])
            .copied()
    };
    pw.wait_for(Duration::from_secs(15), "the induced sessions", |b| {
        let s = Scrape::parse(b);
        (count(&s, "active") == Some(2.0) && count(&s, "idle in transaction") == Some(1.0))
            .then_some(())
    })
    .await;
    let ours = Scrape::parse(&wait_polls(&pw, "db", 1.0, Duration::from_secs(15)).await);
    let theirs = peer.scrape().await;
    let ours_after = Scrape::parse(&wait_polls(&pw, "db", 2.0, Duration::from_secs(15)).await);

    // pg_stat_activity_count and pg_stat_activity_max_tx_duration: every
    // database x state. perfwatch's own sessions and the peer's live in
    // `app`: each sees itself active (its own query) and the other mostly
    // idle, so those two may differ by one; everything else exactly.
    let keys: &[&str] = &["datname", "state"];
    for family in ["pg_stat_activity_count", "pg_stat_activity_max_tx_duration"] {
        let our_type = if family.ends_with("_count") {
            "untyped"
        } else {
            "gauge"
        };
        assert_type_and_labels(&theirs, &ours, family, "gauge", our_type);
        let [t, o, after] = same_series(&theirs, &ours, &ours_after, family, keys);
        for (key, peer_value) in &t {
            let (datname, state) = (key[0].as_str(), key[1].as_str());
            let our_value = o[key];
            let ok = if family == "pg_stat_activity_count" {
                let slack = if datname == "app" && (state == "active" || state == "idle") {
                    1.0
                } else {
                    0.0
                };
                (peer_value - our_value).abs() <= slack
            } else {
                // Ages grow between the readings; the exporters' own
                // transactions last milliseconds.
                our_value - 0.5 <= *peer_value && *peer_value <= after[key] + 0.5
            };
            assert!(
                ok,
                "{family}{key:?}: peer {peer_value}, perfwatch {our_value} (then {})",
                after[key]
            );
        }
    }
    let work_key = |state: &str| vec!["work".to_owned(), state.to_owned()];
    let counts = ours.series("pg_stat_activity_count", keys);
    assert_eq!(counts[&work_key("active")], 2.0);
    assert_eq!(counts[&work_key("idle in transaction")], 1.0);
    assert_eq!(counts[&work_key("idle in transaction (aborted)")], 1.0);
    let ages = ours.series("pg_stat_activity_max_tx_duration", keys);
    assert!(ages[&work_key("active")] >= 1.0, "{ages:?}");
    assert!(ages[&work_key("idle in transaction")] >= 1.0, "{ages:?}");

    // pg_locks_count: every database x mode. Each exporter's own statement
    // holds a few AccessShareLocks on catalog views in `app`; the rest
    // exactly (the held and the awaited lock in `work`).
    let keys: &[&str] = &["datname", "mode"];
    assert_type_and_labels(&theirs, &ours, "pg_locks_count", "gauge", "untyped");
    let (t, o) = (
        theirs.series("pg_locks_count", keys),
        ours.series("pg_locks_count", keys),
    );
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        o.keys().collect::<Vec<_>>(),
        "series of pg_locks_count"
    );
    for (key, peer_value) in &t {
        let slack = if key[0] == "app" && key[1] == "accesssharelock" {
            10.0
        } else {
            0.0
        };
        assert!(
            (peer_value - o[key]).abs() <= slack,
            "pg_locks_count{key:?}: peer {peer_value}, perfwatch {}",
            o[key]
        );
    }
    let lock = |mode: &str| o[&vec!["work".to_owned(), mode.to_owned()]];
    assert_eq!(lock("sharerowexclusivelock"), 1.0);
    assert_eq!(lock("accessexclusivelock"), 1.0, "the awaited lock counts");

    // pg_settings_*: every numeric setting the peer exports, the same name,
    // TYPE, labels and value, but the client's own session settings.
    let names = |s: &Scrape| -> std::collections::BTreeSet<String> {
        s.types
            .keys()
            .filter(|n| n.starts_with("pg_settings_"))
            .cloned()
            .collect()
    };
    let (peer_settings, our_settings) = (names(&theirs), names(&ours));
    assert!(peer_settings.len() > 200, "{peer_settings:?}");
    let missing: Vec<&String> = peer_settings.difference(&our_settings).collect();
    assert_eq!(
        missing,
        CLIENT_SETTINGS.iter().collect::<Vec<_>>(),
        "settings only the peer has"
    );
    let extra: Vec<&String> = our_settings.difference(&peer_settings).collect();
    assert!(extra.is_empty(), "settings only perfwatch has: {extra:?}");
    for family in &our_settings {
        // A gauge named `_count` (tcp_keepalives_count) fails promtool:
        // untyped, as pg_stat_activity_count.
        let our_type = if family.ends_with("_count") {
            "untyped"
        } else {
            "gauge"
        };
        assert_type_and_labels(&theirs, &ours, family, "gauge", our_type);
        let (t, o) = (theirs.series(family, &[]), ours.series(family, &[]));
        assert_eq!(t, o, "{family}");
    }
    for (family, want) in [
        ("pg_settings_max_connections", 50.0), // the test bench's
        ("pg_settings_fsync", 0.0),            // the test bench's
        ("pg_settings_ssl", 0.0),
        ("pg_settings_shared_buffers_bytes", 128.0 * 1024.0 * 1024.0),
        ("pg_settings_autovacuum_naptime_seconds", 60.0),
        ("pg_settings_autovacuum_vacuum_scale_factor", 0.2),
    ] {
        assert_eq!(
            ours.series(family, &[]).values().collect::<Vec<_>>(),
            [&want],
            "{family}"
        );
    }

    // pg_stat_bgwriter: 0.11's `_total` counters. Counters move between
    // the readings (buffers are allocated all the time): the peer's lies
    // between perfwatch's before and after; the reset time exactly.
    let bgwriter: Vec<&String> = theirs
        .types
        .keys()
        .filter(|n| n.starts_with("pg_stat_bgwriter_"))
        .collect();
    assert_eq!(bgwriter.len(), 11, "{bgwriter:?}");
    for family in bgwriter {
        assert_type_and_labels(&theirs, &ours, family, "counter", "counter");
        let (t, o, after) = (
            theirs.series(family, &[]),
            ours.series(family, &[]),
            ours_after.series(family, &[]),
        );
        let (peer_value, before, after) = (t[&vec![]], o[&vec![]], after[&vec![]]);
        assert!(
            before <= peer_value && peer_value <= after,
            "{family}: peer {peer_value}, perfwatch {before} then {after}"
        );
    }
    let checkpoints = ours.series("pg_stat_bgwriter_checkpoints_req_total", &[]);
    assert!(
        checkpoints[&vec![]] >= 1.0,
        "the CHECKPOINT counts: {checkpoints:?}"
    );

    // A reload changes settings: perfwatch reads them again (it reads them
    // only when pg_conf_load_time() moves), like the peer.
    pg.psql("ALTER SYSTEM SET autovacuum_vacuum_scale_factor = 0.05")
        .unwrap();
    pg.psql("SELECT pg_reload_conf()").unwrap();
    let family = "pg_settings_autovacuum_vacuum_scale_factor";
    pw.wait_for(Duration::from_secs(15), "the reloaded setting", |b| {
        (Scrape::parse(b).series(family, &[]).values().next() == Some(&0.05)).then_some(())
    })
    .await;
    assert_eq!(
        peer.scrape().await.series(family, &[]).values().next(),
        Some(&0.05)
    );

    common::promtool_check_metrics(&pw.scrape().await);
    sleeping.abort();
    waiting.abort();
    drop((holder, aborted));
    pw.stop().await;
}

/// The replication families of a primary with a streaming standby whose
/// replay is paused (so the WAL it has not replayed stays put): the peer's
/// names, label names and series, and the same values.
#[tokio::test]
async fn replication_families_match_postgres_exporter_on_a_primary() {
    let pg = PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    pg.create_database("app").unwrap();
    let standby = pg
        .start_replica("standby", &[])
        .unwrap_or_else(|e| panic!("{e}"));
    standby.psql("SELECT pg_wal_replay_pause()").unwrap();
    pg.psql_in(
        "app",
        "CREATE TABLE item AS SELECT g AS id FROM generate_series(1, 20000) g",
    )
    .unwrap();
    let (peer, pw) = start_both(&pg).await;
    // Until the standby has received (not replayed) the table and replied.
    let behind = |s: &Scrape| {
        s.series("pg_stat_replication_pg_wal_lsn_diff", &[])
            .values()
            .next()
            .copied()
    };
    pw.wait_for(
        Duration::from_secs(20),
        "WAL the standby has not replayed",
        |b| behind(&Scrape::parse(b)).filter(|b| *b > 100_000.0),
    )
    .await;
    let ours = Scrape::parse(&wait_polls(&pw, "db", 1.0, Duration::from_secs(15)).await);
    let theirs = peer.scrape().await;
    let ours_after = Scrape::parse(&wait_polls(&pw, "db", 1.0, Duration::from_secs(15)).await);

    let replica_keys: &[&str] = &["application_name", "client_addr", "slot_name", "state"];
    let slot_keys: &[&str] = &["slot_name", "database"];
    for (family, peer_type, keys) in [
        (
            "pg_stat_replication_pg_current_wal_lsn_bytes",
            "gauge",
            replica_keys,
        ),
        ("pg_stat_replication_pg_wal_lsn_diff", "gauge", replica_keys),
        ("pg_stat_replication_reply_time", "untyped", replica_keys),
        ("pg_replication_slots_active", "gauge", slot_keys),
        ("pg_replication_slots_pg_wal_lsn_diff", "gauge", slot_keys),
    ] {
        assert_type_and_labels(&theirs, &ours, family, peer_type, "gauge");
        let [t, o, after] = same_series(&theirs, &ours, &ours_after, family, keys);
        for (key, peer_value) in &t {
            // Background writes (checkpoints, statistics) may move the WAL
            // between the readings, and a standby replies every 10 s.
            let (low, high) = (o[key].min(after[key]), o[key].max(after[key]));
            assert!(
                low <= *peer_value && *peer_value <= high,
                "{family}{key:?}: peer {peer_value}, perfwatch {} then {}",
                o[key],
                after[key]
            );
        }
    }
    // The values are the standby's, not zeros both would agree on.
    let slot = ours.series("pg_replication_slots_active", &["slot_name"]);
    assert_eq!(
        slot.get(&vec!["standby".to_owned()]),
        Some(&1.0),
        "{slot:?}"
    );
    assert!(behind(&ours).is_some_and(|b| b > 100_000.0));
    let sent = ours.series("pg_stat_replication_pg_current_wal_lsn_bytes", &["state"]);
    assert!(
        sent.get(&vec!["streaming".to_owned()])
            .is_some_and(|v| *v > 1e6),
        "{sent:?}"
    );
    pw.stop().await;
}
