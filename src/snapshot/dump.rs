//! DUMP / RESTORE payloads (`formats/dump.md`): one value record of the snapshot format, with
//! the snapshot format's version and a checksum after it, so that RESTORE refuses a payload
//! from a newer format or a damaged one before decoding anything, as Redis does with its RDB
//! version and CRC64 trailer.

use super::codec::{self, Cur, EncodingLimits};
use super::file::VERSION;
use crate::keyspace::Value;

/// Bytes after the record: major, minor, crc32.
const TRAILER: usize = 6;

/// Why a payload was refused (the two errors RESTORE distinguishes).
#[derive(Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Wrong format version or checksum: `ERR DUMP payload version or checksum are wrong`.
    VersionOrChecksum,
    /// Checksum right but the record does not decode: `ERR Bad data format`.
    BadData,
}

/// The DUMP payload of `value`.
pub fn payload(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_value(&mut out, b"", value);
    out.push(VERSION.0);
    out.push(VERSION.1);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a DUMP payload into a value, in the encoding `limits` call for.
pub fn parse(payload: &[u8], limits: EncodingLimits) -> Result<Value, PayloadError> {
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
    use crate::keyspace::hash::HashLimits;
    use crate::keyspace::{zset, HashValue, ListValue};

    fn limits() -> EncodingLimits {
        EncodingLimits {
            hash: HashLimits { max_entries: 128, max_value: 64 },
            zset: zset::Limits { max_entries: 128, max_value: 64 },
            set_max_intset: 512,
            list_fill: -2,
        }
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
            let p = payload(&v);
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
}
