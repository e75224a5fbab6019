//! `[[http]]` config.

use std::time::Duration;

use serde::Deserialize;

use crate::config::CommonTarget;

/// One HTTP app endpoint target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The `target` label; unique among `[[http]]` tables.
    pub name: String,
    /// Overrides `global.interval`.
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Overrides `global.timeout`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

impl HttpConfig {
    /// Name, interval and timeout.
    pub fn common(&self) -> CommonTarget {
        CommonTarget {
            name: self.name.clone(),
            interval: self.interval,
            timeout: self.timeout,
        }
    }

    /// Cross-field checks; `(key, message)` pairs.
    pub fn validate(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}
