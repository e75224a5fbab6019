//! STUB: the PostgreSQL collector (connections, pool saturation, index usage, table growth, custom SQL). Being written; see issue 3.

pub mod config;

pub use config::PostgresConfig;

use super::{Collector, ErrorReason, PollError, PollOutput};
use crate::config::Timing;

/// A running PostgreSQL collector.
pub struct PostgresCollector {
    cfg: PostgresConfig,
    _timing: Timing,
}

impl PostgresCollector {
    /// A collector that connects on its first poll.
    pub fn new(cfg: PostgresConfig, timing: Timing) -> Self {
        Self {
            cfg,
            _timing: timing,
        }
    }
}

impl Collector for PostgresCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        Err(PollError::new(
            ErrorReason::Query,
            format!(
                "postgres target \"{}\": collector not implemented yet",
                self.cfg.name
            ),
        ))
    }

    fn reset(&mut self) {}
}
