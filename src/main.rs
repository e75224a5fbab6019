//! The `perfwatch` binary: flags, logging, config, then `perfwatch::run`.

mod digest_cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use perfwatch::config::Config;

/// Default listen address. 9896 lies in the range the Prometheus
/// default-port-allocations wiki marks FREE (between the last allocated
/// exporter port and 9901), so it collides with no known exporter.
const DEFAULT_LISTEN: &str = "0.0.0.0:9896";
/// Longest wait at exit for work still running on blocking threads.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Parser)]
#[command(
    name = "perfwatch",
    version,
    long_version = perfwatch::build_info::LONG_VERSION,
    about = "Watches a web backend (Redis, database, slow logs, app endpoints) and serves Prometheus metrics."
)]
struct Cli {
    /// Path to the TOML config file.
    #[arg(long = "config.file", default_value = "perfwatch.toml", global = true)]
    config_file: PathBuf,
    /// Address to serve /metrics on.
    #[arg(long = "web.listen-address", default_value = DEFAULT_LISTEN, global = true)]
    listen_address: String,
    /// TLS and basic-auth config (Prometheus exporter-toolkit format).
    #[arg(long = "web.config.file", global = true)]
    web_config_file: Option<PathBuf>,
    /// Do not serve POST /-/reload (SIGHUP still reloads).
    #[arg(long = "web.disable-reload", global = true)]
    disable_reload: bool,
    /// Async worker threads. One keeps /metrics tail latency low on small
    /// machines (polls are I/O-bound; file parsing runs on blocking threads).
    #[arg(long = "runtime.worker-threads", default_value_t = 1, global = true)]
    worker_threads: usize,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long = "log.level", default_value = "info", global = true)]
    log_level: String,
    /// Log format.
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file and print every problem; exits 1 if there is any.
    CheckConfig {
        /// The config file (default: --config.file, as the other commands).
        path: Option<PathBuf>,
    },
    /// Poll every target once, print the exposition, exit 1 if a target failed.
    Once,
    /// Read a whole slow log once with the collector's parser and print its
    /// query classes by total time (pt-query-digest ids); throughput to stderr.
    Digest(digest_cli::DigestOptions),
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    perfwatch::tls::install_default_provider();
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_format);
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("perfwatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One glibc malloc arena instead of up to 8 per core. Each thread that
/// allocates otherwise gets its own arena, and memory freed into one is not
/// reused by another: over an hour of polls that was 3 MiB of RSS growth in
/// scripts/bench.sh, with 1 arena 0.6 MiB. perfwatch allocates little and
/// from few threads, so the shared arena's lock costs nothing measurable.
/// `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::CheckConfig { path }) => {
            let path = path.unwrap_or(cli.config_file);
            check_config(&path)
        }
        Some(Command::Once) => {
            let config = load(&cli.config_file)?;
            let rt = runtime(cli.worker_threads)?;
            let (text, failures) = rt.block_on(perfwatch::supervisor::poll_once(&config));
            rt.shutdown_timeout(SHUTDOWN_GRACE);
            let text = String::from_utf8_lossy(&text);
            print!("{text}");
            for (key, e) in &failures {
                eprintln!(
                    "perfwatch: {} target \"{}\" failed: {}",
                    key.collector, key.target, e.message
                );
            }
            // Up but partly blind (a configured metric missing, statements
            // unavailable): not a failure, but never silent either.
            let degraded = perfwatch::catalog::COLLECTOR_DEGRADED.name;
            for line in text.lines() {
                if let Some(series) = line
                    .strip_prefix(degraded)
                    .and_then(|l| l.strip_prefix('{'))
                    .and_then(|l| l.strip_suffix("} 1"))
                {
                    eprintln!("perfwatch: degraded: {series}");
                }
            }
            Ok(if failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Some(Command::Digest(options)) => {
            digest_cli::run(&options)?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let config = load(&cli.config_file)?;
            let web = perfwatch::WebOptions {
                config: match &cli.web_config_file {
                    Some(p) => perfwatch::web::WebConfig::load(p)?,
                    None => Default::default(),
                },
                config_path: cli.web_config_file.clone(),
                enable_reload: !cli.disable_reload,
            };
            let rt = runtime(cli.worker_threads)?;
            let result = rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(&cli.listen_address)
                    .await
                    .with_context(|| format!("cannot listen on \"{}\"", cli.listen_address))?;
                tracing::info!(address = %cli.listen_address, targets = config.targets.len(), "perfwatch listening");
                perfwatch::run_with(config, listener, web, perfwatch::shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
            });
            // Dropping a runtime waits for every blocking thread, and a
            // collector's file read may be stuck in the kernel (a hung NFS
            // mount): exit anyway, within a bound.
            rt.shutdown_timeout(SHUTDOWN_GRACE);
            result
        }
    }
}

fn runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn init_logging(level: &str, format: LogFormat) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

/// `check-config`: every problem of the file, exit 1 if there is any.
fn check_config(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    match Config::load(path) {
        Ok(c) => {
            println!("{}: ok, {} target(s)", path.display(), c.targets.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprint!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}
