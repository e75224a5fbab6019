//! The PostgreSQL collector's sessions: one persistent `PgConnection` per
//! database, with the session settings that keep perfwatch from piling up
//! work on a struggling server, and the recovery rules after a failure.
//!
//! Why not a pool: a refused connection must show as `connect` at once, not
//! as a pool timeout. Every session is tagged `application_name=perfwatch`
//! (so our own sessions are excluded from the counts) and started with
//! `statement_timeout` (80 % of the poll timeout), `lock_timeout` (a fifth
//! of it unless configured) and `idle_in_transaction_session_timeout` as
//! startup options, so a held lock or a slow catalog fails our statement
//! instead of piling up sessions. After a timeout or error a session is not
//! dropped but marked dirty and drained with a ping before its next use
//! (dropped only if that fails), so a query still running on the server is
//! never joined by a second session.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::config::PostgresTarget;
use super::rules;
use crate::poll::{ErrorReason, PollError, Timing};
use crate::secret::{Secret, read_secret_file, redact};

/// A boxed future borrowing a connection.
pub(super) type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// One persistent session to one database.
struct Session {
    conn: PgConnection,
    /// A poll was dropped or failed while using it: drain it before use.
    dirty: bool,
}

/// Why an operation failed: the server said so, or our own deadline passed.
pub(super) enum Fail {
    Sql(sqlx::Error),
    Deadline(Duration),
    /// `password_file` could not be read at connect.
    Secret(String),
}

impl Fail {
    /// The reason label.
    pub(super) fn reason(&self) -> ErrorReason {
        match self {
            Fail::Deadline(_) => ErrorReason::Timeout,
            Fail::Sql(e) => classify(e),
            Fail::Secret(_) => ErrorReason::Io,
        }
    }

    /// Whether the error means the session is gone (network, server
    /// shutdown), rather than a statement failing on a live one.
    pub(super) fn is_broken_session(&self) -> bool {
        matches!(self, Fail::Sql(_)) && self.reason() == ErrorReason::Connect
    }
}

/// The sessions of one target, by database.
pub(super) struct Sessions {
    /// The target's name, for messages and logs.
    name: String,
    /// The DSN's options (password applied), before the per-session settings.
    options: PgConnectOptions,
    /// The resolved password, redacted from driver messages.
    password: Option<Secret>,
    /// Read again at every connect (sessions persist, so that is rare): a
    /// rotated secret (a Kubernetes secret mount) is picked up when the old
    /// session ends, without a reload.
    password_file: Option<PathBuf>,
    lock_timeout: Option<Duration>,
    timing: Timing,
    map: BTreeMap<String, Session>,
}

impl Sessions {
    /// No session yet; each is opened on first use.
    pub(super) fn new(target: &PostgresTarget, timing: Timing) -> Self {
        Self {
            name: target.common.name.clone(),
            options: PgConnectOptions::clone(&target.ready.options),
            password: target.ready.password.clone(),
            password_file: target.config.password_file.clone(),
            lock_timeout: target.config.lock_timeout,
            timing,
            map: BTreeMap::new(),
        }
    }

    /// The server-side limit of one statement: 80 % of the poll timeout.
    pub(super) fn statement_timeout(&self) -> Duration {
        self.timing
            .timeout
            .mul_f64(0.8)
            .max(Duration::from_millis(1))
    }

    fn lock_timeout(&self) -> Duration {
        self.lock_timeout
            .unwrap_or(self.timing.timeout / 5)
            .max(Duration::from_millis(1))
    }

    /// `postgres target "name"`, the start of every message.
    pub(super) fn prefix(&self) -> String {
        format!("postgres target \"{}\"", self.name)
    }

    /// Connection options for `database`, with the session settings.
    fn options(&self, database: &str) -> PgConnectOptions {
        let ms = |d: Duration| d.as_millis().max(1).to_string();
        let idle_tx = self.timing.interval + self.timing.timeout;
        self.options
            .clone()
            .database(database)
            .application_name("perfwatch")
            .options([
                ("statement_timeout", ms(self.statement_timeout())),
                ("lock_timeout", ms(self.lock_timeout())),
                ("idle_in_transaction_session_timeout", ms(idle_tx)),
            ])
            .log_statements(tracing::log::LevelFilter::Trace)
    }

    /// A driver message with URLs and the password masked.
    fn scrub(&self, msg: &str) -> String {
        let secrets: Vec<&str> = self.password.iter().map(Secret::expose).collect();
        redact(msg, &secrets)
    }

    /// `prefix: what: detail`, never containing a secret.
    pub(super) fn fail_message(&self, what: &str, e: &Fail) -> String {
        match e {
            Fail::Deadline(d) => format!(
                "{}: {what}: no answer within {}",
                self.prefix(),
                humantime::format_duration(*d)
            ),
            Fail::Sql(e) => match crate::tls::describe_sqlx_failure(e) {
                Some(tls) => format!("{}: {what}: {tls}", self.prefix()),
                None => format!("{}: {what}: {}", self.prefix(), self.scrub(&e.to_string())),
            },
            Fail::Secret(e) => format!("{}: {what}: {e}", self.prefix()),
        }
    }

    /// The poll error for a failure of `what`.
    pub(super) fn poll_error(&self, what: &str, e: &Fail) -> PollError {
        PollError::new(e.reason(), self.fail_message(what, e))
    }

    /// A ready session to `database` (connecting or draining as needed),
    /// within `budget`.
    pub(super) async fn ensure(&mut self, database: &str, budget: Duration) -> Result<(), Fail> {
        if let Some(s) = self.map.get_mut(database) {
            if !s.dirty {
                return Ok(());
            }
            match tokio::time::timeout(budget, s.conn.ping()).await {
                Ok(Ok(())) => {
                    s.dirty = false;
                    return Ok(());
                }
                _ => {
                    tracing::debug!(target_name = %self.name, database, "dropping a postgres session that did not recover");
                    self.map.remove(database);
                }
            }
        }
        if let Some(path) = &self.password_file {
            let pw = read_secret_file(path).map_err(Fail::Secret)?;
            self.options = self.options.clone().password(pw.expose());
            self.password = Some(pw);
        }
        let opts = self.options(database);
        let conn = match tokio::time::timeout(budget, opts.connect()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(Fail::Sql(e)),
            Err(_) => return Err(Fail::Deadline(budget)),
        };
        tracing::debug!(target_name = %self.name, database, "connected to postgres");
        self.map
            .insert(database.to_owned(), Session { conn, dirty: false });
        Ok(())
    }

    /// Runs `f` on the session of `database` under `budget`; marks it dirty
    /// when the run fails or is cut short.
    pub(super) async fn run<T>(
        &mut self,
        database: &str,
        budget: Duration,
        f: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> Result<T, Fail> {
        let started = Instant::now();
        self.ensure(database, budget).await?;
        let left = budget.saturating_sub(started.elapsed());
        let s = self.map.get_mut(database).expect("ensure() inserted it");
        s.dirty = true;
        let r = match tokio::time::timeout(left, f(&mut s.conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Fail::Sql(e)),
            Err(_) => Err(Fail::Deadline(budget)),
        };
        if r.is_ok() {
            s.dirty = false;
        } else if let Err(Fail::Sql(e)) = &r
            && matches!(e, sqlx::Error::Database(_))
        {
            // The server answered with an error: the session is in sync.
            s.dirty = false;
        }
        r
    }

    /// Drops the session of `db` after an error that means it is gone
    /// (network, server shutdown); others keep it.
    pub(super) fn forget_broken(&mut self, db: &str, e: &Fail) {
        if e.is_broken_session() {
            self.map.remove(db);
        }
    }

    /// Drops the session of `db` after a failed connect (a deadline keeps
    /// it: the attempt may still be under way on the server).
    pub(super) fn forget_failed_connect(&mut self, db: &str, e: &Fail) {
        if matches!(e, Fail::Sql(_)) {
            self.map.remove(db);
        }
    }

    /// Keeps only the sessions of databases `keep` accepts.
    pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.map.retain(|d, _| keep(d));
    }

    /// After a cut-off poll: keep the sessions (a query may still run on
    /// them; a new session would add to the server's count) but drain them
    /// before reuse.
    pub(super) fn mark_all_dirty(&mut self) {
        for s in self.map.values_mut() {
            s.dirty = true;
        }
    }
}

/// Maps a sqlx error to a reason.
fn classify(e: &sqlx::Error) -> ErrorReason {
    if crate::tls::describe_sqlx_failure(e).is_some() {
        return ErrorReason::Tls;
    }
    match e {
        sqlx::Error::Database(d) => d
            .code()
            .map_or(ErrorReason::Query, |c| rules::classify_sqlstate(&c)),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => {
            ErrorReason::Connect
        }
        sqlx::Error::PoolTimedOut => ErrorReason::Timeout,
        sqlx::Error::Protocol(_) => ErrorReason::Protocol,
        _ => ErrorReason::Query,
    }
}
