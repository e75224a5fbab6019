//! Serving HTTP: plain or TLS (with optional client certificates) and basic
//! auth, configured by `--web.config.file` in the Prometheus exporter-toolkit
//! format, so the web config of node_exporter et al. works unchanged:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt
//!   key_file: server.key
//!   client_ca_file: ca.crt            # optional
//!   client_auth_type: RequireAndVerifyClientCert
//!   min_version: TLS12
//! basic_auth_users:
//!   prometheus: $2y$10$...            # bcrypt hashes only
//! ```
//!
//! Hardening applied whatever the config: bounded header size, a header read
//! timeout, a request timeout and a body limit (see [`crate::http::app`]);
//! connections that send no complete request head within 10 s are closed,
//! and open connections are capped below the open-file limit, shedding the
//! oldest that never sent a request (see [`serve`]); basic-auth checks run
//! bcrypt a few at a time off the async workers, after a cache of successes
//! (see [`BasicAuth`]).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd as _, RawFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::local_file::{
    LocalFileError, MAX_PEM_OR_WEB_CONFIG_BYTES, read_regular_file, read_regular_text,
};
use subtle::ConstantTimeEq;

/// Errors in the web config file; messages name the file and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("web config \"{path}\": cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: LocalFileError,
    },
    /// The YAML is malformed or has unknown keys.
    #[error("web config \"{path}\": {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is not acceptable.
    #[error("web config \"{path}\": {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key path.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The exporter-toolkit web config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// TLS settings; absent = plain HTTP.
    pub tls_server_config: Option<TlsServerConfig>,
    /// `user: bcrypt hash`; empty = no authentication.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
}

/// `tls_server_config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// PEM CA bundle for client certificates.
    pub client_ca_file: Option<PathBuf>,
    /// `NoClientCert` (default), `RequestClientCert`, `RequireAnyClientCert`,
    /// `VerifyClientCertIfGiven`, `RequireAndVerifyClientCert`.
    pub client_auth_type: Option<String>,
    /// `TLS12` (default) or `TLS13`.
    pub min_version: Option<String>,
}

impl WebConfig {
    /// Loads and checks a web config file.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = read_regular_text(path, MAX_PEM_OR_WEB_CONFIG_BYTES).map_err(|source| {
            WebConfigError::Read {
                path: path.to_owned(),
                source,
            }
        })?;
        let config: WebConfig =
            serde_yaml_ng::from_str(&text).map_err(|e| WebConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let invalid = |key: String, message: String| WebConfigError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        for (user, hash) in &config.basic_auth_users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                // Never echo the value: it might be a plaintext password.
                return Err(invalid(
                    format!("basic_auth_users.{user}"),
                    "is not a bcrypt hash (plaintext passwords are not accepted; create one with `htpasswd -nBC 10 \"\" | tr -d ':'`)".into(),
                ));
            }
        }
        if let Some(tls) = &config.tls_server_config {
            // Build once now so that every problem shows at start-up.
            tls.rustls_config(path)?;
        }
        Ok(config)
    }
}

impl TlsServerConfig {
    /// The rustls server config (ring provider).
    pub fn rustls_config(&self, file: &Path) -> Result<rustls::ServerConfig, WebConfigError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let invalid = |key: &str, message: String| WebConfigError::Invalid {
            path: file.to_owned(),
            key: format!("tls_server_config.{key}"),
            message,
        };
        // Bounded reads (a FIFO or /dev/zero named by mistake must not hang
        // or fill the memory), then parsed from memory.
        let pem = |key: &str, path: &Path| {
            read_regular_file(path, MAX_PEM_OR_WEB_CONFIG_BYTES)
                .map_err(|e| invalid(key, format!("\"{}\": {e}", path.display())))
        };
        let cert_pem = pem("cert_file", &self.cert_file)?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                invalid(
                    "cert_file",
                    format!("\"{}\": {e}", self.cert_file.display()),
                )
            })?;
        if certs.is_empty() {
            return Err(invalid(
                "cert_file",
                format!("\"{}\" holds no certificate", self.cert_file.display()),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&pem("key_file", &self.key_file)?)
            .map_err(|e| invalid("key_file", format!("\"{}\": {e}", self.key_file.display())))?;
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version.as_deref() {
            None | Some("TLS12") => &[&rustls::version::TLS13, &rustls::version::TLS12],
            Some("TLS13") => &[&rustls::version::TLS13],
            Some(other) => {
                return Err(invalid(
                    "min_version",
                    format!("\"{other}\" is not supported (TLS12 or TLS13)"),
                ));
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| invalid("min_version", e.to_string()))?;
        let auth = self.client_auth_type.as_deref().unwrap_or("NoClientCert");
        let roots = || -> Result<Arc<rustls::RootCertStore>, WebConfigError> {
            let Some(ca) = &self.client_ca_file else {
                return Err(invalid(
                    "client_ca_file",
                    format!("is required with client_auth_type \"{auth}\""),
                ));
            };
            let mut store = rustls::RootCertStore::empty();
            let ca_pem = pem("client_ca_file", ca)?;
            for cert in CertificateDer::pem_slice_iter(&ca_pem) {
                let cert = cert
                    .map_err(|e| invalid("client_ca_file", format!("\"{}\": {e}", ca.display())))?;
                store
                    .add(cert)
                    .map_err(|e| invalid("client_ca_file", format!("\"{}\": {e}", ca.display())))?;
            }
            Ok(Arc::new(store))
        };
        let verifier = |optional: bool| -> Result<_, WebConfigError> {
            let b = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots()?,
                provider.clone(),
            );
            let b = if optional {
                b.allow_unauthenticated()
            } else {
                b
            };
            b.build()
                .map_err(|e| invalid("client_ca_file", e.to_string()))
        };
        let builder = match auth {
            "NoClientCert" | "RequestClientCert" => builder.with_no_client_auth(),
            "VerifyClientCertIfGiven" => builder.with_client_cert_verifier(verifier(true)?),
            "RequireAnyClientCert" | "RequireAndVerifyClientCert" => {
                builder.with_client_cert_verifier(verifier(false)?)
            }
            other => {
                return Err(invalid(
                    "client_auth_type",
                    format!("\"{other}\" is not a known client_auth_type"),
                ));
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| invalid("key_file", e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The basic-auth check: bcrypt verification with a small cache of recent
/// successes (bcrypt is deliberately slow; Prometheus scrapes every few
/// seconds), keyed by a SHA-256 of the credentials so no password is held.
///
/// Served requests go through [`BasicAuth::admit`]: a cached success answers
/// on the async path at once; bcrypt runs on blocking threads, at most
/// [`BasicAuth::new`]'s `permits` at a time with a short bounded queue, so a
/// flood of wrong passwords can neither take every CPU nor make an
/// authorized (cached) scrape wait behind it.
#[derive(Clone)]
pub struct BasicAuth {
    users: Arc<BTreeMap<String, String>>,
    /// What an unknown user's password is checked against: a hash at the
    /// highest cost among the users, so that an unknown name costs as much
    /// time as a known one and timing tells no user name.
    dummy_hash: Arc<str>,
    ok_cache: Arc<Mutex<HashMap<[u8; 32], ()>>>,
    /// Bcrypt checks running at once.
    running: Arc<tokio::sync::Semaphore>,
    /// Bcrypt checks running or waiting; none left = answer [`Verdict::Busy`].
    admitted: Arc<tokio::sync::Semaphore>,
}

/// The password of [`BasicAuth`]'s dummy hash; no user can log in with it
/// (an unknown user is refused whatever the bcrypt result).
const DUMMY_PASSWORD: &str = "perfwatch: no such user";

/// Bcrypt checks that may wait for a running one to finish before new ones
/// are answered [`Verdict::Busy`]: the wait stays under a few bcrypt runs.
const MAX_WAITING_CHECKS: usize = 8;

/// What [`BasicAuth::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid credentials.
    Allowed,
    /// Missing, malformed or wrong credentials: 401.
    Denied,
    /// Too many password checks under way to start one more: 429.
    Busy,
}

/// The user, password and the cache key of one `Authorization` header.
struct Credentials {
    user: String,
    password: String,
    digest: [u8; 32],
}

impl Credentials {
    fn parse(authorization: Option<&HeaderValue>) -> Option<Self> {
        let (user, password) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())))?;
        let digest = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        Some(Self {
            user,
            password,
            digest,
        })
    }
}

impl BasicAuth {
    /// An authenticator over `user → bcrypt hash`. Hashes the dummy password
    /// once, at the highest cost among the users (one bcrypt run).
    pub fn new(users: BTreeMap<String, String>) -> Self {
        let cost = users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let dummy_hash = bcrypt::hash(DUMMY_PASSWORD, cost)
            .or_else(|_| bcrypt::hash(DUMMY_PASSWORD, bcrypt::DEFAULT_COST))
            .expect("bcrypt hashes at its default cost");
        // Half the CPUs (1 to 4): the other half keeps serving /metrics and
        // polling while wrong passwords are checked.
        let permits = std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 2)
            .clamp(1, 4);
        Self {
            users: Arc::new(users),
            dummy_hash: dummy_hash.into(),
            ok_cache: Arc::new(Mutex::new(HashMap::new())),
            running: Arc::new(tokio::sync::Semaphore::new(permits)),
            admitted: Arc::new(tokio::sync::Semaphore::new(permits + MAX_WAITING_CHECKS)),
        }
    }

    /// Whether `Authorization: Basic …` carries valid credentials; blocks
    /// for the bcrypt run when they are not cached.
    pub fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        Credentials::parse(authorization).is_some_and(|c| self.cached(&c) || self.verify(&c))
    }

    /// [`check`](Self::check) for a request being served: cached successes
    /// at once; bcrypt on a blocking thread when one of the few check slots
    /// is free, else [`Verdict::Busy`] at once.
    pub async fn admit(&self, authorization: Option<&HeaderValue>) -> Verdict {
        let Some(credentials) = Credentials::parse(authorization) else {
            return Verdict::Denied;
        };
        if self.cached(&credentials) {
            return Verdict::Allowed;
        }
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            return Verdict::Busy;
        };
        let Ok(running) = self.running.clone().acquire_owned().await else {
            return Verdict::Busy;
        };
        let auth = self.clone();
        // The permits go with the bcrypt run: a client that hangs up does not
        // free its slot before the CPU work is done.
        let ok = tokio::task::spawn_blocking(move || {
            let _permits = (admitted, running);
            auth.verify(&credentials)
        })
        .await
        .unwrap_or(false);
        if ok {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }

    fn cached(&self, credentials: &Credentials) -> bool {
        let cache = self.ok_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .keys()
            .any(|k| bool::from(k.ct_eq(&credentials.digest)))
    }

    /// The bcrypt check (slow on purpose); remembers a success.
    fn verify(&self, credentials: &Credentials) -> bool {
        let (hash, known) = match self.users.get(&credentials.user) {
            Some(h) => (h.as_str(), true),
            None => (&*self.dummy_hash, false),
        };
        let ok = bcrypt::verify(&credentials.password, hash).unwrap_or(false) && known;
        if ok {
            let mut cache = self.ok_cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= 64 {
                cache.clear();
            }
            cache.insert(credentials.digest, ());
        }
        ok
    }
}

async fn require_auth(State(auth): State<BasicAuth>, request: Request, next: Next) -> Response {
    match auth
        .admit(request.headers().get(header::AUTHORIZATION))
        .await
    {
        Verdict::Allowed => next.run(request).await,
        Verdict::Denied => {
            let mut r = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"perfwatch\""),
            );
            r
        }
        Verdict::Busy => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                "too many password checks under way, retry later\n",
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

/// Wraps `router` with basic auth when users are configured.
pub fn protect(router: Router, web: &WebConfig) -> Router {
    if web.basic_auth_users.is_empty() {
        return router;
    }
    let auth = BasicAuth::new(web.basic_auth_users.clone());
    router.layer(axum::middleware::from_fn_with_state(auth, require_auth))
}

/// Largest request head accepted (request line + headers).
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long a client may take to send its request head; a new connection
/// that has sent no complete request head this long after it was accepted
/// is closed (see [`Connections`]).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` (TLS when configured) until `shutdown`.
///
/// Open connections are capped below the open-file limit (raised to the hard
/// limit first): at the cap, a new connection sheds the oldest one that has
/// not sent a request yet, so that sockets which never send a byte can
/// neither exhaust the files nor lock Prometheus out; and they are closed
/// [`HEADER_READ_TIMEOUT`] after they were accepted anyway.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    web: &WebConfig,
    web_config_path: Option<&Path>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    let connections = Arc::new(Connections::new(connection_cap(), HEADER_READ_TIMEOUT));
    tokio::spawn(connections.clone().sweep_until(shutdown.clone()));
    tokio::spawn(async move {
        shutdown.cancelled().await;
        h.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let service = router
        .layer(axum::middleware::from_fn_with_state(
            connections.clone(),
            mark_request,
        ))
        .into_make_service_with_connect_info::<SocketAddr>();
    let acceptor = Tracking(connections);
    let mut server = axum_server::from_tcp(listener)?.handle(handle);
    harden(server.http_builder());
    match &web.tls_server_config {
        Some(tls) => {
            let file = web_config_path.unwrap_or(Path::new("web config"));
            let config = tls.rustls_config(file).map_err(std::io::Error::other)?;
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls).acceptor(acceptor);
            server.acceptor(acceptor).serve(service).await
        }
        None => server.acceptor(acceptor).serve(service).await,
    }
}

fn harden(builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>) {
    builder
        .http1()
        .max_buf_size(MAX_HEADER_BYTES)
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .timer(hyper_util::rt::TokioTimer::new());
    builder
        .http2()
        .max_header_list_size(MAX_HEADER_BYTES as u32);
}

/// The open connections, by peer address (unique among open TCP
/// connections to one listener), so that the router can mark a connection
/// that sent a request and the sweeper can close those that did not.
///
/// Needed because hyper's `header_read_timeout` never starts on a socket
/// that sends nothing: hyper-util's HTTP/1-or-2 detection waits for the
/// first bytes without a timeout, and a TLS handshake for its first record.
struct Connections {
    epoch: Instant,
    cap: usize,
    head_timeout: Duration,
    open: Mutex<HashMap<SocketAddr, Connection>>,
    next_id: std::sync::atomic::AtomicU64,
}

struct Connection {
    /// Accept order.
    id: u64,
    /// The socket, to shut down: valid while the entry exists, because the
    /// stream removes its entry before it closes the socket.
    fd: RawFd,
    accepted: Duration,
    /// When the last complete request head arrived (since `epoch`).
    last_request: Option<Duration>,
}

impl Connections {
    fn new(cap: usize, head_timeout: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            cap: cap.max(1),
            head_timeout,
            open: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Connection>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an accepted socket; at the cap, first shuts down the
    /// connection [`victim`] picks.
    fn admit(&self, peer: SocketAddr, fd: RawFd) -> u64 {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let accepted = self.epoch.elapsed();
        let mut open = self.lock();
        while open.len() >= self.cap {
            let Some(peer) = victim(open.iter().map(|(p, c)| (*p, c.id, c.last_request))) else {
                break;
            };
            if let Some(c) = open.remove(&peer) {
                tracing::debug!(%peer, cap = self.cap, "connection limit reached: closing the oldest idle connection");
                shut_down(c.fd);
            }
        }
        open.insert(
            peer,
            Connection {
                id,
                fd,
                accepted,
                last_request: None,
            },
        );
        id
    }

    /// Forgets a connection whose stream is being dropped.
    fn forget(&self, peer: SocketAddr, id: u64) {
        let mut open = self.lock();
        if open.get(&peer).is_some_and(|c| c.id == id) {
            open.remove(&peer);
        }
    }

    fn mark_request(&self, peer: SocketAddr) {
        let now = self.epoch.elapsed();
        if let Some(c) = self.lock().get_mut(&peer) {
            c.last_request = Some(now);
        }
    }

    /// Shuts down the connections that sent no request head within
    /// `head_timeout` of their accept; returns how many.
    fn sweep(&self) -> usize {
        let Some(cutoff) = self.epoch.elapsed().checked_sub(self.head_timeout) else {
            return 0;
        };
        let mut closed = 0;
        self.lock().retain(|_, c| {
            let silent = c.last_request.is_none() && c.accepted <= cutoff;
            if silent {
                shut_down(c.fd);
                closed += 1;
            }
            !silent
        });
        closed
    }

    async fn sweep_until(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut every = tokio::time::interval(
            (self.head_timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(1)),
        );
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let closed = self.sweep();
            if closed > 0 {
                tracing::debug!(
                    closed,
                    timeout = ?self.head_timeout,
                    "closed connections that sent no request head in time"
                );
            }
        }
    }
}

/// Which connection to shed at the cap, from `(peer, accept order, last
/// request)`: the oldest that never sent a request; else the one whose last
/// request is the oldest (most likely an idle keep-alive connection).
fn victim(
    connections: impl Iterator<Item = (SocketAddr, u64, Option<Duration>)>,
) -> Option<SocketAddr> {
    connections
        .min_by_key(|(_, id, last)| (last.is_some(), *last, *id))
        .map(|(peer, _, _)| peer)
}

/// Ends a connection now: its pending read sees end-of-file, so hyper drops
/// the connection and its stream closes the socket.
fn shut_down(fd: RawFd) {
    // SAFETY: `fd` is an open socket owned by a live `TrackedStream` (see
    // `Connection::fd`); shutdown(2) does not close or invalidate it.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// Marks the connection of each request: its head arrived complete.
async fn mark_request(
    State(connections): State<Arc<Connections>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    connections.mark_request(peer);
    next.run(request).await
}

/// The acceptor that registers every accepted socket in [`Connections`].
#[derive(Clone)]
struct Tracking(Arc<Connections>);

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for Tracking {
    type Stream = TrackedStream;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(TrackedStream, S)>>;

    fn accept(&self, io: tokio::net::TcpStream, service: S) -> Self::Future {
        std::future::ready(io.peer_addr().map(|peer| {
            let id = self.0.admit(peer, io.as_raw_fd());
            let stream = TrackedStream {
                io,
                peer,
                id,
                connections: self.0.clone(),
            };
            (stream, service)
        }))
    }
}

/// An accepted socket that leaves [`Connections`] when dropped.
struct TrackedStream {
    io: tokio::net::TcpStream,
    peer: SocketAddr,
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        // Before `io` closes the socket: a shutdown by the sweeper must never
        // reach a file descriptor number already reused.
        self.connections.forget(self.peer, self.id);
    }
}

impl tokio::io::AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// How many connections may be open at once: the open-file limit (raised
/// to the hard limit first) minus a reserve for the targets' connections,
/// log files and the listener, so that accept never fails for lack of files.
fn connection_cap() -> usize {
    let files = raise_open_file_limit().min(1 << 20) as usize;
    files - (files / 8).max(64).min(files / 2)
}

/// Raises the soft open-file limit to the hard limit, as Go programs do at
/// start since Go 1.19 (the soft limit, often 1024, is a leftover of
/// select(2), which perfwatch does not use); returns the soft limit in force.
/// Done once per process.
fn raise_open_file_limit() -> u64 {
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: setrlimit reads the struct it is given.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                tracing::debug!(
                    from = limit.rlim_cur,
                    to = limit.rlim_max,
                    "raised the soft open-file limit (RLIMIT_NOFILE) to the hard limit"
                );
                return limit.rlim_max;
            }
        }
        limit.rlim_cur
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_table() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = BasicAuth::new(BTreeMap::from([("prom".to_owned(), hash)]));
        let header = |s: &str| {
            HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            ))
            .unwrap()
        };
        let cases = [
            (Some(header("prom:s3cret")), true),
            (Some(header("prom:s3cret")), true), // cached
            (Some(header("prom:wrong")), false),
            (Some(header("nobody:s3cret")), false),
            (Some(header("prom")), false),
            (Some(HeaderValue::from_static("Bearer x")), false),
            (None, false),
        ];
        for (h, want) in cases {
            assert_eq!(auth.check(h.as_ref()), want, "{h:?}");
        }
    }

    #[test]
    fn plaintext_passwords_are_rejected_without_echo() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, "basic_auth_users:\n  prom: hunter2\n").unwrap();
        let e = WebConfig::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("basic_auth_users.prom") && e.contains("not a bcrypt hash"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        std::fs::write(&p, "basic_auth_user:\n  prom: x\n").unwrap();
        let e = WebConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn the_cap_sheds_the_oldest_silent_connection_first() {
        let peer = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let secs = Duration::from_secs;
        // (peer, accept order, last request)
        let open = [
            (peer(1), 1, Some(secs(50))),
            (peer(2), 2, None),
            (peer(3), 3, Some(secs(40))),
            (peer(4), 4, None),
        ];
        assert_eq!(victim(open.into_iter()), Some(peer(2)));
        // No silent one: the connection idle the longest.
        assert_eq!(
            victim(open.into_iter().filter(|c| c.2.is_some())),
            Some(peer(3))
        );
        assert_eq!(victim(std::iter::empty()), None);
    }

    fn basic(credentials: &str) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ))
        .unwrap()
    }

    /// Median time of `runs` checks of `credentials`.
    fn median_check(auth: &BasicAuth, credentials: &str, runs: usize) -> Duration {
        let header = basic(credentials);
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = std::time::Instant::now();
                assert!(!auth.check(Some(&header)));
                t.elapsed()
            })
            .collect();
        times.sort();
        times[runs / 2]
    }

    /// Finding 5 of issue 13: a wrong password of a known user with a cost-5
    /// hash (`htpasswd -B`'s default) and any password of an unknown user
    /// take about as long, so timing tells no user name. (Before the fix the
    /// unknown user was checked against a cost-10 hash: 32 times the work.)
    #[test]
    fn unknown_users_take_as_long_as_known_ones() {
        let auth = BasicAuth::new(BTreeMap::from([(
            "prom".to_owned(),
            bcrypt::hash("s3cret", 5).unwrap(),
        )]));
        let known = median_check(&auth, "prom:wrong", 7);
        let unknown = median_check(&auth, "nobody:wrong", 7);
        let ratio = unknown.as_secs_f64() / known.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "known user {known:?}, unknown user {unknown:?} (ratio {ratio:.2})"
        );
    }
}
