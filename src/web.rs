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
//! timeout, a request timeout and a body limit (see [`crate::http::app`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    #[serde(default)]
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
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// `NoClientCert` (default), `RequestClientCert`, `RequireAnyClientCert`,
    /// `VerifyClientCertIfGiven`, `RequireAndVerifyClientCert`.
    #[serde(default)]
    pub client_auth_type: Option<String>,
    /// `TLS12` (default) or `TLS13`.
    #[serde(default)]
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
#[derive(Clone)]
pub struct BasicAuth {
    users: Arc<BTreeMap<String, String>>,
    ok_cache: Arc<Mutex<HashMap<[u8; 32], ()>>>,
}

/// A valid bcrypt hash of a random string: unknown users are checked against
/// it so their requests take as long as a known user's.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DSJLlb0kTBBzvEKyjh1Lq";

impl BasicAuth {
    /// An authenticator over `user → bcrypt hash`.
    pub fn new(users: BTreeMap<String, String>) -> Self {
        Self {
            users: Arc::new(users),
            ok_cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Whether `Authorization: Basic …` carries valid credentials.
    pub fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())))
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        let mut cache = self.ok_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.keys().any(|k| bool::from(k.ct_eq(&digest))) {
            return true;
        }
        drop(cache);
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let ok = bcrypt::verify(&password, hash).unwrap_or(false) && known;
        if ok {
            cache = self.ok_cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= 64 {
                cache.clear();
            }
            cache.insert(digest, ());
        }
        ok
    }
}

async fn require_auth(State(auth): State<BasicAuth>, request: Request, next: Next) -> Response {
    let header = request.headers().get(header::AUTHORIZATION).cloned();
    // bcrypt takes tens of milliseconds: off the async workers.
    let ok = tokio::task::spawn_blocking(move || auth.check(header.as_ref()))
        .await
        .unwrap_or(false);
    if ok {
        next.run(request).await
    } else {
        let mut r = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"perfwatch\""),
        );
        r
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
/// How long a client may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` (TLS when configured) until `shutdown`.
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
    tokio::spawn(async move {
        shutdown.cancelled().await;
        h.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let service = router.into_make_service();
    match &web.tls_server_config {
        Some(tls) => {
            let file = web_config_path.unwrap_or(Path::new("web config"));
            let config = tls.rustls_config(file).map_err(std::io::Error::other)?;
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
            let mut server = axum_server::from_tcp_rustls(listener, rustls)?.handle(handle);
            harden(server.http_builder());
            server.serve(service).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?.handle(handle);
            harden(server.http_builder());
            server.serve(service).await
        }
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
    fn dummy_hash_is_valid() {
        assert!(DUMMY_HASH.parse::<bcrypt::HashParts>().is_ok());
    }
}
