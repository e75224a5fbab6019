//! Waking the slow-log poll when the log changes (inotify through `notify`).
//!
//! The watcher only brings polls forward: polling on the interval goes on
//! regardless. So a watcher that cannot be set up (inotify limits, a file
//! system without inotify, a directory that does not exist yet) or that
//! misses events (NFS: other hosts' writes) costs promptness, never events.
//!
//! The directory is watched, not the file: a rotation replaces the file, and
//! a watch on the old inode would go quiet. The callback runs on notify's own
//! thread and does nothing but compare names and notify: no file I/O there.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use notify::event::ModifyKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// After the watcher itself could not be created (e.g. the inotify instance
/// limit), how long until the next attempt: creating one starts a thread.
const RETRY_CREATE: Duration = Duration::from_secs(60);

/// How the poll learns of new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// inotify wakes the poll; the interval is the safety net.
    Inotify,
    /// Only the interval.
    Poll,
}

impl WatchMode {
    /// The `mode` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inotify => "inotify",
            Self::Poll => "poll",
        }
    }
}

/// Which entries of the watched directory are worth a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relevant {
    /// One file, by name (a MySQL slow log, a PostgreSQL log file path).
    File(OsString),
    /// A PostgreSQL log directory: files with this extension, and
    /// `current_logfiles`.
    Extension(OsString),
}

impl Relevant {
    /// Whether a change of `path` concerns us (by name only).
    pub fn matches(&self, path: &Path) -> bool {
        match self {
            Self::File(name) => path.file_name() == Some(name.as_os_str()),
            Self::Extension(ext) => {
                path.extension() == Some(ext.as_os_str())
                    || path.file_name().is_some_and(|n| n == "current_logfiles")
            }
        }
    }
}

/// Whether a watcher report should wake the poll: changes of relevant files,
/// and anything the watcher could not describe (a queue overflow, an error).
/// Opens, reads and attribute changes do not: our own reads would otherwise
/// wake us again.
fn wants(report: &notify::Result<Event>, relevant: &Relevant, ignored: &[OsString]) -> bool {
    let Ok(event) = report else { return true };
    if event.need_rescan() {
        return true;
    }
    match event.kind {
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
        _ => {
            event.paths.is_empty()
                || event.paths.iter().any(|p| {
                    relevant.matches(p)
                        && !p
                            .file_name()
                            .is_some_and(|n| ignored.iter().any(|i| i == n))
                })
        }
    }
}

/// Whether a report says the watched directory itself went away (deleted or
/// renamed): the kernel's watch is then gone or follows the old directory.
fn lost_dir(report: &notify::Result<Event>, dir: &Path) -> bool {
    report.as_ref().is_ok_and(|e| {
        matches!(
            e.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        ) && e.paths.iter().any(|p| p == dir)
    })
}

struct Active {
    /// Dropping it stops notify's thread and removes the watch.
    _watcher: RecommendedWatcher,
    dir: PathBuf,
    relevant: Relevant,
    /// (device, inode) of the directory watched: a directory replaced under
    /// the same name needs a new watch.
    id: (u64, u64),
    /// Set by the callback when the directory itself was deleted or moved
    /// (its inode number may be reused by a new one at once).
    lost: Arc<AtomicBool>,
}

/// One watched directory of one slowlog target.
pub struct DirWatch {
    target: String,
    wake: Arc<Notify>,
    /// Names never worth a wake (our own state file and its temp file).
    ignored: Vec<OsString>,
    active: Option<Active>,
    /// The reason last logged, so a lasting failure is logged once.
    failure: Option<String>,
    retry_create_at: Option<Instant>,
}

impl DirWatch {
    /// A watch that will notify `wake`; nothing is watched until [`Self::ensure`].
    /// Changes of files named in `ignored` never wake.
    pub fn new(target: &str, wake: Arc<Notify>, ignored: Vec<OsString>) -> Self {
        Self {
            target: target.to_owned(),
            wake,
            ignored,
            active: None,
            failure: None,
            retry_create_at: None,
        }
    }

    /// How the poll learns of new data right now.
    pub fn mode(&self) -> WatchMode {
        if self.active.is_some() {
            WatchMode::Inotify
        } else {
            WatchMode::Poll
        }
    }

    /// Watches `dir` for changes of `relevant` entries unless it already
    /// does (called every poll; blocking, one stat when nothing changed). A
    /// directory missing now is watched on a later poll once it exists; a
    /// directory replaced is watched anew.
    pub fn ensure(&mut self, dir: &Path, relevant: Relevant) {
        let id = match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => (m.dev(), m.ino()),
            Ok(_) => return self.fail(dir, "not a directory".to_owned()),
            Err(e) => return self.fail(dir, e.to_string()),
        };
        if self.active.as_ref().is_some_and(|a| {
            a.dir == dir && a.relevant == relevant && a.id == id && !a.lost.load(Ordering::Relaxed)
        }) {
            return;
        }
        self.active = None;
        if self.retry_create_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let wake = self.wake.clone();
        let wanted = relevant.clone();
        let ignored = self.ignored.clone();
        let lost = Arc::new(AtomicBool::new(false));
        let lost_flag = lost.clone();
        // notify names events by the absolute path of the watch.
        let abs_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let created = notify::recommended_watcher(move |report: notify::Result<Event>| {
            if lost_dir(&report, &abs_dir) {
                lost_flag.store(true, Ordering::Relaxed);
                wake.notify_one();
            } else if wants(&report, &wanted, &ignored) {
                wake.notify_one();
            }
        });
        let mut watcher = match created {
            Ok(w) => w,
            Err(e) => {
                self.retry_create_at = Some(Instant::now() + RETRY_CREATE);
                return self.fail(dir, describe(&e));
            }
        };
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            self.retry_create_at = Some(Instant::now() + RETRY_CREATE);
            return self.fail(dir, describe(&e));
        }
        self.retry_create_at = None;
        if self.failure.take().is_some() {
            tracing::info!(target_name = %self.target, dir = %dir.display(), "slow log: watching for changes again (inotify)");
        }
        self.active = Some(Active {
            _watcher: watcher,
            dir: dir.to_owned(),
            relevant,
            id,
            lost,
        });
    }

    fn fail(&mut self, dir: &Path, reason: String) {
        self.active = None;
        if self.failure.as_deref() != Some(reason.as_str()) {
            tracing::warn!(
                target_name = %self.target,
                dir = %dir.display(),
                reason = %reason,
                "slow log: cannot watch the directory, polling on the interval only"
            );
            self.failure = Some(reason);
        }
    }
}

/// A watcher error in words an operator can act on.
fn describe(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => {
            "the inotify watch limit is reached (sysctl fs.inotify.max_user_watches)".to_owned()
        }
        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => {
            "the inotify instance limit is reached (sysctl fs.inotify.max_user_instances)"
                .to_owned()
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind, RemoveKind};

    #[test]
    fn only_relevant_changes_wake() {
        let file = Relevant::File("slow.log".into());
        let dir = Relevant::Extension("csv".into());
        let state: Vec<OsString> = vec!["state.csv".into()];
        let ev = |kind, p: &str| Ok(Event::new(kind).add_path(PathBuf::from(p)));
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let create = EventKind::Create(CreateKind::File);
        // (report, relevant, wakes)
        let cases: Vec<(notify::Result<Event>, &Relevant, bool)> = vec![
            (ev(write, "/l/slow.log"), &file, true),
            (ev(create, "/l/slow.log"), &file, true),
            (
                ev(EventKind::Remove(RemoveKind::File), "/l/slow.log"),
                &file,
                true,
            ),
            (ev(write, "/l/ibdata1"), &file, false),
            (ev(write, "/l/slow.log.1"), &file, false),
            (
                ev(EventKind::Access(AccessKind::Any), "/l/slow.log"),
                &file,
                false,
            ),
            (
                ev(
                    EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                    "/l/slow.log",
                ),
                &file,
                false,
            ),
            (ev(create, "/l/postgresql-1.csv"), &dir, true),
            (ev(write, "/l/current_logfiles"), &dir, true),
            (ev(write, "/l/postgresql-1.log"), &dir, false),
            (ev(write, "/l/state.csv"), &dir, false),
            (
                Ok(Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan)),
                &file,
                true,
            ),
            (Err(notify::Error::generic("queue overflow")), &file, true),
        ];
        for (report, relevant, want) in cases {
            assert_eq!(wants(&report, relevant, &state), want, "{report:?}");
        }
    }

    #[tokio::test]
    async fn a_write_wakes_and_a_missing_directory_is_watched_once_it_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("later");
        let wake = Arc::new(Notify::new());
        let mut w = DirWatch::new("t", wake.clone(), vec![]);
        let slow = || Relevant::File("slow.log".into());
        w.ensure(&dir, slow());
        assert_eq!(w.mode(), WatchMode::Poll);
        std::fs::create_dir(&dir).unwrap();
        w.ensure(&dir, slow());
        assert_eq!(w.mode(), WatchMode::Inotify);
        std::fs::write(dir.join("slow.log"), "x\n").unwrap();
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .expect("a write wakes the poll");
        // Replaced directory (its inode number may well be reused): the
        // deletion wakes the poll, which watches the new one.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = tokio::time::timeout(Duration::from_millis(10), wake.notified()).await;
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir(&dir).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !w.active.as_ref().unwrap().lost.load(Ordering::Relaxed) {
            assert!(Instant::now() < deadline, "the deletion was not seen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        w.ensure(&dir, slow());
        assert_eq!(w.mode(), WatchMode::Inotify);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = tokio::time::timeout(Duration::from_millis(10), wake.notified()).await;
        std::fs::write(dir.join("slow.log"), "y\n").unwrap();
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .expect("a write in the new directory wakes the poll");
    }
}
