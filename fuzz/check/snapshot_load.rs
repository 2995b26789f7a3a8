//! The `snapshot_load` property, shared by the fuzz target and by `tests/fuzz_corpus.rs` (which
//! replays the corpus under plain `cargo test` on stable).
//!
//! Input: any bytes, taken as a snapshot file. The property: `load` never panics, never
//! allocates from a length it has not checked against the bytes present (the replay runs under
//! a 2 GB address-space limit), and its result is coherent: an error names an offset inside the
//! input and a reason; a success reports the header first and only whole records. The same
//! bytes are also decoded as the raw records of a `Values` and of an `Expires` block, which
//! reaches the record decoder without having to get past the checksums. Each runs with Redis's
//! default encoding limits and with tiny ones, so that every encoding conversion is exercised.

use ferrodis::keyspace::hash::HashLimits;
use ferrodis::keyspace::zset;
use ferrodis::keyspace::Value;
use ferrodis::snapshot::codec::{BlockKind, EncodingLimits};
use ferrodis::snapshot::file::{decode_records, load, LoadSink, Meta};

/// Counts what a load delivers and checks the order of calls.
#[derive(Default)]
pub struct Counter {
    pub meta: bool,
    pub values: u64,
    pub expires: u64,
}

impl LoadSink for Counter {
    fn meta(&mut self, _meta: &Meta) -> Result<(), String> {
        assert!(!self.meta, "meta reported twice");
        self.meta = true;
        Ok(())
    }

    fn value(&mut self, _db: u32, _key: &[u8], value: Value) -> Result<(), String> {
        assert!(self.meta, "a value before the header");
        assert!(
            !matches!(&value, Value::List(l) if l.is_empty()),
            "empty list loaded"
        );
        // A buffer adopted verbatim must be sound: walk every element (lists both ways).
        walk(&value);
        self.values += 1;
        Ok(())
    }

    fn expire(&mut self, _db: u32, _key: &[u8], _at_ms: u64) -> Result<(), String> {
        assert!(self.meta, "an expiry before the header");
        self.expires += 1;
        Ok(())
    }
}

/// Reads every element of a loaded value, checking the counts.
pub fn walk(value: &Value) {
    match value {
        Value::Str(_) => {}
        Value::List(l) => {
            assert_eq!(l.iter().count(), l.len());
            assert_eq!(l.iter().rev().count(), l.len());
        }
        Value::Hash(h) => {
            assert_eq!(h.iter().filter(|(f, _)| h.contains(f)).count(), h.len());
        }
        Value::Set(s) => assert_eq!(s.iter().filter(|m| s.contains_member(*m)).count(), s.len()),
        Value::ZSet(z) => {
            let mut n = 0;
            z.for_range(0, z.len(), false, |m, sc| {
                n += usize::from(z.score(m) == Some(sc))
            });
            assert_eq!(n, z.len());
        }
        Value::Stream(s) => {
            assert_eq!(s.iter().count() as u64, s.len());
            for g in s.groups.values() {
                let held: usize = g.consumers.values().map(|c| c.pel.len()).sum();
                assert_eq!(held, g.pel.len());
            }
        }
    }
}

pub fn tiny() -> EncodingLimits {
    EncodingLimits {
        hash: HashLimits {
            max_entries: 2,
            max_value: 4,
        },
        zset: zset::Limits {
            max_entries: 2,
            max_value: 4,
        },
        set_max_intset: 2,
        list_fill: 2,
    }
}

pub fn check(data: &[u8]) {
    for lim in [EncodingLimits::default(), tiny()] {
        let mut c = Counter::default();
        match load(data, lim, &mut c) {
            Ok(_) => assert!(c.meta, "loaded without a header"),
            Err(e) => {
                assert!(
                    e.offset <= data.len() as u64,
                    "error offset past the input: {e}"
                );
                assert!(!e.reason.is_empty());
            }
        }
        for kind in [BlockKind::Values, BlockKind::Expires] {
            let mut c = Counter {
                meta: true,
                ..Counter::default()
            };
            if let Ok(n) = decode_records(data, 0, kind, &lim, &mut c) {
                assert_eq!(n, c.values + c.expires);
            }
        }
    }
}
