//! Slow-query logs as data: MySQL/MariaDB/Percona and PostgreSQL (stderr,
//! csvlog, jsonlog) parsers, query fingerprints and ids compatible with
//! pt-query-digest, a bounded per-class digest (top-N classes by time plus
//! `other`), and a rotation-safe, resumable file follower.
//!
//! It is the library under perfwatch's `[[slowlog]]` collector, its
//! statement-statistics sources (pg_stat_statements, performance_schema)
//! and its `perfwatch digest` command, and has no dependency on perfwatch:
//! metric names, config files and HTTP stay in the sidecar, which turns
//! [`digest::Digest::series`] into its `perfwatch_slow_query_*` families.
//!
//! # Layout
//! - [`event`]: one slow query as any format describes it.
//! - [`mysql`], [`postgres`]: streaming parsers (pure), and [`parser`], the
//!   format names and one parser for any format.
//! - [`fingerprint`](mod@fingerprint): pt-query-digest's fingerprint and query id (pure).
//! - [`digest`]: aggregation per (db, fingerprint), bounded, with series
//!   that never go down when classes change places.
//! - [`histogram`]: bucketed histograms as plain data and their quantiles.
//! - [`tail`]: following a file like `tail -F`, with a persistable position.
//! - [`watch`]: waking a reader when the log's directory changes (inotify).
//! - [`report`]: a whole file digested at once (`perfwatch digest`).

mod decimal;
pub mod diagnose;
pub mod digest;
pub mod event;
pub mod fingerprint;
pub mod histogram;
pub mod mysql;
pub mod parser;
pub mod postgres;
mod prefix;
mod quoted;
pub mod report;
pub mod statement;
pub mod tail;
pub mod watch;
mod words;

pub use digest::{Digest, StatementCounters, StatementSummary};
pub use event::SlowEvent;
pub use fingerprint::{fingerprint, fingerprint_id};
pub use parser::{LogFormat, LogParser};

/// Seconds since the Unix epoch (the digest's first/last seen times).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The tests' seeded random numbers (xorshift: the same cases on every run).
#[cfg(test)]
pub(crate) mod test_rng {
    /// A xorshift generator; its seed must not be 0.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        /// A number below `n`.
        pub(crate) fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        /// `len` bytes drawn from `alphabet`.
        pub(crate) fn bytes(&mut self, alphabet: &[u8], len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }
}
