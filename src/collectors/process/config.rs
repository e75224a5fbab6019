//! `[[process]]` config: a group of neighbour processes (the app's workers)
//! matched by a regex on their command line.

use std::time::Duration;

use serde::Deserialize;

use crate::poll::CommonTarget;

/// One process group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// The `target` label; unique among `[[process]]` tables.
    pub name: String,
    /// Regex matched against the command line (arguments joined by spaces);
    /// e.g. `"gunicorn .*app:app"`. perfwatch never matches itself.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Most processes counted; a runaway fork bomb must not cost unbounded work.
    #[serde(default = "default_max_processes")]
    pub max_processes: usize,
    /// Overrides `global.interval`.
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Overrides `global.timeout`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

fn default_max_processes() -> usize {
    1000
}

impl ProcessConfig {
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
        let mut errors = Vec::new();
        if let Err(e) = regex::Regex::new(&self.pattern) {
            errors.push((
                "match".into(),
                format!("match \"{}\" is not a valid regex: {e}", self.pattern),
            ));
        }
        if self.max_processes == 0 {
            errors.push((
                "max_processes".into(),
                "max_processes must be at least 1, got 0".into(),
            ));
        }
        errors
    }
}
