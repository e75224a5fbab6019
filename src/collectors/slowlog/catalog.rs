//! Every family of the slow-query sources, declared once: the per-class
//! families (`perfwatch_slow_query*`, `perfwatch_slow_queries_total`) that a
//! slow log and the PostgreSQL/MySQL statement statistics fill alike, the
//! statement sources' own health, and the log follower's counters
//! (`perfwatch_slowlog_*`). The statement sources live in the postgres and
//! mysql kinds but export these declarations, so each name has one HELP and
//! one label set whichever source fills it.

// Label sets several families share.
const PER_CLASS: &[&str] = &["target", "db", "fingerprint"];
const PER_DB: &[&str] = &["target", "db"];
const PER_CLASS_TABLE: &[&str] = &["target", "db", "fingerprint", "table"];
const PER_SOURCE: &[&str] = &["target", "source"];

crate::metric_catalog! {
    /// Everything the slow-query sources export.
    pub const ALL;

    // Per query class (the digest; see `export::digest`).
    DURATION = Histogram(
        "perfwatch_slow_query_duration_seconds",
        PER_CLASS,
        "Execution time per query class, from a slow log or the server's statement statistics (see perfwatch_slow_query_source_info; fingerprint = pt-query-digest query id; \"other\" = classes outside the top_queries, and what a class counted before it got its own label)."
    );
    LOCK_SECONDS = Counter(
        "perfwatch_slow_query_lock_seconds_total",
        PER_CLASS,
        "Lock wait time of the statements per query class."
    );
    ROWS_EXAMINED = Counter(
        "perfwatch_slow_query_rows_examined_total",
        PER_CLASS,
        "Rows examined by the statements per query class."
    );
    ROWS_SENT = Counter(
        "perfwatch_slow_query_rows_sent_total",
        PER_CLASS,
        "Rows sent by the statements per query class."
    );
    FINGERPRINT_INFO = Gauge(
        "perfwatch_slow_query_fingerprint_info",
        ["target", "fingerprint", "db", "query"],
        "A constant 1 carrying the fingerprint text (literals masked, truncated) of a query class."
    );
    // Per database.
    QUERIES = Counter(
        "perfwatch_slow_queries_total",
        PER_DB,
        "Statements seen: slow-log events (scaled by the server's sampling rate) or, from statement statistics, every execution."
    );
    FULL_SCANS = Counter(
        "perfwatch_slow_query_full_scans_total",
        PER_DB,
        "Statements the server marked as full table scans (no index)."
    );

    // Plans and index advice (`plans.rs`, `crate::explain`): per class
    // planned by a database target's `[x.explain]`.
    EXPLAINS = Counter(
        "perfwatch_slow_query_explains_total",
        ["target", "outcome"],
        "Plans of this target's example statements received from database targets (outcome ok or error): EXPLAIN only, never ANALYZE, SELECT only."
    );
    PLAN_SCANS = Gauge(
        "perfwatch_slow_query_plan_scans",
        ["target", "db", "fingerprint", "scan"],
        "Table accesses of each kind (seq, index, index_only, bitmap, other) in the last plan of a query class's example."
    );
    PLAN_ESTIMATED_ROWS = Gauge(
        "perfwatch_slow_query_plan_estimated_rows",
        PER_CLASS,
        "The planner's row estimate in the last plan of a query class's example (PostgreSQL: the top node's rows; MySQL/MariaDB: its largest table access)."
    );
    PLAN_SEQ_SCAN = Gauge(
        "perfwatch_slow_query_plan_seq_scan_rows",
        PER_CLASS_TABLE,
        "The table the last plan of a query class's example reads whole (the one with the largest estimate; none when it reads no table whole), valued at the planner's row estimate for that access."
    );
    PLAN_TIMESTAMP = Gauge(
        "perfwatch_slow_query_plan_timestamp_seconds",
        PER_CLASS,
        "When the last plan of a query class's example was made (unix seconds)."
    );
    INDEX_ADVICE = Gauge(
        "perfwatch_slow_query_index_advice_info",
        ["target", "db", "fingerprint", "table", "columns", "state"],
        "A constant 1 per index advice: the class's plan reads a large table whole on columns it filters or joins by. state: suggested (no index leads with them), index_not_used (one does, the planner ignores it), applied (a later plan no longer reads the table whole). /api/slow-queries has the evidence and the CREATE INDEX statement."
    );
    INDEX_ADVICE_TABLE_ROWS = Gauge(
        "perfwatch_slow_query_index_advice_table_rows",
        PER_CLASS_TABLE,
        "The server's row estimate of the table an index advice is about."
    );
    INDEX_ADVICE_P95 = Gauge(
        "perfwatch_slow_query_index_advice_p95_seconds",
        ["target", "db", "fingerprint", "period"],
        "After an advice was applied: the class's p95 execution time before (period=before) and since (period=after), bucket-interpolated from its histogram."
    );

    // Statement statistics sources (`collectors::statement_stats`).
    SOURCE_INFO = Gauge(
        "perfwatch_slow_query_source_info",
        PER_SOURCE,
        "A constant 1 naming where a target's perfwatch_slow_query_* series come from: pg_stat_statements or performance_schema (statement statistics: all executions, delta-based, histogram at each interval's mean) — slow-log targets have none."
    );
    SOURCE_UP = Gauge(
        "perfwatch_slow_query_source_up",
        PER_SOURCE,
        "1 when the last read of the statement statistics worked; 0 when they are missing (extension not installed or loaded, performance_schema or its statements_digest consumer off, no privilege) — the target's other metrics continue."
    );
    SOURCE_READS = Counter(
        "perfwatch_slow_query_source_reads_total",
        PER_SOURCE,
        "Successful reads of the statement statistics (the first is only a baseline)."
    );

    // The log follower (`[[slowlog]]` targets).
    BYTES_READ = Counter(
        "perfwatch_slowlog_bytes_read_total",
        ["target"],
        "Bytes read from the slow log."
    );
    ROTATIONS = Counter(
        "perfwatch_slowlog_rotations_total",
        ["target"],
        "Rotations, truncations and replacements of the log followed."
    );
    LONG_LINES = Counter(
        "perfwatch_slowlog_long_lines_total",
        ["target"],
        "Lines longer than max_line_bytes (their statement is fingerprinted as it streams)."
    );
    TRUNCATED_EVENTS = Counter(
        "perfwatch_slowlog_truncated_events_total",
        ["target"],
        "Events whose fingerprint missed statement text: a line cut without its rest, or text not foldable within max_line_bytes (timing kept)."
    );
    SAMPLED_EVENTS = Counter(
        "perfwatch_slowlog_sampled_events_total",
        ["target"],
        "Events logged under server-side sampling (counts are scaled; totals are estimates)."
    );
    SKIPPED_FILES = Counter(
        "perfwatch_slowlog_skipped_files_total",
        ["target"],
        "Rotated log files never read (more rotations between two polls than one poll reads, or deleted first)."
    );
    WATCH_MODE = Gauge(
        "perfwatch_slowlog_watch_mode",
        ["target", "mode"],
        "How new log data is noticed: inotify (polls woken on writes) or poll (the interval only)."
    );
    UNRECOGNIZED_LINES = Counter(
        "perfwatch_slowlog_unrecognized_lines_total",
        ["target"],
        "Lines that are no part of the configured format (a log_line_prefix that is not the server's, a compressed file, another layout); see perfwatch_slowlog_degraded."
    );
    UNRECOGNIZED_BYTES = Counter(
        "perfwatch_slowlog_unrecognized_bytes_total",
        ["target"],
        "Bytes of the lines counted in perfwatch_slowlog_unrecognized_lines_total."
    );
    DEGRADED = Gauge(
        "perfwatch_slowlog_degraded",
        ["target"],
        "1 when most of the input read is not recognized (no event at all, or over half the bytes unrecognized): the log says why (prefix mismatch with a suggested log_line_prefix, compressed file, other layout), as does `perfwatch digest`; 0 otherwise."
    );
    STATE_WRITE_ERRORS = Counter(
        "perfwatch_slowlog_state_write_errors_total",
        ["target"],
        "Failures to persist the read position (e.g. disk full)."
    );
}
