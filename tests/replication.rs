//! Replication as perfwatch reports it, on real topologies the test starts
//! (loopback only): a PostgreSQL primary with a streaming standby
//! (`pg_basebackup -R`, a physical slot), a MariaDB primary with a replica,
//! and a Redis primary with a replica. Lag must show when the standby or
//! replica stops applying, and broken replication must show: on PostgreSQL
//! on both sides (the primary's slot goes inactive and its standby
//! disappears; the standby's WAL receiver stops streaming), on MariaDB and
//! Redis on the replica (its I/O thread stops running; its link is down).
//!
//! The names compatible with the Go exporters are checked against the
//! peers in tests/postgres_compat.rs, tests/mysql_compat.rs and
//! tests/redis_compat.rs; this file checks what they say.

mod common;

use std::time::Duration;

use common::{FAST, Perfwatch, config, start_db, start_pg, start_redis, value};
use sqlx::{Connection, Executor};

/// perfwatch ([`FAST`] polls) watching a primary and its replica: two
/// `kind` tables named `primary` and `replica`, each with its address under
/// `key`.
async fn watch_pair(kind: &str, key: &str, primary: &str, replica: &str) -> Perfwatch {
    let table = |name: &str, address: &str| {
        format!("[[{kind}]]\nname = \"{name}\"\n{key} = \"{address}\"\n")
    };
    let targets = format!(
        "{}\n{}",
        table("primary", primary),
        table("replica", replica)
    );
    Perfwatch::start(&config(FAST, &targets)).await
}

/// Waits until target `replica` says its replication is broken (`family`
/// is 0) while it is up and answering (broken replication is not a down
/// target); returns that scrape.
async fn wait_broken_but_up(pw: &Perfwatch, family: &str) -> String {
    let replica = [("target", "replica")];
    pw.wait_for(WAIT, &format!("replica up and {family} 0"), |b| {
        (value(b, family, &replica) == Some(0.0)
            && value(b, "perfwatch_target_up", &replica) == Some(1.0))
        .then(|| b.to_owned())
    })
    .await
}

/// Long enough for a standby to notice its primary is gone and for
/// perfwatch to poll it ([`FAST`] polls).
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn postgres_lag_and_broken_replication_show_on_both_sides() {
    let primary = start_pg(&[("wal_receiver_status_interval", "1s")]);
    let mut standby = primary
        .start_replica("standby", &[("wal_receiver_status_interval", "1s")])
        .unwrap_or_else(|e| panic!("{e}"));
    let pw = watch_pair("postgres", "dsn", &primary.dsn(), &standby.dsn()).await;

    // Streaming: one standby on the primary, its slot active, the standby's
    // receiver streaming; no receiver series on a primary (it has no
    // upstream).
    let streaming = [("target", "primary"), ("state", "streaming")];
    let slot = [("target", "primary"), ("slot_name", "standby")];
    let (on_primary, on_standby) = ([("target", "primary")], [("target", "replica")]);
    pw.wait_for(WAIT, "streaming, as both sides see it", |b| {
        (value(b, "perfwatch_postgres_replicas", &streaming) == Some(1.0)
            && value(b, "pg_replication_slots_active", &slot) == Some(1.0)
            && value(b, "pg_replication_is_replica", &on_primary) == Some(0.0)
            && value(b, "pg_replication_is_replica", &on_standby) == Some(1.0)
            && value(b, "perfwatch_postgres_wal_receiver_up", &on_standby) == Some(1.0)
            && value(b, "perfwatch_postgres_wal_receiver_up", &on_primary).is_none())
        .then_some(())
    })
    .await;

    // Replay paused, writes on the primary: the standby falls behind, in
    // bytes and in seconds.
    standby.psql("SELECT pg_wal_replay_pause()").unwrap();
    primary
        .psql("CREATE TABLE item AS SELECT g AS id FROM generate_series(1, 20000) g")
        .unwrap();
    let replay_lag = [("target", "primary"), ("lag", "replay")];
    let body = pw
        .wait_for(WAIT, "replay lag of 2 s and more", |b| {
            value(b, "perfwatch_postgres_replica_lag_seconds", &replay_lag)
                .filter(|s| *s >= 2.0)
                .map(|_| b.to_owned())
        })
        .await;
    let behind = value(&body, "pg_stat_replication_pg_wal_lsn_diff", &on_primary);
    assert!(behind.is_some_and(|b| b > 100_000.0), "behind: {behind:?}");
    // Replay resumed: caught up again.
    standby.psql("SELECT pg_wal_replay_resume()").unwrap();
    pw.wait_value(
        WAIT,
        "pg_stat_replication_pg_wal_lsn_diff",
        &on_primary,
        0.0,
    )
    .await;

    // The standby dies: the primary has no standby left and an inactive
    // slot that keeps WAL back.
    standby.kill().unwrap();
    pw.wait_for(WAIT, "the slot inactive and no standby streaming", |b| {
        (value(b, "pg_replication_slots_active", &slot) == Some(0.0)
            && value(b, "perfwatch_postgres_replicas", &streaming).is_none())
        .then_some(())
    })
    .await;
    pw.wait_up("replica", 0.0, WAIT).await;

    // The standby comes back, then the primary stops: the standby is up
    // and answering, but its receiver is not streaming.
    standby.restart().unwrap();
    pw.wait_value(WAIT, "perfwatch_postgres_wal_receiver_up", &on_standby, 1.0)
        .await;
    let mut primary = primary;
    primary.stop().unwrap();
    wait_broken_but_up(&pw, "perfwatch_postgres_wal_receiver_up").await;
    pw.stop().await;
}

#[tokio::test]
async fn mariadb_lag_and_broken_replication_show_on_the_replica() {
    let mut primary = start_db(&[("server_id", "1"), ("log_bin", "mysql-bin")]);
    primary
        .sql("CREATE DATABASE shop; CREATE TABLE shop.o (id INT PRIMARY KEY, at DATETIME)")
        .unwrap();
    let replica = start_db(&[("server_id", "2")]);
    replica.replicate_from(&primary).unwrap();
    let pw = watch_pair("mysql", "dsn", &primary.dsn(), &replica.dsn()).await;
    for thread in [
        "mysql_slave_status_slave_io_running",
        "mysql_slave_status_slave_sql_running",
    ] {
        pw.wait_value(WAIT, thread, &[("target", "replica")], 1.0)
            .await;
    }
    let behind = [("target", "replica")];
    let caught_up = || {
        pw.wait_value(
            WAIT,
            "mysql_slave_status_seconds_behind_master",
            &behind,
            0.0,
        )
    };
    caught_up().await;

    // A session on the replica holds the table the replicated inserts go
    // to: the SQL thread waits, and falls behind by the second.
    let mut holder = sqlx::mysql::MySqlConnection::connect(&replica.dsn())
        .await
        .unwrap();
    holder.execute("LOCK TABLES shop.o WRITE").await.unwrap();
    primary
        .sql("INSERT INTO shop.o VALUES (1, now()); DO SLEEP(1); INSERT INTO shop.o VALUES (2, now())")
        .unwrap();
    pw.wait_for(WAIT, "the replica 3 s and more behind", |b| {
        value(b, "mysql_slave_status_seconds_behind_master", &behind).filter(|s| *s >= 3.0)
    })
    .await;
    holder.execute("UNLOCK TABLES").await.unwrap();
    caught_up().await;

    // The primary dies: the replica's I/O thread stops running (it keeps
    // retrying to connect), the replica itself stays up.
    primary.kill().unwrap();
    let body = wait_broken_but_up(&pw, "mysql_slave_status_slave_io_running").await;
    assert_eq!(
        value(&body, "mysql_slave_status_slave_sql_running", &behind),
        Some(1.0)
    );
    pw.stop().await;
}

#[tokio::test]
async fn redis_lag_and_broken_replication_show() {
    let mut primary = start_redis(&[("repl-ping-replica-period", "1")]);
    let replica = primary.start_replica(&[]).unwrap_or_else(|e| panic!("{e}"));
    let pw = watch_pair("redis", "url", &primary.url(), &replica.url()).await;
    let (on_primary, on_replica) = ([("target", "primary")], [("target", "replica")]);
    pw.wait_for(WAIT, "the replica linked, as both sides see it", |b| {
        (value(b, "redis_connected_slaves", &on_primary) == Some(1.0)
            && value(b, "redis_master_link_up", &on_replica) == Some(1.0))
        .then_some(())
    })
    .await;

    // A frozen replica stops acknowledging: the primary sees its age grow.
    replica.pause().unwrap();
    pw.wait_for(WAIT, "an acknowledgement 3 s old and more", |b| {
        value(b, "redis_connected_slave_lag_seconds", &on_primary).filter(|s| *s >= 3.0)
    })
    .await;
    replica.resume().unwrap();
    pw.wait_for(WAIT, "acknowledgements again", |b| {
        value(b, "redis_connected_slave_lag_seconds", &on_primary).filter(|s| *s <= 1.0)
    })
    .await;

    // The primary dies: the replica is up, its link is down.
    primary.kill().unwrap();
    wait_broken_but_up(&pw, "redis_master_link_up").await;
    pw.stop().await;
}
