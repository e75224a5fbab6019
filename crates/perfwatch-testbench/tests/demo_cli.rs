//! The `perfwatch-demo` binary's command line: the flags `scripts/demo.sh`
//! passes on exist, and a bad value fails before any server starts. (The
//! demo itself runs in perfwatch's `tests/demo.rs`.)
#![cfg(feature = "demo")]

use std::process::Command;

fn demo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perfwatch-demo"))
}

#[test]
fn help_lists_the_demo_flags() {
    let out = demo().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--web.listen-address",
        "--demo.phase",
        "--demo.fast-alerts",
        "--log.level",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_bad_phase_fails_before_starting_anything() {
    let out = demo().arg("--demo.phase=soon").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--demo.phase"), "{err}");
}
