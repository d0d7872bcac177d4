//! SQLite's own page cache with one call skipped: a commit's truncate of the cache to
//! the database's size, when no page past that size can be in it.
//!
//! Why: when SQLite's b-tree balancing sorts a split's new pages, it gives one page the
//! locking page's number (262,145 at 4 KiB pages) for a moment. SQLite's cache keeps
//! that as the largest page number it holds, and the truncate at the end of every
//! write transaction then walks its whole hash table instead of the few slots past the
//! database's end: 6.5% of `serve`'s committing thread, at about 62% of its commits
//! (docs/benchmarks.md, thirteenth session). Here each cache remembers the largest page
//! number it was handed, apart from a page moved to the locking page and moved away
//! again, and a truncate past that number is not passed on: it would drop nothing.
//! Every other call goes to SQLite's cache unchanged.

use rusqlite::ffi;
use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;

/// SQLite's page cache methods, as they were before [`install`].
struct SqliteCache(ffi::sqlite3_pcache_methods2);
// SAFETY: SQLite's page cache methods are process-wide functions SQLite calls from
// any thread; `pArg` is only handed back to them.
unsafe impl Send for SqliteCache {}
unsafe impl Sync for SqliteCache {}

static DEFAULT: OnceLock<SqliteCache> = OnceLock::new();

/// SQLite's locking page: the page holding byte 2^30 of the file, never stored.
const PENDING_BYTE: c_uint = 0x4000_0000;

struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    /// No page numbered above this is in the inner cache, except pages moved to the
    /// locking page ([`Cache::at_lock_page`]).
    max_key: c_uint,
    lock_page: c_uint,
    /// Pages moved to the locking page and not moved away yet.
    at_lock_page: u32,
}

/// Installs the cache over SQLite's own. Call before SQLite starts (from
/// [`super::setup_process`]): `sqlite3_config` works only then. False when SQLite
/// refused, which leaves its own cache in place.
pub fn install() -> bool {
    let mut default = ffi::sqlite3_pcache_methods2 {
        iVersion: 0,
        pArg: std::ptr::null_mut(),
        xInit: None,
        xShutdown: None,
        xCreate: None,
        xCachesize: None,
        xPagecount: None,
        xFetch: None,
        xUnpin: None,
        xRekey: None,
        xTruncate: None,
        xDestroy: None,
        xShrink: None,
    };
    // SAFETY: sqlite3_config before initialisation, from the only thread; it copies
    // SQLite's methods out and (the second call) ours in.
    unsafe {
        if ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, &raw mut default) != ffi::SQLITE_OK {
            return false;
        }
        let complete = default.xInit.is_some()
            && default.xCreate.is_some()
            && default.xFetch.is_some()
            && default.xUnpin.is_some()
            && default.xRekey.is_some()
            && default.xTruncate.is_some()
            && default.xDestroy.is_some();
        if !complete || DEFAULT.set(SqliteCache(default)).is_err() {
            return false;
        }
        let ours = methods();
        ffi::sqlite3_config(ffi::SQLITE_CONFIG_PCACHE2, &raw const ours) == ffi::SQLITE_OK
    }
}

fn methods() -> ffi::sqlite3_pcache_methods2 {
    ffi::sqlite3_pcache_methods2 {
        iVersion: 1,
        pArg: std::ptr::null_mut(),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        xCreate: Some(x_create),
        xCachesize: Some(x_cachesize),
        xPagecount: Some(x_pagecount),
        xFetch: Some(x_fetch),
        xUnpin: Some(x_unpin),
        xRekey: Some(x_rekey),
        xTruncate: Some(x_truncate),
        xDestroy: Some(x_destroy),
        xShrink: Some(x_shrink),
    }
}

fn default() -> &'static ffi::sqlite3_pcache_methods2 {
    // Our methods are installed only after DEFAULT is set (install), so SQLite never
    // calls them without it.
    match DEFAULT.get() {
        Some(SqliteCache(m)) => m,
        None => std::process::abort(),
    }
}

/// Our cache behind SQLite's pointer.
///
/// # Safety
/// `cache` came from [`x_create`] and has not been destroyed.
unsafe fn ours<'a>(cache: *mut ffi::sqlite3_pcache) -> &'a mut Cache {
    unsafe { &mut *cache.cast::<Cache>() }
}

/// Calls SQLite's method `$m` on the inner cache of `$c`, or answers `$missing` if it
/// has none.
macro_rules! forward {
    ($c:expr, $m:ident, $missing:expr $(, $arg:expr)*) => {
        match default().$m {
            // SAFETY: the inner cache came from SQLite's xCreate and is not destroyed.
            Some(method) => unsafe { method($c.inner $(, $arg)*) },
            None => $missing,
        }
    };
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    let d = default();
    match d.xInit {
        Some(init) => unsafe { init(d.pArg) },
        None => ffi::SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {
    let d = default();
    if let Some(shutdown) = d.xShutdown {
        unsafe { shutdown(d.pArg) }
    }
}

unsafe extern "C" fn x_create(
    page_size: c_int,
    extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    let Some(create) = default().xCreate else {
        return std::ptr::null_mut();
    };
    let inner = unsafe { create(page_size, extra, purgeable) };
    if inner.is_null() {
        return inner;
    }
    let lock_page = match c_uint::try_from(page_size) {
        Ok(size) if size > 0 => PENDING_BYTE / size + 1,
        // No such page size; no page number is then treated as the locking page.
        _ => 0,
    };
    Box::into_raw(Box::new(Cache {
        inner,
        max_key: 0,
        lock_page,
        at_lock_page: 0,
    }))
    .cast()
}

unsafe extern "C" fn x_cachesize(cache: *mut ffi::sqlite3_pcache, pages: c_int) {
    let c = unsafe { ours(cache) };
    forward!(c, xCachesize, (), pages)
}

unsafe extern "C" fn x_pagecount(cache: *mut ffi::sqlite3_pcache) -> c_int {
    let c = unsafe { ours(cache) };
    forward!(c, xPagecount, 0)
}

unsafe extern "C" fn x_fetch(
    cache: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    let c = unsafe { ours(cache) };
    let page = forward!(c, xFetch, std::ptr::null_mut(), key, create);
    // A page found at the locking page is one moved there, already counted.
    let moved_there = key == c.lock_page && c.at_lock_page > 0;
    if !page.is_null() && key > c.max_key && !moved_there {
        c.max_key = key;
    }
    page
}

unsafe extern "C" fn x_unpin(
    cache: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    let c = unsafe { ours(cache) };
    forward!(c, xUnpin, (), page, discard)
}

unsafe extern "C" fn x_rekey(
    cache: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    let c = unsafe { ours(cache) };
    forward!(c, xRekey, (), page, old, new);
    if new == c.lock_page {
        c.at_lock_page += 1;
    } else if new > c.max_key {
        c.max_key = new;
    }
    if old == c.lock_page {
        c.at_lock_page = c.at_lock_page.saturating_sub(1);
    }
}

unsafe extern "C" fn x_truncate(cache: *mut ffi::sqlite3_pcache, limit: c_uint) {
    let c = unsafe { ours(cache) };
    // Nothing at or past `limit`: dropping it all drops nothing.
    if c.at_lock_page == 0 && limit > c.max_key {
        return;
    }
    forward!(c, xTruncate, (), limit);
    c.max_key = c.max_key.min(limit.saturating_sub(1));
    if c.lock_page >= limit {
        c.at_lock_page = 0;
    }
}

unsafe extern "C" fn x_destroy(cache: *mut ffi::sqlite3_pcache) {
    // SAFETY: SQLite destroys each cache once, and uses it no more.
    let c = unsafe { Box::from_raw(cache.cast::<Cache>()) };
    forward!(c, xDestroy, ())
}

unsafe extern "C" fn x_shrink(cache: *mut ffi::sqlite3_pcache) {
    let c = unsafe { ours(cache) };
    forward!(c, xShrink, ())
}

#[cfg(test)]
mod tests {
    //! The wrapper over a cache of the tests' own (SQLite's cannot be installed once a
    //! test has started SQLite): it must never skip a truncate that would drop a page.
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Mock {
        pages: BTreeMap<c_uint, Box<ffi::sqlite3_pcache_page>>,
        truncates: usize,
    }

    /// # Safety
    /// `cache` came from `m_create` and was not destroyed.
    unsafe fn mock<'a>(cache: *mut ffi::sqlite3_pcache) -> &'a mut Mock {
        unsafe { &mut *cache.cast::<Mock>() }
    }

    unsafe extern "C" fn m_init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }
    unsafe extern "C" fn m_create(_: c_int, _: c_int, _: c_int) -> *mut ffi::sqlite3_pcache {
        Box::into_raw(Box::<Mock>::default()).cast()
    }
    unsafe extern "C" fn m_fetch(
        cache: *mut ffi::sqlite3_pcache,
        key: c_uint,
        create: c_int,
    ) -> *mut ffi::sqlite3_pcache_page {
        let m = unsafe { mock(cache) };
        if create == 0 && !m.pages.contains_key(&key) {
            return std::ptr::null_mut();
        }
        let page = m.pages.entry(key).or_insert_with(|| {
            Box::new(ffi::sqlite3_pcache_page {
                pBuf: std::ptr::null_mut(),
                pExtra: std::ptr::null_mut(),
            })
        });
        &raw mut **page
    }
    unsafe extern "C" fn m_unpin(
        cache: *mut ffi::sqlite3_pcache,
        page: *mut ffi::sqlite3_pcache_page,
        discard: c_int,
    ) {
        let m = unsafe { mock(cache) };
        if discard != 0 {
            m.pages.retain(|_, p| !std::ptr::eq(&raw const **p, page));
        }
    }
    unsafe extern "C" fn m_rekey(
        cache: *mut ffi::sqlite3_pcache,
        _: *mut ffi::sqlite3_pcache_page,
        old: c_uint,
        new: c_uint,
    ) {
        let m = unsafe { mock(cache) };
        if let Some(p) = m.pages.remove(&old) {
            m.pages.insert(new, p);
        }
    }
    unsafe extern "C" fn m_truncate(cache: *mut ffi::sqlite3_pcache, limit: c_uint) {
        let m = unsafe { mock(cache) };
        m.truncates += 1;
        m.pages.retain(|k, _| *k < limit);
    }
    unsafe extern "C" fn m_destroy(cache: *mut ffi::sqlite3_pcache) {
        drop(unsafe { Box::from_raw(cache.cast::<Mock>()) });
    }

    fn with_mock() {
        DEFAULT.get_or_init(|| {
            SqliteCache(ffi::sqlite3_pcache_methods2 {
                iVersion: 1,
                pArg: std::ptr::null_mut(),
                xInit: Some(m_init),
                xShutdown: None,
                xCreate: Some(m_create),
                xCachesize: None,
                xPagecount: None,
                xFetch: Some(m_fetch),
                xUnpin: Some(m_unpin),
                xRekey: Some(m_rekey),
                xTruncate: Some(m_truncate),
                xDestroy: Some(m_destroy),
                xShrink: None,
            })
        });
    }

    /// One cache of ours over a mock, and calls on it as SQLite makes them.
    struct Harness(*mut ffi::sqlite3_pcache);

    impl Harness {
        fn new() -> Harness {
            with_mock();
            Harness(unsafe { x_create(4096, 0, 1) })
        }
        fn inner(&self) -> &Mock {
            unsafe { mock(ours(self.0).inner) }
        }
        fn fetch(&self, key: c_uint) {
            assert!(!unsafe { x_fetch(self.0, key, 1) }.is_null());
        }
        fn page(&self, key: c_uint) -> *mut ffi::sqlite3_pcache_page {
            unsafe { x_fetch(self.0, key, 0) }
        }
        fn rekey(&self, old: c_uint, new: c_uint) {
            let page = self.page(old);
            assert!(!page.is_null(), "no page {old}");
            unsafe { x_rekey(self.0, page, old, new) }
        }
        fn discard(&self, key: c_uint) {
            let page = self.page(key);
            if !page.is_null() {
                unsafe { x_unpin(self.0, page, 1) }
            }
        }
        /// Truncates, and checks a skipped truncate would have dropped nothing.
        fn truncate(&self, limit: c_uint) -> bool {
            let would_drop = self.inner().pages.keys().any(|k| *k >= limit);
            let before = self.inner().truncates;
            unsafe { x_truncate(self.0, limit) };
            let passed_on = self.inner().truncates > before;
            assert!(
                passed_on || !would_drop,
                "skipped a truncate to {limit} that drops pages"
            );
            assert!(self.inner().pages.keys().all(|k| *k < limit));
            passed_on
        }
        /// SQLite's balance_nonroot swapping two pages' numbers through the locking page.
        fn swap(&self, a: c_uint, b: c_uint) {
            const LOCK: c_uint = PENDING_BYTE / 4096 + 1;
            self.rekey(a, LOCK);
            self.rekey(b, a);
            self.rekey(LOCK, b);
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            unsafe { x_destroy(self.0) }
        }
    }

    #[test]
    fn a_commit_after_a_swap_through_the_locking_page_skips_the_truncate() {
        let h = Harness::new();
        for key in 1..=100 {
            h.fetch(key);
        }
        h.swap(40, 90);
        assert!(!h.truncate(101), "nothing past the end: not passed on");
        assert_eq!(h.inner().pages.len(), 100);
        // The database shrank (a rolled-back growth): passed on, and pages dropped.
        assert!(h.truncate(51));
        assert_eq!(h.inner().pages.len(), 50);
        h.fetch(60);
        assert!(!h.truncate(61));
        assert!(h.truncate(55));
        assert!(h.page(60).is_null());
    }

    #[test]
    fn a_page_left_at_the_locking_page_is_truncated_away() {
        let h = Harness::new();
        for key in 1..=20 {
            h.fetch(key);
        }
        h.rekey(10, PENDING_BYTE / 4096 + 1);
        assert!(h.truncate(21), "a page sits at the locking page: passed on");
        assert_eq!(h.inner().pages.len(), 19);
        assert!(!h.truncate(21));
    }

    #[test]
    fn no_sequence_of_calls_skips_a_truncate_that_drops_a_page() {
        let h = Harness::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as c_uint
        };
        let size = RefCell::new(50u32);
        for _ in 0..20_000 {
            let live: Vec<c_uint> = h.inner().pages.keys().copied().collect();
            match next(11) {
                0..=3 => h.fetch(1 + next(u64::from(*size.borrow()) + 5)),
                4 if live.len() >= 2 => {
                    let (a, b) = (
                        live[next(live.len() as u64) as usize],
                        live[next(live.len() as u64) as usize],
                    );
                    if a != b {
                        h.swap(a, b);
                    }
                }
                5 if !live.is_empty() => h.discard(live[next(live.len() as u64) as usize]),
                6 => {
                    let grown = *size.borrow() + next(4);
                    *size.borrow_mut() = grown;
                }
                7 => {
                    let shrunk = (*size.borrow()).saturating_sub(next(6)).max(1);
                    *size.borrow_mut() = shrunk;
                }
                // A page moved to a number of its own (SQLite's pager moves pages so).
                8 if !live.is_empty() => {
                    let to = 1 + next(u64::from(*size.borrow()) + 10);
                    if h.page(to).is_null() {
                        h.rekey(live[next(live.len() as u64) as usize], to);
                    }
                }
                _ => {
                    h.truncate(*size.borrow() + 1);
                }
            }
        }
    }
}
