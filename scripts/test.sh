#!/usr/bin/env bash
# The one command that installs what the tests need and runs them all.
# Integration tests start their own throwaway Redis/PostgreSQL/MariaDB/
# Prometheus instances from the installed Debian packages; a missing binary
# fails the test that needs it with a message saying how to install it.
#
# Usage: scripts/test.sh            (as root it installs missing packages)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
# --workspace: the test bench (crates/perfwatch-testbench) has its own unit
# and integration tests, and its demo binary is clippy-checked too.
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets --locked
