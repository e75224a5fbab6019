#!/usr/bin/env python3
"""Sums a heaptrack peak flamegraph (heaptrack_print --flamegraph-cost-type
peak -F FILE: one "frame;frame;...;frame bytes" line per call stack) by the
perfwatch function nearest the allocation, so the live heap at its peak reads
as "which part of perfwatch holds it".

Usage: heap-owners.py FOLDED [N]   (prints the N biggest owners, default 20)
"""
import collections
import re
import sys

DEMANGLE = [("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$C$", ","), ("$RF$", "&"),
            ("$u7b$", "{"), ("$u7d$", "}"), ("$LP$", "("), ("$RP$", ")"), ("..", "::")]


def readable(frame):
    frame = re.sub(r"::h[0-9a-f]{16}", "", frame)
    for mangled, plain in DEMANGLE:
        frame = frame.replace(mangled, plain)
    return frame


def main():
    owners = collections.Counter()
    for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
        stack, _, cost = line.rstrip().rpartition(" ")
        frames = [readable(f) for f in stack.split(";")]
        owner = next((f for f in reversed(frames)
                      if re.search(r"perfwatch(_slowlog)?::", f) and "perfwatch::main" not in f),
                     "(outside perfwatch's code: " + (frames[-1] if frames else "?") + ")")
        owners[owner[:140]] += int(cost)
    total = sum(owners.values())
    print(f"{total / 1024:8.0f} KiB live heap at the peak")
    for owner, cost in owners.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 20):
        print(f"{cost / 1024:8.0f} KiB {owner}")


main()
