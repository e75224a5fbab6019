#!/usr/bin/env bash
# Regenerates docs/status-1280.png and docs/status-390.png, the status page
# screenshots the README links: runs tests/status_page.rs (perfwatch polling
# a throwaway Redis, PostgreSQL and the sample app; headless Chromium at
# 1280 and 390 px), which copies its screenshots where
# PERFWATCH_STATUS_SCREENSHOTS says. The screenshots are taken before the
# test kills Redis, so every card is up and the charts have ~10 s of points.
#
# Needs the test's Debian packages: redis-server, postgresql, chromium (the
# test fails with the install command when one is missing).
#
# Usage: scripts/status-screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PERFWATCH_STATUS_SCREENSHOTS="$PWD/docs" \
    cargo test --locked --test status_page -- --exact \
    the_status_page_charts_what_metrics_served_and_puts_a_dead_target_first
ls -l docs/status-1280.png docs/status-390.png
