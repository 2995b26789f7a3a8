//! The `aof_load` property, shared by the fuzz target and by `tests/fuzz_corpus.rs` (which
//! replays the corpus under plain `cargo test` on stable).
//!
//! Input: any bytes, taken as an append-only file. The property: the scanner behind the loader
//! and `ferrodis-check-aof` never panics; its verdict is the same whether the file is read at
//! once or a few bytes at a time (records straddle the reader's buffer); the offset it calls
//! whole never passes the end of the file, and equals it when nothing is damaged; and cutting a
//! whole file anywhere gives a torn tail, never a "corrupted record" (so `aof-load-truncated`
//! can repair every crash, and real corruption is never mistaken for one).

use std::io::Read;

use ferrodis::aof::format::{check as scan, Verdict};

/// A reader that hands out at most `n` bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.n.min(buf.len()).min(self.data.len());
        buf[..k].copy_from_slice(&self.data[..k]);
        self.data = &self.data[k..];
        Ok(k)
    }
}

fn summary(v: &Verdict) -> (u64, u64, u64, Option<(u64, bool)>) {
    (v.valid, v.commands, v.frames, v.damage.as_ref().map(|d| (d.0, d.2)))
}

pub fn check(data: &[u8]) {
    let whole = check_whole(data);
    for n in [1usize, 7, 4096] {
        let v = scan(Trickle { data, n }).expect("reading from memory cannot fail");
        assert_eq!(summary(&v), summary(&whole), "verdict differs with {n}-byte reads");
    }
}

/// The properties of a file read at once (the cheap part of [`check`], for mass mutations).
pub fn check_whole(data: &[u8]) -> Verdict {
    let whole = scan(data).expect("reading from memory cannot fail");
    assert!(whole.valid <= data.len() as u64, "valid offset past the end");
    if whole.damage.is_none() {
        assert_eq!(whole.valid, data.len() as u64, "an undamaged file is whole to its end");
    }
    whole
}

/// For a file the scanner calls whole: every prefix is whole or torn, never corrupt.
pub fn check_prefixes(data: &[u8]) {
    let whole = scan(data).expect("reading from memory cannot fail");
    if whole.damage.is_some() {
        return;
    }
    for cut in 0..data.len() {
        let v = scan(&data[..cut]).expect("reading from memory cannot fail");
        if let Some((at, reason, torn)) = &v.damage {
            assert!(*torn, "cut at {cut} reported as corrupt at {at}: {reason}");
        }
    }
}
