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


SLOW = "perfwatch_slow_query_duration_seconds"
OOM = 'err="OOM"'
DB_SOURCES = 'source=~"postgres|mysql|pgbouncer"'
W5M = 'window="5m"'
DATA_INDEX = 'component=~"data_length|index_length"'
APP_SOURCE = 'source="app"'
OTHER_FP = 'fingerprint="other"'
NOT_OTHER_FP = 'fingerprint!="other"'


# ---------------------------------------------------------------- overview
def overview():
    b = Board(
        "perfwatch-overview",
        "perfwatch / Overview",
        "Architecture phases and their triggers, cache hit ratio, evictions, pool saturation, slow-query p95 and target health.",
        ["overview"],
        "",
    )
    b.row("Architecture phases")
    b.panel(
        "stat",
        "Recommended phase",
        [(f"max({s('perfwatch_phase_recommended', target=False)})", "recommended")],
        "none",
        w=4,
        h=6,
        description="Position (1-based, as declared in [[phase]]) of the last phase whose rule is met; 0 = the current architecture is enough.",
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
        mappings=[{"type": "value", "options": {"0": {"text": "none", "color": "green", "index": 0}}}],
    )
    b.panel(
        "table",
        "Phases",
        [
            (
                f"max by (phase, description, order) ({s('perfwatch_phase_info', target=False)})"
                f" * on (phase) group_left max by (phase) ({s('perfwatch_phase_active', target=False)})",
                "",
            )
        ],
        "none",
        w=20,
        h=6,
        description="perfwatch_phase_info joined with perfwatch_phase_active (1 = the phase's rule is met on any perfwatch instance).",
        mappings=ACTIVE,
        transformations=merge_table({"Value": "active"}),
        overrides=[
            {"matcher": {"id": "byName", "options": "active"}, "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}}]}
        ],
    )
    b.panel(
        "state-timeline",
        "Phase active",
        [(f"max by (phase) ({s('perfwatch_phase_active', target=False)})", "{{phase}}")],
        "none",
        w=12,
        h=7,
        mappings=ACTIVE,
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
    )
    b.panel(
        "state-timeline",
        "Trigger active",
        [(f"max by (phase, trigger) ({s('perfwatch_phase_trigger_active', target=False)})", "{{phase}} / {{trigger}}")],
        "none",
        w=12,
        h=7,
        mappings=ACTIVE,
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
    )
    b.panel(
        "table",
        "Triggers: value vs threshold",
        [
            (f"max by (phase, trigger) ({s('perfwatch_phase_trigger_value', target=False)})", ""),
            (f"max by (phase, trigger, direction) ({s('perfwatch_phase_trigger_threshold', target=False)})", ""),
            (f"max by (phase, trigger) ({s('perfwatch_phase_trigger_active', target=False)})", ""),
            (f"max by (phase, trigger) ({s('perfwatch_phase_trigger_active_seconds', target=False)})", ""),
            (f"max by (phase, trigger) ({s('perfwatch_phase_trigger_no_data', target=False)})", ""),
        ],
        "short",
        w=24,
        h=8,
        description="A trigger fires when its value is above/below (direction) its threshold for its `for` duration. no data = the selector matched nothing (target down or metric missing).",
        transformations=merge_table(
            {"Value #A": "value", "Value #B": "threshold", "Value #C": "active", "Value #D": "active for", "Value #E": "no data"}
        ),
        overrides=[
            col_unit("active for", "s"),
            {"matcher": {"id": "byName", "options": "active"}, "properties": [{"id": "mappings", "value": ACTIVE}, {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
        ],
    )
    b.panel(
        "timeseries",
        "Trigger values",
        [(f"max by (phase, trigger) ({s('perfwatch_phase_trigger_value', target=False)})", "{{phase}} / {{trigger}}")],
        "short",
        w=24,
        h=8,
        description="Each trigger's current value; compare with the threshold column above (units differ per trigger).",
    )
    b.row("Cache")
    b.panel(
        "timeseries",
        "Cache hit ratio (5m)",
        [(hit_ratio("5m", "target, key_prefix"), "{{target}} {{key_prefix}}")],
        "percentunit",
        w=12,
        description="Hits / lookups over 5 minutes, Redis (per target) and the app's own counters (per key_prefix), weighted by lookups across pods. Below 0.70: seed phase-2 trigger; 0.80 is the target.",
        thresholds=HIT,
        minv=0,
        maxv=1,
    )
    b.panel(
        "timeseries",
        "Redis evictions",
        [(f"max by (target) (rate({s('redis_evicted_keys_total')}[{RATE}]))", "{{target}}")],
        "ops",
        w=12,
        description="Keys evicted per second: Redis hit maxmemory and is dropping keys.",
    )
    b.row("Pools and slow queries")
    b.panel(
        "timeseries",
        "Pool saturation by source",
        [(f"max by (source, target) ({s('perfwatch_pool_saturation_ratio')})", "{{source}} {{target}}")],
        "percentunit",
        w=12,
        description="Connections in use / capacity: app pool (worst pod), PgBouncer (fullest pool), PostgreSQL / MySQL (server max_connections). 0.8 = saturated.",
        thresholds=SAT,
        minv=0,
    )
    b.panel(
        "timeseries",
        "Slow-query p95",
        [
            (
                f"histogram_quantile(0.95, sum by (le, target) (rate({s(SLOW + '_bucket')}[{RATE}])))",
                "{{target}}",
            )
        ],
        "s",
        w=12,
        description="95th percentile duration of the queries in the slow logs (slow-log collector).",
    )
    b.row("Health")
    b.panel(
        "stat",
        "Targets up",
        [(f"sum by (collector, target) ({s('perfwatch_target_up')}) / count by (collector, target) ({s('perfwatch_target_up')})", "{{collector}} {{target}}")],
        "percentunit",
        w=12,
        h=6,
        description="Share of perfwatch instances whose last poll of the target succeeded (per-pod sidecars: share of pods).",
        thresholds=FRACTION_UP,
        minv=0,
        maxv=1,
    )
    b.panel(
        "stat",
        "App up",
        [(f"sum by (target) ({s('perfwatch_app_up')}) / count by (target) ({s('perfwatch_app_up')})", "{{target}}")],
        "percentunit",
        w=12,
        h=6,
        description="Share of pods whose endpoint answered with an expected status.",
        thresholds=FRACTION_UP,
        minv=0,
        maxv=1,
    )
    b.panel(
        "timeseries",
        "Poll errors",
        [(f"sum by (collector, target, reason) (rate({s('perfwatch_poll_errors_total')}[{RATE}]))", "{{collector}} {{target}} {{reason}}")],
        "ops",
        w=12,
    )
    b.panel(
        "stat",
        "Config reload ok",
        [(f"min({s('perfwatch_config_last_reload_successful', target=False)})", "reload ok")],
        "none",
        w=6,
        h=8,
        mappings=[{"type": "value", "options": {"0": {"text": "FAILED", "color": "red", "index": 0}, "1": {"text": "ok", "color": "green", "index": 1}}}],
        thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
    )
    b.panel(
        "stat",
        "Stale targets",
        [(f"sum({s('perfwatch_target_stale')})", "stale")],
        "short",
        w=6,
        h=8,
        description="Targets not polled successfully for 3 intervals: their series are withheld.",
        thresholds=BAD_IF_ONE,
    )
    return b


# ---------------------------------------------------------------- redis
def redis():
    b = Board(
        "perfwatch-redis",
        "perfwatch / Redis cache",
        "Hit ratio by window, keys and memory per prefix, keys without TTL, evictions, memory vs maxmemory, commands and the SLOWLOG.",
        ["redis", "cache"],
        "redis",
    )
    R = 'key_prefix=""'
    b.row("Hit ratio")
    for i, w in enumerate(["1m", "5m", "15m", "total"]):
        b.panel(
            "stat",
            f"Hit ratio {w}",
            [(hit_ratio(w, "target", R), "{{target}}")],
            "percentunit",
            w=6,
            h=5,
            thresholds=HIT,
            minv=0,
            maxv=1,
            description="perfwatch_cache_hit_ratio (the sampler's own lookups subtracted). Absent when the window had no lookups.",
        )
    b.panel(
        "timeseries",
        "Hit ratio by window",
        [(hit_ratio('=~"1m|5m|15m"', "target, window", R), "{{target}} {{window}}")],
        "percentunit",
        w=16,
        thresholds=HIT,
        minv=0,
        maxv=1,
        description="Below 0.70 (seed phase-2 trigger) the cache is not carrying the load; 0.80 is the target.",
    )
    b.panel(
        "timeseries",
        "Lookups",
        [
            (f"max by (target) (rate({s('redis_keyspace_hits_total')}[{RATE}]))", "{{target}} hits"),
            (f"max by (target) (rate({s('redis_keyspace_misses_total')}[{RATE}]))", "{{target}} misses"),
        ],
        "ops",
        w=8,
    )
    b.row("Keys per prefix (key sampler)")
    keys = lambda m: f"max by (target, db, prefix) ({s(m)})"
    b.panel(
        "table",
        "Key groups",
        [
            (keys("perfwatch_redis_key_group_keys"), ""),
            (keys("perfwatch_redis_key_group_keys_without_ttl"), ""),
            (keys("perfwatch_redis_key_group_memory_bytes"), ""),
        ],
        "short",
        w=12,
        h=9,
        description="From the last complete SCAN cycle (perfwatch_redis_key_sampler_cycle_complete). Keys without TTL in a cache prefix: the 'cache never expires' bug.",
        transformations=merge_table({"Value #A": "keys", "Value #B": "without TTL", "Value #C": "memory"}),
        overrides=[col_unit("memory", "bytes")],
    )
    b.panel(
        "timeseries",
        "Keys without TTL by prefix",
        [(keys("perfwatch_redis_key_group_keys_without_ttl"), "{{target}} {{db}} {{prefix}}")],
        "short",
        w=12,
        h=9,
    )
    b.panel(
        "timeseries",
        "Keys by prefix",
        [(keys("perfwatch_redis_key_group_keys"), "{{target}} {{db}} {{prefix}}")],
        "short",
        w=8,
    )
    b.panel(
        "timeseries",
        "Memory by prefix",
        [(keys("perfwatch_redis_key_group_memory_bytes"), "{{target}} {{db}} {{prefix}}")],
        "bytes",
        w=8,
        description="Mean MEMORY USAGE of sampled keys x key count.",
    )
    b.panel(
        "timeseries",
        "Keys without TTL by db",
        [(f"max by (target, db) ({s('perfwatch_redis_db_keys_without_ttl')})", "{{target}} {{db}}")],
        "short",
        w=8,
    )
    b.row("Memory and evictions")
    b.panel(
        "timeseries",
        "Memory vs maxmemory",
        [
            (f"max by (target) ({s('redis_memory_used_bytes')})", "{{target}} used"),
            (f"max by (target) ({s('redis_memory_used_rss_bytes')})", "{{target}} rss"),
            (f"max by (target) ({s('redis_memory_max_bytes')})", "{{target}} maxmemory (0 = no limit)"),
        ],
        "bytes",
        w=12,
    )
    b.panel(
        "timeseries",
        "Memory used ratio",
        [(f"max by (target) ({s('perfwatch_redis_memory_used_ratio')})", "{{target}}")],
        "percentunit",
        w=6,
        thresholds=SAT,
        minv=0,
        maxv=1,
        description="used_memory / maxmemory (absent without maxmemory). Above 0.8 evictions are near.",
    )
    b.panel(
        "timeseries",
        "Evictions",
        [(f"max by (target) (rate({s('redis_evicted_keys_total')}[{RATE}]))", "{{target}}")],
        "ops",
        w=6,
    )
    b.panel(
        "timeseries",
        "Clients used ratio",
        [(f"max by (target) ({s('perfwatch_redis_clients_used_ratio')})", "{{target}}")],
        "percentunit",
        w=8,
        thresholds=SAT,
        minv=0,
    )
    b.panel(
        "timeseries",
        "Rejected writes (OOM) and connections",
        [
            (
                # redis_errors_total{err="OOM"} exists only after the first OOM
                # error: fall back to 0 per target so the line is always drawn.
                f"max by (target) (rate({s('redis_errors_total', OOM)}[{RATE}]))"
                f" or 0 * max by (target) ({s('redis_uptime_in_seconds')})",
                "{{target}} OOM errors",
            ),
            (f"max by (target) (rate({s('redis_rejected_connections_total')}[{RATE}]))", "{{target}} rejected connections"),
        ],
        "ops",
        w=8,
    )
    b.panel(
        "timeseries",
        "Expired keys",
        [(f"max by (target) (rate({s('redis_expired_keys_total')}[{RATE}]))", "{{target}}")],
        "ops",
        w=8,
    )
    b.row("Commands and SLOWLOG")
    b.panel(
        "timeseries",
        "Commands by cmd (top 10)",
        [(f"topk(10, max by (target, cmd) (rate({s('redis_commands_total')}[{RATE}])))", "{{target}} {{cmd}}")],
        "ops",
        w=12,
    )
    b.panel(
        "timeseries",
        "Mean command latency by cmd (top 10)",
        [
            (
                f"topk(10, max by (target, cmd) (rate({s('redis_commands_duration_seconds_total')}[{RATE}]))"
                f" / max by (target, cmd) (rate({s('redis_commands_total')}[{RATE}])))",
                "{{target}} {{cmd}}",
            )
        ],
        "s",
        w=12,
    )
    b.panel(
        "heatmap",
        "SLOWLOG durations",
        [(f"sum by (le) (max by (target, cmd, le) (increase({s('perfwatch_redis_slowlog_duration_seconds_bucket')}[{RATE}])))", "{{le}}")],
        "s",
        w=12,
        description="New SLOWLOG entries (deduplicated by id) by duration bucket.",
    )
    b.panel(
        "timeseries",
        "SLOWLOG entries by cmd",
        [(f"max by (target, cmd) (rate({s('perfwatch_redis_slowlog_duration_seconds_count')}[{RATE}]))", "{{target}} {{cmd}}")],
        "ops",
        w=12,
    )
    return b


# ---------------------------------------------------------------- database
def database():
    b = Board(
        "perfwatch-database",
        "perfwatch / Database",
        "PostgreSQL, MySQL/MariaDB and PgBouncer: connections vs max, saturation, index usage, unused indexes, missing-index candidates, table growth.",
        ["postgres", "mysql", "pgbouncer"],
        "postgres|mysql|pgbouncer",
    )
    b.row("Connections")
    b.panel(
        "timeseries",
        "PostgreSQL connections vs max",
        [
            (f"max by (target) ({s('perfwatch_postgres_connections_used')})", "{{target}} used"),
            (f"max by (target) ({s('perfwatch_postgres_connections_available')})", "{{target}} available"),
            (f"max by (target) ({s('pg_settings_max_connections')})", "{{target}} max_connections"),
        ],
        "short",
        w=8,
        description="Client sessions (perfwatch's own excluded) vs max_connections and the slots left for ordinary roles.",
    )
    b.panel(
        "timeseries",
        "PostgreSQL sessions by state",
        [(f"max by (target, datname, state) ({s('perfwatch_postgres_sessions')})", "{{target}} {{datname}} {{state}}")],
        "short",
        w=8,
        description="postgres_exporter's pg_stat_activity_count, renamed perfwatch_postgres_sessions.",
    )
    b.panel(
        "timeseries",
        "MySQL connections vs max",
        [
            (f"max by (target) ({s('mysql_global_status_threads_connected')})", "{{target}} connected"),
            (f"max by (target) ({s('mysql_global_status_threads_running')})", "{{target}} running"),
            (f"max by (target) ({s('mysql_global_variables_max_connections')})", "{{target}} max_connections"),
        ],
        "short",
        w=8,
    )
    b.panel(
        "timeseries",
        "Saturation",
        [(f"max by (source, target) ({s('perfwatch_pool_saturation_ratio', DB_SOURCES)})", "{{source}} {{target}}")],
        "percentunit",
        w=8,
        thresholds=SAT,
        minv=0,
        description="Connections in use / capacity. 0.8 = act before clients are refused or queue.",
    )
    b.panel(
        "timeseries",
        "PgBouncer clients waiting",
        [
            (
                f"max by (target, database) (sum by (job, instance, target, database) ({s('pgbouncer_pools_client_waiting_connections')}))",
                "{{target}} {{database}}",
            )
        ],
        "short",
        w=8,
    )
    b.panel(
        "timeseries",
        "PgBouncer longest wait",
        [(f"max by (target, database) ({s('pgbouncer_pools_client_maxwait_seconds')})", "{{target}} {{database}}")],
        "s",
        w=8,
    )
    b.panel(
        "timeseries",
        "Oldest transaction / query",
        [
            (f"max by (target, datname) ({s('pg_stat_activity_max_tx_duration')})", "{{target}} {{datname}} transaction"),
            (f"max by (target, datname) ({s('perfwatch_postgres_oldest_query_seconds')})", "{{target}} {{datname}} query"),
        ],
        "s",
        w=12,
    )
    b.panel(
        "timeseries",
        "MySQL InnoDB buffer pool hit ratio / full-scan reads",
        [
            (f"min by (target) ({s('perfwatch_mysql_buffer_pool_hit_ratio', W5M)})", "{{target}} buffer pool hit (5m)"),
            (f"max by (target) ({s('perfwatch_mysql_full_scan_read_ratio')})", "{{target}} full-scan read share"),
        ],
        "percentunit",
        w=12,
        minv=0,
        maxv=1,
    )
    b.row("Index usage")
    pg_ix = "target, datname, schemaname, relname, indexrelname"
    b.panel(
        "table",
        "PostgreSQL index usage",
        [
            (f"max by ({pg_ix}) (increase({s('perfwatch_postgres_index_scans_total')}[$__range]))", ""),
            (f"max by ({pg_ix}) ({s('perfwatch_postgres_index_scans_total')})", ""),
            (f"max by ({pg_ix}) ({s('perfwatch_postgres_index_size_bytes')})", ""),
        ],
        "short",
        w=12,
        h=10,
        description="Index scans in the dashboard's time range and since the statistics reset, with size. indexrelname=other sums the indexes beyond max_indexes.",
        transformations=merge_table({"Value #A": "scans in range", "Value #B": "scans since reset", "Value #C": "size"}),
        overrides=[col_unit("size", "bytes")],
    )
    my_ix = "target, schema, name, index"
    b.panel(
        "table",
        "MySQL index I/O",
        [
            (f"sum by ({my_ix}) (max by ({my_ix}, operation) (increase({s('mysql_perf_schema_index_io_waits_total')}[$__range])))", ""),
            (f"sum by ({my_ix}) (max by ({my_ix}, operation) ({s('mysql_perf_schema_index_io_waits_total')}))", ""),
        ],
        "short",
        w=12,
        h=10,
        description="performance_schema index I/O (fetch+insert+update+delete); index=NONE = rows read without an index.",
        transformations=merge_table({"Value #A": "operations in range", "Value #B": "operations since start"}),
    )
    b.row("Unused indexes")
    b.panel(
        "stat",
        "Unused index bytes",
        [
            (f"sum by (target) (max by (target, datname) ({s('perfwatch_postgres_unused_index_bytes')}))", "{{target}}"),
            (f"max by (target) ({s('perfwatch_mysql_unused_index_bytes')})", "{{target}}"),
        ],
        "bytes",
        w=6,
        h=10,
        description="Space (and write work) spent on indexes nothing reads. Check the statistics age first.",
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
        options={**default_options("stat"), "orientation": "horizontal"},
    )
    b.panel(
        "table",
        "PostgreSQL unused indexes",
        [
            (
                f"max by ({pg_ix}) ({s('perfwatch_postgres_index_size_bytes')}"
                f" * on (job, instance, {pg_ix}) ({s('perfwatch_postgres_index_unused')}))",
                "",
            )
        ],
        "bytes",
        w=9,
        h=10,
        description="No scan since the statistics reset; primary keys, unique and constraint-backing indexes excluded. Value = wasted bytes (size x perfwatch_postgres_index_unused; used indexes are filtered out).",
        transformations=merge_table({"Value": "wasted"}) + [nonzero("wasted")],
    )
    my_ix2 = "target, schema, table, index"
    b.panel(
        "table",
        "MySQL unused indexes",
        [
            (
                f"max by ({my_ix2}) ({s('perfwatch_mysql_index_size_bytes')}"
                f" * on (job, instance, {my_ix2}) ({s('perfwatch_mysql_index_unused')}))",
                "",
            )
        ],
        "bytes",
        w=9,
        h=10,
        description="No reads since the statistics began; PRIMARY, UNIQUE and foreign-key indexes never judged. Value = wasted bytes.",
        transformations=merge_table({"Value": "wasted"}) + [nonzero("wasted")],
    )
    b.panel(
        "table",
        "Statistics age",
        [
            (f"max by (target, datname) ({s('perfwatch_postgres_stats_reset_age_seconds')})", ""),
        ],
        "s",
        w=8,
        h=8,
        description="Index usage is only meaningful over a long enough statistics age (a week covers weekly jobs).",
        transformations=merge_table({"Value": "age"}),
    )
    b.panel(
        "table",
        "MySQL statistics age",
        [(f"max by (target) ({s('perfwatch_mysql_stats_age_seconds')})", "")],
        "s",
        w=4,
        h=8,
        transformations=merge_table({"Value": "age"}),
    )
    b.panel(
        "table",
        "MySQL redundant indexes",
        [(f"max by (target, schema, table, index, covered_by) ({s('perfwatch_mysql_index_redundant')})", "")],
        "short",
        w=12,
        h=8,
        description="Indexes whose columns are a leading prefix of another index (covered_by).",
        transformations=merge_table({}, exclude=("Time", "Value")),
    )
    b.row("Missing-index candidates")
    pg_t = "target, datname, schemaname, relname"
    b.panel(
        "table",
        "PostgreSQL missing-index candidates",
        [
            (
                f"max by ({pg_t}) ({s('pg_stat_user_tables_seq_tup_read')}"
                f" * on (job, instance, {pg_t}) ({s('perfwatch_postgres_missing_index_candidate')}))",
                "",
            ),
            (
                f"max by ({pg_t}) ({s('pg_stat_user_tables_n_live_tup')}"
                f" * on (job, instance, {pg_t}) ({s('perfwatch_postgres_missing_index_candidate')}))",
                "",
            ),
        ],
        "short",
        w=12,
        h=9,
        description="Big tables read mostly by sequential scans (min_table_rows, min_seq_scans, seq_ratio).",
        transformations=merge_table({"Value #A": "rows read by seq scans", "Value #B": "live rows"}) + [nonzero("rows read by seq scans")],
    )
    my_t = "target, schema, table"
    b.panel(
        "table",
        "MySQL missing-index candidates",
        [
            (
                f"max by ({my_t}) ({s('perfwatch_mysql_table_full_scan_ratio')}"
                f" * on (job, instance, {my_t}) ({s('perfwatch_mysql_missing_index_candidate')}))",
                "",
            ),
        ],
        "percentunit",
        w=12,
        h=9,
        description="Tables with at least missing_index_min_rows rows, mostly read by full scans. Value = share of rows read without an index.",
        transformations=merge_table({"Value": "full-scan share"}) + [nonzero("full-scan share")],
    )
    b.row("Table growth")
    b.panel(
        "timeseries",
        "PostgreSQL table size (top 10)",
        [(f"topk(10, max by ({pg_t}) ({s('perfwatch_postgres_table_size_bytes')}))", "{{target}} {{datname}} {{schemaname}}.{{relname}}")],
        "bytes",
        w=12,
    )
    b.panel(
        "timeseries",
        "MySQL table size (top 10)",
        [
            (
                f"topk(10, sum by ({my_t}) (max by ({my_t}, component) ({s('mysql_info_schema_table_size', DATA_INDEX)})))",
                "{{target}} {{schema}}.{{table}}",
            )
        ],
        "bytes",
        w=12,
    )
    b.panel(
        "timeseries",
        "PostgreSQL table rows (top 10)",
        [(f"topk(10, max by ({pg_t}) ({s('pg_stat_user_tables_n_live_tup')}))", "{{target}} {{datname}} {{schemaname}}.{{relname}}")],
        "short",
        w=12,
    )
    b.panel(
        "table",
        "Growth in range",
        [
            (f"topk(20, max by ({pg_t}) (delta({s('perfwatch_postgres_table_size_bytes')}[$__range])))", ""),
            (
                f"topk(20, sum by ({my_t}) (max by ({my_t}, component) (delta({s('mysql_info_schema_table_size', DATA_INDEX)}[$__range]))))",
                "",
            ),
        ],
        "bytes",
        w=12,
        description="Size change over the dashboard's time range (PostgreSQL: table+indexes+TOAST; MySQL: data+index).",
        transformations=merge_table({"Value #A": "postgres growth", "Value #B": "mysql growth"}),
    )
    return b


# ---------------------------------------------------------------- slow queries
def slow_queries():
    b = Board(
        "perfwatch-slow-queries",
        "perfwatch / Slow queries",
        "Slow-log query classes (pt-query-digest fingerprints): where the time goes, duration heatmap and quantiles, rows examined vs sent, full scans.",
        ["slow-queries"],
        "slowlog|mysql",
    )
    by = "target, db, fingerprint"
    info = f"max by ({by}, query) ({s('perfwatch_slow_query_fingerprint_info')})"
    b.row("Where the time goes")
    b.panel(
        "timeseries",
        "Top fingerprints by time spent",
        [
            (
                f"topk(10, sum by ({by}) (rate({s(SLOW + '_sum', NOT_OTHER_FP)}[{RATE}])))"
                f" * on ({by}) group_left (query) {info}"
                f" or sum by ({by}) (rate({s(SLOW + '_sum', OTHER_FP)}[{RATE}]))",
                "{{db}} {{fingerprint}} {{query}}",
            ),
        ],
        "s",
        w=24,
        h=9,
        description="Seconds of query time per second (the load each query class puts on the server), top 10 by fingerprint: what to optimise first. fingerprint=other sums the classes outside top_queries.",
    )
    b.panel(
        "table",
        "Top fingerprints in range",
        [
            (f"topk(20, sum by ({by}) (increase({s(SLOW + '_sum')}[$__range])))", ""),
            (f"sum by ({by}) (increase({s(SLOW + '_count')}[$__range]))", ""),
            (
                f"sum by ({by}) (increase({s(SLOW + '_sum')}[$__range])) / sum by ({by}) (increase({s(SLOW + '_count')}[$__range]))",
                "",
            ),
            (f"sum by ({by}) (increase({s('perfwatch_slow_query_rows_examined_total')}[$__range]))", ""),
            (
                f"sum by ({by}) (increase({s('perfwatch_slow_query_rows_examined_total')}[$__range]))"
                f" / sum by ({by}) (increase({s('perfwatch_slow_query_rows_sent_total')}[$__range]))",
                "",
            ),
            (f"sum by ({by}) (increase({s('perfwatch_slow_query_lock_seconds_total')}[$__range]))", ""),
        ],
        "s",
        w=14,
        h=10,
        description="Per query class over the dashboard's time range. Rows examined per row sent far above 1 = the server reads many rows to return few: a missing index.",
        transformations=merge_table(
            {
                "Value #A": "total time",
                "Value #B": "queries",
                "Value #C": "mean",
                "Value #D": "rows examined",
                "Value #E": "examined / sent",
                "Value #F": "lock time",
            }
        ),
        overrides=[col_unit("queries", "short"), col_unit("rows examined", "short"), col_unit("examined / sent", "short")],
    )
    b.panel(
        "table",
        "Fingerprint text",
        [(info, "")],
        "short",
        w=10,
        h=10,
        description="The normalized query of each class (literals masked, truncated), from perfwatch_slow_query_fingerprint_info.",
        transformations=merge_table({}, exclude=("Time", "Value")),
    )
    b.row("Durations")
    b.panel(
        "heatmap",
        "Duration heatmap",
        [(f"sum by (le) (increase({s(SLOW + '_bucket')}[{RATE}]))", "{{le}}")],
        "s",
        w=12,
        h=9,
    )
    b.panel(
        "timeseries",
        "Duration p50 / p95 / p99",
        [
            (f"histogram_quantile({q}, sum by (le, target) (rate({s(SLOW + '_bucket')}[{RATE}])))", f"{{{{target}}}} p{int(q * 100)}")
            for q in (0.5, 0.95, 0.99)
        ],
        "s",
        w=12,
        h=9,
    )
    b.panel(
        "timeseries",
        "Slow queries per second",
        [
            (f"sum by (target, db) (rate({s('perfwatch_slow_queries_total')}[{RATE}]))", "{{target}} {{db}}"),
            (f"sum by (target, db) (rate({s('perfwatch_slow_query_full_scans_total')}[{RATE}]))", "{{target}} {{db}} full scans"),
            (f"max by (target) (rate({s('mysql_global_status_slow_queries_total')}[{RATE}]))", "{{target}} (server Slow_queries)"),
        ],
        "ops",
        w=12,
        description="Slow-log events (scaled by the server's sampling rate), those the server marked as full table scans, and MySQL's own Slow_queries counter.",
    )
    b.panel(
        "timeseries",
        "Rows examined by fingerprint (top 10)",
        [(f"topk(10, sum by ({by}) (rate({s('perfwatch_slow_query_rows_examined_total')}[{RATE}])))", "{{target}} {{db}} {{fingerprint}}")],
        "short",
        w=12,
        description="Rows the server read per second for each query class: far more rows examined than sent means a missing index.",
    )
    return b


# ---------------------------------------------------------------- app
def app():
    b = Board(
        "perfwatch-app",
        "perfwatch / App",
        "Health checks, endpoint latency (cold first request vs repeat), the app's connection pool and cache, worker processes.",
        ["app"],
        "http|process",
    )
    b.row("Health")
    b.panel(
        "state-timeline",
        "Health checks",
        [(f"min by (target, check) ({s('perfwatch_app_health_check_up')})", "{{target}} {{check}}")],
        "none",
        w=12,
        h=8,
        description="Per check in the health JSON; min across pods (one failing pod shows down).",
        mappings=UPDOWN,
        thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
    )
    b.panel(
        "stat",
        "Pods healthy",
        [(f"sum by (target) ({s('perfwatch_app_up')}) / count by (target) ({s('perfwatch_app_up')})", "{{target}}")],
        "percentunit",
        w=6,
        h=8,
        thresholds=FRACTION_UP,
        minv=0,
        maxv=1,
    )
    b.panel(
        "timeseries",
        "Health response time",
        [(f"max by (target) ({s('perfwatch_app_response_seconds')})", "{{target}}")],
        "s",
        w=6,
        h=8,
        description="Last response time of each endpoint (slowest pod).",
    )
    b.row("Endpoint latency")
    lat = "perfwatch_app_request_duration_seconds"
    b.panel(
        "timeseries",
        "p95 first vs repeat",
        [
            (
                f"histogram_quantile(0.95, sum by (target, attempt, le) (rate({s(lat + '_bucket')}[{LAT_WIN}])))",
                "{{target}} {{attempt}}",
            )
        ],
        "s",
        w=12,
        description="attempt=first: each poll's first request (cold); repeat: right after it (cached). Latency probes run every few minutes, hence a 30m window.",
        thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.5}, {"color": "red", "value": 10}],
    )
    b.panel(
        "timeseries",
        "Mean first vs repeat",
        [
            (
                f"sum by (target, attempt) (rate({s(lat + '_sum')}[{LAT_WIN}])) / sum by (target, attempt) (rate({s(lat + '_count')}[{LAT_WIN}]))",
                "{{target}} {{attempt}}",
            )
        ],
        "s",
        w=12,
    )
    b.panel(
        "timeseries",
        "Probe requests by result",
        [(f"sum by (target, attempt, result) (increase({s('perfwatch_app_requests_total')}[{LAT_WIN}]))", "{{target}} {{attempt}} {{result}}")],
        "short",
        w=12,
    )
    b.panel(
        "timeseries",
        "App cache hit ratio by key prefix (5m)",
        [(hit_ratio("5m", "target, key_prefix", 'key_prefix!=""'), "{{target}} {{key_prefix}}")],
        "percentunit",
        w=12,
        thresholds=HIT,
        minv=0,
        maxv=1,
        description="From the app's own cache_hits_total / cache_misses_total, weighted across pods.",
    )
    b.row("Connection pool")
    b.panel(
        "timeseries",
        "Pool (all pods)",
        [
            (f"sum by (target) ({s('perfwatch_app_pool_checked_out')})", "{{target}} checked out"),
            (f"sum by (target) ({s('perfwatch_app_pool_checked_in')})", "{{target}} checked in"),
            (f"sum by (target) ({s('perfwatch_app_pool_size')})", "{{target}} pool size"),
            (f"sum by (target) ({s('perfwatch_app_pool_overflow')})", "{{target}} overflow"),
        ],
        "short",
        w=12,
        description="Summed over pods: the connections the app fleet holds on the database.",
    )
    b.panel(
        "timeseries",
        "Pool saturation (worst pod)",
        [(f"max by (target) ({s('perfwatch_pool_saturation_ratio', APP_SOURCE)})", "{{target}}")],
        "percentunit",
        w=6,
        thresholds=SAT,
        minv=0,
        description="checked_out / (pool_size + max_overflow); checked_out / pool_size (capped at 1) when the overflow limit is unknown.",
    )
    b.panel(
        "stat",
        "Pods in overflow",
        [(f"sum by (target) ({s('perfwatch_app_pool_overflow_in_use')})", "{{target}}")],
        "short",
        w=6,
        description="Pods with connections beyond pool_size: pool_size is too small (seed: overflow must stay 0).",
        thresholds=BAD_IF_ONE,
    )
    b.row("Processes")
    b.panel(
        "timeseries",
        "Worker processes",
        [(f"sum by (target) ({s('perfwatch_process_count')})", "{{target}}")],
        "short",
        w=6,
    )
    b.panel(
        "timeseries",
        "Worker CPU",
        [(f"sum by (target) (rate({s('perfwatch_process_cpu_seconds_total')}[{RATE}]))", "{{target}}")],
        "percentunit",
        w=6,
        description="CPU seconds per second of the matched processes (1 = one core), summed over pods.",
    )
    b.panel(
        "timeseries",
        "Worker memory",
        [
            (f"sum by (target) ({s('perfwatch_process_resident_memory_bytes')})", "{{target}} total"),
            (f"max by (target) ({s('perfwatch_process_max_resident_memory_bytes')})", "{{target}} largest worker"),
        ],
        "bytes",
        w=12,
        description="A largest worker whose memory keeps climbing is a leak.",
    )
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
