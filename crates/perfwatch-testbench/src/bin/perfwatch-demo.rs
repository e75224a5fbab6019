//! `perfwatch-demo`: starts a throwaway local stack (Redis, PostgreSQL with
//! PgBouncer, MariaDB, a sample app, a synthetic workload, and Prometheus +
//! Alertmanager when installed) and perfwatch watching it; prints the URLs and
//! runs until Ctrl-C or SIGTERM.
//!
//! A binary of the test bench rather than a subcommand of `perfwatch`, so the
//! sidecar carries none of the servers, workloads and example files the demo
//! needs. `scripts/demo.sh` checks the packages and runs it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use perfwatch_testbench::demo::{self, DemoOptions};

/// Worker threads: the demo runs servers' clients, workloads and perfwatch at
/// once.
const WORKER_THREADS: usize = 2;

#[derive(Parser)]
#[command(
    name = "perfwatch-demo",
    version,
    about = "Starts a throwaway local stack (Redis, PostgreSQL, PgBouncer, MariaDB, a sample app, a workload, Prometheus + Alertmanager when installed) and perfwatch watching it; runs until Ctrl-C."
)]
struct Cli {
    /// Address perfwatch serves /metrics on.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9896")]
    listen_address: String,
    /// Length of each warm/cold workload phase.
    #[arg(long = "demo.phase", default_value = "2m", value_parser = humantime::parse_duration)]
    phase: Duration,
    /// Load the alert rules with `for: 2s` and 1m windows, so alerts fire
    /// within a minute.
    #[arg(long = "demo.fast-alerts")]
    fast_alerts: bool,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long = "log.level", default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perfwatch-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let options = DemoOptions {
        listen: cli.listen_address,
        phase: cli.phase,
        fast_alerts: cli.fast_alerts,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let demo = demo::start(options).await?;
        print!("{}", demo.describe());
        demo.run_until(perfwatch::shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

fn init_logging(level: &str) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_logfmt::builder()
                .layer()
                .with_writer(std::io::stderr),
        )
        .init();
}
