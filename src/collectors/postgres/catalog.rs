//! Every family the PostgreSQL collector exports (see `crate::catalog`).
//! Raw server facts keep postgres_exporter's `pg_` names so its dashboards
//! work; what perfwatch derives is named `perfwatch_postgres_`. The shared
//! `perfwatch_pool_saturation_ratio` and `perfwatch_collector_degraded` are
//! in `crate::catalog::SHARED`, the custom-query families in
//! `collectors::custom_query::CATALOG`.

crate::metric_catalog! {
    /// The `[[postgres]]` catalog.
    pub const ALL;

    /// postgres_exporter's up gauge, filled by the engine from each poll's
    /// outcome (see `KindInfo::peer_up`): the postgres-mixin's down alert.
    UP = Gauge(
        "pg_up",
        ["target"],
        "Whether the last poll reached the PostgreSQL server (1) or not (0); perfwatch_target_up says whether it also succeeded."
    );

    // Connections (every poll).
    /// postgres_exporter calls this `pg_stat_activity_count`, a gauge name
    /// promtool rejects (`_count` is reserved for histograms and summaries).
    SESSIONS = Gauge(
        "perfwatch_postgres_sessions",
        ["target", "datname", "state"],
        "Client sessions by database and state, perfwatch's own excluded (postgres_exporter: pg_stat_activity_count)."
    );
    MAX_TX_DURATION = Gauge(
        "pg_stat_activity_max_tx_duration",
        ["target", "datname"],
        "Age in seconds of the oldest open transaction in the database (0 when none)."
    );
    OLDEST_QUERY = Gauge(
        "perfwatch_postgres_oldest_query_seconds",
        ["target", "datname"],
        "Age in seconds of the oldest running (state active) query in the database (0 when none)."
    );
    WAITING_ON_LOCK = Gauge(
        "perfwatch_postgres_sessions_waiting_on_lock",
        ["target", "datname"],
        "Client sessions waiting for a lock (wait_event_type Lock)."
    );
    MAX_CONNECTIONS = Gauge(
        "pg_settings_max_connections",
        ["target"],
        "The max_connections setting."
    );
    SUPERUSER_RESERVED = Gauge(
        "pg_settings_superuser_reserved_connections",
        ["target"],
        "The superuser_reserved_connections setting."
    );
    CONNECTIONS_USED = Gauge(
        "perfwatch_postgres_connections_used",
        ["target"],
        "Client sessions on the server, perfwatch's own excluded."
    );
    CONNECTIONS_AVAILABLE = Gauge(
        "perfwatch_postgres_connections_available",
        ["target"],
        "Connection slots for ordinary roles: max_connections - superuser_reserved_connections - reserved_connections."
    );
    STATS_RESET_AGE = Gauge(
        "perfwatch_postgres_stats_reset_age_seconds",
        ["target", "datname"],
        "Seconds since the database's statistics were reset (or the server started, when never reset): index usage is only meaningful over a long enough age."
    );

    // Database-level statistics (every poll; postgres_exporter's names and
    // labels, `server` replaced by `target`; counters declared gauges, see
    // docs/collectors/postgres.md "Names").
    STAT_DATABASE_NUMBACKENDS = Gauge(
        "pg_stat_database_numbackends",
        ["target", "datid", "datname"],
        "Backends connected to the database right now (pg_stat_database.numbackends; perfwatch's own included, as in the view)."
    );
    STAT_DATABASE_XACT_COMMIT = Gauge(
        "pg_stat_database_xact_commit",
        ["target", "datid", "datname"],
        "Transactions committed in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_XACT_ROLLBACK = Gauge(
        "pg_stat_database_xact_rollback",
        ["target", "datid", "datname"],
        "Transactions rolled back in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_BLKS_READ = Gauge(
        "pg_stat_database_blks_read",
        ["target", "datid", "datname"],
        "Disk blocks read in the database, i.e. missed in PostgreSQL's buffer cache (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_BLKS_HIT = Gauge(
        "pg_stat_database_blks_hit",
        ["target", "datid", "datname"],
        "Disk blocks found in PostgreSQL's buffer cache, so no read was needed (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TUP_RETURNED = Gauge(
        "pg_stat_database_tup_returned",
        ["target", "datid", "datname"],
        "Rows returned by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TUP_FETCHED = Gauge(
        "pg_stat_database_tup_fetched",
        ["target", "datid", "datname"],
        "Rows fetched by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TUP_INSERTED = Gauge(
        "pg_stat_database_tup_inserted",
        ["target", "datid", "datname"],
        "Rows inserted by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TUP_UPDATED = Gauge(
        "pg_stat_database_tup_updated",
        ["target", "datid", "datname"],
        "Rows updated by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TUP_DELETED = Gauge(
        "pg_stat_database_tup_deleted",
        ["target", "datid", "datname"],
        "Rows deleted by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_CONFLICTS = Gauge(
        "pg_stat_database_conflicts",
        ["target", "datid", "datname"],
        "Queries canceled by conflicts with recovery, on a standby (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TEMP_FILES = Gauge(
        "pg_stat_database_temp_files",
        ["target", "datid", "datname"],
        "Temporary files created by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TEMP_BYTES = Gauge(
        "pg_stat_database_temp_bytes",
        ["target", "datid", "datname"],
        "Bytes written to temporary files by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_DEADLOCKS = Gauge(
        "pg_stat_database_deadlocks",
        ["target", "datid", "datname"],
        "Deadlocks detected in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    DATABASE_SIZE = Gauge(
        "pg_database_size_bytes",
        ["target", "datname"],
        "Disk space used by the database (pg_database_size; absent when the role may not connect to it and lacks pg_read_all_stats)."
    );
    DATABASES_SUMMED_INTO_OTHER = Gauge(
        "perfwatch_postgres_databases_summed_into_other",
        ["target"],
        "Databases beyond max_databases whose pg_stat_database_* and pg_database_size_bytes series are summed into datname=\"other\"."
    );
    REPLICATION_IS_REPLICA = Gauge(
        "pg_replication_is_replica",
        ["target"],
        "1 when the server is a standby (pg_is_in_recovery()), else 0."
    );
    REPLICATION_LAG = Gauge(
        "pg_replication_lag",
        ["target"],
        "Seconds since the last transaction replayed on a standby (now() - pg_last_xact_replay_timestamp()); 0 on a primary, absent on a standby that has replayed none yet."
    );

    // Index and table stats (every index_interval, re-exported in between).
    INDEX_STATS_LAST_SUCCESS = Gauge(
        "perfwatch_postgres_index_stats_last_success_timestamp_seconds",
        ["target", "datname"],
        "When the index/table stats of the database were last read (they are re-exported until the next read, every index_interval)."
    );
    DATABASES_SKIPPED = Gauge(
        "perfwatch_postgres_databases_skipped",
        ["target"],
        "Databases without index/table stats because of max_databases."
    );
    PART_ERRORS = Counter(
        "perfwatch_postgres_part_errors_total",
        ["target", "datname", "part", "reason"],
        "Failed reads of one part of a target (connect, indexes, tables) by reason; the other parts keep working."
    );
    UNUSED_INDEXES = Gauge(
        "perfwatch_postgres_unused_indexes",
        ["target", "datname"],
        "Indexes with no scan since the statistics were reset, excluding primary keys, unique and constraint-backing indexes."
    );
    UNUSED_INDEX_BYTES = Gauge(
        "perfwatch_postgres_unused_index_bytes",
        ["target", "datname"],
        "Total size of the unused indexes (space and write cost they waste)."
    );
    INDEX_SCANS = Counter(
        "perfwatch_postgres_index_scans_total",
        ["target", "datname", "schemaname", "relname", "indexrelname"],
        "Index scans (pg_stat_user_indexes.idx_scan); indexrelname=\"other\" sums the indexes beyond max_indexes."
    );
    INDEX_TUPLES_READ = Counter(
        "perfwatch_postgres_index_tuples_read_total",
        ["target", "datname", "schemaname", "relname", "indexrelname"],
        "Index entries returned by scans of the index (idx_tup_read)."
    );
    INDEX_TUPLES_FETCHED = Counter(
        "perfwatch_postgres_index_tuples_fetched_total",
        ["target", "datname", "schemaname", "relname", "indexrelname"],
        "Live table rows fetched by simple scans of the index (idx_tup_fetch)."
    );
    INDEX_SIZE = Gauge(
        "perfwatch_postgres_index_size_bytes",
        ["target", "datname", "schemaname", "relname", "indexrelname"],
        "Size of the index (pg_relation_size)."
    );
    INDEX_UNUSED = Gauge(
        "perfwatch_postgres_index_unused",
        ["target", "datname", "schemaname", "relname", "indexrelname"],
        "1 when the index had no scan since the statistics were reset and enforces no constraint (a candidate to drop: check perfwatch_postgres_stats_reset_age_seconds first)."
    );
    MISSING_INDEX_CANDIDATES = Gauge(
        "perfwatch_postgres_missing_index_candidates",
        ["target", "datname"],
        "Tables in the database matching the missing-index rule."
    );
    // postgres_exporter's names; gauges here (see docs/collectors/postgres.md).
    TABLE_SEQ_SCAN = Gauge(
        "pg_stat_user_tables_seq_scan",
        ["target", "datname", "schemaname", "relname"],
        "Sequential scans of the table (a counter exported as a gauge under postgres_exporter's name)."
    );
    TABLE_SEQ_TUP_READ = Gauge(
        "pg_stat_user_tables_seq_tup_read",
        ["target", "datname", "schemaname", "relname"],
        "Rows read by sequential scans (a counter exported as a gauge under postgres_exporter's name)."
    );
    TABLE_IDX_SCAN = Gauge(
        "pg_stat_user_tables_idx_scan",
        ["target", "datname", "schemaname", "relname"],
        "Index scans of the table (a counter exported as a gauge under postgres_exporter's name)."
    );
    TABLE_LIVE_TUP = Gauge(
        "pg_stat_user_tables_n_live_tup",
        ["target", "datname", "schemaname", "relname"],
        "Estimated live rows."
    );
    TABLE_DEAD_TUP = Gauge(
        "pg_stat_user_tables_n_dead_tup",
        ["target", "datname", "schemaname", "relname"],
        "Estimated dead rows."
    );
    TABLE_ESTIMATED_ROWS = Gauge(
        "perfwatch_postgres_table_estimated_rows",
        ["target", "datname", "schemaname", "relname"],
        "The planner's row estimate (pg_class.reltuples; 0 before the first ANALYZE)."
    );
    TABLE_SIZE = Gauge(
        "perfwatch_postgres_table_size_bytes",
        ["target", "datname", "schemaname", "relname"],
        "Total size of the table with its indexes and TOAST (pg_total_relation_size)."
    );
    MISSING_INDEX_CANDIDATE = Gauge(
        "perfwatch_postgres_missing_index_candidate",
        ["target", "datname", "schemaname", "relname"],
        "1 when the table is mostly scanned sequentially while big (see min_table_rows, min_seq_scans, seq_ratio): it likely misses an index."
    );
}
