//! Every family the MySQL/MariaDB collector exports (see `crate::catalog`).
//! Raw server facts keep mysqld_exporter's `mysql_` names (counters get
//! `_total`); what perfwatch derives is named `perfwatch_mysql_`. The shared
//! `perfwatch_pool_saturation_ratio` and `perfwatch_collector_degraded` are
//! in `crate::catalog::SHARED`, the custom-query families in
//! `collectors::custom_query::CATALOG`.

// Label sets several families share.
const PER_SOURCE_CONNECTION: &[&str] = &[
    "target",
    "master_host",
    "master_uuid",
    "channel_name",
    "connection_name",
];
const PER_OPERATION: &[&str] = &["target", "operation"];
const PER_COMMAND_STATE: &[&str] = &["target", "command", "state"];
const PER_TABLE: &[&str] = &["target", "schema", "table"];
const PER_INDEX: &[&str] = &["target", "schema", "table", "index"];

crate::metric_catalog! {
    /// The `[[mysql]]` catalog.
    pub const ALL;

    /// mysqld_exporter's up gauge, filled by the engine from each poll's
    /// outcome (see `KindInfo::peer_up`): the mysqld-mixin's `MySQLDown`.
    UP = Gauge(
        "mysql_up",
        ["target"],
        "Whether the last poll reached the MySQL/MariaDB server (1) or not (0); perfwatch_target_up says whether it also succeeded."
    );

    // Replication (SHOW ALL SLAVES STATUS on a replica): the columns the
    // alerts and dashboards read, declared so they may; the other numeric
    // columns are exported under mysqld_exporter's generated names
    // (`compat::export_slave_status`). Untyped, as with the peer.
    SLAVE_SECONDS_BEHIND_MASTER = Untyped(
        "mysql_slave_status_seconds_behind_master",
        PER_SOURCE_CONNECTION,
        "Seconds_Behind_Master of a source connection: how far the replica's SQL thread is behind the events it has received (absent while the SQL thread is stopped: the server shows NULL)."
    );
    SLAVE_IO_RUNNING = Untyped(
        "mysql_slave_status_slave_io_running",
        PER_SOURCE_CONNECTION,
        "1 while the replica's I/O thread is connected to its source (Slave_IO_Running = Yes), 0 when it is stopped or still connecting."
    );
    SLAVE_SQL_RUNNING = Untyped(
        "mysql_slave_status_slave_sql_running",
        PER_SOURCE_CONNECTION,
        "1 while the replica's SQL thread applies events (Slave_SQL_Running = Yes), 0 when it stopped (on an error: see the server log or Last_SQL_Error)."
    );

    // Global status and variables (every poll).
    THREADS_CONNECTED = Gauge(
        "mysql_global_status_threads_connected",
        ["target"],
        "Open client connections (Threads_connected), perfwatch's own included."
    );
    THREADS_RUNNING = Gauge(
        "mysql_global_status_threads_running",
        ["target"],
        "Connections running a statement (Threads_running)."
    );
    MAX_USED_CONNECTIONS = Gauge(
        "mysql_global_status_max_used_connections",
        ["target"],
        "Most connections open at once since the server started."
    );
    UPTIME = Gauge(
        "mysql_global_status_uptime",
        ["target"],
        "Seconds since the server started."
    );
    ABORTED_CONNECTS = Counter(
        "mysql_global_status_aborted_connects_total",
        ["target"],
        "Failed connection attempts (Aborted_connects; mysqld_exporter: mysql_global_status_aborted_connects)."
    );
    ABORTED_CLIENTS = Counter(
        "mysql_global_status_aborted_clients_total",
        ["target"],
        "Connections closed without a proper quit (Aborted_clients)."
    );
    CONNECTIONS = Counter(
        "mysql_global_status_connections_total",
        ["target"],
        "Connection attempts, successful or not (Connections)."
    );
    QUESTIONS = Counter(
        "mysql_global_status_questions_total",
        ["target"],
        "Statements sent by clients (Questions)."
    );
    SLOW_QUERIES = Counter(
        "mysql_global_status_slow_queries_total",
        ["target"],
        "Statements slower than long_query_time (Slow_queries; mysqld_exporter: mysql_global_status_slow_queries)."
    );
    BUFFER_POOL_READ_REQUESTS = Counter(
        "mysql_global_status_innodb_buffer_pool_read_requests_total",
        ["target"],
        "Logical reads from the InnoDB buffer pool."
    );
    BUFFER_POOL_READS = Counter(
        "mysql_global_status_innodb_buffer_pool_reads_total",
        ["target"],
        "Logical reads the buffer pool could not serve (read from disk)."
    );
    CONNECTION_ERRORS = Counter(
        "mysql_global_status_connection_errors_total",
        ["target", "error"],
        "Connection errors by kind (Connection_errors_*; max_connections = refused because the server was full)."
    );
    HANDLERS = Counter(
        "mysql_global_status_handlers_total",
        ["target", "handler"],
        "Storage engine handler calls by handler (Handler_*; read_rnd_next = rows read by full table scans)."
    );
    COMMANDS = Counter(
        "mysql_global_status_commands_total",
        ["target", "command"],
        "Statements executed by kind (Com_*; e.g. select, insert, commit)."
    );
    BUFFER_POOL_PAGES = Gauge(
        "mysql_global_status_buffer_pool_pages",
        ["target", "state"],
        "InnoDB buffer pool pages by state: data, free, misc, old (Innodb_buffer_pool_pages_*)."
    );
    BUFFER_POOL_DIRTY_PAGES = Gauge(
        "mysql_global_status_buffer_pool_dirty_pages",
        ["target"],
        "InnoDB buffer pool pages modified in memory and not yet written (Innodb_buffer_pool_pages_dirty)."
    );
    BUFFER_POOL_PAGE_CHANGES = Counter(
        "mysql_global_status_buffer_pool_page_changes_total",
        PER_OPERATION,
        "InnoDB buffer pool page state changes by operation (flushed, made_young, ...: the other Innodb_buffer_pool_pages_*)."
    );
    INNODB_ROW_OPS = Counter(
        "mysql_global_status_innodb_row_ops_total",
        PER_OPERATION,
        "InnoDB row operations by operation (Innodb_rows_*; MySQL and MariaDB before 10.6 only)."
    );
    PERFORMANCE_SCHEMA_LOST = Counter(
        "mysql_global_status_performance_schema_lost_total",
        ["target", "instrumentation"],
        "performance_schema instruments that could not be loaded or created for lack of memory (Performance_schema_*)."
    );
    FULL_SCAN_READ_RATIO = Gauge(
        "perfwatch_mysql_full_scan_read_ratio",
        ["target"],
        "Handler_read_rnd_next / all Handler_read_* since the server started: the share of row reads done by full table scans."
    );
    PROCESSLIST_THREADS = Gauge(
        "mysql_info_schema_processlist_threads",
        PER_COMMAND_STATE,
        "Threads by command and state from information_schema.PROCESSLIST (with processlist = true), perfwatch's own left out; series beyond 100 are summed as command=\"other\", state=\"other\"."
    );
    PROCESSLIST_SECONDS = Gauge(
        "mysql_info_schema_processlist_seconds",
        PER_COMMAND_STATE,
        "Seconds the threads of mysql_info_schema_processlist_threads have spent in their current state, summed."
    );
    MAX_CONNECTIONS = Gauge(
        "mysql_global_variables_max_connections",
        ["target"],
        "The max_connections server variable."
    );
    VERSION_INFO = Gauge(
        "mysql_version_info",
        ["target", "version", "version_comment", "flavor"],
        "A constant 1 labelled with the server version."
    );
    BUFFER_POOL_HIT_RATIO = Gauge(
        "perfwatch_mysql_buffer_pool_hit_ratio",
        ["target", "window"],
        "InnoDB buffer pool reads served from memory: 1 - Innodb_buffer_pool_reads / Innodb_buffer_pool_read_requests over the window (absent without reads); window=\"total\" is since the server started."
    );

    // perfwatch's own work and failures.
    SECTION_ERRORS = Counter(
        "perfwatch_mysql_section_errors_total",
        ["target", "section", "reason"],
        "Statistics sections (index definitions, sizes, reads, tables) that failed; the target's other metrics continue."
    );
    STATEMENTS = Counter(
        "perfwatch_mysql_statements_total",
        ["target"],
        "Statements perfwatch sent to the server (its own load: 2 per poll, more on index passes, custom queries, statement digests, processlist = true and replicas)."
    );
    CONNECTS = Counter(
        "perfwatch_mysql_connects_total",
        ["target"],
        "Connections perfwatch opened to the server (one, kept across polls; more only after errors)."
    );

    // Index and table statistics (every index_interval, re-exported in between).
    INDEX_STATS_SOURCE = Gauge(
        "perfwatch_mysql_index_stats_source_info",
        ["target", "source"],
        "A constant 1 naming where index read counts come from: performance_schema, userstat (MariaDB INDEX_STATISTICS) or none (sizes and definitions only, no unused/missing-index verdicts)."
    );
    STATS_AGE = Gauge(
        "perfwatch_mysql_stats_age_seconds",
        ["target"],
        "Seconds of history behind the index read counts (since the server started or the statistics were last seen reset); judge unused indexes only once this covers a full business cycle."
    );
    INDEX_IO_WAITS = Counter(
        "mysql_perf_schema_index_io_waits_total",
        ["target", "schema", "name", "index", "operation"],
        "Index I/O operations from performance_schema.table_io_waits_summary_by_index_usage; index=\"NONE\" = rows accessed without an index (full scans). Indexes beyond max_indexes are summed as name=\"other\", index=\"other\" per schema."
    );
    TABLE_ROWS = Gauge(
        "mysql_info_schema_table_rows",
        PER_TABLE,
        "Estimated rows per table (information_schema.TABLES.TABLE_ROWS; InnoDB's is an estimate). Tables beyond max_tables are summed per schema as table=\"other\"."
    );
    TABLE_SIZE = Gauge(
        "mysql_info_schema_table_size",
        ["target", "schema", "table", "component"],
        "Table size in bytes by component (data_length, index_length, data_free) from information_schema.TABLES. Tables beyond max_tables are summed per schema as table=\"other\"."
    );
    TABLES_AGGREGATED = Gauge(
        "perfwatch_mysql_tables_aggregated",
        ["target"],
        "Tables summed into table=\"other\" because of max_tables."
    );
    INDEX_SIZE = Gauge(
        "perfwatch_mysql_index_size_bytes",
        PER_INDEX,
        "Index size (mysql.innodb_index_stats size pages × innodb_page_size). Indexes beyond max_indexes are summed per schema as table=\"other\", index=\"other\"."
    );
    INDEX_UNUSED = Gauge(
        "perfwatch_mysql_index_unused",
        PER_INDEX,
        "1 when the index had no reads since the statistics began (see perfwatch_mysql_stats_age_seconds), 0 when it was read. PRIMARY, UNIQUE and foreign-key indexes are never judged."
    );
    INDEX_REDUNDANT = Gauge(
        "perfwatch_mysql_index_redundant",
        ["target", "schema", "table", "index", "covered_by"],
        "1 when the index's columns are a leading prefix of (or equal to) another index of the table, named in covered_by."
    );
    INDEXES_AGGREGATED = Gauge(
        "perfwatch_mysql_indexes_aggregated",
        ["target"],
        "Indexes summed into index=\"other\" because of max_indexes."
    );
    REDUNDANT_INDEXES = Gauge(
        "perfwatch_mysql_redundant_indexes",
        ["target"],
        "Indexes whose columns are a prefix of another index of the same table."
    );
    UNUSED_INDEXES = Gauge(
        "perfwatch_mysql_unused_indexes",
        ["target"],
        "Indexes with no reads since the statistics began (PRIMARY, UNIQUE and foreign-key indexes excluded)."
    );
    UNUSED_INDEX_BYTES = Gauge(
        "perfwatch_mysql_unused_index_bytes",
        ["target"],
        "Total size of the unused indexes: space and write work spent on indexes nothing reads."
    );
    TABLE_ROWS_READ = Counter(
        "perfwatch_mysql_table_rows_read_total",
        ["target", "schema", "table", "access"],
        "Rows read from the table since the statistics began, by access: full_scan (no index) or index. Tables beyond max_tables are summed per schema as table=\"other\"."
    );
    TABLE_FULL_SCAN_RATIO = Gauge(
        "perfwatch_mysql_table_full_scan_ratio",
        PER_TABLE,
        "Share of the table's rows read without an index since the statistics began."
    );
    MISSING_INDEX_CANDIDATE = Gauge(
        "perfwatch_mysql_missing_index_candidate",
        PER_TABLE,
        "1 when the table has at least missing_index_min_rows rows and at least missing_index_min_full_scan_ratio of its reads were full scans."
    );
    MISSING_INDEX_CANDIDATES = Gauge(
        "perfwatch_mysql_missing_index_candidates",
        ["target"],
        "Tables flagged by perfwatch_mysql_missing_index_candidate."
    );
}
