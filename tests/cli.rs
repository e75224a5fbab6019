//! The binary's command line: check-config, once, --version, and that the
//! exposition passes `promtool check metrics`.

mod common;

use std::process::Command;

use perfwatch_testbench::RedisServer;

fn perfwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perfwatch"))
}

#[test]
fn version_prints_the_crate_version() {
    let out = perfwatch().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_demo_is_not_part_of_the_sidecar() {
    // It moved to the test bench's perfwatch-demo binary (scripts/demo.sh).
    let out = perfwatch().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!help.contains("demo"), "{help}");
    let out = perfwatch().arg("demo").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "perfwatch demo must be an error"
    );
}

#[test]
fn check_config_lists_every_error_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[global]\ninterval = \"1s\"\ntimeout = \"2s\"\n[[redis]]\nname = \"c\"\nurl = \"redis://x\"\ncolor = 1\n[[redis]]\nname = \"c\"\nurl = \"redis://y\"\n",
    )
    .unwrap();
    let out = perfwatch().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    for want in [
        format!("{file}:3: global.timeout: timeout \"2s\" must be shorter than interval \"1s\""),
        format!("{file}:7: redis[0].color: unknown field `color`"),
        format!("{file}:9: redis[1].name: duplicate redis name \"c\""),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.starts_with("3 problems"), "{err}");
}

/// Finding 18 of issue 13: `check-config --config.file=X` exited 2 (usage)
/// while `once` takes `--config.file`; both forms work now.
#[test]
fn check_config_takes_the_config_file_flag_like_the_other_commands() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[[redis]]\nname = \"c\"\nurl = \"redis://x\"\n").unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[redis]]\nname = \"c\"\n").unwrap();
    for args in [
        vec![
            format!("--config.file={}", good.display()),
            "check-config".into(),
        ],
        vec![
            "check-config".into(),
            format!("--config.file={}", good.display()),
        ],
        vec!["check-config".into(), good.display().to_string()],
    ] {
        let out = perfwatch().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 1 target(s)"));
    }
    let out = perfwatch()
        .arg("check-config")
        .arg(format!("--config.file={}", bad.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("redis[0]: missing field `url`"));
}

#[test]
fn check_config_accepts_the_example() {
    let out = perfwatch()
        .arg("check-config")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/perfwatch.example.toml"
        ))
        .env("REDIS_PASSWORD", "example")
        .env("API_KEY", "example")
        .env("MYSQL_PASSWORD", "example")
        .env("PERFWATCH_PG_PASSWORD", "example")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn once(config: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, config).unwrap();
    perfwatch()
        .arg("once")
        .arg(format!("--config.file={}", path.display()))
        .output()
        .unwrap()
}

#[test]
fn once_prints_an_exposition_that_promtool_accepts() {
    let redis =
        RedisServer::start(&[("slowlog-log-slower-than", "0")]).unwrap_or_else(|e| panic!("{e}"));
    redis.command(&["SET", "bad_days:1", "x"]).unwrap();
    redis.command(&["GET", "bad_days:1"]).unwrap();
    let out = once(&format!(
        "[[redis]]\nname = \"cache\"\nurl = \"{}\"\n[redis.keys]\nprefixes = [\"bad_days:\"]\n",
        redis.url()
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("perfwatch_target_up{collector=\"redis\",target=\"cache\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("redis_keyspace_hits_total{target=\"cache\"}"),
        "{text}"
    );
    common::promtool_check_metrics(&text);
}

#[test]
fn once_fails_when_a_target_is_down() {
    let port = perfwatch_testbench::free_port().unwrap();
    let out = once(&format!(
        "[[redis]]\nname = \"down\"\nurl = \"redis://127.0.0.1:{port}/0\"\n"
    ));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("redis target \"down\" failed"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("perfwatch_target_up{collector=\"redis\",target=\"down\"} 0"),
        "{text}"
    );
}

/// Makes a FIFO at `path` (no writer ever opens it).
fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo only reads the NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// Waits up to `limit` for `child` to exit; kills it and fails if it does not.
fn wait_at_most(child: &mut std::process::Child, limit: std::time::Duration, what: &str) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what}: still running after {limit:?}");
}

/// Findings 6 and 7 of issue 13: `/dev/zero` or a FIFO given as a file
/// perfwatch reads (the config here; secrets, certificates and the web
/// config go through the same reader) made it read forever or block forever.
#[test]
fn files_that_never_end_or_never_open_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.fifo");
    mkfifo(&fifo);
    let secret_fifo = dir.path().join("password.fifo");
    mkfifo(&secret_fifo);
    let with_fifo_secret = dir.path().join("secret.toml");
    std::fs::write(
        &with_fifo_secret,
        format!(
            "[[redis]]\nname = \"c\"\nurl = \"redis://x\"\npassword_file = \"{}\"\n",
            secret_fifo.display()
        ),
    )
    .unwrap();
    for (path, want) in [
        (std::path::PathBuf::from("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
        (
            with_fifo_secret,
            "redis[0].password_file: cannot read secret file",
        ),
    ] {
        let mut child = perfwatch()
            .arg("check-config")
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_at_most(
            &mut child,
            std::time::Duration::from_secs(10),
            "check-config",
        );
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{}: {err}", path.display());
    }
}

/// Finding 6 of issue 13: with a FIFO as the slow-log path, SIGTERM logged
/// "shutting down" and the process never exited. Now the log is refused
/// (the target is down, saying why) and SIGTERM ends the process at once.
#[test]
fn sigterm_ends_perfwatch_promptly_whatever_its_slow_log_is() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("slow.log");
    mkfifo(&fifo);
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            "[[slowlog]]\nname = \"fifo\"\nformat = \"mysql\"\npath = \"{}\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n",
            fifo.display()
        ),
    )
    .unwrap();
    let mut child = perfwatch()
        .arg(format!("--config.file={}", config.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    wait_at_most(
        &mut child,
        std::time::Duration::from_secs(8),
        "perfwatch after SIGTERM",
    );
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a FIFO"), "{err}");
}

/// Finding 10 of issue 13: a slow log perfwatch may not read counted as
/// `reason="io"` while docs/SECURITY.md says `permission`. Root reads any
/// file, so as root the check runs `once` as `nobody`.
#[test]
fn a_slow_log_perfwatch_may_not_read_is_reason_permission() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("slow.log");
    std::fs::write(&log, "# Time: 2024-01-01T00:00:00Z\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o000)).unwrap();
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            "[[slowlog]]\nname = \"locked\"\nformat = \"mysql\"\npath = \"{}\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            env!("CARGO_BIN_EXE_perfwatch"),
        ]);
        c
    } else {
        perfwatch()
    };
    let out = cmd
        .arg("once")
        .arg(format!("--config.file={}", config.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run setpriv (util-linux): {e}"));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "perfwatch_poll_errors_total{collector=\"slowlog\",target=\"locked\",reason=\"permission\"} 1"
        ),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Permission denied"), "{err}");
}
