//! DUMP / RESTORE payloads (`formats/dump.md`). DUMP returns Redis's payload (an RDB object,
//! the RDB version and a CRC-64, written by `rdb_write`), so that redis-server and every tool
//! that moves keys with DUMP / RESTORE or MIGRATE takes what ferrodis dumps. RESTORE takes
//! Redis's payloads and also our legacy ones (format 1.x: one value record of the snapshot
//! format, the snapshot format's version and a crc32), which older ferrodis versions returned.

use super::codec::{self, Cur, EncodingLimits};
use super::file::VERSION;
use crate::keyspace::Value;

/// Bytes after a legacy payload's record: major, minor, crc32.
const TRAILER: usize = 6;

/// Why a payload was refused (the two errors RESTORE distinguishes).
#[derive(Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Wrong format version or checksum: `ERR DUMP payload version or checksum are wrong`.
    VersionOrChecksum,
    /// Checksum right but the record does not decode: `ERR Bad data format`.
    BadData,
}

/// The DUMP payload of `value`: Redis's (RDB version 10, CRC-64).
pub fn payload(value: &Value, o: super::rdb_write::Options) -> Vec<u8> {
    super::rdb_write::dump_payload(value, o)
}

/// A legacy (format 1.x) payload of `value`, as ferrodis's DUMP returned before it returned
/// Redis's: kept so that RESTORE's support for them stays tested.
#[cfg(test)]
fn legacy_payload(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_value(&mut out, b"", value);
    out.push(VERSION.0);
    out.push(VERSION.1);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a DUMP payload, ours or Redis's, into a value, in the encoding `limits` call for.
pub fn parse(payload: &[u8], limits: EncodingLimits) -> Result<Value, PayloadError> {
    match parse_own(payload, limits) {
        Err(PayloadError::VersionOrChecksum) => {
            parse_redis(payload, &limits).unwrap_or(Err(PayloadError::VersionOrChecksum))
        }
        r => r,
    }
}

/// Bytes after a Redis payload's object: the RDB version (u16) and the CRC64 of everything
/// before it (u64), both little-endian.
const REDIS_TRAILER: usize = 10;

/// Decodes a Redis DUMP payload; `None` unless its CRC64 matches (then it is not one). An RDB
/// version newer than the RDB reader's is refused like a bad checksum, as Redis refuses it.
fn parse_redis(payload: &[u8], limits: &EncodingLimits) -> Option<Result<Value, PayloadError>> {
    if payload.len() < REDIS_TRAILER {
        return None;
    }
    let (body, crc) = payload.split_at(payload.len() - 8);
    if super::rdb::crc64(body).to_le_bytes() != crc {
        return None;
    }
    let (object, version) = body.split_at(body.len() - 2);
    if u32::from(u16::from_le_bytes([version[0], version[1]])) > super::rdb::MAX_VERSION {
        return Some(Err(PayloadError::VersionOrChecksum));
    }
    Some(super::rdb::dump_object(object, limits).map_err(|_| PayloadError::BadData))
}

/// Decodes one of our legacy payloads.
fn parse_own(payload: &[u8], limits: EncodingLimits) -> Result<Value, PayloadError> {
    if payload.len() < TRAILER {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (body, crc) = payload.split_at(payload.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (record, version) = body.split_at(body.len() - 2);
    // A newer minor version may use record types this reader does not know; the decoder then
    // fails with BadData, which is what Redis answers for an object type it cannot load.
    if version[0] != VERSION.0 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let mut c = Cur::new(record);
    let rec = codec::decode_value(&mut c, &limits, "").map_err(|_| PayloadError::BadData)?;
    if !rec.key.is_empty() || !c.at_end() {
        return Err(PayloadError::BadData);
    }
    Ok(rec.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{HashValue, ListValue};

    fn limits() -> EncodingLimits {
        EncodingLimits::default()
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let mut h = HashValue::new();
        h.set(b"f", b"v", limits().hash);
        let values = [
            Value::from_bytes(b"12345"),
            Value::from_bytes(b"hello world"),
            Value::Hash(h),
            Value::List(ListValue::from_iter([&b"a"[..], b"b"], -2)),
        ];
        for v in values {
            let p = legacy_payload(&v);
            assert_eq!(parse(&p, limits()).unwrap(), v);
            let mut bad = p.clone();
            bad[0] ^= 1;
            assert_eq!(parse(&bad, limits()), Err(PayloadError::VersionOrChecksum));
            let mut newer = p[..p.len() - 4].to_vec();
            newer[p.len() - 6] += 1;
            let crc = crc32fast::hash(&newer);
            newer.extend_from_slice(&crc.to_le_bytes());
            assert_eq!(parse(&newer, limits()), Err(PayloadError::VersionOrChecksum));
        }
        assert_eq!(parse(b"", limits()), Err(PayloadError::VersionOrChecksum));
        // A valid checksum over bytes that are not a record.
        let mut junk = vec![0xff, 0xff, VERSION.0, VERSION.1];
        let crc = crc32fast::hash(&junk);
        junk.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(parse(&junk, limits()), Err(PayloadError::BadData));
    }

    /// Payloads made by redis-server 7.0.15's DUMP (RDB version 10).
    const REDIS: [(&str, &[u8]); 9] = [
        ("s", b"\x00\x03bar\x0a\x00\xe6\xbe\x49\x60\xee\x66\xfd\x17"),
        ("n", b"\x00\xc1\x39\x30\x0a\x00\x9d\x94\xea\x27\x93\xfc\x08\xb9"),
        ("l", b"\x12\x01\x02\x16\x16\x00\x00\x00\x06\x00\x81\x61\x02\x81\x62\x02\x81\x63\x02\x01\x01\x02\x01\x03\x01\xff\x0a\x00\x92\xf8\xc1\x52\x3a\x0e\x16\xdf"),
        ("h", b"\x10\x17\x17\x00\x00\x00\x04\x00\x82\x66\x31\x03\x82\x76\x31\x03\x82\x66\x32\x03\x82\x76\x32\x03\xff\x0a\x00\x03\xf8\x4c\x0c\x15\xd4\xa2\xbc"),
        ("si", b"\x0b\x18\x04\x00\x00\x00\x04\x00\x00\x00\xfc\xff\xff\xff\x01\x00\x00\x00\x02\x00\x00\x00\xa0\x86\x01\x00\x0a\x00\x3f\x31\x6e\x11\xa4\x90\x5d\x33"),
        ("ss", b"\x02\x02\x01\x79\x01\x78\x0a\x00\x0c\xdf\x6b\x3d\xb3\x30\xbc\xf0"),
        ("z", b"\x11\x14\x14\x00\x00\x00\x04\x00\x81\x61\x02\x83\x31\x2e\x35\x04\x81\x62\x02\x02\x01\xff\x0a\x00\xfa\x02\xb4\x25\xaf\x18\x87\x63"),
        ("zb", b"\x05\x02\xc3\x09\x40\x46\x01\x78\x78\xe0\x39\x00\x01\x78\x78\x00\x00\x00\x00\x00\x00\x00\x40\x01\x61\x00\x00\x00\x00\x00\x00\xf0\x3f\x0a\x00\x50\xf2\xcf\x4d\x84\xde\x1d\x7d"),
        ("hb", b"\x04\x01\x01\x66\xc3\x09\x40\x46\x01\x78\x78\xe0\x39\x00\x01\x78\x78\x0a\x00\x3e\x6c\x95\x5f\x2e\x52\xe7\xc1"),
    ];

    #[test]
    fn takes_redis_payloads() {
        use crate::keyspace::ZSetValue;
        let long = vec![b'x'; 70];
        let mut h = HashValue::new();
        h.set(b"f1", b"v1", limits().hash);
        h.set(b"f2", b"v2", limits().hash);
        let mut hb = HashValue::new();
        hb.set(b"f", &long, limits().hash);
        let mut z = ZSetValue::default();
        z.insert_new(b"a", 1.5, limits().zset);
        z.insert_new(b"b", 2.0, limits().zset);
        let mut zb = ZSetValue::new_for(long.len(), limits().zset);
        zb.insert_new(b"a", 1.0, limits().zset);
        zb.insert_new(&long, 2.0, limits().zset);
        let l = ListValue::from_iter([&b"a"[..], b"b", b"c", b"1", b"2", b"3"], -2);
        let set = |members: &[&[u8]]| {
            let mut v = crate::keyspace::SetValue::for_first(members[0]);
            for m in members {
                v.add(m, limits().set_max_intset);
            }
            Value::Set(v)
        };
        let dig = |v: &Value| {
            let mut h = sha1_smol::Sha1::new();
            v.digest_into(&mut h);
            (h.digest().to_string(), v.encoding())
        };
        let want = |k: &str| match k {
            "s" => Value::from_bytes(b"bar"),
            "n" => Value::from_bytes(b"12345"),
            "l" => Value::List(l.clone()),
            "h" => Value::Hash(h.clone()),
            "si" => set(&[b"-4", b"1", b"2", b"100000"]),
            "ss" => set(&[b"x", b"y"]),
            "z" => Value::ZSet(z.clone()),
            "zb" => Value::ZSet(zb.clone()),
            _ => Value::Hash(hb.clone()),
        };
        for (k, p) in REDIS {
            let got = parse(p, limits()).unwrap_or_else(|e| panic!("{k}: {e:?}"));
            assert_eq!(dig(&got), dig(&want(k)), "{k}");
            let mut bad = p.to_vec();
            bad[1] ^= 1;
            assert_eq!(parse(&bad, limits()), Err(PayloadError::VersionOrChecksum), "{k}");
        }
        // A newer RDB version than the reader's, with its checksum right.
        let mut newer = REDIS[0].1[..REDIS[0].1.len() - 8].to_vec();
        let at = newer.len() - 2;
        newer[at] = 99;
        newer.extend_from_slice(&crate::snapshot::rdb::crc64(&newer).to_le_bytes());
        assert_eq!(parse(&newer, limits()), Err(PayloadError::VersionOrChecksum));
        // Checksum right, object wrong: a stream (refused type), trailing bytes, an empty list.
        for object in [&b"\x0f\x00"[..], b"\x00\x01ab", b"\x01\x00"] {
            let mut p = object.to_vec();
            p.extend_from_slice(&[10, 0]);
            p.extend_from_slice(&crate::snapshot::rdb::crc64(&p).to_le_bytes());
            assert_eq!(parse(&p, limits()), Err(PayloadError::BadData), "{object:?}");
        }
    }

    /// Our DUMP of what Redis's payloads hold is Redis's payload, byte for byte (except for a
    /// set in a hash table, whose order is the table's).
    #[test]
    fn dumps_like_redis() {
        let o = crate::snapshot::rdb_write::Options { compress: true, list_fill: -2 };
        for (k, p) in REDIS {
            let v = parse(p, limits()).unwrap();
            let ours = payload(&v, o);
            if k == "ss" {
                assert_eq!(ours.len(), p.len());
                assert_eq!(parse(&ours, limits()).unwrap(), v);
                continue;
            }
            assert_eq!(ours, p, "{k}");
        }
    }

    /// Any client can send a Redis payload with a right CRC64, so damaged objects under a
    /// valid checksum must be refused or loaded, never panic.
    #[test]
    fn damaged_redis_objects_under_a_valid_checksum_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let (_, p) = REDIS[rng.gen_range(0..REDIS.len())];
            let mut object = p[..p.len() - REDIS_TRAILER].to_vec();
            for _ in 0..rng.gen_range(1..4) {
                match rng.gen_range(0..3) {
                    0 if !object.is_empty() => {
                        let i = rng.gen_range(0..object.len());
                        object[i] = rng.gen();
                    }
                    1 if !object.is_empty() => object.truncate(rng.gen_range(0..object.len())),
                    _ => object.insert(rng.gen_range(0..=object.len()), rng.gen()),
                }
            }
            object.extend_from_slice(&[10, 0]);
            object.extend_from_slice(&crate::snapshot::rdb::crc64(&object).to_le_bytes());
            let _ = parse(&object, limits());
        }
    }
}
