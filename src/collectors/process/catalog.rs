//! Every family the process collector exports, declared once (see
//! [`crate::catalog`]).

crate::metric_catalog! {
    /// Everything the process collector exports.
    pub const ALL;
    COUNT = Gauge(
        "perfwatch_process_count",
        ["target"],
        "Processes whose command line matches the target's regex."
    );
    CPU_SECONDS_TOTAL = Counter(
        "perfwatch_process_cpu_seconds_total",
        ["target"],
        "CPU time of the matched processes, including processes that have exited since perfwatch started."
    );
    RESIDENT_MEMORY_BYTES = Gauge(
        "perfwatch_process_resident_memory_bytes",
        ["target"],
        "Summed resident memory of the matched processes."
    );
    MAX_RESIDENT_MEMORY_BYTES = Gauge(
        "perfwatch_process_max_resident_memory_bytes",
        ["target"],
        "Resident memory of the largest matched process (a worker whose memory keeps climbing)."
    );
}
