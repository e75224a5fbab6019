//! Secrets (passwords, API keys) as a type that never prints itself, so a
//! `{:?}` of a config or an error message cannot leak one into the logs.

use std::fmt;
use std::path::Path;

/// A secret string; `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that sends it to a server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Reads a `*_file` secret: the whole file, without a trailing newline (what
/// `echo pw > file` and Kubernetes secret mounts produce).
pub fn read_secret_file(path: &Path) -> Result<Secret, String> {
    std::fs::read_to_string(path)
        .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_owned()))
        .map_err(|e| format!("cannot read secret file \"{}\": {e}", path.display()))
}
