#!/usr/bin/env bash
# How much of the community mixins works on perfwatch: runs the ignored
# measurement tests of tests/mixins.rs with MIXINS_DIR (a real Prometheus
# scraping perfwatch over throwaway Redis, PostgreSQL and MariaDB, the
# mixins' rule files loaded) and prints the markdown table, per mixin file
# "rules usable / queries returning data", then the queries that return
# nothing and why. A measurement tool like the benchmarks, not part of CI.
#
# Usage: scripts/mixin-coverage.sh [--rev REV] MIXINS_DIR
#   MIXINS_DIR  a directory outside this repository holding the mixin files
#               tests/data/mixins/README.md lists, made from the upstream
#               repositories at the commits listed there (third-party
#               content: never commit it here).
#   --rev REV   measure commit REV instead of the working tree ("before"):
#               a temporary worktree of REV with this checkout's
#               tests/mixins.rs, tests/data/mixins and test support modules
#               copied in. The floors of tests/mixins.rs may fail there; the
#               table is printed anyway.
# Needs the test dependencies (scripts/install-test-deps.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
usage="usage: scripts/mixin-coverage.sh [--rev REV] MIXINS_DIR
MIXINS_DIR: a directory outside this repository holding the mixin files
tests/data/mixins/README.md lists (redis-mixin.rules.yml, ...), made from the
upstream repositories at the commits listed there, as described there."
rev=""
if [ "${1:-}" = "--rev" ]; then
    rev="${2:?--rev needs a commit}"
    shift 2
fi
mixins="${1:-${MIXINS_DIR:-}}"
if [ -z "$mixins" ] || [ ! -d "$mixins" ]; then
    echo "$usage" >&2
    exit 2
fi
MIXINS_DIR="$(cd "$mixins" && pwd)"
export MIXINS_DIR
dir="$here"
if [ -n "$rev" ]; then
    dir="$(mktemp -d)/perfwatch-$rev"
    git -C "$here" worktree add --detach "$dir" "$rev" >/dev/null
    trap 'git -C "$here" worktree remove --force "$dir"' EXIT
    rm -rf "$dir/tests/data/mixins" "$dir/tests/common"
    cp -r "$here/tests/data/mixins" "$dir/tests/data/mixins"
    cp -r "$here/tests/common" "$dir/tests/common"
    cp "$here/tests/mixins.rs" "$dir/tests/mixins.rs"
    for m in support_commands support_dashboards support_promql; do
        rm -rf "$dir/tests/$m" && cp -r "$here/tests/$m" "$dir/tests/$m"
    done
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
fi
out="$(mktemp)"
status=0
(cd "$dir" && cargo test -p perfwatch --test mixins -- --ignored --nocapture --test-threads=1) >"$out" 2>&1 || status=$?
echo "mixin coverage of $(git -C "$dir" rev-parse --short HEAD)${rev:+ ($rev)}, mixin files from $MIXINS_DIR:"
# A failing floor repeats the report in its panic message: print each line once.
grep -E '^\|' "$out" | awk '!seen[$0]++' | grep . || { cat "$out"; exit 1; }
echo
echo "queries and rules without data (- ) or failing (! ):"
grep -E '^  [-!] ' "$out" | awk '!seen[$0]++' | grep . || echo "  none"
grep -E '^note: ' "$out" || true
if [ "$status" -ne 0 ] && [ -z "$rev" ]; then
    echo "the test failed (status $status); its output: $out" >&2
    exit "$status"
fi
rm -f "$out"
