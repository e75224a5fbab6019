//! Every collector kind perfwatch knows, registered in one list
//! ([`register_kinds!`] below, which makes [`KINDS`] and [`ReadyTarget`]).
//!
//! A kind is a folder under `src/collectors/` following three conventions,
//! so that its registration is one entry in the list and nothing else:
//!
//! - `XConfig`: the table as written, without the keys every table has
//!   (`name`, `interval`, `timeout`: [`CommonTarget`], split off the table
//!   by [`parse_table`]), with `deny_unknown_fields`;
//! - `XConfig::validate(&self, &CommonTarget) -> Result<XReady, Problems>`:
//!   what the collector needs ready (parsed connect options, resolved
//!   secrets, compiled regexes), or every problem of the table;
//! - `XCollector::new(&XTarget, Timing)`, where `XTarget` is
//!   [`Validated<XConfig, XReady>`](Validated): a collector that connects on
//!   its first poll.
//!
//! Config loading, validation, reloads, `perfwatch once` and the catalog
//! test pick a kind up from the list.
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

/// `$acc.f = $op($acc.f, $row.f)` for each named field `f`: the per-field
/// sums of the folds that add the rows past a top-N into one `other` row.
macro_rules! fold_fields {
    ($op:path; $acc:ident, $row:ident: $($field:ident),+ $(,)?) => {
        $($acc.$field = $op($acc.$field, $row.$field);)+
    };
}
pub(crate) use fold_fields;

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::catalog::MetricDef;
use crate::document::{ConfigError, Document, deserialize_collecting};
use crate::engine::{PollLoop, TargetHandle};
use crate::poll::{CommonTarget, PollError, PollOutput, Timing};
use crate::secret::Secret;

/// Every problem of one table, as `(key relative to the table, message)`.
pub type Problems = Vec<(String, String)>;

/// One collector kind as the config loader and the tests see it.
pub struct KindInfo {
    /// The TOML array-of-tables name and the `collector` label value.
    pub section: &'static str,
    /// Metric name prefixes this kind emits (checked unique across kinds).
    pub metric_prefixes: &'static [&'static str],
    /// Every family this kind exports (its `catalog.rs`).
    pub catalog: &'static [&'static MetricDef],
    /// The peer exporter's up gauge (`redis_up`, ...), declared in the
    /// catalog and filled by the engine from each poll's outcome (a failed
    /// poll has no families of its own to carry it).
    pub peer_up: Option<&'static MetricDef>,
    /// Deserializes and validates one `[[section]]` table at `path`.
    pub parse: ParseFn,
    /// Builds a ready target from a table made in code instead of read from
    /// a file (a fleet probe's backend, see the `probe` module): the same
    /// strict deserialization and `validate` a config table goes through.
    pub build: BuildFn,
}

/// Signature of a kind's builder from a table made in code (see [`build_table`]).
pub type BuildFn = fn(CommonTarget, toml::Table) -> Result<Target, Problems>;

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
    /// The kind and its ready target (which holds the common keys: see
    /// [`Target::common`]).
    pub ready: ReadyTarget,
}

/// What validation derived from a table, kept next to it in [`Validated`].
pub trait Ready: Clone + Send + Sync + 'static {
    /// A resolved secret that reloads compare too, so that a rotated
    /// password file restarts the target. Everything else a kind derives
    /// follows from the table, so by default nothing.
    fn reload_secret(&self) -> Option<&Secret> {
        None
    }
}

/// Kinds that need nothing beyond their table.
impl Ready for () {}

/// A checked table of one kind, ready for its collector to use as it is:
/// the common keys, the kind's own keys, and what validation derived from
/// them (`ready`).
///
/// Reloads compare `common`, `config` and the [`Ready::reload_secret`] (the
/// rest of `ready` follows from them). `Debug` shows `common` and `config`
/// only: `ready` may hold driver options whose `Debug` prints passwords
/// (sqlx's does); the configs' own `Debug` hides their secrets.
#[derive(Clone)]
pub struct Validated<C, R> {
    /// Name, interval and timeout.
    pub common: CommonTarget,
    /// The kind's table as written (without the common keys).
    pub config: C,
    /// What validation derived (see [`Ready`]).
    pub(crate) ready: R,
}

impl<C, R> std::ops::Deref for Validated<C, R> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.config
    }
}

impl<C: PartialEq, R: Ready> PartialEq for Validated<C, R> {
    fn eq(&self, other: &Self) -> bool {
        self.common == other.common
            && self.config == other.config
            && self.ready.reload_secret() == other.ready.reload_secret()
    }
}

impl<C: Debug, R> Debug for Validated<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validated")
            .field("common", &self.common)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Deserializes one table strictly and validates it, collecting every
/// error. The common keys go to [`CommonTarget`], the rest to the kind's
/// config; both deny unknown keys, and the spans are kept, so every error
/// still names its file, line and key.
pub fn parse_table<C: DeserializeOwned, R: Ready>(
    doc: &Document<'_>,
    path: &str,
    value: &Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
    validate: fn(&C, &CommonTarget) -> Result<R, Problems>,
    wrap: fn(Validated<C, R>) -> ReadyTarget,
) -> Option<Parsed> {
    let DeValue::Table(table) = value.get_ref() else {
        // Not a table: the kind's config says what it expected.
        if deserialize_collecting::<C>(doc, path, value, errors).is_some() {
            errors.push(doc.error_in(path.to_owned(), "must be a table".into()));
        }
        return None;
    };
    let (mut common_keys, mut rest) = (DeTable::new(), DeTable::new());
    for (key, v) in table.iter() {
        let side = if CommonTarget::KEYS.contains(&&**key.get_ref()) {
            &mut common_keys
        } else {
            &mut rest
        };
        side.insert(key.clone(), v.clone());
    }
    let as_value = |t| Spanned::new(value.span(), DeValue::Table(t));
    let common: Option<CommonTarget> =
        deserialize_collecting(doc, path, &as_value(common_keys), errors);
    let config: Option<C> = deserialize_collecting(doc, path, &as_value(rest), errors);
    let (common, config) = (common?, config?);
    let target = match validate(&config, &common) {
        Ok(ready) => Some(Target {
            ready: wrap(Validated {
                common: common.clone(),
                config,
                ready,
            }),
        }),
        Err(problems) => {
            // A key whose bad value deserialization already reported (and
            // removed) is not reported again as missing.
            let rejected: Vec<String> = errors.iter().map(|e| e.key.clone()).collect();
            for (key, message) in problems {
                let key = format!("{path}.{key}");
                if !rejected.contains(&key) {
                    errors.push(doc.error_in(key, message));
                }
            }
            None
        }
    };
    Some(Parsed { common, target })
}

/// [`parse_table`] for a table made in code: deserialized strictly into the
/// kind's config, then validated. Problems are keyed relative to the table;
/// a deserialization error (a key the kind does not have, a wrong type) has
/// the empty key.
pub fn build_table<C: DeserializeOwned, R: Ready>(
    common: CommonTarget,
    table: toml::Table,
    validate: fn(&C, &CommonTarget) -> Result<R, Problems>,
    wrap: fn(Validated<C, R>) -> ReadyTarget,
) -> Result<Target, Problems> {
    let config: C = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| vec![(String::new(), e.message().trim().to_owned())])?;
    let ready = validate(&config, &common)?;
    Ok(Target {
        ready: wrap(Validated {
            common,
            config,
            ready,
        }),
    })
}

/// `Ok(())` when a table has no problems, else every one of them.
pub(crate) fn no_problems(problems: Problems) -> Result<(), Problems> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Adds "`name` must be at least 1, got 0" for `key` (`name` is its last
/// segment: `keys.max_groups` says `max_groups`) when `value` is 0.
pub(crate) fn at_least_one(problems: &mut Problems, key: &str, value: usize) {
    if value == 0 {
        let name = key.rsplit('.').next().unwrap_or(key);
        problems.push((key.into(), format!("{name} must be at least 1, got 0")));
    }
}

/// Test tables' common keys: `name`, no interval or timeout override.
#[cfg(test)]
pub(crate) fn common(name: &str) -> CommonTarget {
    CommonTarget {
        name: name.into(),
        interval: None,
        timeout: None,
    }
}

/// A test table parsed as [`parse_table`] does, split into the common keys
/// and the kind's config (without file positions).
#[cfg(test)]
pub(crate) fn parse_split<C: DeserializeOwned>(
    text: &str,
) -> Result<(CommonTarget, C), toml::de::Error> {
    let mut rest: toml::Table = toml::from_str(text)?;
    let mut common = toml::Table::new();
    for key in CommonTarget::KEYS {
        if let Some(v) = rest.remove(key) {
            common.insert(key.into(), v);
        }
    }
    Ok((common.try_into()?, rest.try_into()?))
}

/// Registers every kind, one entry each: its section, metric prefixes,
/// catalog, config, ready and collector types (see the module docs for the
/// conventions they follow). Generates [`ReadyTarget`] (one variant per
/// kind), [`KINDS`], and the dispatch of [`Target`]'s methods.
macro_rules! register_kinds {
    ($(
        $variant:ident {
            section: $section:literal,
            prefixes: [$($prefix:literal),* $(,)?],
            catalog: $catalog:expr,
            peer_up: $peer_up:expr,
            config: $config:ty,
            ready: $ready:ty,
            collector: $collector:ty $(,)?
        }
    ),* $(,)?) => {
        /// The ready target of one kind.
        // Built once per config load and moved rarely: the size of the
        // largest kind costs nothing worth a Box per target.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        pub enum ReadyTarget {
            $(
                #[doc = concat!("`[[", $section, "]]`")]
                $variant(Validated<$config, $ready>),
            )*
        }

        /// The registry of every collector kind.
        pub const KINDS: &[KindInfo] = &[
            $(
                KindInfo {
                    section: $section,
                    metric_prefixes: &[$($prefix),*],
                    catalog: $catalog,
                    peer_up: $peer_up,
                    parse: |doc, path, value, errors| {
                        parse_table(doc, path, value, errors, <$config>::validate, ReadyTarget::$variant)
                    },
                    build: |common, table| {
                        build_table(common, table, <$config>::validate, ReadyTarget::$variant)
                    },
                },
            )*
        ];

        impl Target {
            /// Name, interval and timeout (the `target` label is `common().name`).
            pub fn common(&self) -> &CommonTarget {
                match &self.ready {
                    $(ReadyTarget::$variant(t) => &t.common,)*
                }
            }

            /// The kind's peer exporter's up gauge, if it has one.
            pub fn peer_up(&self) -> Option<&'static MetricDef> {
                match &self.ready {
                    $(ReadyTarget::$variant(_) => $peer_up,)*
                }
            }

            /// The kind's section name, used as the `collector` label.
            pub fn kind(&self) -> &'static str {
                match &self.ready {
                    $(ReadyTarget::$variant(_) => $section,)*
                }
            }

            /// Starts the poll loop of this target.
            pub fn start(&self, poll_loop: PollLoop) -> TargetHandle {
                let timing = poll_loop.timing;
                let board = poll_loop.store.explain_board().clone();
                match &self.ready {
                    $(ReadyTarget::$variant(t) => {
                        let mut c = <$collector>::new(t, timing);
                        crate::poll::Collector::attach_board(&mut c, &board);
                        poll_loop.spawn(c)
                    })*
                }
            }

            /// A new collector for this target, boxed: the fleet probes keep
            /// one per backend between requests and poll it on the engine's
            /// guarded path. It connects on its first poll.
            pub fn boxed_collector(&self, timing: Timing) -> crate::poll::BoxedCollector {
                match &self.ready {
                    $(ReadyTarget::$variant(t) => Box::new(<$collector>::new(t, timing)),)*
                }
            }

            /// Polls this target once on the engine's own guarded path (hard
            /// timeout, panic guard), for `perfwatch once`.
            pub async fn poll_once(&self, timing: Timing) -> Result<PollOutput, PollError> {
                let (kind, name) = (self.kind(), self.common().name.as_str());
                match &self.ready {
                    $(ReadyTarget::$variant(t) => {
                        let mut c = <$collector>::new(t, timing);
                        crate::engine::poll_guarded(&mut c, kind, name, timing.timeout).await
                    })*
                }
            }
        }
    };
}

register_kinds! {
    Redis {
        section: "redis",
        prefixes: ["redis_", "perfwatch_redis_", "perfwatch_cache_"],
        catalog: redis::catalog::ALL,
        peer_up: Some(&redis::catalog::UP),
        config: redis::RedisConfig,
        ready: redis::RedisReady,
        collector: redis::RedisCollector,
    },
    Postgres {
        section: "postgres",
        prefixes: ["pg_", "perfwatch_postgres_"],
        catalog: postgres::catalog::ALL,
        peer_up: Some(&postgres::catalog::UP),
        config: postgres::PostgresConfig,
        ready: postgres::PostgresReady,
        collector: postgres::PostgresCollector,
    },
    Mysql {
        section: "mysql",
        prefixes: ["mysql_", "perfwatch_mysql_"],
        catalog: mysql::catalog::ALL,
        peer_up: Some(&mysql::catalog::UP),
        config: mysql::MysqlConfig,
        ready: mysql::MysqlReady,
        collector: mysql::MysqlCollector,
    },
    Pgbouncer {
        section: "pgbouncer",
        prefixes: ["pgbouncer_", "perfwatch_pgbouncer_"],
        catalog: pgbouncer::catalog::ALL,
        peer_up: None,
        config: pgbouncer::PgbouncerConfig,
        ready: pgbouncer::PgbouncerReady,
        collector: pgbouncer::PgbouncerCollector,
    },
    Http {
        section: "http",
        prefixes: ["perfwatch_app_", "perfwatch_http_"],
        catalog: http::catalog::ALL,
        peer_up: None,
        config: http::HttpConfig,
        ready: http::HttpReady,
        collector: http::HttpCollector,
    },
    Process {
        section: "process",
        prefixes: ["perfwatch_process_"],
        catalog: process::catalog::ALL,
        peer_up: None,
        config: process::ProcessConfig,
        ready: process::ProcessReady,
        collector: process::ProcessCollector,
    },
    // `perfwatch_slow_queries_total` is older than the prefix rule and
    // keeps its name (dashboards and alerts use it).
    Slowlog {
        section: "slowlog",
        prefixes: ["perfwatch_slow_query", "perfwatch_slow_queries_", "perfwatch_slowlog_"],
        catalog: slowlog::catalog::ALL,
        peer_up: None,
        config: slowlog::SlowlogConfig,
        ready: (),
        collector: slowlog::SlowlogCollector,
    },
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
