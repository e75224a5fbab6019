//! Highly available Redis topologies for the tests: Sentinel processes
//! ([`RedisSentinel`]) watching a [`RedisServer`] primary, and a Redis
//! Cluster ([`RedisCluster`]) of throwaway `redis-server` processes joined by
//! `redis-cli --cluster create`.
//!
//! Sentinel runs from the same binary as the server (`redis-server <conf>
//! --sentinel`, which Debian's `redis-server` package supports without its
//! `redis-sentinel` symlink package); the cluster needs `redis-cli` from
//! `redis-tools`. Everything listens on 127.0.0.1 ports chosen free at
//! start, as the other servers of the bench do.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::redis::{command_on, ping_port, quote};
use super::{
    COMMAND_TIMEOUT, HarnessError, RedisServer, START_TIMEOUT, ServerProcess,
    common_server_methods, find_binary, make_temp_dir, run_command, start_on_free_port, write_file,
};

const SENTINEL: &str = "redis-sentinel";

/// A Sentinel process owned by the test, monitoring one primary under a
/// master name: own temp dir (its config file, which Sentinel rewrites as
/// it learns), own port, killed and deleted on drop.
///
/// Failure detection is fast for tests: the primary counts as down after
/// 1 s without an answer (`down-after-milliseconds 1000`), and a failover
/// may be retried after 5 s (`failover-timeout 5000`).
#[derive(Debug)]
pub struct RedisSentinel {
    // Declared before `dir`: the process is killed before the dir is removed.
    process: ServerProcess,
    binary: PathBuf,
    master_name: String,
    master_port: u16,
    quorum: u32,
    password: Option<String>,
    dir: TempDir,
}

impl RedisSentinel {
    /// Starts a Sentinel monitoring `master` (a plaintext server without a
    /// password) as `master_name` with `quorum`, and waits until it answers
    /// `PING`. With `password`, the Sentinel requires it (`requirepass`) and
    /// uses it with the other Sentinels (`sentinel sentinel-pass`): every
    /// Sentinel of a set must then get the same one.
    pub fn start(
        master: &RedisServer,
        master_name: &str,
        quorum: u32,
        password: Option<&str>,
    ) -> Result<Self, HarnessError> {
        let binary = find_binary("redis-server", "redis-server")?;
        let dir = make_temp_dir("redis-sentinel", false)?;
        let mut process = ServerProcess::new(
            SENTINEL,
            libc::SIGTERM,
            dir.path().join("sentinel.stderr.log"),
        );
        process.log_files.push(dir.path().join("sentinel.log"));
        let mut sentinel = RedisSentinel {
            process,
            binary,
            master_name: master_name.to_owned(),
            master_port: master.port(),
            quorum,
            password: password.map(str::to_owned),
            dir,
        };
        start_on_free_port(SENTINEL, |port| sentinel.launch(port))?;
        Ok(sentinel)
    }

    common_server_methods!(
        "redis-sentinel",
        /// Starts the Sentinel again on the same port with a fresh config
        /// (it forgets what it learned and monitors the original primary).
        restart
    );

    /// `127.0.0.1:<port>`, as a `sentinels` entry of the perfwatch config.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// Sends one command (after `AUTH` when the Sentinel has a password) and
    /// returns the reply as [`RedisServer::command`] does.
    pub fn command(&self, args: &[&str]) -> Result<String, HarnessError> {
        command_on(SENTINEL, self.port(), self.password.as_deref(), args)
    }

    /// The primary's port as this Sentinel reports it now
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    pub fn master_port(&self) -> Result<u16, HarnessError> {
        let reply = self.command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", &self.master_name])?;
        reply
            .lines()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| HarnessError::BadReply {
                server: SENTINEL,
                request: "SENTINEL GET-MASTER-ADDR-BY-NAME".into(),
                reply,
            })
    }

    /// Waits until `SENTINEL MASTER` reports `want_replicas` replicas and
    /// `want_sentinels` other Sentinels, as a Sentinel learns them over a
    /// few seconds (hello messages every 2 s).
    pub fn wait_for_peers(
        &self,
        want_replicas: u32,
        want_sentinels: u32,
        timeout: Duration,
    ) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let reply = self.command(&["SENTINEL", "MASTER", &self.master_name])?;
            let fields: Vec<&str> = reply.lines().collect();
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|kv| kv[0] == name)
                    .and_then(|kv| kv.get(1))
                    .and_then(|v| v.parse::<u32>().ok())
            };
            if field("num-slaves") == Some(want_replicas)
                && field("num-other-sentinels") == Some(want_sentinels)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::NotReady {
                    server: SENTINEL,
                    port: self.port(),
                    waited: timeout,
                    log_tail: format!("SENTINEL MASTER: {reply}\n{}", self.log_tail()),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("sentinel.conf")
    }

    /// Writes the config for `port`, spawns, waits for `PING`.
    fn launch(&mut self, port: u16) -> Result<(), HarnessError> {
        let dir = self.dir.path();
        let name = &self.master_name;
        let mut conf = String::from("# generated by perfwatch-testbench\n");
        conf.push_str(&format!("port {port}\nbind 127.0.0.1\n"));
        conf.push_str(&format!("dir {}\n", quote(&dir.to_string_lossy())));
        conf.push_str(&format!(
            "logfile {}\n",
            quote(&dir.join("sentinel.log").to_string_lossy())
        ));
        conf.push_str("daemonize no\n");
        conf.push_str(&format!(
            "sentinel monitor {name} 127.0.0.1 {} {}\n",
            self.master_port, self.quorum
        ));
        conf.push_str(&format!("sentinel down-after-milliseconds {name} 1000\n"));
        conf.push_str(&format!("sentinel failover-timeout {name} 5000\n"));
        conf.push_str(&format!("sentinel parallel-syncs {name} 1\n"));
        if let Some(pw) = &self.password {
            conf.push_str(&format!("requirepass {}\n", quote(pw)));
            conf.push_str(&format!("sentinel sentinel-pass {}\n", quote(pw)));
        }
        write_file(SENTINEL, &self.config_path(), &conf)?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg(self.config_path())
            .arg("--sentinel")
            .current_dir(dir);
        self.process.spawn(cmd, port)?;
        let password = self.password.clone();
        self.process.wait_ready(START_TIMEOUT, |port| {
            ping_port(port, password.as_deref(), Duration::from_millis(500)) == Some(true)
        })
    }
}

/// A Redis Cluster of throwaway `redis-server` processes
/// (`cluster-enabled yes`), joined and given slots by `redis-cli --cluster
/// create … --cluster-replicas N --cluster-yes`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters * (1 + replicas_per_master)` nodes, creates the
    /// cluster and waits (up to [`START_TIMEOUT`]) until every node reports
    /// `cluster_state:ok`, knows every other node, and every replica's link
    /// to its primary is up.
    pub fn start(masters: usize, replicas_per_master: usize) -> Result<Self, HarnessError> {
        let cli = find_binary("redis-cli", "redis-tools")?;
        let count = masters * (1 + replicas_per_master);
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            nodes.push(RedisServer::start(&[
                ("cluster-enabled", "yes"),
                ("cluster-config-file", "nodes.conf"),
                ("cluster-node-timeout", "2000"),
            ])?);
        }
        let mut cmd = Command::new(cli);
        cmd.arg("--cluster").arg("create");
        for node in &nodes {
            cmd.arg(format!("127.0.0.1:{}", node.port()));
        }
        cmd.arg("--cluster-replicas")
            .arg(replicas_per_master.to_string())
            .arg("--cluster-yes");
        run_command("redis-cli", cmd, COMMAND_TIMEOUT)?;
        let cluster = RedisCluster { nodes };
        cluster.wait_healthy(START_TIMEOUT)?;
        Ok(cluster)
    }

    /// Every node, in the order they were started.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Every node, to kill, pause or restart one.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// The node listening on `port`.
    pub fn node(&self, port: u16) -> Option<&RedisServer> {
        self.nodes.iter().find(|n| n.port() == port)
    }

    /// Moves `slots` slots (and their keys) from the primary with node id
    /// `from` to the one with id `to` (`redis-cli --cluster reshard`), and
    /// waits until the cluster is healthy again.
    pub fn reshard(&self, from: &str, to: &str, slots: u32) -> Result<(), HarnessError> {
        let cli = find_binary("redis-cli", "redis-tools")?;
        let mut cmd = Command::new(cli);
        cmd.arg("--cluster")
            .arg("reshard")
            .arg(format!("127.0.0.1:{}", self.nodes[0].port()))
            .args(["--cluster-from", from, "--cluster-to", to])
            .arg("--cluster-slots")
            .arg(slots.to_string())
            .arg("--cluster-yes");
        run_command("redis-cli", cmd, COMMAND_TIMEOUT)?;
        self.wait_healthy(START_TIMEOUT)
    }

    /// The ports of the nodes whose `INFO replication` role is `role`
    /// (`master` or `slave`) now.
    pub fn ports_with_role(&self, role: &str) -> Result<Vec<u16>, HarnessError> {
        let mut ports = Vec::new();
        for node in &self.nodes {
            if node.info_field("replication", "role")?.as_deref() == Some(role) {
                ports.push(node.port());
            }
        }
        Ok(ports)
    }

    /// Waits until every node reports `cluster_state:ok` and knows all the
    /// others, and every replica's link is up.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        let want_known = self.nodes.len().to_string();
        loop {
            let mut why = None;
            for node in &self.nodes {
                let info = node.command(&["CLUSTER", "INFO"])?;
                let field = |k: &str| {
                    info.lines()
                        .find_map(|l| l.strip_prefix(&format!("{k}:")))
                        .map(|v| v.trim().to_owned())
                };
                if field("cluster_state").as_deref() != Some("ok")
                    || field("cluster_known_nodes").as_deref() != Some(want_known.as_str())
                {
                    why = Some(format!("node {}: {info}", node.port()));
                    break;
                }
                if node.info_field("replication", "role")?.as_deref() == Some("slave")
                    && node
                        .info_field("replication", "master_link_status")?
                        .as_deref()
                        != Some("up")
                {
                    why = Some(format!("replica {}: link not up", node.port()));
                    break;
                }
            }
            let Some(why) = why else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(HarnessError::NotReady {
                    server: "redis-cluster",
                    port: self.nodes.first().map_or(0, RedisServer::port),
                    waited: timeout,
                    log_tail: why,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
