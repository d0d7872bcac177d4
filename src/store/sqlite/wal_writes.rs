//! A VFS over the platform's default that hands the WAL file each commit's frames in
//! one write.
//!
//! Why: SQLite writes a WAL frame as two `pwrite`s, its 24-byte header and then its
//! page, so a commit of 9 frames (one recorded verification) makes 18 system calls and
//! a group commit of 16 verifications over a hundred. A verify stream or `serve`
//! spends about a quarter of its committing thread's time inside them
//! (docs/benchmarks.md, issue 14). Here the frames a commit appends are gathered and
//! written with one `pwrite` when the commit frame's page arrives, before SQLite goes
//! on to publish the commit in the WAL index: readers learn of a frame only from
//! that index, so none can see a frame before it is in the file.
//!
//! What is gathered, and nothing else: frames appended one after another, starting
//! with a frame header written right after the previous write to the file. Any other
//! write (the WAL header, a frame overwritten in place, the checksums a commit after a
//! spill rewrites, a write elsewhere after another process appended) first writes out what
//! is gathered and then goes through as it came, as does every read, sync, truncate,
//! size, lock and file control: the file is, at every point where SQLite or another
//! connection could look at it, what it would be without this layer. A failed write
//! of the gathered frames is the commit frame's failure, which SQLite treats as the
//! commit failing (nothing published). Every file but a WAL is the default VFS's own
//! file, untouched.

use rusqlite::ffi;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

/// The VFS's registered name.
const NAME: &CStr = c"keyctl-wal";
/// SQLite's WAL frame header size.
const FRAME_HEADER: c_int = 24;
/// Gathered bytes are written out at this size even before a commit (a transaction of
/// thousands of pages, `create --batch`), so memory stays bounded.
const GATHER_LIMIT: usize = 1 << 20;
/// The most one write hands the default VFS: the unix VFS writes at most 128 KiB - 1
/// bytes a call (it masks the length) and answers a longer write as a full disk.
const WRITE_LIMIT: usize = 124 * 1024;

/// A WAL file: ours first (SQLite hands the methods its `pMethods`), then the default
/// VFS's file for the same path, at [`inner_offset`] in the same allocation.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    gathered: Vec<u8>,
    /// File offset of `gathered[0]`.
    start: i64,
    /// Where the previous write to this file ended (-1: none yet).
    last_end: i64,
    /// The previous write was a gathered frame header carrying a commit mark, so the
    /// next (its page) ends the commit.
    commit_next: bool,
}

/// The default VFS at registration.
struct Inner(*mut ffi::sqlite3_vfs);
// SAFETY: SQLite's VFS objects are immutable once registered and safe to call from
// any thread (SQLite's own documented contract for `sqlite3_vfs`).
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

static INNER: OnceLock<Option<Inner>> = OnceLock::new();

fn inner_offset() -> usize {
    std::mem::size_of::<WalFile>().next_multiple_of(16)
}

/// The VFS name to open stores with, registering it on first use; `None` (use
/// SQLite's default) if SQLite has no default VFS to wrap or refused the registration.
/// Call after [`super::setup_process`]: registering starts SQLite.
pub fn name() -> Option<&'static CStr> {
    let registered = INNER.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find and sqlite3_vfs_register are thread-safe (SQLite is
        // built threadsafe); the registered object is leaked, so it lives as long as
        // the process, as SQLite requires.
        unsafe {
            let default = ffi::sqlite3_vfs_find(ptr::null());
            if default.is_null() || (*default).xOpen.is_none() {
                return None;
            }
            let mut vfs = *default;
            vfs.zName = NAME.as_ptr();
            vfs.pNext = ptr::null_mut();
            vfs.szOsFile = c_int::try_from(inner_offset()).ok()? + (*default).szOsFile;
            vfs.xOpen = Some(x_open);
            let vfs = Box::leak(Box::new(vfs));
            if ffi::sqlite3_vfs_register(vfs, 0) != ffi::SQLITE_OK {
                return None;
            }
            Some(Inner(default))
        }
    });
    registered.as_ref().map(|_| NAME)
}

fn inner_vfs() -> *mut ffi::sqlite3_vfs {
    match INNER.get() {
        Some(Some(Inner(vfs))) => *vfs,
        _ => ptr::null_mut(),
    }
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let inner_vfs = inner_vfs();
    let Some(open) = (unsafe { inner_vfs.as_ref() }).and_then(|v| v.xOpen) else {
        // SAFETY: SQLite passes a file object of szOsFile bytes; pMethods must be
        // set, NULL when the open failed.
        unsafe { (*file).pMethods = ptr::null() };
        return ffi::SQLITE_CANTOPEN;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // The default VFS's own file, in the front of a larger allocation.
        // SAFETY: the allocation holds at least the default VFS's szOsFile bytes.
        return unsafe { open(inner_vfs, name, file, flags, out_flags) };
    }
    // SAFETY: the allocation is inner_offset() + the default's szOsFile bytes, 8-byte
    // aligned by SQLite; the inner file sits at a 16-byte multiple offset.
    unsafe {
        let inner = file
            .cast::<u8>()
            .add(inner_offset())
            .cast::<ffi::sqlite3_file>();
        let rc = open(inner_vfs, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            (*file).pMethods = ptr::null();
            return rc;
        }
        ptr::write(
            file.cast::<WalFile>(),
            WalFile {
                base: ffi::sqlite3_file {
                    pMethods: &WAL_METHODS,
                },
                inner,
                gathered: Vec::new(),
                start: 0,
                last_end: -1,
                commit_next: false,
            },
        );
        ffi::SQLITE_OK
    }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

/// Our file behind SQLite's pointer.
///
/// # Safety
/// `file` is a file [`x_open`] set up as a WAL file and has not been closed.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    unsafe { &mut *file.cast::<WalFile>() }
}

/// Calls the inner file's method `$m`, or answers `$missing` if it has none.
macro_rules! forward {
    ($f:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let inner = $f.inner;
        // SAFETY: the inner file was opened by the default VFS and is still open.
        match unsafe { (*(*inner).pMethods).$m } {
            Some(method) => unsafe { method(inner $(, $arg)*) },
            None => $missing,
        }
    }};
}

/// Our file, after writing out what is gathered; returns the write's error from the
/// calling method if that fails.
macro_rules! written_out {
    ($file:expr) => {{
        // SAFETY: SQLite calls the methods on a WAL file x_open set up, until x_close.
        let f = unsafe { wal($file) };
        let rc = write_out(f);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        f
    }};
}

/// Writes out what is gathered. The buffer is emptied even when the write fails: the
/// caller's write fails with it, and SQLite abandons the frames (and rewrites from
/// where its index ends).
fn write_out(f: &mut WalFile) -> c_int {
    if f.gathered.is_empty() {
        return ffi::SQLITE_OK;
    }
    let mut rc = ffi::SQLITE_OK;
    let mut at = f.start;
    for piece in f.gathered.chunks(WRITE_LIMIT) {
        let (data, len) = (piece.as_ptr().cast::<c_void>(), piece.len() as c_int);
        rc = forward!(f, xWrite, ffi::SQLITE_IOERR_WRITE, data, len, at);
        if rc != ffi::SQLITE_OK {
            break;
        }
        at += i64::from(len);
    }
    f.gathered.clear();
    rc
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite calls this on a WAL file x_open set up, with `amount` readable
    // bytes at `data`.
    let f = unsafe { wal(file) };
    let bytes = match usize::try_from(amount) {
        Ok(n) if !data.is_null() => unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) },
        _ => return forward!(f, xWrite, ffi::SQLITE_IOERR_WRITE, data, amount, offset),
    };
    let follows = offset == f.last_end;
    if !follows {
        let rc = write_out(f);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    f.last_end = offset + i64::from(amount);
    let ends_commit = std::mem::take(&mut f.commit_next);
    if follows && (!f.gathered.is_empty() || amount == FRAME_HEADER) {
        if f.gathered.is_empty() {
            f.start = offset;
        }
        f.gathered.extend_from_slice(bytes);
        // A frame header's bytes 4..8 hold the database size after the commit it
        // ends; zero for any other frame.
        f.commit_next = amount == FRAME_HEADER && bytes[4..8] != [0; 4];
        if ends_commit || f.gathered.len() >= GATHER_LIMIT {
            return write_out(f);
        }
        return ffi::SQLITE_OK;
    }
    forward!(f, xWrite, ffi::SQLITE_IOERR_WRITE, data, amount, offset)
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file once; after this the object is not used again.
    let f = unsafe { wal(file) };
    // Only frames of a commit never finished can be gathered here; written anyway, so
    // the file is as it would be without this layer.
    let _ = write_out(f);
    let rc = forward!(f, xClose, ffi::SQLITE_OK);
    unsafe { ptr::drop_in_place(&mut f.gathered) };
    rc
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let f = written_out!(file);
    forward!(f, xRead, ffi::SQLITE_IOERR_READ, data, amount, offset)
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let f = written_out!(file);
    f.last_end = -1;
    forward!(f, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size)
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let f = written_out!(file);
    forward!(f, xSync, ffi::SQLITE_IOERR_FSYNC, flags)
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    let f = written_out!(file);
    forward!(f, xFileSize, ffi::SQLITE_IOERR_FSTAT, size)
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let f = written_out!(file);
    forward!(f, xLock, ffi::SQLITE_IOERR_LOCK, level)
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let f = written_out!(file);
    forward!(f, xUnlock, ffi::SQLITE_IOERR_UNLOCK, level)
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let f = unsafe { wal(file) };
    forward!(
        f,
        xCheckReservedLock,
        ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
        out
    )
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    let f = written_out!(file);
    forward!(f, xFileControl, ffi::SQLITE_NOTFOUND, op, arg)
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let f = unsafe { wal(file) };
    forward!(f, xSectorSize, 4096)
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let f = unsafe { wal(file) };
    forward!(f, xDeviceCharacteristics, 0)
}

// SQLite maps, locks and fetches through the database file, never its WAL; these only
// keep the method table whole.
unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let f = unsafe { wal(file) };
    forward!(
        f,
        xShmMap,
        ffi::SQLITE_IOERR_SHMMAP,
        region,
        size,
        extend,
        out
    )
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let f = unsafe { wal(file) };
    forward!(f, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, offset, n, flags)
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    let f = unsafe { wal(file) };
    forward!(f, xShmBarrier, ())
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let f = unsafe { wal(file) };
    forward!(f, xShmUnmap, ffi::SQLITE_OK, delete)
}

unsafe extern "C" fn x_fetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let f = written_out!(file);
    // SAFETY: `out` is SQLite's; no mapping is an answer SQLite handles by reading.
    match unsafe { (*(*f.inner).pMethods).xFetch } {
        Some(method) => unsafe { method(f.inner, offset, amount, out) },
        None => {
            unsafe { *out = ptr::null_mut() };
            ffi::SQLITE_OK
        }
    }
}

unsafe extern "C" fn x_unfetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    page: *mut c_void,
) -> c_int {
    let f = unsafe { wal(file) };
    forward!(f, xUnfetch, ffi::SQLITE_OK, offset, page)
}

#[cfg(test)]
mod tests {
    use super::super::connect;
    use super::{ffi, CStr, NAME};
    use rusqlite::{Connection, OpenFlags};
    use std::path::Path;

    /// A WAL database of one table through keyctl's connection (this VFS), and a
    /// reader through SQLite's default VFS, which sees only what is in the files.
    fn pair(dir: &Path) -> (Connection, Connection) {
        let path = dir.join("t.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
            )
            .unwrap();
        drop(setup);
        let writer = connect(&path).unwrap();
        // As a verify session's: no sync at commit, which would write out anyway.
        writer.execute_batch("PRAGMA synchronous = NORMAL").unwrap();
        let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        (writer, reader)
    }

    fn rows(c: &Connection) -> (i64, i64) {
        c.query_row(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    fn intact(c: &Connection) {
        let check: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn the_store_connection_writes_through_this_vfs() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = pair(dir.path());
        let vfs_name = |c: &Connection| {
            let mut vfs: *mut ffi::sqlite3_vfs = std::ptr::null_mut();
            // SAFETY: a live connection's handle; the file control writes the main
            // database's VFS pointer, which lives as long as the process.
            unsafe {
                let rc = ffi::sqlite3_file_control(
                    c.handle(),
                    c"main".as_ptr(),
                    ffi::SQLITE_FCNTL_VFS_POINTER,
                    (&raw mut vfs).cast(),
                );
                assert_eq!(rc, ffi::SQLITE_OK);
                CStr::from_ptr((*vfs).zName).to_owned()
            }
        };
        assert_eq!(vfs_name(&writer).as_c_str(), NAME);
        assert_ne!(vfs_name(&reader).as_c_str(), NAME);
    }

    #[test]
    fn every_commit_is_in_the_wal_before_another_connection_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = pair(dir.path());
        for i in 1..=200i64 {
            // Commits of one to a few dozen pages, as verifications and their groups.
            let n = 1 + (i % 40) as usize;
            let tx = writer.unchecked_transaction().unwrap();
            for _ in 0..n {
                tx.execute("INSERT INTO t (body) VALUES (?1)", [vec![i as u8; 3000]])
                    .unwrap();
            }
            tx.commit().unwrap();
            assert_eq!(rows(&reader), rows(&writer), "after commit {i}");
        }
        intact(&reader);
    }

    #[test]
    fn a_commit_larger_than_one_write_of_the_default_vfs_succeeds() {
        // The unix VFS writes at most 128 KiB - 1 bytes a call and calls a longer
        // write a full disk: 4 MiB of pages in one commit must come out whole.
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = pair(dir.path());
        let tx = writer.unchecked_transaction().unwrap();
        for i in 0..1000 {
            tx.execute("INSERT INTO t (body) VALUES (?1)", [vec![i as u8; 4000]])
                .unwrap();
        }
        tx.commit().unwrap();
        assert_eq!(rows(&reader), (1000, 4_000_000));
        intact(&reader);
    }

    #[test]
    fn a_transaction_that_spills_and_rewrites_its_frames_commits_whole() {
        // A page cache of a few pages spills frames mid-transaction; updating those
        // rows again overwrites the frames in place, and the commit then rewrites
        // their checksums: every path that is not a plain append.
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = pair(dir.path());
        writer.execute_batch("PRAGMA cache_size = 10").unwrap();
        for round in 0..3u8 {
            let tx = writer.unchecked_transaction().unwrap();
            for _ in 0..300 {
                tx.execute("INSERT INTO t (body) VALUES (?1)", [vec![round; 2000]])
                    .unwrap();
            }
            tx.execute("UPDATE t SET body = zeroblob(1000) WHERE id % 7 = 0", [])
                .unwrap();
            tx.commit().unwrap();
            assert_eq!(rows(&reader), rows(&writer), "after round {round}");
        }
        // And one that spills and is rolled back: its frames never count.
        let before = rows(&writer);
        let tx = writer.unchecked_transaction().unwrap();
        for _ in 0..300 {
            tx.execute("INSERT INTO t (body) VALUES (zeroblob(2000))", [])
                .unwrap();
        }
        tx.rollback().unwrap();
        writer
            .execute("INSERT INTO t (body) VALUES (zeroblob(10))", [])
            .unwrap();
        assert_eq!(rows(&reader), (before.0 + 1, before.1 + 10));
        drop(writer);
        intact(&reader);
    }
}
