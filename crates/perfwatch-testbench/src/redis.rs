//! Throwaway `redis-server` instances.
//!
//! Tests start their own Redis from the binary installed by Debian's
//! `redis-server` package, on a free 127.0.0.1 port with its own temp dir,
//! never the machine's own Redis on 6379. Persistence is off (`save ""`,
//! `appendonly no`), so a restart comes back empty.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::prometheus::percent_encode;
use super::{
    HarnessError, START_TIMEOUT, ServerProcess, check_setting, common_server_methods, find_binary,
    make_temp_dir, start_on_free_port, write_file,
};

const SERVER: &str = "redis-server";

/// Settings the harness owns: overriding them would break port tracking,
/// logging or process supervision.
const RESERVED: &[&str] = &[
    "port",
    "dir",
    "logfile",
    "daemonize",
    "include",
    "unixsocket",
    "supervised",
];

/// Timeout for the raw TCP requests ([`RedisServer::ping`],
/// [`RedisServer::command`]).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A `redis-server` owned by the test: own temp dir, own port, killed and
/// deleted on drop.
///
/// ```no_run
/// use perfwatch_testbench::RedisServer;
/// let redis = RedisServer::start(&[("maxmemory", "2mb"), ("maxmemory-policy", "allkeys-lru")])?;
/// assert!(redis.ping());
/// println!("{}", redis.url()); // redis://127.0.0.1:<port>/0
/// # Ok::<(), perfwatch_testbench::HarnessError>(())
/// ```
#[derive(Debug)]
pub struct RedisServer {
    // Declared before `dir`: the process is killed before the dir is removed.
    process: ServerProcess,
    binary: PathBuf,
    settings: Vec<(String, String)>,
    password: Option<String>,
    /// TLS only (`port 0`, `tls-port`): the directory of a
    /// [`crate::pki::TestPki`].
    tls: Option<PathBuf>,
    dir: TempDir,
}

impl RedisServer {
    /// Starts `redis-server` and waits (up to [`START_TIMEOUT`]) until it
    /// answers `PING` with `+PONG`.
    ///
    /// Always set: `port <free port>`, `bind 127.0.0.1`, `dir <temp dir>`,
    /// `logfile <temp dir>/redis.log`, `daemonize no`, `save ""`,
    /// `appendonly no`. `settings` are appended to the config file verbatim
    /// as `name value` lines (so multi-word values such as
    /// `("client-output-buffer-limit", "normal 0 0 0")` work; an empty value
    /// is written as `""`), and may override `save`, `appendonly` and `bind`
    /// but not `port`, `dir`, `logfile`, `daemonize`, `include`,
    /// `unixsocket` or `supervised`.
    ///
    /// With a `requirepass` setting, readiness checks, [`command`](Self::command)
    /// and [`url`](Self::url) use that password. A server that requires
    /// authentication we don't know (ACL) counts as ready when it answers
    /// `-NOAUTH`.
    pub fn start(settings: &[(&str, &str)]) -> Result<Self, HarnessError> {
        Self::start_with(settings, None)
    }

    /// Starts a replica of this (running, plaintext) server: `replicaof`
    /// it, then `settings`. Returns once it runs; it syncs on its own.
    pub fn start_replica(&self, settings: &[(&str, &str)]) -> Result<RedisServer, HarnessError> {
        let replicaof = format!("127.0.0.1 {}", self.port());
        let mut all = vec![("replicaof", replicaof.as_str())];
        all.extend_from_slice(settings);
        Self::start(&all)
    }

    /// Starts a TLS-only server (`port 0`, `tls-port <free port>`,
    /// `tls-auth-clients yes`) with the certificates of the
    /// [`crate::pki::TestPki`] in `pki_dir`: `server.crt`/`server.key`, and
    /// clients must present a certificate signed by `ca.crt`. Ready when the
    /// port accepts connections; [`ping`](Self::ping) and
    /// [`command`](Self::command) speak plaintext and do not work on it.
    pub fn start_tls(pki_dir: &std::path::Path) -> Result<Self, HarnessError> {
        Self::start_with(&[], Some(pki_dir.to_owned()))
    }

    fn start_with(settings: &[(&str, &str)], tls: Option<PathBuf>) -> Result<Self, HarnessError> {
        let binary = find_binary("redis-server", "redis-server")?;
        for (key, value) in settings {
            check_setting(SERVER, key, value, RESERVED)?;
        }
        let password = settings
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case("requirepass"))
            .map(|(_, v)| unquote(v).to_owned())
            .filter(|p| !p.is_empty());
        let dir = make_temp_dir("redis", false)?;
        let mut process =
            ServerProcess::new(SERVER, libc::SIGTERM, dir.path().join("redis.stderr.log"));
        process.log_files.push(dir.path().join("redis.log"));
        let mut server = RedisServer {
            process,
            binary,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            password,
            tls,
            dir,
        };
        start_on_free_port(SERVER, |port| server.launch(port))?;
        Ok(server)
    }

    common_server_methods!(
        "redis-server",
        /// Starts the server again on the same port and dir (killing it first if
        /// it is still running) and waits until it answers `PING`. The data set
        /// is empty afterwards: persistence is off.
        restart
    );

    /// `redis://127.0.0.1:<port>/0`, or `redis://:<password>@127.0.0.1:<port>/0`
    /// with a `requirepass` setting.
    pub fn url(&self) -> String {
        if self.tls.is_some() {
            // The test certificate names localhost.
            return format!("rediss://localhost:{}/0", self.port());
        }
        match &self.password {
            Some(pw) => format!(
                "redis://:{}@127.0.0.1:{}/0",
                percent_encode(pw),
                self.port()
            ),
            None => format!("redis://127.0.0.1:{}/0", self.port()),
        }
    }

    /// The generated `redis.conf`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("redis.conf")
    }

    /// The server's own log (`logfile`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Whether the server answers a raw `PING` with `+PONG` within 5 s
    /// (authenticating first with the `requirepass` password, if any).
    pub fn ping(&self) -> bool {
        ping_port(self.port(), self.password.as_deref(), REQUEST_TIMEOUT) == Some(true)
    }

    /// Sends one command over a new raw TCP connection (after `AUTH` with the
    /// `requirepass` password, if any) and returns the reply as text: simple
    /// strings, integers and bulk strings as is, nil as `""`, arrays as their
    /// elements joined by newlines. An error reply is an
    /// [`HarnessError::BadReply`].
    ///
    /// For test setup without the async client: `redis.command(&["SET", "k", "v"])`.
    pub fn command(&self, args: &[&str]) -> Result<String, HarnessError> {
        command_on(SERVER, self.port(), self.password.as_deref(), args)
    }

    /// The value of the `field:value` line of `INFO section` (trimmed),
    /// `None` when the reply has no such line.
    pub fn info_field(&self, section: &str, field: &str) -> Result<Option<String>, HarnessError> {
        let info = self.command(&["INFO", section])?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .map(|v| v.trim().to_owned()))
    }

    /// Writes the config for `port`, spawns, waits for `PING`.
    fn launch(&mut self, port: u16) -> Result<(), HarnessError> {
        let dir = self.dir.path();
        let mut conf = String::from("# generated by perfwatch-testbench\n");
        match &self.tls {
            None => conf.push_str(&format!("port {port}\n")),
            Some(pki) => {
                conf.push_str("port 0\n");
                conf.push_str(&format!("tls-port {port}\n"));
                for (key, file) in [
                    ("tls-cert-file", "server.crt"),
                    ("tls-key-file", "server.key"),
                    ("tls-ca-cert-file", "ca.crt"),
                ] {
                    conf.push_str(&format!(
                        "{key} {}\n",
                        quote(&pki.join(file).to_string_lossy())
                    ));
                }
                conf.push_str("tls-auth-clients yes\n");
            }
        }
        conf.push_str("bind 127.0.0.1\n");
        conf.push_str(&format!("dir {}\n", quote(&dir.to_string_lossy())));
        conf.push_str(&format!(
            "logfile {}\n",
            quote(&self.log_path().to_string_lossy())
        ));
        conf.push_str("daemonize no\n");
        conf.push_str("save \"\"\n");
        conf.push_str("appendonly no\n");
        for (key, value) in &self.settings {
            let value = if value.is_empty() {
                "\"\""
            } else {
                value.as_str()
            };
            conf.push_str(&format!("{key} {value}\n"));
        }
        write_file(SERVER, &self.config_path(), &conf)?;

        let mut cmd = Command::new(&self.binary);
        cmd.arg(self.config_path()).current_dir(dir);
        self.process.spawn(cmd, port)?;
        let password = self.password.clone();
        let tls = self.tls.is_some();
        self.process.wait_ready(START_TIMEOUT, |port| {
            if tls {
                return TcpStream::connect_timeout(
                    &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    Duration::from_millis(500),
                )
                .is_ok();
            }
            // Ready: +PONG, or -NOAUTH from a server guarded by ACLs we
            // don't know.
            ping_port(port, password.as_deref(), Duration::from_millis(500)).is_some()
        })
    }
}

/// One command on 127.0.0.1:`port` over a new raw connection (after `AUTH`
/// with `password`, if any): the reply as [`RedisServer::command`] returns
/// it. `server` names the process in errors.
pub(crate) fn command_on(
    server: &'static str,
    port: u16,
    password: Option<&str>,
    args: &[&str],
) -> Result<String, HarnessError> {
    let request = args.join(" ");
    let bad = |reply: String| HarnessError::BadReply {
        server,
        request: shorten(&request),
        reply,
    };
    let mut conn = Conn::open(port, REQUEST_TIMEOUT).map_err(|e| bad(e.to_string()))?;
    if let Some(pw) = password {
        conn.call(&["AUTH", pw])
            .map_err(|e| bad(e.to_string()))?
            .map_err(bad)?;
    }
    conn.call(args)
        .map_err(|e| bad(e.to_string()))?
        .map_err(bad)
}

/// `Some(true)` for `+PONG`, `Some(false)` for `-NOAUTH` (up, but needs
/// credentials we lack), `None` for anything else (down, loading, ...).
pub(crate) fn ping_port(port: u16, password: Option<&str>, timeout: Duration) -> Option<bool> {
    let mut conn = Conn::open(port, timeout).ok()?;
    if let Some(pw) = password {
        conn.call(&["AUTH", pw]).ok()?.ok()?;
    }
    conn.stream.write_all(b"PING\r\n").ok()?;
    let mut line = String::new();
    conn.reader.read_line(&mut line).ok()?;
    if line.starts_with("+PONG") {
        Some(true)
    } else if line.starts_with("-NOAUTH") {
        Some(false)
    } else {
        None
    }
}

/// A raw RESP connection.
struct Conn {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(port: u16, timeout: Duration) -> std::io::Result<Self> {
        let stream =
            TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Conn { stream, reader })
    }

    /// Sends a command; the outer error is I/O or protocol trouble, the inner
    /// one an error reply.
    fn call(&mut self, args: &[&str]) -> std::io::Result<Result<String, String>> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            req.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            req.extend_from_slice(arg.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&req)?;
        read_reply(&mut self.reader)
    }
}

fn read_reply(r: &mut impl BufRead) -> std::io::Result<Result<String, String>> {
    let protocol =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(protocol("connection closed"));
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(Ok(rest.to_owned())),
        "-" => Ok(Err(rest.to_owned())),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| protocol("bad bulk length"))?;
            if len < 0 {
                return Ok(Ok(String::new()));
            }
            let mut buf = vec![0; len as usize + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(len as usize);
            Ok(Ok(String::from_utf8_lossy(&buf).into_owned()))
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| protocol("bad array length"))?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                match read_reply(r)? {
                    Ok(s) => items.push(s),
                    Err(e) => return Ok(Err(e)),
                }
            }
            Ok(Ok(items.join("\n")))
        }
        _ => Err(protocol(&format!(
            "unexpected reply line `{}`",
            shorten(line)
        ))),
    }
}

/// Quotes a value for redis.conf.
pub(crate) fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Strips one level of `"..."` or `'...'` quoting.
fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn shorten(s: &str) -> String {
    super::shorten(s, 120)
}
