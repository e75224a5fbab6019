//! End to end (issue 6): perfwatch → Prometheus → Alertmanager → webhook, with
//! the repository's own alert rules, dashboards and example configs.
//!
//! Everything runs on 127.0.0.1 with ports chosen at start: Redis (and, for
//! the coverage test, PostgreSQL, PgBouncer and MariaDB) from the harness,
//! perfwatch in-process (`tests/common`), a webhook receiver (axum) that
//! records Alertmanager's notifications, and Prometheus and Alertmanager from
//! the Debian packages (`apt-get install prometheus prometheus-alertmanager`).
//!
//! What is tested is the real thing:
//! - Prometheus and Alertmanager run `deploy/prometheus/prometheus.yml` and
//!   `deploy/alertmanager/alertmanager.yml`, rendered by `perfwatch_testbench::deploy`, which
//!   replaces a few literal lines (addresses, intervals) and fails if one of
//!   them is missing or duplicated;
//! - the alert test runs a variant of `alerts/perfwatch.rules.yml` made by
//!   [`deploy::rules_fast_variant`] (shorter `for:` and ratio window, nothing else);
//!   the coverage test runs the file unchanged;
//! - the dashboards' queries come from `tests/support_dashboards`.
//!
//! Tests:
//! - [`cache_hit_ratio_low_fires_resolves_and_target_down_reaches_the_webhook`]:
//!   the alert pipeline, about one minute: each alert reaches the receiver of
//!   its severity, with its runbook link under the test's base, and
//!   stopping perfwatch itself fires `PerfwatchDown`.
//! - [`example_alertmanager_inhibits_what_each_inhibit_rule_names`], with
//!   alerts posted to a real Alertmanager running the example config: which
//!   ones it suppresses and where it sends the others.
//! - [`rule_metrics_and_dashboard_queries_have_data_with_every_collector`]:
//!   every metric name in the rules exists in Prometheus, and every dashboard
//!   panel query returns a series, with every collector kind running.
//! - fast checks of the rule transform, the metric-name extractor and the
//!   example configs (`amtool config routes test`: every alert of the rules
//!   reaches the receiver of its severity).

mod common;
mod support_commands;
mod support_dashboards;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Perfwatch, blocking};
use perfwatch_testbench::deploy::{
    self, ALERTMANAGER_EXAMPLE, ALERTMANAGER_EXAMPLE_FILE, FAST_FOR, JOB, RECEIVER_BY_SEVERITY,
    RULES_FILE, RULES_IN_PROMETHEUS, alertmanager_config, prometheus_config, rewrite_for_line,
    rules_fast_variant, rules_with_runbook_base,
};
use perfwatch_testbench::workload::{
    CacheTarget, CacheWorkload, DbWorkload, Mode, fill_redis_until_oom, seed_mariadb, seed_postgres,
};
use perfwatch_testbench::{
    AlertWebhook, AlertmanagerServer, DeliveredAlert, MariaDbServer, PgbouncerServer,
    PostgresServer, PrometheusLabels, PrometheusServer, RedisCluster, RedisSentinel, RedisServer,
    SampleApp, find_binary, free_port,
};
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};
use support_commands::stdout_ok;

/// The real alert rules (compiled into the library from
/// `alerts/perfwatch.rules.yml`).
fn real_rules() -> String {
    deploy::RULES.to_owned()
}

/// Where the alert test's runbook links point (any base will do: nothing
/// fetches it, the test checks the delivered link).
const RUNBOOK_BASE: &str = "https://runbooks.example.test/perfwatch/runbooks.md";

/// The receiver [`ALERTMANAGER_EXAMPLE`] routes `severity` to.
fn receiver_of(severity: &str) -> &'static str {
    RECEIVER_BY_SEVERITY
        .iter()
        .find(|(s, _)| *s == severity)
        .map(|(_, r)| *r)
        .unwrap_or_else(|| panic!("no receiver for severity {severity}"))
}

// ---------------------------------------------------------------------------
// Metric names referenced by PromQL
// ---------------------------------------------------------------------------

/// Names Prometheus synthesizes itself; a rule may use them without any
/// exporter providing them.
const SYNTHETIC_METRICS: &[&str] = &["ALERTS", "ALERTS_FOR_STATE"];

/// The metric names `expr` selects, by parsing it with the PromQL parser
/// (`promql-parser`, the same one perfwatch's phase triggers use) and walking
/// the syntax tree: the name of every vector and matrix selector, in
/// functions, aggregations, binary operations, subqueries and offsets, plus
/// `{__name__="x"}` matchers. Function names, keywords (`by`, `on`,
/// `group_left`, `offset`, `bool`, ...), label names and string literals are
/// never metric names in the tree, so nothing has to be filtered by hand.
/// Regex `__name__` matchers select no single name and are skipped.
fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    fn walk(e: &Expr, out: &mut BTreeSet<String>) {
        match e {
            Expr::Aggregate(a) => {
                walk(&a.expr, out);
                if let Some(p) = &a.param {
                    walk(p, out);
                }
            }
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::VectorSelector(vs) => selector(vs, out),
            Expr::MatrixSelector(ms) => selector(&ms.vs, out),
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    fn selector(vs: &parser::VectorSelector, out: &mut BTreeSet<String>) {
        if let Some(name) = &vs.name {
            out.insert(name.clone());
        }
        for m in &vs.matchers.matchers {
            if m.name == "__name__" && matches!(m.op, MatchOp::Equal) {
                out.insert(m.value.clone());
            }
        }
    }
    let ast = parser::parse(expr)?;
    let mut out = BTreeSet::new();
    walk(&ast, &mut out);
    Ok(out)
}

/// Whether a referenced name must come from a scrape: not a recording rule's
/// output (by convention `level:metric:operations`, so it has a `:`) and not
/// synthesized by Prometheus.
fn must_be_scraped(name: &str) -> bool {
    !name.contains(':') && !SYNTHETIC_METRICS.contains(&name)
}

/// For an error message: the family a histogram or summary series belongs to.
fn family_hint(name: &str) -> String {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .map(|family| format!(" (a series of histogram/summary family `{family}`)"))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Webhook receiver
// ---------------------------------------------------------------------------

/// A delivered alert has `severity`, came through the example's receiver of
/// that severity, and links to its runbook section under [`RUNBOOK_BASE`].
fn assert_routed_with_runbook(alert: &DeliveredAlert, severity: &str) {
    assert_eq!(label(alert, "severity"), Some(severity), "{alert:?}");
    assert_eq!(alert.receiver, receiver_of(severity), "{alert:?}");
    let anchor = label(alert, "alertname").unwrap_or_default().to_lowercase();
    assert_eq!(
        alert.annotations.get("runbook_url"),
        Some(&format!("{RUNBOOK_BASE}#{anchor}")),
        "{alert:?}"
    );
}

/// Label `name` of a delivered alert.
fn label<'a>(alert: &'a DeliveredAlert, name: &str) -> Option<&'a str> {
    alert.labels.get(name).map(String::as_str)
}

/// Waits for `alertname` with `status` whose label `key.0` is `key.1`
/// (`("target", "cache")`) at `hook`; on timeout, panics with everything
/// delivered so far and what Prometheus and Alertmanager hold.
async fn wait_notification(
    hook: &AlertWebhook,
    timeout: Duration,
    alertname: &str,
    status: &str,
    key: (&str, &str),
    prom: &PrometheusServer,
    am: &AlertmanagerServer,
) -> DeliveredAlert {
    let deadline = Instant::now() + timeout;
    let (key_name, key_value) = key;
    loop {
        let found = hook.delivered().into_iter().find(|d| {
            d.status == status
                && label(d, "alertname") == Some(alertname)
                && label(d, key_name) == Some(key_value)
        });
        if let Some(d) = found {
            return d;
        }
        if Instant::now() > deadline {
            let prom_alerts = tokio::task::block_in_place(|| prom.alerts());
            let am_alerts = tokio::task::block_in_place(|| am.alerts());
            panic!(
                "no `{status}` notification of {alertname} with {key_name}={key_value} reached \
                     the webhook within {timeout:?}.\ndelivered: {:#?}\nPrometheus alerts: \
                     {prom_alerts:#?}\nAlertmanager alerts: {am_alerts:#?}\nPrometheus log:\n{}\n\
                     Alertmanager log:\n{}",
                hook.delivered(),
                prom.log_tail(),
                am.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// Prometheus helpers
// ---------------------------------------------------------------------------

/// Runs `expr` until it returns a sample, or panics after `timeout` with the
/// last answer, the targets and the log.
async fn wait_query(
    prom: &PrometheusServer,
    timeout: Duration,
    what: &str,
    expr: &str,
) -> Vec<(PrometheusLabels, f64)> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = tokio::task::block_in_place(|| prom.query(expr));
        if let Ok(samples) = &got
            && !samples.is_empty()
        {
            return samples.clone();
        }
        if Instant::now() > deadline {
            let targets = tokio::task::block_in_place(|| prom.targets());
            panic!(
                "timed out after {timeout:?} waiting for {what} (`{expr}`); last answer: {got:?}\n\
                 targets: {targets:#?}\nPrometheus log:\n{}",
                prom.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until Prometheus scraped the perfwatch target successfully.
async fn wait_scraped(prom: &PrometheusServer) {
    wait_query(
        prom,
        Duration::from_secs(30),
        "a successful scrape of perfwatch",
        &format!("up{{job=\"{JOB}\"}} == 1"),
    )
    .await;
}

/// Waits until Alertmanager holds `alertname` for `target` in `state`
/// (`active`, `suppressed`), or panics after 30 s with what it holds.
async fn wait_alertmanager_state(
    am: &AlertmanagerServer,
    alertname: &str,
    target: &str,
    state: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = tokio::task::block_in_place(|| am.alerts()).unwrap();
        let found = held.iter().find(|a| {
            a.labels.get("alertname").map(String::as_str) == Some(alertname)
                && a.labels.get("target").map(String::as_str) == Some(target)
        });
        if found.is_some_and(|a| a.state == state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager does not hold {alertname} for {target} as {state}: {held:#?}\nlog:\n{}",
            am.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until Prometheus has no pending or firing `alertname`.
async fn wait_prometheus_quiet(prom: &PrometheusServer, alertname: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let alerts = tokio::task::block_in_place(|| prom.alerts()).unwrap();
        if !alerts
            .iter()
            .any(|a| a.labels.get("alertname").map(String::as_str) == Some(alertname))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{alertname} still active in Prometheus after {timeout:?}: {alerts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn start_or_panic<T>(r: Result<T, perfwatch_testbench::HarnessError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Starts a server off the async runtime and readies it in the same
/// blocking call (`prepare`: seed its schema, push a queue, open a pool);
/// panics with the harness's reason if either step fails.
async fn start_prepared<S: Send + 'static>(
    start: impl FnOnce() -> Result<S, perfwatch_testbench::HarnessError> + Send + 'static,
    prepare: impl FnOnce(&S) -> Result<(), perfwatch_testbench::HarnessError> + Send + 'static,
) -> S {
    start_or_panic(
        blocking(move || {
            let server = start()?;
            prepare(&server)?;
            Ok(server)
        })
        .await,
    )
}

// ---------------------------------------------------------------------------
// The alert pipeline
// ---------------------------------------------------------------------------

/// Redis → perfwatch (1 s polls) → Prometheus (1 s scrapes and evaluations,
/// the rules' test variant) → Alertmanager (1 s group wait/interval) → the
/// webhook.
///
/// Timing of the ratio, with perfwatch's 1m window (the variant's
/// `window="1m"`): the warm phase runs only until Prometheus has seen the
/// ratio above 0.9 (a few seconds, W ≈ 5 s of 1 000 lookups/s at 0.95), then
/// the cold phase does 10 000 lookups/s at 0.10, so after x seconds the
/// window holds (950·W + 1 000·x) hits over (1 000·W + 10 000·x) lookups:
/// below 0.70 after 0.2·W s and below 0.5 after 0.6·W s, i.e. within about
/// one poll: CacheHitRatioLow, then CacheHitRatioCritical, which inhibits
/// it in Alertmanager. The recovery phase does 50 000 hits/s: after C seconds
/// of cold traffic the ratio is back above 0.70 after about 0.4·C s (and the cold
/// lookups leave the window entirely after 60 s at worst). Each transition
/// then needs a poll (1 s), a scrape (1 s), `for` (2 s), an evaluation (1 s),
/// Prometheus' alertmanager discovery (up to 5 s, first time only) and
/// `group_wait`/`group_interval` (1 s): the whole test takes about a minute;
/// the timeouts below are several times that per step.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_hit_ratio_low_fires_resolves_and_target_down_reaches_the_webhook() {
    let rules = rules_fast_variant(&rules_with_runbook_base(&real_rules(), RUNBOOK_BASE));
    let mut redis = start_or_panic(blocking(|| RedisServer::start(&[])).await);
    let mut workload = CacheWorkload::start(CacheTarget::Redis(redis.url()), Mode::Warm);
    let pw = Perfwatch::start(&format!(
        "[global]\ninterval = \"1s\"\ntimeout = \"800ms\"\n[[redis]]\nname = \"cache\"\nurl = \"{}\"\n",
        redis.url()
    ))
    .await;
    let hook = AlertWebhook::start().await.unwrap();
    let am_config = alertmanager_config(hook.url());
    let am = start_or_panic(blocking(move || AlertmanagerServer::start(&am_config)).await);
    let prom_config = prometheus_config(pw.addr, am.port());
    let prom = start_or_panic(
        blocking(move || {
            PrometheusServer::start(&prom_config, &[(RULES_IN_PROMETHEUS, rules.as_str())])
        })
        .await,
    );

    // The variant loaded with both alerts the test drives.
    let loaded = tokio::task::block_in_place(|| prom.rules()).unwrap();
    for name in ["CacheHitRatioLow", "PerfwatchTargetDown", "PerfwatchDown"] {
        let rule = loaded
            .iter()
            .find(|r| r.name == name && r.kind == "alerting")
            .unwrap_or_else(|| panic!("{RULES_FILE} has no alerting rule {name}: {loaded:#?}"));
        if name == "CacheHitRatioLow" {
            assert!(
                rule.query.contains("window=\"1m\""),
                "the test variant must use the 1m window: {}",
                rule.query
            );
        }
    }
    wait_scraped(&prom).await;

    // Warm: above 0.9 as Prometheus sees it, and no alert.
    let ratio = r#"perfwatch_cache_hit_ratio{target="cache",window="1m"}"#;
    // Waits (30 s at most) until Prometheus sees the ratio `cmp` (`> 0.9`).
    let wait_ratio = async |what: &str, cmp: &str| {
        let expr = format!("{ratio} {cmp}");
        wait_query(&prom, Duration::from_secs(30), what, &expr).await
    };
    wait_ratio("a warm hit ratio", "> 0.9").await;
    assert!(
        hook.find("CacheHitRatioLow", "firing", "cache").is_none(),
        "CacheHitRatioLow fired during the warm phase: {:#?}",
        hook.delivered()
    );

    // Cold: below 0.5 → CacheHitRatioCritical fires and reaches the critical
    // receiver. CacheHitRatioLow fires too (below 0.70, a poll or two
    // earlier, so its own notification may or may not get out first); while
    // the critical one fires, the example config's inhibit rule holds it.
    workload.set(Mode::Cold);
    wait_ratio("a cold hit ratio", "< 0.5").await;
    // Notifications about target `cache`, waited for at most `secs`.
    let (h, p, a) = (&hook, &prom, &am);
    let notified = move |secs: u64, alertname: &'static str, status: &'static str| {
        wait_notification(
            h,
            Duration::from_secs(secs),
            alertname,
            status,
            ("target", "cache"),
            p,
            a,
        )
    };
    let firing = notified(60, "CacheHitRatioCritical", "firing").await;
    assert_routed_with_runbook(&firing, "critical");
    wait_alertmanager_state(&am, "CacheHitRatioLow", "cache", "suppressed").await;

    // Recovery: mostly hits again → a resolved notification, then the
    // warning clears too.
    workload.set(Mode::Recover);
    let resolved = notified(90, "CacheHitRatioCritical", "resolved").await;
    assert!(resolved.at >= firing.at, "{resolved:?} before {firing:?}");
    let now = tokio::task::block_in_place(|| prom.query(ratio)).unwrap();
    assert!(
        now.iter().all(|(_, v)| *v >= 0.50),
        "resolved while the ratio is {now:?}"
    );
    wait_prometheus_quiet(&prom, "CacheHitRatioLow", Duration::from_secs(90)).await;
    let now = tokio::task::block_in_place(|| prom.query(ratio)).unwrap();
    assert!(
        now.iter().all(|(_, v)| *v >= 0.70),
        "CacheHitRatioLow cleared while the ratio is {now:?}"
    );
    // If the warning got out (before the critical one fired, or between the
    // two thresholds on the way back), it went to the warning receiver and
    // its resolution follows.
    if let Some(warning) = hook.find("CacheHitRatioLow", "firing", "cache") {
        assert_routed_with_runbook(&warning, "warning");
        notified(60, "CacheHitRatioLow", "resolved").await;
    }
    workload.stop();

    // Redis killed → PerfwatchTargetDown reaches the webhook.
    tokio::task::block_in_place(|| redis.kill()).unwrap();
    let down = notified(60, "PerfwatchTargetDown", "firing").await;
    assert_routed_with_runbook(&down, "critical");
    assert_eq!(label(&down, "collector"), Some("redis"), "{down:?}");

    // And back: resolved once perfwatch polls the restarted Redis.
    tokio::task::block_in_place(|| redis.restart()).unwrap();
    notified(60, "PerfwatchTargetDown", "resolved").await;
    assert!(!hook.raw().is_empty(), "notifications were recorded");

    // perfwatch itself stops: Prometheus' scrapes fail and the only instance
    // of the job is down, the one alert that can still say so.
    pw.stop().await;
    let pw_down = wait_notification(
        &hook,
        Duration::from_secs(60),
        "PerfwatchDown",
        "firing",
        ("job", JOB),
        &prom,
        &am,
    )
    .await;
    assert_routed_with_runbook(&pw_down, "critical");
}

// ---------------------------------------------------------------------------
// The example Alertmanager config: inhibition and routing
// ---------------------------------------------------------------------------

fn amtool() -> std::path::PathBuf {
    find_binary("amtool", "prometheus-alertmanager").unwrap_or_else(|e| panic!("{e}"))
}

/// The YAML document of the rules or the Alertmanager example.
fn yaml_doc(name: &str, text: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `(alertname, severity)` of every alerting rule of the real rules file.
fn alert_severities() -> BTreeSet<(String, String)> {
    let doc = yaml_doc(RULES_FILE, deploy::RULES);
    let mut out = BTreeSet::new();
    for group in doc["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            if let Some(alert) = rule["alert"].as_str() {
                let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
                out.insert((alert.to_owned(), severity.to_owned()));
            }
        }
    }
    assert!(!out.is_empty(), "no alert in {RULES_FILE}");
    out
}

/// An alert as `amtool alert add` takes it: `name=value` labels.
type PostedAlert = Vec<(String, String)>;

/// `"<alertname> <severity> name=value ..."` as labels.
fn posted(spec: &str) -> PostedAlert {
    let mut words = spec.split_whitespace();
    let mut labels = vec![
        (
            "alertname".to_owned(),
            words.next().expect("alertname").to_owned(),
        ),
        (
            "severity".to_owned(),
            words.next().expect("severity").to_owned(),
        ),
    ];
    labels.extend(words.map(|w| {
        let (k, v) = w.split_once('=').expect("name=value");
        (k.to_owned(), v.to_owned())
    }));
    labels
}

/// One inhibit rule of the example at work: while `source` fires, `inhibited`
/// is suppressed and `control` (the same alert with another value of an
/// `equal` label, or nothing for a rule without `equal`) is not.
struct InhibitCase {
    source: PostedAlert,
    inhibited: Vec<PostedAlert>,
    control: Option<PostedAlert>,
}

/// One case per inhibit rule of `deploy/alertmanager/alertmanager.yml`, in
/// its order: source, inhibited alerts, control (see [`posted`]). Each case
/// uses its own targets, so that no rule of another case reaches into it
/// (PerfwatchTargetDown inhibits everything of its target).
const INHIBIT_CASES: &[(&str, &[&str], Option<&str>)] = &[
    (
        "PerfwatchTargetDown critical collector=redis target=down",
        &[
            "CacheHitRatioLow warning target=down",
            "PerfwatchPollsStale warning collector=redis target=down",
        ],
        Some("CacheHitRatioLow warning target=up"),
    ),
    (
        "PerfwatchAbsent critical",
        &["PerfwatchDown warning job=perfwatch-sidecar"],
        None,
    ),
    (
        "CacheHitRatioCritical critical target=app key_prefix=stats",
        &["CacheHitRatioLow warning target=app key_prefix=stats"],
        Some("CacheHitRatioLow warning target=app key_prefix=drivers"),
    ),
    (
        "DatabaseConnectionsNearMax critical source=postgres target=pg",
        &["PoolSaturationHigh warning source=postgres target=pg"],
        Some("PoolSaturationHigh warning source=app target=pg"),
    ),
    (
        "AppHealthCheckFailing critical target=api",
        &["AppHealthCheckFailing warning target=api check=redis"],
        Some("AppHealthCheckFailing warning target=admin check=redis"),
    ),
    (
        "RedisRejectedWrites critical target=full",
        &[
            "RedisNoEvictionNearLimit warning target=full",
            "RedisMemoryNearLimit warning target=full",
        ],
        Some("RedisMemoryNearLimit warning target=other-full"),
    ),
    (
        "RedisNoEvictionNearLimit warning target=queue",
        &["RedisMemoryNearLimit warning target=queue"],
        Some("RedisMemoryNearLimit warning target=sessions"),
    ),
    (
        "RedisRejectedConnections critical target=busy",
        &["RedisClientsNearMax warning target=busy"],
        Some("RedisClientsNearMax warning target=calm"),
    ),
];

fn inhibit_cases() -> Vec<InhibitCase> {
    INHIBIT_CASES
        .iter()
        .map(|(source, inhibited, control)| InhibitCase {
            source: posted(source),
            inhibited: inhibited.iter().map(|i| posted(i)).collect(),
            control: control.map(posted),
        })
        .collect()
}

/// Posts alerts to Alertmanager with `amtool alert add` (no end time:
/// Alertmanager keeps them firing for its resolve_timeout, 5 minutes).
fn post_alerts(am: &AlertmanagerServer, alerts: &[&PostedAlert]) {
    for a in alerts {
        stdout_ok(
            Command::new(amtool())
                .arg("alert")
                .arg("add")
                .arg(format!("--alertmanager.url={}", am.url()))
                .args(a.iter().map(|(k, v)| format!("{k}={v}")))
                .arg("--annotation=summary=posted by tests/e2e.rs"),
        );
    }
}

/// Whether Alertmanager's alert has exactly the labels of `posted`.
fn is_posted(labels: &BTreeMap<String, String>, posted: &PostedAlert) -> bool {
    labels.len() == posted.len() && posted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Every inhibit rule of the example config, run by a real Alertmanager:
/// the sources are posted first (as Prometheus would send them while they
/// fire), then the alerts they should inhibit and the controls. Checked:
/// Alertmanager reports each inhibited alert as suppressed and each control
/// as active; the webhook receives the controls and the sources, each from
/// the receiver of its severity, and never an inhibited alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_alertmanager_inhibits_what_each_inhibit_rule_names() {
    let cases = inhibit_cases();
    let rules_in_example =
        yaml_doc(ALERTMANAGER_EXAMPLE_FILE, ALERTMANAGER_EXAMPLE)["inhibit_rules"]
            .as_sequence()
            .map_or(0, Vec::len);
    assert_eq!(
        cases.len(),
        rules_in_example,
        "one case per inhibit rule of {ALERTMANAGER_EXAMPLE_FILE}: add a case for a new rule"
    );
    let alerts: BTreeSet<String> = alert_severities().into_iter().map(|(a, _)| a).collect();
    let mut posted: Vec<&PostedAlert> = Vec::new();
    for c in &cases {
        posted.push(&c.source);
        posted.extend(&c.inhibited);
        posted.extend(&c.control);
    }
    for a in &posted {
        let name = &a[0].1;
        assert!(alerts.contains(name), "{name} is no alert of {RULES_FILE}");
    }

    let hook = AlertWebhook::start().await.unwrap();
    let config = alertmanager_config(hook.url());
    let am = start_or_panic(blocking(move || AlertmanagerServer::start(&config)).await);
    let sources: Vec<&PostedAlert> = cases.iter().map(|c| &c.source).collect();
    tokio::task::block_in_place(|| post_alerts(&am, &sources));
    // The inhibitor only knows sources Alertmanager has taken in.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = tokio::task::block_in_place(|| am.alerts()).unwrap();
        if sources
            .iter()
            .all(|s| held.iter().any(|h| is_posted(&h.labels, s)))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager does not hold the sources: {held:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rest: Vec<&PostedAlert> = posted
        .iter()
        .copied()
        .filter(|a| !sources.contains(a))
        .collect();
    tokio::task::block_in_place(|| post_alerts(&am, &rest));

    // Everything not inhibited reaches the webhook (group_wait 1 s).
    let expected: Vec<&PostedAlert> = cases
        .iter()
        .flat_map(|c| std::iter::once(&c.source).chain(&c.control))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let delivered = loop {
        let delivered = hook.delivered();
        let all_there = expected
            .iter()
            .all(|e| delivered.iter().any(|d| is_posted(&d.labels, e)));
        if all_there {
            break delivered;
        }
        assert!(
            Instant::now() < deadline,
            "not every source and control reached the webhook: {delivered:#?}\nAlertmanager log:\n{}",
            am.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Give an inhibited alert that slipped through the same group time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let delivered: Vec<DeliveredAlert> = delivered.into_iter().chain(hook.delivered()).collect();
    let held = tokio::task::block_in_place(|| am.alerts()).unwrap();
    let mut problems = Vec::new();
    for c in &cases {
        for i in &c.inhibited {
            if delivered.iter().any(|d| is_posted(&d.labels, i)) {
                problems.push(format!("{i:?} was delivered while {:?} fired", c.source));
            }
            match held.iter().find(|h| is_posted(&h.labels, i)) {
                Some(h) if h.state == "suppressed" => {}
                other => problems.push(format!("{i:?} is not suppressed: {other:?}")),
            }
        }
        for e in std::iter::once(&c.source).chain(&c.control) {
            match held.iter().find(|h| is_posted(&h.labels, e)) {
                Some(h) if h.state == "active" => {}
                other => problems.push(format!("{e:?} is not active: {other:?}")),
            }
        }
    }
    for d in &delivered {
        let severity = label(d, "severity").unwrap_or_default();
        if d.receiver != receiver_of(severity) {
            problems.push(format!(
                "{:?} ({severity}) went to {}",
                label(d, "alertname"),
                d.receiver
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}\nheld: {held:#?}");
}

// ---------------------------------------------------------------------------
// Every collector: rule metric names and dashboard queries
// ---------------------------------------------------------------------------

/// Everything the coverage test runs perfwatch against, and its config
/// blocks.
///
/// To cover a new collector kind (e.g. a slow-log collector): start its
/// source in [`Sources::start`] and push one [`Block`]; nothing else changes.
struct Sources {
    blocks: Vec<Block>,
    redis: RedisServer,
    pg: Arc<PostgresServer>,
    _bouncer: PgbouncerServer,
    mariadb: Arc<MariaDbServer>,
    _mariadb_tmp: tempfile::TempDir,
    /// A replica of Redis, PostgreSQL and MariaDB each.
    _replicas: (RedisServer, PostgresServer, MariaDbServer),
    /// A sentinel watching `redis`, and a three-node Redis Cluster.
    _redis_ha: (RedisSentinel, RedisCluster),
    worker: Child,
    _app: SampleApp,
    db_load: DbWorkload,
    cache_load: CacheWorkload,
}

/// One collector's TOML, tagged with its kind for the report.
struct Block {
    kind: &'static str,
    toml: String,
}

impl Sources {
    async fn start() -> Self {
        let mut blocks = Vec::new();

        // Redis: maxmemory with noeviction (memory ratio, OOM-rejected
        // writes), every command in the SLOWLOG, prefixed keys with and
        // without TTL for the key sampler, a Celery queue (a list, pushed
        // before the OOM) for the key checks, and a cache workload.
        let redis = start_prepared(
            || {
                RedisServer::start(&[
                    ("maxmemory", "4mb"),
                    ("maxmemory-policy", "noeviction"),
                    ("slowlog-log-slower-than", "0"),
                ])
            },
            |redis| {
                redis
                    .command(&["RPUSH", "celery", "job-1", "job-2", "job-3"])
                    .map(drop)
            },
        )
        .await;
        let url = redis.url();
        start_or_panic(blocking(move || fill_redis_until_oom(&url)).await);
        let cache_load = CacheWorkload::start(CacheTarget::Redis(redis.url()), Mode::Warm);
        blocks.push(Block {
            kind: "redis",
            toml: format!(
                "[[redis]]\nname = \"cache\"\nurl = \"{}\"\n[redis.keys]\nprefixes = [\"bad_days:\", \"response_cache:\"]\n\
                 [redis.key_checks]\nkeys = [\"celery\"]\n",
                redis.url()
            ),
        });
        // A Redis nobody listens for: poll errors and a down target.
        let closed = start_or_panic(free_port());
        blocks.push(Block {
            kind: "redis",
            toml: format!(
                "[[redis]]\nname = \"unreachable\"\nurl = \"redis://127.0.0.1:{closed}/0\"\n"
            ),
        });

        // PostgreSQL, and PgBouncer in front of it.
        // The seed includes phase 3's trip_summary, which the workload's
        // "job" refreshes (job freshness).
        let pg = Arc::new(start_prepared(|| PostgresServer::start(&[]), seed_postgres).await);
        blocks.push(Block {
            kind: "postgres",
            toml: format!(
                "[[postgres]]\nname = \"db\"\ndsn = \"{}\"\nindex_interval = \"1s\"\nmin_table_rows = 1000\nmin_seq_scans = 5\n\
                 [[postgres.query]]\nname = \"trip_summary_age_seconds\"\n\
                 sql = \"SELECT extract(epoch FROM now() - max(computed_at))::float8 AS value FROM trip_summary\"\n",
                pg.dsn_for("app")
            ),
        });
        let pg2 = pg.clone();
        // A client through the bouncer creates the pool.
        let bouncer = start_prepared(
            move || PgbouncerServer::start(&*pg2, &[]),
            |bouncer| bouncer.psql("app", "SELECT 1").map(drop),
        )
        .await;
        blocks.push(Block {
            kind: "pgbouncer",
            toml: format!(
                "[[pgbouncer]]\nname = \"bouncer\"\ndsn = \"{}\"\n",
                bouncer.dsn()
            ),
        });

        // MariaDB with performance_schema (index I/O) and a slow query log
        // of every statement (long_query_time 0) for the slowlog collector.
        // Its own tmpdir: see tests/mysql.rs.
        let mariadb_tmp = tempfile::tempdir().unwrap();
        let tmpdir = mariadb_tmp.path().display().to_string();
        let slow_log = mariadb_tmp.path().join("slow.log").display().to_string();
        let slow_log_setting = slow_log.clone();
        let mariadb = start_prepared(
            move || {
                MariaDbServer::start(&[
                    ("performance_schema", "ON"),
                    ("tmpdir", tmpdir.as_str()),
                    ("slow_query_log", "1"),
                    ("long_query_time", "0"),
                    ("slow_query_log_file", slow_log_setting.as_str()),
                    ("server_id", "1"),
                    ("log_bin", "mysql-bin"),
                ])
            },
            seed_mariadb,
        )
        .await;
        let mariadb = Arc::new(mariadb);
        blocks.push(Block {
            kind: "mysql",
            toml: format!(
                "[[mysql]]\nname = \"mdb\"\ndsn = \"mysql://root@127.0.0.1:{}/app\"\nindex_interval = \"1s\"\nmissing_index_min_rows = 1000\n\
                 [mysql.explain]\nsources = [\"mdb-slow\"]\ninterval = \"5s\"\nmin_table_rows = 1000\n",
                mariadb.port()
            ),
        });

        // A replica of each server: the replication alerts and panels.
        let replicas = start_replicas(&redis, pg.clone(), mariadb.clone()).await;
        for (kind, name, key, address) in [
            ("redis", "cache-replica", "url", replicas.0.url()),
            ("postgres", "db-replica", "dsn", replicas.1.dsn()),
            ("mysql", "mdb-replica", "dsn", replicas.2.dsn()),
        ] {
            blocks.push(Block {
                kind,
                toml: format!("[[{kind}]]\nname = \"{name}\"\n{key} = \"{address}\"\n"),
            });
        }

        // A sentinel watching the Redis primary, and a small Redis Cluster:
        // the Sentinel and Cluster alerts' metrics.
        let sentinel = start_or_panic(RedisSentinel::start(&redis, "cache", 1, None));
        blocks.push(Block {
            kind: "redis",
            toml: format!(
                "[[redis]]\nname = \"cache-ha\"\nsentinels = [\"{}\"]\nmaster_name = \"cache\"\n",
                sentinel.host_port()
            ),
        });
        let cluster = start_prepared(|| RedisCluster::start(3, 0), |_| Ok(())).await;
        blocks.push(Block {
            kind: "redis",
            toml: format!(
                "[[redis]]\nname = \"sessions\"\nurl = \"{}\"\n",
                cluster.nodes()[0].url()
            ),
        });

        blocks.push(Block {
            kind: "slowlog",
            toml: format!(
                "[[slowlog]]\nname = \"mdb-slow\"\nformat = \"mysql\"\npath = \"{slow_log}\"\n"
            ),
        });

        // The app's endpoints.
        let sample_app = start_or_panic(SampleApp::start(None, None).await);
        let app = sample_app.addr();
        for (name, path, kind, extra) in [
            ("api", "/health", "health", ""),
            ("report", "/report", "latency", "repeat = 2\n"),
            ("pool", "/pool", "pool", ""),
            ("app", "/metrics", "prometheus", ""),
        ] {
            blocks.push(Block {
                kind: "http",
                toml: format!(
                    "[[http]]\nname = \"{name}\"\nurl = \"http://{app}{path}\"\nkind = \"{kind}\"\n{extra}"
                ),
            });
        }

        // A worker process for the process collector.
        let marker = format!("perfwatch-e2e-worker-{}", std::process::id());
        let worker = Command::new("sh")
            .args(["-c", &format!("sleep 600; : {marker}")])
            .stdin(Stdio::null())
            .spawn()
            .expect("sh and sleep are needed");
        blocks.push(Block {
            kind: "process",
            toml: format!("[[process]]\nname = \"workers\"\nmatch = \"{marker}\"\n"),
        });

        // A phase whose trigger holds with the warm cache, and phase 3's
        // health triggers (its jobs falling behind: the summary is 40
        // minutes old).
        blocks.push(Block {
            kind: "phase",
            toml: "[[phase]]\nname = \"phase2\"\ndescription = \"Pre-aggregated summary tables\"\n\
                   [[phase.trigger]]\nname = \"cache_hit_ratio\"\n\
                   metric = 'perfwatch_cache_hit_ratio{target=\"cache\",window=\"1m\"}'\n\
                   above = 0.5\nfor = \"1s\"\n\
                   [[phase]]\nname = \"phase3\"\n\
                   [[phase.trigger]]\nname = \"jobs_falling_behind\"\nkind = \"health\"\n\
                   metric = 'perfwatch_custom_query_value{query=\"trip_summary_age_seconds\"}'\n\
                   above = 1800\n\
                   [[phase.trigger]]\nname = \"job_queue_backlog\"\nkind = \"health\"\n\
                   metric = 'redis_key_size{key=\"celery\"}'\nabove = 100\n"
                .to_owned(),
        });

        // Keep the databases' counters moving (windowed ratios need traffic).
        let db_load = DbWorkload::start(
            Some(pg.clone()),
            Some(mariadb.clone()),
            Duration::from_secs(2),
        );

        Sources {
            blocks,
            redis,
            pg,
            _bouncer: bouncer,
            mariadb,
            _mariadb_tmp: mariadb_tmp,
            _replicas: replicas,
            _redis_ha: (sentinel, cluster),
            worker,
            _app: sample_app,
            db_load,
            cache_load,
        }
    }

    fn config(&self) -> String {
        let mut toml = String::from("[global]\ninterval = \"1s\"\ntimeout = \"800ms\"\n");
        for b in &self.blocks {
            toml.push_str(&b.toml);
        }
        toml
    }

    fn kinds(&self) -> BTreeSet<&'static str> {
        self.blocks.iter().map(|b| b.kind).collect()
    }

    fn stop(&mut self) {
        self.db_load.stop();
        self.cache_load.stop();
        let _ = self.worker.kill();
        let _ = self.worker.wait();
        let _ = (&self.redis, &self.pg, &self.mariadb);
    }
}

/// A Redis replica of `redis`, a streaming standby of `pg` and a MariaDB
/// replica of `mariadb` (which runs with `log_bin`, `server_id` 1).
async fn start_replicas(
    redis: &RedisServer,
    pg: Arc<PostgresServer>,
    mariadb: Arc<MariaDbServer>,
) -> (RedisServer, PostgresServer, MariaDbServer) {
    let redis = start_or_panic(redis.start_replica(&[]));
    let started = blocking(move || {
        let standby = pg.start_replica("standby", &[])?;
        let mdb = mariadb.start_replica(&[("performance_schema", "ON")])?;
        Ok((redis, standby, mdb))
    })
    .await;
    start_or_panic(started)
}

impl Drop for Sources {
    fn drop(&mut self) {
        let _ = self.worker.kill();
        let _ = self.worker.wait();
    }
}

/// With every collector kind running, checks against one Prometheus that
/// scraped perfwatch:
///
/// 1. every metric name referenced by every rule of the real
///    `alerts/perfwatch.rules.yml` (read back from Prometheus'
///    `/api/v1/rules`, so the YAML is parsed by Prometheus itself; names
///    from [`metric_names`]; recording-rule outputs and `ALERTS*` excluded)
///    is in Prometheus' `/api/v1/label/__name__/values`. Histogram series
///    are referenced as `_bucket`/`_sum`/`_count` and stored under those
///    names, so they are checked as such;
/// 2. every dashboard panel query (`support_dashboards::panel_queries()`,
///    variables substituted with this job and instance, target = all)
///    returns at least one series.
///
/// Both are polled together for up to two minutes (rates need two samples,
/// index verdicts a few polls); the failure lists everything missing at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rule_metrics_and_dashboard_queries_have_data_with_every_collector() {
    let rules = real_rules();
    let queries = support_dashboards::panel_queries();
    assert!(
        !queries.is_empty(),
        "support_dashboards::panel_queries() found no panel query in dashboards/"
    );
    let mut sources = Sources::start().await;
    let pw = Perfwatch::start(&sources.config()).await;
    // Nothing listens on the alerting port: this test checks data, not
    // delivery.
    let no_alertmanager = start_or_panic(free_port());
    let prom_config = prometheus_config(pw.addr, no_alertmanager);
    let prom = start_or_panic(
        blocking(move || {
            PrometheusServer::start(&prom_config, &[(RULES_IN_PROMETHEUS, rules.as_str())])
        })
        .await,
    );
    wait_scraped(&prom).await;

    // Referenced names per rule, from what Prometheus loaded.
    let loaded = tokio::task::block_in_place(|| prom.rules()).unwrap();
    assert!(
        !loaded.is_empty(),
        "Prometheus loaded no rule from {RULES_FILE}"
    );
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut parse_errors = Vec::new();
    for rule in &loaded {
        match metric_names(&rule.query) {
            Ok(names) => {
                for n in names.into_iter().filter(|n| must_be_scraped(n)) {
                    wanted
                        .entry(n)
                        .or_default()
                        .insert(format!("{} ({})", rule.name, rule.group));
                }
            }
            Err(e) => parse_errors.push(format!("{}: {e}: {}", rule.name, rule.query)),
        }
    }
    assert!(
        parse_errors.is_empty(),
        "rule expressions promql-parser cannot parse: {parse_errors:#?}"
    );
    assert!(
        wanted.contains_key("perfwatch_cache_hit_ratio"),
        "the extractor found no perfwatch_cache_hit_ratio in the rules: {wanted:#?}"
    );

    let instance = pw.addr.to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (missing_names, empty_queries) = loop {
        let names: BTreeSet<String> = tokio::task::block_in_place(|| prom.label_values("__name__"))
            .unwrap()
            .into_iter()
            .collect();
        let missing_names: Vec<String> = wanted
            .iter()
            .filter(|(n, _)| !names.contains(*n))
            .map(|(n, rules)| {
                format!(
                    "{n}{} — used by {}",
                    family_hint(n),
                    rules.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        let mut empty_queries = Vec::new();
        for (dashboard, panel, expr) in &queries {
            let q = support_dashboards::substitute(expr, JOB, &instance, ".+");
            match tokio::task::block_in_place(|| prom.query(&q)) {
                Ok(samples) if !samples.is_empty() => {}
                Ok(_) => empty_queries.push(format!("{dashboard} / {panel}: no series: {q}")),
                Err(e) => empty_queries.push(format!("{dashboard} / {panel}: error {e}: {q}")),
            }
        }
        if (missing_names.is_empty() && empty_queries.is_empty()) || Instant::now() > deadline {
            break (missing_names, empty_queries);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };

    let down = tokio::task::block_in_place(|| {
        prom.query(r#"perfwatch_target_up{target!="unreachable"} == 0"#)
    })
    .unwrap_or_default();
    let down: Vec<String> = down
        .iter()
        .map(|(l, _)| {
            format!(
                "{}/{}",
                l.get("collector").cloned().unwrap_or_default(),
                l.get("target").cloned().unwrap_or_default()
            )
        })
        .collect();
    eprintln!(
        "checked {} metric names referenced by {} rules and {} dashboard panel queries",
        wanted.len(),
        loaded.len(),
        queries.len()
    );
    sources.stop();
    pw.stop().await;
    assert!(
        missing_names.is_empty() && empty_queries.is_empty(),
        "with collectors {:?} running (targets down besides `unreachable`: {down:?}):\n\n\
         {} metric name(s) referenced by {RULES_FILE} are not in Prometheus:\n  {}\n\n\
         {} of {} dashboard panel queries returned no series:\n  {}\n",
        sources.kinds(),
        missing_names.len(),
        missing_names.join("\n  "),
        empty_queries.len(),
        queries.len(),
        empty_queries.join("\n  "),
    );
}

// ---------------------------------------------------------------------------
// Fast checks
// ---------------------------------------------------------------------------

#[test]
fn rules_test_variant_only_shortens_for_and_windows() {
    let src = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: |\n          min(x{window=\"5m\"} < 0.7 and y{window='15m'} > 100) and z[5m]\n        for: 10m   # ten minutes\n        labels:\n          severity: warning\n        annotations:\n          description: 'fires for: 10m'\n      - alert: B\n        expr: up == 0\n        keep_firing_for: 5m\n      - alert: C\n        expr: up == 0\n";
    let out = rules_fast_variant(src);
    assert_eq!(
        out,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: |\n          min(x{window=\"1m\"} < 0.7 and y{window='1m'} > 100) and z[5m]\n        for: 2s  # ten minutes\n        labels:\n          severity: warning\n        annotations:\n          description: 'fires for: 10m'\n      - alert: B\n        expr: up == 0\n        keep_firing_for: 2s\n      - alert: C\n        expr: up == 0\n"
    );
    assert_eq!(
        rewrite_for_line("- for: 1h\n").as_deref(),
        Some("- for: 2s\n")
    );
    assert_eq!(rewrite_for_line("  format: 10m\n"), None);
}

#[test]
fn rules_test_variant_of_the_real_file_changes_only_for_and_windows() {
    let real = real_rules();
    let variant = rules_fast_variant(&real);
    let (a, b): (Vec<&str>, Vec<&str>) = (real.lines().collect(), variant.lines().collect());
    assert_eq!(a.len(), b.len());
    let mut fors = 0;
    for (x, y) in a.iter().zip(&b) {
        if x == y {
            assert!(
                !x.trim_start().starts_with("for:") && !x.contains("window=\"5m\""),
                "left unchanged: {x}"
            );
            continue;
        }
        if y.trim_start().starts_with("for:") {
            fors += 1;
            assert_eq!(y.trim(), format!("for: {FAST_FOR}"), "{x}");
        } else {
            assert_eq!(
                x.replace("window=\"5m\"", "window=\"1m\"")
                    .replace("window=\"15m\"", "window=\"1m\""),
                **y,
                "only windows change in expressions"
            );
        }
    }
    assert!(fors > 0, "no `for:` in {RULES_FILE}");
    for alert in ["CacheHitRatioLow", "PerfwatchTargetDown"] {
        assert!(
            variant.contains(&format!("alert: {alert}")),
            "{RULES_FILE} has no {alert}"
        );
    }
}

#[test]
fn metric_names_are_the_selectors_only() {
    let names = |e: &str| {
        metric_names(e)
            .unwrap()
            .into_iter()
            .collect::<Vec<String>>()
    };
    assert_eq!(
        names(
            r#"min by (namespace, target) (perfwatch_cache_hit_ratio{window="5m"} < 0.70 and perfwatch_cache_lookups_in_window{window="5m"} > 100)"#
        ),
        [
            "perfwatch_cache_hit_ratio",
            "perfwatch_cache_lookups_in_window"
        ]
    );
    assert_eq!(
        names(
            r#"histogram_quantile(0.95, sum without (fingerprint) (rate(x_seconds_bucket[5m]))) > 2 * max by (le) (rate(y_total[1h] offset 10m))"#
        ),
        ["x_seconds_bucket", "y_total"]
    );
    assert_eq!(
        names(
            r#"(max by (phase) (a) == bool 1) * on (phase) group_left (description, order) b or {__name__="c", job="sum"} unless absent(d) and count_over_time(e[5m:1m]) and time() - f"#
        ),
        ["a", "b", "c", "d", "e", "f"]
    );
    assert_eq!(
        names(r#"label_replace(up, "x", "$1", "instance", "(.*)") + vector(1) + scalar(g)"#),
        ["g", "up"]
    );
    assert_eq!(
        names(r#"perfwatch:cache_hit_ratio:rate5m > 0 and ALERTS{alertname="x"}"#),
        ["ALERTS", "perfwatch:cache_hit_ratio:rate5m"]
    );
    assert!(!must_be_scraped("perfwatch:cache_hit_ratio:rate5m"));
    assert!(!must_be_scraped("ALERTS"));
    assert!(must_be_scraped("redis_errors_total"));
    assert!(metric_names("sum(").is_err());
    assert_eq!(
        family_hint("x_seconds_bucket"),
        " (a series of histogram/summary family `x_seconds`)"
    );
}

/// The examples render with the test's addresses, and the rendered files
/// pass `promtool check config` (with the real rules next to it) and
/// `amtool check-config`.
#[test]
fn example_configs_render_and_pass_promtool_and_amtool() {
    let dir = tempfile::tempdir().unwrap();
    let prom = prometheus_config("127.0.0.1:12345".parse().unwrap(), 23456);
    assert!(prom.contains("127.0.0.1:12345") && prom.contains("127.0.0.1:23456"));
    assert!(prom.contains("scrape_interval: 1s") && prom.contains(RULES_IN_PROMETHEUS));
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join(RULES_IN_PROMETHEUS), real_rules()).unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), &prom).unwrap();
    let am = alertmanager_config("http://127.0.0.1:34567/alerts");
    assert!(am.contains("http://127.0.0.1:34567/alerts") && am.contains("group_wait: 1s"));
    std::fs::write(dir.path().join("alertmanager.yml"), &am).unwrap();
    for (tool, package, args) in [
        (
            "promtool",
            "prometheus",
            vec!["check", "config", "prometheus.yml"],
        ),
        (
            "amtool",
            "prometheus-alertmanager",
            vec!["check-config", "alertmanager.yml"],
        ),
    ] {
        let bin = find_binary(tool, package).unwrap_or_else(|e| panic!("{e}"));
        stdout_ok(Command::new(bin).args(&args).current_dir(dir.path()));
    }
}

/// `amtool config routes test` on the example config: every alert of the
/// rules file (by its name and severity) reaches the receiver of its
/// severity, and a label set without a severity the default one.
#[test]
fn example_alertmanager_routes_every_alert_to_the_receiver_of_its_severity() {
    let rendered = alertmanager_config("http://127.0.0.1:34567/alerts");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, rendered).unwrap();
    let route = |labels: &[String]| -> String {
        stdout_ok(
            Command::new(amtool())
                .args(["config", "routes", "test"])
                .arg(format!("--config.file={}", config.display()))
                .args(labels),
        )
        .trim()
        .to_owned()
    };
    let mut problems = Vec::new();
    let alerts = alert_severities();
    for (alert, severity) in &alerts {
        let labels = [
            format!("alertname={alert}"),
            format!("severity={severity}"),
            "target=cache".to_owned(),
        ];
        let got = route(&labels);
        if got != receiver_of(severity) {
            problems.push(format!("{alert} ({severity}) routes to {got:?}"));
        }
    }
    let severities: BTreeSet<&str> = alerts.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        severities,
        RECEIVER_BY_SEVERITY.iter().map(|(s, _)| *s).collect(),
        "the rules use every severity the example routes, and no other"
    );
    assert_eq!(
        route(&["alertname=Other".to_owned()]),
        receiver_of("warning")
    );
    assert!(problems.is_empty(), "{problems:#?}");
}
