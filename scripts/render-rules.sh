#!/usr/bin/env bash
# Prints alerts/perfwatch.rules.yml with every runbook link under one base.
#
# The rules file links each alert to `docs/runbooks.md#<alert in lower
# case>`, relative to this repository (there is no public address to point
# at). Where the runbooks really live is the deployer's choice: a wiki page,
# or docs/runbooks.md of your copy of this repository on your git host.
# Give that address once; the anchors stay (GitHub, GitLab, Gitea and most
# wikis make `## CacheHitRatioLow` into `#cachehitratiolow`).
#
# Usage:
#   scripts/render-rules.sh                          the rules as committed
#   scripts/render-rules.sh --runbook-base URL       every runbook_url as URL#<anchor>
#
# e.g. --runbook-base https://git.example.com/ops/perfwatch/-/blob/main/docs/runbooks.md
# scripts/gen-prometheusrule.sh takes the same option for the Kubernetes
# PrometheusRule, and perfwatch_testbench::deploy::rules_with_runbook_base
# does the same for the test stack (tests/rules.rs checks the two agree).
set -euo pipefail
cd "$(dirname "$0")/.."

rules=alerts/perfwatch.rules.yml
# The one prefix every runbook_url of the rules file starts with.
relative="runbook_url: 'docs/runbooks.md#"

base=""
case "${1:-}" in
    "") ;;
    --runbook-base)
        base="${2:-}"
        if [[ -z "$base" || $# -ne 2 ]]; then
            echo "render-rules: --runbook-base takes one URL" >&2
            exit 2
        fi
        # The links are single-quoted YAML strings on one line.
        if [[ "$base" == *"'"* || "$base" =~ [[:space:]] || "$base" == *"#"* ]]; then
            echo "render-rules: runbook base '$base' must not contain a quote, white space or '#'" >&2
            exit 2
        fi
        ;;
    *)
        echo "usage: $0 [--runbook-base URL]" >&2
        exit 2
        ;;
esac

if [[ -z "$base" ]]; then
    cat "$rules"
    exit 0
fi
if ! grep -qF "$relative" "$rules"; then
    echo "render-rules: $rules has no line with $relative" >&2
    exit 1
fi
replacement="runbook_url: '${base}#"
while IFS= read -r line || [[ -n "$line" ]]; do
    # Quoted pattern and replacement: taken literally (no glob, no `&`).
    printf '%s\n' "${line/"$relative"/"$replacement"}"
done <"$rules"
