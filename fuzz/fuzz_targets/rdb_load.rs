//! Fuzz target: arbitrary bytes as a Redis RDB file, as a DUMP payload's object and as a
//! FUNCTION DUMP payload's records. The check lives in `fuzz/check/rdb_load.rs`, shared with
//! `tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/rdb_load.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});
