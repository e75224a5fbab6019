//! TLS, client certificates, basic auth, HTTP hardening, and that secrets
//! never appear in logs, /metrics, the landing page or error messages.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use perfwatch_testbench::{RedisServer, free_port};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

struct Pki {
    dir: tempfile::TempDir,
    ca_der: Vec<u8>,
    client_cert: Vec<u8>,
    client_key: Vec<u8>,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["prometheus".into()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.crt"), server.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
    Pki {
        dir,
        ca_der: ca_cert.der().to_vec(),
        client_cert: client.der().to_vec(),
        client_key: client_key.serialize_der(),
    }
}

fn web_config(dir: &Path, client_auth: &str, users: &[(&str, &str)]) -> std::path::PathBuf {
    let mut yaml = format!(
        "tls_server_config:\n  cert_file: {d}/server.crt\n  key_file: {d}/server.key\n  client_ca_file: {d}/ca.crt\n  client_auth_type: {client_auth}\n",
        d = dir.display()
    );
    if !users.is_empty() {
        yaml.push_str("basic_auth_users:\n");
        for (u, pw) in users {
            yaml.push_str(&format!("  {u}: {}\n", bcrypt::hash(pw, 4).unwrap()));
        }
    }
    let path = dir.join(format!("web-{client_auth}.yml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

async fn start(web_path: &Path) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = perfwatch::config::Config::from_source("t.toml", "", &|_| None).unwrap();
    let web = perfwatch::WebOptions {
        config: perfwatch::web::WebConfig::load(web_path).unwrap(),
        config_path: Some(web_path.to_owned()),
        enable_reload: true,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(perfwatch::run_with(config, listener, web, async {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// One HTTPS GET; `Err` when the TLS handshake or connection fails.
async fn https_get(
    addr: SocketAddr,
    pki: &Pki,
    client_cert: bool,
    auth: Option<&str>,
) -> Result<u16, String> {
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone().into()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if client_cert {
        builder
            .with_client_auth_cert(
                vec![pki.client_cert.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(pki.client_key.clone().into()),
            )
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let req = common::get_request("/metrics", "localhost", auth);
    let resp = common::exchange(&mut tls, &req).await?;
    let text = String::from_utf8_lossy(&resp);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {text:?}"))
}

fn plain_get(addr: SocketAddr, request: &str) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn tls_with_basic_auth() {
    let pki = pki();
    let path = web_config(
        pki.dir.path(),
        "NoClientCert",
        &[("prometheus", "correct horse")],
    );
    let (addr, _stop) = start(&path).await;
    assert_eq!(
        https_get(addr, &pki, false, Some("prometheus:correct horse")).await,
        Ok(200)
    );
    assert_eq!(
        https_get(addr, &pki, false, Some("prometheus:wrong")).await,
        Ok(401)
    );
    assert_eq!(
        https_get(addr, &pki, false, Some("nobody:correct horse")).await,
        Ok(401)
    );
    assert_eq!(https_get(addr, &pki, false, None).await, Ok(401));
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = tokio::task::spawn_blocking(move || {
        plain_get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    })
    .await
    .unwrap();
    assert!(
        !plain.as_ref().is_ok_and(|r| r.starts_with("HTTP/1.1 200")),
        "{plain:?}"
    );
}

#[tokio::test]
async fn client_certificates_are_required_when_configured() {
    let pki = pki();
    let path = web_config(pki.dir.path(), "RequireAndVerifyClientCert", &[]);
    let (addr, _stop) = start(&path).await;
    assert_eq!(https_get(addr, &pki, true, None).await, Ok(200));
    assert!(
        https_get(addr, &pki, false, None).await.is_err(),
        "no client cert must fail"
    );
}

#[test]
fn web_config_errors_name_the_key() {
    let (_dir, p) = common::temp_file(
        "w.yml",
        "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
    );
    let e = perfwatch::web::WebConfig::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("tls_server_config.cert_file") && e.contains("/nonexistent.crt"),
        "{e}"
    );
}

#[tokio::test]
async fn http_hardening() {
    let pw = common::Perfwatch::start("").await;
    let addr = pw.addr;
    let out = tokio::task::spawn_blocking(move || {
        let huge = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
        [
            plain_get(addr, &huge).unwrap(),
            plain_get(addr, "PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap(),
            plain_get(addr, "GARBAGE\r\n\r\n").unwrap(),
            plain_get(addr, "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap(),
        ]
    })
    .await
    .unwrap();
    assert!(
        out[0].starts_with("HTTP/1.1 431"),
        "oversized headers: {:?}",
        &out[0][..out[0].len().min(80)]
    );
    assert!(out[1].starts_with("HTTP/1.1 405"), "PUT: {}", out[1]);
    assert!(
        out[2].starts_with("HTTP/1.1 400") || out[2].is_empty(),
        "garbage: {}",
        out[2]
    );
    assert!(out[3].starts_with("HTTP/1.1 200"), "HEAD: {}", out[3]);
    // Still serving after all that.
    assert!(pw.scrape().await.contains("perfwatch_build_info"));
    pw.stop().await;
}

#[test]
fn secrets_never_leak_into_logs_metrics_or_pages() {
    const REDIS_PW: &str = "rEdIs-pAsSwOrD-5831";
    const URL_PW: &str = "uRl-pAsSwOrD-2291";
    const WRONG_PW: &str = "wRoNg-pAsSwOrD-7777";
    let redis = RedisServer::start(&[("requirepass", REDIS_PW)]).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let down_port = free_port().unwrap();
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            "[global]\ninterval = \"300ms\"\ntimeout = \"200ms\"\n\
             [[redis]]\nname = \"ok\"\nurl = \"redis://127.0.0.1:{port}/0\"\npassword = \"${{REDIS_PW}}\"\n\
             [[redis]]\nname = \"wrongpw\"\nurl = \"redis://:{WRONG_PW}@127.0.0.1:{port}/0\"\n\
             [[redis]]\nname = \"down\"\nurl = \"redis://user:{URL_PW}@127.0.0.1:{down_port}/0\"\n",
            port = redis.port()
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port().unwrap());
    let child = Command::new(env!("CARGO_BIN_EXE_perfwatch"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address={listen}"))
        .arg("--log.level=debug")
        .env("REDIS_PW", REDIS_PW)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let get = |path: &str| -> String {
        let addr: SocketAddr = listen.parse().unwrap();
        plain_get(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .unwrap_or_default()
    };
    // Wait for several polls of every target, including the failing ones.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut metrics = String::new();
    while std::time::Instant::now() < deadline {
        metrics = get("/metrics");
        if metrics.contains("perfwatch_target_up{collector=\"redis\",target=\"ok\"} 1")
            && metrics.contains("perfwatch_poll_errors_total{collector=\"redis\",target=\"wrongpw\",reason=\"auth\"} 1")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        metrics.contains("perfwatch_target_up{collector=\"redis\",target=\"ok\"} 1"),
        "{metrics}"
    );
    let page = get("/");
    assert!(
        page.contains("wrongpw"),
        "landing page lists the failing target: {page}"
    );
    // Reload with a broken config: the error message is shown too.
    std::fs::write(
        &config,
        format!("[[redis]]\nname = \"x\"\nurl = \"redis://:{URL_PW}@h/0\"\ncolour = 1\n"),
    )
    .unwrap();
    let reload = {
        let addr: SocketAddr = listen.parse().unwrap();
        plain_get(
            addr,
            "POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
    };
    assert!(reload.contains("colour"), "{reload}");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("poll failed"),
        "the failures were logged: {logs}"
    );
    for secret in [REDIS_PW, URL_PW, WRONG_PW] {
        for (what, text) in [
            ("logs", &*logs),
            ("/metrics", &metrics),
            ("landing page", &page),
            ("reload reply", &reload),
        ] {
            assert!(!text.contains(secret), "{what} contains a secret:\n{text}");
        }
    }
}
