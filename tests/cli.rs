//! The binary's command line: check-config, once, --version, and that the
//! exposition passes `promtool check metrics`.

mod common;

use std::process::Command;

use common::{assert_quickstart_cache_up, once, quickstart_pointed_at, write_in};
use perfwatch_testbench::RedisServer;

fn perfwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perfwatch"))
}

/// The commit this checkout is at, if it is a git checkout (CI's clone is):
/// what build.rs must have recorded.
fn checkout_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `--version`'s fields: version, revision, build date, rustc.
fn version_fields() -> [String; 4] {
    let out = perfwatch().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let version = lines.next().unwrap().strip_prefix("perfwatch ").unwrap();
    let mut field = |name: &str| {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("no {name} line:\n{text}"));
        let (key, value) = line.split_once(':').unwrap();
        assert_eq!(key.trim(), name, "{text}");
        value.trim().to_owned()
    };
    let revision = field("revision");
    let date = field("build date");
    let rustc = field("rustc");
    [version.to_owned(), revision, date, rustc]
}

#[test]
fn version_prints_version_commit_build_date_and_rustc() {
    let [version, revision, date, rustc] = version_fields();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    // build.rs reran when HEAD moved, so this is the checkout's commit.
    assert_eq!(
        revision,
        checkout_commit().unwrap_or_else(|| "unknown".into())
    );
    // RFC 3339 UTC, not in the future (tests/build_context.rs checks a fixed
    // SOURCE_DATE_EPOCH gives exactly its date).
    assert!(
        date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "{date}"
    );
    let now = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    assert!(
        date.as_str() <= String::from_utf8_lossy(&now.stdout).trim(),
        "{date}"
    );
    let out = Command::new("rustc").arg("--version").output().unwrap();
    let toolchain = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        Some(rustc.as_str()),
        toolchain.trim().strip_prefix("rustc ")
    );
}

#[test]
fn build_info_carries_the_same_facts_as_version() {
    let [version, revision, date, rustc] = version_fields();
    // A target that is down: `once` still prints perfwatch's own metrics.
    let port = perfwatch_testbench::free_port().unwrap();
    let out = once(&format!(
        "[[redis]]\nname = \"down\"\nurl = \"redis://127.0.0.1:{port}/0\"\n"
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "perfwatch_build_info{{version=\"{version}\",revision=\"{revision}\",build_date=\"{date}\",rustc_version=\"{rustc}\"}} 1"
    );
    assert!(text.lines().any(|l| l == want), "no {want} in:\n{text}");
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
    let (_dir, path) = common::temp_file(
        "bad.toml",
        "[global]\ninterval = \"1s\"\ntimeout = \"2s\"\n[[redis]]\nname = \"c\"\nurl = \"redis://x\"\ncolor = 1\n[[redis]]\nname = \"c\"\nurl = \"redis://y\"\n",
    );
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
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("redis[0].url: url is required (or sentinels and master_name)")
    );
}

/// The quickstart works as is: no environment variable, no other file, and
/// against a Redis on 127.0.0.1 (a throwaway one: only the port rewritten).
#[test]
fn the_quickstart_config_works_as_is_with_a_local_redis() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/quickstart.toml");
    let out = perfwatch()
        .arg("check-config")
        .arg(path)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let quickstart = std::fs::read_to_string(path).unwrap();
    let redis = RedisServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let out = once(&quickstart_pointed_at(&quickstart, &redis.url()));
    assert_quickstart_cache_up("perfwatch once", &out);
}

/// The example references secrets through `${VAR}`: its header's check
/// command sets every one of them, so following it works.
#[test]
fn the_example_config_documents_every_variable_its_check_needs() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/perfwatch.example.toml"
    ))
    .unwrap();
    // Comments are not expanded (commented-out keys, the header's own text).
    let mut vars: Vec<&str> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split("${").skip(1))
        .filter_map(|rest| rest.split_once('}').map(|(v, _)| v))
        .collect();
    vars.sort();
    vars.dedup();
    assert!(!vars.is_empty());
    let command = example
        .lines()
        .find(|l| l.contains("perfwatch check-config config/perfwatch.example.toml"))
        .expect("the example's header has no check-config command");
    let mut set: Vec<&str> = command
        .trim_start_matches('#')
        .split_whitespace()
        .filter_map(|w| w.split_once('=').map(|(k, _)| k))
        .collect();
    set.sort();
    assert_eq!(set, vars, "{command}");
    // And with exactly those set, the check passes.
    let mut check = perfwatch();
    check
        .arg("check-config")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/perfwatch.example.toml"
        ))
        .env_clear();
    for v in &vars {
        check.env(v, "example");
    }
    let out = check.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// Makes a FIFO `name` in `dir` (no writer ever opens it); its path.
fn mkfifo_in(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo only reads the NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    path
}

/// Makes a FIFO `fifo` in `dir` and, beside it, the config file `name`
/// holding `toml(path of the FIFO)`: a config that names, as a file
/// perfwatch reads, one that never opens. The config's path.
fn config_naming_a_fifo(
    dir: &std::path::Path,
    fifo: &str,
    name: &str,
    toml: impl FnOnce(&str) -> String,
) -> std::path::PathBuf {
    let fifo = mkfifo_in(dir, fifo);
    write_in(dir, name, &toml(&fifo.display().to_string()))
}

/// Waits up to `limit` for `child` to exit and returns its output; kills it
/// and fails if it does not exit.
fn output_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::Output {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
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
    let fifo = mkfifo_in(dir.path(), "config.fifo");
    let with_fifo_secret =
        config_naming_a_fifo(dir.path(), "password.fifo", "secret.toml", |fifo| {
            format!("[[redis]]\nname = \"c\"\nurl = \"redis://x\"\npassword_file = \"{fifo}\"\n")
        });
    for (path, want) in [
        (std::path::PathBuf::from("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
        (
            with_fifo_secret,
            "redis[0].password_file: cannot read secret file",
        ),
    ] {
        let child = perfwatch()
            .arg("check-config")
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = output_within(child, std::time::Duration::from_secs(10), "check-config");
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
    let config = config_naming_a_fifo(dir.path(), "slow.log", "p.toml", |fifo| {
        format!(
            "[[slowlog]]\nname = \"fifo\"\nformat = \"mysql\"\npath = \"{fifo}\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n"
        )
    });
    let child = perfwatch()
        .arg(format!("--config.file={}", config.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = output_within(
        child,
        std::time::Duration::from_secs(8),
        "perfwatch after SIGTERM",
    );
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
    let log = write_in(dir.path(), "slow.log", "# Time: 2024-01-01T00:00:00Z\n");
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o000)).unwrap();
    let config = write_in(
        dir.path(),
        "p.toml",
        &format!(
            "[[slowlog]]\nname = \"locked\"\nformat = \"mysql\"\npath = \"{}\"\n",
            log.display()
        ),
    );
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
