//! STUB: the neighbour process collector (CPU, RSS and count of matched processes). Being written; see issue 5.

pub mod config;

pub use config::ProcessConfig;

use super::{Collector, ErrorReason, PollError, PollOutput};
use crate::config::Timing;

/// A running neighbour process collector.
pub struct ProcessCollector {
    cfg: ProcessConfig,
    _timing: Timing,
}

impl ProcessCollector {
    /// A collector that starts on its first poll.
    pub fn new(cfg: ProcessConfig, timing: Timing) -> Self {
        Self { cfg, _timing: timing }
    }
}

impl Collector for ProcessCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        Err(PollError::new(
            ErrorReason::Query,
            format!("process target \"{}\": collector not implemented yet", self.cfg.name),
        ))
    }

    fn reset(&mut self) {}
}
