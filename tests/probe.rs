//! Fleet mode (issue 18): `GET /probe?target=…` against real, throwaway
//! servers started here, perfwatch in-process.
//!
//! - a probe answers the families a configured target of the same server
//!   has, on one kept connection, and never shows on `/metrics`;
//! - refused requests say why (400, 403, 404, 503);
//! - a SIGSTOPped backend times out within Prometheus' scrape timeout while
//!   probes of a healthy one answer at once; excess probes queue, and
//!   beyond the queue get 503 at once;
//! - cached backends are bounded, closed when idle and dropped on reload;
//! - PostgreSQL and MariaDB through auth sets, a wrong password reported
//!   as `auth` without showing it;
//! - a real Prometheus scrapes 20 Redis through one perfwatch with file_sd
//!   and the standard relabeling; one SIGSTOPped does not delay the others.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    Perfwatch, assert_value, blocking, poll_errors, promtool_check_metrics, sample, secret_file,
    start_db, start_pg_with_password_role, start_redis, value, wait_polls,
};
use perfwatch_testbench::{PrometheusServer, RedisCluster, RedisServer};

/// The scrape-timeout header Prometheus sends.
const TIMEOUT_HEADER: &str = "X-Prometheus-Scrape-Timeout-Seconds";

/// `s` percent-encoded for a query string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One probe: status, body and how long it took. `extra` is appended to
/// the query as written (`&auth_module=pg`); `timeout` is sent as
/// Prometheus' scrape-timeout header.
async fn probe(
    pw: &Perfwatch,
    target: &str,
    extra: &str,
    timeout: Option<&str>,
) -> (u16, String, Duration) {
    let path = format!("/probe?target={}{extra}", encode(target));
    let headers: Vec<(&str, &str)> = timeout.map(|t| (TIMEOUT_HEADER, t)).into_iter().collect();
    let started = Instant::now();
    let (status, body) = pw.get_with(&path, &headers).await;
    (status, body, started.elapsed())
}

/// A probe that must answer 200; its body and duration.
#[track_caller]
fn ok((status, body, took): (u16, String, Duration)) -> (String, Duration) {
    assert_eq!(status, 200, "{body}");
    (body, took)
}

/// The sample names (histogram series included) with `target="{target}"`.
fn sample_names(body: &str, target: &str) -> BTreeSet<String> {
    let label = format!("target=\"{target}\"");
    body.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&label))
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

/// `field` of `INFO section`, asked over a new connection of the harness
/// (which itself counts in `connected_clients`).
fn info(redis: &RedisServer, section: &str, field: &str) -> f64 {
    let text = redis.command(&["INFO", section]).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{text}"))
}

async fn start_redises(n: usize) -> Vec<RedisServer> {
    blocking(move || (0..n).map(|_| start_redis(&[])).collect()).await
}

/// The `perfwatch_probe*` sample `name{labels}` on `/metrics`.
async fn probe_stat(pw: &Perfwatch, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(&pw.scrape().await, name, labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_answers_what_a_configured_target_has_on_one_kept_connection() {
    let redis = start_redis(&[]);
    let pw = Perfwatch::start_fast(&format!(
        "[[redis]]\nname = \"cache\"\nurl = \"{}\"\n[probe]\n",
        redis.url()
    ))
    .await;
    let target = redis.url();
    // The configured target connected (once): from here on only probes
    // and the harness's INFO connect.
    wait_polls(&pw, "cache", 1.0, Duration::from_secs(10)).await;
    let connections = info(&redis, "stats", "total_connections_received");
    // Several probes some time apart, as Prometheus scrapes: the windowed
    // families need more than one observation.
    for _ in 0..3 {
        ok(probe(&pw, &target, "", None).await);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let (body, _) = ok(probe(&pw, &target, "", None).await);
    // 4 probes on one connection: the only other new one is this INFO's.
    let new = info(&redis, "stats", "total_connections_received") - connections;
    assert_eq!(new, 2.0, "connections opened by 4 probes and one INFO");

    let metrics = wait_polls(&pw, "cache", 3.0, Duration::from_secs(10)).await;
    let configured = sample_names(&metrics, "cache");
    let probed = sample_names(&body, &target);
    assert!(configured.len() > 40, "{configured:?}");
    assert_eq!(
        probed, configured,
        "a probe answers the families a configured target has, no more, no fewer"
    );
    for name in ["redis_up", "perfwatch_target_up"] {
        assert_eq!(
            value(&body, name, &[("target", &target)]),
            Some(1.0),
            "{name}"
        );
    }
    assert_eq!(
        sample(&body, "perfwatch_polls_total", &[("target", &target)]),
        4.0,
        "the backend keeps its state between probes"
    );
    // The same server: its run_id in both.
    let run_id = |body: &str, t: &str| {
        body.lines()
            .find(|l| {
                l.starts_with("redis_instance_info{") && l.contains(&format!("target=\"{t}\""))
            })
            .and_then(|l| l.split("run_id=\"").nth(1))
            .map(|r| r[..40].to_owned())
    };
    assert!(run_id(&body, &target).is_some());
    assert_eq!(run_id(&body, &target), run_id(&metrics, "cache"));
    promtool_check_metrics(&body);

    // Never on /metrics; only the probes' own counters are.
    assert!(
        !metrics.contains(&format!("\"{target}\"")),
        "a probed backend shows on /metrics"
    );
    for (outcome, want) in [("success", 4.0), ("error", 0.0), ("timeout", 0.0)] {
        let labels = [("kind", "redis"), ("outcome", outcome)];
        assert_eq!(
            sample(&metrics, "perfwatch_probes_total", &labels),
            want,
            "{outcome}"
        );
    }
    assert_eq!(
        sample(
            &metrics,
            "perfwatch_probe_duration_seconds_count",
            &[("kind", "redis")]
        ),
        4.0
    );
    assert_eq!(
        sample(&metrics, "perfwatch_probe_backends_cached", &[]),
        1.0
    );
    pw.stop().await;
}

/// A probe of a Redis Cluster node is that node alone (the cluster's other
/// nodes are probes of their own), as a `[[redis]]` target with
/// `cluster = false`; a configured target of the same node watches the
/// whole cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_of_a_cluster_node_is_that_node_alone() {
    let cluster = blocking(|| RedisCluster::start(3, 0).unwrap_or_else(|e| panic!("{e}"))).await;
    let node = cluster.nodes()[0].url();
    let pw = Perfwatch::start_fast(&format!(
        "[[redis]]\nname = \"whole\"\nurl = \"{node}\"\n[probe]\n"
    ))
    .await;
    let metrics = wait_polls(&pw, "whole", 1.0, Duration::from_secs(10)).await;
    assert_eq!(
        value(
            &metrics,
            "redis_cluster_known_nodes",
            &[("target", "whole")]
        ),
        Some(3.0)
    );
    let (body, _) = ok(probe(&pw, &node, "", None).await);
    let t = [("target", node.as_str())];
    assert_value(&body, "perfwatch_target_up", &t, Some(1.0));
    assert!(value(&body, "redis_connected_clients", &t).is_some());
    let cluster_families: Vec<String> = sample_names(&body, &node)
        .into_iter()
        .filter(|n| n.contains("cluster"))
        .collect();
    assert!(cluster_families.is_empty(), "{cluster_families:?}");
    pw.stop().await;
    drop(cluster);
}

#[tokio::test]
async fn refused_probes_say_why() {
    let pw = Perfwatch::start(
        "[probe]\nallow_targets = [\"127.0.0.1\", \"10.0.0.0/8\"]\n\
         [probe.auth.pg]\nkind = \"postgres\"\nusername = \"mon\"\n\
         [probe.auth.tls]\nkind = \"redis\"\n[probe.auth.tls.tls]\ninsecure_skip_verify = true\n",
    )
    .await;
    let cases: &[(&str, Option<&str>, u16, &str)] = &[
        ("", None, 400, "missing parameter \"target\""),
        (
            "target=redis://127.0.0.1:1&module=x",
            None,
            400,
            "unknown parameter \"module\" (known: target, auth_module, kind)",
        ),
        (
            "target=redis://127.0.0.1:1&target=redis://127.0.0.1:2",
            None,
            400,
            "parameter \"target\" is given twice",
        ),
        (
            "target=unix:///run/redis.sock",
            None,
            400,
            "unsupported scheme \"unix\"",
        ),
        (
            "target=http://127.0.0.1:80",
            None,
            400,
            "unsupported scheme \"http\" in target \"http://127.0.0.1:80\": fleet probes speak redis://",
        ),
        (
            "target=127.0.0.1:6379",
            None,
            400,
            "cannot tell the kind of target \"127.0.0.1:6379\"",
        ),
        (
            "target=127.0.0.1:6379&auth_module=nope",
            None,
            400,
            "unknown auth_module \"nope\" (configured: pg, tls)",
        ),
        (
            "target=redis://:hunter2@127.0.0.1:1",
            None,
            400,
            "carries credentials",
        ),
        (
            "target=redis://127.0.0.1:1&auth_module=pg",
            None,
            400,
            "auth module \"pg\" is for postgres targets",
        ),
        (
            "target=redis://127.0.0.1:1&kind=mysql",
            None,
            400,
            "is a redis url but kind=mysql",
        ),
        (
            "target=redis://127.0.0.1:0",
            None,
            400,
            "port \"0\" is not a number 1-65535",
        ),
        (
            "target=postgres%3A%2F%2F127.0.0.1%3A5432%2Fapp%3Fsslrootcert%3D%2Fetc%2Fpasswd&auth_module=pg",
            None,
            400,
            "postgres targets take no parameter \"sslrootcert\" (only sslmode)",
        ),
        (
            "target=mysql://127.0.0.1:3306",
            None,
            400,
            "a mysql target needs an auth_module with a username",
        ),
        // The kind's own validation, as for a config table.
        (
            "target=redis://127.0.0.1:1&auth_module=tls",
            None,
            400,
            "redis target \"redis://127.0.0.1:1\": tls: a tls table applies to rediss:// urls only",
        ),
        (
            "target=redis://127.0.0.1:1",
            Some("soon"),
            400,
            "x-prometheus-scrape-timeout-seconds \"soon\" is not a number of seconds",
        ),
        (
            "target=redis://localhost:1",
            None,
            403,
            "host \"localhost\" of target \"redis://localhost:1\" is not in [probe] allow_targets",
        ),
        (
            "target=redis://192.168.1.1:6379",
            None,
            403,
            "not in [probe] allow_targets",
        ),
    ];
    for (query, timeout, status, want) in cases {
        let headers: Vec<(&str, &str)> = timeout.map(|t| (TIMEOUT_HEADER, t)).into_iter().collect();
        let (got, body) = pw.get_with(&format!("/probe?{query}"), &headers).await;
        assert_eq!(got, *status, "{query}: {body}");
        assert!(body.contains(want), "{query}: want {want:?}, got {body:?}");
        assert!(!body.contains("hunter2"), "{query}: {body}");
    }
    let metrics = pw.scrape().await;
    let rejected = |reason| {
        sample(
            &metrics,
            "perfwatch_probe_rejected_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(rejected("bad_request"), (cases.len() - 2) as f64);
    assert_eq!(rejected("not_allowed"), 2.0);
    assert_eq!(
        sample(&metrics, "perfwatch_probe_backends_cached", &[]),
        0.0
    );
    pw.stop().await;

    // Without a [probe] section there is no fleet mode, and /metrics has
    // none of its families.
    let pw = Perfwatch::start("[global]\n").await;
    let (status, body) = pw.get("/probe?target=redis://127.0.0.1:6379").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("fleet probes are off: add a [probe] section"),
        "{body}"
    );
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_backend_costs_only_its_own_probe() {
    let servers = start_redises(2).await;
    let (healthy, stopped) = (servers[0].url(), servers[1].url());
    let pw = Perfwatch::start("[probe]\ntimeout = \"5s\"\n").await;
    // Both with a kept connection first: the stopped one's probe then
    // hangs on a connection that is open.
    ok(probe(&pw, &healthy, "", None).await);
    ok(probe(&pw, &stopped, "", None).await);
    servers[1].pause().unwrap();

    // Prometheus' scrape timeout 2 s: the probe's deadline is 1.5 s
    // (timeout_offset 500 ms), and the reply comes before 2 s.
    for round in ["kept connection", "reconnect"] {
        let stuck = probe(&pw, &stopped, "", Some("2"));
        let others = async {
            let mut took = Vec::new();
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                took.push(ok(probe(&pw, &healthy, "", Some("2")).await).1);
            }
            took
        };
        let ((body, stuck_took), others) = tokio::join!(async { ok(stuck.await) }, others);
        assert!(
            (Duration::from_millis(1400)..Duration::from_millis(1950)).contains(&stuck_took),
            "{round}: the stopped backend's probe took {stuck_took:?}, not about 1.5 s"
        );
        for t in &others {
            assert!(
                *t < Duration::from_millis(500),
                "{round}: a healthy probe took {t:?} meanwhile: {others:?}"
            );
        }
        assert_eq!(
            value(&body, "redis_up", &[("target", &stopped)]),
            Some(0.0),
            "{body}"
        );
        assert_eq!(
            value(&body, "perfwatch_target_up", &[("target", &stopped)]),
            Some(0.0)
        );
        assert!(
            !body.contains("redis_connected_clients"),
            "numbers of a backend that did not answer: {body}"
        );
        let timeouts = if round == "reconnect" { 2.0 } else { 1.0 };
        assert_eq!(
            poll_errors(&body, &stopped, "timeout"),
            Some(timeouts),
            "{round}"
        );
    }

    servers[1].resume().unwrap();
    let (body, _) = ok(probe(&pw, &stopped, "", Some("2")).await);
    assert_eq!(
        value(&body, "redis_up", &[("target", &stopped)]),
        Some(1.0),
        "recovered: {body}"
    );
    let metrics = pw.scrape().await;
    let probes = |outcome| {
        sample(
            &metrics,
            "perfwatch_probes_total",
            &[("kind", "redis"), ("outcome", outcome)],
        )
    };
    assert_eq!(
        (probes("success"), probes("timeout"), probes("error")),
        (13.0, 2.0, 0.0)
    );
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_probes_wait_in_a_bounded_queue_and_beyond_it_get_503_at_once() {
    let servers = start_redises(2).await;
    let (healthy, stopped) = (servers[0].url(), servers[1].url());
    servers[1].pause().unwrap();
    let pw = Perfwatch::start("[probe]\nmax_concurrent = 1\nmax_queued = 1\n").await;
    // A holds the only slot until its deadline (2.5 s): its backend hangs
    // in the connect handshake. B waits for the slot; C finds the queue
    // full.
    let a = probe(&pw, &stopped, "", Some("3"));
    let b = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        probe(&pw, &healthy, "", Some("6")).await
    };
    let c = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let waiting = probe_stat(&pw, "perfwatch_probes_waiting", &[]).await;
        let in_flight = probe_stat(&pw, "perfwatch_probes_in_flight", &[]).await;
        (
            waiting,
            in_flight,
            probe(&pw, &healthy, "", Some("6")).await,
        )
    };
    let (a, b, (waiting, in_flight, c)) = tokio::join!(a, b, c);
    assert_eq!(
        (waiting, in_flight),
        (1.0, 1.0),
        "one probe polling, one waiting"
    );
    let (c_status, c_body, c_took) = c;
    assert_eq!(c_status, 503, "{c_body}");
    assert!(
        c_body.contains("all 1 fleet probe slots are taken (max_concurrent) and 1 probes wait for one (max_queued)"),
        "{c_body}"
    );
    assert!(c_took < Duration::from_millis(300), "503 after {c_took:?}");
    let (a_body, a_took) = ok(a);
    assert_eq!(
        poll_errors(&a_body, &stopped, "timeout"),
        Some(1.0),
        "{a_body}"
    );
    assert!(a_took < Duration::from_millis(2900), "{a_took:?}");
    // B got the slot when A gave it up, and answered within its own deadline.
    let (b_body, b_took) = ok(b);
    assert_eq!(
        value(&b_body, "redis_up", &[("target", &healthy)]),
        Some(1.0),
        "{b_body}"
    );
    assert!(
        b_took > Duration::from_millis(1500),
        "B did not wait for the slot: {b_took:?}"
    );
    let metrics = pw.scrape().await;
    assert_eq!(
        sample(
            &metrics,
            "perfwatch_probe_rejected_total",
            &[("reason", "concurrency")]
        ),
        1.0
    );
    assert_eq!(sample(&metrics, "perfwatch_probes_waiting", &[]), 0.0);
    assert_eq!(sample(&metrics, "perfwatch_probes_in_flight", &[]), 0.0);
    servers[1].resume().unwrap();
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_backends_are_bounded_closed_when_idle_and_dropped_on_reload() {
    let servers = start_redises(3).await;
    let probe_config = |idle: &str| {
        format!("[probe]\nmax_concurrent = 1\nmax_backends = 2\nidle_timeout = \"{idle}\"\n")
    };
    let pw = Perfwatch::start(&probe_config("3s")).await;
    // Clients of each server: the harness's own INFO connection, plus one
    // while perfwatch keeps the backend.
    let clients = |i: usize| info(&servers[i], "clients", "connected_clients");
    let wait_clients = async |i: usize, want: f64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while clients(i) != want {
            assert!(
                Instant::now() < deadline,
                "server {i}: {} clients, want {want}",
                clients(i)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    for (i, server) in servers.iter().enumerate().take(2) {
        ok(probe(&pw, &server.url(), "", None).await);
        wait_clients(i, 2.0).await;
    }
    // A third backend replaces the one probed least recently, closing it.
    ok(probe(&pw, &servers[2].url(), "", None).await);
    wait_clients(0, 1.0).await;
    assert_eq!((clients(1), clients(2)), (2.0, 2.0));
    let evicted = async |reason| {
        probe_stat(
            &pw,
            "perfwatch_probe_backends_evicted_total",
            &[("reason", reason)],
        )
        .await
    };
    assert_eq!(evicted("capacity").await, 1.0);
    assert_eq!(
        probe_stat(&pw, "perfwatch_probe_backends_cached", &[]).await,
        2.0
    );

    // Not probed for idle_timeout: closed.
    wait_clients(1, 1.0).await;
    wait_clients(2, 1.0).await;
    assert_eq!(evicted("idle").await, 2.0);
    assert_eq!(
        probe_stat(&pw, "perfwatch_probe_backends_cached", &[]).await,
        0.0
    );

    // A reload that changes [probe] drops the cached backends (they were
    // built with the old auth sets); one that removes it turns /probe off.
    ok(probe(&pw, &servers[0].url(), "", None).await);
    wait_clients(0, 2.0).await;
    std::fs::write(&pw.config_path, probe_config("1m")).unwrap();
    assert_eq!(pw.reload().await.0, 200);
    wait_clients(0, 1.0).await;
    assert_eq!(evicted("reload").await, 1.0);
    std::fs::write(&pw.config_path, "[global]\n").unwrap();
    assert_eq!(pw.reload().await.0, 200);
    let (status, _, _) = probe(&pw, &servers[0].url(), "", None).await;
    assert_eq!(status, 404);
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_mariadb_are_probed_with_auth_sets() {
    let pg = start_pg_with_password_role("mon", "s3cret", "IN ROLE pg_monitor").await;
    let db = blocking(|| {
        let db = start_db(&[]);
        db.sql(
            "CREATE USER 'mon'@'127.0.0.1' IDENTIFIED BY 's3cret';
             GRANT PROCESS, SLAVE MONITOR, BINLOG MONITOR ON *.* TO 'mon'@'127.0.0.1';",
        )
        .unwrap();
        db
    })
    .await;
    let (_dir, pw_file) = secret_file("s3cret");
    let pw = Perfwatch::start(&format!(
        "[probe]\n\
         [probe.auth.pg]\nkind = \"postgres\"\nusername = \"mon\"\npassword_file = \"{file}\"\n\
         [probe.auth.pg_wrong]\nkind = \"postgres\"\nusername = \"mon\"\npassword = \"not-the-one\"\n\
         [probe.auth.maria]\nkind = \"mysql\"\nusername = \"mon\"\npassword_file = \"{file}\"\n",
        file = pw_file.display()
    ))
    .await;
    // file_sd's host:port form: the kind comes from the auth set.
    let pg_target = format!("127.0.0.1:{}/postgres", pg.port());
    let (body, _) = ok(probe(&pw, &pg_target, "&auth_module=pg", Some("5")).await);
    let t = [("target", pg_target.as_str())];
    assert_eq!(value(&body, "pg_up", &t), Some(1.0), "{body}");
    assert_value(&body, "perfwatch_target_up", &t, Some(1.0));
    assert!(
        value(&body, "pg_settings_max_connections", &t).is_some_and(|v| v > 0.0),
        "{body}"
    );

    let (body, _) = ok(probe(&pw, &pg_target, "&auth_module=pg_wrong", Some("5")).await);
    assert_eq!(value(&body, "pg_up", &t), Some(0.0), "{body}");
    assert_eq!(poll_errors(&body, &pg_target, "auth"), Some(1.0), "{body}");
    assert!(
        !body.contains("not-the-one") && !body.contains("s3cret"),
        "{body}"
    );

    let maria_target = format!("mysql://127.0.0.1:{}", db.port());
    let (body, _) = ok(probe(&pw, &maria_target, "&auth_module=maria", Some("5")).await);
    let t = [("target", maria_target.as_str())];
    assert_eq!(value(&body, "mysql_up", &t), Some(1.0), "{body}");
    assert!(
        value(&body, "mysql_global_status_uptime", &t).is_some(),
        "{body}"
    );
    promtool_check_metrics(&body);
    let metrics = pw.scrape().await;
    let probes = |kind, outcome| {
        sample(
            &metrics,
            "perfwatch_probes_total",
            &[("kind", kind), ("outcome", outcome)],
        )
    };
    assert_eq!(
        (probes("postgres", "success"), probes("postgres", "error")),
        (1.0, 1.0)
    );
    assert_eq!(probes("mysql", "success"), 1.0);
    pw.stop().await;
}

/// Prometheus' scrape interval and timeout in the fleet test.
const FLEET_INTERVAL: &str = "2s";
const FLEET_TIMEOUT: &str = "1500ms";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_fleet_of_20_through_one_perfwatch_and_a_stopped_one_delays_none() {
    let servers = start_redises(20).await;
    let pw = Perfwatch::start("[probe]\n").await;
    let targets: Vec<String> = servers.iter().map(|s| s.url()).collect();
    let sd = serde_json::json!([{ "targets": targets, "labels": { "env": "test" } }]);
    // The standard multi-target relabeling: the discovered address becomes
    // the target parameter and the instance; perfwatch is scraped.
    let prom_config = format!(
        "global:\n  scrape_interval: {FLEET_INTERVAL}\n  scrape_timeout: {FLEET_TIMEOUT}\n\
         scrape_configs:\n\
         - job_name: redis-fleet\n  metrics_path: /probe\n  file_sd_configs:\n  - files: [fleet.json]\n\
         \x20 relabel_configs:\n\
         \x20 - source_labels: [__address__]\n    target_label: __param_target\n\
         \x20 - source_labels: [__param_target]\n    target_label: instance\n\
         \x20 - target_label: __address__\n    replacement: {}\n",
        pw.addr
    );
    let sd_text = sd.to_string();
    let prom = blocking(move || {
        PrometheusServer::start(&prom_config, &[("fleet.json", sd_text.as_str())])
            .unwrap_or_else(|e| panic!("{e}"))
    })
    .await;
    let query = |expr: String| {
        let samples = tokio::task::block_in_place(|| prom.query(&expr))
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        samples
            .into_iter()
            .map(|(labels, v)| (labels.get("instance").cloned().unwrap_or_default(), v))
            .collect::<Vec<_>>()
    };
    let wait = async |what: &str, expr: String, want: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = query(expr.clone());
            if got.len() == want {
                return got;
            }
            if Instant::now() > deadline {
                let targets = tokio::task::block_in_place(|| prom.targets());
                panic!(
                    "{what}: `{expr}` has {} series, want {want}: {got:?}\n{targets:#?}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    wait(
        "every backend up",
        "redis_up{job=\"redis-fleet\"} == 1".into(),
        20,
    )
    .await;
    // Instance per backend, and the probe's target label the same.
    let up = query("redis_up{job=\"redis-fleet\"}".into());
    let instances: BTreeSet<String> = up.iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(instances, targets.iter().cloned().collect());

    let stopped = targets[7].clone();
    servers[7].pause().unwrap();
    let stopped_at = Instant::now();
    wait(
        "the stopped backend down",
        format!("redis_up{{instance=\"{stopped}\"}} == 0"),
        1,
    )
    .await;
    // Three more scrapes of everything after the stop, then read the
    // window that lies wholly after it.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let window = format!("{}s", (stopped_at.elapsed().as_secs() - 1).min(6));
    let others = format!("job=\"redis-fleet\",instance!=\"{stopped}\"");
    // Every scrape answered: perfwatch reports the backend down in time.
    let scraped = query("up{job=\"redis-fleet\"} == 1".into());
    assert_eq!(scraped.len(), 20, "{scraped:?}");
    // The 19 others: up, fresh samples, and scrapes as fast as before.
    let healthy = query(format!(
        "min_over_time(redis_up{{{others}}}[{window}]) == 1"
    ));
    assert_eq!(healthy.len(), 19, "{healthy:?}");
    let fresh = query(format!(
        "time() - timestamp(redis_connected_clients{{{others}}}) < 5"
    ));
    assert_eq!(fresh.len(), 19, "{fresh:?}");
    let slowest = query(format!(
        "max(max_over_time(scrape_duration_seconds{{{others}}}[{window}]))"
    ));
    let stuck = query(format!(
        "min_over_time(scrape_duration_seconds{{instance=\"{stopped}\"}}[{window}])"
    ));
    let (slowest, stuck) = (slowest[0].1, stuck[0].1);
    eprintln!(
        "scrape durations after the stop: others at most {slowest:.3} s, the stopped one at least {stuck:.3} s"
    );
    assert!(
        (0.9..1.5).contains(&stuck),
        "the stopped backend's scrapes took {stuck} s (deadline 1 s)"
    );
    assert!(
        slowest < 0.5,
        "a healthy backend's scrape took {slowest} s while one was stopped"
    );
    servers[7].resume().unwrap();
    wait(
        "the stopped backend back",
        format!("redis_up{{instance=\"{stopped}\"}} == 1"),
        1,
    )
    .await;
    let metrics = pw.scrape().await;
    assert_eq!(
        sample(&metrics, "perfwatch_probe_backends_cached", &[]),
        20.0
    );
    assert!(
        value(
            &metrics,
            "perfwatch_probes_total",
            &[("kind", "redis"), ("outcome", "timeout")]
        )
        .is_some_and(|n| n >= 3.0)
    );
    drop(prom);
    pw.stop().await;
}

/// The `scrape_configs` of the fleet-mode docs (README and docs/scaling.md,
/// every YAML block with `metrics_path: /probe`), one job each.
fn documented_probe_jobs() -> Vec<(String, serde_yaml_ng::Value)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut jobs = Vec::new();
    for file in ["README.md", "docs/scaling.md"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        for block in text.split("```yaml\n").skip(1) {
            let block = block.split("```").next().unwrap();
            if !block.contains("metrics_path: /probe") {
                continue;
            }
            let yaml = if block.starts_with("scrape_configs:") {
                block.to_owned()
            } else {
                format!("scrape_configs:\n{block}")
            };
            let doc: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{file}: {e}\n{yaml}"));
            for job in doc["scrape_configs"].as_sequence().unwrap() {
                jobs.push((file.to_owned(), job.clone()));
            }
        }
    }
    jobs
}

/// The documented scrape configs, run by a real Prometheus: each file_sd
/// job makes the discovered address `?target=` and `instance`, and the
/// kubernetes_sd job keeps Redis pods only, naming StatefulSet pods by
/// their DNS name. Debian's Prometheus has no Kubernetes discovery, so its
/// pods come from a file_sd file carrying the `__meta_kubernetes_*` labels
/// the relabeling reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_scrape_configs_relabel_a_fleet_as_described() {
    use serde_yaml_ng::Value;
    let jobs = documented_probe_jobs();
    assert_eq!(jobs.len(), 3, "README and scaling.md's jobs: {jobs:?}");
    let mut config = Vec::new();
    for (i, (_, job)) in jobs.into_iter().enumerate() {
        let mut job = job.as_mapping().unwrap().clone();
        let kubernetes = job.remove("kubernetes_sd_configs").is_some();
        let file = if kubernetes {
            "pods.json"
        } else {
            "fleet.json"
        };
        let sd: Value = serde_yaml_ng::from_str(&format!("[{{files: [{file}]}}]")).unwrap();
        job.insert("file_sd_configs".into(), sd);
        let name = format!("{}-{i}", job["job_name"].as_str().unwrap());
        job.insert("job_name".into(), name.into());
        config.push(Value::Mapping(job));
    }
    let mut root = serde_yaml_ng::Mapping::new();
    root.insert(
        "global".into(),
        serde_yaml_ng::from_str("{scrape_interval: 1m}").unwrap(),
    );
    root.insert("scrape_configs".into(), Value::Sequence(config));
    let prom_config = serde_yaml_ng::to_string(&root).unwrap();
    let fleet = r#"[{"targets": ["10.0.0.5:6379"]}]"#;
    let pod = |address: &str, app: &str, name: &str, sts: Option<&str>| {
        let mut labels = serde_json::json!({
            "__meta_kubernetes_pod_label_app_kubernetes_io_name": app,
            "__meta_kubernetes_pod_container_port_name": "redis",
            "__meta_kubernetes_pod_container_port_number": "6379",
            "__meta_kubernetes_pod_name": name,
            "__meta_kubernetes_namespace": "shop",
        });
        if let Some(s) = sts {
            labels["__meta_kubernetes_pod_label_statefulset_kubernetes_io_pod_name"] = s.into();
        }
        serde_json::json!({ "targets": [address], "labels": labels })
    };
    let pods = serde_json::json!([
        pod("10.1.0.7:6379", "redis", "redis-0", Some("redis-0")),
        pod("10.1.0.8:6379", "redis", "cache-7d9f", None),
        pod("10.1.0.9:8080", "web", "web-1", None),
    ])
    .to_string();
    let prom = blocking(move || {
        PrometheusServer::start(
            &prom_config,
            &[("fleet.json", fleet), ("pods.json", pods.as_str())],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let targets = loop {
        let t = tokio::task::block_in_place(|| prom.targets()).unwrap();
        if t.len() >= 4 || Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut seen: Vec<(String, String, String)> = targets
        .iter()
        .map(|t| {
            let l = |k: &str| t.labels.get(k).cloned().unwrap_or_default();
            let query = t
                .scrape_url
                .split_once('?')
                .map(|(_, q)| q.to_owned())
                .unwrap_or_default();
            assert!(t.scrape_url.contains(":9896/probe?"), "{t:?}");
            (
                l("instance"),
                format!("{}/{}", l("namespace"), l("pod")),
                query,
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "10.0.0.5:6379".into(),
                "/".into(),
                "auth_module=cache&target=10.0.0.5%3A6379".into()
            ),
            (
                "10.0.0.5:6379".into(),
                "/".into(),
                "auth_module=cache&target=10.0.0.5%3A6379".into()
            ),
            (
                "10.1.0.8:6379".into(),
                "shop/cache-7d9f".into(),
                "auth_module=cache&target=10.1.0.8%3A6379".into()
            ),
            (
                "redis-0.redis.shop.svc:6379".into(),
                "shop/redis-0".into(),
                "auth_module=cache&target=redis-0.redis.shop.svc%3A6379".into()
            ),
        ]
    );
}
