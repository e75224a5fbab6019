//! `[[postgres]]` config.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{CommonTarget, Secret};

/// One PostgreSQL target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The `target` label; unique among `[[postgres]]` tables.
    pub name: String,
    /// Connection string; the password may come from `password`/`password_file`.
    pub dsn: String,
    /// Password, when not in the DSN; `${ENV}` is expanded.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// Overrides `global.interval`.
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Overrides `global.timeout`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

impl PostgresConfig {
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
