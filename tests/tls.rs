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
use common::{Expected, Perfwatch, assert_values, config, failed_polls, poll_errors, wait_polls};
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
    let port = |a: SocketAddr| a.port();
    let targets = [
        http_target(
            "counted",
            &format!("https://localhost:{}/health", port(counted)),
            "health",
            &tls_table("http", &[ca()]),
        ),
        http_target(
            "pool",
            &format!("https://localhost:{}/pool", port(app)),
            "pool",
            &tls_table("http", &[ca()]),
        ),
        http_target(
            "wrong-ca",
            &format!("https://localhost:{}/health", port(app)),
            "health",
            &tls_table("http", &[("ca_file", pki.path("wrong-ca.crt"))]),
        ),
        // The certificate names localhost only.
        http_target(
            "by-ip",
            &format!("https://127.0.0.1:{}/health", port(app)),
            "health",
            &tls_table("http", &[ca()]),
        ),
        http_target(
            "by-ip-named",
            &format!("https://127.0.0.1:{}/health", port(app)),
            "health",
            &tls_table("http", &[ca(), ("server_name", "localhost".into())]),
        ),
        http_target(
            "wrong-name",
            &format!("https://localhost:{}/health", port(app)),
            "health",
            &tls_table("http", &[ca(), ("server_name", "db.example.org".into())]),
        ),
        http_target(
            "no-client-cert",
            &format!("https://localhost:{}/health", port(mtls)),
            "health",
            &tls_table("http", &[ca()]),
        ),
        http_target(
            "client-cert",
            &format!("https://localhost:{}/health", port(mtls)),
            "health",
            &tls_table("http", &client()),
        ),
        http_target(
            "expired",
            &format!("https://localhost:{}/health", port(expired)),
            "health",
            &tls_table("http", &[ca()]),
        ),
        // The system roots do not know the test CA.
        http_target(
            "system-roots",
            &format!("https://localhost:{}/health", port(app)),
            "health",
            "",
        ),
        http_target(
            "tls-to-plain",
            &format!("https://localhost:{}/health", port(plain)),
            "health",
            "",
        ),
    ]
    .concat();
    let pw = Perfwatch::start(&config(GLOBAL, &targets)).await;
    let body = wait_polls(&pw, "counted", 4.0, POLL_WAIT).await;
    for t in ["pool", "by-ip-named", "client-cert"] {
        wait_polls(&pw, t, 1.0, POLL_WAIT).await;
    }
    let body = pw
        .wait_for(POLL_WAIT, "every failing target failed twice", |b| {
            [
                "wrong-ca",
                "by-ip",
                "wrong-name",
                "no-client-cert",
                "expired",
                "system-roots",
                "tls-to-plain",
            ]
            .iter()
            .all(|t| poll_errors(b, t, "tls").unwrap_or(0.0) >= 2.0)
            .then(|| b.to_owned())
        })
        .await
        .max(body);
    let up = |t: &'static str| [("collector", "http"), ("target", t)];
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_target_up", &up("counted"), Some(1.0)),
        ("perfwatch_target_up", &up("pool"), Some(1.0)),
        ("perfwatch_pool_saturation_ratio", &[("source", "app"), ("target", "pool")], Some(0.4)),
        ("perfwatch_target_up", &up("by-ip-named"), Some(1.0)),
        ("perfwatch_target_up", &up("client-cert"), Some(1.0)),
        ("perfwatch_target_up", &up("wrong-ca"), Some(0.0)),
        ("perfwatch_target_up", &up("by-ip"), Some(0.0)),
        ("perfwatch_target_up", &up("wrong-name"), Some(0.0)),
        ("perfwatch_target_up", &up("no-client-cert"), Some(0.0)),
        ("perfwatch_target_up", &up("system-roots"), Some(0.0)),
        ("perfwatch_target_up", &up("tls-to-plain"), Some(0.0)),
    ];
    assert_values(&body, wanted);
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

    common::assert_causes(
        &pw,
        "http",
        &[
            ("wrong-ca", "unknown authority"),
            ("by-ip", "hostname mismatch"),
            ("wrong-name", "hostname mismatch"),
            ("no-client-cert", "client certificate required"),
            ("expired", "has expired"),
            ("system-roots", "unknown authority"),
            ("tls-to-plain", "does not speak TLS"),
        ],
    )
    .await;
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
    let first = wait_polls(&pw, "ok", 2.0, POLL_WAIT).await;
    let body = pw
        .wait_for(POLL_WAIT, "every failing target failed twice", |b| {
            let tls_failures = ["wrong-ca", "by-ip", "no-client-cert"]
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
    let up = |t: &'static str| [("collector", "redis"), ("target", t)];
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_target_up", &up("ok"), Some(1.0)),
        ("perfwatch_target_up", &up("by-ip-named"), Some(1.0)),
        ("perfwatch_target_up", &up("wrong-ca"), Some(0.0)),
        ("perfwatch_target_up", &up("by-ip"), Some(0.0)),
        ("perfwatch_target_up", &up("no-client-cert"), Some(0.0)),
        ("perfwatch_target_up", &up("plaintext"), Some(0.0)),
    ];
    assert_values(&body, wanted);
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

    common::assert_causes(
        &pw,
        "redis",
        &[
            ("wrong-ca", "unknown authority"),
            ("by-ip", "hostname mismatch"),
            ("no-client-cert", "client certificate required"),
            ("plaintext", "rediss://"),
        ],
    )
    .await;
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
    let ca = pki.path("ca.crt");
    let dsn = |user: &str, host: &str, params: &str| {
        format!("postgres://{user}@{host}:{port}/postgres?{params}")
    };
    let pg_target = |name: &str, dsn: &str, extra: &str| {
        format!("[[postgres]]\nname = \"{name}\"\ndsn = \"{dsn}\"\n{extra}")
    };
    let client_files = format!(
        "&sslcert={}&sslkey={}",
        pki.path("client.crt"),
        pki.path("client.key")
    );
    let targets = [
        pg_target(
            "verify-full",
            &dsn(
                "postgres",
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            "",
        ),
        pg_target(
            "table",
            &dsn("postgres", "localhost", ""),
            &tls_table("postgres", &[("ca_file", ca.clone())]),
        ),
        pg_target(
            "verify-ca-by-ip",
            &dsn(
                "postgres",
                "127.0.0.1",
                &format!("sslmode=verify-ca&sslrootcert={ca}"),
            ),
            "",
        ),
        pg_target(
            "client-cert",
            &dsn(
                "perfwatch",
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca}{client_files}"),
            ),
            "",
        ),
        pg_target(
            "wrong-ca",
            &dsn(
                "postgres",
                "localhost",
                &format!(
                    "sslmode=verify-full&sslrootcert={}",
                    pki.path("wrong-ca.crt")
                ),
            ),
            "",
        ),
        pg_target(
            "by-ip",
            &dsn(
                "postgres",
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            "",
        ),
        pg_target(
            "no-client-cert",
            &dsn(
                "perfwatch",
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            "",
        ),
        pg_target(
            "plaintext",
            &dsn("postgres", "localhost", "sslmode=disable"),
            "",
        ),
        pg_target(
            "no-tls-server",
            &format!(
                "postgres://postgres@127.0.0.1:{}/postgres?sslmode=require",
                plain.port()
            ),
            "",
        ),
    ]
    .concat();
    let pw = Perfwatch::start(&config(GLOBAL, &targets)).await;
    let want = common::TlsOutcome {
        kind: "postgres",
        up: &["verify-full", "table", "verify-ca-by-ip", "client-cert"],
        down: &[
            ("wrong-ca", "tls", "unknown authority"),
            ("by-ip", "tls", "hostname mismatch"),
            ("no-client-cert", "tls", "client certificate required"),
            ("plaintext", "tls", "accepts only TLS"),
            ("no-tls-server", "tls", "does not support TLS"),
        ],
        // The sessions below are the role perfwatch's: this target's.
        steady: &["client-cert"],
    };
    common::assert_tls_outcome(&pw, &want, POLL_WAIT, || {
        pg.psql(
            "SELECT a.pid || ' ' || a.backend_start FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE s.ssl AND a.usename = 'perfwatch' \
             AND a.application_name = 'perfwatch' ORDER BY 1",
        )
        .unwrap()
    })
    .await;
    pw.stop().await;
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
    let ca = pki.path("ca.crt");
    let dsn =
        |user: &str, host: &str, params: &str| format!("mysql://{user}@{host}:{port}/?{params}");
    let target = |name: &str, dsn: &str, extra: &str| {
        format!("[[mysql]]\nname = \"{name}\"\ndsn = \"{dsn}\"\n{extra}")
    };
    let client_files = format!(
        "&ssl-cert={}&ssl-key={}",
        pki.path("client.crt"),
        pki.path("client.key")
    );
    let targets = [
        target(
            "verify-identity",
            &dsn(
                "tlsok",
                "localhost",
                &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
            ),
            "",
        ),
        target(
            "table",
            &dsn("root", "localhost", ""),
            &tls_table("mysql", &[("ca_file", ca.clone())]),
        ),
        target(
            "verify-ca-by-ip",
            &dsn(
                "root",
                "127.0.0.1",
                &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"),
            ),
            "",
        ),
        target(
            "x509",
            &dsn(
                "x509",
                "localhost",
                &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}{client_files}"),
            ),
            "",
        ),
        target(
            "wrong-ca",
            &dsn(
                "root",
                "localhost",
                &format!(
                    "ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
                    pki.path("wrong-ca.crt")
                ),
            ),
            "",
        ),
        target(
            "by-ip",
            &dsn(
                "root",
                "127.0.0.1",
                &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
            ),
            "",
        ),
        target(
            "x509-no-cert",
            &dsn(
                "x509",
                "localhost",
                &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
            ),
            "",
        ),
        target(
            "plaintext",
            &dsn("root", "localhost", "ssl-mode=DISABLED"),
            "",
        ),
    ]
    .concat();
    let pw = Perfwatch::start(&config(GLOBAL, &targets)).await;
    let want = common::TlsOutcome {
        kind: "mysql",
        up: &["verify-identity", "table", "verify-ca-by-ip", "x509"],
        // MariaDB refuses the last two with "access denied" (1045): reason
        // auth, the message says what it may mean.
        down: &[
            ("wrong-ca", "tls", "unknown authority"),
            ("by-ip", "tls", "hostname mismatch"),
            ("x509-no-cert", "auth", "REQUIREs X509"),
            (
                "plaintext",
                "auth",
                "require_secure_transport = ON refuses plaintext",
            ),
        ],
        // The sessions below are the user tlsok's: this target's.
        steady: &["verify-identity"],
    };
    common::assert_tls_outcome(&pw, &want, POLL_WAIT, || {
        db.server
            .sql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'tlsok' ORDER BY ID")
            .unwrap()
    })
    .await;
    pw.stop().await;
}
