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
