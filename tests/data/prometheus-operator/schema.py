"""JSON schemas of the two prometheus-operator custom resources perfwatch
ships (deploy/kubernetes/*-servicemonitor.yaml, prometheusrule.yaml), for
tests/deploy.rs: kubernetes-validate has no schema for custom resources.

Written here from the field list of prometheus-operator's API reference
(monitoring.coreos.com/v1 ServiceMonitor, Endpoint, RelabelConfig,
PrometheusRule, RuleGroup, Rule), covering every field of those types that
is a scalar, list or map; sub-objects perfwatch does not use (tlsConfig,
authorization, basicAuth, oauth2, bearerTokenSecret) are objects of any
shape. The test makes every listed object strict (unknown fields rejected,
as `kubernetes-validate --strict` does for built-in kinds), so a misspelt
field fails. A newer operator may add fields: add them here.
"""

S=lambda: {"type":"string"}
B=lambda: {"type":"boolean"}
I=lambda: {"type":"integer"}
SL=lambda: {"type":"array","items":{"type":"string"}}
SM=lambda: {"type":"object","additionalProperties":{"type":"string"}}
OPEN=lambda: {"type":"object"}  # a sub-object this schema does not describe
def obj(props, required=()):
    o={"type":"object","properties":props}
    if required: o["required"]=list(required)
    return o
metadata=obj({"name":S(),"namespace":S(),"labels":SM(),"annotations":SM()},["name"])
relabel=obj({"sourceLabels":SL(),"separator":S(),"targetLabel":S(),"regex":S(),
  "modulus":I(),"replacement":S(),
  "action":{"type":"string","enum":["replace","Replace","keep","Keep","drop","Drop","hashmod","HashMod","labelmap","LabelMap","labeldrop","LabelDrop","labelkeep","LabelKeep","lowercase","Lowercase","uppercase","Uppercase","keepequal","KeepEqual","dropequal","DropEqual"]}})
duration={"type":"string","pattern":"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
endpoint=obj({"port":S(),"targetPort":{"anyOf":[{"type":"integer"},{"type":"string"}]},
  "path":S(),"scheme":{"type":"string","enum":["http","https","HTTP","HTTPS"]},
  "params":{"type":"object","additionalProperties":SL()},
  "interval":duration,"scrapeTimeout":duration,"tlsConfig":OPEN(),"bearerTokenFile":S(),
  "bearerTokenSecret":OPEN(),"authorization":OPEN(),"basicAuth":OPEN(),"oauth2":OPEN(),
  "honorLabels":B(),"honorTimestamps":B(),"trackTimestampsStaleness":B(),
  "metricRelabelings":{"type":"array","items":relabel},"relabelings":{"type":"array","items":relabel},
  "proxyUrl":S(),"followRedirects":B(),"enableHttp2":B(),"filterRunning":B()})
selector=obj({"matchLabels":SM(),"matchExpressions":{"type":"array","items":obj({"key":S(),"operator":S(),"values":SL()},["key","operator"])}})
servicemonitor=obj({"apiVersion":S(),"kind":S(),"metadata":metadata,
  "spec":obj({"jobLabel":S(),"targetLabels":SL(),"podTargetLabels":SL(),
    "endpoints":{"type":"array","items":endpoint},"selector":selector,
    "namespaceSelector":obj({"any":B(),"matchNames":SL()}),
    "sampleLimit":I(),"targetLimit":I(),"labelLimit":I(),"labelNameLengthLimit":I(),
    "labelValueLengthLimit":I(),"keepDroppedTargets":I(),"bodySizeLimit":S(),
    "scrapeProtocols":SL(),"fallbackScrapeProtocol":S(),"scrapeClass":S(),
    "attachMetadata":obj({"node":B()})},["selector"])},["apiVersion","kind","metadata","spec"])
rule=obj({"record":S(),"alert":S(),"expr":{"anyOf":[{"type":"integer"},{"type":"string"}]},
  "for":duration,"keep_firing_for":duration,"labels":SM(),"annotations":SM()},["expr"])
prometheusrule=obj({"apiVersion":S(),"kind":S(),"metadata":metadata,
  "spec":obj({"groups":{"type":"array","items":obj({"name":S(),"interval":duration,"limit":I(),
     "partial_response_strategy":S(),"query_offset":duration,"labels":SM(),
     "rules":{"type":"array","items":rule}},["name"])}})},["apiVersion","kind","metadata","spec"])
SCHEMAS={("monitoring.coreos.com/v1","ServiceMonitor"):servicemonitor,("monitoring.coreos.com/v1","PrometheusRule"):prometheusrule}
