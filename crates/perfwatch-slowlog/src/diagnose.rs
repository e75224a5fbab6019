//! Input a parser does not recognize, counted and explained: a PostgreSQL
//! log read with the wrong `log_line_prefix`, a compressed file, another
//! format or layout must say so instead of reading as "no slow queries"
//! (issue 16: 117,771 bytes read, 0 events, nothing said).

use crate::parser::LogFormat;
use crate::postgres::prefix_regex;

/// Unrecognized lines kept as a sample.
pub const SAMPLE_LINES: usize = 20;
/// Bytes of each sampled line.
const SAMPLE_BYTES: usize = 512;

/// Lines that are no part of the format being read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unrecognized {
    /// Lines (not counting blank ones).
    pub lines: u64,
    /// Their bytes, newlines included.
    pub bytes: u64,
    /// The first [`SAMPLE_LINES`] of them, each cut at 512 bytes.
    pub sample: Vec<String>,
}

impl Unrecognized {
    /// Counts `line` (a blank line is no evidence either way).
    pub fn note(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        self.lines += 1;
        self.bytes += line.len() as u64 + 1;
        if self.sample.len() < SAMPLE_LINES {
            let mut end = line.len().min(SAMPLE_BYTES);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            self.sample.push(line[..end].to_owned());
        }
    }
}

/// `log_line_prefix` values seen in the field, most common first: the
/// suggestion is the first that reads the unrecognized lines.
const COMMON_PREFIXES: [&str; 12] = [
    "%m [%p] ",
    "%m [%p] %q%u@%d ",
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
    "%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%t [%p]: [%l-1] ",
    "%m [%p]: [%l-1] ",
    "%t:%r:%u@%d:[%p]:",
    "%m:%r:%u@%d:[%p]:",
    "%t [%p] ",
    "%m ",
    "%t ",
];

/// The magic bytes of compressed files, as [`crate::fingerprint::text_from_bytes`]
/// shows them at the start of the first line.
fn compression(line: &str) -> Option<&'static str> {
    let bytes = crate::fingerprint::bytes_of_text(line);
    let b = bytes.as_ref();
    if b.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if b.starts_with(b"BZh") {
        Some("bzip2")
    } else {
        None
    }
}

/// What the unrecognized lines most likely are, for a log read as
/// `format` (with `log_line_prefix` for PostgreSQL stderr) that gave
/// `events` events from `bytes` bytes. `None` while the input is read
/// fine (some unrecognized lines among many events are noise: a log
/// started mid-event, a stray message).
pub fn diagnose(
    format: LogFormat,
    log_line_prefix: Option<&str>,
    events: u64,
    bytes: u64,
    u: &Unrecognized,
) -> Option<String> {
    if u.lines == 0 || (events > 0 && u.bytes.saturating_mul(2) <= bytes) {
        return None;
    }
    let what = format!(
        "{} of {} bytes ({} lines) are not {format} slow-log input",
        u.bytes, bytes, u.lines
    );
    let first = u.sample.first().map(String::as_str).unwrap_or("");
    let cause = if let Some(kind) = compression(first) {
        format!(
            "the file is {kind}-compressed: decompress it first (perfwatch reads gzip only for *.gz files)"
        )
    } else if let Some(layout) =
        other_layout(format, &u.sample).filter(|l| !l.contains(&format!("\"{format}\"")))
    {
        layout
    } else if format.takes_log_line_prefix() {
        let default = if format == LogFormat::PostgresCloudsql {
            crate::postgres::CLOUD_SQL_PREFIX
        } else {
            "%m [%p] "
        };
        let current = log_line_prefix.unwrap_or(default);
        match suggest_prefix(&u.sample) {
            Some(p) if p != current => format!(
                "log_line_prefix mismatch: the lines do not start with \"{current}\"; they look like log_line_prefix = '{p}'"
            ),
            _ => format!(
                "log_line_prefix mismatch or unknown layout: the lines do not start with \"{current}\" (set log_line_prefix to the server's; first line: {:?})",
                cut(first, 120)
            ),
        }
    } else {
        format!("unknown layout (first line: {:?})", cut(first, 120))
    };
    Some(format!("{what}: {cause}"))
}

fn cut(s: &str, n: usize) -> &str {
    let mut end = s.len().min(n);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A `log_line_prefix` from [`COMMON_PREFIXES`] that reads most of the
/// sample lines as messages.
pub fn suggest_prefix(sample: &[String]) -> Option<&'static str> {
    let lines: Vec<&String> = sample.iter().filter(|l| !l.starts_with('\t')).collect();
    if lines.is_empty() {
        return None;
    }
    COMMON_PREFIXES.into_iter().find(|p| {
        prefix_regex(p).is_ok_and(|re| {
            let hits = lines.iter().filter(|l| re.is_match(l)).count();
            hits * 2 > lines.len()
        })
    })
}

/// Another format or layout the sample looks like, with what to set.
fn other_layout(format: LogFormat, sample: &[String]) -> Option<String> {
    let share = |f: &dyn Fn(&str) -> bool| {
        let hits = sample.iter().filter(|l| f(l)).count();
        hits * 2 > sample.len()
    };
    let json = |l: &str| l.trim_start().starts_with('{');
    if share(&|l| json(l) && l.contains("\"record\"") && l.contains("\"logger\"")) {
        return Some("CloudNativePG JSON lines (the record under \"record\"): use format = \"postgres-cnpg\"".into());
    }
    if share(&|l| json(l) && (l.contains("\"jsonPayload\"") || l.contains("\"textPayload\""))) {
        return Some(
            "a Google Cloud Logging export (Cloud SQL): use format = \"postgres-cloudsql\"".into(),
        );
    }
    if format != LogFormat::PostgresJson && share(&|l| json(l) && l.contains("\"error_severity\""))
    {
        return Some("PostgreSQL jsonlog: use format = \"postgres-json\"".into());
    }
    if share(&|l| {
        l.starts_with("# Time:") || l.starts_with("# Query_time:") || l.starts_with("# User@Host:")
    }) && format != LogFormat::Mysql
    {
        return Some("a MySQL/MariaDB slow log: use format = \"mysql\"".into());
    }
    if share(&|l| l.contains(" app[postgres") || l.contains("app postgres.")) {
        return Some("Heroku logplex lines: use format = \"postgres-heroku\"".into());
    }
    if share(&|l| l.contains("]: [") && (l.contains(" postgres[") || l.contains(" postgresql["))) {
        return Some("PostgreSQL through syslog: use format = \"postgres-syslog\"".into());
    }
    if format == LogFormat::Mysql
        && share(&|l| l.contains("LOG:  ") || l.contains("ERROR:  ") || l.contains("STATEMENT:  "))
    {
        return Some(
            "a PostgreSQL log: use format = \"postgres\" (or postgres-csv, postgres-json)".into(),
        );
    }
    if format == LogFormat::Postgres
        && share(&|l| {
            l.len() > 20
                && l.as_bytes()[..4].iter().all(u8::is_ascii_digit)
                && l[19..].contains(",\"")
        })
    {
        return Some("PostgreSQL csvlog: use format = \"postgres-csv\"".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(lines: &[&str]) -> Unrecognized {
        let mut u = Unrecognized::default();
        for l in lines {
            u.note(l);
        }
        u
    }

    #[test]
    fn causes_table() {
        // (format, log_line_prefix, lines, words the message must hold)
        let gz = crate::fingerprint::text_from_bytes(&[0x1f, 0x8b, 8, 0, 0xff, 0xfe]).into_owned();
        let cases: Vec<(LogFormat, Option<&str>, Vec<&str>, &str)> = vec![
            (
                LogFormat::Postgres,
                None,
                vec![
                    "2024-01-01 10:00:00 UTC [42]: [1-1] user=app,db=shop,app=psql,client=[local] LOG:  duration: 1.000 ms  statement: select 1",
                ],
                "log_line_prefix = '%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h '",
            ),
            (
                LogFormat::Postgres,
                Some("%t [%p]: [%l-1] "),
                vec![
                    "2024-01-01 10:00:00.123 UTC [42] LOG:  duration: 1.000 ms  statement: select 1",
                ],
                "log_line_prefix = '%m [%p] '",
            ),
            (LogFormat::Mysql, None, vec![gz.as_str()], "gzip-compressed"),
            (
                LogFormat::Postgres,
                None,
                vec![gz.as_str()],
                "gzip-compressed",
            ),
            (
                LogFormat::Postgres,
                None,
                vec![
                    r#"{"timestamp":"2024-01-01 10:00:00.123 UTC","pid":1,"error_severity":"LOG","message":"x"}"#,
                ],
                "format = \"postgres-json\"",
            ),
            (
                LogFormat::Postgres,
                None,
                vec![
                    "2024-01-01 10:00:00.123 UTC,\"app\",\"shop\",42,\"h\",s,1,\"SELECT\",t,1/2,0,LOG,00000,\"duration: 1 ms\"",
                ],
                "format = \"postgres-csv\"",
            ),
            (
                LogFormat::PostgresJson,
                None,
                vec![
                    "# Time: 2024-01-01T00:00:00Z",
                    "# Query_time: 1  Lock_time: 0",
                ],
                "format = \"mysql\"",
            ),
            (
                LogFormat::PostgresCsv,
                None,
                vec!["hello world"],
                "unknown layout",
            ),
            (
                LogFormat::Mysql,
                None,
                vec![
                    "2024-01-01 10:00:00.123 UTC [42] LOG:  duration: 1.000 ms  statement: select 1",
                ],
                "format = \"postgres\"",
            ),
            (
                LogFormat::Postgres,
                None,
                vec![
                    r#"{"level":"info","logger":"postgres","msg":"record","record":{"error_severity":"LOG"}}"#,
                ],
                "format = \"postgres-cnpg\"",
            ),
            (
                LogFormat::PostgresJson,
                None,
                vec!["Jan  1 10:00:00 h postgres[42]: [3-1] LOG:  duration: 1 ms  statement: x"],
                "format = \"postgres-syslog\"",
            ),
        ];
        for (format, prefix, lines, want) in cases {
            let u = sample(&lines);
            let got = diagnose(format, prefix, 0, u.bytes, &u).unwrap_or_default();
            assert!(got.contains(want), "{format} {lines:?}: {got}");
        }
    }

    #[test]
    fn noise_among_many_events_is_not_degraded() {
        let u = sample(&["garbage"]);
        assert_eq!(diagnose(LogFormat::Mysql, None, 100, 10_000, &u), None);
        assert!(diagnose(LogFormat::Mysql, None, 0, 10_000, &u).is_some());
        assert_eq!(
            diagnose(LogFormat::Mysql, None, 0, 0, &Unrecognized::default()),
            None
        );
    }
}
