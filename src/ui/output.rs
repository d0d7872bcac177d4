//! Buffered stdout whose errors are returned, never panicked on (a closed pipe from
//! `keyctl list | head` must end keyctl quietly).

use std::io::{self, BufWriter, StdoutLock};

pub type Out = BufWriter<StdoutLock<'static>>;

pub fn stdout() -> Out {
    BufWriter::with_capacity(64 * 1024, io::stdout().lock())
}

/// Forces written data to stable storage when stdout is a regular file, so a secret
/// that could not be saved (a full disk) is noticed before the key is committed.
pub fn sync_stdout_if_file() -> io::Result<()> {
    // SAFETY: fstat/fsync on fd 1 only read or flush it; errors are reported, and the
    // descriptor is not closed.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(1, &mut st) != 0 {
            return Ok(());
        }
        if st.st_mode & libc::S_IFMT == libc::S_IFREG && libc::fsync(1) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
