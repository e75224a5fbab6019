//! Running the tools the tests drive (promtool, amtool, the repository's
//! scripts) and failing with their output. Shared by `tests/rules.rs` and
//! `tests/e2e.rs`; each uses a part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `cmd`; its output, or a panic with the command, its stdout and
/// stderr when it cannot start or exits unsuccessfully.
pub fn output_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`output_ok`]'s stdout as text.
pub fn stdout_ok(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&output_ok(cmd).stdout).into_owned()
}
