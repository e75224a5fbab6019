//! `perfwatch-demo`: a throwaway local stack from the test bench and
//! perfwatch watching all of it — what a new user runs first.
//!
//! [`start`] brings up, in parallel, Redis (4 MB `maxmemory`, LRU
//! eviction) with a replica, a Sentinel watching it and a three-node Redis
//! Cluster beside it, PostgreSQL (JSON log with every statement over 10 ms) with
//! PgBouncer in front,
//! MariaDB (slow log over 10 ms, `performance_schema`), and, when installed,
//! Prometheus (the example config and the real alert rules) with
//! Alertmanager (the example config, delivering to a webhook whose
//! notifications the demo prints). Then the sample app
//! ([`SampleApp`](crate::SampleApp), cache-aside reads through Redis
//! and PostgreSQL), the cache workload through the app (alternating warm and
//! cold phases, or forced with `POST /demo/<mode>` on the app), the database
//! workload (a growing `trip` table and slow reports in both databases), and
//! perfwatch with every collector on them plus the example config's phases.
//! [`Demo::run_until`] waits for Ctrl-C and stops everything; dropping the
//! [`Demo`] stops everything too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, DropGuard};

use crate::deploy;
use crate::workload::{
    CacheTarget, CacheWorkload, DbWorkload, Mode, ModeSwitch, ROWS_PER_TICK, seed_mariadb,
    seed_postgres,
};
use crate::{
    AlertWebhook, AlertmanagerServer, HarnessError, MariaDbServer, PgbouncerServer, PostgresServer,
    PrometheusServer, RedisCluster, RedisSentinel, RedisServer, SampleApp, SampleAppBackends,
    find_binary, free_port,
};
use perfwatch::config::Config;

/// Errors that stop the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A throwaway server could not start (the message names it and quotes
    /// its log).
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// The generated config did not load (a bug).
    #[error("demo config: {0}")]
    Config(#[from] perfwatch::config::ConfigErrors),
    /// perfwatch itself failed.
    #[error(transparent)]
    Run(#[from] perfwatch::RunError),
    /// A local file operation failed.
    #[error("demo: {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where perfwatch listens (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Duration of each warm and cold phase of the cache workload.
    pub phase: Duration,
    /// Poll interval of perfwatch.
    pub interval: Duration,
    /// Load the alert rules' fast variant (`for: 2s`, 1m windows) instead of
    /// the real file, so alerts fire within a minute.
    pub fast_alerts: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9896".into(),
            phase: Duration::from_secs(120),
            interval: Duration::from_secs(5),
            fast_alerts: false,
        }
    }
}

/// The slow-log threshold of both databases.
const SLOW_THRESHOLD: &str = "10ms";
/// MariaDB's spelling of [`SLOW_THRESHOLD`].
const SLOW_THRESHOLD_SECONDS: &str = "0.01";
/// How often the database workload adds rows and runs its report.
const DB_TICK: Duration = Duration::from_secs(1);

/// The `[[phase]]` tables of `config/perfwatch.example.toml` (the seed
/// guide's architecture phases), appended to the demo's config.
pub fn seed_phases() -> &'static str {
    const EXAMPLE: &str = include_str!("../../../config/perfwatch.example.toml");
    EXAMPLE
        .find("\n[[phase]]")
        .map_or("", |i| &EXAMPLE[i + 1..])
}

/// Where the demo's sources are, for [`demo_config`].
#[derive(Debug, Clone)]
pub struct DemoSources {
    /// The Redis URL.
    pub redis_url: String,
    /// The URL of a replica of that Redis.
    pub redis_replica_url: String,
    /// `host:port` of a Sentinel monitoring that Redis as `cache`.
    pub redis_sentinel: String,
    /// The URL of one node of a Redis Cluster.
    pub redis_cluster_url: String,
    /// The PostgreSQL DSN (database `app`).
    pub postgres_dsn: String,
    /// The DSN of a streaming standby of that PostgreSQL.
    pub postgres_replica_dsn: String,
    /// PgBouncer's admin console DSN.
    pub pgbouncer_dsn: String,
    /// PostgreSQL's JSON log directory.
    pub postgres_log_dir: PathBuf,
    /// The MariaDB DSN (database `app`).
    pub mariadb_dsn: String,
    /// The DSN of a replica of that MariaDB.
    pub mariadb_replica_dsn: String,
    /// MariaDB's slow query log.
    pub mariadb_slow_log: PathBuf,
    /// The sample app.
    pub app: SocketAddr,
    /// A regex matching the database servers' command lines.
    pub process_match: String,
}

/// The config the demo runs perfwatch with: every collector on the demo's
/// sources, then [`seed_phases`].
pub fn demo_config(s: &DemoSources, interval: Duration) -> String {
    // The timeout must stay below the interval.
    let timeout = (interval * 4 / 5).min(Duration::from_secs(3));
    let (interval, timeout) = (
        humantime::format_duration(interval),
        humantime::format_duration(timeout),
    );
    let app = s.app;
    let toml_str = |v: &str| toml::Value::String(v.to_owned()).to_string();
    format!(
        r#"[global]
interval = "{interval}"
timeout = "{timeout}"

[[redis]]
name = "cache"
url = {redis}
[redis.keys]
prefixes = ["bad_days:", "response_cache:", "session:"]
max_keys_per_poll = 5000
# Phase 3's job queue (empty here: the demo's "job" is the workload's
# trip_summary refresh); the example config's health trigger reads it.
[redis.key_checks]
keys = ["celery"]

# A replica of each server: the replication rows of the dashboards.
[[redis]]
name = "cache-replica"
url = {redis_replica}

# The same Redis found through a Sentinel, and a Redis Cluster: the
# Sentinel and Cluster row of the Redis dashboard.
[[redis]]
name = "cache-ha"
sentinels = [{sentinel}]
master_name = "cache"

[[redis]]
name = "sessions"
url = {cluster}

[[postgres]]
name = "db-replica"
dsn = {pg_replica}

[[mysql]]
name = "legacy-replica"
dsn = {mdb_replica}

[[postgres]]
name = "db"
dsn = {pg}
index_interval = "15s"
min_table_rows = 1000
min_seq_scans = 5
[[postgres.query]]
name = "trips_total"
sql = "SELECT count(*) AS value FROM trip"
[[postgres.query]]
name = "drivers_total"
sql = "SELECT count(DISTINCT driver_id) AS value FROM trip"
[[postgres.query]]
name = "trip_summary_age_seconds"
sql = "SELECT extract(epoch FROM now() - max(computed_at))::float8 AS value FROM trip_summary"
# Plans of the slow log's classes and index advice (event has no index on kind).
[postgres.explain]
sources = ["postgres-log"]
interval = "30s"
min_table_rows = 1000

[[pgbouncer]]
name = "bouncer"
dsn = {bouncer}

[[mysql]]
name = "legacy"
dsn = {mdb}
index_interval = "15s"
missing_index_min_rows = 1000
[[mysql.query]]
name = "legacy_trips_total"
sql = "SELECT count(*) AS value FROM trip"
[mysql.explain]
sources = ["mysql-slow"]
interval = "30s"
min_table_rows = 1000

[[slowlog]]
name = "postgres-log"
format = "postgres-json"
path = {pg_log}
start_at = "beginning"

[[slowlog]]
name = "mysql-slow"
format = "mysql"
path = {mdb_log}
start_at = "beginning"

[[http]]
name = "api-health"
url = "http://{app}/health"
kind = "health"

[[http]]
name = "bad-days"
url = "http://{app}/api/analytics/bad-days?driver=7"
kind = "latency"
repeat = 2

[[http]]
name = "api-pool"
url = "http://{app}/pool"
kind = "pool"

[[http]]
name = "api-metrics"
url = "http://{app}/metrics"
kind = "prometheus"

[[process]]
name = "databases"
match = {process}

{phases}"#,
        redis = toml_str(&s.redis_url),
        redis_replica = toml_str(&s.redis_replica_url),
        sentinel = toml_str(&s.redis_sentinel),
        cluster = toml_str(&s.redis_cluster_url),
        pg = toml_str(&s.postgres_dsn),
        pg_replica = toml_str(&s.postgres_replica_dsn),
        mdb_replica = toml_str(&s.mariadb_replica_dsn),
        bouncer = toml_str(&s.pgbouncer_dsn),
        mdb = toml_str(&s.mariadb_dsn),
        pg_log = toml_str(&s.postgres_log_dir.to_string_lossy()),
        mdb_log = toml_str(&s.mariadb_slow_log.to_string_lossy()),
        process = toml_str(&s.process_match),
        phases = seed_phases(),
    )
}

/// The demo's addresses.
#[derive(Debug, Clone)]
pub struct DemoUrls {
    /// perfwatch's address.
    pub perfwatch: SocketAddr,
    /// The sample app's address.
    pub app: SocketAddr,
    /// Prometheus, when installed.
    pub prometheus: Option<String>,
    /// Alertmanager, when installed.
    pub alertmanager: Option<String>,
    /// The Redis URL.
    pub redis: String,
    /// The PostgreSQL DSN.
    pub postgres: String,
    /// The DSN of PgBouncer in front of it (what the sample app uses).
    pub pgbouncer: String,
    /// The MariaDB DSN.
    pub mariadb: String,
    /// perfwatch's config file.
    pub config: PathBuf,
}

/// A running demo. Dropping it stops everything (perfwatch asynchronously,
/// so inside the runtime it ran on); [`run_until`](Self::run_until) stops
/// everything and waits for it.
pub struct Demo {
    urls: DemoUrls,
    options: DemoOptions,
    /// Why Prometheus or Alertmanager did not start (install hints).
    missing: Vec<String>,
    switch: ModeSwitch,
    // Fields drop in order: perfwatch and the background tasks first, then
    // the workloads, the app, and last the servers.
    perfwatch_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    perfwatch: Option<tokio::task::JoinHandle<Result<(), perfwatch::RunError>>>,
    _background: DropGuard,
    cache_workload: CacheWorkload,
    db_workload: DbWorkload,
    _app: SampleApp,
    _webhook: Option<Arc<AlertWebhook>>,
    prometheus: Option<PrometheusServer>,
    _alertmanager: Option<AlertmanagerServer>,
    _redis: RedisServer,
    _pgbouncer: PgbouncerServer,
    _postgres: Arc<PostgresServer>,
    _mariadb: Arc<MariaDbServer>,
    /// A replica of Redis, PostgreSQL and MariaDB each.
    _replicas: (RedisServer, PostgresServer, MariaDbServer),
    /// A Sentinel watching the Redis, and a three-node Redis Cluster.
    _redis_ha: (RedisSentinel, RedisCluster),
    _dir: tempfile::TempDir,
}

/// Prometheus and Alertmanager, or why not.
type Monitoring = (
    Option<PrometheusServer>,
    Option<AlertmanagerServer>,
    Vec<String>,
);

/// Starts the whole stack and perfwatch; returns once everything is up.
/// Must run inside a multi-threaded Tokio runtime.
pub async fn start(options: DemoOptions) -> Result<Demo, DemoError> {
    let dir = tempfile::tempdir().map_err(|source| DemoError::Io {
        context: "creating the demo dir",
        source,
    })?;
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|source| DemoError::Listen {
            addr: options.listen.clone(),
            source,
        })?;
    let perfwatch_addr = listener.local_addr().map_err(|source| DemoError::Listen {
        addr: options.listen.clone(),
        source,
    })?;
    let webhook = Arc::new(AlertWebhook::start().await?);

    // MariaDB gets its own tmpdir (see tests/mysql.rs), which also holds
    // its slow log.
    let mariadb_slow_log = dir.path().join("mariadb-slow.log");
    let mariadb_tmp = dir.path().join("mariadb-tmp");
    std::fs::create_dir(&mariadb_tmp).map_err(|source| DemoError::Io {
        context: "creating the mariadb tmpdir",
        source,
    })?;

    // Every command goes to Redis's SLOWLOG: the demo's commands are all
    // fast, and the SLOWLOG panels should still show something.
    let redis = blocking(|| {
        let primary = RedisServer::start(&[
            ("maxmemory", "4mb"),
            ("maxmemory-policy", "allkeys-lru"),
            ("slowlog-log-slower-than", "0"),
        ])?;
        let replica = primary.start_replica(&[])?;
        let sentinel = RedisSentinel::start(&primary, "cache", 1, None)?;
        let cluster = RedisCluster::start(3, 0)?;
        Ok::<_, HarnessError>((primary, replica, sentinel, cluster))
    });
    let postgres = blocking(|| {
        let pg = PostgresServer::start(&[
            ("log_min_duration_statement", SLOW_THRESHOLD),
            ("logging_collector", "on"),
            ("log_destination", "jsonlog"),
            ("log_directory", "log"),
            ("lc_messages", "C"),
        ])?;
        seed_postgres(&pg)?;
        let bouncer = PgbouncerServer::start(&pg, &[])?;
        let standby = pg.start_replica("standby", &[])?;
        Ok((pg, bouncer, standby))
    });
    let (slow_log, tmp) = (
        mariadb_slow_log.to_string_lossy().into_owned(),
        mariadb_tmp.to_string_lossy().into_owned(),
    );
    let mariadb = blocking(move || {
        let db = MariaDbServer::start(&[
            ("performance_schema", "ON"),
            ("tmpdir", tmp.as_str()),
            ("slow_query_log", "1"),
            ("long_query_time", SLOW_THRESHOLD_SECONDS),
            ("slow_query_log_file", slow_log.as_str()),
            ("server_id", "1"),
            ("log_bin", "mysql-bin"),
        ])?;
        seed_mariadb(&db)?;
        let replica = db.start_replica(&[("performance_schema", "ON")])?;
        Ok((db, replica))
    });
    let rules = if options.fast_alerts {
        deploy::rules_fast_variant(deploy::RULES)
    } else {
        deploy::RULES.to_owned()
    };
    let am_config = deploy::alertmanager_config(webhook.url());
    let monitoring = blocking(move || start_monitoring(perfwatch_addr, &am_config, &rules));
    let (redis, postgres, mariadb, monitoring) = tokio::join!(redis, postgres, mariadb, monitoring);
    let (
        (redis, redis_replica, redis_sentinel, redis_cluster),
        (postgres, pgbouncer, postgres_replica),
        (mariadb, mariadb_replica),
    ) = (redis?, postgres?, mariadb?);
    let (postgres, mariadb) = (Arc::new(postgres), Arc::new(mariadb));
    let (prometheus, alertmanager, missing) = monitoring?;

    let switch = ModeSwitch::new(Mode::Warm);
    let app = SampleApp::start(
        Some(SampleAppBackends {
            redis_url: redis.url(),
            postgres_dsn: pgbouncer.dsn_for("app"),
        }),
        Some(switch.clone()),
    )
    .await?;
    let sources = DemoSources {
        redis_url: redis.url(),
        redis_replica_url: redis_replica.url(),
        redis_sentinel: redis_sentinel.host_port(),
        redis_cluster_url: redis_cluster.nodes()[0].url(),
        postgres_dsn: postgres.dsn_for("app"),
        postgres_replica_dsn: postgres_replica.dsn_for("app"),
        pgbouncer_dsn: pgbouncer.dsn(),
        postgres_log_dir: postgres.log_dir().to_path_buf(),
        mariadb_dsn: format!("mysql://root@127.0.0.1:{}/app", mariadb.port()),
        mariadb_replica_dsn: format!("mysql://root@127.0.0.1:{}/app", mariadb_replica.port()),
        mariadb_slow_log,
        app: app.addr(),
        process_match: format!(
            "{}|{}",
            regex::escape(&postgres.data_dir().to_string_lossy()),
            regex::escape(&mariadb.config_path().to_string_lossy())
        ),
    };
    let config_path = dir.path().join("perfwatch.toml");
    std::fs::write(&config_path, demo_config(&sources, options.interval)).map_err(|source| {
        DemoError::Io {
            context: "writing the demo config",
            source,
        }
    })?;
    let config = Config::load(&config_path)?;

    let cache_workload = CacheWorkload::with_switch(CacheTarget::App(app.addr()), switch.clone());
    let db_workload = DbWorkload::start(Some(postgres.clone()), Some(mariadb.clone()), DB_TICK);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let perfwatch = tokio::spawn(perfwatch::run(config, listener, async {
        let _ = rx.await;
    }));

    let background = CancellationToken::new();
    tokio::spawn(alternate_phases(
        switch.clone(),
        options.phase,
        background.clone(),
    ));
    if alertmanager.is_some() {
        tokio::spawn(print_notifications(webhook.clone(), background.clone()));
    }

    Ok(Demo {
        urls: DemoUrls {
            perfwatch: perfwatch_addr,
            app: app.addr(),
            prometheus: prometheus.as_ref().map(PrometheusServer::url),
            alertmanager: alertmanager.as_ref().map(AlertmanagerServer::url),
            redis: redis.url(),
            postgres: postgres.dsn_for("app"),
            pgbouncer: pgbouncer.dsn_for("app"),
            mariadb: sources.mariadb_dsn.clone(),
            config: config_path,
        },
        options,
        missing,
        switch,
        perfwatch_shutdown: Some(tx),
        perfwatch: Some(perfwatch),
        _background: background.drop_guard(),
        cache_workload,
        db_workload,
        _app: app,
        _webhook: Some(webhook),
        prometheus,
        _alertmanager: alertmanager,
        _redis: redis,
        _pgbouncer: pgbouncer,
        _postgres: postgres,
        _mariadb: mariadb,
        _replicas: (redis_replica, postgres_replica, mariadb_replica),
        _redis_ha: (redis_sentinel, redis_cluster),
        _dir: dir,
    })
}

/// Runs a blocking harness call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HarnessError> + Send + 'static,
) -> Result<T, DemoError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DemoError::Io {
            context: "starting a server",
            source: std::io::Error::other(e),
        })?
        .map_err(DemoError::from)
}

/// Prometheus (scraping `perfwatch`, loading `rules`) and Alertmanager, as
/// far as they are installed; what is missing becomes an install hint.
fn start_monitoring(
    perfwatch: SocketAddr,
    am_config: &str,
    rules: &str,
) -> Result<Monitoring, HarnessError> {
    let mut missing = Vec::new();
    let alertmanager = match find_binary("prometheus-alertmanager", "prometheus-alertmanager") {
        Ok(_) => Some(AlertmanagerServer::start(am_config)?),
        Err(e) => {
            missing.push(format!("Alertmanager not started: {e}"));
            None
        }
    };
    let prometheus = match find_binary("prometheus", "prometheus") {
        Ok(_) => {
            // Without Alertmanager, Prometheus alerts to a port nobody
            // listens on: its alerts page still works.
            let am_port = match &alertmanager {
                Some(am) => am.port(),
                None => free_port()?,
            };
            let config = deploy::prometheus_config(perfwatch, am_port);
            Some(PrometheusServer::start(
                &config,
                &[(deploy::RULES_IN_PROMETHEUS, rules)],
            )?)
        }
        Err(e) => {
            missing.push(format!("Prometheus not started: {e}"));
            None
        }
    };
    Ok((prometheus, alertmanager, missing))
}

/// Flips the workload between warm and cold every `phase`, unless a mode
/// was forced on the app.
async fn alternate_phases(switch: ModeSwitch, phase: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(phase) => {}
        }
        if switch.is_auto() {
            let next = if switch.get() == Mode::Warm {
                Mode::Cold
            } else {
                Mode::Warm
            };
            switch.set(next);
            println!("workload: {} phase", next.name());
        }
    }
}

/// Prints every notification Alertmanager delivers to the webhook.
async fn print_notifications(webhook: Arc<AlertWebhook>, cancel: CancellationToken) {
    let mut printed = 0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let delivered = webhook.delivered();
        for a in delivered.iter().skip(printed) {
            let label = |k: &str| a.labels.get(k).map_or("", String::as_str);
            let others: Vec<String> = a
                .labels
                .iter()
                .filter(|(k, _)| *k != "alertname")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!(
                "alertmanager: {} {} to {} ({})",
                label("alertname"),
                a.status,
                a.receiver,
                others.join(", ")
            );
        }
        printed = delivered.len();
    }
}

impl Demo {
    /// The demo's addresses.
    pub fn urls(&self) -> &DemoUrls {
        &self.urls
    }

    /// Why Prometheus or Alertmanager is not running (with the Debian
    /// package to install); empty when both run.
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    /// The demo's Prometheus, when installed.
    pub fn prometheus(&self) -> Option<&PrometheusServer> {
        self.prometheus.as_ref()
    }

    /// The cache workload's mode switch.
    pub fn workload(&self) -> ModeSwitch {
        self.switch.clone()
    }

    /// Ticks the database workload has done.
    pub fn db_ticks(&self) -> u64 {
        self.db_workload.ticks()
    }

    /// What the demo prints at start: every URL, what the workload does,
    /// how to force the cold phase, how to import the dashboards.
    pub fn describe(&self) -> String {
        let u = &self.urls;
        let pw = u.perfwatch;
        let app = u.app;
        let phase = humantime::format_duration(self.options.phase);
        let mut out = format!(
            "perfwatch-demo: everything below is throwaway (own data dirs, free ports) and stops with Ctrl-C.\n\
             \n\
             \x20 perfwatch landing page  http://{pw}/\n\
             \x20 perfwatch metrics       http://{pw}/metrics\n\
             \x20 slow query classes      http://{pw}/api/slow-queries\n"
        );
        if let Some(p) = &u.prometheus {
            let variant = if self.options.fast_alerts {
                ", fast variant"
            } else {
                ""
            };
            out.push_str(&format!(
                "  Prometheus              {p}  (scrapes perfwatch every 1s; rules: {}{variant})\n",
                deploy::RULES_FILE
            ));
        }
        if let Some(a) = &u.alertmanager {
            out.push_str(&format!(
                "  Alertmanager            {a}  (notifications are printed below)\n"
            ));
        }
        for m in &self.missing {
            out.push_str(&format!("  {m}\n"));
        }
        out.push_str(&format!(
            "  sample app              http://{app}/health  /pool  /metrics  /api/analytics/bad-days?driver=1\n\
             \x20 redis                   {}  (maxmemory 4mb, allkeys-lru)\n\
             \x20 postgres                {}  (JSON log of statements over {SLOW_THRESHOLD})\n\
             \x20 pgbouncer               {}  (session pooling; the app's connections go through it)\n\
             \x20 mariadb                 {}  (slow log over {SLOW_THRESHOLD}, performance_schema)\n\
             \x20 perfwatch config        {}\n\
             \n\
             workload: cache-aside reads through the app alternate every {phase} between warm (hit ratio about 0.95)\n\
             and cold (about 0.4; every miss is a {} ms PostgreSQL query); every second {ROWS_PER_TICK} rows are added to\n\
             table trip in both databases and a {} ms report runs on each.\n\
             \x20 force the cold phase:   curl -X POST http://{app}/demo/cold\n\
             \x20 back to warm:           curl -X POST http://{app}/demo/warm   (alternating again: /demo/auto)\n",
            u.redis,
            u.postgres,
            u.pgbouncer,
            u.mariadb,
            u.config.display(),
            crate::ANALYTICS_COST.as_millis(),
            crate::workload::REPORT_COST.as_millis(),
        ));
        if u.prometheus.is_some() {
            out.push_str(if self.options.fast_alerts {
                "  CacheHitRatioLow fires about a minute after the cold phase starts (fast variant: for: 2s, 1m windows).\n"
            } else {
                "  CacheHitRatioLow fires after 10 minutes of cold traffic (the real rules: for: 10m over 5m windows);\n\
                 \x20 `scripts/demo.sh --demo.fast-alerts` loads the same rules with for: 2s and 1m windows instead.\n"
            });
            let prom = u.prometheus.as_deref().unwrap_or_default();
            out.push_str(&format!(
                "\nGrafana (not started by the demo): add this Prometheus as a data source and import dashboards/*.json:\n\
                 \x20 curl -s -u admin:admin -H 'Content-Type: application/json' http://127.0.0.1:3000/api/datasources \\\n\
                 \x20   -d '{{\"name\":\"perfwatch-demo\",\"type\":\"prometheus\",\"access\":\"proxy\",\"url\":\"{prom}\"}}'\n\
                 \x20 for f in dashboards/*.json; do\n\
                 \x20   jq '{{dashboard: ., overwrite: true, inputs: [{{name: \"DS_PROMETHEUS\", type: \"datasource\", pluginId: \"prometheus\", value: \"perfwatch-demo\"}}]}}' \"$f\" |\n\
                 \x20   curl -s -u admin:admin -H 'Content-Type: application/json' http://127.0.0.1:3000/api/dashboards/import -d @-\n\
                 \x20 done\n"
            ));
        }
        out
    }

    /// Runs until `shutdown` completes (or perfwatch fails), then stops
    /// perfwatch, the workloads and every server, and waits for them.
    pub async fn run_until(
        mut self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), DemoError> {
        let mut perfwatch = self.perfwatch.take().expect("perfwatch runs until here");
        let result = tokio::select! {
            _ = shutdown => None,
            r = &mut perfwatch => Some(r),
        };
        let result = match result {
            Some(r) => r,
            None => {
                if let Some(tx) = self.perfwatch_shutdown.take() {
                    let _ = tx.send(());
                }
                perfwatch.await
            }
        };
        tracing::info!("perfwatch stopped; stopping the workloads and the servers");
        // Killing servers waits for their processes: off the async threads.
        tokio::task::spawn_blocking(move || {
            self.cache_workload.stop();
            self.db_workload.stop();
            tracing::info!("workloads stopped");
            drop(self);
            tracing::info!("servers stopped");
        })
        .await
        .map_err(|e| DemoError::Io {
            context: "stopping the servers",
            source: std::io::Error::other(e),
        })?;
        match result {
            Ok(r) => r.map_err(DemoError::from),
            Err(e) => Err(DemoError::Io {
                context: "running perfwatch",
                source: std::io::Error::other(e),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> DemoSources {
        DemoSources {
            redis_url: "redis://127.0.0.1:1/0".into(),
            redis_replica_url: "redis://127.0.0.1:6/0".into(),
            redis_sentinel: "127.0.0.1:9".into(),
            redis_cluster_url: "redis://127.0.0.1:10/0".into(),
            postgres_dsn: "postgres://postgres@127.0.0.1:2/app".into(),
            postgres_replica_dsn: "postgres://postgres@127.0.0.1:7/app".into(),
            pgbouncer_dsn: "postgres://perfwatch@127.0.0.1:5/pgbouncer".into(),
            postgres_log_dir: "/tmp/pg/log".into(),
            mariadb_dsn: "mysql://root@127.0.0.1:3/app".into(),
            mariadb_replica_dsn: "mysql://root@127.0.0.1:8/app".into(),
            mariadb_slow_log: "/tmp/m\\slow.log".into(),
            app: "127.0.0.1:4".parse().unwrap(),
            process_match: r"/tmp/pg/data|/tmp/m/my\.cnf".into(),
        }
    }

    #[test]
    fn config_loads_with_every_collector_and_the_seed_phases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perfwatch.toml");
        std::fs::write(&path, demo_config(&sources(), Duration::from_secs(5))).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let kinds: std::collections::BTreeSet<&str> =
            config.targets.iter().map(|t| t.kind()).collect();
        for kind in [
            "redis",
            "postgres",
            "pgbouncer",
            "mysql",
            "slowlog",
            "http",
            "process",
        ] {
            assert!(kinds.contains(kind), "{kind} missing: {kinds:?}");
        }
        let phases: Vec<&str> = config.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(phases, ["phase2", "phase3"]);
    }

    #[test]
    fn a_one_second_interval_gets_a_shorter_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perfwatch.toml");
        std::fs::write(&path, demo_config(&sources(), Duration::from_secs(1))).unwrap();
        Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn seed_phases_are_only_phase_tables() {
        let p = seed_phases();
        assert!(p.starts_with("[[phase]]"), "{p}");
        for line in p.lines().filter(|l| l.starts_with('[')) {
            assert!(
                line == "[[phase]]" || line == "[[phase.trigger]]",
                "not a phase table: {line}"
            );
        }
    }
}
