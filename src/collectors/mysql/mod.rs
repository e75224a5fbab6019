//! STUB: the MySQL/MariaDB collector (connections, pool saturation, index usage, table growth, custom SQL). Being written; see issue 3.

pub mod config;

pub use config::MysqlConfig;

use super::{Collector, ErrorReason, PollError, PollOutput};
use crate::config::Timing;

/// A running MySQL/MariaDB collector.
pub struct MysqlCollector {
    cfg: MysqlConfig,
    _timing: Timing,
}

impl MysqlCollector {
    /// A collector that connects on its first poll.
    pub fn new(cfg: MysqlConfig, timing: Timing) -> Self {
        Self {
            cfg,
            _timing: timing,
        }
    }
}

impl Collector for MysqlCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        Err(PollError::new(
            ErrorReason::Query,
            format!(
                "mysql target \"{}\": collector not implemented yet",
                self.cfg.name
            ),
        ))
    }

    fn reset(&mut self) {}
}
