#!/usr/bin/env bash
# Runs perfwatch's main job on a throwaway local stack started from the test
# bench (crates/perfwatch-testbench, binary perfwatch-demo): Redis, PostgreSQL
# with PgBouncer, MariaDB, a sample app with a cache-aside endpoint, a
# synthetic workload (warm/cold cache phases, slow queries, a growing table),
# perfwatch with every collector, and Prometheus + Alertmanager with the
# repository's rules when installed. Prints the URLs; Ctrl-C stops it all.
#
# Usage: scripts/demo.sh [--demo.phase=2m] [--demo.fast-alerts] [--web.listen-address=127.0.0.1:9896]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for pair in redis-server:redis-server postgres:postgresql pgbouncer:pgbouncer \
    mariadbd:mariadb-server mariadb:mariadb-client; do
    bin=${pair%%:*}
    if ! command -v "$bin" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$bin" >/dev/null 2>&1 \
        && ! command -v "/usr/sbin/$bin" >/dev/null 2>&1; then
        missing+=("${pair#*:}")
    fi
done
if ((${#missing[@]})); then
    echo "demo: not installed: ${missing[*]}: install with 'apt-get install ${missing[*]}' (or run scripts/install-test-deps.sh)" >&2
    exit 1
fi
# The demo is a binary of the test bench, not a perfwatch subcommand: the
# sidecar links none of the servers and workloads it starts.
cargo build --release --locked --quiet -p perfwatch-testbench --features demo --bin perfwatch-demo
exec target/release/perfwatch-demo "$@"
