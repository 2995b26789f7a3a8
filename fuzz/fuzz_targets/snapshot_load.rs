//! Fuzz target: arbitrary bytes loaded as a snapshot file, and decoded as raw block records.
//! The check lives in `fuzz/check/snapshot_load.rs`, shared with `tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/snapshot_load.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});
