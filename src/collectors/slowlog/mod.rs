//! The slow-query log collector: follows a log file, parses events,
//! fingerprints them like pt-query-digest and exports bounded histograms.
//!
//! The log formats, fingerprints, digest, follower and directory watch are
//! the `perfwatch_slowlog` library (`crates/perfwatch-slowlog`), which knows
//! nothing of perfwatch. What is the sidecar's is here: `config.rs` (the
//! `[[slowlog]]` table), `catalog.rs` (every `perfwatch_slow_query*` and
//! `perfwatch_slowlog_*` family, also those the statement-statistics
//! sources fill), `export.rs` (a digest as families), and this file (the
//! poll: read, parse, persist the position; PostgreSQL's rotating files).
//!
//! Exactly once across restarts: the saved offset is the start of the event
//! still being assembled (not the end of what was read), with the parser's
//! carried-forward `use db;`, so a restart re-reads that event whole.

pub mod catalog;
pub mod config;
pub(crate) mod export;
mod plans;

use crate::local_file::read_regular_text;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

pub use config::{LogFormat, SlowlogConfig, SlowlogTarget, StartAtConfig};
use perfwatch_slowlog::mysql::MysqlParser;
use perfwatch_slowlog::tail::{Position, StartAt, Tailer};
use perfwatch_slowlog::watch::{DirWatch, Relevant, WatchMode};
use perfwatch_slowlog::{Digest, LogParser};
use serde::{Deserialize, Serialize};

use crate::exposition::Families;
use crate::poll::Timing;
use crate::poll::{Collector, ErrorReason, PollError, PollOutput, WakeHandle};

/// What the state file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedState {
    position: Position,
    /// The MySQL parser's current `use db;`.
    db: Option<String>,
}

/// Most files finished between two polls that one poll reads (PostgreSQL
/// rotating faster than perfwatch polls); older ones beyond are skipped,
/// counted and logged.
const MAX_FILES_BETWEEN: usize = 100;

/// For a PostgreSQL format: its name in `current_logfiles` and the extension
/// of its files.
fn pg_kind(format: LogFormat) -> (&'static str, &'static str) {
    match format {
        LogFormat::PostgresCsv => ("csvlog", "csv"),
        LogFormat::PostgresJson => ("jsonlog", "json"),
        _ => ("stderr", "log"),
    }
}

/// Whether `path` is a PostgreSQL log directory, whose current file changes
/// on every rotation.
fn follows_directory(cfg: &SlowlogConfig) -> bool {
    cfg.format != LogFormat::Mysql && cfg.path.is_dir()
}

/// For PostgreSQL, `path` may be the log directory: the file to follow is
/// the one `current_logfiles` names for our format (in the directory or in
/// its parent, the data directory), else the newest file with our extension.
fn resolve_path(cfg: &SlowlogConfig) -> PathBuf {
    let path = &cfg.path;
    if !follows_directory(cfg) {
        return path.clone();
    }
    let (kind, ext) = pg_kind(cfg.format);
    for base in [Some(path.as_path()), path.parent()].into_iter().flatten() {
        // A one-line file PostgreSQL writes; bounded like any file we read.
        if let Ok(text) = read_regular_text(&base.join("current_logfiles"), 64 * 1024) {
            for line in text.lines() {
                if let Some(rel) = line.strip_prefix(kind).and_then(|r| r.strip_prefix(' ')) {
                    let p = Path::new(rel.trim());
                    let candidates = [base.join(p), path.join(p.file_name().unwrap_or_default())];
                    if let Some(found) = candidates.into_iter().find(|c| c.is_file()) {
                        return found;
                    }
                }
            }
        }
    }
    list_files(path)
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|x| x == ext))
        .map(|(p, t)| (t, p))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| path.clone())
}

/// The regular files in `dir` with their modification times.
fn list_files(dir: &Path) -> Vec<(PathBuf, SystemTime)> {
    std::fs::read_dir(dir)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file().then_some((e.path(), meta.modified().ok()?))
        })
        .collect()
}

/// The log files PostgreSQL started and finished between `old` (the file
/// being read, with its last modification time) and `current`: from a
/// directory listing, those with extension `ext` that sort after `old` and
/// before `current` by (modification time, name), in that order. Several
/// rotations between two polls would otherwise skip them. `old` need not be
/// in the listing (deleted since); a `current` missing from it bounds nothing.
pub fn files_between(
    listing: &[(PathBuf, SystemTime)],
    ext: &str,
    old: (&Path, SystemTime),
    current: &Path,
) -> Vec<PathBuf> {
    let old_key = (old.1, old.0.file_name());
    let current_key = listing
        .iter()
        .find(|(p, _)| p == current)
        .map(|(p, t)| (*t, p.file_name()));
    let mut between: Vec<(SystemTime, &Path)> = listing
        .iter()
        .filter(|(p, _)| has_log_extension(p, ext))
        .filter(|(p, _)| p != old.0 && p != current)
        .filter(|(p, t)| {
            let key = (*t, p.file_name());
            key > old_key && current_key.is_none_or(|c| key < c)
        })
        .map(|(p, t)| (*t, p.as_path()))
        .collect();
    between.sort_by(|a, b| (a.0, a.1.file_name()).cmp(&(b.0, b.1.file_name())));
    between.into_iter().map(|(_, p)| p.to_owned()).collect()
}

/// Whether `p` is a log file of extension `ext`, or one compressed since it
/// rotated (`*.ext.gz`: read whole through gzip when drained).
fn has_log_extension(p: &Path, ext: &str) -> bool {
    if p.extension().is_some_and(|x| x == ext) {
        return true;
    }
    p.extension().is_some_and(|x| x == "gz")
        && Path::new(p.file_stem().unwrap_or_default())
            .extension()
            .is_some_and(|x| x == ext)
}

/// The directory to watch and which of its entries matter.
fn watch_target(cfg: &SlowlogConfig) -> (PathBuf, Relevant) {
    if follows_directory(cfg) {
        let (_, ext) = pg_kind(cfg.format);
        return (cfg.path.clone(), Relevant::Extension(ext.into()));
    }
    let dir = match cfg.path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = cfg.path.file_name().unwrap_or_default().to_owned();
    (dir, Relevant::File(name))
}

struct Inner {
    tailer: Tailer,
    parser: LogParser,
    digest: Digest,
    /// Offset of the first line of the event being assembled.
    event_start: Option<u64>,
    last_data: Instant,
    state_write_errors: u64,
    /// Files finished between two polls that were not read (beyond
    /// `MAX_FILES_BETWEEN`, or gone before we got to them).
    skipped_files: u64,
    /// `None` with `watch = false`.
    watch: Option<DirWatch>,
    /// Bytes read from compressed rotated files (decompressed).
    gz_bytes: u64,
    /// Why the input is not being recognized, when it is not (logged once
    /// per change).
    diagnosis: Option<String>,
    /// Plans and index advice of the top classes (`plans.rs`).
    plans: plans::Plans,
}

/// A running slow-log collector.
pub struct SlowlogCollector {
    cfg: SlowlogTarget,
    inner: Arc<Mutex<Inner>>,
    details: Option<serde_json::Value>,
    /// Notified by the directory watch (and the idle-flush timer).
    wake: Arc<tokio::sync::Notify>,
    /// Wakes the poll once an event left open at the end of the log is due
    /// for its idle flush (with a watch, no other poll may come before the
    /// interval).
    flush_timer: Option<tokio::task::JoinHandle<()>>,
    /// Where examples go and plans come from (`attach_board`).
    board: Option<Arc<crate::explain::Board>>,
}

impl Drop for SlowlogCollector {
    fn drop(&mut self) {
        if let Some(t) = &self.flush_timer {
            t.abort();
        }
    }
}

impl SlowlogCollector {
    /// A collector; the file is opened on the first poll.
    pub fn new(cfg: &SlowlogTarget, _timing: Timing) -> Self {
        let saved: Option<SavedState> = cfg
            .state_file
            .as_deref()
            .and_then(|p| read_regular_text(p, 64 * 1024).ok())
            .and_then(|t| serde_json::from_str(&t).ok());
        let start_at = match cfg.start_at {
            StartAtConfig::End => StartAt::End,
            StartAtConfig::Beginning => StartAt::Beginning,
        };
        // The prefix was validated with the config; the MySQL parser only
        // stands in so that this cannot fail.
        let mut parser = LogParser::new(
            cfg.format,
            cfg.log_line_prefix.as_deref(),
            cfg.max_line_bytes,
        )
        .unwrap_or_else(|_| LogParser::Mysql(MysqlParser::new(cfg.max_line_bytes)));
        if let Some(db) = saved.as_ref().and_then(|s| s.db.clone()) {
            parser.set_db(db);
        }
        let wake = Arc::new(tokio::sync::Notify::new());
        let watch = cfg.watch.then(|| {
            // Our own state file may sit beside the log: writing it must not
            // wake us.
            let ignored: Vec<OsString> = cfg
                .state_file
                .iter()
                .flat_map(|p| [p.clone(), p.with_extension("tmp")])
                .filter_map(|p| p.file_name().map(ToOwned::to_owned))
                .collect();
            DirWatch::new(&cfg.common.name, wake.clone(), ignored)
        });
        let inner = Inner {
            tailer: Tailer::new(
                cfg.path.clone(),
                start_at,
                saved.map(|s| s.position),
                cfg.max_line_bytes,
            ),
            parser,
            digest: Digest::new(cfg.top_queries, cfg.max_classes, cfg.rank_window),
            event_start: None,
            last_data: Instant::now(),
            state_write_errors: 0,
            skipped_files: 0,
            watch,
            gz_bytes: 0,
            diagnosis: None,
            plans: plans::Plans::default(),
        };
        Self {
            cfg: cfg.clone(),
            inner: Arc::new(Mutex::new(inner)),
            details: None,
            wake,
            flush_timer: None,
            board: None,
        }
    }
}

/// Reads, parses and persists (blocking file I/O).
fn read_and_parse(cfg: &SlowlogTarget, inner: &mut Inner) -> Result<(), PollError> {
    let name = &cfg.common.name;
    if let Some(w) = &mut inner.watch {
        // Before reading: a write after this read wakes the next poll.
        let (dir, relevant) = watch_target(cfg);
        w.ensure(&dir, relevant);
    }
    // PostgreSQL opens new files on rotation: follow the current one, after
    // the files finished since the one being read (the tailer drains each
    // before switching).
    let current = resolve_path(cfg);
    let mut between = Vec::new();
    if current != inner.tailer.path()
        && follows_directory(cfg)
        && let Some(old_modified) = inner.tailer.open_file_modified()
    {
        let (_, ext) = pg_kind(cfg.format);
        between = files_between(
            &list_files(&cfg.path),
            ext,
            (inner.tailer.path(), old_modified),
            &current,
        );
        if between.len() > MAX_FILES_BETWEEN {
            let skipped: Vec<PathBuf> =
                between.drain(..between.len() - MAX_FILES_BETWEEN).collect();
            inner.skipped_files += skipped.len() as u64;
            tracing::warn!(
                target_name = %name,
                skipped = skipped.len(),
                first = %skipped[0].display(),
                last = %skipped[skipped.len() - 1].display(),
                "slow log: more files rotated since the last poll than one poll reads; the oldest are skipped"
            );
        }
    }
    let before = inner.tailer.stats.bytes;
    let now = Instant::now();
    let now_unix = crate::poll::unix_now();
    let Inner {
        tailer,
        parser,
        digest,
        event_start,
        skipped_files,
        gz_bytes,
        ..
    } = inner;
    let mut on_line = |line: &str, offset: u64, more: bool| {
        if more {
            // A json or csv message whose string ended in this piece.
            if let Some(e) = parser.more(line) {
                digest.add(&e, now, now_unix);
                parser.recycle(e);
            }
            return;
        }
        let had_partial = parser.has_partial();
        let done = parser.line(line);
        let completed = done.is_some();
        if let Some(e) = done {
            digest.add(&e, now, now_unix);
            parser.recycle(e);
        }
        if completed || !had_partial {
            *event_start = Some(offset);
        }
        if !parser.has_partial() {
            *event_start = None;
        }
    };
    let mut result = Ok(());
    for file in between {
        if !file.is_file() {
            *skipped_files += 1;
            tracing::warn!(target_name = %name, file = %file.display(), "slow log: a rotated file was gone before it was read");
            continue;
        }
        if file.extension().is_some_and(|x| x == "gz") {
            // Compressed since it rotated: read whole through gzip.
            let mut on_piece = |text: &str, _: u64, more: bool| on_line(text, 0, more);
            result = perfwatch_slowlog::tail::read_gz(&file, cfg.max_line_bytes, &mut on_piece)
                .map(|(bytes, _)| *gz_bytes += bytes);
            if result.is_err() {
                break;
            }
            continue;
        }
        tailer.switch_to(file);
        // Whole files: their events belong before the current file's.
        result = tailer.read_pieces(usize::MAX, &mut on_line);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        if current != tailer.path() {
            tailer.switch_to(current);
        }
        result = tailer.read_pieces(cfg.max_read_bytes_per_poll, &mut on_line);
    }
    if let Err(e) = result {
        inner.tailer.close();
        // What the operator must fix differs: file mode / group membership
        // (docs/SECURITY.md) versus a missing or unreadable file.
        let reason = if e.kind() == std::io::ErrorKind::PermissionDenied {
            ErrorReason::Permission
        } else {
            ErrorReason::Io
        };
        return Err(PollError::new(
            reason,
            format!(
                "slowlog target \"{name}\": \"{}\": {e}",
                inner.tailer.path().display()
            ),
        ));
    }
    if inner.tailer.stats.bytes > before {
        inner.last_data = now;
    } else if inner.parser.pending() && now.duration_since(inner.last_data) >= cfg.idle_flush {
        while let Some(e) = inner.parser.flush() {
            inner.digest.add(&e, now, now_unix);
            inner.parser.recycle(e);
        }
        inner.event_start = None;
    }
    inner.digest.rank();
    let diagnosis = perfwatch_slowlog::diagnose::diagnose(
        cfg.format,
        cfg.log_line_prefix.as_deref(),
        inner.digest.events,
        inner.tailer.stats.bytes + inner.gz_bytes,
        inner.parser.unrecognized(),
    );
    if diagnosis != inner.diagnosis {
        match &diagnosis {
            Some(why) => {
                tracing::warn!(target_name = %name, file = %inner.tailer.path().display(), "slow log degraded: {why}")
            }
            None => tracing::info!(target_name = %name, "slow log input recognized again"),
        }
        inner.diagnosis = diagnosis;
    }
    if let Some(path) = &cfg.state_file
        && let Some(position) = inner.tailer.position(inner.event_start)
    {
        let state = SavedState {
            position,
            db: inner.parser.db().map(str::to_owned),
        };
        let written = serde_json::to_string(&state)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, json)?;
                std::fs::rename(&tmp, path)
            });
        if let Err(e) = written {
            // Not fatal: metrics keep flowing; a restart would re-read more.
            inner.state_write_errors += 1;
            tracing::warn!(target_name = %name, file = %path.display(), error = %e, "cannot save the slow-log position");
        }
    }
    Ok(())
}

fn export(cfg: &SlowlogTarget, inner: &Inner, out: &mut Families) {
    let t = [("target", cfg.common.name.as_str())];
    export::digest(&inner.digest, &cfg.common.name, out);
    inner.plans.export(&cfg.common.name, &inner.digest, out);
    let s = inner.tailer.stats;
    let d = &inner.digest;
    for (def, value) in [
        (&catalog::BYTES_READ, s.bytes + inner.gz_bytes),
        (
            &catalog::UNRECOGNIZED_LINES,
            inner.parser.unrecognized().lines,
        ),
        (
            &catalog::UNRECOGNIZED_BYTES,
            inner.parser.unrecognized().bytes,
        ),
        (&catalog::ROTATIONS, s.rotations),
        (&catalog::LONG_LINES, s.long_lines),
        (&catalog::TRUNCATED_EVENTS, d.truncated_events),
        (&catalog::SAMPLED_EVENTS, d.sampled_events),
        (&catalog::SKIPPED_FILES, inner.skipped_files),
        (&catalog::STATE_WRITE_ERRORS, inner.state_write_errors),
    ] {
        out.counter(def, &t, value as f64);
    }
    out.gauge(
        &catalog::DEGRADED,
        &t,
        if inner.diagnosis.is_some() { 1.0 } else { 0.0 },
    );
    let mode = inner.watch.as_ref().map_or(WatchMode::Poll, DirWatch::mode);
    for m in [WatchMode::Inotify, WatchMode::Poll] {
        out.gauge(
            &catalog::WATCH_MODE,
            &[("target", cfg.common.name.as_str()), ("mode", m.as_str())],
            if m == mode { 1.0 } else { 0.0 },
        );
    }
}

impl Collector for SlowlogCollector {
    async fn poll(&mut self) -> Result<PollOutput, PollError> {
        let cfg = self.cfg.clone();
        let inner = self.inner.clone();
        let board = self.board.clone();
        let (output, details, pending) = tokio::task::spawn_blocking(move || {
            // A poll that timed out may still be reading: never wait for it.
            let Ok(mut guard) = inner.try_lock() else {
                return Err(PollError::new(
                    ErrorReason::Timeout,
                    format!(
                        "slowlog target \"{}\": the previous read is still running",
                        cfg.common.name
                    ),
                ));
            };
            read_and_parse(&cfg, &mut guard)?;
            if let Some(board) = &board {
                let Inner { plans, digest, .. } = &mut *guard;
                plans.exchange(board, &cfg.common.name, digest, cfg.keep_examples);
            }
            let mut families = Families::new();
            export(&cfg, &guard, &mut families);
            let mut headline = vec![
                ("events".to_owned(), guard.digest.events.to_string()),
                (
                    "bytes read".to_owned(),
                    guard.tailer.stats.bytes.to_string(),
                ),
            ];
            if let Some(why) = &guard.diagnosis {
                headline.push(("degraded".to_owned(), why.clone()));
            }
            let details = serde_json::to_value(guard.digest.summary(50, cfg.keep_examples))
                .ok()
                .map(|mut v| {
                    guard.plans.annotate(&guard.digest, &mut v);
                    v
                });
            let pending = guard.parser.pending();
            Ok((PollOutput { families, headline }, details, pending))
        })
        .await
        .map_err(|e| {
            PollError::new(
                ErrorReason::Io,
                format!("slowlog target \"{}\": {e}", self.cfg.common.name),
            )
        })??;
        self.details = details;
        if pending && self.cfg.watch && self.flush_timer.as_ref().is_none_or(|t| t.is_finished()) {
            let wake = self.wake.clone();
            let after = self.cfg.idle_flush;
            self.flush_timer = Some(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                wake.notify_one();
            }));
        }
        Ok(output)
    }

    fn reset(&mut self) {}

    fn attach_board(&mut self, board: &Arc<crate::explain::Board>) {
        self.board = Some(board.clone());
    }

    fn wake(&self) -> Option<WakeHandle> {
        self.cfg.watch.then(|| WakeHandle {
            notify: self.wake.clone(),
            min_gap: self.cfg.min_interval,
        })
    }

    fn details(&self) -> Option<serde_json::Value> {
        self.details.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn files_between_orders_by_mtime_then_name() {
        let t = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let p = |n: &str| PathBuf::from(format!("/log/{n}"));
        // (listing as (name, mtime), old (name, mtime), current, extension, expected)
        type Case = (
            &'static [(&'static str, u64)],
            (&'static str, u64),
            &'static str,
            &'static str,
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            // Nothing between.
            (
                &[("a.log", 10), ("b.log", 20)],
                ("a.log", 10),
                "b.log",
                "log",
                &[],
            ),
            // Three rotations between two polls, listed in any order.
            (
                &[("d.log", 40), ("b.log", 20), ("a.log", 10), ("c.log", 30)],
                ("a.log", 10),
                "d.log",
                "log",
                &["b.log", "c.log"],
            ),
            // Other formats' files, older history and newer files are not ours.
            (
                &[
                    ("0.log", 5),
                    ("a.log", 10),
                    ("b.csv", 15),
                    ("b.log", 20),
                    ("c.json", 25),
                    ("c.log", 30),
                    ("d.log", 40),
                    ("current_logfiles", 30),
                ],
                ("a.log", 10),
                "c.log",
                "log",
                &["b.log"],
            ),
            (
                &[("a.csv", 10), ("b.csv", 20), ("c.csv", 30), ("b.log", 20)],
                ("a.csv", 10),
                "c.csv",
                "csv",
                &["b.csv"],
            ),
            // Equal mtimes (coarse clocks, fast rotations): the name decides.
            (
                &[("a.log", 10), ("c.log", 10), ("b.log", 10), ("d.log", 10)],
                ("a.log", 10),
                "d.log",
                "log",
                &["b.log", "c.log"],
            ),
            // A file with the old one's mtime but an earlier name is older.
            (
                &[("a.log", 10), ("b.log", 10), ("c.log", 20)],
                ("b.log", 10),
                "c.log",
                "log",
                &[],
            ),
            // mtime wins over name (names that do not sort by time).
            (
                &[
                    ("mon.log", 30),
                    ("sun.log", 10),
                    ("tue.log", 20),
                    ("wed.log", 40),
                ],
                ("sun.log", 10),
                "wed.log",
                "log",
                &["tue.log", "mon.log"],
            ),
            // The old file was deleted since: its mtime still bounds.
            (
                &[("b.log", 20), ("c.log", 30), ("d.log", 40)],
                ("a.log", 10),
                "d.log",
                "log",
                &["b.log", "c.log"],
            ),
            // The current file is gone from the listing: everything newer.
            (
                &[("a.log", 10), ("b.log", 20), ("c.log", 30)],
                ("a.log", 10),
                "x.log",
                "log",
                &["b.log", "c.log"],
            ),
        ];
        for (listing, old, current, ext, want) in cases {
            let listing: Vec<(PathBuf, SystemTime)> =
                listing.iter().map(|(n, s)| (p(n), t(*s))).collect();
            let got = files_between(&listing, ext, (&p(old.0), t(old.1)), &p(current));
            let want: Vec<PathBuf> = want.iter().map(|n| p(n)).collect();
            assert_eq!(got, want, "old {old:?} current {current}");
        }
    }
}
