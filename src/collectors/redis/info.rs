//! Parser for the text reply of the Redis / Valkey `INFO` command.
//!
//! The collector sends `INFO` and hands the bulk-string reply to
//! [`parse_info`]. Nothing here does I/O, so the parser is tested against
//! replies recorded from real servers (`tests/data/redis-info/`).
//!
//! The reply is `field:value` lines under `# Section` headers, separated by
//! CRLF. Four sections pack several numbers into one value as `k=v,k=v`:
//! keyspace (`db0:keys=…`), commandstats (`cmdstat_get:calls=…`), errorstats
//! (`errorstat_ERR:count=…`) and latencystats
//! (`latency_percentiles_usec_get:p50=…`). The first three become typed rows;
//! latencystats is skipped because perfwatch does not export it. Every other
//! line is kept verbatim as text and converted on demand ([`Info::number`]),
//! so a field added by a newer server needs no parser change.
//!
//! The parser never fails. Servers differ by version and fork: Redis 5 has no
//! `rejected_calls`/`failed_calls` and no errorstats, 7.4 appends `subexpiry`
//! to keyspace lines, Valkey 9 appends `keys_with_volatile_items` instead.
//! Packed values are therefore read by key name, never by position, and
//! unknown keys are ignored. A line that cannot be understood is skipped and
//! counted, so the caller can export a parse-error counter instead of
//! failing the scrape.

use std::collections::BTreeMap;

/// Longest line accepted, in bytes. Real INFO lines are well under 1 KiB
/// (the longest are `module:` and `latency_percentiles_usec_` lines); a longer
/// one means a broken or hostile peer, and refusing it bounds what one line
/// can copy into [`Info`]. Bounding the whole reply is the caller's job.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Everything perfwatch reads from one INFO reply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    /// Plain `field:value` lines by field name (all sections merged; section headers dropped). Keyspace/commandstats/errorstats/latencystats lines are NOT in here.
    ///
    /// Values are kept verbatim (`used_memory_human:1.06M`, `config_file:`
    /// with an empty value). If a name repeats, the last line wins: INFO has
    /// no repeated names except `module:` lines when several modules are
    /// loaded, which perfwatch does not read.
    pub fields: BTreeMap<String, String>,
    /// `db0:keys=1,expires=0,avg_ttl=0,subexpiry=0` lines, parsed by key name (never by position: Redis 7.4 added subexpiry).
    pub keyspace: Vec<KeyspaceLine>,
    /// `cmdstat_get:calls=2,usec=15,usec_per_call=7.50,rejected_calls=0,failed_calls=0`
    pub commandstats: Vec<CommandStat>,
    /// `errorstat_ERR:count=1`
    ///
    /// The error code is kept as the server wrote it (`ERR`, `WRONGTYPE`,
    /// `OOM`, …), in reply order.
    pub errorstats: Vec<(String, u64)>,
}

/// One keyspace line: `db0:keys=5,expires=1,avg_ttl=3598469,subexpiry=0`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyspaceLine {
    /// The database index, from the `db<N>` name.
    pub db: u32,
    /// `keys=`: keys in the database.
    pub keys: u64,
    /// `expires=`: keys that have a TTL.
    pub expires: u64,
    /// `avg_ttl=`, in milliseconds: Redis' sampled estimate of the average
    /// remaining TTL of keys with a TTL (0 until the expire cycle has sampled
    /// some). None when the server does not report it.
    pub avg_ttl_ms: Option<u64>,
    /// `subexpiry=` (Redis ≥ 7.4): hashes with at least one field TTL. None
    /// on older servers and on Valkey, which reports the same count as
    /// `keys_with_volatile_items` (ignored here).
    pub subexpiry: Option<u64>,
}

/// One commandstats line: `cmdstat_get:calls=2,usec=15,usec_per_call=7.50,rejected_calls=0,failed_calls=0`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandStat {
    /// The command, lowercase, as Redis names it after `cmdstat_`: `get`,
    /// and for Redis ≥ 7 subcommands `client|list`, `config|get`.
    pub cmd: String,
    /// `calls=`: calls that ran (rejected calls are not included).
    pub calls: u64,
    /// `usec=`: total microseconds spent in the command.
    pub usec: u64,
    /// `rejected_calls=` (Redis ≥ 6.2): calls refused before running (ACL,
    /// OOM, wrong arity, …). None on older servers.
    pub rejected_calls: Option<u64>,
    /// `failed_calls=` (Redis ≥ 6.2): calls that ran and replied an error.
    /// None on older servers.
    pub failed_calls: Option<u64>,
}

impl Info {
    /// A field as f64 (None when absent or not numeric).
    ///
    /// Only plain numbers count: `1.06M`, `99.70%` and `ok` give None, and so
    /// do `inf`/`nan`, which Rust's float parser would otherwise accept but
    /// INFO never means as numbers.
    pub fn number(&self, field: &str) -> Option<f64> {
        let value = self.fields.get(field)?.trim();
        value.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    /// A field as text.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

/// One `slaveN:` line of a primary's replication section:
/// `slave0:ip=127.0.0.1,port=16392,state=online,offset=417,lag=0`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaLine {
    /// `ip=`, as the replica announced it.
    pub ip: String,
    /// `port=`, the replica's listening port.
    pub port: String,
    /// `state=`: `online`, `wait_bgsave`, `send_bulk`, ….
    pub state: String,
    /// `offset=`: the replication offset the replica acknowledged.
    pub offset: f64,
    /// `lag=`: seconds since its last acknowledgement. None before Redis 3,
    /// which has no `lag`.
    pub lag: Option<f64>,
}

/// What a replica reports about its primary (the fields exist only when
/// `role:slave`).
#[derive(Debug, Clone, PartialEq)]
pub struct PrimaryLink {
    /// `master_host:`.
    pub host: String,
    /// `master_port:`.
    pub port: String,
    /// `master_link_status:` is `up`.
    pub up: bool,
    /// `master_last_io_seconds_ago:` (-1 while the link is down).
    pub last_io_seconds_ago: Option<f64>,
    /// `master_sync_in_progress:`.
    pub sync_in_progress: Option<f64>,
    /// `slave_repl_offset:`.
    pub repl_offset: Option<f64>,
    /// `slave_read_only:` as written (`1`/`0`).
    pub read_only: String,
}

impl Info {
    /// A status field as redis_exporter exports it: 1 for `ok`, 0 for
    /// anything else (`err`), None when absent.
    pub fn status(&self, field: &str) -> Option<f64> {
        self.text(field).map(|v| if v == "ok" { 1.0 } else { 0.0 })
    }

    /// The `slaveN:` lines of a primary, in N order. They are plain fields
    /// to [`parse_info`] (their names are not fixed); a line whose offset is
    /// missing or not a number is left out, as redis_exporter does.
    pub fn replicas(&self) -> Vec<ReplicaLine> {
        let mut lines: Vec<(u32, ReplicaLine)> = self
            .fields
            .iter()
            .filter_map(|(name, value)| {
                let n: u32 = name.strip_prefix("slave")?.parse().ok()?;
                let get = |key: &str| pairs(value).find(|(k, _)| *k == key).map(|(_, v)| v);
                let offset = get("offset")?.parse::<f64>().ok()?;
                let lag = match get("lag") {
                    Some(l) => Some(l.parse::<f64>().ok()?),
                    None => None,
                };
                let line = ReplicaLine {
                    ip: get("ip").unwrap_or("").to_owned(),
                    port: get("port").unwrap_or("").to_owned(),
                    state: get("state").unwrap_or("").to_owned(),
                    offset,
                    lag,
                };
                Some((n, line))
            })
            .collect();
        // BTreeMap order is by name (`slave10` before `slave2`): sort by N.
        lines.sort_by_key(|(n, _)| *n);
        lines.into_iter().map(|(_, l)| l).collect()
    }

    /// A replica's link to its primary; None on a primary.
    pub fn primary_link(&self) -> Option<PrimaryLink> {
        if self.text("role") != Some("slave") {
            return None;
        }
        Some(PrimaryLink {
            host: self.text("master_host").unwrap_or("").to_owned(),
            port: self.text("master_port").unwrap_or("").to_owned(),
            up: self.text("master_link_status") == Some("up"),
            last_io_seconds_ago: self.number("master_last_io_seconds_ago"),
            sync_in_progress: self.number("master_sync_in_progress"),
            repl_offset: self.number("slave_repl_offset"),
            read_only: self.text("slave_read_only").unwrap_or("").to_owned(),
        })
    }
}

/// Parse an INFO reply. Never fails: unknown fields are kept, malformed lines are skipped (counted in the returned usize so the caller can export a parse-error counter).
///
/// Accepts CRLF (as Redis sends it) and LF line endings. Blank lines and
/// `# Section` headers are not counted as malformed; neither are
/// latencystats lines, which are skipped on purpose.
pub fn parse_info(text: &str) -> (Info, usize) {
    let mut info = Info::default();
    let mut malformed = 0;
    // `lines` splits on LF and drops the CR of a CRLF; the extra strip
    // covers a final line that ends in a lone CR.
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > MAX_LINE_BYTES {
            malformed += 1;
            continue;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(Line::Field(name, value)) => {
                info.fields.insert(name.to_owned(), value.to_owned());
            }
            Some(Line::Keyspace(db)) => info.keyspace.push(db),
            Some(Line::Command(cmd)) => info.commandstats.push(cmd),
            Some(Line::Error(code, count)) => info.errorstats.push((code, count)),
            Some(Line::Skip) => {}
            None => malformed += 1,
        }
    }
    (info, malformed)
}

/// What one non-blank, non-header line turned out to be.
enum Line<'a> {
    Field(&'a str, &'a str),
    Keyspace(KeyspaceLine),
    Command(CommandStat),
    Error(String, u64),
    /// Understood, but not kept (latencystats).
    Skip,
}

/// Classify and decode one line; None when it is malformed.
fn parse_line(line: &str) -> Option<Line<'_>> {
    // First colon only: values contain colons (`executable:/usr/bin/…`,
    // Sentinel's `address=127.0.0.1:6379`, IPv6 addresses).
    let (name, value) = line.split_once(':')?;
    if name.is_empty() {
        return None;
    }
    if let Some(cmd) = name.strip_prefix("cmdstat_") {
        return parse_commandstat(cmd, value).map(Line::Command);
    }
    if let Some(code) = name.strip_prefix("errorstat_") {
        return parse_errorstat(code, value).map(|(code, count)| Line::Error(code, count));
    }
    // Redis writes latencystats as `latency_percentiles_usec_<cmd>:`;
    // `latencystat_` is accepted too in case a fork shortens it.
    if name.starts_with("latency_percentiles_usec_") || name.starts_with("latencystat_") {
        return Some(Line::Skip);
    }
    // Keyspace lines are recognised by shape, not by the section they sit in
    // (the section header may be missing when a caller concatenates replies).
    // `db` + digits alone is not enough: Redis 8's keysizes section has
    // `db0_distrib_strings_sizes:…`, which stays a plain field.
    if let Some(index) = name.strip_prefix("db")
        && !index.is_empty()
        && index.bytes().all(|b| b.is_ascii_digit())
        && value.contains("keys=")
    {
        return parse_keyspace(index, value).map(Line::Keyspace);
    }
    Some(Line::Field(name, value))
}

/// The `k=v` pairs of a packed value. A piece without `=` is ignored, like an
/// unknown key: being lenient here costs nothing, the required keys are
/// checked by the callers.
fn pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(',').filter_map(|piece| piece.split_once('='))
}

/// `db<index>:keys=…,expires=…[,avg_ttl=…][,subexpiry=…][,unknown=…]`.
/// `keys` and `expires` are required (every Redis since 2.x writes both); a
/// known key with a non-numeric value makes the whole line malformed rather
/// than exporting a half-read row.
fn parse_keyspace(index: &str, value: &str) -> Option<KeyspaceLine> {
    // More digits than fit a u32 is not a database Redis can have.
    let db = index.parse().ok()?;
    let (mut keys, mut expires, mut avg_ttl_ms, mut subexpiry) = (None, None, None, None);
    for (key, v) in pairs(value) {
        let slot = match key {
            "keys" => &mut keys,
            "expires" => &mut expires,
            "avg_ttl" => &mut avg_ttl_ms,
            "subexpiry" => &mut subexpiry,
            _ => continue,
        };
        *slot = Some(v.parse::<u64>().ok()?);
    }
    Some(KeyspaceLine {
        db,
        keys: keys?,
        expires: expires?,
        avg_ttl_ms,
        subexpiry,
    })
}

/// `cmdstat_<cmd>:calls=…,usec=…,usec_per_call=…[,rejected_calls=…,failed_calls=…]`.
/// `usec_per_call` is ignored: it is `usec / calls`, rounded, and a rate
/// computed by Prometheus from the two counters is more exact.
fn parse_commandstat(cmd: &str, value: &str) -> Option<CommandStat> {
    if cmd.is_empty() {
        return None;
    }
    let (mut calls, mut usec, mut rejected_calls, mut failed_calls) = (None, None, None, None);
    for (key, v) in pairs(value) {
        let slot = match key {
            "calls" => &mut calls,
            "usec" => &mut usec,
            "rejected_calls" => &mut rejected_calls,
            "failed_calls" => &mut failed_calls,
            _ => continue,
        };
        *slot = Some(v.parse::<u64>().ok()?);
    }
    Some(CommandStat {
        // Redis already writes lowercase; lowercasing anyway keeps one label
        // value per command if a fork or proxy does not.
        cmd: cmd.to_ascii_lowercase(),
        calls: calls?,
        usec: usec?,
        rejected_calls,
        failed_calls,
    })
}

/// `errorstat_<CODE>:count=…`.
fn parse_errorstat(code: &str, value: &str) -> Option<(String, u64)> {
    if code.is_empty() {
        return None;
    }
    let mut count = None;
    for (key, v) in pairs(value) {
        if key == "count" {
            count = Some(v.parse::<u64>().ok()?);
        }
    }
    Some((code.to_owned(), count?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(
        fields: &[(&str, &str)],
        keyspace: Vec<KeyspaceLine>,
        commandstats: Vec<CommandStat>,
        errorstats: &[(&str, u64)],
    ) -> Info {
        Info {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            keyspace,
            commandstats,
            errorstats: errorstats
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
        }
    }

    fn fields(fields: &[(&str, &str)]) -> Info {
        info(fields, vec![], vec![], &[])
    }

    fn db(
        db: u32,
        keys: u64,
        expires: u64,
        avg_ttl_ms: Option<u64>,
        subexpiry: Option<u64>,
    ) -> KeyspaceLine {
        KeyspaceLine {
            db,
            keys,
            expires,
            avg_ttl_ms,
            subexpiry,
        }
    }

    fn cmd(
        cmd: &str,
        calls: u64,
        usec: u64,
        rejected_calls: Option<u64>,
        failed_calls: Option<u64>,
    ) -> CommandStat {
        CommandStat {
            cmd: cmd.to_owned(),
            calls,
            usec,
            rejected_calls,
            failed_calls,
        }
    }

    struct Case {
        name: &'static str,
        input: String,
        want: Info,
        malformed: usize,
    }

    fn case(name: &'static str, input: &str, want: Info, malformed: usize) -> Case {
        Case {
            name,
            input: input.to_owned(),
            want,
            malformed,
        }
    }

    #[test]
    fn table() {
        let long_value = "x".repeat(MAX_LINE_BYTES - "big:".len());
        let cases = vec![
            case("empty input", "", Info::default(), 0),
            case(
                "headers and blank lines only",
                "# Server\r\n\r\n# Keyspace\r\n   \r\n",
                Info::default(),
                0,
            ),
            case(
                "LF endings",
                "# Server\nredis_version:7.0.15\nused_memory:1114728\n",
                fields(&[("redis_version", "7.0.15"), ("used_memory", "1114728")]),
                0,
            ),
            case(
                "CRLF endings",
                "# Server\r\nredis_version:7.0.15\r\nused_memory:1114728\r\n",
                fields(&[("redis_version", "7.0.15"), ("used_memory", "1114728")]),
                0,
            ),
            case(
                "no final newline, lone CR at the end",
                "redis_version:7.0.15\r\nused_memory:1114728\r",
                fields(&[("redis_version", "7.0.15"), ("used_memory", "1114728")]),
                0,
            ),
            case(
                "colon in value: split on the first colon only",
                "executable:/usr/bin/redis-server\r\nconfig_file:\r\nmaster_host:fe80::1\r\n\
                 master0:name=mymaster,status=ok,address=127.0.0.1:6379,slaves=1\r\n",
                fields(&[
                    ("executable", "/usr/bin/redis-server"),
                    ("config_file", ""),
                    ("master_host", "fe80::1"),
                    (
                        "master0",
                        "name=mymaster,status=ok,address=127.0.0.1:6379,slaves=1",
                    ),
                ]),
                0,
            ),
            case(
                "keyspace with subexpiry (Redis 7.4)",
                "# Keyspace\r\ndb0:keys=6,expires=1,avg_ttl=3599545,subexpiry=1\r\n\
                 db2:keys=19184,expires=0,avg_ttl=0,subexpiry=0\r\n",
                info(
                    &[],
                    vec![
                        db(0, 6, 1, Some(3599545), Some(1)),
                        db(2, 19184, 0, Some(0), Some(0)),
                    ],
                    vec![],
                    &[],
                ),
                0,
            ),
            case(
                "keyspace without avg_ttl (old servers)",
                "db0:keys=1,expires=0\r\n",
                info(&[], vec![db(0, 1, 0, None, None)], vec![], &[]),
                0,
            ),
            case(
                "keyspace read by name, not position",
                "db3:subexpiry=2,avg_ttl=5,expires=1,keys=9\r\n",
                info(&[], vec![db(3, 9, 1, Some(5), Some(2))], vec![], &[]),
                0,
            ),
            case(
                "keyspace unknown pairs ignored (Valkey 9, Dragonfly)",
                "db0:keys=6,expires=1,avg_ttl=3599180,keys_with_volatile_items=1\r\n\
                 db1:keys=1,expires=0,hits=0,misses=0,junk\r\n",
                info(
                    &[],
                    vec![db(0, 6, 1, Some(3599180), None), db(1, 1, 0, None, None)],
                    vec![],
                    &[],
                ),
                0,
            ),
            case(
                "db-prefixed names that are not keyspace lines stay fields",
                "db0_distrib_strings_sizes:2=1,4=2\r\ndb0:foo=1\r\ndbx:keys=1,expires=0\r\n",
                fields(&[
                    ("db0_distrib_strings_sizes", "2=1,4=2"),
                    ("db0", "foo=1"),
                    ("dbx", "keys=1,expires=0"),
                ]),
                0,
            ),
            case(
                "commandstats: 7.x subcommands, 6.2+ rejected/failed, 5.x without",
                "# Commandstats\r\n\
                 cmdstat_client|list:calls=1,usec=15,usec_per_call=15.00,rejected_calls=0,failed_calls=0\r\n\
                 cmdstat_incr:calls=2,usec=4,usec_per_call=2.00,rejected_calls=3,failed_calls=1\r\n\
                 cmdstat_get:calls=2,usec=1,usec_per_call=0.50\r\n\
                 cmdstat_GET:calls=7,usec=8,usec_per_call=1.14,future_field=9\r\n",
                info(
                    &[],
                    vec![],
                    vec![
                        cmd("client|list", 1, 15, Some(0), Some(0)),
                        cmd("incr", 2, 4, Some(3), Some(1)),
                        cmd("get", 2, 1, None, None),
                        cmd("get", 7, 8, None, None),
                    ],
                    &[],
                ),
                0,
            ),
            case(
                "errorstats keep the code as written",
                "# Errorstats\r\nerrorstat_ERR:count=2\r\nerrorstat_WRONGTYPE:count=1\r\nerrorstat_OOM:count=0\r\n",
                info(
                    &[],
                    vec![],
                    vec![],
                    &[("ERR", 2), ("WRONGTYPE", 1), ("OOM", 0)],
                ),
                0,
            ),
            case(
                "latencystats skipped, not malformed",
                "# Latencystats\r\nlatency_percentiles_usec_config|get:p50=10.047,p99=10.047,p99.9=10.047\r\n\
                 latencystat_get:p50=1.003\r\nused_memory:1\r\n",
                fields(&[("used_memory", "1")]),
                0,
            ),
            case(
                "unknown sections and fields are kept",
                "# Scripting Engines\r\nengines_count:1\r\n\
                 engine_0:name=LUA,module=lua,abi_version=4,used_memory=69632,memory_overhead=56\r\n\
                 # Some Future Section\r\nfuture_metric:42\r\n",
                fields(&[
                    ("engines_count", "1"),
                    (
                        "engine_0",
                        "name=LUA,module=lua,abi_version=4,used_memory=69632,memory_overhead=56",
                    ),
                    ("future_metric", "42"),
                ]),
                0,
            ),
            case(
                "repeated field: last wins",
                "module:name=a,ver=1\r\nmodule:name=b,ver=2\r\n",
                fields(&[("module", "name=b,ver=2")]),
                0,
            ),
            case(
                "malformed lines are counted and skipped, good lines kept",
                "$4050\r\n\
                 garbage without colon\r\n\
                 :no_name\r\n\
                 cmdstat_:calls=1,usec=1\r\n\
                 cmdstat_get:usec=1\r\n\
                 cmdstat_set:calls=x,usec=1\r\n\
                 errorstat_ERR:counted=1\r\n\
                 errorstat_:count=1\r\n\
                 errorstat_OOM:count=-1\r\n\
                 db0:keys=abc,expires=0\r\n\
                 db1:keys=1\r\n\
                 db2:keys=1,expires=0,avg_ttl=soon\r\n\
                 db99999999999:keys=1,expires=0\r\n\
                 db 0 Strings_keys=0, expires=0\r\n\
                 redis_version:7.4.1\r\n\
                 db3:keys=4,expires=0,avg_ttl=0\r\n",
                info(
                    &[("redis_version", "7.4.1")],
                    vec![db(3, 4, 0, Some(0), None)],
                    vec![],
                    &[],
                ),
                14,
            ),
            Case {
                name: "line of exactly 64 KiB is accepted",
                input: format!("big:{long_value}\r\nok:1\r\n"),
                want: fields(&[("big", long_value.as_str()), ("ok", "1")]),
                malformed: 0,
            },
            Case {
                name: "line over 64 KiB is malformed",
                input: format!("big:{long_value}x\r\nok:1\r\n"),
                want: fields(&[("ok", "1")]),
                malformed: 1,
            },
        ];
        for c in cases {
            let (got, malformed) = parse_info(&c.input);
            assert_eq!(got, c.want, "case {:?}: parsed Info", c.name);
            assert_eq!(malformed, c.malformed, "case {:?}: malformed count", c.name);
        }
    }

    #[test]
    fn number_and_text() {
        let (info, malformed) = parse_info(
            "used_memory:1114728\r\nused_memory_human:1.06M\r\nused_memory_peak_perc:99.70%\r\n\
             mem_fragmentation_ratio:13.42\r\nrdb_last_bgsave_time_sec:-1\r\nconfig_file:\r\n\
             rdb_last_bgsave_status:ok\r\nweird_inf:inf\r\nweird_nan:NaN\r\n",
        );
        assert_eq!(malformed, 0);
        let cases: &[(&str, Option<f64>, Option<&str>)] = &[
            ("used_memory", Some(1114728.0), Some("1114728")),
            ("used_memory_human", None, Some("1.06M")),
            ("used_memory_peak_perc", None, Some("99.70%")),
            ("mem_fragmentation_ratio", Some(13.42), Some("13.42")),
            ("rdb_last_bgsave_time_sec", Some(-1.0), Some("-1")),
            ("config_file", None, Some("")),
            ("rdb_last_bgsave_status", None, Some("ok")),
            ("weird_inf", None, Some("inf")),
            ("weird_nan", None, Some("NaN")),
            ("absent", None, None),
        ];
        for (field, number, text) in cases {
            assert_eq!(info.number(field), *number, "number({field:?})");
            assert_eq!(info.text(field), *text, "text({field:?})");
        }
    }

    // ---- recorded replies -------------------------------------------------
    //
    // Each fixture is a whole `INFO all`/`INFO everything` reply; the expected
    // values below were read from the files by eye, not produced by this
    // parser.

    macro_rules! fixture {
        ($file:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/redis-info/",
                $file
            ))
        };
    }

    const REDIS_5_0: &str = fixture!("redis-5.0.txt");
    const REDIS_6_0: &str = fixture!("redis-6.0.txt");
    const REDIS_6_2: &str = fixture!("redis-6.2.txt");
    const REDIS_7_0: &str = fixture!("redis-7.0.txt");
    const REDIS_7_2: &str = fixture!("redis-7.2.txt");
    const REDIS_7_4: &str = fixture!("redis-7.4.txt");
    const VALKEY_8_1: &str = fixture!("valkey-8.1.txt");
    const VALKEY_9_1: &str = fixture!("valkey-9.1.txt");

    const REDIS_7_0_PRIMARY: &str = fixture!("redis-7.0-primary.txt");
    const REDIS_7_0_REPLICA: &str = fixture!("redis-7.0-replica.txt");
    const REDIS_7_0_REPLICA_DOWN: &str = fixture!("redis-7.0-replica-link-down.txt");
    const REDIS_7_0_AOF: &str = fixture!("redis-7.0-aof.txt");

    const ALL_FIXTURES: &[(&str, &str)] = &[
        ("redis-7.0-primary", REDIS_7_0_PRIMARY),
        ("redis-7.0-replica", REDIS_7_0_REPLICA),
        ("redis-7.0-replica-link-down", REDIS_7_0_REPLICA_DOWN),
        ("redis-7.0-aof", REDIS_7_0_AOF),
        ("redis-5.0", REDIS_5_0),
        ("redis-6.0", REDIS_6_0),
        ("redis-6.2", REDIS_6_2),
        ("redis-7.0", REDIS_7_0),
        ("redis-7.2", REDIS_7_2),
        ("redis-7.4", REDIS_7_4),
        ("valkey-8.1", VALKEY_8_1),
        ("valkey-9.1", VALKEY_9_1),
    ];

    /// What every fixture test checks; values read from the fixture file.
    struct Expect {
        redis_version: &'static str,
        used_memory: f64,
        maxmemory: f64,
        keyspace_hits: f64,
        keyspace_misses: f64,
        evicted_keys: f64,
        /// One keyspace line that must be present, exactly.
        db: KeyspaceLine,
        /// One commandstats line that must be present, exactly.
        cmd: CommandStat,
        errorstats: &'static [(&'static str, u64)],
        /// Distinct plain field names, keyspace lines, commandstats lines.
        counts: (usize, usize, usize),
        malformed: usize,
    }

    fn check(text: &str, want: Expect) -> Info {
        let (info, malformed) = parse_info(text);
        assert_eq!(malformed, want.malformed, "malformed lines");
        assert_eq!(info.text("redis_version"), Some(want.redis_version));
        assert_eq!(info.number("used_memory"), Some(want.used_memory));
        assert_eq!(info.number("maxmemory"), Some(want.maxmemory));
        assert_eq!(info.number("keyspace_hits"), Some(want.keyspace_hits));
        assert_eq!(info.number("keyspace_misses"), Some(want.keyspace_misses));
        assert_eq!(info.number("evicted_keys"), Some(want.evicted_keys));
        assert!(
            info.keyspace.contains(&want.db),
            "{:?} not in {:?}",
            want.db,
            info.keyspace
        );
        assert!(
            info.commandstats.contains(&want.cmd),
            "{:?} not in {:?}",
            want.cmd,
            info.commandstats
        );
        let errorstats: Vec<(&str, u64)> = info
            .errorstats
            .iter()
            .map(|(c, n)| (c.as_str(), *n))
            .collect();
        assert_eq!(errorstats, want.errorstats);
        assert_eq!(
            (
                info.fields.len(),
                info.keyspace.len(),
                info.commandstats.len()
            ),
            want.counts,
            "(fields, keyspace, commandstats)"
        );
        info
    }

    #[test]
    fn fixture_redis_5_0() {
        // Redis 5: no errorstats, no rejected/failed calls, no subcommands.
        let info = check(
            REDIS_5_0,
            Expect {
                redis_version: "5.0.6",
                used_memory: 4195880.0,
                maxmemory: 104857600.0,
                keyspace_hits: 1.0,
                keyspace_misses: 1.0,
                evicted_keys: 9724.0,
                db: db(0, 5, 1, Some(3598469), None),
                cmd: cmd("get", 2, 1, None, None),
                errorstats: &[],
                counts: (121, 3, 10),
                malformed: 0,
            },
        );
        assert!(info.commandstats.contains(&cmd("client", 1, 6, None, None)));
        assert_eq!(info.text("maxmemory_policy"), Some("allkeys-lru"));
    }

    #[test]
    fn fixture_redis_6_0() {
        // Captured with its RESP length line (`$4050`) in front: one malformed line.
        let info = check(
            REDIS_6_0,
            Expect {
                redis_version: "6.0.9",
                used_memory: 867160.0,
                maxmemory: 0.0,
                keyspace_hits: 2.0,
                keyspace_misses: 0.0,
                evicted_keys: 0.0,
                db: db(0, 4, 0, Some(0), None),
                cmd: cmd("info", 132, 37296, None, None),
                errorstats: &[],
                counts: (142, 1, 7),
                malformed: 1,
            },
        );
        assert_eq!(info.text("executable"), Some("/data/redis-server"));
        assert_eq!(info.text("config_file"), Some(""));
    }

    #[test]
    fn fixture_redis_6_2() {
        let info = check(
            REDIS_6_2,
            Expect {
                redis_version: "6.2.5",
                used_memory: 6250496.0,
                maxmemory: 104857600.0,
                keyspace_hits: 1.0,
                keyspace_misses: 1.0,
                evicted_keys: 720.0,
                db: db(1, 2, 1, Some(498420), None),
                cmd: cmd("set", 20004, 6465, Some(0), Some(0)),
                errorstats: &[("ERR", 2), ("WRONGTYPE", 1)],
                counts: (151, 3, 10),
                malformed: 0,
            },
        );
        // 6.2 has failed_calls but no subcommand split yet.
        assert!(
            info.commandstats
                .contains(&cmd("incr", 2, 3, Some(0), Some(1)))
        );
        assert!(
            info.commandstats
                .contains(&cmd("client", 1, 20, Some(0), Some(0)))
        );
    }

    #[test]
    fn fixture_redis_7_0() {
        let info = check(
            REDIS_7_0,
            Expect {
                redis_version: "7.0.15",
                used_memory: 6575728.0,
                maxmemory: 104857600.0,
                keyspace_hits: 1.0,
                keyspace_misses: 1.0,
                evicted_keys: 1232.0,
                db: db(0, 5, 1, Some(3598469), None),
                cmd: cmd("client|list", 1, 15, Some(0), Some(0)),
                errorstats: &[("ERR", 2), ("WRONGTYPE", 1)],
                counts: (181, 3, 11),
                malformed: 0,
            },
        );
        assert!(
            info.commandstats
                .contains(&cmd("incr", 2, 4, Some(0), Some(1)))
        );
        assert_eq!(info.text("executable"), Some("/usr/bin/redis-server"));
        assert_eq!(info.number("mem_fragmentation_ratio"), Some(2.81));
        assert_eq!(
            info.number("used_memory_peak_perc"),
            None,
            "97.13% is not a number"
        );
    }

    #[test]
    fn fixture_redis_7_2() {
        check(
            REDIS_7_2,
            Expect {
                redis_version: "7.2.4",
                used_memory: 6545688.0,
                maxmemory: 104857600.0,
                keyspace_hits: 1.0,
                keyspace_misses: 1.0,
                evicted_keys: 752.0,
                db: db(2, 19248, 0, Some(0), None),
                cmd: cmd("client|list", 1, 9, Some(0), Some(0)),
                errorstats: &[("ERR", 2), ("WRONGTYPE", 1)],
                counts: (193, 3, 11),
                malformed: 0,
            },
        );
    }

    #[test]
    fn fixture_redis_7_4() {
        // 7.4 appends subexpiry; db0 holds one hash with a field TTL (HEXPIRE).
        let info = check(
            REDIS_7_4,
            Expect {
                redis_version: "7.4.1",
                used_memory: 6797160.0,
                maxmemory: 104857600.0,
                keyspace_hits: 1.0,
                keyspace_misses: 1.0,
                evicted_keys: 816.0,
                db: db(0, 6, 1, Some(3599545), Some(1)),
                cmd: cmd("hexpire", 1, 11, Some(0), Some(0)),
                errorstats: &[("ERR", 2), ("WRONGTYPE", 1)],
                counts: (202, 3, 12),
                malformed: 0,
            },
        );
        assert!(info.keyspace.iter().all(|k| k.subexpiry.is_some()));
    }

    #[test]
    fn fixture_valkey_8_1() {
        // Valkey reports redis_version 7.2.4 for client compatibility; its own
        // version is valkey_version.
        let info = check(
            VALKEY_8_1,
            Expect {
                redis_version: "7.2.4",
                used_memory: 6288056.0,
                maxmemory: 104857600.0,
                keyspace_hits: 1.0,
                keyspace_misses: 1.0,
                evicted_keys: 992.0,
                db: db(0, 5, 1, Some(3599194), None),
                cmd: cmd("client|list", 1, 12, Some(0), Some(0)),
                errorstats: &[("ERR", 2), ("WRONGTYPE", 1)],
                counts: (214, 3, 11),
                malformed: 0,
            },
        );
        assert_eq!(info.text("valkey_version"), Some("8.1.8"));
        assert_eq!(info.text("server_name"), Some("valkey"));
    }

    #[test]
    fn fixture_valkey_9_1() {
        // Valkey 9 counts hashes with field TTLs as keys_with_volatile_items,
        // not subexpiry, so subexpiry stays None.
        let info = check(
            VALKEY_9_1,
            Expect {
                redis_version: "7.2.4",
                used_memory: 6350984.0,
                maxmemory: 104857600.0,
                keyspace_hits: 1.0,
                keyspace_misses: 1.0,
                evicted_keys: 880.0,
                db: db(0, 6, 1, Some(3599180), None),
                cmd: cmd("hexpire", 1, 12, Some(0), Some(0)),
                errorstats: &[("ERR", 2), ("WRONGTYPE", 1)],
                counts: (236, 3, 12),
                malformed: 0,
            },
        );
        assert_eq!(info.text("valkey_version"), Some("9.1.2"));
        // `INFO everything` on Valkey 9 includes its Lua module line.
        assert_eq!(
            info.text("module"),
            Some(
                "name=lua,ver=1,api=1,filters=0,usedby=[],using=[],options=[handle-repl-async-load|handle-atomic-slot-migration]"
            )
        );
    }

    #[test]
    fn fixtures_keep_packed_lines_out_of_fields() {
        for (name, text) in ALL_FIXTURES {
            let (info, _) = parse_info(text);
            for key in info.fields.keys() {
                let packed = key.starts_with("cmdstat_")
                    || key.starts_with("errorstat_")
                    || key.starts_with("latency_percentiles_usec_")
                    || (key.len() > 2
                        && key.starts_with("db")
                        && key[2..].bytes().all(|b| b.is_ascii_digit()));
                assert!(
                    !packed,
                    "{name}: {key:?} belongs in a typed list, not in fields"
                );
            }
        }
    }

    #[test]
    fn fixtures_parse_the_same_with_lf_and_crlf() {
        for (name, text) in ALL_FIXTURES {
            let lf = text.replace("\r\n", "\n");
            let crlf = lf.replace('\n', "\r\n");
            assert_eq!(parse_info(&lf), parse_info(&crlf), "{name}");
        }
        // The recorded files really are CRLF (as Redis sends them), except the
        // one copied from another project's test data.
        assert!(REDIS_7_0.contains("\r\n"));
        assert!(!REDIS_6_0.contains('\r'));
    }

    fn replica(ip: &str, port: &str, state: &str, offset: f64, lag: Option<f64>) -> ReplicaLine {
        ReplicaLine {
            ip: ip.into(),
            port: port.into(),
            state: state.into(),
            offset,
            lag,
        }
    }

    #[test]
    fn replica_lines_in_index_order_lag_optional_bad_offset_left_out() {
        let (info, malformed) = parse_info(
            "role:master\r\nconnected_slaves:4\r\n\
             slave10:ip=10.0.0.10,port=6379,state=online,offset=7,lag=1\r\n\
             slave2:ip=10.0.0.2,port=6380,state=wait_bgsave,offset=0,lag=0\r\n\
             slave3:ip=10.0.0.3,port=6379,state=online,offset=5\r\n\
             slave4:ip=10.0.0.4,port=6379,state=online,offset=x,lag=0\r\n\
             slave_expires_tracked_keys:0\r\nslave_repl_offset:3\r\n",
        );
        assert_eq!(malformed, 0);
        assert_eq!(
            info.replicas(),
            vec![
                replica("10.0.0.2", "6380", "wait_bgsave", 0.0, Some(0.0)),
                replica("10.0.0.3", "6379", "online", 5.0, None),
                replica("10.0.0.10", "6379", "online", 7.0, Some(1.0)),
            ]
        );
        assert_eq!(info.primary_link(), None, "a primary has no link");
    }

    #[test]
    fn status_fields_are_one_for_ok_only() {
        let (info, _) = parse_info(
            "rdb_last_bgsave_status:ok\r\naof_last_bgrewrite_status:err\r\naof_last_write_status:\r\n",
        );
        assert_eq!(info.status("rdb_last_bgsave_status"), Some(1.0));
        assert_eq!(info.status("aof_last_bgrewrite_status"), Some(0.0));
        assert_eq!(info.status("aof_last_write_status"), Some(0.0));
        assert_eq!(info.status("absent"), None);
    }

    #[test]
    fn fixture_redis_7_0_primary_with_a_replica() {
        let (info, malformed) = parse_info(REDIS_7_0_PRIMARY);
        assert_eq!(malformed, 0);
        assert_eq!(
            info.replicas(),
            vec![replica("127.0.0.1", "16392", "online", 417.0, Some(0.0))]
        );
        assert_eq!(info.primary_link(), None);
        for (field, want) in [
            ("connected_slaves", 1.0),
            ("master_repl_offset", 417.0),
            ("repl_backlog_active", 1.0),
            ("repl_backlog_size", 1048576.0),
            ("repl_backlog_first_byte_offset", 1.0),
            ("repl_backlog_histlen", 417.0),
            ("second_repl_offset", -1.0),
            ("total_system_memory", 25276182528.0),
            ("rdb_last_save_time", 1796620777.0),
            ("rdb_last_bgsave_time_sec", 0.0),
            ("rdb_current_bgsave_time_sec", -1.0),
            ("rdb_last_cow_size", 409600.0),
            ("aof_enabled", 0.0),
            ("aof_last_rewrite_time_sec", -1.0),
            ("loading", 0.0),
        ] {
            assert_eq!(info.number(field), Some(want), "{field}");
        }
        assert_eq!(info.number("aof_current_size"), None, "AOF is off");
        assert_eq!(info.status("rdb_last_bgsave_status"), Some(1.0));
        assert_eq!(info.status("aof_last_write_status"), Some(1.0));
    }

    #[test]
    fn fixture_redis_7_0_replica_link_up_and_down() {
        let link = |text: &str| {
            let (info, malformed) = parse_info(text);
            assert_eq!(malformed, 0);
            assert!(info.replicas().is_empty());
            assert_eq!(info.number("slave_priority"), Some(100.0));
            info.primary_link().expect("a replica")
        };
        let want = |up: bool, last_io: f64| PrimaryLink {
            host: "127.0.0.1".into(),
            port: "16391".into(),
            up,
            last_io_seconds_ago: Some(last_io),
            sync_in_progress: Some(0.0),
            repl_offset: Some(417.0),
            read_only: "1".into(),
        };
        assert_eq!(link(REDIS_7_0_REPLICA), want(true, 8.0));
        assert_eq!(link(REDIS_7_0_REPLICA_DOWN), want(false, -1.0));
    }

    #[test]
    fn fixture_redis_7_0_aof_on() {
        let (info, malformed) = parse_info(REDIS_7_0_AOF);
        assert_eq!(malformed, 0);
        for (field, want) in [
            ("aof_enabled", 1.0),
            ("aof_current_size", 105.0),
            ("aof_base_size", 0.0),
            ("aof_pending_rewrite", 0.0),
            ("aof_buffer_length", 0.0),
            ("aof_pending_bio_fsync", 0.0),
            ("aof_delayed_fsync", 0.0),
        ] {
            assert_eq!(info.number(field), Some(want), "{field}");
        }
        assert_eq!(
            info.number("aof_rewrite_buffer_length"),
            None,
            "gone in Redis 7"
        );
    }

    #[test]
    fn older_servers_have_persistence_and_replication_fields() {
        // The families redis_exporter derives from these fields exist on
        // every recorded version (Redis 5 to Valkey 9).
        for (name, text) in ALL_FIXTURES {
            let (info, _) = parse_info(text);
            for field in [
                "total_system_memory",
                "rdb_last_save_time",
                "rdb_last_bgsave_time_sec",
                "aof_enabled",
                "aof_last_rewrite_time_sec",
                "master_repl_offset",
                "repl_backlog_size",
            ] {
                assert!(info.number(field).is_some(), "{name}: {field}");
            }
            for field in [
                "rdb_last_bgsave_status",
                "aof_last_bgrewrite_status",
                "aof_last_write_status",
            ] {
                assert!(info.status(field).is_some(), "{name}: {field}");
            }
        }
    }
}
