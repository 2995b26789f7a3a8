//! The `resp_decode` property, shared by the fuzz target and by `tests/fuzz_corpus.rs` (which
//! replays the corpus under plain `cargo test` on stable).
//!
//! Input: any bytes, taken as what a client sends. The property: the parser never panics, and
//! the requests it yields (arguments, in order) and the protocol error it stops with, if any,
//! are the same whether the bytes arrive at once, one byte at a time, or in chunks of random
//! sizes (split points derived from a hash of the input, so a corpus file is plain RESP). The
//! chunked runs also drop consumed bytes between reads exactly like the connection does, which
//! exercises `discard_front`.
//!
//! Inputs longer than the 64 KiB line limit are only checked for panics: there, whether a long
//! line is refused legitimately depends on how much of it had arrived (Redis behaves alike).

use ferrodis::protocol::decode::{ArgSource, INLINE_MAX_SIZE};
use ferrodis::protocol::{ProtocolError, RequestParser};

/// Requests parsed, and the error that ended parsing (if any).
type Outcome = (Vec<Vec<Vec<u8>>>, Option<ProtocolError>);

/// Small `proto-max-bulk-len` so that length checks are reachable with small inputs.
const MAX_BULK: usize = 1 << 20;

pub fn check(data: &[u8]) {
    for auth_required in [false, true] {
        let whole = feed(data, &[data.len()], auth_required);
        if data.len() > INLINE_MAX_SIZE {
            continue;
        }
        if data.len() <= 1024 {
            let bytewise = feed(data, &vec![1; data.len()], auth_required);
            assert_eq!(whole, bytewise, "byte-at-a-time parse differs");
        }
        let mut seed = fnv(data) ^ u64::from(auth_required);
        for _ in 0..4 {
            let sizes = chunk_sizes(data.len(), &mut seed);
            let chunked = feed(data, &sizes, auth_required);
            assert_eq!(whole, chunked, "chunked parse differs (chunks {sizes:?})");
        }
    }
}

/// Feeds `data` in chunks of the given sizes, parsing after each, like a connection's reads.
fn feed(data: &[u8], sizes: &[usize], auth_required: bool) -> Outcome {
    let mut p = RequestParser::new(MAX_BULK);
    let mut buf: Vec<u8> = Vec::new();
    let mut reqs = Vec::new();
    let mut at = 0;
    for &n in sizes {
        let end = (at + n).min(data.len());
        buf.extend_from_slice(&data[at..end]);
        at = end;
        loop {
            match p.parse(&buf, auth_required) {
                Ok(true) => reqs.push(args(&p, &buf)),
                Ok(false) => break,
                Err(e) => return (reqs, Some(e)),
            }
            assert!(p.consumed() <= buf.len(), "consumed past the buffer");
        }
        let consumed = p.consumed();
        assert!(consumed <= buf.len(), "consumed past the buffer");
        buf.drain(..consumed);
        p.discard_front(consumed);
    }
    (reqs, None)
}

fn args(p: &RequestParser, buf: &[u8]) -> Vec<Vec<u8>> {
    let a: Vec<Vec<u8>> = match p.args_source() {
        ArgSource::Buffer => p.ranges().iter().map(|r| buf[r.clone()].to_vec()).collect(),
        ArgSource::Inline => p.inline_args().to_vec(),
    };
    assert!(!a.is_empty(), "a ready request has at least one argument");
    a
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Random chunk sizes (1..=len/2+1) covering `len` bytes.
fn chunk_sizes(len: usize, seed: &mut u64) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = len;
    while left > 0 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let n = 1 + (*seed >> 33) as usize % (len / 2 + 1);
        let n = n.min(left);
        sizes.push(n);
        left -= n;
    }
    sizes
}
