//! SLOWLOG GET: parsing the reply (pure) and counting each entry once.
//!
//! Redis keeps the newest N entries, each with an id that grows for the
//! server's lifetime. Polls fetch the newest entries and count only ids above
//! the highest seen, so overlapping fetches never double count. The first poll
//! after perfwatch starts only sets the baseline: entries written before we
//! watched are history, not news. After a server restart (new `run_id`) ids
//! start again at 0 and every entry is new.

use std::collections::BTreeMap;

use redis::Value;

use crate::exposition::{Families, HistogramData};

/// One slowlog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowlogEntry {
    /// Unique, increasing id.
    pub id: i64,
    /// Unix time the command ran.
    pub timestamp: i64,
    /// Execution time in microseconds.
    pub duration_us: i64,
    /// The command name, lowercased (first argument).
    pub command: String,
}

/// Parses a SLOWLOG GET reply; malformed entries are skipped and counted.
pub fn parse_slowlog(reply: &Value) -> (Vec<SlowlogEntry>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    let Value::Array(items) = reply else {
        return (out, usize::from(!matches!(reply, Value::Nil)));
    };
    for item in items {
        match parse_entry(item) {
            Some(e) => out.push(e),
            None => bad += 1,
        }
    }
    (out, bad)
}

fn parse_entry(item: &Value) -> Option<SlowlogEntry> {
    let Value::Array(fields) = item else {
        return None;
    };
    let int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        _ => None,
    };
    let id = int(fields.first()?)?;
    let timestamp = int(fields.get(1)?)?;
    let duration_us = int(fields.get(2)?)?;
    let command = match fields.get(3)? {
        Value::Array(args) => match args.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).to_ascii_lowercase(),
            Some(Value::SimpleString(s)) => s.to_ascii_lowercase(),
            _ => String::new(),
        },
        _ => return None,
    };
    Some(SlowlogEntry {
        id,
        timestamp,
        duration_us,
        command,
    })
}

/// Buckets of the slowlog duration histogram (seconds): Redis' default
/// threshold is 10 ms, anything above a second is an outage.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Most distinct command labels; others are counted as `other`. Redis has a
/// fixed command set, but modules and renamed commands make it open-ended.
pub const MAX_COMMANDS: usize = 64;

/// Counts slowlog entries across polls.
#[derive(Debug, Default)]
pub struct SlowlogTracker {
    last_id: Option<i64>,
    epoch: Option<String>,
    per_command: BTreeMap<String, HistogramData>,
    /// Highest id seen, for `redis_slowlog_last_id`.
    pub last_seen_id: i64,
}

impl SlowlogTracker {
    /// Feeds one poll's entries; returns how many were new.
    pub fn observe(&mut self, epoch: &str, entries: &[SlowlogEntry]) -> usize {
        let max_id = entries.iter().map(|e| e.id).max();
        let restarted = self.epoch.as_deref().is_some_and(|e| e != epoch);
        let baseline = self.epoch.is_none();
        self.epoch = Some(epoch.to_owned());
        if baseline {
            self.last_id = max_id;
            self.last_seen_id = max_id.unwrap_or(0);
            return 0;
        }
        if restarted {
            self.last_id = None;
        }
        let mut new = 0;
        for e in entries {
            if self.last_id.is_some_and(|last| e.id <= last) {
                continue;
            }
            new += 1;
            let label = if self.per_command.contains_key(&e.command)
                || self.per_command.len() < MAX_COMMANDS
            {
                e.command.clone()
            } else {
                "other".to_owned()
            };
            self.per_command
                .entry(label)
                .or_insert_with(|| HistogramData::new(&DURATION_BUCKETS))
                .observe(e.duration_us as f64 / 1e6);
        }
        if let Some(m) = max_id {
            self.last_id = Some(self.last_id.map_or(m, |l| l.max(m)));
            self.last_seen_id = m;
        }
        new
    }

    /// Exports the per-command counters and histograms.
    pub fn export(&self, out: &mut Families, target: &str) {
        for (cmd, h) in &self.per_command {
            out.histogram(
                &super::catalog::SLOWLOG_DURATION_SECONDS,
                &[("target", target), ("cmd", cmd)],
                h,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, us: i64, cmd: &str) -> Value {
        Value::Array(vec![
            Value::Int(id),
            Value::Int(1_700_000_000),
            Value::Int(us),
            Value::Array(vec![
                Value::BulkString(cmd.as_bytes().to_vec()),
                Value::BulkString(b"k".to_vec()),
            ]),
            Value::BulkString(b"127.0.0.1:5000".to_vec()),
            Value::BulkString(b"".to_vec()),
        ])
    }

    #[test]
    fn parse_table() {
        let cases: Vec<(Value, usize, usize)> = vec![
            (Value::Nil, 0, 0),
            (Value::Array(vec![]), 0, 0),
            (
                Value::Array(vec![entry(3, 15000, "KEYS"), entry(2, 20, "get")]),
                2,
                0,
            ),
            // Redis < 4 had no client fields: still parsed
            (
                Value::Array(vec![Value::Array(vec![
                    Value::Int(1),
                    Value::Int(1),
                    Value::Int(5),
                    Value::Array(vec![Value::BulkString(b"SET".to_vec())]),
                ])]),
                1,
                0,
            ),
            (Value::Array(vec![Value::Int(1), entry(1, 1, "get")]), 1, 1),
            (Value::Okay, 0, 1),
        ];
        for (reply, n, bad) in cases {
            let (entries, malformed) = parse_slowlog(&reply);
            assert_eq!((entries.len(), malformed), (n, bad), "{reply:?}");
        }
        let (e, _) = parse_slowlog(&Value::Array(vec![entry(3, 15000, "KEYS")]));
        assert_eq!(
            e[0],
            SlowlogEntry {
                id: 3,
                timestamp: 1_700_000_000,
                duration_us: 15000,
                command: "keys".into()
            }
        );
    }

    #[test]
    fn counts_each_entry_once() {
        let mk = |ids: &[i64]| -> Vec<SlowlogEntry> {
            ids.iter()
                .map(|&id| SlowlogEntry {
                    id,
                    timestamp: 0,
                    duration_us: 20_000,
                    command: "get".into(),
                })
                .collect()
        };
        let mut t = SlowlogTracker::default();
        assert_eq!(
            t.observe("r1", &mk(&[2, 1, 0])),
            0,
            "first poll is the baseline"
        );
        assert_eq!(t.observe("r1", &mk(&[4, 3, 2, 1])), 2);
        assert_eq!(t.observe("r1", &mk(&[4, 3])), 0, "overlap not recounted");
        assert_eq!(t.observe("r2", &mk(&[1, 0])), 2, "restart: all new");
        assert_eq!(t.observe("r2", &mk(&[2, 1, 0])), 1);
        let h = &t.per_command["get"];
        assert_eq!(h.count, 5);
    }

    #[test]
    fn command_labels_are_capped() {
        let mut t = SlowlogTracker::default();
        t.observe("r", &[]);
        let entries: Vec<_> = (0..200)
            .map(|i| SlowlogEntry {
                id: i,
                timestamp: 0,
                duration_us: 1,
                command: format!("cmd{i}"),
            })
            .collect();
        t.observe("r", &entries);
        assert_eq!(t.per_command.len(), MAX_COMMANDS + 1);
        assert_eq!(t.per_command["other"].count, 200 - MAX_COMMANDS as u64);
    }
}
