//! The process collector matches a real child process and reports its RSS.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Perfwatch, assert_value, sample, value};

#[tokio::test]
async fn matched_child_process_is_counted_with_its_memory() {
    let marker = format!("perfwatch-test-worker-{}", std::process::id());
    // 64 MiB of touched memory, so the RSS assertion has a clear floor, and
    // 4 more threads: Linux lists threads as tasks of the process, and they
    // must count neither as processes nor with their (shared) memory again.
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, threading, time; x = b'x' * (64 * 1024 * 1024); \
             [threading.Thread(target=time.sleep, args=(60,), daemon=True).start() for _ in range(4)]; \
             print('ready', flush=True); time.sleep(60)",
            &marker,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test: apt-get install python3");
    // Wait until the child has allocated.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    let toml = format!(
        "[global]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n[[process]]\nname = \"workers\"\nmatch = \"{marker}\"\n[[process]]\nname = \"nothing\"\nmatch = \"no-such-process-{marker}-x\"\n"
    );
    let pw = Perfwatch::start(&toml).await;
    let body = pw
        .wait_for(Duration::from_secs(10), "the worker", |b| {
            (value(b, "perfwatch_process_count", &[("target", "workers")]) == Some(1.0)
                && value(b, "perfwatch_process_count", &[("target", "nothing")]).is_some())
            .then(|| b.to_owned())
        })
        .await;
    let workers = [("target", "workers")];
    let rss = sample(&body, "perfwatch_process_resident_memory_bytes", &workers);
    assert!(rss >= 64.0 * 1024.0 * 1024.0, "rss {rss}");
    assert!(rss < 128.0 * 1024.0 * 1024.0, "rss {rss}");
    let nothing = [("target", "nothing")];
    assert_value(&body, "perfwatch_process_count", &nothing, Some(0.0));
    assert!(
        value(
            &body,
            "perfwatch_process_cpu_seconds_total",
            &[("target", "workers")]
        )
        .is_some()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    pw.wait_for(Duration::from_secs(10), "the worker gone", |b| {
        (value(b, "perfwatch_process_count", &[("target", "workers")]) == Some(0.0)).then_some(())
    })
    .await;
    pw.stop().await;
}
