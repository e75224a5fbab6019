#!/bin/sh
# Regenerates tests/data/mixins/<peer>-names.txt (the metric names the
# community mixins use, with their upstream paths) from the mixin files in
# MIXINS_DIR: a directory outside this repository holding the files
# tests/data/mixins/README.md lists, made from upstream at the commits listed
# there. A measurement tool, not part of CI.
# Usage: scripts/mixin-names.sh MIXINS_DIR
# Needs python3 with PyYAML (Debian: python3-yaml).
set -eu
dir="${1:-${MIXINS_DIR:-}}"
if [ -n "$dir" ]; then
    dir="$(cd "$dir" && pwd)"
fi
cd "$(dirname "$0")/.."
exec python3 scripts/lib/mixin-names.py "$dir"
