//! Fuzz target: arbitrary bytes as a pipeline of commands against an in-process server. The
//! check lives in `fuzz/check/commands.rs`, shared with `tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check/commands.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});
