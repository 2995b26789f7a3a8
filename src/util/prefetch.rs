//! Software prefetch: start loading a cache line the code will need shortly.
//!
//! Used where a batch of independent lookups is known in advance (the keys of a pipelined
//! batch): touching all their lines first lets the memory system fetch them in parallel
//! instead of one miss after another. A prefetch is only a hint; it never faults and never
//! changes what the program computes.

/// Hints that the line holding `p` will be read soon.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 neither reads nor writes memory from the program's point of view and
    // never faults, whatever the address; SSE is part of the x86-64 baseline. The intrinsic is
    // `unsafe` only because of target-feature rules.
    #[allow(unsafe_code)]
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
