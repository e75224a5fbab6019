//! The config file: `[global]` plus one array of tables per collector kind
//! (`[[redis]]`, …). Loading is strict (unknown keys are errors) and reports
//! every problem at once as `file:line: key: message`.
//!
//! Each collector owns its config type (in `src/collectors/<kind>/config.rs`);
//! this module owns what they share: the document with spans, `${VAR}`
//! expansion, `*_file` secrets, durations and cross-field checks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::de::DeValue;

use crate::collectors::{self, Target};
pub use crate::document::{ConfigError, ConfigErrors};
use crate::document::{Document, deserialize_collecting, expand_env};
pub use crate::poll::{CommonTarget, Timing};

/// `[global]`: defaults every target inherits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// Default poll interval of every target.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Default hard deadline of one poll; must be shorter than the interval so
    /// polls of one target never overlap.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            timeout: default_timeout(),
        }
    }
}

/// A fully checked config.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Where it was loaded from (for reloads).
    pub path: Option<PathBuf>,
    /// `[global]`.
    pub global: GlobalConfig,
    /// Every target of every kind, in file order.
    pub targets: Vec<Target>,
    /// `[[phase]]`: architecture phases and their triggers, in file order.
    pub phases: Vec<crate::phase::PhaseConfig>,
    /// `[probe]`: fleet mode (`GET /probe`), off without the section.
    pub probe: Option<crate::probe::config::ProbeSettings>,
}

impl Config {
    /// Loads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let file = path.display().to_string();
        let source =
            crate::local_file::read_regular_text(path, crate::local_file::MAX_CONFIG_FILE_BYTES)
                .map_err(|e| {
                    ConfigErrors(vec![ConfigError {
                        file: file.clone(),
                        line: None,
                        key: String::new(),
                        message: format!("cannot read the config file: {e}"),
                    }])
                })?;
        let mut config = Self::from_source(&file, &source, &|k| std::env::var(k).ok())?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// Parses and checks config text; `env` resolves `${VAR}` references.
    pub fn from_source(
        file: &str,
        source: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut doc = Document::parse(file, source, &mut errors);
        // The parser recovers from a syntax error, but what it makes of the
        // lines after it is a guess: checks of those lines would report
        // problems the user never wrote (an unclosed `[[redis]` turns its
        // keys into bogus top-level sections).
        let first_syntax_line = errors.iter().filter_map(|e| e.line).min();
        let syntax_errors = errors.len();
        expand_env(&mut doc, env, &mut errors);

        let mut config = Config::default();
        // Name, interval and timeout of every table that deserialized, valid
        // or not, so that cross-target checks see them all.
        let mut commons = Vec::new();
        let root = doc.root.get_ref().clone();
        for (key, value) in root.iter() {
            let name: &str = key.get_ref();
            if name == "global" {
                if let Some(g) = deserialize_collecting(&doc, "global", value, &mut errors) {
                    config.global = g;
                }
                continue;
            }
            if name == "probe" {
                let parsed: Option<crate::probe::config::ProbeConfig> =
                    deserialize_collecting(&doc, "probe", value, &mut errors);
                match parsed.map(|p| p.validate()) {
                    Some(Ok(settings)) => config.probe = Some(settings),
                    Some(Err(problems)) => {
                        for (key, message) in problems {
                            errors.push(doc.error_in(format!("probe.{key}"), message));
                        }
                    }
                    None => {}
                }
                continue;
            }
            if name == "phase" {
                let DeValue::Array(items) = value.get_ref() else {
                    errors.push(doc.error_in(
                        "phase".into(),
                        "\"phase\" must be an array of tables: write [[phase]]".into(),
                    ));
                    continue;
                };
                for (i, item) in items.iter().enumerate() {
                    let path = format!("phase[{i}]");
                    if let Some(p) = deserialize_collecting(&doc, &path, item, &mut errors) {
                        config.phases.push(p);
                    }
                }
                continue;
            }
            let Some(kind) = collectors::KINDS.iter().find(|k| k.section == name) else {
                let known: Vec<&str> = ["global", "phase", "probe"]
                    .into_iter()
                    .chain(collectors::KINDS.iter().map(|k| k.section))
                    .collect();
                errors.push(doc.error_in(
                    name.to_owned(),
                    format!("unknown section \"{name}\" (known: {})", known.join(", ")),
                ));
                continue;
            };
            let DeValue::Array(items) = value.get_ref() else {
                errors.push(doc.error_in(
                    name.to_owned(),
                    format!("\"{name}\" must be an array of tables: write [[{name}]]"),
                ));
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let path = format!("{name}[{i}]");
                if let Some(parsed) = (kind.parse)(&doc, &path, item, &mut errors) {
                    commons.push((kind.section, path, parsed.common));
                    config.targets.extend(parsed.target);
                }
            }
        }
        check(&doc, &config, &commons, &mut errors);
        if syntax_errors > 0 {
            let mut i = 0;
            errors.retain(|e| {
                i += 1;
                i <= syntax_errors
                    || matches!((e.line, first_syntax_line), (Some(l), Some(first)) if l < first)
            });
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            errors.sort_by_key(|e| e.line.unwrap_or(0));
            Err(ConfigErrors(errors))
        }
    }

    /// The interval and timeout of one target after applying `[global]`.
    pub fn timing(&self, target: &Target) -> Timing {
        self.timing_of(target.common())
    }

    fn timing_of(&self, common: &CommonTarget) -> Timing {
        Timing {
            interval: common.interval.unwrap_or(self.global.interval),
            timeout: common.timeout.unwrap_or(self.global.timeout),
        }
    }
}

/// Shortest poll interval accepted: below it a typo (`1ns`, `1ms`) would
/// poll a target thousands of times a second and flood the log.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Shortest poll timeout accepted: no target answers a poll faster.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(10);

/// Problems of one interval/timeout pair (`at` is `global` or `redis[0]`):
/// the floors of the values set at `at` (`own`: interval, timeout; a value
/// inherited from [global] is reported there, once), then the timeout
/// shorter than the interval.
fn timing_problems(
    at: &str,
    timing: Timing,
    own: (bool, bool),
    errors: &mut Vec<(String, String)>,
) {
    let floors = [
        (
            "interval",
            timing.interval,
            MIN_INTERVAL,
            own.0,
            "polling that often would hammer the target",
        ),
        (
            "timeout",
            timing.timeout,
            MIN_TIMEOUT,
            own.1,
            "no poll can finish that fast",
        ),
    ];
    for (key, value, floor, set_here, why) in floors {
        if set_here && value < floor {
            errors.push((
                format!("{at}.{key}"),
                format!(
                    "{key} \"{}\" is below the floor of {}: {why}",
                    humantime::format_duration(value),
                    humantime::format_duration(floor)
                ),
            ));
        }
    }
    if timing.timeout >= timing.interval {
        errors.push((
            format!("{at}.timeout"),
            format!(
                "timeout \"{}\" must be shorter than interval \"{}\"",
                humantime::format_duration(timing.timeout),
                humantime::format_duration(timing.interval)
            ),
        ));
    }
}

/// Cross-field checks over the whole config; every failure is collected.
fn check(
    doc: &Document<'_>,
    config: &Config,
    commons: &[(&'static str, String, CommonTarget)],
    errors: &mut Vec<ConfigError>,
) {
    let g = &config.global;
    let mut timing_errors = Vec::new();
    timing_problems(
        "global",
        Timing {
            interval: g.interval,
            timeout: g.timeout,
        },
        (true, true),
        &mut timing_errors,
    );
    for (key, message) in crate::phase::validate_phases(&config.phases) {
        errors.push(doc.error_in(key, message));
    }
    let mut seen = BTreeSet::new();
    for (kind, path, common) in commons {
        if !seen.insert((*kind, common.name.as_str())) {
            errors.push(doc.error_in(
                format!("{path}.name"),
                format!(
                    "duplicate {kind} name \"{}\": names must be unique per kind",
                    common.name
                ),
            ));
        }
        if common.name.is_empty() {
            errors.push(doc.error_in(format!("{path}.name"), "name must not be empty".into()));
        }
        // A target inheriting both from [global] was already reported there.
        if common.interval.is_some() || common.timeout.is_some() {
            timing_problems(
                path,
                config.timing_of(common),
                (common.interval.is_some(), common.timeout.is_some()),
                &mut timing_errors,
            );
        }
    }
    for (key, message) in timing_errors {
        errors.push(doc.error_in(key, message));
    }
    explain_sources(doc, config, commons, errors);
}

/// `[postgres.explain]` / `[mysql.explain]` `sources` must name
/// `[[slowlog]]` targets whose log is of the same server kind (a MySQL
/// example planned on PostgreSQL would only fail).
fn explain_sources(
    doc: &Document<'_>,
    config: &Config,
    commons: &[(&'static str, String, CommonTarget)],
    errors: &mut Vec<ConfigError>,
) {
    use crate::collectors::ReadyTarget;
    for target in &config.targets {
        let (kind, explain, wants_mysql) = match &target.ready {
            ReadyTarget::Postgres(t) => ("postgres", &t.explain, false),
            ReadyTarget::Mysql(t) => ("mysql", &t.explain, true),
            _ => continue,
        };
        let Some(explain) = explain else { continue };
        let name = &target.common().name;
        let Some((_, path, _)) = commons
            .iter()
            .find(|(k, _, c)| *k == kind && &c.name == name)
        else {
            continue;
        };
        for (i, source) in explain.sources.iter().enumerate() {
            let key = format!("{path}.explain.sources[{i}]");
            if !commons
                .iter()
                .any(|(k, _, c)| *k == "slowlog" && &c.name == source)
            {
                errors.push(doc.error_in(
                    key,
                    format!("explain source \"{source}\" is not a [[slowlog]] target"),
                ));
                continue;
            }
            let format = config.targets.iter().find_map(|t| match &t.ready {
                ReadyTarget::Slowlog(s) if &s.common.name == source => Some(s.format),
                _ => None,
            });
            if let Some(format) = format
                && (format == perfwatch_slowlog::LogFormat::Mysql) != wants_mysql
            {
                errors.push(doc.error_in(
                    key,
                    format!(
                        "explain source \"{source}\" is a {} log; a {kind} target can only plan its own server's statements",
                        format.as_str()
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
