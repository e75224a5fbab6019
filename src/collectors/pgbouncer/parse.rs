//! Pure parsing of the admin console's `SHOW POOLS`, `SHOW STATS`,
//! `SHOW DATABASES` and `SHOW VERSION` results into typed rows.
//!
//! PgBouncer adds, renames and drops columns between releases (1.8 replaced
//! `total_requests` with `total_query_count`; 1.18 added
//! `cl_cancel_req`; later releases split it into `cl_active_cancel_req` /
//! `cl_waiting_cancel_req` and renamed `reserve_pool` to `reserve_pool_size`),
//! so every row is read by column *name*: unknown columns are ignored, a
//! missing or NULL column is `None`, and a value that is not a number is
//! `None` too (counted as malformed, never a failed poll).

/// One result set as the admin console sent it: column names and text
/// values (the simple query protocol sends everything as text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows; each has one entry per column (`None` = NULL).
    pub rows: Vec<Vec<Option<String>>>,
}

impl Table {
    /// A table from string literals (tests); `""` stays an empty string,
    /// use [`Table::push_row`] with `None` for NULL.
    #[cfg(test)]
    pub fn from_text(columns: &[&str], rows: &[&[&str]]) -> Self {
        let mut t = Table {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        };
        for r in rows {
            t.push_row(r.iter().map(|v| Some((*v).to_owned())).collect());
        }
        t
    }

    /// Appends a row.
    pub fn push_row(&mut self, row: Vec<Option<String>>) {
        self.rows.push(row);
    }

    fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    fn reader(&self) -> impl Iterator<Item = RowReader<'_>> {
        self.rows
            .iter()
            .map(move |row| RowReader { table: self, row })
    }

    /// The rows `build` makes a value of, and how many values did not
    /// parse: `build` counts its malformed values, and a row it returns
    /// `None` for (no name to label it with) is skipped and counted.
    fn parse_rows<T>(
        &self,
        build: impl Fn(&RowReader<'_>, &mut usize) -> Option<T>,
    ) -> (Vec<T>, usize) {
        let mut bad = 0;
        let mut out = Vec::new();
        for r in self.reader() {
            match build(&r, &mut bad) {
                Some(v) => out.push(v),
                None => bad += 1,
            }
        }
        (out, bad)
    }
}

/// Reads one row by column name, counting values that don't parse.
struct RowReader<'a> {
    table: &'a Table,
    row: &'a [Option<String>],
}

impl RowReader<'_> {
    fn text(&self, column: &str) -> Option<&str> {
        let i = self.table.index(column)?;
        self.row.get(i)?.as_deref()
    }

    fn string(&self, column: &str) -> Option<String> {
        self.text(column).map(str::to_owned)
    }

    /// A non-negative integer column; `malformed` counts present values
    /// that are not one.
    fn uint(&self, column: &str, malformed: &mut usize) -> Option<u64> {
        let v = self.text(column)?.trim();
        if v.is_empty() {
            return None;
        }
        match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                *malformed += 1;
                None
            }
        }
    }

    /// The first of `columns` that is present.
    fn uint_any(&self, columns: &[&str], malformed: &mut usize) -> Option<u64> {
        columns.iter().find_map(|c| self.uint(c, malformed))
    }

    /// PgBouncer's booleans are `0`/`1` integers.
    fn flag(&self, column: &str, malformed: &mut usize) -> Option<bool> {
        self.uint(column, malformed).map(|n| n != 0)
    }
}

/// One row of `SHOW POOLS`: a (database, user) pool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pool {
    /// PgBouncer's database name (the `[databases]` key).
    pub database: String,
    /// The user the pool is for.
    pub user: String,
    /// `cl_active`: clients linked to a server connection or idle.
    pub cl_active: Option<u64>,
    /// `cl_waiting`: clients that sent a query but have no server yet.
    pub cl_waiting: Option<u64>,
    /// `sv_active`: server connections linked to a client.
    pub sv_active: Option<u64>,
    /// `sv_idle`: server connections ready for a client.
    pub sv_idle: Option<u64>,
    /// `sv_used`: server connections idle longer than `server_check_delay`.
    pub sv_used: Option<u64>,
    /// `sv_tested`: server connections running a reset or check query.
    pub sv_tested: Option<u64>,
    /// `sv_login`: server connections logging in.
    pub sv_login: Option<u64>,
    /// How long the oldest waiting client has waited, in seconds:
    /// `maxwait` + `maxwait_us` / 1e6 (`maxwait_us` exists since 1.8).
    pub maxwait_seconds: Option<f64>,
    /// `pool_mode` (since 1.8).
    pub pool_mode: Option<String>,
}

/// One row of `SHOW STATS`: per-database totals since PgBouncer started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// PgBouncer's database name.
    pub database: String,
    /// `total_xact_count`: SQL transactions pooled.
    pub xact_count: Option<u64>,
    /// `total_query_count` (`total_requests` before 1.8): queries pooled.
    pub query_count: Option<u64>,
    /// `total_received`: bytes received from clients.
    pub received_bytes: Option<u64>,
    /// `total_sent`: bytes sent to clients.
    pub sent_bytes: Option<u64>,
    /// `total_xact_time`: microseconds in transactions on a server.
    pub xact_time_us: Option<u64>,
    /// `total_query_time`: microseconds executing queries on a server.
    pub query_time_us: Option<u64>,
    /// `total_wait_time`: microseconds clients waited for a server.
    pub wait_time_us: Option<u64>,
}

/// One row of `SHOW DATABASES`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Database {
    /// PgBouncer's database name (`name`).
    pub name: String,
    /// The backend database (`database`).
    pub backend_database: Option<String>,
    /// `pool_size`: most server connections per (database, user) pool.
    pub pool_size: Option<u64>,
    /// `min_pool_size`.
    pub min_pool_size: Option<u64>,
    /// `reserve_pool` (`reserve_pool_size` in newer releases).
    pub reserve_pool: Option<u64>,
    /// `max_connections` (0 = unlimited).
    pub max_connections: Option<u64>,
    /// `current_connections`: server connections to this database.
    pub current_connections: Option<u64>,
    /// `paused`.
    pub paused: Option<bool>,
    /// `disabled`.
    pub disabled: Option<bool>,
}

/// Rows of `SHOW POOLS`, and how many values did not parse. Rows without a
/// database or user name are skipped (and counted).
pub fn parse_pools(table: &Table) -> (Vec<Pool>, usize) {
    table.parse_rows(|r, bad| {
        let (database, user) = (r.string("database")?, r.string("user")?);
        let maxwait_s = r.uint("maxwait", bad);
        let maxwait_us = r.uint("maxwait_us", bad);
        let maxwait_seconds = match (maxwait_s, maxwait_us) {
            (None, None) => None,
            (s, us) => Some(s.unwrap_or(0) as f64 + us.unwrap_or(0) as f64 / 1e6),
        };
        Some(Pool {
            database,
            user,
            cl_active: r.uint("cl_active", bad),
            cl_waiting: r.uint("cl_waiting", bad),
            sv_active: r.uint("sv_active", bad),
            sv_idle: r.uint("sv_idle", bad),
            sv_used: r.uint("sv_used", bad),
            sv_tested: r.uint("sv_tested", bad),
            sv_login: r.uint("sv_login", bad),
            maxwait_seconds,
            pool_mode: r.string("pool_mode"),
        })
    })
}

/// Rows of `SHOW STATS`, and how many values did not parse.
pub fn parse_stats(table: &Table) -> (Vec<Stats>, usize) {
    table.parse_rows(|r, bad| {
        Some(Stats {
            database: r.string("database")?,
            xact_count: r.uint("total_xact_count", bad),
            query_count: r.uint_any(&["total_query_count", "total_requests"], bad),
            received_bytes: r.uint("total_received", bad),
            sent_bytes: r.uint("total_sent", bad),
            xact_time_us: r.uint("total_xact_time", bad),
            query_time_us: r.uint("total_query_time", bad),
            wait_time_us: r.uint("total_wait_time", bad),
        })
    })
}

/// Rows of `SHOW DATABASES`, and how many values did not parse.
pub fn parse_databases(table: &Table) -> (Vec<Database>, usize) {
    table.parse_rows(|r, bad| {
        Some(Database {
            name: r.string("name")?,
            backend_database: r.string("database"),
            pool_size: r.uint("pool_size", bad),
            min_pool_size: r.uint("min_pool_size", bad),
            reserve_pool: r.uint_any(&["reserve_pool", "reserve_pool_size"], bad),
            max_connections: r.uint("max_connections", bad),
            current_connections: r.uint("current_connections", bad),
            paused: r.flag("paused", bad),
            disabled: r.flag("disabled", bad),
        })
    })
}

/// The version from `SHOW VERSION` (`PgBouncer 1.18.0` → `1.18.0`), if the
/// reply has a `version` column.
pub fn parse_version(table: &Table) -> Option<String> {
    let r = table.reader().next()?;
    let v = r.text("version")?.trim();
    let v = v.strip_prefix("PgBouncer").map_or(v, str::trim);
    let v = v.split_whitespace().next().unwrap_or(v);
    (!v.is_empty()).then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SHOW POOLS` column sets of several releases.
    const POOLS_1_7: &[&str] = &[
        "database",
        "user",
        "cl_active",
        "cl_waiting",
        "sv_active",
        "sv_idle",
        "sv_used",
        "sv_tested",
        "sv_login",
        "maxwait",
    ];
    const POOLS_1_12: &[&str] = &[
        "database",
        "user",
        "cl_active",
        "cl_waiting",
        "sv_active",
        "sv_idle",
        "sv_used",
        "sv_tested",
        "sv_login",
        "maxwait",
        "maxwait_us",
        "pool_mode",
    ];
    const POOLS_1_18: &[&str] = &[
        "database",
        "user",
        "cl_active",
        "cl_waiting",
        "cl_cancel_req",
        "sv_active",
        "sv_idle",
        "sv_used",
        "sv_tested",
        "sv_login",
        "maxwait",
        "maxwait_us",
        "pool_mode",
    ];
    const POOLS_1_23: &[&str] = &[
        "database",
        "user",
        "cl_active",
        "cl_waiting",
        "cl_active_cancel_req",
        "cl_waiting_cancel_req",
        "sv_active",
        "sv_active_cancel",
        "sv_being_canceled",
        "sv_idle",
        "sv_used",
        "sv_tested",
        "sv_login",
        "maxwait",
        "maxwait_us",
        "pool_mode",
        "load_balance_hosts",
    ];

    #[test]
    fn pools_across_versions() {
        struct Case {
            name: &'static str,
            columns: &'static [&'static str],
            row: &'static [&'static str],
            want: Pool,
        }
        let base = Pool {
            database: "app".into(),
            user: "web".into(),
            cl_active: Some(2),
            cl_waiting: Some(3),
            sv_active: Some(2),
            sv_idle: Some(0),
            sv_used: Some(1),
            sv_tested: Some(0),
            sv_login: Some(0),
            maxwait_seconds: Some(1.25),
            pool_mode: Some("session".into()),
        };
        let cases = [
            Case {
                name: "1.7: no maxwait_us, no pool_mode",
                columns: POOLS_1_7,
                row: &["app", "web", "2", "3", "2", "0", "1", "0", "0", "4"],
                want: Pool {
                    maxwait_seconds: Some(4.0),
                    pool_mode: None,
                    ..base.clone()
                },
            },
            Case {
                name: "1.12",
                columns: POOLS_1_12,
                row: &[
                    "app", "web", "2", "3", "2", "0", "1", "0", "0", "1", "250000", "session",
                ],
                want: base.clone(),
            },
            Case {
                name: "1.18: cl_cancel_req ignored",
                columns: POOLS_1_18,
                row: &[
                    "app", "web", "2", "3", "9", "2", "0", "1", "0", "0", "1", "250000", "session",
                ],
                want: base.clone(),
            },
            Case {
                name: "1.23: cancel columns and load_balance_hosts ignored",
                columns: POOLS_1_23,
                row: &[
                    "app", "web", "2", "3", "9", "9", "2", "9", "9", "0", "1", "0", "0", "1",
                    "250000", "session", "",
                ],
                want: base.clone(),
            },
            Case {
                name: "microseconds only",
                columns: POOLS_1_12,
                row: &[
                    "app", "web", "2", "3", "2", "0", "1", "0", "0", "0", "7", "session",
                ],
                want: Pool {
                    maxwait_seconds: Some(0.000007),
                    ..base.clone()
                },
            },
        ];
        for c in cases {
            let (pools, bad) = parse_pools(&Table::from_text(c.columns, &[c.row]));
            assert_eq!(bad, 0, "{}", c.name);
            assert_eq!(pools, vec![c.want], "{}", c.name);
        }
    }

    #[test]
    fn pools_tolerate_reordered_missing_and_bad_columns() {
        let t = Table::from_text(
            &["sv_active", "user", "extra", "database", "cl_waiting"],
            &[
                &["1", "u", "whatever", "d", "x"],
                &["2", "u2", "", "d2", ""],
            ],
        );
        let (pools, bad) = parse_pools(&t);
        assert_eq!(bad, 1, "cl_waiting=x");
        assert_eq!(pools.len(), 2);
        assert_eq!(pools[0].database, "d");
        assert_eq!(pools[0].sv_active, Some(1));
        assert_eq!(pools[0].cl_waiting, None);
        assert_eq!(pools[0].cl_active, None, "missing column");
        assert_eq!(pools[0].maxwait_seconds, None);
        assert_eq!(pools[1].cl_waiting, None, "empty value");
    }

    #[test]
    fn pools_without_names_are_skipped() {
        let mut t = Table::from_text(&["database", "user", "cl_active"], &[]);
        t.push_row(vec![None, Some("u".into()), Some("1".into())]);
        t.push_row(vec![Some("d".into()), Some("u".into()), None]);
        let (pools, bad) = parse_pools(&t);
        assert_eq!(bad, 1);
        assert_eq!(pools.len(), 1);
        assert_eq!(pools[0].cl_active, None, "NULL");
    }

    #[test]
    fn stats_across_versions() {
        let cases: &[(&str, &[&str], &[&str], Stats)] = &[
            (
                "1.7: total_requests",
                &[
                    "database",
                    "total_requests",
                    "total_received",
                    "total_sent",
                    "total_query_time",
                    "avg_req",
                ],
                &["app", "10", "100", "200", "5000", "1"],
                Stats {
                    database: "app".into(),
                    query_count: Some(10),
                    received_bytes: Some(100),
                    sent_bytes: Some(200),
                    query_time_us: Some(5000),
                    ..Stats::default()
                },
            ),
            (
                "1.18",
                &[
                    "database",
                    "total_xact_count",
                    "total_query_count",
                    "total_received",
                    "total_sent",
                    "total_xact_time",
                    "total_query_time",
                    "total_wait_time",
                    "avg_xact_count",
                    "avg_query_count",
                    "avg_recv",
                    "avg_sent",
                    "avg_xact_time",
                    "avg_query_time",
                    "avg_wait_time",
                ],
                &[
                    "app", "4", "12", "300", "400", "9000", "8000", "3000000", "0", "0", "0", "0",
                    "0", "0", "0",
                ],
                Stats {
                    database: "app".into(),
                    xact_count: Some(4),
                    query_count: Some(12),
                    received_bytes: Some(300),
                    sent_bytes: Some(400),
                    xact_time_us: Some(9000),
                    query_time_us: Some(8000),
                    wait_time_us: Some(3_000_000),
                },
            ),
            (
                "1.24: server assignment and parse counts ignored",
                &[
                    "database",
                    "total_server_assignment_count",
                    "total_xact_count",
                    "total_query_count",
                    "total_client_parse_count",
                    "total_wait_time",
                ],
                &["app", "50", "4", "12", "7", "1"],
                Stats {
                    database: "app".into(),
                    xact_count: Some(4),
                    query_count: Some(12),
                    wait_time_us: Some(1),
                    ..Stats::default()
                },
            ),
        ];
        for (name, columns, row, want) in cases {
            let (stats, bad) = parse_stats(&Table::from_text(columns, &[row]));
            assert_eq!(bad, 0, "{name}");
            assert_eq!(&stats, std::slice::from_ref(want), "{name}");
        }
    }

    #[test]
    fn databases_across_versions() {
        let cases: &[(&str, &[&str], &[&str], Database)] = &[
            (
                "1.18",
                &[
                    "name",
                    "host",
                    "port",
                    "database",
                    "force_user",
                    "pool_size",
                    "min_pool_size",
                    "reserve_pool",
                    "pool_mode",
                    "max_connections",
                    "current_connections",
                    "paused",
                    "disabled",
                ],
                &[
                    "app",
                    "127.0.0.1",
                    "5432",
                    "appdb",
                    "",
                    "2",
                    "0",
                    "0",
                    "",
                    "0",
                    "2",
                    "0",
                    "1",
                ],
                Database {
                    name: "app".into(),
                    backend_database: Some("appdb".into()),
                    pool_size: Some(2),
                    min_pool_size: Some(0),
                    reserve_pool: Some(0),
                    max_connections: Some(0),
                    current_connections: Some(2),
                    paused: Some(false),
                    disabled: Some(true),
                },
            ),
            (
                "1.24: reserve_pool_size, extra columns",
                &[
                    "name",
                    "database",
                    "pool_size",
                    "reserve_pool_size",
                    "server_lifetime",
                    "load_balance_hosts",
                    "max_client_connections",
                    "current_client_connections",
                    "paused",
                ],
                &["app", "appdb", "20", "5", "3600", "", "0", "7", "1"],
                Database {
                    name: "app".into(),
                    backend_database: Some("appdb".into()),
                    pool_size: Some(20),
                    reserve_pool: Some(5),
                    paused: Some(true),
                    ..Database::default()
                },
            ),
        ];
        for (name, columns, row, want) in cases {
            let (dbs, bad) = parse_databases(&Table::from_text(columns, &[row]));
            assert_eq!(bad, 0, "{name}");
            assert_eq!(&dbs, std::slice::from_ref(want), "{name}");
        }
    }

    #[test]
    fn version_table() {
        let cases = [
            ("PgBouncer 1.18.0", Some("1.18.0")),
            ("PgBouncer 1.23.1 (git abc)", Some("1.23.1")),
            ("1.9.0", Some("1.9.0")),
            ("", None),
        ];
        for (text, want) in cases {
            let t = Table::from_text(&["version"], &[&[text]]);
            assert_eq!(parse_version(&t).as_deref(), want, "{text:?}");
        }
        assert_eq!(parse_version(&Table::default()), None);
    }
}
