#!/usr/bin/env python3
"""Writes tests/data/mixins/<peer>-names.txt: every metric name the community
mixins' rules (<mixin>.rules.yml) and dashboard queries
(<dashboard>.queries.yml) in MIXINS_DIR use, one line per name:

    <name> <TAB> <upstream path>[,<upstream path>...] [<TAB> n/a: <reason>]

MIXINS_DIR is outside this repository: the files tests/data/mixins/README.md
lists, made from the upstream repositories at the commits it names (third
party content, never committed here). The upstream path is the file in the
peer's repository an expression comes from (UPSTREAM below). The reason comes
from tests/data/mixins/not-applicable.txt (hand-written: "<peer> <name>
<reason>"). Names recorded by the rules themselves (`record:`) and
Prometheus' own ALERTS* are left out: they are not scraped. The ignored test
names_fixtures_list_what_the_mixin_files_select of tests/mixins.rs extracts
the same names with a real PromQL parser (scripts/mixin-coverage.sh runs it).

    scripts/mixin-names.sh MIXINS_DIR

The extraction here is a tokenizer, not a parser: strings, label matchers,
ranges and grouping clauses are cut out, and what is left that looks like an
identifier, is not followed by "(" (a function or aggregation) and is not a
keyword, is a metric name.
"""
import os
import re
import sys

import yaml

FIXTURES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "mixins"))

# Where each expression comes from upstream: a rule file's groups, a
# dashboard's queries file (as tests/data/mixins/README.md lists them).
UPSTREAM = {
    ("redis-mixin.rules.yml", "redis.rules"): "contrib/redis-mixin/rules/redis.libsonnet",
    ("redis-mixin.rules.yml", "redis"): "contrib/redis-mixin/alerts/redis.libsonnet",
    ("redis-mixin-overview.queries.yml", None): "contrib/redis-mixin/dashboards/redis-overview.json",
    ("redis-exporter-dashboard.queries.yml", None): "contrib/grafana_prometheus_redis_dashboard.json",
    ("postgres-mixin.rules.yml", "PostgreSQL"): "postgres_mixin/alerts/postgres.libsonnet",
    ("postgres-mixin.rules.yml", "postgres_rules"): "postgres_mixin/rules/rules.yaml",
    ("postgres-mixin-overview.queries.yml", None): "postgres_mixin/dashboards/postgres-overview.json",
    ("mysqld-mixin.rules.yml", "mysqld_rules"): "mysqld-mixin/rules/rules.yaml",
    ("mysqld-mixin.rules.yml", "MySQLAlerts"): "mysqld-mixin/alerts/alerts.yaml",
    ("mysqld-mixin-overview.queries.yml", None): "mysqld-mixin/dashboards/mysql-overview.json",
}

# Which peer a mixin file belongs to, by its file name's prefix.
PEERS = {"redis": "redis", "postgres": "postgres", "mysqld": "mysqld"}

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "atan2", "inf", "nan", "Inf", "NaN",
    # aggregation operators (may be followed by `by (...)` instead of "(")
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
SYNTHETIC = {"ALERTS", "ALERTS_FOR_STATE"}
GRAFANA_DURATIONS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}


def names_in(expr):
    """The metric names an expression selects."""
    for var, value in GRAFANA_DURATIONS.items():
        expr = expr.replace(var, value)
    names = set(re.findall(r'__name__\s*=\s*"([^"]+)"', expr))
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+-?\w+", " ", expr)
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr):
        word, call = m.group(1), m.group(2)
        if call or word in KEYWORDS:
            continue
        names.add(word)
    return names


def variable_expr(query):
    """The series expression of a Grafana `label_values(expr, label)`, or None."""
    m = re.match(r"\s*label_values\((.*),\s*\w+\s*\)\s*$", query, re.S)
    return m.group(1) if m else None


def upstream(base, group):
    try:
        return UPSTREAM[(base, group)]
    except KeyError:
        sys.exit(f"{base}: group {group!r} has no upstream path in UPSTREAM (scripts/lib/mixin-names.py)")


def exprs_of(path):
    """Every PromQL expression of a mixin file with its upstream path, and the
    names it records."""
    base = os.path.basename(path)
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    exprs, recorded = [], set()
    if path.endswith(".rules.yml"):
        for group in doc["groups"]:
            source = upstream(base, group["name"])
            for rule in group["rules"]:
                exprs.append((rule["expr"], source))
                if "record" in rule:
                    recorded.add(rule["record"])
    else:
        source = upstream(base, None)
        for var in doc.get("variables") or []:
            e = variable_expr(var["query"])
            if e is not None:
                exprs.append((e, source))
        exprs.extend((p["expr"], source) for p in doc["panels"])
    return exprs, recorded


def not_applicable():
    out = {}
    for line in open(os.path.join(FIXTURES, "not-applicable.txt"), encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        peer, name, reason = line.split(None, 2)
        out[(peer, name)] = reason
    return out


USAGE = """usage: scripts/mixin-names.sh MIXINS_DIR
MIXINS_DIR: a directory outside this repository holding the community mixins'
files that tests/data/mixins/README.md lists (redis-mixin.rules.yml,
redis-mixin-overview.queries.yml, ...), made from the upstream repositories
at the commits listed there, as described there."""


def main():
    mixins = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MIXINS_DIR", "")
    if not mixins:
        sys.exit(USAGE)
    wanted = sorted({base for (base, _) in UPSTREAM})
    missing = [b for b in wanted if not os.path.isfile(os.path.join(mixins, b))]
    if missing:
        sys.exit(f"{mixins}: missing {', '.join(missing)}\n{USAGE}")
    na = not_applicable()
    files = [os.path.join(mixins, b) for b in wanted]
    for prefix, peer in PEERS.items():
        used, recorded = {}, set()
        for path in files:
            base = os.path.basename(path)
            if not base.startswith(prefix + "-"):
                continue
            exprs, rec = exprs_of(path)
            recorded |= rec
            for e, source in exprs:
                for n in names_in(e):
                    used.setdefault(n, set()).add(source)
        names = sorted(n for n in used if n not in recorded and n not in SYNTHETIC)
        unknown = [n for (p, n) in na if p == peer and n not in names]
        if unknown:
            sys.exit(f"not-applicable.txt lists {peer} names no mixin file uses: {unknown}")
        out = os.path.join(FIXTURES, f"{peer}-names.txt")
        with open(out, "w", encoding="utf-8") as f:
            f.write(f"# The metric names the {peer} mixins select (facts; sources in README.md).\n")
            f.write("# Written by scripts/mixin-names.sh MIXINS_DIR; not-applicable.txt gives the reasons.\n")
            f.write("# name<TAB>upstream path[,...]<TAB>n/a: reason (only when not applicable)\n")
            for n in names:
                line = f"{n}\t{','.join(sorted(used[n]))}"
                if (peer, n) in na:
                    line += f"\tn/a: {na[(peer, n)]}"
                f.write(line + "\n")
        print(f"{out}: {len(names)} names, {sum(1 for (p, _) in na if p == peer)} not applicable")


if __name__ == "__main__":
    main()
