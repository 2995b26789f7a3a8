//! The `rdb_load` property, shared by the fuzz target and by `tests/fuzz_corpus.rs` (which
//! replays the corpus under plain `cargo test` on stable).
//!
//! Input: any bytes, read the three ways Redis's RDB format reaches ferrodis: as a whole RDB
//! file (`rdb::load`: a `dump.rdb` at start-up, a full sync from a redis-server master), as the
//! object of a DUMP payload (`rdb::dump_object`: RESTORE) and as the records of a FUNCTION
//! DUMP payload (`rdb::function_records`: FUNCTION RESTORE). RESTORE's CRC-64 is no guard:
//! any client can compute it, so the object decoder sees arbitrary bytes from the network.
//! The property: no panic, no allocation from a length not checked against the bytes present
//! (the replay runs under a 2 GB address-space limit), an error names an offset inside the
//! input, and every value loaded is sound to walk. Each runs with Redis's default encoding
//! limits and with tiny ones, so that every encoding conversion is exercised.

// Only the sink, the walk and the limits of the snapshot property are used here.
#[allow(dead_code)]
#[path = "snapshot_load.rs"]
mod snapshot_load;

use ferrodis::snapshot::codec::EncodingLimits;
use ferrodis::snapshot::rdb;
use snapshot_load::{tiny, walk, Counter};

pub fn check(data: &[u8]) {
    for lim in [EncodingLimits::default(), tiny()] {
        let mut c = Counter::default();
        match rdb::load(data, lim, &mut c) {
            Ok(_) => assert!(c.meta, "loaded without a header"),
            Err(e) => {
                assert!(e.offset <= data.len() as u64, "error offset past the input: {e}");
                assert!(!e.reason.is_empty());
            }
        }
        match rdb::dump_object(data, &lim) {
            Ok(v) => walk(&v),
            Err(e) => assert!(!e.is_empty()),
        }
        if let Err(e) = rdb::function_records(data) {
            assert!(!e.is_empty());
        }
    }
}
