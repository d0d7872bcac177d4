//! SQLite's memory for a `verify` process: size classes with free lists, carved from
//! 64 KiB chunks that are kept until the process ends.
//!
//! Why: a one-shot verify spends a fifth of its instructions in the C library's
//! malloc and free, almost all of them SQLite parsing the schema and preparing
//! statements (about a thousand small blocks, then freed again at close), and the
//! general-purpose allocator's bins, coalescing and consolidation are work a process
//! that lives a few milliseconds never needs. Here an allocation is a list pop or a
//! pointer bump and a free a list push. Freed blocks are reused by their class, so a
//! `verify --stream` that runs for days holds no more than its peak per class.
//! Blocks above 32 KiB (SQLite's page-cache bulk, big rows) go to the C library.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{c_int, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};

/// Every block starts with its size (header included), so `free` and `xSize` know it.
const HEADER: usize = 8;
/// Chunks and large blocks are 16-aligned and every class a multiple of 16, so the
/// data after a block's header has the 8-byte alignment SQLite asks of its allocator.
const ALIGN: usize = 16;
const CHUNK: usize = 64 * 1024;
/// The largest block a class serves (header included); anything larger is the C
/// library's.
const MAX_SMALL: usize = 32 * 1024;
/// 16..=128 in steps of 16, then four classes per doubling up to 32 KiB.
const CLASSES: usize = 8 + 8 * 4;

/// The class of a block of `n` bytes (header included, 1..=MAX_SMALL).
fn class_of(n: usize) -> usize {
    if n <= 128 {
        return n.div_ceil(16).max(1) - 1;
    }
    let p = (usize::BITS - 1 - (n - 1).leading_zeros()) as usize; // 2^p < n <= 2^(p+1)
    let step = 1usize << (p - 2);
    8 + (p - 7) * 4 + (n - 1 - (1 << p)) / step
}

/// The block size of a class (header included).
fn class_size(class: usize) -> usize {
    if class < 8 {
        return (class + 1) * 16;
    }
    let (group, k) = ((class - 8) / 4, (class - 8) % 4);
    let p = 7 + group;
    (1 << p) + (k + 1) * (1 << (p - 2))
}

struct Arena {
    free: [*mut u8; CLASSES],
    bump: *mut u8,
    end: *mut u8,
}

/// The arena's state, behind a spin lock: SQLite calls the allocator from every
/// thread using it (memory statistics, and with them SQLite's own allocator mutex,
/// are off), and a critical section here is a few dozen instructions.
struct Shared {
    lock: AtomicBool,
    arena: std::cell::UnsafeCell<Arena>,
}

// SAFETY: `arena` is only touched while `lock` is held (`with_arena`).
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared {
    lock: AtomicBool::new(false),
    arena: std::cell::UnsafeCell::new(Arena {
        free: [null_mut(); CLASSES],
        bump: null_mut(),
        end: null_mut(),
    }),
};

fn with_arena<T>(f: impl FnOnce(&mut Arena) -> T) -> T {
    let mut spins = 0u32;
    while SHARED
        .lock
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        // A holder preempted on the same core (a verifier's checkpoint thread shares
        // it) is let run instead of being waited for a whole time slice.
        spins += 1;
        if spins % 64 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    // SAFETY: the lock is held, so this is the only reference.
    let out = f(unsafe { &mut *SHARED.arena.get() });
    SHARED.lock.store(false, Ordering::Release);
    out
}

impl Arena {
    /// A block of class `class` (its header not yet written), or null when the C
    /// library has no memory for a new chunk.
    unsafe fn take(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if !head.is_null() {
            // A free block's first word (after the header) links the next one.
            self.free[class] = unsafe { *(head.add(HEADER) as *mut *mut u8) };
            return head;
        }
        let size = class_size(class);
        if (self.end as usize) - (self.bump as usize) < size {
            // The rest of the old chunk is left unused: at most one block's worth.
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, ALIGN)) };
            if chunk.is_null() {
                return null_mut();
            }
            self.bump = chunk;
            self.end = unsafe { chunk.add(CHUNK) };
        }
        let block = self.bump;
        self.bump = unsafe { block.add(size) };
        block
    }

    unsafe fn give(&mut self, block: *mut u8, class: usize) {
        unsafe { *(block.add(HEADER) as *mut *mut u8) = self.free[class] };
        self.free[class] = block;
    }
}

/// The whole block size for a request of `n` usable bytes.
fn block_size(n: usize) -> usize {
    let n = n.max(1) + HEADER;
    if n <= MAX_SMALL {
        class_size(class_of(n))
    } else {
        n.next_multiple_of(ALIGN)
    }
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    let Ok(n) = usize::try_from(n) else {
        return null_mut();
    };
    let size = block_size(n);
    let block = if size <= MAX_SMALL {
        with_arena(|a| unsafe { a.take(class_of(size)) })
    } else {
        // SAFETY: size is non-zero and a multiple of ALIGN.
        unsafe { System.alloc(Layout::from_size_align_unchecked(size, ALIGN)) }
    };
    if block.is_null() {
        return null_mut();
    }
    // SAFETY: every block has room for its header.
    unsafe {
        *(block as *mut usize) = size;
        block.add(HEADER) as *mut c_void
    }
}

/// The block a pointer handed to SQLite belongs to, and its size.
unsafe fn block_of(p: *mut c_void) -> (*mut u8, usize) {
    let block = unsafe { (p as *mut u8).sub(HEADER) };
    (block, unsafe { *(block as *const usize) })
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    let (block, size) = unsafe { block_of(p) };
    if size <= MAX_SMALL {
        with_arena(|a| unsafe { a.give(block, class_of(size)) });
    } else {
        unsafe { System.dealloc(block, Layout::from_size_align_unchecked(size, ALIGN)) };
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    if p.is_null() {
        return unsafe { x_malloc(n) };
    }
    let Ok(wanted) = usize::try_from(n) else {
        return null_mut();
    };
    let (_, size) = unsafe { block_of(p) };
    if block_size(wanted) == size {
        return p;
    }
    let q = unsafe { x_malloc(n) };
    if !q.is_null() {
        let keep = wanted.min(size - HEADER);
        unsafe {
            std::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, keep);
            x_free(p);
        }
    }
    q
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    let (_, size) = unsafe { block_of(p) };
    c_int::try_from(size - HEADER).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    let Ok(wanted) = usize::try_from(n) else {
        return n;
    };
    c_int::try_from(block_size(wanted) - HEADER).unwrap_or(n)
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    rusqlite::ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Makes the arena SQLite's allocator for this process; false (and SQLite's own
/// allocator stays) when SQLite is already initialised. Call it before the first
/// connection, while no other thread uses SQLite.
pub fn install() -> bool {
    let methods = rusqlite::ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: null_mut(),
    };
    // SAFETY: SQLite copies the methods; before initialisation the call only stores
    // them, after it it returns SQLITE_MISUSE and changes nothing.
    let installed = unsafe {
        rusqlite::ffi::sqlite3_config(
            rusqlite::ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const rusqlite::ffi::sqlite3_mem_methods,
        ) == rusqlite::ffi::SQLITE_OK
    };
    if installed {
        // No lookaside: a connection's own pool of small blocks is what the arena
        // already is, and SQLite writes every slot of it when the connection opens.
        // SAFETY: as above, before initialisation.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_LOOKASIDE,
                0 as std::ffi::c_int,
                0 as std::ffi::c_int,
            );
        }
    }
    installed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_gets_the_smallest_class_that_holds_it() {
        let mut last = 0;
        for class in 0..CLASSES {
            let size = class_size(class);
            assert!(size > last && size % 16 == 0, "class {class}: {size}");
            assert_eq!(class_of(size), class);
            assert_eq!(class_of(last + 1), class, "{}", last + 1);
            last = size;
        }
        assert_eq!(last, MAX_SMALL);
        // At most a quarter is wasted above 128 bytes.
        for n in 129..=MAX_SMALL {
            let size = class_size(class_of(n));
            assert!(size >= n && size * 4 <= n * 5 + 4 * 32, "{n} -> {size}");
        }
    }

    #[test]
    fn blocks_keep_their_bytes_through_realloc_and_are_reused_after_free() {
        unsafe {
            let a = x_malloc(100) as *mut u8;
            assert!(!a.is_null() && (a as usize) % 8 == 0);
            assert!(x_size(a as *mut c_void) >= 100);
            for i in 0..100 {
                *a.add(i) = i as u8;
            }
            let b = x_realloc(a as *mut c_void, 5000) as *mut u8;
            assert!(x_size(b as *mut c_void) >= 5000);
            for i in 0..100 {
                assert_eq!(*b.add(i), i as u8);
            }
            let big = x_realloc(b as *mut c_void, 100_000) as *mut u8;
            assert_eq!(*big.add(99), 99);
            assert_eq!(x_roundup(100_000), x_size(big as *mut c_void));
            x_free(big as *mut c_void);
            let c = x_malloc(5000);
            x_free(c);
            assert_eq!(x_malloc(4990), c, "a freed block serves its class again");
            assert_eq!(x_roundup(1), 8);
            x_free(null_mut());
        }
    }
}
