#!/usr/bin/env bash
# Benchmarks perfwatch against Debian's prometheus-redis-exporter, side by
# side, against ONE throwaway Redis, in ONE run, and records the result in the
# "Redis" section of docs/PERFORMANCE.md.
#
# Measured (every figure for both unless noted):
#   - /metrics req/s, p50 and p99 under `wrk -t2 -c4 -d10s --latency`;
#   - the median of sequential single scrapes (curl);
#   - RSS (VmRSS) after the wrk run, with a breakdown of perfwatch's RSS;
#   - Redis load per poll (perfwatch) or per scrape (redis_exporter): commands
#     by name, Redis read events (round trips) and new connections, from
#     INFO stats + INFO commandstats deltas, with the measuring redis-cli's own
#     INFO call calibrated out. perfwatch polls on its own interval, so its
#     window is counted in polls (perfwatch_polls_total); it is measured twice:
#     key sampler off (the base poll) and on (base + configured SCAN work).
#
# Goals (from the issue): req/s >= 10x redis_exporter's with p99 < 2 ms;
# RSS <= 12 MiB; base poll = 1 round trip and 0 new connections.
#
# Nothing here uses the machine's own Redis: redis-server is started on a free
# 127.0.0.1 port in a temp dir with persistence off, and everything this script
# starts is killed on exit.
#
# Usage: scripts/bench-redis.sh [--no-build] [--no-doc] [--strict] [--keep] [--allow-busy]
#   --no-build    use target/release/perfwatch as it is (default: cargo build --release)
#   --no-doc      do not rewrite the generated part of docs/PERFORMANCE.md
#   --strict      exit 3 when a goal is missed (default: report it, exit 0)
#   --keep        keep the work dir (configs, logs, wrk output) after the run
#   --allow-busy  record the run in the doc even if other processes used the
#                 CPU during a wrk run (default: exit 4, doc untouched)
# Environment: BENCH_KEYS (10000), BENCH_SCRAPES (20), BENCH_POLLS (10),
#   BENCH_IDLE_WAIT (300: seconds to wait for an idle machine before each wrk
#   run), WRK_DURATION (10s; the goals are defined for 10s).
#
# Exit codes: 0 all figures measured; 1 a figure could not be measured or a
# step failed (the message says which); 2 bad usage; 3 goal missed (--strict);
# 4 other processes disturbed a wrk run (not recorded; see --allow-busy).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOC="$ROOT/docs/PERFORMANCE.md"
PERFWATCH="$ROOT/target/release/perfwatch"

build=1 write_doc=1 strict=0 keep=0 allow_busy=0
for arg in "$@"; do
    case $arg in
    --no-build) build=0 ;;
    --no-doc) write_doc=0 ;;
    --strict) strict=1 ;;
    --keep) keep=1 ;;
    --allow-busy) allow_busy=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 [--no-build] [--no-doc] [--strict] [--keep] [--allow-busy]" >&2
        exit 2
        ;;
    esac
done

NKEYS=${BENCH_KEYS:-10000}
NSCRAPES=${BENCH_SCRAPES:-20}
NPOLLS=${BENCH_POLLS:-10}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_ARGS=(-t2 -c4 "-d$WRK_DURATION" --latency)
POLL_INTERVAL_MS=1000
POLL_TIMEOUT_MS=500

log() { printf '[bench-redis] %s\n' "$*" >&2; }
die() {
    printf '\n[bench-redis] FAILED: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- prerequisites
missing=()
need_bin() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (apt-get install $2)"); }
need_bin redis-server redis-server
need_bin redis-cli redis-tools
need_bin wrk wrk
need_bin prometheus-redis-exporter prometheus-redis-exporter
need_bin curl curl
need_bin awk gawk
need_bin cargo "rustup; cargo is the Rust toolchain's"
if ((${#missing[@]})); then
    printf '[bench-redis] missing: %s\n' "${missing[@]}" >&2
    die "install them, e.g.: apt-get install wrk prometheus-redis-exporter redis-server redis-tools curl (or scripts/install-test-deps.sh)"
fi

# -------------------------------------------------------------- process control
WORK=$(mktemp -d "${TMPDIR:-/tmp}/perfwatch-bench-redis.XXXXXX")
PIDS=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((keep)) || ((rc != 0 && rc != 3)); then
        log "work dir kept: $WORK (logs, configs, wrk output)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'log "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

stop_pid() {
    local pid=$1 p
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep_pids=()
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep_pids+=("$p"); done
    PIDS=("${keep_pids[@]}")
}

USED_PORTS=" "
# free_port VAR: sets VAR to a port on 127.0.0.1 nobody listens on (and not
# handed out before in this run).
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

# wait_http URL PID LOG [SECONDS]: until URL answers 200, or the process died.
wait_http() {
    local url=$1 pid=$2 logf=$3 secs=${4:-30}
    local deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || die "process $pid exited while waiting for $url; log tail:
$(tail -n 20 "$logf")"
        if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true) == 200 ]]; then
            return 0
        fi
        sleep 0.05
    done
    die "$url not ready after ${secs}s; log tail:
$(tail -n 20 "$logf")"
}

# -------------------------------------------------------------------- build
if ((build)); then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[[ -x $PERFWATCH ]] || die "$PERFWATCH not found: run cargo build --release (or drop --no-build)"
# Run a private copy: a concurrent `cargo build` must not swap the binary
# under the benchmark.
cp "$PERFWATCH" "$WORK/perfwatch"
PERFWATCH="$WORK/perfwatch"

# ------------------------------------------------------------------- redis
REDIS_DIR="$WORK/redis"
mkdir -p "$REDIS_DIR"
REDIS_PORT=
REDIS_PID=
for attempt in 1 2 3 4 5; do
    free_port port
    redis-server --port "$port" --bind 127.0.0.1 --dir "$REDIS_DIR" \
        --save "" --appendonly no --daemonize no \
        --logfile "$REDIS_DIR/redis.log" >"$REDIS_DIR/stdout.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        if redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null | grep -q PONG; then
            REDIS_PORT=$port REDIS_PID=$pid
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [[ -n $REDIS_PORT ]] && break
    log "redis-server did not start on port $port (attempt $attempt): $(tail -n 3 "$REDIS_DIR/redis.log" 2>/dev/null)"
    stop_pid "$pid"
done
[[ -n $REDIS_PORT ]] || die "could not start redis-server; see $REDIS_DIR/redis.log"
log "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# Data: NKEYS keys over four prefixes (strings with and without TTL, hashes,
# lists), some hits and misses, and a few SLOWLOG entries.
log "loading $NKEYS keys"
awk -v n="$NKEYS" 'BEGIN {
    v100 = sprintf("%0100d", 0); v300 = sprintf("%0300d", 0)
    for (i = 0; i < n; i++) {
        r = i % 10
        if (r < 4)      printf "SET session:%d %s EX 3600\r\n", i, v100
        else if (r < 7) { if (i % 2) printf "SET cache:page:%d %s EX 300\r\n", i, v300
                          else       printf "SET cache:page:%d %s\r\n", i, v300 }
        else if (r < 9) printf "HSET user:%d name u%d email u%d@example.org plan free visits %d\r\n", i, i, i, i
        else            printf "RPUSH queue:%d a b c d e f g h i j\r\n", i
    }
    for (i = 0; i < n; i++) if (i % 10 < 7) printf "GET %s:%d\r\n", (i % 10 < 4 ? "session" : "cache:page"), i
    for (i = 0; i < n / 5; i++) printf "GET cache:page:missing:%d\r\n", i
}' >"$WORK/load.txt"
rcli --pipe <"$WORK/load.txt" >"$WORK/load.out" 2>&1 || die "redis-cli --pipe failed: $(tail -n 3 "$WORK/load.out")"
grep -q 'errors: 0,' "$WORK/load.out" || die "loading data: $(tail -n 3 "$WORK/load.out")"
rcli CONFIG SET slowlog-log-slower-than 0 >/dev/null
for i in $(seq 20); do rcli HGETALL "user:$((i * 10 + 7))" >/dev/null; done
rcli CONFIG SET slowlog-log-slower-than 10000 >/dev/null
dbsize=$(rcli DBSIZE)
[[ $dbsize == "$NKEYS" ]] || die "expected $NKEYS keys in Redis, found $dbsize"

# ------------------------------------------------------ redis load accounting
# snapshot FILE: counters as "name value" lines (one redis-cli = 1 connection,
# 1 INFO command; calibrated out below).
snapshot() {
    rcli INFO clients stats commandstats | tr -d '\r' | awk -F: '
        $1 == "connected_clients"          { print "clients", $2 }
        $1 == "total_connections_received" { print "connections", $2 }
        $1 == "total_commands_processed"   { print "commands", $2 }
        $1 == "total_reads_processed"      { print "reads", $2 }
        $1 == "keyspace_hits"              { print "keyspace_hits", $2 }
        $1 == "keyspace_misses"            { print "keyspace_misses", $2 }
        $1 ~ /^cmdstat_/ { split($2, a, ","); sub(/^calls=/, "", a[1]); print "cmd:" substr($1, 9), a[1] }
    ' >"$1"
    [[ -s $1 ]] || die "INFO clients stats commandstats from 127.0.0.1:$REDIS_PORT returned nothing"
}
# delta A B [DIVISOR]: (B - A - calibration) / DIVISOR for every counter, as
# "name value" lines; counters that did not move are left out.
delta() {
    awk -v div="${3:-1}" '
        FILENAME == ARGV[1] { cal[$1] = $2; next }
        FILENAME == ARGV[2] { a[$1] = $2; next }
        { d = ($2 - a[$1] - cal[$1]) / div; if (d != 0) printf "%s %.10g\n", $1, d }
    ' "$WORK/calibration" "$1" "$2"
}
get() { awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }' "$2"; }

# Calibration: two snapshots with nothing else talking to Redis. Their
# difference is what one measurement costs (its connection, its INFO, its
# reads); it must be the same twice in a row.
: >"$WORK/calibration"
snapshot "$WORK/cal0"
snapshot "$WORK/cal1"
snapshot "$WORK/cal2"
delta "$WORK/cal0" "$WORK/cal1" >"$WORK/calibration.a"
delta "$WORK/cal1" "$WORK/cal2" >"$WORK/calibration.b"
cmp -s "$WORK/calibration.a" "$WORK/calibration.b" ||
    die "measurement overhead is not stable (is something else using Redis on port $REDIS_PORT?):
$(paste "$WORK/calibration.a" "$WORK/calibration.b")"
cp "$WORK/calibration.a" "$WORK/calibration"
log "calibrated: one measurement costs $(tr '\n' ' ' <"$WORK/calibration")"

# ------------------------------------------------------- prometheus-redis-exporter
free_port EXP_PORT
prometheus-redis-exporter -redis.addr "redis://127.0.0.1:$REDIS_PORT" \
    -web.listen-address "127.0.0.1:$EXP_PORT" >"$WORK/exporter.log" 2>&1 &
EXP_PID=$!
PIDS+=("$EXP_PID")
EXP_URL="http://127.0.0.1:$EXP_PORT/metrics"
wait_http "$EXP_URL" "$EXP_PID" "$WORK/exporter.log"
log "prometheus-redis-exporter pid $EXP_PID on 127.0.0.1:$EXP_PORT"

# sequential_scrapes URL N OUT: N scrapes one after the other; the seconds
# each took, one per line.
sequential_scrapes() {
    local url=$1 n=$2 out=$3 code_time
    : >"$out"
    for _ in $(seq "$n"); do
        code_time=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 "$url") ||
            die "scrape of $url failed"
        [[ ${code_time%% *} == 200 ]] || die "scrape of $url answered HTTP ${code_time%% *}"
        echo "${code_time#* }" >>"$out"
    done
}
median_ms() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) * 1000 }'; }

# Exporter: one scrape = one poll of Redis. Nothing else talks to Redis now.
curl -s --max-time 10 "$EXP_URL" >"$WORK/exporter.metrics" || die "scraping $EXP_URL failed"
snapshot "$WORK/exp0"
sequential_scrapes "$EXP_URL" "$NSCRAPES" "$WORK/exporter.scrapes"
snapshot "$WORK/exp1"
delta "$WORK/exp0" "$WORK/exp1" "$NSCRAPES" >"$WORK/load.exporter"
grep -q '^redis_up 1' "$WORK/exporter.metrics" || die "redis_exporter reports redis_up != 1: $(grep '^redis_up' "$WORK/exporter.metrics")"

# ---------------------------------------------------------------- perfwatch
# write_config FILE SAMPLER(0|1)
write_config() {
    {
        echo "[global]"
        echo "interval = \"${POLL_INTERVAL_MS}ms\""
        echo "timeout = \"${POLL_TIMEOUT_MS}ms\""
        echo
        echo "[[redis]]"
        echo "name = \"bench\""
        echo "url = \"redis://127.0.0.1:$REDIS_PORT/0\""
        echo "slowlog_entries = 128"
        if (($2)); then
            # The example config's sampler settings, with this data's prefixes.
            echo
            echo "[redis.keys]"
            echo 'prefixes = ["session:", "cache:page:", "user:", "queue:"]'
            echo "max_groups = 50"
            echo "scan_count = 1000"
            echo "max_keys_per_poll = 20000"
            echo "time_budget_ratio = 0.5"
            echo "memory_sample_every = 10"
        fi
    } >"$1"
    "$PERFWATCH" check-config "$1" >/dev/null || die "perfwatch check-config $1 failed"
}

# start_perfwatch NAME CONFIG: sets PW_PID, PW_URL.
start_perfwatch() {
    local port
    free_port port
    "$PERFWATCH" --config.file "$2" --web.listen-address "127.0.0.1:$port" \
        --log.level warn >"$WORK/$1.log" 2>&1 &
    PW_PID=$!
    PIDS+=("$PW_PID")
    PW_URL="http://127.0.0.1:$port"
    wait_http "$PW_URL/-/ready" "$PW_PID" "$WORK/$1.log"
    log "perfwatch ($1) pid $PW_PID on 127.0.0.1:$port"
}

# self_metric URL NAME: the value of a perfwatch self-metric for the target.
self_metric() {
    curl -s --max-time 5 "$1/metrics" | awk -v n="$2" '
        index($0, n "{") == 1 && $0 ~ /target="bench"/ { s += $NF; found = 1 }
        END { if (found) print s; else exit 1 }'
}

# measure_polls URL NAME: Redis load of exactly NPOLLS polls into load.NAME.
# Snapshots are taken right after a poll finished, long before the next one
# starts (polls start every POLL_INTERVAL_MS), which is checked.
measure_polls() {
    local url=$1 name=$2 p0 p1 p2 errs0 errs1 t_seen t_snap dur gap_ms
    p0=$(self_metric "$url" perfwatch_polls_total) || die "no perfwatch_polls_total at $url/metrics"
    wait_polls() { # until polls_total >= $1; prints it
        local deadline=$((SECONDS + 30)) p
        while ((SECONDS < deadline)); do
            p=$(self_metric "$url" perfwatch_polls_total) || die "no perfwatch_polls_total at $url/metrics"
            if ((p >= $1)); then
                echo "$p"
                return 0
            fi
            sleep 0.01
        done
        die "perfwatch ($name) did not reach $1 polls within 30s"
    }
    for attempt in 1 2 3; do
        p1=$(wait_polls $((p0 + 1)))
        errs0=$(self_metric "$url" perfwatch_poll_errors_total)
        snapshot "$WORK/$name.0"
        p2=$(wait_polls $((p1 + NPOLLS)))
        t_seen=$(date +%s%N)
        snapshot "$WORK/$name.1"
        t_snap=$(date +%s%N)
        errs1=$(self_metric "$url" perfwatch_poll_errors_total)
        dur=$(self_metric "$url" perfwatch_poll_duration_seconds)
        # The snapshot must have ended before the next poll could start.
        gap_ms=$(awk -v i="$POLL_INTERVAL_MS" -v d="$dur" 'BEGIN { printf "%d", i - d * 1000 - 50 }')
        if ((p2 == p1 + NPOLLS && (t_snap - t_seen) / 1000000 < gap_ms)); then
            ((errs1 == errs0)) || die "perfwatch ($name): $((errs1 - errs0)) poll(s) failed during the window; log: $(tail -n 5 "$WORK/$name.log")"
            delta "$WORK/$name.0" "$WORK/$name.1" "$NPOLLS" >"$WORK/load.$name"
            return 0
        fi
        log "perfwatch ($name): window not clean (polls $p1 -> $p2, snapshot took $(((t_snap - t_seen) / 1000000)) ms), retrying"
        p0=$p2
    done
    die "perfwatch ($name): could not take a clean measurement window of $NPOLLS polls"
}

write_config "$WORK/perfwatch-base.toml" 0
write_config "$WORK/perfwatch.toml" 1

# Base poll (sampler off): nothing but this perfwatch talks to Redis.
start_perfwatch perfwatch-base "$WORK/perfwatch-base.toml"
measure_polls "$PW_URL" perfwatch-base
BASE_RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PW_PID/status")
stop_pid "$PW_PID"

# The benchmarked perfwatch: sampler on, as configured in production.
start_perfwatch perfwatch "$WORK/perfwatch.toml"
PW_MAIN_PID=$PW_PID PW_MAIN_URL=$PW_URL
measure_polls "$PW_MAIN_URL" perfwatch
curl -s --max-time 5 "$PW_MAIN_URL/metrics" >"$WORK/perfwatch.metrics"

# -------------------------------------------------------------------- wrk
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
our_ticks() { # CPU of every process this script started and still runs
    local pid sum=0
    for pid in "${PIDS[@]}"; do
        [[ -r /proc/$pid/stat ]] && sum=$((sum + $(cpu_ticks "$pid")))
    done
    echo "$sum"
}
# children_ticks: CPU of this shell's waited-for children so far (wrk), in
# ticks. `times` must run in this shell, not in a $(...) subshell.
children_ticks() {
    times >"$WORK/times"
    CHILD_TICKS=$(awk -v hz="$HZ" 'NR == 2 {
        split($1, u, /[ms]/); split($2, s, /[ms]/)
        printf "%d", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * hz }' "$WORK/times")
}
# wait_idle: until other processes use < 0.15 cores over a second (at most
# IDLE_WAIT seconds); a busy machine (a build running beside us) would make
# the latency tail meaningless. Prints the cores they used.
IDLE_WAIT=${BENCH_IDLE_WAIT:-300}
wait_idle() {
    local deadline=$((SECONDS + IDLE_WAIT)) b0 b1 o0 o1 t0 t1 other
    while :; do
        b0=$(busy_ticks) o0=$(our_ticks) t0=$(date +%s%N)
        sleep 1
        b1=$(busy_ticks) o1=$(our_ticks) t1=$(date +%s%N)
        other=$(awk -v t=$((b1 - b0 - (o1 - o0))) -v hz="$HZ" -v ns=$((t1 - t0)) \
            'BEGIN { printf "%.2f", (t < 0 ? 0 : t) / hz / (ns / 1e9) }')
        if awk -v o="$other" 'BEGIN { exit !(o < 0.15) }'; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            log "machine still busy after ${IDLE_WAIT}s (other processes use $other cores); measuring anyway, the report says so"
            return 0
        fi
        log "waiting for the machine to be idle (other processes use $other cores)"
        sleep 4
    done
}
# run_wrk NAME URL PID: one wrk run, retried (up to WRK_TRIES runs) while
# other processes disturbed it; the last run is the one reported.
WRK_TRIES=${BENCH_WRK_TRIES:-5}
run_wrk() {
    local try other
    for try in $(seq "$WRK_TRIES"); do
        wrk_once "$@"
        other=$(get other_cores "$WORK/wrk.$1")
        echo "attempts $try" >>"$WORK/wrk.$1"
        awk -v o="$other" 'BEGIN { exit !(o >= 0.15) }' || return 0
        log "wrk run $try against $1 disturbed: other processes used $other cores; retrying"
    done
}
wrk_once() {
    local name=$1 url=$2 pid=$3 out="$WORK/wrk.$1.txt" c0 c1 r0 r1 b0 b1 o0 o1 w0 w1 t0 t1
    wait_idle
    # Sequential single scrapes first (same idle machine), then the load.
    sequential_scrapes "$url" "$NSCRAPES" "$WORK/$name.scrapes"
    log "wrk ${WRK_ARGS[*]} $url ($name)"
    children_ticks
    w0=$CHILD_TICKS c0=$(cpu_ticks "$pid") r0=$(cpu_ticks "$REDIS_PID") o0=$(our_ticks)
    b0=$(busy_ticks) t0=$(date +%s%N)
    wrk "${WRK_ARGS[@]}" "$url" >"$out" 2>&1 || die "wrk against $name failed: $(tail -n 5 "$out")"
    b1=$(busy_ticks) t1=$(date +%s%N)
    children_ticks
    w1=$CHILD_TICKS c1=$(cpu_ticks "$pid") r1=$(cpu_ticks "$REDIS_PID") o1=$(our_ticks)
    if grep -Eq 'Non-2xx|Socket errors' "$out"; then
        die "wrk against $name saw errors:
$(grep -E 'Non-2xx|Socket errors' "$out")"
    fi
    awk -v c=$((c1 - c0)) -v r=$((r1 - r0)) -v w=$((w1 - w0)) -v hz="$HZ" \
        -v other=$((b1 - b0 - (o1 - o0) - (w1 - w0))) -v secs="$(((t1 - t0) / 1000000))e-3" '
        function ms(s) {
            if (s ~ /us$/) return substr(s, 1, length(s) - 2) / 1000
            if (s ~ /ms$/) return substr(s, 1, length(s) - 2) + 0
            if (s ~ /m$/)  return substr(s, 1, length(s) - 1) * 60000
            if (s ~ /s$/)  return substr(s, 1, length(s) - 1) * 1000
            return ""
        }
        $1 == "Requests/sec:" { print "rps", $2 }
        $1 == "50%" { print "p50_ms", ms($2) }
        $1 == "99%" { print "p99_ms", ms($2) }
        $2 == "requests" && $3 == "in" { print "requests", $1; n = $1 }
        END {
            printf "cpu_s %.2f\nredis_cpu_s %.2f\nwrk_cpu_s %.2f\n", c / hz, r / hz, w / hz
            if (n > 0) printf "cpu_us_per_req %.1f\n", c / hz / n * 1e6
            printf "other_cores %.2f\n", (other < 0 ? 0 : other) / hz / secs
        }
    ' "$out" >"$WORK/wrk.$name"
}
run_wrk exporter "$EXP_URL" "$EXP_PID"
run_wrk perfwatch "$PW_MAIN_URL/metrics" "$PW_MAIN_PID"

# ------------------------------------------------------------------- RSS
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
EXP_RSS_KB=$(rss_kb "$EXP_PID")
PW_RSS_KB=$(rss_kb "$PW_MAIN_PID")
EXP_THREADS=$(threads "$EXP_PID")
PW_THREADS=$(threads "$PW_MAIN_PID")
# Where perfwatch's RSS is: its own binary's mappings, the brk heap,
# anonymous mappings (malloc arenas of the worker threads, thread stacks),
# shared libraries, the main stack.
awk -v bin="$(readlink -f "$PERFWATCH")" '
    /^[0-9a-f]+-[0-9a-f]+ / { path = (NF >= 6 ? $6 : ""); perms = $2; next }
    $1 == "Rss:" {
        if (path == bin) k = "perfwatch binary (" (perms ~ /x/ ? "text" : "data/rodata") ")"
        else if (path == "[heap]") k = "[heap] (brk: main-thread malloc)"
        else if (path == "") k = "anonymous (thread arenas, stacks, mmap allocations)"
        else if (path == "[stack]") k = "[stack] (main thread)"
        else if (path ~ /\.so/) k = "shared libraries"
        else k = "other (" path ")"
        rss[k] += $2
    }
    END { for (k in rss) if (rss[k]) printf "%d\t%s\n", rss[k], k }
' "/proc/$PW_MAIN_PID/smaps" | sort -rn >"$WORK/rss.breakdown"
# One-line summary from smaps_rollup.
awk '$1 ~ /^(Rss|Pss|Shared_Clean|Private_Clean|Private_Dirty|Anonymous):$/ { printf "%s %s kB  ", $1, $2 }' \
    "/proc/$PW_MAIN_PID/smaps_rollup" >"$WORK/rss.rollup"

# ---------------------------------------------------------------- figures
declare -A F
MISSING=()
fig() { # fig KEY VALUE: records a figure, which must be a number
    if [[ $2 =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then
        F[$1]=$2
    else
        F[$1]="n/a"
        MISSING+=("$1")
    fi
}
for who in exporter perfwatch; do
    fig "$who.rps" "$(get rps "$WORK/wrk.$who")"
    fig "$who.p50" "$(get p50_ms "$WORK/wrk.$who")"
    fig "$who.p99" "$(get p99_ms "$WORK/wrk.$who")"
    fig "$who.cpu" "$(get cpu_s "$WORK/wrk.$who")"
    fig "$who.cpu_per_req" "$(get cpu_us_per_req "$WORK/wrk.$who")"
    fig "$who.wrk_cpu" "$(get wrk_cpu_s "$WORK/wrk.$who")"
    fig "$who.other_cores" "$(get other_cores "$WORK/wrk.$who")"
    fig "$who.redis_cpu" "$(get redis_cpu_s "$WORK/wrk.$who")"
    fig "$who.single" "$(median_ms "$WORK/$who.scrapes")"
    fig "$who.bytes" "$(wc -c <"$WORK/$who.metrics")"
    fig "$who.series" "$(grep -vc '^#' "$WORK/$who.metrics")"
done
# wrk prints "0 requests" rather than no line at all when nothing answered.
for who in exporter perfwatch; do
    [[ ${F[$who.rps]} == n/a ]] || awk -v r="${F[$who.rps]}" 'BEGIN { exit !(r > 0) }' || {
        F[$who.rps]=n/a
        MISSING+=("$who.rps")
    }
done
fig exporter.rss "$(awk -v k="$EXP_RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')"
fig perfwatch.rss "$(awk -v k="$PW_RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')"
fig perfwatch_base.rss "$(awk -v k="$BASE_RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')"

# Redis load: base poll, sampler poll, exporter scrape.
BASE_CMDS="cmd:info cmd:slowlog|get cmd:slowlog|len"
SAMPLER_CMDS="cmd:scan cmd:pttl cmd:memory|usage"
sum_cmds() { awk -v list=" $2 " '$1 ~ /^cmd:/ && index(list, " " $1 " ") { s += $2 } END { printf "%.10g", s + 0 }' "$1"; }
other_cmds() { awk -v list=" $2 " '$1 ~ /^cmd:/ && !index(list, " " $1 " ") { printf "%s%s=%s", sep, substr($1, 5), $2; sep = ", " }' "$1"; }
# Round trips: Redis counts one read event per request it reads (a pipeline
# sent in one write is one) plus one when a client closes its connection;
# closes per unit = new connections - the change in connected_clients.
round_trips() { awk '{ v[$1] = $2 } END { printf "%.10g", v["reads"] - (v["connections"] - v["clients"]) }' "$1"; }
fig exporter.rtt "$(round_trips "$WORK/load.exporter")"
fig base.rtt "$(round_trips "$WORK/load.perfwatch-base")"
fig sampler.rtt "$(round_trips "$WORK/load.perfwatch")"
fig exporter.cmds "$(get commands "$WORK/load.exporter")"
fig exporter.reads "$(get reads "$WORK/load.exporter")"
fig exporter.conns "$(get connections "$WORK/load.exporter")"
fig base.cmds "$(get commands "$WORK/load.perfwatch-base")"
fig base.reads "$(get reads "$WORK/load.perfwatch-base")"
fig base.conns "$(get connections "$WORK/load.perfwatch-base")"
fig sampler.cmds "$(get commands "$WORK/load.perfwatch")"
fig sampler.reads "$(get reads "$WORK/load.perfwatch")"
fig sampler.conns "$(get connections "$WORK/load.perfwatch")"
fig sampler.base_cmds "$(sum_cmds "$WORK/load.perfwatch" "$BASE_CMDS")"
fig sampler.scan_cmds "$(sum_cmds "$WORK/load.perfwatch" "$SAMPLER_CMDS")"
fig sampler.hits "$(get keyspace_hits "$WORK/load.perfwatch")"
fig sampler.misses "$(get keyspace_misses "$WORK/load.perfwatch")"
UNEXPECTED_BASE=$(other_cmds "$WORK/load.perfwatch-base" "$BASE_CMDS")
UNEXPECTED_SAMPLER=$(other_cmds "$WORK/load.perfwatch" "$BASE_CMDS $SAMPLER_CMDS")

ratio() { # perfwatch / exporter
    if [[ ${F[$1]} == n/a || ${F[$2]} == n/a ]]; then echo "n/a"; else
        awk -v a="${F[$1]}" -v b="${F[$2]}" 'BEGIN { if (b == 0) print (a == 0 ? "=" : "inf"); else printf "%.3g", a / b }'
    fi
}
# ------------------------------------------------------------------ goals
goal() { # goal DESCRIPTION AWK-CONDITION MISS-TEXT
    local ok
    ok=$(awk "BEGIN { print (($2) ? 1 : 0) }" 2>/dev/null || echo 0)
    if ((ok)); then
        GOALS+=("| $1 | met |")
    else
        GOALS+=("| $1 | **MISSED**: $3 |")
        MISSED+=("$1: $3")
    fi
}
GOALS=() MISSED=()
if ((${#MISSING[@]} == 0)); then
    rps_ratio=$(ratio perfwatch.rps exporter.rps)
    goal "req/s ≥ 10× redis_exporter's" "$rps_ratio >= 10" \
        "${rps_ratio}× ($(awk -v r="$rps_ratio" 'BEGIN { printf "%.0f %%", (1 - r / 10) * 100 }') short of 10×)"
    goal "p99 < 2 ms" "${F[perfwatch.p99]} < 2" \
        "p99 ${F[perfwatch.p99]} ms ($(awk -v p="${F[perfwatch.p99]}" 'BEGIN { printf "%.2f", p - 2 }') ms over)"
    goal "RSS ≤ 12 MiB after wrk" "${F[perfwatch.rss]} <= 12" \
        "${F[perfwatch.rss]} MiB ($(awk -v r="${F[perfwatch.rss]}" 'BEGIN { printf "%.1f MiB, %.0f %%", r - 12, (r / 12 - 1) * 100 }') over)"
    goal "base poll: 1 round trip" "${F[base.rtt]} == 1" \
        "${F[base.rtt]} round trips per poll"
    goal "0 new connections per poll (sampler off and on)" "${F[base.conns]} == 0 && ${F[sampler.conns]} == 0" \
        "${F[base.conns]} (base) / ${F[sampler.conns]} (sampler) new connections per poll"
    goal "base poll issues only INFO + SLOWLOG GET + SLOWLOG LEN" "\"$UNEXPECTED_BASE\" == \"\"" \
        "also: $UNEXPECTED_BASE"
fi

# ---------------------------------------------------------------- report
PW_VERSION=$("$PERFWATCH" --version 2>&1 | head -n 1 | sed 's/^perfwatch //')
GIT_REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(cd "$ROOT" && git status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    GIT_REV+=" + uncommitted changes in src/"
fi
REDIS_VERSION=$(redis-server --version | awk '{ print $3 }' | sed 's/^v=//')
EXP_VERSION=$(prometheus-redis-exporter -version 2>&1 | sed -n 's/.*Redis Metrics Exporter \([^ ]*\).*/\1/p' | head -n 1)
WRK_VERSION=$({ wrk -v 2>&1 || true; } | head -n 1 | awk '{ print $2 }')
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MACHINE="$(nproc) × ${CPU_MODEL:-unknown CPU}, $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
WHEN=$(date -u '+%Y-%m-%d %H:%M UTC')

fmt_cmds() { # FILE: commands by name, "INFO 1, SLOWLOG GET 1"
    awk '$1 ~ /^cmd:/ { n = toupper(substr($1, 5)); gsub(/\|/, " ", n); printf "%s%s %g", sep, n, $2; sep = ", " }' "$1"
}
background_note() {
    local w
    for w in exporter perfwatch; do
        if awk -v o="${F[$w.other_cores]}" 'BEGIN { exit !(o >= 0.15) }'; then
            echo
            echo "**Caution:** other processes on the machine used ${F[$w.other_cores]} cores during the $w wrk run (the script waited up to ${IDLE_WAIT}s for an idle machine); that run's figures are not trustworthy: rerun on an idle machine."
        fi
    done
}

report() {
    cat <<EOF
Measured $WHEN on $MACHINE.
perfwatch $PW_VERSION (git $GIT_REV), redis-server $REDIS_VERSION, prometheus-redis-exporter $EXP_VERSION (Debian package), wrk $WRK_VERSION.

Reproduce: \`scripts/bench-redis.sh\` (builds with \`cargo build --release\`; starts its own redis-server, both exporters and wrk on free 127.0.0.1 ports; kills them on exit).

Setup: one throwaway redis-server (\`--save "" --appendonly no\`) with $NKEYS keys over 4 prefixes (strings with and without TTL, hashes, lists), $((NKEYS * 7 / 10)) hits, $((NKEYS / 5)) misses and 20 SLOWLOG entries. redis_exporter runs with its default flags. perfwatch runs one \`[[redis]]\` target: interval ${POLL_INTERVAL_MS} ms, timeout ${POLL_TIMEOUT_MS} ms, \`slowlog_entries = 128\`, key sampler on with the example config's settings (scan_count 1000, max_keys_per_poll 20000, memory_sample_every 10), so at this size every poll walks the whole keyspace. Both exporters run during both wrk runs, and perfwatch keeps polling every second. Before each wrk run the script waits until other processes use < 0.15 cores, and reruns a run they disturbed. Load: \`wrk ${WRK_ARGS[*]}\` on /metrics. "Single scrape" is the median of $NSCRAPES sequential curl scrapes.

| figure | perfwatch | redis_exporter | perfwatch / redis_exporter |
|---|---:|---:|---:|
| /metrics req/s (wrk) | ${F[perfwatch.rps]} | ${F[exporter.rps]} | **$(ratio perfwatch.rps exporter.rps)** |
| latency p50 (ms) | ${F[perfwatch.p50]} | ${F[exporter.p50]} | $(ratio perfwatch.p50 exporter.p50) |
| latency p99 (ms) | ${F[perfwatch.p99]} | ${F[exporter.p99]} | $(ratio perfwatch.p99 exporter.p99) |
| single scrape, median (ms) | ${F[perfwatch.single]} | ${F[exporter.single]} | $(ratio perfwatch.single exporter.single) |
| exporter CPU per request (µs) | ${F[perfwatch.cpu_per_req]} | ${F[exporter.cpu_per_req]} | $(ratio perfwatch.cpu_per_req exporter.cpu_per_req) |
| exporter CPU during its wrk run (s) | ${F[perfwatch.cpu]} | ${F[exporter.cpu]} | $(ratio perfwatch.cpu exporter.cpu) |
| wrk's own CPU during that run (s) | ${F[perfwatch.wrk_cpu]} | ${F[exporter.wrk_cpu]} | $(ratio perfwatch.wrk_cpu exporter.wrk_cpu) |
| Redis CPU during that run (s) | ${F[perfwatch.redis_cpu]} | ${F[exporter.redis_cpu]} | $(ratio perfwatch.redis_cpu exporter.redis_cpu) |
| other processes during that run (cores) · wrk runs needed | ${F[perfwatch.other_cores]} · $(get attempts "$WORK/wrk.perfwatch") | ${F[exporter.other_cores]} · $(get attempts "$WORK/wrk.exporter") | |
| /metrics body (bytes) | ${F[perfwatch.bytes]} | ${F[exporter.bytes]} | $(ratio perfwatch.bytes exporter.bytes) |
| /metrics samples | ${F[perfwatch.series]} | ${F[exporter.series]} | $(ratio perfwatch.series exporter.series) |
| RSS after wrk (MiB) | ${F[perfwatch.rss]} | ${F[exporter.rss]} | $(ratio perfwatch.rss exporter.rss) |
| threads after wrk | $PW_THREADS | $EXP_THREADS | |
| Redis commands per poll / scrape (base) | ${F[base.cmds]} | ${F[exporter.cmds]} | $(ratio base.cmds exporter.cmds) |
| Redis round trips per poll / scrape (base) | ${F[base.rtt]} | ${F[exporter.rtt]} | $(ratio base.rtt exporter.rtt) |
| new Redis connections per poll / scrape | ${F[base.conns]} | ${F[exporter.conns]} | $(ratio base.conns exporter.conns) |
$(background_note)

Redis load per poll (perfwatch: $NPOLLS polls counted by \`perfwatch_polls_total\`) and per scrape (redis_exporter: $NSCRAPES scrapes), from INFO clients/stats/commandstats deltas, with the measuring \`redis-cli INFO\` calibrated out. Round trips = Redis read events − connection closes.

| per poll / scrape | commands by name | commands | round trips | new connections |
|---|---|---:|---:|---:|
| perfwatch, sampler off (base poll) | $(fmt_cmds "$WORK/load.perfwatch-base") | ${F[base.cmds]} | ${F[base.rtt]} | ${F[base.conns]} |
| perfwatch, sampler on (benchmarked config) | $(fmt_cmds "$WORK/load.perfwatch") | ${F[sampler.cmds]} (base ${F[sampler.base_cmds]} + sampler ${F[sampler.scan_cmds]}) | ${F[sampler.rtt]} | ${F[sampler.conns]} |
| redis_exporter, one scrape | $(fmt_cmds "$WORK/load.exporter") | ${F[exporter.cmds]} | ${F[exporter.rtt]} | ${F[exporter.conns]} |

The sampler's round trips are one SCAN plus one pipelined PTTL/MEMORY USAGE batch per SCAN reply; a batch larger than Redis' 16 KiB read buffer is read in several events, so that count is an upper bound. With the sampler on, each poll also added ${F[sampler.hits]} to Redis' \`keyspace_hits\` and ${F[sampler.misses]} to \`keyspace_misses\` (PTTL is a keyspace lookup): perfwatch subtracts its own lookups from \`perfwatch_cache_hit_ratio\`, but every other reader of INFO (redis_exporter's \`redis_keyspace_hits_total\`, dashboards built on it) sees them.

perfwatch's RSS after wrk by mapping (/proc/PID/smaps). For comparison, perfwatch with the sampler off, before any wrk run: ${F[perfwatch_base.rss]} MiB.

| kB | mapping |
|---:|---|
$(awk -F'\t' '{ printf "| %s | %s |\n", $1, $2 }' "$WORK/rss.breakdown")

smaps_rollup: $(cat "$WORK/rss.rollup")

| goal | result |
|---|---|
$(printf '%s\n' "${GOALS[@]}")
EOF
    if [[ -n $UNEXPECTED_SAMPLER ]]; then
        echo
        echo "Unexpected commands in the sampler-on poll: $UNEXPECTED_SAMPLER"
    fi
}

REPORT=$(report)
printf '\n%s\n' "$REPORT"

if ((${#MISSING[@]})); then
    die "could not measure: ${MISSING[*]} (work dir: $WORK)"
fi

DISTURBED=$(background_note)
if [[ -n $DISTURBED ]] && ((!allow_busy)); then
    printf '[bench-redis] NOT RECORDED: other processes used the CPU during a wrk run, so the latency figures are not trustworthy; docs/PERFORMANCE.md left as it was. Rerun on an idle machine (or pass --allow-busy).\n' >&2
    exit 4
fi

# ------------------------------------------------------- docs/PERFORMANCE.md
BEGIN_MARK='<!-- bench-redis:begin (generated by scripts/bench-redis.sh; edits inside are overwritten) -->'
END_MARK='<!-- bench-redis:end -->'
if ((write_doc)); then
    if [[ ! -f $DOC ]]; then
        mkdir -p "$(dirname "$DOC")"
        printf '# Performance\n\n## Redis\n\n%s\n%s\n' "$BEGIN_MARK" "$END_MARK" >"$DOC"
    elif ! grep -qF '<!-- bench-redis:begin' "$DOC"; then
        printf '\n## Redis\n\n%s\n%s\n' "$BEGIN_MARK" "$END_MARK" >>"$DOC"
    fi
    printf '%s\n' "$REPORT" >"$WORK/report.md"
    awk -v begin="$BEGIN_MARK" -v report="$WORK/report.md" '
        index($0, "<!-- bench-redis:begin") == 1 {
            print begin; while ((getline line < report) > 0) print line
            skip = 1; next
        }
        index($0, "<!-- bench-redis:end") == 1 { skip = 0 }
        !skip
    ' "$DOC" >"$WORK/doc.new"
    cat "$WORK/doc.new" >"$DOC"
    log "wrote the measured figures into ${DOC#"$ROOT"/} (Redis section)"
fi

if ((${#MISSED[@]})); then
    printf '[bench-redis] goal missed: %s\n' "${MISSED[@]}" >&2
    ((strict)) && exit 3
fi
exit 0
