//! `[[process]]` config: a group of neighbour processes (the app's workers)
//! matched by a regex on their command line.

use std::time::Duration;

use regex::Regex;
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

    /// Checks the table and compiles the regex once: the ready target, or
    /// every problem as `(key, message)`.
    pub(crate) fn validate(self) -> Result<ProcessTarget, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let pattern = Regex::new(&self.pattern)
            .map_err(|e| {
                errors.push((
                    "match".into(),
                    format!("match \"{}\" is not a valid regex: {e}", self.pattern),
                ))
            })
            .ok();
        if self.max_processes == 0 {
            errors.push((
                "max_processes".into(),
                "max_processes must be at least 1, got 0".into(),
            ));
        }
        match pattern {
            Some(pattern) if errors.is_empty() => Ok(ProcessTarget {
                config: self,
                pattern,
            }),
            _ => Err(errors),
        }
    }
}

/// A checked `[[process]]` target: the table as written and its regex,
/// compiled once. Compared on reload by the table only.
#[derive(Debug, Clone)]
pub struct ProcessTarget {
    /// The table as written.
    pub config: ProcessConfig,
    /// The compiled `match` regex.
    pub(crate) pattern: Regex,
}

impl std::ops::Deref for ProcessTarget {
    type Target = ProcessConfig;
    fn deref(&self) -> &ProcessConfig {
        &self.config
    }
}

impl PartialEq for ProcessTarget {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}
