//! Process-level protections for commands that hold secrets.

/// Marks the process non-dumpable (Linux `PR_SET_DUMPABLE` 0): no core dump can write
/// a secret to disk, and other processes of the same user cannot ptrace it or read its
/// memory. Best effort: elsewhere it does nothing.
pub fn forbid_core_dumps() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_DUMPABLE only changes this process's dumpable flag.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}
