#!/usr/bin/env bash
# The status page's cost (issue 17): does a browser refreshing `/` every
# second slow `/metrics` down, and how long does `/` take to render? Against
# ONE perfwatch polling a throwaway Redis and PostgreSQL every second (with
# a phase trigger on the hit ratio, so the phases section is drawn too), and
# records the result in the "Status page" section of docs/PERFORMANCE.md.
#
# Measured:
#   - /metrics req/s, p50 and p99 under `wrk -t2 -c4 -d10s --latency`,
#     twice: alone, then while a client loads `/` every second (the page's
#     own refresh is every 5 s: once a second is five viewers);
#   - the render time of `/` (curl time_total of BENCH_PAGES sequential
#     loads: median, p90 and max), its size, and the history points held
#     after BENCH_WARMUP seconds of polls: all of them
#     (perfwatch_status_history_points) and the longest series' (from
#     /api/history: 900 once the 15-minute window is full at one poll a
#     second, the case the page's cost grows with).
#
# Goal (from the issue): /metrics p99 unchanged within noise while the page
# refreshes.
#
# Nothing here uses the machine's own servers; everything this script starts
# is killed on exit.
#
# Usage: scripts/bench-status.sh [--quick] [--no-build] [--no-doc] [--keep]
#   --quick       3 s wrk runs, no waiting for an idle machine; never writes the doc
#   --no-build    use target/release/perfwatch as it is (default: cargo build --release)
#   --no-doc      do not rewrite the generated part of docs/PERFORMANCE.md
#   --keep        keep the work dir (configs, logs, wrk output) after the run
# Environment: BENCH_PAGES (50), BENCH_WARMUP (60: seconds of polls before
#   measuring, so the charts have points), BENCH_IDLE_WAIT (60: seconds to
#   wait for an idle machine before each wrk run), BENCH_WRK_TRIES (1: wrk
#   runs while other processes disturb it), WRK_DURATION (10s).
#
# Exit codes: 0 all figures measured; 1 a figure could not be measured or a
# step failed (the message says which); 2 bad usage.
set -euo pipefail

BENCH_NAME=bench-status
# shellcheck source=scripts/lib/bench-common.sh
. "$(dirname "$0")/lib/bench-common.sh"

bench_flags "--quick --no-build --no-doc --keep" "$@"
# Knobs: the default, then the one of --quick.
bench_knob IDLE_WAIT BENCH_IDLE_WAIT 60 0
bench_knob NPAGES BENCH_PAGES 50 10
bench_knob WARMUP BENCH_WARMUP 60 10
bench_knob WRK_DURATION WRK_DURATION 10s 3s
WRK_ARGS=(-t2 -c4 "-d$WRK_DURATION" --latency)
# One wrk run each: on a shared machine a retry rarely finds it quieter;
# the report gives the other processes' CPU during each run instead.
WRK_TRIES=${BENCH_WRK_TRIES:-1}

need_bin redis-server redis-server
need_bin redis-cli redis-tools
need_bin psql postgresql-client
need_bin pg_isready postgresql-client
need_bin wrk wrk
need_bin curl curl
need_bin python3 python3
need_bin cargo "rustup; cargo is the Rust toolchain's"
need_bins_done "install them (or run scripts/install-test-deps.sh)"

bench_workdir perfwatch-bench-status
trap 'log "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
build_perfwatch "$build"

start_redis "$WORK/redis"
redis_load_data 2000
start_postgres "$WORK/pg"
pg_load_app pw

cat >"$WORK/perfwatch.toml" <<EOF
[global]
interval = "1s"
timeout = "800ms"

[[redis]]
name = "cache"
url = "redis://127.0.0.1:$REDIS_PORT/0"

[[postgres]]
name = "main"
dsn = "postgres://pw@127.0.0.1:$PG_PORT/app"

[[phase]]
name = "phase2"
description = "Pre-aggregated summary tables"
[[phase.trigger]]
name = "cache_hit_ratio"
metric = 'perfwatch_cache_hit_ratio{target="cache",window="1m"}'
below = 0.70
clear_above = 0.75
EOF
start_perfwatch status "$WORK/perfwatch.toml"

# Some traffic so the hit ratio and ops/s move while the history fills.
(
    while :; do
        for i in $(seq 20); do echo "GET session:$((RANDOM % 4000))"; done | rcli >/dev/null 2>&1 || true
        sleep 0.5
    done
) &
PIDS+=("$!")
log "filling the history for ${WARMUP}s"
sleep "$WARMUP"
wait_poll "$PW_URL" cache "$((WARMUP / 2))" >/dev/null

run_wrk alone "$PW_URL/metrics" "$PW_PID"

# A viewer: `/` once a second, for as long as the second wrk run lasts.
(
    while :; do
        curl -s -o /dev/null --max-time 5 "$PW_URL/" || true
        sleep 1
    done
) &
VIEWER=$!
PIDS+=("$VIEWER")
run_wrk with_page "$PW_URL/metrics" "$PW_PID"
stop_pid "$VIEWER"

# Page render time: sequential loads with nothing else asking.
sequential_scrapes "$PW_URL/" "$NPAGES" "$WORK/page.times"
PAGE_BYTES=$(curl -s --max-time 5 "$PW_URL/" | wc -c)
POINTS=$(curl -s --max-time 5 "$PW_URL/metrics" | awk '$1 == "perfwatch_status_history_points" { print $2 }')
# The total grows with the number of series; the longest series says how
# full the 15-minute window is.
LONGEST=$(curl -s --max-time 5 "$PW_URL/api/history" | python3 -c '
import json, sys
h = json.load(sys.stdin)
print(max(len(s["points"]) for x in h["targets"] + h["phases"] for s in x["series"]))')

for run in alone with_page; do
    for k in rps p50_ms p99_ms other_cores; do fig "$run.$k" "$(kv_get "$k" "$WORK/wrk.$run")"; done
done
fig page.median "$(median_ms "$WORK/page.times" 2)"
fig page.p90 "$(quantile_ms "$WORK/page.times" 0.9)"
fig page.max "$(quantile_ms "$WORK/page.times" 1)"
fig page.bytes "$PAGE_BYTES"
fig points "$POINTS"
fig longest "$LONGEST"
fig rss "$(mib "$(rss_kb "$PW_PID")")"
die_if_missing

REPORT="Measured $(date -u +%Y-%m-%d) on $(machine_desc); perfwatch $(perfwatch_version) ($(git_rev)), wrk $(wrk_version).
Command: \`scripts/bench-status.sh\` (one perfwatch polling a throwaway Redis
and PostgreSQL every second, a phase trigger on the hit ratio; ${WARMUP} s of
polls before measuring).

| /metrics under \`wrk ${WRK_ARGS[*]}\` | req/s | p50 | p99 | other processes' CPU during the run |
|---|---|---|---|---|
| alone | ${F[alone.rps]} | ${F[alone.p50_ms]} ms | ${F[alone.p99_ms]} ms | ${F[alone.other_cores]} cores |
| while a client loads \`/\` every second | ${F[with_page.rps]} | ${F[with_page.p50_ms]} ms | ${F[with_page.p99_ms]} ms | ${F[with_page.other_cores]} cores |

| \`/\` (status page) | |
|---|---|
| render time, ${NPAGES} sequential loads (curl time_total) | median ${F[page.median]} ms, p90 ${F[page.p90]} ms, max ${F[page.max]} ms |
| size | ${F[page.bytes]} bytes |
| history points held (\`perfwatch_status_history_points\`) | ${F[points]} |
| points in the longest series (\`/api/history\`; 900 = the full 15 minutes) | ${F[longest]} |
| perfwatch RSS after the runs | ${F[rss]} MiB |"

printf '%s\n' "$REPORT"
if ((write_doc)); then
    bench_write_doc bench-status "Status page" "$REPORT"
fi
