#!/usr/bin/env bash
# Installs the Debian packages that perfwatch's tests, demo and benchmarks
# need. The test bench (crates/perfwatch-testbench) starts its own throwaway
# servers from these installed binaries; it never uses the machine's own
# services.
#
# - Every needed binary already present: does nothing (no apt at all), so CI
#   stays fast.
# - Something missing and we are root: `apt-get update` once, then
#   `apt-get install -y` the missing packages (waiting for the apt/dpkg locks
#   if another apt is running).
# - Something missing and we are not root: prints the exact command to run
#   and exits 1.
#
# Then the Python tools the deploy-file tests run (kubernetes-validate, and
# jsonschema with it), pinned, in their own venv at /opt/perfwatch-test-venv
# (PERFWATCH_TEST_VENV overrides; tests/deploy.rs looks there): pip from PyPI,
# never into the system Python (Debian's is externally managed). Also only
# when missing or of another version.
#
# Usage: scripts/install-test-deps.sh [--check]
#   --check   only report what is missing (exit 1 if anything is), never install.
set -euo pipefail

check_only=0
if [[ "${1:-}" == "--check" ]]; then
    check_only=1
elif [[ $# -gt 0 ]]; then
    echo "usage: $0 [--check]" >&2
    exit 2
fi

# package:binary (the binary whose presence proves the package is installed).
# `postgres` lives in /usr/lib/postgresql/<version>/bin, handled below.
needs=(
    "redis-server:redis-server"
    # redis-cli --cluster create (tests/redis_cluster.rs); Sentinel runs as
    # `redis-server --sentinel`, which needs no package of its own.
    "redis-tools:redis-cli"
    "postgresql:postgres"
    "postgresql:initdb"
    "postgresql-client:psql"
    "postgresql-client:pg_isready"
    "mariadb-server:mariadbd"
    "mariadb-server:mariadb-install-db"
    "mariadb-client:mariadb"
    "mariadb-client:mariadb-admin"
    "pgbouncer:pgbouncer"
    "prometheus:prometheus"
    "prometheus-alertmanager:prometheus-alertmanager"
    "wrk:wrk"
    "prometheus-redis-exporter:prometheus-redis-exporter"
    "prometheus-postgres-exporter:prometheus-postgres-exporter"
    "prometheus-mysqld-exporter:prometheus-mysqld-exporter"
    "percona-toolkit:pt-query-digest"
    # The PostgreSQL slow-log benchmark's peer (scripts/bench-slowlog.sh --postgres).
    "pgbadger:pgbadger"
    "chromium:chromium"
    "python3-yaml:python3-yaml"
    # The MySQL 8 login server's RSA key and decryption (tests/mysql8_auth.rs).
    "openssl:openssl"
    # The image test (tests/build_context.rs, scripts/build-image.sh).
    "buildah:buildah"
    "binutils:strip"
    "ca-certificates:ca-certificates"
    # tests/deploy.rs: `systemd-analyze verify` of the unit.
    "systemd:systemd-analyze"
    # The venv below.
    "python3-venv:python3-venv"
)

venv=${PERFWATCH_TEST_VENV:-/opt/perfwatch-test-venv}
# Pinned: a new release may change what --strict rejects.
kubernetes_validate_version=1.37.0

have_binary() {
    local name=$1
    # Not a binary: the YAML module the deploy-file tests parse with.
    if [[ $name == python3-yaml ]]; then
        python3 -c 'import yaml' >/dev/null 2>&1
        return
    fi
    # Not binaries either: the CA bundle the image ships, and what
    # `python3 -m venv` needs (Debian splits ensurepip into python3-venv).
    if [[ $name == ca-certificates ]]; then
        [[ -s /etc/ssl/certs/ca-certificates.crt ]]
        return
    fi
    if [[ $name == python3-venv ]]; then
        python3 -c 'import ensurepip, venv' >/dev/null 2>&1
        return
    fi
    if command -v "$name" >/dev/null 2>&1; then
        return 0
    fi
    local dir
    for dir in /usr/local/sbin /usr/sbin /sbin /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/$name" ]] && return 0
    done
    return 1
}

missing_pkgs=()
missing_bins=()
for entry in "${needs[@]}"; do
    pkg=${entry%%:*}
    bin=${entry#*:}
    if ! have_binary "$bin"; then
        missing_bins+=("$bin")
        if [[ " ${missing_pkgs[*]-} " != *" $pkg "* ]]; then
            missing_pkgs+=("$pkg")
        fi
    fi
done

have_venv_tools() {
    [[ -x $venv/bin/kubernetes-validate ]] &&
        [[ $("$venv/bin/kubernetes-validate" --version 2>/dev/null) == "$kubernetes_validate_version" ]] &&
        "$venv/bin/python" -c 'import jsonschema, yaml' >/dev/null 2>&1
}

install_venv_tools() {
    have_venv_tools && return 0
    echo "install-test-deps: kubernetes-validate $kubernetes_validate_version missing in $venv"
    if [[ $check_only -eq 1 ]]; then
        echo "install it with: python3 -m venv $venv && $venv/bin/pip install kubernetes-validate==$kubernetes_validate_version"
        return 1
    fi
    if [[ ! -w $(dirname "$venv") ]]; then
        echo "install-test-deps: cannot write $(dirname "$venv"); run as root or set PERFWATCH_TEST_VENV" >&2
        return 1
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$kubernetes_validate_version"
    have_venv_tools || {
        echo "install-test-deps: kubernetes-validate still missing in $venv after pip" >&2
        return 1
    }
    echo "install-test-deps: installed kubernetes-validate $kubernetes_validate_version in $venv"
}

if [[ ${#missing_pkgs[@]} -eq 0 ]]; then
    install_venv_tools
    echo "install-test-deps: all test dependencies are installed"
    exit 0
fi

echo "install-test-deps: missing binaries: ${missing_bins[*]}"
if [[ $check_only -eq 1 ]]; then
    echo "install them with: apt-get update && apt-get install -y ${missing_pkgs[*]}"
    install_venv_tools || true
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: not root; run as root:" >&2
    echo "    apt-get update && apt-get install -y ${missing_pkgs[*]}" >&2
    echo "(or: sudo $0)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

# `apt-get update` does not always honour DPkg::Lock::Timeout for the lists
# lock: retry while another apt (e.g. a background update) holds it.
for attempt in $(seq 1 60); do
    if apt-get "${apt_opts[@]}" update -q; then
        break
    fi
    if [[ $attempt -eq 60 ]]; then
        echo "install-test-deps: apt-get update kept failing" >&2
        exit 1
    fi
    echo "install-test-deps: apt-get update failed (apt busy?), retrying in 10s" >&2
    sleep 10
done

# Don't let package scripts start system daemons (pgbouncer, exporters, ...)
# on their default ports: the tests start their own instances.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
    trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT
fi

echo "install-test-deps: apt-get install -y ${missing_pkgs[*]}"
apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${missing_pkgs[@]}"

still_missing=()
for entry in "${needs[@]}"; do
    bin=${entry#*:}
    have_binary "$bin" || still_missing+=("$bin")
done
if [[ ${#still_missing[@]} -gt 0 ]]; then
    echo "install-test-deps: still missing after install: ${still_missing[*]}" >&2
    exit 1
fi
install_venv_tools
echo "install-test-deps: done"
