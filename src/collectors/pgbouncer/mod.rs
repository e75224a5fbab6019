//! The PgBouncer collector: pools, stats and saturation from the admin console.
//!
//! Per poll, on one persistent connection to the admin console (the
//! `pgbouncer` database): `SHOW POOLS`, `SHOW STATS`, `SHOW DATABASES` (and
//! `SHOW VERSION` once per connection). The admin console only speaks the
//! simple query protocol (it rejects Parse/Bind), so every command goes
//! through `sqlx::raw_sql`, which sends a plain `Query` message and gets every
//! value back as text; sqlx sends no query of its own on connect. The startup
//! packet leaves out `extra_float_digits` (PgBouncer refuses unknown startup
//! parameters unless `ignore_startup_parameters` lists them).
//!
//! Layout: `config.rs` (the `[[pgbouncer]]` table), `parse.rs` (pure `SHOW`
//! parsing by column name), `metrics.rs` (pure metric mapping, bounded
//! series, saturation), this file (connection, error classification).

pub mod catalog;
pub mod config;
pub(crate) mod metrics;
pub(crate) mod parse;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Connection, Row, ValueRef};

pub use config::{PgbouncerConfig, PgbouncerReady, PgbouncerTarget};
use metrics::Snapshot;
use parse::Table;

use crate::exposition::Families;
use crate::poll::Timing;
use crate::poll::{Collector, ErrorReason, PollError, PollOutput};

/// A running PgBouncer collector.
pub struct PgbouncerCollector {
    cfg: PgbouncerTarget,
    timing: Timing,
    conn: Option<Live>,
    /// A connection was attempted before: read `password_file` again.
    reconnecting: bool,
    malformed_values: u64,
}

struct Live {
    conn: PgConnection,
    version: Option<String>,
}

impl PgbouncerCollector {
    /// A collector that connects on its first poll.
    pub fn new(cfg: &PgbouncerTarget, timing: Timing) -> Self {
        Self {
            cfg: cfg.clone(),
            timing,
            conn: None,
            reconnecting: false,
            malformed_values: 0,
        }
    }

    fn err(&self, reason: ErrorReason, detail: impl AsRef<str>) -> PollError {
        let msg = format!(
            "pgbouncer target \"{}\": {}",
            self.cfg.common.name,
            self.cfg.ready.redact(detail.as_ref())
        );
        PollError::new(reason, msg)
    }

    fn classify(&self, what: &str, e: &sqlx::Error, connecting: bool) -> PollError {
        let (reason, detail) = classify(e, connecting);
        // Commands in lowercase, like the rest of the message.
        self.err(reason, format!("{}: {detail}", what.to_ascii_lowercase()))
    }

    async fn connect(&mut self) -> Result<Live, PollError> {
        let reread_secret = std::mem::replace(&mut self.reconnecting, true);
        let opts = self
            .cfg
            .connect_options(reread_secret)
            .map_err(|e| self.err(ErrorReason::Io, e))?;
        let mut conn = PgConnection::connect_with(&opts).await.map_err(|e| {
            let (reason, detail) = classify(&e, true);
            self.err(
                reason,
                format!(
                    "connecting to {}:{} as \"{}\": {detail}",
                    opts.get_host(),
                    opts.get_port(),
                    opts.get_username()
                ),
            )
        })?;
        let version = show(&mut conn, "SHOW VERSION")
            .await
            .map_err(|e| self.classify("SHOW VERSION", &e, false))
            .map(|t| parse::parse_version(&t))?;
        tracing::debug!(
            target_name = %self.cfg.common.name,
            version = version.as_deref().unwrap_or("?"),
            timeout = ?self.timing.timeout,
            "connected to pgbouncer"
        );
        Ok(Live { conn, version })
    }

    /// Reads the three `SHOW`s. The connection is taken out for the poll and
    /// put back only after a success, so any error (or a timeout that drops
    /// this future) closes it and the next poll reconnects.
    async fn read(&mut self) -> Result<Snapshot, PollError> {
        let mut live = match self.conn.take() {
            Some(live) => live,
            None => self.connect().await?,
        };
        let mut tables = Vec::with_capacity(3);
        for cmd in ["SHOW POOLS", "SHOW STATS", "SHOW DATABASES"] {
            let table = show(&mut live.conn, cmd)
                .await
                .map_err(|e| self.classify(cmd, &e, false))?;
            tables.push(table);
        }
        let version = live.version.clone();
        let (pools, b1) = parse::parse_pools(&tables[0]);
        let (stats, b2) = parse::parse_stats(&tables[1]);
        let (databases, b3) = parse::parse_databases(&tables[2]);
        self.malformed_values += (b1 + b2 + b3) as u64;
        if tables[0].rows.is_empty() && tables[2].rows.is_empty() {
            // The admin console always lists itself; nothing at all means we
            // are not talking to PgBouncer's admin console.
            return Err(self.err(
                ErrorReason::Protocol,
                "show pools and show databases returned no rows (is the dsn's database \"pgbouncer\"?)",
            ));
        }
        self.conn = Some(live);
        Ok(Snapshot {
            version,
            pools,
            stats,
            databases,
        })
    }
}

impl Collector for PgbouncerCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        let snapshot = self.read().await?;
        let mut families = Families::new();
        let target = self.cfg.common.name.as_str();
        let summary = metrics::export(&snapshot, target, self.cfg.max_pools, &mut families);
        families.counter(
            &catalog::MALFORMED_VALUES_TOTAL,
            &[("target", target)],
            self.malformed_values as f64,
        );
        let mut headline = vec![
            (
                "version".to_owned(),
                snapshot.version.clone().unwrap_or_else(|| "?".into()),
            ),
            (
                "clients active / waiting".to_owned(),
                format!("{} / {}", summary.active, summary.waiting),
            ),
        ];
        if let Some(s) = summary.max_saturation {
            headline.push(("pool saturation".into(), format!("{:.0} %", s * 100.0)));
        }
        Ok(PollOutput { families, headline })
    }

    fn reset(&mut self) {
        self.conn = None;
    }
}

/// Runs one admin console command with the simple query protocol and returns
/// its rows as text.
async fn show(conn: &mut PgConnection, command: &'static str) -> Result<Table, sqlx::Error> {
    let rows: Vec<PgRow> = sqlx::raw_sql(command).fetch_all(&mut *conn).await?;
    let mut table = Table::default();
    if let Some(first) = rows.first() {
        table.columns = first
            .columns()
            .iter()
            .map(|c| sqlx::Column::name(c).to_owned())
            .collect();
    }
    for row in &rows {
        let mut values = Vec::with_capacity(table.columns.len());
        for i in 0..table.columns.len() {
            let raw = row.try_get_raw(i)?;
            values.push(if raw.is_null() {
                None
            } else {
                // Names can be any bytes; labels must be UTF-8.
                let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
                Some(String::from_utf8_lossy(bytes).into_owned())
            });
        }
        table.push_row(values);
    }
    Ok(table)
}

/// Maps an sqlx error to a reason and a lowercase detail (no password: the
/// caller redacts). `connecting`: the error ended the startup, so a server
/// error that is not about credentials or privileges is a connect failure.
fn classify(e: &sqlx::Error, connecting: bool) -> (ErrorReason, String) {
    use sqlx::Error as E;
    if let Some(tls) = crate::tls::describe_sqlx_failure(e) {
        return (ErrorReason::Tls, tls);
    }
    let reason = match e {
        E::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => ErrorReason::Timeout,
        E::Io(_) | E::Tls(_) | E::Configuration(_) => ErrorReason::Connect,
        E::PoolTimedOut => ErrorReason::Timeout,
        E::Database(db) => {
            let code = db.code().unwrap_or_default();
            let msg = db.message().to_ascii_lowercase();
            if code == "28P01"
                || code == "28000"
                || msg.contains("authentication failed")
                || msg.contains("no such user")
            {
                ErrorReason::Auth
            } else if code == "42501"
                || msg.contains("admin access needed")
                || msg.contains("not allowed")
                || msg.contains("permission denied")
            {
                ErrorReason::Permission
            } else if connecting
                || msg.contains("no more connections allowed")
                || msg.contains("pgbouncer cannot connect")
            {
                // PgBouncer refused the session for some other reason
                // (client limit, shutting down, unknown database).
                ErrorReason::Connect
            } else {
                ErrorReason::Query
            }
        }
        _ => ErrorReason::Protocol,
    };
    let detail = match e {
        E::Database(db) => match db.code() {
            Some(code) => format!("server error {code}: {}", db.message()),
            None => format!("server error: {}", db.message()),
        },
        E::Io(io) => format!("i/o error: {io}"),
        other => other.to_string(),
    };
    (reason, lowercase_first(&detail))
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_io_errors() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let (reason, detail) = classify(&refused, false);
        assert_eq!(reason, ErrorReason::Connect);
        assert!(detail.starts_with("i/o error"), "{detail}");
        let timed_out = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(classify(&timed_out, false).0, ErrorReason::Timeout);
        assert_eq!(
            classify(&sqlx::Error::Protocol("Weird".into()), false),
            (
                ErrorReason::Protocol,
                "encountered unexpected or invalid data: Weird".into()
            )
        );
    }
}
