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
