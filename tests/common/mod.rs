//! Shared helpers for the integration tests: run perfwatch through its public
//! API on port 0, scrape it, read sample values, wait for conditions.
#![allow(dead_code)]

pub mod chromium;
pub mod peer;
pub mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use perfwatch::config::Config;

/// A perfwatch instance running inside the test's runtime.
pub struct Perfwatch {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The config file (rewritten by reload tests).
    pub config_path: PathBuf,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<tokio::task::JoinHandle<()>>,
    /// One client for every request: building one loads the system's TLS
    /// roots, which costs tens of milliseconds in a debug build (timed
    /// scrapes would measure that, not perfwatch).
    client: reqwest::Client,
}

impl Perfwatch {
    /// Writes `toml` to a temp file, loads it and runs perfwatch on 127.0.0.1:0.
    pub async fn start(toml: &str) -> Self {
        // The tests' own reqwest clients need the process's rustls provider.
        perfwatch::tls::install_default_provider();
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("perfwatch.toml");
        std::fs::write(&config_path, toml).unwrap();
        let config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let join = tokio::spawn(async move {
            perfwatch::run(config, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            config_path,
            _dir: dir,
            shutdown: Some(tx),
            join: Some(join),
            client: reqwest::Client::new(),
        }
    }

    /// perfwatch polling `targets` (TOML tables) under [`FAST`] timing.
    pub async fn start_fast(targets: &str) -> Self {
        Self::start(&config(FAST, targets)).await
    }

    /// Sends a request without a body to a path; returns status and body.
    async fn request(&self, method: reqwest::Method, path: &str) -> (u16, String) {
        self.request_with(method, path, &[]).await
    }

    /// [`Self::request`] with request `headers`.
    async fn request_with(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut request = self
            .client
            .request(method, format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let resp = request.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// GET a path with request `headers`; returns status and body.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        self.request_with(reqwest::Method::GET, path, headers).await
    }

    /// GET a path; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        self.request(reqwest::Method::GET, path).await
    }

    /// The /metrics body.
    pub async fn scrape(&self) -> String {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        body
    }

    /// POST /-/reload.
    pub async fn reload(&self) -> (u16, String) {
        self.request(reqwest::Method::POST, "/-/reload").await
    }

    /// Scrapes until `f(body)` returns Some, or panics after `timeout` with the last body.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        f: impl Fn(&str) -> Option<T>,
    ) -> T {
        let every = Duration::from_millis(50);
        scrape_until(timeout, every, what, || self.scrape(), f).await
    }

    /// Scrapes until `cond(body)` holds, or panics after `timeout` with the
    /// last body; returns the scrape where it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        cond: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_for(timeout, what, |b| cond(b).then(|| b.to_owned()))
            .await
    }

    /// Scrapes until `perfwatch_target_up{target}` is `want`, or panics
    /// after `timeout`; returns that scrape.
    pub async fn wait_up(&self, target: &str, want: f64, timeout: Duration) -> String {
        let labels = [("target", target)];
        self.wait_value(timeout, "perfwatch_target_up", &labels, want)
            .await
    }

    /// Scrapes until [`value`]`(name, labels)` is `want`, or panics after
    /// `timeout`; returns that scrape.
    pub async fn wait_value(
        &self,
        timeout: Duration,
        name: &str,
        labels: &[(&str, &str)],
        want: f64,
    ) -> String {
        let what = format!("{name}{labels:?} = {want}");
        self.wait_until(timeout, &what, |b| value(b, name, labels) == Some(want))
            .await
    }

    /// Stops perfwatch and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(j) = self.join.take() {
            j.await.unwrap();
        }
    }
}

/// Calls `scrape` every `every` until `f` of the body it returns gives
/// Some; panics after `timeout` with the last body.
pub async fn scrape_until<T, S: Future<Output = String>>(
    timeout: Duration,
    every: Duration,
    what: &str,
    scrape: impl Fn() -> S,
    f: impl Fn(&str) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let body = scrape().await;
        if let Some(v) = f(&body) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; last scrape:\n{body}"
        );
        tokio::time::sleep(every).await;
    }
}

/// The value of the sample `name{labels}` where every given label matches
/// (other labels ignored). Parses the text format line by line.
pub fn value(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, v) = line.rsplit_once(' ')?;
            let (n, rest) = match series.find('{') {
                Some(i) => (&series[..i], &series[i..]),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\"")));
            if all { v.parse().ok() } else { None }
        })
}

/// The value of the sample `name{labels}` (see [`value`]), which the test
/// needs to exist: panics naming the series when the scrape has none.
#[track_caller]
pub fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(body, name, labels).unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

/// `Some(())` when `perfwatch_target_up` and the kind's peer up gauge
/// (`redis_up`, `pg_up`, `mysql_up`) of `target` both read `want`: on a
/// killed server they move together.
pub fn both_up(body: &str, target: &str, peer_up: &str, want: f64) -> Option<()> {
    let ours = value(body, "perfwatch_target_up", &[("target", target)]);
    let peer = value(body, peer_up, &[("target", target)]);
    (ours == Some(want) && peer == Some(want)).then_some(())
}

/// One row of [`assert_values`]: a sample's name, labels and expected value.
pub type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<f64>);

/// Asserts `value(body, name, labels) == want` for every `(name, labels,
/// want)` row, naming the series on failure.
#[track_caller]
pub fn assert_values(body: &str, rows: &[Expected]) {
    for (name, labels, want) in rows {
        assert_value(body, name, labels, *want);
    }
}

/// Asserts `value(body, name, labels) == want`, naming the series on
/// failure: one row of [`assert_values`].
#[track_caller]
pub fn assert_value(body: &str, name: &str, labels: &[(&str, &str)], want: Option<f64>) {
    assert_eq!(value(body, name, labels), want, "{name}{labels:?}");
}

/// `perfwatch_poll_errors_total{target, reason}`.
pub fn poll_errors(body: &str, target: &str, reason: &str) -> Option<f64> {
    value(
        body,
        "perfwatch_poll_errors_total",
        &[("target", target), ("reason", reason)],
    )
}

/// Failed polls of `target`, summed over every reason perfwatch has.
pub fn failed_polls(body: &str, target: &str) -> f64 {
    perfwatch::poll::ErrorReason::ALL
        .iter()
        .map(|r| poll_errors(body, target, r.as_str()).unwrap_or(0.0))
        .sum()
}

/// `perfwatch_slowlog_rotations_total{target}`.
pub fn slowlog_rotations(body: &str, target: &str) -> Option<f64> {
    value(
        body,
        "perfwatch_slowlog_rotations_total",
        &[("target", target)],
    )
}

/// This process's resident set size in kB (`VmRSS` in /proc/self/status).
pub fn rss_kb() -> u64 {
    proc_status_kb("VmRSS:")
}

/// This process's peak resident set size in kB (`VmHWM`), since it started
/// or since [`reset_peak_rss`].
pub fn peak_rss_kb() -> u64 {
    proc_status_kb("VmHWM:")
}

/// Resets the peak RSS to the current RSS (Linux ≥ 4.0), so that
/// [`peak_rss_kb`] measures what comes after.
pub fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// A `kB` line of /proc/self/status.
fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// `[global]` lines of most tests: a poll every 500 ms, 400 ms timeout.
pub const FAST: &str = "interval = \"500ms\"\ntimeout = \"400ms\"";

/// [`FAST`] with a 300 ms poll timeout.
pub const FAST_SHORT_TIMEOUT: &str = "interval = \"500ms\"\ntimeout = \"300ms\"";

/// `[global]` lines of the slow-log tests: a poll every 100 ms (90 ms
/// timeout), so lines appended to a log are counted at once.
pub const FASTEST: &str = "interval = \"100ms\"\ntimeout = \"90ms\"";

/// A config file: `[global]` with the `global` lines (e.g. [`FAST`]), then
/// the `targets` tables verbatim.
pub fn config(global: &str, targets: &str) -> String {
    format!("[global]\n{global}\n{targets}")
}

/// A `[[phase]]` named `phase2` (with `description`) whose one trigger,
/// `cache_hit_ratio`, reads the 1-minute hit ratio of the Redis target
/// `cache`: active below `below`, cleared above `clear_above`; `extra` lines
/// (e.g. `for = "2s"`) are added to the trigger.
pub fn hit_ratio_phase(description: &str, below: f64, clear_above: f64, extra: &str) -> String {
    format!(
        r#"[[phase]]
name = "phase2"
description = "{description}"
[[phase.trigger]]
name = "cache_hit_ratio"
metric = 'perfwatch_cache_hit_ratio{{target="cache",window="1m"}}'
below = {below}
clear_above = {clear_above}
{extra}
"#
    )
}

/// config/perfwatch.example.toml, parsed: tests of what the example ships
/// read its own text.
pub fn example_config() -> toml::Table {
    toml::from_str(include_str!("../../config/perfwatch.example.toml"))
        .expect("the example config parses")
}

/// The example config's `[[phase.trigger]]` named `name`, of any phase.
pub fn example_trigger(name: &str) -> toml::Table {
    example_config()["phase"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["trigger"].as_array().unwrap())
        .find(|t| t["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("the example has no trigger {name}"))
        .as_table()
        .unwrap()
        .clone()
}

/// A number of a TOML table, integer or float.
pub fn toml_number(table: &toml::Table, key: &str) -> f64 {
    let v = &table[key];
    v.as_float()
        .or_else(|| v.as_integer().map(|i| i as f64))
        .unwrap_or_else(|| panic!("{key} = {v} is not a number"))
}

/// `perfwatch_polls_total` of `target`; 0 before its first poll.
pub fn polls(body: &str, target: &str) -> f64 {
    value(body, "perfwatch_polls_total", &[("target", target)]).unwrap_or(0.0)
}

/// Waits at most `timeout` until perfwatch finished `n` more polls of
/// `target` than now; returns the scrape that showed them.
pub async fn wait_polls(pw: &Perfwatch, target: &str, n: f64, timeout: Duration) -> String {
    let start = polls(&pw.scrape().await, target);
    pw.wait_for(timeout, "more polls", |b| {
        (polls(b, target) >= start + n).then(|| b.to_owned())
    })
    .await
}

/// Runs blocking test-bench calls off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Awaits `fut` and returns how long it took.
pub async fn timed<T>(fut: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let v = fut.await;
    (v, start.elapsed())
}

/// Asserts that `promtool check metrics` accepts `text` without a word.
pub fn promtool_check_metrics(text: &str) {
    let (success, report) = promtool_report(text);
    assert!(
        success && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
}

/// Runs `promtool check metrics` on `text`: whether it exited 0, and what
/// it printed (one `name message` line per problem).
pub fn promtool_report(text: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let promtool = perfwatch_testbench::find_binary("promtool", "prometheus")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// A server plus its own `tmpdir`: mariadbd deletes `#sql*` files in its
/// tmpdir at start, so servers sharing /tmp break each other's
/// `mariadb-install-db` when tests run in parallel.
pub struct Db {
    pub server: perfwatch_testbench::MariaDbServer,
    _tmp: tempfile::TempDir,
}

impl std::ops::Deref for Db {
    type Target = perfwatch_testbench::MariaDbServer;
    fn deref(&self) -> &perfwatch_testbench::MariaDbServer {
        &self.server
    }
}

impl std::ops::DerefMut for Db {
    fn deref_mut(&mut self) -> &mut perfwatch_testbench::MariaDbServer {
        &mut self.server
    }
}

/// Starts a throwaway PostgreSQL with `settings`; panics with the harness's
/// reason if it cannot.
pub fn start_pg(settings: &[(&str, &str)]) -> perfwatch_testbench::PostgresServer {
    perfwatch_testbench::PostgresServer::start(settings).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts a throwaway PostgreSQL with `pg_stat_statements` loaded and
/// created, a database `app` holding a table `t (id, a, b)` of 200 rows,
/// and a role `pw` in `pg_monitor` (which includes `pg_read_all_stats`,
/// what reading every user's statements takes) for perfwatch to log in as.
pub fn start_pg_with_statements() -> perfwatch_testbench::PostgresServer {
    let pg = start_pg(&[("shared_preload_libraries", "pg_stat_statements")]);
    pg.psql("CREATE EXTENSION pg_stat_statements").unwrap();
    pg.create_database("app").unwrap();
    pg.psql_in(
        "app",
        "CREATE TABLE t (id int PRIMARY KEY, a int, b text); \
         INSERT INTO t SELECT g, g % 7, 'b' || g FROM generate_series(1, 200) g;",
    )
    .unwrap();
    pg.psql("CREATE ROLE pw LOGIN IN ROLE pg_monitor").unwrap();
    pg
}

/// Starts a throwaway PostgreSQL with `settings` off the async runtime and
/// prepares it there with `set_up` (databases, roles, files); panics with
/// the harness's reason if it cannot start.
pub async fn start_pg_with(
    settings: &'static [(&'static str, &'static str)],
    set_up: impl FnOnce(&perfwatch_testbench::PostgresServer) + Send + 'static,
) -> perfwatch_testbench::PostgresServer {
    blocking(move || {
        let pg = start_pg(settings);
        set_up(&pg);
        pg
    })
    .await
}

/// Starts a throwaway PostgreSQL where `role` (created with `LOGIN
/// PASSWORD '<password>'` and `options`) must log in over TCP with its
/// password (scram-sha-256; the first matching pg_hba.conf line wins, so
/// everyone else keeps the harness's trust).
pub async fn start_pg_with_password_role(
    role: &'static str,
    password: &'static str,
    options: &'static str,
) -> perfwatch_testbench::PostgresServer {
    start_pg_with(&[], move |pg| {
        let hba = pg.data_dir().join("pg_hba.conf");
        let rest = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!("host all {role} 127.0.0.1/32 scram-sha-256\n{rest}"),
        )
        .unwrap();
        pg.psql(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}' {options}; SELECT pg_reload_conf();"
        ))
        .unwrap();
    })
    .await
}

/// Starts a throwaway Redis with `settings`; panics with the harness's
/// reason if it cannot.
pub fn start_redis(settings: &[(&str, &str)]) -> perfwatch_testbench::RedisServer {
    perfwatch_testbench::RedisServer::start(settings).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits (up to `timeout`, without blocking the runtime) until the line
/// `field:want` stands in `INFO section` of `redis`; panics saying `what`
/// did not happen otherwise.
pub async fn wait_redis_info(
    redis: &perfwatch_testbench::RedisServer,
    (section, field, want): (&str, &str, &str),
    timeout: Duration,
    what: &str,
) {
    let start = Instant::now();
    while redis.info_field(section, field).unwrap().as_deref() != Some(want) {
        assert!(start.elapsed() < timeout, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts MariaDB with `settings` plus a `tmpdir` of its own.
pub fn start_db(settings: &[(&str, &str)]) -> Db {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    let mut all = settings.to_vec();
    all.push(("tmpdir", &dir));
    let server = perfwatch_testbench::MariaDbServer::start(&all).unwrap_or_else(|e| panic!("{e}"));
    Db { server, _tmp: tmp }
}

/// Runs `sql` (several statements allowed) on a MariaDB connection; panics
/// with the SQL on error.
pub async fn exec(conn: &mut sqlx::mysql::MySqlConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A secret file holding `content` and a newline (as `echo pw > file` and
/// Kubernetes secret mounts write it), in a temp dir that lives as long as
/// the returned guard.
pub fn secret_file(content: &str) -> (tempfile::TempDir, PathBuf) {
    temp_file("pw", &format!("{content}\n"))
}

/// `perfwatch once` with `config` as its config file: one poll of every
/// target, the exposition on stdout.
pub fn once(config: &str) -> std::process::Output {
    let (_dir, path) = temp_file("p.toml", config);
    std::process::Command::new(env!("CARGO_BIN_EXE_perfwatch"))
        .arg("once")
        .arg(format!("--config.file={}", path.display()))
        .output()
        .unwrap()
}

/// The Redis URL config/quickstart.toml ships with, quoted as it stands
/// there: a Redis on this host's default port.
const QUICKSTART_REDIS_URL: &str = "\"redis://127.0.0.1:6379/0\"";

/// `quickstart` (the quickstart config's text as shipped) pointed at the
/// Redis at `redis_url`, only that URL rewritten. Asserts first that the
/// text names the default local Redis exactly once, so that nothing else in
/// it still points there.
#[track_caller]
pub fn quickstart_pointed_at(quickstart: &str, redis_url: &str) -> String {
    assert_eq!(
        quickstart.matches(QUICKSTART_REDIS_URL).count(),
        1,
        "{quickstart}"
    );
    quickstart.replace(QUICKSTART_REDIS_URL, &format!("\"{redis_url}\""))
}

/// Asserts that `out`, a `perfwatch once` of the quickstart config (`what`
/// says which run, for the failure message), succeeded and found the
/// config's Redis target `cache` up; returns its stdout.
#[track_caller]
pub fn assert_quickstart_cache_up(what: &str, out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("perfwatch_target_up{collector=\"redis\",target=\"cache\"} 1"),
        "{text}"
    );
    text
}

/// `GET path` over HTTP/1.1 to `host`, with basic auth when `credentials`
/// (`user:password`) are given, asking the server to close the connection
/// after its answer.
pub fn get_request(path: &str, host: &str, credentials: Option<&str>) -> String {
    use base64::Engine as _;
    let auth = credentials
        .map(|c| {
            let c = base64::engine::general_purpose::STANDARD.encode(c);
            format!("Authorization: Basic {c}\r\n")
        })
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n")
}

/// Sends `request` on `stream` and reads the answer to its end (the request
/// asks the server to close, see [`get_request`]).
pub async fn exchange<S>(stream: &mut S, request: &str) -> Result<Vec<u8>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response)
}

/// A file `name` holding `content`, in a temp dir that lives as long as the
/// returned guard.
pub fn temp_file(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_in(dir.path(), name, content);
    (dir, path)
}

/// Writes `content` to the file `name` in `dir`; its path.
pub fn write_in(dir: &std::path::Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Asserts that each target's card on the status page (`/`) names the cause
/// of its failure: `causes` holds (target, text the card must contain).
pub async fn assert_causes(pw: &Perfwatch, kind: &str, causes: &[(&str, &str)]) {
    let (_, page) = pw.get("/").await;
    for (target, cause) in causes {
        let row = page
            .split(&format!("{kind} target &quot;{target}&quot;"))
            .nth(1)
            .and_then(|rest| rest.split("</article>").next())
            .unwrap_or("");
        assert!(row.contains(cause), "{target}: want {cause:?} in {row:?}");
    }
}

/// Asserts `perfwatch_target_up` of the `kind` collector is 1 for every
/// target in `up` and 0 for every target in `down`.
#[track_caller]
pub fn assert_up_down(body: &str, kind: &str, up: &[&str], down: &[&str]) {
    for (targets, want) in [(up, 1.0), (down, 0.0)] {
        for t in targets {
            let labels = [("collector", kind), ("target", *t)];
            let got = value(body, "perfwatch_target_up", &labels);
            assert_eq!(got, Some(want), "perfwatch_target_up of {kind} {t}");
        }
    }
}

/// What a TLS test of one collector kind expects (tests/tls.rs,
/// tests/pgbouncer.rs).
pub struct TlsOutcome<'a> {
    /// The `collector` label (`postgres`, `mysql`, `pgbouncer`).
    pub kind: &'a str,
    /// Targets that must be up.
    pub up: &'a [&'a str],
    /// Targets that must be down: (target, the `reason` of its failed polls,
    /// text its card on the status page must contain).
    pub down: &'a [(&'a str, &'a str, &'a str)],
    /// Up targets whose sessions the caller's `sessions` lists: unless one of
    /// their polls failed, those sessions must not change over polls.
    pub steady: &'a [&'a str],
}

/// Waits for two polls of every `up` target, takes `sessions()`, waits for
/// two failures of every `down` target (with its reason) and three more
/// polls of the `steady` ones, then asserts the outcome: the same sessions
/// (one TLS handshake per connection, not per poll), up 1 / up 0, and each
/// failure's cause on the status page.
pub async fn assert_tls_outcome(
    pw: &Perfwatch,
    want: &TlsOutcome<'_>,
    timeout: Duration,
    sessions: impl Fn() -> String,
) {
    for t in want.up {
        wait_polls(pw, t, 2.0, timeout).await;
    }
    let first = pw.scrape().await;
    let before = sessions();
    let steady_polls = |b: &str| {
        want.steady
            .iter()
            .map(|t| polls(b, t))
            .fold(f64::MAX, f64::min)
    };
    let first_polls = steady_polls(&first);
    let body = pw
        .wait_for(timeout, "failures and three more polls", |b| {
            let failed = want
                .down
                .iter()
                .all(|(t, reason, _)| poll_errors(b, t, reason).unwrap_or(0.0) >= 2.0);
            (failed && steady_polls(b) >= first_polls + 3.0).then(|| b.to_owned())
        })
        .await;
    assert!(
        !before.trim().is_empty(),
        "no session of perfwatch on the server"
    );
    // A failed poll drops its session on purpose; otherwise the same TLS
    // sessions serve every poll.
    let failures = |b: &str| want.steady.iter().map(|t| failed_polls(b, t)).sum::<f64>();
    if failures(&body) == failures(&first) {
        assert_eq!(
            before,
            sessions(),
            "a poll made a new session (a new handshake)"
        );
    }
    let down: Vec<&str> = want.down.iter().map(|(t, _, _)| *t).collect();
    assert_up_down(&body, want.kind, want.up, &down);
    let causes: Vec<(&str, &str)> = want.down.iter().map(|(t, _, cause)| (*t, *cause)).collect();
    assert_causes(pw, want.kind, &causes).await;
}
