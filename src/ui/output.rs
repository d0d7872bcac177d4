//! Buffered stdout whose errors are returned, never panicked on (a closed pipe from
//! `keyctl list | head` must end keyctl quietly).

use std::io::{self, BufWriter, StdoutLock};

pub type Out = BufWriter<StdoutLock<'static>>;

/// For commands whose exit code is their answer (`verify`, `audit verify`): a reader
/// that closed stdout must not turn a refusal into success, so a closed pipe is no
/// error here (the answer's exit code follows); any other write failure is.
pub fn answer_written(written: io::Result<()>) -> crate::error::Result<()> {
    match written {
        Err(e) if !crate::error::is_closed_output(&e) => Err(e.into()),
        _ => Ok(()),
    }
}

pub fn stdout() -> Out {
    BufWriter::with_capacity(64 * 1024, io::stdout().lock())
}

/// True when stdout is a pipe or socket whose reader went away. A command that may
/// wait long between writes (`logs --follow`) asks this while idle, so a gone reader
/// ends it then rather than at its next write, which may never come.
pub fn reader_gone() -> bool {
    poll_now(1, libc::POLLOUT) & (libc::POLLERR | libc::POLLHUP) != 0
}

/// The events of `fd` among `events` that are there now (a zero-timeout `poll`; errors
/// and hang-ups are always reported), or 0.
pub fn poll_now(fd: libc::c_int, events: libc::c_short) -> libc::c_short {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: poll reads and writes only the one pollfd given, and does not block
    // (timeout 0).
    let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
    if ready == 1 {
        pfd.revents
    } else {
        0
    }
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

/// `1 key`, `2 keys`: a count with its noun (regular plurals, which is all keyctl says).
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plural_says_one_without_s() {
        assert_eq!(super::plural(0, "key"), "0 keys");
        assert_eq!(super::plural(1, "key"), "1 key");
        assert_eq!(super::plural(2, "event"), "2 events");
    }
}
