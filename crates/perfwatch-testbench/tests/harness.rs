//! Integration tests of the throwaway-server harness (`perfwatch_testbench`):
//! each server starts from the installed binaries, answers, survives
//! kill/restart on the same port, pause/resume, and leaves neither a process
//! nor its temp dir behind on drop. Checks go through the real clients or a
//! raw socket, not through the harness's own helpers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use perfwatch_testbench::{HarnessError, MariaDbServer, PostgresServer, RedisServer};

/// Raw `PING` on 127.0.0.1:`port`: the first reply line, or `None` if
/// nothing answered within `timeout`.
fn raw_ping(port: u16, timeout: Duration) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.write_all(b"PING\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    Some(line.trim_end().to_owned()).filter(|l| !l.is_empty())
}

/// Runs `cmd`; `Some(stdout)` if it succeeded within `timeout`, `None` if it
/// failed or hung (then it is killed).
fn run_within(mut cmd: Command, timeout: Duration) -> Option<String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn client");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait client") {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            return status.success().then_some(out);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}

/// Pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .is_some_and(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                        == Some(pid)
                })
        })
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    eprintln!("[timing] {label}: {:?}", start.elapsed());
    out
}

/// A harness server type as the lifecycle tests start and first check it:
/// the port it took, the address it hands to clients, and a probe through
/// the real client (or a raw socket), not through the harness's own helpers.
trait Probed: Sized {
    /// The server's name in timings and failure messages.
    const NAME: &str;
    /// The service's well-known port, which a throwaway server must never
    /// take (a real server on the machine may own it).
    const DEFAULT_PORT: u16;
    /// What the probe gets back from a server that answers.
    const ANSWER: &str;
    /// How long the first probe may take (a client program starts for it).
    const FIRST_PROBE: Duration;
    /// Starts a throwaway server with `settings`.
    fn start(settings: &[(&str, &str)]) -> Result<Self, HarnessError>;
    /// The port the harness chose.
    fn chosen_port(&self) -> u16;
    /// The URL or DSN the harness gives clients.
    fn address(&self) -> String;
    /// The address a server on `port` must give.
    fn expected_address(port: u16) -> String;
    /// The probe's reply from 127.0.0.1:`port` within `timeout`, or `None`.
    fn probe(&self, port: u16, timeout: Duration) -> Option<String>;
}

/// Implements [`Probed`] for a server type from what differs between them:
/// its name, default port, the probe's answer and first timeout (seconds),
/// the accessor giving its address, the address expected on a port, and the
/// probe.
macro_rules! impl_probed {
    ($server:ty, $name:literal, $default_port:literal, $answer:literal, $first_probe_secs:literal,
     $address:ident, $expected_address:expr, $probe:expr) => {
        impl Probed for $server {
            const NAME: &str = $name;
            const DEFAULT_PORT: u16 = $default_port;
            const ANSWER: &str = $answer;
            const FIRST_PROBE: Duration = Duration::from_secs($first_probe_secs);
            fn start(settings: &[(&str, &str)]) -> Result<Self, HarnessError> {
                <$server>::start(settings)
            }
            fn chosen_port(&self) -> u16 {
                self.port()
            }
            fn address(&self) -> String {
                self.$address()
            }
            fn expected_address(port: u16) -> String {
                let expected: fn(u16) -> String = $expected_address;
                expected(port)
            }
            fn probe(&self, port: u16, timeout: Duration) -> Option<String> {
                let probe: fn(&Self, u16, Duration) -> Option<String> = $probe;
                probe(self, port, timeout)
            }
        }
    };
}

impl_probed! { RedisServer, "redis", 6379, "+PONG", 5, url,
|port| format!("redis://127.0.0.1:{port}/0"), |_, port, timeout| raw_ping(port, timeout) }
impl_probed! { PostgresServer, "postgres", 5432, "1\n", 10, dsn,
|port| format!("postgres://postgres@127.0.0.1:{port}/postgres"), psql_select_1 }
impl_probed! { MariaDbServer, "mariadb", 3306, "1\n", 10, dsn,
|port| format!("mysql://root@127.0.0.1:{port}/"), |_, port, timeout| mariadb_select_1(port, timeout) }

/// Starts a server of type `S` with `settings` (timed) and makes the first
/// checks of every lifecycle test: it is not on its service's default port,
/// its address names the port it took, and the probe gets its answer.
/// Returns the server and its port.
#[track_caller]
fn start_checked<S: Probed>(settings: &[(&str, &str)]) -> (S, u16) {
    let server = timed(&format!("{} start", S::NAME), || {
        S::start(settings).unwrap_or_else(|e| panic!("start {}: {e}", S::NAME))
    });
    let port = server.chosen_port();
    assert_ne!(port, S::DEFAULT_PORT, "must not use the default port");
    assert_eq!(server.address(), S::expected_address(port));
    assert_eq!(
        server.probe(port, S::FIRST_PROBE).as_deref(),
        Some(S::ANSWER)
    );
    (server, port)
}

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

#[test]
fn redis_lifecycle() {
    let (mut redis, port) =
        start_checked::<RedisServer>(&[("maxmemory", "2mb"), ("maxmemory-policy", "allkeys-lru")]);
    assert_eq!(
        redis.command(&["CONFIG", "GET", "maxmemory"]).unwrap(),
        "maxmemory\n2097152"
    );
    assert_eq!(redis.command(&["CONFIG", "GET", "save"]).unwrap(), "save\n");
    assert_eq!(redis.command(&["SET", "k", "v"]).unwrap(), "OK");
    assert_eq!(redis.command(&["GET", "k"]).unwrap(), "v");
    assert!(matches!(
        redis.command(&["NOSUCHCOMMAND"]),
        Err(HarnessError::BadReply { .. })
    ));
    let dir = redis.dir().to_path_buf();
    assert!(redis.log_path().starts_with(&dir) && redis.log_path().exists());

    // kill → not answering
    let pid = redis.pid().expect("pid");
    redis.kill().unwrap();
    assert!(!alive(pid), "redis pid {pid} still alive after kill");
    assert!(!redis.is_running() && redis.pid().is_none());
    assert_eq!(raw_ping(port, Duration::from_millis(500)), None);
    assert!(matches!(
        redis.pause(),
        Err(HarnessError::NotRunning { .. })
    ));

    // restart → answering on the same port (empty: persistence is off)
    timed("redis restart", || redis.restart().expect("restart redis"));
    assert_eq!(redis.port(), port);
    assert_eq!(
        raw_ping(port, Duration::from_secs(5)).as_deref(),
        Some("+PONG")
    );
    assert_eq!(redis.command(&["GET", "k"]).unwrap(), "");

    // restart while running kills the old process first
    let old = redis.pid().unwrap();
    redis.restart().unwrap();
    assert!(!alive(old) && redis.pid() != Some(old));

    // pause → connection accepted by the kernel but no reply; resume → reply
    redis.pause().unwrap();
    assert!(redis.is_running());
    assert_eq!(raw_ping(port, Duration::from_millis(500)), None);
    redis.resume().unwrap();
    assert_eq!(
        raw_ping(port, Duration::from_secs(5)).as_deref(),
        Some("+PONG")
    );

    // graceful stop, then start again
    redis.stop().unwrap();
    assert_eq!(raw_ping(port, Duration::from_millis(500)), None);
    redis.restart().unwrap();

    // drop → process and dir gone, even while paused
    let pid = redis.pid().unwrap();
    redis.pause().unwrap();
    drop(redis);
    assert!(!alive(pid), "redis pid {pid} survived drop");
    assert!(!dir.exists(), "{} survived drop", dir.display());
}

#[test]
fn redis_requirepass() {
    let redis = RedisServer::start(&[("requirepass", "s3cr/t")]).expect("start redis");
    let port = redis.port();
    let reply = raw_ping(port, Duration::from_secs(5)).unwrap();
    assert!(
        reply.starts_with("-NOAUTH"),
        "unauthenticated PING got {reply}"
    );
    assert!(redis.ping());
    assert_eq!(redis.command(&["PING"]).unwrap(), "PONG");
    assert_eq!(redis.url(), format!("redis://:s3cr%2Ft@127.0.0.1:{port}/0"));
}

#[test]
fn redis_rejects_managed_settings_and_bad_values() {
    let err = RedisServer::start(&[("port", "6379")]).unwrap_err();
    assert!(matches!(err, HarnessError::InvalidSetting { .. }), "{err}");
    assert!(
        err.to_string().contains("redis-server") && err.to_string().contains("port"),
        "{err}"
    );
    let err = RedisServer::start(&[("maxmemory", "1mb\nport 6379")]).unwrap_err();
    assert!(matches!(err, HarnessError::InvalidSetting { .. }), "{err}");
    // A setting redis itself rejects: exits during startup, log tail in the error.
    let err = RedisServer::start(&[("maxmemory-policy", "no-such-policy")]).unwrap_err();
    match err {
        HarnessError::Exited { log_tail, .. } => {
            assert!(log_tail.contains("maxmemory-policy"), "{log_tail}")
        }
        other => panic!("expected Exited, got {other}"),
    }
}

/// A server started from a thread that then exits stays up (the harness
/// forks servers from a long-lived thread so PR_SET_PDEATHSIG only fires when
/// the whole test process dies).
#[test]
fn server_outlives_the_thread_that_started_it() {
    let redis = std::thread::spawn(|| RedisServer::start(&[]).unwrap())
        .join()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(redis.is_running());
    assert_eq!(
        raw_ping(redis.port(), Duration::from_secs(5)).as_deref(),
        Some("+PONG")
    );
}

/// Helper for `no_orphans_when_the_test_process_is_killed`: only runs in a
/// child test process.
#[test]
#[ignore = "helper, run by no_orphans_when_the_test_process_is_killed"]
fn orphan_helper() {
    if std::env::var_os("PERFWATCH_HARNESS_ORPHAN_HELPER").is_none() {
        return;
    }
    let redis = RedisServer::start(&[]).unwrap();
    println!("READY {} {}", redis.pid().unwrap(), redis.dir().display());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn no_orphans_when_the_test_process_is_killed() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "orphan_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PERFWATCH_HARNESS_ORPHAN_HELPER", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest prints `test orphan_helper ... ` on the same line.
    let line = lines
        .find_map(|l| l.ok().filter(|l| l.contains("READY ")))
        .expect("helper printed READY");
    let mut fields = line[line.find("READY ").unwrap()..]
        .split_whitespace()
        .skip(1);
    let pid: u32 = fields.next().unwrap().parse().unwrap();
    let dir = fields.next().unwrap().to_owned();
    assert!(alive(pid));
    child.kill().unwrap(); // SIGKILL: no destructors run
    child.wait().unwrap();
    wait_until(
        "redis to die with its test process",
        Duration::from_secs(5),
        || !alive(pid),
    );
    // Drop never ran, so the dir is left behind: clean it up ourselves.
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

fn psql_select_1(pg: &PostgresServer, port: u16, timeout: Duration) -> Option<String> {
    let mut cmd = Command::new(pg.psql_path());
    cmd.args([
        "-X",
        "-A",
        "-t",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-p",
    ])
    .arg(port.to_string())
    .args(["-c", "select 1"])
    .env("PGCONNECT_TIMEOUT", "2");
    run_within(cmd, timeout)
}

#[test]
fn postgres_lifecycle() {
    let (mut pg, port) = start_checked::<PostgresServer>(&[
        ("max_connections", "20"),
        ("shared_preload_libraries", "pg_stat_statements"),
        ("log_min_duration_statement", "0"),
        ("logging_collector", "on"),
        ("log_destination", "stderr,csvlog,jsonlog"),
    ]);
    assert_eq!(pg.psql("show max_connections").unwrap(), "20\n");
    assert_eq!(pg.psql("show fsync").unwrap(), "off\n");
    assert_eq!(pg.psql("show listen_addresses").unwrap(), "127.0.0.1\n");
    pg.psql("create extension pg_stat_statements").unwrap();
    assert_eq!(
        pg.psql("select count(*) > 0 from pg_stat_statements")
            .unwrap(),
        "t\n"
    );
    pg.create_database("app_db").unwrap();
    pg.psql_in(
        "app_db",
        "create table t (x int); insert into t values (42)",
    )
    .unwrap();
    assert!(matches!(
        pg.create_database("bad name; drop"),
        Err(HarnessError::InvalidName { .. })
    ));
    let err = pg.psql("select * from no_such_table").unwrap_err();
    assert!(err.to_string().contains("no_such_table"), "{err}");

    // logging collector writes csv and json logs under log_dir()
    wait_until("csv and json logs", Duration::from_secs(10), || {
        let names: Vec<String> = std::fs::read_dir(pg.log_dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.iter().any(|n| n.ends_with(".csv")) && names.iter().any(|n| n.ends_with(".json"))
    });

    // kill → not answering; the whole tree (backends too) is gone
    let pid = pg.pid().unwrap();
    let backends = children_of(pid);
    assert!(!backends.is_empty(), "postmaster has no children?");
    pg.kill().unwrap();
    assert!(
        !alive(pid) && backends.iter().all(|&b| !alive(b)),
        "postgres processes survived kill"
    );
    assert_eq!(psql_select_1(&pg, port, Duration::from_secs(5)), None);

    // restart → same port, data kept (after crash recovery)
    timed("postgres restart after kill", || {
        pg.restart().expect("restart postgres")
    });
    assert_eq!(pg.port(), port);
    assert_eq!(
        psql_select_1(&pg, port, Duration::from_secs(10)).as_deref(),
        Some("1\n")
    );
    assert_eq!(pg.psql_in("app_db", "select x from t").unwrap(), "42\n");

    // pause → hangs; resume → answers
    pg.pause().unwrap();
    assert_eq!(psql_select_1(&pg, port, Duration::from_secs(3)), None);
    pg.resume().unwrap();
    assert_eq!(
        psql_select_1(&pg, port, Duration::from_secs(10)).as_deref(),
        Some("1\n")
    );

    // graceful stop keeps data too
    timed("postgres stop", || pg.stop().unwrap());
    assert!(!pg.is_running());
    pg.restart().unwrap();
    assert_eq!(pg.psql_in("app_db", "select x from t").unwrap(), "42\n");

    // drop → processes and dir gone
    let pid = pg.pid().unwrap();
    let tree = children_of(pid);
    let dir = pg.dir().to_path_buf();
    drop(pg);
    assert!(
        !alive(pid) && tree.iter().all(|&p| !alive(p)),
        "postgres processes survived drop"
    );
    assert!(!dir.exists(), "{} survived drop", dir.display());
}

#[test]
fn postgres_bad_setting_reports_log_tail() {
    let err = PostgresServer::start(&[("no_such_setting_xyz", "1")]).unwrap_err();
    match err {
        HarnessError::Exited {
            server, log_tail, ..
        } => {
            assert_eq!(server, "postgres");
            assert!(log_tail.contains("no_such_setting_xyz"), "{log_tail}");
        }
        other => panic!("expected Exited, got {other}"),
    }
}

// ---------------------------------------------------------------------------
// MariaDB
// ---------------------------------------------------------------------------

/// `mariadb -e 'select 1'` over TCP as root with no password (what `dsn()`
/// promises).
fn mariadb_select_1(port: u16, timeout: Duration) -> Option<String> {
    let client = perfwatch_testbench::find_binary("mariadb", "mariadb-client").unwrap();
    let mut cmd = Command::new(client);
    cmd.args([
        "--no-defaults",
        "--protocol=TCP",
        "-h",
        "127.0.0.1",
        "-u",
        "root",
        "--batch",
        "--skip-column-names",
    ])
    .arg(format!("--port={port}"))
    .args(["--connect-timeout=2", "-e", "select 1"]);
    run_within(cmd, timeout)
}

#[test]
fn mariadb_lifecycle() {
    let (mut db, port) = start_checked::<MariaDbServer>(&[
        ("slow_query_log", "1"),
        ("long_query_time", "0"),
        ("performance_schema", "ON"),
        ("max_connections", "20"),
    ]);
    assert_eq!(
        db.sql("select @@max_connections, @@performance_schema, @@slow_query_log")
            .unwrap(),
        "20\t1\t1\n"
    );
    assert_eq!(
        db.sql("select @@port, @@bind_address").unwrap(),
        format!("{port}\t127.0.0.1\n")
    );
    db.create_database("app_db").unwrap();
    db.sql("create table app_db.t (x int) engine=InnoDB; insert into app_db.t values (42)")
        .unwrap();
    assert!(Path::new(&db.socket_path()).exists());

    // kill → not answering
    let pid = db.pid().unwrap();
    db.kill().unwrap();
    assert!(!alive(pid));
    assert_eq!(mariadb_select_1(port, Duration::from_secs(5)), None);

    // restart → same port, data kept
    timed("mariadb restart after kill", || {
        db.restart().expect("restart mariadb")
    });
    assert_eq!(db.port(), port);
    assert_eq!(
        mariadb_select_1(port, Duration::from_secs(10)).as_deref(),
        Some("1\n")
    );
    assert_eq!(db.sql("select x from app_db.t").unwrap(), "42\n");

    // pause → hangs; resume → answers
    db.pause().unwrap();
    assert_eq!(mariadb_select_1(port, Duration::from_secs(3)), None);
    db.resume().unwrap();
    assert_eq!(
        mariadb_select_1(port, Duration::from_secs(10)).as_deref(),
        Some("1\n")
    );

    // graceful stop
    timed("mariadb stop", || db.stop().unwrap());
    assert!(!db.is_running());
    db.restart().unwrap();
    assert_eq!(db.sql("select x from app_db.t").unwrap(), "42\n");

    // drop → process and dir gone
    let pid = db.pid().unwrap();
    let dir = db.dir().to_path_buf();
    drop(db);
    assert!(!alive(pid), "mariadbd survived drop");
    assert!(!dir.exists(), "{} survived drop", dir.display());
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

#[test]
fn missing_binary_says_how_to_install_it() {
    let err =
        perfwatch_testbench::find_binary("perfwatch-no-such-server", "perfwatch-no-such-package")
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "perfwatch-no-such-server not found in PATH: install it with `apt-get install perfwatch-no-such-package` \
         (or run scripts/install-test-deps.sh)"
    );
    assert!(perfwatch_testbench::find_binary("redis-server", "redis-server").is_ok());
    // postgres is not on Debian's PATH: found in /usr/lib/postgresql/<major>/bin.
    assert!(perfwatch_testbench::find_binary("postgres", "postgresql").is_ok());
}

#[test]
fn free_port_is_bindable() {
    let port = perfwatch_testbench::free_port().unwrap();
    assert_ne!(port, 0);
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .expect("port from free_port() is bindable");
}
