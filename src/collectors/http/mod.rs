//! STUB: the HTTP app endpoint collector (health, latency, app pool and app metrics). Being written; see issue 5.

pub mod config;

pub use config::HttpConfig;

use super::{Collector, ErrorReason, PollError, PollOutput};
use crate::config::Timing;

/// A running HTTP app endpoint collector.
pub struct HttpCollector {
    cfg: HttpConfig,
    _timing: Timing,
}

impl HttpCollector {
    /// A collector that starts on its first poll.
    pub fn new(cfg: HttpConfig, timing: Timing) -> Self {
        Self { cfg, _timing: timing }
    }
}

impl Collector for HttpCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        Err(PollError::new(
            ErrorReason::Query,
            format!("http target \"{}\": collector not implemented yet", self.cfg.name),
        ))
    }

    fn reset(&mut self) {}
}
