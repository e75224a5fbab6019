//! Following a log file like `tail -F`, rotation-safe and resumable.
//!
//! Each read first compares the path's (device, inode) with the open file:
//! a different file (rename + create, delete + recreate) means the old one is
//! drained to its end before switching to the new one from its start; the
//! same file shorter than our offset means copytruncate, so we restart at 0.
//! The position is persisted as (device, inode, offset, hash of the first
//! bytes) so a restart resumes exactly, and a file replaced while the
//! reader was not running (same path, other inode or other first bytes) is
//! read from the start instead of from a meaningless offset.
//!
//! Memory is bounded: a line longer than `max_line` is cut (the rest of it is
//! skipped by [`Tailer::read`], handed out in pieces by
//! [`Tailer::read_pieces`], never buffered), so a 100 MB statement or binary
//! garbage cannot grow the process.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// How many leading bytes identify a file's content.
const HEAD_BYTES: usize = 256;
/// Read chunk size.
const CHUNK: usize = 64 * 1024;

/// The persisted position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Byte offset to resume from.
    pub offset: u64,
    /// MD5 (hex) of the first bytes, when the file had them.
    pub head: Option<String>,
}

/// Where to start when there is no usable saved position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Only new lines.
    End,
    /// The whole file.
    Beginning,
}

/// What takes the lines a tailer reads: `(text, offset of the line's
/// start, more)`, `more` for the pieces of a long line after its first
/// (see [`Tailer::read_pieces`]).
pub type OnPiece<'a> = dyn FnMut(&str, u64, bool) + 'a;

/// Counters of what the tailer did.
#[derive(Debug, Default, Clone, Copy)]
pub struct TailStats {
    /// Bytes read.
    pub bytes: u64,
    /// Rotations and truncations followed.
    pub rotations: u64,
    /// Lines cut at `max_line`.
    pub long_lines: u64,
}

/// A followed file.
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    file: Option<File>,
    dev: u64,
    ino: u64,
    /// Offset of the next byte to read from `file`.
    read_offset: u64,
    /// Offset just past the last complete line handed out.
    line_offset: u64,
    pending: Vec<u8>,
    /// The first bytes of the open file as we read them: if they change, the
    /// file was truncated and rewritten (copytruncate racing with writers).
    head_seen: Vec<u8>,
    skipping_long_line: bool,
    /// Long lines are handed out whole, in pieces ([`Tailer::read_pieces`]),
    /// not cut ([`Tailer::read`]).
    stream: bool,
    max_line: usize,
    start_at: StartAt,
    saved: Option<Position>,
    /// What happened so far.
    pub stats: TailStats,
}

/// Opens a log for reading, only if it is a regular file. The open does not
/// block: a FIFO given as the log path would otherwise wait for a writer
/// forever (a read thread stuck, and shutdown with it); a FIFO, device or
/// directory is an error naming what it is.
pub fn open_log(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    let what = if kind.is_file() {
        return Ok(file);
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(io::Error::other(format!(
        "\"{}\" is {what}: a slow log must be a regular file",
        path.display()
    )))
}

fn head_hash(path: &Path) -> io::Result<Option<String>> {
    let mut f = open_log(path)?;
    let mut buf = [0u8; HEAD_BYTES];
    let mut n = 0;
    while n < HEAD_BYTES {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok((n == HEAD_BYTES).then(|| {
        Md5::digest(buf)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }))
}

impl Tailer {
    /// A tailer for `path`; `saved` is the position from the state file.
    pub fn new(path: PathBuf, start_at: StartAt, saved: Option<Position>, max_line: usize) -> Self {
        Self {
            path,
            file: None,
            dev: 0,
            ino: 0,
            read_offset: 0,
            line_offset: 0,
            pending: Vec::new(),
            head_seen: Vec::new(),
            skipping_long_line: false,
            stream: false,
            max_line,
            start_at,
            saved,
            stats: TailStats::default(),
        }
    }

    /// The position to persist: `resume_offset` lets the caller hold back
    /// lines of an event it has not completed yet.
    pub fn position(&self, resume_offset: Option<u64>) -> Option<Position> {
        self.file.as_ref()?;
        Some(Position {
            dev: self.dev,
            ino: self.ino,
            offset: resume_offset
                .unwrap_or(self.line_offset)
                .min(self.line_offset),
            head: head_hash(&self.path).ok().flatten(),
        })
    }

    fn open(&mut self, first: bool) -> io::Result<()> {
        let mut file = open_log(&self.path)?;
        let meta = file.metadata()?;
        let (dev, ino) = (meta.dev(), meta.ino());
        let mut offset = 0;
        if first {
            let saved = self.saved.take();
            let had_saved = saved.is_some();
            let resumable = saved.filter(|p| {
                p.dev == dev
                    && p.ino == ino
                    && p.offset <= meta.len()
                    && (p.head.is_none() || p.head == head_hash(&self.path).ok().flatten())
            });
            offset = match (resumable, self.start_at) {
                (Some(p), _) => p.offset,
                // A file replaced while we were down is all new to us.
                (None, _) if had_saved => 0,
                (None, StartAt::End) => meta.len(),
                (None, StartAt::Beginning) => 0,
            };
        }
        file.seek(SeekFrom::Start(offset))?;
        self.file = Some(file);
        self.dev = dev;
        self.ino = ino;
        self.read_offset = offset;
        self.line_offset = offset;
        self.pending.clear();
        self.head_seen = read_head(self.file.as_ref(), offset.min(HEAD_BYTES as u64) as usize);
        self.skipping_long_line = false;
        Ok(())
    }

    /// Whether the open file's first bytes still are what we saw.
    fn head_changed(&self) -> bool {
        !self.head_seen.is_empty()
            && read_head(self.file.as_ref(), self.head_seen.len()) != self.head_seen
    }

    /// Reads new complete lines (at most about `budget` bytes), calling
    /// `on_line(line, offset_of_line_start)` for each; a line longer than
    /// `max_line` is cut there (the rest is skipped, never buffered).
    pub fn read(&mut self, budget: usize, on_line: &mut dyn FnMut(&str, u64)) -> io::Result<()> {
        self.stream = false;
        self.read_pieces_inner(budget, &mut |text, offset, more| {
            if !more {
                on_line(text, offset);
            }
        })
    }

    /// Like [`Tailer::read`], but the rest of a line longer than
    /// `max_line` is handed out too, in pieces of at most one read chunk,
    /// as `on_piece(piece, offset_of_line_start, true)` right after its
    /// first `max_line` bytes (`on_piece(first, offset, false)`): a reader
    /// can digest a statement of any size without holding it.
    ///
    /// Unlike a line, the first piece of a long line is handed out before
    /// its end is written: a reader that saves the position must hold it
    /// back to the line's start (as the sidecar's collector does with the
    /// start of the event being assembled).
    pub fn read_pieces(&mut self, budget: usize, on_piece: &mut OnPiece<'_>) -> io::Result<()> {
        self.stream = true;
        self.read_pieces_inner(budget, on_piece)
    }

    fn read_pieces_inner(&mut self, budget: usize, on_piece: &mut OnPiece<'_>) -> io::Result<()> {
        if self.file.is_none() {
            let first = self.dev == 0 && self.ino == 0;
            self.open(first)?;
        }
        // Rotation checks by path.
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.dev() != self.dev || meta.ino() != self.ino => {
                // Another file at the path: finish the old one first.
                self.drain(usize::MAX, on_piece)?;
                self.flush_partial(on_piece);
                self.open(false)?;
                self.stats.rotations += 1;
            }
            Ok(meta) if meta.len() < self.read_offset || self.head_changed() => {
                // copytruncate: the file was emptied under us.
                self.flush_partial(on_piece);
                if let Some(f) = &mut self.file {
                    f.seek(SeekFrom::Start(0))?;
                }
                self.read_offset = 0;
                self.line_offset = 0;
                self.head_seen.clear();
                self.stats.rotations += 1;
            }
            Ok(_) => {}
            // Deleted and not (yet) recreated: keep draining the open fd.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.drain(budget, on_piece)
    }

    fn drain(&mut self, budget: usize, on_piece: &mut OnPiece<'_>) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let mut buf = vec![0u8; CHUNK];
        let mut read_now = 0usize;
        while read_now < budget {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            read_now += n;
            self.stats.bytes += n as u64;
            if (self.read_offset as usize) < HEAD_BYTES {
                let upto = (HEAD_BYTES - self.read_offset as usize).min(n);
                if self.head_seen.len() == self.read_offset as usize {
                    self.head_seen.extend_from_slice(&buf[..upto]);
                }
            }
            let base = self.read_offset;
            self.read_offset += n as u64;
            let mut split = LineSplit {
                pending: &mut self.pending,
                skipping_long_line: &mut self.skipping_long_line,
                line_offset: &mut self.line_offset,
                long_lines: &mut self.stats.long_lines,
                max_line: self.max_line,
                stream: self.stream,
            };
            split.feed(&buf[..n], base, on_piece);
        }
        Ok(())
    }

    /// Hands out a final unterminated line (rotation: the old file is done).
    fn flush_partial(&mut self, on_piece: &mut OnPiece<'_>) {
        if !self.pending.is_empty() {
            emit_piece(&self.pending, self.line_offset, false, on_piece);
            self.pending.clear();
        }
        // The next byte starts a new line (of the new or emptied file): a
        // long line being skipped in the old one must not swallow it.
        self.skipping_long_line = false;
    }

    /// The path being followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Follows another path from now on (PostgreSQL's next log file): the
    /// next read drains the open file, then reads the new one from its start.
    pub fn switch_to(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// When the open file was last written (through the open descriptor, so
    /// also for a file already deleted); `None` when no file is open.
    pub fn open_file_modified(&self) -> Option<std::time::SystemTime> {
        self.file.as_ref()?.metadata().ok()?.modified().ok()
    }

    /// Forgets the open file (after an error); the next read reopens it.
    pub fn close(&mut self) {
        self.file = None;
    }
}

/// Hands out one line or piece: valid UTF-8 as it is (no copy), any other
/// byte escaped (see [`crate::fingerprint::text_from_bytes`]).
fn emit_piece(bytes: &[u8], offset: u64, more: bool, on_piece: &mut OnPiece<'_>) {
    on_piece(&crate::fingerprint::text_from_bytes(bytes), offset, more);
}

/// Cuts bytes into lines as they come, chunk by chunk: the state is the
/// caller's (the tailer's fields, or [`read_lines`]'s own), so that a
/// followed file and a decompressed stream are cut the same way.
struct LineSplit<'a> {
    pending: &'a mut Vec<u8>,
    skipping_long_line: &'a mut bool,
    /// Offset just past the last complete line handed out.
    line_offset: &'a mut u64,
    long_lines: &'a mut u64,
    max_line: usize,
    /// Hand out the rest of long lines (else: cut them, and hand out a
    /// long line's first bytes only once its end is read).
    stream: bool,
}

impl LineSplit<'_> {
    /// Hands out the lines (and pieces of long lines) of `chunk`, which
    /// starts at offset `base`.
    fn feed(&mut self, chunk: &[u8], base: u64, on_piece: &mut OnPiece<'_>) {
        let mut chunk = chunk;
        // UTF-8 is checked once per chunk, not per line: lines inside
        // the valid part are handed out as slices of it.
        let text = match std::str::from_utf8(chunk) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&chunk[..e.valid_up_to()]).unwrap_or_default(),
        };
        let mut at = 0;
        let mut pos = base;
        while let Some(nl) = memchr::memchr(b'\n', chunk) {
            let part = &chunk[..nl];
            pos += nl as u64 + 1;
            let line_start = *self.line_offset;
            if *self.skipping_long_line {
                if !self.stream {
                    // The cut line, now that it ended.
                    emit_piece(self.pending, line_start, false, on_piece);
                } else if !part.is_empty() {
                    // The end of a long line's rest.
                    emit_piece(part, line_start, true, on_piece);
                }
            } else if self.pending.is_empty() {
                // The whole line is in this chunk: handed out in place.
                let len = part.len().min(self.max_line);
                match text.get(at..at + len) {
                    Some(line) => on_piece(line, line_start, false),
                    None => emit_piece(&part[..len], line_start, false, on_piece),
                }
                if part.len() > self.max_line {
                    *self.long_lines += 1;
                    if self.stream {
                        emit_piece(&part[len..], line_start, true, on_piece);
                    }
                }
            } else {
                let room = self.max_line.saturating_sub(self.pending.len());
                let take = part.len().min(room);
                self.pending.extend_from_slice(&part[..take]);
                emit_piece(self.pending, line_start, false, on_piece);
                if part.len() > room {
                    // Cut within this chunk: counted like one cut across chunks.
                    *self.long_lines += 1;
                    if self.stream {
                        emit_piece(&part[take..], line_start, true, on_piece);
                    }
                }
            }
            self.pending.clear();
            *self.skipping_long_line = false;
            *self.line_offset = pos;
            chunk = &chunk[nl + 1..];
            at += nl + 1;
        }
        if chunk.is_empty() {
            return;
        }
        if *self.skipping_long_line {
            if self.stream {
                emit_piece(chunk, *self.line_offset, true, on_piece);
            }
            return;
        }
        let room = self.max_line.saturating_sub(self.pending.len());
        if chunk.len() > room {
            // A long line: its first `max_line` bytes (streaming: now, and
            // the rest as it comes), nothing more of it kept.
            *self.long_lines += 1;
            *self.skipping_long_line = true;
            self.pending.extend_from_slice(&chunk[..room]);
            if self.stream {
                emit_piece(self.pending, *self.line_offset, false, on_piece);
                self.pending.clear();
                emit_piece(&chunk[room..], *self.line_offset, true, on_piece);
            }
        } else {
            self.pending.extend_from_slice(chunk);
        }
    }
}

/// Hands out every line of the gzip-compressed file at `path` (a rotated
/// log compressed by logrotate or a cron job) like [`read_lines`]; memory
/// stays bounded whatever the sizes.
pub fn read_gz(path: &Path, max_line: usize, on_piece: &mut OnPiece<'_>) -> io::Result<(u64, u64)> {
    let file = open_log(path)?;
    let mut gz = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
    read_lines(&mut gz, max_line, on_piece)
}

/// Hands out every line of `reader` (a decompressed rotated file) as
/// [`Tailer::read_pieces`] does, a final unterminated line included;
/// returns the bytes read and the lines cut at `max_line`.
pub fn read_lines(
    reader: &mut dyn Read,
    max_line: usize,
    on_piece: &mut OnPiece<'_>,
) -> io::Result<(u64, u64)> {
    let mut pending = Vec::new();
    let (mut skipping, mut line_offset, mut long_lines) = (false, 0u64, 0u64);
    let mut buf = vec![0u8; CHUNK];
    let mut base = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        LineSplit {
            pending: &mut pending,
            skipping_long_line: &mut skipping,
            line_offset: &mut line_offset,
            long_lines: &mut long_lines,
            max_line,
            stream: true,
        }
        .feed(&buf[..n], base, on_piece);
        base += n as u64;
    }
    if !pending.is_empty() {
        emit_piece(&pending, line_offset, false, on_piece);
    }
    Ok((base, long_lines))
}

/// Up to `n` leading bytes of the open file (positional read: the file
/// offset is not moved).
fn read_head(file: Option<&File>, n: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let Some(f) = file else { return Vec::new() };
    let mut buf = vec![0u8; n];
    match f.read_at(&mut buf, 0) {
        Ok(got) => {
            buf.truncate(got);
            buf
        }
        Err(_) => Vec::new(),
    }
}

/// Loads a saved position; a missing or unreadable file means none.
pub fn load_position(path: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Saves a position atomically (write a temp file, then rename).
pub fn save_position(path: &Path, pos: &Position) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_string(pos).map_err(io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(t: &mut Tailer) -> Vec<String> {
        let mut out = Vec::new();
        t.read(usize::MAX, &mut |l, _| out.push(l.to_owned()))
            .unwrap();
        out
    }

    #[test]
    fn follows_appends_rename_truncate_and_recreate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slow.log");
        std::fs::write(&p, "old\n").unwrap();
        let mut t = Tailer::new(p.clone(), StartAt::End, None, 1024);
        assert!(lines(&mut t).is_empty(), "start at end");
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        write!(f, "a\nb").unwrap();
        assert_eq!(lines(&mut t), ["a"], "partial line held back");
        writeln!(f).unwrap();
        assert_eq!(lines(&mut t), ["b"]);
        // rename + create: the old file's last lines come first
        writeln!(f, "c").unwrap();
        std::fs::rename(&p, dir.path().join("slow.log.1")).unwrap();
        std::fs::write(&p, "d\n").unwrap();
        assert_eq!(lines(&mut t), ["c", "d"]);
        // copytruncate
        std::fs::write(&p, "").unwrap();
        std::fs::write(&p, "e\n").unwrap();
        assert_eq!(lines(&mut t), ["e"]);
        // delete + recreate
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, "f\n").unwrap();
        assert_eq!(lines(&mut t), ["f"]);
        assert_eq!(t.stats.rotations, 3);
    }

    #[test]
    fn resumes_from_saved_position_and_detects_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slow.log");
        let body: String = (0..100)
            .map(|i| format!("line {i:03} ................................\n"))
            .collect();
        std::fs::write(&p, &body).unwrap();
        let mut t = Tailer::new(p.clone(), StartAt::Beginning, None, 1024);
        assert_eq!(lines(&mut t).len(), 100);
        let pos = t.position(None).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"new\n")
            .unwrap();
        let mut resumed = Tailer::new(p.clone(), StartAt::End, Some(pos.clone()), 1024);
        assert_eq!(lines(&mut resumed), ["new"]);
        // Replaced while down: other content at the same path → from the start.
        std::fs::remove_file(&p).unwrap();
        let other: String = (0..100)
            .map(|i| format!("other {i:03} ...............................\n"))
            .collect();
        std::fs::write(&p, &other).unwrap();
        let mut replaced = Tailer::new(p.clone(), StartAt::End, Some(pos), 1024);
        assert_eq!(lines(&mut replaced).len(), 100);
    }

    #[test]
    fn long_lines_are_cut_without_buffering() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slow.log");
        let mut f = File::create(&p).unwrap();
        f.write_all(&vec![b'x'; 5 * 1024 * 1024]).unwrap();
        f.write_all(b"\nnext\n").unwrap();
        let mut t = Tailer::new(p, StartAt::Beginning, None, 1000);
        let got = lines(&mut t);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), 1000);
        assert_eq!(got[1], "next");
        assert_eq!(t.stats.long_lines, 1);
        assert!(t.pending.capacity() < 1 << 20, "buffer stayed small");
    }

    #[test]
    fn long_line_edge_cases_table() {
        // (file content, max_line, lines handed out, long_lines)
        let cases: [(&str, usize, &[&str], u64); 4] = [
            // Cut within one read chunk: counted too.
            ("abcdefgh\nok\n", 4, &["abcd", "ok"], 1),
            ("abcd\nok\n", 4, &["abcd", "ok"], 0),
            ("abcdefgh\nijklmnop\n", 4, &["abcd", "ijkl"], 2),
            ("", 4, &[], 0),
        ];
        for (content, max, want, long) in cases {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("slow.log");
            std::fs::write(&p, content).unwrap();
            let mut t = Tailer::new(p, StartAt::Beginning, None, max);
            assert_eq!(lines(&mut t), want, "{content:?}");
            assert_eq!(t.stats.long_lines, long, "{content:?}");
        }
    }

    /// The lines `read` hands out, each put back together from its pieces
    /// (as bytes); a first piece is at most `max` bytes.
    fn reassemble(max: usize, read: &mut dyn FnMut(&mut OnPiece<'_>)) -> Vec<Vec<u8>> {
        let mut got: Vec<Vec<u8>> = Vec::new();
        read(&mut |text, _, more| {
            let bytes = crate::fingerprint::bytes_of_text(text).into_owned();
            if more {
                got.last_mut().unwrap().extend(bytes);
            } else {
                assert!(bytes.len() <= max, "first piece {} > {max}", bytes.len());
                got.push(bytes);
            }
        });
        got
    }

    #[test]
    fn read_pieces_hands_out_long_lines_whole_and_gz_files_alike() {
        // (content, max_line): every line, put back together from its
        // pieces, is the line written; a line's first piece is at most
        // max_line bytes. The same through gzip (read_gz).
        let big = "b".repeat(3 * CHUNK + 17);
        let cases: Vec<(String, usize)> = vec![
            ("abcdefgh\nok\n".into(), 4),
            (format!("{big}\nnext\n{big}\n"), 1000),
            (format!("x\n{big}"), 10),
            ("caf\u{e9}\n\u{e9}\u{e9}\u{e9}\n".into(), 3),
        ];
        for (content, max) in cases {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("slow.log");
            std::fs::write(&p, &content).unwrap();
            let mut t = Tailer::new(p.clone(), StartAt::Beginning, None, max);
            let got = reassemble(max, &mut |on| t.read_pieces(usize::MAX, on).unwrap());
            // The unterminated last line is handed out once it is long.
            let want: Vec<&[u8]> = content
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n') || l.len() > max)
                .map(|l| l.trim_end_matches('\n').as_bytes())
                .collect();
            assert_eq!(got, want, "{max}");
            let gz_path = dir.path().join("slow.log.gz");
            let mut gz = flate2::write::GzEncoder::new(
                File::create(&gz_path).unwrap(),
                flate2::Compression::fast(),
            );
            gz.write_all(content.as_bytes()).unwrap();
            gz.finish().unwrap();
            let mut bytes = 0;
            let got = reassemble(max, &mut |on| bytes = read_gz(&gz_path, max, on).unwrap().0);
            assert_eq!(bytes, content.len() as u64);
            let all: Vec<&[u8]> = content
                .split_inclusive('\n')
                .map(|l| l.trim_end_matches('\n').as_bytes())
                .collect();
            assert_eq!(got, all, "gz {max}");
        }
    }

    #[test]
    fn copytruncate_during_a_long_partial_line_keeps_the_next_line() {
        // Found by tests/slowlog_props.rs (tailer model): an unterminated line
        // longer than max_line was being skipped when the file was truncated;
        // the first line written after the truncation was swallowed.
        for rotate in ["copytruncate", "rename", "delete"] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("slow.log");
            std::fs::write(&p, "1-aaaaaaaaaaaaaaaaaaaa").unwrap();
            let mut t = Tailer::new(p.clone(), StartAt::Beginning, None, 8);
            assert!(lines(&mut t).is_empty(), "{rotate}");
            match rotate {
                "copytruncate" => {}
                "rename" => std::fs::rename(&p, dir.path().join("old")).unwrap(),
                _ => std::fs::remove_file(&p).unwrap(),
            }
            std::fs::write(&p, "2-\n").unwrap();
            assert_eq!(lines(&mut t), ["1-aaaaaa", "2-"], "{rotate}");
        }
    }
}
