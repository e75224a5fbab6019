//! Query plans and index advice: from "which query class is slow" to "why,
//! and what to do" (issue 19).
//!
//! # Layout
//!
//! - this file: the `[postgres.explain]` / `[mysql.explain]` table
//!   ([`ExplainConfig`]), the [`Board`] where slow-log targets post the
//!   examples of their top classes and database targets post back what
//!   `EXPLAIN` said, and the database side's budget and bookkeeping
//!   ([`Explainer`]);
//! - `statement.rs`: which examples may be explained at all (pure);
//! - `plan.rs`: a server's JSON plan as a bounded headline, and literals
//!   masked out of it (pure);
//! - `advice.rs`: a plan and the facts of the table it scans as an index
//!   suggestion (pure).
//!
//! Decisions:
//! - The examples are the slow log's (a log line has the literals a plan
//!   needs; the servers' statement statistics keep normalized text only,
//!   and PostgreSQL 15 cannot plan `$1` without values). The connection is
//!   the database target's: `EXPLAIN` runs inside its poll, on its
//!   persistent session, under its statement timeout and budget, so a plan
//!   never opens a connection of its own and never delays another target.
//!   The two meet on the [`Board`], an in-memory map the engine owns; no
//!   target ever waits for another.
//! - Only `SELECT` (checked on the text, then enforced by the server: a
//!   read-only transaction, a prepared statement that refuses a second
//!   statement), never `ANALYZE`: the statement is planned, not run.
//! - Budget: at most `max_per_poll` plans per poll and one per class per
//!   `interval`; each plan is followed by at most [`MAX_FACT_TABLES`] reads
//!   of table facts. The slow-log target counts the plans it received in
//!   `perfwatch_slow_query_explains_total`.
//! - Literals: a plan's conditions carry the example's literals, so unless
//!   the slow-log target keeps examples (`keep_examples = true`), every
//!   condition in the served plan is masked like a fingerprint (`?`).

pub mod advice;
pub mod plan;
pub mod statement;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

pub use advice::{Advice, AdviceState, TableFacts};
pub use plan::Plan;

/// Most tables whose facts are read after one plan (its sequential scans,
/// largest estimate first).
pub const MAX_FACT_TABLES: usize = 3;

/// `[postgres.explain]` / `[mysql.explain]`: plan the examples of these
/// slow-log targets' top classes on this target's connection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainConfig {
    /// The `[[slowlog]]` targets (by name) whose examples this database
    /// plans; their log must be this server's (same flavor).
    pub sources: Vec<String>,
    /// Plan each class at most once per this long.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Plans per poll at most.
    #[serde(default = "default_max_per_poll")]
    pub max_per_poll: usize,
    /// Classes planned per source: its top classes by time.
    #[serde(default = "default_top")]
    pub top: usize,
    /// A sequentially scanned table smaller than this gets no advice (a
    /// sequential scan of a small table is the right plan).
    #[serde(default = "default_min_table_rows")]
    pub min_table_rows: u64,
}

fn default_interval() -> Duration {
    Duration::from_secs(600)
}
fn default_max_per_poll() -> usize {
    2
}
fn default_top() -> usize {
    10
}
fn default_min_table_rows() -> u64 {
    10_000
}

impl ExplainConfig {
    /// Checks; keys are relative to the target's table (`explain.…`).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        if self.sources.is_empty() {
            errors.push((
                "explain.sources".into(),
                "explain.sources must name at least one [[slowlog]] target".into(),
            ));
        }
        for (key, v, most) in [
            ("max_per_poll", self.max_per_poll, 20),
            ("top", self.top, 100),
        ] {
            if v == 0 || v > most {
                errors.push((
                    format!("explain.{key}"),
                    format!("explain.{key} must be between 1 and {most}, got {v}"),
                ));
            }
        }
        if self.interval < Duration::from_secs(1) {
            errors.push((
                "explain.interval".into(),
                format!(
                    "explain.interval must be at least 1s, got {}",
                    humantime::format_duration(self.interval)
                ),
            ));
        }
        errors
    }
}

/// One class a slow-log target wants planned.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The class's query id (the `fingerprint` label).
    pub id: String,
    /// Its database (`""`: the log does not say; the target's own).
    pub db: String,
    /// The slowest recent statement of the class (literals and all).
    pub example: Arc<str>,
}

/// What planning one class gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Increases with every outcome of a source (the slow-log target counts
    /// each once).
    pub seq: u64,
    /// The class.
    pub id: String,
    /// Its database, as the candidate said.
    pub db: String,
    /// The database target that planned it.
    pub explainer: String,
    /// When (unix seconds).
    pub at_unix: f64,
    /// The plan and advice, or why there is none (a message naming the
    /// target; never the example).
    pub result: Result<Explained, String>,
}

/// A plan and what it suggests.
#[derive(Debug, Clone)]
pub struct Explained {
    /// The plan's headline and full text.
    pub plan: Plan,
    /// The index advice, when the plan scans a large table sequentially on
    /// a column it filters or joins by.
    pub advice: Option<Advice>,
}

/// Where slow-log targets and database targets meet (see the module docs).
/// Owned by the engine's store, so it outlives reloads: a reloaded target
/// finds the other side's last posts.
#[derive(Debug, Default)]
pub struct Board {
    sources: Mutex<HashMap<String, SourceBoard>>,
}

#[derive(Debug, Default)]
struct SourceBoard {
    candidates: Vec<Candidate>,
    outcomes: HashMap<(String, String), Arc<Outcome>>,
    seq: u64,
}

impl Board {
    fn with<T>(&self, source: &str, f: impl FnOnce(&mut SourceBoard) -> T) -> T {
        let mut map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(source.to_owned()).or_default())
    }

    /// A slow-log target's current candidates (replacing its last post);
    /// outcomes of classes no longer among them are forgotten.
    pub fn post(&self, source: &str, candidates: Vec<Candidate>) {
        self.with(source, |s| {
            s.outcomes
                .retain(|(db, id), _| candidates.iter().any(|c| &c.db == db && &c.id == id));
            s.candidates = candidates;
        });
    }

    /// The candidates `source` posted last.
    pub fn candidates(&self, source: &str) -> Vec<Candidate> {
        self.with(source, |s| s.candidates.clone())
    }

    /// Posts what planning a candidate of `source` gave (`seq` is set here).
    pub fn publish(&self, source: &str, mut outcome: Outcome) {
        self.with(source, |s| {
            s.seq += 1;
            outcome.seq = s.seq;
            s.outcomes
                .insert((outcome.db.clone(), outcome.id.clone()), Arc::new(outcome));
        });
    }

    /// The latest outcome of every class of `source` still a candidate.
    pub fn outcomes(&self, source: &str) -> Vec<Arc<Outcome>> {
        self.with(source, |s| s.outcomes.values().cloned().collect())
    }
}

/// A cumulative reading of a table's sequential scans.
#[derive(Debug, Clone, Copy)]
struct ScanReading {
    at: Instant,
    scans: u64,
    rows: u64,
}

/// The database side: which candidates are due, within the budget, and the
/// readings that turn cumulative scan counters into rates.
#[derive(Debug)]
pub struct Explainer {
    /// The table as configured.
    pub cfg: ExplainConfig,
    /// The database target's name (outcomes carry it).
    name: String,
    /// Its SQL dialect (the advice's create statement).
    dialect: advice::Dialect,
    /// When each (source, db, class) was last planned.
    last: HashMap<(String, String, String), Instant>,
    /// The last scan counters of each table (`db.schema.table`).
    readings: HashMap<String, ScanReading>,
}

impl Explainer {
    /// A fresh explainer for target `name`'s configured table.
    pub fn new(cfg: ExplainConfig, name: &str, dialect: advice::Dialect) -> Self {
        Self {
            cfg,
            name: name.to_owned(),
            dialect,
            last: HashMap::new(),
            readings: HashMap::new(),
        }
    }

    /// The candidates due now, at most `max_per_poll`, least recently
    /// planned first; each is marked planned (an attempt cut short by the
    /// poll deadline waits its interval like a finished one, so a plan that
    /// cannot finish never takes every poll).
    pub fn due(&mut self, board: &Board, now: Instant) -> Vec<(String, Candidate)> {
        let mut due = Vec::new();
        let mut wanted = std::collections::HashSet::new();
        for source in &self.cfg.sources {
            for c in board.candidates(source).into_iter().take(self.cfg.top) {
                let key = (source.clone(), c.db.clone(), c.id.clone());
                let last = self.last.get(&key).copied();
                wanted.insert(key);
                if last.is_none_or(|t| now.duration_since(t) >= self.cfg.interval) {
                    due.push((last, source.clone(), c));
                }
            }
        }
        // Bounded: classes that left the candidates are forgotten.
        self.last.retain(|k, _| wanted.contains(k));
        due.sort_by_key(|(last, _, _)| *last);
        due.into_iter()
            .take(self.cfg.max_per_poll)
            .map(|(_, source, c)| {
                self.last
                    .insert((source.clone(), c.db.clone(), c.id.clone()), now);
                (source, c)
            })
            .collect()
    }

    /// Fills `facts.seq_scans_per_second` and `rows_per_seq_scan` from the
    /// difference to the previous reading of the same table, and keeps
    /// this one. The first reading of a table has no rate yet.
    pub fn rate(&mut self, key: &str, facts: &mut TableFacts, now: Instant) {
        let (Some(scans), Some(rows)) = (facts.seq_scans, facts.seq_rows_read) else {
            return;
        };
        if let Some(prev) = self.readings.get(key) {
            let secs = now.duration_since(prev.at).as_secs_f64();
            if secs > 0.0 && scans >= prev.scans && rows >= prev.rows {
                let d_scans = scans - prev.scans;
                facts.seq_scans_per_second = Some(d_scans as f64 / secs);
                facts.rows_per_seq_scan =
                    (d_scans > 0).then(|| (rows - prev.rows) as f64 / d_scans as f64);
            }
        }
        // A table's counters are worth keeping only as long as it is
        // planned: bounded by the candidates (MAX_FACT_TABLES each).
        if self.readings.len() >= 4 * MAX_FACT_TABLES * self.cfg.top * self.cfg.sources.len()
            && !self.readings.contains_key(key)
        {
            self.readings.clear();
        }
        self.readings.insert(
            key.to_owned(),
            ScanReading {
                at: now,
                scans,
                rows,
            },
        );
    }
}

impl Explainer {
    /// Finishes one planned candidate of `source`: the advice from the plan
    /// and the facts read for it, posted to `board` as the outcome of
    /// database target `explainer`. `plan` is the parsed plan or a message
    /// naming the target and what failed (never the example).
    pub fn finish(
        &self,
        board: &Board,
        source: &str,
        candidate: &Candidate,
        plan: Result<Plan, String>,
        facts: &[TableFacts],
    ) {
        let result = plan.map(|plan| Explained {
            advice: advice::advise(
                &candidate.id,
                &plan,
                facts,
                self.cfg.min_table_rows,
                self.dialect,
            ),
            plan,
        });
        board.publish(
            source,
            Outcome {
                seq: 0,
                id: candidate.id.clone(),
                db: candidate.db.clone(),
                explainer: self.name.clone(),
                at_unix: perfwatch_slowlog::unix_now(),
                result,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_per_poll: usize, interval: u64) -> ExplainConfig {
        ExplainConfig {
            sources: vec!["slow".into()],
            interval: Duration::from_secs(interval),
            max_per_poll,
            top: 10,
            min_table_rows: 10_000,
        }
    }

    fn cand(id: &str) -> Candidate {
        Candidate {
            id: id.into(),
            db: "app".into(),
            example: Arc::from("select 1"),
        }
    }

    #[test]
    fn at_most_max_per_poll_and_once_per_interval_per_class() {
        let board = Board::default();
        board.post("slow", vec![cand("A"), cand("B"), cand("C")]);
        let mut ex = Explainer::new(cfg(2, 60), "db", advice::Dialect::Postgres);
        let t0 = Instant::now();
        let first: Vec<String> = ex.due(&board, t0).into_iter().map(|c| c.1.id).collect();
        assert_eq!(first, ["A", "B"]);
        let second: Vec<String> = ex
            .due(&board, t0 + Duration::from_secs(1))
            .into_iter()
            .map(|c| c.1.id)
            .collect();
        assert_eq!(second, ["C"], "A and B wait for their interval");
        assert!(ex.due(&board, t0 + Duration::from_secs(2)).is_empty());
        let later: Vec<String> = ex
            .due(&board, t0 + Duration::from_secs(61))
            .into_iter()
            .map(|c| c.1.id)
            .collect();
        assert_eq!(later, ["A", "B"], "least recently planned first");
    }

    #[test]
    fn outcomes_of_classes_that_left_are_forgotten() {
        let board = Board::default();
        board.post("slow", vec![cand("A"), cand("B")]);
        for id in ["A", "B"] {
            board.publish(
                "slow",
                Outcome {
                    seq: 0,
                    id: id.into(),
                    db: "app".into(),
                    explainer: "db".into(),
                    at_unix: 0.0,
                    result: Err("x".into()),
                },
            );
        }
        let mut seqs: Vec<u64> = board.outcomes("slow").iter().map(|o| o.seq).collect();
        seqs.sort();
        assert_eq!(seqs, [1, 2]);
        board.post("slow", vec![cand("B")]);
        let left: Vec<String> = board
            .outcomes("slow")
            .iter()
            .map(|o| o.id.clone())
            .collect();
        assert_eq!(left, ["B"]);
    }

    #[test]
    fn rates_come_from_two_readings() {
        let mut ex = Explainer::new(cfg(1, 60), "db", advice::Dialect::Postgres);
        let t0 = Instant::now();
        let mut f = TableFacts {
            seq_scans: Some(100),
            seq_rows_read: Some(1_000_000),
            ..TableFacts::default()
        };
        ex.rate("app.public.trip", &mut f, t0);
        assert_eq!(f.seq_scans_per_second, None, "one reading has no rate");
        let mut g = TableFacts {
            seq_scans: Some(110),
            seq_rows_read: Some(1_200_000),
            ..TableFacts::default()
        };
        ex.rate("app.public.trip", &mut g, t0 + Duration::from_secs(5));
        assert_eq!(g.seq_scans_per_second, Some(2.0));
        assert_eq!(g.rows_per_seq_scan, Some(20_000.0));
    }

    #[test]
    fn config_problems_name_their_keys() {
        let mut c = cfg(0, 0);
        c.sources.clear();
        let keys: Vec<String> = c.validate().into_iter().map(|e| e.0).collect();
        assert_eq!(
            keys,
            [
                "explain.sources",
                "explain.max_per_poll",
                "explain.interval"
            ]
        );
    }
}
