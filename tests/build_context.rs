//! The sidecar builds from exactly what `deploy/Dockerfile` copies, the
//! binary carries none of the test bench, and the image from scratch layers
//! (`deploy/Containerfile`, `scripts/build-image.sh`) runs it.
//!
//! The test reads the Dockerfile's build stage (the one that runs
//! `cargo build`), copies exactly the paths its `COPY` lines name into a
//! fresh directory, and runs that stage's `cargo build` command there
//! (`--offline`: the registry is already downloaded). A source that
//! `include_str!`s a file the Dockerfile does not copy, or a workspace member
//! missing from it, fails here instead of in `docker build`. Then it checks
//! the release binary for texts only the test bench has (server launchers,
//! its crate name in symbols), which would mean the bench got linked in.
//!
//! The build runs the Dockerfile's command with the release profile's
//! optimisation turned down (`CARGO_PROFILE_RELEASE_*`: opt-level 0, no LTO,
//! 256 codegen units): what this test checks is which files the build needs
//! and what gets linked, not the speed of the code, and fat LTO would make it
//! the slowest test of the suite on a 2-core CI machine (measured 520-810 s,
//! against about 2 minutes this way). Without LTO nothing linked is dropped
//! as dead code, so the strings check only gets stricter. The real profile
//! is what the Dockerfile and `scripts/bench.sh` build. The copy and the
//! target dir stay under `target/tmp/build-context-check/` and file times
//! are kept, so later runs rebuild only what changed.
//!
//! That one build (made once, shared by the tests here: CI has no time for a
//! second) is also what the image test packages: `scripts/build-image.sh`
//! builds the image with buildah (vfs storage under `target/tmp/image-check/`),
//! the test checks its config (user 10001, entrypoint), that its root
//! filesystem has no shell and no program but perfwatch, and runs
//! `perfwatch --version` and `perfwatch once` (the image's quickstart config
//! against a throwaway Redis) inside it with `chroot --userspec` as the
//! image's user. Needs root (CI runs as root) and buildah.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// Texts that only the test bench contains (checked below against `src/`),
/// so finding one in the sidecar binary means the bench was linked in.
const BENCH_ONLY: &[&str] = &[
    // Crate name: in every symbol of its code (symbols are not stripped).
    "perfwatch_testbench",
    // Its sources' paths, in panic locations.
    "perfwatch-testbench/src",
    // Server launchers.
    "mariadb-install-db",
    "initdb",
    "prometheus-alertmanager",
    "perfwatch-harness-spawner",
];

/// Texts the sidecar binary must contain: proves the search reads the
/// binary's strings at all.
const SIDECAR_TEXTS: &[&str] = &["perfwatch_polls_total", "check-config"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One Dockerfile instruction, continuation lines joined, comments dropped.
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// One source of a `COPY`, relative to the build context, and where it goes,
/// relative to the stage's WORKDIR (where `cargo build` runs).
#[derive(Debug, PartialEq)]
struct CopySource {
    source: String,
    dest: String,
    /// The destination is a directory (it ends in `/` or the `COPY` has
    /// several sources): a file source keeps its name inside it.
    into_dir: bool,
}

impl CopySource {
    /// Where a copy of `source` lands; Docker copies a directory's contents,
    /// not the directory itself.
    fn target(&self, source_is_dir: bool) -> PathBuf {
        let dest = PathBuf::from(&self.dest);
        if self.into_dir && !source_is_dir {
            dest.join(Path::new(&self.source).file_name().unwrap())
        } else {
            dest
        }
    }
}

/// The build stage: what it copies and the arguments of its `cargo build`.
#[derive(Debug, PartialEq)]
struct BuildStage {
    copies: Vec<CopySource>,
    cargo_args: Vec<String>,
}

fn build_stage(dockerfile: &str) -> BuildStage {
    let mut stages: Vec<Vec<String>> = Vec::new();
    for ins in instructions(dockerfile) {
        let keyword = ins.split_whitespace().next().unwrap_or("").to_uppercase();
        if keyword == "FROM" {
            stages.push(Vec::new());
        } else if let Some(stage) = stages.last_mut() {
            stage.push(ins);
        }
    }
    let stage = stages
        .into_iter()
        .find(|s| s.iter().any(|i| i.contains("cargo build")))
        .expect("deploy/Dockerfile has no stage that runs cargo build");
    let mut copies = Vec::new();
    let mut cargo_args = None;
    for ins in &stage {
        let words: Vec<&str> = ins.split_whitespace().collect();
        match words[0].to_uppercase().as_str() {
            "COPY" | "ADD" => {
                let args: Vec<&str> = words[1..]
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                assert!(
                    !words[1..].iter().any(|w| w.starts_with("--from")),
                    "the build stage copies from another stage, which this test cannot follow: {ins}"
                );
                let (dest, sources) = args.split_last().expect("COPY without arguments");
                assert!(!sources.is_empty(), "COPY without a source: {ins}");
                assert!(
                    !dest.starts_with('/'),
                    "COPY to an absolute path, outside the WORKDIR the build runs in: {ins}"
                );
                let into_dir = dest.ends_with('/') || sources.len() > 1;
                let dest = dest.trim_start_matches("./").trim_end_matches('/');
                let dest = if dest == "." { "" } else { dest };
                for source in sources {
                    assert!(
                        !source.contains(['*', '?']) && !source.starts_with('/'),
                        "unsupported COPY source {source:?}: {ins}"
                    );
                    copies.push(CopySource {
                        source: source
                            .trim_start_matches("./")
                            .trim_end_matches('/')
                            .to_owned(),
                        dest: dest.to_owned(),
                        into_dir,
                    });
                }
            }
            "RUN" => {
                let Some(at) = ins.find("cargo build") else {
                    continue;
                };
                let rest = &ins[at + "cargo build".len()..];
                let end = rest.find(['&', ';', '|']).unwrap_or(rest.len());
                cargo_args = Some(rest[..end].split_whitespace().map(str::to_owned).collect());
            }
            _ => {}
        }
    }
    BuildStage {
        copies,
        cargo_args: cargo_args.unwrap(),
    }
}

/// Copies `from` (a file or a directory tree) to `to`, keeping modification
/// times so cargo rebuilds only what changed since the last run.
fn copy_tree(from: &Path, to: &Path) {
    let meta = fs::metadata(from).unwrap_or_else(|e| {
        panic!(
            "deploy/Dockerfile copies {} which does not exist: {e}",
            from.display()
        )
    });
    if meta.is_dir() {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::copy(from, to).unwrap();
        let file = fs::File::options().write(true).open(to).unwrap();
        file.set_modified(meta.modified().unwrap()).unwrap();
    }
}

#[test]
fn the_dockerfile_build_stage_is_parsed() {
    let stage = build_stage(
        "FROM rust AS build\nWORKDIR /src\n# a comment\nCOPY Cargo.toml Cargo.lock ./\nCOPY src ./src\nCOPY --chown=1:1 crates/ crates/\nRUN --mount=type=cache,target=/x \\\n    cargo build --release --locked -p perfwatch \\\n && cp a b\nFROM debian\nCOPY --from=build /a /b\nCOPY config/x.toml /etc/x.toml\n",
    );
    assert_eq!(
        stage,
        BuildStage {
            copies: [
                ("Cargo.toml", "", true),
                ("Cargo.lock", "", true),
                ("src", "src", false),
                ("crates", "crates", true),
            ]
            .iter()
            .map(|&(source, dest, into_dir)| CopySource {
                source: source.into(),
                dest: dest.into(),
                into_dir,
            })
            .collect(),
            cargo_args: ["--release", "--locked", "-p", "perfwatch"]
                .map(str::to_owned)
                .to_vec(),
        }
    );
}

#[test]
fn bench_only_texts_are_not_in_the_sidecar_sources() {
    fn scan(dir: &Path, hits: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                scan(&path, hits);
            } else {
                let text = fs::read_to_string(&path).unwrap();
                for needle in BENCH_ONLY {
                    if text.contains(needle) {
                        hits.push(format!("{}: {needle}", path.display()));
                    }
                }
            }
        }
    }
    let mut hits = Vec::new();
    scan(&repo().join("src"), &mut hits);
    assert!(
        hits.is_empty(),
        "BENCH_ONLY texts must not occur in src/ (pick others):\n{}",
        hits.join("\n")
    );
    // And each really is in the bench, so the binary check means something.
    let mut bench = String::new();
    for entry in fs::read_dir(repo().join("crates/perfwatch-testbench/src")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bench.push_str(&fs::read_to_string(&path).unwrap());
        }
    }
    let names = ["perfwatch_testbench", "perfwatch-testbench/src"];
    for needle in BENCH_ONLY.iter().filter(|n| !names.contains(n)) {
        assert!(bench.contains(needle), "{needle} is not in the test bench");
    }
}

/// The build of what the Dockerfile copies, made once per run of this test
/// binary and shared by the tests below (the strings check and the image).
///
/// Without `.git` in the copy (build.rs must fall back to `unknown` for the
/// commit, as in a container build) and with `SOURCE_DATE_EPOCH` fixed to
/// [`BUILD_EPOCH`], as a reproducible build passes it.
fn quick_release_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_the_dockerfile_context)
}

/// `SOURCE_DATE_EPOCH` of [`quick_release_binary`], and its date.
const BUILD_EPOCH: (&str, &str) = ("1700000000", "2023-11-14T22:13:20Z");

fn build_the_dockerfile_context() -> PathBuf {
    let dockerfile = fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let stage = build_stage(&dockerfile);
    assert!(
        stage.cargo_args.iter().any(|a| a == "--release"),
        "the Dockerfile's cargo build is not a release build: {:?}",
        stage.cargo_args
    );

    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("build-context-check");
    let context = work.join("context");
    if context.exists() {
        fs::remove_dir_all(&context).unwrap();
    }
    fs::create_dir_all(&context).unwrap();
    for copy in &stage.copies {
        let source = repo().join(&copy.source);
        let target = copy.target(source.is_dir());
        copy_tree(&source, &context.join(target));
    }
    assert!(!context.join(".git").exists());
    let target_dir = work.join("target");

    let start = Instant::now();
    let out = Command::new(env!("CARGO"))
        .arg("build")
        .args(&stage.cargo_args)
        .arg("--offline")
        .current_dir(&context)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_LTO", "off")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .env("SOURCE_DATE_EPOCH", BUILD_EPOCH.0)
        .env_remove("PERFWATCH_GIT_COMMIT")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "cargo build {} in a copy of what deploy/Dockerfile copies ({}) failed; \
         does the build need a file the Dockerfile does not COPY?\n{}",
        stage.cargo_args.join(" "),
        context.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("build-context release build took {took:.1?}");
    target_dir.join("release/perfwatch")
}

#[test]
fn sidecar_builds_from_the_dockerfile_copies_alone_without_the_bench() {
    let binary = quick_release_binary();
    // Lossy: the needles are ASCII, so no replacement character can split one.
    let bytes = fs::read(binary).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    for needle in SIDECAR_TEXTS {
        assert!(
            text.contains(needle),
            "{needle} not found in {}: the search is broken",
            binary.display()
        );
    }
    let found: Vec<&str> = BENCH_ONLY
        .iter()
        .copied()
        .filter(|t| text.contains(t))
        .collect();
    assert!(
        found.is_empty(),
        "the sidecar binary {} contains test-bench texts {found:?}: is perfwatch-testbench a normal dependency again?",
        binary.display()
    );
}

/// What `perfwatch --version` must print for [`quick_release_binary`]: no
/// `.git`, so the commit is `unknown`; the date is `SOURCE_DATE_EPOCH`'s.
fn expected_version_text() -> String {
    format!(
        "perfwatch {}\n  revision:   unknown\n  build date: {}\n  rustc:      {}\n",
        env!("CARGO_PKG_VERSION"),
        BUILD_EPOCH.1,
        rustc_version()
    )
}

/// The toolchain's `rustc --version` without `rustc `: what build.rs records.
fn rustc_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().strip_prefix("rustc ").unwrap().to_owned()
}

#[test]
fn a_build_without_git_says_its_revision_is_unknown() {
    let out = Command::new(quick_release_binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        expected_version_text()
    );
}

// ------------------------------------------------------------ the image

/// Where the image test keeps buildah's storage (vfs: plain directories).
fn image_work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("image-check")
}

/// Runs buildah on the test's own storage; a missing buildah fails with the
/// install command.
fn buildah(args: &[&str]) -> String {
    let work = image_work_dir();
    let out = Command::new("buildah")
        .arg("--storage-driver=vfs")
        .arg("--root")
        .arg(work.join("storage"))
        .arg("--runroot")
        .arg(work.join("run"))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("buildah not found ({e}): apt-get install -y buildah (or run scripts/install-test-deps.sh)")
        });
    assert!(
        out.status.success(),
        "buildah {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every file under `root`, relative to it, with its mode and owner.
fn files_under(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, u32, u32)>) {
    use std::os::unix::fs::MetadataExt;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().to_owned();
        out.push((rel, meta.mode(), meta.uid()));
        if meta.is_dir() {
            files_under(root, &path, out);
        }
    }
}

/// Names of programs that would give a shell (or run one) in the image.
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "ash", "zsh", "ksh", "busybox", "toybox",
];

/// Runs `args` inside the image's root filesystem as its user, the way a
/// container runtime would start it (minus namespaces: the network is the
/// host's, so a throwaway Redis on 127.0.0.1 is reachable).
fn run_in_image(rootfs: &Path, user: &str, args: &[&str]) -> std::process::Output {
    // Found on this PATH: the program inside gets an empty environment.
    let chroot = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("chroot"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("chroot not found: apt-get install -y coreutils"));
    Command::new(chroot)
        .arg(format!("--userspec={user}"))
        .arg(rootfs)
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

#[test]
fn the_image_from_scratch_runs_perfwatch_as_non_root_and_has_no_shell() {
    // SAFETY: geteuid only reads the process' credentials.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root: buildah's vfs storage keeps the image's file owners, and chroot"
    );
    let binary = quick_release_binary();
    let work = image_work_dir();
    // vfs storage is plain directories: removing it drops every earlier image.
    if work.exists() {
        fs::remove_dir_all(&work).unwrap();
    }
    fs::create_dir_all(&work).unwrap();
    let tag = "localhost/perfwatch:build-context-check";
    let out = Command::new(repo().join("scripts/build-image.sh"))
        .arg("--binary")
        .arg(binary)
        .arg("--tag")
        .arg(tag)
        .arg("--storage-root")
        .arg(work.join("storage"))
        .arg("--runroot")
        .arg(work.join("run"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/build-image.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stdout));

    // The image's config: non-root numeric user, the binary as entrypoint.
    let inspect: serde_json::Value =
        serde_json::from_str(&buildah(&["inspect", "--type", "image", tag])).unwrap();
    let config = &inspect["OCIv1"]["config"];
    assert_eq!(config["User"], "10001:10001", "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/perfwatch"])
    );
    assert!(config["ExposedPorts"]["9896/tcp"].is_object(), "{config}");
    assert_eq!(
        inspect["OCIv1"]["config"]["Labels"]["org.opencontainers.image.revision"],
        "unknown"
    );

    // Its root filesystem, as a container would see it.
    let container = buildah(&["from", "--name", "perfwatch-image-check", tag]);
    let rootfs = PathBuf::from(buildah(&["mount", container.trim()]).trim());
    let mut files = Vec::new();
    files_under(&rootfs, &rootfs, &mut files);
    let listing: Vec<String> = files
        .iter()
        .map(|(p, mode, uid)| format!("{:o} {uid} {}", mode, p.display()))
        .collect();
    let listing = listing.join("\n");
    for (path, mode, _) in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            !SHELLS.contains(&name.as_ref()),
            "the image has a shell: {}\n{listing}",
            path.display()
        );
        // The only programs: perfwatch and the ELF interpreter (which can
        // only load ELF files, not run scripts). Libraries carry x bits too.
        let is_file = mode & 0o170000 == 0o100000;
        if is_file && mode & 0o111 != 0 {
            assert!(
                path == Path::new("usr/local/bin/perfwatch") || name.contains(".so"),
                "unexpected program in the image: {}\n{listing}",
                path.display()
            );
        }
    }
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("perfwatch:x:10001:10001:")),
        "{passwd}"
    );
    assert!(rootfs.join("etc/ssl/certs/ca-certificates.crt").is_file());
    // Root owns everything but the state directory, so the runtime user can
    // change nothing else.
    let state_dir = Path::new("var/lib/perfwatch");
    assert!(
        files.iter().any(|(p, _, _)| p == state_dir),
        "no /var/lib/perfwatch:\n{listing}"
    );
    for (path, _, uid) in &files {
        let want = if path == state_dir { 10001 } else { 0 };
        assert_eq!(*uid, want, "owner of /{}:\n{listing}", path.display());
    }

    // perfwatch runs in it, as the image's user.
    let user = config["User"].as_str().unwrap();
    let out = run_in_image(&rootfs, user, &["/usr/local/bin/perfwatch", "--version"]);
    assert!(
        out.status.success(),
        "perfwatch --version in the image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        expected_version_text()
    );

    // The quickstart config the image ships, pointed at a throwaway Redis (only
    // the port rewritten), as the config the image's CMD names.
    let redis = perfwatch_testbench::RedisServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let quickstart = fs::read_to_string(rootfs.join("etc/perfwatch/quickstart.toml")).unwrap();
    let config_text = common::quickstart_pointed_at(&quickstart, &redis.url());
    fs::write(rootfs.join("etc/perfwatch/perfwatch.toml"), config_text).unwrap();
    let out = run_in_image(
        &rootfs,
        user,
        &[
            "/usr/local/bin/perfwatch",
            "once",
            "--config.file=/etc/perfwatch/perfwatch.toml",
        ],
    );
    let text = common::assert_quickstart_cache_up("perfwatch once in the image", &out);
    assert!(
        text.contains("redis_connected_clients{target=\"cache\"}"),
        "{text}"
    );

    buildah(&["umount", container.trim()]);
    buildah(&["rm", container.trim()]);
}
