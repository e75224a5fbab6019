//! Custom SQL metrics (`[[postgres.query]]`, `[[mysql.query]]`): the business
//! counts the phase triggers read ("trips > 2,000"), shared by every SQL
//! collector. Each query has its own interval and timeout; its errors are
//! counted per query and never fail the rest of the target.
//!
//! The SQL collectors run the statement and hand rows over as [`QueryRow`]s;
//! this module decides when a query is due, keeps the last good result
//! (re-exported on every poll until the next run), and exports the families.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::exposition::Families;

crate::metric_catalog! {
    /// The custom-query families, filled by every SQL collector (postgres,
    /// mysql), so declared here rather than in one kind's catalog.
    pub const CATALOG;
    /// The one family whose label set the user chooses: besides `target` and
    /// `query`, a `column` label (with several value columns) and one label
    /// per configured label column. Exported with `gauge_named` for that
    /// reason; declared here for its name and HELP.
    VALUE = Gauge(
        "perfwatch_custom_query_value",
        ["target", "query"],
        "Value of a configured custom SQL query ([[postgres.query]] / [[mysql.query]])."
    );
    ERRORS = Counter(
        "perfwatch_custom_query_errors_total",
        ["target", "query"],
        "Runs of a custom query that failed (the target's other metrics are unaffected)."
    );
    TRUNCATED_ROWS = Counter(
        "perfwatch_custom_query_truncated_rows_total",
        ["target", "query"],
        "Rows dropped because a custom query returned more than max_rows."
    );
    DURATION = Gauge(
        "perfwatch_custom_query_duration_seconds",
        ["target", "query"],
        "How long the last run of a custom query took."
    );
    LAST_SUCCESS = Gauge(
        "perfwatch_custom_query_last_success_timestamp_seconds",
        ["target", "query"],
        "When a custom query last succeeded."
    );
}

/// One `[[<kind>.query]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomQueryConfig {
    /// The `query` label; unique within the target.
    pub name: String,
    /// The statement. Read-only by intent: perfwatch runs it as given.
    pub sql: String,
    /// How often to run it (default: the target's interval).
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Statement timeout (default: the target's timeout).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Columns whose values become labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Numeric columns exported as values (default `["value"]`); with more
    /// than one, each sample gets a `column` label.
    #[serde(default = "default_values")]
    pub values: Vec<String>,
    /// Most rows kept; the rest are dropped and counted.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
}

fn default_values() -> Vec<String> {
    vec!["value".into()]
}
fn default_max_rows() -> usize {
    100
}

impl CustomQueryConfig {
    /// Cross-field checks, `(key, message)`, keys relative to the query table.
    pub(crate) fn validate(&self) -> Vec<(String, String)> {
        let mut e = Vec::new();
        if self.name.is_empty() {
            e.push(("name".into(), "name must not be empty".into()));
        }
        if self.sql.trim().is_empty() {
            e.push(("sql".into(), "sql must not be empty".into()));
        }
        if self.values.is_empty() {
            e.push((
                "values".into(),
                "values must name at least one column".into(),
            ));
        }
        if let Some(c) = self.labels.iter().find(|c| self.values.contains(c)) {
            e.push((
                "labels".into(),
                format!("column \"{c}\" is both a label and a value"),
            ));
        }
        if self.max_rows == 0 {
            e.push((
                "max_rows".into(),
                "max_rows must be at least 1, got 0".into(),
            ));
        }
        e
    }
}

/// Checks a list of queries: each on its own, plus unique names.
pub(crate) fn validate_queries(queries: &[CustomQueryConfig]) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, q) in queries.iter().enumerate() {
        for (k, m) in q.validate() {
            errors.push((format!("query[{i}].{k}"), m));
        }
        if !seen.insert(q.name.as_str()) {
            errors.push((
                format!("query[{i}].name"),
                format!("duplicate query name \"{}\"", q.name),
            ));
        }
    }
    errors
}

/// One result row, already split into label and value columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryRow {
    /// `(column, value)` for each label column.
    pub labels: Vec<(String, String)>,
    /// `(column, value)` for each value column.
    pub values: Vec<(String, f64)>,
}

#[derive(Debug, Default)]
struct QueryState {
    last_run: Option<Instant>,
    rows: Vec<QueryRow>,
    last_duration: f64,
    last_success_unix: Option<f64>,
    errors: u64,
    truncated_rows: u64,
}

/// Per-target state of all custom queries.
#[derive(Debug, Default)]
pub(crate) struct CustomQueries {
    states: BTreeMap<String, QueryState>,
}

impl CustomQueries {
    /// Whether `q` should run now, given the target's default interval.
    pub(crate) fn due(
        &self,
        q: &CustomQueryConfig,
        default_interval: Duration,
        now: Instant,
    ) -> bool {
        let interval = q.interval.unwrap_or(default_interval);
        match self.states.get(&q.name).and_then(|s| s.last_run) {
            // A little slack so a query with the target's own interval runs on
            // every poll despite jitter in poll start times.
            Some(last) => now.duration_since(last) + Duration::from_millis(50) >= interval,
            None => true,
        }
    }

    /// Records a successful run.
    pub(crate) fn record_rows(
        &mut self,
        q: &CustomQueryConfig,
        mut rows: Vec<QueryRow>,
        took: Duration,
    ) {
        let s = self.states.entry(q.name.clone()).or_default();
        s.last_run = Some(Instant::now());
        if rows.len() > q.max_rows {
            s.truncated_rows += (rows.len() - q.max_rows) as u64;
            rows.truncate(q.max_rows);
        }
        s.rows = rows;
        s.last_duration = took.as_secs_f64();
        s.last_success_unix = Some(crate::poll::unix_now());
    }

    /// Records a failed run (the previous rows are dropped: a failing query
    /// must not keep serving an old count).
    pub(crate) fn record_error(&mut self, q: &CustomQueryConfig, took: Duration) {
        let s = self.states.entry(q.name.clone()).or_default();
        s.last_run = Some(Instant::now());
        s.rows.clear();
        s.last_duration = took.as_secs_f64();
        s.errors += 1;
    }

    /// Forgets queries no longer configured.
    pub(crate) fn retain(&mut self, queries: &[CustomQueryConfig]) {
        self.states
            .retain(|name, _| queries.iter().any(|q| &q.name == name));
    }

    /// Exports every configured query's families.
    pub(crate) fn export(&self, queries: &[CustomQueryConfig], target: &str, out: &mut Families) {
        for q in queries {
            let Some(s) = self.states.get(&q.name) else {
                continue;
            };
            let base = [("target", target), ("query", q.name.as_str())];
            for row in &s.rows {
                for (column, v) in &row.values {
                    let mut labels: Vec<(&str, &str)> = base.to_vec();
                    if q.values.len() > 1 {
                        labels.push(("column", column));
                    }
                    labels.extend(row.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    out.gauge_named(VALUE.name, VALUE.help, &labels, *v);
                }
            }
            out.counter(&ERRORS, &base, s.errors as f64);
            out.counter(&TRUNCATED_ROWS, &base, s.truncated_rows as f64);
            out.gauge(&DURATION, &base, s.last_duration);
            if let Some(t) = s.last_success_unix {
                out.gauge(&LAST_SUCCESS, &base, t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> CustomQueryConfig {
        CustomQueryConfig {
            name: name.into(),
            sql: "select 1 as value".into(),
            interval: Some(Duration::from_secs(60)),
            timeout: None,
            labels: vec![],
            values: default_values(),
            max_rows: 2,
        }
    }

    #[test]
    fn validation_table() {
        let mut both = q("x");
        both.labels = vec!["value".into()];
        let mut empty = q("");
        empty.sql = " ".into();
        let cases: Vec<(Vec<CustomQueryConfig>, Vec<&str>)> = vec![
            (vec![q("a"), q("b")], vec![]),
            (vec![q("a"), q("a")], vec!["query[1].name"]),
            (vec![both], vec!["query[0].labels"]),
            (vec![empty], vec!["query[0].name", "query[0].sql"]),
        ];
        for (queries, want) in cases {
            let got: Vec<String> = validate_queries(&queries)
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn due_rows_errors_and_truncation() {
        let query = q("trips_total");
        let mut s = CustomQueries::default();
        let now = Instant::now();
        assert!(s.due(&query, Duration::from_secs(15), now));
        let row = |v: f64| QueryRow {
            labels: vec![],
            values: vec![("value".into(), v)],
        };
        s.record_rows(
            &query,
            vec![row(2001.0), row(1.0), row(2.0)],
            Duration::from_millis(3),
        );
        assert!(!s.due(&query, Duration::from_secs(15), Instant::now()));
        let mut f = Families::new();
        s.export(std::slice::from_ref(&query), "db", &mut f);
        let fams = f.into_vec();
        let v = crate::exposition::sample_value(
            &fams,
            "perfwatch_custom_query_value",
            &[("query", "trips_total")],
        );
        assert_eq!(v, Some(2001.0));
        let t = crate::exposition::sample_value(
            &fams,
            "perfwatch_custom_query_truncated_rows_total",
            &[],
        );
        assert_eq!(t, Some(1.0));
        s.record_error(&query, Duration::from_millis(1));
        let mut f = Families::new();
        s.export(&[query], "db", &mut f);
        let fams = f.into_vec();
        assert_eq!(
            crate::exposition::sample_value(&fams, "perfwatch_custom_query_value", &[]),
            None
        );
        assert_eq!(
            crate::exposition::sample_value(&fams, "perfwatch_custom_query_errors_total", &[]),
            Some(1.0)
        );
    }
}
