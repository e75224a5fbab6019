#!/usr/bin/env bash
# Benchmarks perfwatch's slow-log parser + fingerprinter (`perfwatch digest`)
# side by side with Debian's pt-query-digest, on the SAME MariaDB slow log, in
# ONE run.
#
# 1. Starts a throwaway MariaDB (mariadb-install-db + mariadbd in a temp dir on
#    a free 127.0.0.1 port; --user=root when run as root) with
#    slow_query_log=1, long_query_time=0, log_slow_verbosity=query_plan,explain.
# 2. Loads a small schema in two databases and runs a varied, seeded workload
#    (selects with IN lists of varying length, multi-row inserts, updates,
#    deletes, joins, subqueries, literals of every kind, comments, multi-line
#    statements, LIMIT/OFFSET, ORDER BY ... ASC, CALL) through the mariadb
#    client until the slow log is >= BENCH_LOG_MB MB. The server is stopped
#    before anything is timed.
# 3. Times `perfwatch digest --top 0 --json` (release build) and
#    `pt-query-digest --limit 100% --output json` on that file, each under
#    /usr/bin/time -v (wall time, max RSS), after one `cat` to warm the page
#    cache for both, and computes MB/s (MB = 10^6 bytes) and the ratios.
# 4. Compares the query classes: for each query id pt-query-digest reports,
#    perfwatch's count must equal pt's. Mismatches are listed with both
#    fingerprints.
#
# Goals (issue 4): >= 50x pt-query-digest's throughput, <= 16 MB RSS
# (MiB here: 16 MiB = 16777216 bytes), class counts agree.
#
# Usage: scripts/bench-slowlog.sh [--no-build] [--keep] [--log FILE]
#   --no-build  use target/release/perfwatch as it is (default: cargo build --release)
#   --keep      keep the work dir (the log, reports) after the run
#   --log FILE  skip steps 1-2 and measure an existing MySQL/MariaDB slow log
# Environment: BENCH_LOG_MB (100) size of the generated log.
#
# Exit codes: 0 every figure measured (goals met or not: the table says);
# 1 a step failed or a figure could not be measured; 2 bad usage.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PERFWATCH="$ROOT/target/release/perfwatch"
build=1 keep=0 given_log=
while (($#)); do
    case $1 in
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    --log)
        given_log=${2:?--log needs a file}
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 [--no-build] [--keep] [--log FILE]" >&2
        exit 2
        ;;
    esac
    shift
done
LOG_MB=${BENCH_LOG_MB:-100}

log() { printf '[bench-slowlog] %s\n' "$*" >&2; }
die() {
    printf '\n[bench-slowlog] FAILED: %s\n' "$*" >&2
    exit 1
}

missing=()
need_bin() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (apt-get install $2)"); }
export PATH="$PATH:/usr/sbin:/sbin"
if [[ -z $given_log ]]; then
    need_bin mariadbd mariadb-server
    need_bin mariadb-install-db mariadb-server
    need_bin mariadb mariadb-client
fi
need_bin pt-query-digest percona-toolkit
need_bin python3 python3
[[ -x /usr/bin/time ]] || missing+=("/usr/bin/time (apt-get install time)")
need_bin cargo "rustup"
if ((${#missing[@]})); then
    printf '[bench-slowlog] missing: %s\n' "${missing[@]}" >&2
    die "install them (or run scripts/install-test-deps.sh)"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/perfwatch-bench-slowlog.XXXXXX")
PIDS=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((keep)) || ((rc != 0)); then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((build)); then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[[ -x $PERFWATCH ]] || die "$PERFWATCH not found: run cargo build --release (or drop --no-build)"

# ------------------------------------------------------------ the workload
# Prints N statements (seeded) of many shapes; stdout is fed to `mariadb`.
cat >"$WORK/workload.py" <<'PY'
import random, sys

seed, n = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
words = ["alpha", "beta", "O'Brien", "back\\\\slash", "tab\\there", "quote\"d", "x", "", "naïve", "50%"]

def s():
    w = r.choice(words) + str(r.randint(0, 99999))
    return "'" + w.replace("'", "''") + "'"

def ints(k):
    return ", ".join(str(r.randint(1, 5000)) for _ in range(k))

def strs(k):
    return ",".join(s() for _ in range(k))

def row():
    return "(%d, %s, %.2f, %s, '2024-%02d-%02d 10:00:00')" % (
        r.randint(1, 1000), s(), r.uniform(-500, 500), r.choice(["NULL", "TRUE", "FALSE", "0x1F", "-7", "1.5e3"]),
        r.randint(1, 12), r.randint(1, 28))

shapes = [
    lambda: "SELECT * FROM orders WHERE id = %d" % r.randint(1, 5000),
    lambda: "select id, amount from orders where id in (%s)" % ints(r.randint(1, 60)),
    lambda: "SELECT id FROM customers WHERE email IN (%s) AND active = %s" % (strs(r.randint(1, 20)), r.choice(["TRUE", "FALSE", "1"])),
    lambda: "SELECT * FROM customers WHERE name = %s" % s(),
    lambda: "SELECT * FROM customers WHERE name LIKE %s ORDER BY name ASC LIMIT %d" % (s(), r.randint(1, 50)),
    lambda: "SELECT * FROM orders ORDER BY created_at DESC LIMIT %d, %d" % (r.randint(0, 900), r.randint(1, 50)),
    lambda: "SELECT * FROM orders ORDER BY amount asc LIMIT %d OFFSET %d" % (r.randint(1, 50), r.randint(0, 900)),
    lambda: "INSERT INTO events (customer_id, kind, amount, flag, created_at) VALUES %s" % ",".join(row() for _ in range(r.randint(1, 25))),
    lambda: "insert into events (customer_id, kind, amount, flag, created_at) values %s" % row(),
    lambda: "REPLACE INTO kv (k, v) VALUES (%d, %s), (%d, %s)" % (r.randint(1, 500), s(), r.randint(501, 999), s()),
    lambda: "UPDATE orders SET status = %s, amount = amount + %.2f WHERE id = %d" % (s(), r.uniform(0, 9), r.randint(1, 5000)),
    lambda: "update customers set last_seen = NOW() where id in (%s)" % ints(r.randint(1, 30)),
    lambda: "DELETE FROM events WHERE created_at < '2024-%02d-01' AND kind = %s LIMIT %d" % (r.randint(1, 12), s(), r.randint(1, 20)),
    lambda: ("SELECT o.id, c.name, SUM(i.qty * i.price) AS total\nFROM orders o\n  JOIN customers c ON c.id = o.customer_id\n"
             "  LEFT JOIN items i ON i.order_id = o.id\nWHERE c.country = %s AND o.amount > %d\nGROUP BY o.id, c.name\nORDER BY total DESC\nLIMIT %d") % (s(), r.randint(0, 400), r.randint(1, 20)),
    lambda: "/* app=web action=show */ SELECT * FROM orders WHERE customer_id = %d AND status <> 'x'" % r.randint(1, 1000),
    lambda: "SELECT COUNT(*) FROM orders -- count them\nWHERE amount BETWEEN %d AND %d" % (r.randint(-100, 0), r.randint(1, 500)),
    lambda: "SELECT /* hint */ c.id FROM customers c # trailing\nWHERE c.id NOT IN (SELECT customer_id FROM orders WHERE amount > %.1f)" % r.uniform(0, 400),
    lambda: "SELECT * FROM orders WHERE code = 0x%X OR code = X'%02x' OR bits = b'%s'" % (r.randint(0, 2**31), r.randint(0, 255), bin(r.randint(0, 255))[2:]),
    lambda: "select * from customers where id = -%d or score = %.3e or flag is NULL" % (r.randint(1, 9), r.uniform(-1, 1)),
    lambda: "SeLeCt   `id`,\t`name`  FrOm `customers`   WhErE `id`=%d" % r.randint(1, 1000),
    lambda: "SELECT * FROM orders WHERE created_at >= '2024-01-%02d' AND note = \"%s\"" % (r.randint(1, 28), r.choice(["a\\\"b", "plain", "it's"])),
    lambda: "CALL order_total(%d)" % r.randint(1, 5000),
    lambda: "SELECT c.name, (SELECT MAX(amount) FROM orders WHERE customer_id = c.id) AS mx FROM customers c WHERE c.id IN (%s)" % ints(r.randint(2, 8)),
    lambda: "SELECT * FROM items WHERE (order_id, sku) IN ((%d, %s), (%d, %s))" % (r.randint(1, 5000), s(), r.randint(1, 5000), s()),
    lambda: "SELECT id FROM orders WHERE customer_id = %d UNION ALL SELECT id FROM events WHERE customer_id = %d" % (r.randint(1, 1000), r.randint(1, 1000)),
    lambda: "SELECT sleep(0)",
    lambda: "SELECT t1.id FROM orders t1, orders t2 WHERE t1.id = t2.id AND t1.id = %d" % r.randint(1, 5000),
    lambda: "select * from kv where k in (%s) and v is not null" % ints(r.randint(1, 200)),
    lambda: "SELECT id, name FROM customers WHERE id = %d FOR UPDATE" % r.randint(1, 1000),
    lambda: "INSERT INTO kv (k, v) VALUES (%d, %s) ON DUPLICATE KEY UPDATE v = VALUES(v)" % (r.randint(1, 999), s()),
]
weights = [8, 6, 4, 4, 3, 3, 3, 4, 3, 2, 4, 2, 2, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 2, 2, 2, 2]
dbs = ["shop", "analytics"]
db = None
out = []
for i in range(n):
    if db is None or r.random() < 0.01:
        db = r.choice(dbs)
        out.append("USE %s;" % db)
    out.append(r.choices(shapes, weights)[0]() + ";")
sys.stdout.write("\n".join(out) + "\n")
PY

SCHEMA="
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100), email VARCHAR(100), country VARCHAR(40),
  active BOOL, score DOUBLE, flag INT, last_seen DATETIME, KEY (email), KEY (name)) ENGINE=InnoDB;
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, amount DECIMAL(10,2), status VARCHAR(20),
  code BIGINT, bits INT, note VARCHAR(100), created_at DATETIME, KEY (customer_id), KEY (created_at)) ENGINE=InnoDB;
CREATE TABLE items (order_id INT, sku VARCHAR(40), qty INT, price DECIMAL(10,2), PRIMARY KEY (order_id, sku)) ENGINE=InnoDB;
CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT, kind VARCHAR(100), amount DOUBLE,
  flag BIGINT, created_at DATETIME, KEY (customer_id), KEY (created_at)) ENGINE=InnoDB;
CREATE TABLE kv (k INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB;
INSERT INTO customers SELECT seq, CONCAT('c', seq), CONCAT('c', seq, '@x'), ELT(1 + seq % 3, 'DE', 'FR', 'US'), seq % 2, seq / 7, seq % 5, NULL FROM seq_1_to_1000;
INSERT INTO orders SELECT seq, 1 + seq % 1000, seq % 500, 'new', seq, seq % 256, 'n', '2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_5000;
INSERT INTO items SELECT 1 + seq % 5000, CONCAT('sku', seq), 1 + seq % 4, seq % 90 FROM seq_1_to_8000;
CREATE PROCEDURE order_total(IN oid INT) SELECT SUM(qty * price) FROM items WHERE order_id = oid;
"

if [[ -n $given_log ]]; then
    SLOWLOG=$given_log
    [[ -s $SLOWLOG ]] || die "$SLOWLOG is missing or empty"
    DB_VERSION="(given log)"
else
    # -------------------------------------------------------------- mariadb
    DB="$WORK/db"
    mkdir -p "$DB/data" "$DB/tmp"
    SLOWLOG="$WORK/slow.log"
    DB_PORT=
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            DB_PORT=$p
            break
        fi
    done
    [[ -n $DB_PORT ]] || die "no free port found on 127.0.0.1"
    SOCK="$DB/mariadb.sock"
    {
        echo "[mariadbd]"
        echo "datadir = $DB/data"
        echo "tmpdir = $DB/tmp"
        echo "socket = $SOCK"
        echo "pid-file = $DB/mariadb.pid"
        echo "log-error = $DB/mariadb.err"
        echo "port = $DB_PORT"
        echo "bind-address = 127.0.0.1"
        echo "skip-name-resolve"
        echo "skip-log-bin"
        echo "max_connections = 20"
        echo "innodb_buffer_pool_size = 64M"
        echo "innodb_flush_log_at_trx_commit = 0"
        echo "innodb_doublewrite = OFF"
        echo "innodb_use_native_aio = 0"
        echo "character-set-server = utf8mb4"
        echo "slow_query_log = 1"
        echo "slow_query_log_file = $SLOWLOG"
        echo "long_query_time = 0"
        echo "log_slow_verbosity = query_plan,explain"
        [[ $(id -u) == 0 ]] && echo "user = root"
    } >"$DB/my.cnf"
    install_args=(--defaults-file="$DB/my.cnf" --datadir="$DB/data" --auth-root-authentication-method=normal --skip-test-db)
    [[ $(id -u) == 0 ]] && install_args+=(--user=root)
    mariadb-install-db "${install_args[@]}" >"$DB/install.log" 2>&1 ||
        die "mariadb-install-db failed: $(tail -n 5 "$DB/install.log")"
    mariadbd --defaults-file="$DB/my.cnf" >"$DB/console.log" 2>&1 &
    DB_PID=$!
    PIDS+=("$DB_PID")
    client=(mariadb --no-defaults --socket="$SOCK" --user=root --batch --skip-column-names)
    sql() { "${client[@]}" -e "$1"; }
    for _ in $(seq 300); do
        sql "SELECT 1" >/dev/null 2>&1 && break
        kill -0 "$DB_PID" 2>/dev/null || die "mariadbd exited: $(tail -n 10 "$DB/mariadb.err")"
        sleep 0.1
    done
    sql "SELECT 1" >/dev/null || die "mariadbd not ready: $(tail -n 10 "$DB/mariadb.err")"
    DB_VERSION=$(sql "SELECT VERSION()")
    log "mariadbd $DB_VERSION pid $DB_PID on 127.0.0.1:$DB_PORT, slow log $SLOWLOG"
    for d in shop analytics; do
        sql "CREATE DATABASE $d; USE $d; $SCHEMA" >/dev/null || die "schema load into $d failed"
    done

    # ------------------------------------------------------------ workload
    target=$((LOG_MB * 1000 * 1000))
    gen_start=$SECONDS round=0
    while (($(stat -c %s "$SLOWLOG") < target)); do
        ((SECONDS - gen_start < 900)) || die "the slow log is only $(stat -c %s "$SLOWLOG") bytes after 15 min"
        # Two clients at once (2 cores), each its own seeded stream.
        for k in 1 2; do
            python3 "$WORK/workload.py" $((round * 2 + k)) 20000 |
                "${client[@]}" --comments --force >/dev/null 2>>"$WORK/workload.err" &
        done
        wait_ok=1
        for job in $(jobs -p); do
            [[ $job == "$DB_PID" ]] && continue
            wait "$job" || wait_ok=0
        done
        ((wait_ok)) || log "a workload client exited non-zero (statement errors are logged to the slow log too; see $WORK/workload.err)"
        round=$((round + 1))
        log "round $round: slow log $(($(stat -c %s "$SLOWLOG") / 1000000)) MB ($((SECONDS - gen_start)) s)"
    done
    errors=$(grep -c '^ERROR' "$WORK/workload.err" || true)
    log "workload done in $((SECONDS - gen_start)) s: $round rounds of 2 x 20000 statements, $errors statement errors"
    # Stop the server: nothing else runs while timing.
    kill -TERM "$DB_PID"
    wait "$DB_PID" 2>/dev/null || true
    PIDS=()
fi

BYTES=$(stat -c %s "$SLOWLOG")
((BYTES > 0)) || die "the slow log is empty"
log "slow log: $BYTES bytes"

# -------------------------------------------------------------- measuring
cat "$SLOWLOG" >/dev/null # same warm page cache for both
PW_VERSION=$("$PERFWATCH" --version)
PT_VERSION=$(pt-query-digest --version 2>&1 | tail -n 1)

log "timing perfwatch digest"
/usr/bin/time -v -o "$WORK/pw.time" "$PERFWATCH" digest --top 0 --json "$SLOWLOG" \
    >"$WORK/pw.json" 2>"$WORK/pw.err" || die "perfwatch digest failed: $(tail -n 5 "$WORK/pw.err")"
log "timing pt-query-digest"
/usr/bin/time -v -o "$WORK/pt.time" pt-query-digest --limit 100% --output json "$SLOWLOG" \
    >"$WORK/pt.json" 2>"$WORK/pt.err" || die "pt-query-digest failed: $(tail -n 5 "$WORK/pt.err")"

# ------------------------------------------------------------- the report
python3 - "$WORK" "$BYTES" "$PW_VERSION" "$PT_VERSION" "$DB_VERSION" <<'PY' || die "could not compute the figures (see above)"
import json, re, sys

work, nbytes, pw_version, pt_version, db_version = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]

def gnu_time(path):
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    user = float(re.search(r"User time \(seconds\): (\S+)", text).group(1))
    sys_ = float(re.search(r"System time \(seconds\): (\S+)", text).group(1))
    if secs <= 0 or rss_kb <= 0:
        raise SystemExit(f"{path}: no wall time or RSS")
    return secs, rss_kb * 1024, user + sys_

pw_s, pw_rss, pw_cpu = gnu_time(f"{work}/pw.time")
pt_s, pt_rss, pt_cpu = gnu_time(f"{work}/pt.time")
pw = json.load(open(f"{work}/pw.json"))
pt_text = open(f"{work}/pt.json").read()
pt = json.loads(pt_text[pt_text.index("{"):])
# pt 3.x prints the whole MD5 of the fingerprint; perfwatch's id is its
# last 16 hex digits (pt 2.x's query id).
pt_classes = {c["checksum"][-16:]: c for c in pt["classes"]}
pw_classes = {c["id"]: c for c in pw["top"]}
if not pt_classes or not pw_classes:
    raise SystemExit("a tool reported no query class")
pt_events = sum(int(c["query_count"]) for c in pt_classes.values())
mb = lambda b: b / 1e6
mib = lambda b: b / 1048576
pw_mbs, pt_mbs = mb(nbytes) / pw_s, mb(nbytes) / pt_s
ratio = pw_mbs / pt_mbs
match = [k for k, c in pt_classes.items() if k in pw_classes and pw_classes[k]["count"] == int(c["query_count"])]
mism = [k for k in pt_classes if k not in match]
only_pw = [k for k in pw_classes if k not in pt_classes]

lines = []
p = lines.append
p(f"Log: {mb(nbytes):.1f} MB ({nbytes} bytes) from {db_version}, {pt_events} events (pt) / {pw['events']} (perfwatch).")
p(f"perfwatch: {pw_version}; pt-query-digest: {pt_version}.")
p("")
p("| | perfwatch digest | pt-query-digest | ratio |")
p("|---|---:|---:|---:|")
p(f"| wall time (s) | {pw_s:.2f} | {pt_s:.2f} | {pt_s / pw_s:.1f}x faster |")
p(f"| CPU time, user+sys (s) | {pw_cpu:.2f} | {pt_cpu:.2f} | {pt_cpu / max(pw_cpu, 0.005):.1f}x less |")
p(f"| throughput (MB/s, wall) | {pw_mbs:.1f} | {pt_mbs:.2f} | **{ratio:.1f}x** |")
p(f"| max RSS (MiB) | {mib(pw_rss):.1f} | {mib(pt_rss):.1f} | {pt_rss / pw_rss:.1f}x less |")
p(f"| query classes | {len(pw_classes)} | {len(pt_classes)} | |")
p("")
p(f"In-process figure (stderr of perfwatch digest): {open(f'{work}/pw.err').read().strip().splitlines()[-1]}")
p("")
p(f"Classes: {len(match)} of {len(pt_classes)} pt-query-digest classes have the same query id and the same count in perfwatch"
  + (f"; {len(only_pw)} perfwatch classes have an id pt does not report." if only_pw else "."))
for k in mism:
    c = pt_classes[k]
    mine = pw_classes.get(k)
    p(f"  - {k} pt count {c['query_count']}, perfwatch {mine['count'] if mine else 'absent'}: pt `{c['fingerprint'][:160]}`")
for k in only_pw:
    c = pw_classes[k]
    p(f"  - {k} only perfwatch, count {c['count']}: `{c['fingerprint'][:160]}`")
p("")
goal_tp = ratio >= 50
goal_rss = pw_rss <= 16 * 1048576
goal_cls = not mism and not only_pw
p(f"Goals: >= 50x pt-query-digest's throughput: **{'met' if goal_tp else 'missed'}** ({ratio:.1f}x"
  + ("" if goal_tp else f", {50 / ratio:.2f}x short") + f"); <= 16 MiB RSS: **{'met' if goal_rss else 'missed'}** ({mib(pw_rss):.1f} MiB);"
  + f" class counts agree: **{'met' if goal_cls else 'missed'}** ({len(match)}/{len(pt_classes)}).")
open(f"{work}/report.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
log "reproduce: scripts/bench-slowlog.sh (BENCH_LOG_MB=$LOG_MB)"
