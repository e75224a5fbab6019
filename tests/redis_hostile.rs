//! The Redis collector against hostile fake servers written here: a reply
//! that declares 300 MB, and an INFO with 50,000 commands and error codes.
//! A fake server is a tokio listener on 127.0.0.1 that speaks just enough
//! RESP for the collector's handshake (it answers what `connect` sends:
//! `CLIENT SETNAME`, `INFO server`, `SLOWLOG LEN`, `MEMORY USAGE`) and then
//! misbehaves on the poll's `INFO`. It accepts a few connections at most and
//! lives as long as the test's runtime.
//!
//! How these were checked to fail before the fix: `a_300_mb_…` and
//! `fifty_thousand_…` ran against the collector as it was (no reply bound,
//! no series bound).
//! The huge reply was read to its end and the poll succeeded (the server
//! wrote all 300 MB; the peak RSS of the test process rose by 588,072 kB),
//! and the wide INFO gave 50,000 series per command family instead of 101.
//! With the fix: 13.4 MB written (8 MiB read plus socket buffers), peak RSS
//! +10 MB. The sampler test failed with the bound but without the sampler's
//! byte check ("the server sent more than max_reply_bytes (65536 bytes)").

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use common::{peak_rss_kb, reset_peak_rss};
use perfwatch::collectors::ReadyTarget;
use perfwatch::collectors::redis::RedisCollector;
use perfwatch::config::Config;
use perfwatch::exposition::sample_value;
use perfwatch::poll::{Collector, ErrorReason, PollError, PollOutput};
use prometheus::proto::{MetricFamily, MetricType};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The size the huge reply declares (the size of the reply in the finding).
const HUGE: u64 = 300_000_000;

/// Most connections a fake server accepts: a handful of polls.
const MAX_CONNECTIONS: usize = 8;

/// What the fake server answers to the poll's `INFO` (and, for
/// [`Behaviour::HugeHandshake`], to the handshake's `INFO server`).
#[derive(Clone)]
enum Behaviour {
    /// A bulk string that declares [`HUGE`] bytes, generated while it is
    /// written (never held in memory).
    HugeInfo,
    /// The same, already in answer to the handshake's `INFO server`.
    HugeHandshake,
    /// This INFO text.
    Info(Arc<String>),
}

/// One fake server: its port and what it saw.
struct Fake {
    port: u16,
    /// Bytes of huge replies written to the socket (the client read them or
    /// the kernel buffers them).
    written: Arc<AtomicU64>,
    /// Connections accepted.
    connections: Arc<AtomicUsize>,
}

impl Fake {
    async fn start(behaviour: Behaviour) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let written = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (w, n) = (written.clone(), connections.clone());
        tokio::spawn(async move {
            while n.load(Ordering::SeqCst) < MAX_CONNECTIONS {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                n.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, behaviour.clone(), w.clone()));
            }
        });
        Fake {
            port,
            written,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

/// Reads one RESP command (an array of bulk strings), bounded: at most 16
/// arguments of at most 1 KiB. None at EOF or on anything else.
async fn read_command(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Vec<String>> {
    async fn line(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
        let mut l = String::new();
        let n = r.take(1024).read_line(&mut l).await.ok()?;
        (n > 0).then(|| l.trim_end().to_owned())
    }
    let count: usize = line(r).await?.strip_prefix('*')?.parse().ok()?;
    if count > 16 {
        return None;
    }
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let len: usize = line(r).await?.strip_prefix('$')?.parse().ok()?;
        if len > 1024 {
            return None;
        }
        let mut arg = vec![0; len + 2];
        r.read_exact(&mut arg).await.ok()?;
        arg.truncate(len);
        args.push(String::from_utf8_lossy(&arg).to_ascii_uppercase());
    }
    Some(args)
}

fn bulk(text: &str) -> Vec<u8> {
    format!("${}\r\n{text}\r\n", text.len()).into_bytes()
}

/// Answers commands until the client goes away.
async fn serve(stream: TcpStream, behaviour: Behaviour, written: Arc<AtomicU64>) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    while let Some(args) = read_command(&mut r).await {
        let handshake = args.len() == 2 && args[0] == "INFO" && args[1] == "SERVER";
        let reply = match (args[0].as_str(), &behaviour) {
            ("INFO", Behaviour::HugeInfo) if !handshake => {
                write_huge(&mut w, &written).await;
                return;
            }
            ("INFO", Behaviour::HugeHandshake) => {
                write_huge(&mut w, &written).await;
                return;
            }
            ("INFO", Behaviour::Info(text)) if !handshake => bulk(text),
            ("INFO", _) => bulk("# Server\r\nredis_version:7.0.0\r\n"),
            ("CLIENT" | "SELECT" | "AUTH", _) => b"+OK\r\n".to_vec(),
            ("PING", _) => b"+PONG\r\n".to_vec(),
            // No SLOWLOG, no MEMORY USAGE: the collector then asks for INFO only.
            (cmd, _) => format!("-ERR unknown command '{cmd}'\r\n").into_bytes(),
        };
        if w.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Writes a bulk string that declares [`HUGE`] bytes: a valid INFO start,
/// then filler lines, 64 KiB at a time, until the client stops reading (the
/// write fails) or all of it is written. Counts what was written.
async fn write_huge(w: &mut tokio::net::tcp::OwnedWriteHalf, written: &AtomicU64) {
    let head = format!("${HUGE}\r\n# Server\r\nredis_version:7.0.0\r\n");
    if w.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut left = HUGE - (head.len() - format!("${HUGE}\r\n").len()) as u64;
    let line = format!("filler:{}\r\n", "x".repeat(90));
    let chunk = line.repeat(64 * 1024 / line.len());
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        let ok =
            tokio::time::timeout(Duration::from_secs(5), w.write_all(&chunk.as_bytes()[..n])).await;
        if !matches!(ok, Ok(Ok(()))) {
            return;
        }
        left -= n as u64;
        written.fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = w.write_all(b"\r\n").await;
}

/// A collector for one `[[redis]]` table with `extra` keys.
fn collector(url: &str, extra: &str) -> RedisCollector {
    let toml = format!(
        "[global]\ninterval = \"10s\"\ntimeout = \"5s\"\n[[redis]]\nname = \"hostile\"\nurl = \"{url}\"\n{extra}"
    );
    let config = Config::from_source("t.toml", &toml, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let target = &config.targets[0];
    let ReadyTarget::Redis(redis) = &target.ready else {
        panic!("not redis")
    };
    RedisCollector::new(redis, config.timing(target))
}

/// One poll, failing the test if it hangs (the engine's deadline is not
/// there to stop it).
async fn poll(c: &mut RedisCollector) -> Result<PollOutput, PollError> {
    tokio::time::timeout(Duration::from_secs(60), c.poll())
        .await
        .expect("the poll hung")
}

/// The memory tests measure the whole process: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The default bound (8 MiB) as the docs state it.
const DEFAULT_BOUND: u64 = 8 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_mb_info_reply_fails_the_poll_at_the_bound() {
    let _serial = SERIAL.lock().await;
    let fake = Fake::start(Behaviour::HugeInfo).await;
    let mut c = collector(&fake.url(), "");
    reset_peak_rss();
    let before = peak_rss_kb();
    let result = poll(&mut c).await;
    let grown_kb = peak_rss_kb().saturating_sub(before);
    // The collector stopped reading at the bound: what the server could
    // write beyond it is what the kernel buffers on loopback (a few MiB
    // each way; tcp_rmem's maximum is 32 MiB), far below the 300 MB.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = fake.written.load(Ordering::SeqCst);
    eprintln!("huge INFO: server wrote {written} bytes, peak RSS grew by {grown_kb} kB");
    let Err(err) = result else {
        panic!("a 300 MB INFO must fail the poll")
    };
    assert_eq!(err.reason, ErrorReason::Protocol, "{}", err.message);
    assert!(
        err.message.contains("\"hostile\"") && err.message.contains(&DEFAULT_BOUND.to_string()),
        "the message names the target and the bound: {}",
        err.message
    );
    assert!(
        written < 64 * 1024 * 1024,
        "the server wrote {written} bytes of a {HUGE}-byte reply"
    );
    assert!(
        grown_kb < 64 * 1024,
        "peak RSS of the test process grew by {grown_kb} kB"
    );
    // The connection was dropped: the next poll (after the engine's reset)
    // connects again, and fails the same way.
    c.reset();
    let Err(again) = poll(&mut c).await else {
        panic!("the second poll must fail too")
    };
    assert_eq!(again.reason, ErrorReason::Protocol, "{}", again.message);
    assert_eq!(fake.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_handshake_reply_fails_the_connect_at_the_bound() {
    let _serial = SERIAL.lock().await;
    let fake = Fake::start(Behaviour::HugeHandshake).await;
    let mut c = collector(&fake.url(), "max_reply_bytes = 1048576\n");
    let Err(err) = poll(&mut c).await else {
        panic!("a huge handshake reply must fail the connect")
    };
    assert_eq!(err.reason, ErrorReason::Protocol, "{}", err.message);
    assert!(err.message.contains("1048576"), "{}", err.message);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = fake.written.load(Ordering::SeqCst);
    assert!(
        written < 48 * 1024 * 1024,
        "the server wrote {written} bytes"
    );
}

/// Not hostile, but the other side of the bound: a real server whose key
/// names are long. The key sampler stops starting SCAN batches once a poll
/// has read half of `max_reply_bytes`, so its share stays under the bound:
/// polls succeed and the cycle takes more of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_key_names_shorten_the_sampler_step_instead_of_failing_polls() {
    let redis = perfwatch_testbench::RedisServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let url = redis.url();
    let keys = 3_000;
    tokio::task::spawn_blocking(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let mut pipe = redis::pipe();
        for i in 0..keys {
            pipe.cmd("SET")
                .arg(format!("session:{i:06}:{}", "n".repeat(200)))
                .arg(1)
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    })
    .await
    .unwrap();
    // 64 KiB a poll: one SCAN batch of 100 such keys is ~21 KB.
    let mut c = collector(
        &redis.url(),
        "max_reply_bytes = 65536\n[redis.keys]\nscan_count = 100\nmin_cycle_interval = \"0s\"\n",
    );
    let scanned = |f: &[MetricFamily]| {
        sample_value(f, "perfwatch_redis_key_sampler_keys_scanned_total", &[]).unwrap()
    };
    let first = poll(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    let after_first = scanned(&first.families.into_vec());
    assert!(
        after_first > 0.0 && after_first < keys as f64,
        "the first poll scanned {after_first} keys"
    );
    let mut polls = 1;
    loop {
        let out = poll(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{}", e.message));
        polls += 1;
        let f = out.families.into_vec();
        if sample_value(&f, "perfwatch_redis_key_sampler_cycles_total", &[]) == Some(1.0) {
            assert_eq!(
                sample_value(
                    &f,
                    "perfwatch_redis_key_group_keys",
                    &[("prefix", "session:")]
                ),
                Some(keys as f64)
            );
            break;
        }
        assert!(polls < 200, "no complete cycle after {polls} polls");
    }
}

/// A TLS listener on 127.0.0.1 with a self-signed certificate, which
/// completes handshakes (if the client goes on) and then closes.
async fn self_signed_tls_server() -> u16 {
    use tokio_rustls::rustls;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..MAX_CONNECTIONS {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await;
        }
    });
    port
}

/// `rediss://` verifies the server's certificate against the system roots
/// (without a `[redis.tls]` ca_file; a self-signed certificate is not under
/// them): a TLS failure naming the cause. `#insecure` is refused rather than
/// silently accepted (insecure_skip_verify in `[redis.tls]` is the one way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_still_verifies_certificates() {
    let port = self_signed_tls_server().await;
    let mut c = collector(&format!("rediss://127.0.0.1:{port}/0"), "");
    let Err(err) = poll(&mut c).await else {
        panic!("a self-signed certificate must not be trusted")
    };
    assert_eq!(err.reason, ErrorReason::Tls, "{}", err.message);
    assert!(
        err.message.contains("tls: unknown authority"),
        "{}",
        err.message
    );
    let mut c = collector(&format!("rediss://127.0.0.1:{port}/0#insecure"), "");
    let Err(err) = poll(&mut c).await else {
        panic!("#insecure must be refused")
    };
    assert_eq!(err.reason, ErrorReason::Protocol, "{}", err.message);
    assert!(err.message.contains("insecure"), "{}", err.message);
}

/// Series of family `name`.
fn series(families: &[MetricFamily], name: &str) -> usize {
    families
        .iter()
        .find(|f| f.name() == name)
        .map_or(0, |f| f.get_metric().len())
}

/// The sum of every sample of counter or gauge family `name`.
fn total(families: &[MetricFamily], name: &str) -> f64 {
    let Some(f) = families.iter().find(|f| f.name() == name) else {
        return 0.0;
    };
    let counter = f.get_field_type() == MetricType::COUNTER;
    f.get_metric()
        .iter()
        .map(|m| {
            if counter {
                m.get_counter().get_value()
            } else {
                m.get_gauge().get_value()
            }
        })
        .sum()
}

/// An INFO reply with `commands` commands (`cmdstat_x<i>`, i+1 calls each),
/// `errors` error codes (`E<i>`, i+1 each) and `dbs` databases (db<i>, i+1
/// keys, one expiring).
fn wide_info(commands: u64, errors: u64, dbs: u64) -> String {
    let mut s =
        String::from("# Server\r\nredis_version:7.0.0\r\nrun_id:wide\r\n# Commandstats\r\n");
    for i in 0..commands {
        let calls = i + 1;
        s.push_str(&format!(
            "cmdstat_x{i}:calls={calls},usec={},usec_per_call=2.00,rejected_calls=1,failed_calls={}\r\n",
            2 * calls,
            i % 3
        ));
    }
    s.push_str("# Errorstats\r\n");
    for i in 0..errors {
        s.push_str(&format!("errorstat_E{i}:count={}\r\n", i + 1));
    }
    s.push_str("# Keyspace\r\n");
    for i in 0..dbs {
        s.push_str(&format!("db{i}:keys={},expires=1,avg_ttl=1000\r\n", i + 1));
    }
    s
}

/// Sum of 1..=n.
fn triangle(n: u64) -> f64 {
    (n * (n + 1) / 2) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_commands_and_errors_give_top_n_and_other() {
    let _serial = SERIAL.lock().await;
    let (commands, errors, dbs) = (50_000u64, 50_000u64, 1_000u64);
    let info = wide_info(commands, errors, dbs);
    assert!(info.len() < 7 * 1024 * 1024, "fits the default bound");
    let fake = Fake::start(Behaviour::Info(Arc::new(info))).await;
    let mut c = collector(&fake.url(), "");
    let out = poll(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    let f = out.families.into_vec();
    // Defaults: 100 commands, 50 error codes, 16 databases, plus `other`.
    for (family, n) in [
        ("redis_commands_total", 101),
        ("redis_commands_duration_seconds_total", 101),
        ("redis_commands_rejected_calls_total", 101),
        ("redis_commands_failed_calls_total", 101),
        ("redis_errors_total", 51),
        ("redis_db_keys", 17),
        ("redis_db_keys_expiring", 17),
        ("redis_db_avg_ttl_seconds", 17),
        ("perfwatch_redis_db_keys_without_ttl", 17),
    ] {
        assert_eq!(series(&f, family), n, "{family}");
    }
    // The heaviest are kept by name; the rest is summed into `other`, so the
    // family totals are exact.
    let calls = |cmd: &str| sample_value(&f, "redis_commands_total", &[("cmd", cmd)]);
    assert_eq!(calls("x49999"), Some(50_000.0));
    assert_eq!(calls("x49900"), Some(49_901.0));
    assert_eq!(calls("x49899"), None, "folded into other");
    assert_eq!(calls("other"), Some(triangle(49_900)));
    assert_eq!(total(&f, "redis_commands_total"), triangle(commands));
    assert_eq!(
        total(&f, "redis_commands_duration_seconds_total"),
        2.0 * triangle(commands) / 1e6
    );
    assert_eq!(
        sample_value(
            &f,
            "redis_commands_rejected_calls_total",
            &[("cmd", "other")]
        ),
        Some(49_900.0)
    );
    assert_eq!(
        total(&f, "redis_commands_rejected_calls_total"),
        commands as f64
    );
    let failed: u64 = (0..commands).map(|i| i % 3).sum();
    assert_eq!(
        total(&f, "redis_commands_failed_calls_total"),
        failed as f64
    );
    let err = |code: &str| sample_value(&f, "redis_errors_total", &[("err", code)]);
    assert_eq!(err("E49999"), Some(50_000.0));
    assert_eq!(err("E49949"), None, "folded into other");
    assert_eq!(err("other"), Some(triangle(49_950)));
    assert_eq!(total(&f, "redis_errors_total"), triangle(errors));
    let db = |name: &str| sample_value(&f, "redis_db_keys", &[("db", name)]);
    assert_eq!(db("db999"), Some(1_000.0));
    assert_eq!(db("other"), Some(triangle(984)));
    assert_eq!(total(&f, "redis_db_keys"), triangle(dbs));
    assert_eq!(total(&f, "redis_db_keys_expiring"), dbs as f64);
    assert_eq!(
        sample_value(&f, "redis_db_keys_expiring", &[("db", "other")]),
        Some(984.0)
    );
    assert_eq!(
        sample_value(&f, "redis_db_avg_ttl_seconds", &[("db", "other")]),
        Some(1.0),
        "the mean TTL of the folded databases, weighted by their expiring keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_limits_are_configurable() {
    let _serial = SERIAL.lock().await;
    let fake = Fake::start(Behaviour::Info(Arc::new(wide_info(10, 10, 10)))).await;
    let mut c = collector(
        &fake.url(),
        "max_commands = 3\nmax_error_codes = 2\nmax_dbs = 1\n",
    );
    let out = poll(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    let f = out.families.into_vec();
    assert_eq!(series(&f, "redis_commands_total"), 4);
    assert_eq!(series(&f, "redis_errors_total"), 3);
    assert_eq!(series(&f, "redis_db_keys"), 2);
    assert_eq!(
        sample_value(&f, "redis_commands_total", &[("cmd", "other")]),
        Some(triangle(7))
    );
}
