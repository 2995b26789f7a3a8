//! Memory accounting: a counting wrapper around jemalloc.
//!
//! Redis reports `used_memory` from its own allocator wrapper and compares it with `maxmemory`
//! before every write, so the number must be exact and cheap to read. Wrapping the global
//! allocator gives both: one counter update per allocation and free. The binary installs it
//! with `#[global_allocator]`; library users (tests) simply see 0 unless they do the same.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Net bytes allocated by the event-loop thread. Only that thread writes it, with a plain load
/// and store: a locked read-modify-write on every allocation and free would be a full memory
/// barrier on x86, and on the request path it stalls on whatever cache misses are in flight
/// (it was the most expensive instruction of a pipelined SET).
static OWNER: AtomicIsize = AtomicIsize::new(0);
/// Net bytes allocated by every other thread (loaders, writers), which are few and coarse.
static OTHERS: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static IS_OWNER: Cell<bool> = const { Cell::new(false) };
}

/// Makes the calling thread the one whose allocations are counted without atomics. Call once,
/// from the event-loop thread, before it serves anything; a second caller would race.
pub fn claim_owner_thread() {
    IS_OWNER.with(|o| o.set(true));
}

#[inline]
fn count(delta: isize) {
    // `try_with`: the allocator may run while a thread's locals are being torn down.
    if IS_OWNER.try_with(Cell::get).unwrap_or(false) {
        OWNER.store(OWNER.load(Ordering::Relaxed) + delta, Ordering::Relaxed);
    } else {
        OTHERS.fetch_add(delta, Ordering::Relaxed);
    }
}

/// Bytes currently allocated through the counting allocator. (A block freed by another thread
/// than the one that allocated it moves bytes between the two counters; only the sum counts.)
pub fn used_memory() -> usize {
    (OWNER.load(Ordering::Relaxed) + OTHERS.load(Ordering::Relaxed)).max(0) as usize
}

/// A global allocator that counts bytes in use.
pub struct Counting<A>(pub A);

// SAFETY: every method forwards to the wrapped allocator with the caller's arguments unchanged,
// so the wrapped allocator's guarantees carry over; the counters are only bookkeeping.
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        count(-(layout.size() as isize));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Resident set size of this process in bytes, from `/proc/self/statm`.
pub fn rss_bytes() -> usize {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// CPU time used, in seconds (INFO cpu).
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuUsage {
    pub user: f64,
    pub sys: f64,
    pub user_children: f64,
    pub sys_children: f64,
}

fn tv_secs(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1_000_000.0
}

fn getrusage(who: libc::c_int) -> Option<libc::rusage> {
    // SAFETY: libc::rusage is a plain C struct for which all-zero bytes is a valid value, and
    // getrusage only writes into the struct we own for the duration of the call.
    #[allow(unsafe_code)]
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        (libc::getrusage(who, &mut ru) == 0).then_some(ru)
    }
}

/// CPU time of this process and of its waited-for children, from `getrusage`.
pub fn rusage() -> CpuUsage {
    let mut u = CpuUsage::default();
    if let Some(ru) = getrusage(libc::RUSAGE_SELF) {
        u.user = tv_secs(ru.ru_utime);
        u.sys = tv_secs(ru.ru_stime);
    }
    if let Some(ru) = getrusage(libc::RUSAGE_CHILDREN) {
        u.user_children = tv_secs(ru.ru_utime);
        u.sys_children = tv_secs(ru.ru_stime);
    }
    u
}
