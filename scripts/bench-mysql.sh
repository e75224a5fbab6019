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
# harness). Everything this script starts is killed on exit.
#
# Usage: scripts/bench-mysql.sh [--no-build] [--keep]
#   --no-build  use target/release/perfwatch as it is (default: cargo build --release)
#   --keep      keep the work dir (configs, logs) after the run
# Environment: BENCH_ROWS (20000 trips), BENCH_SCRAPES (20), BENCH_POLLS (10).
#
# Exit codes: 0 all figures measured; 1 a step failed (the message says
# which); 2 bad usage.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PERFWATCH="$ROOT/target/release/perfwatch"
build=1 keep=0
for arg in "$@"; do
    case $arg in
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 [--no-build] [--keep]" >&2
        exit 2
        ;;
    esac
done
NROWS=${BENCH_ROWS:-20000}
NSCRAPES=${BENCH_SCRAPES:-20}
NPOLLS=${BENCH_POLLS:-10}

log() { printf '[bench-mysql] %s\n' "$*" >&2; }
die() {
    printf '\n[bench-mysql] FAILED: %s\n' "$*" >&2
    exit 1
}

missing=()
need_bin() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (apt-get install $2)"); }
need_bin mariadbd mariadb-server
need_bin mariadb-install-db mariadb-server
need_bin mariadb mariadb-client
need_bin prometheus-mysqld-exporter prometheus-mysqld-exporter
need_bin curl curl
need_bin cargo "rustup"
if ((${#missing[@]})); then
    printf '[bench-mysql] missing: %s\n' "${missing[@]}" >&2
    die "install them (or run scripts/install-test-deps.sh)"
fi
# mariadbd lives in /usr/sbin.
export PATH="$PATH:/usr/sbin:/sbin"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/perfwatch-bench-mysql.XXXXXX")
PIDS=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((keep)) || ((rc != 0)); then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_pid() {
    local pid=$1 p keep_pids=()
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep_pids+=("$p"); done
    PIDS=("${keep_pids[@]}")
}

USED_PORTS=" "
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        [[ $USED_PORTS == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            USED_PORTS+="$p "
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    die "no free port found on 127.0.0.1"
}

wait_http() {
    local url=$1 pid=$2 logf=$3 deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || die "process $pid exited while waiting for $url; log tail:
$(tail -n 20 "$logf")"
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true) == 200 ]] && return 0
        sleep 0.05
    done
    die "$url not ready after 30s; log tail:
$(tail -n 20 "$logf")"
}

if ((build)); then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[[ -x $PERFWATCH ]] || die "$PERFWATCH not found: run cargo build --release (or drop --no-build)"

# ------------------------------------------------------------------ mariadb
DB="$WORK/db"
mkdir -p "$DB/data" "$DB/tmp"
free_port DB_PORT
SOCK="$DB/mariadb.sock"
{
    echo "[mariadbd]"
    echo "datadir = $DB/data"
    echo "tmpdir = $DB/tmp"
    echo "socket = $SOCK"
    echo "pid-file = $DB/mariadb.pid"
    echo "log-error = $DB/mariadb.err"
    echo "port = $DB_PORT"
    echo "bind-address = 127.0.0.1"
    echo "skip-name-resolve"
    echo "performance_schema = ON"
    echo "max_connections = 50"
    echo "innodb_buffer_pool_size = 64M"
    echo "innodb_flush_log_at_trx_commit = 2"
    [[ $(id -u) == 0 ]] && echo "user = root"
} >"$DB/my.cnf"
install_args=(--defaults-file="$DB/my.cnf" --datadir="$DB/data" --auth-root-authentication-method=normal --skip-test-db)
[[ $(id -u) == 0 ]] && install_args+=(--user=root)
mariadb-install-db "${install_args[@]}" >"$DB/install.log" 2>&1 || die "mariadb-install-db failed: $(tail -n 5 "$DB/install.log")"
mariadbd --defaults-file="$DB/my.cnf" >"$DB/console.log" 2>&1 &
DB_PID=$!
PIDS+=("$DB_PID")
sql() { mariadb --no-defaults --socket="$SOCK" --user=root --batch --skip-column-names -e "$1"; }
for _ in $(seq 300); do
    sql "SELECT 1" >/dev/null 2>&1 && break
    kill -0 "$DB_PID" 2>/dev/null || die "mariadbd exited: $(tail -n 10 "$DB/mariadb.err")"
    sleep 0.1
done
sql "SELECT 1" >/dev/null || die "mariadbd not ready: $(tail -n 10 "$DB/mariadb.err")"
DB_VERSION=$(sql "SELECT VERSION()")
log "mariadbd $DB_VERSION pid $DB_PID on 127.0.0.1:$DB_PORT"

log "loading $NROWS trips"
sql "CREATE DATABASE app; USE app;
CREATE TABLE driver (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(100), UNIQUE KEY uq_email (email)) ENGINE=InnoDB;
CREATE TABLE trip (id INT PRIMARY KEY AUTO_INCREMENT, driver_id INT, start_time INT, status INT, note VARCHAR(50),
  KEY idx_start (start_time), KEY idx_note (note), KEY idx_status (status), KEY idx_status_start (status, start_time),
  CONSTRAINT fk_driver FOREIGN KEY (driver_id) REFERENCES driver (id)) ENGINE=InnoDB;
INSERT INTO driver (email) SELECT CONCAT('d', seq, '@x') FROM seq_1_to_100;
INSERT INTO trip (driver_id, start_time, status, note) SELECT 1 + seq % 100, seq, seq % 3, 'n' FROM seq_1_to_$NROWS;
ANALYZE TABLE driver, trip;
SELECT COUNT(*) FROM trip WHERE start_time BETWEEN 10 AND 20;
SELECT COUNT(*) FROM trip WHERE status + 0 = 1;
CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY 'bench';
GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'bench'@'127.0.0.1';" >/dev/null

# ------------------------------------------------------------ load accounting
# snapshot FILE: Questions and Connections (one mariadb client call = one
# connection + one statement; calibrated out below).
snapshot() {
    sql "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Connections')" |
        awk '{ print tolower($1), $2 }' >"$1"
    [[ -s $1 ]] || die "SHOW GLOBAL STATUS returned nothing"
}
get() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
# per_unit A B N: "questions connections" per unit, calibration removed.
per_unit() {
    awk -v n="$3" -v cq="$CAL_Q" -v cc="$CAL_C" '
        FILENAME == ARGV[1] { a[$1] = $2; next }
        { b[$1] = $2 }
        END { printf "%.3g %.3g\n", (b["questions"] - a["questions"] - cq) / n, (b["connections"] - a["connections"] - cc) / n }
    ' "$1" "$2"
}
snapshot "$WORK/cal0"
snapshot "$WORK/cal1"
snapshot "$WORK/cal2"
CAL_Q=$(($(get questions "$WORK/cal1") - $(get questions "$WORK/cal0")))
CAL_C=$(($(get connections "$WORK/cal1") - $(get connections "$WORK/cal0")))
[[ $CAL_Q == $(($(get questions "$WORK/cal2") - $(get questions "$WORK/cal1"))) ]] ||
    die "measurement overhead is not stable (is something else using the server?)"
log "calibrated: one measurement costs $CAL_Q question(s), $CAL_C connection(s)"

sequential_scrapes() { # URL N OUT
    local code_time
    : >"$3"
    for _ in $(seq "$2"); do
        code_time=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 "$1") || die "scrape of $1 failed"
        [[ ${code_time%% *} == 200 ]] || die "scrape of $1 answered HTTP ${code_time%% *}"
        echo "${code_time#* }" >>"$3"
    done
}
median_ms() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) * 1000 }'; }
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# ------------------------------------------------------------ mysqld_exporter
free_port EXP_PORT
printf '[client]\nuser = bench\npassword = bench\nhost = 127.0.0.1\nport = %s\n' "$DB_PORT" >"$WORK/exporter.my.cnf"
chmod 600 "$WORK/exporter.my.cnf"
prometheus-mysqld-exporter --config.my-cnf="$WORK/exporter.my.cnf" \
    --web.listen-address="127.0.0.1:$EXP_PORT" >"$WORK/exporter.log" 2>&1 &
EXP_PID=$!
PIDS+=("$EXP_PID")
EXP_URL="http://127.0.0.1:$EXP_PORT/metrics"
wait_http "$EXP_URL" "$EXP_PID" "$WORK/exporter.log"
curl -s --max-time 10 "$EXP_URL" >"$WORK/exporter.metrics"
grep -q '^mysql_up 1' "$WORK/exporter.metrics" || die "mysqld_exporter reports $(grep '^mysql_up' "$WORK/exporter.metrics")"
snapshot "$WORK/exp0"
sequential_scrapes "$EXP_URL" "$NSCRAPES" "$WORK/exporter.scrapes"
snapshot "$WORK/exp1"
read -r EXP_Q EXP_C < <(per_unit "$WORK/exp0" "$WORK/exp1" "$NSCRAPES")
EXP_RSS=$(rss_mib "$EXP_PID")
EXP_MEDIAN=$(median_ms "$WORK/exporter.scrapes")
EXP_VERSION=$(prometheus-mysqld-exporter --version 2>&1 | awk 'NR == 1 { print $3 }')
stop_pid "$EXP_PID"
log "mysqld_exporter: $EXP_Q questions, $EXP_C connections per scrape; RSS $EXP_RSS MiB"

# ---------------------------------------------------------------- perfwatch
polls_total() { curl -s --max-time 5 "$1/metrics" | awk '/^perfwatch_polls_total\{.*target="bench"/ { print $NF; f = 1 } END { if (!f) exit 1 }'; }
# measure NAME INDEX_INTERVAL: sets PW_Q PW_C PW_RSS PW_MEDIAN
measure() {
    local name=$1 port url p0 p1 pid deadline
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
    free_port port
    "$PERFWATCH" --config.file "$WORK/$name.toml" --web.listen-address "127.0.0.1:$port" --log.level warn >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    url="http://127.0.0.1:$port"
    wait_http "$url/-/ready" "$pid" "$WORK/$name.log"
    # Skip the first polls (the connection and the first index pass), then
    # snapshot right after a poll ended (a poll takes milliseconds, polls
    # start every second).
    wait_poll() {
        local want=$1 p
        deadline=$((SECONDS + 60))
        while ((SECONDS < deadline)); do
            p=$(polls_total "$url") || die "no perfwatch_polls_total at $url/metrics"
            if ((${p%.*} >= want)); then
                echo "${p%.*}"
                return 0
            fi
            sleep 0.01
        done
        die "perfwatch ($name) did not reach $want polls"
    }
    p0=$(wait_poll 3)
    p0=$(wait_poll $((p0 + 1)))
    snapshot "$WORK/$name.0"
    p1=$(wait_poll $((p0 + NPOLLS)))
    snapshot "$WORK/$name.1"
    curl -s "$url/metrics" >"$WORK/$name.metrics"
    grep -q 'perfwatch_target_up{collector="mysql",target="bench"} 1' "$WORK/$name.metrics" || die "perfwatch ($name) target not up; see $WORK/$name.log"
    read -r PW_Q PW_C < <(per_unit "$WORK/$name.0" "$WORK/$name.1" $((p1 - p0)))
    sequential_scrapes "$url/metrics" "$NSCRAPES" "$WORK/$name.scrapes"
    PW_MEDIAN=$(median_ms "$WORK/$name.scrapes")
    PW_RSS=$(rss_mib "$pid")
    stop_pid "$pid"
    log "perfwatch ($name): $PW_Q questions, $PW_C connections per poll over $((p1 - p0)) polls; RSS $PW_RSS MiB"
}
measure base 1h
BASE_Q=$PW_Q BASE_C=$PW_C BASE_RSS=$PW_RSS BASE_MEDIAN=$PW_MEDIAN
measure index 1ms
IDX_Q=$PW_Q IDX_C=$PW_C IDX_RSS=$PW_RSS

goal() { awk "BEGIN { exit !($1) }" && echo met || echo "**MISSED**"; }
PW_VERSION=$("$PERFWATCH" --version 2>&1 | head -n 1 | sed 's/^perfwatch //')
GIT_REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(cd "$ROOT" && git status --porcelain --untracked-files=no -- src 2>/dev/null) ]] && GIT_REV+=" + uncommitted changes"
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
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
