#!/usr/bin/env bash
# Where perfwatch's memory goes, with every collector on: run against the
# stack `scripts/bench.sh --no-build --hold` keeps up (it prints the pid,
# binary and config this script takes).
#
# 1. The working set of the running perfwatch (PID): smaps' Rss and
#    Referenced per mapping after its referenced bits are cleared, 30 s of
#    polls and a 5 s wrk run: what is resident, and what of it was touched.
# 2. The live heap at its peak by owner: a second perfwatch with the same
#    config under heaptrack for 45 s (a 10 s wrk run included), summed by the
#    perfwatch function nearest each allocation (scripts/lib/heap-owners.py).
#
# Usage: scripts/profile-memory.sh PID BINARY CONFIG   (as root: clear_refs)
# Needs: heaptrack (apt-get install heaptrack), wrk, curl, python3.
set -euo pipefail
export LC_ALL=C
[[ $# -eq 3 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
pid=$1 binary=$2 config=$3
here=$(dirname "$0")
for bin in heaptrack heaptrack_print wrk curl python3; do
    command -v "$bin" >/dev/null || { echo "profile-memory: $bin not found (apt-get install ${bin%_print})" >&2; exit 1; }
done
url=$(ss -ltnp | awk -v p="pid=$pid," '$0 ~ p { print $4; exit }')
[[ -n $url ]] || { echo "profile-memory: pid $pid listens on no TCP port" >&2; exit 1; }
work=$(mktemp -d /tmp/perfwatch-profile.XXXXXX)

echo "== working set of pid $pid (kB): Rss, Referenced within 30 s of polls + 5 s of wrk"
echo 1 >"/proc/$pid/clear_refs"
sleep 30
wrk -t2 -c4 -d5s "http://$url/metrics" >/dev/null
awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) " " $2 }
     /^Rss:/ { rss[name] += $2 } /^Referenced:/ { ref[name] += $2 }
     END { for (k in rss) if (rss[k] >= 100) printf "%8d %8d  %s\n", rss[k], ref[k], k }' \
    "/proc/$pid/smaps" | sort -rn
grep -E '^(Rss|Pss|Pss_Anon|Pss_File):' "/proc/$pid/smaps_rollup"

echo "== live heap at its peak, second perfwatch under heaptrack (45 s)"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
heaptrack -o "$work/heap" "$binary" --config.file "$config" \
    --web.listen-address "127.0.0.1:$port" --log.level warn >"$work/heaptrack.log" 2>&1 &
hpid=$!
sleep 15
wrk -t2 -c4 -d10s "http://127.0.0.1:$port/metrics" >/dev/null
sleep 20
pkill -INT -f -- "--web.listen-address 127.0.0.1:$port" || true
wait "$hpid" || true
heaptrack_print -f "$work/heap.zst" --print-peaks 0 --print-allocators 0 --print-temporary 0 \
    --print-leaks 0 --flamegraph-cost-type peak -F "$work/peak.folded" |
    grep -E '^(peak heap|peak RSS|calls to allocation)' || true
python3 "$here/lib/heap-owners.py" "$work/peak.folded" 20
echo "(files kept in $work)"
