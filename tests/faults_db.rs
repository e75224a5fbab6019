//! Fault injection on the databases: PostgreSQL and MariaDB killed with
//! SIGKILL and restarted 20+ times while perfwatch polls fast. perfwatch
//! must notice each outage within an interval, recover within an interval,
//! never hold more server connections than its pool, and not grow.
//! (5,000-table schemas are in tests/wide_schemas.rs: their CPU-heavy polls
//! would skew these timings if run alongside.)

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Perfwatch, blocking, both_up, poll_errors, rss_kb, timed};
use perfwatch_testbench::{MariaDbServer, PostgresServer, find_binary};

fn cfg(interval_ms: u64, timeout_ms: u64, body: &str) -> String {
    format!("[global]\ninterval = \"{interval_ms}ms\"\ntimeout = \"{timeout_ms}ms\"\n{body}")
}

/// Tasks alive on the test's runtime, which also runs perfwatch.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Runs a client command; its stdout when it succeeds.
fn client_output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Counts perfwatch's server-side connections (None while the server is down).
type Counter = Arc<dyn Fn() -> Option<usize> + Send + Sync>;

/// perfwatch's sessions in `pg_stat_activity` (it sets
/// `application_name = 'perfwatch'`), read with `psql` over TCP so the
/// count works across restarts.
fn pg_counter(pg: &PostgresServer) -> Counter {
    let psql = pg.psql_path().to_path_buf();
    let port = pg.port();
    Arc::new(move || {
        client_output(
            Command::new(&psql)
                .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-U", "postgres"])
                .args(["-p", &port.to_string(), "-d", "postgres", "-c"])
                .arg("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'perfwatch'")
                .env("PGCONNECT_TIMEOUT", "2"),
        )?
        .trim()
        .parse()
        .ok()
    })
}

/// perfwatch's connections in `information_schema.PROCESSLIST` (it logs in
/// as `pw`), read with the `mariadb` client over TCP as root.
fn mariadb_counter(db: &MariaDbServer) -> Counter {
    let client = find_binary("mariadb", "mariadb-client").unwrap_or_else(|e| panic!("{e}"));
    let port = db.port();
    Arc::new(move || {
        client_output(
            Command::new(&client)
                .args(["--no-defaults", "-h", "127.0.0.1", "-u", "root"])
                .arg(format!("--port={port}"))
                .args([
                    "--batch",
                    "--skip-column-names",
                    "--connect-timeout=2",
                    "-e",
                ])
                .arg("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'pw'"),
        )?
        .trim()
        .parse()
        .ok()
    })
}

/// Samples a [`Counter`] every 100 ms on its own thread until dropped,
/// keeping the maximum (and how many samples succeeded, so a sampler that
/// never reached the server cannot pass silently).
struct ConnectionSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicUsize>,
    samples: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConnectionSampler {
    fn start(count: Counter) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicUsize::new(0));
        let samples = Arc::new(AtomicUsize::new(0));
        let (s, m, n) = (stop.clone(), max.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(c) = count() {
                    m.fetch_max(c, Ordering::Relaxed);
                    n.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            stop,
            max,
            samples,
            thread: Some(thread),
        }
    }

    /// (max seen, successful samples).
    fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        (
            self.max.load(Ordering::Relaxed),
            self.samples.load(Ordering::Relaxed),
        )
    }
}

/// A server the kill/restart loop can drive.
trait Restartable: Send + 'static {
    fn kill_now(&mut self);
    fn restart_now(&mut self);
}

macro_rules! restartable {
    ($($server:ty),*) => {$(
        impl Restartable for $server {
            fn kill_now(&mut self) {
                self.kill().unwrap();
            }
            fn restart_now(&mut self) {
                self.restart().unwrap_or_else(|e| panic!("{e}"));
            }
        }
    )*};
}
restartable!(PostgresServer, MariaDbServer);

/// What a kill/restart run measured.
struct Flaps {
    worst_down: Duration,
    worst_up: Duration,
    /// Most perfwatch connections seen right after each recovery.
    max_after_restart: usize,
    /// Most seen by the background sampler during the whole run.
    max_sampled: usize,
    samples: usize,
    rss_grown_kb: i64,
    tasks_grown: i64,
    connect_errors: f64,
    /// Polls that panicked (caught by the engine and counted as `internal`).
    panics: f64,
}

/// Kills `server` with SIGKILL and restarts it `rounds` times while
/// perfwatch (already up on `target`) polls; measures how fast `up` follows,
/// perfwatch's server connections, and growth between round 5 and the end.
/// Runs `f` on `server` off the async runtime and hands the server back.
async fn blocking_on<S: Restartable>(mut server: S, f: fn(&mut S)) -> S {
    blocking(move || {
        f(&mut server);
        server
    })
    .await
}

async fn flap<S: Restartable>(
    pw: &Perfwatch,
    mut server: S,
    (target, peer_up): (&str, &str),
    rounds: usize,
    count: Counter,
) -> (S, Flaps) {
    let up = |v: f64| {
        let (target, peer_up) = (target.to_owned(), peer_up.to_owned());
        move |b: &str| both_up(b, &target, &peer_up, v)
    };
    let sampler = ConnectionSampler::start(count.clone());
    let mut worst_down = Duration::ZERO;
    let mut worst_up = Duration::ZERO;
    let mut max_after_restart = 0;
    let mut baseline = None;
    for round in 1..=rounds {
        // SIGKILL of the whole tree and reap: quick, no need to leave the runtime.
        server = blocking_on(server, S::kill_now).await;
        let (_, t) = timed(pw.wait_for(Duration::from_secs(5), "down", up(0.0))).await;
        worst_down = worst_down.max(t);
        // Measured from when the server accepts connections again.
        server = blocking_on(server, S::restart_now).await;
        let (_, t) = timed(pw.wait_for(Duration::from_secs(5), "up again", up(1.0))).await;
        worst_up = worst_up.max(t);
        let c = count.clone();
        let n = blocking(move || c())
            .await
            .unwrap_or_else(|| panic!("round {round}: cannot count connections"));
        max_after_restart = max_after_restart.max(n);
        if round == 5 {
            // Let the first polls after recovery settle (sqlx, reqwest).
            tokio::time::sleep(Duration::from_millis(300)).await;
            baseline = Some((rss_kb() as i64, alive_tasks() as i64));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss0, tasks0) = baseline.expect("at least 5 rounds");
    let rss_grown_kb = rss_kb() as i64 - rss0;
    let tasks_grown = alive_tasks() as i64 - tasks0;
    let (max_sampled, samples) = sampler.finish();
    let body = pw.scrape().await;
    let connect_errors = poll_errors(&body, target, "connect").unwrap_or(0.0);
    let panics = poll_errors(&body, target, "internal").unwrap_or(0.0);
    (
        server,
        Flaps {
            worst_down,
            worst_up,
            max_after_restart,
            max_sampled,
            samples,
            rss_grown_kb,
            tasks_grown,
            connect_errors,
            panics,
        },
    )
}

/// Checks a run; `interval` is the poll interval, `reconnect` what a
/// reconnect (TCP, auth, session setup, first statements) may add.
fn check_flaps(f: &Flaps, rounds: usize, interval: Duration, reconnect: Duration, pool: usize) {
    // Scrape granularity: wait_for scrapes every 50 ms.
    let slack = Duration::from_millis(150);
    assert!(
        f.worst_down < interval + slack,
        "slowest down detection {:?} (interval {interval:?})",
        f.worst_down
    );
    assert!(
        f.worst_up < interval + reconnect + slack,
        "slowest recovery {:?} (interval {interval:?})",
        f.worst_up
    );
    assert!(
        f.max_after_restart <= pool && f.max_after_restart >= 1,
        "perfwatch held {} server connections after a restart (pool {pool})",
        f.max_after_restart
    );
    assert!(
        f.max_sampled <= pool,
        "perfwatch held {} server connections at once (pool {pool})",
        f.max_sampled
    );
    assert!(
        f.samples >= rounds,
        "only {} connection samples reached the server",
        f.samples
    );
    assert!(
        f.rss_grown_kb < 16 * 1024,
        "RSS grew by {} kB from round 5 to round {rounds}",
        f.rss_grown_kb
    );
    assert!(
        f.tasks_grown <= 3,
        "{} more tokio tasks alive after round {rounds} than after round 5",
        f.tasks_grown
    );
    assert_eq!(f.panics, 0.0, "polls that panicked");
    assert!(
        f.connect_errors >= 1.0,
        "the outages were counted as connect errors: {}",
        f.connect_errors
    );
}

/// Runs perfwatch with `toml` (target `flappy`, one connection), waits
/// until it is up, kills and restarts `server` `rounds` times, reports and
/// checks the flaps (`interval_ms`: the config's poll interval;
/// `reconnect_ms`: the allowed reconnect delay), and stops.
async fn flap_flappy<S: Restartable>(
    (what, peer_up): (&str, &str),
    server: S,
    count: Counter,
    toml: &str,
    rounds: usize,
    (interval_ms, reconnect_ms): (u64, u64),
    started: Instant,
) {
    let pw = Perfwatch::start(toml).await;
    pw.wait_up("flappy", 1.0, Duration::from_secs(10)).await;
    let (server, f) = flap(&pw, server, ("flappy", peer_up), rounds, count).await;
    report(what, &f, started.elapsed());
    let (interval, reconnect) = (
        Duration::from_millis(interval_ms),
        Duration::from_millis(reconnect_ms),
    );
    check_flaps(&f, rounds, interval, reconnect, 1);
    pw.stop().await;
    drop(server);
}

fn report(what: &str, f: &Flaps, took: Duration) {
    eprintln!(
        "{what}: {took:?}, worst down {:?}, worst up {:?}, connections max {} (after restart {}), {} samples, RSS {:+} kB, tasks {:+}, connect errors {}",
        f.worst_down,
        f.worst_up,
        f.max_sampled,
        f.max_after_restart,
        f.samples,
        f.rss_grown_kb,
        f.tasks_grown,
        f.connect_errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_and_restarted_22_times() {
    let started = Instant::now();
    let pg = blocking(|| PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}"))).await;
    let count = pg_counter(&pg);
    let toml = cfg(
        200,
        150,
        &format!("[[postgres]]\nname = \"flappy\"\ndsn = \"{}\"\n", pg.dsn()),
    );
    // One connection: the DSN's database is the only one examined.
    flap_flappy(
        ("postgres", "pg_up"),
        pg,
        count,
        &toml,
        22,
        (200, 150),
        started,
    )
    .await;
}

/// perfwatch's login on MariaDB, so its connections can be told apart.
fn create_pw_user(db: &MariaDbServer) {
    db.sql(
        "CREATE USER 'pw'@'127.0.0.1'; GRANT ALL PRIVILEGES ON *.* TO 'pw'@'127.0.0.1'; FLUSH PRIVILEGES;",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_killed_and_restarted_20_times() {
    let started = Instant::now();
    let db = blocking(|| {
        let db = MariaDbServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
        create_pw_user(&db);
        db
    })
    .await;
    let count = mariadb_counter(&db);
    let toml = cfg(
        300,
        250,
        &format!(
            "[[mysql]]\nname = \"flappy\"\ndsn = \"mysql://pw@127.0.0.1:{}/\"\n",
            db.port()
        ),
    );
    // A pool of one connection per target.
    flap_flappy(
        ("mariadb", "mysql_up"),
        db,
        count,
        &toml,
        20,
        (300, 150),
        started,
    )
    .await;
}
