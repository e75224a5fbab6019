//! The process collector: CPU, memory and count of neighbour processes (the
//! app's Gunicorn/Uvicorn workers) matched by command line, via `sysinfo`.
//!
//! Why: the seeds watch "memory climbing" and worker counts next to the
//! database and cache numbers. CPU is kept monotonic across worker restarts
//! (the CPU time of exited workers is carried forward), so `rate()` of
//! `perfwatch_process_cpu_seconds_total` stays correct when Gunicorn recycles
//! a worker.

pub mod catalog;
pub mod config;

use std::collections::BTreeMap;

pub use config::{ProcessConfig, ProcessTarget};
use regex::Regex;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use crate::exposition::Families;
use crate::poll::Timing;
use crate::poll::{Collector, ErrorReason, PollError, PollOutput};

/// One matched process as seen in one poll.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProcessSample {
    /// Process id.
    pub pid: u32,
    /// CPU time used so far, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// Keeps the CPU counter monotonic across process exits.
#[derive(Debug, Default)]
pub(crate) struct CpuAccount {
    last: BTreeMap<u32, f64>,
    exited: f64,
}

impl CpuAccount {
    /// Updates with this poll's processes; returns the monotonic total.
    pub fn update(&mut self, samples: &[ProcessSample]) -> f64 {
        let current: BTreeMap<u32, f64> = samples.iter().map(|s| (s.pid, s.cpu_seconds)).collect();
        for (pid, cpu) in &self.last {
            if !current.contains_key(pid) {
                self.exited += cpu;
            }
        }
        self.last = current;
        self.exited + self.last.values().sum::<f64>()
    }
}

/// A running process collector.
pub struct ProcessCollector {
    cfg: ProcessTarget,
    system: Option<System>,
    cpu: CpuAccount,
}

impl ProcessCollector {
    /// A collector; the regex was compiled when the config loaded.
    pub fn new(cfg: ProcessTarget, _timing: Timing) -> Self {
        Self {
            cfg,
            system: None,
            cpu: CpuAccount::default(),
        }
    }
}

/// Reads /proc for processes whose command line matches (blocking).
fn scan(system: &mut System, pattern: &Regex, max: usize) -> Vec<ProcessSample> {
    system.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .with_cmd(UpdateKind::OnlyIfNotSet),
    );
    let me = Pid::from_u32(std::process::id());
    let mut out: Vec<ProcessSample> = system
        .processes()
        .iter()
        .filter(|(pid, _)| **pid != me)
        // sysinfo lists a process's threads (Linux tasks) as processes too;
        // they share its memory and CPU, so counting them would multiply both.
        .filter(|(_, p)| p.thread_kind().is_none())
        .filter(|(_, p)| {
            let cmdline = p
                .cmd()
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ");
            pattern.is_match(&cmdline)
        })
        .map(|(pid, p)| ProcessSample {
            pid: pid.as_u32(),
            cpu_seconds: p.accumulated_cpu_time() as f64 / 1000.0,
            rss_bytes: p.memory(),
        })
        .collect();
    out.sort_by_key(|s| s.pid);
    out.truncate(max);
    out
}

impl Collector for ProcessCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        let name = self.cfg.name.clone();
        let pattern = self.cfg.pattern.clone();
        let system = match self.system.take() {
            Some(s) => s,
            None => System::new().map_err(|e| {
                PollError::new(ErrorReason::Io, format!("process target \"{name}\": {e}"))
            })?,
        };
        let max = self.cfg.max_processes;
        // /proc reads are blocking file I/O: keep them off the async workers.
        let (system, samples) = tokio::task::spawn_blocking(move || {
            let mut system = system;
            let samples = scan(&mut system, &pattern, max);
            (system, samples)
        })
        .await
        .map_err(|e| PollError::new(ErrorReason::Io, format!("process target \"{name}\": {e}")))?;
        self.system = Some(system);
        let cpu_total = self.cpu.update(&samples);
        let mut families = Families::new();
        let t = [("target", name.as_str())];
        families.gauge(&catalog::COUNT, &t, samples.len() as f64);
        families.counter(&catalog::CPU_SECONDS_TOTAL, &t, cpu_total);
        let rss: u64 = samples.iter().map(|s| s.rss_bytes).sum();
        families.gauge(&catalog::RESIDENT_MEMORY_BYTES, &t, rss as f64);
        families.gauge(
            &catalog::MAX_RESIDENT_MEMORY_BYTES,
            &t,
            samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0) as f64,
        );
        let headline = vec![
            ("processes".to_owned(), samples.len().to_string()),
            (
                "rss".to_owned(),
                format!("{:.1} MiB", rss as f64 / 1048576.0),
            ),
        ];
        Ok(PollOutput { families, headline })
    }

    fn reset(&mut self) {}
}

/// The `[[process]]` collector kind (registered in `collectors::register_kinds!`).
pub struct ProcessKind;

impl super::Kind for ProcessKind {
    const SECTION: &'static str = "process";
    const METRIC_PREFIXES: &'static [&'static str] = &["perfwatch_process_"];
    const CATALOG: &'static [&'static crate::catalog::MetricDef] = catalog::ALL;
    type Config = ProcessConfig;
    type Target = ProcessTarget;
    type Collector = ProcessCollector;

    fn common(config: &ProcessConfig) -> crate::poll::CommonTarget {
        config.common()
    }

    fn validate(config: ProcessConfig) -> Result<ProcessTarget, Vec<(String, String)>> {
        config.validate()
    }

    fn collector(target: &ProcessTarget, timing: crate::poll::Timing) -> ProcessCollector {
        ProcessCollector::new(target.clone(), timing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_stays_monotonic_when_workers_exit() {
        let s = |pid, cpu| ProcessSample {
            pid,
            cpu_seconds: cpu,
            rss_bytes: 0,
        };
        let mut acc = CpuAccount::default();
        let steps: &[(&[ProcessSample], f64)] = &[
            (&[s(1, 1.0), s(2, 2.0)], 3.0),
            (&[s(1, 1.5), s(2, 2.5)], 4.0),
            // worker 2 recycled as worker 3
            (&[s(1, 2.0), s(3, 0.5)], 5.0),
            (&[], 5.0),
        ];
        for (samples, want) in steps {
            assert_eq!(acc.update(samples), *want);
        }
    }
}
