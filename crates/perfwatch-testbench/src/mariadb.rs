//! Throwaway MariaDB servers.
//!
//! Tests start their own server (`mariadb-install-db` + `mariadbd` from
//! Debian's `mariadb-server` package, driven with the `mariadb` and
//! `mariadb-admin` clients from `mariadb-client`) on a free 127.0.0.1 port
//! with datadir, socket, pid file and logs in its own temp dir, never the
//! machine's own server on 3306.
//!
//! Authentication: the system tables are created with
//! `--auth-root-authentication-method=normal`, so `root@localhost` (socket)
//! has an empty password whichever OS user runs the tests, and at first start
//! `root@127.0.0.1` is ensured with an empty password and all privileges, so
//! [`MariaDbServer::dsn`] works over TCP. Grant tables are on (no
//! `--skip-grant-tables`), so tests can create users and check privileges.
//! When the tests run as root, `mariadbd` gets `user = root`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::{
    COMMAND_TIMEOUT, HarnessError, START_TIMEOUT, ServerProcess, check_database_name,
    check_setting, common_server_methods, find_binary, flag_path, is_root, make_temp_dir_in,
    run_command, start_on_free_port, write_file,
};

const SERVER: &str = "mariadbd";

/// Settings the harness owns: they would break port tracking, the socket
/// the helpers use, or supervision.
const RESERVED: &[&str] = &[
    "port",
    "socket",
    "datadir",
    "pid-file",
    "user",
    "log-error",
    "basedir",
];

/// Timeout for `mariadb` helper calls.
const SQL_TIMEOUT: Duration = Duration::from_secs(60);

/// Test-friendly defaults, written before the caller's settings (which win).
const DEFAULTS: &[(&str, &str)] = &[
    ("bind-address", "127.0.0.1"),
    ("skip-name-resolve", "ON"),
    ("max_connections", "50"),
    ("innodb_buffer_pool_size", "32M"),
    ("innodb_log_file_size", "16M"),
    ("innodb_flush_log_at_trx_commit", "2"),
    ("innodb_doublewrite", "OFF"),
    // Several test servers start at once; native AIO contexts are a
    // machine-wide limit (fs.aio-max-nr) that throwaway servers need not use.
    ("innodb_use_native_aio", "0"),
    ("character-set-server", "utf8mb4"),
];

/// A MariaDB server owned by the test: own temp dir, own port, killed and
/// deleted on drop.
///
/// ```no_run
/// use perfwatch_testbench::MariaDbServer;
/// let db = MariaDbServer::start(&[("slow_query_log", "1"), ("long_query_time", "0")])?;
/// assert_eq!(db.sql("select 1")?.trim(), "1");
/// println!("{}", db.dsn()); // mysql://root@127.0.0.1:<port>/
/// # Ok::<(), perfwatch_testbench::HarnessError>(())
/// ```
#[derive(Debug)]
pub struct MariaDbServer {
    // Declared before `dir`: the process is killed before the dir is removed.
    process: ServerProcess,
    mariadbd: PathBuf,
    client: PathBuf,
    admin: PathBuf,
    settings: Vec<(String, String)>,
    data_dir: PathBuf,
    dir: TempDir,
}

impl MariaDbServer {
    /// Creates the system tables with `mariadb-install-db` and starts
    /// `mariadbd`, waiting (up to [`START_TIMEOUT`]) until
    /// `mariadb-admin ping` over the socket succeeds.
    ///
    /// The server reads only the generated `<dir>/my.cnf` (`--defaults-file`,
    /// nothing from /etc/mysql): `datadir`, `socket`, `pid-file`,
    /// `log-error` in the temp dir, the port, `bind-address = 127.0.0.1`,
    /// `skip-name-resolve`, `max_connections = 50`, a small InnoDB, then
    /// `settings` as `name = value` lines in the `[mariadbd]` group (they
    /// override the defaults, e.g. `("max_connections", "20")`,
    /// `("performance_schema", "ON")`), except `port`, `socket`, `datadir`,
    /// `pid-file`, `user`, `log-error` and `basedir`. A setting with an empty
    /// value is written as a bare flag (`("skip-log-bin", "")`).
    pub fn start(settings: &[(&str, &str)]) -> Result<Self, HarnessError> {
        Self::start_in(&std::env::temp_dir(), settings)
    }

    /// [`start`](Self::start) with the instance's directory (datadir
    /// included) created under `parent`. MariaDB syncs every DDL to disk, so
    /// a test creating thousands of tables puts the server on a tmpfs
    /// (`/dev/shm`) to take seconds instead of minutes.
    pub fn start_in(parent: &Path, settings: &[(&str, &str)]) -> Result<Self, HarnessError> {
        let mariadbd = find_binary("mariadbd", "mariadb-server")?;
        let install_db = find_binary("mariadb-install-db", "mariadb-server")
            .or_else(|_| find_binary("mysql_install_db", "mariadb-server"))?;
        let client = find_binary("mariadb", "mariadb-client")?;
        let admin = find_binary("mariadb-admin", "mariadb-client")?;
        for (key, value) in settings {
            check_setting(SERVER, key, value, RESERVED)?;
        }
        let dir = make_temp_dir_in("mariadb", parent.to_path_buf(), false)?;
        let data_dir = dir.path().join("data");
        let console_log = dir.path().join("mariadbd.console.log");
        let process = ServerProcess::new(SERVER, libc::SIGTERM, console_log);
        let mut server = MariaDbServer {
            process,
            mariadbd,
            client,
            admin,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            data_dir,
            dir,
        };
        server.process.log_files.push(server.log_path());

        // The install reads the same my.cnf, so InnoDB sizes (and anything
        // else the caller set that matters at creation) match the server's.
        server.write_config(0)?;
        let mut install = Command::new(install_db);
        install
            .arg(flag_path("--defaults-file=", &server.config_path()))
            .arg(flag_path("--datadir=", &server.data_dir))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .current_dir(server.dir.path());
        if is_root() {
            install.arg("--user=root");
        }
        run_command(SERVER, install, COMMAND_TIMEOUT)?;

        start_on_free_port(SERVER, |port| server.launch(port))?;
        // Make TCP logins as root work, whatever install-db created.
        server.sql(
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; \
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; \
             FLUSH PRIVILEGES;",
        )?;
        Ok(server)
    }

    common_server_methods!(
        "mariadbd",
        /// Starts the server again on the same port and datadir (killing it
        /// first if it is still running) and waits until `mariadb-admin ping`
        /// succeeds. Data survives (after InnoDB recovery if it was killed).
        restart
    );

    /// `mysql://root@127.0.0.1:<port>/` (root, empty password, TCP).
    pub fn dsn(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/", self.port())
    }

    /// The Unix socket (`root` can log in over it with an empty password).
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("mariadb.sock")
    }

    /// The datadir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The generated `my.cnf` (pass it as `--defaults-file=` to other
    /// MariaDB tools).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("my.cnf")
    }

    /// The error log (`log-error`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("mariadb.err")
    }

    /// Whether `mariadb-admin ping` over the socket succeeds (2 s timeout).
    pub fn is_ready(&self) -> bool {
        admin_ping(&self.admin, &self.socket_path(), 2)
    }

    /// Runs `query` (one or more `;`-separated statements) as root over the
    /// socket with the `mariadb` client and returns its batch output: no
    /// column names, one row per line, columns separated by tabs.
    /// `sql("select 1")` returns `"1\n"`.
    pub fn sql(&self, query: &str) -> Result<String, HarnessError> {
        let mut cmd = Command::new(&self.client);
        cmd.arg("--no-defaults")
            .arg(flag_path("--socket=", &self.socket_path()))
            .args([
                "--user=root",
                "--batch",
                "--skip-column-names",
                "--connect-timeout=10",
                "-e",
            ])
            .arg(query)
            .current_dir(self.dir.path());
        run_command(SERVER, cmd, SQL_TIMEOUT)
    }

    /// Starts a replica of this server (which must run with `log_bin` and
    /// a `server_id` other than 2): a new server with `server_id` 2 and
    /// `settings` (which win), then [`replicate_from`](Self::replicate_from)
    /// this one.
    pub fn start_replica(&self, settings: &[(&str, &str)]) -> Result<MariaDbServer, HarnessError> {
        let mut all = vec![("server_id", "2")];
        all.extend_from_slice(settings);
        let replica = Self::start(&all)?;
        replica.replicate_from(self)?;
        Ok(replica)
    }

    /// Makes this server a replica of `primary`, which must run with
    /// `log_bin` and another `server_id` than this one: a replication user
    /// on the primary, `CHANGE MASTER TO` it over TCP with GTID positions,
    /// and `START SLAVE`. Returns at once; the replica catches up on its own.
    pub fn replicate_from(&self, primary: &MariaDbServer) -> Result<(), HarnessError> {
        primary.sql(
            "CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-pw';
             GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';",
        )?;
        self.sql(&format!(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {},
               MASTER_USER = 'repl', MASTER_PASSWORD = 'repl-pw',
               MASTER_USE_GTID = slave_pos;
             START SLAVE;",
            primary.port()
        ))
        .map(drop)
    }

    /// Runs `CREATE DATABASE` for `name` (ASCII letters, digits and `_` only).
    pub fn create_database(&self, name: &str) -> Result<(), HarnessError> {
        check_database_name(SERVER, name)?;
        self.sql(&format!("CREATE DATABASE `{name}`")).map(drop)
    }

    fn write_config(&self, port: u16) -> Result<(), HarnessError> {
        let d = self.dir.path();
        let mut conf = String::from("# generated by perfwatch-testbench\n[mariadbd]\n");
        conf.push_str(&format!("datadir = {}\n", self.data_dir.display()));
        conf.push_str(&format!("socket = {}\n", self.socket_path().display()));
        conf.push_str(&format!("pid-file = {}\n", d.join("mariadb.pid").display()));
        conf.push_str(&format!("log-error = {}\n", self.log_path().display()));
        conf.push_str(&format!("port = {port}\n"));
        // Servers started in parallel must not share /tmp: mariadbd removes
        // `#sql*` temp files it finds there at start, including another
        // instance's, which randomly breaks that instance's install step.
        let tmp = d.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|source| HarnessError::Io {
            server: SERVER,
            context: format!("creating {}", tmp.display()),
            source,
        })?;
        conf.push_str(&format!("tmpdir = {}\n", tmp.display()));
        if is_root() {
            conf.push_str("user = root\n");
        }
        for (key, value) in DEFAULTS
            .iter()
            .map(|(k, v)| (*k, *v))
            .chain(self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            if value.is_empty() {
                conf.push_str(&format!("{key}\n"));
            } else {
                conf.push_str(&format!("{key} = {value}\n"));
            }
        }
        write_file(SERVER, &self.config_path(), &conf)
    }

    /// Writes my.cnf for `port`, spawns `mariadbd`, waits for ping.
    fn launch(&mut self, port: u16) -> Result<(), HarnessError> {
        self.write_config(port)?;
        let mut cmd = Command::new(&self.mariadbd);
        // --defaults-file must come first.
        cmd.arg(flag_path("--defaults-file=", &self.config_path()))
            .current_dir(self.dir.path());
        self.process.spawn(cmd, port)?;
        let admin = self.admin.clone();
        let socket = self.socket_path();
        self.process.wait_ready(START_TIMEOUT, |_| {
            socket.exists() && admin_ping(&admin, &socket, 2)
        })
    }
}

fn admin_ping(admin: &Path, socket: &Path, timeout_secs: u32) -> bool {
    let mut cmd = Command::new(admin);
    cmd.arg("--no-defaults")
        .arg(flag_path("--socket=", socket))
        .args(["--user=root", "--silent"])
        .arg(format!("--connect-timeout={timeout_secs}"))
        .arg("ping");
    run_command(
        SERVER,
        cmd,
        Duration::from_secs(u64::from(timeout_secs) + 5),
    )
    .is_ok()
}
