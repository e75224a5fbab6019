//! TLS to the targets (issue 12), against real servers the test starts with
//! certificates it makes (`perfwatch_testbench::pki`): the right CA is up,
//! a wrong CA, a hostname mismatch or a missing client certificate is down
//! with `reason="tls"` and a message naming the cause, and a connection
//! does one handshake, not one per poll.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{Perfwatch, assert_up_down, config, failed_polls, poll_errors, wait_polls};
use perfwatch_testbench::pki::TestPki;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

const POLL_WAIT: Duration = Duration::from_secs(15);
const GLOBAL: &str = "interval = \"500ms\"\ntimeout = \"400ms\"";

/// The server's certificate, counting every full handshake (session
/// resumption is off, so each TLS connection is one call).
#[derive(Debug)]
struct CountingCert {
    key: Arc<CertifiedKey>,
    handshakes: Arc<AtomicU64>,
}

impl ResolvesServerCert for CountingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.handshakes.fetch_add(1, Ordering::SeqCst);
        Some(self.key.clone())
    }
}

/// An HTTPS app (health and pool endpoints) with `pki`'s server
/// certificate; `client_ca`: require a client certificate signed by the CA.
async fn https_app(pki: &TestPki, server: &str, client_ca: bool) -> (SocketAddr, Arc<AtomicU64>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pki.file(&format!("{server}.crt")))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.file(&format!("{server}.key"))).unwrap();
    let certified = CertifiedKey::from_der(chain, key, &provider).unwrap();
    let handshakes = Arc::new(AtomicU64::new(0));
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if client_ca {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(pki.file("ca.crt")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut server = builder.with_cert_resolver(Arc::new(CountingCert {
        key: Arc::new(certified),
        handshakes: handshakes.clone(),
    }));
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    server.send_tls13_tickets = 0;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let router = Router::new()
        .route(
            "/health",
            get(|| async { r#"{"status":"healthy","checks":{"database":{"status":"healthy"}}}"# }),
        )
        .route(
            "/pool",
            get(|| async { r#"{"pool_size":10,"checked_out":4,"max_overflow":0}"# }),
        );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server));
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .serve(router.into_make_service())
            .await
            .unwrap();
    });
    (addr, handshakes)
}

/// A plain HTTP app, to point https:// at.
async fn plain_app() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/health", get(|| async { "{}" }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn http_target(name: &str, url: &str, kind: &str, tls: &str) -> String {
    format!("[[http]]\nname = \"{name}\"\nurl = \"{url}\"\nkind = \"{kind}\"\n{tls}")
}

fn tls_table(kind: &str, lines: &[(&str, String)]) -> String {
    let mut t = format!("[{kind}.tls]\n");
    for (k, v) in lines {
        t.push_str(&format!("{k} = \"{v}\"\n"));
    }
    t
}

#[tokio::test]
async fn https_app_endpoints_are_verified_and_keep_one_handshake() {
    let pki = TestPki::new(&["localhost"]).unwrap();
    let (app, _) = https_app(&pki, "server", false).await;
    let (counted, handshakes) = https_app(&pki, "server", false).await;
    let (mtls, _) = https_app(&pki, "server", true).await;
    let (expired, _) = https_app(&pki, "expired", false).await;
    let plain = plain_app().await;
    let ca = || ("ca_file", pki.path("ca.crt"));
    let client = || {
        [
            ca(),
            ("cert_file", pki.path("client.crt")),
            ("key_file", pki.path("client.key")),
        ]
    };
    let by_name = |server_name: &str| vec![ca(), ("server_name", server_name.to_owned())];
    // (name, host, app, path and kind, tls table lines; none: no table).
    #[rustfmt::skip]
    let cases = vec![
        ("counted", "localhost", counted, "health", vec![ca()]),
        ("pool", "localhost", app, "pool", vec![ca()]),
        ("wrong-ca", "localhost", app, "health", vec![("ca_file", pki.path("wrong-ca.crt"))]),
        // The certificate names localhost only.
        ("by-ip", "127.0.0.1", app, "health", vec![ca()]),
        ("by-ip-named", "127.0.0.1", app, "health", by_name("localhost")),
        ("wrong-name", "localhost", app, "health", by_name("db.example.org")),
        ("no-client-cert", "localhost", mtls, "health", vec![ca()]),
        ("client-cert", "localhost", mtls, "health", client().to_vec()),
        ("expired", "localhost", expired, "health", vec![ca()]),
        // The system roots do not know the test CA.
        ("system-roots", "localhost", app, "health", vec![]),
        ("tls-to-plain", "localhost", plain, "health", vec![]),
    ];
    let targets: String = cases
        .into_iter()
        .map(|(name, host, addr, kind, tls)| {
            let url = format!("https://{host}:{}/{kind}", addr.port());
            let tls = if tls.is_empty() {
                String::new()
            } else {
                tls_table("http", &tls)
            };
            http_target(name, &url, kind, &tls)
        })
        .collect();
    let pw = Perfwatch::start(&config(GLOBAL, &targets)).await;
    let up = ["counted", "pool", "by-ip-named", "client-cert"];
    // The failing targets, each with the cause its status-page card names.
    let down_causes = [
        ("wrong-ca", "unknown authority"),
        ("by-ip", "hostname mismatch"),
        ("wrong-name", "hostname mismatch"),
        ("no-client-cert", "client certificate required"),
        ("expired", "has expired"),
        ("system-roots", "unknown authority"),
        ("tls-to-plain", "does not speak TLS"),
    ];
    let down = down_causes.map(|(t, _)| t);
    let body = wait_polls(&pw, "counted", 4.0, POLL_WAIT).await;
    for t in &up[1..] {
        wait_polls(&pw, t, 1.0, POLL_WAIT).await;
    }
    let body = pw
        .wait_for(POLL_WAIT, "every failing target failed twice", |b| {
            down.iter()
                .all(|t| poll_errors(b, t, "tls").unwrap_or(0.0) >= 2.0)
                .then(|| b.to_owned())
        })
        .await
        .max(body);
    assert_up_down(&body, "http", &up, &down);
    let pool = [("source", "app"), ("target", "pool")];
    assert_eq!(
        common::value(&body, "perfwatch_pool_saturation_ratio", &pool),
        Some(0.4)
    );
    // One handshake for all the polls of a target: the connection is kept.
    let polls = common::polls(&body, "counted");
    assert!(polls >= 4.0);
    // (A poll that fails, e.g. times out on a loaded machine, drops its
    // connection on purpose; only those may add a handshake.)
    let handshakes = handshakes.load(Ordering::SeqCst) as f64;
    let failed = failed_polls(&body, "counted");
    assert!(
        handshakes >= 1.0 && handshakes <= 1.0 + failed,
        "{handshakes} handshakes for {polls} polls, {failed} of them failed"
    );

    common::assert_causes(&pw, "http", &down_causes).await;
    pw.stop().await;
}

fn redis_target(name: &str, url: &str, tls: &str) -> String {
    format!("[[redis]]\nname = \"{name}\"\nurl = \"{url}\"\n{tls}")
}

/// `redis-server --port 0 --tls-port N --tls-auth-clients yes`.
#[tokio::test]
async fn redis_over_tls_is_verified_both_ways_and_keeps_one_handshake() {
    let pki = TestPki::new(&["localhost"]).unwrap();
    let redis =
        perfwatch_testbench::RedisServer::start_tls(pki.dir()).unwrap_or_else(|e| panic!("{e}"));
    let port = redis.port();
    let client = |extra: &[(&str, String)]| {
        let mut lines = vec![
            ("ca_file", pki.path("ca.crt")),
            ("cert_file", pki.path("client.crt")),
            ("key_file", pki.path("client.key")),
        ];
        lines.extend(extra.iter().cloned());
        tls_table("redis", &lines)
    };
    let targets = [
        redis_target("ok", &redis.url(), &client(&[])),
        redis_target(
            "by-ip-named",
            &format!("rediss://127.0.0.1:{port}/0"),
            &client(&[("server_name", "localhost".into())]),
        ),
        redis_target(
            "wrong-ca",
            &redis.url(),
            &tls_table(
                "redis",
                &[
                    ("ca_file", pki.path("wrong-ca.crt")),
                    ("cert_file", pki.path("client.crt")),
                    ("key_file", pki.path("client.key")),
                ],
            ),
        ),
        redis_target(
            "by-ip",
            &format!("rediss://127.0.0.1:{port}/0"),
            &client(&[]),
        ),
        redis_target(
            "no-client-cert",
            &redis.url(),
            &tls_table("redis", &[("ca_file", pki.path("ca.crt"))]),
        ),
        redis_target("plaintext", &format!("redis://localhost:{port}/0"), ""),
    ]
    .concat();
    let pw = Perfwatch::start(&config(GLOBAL, &targets)).await;
    // The failing targets, each with the cause its status-page card names.
    let down_causes = [
        ("wrong-ca", "unknown authority"),
        ("by-ip", "hostname mismatch"),
        ("no-client-cert", "client certificate required"),
        ("plaintext", "rediss://"),
    ];
    let down = down_causes.map(|(t, _)| t);
    // All but plaintext fail in TLS; plaintext to a TLS port fails in the
    // connect, the protocol or TLS.
    let tls_down = &down[..3];
    let first = wait_polls(&pw, "ok", 2.0, POLL_WAIT).await;
    let body = pw
        .wait_for(POLL_WAIT, "every failing target failed twice", |b| {
            let tls_failures = tls_down
                .iter()
                .all(|t| poll_errors(b, t, "tls").unwrap_or(0.0) >= 2.0);
            let plaintext: f64 = ["connect", "protocol", "tls"]
                .iter()
                .map(|r| poll_errors(b, "plaintext", r).unwrap_or(0.0))
                .sum();
            (tls_failures && plaintext >= 2.0 && common::polls(b, "ok") >= 5.0)
                .then(|| b.to_owned())
        })
        .await;
    let up = ["ok", "by-ip-named"];
    assert_up_down(&body, "redis", &up, &down);
    // No new connection (so no new handshake) between poll 2 and poll 5:
    // the server counts every accepted connection.
    let accepted =
        |b: &str| common::value(b, "redis_connections_received_total", &[("target", "ok")]);
    let new_connections = accepted(&body).unwrap() - accepted(&first).unwrap();
    let failed = failed_polls(&body, "ok") - failed_polls(&first, "ok");
    assert!(
        new_connections <= failed,
        "{new_connections} reconnects, {failed} failed polls"
    );

    common::assert_causes(&pw, "redis", &down_causes).await;
    pw.stop().await;
}

/// A throwaway PostgreSQL with `ssl = on` (the test PKI's server
/// certificate) whose pg_hba.conf takes TCP sessions over TLS only, and
/// wants a client certificate from the role `perfwatch` (the client
/// certificate's CN).
fn tls_only_postgres_in(pki_dir: &std::path::Path) -> perfwatch_testbench::PostgresServer {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let pg = perfwatch_testbench::PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let data = pg.data_dir();
    let owner = std::fs::metadata(data).unwrap();
    for name in ["server.crt", "server.key", "ca.crt"] {
        let to = data.join(name);
        std::fs::copy(pki_dir.join(name), &to).unwrap();
        std::os::unix::fs::chown(&to, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\n\
         hostssl all perfwatch 127.0.0.1/32 trust clientcert=verify-full\n\
         hostssl all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    // One statement per call: ALTER SYSTEM refuses a transaction block.
    for sql in [
        "ALTER SYSTEM SET ssl_cert_file = 'server.crt'",
        "ALTER SYSTEM SET ssl_key_file = 'server.key'",
        "ALTER SYSTEM SET ssl_ca_file = 'ca.crt'",
        "ALTER SYSTEM SET ssl = on",
        "CREATE ROLE perfwatch LOGIN IN ROLE pg_monitor",
        "SELECT pg_reload_conf()",
    ] {
        pg.psql(sql).unwrap();
    }
    pg
}

/// The SQL clients of the matrix [`sql_tls_targets`] builds: the PostgreSQL
/// and MariaDB tests check the same cases, each in its client's words (a
/// column of the tables below).
const LIBPQ: usize = 0;
/// See [`LIBPQ`].
const MYSQL: usize = 1;

/// The config section and `tls` table of each client.
const SQL_TLS_KINDS: [&str; 2] = ["postgres", "mysql"];

/// The users, for each client against its server ([`tls_only_postgres_in`],
/// [`tls_only_mariadb`]): of the first target, of the others, and the one
/// that needs a client certificate.
const SQL_TLS_USERS: [[&str; 2]; 3] = [
    ["postgres", "tlsok"],
    ["postgres", "root"],
    ["perfwatch", "x509"],
];

/// The DSN parameters, for each client: verify the name (then the CA file),
/// verify the CA only (then the CA file), the client certificate, its key,
/// and plaintext.
#[rustfmt::skip]
const SQL_TLS_PARAMS: [[&str; 2]; 5] = [
    ["sslmode=verify-full&sslrootcert=", "ssl-mode=VERIFY_IDENTITY&ssl-ca="],
    ["sslmode=verify-ca&sslrootcert=", "ssl-mode=VERIFY_CA&ssl-ca="],
    ["&sslcert=", "&ssl-cert="],
    ["&sslkey=", "&ssl-key="],
    ["sslmode=disable", "ssl-mode=DISABLED"],
];

/// The targets of [`sql_tls_targets`] that must be up, whatever the client.
const SQL_TLS_UP: &[&str] = &["verify-full", "table", "verify-ca-by-ip", "client-cert"];

/// The targets of [`sql_tls_targets`] that fail in the TLS handshake,
/// whatever the client: (target, reason, cause).
const SQL_TLS_REFUSED: [(&str, &str, &str); 2] = [
    ("wrong-ca", "tls", "unknown authority"),
    ("by-ip", "tls", "hostname mismatch"),
];

/// The targets both SQL TLS tests check, in this order: verified by name,
/// by the tls table, CA-only by IP, with a client certificate (up); a wrong
/// CA, verified by name but reached by IP, the certificate user without
/// one, and plaintext (down). `dsn` makes the DSN for (user, host, query
/// parameters).
fn sql_tls_targets(
    pki: &TestPki,
    client: usize,
    dsn: impl Fn(&str, &str, &str) -> String,
) -> String {
    let kind = SQL_TLS_KINDS[client];
    let [verify_name, verify_ca, cert, key, plaintext] = SQL_TLS_PARAMS.map(|p| p[client]);
    let [first_user, user, cert_user] = SQL_TLS_USERS.map(|u| u[client]);
    let ca = pki.path("ca.crt");
    let by_name = format!("{verify_name}{ca}");
    let client_files = format!(
        "{by_name}{cert}{}{key}{}",
        pki.path("client.crt"),
        pki.path("client.key")
    );
    let wrong_ca = format!("{verify_name}{}", pki.path("wrong-ca.crt"));
    let target = |name: &str, user: &str, host: &str, params: &str, extra: &str| {
        let dsn = dsn(user, host, params);
        format!("[[{kind}]]\nname = \"{name}\"\ndsn = \"{dsn}\"\n{extra}")
    };
    [
        target("verify-full", first_user, "localhost", &by_name, ""),
        target(
            "table",
            user,
            "localhost",
            "",
            &tls_table(kind, &[("ca_file", ca.clone())]),
        ),
        target(
            "verify-ca-by-ip",
            user,
            "127.0.0.1",
            &format!("{verify_ca}{ca}"),
            "",
        ),
        target("client-cert", cert_user, "localhost", &client_files, ""),
        target("wrong-ca", user, "localhost", &wrong_ca, ""),
        target("by-ip", user, "127.0.0.1", &by_name, ""),
        target("no-client-cert", cert_user, "localhost", &by_name, ""),
        target("plaintext", user, "localhost", plaintext, ""),
    ]
    .concat()
}

/// Runs perfwatch on the matrix's targets for `client` and the `extra`
/// ones, and asserts the outcome: [`SQL_TLS_UP`] up, [`SQL_TLS_REFUSED`]
/// and `down` down, and the sessions `sessions` lists (the `steady`
/// target's) kept over polls.
async fn assert_sql_tls(
    pki: &TestPki,
    client: usize,
    dsn: impl Fn(&str, &str, &str) -> String,
    extra: &str,
    down: &[(&str, &str, &str)],
    steady: &str,
    sessions: impl Fn() -> String,
) {
    let targets = sql_tls_targets(pki, client, dsn) + extra;
    let pw = Perfwatch::start(&config(GLOBAL, &targets)).await;
    let want = common::TlsOutcome {
        kind: SQL_TLS_KINDS[client],
        up: SQL_TLS_UP,
        down: &[&SQL_TLS_REFUSED[..], down].concat(),
        steady: &[steady],
    };
    common::assert_tls_outcome(&pw, &want, POLL_WAIT, sessions).await;
    pw.stop().await;
}

/// `ssl = on`, pg_hba.conf `hostssl` only, and a role with
/// `clientcert=verify-full`: libpq's DSN parameters and the tls table.
#[tokio::test]
async fn postgres_over_tls_follows_libpq_sslmode_and_keeps_one_handshake() {
    let pki = TestPki::new(&["localhost"]).unwrap();
    let dir = pki.dir().to_owned();
    let pg = common::blocking(move || tls_only_postgres_in(&dir)).await;
    // A server without TLS at all (ssl = off, the default).
    let plain = common::blocking(|| {
        perfwatch_testbench::PostgresServer::start(&[]).unwrap_or_else(|e| panic!("{e}"))
    })
    .await;
    let port = pg.port();
    let dsn = |user: &str, host: &str, params: &str| {
        format!("postgres://{user}@{host}:{port}/postgres?{params}")
    };
    let no_tls_server = format!(
        "[[postgres]]\nname = \"no-tls-server\"\n\
         dsn = \"postgres://postgres@127.0.0.1:{}/postgres?sslmode=require\"\n",
        plain.port()
    );
    assert_sql_tls(
        &pki,
        LIBPQ,
        dsn,
        &no_tls_server,
        &[
            ("no-client-cert", "tls", "client certificate required"),
            ("plaintext", "tls", "accepts only TLS"),
            ("no-tls-server", "tls", "does not support TLS"),
        ],
        // The sessions below are the role perfwatch's: this target's.
        "client-cert",
        || {
            pg.psql(
                "SELECT a.pid || ' ' || a.backend_start FROM pg_stat_activity a \
                 JOIN pg_stat_ssl s USING (pid) WHERE s.ssl AND a.usename = 'perfwatch' \
                 AND a.application_name = 'perfwatch' ORDER BY 1",
            )
            .unwrap()
        },
    )
    .await;
}

/// MariaDB with `require_secure_transport = ON` (the test PKI's server
/// certificate), a user `tlsok` and a user `x509` that REQUIREs X509.
fn tls_only_mariadb(pki: &std::path::Path) -> common::Db {
    let (ca, cert, key) = (
        pki.join("ca.crt").display().to_string(),
        pki.join("server.crt").display().to_string(),
        pki.join("server.key").display().to_string(),
    );
    let db = common::start_db(&[
        ("ssl_ca", &ca),
        ("ssl_cert", &cert),
        ("ssl_key", &key),
        ("require_secure_transport", "ON"),
    ]);
    db.server
        .sql(
            "CREATE USER 'tlsok'@'127.0.0.1'; GRANT ALL ON *.* TO 'tlsok'@'127.0.0.1'; \
             CREATE USER 'x509'@'127.0.0.1' REQUIRE X509; GRANT ALL ON *.* TO 'x509'@'127.0.0.1';",
        )
        .unwrap();
    db
}

/// `require_secure_transport = ON` and a `REQUIRE X509` account: the
/// mysql client's `ssl-mode` parameters and the tls table.
#[tokio::test]
async fn mariadb_over_tls_follows_ssl_mode_and_keeps_one_handshake() {
    let pki = TestPki::new(&["localhost"]).unwrap();
    let dir = pki.dir().to_owned();
    let db = common::blocking(move || tls_only_mariadb(&dir)).await;
    let port = db.server.port();
    let dsn =
        |user: &str, host: &str, params: &str| format!("mysql://{user}@{host}:{port}/?{params}");
    assert_sql_tls(
        &pki,
        MYSQL,
        dsn,
        "",
        // MariaDB refuses these with "access denied" (1045): reason auth,
        // the message says what it may mean.
        &[
            ("no-client-cert", "auth", "REQUIREs X509"),
            (
                "plaintext",
                "auth",
                "require_secure_transport = ON refuses plaintext",
            ),
        ],
        // The sessions below are the user tlsok's: this target's.
        "verify-full",
        || {
            db.server
                .sql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'tlsok' ORDER BY ID")
                .unwrap()
        },
    )
    .await;
}
