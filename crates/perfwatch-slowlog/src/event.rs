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
    /// Statement text (possibly truncated).
    pub query: String,
    /// Whether the text was cut at the configured cap.
    pub truncated: bool,
}
