//! MySQL 8's `caching_sha2_password` and `sha256_password` logins (issue 12)
//! through perfwatch's own path: the config's DSN, password and TLS options
//! validated into sqlx's connect options, then one poll of the MySQL
//! collector (`supervisor::poll_once`, what `perfwatch once` runs).
//!
//! MySQL 8 has no package here, so the server is the test bench's
//! protocol-level login server (`perfwatch_testbench::mysql8_login`): it
//! checks the password for real (the fast path's SHA-256 scramble, the clear
//! password inside TLS, or the RSA-OAEP blob decrypted with OpenSSL) and
//! records the path each login took, but answers no query after it. So a
//! target that logged in fails its first statement, perfwatch's `SELECT
//! VERSION()`, with the server's NOT_IMPLEMENTED (reason query), and a
//! wrong password fails the login with "access denied" (reason auth).
//!
//! Not tested here: a real MySQL 8 (its cache, its key files, its other
//! settings); see the README's compatibility table.

use std::collections::BTreeMap;

use perfwatch::config::Config;
use perfwatch::poll::{ErrorReason, PollError};
use perfwatch_testbench::mysql8_login::{
    AuthPath, AuthPlugin, LoginOutcome, LoginRecord, Mysql8Login, Mysql8LoginServer,
    NOT_IMPLEMENTED,
};
use perfwatch_testbench::pki::TestPki;

const USER: &str = "app";
/// Longer than the 20-byte nonce, so the RSA exchange's XOR wraps around
/// it; not ASCII, so the bytes (not characters) must match.
const PASSWORD: &str = "correct horse battery staple, sans café";
const WRONG_PASSWORD: &str = "correct horse battery stable, sans café";

/// Polls every target in `targets` once; the failure of each target that
/// failed, by name.
async fn poll_once(targets: &str) -> BTreeMap<String, PollError> {
    perfwatch::tls::install_default_provider();
    // A generous timeout: the client's RSA encryption runs in a debug build.
    let source = format!("[global]\ninterval = \"30s\"\ntimeout = \"20s\"\n{targets}");
    let config =
        Config::from_source("mysql8.toml", &source, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let (_, failures) = perfwatch::supervisor::poll_once(&config).await;
    failures.into_iter().map(|(k, e)| (k.target, e)).collect()
}

/// A `[[mysql]]` table for `server` with `password` and the DSN
/// parameters `params`.
fn target(
    name: &str,
    server: &Mysql8LoginServer,
    host: &str,
    password: &str,
    params: &str,
) -> String {
    format!(
        "[[mysql]]\nname = \"{name}\"\ndsn = \"mysql://{USER}@{host}:{}/?{params}\"\npassword = \"{password}\"\n",
        server.port()
    )
}

/// `ssl-mode=VERIFY_IDENTITY` against the test CA (connect to `localhost`).
fn verify_identity(pki: &TestPki) -> String {
    format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", pki.path("ca.crt"))
}

async fn start(login: Mysql8Login) -> Mysql8LoginServer {
    Mysql8LoginServer::start(login)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A server with the test PKI's certificate for `localhost`.
fn with_tls(login: Mysql8Login, pki: &TestPki) -> Mysql8Login {
    login.tls(pki.file("server.crt"), pki.file("server.key"))
}

/// The login of an account with `plugin` on a server whose greeting names
/// caching_sha2_password (so sha256_password is switched to), by sqlx,
/// which never has the server's key (so it asks for it on the RSA path).
fn login(plugin: AuthPlugin, path: AuthPath, tls: bool, outcome: LoginOutcome) -> LoginRecord {
    LoginRecord {
        user: USER.into(),
        plugin,
        switched: plugin != AuthPlugin::CachingSha2Password,
        public_key_sent: path == AuthPath::RsaEncryptedPassword,
        tls,
        path,
        outcome,
    }
}

/// The target logged in: the login passed and perfwatch's own first
/// statement reached the server, which refused it.
#[track_caller]
fn assert_logged_in(failures: &BTreeMap<String, PollError>, target: &str) {
    let e = failures.get(target).unwrap_or_else(|| {
        panic!("{target}: a poll succeeded against a server that answers no query")
    });
    assert_eq!(e.reason, ErrorReason::Query, "{target}: {}", e.message);
    assert!(
        e.message.contains("reading the server version") && e.message.contains(NOT_IMPLEMENTED),
        "{target}: {}",
        e.message
    );
}

#[track_caller]
fn assert_denied(failures: &BTreeMap<String, PollError>, target: &str) {
    let e = failures
        .get(target)
        .unwrap_or_else(|| panic!("{target}: no failure with a wrong password"));
    assert_eq!(e.reason, ErrorReason::Auth, "{target}: {}", e.message);
    assert!(
        e.message.contains("Access denied for user 'app'"),
        "{target}: {}",
        e.message
    );
}

/// The server's logins are `expected`, in any order (targets connect
/// concurrently); sqlx's `SET` after each login was answered and
/// perfwatch's `SELECT VERSION()` sent.
#[track_caller]
fn assert_logins(server: &Mysql8LoginServer, expected: &[LoginRecord]) {
    let all = server.logins();
    let mut left = all.clone();
    for want in expected {
        let i = left
            .iter()
            .position(|got| got == want)
            .unwrap_or_else(|| panic!("no login {want:?} among {all:#?}"));
        left.remove(i);
    }
    assert!(left.is_empty(), "unexpected logins {left:#?}");
    let accepted = expected
        .iter()
        .filter(|l| l.outcome == LoginOutcome::Accepted)
        .count();
    let statements = server.statements();
    let count = |prefix: &str| statements.iter().filter(|s| s.starts_with(prefix)).count();
    assert_eq!(
        (count("SET sql_mode="), count("SELECT VERSION()")),
        (accepted, accepted),
        "{statements:#?}"
    );
}

/// One way to log in: the target names' prefix, the host, the DSN
/// parameters, and what the server must record for it.
struct Way<'a> {
    name: &'a str,
    host: &'a str,
    params: &'a str,
    tls: bool,
    /// The path of the login with the right password...
    right: AuthPath,
    /// ...and with a wrong one.
    wrong: AuthPath,
}

impl<'a> Way<'a> {
    /// Without TLS (`ssl-mode=DISABLED`, though a server may offer it):
    /// full authentication is the RSA exchange.
    fn rsa() -> Self {
        Self {
            name: "rsa",
            host: "127.0.0.1",
            params: "ssl-mode=DISABLED",
            tls: false,
            right: AuthPath::RsaEncryptedPassword,
            wrong: AuthPath::RsaEncryptedPassword,
        }
    }

    /// Over TLS with `params` (to `localhost`, the certificate's name):
    /// full authentication is the clear password inside TLS.
    fn tls(params: &'a str) -> Self {
        Self {
            name: "tls",
            host: "localhost",
            params,
            tls: true,
            right: AuthPath::ClearPasswordOverTls,
            wrong: AuthPath::ClearPasswordOverTls,
        }
    }
}

/// Polls, for every way, a target `<name>-right` with the right password
/// and `<name>-wrong` with a wrong one, all at once. The right ones must
/// log in, the wrong ones be denied, and the server must have recorded
/// exactly those logins.
async fn right_and_wrong(server: &Mysql8LoginServer, plugin: AuthPlugin, ways: &[Way<'_>]) {
    let mut targets = String::new();
    let mut expected = Vec::new();
    for way in ways {
        for (password, suffix) in [(PASSWORD, "right"), (WRONG_PASSWORD, "wrong")] {
            let name = format!("{}-{suffix}", way.name);
            targets.push_str(&target(&name, server, way.host, password, way.params));
        }
        expected.push(login(plugin, way.right, way.tls, LoginOutcome::Accepted));
        expected.push(login(plugin, way.wrong, way.tls, LoginOutcome::Denied));
    }
    let failures = poll_once(&targets).await;
    for way in ways {
        assert_logged_in(&failures, &format!("{}-right", way.name));
        assert_denied(&failures, &format!("{}-wrong", way.name));
    }
    assert_logins(server, &expected);
}

/// A warm server (the account cached): the right password passes on the
/// scramble alone; a wrong one fails it, falls to full authentication
/// (RSA: no TLS offered) and is denied.
#[tokio::test]
async fn caching_sha2_fast_path_checks_the_scramble() {
    let plugin = AuthPlugin::CachingSha2Password;
    let server = start(Mysql8Login::new(USER, PASSWORD, plugin).cached()).await;
    let way = Way {
        name: "plain",
        // No ssl-mode: PREFERRED, and the server offers no TLS.
        params: "",
        right: AuthPath::FastScramble,
        ..Way::rsa()
    };
    right_and_wrong(&server, plugin, &[way]).await;
}

/// A cold cache (as after a MySQL restart) forces full authentication; over
/// TLS the password goes in clear inside the session, verified against the
/// test CA with the host name checked.
#[tokio::test]
async fn caching_sha2_full_authentication_over_tls() {
    let pki = TestPki::new(&["localhost"]).unwrap();
    let plugin = AuthPlugin::CachingSha2Password;
    let server = start(with_tls(Mysql8Login::new(USER, PASSWORD, plugin), &pki)).await;
    right_and_wrong(&server, plugin, &[Way::tls(&verify_identity(&pki))]).await;
}

/// A cold cache without TLS (`ssl-mode=DISABLED`, though the server offers
/// TLS): sqlx asks for the server's public key and sends the password
/// encrypted with it. The successful full authentication fills the cache,
/// so the next connection takes the fast path, as on MySQL.
#[tokio::test]
async fn caching_sha2_full_authentication_with_rsa_then_fast() {
    let pki = TestPki::new(&["localhost"]).unwrap();
    let plugin = AuthPlugin::CachingSha2Password;
    let server = start(with_tls(Mysql8Login::new(USER, PASSWORD, plugin), &pki)).await;
    right_and_wrong(&server, plugin, &[Way::rsa()]).await;
    let full = server.logins();

    let again = target(
        "rsa-right",
        &server,
        "127.0.0.1",
        PASSWORD,
        "ssl-mode=DISABLED",
    );
    assert_logged_in(&poll_once(&again).await, "rsa-right");
    let fast = login(
        plugin,
        AuthPath::FastScramble,
        false,
        LoginOutcome::Accepted,
    );
    assert_logins(&server, &[full.as_slice(), &[fast]].concat());
}

/// An account with sha256_password on a server whose default is
/// caching_sha2_password (MySQL 8's): the client is switched to
/// sha256_password and sends the password RSA-encrypted without TLS, in
/// clear inside TLS.
#[tokio::test]
async fn sha256_password_with_rsa_and_over_tls() {
    let pki = TestPki::new(&["localhost"]).unwrap();
    let plugin = AuthPlugin::Sha256Password;
    let server = start(with_tls(Mysql8Login::new(USER, PASSWORD, plugin), &pki)).await;
    let tls = verify_identity(&pki);
    right_and_wrong(&server, plugin, &[Way::rsa(), Way::tls(&tls)]).await;
}

/// A server whose *default* plugin is sha256_password
/// (`default_authentication_plugin = sha256_password`): over TLS the
/// password goes in the handshake response and the login passes. Without
/// TLS, sqlx 0.9 sends its public key request as a packet of its own
/// *before* the handshake response (the protocol puts it inside, as the
/// auth response), so the server reads a 1-byte handshake response and
/// answers "Bad handshake" (1043): a known limitation, documented in
/// docs/collectors/mysql.md. If sqlx changes this, this test fails; then
/// the docs change with it.
#[tokio::test]
async fn sha256_password_as_the_default_plugin_logs_in_over_tls_only() {
    let pki = TestPki::new(&["localhost"]).unwrap();
    let account = Mysql8Login::new(USER, PASSWORD, AuthPlugin::Sha256Password)
        .default_plugin(AuthPlugin::Sha256Password);
    let server = start(with_tls(account, &pki)).await;
    let failures = poll_once(
        &[
            target(
                "tls",
                &server,
                "localhost",
                PASSWORD,
                &verify_identity(&pki),
            ),
            target("plain", &server, "127.0.0.1", PASSWORD, "ssl-mode=DISABLED"),
        ]
        .concat(),
    )
    .await;
    assert_logged_in(&failures, "tls");
    let plain = &failures["plain"];
    assert!(
        plain.reason == ErrorReason::Connect && plain.message.contains("1043: Bad handshake"),
        "{plain:?}"
    );
    let over_tls = LoginRecord {
        switched: false,
        ..login(
            AuthPlugin::Sha256Password,
            AuthPath::ClearPasswordOverTls,
            true,
            LoginOutcome::Accepted,
        )
    };
    let broken = LoginRecord {
        user: String::new(),
        plugin: AuthPlugin::Sha256Password,
        switched: false,
        public_key_sent: false,
        tls: false,
        path: AuthPath::NotReached,
        outcome: LoginOutcome::Failed(
            "bad handshake response: the packet ends 3 bytes early".into(),
        ),
    };
    assert_logins(&server, &[over_tls, broken]);
}
