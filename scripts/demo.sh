#!/usr/bin/env bash
# Runs perfwatch's main job on a throwaway local stack: a Redis started from
# the test harness, a synthetic cache workload (hits, misses, evictions, keys
# without TTL), and perfwatch watching it. Prints the URLs; Ctrl-C stops it all.
#
# Usage: scripts/demo.sh [--demo.phase=2m] [--web.listen-address=127.0.0.1:9896]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1; then
    echo "demo: redis-server not found: install it with 'apt-get install redis-server' (or run scripts/install-test-deps.sh)" >&2
    exit 1
fi
cargo build --release --locked --quiet
exec target/release/perfwatch demo "$@"
