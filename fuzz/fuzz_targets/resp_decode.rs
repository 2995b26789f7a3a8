//! Fuzz target: arbitrary bytes through `RequestParser`, fed whole and in chunks.
//! The check lives in `fuzz/check/resp_decode.rs`, shared with `tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/resp_decode.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});
