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

/// jemalloc's own view of the heap (INFO memory's `allocator_*` fields): bytes in live
/// allocations, in the pages those allocations occupy, and in pages jemalloc holds resident.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllocatorStats {
    pub allocated: usize,
    pub active: usize,
    pub resident: usize,
}

/// Reads [`AllocatorStats`] (jemalloc refreshes its statistics only when asked to, through its
/// `epoch`). `None` if jemalloc does not answer.
pub fn allocator_stats() -> Option<AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(AllocatorStats {
        allocated: stats::allocated::read().ok()?,
        active: stats::active::read().ok()?,
        resident: stats::resident::read().ok()?,
    })
}

/// jemalloc's statistics report (MEMORY MALLOC-STATS), as `malloc_stats_print` writes it.
pub fn malloc_stats_text() -> String {
    let mut out = Vec::new();
    let options = tikv_jemalloc_ctl::stats_print::Options::default();
    match tikv_jemalloc_ctl::stats_print::stats_print(&mut out, options) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => format!("Stats not supported for the current allocator: {e}\n"),
    }
}

/// jemalloc's version, `major.minor.bugfix` (INFO `mem_allocator`: `jemalloc-5.3.0`).
pub fn jemalloc_version() -> Option<String> {
    let v = tikv_jemalloc_ctl::version::read().ok()?;
    Some(v.split('-').next().unwrap_or(v).to_string())
}

/// MEMORY PURGE: returns every arena's unused dirty pages to the system now, as Redis does,
/// instead of when jemalloc's decay timer would.
pub fn purge() -> bool {
    // `arena.<MALLCTL_ARENAS_ALL>.purge`: a command without a value.
    const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
    // SAFETY: the name is NUL-terminated, and this control takes no value and returns none,
    // so every pointer jemalloc could read or write through is null.
    #[allow(unsafe_code)]
    let r = unsafe {
        tikv_jemalloc_sys::mallctl(
            PURGE_ALL.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    r == 0
}

/// `jemalloc-bg-thread`: whether one jemalloc thread returns freed memory to the system in the
/// background. Without it jemalloc does that work inside allocations and frees, i.e. on the
/// event loop, and an idle server never does it at all (its RSS stays where the last burst
/// left it). One thread is enough for a server whose allocations come from one thread.
pub fn set_background_thread(on: bool) -> bool {
    use tikv_jemalloc_ctl::{background_thread, max_background_threads};
    if on {
        let _ = max_background_threads::write(1);
    }
    background_thread::write(on).is_ok()
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
