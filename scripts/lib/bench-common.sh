# shellcheck shell=bash
# Shared by scripts/bench*.sh: throwaway servers (redis-server, PostgreSQL,
# MariaDB) in temp dirs on free 127.0.0.1 ports, process control and cleanup,
# /proc readings (RSS, CPU), server-load snapshots, wrk runs with busy-machine
# detection, and rewriting a generated block of docs/PERFORMANCE.md.
#
# Source it after `set -euo pipefail` with BENCH_NAME set (the log prefix):
#   BENCH_NAME=bench-redis
#   . "$(dirname "$0")/lib/bench-common.sh"
# Nothing here touches the machine's own services: every server gets its own
# data dir and a free port, and bench_cleanup (the EXIT trap that
# bench_workdir installs) kills everything listed in PIDS.

: "${BENCH_NAME:?set BENCH_NAME before sourcing bench-common.sh}"
# Figures are parsed and sorted by awk and sort: one locale for all.
export LC_ALL=C
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The document every bench writes its figures into.
BENCH_DOC="$BENCH_ROOT/docs/PERFORMANCE.md"
HZ=$(getconf CLK_TCK)

log() { printf '[%s] %s\n' "$BENCH_NAME" "$*" >&2; }
die() {
    printf '\n[%s] FAILED: %s\n' "$BENCH_NAME" "$*" >&2
    exit 1
}

# ------------------------------------------------------------------ options
# bench_help: the script's header comment (its documentation).
bench_help() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
# bench_flag ARG ALLOWED: applies ARG if it is one of the options the bench
# scripts spell alike and is in ALLOWED ("--no-build --keep ..."): sets
# build=0, write_doc=0, strict=1, KEEP=1, allow_busy=1 or quick=1; -h/--help
# prints the help. Anything else prints the usage (ALLOWED, then
# BENCH_USAGE_EXTRA) and exits 2.
# shellcheck disable=SC2034 # the flags are read by the sourcing scripts
bench_flag() {
    local usage
    if [[ " $2 " == *" $1 "* ]]; then
        case $1 in
        --no-build) build=0 && return 0 ;;
        --no-doc) write_doc=0 && return 0 ;;
        --strict) strict=1 && return 0 ;;
        --keep) KEEP=1 && return 0 ;;
        --allow-busy) allow_busy=1 && return 0 ;;
        --quick) quick=1 && return 0 ;;
        esac
    fi
    if [[ $1 == -h || $1 == --help ]]; then
        bench_help
        exit 0
    fi
    # shellcheck disable=SC2086 # ALLOWED is a word list
    usage=$(printf ' [%s]' $2)
    echo "usage: $0$usage${BENCH_USAGE_EXTRA:+ $BENCH_USAGE_EXTRA}" >&2
    exit 2
}
# bench_flags ALLOWED ARG...: the defaults (build=1 write_doc=1 strict=0
# allow_busy=0 quick=0), then bench_flag for each ARG. --quick never writes
# the doc.
# shellcheck disable=SC2034 # the flags are read by the sourcing scripts
bench_flags() {
    local allowed=$1 arg
    shift
    build=1 write_doc=1 strict=0 allow_busy=0 quick=0
    for arg in "$@"; do bench_flag "$arg" "$allowed"; done
    if ((quick)); then write_doc=0; fi
}
# bench_knob VAR ENV DEFAULT QUICK_DEFAULT: sets VAR to the environment
# variable ENV when it is set and not empty, else to QUICK_DEFAULT under
# --quick and to DEFAULT otherwise.
bench_knob() {
    local value=${!2:-}
    if [[ -z $value ]]; then
        if ((quick)); then value=$4; else value=$3; fi
    fi
    printf -v "$1" '%s' "$value"
}

# ------------------------------------------------------------- prerequisites
BENCH_MISSING=()
# need_bin BIN HOW: remembers BIN as missing (with how to install it).
need_bin() { command -v "$1" >/dev/null 2>&1 || BENCH_MISSING+=("$1 (apt-get install $2)"); }
# need_bins_done HINT: dies listing every missing binary.
need_bins_done() {
    ((${#BENCH_MISSING[@]} == 0)) && return 0
    printf '[%s] missing: %s\n' "$BENCH_NAME" "${BENCH_MISSING[@]}" >&2
    die "$1"
}
# mariadbd and mariadb-install-db live in /usr/sbin.
export PATH="$PATH:/usr/sbin:/sbin"

# ------------------------------------------------------- work dir and cleanup
# Knobs the caller may set before bench_workdir:
#   KEEP=1               keep the work dir whatever happens
#   BENCH_KEEP_ON_FAIL   keep it after an exit code not in BENCH_OK_CODES (1)
#   BENCH_OK_CODES       exit codes that are not failures (" 0 ")
#   BENCH_KILL_WAIT      tenths of a second a process gets after SIGTERM (50)
# and may define bench_exit_hook (run first on exit, e.g. to SIGCONT a server).
KEEP=${KEEP:-0}
BENCH_KEEP_ON_FAIL=${BENCH_KEEP_ON_FAIL:-1}
BENCH_OK_CODES=${BENCH_OK_CODES:-" 0 "}
BENCH_KILL_WAIT=${BENCH_KILL_WAIT:-50}
PIDS=()

# bench_workdir PREFIX: creates WORK and installs the exit/signal traps.
bench_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
bench_cleanup() {
    local rc=$? pid
    if declare -F bench_exit_hook >/dev/null; then bench_exit_hook || true; fi
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq "$BENCH_KILL_WAIT"); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((KEEP)) || { ((BENCH_KEEP_ON_FAIL)) && [[ $BENCH_OK_CODES != *" $rc "* ]]; }; then
        log "work dir kept: $WORK (logs, configs, outputs)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}

# stop_pid PID: stops one process this script started and forgets it.
stop_pid() {
    local pid=$1 p keep_pids=()
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep_pids+=("$p"); done
    PIDS=("${keep_pids[@]}")
}

USED_PORTS=" "
# Ports are picked below the kernel's ephemeral range: a port in it can be
# taken by any outgoing connection (wrk, curl, an exporter's) between the
# check and the bind.
PORT_LO=10000 PORT_SPAN=40000
if read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && ((eph_lo - PORT_LO >= 5000)); then
    PORT_SPAN=$((eph_lo - PORT_LO))
fi
# free_port VAR: sets VAR to a port on 127.0.0.1 nobody listens on (and not
# handed out before in this run).
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((PORT_LO + RANDOM % PORT_SPAN))
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

# ---------------------------------------------------------- peer exporters
# Each starts a Debian peer exporter with its default flags on a free port,
# logging to WORK/NAME.log, and returns once its /metrics answers.
# start_redis_exporter: sets REXP_PID, REXP_URL (its /metrics).
start_redis_exporter() {
    local port
    free_port port
    prometheus-redis-exporter -redis.addr "redis://127.0.0.1:$REDIS_PORT" \
        -web.listen-address "127.0.0.1:$port" >"$WORK/redis_exporter.log" 2>&1 &
    REXP_PID=$!
    PIDS+=("$REXP_PID")
    REXP_URL="http://127.0.0.1:$port/metrics"
    wait_http "$REXP_URL" "$REXP_PID" "$WORK/redis_exporter.log"
    log "prometheus-redis-exporter pid $REXP_PID on 127.0.0.1:$port"
}
# start_postgres_exporter ROLE: logs in as ROLE to database app; sets
# PEXP_PID, PEXP_URL.
start_postgres_exporter() {
    local port
    free_port port
    DATA_SOURCE_NAME="postgresql://$1@127.0.0.1:$PG_PORT/app?sslmode=disable" \
        prometheus-postgres-exporter --web.listen-address="127.0.0.1:$port" >"$WORK/postgres_exporter.log" 2>&1 &
    PEXP_PID=$!
    PIDS+=("$PEXP_PID")
    PEXP_URL="http://127.0.0.1:$port/metrics"
    wait_http "$PEXP_URL" "$PEXP_PID" "$WORK/postgres_exporter.log"
}
# start_mysqld_exporter: logs in as bench/bench (mariadb_load_app); sets
# MEXP_PID, MEXP_URL.
start_mysqld_exporter() {
    local port
    free_port port
    printf '[client]\nuser = bench\npassword = bench\nhost = 127.0.0.1\nport = %s\n' "$DB_PORT" >"$WORK/mysqld_exporter.my.cnf"
    chmod 600 "$WORK/mysqld_exporter.my.cnf"
    prometheus-mysqld-exporter --config.my-cnf="$WORK/mysqld_exporter.my.cnf" \
        --web.listen-address="127.0.0.1:$port" >"$WORK/mysqld_exporter.log" 2>&1 &
    MEXP_PID=$!
    PIDS+=("$MEXP_PID")
    MEXP_URL="http://127.0.0.1:$port/metrics"
    wait_http "$MEXP_URL" "$MEXP_PID" "$WORK/mysqld_exporter.log"
}
redis_exporter_version() { prometheus-redis-exporter -version 2>&1 | sed -n 's/.*Redis Metrics Exporter \([^ ]*\).*/\1/p' | head -n 1; }
mysqld_exporter_version() { prometheus-mysqld-exporter --version 2>&1 | awk 'NR == 1 { print $3 }'; }
wrk_version() { { wrk -v 2>&1 || true; } | head -n 1 | awk '{ print $2 }'; }

# ------------------------------------------------------------------ perfwatch
# BENCH_PERFWATCH measures another build (e.g. one with other profile settings).
PERFWATCH=${BENCH_PERFWATCH:-$BENCH_ROOT/target/release/perfwatch}
# build_perfwatch BUILD(0|1): cargo build --release (when BUILD), then runs a
# private copy from WORK: a concurrent `cargo build` must not swap the binary
# under the benchmark.
build_perfwatch() {
    if (($1)); then
        log "cargo build --release --locked -p perfwatch"
        (cd "$BENCH_ROOT" && cargo build --release --locked --quiet -p perfwatch) || die "cargo build --release failed"
    fi
    [[ -x $PERFWATCH ]] || die "$PERFWATCH not found: run cargo build --release (or drop --no-build)"
    cp "$PERFWATCH" "$WORK/perfwatch"
    PERFWATCH="$WORK/perfwatch"
}

# pw_metric URL NAME TARGET: the sum of perfwatch's NAME series of TARGET
# (URL is the base URL); fails when there is none.
pw_metric() {
    curl -s --max-time 5 "$1/metrics" | awk -v n="$2" -v t="target=\"$3\"" '
        index($0, n "{") == 1 && index($1, t) { s += $NF; found = 1 }
        END { if (found) printf "%.10g\n", s; else exit 1 }'
}

# start_perfwatch NAME CONFIG: perfwatch on a free port, logging to
# WORK/NAME.log; sets PW_PID and PW_URL (base URL) once /-/ready answers.
# BENCH_PW_ENV (e.g. "MALLOC_ARENA_MAX=1") is added to its environment, to
# try allocator settings without a rebuild.
start_perfwatch() {
    local port pw_env
    read -r -a pw_env <<<"${BENCH_PW_ENV:-}"
    free_port port
    env "${pw_env[@]}" "$PERFWATCH" --config.file "$2" --web.listen-address "127.0.0.1:$port" \
        --log.level warn >"$WORK/$1.log" 2>&1 &
    PW_PID=$!
    PIDS+=("$PW_PID")
    PW_URL="http://127.0.0.1:$port"
    wait_http "$PW_URL/-/ready" "$PW_PID" "$WORK/$1.log"
    log "perfwatch ($1) pid $PW_PID on 127.0.0.1:$port"
}

# wait_poll URL TARGET N [SECONDS]: until TARGET has finished N polls (at
# most SECONDS, 60); prints the count.
wait_poll() {
    local url=$1 target=$2 want=$3 deadline=$((SECONDS + ${4:-60})) p
    while ((SECONDS < deadline)); do
        p=$(pw_metric "$url" perfwatch_polls_total "$target") || die "no perfwatch_polls_total for $target at $url/metrics"
        if ((${p%.*} >= want)); then
            echo "${p%.*}"
            return 0
        fi
        sleep 0.01
    done
    die "perfwatch: target $target did not reach $want polls within ${4:-60} s"
}

perfwatch_version() { "$PERFWATCH" --version 2>&1 | head -n 1 | sed 's/^perfwatch //'; }

# rss_breakdown PID: where a perfwatch process' RSS is, by mapping
# (/proc/PID/smaps), as "kB<TAB>kind" lines, largest first: its own binary,
# the brk heap, anonymous mappings (malloc arenas of the worker threads,
# thread stacks), shared libraries, the main stack.
rss_breakdown() {
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
    ' "/proc/$1/smaps" | sort -rn
}

# git_rev: the commit benchmarked, flagged when src/ has uncommitted changes.
git_rev() {
    local rev
    rev=$(cd "$BENCH_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(cd "$BENCH_ROOT" && git status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
        rev+=" + uncommitted changes in src/"
    fi
    echo "$rev"
}
cpu_model() { awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo; }
# machine_desc: "2 × CPU, 24 GiB, Linux 6.x".
machine_desc() {
    local cpu
    cpu=$(cpu_model)
    echo "$(nproc) × ${cpu:-unknown CPU}, $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
}

# ----------------------------------------------------------------- /proc
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
# cpu_ticks PID: utime + stime so far, in clock ticks (HZ per second).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# our_ticks: CPU of every process this script started, of all their
# descendants, and of the descendants they already reaped (cutime + cstime):
# a PostgreSQL or MariaDB server we started serves an exporter's scrape in a
# backend process or thread of its own, and that work is the peer's load, not
# outside load. (Counting only the started PIDs flagged every postgres_exporter
# run as disturbed.) Sampled twice, the difference is the tree's CPU in
# between, also for backends that exited between the samples.
our_ticks() {
    local roots=" ${PIDS[*]} "
    ps -e -o pid=,ppid= 2>/dev/null | awk -v roots="$roots" '
        { parent[$1] = $2 }
        END {
            n = split(roots, r, " ")
            for (i = 1; i <= n; i++) if (r[i] != "") ours[r[i]] = 1
            do {
                grew = 0
                for (p in parent) if (!(p in ours) && (parent[p] in ours)) { ours[p] = 1; grew = 1 }
            } while (grew)
            for (p in ours) print p
        }' | while read -r pid; do
        # Fields after "pid (comm) ": comm may hold spaces, so cut at ") ".
        # A process that exited since `ps` (a short-lived curl child) is
        # skipped: under pipefail its failed read must not fail the sum.
        sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null || true
    done | awk '{ sum += $12 + $13 + $14 + $15 } END { printf "%d\n", sum }'
}
# children_ticks: CPU of this shell's waited-for children so far (wrk), in
# ticks, into CHILD_TICKS. `times` must run in this shell, not in $(...).
children_ticks() {
    times >"$WORK/times"
    CHILD_TICKS=$(awk -v hz="$HZ" 'NR == 2 {
        split($1, u, /[ms]/); split($2, s, /[ms]/)
        printf "%d", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * hz }' "$WORK/times")
}
# die_if_missing: fails naming every figure fig could not record.
die_if_missing() {
    ((${#MISSING[@]} == 0)) || die "could not measure: ${MISSING[*]} (work dir: $WORK)"
}
# kv_get KEY FILE: the value of KEY in a "name value" file (0 when absent).
kv_get() { awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }' "$2"; }
# fig KEY VALUE: records figure KEY in F, which must be a number; anything
# else is recorded as n/a and KEY listed in MISSING (the scripts fail on it).
declare -A F
MISSING=()
# shellcheck disable=SC2034 # F is read by the sourcing scripts
fig() {
    if [[ $2 =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then
        F[$1]=$2
    else
        F[$1]="n/a"
        MISSING+=("$1")
    fi
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# --------------------------------------------------------------- scraping
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
# quantile_ms FILE Q: the Q quantile (nearest rank) of FILE's seconds, in ms.
quantile_ms() { sort -g "$1" | awk -v q="$2" '{ v[NR] = $1 } END { i = int(q * NR + 0.999999); if (i < 1) i = 1; if (NR) printf "%.2f", v[i] * 1000 }'; }
# median_ms FILE [DECIMALS]: the median of FILE's seconds, in ms.
median_ms() {
    sort -g "$1" | awk -v d="${2:-3}" '{ v[NR] = $1 }
        END { if (NR) printf "%." d "f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) * 1000 }'
}

# ------------------------------------------------------- wrk on an idle machine
# wait_idle: until other processes use < 0.15 cores over a second (at most
# IDLE_WAIT seconds); a busy machine (a build running beside us) would make
# the latency tail meaningless.
IDLE_WAIT=${BENCH_IDLE_WAIT:-300}
WRK_TRIES=${BENCH_WRK_TRIES:-5}
# load_mark: remembers the machine's busy ticks, ours and the time, for
# other_cores.
load_mark() { LOAD_MARK="$(busy_ticks) $(our_ticks) $(date +%s%N)"; }
# other_cores: the cores other processes used since load_mark.
other_cores() {
    local b0 o0 t0 b1 o1 t1
    read -r b0 o0 t0 <<<"$LOAD_MARK"
    b1=$(busy_ticks) o1=$(our_ticks) t1=$(date +%s%N)
    awk -v t=$((b1 - b0 - (o1 - o0))) -v hz="$HZ" -v ns=$((t1 - t0)) \
        'BEGIN { printf "%.2f", (t < 0 ? 0 : t) / hz / (ns / 1e9) }'
}
wait_idle() {
    local deadline=$((SECONDS + IDLE_WAIT)) other
    while :; do
        load_mark
        sleep 1
        other=$(other_cores)
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

# run_wrk NAME URL PID: one wrk run into $WORK/wrk.NAME ("name value"
# lines), retried (up to WRK_TRIES runs) while other processes disturbed it;
# the last run is the one reported. Settings (globals):
#   WRK_ARGS            wrk's options (-t2 -c4 -d10s --latency)
#   WRK_SCRAPES         sequential curl scrapes first, into $WORK/NAME.scrapes (0: none)
#   WRK_SERVER_PID      a backend whose CPU is recorded as server_cpu_s (optional)
#   WRK_ALLOW_ERRORS=1  record socket errors/timeouts/non-2xx instead of dying
run_wrk() {
    local try other
    for try in $(seq "$WRK_TRIES"); do
        wrk_once "$@"
        other=$(kv_get other_cores "$WORK/wrk.$1")
        echo "attempts $try" >>"$WORK/wrk.$1"
        awk -v o="$other" 'BEGIN { exit !(o >= 0.15) }' || return 0
        if ((try < WRK_TRIES)); then
            log "wrk run $try against $1 disturbed: other processes used $other cores; retrying"
        else
            log "wrk run $try against $1 disturbed: other processes used $other cores; no tries left, the report says so"
        fi
    done
}
wrk_once() {
    local name=$1 url=$2 pid=$3 out="$WORK/wrk.$1.txt" c0 c1 r0=0 r1=0 b0 b1 o0 o1 w0 w1 t0 t1
    local server=${WRK_SERVER_PID:-}
    wait_idle
    # Sequential single scrapes first (same idle machine), then the load.
    if ((${WRK_SCRAPES:-0} > 0)); then
        sequential_scrapes "$url" "$WRK_SCRAPES" "$WORK/$name.scrapes"
    fi
    log "wrk ${WRK_ARGS[*]} $url ($name)"
    children_ticks
    w0=$CHILD_TICKS c0=$(cpu_ticks "$pid") o0=$(our_ticks)
    [[ -n $server ]] && r0=$(cpu_ticks "$server")
    b0=$(busy_ticks) t0=$(date +%s%N)
    wrk "${WRK_ARGS[@]}" "$url" >"$out" 2>&1 || die "wrk against $name failed: $(tail -n 5 "$out")"
    b1=$(busy_ticks) t1=$(date +%s%N)
    children_ticks
    w1=$CHILD_TICKS c1=$(cpu_ticks "$pid") o1=$(our_ticks)
    [[ -n $server ]] && r1=$(cpu_ticks "$server")
    if ((!${WRK_ALLOW_ERRORS:-0})) && grep -Eq 'Non-2xx|Socket errors' "$out"; then
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
        $1 == "Socket" && $2 == "errors:" {
            gsub(/,/, ""); print "socket_errors", $4 + $6 + $8; print "timeouts", $10
        }
        $1 == "Non-2xx" { print "non_2xx", $NF }
        END {
            printf "cpu_s %.2f\nserver_cpu_s %.2f\nwrk_cpu_s %.2f\n", c / hz, r / hz, w / hz
            if (n > 0) printf "cpu_us_per_req %.1f\n", c / hz / n * 1e6
            printf "other_cores %.2f\n", (other < 0 ? 0 : other) / hz / secs
        }
    ' "$out" >"$WORK/wrk.$name"
}

# ---------------------------------------------------------------- redis-server
# start_redis DIR: redis-server (persistence off) on a free port; sets
# REDIS_PORT, REDIS_PID.
start_redis() {
    local dir=$1 port pid attempt
    mkdir -p "$dir"
    REDIS_PORT='' REDIS_PID=''
    for attempt in 1 2 3 4 5; do
        free_port port
        redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
            --save "" --appendonly no --daemonize no \
            --logfile "$dir/redis.log" >"$dir/stdout.log" 2>&1 &
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
        log "redis-server did not start on port $port (attempt $attempt): $(tail -n 3 "$dir/redis.log" 2>/dev/null)"
        stop_pid "$pid"
    done
    [[ -n $REDIS_PORT ]] || die "could not start redis-server; see $dir/redis.log"
    log "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
}
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# redis_load_data N: N keys over four prefixes (strings with and without TTL,
# hashes, lists), 0.7 N hits, N/5 misses, and 20 SLOWLOG entries.
# shellcheck disable=SC2034 # used by the sourcing scripts
REDIS_PREFIXES='["session:", "cache:page:", "user:", "queue:"]'
redis_load_data() {
    local n=$1 dbsize
    log "loading $n keys"
    awk -v n="$n" 'BEGIN {
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
    [[ $dbsize == "$n" ]] || die "expected $n keys in Redis, found $dbsize"
}

# redis_snapshot FILE: counters as "name value" lines (one redis-cli = 1
# connection, 1 INFO command; calibrated out by redis_delta).
redis_snapshot() {
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
# redis_delta A B [DIVISOR]: (B - A - calibration) / DIVISOR for every
# counter, as "name value" lines; counters that did not move are left out.
redis_delta() {
    awk -v div="${3:-1}" -v m="${4:-1}" '
        FILENAME == ARGV[1] { cal[$1] = $2; next }
        FILENAME == ARGV[2] { a[$1] = $2; next }
        { d = ($2 - a[$1] - m * cal[$1]) / div; if (d != 0) printf "%s %.10g\n", $1, d }
    ' "$WORK/redis.calibration" "$1" "$2"
}
# redis_calibrate: three snapshots with nothing else talking to Redis; their
# difference is what one measurement costs and must be the same twice.
redis_calibrate() {
    : >"$WORK/redis.calibration"
    redis_snapshot "$WORK/cal0"
    redis_snapshot "$WORK/cal1"
    redis_snapshot "$WORK/cal2"
    redis_delta "$WORK/cal0" "$WORK/cal1" >"$WORK/calibration.a"
    redis_delta "$WORK/cal1" "$WORK/cal2" >"$WORK/calibration.b"
    cmp -s "$WORK/calibration.a" "$WORK/calibration.b" ||
        die "measurement overhead is not stable (is something else using Redis on port $REDIS_PORT?):
$(paste "$WORK/calibration.a" "$WORK/calibration.b")"
    cp "$WORK/calibration.a" "$WORK/redis.calibration"
    log "calibrated: one Redis measurement costs $(tr '\n' ' ' <"$WORK/redis.calibration")"
}
# redis_round_trips FILE: Redis read events minus connection closes (closes
# = new connections - the change in connected_clients).
redis_round_trips() { awk '{ v[$1] = $2 } END { printf "%.10g", v["reads"] - (v["connections"] - v["clients"]) }' "$1"; }

# ------------------------------------------------------------------ PostgreSQL
# start_postgres DIR [EXTRA_CONF]: initdb + postgres (as the postgres user
# when run as root) in DIR/data on a free port, pg_stat_statements loaded,
# log_connections on, stderr to DIR/postgres.log. EXTRA_CONF lines are
# appended to postgresql.conf (later settings win). Sets PGBIN, PG_PORT,
# PG_PID, PG_LOG, PG_VERSION, AS_PG.
start_postgres() {
    local dir=$1 extra=${2:-} data
    PGBIN=$(find /usr/lib/postgresql/*/bin -maxdepth 0 2>/dev/null | sort -V | tail -1 || true)
    [[ -n $PGBIN && -x $PGBIN/postgres ]] || die "postgres not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    [[ -f $(find /usr/share/postgresql/*/extension -maxdepth 0 2>/dev/null | sort -V | tail -1)/pg_stat_statements.control ]] ||
        die "pg_stat_statements extension not found (postgresql contrib)"
    AS_PG=()
    mkdir -p "$dir"
    if [[ $(id -u) == 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root needs the postgres system user (apt-get install postgresql)"
        chmod 755 "$WORK" "$dir"
        AS_PG=(runuser -u postgres --)
    fi
    free_port PG_PORT
    data=$dir/data
    mkdir -m 700 "$data"
    ((${#AS_PG[@]})) && chown postgres: "$data"
    "${AS_PG[@]}" "$PGBIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
        die "initdb failed: $(tail -5 "$dir/initdb.log")"
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$data'
fsync = off
full_page_writes = off
max_connections = 50
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = 'all'
pg_stat_statements.track_utility = on
log_connections = on
log_line_prefix = '%m [%p] '
$extra
EOF
    PG_LOG=$dir/postgres.log
    touch "$PG_LOG"
    ((${#AS_PG[@]})) && chown postgres: "$PG_LOG"
    "${AS_PG[@]}" "$PGBIN/postgres" -D "$data" -p "$PG_PORT" >>"$PG_LOG" 2>&1 &
    PG_PID=$!
    PIDS+=("$PG_PID")
    for _ in $(seq 100); do
        pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres && break
        sleep 0.2
    done
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres || die "postgres did not start: $(tail -5 "$PG_LOG")"
    PG_VERSION=$("$PGBIN/postgres" --version)
    log "PostgreSQL on 127.0.0.1:$PG_PORT ($PG_VERSION)"
}
# q SQL [DB]: one psql call as postgres.
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "${2:-postgres}" -c "$1"; }
# pg_load_app ROLE...: pg_stat_statements, one LOGIN role (in pg_monitor) per
# exporter, and database app with trip/event tables of 10000 rows each.
pg_load_app() {
    local r
    q "CREATE EXTENSION pg_stat_statements" >/dev/null
    for r in "$@"; do q "CREATE ROLE $r LOGIN IN ROLE pg_monitor" >/dev/null; done
    q "CREATE DATABASE app" >/dev/null
    q "CREATE TABLE trip (id bigint PRIMARY KEY, driver_id int, created_at timestamptz);
       CREATE INDEX trip_driver_idx ON trip (driver_id);
       CREATE INDEX trip_created_idx ON trip (created_at);
       CREATE TABLE event (id bigint PRIMARY KEY, kind text);
       INSERT INTO trip SELECT g, g % 100, now() FROM generate_series(1, 10000) g;
       INSERT INTO event SELECT g, 'k' || g % 7 FROM generate_series(1, 10000) g;
       ANALYZE;" app >/dev/null
}
# pg_statements ROLE...: "role calls" lines, statements run by each role so
# far (pg_stat_statements, utility statements included).
pg_statements() {
    local list
    list=$(printf "'%s'," "$@")
    q "SELECT r.rolname || ' ' || coalesce(sum(s.calls), 0) FROM pg_roles r LEFT JOIN pg_stat_statements s ON s.userid = r.oid WHERE r.rolname IN (${list%,}) GROUP BY r.rolname"
}
# pg_conns ROLE: connections authorized for ROLE so far (log_connections).
pg_conns() { grep -c "connection authorized: user=$1 " "$PG_LOG" || true; }
pg_sessions() { q "SELECT count(*) FROM pg_stat_activity WHERE usename = '$1'"; }

# --------------------------------------------------------------------- MariaDB
# start_mariadb DIR [EXTRA_CNF]: mariadb-install-db + mariadbd in DIR on a
# free port (own tmpdir; user = root when run as root, like the test
# bench, crates/perfwatch-testbench). EXTRA_CNF lines go into [mariadbd]. Sets DB_PORT, DB_PID, SOCK,
# DB_VERSION, MARIADB_CLIENT.
start_mariadb() {
    local dir=$1 extra=${2:-} install_args
    mkdir -p "$dir/data" "$dir/tmp"
    free_port DB_PORT
    SOCK="$dir/mariadb.sock"
    {
        echo "[mariadbd]"
        echo "datadir = $dir/data"
        echo "tmpdir = $dir/tmp"
        echo "socket = $SOCK"
        echo "pid-file = $dir/mariadb.pid"
        echo "log-error = $dir/mariadb.err"
        echo "port = $DB_PORT"
        echo "bind-address = 127.0.0.1"
        echo "skip-name-resolve"
        [[ -n $extra ]] && printf '%s\n' "$extra"
        [[ $(id -u) == 0 ]] && echo "user = root"
    } >"$dir/my.cnf"
    install_args=(--defaults-file="$dir/my.cnf" --datadir="$dir/data" --auth-root-authentication-method=normal --skip-test-db)
    [[ $(id -u) == 0 ]] && install_args+=(--user=root)
    mariadb-install-db "${install_args[@]}" >"$dir/install.log" 2>&1 || die "mariadb-install-db failed: $(tail -n 5 "$dir/install.log")"
    mariadbd --defaults-file="$dir/my.cnf" >"$dir/console.log" 2>&1 &
    DB_PID=$!
    PIDS+=("$DB_PID")
    MARIADB_CLIENT=(mariadb --no-defaults --socket="$SOCK" --user=root --batch --skip-column-names)
    for _ in $(seq 300); do
        sql "SELECT 1" >/dev/null 2>&1 && break
        kill -0 "$DB_PID" 2>/dev/null || die "mariadbd exited: $(tail -n 10 "$dir/mariadb.err")"
        sleep 0.1
    done
    sql "SELECT 1" >/dev/null || die "mariadbd not ready: $(tail -n 10 "$dir/mariadb.err")"
    DB_VERSION=$(sql "SELECT VERSION()")
    log "mariadbd $DB_VERSION pid $DB_PID on 127.0.0.1:$DB_PORT"
}
sql() { "${MARIADB_CLIENT[@]}" -e "$1"; }
# mariadb_load_app ROWS: database app (driver, trip with ROWS rows and five
# indexes) and user bench/bench with the monitoring grants.
mariadb_load_app() {
    log "loading $1 trips"
    sql "CREATE DATABASE app; USE app;
CREATE TABLE driver (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(100), UNIQUE KEY uq_email (email)) ENGINE=InnoDB;
CREATE TABLE trip (id INT PRIMARY KEY AUTO_INCREMENT, driver_id INT, start_time INT, status INT, note VARCHAR(50),
  KEY idx_start (start_time), KEY idx_note (note), KEY idx_status (status), KEY idx_status_start (status, start_time),
  CONSTRAINT fk_driver FOREIGN KEY (driver_id) REFERENCES driver (id)) ENGINE=InnoDB;
INSERT INTO driver (email) SELECT CONCAT('d', seq, '@x') FROM seq_1_to_100;
INSERT INTO trip (driver_id, start_time, status, note) SELECT 1 + seq % 100, seq, seq % 3, 'n' FROM seq_1_to_$1;
ANALYZE TABLE driver, trip;
SELECT COUNT(*) FROM trip WHERE start_time BETWEEN 10 AND 20;
SELECT COUNT(*) FROM trip WHERE status + 0 = 1;
CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY 'bench';
GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'bench'@'127.0.0.1';" >/dev/null
}
# mariadb_snapshot FILE: Questions and Connections (one client call = one
# connection + its statements; calibrated out by mariadb_per_unit).
mariadb_snapshot() {
    sql "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Connections')" |
        awk '{ print tolower($1), $2 }' >"$1"
    [[ -s $1 ]] || die "SHOW GLOBAL STATUS returned nothing"
}
# mariadb_calibrate: sets CAL_Q, CAL_C (the cost of one snapshot).
mariadb_calibrate() {
    mariadb_snapshot "$WORK/mcal0"
    mariadb_snapshot "$WORK/mcal1"
    mariadb_snapshot "$WORK/mcal2"
    CAL_Q=$(($(kv_get questions "$WORK/mcal1") - $(kv_get questions "$WORK/mcal0")))
    CAL_C=$(($(kv_get connections "$WORK/mcal1") - $(kv_get connections "$WORK/mcal0")))
    [[ $CAL_Q == $(($(kv_get questions "$WORK/mcal2") - $(kv_get questions "$WORK/mcal1"))) ]] ||
        die "measurement overhead is not stable (is something else using the server?)"
    log "calibrated: one MariaDB measurement costs $CAL_Q question(s), $CAL_C connection(s)"
}
# mariadb_per_unit A B N: "questions connections" per unit, calibration removed.
mariadb_per_unit() {
    awk -v n="$3" -v m="${4:-1}" -v cq="$CAL_Q" -v cc="$CAL_C" '
        FILENAME == ARGV[1] { a[$1] = $2; next }
        { b[$1] = $2 }
        END { printf "%.3g %.3g\n", (b["questions"] - a["questions"] - m * cq) / n, (b["connections"] - a["connections"] - m * cc) / n }
    ' "$1" "$2"
}

# ------------------------------------------------------- docs/PERFORMANCE.md
# doc_write_block DOC NAME FILE: replaces what is between the lines starting
# with "<!-- NAME:begin" and "<!-- NAME:end" with FILE's content.
doc_write_block() {
    local doc=$1 name=$2 file=$3
    [[ -f $doc ]] || die "$doc missing"
    grep -q "^<!-- $name:begin" "$doc" || die "$doc has no <!-- $name:begin --> marker"
    grep -q "^<!-- $name:end" "$doc" || die "$doc has no <!-- $name:end --> marker"
    awk -v b="<!-- $name:begin" -v e="<!-- $name:end" -v report="$file" '
        index($0, b) == 1 { print; while ((getline line < report) > 0) print line; skip = 1; next }
        index($0, e) == 1 { skip = 0 }
        !skip
    ' "$doc" >"$WORK/doc.new"
    cat "$WORK/doc.new" >"$doc"
}

# bench_write_doc NAME SECTION TEXT: TEXT becomes the NAME block of
# docs/PERFORMANCE.md; SECTION names that block in the log.
bench_write_doc() {
    printf '%s\n' "$3" >"$WORK/report.md"
    doc_write_block "$BENCH_DOC" "$1" "$WORK/report.md"
    log "wrote the figures into ${BENCH_DOC#"$BENCH_ROOT"/} ($2)"
}
