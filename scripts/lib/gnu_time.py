"""Reading `/usr/bin/time -v` outputs, for the benchmarks' Python reports."""

import re


def gnu_time(path):
    """(wall seconds, max RSS in bytes, CPU seconds user+sys) of one
    `/usr/bin/time -v -o PATH` output; fails naming PATH when its RSS is
    missing."""
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    user = float(re.search(r"User time \(seconds\): (\S+)", text).group(1))
    sys_ = float(re.search(r"System time \(seconds\): (\S+)", text).group(1))
    if rss_kb <= 0:
        raise SystemExit(f"{path}: no RSS")
    return secs, rss_kb * 1024, user + sys_
