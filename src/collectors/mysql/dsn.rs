//! The `[[mysql]]` DSN: `mysql://user[:pw]@host[:port][/db][?params]` (also
//! `mariadb://`), parsed by hand because sqlx's MySQL URL parser accepts
//! parameters perfwatch does not support and its messages may quote the
//! password. Parameters: `socket=/path`, and TLS as the mysql client names
//! it: `ssl-mode` (DISABLED, PREFERRED, REQUIRED, VERIFY_CA,
//! VERIFY_IDENTITY), `ssl-ca`, `ssl-cert`, `ssl-key`.

use crate::secret::redact;

/// The parts of a DSN perfwatch uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dsn {
    /// Host name or address.
    pub host: String,
    /// TCP port (3306 when absent).
    pub port: u16,
    /// User name (percent-decoded).
    pub user: String,
    /// Password in the DSN, if any (percent-decoded).
    pub password: Option<String>,
    /// Default database, if any.
    pub database: Option<String>,
    /// `?socket=/path` for a Unix socket.
    pub socket: Option<String>,
    /// `ssl-mode`, upper-cased and checked.
    pub ssl_mode: Option<String>,
    /// `ssl-ca`, `ssl-cert`, `ssl-key`: file paths.
    pub ssl_ca: Option<String>,
    /// Client certificate file.
    pub ssl_cert: Option<String>,
    /// Client key file.
    pub ssl_key: Option<String>,
}

/// The `ssl-mode` values the mysql client accepts.
pub(crate) const SSL_MODES: [&str; 5] = [
    "DISABLED",
    "PREFERRED",
    "REQUIRED",
    "VERIFY_CA",
    "VERIFY_IDENTITY",
];

/// Parses `mysql://user[:pw]@host[:port][/db][?socket=/path]` (also
/// `mariadb://`). Error messages never contain the password.
pub(crate) fn parse_dsn(dsn: &str) -> Result<Dsn, String> {
    let masked = redact(dsn, &[]);
    let rest = dsn
        .strip_prefix("mysql://")
        .or_else(|| dsn.strip_prefix("mariadb://"))
        .ok_or_else(|| format!("dsn \"{masked}\" must start with mysql:// or mariadb://"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (u, h),
        None => ("", authority),
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        // [::1]:3306
        let (h, after) = h
            .split_once(']')
            .ok_or_else(|| format!("dsn \"{masked}\": unclosed [ in the host"))?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("dsn \"{masked}\": port \"{p}\" is not a number 1-65535"))?,
        None => 3306,
    };
    let (mut socket, mut ssl_mode, mut ssl_ca, mut ssl_cert, mut ssl_key) =
        (None, None, None, None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        // The mysql client takes both ssl-mode and ssl_mode.
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key.replace('_', "-").as_str() {
            "socket" => &mut socket,
            "ssl-mode" => &mut ssl_mode,
            "ssl-ca" => &mut ssl_ca,
            "ssl-cert" => &mut ssl_cert,
            "ssl-key" => &mut ssl_key,
            _ => {
                return Err(format!(
                    "dsn \"{masked}\": unknown parameter \"{key}\" (supported: socket, ssl-mode, ssl-ca, ssl-cert, ssl-key)"
                ));
            }
        };
        *slot = Some(percent_decode(value)?);
    }
    if let Some(mode) = &mut ssl_mode {
        *mode = mode.to_ascii_uppercase();
        if !SSL_MODES.contains(&mode.as_str()) {
            return Err(format!(
                "dsn \"{masked}\": ssl-mode \"{mode}\" is not one of {}",
                SSL_MODES.join(", ")
            ));
        }
    }
    if host.is_empty() && socket.is_none() {
        return Err(format!("dsn \"{masked}\" has no host"));
    }
    let user = percent_decode(user)?;
    if user.is_empty() {
        return Err(format!("dsn \"{masked}\" has no user"));
    }
    let database = (!path.is_empty())
        .then(|| percent_decode(path))
        .transpose()?;
    Ok(Dsn {
        host,
        port,
        user,
        password: password.map(percent_decode).transpose()?,
        database,
        socket,
        ssl_mode,
        ssl_ca,
        ssl_cert,
        ssl_key,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad percent-escape in the dsn".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the dsn is not valid UTF-8 after percent-decoding".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_table() {
        let ok =
            |dsn: &str, host: &str, port: u16, user: &str, pw: Option<&str>, db: Option<&str>| {
                let d = parse_dsn(dsn).unwrap_or_else(|e| panic!("{dsn}: {e}"));
                assert_eq!(
                    (
                        d.host.as_str(),
                        d.port,
                        d.user.as_str(),
                        d.password.as_deref(),
                        d.database.as_deref()
                    ),
                    (host, port, user, pw, db),
                    "{dsn}"
                );
            };
        ok(
            "mysql://perfwatch@127.0.0.1:3306/drive_safe_db",
            "127.0.0.1",
            3306,
            "perfwatch",
            None,
            Some("drive_safe_db"),
        );
        ok(
            "mysql://u:p%40ss@db/x",
            "db",
            3306,
            "u",
            Some("p@ss"),
            Some("x"),
        );
        ok(
            "mariadb://root@[::1]:3307/",
            "::1",
            3307,
            "root",
            None,
            None,
        );
        ok("mysql://u:a:b@h:1", "h", 1, "u", Some("a:b"), None);
        let s = parse_dsn("mysql://u@localhost/db?socket=/run/mysqld/mysqld.sock").unwrap();
        assert_eq!(s.socket.as_deref(), Some("/run/mysqld/mysqld.sock"));
        for bad in [
            "postgres://u@h/db",
            "mysql://u@h:99999/db",
            "mysql://@h/db",
            "mysql://u@/db",
            "mysql://u@h/db?sslmode=x",
            "mysql://u@h/db?ssl-mode=sometimes",
        ] {
            assert!(parse_dsn(bad).is_err(), "{bad}");
        }
        let e = parse_dsn("mysql://u:secret@h:x/db").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
