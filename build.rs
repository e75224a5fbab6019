//! Build facts for `perfwatch --version` and `perfwatch_build_info`: the git
//! commit, the build date and the rustc version, as `PERFWATCH_*` compile-time
//! environment variables read by `src/build_info.rs`.
//!
//! Each one is either known or the literal `unknown`, never guessed:
//! - commit: `PERFWATCH_GIT_COMMIT` from the environment (a container build
//!   has no `.git`: pass it as a build argument), else `git rev-parse HEAD`
//!   of the repository this package is the root of. Git is kept from looking
//!   above the package directory, so a copy of the sources inside another
//!   checkout (tests/build_context.rs builds one under `target/`) does not
//!   claim that checkout's commit.
//! - build date: `SOURCE_DATE_EPOCH` (the reproducible-builds convention),
//!   else the time this script ran, as UTC RFC 3339. The script reruns when
//!   the commit or one of these variables changes, not on every build, so
//!   without `SOURCE_DATE_EPOCH` the date is that of the first build of the
//!   commit.
//! - rustc: `$RUSTC --version` without the leading `rustc `.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

const UNKNOWN: &str = "unknown";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=PERFWATCH_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");

    let commit = match std::env::var("PERFWATCH_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => git_commit(&manifest_dir).unwrap_or_else(|| UNKNOWN.to_owned()),
    };
    let date = build_date().unwrap_or_else(|| UNKNOWN.to_owned());
    let rustc = rustc_version().unwrap_or_else(|| UNKNOWN.to_owned());
    println!("cargo:rustc-env=PERFWATCH_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=PERFWATCH_BUILD_DATE={date}");
    println!("cargo:rustc-env=PERFWATCH_RUSTC_VERSION={rustc}");
}

/// Runs git in `dir` without looking at parent directories.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let ceiling = dir.parent().unwrap_or(dir);
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// HEAD's commit, and rerun-if-changed lines for the files that move when
/// HEAD does (HEAD itself, its reflog, the branch ref, packed refs), so that
/// a commit or a checkout rebuilds the facts. Only existing files: cargo
/// reruns a script on every build while a watched path is missing.
fn git_commit(dir: &Path) -> Option<String> {
    let commit = git(dir, &["rev-parse", "HEAD"])?;
    for name in ["HEAD", "logs/HEAD", "packed-refs"] {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", name]) {
            watch(dir, &p);
        }
    }
    if let Some(reference) = git(dir, &["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(dir, &["rev-parse", "--git-path", &reference])
    {
        watch(dir, &p);
    }
    Some(commit)
}

fn watch(dir: &Path, git_path: &str) {
    let p = dir.join(git_path);
    if p.exists() {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

fn build_date() -> Option<String> {
    // Empty counts as unset: a Dockerfile ARG that was not passed is empty.
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<i64>().ok()?,
        _ => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_secs()
            .try_into()
            .ok()?,
    };
    Some(rfc3339_utc(secs))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian,
/// Howard Hinnant's days-to-civil algorithm: no date crate for one line).
fn rfc3339_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn rustc_version() -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    Some(text.strip_prefix("rustc ").unwrap_or(text).to_owned())
}
