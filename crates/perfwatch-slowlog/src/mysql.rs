//! The MySQL / MariaDB / Percona slow-query log, parsed line by line (pure).
//!
//! An event is a run of `# Key: value` header lines, optional `use db;` and
//! `SET timestamp=N;`, then the statement (possibly many lines). There is no
//! terminator: an event ends when the next one's header starts (`# Time:`,
//! `# User@Host:` or `# Query_time:` after statement text), or when the
//! caller flushes (end of input, idle timeout). The server's start-up header
//! block (written again on every `FLUSH SLOW LOGS`) may appear mid-file.

use crate::diagnose::Unrecognized;
use crate::event::{EventBuffers, SlowEvent, refill};
use crate::statement::Statement;

/// Streaming parser state.
#[derive(Debug)]
pub struct MysqlParser {
    /// `use db;` is written only when the db changes, so it carries forward.
    db: Option<String>,
    current: Option<Partial>,
    /// Most bytes of statement text kept per event.
    max_query_bytes: usize,
    /// The last line went into the statement: the pieces of its rest
    /// ([`MysqlParser::more`]) do too.
    in_statement: bool,
    /// The buffers of the last event handed back ([`MysqlParser::recycle`]),
    /// for the next event's statement, user and database.
    spare: EventBuffers,
    /// Lines that were neither an event's nor the server's header
    /// (text before the first event).
    pub unrecognized: Unrecognized,
}

#[derive(Debug)]
struct Partial {
    user: Option<String>,
    schema: Option<String>,
    query_time: Option<f64>,
    lock_time: f64,
    rows_sent: u64,
    rows_examined: u64,
    full_scan: bool,
    rate_limit: u32,
    query: Statement,
    /// A line of the statement was taken.
    has_text: bool,
}

impl Partial {
    fn new(cap: usize, query: String) -> Self {
        Self {
            user: None,
            schema: None,
            query_time: None,
            lock_time: 0.0,
            rows_sent: 0,
            rows_examined: 0,
            full_scan: false,
            rate_limit: 0,
            query: Statement::in_buffer(cap, query),
            has_text: false,
        }
    }

    fn has_stats(&self) -> bool {
        self.query_time.is_some()
    }
}

impl MysqlParser {
    /// A parser keeping at most `max_query_bytes` of each statement.
    pub fn new(max_query_bytes: usize) -> Self {
        Self {
            db: None,
            current: None,
            max_query_bytes,
            in_statement: false,
            spare: EventBuffers::default(),
            unrecognized: Unrecognized::default(),
        }
    }

    /// Takes back an event once it was digested: the next event's statement
    /// is written into its query buffer.
    pub fn recycle(&mut self, e: SlowEvent) {
        self.spare.take_back(e);
    }

    /// Feeds the next piece of the last line (a line longer than the
    /// tailer's `max_line`).
    pub fn more(&mut self, piece: &str) {
        if self.in_statement
            && let Some(cur) = &mut self.current
        {
            cur.query.push(piece);
        }
    }

    /// Feeds one line (without its newline); returns an event completed by it.
    pub fn line(&mut self, line: &str) -> Option<SlowEvent> {
        self.in_statement = false;
        let line = line.strip_suffix('\r').unwrap_or(line);
        // `# administrator command: Quit;` is the statement of its event.
        let admin = line.starts_with("# administrator command:");
        if !admin && line == "#" {
            return None;
        }
        if !admin && let Some(rest) = line.strip_prefix("# ") {
            return self.header(rest);
        }
        if is_server_header(line) {
            // A (re)opened log: whatever came before is complete.
            return self.flush();
        }
        let Some(cur) = &mut self.current else {
            // Text before any event header: not a slow log (or the middle
            // of an event cut off by where reading started).
            self.unrecognized.note(line);
            return None;
        };
        if !cur.has_text {
            // pt-query-digest: `^use ([^;]+)` (lower case, as the server
            // writes it) is the db; `USE db;` typed by a client is the
            // statement (class `use ?`).
            if let Some(db) = line.strip_prefix("use ")
                && line.trim_end().ends_with(';')
            {
                let db = db.trim_end().trim_end_matches(';').trim().trim_matches('`');
                self.db = Some(db.to_owned());
                return None;
            }
            if line.starts_with("SET timestamp=")
                || line.starts_with("SET last_insert_id=")
                || line.starts_with("SET insert_id=")
            {
                return None;
            }
            if line.trim().is_empty() {
                return None;
            }
        }
        if cur.has_text {
            cur.query.push("\n");
        }
        cur.has_text = true;
        cur.query.push(line);
        self.in_statement = true;
        None
    }

    fn header(&mut self, rest: &str) -> Option<SlowEvent> {
        let starts_event = rest.starts_with("Time:")
            || rest.starts_with("User@Host:")
            || rest.starts_with("Query_time:");
        let mut done = None;
        if starts_event && let Some(cur) = &self.current {
            let new_event = cur.has_text
                || (rest.starts_with("Query_time:") && cur.has_stats())
                || (rest.starts_with("User@Host:") && (cur.has_stats() || cur.user.is_some()))
                || (rest.starts_with("Time:") && (cur.has_stats() || cur.user.is_some()));
            if new_event {
                done = self.flush();
            }
        }
        let cap = self.max_query_bytes;
        let cur = self
            .current
            .get_or_insert_with(|| Partial::new(cap, std::mem::take(&mut self.spare.query)));
        if let Some(uh) = rest.strip_prefix("User@Host:") {
            // `root[root] @ localhost [127.0.0.1]  Id: 3` → the user in brackets.
            let user = uh
                .trim()
                .split('[')
                .nth(1)
                .and_then(|s| s.split(']').next());
            cur.user = user
                .or_else(|| uh.split_whitespace().next())
                .map(|u| refill(&mut self.spare.user, u));
            return done;
        }
        if rest.starts_with("Time:") || rest.starts_with("explain:") {
            return done;
        }
        // Generic `Key: value  Key2: value2` pairs.
        let mut tokens = rest.split_ascii_whitespace().peekable();
        while let Some(t) = tokens.next() {
            let Some(key) = t.strip_suffix(':') else {
                continue;
            };
            // An empty value (MariaDB `Schema:` with no db) is followed by the next key.
            let value = match tokens.peek() {
                Some(v) if !v.ends_with(':') => tokens.next().unwrap_or(""),
                _ => "",
            };
            match key {
                "Query_time" => cur.query_time = Some(seconds(value)),
                "Lock_time" => cur.lock_time = seconds(value),
                "Rows_sent" => cur.rows_sent = value.parse().unwrap_or(0),
                "Rows_examined" => cur.rows_examined = value.parse().unwrap_or(0),
                "Schema" if !value.is_empty() => {
                    cur.schema = Some(refill(&mut self.spare.db, value));
                }
                "Full_scan" => cur.full_scan = value.eq_ignore_ascii_case("yes"),
                "Log_slow_rate_limit" => cur.rate_limit = value.parse().unwrap_or(1),
                _ => {}
            }
        }
        done
    }

    /// Completes the pending event, if it has timing. An event without
    /// statement text (only `use db;`, or nothing after its header) is
    /// counted as pt-query-digest does: its text is empty (class id of the
    /// empty fingerprint; pt shows `/* No query */`).
    pub fn flush(&mut self) -> Option<SlowEvent> {
        self.in_statement = false;
        let cur = self.current.take()?;
        let query_time = cur.query_time?;
        let (mut query, truncated) = cur.query.finish();
        while query.ends_with(';') || query.ends_with('\n') {
            query.pop();
        }
        let db = cur
            .schema
            .or_else(|| Some(refill(&mut self.spare.db, self.db.as_deref()?)));
        Some(SlowEvent {
            db,
            user: cur.user,
            duration: query_time,
            lock_time: cur.lock_time,
            rows_sent: cur.rows_sent,
            rows_examined: cur.rows_examined,
            full_scan: cur.full_scan,
            sample_rate: cur.rate_limit.max(1),
            query,
            truncated,
        })
    }

    /// Whether lines of an unfinished event are held.
    pub fn has_partial(&self) -> bool {
        self.current.is_some()
    }

    /// The carried-forward database (persisted across restarts).
    pub fn db(&self) -> Option<&str> {
        self.db.as_deref()
    }

    /// Restores the carried-forward database.
    pub fn set_db(&mut self, db: String) {
        self.db = Some(db);
    }

    /// Whether an event is pending (for the idle-flush timer).
    pub fn pending(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.has_stats())
    }
}

/// A time in seconds; anything but a finite non-negative number (`nan`,
/// `inf`, `-1`: f64's parser takes them all) is 0, so one corrupt line
/// cannot poison a class's total.
fn seconds(value: &str) -> f64 {
    crate::decimal::parse_f64(value)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .unwrap_or(0.0)
}

fn is_server_header(line: &str) -> bool {
    // The server writes "started with:" at the end: test that first (this
    // runs for every statement line).
    (line.trim_end().ends_with("started with:") && line.contains(", Version: "))
        || line.starts_with("Tcp port: ")
        // MySQL pads with spaces, MariaDB with tabs.
        || (line.starts_with("Time") && line.contains("Id Command"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of `log`, each handed back to the parser as the digest
    /// does, so that every table also checks that a recycled event's
    /// buffers never show in the next one.
    fn parse(log: &str) -> Vec<SlowEvent> {
        let mut p = MysqlParser::new(1 << 20);
        let mut out = Vec::new();
        for line in log.lines() {
            if let Some(e) = p.line(line) {
                p.recycle(e.clone());
                out.push(e);
            }
        }
        out.extend(p.flush());
        out
    }

    const MYSQL57: &str =
        "/usr/sbin/mysqld, Version: 5.7.44-log (MySQL Community Server (GPL)). started with:
Tcp port: 3306  Unix socket: /var/run/mysqld/mysqld.sock
Time                 Id Command    Argument
# Time: 2016-07-20T18:13:25.698433Z
# User@Host: root[root] @ localhost []  Id:     3
# Query_time: 2.000268  Lock_time: 0.000104 Rows_sent: 1  Rows_examined: 2000
use drive_safe_db;
SET timestamp=1469038405;
SELECT DATE(start_time), COUNT(*)
FROM trip
WHERE driver_id = 7
GROUP BY 1;
# User@Host: app[app] @  [10.0.0.1]  Id:     4
# Query_time: 0.5  Lock_time: 0.0 Rows_sent: 0  Rows_examined: 10
SET timestamp=1469038406;
select 1;
# Time: 2016-07-20T18:13:27.000000Z
# User@Host: root[root] @ localhost []  Id:     3
# Query_time: 0.1  Lock_time: 0.0 Rows_sent: 0  Rows_examined: 0
SET timestamp=1469038407;
# administrator command: Quit;
";

    const MARIADB: &str = "# Time: 240101 12:00:00
# User@Host: root[root] @ localhost []
# Thread_id: 8  Schema: shop  QC_hit: No
# Query_time: 0.012500  Lock_time: 0.000020  Rows_sent: 3  Rows_examined: 50000
# Rows_affected: 0  Bytes_sent: 56
# Full_scan: Yes  Full_join: No  Tmp_table: No  Tmp_table_on_disk: No
# Filesort: No  Filesort_on_disk: No  Merge_passes: 0  Priority_queue: No
#
# explain: id	select_type	table	type
# explain: 1	SIMPLE	t	ALL
#
SET timestamp=1704110400;
select * from t where note like '%x%';
# User@Host: root[root] @ localhost []
# Thread_id: 8  Schema:   QC_hit: No
# Query_time: 1.000000  Lock_time: 0.000000  Rows_sent: 0  Rows_examined: 0
# Rows_affected: 0  Bytes_sent: 0
SET timestamp=1704110401;
select sleep(1);
";

    const PERCONA: &str = "# Time: 130601  8:01:06.058915
# User@Host: root[root] @ localhost []  Id:    42
# Schema: imdb  Last_errno: 0  Killed: 0
# Query_time: 7.725616  Lock_time: 0.000328  Rows_sent: 4  Rows_examined: 1543720  Rows_affected: 0
# Bytes_sent: 272  Tmp_tables: 0  Tmp_disk_tables: 0  Tmp_table_sizes: 0
# InnoDB_trx_id: 1A88583F
# QC_Hit: No  Full_scan: Yes  Full_join: No  Tmp_table: No  Tmp_table_on_disk: No
# Filesort: No  Filesort_on_disk: No  Merge_passes: 0
#   InnoDB_IO_r_ops: 0  InnoDB_IO_r_bytes: 0  InnoDB_IO_r_wait: 0.000000
# Log_slow_rate_type: query  Log_slow_rate_limit: 2
SET timestamp=1370073666;
SELECT id FROM title WHERE title = 'Bambi';
";

    #[test]
    fn mysql57_events() {
        let e = parse(MYSQL57);
        assert_eq!(e.len(), 3, "{e:#?}");
        assert_eq!(e[0].db.as_deref(), Some("drive_safe_db"));
        assert_eq!(e[0].user.as_deref(), Some("root"));
        assert_eq!(e[0].duration, 2.000268);
        assert_eq!(e[0].rows_examined, 2000);
        assert_eq!(
            e[0].query,
            "SELECT DATE(start_time), COUNT(*)\nFROM trip\nWHERE driver_id = 7\nGROUP BY 1"
        );
        assert_eq!(
            e[1].db.as_deref(),
            Some("drive_safe_db"),
            "db carried forward"
        );
        assert_eq!(e[1].user.as_deref(), Some("app"));
        assert_eq!(e[1].query, "select 1");
        assert_eq!(e[2].query, "# administrator command: Quit");
    }

    #[test]
    fn mariadb_extras() {
        let e = parse(MARIADB);
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_eq!(e[0].db.as_deref(), Some("shop"));
        assert!(e[0].full_scan);
        assert_eq!((e[0].rows_sent, e[0].rows_examined), (3, 50000));
        assert_eq!(e[0].query, "select * from t where note like '%x%'");
        assert_eq!(e[1].db, None, "empty Schema: stays unset");
        assert_eq!(e[1].duration, 1.0);
    }

    #[test]
    fn percona_sampling_and_innodb_lines() {
        let e = parse(PERCONA);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].sample_rate, 2);
        assert_eq!(e[0].db.as_deref(), Some("imdb"));
        assert!(e[0].full_scan);
        assert_eq!(e[0].duration, 7.725616);
    }

    #[test]
    fn header_block_mid_file_splits_events() {
        let log = "# Query_time: 1.0  Lock_time: 0 Rows_sent: 0  Rows_examined: 0\nselect 1;\n/usr/sbin/mysqld, Version: 8.0.21 (MySQL Community Server - GPL). started with:\nTcp port: 3306  Unix socket: /tmp/s\nTime                 Id Command    Argument\n# Query_time: 2.0  Lock_time: 0 Rows_sent: 0  Rows_examined: 0\nselect 2;\n";
        let e = parse(log);
        assert_eq!(
            e.iter().map(|e| e.query.as_str()).collect::<Vec<_>>(),
            ["select 1", "select 2"]
        );
    }

    #[test]
    fn events_without_time_or_user_and_integer_times() {
        let log = "# Query_time: 3  Lock_time: 0  Rows_sent: 1  Rows_examined: 1\nselect a;\n# Query_time: 4  Lock_time: 0  Rows_sent: 1  Rows_examined: 1\nselect b;\n";
        let e = parse(log);
        assert_eq!(e.iter().map(|e| e.duration).collect::<Vec<_>>(), [3.0, 4.0]);
    }

    #[test]
    fn long_statements_are_truncated_not_dropped() {
        let mut p = MysqlParser::new(16);
        p.line("# Query_time: 9.5  Lock_time: 0 Rows_sent: 0  Rows_examined: 0");
        p.line("select aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        p.line("from t");
        let e = p.flush().unwrap();
        assert!(e.truncated);
        assert_eq!(e.query.len(), 16);
        assert_eq!(e.duration, 9.5);
    }

    #[test]
    fn text_cap_table() {
        // Found by tests/slowlog_props.rs: (cap, statement lines, text kept,
        // truncated). The joining newline used to go over the cap by one, and
        // a line the tailer had cut at the cap was not reported as cut.
        let cases: [(usize, &[&str], &str, bool); 6] = [
            (8, &["abcd", "efgh"], "abcd\nefg", true),
            (8, &["abc", "efgh"], "abc\nefgh", false),
            (8, &["abcdefg"], "abcdefg", false),
            // A line as long as the cap: the tailer hands out the rest of a
            // longer one (`more`), so this one is whole.
            (8, &["abcdefgh"], "abcdefgh", false),
            (8, &["abcdefgh", "x"], "abcdefgh", true),
            (
                27,
                &["1.5 ms  statement: AaA0aAA", "a0Aa"],
                "1.5 ms  statement: AaA0aAA",
                true,
            ),
        ];
        for (cap, lines, want, truncated) in cases {
            let mut p = MysqlParser::new(cap);
            p.line("# Query_time: 1  Lock_time: 0 Rows_sent: 0  Rows_examined: 0");
            for l in lines {
                p.line(l);
            }
            let e = p.flush().unwrap();
            assert!(e.query.len() <= cap, "{lines:?}");
            assert_eq!(
                (e.query.as_str(), e.truncated),
                (want, truncated),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn corrupt_times_count_as_zero() {
        for bad in ["nan", "NaN", "inf", "-infinity", "-1.5", "x"] {
            let e = parse(&format!(
                "# Query_time: {bad}  Lock_time: {bad} Rows_sent: 0  Rows_examined: 0\nselect 1;\n"
            ));
            assert_eq!((e[0].duration, e[0].lock_time), (0.0, 0.0), "{bad}");
        }
    }

    #[test]
    fn log_slow_extra_fields_are_tolerated() {
        let log = "# Time: 2024-01-01T00:00:00.000000Z\n# User@Host: u[u] @ h [1.2.3.4]  Id: 9\n# Query_time: 0.25  Lock_time: 0.01 Rows_sent: 5  Rows_examined: 7 Thread_id: 9 Errno: 0 Killed: 0 Bytes_received: 0 Bytes_sent: 100 Read_first: 0 Read_last: 0 Read_key: 1 Read_next: 0 Read_prev: 0 Read_rnd: 0 Read_rnd_next: 6 Sort_merge_passes: 0 Sort_range_count: 0 Sort_rows: 0 Sort_scan_count: 0 Created_tmp_disk_tables: 0 Created_tmp_tables: 0 Start: 2024-01-01T00:00:00.000000Z End: 2024-01-01T00:00:00.250000Z\nSET timestamp=1704067200;\nselect * from t;\n";
        let e = parse(log);
        assert_eq!(e.len(), 1);
        assert_eq!(
            (
                e[0].duration,
                e[0].lock_time,
                e[0].rows_sent,
                e[0].rows_examined
            ),
            (0.25, 0.01, 5, 7)
        );
    }
}
