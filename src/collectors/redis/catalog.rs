//! Every family the Redis collector exports, declared once (see
//! [`crate::catalog`]). Raw INFO facts keep redis_exporter's names and labels
//! (plus `target`) so its dashboards work; perfwatch's own judgements are
//! under `perfwatch_redis_`. The `perfwatch_cache_` hit-ratio families are
//! declared here and also filled by the HTTP collector (the app's own cache
//! counters, per `key_prefix`).

crate::metric_catalog! {
    /// Everything the Redis collector exports (and the cache hit-ratio
    /// families the HTTP collector fills too).
    pub const ALL;

    /// redis_exporter's up gauge, filled by the engine from each poll's
    /// outcome (see `KindInfo::peer_up`): the redis-mixin's `RedisDown`.
    UP = Gauge("redis_up", ["target"], "Whether the last poll reached the Redis server (1) or not (0); perfwatch_target_up says whether it also succeeded.");

    // INFO fields exported as they are (`GAUGES` / `COUNTERS` in `mod.rs`).
    UPTIME_IN_SECONDS = Gauge("redis_uptime_in_seconds", ["target"], "Seconds since the Redis server started.");
    CONNECTED_CLIENTS = Gauge("redis_connected_clients", ["target"], "Client connections (excluding replicas).");
    BLOCKED_CLIENTS = Gauge("redis_blocked_clients", ["target"], "Clients blocked in a blocking call.");
    CONFIG_MAXCLIENTS = Gauge("redis_config_maxclients", ["target"], "The maxclients setting.");
    MEMORY_USED_BYTES = Gauge("redis_memory_used_bytes", ["target"], "Bytes allocated by Redis.");
    MEMORY_USED_RSS_BYTES = Gauge("redis_memory_used_rss_bytes", ["target"], "Resident set size of the Redis process.");
    MEMORY_USED_PEAK_BYTES = Gauge("redis_memory_used_peak_bytes", ["target"], "Peak bytes allocated by Redis.");
    MEMORY_USED_LUA_BYTES = Gauge("redis_memory_used_lua_bytes", ["target"], "Bytes used by the Lua engine.");
    MEMORY_MAX_BYTES = Gauge("redis_memory_max_bytes", ["target"], "The maxmemory setting (0 = no limit).");
    MEM_FRAGMENTATION_RATIO = Gauge("redis_mem_fragmentation_ratio", ["target"], "used_memory_rss / used_memory.");
    CONNECTED_SLAVES = Gauge("redis_connected_slaves", ["target"], "Connected replicas.");
    PUBSUB_CHANNELS = Gauge("redis_pubsub_channels", ["target"], "Pub/sub channels with subscribers.");
    RDB_CHANGES_SINCE_LAST_SAVE = Gauge("redis_rdb_changes_since_last_save", ["target"], "Writes since the last RDB save.");
    LATEST_FORK_SECONDS = Gauge("redis_latest_fork_seconds", ["target"], "Duration of the latest fork.");
    KEYSPACE_HITS_TOTAL = Counter("redis_keyspace_hits_total", ["target"], "Successful key lookups.");
    KEYSPACE_MISSES_TOTAL = Counter("redis_keyspace_misses_total", ["target"], "Failed key lookups.");
    EVICTED_KEYS_TOTAL = Counter("redis_evicted_keys_total", ["target"], "Keys evicted because of maxmemory.");
    EXPIRED_KEYS_TOTAL = Counter("redis_expired_keys_total", ["target"], "Keys that expired.");
    CONNECTIONS_RECEIVED_TOTAL = Counter("redis_connections_received_total", ["target"], "Connections accepted.");
    REJECTED_CONNECTIONS_TOTAL = Counter("redis_rejected_connections_total", ["target"], "Connections rejected because of maxclients.");
    COMMANDS_PROCESSED_TOTAL = Counter("redis_commands_processed_total", ["target"], "Commands processed.");
    NET_INPUT_BYTES_TOTAL = Counter("redis_net_input_bytes_total", ["target"], "Bytes read from the network.");
    NET_OUTPUT_BYTES_TOTAL = Counter("redis_net_output_bytes_total", ["target"], "Bytes written to the network.");
    CPU_SYS_SECONDS_TOTAL = Counter("redis_cpu_sys_seconds_total", ["target"], "System CPU used by Redis.");
    CPU_USER_SECONDS_TOTAL = Counter("redis_cpu_user_seconds_total", ["target"], "User CPU used by Redis.");

    // INFO facts with labels of their own.
    INSTANCE_INFO = Gauge(
        "redis_instance_info",
        ["target", "redis_version", "redis_mode", "role", "os", "maxmemory_policy", "run_id"],
        "A constant 1 labelled with facts about the Redis server."
    );
    DB_KEYS = Gauge("redis_db_keys", ["target", "db"], "Keys in the database.");
    DB_KEYS_EXPIRING = Gauge("redis_db_keys_expiring", ["target", "db"], "Keys with a TTL in the database.");
    DB_AVG_TTL_SECONDS = Gauge(
        "redis_db_avg_ttl_seconds",
        ["target", "db"],
        "Average TTL of keys with a TTL (Redis' estimate)."
    );
    COMMANDS_TOTAL = Counter("redis_commands_total", ["target", "cmd"], "Calls per command.");
    COMMANDS_DURATION_SECONDS_TOTAL = Counter(
        "redis_commands_duration_seconds_total",
        ["target", "cmd"],
        "Time spent per command."
    );
    COMMANDS_REJECTED_CALLS_TOTAL = Counter(
        "redis_commands_rejected_calls_total",
        ["target", "cmd"],
        "Rejected calls per command."
    );
    COMMANDS_FAILED_CALLS_TOTAL = Counter(
        "redis_commands_failed_calls_total",
        ["target", "cmd"],
        "Failed calls per command."
    );
    ERRORS_TOTAL = Counter(
        "redis_errors_total",
        ["target", "err"],
        "Error replies by error prefix (OOM = writes rejected at maxmemory)."
    );
    SLOWLOG_LENGTH = Gauge("redis_slowlog_length", ["target"], "Entries in the Redis SLOWLOG.");
    SLOWLOG_LAST_ID = Gauge("redis_slowlog_last_id", ["target"], "Id of the newest SLOWLOG entry.");

    // perfwatch's judgements.
    DB_KEYS_WITHOUT_TTL = Gauge(
        "perfwatch_redis_db_keys_without_ttl",
        ["target", "db"],
        "Keys in the database that never expire (keys - expires): the seeds' \"cache never expires\" bug."
    );
    MEMORY_USED_RATIO = Gauge(
        "perfwatch_redis_memory_used_ratio",
        ["target"],
        "used_memory / maxmemory (absent when maxmemory is 0, i.e. no limit)."
    );
    CLIENTS_USED_RATIO = Gauge(
        "perfwatch_redis_clients_used_ratio",
        ["target"],
        "connected_clients / maxclients."
    );
    INFO_MALFORMED_LINES_TOTAL = Counter(
        "perfwatch_redis_info_malformed_lines_total",
        ["target"],
        "INFO lines perfwatch could not parse (skipped)."
    );
    EVICTED_KEYS_PER_SECOND = Gauge(
        "perfwatch_redis_evicted_keys_per_second",
        ["target", "window"],
        "Keys evicted per second over the window (from redis_evicted_keys_total deltas)."
    );
    SLOWLOG_DURATION_SECONDS = Histogram(
        "perfwatch_redis_slowlog_duration_seconds",
        ["target", "cmd"],
        "Execution time of commands that entered the Redis SLOWLOG since perfwatch started, by command."
    );

    // The key sampler (`keys.rs`).
    KEY_SAMPLER_CYCLE_COMPLETE = Gauge(
        "perfwatch_redis_key_sampler_cycle_complete",
        ["target", "db"],
        "1 when the key group numbers come from a complete SCAN cycle (exact), 0 while the first cycle is still running (partial)."
    );
    KEY_SAMPLER_CYCLE_DURATION_SECONDS = Gauge(
        "perfwatch_redis_key_sampler_cycle_duration_seconds",
        ["target", "db"],
        "How long the last complete SCAN cycle over the keyspace took, across polls."
    );
    KEY_SAMPLER_KEYS_SCANNED_TOTAL = Counter(
        "perfwatch_redis_key_sampler_keys_scanned_total",
        ["target", "db"],
        "Keys examined by the key sampler."
    );
    KEY_SAMPLER_CYCLES_TOTAL = Counter(
        "perfwatch_redis_key_sampler_cycles_total",
        ["target", "db"],
        "Complete SCAN cycles of the key sampler."
    );
    KEY_GROUP_KEYS = Gauge(
        "perfwatch_redis_key_group_keys",
        ["target", "db", "prefix"],
        "Keys per prefix group (from the last complete SCAN cycle; see perfwatch_redis_key_sampler_cycle_complete)."
    );
    KEY_GROUP_KEYS_WITHOUT_TTL = Gauge(
        "perfwatch_redis_key_group_keys_without_ttl",
        ["target", "db", "prefix"],
        "Keys per prefix group that never expire (no TTL)."
    );
    KEY_GROUP_MEMORY_BYTES = Gauge(
        "perfwatch_redis_key_group_memory_bytes",
        ["target", "db", "prefix"],
        "Estimated memory of a prefix group: mean MEMORY USAGE of sampled keys times the key count."
    );
    KEY_GROUP_TTL_SECONDS = Histogram(
        "perfwatch_redis_key_group_ttl_seconds",
        ["target", "db", "prefix"],
        "Remaining TTL of keys that have one, per prefix group, at the time they were scanned."
    );

    // Cache hit ratio windows (`hit_ratio.rs`), filled by Redis (the whole
    // keyspace: `key_prefix=""`, which Prometheus stores as no label) and by
    // the HTTP collector (the app's own counters, one series per key prefix).
    CACHE_HIT_RATIO = Gauge(
        "perfwatch_cache_hit_ratio",
        ["target", "key_prefix", "window"],
        "Cache hits / (hits + misses) over the window; absent when the window had no lookups. window=\"total\" is since the counters were last reset."
    );
    CACHE_LOOKUPS_IN_WINDOW = Gauge(
        "perfwatch_cache_lookups_in_window",
        ["target", "key_prefix", "window"],
        "Cache lookups (hits + misses) within the window of perfwatch_cache_hit_ratio."
    );
    CACHE_WINDOW_COVERED_SECONDS = Gauge(
        "perfwatch_cache_window_covered_seconds",
        ["target", "key_prefix", "window"],
        "Seconds of history behind the window (shorter than the window right after start or a counter reset)."
    );
}
