//! One slow query as any log format describes it.

/// A parsed slow-query event.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowEvent {
    /// Database (schema), when the log says.
    pub db: Option<String>,
    /// User, when the log says.
    pub user: Option<String>,
    /// Execution time, seconds.
    pub duration: f64,
    /// Lock wait, seconds.
    pub lock_time: f64,
    /// Rows sent to the client.
    pub rows_sent: u64,
    /// Rows examined.
    pub rows_examined: u64,
    /// The server says it was a full table scan (no index).
    pub full_scan: bool,
    /// 1 unless the server sampled (Percona `Log_slow_rate_limit`): each logged
    /// event then stands for this many.
    pub sample_rate: u32,
    /// Statement text: a bounded sample with the fingerprint of the whole
    /// statement. A statement longer than the cap (`max_line_bytes`) is
    /// read as it streams and reduced (a long literal to its quotes, a long
    /// list of literals to `(?)`), so its class is right whatever its size.
    pub query: String,
    /// Whether text the fingerprint needed was lost: the line was cut
    /// without its rest (the log or a reader cut it), or the statement
    /// could not be reduced within the cap. The event (count, timing) is
    /// still counted; its class is that of the text kept. A statement read
    /// whole and reduced is not truncated: its kept sample is shorter than
    /// the statement, its class is not wrong.
    pub truncated: bool,
}

/// `s` in the buffer taken from `buf` (left empty until it comes back): how
/// the parsers reuse a digested event's strings for the next one.
pub(crate) fn refill(buf: &mut String, s: &str) -> String {
    let mut out = std::mem::take(buf);
    out.clear();
    out.push_str(s);
    out
}

/// Keeps `s` in `buf` for a later [`refill`] unless `buf` already holds a
/// larger buffer (a message without text must not drop the one kept).
pub(crate) fn give_back(buf: &mut String, s: String) {
    if s.capacity() > buf.capacity() {
        *buf = s;
    }
}

/// A digested event's strings, kept by a parser to hold the next event's
/// (three allocations and frees less an event).
#[derive(Debug, Default)]
pub(crate) struct EventBuffers {
    /// The statement's.
    pub(crate) query: String,
    /// The database's.
    pub(crate) db: String,
    /// The user's.
    pub(crate) user: String,
}

impl EventBuffers {
    /// Keeps `e`'s strings for the next event (see [`give_back`]).
    pub(crate) fn take_back(&mut self, e: SlowEvent) {
        give_back(&mut self.query, e.query);
        if let Some(db) = e.db {
            give_back(&mut self.db, db);
        }
        if let Some(user) = e.user {
            give_back(&mut self.user, user);
        }
    }
}
