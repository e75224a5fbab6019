//! perfwatch's test bench: throwaway database servers for the integration
//! tests, the demo and the benchmark scripts.
//!
//! It is a crate of its own, apart from the `perfwatch` sidecar, so that none
//! of it (server launchers with `unsafe` process setup, a sample app, a
//! workload generator, the repository's rules and example configs compiled
//! in) is linked into the sidecar binary, and so that the sidecar builds from
//! its own sources alone (`deploy/Dockerfile`). The library does not depend
//! on `perfwatch`; only the `demo` feature (the `perfwatch-demo` binary and
//! [`demo`]) does, because the demo runs perfwatch itself.
//!
//! perfwatch scrapes Redis, PostgreSQL and MariaDB. Its tests need real
//! servers they can configure, kill, pause and restart at will, so every test
//! starts its own instances from the binaries installed by the Debian
//! packages (`redis-server`, `postgresql`, `mariadb-server`), each with:
//!
//! - its own temporary directory (data, config, socket and logs), removed on
//!   drop;
//! - a free port on 127.0.0.1 chosen at start (retried if another process
//!   grabs it first);
//! - the caller's settings applied on top of fast, test-friendly defaults;
//! - a bounded readiness wait whose error carries the server's log tail.
//!
//! The machine's own services on their default ports are never used, and a
//! missing binary is an error that says how to install it (never a silent
//! skip): run `scripts/install-test-deps.sh` or the `apt-get install` named in
//! the error.
//!
//! Everything is synchronous (`std::process`). From async tests call the
//! constructors inside `tokio::task::spawn_blocking` or directly: starting
//! takes well under a few seconds. Linux only (uses `/proc` and `prctl`).
//!
//! One server is not a real one: [`mysql8_login`], a protocol-level MySQL 8
//! *login* server (caching_sha2_password and sha256_password, with TLS and
//! the RSA exchange), because MySQL 8 has no package here; it checks
//! passwords for real but answers nothing after the login.
//!
//! Besides the servers: [`SampleApp`] (a stand-in for the watched app),
//! [`workload`] (cache and database traffic and the schemas it runs on),
//! [`deploy`] (the repository's rules and example Prometheus/Alertmanager
//! configs, rendered) and [`AlertWebhook`] (records Alertmanager's
//! notifications), shared by the end-to-end test and `perfwatch-demo`.
//!
//! Orphans: each server runs in its own process group, is killed with its
//! whole process tree on drop, and gets `PR_SET_PDEATHSIG` = `SIGKILL`, so it
//! also dies when the test process itself is killed.

mod alertmanager;
#[cfg(feature = "demo")]
pub mod demo;
pub mod deploy;
mod local_http;
mod mariadb;
pub mod mysql8_login;
mod pgbouncer;
pub mod pki;
mod postgres;
mod prometheus;
mod redis;
mod redis_ha;
mod sample_app;
mod webhook;
pub mod workload;

pub use alertmanager::{AlertmanagerAlert, AlertmanagerServer};
pub use mariadb::MariaDbServer;
pub use pgbouncer::{PGBOUNCER_ADMIN_USER, PgbouncerBackend, PgbouncerServer};
pub use postgres::{PostgresServer, run_as_postgres};
pub use prometheus::{
    Labels as PrometheusLabels, PrometheusAlert, PrometheusRule, PrometheusServer, PrometheusTarget,
};
pub use redis::RedisServer;
pub use redis_ha::{RedisCluster, RedisSentinel};
pub use sample_app::{ANALYTICS_COST, SampleApp, SampleAppBackends};
pub use webhook::{AlertWebhook, DeliveredAlert};

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to become ready before start/restart fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many fresh ports a start tries when the server cannot bind its port
/// (another process took it between our probe and the server's bind).
pub const PORT_ATTEMPTS: usize = 5;

/// The script that installs every Debian package the tests need.
pub const INSTALL_SCRIPT: &str = "scripts/install-test-deps.sh";

/// How long helper commands (initdb, psql, mariadb, ...) may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a graceful [`stop`](RedisServer::stop) waits before `SIGKILL`.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines of each log file quoted in errors.
const LOG_TAIL_LINES: usize = 40;

/// Everything that can go wrong while starting, driving or stopping a
/// throwaway server.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A server or client binary is not installed.
    #[error(
        "{binary} not found in PATH: install it with `apt-get install {package}` (or run {script})",
        script = INSTALL_SCRIPT
    )]
    BinaryNotFound {
        /// The binary that was looked for, e.g. `redis-server`.
        binary: String,
        /// The Debian package that ships it.
        package: String,
    },
    /// A system user the server must run as does not exist.
    #[error(
        "{server} refuses to run as root and system user `{user}` does not exist: install it with `apt-get install {package}` (or run {script}), or run the tests as a non-root user",
        script = INSTALL_SCRIPT
    )]
    MissingUser {
        /// The server, e.g. `postgres`.
        server: &'static str,
        /// The missing user name.
        user: String,
        /// The Debian package that creates it.
        package: String,
    },
    /// A file-system or process operation failed.
    #[error("{server}: {context}: {source}")]
    Io {
        /// The server concerned.
        server: &'static str,
        /// What was being done, with the path or command involved.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A caller setting was rejected before anything was started.
    #[error("invalid {server} setting `{key}` = `{value}`: {reason}")]
    InvalidSetting {
        /// The server concerned.
        server: &'static str,
        /// The setting name as given.
        key: String,
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A database name that the helpers refuse to interpolate into SQL.
    #[error("invalid {server} database name `{name}`: use ASCII letters, digits and `_` only")]
    InvalidName {
        /// The server concerned.
        server: &'static str,
        /// The rejected name.
        name: String,
    },
    /// The server process exited while we waited for it to become ready.
    #[error("{server} on 127.0.0.1:{port} exited during startup ({status}); log tail:\n{log_tail}")]
    Exited {
        /// The server concerned.
        server: &'static str,
        /// The port it was given.
        port: u16,
        /// Its exit status.
        status: String,
        /// The end of its log files.
        log_tail: String,
    },
    /// The server did not become ready within [`START_TIMEOUT`].
    #[error("{server} on 127.0.0.1:{port} not ready after {waited:?}; log tail:\n{log_tail}")]
    NotReady {
        /// The server concerned.
        server: &'static str,
        /// The port it was given.
        port: u16,
        /// How long we waited.
        waited: Duration,
        /// The end of its log files.
        log_tail: String,
    },
    /// The operation needs a running server, but it was killed or stopped.
    #[error("{server} is not running (killed or stopped); call restart() first")]
    NotRunning {
        /// The server concerned.
        server: &'static str,
    },
    /// A helper command exited unsuccessfully.
    #[error("{server}: `{command}` failed ({status}): {output}")]
    CommandFailed {
        /// The server concerned.
        server: &'static str,
        /// The command line, shortened.
        command: String,
        /// Its exit status.
        status: String,
        /// Its stderr (and stdout), trimmed.
        output: String,
    },
    /// A helper command ran longer than allowed and was killed.
    #[error("{server}: `{command}` still running after {timeout:?}, killed")]
    CommandTimeout {
        /// The server concerned.
        server: &'static str,
        /// The command line, shortened.
        command: String,
        /// The limit that was hit.
        timeout: Duration,
    },
    /// The server answered a request with an error or garbage.
    #[error("{server}: request `{request}` failed: {reply}")]
    BadReply {
        /// The server concerned.
        server: &'static str,
        /// The request sent, shortened.
        request: String,
        /// The error reply or a description of the garbage.
        reply: String,
    },
}

/// Finds `name` on `PATH`, then in the sbin directories (often missing from a
/// non-root `PATH`), then in the newest `/usr/lib/postgresql/<major>/bin`.
///
/// The error names the Debian package to install, e.g.
/// `redis-server not found in PATH: install it with `apt-get install
/// redis-server` (or run scripts/install-test-deps.sh)`.
pub fn find_binary(name: &str, debian_package: &str) -> Result<PathBuf, HarnessError> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let fallback_dirs = [
        "/usr/local/sbin",
        "/usr/sbin",
        "/sbin",
        "/usr/local/bin",
        "/usr/bin",
    ]
    .into_iter()
    .map(PathBuf::from);
    path_dirs
        .into_iter()
        .chain(fallback_dirs)
        .chain(postgres_bin_dirs())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| HarnessError::BinaryNotFound {
            binary: name.to_owned(),
            package: debian_package.to_owned(),
        })
}

/// `/usr/lib/postgresql/<major>/bin` directories, newest major first.
fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Returns a port on 127.0.0.1 that was free a moment ago (bind port 0, read
/// it, close). Servers are retried on a new port if they lose the race.
pub fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| HarnessError::Io {
            server: "harness",
            context: "binding 127.0.0.1:0 to find a free port".into(),
            source,
        })
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` within
/// `timeout`.
pub fn port_accepts(port: u16, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout).is_ok()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// uid and gid of a system user, via `getpwnam_r`.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain old data; getpwnam_r fills it and `result`
    // points at it (or is null) on return; buf outlives every use.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() {
            return None;
        }
        Some((pwd.pw_uid, pwd.pw_gid))
    }
}

fn chown(server: &'static str, path: &Path, uid: u32, gid: u32) -> Result<(), HarnessError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_error(
        server,
        format!("chown {} to {uid}:{gid}", path.display()),
    ))
}

fn set_mode(server: &'static str, path: &Path, mode: u32) -> Result<(), HarnessError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_error(
        server,
        format!("chmod {mode:o} {}", path.display()),
    ))
}

fn write_file(server: &'static str, path: &Path, contents: &str) -> Result<(), HarnessError> {
    fs::write(path, contents).map_err(io_error(server, format!("writing {}", path.display())))
}

fn io_error(server: &'static str, context: String) -> impl FnOnce(io::Error) -> HarnessError {
    move |source| HarnessError::Io {
        server,
        context,
        source,
    }
}

/// Creates the instance's temporary directory. With `world_traversable`
/// (needed when the server runs as another user) it is made 0755 under a
/// parent every user can traverse, falling back to `/tmp`.
fn make_temp_dir(server: &'static str, world_traversable: bool) -> Result<TempDir, HarnessError> {
    make_temp_dir_in(server, std::env::temp_dir(), world_traversable)
}

/// [`make_temp_dir`] under `base` instead of the system temp dir.
fn make_temp_dir_in(
    server: &'static str,
    mut base: PathBuf,
    world_traversable: bool,
) -> Result<TempDir, HarnessError> {
    if world_traversable && !base.ancestors().all(others_can_traverse) {
        base = PathBuf::from("/tmp");
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("perfwatch-{server}-"))
        .tempdir_in(&base)
        .map_err(io_error(
            server,
            format!("creating a temp dir in {}", base.display()),
        ))?;
    if world_traversable {
        set_mode(server, dir.path(), 0o755)?;
    }
    Ok(dir)
}

fn others_can_traverse(dir: &Path) -> bool {
    fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
}

/// Rejects values that would break a line-based config file.
fn check_setting(
    server: &'static str,
    key: &str,
    value: &str,
    reserved: &[&str],
) -> Result<(), HarnessError> {
    let invalid = |reason| HarnessError::InvalidSetting {
        server,
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    if key.is_empty()
        || key
            .chars()
            .any(|c| c.is_whitespace() || c == '=' || c == '#')
    {
        return Err(invalid(
            "the name must be non-empty without spaces, `=` or `#`",
        ));
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err(invalid("the value must be a single line"));
    }
    let normalized = key.to_ascii_lowercase().replace('-', "_");
    if reserved.iter().any(|r| r.replace('-', "_") == normalized) {
        return Err(invalid(
            "it is managed by the harness (see the module docs)",
        ));
    }
    Ok(())
}

/// Rejects database names that are not plain identifiers.
fn check_database_name(server: &'static str, name: &str) -> Result<(), HarnessError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(HarnessError::InvalidName {
            server,
            name: name.to_owned(),
        })
    }
}

/// The command line for error messages, without very long arguments.
fn describe(cmd: &Command) -> String {
    let mut parts = vec![
        Path::new(cmd.get_program())
            .file_name()
            .unwrap_or(cmd.get_program())
            .to_string_lossy()
            .into_owned(),
    ];
    parts.extend(cmd.get_args().map(|a| {
        let a = a.to_string_lossy();
        if a.chars().count() > 200 {
            format!("{}…", a.chars().take(200).collect::<String>())
        } else {
            a.into_owned()
        }
    }));
    parts.join(" ")
}

/// Runs a short helper command (initdb, psql, ...) with a time limit and
/// returns its stdout. Output goes to anonymous temp files, so a chatty
/// command can't block on a full pipe.
fn run_command(
    server: &'static str,
    mut cmd: Command,
    timeout: Duration,
) -> Result<String, HarnessError> {
    let command = describe(&cmd);
    let io_err = |what: &str| io_error(server, format!("{what} `{command}`"));
    let mut stdout = tempfile::tempfile().map_err(io_err("capturing output of"))?;
    let mut stderr = tempfile::tempfile().map_err(io_err("capturing output of"))?;
    cmd.stdin(Stdio::null())
        .stdout(stdout.try_clone().map_err(io_err("capturing output of"))?)
        .stderr(stderr.try_clone().map_err(io_err("capturing output of"))?)
        .process_group(0);
    let mut child = cmd.spawn().map_err(io_err("starting"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io_err("waiting for"))? {
            break status;
        }
        if Instant::now() >= deadline {
            signal_group(child.id(), libc::SIGKILL);
            let _ = child.wait();
            return Err(HarnessError::CommandTimeout {
                server,
                command,
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read_all = |f: &mut File| -> io::Result<String> {
        let mut s = String::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_string(&mut s)?;
        Ok(s)
    };
    let out = read_all(&mut stdout).map_err(io_err("reading output of"))?;
    let err = read_all(&mut stderr).map_err(io_err("reading output of"))?;
    if !status.success() {
        let output = format!("{}\n{}", err.trim(), out.trim()).trim().to_owned();
        return Err(HarnessError::CommandFailed {
            server,
            command,
            status: status.to_string(),
            output: tail_lines(&output, LOG_TAIL_LINES),
        });
    }
    Ok(out)
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// Process supervision
// ---------------------------------------------------------------------------

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` from one long-lived thread.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so
/// servers are forked from a thread that lives as long as the process: a
/// server started from a short-lived thread (a test thread, a tokio blocking
/// thread) must not die when that thread does.
fn spawn_supervised(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("perfwatch-harness-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the harness spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("harness spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("harness spawner thread is gone"))?
}

fn signal_pid(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions; errors (ESRCH) are
    // expected for processes that already exited.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

fn signal_group(pgid: u32, sig: libc::c_int) {
    // SAFETY: as for kill.
    unsafe {
        libc::killpg(pgid as libc::pid_t, sig);
    }
}

/// `(state, ppid)` of a process from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` exists and is not a zombie.
fn process_alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// All descendants of `root` (PostgreSQL backends call `setsid`, so the
/// process group alone does not reach them).
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((_, ppid)) = proc_stat(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            out.push(child);
            queue.push(child);
        }
    }
    out
}

/// One server process: spawning, readiness, signals, kill on drop.
#[derive(Debug)]
struct ServerProcess {
    server: &'static str,
    child: Option<Child>,
    port: u16,
    /// Signal for a graceful stop (PostgreSQL's fast shutdown is SIGINT).
    stop_signal: libc::c_int,
    /// stdout/stderr of the server.
    console_log: PathBuf,
    /// Files quoted in errors, besides `console_log`.
    log_files: Vec<PathBuf>,
    /// Directories whose files are quoted in errors (e.g. PostgreSQL's
    /// logging-collector directory).
    log_dirs: Vec<PathBuf>,
    /// File sizes when the current process was spawned: errors quote only
    /// what this run wrote.
    log_offsets: HashMap<PathBuf, u64>,
}

impl ServerProcess {
    fn new(server: &'static str, stop_signal: libc::c_int, console_log: PathBuf) -> Self {
        ServerProcess {
            server,
            child: None,
            port: 0,
            stop_signal,
            console_log,
            log_files: Vec::new(),
            log_dirs: Vec::new(),
            log_offsets: HashMap::new(),
        }
    }

    fn all_log_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.console_log.clone()];
        files.extend(self.log_files.iter().cloned());
        for dir in &self.log_dirs {
            let mut in_dir: Vec<PathBuf> = fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        }
        files
    }

    /// The end of what the current run wrote to each log file.
    fn log_tail(&self) -> String {
        let mut out = String::new();
        for path in self.all_log_files() {
            let Ok(mut file) = File::open(&path) else {
                continue;
            };
            let offset = self.log_offsets.get(&path).copied().unwrap_or(0);
            let mut bytes = Vec::new();
            if file
                .seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_to_end(&mut bytes))
                .is_err()
            {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            if text.trim().is_empty() {
                continue;
            }
            out.push_str(&format!(
                "==> {} <==\n{}\n",
                path.display(),
                tail_lines(&text, LOG_TAIL_LINES)
            ));
        }
        if out.is_empty() {
            "(no log output)".into()
        } else {
            out
        }
    }

    /// Spawns the server with stdout/stderr appended to the console log, in a
    /// new process group, dying with the test process.
    fn spawn(&mut self, mut cmd: Command, port: u16) -> Result<(), HarnessError> {
        debug_assert!(self.child.is_none(), "spawn while running");
        self.port = port;
        self.log_offsets = self
            .all_log_files()
            .into_iter()
            .filter_map(|p| Some((p.clone(), fs::metadata(&p).ok()?.len())))
            .collect();
        let server = self.server;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.console_log)
            .map_err(io_error(
                server,
                format!("opening {}", self.console_log.display()),
            ))?;
        let log2 = log.try_clone().map_err(io_error(
            server,
            format!("opening {}", self.console_log.display()),
        ))?;
        cmd.stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        let command = describe(&cmd);
        let child =
            spawn_supervised(cmd).map_err(io_error(server, format!("starting `{command}`")))?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls `probe` until it succeeds, the process exits, or `timeout`.
    fn wait_ready(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut(u16) -> bool,
    ) -> Result<(), HarnessError> {
        let start = Instant::now();
        loop {
            let Some(child) = self.child.as_mut() else {
                return Err(HarnessError::NotRunning {
                    server: self.server,
                });
            };
            match child.try_wait() {
                Ok(Some(status)) => {
                    let pid = child.id();
                    self.child = None;
                    kill_leftover_group(pid);
                    return Err(self.exited(status));
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(HarnessError::Io {
                        server: self.server,
                        context: "waiting for the server process".into(),
                        source,
                    });
                }
            }
            if probe(self.port) {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                let log_tail = self.log_tail();
                let _ = self.kill();
                return Err(HarnessError::NotReady {
                    server: self.server,
                    port: self.port,
                    waited: start.elapsed(),
                    log_tail,
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn exited(&self, status: ExitStatus) -> HarnessError {
        HarnessError::Exited {
            server: self.server,
            port: self.port,
            status: status.to_string(),
            log_tail: self.log_tail(),
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn is_running(&self) -> bool {
        self.pid().is_some_and(process_alive)
    }

    fn running_pid(&self) -> Result<u32, HarnessError> {
        self.pid()
            .filter(|&p| process_alive(p))
            .ok_or(HarnessError::NotRunning {
                server: self.server,
            })
    }

    /// Sends `sig` to the server, its process group and all its descendants.
    fn signal_tree(&self, sig: libc::c_int) -> Result<(), HarnessError> {
        let pid = self.running_pid()?;
        signal_pid(pid, sig);
        for p in descendants(pid) {
            signal_pid(p, sig);
        }
        signal_group(pid, sig);
        Ok(())
    }

    /// SIGKILLs the whole tree and reaps it. A no-op when not running.
    fn kill(&mut self) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        // Freeze the root first so it cannot fork replacements while we
        // collect and kill its children.
        signal_pid(pid, libc::SIGSTOP);
        let tree = descendants(pid);
        for &p in &tree {
            signal_pid(p, libc::SIGKILL);
        }
        signal_group(pid, libc::SIGKILL);
        signal_pid(pid, libc::SIGKILL);
        let waited = child.wait();
        wait_gone(&tree, Duration::from_secs(10));
        waited.map(drop).map_err(io_error(
            self.server,
            format!("waiting for killed pid {pid}"),
        ))
    }

    /// Sends the graceful stop signal and waits; SIGKILL after
    /// [`STOP_TIMEOUT`].
    fn stop(&mut self) -> Result<(), HarnessError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        let pid = child.id();
        // A paused server can't shut down.
        signal_pid(pid, libc::SIGCONT);
        for p in descendants(pid) {
            signal_pid(p, libc::SIGCONT);
        }
        signal_pid(pid, self.stop_signal);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) => {
                    self.child = None;
                    kill_leftover_group(pid);
                    return Ok(());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        self.kill()
    }
}

/// After the root exited on its own: SIGKILL whatever is left in its process
/// group (its children were already re-parented, so only the group reaches
/// them; PostgreSQL backends, which leave the group, exit by themselves on
/// postmaster death). The group id cannot be reused while it has members.
fn kill_leftover_group(root_pid: u32) {
    signal_group(root_pid, libc::SIGKILL);
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Waits until none of `pids` is alive (zombies count as gone).
fn wait_gone(pids: &[u32], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while pids.iter().any(|&p| process_alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a server on a fresh free port, retrying on a new port when the
/// previous one was taken before the server could bind it.
fn start_on_free_port(
    server: &'static str,
    mut launch: impl FnMut(u16) -> Result<(), HarnessError>,
) -> Result<u16, HarnessError> {
    let mut last_err = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port()?;
        match launch(port) {
            Ok(()) => return Ok(port),
            Err(HarnessError::Exited {
                log_tail,
                server: s,
                port: p,
                status,
            }) if log_tail.contains("already in use") => {
                last_err = Some(HarnessError::Exited {
                    server: s,
                    port: p,
                    status,
                    log_tail,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or(HarnessError::NotRunning { server }))
}

/// Accessors and process control shared by every server type.
///
/// `restart` kills the process (if it is still running) and calls the
/// server's own `launch(port)` on the same port; its doc comment comes from
/// the invocation.
macro_rules! common_server_methods {
    ($server:literal, $(#[$restart_doc:meta])* restart) => {
        $(#[$restart_doc])*
        pub fn restart(&mut self) -> Result<(), $crate::HarnessError> {
            self.process.kill()?;
            self.launch(self.process.port)
        }

        /// `127.0.0.1:<port>`.
        pub fn addr(&self) -> std::net::SocketAddr {
            std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, self.process.port))
        }

        #[doc = concat!("The TCP port ", $server, " listens on (127.0.0.1); unchanged by [`restart`](Self::restart).")]
        pub fn port(&self) -> u16 {
            self.process.port
        }

        #[doc = concat!("The pid of the ", $server, " process, or `None` after [`kill`](Self::kill)/[`stop`](Self::stop).")]
        pub fn pid(&self) -> Option<u32> {
            self.process.pid()
        }

        #[doc = concat!("Whether the ", $server, " process exists (a paused one counts as running).")]
        pub fn is_running(&self) -> bool {
            self.process.is_running()
        }

        #[doc = concat!("Kills ", $server, " and its whole process tree with SIGKILL and reaps it. No-op if not running; the data dir is kept for [`restart`](Self::restart).")]
        pub fn kill(&mut self) -> Result<(), $crate::HarnessError> {
            self.process.kill()
        }

        #[doc = concat!("Shuts ", $server, " down gracefully (SIGKILL if that takes over 30 s). No-op if not running; the data dir is kept.")]
        pub fn stop(&mut self) -> Result<(), $crate::HarnessError> {
            self.process.stop()
        }

        #[doc = concat!("Freezes ", $server, " and its children with SIGSTOP: connections stay open but nothing is answered until [`resume`](Self::resume).")]
        pub fn pause(&self) -> Result<(), $crate::HarnessError> {
            self.process.signal_tree(libc::SIGSTOP)
        }

        #[doc = concat!("Thaws a [`pause`](Self::pause)d ", $server, " with SIGCONT.")]
        pub fn resume(&self) -> Result<(), $crate::HarnessError> {
            self.process.signal_tree(libc::SIGCONT)
        }

        #[doc = concat!("The file receiving ", $server, "'s stdout and stderr.")]
        pub fn console_log_path(&self) -> &std::path::Path {
            &self.process.console_log
        }

        /// The instance's temporary directory (config, data, logs), removed
        /// on drop.
        pub fn dir(&self) -> &std::path::Path {
            self.dir.path()
        }

        /// The end of the instance's log files since the last (re)start, as
        /// quoted in errors.
        pub fn log_tail(&self) -> String {
            self.process.log_tail()
        }
    };
}
use common_server_methods;

/// `s` cut to its first `max` characters (with an ellipsis) when longer.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// An argument that is an `OsStr` path joined with a prefix, e.g.
/// `--datadir=/tmp/x`.
fn flag_path(flag: &str, path: &Path) -> std::ffi::OsString {
    let mut s = std::ffi::OsString::from(flag);
    s.push(OsStr::new(path));
    s
}
