//! Reading the small local files perfwatch is given (the config, the web
//! config, secrets, certificates), bounded in size and never blocking.
//!
//! Why a module of its own: a path in a config can name anything. A FIFO
//! blocks `open` until a writer comes (a reload or a connect would hang, and
//! with it shutdown), `/dev/zero` never ends (4.6 GB in 4 s once), and a log
//! file given by mistake can be huge. So every such read goes through
//! [`read_regular_file`]: opened without blocking, checked to be a regular
//! file on the open descriptor (no race between a check and the open), and
//! read up to a limit.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest config file (`--config.file`) read.
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest web config, certificate, key or CA bundle read.
pub const MAX_PEM_OR_WEB_CONFIG_BYTES: u64 = 1024 * 1024;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum LocalFileError {
    /// Opening or reading failed (missing, permission denied, …).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A FIFO, device, socket or directory.
    #[error("not a regular file (a FIFO, device, socket or directory)")]
    NotRegular,
    /// Larger than the limit.
    #[error("larger than {0} bytes; is it the right file?")]
    TooLarge(u64),
}

/// Opens `path` for reading without blocking (a FIFO opens at once instead
/// of waiting for a writer) and only if it is a regular file; symlinks are
/// followed, as Kubernetes secret mounts use them.
pub fn open_regular_file(path: &Path) -> Result<File, LocalFileError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(LocalFileError::NotRegular);
    }
    Ok(file)
}

/// The whole of a regular file of at most `max_bytes`.
pub fn read_regular_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, LocalFileError> {
    let file = open_regular_file(path)?;
    let mut bytes = Vec::new();
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(LocalFileError::TooLarge(max_bytes));
    }
    Ok(bytes)
}

/// [`read_regular_file`] as UTF-8 text.
pub fn read_regular_text(path: &Path, max_bytes: u64) -> Result<String, LocalFileError> {
    let bytes = read_regular_file(path, max_bytes)?;
    String::from_utf8(bytes)
        .map_err(|_| LocalFileError::Io(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_large_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo only reads the NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer ever comes: a blocking open would hang this test.
        assert!(matches!(
            read_regular_file(&fifo, 10),
            Err(LocalFileError::NotRegular)
        ));
        assert!(matches!(
            read_regular_file(Path::new("/dev/zero"), 10),
            Err(LocalFileError::NotRegular)
        ));
        assert!(matches!(
            read_regular_file(dir.path(), 10),
            Err(LocalFileError::NotRegular)
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 11]).unwrap();
        assert!(matches!(
            read_regular_file(&big, 10),
            Err(LocalFileError::TooLarge(10))
        ));
        std::fs::write(&big, b"0123456789").unwrap();
        assert_eq!(read_regular_text(&big, 10).unwrap(), "0123456789");
        assert!(matches!(
            read_regular_file(&dir.path().join("missing"), 10),
            Err(LocalFileError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }
}
