//! Throwaway Alertmanager servers.
//!
//! Tests start their own Alertmanager from the binary installed by Debian's
//! `prometheus-alertmanager` package, on a free 127.0.0.1 port with its
//! config and notification log in its own temp dir, never the machine's own
//! server on 9093. Clustering is off (`--cluster.listen-address=`), so
//! nothing listens on 0.0.0.0:9094 and instances never gossip with each
//! other.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::prometheus::{
    Labels, answers_ready, http_server_methods, json_get, post_reload, spawn_until_ready,
    start_http_server,
};
use super::{HarnessError, ServerProcess, common_server_methods, flag_path};

const SERVER: &str = "alertmanager";

/// One alert Alertmanager holds, from `GET /api/v2/alerts`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerAlert {
    /// Its labels, `alertname` included.
    pub labels: Labels,
    /// Its annotations.
    pub annotations: Labels,
    /// `active`, `suppressed` or `unprocessed`.
    pub state: String,
    /// The receivers its route leads to.
    pub receivers: Vec<String>,
}

/// A `prometheus-alertmanager` owned by the test: own temp dir, own port,
/// killed and deleted on drop.
///
/// ```no_run
/// use perfwatch_testbench::AlertmanagerServer;
/// let config = "route:\n  receiver: hook\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:5001/\n";
/// let am = AlertmanagerServer::start(config)?;
/// println!("{}", am.url()); // http://127.0.0.1:<port>
/// assert!(am.alerts()?.is_empty());
/// # Ok::<(), perfwatch_testbench::HarnessError>(())
/// ```
#[derive(Debug)]
pub struct AlertmanagerServer {
    // Declared before `dir`: the process is killed before the dir is removed.
    process: ServerProcess,
    binary: PathBuf,
    dir: TempDir,
}

impl AlertmanagerServer {
    /// Writes `config_yaml` to `<dir>/alertmanager.yml`, starts Alertmanager
    /// and waits (up to [`START_TIMEOUT`]) until `GET /-/ready` answers 200.
    ///
    /// Always passed: `--config.file=<dir>/alertmanager.yml`,
    /// `--storage.path=<dir>/data`,
    /// `--web.listen-address=127.0.0.1:<free port>` and an empty
    /// `--cluster.listen-address=` (no cluster port, no gossip). A config
    /// Alertmanager rejects makes it exit, and the error carries its log.
    pub fn start(config_yaml: &str) -> Result<Self, HarnessError> {
        start_http_server(
            SERVER,
            "prometheus-alertmanager",
            &[("alertmanager.yml", config_yaml)],
            |process, binary, dir| AlertmanagerServer {
                process,
                binary,
                dir,
            },
            Self::launch,
        )
    }

    common_server_methods!(
        "alertmanager",
        /// Starts Alertmanager again on the same port, config and data (killing
        /// it first if it is still running) and waits until it is ready.
        restart
    );

    http_server_methods!(
        "alertmanager.yml",
        "--storage.path=",
        "--cluster.listen-address="
    );

    /// The alerts Alertmanager currently holds (`GET /api/v2/alerts`):
    /// what Prometheus delivered and has not yet resolved.
    pub fn alerts(&self) -> Result<Vec<AlertmanagerAlert>, HarnessError> {
        let request = "/api/v2/alerts";
        let data = json_get(SERVER, self.port(), request)?;
        let alerts = data.as_array().ok_or_else(|| HarnessError::BadReply {
            server: SERVER,
            request: request.into(),
            reply: format!("not an array: {data}"),
        })?;
        Ok(alerts.iter().map(alert_of).collect())
    }
}

fn alert_of(a: &Value) -> AlertmanagerAlert {
    let strings = |v: &Value| -> Labels {
        v.as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect()
    };
    AlertmanagerAlert {
        labels: strings(&a["labels"]),
        annotations: strings(&a["annotations"]),
        state: a["status"]["state"].as_str().unwrap_or_default().to_owned(),
        receivers: a["receivers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str().map(str::to_owned))
            .collect(),
    }
}
