//! Throwaway PostgreSQL clusters.
//!
//! Tests start their own cluster (`initdb` + `postgres` from Debian's
//! `postgresql` package, found on `PATH` or in the newest
//! `/usr/lib/postgresql/<major>/bin`) on a free 127.0.0.1 port with its own
//! temp dir, never the machine's own cluster on 5432.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (CI does),
//! `initdb` and `postgres` run as the `postgres` system user (created by the
//! Debian package): the temp dir is made world-traversable (0755) and the data
//! dir is chowned to that user. Otherwise they run as the current user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use std::os::unix::process::CommandExt;

use tempfile::TempDir;

use super::{
    COMMAND_TIMEOUT, HarnessError, START_TIMEOUT, ServerProcess, check_database_name,
    check_setting, chown, common_server_methods, find_binary, is_root, lookup_user, make_temp_dir,
    run_command, set_mode, start_on_free_port, write_file,
};

const SERVER: &str = "postgres";

/// Settings the harness owns (`port` moves with retries and restarts; the
/// others would break the harness's own paths).
const RESERVED: &[&str] = &[
    "port",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
];

/// Timeout for `psql` helper calls.
const PSQL_TIMEOUT: Duration = Duration::from_secs(60);

/// A PostgreSQL cluster owned by the test: own temp dir, own port, trust
/// authentication, killed and deleted on drop.
///
/// ```no_run
/// use perfwatch_testbench::PostgresServer;
/// let pg = PostgresServer::start(&[
///     ("shared_preload_libraries", "pg_stat_statements"),
///     ("log_min_duration_statement", "0"),
/// ])?;
/// assert_eq!(pg.psql("select 1")?.trim(), "1");
/// println!("{}", pg.dsn()); // postgres://postgres@127.0.0.1:<port>/postgres
/// # Ok::<(), perfwatch_testbench::HarnessError>(())
/// ```
#[derive(Debug)]
pub struct PostgresServer {
    // Declared before `dir`: the process is killed before the dir is removed.
    process: ServerProcess,
    postgres: PathBuf,
    psql: PathBuf,
    pg_isready: PathBuf,
    /// uid/gid to run the server as (when the tests run as root).
    run_as: Option<(u32, u32)>,
    data_dir: PathBuf,
    log_dir: PathBuf,
    dir: TempDir,
}

impl PostgresServer {
    /// Runs `initdb` (superuser `postgres`, trust auth, UTF8, C locale) and
    /// starts `postgres`, waiting (up to [`START_TIMEOUT`]) until `pg_isready`
    /// succeeds.
    ///
    /// Always set: `listen_addresses = '127.0.0.1'`, the port (on the command
    /// line), `unix_socket_directories = '<data dir>'`, `fsync = off`,
    /// `synchronous_commit = off`, `full_page_writes = off`,
    /// `max_connections = 50`. `settings` follow in an included
    /// `perfwatch.conf` and override those (e.g. `("max_connections", "20")`),
    /// except `port`, `data_directory`, `config_file`, `hba_file` and
    /// `ident_file`. Values are quoted for you:
    /// `("log_destination", "stderr,csvlog,jsonlog")`; an already
    /// single-quoted value is kept as is.
    pub fn start(settings: &[(&str, &str)]) -> Result<Self, HarnessError> {
        let bins = Binaries::find()?;
        for (key, value) in settings {
            check_setting(SERVER, key, value, RESERVED)?;
        }
        let place = new_data_dir()?;
        let (run_as, dir, data_dir) = (place.run_as, place.dir.path(), &place.data_dir);

        let mut init = Command::new(&bins.initdb);
        init.arg("-D")
            .arg(data_dir)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .current_dir(dir)
            .env("LC_ALL", "C");
        if let Some((uid, gid)) = run_as {
            init.uid(uid).gid(gid);
        }
        run_command(SERVER, init, COMMAND_TIMEOUT)?;
        // The include is appended once, here: a replica's base backup copies
        // postgresql.conf with it.
        let main_conf = data_dir.join("postgresql.conf");
        let mut main = std::fs::read_to_string(&main_conf).map_err(super::io_error(
            SERVER,
            format!("reading {}", main_conf.display()),
        ))?;
        main.push_str("\ninclude 'perfwatch.conf'\n");
        write_file(SERVER, &main_conf, &main)?;
        Self::configure_and_launch(bins, place, settings)
    }

    /// Starts a streaming replica of this (running) cluster: `pg_basebackup
    /// -R` over TCP (a fast checkpoint, the WAL streamed) with a physical
    /// replication slot named `slot` created on this cluster, then
    /// `postgres` on its own free port with `settings` (as
    /// [`start`](Self::start) takes them). The replica follows this cluster
    /// until either is stopped; the slot stays on this cluster (inactive
    /// while the replica is down).
    pub fn start_replica(
        &self,
        slot: &str,
        settings: &[(&str, &str)],
    ) -> Result<PostgresServer, HarnessError> {
        check_database_name(SERVER, slot)?;
        for (key, value) in settings {
            check_setting(SERVER, key, value, RESERVED)?;
        }
        let bins = Binaries::find()?;
        let place = new_data_dir()?;
        let mut backup = Command::new(&bins.pg_basebackup);
        backup
            .arg("-D")
            .arg(&place.data_dir)
            .args(["-h", "127.0.0.1", "-U", "postgres", "-R", "-X", "stream"])
            .args(["-C", "-S", slot, "--no-sync", "--checkpoint=fast"])
            .arg("-p")
            .arg(self.port().to_string())
            .current_dir(place.dir.path())
            .env("LC_ALL", "C")
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE");
        if let Some((uid, gid)) = place.run_as {
            backup.uid(uid).gid(gid);
        }
        run_command(SERVER, backup, COMMAND_TIMEOUT)?;
        Self::configure_and_launch(bins, place, settings)
    }

    /// Writes `perfwatch.conf` (the harness's settings, then `settings`;
    /// postgresql.conf includes it) into a ready data dir and starts the
    /// server on a free port.
    fn configure_and_launch(
        bins: Binaries,
        place: NewDataDir,
        settings: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let NewDataDir {
            run_as,
            dir,
            data_dir,
        } = place;
        let log_dir = settings
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case("log_directory"))
            .map(|(_, v)| data_dir.join(v.trim_matches('\''))) // join keeps absolute paths
            .unwrap_or_else(|| data_dir.join("log"));

        let mut conf = String::from("# generated by perfwatch-testbench\n");
        conf.push_str("listen_addresses = '127.0.0.1'\n");
        conf.push_str(&format!(
            "unix_socket_directories = {}\n",
            quote(&data_dir.to_string_lossy())
        ));
        conf.push_str("fsync = off\nfull_page_writes = off\n");
        conf.push_str("max_connections = 50\n");
        for (key, value) in settings {
            conf.push_str(&format!("{key} = {}\n", quote(value)));
        }
        let conf_path = data_dir.join("perfwatch.conf");
        write_file(SERVER, &conf_path, &conf)?;
        if let Some((uid, gid)) = run_as {
            chown(SERVER, &conf_path, uid, gid)?;
        }

        let mut process = ServerProcess::new(SERVER, libc::SIGINT, dir.path().join("postgres.log"));
        process.log_dirs.push(log_dir.clone());
        let mut server = PostgresServer {
            process,
            postgres: bins.postgres,
            psql: bins.psql,
            pg_isready: bins.pg_isready,
            run_as,
            data_dir,
            log_dir,
            dir,
        };
        start_on_free_port(SERVER, |port| server.launch(port))?;
        Ok(server)
    }

    common_server_methods!(
        "postgres",
        /// Starts the cluster again on the same port and data dir (killing it
        /// first if it is still running) and waits until `pg_isready` succeeds.
        /// Data survives (after crash recovery if it was killed).
        restart
    );

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn dsn(&self) -> String {
        self.dsn_for("postgres")
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn dsn_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port())
    }

    /// The data directory (`PGDATA`), also holding the Unix socket.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the logging collector writes (`log_directory`, default
    /// `<data dir>/log`); only used with `logging_collector = on`.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The server's stderr (everything, unless `logging_collector = on`).
    pub fn log_path(&self) -> &Path {
        self.console_log_path()
    }

    /// The `psql` binary used by the helpers (same major version as the
    /// server when available).
    pub fn psql_path(&self) -> &Path {
        &self.psql
    }

    /// Whether `pg_isready` reports the server as accepting connections
    /// (2 s timeout).
    pub fn is_ready(&self) -> bool {
        pg_isready(&self.pg_isready, self.port(), 2)
    }

    /// Runs `sql` in database `postgres` with `psql` over TCP (stop on first
    /// error) and returns the rows unaligned and tuples-only: one row per
    /// line, columns separated by `|`. `psql("select 1")` returns `"1\n"`.
    pub fn psql(&self, sql: &str) -> Result<String, HarnessError> {
        self.psql_in("postgres", sql)
    }

    /// Like [`psql`](Self::psql) in `database`.
    pub fn psql_in(&self, database: &str, sql: &str) -> Result<String, HarnessError> {
        let cmd = psql_command(
            &self.psql,
            self.port(),
            "postgres",
            database,
            sql,
            self.dir.path(),
        );
        run_command(SERVER, cmd, PSQL_TIMEOUT)
    }

    /// `CREATE DATABASE "<name>"` (name: ASCII letters, digits, `_`).
    pub fn create_database(&self, name: &str) -> Result<(), HarnessError> {
        check_database_name(SERVER, name)?;
        self.psql(&format!("CREATE DATABASE \"{name}\"")).map(drop)
    }

    /// Spawns `postgres -D <data> -p <port>`, waits for `pg_isready`.
    fn launch(&mut self, port: u16) -> Result<(), HarnessError> {
        let mut cmd = Command::new(&self.postgres);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .arg("-p")
            .arg(port.to_string())
            .current_dir(self.dir.path())
            .env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        self.process.spawn(cmd, port)?;
        let pg_isready_bin = self.pg_isready.clone();
        self.process.wait_ready(START_TIMEOUT, |port| {
            super::port_accepts(port, Duration::from_millis(200))
                && pg_isready(&pg_isready_bin, port, 2)
        })
    }
}

/// The server binaries of one major version.
struct Binaries {
    postgres: PathBuf,
    initdb: PathBuf,
    pg_basebackup: PathBuf,
    psql: PathBuf,
    pg_isready: PathBuf,
}

impl Binaries {
    /// `postgres`, and the tools of the same major version when they sit
    /// next to it (else the ones on `PATH`).
    fn find() -> Result<Self, HarnessError> {
        let postgres = find_binary("postgres", "postgresql")?;
        let dir = postgres
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let sibling = |name: &str, package: &str| -> Result<PathBuf, HarnessError> {
            match dir.as_ref().map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(p) => Ok(p),
                None => find_binary(name, package),
            }
        };
        Ok(Self {
            initdb: sibling("initdb", "postgresql")?,
            pg_basebackup: sibling("pg_basebackup", "postgresql-client")?,
            psql: sibling("psql", "postgresql-client")?,
            pg_isready: sibling("pg_isready", "postgresql-client")?,
            postgres,
        })
    }
}

/// A new cluster's place: a temp dir with an empty `data` dir (mode 0700)
/// in it, owned by the user the server runs as.
struct NewDataDir {
    /// uid/gid the server runs as (when the tests run as root).
    run_as: Option<(u32, u32)>,
    /// The temp dir, removed on drop.
    dir: TempDir,
    /// `<dir>/data`.
    data_dir: PathBuf,
}

/// Makes a [`NewDataDir`].
fn new_data_dir() -> Result<NewDataDir, HarnessError> {
    let run_as = run_as_postgres(SERVER)?;
    let dir = make_temp_dir("postgres", run_as.is_some())?;
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).map_err(super::io_error(
        SERVER,
        format!("creating {}", data_dir.display()),
    ))?;
    set_mode(SERVER, &data_dir, 0o700)?;
    if let Some((uid, gid)) = run_as {
        chown(SERVER, &data_dir, uid, gid)?;
    }
    Ok(NewDataDir {
        run_as,
        dir,
        data_dir,
    })
}

fn pg_isready(binary: &Path, port: u16, timeout_secs: u32) -> bool {
    let mut cmd = Command::new(binary);
    cmd.args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
        .arg("-p")
        .arg(port.to_string())
        .arg("-t")
        .arg(timeout_secs.to_string());
    run_command(
        SERVER,
        cmd,
        Duration::from_secs(u64::from(timeout_secs) + 5),
    )
    .is_ok()
}

/// Quotes a value for postgresql.conf, keeping an already quoted one.
fn quote(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    }
}

/// A quiet, unaligned `psql -c <sql>` as `user` on 127.0.0.1:`port`, run in
/// `dir`, ignoring the caller's `PGPASSWORD`/`PGSERVICE`/`PGOPTIONS` (shared
/// with [`PgbouncerServer`](super::PgbouncerServer)).
pub(super) fn psql_command(
    psql: &Path,
    port: u16,
    user: &str,
    database: &str,
    sql: &str,
    dir: &Path,
) -> Command {
    let mut cmd = Command::new(psql);
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-U", user])
        .arg("-p")
        .arg(port.to_string())
        .arg("-d")
        .arg(database)
        .arg("-c")
        .arg(sql)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS")
        .current_dir(dir);
    cmd
}

/// When the tests run as root: the uid and gid of the `postgres` user, who
/// runs the server (PostgreSQL and PgBouncer refuse root); `None` otherwise.
/// Files such servers must read (e.g. TLS keys) belong to that user.
pub fn run_as_postgres(server: &'static str) -> Result<Option<(u32, u32)>, HarnessError> {
    if !is_root() {
        return Ok(None);
    }
    lookup_user("postgres")
        .map(Some)
        .ok_or_else(|| HarnessError::MissingUser {
            server,
            user: "postgres".into(),
            package: "postgresql".into(),
        })
}
