//! Throwaway PgBouncer instances in front of a (throwaway) PostgreSQL.
//!
//! Tests start their own `pgbouncer` from the binary installed by Debian's
//! `pgbouncer` package, on a free 127.0.0.1 port with its own temp dir (config,
//! auth file, Unix socket, log), never the machine's own PgBouncer on 6432.
//!
//! Authentication is `trust`: the auth file lists the users PgBouncer accepts:
//! `perfwatch` (in `admin_users` and `stats_users`), `postgres` (the backend
//! superuser that clients use to reach real databases, also an admin) and
//! `app` (neither admin nor stats user: the admin console refuses it). Every
//! database name is routed to the backend with the wildcard `* = host=… port=…`.
//!
//! PgBouncer refuses to run as root. When the tests run as root (CI does), it
//! runs as the `postgres` system user (created by Debian's `postgresql`
//! package), like [`PostgresServer`]: the temp dir is world-traversable and
//! owned by that user.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::{
    HarnessError, PostgresServer, START_TIMEOUT, ServerProcess, check_setting, chown,
    common_server_methods, find_binary, make_temp_dir, port_accepts, run_command,
    start_on_free_port, write_file,
};

const SERVER: &str = "pgbouncer";

/// The user perfwatch connects to the admin console as (an `admin_users` and
/// `stats_users` member).
pub const PGBOUNCER_ADMIN_USER: &str = "perfwatch";

/// Settings the harness owns: the listening address and port (the port moves
/// with retries), the paths inside the temp dir, and authentication.
const RESERVED: &[&str] = &[
    "listen_addr",
    "listen_port",
    "unix_socket_dir",
    "logfile",
    "pidfile",
    "auth_type",
    "auth_file",
    "auth_user",
    "auth_query",
    "admin_users",
    "stats_users",
    "user",
    "%include",
];

/// Timeout for `psql` helper calls.
const PSQL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where PgBouncer sends server connections: a PostgreSQL on 127.0.0.1 (or
/// any host) and port. `From<&PostgresServer>` and `From<(&str, u16)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgbouncerBackend {
    /// Host name or IP of the PostgreSQL server.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl From<&PostgresServer> for PgbouncerBackend {
    fn from(pg: &PostgresServer) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: pg.port(),
        }
    }
}

impl From<(&str, u16)> for PgbouncerBackend {
    fn from((host, port): (&str, u16)) -> Self {
        Self {
            host: host.to_owned(),
            port,
        }
    }
}

/// A `pgbouncer` owned by the test: own temp dir, own port, trust auth,
/// killed and deleted on drop.
///
/// ```no_run
/// use perfwatch_testbench::{PgbouncerServer, PostgresServer};
/// let pg = PostgresServer::start(&[])?;
/// let bouncer = PgbouncerServer::start(&pg, &[("pool_mode", "session"), ("default_pool_size", "2")])?;
/// println!("{}", bouncer.dsn()); // postgres://perfwatch@127.0.0.1:<port>/pgbouncer
/// assert!(bouncer.admin("SHOW POOLS")?.contains("postgres"));
/// # Ok::<(), perfwatch_testbench::HarnessError>(())
/// ```
#[derive(Debug)]
pub struct PgbouncerServer {
    // Declared before `dir`: the process is killed before the dir is removed.
    process: ServerProcess,
    binary: PathBuf,
    psql: PathBuf,
    run_as: Option<(u32, u32)>,
    config_path: PathBuf,
    log_path: PathBuf,
    backend: PgbouncerBackend,
    dir: TempDir,
}

impl PgbouncerServer {
    /// Writes `pgbouncer.ini` and an auth file, starts `pgbouncer` and waits
    /// (up to [`START_TIMEOUT`]) until the port accepts connections and
    /// `psql -U perfwatch pgbouncer -c 'SHOW VERSION'` succeeds.
    ///
    /// Always set: `listen_addr = 127.0.0.1`, the port, `unix_socket_dir`,
    /// `logfile` (both in the temp dir), `auth_type = trust` with an auth file
    /// holding `perfwatch`, `postgres` and `app`, `admin_users = perfwatch,
    /// postgres`, `stats_users = perfwatch`, and `* = host=<backend>
    /// port=<backend port>` in `[databases]`. Defaults the caller may
    /// override: `pool_mode = session`, `default_pool_size = 20`,
    /// `max_client_conn = 200`, `server_login_retry = 1`,
    /// `ignore_startup_parameters = extra_float_digits` (JDBC and sqlx
    /// send it). `settings` are written to `[pgbouncer]` as `key = value`
    /// lines after the defaults.
    pub fn start(
        backend: impl Into<PgbouncerBackend>,
        settings: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let backend = backend.into();
        let binary = find_binary("pgbouncer", "pgbouncer")?;
        let psql = find_binary("psql", "postgresql-client")?;
        for (key, value) in settings {
            check_setting(SERVER, key, value, RESERVED)?;
        }
        if backend.host.is_empty() || backend.host.contains(|c: char| c.is_whitespace()) {
            return Err(HarnessError::InvalidSetting {
                server: SERVER,
                key: "backend host".into(),
                value: backend.host.clone(),
                reason: "the host must be non-empty without spaces",
            });
        }
        let run_as = super::postgres::run_as_postgres(SERVER)?;
        let dir = make_temp_dir(SERVER, run_as.is_some())?;
        if let Some((uid, gid)) = run_as {
            // PgBouncer writes its log and Unix socket here.
            chown(SERVER, dir.path(), uid, gid)?;
        }
        let auth_path = dir.path().join("userlist.txt");
        write_file(
            SERVER,
            &auth_path,
            &format!("\"{PGBOUNCER_ADMIN_USER}\" \"\"\n\"postgres\" \"\"\n\"app\" \"\"\n"),
        )?;
        let log_path = dir.path().join("pgbouncer.log");
        let mut process = ServerProcess::new(
            SERVER,
            // SIGINT is PgBouncer's "safe" shutdown, which waits for clients;
            // SIGTERM shuts down at once.
            libc::SIGTERM,
            dir.path().join("pgbouncer.console.log"),
        );
        process.log_files.push(log_path.clone());
        let config_path = dir.path().join("pgbouncer.ini");
        let mut server = PgbouncerServer {
            process,
            binary,
            psql,
            run_as,
            config_path,
            log_path,
            backend,
            dir,
        };
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        start_on_free_port(SERVER, |port| {
            server.write_config(port, &settings)?;
            server.launch(port)
        })?;
        Ok(server)
    }

    common_server_methods!(
        "pgbouncer",
        /// Starts PgBouncer again on the same port and config (killing it first
        /// if it is still running) and waits until it is ready. Pools and stats
        /// start from zero.
        restart
    );

    /// `postgres://perfwatch@127.0.0.1:<port>/pgbouncer`: the admin console.
    pub fn dsn(&self) -> String {
        format!(
            "postgres://{PGBOUNCER_ADMIN_USER}@127.0.0.1:{}/pgbouncer",
            self.port()
        )
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`: a pooled
    /// connection to the backend's `database`.
    pub fn dsn_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port())
    }

    /// Where server connections go.
    pub fn backend(&self) -> &PgbouncerBackend {
        &self.backend
    }

    /// The generated `pgbouncer.ini`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// PgBouncer's `logfile`.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The `psql` binary the helpers use.
    pub fn psql_path(&self) -> &Path {
        &self.psql
    }

    /// Whether the admin console answers `SHOW VERSION` (2 s timeout).
    pub fn is_ready(&self) -> bool {
        show_version(&self.psql, self.dir.path(), self.port(), 2)
    }

    /// Runs one admin console command (`SHOW POOLS`, `PAUSE`, ...) as
    /// `perfwatch` and returns the rows unaligned and tuples-only, columns
    /// separated by `|`.
    pub fn admin(&self, command: &str) -> Result<String, HarnessError> {
        run_command(
            SERVER,
            self.psql_command(PGBOUNCER_ADMIN_USER, "pgbouncer", command),
            PSQL_TIMEOUT,
        )
    }

    /// Runs `sql` through PgBouncer in the backend's `database` as
    /// `postgres` (a pooled client connection), like
    /// [`PostgresServer::psql`].
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, HarnessError> {
        run_command(
            SERVER,
            self.psql_command("postgres", database, sql),
            PSQL_TIMEOUT,
        )
    }

    /// The `psql` command [`psql`](Self::psql) and [`admin`](Self::admin)
    /// run, for callers that spawn clients concurrently (e.g. several
    /// `SELECT pg_sleep(3)` to fill a pool).
    pub fn psql_command(&self, user: &str, database: &str, sql: &str) -> Command {
        super::postgres::psql_command(
            &self.psql,
            self.port(),
            user,
            database,
            sql,
            self.dir.path(),
        )
    }

    fn write_config(&self, port: u16, settings: &[(String, String)]) -> Result<(), HarnessError> {
        let dir = self.dir.path().display();
        let mut ini = String::from("; generated by perfwatch-testbench\n[databases]\n");
        ini.push_str(&format!(
            "* = host={} port={}\n\n[pgbouncer]\n",
            self.backend.host, self.backend.port
        ));
        ini.push_str(&format!("listen_addr = 127.0.0.1\nlisten_port = {port}\n"));
        ini.push_str(&format!("unix_socket_dir = {dir}\n"));
        ini.push_str(&format!("logfile = {}\n", self.log_path.display()));
        ini.push_str(&format!(
            "auth_type = trust\nauth_file = {dir}/userlist.txt\n"
        ));
        ini.push_str(&format!(
            "admin_users = {PGBOUNCER_ADMIN_USER}, postgres\nstats_users = {PGBOUNCER_ADMIN_USER}\n"
        ));
        ini.push_str("pool_mode = session\ndefault_pool_size = 20\nmax_client_conn = 200\n");
        ini.push_str("server_login_retry = 1\nignore_startup_parameters = extra_float_digits\n");
        for (key, value) in settings {
            ini.push_str(&format!("{key} = {value}\n"));
        }
        write_file(SERVER, &self.config_path, &ini)
    }

    /// Spawns `pgbouncer <ini>` and waits for the admin console.
    fn launch(&mut self, port: u16) -> Result<(), HarnessError> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg(&self.config_path).current_dir(self.dir.path());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        self.process.spawn(cmd, port)?;
        let psql = self.psql.clone();
        let socket_dir = self.dir.path().to_owned();
        self.process.wait_ready(START_TIMEOUT, |port| {
            port_accepts(port, Duration::from_millis(200))
                && show_version(&psql, &socket_dir, port, 2)
        })
    }
}

/// `SHOW VERSION` on the admin console through PgBouncer's Unix socket in
/// `socket_dir`: TLS settings (`client_tls_sslmode = verify-full` wants a
/// client certificate psql does not have) apply to TCP clients only, so the
/// readiness check works whatever the test configures.
fn show_version(psql: &Path, socket_dir: &Path, port: u16, timeout_secs: u32) -> bool {
    let mut cmd = Command::new(psql);
    cmd.args(["-X", "-q", "-A", "-t", "-h"])
        .arg(socket_dir)
        .args(["-U", PGBOUNCER_ADMIN_USER, "-d", "pgbouncer"])
        .arg("-p")
        .arg(port.to_string())
        .args(["-c", "SHOW VERSION"])
        .env("PGCONNECT_TIMEOUT", timeout_secs.to_string())
        .env_remove("PGPASSWORD");
    run_command(
        SERVER,
        cmd,
        Duration::from_secs(u64::from(timeout_secs) + 5),
    )
    .is_ok()
}
