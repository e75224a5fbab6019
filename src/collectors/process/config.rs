//! `[[process]]` config: a group of neighbour processes (the app's workers)
//! matched by a regex on their command line.

use regex::Regex;
use serde::Deserialize;

use crate::collectors::{Problems, Ready, Validated, at_least_one};
use crate::poll::CommonTarget;

/// One process group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// Regex matched against the command line (arguments joined by spaces);
    /// e.g. `"gunicorn .*app:app"`. perfwatch never matches itself.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Most processes counted; a runaway fork bomb must not cost unbounded work.
    #[serde(default = "default_max_processes")]
    pub max_processes: usize,
}

fn default_max_processes() -> usize {
    1000
}

impl ProcessConfig {
    /// Checks the table and compiles the regex once: the ready target, or
    /// every problem as `(key, message)`.
    pub(crate) fn validate(&self, _common: &CommonTarget) -> Result<ProcessReady, Problems> {
        let mut errors = Vec::new();
        let pattern = Regex::new(&self.pattern)
            .map_err(|e| {
                errors.push((
                    "match".into(),
                    format!("match \"{}\" is not a valid regex: {e}", self.pattern),
                ))
            })
            .ok();
        at_least_one(&mut errors, "max_processes", self.max_processes);
        match pattern {
            Some(pattern) if errors.is_empty() => Ok(ProcessReady { pattern }),
            _ => Err(errors),
        }
    }
}

/// What validating a `[[process]]` table derives: its regex, compiled once.
#[derive(Clone)]
pub struct ProcessReady {
    /// The compiled `match` regex.
    pub(crate) pattern: Regex,
}

impl Ready for ProcessReady {}

/// A checked `[[process]]` target.
pub type ProcessTarget = Validated<ProcessConfig, ProcessReady>;
