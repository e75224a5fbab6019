"""The figures of `scripts/bench-slowlog.sh --postgres`: perfwatch digest and
pgBadger on the same stderr, csv and json logs (their /usr/bin/time -v
outputs, perfwatch's JSON report, pgBadger's JSON output), as a Markdown
block on stdout, and "name value" lines in FIGURES when given.

Usage: pg-slowlog-report.py WORK PW_VERSION BADGER_VERSION DB_VERSION FIGURES
(WORK holds {stderr,csv,json}.bytes, pw-F.time, pw-F.json, pw-F.err,
pgb-F.time, pgb-F.json for each format F).

Counts are compared as totals (statements, their total duration) and per
normalized query: pgBadger's normalization (lower case, `?` for literals,
`in (...)`, every row of a multi-row VALUES kept) and perfwatch's
pt-query-digest fingerprint (`in(?+)`, `values(?+)`, digits in names
masked, ` asc` dropped) differ, so both are brought to one coarser key
(`canon`) and the groups of classes with the same key are compared.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gnu_time import gnu_time  # noqa: E402

work, pw_version, badger_version, db_version, figures = sys.argv[1:6]
FORMATS = ["stderr", "csv", "json"]
GOAL_MBS, GOAL_RATIO, GOAL_RSS_MIB = 300, 100, 16


def canon(q):
    """A key both normalizations map the same statement shape to: no case,
    spaces, comments, literals (pgBadger writes `$1` as nothing, `?`
    elsewhere), booleans, quoted names, digits or semicolons; IN and VALUES lists, LIMIT's OFFSET and ` asc`
    after ORDER BY folded as pt-query-digest folds them."""
    q = q.lower()
    # pt masks booleans and double-quoted names, pgBadger keeps them; it
    # keeps a `--` comment that the line does not end.
    q = re.sub(r"--[^\n]*|/\*.*?\*/", "", q)
    q = re.sub(r'\b(?:true|false)\b|"[^"]*"', "", q)
    q = re.sub(r"^\s*begin\s*;\s*", "", q)
    q = re.sub(r"\s+", "", q)
    q = re.sub(r"\d+", "?", q)
    q = q.replace("$?", "?").replace("null", "?")
    q = re.sub(r"in\((?:\.\.\.|\?\+|[?,.]*)\)", "in()", q)
    q = re.sub(r"values\(.*$", "values()", q)
    q = re.sub(r"(orderby[a-z_.]+)asc", r"\1", q)
    q = re.sub(r"limit\?(?:offset\?|,\?)", "limit?", q)
    q = re.sub(r"[?.e+-]*\?[?.e+-]*", "", q)
    return q.replace(";", "")[:120]


def pgbadger_classes(d):
    """pgBadger's normalized queries (all its report databases) as
    key -> [count, total ms, classes]; its totals."""
    groups = {}
    for per_db in d.get("normalyzed_info", {}).values():
        for norm, c in per_db.items():
            g = groups.setdefault(canon(norm), [0, 0.0, 0])
            g[0] += int(c["count"])
            g[1] += float(c["duration"])
            g[2] += 1
    n = ms = 0
    for v in d.get("overall_stat", {}).values():
        if isinstance(v, dict) and "queries_number" in v:
            n += int(v["queries_number"])
            # parse and bind steps are no executions (perfwatch does not
            # count them either).
            ms += float(v.get("queries_duration", {}).get("execute", 0))
    return groups, n, ms


def perfwatch_classes(r):
    groups = {}
    for c in r["top"]:
        g = groups.setdefault(canon(c["fingerprint"]), [0, 0.0, 0])
        g[0] += int(c["count"])
        g[1] += float(c["total_seconds"]) * 1000
        g[2] += 1
    return groups


mb = lambda b: b / 1e6
mib = lambda b: b / 1048576
out, figs, notes = [], [], []
p = out.append
rows = {}
for f in FORMATS:
    nbytes = int(open(f"{work}/{f}.bytes").read())
    pw_s, pw_rss, pw_cpu = gnu_time(f"{work}/pw-{f}.time")
    pg_s, pg_rss, pg_cpu = gnu_time(f"{work}/pgb-{f}.time")
    # /usr/bin/time prints CPU times in hundredths: never divide by zero.
    pw_cpu, pg_cpu = max(pw_cpu, 0.005), max(pg_cpu, 0.005)
    pw = json.load(open(f"{work}/pw-{f}.json"))
    pgb = json.load(open(f"{work}/pgb-{f}.json"))
    pg_groups, pg_n, pg_ms = pgbadger_classes(pgb)
    pw_groups = perfwatch_classes(pw)
    same = [k for k, g in pg_groups.items() if k in pw_groups and pw_groups[k][0] == g[0]]
    same_events = sum(pg_groups[k][0] for k in same)
    baseline = None
    if os.path.exists(f"{work}/bl-{f}.time"):
        _, bl_rss, bl_cpu = gnu_time(f"{work}/bl-{f}.time")
        bl = json.load(open(f"{work}/bl-{f}.json"))
        # The same report, class by class (id, count, total time)?
        by_class = lambda r: sorted((c["id"], c["count"], round(c["total_seconds"], 6)) for c in r["top"])
        baseline = dict(cpu=max(bl_cpu, 0.005), rss=bl_rss,
                        same=(bl["events"], by_class(bl)) == (pw["events"], by_class(pw)))
    rows[f] = dict(baseline=baseline, fmt=f,
        nbytes=nbytes, pw_s=pw_s, pw_rss=pw_rss, pw_cpu=pw_cpu, pg_s=pg_s, pg_rss=pg_rss, pg_cpu=pg_cpu,
        pw_mbs=mb(nbytes) / pw_cpu, pg_mbs=mb(nbytes) / pg_cpu, ratio=pg_cpu / pw_cpu,
        pw_events=int(pw["events"]), pw_ms=float(pw["total_seconds"]) * 1000, pg_n=pg_n, pg_ms=pg_ms,
        pw_classes=int(pw["classes"]), pg_classes=sum(g[2] for g in pg_groups.values()),
        groups=len(pg_groups), same=len(same), same_events=same_events,
        unrecognized=int(pw.get("unrecognized_lines", 0)), truncated=int(pw.get("truncated_events", 0)),
    )
    diff = sorted((k for k in set(pg_groups) | set(pw_groups) if k not in same),
                  key=lambda k: -max(pg_groups.get(k, [0])[0], pw_groups.get(k, [0])[0]))
    for k in diff[:3]:
        notes.append(f"  - {f}: `{k[:100]}` pgBadger {pg_groups.get(k, [0])[0]}, perfwatch {pw_groups.get(k, [0])[0]}")

p(f"Logs ({db_version}): " + ", ".join(f"{f} {mb(rows[f]['nbytes']):.1f} MB" for f in FORMATS)
  + " (MB = 10^6 bytes), the same statements in each.")
p(f"perfwatch: {pw_version}; pgBadger: {badger_version}.")
p("")
p("| | stderr | csv | json |")
p("|---|---:|---:|---:|")
# Every run's CPU seconds (STEM.runs), when the script ran more than one.
runs = lambda path: " / ".join(open(path).read().split()) if os.path.exists(path) else "one run"
row = lambda name, fn: p(f"| {name} | " + " | ".join(fn(rows[f]) for f in FORMATS) + " |")
row("perfwatch CPU time, user+sys (s)", lambda r: f"{r['pw_cpu']:.2f}")
row("perfwatch wall time (s)", lambda r: f"{r['pw_s']:.2f}")
row("perfwatch CPU time of each run (s; the median's run is the one shown)", lambda r: runs(f"{work}/pw-{r['fmt']}.runs"))
row("**perfwatch MB/s per core** (CPU time)", lambda r: f"**{r['pw_mbs']:.1f}**")
row("perfwatch max RSS (MiB)", lambda r: f"{mib(r['pw_rss']):.1f}")
if all(rows[f]["baseline"] for f in FORMATS):
    bl = lambda r: r["baseline"]
    row("baseline perfwatch CPU time (s)", lambda r: f"{bl(r)['cpu']:.2f}")
    row("baseline CPU time of each run (s)", lambda r: runs(f"{work}/bl-{r['fmt']}.runs"))
    row("baseline perfwatch MB/s per core", lambda r: f"{mb(r['nbytes']) / bl(r)['cpu']:.1f}")
    row("baseline max RSS (MiB)", lambda r: f"{mib(bl(r)['rss']):.1f}")
    row("speed-up over the baseline (CPU)", lambda r: f"{bl(r)['cpu'] / r['pw_cpu']:.2f}x")
    row("baseline's classes (id, count, total time) the same", lambda r: "yes" if bl(r)["same"] else "**no**")
row("pgBadger CPU time, user+sys (s)", lambda r: f"{r['pg_cpu']:.2f}")
row("pgBadger wall time (s)", lambda r: f"{r['pg_s']:.2f}")
row("pgBadger MB/s per core (CPU time)", lambda r: f"{r['pg_mbs']:.2f}")
row("pgBadger max RSS (MiB)", lambda r: f"{mib(r['pg_rss']):.1f}")
row("**ratio** (pgBadger CPU / perfwatch CPU)", lambda r: f"**{r['ratio']:.1f}x**")
row("statements: perfwatch / pgBadger", lambda r: f"{r['pw_events']} / {r['pg_n']}")
row("total duration (s): perfwatch / pgBadger", lambda r: f"{r['pw_ms'] / 1000:.3f} / {r['pg_ms'] / 1000:.3f}")
row("classes: perfwatch / pgBadger", lambda r: f"{r['pw_classes']} / {r['pg_classes']}")
row("class groups with equal counts", lambda r: f"{r['same']} / {r['groups']} ({r['same_events']} statements)")
row("perfwatch: unrecognized lines, truncated events", lambda r: f"{r['unrecognized']}, {r['truncated']}")
p("")
p("Class groups: pgBadger keeps every row count of a multi-row VALUES and every literal it does not mask as its own"
  " query, perfwatch folds them as pt-query-digest does; both are mapped to one coarser key (lower case; spaces,"
  " comments, literals, booleans, quoted names and digits dropped; IN and VALUES lists, LIMIT's OFFSET and ORDER BY's"
  " ASC folded) and the groups are compared by statement count.")
if notes:
    p("Largest groups that differ (normalization differences, such as pgBadger keeping the minus of `- interval` and a"
  " `--` comment that a csv or json message does not end, which pt-query-digest's rules drop):")
    out.extend(notes)
p("")
met = lambda ok: "met" if ok else "missed"
for f in FORMATS:
    r = rows[f]
    p(f"Goals, {f}: >= {GOAL_MBS} MB/s per core **{met(r['pw_mbs'] >= GOAL_MBS)}** ({r['pw_mbs']:.1f}"
      + ("" if r["pw_mbs"] >= GOAL_MBS else f", {GOAL_MBS / r['pw_mbs']:.2f}x short")
      + f"); >= {GOAL_RATIO}x pgBadger **{met(r['ratio'] >= GOAL_RATIO)}** ({r['ratio']:.1f}x"
      + ("" if r["ratio"] >= GOAL_RATIO else f", {GOAL_RATIO / r['ratio']:.2f}x short")
      + f"); max RSS <= {GOAL_RSS_MIB} MiB **{met(r['pw_rss'] <= GOAL_RSS_MIB * 1048576)}** ({mib(r['pw_rss']):.1f} MiB);"
      + f" statements agree **{met(r['pw_events'] == r['pg_n'])}**.")
if figures:
    with open(figures, "w") as fh:
        for f in FORMATS:
            r = rows[f]
            for k in ["nbytes", "pw_cpu", "pw_mbs", "pg_cpu", "pg_mbs", "ratio", "pw_events", "pg_n"]:
                fh.write(f"{f}_{k} {r[k]}\n")
            fh.write(f"{f}_pw_rss_mib {mib(r['pw_rss']):.1f}\n")
print("\n".join(out))
