//! Profiling aid: `digest_file FORMAT FILE [LOG_LINE_PREFIX]` digests a
//! whole slow log as `perfwatch digest` does (same library call) and
//! prints the totals, so `perf record` can be pointed at the library
//! alone without building the sidecar.

use perfwatch_slowlog::report::{ReportOptions, digest_file};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, format, path, rest @ ..] = args.as_slice() else {
        eprintln!("usage: digest_file FORMAT FILE [LOG_LINE_PREFIX]");
        std::process::exit(2);
    };
    let opts = ReportOptions {
        format: format.parse().expect("a log format"),
        log_line_prefix: rest.first().cloned(),
        top: 0,
        max_classes: 100_000,
        max_line_bytes: 64 * 1024,
    };
    let r = digest_file(path.as_ref(), &opts).expect("readable log");
    println!(
        "{} bytes, {} events, {} classes, {:.6} s total, {} unrecognized, {} truncated, {:.3} s, {:.1} MB/s",
        r.bytes,
        r.events,
        r.classes,
        r.total_seconds,
        r.unrecognized_lines,
        r.truncated_events,
        r.seconds,
        r.mb_per_second
    );
}
