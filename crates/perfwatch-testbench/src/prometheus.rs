//! Throwaway Prometheus servers.
//!
//! Tests start their own `prometheus` from the binary installed by Debian's
//! `prometheus` package, on a free 127.0.0.1 port with its config, rule files
//! and TSDB in its own temp dir, never the machine's own server on 9090.
//!
//! The helpers ([`query`](PrometheusServer::query),
//! [`alerts`](PrometheusServer::alerts), [`targets`](PrometheusServer::targets),
//! ...) speak plain HTTP/1.0 over a `std` [`TcpStream`] and parse the JSON of
//! the HTTP API, so they are synchronous like the rest of the harness and
//! need no HTTP client runtime: call them from `spawn_blocking` in async
//! tests.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tempfile::TempDir;

use super::{
    HarnessError, START_TIMEOUT, ServerProcess, common_server_methods, find_binary, flag_path,
    io_error, make_temp_dir, start_on_free_port, write_file,
};

const SERVER: &str = "prometheus";

/// Timeout of one HTTP API request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest HTTP response body the helpers accept.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// Label names and values of one series or alert.
pub type Labels = BTreeMap<String, String>;

/// One alert as reported by `GET /api/v1/alerts` (a field it lacks is
/// empty).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct PrometheusAlert {
    /// Its labels, `alertname` included.
    pub labels: Labels,
    /// Its annotations (rendered templates).
    pub annotations: Labels,
    /// `pending` or `firing`.
    pub state: String,
    /// The value of the expression's sample when last evaluated, as text.
    pub value: String,
}

/// One active scrape target as reported by `GET /api/v1/targets` (a field
/// it lacks is empty).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PrometheusTarget {
    /// The target labels after relabelling (`job`, `instance`, ...).
    pub labels: Labels,
    /// The URL Prometheus scrapes.
    pub scrape_url: String,
    /// `up`, `down` or `unknown` (not scraped yet).
    pub health: String,
    /// The last scrape error, empty when the last scrape worked.
    pub last_error: String,
}

/// One loaded rule as reported by `GET /api/v1/rules`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusRule {
    /// The group it belongs to.
    pub group: String,
    /// The file the group was loaded from.
    pub file: String,
    /// The alert name or the recorded metric name.
    pub name: String,
    /// `alerting` or `recording`.
    pub kind: String,
    /// The expression as Prometheus parsed and printed it.
    pub query: String,
    /// The rule's labels.
    pub labels: Labels,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: String,
    /// The last evaluation error, empty when none.
    pub last_error: String,
}

/// A `prometheus` owned by the test: own temp dir, own port, killed and
/// deleted on drop.
///
/// ```no_run
/// use perfwatch_testbench::PrometheusServer;
/// let config = "global:\n  scrape_interval: 1s\nrule_files: [perfwatch.rules.yml]\n";
/// let rules = "groups:\n- name: g\n  rules:\n  - alert: Always\n    expr: vector(1)\n";
/// let prom = PrometheusServer::start(config, &[("perfwatch.rules.yml", rules)])?;
/// let samples = prom.query("vector(1)")?;
/// assert_eq!(samples[0].1, 1.0);
/// println!("{}", prom.url()); // http://127.0.0.1:<port>
/// # Ok::<(), perfwatch_testbench::HarnessError>(())
/// ```
#[derive(Debug)]
pub struct PrometheusServer {
    // Declared before `dir`: the process is killed before the dir is removed.
    process: ServerProcess,
    binary: PathBuf,
    dir: TempDir,
}

impl PrometheusServer {
    /// Writes `config_yaml` to `<dir>/prometheus.yml` and every
    /// `(name, content)` of `rule_files` to `<dir>/<name>`, starts
    /// `prometheus` and waits (up to [`START_TIMEOUT`]) until `GET /-/ready`
    /// answers 200.
    ///
    /// Prometheus resolves relative `rule_files` entries against the config
    /// file's directory, so the config refers to the rule files by the names
    /// given here (`rule_files: [perfwatch.rules.yml]`, or
    /// `rules/perfwatch.rules.yml` for a name with a directory). Names must
    /// be relative paths without `..`.
    ///
    /// Always passed: `--config.file=<dir>/prometheus.yml`,
    /// `--storage.tsdb.path=<dir>/data`,
    /// `--web.listen-address=127.0.0.1:<free port>` and
    /// `--web.enable-lifecycle` (for [`reload`](Self::reload)). A config or
    /// rule file Prometheus rejects makes it exit, and the error carries its
    /// log.
    pub fn start(config_yaml: &str, rule_files: &[(&str, &str)]) -> Result<Self, HarnessError> {
        for (name, _) in rule_files {
            check_relative_name(name)?;
        }
        let mut files = vec![("prometheus.yml", config_yaml)];
        files.extend_from_slice(rule_files);
        start_http_server(
            SERVER,
            "prometheus",
            &files,
            |process, binary, dir| PrometheusServer {
                process,
                binary,
                dir,
            },
            Self::launch,
        )
    }

    common_server_methods!(
        "prometheus",
        /// Starts Prometheus again on the same port, config and TSDB (killing it
        /// first if it is still running) and waits until it is ready.
        restart
    );

    http_server_methods!(
        "prometheus.yml",
        "--storage.tsdb.path=",
        "--web.enable-lifecycle"
    );

    /// Evaluates `expr` now (`GET /api/v1/query`) and returns every sample
    /// as `(labels, value)`; a scalar result is one sample with no labels.
    /// `NaN` and `±Inf` values are returned as such. A range-vector or string
    /// result, or a PromQL error, is an [`HarnessError::BadReply`].
    pub fn query(&self, expr: &str) -> Result<Vec<(Labels, f64)>, HarnessError> {
        let request = format!("/api/v1/query?query={}", percent_encode(expr));
        let data = api_get(SERVER, self.port(), &request)?;
        let bad = |why: &str| bad_reply(&request, format!("{why}: {data}"));
        let result = &data["result"];
        match data["resultType"].as_str() {
            Some("vector") => result
                .as_array()
                .ok_or_else(|| bad("`result` is not an array"))?
                .iter()
                .map(|sample| {
                    let labels = labels_of(&sample["metric"]);
                    let value = sample_value(&sample["value"]).ok_or_else(|| bad("bad sample"))?;
                    Ok((labels, value))
                })
                .collect(),
            Some("scalar") => {
                let value = sample_value(result).ok_or_else(|| bad("bad scalar"))?;
                Ok(vec![(Labels::new(), value)])
            }
            _ => Err(bad("expected an instant vector or a scalar")),
        }
    }

    /// Every value of label `name` in the TSDB (`GET
    /// /api/v1/label/<name>/values`); `label_values("__name__")` lists every
    /// metric name Prometheus has stored.
    pub fn label_values(&self, name: &str) -> Result<Vec<String>, HarnessError> {
        let request = format!("/api/v1/label/{}/values", percent_encode(name));
        let data = api_get(SERVER, self.port(), &request)?;
        data.as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| bad_reply(&request, format!("not an array: {data}")))
    }

    /// The pending and firing alerts (`GET /api/v1/alerts`).
    pub fn alerts(&self) -> Result<Vec<PrometheusAlert>, HarnessError> {
        api_list(self.port(), "/api/v1/alerts", "alerts")
    }

    /// The active scrape targets (`GET /api/v1/targets?state=active`).
    pub fn targets(&self) -> Result<Vec<PrometheusTarget>, HarnessError> {
        api_list(self.port(), "/api/v1/targets?state=active", "activeTargets")
    }

    /// Whether there is at least one active target and every one of them
    /// was scraped successfully last time (`health == "up"`).
    pub fn targets_up(&self) -> Result<bool, HarnessError> {
        let targets = self.targets()?;
        Ok(!targets.is_empty() && targets.iter().all(|t| t.health == "up"))
    }

    /// Every loaded alerting and recording rule (`GET /api/v1/rules`).
    pub fn rules(&self) -> Result<Vec<PrometheusRule>, HarnessError> {
        let request = "/api/v1/rules";
        let data = api_get(SERVER, self.port(), request)?;
        let groups = data["groups"]
            .as_array()
            .ok_or_else(|| bad_reply(request, format!("no `groups` array: {data}")))?;
        let mut rules = Vec::new();
        for group in groups {
            for rule in group["rules"].as_array().into_iter().flatten() {
                rules.push(PrometheusRule {
                    group: text(&group["name"]),
                    file: text(&group["file"]),
                    name: text(&rule["name"]),
                    kind: text(&rule["type"]),
                    query: text(&rule["query"]),
                    labels: labels_of(&rule["labels"]),
                    health: text(&rule["health"]),
                    last_error: text(&rule["lastError"]),
                });
            }
        }
        Ok(rules)
    }
}

/// Prometheus and Alertmanager alike: finds `binary` (from the Debian
/// package of the same name), writes `files` (relative names) into a new
/// temp dir, builds the server with `make` (console log
/// `<dir>/<server>.console.log`, SIGTERM to stop) and starts it on a free
/// port with `launch`.
pub(super) fn start_http_server<S>(
    server: &'static str,
    binary: &str,
    files: &[(&str, &str)],
    make: impl FnOnce(ServerProcess, PathBuf, TempDir) -> S,
    mut launch: impl FnMut(&mut S, u16) -> Result<(), HarnessError>,
) -> Result<S, HarnessError> {
    let binary = find_binary(binary, binary)?;
    let dir = make_temp_dir(server, false)?;
    for (name, content) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_error(server, format!("creating {}", parent.display())))?;
        }
        write_file(server, &path, content)?;
    }
    let console_log = dir.path().join(format!("{server}.console.log"));
    let process = ServerProcess::new(server, libc::SIGTERM, console_log);
    let mut s = make(process, binary, dir);
    start_on_free_port(server, |port| launch(&mut s, port))?;
    Ok(s)
}

/// `url`, `config_path`, `data_dir`, `is_ready`, `reload` and `launch` of
/// the Prometheus and Alertmanager servers; `$config` is the config file's
/// name in the temp dir, `$data_flag` the flag taking the data directory and
/// `$extra` one more argument.
macro_rules! http_server_methods {
    ($config:literal, $data_flag:literal, $extra:literal) => {
        /// Spawns on `port` and waits for `/-/ready`.
        fn launch(&mut self, port: u16) -> Result<(), HarnessError> {
            let mut cmd = Command::new(&self.binary);
            cmd.arg(flag_path("--config.file=", &self.config_path()))
                .arg(flag_path($data_flag, &self.data_dir()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg($extra)
                .current_dir(self.dir.path());
            spawn_until_ready(&mut self.process, cmd, port)
        }

        /// `http://127.0.0.1:<port>` (what Prometheus' `alertmanagers`
        /// config points at, for Alertmanager).
        pub fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port())
        }

        #[doc = concat!("The config file (`<dir>/", $config, "`); rewrite it and call [`reload`](Self::reload) to change the config.")]
        pub fn config_path(&self) -> PathBuf {
            self.dir.path().join($config)
        }

        /// The data directory (`<dir>/data`): Prometheus' TSDB,
        /// Alertmanager's notification log and silences.
        pub fn data_dir(&self) -> PathBuf {
            self.dir.path().join("data")
        }

        /// `POST /-/reload`: re-reads the config (and Prometheus' rule
        /// files). An error when the server rejects them (it keeps the old
        /// ones).
        pub fn reload(&self) -> Result<(), HarnessError> {
            post_reload(SERVER, self.port())
        }

        /// Whether `GET /-/ready` answers 200 within 5 s.
        pub fn is_ready(&self) -> bool {
            answers_ready(SERVER, self.port(), Duration::from_secs(5))
        }
    };
}
pub(super) use http_server_methods;

/// Whether `GET /-/ready` on `port` answers 200 within `timeout`
/// (Prometheus and Alertmanager alike).
pub(super) fn answers_ready(server: &'static str, port: u16, timeout: Duration) -> bool {
    http_request(server, port, "GET", "/-/ready", timeout).is_ok_and(|(status, _)| status == 200)
}

/// Spawns `cmd` for `process` on `port` and waits (up to [`START_TIMEOUT`])
/// until `GET /-/ready` answers 200.
pub(super) fn spawn_until_ready(
    process: &mut ServerProcess,
    cmd: Command,
    port: u16,
) -> Result<(), HarnessError> {
    let server = process.server;
    process.spawn(cmd, port)?;
    process.wait_ready(START_TIMEOUT, |port| {
        answers_ready(server, port, Duration::from_millis(500))
    })
}

/// `POST /-/reload`: an error carrying the reply unless it is 200.
pub(super) fn post_reload(server: &'static str, port: u16) -> Result<(), HarnessError> {
    let (status, body) = http_request(server, port, "POST", "/-/reload", REQUEST_TIMEOUT)?;
    if status == 200 {
        Ok(())
    } else {
        Err(HarnessError::BadReply {
            server,
            request: "POST /-/reload".into(),
            reply: shorten_long(&format!("HTTP {status}: {}", body.trim())),
        })
    }
}

/// Rejects rule file names that are absolute or leave the temp dir.
fn check_relative_name(name: &str) -> Result<(), HarnessError> {
    let path = Path::new(name);
    let ok = !name.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.file_name().is_some();
    if ok && name != "prometheus.yml" {
        Ok(())
    } else {
        Err(HarnessError::InvalidSetting {
            server: SERVER,
            key: "rule file name".into(),
            value: name.to_owned(),
            reason: "it must be a relative path without `..`, other than prometheus.yml",
        })
    }
}

/// Prometheus' `reply` to `request` was not what the helpers expect.
fn bad_reply(request: &str, reply: String) -> HarnessError {
    bad_reply_of(SERVER, request, reply)
}

/// `server`'s `reply` to `request` was not what the helpers expect; both
/// shortened for the error message.
fn bad_reply_of(server: &'static str, request: &str, reply: String) -> HarnessError {
    HarnessError::BadReply {
        server,
        request: shorten(request),
        reply: shorten_long(&reply),
    }
}

/// The labels of a JSON object of strings.
fn labels_of(v: &Value) -> Labels {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect()
}

/// A JSON string as is, anything else (null included) as its JSON text or
/// empty.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The value of an API sample `[<unix time>, "<value>"]`.
fn sample_value(v: &Value) -> Option<f64> {
    parse_float(v.as_array()?.get(1)?.as_str()?)
}

/// Parses Prometheus' float text, including `NaN`, `+Inf` and `-Inf`.
fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// `GET path` against Prometheus' API: the array under `key` in `data`,
/// each item read as a `T`.
fn api_list<T: DeserializeOwned>(port: u16, path: &str, key: &str) -> Result<Vec<T>, HarnessError> {
    let data = api_get(SERVER, port, path)?;
    if !data[key].is_array() {
        return Err(bad_reply(path, format!("no `{key}` array: {data}")));
    }
    Vec::<T>::deserialize(&data[key])
        .map_err(|e| bad_reply(path, format!("unexpected `{key}` ({e}): {data}")))
}

/// `GET path` against a Prometheus-style JSON API (Prometheus,
/// Alertmanager v1 shape): checks `"status": "success"` and returns `data`.
pub(super) fn api_get(server: &'static str, port: u16, path: &str) -> Result<Value, HarnessError> {
    let (status, body) = http_request(server, port, "GET", path, REQUEST_TIMEOUT)?;
    let bad = |reply: String| bad_reply_of(server, path, reply);
    let json: Value = serde_json::from_str(&body)
        .map_err(|e| bad(format!("HTTP {status}, not JSON ({e}): {}", body.trim())))?;
    if status != 200 || json["status"] != "success" {
        return Err(bad(format!(
            "HTTP {status}: {} {}",
            text(&json["errorType"]),
            text(&json["error"])
        )));
    }
    Ok(json["data"].clone())
}

/// `GET path` returning the JSON body as is (APIs without an envelope, such
/// as Alertmanager's v2); an error unless the status is 200.
pub(super) fn json_get(server: &'static str, port: u16, path: &str) -> Result<Value, HarnessError> {
    let (status, body) = http_request(server, port, "GET", path, REQUEST_TIMEOUT)?;
    let bad = |reply: String| bad_reply_of(server, path, reply);
    if status != 200 {
        return Err(bad(format!("HTTP {status}: {}", body.trim())));
    }
    serde_json::from_str(&body).map_err(|e| bad(format!("not JSON ({e}): {}", body.trim())))
}

/// One HTTP/1.0 request to 127.0.0.1:`port` with an empty body; returns the
/// status code and the body as text. HTTP/1.0 keeps it simple: the server
/// closes the connection after the response and never chunks it (chunked
/// bodies are decoded anyway, in case).
pub(super) fn http_request(
    server: &'static str,
    port: u16,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), HarnessError> {
    let request = format!("{method} {path}");
    let bad = |reply: String| HarnessError::BadReply {
        server,
        request: shorten(&request),
        reply,
    };
    let io = |e: std::io::Error| bad(e.to_string());
    let mut stream =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)
            .map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: perfwatch-harness\r\nAccept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut raw)
        .map_err(io)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("incomplete HTTP response (no end of headers)".into()))?;
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let status_line = headers.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad(format!("bad status line `{}`", shorten(status_line))))?;
    let chunked = headers.lines().skip(1).any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    if chunked {
        body = decode_chunked(&body).ok_or_else(|| bad("malformed chunked body".into()))?;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn decode_chunked(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(super) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn shorten(s: &str) -> String {
    super::shorten(s, 200)
}

fn shorten_long(s: &str) -> String {
    super::shorten(s, 2000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(
            decode_chunked(b"4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcdefg"[..])
        );
        assert_eq!(decode_chunked(b"5\r\nab"), None);
    }

    #[test]
    fn floats_include_prometheus_specials() {
        assert_eq!(parse_float("0.25"), Some(0.25));
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_float("x"), None);
    }

    #[test]
    fn rule_file_names_stay_inside_the_dir() {
        assert!(check_relative_name("perfwatch.rules.yml").is_ok());
        assert!(check_relative_name("rules/perfwatch.rules.yml").is_ok());
        for bad in [
            "",
            "/etc/x.yml",
            "../x.yml",
            "rules/../../x",
            "prometheus.yml",
        ] {
            assert!(check_relative_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            percent_encode(r#"up{job="a b"} > 0"#),
            "up%7Bjob%3D%22a%20b%22%7D%20%3E%200"
        );
    }
}
