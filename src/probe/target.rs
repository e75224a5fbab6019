//! What a `/probe` request names, checked before anything connects: the
//! target (`redis://host:port`, `host:port/db`, ...), the kind it is of, and
//! the probed kind's table made from it and an auth set, which then goes
//! through that kind's own validation like a config file's table. Pure: no
//! I/O here, so every refusal is unit-tested.
//!
//! A target names a TCP server and nothing else: no credentials (they would
//! sit in Prometheus' target list, its logs and every `up` series; an auth
//! set carries them), no Unix socket, and of the drivers' parameters only
//! the TLS mode, because the others name local files (`sslrootcert`,
//! `socket`) that a request must not make perfwatch open.

use std::net::{IpAddr, Ipv6Addr};

use super::config::ProbeAuth;
use crate::secret::redact;

/// Longest target accepted: a DNS name is at most 253 bytes; with a scheme,
/// a port, a database and the TLS mode this is ample, and it bounds the
/// `target` label a probe exports.
pub const MAX_TARGET_BYTES: usize = 512;

/// A kind that can be probed, and the URL schemes that name it.
#[derive(Debug, PartialEq, Eq)]
pub struct ProbedKind {
    /// The kind's section (`redis`, `postgres`, `mysql`).
    pub section: &'static str,
    /// Schemes of `?target=` that name it, lower case.
    pub schemes: &'static [&'static str],
    /// The one driver parameter a target may carry: the TLS mode.
    tls_param: Option<&'static [&'static str]>,
}

/// Every kind `/probe` speaks. The other kinds read local files or pod-local
/// endpoints, which a fleet prober has no business reaching.
pub const PROBED_KINDS: &[ProbedKind] = &[
    ProbedKind {
        section: "redis",
        schemes: &["redis", "rediss", "valkey", "valkeys"],
        tls_param: None,
    },
    ProbedKind {
        section: "postgres",
        schemes: &["postgres", "postgresql"],
        tls_param: Some(&["sslmode"]),
    },
    ProbedKind {
        section: "mysql",
        schemes: &["mysql", "mariadb"],
        tls_param: Some(&["ssl-mode", "ssl_mode"]),
    },
];

/// The probed kind of a section name.
pub fn probed_kind(section: &str) -> Option<&'static ProbedKind> {
    PROBED_KINDS.iter().find(|k| k.section == section)
}

/// `redis, postgres, mysql`, for messages.
fn kind_names() -> String {
    PROBED_KINDS
        .iter()
        .map(|k| k.section)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `?target=` taken apart, not yet checked against a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The scheme as written, lower case; `None` for `host:port`.
    pub scheme: Option<String>,
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
    /// What follows the first `/` (a database), without it.
    pub path: String,
    /// `key=value` pairs after `?`, in order.
    pub params: Vec<(String, String)>,
}

impl Address {
    /// Takes a target apart. Messages quote the target with any password
    /// masked (a target with credentials is refused, but still must not
    /// echo them).
    pub fn parse(target: &str) -> Result<Self, String> {
        let shown = || redact(target, &[]);
        if target.is_empty() {
            return Err("target is empty".into());
        }
        if target.len() > MAX_TARGET_BYTES {
            return Err(format!(
                "target is {} bytes long, more than the {MAX_TARGET_BYTES} accepted",
                target.len()
            ));
        }
        if target.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "target \"{}\" contains whitespace or a control character",
                shown().escape_default()
            ));
        }
        let (scheme, rest) = match target.split_once("://") {
            Some((s, rest)) => {
                let s = s.to_ascii_lowercase();
                kind_of_scheme(&s, target)?;
                (Some(s), rest)
            }
            None => (None, target),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(format!(
                "target \"{}\" carries credentials: they would show in Prometheus' target list; put them in an auth set ([probe.auth.<name>]) and pass auth_module=<name>",
                shown()
            ));
        }
        let (host, port) =
            split_host_port(authority).map_err(|why| format!("target \"{}\": {why}", shown()))?;
        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.push((k.to_owned(), v.to_owned()));
        }
        Ok(Self {
            scheme,
            host,
            port,
            path: path.to_owned(),
            params,
        })
    }

    /// The host as it goes into a URL: an IPv6 address in brackets.
    fn url_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// `host[:port]` as it goes into a URL.
    fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.url_host()),
            None => self.url_host(),
        }
    }
}

/// `host`, `host:port` or `[v6]:port`.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ]")?;
        h.parse::<Ipv6Addr>()
            .map_err(|_| format!("\"{h}\" is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 address")?),
        };
        (h, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, Some(p)),
            Some(_) => return Err("write an IPv6 address in brackets: [::1]:6379".into()),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let host_ok = host.contains(':')
        || host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !host_ok {
        return Err(format!("\"{host}\" is not a host name or IP address"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("port \"{p}\" is not a number 1-65535")),
        },
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// The kind a scheme (lower case) names; the message lists the schemes
/// fleet probes speak.
fn kind_of_scheme(scheme: &str, target: &str) -> Result<&'static ProbedKind, String> {
    PROBED_KINDS
        .iter()
        .find(|k| k.schemes.contains(&scheme))
        .ok_or_else(|| {
            let all: Vec<String> = PROBED_KINDS
                .iter()
                .flat_map(|k| k.schemes)
                .map(|s| format!("{s}://"))
                .collect();
            format!(
                "unsupported scheme \"{scheme}\" in target \"{}\": fleet probes speak {}",
                redact(target, &[]),
                all.join(", ")
            )
        })
}

/// The kind a probe is of: from the target's scheme, the `kind` parameter
/// and the auth set, which must agree where more than one says.
pub fn resolve_kind(
    target: &str,
    scheme: Option<&str>,
    kind_param: Option<&str>,
    auth: Option<(&str, &ProbeAuth)>,
) -> Result<&'static ProbedKind, String> {
    let shown = redact(target, &[]);
    let by_scheme = scheme.map(|s| kind_of_scheme(s, target)).transpose()?;
    let by_param = match kind_param {
        Some(k) => Some(
            probed_kind(k)
                .ok_or_else(|| format!("unknown kind \"{k}\" (probed kinds: {})", kind_names()))?,
        ),
        None => None,
    };
    let by_auth = auth.map(|(name, a)| (name, probed_kind(&a.kind)));
    let mut kind = by_scheme.or(by_param);
    if let (Some(s), Some(p)) = (by_scheme, by_param)
        && s != p
    {
        return Err(format!(
            "target \"{shown}\" is a {} url but kind={} was asked for",
            s.section, p.section
        ));
    }
    if let Some((name, Some(a))) = by_auth {
        match kind {
            Some(k) if k != a => {
                return Err(format!(
                    "auth module \"{name}\" is for {} targets, and target \"{shown}\" is a {} target",
                    a.section, k.section
                ));
            }
            _ => kind = Some(a),
        }
    }
    kind.ok_or_else(|| {
        format!(
            "cannot tell the kind of target \"{shown}\": write it as redis://…, postgres://… or mysql://…, or pass kind= or an auth_module"
        )
    })
}

/// The probed kind's table for one backend: its address with an auth set's
/// credentials, keyed as a `[[redis]]`/`[[postgres]]`/`[[mysql]]` table of
/// the config file (without `name`). The kind's own validation checks it.
pub fn kind_table(
    kind: &ProbedKind,
    addr: &Address,
    auth: Option<&ProbeAuth>,
) -> Result<toml::Table, String> {
    let mut table = toml::Table::new();
    let path_ok =
        |allowed: fn(char) -> bool| addr.path.len() <= 64 && addr.path.chars().all(allowed);
    let tls_mode: Vec<&(String, String)> = match kind.tls_param {
        Some(names) => {
            let mut mode = Vec::new();
            for p in &addr.params {
                if names.contains(&p.0.as_str()) {
                    mode.push(p);
                } else {
                    return Err(format!(
                        "{} targets take no parameter \"{}\" (only {})",
                        kind.section, p.0, names[0]
                    ));
                }
            }
            mode
        }
        None => {
            if let Some((k, _)) = addr.params.first() {
                return Err(format!("redis targets take no parameter \"{k}\""));
            }
            Vec::new()
        }
    };
    let username = auth.and_then(|a| a.username.as_deref());
    match kind.section {
        "redis" => {
            if !path_ok(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "redis target path \"/{}\" is not a database number",
                    addr.path
                ));
            }
            // An auth set with a tls table means TLS for a target written
            // without a scheme (the file_sd `host:port` form).
            let scheme = match &addr.scheme {
                Some(s) => s.clone(),
                None if auth.is_some_and(|a| a.tls.is_some()) => "rediss".into(),
                None => "redis".into(),
            };
            let db = if addr.path.is_empty() {
                String::new()
            } else {
                format!("/{}", addr.path)
            };
            let url = format!("{scheme}://{}{db}", addr.authority());
            table.insert("url".into(), url.into());
            // A probe is one backend: service discovery lists every node of
            // a Redis Cluster, and a cluster node's probe that watched the
            // whole cluster would poll every node once per node.
            table.insert("cluster".into(), false.into());
            if let Some(u) = username {
                table.insert("username".into(), u.into());
            }
        }
        "postgres" | "mysql" => {
            if !path_ok(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$')) {
                return Err(format!(
                    "{} target path \"/{}\" is not a database name",
                    kind.section, addr.path
                ));
            }
            let Some(user) = username else {
                return Err(format!(
                    "a {} target needs an auth_module with a username",
                    kind.section
                ));
            };
            let mut dsn = format!(
                "{}://{}@{}/{}",
                kind.schemes[0],
                percent_encode(user),
                addr.authority(),
                addr.path
            );
            let query: Vec<String> = tls_mode.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if !query.is_empty() {
                dsn.push('?');
                dsn.push_str(&query.join("&"));
            }
            table.insert("dsn".into(), dsn.into());
        }
        other => return Err(format!("{other} targets cannot be probed")),
    }
    if let Some(a) = auth {
        if let Some(pw) = &a.password {
            table.insert("password".into(), pw.expose().into());
        }
        if let Some(f) = &a.password_file {
            table.insert("password_file".into(), f.display().to_string().into());
        }
        if let Some(tls) = &a.tls {
            let value = toml::Value::try_from(tls).map_err(|e| format!("tls: {e}"))?;
            table.insert("tls".into(), value);
        }
    }
    Ok(table)
}

/// Percent-encodes a user name for the userinfo of a DSN (the drivers'
/// parsers decode it).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One entry of `allow_targets`: a CIDR block, an IP address, or a host
/// name pattern where `*` stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `10.0.0.0/8`, `fd00::/8`: a target whose host is an address in it.
    Network(IpAddr, u8),
    /// `*.cache.svc.cluster.local`, `redis-*`, `10.1.2.3`: lower case.
    Glob(String),
}

impl HostPattern {
    /// Parses one entry; the message says what a pattern may be.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if let Some((net, bits)) = pattern.split_once('/') {
            let addr: IpAddr = net
                .parse()
                .map_err(|_| format!("\"{pattern}\": \"{net}\" is not an IP address"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            return match bits.parse::<u8>() {
                Ok(b) if b <= max => Ok(Self::Network(addr, b)),
                _ => Err(format!(
                    "\"{pattern}\": prefix length \"{bits}\" is not 0-{max}"
                )),
            };
        }
        let glob = pattern.to_ascii_lowercase();
        let ok = !glob.is_empty()
            && (glob.parse::<IpAddr>().is_ok()
                || glob
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '*')));
        if ok {
            Ok(Self::Glob(glob))
        } else {
            Err(format!(
                "\"{pattern}\" is not a host pattern (a name with * wildcards, an IP address, or a CIDR block like 10.0.0.0/8)"
            ))
        }
    }

    /// Whether `host` (lower case, an IPv6 address without brackets) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Network(net, bits) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_network(ip, *net, *bits)),
            Self::Glob(g) => match (g.parse::<IpAddr>(), host.parse::<IpAddr>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => glob_matches(g.as_bytes(), host.as_bytes()),
            },
        }
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `*` matches any run of bytes (dots included); everything else itself.
/// Iterative with one backtrack point, so a pattern of many stars stays
/// linear in practice and bounded by the target's length either way.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn auth(kind: &str) -> ProbeAuth {
        ProbeAuth {
            kind: kind.into(),
            username: Some("mon itor".into()),
            password: Some(Secret::new("hunter2")),
            password_file: None,
            tls: None,
        }
    }

    #[test]
    fn targets_are_taken_apart() {
        let a = Address::parse("redis://Cache-1.example:6380/2").unwrap();
        assert_eq!(
            (
                a.scheme.as_deref(),
                a.host.as_str(),
                a.port,
                a.path.as_str()
            ),
            (Some("redis"), "cache-1.example", Some(6380), "2")
        );
        let a = Address::parse("[::1]:5432/app?sslmode=disable").unwrap();
        assert_eq!(
            (a.scheme.as_deref(), a.host.as_str(), a.port),
            (None, "::1", Some(5432))
        );
        assert_eq!(a.params, vec![("sslmode".into(), "disable".into())]);
        assert_eq!(a.authority(), "[::1]:5432");
        for (target, want) in [
            ("", "target is empty"),
            ("redis://:hunter2@h:1", "carries credentials"),
            ("unix:///run/redis.sock", "unsupported scheme \"unix\""),
            ("h:0", "port \"0\" is not a number 1-65535"),
            ("h:x", "port \"x\" is not a number"),
            ("::1:6379", "write an IPv6 address in brackets"),
            ("[::1", "closing ]"),
            ("redis://h /0", "whitespace"),
            ("redis://", "no host"),
            ("redis://h%2f:1", "is not a host name"),
        ] {
            let err = Address::parse(target).unwrap_err();
            assert!(err.contains(want), "{target}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let long = format!("redis://{}:1", "a".repeat(MAX_TARGET_BYTES));
        assert!(
            Address::parse(&long)
                .unwrap_err()
                .contains("more than the 512")
        );
    }

    #[test]
    fn the_kind_comes_from_the_scheme_the_kind_parameter_or_the_auth_set() {
        let pg = auth("postgres");
        let ok = |scheme, param, a: Option<(&str, &ProbeAuth)>| {
            resolve_kind("t", scheme, param, a).map(|k| k.section)
        };
        assert_eq!(ok(Some("rediss"), None, None), Ok("redis"));
        assert_eq!(ok(None, Some("mysql"), None), Ok("mysql"));
        assert_eq!(ok(None, None, Some(("pg", &pg))), Ok("postgres"));
        assert_eq!(
            ok(Some("postgresql"), Some("postgres"), Some(("pg", &pg))),
            Ok("postgres")
        );
        for (scheme, param, a, want) in [
            (Some("unix"), None, None, "unsupported scheme \"unix\""),
            (Some("http"), None, None, "fleet probes speak redis://"),
            (None, Some("pgbouncer"), None, "unknown kind \"pgbouncer\""),
            (
                Some("redis"),
                Some("mysql"),
                None,
                "is a redis url but kind=mysql",
            ),
            (
                Some("redis"),
                None,
                Some(("pg", &pg)),
                "auth module \"pg\" is for postgres targets",
            ),
            (None, None, None, "cannot tell the kind of target"),
        ] {
            let err = ok(scheme, param, a).unwrap_err();
            assert!(err.contains(want), "{scheme:?} {param:?}: {err}");
        }
    }

    #[test]
    fn tables_carry_the_address_and_the_auth_set() {
        let table = |kind: &str, target: &str, a: Option<&ProbeAuth>| {
            let addr = Address::parse(target).unwrap();
            kind_table(probed_kind(kind).unwrap(), &addr, a)
        };
        let t = table("redis", "10.0.0.5:6379/1", None).unwrap();
        assert_eq!(t["url"].as_str(), Some("redis://10.0.0.5:6379/1"));
        assert!(!t.contains_key("username"));
        let mut tls = auth("redis");
        tls.tls = Some(crate::tls::TlsSettings {
            insecure_skip_verify: true,
            ..Default::default()
        });
        let t = table("redis", "[fd00::1]:6380", Some(&tls)).unwrap();
        assert_eq!(t["url"].as_str(), Some("rediss://[fd00::1]:6380"));
        assert_eq!(t["username"].as_str(), Some("mon itor"));
        assert_eq!(t["password"].as_str(), Some("hunter2"));
        assert_eq!(t["tls"]["insecure_skip_verify"].as_bool(), Some(true));
        let t = table(
            "postgres",
            "db:5433/app?sslmode=require",
            Some(&auth("postgres")),
        )
        .unwrap();
        assert_eq!(
            t["dsn"].as_str(),
            Some("postgres://mon%20itor@db:5433/app?sslmode=require")
        );
        let t = table("mysql", "db", Some(&auth("mysql"))).unwrap();
        assert_eq!(t["dsn"].as_str(), Some("mysql://mon%20itor@db/"));
        for (kind, target, a, want) in [
            (
                "redis",
                "h:1?protocol=resp3",
                None,
                "redis targets take no parameter \"protocol\"",
            ),
            ("redis", "h:1/x", None, "is not a database number"),
            (
                "postgres",
                "h/app?sslrootcert=/etc/shadow",
                Some(auth("postgres")),
                "no parameter \"sslrootcert\" (only sslmode)",
            ),
            (
                "mysql",
                "h?socket=/run/m.sock",
                Some(auth("mysql")),
                "no parameter \"socket\"",
            ),
            (
                "postgres",
                "h/a%20b",
                Some(auth("postgres")),
                "is not a database name",
            ),
            (
                "postgres",
                "h/app",
                None,
                "needs an auth_module with a username",
            ),
        ] {
            let err = table(kind, target, a.as_ref()).unwrap_err();
            assert!(err.contains(want), "{target}: {err}");
        }
    }

    #[test]
    fn host_patterns_match_names_addresses_and_networks() {
        let cases = [
            (
                "*.cache.svc.cluster.local",
                "redis-0.cache.svc.cluster.local",
                true,
            ),
            (
                "*.cache.svc.cluster.local",
                "cache.svc.cluster.local",
                false,
            ),
            ("redis-*", "redis-12", true),
            ("redis-*", "xredis-12", false),
            ("Cache", "cache", true),
            ("10.0.0.0/8", "10.200.3.4", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.0.0.0/8", "10.example", false),
            ("0.0.0.0/0", "192.0.2.1", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "10.0.0.1", false),
            ("::1", "0:0::1", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for (pattern, host, want) in cases {
            let p = HostPattern::parse(pattern).unwrap();
            assert_eq!(p.matches(host), want, "{pattern} ~ {host}");
        }
        for bad in ["", "10.0.0.0/33", "x/8", "a b", "host:6379", "fd00::/129"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
