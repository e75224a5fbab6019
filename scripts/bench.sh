#!/usr/bin/env bash
# All collectors at once: ONE perfwatch with everything on (Redis with the
# key sampler, PostgreSQL, MariaDB, the two servers' slow logs, two HTTP
# probes, a process matcher and the example config's [[phase]] tables) against
# Debian's peers (prometheus-redis-exporter, prometheus-postgres-exporter,
# prometheus-mysqld-exporter, pt-query-digest) on the same throwaway servers,
# in ONE run, and records the result in the "All collectors at once" section
# of docs/PERFORMANCE.md.
#
# Measured:
#   - /metrics req/s, p50, p99 under `wrk -t2 -c4 -d10s --latency` for
#     perfwatch and each exporter; then with Redis SIGSTOPped, for perfwatch
#     and redis_exporter (wrk --timeout 1s; a hung peer answers nothing, so
#     requests answered and errors are recorded); Redis gets SIGCONT
#     afterwards, also when the script fails;
#   - RSS (VmRSS): idle (after warm-up), after wrk, and for a second perfwatch
#     with the same config polling at a fast interval for as many rounds as
#     one hour at the default interval (the example config's [global]
#     interval, 15s -> 240 rounds), before and after those rounds;
#   - CPU (utime+stime, /proc/PID/stat) per poll round over an idle window
#     (no scrapes), and per scrape for each exporter;
#   - load per poll / scrape on each server: Redis commands, round trips and
#     new connections (INFO stats/commandstats, the measuring redis-cli
#     calibrated out), PostgreSQL statements (pg_stat_statements, per role)
#     and new connections (log_connections lines, per role), MariaDB
#     Questions and Connections (calibrated). The exporters are measured
#     before perfwatch starts, so each server's global counters see one
#     client at a time;
#   - slow-log throughput and max RSS against pt-query-digest on a >= 100 MB
#     real MariaDB slow log (scripts/bench-slowlog.sh; the generated log is
#     cached under target/bench-cache/, keyed by its parameters).
#
# Goals (issue 7): req/s >= 10x redis_exporter's with p99 < 2 ms, flat while
# Redis is stopped; RSS <= 12 MiB with everything on, growth ~0 over an
# hour of polls; >= 50x pt-query-digest; 0 new connections per poll.
#
# Usage: scripts/bench.sh [--quick] [--no-build] [--no-doc] [--strict] [--keep] [--allow-busy] [--hold]
#   --quick       a fast validation run: 3 s wrk runs, fewer polls and
#                 scrapes, a small slow log (BENCH_LOG_MB=5: one 25 MB
#                 round), no waiting for an idle machine;
#                 never writes the doc
#   --no-build    use target/release/perfwatch as it is (default: cargo build --release --locked)
#   --no-doc      do not rewrite the generated block of docs/PERFORMANCE.md
#   --strict      exit 3 when a goal is missed (default: report it, exit 0)
#   --keep        keep the work dir (configs, logs, wrk output) after the run
#   --allow-busy  record the run in the doc even if other processes used the
#                 CPU during a wrk run (default: exit 4, doc untouched)
#   --hold        for profiling: start the servers, the exporters and the
#                 all-collectors perfwatch, warm it up, print its pid, URL
#                 and config, and wait (measuring nothing) until Ctrl-C,
#                 which stops everything (see docs/PERFORMANCE.md, "Where
#                 the memory and the tail latency go")
# Environment: BENCH_KEYS (10000), BENCH_ROWS (20000), BENCH_SCRAPES (20),
#   BENCH_POLLS (10), BENCH_FAST_INTERVAL_MS (100), BENCH_LOG_MB (100),
#   BENCH_IDLE_WAIT (300; --quick: 0), BENCH_WRK_TRIES (5; --quick: 1),
#   WRK_DURATION (10s; --quick: 3s), BENCH_PW_ENV (extra environment of
#   perfwatch, e.g. MALLOC_ARENA_MAX=1; shown in the report).
#
# Exit codes: 0 every figure measured; 1 a figure could not be measured or a
# step failed (the message names it); 2 bad usage; 3 goal missed (--strict);
# 4 other processes disturbed a wrk run (not recorded; see --allow-busy).
set -euo pipefail

BENCH_NAME=bench
# shellcheck source=scripts/lib/bench-common.sh
. "$(dirname "$0")/lib/bench-common.sh"

build=1 write_doc=1 strict=0 allow_busy=0 quick=0
ARGS=("$@")
hold=0
BENCH_USAGE_EXTRA="[--hold]"
for arg in "$@"; do
    if [[ $arg == --hold ]]; then
        hold=1
        continue
    fi
    bench_flag "$arg" "--quick --no-build --no-doc --strict --keep --allow-busy"
done
if ((quick)); then
    write_doc=0
    : "${BENCH_IDLE_WAIT:=0}" "${BENCH_WRK_TRIES:=1}" "${WRK_DURATION:=3s}"
    : "${BENCH_SCRAPES:=5}" "${BENCH_POLLS:=3}" "${BENCH_LOG_MB:=5}" "${BENCH_ROUNDS:=30}"
    IDLE_WAIT=$BENCH_IDLE_WAIT WRK_TRIES=$BENCH_WRK_TRIES
fi
NKEYS=${BENCH_KEYS:-10000}
NROWS=${BENCH_ROWS:-20000}
NSCRAPES=${BENCH_SCRAPES:-20}
NPOLLS=${BENCH_POLLS:-10}
FAST_MS=${BENCH_FAST_INTERVAL_MS:-100}
LOG_MB=${BENCH_LOG_MB:-100}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_ARGS=(-t2 -c4 "-d$WRK_DURATION" --latency)
WRK_STOPPED_ARGS=(-t2 -c4 "-d$WRK_DURATION" --latency --timeout 1s)
INTERVAL_MS=1000 TIMEOUT_MS=800
BENCH_OK_CODES=" 0 3 4 "
EXAMPLE="$BENCH_ROOT/config/perfwatch.example.toml"

# An hour of polls at the default interval (the example config's [global]
# interval, which documents the default).
DEFAULT_INTERVAL=$(awk '/^\[global\]/ { g = 1; next } /^\[/ { g = 0 } g && $1 == "interval" { gsub(/"/, "", $3); print $3; exit }' "$EXAMPLE")
DEFAULT_S=$(awk -v d="$DEFAULT_INTERVAL" 'BEGIN {
    if (d ~ /^[0-9]+s$/) print d + 0; else if (d ~ /^[0-9]+m$/) print d * 60; else if (d ~ /^[0-9]+ms$/) print d / 1000 }')
[[ -n $DEFAULT_S ]] || die "cannot read the default interval from $EXAMPLE ([global] interval = \"$DEFAULT_INTERVAL\")"
ROUNDS=${BENCH_ROUNDS:-$(awk -v s="$DEFAULT_S" 'BEGIN { printf "%d", 3600 / s }')}

# ------------------------------------------------------------ prerequisites
need_bin redis-server redis-server
need_bin redis-cli redis-tools
need_bin psql postgresql-client
need_bin pg_isready postgresql-client
need_bin mariadbd mariadb-server
need_bin mariadb-install-db mariadb-server
need_bin mariadb mariadb-client
need_bin wrk wrk
need_bin curl curl
need_bin python3 python3
need_bin prometheus-redis-exporter prometheus-redis-exporter
need_bin prometheus-postgres-exporter prometheus-postgres-exporter
need_bin prometheus-mysqld-exporter prometheus-mysqld-exporter
need_bin pt-query-digest percona-toolkit
need_bin cargo "rustup; cargo is the Rust toolchain's"
need_bins_done "install them (or run scripts/install-test-deps.sh)"

bench_workdir perfwatch-bench
REDIS_STOPPED=0
# shellcheck disable=SC2317 # invoked by bench_cleanup
bench_exit_hook() {
    if ((REDIS_STOPPED)); then kill -CONT "$REDIS_PID" 2>/dev/null || true; fi
}
trap 'log "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
build_perfwatch "$build"
START=$SECONDS

# ------------------------------------------------------------------ servers
start_redis "$WORK/redis"
redis_load_data "$NKEYS"
PG_PREFIX='%m [%p] %q%u@%d '
start_postgres "$WORK/pg" "log_min_duration_statement = 0
log_line_prefix = '$PG_PREFIX'"
pg_load_app pw pgexp
MYSQL_SLOWLOG="$WORK/mariadb/slow.log"
start_mariadb "$WORK/mariadb" "performance_schema = ON
max_connections = 50
innodb_buffer_pool_size = 64M
innodb_flush_log_at_trx_commit = 2
slow_query_log = 1
slow_query_log_file = $MYSQL_SLOWLOG
long_query_time = 0"
mariadb_load_app "$NROWS"

# The app: a health endpoint with checks and an analytics endpoint.
free_port APP_PORT
cat >"$WORK/bench-app.py" <<'PY'
import http.server, json, sys, time

class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/health"):
            body = {"status": "ok", "checks": {"redis": {"status": "ok"}, "postgres": {"status": "ok"}, "mariadb": "up"}}
        elif self.path.startswith("/api/analytics/bad-days"):
            time.sleep(0.002)
            body = {"page": 2, "items": [{"day": "2024-01-%02d" % d, "trips": d * 7} for d in range(1, 26)]}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), App).serve_forever()
PY
# A free port can be taken (e.g. as an ephemeral port) before the app binds
# it: then try another.
for attempt in 1 2 3 4 5; do
    python3 "$WORK/bench-app.py" "$APP_PORT" >"$WORK/app.log" 2>&1 &
    APP_PID=$!
    PIDS+=("$APP_PID")
    for _ in $(seq 100); do
        curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$APP_PORT/health" && break 2
        kill -0 "$APP_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "the app did not start on port $APP_PORT (attempt $attempt): $(tail -n 1 "$WORK/app.log")"
    stop_pid "$APP_PID"
    free_port APP_PORT
done
wait_http "http://127.0.0.1:$APP_PORT/health" "$APP_PID" "$WORK/app.log"

redis_calibrate
mariadb_calibrate

# ------------------------------------------------------------------ exporters
start_redis_exporter
start_postgres_exporter pgexp
start_mysqld_exporter
PEERS=(redis_exporter postgres_exporter mysqld_exporter)
declare -A PEER_PID=([redis_exporter]=$REXP_PID [postgres_exporter]=$PEXP_PID [mysqld_exporter]=$MEXP_PID)
declare -A PEER_URL=([redis_exporter]=$REXP_URL [postgres_exporter]=$PEXP_URL [mysqld_exporter]=$MEXP_URL)
declare -A PEER_UP=([redis_exporter]=redis_up [postgres_exporter]=pg_up [mysqld_exporter]=mysql_up)
for peer in "${PEERS[@]}"; do
    curl -s --max-time 10 "${PEER_URL[$peer]}" >"$WORK/$peer.metrics" || die "scraping $peer failed"
    grep -q "^${PEER_UP[$peer]} 1" "$WORK/$peer.metrics" || die "$peer reports ${PEER_UP[$peer]} != 1: $(tail -n 5 "$WORK/$peer.log")"
done

# cpu_ms_per TICKS N: milliseconds of CPU per unit.
cpu_ms_per() { awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.3f", t / hz / n * 1000 }'; }

# Each exporter alone against its server (perfwatch is not running yet):
# load, CPU and duration of NSCRAPES sequential scrapes.
log "measuring each exporter over $NSCRAPES sequential scrapes"
for peer in "${PEERS[@]}"; do
    pid=${PEER_PID[$peer]}
    redis_snapshot "$WORK/$peer.r0"
    mariadb_snapshot "$WORK/$peer.m0"
    pg_statements pgexp >"$WORK/$peer.p0"
    c0=$(pg_conns pgexp) t0=$(cpu_ticks "$pid")
    sequential_scrapes "${PEER_URL[$peer]}" "$NSCRAPES" "$WORK/$peer.scrapes"
    t1=$(cpu_ticks "$pid") c1=$(pg_conns pgexp)
    pg_statements pgexp >"$WORK/$peer.p1"
    mariadb_snapshot "$WORK/$peer.m1"
    redis_snapshot "$WORK/$peer.r1"
    fig "$peer.cpu_ms" "$(cpu_ms_per $((t1 - t0)) "$NSCRAPES")"
    fig "$peer.single" "$(median_ms "$WORK/$peer.scrapes")"
    fig "$peer.rss_idle" "$(mib "$(rss_kb "$pid")")"
    case $peer in
    redis_exporter)
        redis_delta "$WORK/$peer.r0" "$WORK/$peer.r1" "$NSCRAPES" >"$WORK/load.$peer"
        fig redis.peer.cmds "$(kv_get commands "$WORK/load.$peer")"
        fig redis.peer.rtt "$(redis_round_trips "$WORK/load.$peer")"
        fig redis.peer.conns "$(kv_get connections "$WORK/load.$peer")"
        ;;
    postgres_exporter)
        fig pg.peer.stmts "$(awk -v n="$NSCRAPES" 'NR == FNR { a = $2; next } { printf "%.3g", ($2 - a) / n }' "$WORK/$peer.p0" "$WORK/$peer.p1")"
        fig pg.peer.conns "$(awk -v n="$NSCRAPES" -v d=$((c1 - c0)) 'BEGIN { printf "%.3g", d / n }')"
        ;;
    mysqld_exporter)
        read -r q c < <(mariadb_per_unit "$WORK/$peer.m0" "$WORK/$peer.m1" "$NSCRAPES")
        fig mysql.peer.questions "$q"
        fig mysql.peer.conns "$c"
        ;;
    esac
done

# ------------------------------------------------------------------ perfwatch
# write_config FILE INTERVAL_MS TIMEOUT_MS SCALE(0|1): everything on. With
# SCALE, every other period shrinks with the interval (index passes every
# 5m, custom queries every 1m, the phases' `for` and `window`), so the fast
# run does an hour's worth of them and keeps as much history as an hour at
# the default interval would.
# sql_target KIND NAME DSN QUERY TABLE: write_config's [[KIND]] target on the
# database app, its index stats every $index_iv and the custom query QUERY
# (TABLE's row count) every $query_iv.
sql_target() {
    cat <<EOF
[[$1]]
name = "$2"
dsn = "$3"
databases = ["app"]
index_interval = "$index_iv"

[[$1.query]]
name = "$4"
sql = "SELECT count(*) AS value FROM $5"
interval = "$query_iv"
EOF
}

write_config() {
    local f=$1 iv=$2 to=$3 index_iv="5m" query_iv="1m" scale=0
    if (($4)); then
        scale=$(awk -v i="$iv" -v d="$DEFAULT_S" 'BEGIN { printf "%.10g", i / (d * 1000) }')
        index_iv="$(awk -v i="$iv" -v d="$DEFAULT_S" 'BEGIN { printf "%d", 300 * i / d }')ms"
        query_iv="$(awk -v i="$iv" -v d="$DEFAULT_S" 'BEGIN { printf "%d", 60 * i / d }')ms"
    fi
    cat >"$f" <<EOF
[global]
interval = "${iv}ms"
timeout = "${to}ms"

[[redis]]
name = "cache"
url = "redis://127.0.0.1:$REDIS_PORT/0"
slowlog_entries = 128

[redis.keys]
prefixes = $REDIS_PREFIXES
max_groups = 50
scan_count = 1000
max_keys_per_poll = 20000
time_budget_ratio = 0.5
memory_sample_every = 10
# Worst case: a full cycle on every poll (the default 1m would walk the
# keyspace once a minute and make the per-poll Redis load look smaller).
min_cycle_interval = "0s"

$(sql_target postgres main "postgres://pw@127.0.0.1:$PG_PORT/app" trips_total trip)

$(sql_target mysql legacy "mysql://bench:bench@127.0.0.1:$DB_PORT/app" drivers_total driver)

[[slowlog]]
name = "mysql-slow"
format = "mysql"
path = "$MYSQL_SLOWLOG"
start_at = "beginning"
state_file = "$f.slowlog-mysql.json"

[[slowlog]]
name = "postgres-log"
format = "postgres"
path = "$PG_LOG"
log_line_prefix = "$PG_PREFIX"
start_at = "beginning"
state_file = "$f.slowlog-postgres.json"

[[http]]
name = "api-health"
url = "http://127.0.0.1:$APP_PORT/health"
kind = "health"

[[http]]
name = "bad-days"
url = "http://127.0.0.1:$APP_PORT/api/analytics/bad-days?page=2&pageSize=25"
kind = "latency"
repeat = 2

[[process]]
name = "bench-app"
match = "bench-app[.]py"

EOF
    # The example config's phases, as shipped (their triggers read the
    # targets and queries named above).
    sed -n '/^\[\[phase\]\]/,$p' "$EXAMPLE" | awk -v scale="$scale" '
        scale && ($1 == "for" || $1 == "window") && match($0, /"[0-9]+(ms|s|m|h)"/) {
            v = substr($0, RSTART + 1, RLENGTH - 2); u = v; sub(/^[0-9]+/, "", u)
            printf "%s = \"%dms\"\n", $1, (v + 0) * (u == "h" ? 3600000 : u == "m" ? 60000 : u == "s" ? 1000 : 1) * scale
            next
        }
        { print }' >>"$f"
    grep -q '^\[\[phase\]\]' "$f" || die "no [[phase]] table found in $EXAMPLE"
    "$PERFWATCH" check-config "$f" >"$WORK/check-config.out" 2>&1 || die "perfwatch check-config $f failed: $(cat "$WORK/check-config.out")"
}
TARGETS=(cache main legacy mysql-slow postgres-log api-health bad-days bench-app)

# start_perfwatch_all NAME CONFIG: start_perfwatch, then until every target
# has been polled successfully.
start_perfwatch_all() {
    local t deadline=$((SECONDS + 60))
    start_perfwatch "$@"
    for t in "${TARGETS[@]}"; do
        until [[ $(pw_metric "$PW_URL" perfwatch_target_up "$t" 2>/dev/null) == 1 ]]; do
            ((SECONDS < deadline)) || die "perfwatch ($1): target $t not up after 60 s; log: $(tail -n 5 "$WORK/$1.log")"
            sleep 0.1
        done
    done
    log "perfwatch ($1): all ${#TARGETS[@]} targets up"
}
# polls FILE: "target polls" of every target, and "errors N" (all targets).
polls() {
    curl -s --max-time 5 "$PW_URL/metrics" | awk '
        /^perfwatch_polls_total\{/ { match($0, /target="[^"]*"/); t = substr($0, RSTART + 8, RLENGTH - 9); print t, $NF }
        /^perfwatch_poll_errors_total\{/ { e += $NF }
        END { print "errors", e + 0 }' >"$1"
    [[ $(wc -l <"$1") -gt ${#TARGETS[@]} ]] || die "perfwatch_polls_total missing for some targets at $PW_URL/metrics"
}
# rounds A B: poll rounds between two polls files (mean over targets);
# min_polls A B: the fewest polls any target did.
rounds() { awk 'NR == FNR { a[$1] = $2; next } $1 != "errors" { s += $2 - a[$1]; n++ } END { printf "%.2f", s / n }' "$1" "$2"; }
min_polls() { awk 'NR == FNR { a[$1] = $2; next } $1 != "errors" { d = $2 - a[$1]; if (m == "" || d < m) m = d } END { print m }' "$1" "$2"; }
DB_TARGETS=(cache main legacy)
# db_polls: "cache main legacy" poll counts on one line.
db_polls() {
    local t out=""
    for t in "${DB_TARGETS[@]}"; do out+="$(pw_metric "$PW_URL" perfwatch_polls_total "$t") "; done
    echo "$out"
}
# server_snapshot SUFFIX: all three servers' counters, taken while no poll of
# a database target finished (retried otherwise); POLLS_<SUFFIX> = counts,
# TRIES_<SUFFIX> = snapshots taken (a retried one still cost the servers a
# measurement, which the deltas must calibrate out too).
server_snapshot() {
    local sfx=$1 before after try
    for try in $(seq 20); do
        printf -v "TRIES_$sfx" '%s' "$try"
        before=$(db_polls)
        redis_snapshot "$WORK/pw.r$sfx"
        mariadb_snapshot "$WORK/pw.m$sfx"
        pg_statements pw >"$WORK/pw.p$sfx"
        pg_conns pw >"$WORK/pw.c$sfx"
        after=$(db_polls)
        if [[ $before == "$after" ]]; then
            printf -v "POLLS_$sfx" '%s' "$after"
            return 0
        fi
        sleep 0.1
    done
    die "could not snapshot the servers between two polls"
}

write_config "$WORK/perfwatch.toml" "$INTERVAL_MS" "$TIMEOUT_MS" 0
start_perfwatch_all perfwatch "$WORK/perfwatch.toml"
PW_MAIN_PID=$PW_PID PW_MAIN_URL=$PW_URL
# Warm-up: a few rounds after every target is up.
wait_poll "$PW_URL" cache $(($(wait_poll "$PW_URL" cache 0) + 3)) >/dev/null
if ((hold)); then
    log "--hold: everything is up. perfwatch pid $PW_MAIN_PID at $PW_URL (binary $PERFWATCH, config $WORK/perfwatch.toml, log $WORK/perfwatch.log); redis_exporter $REXP_URL; Ctrl-C stops it all"
    # `wait` returns on a signal; a foreground sleep would defer the trap.
    while :; do
        sleep 3600 &
        wait $!
    done
fi
fig perfwatch.rss_idle "$(mib "$(rss_kb "$PW_MAIN_PID")")"

# CPU per poll round: an idle window (no scrape but the two reading the
# poll counters).
polls "$WORK/cpu.0"
t0=$(cpu_ticks "$PW_MAIN_PID")
sleep "$NPOLLS"
t1=$(cpu_ticks "$PW_MAIN_PID")
polls "$WORK/cpu.1"
CPU_ROUNDS=$(rounds "$WORK/cpu.0" "$WORK/cpu.1")
fig perfwatch.cpu_ms "$(cpu_ms_per $((t1 - t0)) "$CPU_ROUNDS")"

# Server load per poll: snapshots right after a Redis poll, NPOLLS polls apart.
p=$(wait_poll "$PW_URL" cache $(($(wait_poll "$PW_URL" cache 0) + 1)))
server_snapshot 0
wait_poll "$PW_URL" cache $((p + NPOLLS)) >/dev/null
server_snapshot 1
read -r rc0 pc0 mc0 <<<"$POLLS_0"
read -r rc1 pc1 mc1 <<<"$POLLS_1"
((rc1 > rc0 && pc1 > pc0 && mc1 > mc0)) || die "no polls of cache/main/legacy in the load window ($POLLS_0 -> $POLLS_1)"
# Measurements inside the window: the last snapshot, and any retried one.
redis_delta "$WORK/pw.r0" "$WORK/pw.r1" $((rc1 - rc0)) "$TRIES_1" >"$WORK/load.perfwatch"
fig redis.pw.cmds "$(kv_get commands "$WORK/load.perfwatch")"
fig redis.pw.rtt "$(redis_round_trips "$WORK/load.perfwatch")"
fig redis.pw.conns "$(kv_get connections "$WORK/load.perfwatch")"
fig pg.pw.stmts "$(awk -v n=$((pc1 - pc0)) 'NR == FNR { a = $2; next } { printf "%.3g", ($2 - a) / n }' "$WORK/pw.p0" "$WORK/pw.p1")"
fig pg.pw.conns "$(awk -v n=$((pc1 - pc0)) -v d=$(($(cat "$WORK/pw.c1") - $(cat "$WORK/pw.c0"))) 'BEGIN { printf "%.3g", d / n }')"
read -r q c < <(mariadb_per_unit "$WORK/pw.m0" "$WORK/pw.m1" $((mc1 - mc0)) "$TRIES_1")
fig mysql.pw.questions "$q"
fig mysql.pw.conns "$c"
sequential_scrapes "$PW_MAIN_URL/metrics" "$NSCRAPES" "$WORK/perfwatch.scrapes"
fig perfwatch.single "$(median_ms "$WORK/perfwatch.scrapes")"
curl -s --max-time 5 "$PW_MAIN_URL/metrics" >"$WORK/perfwatch.metrics"
fig perfwatch.samples "$(grep -vc '^#' "$WORK/perfwatch.metrics")"
fig perfwatch.phases "$(grep -c '^perfwatch_phase_' "$WORK/perfwatch.metrics" || true)"

# ------------------------------------------------------------------------ wrk
WRK_SCRAPES=0 WRK_ALLOW_ERRORS=0 WRK_SERVER_PID=
for who in perfwatch "${PEERS[@]}"; do
    if [[ $who == perfwatch ]]; then pid=$PW_MAIN_PID url=$PW_MAIN_URL/metrics; else pid=${PEER_PID[$who]} url=${PEER_URL[$who]}; fi
    run_wrk "$who" "$url" "$pid"
    fig "$who.rps" "$(kv_get rps "$WORK/wrk.$who")"
    fig "$who.p50" "$(awk '$1 == "p50_ms" { print $2 }' "$WORK/wrk.$who")"
    fig "$who.p99" "$(awk '$1 == "p99_ms" { print $2 }' "$WORK/wrk.$who")"
    fig "$who.rss_wrk" "$(mib "$(rss_kb "$pid")")"
    fig "$who.other_cores" "$(kv_get other_cores "$WORK/wrk.$who")"
done

# Redis stopped: perfwatch serves its last poll; redis_exporter waits for
# Redis on every scrape (its -redis.connection-timeout is 15 s).
log "SIGSTOP redis-server (pid $REDIS_PID)"
WRK_ARGS=("${WRK_STOPPED_ARGS[@]}") WRK_ALLOW_ERRORS=1
REDIS_STOPPED=1
kill -STOP "$REDIS_PID"
for who in perfwatch redis_exporter; do
    if [[ $who == perfwatch ]]; then pid=$PW_MAIN_PID url=$PW_MAIN_URL/metrics; else pid=$REXP_PID url=${PEER_URL[redis_exporter]}; fi
    run_wrk "$who-stopped" "$url" "$pid"
    fig "$who.stopped.rps" "$(kv_get rps "$WORK/wrk.$who-stopped")"
    fig "$who.stopped.requests" "$(kv_get requests "$WORK/wrk.$who-stopped")"
    # Socket errors (timeouts included) and non-2xx answers. wrk does not
    # count a request still waiting when the run ends, hence "requests".
    fig "$who.stopped.errors" "$(awk '$1 == "socket_errors" || $1 == "non_2xx" { s += $2 } END { print s + 0 }' "$WORK/wrk.$who-stopped")"
    fig "$who.stopped.other_cores" "$(kv_get other_cores "$WORK/wrk.$who-stopped")"
done
# Latency of what completed: perfwatch's must exist; the hung peer may have
# completed nothing (then there is no latency to report, only the count).
fig perfwatch.stopped.p99 "$(awk '$1 == "p99_ms" { print $2 }' "$WORK/wrk.perfwatch-stopped")"
REXP_STOPPED_P99=$(awk '$1 == "p99_ms" && $2 > 0 { print $2 }' "$WORK/wrk.redis_exporter-stopped")
kill -CONT "$REDIS_PID"
REDIS_STOPPED=0
WRK_ARGS=(-t2 -c4 "-d$WRK_DURATION" --latency) WRK_ALLOW_ERRORS=0
log "SIGCONT redis-server"
PW_THREADS=$(threads "$PW_MAIN_PID")
rss_breakdown "$PW_MAIN_PID" >"$WORK/rss.breakdown"
stop_pid "$PW_MAIN_PID"
for peer in "${PEERS[@]}"; do stop_pid "${PEER_PID[$peer]}"; done

# ------------------------------------------- an hour of polls, fast (soak)
write_config "$WORK/perfwatch-fast.toml" "$FAST_MS" $((FAST_MS * 9 / 10)) 1
start_perfwatch_all perfwatch-fast "$WORK/perfwatch-fast.toml"
wait_poll "$PW_URL" cache $(($(wait_poll "$PW_URL" cache 0) + 10)) >/dev/null
polls "$WORK/soak.0"
rss_breakdown "$PW_PID" >"$WORK/soak.breakdown.0"
rss0=$(rss_kb "$PW_PID") t0=$(cpu_ticks "$PW_PID") s0=$SECONDS
log "soak: $ROUNDS poll rounds at ${FAST_MS} ms (one hour at the default $DEFAULT_INTERVAL)"
deadline=$((SECONDS + ROUNDS * FAST_MS * 4 / 1000 + 60))
: >"$WORK/soak.rss"
while :; do
    polls "$WORK/soak.1"
    echo "$(rounds "$WORK/soak.0" "$WORK/soak.1") $(rss_kb "$PW_PID")" >>"$WORK/soak.rss"
    (($(min_polls "$WORK/soak.0" "$WORK/soak.1") >= ROUNDS)) && break
    ((SECONDS < deadline)) || die "soak: fewer than $ROUNDS polls of some target after $((SECONDS - s0)) s"
    sleep 1
done
rss1=$(rss_kb "$PW_PID") t1=$(cpu_ticks "$PW_PID")
rss_breakdown "$PW_PID" >"$WORK/soak.breakdown.1"
# Which mappings grew (kB), e.g. "anonymous (…) +812".
SOAK_GREW=$(awk -F'\t' 'NR == FNR { a[$2] = $1; next } $1 - a[$2] != 0 { printf "%s%s %+d kB", sep, $2, $1 - a[$2]; sep = "; " }' \
    "$WORK/soak.breakdown.0" "$WORK/soak.breakdown.1")
SOAK_ROUNDS=$(rounds "$WORK/soak.0" "$WORK/soak.1")
SOAK_ERRORS=$(($(kv_get errors "$WORK/soak.1") - $(kv_get errors "$WORK/soak.0")))
fig soak.rss_start "$(mib "$rss0")"
fig soak.rss_end "$(mib "$rss1")"
fig soak.growth "$(mib $((rss1 - rss0)))"
fig soak.cpu_ms "$(cpu_ms_per $((t1 - t0)) "$SOAK_ROUNDS")"
SOAK_SECS=$((SECONDS - s0))
# RSS at each quarter of the rounds: does it level off or keep growing?
SOAK_TREND=$(awk -v n="$ROUNDS" '{ for (q = 1; q <= 4; q++) if (!done[q] && $1 >= n * q / 4) { printf "%s%.1f", (q > 1 ? " → " : ""), $2 / 1024; done[q] = 1 } }' "$WORK/soak.rss")
stop_pid "$PW_PID"

# Server versions, then stop everything before the slow-log timing.
REDIS_VERSION=$(redis-server --version | awk '{ print $3 }' | sed 's/^v=//')
for pid in "${PIDS[@]}"; do stop_pid "$pid"; done

# ------------------------------------------------------------ slow log
log "slow log vs pt-query-digest (scripts/bench-slowlog.sh, BENCH_LOG_MB=$LOG_MB)"
BENCH_LOG_MB=$LOG_MB "$BENCH_ROOT/scripts/bench-slowlog.sh" --no-build --perfwatch "$PERFWATCH" \
    --cache-dir "$BENCH_ROOT/target/bench-cache" --figures "$WORK/slowlog.figures" >"$WORK/slowlog.out" 2>&1 ||
    die "scripts/bench-slowlog.sh failed: $(tail -n 20 "$WORK/slowlog.out")"
for k in pw_mbs pt_mbs pw_rss_mib pt_rss_mib log_mb classes_match classes_pt; do
    fig "slowlog.$k" "$(awk -v k="$k" '$1 == k { print $2 }' "$WORK/slowlog.figures")"
done

# ---------------------------------------------------------------- the report
NUM='^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$'
ratio() { # ratio A B: A / B ("—" unless both are numbers)
    if [[ $1 =~ $NUM && $2 =~ $NUM ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print (a == 0 ? "=" : "∞"); else printf "%.3g", a / b }'
    else
        echo "—"
    fi
}
sum3() { awk -v a="${F[$1]}" -v b="${F[$2]}" -v c="${F[$3]}" 'BEGIN { printf "%.1f", a + b + c }'; }
fig peers.rss_idle "$(sum3 redis_exporter.rss_idle postgres_exporter.rss_idle mysqld_exporter.rss_idle)"
fig peers.rss_wrk "$(sum3 redis_exporter.rss_wrk postgres_exporter.rss_wrk mysqld_exporter.rss_wrk)"
fig peers.cpu_ms "$(awk -v a="${F[redis_exporter.cpu_ms]}" -v b="${F[postgres_exporter.cpu_ms]}" -v c="${F[mysqld_exporter.cpu_ms]}" 'BEGIN { printf "%.3f", a + b + c }')"

ROWS=() MISSED=()
# row FIGURE PW PEER GOAL COND MISS: COND is an awk condition over the
# figures; MISS says by how much a missed goal was missed.
row() {
    local met="" r
    r=$(ratio "$2" "$3")
    if [[ -n $4 ]]; then
        if awk "BEGIN { exit !($5) }" 2>/dev/null; then met=yes; else
            met="**NO**: $6"
            MISSED+=("$1: $6")
        fi
    fi
    ROWS+=("| $1 | $2 | $3 | $r | $4 | $met |")
}
rps=${F[perfwatch.rps]} rrps=${F[redis_exporter.rps]} p99=${F[perfwatch.p99]}
if ((${#MISSING[@]} == 0)); then
    x=$(ratio "$rps" "$rrps")
    row "/metrics req/s vs redis_exporter (wrk)" "$rps" "$rrps" "≥ 10×" "$x >= 10" "${x}×, $(awk -v x="$x" 'BEGIN { printf "%.0f %%", (1 - x / 10) * 100 }') short"
    row "/metrics req/s vs postgres_exporter" "$rps" "${F[postgres_exporter.rps]}" "" "" ""
    row "/metrics req/s vs mysqld_exporter" "$rps" "${F[mysqld_exporter.rps]}" "" "" ""
    row "latency p50 (ms) vs redis_exporter" "${F[perfwatch.p50]}" "${F[redis_exporter.p50]}" "" "" ""
    row "latency p99 (ms) vs redis_exporter" "$p99" "${F[redis_exporter.p99]}" "< 2 ms" "$p99 < 2" "$(awk -v p="$p99" 'BEGIN { printf "%.2f ms over", p - 2 }')"
    row "latency p99 (ms) vs postgres_exporter" "$p99" "${F[postgres_exporter.p99]}" "" "" ""
    row "latency p99 (ms) vs mysqld_exporter" "$p99" "${F[mysqld_exporter.p99]}" "" "" ""
    srps=${F[perfwatch.stopped.rps]}
    row "Redis SIGSTOPped: req/s" "$srps" "${F[redis_exporter.stopped.rps]}" "flat (≥ 0.8× own)" "$srps >= 0.8 * $rps" \
        "$(ratio "$srps" "$rps")× its req/s with Redis running"
    row "Redis SIGSTOPped: p99 (ms)" "${F[perfwatch.stopped.p99]}" "${REXP_STOPPED_P99:-none completed}" "< 2 ms" \
        "${F[perfwatch.stopped.p99]} < 2" "$(awk -v p="${F[perfwatch.stopped.p99]}" 'BEGIN { printf "%.2f ms over", p - 2 }')"
    row "Redis SIGSTOPped: requests answered in $WRK_DURATION" "${F[perfwatch.stopped.requests]}" "${F[redis_exporter.stopped.requests]}" "" "" ""
    row "Redis SIGSTOPped: wrk errors (timeouts > 1 s, non-2xx)" "${F[perfwatch.stopped.errors]}" "${F[redis_exporter.stopped.errors]}" "0" \
        "${F[perfwatch.stopped.errors]} == 0" "${F[perfwatch.stopped.errors]} errors"
    row "single scrape, median (ms) vs redis_exporter" "${F[perfwatch.single]}" "${F[redis_exporter.single]}" "" "" ""
    row "RSS idle (MiB) vs the 3 exporters (sum)" "${F[perfwatch.rss_idle]}" "${F[peers.rss_idle]}" "≤ 12 MiB" \
        "${F[perfwatch.rss_idle]} <= 12" "$(awk -v r="${F[perfwatch.rss_idle]}" 'BEGIN { printf "%.1f MiB over", r - 12 }')"
    row "RSS after wrk (MiB) vs the 3 exporters (sum)" "${F[perfwatch.rss_wrk]}" "${F[peers.rss_wrk]}" "≤ 12 MiB" \
        "${F[perfwatch.rss_wrk]} <= 12" "$(awk -v r="${F[perfwatch.rss_wrk]}" 'BEGIN { printf "%.1f MiB over", r - 12 }')"
    row "RSS after 1 h of polls ($ROUNDS rounds at ${FAST_MS} ms) (MiB)" "${F[soak.rss_end]}" "—" "≤ 12 MiB" \
        "${F[soak.rss_end]} <= 12" "$(awk -v r="${F[soak.rss_end]}" 'BEGIN { printf "%.1f MiB over", r - 12 }')"
    row "RSS growth over those rounds (MiB)" "${F[soak.growth]}" "—" "~0 (≤ 0.5)" \
        "${F[soak.growth]} <= 0.5" "grew ${F[soak.growth]} MiB (${F[soak.rss_start]} → ${F[soak.rss_end]})"
    row "CPU per poll round / per scrape of each exporter (ms)" "${F[perfwatch.cpu_ms]}" "${F[peers.cpu_ms]}" "" "" ""
    row "CPU per poll round at ${FAST_MS} ms (ms)" "${F[soak.cpu_ms]}" "—" "" "" ""
    row "Redis commands per poll / scrape" "${F[redis.pw.cmds]}" "${F[redis.peer.cmds]}" "" "" ""
    row "Redis round trips per poll / scrape" "${F[redis.pw.rtt]}" "${F[redis.peer.rtt]}" "" "" ""
    row "Redis new connections per poll / scrape" "${F[redis.pw.conns]}" "${F[redis.peer.conns]}" "0" "${F[redis.pw.conns]} == 0" "${F[redis.pw.conns]} per poll"
    row "PostgreSQL statements per poll / scrape" "${F[pg.pw.stmts]}" "${F[pg.peer.stmts]}" "" "" ""
    row "PostgreSQL new connections per poll / scrape" "${F[pg.pw.conns]}" "${F[pg.peer.conns]}" "0" "${F[pg.pw.conns]} == 0" "${F[pg.pw.conns]} per poll"
    row "MariaDB Questions per poll / scrape" "${F[mysql.pw.questions]}" "${F[mysql.peer.questions]}" "" "" ""
    row "MariaDB new connections per poll / scrape" "${F[mysql.pw.conns]}" "${F[mysql.peer.conns]}" "0" "${F[mysql.pw.conns]} == 0" "${F[mysql.pw.conns]} per poll"
    sx=$(ratio "${F[slowlog.pw_mbs]}" "${F[slowlog.pt_mbs]}")
    row "slow log MB/s vs pt-query-digest (${F[slowlog.log_mb]} MB)" "${F[slowlog.pw_mbs]}" "${F[slowlog.pt_mbs]}" "≥ 50×" "$sx >= 50" \
        "${sx}×, $(awk -v x="$sx" 'BEGIN { printf "%.0f %%", (1 - x / 50) * 100 }') short"
    row "slow log max RSS (MiB) vs pt-query-digest" "${F[slowlog.pw_rss_mib]}" "${F[slowlog.pt_rss_mib]}" "" "" ""
    row "slow log query classes agreeing with pt" "${F[slowlog.classes_match]}" "${F[slowlog.classes_pt]}" "all" \
        "${F[slowlog.classes_match]} == ${F[slowlog.classes_pt]}" "${F[slowlog.classes_match]} of ${F[slowlog.classes_pt]}"
fi

PW_VERSION=$(perfwatch_version)
peer_versions="prometheus-redis-exporter $(redis_exporter_version)"
peer_versions+=", prometheus-postgres-exporter $(prometheus-postgres-exporter --version 2>&1 | awk 'NR == 1 { print $3 }')"
peer_versions+=", prometheus-mysqld-exporter $(mysqld_exporter_version)"
peer_versions+=", pt-query-digest $(pt-query-digest --version 2>&1 | awk 'END { print $NF }')"
WRK_VERSION=$(wrk_version)
disturbed() {
    local w
    for w in perfwatch "${PEERS[@]}" perfwatch.stopped redis_exporter.stopped; do
        if awk -v o="${F[$w.other_cores]:-0}" 'BEGIN { exit !(o >= 0.15) }'; then
            printf '%s ' "$w (${F[$w.other_cores]} cores)"
        fi
    done
}
DISTURBED=$(disturbed)
REPRODUCE="scripts/bench.sh${ARGS[*]:+ ${ARGS[*]}}"

report() {
    cat <<EOF
Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(machine_desc); the run took $((SECONDS - START)) s.
perfwatch $PW_VERSION (git $(git_rev)); redis-server $REDIS_VERSION, $PG_VERSION, MariaDB $DB_VERSION; $peer_versions (Debian packages); wrk $WRK_VERSION.

Reproduce: \`$REPRODUCE\` (starts its own redis-server, PostgreSQL, MariaDB, a small Python app, the exporters and wrk on free 127.0.0.1 ports; kills them on exit).

Setup: one perfwatch process, every collector on (${#TARGETS[@]} targets: Redis \`cache\` with the key sampler over $NKEYS keys (\`min_cycle_interval = "0s"\`: a full SCAN cycle on every poll, the worst case; the default 1m walks the keyspace once a minute), PostgreSQL \`main\` and MariaDB \`legacy\` each with a custom query, the MariaDB slow log and the PostgreSQL log (\`log_min_duration_statement = 0\`) of those servers, a health and a latency probe of the app, a process matcher, and the $(grep -c '^\[\[phase\]\]' "$EXAMPLE") \`[[phase]]\` tables of config/perfwatch.example.toml), interval ${INTERVAL_MS} ms, timeout ${TIMEOUT_MS} ms${BENCH_PW_ENV:+, environment \`$BENCH_PW_ENV\`}; ${F[perfwatch.samples]} samples per scrape, ${F[perfwatch.phases]} of them phase series. Each exporter runs with its default flags against the same server. Load: \`wrk ${WRK_ARGS[*]}\` on each /metrics, one at a time, perfwatch polling throughout; with Redis SIGSTOPped, \`wrk ${WRK_STOPPED_ARGS[*]}\`. CPU per poll round over a ${NPOLLS} s idle window (${CPU_ROUNDS} rounds); exporters' CPU and server load over $NSCRAPES sequential scrapes each, measured before perfwatch started; perfwatch's server load over $NPOLLS polls (counted per target with \`perfwatch_polls_total\`), the measuring clients calibrated out. "1 h of polls": a second perfwatch with the same config at ${FAST_MS} ms (index passes, custom queries and the phases' \`for\`/\`window\` scaled alike) for $ROUNDS rounds = 1 h at the default ${DEFAULT_INTERVAL} (${SOAK_SECS} s, $SOAK_ERRORS poll errors; RSS after each quarter of the rounds: $SOAK_TREND MiB; growth by mapping: ${SOAK_GREW:-none}). "Peer" for RSS and CPU is the three exporters together (one of each: what perfwatch replaces).

| figure | perfwatch | peer | ratio | goal | met? |
|---|---:|---:|---:|---|---|
$(printf '%s\n' "${ROWS[@]}")

RSS of each exporter (idle / after its wrk run, MiB): redis_exporter ${F[redis_exporter.rss_idle]} / ${F[redis_exporter.rss_wrk]}, postgres_exporter ${F[postgres_exporter.rss_idle]} / ${F[postgres_exporter.rss_wrk]}, mysqld_exporter ${F[mysqld_exporter.rss_idle]} / ${F[mysqld_exporter.rss_wrk]}. CPU per scrape (ms): redis_exporter ${F[redis_exporter.cpu_ms]}, postgres_exporter ${F[postgres_exporter.cpu_ms]}, mysqld_exporter ${F[mysqld_exporter.cpu_ms]}. perfwatch threads: $PW_THREADS.
${DISTURBED:+
**Caution:** other processes used the CPU during these wrk runs: $DISTURBED; their figures are not trustworthy.
}
perfwatch's RSS after the wrk runs by mapping (/proc/PID/smaps):

| kB | mapping |
|---:|---|
$(awk -F'\t' '{ printf "| %s | %s |\n", $1, $2 }' "$WORK/rss.breakdown")
EOF
}
REPORT=$(report)
printf '\n%s\n' "$REPORT"

die_if_missing
if ((${#ROWS[@]} == 0)); then die "no figure table was produced"; fi
if ((${#MISSED[@]})); then
    printf '[bench] goal missed: %s\n' "${MISSED[@]}" >&2
fi
if ((write_doc)); then
    if [[ -n $DISTURBED ]] && ((!allow_busy)); then
        log "NOT RECORDED: other processes used the CPU during a wrk run ($DISTURBED); docs/PERFORMANCE.md left as it was. Rerun on an idle machine (or pass --allow-busy)."
        exit 4
    fi
    bench_write_doc bench-all "All collectors at once" "$REPORT"
fi
log "done in $((SECONDS - START)) s"
((${#MISSED[@]})) && ((strict)) && exit 3
exit 0
