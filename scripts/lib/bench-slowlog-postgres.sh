# shellcheck shell=bash
# The PostgreSQL half of scripts/bench-slowlog.sh (`--postgres`): sourced by
# it after the options are read and bench-common.sh is loaded, so the one
# entry point stays scripts/bench-slowlog.sh. It measures
# `perfwatch digest --format postgres|postgres-csv|postgres-json` side by
# side with Debian's pgBadger on the SAME three logs of one throwaway
# PostgreSQL, in ONE run:
#
# 1. Starts PostgreSQL (initdb in a temp dir, free 127.0.0.1 port, the
#    settings of start_postgres in bench-common.sh) with
#    log_min_duration_statement=0, logging_collector=on and
#    log_destination='stderr,csvlog,jsonlog' (one statement, three logs),
#    log_line_prefix='%m [%p] %q%u@%d '.
# 2. Runs a varied, seeded workload in two databases as two roles until the
#    stderr log is >= BENCH_LOG_MB MB: two psql clients (simple protocol: IN
#    lists of 1-1000 values, multi-row inserts, ON CONFLICT, updates,
#    deletes, joins, CTEs, subqueries, ANY(ARRAY[...]), casts, E'' and $$
#    strings, comments, multi-line statements, transactions, PREPARE /
#    EXECUTE, a few failing statements) and pgbench with a custom script
#    over the extended protocol (-M prepared and -M extended in turns:
#    `execute <name>:` lines with their parameters). The server is stopped
#    before anything is timed.
# 3. For each log (stderr, csv, json): one `cat` to warm the page cache,
#    then `perfwatch digest --format F [--log-line-prefix P] --top 0 --json`
#    and `pgbadger -f stderr|csv|jsonlog [-p P] -j 1 -x json` (every report
#    section it can skip disabled, so it does the least output work while
#    still counting and normalizing queries) under /usr/bin/time -v: CPU
#    time (user+sys), wall time, max RSS.
# 4. Compares the counts: statements and their total duration per tool,
#    and per normalized query where the two normalizations can be matched.
# With --baseline BIN, another perfwatch build (an earlier commit's) is
# timed right after perfwatch on each log: before/after in one run.
#
# Goals (issue 16): >= 300 MB/s per core (CPU time) on each format,
# >= 100x pgBadger, max RSS <= 16 MiB.

# ------------------------------------------------------------ the workload
# Prints N statements (seeded) of many shapes for psql; stdout is fed to it.
pg_workload_py() {
    cat <<'PY'
import random, sys

seed, n = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
words = ["alpha", "beta", "O'Brien", "tab\there", "quote\"d", "x", "", "naïve", "50%", "back\\slash"]

def s():
    w = r.choice(words) + str(r.randint(0, 99999))
    return "'" + w.replace("'", "''") + "'"

def e():
    # An E'' string with backslash escapes.
    return "E'" + r.choice(["line\\n", "it\\'s", "tab\\t", "x"]) + str(r.randint(0, 999)) + "'"

def ints(k):
    return ", ".join(str(r.randint(1, 5000)) for _ in range(k))

def strs(k):
    return ",".join(s() for _ in range(k))

def row():
    return "(%d, %s, %.2f, %s, '2024-%02d-%02d 10:00:00')" % (
        r.randint(1, 1000), s(), r.uniform(-500, 500), r.choice(["NULL", "1", "-7", "42"]),
        r.randint(1, 12), r.randint(1, 28))

shapes = [
    lambda: "SELECT * FROM orders WHERE id = %d" % r.randint(1, 5000),
    lambda: "select id, amount from orders where id in (%s)" % ints(r.randint(1, 60)),
    lambda: "SELECT id FROM customers WHERE email IN (%s) AND active = %s" % (strs(r.randint(1, 20)), r.choice(["TRUE", "false"])),
    lambda: "SELECT * FROM customers WHERE name = %s" % s(),
    lambda: "SELECT * FROM customers WHERE name LIKE %s ORDER BY name ASC LIMIT %d" % (s(), r.randint(1, 50)),
    lambda: "SELECT * FROM orders ORDER BY created_at DESC LIMIT %d OFFSET %d" % (r.randint(1, 50), r.randint(0, 900)),
    lambda: "INSERT INTO events (customer_id, kind, amount, flag, created_at) VALUES %s" % ",".join(row() for _ in range(r.randint(1, 25))),
    lambda: "insert into events (customer_id, kind, amount, flag, created_at) values %s" % row(),
    lambda: "INSERT INTO kv (k, v) VALUES (%d, %s) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v" % (r.randint(1, 999), s()),
    lambda: "UPDATE orders SET status = %s, amount = amount + %.2f WHERE id = %d" % (s(), r.uniform(0, 9), r.randint(1, 5000)),
    lambda: "update customers set last_seen = now() where id in (%s)" % ints(r.randint(1, 30)),
    lambda: "DELETE FROM events WHERE created_at < '2024-%02d-01' AND kind = %s" % (r.randint(1, 12), s()),
    lambda: ("SELECT o.id, c.name, SUM(i.qty * i.price) AS total\nFROM orders o\n  JOIN customers c ON c.id = o.customer_id\n"
             "  LEFT JOIN items i ON i.order_id = o.id\nWHERE c.country = %s AND o.amount > %d\nGROUP BY o.id, c.name\nORDER BY total DESC\nLIMIT %d") % (s(), r.randint(0, 400), r.randint(1, 20)),
    lambda: "/* app=web action=show */ SELECT * FROM orders WHERE customer_id = %d AND status <> 'x'" % r.randint(1, 1000),
    lambda: "SELECT count(*) FROM orders -- count them\nWHERE amount BETWEEN %d AND %d" % (r.randint(-100, 0), r.randint(1, 500)),
    lambda: "SELECT c.id FROM customers c\nWHERE c.id NOT IN (SELECT customer_id FROM orders WHERE amount > %.1f)" % r.uniform(0, 400),
    lambda: "SELECT * FROM orders WHERE customer_id = ANY(ARRAY[%s]) AND created_at > now() - interval '%d days'" % (ints(r.randint(1, 10)), r.randint(1, 30)),
    lambda: "select * from customers where id = -%d or score = %.3e or flag is NULL" % (r.randint(1, 9), r.uniform(-1, 1)),
    lambda: "SeLeCt   \"id\",\t\"name\"  FrOm customers   WhErE id=%d" % r.randint(1, 1000),
    lambda: "SELECT * FROM orders WHERE note = %s OR note = $$%s$$" % (e(), r.choice(["plain", "it's", "a$b"])),
    lambda: "SELECT order_total(%d)" % r.randint(1, 5000),
    lambda: ("WITH recent AS (\n  SELECT customer_id, max(created_at) AS last\n  FROM orders WHERE amount > %d GROUP BY customer_id\n)\n"
             "SELECT c.name, r.last FROM recent r JOIN customers c ON c.id = r.customer_id ORDER BY r.last DESC LIMIT %d") % (r.randint(0, 400), r.randint(1, 20)),
    lambda: "SELECT * FROM items WHERE (order_id, sku) IN ((%d, %s), (%d, %s))" % (r.randint(1, 5000), s(), r.randint(1, 5000), s()),
    lambda: "SELECT id FROM orders WHERE customer_id = %d UNION ALL SELECT id FROM events WHERE customer_id = %d" % (r.randint(1, 1000), r.randint(1, 1000)),
    lambda: "SELECT pg_sleep(0)",
    lambda: "SELECT id, amount::numeric(10,1), created_at::date FROM orders WHERE id = %d::int FOR UPDATE" % r.randint(1, 5000),
    lambda: "select * from kv where k in (%s) and v is not null" % ints(r.randint(100, 1000)),
    lambda: "EXECUTE get_order(%d)" % r.randint(1, 5000),
    lambda: "EXECUTE add_event(%d, %s)" % (r.randint(1, 1000), s()),
    lambda: "BEGIN;\nUPDATE kv SET v = %s WHERE k = %d;\nCOMMIT" % (s(), r.randint(1, 999)),
    lambda: "SELECT 1 / %d" % r.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
    lambda: "SELECT %s" % ", ".join("'%s' AS c%d" % ("v" * r.randint(1, 400), i) for i in range(r.randint(1, 8))),
]
weights = [8, 6, 4, 4, 3, 3, 4, 3, 2, 4, 2, 2, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 1, 3, 2, 2, 1, 2]
out = ["PREPARE get_order(int) AS SELECT * FROM orders WHERE id = $1;",
       "PREPARE add_event(int, text) AS INSERT INTO events (customer_id, kind, created_at) VALUES ($1, $2, now());"]
for i in range(n):
    out.append(r.choices(shapes, weights)[0]() + ";")
sys.stdout.write("\n".join(out) + "\n")
PY
}

PG_SCHEMA="
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, country text, active bool, score float8,
  flag int, last_seen timestamptz);
CREATE INDEX ON customers (email);
CREATE INDEX ON customers (name);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount numeric(10,2), status text, note text,
  created_at timestamptz);
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON orders (created_at);
CREATE TABLE items (order_id int, sku text, qty int, price numeric(10,2), PRIMARY KEY (order_id, sku));
CREATE TABLE events (id bigserial PRIMARY KEY, customer_id int, kind text, amount float8, flag bigint,
  created_at timestamptz);
CREATE INDEX ON events (customer_id);
CREATE TABLE kv (k int PRIMARY KEY, v text);
INSERT INTO customers SELECT g, 'c' || g, 'c' || g || '@x', (ARRAY['DE', 'FR', 'US'])[1 + g % 3], g % 2 = 0, g / 7.0, g % 5, NULL
  FROM generate_series(1, 1000) g;
INSERT INTO orders SELECT g, 1 + g % 1000, g % 500, 'new', 'n', '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 5000) g;
INSERT INTO items SELECT 1 + g % 5000, 'sku' || g, 1 + g % 4, g % 90 FROM generate_series(1, 8000) g;
INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 999) g;
CREATE FUNCTION order_total(oid int) RETURNS numeric LANGUAGE sql AS \$\$ SELECT sum(qty * price) FROM items WHERE order_id = oid \$\$;
GRANT ALL ON ALL TABLES IN SCHEMA public TO app, report;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app, report;
ANALYZE;
"

# The extended-protocol part (pgbench: parse/bind/execute, `execute <name>:`
# lines with `DETAIL:  parameters: …`).
PGBENCH_SCRIPT='\set id random(1, 5000)
\set cid random(1, 1000)
\set amt random(1, 500)
SELECT * FROM orders WHERE id = :id;
SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.customer_id = :cid AND o.amount > :amt;
UPDATE orders SET amount = amount + 1 WHERE id = :id;
INSERT INTO events (customer_id, kind, amount, flag, created_at) VALUES (:cid, '"'"'pgbench'"'"', :amt, 1, now());
SELECT k, v FROM kv WHERE k IN (:id % 999 + 1, :cid, :amt);'

PG_LOG_PREFIX='%m [%p] %q%u@%d '
PG_CONF="log_min_duration_statement = 0
logging_collector = on
log_destination = 'stderr,csvlog,jsonlog'
log_filename = 'postgresql.log'
log_rotation_age = 0
log_rotation_size = 0
log_line_prefix = '$PG_LOG_PREFIX'
lc_messages = 'C'"

# pg_generate_logs DIR: runs the server and the workload; leaves
# DIR/postgresql.{log,csv,json}.
pg_generate_logs() {
    local dir=$1 target round=0 gen_start k db role mode
    mkdir -p "$dir"
    # The server writes there (as the postgres user when run as root, as
    # start_postgres does).
    [[ $(id -u) == 0 ]] && chown postgres: "$dir"
    start_postgres "$WORK/pg" "$PG_CONF
log_directory = '$dir'"
    q "CREATE ROLE app LOGIN; CREATE ROLE report LOGIN" >/dev/null
    for db in shop analytics; do
        q "CREATE DATABASE $db" >/dev/null
        q "$PG_SCHEMA" "$db" >/dev/null || die "schema load into $db failed"
    done
    pg_workload_py >"$WORK/workload.py"
    printf '%s\n' "$PGBENCH_SCRIPT" >"$WORK/pgbench.sql"
    target=$((LOG_MB * 1000 * 1000))
    gen_start=$SECONDS
    while (($(stat -c %s "$dir/postgresql.log") < target)); do
        ((SECONDS - gen_start < 1200)) || die "the stderr log is only $(stat -c %s "$dir/postgresql.log") bytes after 20 min"
        # Two psql clients (2 cores) in the two databases as the two roles,
        # each its own seeded stream, and one pgbench.
        for k in 1 2; do
            db=$([[ $k == 1 ]] && echo shop || echo analytics)
            role=$([[ $((round % 2)) == 0 ]] && echo app || echo report)
            python3 "$WORK/workload.py" $((round * 2 + k)) 10000 |
                psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$role" -d "$db" -f - >/dev/null 2>>"$WORK/workload.err" &
        done
        mode=$([[ $((round % 2)) == 0 ]] && echo prepared || echo extended)
        "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PG_PORT" -U app -M "$mode" -c 1 -t 1000 -f "$WORK/pgbench.sql" shop \
            >>"$WORK/pgbench.out" 2>&1 &
        for k in $(jobs -p); do
            [[ $k == "$PG_PID" ]] && continue
            wait "$k" || true
        done
        round=$((round + 1))
        log "round $round: stderr log $(($(stat -c %s "$dir/postgresql.log") / 1000000)) MB ($((SECONDS - gen_start)) s)"
    done
    log "workload done in $((SECONDS - gen_start)) s: $round rounds of 2 x 10000 psql statements + 1000 pgbench transactions; $(grep -c 'ERROR' "$WORK/workload.err" || true) statement errors (intended: division by zero)"
    stop_pid "$PG_PID"
}

# -------------------------------------------------------------- the run
pg_main() {
    local logdir fmt file prefix_args bad_args key badger_fmt pw_fmt
    need_bin pgbadger pgbadger
    need_bin python3 python3
    if [[ -z $given_log ]]; then
        need_bin psql postgresql-client
        # pgbench ships with the server, outside PATH (start_postgres finds it).
        [[ -n $(find /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | head -1) ]] || BENCH_MISSING+=("pgbench (apt-get install postgresql)")
    fi
    [[ -x /usr/bin/time ]] || BENCH_MISSING+=("/usr/bin/time (apt-get install time)")
    need_bin cargo rustup
    need_bins_done "install them (or run scripts/install-test-deps.sh)"
    BENCH_KILL_WAIT=300
    bench_workdir perfwatch-bench-pgslowlog
    [[ -n $given_perfwatch ]] && PERFWATCH=$given_perfwatch
    build_perfwatch "$build"
    if [[ -n $baseline ]]; then
        [[ -x $baseline ]] || die "--baseline $baseline is not an executable"
        cp "$baseline" "$WORK/baseline"
    fi

    LOG_MB=${BENCH_LOG_MB:-100}
    PW_RUNS=${BENCH_PW_RUNS:-5}
    DB_VERSION="(given logs)"
    CACHED=
    if [[ -z $given_log && -n $cache_dir ]]; then
        key=$(printf '%s\n' "$LOG_MB" "$PG_SCHEMA" "$PG_CONF" "$PGBENCH_SCRIPT" "$("$(find /usr/lib/postgresql/*/bin/postgres | sort -V | tail -1)" --version)" |
            cat - <(pg_workload_py) | sha256sum | cut -c1-12)
        CACHED="$cache_dir/pg-slowlog-${LOG_MB}MB-$key"
        if [[ -s $CACHED/postgresql.log && -s $CACHED/version ]]; then
            log "using the cached logs in $CACHED"
            given_log=$CACHED/postgresql.log
        fi
    fi
    if [[ -n $given_log ]]; then
        logdir=$(dirname "$given_log")
        [[ $(basename "$given_log") == postgresql.log ]] || die "--log: give the stderr log named postgresql.log (its .csv and .json beside it)"
        [[ -s $logdir/version ]] && DB_VERSION=$(cat "$logdir/version")
    else
        logdir=$WORK/pglog
        pg_generate_logs "$logdir"
        DB_VERSION=$PG_VERSION
        if [[ -n $CACHED ]]; then
            mkdir -p "$CACHED.tmp"
            cp "$logdir"/postgresql.{log,csv,json} "$CACHED.tmp/"
            echo "$DB_VERSION" >"$CACHED.tmp/version"
            rm -rf "$CACHED" && mv "$CACHED.tmp" "$CACHED"
            log "cached the logs in $CACHED"
        fi
    fi
    for fmt in log csv json; do
        [[ -s $logdir/postgresql.$fmt ]] || die "$logdir/postgresql.$fmt is missing or empty"
    done

    # `perfwatch 0.1.0 (abc1234)`: the commit the binary was built from.
    pw_desc() { "$1" --version | awk 'NR == 1 { v = $0 } $1 == "revision:" { r = substr($2, 1, 7) } END { print v (r ? " (" r ")" : "") }'; }
    PW_VERSION=$(pw_desc "$PERFWATCH")
    [[ -n $baseline ]] && PW_VERSION+="; baseline: $(pw_desc "$WORK/baseline")"
    BADGER_VERSION=$(pgbadger --version 2>&1 | head -n 1)
    # STEM.N.time of each run -> STEM.time (the median by user+sys) and
    # STEM.runs (every run's CPU seconds, in run order).
    keep_median_run() {
        local stem=$1 run lines=()
        for ((run = 1; run <= PW_RUNS; run++)); do
            lines+=("$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$stem.$run.time") $stem.$run.time")
        done
        printf '%s\n' "${lines[@]}" | awk '{ print $1 }' >"$stem.runs"
        cp "$(printf '%s\n' "${lines[@]}" | sort -n | awk -v n="${#lines[@]}" 'NR == int((n + 1) / 2) { print $2 }')" "$stem.time"
    }
    for fmt in stderr csv json; do
        case $fmt in
        stderr) file=$logdir/postgresql.log pw_fmt=postgres badger_fmt=stderr ;;
        csv) file=$logdir/postgresql.csv pw_fmt=postgres-csv badger_fmt=csv ;;
        json) file=$logdir/postgresql.json pw_fmt=postgres-json badger_fmt=jsonlog ;;
        esac
        prefix_args=() bad_args=()
        if [[ $fmt == stderr ]]; then
            prefix_args=(--log-line-prefix "$PG_LOG_PREFIX")
            bad_args=(-p "$PG_LOG_PREFIX")
        fi
        stat -c %s "$file" >"$WORK/$fmt.bytes"
        cat "$file" >/dev/null # same warm page cache for both
        # perfwatch takes well under a second, where /usr/bin/time counts
        # hundredths and one scheduler hiccup is a tenth: PW_RUNS runs
        # (the baseline's interleaved), the median by CPU time is kept.
        log "timing perfwatch digest --format $pw_fmt ($(($(cat "$WORK/$fmt.bytes") / 1000000)) MB), $PW_RUNS runs"
        for ((run = 1; run <= PW_RUNS; run++)); do
            /usr/bin/time -v -o "$WORK/pw-$fmt.$run.time" "$PERFWATCH" digest --format "$pw_fmt" "${prefix_args[@]}" \
                --top 0 --json "$file" >"$WORK/pw-$fmt.json" 2>"$WORK/pw-$fmt.err" ||
                die "perfwatch digest --format $pw_fmt failed: $(tail -n 5 "$WORK/pw-$fmt.err")"
            if [[ -n $baseline ]]; then
                /usr/bin/time -v -o "$WORK/bl-$fmt.$run.time" "$WORK/baseline" digest --format "$pw_fmt" "${prefix_args[@]}" \
                    --top 0 --json "$file" >"$WORK/bl-$fmt.json" 2>"$WORK/bl-$fmt.err" ||
                    die "baseline perfwatch digest --format $pw_fmt failed: $(tail -n 5 "$WORK/bl-$fmt.err")"
            fi
        done
        keep_median_run "$WORK/pw-$fmt"
        [[ -n $baseline ]] && keep_median_run "$WORK/bl-$fmt"
        log "timing pgbadger -f $badger_fmt"
        # -j 1: one process; -x json, -P, the --disable-* and --no-* flags:
        # the least output work that still counts and normalizes queries.
        /usr/bin/time -v -o "$WORK/pgb-$fmt.time" pgbadger -f "$badger_fmt" "${bad_args[@]}" -j 1 -q \
            --no-progressbar --no-process-info -x json -P -o "$WORK/pgb-$fmt.json" \
            --disable-error --disable-hourly --disable-type --disable-session --disable-connection \
            --disable-lock --disable-temporary --disable-checkpoint --disable-autovacuum \
            "$file" >"$WORK/pgb-$fmt.out" 2>&1 ||
            die "pgbadger -f $badger_fmt failed: $(tail -n 5 "$WORK/pgb-$fmt.out")"
    done

    REPORT=$(PYTHONDONTWRITEBYTECODE=1 python3 "$BENCH_ROOT/scripts/lib/pg-slowlog-report.py" "$WORK" "$PW_VERSION" "$BADGER_VERSION" \
        "$DB_VERSION" "$figures") || die "could not compute the figures (see above)"
    printf '%s\n' "$REPORT"
    REPRO="BENCH_LOG_MB=$LOG_MB scripts/bench-slowlog.sh --postgres${baseline:+ --baseline <an earlier build>}"
    if ((write_doc)); then
        bench_write_doc bench-slowlog-postgres "Slow-log parsing (PostgreSQL)" \
            "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(machine_desc), load average $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end; scripts at git $(git_rev); release builds; $DB_VERSION; $BADGER_VERSION.

Reproduce: \`$REPRO\` (add \`--cache-dir DIR\` to keep the generated logs and reuse them next time).

$REPORT"
    fi
    log "reproduce: $REPRO"
}
