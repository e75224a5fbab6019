//! STUB: the PgBouncer collector (admin console pools, stats and saturation). Being written; see issue 3.

pub mod config;

pub use config::PgbouncerConfig;

use super::{Collector, ErrorReason, PollError, PollOutput};
use crate::config::Timing;

/// A running PgBouncer collector.
pub struct PgbouncerCollector {
    cfg: PgbouncerConfig,
    _timing: Timing,
}

impl PgbouncerCollector {
    /// A collector that connects on its first poll.
    pub fn new(cfg: PgbouncerConfig, timing: Timing) -> Self {
        Self {
            cfg,
            _timing: timing,
        }
    }
}

impl Collector for PgbouncerCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        Err(PollError::new(
            ErrorReason::Query,
            format!(
                "pgbouncer target \"{}\": collector not implemented yet",
                self.cfg.name
            ),
        ))
    }

    fn reset(&mut self) {}
}
