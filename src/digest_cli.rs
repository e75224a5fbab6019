//! `perfwatch digest FILE`: the command-line side of
//! [`perfwatch_slowlog::report`], which reads a whole slow log once with the
//! collector's own tailer, parser and digest and ranks the query classes by
//! total time, like a small pt-query-digest. Here: the flags, the printing
//! (the report to stdout as a table or JSON, the throughput to stderr, MB =
//! 10^6 bytes) and the exit status. A module of the binary (`main.rs`), not
//! of the library: it is the only place that needs `anyhow` for this.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use perfwatch_slowlog::LogFormat;
use perfwatch_slowlog::report::{Report, ReportOptions, digest_file};

/// What `perfwatch digest` was asked for (its command-line arguments: the
/// doc comments are the `--help` texts).
#[derive(Debug, Clone, clap::Args)]
pub struct DigestOptions {
    /// The slow-log file.
    #[arg(value_name = "FILE")]
    pub path: PathBuf,
    /// Log format: mysql, postgres, postgres-csv, postgres-json,
    /// postgres-syslog, postgres-heroku, postgres-cnpg, postgres-cloudsql
    /// (a *.gz file is read through gzip).
    #[arg(long, default_value = "mysql")]
    pub format: String,
    /// PostgreSQL stderr logs (also through syslog, Cloud SQL): the
    /// server's log_line_prefix.
    #[arg(long = "log-line-prefix")]
    pub log_line_prefix: Option<String>,
    /// Classes to print (0: all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Most distinct classes tracked; beyond, events count as "other".
    #[arg(long = "max-classes", default_value_t = 100_000)]
    pub max_classes: usize,
    /// Longest line / statement kept, bytes (like max_line_bytes).
    #[arg(long = "max-line-bytes", default_value_t = 64 * 1024)]
    pub max_line_bytes: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Reads and digests the whole file.
fn digest(opts: &DigestOptions) -> anyhow::Result<Report> {
    let Ok(format) = opts.format.parse::<LogFormat>() else {
        bail!(
            "unknown --format \"{}\" ({})",
            opts.format,
            LogFormat::NAMES.join(", ")
        );
    };
    let report = digest_file(
        &opts.path,
        &ReportOptions {
            format,
            log_line_prefix: opts.log_line_prefix.clone(),
            top: opts.top,
            max_classes: opts.max_classes,
            max_line_bytes: opts.max_line_bytes,
        },
    )?;
    Ok(report)
}

/// Runs `perfwatch digest`: the report to stdout, the throughput to stderr.
/// A file without a single event is an error (nothing was measured).
pub fn run(opts: &DigestOptions) -> anyhow::Result<()> {
    let report = digest(opts)?;
    let mut out = std::io::stdout().lock();
    if opts.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &report)?;
    }
    out.flush()?;
    eprintln!(
        "perfwatch digest: {} bytes, {} events, {} classes, {:.3} s, {:.1} MB/s",
        report.bytes, report.events, report.classes, report.seconds, report.mb_per_second
    );
    if let Some(why) = &report.diagnosis {
        eprintln!("perfwatch digest: degraded: {why}");
    }
    if report.events == 0 {
        bail!(
            "no {} slow-log event found in \"{}\"{}",
            opts.format,
            opts.path.display(),
            report
                .diagnosis
                .as_deref()
                .map(|why| format!(": {why}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn write_table(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>4}  {:<16}  {:>10}  {:>12}  {:>6}  fingerprint",
        "rank", "query id", "count", "total (s)", "time%"
    )?;
    let all = r.total_seconds.max(f64::MIN_POSITIVE);
    for (i, c) in r.top.iter().enumerate() {
        writeln!(
            out,
            "{:>4}  {:<16}  {:>10}  {:>12.6}  {:>5.1}%  {}",
            i + 1,
            c.id,
            c.count,
            c.total_seconds,
            100.0 * c.total_seconds / all,
            c.fingerprint.replace('\n', " ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfwatch_slowlog::report::ReportClass;

    fn options(path: &str, format: &str) -> DigestOptions {
        DigestOptions {
            path: path.into(),
            format: format.into(),
            log_line_prefix: None,
            top: 10,
            max_classes: 100,
            max_line_bytes: 64 * 1024,
            json: true,
        }
    }

    #[test]
    fn the_table_ranks_classes_with_their_share_of_time() {
        let class = |id: &str, count, total_seconds, fingerprint: &str| ReportClass {
            id: id.into(),
            count,
            total_seconds,
            max_seconds: 0.0,
            rows_examined: 0,
            fingerprint: fingerprint.into(),
        };
        let r = Report {
            bytes: 10,
            events: 4,
            classes: 2,
            unrecognized_lines: 0,
            unrecognized_bytes: 0,
            diagnosis: None,
            truncated_events: 0,
            total_seconds: 4.75,
            seconds: 0.1,
            mb_per_second: 0.0,
            top: vec![
                class(
                    "AAAAAAAAAAAAAAAA",
                    3,
                    4.5,
                    "select * from t\nwhere id in(?+)",
                ),
                class("BBBBBBBBBBBBBBBB", 1, 0.25, "select ?"),
            ],
        };
        let mut table = Vec::new();
        write_table(&mut table, &r).unwrap();
        let table = String::from_utf8(table).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "rank  query id               count     total (s)   time%  fingerprint",
                "   1  AAAAAAAAAAAAAAAA           3      4.500000   94.7%  select * from t where id in(?+)",
                "   2  BBBBBBBBBBBBBBBB           1      0.250000    5.3%  select ?",
            ]
        );
    }

    #[test]
    fn missing_file_and_bad_format_fail_with_their_messages() {
        let e = digest(&options("/nonexistent/slow.log", "mysql")).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "cannot read \"/nonexistent/slow.log\": No such file or directory (os error 2)"
        );
        let e = digest(&options("/nonexistent/slow.log", "oracle")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown --format \"oracle\" (mysql, postgres, postgres-csv, postgres-json, postgres-syslog, postgres-heroku, postgres-cnpg, postgres-cloudsql)"
        );
    }
}
