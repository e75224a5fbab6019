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

BENCH_NAME=bench-redis
# shellcheck source=scripts/lib/bench-common.sh
. "$(dirname "$0")/lib/bench-common.sh"

build=1 write_doc=1 strict=0 allow_busy=0
for arg in "$@"; do bench_flag "$arg" "--no-build --no-doc --strict --keep --allow-busy"; done

NKEYS=${BENCH_KEYS:-10000}
NSCRAPES=${BENCH_SCRAPES:-20}
NPOLLS=${BENCH_POLLS:-10}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_ARGS=(-t2 -c4 "-d$WRK_DURATION" --latency)
POLL_INTERVAL_MS=1000
POLL_TIMEOUT_MS=500

# ---------------------------------------------------------------- prerequisites
need_bin redis-server redis-server
need_bin redis-cli redis-tools
need_bin wrk wrk
need_bin prometheus-redis-exporter prometheus-redis-exporter
need_bin curl curl
need_bin awk gawk
need_bin cargo "rustup; cargo is the Rust toolchain's"
need_bins_done "install them, e.g.: apt-get install wrk prometheus-redis-exporter redis-server redis-tools curl (or scripts/install-test-deps.sh)"

# -------------------------------------------------------------- process control
BENCH_OK_CODES=" 0 3 "
bench_workdir perfwatch-bench-redis
trap 'log "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
build_perfwatch "$build"

# ------------------------------------------------------------------- redis
# Data: NKEYS keys over four prefixes (strings with and without TTL, hashes,
# lists), some hits and misses, and a few SLOWLOG entries.
start_redis "$WORK/redis"
redis_load_data "$NKEYS"
# Calibration: the cost of one measurement (its connection, its INFO, its
# reads), calibrated out of every Redis load figure.
redis_calibrate

# ------------------------------------------------------- prometheus-redis-exporter
start_redis_exporter
EXP_PID=$REXP_PID EXP_URL=$REXP_URL

# Exporter: one scrape = one poll of Redis. Nothing else talks to Redis now.
curl -s --max-time 10 "$EXP_URL" >"$WORK/exporter.metrics" || die "scraping $EXP_URL failed"
redis_snapshot "$WORK/exp0"
sequential_scrapes "$EXP_URL" "$NSCRAPES" "$WORK/exporter.scrapes"
redis_snapshot "$WORK/exp1"
redis_delta "$WORK/exp0" "$WORK/exp1" "$NSCRAPES" >"$WORK/load.exporter"
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
            echo "prefixes = $REDIS_PREFIXES"
            echo "max_groups = 50"
            echo "scan_count = 1000"
            echo "max_keys_per_poll = 20000"
            echo "time_budget_ratio = 0.5"
            echo "memory_sample_every = 10"
            echo "min_cycle_interval = \"0s\""  # worst case, as measured before the default 1m
        fi
    } >"$1"
    "$PERFWATCH" check-config "$1" >/dev/null || die "perfwatch check-config $1 failed"
}

# self_metric URL NAME: the value of a perfwatch self-metric for the target.
self_metric() { pw_metric "$1" "$2" bench; }

# measure_polls URL NAME: Redis load of exactly NPOLLS polls into load.NAME.
# Snapshots are taken right after a poll finished, long before the next one
# starts (polls start every POLL_INTERVAL_MS), which is checked.
measure_polls() {
    local url=$1 name=$2 p0 p1 p2 errs0 errs1 t_seen t_snap dur gap_ms
    p0=$(self_metric "$url" perfwatch_polls_total) || die "no perfwatch_polls_total at $url/metrics"
    for attempt in 1 2 3; do
        p1=$(wait_poll "$url" bench $((p0 + 1)) 30)
        errs0=$(self_metric "$url" perfwatch_poll_errors_total)
        redis_snapshot "$WORK/$name.0"
        p2=$(wait_poll "$url" bench $((p1 + NPOLLS)) 30)
        t_seen=$(date +%s%N)
        redis_snapshot "$WORK/$name.1"
        t_snap=$(date +%s%N)
        errs1=$(self_metric "$url" perfwatch_poll_errors_total)
        dur=$(self_metric "$url" perfwatch_poll_duration_seconds)
        # The snapshot must have ended before the next poll could start.
        gap_ms=$(awk -v i="$POLL_INTERVAL_MS" -v d="$dur" 'BEGIN { printf "%d", i - d * 1000 - 50 }')
        if ((p2 == p1 + NPOLLS && (t_snap - t_seen) / 1000000 < gap_ms)); then
            ((errs1 == errs0)) || die "perfwatch ($name): $((errs1 - errs0)) poll(s) failed during the window; log: $(tail -n 5 "$WORK/$name.log")"
            redis_delta "$WORK/$name.0" "$WORK/$name.1" "$NPOLLS" >"$WORK/load.$name"
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
# Sequential single scrapes first (same idle machine), then the load; Redis'
# CPU is recorded as server_cpu_s.
WRK_SCRAPES=$NSCRAPES WRK_SERVER_PID=$REDIS_PID
run_wrk exporter "$EXP_URL" "$EXP_PID"
run_wrk perfwatch "$PW_MAIN_URL/metrics" "$PW_MAIN_PID"

# ------------------------------------------------------------------- RSS
EXP_RSS_KB=$(rss_kb "$EXP_PID")
PW_RSS_KB=$(rss_kb "$PW_MAIN_PID")
EXP_THREADS=$(threads "$EXP_PID")
PW_THREADS=$(threads "$PW_MAIN_PID")
# Where perfwatch's RSS is, by mapping.
rss_breakdown "$PW_MAIN_PID" >"$WORK/rss.breakdown"
# One-line summary from smaps_rollup.
awk '$1 ~ /^(Rss|Pss|Shared_Clean|Private_Clean|Private_Dirty|Anonymous):$/ { printf "%s %s kB  ", $1, $2 }' \
    "/proc/$PW_MAIN_PID/smaps_rollup" >"$WORK/rss.rollup"

# ---------------------------------------------------------------- figures
for who in exporter perfwatch; do
    fig "$who.rps" "$(kv_get rps "$WORK/wrk.$who")"
    fig "$who.p50" "$(kv_get p50_ms "$WORK/wrk.$who")"
    fig "$who.p99" "$(kv_get p99_ms "$WORK/wrk.$who")"
    fig "$who.cpu" "$(kv_get cpu_s "$WORK/wrk.$who")"
    fig "$who.cpu_per_req" "$(kv_get cpu_us_per_req "$WORK/wrk.$who")"
    fig "$who.wrk_cpu" "$(kv_get wrk_cpu_s "$WORK/wrk.$who")"
    fig "$who.other_cores" "$(kv_get other_cores "$WORK/wrk.$who")"
    fig "$who.redis_cpu" "$(kv_get server_cpu_s "$WORK/wrk.$who")"
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
round_trips() { redis_round_trips "$1"; }
fig exporter.rtt "$(round_trips "$WORK/load.exporter")"
fig base.rtt "$(round_trips "$WORK/load.perfwatch-base")"
fig sampler.rtt "$(round_trips "$WORK/load.perfwatch")"
fig exporter.cmds "$(kv_get commands "$WORK/load.exporter")"
fig exporter.reads "$(kv_get reads "$WORK/load.exporter")"
fig exporter.conns "$(kv_get connections "$WORK/load.exporter")"
fig base.cmds "$(kv_get commands "$WORK/load.perfwatch-base")"
fig base.reads "$(kv_get reads "$WORK/load.perfwatch-base")"
fig base.conns "$(kv_get connections "$WORK/load.perfwatch-base")"
fig sampler.cmds "$(kv_get commands "$WORK/load.perfwatch")"
fig sampler.reads "$(kv_get reads "$WORK/load.perfwatch")"
fig sampler.conns "$(kv_get connections "$WORK/load.perfwatch")"
fig sampler.base_cmds "$(sum_cmds "$WORK/load.perfwatch" "$BASE_CMDS")"
fig sampler.scan_cmds "$(sum_cmds "$WORK/load.perfwatch" "$SAMPLER_CMDS")"
fig sampler.hits "$(kv_get keyspace_hits "$WORK/load.perfwatch")"
fig sampler.misses "$(kv_get keyspace_misses "$WORK/load.perfwatch")"
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
PW_VERSION=$(perfwatch_version)
GIT_REV=$(git_rev)
REDIS_VERSION=$(redis-server --version | awk '{ print $3 }' | sed 's/^v=//')
EXP_VERSION=$(redis_exporter_version)
WRK_VERSION=$(wrk_version)
MACHINE=$(machine_desc)
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
| other processes during that run (cores) · wrk runs needed | ${F[perfwatch.other_cores]} · $(kv_get attempts "$WORK/wrk.perfwatch") | ${F[exporter.other_cores]} · $(kv_get attempts "$WORK/wrk.exporter") | |
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

die_if_missing

DISTURBED=$(background_note)
if [[ -n $DISTURBED ]] && ((!allow_busy)); then
    printf '[bench-redis] NOT RECORDED: other processes used the CPU during a wrk run, so the latency figures are not trustworthy; docs/PERFORMANCE.md left as it was. Rerun on an idle machine (or pass --allow-busy).\n' >&2
    exit 4
fi

# ------------------------------------------------------- docs/PERFORMANCE.md
if ((write_doc)); then
    bench_write_doc bench-redis "Redis section" "$REPORT"
fi

if ((${#MISSED[@]})); then
    printf '[bench-redis] goal missed: %s\n' "${MISSED[@]}" >&2
    ((strict)) && exit 3
fi
exit 0
