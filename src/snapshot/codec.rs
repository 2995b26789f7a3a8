//! Encoding and decoding of the records inside a snapshot block (see `formats/snapshot.md`).
//!
//! A `Values` block holds value records (`key type payload`), an `Expires` block holds expiry
//! records (`key at_ms`). Every length is a LEB128 varint, so a short key or value costs one
//! byte of framing. Collections carry their payload's byte length up front: a record can then
//! be skipped (or found incomplete) in O(1), and an element count can be checked against the
//! bytes actually present before anything is allocated.
//!
//! Decoding borrows keys and elements from the block and allocates only the value it builds.
//! The loaded value gets the encoding Redis gives it on load: the compact encoding when the
//! value fits the configured limits, the large one otherwise, whatever encoding was recorded.

use std::cmp::Ordering;

use crate::keyspace::hash::HashLimits;
use crate::keyspace::list::{ListValue, RawChunk};
use crate::keyspace::set::{Member, SetValue};
use crate::keyspace::zset::{self, ZSetValue};
use crate::keyspace::{HashValue, RString, Value};

/// Which table a block's records come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Values,
    Expires,
}

impl BlockKind {
    /// The byte that stands for the kind in a block header.
    pub fn to_byte(self) -> u8 {
        match self {
            BlockKind::Values => 0,
            BlockKind::Expires => 1,
        }
    }

    pub fn from_byte(b: u8) -> Option<BlockKind> {
        match b {
            0 => Some(BlockKind::Values),
            1 => Some(BlockKind::Expires),
            _ => None,
        }
    }
}

/// Thresholds the loader converts with (from the config: hash/zset-max-listpack-*,
/// set-max-intset-entries, list-max-listpack-size), so a loaded value gets the encoding Redis
/// would give it on load.
#[derive(Clone, Copy, Debug)]
pub struct EncodingLimits {
    pub hash: HashLimits,
    pub zset: zset::Limits,
    pub set_max_intset: usize,
    pub list_fill: i64,
}

impl Default for EncodingLimits {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        EncodingLimits {
            hash: HashLimits {
                max_entries: 128,
                max_value: 64,
            },
            zset: zset::Limits {
                max_entries: 128,
                max_value: 64,
            },
            set_max_intset: 512,
            list_fill: -2,
        }
    }
}

/// Record type ids (one per type and encoding). Ids are part of the format: never reuse one.
pub mod types {
    pub const STR_RAW: u8 = 0;
    pub const STR_INT: u8 = 1;
    pub const LIST_QUICKLIST: u8 = 2;
    pub const LIST_LISTPACK: u8 = 3;
    pub const HASH_LISTPACK: u8 = 4;
    pub const HASH_TABLE: u8 = 5;
    pub const SET_INTSET: u8 = 6;
    pub const SET_TABLE: u8 = 7;
    pub const ZSET_LISTPACK: u8 = 8;
    pub const ZSET_SKIPLIST: u8 = 9;
    /// Format 1.1: a hash `listpack` buffer stored verbatim.
    pub const HASH_PACKED: u8 = 10;
    /// Format 1.1: a frame-of-reference `intset` buffer stored verbatim.
    pub const SET_INTSET_FOR: u8 = 11;
    /// Format 1.1: a sorted set `listpack` buffer stored verbatim.
    pub const ZSET_PACKED: u8 = 12;
    /// Format 1.1: a list's packed chunks stored verbatim.
    pub const LIST_CHUNKS: u8 = 13;
    /// Format 1.2: a stream (nodes, metadata, consumer groups; see `stream_codec`).
    pub const STREAM: u8 = 14;
    /// Highest id this reader (format 1.2) knows.
    pub const MAX_KNOWN: u8 = 14;

    /// (type, encoding) names of a type id, as TYPE and OBJECT ENCODING print them.
    pub fn names(id: u8) -> (&'static str, &'static str) {
        match id {
            STR_RAW => ("string", "raw"),
            STR_INT => ("string", "int"),
            LIST_QUICKLIST | LIST_CHUNKS => ("list", "quicklist"),
            LIST_LISTPACK => ("list", "listpack"),
            HASH_LISTPACK | HASH_PACKED => ("hash", "listpack"),
            HASH_TABLE => ("hash", "hashtable"),
            SET_INTSET | SET_INTSET_FOR => ("set", "intset"),
            SET_TABLE => ("set", "hashtable"),
            ZSET_LISTPACK | ZSET_PACKED => ("zset", "listpack"),
            ZSET_SKIPLIST => ("zset", "skiplist"),
            STREAM => ("stream", "stream"),
            _ => ("unknown", "unknown"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// encoding

/// Appends `n` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Inserts the varint of the byte length of `out[start..]` at `start` (the payload is written
/// first because its size is only known afterwards; moving it is one memmove).
fn prefix_len(out: &mut Vec<u8>, start: usize) {
    let body = (out.len() - start) as u64;
    let mut v = [0u8; 10];
    let mut n = 0;
    let mut x = body;
    loop {
        let more = x >= 0x80;
        v[n] = (x as u8 & 0x7f) | if more { 0x80 } else { 0 };
        n += 1;
        x >>= 7;
        if !more {
            break;
        }
    }
    let old = out.len();
    out.resize(old + n, 0);
    out.copy_within(start..old, start + n);
    out[start..start + n].copy_from_slice(&v[..n]);
}

/// Appends one key's value record (key + value in its current encoding) to `out`.
pub fn encode_value(out: &mut Vec<u8>, key: &[u8], value: &Value) {
    put_bytes(out, key);
    match value {
        Value::Str(RString::Int(n)) => {
            out.push(types::STR_INT);
            put_varint(out, zigzag(*n));
        }
        Value::Str(s) => {
            out.push(types::STR_RAW);
            s.with_bytes(|b| put_bytes(out, b));
        }
        Value::List(l) => encode_list(out, l),
        Value::Hash(h) => encode_hash(out, h),
        Value::Set(s) => encode_set(out, s),
        Value::ZSet(z) => encode_zset(out, z),
        Value::Stream(s) => {
            out.push(types::STREAM);
            let start = out.len();
            super::stream_codec::encode_stream(out, s);
            prefix_len(out, start);
        }
    }
}

/// A list's chunks as they are in memory: `count chunks (flags count anchor buf)*`.
fn encode_list(out: &mut Vec<u8>, l: &ListValue) {
    out.push(types::LIST_CHUNKS);
    let start = out.len();
    put_varint(out, l.len() as u64);
    put_varint(out, l.raw_chunks().count() as u64);
    for c in l.raw_chunks() {
        out.push(u8::from(c.plain));
        put_varint(out, u64::from(c.count));
        put_bytes(out, c.anchor);
        put_bytes(out, c.buf);
    }
    prefix_len(out, start);
}

fn encode_hash(out: &mut Vec<u8>, h: &HashValue) {
    if let Some((buf, n)) = h.packed_parts() {
        return encode_verbatim(out, types::HASH_PACKED, n, buf);
    }
    out.push(match h.encoding() {
        "listpack" => types::HASH_LISTPACK,
        _ => types::HASH_TABLE,
    });
    let start = out.len();
    put_varint(out, h.len() as u64);
    h.for_each(|f, v| {
        put_bytes(out, f);
        put_bytes(out, v);
    });
    prefix_len(out, start);
}

fn encode_set(out: &mut Vec<u8>, s: &SetValue) {
    if let Some(buf) = s.intset_bytes() {
        return encode_verbatim(out, types::SET_INTSET_FOR, s.len(), buf);
    }
    let ints = matches!(s, SetValue::Ints(_));
    out.push(if ints {
        types::SET_INTSET
    } else {
        types::SET_TABLE
    });
    let start = out.len();
    put_varint(out, s.len() as u64);
    let mut prev: Option<i64> = None;
    for m in s.iter() {
        match m {
            // Intset members come in ascending order: the first as a zigzag varint, then
            // each as its (positive) distance from the one before.
            Member::Int(v) if ints => {
                match prev {
                    None => put_varint(out, zigzag(v)),
                    Some(p) => put_varint(out, v.wrapping_sub(p) as u64),
                }
                prev = Some(v);
            }
            m => m.with_bytes(|b| put_bytes(out, b)),
        }
    }
    prefix_len(out, start);
}

fn encode_zset(out: &mut Vec<u8>, z: &ZSetValue) {
    if let Some((buf, n)) = z.packed_parts() {
        return encode_verbatim(out, types::ZSET_PACKED, n, buf);
    }
    out.push(match z {
        ZSetValue::Pack(_) => types::ZSET_LISTPACK,
        ZSetValue::Skip(_) => types::ZSET_SKIPLIST,
    });
    let start = out.len();
    put_varint(out, z.len() as u64);
    z.for_range(0, z.len(), false, |m, s| {
        put_bytes(out, m);
        out.extend_from_slice(&s.to_le_bytes());
    });
    prefix_len(out, start);
}

/// Appends a compact encoding's buffer as it is in memory: `type body_len count buf`, so
/// that loading it is a check and a copy instead of a rebuild.
fn encode_verbatim(out: &mut Vec<u8>, type_id: u8, count: usize, buf: &[u8]) {
    out.push(type_id);
    let mut n = Vec::with_capacity(10);
    put_varint(&mut n, count as u64);
    put_varint(out, (n.len() + buf.len()) as u64);
    out.extend_from_slice(&n);
    out.extend_from_slice(buf);
}

/// Appends one expiry record (key + absolute Unix ms).
pub fn encode_expire(out: &mut Vec<u8>, key: &[u8], at_ms: u64) {
    put_bytes(out, key);
    put_varint(out, at_ms);
}

// ---------------------------------------------------------------------------------------------
// decoding

/// Why decoding stopped: the reason and the position (within the buffer read) it refers to.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub pos: usize,
    pub reason: String,
}

type DResult<T> = Result<T, DecodeError>;

/// A bounds-checked reader over a byte slice.
#[derive(Clone)]
pub(crate) struct Cur<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cur { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn err<T>(&self, reason: impl Into<String>) -> DResult<T> {
        Err(DecodeError {
            pos: self.pos,
            reason: reason.into(),
        })
    }

    #[cold]
    pub fn eof<T>(&self, what: &str) -> DResult<T> {
        self.err(format!("unexpected end of {what}"))
    }

    #[inline]
    pub fn u8(&mut self, what: &str) -> DResult<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.eof(what),
        }
    }

    #[inline]
    pub fn take(&mut self, n: usize, what: &str) -> DResult<&'a [u8]> {
        match self.buf.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => self.eof(what),
        }
    }

    pub fn u32_le(&mut self, what: &str) -> DResult<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A LEB128 varint of at most 10 bytes whose value fits a u64.
    #[inline]
    pub fn varint(&mut self, what: &str) -> DResult<u64> {
        // Most lengths are under 128: one byte, one branch.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_long(what)
    }

    /// The general case of [`Cur::varint`], kept out of line.
    #[cold]
    fn varint_long(&mut self, what: &str) -> DResult<u64> {
        let start = self.pos;
        let mut n = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return self.eof(what);
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                break;
            }
            n |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err(DecodeError {
            pos: start,
            reason: format!("varint overflow in {what}"),
        })
    }

    /// A varint length, checked against the bytes left.
    #[inline]
    pub fn len(&mut self, what: &str) -> DResult<usize> {
        let at = self.pos;
        let n = self.varint(what)?;
        if n > self.left() as u64 {
            return Err(self.overrun(at, n, what));
        }
        Ok(n as usize)
    }

    #[cold]
    fn overrun(&self, at: usize, n: u64, what: &str) -> DecodeError {
        DecodeError {
            pos: at,
            reason: format!("{what} length {n} exceeds the {} bytes left", self.left()),
        }
    }

    /// A length-prefixed byte string.
    #[inline]
    pub fn bytes(&mut self, what: &str) -> DResult<&'a [u8]> {
        let n = self.len(what)?;
        // `len` checked that n bytes are left.
        let s = self.buf.get(self.pos..self.pos + n).unwrap_or_default();
        self.pos += n;
        Ok(s)
    }
}

/// One decoded value record, with the stored type id (for statistics).
pub(crate) struct ValueRecord<'a> {
    pub key: &'a [u8],
    pub type_id: u8,
    pub value: Value,
}

/// Reads one value record at `c`. `note` is appended to an unknown-type error (it names the
/// file's version when the file is newer than this reader).
pub(crate) fn decode_value<'a>(
    c: &mut Cur<'a>,
    lim: &EncodingLimits,
    note: &str,
) -> DResult<ValueRecord<'a>> {
    let key = c.bytes("key")?;
    let at = c.pos;
    let type_id = c.u8("record type")?;
    let value = match type_id {
        types::STR_RAW => Value::Str(RString::from_bytes(c.bytes("string")?)),
        types::STR_INT => Value::Str(RString::Int(unzigzag(c.varint("integer")?))),
        types::STREAM => {
            let body = c.bytes("value")?;
            let start = c.pos - body.len();
            let mut sc = Cur::new(body);
            let s = super::stream_codec::decode_stream(&mut sc).map_err(|mut e| {
                e.pos += start;
                e
            })?;
            Value::Stream(Box::new(s))
        }
        types::LIST_QUICKLIST..=types::MAX_KNOWN => {
            let body = c.bytes("value")?;
            let start = c.pos - body.len();
            decode_collection(type_id, body, lim).map_err(|mut e| {
                e.pos += start;
                e
            })?
        }
        t => {
            return Err(DecodeError {
                pos: at,
                reason: format!("unknown record type {t}{note}"),
            });
        }
    };
    Ok(ValueRecord {
        key,
        type_id,
        value,
    })
}

/// Decodes a collection payload (`count elements...`), which must be consumed exactly.
fn decode_collection(type_id: u8, body: &[u8], lim: &EncodingLimits) -> DResult<Value> {
    let mut c = Cur::new(body);
    let at = c.pos;
    let count = c.varint("element count")?;
    if count == 0 || count > body.len() as u64 {
        return Err(DecodeError {
            pos: at,
            reason: format!("bad element count {count}"),
        });
    }
    let count = count as usize;
    let v = match type_id {
        types::LIST_QUICKLIST | types::LIST_LISTPACK => decode_list(&mut c, count, lim)?,
        types::LIST_CHUNKS => decode_list_chunks(&mut c, count, lim)?,
        types::HASH_LISTPACK | types::HASH_TABLE => decode_hash(&mut c, count, lim)?,
        types::SET_INTSET => decode_intset(&mut c, count, lim)?,
        types::SET_TABLE => decode_set(&mut c, count, lim)?,
        types::HASH_PACKED | types::SET_INTSET_FOR | types::ZSET_PACKED => {
            adopt_verbatim(type_id, &mut c, count, lim)?
        }
        _ => decode_zset(&mut c, count, lim)?,
    };
    if !c.at_end() {
        return c.err(format!("{} trailing bytes in value", c.left()));
    }
    Ok(v)
}

/// Adopts the rest of a verbatim record's body (see [`encode_verbatim`]) after the keyspace
/// has checked it.
fn adopt_verbatim(
    type_id: u8,
    c: &mut Cur<'_>,
    count: usize,
    lim: &EncodingLimits,
) -> DResult<Value> {
    let at = c.pos;
    let buf = c.take(c.left(), "value")?;
    let v = match type_id {
        types::HASH_PACKED => HashValue::from_packed(buf, count, lim.hash).map(Value::Hash),
        types::ZSET_PACKED => ZSetValue::from_packed(buf, count, lim.zset).map(Value::ZSet),
        _ => SetValue::from_intset_bytes(buf, lim.set_max_intset)
            .filter(|(_, n)| *n == count)
            .map(|(s, _)| Value::Set(s)),
    };
    v.ok_or_else(|| DecodeError {
        pos: at,
        reason: format!(
            "malformed {} {}",
            types::names(type_id).0,
            types::names(type_id).1
        ),
    })
}

/// Checks that `count` strings follow (`per` strings each, with `extra` fixed bytes after
/// each group), returning the longest string; leaves `c` after them.
fn scan_strings(c: &mut Cur<'_>, count: usize, per: usize, extra: usize) -> DResult<usize> {
    let mut max = 0;
    for _ in 0..count {
        for _ in 0..per {
            max = max.max(c.bytes("element")?.len());
        }
        c.take(extra, "score")?;
    }
    Ok(max)
}

fn decode_list(c: &mut Cur<'_>, count: usize, lim: &EncodingLimits) -> DResult<Value> {
    let start = c.clone();
    scan_strings(c, count, 1, 0)?;
    let mut r = start;
    let items = (0..count).map(|_| r.bytes("element").unwrap_or_default());
    Ok(Value::List(ListValue::from_iter(items, lim.list_fill)))
}

fn decode_list_chunks(c: &mut Cur<'_>, count: usize, lim: &EncodingLimits) -> DResult<Value> {
    let at = c.pos;
    let n = c.len("chunk count")?;
    let mut raw = Vec::with_capacity(n);
    for _ in 0..n {
        let flags = c.u8("chunk flags")?;
        if flags > 1 {
            return c.err(format!("unknown chunk flags {flags}"));
        }
        let count = c.varint("chunk count")?;
        raw.push(RawChunk {
            plain: flags == 1,
            count: u32::try_from(count).unwrap_or(0),
            anchor: c.bytes("chunk anchor")?,
            buf: c.bytes("chunk")?,
        });
    }
    match ListValue::from_raw_chunks(raw.into_iter(), lim.list_fill) {
        Some(l) if l.len() == count => Ok(Value::List(l)),
        _ => Err(DecodeError {
            pos: at,
            reason: "malformed list chunks".into(),
        }),
    }
}

fn decode_hash(c: &mut Cur<'_>, count: usize, lim: &EncodingLimits) -> DResult<Value> {
    let at = c.pos;
    let mut r = c.clone();
    let max = scan_strings(c, count, 2, 0)?;
    let dup = || DecodeError {
        pos: at,
        reason: "duplicate hash field".into(),
    };
    let pairs = (0..count).map(move |_| {
        let f = r.bytes("field").unwrap_or_default();
        (f, r.bytes("value").unwrap_or_default())
    });
    if count <= lim.hash.max_entries && max <= lim.hash.max_value {
        // A listpack is appended pair by pair, so duplicates are looked for separately.
        if has_duplicates(pairs.clone().map(|p| p.0)) {
            return Err(dup());
        }
        // A listpack pair costs at most two bytes more than its record.
        let cap = c.pos - at + 2 * count;
        return Ok(Value::Hash(HashValue::packed_from_distinct(pairs, cap)));
    }
    // Straight to the table: a large hash is never built up as a listpack first.
    let table = HashLimits {
        max_entries: 0,
        max_value: 0,
    };
    let mut h = HashValue::new();
    for (f, v) in pairs {
        if !h.set(f, v, table) {
            return Err(dup());
        }
    }
    Ok(Value::Hash(h))
}

/// Whether two of the (few: a listpack's worth) `items` are equal. Up to 128 items go
/// through a small open-addressing table on the stack (one hash per item); more are sorted.
fn has_duplicates<'a>(items: impl Iterator<Item = &'a [u8]>) -> bool {
    use std::hash::BuildHasher;
    const SLOTS: usize = 256;
    let v: smallvec::SmallVec<[&[u8]; 128]> = items.collect();
    if v.len() > SLOTS / 2 {
        let mut v = v;
        v.sort_unstable();
        return v.windows(2).any(|w| w[0] == w[1]);
    }
    let hasher = foldhash::fast::FixedState::with_seed(0x5eed);
    // Each slot holds an item index + 1 (0: empty); the table is at most half full.
    let mut slots = [0u8; SLOTS];
    for (i, item) in v.iter().enumerate() {
        let mut at = hasher.hash_one(item) as usize % SLOTS;
        loop {
            match slots[at] {
                0 => {
                    slots[at] = i as u8 + 1;
                    break;
                }
                j if v[usize::from(j) - 1] == *item => return true,
                _ => at = (at + 1) % SLOTS,
            }
        }
    }
    false
}

fn decode_intset(c: &mut Cur<'_>, count: usize, lim: &EncodingLimits) -> DResult<Value> {
    // Members are decoded on the stack (up to 512, Redis's default limit), then encoded once.
    let mut members: smallvec::SmallVec<[i64; 512]> = smallvec::SmallVec::new();
    let mut prev = unzigzag(c.varint("member")?);
    members.push(prev);
    for _ in 1..count {
        let at = c.pos;
        let d = c.varint("member delta")?;
        // The distance between two i64 may need all 64 bits: add it modulo 2^64; the sum is
        // right exactly when it lands above `prev`.
        let next = prev.wrapping_add(d as i64);
        if next <= prev {
            return Err(DecodeError {
                pos: at,
                reason: "intset members not ascending".into(),
            });
        }
        members.push(next);
        prev = next;
    }
    if count <= lim.set_max_intset {
        return Ok(Value::Set(SetValue::intset_from_sorted(&members)));
    }
    let mut s = table_set(count);
    for m in members {
        s.add_member(Member::Int(m), 0);
    }
    Ok(Value::Set(s))
}

/// An empty `hashtable` set with room for `n` members.
fn table_set(n: usize) -> SetValue {
    // An empty string is not an integer, so this is the table encoding.
    let mut s = SetValue::for_first(b"");
    s.reserve(n);
    s
}

fn decode_set(c: &mut Cur<'_>, count: usize, lim: &EncodingLimits) -> DResult<Value> {
    let (mut s, max) = if count > lim.set_max_intset {
        (table_set(count), usize::MAX)
    } else {
        (SetValue::default(), lim.set_max_intset)
    };
    for _ in 0..count {
        let at = c.pos;
        let m = c.bytes("member")?;
        if !s.add(m, max) {
            return Err(DecodeError {
                pos: at,
                reason: "duplicate set member".into(),
            });
        }
    }
    Ok(Value::Set(s))
}

fn decode_zset(c: &mut Cur<'_>, count: usize, lim: &EncodingLimits) -> DResult<Value> {
    let start = c.pos;
    let mut r = c.clone();
    let max = scan_zset(c, count)?;
    let entries = (0..count).map(move |_| {
        let m = r.bytes("member").unwrap_or_default();
        let b = r.take(8, "score").unwrap_or_default();
        (m, f64::from_le_bytes(b.try_into().unwrap_or_default()))
    });
    let dup = || DecodeError {
        pos: c.pos,
        reason: "duplicate sorted set member".into(),
    };
    if count <= lim.zset.max_entries && max <= lim.zset.max_value {
        if has_duplicates(entries.clone().map(|e| e.0)) {
            return Err(dup());
        }
        // An entry costs at most two bytes more than its record (a score at most 9 bytes).
        let cap = c.pos - start + 2 * count;
        return Ok(Value::ZSet(ZSetValue::packed_from_sorted(entries, cap)));
    }
    let mut z = ZSetValue::for_len(usize::MAX, lim.zset);
    for (m, score) in entries {
        if z.score(m).is_some() {
            return Err(dup());
        }
        z.insert_new(m, score, lim.zset);
    }
    Ok(Value::ZSet(z))
}

/// Checks the entries of a sorted set (strictly ascending by (score, member), no NaN) and
/// returns the longest member; leaves `c` after them.
fn scan_zset(c: &mut Cur<'_>, count: usize) -> DResult<usize> {
    let mut max = 0;
    let mut prev: Option<(&[u8], f64)> = None;
    for _ in 0..count {
        let at = c.pos;
        let m = c.bytes("member")?;
        let b = c.take(8, "score")?;
        let score = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        if score.is_nan() {
            return Err(DecodeError {
                pos: at,
                reason: "NaN score".into(),
            });
        }
        if prev.is_some_and(|(pm, ps)| zset::cmp_entry(ps, pm, score, m) != Ordering::Less) {
            return Err(DecodeError {
                pos: at,
                reason: "sorted set entries out of order".into(),
            });
        }
        prev = Some((m, score));
        max = max.max(m.len());
    }
    Ok(max)
}

/// Reads one expiry record: (key, absolute Unix ms).
pub(crate) fn decode_expire<'a>(c: &mut Cur<'a>) -> DResult<(&'a [u8], u64)> {
    let key = c.bytes("key")?;
    let at = c.varint("expiry time")?;
    Ok((key, at))
}

/// Length of the record at `c` (moving past it) without decoding its value: the writer uses
/// it to count records and to cut blocks at record boundaries.
pub(crate) fn skip_record(c: &mut Cur<'_>, kind: BlockKind) -> DResult<()> {
    c.bytes("key")?;
    match kind {
        BlockKind::Expires => {
            c.varint("expiry time")?;
        }
        BlockKind::Values => match c.u8("record type")? {
            types::STR_INT => {
                c.varint("integer")?;
            }
            t if t <= types::MAX_KNOWN => {
                c.bytes("value")?;
            }
            t => return c.err(format!("unknown record type {t}")),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &Value) -> Value {
        let mut out = Vec::new();
        encode_value(&mut out, b"k", v);
        let mut c = Cur::new(&out);
        let r = decode_value(&mut c, &EncodingLimits::default(), "").unwrap();
        assert!(c.at_end());
        assert_eq!(r.key, b"k");
        let mut c = Cur::new(&out);
        skip_record(&mut c, BlockKind::Values).unwrap();
        assert!(c.at_end());
        r.value
    }

    #[test]
    fn strings_round_trip() {
        for s in [
            &b"12"[..],
            b"-9223372036854775808",
            b"012",
            b"",
            &[7u8; 300],
        ] {
            let v = Value::from_bytes(s);
            let back = round_trip(&v);
            assert_eq!(back, v);
            assert_eq!(back.encoding(), v.encoding());
        }
    }

    #[test]
    fn varints_are_strict() {
        let mut c = Cur::new(&[0x80; 11]);
        assert!(c.varint("x").unwrap_err().reason.contains("overflow"));
        let mut c = Cur::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(c.varint("x").unwrap(), u64::MAX);
        let mut c = Cur::new(&[0x80]);
        assert_eq!(c.varint("key").unwrap_err().reason, "unexpected end of key");
    }

    #[test]
    fn lying_counts_are_refused() {
        // list, body of 2 bytes claiming 100 elements.
        let rec = [1, b'k', types::LIST_QUICKLIST, 2, 100, 0];
        let mut c = Cur::new(&rec);
        let e = decode_value(&mut c, &EncodingLimits::default(), "")
            .err()
            .unwrap();
        assert_eq!(e.reason, "bad element count 100");
        assert_eq!(e.pos, 4);
    }

    fn decode_err(rec: &[u8]) -> String {
        let mut c = Cur::new(rec);
        decode_value(&mut c, &EncodingLimits::default(), "")
            .err()
            .unwrap()
            .reason
    }

    #[test]
    fn duplicates_and_disorder_are_refused() {
        let hash = [
            1,
            b'k',
            types::HASH_LISTPACK,
            9,
            2,
            1,
            b'f',
            1,
            b'v',
            1,
            b'f',
            1,
            b'w',
        ];
        assert_eq!(decode_err(&hash), "duplicate hash field");
        let set = [1, b'k', types::SET_TABLE, 5, 2, 1, b'a', 1, b'a'];
        assert_eq!(decode_err(&set), "duplicate set member");
        let mut z = vec![1, b'k', types::ZSET_SKIPLIST, 21, 2, 1, b'b'];
        z.extend_from_slice(&2.0f64.to_le_bytes());
        z.extend_from_slice(&[1, b'a']);
        z.extend_from_slice(&1.0f64.to_le_bytes());
        assert_eq!(decode_err(&z), "sorted set entries out of order");
        let ints = [1, b'k', types::SET_INTSET, 3, 2, 4, 0];
        assert_eq!(decode_err(&ints), "intset members not ascending");
        assert_eq!(decode_err(&[1, b'k', 200]), "unknown record type 200");
    }

    #[test]
    fn duplicate_detection_small_and_large() {
        for n in [1usize, 2, 50, 128, 129, 400] {
            let items: Vec<Vec<u8>> = (0..n).map(|i| format!("f{i}").into_bytes()).collect();
            assert!(!has_duplicates(items.iter().map(|v| &v[..])), "{n}");
            let mut d = items.clone();
            d.push(items[n / 2].clone());
            assert!(has_duplicates(d.iter().map(|v| &v[..])), "{n} + dup");
        }
    }

    /// The byte-by-byte examples of `formats/snapshot.md`.
    #[test]
    fn verbatim_records_are_laid_out_as_documented() {
        use crate::keyspace::zset::Limits;
        let hl = HashLimits {
            max_entries: 128,
            max_value: 64,
        };
        let mut h = HashValue::new();
        h.set(b"f1", b"v1", hl);
        h.set(b"f2", b"v2", hl);
        h.set(b"f2x", b"v", hl);
        let mut out = Vec::new();
        encode_value(&mut out, b"h", &Value::Hash(h));
        let pairs = b"\x22f1v1\x22f2v2\xf1\x21xv";
        assert_eq!(out, [&b"\x01h\x0a\x0f\x03"[..], pairs].concat());

        let s = SetValue::intset_from_sorted(&[-5, 1, 2, 1_000_000]);
        let mut out = Vec::new();
        encode_value(&mut out, b"s", &Value::Set(s));
        let mut want = b"\x01s\x0b\x1a\x04\x04".to_vec();
        want.extend_from_slice(&(-5i64).to_le_bytes());
        for off in [0u32, 6, 7, 1_000_005] {
            want.extend_from_slice(&off.to_le_bytes());
        }
        assert_eq!(out, want);

        let zl = Limits {
            max_entries: 128,
            max_value: 64,
        };
        let mut z = ZSetValue::new_for(1, zl);
        for (m, sc) in [(&b"m:1"[..], 1.0), (b"m:2", 2.5), (b"c", f64::INFINITY)] {
            z.insert_new(m, sc, zl);
        }
        let mut out = Vec::new();
        encode_value(&mut out, b"z", &Value::ZSet(z));
        let entries = b"\x06m:1\x04\x03\x02\x32\xa3\x06\x02c\x01\0\0\0\0\0\0\xf0\x7f";
        assert_eq!(out, [&b"\x01z\x0c\x16\x03"[..], entries].concat());

        let l = ListValue::from_iter([&b"job:1"[..], b"job:22", b"x"], -2);
        let mut out = Vec::new();
        encode_value(&mut out, b"l", &Value::List(l));
        let chunk = b"\x0b\x01\x05\x02\x05\x0422\x04\x02x\x02";
        assert_eq!(
            out,
            [&b"\x01l\x0d\x16\x03\x01\x00\x03\x05job:1"[..], chunk].concat()
        );
    }
}
