//! Every family the Redis collector exports, declared once (see
//! [`crate::catalog`]). Raw INFO facts keep redis_exporter's names and labels
//! (plus `target`) so its dashboards work; perfwatch's own judgements are
//! under `perfwatch_redis_`. The `perfwatch_cache_` hit-ratio families are
//! declared here and also filled by the HTTP collector (the app's own cache
//! counters, per `key_prefix`).

// Label sets several families share.
const PER_REPLICA: &[&str] = &["target", "slave_ip", "slave_port", "slave_state"];
const PER_PRIMARY: &[&str] = &["target", "master_host", "master_port"];
const PER_DB: &[&str] = &["target", "db"];
const PER_COMMAND: &[&str] = &["target", "cmd"];
const PER_PREFIX: &[&str] = &["target", "db", "prefix"];
const PER_KEY: &[&str] = &["target", "db", "key"];
const PER_SENTINEL_PRIMARY: &[&str] = &["target", "sentinel", "master_name", "master_address"];
const PER_CLUSTER_NODE: &[&str] = &["target", "node", "role", "shard"];
const PER_HOT_PREFIX_WINDOW: &[&str] = &["target", "key_prefix", "window"];

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
    TOTAL_SYSTEM_MEMORY_BYTES = Gauge("redis_total_system_memory_bytes", ["target"], "Memory of the host Redis runs on, as Redis reads it (redis_exporter exports it with -include-system-metrics only).");
    LOADING_DUMP_FILE = Gauge("redis_loading_dump_file", ["target"], "1 while Redis loads its RDB or AOF file.");

    // Persistence. The `*_status` families are 1 for `ok`, 0 otherwise (as
    // redis_exporter); the durations are -1 when there was none.
    RDB_BGSAVE_IN_PROGRESS = Gauge("redis_rdb_bgsave_in_progress", ["target"], "1 while an RDB save runs.");
    RDB_LAST_SAVE_TIMESTAMP_SECONDS = Gauge("redis_rdb_last_save_timestamp_seconds", ["target"], "Unix time of the last successful RDB save.");
    RDB_LAST_BGSAVE_STATUS = Gauge("redis_rdb_last_bgsave_status", ["target"], "1 when the last RDB save succeeded, 0 when it failed.");
    RDB_LAST_BGSAVE_DURATION_SECONDS = Gauge("redis_rdb_last_bgsave_duration_seconds", ["target"], "Duration of the last RDB save (-1: none yet). redis_exporter: redis_rdb_last_bgsave_duration_sec.");
    RDB_CURRENT_BGSAVE_DURATION_SECONDS = Gauge("redis_rdb_current_bgsave_duration_seconds", ["target"], "Duration of the running RDB save (-1: none). redis_exporter: redis_rdb_current_bgsave_duration_sec.");
    RDB_LAST_COW_SIZE_BYTES = Gauge("redis_rdb_last_cow_size_bytes", ["target"], "Copy-on-write memory of the last RDB save.");
    AOF_ENABLED = Gauge("redis_aof_enabled", ["target"], "1 when the append-only file is on.");
    AOF_REWRITE_IN_PROGRESS = Gauge("redis_aof_rewrite_in_progress", ["target"], "1 while an AOF rewrite runs.");
    AOF_REWRITE_SCHEDULED = Gauge("redis_aof_rewrite_scheduled", ["target"], "1 when an AOF rewrite waits for an RDB save to end.");
    AOF_LAST_REWRITE_DURATION_SECONDS = Gauge("redis_aof_last_rewrite_duration_seconds", ["target"], "Duration of the last AOF rewrite (-1: none yet). redis_exporter: redis_aof_last_rewrite_duration_sec.");
    AOF_CURRENT_REWRITE_DURATION_SECONDS = Gauge("redis_aof_current_rewrite_duration_seconds", ["target"], "Duration of the running AOF rewrite (-1: none). redis_exporter: redis_aof_current_rewrite_duration_sec.");
    AOF_LAST_COW_SIZE_BYTES = Gauge("redis_aof_last_cow_size_bytes", ["target"], "Copy-on-write memory of the last AOF rewrite.");
    AOF_LAST_BGREWRITE_STATUS = Gauge("redis_aof_last_bgrewrite_status", ["target"], "1 when the last AOF rewrite succeeded, 0 when it failed.");
    AOF_LAST_WRITE_STATUS = Gauge("redis_aof_last_write_status", ["target"], "1 when the last write to the AOF succeeded, 0 when it failed.");
    AOF_CURRENT_SIZE_BYTES = Gauge("redis_aof_current_size_bytes", ["target"], "Size of the AOF (only while AOF is on).");
    AOF_BASE_SIZE_BYTES = Gauge("redis_aof_base_size_bytes", ["target"], "Size of the AOF at the last rewrite or start (only while AOF is on).");
    AOF_PENDING_REWRITE = Gauge("redis_aof_pending_rewrite", ["target"], "1 when an AOF rewrite is pending (only while AOF is on).");
    AOF_BUFFER_LENGTH = Gauge("redis_aof_buffer_length", ["target"], "Bytes in the AOF buffer (only while AOF is on).");
    AOF_REWRITE_BUFFER_LENGTH = Gauge("redis_aof_rewrite_buffer_length", ["target"], "Bytes in the AOF rewrite buffer (Redis < 7, only while AOF is on).");
    AOF_PENDING_BIO_FSYNC = Gauge("redis_aof_pending_bio_fsync", ["target"], "fsync jobs queued in the background I/O (only while AOF is on).");
    AOF_DELAYED_FSYNC = Gauge("redis_aof_delayed_fsync", ["target"], "Delayed fsyncs of the AOF (only while AOF is on).");

    // Replication, both roles.
    MASTER_REPL_OFFSET = Gauge("redis_master_repl_offset", ["target"], "Replication offset of this server (a primary's own; a replica's copy of its primary's).");
    SECOND_REPL_OFFSET = Gauge("redis_second_repl_offset", ["target"], "Offset up to which the previous replication id is accepted (-1: none).");
    REPL_BACKLOG_IS_ACTIVE = Gauge("redis_repl_backlog_is_active", ["target"], "1 when the replication backlog is allocated.");
    REPLICATION_BACKLOG_BYTES = Gauge("redis_replication_backlog_bytes", ["target"], "Configured size of the replication backlog.");
    REPL_BACKLOG_FIRST_BYTE_OFFSET = Gauge("redis_repl_backlog_first_byte_offset", ["target"], "Replication offset of the first byte in the backlog.");
    REPL_BACKLOG_HISTORY_BYTES = Gauge("redis_repl_backlog_history_bytes", ["target"], "Bytes of data in the replication backlog.");
    SLAVE_EXPIRES_TRACKED_KEYS = Gauge("redis_slave_expires_tracked_keys", ["target"], "Keys a writable replica tracks for expiry.");
    // Primary side: one series per connected replica (`slaveN:` lines).
    CONNECTED_SLAVE_OFFSET_BYTES = Gauge(
        "redis_connected_slave_offset_bytes",
        PER_REPLICA,
        "Replication offset a connected replica acknowledged."
    );
    CONNECTED_SLAVE_LAG_SECONDS = Gauge(
        "redis_connected_slave_lag_seconds",
        PER_REPLICA,
        "Seconds since a connected replica last acknowledged."
    );
    // Replica side.
    MASTER_LINK_UP = Gauge(
        "redis_master_link_up",
        PER_PRIMARY,
        "1 when the replica's link to its primary is up."
    );
    MASTER_LAST_IO_SECONDS_AGO = Gauge(
        "redis_master_last_io_seconds_ago",
        PER_PRIMARY,
        "Seconds since the replica last heard from its primary (-1 while the link is down)."
    );
    MASTER_SYNC_IN_PROGRESS = Gauge(
        "redis_master_sync_in_progress",
        PER_PRIMARY,
        "1 while the replica syncs from its primary."
    );
    SLAVE_REPL_OFFSET = Gauge(
        "redis_slave_repl_offset",
        PER_PRIMARY,
        "Replication offset the replica has processed."
    );
    SLAVE_PRIORITY = Gauge("redis_slave_priority", ["target"], "The replica's priority for promotion (0: never).");
    SLAVE_INFO = Gauge(
        "redis_slave_info",
        ["target", "master_host", "master_port", "read_only"],
        "A constant 1 on a replica, labelled with its primary and read-only setting."
    );

    // INFO facts with labels of their own.
    INSTANCE_INFO = Gauge(
        "redis_instance_info",
        [
            "target",
            "redis_version",
            "redis_mode",
            "role",
            "os",
            "maxmemory_policy",
            "run_id",
            "redis_build_id",
            "process_id",
            "tcp_port"
        ],
        "A constant 1 labelled with facts about the Redis server."
    );
    DB_KEYS = Gauge("redis_db_keys", PER_DB, "Keys in the database.");
    DB_KEYS_EXPIRING = Gauge("redis_db_keys_expiring", PER_DB, "Keys with a TTL in the database.");
    DB_AVG_TTL_SECONDS = Gauge(
        "redis_db_avg_ttl_seconds",
        PER_DB,
        "Average TTL of keys with a TTL (Redis' estimate)."
    );
    COMMANDS_TOTAL = Counter("redis_commands_total", PER_COMMAND, "Calls per command.");
    COMMANDS_DURATION_SECONDS_TOTAL = Counter(
        "redis_commands_duration_seconds_total",
        PER_COMMAND,
        "Time spent per command."
    );
    COMMANDS_REJECTED_CALLS_TOTAL = Counter(
        "redis_commands_rejected_calls_total",
        PER_COMMAND,
        "Rejected calls per command."
    );
    COMMANDS_FAILED_CALLS_TOTAL = Counter(
        "redis_commands_failed_calls_total",
        PER_COMMAND,
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
        PER_DB,
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
        PER_COMMAND,
        "Execution time of commands that entered the Redis SLOWLOG since perfwatch started, by command."
    );

    // The key sampler (`keys.rs`).
    KEY_SAMPLER_CYCLE_COMPLETE = Gauge(
        "perfwatch_redis_key_sampler_cycle_complete",
        PER_DB,
        "1 when the key group numbers come from a complete SCAN cycle (exact), 0 while the first cycle is still running (partial)."
    );
    KEY_SAMPLER_CYCLE_DURATION_SECONDS = Gauge(
        "perfwatch_redis_key_sampler_cycle_duration_seconds",
        PER_DB,
        "How long the last complete SCAN cycle over the keyspace took, across polls."
    );
    KEY_SAMPLER_KEYS_SCANNED_TOTAL = Counter(
        "perfwatch_redis_key_sampler_keys_scanned_total",
        PER_DB,
        "Keys examined by the key sampler."
    );
    KEY_SAMPLER_CYCLES_TOTAL = Counter(
        "perfwatch_redis_key_sampler_cycles_total",
        PER_DB,
        "Complete SCAN cycles of the key sampler."
    );
    KEY_GROUP_KEYS = Gauge(
        "perfwatch_redis_key_group_keys",
        PER_PREFIX,
        "Keys per prefix group (from the last complete SCAN cycle; see perfwatch_redis_key_sampler_cycle_complete)."
    );
    KEY_GROUP_KEYS_WITHOUT_TTL = Gauge(
        "perfwatch_redis_key_group_keys_without_ttl",
        PER_PREFIX,
        "Keys per prefix group that never expire (no TTL)."
    );
    KEY_GROUP_MEMORY_BYTES = Gauge(
        "perfwatch_redis_key_group_memory_bytes",
        PER_PREFIX,
        "Estimated memory of a prefix group: mean MEMORY USAGE of sampled keys times the key count."
    );
    KEY_GROUP_TTL_SECONDS = Histogram(
        "perfwatch_redis_key_group_ttl_seconds",
        PER_PREFIX,
        "Remaining TTL of keys that have one, per prefix group, at the time they were scanned."
    );

    // Key checks (`key_checks.rs`): redis_exporter's -check-keys and
    // -check-single-keys. `key` values are the keys the config names or its
    // patterns match, at most `max_keys` of them.
    KEY_SIZE = Gauge(
        "redis_key_size",
        PER_KEY,
        "Length of a checked key: elements of a list, set, sorted set, hash or stream, bytes of a string, cardinality of a HyperLogLog; 0 for a named key that does not exist."
    );
    KEY_VALUE = Gauge(
        "redis_key_value",
        PER_KEY,
        "Value of a checked string key that holds a number."
    );
    KEY_CHECKS_OVER_LIMIT = Gauge(
        "perfwatch_redis_key_checks_over_limit",
        ["target"],
        "Keys named or matched by key_checks that were not checked this poll because of max_keys (0 when every key was checked)."
    );
    KEY_CHECK_PATTERN_COMPLETE = Gauge(
        "perfwatch_redis_key_check_pattern_complete",
        ["target", "db", "pattern"],
        "1 once a key_checks pattern's SCAN has gone once over the whole database, 0 before (its matches so far are partial)."
    );
    KEY_CHECK_ERRORS_TOTAL = Counter(
        "perfwatch_redis_key_check_errors_total",
        ["target"],
        "Key checks that got an error reply (database out of range, command denied by ACL); those keys are left out."
    );
    REPLICAS_NOT_EXPORTED = Gauge(
        "perfwatch_redis_replicas_not_exported",
        ["target"],
        "Connected replicas beyond the first 64 (slaveN lines), whose redis_connected_slave_* series are left out."
    );

    // Sentinel (`sentinel.rs`): each configured sentinel's view of the
    // primary, with redis_exporter's names and labels plus `target` and
    // `sentinel` (the sentinel asked, as configured).
    SENTINEL_MASTER_STATUS = Gauge(
        "redis_sentinel_master_status",
        ["target", "sentinel", "master_name", "master_address", "master_status"],
        "1 when the sentinel sees the primary as ok, 0 when it sees it down (master_status sdown: by this sentinel, odown: agreed by a quorum)."
    );
    SENTINEL_MASTER_SLAVES = Gauge(
        "redis_sentinel_master_slaves",
        PER_SENTINEL_PRIMARY,
        "Replicas of the primary the sentinel knows."
    );
    SENTINEL_MASTER_OK_SLAVES = Gauge(
        "redis_sentinel_master_ok_slaves",
        PER_SENTINEL_PRIMARY,
        "Replicas of the primary the sentinel knows and does not see down."
    );
    SENTINEL_MASTER_SENTINELS = Gauge(
        "redis_sentinel_master_sentinels",
        PER_SENTINEL_PRIMARY,
        "Sentinels monitoring the primary as this sentinel knows them, itself included."
    );
    SENTINEL_MASTER_OK_SENTINELS = Gauge(
        "redis_sentinel_master_ok_sentinels",
        PER_SENTINEL_PRIMARY,
        "Sentinels monitoring the primary that this sentinel does not see down, itself included."
    );
    SENTINEL_MASTER_SETTING_CKQUORUM = Gauge(
        "redis_sentinel_master_setting_ckquorum",
        PER_SENTINEL_PRIMARY,
        "The quorum configured for the primary: sentinels that must agree it is down."
    );
    SENTINEL_MASTER_CKQUORUM_STATUS = Gauge(
        "redis_sentinel_master_ckquorum_status",
        ["target", "sentinel", "master_name", "message"],
        "1 when SENTINEL CKQUORUM says the quorum and a failover's majority can be reached, 0 when not (message: the sentinel's answer)."
    );
    SENTINEL_UP = Gauge(
        "perfwatch_redis_sentinel_up",
        ["target", "sentinel"],
        "1 when the sentinel answered this poll's questions within its share of the poll timeout, 0 when not."
    );
    SENTINEL_RESOLVED_MASTER_INFO = Gauge(
        "perfwatch_redis_sentinel_resolved_master_info",
        ["target", "master_name", "master_address"],
        "A constant 1 labelled with the primary perfwatch polls, as the sentinels resolved it."
    );
    SENTINEL_MASTER_ADDRESSES = Gauge(
        "perfwatch_redis_sentinel_master_addresses",
        ["target"],
        "Distinct primary addresses the answering sentinels report: 1 when they agree, more during a failover or a split view, 0 when none knows the primary."
    );
    SENTINEL_FAILOVERS_TOTAL = Counter(
        "perfwatch_redis_sentinel_failovers_total",
        ["target"],
        "Times the resolved primary changed and perfwatch moved to the new one."
    );

    // Redis Cluster (`cluster.rs`). The cluster's own state from `CLUSTER
    // INFO`, with redis_exporter's names (plus `target`).
    CLUSTER_STATE = Gauge("redis_cluster_state", ["target"], "1 when CLUSTER INFO says cluster_state:ok (every slot served), 0 when fail.");
    CLUSTER_SLOTS_ASSIGNED = Gauge("redis_cluster_slots_assigned", ["target"], "Slots assigned to a node (16384 in a complete cluster).");
    CLUSTER_SLOTS_OK = Gauge("redis_cluster_slots_ok", ["target"], "Slots served by a node that is not seen failing.");
    CLUSTER_SLOTS_PFAIL = Gauge("redis_cluster_slots_pfail", ["target"], "Slots served by a node one node suspects to fail (PFAIL).");
    CLUSTER_SLOTS_FAIL = Gauge("redis_cluster_slots_fail", ["target"], "Slots served by a node the cluster agrees has failed (FAIL).");
    CLUSTER_KNOWN_NODES = Gauge("redis_cluster_known_nodes", ["target"], "Nodes the cluster knows, in any state.");
    CLUSTER_SIZE = Gauge("redis_cluster_size", ["target"], "Primaries serving at least one slot.");
    CLUSTER_CURRENT_EPOCH = Gauge("redis_cluster_current_epoch", ["target"], "The cluster's current epoch (grows with each failover and configuration change).");
    CLUSTER_NODES_NOT_POLLED = Gauge(
        "perfwatch_redis_cluster_nodes_not_polled",
        ["target"],
        "Cluster nodes beyond max_cluster_nodes (by address) that perfwatch does not poll."
    );
    // Per node of a cluster target: redis_exporter's INFO facts under
    // `redis_cluster_node_`, labelled with the node, its role (its own INFO)
    // and its shard (see `cluster.rs` for why these are families of their
    // own).
    CLUSTER_NODE_UP = Gauge(
        "perfwatch_redis_cluster_node_up",
        PER_CLUSTER_NODE,
        "1 when the cluster node answered this poll within its share of the timeout, 0 when not (its role is then the topology's)."
    );
    CLUSTER_NODE_SLOTS = Gauge(
        "perfwatch_redis_cluster_node_slots",
        PER_CLUSTER_NODE,
        "Slots the node's shard serves, as the topology says."
    );
    CLUSTER_NODE_UPTIME_IN_SECONDS = Gauge("redis_cluster_node_uptime_in_seconds", PER_CLUSTER_NODE, "Seconds since the node started (redis_uptime_in_seconds per node).");
    CLUSTER_NODE_CONNECTED_CLIENTS = Gauge("redis_cluster_node_connected_clients", PER_CLUSTER_NODE, "Client connections of the node (redis_connected_clients per node).");
    CLUSTER_NODE_MEMORY_USED_BYTES = Gauge("redis_cluster_node_memory_used_bytes", PER_CLUSTER_NODE, "Bytes allocated by the node (redis_memory_used_bytes per node).");
    CLUSTER_NODE_MEMORY_MAX_BYTES = Gauge("redis_cluster_node_memory_max_bytes", PER_CLUSTER_NODE, "The node's maxmemory (0 = no limit).");
    CLUSTER_NODE_CONNECTED_SLAVES = Gauge("redis_cluster_node_connected_slaves", PER_CLUSTER_NODE, "Replicas connected to the node.");
    CLUSTER_NODE_MASTER_REPL_OFFSET = Gauge("redis_cluster_node_master_repl_offset", PER_CLUSTER_NODE, "The node's replication offset.");
    CLUSTER_NODE_MASTER_LINK_UP = Gauge("redis_cluster_node_master_link_up", PER_CLUSTER_NODE, "On a replica node: 1 when its link to its primary is up.");
    CLUSTER_NODE_DB_KEYS = Gauge("redis_cluster_node_db_keys", PER_CLUSTER_NODE, "Keys on the node (a cluster has database 0 only).");
    CLUSTER_NODE_KEYSPACE_HITS_TOTAL = Counter("redis_cluster_node_keyspace_hits_total", PER_CLUSTER_NODE, "Successful key lookups on the node.");
    CLUSTER_NODE_KEYSPACE_MISSES_TOTAL = Counter("redis_cluster_node_keyspace_misses_total", PER_CLUSTER_NODE, "Failed key lookups on the node.");
    CLUSTER_NODE_EVICTED_KEYS_TOTAL = Counter("redis_cluster_node_evicted_keys_total", PER_CLUSTER_NODE, "Keys the node evicted because of maxmemory.");
    CLUSTER_NODE_EXPIRED_KEYS_TOTAL = Counter("redis_cluster_node_expired_keys_total", PER_CLUSTER_NODE, "Keys that expired on the node.");
    CLUSTER_NODE_COMMANDS_PROCESSED_TOTAL = Counter("redis_cluster_node_commands_processed_total", PER_CLUSTER_NODE, "Commands the node processed.");
    CLUSTER_NODE_NET_INPUT_BYTES_TOTAL = Counter("redis_cluster_node_net_input_bytes_total", PER_CLUSTER_NODE, "Bytes the node read from the network.");
    CLUSTER_NODE_NET_OUTPUT_BYTES_TOTAL = Counter("redis_cluster_node_net_output_bytes_total", PER_CLUSTER_NODE, "Bytes the node wrote to the network.");

    // Cache hit ratio windows (`hit_ratio.rs`), filled by Redis (the whole
    // keyspace: `key_prefix=""`, which Prometheus stores as no label) and by
    // the HTTP collector (the app's own counters, one series per key prefix).
    CACHE_HIT_RATIO = Gauge(
        "perfwatch_cache_hit_ratio",
        PER_HOT_PREFIX_WINDOW,
        "Cache hits / (hits + misses) over the window; absent when the window had no lookups. window=\"total\" is since the counters were last reset."
    );
    CACHE_LOOKUPS_IN_WINDOW = Gauge(
        "perfwatch_cache_lookups_in_window",
        PER_HOT_PREFIX_WINDOW,
        "Cache lookups (hits + misses) within the window of perfwatch_cache_hit_ratio."
    );
    CACHE_WINDOW_COVERED_SECONDS = Gauge(
        "perfwatch_cache_window_covered_seconds",
        PER_HOT_PREFIX_WINDOW,
        "Seconds of history behind the window (shorter than the window right after start or a counter reset)."
    );
}
