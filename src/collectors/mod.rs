//! Every collector kind perfwatch knows, registered in one list
//! ([`register_kinds!`] below, which makes [`KINDS`] and [`ReadyTarget`]).
//!
//! A kind is a folder under `src/collectors/` with a unit type implementing
//! [`Kind`]: its config section (`[[redis]]`), metric prefixes and catalog,
//! the table as written (`Config`), the validated target the collector takes
//! as it is (`Target`: parsed connect options, resolved secrets), and the
//! running [`Collector`]. Adding a kind means that folder plus one line in
//! the list; config loading, validation, reloads, `perfwatch once` and the
//! catalog test pick it up from there.
//!
//! Two modules are shared by several kinds rather than being kinds:
//! `custom_query` (`[[x.query]]` SQL metrics) and `statement_stats`
//! (`[x.statements]`, per-statement statistics as a slow-query source).

pub mod custom_query;
pub mod http;
pub mod mysql;
pub mod pgbouncer;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod slowlog;
pub mod statement_stats;

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::DeValue;

use crate::catalog::MetricDef;
use crate::document::{ConfigError, Document, deserialize_collecting};
use crate::engine::{PollLoop, TargetHandle};
use crate::poll::{Collector, CommonTarget, PollError, PollOutput, Timing};

/// What one collector kind provides; implemented once, in the kind's folder.
pub trait Kind: 'static {
    /// The TOML array-of-tables name and the `collector` label value.
    const SECTION: &'static str;
    /// Metric name prefixes this kind emits (checked unique across kinds).
    const METRIC_PREFIXES: &'static [&'static str];
    /// Every family this kind exports (its `catalog.rs`).
    const CATALOG: &'static [&'static MetricDef];
    /// One `[[section]]` table as written.
    type Config: DeserializeOwned;
    /// A checked target, ready for the collector to use as it is.
    type Target: Debug + Clone + PartialEq + Send + Sync + 'static;
    /// The running collector.
    type Collector: Collector;
    /// Name, interval and timeout as written (checked across targets even
    /// when the rest of the table is bad).
    fn common(config: &Self::Config) -> CommonTarget;
    /// Checks a table: the ready target, or every problem as
    /// `(key relative to the table, message)`.
    fn validate(config: Self::Config) -> Result<Self::Target, Vec<(String, String)>>;
    /// A collector for `target` that connects on its first poll.
    fn collector(target: &Self::Target, timing: Timing) -> Self::Collector;
}

/// One collector kind as the config loader and the tests see it.
pub struct KindInfo {
    /// See [`Kind::SECTION`].
    pub section: &'static str,
    /// See [`Kind::METRIC_PREFIXES`].
    pub metric_prefixes: &'static [&'static str],
    /// See [`Kind::CATALOG`].
    pub catalog: &'static [&'static MetricDef],
    /// Deserializes and validates one `[[section]]` table at `path`.
    pub parse: ParseFn,
}

/// Signature of a kind's table parser (see [`parse_table`]).
pub type ParseFn =
    fn(&Document<'_>, &str, &Spanned<DeValue<'_>>, &mut Vec<ConfigError>) -> Option<Parsed>;

/// A table that deserialized; `target` is `None` when validation failed (the
/// errors went to the error list).
pub struct Parsed {
    /// Name, interval and timeout.
    pub common: CommonTarget,
    /// The ready target.
    pub target: Option<Target>,
}

/// A validated target of any kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Name, interval and timeout (the `target` label is `common.name`).
    pub common: CommonTarget,
    /// The kind and its ready target.
    pub ready: ReadyTarget,
}

/// Deserializes one table strictly and validates it, collecting every error.
pub fn parse_table<K: Kind>(
    doc: &Document<'_>,
    path: &str,
    value: &Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
    wrap: fn(K::Target) -> ReadyTarget,
) -> Option<Parsed> {
    let config: K::Config = deserialize_collecting(doc, path, value, errors)?;
    let common = K::common(&config);
    let target = match K::validate(config) {
        Ok(t) => Some(Target {
            common: common.clone(),
            ready: wrap(t),
        }),
        Err(problems) => {
            for (key, message) in problems {
                errors.push(doc.error_in(format!("{path}.{key}"), message));
            }
            None
        }
    };
    Some(Parsed { common, target })
}

/// Registers every kind: `Variant => folder::KindType`. Generates
/// [`ReadyTarget`] (one variant per kind), [`KINDS`], and the dispatch of
/// [`Target`]'s methods.
macro_rules! register_kinds {
    ($($variant:ident => $kind:ty),* $(,)?) => {
        /// The ready target of one kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ReadyTarget {
            $(
                #[doc = concat!("`[[", stringify!($variant), "]]`")]
                $variant(<$kind as Kind>::Target),
            )*
        }

        /// The registry of every collector kind.
        pub const KINDS: &[KindInfo] = &[
            $(
                KindInfo {
                    section: <$kind as Kind>::SECTION,
                    metric_prefixes: <$kind as Kind>::METRIC_PREFIXES,
                    catalog: <$kind as Kind>::CATALOG,
                    parse: |doc, path, value, errors| {
                        parse_table::<$kind>(doc, path, value, errors, ReadyTarget::$variant)
                    },
                },
            )*
        ];

        impl Target {
            /// The kind's section name, used as the `collector` label.
            pub fn kind(&self) -> &'static str {
                match &self.ready {
                    $(ReadyTarget::$variant(_) => <$kind as Kind>::SECTION,)*
                }
            }

            /// Starts the poll loop of this target.
            pub fn start(&self, poll_loop: PollLoop) -> TargetHandle {
                let timing = poll_loop.timing;
                match &self.ready {
                    $(ReadyTarget::$variant(t) => {
                        poll_loop.spawn(<$kind as Kind>::collector(t, timing))
                    })*
                }
            }

            /// Polls this target once on the engine's own guarded path (hard
            /// timeout, panic guard), for `perfwatch once`.
            pub async fn poll_once(&self, timing: Timing) -> Result<PollOutput, PollError> {
                let (kind, name) = (self.kind(), self.common.name.as_str());
                match &self.ready {
                    $(ReadyTarget::$variant(t) => {
                        let mut c = <$kind as Kind>::collector(t, timing);
                        crate::engine::poll_guarded(&mut c, kind, name, timing.timeout).await
                    })*
                }
            }
        }
    };
}

register_kinds! {
    Redis => redis::RedisKind,
    Postgres => postgres::PostgresKind,
    Mysql => mysql::MysqlKind,
    Pgbouncer => pgbouncer::PgbouncerKind,
    Http => http::HttpKind,
    Process => process::ProcessKind,
    Slowlog => slowlog::SlowlogKind,
}

/// The transitional `validate` of kinds whose target is still their config
/// table: the table itself when its checks pass.
pub fn checked<C>(
    config: C,
    check: impl FnOnce(&C) -> Vec<(String, String)>,
) -> Result<C, Vec<(String, String)>> {
    let problems = check(&config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_prefixes_are_unique() {
        let mut sections: Vec<_> = KINDS.iter().map(|k| k.section).collect();
        sections.sort();
        sections.dedup();
        assert_eq!(sections.len(), KINDS.len(), "duplicate section");
        let prefixes: Vec<_> = KINDS.iter().flat_map(|k| k.metric_prefixes).collect();
        for (i, a) in prefixes.iter().enumerate() {
            for b in &prefixes[i + 1..] {
                assert_ne!(a, b, "prefix {a} registered twice");
            }
        }
    }
}
