#!/usr/bin/env python3
"""Generates the perfwatch Grafana dashboards (dashboards/*.json).

The JSON files are committed and import-ready; this script is their source.
Edit it, run `python3 dashboards/generate.py`, commit both. tests/dashboards.rs
checks the JSON (datasource, variables, units, thresholds, PromQL).

Aggregation rules (see docs/scaling.md):
- a shared target (Redis, database, PgBouncer) is one physical thing; if two
  perfwatch instances ever export it (a rollout, a second Prometheus job),
  their series are copies: gauges and rates aggregate with `max by (target)`;
- a per-pod target (http, process, a pod-local slow log) is exported by each
  pod's sidecar under the same `target` name with a different `instance`:
  extensive quantities (connections, memory, requests, histogram buckets) sum
  across instances, intensive ones (saturation, worst response) take max;
- hit ratios are re-weighted by lookups, sum(ratio * lookups) / sum(lookups),
  which is exact across pods and immune to duplicated copies.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}

J = 'job=~"$job", instance=~"$instance"'
JT = J + ', target=~"$target"'


def s(metric, extra="", target=True):
    """A selector with the dashboard's variables (and extra matchers)."""
    m = JT if target else J
    if extra:
        m += ", " + extra
    return f"{metric}{{{m}}}"


def agg(op, by, metric, extra=""):
    """`op by (by) (metric{...})`: across the perfwatch instances that export it."""
    return f"{op} by ({by}) ({s(metric, extra)})"


def per_target(op, *metrics):
    """One line per target for each (metric, legend suffix): `op by (target)`."""
    return [(agg(op, "target", m), "{{target}} " + suffix) for m, suffix in metrics]


def agg_rate(op, by, metric, extra="", window=None):
    """`op by (by) (rate(metric{...}[window]))`."""
    return f"{op} by ({by}) (rate({s(metric, extra)}[{window or RATE}]))"


RATE = "$__rate_interval"
# Latency probes run every few minutes: a 1m rate would be empty.
LAT_WIN = "30m"


class Board:
    def __init__(self, uid, title, description, tags, target_collectors):
        self.uid = uid
        self.title = title
        self.description = description
        self.tags = tags
        self.target_collectors = target_collectors
        self.panels = []
        self.next_id = 1
        self.y = 0
        self.x = 0
        self.row_h = 0

    def _pos(self, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title):
        if self.x:
            self.y += self.row_h
        self.x = 0
        self.row_h = 0
        p = {
            "id": self.next_id,
            "type": "row",
            "title": title,
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            "panels": [],
        }
        self.next_id += 1
        self.y += 1
        self.panels.append(p)

    def text(self, title, content, w=24, h=4):
        p = {
            "id": self.next_id,
            "type": "text",
            "title": title,
            "gridPos": self._pos(w, h),
            "options": {"mode": "markdown", "content": content},
        }
        self.next_id += 1
        self.panels.append(p)

    def panel(
        self,
        kind,
        title,
        targets,
        unit,
        w=12,
        h=8,
        description="",
        thresholds=None,
        minv=None,
        maxv=None,
        mappings=None,
        options=None,
        custom=None,
        transformations=None,
        overrides=None,
    ):
        refs = "ABCDEFGHIJ"
        tg = []
        for i, t in enumerate(targets):
            expr, legend = t[0], t[1]
            opts = t[2] if len(t) > 2 else {}
            q = {
                "datasource": DS,
                "refId": refs[i],
                "expr": expr,
                "legendFormat": legend,
                "range": kind not in ("table", "stat_instant"),
                "instant": kind in ("table", "stat_instant"),
            }
            if kind == "table":
                q["format"] = "table"
            if kind == "heatmap":
                q["format"] = "heatmap"
                q["legendFormat"] = "{{le}}"
            q.update(opts)
            tg.append(q)
        steps = [{"color": "green", "value": None}]
        if thresholds:
            steps = thresholds
        defaults = {
            "unit": unit,
            "thresholds": {"mode": "absolute", "steps": steps},
            "color": {"mode": "palette-classic" if kind == "timeseries" else "thresholds"},
        }
        if minv is not None:
            defaults["min"] = minv
        if maxv is not None:
            defaults["max"] = maxv
        if mappings:
            defaults["mappings"] = mappings
        c = {}
        if kind == "timeseries":
            c = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10,
                "showPoints": "never",
                "spanNulls": True,
                "thresholdsStyle": {"mode": "dashed" if thresholds else "off"},
            }
        if custom:
            c.update(custom)
        if c:
            defaults["custom"] = c
        gtype = "stat" if kind == "stat_instant" else kind
        p = {
            "id": self.next_id,
            "type": gtype,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": self._pos(w, h),
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": options or default_options(gtype),
            "targets": tg,
        }
        if transformations:
            p["transformations"] = transformations
        self.next_id += 1
        self.panels.append(p)
        return p

    # One method per panel kind, so that a panel is one call with its title,
    # unit and queries first (the keyword arguments are panel()'s).
    def ts(self, title, unit, targets, **kw):
        return self.panel("timeseries", title, targets, unit, **kw)

    def stat(self, title, unit, targets, **kw):
        return self.panel("stat", title, targets, unit, **kw)

    def states(self, title, targets, **kw):
        return self.panel("state-timeline", title, targets, "none", **kw)

    def heatmap(self, title, expr, **kw):
        return self.panel("heatmap", title, [(expr, "{{le}}")], "s", **kw)

    def table(self, title, unit, columns, nonzero_col=None, **kw):
        """A table of instant queries merged on their labels: `columns` is
        [(column name, expr)]; a name of None drops the value (the labels
        are the table). `nonzero_col` keeps only the rows where that column
        is above 0."""
        names = [n for n, _ in columns]
        if names == [None]:
            transformations = merge_table({}, exclude=("Time", "Value"))
        elif len(names) == 1:
            transformations = merge_table({"Value": names[0]})
        else:
            transformations = merge_table({f"Value #{r}": n for r, n in zip("ABCDEFGHIJ", names)})
        if nonzero_col:
            transformations.append(nonzero(nonzero_col))
        targets = [(expr, "") for _, expr in columns]
        return self.panel("table", title, targets, unit, transformations=transformations, **kw)

    def json(self):
        coll = self.target_collectors
        tsel = "perfwatch_target_up{" + J
        if coll:
            tsel += f', collector=~"{coll}"'
        tsel += "}"
        templating = [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {"selected": False, "text": "${DS_PROMETHEUS}", "value": "${DS_PROMETHEUS}"},
                "hide": 0,
                "refresh": 1,
                "regex": "",
                "options": [],
            },
            var("job", "label_values(perfwatch_target_up, job)"),
            var("instance", 'label_values(perfwatch_target_up{job=~"$job"}, instance)'),
            var("target", f"label_values({tsel}, target)"),
        ]
        return {
            "__inputs": [
                {
                    "name": "DS_PROMETHEUS",
                    "label": "Prometheus",
                    "description": "The Prometheus that scrapes perfwatch",
                    "type": "datasource",
                    "pluginId": "prometheus",
                    "pluginName": "Prometheus",
                }
            ],
            "__elements": {},
            "__requires": [
                {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
                {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
                {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
                {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
                {"type": "panel", "id": "table", "name": "Table", "version": ""},
                {"type": "panel", "id": "heatmap", "name": "Heatmap", "version": ""},
                {"type": "panel", "id": "state-timeline", "name": "State timeline", "version": ""},
                {"type": "panel", "id": "bargauge", "name": "Bar gauge", "version": ""},
                {"type": "panel", "id": "text", "name": "Text", "version": ""},
            ],
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    }
                ]
            },
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["perfwatch"] + self.tags,
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {},
            "timezone": "",
            "refresh": "1m",
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "links": [
                {
                    "title": "perfwatch",
                    "type": "dashboards",
                    "tags": ["perfwatch"],
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                }
            ],
            "templating": {"list": templating},
            "panels": self.panels,
        }


def var(name, query):
    return {
        "name": name,
        "label": name,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"PrometheusVariableQueryEditor-{name}"},
        "definition": query,
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "sort": 1,
        "regex": "",
        "options": [],
    }


def default_options(kind):
    if kind == "timeseries":
        return {
            "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value_and_name",
        }
    if kind == "table":
        return {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    if kind == "heatmap":
        return {
            "calculate": False,
            "yAxis": {"unit": "s", "axisPlacement": "left"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "steps": 64, "fill": "dark-orange", "reverse": False},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
            "legend": {"show": True},
            "filterValues": {"le": 1e-9},
            "showValue": "never",
            "cellValues": {"unit": "short"},
        }
    if kind == "state-timeline":
        return {
            "showValue": "auto",
            "mergeValues": True,
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        }
    if kind == "bargauge":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
            "minVizHeight": 16,
            "minVizWidth": 8,
            "maxVizHeight": 300,
        }
    return {}


HIT = [
    {"color": "red", "value": None},
    {"color": "orange", "value": 0.7},
    {"color": "green", "value": 0.8},
]
SAT = [
    {"color": "green", "value": None},
    {"color": "red", "value": 0.8},
]
UPDOWN = [
    {"type": "value", "options": {"0": {"text": "down", "color": "red", "index": 0}, "1": {"text": "up", "color": "green", "index": 1}}}
]
ACTIVE = [
    {"type": "value", "options": {"0": {"text": "inactive", "color": "green", "index": 0}, "1": {"text": "ACTIVE", "color": "orange", "index": 1}}}
]
BAD_IF_ONE = [{"color": "green", "value": None}, {"color": "red", "value": 1}]
ORANGE_FROM_ONE = [{"color": "green", "value": None}, {"color": "orange", "value": 1}]
CELL_COLOR = {"id": "custom.cellOptions", "value": {"type": "color-background"}}
FRACTION_UP = [{"color": "red", "value": None}, {"color": "orange", "value": 0.5}, {"color": "green", "value": 1}]


def hit_ratio(window, by, extra=""):
    """Lookup-weighted hit ratio: exact across pods and duplicate exporters.

    `window` is a label value, or a matcher when it starts with `=~`."""
    wm = f"window{window}" if window.startswith("=~") else f'window="{window}"'
    m = wm + (", " + extra if extra else "")
    return (
        f"sum by ({by}) ({s('perfwatch_cache_hit_ratio', m)} * {s('perfwatch_cache_lookups_in_window', m)})"
        f" / sum by ({by}) ({s('perfwatch_cache_lookups_in_window', m)})"
    )


def merge_table(rename, exclude=("Time",)):
    return [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {"excludeByName": {k: True for k in exclude}, "indexByName": {}, "renameByName": rename},
        },
    ]


def nonzero(col):
    """Keeps the table rows whose `col` is above 0 (the query multiplies by a
    0/1 verdict, so that it returns every index or table, never nothing)."""
    return {
        "id": "filterByValue",
        "options": {
            "type": "include",
            "match": "any",
            "filters": [{"fieldName": col, "config": {"id": "greater", "options": {"value": 0}}}],
        },
    }


def col_unit(col, unit):
    return {"matcher": {"id": "byName", "options": col}, "properties": [{"id": "unit", "value": unit}]}


def color_background(col):
    return {"matcher": {"id": "byName", "options": col}, "properties": [CELL_COLOR]}


def share_up(metric, by):
    """Share of the perfwatch instances (pods) whose 0/1 `metric` is 1."""
    return f"sum by ({by}) ({s(metric)}) / count by ({by}) ({s(metric)})"


def value_if(by, value, verdict):
    """`value` where the 0/1 `verdict` series with the same labels is 1, and
    0 where it is 0 (so that the query returns every row, never nothing;
    see nonzero())."""
    return f"max by ({by}) ({s(value)} * on (job, instance, {by}) ({s(verdict)}))"


SLOW = "perfwatch_slow_query_duration_seconds"
OOM = 'err="OOM"'
DB_SOURCES = 'source=~"postgres|mysql|pgbouncer"'
IDLE_IN_TX = 'state=~"idle in transaction.*"'
W5M = 'window="5m"'
DATA_INDEX = 'component=~"data_length|index_length"'
APP_SOURCE = 'source="app"'
OTHER_FP = 'fingerprint="other"'
NOT_OTHER_FP = 'fingerprint!="other"'
HEALTH = 'kind="health"'


# ---------------------------------------------------------------- overview
def overview():
    b = Board("perfwatch-overview", "perfwatch / Overview", "Target health first, then the architecture phases and their triggers, phase 3's background jobs, cache hit ratio, evictions, pool saturation and slow-query p95.", ["overview"], "")
    nt = dict(target=False)
    b.row("Health")
    b.stat("Targets up", "percentunit", [(share_up("perfwatch_target_up", "collector, target"), "{{collector}} {{target}}")], h=6,
           description="Share of perfwatch instances whose last poll of the target succeeded (per-pod sidecars: share of pods).",
           thresholds=FRACTION_UP, minv=0, maxv=1)
    b.stat("App up", "percentunit", [(share_up("perfwatch_app_up", "target"), "{{target}}")], h=6,
           description="Share of pods whose endpoint answered with an expected status.", thresholds=FRACTION_UP, minv=0, maxv=1)
    b.ts("Poll errors", "ops", [(agg_rate("sum", "collector, target, reason", "perfwatch_poll_errors_total"), "{{collector}} {{target}} {{reason}}")])
    b.stat("Config reload ok", "none", [(f"min({s('perfwatch_config_last_reload_successful', **nt)})", "reload ok")], w=6,
           mappings=[{"type": "value", "options": {"0": {"text": "FAILED", "color": "red", "index": 0}, "1": {"text": "ok", "color": "green", "index": 1}}}],
           thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}])
    b.stat("Stale targets", "short", [(f"sum({s('perfwatch_target_stale')})", "stale")], w=6,
           description="Targets not polled successfully for 3 intervals: their series are withheld.", thresholds=BAD_IF_ONE)
    b.row("Architecture phases")
    b.stat("Recommended phase", "none", [(f"max({s('perfwatch_phase_recommended', **nt)})", "recommended")], w=4, h=6,
           description="Position (1-based, as declared in [[phase]]) of the last phase whose rule is met; 0 = the current architecture is enough.",
           thresholds=ORANGE_FROM_ONE, mappings=[{"type": "value", "options": {"0": {"text": "none", "color": "green", "index": 0}}}])
    phases = (f"max by (phase, description, order) ({s('perfwatch_phase_info', **nt)})"
              f" * on (phase) group_left max by (phase) ({s('perfwatch_phase_active', **nt)})")
    b.table("Phases", "none", [("active", phases)], w=20, h=6,
            description="perfwatch_phase_info joined with perfwatch_phase_active (1 = the phase's rule is met on any perfwatch instance).",
            mappings=ACTIVE, overrides=[color_background("active")])
    b.states("Phase active", [(f"max by (phase) ({s('perfwatch_phase_active', **nt)})", "{{phase}}")], w=12, h=7, mappings=ACTIVE, thresholds=ORANGE_FROM_ONE)
    trigger = lambda m, by="phase, trigger": f"max by ({by}) ({s(m, **nt)})"
    b.states("Trigger active", [(trigger("perfwatch_phase_trigger_active"), "{{phase}} / {{trigger}}")], w=12, h=7, mappings=ACTIVE, thresholds=ORANGE_FROM_ONE)
    b.table(
        "Triggers: value vs threshold",
        "short",
        [
            ("value", trigger("perfwatch_phase_trigger_value")),
            ("threshold", trigger("perfwatch_phase_trigger_threshold", "phase, trigger, direction")),
            ("active", trigger("perfwatch_phase_trigger_active")),
            ("active for", trigger("perfwatch_phase_trigger_active_seconds")),
            ("no data", trigger("perfwatch_phase_trigger_no_data")),
        ],
        w=24,
        description="A trigger fires when its value is above/below (direction) its threshold for its `for` duration. no data = the selector matched nothing (target down or metric missing).",
        overrides=[col_unit("active for", "s"), {"matcher": {"id": "byName", "options": "active"}, "properties": [{"id": "mappings", "value": ACTIVE}, CELL_COLOR]}],
    )
    b.ts("Trigger values", "short", [(trigger("perfwatch_phase_trigger_value"), "{{phase}} / {{trigger}}")], w=24,
         description="Each trigger's current value; compare with the threshold column above (units differ per trigger).")
    b.row("Background jobs (phase 3)")
    b.ts("Job queue depth", "short", [(agg("max", "target, db, key", "redis_key_size"), "{{target}} {{db}} {{key}}")], w=8,
         description="redis_key_size of the keys in [redis.key_checks]: a job queue's depth (a Celery queue is a list, `celery` by default). A depth that keeps growing: the workers do not keep up.")
    b.ts("Job freshness", "s", [(agg("max", "target, query", "perfwatch_custom_query_value", 'query=~".+_age_seconds"'), "{{target}} {{query}}")], w=8,
         description="Custom queries named *_age_seconds, e.g. the example's trip_summary_age_seconds = now() - max(computed_at) of the summary the scheduled job fills. Above 2 runs of the schedule (1800 s for 15 minutes): jobs falling behind.",
         thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1800}], minv=0)
    health = (f"max by (phase, trigger) ({s('perfwatch_phase_trigger_active', **nt)})"
              f" * on (phase, trigger) max by (phase, trigger) ({s('perfwatch_phase_trigger_info', HEALTH, **nt)})")
    b.states("Health triggers", [(health, "{{phase}} / {{trigger}}")], w=8,
             description="The phase health triggers (kind = \"health\"): the phase is in place but its jobs fall behind (BackgroundJobsFallingBehind). They never count toward the recommended phase.",
             mappings=ACTIVE, thresholds=ORANGE_FROM_ONE)
    b.row("Cache")
    b.ts("Cache hit ratio (5m)", "percentunit", [(hit_ratio("5m", "target, key_prefix"), "{{target}} {{key_prefix}}")],
         description="Hits / lookups over 5 minutes, Redis (per target) and the app's own counters (per key_prefix), weighted by lookups across pods. Below 0.70: seed phase-2 trigger; 0.80 is the target.",
         thresholds=HIT, minv=0, maxv=1)
    b.ts("Redis evictions", "ops", [(agg_rate("max", "target", "redis_evicted_keys_total"), "{{target}}")],
         description="Keys evicted per second: Redis hit maxmemory and is dropping keys.")
    b.row("Pools and slow queries")
    b.ts("Pool saturation by source", "percentunit", [(agg("max", "source, target", "perfwatch_pool_saturation_ratio"), "{{source}} {{target}}")],
         description="Connections in use / capacity: app pool (worst pod), PgBouncer (fullest pool), PostgreSQL / MySQL (server max_connections). 0.8 = saturated.",
         thresholds=SAT, minv=0)
    b.ts("Slow-query p95", "s", [(f"histogram_quantile(0.95, {agg_rate('sum', 'le, target', SLOW + '_bucket')})", "{{target}}")],
         description="95th percentile duration of the queries in the slow logs (slow-log collector).")
    return b


# ---------------------------------------------------------------- redis
def redis():
    b = Board("perfwatch-redis", "perfwatch / Redis cache", "Hit ratio by window, keys and memory per prefix, keys without TTL, evictions, memory vs maxmemory, commands and the SLOWLOG.", ["redis", "cache"], "redis")
    R = 'key_prefix=""'
    b.row("Hit ratio")
    for w in ["1m", "5m", "15m", "total"]:
        b.stat(f"Hit ratio {w}", "percentunit", [(hit_ratio(w, "target", R), "{{target}}")], w=6, h=5, thresholds=HIT, minv=0, maxv=1,
               description="perfwatch_cache_hit_ratio (the sampler's own lookups subtracted). Absent when the window had no lookups.")
    b.ts("Hit ratio by window", "percentunit", [(hit_ratio('=~"1m|5m|15m"', "target, window", R), "{{target}} {{window}}")], w=16,
         thresholds=HIT, minv=0, maxv=1, description="Below 0.70 (seed phase-2 trigger) the cache is not carrying the load; 0.80 is the target.")
    b.ts("Lookups", "ops", [
        (agg_rate("max", "target", "redis_keyspace_hits_total"), "{{target}} hits"),
        (agg_rate("max", "target", "redis_keyspace_misses_total"), "{{target}} misses"),
    ], w=8)
    b.row("Keys per prefix (key sampler)")
    keys = lambda m: agg("max", "target, db, prefix", m)
    by_prefix = "{{target}} {{db}} {{prefix}}"
    b.table(
        "Key groups",
        "short",
        [
            ("keys", keys("perfwatch_redis_key_group_keys")),
            ("without TTL", keys("perfwatch_redis_key_group_keys_without_ttl")),
            ("memory", keys("perfwatch_redis_key_group_memory_bytes")),
        ],
        h=9,
        description="From the last complete SCAN cycle (perfwatch_redis_key_sampler_cycle_complete). Keys without TTL in a cache prefix: the 'cache never expires' bug.",
        overrides=[col_unit("memory", "bytes")],
    )
    b.ts("Keys without TTL by prefix", "short", [(keys("perfwatch_redis_key_group_keys_without_ttl"), by_prefix)], h=9)
    b.ts("Keys by prefix", "short", [(keys("perfwatch_redis_key_group_keys"), by_prefix)], w=8)
    b.ts("Memory by prefix", "bytes", [(keys("perfwatch_redis_key_group_memory_bytes"), by_prefix)], w=8,
         description="Mean MEMORY USAGE of sampled keys x key count.")
    b.ts("Keys without TTL by db", "short", [(agg("max", "target, db", "perfwatch_redis_db_keys_without_ttl"), "{{target}} {{db}}")], w=8)
    b.row("Memory and evictions")
    memory = per_target("max", ("redis_memory_used_bytes", "used"), ("redis_memory_used_rss_bytes", "rss"),
                        ("redis_memory_max_bytes", "maxmemory (0 = no limit)"))
    b.ts("Memory vs maxmemory", "bytes", memory)
    b.ts("Memory used ratio", "percentunit", [(agg("max", "target", "perfwatch_redis_memory_used_ratio"), "{{target}}")], w=6,
         thresholds=SAT, minv=0, maxv=1, description="used_memory / maxmemory (absent without maxmemory). Above 0.8 evictions are near.")
    b.ts("Evictions", "ops", [(agg_rate("max", "target", "redis_evicted_keys_total"), "{{target}}")], w=6)
    b.ts("Clients used ratio", "percentunit", [(agg("max", "target", "perfwatch_redis_clients_used_ratio"), "{{target}}")], w=8, thresholds=SAT, minv=0)
    b.ts("Rejected writes (OOM) and connections", "ops", [
        (
            # redis_errors_total{err="OOM"} exists only after the first OOM
            # error: fall back to 0 per target so the line is always drawn.
            f"{agg_rate('max', 'target', 'redis_errors_total', OOM)} or 0 * {agg('max', 'target', 'redis_uptime_in_seconds')}",
            "{{target}} OOM errors",
        ),
        (agg_rate("max", "target", "redis_rejected_connections_total"), "{{target}} rejected connections"),
    ], w=8)
    b.ts("Expired keys", "ops", [(agg_rate("max", "target", "redis_expired_keys_total"), "{{target}}")], w=8)
    b.row("Commands and SLOWLOG")
    b.ts("Commands by cmd (top 10)", "ops", [(f"topk(10, {agg_rate('max', 'target, cmd', 'redis_commands_total')})", "{{target}} {{cmd}}")])
    mean_latency = (f"topk(10, {agg_rate('max', 'target, cmd', 'redis_commands_duration_seconds_total')}"
                    f" / {agg_rate('max', 'target, cmd', 'redis_commands_total')})")
    b.ts("Mean command latency by cmd (top 10)", "s", [(mean_latency, "{{target}} {{cmd}}")])
    slowlog_new = f"sum by (le) (max by (target, cmd, le) (increase({s('perfwatch_redis_slowlog_duration_seconds_bucket')}[{RATE}])))"
    b.heatmap("SLOWLOG durations", slowlog_new, description="New SLOWLOG entries (deduplicated by id) by duration bucket.")
    b.ts("SLOWLOG entries by cmd", "ops", [(agg_rate("max", "target, cmd", "perfwatch_redis_slowlog_duration_seconds_count"), "{{target}} {{cmd}}")])

    b.row("Replication")
    replica = "target, slave_ip, slave_port"
    b.ts("Redis replicas and links", "short", [
        (agg("max", "target", "redis_connected_slaves"), "{{target}} replicas connected"),
        (agg("min", "target", "redis_master_link_up"), "{{target}} link to primary up"),
    ], w=8, description="On a primary: its connected replicas. On a replica: 1 while its link to the primary is up; 0 for 2 minutes is RedisReplicationBroken.")
    b.ts("Redis replica acknowledgement age", "s", [(agg("max", replica, "redis_connected_slave_lag_seconds"), "{{target}} → {{slave_ip}}:{{slave_port}}")],
         w=8, thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 10}],
         description="On a primary, per replica: seconds since it last acknowledged (every second when healthy). Above 10 s for 5 minutes: RedisReplicaNotAcknowledging.")
    behind = (f"max by (target) ({s('redis_master_repl_offset')}) - on (target) group_right "
              f"max by ({replica}) ({s('redis_connected_slave_offset_bytes')})")
    b.ts("Redis replica offset behind", "bytes", [(behind, "{{target}} → {{slave_ip}}:{{slave_port}}")], w=8,
         description="On a primary, per replica: replication stream bytes it has not acknowledged (the primary's offset minus the replica's).")

    b.row("Sentinel and Cluster")
    master = "target, master_name"
    b.ts("Sentinel: primary seen up", "short", [
        (agg("max", master + ", sentinel", "redis_sentinel_master_status"), "{{target}} {{master_name}} by {{sentinel}}"),
        (agg("min", master, "redis_sentinel_master_ckquorum_status"), "{{target}} {{master_name}} quorum reachable"),
    ], w=12, minv=0, maxv=1,
         description="Per sentinel: 1 while it sees the primary up (0: sdown or odown). Every sentinel at 0 for a minute is RedisSentinelMasterDown; quorum 0 for 5 minutes is RedisSentinelNoQuorum.")
    b.ts("Sentinel: healthy peers", "short", [
        (agg("min", master, "redis_sentinel_master_ok_sentinels"), "{{target}} {{master_name}} sentinels ok"),
        (agg("min", master, "redis_sentinel_master_ok_slaves"), "{{target}} {{master_name}} replicas ok"),
        (agg("max", "target", "perfwatch_redis_sentinel_master_addresses"), "{{target}} primary addresses named"),
    ], w=12, minv=0,
         description="Sentinels (itself included) and replicas no sentinel sees down, as the least hopeful sentinel says; more than one primary address means the sentinels disagree (a failover under way, or a split).")
    b.ts("Cluster slots", "short", [
        (agg("min", "target", "redis_cluster_slots_ok"), "{{target}} ok"),
        (agg("max", "target", "redis_cluster_slots_pfail"), "{{target}} pfail"),
        (agg("max", "target", "redis_cluster_slots_fail"), "{{target}} fail"),
    ], w=12, minv=0,
         description="CLUSTER INFO: slots served by a healthy primary (16384 in a healthy cluster), suspected (pfail) and failed. cluster_state:fail for a minute is RedisClusterDown.")
    nodes_up = f"sum by (target, role) ({agg('max', 'target, node, role', 'perfwatch_redis_cluster_node_up')})"
    b.ts("Cluster nodes up by role", "short", [(nodes_up, "{{target}} {{role}}")], w=12, minv=0,
         description="Cluster nodes that answered perfwatch's last poll, by their own role (master/slave): a failover moves one from slave to master.")
    return b


# ---------------------------------------------------------------- database
def database():
    b = Board("perfwatch-database", "perfwatch / Database", "PostgreSQL, MySQL/MariaDB and PgBouncer, one row group each: connections and sessions, index usage, unused indexes, missing-index candidates, table growth.", ["postgres", "mysql", "pgbouncer"], "postgres|mysql|pgbouncer")
    b.row("Saturation")
    b.ts("Saturation", "percentunit", [(agg("max", "source, target", "perfwatch_pool_saturation_ratio", DB_SOURCES), "{{source}} {{target}}")], w=24,
         thresholds=SAT, minv=0, description="Connections in use / capacity of every database server and PgBouncer pool. 0.8 = act before clients are refused or queue.")
    postgres_rows(b)
    mysql_rows(b)
    b.row("PgBouncer")
    waiting = f"max by (target, database) ({agg('sum', 'job, instance, target, database', 'pgbouncer_pools_client_waiting_connections')})"
    b.ts("PgBouncer clients waiting", "short", [(waiting, "{{target}} {{database}}")])
    b.ts("PgBouncer longest wait", "s", [(agg("max", "target, database", "pgbouncer_pools_client_maxwait_seconds"), "{{target}} {{database}}")])
    return b


def postgres_rows(b):
    """The PostgreSQL part of the database dashboard."""
    by_db = "target, datname"
    pg_ix = "target, datname, schemaname, relname, indexrelname"
    pg_t = "target, datname, schemaname, relname"
    db_legend = "{{target}} {{datname}}"
    table_legend = "{{target}} {{datname}} {{schemaname}}.{{relname}}"
    in_range = lambda by, m: f"max by ({by}) (increase({s(m)}[$__range]))"
    changed = lambda m: f"max by ({pg_t}) (delta({s(m)}[$__range]))"

    b.row("PostgreSQL: connections and sessions")
    connections = per_target("max", ("perfwatch_postgres_connections_used", "used"),
                             ("perfwatch_postgres_connections_available", "available"), ("pg_settings_max_connections", "max_connections"))
    b.ts("PostgreSQL connections vs max", "short", connections, w=8, description="Client sessions (perfwatch's own excluded) vs max_connections and the slots left for ordinary roles.")
    b.ts("PostgreSQL sessions by state", "short", [(agg("max", "target, datname, state", "perfwatch_postgres_sessions"), "{{target}} {{datname}} {{state}}")],
         w=8, description="postgres_exporter's pg_stat_activity_count, renamed perfwatch_postgres_sessions.")
    b.ts("PostgreSQL oldest transaction / query", "s", [
        (agg("max", by_db, "pg_stat_activity_max_tx_duration"), "{{target}} {{datname}} transaction"),
        (agg("max", by_db, "perfwatch_postgres_oldest_query_seconds"), "{{target}} {{datname}} query"),
    ], w=8, thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 300}],
        description="Alerts PostgresLongRunningQuery (a query above 5 minutes) and, with idle-in-transaction sessions, PostgresIdleInTransaction.")
    idle = f"sum by ({by_db}) ({agg('max', by_db + ', state', 'perfwatch_postgres_sessions', IDLE_IN_TX)})"
    b.ts("PostgreSQL sessions idle in transaction", "short", [(idle, db_legend)], w=12,
         description="Sessions between statements of an open transaction: harmless for milliseconds, a leak when one stays while the oldest transaction ages (PostgresIdleInTransaction).")
    b.ts("PostgreSQL sessions waiting for a lock", "short", [(agg("max", by_db, "perfwatch_postgres_sessions_waiting_on_lock"), db_legend)], w=12,
         description="wait_event_type = Lock. A queue that lasts across polls sits behind a long transaction or DDL (PostgresLockWaits).")

    b.row("PostgreSQL: transactions, buffer cache, size, replication")
    # Real databases only: not the templates, not the shared-catalog row.
    real = 'datname!~"template0|template1|"'
    rate_db = lambda m: agg_rate("max", by_db, m, real)
    b.ts("PostgreSQL transactions/s", "ops", [
        (rate_db("pg_stat_database_xact_commit"), "{{target}} {{datname}} commits"),
        (rate_db("pg_stat_database_xact_rollback"), "{{target}} {{datname}} rollbacks"),
    ], w=6, description="pg_stat_database (postgres_exporter's names). A rise in rollbacks next to steady commits is an application error path.")
    hits, reads = rate_db("pg_stat_database_blks_hit"), rate_db("pg_stat_database_blks_read")
    b.ts("PostgreSQL buffer-cache hit ratio", "percentunit", [(f"{hits} / ({hits} + {reads})", db_legend)], w=6,
         thresholds=[{"color": "red", "value": None}, {"color": "orange", "value": 0.9}, {"color": "green", "value": 0.99}],
         description="Blocks found in shared_buffers / all blocks read. An OLTP database below ~0.99 reads from disk (or the OS cache) more than its working set should need: shared_buffers or memory.")
    b.ts("PostgreSQL database size", "bytes", [(agg("max", by_db, "pg_database_size_bytes", real), db_legend)], w=6,
         description="pg_database_size(). Growth with the trip count is the signal for the pre-aggregated summary tables of the seed guide.")
    b.ts("PostgreSQL replication lag", "s", [
        (agg("max", "target", "pg_replication_lag"), "{{target}} lag"),
        (agg("max", "target", "pg_replication_is_replica"), "{{target}} is replica"),
    ], w=6, description="On a standby: seconds since the last replayed commit (it grows on a standby of an idle primary too). 0 on a primary.")

    b.row("PostgreSQL: replication")
    standby = "target, application_name"
    b.ts("PostgreSQL standby lag", "s", [(agg("max", standby + ", lag", "perfwatch_postgres_replica_lag_seconds"), "{{target}} → {{application_name}} {{lag}}")],
         w=8, thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 60}],
         description="On a primary, per standby: write, flush and replay lag as the server measures them (pg_stat_replication). Replay lag is how old the data read on the standby can be (PostgresReplicationLagHigh above 60 s for 5 minutes).")
    b.ts("PostgreSQL WAL behind and kept", "bytes", [
        (agg("max", standby, "pg_stat_replication_pg_wal_lsn_diff"), "{{target}} → {{application_name}} not replayed"),
        (agg("max", "target, slot_name", "pg_replication_slots_pg_wal_lsn_diff"), "{{target}} slot {{slot_name}} keeps"),
    ], w=8, description="WAL a standby has received but not replayed, and WAL each replication slot keeps on the primary. A slot nobody reads keeps WAL until the disk fills (PostgresReplicationSlotInactive).")
    b.ts("PostgreSQL replication state", "short", [
        (agg("max", "target, state", "perfwatch_postgres_replicas"), "{{target}} standbys {{state}}"),
        (agg("min", "target, slot_name", "pg_replication_slots_active"), "{{target}} slot {{slot_name}} active"),
        (agg("min", "target", "perfwatch_postgres_wal_receiver_up"), "{{target}} receiving WAL"),
    ], w=8, description="Standbys connected to each primary by state, whether each slot is in use, and on a standby whether its WAL receiver streams (0: broken replication, PostgresReplicaNotStreaming).")

    b.row("PostgreSQL: indexes")
    b.table(
        "PostgreSQL index usage",
        "short",
        [
            ("scans in range", in_range(pg_ix, "perfwatch_postgres_index_scans_total")),
            ("scans since reset", agg("max", pg_ix, "perfwatch_postgres_index_scans_total")),
            ("entries read in range", in_range(pg_ix, "perfwatch_postgres_index_tuples_read_total")),
            ("rows fetched in range", in_range(pg_ix, "perfwatch_postgres_index_tuples_fetched_total")),
            ("size", agg("max", pg_ix, "perfwatch_postgres_index_size_bytes")),
        ],
        w=24,
        h=10,
        description="Index scans in the dashboard's time range and since the statistics reset, index entries they returned and table rows they fetched, with size. indexrelname=other sums the indexes beyond max_indexes.",
        overrides=[col_unit("size", "bytes")],
    )
    b.table("PostgreSQL unused indexes per database", "short", [
        ("unused indexes", agg("max", by_db, "perfwatch_postgres_unused_indexes")),
        ("wasted", agg("max", by_db, "perfwatch_postgres_unused_index_bytes")),
        ("statistics age", agg("max", by_db, "perfwatch_postgres_stats_reset_age_seconds")),
    ], w=10, h=10, overrides=[col_unit("wasted", "bytes"), col_unit("statistics age", "s")],
        description="Alert UnusedIndexes (info) once the statistics cover 7 days. Index usage is only meaningful over a long enough statistics age (a week covers weekly jobs).")
    b.table("PostgreSQL unused indexes", "bytes", [("wasted", value_if(pg_ix, "perfwatch_postgres_index_size_bytes", "perfwatch_postgres_index_unused"))],
            nonzero_col="wasted", w=14, h=10,
            description="No scan since the statistics reset; primary keys, unique and constraint-backing indexes excluded. Value = wasted bytes (size x perfwatch_postgres_index_unused; used indexes are filtered out).")

    b.row("PostgreSQL: tables")
    candidate = "perfwatch_postgres_missing_index_candidate"
    b.table("PostgreSQL missing-index candidates", "short", [
        ("rows read by seq scans", value_if(pg_t, "pg_stat_user_tables_seq_tup_read", candidate)),
        ("live rows", value_if(pg_t, "pg_stat_user_tables_n_live_tup", candidate)),
    ], nonzero_col="rows read by seq scans", w=14, h=9,
        description="Big tables read mostly by sequential scans (min_table_rows, min_seq_scans, seq_ratio). Alert MissingIndexCandidates (info): one per database.")
    b.stat("PostgreSQL missing-index candidates per database", "short", [(agg("max", by_db, "perfwatch_postgres_missing_index_candidates"), db_legend)],
           w=10, h=9, thresholds=ORANGE_FROM_ONE, options={**default_options("stat"), "orientation": "horizontal"})
    b.table("PostgreSQL scans in range", "short", [
        ("sequential scans", changed("pg_stat_user_tables_seq_scan")),
        ("rows read by them", changed("pg_stat_user_tables_seq_tup_read")),
        ("index scans", changed("pg_stat_user_tables_idx_scan")),
    ], w=14, h=9, description="Per table over the dashboard's time range: sequential scans, the rows they read, and index scans (all indexes of the table).")
    b.ts("PostgreSQL dead rows (top 10)", "short", [(f"topk(10, {agg('max', pg_t, 'pg_stat_user_tables_n_dead_tup')})", table_legend)], w=10, h=9,
         description="Rows deleted or updated and not yet vacuumed: they grow behind long transactions and idle-in-transaction sessions.")
    b.ts("PostgreSQL table size (top 10)", "bytes", [(f"topk(10, {agg('max', pg_t, 'perfwatch_postgres_table_size_bytes')})", table_legend)], w=8)
    b.ts("PostgreSQL table rows (top 10)", "short", [(f"topk(10, {agg('max', pg_t, 'pg_stat_user_tables_n_live_tup')})", table_legend)], w=8)
    b.table("PostgreSQL growth in range", "bytes", [("growth", f"topk(20, {changed('perfwatch_postgres_table_size_bytes')})")], w=8,
            description="Size change over the dashboard's time range (table + indexes + TOAST).")


def mysql_rows(b):
    """The MySQL/MariaDB part of the database dashboard."""
    my_ix = "target, schema, table, index"
    my_t = "target, schema, table"
    my_size = lambda inner: f"sum by ({my_t}) (max by ({my_t}, component) ({inner}))"

    b.row("MySQL/MariaDB: connections and buffer pool")
    threads = per_target("max", ("mysql_global_status_threads_connected", "connected"),
                         ("mysql_global_status_threads_running", "running"), ("mysql_global_variables_max_connections", "max_connections"))
    b.ts("MySQL connections vs max", "short", threads, w=8)
    b.ts("MySQL connection errors", "ops", [
        (agg_rate("max", "target, error", "mysql_global_status_connection_errors_total"), "{{target}} {{error}}"),
        (agg_rate("max", "target", "mysql_global_status_aborted_connects_total"), "{{target}} aborted connects"),
    ], w=8, description="Connection_errors_* by kind (max_connections = refused because the server was full: alert MySQLConnectionErrors) and failed connection attempts (Aborted_connects: bad passwords, handshake timeouts).")
    b.ts("MySQL InnoDB buffer pool hit ratio / full-scan reads", "percentunit", [
        (agg("min", "target", "perfwatch_mysql_buffer_pool_hit_ratio", W5M), "{{target}} buffer pool hit (5m)"),
        (agg("max", "target", "perfwatch_mysql_full_scan_read_ratio"), "{{target}} full-scan read share"),
    ], w=8, minv=0, maxv=1, description="Below 0.95 under load: alert MySQLBufferPoolHitRatioLow.")

    b.row("MySQL/MariaDB: replication")
    source = "target, connection_name, channel_name"
    b.ts("MySQL replica lag", "s", [(agg("max", source, "mysql_slave_status_seconds_behind_master"), "{{target}} {{connection_name}}{{channel_name}}")],
         w=12, thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 60}],
         description="Seconds_Behind_Master per source connection of each replica (absent while its SQL thread is stopped). Above 60 s for 5 minutes: MySQLReplicationLagHigh.")
    b.ts("MySQL replication threads", "short", [
        (agg("min", source, "mysql_slave_status_slave_io_running"), "{{target}} {{connection_name}}{{channel_name}} I/O"),
        (agg("min", source, "mysql_slave_status_slave_sql_running"), "{{target}} {{connection_name}}{{channel_name}} SQL"),
    ], w=12, minv=0, maxv=1, description="1 = running. 0 for 2 minutes: replication is broken (MySQLReplicationNotRunning); Last_SQL_Error / Last_IO_Error in SHOW ALL SLAVES STATUS say why.")

    b.row("MySQL/MariaDB: indexes")
    io_by = "target, schema, name, index"
    io_waits = "mysql_perf_schema_index_io_waits_total"
    io_in_range = f"sum by ({io_by}) (max by ({io_by}, operation) (increase({s(io_waits)}[$__range])))"
    b.table("MySQL index I/O", "short", [
        ("operations in range", io_in_range),
        ("operations since start", f"sum by ({io_by}) ({agg('max', io_by + ', operation', io_waits)})"),
    ], h=10, description="performance_schema index I/O (fetch+insert+update+delete); index=NONE = rows read without an index.")
    b.table("MySQL unused indexes", "bytes", [("wasted", value_if(my_ix, "perfwatch_mysql_index_size_bytes", "perfwatch_mysql_index_unused"))],
            nonzero_col="wasted", h=10,
            description="No reads since the statistics began; PRIMARY, UNIQUE and foreign-key indexes never judged. Value = wasted bytes.")
    b.table("MySQL unused indexes per server", "short", [
        ("unused indexes", agg("max", "target", "perfwatch_mysql_unused_indexes")),
        ("wasted", agg("max", "target", "perfwatch_mysql_unused_index_bytes")),
        ("statistics age", agg("max", "target", "perfwatch_mysql_stats_age_seconds")),
    ], overrides=[col_unit("wasted", "bytes"), col_unit("statistics age", "s")],
        description="Alert UnusedIndexes (info) once the statistics cover 7 days.")
    b.table("MySQL redundant indexes", "short", [(None, agg("max", "target, schema, table, index, covered_by", "perfwatch_mysql_index_redundant"))],
            description="Indexes whose columns are a leading prefix of another index (covered_by).")

    b.row("MySQL/MariaDB: tables")
    b.table("MySQL missing-index candidates", "percentunit",
            [("full-scan share", value_if(my_t, "perfwatch_mysql_table_full_scan_ratio", "perfwatch_mysql_missing_index_candidate"))],
            nonzero_col="full-scan share", h=9,
            description="Tables with at least missing_index_min_rows rows, mostly read by full scans. Value = share of rows read without an index. Alert MissingIndexCandidates (info): one per server.")
    b.ts("MySQL table size (top 10)", "bytes", [(f"topk(10, {my_size(s('mysql_info_schema_table_size', DATA_INDEX))})", "{{target}} {{schema}}.{{table}}")], h=9)
    my_delta = f"delta({s('mysql_info_schema_table_size', DATA_INDEX)}[$__range])"
    b.table("MySQL growth in range", "bytes", [("growth", f"topk(20, {my_size(my_delta)})")],
            description="Size change over the dashboard's time range (data + index).")


# ---------------------------------------------------------------- slow queries
def slow_queries():
    # The target variable lists every kind that fills perfwatch_slow_query_*:
    # [[slowlog]], and [[mysql]] / [[postgres]] with their statements source.
    b = Board("perfwatch-slow-queries", "perfwatch / Slow queries", "Query classes (pt-query-digest fingerprints) from slow logs, pg_stat_statements and performance_schema: where the time goes, duration heatmap and quantiles, rows examined vs sent, full scans.", ["slow-queries"], "slowlog|mysql|postgres")
    by = "target, db, fingerprint"
    info = agg("max", f"{by}, query", "perfwatch_slow_query_fingerprint_info")
    in_range = lambda m: f"sum by ({by}) (increase({s(m)}[$__range]))"
    b.row("Where the time goes")
    top_time = (f"topk(10, {agg_rate('sum', by, SLOW + '_sum', NOT_OTHER_FP)})"
                f" * on ({by}) group_left (query) {info}"
                f" or {agg_rate('sum', by, SLOW + '_sum', OTHER_FP)}")
    b.ts("Top fingerprints by time spent", "s", [(top_time, "{{db}} {{fingerprint}} {{query}}")], w=24, h=9,
         description="Seconds of query time per second (the load each query class puts on the server), top 10 by fingerprint: what to optimise first. fingerprint=other sums the classes outside top_queries.")
    examined = "perfwatch_slow_query_rows_examined_total"
    b.table(
        "Top fingerprints in range",
        "s",
        [
            ("total time", f"topk(20, {in_range(SLOW + '_sum')})"),
            ("queries", in_range(SLOW + "_count")),
            ("mean", f"{in_range(SLOW + '_sum')} / {in_range(SLOW + '_count')}"),
            ("rows examined", in_range(examined)),
            ("examined / sent", f"{in_range(examined)} / {in_range('perfwatch_slow_query_rows_sent_total')}"),
            ("lock time", in_range("perfwatch_slow_query_lock_seconds_total")),
        ],
        w=14,
        h=10,
        description="Per query class over the dashboard's time range. Rows examined per row sent far above 1 = the server reads many rows to return few: a missing index.",
        overrides=[col_unit("queries", "short"), col_unit("rows examined", "short"), col_unit("examined / sent", "short")],
    )
    b.table("Fingerprint text", "short", [(None, info)], w=10, h=10,
            description="The normalized query of each class (literals masked, truncated), from perfwatch_slow_query_fingerprint_info.")
    b.row("Durations")
    b.heatmap("Duration heatmap", f"sum by (le) (increase({s(SLOW + '_bucket')}[{RATE}]))", h=9)
    b.ts("Duration p50 / p95 / p99", "s", [
        (f"histogram_quantile({q}, {agg_rate('sum', 'le, target', SLOW + '_bucket')})", f"{{{{target}}}} p{int(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    ], h=9)
    b.ts("Slow queries per second", "ops", [
        (agg_rate("sum", "target, db", "perfwatch_slow_queries_total"), "{{target}} {{db}}"),
        (agg_rate("sum", "target, db", "perfwatch_slow_query_full_scans_total"), "{{target}} {{db}} full scans"),
        (agg_rate("max", "target", "mysql_global_status_slow_queries_total"), "{{target}} (server Slow_queries)"),
    ], description="Slow-log events (scaled by the server's sampling rate), those the server marked as full table scans, and MySQL's own Slow_queries counter.")
    b.ts("Rows examined by fingerprint (top 10)", "short", [(f"topk(10, {agg_rate('sum', by, examined)})", "{{target}} {{db}} {{fingerprint}}")],
         description="Rows the server read per second for each query class: far more rows examined than sent means a missing index.")
    b.row("Query analytics")
    advice = "perfwatch_slow_query_index_advice_info"
    advised = f"group by ({by}) ({s(advice)})"
    b.table("Index advice", "short", [
        ("table rows", f"max by ({by}, table) ({s('perfwatch_slow_query_index_advice_table_rows')}) * on ({by}) group_left (columns, state) max by ({by}, columns, state) ({s(advice)})"),
    ], w=12, h=8,
        description="Query classes whose plan reads a large table whole on columns they filter or join by (state suggested), or where an index on them exists but is not used (index_not_used), or whose later plan no longer reads it whole (applied). /api/slow-queries has the CREATE INDEX statement, the evidence and the p95 before/after; see the runbook's \"Index advice\" before acting.",
        overrides=[col_unit("table rows", "short")])
    b.ts("p95 of the advised classes", "s", [
        (f"histogram_quantile(0.95, {agg_rate('sum', 'le, ' + by, SLOW + '_bucket')}) and on ({by}) {advised}", "{{target}} {{db}} {{fingerprint}}"),
    ], w=12, h=8,
        description="The p95 execution time of each class with an index advice, over time: once the index exists (state applied), the line should drop.")
    b.ts("Plan table accesses by kind", "short", [
        (f"sum by (target, scan) ({s('perfwatch_slow_query_plan_scans')})", "{{target}} {{scan}}"),
    ], w=12, h=8,
        description="Table accesses in the latest plans of the planned classes: seq (read whole), index, index_only, bitmap, other. Sequential reads of large tables are what the index advice is about.")
    b.ts("Plans made", "ops", [
        (agg_rate("sum", "target, outcome", "perfwatch_slow_query_explains_total", window="5m"), "{{target}} {{outcome}}"),
    ], w=12, h=8,
        description="EXPLAINs of the classes' examples per second, by outcome (ok, error): bounded by each database target's explain.max_per_poll and explain.interval.")
    return b


# ---------------------------------------------------------------- app
def app():
    b = Board("perfwatch-app", "perfwatch / App", "Health checks, endpoint latency (cold first request vs repeat), the app's connection pool and cache, worker processes.", ["app"], "http|process")
    b.row("Health")
    b.states("Health checks", [(agg("min", "target, check", "perfwatch_app_health_check_up"), "{{target}} {{check}}")], h=8,
             description="Per check in the health JSON; min across pods (one failing pod shows down).",
             mappings=UPDOWN, thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}])
    b.stat("Pods healthy", "percentunit", [(share_up("perfwatch_app_up", "target"), "{{target}}")], w=6, thresholds=FRACTION_UP, minv=0, maxv=1)
    b.ts("Health response time", "s", [(agg("max", "target", "perfwatch_app_response_seconds"), "{{target}}")], w=6,
         description="Last response time of each endpoint (slowest pod).")
    b.row("Endpoint latency")
    lat = "perfwatch_app_request_duration_seconds"
    by_attempt = "target, attempt"
    b.ts("p95 first vs repeat", "s", [(f"histogram_quantile(0.95, {agg_rate('sum', by_attempt + ', le', lat + '_bucket', window=LAT_WIN)})", "{{target}} {{attempt}}")],
         description="attempt=first: each poll's first request (cold); repeat: right after it (cached). Latency probes run every few minutes, hence a 30m window.",
         thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.5}, {"color": "red", "value": 10}])
    mean = f"{agg_rate('sum', by_attempt, lat + '_sum', window=LAT_WIN)} / {agg_rate('sum', by_attempt, lat + '_count', window=LAT_WIN)}"
    b.ts("Mean first vs repeat", "s", [(mean, "{{target}} {{attempt}}")])
    requests = f"sum by (target, attempt, result) (increase({s('perfwatch_app_requests_total')}[{LAT_WIN}]))"
    b.ts("Probe requests by result", "short", [(requests, "{{target}} {{attempt}} {{result}}")])
    b.ts("App cache hit ratio by key prefix (5m)", "percentunit", [(hit_ratio("5m", "target, key_prefix", 'key_prefix!=""'), "{{target}} {{key_prefix}}")],
         thresholds=HIT, minv=0, maxv=1, description="From the app's own cache_hits_total / cache_misses_total, weighted across pods.")
    b.row("Connection pool")
    pool = per_target("sum", ("perfwatch_app_pool_checked_out", "checked out"), ("perfwatch_app_pool_checked_in", "checked in"),
                      ("perfwatch_app_pool_size", "pool size"), ("perfwatch_app_pool_overflow", "overflow"))
    b.ts("Pool (all pods)", "short", pool, description="Summed over pods: the connections the app fleet holds on the database.")
    b.ts("Pool saturation (worst pod)", "percentunit", [(agg("max", "target", "perfwatch_pool_saturation_ratio", APP_SOURCE), "{{target}}")], w=6,
         thresholds=SAT, minv=0, description="checked_out / (pool_size + max_overflow); checked_out / pool_size (capped at 1) when the overflow limit is unknown.")
    b.stat("Pods in overflow", "short", [(agg("sum", "target", "perfwatch_app_pool_overflow_in_use"), "{{target}}")], w=6,
           description="Pods with connections beyond pool_size: pool_size is too small (seed: overflow must stay 0).", thresholds=BAD_IF_ONE)
    b.row("Processes")
    b.ts("Worker processes", "short", [(agg("sum", "target", "perfwatch_process_count"), "{{target}}")], w=6)
    b.ts("Worker CPU", "percentunit", [(agg_rate("sum", "target", "perfwatch_process_cpu_seconds_total"), "{{target}}")], w=6,
         description="CPU seconds per second of the matched processes (1 = one core), summed over pods.")
    b.ts("Worker memory", "bytes", [
        (agg("sum", "target", "perfwatch_process_resident_memory_bytes"), "{{target}} total"),
        (agg("max", "target", "perfwatch_process_max_resident_memory_bytes"), "{{target}} largest worker"),
    ], description="A largest worker whose memory keeps climbing is a leak.")
    return b


def main():
    # tests/dashboards.rs writes to a temp dir and compares with the committed files.
    out = os.environ.get("PERFWATCH_DASHBOARDS_OUT", HERE)
    boards = [overview(), redis(), database(), slow_queries(), app()]
    names = ["overview", "redis", "database", "slow-queries", "app"]
    for b, n in zip(boards, names):
        with open(os.path.join(out, f"perfwatch-{n}.json"), "w") as f:
            json.dump(b.json(), f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
