//! The slow-log side of plans and index advice (`crate::explain`): post the
//! examples of the top classes to the board, take the plans database
//! targets post back, follow each advice over time (suggested, then
//! applied when a later plan no longer reads the table whole, with the
//! class's p95 before and after), and export and serve them.
//!
//! Privacy: examples hold literals. They leave this process only with
//! `keep_examples = true`; otherwise plans are served with their
//! conditions masked and error messages masked the same way.

use std::collections::HashMap;
use std::sync::Arc;

use perfwatch_slowlog::Digest;
use perfwatch_slowlog::digest::MAX_EXAMPLE;
use perfwatch_slowlog::histogram::{HistogramData, bucket_quantile};
use serde_json::{Value, json};

use super::catalog;
use crate::explain::plan::{ScanKind, bound, mask_literals};
use crate::explain::statement::{self, NotExplained};
use crate::explain::{Advice, AdviceState, Board, Candidate, Outcome, Plan};
use crate::exposition::{Families, with_labels};

/// Most classes posted for planning (the largest `explain.top`).
const MAX_CANDIDATES: usize = 100;
/// Most classes whose last plan and advice are kept (a class that left the
/// top keeps its advice, and its before/after, until pushed out).
const MAX_KEPT: usize = 2 * MAX_CANDIDATES;

/// One class's advice as followed over time.
#[derive(Debug, Clone)]
struct Tracked {
    advice: Advice,
    /// The class's histogram when a plan first stopped reading the table
    /// whole (the "before"); `None` while suggested.
    before: Option<HistogramData>,
}

/// One class's last plan.
#[derive(Debug, Clone)]
struct ClassPlan {
    outcome: Arc<Outcome>,
    /// The plan as served (conditions masked unless examples are kept).
    shown: Option<Plan>,
    /// The error as served.
    error: Option<String>,
    advice: Option<Tracked>,
}

/// Plans and advice of one slow-log target.
#[derive(Debug, Default)]
pub(super) struct Plans {
    classes: HashMap<(String, String), ClassPlan>,
    /// Classes of the last post that were not posted, and why.
    skipped: HashMap<(String, String), NotExplained>,
    /// The last outcome sequence number counted.
    seen: u64,
    /// Plans received, by outcome (`ok`, `error`).
    received: HashMap<&'static str, u64>,
}

impl Plans {
    /// Posts the examples of the top classes of `digest` to `board` and
    /// takes the plans posted back since the last call.
    pub(super) fn exchange(&mut self, board: &Board, source: &str, digest: &Digest, keep: bool) {
        let mut candidates = Vec::new();
        self.skipped.clear();
        for (db, class) in digest.top_classes(MAX_CANDIDATES) {
            let Some(example) = &class.example else {
                continue;
            };
            debug_assert!(example.text.len() <= MAX_EXAMPLE);
            match statement::check(&example.text) {
                Ok(()) => candidates.push(Candidate {
                    id: class.id.clone(),
                    db: db.to_owned(),
                    example: Arc::from(example.text.as_str()),
                }),
                Err(why) => {
                    self.skipped.insert((db.to_owned(), class.id.clone()), why);
                }
            }
        }
        board.post(source, candidates);
        let mut fresh: Vec<Arc<Outcome>> = board
            .outcomes(source)
            .into_iter()
            .filter(|o| o.seq > self.seen)
            .collect();
        fresh.sort_by_key(|o| o.seq);
        for o in fresh {
            self.seen = self.seen.max(o.seq);
            *self
                .received
                .entry(if o.result.is_ok() { "ok" } else { "error" })
                .or_default() += 1;
            self.take(o, digest, keep);
        }
        if self.classes.len() > MAX_KEPT {
            let mut by_age: Vec<((String, String), f64)> = self
                .classes
                .iter()
                .map(|(k, c)| (k.clone(), c.outcome.at_unix))
                .collect();
            by_age.sort_by(|a, b| a.1.total_cmp(&b.1));
            for (k, _) in by_age.into_iter().take(self.classes.len() - MAX_KEPT) {
                self.classes.remove(&k);
            }
        }
    }

    fn take(&mut self, o: Arc<Outcome>, digest: &Digest, keep: bool) {
        let key = (o.db.clone(), o.id.clone());
        let previous = self.classes.remove(&key);
        let mut tracked = previous.and_then(|p| p.advice);
        let (shown, error) = match &o.result {
            Ok(explained) => {
                let mut plan = explained.plan.clone();
                if !keep && let Some(full) = plan.full.as_mut() {
                    mask_literals(full);
                }
                bound(&mut plan);
                tracked = match (&explained.advice, tracked) {
                    // A plan still reading a table whole: the advice stands
                    // (renewed with the latest facts).
                    (Some(a), _) => Some(Tracked {
                        advice: a.clone(),
                        before: None,
                    }),
                    // The table advised on is no longer read whole: applied,
                    // from now on (the first time).
                    (None, Some(mut t)) => {
                        let still_seq = explained
                            .plan
                            .scans
                            .iter()
                            .any(|s| s.kind == ScanKind::Seq && s.table == t.advice.table);
                        if !still_seq && t.before.is_none() {
                            t.advice.state = AdviceState::Applied;
                            t.before = digest.class_histogram(&o.db, &o.id).cloned();
                        }
                        Some(t)
                    }
                    (None, None) => None,
                };
                (Some(plan), None)
            }
            Err(e) => {
                let shown = if keep {
                    e.clone()
                } else {
                    perfwatch_slowlog::fingerprint(e)
                };
                (None, Some(shown))
            }
        };
        self.classes.insert(
            key,
            ClassPlan {
                outcome: o,
                shown,
                error,
                advice: tracked,
            },
        );
    }

    /// The class's p95 before the advice was applied and since, seconds.
    fn p95s(t: &Tracked, now: Option<&HistogramData>) -> (Option<f64>, Option<f64>) {
        let Some(before) = &t.before else {
            return (None, None);
        };
        let after = now.map(|h| {
            let mut d = h.clone();
            for (a, b) in d.counts.iter_mut().zip(&before.counts) {
                *a = a.saturating_sub(*b);
            }
            d.count = d.count.saturating_sub(before.count);
            d
        });
        (
            bucket_quantile(0.95, &before.cumulative()),
            after
                .filter(|d| d.count > 0)
                .and_then(|d| bucket_quantile(0.95, &d.cumulative())),
        )
    }

    /// The families of plans and advice.
    pub(super) fn export(&self, target: &str, digest: &Digest, out: &mut Families) {
        for (outcome, n) in &self.received {
            out.counter(
                &catalog::EXPLAINS,
                &[("target", target), ("outcome", outcome)],
                *n as f64,
            );
        }
        for ((db, id), c) in &self.classes {
            let l = [
                ("target", target),
                ("db", db.as_str()),
                ("fingerprint", id.as_str()),
            ];
            if let Some(plan) = &c.shown {
                for kind in ScanKind::ALL {
                    out.gauge(
                        &catalog::PLAN_SCANS,
                        &with_labels(&l, &[("scan", kind.as_str())]),
                        plan.count(kind) as f64,
                    );
                }
                out.gauge(&catalog::PLAN_ESTIMATED_ROWS, &l, plan.estimated_rows);
                if let Some(seq) = plan
                    .scans
                    .iter()
                    .filter(|s| s.kind == ScanKind::Seq)
                    .max_by(|a, b| a.estimated_rows.total_cmp(&b.estimated_rows))
                {
                    out.gauge(
                        &catalog::PLAN_SEQ_SCAN,
                        &with_labels(&l, &[("table", seq.table.as_str())]),
                        seq.estimated_rows,
                    );
                }
                out.gauge(&catalog::PLAN_TIMESTAMP, &l, c.outcome.at_unix);
            }
            let Some(t) = &c.advice else {
                continue;
            };
            let columns = t.advice.columns.join(",");
            out.gauge(
                &catalog::INDEX_ADVICE,
                &with_labels(
                    &l,
                    &[
                        ("table", t.advice.table.as_str()),
                        ("columns", columns.as_str()),
                        ("state", t.advice.state.as_str()),
                    ],
                ),
                1.0,
            );
            out.gauge(
                &catalog::INDEX_ADVICE_TABLE_ROWS,
                &with_labels(&l, &[("table", t.advice.table.as_str())]),
                t.advice.facts.rows,
            );
            let (before, after) = Self::p95s(t, digest.class_histogram(db, id));
            for (period, v) in [("before", before), ("after", after)] {
                if let Some(v) = v {
                    out.gauge(
                        &catalog::INDEX_ADVICE_P95,
                        &with_labels(&l, &[("period", period)]),
                        v,
                    );
                }
            }
        }
    }

    /// Adds `plan` (and `advice`) to each class of the `/api/slow-queries`
    /// list that has one, or `plan_skipped` with why it is not planned.
    pub(super) fn annotate(&self, digest: &Digest, classes: &mut Value) {
        let Value::Array(items) = classes else {
            return;
        };
        for item in items {
            let (Some(db), Some(id)) = (item["db"].as_str(), item["fingerprint"].as_str()) else {
                continue;
            };
            let key = (db.to_owned(), id.to_owned());
            let (db, id) = (key.0.as_str(), key.1.as_str());
            let Value::Object(map) = item else {
                continue;
            };
            if let Some(why) = self.skipped.get(&key) {
                map.insert("plan_skipped".into(), json!(why.as_str()));
            }
            let Some(c) = self.classes.get(&key) else {
                continue;
            };
            map.insert(
                "plan".into(),
                json!({
                    "explained_at": c.outcome.at_unix,
                    "explainer": c.outcome.explainer,
                    "error": c.error,
                    "scans": c.shown.as_ref().map(|p| &p.scans),
                    "estimated_rows": c.shown.as_ref().map(|p| p.estimated_rows),
                    "total_cost": c.shown.as_ref().and_then(|p| p.total_cost),
                    "full": c.shown.as_ref().and_then(|p| p.full.as_ref()),
                }),
            );
            if let Some(t) = &c.advice {
                let (before, after) = Self::p95s(t, digest.class_histogram(db, id));
                let mut advice = serde_json::to_value(&t.advice).unwrap_or(Value::Null);
                if let Value::Object(a) = &mut advice {
                    a.insert("p95_before_seconds".into(), json!(before));
                    a.insert("p95_after_seconds".into(), json!(after));
                }
                map.insert("advice".into(), advice);
            }
        }
    }
}
