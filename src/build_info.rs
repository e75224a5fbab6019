//! What this binary is: version, git commit, build date and rustc version,
//! recorded by `build.rs` at compile time. `perfwatch --version` prints them
//! and `perfwatch_build_info` carries them as labels, from these constants
//! only, so the two cannot disagree. A fact the build could not learn (no
//! `.git` in a container build, for one) is the literal `unknown`.

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The full git commit hash the binary was built from, or `unknown`.
pub const GIT_COMMIT: &str = env!("PERFWATCH_GIT_COMMIT");
/// When it was built (UTC, RFC 3339; `SOURCE_DATE_EPOCH` when set), or `unknown`.
pub const BUILD_DATE: &str = env!("PERFWATCH_BUILD_DATE");
/// The compiler's `rustc --version`, without `rustc `, or `unknown`.
pub const RUSTC_VERSION: &str = env!("PERFWATCH_RUSTC_VERSION");

/// The text of `perfwatch --version` after the program name.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\n  revision:   ",
    env!("PERFWATCH_GIT_COMMIT"),
    "\n  build date: ",
    env!("PERFWATCH_BUILD_DATE"),
    "\n  rustc:      ",
    env!("PERFWATCH_RUSTC_VERSION"),
);

/// The labels of `perfwatch_build_info`, in catalog order.
pub const LABELS: [(&str, &str); 4] = [
    ("version", VERSION),
    ("revision", GIT_COMMIT),
    ("build_date", BUILD_DATE),
    ("rustc_version", RUSTC_VERSION),
];
