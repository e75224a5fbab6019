//! Issue 14: the community mixins of the three Go exporters (the redis-mixin
//! and redis_exporter's own dashboard, the postgres_exporter mixin, the
//! mysqld_exporter mixin) on perfwatch. Their files are third-party content
//! and are not in this repository: `tests/data/mixins` holds only facts
//! written from reading them (sources, commits and licenses in its
//! README.md): per peer the metric names they select (`<peer>-names.txt`)
//! and which of those do not apply here (`not-applicable.txt`).
//!
//! Like the Go exporters' users, Prometheus has one scrape job per exporter
//! (`redis`, the redis-mixin's default `redisExporterSelector`; `postgres`;
//! `mysql`), each keeping its own families (`redis_*`, `pg_*`, `mysql_*`) of
//! the same perfwatch.
//!
//! Tests (CI):
//! - [`applicable_mixin_names_are_exported`] checks that every name of the fixtures not
//!   marked not applicable is exported by perfwatch over throwaway Redis,
//!   PostgreSQL and MariaDB servers (except [`NOT_YET_EXPORTED`], checked
//!   to be still missing).
//! - [`not_applicable_names_are_what_the_peers_leave_out`] checks the
//!   not-applicable marks against the Debian peer exporters.
//! - [`redis_exporter_dashboard_queries_return_data`] checks that every query of
//!   redis_exporter's Grafana dashboard as the Debian package
//!   `prometheus-redis-exporter` installs it returns data.
//! - [`redis_down_fires`], [`postgres_down_fires`],
//!   [`postgres_too_many_connections_fire`] and [`mysql_down_fires`] check
//!   that the conditions of the mixins' key alerts, restated as our own rules
//!   ([`restated_rules`]), fire when induced.
//!
//! Measurement (ignored; `scripts/mixin-coverage.sh MIXINS_DIR`, with
//! `MIXINS_DIR` the mixin files made from upstream as the README says):
//! [`mixin_expressions_evaluate_and_report_what_returns_data`] (every rule
//! and dashboard query of the mixins, per file "N of M" usable or returning
//! data, against [`FLOORS`]), [`mixin_rule_files_pass_promtool`] and
//! [`names_fixtures_list_what_the_mixin_files_select`].

mod common;
mod support_commands;
mod support_dashboards;
mod support_promql;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::peer::PeerExporter;
use common::peer::{PG_REPLICATION_QUERY, Scrape};
use common::{Perfwatch, blocking};
use perfwatch_testbench::deploy::FAST_FOR;
use perfwatch_testbench::workload::{
    CacheTarget, CacheWorkload, DbWorkload, Mode, seed_mariadb, seed_postgres,
};
use perfwatch_testbench::{
    HarnessError, MariaDbServer, PostgresServer, PrometheusServer, RedisServer, find_binary,
};
use promql_parser::label::MatchOp;
use serde::Deserialize;
use support_commands::stdout_ok;

// ---------------------------------------------------------------------------
// The mixins
// ---------------------------------------------------------------------------

/// One community mixin: the peer it was written for, the Prometheus job the
/// tests scrape its families under, and its files in `MIXINS_DIR` (for the
/// measurement only).
struct Mixin {
    /// The peer's short name: `<peer>-names.txt`, `not-applicable.txt`.
    peer: &'static str,
    /// The scrape job of its families.
    job: &'static str,
    /// The families the job keeps (a `metric_relabel_configs` regex).
    families: &'static str,
    /// Its rule file (alerting and recording rules).
    rules: &'static str,
    /// Its dashboards' query files.
    dashboards: &'static [&'static str],
}

const REDIS: Mixin = Mixin {
    peer: "redis",
    job: "redis",
    families: "redis_.*",
    rules: "redis-mixin.rules.yml",
    dashboards: &[
        "redis-mixin-overview.queries.yml",
        "redis-exporter-dashboard.queries.yml",
    ],
};
const POSTGRES: Mixin = Mixin {
    peer: "postgres",
    job: "postgres",
    families: "pg_.*",
    rules: "postgres-mixin.rules.yml",
    dashboards: &["postgres-mixin-overview.queries.yml"],
};
const MYSQLD: Mixin = Mixin {
    peer: "mysqld",
    job: "mysql",
    families: "mysql_.*",
    rules: "mysqld-mixin.rules.yml",
    dashboards: &["mysqld-mixin-overview.queries.yml"],
};
const MIXINS: [&Mixin; 3] = [&REDIS, &POSTGRES, &MYSQLD];

/// The measured floor per mixin file: how many of its rules are usable
/// (rule files) or of its queries return data (dashboards) against the
/// servers of [`mixin_expressions_evaluate_and_report_what_returns_data`].
/// Measured on this branch; raise a floor when a family lands (the test
/// prints the figures and says which floors are below them).
const FLOORS: &[(&str, usize)] = &[
    ("redis-mixin.rules.yml", 4),
    ("redis-mixin-overview.queries.yml", 16),
    ("redis-exporter-dashboard.queries.yml", 20),
    ("postgres-mixin.rules.yml", 15),
    ("postgres-mixin-overview.queries.yml", 18),
    ("mysqld-mixin.rules.yml", 10),
    ("mysqld-mixin-overview.queries.yml", 64),
];

/// Names Prometheus makes itself.
const SYNTHETIC: &[&str] = &["ALERTS", "ALERTS_FOR_STATE"];

/// Why the measurement tests are ignored, for their failure when run without
/// `MIXINS_DIR`.
const NEEDS_MIXINS_DIR: &str = "MIXINS_DIR is not set: set it to a directory outside the \
repository holding the mixin files tests/data/mixins/README.md lists, made from the upstream \
repositories at the commits listed there, and run scripts/mixin-coverage.sh MIXINS_DIR";

/// `MIXINS_DIR`: the mixin files, kept outside the repository.
fn mixins_dir() -> PathBuf {
    std::env::var_os("MIXINS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{NEEDS_MIXINS_DIR}"))
}

/// The facts written from reading the mixins (committed).
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mixins")
}

fn read_in(dir: &Path, file: &str) -> String {
    let path = dir.join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A mixin file's text (measurement only).
fn read(file: &str) -> String {
    read_in(&mixins_dir(), file)
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
}

#[derive(Deserialize)]
struct Dashboard {
    #[serde(default)]
    variables: Vec<Variable>,
    panels: Vec<Panel>,
}

#[derive(Deserialize)]
struct Variable {
    name: String,
    query: String,
}

#[derive(Deserialize)]
struct Panel {
    title: String,
    expr: String,
}

/// One expression of a mixin file or dashboard, as Prometheus is asked to
/// run it.
struct Query {
    file: &'static str,
    /// `alert X`, `record Y`, `panel "T"` or `variable $v`.
    what: String,
    expr: String,
}

fn rules_of(file: &'static str) -> Vec<Rule> {
    let parsed: RuleFile =
        serde_yaml_ng::from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    parsed.groups.into_iter().flat_map(|g| g.rules).collect()
}

/// Every rule of a rule file as a query.
fn rule_queries(file: &'static str) -> Vec<Query> {
    rules_of(file)
        .into_iter()
        .map(|r| Query {
            file,
            what: match (&r.alert, &r.record) {
                (Some(a), _) => format!("alert {a}"),
                (None, Some(r)) => format!("record {r}"),
                (None, None) => panic!("{file}: a rule with neither alert nor record"),
            },
            expr: r.expr,
        })
        .collect()
}

/// Every template variable (its `label_values` series) and panel query of a
/// mixin's dashboard queries file.
fn dashboard_queries(file: &'static str) -> Vec<Query> {
    let d: Dashboard =
        serde_yaml_ng::from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let variables = d.variables.into_iter().map(|v| (v.name, v.query)).collect();
    let panels = d.panels.into_iter().map(|p| (p.title, p.expr)).collect();
    queries_with_variables(file, variables, panels)
}

/// A dashboard's queries as Prometheus runs them: each template variable
/// (name, `label_values(<series>, <label>)`) as its series, then each panel
/// query (title, expr), every variable set to match anything.
fn queries_with_variables(
    file: &'static str,
    variables: Vec<(String, String)>,
    panels: Vec<(String, String)>,
) -> Vec<Query> {
    let names: BTreeSet<&str> = variables.iter().map(|(n, _)| n.as_str()).collect();
    let plain =
        |e: &str| support_dashboards::substitute_with(e, |n| names.contains(n).then_some(".*"));
    let variables = variables.iter().map(|(name, query)| Query {
        file,
        what: format!("variable ${name}"),
        expr: plain(label_values_series(query).unwrap_or_else(|| {
            panic!("{file}: variable {name} is not label_values(<series>, <label>)")
        })),
    });
    let panels = panels.iter().map(|(title, expr)| Query {
        file,
        what: format!("panel \"{title}\""),
        expr: plain(expr),
    });
    variables.chain(panels).collect()
}

/// The series expression of Grafana's `label_values(<series>, <label>)`.
fn label_values_series(query: &str) -> Option<&str> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (series, label) = inner.rsplit_once(',')?;
    let label = label.trim();
    let is_label = !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '_');
    is_label.then_some(series.trim())
}

/// The metric names `expr` selects (selector names and `__name__="x"`).
fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let ast = promql_parser::parser::parse(expr)?;
    let mut selectors = Vec::new();
    support_promql::selectors_with(&ast, (), &|(), _| (), &mut selectors);
    let mut out = BTreeSet::new();
    for (vs, ()) in selectors {
        out.extend(vs.name.clone());
        let by_name = vs.matchers.matchers.iter();
        out.extend(
            by_name
                .filter(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
                .map(|m| m.value.clone()),
        );
    }
    Ok(out)
}

/// `<peer>-names.txt`: every name with its not-applicable reason, if any.
fn names_fixture(peer: &str) -> BTreeMap<String, Option<String>> {
    let file = format!("{peer}-names.txt");
    read_in(&fixtures_dir(), &file)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut cols = l.split('\t');
            let name = cols.next().unwrap().to_owned();
            assert!(cols.next().is_some(), "{file}: no source column in `{l}`");
            let na = cols.next().map(|c| {
                c.strip_prefix("n/a: ")
                    .unwrap_or_else(|| panic!("{file}: third column is not `n/a: ...`: {l}"))
                    .to_owned()
            });
            (name, na)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Fast checks
// ---------------------------------------------------------------------------

/// `promtool check rules` accepts every mixin rule file as it is.
#[test]
#[ignore = "measurement over the mixin files outside the repository: scripts/mixin-coverage.sh MIXINS_DIR"]
fn mixin_rule_files_pass_promtool() {
    let promtool = find_binary("promtool", "prometheus").unwrap_or_else(|e| panic!("{e}"));
    let out = stdout_ok(
        Command::new(promtool)
            .args(["check", "rules"])
            .args(MIXINS.map(|m| m.rules))
            .current_dir(mixins_dir()),
    );
    assert_eq!(out.matches("SUCCESS").count(), MIXINS.len(), "{out}");
}

/// `<peer>-names.txt` lists exactly the names the peer's mixin rules and
/// dashboard queries select (the PromQL parser's view, against the Python
/// tokenizer of `scripts/lib/mixin-names.py` that wrote it), without the
/// rules' own recorded names and Prometheus' `ALERTS*`.
#[test]
#[ignore = "measurement over the mixin files outside the repository: scripts/mixin-coverage.sh MIXINS_DIR"]
fn names_fixtures_list_what_the_mixin_files_select() {
    for m in MIXINS {
        let recorded: BTreeSet<String> = rules_of(m.rules)
            .into_iter()
            .filter_map(|r| r.record)
            .collect();
        let mut selected = BTreeSet::new();
        for q in queries_of(m) {
            let names = metric_names(&q.expr)
                .unwrap_or_else(|e| panic!("{} {}: {e}: {}", q.file, q.what, q.expr));
            selected.extend(names);
        }
        let want: BTreeSet<String> = selected
            .into_iter()
            .filter(|n| !recorded.contains(n) && !SYNTHETIC.contains(&n.as_str()))
            .collect();
        let fixture: BTreeSet<String> = names_fixture(m.peer).into_keys().collect();
        assert_eq!(
            fixture, want,
            "tests/data/mixins/{}-names.txt is stale: run scripts/mixin-names.sh MIXINS_DIR",
            m.peer
        );
    }
}

#[test]
fn label_values_series_takes_the_series_argument() {
    assert_eq!(
        label_values_series(r#"label_values(pg_up{job=~"$job"},instance)"#),
        Some(r#"pg_up{job=~"$job"}"#)
    );
    assert_eq!(label_values_series("label_values(job)"), None);
    assert_eq!(label_values_series("query_result(up)"), None);
}

/// Every rule, variable and panel query of a mixin.
fn queries_of(m: &Mixin) -> Vec<Query> {
    let mut out = rule_queries(m.rules);
    for d in m.dashboards {
        out.extend(dashboard_queries(d));
    }
    out
}

// ---------------------------------------------------------------------------
// The stack: servers, perfwatch, Prometheus
// ---------------------------------------------------------------------------

fn start_or_panic<T>(r: Result<T, HarnessError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

const GLOBAL: &str = "[global]\ninterval = \"1s\"\ntimeout = \"800ms\"\n";

fn redis_block(redis: &RedisServer) -> String {
    format!("[[redis]]\nname = \"cache\"\nurl = \"{}\"\n", redis.url())
}

fn postgres_block(pg: &PostgresServer) -> String {
    format!(
        "[[postgres]]\nname = \"db\"\ndsn = \"{}\"\nindex_interval = \"1s\"\n",
        pg.dsn_for("app")
    )
}

fn mysql_block(db: &MariaDbServer) -> String {
    format!(
        "[[mysql]]\nname = \"mdb\"\ndsn = \"mysql://root@127.0.0.1:{}/app\"\nindex_interval = \"1s\"\n",
        db.port()
    )
}

/// A PostgreSQL with database `app` seeded by the workload module.
async fn start_postgres(settings: &'static [(&'static str, &'static str)]) -> PostgresServer {
    start_or_panic(
        blocking(move || {
            let pg = PostgresServer::start(settings)?;
            seed_postgres(&pg)?;
            Ok(pg)
        })
        .await,
    )
}

/// A MariaDB with its own tmpdir (see tests/mysql.rs) and performance_schema,
/// seeded by the workload module.
async fn start_mariadb() -> (MariaDbServer, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().display().to_string();
    let db = start_or_panic(
        blocking(move || {
            let db =
                MariaDbServer::start(&[("performance_schema", "ON"), ("tmpdir", tmpdir.as_str())])?;
            seed_mariadb(&db)?;
            Ok(db)
        })
        .await,
    );
    (db, tmp)
}

/// perfwatch watching a Redis under a warm cache workload, and a seeded
/// PostgreSQL and MariaDB with steady traffic.
struct Loaded {
    pw: Perfwatch,
    cache_load: CacheWorkload,
    db_load: DbWorkload,
    /// The servers, stopped when dropped.
    _servers: (
        RedisServer,
        Arc<PostgresServer>,
        Arc<MariaDbServer>,
        tempfile::TempDir,
    ),
}

/// `mysql_options`: more keys of the `[[mysql]]` block.
async fn start_loaded(mysql_options: &str) -> Loaded {
    let redis = start_or_panic(blocking(|| RedisServer::start(&[])).await);
    let cache_load = CacheWorkload::start(CacheTarget::Redis(redis.url()), Mode::Warm);
    let pg = Arc::new(start_postgres(&[]).await);
    let (mariadb, mariadb_tmp) = start_mariadb().await;
    let mariadb = Arc::new(mariadb);
    let db_load = DbWorkload::start(
        Some(pg.clone()),
        Some(mariadb.clone()),
        Duration::from_secs(1),
    );
    let pw = Perfwatch::start(&format!(
        "{GLOBAL}{}{}{}{mysql_options}",
        redis_block(&redis),
        postgres_block(&pg),
        mysql_block(&mariadb)
    ))
    .await;
    Loaded {
        pw,
        cache_load,
        db_load,
        _servers: (redis, pg, mariadb, mariadb_tmp),
    }
}

impl Loaded {
    /// Stops the workloads and perfwatch (the servers go when dropped).
    async fn stop(mut self) {
        self.cache_load.stop();
        self.db_load.stop();
        self.pw.stop().await;
    }
}

/// Prometheus scraping `perfwatch` every second, one job per mixin keeping
/// its families, evaluating every second the rule files `rules` (file name,
/// text), loaded as `rules/<name>`.
async fn start_prometheus(
    perfwatch: SocketAddr,
    mixins: &[&Mixin],
    rules: Vec<(String, String)>,
) -> PrometheusServer {
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nrule_files:\n",
    );
    for (name, _) in &rules {
        config.push_str(&format!("- rules/{name}\n"));
    }
    config.push_str("scrape_configs:\n");
    for m in mixins {
        config.push_str(&format!(
            "- job_name: {}\n  static_configs:\n  - targets: [\"{perfwatch}\"]\n  metric_relabel_configs:\n  - source_labels: [__name__]\n    regex: '{}'\n    action: keep\n",
            m.job, m.families
        ));
    }
    start_or_panic(
        blocking(move || {
            let files: Vec<(String, &str)> = rules
                .iter()
                .map(|(n, t)| (format!("rules/{n}"), t.as_str()))
                .collect();
            let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), *t)).collect();
            PrometheusServer::start(&config, &files)
        })
        .await,
    )
}

/// Polls `check` every 250 ms until it gives a value; after `timeout`,
/// panics with `what` and what `diagnose` says.
async fn poll<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
    diagnose: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = tokio::task::block_in_place(&mut check) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}\n{}",
            tokio::task::block_in_place(&diagnose)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What Prometheus holds, for failure messages: targets, alerts, log tail.
fn prometheus_state(prom: &PrometheusServer) -> String {
    format!(
        "targets: {:#?}\nalerts: {:#?}\nPrometheus log:\n{}",
        prom.targets(),
        prom.alerts(),
        prom.log_tail()
    )
}

/// Waits until `expr` returns a sample.
async fn wait_query(prom: &PrometheusServer, timeout: Duration, expr: &str) {
    poll(
        timeout,
        &format!("`{expr}` to return a sample"),
        || prom.query(expr).ok().filter(|s| !s.is_empty()).map(drop),
        || prometheus_state(prom),
    )
    .await;
}

/// Waits until Prometheus holds `alertname` as firing; returns its labels.
async fn wait_firing(
    prom: &PrometheusServer,
    timeout: Duration,
    alertname: &str,
) -> BTreeMap<String, String> {
    poll(
        timeout,
        &format!("{alertname} to fire"),
        || {
            prom.alerts().ok()?.into_iter().find_map(|a| {
                (a.state == "firing"
                    && a.labels.get("alertname").map(String::as_str) == Some(alertname))
                .then_some(a.labels)
            })
        },
        || prometheus_state(prom),
    )
    .await
}

/// Asserts Prometheus holds no `alertname`, pending or firing.
fn assert_quiet(prom: &PrometheusServer, alertname: &str) {
    let alerts = prom.alerts().unwrap();
    assert!(
        !alerts
            .iter()
            .any(|a| a.labels.get("alertname").map(String::as_str) == Some(alertname)),
        "{alertname} is active before its condition was induced: {alerts:#?}"
    );
}

// ---------------------------------------------------------------------------
// Coverage
// ---------------------------------------------------------------------------

/// What one query gave.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// A dashboard query returned a series, or every name a rule selects has
    /// one.
    Data,
    /// No series; the selected names Prometheus has no series of.
    Empty(Vec<String>),
    /// Prometheus refused it (query API error, or rule health `err`).
    Error(String),
}

/// One measurement: the outcome of every query, in order.
fn measure(prom: &PrometheusServer, queries: &[Query]) -> Vec<Outcome> {
    let stored: BTreeSet<String> = prom.label_values("__name__").unwrap().into_iter().collect();
    let health: BTreeMap<String, (String, String)> = prom
        .rules()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, (r.health, r.last_error)))
        .collect();
    queries
        .iter()
        .map(|q| {
            let missing: Vec<String> = metric_names(&q.expr)
                .unwrap()
                .into_iter()
                .filter(|n| !stored.contains(n))
                .collect();
            let samples = match prom.query(&q.expr) {
                Ok(samples) => samples,
                Err(e) => return Outcome::Error(e.to_string()),
            };
            let rule = q.what.strip_prefix("alert ");
            let Some(rule) = rule.or_else(|| q.what.strip_prefix("record ")) else {
                return if samples.is_empty() {
                    Outcome::Empty(missing)
                } else {
                    Outcome::Data
                };
            };
            match health.get(rule) {
                Some((h, e)) if h == "err" => Outcome::Error(format!("rule health err: {e}")),
                _ if missing.is_empty() => Outcome::Data,
                _ => Outcome::Empty(missing),
            }
        })
        .collect()
}

/// Every mixin's rule files loaded unchanged, every dashboard query run
/// against one Prometheus scraping perfwatch over Redis (a warm cache
/// workload), PostgreSQL and MariaDB (seeded, with steady traffic).
///
/// Measured every 3 s once every rule was evaluated, until the figures have
/// not improved for 10 s (rates need two scrapes, perfwatch's slower checks a
/// few polls) or 75 s have passed. Fails when a rule or query errors or a
/// figure is below its [`FLOORS`] entry; prints every query's outcome and
/// the table `scripts/mixin-coverage.sh` shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "measurement over the mixin files outside the repository: scripts/mixin-coverage.sh MIXINS_DIR"]
async fn mixin_expressions_evaluate_and_report_what_returns_data() {
    // Without processlist = true, which perfwatch before 5732cd6 does not
    // know (`--rev`), so the figures stay comparable.
    let stack = start_loaded("").await;
    let rules = MIXINS.map(|m| (m.rules.to_owned(), read(m.rules))).to_vec();
    let prom = start_prometheus(stack.pw.addr, &MIXINS, rules).await;

    let queries: Vec<Query> = MIXINS.iter().flat_map(|m| queries_of(m)).collect();
    let rule_count = MIXINS
        .map(|m| rules_of(m.rules).len())
        .iter()
        .sum::<usize>();
    let loaded = tokio::task::block_in_place(|| prom.rules()).unwrap();
    assert_eq!(
        loaded.len(),
        rule_count,
        "Prometheus loaded {} rules of the {rule_count} in the mixin files: {loaded:#?}",
        loaded.len()
    );
    for m in MIXINS {
        wait_query(
            &prom,
            Duration::from_secs(30),
            &format!("up{{job=\"{}\"}} == 1", m.job),
        )
        .await;
    }
    poll(
        Duration::from_secs(30),
        "every rule to be evaluated",
        || {
            let rules = prom.rules().ok()?;
            rules.iter().all(|r| r.health != "unknown").then_some(())
        },
        || format!("{:#?}", prom.rules()),
    )
    .await;

    let data = |o: &[Outcome]| o.iter().filter(|o| **o == Outcome::Data).count();
    let start = Instant::now();
    let (mut best, mut improved) = (Vec::new(), Instant::now());
    loop {
        let now = tokio::task::block_in_place(|| measure(&prom, &queries));
        if best.is_empty() || data(&now) > data(&best) {
            improved = Instant::now();
        }
        if best.is_empty() || data(&now) >= data(&best) {
            best = now;
        }
        if improved.elapsed() >= Duration::from_secs(10)
            || start.elapsed() >= Duration::from_secs(75)
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    stack.stop().await;

    let report = report(&queries, &best);
    println!("{report}");
    let errors: Vec<String> = queries
        .iter()
        .zip(&best)
        .filter_map(|(q, o)| match o {
            Outcome::Error(e) => Some(format!("{} {}: {e}\n    {}", q.file, q.what, q.expr)),
            _ => None,
        })
        .collect();
    assert!(
        errors.is_empty(),
        "{} rule(s) or queries fail to evaluate:\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
    let mut below = Vec::new();
    for (file, floor) in FLOORS {
        let got = queries
            .iter()
            .zip(&best)
            .filter(|(q, o)| q.file == *file && **o == Outcome::Data)
            .count();
        if got < *floor {
            below.push(format!("{file}: {got} < floor {floor}"));
        } else if got > *floor {
            println!("note: {file} has {got}, above its floor {floor}: raise FLOORS");
        }
    }
    assert!(
        below.is_empty(),
        "fewer mixin queries return data than measured before:\n  {}\n{report}",
        below.join("\n  ")
    );
}

/// Per query, then the summary table (`| file | N / M (K n/a) |`): the
/// not-applicable reasons come from `<peer>-names.txt`.
fn report(queries: &[Query], outcomes: &[Outcome]) -> String {
    let mut na: BTreeMap<String, String> = MIXINS
        .iter()
        .flat_map(|m| names_fixture(m.peer))
        .filter_map(|(n, r)| r.map(|r| (n, r)))
        .collect();
    // A name the rules record only from not-applicable names is one too.
    for (q, o) in queries.iter().zip(outcomes) {
        if let (Some(recorded), Outcome::Empty(missing)) = (q.what.strip_prefix("record "), o)
            && !missing.is_empty()
            && missing.iter().all(|n| na.contains_key(n))
        {
            na.insert(
                recorded.to_owned(),
                format!("recorded from {}", missing.join(", ")),
            );
        }
    }
    let mut out = String::from("mixin queries (+ data, - no data, ! error):\n");
    let mut table = BTreeMap::<&str, (usize, usize, usize)>::new();
    for (q, o) in queries.iter().zip(outcomes) {
        let row = table.entry(q.file).or_default();
        row.1 += 1;
        let line = match o {
            Outcome::Data => {
                row.0 += 1;
                format!("+ {} {}", q.file, q.what)
            }
            Outcome::Empty(missing) => {
                let not_applicable =
                    !missing.is_empty() && missing.iter().all(|n| na.contains_key(n));
                row.2 += usize::from(not_applicable);
                let names: Vec<String> = missing
                    .iter()
                    .map(|n| match na.get(n) {
                        Some(reason) => format!("{n} (n/a: {reason})"),
                        None => n.clone(),
                    })
                    .collect();
                if names.is_empty() {
                    format!(
                        "- {} {}: no series (every name it selects has series, its matchers or operators leave none)",
                        q.file, q.what
                    )
                } else {
                    format!("- {} {}: no series of {}", q.file, q.what, names.join(", "))
                }
            }
            Outcome::Error(e) => format!("! {} {}: {e}", q.file, q.what),
        };
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str(
        "\n| mixin file | rules usable / queries returning data | of which not applicable |\n|---|---|---|\n",
    );
    for m in MIXINS {
        for file in std::iter::once(&m.rules).chain(m.dashboards) {
            let (data, total, na) = table.get(file).copied().unwrap_or_default();
            out.push_str(&format!("| {file} | {data} / {total} | {na} |\n"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The names the mixins select, and redis_exporter's dashboard (CI)
// ---------------------------------------------------------------------------

/// Names of the fixtures, not marked not applicable, that perfwatch does not
/// export yet, each with why: [`applicable_mixin_names_are_exported`] checks
/// they are still missing (remove one when it lands).
const NOT_YET_EXPORTED: &[(&str, &str)] = &[
    (
        "pg_exporter_last_scrape_error",
        "postgres_exporter's health of its own last scrape; perfwatch says a target's health as perfwatch_target_up and its poll errors",
    ),
    ("pg_statio_user_tables_heap_blks_hit", STATIO),
    ("pg_statio_user_tables_heap_blks_read", STATIO),
    ("pg_statio_user_tables_idx_blks_hit", STATIO),
    ("pg_statio_user_tables_idx_blks_read", STATIO),
];

const STATIO: &str = "postgres_exporter's per-table pg_statio_user_tables families (the postgres mixin's cache hit rate recording rules): not in perfwatch's postgres catalog";

/// Every name of `<peer>-names.txt` not marked not applicable (and not in
/// [`NOT_YET_EXPORTED`]) has a sample in perfwatch's /metrics, watching a
/// Redis, a PostgreSQL and a MariaDB under load (counters of commands and
/// rows appear once used), with the opt-in `processlist = true` the mysqld
/// mixin's "Process States" panels need (as mysqld_exporter needs
/// `--collect.info_schema.processlist`); every [`NOT_YET_EXPORTED`] name is
/// still missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn applicable_mixin_names_are_exported() {
    let stack = start_loaded("processlist = true\n").await;
    let mut want = BTreeMap::new();
    for m in MIXINS {
        for (name, na) in names_fixture(m.peer) {
            let known_gap = NOT_YET_EXPORTED.iter().any(|(n, _)| *n == name);
            if na.is_none() && !known_gap {
                want.insert(name, m.peer);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let (missing, exported) = loop {
        let exported: BTreeSet<String> = Scrape::parse(&stack.pw.scrape().await)
            .samples
            .into_iter()
            .map(|(n, _, _)| n)
            .collect();
        let missing: Vec<String> = want
            .iter()
            .filter(|(n, _)| !exported.contains(*n))
            .map(|(n, peer)| format!("{peer}: {n}"))
            .collect();
        if missing.is_empty() || Instant::now() >= deadline {
            break (missing, exported);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    stack.stop().await;
    assert!(
        missing.is_empty(),
        "perfwatch exports no sample of {} name(s) the mixins select (tests/data/mixins/<peer>-names.txt):\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
    let landed: Vec<&str> = NOT_YET_EXPORTED
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| exported.contains(*n))
        .collect();
    assert!(
        landed.is_empty(),
        "perfwatch exports {landed:?} now: remove them from NOT_YET_EXPORTED"
    );
}

/// redis_exporter's own Grafana dashboard (grafana.com 763) as the Debian
/// package installs it (read there, not committed here).
const REDIS_EXPORTER_DASHBOARD: &str =
    "/usr/share/doc/prometheus-redis-exporter/examples/grafana_prometheus_redis_dashboard.json";

/// [`REDIS_EXPORTER_DASHBOARD`]'s query template variables and panel
/// queries, as [`queries_with_variables`] runs them.
fn installed_redis_dashboard_queries() -> Vec<Query> {
    let path = REDIS_EXPORTER_DASHBOARD;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e}: install it with `apt-get install -y prometheus-redis-exporter`")
    });
    let d: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let str_of = |v: &serde_json::Value, key: &str| -> Option<String> {
        v.get(key).and_then(|x| x.as_str()).map(str::to_owned)
    };
    let variables = d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let query = str_of(v, "query").or_else(|| str_of(&v["query"], "query"));
            (
                str_of(v, "name").unwrap_or_default(),
                query.unwrap_or_default(),
            )
        })
        .collect();
    let mut panels = Vec::new();
    for p in support_dashboards::all_panels(&d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = str_of(t, "expr") {
                panels.push((str_of(p, "title").unwrap_or_default(), expr));
            }
        }
    }
    assert!(!panels.is_empty(), "{path}: no panel queries");
    queries_with_variables("grafana_prometheus_redis_dashboard.json", variables, panels)
}

/// Every query of redis_exporter's dashboard ([`REDIS_EXPORTER_DASHBOARD`],
/// its `$instance` variable's `label_values` series included) returns data
/// from a Prometheus scraping perfwatch over a Redis under a warm cache
/// workload, within 60 s (rates need two scrapes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_exporter_dashboard_queries_return_data() {
    let queries = installed_redis_dashboard_queries();
    let redis = start_or_panic(blocking(|| RedisServer::start(&[])).await);
    let mut cache_load = CacheWorkload::start(CacheTarget::Redis(redis.url()), Mode::Warm);
    let pw = Perfwatch::start(&format!("{GLOBAL}{}", redis_block(&redis))).await;
    let prom = start_prometheus(pw.addr, &[&REDIS], Vec::new()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let outcomes = loop {
        let outcomes = tokio::task::block_in_place(|| measure(&prom, &queries));
        if outcomes.iter().all(|o| *o == Outcome::Data) || Instant::now() >= deadline {
            break outcomes;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    cache_load.stop();
    pw.stop().await;
    let without: Vec<String> = queries
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o != Outcome::Data)
        .map(|(q, o)| format!("{}: {o:?}\n    {}", q.what, q.expr))
        .collect();
    assert!(
        without.is_empty(),
        "{} of {} queries of {REDIS_EXPORTER_DASHBOARD} return no data:\n  {}",
        without.len(),
        queries.len(),
        without.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// Key alerts fire
// ---------------------------------------------------------------------------

/// The conditions of the mixins' key alerts, restated as our own PromQL from
/// what the mixins alert on (their files are listed in
/// tests/data/mixins/README.md; nothing of them is copied here). Each rule
/// keeps the name of the upstream alert it stands for, so a failure points
/// at it, and fires after [`FAST_FOR`] instead of the upstream `for:`.
/// perfwatch's `target` label is per server, where the postgres mixin groups
/// by `job`, `instance` and postgres_exporter's `server`.
const RESTATED: &[(&str, &str)] = &[
    // The redis-mixin's RedisDown (alerts/redis.libsonnet): redis_exporter's
    // up gauge reads 0.
    ("RedisDown", "redis_up == 0"),
    // The postgres mixin's PostgreSQLDown (alerts/postgres.libsonnet): pg_up
    // is not 1.
    ("PostgreSQLDown", "pg_up != 1"),
    // Its PostgreSQLMaxConnectionsReached: the sessions pg_stat_activity
    // counts reach max_connections less superuser_reserved_connections.
    (
        "PostgreSQLMaxConnectionsReached",
        "sum by (target) (pg_stat_activity_count) >= max by (target) (pg_settings_max_connections) - max by (target) (pg_settings_superuser_reserved_connections)",
    ),
    // Its PostgreSQLHighConnections: above 80 % of that limit.
    (
        "PostgreSQLHighConnections",
        "sum by (target) (pg_stat_activity_count) > 0.8 * (max by (target) (pg_settings_max_connections) - max by (target) (pg_settings_superuser_reserved_connections))",
    ),
    // The mysqld-mixin's MySQLDown (alerts/alerts.yaml): mysql_up is not 1.
    ("MySQLDown", "mysql_up != 1"),
];

/// A rule file (name, text) with the [`RESTATED`] rules named `alerts`.
fn restated_rules(alerts: &[&str]) -> Vec<(String, String)> {
    let mut text = String::from("groups:\n- name: restated\n  rules:\n");
    for alert in alerts {
        let (_, expr) = RESTATED
            .iter()
            .find(|(name, _)| name == alert)
            .unwrap_or_else(|| panic!("{alert} is not in RESTATED"));
        text.push_str(&format!(
            "  - alert: {alert}\n    expr: '{expr}'\n    for: {FAST_FOR}\n"
        ));
    }
    vec![("restated.rules.yml".to_owned(), text)]
}

/// With perfwatch watching one server (`block`) and Prometheus scraping it
/// as `m`'s job with the restated `alert`: once `up` returns a sample `alert`
/// is quiet; `kill` stops the server → `alert` fires for perfwatch's
/// `target`.
async fn killing_fires(
    m: &Mixin,
    block: String,
    up: &str,
    alert: &str,
    target: &str,
    kill: impl FnOnce() -> Result<(), HarnessError>,
) {
    let pw = Perfwatch::start(&format!("{GLOBAL}{block}")).await;
    let prom = start_prometheus(pw.addr, &[m], restated_rules(&[alert])).await;
    wait_query(&prom, Duration::from_secs(30), up).await;
    tokio::task::block_in_place(|| assert_quiet(&prom, alert));

    tokio::task::block_in_place(kill).unwrap();
    let labels = wait_firing(&prom, Duration::from_secs(30), alert).await;
    assert_eq!(
        labels.get("target").map(String::as_str),
        Some(target),
        "{labels:?}"
    );
    pw.stop().await;
}

/// Redis killed → the restated `RedisDown` fires for its target.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_fires() {
    let mut redis = start_or_panic(blocking(|| RedisServer::start(&[])).await);
    let block = redis_block(&redis);
    let up = r#"redis_up{job="redis"} == 1"#;
    killing_fires(&REDIS, block, up, "RedisDown", "cache", || redis.kill()).await;
}

/// PostgreSQL killed → the restated `PostgreSQLDown` fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_down_fires() {
    let mut pg = start_postgres(&[]).await;
    let block = postgres_block(&pg);
    killing_fires(
        &POSTGRES,
        block,
        "pg_up == 1",
        "PostgreSQLDown",
        "db",
        || pg.kill(),
    )
    .await;
}

/// PostgreSQL with `max_connections` 12 and 3 reserved: 9 sessions
/// (`pg_sleep`) besides perfwatch's → the server counts at least 10 client
/// backends, and the restated `PostgreSQLMaxConnectionsReached` and
/// `PostgreSQLHighConnections` fire.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_too_many_connections_fire() {
    const SETTINGS: &[(&str, &str)] = &[
        ("max_connections", "12"),
        ("superuser_reserved_connections", "3"),
    ];
    const ALERTS: [&str; 2] = [
        "PostgreSQLMaxConnectionsReached",
        "PostgreSQLHighConnections",
    ];
    let pg = Arc::new(start_postgres(SETTINGS).await);
    let pw = Perfwatch::start(&format!("{GLOBAL}{}", postgres_block(&pg))).await;
    let prom = start_prometheus(pw.addr, &[&POSTGRES], restated_rules(&ALERTS)).await;
    wait_query(
        &prom,
        Duration::from_secs(30),
        "sum(pg_stat_activity_count) >= 1",
    )
    .await;
    tokio::task::block_in_place(|| {
        for alert in ALERTS {
            assert_quiet(&prom, alert);
        }
    });

    let _sessions = Sessions(
        (0..9)
            .map(|_| {
                Command::new(pg.psql_path())
                    .arg(pg.dsn_for("app"))
                    .args(["-X", "-q", "-c", "SELECT pg_sleep(600)"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("psql starts")
            })
            .collect(),
    );
    let backends = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'";
    poll(
        Duration::from_secs(30),
        "10 client backends (9 sessions, perfwatch)",
        || {
            let n: u32 = pg.psql(backends).ok()?.trim().parse().ok()?;
            (n >= 10).then_some(())
        },
        || {
            format!(
                "{:?}",
                pg.psql("SELECT datname, usename, state, query FROM pg_stat_activity")
            )
        },
    )
    .await;
    for alert in ALERTS {
        wait_firing(&prom, Duration::from_secs(30), alert).await;
    }
    pw.stop().await;
}

/// `psql` sessions the test holds open; killed when dropped.
struct Sessions(Vec<Child>);

impl Drop for Sessions {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// MariaDB killed → the restated `MySQLDown` fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_down_fires() {
    let (mut db, _tmp) = start_mariadb().await;
    let block = mysql_block(&db);
    killing_fires(&MYSQLD, block, "mysql_up == 1", "MySQLDown", "mdb", || {
        db.kill()
    })
    .await;
}

// ---------------------------------------------------------------------------
// The not-applicable marks, against the peers
// ---------------------------------------------------------------------------

/// A `--extend.query-path` entry like postgres_exporter's built-in
/// `stat_user_tables`/`statio_user_tables` collectors: one series per table
/// of `view`, labels `datname`, `schemaname`, `relname`, and `columns`
/// (name, usage; NULL as 0).
fn peer_table_query(view: &str, columns: &[(&str, &str)]) -> String {
    let selected: Vec<String> = columns
        .iter()
        .map(|(c, _)| format!("COALESCE({c}, 0) AS {c}"))
        .collect();
    let mut out = format!(
        "{view}:\n  query: \"SELECT current_database() AS datname, schemaname, relname, {} FROM {view}\"\n  metrics:\n",
        selected.join(", ")
    );
    let labels = ["datname", "schemaname", "relname"].map(|l| (l, "LABEL"));
    for (name, usage) in labels.iter().chain(columns) {
        out.push_str(&format!(
            "    - {name}: {{usage: \"{usage}\", description: \"{view}.{name}\"}}\n"
        ));
    }
    out
}

/// [`PG_REPLICATION_QUERY`] and the two table views' queries.
fn peer_pg_queries() -> String {
    let stat = [
        ("seq_scan", "COUNTER"),
        ("idx_scan", "COUNTER"),
        ("n_live_tup", "GAUGE"),
        ("n_dead_tup", "GAUGE"),
    ];
    let statio = [
        "heap_blks_read",
        "heap_blks_hit",
        "idx_blks_read",
        "idx_blks_hit",
    ]
    .map(|c| (c, "COUNTER"));
    format!(
        "{PG_REPLICATION_QUERY}{}{}",
        peer_table_query("pg_stat_user_tables", &stat),
        peer_table_query("pg_statio_user_tables", &statio)
    )
}

/// The not-applicable marks of `<peer>-names.txt` are the peers' own
/// behaviour: the Debian packages' redis_exporter (with
/// `-include-system-metrics`), postgres_exporter (with
/// [`peer_pg_queries`]) and mysqld_exporter (with
/// `--collect.info_schema.processlist`, while a client sleeps in a query, as
/// it only counts other connections), against the same kind of throwaway
/// servers, export no name marked not applicable, and every name they leave
/// out is marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn not_applicable_names_are_what_the_peers_leave_out() {
    let redis = start_or_panic(blocking(|| RedisServer::start(&[])).await);
    let pg = start_postgres(&[]).await;
    let (mariadb, _mariadb_tmp) = start_mariadb().await;
    let mariadb = Arc::new(mariadb);
    let sleeper = mariadb.clone();
    std::thread::spawn(move || sleeper.sql("SELECT SLEEP(20)"));
    let redis_addr = format!("-redis.addr={}", redis.url());
    let pg_dsn = format!(
        "postgresql://postgres@127.0.0.1:{}/app?sslmode=disable",
        pg.port()
    );
    let my_dsn = format!("root@tcp(127.0.0.1:{})/", mariadb.port());
    let pg_queries = peer_pg_queries();
    // (mixin, package, args, env, files, ready line)
    type Spec<'a> = (
        &'a Mixin,
        &'a str,
        Vec<&'a str>,
        Vec<(&'a str, &'a str)>,
        Vec<(&'a str, &'a str)>,
        &'a str,
    );
    let specs: [Spec; 3] = [
        (
            &REDIS,
            "prometheus-redis-exporter",
            vec![&redis_addr, "-include-system-metrics"],
            vec![],
            vec![],
            "redis_up 1",
        ),
        (
            &POSTGRES,
            "prometheus-postgres-exporter",
            vec!["--extend.query-path={dir}/queries.yaml"],
            vec![("DATA_SOURCE_NAME", &pg_dsn)],
            vec![("queries.yaml", &pg_queries)],
            "pg_up 1",
        ),
        (
            &MYSQLD,
            "prometheus-mysqld-exporter",
            vec!["--collect.info_schema.processlist"],
            vec![("DATA_SOURCE_NAME", &my_dsn)],
            vec![],
            "mysql_up 1",
        ),
    ];
    let mut peers = Vec::new();
    for (m, package, args, env, files, ready) in specs {
        peers.push((
            m,
            PeerExporter::start(package, &args, &env, &files, ready).await,
        ));
    }
    let mut wrong = Vec::new();
    for (m, peer) in &peers {
        let scrape = peer.scrape().await;
        let exported: BTreeSet<&str> = scrape.samples.iter().map(|(n, _, _)| n.as_str()).collect();
        for (name, na) in names_fixture(m.peer) {
            match (exported.contains(name.as_str()), na) {
                (true, Some(reason)) => wrong.push(format!(
                    "{}: {name} is marked not applicable ({reason}) but the peer exports it",
                    m.peer
                )),
                (false, None) => wrong.push(format!(
                    "{}: the peer does not export {name} here: mark it in not-applicable.txt",
                    m.peer
                )),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
