#!/usr/bin/env bash
# Fleet probes' cost (issue 18): one perfwatch in fleet mode (a [probe]
# section, no configured target) in front of NTARGETS throwaway
# redis-servers, probed as Prometheus does (GET /probe?target=..., with
# X-Prometheus-Scrape-Timeout-Seconds), and records the result in the
# "Fleet probes" section of docs/PERFORMANCE.md.
#
# Measured:
#   - /probe latency, sequential: BENCH_ROUNDS rounds over the targets, one
#     curl each (time_total: p50, p99, max); the first round, which
#     connects to every backend, apart;
#   - /probe under load: `wrk -t2 -c4 -d10s --latency` with a script that
#     cycles over the targets (req/s, p50, p99);
#   - the same over all targets but one, while that one is SIGSTOPped and
#     probed in a loop with a 2 s scrape timeout (each of its probes then
#     times out after 1.5 s): a hung backend must not slow the others;
#   - the poll cost per node: Redis commands, round trips and new
#     connections per probe of one warm backend, over BENCH_PROBES probes
#     (INFO clients/stats/commandstats deltas, the measuring redis-cli
#     calibrated out);
#   - perfwatch's RSS with every backend cached.
#
# Nothing here uses the machine's own servers; everything this script starts
# is killed on exit (a SIGSTOPped redis-server is continued first).
#
# Usage: scripts/bench-probe.sh [--quick] [--no-build] [--no-doc] [--keep]
#   --quick       3 s wrk runs, few rounds, no waiting for an idle machine; never writes the doc
#   --no-build    use target/release/perfwatch as it is (default: cargo build --release)
#   --no-doc      do not rewrite the generated part of docs/PERFORMANCE.md
#   --keep        keep the work dir (configs, logs, wrk output) after the run
# Environment: BENCH_TARGETS (20), BENCH_ROUNDS (50), BENCH_PROBES (100),
#   BENCH_IDLE_WAIT (60: seconds to wait for an idle machine before each
#   wrk run), BENCH_WRK_TRIES (1), WRK_DURATION (10s).
#
# Exit codes: 0 all figures measured; 1 a figure could not be measured or a
# step failed (the message says which); 2 bad usage.
set -euo pipefail

BENCH_NAME=bench-probe
# shellcheck source=scripts/lib/bench-common.sh
. "$(dirname "$0")/lib/bench-common.sh"

bench_flags "--quick --no-build --no-doc --keep" "$@"
NTARGETS=${BENCH_TARGETS:-20}
# Knobs: the default, then the one of --quick.
bench_knob ROUNDS BENCH_ROUNDS 50 5
bench_knob NPROBES BENCH_PROBES 100 20
bench_knob IDLE_WAIT BENCH_IDLE_WAIT 60 0
bench_knob WRK_DURATION WRK_DURATION 10s 3s
WRK_TRIES=${BENCH_WRK_TRIES:-1}
# Prometheus' default scrape timeout is 10 s; the stopped backend's prober
# uses 2 s so that its probes (1.5 s each) keep a slot busy all along.
SCRAPE_TIMEOUT=10 STOPPED_SCRAPE_TIMEOUT=2

need_bin redis-server redis-server
need_bin redis-cli redis-tools
need_bin wrk wrk
need_bin curl curl
need_bin cargo "rustup; cargo is the Rust toolchain's"
need_bins_done "install them (or run scripts/install-test-deps.sh)"

bench_workdir perfwatch-bench-probe
trap 'log "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
build_perfwatch "$build"

PORTS=() RPIDS=()
for i in $(seq "$NTARGETS"); do
    start_redis "$WORK/redis$i"
    PORTS+=("$REDIS_PORT") RPIDS+=("$REDIS_PID")
done
STOPPED_PID=${RPIDS[-1]} STOPPED_PORT=${PORTS[-1]}
# shellcheck disable=SC2317 # invoked by bench_cleanup
bench_exit_hook() { kill -CONT "$STOPPED_PID" 2>/dev/null || true; }

cat >"$WORK/perfwatch.toml" <<EOF
[global]
interval = "15s"

[probe]
EOF
start_perfwatch probe "$WORK/perfwatch.toml"

target_of() { echo "redis://127.0.0.1:$1"; }
probe_url() { echo "$PW_URL/probe?target=$(target_of "$1")"; }
# probe_time PORT: one probe with Prometheus' header; its time_total in s.
probe_time() {
    local code_time
    code_time=$(curl -s -o "$WORK/last.probe" -w '%{http_code} %{time_total}' --max-time 15 \
        -H "X-Prometheus-Scrape-Timeout-Seconds: $SCRAPE_TIMEOUT" "$(probe_url "$1")") ||
        die "probe of port $1 failed"
    [[ ${code_time%% *} == 200 ]] || die "probe of port $1 answered HTTP ${code_time%% *}: $(cat "$WORK/last.probe")"
    grep -q '^redis_up{target="redis://127.0.0.1:'"$1"'"} 1$' "$WORK/last.probe" ||
        die "probe of port $1: redis_up is not 1: $(grep '^redis_up' "$WORK/last.probe")"
    echo "${code_time#* }"
}

# ------------------------------------------------ sequential probes
# On an idle machine too: a single probe's tail is what other processes
# take from it. What they used meanwhile is reported.
wait_idle
load_mark
log "first round: $NTARGETS probes, each connecting"
: >"$WORK/first.times"
for p in "${PORTS[@]}"; do probe_time "$p" >>"$WORK/first.times"; done
log "$ROUNDS rounds of $NTARGETS sequential probes"
: >"$WORK/seq.times"
for _ in $(seq "$ROUNDS"); do
    for p in "${PORTS[@]}"; do probe_time "$p" >>"$WORK/seq.times"; done
done
SEQ_OTHER=$(other_cores)

# ------------------------------------------------ poll cost per node
# One warm backend, nothing else talking to it: its Redis load per probe.
REDIS_PORT=${PORTS[0]}
redis_calibrate
redis_snapshot "$WORK/node.0"
for _ in $(seq "$NPROBES"); do probe_time "$REDIS_PORT" >/dev/null; done
redis_snapshot "$WORK/node.1"
redis_delta "$WORK/node.0" "$WORK/node.1" "$NPROBES" >"$WORK/load.node"

# ------------------------------------------------ wrk over the fleet
# write_wrk_script FILE PORT...: a wrk script cycling over PORTs' targets.
write_wrk_script() {
    local file=$1 p
    shift
    {
        echo "local targets = {"
        for p in "$@"; do echo "  \"/probe?target=$(target_of "$p")\","; done
        echo "}"
        echo "local i = 0"
        echo "local headers = { [\"X-Prometheus-Scrape-Timeout-Seconds\"] = \"$SCRAPE_TIMEOUT\" }"
        echo "request = function()"
        echo "  i = i % #targets + 1"
        echo "  return wrk.format(\"GET\", targets[i], headers)"
        echo "end"
    } >"$file"
}
write_wrk_script "$WORK/all.lua" "${PORTS[@]}"
write_wrk_script "$WORK/others.lua" "${PORTS[@]:0:NTARGETS-1}"

WRK_ARGS=(-t2 -c4 "-d$WRK_DURATION" --latency -s "$WORK/all.lua")
run_wrk fleet "$PW_URL/" "$PW_PID"

# One backend SIGSTOPped and probed in a loop meanwhile (as Prometheus
# would, every time its previous probe answered).
kill -STOP "$STOPPED_PID"
# The loop ends after the probe under way (a file, not a signal: a killed
# loop would leave that probe running past SIGCONT).
(
    while [[ ! -e $WORK/stopped.end ]]; do
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 5 \
            -H "X-Prometheus-Scrape-Timeout-Seconds: $STOPPED_SCRAPE_TIMEOUT" "$(probe_url "$STOPPED_PORT")" || true
    done >"$WORK/stopped.times"
) &
STOPPED_LOOP=$!
PIDS+=("$STOPPED_LOOP")
WRK_ARGS=(-t2 -c4 "-d$WRK_DURATION" --latency -s "$WORK/others.lua")
run_wrk one_stopped "$PW_URL/" "$PW_PID"
touch "$WORK/stopped.end"
wait "$STOPPED_LOOP" || true
stop_pid "$STOPPED_LOOP"
kill -CONT "$STOPPED_PID"
STOPPED_PROBES=$(awk '$1 == 200 { n++ } END { print n + 0 }' "$WORK/stopped.times")
STOPPED_MEDIAN=$(awk '$1 == 200 { print $2 }' "$WORK/stopped.times" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR) printf "%.0f", v[int((NR + 1) / 2)] * 1000 }')
((STOPPED_PROBES > 0)) || die "no probe of the stopped backend answered: $(head -n 3 "$WORK/stopped.times")"
TIMEOUTS=$(curl -s --max-time 5 "$PW_URL/metrics" | awk '$1 == "perfwatch_probes_total{kind=\"redis\",outcome=\"timeout\"}" { print $2 }')
CACHED=$(curl -s --max-time 5 "$PW_URL/metrics" | awk '$1 == "perfwatch_probe_backends_cached" { print $2 }')

fig first.median "$(median_ms "$WORK/first.times" 2)"
fig first.max "$(quantile_ms "$WORK/first.times" 1)"
fig seq.p50 "$(quantile_ms "$WORK/seq.times" 0.5)"
fig seq.p99 "$(quantile_ms "$WORK/seq.times" 0.99)"
fig seq.max "$(quantile_ms "$WORK/seq.times" 1)"
fig seq.other_cores "$SEQ_OTHER"
for run in fleet one_stopped; do
    for k in rps p50_ms p99_ms other_cores cpu_us_per_req; do fig "$run.$k" "$(kv_get "$k" "$WORK/wrk.$run")"; done
done
fig node.cmds "$(kv_get commands "$WORK/load.node")"
# cmd_sum PREFIX: the per-probe calls of the commands named PREFIX*
# (Redis 7 counts SLOWLOG GET and LEN as slowlog|get, slowlog|len).
cmd_sum() { awk -v p="cmd:$1" 'index($1, p) == 1 { s += $2 } END { printf "%.10g", s + 0 }' "$WORK/load.node"; }
fig node.info "$(cmd_sum info)"
fig node.slowlog "$(cmd_sum slowlog)"
fig node.rtt "$(redis_round_trips "$WORK/load.node")"
fig node.conns "$(kv_get connections "$WORK/load.node")"
fig stopped.probes "$STOPPED_PROBES"
fig stopped.median "$STOPPED_MEDIAN"
fig stopped.timeouts "$TIMEOUTS"
fig cached "$CACHED"
fig rss "$(mib "$(rss_kb "$PW_PID")")"
die_if_missing

REPORT="Measured $(date -u +%Y-%m-%d) on $(machine_desc); perfwatch $(perfwatch_version) ($(git_rev)), wrk $(wrk_version).
Command: \`scripts/bench-probe.sh\` (one perfwatch with an empty \`[probe]\`
section and no configured target, in front of $NTARGETS throwaway
redis-servers, probed with \`X-Prometheus-Scrape-Timeout-Seconds: $SCRAPE_TIMEOUT\`).

| \`/probe\`, one request at a time (curl time_total) | p50 | p99 | max |
|---|---|---|---|
| $ROUNDS rounds over the $NTARGETS targets ($((ROUNDS * NTARGETS)) probes, kept connections) | ${F[seq.p50]} ms | ${F[seq.p99]} ms | ${F[seq.max]} ms |
| first round (connects to each backend): median, max | ${F[first.median]} ms | | ${F[first.max]} ms |

Other processes used ${F[seq.other_cores]} cores during the sequential probes.

| \`/probe\` under \`wrk -t2 -c4 -d$WRK_DURATION --latency\`, cycling over the targets | req/s | p50 | p99 | perfwatch CPU per probe | other processes' CPU during the run |
|---|---|---|---|---|---|
| all $NTARGETS healthy | ${F[fleet.rps]} | ${F[fleet.p50_ms]} ms | ${F[fleet.p99_ms]} ms | ${F[fleet.cpu_us_per_req]} µs | ${F[fleet.other_cores]} cores |
| $((NTARGETS - 1)) healthy, while the ${NTARGETS}th is SIGSTOPped and probed in a loop | ${F[one_stopped.rps]} | ${F[one_stopped.p50_ms]} ms | ${F[one_stopped.p99_ms]} ms | ${F[one_stopped.cpu_us_per_req]} µs | ${F[one_stopped.other_cores]} cores |

The stopped backend meanwhile (from the wait for an idle machine to the end of the wrk run): ${F[stopped.probes]} probes answered 200, median ${F[stopped.median]} ms each with a ${STOPPED_SCRAPE_TIMEOUT} s scrape timeout (deadline ${STOPPED_SCRAPE_TIMEOUT} s − 500 ms); perfwatch counted ${F[stopped.timeouts]} of its probes as timeouts (\`perfwatch_probes_total{outcome=\"timeout\"}\`).

| Poll cost per node (one warm backend, $NPROBES probes) | per probe |
|---|---|
| Redis commands | ${F[node.cmds]} (INFO ${F[node.info]}, SLOWLOG ${F[node.slowlog]}) |
| Redis round trips (read events − connection closes) | ${F[node.rtt]} |
| new Redis connections | ${F[node.conns]} |

perfwatch RSS with ${F[cached]} backends cached: ${F[rss]} MiB."

printf '%s\n' "$REPORT"
if ((write_doc)); then
    bench_write_doc bench-probe "Fleet probes" "$REPORT"
fi
