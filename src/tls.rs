//! Client TLS to the targets: the `tls` table every kind accepts
//! (`[redis.tls]`, `[http.tls]`, `[postgres.tls]`, …) with the key names of
//! Prometheus' `tls_config`, checked once into [`TlsReady`], and the one place
//! that turns a TLS failure into words an operator can act on.
//!
//! One TLS stack: rustls with the `ring` provider (the web server already
//! uses it; no OpenSSL, no second provider to audit). Without `ca_file`, the
//! system's roots (`/etc/ssl/certs`, through `rustls-native-certs`) are
//! trusted, as curl and libpq users expect.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

use crate::local_file::{MAX_PEM_OR_WEB_CONFIG_BYTES, read_regular_file};

/// A `tls` table, as Prometheus' `tls_config` names its keys. `Serialize`:
/// a fleet probe's auth set hands its table on to the probed kind's own.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM bundle of the CAs to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for servers that require one.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must be valid for, when it differs
    /// from the host perfwatch connects to (an IP address, a tunnel).
    pub server_name: Option<String>,
    /// Accept any server certificate (encryption without authentication).
    /// Off by default; on, a warning is logged when the config is loaded.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Checked TLS settings: the files read (bounded) and parsed.
#[derive(Clone)]
pub struct TlsReady {
    /// The settings as written.
    pub settings: TlsSettings,
    /// `ca_file`'s certificates; `None`: the system roots.
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// `ca_file` as read, for clients that take PEM (sqlx).
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate chain and key, PEM as read.
    pub client_pem: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsReady")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// `(key, message)` problems, keys relative to the target's table.
pub type TlsProblems = Vec<(String, String)>;

impl TlsSettings {
    /// Reads and checks the files; every problem at once, keyed `tls.<key>`.
    pub fn validate(&self) -> Result<TlsReady, TlsProblems> {
        let mut problems = TlsProblems::new();
        let mut read = |key: &str, path: &Option<PathBuf>| -> Option<Vec<u8>> {
            let path = path.as_ref()?;
            match read_regular_file(path, MAX_PEM_OR_WEB_CONFIG_BYTES) {
                Ok(b) => Some(b),
                Err(e) => {
                    problems.push((
                        format!("tls.{key}"),
                        format!("cannot read \"{}\": {e}", path.display()),
                    ));
                    None
                }
            }
        };
        let ca_pem = read("ca_file", &self.ca_file);
        let cert_pem = read("cert_file", &self.cert_file);
        let key_pem = read("key_file", &self.key_file);
        let ca = ca_pem.as_ref().and_then(|pem| {
            let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
            match certs {
                Ok(c) if !c.is_empty() => Some(c),
                Ok(_) => {
                    problems.push(("tls.ca_file".into(), "holds no PEM certificate".into()));
                    None
                }
                Err(e) => {
                    problems.push(("tls.ca_file".into(), format!("is not PEM: {e}")));
                    None
                }
            }
        });
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => problems.push((
                "tls.key_file".into(),
                "key_file is required with cert_file".into(),
            )),
            (None, Some(_)) => problems.push((
                "tls.cert_file".into(),
                "cert_file is required with key_file".into(),
            )),
            _ => {}
        }
        if let Some(pem) = &cert_pem
            && CertificateDer::pem_slice_iter(pem).next().is_none()
        {
            problems.push(("tls.cert_file".into(), "holds no PEM certificate".into()));
        }
        if let Some(pem) = &key_pem
            && PrivateKeyDer::from_pem_slice(pem).is_err()
        {
            // Never quote the file: it is a private key.
            problems.push((
                "tls.key_file".into(),
                "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".into(),
            ));
        }
        let server_name = match &self.server_name {
            Some(n) => match ServerName::try_from(n.clone()) {
                Ok(s) => Some(s),
                Err(_) => {
                    problems.push((
                        "tls.server_name".into(),
                        format!("\"{n}\" is not a DNS name or IP address"),
                    ));
                    None
                }
            },
            None => None,
        };
        if self.insecure_skip_verify && self.ca_file.is_some() {
            problems.push((
                "tls.insecure_skip_verify".into(),
                "insecure_skip_verify = true ignores ca_file: set one or the other".into(),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        if self.insecure_skip_verify {
            tracing::warn!(
                "tls insecure_skip_verify = true: the server's certificate is not checked (encryption without authentication)"
            );
        }
        Ok(TlsReady {
            settings: self.clone(),
            ca,
            ca_pem,
            client_pem: cert_pem.zip(key_pem),
            server_name,
        })
    }
}

/// Problems of a [`TlsSettings`] made from a DSN's own file parameters
/// (libpq's `sslrootcert`, mysql's `ssl-ca`, …), keyed `dsn` and naming the
/// DSN's parameter (`names`: for the CA, the certificate, the key): the
/// table's key names would mean nothing there.
pub fn as_dsn_problems(problems: TlsProblems, names: [&str; 3]) -> TlsProblems {
    problems
        .into_iter()
        .map(|(key, m)| {
            let name = match key.as_str() {
                "tls.ca_file" => names[0],
                "tls.cert_file" => names[1],
                _ => names[2],
            };
            ("dsn".to_owned(), format!("{name}: {m}"))
        })
        .collect()
}

/// What is wrong with a database target's tls table beside its DSN: TLS
/// parameters in both (`in_dsn` names the DSN's), or a `server_name`, which
/// the database drivers cannot use (sqlx checks the DSN's host;
/// `skip_name_hint` is the DSN setting that skips the name check).
pub fn dsn_table_conflicts(
    table: &TlsSettings,
    in_dsn: &[&str],
    skip_name_hint: &str,
) -> TlsProblems {
    let mut problems = TlsProblems::new();
    if !in_dsn.is_empty() {
        problems.push((
            "tls".into(),
            format!(
                "TLS is set both in the dsn ({}) and in the tls table: use one",
                in_dsn.join(", ")
            ),
        ));
    }
    if table.server_name.is_some() {
        problems.push((
            "tls.server_name".into(),
            format!(
                "server_name is not supported here: the certificate is checked against the dsn's host ({skip_name_hint} skips the name)"
            ),
        ));
    }
    problems
}

impl TlsReady {
    /// A rustls client config: `ca_file` or the system roots, the client
    /// certificate if any, `server_name` checked instead of the host, or no
    /// check with `insecure_skip_verify`.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        self.client_config_noting_requests()
            .map(|(config, _)| config)
    }

    /// [`client_config`](Self::client_config), plus, when no client
    /// certificate is configured, a flag set when the server asks for one.
    /// A TLS 1.3 server checks the certificate after the handshake and may
    /// just close the connection: the flag is how that failure gets its name.
    pub fn client_config_noting_requests(
        &self,
    ) -> Result<(rustls::ClientConfig, Option<CertRequested>), String> {
        install_default_provider();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let custom = |check| -> Arc<dyn ServerCertVerifier> {
            Arc::new(CustomVerifier {
                check,
                algorithms: provider.signature_verification_algorithms,
            })
        };
        let verifier = if self.settings.insecure_skip_verify {
            custom(CertCheck::AcceptAny)
        } else {
            let roots = match &self.ca {
                Some(ca) => {
                    let mut store = RootCertStore::empty();
                    for c in ca {
                        store.add(c.clone()).map_err(|e| format!("ca_file: {e}"))?;
                    }
                    Arc::new(store)
                }
                None => system_roots(),
            };
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots,
                provider.clone(),
            )
            .build()
            .map_err(|e| e.to_string())?;
            match &self.server_name {
                Some(name) => custom(CertCheck::FixedName {
                    inner: webpki,
                    name: name.clone(),
                }),
                None => webpki,
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match &self.client_pem {
            None => {
                let requested = CertRequested::default();
                let config = builder.with_client_cert_resolver(Arc::new(requested.clone()));
                Ok((config, Some(requested)))
            }
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("cert_file: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|_| "key_file holds no PEM private key".to_owned())?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map(|config| (config, None))
                    .map_err(|e| format!("cert_file/key_file: {e}"))
            }
        }
    }
}

/// Makes `ring` the process's default rustls provider (once). Libraries
/// that build their own TLS config still ask for the default (reqwest
/// does, even when handed a config), and the process must have exactly one.
pub fn install_default_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Err: another part already installed one; that one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Set when the server asked for a client certificate that perfwatch does
/// not have (see [`TlsReady::client_config_noting_requests`]).
#[derive(Debug, Clone, Default)]
pub struct CertRequested(Arc<std::sync::atomic::AtomicBool>);

impl CertRequested {
    /// Whether the server asked for a client certificate.
    pub fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The failure to report when the server asked and then dropped us.
    pub const MESSAGE: &str = "tls: client certificate required: the server asked for one and perfwatch has none (set cert_file and key_file)";
}

impl rustls::client::ResolvesClientCert for CertRequested {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The system's roots, loaded once (a few hundred files): an empty store
/// when there are none, which then fails every handshake as "unknown
/// authority", naming the fix.
pub fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            Arc::new(store)
        })
        .clone()
}

/// A server certificate check other than webpki's default (the roots, for
/// the host connected to). The handshake's signatures are checked the same
/// way in both cases, with the provider's algorithms, as webpki does.
#[derive(Debug)]
struct CustomVerifier {
    check: CertCheck,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

/// What [`CustomVerifier`] accepts as the server's certificate.
#[derive(Debug)]
enum CertCheck {
    /// Valid for a configured name instead of the host connected to
    /// (`server_name`).
    FixedName {
        inner: Arc<rustls::client::WebPkiServerVerifier>,
        name: ServerName<'static>,
    },
    /// `insecure_skip_verify`: any certificate (the session is still
    /// encrypted to whoever holds the certificate's key).
    AcceptAny,
}

impl ServerCertVerifier for CustomVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _connected_to: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.check {
            CertCheck::FixedName { inner, name } => {
                inner.verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
            }
            CertCheck::AcceptAny => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// When a TLS failure is among the causes of `err`, what it means in words
/// an operator can act on; `None` when TLS is not the problem.
pub fn describe_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(describe_rustls(t));
        }
        // An io::Error's source() skips the error it wraps (and connectors
        // wrap io errors in io errors): step into it instead.
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// [`describe_failure`] for the database drivers (sqlx): the TLS layer's
/// errors, and the server's own answers that are about TLS (PostgreSQL's
/// pg_hba.conf refusing a plaintext session or wanting a client
/// certificate; MariaDB's `require_secure_transport`).
pub fn describe_sqlx_failure(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Tls(inner) => Some(describe_failure(inner.as_ref()).unwrap_or_else(|| {
            let text = inner.to_string();
            if text.contains("does not support TLS") {
                "tls: the server does not support TLS: enable it on the server, or use sslmode=prefer/disable (ssl-mode=PREFERRED/DISABLED)".into()
            } else {
                format!("tls: {text}")
            }
        })),
        sqlx::Error::Io(io) => describe_failure(io),
        sqlx::Error::Database(d) => {
            let m = d.message().to_ascii_lowercase();
            if m.contains("valid client certificate") || m.contains("certificate authentication failed") {
                Some("tls: client certificate required: the server wants one (set sslcert/sslkey, or cert_file and key_file)".into())
            } else if m.contains("no encryption") {
                Some("tls: the server accepts only TLS connections from here (pg_hba.conf hostssl): set sslmode=require or verify-full".into())
            } else if m == "ssl required" {
                // PgBouncer's answer to a plaintext client under
                // client_tls_sslmode = require or stricter.
                Some("tls: the server accepts only TLS connections (PgBouncer client_tls_sslmode): set sslmode=require or verify-full".into())
            } else if m.contains("insecure transport") || m.contains("require_secure_transport") {
                Some("tls: the server accepts only TLS connections (require_secure_transport): set ssl-mode=REQUIRED or VERIFY_IDENTITY".into())
            } else {
                None
            }
        }
        _ => None,
    }
}

fn describe_rustls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(C::UnknownIssuer) => "tls: unknown authority: the server's certificate is not signed by a trusted CA (ca_file, or the system roots without it)".into(),
        E::InvalidCertificate(C::BadSignature) => "tls: unknown authority: the server's certificate does not verify against the trusted CA of that name".into(),
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "tls: hostname mismatch: the server's certificate is not valid for the name perfwatch checks (the host, or server_name)".into()
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "tls: the server's certificate has expired".into()
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "tls: the server's certificate is not valid yet (check the clocks)".into()
        }
        E::InvalidCertificate(other) => format!("tls: the server's certificate is not acceptable: {other:?}"),
        E::AlertReceived(rustls::AlertDescription::CertificateRequired) => {
            "tls: client certificate required: the server wants one (set cert_file and key_file)".into()
        }
        E::AlertReceived(rustls::AlertDescription::BadCertificate | rustls::AlertDescription::UnknownCA) => {
            "tls: the server rejected perfwatch's client certificate".into()
        }
        E::AlertReceived(alert) => format!("tls: the server ended the handshake ({alert:?})"),
        E::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "tls: the server does not speak TLS on this port (plaintext? use http:// or its TLS port)".into()
        }
        other => format!("tls: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_key_and_never_quote_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "PRIVATE-SECRET-TEXT").unwrap();
        let settings = TlsSettings {
            ca_file: Some(dir.path().join("missing.pem")),
            cert_file: Some(junk.clone()),
            key_file: Some(junk),
            server_name: Some("not a name!".into()),
            insecure_skip_verify: true,
        };
        let problems = settings.validate().unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "tls.ca_file",
                "tls.cert_file",
                "tls.key_file",
                "tls.server_name",
                "tls.insecure_skip_verify"
            ],
            "{problems:?}"
        );
        assert!(
            !format!("{problems:?}").contains("PRIVATE-SECRET-TEXT"),
            "{problems:?}"
        );
        let half = TlsSettings {
            cert_file: Some(dir.path().join("c.pem")),
            ..Default::default()
        };
        let problems = half.validate().unwrap_err();
        assert!(
            problems
                .iter()
                .any(|(k, m)| k == "tls.key_file" && m.contains("required")),
            "{problems:?}"
        );
    }

    #[test]
    fn failures_are_described_by_cause() {
        use rustls::CertificateError as C;
        let cases = [
            (
                rustls::Error::InvalidCertificate(C::UnknownIssuer),
                "unknown authority",
            ),
            (
                rustls::Error::InvalidCertificate(C::NotValidForName),
                "hostname mismatch",
            ),
            (rustls::Error::InvalidCertificate(C::Expired), "expired"),
            (
                rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
                "client certificate required",
            ),
        ];
        for (err, want) in cases {
            // As tokio-rustls hands it over: inside an io::Error.
            let io = std::io::Error::new(std::io::ErrorKind::InvalidData, err);
            let got = describe_failure(&io).unwrap();
            assert!(got.contains(want), "{got}");
        }
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(describe_failure(&plain), None);
    }
}
