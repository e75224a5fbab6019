//! Every family the PostgreSQL collector exports (see `crate::catalog`).
//! Raw server facts keep postgres_exporter's `pg_` names so its dashboards
//! work; what perfwatch derives is named `perfwatch_postgres_`. The shared
//! `perfwatch_pool_saturation_ratio` and `perfwatch_collector_degraded` are
//! in `crate::catalog::SHARED`, the custom-query families in
//! `collectors::custom_query::CATALOG`.

// Label sets several families share.
const PER_DATABASE: &[&str] = &["target", "datname"];
const PER_DATABASE_STATE: &[&str] = &["target", "datname", "state"];
const PER_STAT_DATABASE: &[&str] = &["target", "datid", "datname"];
const PER_STANDBY: &[&str] = &[
    "target",
    "application_name",
    "client_addr",
    "slot_name",
    "state",
];
const PER_SLOT: &[&str] = &["target", "slot_name", "database"];
const PER_INDEX: &[&str] = &["target", "datname", "schemaname", "relname", "indexrelname"];
const PER_TABLE: &[&str] = &["target", "datname", "schemaname", "relname"];

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
    /// postgres_exporter's `pg_stat_activity_count` counts every backend
    /// (perfwatch's own included) in this family's per-(database, state)
    /// split; this one counts client sessions only, without perfwatch's.
    SESSIONS = Gauge(
        "perfwatch_postgres_sessions",
        PER_DATABASE_STATE,
        "Client sessions by database and state, perfwatch's own and background processes excluded (pg_stat_activity_count counts every backend)."
    );
    /// postgres_exporter's gauge; untyped because promtool rejects a gauge
    /// named `_count` (see `crate::catalog::MetricType::Untyped`).
    ACTIVITY_COUNT = Untyped(
        "pg_stat_activity_count",
        PER_DATABASE_STATE,
        "Backends by database and state, as postgres_exporter counts them: every backend of pg_stat_activity (monitoring sessions and background workers included), every state of its list with zeros, datname=\"other\" beyond max_databases."
    );
    MAX_TX_DURATION = Gauge(
        "pg_stat_activity_max_tx_duration",
        PER_DATABASE_STATE,
        "Age in seconds of the oldest open transaction of the database's backends in this state (0 when none), as postgres_exporter reads it."
    );
    /// postgres_exporter's gauge; untyped for promtool, as `ACTIVITY_COUNT`.
    LOCKS_COUNT = Untyped(
        "pg_locks_count",
        ["target", "datname", "mode"],
        "Locks held or awaited in the database by mode (pg_locks.mode lowercased), every mode with zeros, as postgres_exporter counts them."
    );
    OLDEST_QUERY = Gauge(
        "perfwatch_postgres_oldest_query_seconds",
        PER_DATABASE,
        "Age in seconds of the oldest running (state active) query in the database (0 when none)."
    );
    WAITING_ON_LOCK = Gauge(
        "perfwatch_postgres_sessions_waiting_on_lock",
        PER_DATABASE,
        "Client sessions waiting for a lock (wait_event_type Lock)."
    );

    // Settings: every numeric pg_settings row is exported as
    // postgres_exporter names it (`metrics::export_settings`); the ones
    // perfwatch's rules, the shipped alerts or the postgres-mixin use are
    // declared here, the rest are named from the server's own list.
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
    MAX_LOCKS_PER_TRANSACTION = Gauge(
        "pg_settings_max_locks_per_transaction",
        ["target"],
        "The max_locks_per_transaction setting (the lock table holds about max_locks_per_transaction * (max_connections + max_prepared_transactions) locks)."
    );
    MAX_PREPARED_TRANSACTIONS = Gauge(
        "pg_settings_max_prepared_transactions",
        ["target"],
        "The max_prepared_transactions setting."
    );
    AUTOVACUUM_VACUUM_SCALE_FACTOR = Gauge(
        "pg_settings_autovacuum_vacuum_scale_factor",
        ["target"],
        "The autovacuum_vacuum_scale_factor setting (share of a table's rows that must be dead before autovacuum vacuums it)."
    );
    AUTOVACUUM_VACUUM_THRESHOLD = Gauge(
        "pg_settings_autovacuum_vacuum_threshold",
        ["target"],
        "The autovacuum_vacuum_threshold setting (dead rows a table needs before autovacuum vacuums it, on top of the scale factor)."
    );
    AUTOVACUUM_ANALYZE_SCALE_FACTOR = Gauge(
        "pg_settings_autovacuum_analyze_scale_factor",
        ["target"],
        "The autovacuum_analyze_scale_factor setting."
    );
    AUTOVACUUM_ANALYZE_THRESHOLD = Gauge(
        "pg_settings_autovacuum_analyze_threshold",
        ["target"],
        "The autovacuum_analyze_threshold setting."
    );
    AUTOVACUUM_MAX_WORKERS = Gauge(
        "pg_settings_autovacuum_max_workers",
        ["target"],
        "The autovacuum_max_workers setting."
    );
    AUTOVACUUM_FREEZE_MAX_AGE = Gauge(
        "pg_settings_autovacuum_freeze_max_age",
        ["target"],
        "The autovacuum_freeze_max_age setting (transactions before a table is vacuumed to prevent wraparound)."
    );
    SHARED_BUFFERS = Gauge(
        "pg_settings_shared_buffers_bytes",
        ["target"],
        "The shared_buffers setting in bytes."
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
        PER_DATABASE,
        "Seconds since the database's statistics were reset (or the server started, when never reset): index usage is only meaningful over a long enough age."
    );

    // Database-level statistics (every poll; postgres_exporter's names and
    // labels, `server` replaced by `target`; counters declared gauges, see
    // docs/collectors/postgres.md "Names").
    STAT_DATABASE_NUMBACKENDS = Gauge(
        "pg_stat_database_numbackends",
        PER_STAT_DATABASE,
        "Backends connected to the database right now (pg_stat_database.numbackends; perfwatch's own included, as in the view)."
    );
    STAT_DATABASE_XACT_COMMIT = Gauge(
        "pg_stat_database_xact_commit",
        PER_STAT_DATABASE,
        "Transactions committed in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_XACT_ROLLBACK = Gauge(
        "pg_stat_database_xact_rollback",
        PER_STAT_DATABASE,
        "Transactions rolled back in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_BLKS_READ = Gauge(
        "pg_stat_database_blks_read",
        PER_STAT_DATABASE,
        "Disk blocks read in the database, i.e. missed in PostgreSQL's buffer cache (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_BLKS_HIT = Gauge(
        "pg_stat_database_blks_hit",
        PER_STAT_DATABASE,
        "Disk blocks found in PostgreSQL's buffer cache, so no read was needed (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TUP_RETURNED = Gauge(
        "pg_stat_database_tup_returned",
        PER_STAT_DATABASE,
        "Rows returned by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TUP_FETCHED = Gauge(
        "pg_stat_database_tup_fetched",
        PER_STAT_DATABASE,
        "Rows fetched by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TUP_INSERTED = Gauge(
        "pg_stat_database_tup_inserted",
        PER_STAT_DATABASE,
        "Rows inserted by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TUP_UPDATED = Gauge(
        "pg_stat_database_tup_updated",
        PER_STAT_DATABASE,
        "Rows updated by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TUP_DELETED = Gauge(
        "pg_stat_database_tup_deleted",
        PER_STAT_DATABASE,
        "Rows deleted by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_CONFLICTS = Gauge(
        "pg_stat_database_conflicts",
        PER_STAT_DATABASE,
        "Queries canceled by conflicts with recovery, on a standby (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TEMP_FILES = Gauge(
        "pg_stat_database_temp_files",
        PER_STAT_DATABASE,
        "Temporary files created by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_TEMP_BYTES = Gauge(
        "pg_stat_database_temp_bytes",
        PER_STAT_DATABASE,
        "Bytes written to temporary files by queries in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    STAT_DATABASE_DEADLOCKS = Gauge(
        "pg_stat_database_deadlocks",
        PER_STAT_DATABASE,
        "Deadlocks detected in the database (a counter exported as a gauge under postgres_exporter's name)."
    );
    DATABASE_SIZE = Gauge(
        "pg_database_size_bytes",
        PER_DATABASE,
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

    // Replication, sending side: one series per row of pg_stat_replication
    // (a primary's standbys, or a cascading standby's), postgres_exporter
    // 0.11's names and labels (its `slot_name` label holds the walsender's
    // pid). The byte positions are absent on a standby, as with the peer.
    STAT_REPLICATION_CURRENT_WAL_LSN = Gauge(
        "pg_stat_replication_pg_current_wal_lsn_bytes",
        PER_STANDBY,
        "The primary's current WAL position (pg_current_wal_lsn() - '0/0') in bytes, on each row of pg_stat_replication."
    );
    STAT_REPLICATION_WAL_LSN_DIFF = Gauge(
        "pg_stat_replication_pg_wal_lsn_diff",
        PER_STANDBY,
        "Bytes of WAL the standby has not replayed yet (pg_current_wal_lsn() - replay_lsn)."
    );
    STAT_REPLICATION_REPLY_TIME = Gauge(
        "pg_stat_replication_reply_time",
        PER_STANDBY,
        "When the standby last replied (Unix seconds, whole)."
    );
    REPLICA_LAG_SECONDS = Gauge(
        "perfwatch_postgres_replica_lag_seconds",
        ["target", "application_name", "client_addr", "lag"],
        "How far a standby is behind, by the server's own measure (pg_stat_replication write_lag, flush_lag, replay_lag): lag=\"replay\" is how old the data read on it can be. 0 when it has caught up and no WAL is being written (the server shows NULL then)."
    );
    REPLICAS = Gauge(
        "perfwatch_postgres_replicas",
        ["target", "state"],
        "Standbys connected to this server, by walsender state (streaming, catchup, startup, backup, stopping); no series for a state none is in."
    );
    // Replication slots (every poll; postgres_exporter 0.11's names): a slot
    // whose standby is gone keeps WAL on the primary until the disk fills.
    REPLICATION_SLOTS_ACTIVE = Gauge(
        "pg_replication_slots_active",
        PER_SLOT,
        "1 when a client is streaming from the replication slot, 0 when none is (the slot keeps WAL meanwhile)."
    );
    REPLICATION_SLOTS_WAL_LSN_DIFF = Gauge(
        "pg_replication_slots_pg_wal_lsn_diff",
        PER_SLOT,
        "Bytes of WAL the slot keeps back (current WAL position - restart_lsn)."
    );
    // Replication, receiving side.
    WAL_RECEIVER_UP = Gauge(
        "perfwatch_postgres_wal_receiver_up",
        ["target"],
        "On a standby: 1 when its WAL receiver is streaming from the primary, 0 when it is not (broken replication: the standby falls further behind). Absent on a primary, and without pg_monitor (the status is hidden then)."
    );

    // pg_stat_bgwriter (every poll; postgres_exporter 0.11's names, proper
    // counters; times in milliseconds as the server and the peer give them).
    BGWRITER_CHECKPOINTS_TIMED = Counter(
        "pg_stat_bgwriter_checkpoints_timed_total",
        ["target"],
        "Scheduled checkpoints that have been performed (absent on PostgreSQL 17+, where it moved to pg_stat_checkpointer)."
    );
    BGWRITER_CHECKPOINTS_REQ = Counter(
        "pg_stat_bgwriter_checkpoints_req_total",
        ["target"],
        "Requested checkpoints that have been performed (absent on PostgreSQL 17+)."
    );
    BGWRITER_CHECKPOINT_WRITE_TIME = Counter(
        "pg_stat_bgwriter_checkpoint_write_time_total",
        ["target"],
        "Milliseconds spent writing checkpoint files to disk (postgres_exporter's name and unit; absent on PostgreSQL 17+)."
    );
    BGWRITER_CHECKPOINT_SYNC_TIME = Counter(
        "pg_stat_bgwriter_checkpoint_sync_time_total",
        ["target"],
        "Milliseconds spent synchronizing checkpoint files to disk (postgres_exporter's name and unit; absent on PostgreSQL 17+)."
    );
    BGWRITER_BUFFERS_CHECKPOINT = Counter(
        "pg_stat_bgwriter_buffers_checkpoint_total",
        ["target"],
        "Buffers written during checkpoints (absent on PostgreSQL 17+)."
    );
    BGWRITER_BUFFERS_CLEAN = Counter(
        "pg_stat_bgwriter_buffers_clean_total",
        ["target"],
        "Buffers written by the background writer."
    );
    BGWRITER_MAXWRITTEN_CLEAN = Counter(
        "pg_stat_bgwriter_maxwritten_clean_total",
        ["target"],
        "Times the background writer stopped a cleaning scan because it had written too many buffers."
    );
    BGWRITER_BUFFERS_BACKEND = Counter(
        "pg_stat_bgwriter_buffers_backend_total",
        ["target"],
        "Buffers written directly by a backend (absent on PostgreSQL 17+, see pg_stat_io)."
    );
    BGWRITER_BUFFERS_BACKEND_FSYNC = Counter(
        "pg_stat_bgwriter_buffers_backend_fsync_total",
        ["target"],
        "Times a backend had to execute its own fsync call (absent on PostgreSQL 17+)."
    );
    BGWRITER_BUFFERS_ALLOC = Counter(
        "pg_stat_bgwriter_buffers_alloc_total",
        ["target"],
        "Buffers allocated."
    );
    /// postgres_exporter 0.11 exports the reset time as a counter; kept so.
    BGWRITER_STATS_RESET = Counter(
        "pg_stat_bgwriter_stats_reset_total",
        ["target"],
        "When pg_stat_bgwriter was last reset, epoch seconds (a timestamp that postgres_exporter exports as a counter)."
    );

    // Index and table stats (every index_interval, re-exported in between).
    INDEX_STATS_LAST_SUCCESS = Gauge(
        "perfwatch_postgres_index_stats_last_success_timestamp_seconds",
        PER_DATABASE,
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
        PER_DATABASE,
        "Indexes with no scan since the statistics were reset, excluding primary keys, unique and constraint-backing indexes."
    );
    UNUSED_INDEX_BYTES = Gauge(
        "perfwatch_postgres_unused_index_bytes",
        PER_DATABASE,
        "Total size of the unused indexes (space and write cost they waste)."
    );
    INDEX_SCANS = Counter(
        "perfwatch_postgres_index_scans_total",
        PER_INDEX,
        "Index scans (pg_stat_user_indexes.idx_scan); indexrelname=\"other\" sums the indexes beyond max_indexes."
    );
    INDEX_TUPLES_READ = Counter(
        "perfwatch_postgres_index_tuples_read_total",
        PER_INDEX,
        "Index entries returned by scans of the index (idx_tup_read)."
    );
    INDEX_TUPLES_FETCHED = Counter(
        "perfwatch_postgres_index_tuples_fetched_total",
        PER_INDEX,
        "Live table rows fetched by simple scans of the index (idx_tup_fetch)."
    );
    INDEX_SIZE = Gauge(
        "perfwatch_postgres_index_size_bytes",
        PER_INDEX,
        "Size of the index (pg_relation_size)."
    );
    INDEX_UNUSED = Gauge(
        "perfwatch_postgres_index_unused",
        PER_INDEX,
        "1 when the index had no scan since the statistics were reset and enforces no constraint (a candidate to drop: check perfwatch_postgres_stats_reset_age_seconds first)."
    );
    MISSING_INDEX_CANDIDATES = Gauge(
        "perfwatch_postgres_missing_index_candidates",
        PER_DATABASE,
        "Tables in the database matching the missing-index rule."
    );
    // postgres_exporter's names; gauges here (see docs/collectors/postgres.md).
    TABLE_SEQ_SCAN = Gauge(
        "pg_stat_user_tables_seq_scan",
        PER_TABLE,
        "Sequential scans of the table (a counter exported as a gauge under postgres_exporter's name)."
    );
    TABLE_SEQ_TUP_READ = Gauge(
        "pg_stat_user_tables_seq_tup_read",
        PER_TABLE,
        "Rows read by sequential scans (a counter exported as a gauge under postgres_exporter's name)."
    );
    TABLE_IDX_SCAN = Gauge(
        "pg_stat_user_tables_idx_scan",
        PER_TABLE,
        "Index scans of the table (a counter exported as a gauge under postgres_exporter's name)."
    );
    TABLE_LIVE_TUP = Gauge(
        "pg_stat_user_tables_n_live_tup",
        PER_TABLE,
        "Estimated live rows."
    );
    TABLE_DEAD_TUP = Gauge(
        "pg_stat_user_tables_n_dead_tup",
        PER_TABLE,
        "Estimated dead rows."
    );
    TABLE_ESTIMATED_ROWS = Gauge(
        "perfwatch_postgres_table_estimated_rows",
        PER_TABLE,
        "The planner's row estimate (pg_class.reltuples; 0 before the first ANALYZE)."
    );
    TABLE_SIZE = Gauge(
        "perfwatch_postgres_table_size_bytes",
        PER_TABLE,
        "Total size of the table with its indexes and TOAST (pg_total_relation_size)."
    );
    MISSING_INDEX_CANDIDATE = Gauge(
        "perfwatch_postgres_missing_index_candidate",
        PER_TABLE,
        "1 when the table is mostly scanned sequentially while big (see min_table_rows, min_seq_scans, seq_ratio): it likely misses an index."
    );
}
