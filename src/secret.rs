//! Secrets (passwords, API keys) as a type that never prints itself, so a
//! `{:?}` of a config or an error message cannot leak one into the logs; and
//! [`redact`], the one function that masks secrets in any text we show.

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

/// Config keys whose values are or may carry secrets: a password, a DSN or
/// URL with credentials in it, request headers (API keys). Error messages
/// about them never quote the value.
pub const SECRET_KEYS: [&str; 5] = ["password", "sentinel_password", "dsn", "url", "headers"];

/// Whether a dotted key path (`redis[1].password`, `http[0].headers.X-Key`)
/// is or lies under a secret-bearing key.
pub fn is_secret_key(path: &str) -> bool {
    path.split('.')
        .map(|segment| segment.split('[').next().unwrap_or(segment))
        .any(|segment| SECRET_KEYS.contains(&segment))
}

/// Largest secret file read: a password or token is far smaller, and a
/// mistaken path (`/dev/zero`, a log file) must not fill the memory.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Reads a `*_file` secret: the whole file, without a trailing newline (what
/// `echo pw > file` and Kubernetes secret mounts produce). Only a regular
/// file (symlinks followed, as Kubernetes mounts use them) of at most
/// [`MAX_SECRET_FILE_BYTES`] is read: a FIFO would block the read forever
/// and a device never ends, so both are refused before they are opened.
pub fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let text = crate::local_file::read_regular_text(path, MAX_SECRET_FILE_BYTES)
        .map_err(|e| format!("cannot read secret file \"{}\": {e}", path.display()))?;
    Ok(Secret(text.trim_end_matches(['\n', '\r']).to_owned()))
}

/// Checks a target's `password` and `password_file` keys, pushing problems
/// as `(key, message)`: both set, or the file unreadable (it is read even
/// when `password` is set too, to report both). The configured password
/// (`password` first, else the file's), if any.
pub(crate) fn check_password_keys(
    password: Option<&Secret>,
    password_file: Option<&Path>,
    errors: &mut Vec<(String, String)>,
) -> Option<Secret> {
    if password.is_some() && password_file.is_some() {
        errors.push((
            "password_file".into(),
            "set password or password_file, not both".into(),
        ));
    }
    let from_file = password_file.and_then(|path| {
        read_secret_file(path)
            .map_err(|e| errors.push(("password_file".into(), e)))
            .ok()
    });
    password.cloned().or(from_file)
}

/// Schemes whose bare `user@host` names a user; elsewhere (`redis://pw@host`,
/// `http://token@host`) a bare userinfo is how clients pass a password.
const USER_ONLY_SCHEMES: &[&str] = &["postgres", "postgresql", "mysql", "mariadb"];

/// The one redaction function for every secret-bearing string: masks the
/// password of every URL/DSN in `text` (userinfo and `…password=` query
/// parameters) and every occurrence of a known secret value, raw or
/// percent-decoded, with `***`. Used for DSNs shown in messages and for
/// server error texts that may echo what we sent.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(sep) = rest.find("://") {
        let scheme_start = rest[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let after = &rest[sep + 3..];
        let url_end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
            .unwrap_or(after.len());
        out.push_str(&rest[..sep + 3]);
        out.push_str(&mask_url_body(&rest[scheme_start..sep], &after[..url_end]));
        rest = &after[url_end..];
    }
    out.push_str(rest);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "***");
        let decoded = percent_decode(secret);
        if decoded != *secret && !decoded.is_empty() {
            out = out.replace(decoded.as_str(), "***");
        }
    }
    out
}

/// Masks what follows `scheme://`: the userinfo's password and password
/// query parameters.
fn mask_url_body(scheme: &str, body: &str) -> String {
    let authority_end = body.find(['/', '?', '#']).unwrap_or(body.len());
    let mut out = match body[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &body[..at];
            let masked = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None if userinfo.is_empty() => String::new(),
                None if USER_ONLY_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) => {
                    userinfo.to_owned()
                }
                None => "***".to_owned(),
            };
            format!("{masked}{}", &body[at..])
        }
        None => body.to_owned(),
    };
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().ends_with("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// `%XX` escapes decoded (invalid ones kept as they are).
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_table() {
        let cases = [
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            ("redis://:secret@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://user:secret@host/1", "redis://user:***@host/1"),
            ("rediss://secret@host", "rediss://***@host"),
            ("unix:///run/redis.sock", "unix:///run/redis.sock"),
            ("redis://u:p@ss@host/0", "redis://u:***@host/0"),
            ("not a url", "not a url"),
            ("mysql://u:secret@h/db", "mysql://u:***@h/db"),
            ("mysql://u@h/db", "mysql://u@h/db"),
            ("mysql://h:3306", "mysql://h:3306"),
            (
                "mysql://u:p@ss@h/d?socket=/x@y",
                "mysql://u:***@h/d?socket=/x@y",
            ),
            (
                "postgres://perfwatch@127.0.0.1:6432/pgbouncer",
                "postgres://perfwatch@127.0.0.1:6432/pgbouncer",
            ),
            (
                "postgresql://u:p@ss@h:5432/app",
                "postgresql://u:***@h:5432/app",
            ),
            (
                "postgres://u@h/pgbouncer?sslmode=disable&password=secret",
                "postgres://u@h/pgbouncer?sslmode=disable&password=***",
            ),
            (
                "postgres://h/app?user=u&sslpassword=k&password=secret",
                "postgres://h/app?user=u&sslpassword=***&password=***",
            ),
            (
                "postgres://u:s@h?sslmode=disable",
                "postgres://u:***@h?sslmode=disable",
            ),
            ("http://u:secret@h:80/x", "http://u:***@h:80/x"),
            ("http://secret@h/x", "http://***@h/x"),
            ("http://h/x?next=a@b", "http://h/x?next=a@b"),
            (
                "connecting to \"postgres://u:pw@h/db\" failed",
                "connecting to \"postgres://u:***@h/db\" failed",
            ),
            (
                "a redis://:x@a and http://t@b/ too",
                "a redis://:***@a and http://***@b/ too",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text, &[]), want, "{text}");
        }
    }

    #[test]
    fn secret_files_are_bounded_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("pw");
        std::fs::write(&ok, "hunter2\n").unwrap();
        assert_eq!(read_secret_file(&ok).unwrap().expose(), "hunter2");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        let e = read_secret_file(&big).unwrap_err();
        assert!(e.contains("larger than 65536 bytes"), "{e}");
        let e = read_secret_file(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Returns at once instead of blocking until a writer opens the FIFO.
        let e = read_secret_file(&fifo).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let e = read_secret_file(&dir.path().join("missing")).unwrap_err();
        assert!(e.contains("cannot read secret file"), "{e}");
    }

    #[test]
    fn known_secrets_are_masked_raw_and_decoded() {
        assert_eq!(
            redact("bad s@cret and s%40cret", &["s%40cret"]),
            "bad *** and ***"
        );
        assert_eq!(redact("nothing here", &[""]), "nothing here");
    }
}
