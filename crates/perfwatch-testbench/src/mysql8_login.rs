//! A protocol-level MySQL 8 *login* server, for testing MySQL 8's
//! `caching_sha2_password` and `sha256_password` logins.
//!
//! **What it is**: a TCP server on 127.0.0.1 speaking the connection phase
//! of MySQL's client/server protocol as dev.mysql.com documents it (Initial
//! Handshake v10, SSLRequest and TLS, HandshakeResponse41,
//! AuthSwitchRequest, AuthMoreData, OK and ERR packets) for one account, and
//! really checking the password: caching_sha2's fast path verifies the
//! SHA-256 scramble against the cached `SHA256(SHA256(password))` as the
//! server does; full authentication compares the clear password sent inside
//! TLS, or, without TLS, sends its PEM public key on request and decrypts
//! the client's RSA-OAEP blob, then XORs it with the nonce and compares.
//! `sha256_password` uses the same RSA exchange (its key request is `0x01`,
//! caching_sha2's `0x02`). It records each login ([`LoginRecord`]: plugin,
//! path, TLS, outcome) for tests to assert on.
//!
//! **What it is not**: a MySQL server. After a login it answers `SET …`
//! and `PING` with OK, and every other command with an ERR carrying
//! [`NOT_IMPLEMENTED`]: a client that logged in sees its first real query
//! fail with that message, one that did not sees "access denied" (1045).
//! Nothing of a real server's behaviour beyond the documented exchange is
//! modelled: its cache of caching_sha2 entries is one flag (filled by a
//! successful full authentication, as MySQL does), there are no RSA key
//! files, no `caching_sha2_password_auto_generate_rsa_keys`, no
//! `require_secure_transport`, no pre-8.0.5 PKCS#1 v1.5 padding.
//!
//! **Why it exists**: MySQL 8 has no package on the machines the tests run
//! on (Debian ships MariaDB, which implements neither plugin on the server
//! side), so without it these login paths, the RSA exchange above all,
//! would be untested.
//!
//! **The RSA key** is made per server with `openssl genpkey` (2048 bits,
//! about 0.1 s) and the password is decrypted with `openssl pkeyutl` (OAEP
//! with SHA-1, OpenSSL's `RSA_PKCS1_OAEP_PADDING`, which MySQL ≥ 8.0.5 uses
//! for both plugins). Why OpenSSL rather than the `rsa` crate: the server
//! side then runs the same library a real MySQL server decrypts with, not
//! the crate the client (sqlx) encrypts with, so a padding or encoding
//! mismatch between the two shows; no private key is committed to the
//! repository; and the `rsa` crate's 2048-bit key generation takes seconds
//! in a debug build. A missing `openssl` is an error naming its package.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{HarnessError, find_binary, io_error, make_temp_dir, run_command};

const SERVER: &str = "mysql8-login";

/// The version the greeting announces (a MySQL 8.0 release, so that clients
/// take their MySQL 8 paths).
pub const SERVER_VERSION: &str = "8.0.40-perfwatch-login-server";

/// The message of the ERR every command but `SET`, `PING` and `QUIT` gets
/// after a successful login (error 1235, ER_NOT_SUPPORTED_YET).
pub const NOT_IMPLEMENTED: &str = "perfwatch mysql8 login server: logged in, but this command is not implemented (only SET and PING are)";

/// How long one `openssl` call (key generation, one decryption) may take.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

// Capability flags ("Capabilities Flags" in the protocol documentation).
const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
const CLIENT_PROTOCOL_41: u32 = 1 << 9;
const CLIENT_SSL: u32 = 1 << 11;
const CLIENT_TRANSACTIONS: u32 = 1 << 13;
const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;

/// What the greeting offers (plus CLIENT_SSL when the server has a
/// certificate). No CLIENT_CONNECT_ATTRS, CLIENT_DEPRECATE_EOF or
/// CLIENT_QUERY_ATTRIBUTES: a client that honours the greeting then sends
/// nothing this server would have to skip. CLIENT_LONG_PASSWORD set is
/// what tells a MariaDB-aware client it talks to MySQL.
const SERVER_CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;

/// An SSLRequest is the first 32 bytes of a HandshakeResponse41:
/// capabilities, max packet size, character set, 23 bytes of filler.
const SSL_REQUEST_LEN: usize = 32;
const SERVER_STATUS_AUTOCOMMIT: u16 = 2;
const UTF8MB4_0900_AI_CI: u8 = 255;
const NONCE_LEN: usize = 20;

const COM_QUIT: u8 = 0x01;
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0e;
const COM_STMT_PREPARE: u8 = 0x16;

/// The first byte of an AuthMoreData packet.
const AUTH_MORE_DATA: u8 = 0x01;
/// The first byte of an AuthSwitchRequest.
const AUTH_SWITCH_REQUEST: u8 = 0xfe;
/// caching_sha2_password's answers to the scramble (in AuthMoreData).
const FAST_AUTH_SUCCESS: u8 = 0x03;
const PERFORM_FULL_AUTHENTICATION: u8 = 0x04;

const ER_ACCESS_DENIED_ERROR: u16 = 1045;
const ER_HANDSHAKE_ERROR: u16 = 1043;
const ER_NOT_SUPPORTED_YET: u16 = 1235;

/// An authentication plugin this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPlugin {
    /// `caching_sha2_password`, MySQL 8's default.
    CachingSha2Password,
    /// `sha256_password` (deprecated in MySQL 8, still common).
    Sha256Password,
}

impl AuthPlugin {
    /// The plugin's name in the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Self::CachingSha2Password => "caching_sha2_password",
            Self::Sha256Password => "sha256_password",
        }
    }

    /// The one-byte packet with which a client asks for the public key.
    fn public_key_request(self) -> u8 {
        match self {
            Self::CachingSha2Password => 0x02,
            Self::Sha256Password => 0x01,
        }
    }
}

/// How the password was presented and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPath {
    /// caching_sha2_password's fast path: the SHA-256 scramble matched the
    /// cached entry.
    FastScramble,
    /// Full authentication over TLS: the password in clear inside the TLS
    /// session.
    ClearPasswordOverTls,
    /// Full authentication without TLS: the password XOR the nonce,
    /// encrypted with the server's RSA public key (RSA-OAEP).
    RsaEncryptedPassword,
    /// An empty auth response: a login without a password.
    EmptyPassword,
    /// The exchange broke off before a password was presented.
    NotReached,
}

/// How a login ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The user and password matched: OK sent.
    Accepted,
    /// The user or password did not match: "access denied" (1045) sent.
    Denied,
    /// The exchange broke off (the client hung up, sent what the protocol
    /// does not allow, or an RSA blob that does not decrypt); why.
    Failed(String),
}

/// What one connection's login did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    /// The user name the client sent (empty if it sent none).
    pub user: String,
    /// The account's plugin, which checked the password.
    pub plugin: AuthPlugin,
    /// Whether the client was asked to switch to it (AuthSwitchRequest):
    /// its handshake response was for the greeting's default plugin.
    pub switched: bool,
    /// Whether the server sent its RSA public key on request.
    pub public_key_sent: bool,
    /// Whether the login ran inside TLS.
    pub tls: bool,
    /// How the password was presented.
    pub path: AuthPath,
    /// How it ended.
    pub outcome: LoginOutcome,
}

/// The server's certificate chain and private key (PEM files), e.g.
/// `server.crt` and `server.key` of a [`TestPki`](crate::pki::TestPki).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// What a [`Mysql8LoginServer`] serves: one account.
#[derive(Debug, Clone)]
pub struct Mysql8Login {
    /// The account's user name.
    pub user: String,
    /// The account's password.
    pub password: String,
    /// The account's plugin, which checks the password.
    pub account_plugin: AuthPlugin,
    /// The plugin the greeting names (`default_authentication_plugin`;
    /// MySQL 8's default is caching_sha2_password). When it is not the
    /// account's, the server asks the client to switch.
    pub default_plugin: AuthPlugin,
    /// Whether the account's caching_sha2_password entry is in the cache
    /// at start (a warm server: the fast path works at once). Without it,
    /// as after a restart or `FLUSH PRIVILEGES`, the first login does full
    /// authentication, which fills the cache.
    pub cached: bool,
    /// TLS offered with these files; `None`: no TLS in the greeting.
    pub tls: Option<TlsFiles>,
}

impl Mysql8Login {
    /// An account with `plugin`, the greeting naming caching_sha2_password,
    /// a cold cache and no TLS.
    pub fn new(user: &str, password: &str, plugin: AuthPlugin) -> Self {
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
            account_plugin: plugin,
            default_plugin: AuthPlugin::CachingSha2Password,
            cached: false,
            tls: None,
        }
    }

    /// With the account's entry in caching_sha2's cache at start.
    pub fn cached(mut self) -> Self {
        self.cached = true;
        self
    }

    /// With `plugin` named in the greeting.
    pub fn default_plugin(mut self, plugin: AuthPlugin) -> Self {
        self.default_plugin = plugin;
        self
    }

    /// Offering TLS with the certificate chain `cert` and its key `key`.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }
}

/// The running server; stops (and removes its key files) when dropped.
pub struct Mysql8LoginServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    _dir: TempDir,
}

/// What every connection reads and records.
struct Shared {
    login: Mysql8Login,
    key: RsaKey,
    tls: Option<TlsAcceptor>,
    /// caching_sha2's cache: whether the account's entry is in it.
    cached: AtomicBool,
    next_connection_id: AtomicU32,
    logins: Mutex<Vec<LoginRecord>>,
    statements: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection task leaves the list as it was: still readable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mysql8LoginServer {
    /// Makes the RSA key pair (`openssl genpkey`), loads the TLS files if
    /// any, and serves on 127.0.0.1:0. Must run inside a Tokio runtime.
    pub async fn start(login: Mysql8Login) -> Result<Self, HarnessError> {
        let dir = make_temp_dir(SERVER, false)?;
        let key_dir = dir.path().to_owned();
        let key = tokio::task::spawn_blocking(move || RsaKey::generate(&key_dir))
            .await
            .map_err(|e| HarnessError::Io {
                server: SERVER,
                context: "generating the RSA key".into(),
                source: io::Error::other(e),
            })??;
        let tls = login.tls.as_ref().map(tls_acceptor).transpose()?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io_error(SERVER, "binding 127.0.0.1:0".into()))?;
        let addr = listener
            .local_addr()
            .map_err(io_error(SERVER, "reading the bound address".into()))?;
        let shared = Arc::new(Shared {
            cached: AtomicBool::new(login.cached),
            login,
            key,
            tls,
            next_connection_id: AtomicU32::new(1),
            logins: Mutex::default(),
            statements: Mutex::default(),
        });
        let cancel = CancellationToken::new();
        tokio::spawn(accept(listener, shared.clone(), cancel.clone()));
        Ok(Self {
            addr,
            shared,
            cancel,
            _dir: dir,
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every login so far, in the order they ended.
    pub fn logins(&self) -> Vec<LoginRecord> {
        lock(&self.shared.logins).clone()
    }

    /// The SQL of every query and prepare after a login, in order.
    pub fn statements(&self) -> Vec<String> {
        lock(&self.shared.statements).clone()
    }

    /// The public key it sends on request (PEM, SubjectPublicKeyInfo).
    pub fn public_key_pem(&self) -> &str {
        &self.shared.key.public_pem
    }
}

impl Drop for Mysql8LoginServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("{SERVER}: accept failed: {e}");
                    continue;
                }
            },
        };
        let (shared, cancel) = (shared.clone(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = connection(&shared, tcp, peer) => {}
            }
        });
    }
}

/// One connection: the login, recorded, then commands if it succeeded.
async fn connection(shared: &Shared, tcp: TcpStream, peer: SocketAddr) {
    let mut record = LoginRecord {
        user: String::new(),
        plugin: shared.login.account_plugin,
        switched: false,
        public_key_sent: false,
        tls: false,
        path: AuthPath::NotReached,
        outcome: LoginOutcome::Denied,
    };
    let result = login(shared, tcp, peer, &mut record).await;
    let wire = match result {
        Ok(Some(wire)) => {
            record.outcome = LoginOutcome::Accepted;
            Some(wire)
        }
        Ok(None) => None,
        Err(why) => {
            record.outcome = LoginOutcome::Failed(why);
            None
        }
    };
    lock(&shared.logins).push(record);
    if let Some(mut wire) = wire {
        commands(shared, &mut wire).await;
    }
}

/// The connection phase: greeting, optional TLS, handshake response,
/// optional plugin switch, the plugin's exchange, OK or ERR. Returns the
/// connection after an OK, `None` after "access denied", the reason when
/// the exchange broke off.
async fn login(
    shared: &Shared,
    tcp: TcpStream,
    peer: SocketAddr,
    record: &mut LoginRecord,
) -> Result<Option<Packets>, String> {
    let nonce = new_nonce();
    let connection_id = shared.next_connection_id.fetch_add(1, Ordering::Relaxed);
    let mut wire = Packets::new(Box::new(tcp));
    wire.write(&greeting(
        connection_id,
        &nonce,
        shared.login.default_plugin,
        shared.tls.is_some(),
    ))
    .await?;
    let mut packet = wire.read().await?;
    if is_ssl_request(&packet) {
        let acceptor = shared
            .tls
            .as_ref()
            .ok_or("the client sent an SSLRequest, but the greeting offered no TLS")?;
        wire = wire
            .into_tls(acceptor)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        record.tls = true;
        packet = wire.read().await?;
    }
    let response = match HandshakeResponse::parse(&packet) {
        Ok(r) => r,
        Err(why) => {
            wire.write(&err_packet(ER_HANDSHAKE_ERROR, "08S01", "Bad handshake"))
                .await?;
            return Err(format!("bad handshake response: {why}"));
        }
    };
    record.user = response.user.clone();
    let known_user = response.user == shared.login.user;
    let plugin = shared.login.account_plugin;
    record.switched = response.plugin.as_deref() != Some(plugin.name());
    let first = if record.switched {
        wire.write(&auth_switch_request(plugin, &nonce)).await?;
        wire.read().await?
    } else {
        response.auth_response
    };
    let mut exchange = Exchange {
        shared,
        wire: &mut wire,
        nonce: &nonce,
        record,
    };
    let checked = match plugin {
        AuthPlugin::CachingSha2Password => exchange.caching_sha2(first, known_user).await,
        AuthPlugin::Sha256Password => exchange.sha256(first).await,
    };
    let using_password = if record.path == AuthPath::EmptyPassword {
        "NO"
    } else {
        "YES"
    };
    let access_denied = err_packet(
        ER_ACCESS_DENIED_ERROR,
        "28000",
        &format!(
            "Access denied for user '{}'@'{}' (using password: {using_password})",
            response.user,
            peer.ip()
        ),
    );
    match checked {
        Ok(true) if known_user => {
            wire.write(&ok_packet()).await?;
            Ok(Some(wire))
        }
        Ok(_) => {
            wire.write(&access_denied).await?;
            Ok(None)
        }
        // A real server answers a plugin that gives up with "access denied"
        // too; the record keeps the reason.
        Err(why) => {
            let _ = wire.write(&access_denied).await;
            Err(why)
        }
    }
}

/// One plugin exchange on one connection.
struct Exchange<'a> {
    shared: &'a Shared,
    wire: &'a mut Packets,
    nonce: &'a [u8; NONCE_LEN],
    record: &'a mut LoginRecord,
}

impl Exchange<'_> {
    /// caching_sha2_password: the fast path when the account is cached and
    /// the scramble verifies, full authentication otherwise (a wrong
    /// password on a warm server too, as MySQL does). Whether the password
    /// matched.
    async fn caching_sha2(&mut self, scramble: Vec<u8>, known_user: bool) -> Result<bool, String> {
        if is_empty_response(&scramble) {
            self.record.path = AuthPath::EmptyPassword;
            return Ok(self.shared.login.password.is_empty());
        }
        if scramble.len() != Sha256::output_size() {
            return Err(format!(
                "caching_sha2_password: a scramble of {} bytes, not 32",
                scramble.len()
            ));
        }
        let cached = known_user && self.shared.cached.load(Ordering::SeqCst);
        if cached && scramble_matches(&self.shared.login.password, self.nonce, &scramble) {
            self.record.path = AuthPath::FastScramble;
            self.wire
                .write(&[AUTH_MORE_DATA, FAST_AUTH_SUCCESS])
                .await?;
            return Ok(true);
        }
        self.wire
            .write(&[AUTH_MORE_DATA, PERFORM_FULL_AUTHENTICATION])
            .await?;
        let answer = self.wire.read().await?;
        let password = self
            .full_authentication(AuthPlugin::CachingSha2Password, answer)
            .await?;
        let matched = password == self.shared.login.password.as_bytes();
        if matched && known_user {
            // MySQL caches an account after its first full authentication.
            self.shared.cached.store(true, Ordering::SeqCst);
        }
        Ok(matched)
    }

    /// sha256_password: the first packet is the password over TLS, or the
    /// public key request (or, from a client that has the key, the RSA
    /// blob) without. Whether the password matched.
    async fn sha256(&mut self, first: Vec<u8>) -> Result<bool, String> {
        if is_empty_response(&first) {
            self.record.path = AuthPath::EmptyPassword;
            return Ok(self.shared.login.password.is_empty());
        }
        let password = self
            .full_authentication(AuthPlugin::Sha256Password, first)
            .await?;
        Ok(password == self.shared.login.password.as_bytes())
    }

    /// The password of a full authentication, from the client's `answer`:
    /// NUL-terminated clear text inside TLS; without TLS, the public key
    /// request (answered with the key, then the blob follows) or the blob,
    /// decrypted and XORed with the nonce.
    async fn full_authentication(
        &mut self,
        plugin: AuthPlugin,
        answer: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        if self.record.tls {
            self.record.path = AuthPath::ClearPasswordOverTls;
            return Ok(without_trailing_nul(answer));
        }
        self.record.path = AuthPath::RsaEncryptedPassword;
        let blob = if answer == [plugin.public_key_request()] {
            let mut response = vec![AUTH_MORE_DATA];
            response.extend_from_slice(self.shared.key.public_pem.as_bytes());
            self.wire.write(&response).await?;
            self.record.public_key_sent = true;
            self.wire.read().await?
        } else {
            answer
        };
        let mut password = self.shared.key.decrypt(blob).await?;
        // The client XORed the NUL-terminated password with the nonce,
        // repeating the nonce when the password is longer.
        for (i, byte) in password.iter_mut().enumerate() {
            *byte ^= self.nonce[i % NONCE_LEN];
        }
        Ok(without_trailing_nul(password))
    }
}

/// The server's side of the fast path: it knows only
/// `stage2 = SHA256(SHA256(password))`. The client sent
/// `SHA256(password) XOR SHA256(stage2 || nonce)`; XORing that pad off must
/// give a value whose SHA-256 is `stage2`.
fn scramble_matches(password: &str, nonce: &[u8; NONCE_LEN], scramble: &[u8]) -> bool {
    let stage2 = Sha256::digest(Sha256::digest(password.as_bytes()));
    let pad = Sha256::new()
        .chain_update(stage2)
        .chain_update(nonce)
        .finalize();
    let stage1: Vec<u8> = scramble
        .iter()
        .zip(pad.iter())
        .map(|(s, p)| s ^ p)
        .collect();
    Sha256::digest(&stage1) == stage2
}

/// No password: an empty auth response, or a lone NUL.
fn is_empty_response(response: &[u8]) -> bool {
    response.is_empty() || response == [0]
}

fn without_trailing_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// After the login: OK to `SET …` (sqlx sets sql_mode, time_zone and names
/// on connect) and `PING`, [`NOT_IMPLEMENTED`] to anything else, until the
/// client quits or hangs up.
async fn commands(shared: &Shared, wire: &mut Packets) {
    while let Ok(packet) = wire.read().await {
        let reply = match packet.split_first() {
            None | Some((&COM_QUIT, _)) => return,
            Some((&COM_PING, _)) => ok_packet(),
            Some((&command @ (COM_QUERY | COM_STMT_PREPARE), sql)) => {
                let sql = String::from_utf8_lossy(sql).into_owned();
                let is_set = command == COM_QUERY
                    && sql
                        .trim_start()
                        .get(..4)
                        .is_some_and(|s| s.eq_ignore_ascii_case("SET "));
                lock(&shared.statements).push(sql);
                if is_set {
                    ok_packet()
                } else {
                    not_implemented()
                }
            }
            Some(_) => not_implemented(),
        };
        if wire.write(&reply).await.is_err() {
            return;
        }
    }
}

fn not_implemented() -> Vec<u8> {
    err_packet(ER_NOT_SUPPORTED_YET, "42000", NOT_IMPLEMENTED)
}

/// 20 nonce bytes as MySQL makes them: 7-bit, never NUL or `$` (clients
/// may read the nonce as a C string).
fn new_nonce() -> [u8; NONCE_LEN] {
    let mut nonce: [u8; NONCE_LEN] = rand::random();
    for byte in &mut nonce {
        *byte &= 0x7f;
        if *byte == 0 || *byte == b'$' {
            *byte += 1;
        }
    }
    nonce
}

/// Initial Handshake Packet, protocol version 10.
fn greeting(
    connection_id: u32,
    nonce: &[u8; NONCE_LEN],
    plugin: AuthPlugin,
    offer_tls: bool,
) -> Vec<u8> {
    let capabilities = SERVER_CAPABILITIES | if offer_tls { CLIENT_SSL } else { 0 };
    let [c0, c1, c2, c3] = capabilities.to_le_bytes();
    let mut p = vec![10];
    p.extend_from_slice(SERVER_VERSION.as_bytes());
    p.push(0);
    p.extend_from_slice(&connection_id.to_le_bytes());
    p.extend_from_slice(&nonce[..8]);
    p.push(0); // filler
    p.extend_from_slice(&[c0, c1]);
    p.push(UTF8MB4_0900_AI_CI);
    p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&[c2, c3]);
    p.push(NONCE_LEN as u8 + 1); // auth-plugin-data length, with its NUL
    p.extend_from_slice(&[0; 10]); // reserved
    p.extend_from_slice(&nonce[8..]);
    p.push(0);
    p.extend_from_slice(plugin.name().as_bytes());
    p.push(0);
    p
}

fn is_ssl_request(packet: &[u8]) -> bool {
    packet.len() == SSL_REQUEST_LEN
        && packet
            .first_chunk::<4>()
            .is_some_and(|c| u32::from_le_bytes(*c) & CLIENT_SSL != 0)
}

fn auth_switch_request(plugin: AuthPlugin, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut p = vec![AUTH_SWITCH_REQUEST];
    p.extend_from_slice(plugin.name().as_bytes());
    p.push(0);
    p.extend_from_slice(nonce);
    p.push(0);
    p
}

/// OK_Packet (protocol 4.1): no rows, no insert id, autocommit, no warnings.
fn ok_packet() -> Vec<u8> {
    let mut p = vec![0x00, 0, 0];
    p.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p
}

/// ERR_Packet (protocol 4.1).
fn err_packet(code: u16, sql_state: &str, message: &str) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(sql_state.as_bytes());
    p.extend_from_slice(message.as_bytes());
    p
}

/// The parts of a HandshakeResponse41 the login needs.
#[derive(Debug)]
struct HandshakeResponse {
    user: String,
    auth_response: Vec<u8>,
    /// The plugin the auth response is for.
    plugin: Option<String>,
}

impl HandshakeResponse {
    fn parse(packet: &[u8]) -> Result<Self, String> {
        let mut r = Reader { rest: packet };
        let capabilities = r.u32()?;
        if capabilities & CLIENT_PROTOCOL_41 == 0 {
            return Err("CLIENT_PROTOCOL_41 is not set".into());
        }
        r.take(4 + 1 + 23)?; // max packet size, character set, filler
        let user = String::from_utf8_lossy(r.nul_terminated()?).into_owned();
        let auth_response = if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            let len = r.length_encoded()?;
            r.take(len)?
        } else if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let len = r.u8()?;
            r.take(usize::from(len))?
        } else {
            r.nul_terminated()?
        }
        .to_vec();
        if capabilities & CLIENT_CONNECT_WITH_DB != 0 && !r.rest.is_empty() {
            r.nul_terminated()?;
        }
        let plugin = if capabilities & CLIENT_PLUGIN_AUTH != 0 && !r.rest.is_empty() {
            Some(String::from_utf8_lossy(r.nul_terminated()?).into_owned())
        } else {
            None
        };
        Ok(Self {
            user,
            auth_response,
            plugin,
        })
    }
}

/// Reads the protocol's basic types off a packet.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.rest.len() < n {
            return Err(format!(
                "the packet ends {} bytes early",
                n - self.rest.len()
            ));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn nul_terminated(&mut self) -> Result<&'a [u8], String> {
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("a string without its terminating NUL")?;
        let s = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        Ok(s)
    }

    /// A length-encoded integer, as a length within this packet.
    fn length_encoded(&mut self) -> Result<usize, String> {
        let width = match self.u8()? {
            n @ 0..=0xfa => return Ok(usize::from(n)),
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            other => return Err(format!("0x{other:02x} does not start a length")),
        };
        let bytes = self.take(width)?;
        let value = bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        usize::try_from(value).map_err(|_| format!("length {value} is too large"))
    }
}

/// Anything a connection's packets can run over: TCP, or TLS over it.
trait Wire: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Wire for T {}

/// MySQL packets on a connection: a 3-byte length, a sequence id, the
/// payload. Every reply carries the id after the one it answers.
struct Packets {
    io: Box<dyn Wire>,
    sequence_id: u8,
}

/// Largest payload of a single packet; longer ones are split, which
/// nothing in a login needs.
const MAX_PAYLOAD: usize = 0xff_ff_ff;

impl Packets {
    fn new(io: Box<dyn Wire>) -> Self {
        Self { io, sequence_id: 0 }
    }

    async fn read(&mut self) -> Result<Vec<u8>, String> {
        let mut header = [0u8; 4];
        self.io
            .read_exact(&mut header)
            .await
            .map_err(|e| format!("reading a packet: {e}"))?;
        let [l0, l1, l2, sequence_id] = header;
        let len = u32::from_le_bytes([l0, l1, l2, 0]) as usize;
        if len == MAX_PAYLOAD {
            return Err("a packet split in parts, which this server does not join".into());
        }
        self.sequence_id = sequence_id.wrapping_add(1);
        let mut payload = vec![0; len];
        self.io
            .read_exact(&mut payload)
            .await
            .map_err(|e| format!("reading a packet of {len} bytes: {e}"))?;
        Ok(payload)
    }

    async fn write(&mut self, payload: &[u8]) -> Result<(), String> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| (l as usize) < MAX_PAYLOAD)
            .ok_or("a reply too long for one packet")?;
        let mut frame = Vec::with_capacity(4 + payload.len());
        frame.extend_from_slice(&len.to_le_bytes()[..3]);
        frame.push(self.sequence_id);
        frame.extend_from_slice(payload);
        self.sequence_id = self.sequence_id.wrapping_add(1);
        self.io
            .write_all(&frame)
            .await
            .map_err(|e| format!("writing a packet: {e}"))?;
        self.io
            .flush()
            .await
            .map_err(|e| format!("writing a packet: {e}"))
    }

    /// The TLS handshake after an SSLRequest; the sequence continues.
    async fn into_tls(self, acceptor: &TlsAcceptor) -> io::Result<Packets> {
        let tls = acceptor.accept(self.io).await?;
        Ok(Packets {
            io: Box::new(tls),
            sequence_id: self.sequence_id,
        })
    }
}

fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, HarnessError> {
    let failed = |context: String, e: &dyn std::fmt::Display| HarnessError::Io {
        server: SERVER,
        context,
        source: io::Error::other(e.to_string()),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| failed(format!("reading {}", files.cert.display()), &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| failed(format!("reading {}", files.key.display()), &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| failed("building the TLS server config".into(), &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The server's RSA key pair: the private key in a file for `openssl
/// pkeyutl`, the public key as the PEM sent to clients.
struct RsaKey {
    openssl: PathBuf,
    dir: PathBuf,
    private_key: PathBuf,
    public_pem: String,
    next_blob: AtomicU32,
}

impl RsaKey {
    /// A fresh 2048-bit key pair in `dir` (blocking, about 0.1 s).
    fn generate(dir: &Path) -> Result<Self, HarnessError> {
        let openssl = find_binary("openssl", "openssl")?;
        let private_key = dir.join("private_key.pem");
        let mut genpkey = Command::new(&openssl);
        genpkey
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .arg("-out")
            .arg(&private_key);
        run_command(SERVER, genpkey, OPENSSL_TIMEOUT)?;
        let mut public = Command::new(&openssl);
        public
            .arg("pkey")
            .arg("-in")
            .arg(&private_key)
            .arg("-pubout");
        let public_pem = run_command(SERVER, public, OPENSSL_TIMEOUT)?;
        Ok(Self {
            openssl,
            dir: dir.to_owned(),
            private_key,
            public_pem,
            next_blob: AtomicU32::new(0),
        })
    }

    /// Decrypts a client's blob (RSA-OAEP, SHA-1 and MGF1 with SHA-1).
    async fn decrypt(&self, blob: Vec<u8>) -> Result<Vec<u8>, String> {
        let n = self.next_blob.fetch_add(1, Ordering::Relaxed);
        let (input, output) = (
            self.dir.join(format!("blob-{n}.bin")),
            self.dir.join(format!("plain-{n}.bin")),
        );
        let mut cmd = Command::new(&self.openssl);
        cmd.args(["pkeyutl", "-decrypt", "-inkey"])
            .arg(&self.private_key)
            .args([
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                "rsa_oaep_md:sha1",
                "-pkeyopt",
                "rsa_mgf1_md:sha1",
                "-in",
            ])
            .arg(&input)
            .arg("-out")
            .arg(&output);
        tokio::task::spawn_blocking(move || {
            std::fs::write(&input, &blob)
                .map_err(|e| format!("writing {}: {e}", input.display()))?;
            let decrypted = run_command(SERVER, cmd, OPENSSL_TIMEOUT)
                .map_err(|e| format!("the RSA blob of {} bytes does not decrypt: {e}", blob.len()))
                .and_then(|_| {
                    std::fs::read(&output).map_err(|e| format!("reading {}: {e}", output.display()))
                });
            let _ = std::fs::remove_file(&input);
            let _ = std::fs::remove_file(&output);
            decrypted
        })
        .await
        .map_err(|e| format!("decryption task: {e}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's fast-path scramble, as dev.mysql.com's
    /// caching_sha2_password page defines it.
    fn client_scramble(password: &str, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let stage1 = Sha256::digest(password.as_bytes());
        let stage2 = Sha256::digest(stage1);
        let pad = Sha256::new()
            .chain_update(stage2)
            .chain_update(nonce)
            .finalize();
        stage1.iter().zip(pad.iter()).map(|(a, b)| a ^ b).collect()
    }

    #[test]
    fn fast_path_accepts_only_the_right_scramble() {
        let nonce = new_nonce();
        assert!(scramble_matches(
            "pw",
            &nonce,
            &client_scramble("pw", &nonce)
        ));
        assert!(!scramble_matches(
            "pw",
            &nonce,
            &client_scramble("pW", &nonce)
        ));
        let other_nonce = new_nonce();
        assert_ne!(nonce, other_nonce);
        assert!(!scramble_matches(
            "pw",
            &nonce,
            &client_scramble("pw", &other_nonce)
        ));
    }

    #[test]
    fn nonces_are_never_nul_or_dollar() {
        for _ in 0..1000 {
            assert!(new_nonce().iter().all(|&b| b != 0 && b != b'$' && b < 0x80));
        }
    }

    #[test]
    fn handshake_responses_parse_and_truncated_ones_do_not() {
        let capabilities = CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH
            | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | CLIENT_CONNECT_WITH_DB;
        let mut p = capabilities.to_le_bytes().to_vec();
        p.extend_from_slice(&[0; 4 + 1 + 23]);
        p.extend_from_slice(b"app\0");
        p.push(3);
        p.extend_from_slice(b"abc");
        p.extend_from_slice(b"\0caching_sha2_password\0");
        let r = HandshakeResponse::parse(&p).unwrap();
        assert_eq!(r.user, "app");
        assert_eq!(r.auth_response, b"abc");
        assert_eq!(r.plugin.as_deref(), Some("caching_sha2_password"));
        // A lone public key request where the response should be.
        let e = HandshakeResponse::parse(&[0x01]).unwrap_err();
        assert!(e.contains("ends 3 bytes early"), "{e}");
        // The auth response cut short.
        assert!(HandshakeResponse::parse(&p[..38]).is_err());
    }
}
