//! The MySQL collector's connection: one per target, opened lazily and kept
//! (a pool of one). A new connection first runs `SELECT VERSION(), …` and a
//! `SET SESSION` giving every statement a server-side limit below the poll
//! timeout (`max_statement_time` on MariaDB, `max_execution_time` on MySQL)
//! and `lock_wait_timeout` ≥ 1 s, so a query stuck behind a metadata lock is
//! stopped by the server instead of piling up. A reused connection found
//! dead on the first statement of a poll is replaced once.

use std::time::Instant;

use sqlx::Connection;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlRow};

use super::MysqlCollector;
use super::sql::{fetch, text};
use super::status::{self, Flavor, Vars};
use crate::poll::{ErrorReason, PollError};
use crate::secret::read_secret_file;

/// Share of the poll timeout a statement may run on the server.
const STATEMENT_BUDGET: f64 = 0.8;

/// The open connection and what it told about the server.
pub(super) struct Live {
    pub(super) conn: MySqlConnection,
    pub(super) flavor: Flavor,
    pub(super) version: String,
    pub(super) version_comment: String,
    /// Whether a statement already succeeded on this connection (a failure
    /// of the first statement of a poll on a reused connection is retried
    /// once on a new connection: the server may have closed an idle one).
    used: bool,
    /// The last full `SHOW GLOBAL VARIABLES` read on this connection and
    /// when; `None` until the first poll (so a new connection reads them
    /// all).
    variables: Option<(Instant, Vars)>,
}

impl MysqlCollector {
    /// The options to connect with. `password_file` is read again at every
    /// connect (connections persist, so that is rare): a rotated secret (a
    /// Kubernetes secret mount) is picked up when the old session ends,
    /// without a reload.
    fn connect_options(&self) -> Result<MySqlConnectOptions, PollError> {
        let options = MySqlConnectOptions::clone(&self.options);
        match &self.cfg.password_file {
            Some(path) => {
                let pw = read_secret_file(path).map_err(|e| {
                    PollError::new(
                        ErrorReason::Io,
                        format!("mysql target \"{}\": {e}", self.cfg.common.name),
                    )
                })?;
                Ok(options.password(pw.expose()))
            }
            None => Ok(options),
        }
    }

    /// A poll error for a failure of `context`.
    pub(super) fn err(&self, context: &str, e: &sqlx::Error) -> PollError {
        let mut err = classify(&self.cfg.common.name, context, e);
        if err.reason == ErrorReason::Auth {
            err.message.push_str(self.cfg.ready.access_denied_hint);
        }
        err
    }

    /// Opens a connection and sets the session limits.
    pub(super) async fn connect(&mut self) -> Result<Live, PollError> {
        let name = self.cfg.common.name.clone();
        let timeout = self.timing.timeout;
        let options = self.connect_options()?;
        let mut conn =
            match tokio::time::timeout(timeout, MySqlConnection::connect_with(&options)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    return Err(self.err(&format!("connecting to {}", self.dsn_shown), &e));
                }
                Err(_) => {
                    return Err(PollError::new(
                        ErrorReason::Timeout,
                        format!(
                            "mysql target \"{name}\": connecting to {} did not finish within {}",
                            self.dsn_shown,
                            humantime::format_duration(timeout)
                        ),
                    ));
                }
            };
        self.connects += 1;
        let rows = fetch(
            &mut conn,
            "SELECT VERSION(), @@version_comment, CONNECTION_ID()".into(),
            &mut self.statements,
        )
        .await
        .map_err(|e| self.err("reading the server version", &e))?;
        let row = rows.first();
        let version = row.and_then(|r| text(r, 0)).unwrap_or_default();
        let version_comment = row.and_then(|r| text(r, 1)).unwrap_or_default();
        let id = row.and_then(|r| text(r, 2)).unwrap_or_default();
        let flavor = Flavor::detect(&version, &version_comment);
        let budget = timeout.mul_f64(STATEMENT_BUDGET);
        fetch(
            &mut conn,
            status::session_sql(flavor, budget),
            &mut self.statements,
        )
        .await
        .map_err(|e| self.err("setting session timeouts", &e))?;
        tracing::debug!(target_name = %name, %version, connection_id = %id, "connected to mysql");
        Ok(Live {
            conn,
            flavor,
            version,
            version_comment,
            used: false,
            variables: None,
        })
    }

    /// Status and variables, retrying once on a fresh connection when a
    /// reused one turns out to be dead.
    pub(super) async fn read_status(&mut self, live: &mut Live) -> Result<(Vars, Vars), PollError> {
        let result = self.read_status_once(live).await;
        match result {
            Err(e) if live.used && matches!(e, sqlx::Error::Io(_)) => {
                tracing::debug!(target_name = %self.cfg.common.name, error = %e, "reused connection is dead, reconnecting");
                *live = self.connect().await?;
                self.read_status_once(live)
                    .await
                    .map_err(|e| self.err("reading global status", &e))
            }
            r => r.map_err(|e| self.err("reading global status", &e)),
        }
    }

    /// One status statement and one variables statement: all variables on
    /// a new connection and every `FULL_VARIABLES_EVERY`, otherwise the few
    /// perfwatch judges by, laid over the last full read. The variables
    /// returned are always the full set.
    async fn read_status_once(&mut self, live: &mut Live) -> Result<(Vars, Vars), sqlx::Error> {
        let s = fetch(
            &mut live.conn,
            status::STATUS_SQL.into(),
            &mut self.statements,
        )
        .await?;
        let full_due = live
            .variables
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= status::FULL_VARIABLES_EVERY);
        let sql = if full_due {
            status::ALL_VARIABLES_SQL.into()
        } else {
            status::variables_sql()
        };
        let v = fetch(&mut live.conn, sql, &mut self.statements).await?;
        live.used = true;
        let pairs = |rows: Vec<MySqlRow>| {
            Vars::from_rows(
                rows.iter()
                    .filter_map(|r| Some((text(r, 0)?, text(r, 1).unwrap_or_default()))),
            )
        };
        let fresh = pairs(v);
        let vars = match &mut live.variables {
            Some((_, all)) if !full_due => {
                all.overlay(&fresh);
                all.clone()
            }
            slot => {
                *slot = Some((Instant::now(), fresh.clone()));
                fresh
            }
        };
        Ok((pairs(s), vars))
    }
}

/// Maps an sqlx error to a reason and a message naming the target.
fn classify(target: &str, context: &str, e: &sqlx::Error) -> PollError {
    if let Some(tls) = crate::tls::describe_sqlx_failure(e) {
        return PollError::new(
            ErrorReason::Tls,
            format!("mysql target \"{target}\": {context}: {tls}"),
        );
    }
    let reason = match e {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<MySqlDatabaseError>() {
            Some(m) => status::reason_for_error_number(m.number()),
            None => ErrorReason::Query,
        },
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => ErrorReason::Timeout,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => ErrorReason::Connect,
        sqlx::Error::PoolTimedOut => ErrorReason::Timeout,
        // sqlx cannot log in the way the server asks (e.g. an auth plugin it
        // was built without): the session never started, no query ran.
        sqlx::Error::Configuration(_) => ErrorReason::Connect,
        sqlx::Error::Protocol(_) | sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => {
            ErrorReason::Protocol
        }
        _ => ErrorReason::Query,
    };
    let detail = match e {
        sqlx::Error::Database(db) => {
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|m| m.number().to_string())
                .unwrap_or_default();
            format!("server error {number}: {}", db.message())
        }
        other => other.to_string(),
    };
    PollError::new(
        reason,
        format!("mysql target \"{target}\": {context}: {detail}"),
    )
}
