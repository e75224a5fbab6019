//! Throwaway certificates for TLS tests, written as PEM files: a CA that
//! signs a server certificate (for `localhost` only, so that connecting by
//! `127.0.0.1` is a hostname mismatch) and a client certificate, and a
//! second, unrelated CA (the "wrong CA").

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// The files of one test PKI, in a temp dir removed on drop.
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    /// Makes the certificates. `server_names`: the server certificate's
    /// subject alternative names (e.g. `["localhost"]`).
    pub fn new(server_names: &[&str]) -> Result<Self, rcgen::Error> {
        let dir = tempfile::tempdir().map_err(|_| rcgen::Error::CouldNotParseKeyPair)?;
        let make_ca =
            |name: &str| -> Result<(rcgen::Certificate, Issuer<'static, KeyPair>), rcgen::Error> {
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, name);
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                let cert = params.self_signed(&key)?;
                Ok((cert, Issuer::new(params, key)))
            };
        let (ca, issuer) = make_ca("perfwatch test CA")?;
        let (wrong_ca, _) = make_ca("another CA")?;
        let server_key = KeyPair::generate()?;
        let names: Vec<String> = server_names.iter().map(|s| s.to_string()).collect();
        let server = CertificateParams::new(names.clone())?.signed_by(&server_key, &issuer)?;
        // The same names, valid in 2000 only.
        let expired_key = KeyPair::generate()?;
        let mut expired_params = CertificateParams::new(names)?;
        expired_params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        expired_params.not_after = rcgen::date_time_ymd(2000, 12, 31);
        let expired = expired_params.signed_by(&expired_key, &issuer)?;
        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(vec!["perfwatch".to_owned()])?;
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "perfwatch");
        let client = client_params.signed_by(&client_key, &issuer)?;
        let files = [
            ("ca.crt", ca.pem()),
            ("wrong-ca.crt", wrong_ca.pem()),
            ("server.crt", server.pem()),
            ("server.key", server_key.serialize_pem()),
            ("expired.crt", expired.pem()),
            ("expired.key", expired_key.serialize_pem()),
            ("client.crt", client.pem()),
            ("client.key", client_key.serialize_pem()),
        ];
        for (name, pem) in files {
            std::fs::write(dir.path().join(name), pem)
                .map_err(|_| rcgen::Error::CouldNotParseCertificate)?;
        }
        Ok(Self { dir })
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// One of `ca.crt`, `wrong-ca.crt`, `server.crt`, `server.key`,
    /// `expired.crt`, `expired.key` (the server's names, expired in 2000),
    /// `client.crt`, `client.key`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A file's path as a string, for configs.
    pub fn path(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }
}
