#!/usr/bin/env bash
# Measures the load perfwatch's [[mysql]] collector puts on a MariaDB server,
# side by side with Debian's prometheus-mysqld-exporter, against ONE
# throwaway MariaDB, in ONE run.
#
# Measured:
#   - Questions and Connections per poll (perfwatch) and per scrape
#     (mysqld_exporter), from SHOW GLOBAL STATUS before/after, with the
#     measuring client's own statement and connection calibrated out.
#     perfwatch polls on its own interval, so its window is counted in polls
#     (perfwatch_polls_total) and aligned on poll ends. perfwatch is measured
#     twice: base polls (connection stats only) and polls that all include
#     the index/table pass (index_interval shorter than the interval).
#   - Exporter RSS (VmRSS) after the measurement, and the median of
#     sequential single scrapes (curl).
#
# Goals (from the issue): <= 6 statements per poll for connection stats,
# 0 new connections per poll.
#
# The server is mariadb-install-db + mariadbd in a temp dir on a free
# 127.0.0.1 port (own tmpdir; --user=root when run as root, like the test
# bench, crates/perfwatch-testbench). Everything this script starts is killed on exit.
#
# Usage: scripts/bench-mysql.sh [--no-build] [--keep]
#   --no-build  use target/release/perfwatch as it is (default: cargo build --release)
#   --keep      keep the work dir (configs, logs) after the run
# Environment: BENCH_ROWS (20000 trips), BENCH_SCRAPES (20), BENCH_POLLS (10).
#
# Exit codes: 0 all figures measured; 1 a step failed (the message says
# which); 2 bad usage.
set -euo pipefail

BENCH_NAME=bench-mysql
# shellcheck source=scripts/lib/bench-common.sh
. "$(dirname "$0")/lib/bench-common.sh"
build=1
for arg in "$@"; do bench_flag "$arg" "--no-build --keep"; done
NROWS=${BENCH_ROWS:-20000}
NSCRAPES=${BENCH_SCRAPES:-20}
NPOLLS=${BENCH_POLLS:-10}

need_bin mariadbd mariadb-server
need_bin mariadb-install-db mariadb-server
need_bin mariadb mariadb-client
need_bin prometheus-mysqld-exporter prometheus-mysqld-exporter
need_bin curl curl
need_bin cargo "rustup"
need_bins_done "install them (or run scripts/install-test-deps.sh)"

BENCH_KILL_WAIT=100
bench_workdir perfwatch-bench-mysql
build_perfwatch "$build"

# ------------------------------------------------------------------ mariadb
start_mariadb "$WORK/db" "performance_schema = ON
max_connections = 50
innodb_buffer_pool_size = 64M
innodb_flush_log_at_trx_commit = 2"
mariadb_load_app "$NROWS"
mariadb_calibrate
rss_mib() { mib "$(rss_kb "$1")"; }

# ------------------------------------------------------------ mysqld_exporter
start_mysqld_exporter
EXP_PID=$MEXP_PID EXP_URL=$MEXP_URL
curl -s --max-time 10 "$EXP_URL" >"$WORK/exporter.metrics"
grep -q '^mysql_up 1' "$WORK/exporter.metrics" || die "mysqld_exporter reports $(grep '^mysql_up' "$WORK/exporter.metrics")"
mariadb_snapshot "$WORK/exp0"
sequential_scrapes "$EXP_URL" "$NSCRAPES" "$WORK/exporter.scrapes"
mariadb_snapshot "$WORK/exp1"
read -r EXP_Q EXP_C < <(mariadb_per_unit "$WORK/exp0" "$WORK/exp1" "$NSCRAPES")
EXP_RSS=$(rss_mib "$EXP_PID")
EXP_MEDIAN=$(median_ms "$WORK/exporter.scrapes" 2)
EXP_VERSION=$(mysqld_exporter_version)
stop_pid "$EXP_PID"
log "mysqld_exporter: $EXP_Q questions, $EXP_C connections per scrape; RSS $EXP_RSS MiB"

# ---------------------------------------------------------------- perfwatch
# measure NAME INDEX_INTERVAL: sets PW_Q PW_C PW_RSS PW_MEDIAN
measure() {
    local name=$1 url p0 p1 pid
    {
        echo "[global]"
        echo 'interval = "1s"'
        echo 'timeout = "800ms"'
        echo "[[mysql]]"
        echo 'name = "bench"'
        echo "dsn = \"mysql://bench:bench@127.0.0.1:$DB_PORT/app\""
        echo "index_interval = \"$2\""
    } >"$WORK/$name.toml"
    "$PERFWATCH" check-config "$WORK/$name.toml" >/dev/null || die "perfwatch check-config $WORK/$name.toml failed"
    start_perfwatch "$name" "$WORK/$name.toml"
    pid=$PW_PID url=$PW_URL
    # Skip the first polls (the connection and the first index pass), then
    # snapshot right after a poll ended (a poll takes milliseconds, polls
    # start every second).
    p0=$(wait_poll "$url" bench 3)
    p0=$(wait_poll "$url" bench $((p0 + 1)))
    mariadb_snapshot "$WORK/$name.0"
    p1=$(wait_poll "$url" bench $((p0 + NPOLLS)))
    mariadb_snapshot "$WORK/$name.1"
    curl -s "$url/metrics" >"$WORK/$name.metrics"
    grep -q 'perfwatch_target_up{collector="mysql",target="bench"} 1' "$WORK/$name.metrics" || die "perfwatch ($name) target not up; see $WORK/$name.log"
    read -r PW_Q PW_C < <(mariadb_per_unit "$WORK/$name.0" "$WORK/$name.1" $((p1 - p0)))
    sequential_scrapes "$url/metrics" "$NSCRAPES" "$WORK/$name.scrapes"
    PW_MEDIAN=$(median_ms "$WORK/$name.scrapes" 2)
    PW_RSS=$(rss_mib "$pid")
    stop_pid "$pid"
    log "perfwatch ($name): $PW_Q questions, $PW_C connections per poll over $((p1 - p0)) polls; RSS $PW_RSS MiB"
}
measure base 1h
BASE_Q=$PW_Q BASE_C=$PW_C BASE_RSS=$PW_RSS BASE_MEDIAN=$PW_MEDIAN
measure index 1ms
IDX_Q=$PW_Q IDX_C=$PW_C IDX_RSS=$PW_RSS

goal() { awk "BEGIN { exit !($1) }" && echo met || echo "**MISSED**"; }
PW_VERSION=$(perfwatch_version)
GIT_REV=$(git_rev)
CPU_MODEL=$(cpu_model)
cat <<EOF

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) × ${CPU_MODEL:-unknown CPU}, Linux $(uname -r).
perfwatch $PW_VERSION (git $GIT_REV), MariaDB $DB_VERSION, prometheus-mysqld-exporter $EXP_VERSION (Debian package, default collectors).
Reproduce: \`scripts/bench-mysql.sh\`. One throwaway MariaDB (performance_schema ON, $NROWS trips), user \`bench\` with PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* for both exporters.

| per poll / scrape | Questions | new connections |
|---|---:|---:|
| perfwatch, connection stats (base poll) | $BASE_Q | $BASE_C |
| perfwatch, every poll with the index/table pass | $IDX_Q | $IDX_C |
| mysqld_exporter, one scrape | $EXP_Q | $EXP_C |

| | perfwatch | mysqld_exporter |
|---|---:|---:|
| RSS after the run (MiB) | $BASE_RSS (base) / $IDX_RSS (index pass) | $EXP_RSS |
| single /metrics scrape, median of $NSCRAPES (ms) | $BASE_MEDIAN | $EXP_MEDIAN |

| goal | result |
|---|---|
| ≤ 6 statements per poll for connection stats | $(goal "$BASE_Q <= 6") ($BASE_Q) |
| 0 new connections per poll | $(goal "$BASE_C == 0 && $IDX_C == 0") ($BASE_C / $IDX_C) |
EOF
