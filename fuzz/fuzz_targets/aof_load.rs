//! Fuzz target: arbitrary bytes scanned as an append-only file (the loader's and
//! `ferrodis-check-aof`'s scanner). The check lives in `fuzz/check/aof_load.rs`, shared with
//! `tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/aof_load.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});
