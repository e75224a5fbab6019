//! Every family the PgBouncer collector exports, declared once (see
//! [`crate::catalog`]). Raw PgBouncer facts keep pgbouncer_exporter's names
//! (plus a `target` label) so its dashboards work; perfwatch's judgement
//! (pool saturation) is the shared
//! [`crate::catalog::POOL_SATURATION`] with `source="pgbouncer"`.

// Label sets several families share.
const PER_POOL: &[&str] = &["target", "database", "user"];
const PER_DATABASE: &[&str] = &["target", "database"];

crate::metric_catalog! {
    /// Everything the PgBouncer collector declares.
    pub const ALL;

    // SHOW POOLS, per (database, user) pool.
    POOLS_CLIENT_ACTIVE_CONNECTIONS = Gauge(
        "pgbouncer_pools_client_active_connections",
        PER_POOL,
        "Client connections linked to a server connection or idle with no queries waiting (SHOW POOLS cl_active)."
    );
    POOLS_CLIENT_WAITING_CONNECTIONS = Gauge(
        "pgbouncer_pools_client_waiting_connections",
        PER_POOL,
        "Client connections that sent a query and wait for a server connection (SHOW POOLS cl_waiting)."
    );
    POOLS_SERVER_ACTIVE_CONNECTIONS = Gauge(
        "pgbouncer_pools_server_active_connections",
        PER_POOL,
        "Server connections linked to a client (SHOW POOLS sv_active)."
    );
    POOLS_SERVER_IDLE_CONNECTIONS = Gauge(
        "pgbouncer_pools_server_idle_connections",
        PER_POOL,
        "Server connections idle and ready for a client query (SHOW POOLS sv_idle)."
    );
    POOLS_SERVER_USED_CONNECTIONS = Gauge(
        "pgbouncer_pools_server_used_connections",
        PER_POOL,
        "Server connections idle longer than server_check_delay, needing server_check_query (SHOW POOLS sv_used)."
    );
    POOLS_SERVER_TESTING_CONNECTIONS = Gauge(
        "pgbouncer_pools_server_testing_connections",
        PER_POOL,
        "Server connections running server_reset_query or server_check_query (SHOW POOLS sv_tested)."
    );
    POOLS_SERVER_LOGIN_CONNECTIONS = Gauge(
        "pgbouncer_pools_server_login_connections",
        PER_POOL,
        "Server connections logging in (SHOW POOLS sv_login)."
    );

    // SHOW STATS, per database.
    STATS_QUERIES_POOLED_TOTAL = Counter(
        "pgbouncer_stats_queries_pooled_total",
        PER_DATABASE,
        "SQL queries pooled by PgBouncer (SHOW STATS total_query_count)."
    );
    STATS_QUERIES_DURATION_SECONDS_TOTAL = Counter(
        "pgbouncer_stats_queries_duration_seconds_total",
        PER_DATABASE,
        "Seconds PgBouncer spent actively connected to PostgreSQL executing queries (SHOW STATS total_query_time)."
    );
    STATS_CLIENT_WAIT_SECONDS_TOTAL = Counter(
        "pgbouncer_stats_client_wait_seconds_total",
        PER_DATABASE,
        "Seconds clients spent waiting for a server connection (SHOW STATS total_wait_time)."
    );
    STATS_SQL_TRANSACTIONS_POOLED_TOTAL = Counter(
        "pgbouncer_stats_sql_transactions_pooled_total",
        PER_DATABASE,
        "SQL transactions pooled by PgBouncer (SHOW STATS total_xact_count)."
    );
    STATS_SERVER_IN_TRANSACTION_SECONDS_TOTAL = Counter(
        "pgbouncer_stats_server_in_transaction_seconds_total",
        PER_DATABASE,
        "Seconds PgBouncer spent connected to PostgreSQL in a transaction, idle in transaction or executing queries (SHOW STATS total_xact_time)."
    );
    STATS_RECEIVED_BYTES_TOTAL = Counter(
        "pgbouncer_stats_received_bytes_total",
        PER_DATABASE,
        "Bytes of network traffic received by PgBouncer from clients (SHOW STATS total_received)."
    );
    STATS_SENT_BYTES_TOTAL = Counter(
        "pgbouncer_stats_sent_bytes_total",
        PER_DATABASE,
        "Bytes of network traffic sent by PgBouncer to clients (SHOW STATS total_sent)."
    );

    // SHOW DATABASES, per database.
    DATABASES_POOL_SIZE = Gauge(
        "pgbouncer_databases_pool_size",
        PER_DATABASE,
        "Most server connections per (database, user) pool (SHOW DATABASES pool_size)."
    );
    DATABASES_MIN_POOL_SIZE = Gauge(
        "pgbouncer_databases_min_pool_size",
        PER_DATABASE,
        "Server connections kept open per pool (SHOW DATABASES min_pool_size)."
    );
    DATABASES_RESERVE_POOL = Gauge(
        "pgbouncer_databases_reserve_pool",
        PER_DATABASE,
        "Extra server connections allowed per pool after reserve_pool_timeout (SHOW DATABASES reserve_pool)."
    );
    DATABASES_MAX_CONNECTIONS = Gauge(
        "pgbouncer_databases_max_connections",
        PER_DATABASE,
        "Most server connections to this database, 0 = unlimited (SHOW DATABASES max_connections)."
    );
    DATABASES_CURRENT_CONNECTIONS = Gauge(
        "pgbouncer_databases_current_connections",
        PER_DATABASE,
        "Server connections to this database (SHOW DATABASES current_connections)."
    );
    DATABASES_PAUSED = Gauge(
        "pgbouncer_databases_paused",
        PER_DATABASE,
        "1 if the database is PAUSEd (SHOW DATABASES paused); the number of paused databases for \"other\"."
    );
    DATABASES_DISABLED = Gauge(
        "pgbouncer_databases_disabled",
        PER_DATABASE,
        "1 if the database is DISABLEd (SHOW DATABASES disabled); the number of disabled databases for \"other\"."
    );
    POOLS_CLIENT_MAXWAIT_SECONDS = Gauge(
        "pgbouncer_pools_client_maxwait_seconds",
        PER_POOL,
        "Seconds the oldest waiting client has waited, with microsecond precision (SHOW POOLS maxwait + maxwait_us)."
    );
    VERSION_INFO = Gauge(
        "pgbouncer_version_info",
        ["target", "version"],
        "A constant 1 labelled with the PgBouncer version (SHOW VERSION)."
    );

    // perfwatch's own numbers about the bounded series.
    POOLS = Gauge(
        "perfwatch_pgbouncer_pools",
        ["target"],
        "(database, user) pools PgBouncer reported in SHOW POOLS."
    );
    POOLS_FOLDED = Gauge(
        "perfwatch_pgbouncer_pools_folded",
        ["target"],
        "Pools past max_pools, summed into database=\"other\", user=\"other\"."
    );
    DATABASES_FOLDED = Gauge(
        "perfwatch_pgbouncer_databases_folded",
        ["target"],
        "Databases past max_pools, summed into database=\"other\" (SHOW DATABASES, SHOW STATS)."
    );
    MALFORMED_VALUES_TOTAL = Counter(
        "perfwatch_pgbouncer_malformed_values_total",
        ["target"],
        "SHOW values perfwatch could not parse as numbers (skipped)."
    );
}
