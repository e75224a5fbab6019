//! The Go exporters perfwatch is a drop-in for, run as oracles: start the
//! Debian package's binary against the same throwaway server as perfwatch,
//! scrape both, and compare families (names, types, label names, values).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use perfwatch_testbench::{find_binary, free_port};

/// A `--extend.query-path` entry giving postgres_exporter (Debian's 0.11
/// has no replication collector built in; later versions do) the families
/// `pg_replication_lag` and `pg_replication_is_replica`, written in our own
/// SQL: the seconds since the last replayed transaction (0 on a primary) and
/// 1 on a standby.
pub const PG_REPLICATION_QUERY: &str = r#"pg_replication:
  query: "SELECT COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) AS lag, pg_is_in_recovery()::int AS is_replica"
  master: true
  metrics:
    - lag: {usage: "GAUGE", description: "seconds since the last replayed transaction, 0 on a primary"}
    - is_replica: {usage: "GAUGE", description: "1 on a standby, 0 on a primary"}
"#;

/// One scrape in the text format: `# TYPE` per family and every sample.
pub struct Scrape {
    /// `# TYPE` of every family.
    pub types: BTreeMap<String, String>,
    /// Every sample: name, labels, value.
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    /// Parses a text-format body (panics on a malformed line).
    pub fn parse(body: &str) -> Self {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, parse_labels(l.strip_suffix('}').expect("closing }"))),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_owned(), labels, value.parse().expect("value")));
        }
        Scrape { types, samples }
    }

    /// The samples of `family`, keyed by the label values of `keys`.
    pub fn series(&self, family: &str, keys: &[&str]) -> BTreeMap<Vec<String>, f64> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == family)
            .map(|(_, l, v)| {
                let key = keys.iter().map(|k| l.get(*k).cloned().unwrap_or_default());
                (key.collect(), *v)
            })
            .collect()
    }

    /// The samples of one perfwatch `target`, its `target` label removed:
    /// what an exporter watching that server alone shows.
    pub fn target(&self, target: &str) -> Scrape {
        let samples = self
            .samples
            .iter()
            .filter(|(_, l, _)| l.get("target").is_some_and(|t| t == target))
            .map(|(n, l, v)| {
                let mut l = l.clone();
                l.remove("target");
                (n.clone(), l, *v)
            })
            .collect();
        Scrape {
            types: self.types.clone(),
            samples,
        }
    }

    /// The label names of `family` (the union over its samples).
    pub fn label_names(&self, family: &str) -> BTreeSet<String> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == family)
            .flat_map(|(_, l, _)| l.keys().cloned())
            .collect()
    }
}

/// `a="x",b="y\"z"` → {a: x, b: y"z}.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            return out;
        }
        assert_eq!(chars.next(), Some('"'), "label {name} in {text}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(name.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

/// A peer exporter process, killed when dropped.
pub struct PeerExporter {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl PeerExporter {
    /// Starts the Debian package `package`'s binary (named the same) on a
    /// free port with `args` and `env`, and waits until a scrape has a line
    /// equal to `ready_line` (e.g. `pg_up 1`). `files` are written into a
    /// temp dir first; `{dir}` in `args` and `env` values is that dir.
    pub async fn start(
        package: &str,
        args: &[&str],
        env: &[(&str, &str)],
        files: &[(&str, &str)],
        ready_line: &str,
    ) -> Self {
        // reqwest needs the process's rustls provider even for plain http.
        perfwatch::tls::install_default_provider();
        let binary = find_binary(package, package).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let here = dir.path().display().to_string();
        let port = free_port().unwrap();
        let log = std::fs::File::create(dir.path().join("exporter.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args.iter().map(|a| a.replace("{dir}", &here)))
            .envs(env.iter().map(|(k, v)| (*k, v.replace("{dir}", &here))))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {package}: {e}"));
        let peer = PeerExporter {
            child,
            url: format!("http://127.0.0.1:{port}/metrics"),
            dir,
        };
        let started = Instant::now();
        loop {
            if let Some(body) = peer.try_scrape().await
                && body.lines().any(|l| l == ready_line)
            {
                return peer;
            }
            if started.elapsed() > Duration::from_secs(20) {
                panic!("{package} has no `{ready_line}` after 20 s: {}", peer.log());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What the exporter wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("exporter.log")).unwrap_or_default()
    }

    async fn try_scrape(&self) -> Option<String> {
        let resp = reqwest::get(&self.url).await.ok()?;
        resp.status().is_success().then_some(())?;
        resp.text().await.ok()
    }

    /// Scrapes the exporter (panics if it does not answer 200).
    pub async fn scrape(&self) -> Scrape {
        Scrape::parse(&self.body().await)
    }

    /// The text of one scrape (panics if it does not answer 200).
    pub async fn body(&self) -> String {
        self.try_scrape().await.expect("scraping the peer exporter")
    }
}

impl Drop for PeerExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
