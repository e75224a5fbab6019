//! Top-N + `other` for the INFO lines that become one series each (pure).
//!
//! A server decides how many commandstats, errorstats and keyspace lines its
//! INFO has: modules and renamed commands add commands, every distinct error
//! prefix a client provokes adds an errorstat line, `databases` can be large.
//! Each line is one or more series, so the collector keeps the heaviest N
//! per family by name and sums the rest into one row labelled
//! [`OTHER`]: counters stay exact in total, the series count stays bounded.
//! (latencystats lines are not exported, so they need no bound here; their
//! bytes count against `max_reply_bytes` like everything else.)

use super::info::{CommandStat, KeyspaceLine};
use super::keys::OTHER;

/// How many lines of each family keep a label of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeriesLimits {
    /// Commands (`cmd`), by calls + rejected calls.
    pub commands: usize,
    /// Error codes (`err`), by count.
    pub error_codes: usize,
    /// Databases (`db`), by keys.
    pub dbs: usize,
}

/// Splits `items` into the `n` heaviest by `weight` and the rest, both in
/// their original order (ties go to the earlier item, so the cut is stable
/// from poll to poll). An item whose own label is `other` always goes to
/// the rest: the label stays unique.
fn split_top<T>(
    items: &[T],
    n: usize,
    weight: impl Fn(&T) -> u64,
    is_other: impl Fn(&T) -> bool,
) -> (Vec<&T>, Vec<&T>) {
    let mut order: Vec<usize> = (0..items.len()).filter(|&i| !is_other(&items[i])).collect();
    // Stable: equal weights keep reply order.
    order.sort_by_key(|&i| std::cmp::Reverse(weight(&items[i])));
    let mut keep = vec![false; items.len()];
    for &i in order.iter().take(n) {
        keep[i] = true;
    }
    let (mut kept, mut rest) = (Vec::new(), Vec::new());
    for (item, k) in items.iter().zip(keep) {
        if k {
            kept.push(item);
        } else {
            rest.push(item);
        }
    }
    (kept, rest)
}

/// `a + b` where a missing value counts as nothing, and the sum is missing
/// only when both are (a server too old for the field).
fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        _ => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

/// The `n` busiest commands, then one `other` row summing the rest.
pub(crate) fn top_commands(stats: &[CommandStat], n: usize) -> Vec<CommandStat> {
    let (kept, rest) = split_top(
        stats,
        n,
        |c| c.calls.saturating_add(c.rejected_calls.unwrap_or(0)),
        |c| c.cmd == OTHER,
    );
    let mut out: Vec<CommandStat> = kept.into_iter().cloned().collect();
    if !rest.is_empty() {
        out.push(rest.iter().fold(
            CommandStat {
                cmd: OTHER.to_owned(),
                calls: 0,
                usec: 0,
                rejected_calls: None,
                failed_calls: None,
            },
            |acc, c| CommandStat {
                calls: acc.calls.saturating_add(c.calls),
                usec: acc.usec.saturating_add(c.usec),
                rejected_calls: add_opt(acc.rejected_calls, c.rejected_calls),
                failed_calls: add_opt(acc.failed_calls, c.failed_calls),
                ..acc
            },
        ));
    }
    out
}

/// The `n` most frequent error codes, then one `other` row summing the rest.
pub(crate) fn top_error_codes(errors: &[(String, u64)], n: usize) -> Vec<(String, u64)> {
    let (kept, rest) = split_top(errors, n, |e| e.1, |e| e.0 == OTHER);
    let mut out: Vec<(String, u64)> = kept.into_iter().cloned().collect();
    if !rest.is_empty() {
        let sum = rest.iter().fold(0u64, |acc, e| acc.saturating_add(e.1));
        out.push((OTHER.to_owned(), sum));
    }
    out
}

/// One exported keyspace row: a database or the `other` databases together.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DbRow {
    /// `db<N>` or `other`.
    pub label: String,
    /// Keys.
    pub keys: u64,
    /// Keys with a TTL.
    pub expires: u64,
    /// Mean remaining TTL of keys with one, in milliseconds; for `other`,
    /// the mean over the folded databases weighted by their keys with a
    /// TTL. None when no database reports it.
    pub avg_ttl_ms: Option<f64>,
}

/// The `n` largest databases, then one `other` row summing the rest.
pub(crate) fn top_dbs(dbs: &[KeyspaceLine], n: usize) -> Vec<DbRow> {
    // `db` + digits never reads `other`.
    let (kept, rest) = split_top(dbs, n, |d| d.keys, |_| false);
    let mut out: Vec<DbRow> = kept
        .into_iter()
        .map(|d| DbRow {
            label: format!("db{}", d.db),
            keys: d.keys,
            expires: d.expires,
            avg_ttl_ms: d.avg_ttl_ms.map(|t| t as f64),
        })
        .collect();
    if !rest.is_empty() {
        let (mut keys, mut expires) = (0u64, 0u64);
        let (mut ttl_weighted, mut ttl_weight, mut any_ttl) = (0f64, 0f64, false);
        for d in &rest {
            keys = keys.saturating_add(d.keys);
            expires = expires.saturating_add(d.expires);
            if let Some(t) = d.avg_ttl_ms {
                any_ttl = true;
                ttl_weighted += t as f64 * d.expires as f64;
                ttl_weight += d.expires as f64;
            }
        }
        let avg_ttl_ms = any_ttl.then(|| {
            if ttl_weight > 0.0 {
                ttl_weighted / ttl_weight
            } else {
                0.0
            }
        });
        out.push(DbRow {
            label: OTHER.to_owned(),
            keys,
            expires,
            avg_ttl_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(name: &str, calls: u64, rejected: Option<u64>, failed: Option<u64>) -> CommandStat {
        CommandStat {
            cmd: name.to_owned(),
            calls,
            usec: calls * 10,
            rejected_calls: rejected,
            failed_calls: failed,
        }
    }

    fn names(rows: &[CommandStat]) -> Vec<&str> {
        rows.iter().map(|c| c.cmd.as_str()).collect()
    }

    #[test]
    fn at_or_under_the_limit_nothing_is_folded() {
        let stats = vec![cmd("get", 5, None, None), cmd("set", 1, None, None)];
        assert_eq!(top_commands(&stats, 2), stats);
        assert_eq!(top_commands(&[], 2), vec![]);
    }

    #[test]
    fn commands_keep_the_busiest_in_reply_order_and_sum_the_rest() {
        let stats = vec![
            cmd("a", 1, Some(0), Some(0)),
            cmd("b", 9, Some(0), Some(2)),
            cmd("c", 3, None, None),
            // Refused calls are not in `calls`: 0 + 8 still makes d busy.
            cmd("d", 0, Some(8), Some(0)),
            cmd("e", 3, Some(1), Some(1)),
        ];
        let top = top_commands(&stats, 2);
        assert_eq!(names(&top), vec!["b", "d", "other"]);
        let other = &top[2];
        assert_eq!(other.calls, 1 + 3 + 3);
        assert_eq!(other.usec, 70);
        assert_eq!(other.rejected_calls, Some(1));
        assert_eq!(other.failed_calls, Some(1));
    }

    #[test]
    fn ties_go_to_the_earlier_line() {
        let stats = vec![
            cmd("x", 2, None, None),
            cmd("y", 2, None, None),
            cmd("z", 2, None, None),
        ];
        assert_eq!(names(&top_commands(&stats, 2)), vec!["x", "y", "other"]);
    }

    #[test]
    fn a_command_named_other_is_folded_so_the_label_stays_unique() {
        let stats = vec![cmd("other", 100, None, None), cmd("get", 1, None, None)];
        let top = top_commands(&stats, 5);
        assert_eq!(names(&top), vec!["get", "other"]);
        assert_eq!(top[1].calls, 100);
    }

    #[test]
    fn old_servers_without_rejected_and_failed_stay_without() {
        let stats = vec![cmd("a", 1, None, None), cmd("b", 2, None, None)];
        let top = top_commands(&stats, 1);
        assert_eq!(top[1].rejected_calls, None);
        assert_eq!(top[1].failed_calls, None);
    }

    #[test]
    fn error_codes_keep_the_most_frequent() {
        let errors: Vec<(String, u64)> = [("ERR", 5), ("OOM", 50), ("WRONGTYPE", 1), ("NOPERM", 7)]
            .iter()
            .map(|(c, n)| (c.to_string(), *n))
            .collect();
        let top = top_error_codes(&errors, 2);
        assert_eq!(
            top,
            vec![
                ("OOM".into(), 50),
                ("NOPERM".into(), 7),
                ("other".into(), 6)
            ]
        );
        assert_eq!(top_error_codes(&errors, 4), errors);
    }

    fn db(db: u32, keys: u64, expires: u64, avg_ttl_ms: Option<u64>) -> KeyspaceLine {
        KeyspaceLine {
            db,
            keys,
            expires,
            avg_ttl_ms,
            subexpiry: None,
        }
    }

    #[test]
    fn dbs_keep_the_largest_and_weigh_the_folded_ttl_by_expiring_keys() {
        let dbs = vec![
            db(0, 100, 10, Some(1000)),
            db(1, 5, 1, Some(4000)),
            db(2, 7, 3, Some(2000)),
            db(3, 1, 0, Some(0)),
        ];
        let top = top_dbs(&dbs, 1);
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].label, "db0");
        assert_eq!(top[0].avg_ttl_ms, Some(1000.0));
        let other = &top[1];
        assert_eq!(other.label, "other");
        assert_eq!((other.keys, other.expires), (13, 4));
        // (4000·1 + 2000·3 + 0·0) / 4
        assert_eq!(other.avg_ttl_ms, Some(2500.0));
    }

    #[test]
    fn folded_dbs_without_avg_ttl_or_expiring_keys() {
        let none = top_dbs(&[db(0, 9, 0, None), db(1, 1, 0, None)], 1);
        assert_eq!(none[1].avg_ttl_ms, None);
        let zero = top_dbs(&[db(0, 9, 0, Some(0)), db(1, 1, 0, Some(0))], 1);
        assert_eq!(zero[1].avg_ttl_ms, Some(0.0));
    }
}
