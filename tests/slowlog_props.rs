//! Property tests of the slow-log pieces:
//! (a) the MySQL and PostgreSQL parsers (every format and layout, long
//!     lines in pieces, gzip-compressed input) and the fingerprinter never
//!     panic on arbitrary input and keep their bounds;
//! (b) the tailer against a model of the file through appends, partial
//!     lines, rename + create, copytruncate, delete + recreate and restarts
//!     from the saved position: every complete line handed out exactly once,
//!     in order;
//! (c) a 100 MB single statement (in a MySQL slow log, a PostgreSQL jsonlog,
//!     csvlog, CloudNativePG and Cloud SQL log) and random binary input
//!     through the whole collector: no panic, the event counted with its
//!     timing and the class of the whole statement, and the process's RSS
//!     bounded (measured in a child process so the other tests' allocations
//!     do not blur it).

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use perfwatch_slowlog::fingerprint::{fingerprint, fingerprint_id};
use perfwatch_slowlog::mysql::MysqlParser;
use perfwatch_slowlog::postgres::{PgFormat, PgParser, prefix_regex};
use perfwatch_slowlog::tail::{StartAt, Tailer, read_gz};
use perfwatch_slowlog::{LogFormat, LogParser};
use proptest::prelude::*;

/// `cases` cases; failures are reported with their minimal input (no
/// regression files written next to the tests: found cases become unit
/// tests of the module at fault).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- (a) parsers

/// Pieces of real log lines, so random lines reach the parsers' deeper paths.
const FRAGMENTS: &[&str] = &[
    "# Time: 2016-07-20T18:13:25.698433Z",
    "# User@Host: root[root] @ localhost []  Id: 3",
    "# User@Host: ",
    "# Query_time: ",
    "# Query_time: 1.5  Lock_time: 0.1 Rows_sent: 1  Rows_examined: 2",
    "# Thread_id: 8  Schema: ",
    "# Log_slow_rate_limit: ",
    "# administrator command: ",
    "#",
    "# ",
    "use ",
    "USE `",
    "SET timestamp=",
    "/usr/sbin/mysqld, Version: 8.0 (x). started with:",
    "Tcp port: ",
    "Time                 Id Command    Argument",
    "\t",
    "2024-01-01 10:00:00.123 UTC [12] u@d LOG:  duration: ",
    "2024-01-01 10:00:00.123 UTC [12] u@d LOG:  statement: ",
    "2024-01-01 10:00:00.123 UTC [12] u@d DETAIL:  parameters: $1 = '1'",
    "2024-01-01 10:00:00.123 UTC [12] LOG:  duration: 1.5 ms",
    "1.5 ms  statement: ",
    "0.3 ms  execute <unnamed>: ",
    "0.3 ms  parse s1: ",
    "0.3 ms  bind s1/p: ",
    "{\"pid\":4,\"error_severity\":\"LOG\",\"message\":\"duration: ",
    "{\"pid\":4,\"error_severity\":\"LOG\",\"message\":\"statement: select 1\"}",
    "\"}",
    "2024-01-01 10:00:00.123 UTC,\"u\",\"d\",1,\"h\",s,1,\"SELECT\",t,1/2,0,LOG,00000,\"duration: ",
    "\",,,,,,,,,\"psql\",\"client backend\",,0",
    "\"",
    "\"\"",
    "'",
    "/*",
    "*/",
    "/*!",
    "-- ",
    "0x",
    "-1.5e3",
    " IN (1, 2)",
    "INSERT INTO t VALUES (1),(2)",
    "LIMIT 1, 2",
    "ORDER BY a ASC",
    "CALL p(",
    "select /*!40001 sql_no_cache */ * from t",
    "é",
    "\u{fffd}",
    "\r",
    "Jan  1 10:00:00 h postgres[42]: [3-1] ",
    "Jan  1 10:00:00 h postgres[42]: [3-2] #011",
    "2024-01-01T10:00:00+00:00 app[postgres.12]: [DATABASE] [1-1] sql_error_code = 00000 ",
    "app postgres.12 - [2-3] ",
    " database=\"d\" user=\"u\" ",
    "{\"logger\":\"postgres\",\"record\":{\"error_severity\":\"LOG\",\"process_id\":\"7\",\"message\":\"duration: ",
    "{\"severity\":\"INFO\",\"textPayload\":\"2024-01-01 10:00:00.123 UTC [4]: [1-1] db=d,user=u LOG:  duration: ",
    "\\n\\t",
    // JSON escapes (long lines decode them as they stream), whole or in part.
    "\\u00e9",
    "\\ud83d\\ude00",
    "\\ud83d",
    "\\u00",
    "\\\"",
    "\\",
    "[{",
    "},",
    "nan",
    "inf",
    "-7",
    ";",
];

fn log_line() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
            2 => "[ -~]{0,12}",
            1 => any::<String>().prop_map(|s| s.chars().take(8).collect()),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

/// Feeds `lines` to every parser (and every statement and line to the
/// fingerprinter) and checks the invariants every event must keep.
fn feed_all(lines: &[String], max: usize) {
    let mut events = Vec::new();
    // Every format and layout, each line also as the tailer hands out a
    // long one: its first `max` bytes, then the rest as pieces.
    for format in LogFormat::ALL {
        let prefix = format.takes_log_line_prefix().then_some("%m [%p] %q%u@%d ");
        let mut p = LogParser::new(format, prefix, max).unwrap();
        for line in lines {
            let mut cut = line.len().min(max);
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            events.extend(p.line(&line[..cut]));
            for piece in line.as_bytes()[cut..].chunks(7) {
                events.extend(p.more(&String::from_utf8_lossy(piece)));
            }
        }
        while let Some(e) = p.flush() {
            events.push(e);
        }
        let _ = p.unrecognized();
    }
    let mut mysql = MysqlParser::new(max);
    let mut pgs: Vec<PgParser> = vec![
        PgParser::new(PgFormat::Stderr, Some("%m [%p] %q%u@%d "), max).unwrap(),
        PgParser::new(PgFormat::Stderr, None, max).unwrap(),
        PgParser::new(
            PgFormat::Stderr,
            Some("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h "),
            max,
        )
        .unwrap(),
        PgParser::new(PgFormat::Csv, None, max).unwrap(),
        PgParser::new(PgFormat::Json, None, max).unwrap(),
    ];
    for line in lines {
        events.extend(mysql.line(line));
        for p in &mut pgs {
            events.extend(p.line(line));
        }
        let f = fingerprint(line);
        assert_eq!(fingerprint_id(&f).len(), 16);
    }
    events.extend(mysql.flush());
    for p in &mut pgs {
        while let Some(e) = p.flush() {
            events.push(e);
        }
    }
    for e in &events {
        assert!(
            e.query.len() <= max,
            "statement text of {} bytes over the cap {max}: {e:?}",
            e.query.len()
        );
        assert!(
            e.duration.is_finite() && e.duration >= 0.0,
            "duration {} from {lines:?}",
            e.duration
        );
        assert!(e.lock_time.is_finite() && e.lock_time >= 0.0, "{e:?}");
        assert!(e.sample_rate >= 1);
        let _ = fingerprint_id(&fingerprint(&e.query));
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes, made lines the way the tailer makes them (lossy UTF-8).
    #[test]
    fn parsers_and_fingerprint_never_panic_on_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        max in 1usize..300,
    ) {
        let lines: Vec<String> = bytes
            .split(|&b| b == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        feed_all(&lines, max);
        let _ = fingerprint(&String::from_utf8_lossy(&bytes));
    }

    /// Lines built from pieces of real log lines.
    #[test]
    fn parsers_and_fingerprint_never_panic_on_log_like_lines(
        lines in prop::collection::vec(log_line(), 0..60),
        max in 1usize..300,
    ) {
        feed_all(&lines, max);
        let _ = fingerprint(&lines.join("\n"));
    }

    /// Any `log_line_prefix` is either translated or refused, never a panic.
    #[test]
    fn prefix_translation_never_panics(prefix in "([ -~]|%[a-zA-Z%]){0,20}", line in "[ -~]{0,80}") {
        if let Ok(re) = prefix_regex(&prefix) {
            let _ = re.captures(&line);
        }
    }
}

proptest! {
    // Each case reads three files through every format: fewer cases.
    #![proptest_config(config(64))]

    /// Compressed input: gzip of log-like lines through every parser, and
    /// random bytes (a corrupt or truncated `.gz`) read as gzip, never a
    /// panic: an error or lines.
    #[test]
    fn compressed_input_never_panics(
        lines in prop::collection::vec(log_line(), 0..40),
        garbage in prop::collection::vec(any::<u8>(), 0..2048),
        cut in 0usize..400,
        max in 1usize..300,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(lines.join("\n").as_bytes()).unwrap();
        let packed = gz.finish().unwrap();
        for (name, bytes) in [
            ("whole.gz", packed.clone()),
            ("cut.gz", packed[..cut.min(packed.len())].to_vec()),
            ("garbage.gz", garbage),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            for format in LogFormat::ALL {
                let mut p = LogParser::new(format, None, max).unwrap();
                let read = read_gz(&path, max, &mut |text, _, more| {
                    let _ = p.piece(text, more);
                });
                while p.flush().is_some() {}
                if name == "whole.gz" {
                    prop_assert!(read.is_ok(), "{read:?}");
                }
            }
        }
    }
}

// ------------------------------------------------------------ (b) the tailer

/// Longest line the tailer keeps in the model runs.
const MAX_LINE: usize = 64;

#[derive(Debug, Clone)]
enum Action {
    /// Complete lines.
    Append(Vec<String>),
    /// Text without a newline (the writer is mid-line).
    Partial(String),
    /// `mv log log.N` and a new empty file at the path.
    RenameCreate,
    /// Emptied in place, then these lines written.
    CopyTruncate(Vec<String>),
    /// `rm log` and a new empty file at the path.
    DeleteRecreate,
    /// perfwatch restarts from the position it saved.
    Restart,
}

fn payload() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z ]{0,12}",
        1 => "[a-z]{50,150}", // longer than MAX_LINE (with its prefix)
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => prop::collection::vec(payload(), 0..5).prop_map(Action::Append),
        2 => payload().prop_map(Action::Partial),
        1 => Just(Action::RenameCreate),
        1 => prop::collection::vec(payload(), 0..4).prop_map(Action::CopyTruncate),
        1 => Just(Action::DeleteRecreate),
        2 => Just(Action::Restart),
    ]
}

/// The file being written, what a reader must see, and the tailer.
struct World {
    dir: tempfile::TempDir,
    path: PathBuf,
    writer: File,
    rotated: usize,
    /// Every line (and partial) starts with a unique number, so a file
    /// rewritten after copytruncate never starts like the old one did.
    seq: u64,
    /// Unterminated text at the end of the current file.
    partial: String,
    expected: Vec<String>,
    got: Vec<String>,
    tailer: Tailer,
}

fn cut(s: &str) -> String {
    s[..s.len().min(MAX_LINE)].to_owned()
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slow.log");
        let writer = File::create(&path).unwrap();
        let tailer = Tailer::new(path.clone(), StartAt::Beginning, None, MAX_LINE);
        Self {
            dir,
            path,
            writer,
            rotated: 0,
            seq: 0,
            partial: String::new(),
            expected: Vec::new(),
            got: Vec::new(),
            tailer,
        }
    }

    fn numbered(&mut self, payload: &str) -> String {
        self.seq += 1;
        format!("{}-{payload}", self.seq)
    }

    fn append_lines(&mut self, payloads: &[String]) {
        let mut buf = String::new();
        for p in payloads {
            let line = self.numbered(p);
            buf.push_str(&line);
            buf.push('\n');
            let whole = std::mem::take(&mut self.partial) + &line;
            self.expected.push(cut(&whole));
        }
        self.writer.write_all(buf.as_bytes()).unwrap();
    }

    /// The old file is done: its unterminated text is a line of its own.
    fn rotated_away(&mut self) {
        if !self.partial.is_empty() {
            let p = std::mem::take(&mut self.partial);
            self.expected.push(cut(&p));
        }
    }

    fn apply(&mut self, a: &Action) {
        match a {
            Action::Append(lines) => self.append_lines(lines),
            Action::Partial(p) => {
                let text = self.numbered(p);
                self.writer.write_all(text.as_bytes()).unwrap();
                self.partial.push_str(&text);
            }
            Action::RenameCreate => {
                self.rotated += 1;
                let to = self.dir.path().join(format!("slow.log.{}", self.rotated));
                std::fs::rename(&self.path, to).unwrap();
                self.writer = File::create(&self.path).unwrap();
                self.rotated_away();
            }
            Action::CopyTruncate(lines) => {
                self.rotated += 1;
                let to = self.dir.path().join(format!("slow.log.{}", self.rotated));
                std::fs::copy(&self.path, to).unwrap();
                self.writer.set_len(0).unwrap();
                self.writer = OpenOptions::new().append(true).open(&self.path).unwrap();
                self.rotated_away();
                self.append_lines(lines);
            }
            Action::DeleteRecreate => {
                std::fs::remove_file(&self.path).unwrap();
                self.writer = File::create(&self.path).unwrap();
                self.rotated_away();
            }
            Action::Restart => {
                let saved = self.tailer.position(None);
                self.tailer = Tailer::new(self.path.clone(), StartAt::End, saved, MAX_LINE);
            }
        }
    }

    fn read(&mut self) {
        let got = &mut self.got;
        self.tailer
            .read(usize::MAX, &mut |line, _| got.push(line.to_owned()))
            .unwrap();
    }
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn tailer_hands_out_every_line_once_in_order(
        script in prop::collection::vec(action(), 1..40),
    ) {
        let mut w = World::new();
        w.read();
        for a in &script {
            w.apply(a);
            w.read();
            prop_assert_eq!(&w.got, &w.expected, "after {:?}", a);
        }
    }
}

// ------------------------------------------- (c) huge statement, binary input

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Sum of a family's samples (of one target, or all).
fn sum_of(body: &str, name: &str, target: Option<&str>) -> f64 {
    let label = target.map(|t| format!("target=\"{t}\""));
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| label.as_ref().is_none_or(|t| l.contains(t.as_str())))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

const CHILD_ENV: &str = "PERFWATCH_SLOWLOG_RSS_CHILD";
const CHILD_TEST: &str = "huge_statement_and_binary_input_child";

/// Runs the measurement alone in a child process (this binary, one test).
#[test]
fn huge_statement_and_binary_input_keep_memory_bounded() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "child ran no test:\n{text}");
    if let Some(line) = text.lines().find(|l| l.starts_with("RSS ")) {
        println!("{line}");
    }
}

/// Appends `n` random bytes (fixed seed: reproducible).
fn append_random(f: &mut File, n: usize, mut seed: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = n;
    while left > 0 {
        for b in buf.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        let k = left.min(buf.len());
        f.write_all(&buf[..k]).unwrap();
        left -= k;
    }
}

const EVENT_HEAD: &str =
    "# Time: 2026-11-22T03:00:00.000000Z\n# User@Host: app[app] @ localhost []  Id: 7\n";

/// A PostgreSQL layout that writes an event as one record: its `format` in
/// the config, the text before the `duration: ` value and the text after
/// the statement.
type PgLayout = (&'static str, &'static str, &'static str);

const CSV_HEAD: &str = "2026-11-22 03:00:00.000 UTC,\"app\",\"shop\",42,\"127.0.0.1:5000\",65a1.1,1,\"SELECT\",2026-11-22 03:00:00 UTC,3/4,0,LOG,00000,\"duration: ";
const CSV: PgLayout = (
    "postgres-csv",
    CSV_HEAD,
    "\",,,,,,,,,\"psql\",\"client backend\",,0",
);

const JSON: PgLayout = (
    "postgres-json",
    r#"{"timestamp":"2026-11-22 03:00:00.000 UTC","user":"app","dbname":"shop","pid":42,"error_severity":"LOG","message":"duration: "#,
    r#""}"#,
);

/// CloudNativePG's JSON lines.
const CNPG: PgLayout = (
    "postgres-cnpg",
    r#"{"level":"info","logger":"postgres","msg":"record","record":{"user_name":"app","database_name":"shop","process_id":"42","error_severity":"LOG","message":"duration: "#,
    r#""}}"#,
);

/// Cloud SQL's JSON lines.
const CLOUDSQL: PgLayout = (
    "postgres-cloudsql",
    r#"{"insertId":"1","textPayload":"2026-11-22 03:00:00.000 UTC [42]: [1-1] db=shop,user=app LOG:  duration: "#,
    r#"","timestamp":"2026-11-22T03:00:00Z"}"#,
);

/// One event of `ms` milliseconds running `query` in a PostgreSQL `layout`.
fn pg_event(f: &mut File, (_, head, tail): PgLayout, ms: &str, query: &str) {
    writeln!(f, "{head}{ms} ms  statement: {query}{tail}").unwrap();
}

fn small_event(f: &mut File, secs: &str, query: &str) {
    write!(
        f,
        "{EVENT_HEAD}# Query_time: {secs}  Lock_time: 0.000000 Rows_sent: 1  Rows_examined: 1\nSET timestamp=1;\n{query};\n"
    )
    .unwrap();
}

#[test]
#[ignore = "run by huge_statement_and_binary_input_keep_memory_bounded in a child process"]
fn huge_statement_and_binary_input_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(huge_statement_and_binary_input());
}

/// How the 100 MB statement starts (then `x` to the end of its line).
const HUGE_START: &str = "INSERT INTO t VALUES ('";

/// How the 100 MB statement ends in the csvlog: comment lines after it, in
/// the same record (its quotes doubled, as the csvlog writes them).
const CSV_STATEMENT_END: &str = "')\n-- a \"\"quoted\"\" line ' \n-- more";

/// Writes `head`, a statement of [`HUGE_START`] then `size` bytes of
/// `chunk` copies, and `end` to `file`.
fn write_huge_line(file: &mut File, head: &str, chunk: &[u8], size: usize, end: &str) {
    write!(file, "{head}{HUGE_START}").unwrap();
    for _ in 0..size / chunk.len() {
        file.write_all(chunk).unwrap();
    }
    file.write_all(end.as_bytes()).unwrap();
}

async fn huge_statement_and_binary_input() {
    const MAX_LINE: usize = 256 * 1024;
    const HUGE: usize = 100 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("slow.log");
    let mut f = File::create(&log).unwrap();
    small_event(&mut f, "0.100000", "select 00");
    small_event(&mut f, "0.100000", "select 0");
    // The same statement in PostgreSQL's layouts: a jsonlog (the line cut
    // at the cap is no longer JSON), a csvlog (as a multi-line record), and
    // CloudNativePG's and Cloud SQL's JSON lines: (target, file, layout, how
    // the 100 MB statement ends).
    let pg_logs = [
        ("bigjson", "postgresql.json", JSON, "')"),
        ("bigcsv", "postgresql.csv", CSV, CSV_STATEMENT_END),
        ("bigcnpg", "cnpg.json", CNPG, "')"),
        ("bigcloudsql", "cloudsql.json", CLOUDSQL, "')"),
    ];
    let mut pg_files = pg_logs.map(|(_, name, layout, _)| {
        let path = dir.path().join(name);
        let mut file = File::create(&path).unwrap();
        pg_event(&mut file, layout, "100.000", "select 0");
        (path, file)
    });
    let mut toml = String::from("[global]\ninterval = \"500ms\"\ntimeout = \"450ms\"\n");
    let logs = pg_logs
        .iter()
        .zip(&pg_files)
        .map(|(l, (path, _))| (l.0, l.2.0, path));
    for (name, format, path) in [("big", "mysql", &log)].into_iter().chain(logs) {
        toml.push_str(&format!(
            "[[slowlog]]\nname = \"{name}\"\nformat = \"{format}\"\npath = \"{}\"\nstart_at = \"beginning\"\nidle_flush = \"300ms\"\nmax_line_bytes = {MAX_LINE}\n",
            path.display()
        ));
    }
    let pw = common::Perfwatch::start(&toml).await;
    let events = |n: f64| {
        move |b: &str| (sum_of(b, "perfwatch_slow_queries_total", None) == n).then(|| b.to_owned())
    };
    pw.wait_for(Duration::from_secs(10), "6 events", events(6.0))
        .await;
    // Warm up the scrape path, then take the baseline.
    for _ in 0..5 {
        pw.scrape().await;
    }
    let chunk = vec![b'x'; 1024 * 1024];
    let baseline = vm_rss_kib();

    // Sample RSS while perfwatch reads.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(vm_rss_kib());
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        })
    };

    // One 100 MB statement on a single line, in each log, between the
    // event's head and its end, then the next event.
    write_huge_line(
        &mut f,
        &format!(
            "{EVENT_HEAD}# Query_time: 12.500000  Lock_time: 0.250000 Rows_sent: 0  Rows_examined: 9\nSET timestamp=2;\n"
        ),
        &chunk,
        HUGE,
        "');\n",
    );
    small_event(&mut f, "0.500000", "select 1");
    f.flush().unwrap();
    for ((.., layout, statement_end), (_, file)) in pg_logs.iter().zip(&mut pg_files) {
        let (_, head, tail) = layout;
        let end = format!("{statement_end}{tail}\n");
        let head = format!("{head}12500.000 ms  statement: ");
        write_huge_line(file, &head, &chunk, HUGE, &end);
        pg_event(file, *layout, "500.000", "select 1");
        file.flush().unwrap();
    }
    let body = pw
        .wait_for(Duration::from_secs(120), "16 events", events(16.0))
        .await;
    let targets: Vec<&str> = ["big"].into_iter().chain(pg_logs.map(|l| l.0)).collect();
    for &target in &targets {
        let l = [("target", target)];
        let v = |name| common::value(&body, name, &l).unwrap_or(-1.0);
        let sum = sum_of(
            &body,
            "perfwatch_slow_query_duration_seconds_sum",
            Some(target),
        );
        let want = if target == "big" { 13.2 } else { 13.1 };
        assert!((sum - want).abs() < 1e-6, "{target}: total time {sum}");
        assert_eq!(v("perfwatch_slowlog_long_lines_total"), 1.0, "{target}");
        // Every layout digests a statement of any size as it streams (issue
        // 16): read whole, it is not truncated.
        assert_eq!(
            v("perfwatch_slowlog_truncated_events_total"),
            0.0,
            "{target}: the 100 MB statement is read whole"
        );
        let bytes = v("perfwatch_slowlog_bytes_read_total");
        assert!(bytes > HUGE as f64, "{target}: read it all: {bytes}");
    }
    let lock = sum_of(
        &body,
        "perfwatch_slow_query_lock_seconds_total",
        Some("big"),
    );
    assert!((lock - 0.25).abs() < 1e-6, "lock time {lock}");
    // Its class has the 12.5 s event in every layout: the whole
    // statement's (`insert into t values(?+)`; csvlog's goes on after the
    // long line, with its comment lines).
    assert_eq!(
        fingerprint(&format!("{HUGE_START}x')")),
        "insert into t values(?+)"
    );
    let csv_whole = fingerprint(&format!(
        "{HUGE_START}x')\n-- a \"quoted\" line ' \n-- more"
    ));
    for &target in &targets {
        let class = if target == "bigcsv" {
            &csv_whole
        } else {
            "insert into t values(?+)"
        };
        assert_eq!(
            common::value(
                &body,
                "perfwatch_slow_query_duration_seconds_sum",
                &[("target", target), ("fingerprint", &fingerprint_id(class))]
            ),
            Some(12.5),
            "{target}: {class}\n{}",
            body.lines()
                .filter(|l| l.starts_with("perfwatch_slow_query_fingerprint_info"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // Random binary garbage (unrecognized lines, or lines of the statement
    // before it while that one is open), then a good event.

    append_random(&mut f, 8 * 1024 * 1024, 0x9E37_79B9_7F4A_7C15);
    f.write_all(b"\n").unwrap();
    small_event(&mut f, "2.000000", "select 2");
    f.flush().unwrap();
    let body = pw
        .wait_for(Duration::from_secs(60), "17 events", events(17.0))
        .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let growth_kib = peak.saturating_sub(baseline);
    println!("RSS baseline {baseline} KiB, peak {peak} KiB, growth {growth_kib} KiB");
    assert_eq!(
        common::value(&body, "perfwatch_target_up", &[("target", "big")]),
        Some(1.0)
    );
    let sum = sum_of(
        &body,
        "perfwatch_slow_query_duration_seconds_sum",
        Some("big"),
    );
    assert!((sum - 15.2).abs() < 1e-6, "total time {sum}");
    // Bounded: a few MB over what max_line_bytes allows, never the statement.
    // Five targets, each holding at most a few copies of a cut line.
    let allowed_kib = targets.len() as u64 * (MAX_LINE / 1024) as u64 * 4 + 8 * 1024;
    assert!(
        growth_kib <= allowed_kib,
        "RSS grew by {growth_kib} KiB (allowed {allowed_kib} KiB) reading a 100 MB statement"
    );
    pw.stop().await;
}
