#!/usr/bin/env bash
# Benchmarks perfwatch's PostgreSQL collector against Debian's
# prometheus-postgres-exporter, side by side, against ONE throwaway PostgreSQL
# cluster, in ONE run, and records the result in the "PostgreSQL" section of
# docs/PERFORMANCE.md.
#
# Measured:
#   - statements per perfwatch poll and per postgres_exporter scrape, from
#     pg_stat_statements deltas (pg_stat_statements.track = all, utility
#     statements included), each exporter logging in as its own role;
#   - new connections per poll / scrape, from log_connections
#     ("connection authorized: user=<role>") line counts;
#   - server-side sessions of each exporter at the end (pg_stat_activity);
#   - RSS (VmRSS) of both processes at the end.
# perfwatch runs two targets in one process: "light" (index_interval = 1h: a
# poll is the connection stats only) and "heavy" (index_interval = 1s: every
# poll also reads index and table stats), each as its own role, so both poll
# kinds are measured in the same window.
#
# Goals (from the issue): <= 6 statements per poll for the connection stats,
# 0 new connections per poll.
#
# Nothing here uses the machine's own PostgreSQL: initdb runs in a temp dir
# (as the postgres user when run as root), the server listens on a free
# 127.0.0.1 port, and everything this script starts is killed on exit.
#
# Usage: scripts/bench-postgres.sh [--no-build] [--no-doc] [--keep]
#   --no-build  use target/release/perfwatch as it is (default: cargo build --release)
#   --no-doc    do not rewrite the generated part of docs/PERFORMANCE.md
#   --keep      keep the work dir (configs, logs) after the run
# Environment: BENCH_WINDOW (30: seconds measured; perfwatch polls and
#   postgres_exporter is scraped once a second).
#
# Exit codes: 0 all figures measured; 1 a figure could not be measured or a
# step failed (the message says which); 2 bad usage.
set -euo pipefail

BENCH_NAME=bench-postgres
# shellcheck source=scripts/lib/bench-common.sh
. "$(dirname "$0")/lib/bench-common.sh"

build=1 write_doc=1
for arg in "$@"; do bench_flag "$arg" "--no-build --no-doc --keep"; done
WINDOW=${BENCH_WINDOW:-30}

# ---------------------------------------------------------------- prerequisites
for b in psql pg_isready curl prometheus-postgres-exporter; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found (apt-get install postgresql-client curl prometheus-postgres-exporter)"
done

# ---------------------------------------------------------------- work dir, cleanup
BENCH_KEEP_ON_FAIL=0 BENCH_KILL_WAIT=300
bench_workdir bench-postgres
build_perfwatch "$build"

# ---------------------------------------------------------------- PostgreSQL
start_postgres "$WORK"
pg_load_app pw_light pw_heavy pgexp

# ---------------------------------------------------------------- exporters
free_port PW_PORT
cat >"$WORK/perfwatch.toml" <<EOF
[global]
interval = "1s"
timeout = "800ms"

[[postgres]]
name = "light"
dsn = "postgres://pw_light@127.0.0.1:$PG_PORT/app"
index_interval = "1h"

[[postgres]]
name = "heavy"
dsn = "postgres://pw_heavy@127.0.0.1:$PG_PORT/app"
index_interval = "1s"
EOF
"$PERFWATCH" --config.file "$WORK/perfwatch.toml" --web.listen-address "127.0.0.1:$PW_PORT" >"$WORK/perfwatch.log" 2>&1 &
PW_PID=$!
PIDS+=("$PW_PID")
start_postgres_exporter pgexp
EXP_PID=$PEXP_PID
EXP_VERSION=$(prometheus-postgres-exporter --version 2>&1 | head -1)
PW_VERSION=$("$PERFWATCH" --version 2>&1 | head -1)

PW_URL="http://127.0.0.1:$PW_PORT"
pw_value() { pw_metric "$PW_URL" "$@"; } # pw_value NAME TARGET
for _ in $(seq 100); do
    [[ $(pw_value perfwatch_target_up light 2>/dev/null) == 1 && $(pw_value perfwatch_target_up heavy 2>/dev/null) == 1 ]] && break
    sleep 0.2
done
[[ $(pw_value perfwatch_target_up light) == 1 ]] || die "perfwatch target light not up: $(tail -5 "$WORK/perfwatch.log")"
[[ $(pw_value perfwatch_target_up heavy) == 1 ]] || die "perfwatch target heavy not up: $(tail -5 "$WORK/perfwatch.log")"
curl -fsS "$PEXP_URL" >"$WORK/exporter-first.txt" || die "postgres_exporter does not answer: $(tail -5 "$WORK/postgres_exporter.log")"
grep -q '^pg_up 1' "$WORK/exporter-first.txt" || die "postgres_exporter reports pg_up != 1: $(tail -5 "$WORK/postgres_exporter.log")"
sleep 2 # let both settle (first connections, prepared statements)

# ---------------------------------------------------------------- measurement

# snapshot SUFFIX: statement counts per role (one query) taken just after
# both perfwatch targets finished a poll and bracketed by their poll counters
# (retried until no poll finished in between), so statements and polls of the
# window match.
declare -A C N P
snapshot() {
    local sfx=$1 pl ph r c pl0 ph0
    # Start right after both targets finished a poll: their next polls are
    # ~1s away, so no poll is half-counted.
    pl0=$(pw_value perfwatch_polls_total light)
    ph0=$(pw_value perfwatch_polls_total heavy)
    for _ in $(seq 200); do
        [[ $(pw_value perfwatch_polls_total light) != "$pl0" && $(pw_value perfwatch_polls_total heavy) != "$ph0" ]] && break
        sleep 0.01
    done
    for _ in $(seq 20); do
        pl=$(pw_value perfwatch_polls_total light)
        ph=$(pw_value perfwatch_polls_total heavy)
        rows=$(pg_statements pw_light pw_heavy pgexp)
        if [[ $pl == "$(pw_value perfwatch_polls_total light)" && $ph == "$(pw_value perfwatch_polls_total heavy)" ]]; then
            while read -r r c; do C[$r$sfx]=$c; done <<<"$rows"
            P[light$sfx]=$pl
            P[heavy$sfx]=$ph
            for r in pw_light pw_heavy pgexp; do N[$r$sfx]=$(pg_conns "$r"); done
            return 0
        fi
        sleep 0.1
    done
    die "could not take a snapshot between two polls"
}
declare -A S
snapshot 0
log "measuring for ${WINDOW}s (perfwatch polls every 1s; postgres_exporter scraped every 1s)"
scrapes=0
end=$((SECONDS + WINDOW))
while ((SECONDS < end)); do
    t0=$(date +%s%N)
    curl -fsS "$PEXP_URL" >/dev/null || die "a postgres_exporter scrape failed"
    scrapes=$((scrapes + 1))
    t1=$(date +%s%N)
    left=$((1000000000 - (t1 - t0)))
    ((left > 0)) && sleep "$(printf '0.%09d' "$left")"
done
# The last exporter scrape has finished (curl waited for it).
snapshot 1
for r in pw_light pw_heavy pgexp; do S[$r]=$(pg_sessions "$r"); done
PW_RSS=$(rss_kb "$PW_PID")
EXP_RSS=$(rss_kb "$EXP_PID")
[[ -n $PW_RSS && -n $EXP_RSS ]] || die "could not read VmRSS"
# perfwatch's RSS split: anonymous (heap, stacks) vs file-backed (binary, libs).
PW_ANON=$(awk '/^Anonymous:/ { print $2 }' "/proc/$PW_PID/smaps_rollup")
[[ -n $PW_ANON ]] || die "could not read /proc/$PW_PID/smaps_rollup"

polls_light=$((P[light1] - P[light0]))
polls_heavy=$((P[heavy1] - P[heavy0]))
((polls_light > 0 && polls_heavy > 0 && scrapes > 0)) || die "no polls or scrapes in the window"
per() { awk -v d="$1" -v n="$2" 'BEGIN { printf "%.2f", d / n }'; }
st_light=$(per $((C[pw_light1] - C[pw_light0])) "$polls_light")
st_heavy=$(per $((C[pw_heavy1] - C[pw_heavy0])) "$polls_heavy")
st_exp=$(per $((C[pgexp1] - C[pgexp0])) "$scrapes")
cn_light=$(per $((N[pw_light1] - N[pw_light0])) "$polls_light")
cn_heavy=$(per $((N[pw_heavy1] - N[pw_heavy0])) "$polls_heavy")
cn_exp=$(per $((N[pgexp1] - N[pgexp0])) "$scrapes")

# Per-statement breakdown of one perfwatch poll (light role).
breakdown=$(q "SELECT s.calls || ' × ' || regexp_replace(left(s.query, 60), '\s+', ' ', 'g') FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'pw_light' ORDER BY s.calls DESC, s.query")

goal_st=$(awk -v s="$st_light" 'BEGIN { print (s <= 6) ? "met" : "MISSED" }')
goal_rss=$(awk -v k="$PW_RSS" 'BEGIN { m = k / 1024; if (m <= 12) print "met"; else printf "MISSED by %.1f MiB", m - 12 }')
goal_cn=$(awk -v s="$cn_light" -v h="$cn_heavy" 'BEGIN { print (s == 0 && h == 0) ? "met" : "MISSED" }')

TABLE=$(
    cat <<EOF
Run: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(uname -m)), $PG_VERSION,
$PW_VERSION, $EXP_VERSION. Window ${WINDOW}s: perfwatch polls every 1s,
postgres_exporter scraped every 1s ($scrapes scrapes).
Reproduce: \`scripts/bench-postgres.sh\` (BENCH_WINDOW=$WINDOW).

| | perfwatch, connection stats (\`light\`) | perfwatch, + index/table stats every poll (\`heavy\`) | postgres_exporter 0.11 |
|---|---|---|---|
| polls / scrapes in window | $polls_light | $polls_heavy | $scrapes |
| statements per poll / scrape | $st_light | $st_heavy | $st_exp |
| new connections per poll / scrape | $cn_light | $cn_heavy | $cn_exp |
| server sessions at the end | ${S[pw_light]} | ${S[pw_heavy]} | ${S[pgexp]} |
| RSS at the end | $(mib "$PW_RSS") MiB (one process, both targets; $(mib "$PW_ANON") MiB anonymous, $(mib $((PW_RSS - PW_ANON))) MiB file-backed) | | $(mib "$EXP_RSS") MiB |

Goals: ≤ 6 statements per poll for the connection stats: **$goal_st**
($st_light); 0 new connections per poll: **$goal_cn**; RSS ≤ 12 MiB (common
goal, whole process): **$goal_rss**.

Statements of the \`light\` role over the whole run (calls × statement):
\`\`\`
$breakdown
\`\`\`
EOF
)
printf '\n%s\n' "$TABLE"

if ((write_doc)); then
    bench_write_doc bench-postgres "PostgreSQL section" "$TABLE"
fi
