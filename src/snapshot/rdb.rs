//! Reader of Redis RDB files (versions 1 to 11: Redis 2.x to 7.2), so a `dump.rdb` or a Redis
//! append-only base (`*.base.rdb`) can be loaded when migrating from Redis. What is read and
//! what is refused is listed in `formats/redis-rdb.md`.
//!
//! The whole file is held in memory (mapped) and read with bounds-checked cursors: a length
//! or count is checked against the bytes actually left before anything is allocated, and the
//! packed encodings (ziplist, listpack, intset, zipmap) are walked entry by entry. Each value
//! is re-expressed as a ferrodis snapshot record and built by [`codec::decode_value`], so a
//! loaded value gets exactly the encoding (and the duplicate/order checks) a ferrodis
//! snapshot load gives it.

use std::borrow::Cow;

use super::codec::{self, Cur, DecodeError, EncodingLimits};
use super::file::{LoadError, LoadSink, Meta};
use crate::keyspace::zset;
use crate::keyspace::stream::{Group, Item, Nack, StreamId, StreamValue, ENTRIES_READ_INVALID};
use crate::keyspace::Value;

/// First bytes of an RDB file, followed by four ASCII digits (the version).
pub const MAGIC: &[u8; 5] = b"REDIS";
/// Newest RDB version read (Redis 7.2 writes 11; Redis 7.0 writes 10).
pub const MAX_VERSION: u32 = 11;
/// Aux field the function libraries are handed over in (see `engine::restore_functions`).
const AUX_FUNCTIONS: &str = super::engine::AUX_FUNCTIONS;

/// Opcodes (bytes where a value type may stand).
pub(crate) mod op {
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Value types.
pub(crate) mod ty {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const STREAM_LISTPACKS_3: u8 = 21;

    /// Names of the types this reader refuses, for the error message.
    pub fn refused(t: u8) -> Option<&'static str> {
        match t {
            6 | 7 => Some("module"),
            _ => None,
        }
    }
}

/// Whether `bytes` starts like an RDB file.
pub fn is_rdb(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

// ---------------------------------------------------------------------------------------------
// crc64 (Jones polynomial, reflected, as Redis's crc64.c)

/// Tables of the slicing-by-8 update: `CRC64_TABLES[0]` is the classic byte table, and
/// `CRC64_TABLES[k][b]` is the crc of byte `b` followed by `k` zero bytes, so eight input bytes
/// are folded in with eight lookups instead of eight dependent steps.
static CRC64_TABLES: [[u64; 256]; 8] = crc64_tables();

const fn crc64_tables() -> [[u64; 256]; 8] {
    // 0xad93d23594c935a9 with its bits reversed: the table of the reflected algorithm.
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// Redis's crc64 of `data` (initial value 0, no final xor).
pub fn crc64(data: &[u8]) -> u64 {
    let mut c = Crc64::default();
    c.update(data);
    c.value()
}

/// A running crc64, for a file written piece by piece (the RDB a full sync streams).
#[derive(Debug, Default, Clone, Copy)]
pub struct Crc64(u64);

impl Crc64 {
    pub fn update(&mut self, data: &[u8]) {
        let t = &CRC64_TABLES;
        let mut crc = self.0;
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            let x = crc ^ u64::from_le_bytes(b);
            crc = t[7][(x & 0xff) as usize]
                ^ t[6][((x >> 8) & 0xff) as usize]
                ^ t[5][((x >> 16) & 0xff) as usize]
                ^ t[4][((x >> 24) & 0xff) as usize]
                ^ t[3][((x >> 32) & 0xff) as usize]
                ^ t[2][((x >> 40) & 0xff) as usize]
                ^ t[1][((x >> 48) & 0xff) as usize]
                ^ t[0][(x >> 56) as usize];
        }
        for &b in words.remainder() {
            crc = t[0][((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
        }
        self.0 = crc;
    }

    pub fn value(&self) -> u64 {
        self.0
    }
}

// ---------------------------------------------------------------------------------------------
// LZF

/// Most bytes one byte of LZF input can expand to (a 3-byte back reference of 264 bytes).
const LZF_MAX_RATIO: usize = 88;

/// Decompresses an LZF block that must expand to exactly `out_len` bytes.
pub(crate) fn lzf_decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
    if out_len > input.len().saturating_mul(LZF_MAX_RATIO) {
        return Err(format!(
            "LZF length {out_len} impossible for {} compressed bytes",
            input.len()
        ));
    }
    let mut out = Vec::with_capacity(out_len);
    let mut i = 0;
    let bad = || "corrupt LZF data".to_string();
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let lit = input.get(i..i + ctrl + 1).ok_or_else(bad)?;
            if out.len() + lit.len() > out_len {
                return Err(bad());
            }
            out.extend_from_slice(lit);
            i += ctrl + 1;
            continue;
        }
        let mut len = ctrl >> 5;
        if len == 7 {
            len += usize::from(*input.get(i).ok_or_else(bad)?);
            i += 1;
        }
        len += 2;
        let low = usize::from(*input.get(i).ok_or_else(bad)?);
        i += 1;
        let back = ((ctrl & 0x1f) << 8) + low + 1;
        if back > out.len() || out.len() + len > out_len {
            return Err(bad());
        }
        // The reference may overlap what it produces: copy byte by byte.
        let from = out.len() - back;
        for k in 0..len {
            let b = out[from + k];
            out.push(b);
        }
    }
    if out.len() != out_len {
        return Err(format!(
            "LZF data holds {} bytes, expected {out_len}",
            out.len()
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// packed encodings (ziplist, listpack, intset, zipmap)

/// Decimal text of an integer element (packed encodings store integers natively).
fn int_bytes(v: i64) -> Cow<'static, [u8]> {
    Cow::Owned(v.to_string().into_bytes())
}

/// A bounds-checked little cursor over a packed blob; errors are plain reasons.
struct Blob<'b> {
    b: &'b [u8],
    pos: usize,
}

impl<'b> Blob<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(format!("entry at byte {} runs past the end", self.pos));
        };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian signed integer of `n` (1..=8) bytes.
    fn int_le(&mut self, n: usize) -> Result<i64, String> {
        let s = self.take(n)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(s);
        let shift = 64 - 8 * n as u32;
        Ok((i64::from_le_bytes(v) << shift) >> shift)
    }

    fn u32_le(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// Calls `f` with each entry of a ziplist.
fn ziplist<'b>(b: &'b [u8], mut f: impl FnMut(Cow<'b, [u8]>)) -> Result<(), String> {
    let mut c = Blob { b, pos: 0 };
    let total = c.u32_le()? as usize;
    if total != b.len() {
        return Err(format!(
            "ziplist header says {total} bytes, blob has {}",
            b.len()
        ));
    }
    c.take(6)?;
    loop {
        let prev = c.u8()?;
        if prev == 0xff {
            break;
        }
        if prev == 0xfe {
            c.take(4)?;
        }
        let e = c.u8()?;
        let entry = match e >> 6 {
            0 => Cow::Borrowed(c.take(usize::from(e & 0x3f))?),
            1 => {
                let n = (usize::from(e & 0x3f) << 8) | usize::from(c.u8()?);
                Cow::Borrowed(c.take(n)?)
            }
            2 => {
                let s = c.take(4)?;
                let n = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
                Cow::Borrowed(c.take(n)?)
            }
            _ => int_bytes(match e {
                0xc0 => c.int_le(2)?,
                0xd0 => c.int_le(4)?,
                0xe0 => c.int_le(8)?,
                0xf0 => c.int_le(3)?,
                0xfe => c.int_le(1)?,
                0xf1..=0xfd => i64::from(e & 0x0f) - 1,
                _ => return Err(format!("bad ziplist entry encoding {e:#04x}")),
            }),
        };
        f(entry);
    }
    if c.pos != b.len() {
        return Err("bytes after the ziplist end".into());
    }
    Ok(())
}

/// Bytes of a listpack entry's back length for an entry of `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Calls `f` with each entry of a listpack.
fn listpack<'b>(b: &'b [u8], mut f: impl FnMut(Cow<'b, [u8]>)) -> Result<(), String> {
    let mut c = Blob { b, pos: 0 };
    let total = c.u32_le()? as usize;
    if total != b.len() {
        return Err(format!(
            "listpack header says {total} bytes, blob has {}",
            b.len()
        ));
    }
    c.take(2)?;
    loop {
        let start = c.pos;
        let e = c.u8()?;
        let entry = match e {
            0xff => break,
            0x00..=0x7f => int_bytes(i64::from(e)),
            0x80..=0xbf => Cow::Borrowed(c.take(usize::from(e & 0x3f))?),
            0xc0..=0xdf => {
                let v = (i64::from(e & 0x1f) << 8) | i64::from(c.u8()?);
                int_bytes(if v >= 1 << 12 { v - (1 << 13) } else { v })
            }
            0xe0..=0xef => {
                let n = (usize::from(e & 0x0f) << 8) | usize::from(c.u8()?);
                Cow::Borrowed(c.take(n)?)
            }
            0xf0 => {
                let n = c.u32_le()? as usize;
                Cow::Borrowed(c.take(n)?)
            }
            0xf1 => int_bytes(c.int_le(2)?),
            0xf2 => int_bytes(c.int_le(3)?),
            0xf3 => int_bytes(c.int_le(4)?),
            0xf4 => int_bytes(c.int_le(8)?),
            _ => return Err(format!("bad listpack entry encoding {e:#04x}")),
        };
        c.take(backlen_size(c.pos - start))?;
        f(entry);
    }
    if c.pos != b.len() {
        return Err("bytes after the listpack end".into());
    }
    Ok(())
}

/// The members of an intset, in stored order.
fn intset(b: &[u8], mut f: impl FnMut(i64)) -> Result<(), String> {
    let mut c = Blob { b, pos: 0 };
    let width = c.u32_le()? as usize;
    let n = c.u32_le()? as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(format!("bad intset encoding {width}"));
    }
    if n.checked_mul(width).and_then(|x| x.checked_add(8)) != Some(b.len()) {
        return Err(format!(
            "intset of {n} members does not fit {} bytes",
            b.len()
        ));
    }
    for _ in 0..n {
        f(c.int_le(width)?);
    }
    Ok(())
}

/// Calls `f` with each field and value of a zipmap (the hash encoding of RDB version < 4).
fn zipmap<'b>(b: &'b [u8], mut f: impl FnMut(Cow<'b, [u8]>)) -> Result<(), String> {
    let mut c = Blob { b, pos: 0 };
    c.u8()?;
    let len = |c: &mut Blob<'b>| -> Result<Option<usize>, String> {
        match c.u8()? {
            0xff => Ok(None),
            0xfe => Ok(Some(c.u32_le()? as usize)),
            n => Ok(Some(usize::from(n))),
        }
    };
    while let Some(n) = len(&mut c)? {
        f(Cow::Borrowed(c.take(n)?));
        let Some(n) = len(&mut c)? else {
            return Err("zipmap field without a value".into());
        };
        let free = usize::from(c.u8()?);
        f(Cow::Borrowed(c.take(n)?));
        c.take(free)?;
    }
    if c.pos != b.len() {
        return Err("bytes after the zipmap end".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// building values

/// The elements of one collection, collected in the ferrodis record layout (see
/// `formats/snapshot.md`): `count` then each element as a length-prefixed string.
#[derive(Default)]
struct Body {
    buf: Vec<u8>,
    items: u64,
}

impl Body {
    fn push(&mut self, b: &[u8]) {
        codec::put_varint(&mut self.buf, b.len() as u64);
        self.buf.extend_from_slice(b);
        self.items += 1;
    }
}

/// A decoded RDB value, before it becomes a keyspace value.
enum Parsed<'a> {
    Str(Cow<'a, [u8]>),
    /// A collection: ferrodis record type and its elements (`per` strings per element).
    Coll(u8, Body, u64),
    /// Sorted set entries in any order.
    ZSet(Vec<(Cow<'a, [u8]>, f64)>),
    /// Intset members (ascending in a valid file).
    Ints(Vec<i64>),
    /// A stream, built as it is read.
    Stream(Box<StreamValue>),
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// The ferrodis record of `key` holding `p`, or `None` for an empty collection.
fn record(key: &[u8], p: Parsed<'_>) -> Result<Option<Vec<u8>>, String> {
    let (type_id, count, payload) = match p {
        Parsed::Str(_) | Parsed::Stream(_) => return Err("built directly".into()),
        Parsed::Coll(t, body, per) => {
            if !body.items.is_multiple_of(per) {
                return Err(format!("odd number of elements ({})", body.items));
            }
            (t, body.items / per, body.buf)
        }
        Parsed::ZSet(mut entries) => {
            entries.sort_by(|a, b| zset::cmp_entry(a.1, &a.0, b.1, &b.0));
            let mut buf = Vec::new();
            for (m, s) in &entries {
                codec::put_varint(&mut buf, m.len() as u64);
                buf.extend_from_slice(m);
                buf.extend_from_slice(&s.to_le_bytes());
            }
            (codec::types::ZSET_SKIPLIST, entries.len() as u64, buf)
        }
        Parsed::Ints(ints) => {
            let mut buf = Vec::new();
            let mut prev: Option<i64> = None;
            for v in &ints {
                match prev {
                    None => codec::put_varint(&mut buf, zigzag(*v)),
                    Some(p) => codec::put_varint(&mut buf, v.wrapping_sub(p) as u64),
                }
                prev = Some(*v);
            }
            (codec::types::SET_INTSET, ints.len() as u64, buf)
        }
    };
    if count == 0 {
        return Ok(None);
    }
    let mut head = Vec::new();
    codec::put_varint(&mut head, count);
    let mut rec = Vec::with_capacity(key.len() + payload.len() + 24);
    codec::put_varint(&mut rec, key.len() as u64);
    rec.extend_from_slice(key);
    rec.push(type_id);
    codec::put_varint(&mut rec, (head.len() + payload.len()) as u64);
    rec.extend_from_slice(&head);
    rec.extend_from_slice(&payload);
    Ok(Some(rec))
}

/// The keyspace value of `p` (`None`: an empty collection, which Redis skips on load).
fn build(key: &[u8], p: Parsed<'_>, lim: &EncodingLimits) -> Result<Option<Value>, String> {
    match p {
        Parsed::Str(s) => return Ok(Some(Value::from_bytes(&s))),
        // An empty stream is a value (Redis keeps and loads it).
        Parsed::Stream(s) => return Ok(Some(Value::Stream(s))),
        _ => {}
    }
    let Some(rec) = record(key, p)? else {
        return Ok(None);
    };
    let mut c = Cur::new(&rec);
    codec::decode_value(&mut c, lim, "")
        .map(|r| Some(r.value))
        .map_err(|e| e.reason)
}

/// A score stored as text (old ZSET encoding, ziplist/listpack entries).
fn parse_score(b: &[u8]) -> Result<f64, String> {
    let text = std::str::from_utf8(b).ok();
    let v = text.and_then(|t| match t {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse::<f64>().ok(),
    });
    not_nan(v.ok_or_else(|| format!("bad score '{}'", String::from_utf8_lossy(b)))?)
}

/// Refuses a NaN score, as Redis's loader does: a sorted set cannot order it.
fn not_nan(score: f64) -> Result<f64, String> {
    if score.is_nan() {
        return Err("Zset with NAN score detected".into());
    }
    Ok(score)
}

/// Pairs up a flat member, score, member, score... sequence.
fn pair_scores<'a>(flat: Vec<Cow<'a, [u8]>>) -> Result<Parsed<'a>, String> {
    if !flat.len().is_multiple_of(2) {
        return Err(format!(
            "odd number of sorted set elements ({})",
            flat.len()
        ));
    }
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(m), Some(s)) = (it.next(), it.next()) {
        let score = parse_score(&s)?;
        out.push((m, score));
    }
    Ok(Parsed::ZSet(out))
}

// ---------------------------------------------------------------------------------------------
// the file

type R<T> = Result<T, LoadError>;

fn lerr<T>(offset: usize, reason: impl Into<String>) -> R<T> {
    Err(LoadError {
        offset: offset as u64,
        reason: reason.into(),
    })
}

/// A file read error: truncation names the end of the file.
fn file_err(e: DecodeError) -> LoadError {
    LoadError {
        offset: e.pos as u64,
        reason: e
            .reason
            .replace("unexpected end of ", "unexpected end of file in "),
    }
}

/// A length field: a plain length or a special string encoding.
enum Len {
    Plain(u64),
    Encoded(u8),
}

/// A packed-blob walker ([`ziplist`], [`listpack`], [`zipmap`]) behind one signature.
type Walk = for<'b> fn(&'b [u8], &mut dyn FnMut(Cow<'b, [u8]>)) -> Result<(), String>;

struct Reader<'a> {
    c: Cur<'a>,
}

impl<'a> Reader<'a> {
    fn u8(&mut self, what: &str) -> R<u8> {
        self.c.u8(what).map_err(file_err)
    }

    fn take(&mut self, n: usize, what: &str) -> R<&'a [u8]> {
        self.c.take(n, what).map_err(file_err)
    }

    fn len_field(&mut self, what: &str) -> R<Len> {
        let at = self.c.pos;
        let b = self.u8(what)?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.u8(what)?)),
            3 => Len::Encoded(b & 0x3f),
            _ if b == 0x80 => {
                let s = self.take(4, what)?;
                Len::Plain(u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])))
            }
            _ if b == 0x81 => {
                let s = self.take(8, what)?;
                Len::Plain(u64::from_be_bytes(s.try_into().unwrap_or_default()))
            }
            _ => return lerr(at, format!("bad length encoding {b:#04x} in {what}")),
        })
    }

    fn length(&mut self, what: &str) -> R<u64> {
        let at = self.c.pos;
        match self.len_field(what)? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => lerr(at, format!("{what}: encoded value where a length belongs")),
        }
    }

    /// A count of items of at least `min` bytes each, checked against the bytes left.
    fn count(&mut self, min: usize, what: &str) -> R<usize> {
        let at = self.c.pos;
        let n = self.length(what)?;
        if n.saturating_mul(min as u64) > self.c.left() as u64 {
            return lerr(
                at,
                format!(
                    "{what} {n} exceeds what the {} bytes left hold",
                    self.c.left()
                ),
            );
        }
        Ok(n as usize)
    }

    /// A string (raw, integer-encoded or LZF-compressed).
    fn string(&mut self, what: &str) -> R<Cow<'a, [u8]>> {
        let at = self.c.pos;
        match self.len_field(what)? {
            Len::Plain(n) => {
                if n > self.c.left() as u64 {
                    return self.c.eof(what).map_err(file_err);
                }
                Ok(Cow::Borrowed(self.take(n as usize, what)?))
            }
            Len::Encoded(0) => Ok(int_bytes(i64::from(self.take(1, what)?[0] as i8))),
            Len::Encoded(1) => {
                let s = self.take(2, what)?;
                Ok(int_bytes(i64::from(i16::from_le_bytes([s[0], s[1]]))))
            }
            Len::Encoded(2) => {
                let s = self.take(4, what)?;
                Ok(int_bytes(i64::from(i32::from_le_bytes([
                    s[0], s[1], s[2], s[3],
                ]))))
            }
            Len::Encoded(3) => {
                let clen = self.length(what)?;
                let ulen = self.length(what)?;
                if clen > self.c.left() as u64 {
                    return self.c.eof(what).map_err(file_err);
                }
                let data = self.take(clen as usize, what)?;
                let ulen = usize::try_from(ulen).unwrap_or(usize::MAX);
                match lzf_decompress(data, ulen) {
                    Ok(v) => Ok(Cow::Owned(v)),
                    Err(e) => lerr(at, format!("{what}: {e}")),
                }
            }
            Len::Encoded(e) => lerr(at, format!("{what}: unknown string encoding {e}")),
        }
    }

    /// A double of the old ZSET encoding: a length byte (253 NaN, refused; 254 +inf, 255 -inf)
    /// and text.
    fn text_double(&mut self) -> R<f64> {
        let at = self.c.pos;
        match self.u8("score")? {
            253 => lerr(at, "Zset with NAN score detected"),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let t = self.take(usize::from(n), "score")?;
                parse_score(t).or_else(|e| lerr(at, e))
            }
        }
    }

    fn binary_double(&mut self) -> R<f64> {
        let at = self.c.pos;
        let s = self.take(8, "score")?;
        not_nan(f64::from_le_bytes(s.try_into().unwrap_or_default())).or_else(|e| lerr(at, e))
    }

    /// A string holding a packed blob, walked by `walk` into `sink`.
    fn packed<'s>(
        &mut self,
        what: &str,
        blob: &'s mut Vec<Cow<'a, [u8]>>,
        walk: Walk,
    ) -> R<&'s mut Vec<Cow<'a, [u8]>>> {
        let at = self.c.pos;
        let s = self.string(what)?;
        let r = match s {
            Cow::Borrowed(b) => walk(b, &mut |e| blob.push(e)),
            Cow::Owned(v) => walk(&v, &mut |e| blob.push(Cow::Owned(e.into_owned()))),
        };
        r.or_else(|e| lerr(at, format!("bad {what}: {e}")))?;
        Ok(blob)
    }

    /// Reads a value of RDB type `t`.
    fn value(&mut self, t: u8) -> R<Parsed<'a>> {
        let mut flat = Vec::new();
        let coll = |t: u8, items: &[Cow<'_, [u8]>], per: u64| {
            let mut body = Body::default();
            items.iter().for_each(|e| body.push(e));
            Parsed::Coll(t, body, per)
        };
        use codec::types::{HASH_TABLE, LIST_QUICKLIST, SET_TABLE};
        Ok(match t {
            ty::STRING => Parsed::Str(self.string("string")?),
            ty::LIST | ty::SET => {
                let n = self.count(1, "element count")?;
                let mut body = Body::default();
                for _ in 0..n {
                    body.push(&self.string("element")?);
                }
                Parsed::Coll(
                    if t == ty::LIST {
                        LIST_QUICKLIST
                    } else {
                        SET_TABLE
                    },
                    body,
                    1,
                )
            }
            ty::HASH => {
                let n = self.count(2, "field count")?;
                let mut body = Body::default();
                for _ in 0..2 * n {
                    body.push(&self.string("hash element")?);
                }
                Parsed::Coll(HASH_TABLE, body, 2)
            }
            ty::ZSET | ty::ZSET_2 => {
                let n = self.count(2, "member count")?;
                let mut v = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let m = self.string("member")?;
                    let s = if t == ty::ZSET {
                        self.text_double()?
                    } else {
                        self.binary_double()?
                    };
                    v.push((m, s));
                }
                Parsed::ZSet(v)
            }
            ty::HASH_ZIPMAP => coll(HASH_TABLE, self.packed("zipmap", &mut flat, zipmap_dyn)?, 2),
            ty::LIST_ZIPLIST => coll(
                LIST_QUICKLIST,
                self.packed("ziplist", &mut flat, ziplist_dyn)?,
                1,
            ),
            ty::HASH_ZIPLIST => coll(
                HASH_TABLE,
                self.packed("ziplist", &mut flat, ziplist_dyn)?,
                2,
            ),
            ty::HASH_LISTPACK => coll(
                HASH_TABLE,
                self.packed("listpack", &mut flat, listpack_dyn)?,
                2,
            ),
            ty::SET_LISTPACK => coll(
                SET_TABLE,
                self.packed("listpack", &mut flat, listpack_dyn)?,
                1,
            ),
            ty::ZSET_ZIPLIST => {
                self.packed("ziplist", &mut flat, ziplist_dyn)?;
                pair_scores(flat).or_else(|e| lerr(self.c.pos, e))?
            }
            ty::ZSET_LISTPACK => {
                self.packed("listpack", &mut flat, listpack_dyn)?;
                pair_scores(flat).or_else(|e| lerr(self.c.pos, e))?
            }
            ty::SET_INTSET => {
                let at = self.c.pos;
                let s = self.string("intset")?;
                let mut v = Vec::new();
                intset(&s, |i| v.push(i)).or_else(|e| lerr(at, format!("bad intset: {e}")))?;
                Parsed::Ints(v)
            }
            ty::LIST_QUICKLIST => {
                let n = self.count(1, "quicklist node count")?;
                for _ in 0..n {
                    self.packed("ziplist", &mut flat, ziplist_dyn)?;
                }
                coll(LIST_QUICKLIST, &flat, 1)
            }
            ty::LIST_QUICKLIST_2 => self.quicklist2(flat)?,
            ty::STREAM_LISTPACKS | ty::STREAM_LISTPACKS_2 | ty::STREAM_LISTPACKS_3 => {
                Parsed::Stream(Box::new(self.stream(t)?))
            }
            t => return lerr(self.c.pos - 1, format!("unknown value type {t}")),
        })
    }

    /// A quicklist of version 2: nodes of a container kind (1 plain, 2 packed) and a blob.
    fn quicklist2(&mut self, mut flat: Vec<Cow<'a, [u8]>>) -> R<Parsed<'a>> {
        let n = self.count(2, "quicklist node count")?;
        for _ in 0..n {
            let at = self.c.pos;
            match self.length("quicklist container")? {
                1 => flat.push(self.string("plain list node")?),
                2 => {
                    self.packed("listpack", &mut flat, listpack_dyn)?;
                }
                k => return lerr(at, format!("unknown quicklist container {k}")),
            }
        }
        let mut body = Body::default();
        flat.iter().for_each(|e| body.push(e));
        Ok(Parsed::Coll(codec::types::LIST_QUICKLIST, body, 1))
    }
}

// ---------------------------------------------------------------------------------------------
// streams

impl Reader<'_> {
    /// An ID stored as two lengths (ms, seq).
    fn len_id(&mut self, what: &str) -> R<StreamId> {
        Ok(StreamId::new(self.length(what)?, self.length(what)?))
    }

    /// An ID stored raw: 16 bytes, big-endian ms then seq.
    fn raw_id(&mut self, what: &str) -> R<StreamId> {
        let b = self.take(16, what)?;
        Ok(be_id(b))
    }

    /// A millisecond time: 8 bytes little-endian.
    fn ms_time(&mut self, what: &str) -> R<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    /// A stream of RDB type 15 (Redis 5-6.2), 19 (7.0: with first ID, largest deleted ID,
    /// entries added, groups' read counters) or 21 (7.2: consumers' active time too).
    fn stream(&mut self, t: u8) -> R<StreamValue> {
        let at = self.c.pos;
        let corrupt = |why: String| lerr::<StreamValue>(at, format!("bad stream: {why}"));
        let mut s = StreamValue::new();
        let nodes = self.count(2, "stream node count")?;
        for _ in 0..nodes {
            let key = self.string("stream node key")?;
            let lp = self.string("stream listpack")?;
            let items = match stream_node(&key, &lp) {
                Ok(items) => items,
                Err(e) => return corrupt(e),
            };
            if !s.load_node(items) {
                return corrupt("node out of order or without live entries".into());
            }
        }
        let length = self.length("stream length")?;
        s.last_id = self.len_id("stream last id")?;
        let first_recorded = s.first_entry().map_or(StreamId::MIN, |i| i.id);
        if !s.finish_load() || length != s.len() {
            return corrupt(format!("length {length} or last id does not match its entries"));
        }
        if t >= ty::STREAM_LISTPACKS_2 {
            s.first_id = self.len_id("stream first id")?;
            s.max_deleted_id = self.len_id("stream max deleted id")?;
            s.entries_added = self.length("stream entries added")?;
        } else {
            s.first_id = first_recorded;
            s.entries_added = s.len();
        }
        let groups = self.count(1, "stream group count")?;
        for _ in 0..groups {
            let name = self.string("group name")?;
            let last = self.len_id("group last id")?;
            let read = if t >= ty::STREAM_LISTPACKS_2 {
                self.length("group entries read")? as i64
            } else {
                s.estimate_distance(last).map_or(ENTRIES_READ_INVALID, |n| n as i64)
            };
            let g = self.stream_group(t, Group::new(last, read))?;
            if s.groups.insert(name.as_ref().into(), g).is_some() {
                return corrupt("duplicate group".into());
            }
        }
        Ok(s)
    }

    /// A group's pending entries and consumers.
    fn stream_group(&mut self, t: u8, mut g: Group) -> R<Group> {
        let at = self.c.pos;
        let n = self.count(17, "group pending count")?;
        for _ in 0..n {
            let id = self.raw_id("pending id")?;
            let delivery_time = self.ms_time("delivery time")?;
            let delivery_count = self.length("delivery count")?;
            let nack = Nack { consumer: Box::default(), delivery_time, delivery_count };
            if g.pel.insert(id, nack).is_some() {
                return lerr(at, "bad stream: duplicate pending entry");
            }
        }
        let consumers = self.count(10, "consumer count")?;
        let mut owned = std::collections::BTreeSet::new();
        for _ in 0..consumers {
            let name = self.string("consumer name")?;
            let seen = self.ms_time("consumer seen time")?;
            if t >= ty::STREAM_LISTPACKS_3 {
                self.ms_time("consumer active time")?;
            }
            if !g.create_consumer(&name, seen) {
                return lerr(at, "bad stream: duplicate consumer");
            }
            let n = self.count(16, "consumer pending count")?;
            for _ in 0..n {
                let id = self.raw_id("consumer pending id")?;
                let Some(nack) = g.pel.get(&id) else {
                    return lerr(at, "bad stream: consumer pending entry not in the group");
                };
                if !owned.insert(id) {
                    return lerr(at, "bad stream: pending entry of two consumers");
                }
                let (time, count) = (nack.delivery_time, nack.delivery_count);
                g.assign(id, &name, time, count);
            }
        }
        if owned.len() != g.pel.len() {
            return lerr(at, "bad stream: pending entry without consumer");
        }
        Ok(g)
    }
}

fn be_id(b: &[u8]) -> StreamId {
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&b[..8]);
    seq.copy_from_slice(&b[8..16]);
    StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq))
}

/// Entry flags in a stream listpack.
const STREAM_DELETED: i64 = 1;
const STREAM_SAMEFIELDS: i64 = 2;

/// The entries of one stream node: its 16-byte master ID and its listpack (a master entry
/// `count deleted nfields field... 0`, then entries `flags ms-delta seq-delta [nfields]
/// [field] value ... lp-count`, fields omitted when they are the master's).
fn stream_node(key: &[u8], lp: &[u8]) -> Result<Vec<Item>, String> {
    if key.len() != 16 {
        return Err("node key is not a stream ID".into());
    }
    let master = be_id(key);
    let mut el: Vec<Cow<'_, [u8]>> = Vec::new();
    listpack(lp, |e| el.push(e))?;
    let mut it = el.into_iter();
    let mut next = || it.next().ok_or_else(|| "listpack ends inside an entry".to_string());
    fn int(e: &[u8]) -> Result<i64, String> {
        crate::util::num::parse_i64(e).ok_or_else(|| "integer expected".to_string())
    }
    let live = int(&next()?)?;
    let deleted = int(&next()?)?;
    let nf = int(&next()?)?;
    if !(1..=(lp.len() as i64)).contains(&nf) {
        return Err(format!("bad master field count {nf}"));
    }
    let mut master_fields = Vec::with_capacity(nf as usize);
    for _ in 0..nf {
        master_fields.push(next()?.into_owned());
    }
    if int(&next()?)? != 0 {
        return Err("master entry not terminated".into());
    }
    let mut items = Vec::new();
    let (mut n_live, mut n_del) = (0i64, 0i64);
    loop {
        let flags = match it.next() {
            None => break,
            Some(f) => int(&f)?,
        };
        let mut next = || it.next().ok_or_else(|| "listpack ends inside an entry".to_string());
        let ms = master.ms.wrapping_add(int(&next()?)? as u64);
        let seq = master.seq.wrapping_add(int(&next()?)? as u64);
        let mut fields: Vec<Box<[u8]>> = Vec::new();
        if flags & STREAM_SAMEFIELDS != 0 {
            for f in &master_fields {
                fields.push(f.as_slice().into());
                fields.push(next()?.as_ref().into());
            }
        } else {
            let n = int(&next()?)?;
            if !(1..=(lp.len() as i64)).contains(&n) {
                return Err(format!("bad field count {n}"));
            }
            for _ in 0..2 * n {
                fields.push(next()?.as_ref().into());
            }
        }
        next()?;
        let del = flags & STREAM_DELETED != 0;
        if del {
            n_del += 1;
        } else {
            n_live += 1;
        }
        items.push(Item { id: StreamId::new(ms, seq), deleted: del, fields });
    }
    if n_live != live || n_del != deleted {
        return Err("entry counts do not match the master entry".into());
    }
    if items.first().map(|i| i.id) != Some(master) {
        return Err("first entry is not the node's master ID".into());
    }
    Ok(items)
}

fn ziplist_dyn<'b>(b: &'b [u8], f: &mut dyn FnMut(Cow<'b, [u8]>)) -> Result<(), String> {
    ziplist(b, f)
}

fn listpack_dyn<'b>(b: &'b [u8], f: &mut dyn FnMut(Cow<'b, [u8]>)) -> Result<(), String> {
    listpack(b, f)
}

fn zipmap_dyn<'b>(b: &'b [u8], f: &mut dyn FnMut(Cow<'b, [u8]>)) -> Result<(), String> {
    zipmap(b, f)
}

/// Builds the FUNCTION DUMP payload (`formats/functions.md`) of the libraries' `codes`, the
/// form `engine::restore_functions` takes them in.
fn functions_payload(codes: &[Vec<u8>]) -> Vec<u8> {
    crate::scripting::functions::dump_codes(codes.iter().map(Vec::as_slice))
}

/// Loading state between opcodes.
struct Load<'s, S: LoadSink> {
    sink: &'s mut S,
    meta: Meta,
    meta_sent: bool,
    functions: Vec<Vec<u8>>,
    db: u32,
}

impl<S: LoadSink> Load<'_, S> {
    /// Hands the header fields read so far to the sink, once (before the first key).
    fn send_meta(&mut self) -> Result<(), String> {
        if !self.meta_sent {
            self.meta_sent = true;
            self.finish_aux();
            self.sink.meta(&self.meta)?;
        }
        Ok(())
    }

    fn finish_aux(&mut self) {
        self.meta.aux.retain(|(k, _)| k != AUX_FUNCTIONS);
        if !self.functions.is_empty() {
            let payload = functions_payload(&self.functions);
            self.meta.aux.push((AUX_FUNCTIONS.to_string(), payload));
        }
    }

    fn aux(&mut self, name: &[u8], value: &[u8]) {
        let num = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
        };
        let text = || String::from_utf8_lossy(value).into_owned();
        match name {
            b"redis-ver" => self.meta.server_version = text(),
            b"ctime" => self.meta.created_ms = num().unwrap_or(0).saturating_mul(1000),
            b"used-mem" => self.meta.used_memory = num().unwrap_or(0),
            b"repl-id" => self.meta.repl_id = text(),
            b"repl-offset" => self.meta.repl_offset = num().unwrap_or(0),
            _ => {}
        }
        let name = String::from_utf8_lossy(name).into_owned();
        self.meta.aux.push((name, value.to_vec()));
    }
}

/// Reads the RDB file in `bytes` into `sink`; returns the header fields (aux fields, and the
/// function libraries as the `functions` aux). The file must end right after its checksum.
pub fn load(bytes: &[u8], limits: EncodingLimits, sink: &mut impl LoadSink) -> R<Meta> {
    let (meta, end) = load_prefix(bytes, limits, sink)?;
    if end != bytes.len() {
        return lerr(
            end,
            format!("{} bytes after the end of the RDB", bytes.len() - end),
        );
    }
    Ok(meta)
}

/// Like [`load`], but the RDB may be followed by other data (an AOF with an RDB preamble);
/// returns the offset just past the RDB too.
pub fn load_prefix(
    bytes: &[u8],
    lim: EncodingLimits,
    sink: &mut impl LoadSink,
) -> R<(Meta, usize)> {
    let version = read_magic(bytes)?;
    let mut r = Reader { c: Cur::new(bytes) };
    r.c.pos = 9;
    let mut st = Load {
        sink,
        meta: Meta::default(),
        meta_sent: false,
        functions: Vec::new(),
        db: 0,
    };
    let sink_err = |at: usize| {
        move |e: String| LoadError {
            offset: at as u64,
            reason: e,
        }
    };
    let mut expire: Option<u64> = None;
    loop {
        let at = r.c.pos;
        let t = r.u8("opcode")?;
        match t {
            op::EOF => {
                st.send_meta().map_err(sink_err(at))?;
                break;
            }
            op::SELECTDB => {
                st.send_meta().map_err(sink_err(at))?;
                let db = r.length("database number")?;
                st.db =
                    u32::try_from(db).or_else(|_| lerr(at, format!("database {db} too large")))?;
            }
            op::RESIZEDB => {
                r.length("resize hint")?;
                r.length("resize hint")?;
            }
            op::AUX => {
                let k = r.string("aux field")?;
                let v = r.string("aux field")?;
                st.aux(&k, &v);
            }
            op::EXPIRETIME => {
                let s = r.take(4, "expire time")?;
                expire = Some(u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])) * 1000);
            }
            op::EXPIRETIME_MS => {
                let s = r.take(8, "expire time")?;
                expire = Some(u64::from_le_bytes(s.try_into().unwrap_or_default()));
            }
            // LRU/LFU hints: keys loaded here start with a fresh access time instead.
            op::FREQ => {
                r.u8("LFU frequency")?;
            }
            op::IDLE => {
                r.length("LRU idle time")?;
            }
            op::FUNCTION2 => {
                if st.meta_sent {
                    return lerr(at, "function library after the keys");
                }
                let code = r.string("function library")?;
                st.functions.push(code.into_owned());
            }
            op::FUNCTION_PRE_GA => {
                return lerr(
                    at,
                    "function libraries of Redis 7.0 release candidates are not supported",
                )
            }
            op::MODULE_AUX => return lerr(at, "module aux data is not supported (no modules)"),
            t => {
                st.send_meta().map_err(sink_err(at))?;
                load_key(&mut r, &mut st, t, expire.take(), &lim)?;
                st.sink.progress(r.c.pos as u64, bytes.len() as u64);
            }
        }
    }
    let end = verify_checksum(&mut r, version)?;
    st.finish_aux();
    Ok((st.meta, end))
}

/// Checks the magic and returns the version.
fn read_magic(bytes: &[u8]) -> R<u32> {
    if bytes.len() < 9 {
        return lerr(bytes.len(), "unexpected end of file in the RDB magic");
    }
    if !is_rdb(bytes) {
        return lerr(0, "not a Redis RDB file (bad magic)");
    }
    let digits = std::str::from_utf8(&bytes[5..9]).ok();
    let Some(version) = digits
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u32>().ok())
    else {
        return lerr(5, "bad RDB version field");
    };
    if version == 0 || version > MAX_VERSION {
        return lerr(
            5,
            format!("unsupported RDB version {version} (this reader reads 1..={MAX_VERSION})"),
        );
    }
    Ok(version)
}

/// After the EOF opcode: the crc64 of everything before it (version 5 on; 0 = not computed).
fn verify_checksum(r: &mut Reader<'_>, version: u32) -> R<usize> {
    if version < 5 {
        return Ok(r.c.pos);
    }
    let at = r.c.pos;
    let s = r.take(8, "checksum")?;
    let stored = u64::from_le_bytes(s.try_into().unwrap_or_default());
    let computed = crc64(&r.c.buf[..at]);
    if stored != 0 && stored != computed {
        return lerr(
            at,
            format!("RDB CRC error (stored {stored:016x}, computed {computed:016x})"),
        );
    }
    Ok(r.c.pos)
}

/// The object of a Redis DUMP payload (`formats/dump.md`, "Redis payloads"): its RDB type
/// byte and value, which must fill `bytes`, built in the encoding `lim` calls for. An empty
/// collection is refused, as Redis's RESTORE refuses it.
pub fn dump_object(bytes: &[u8], lim: &EncodingLimits) -> Result<Value, String> {
    let mut r = Reader { c: Cur::new(bytes) };
    let t = r.u8("object type").map_err(|e| e.reason)?;
    if let Some(kind) = ty::refused(t) {
        return Err(format!("{kind} values are not supported (RDB type {t})"));
    }
    let parsed = r.value(t).map_err(|e| e.reason)?;
    if !r.c.at_end() {
        return Err(format!("{} bytes after the object", r.c.left()));
    }
    build(b"", parsed, lim)?.ok_or_else(|| "empty collection".into())
}

/// The library codes of the records of a Redis FUNCTION DUMP payload (without its trailer):
/// `FUNCTION2` records (a code string each) and the `FUNCTION` records of Redis 7.0's release
/// candidates (name, engine, optional description, code: rebuilt into a code with its
/// shebang, as Redis does). Errors are Redis's FUNCTION RESTORE messages.
pub fn function_records(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut r = Reader { c: Cur::new(bytes) };
    let mut codes = Vec::new();
    let s = |r: &mut Reader<'_>, what: &str| {
        r.string("function").map(Cow::into_owned).map_err(|_| format!("Failed loading {what}"))
    };
    while !r.c.at_end() {
        match r.u8("opcode").map_err(|_| "can not read data type".to_string())? {
            op::FUNCTION2 => codes.push(s(&mut r, "library payload")?),
            op::FUNCTION_PRE_GA => {
                let name = s(&mut r, "library name")?;
                let engine = s(&mut r, "engine name")?;
                let has_desc = r
                    .length("description")
                    .map_err(|_| "Failed loading library description indicator".to_string())?;
                if has_desc != 0 {
                    s(&mut r, "library description")?;
                }
                let blob = s(&mut r, "library blob")?;
                let mut code = b"#!".to_vec();
                code.extend_from_slice(&engine);
                code.extend_from_slice(b" name=");
                code.extend_from_slice(&name);
                code.push(b'\n');
                code.extend_from_slice(&blob);
                codes.push(code);
            }
            _ => return Err("given type is not a function".into()),
        }
    }
    Ok(codes)
}

/// One key: its value of type `t`, then its expiry.
fn load_key<S: LoadSink>(
    r: &mut Reader<'_>,
    st: &mut Load<'_, S>,
    t: u8,
    expire: Option<u64>,
    lim: &EncodingLimits,
) -> R<()> {
    let at = r.c.pos - 1;
    let key = r.string("key")?;
    let name = || String::from_utf8_lossy(&key).into_owned();
    if let Some(kind) = ty::refused(t) {
        return lerr(
            at,
            format!(
                "key '{}': {kind} values are not supported (RDB type {t})",
                name()
            ),
        );
    }
    let parsed = r.value(t)?;
    let value = build(&key, parsed, lim).or_else(|e| lerr(at, format!("key '{}': {e}", name())))?;
    // Redis skips empty collections on load; so does this reader.
    let Some(value) = value else { return Ok(()) };
    let fail = |e: String| LoadError {
        offset: at as u64,
        reason: e,
    };
    st.sink.value(st.db, &key, value).map_err(fail)?;
    if let Some(ms) = expire {
        // 0 means "no expiry" to the sink; an expiry at the epoch is as expired as 1 ms.
        st.sink.expire(st.db, &key, ms.max(1)).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis_test_vector() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn crc64_in_pieces_matches_the_bytewise_definition() {
        let data: Vec<u8> =
            (0..1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let bytewise = data.iter().fold(0u64, |crc, &b| {
            CRC64_TABLES[0][((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8)
        });
        assert_eq!(crc64(&data), bytewise);
        for cut in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let mut c = Crc64::default();
            c.update(&data[..cut]);
            c.update(&data[cut..]);
            assert_eq!(c.value(), bytewise, "cut at {cut}");
        }
    }

    #[test]
    fn lzf_literals_and_back_references() {
        // "aaaaaaaaaa": literal "a", then a back reference of 9 bytes at distance 1.
        let input = [0x00, b'a', (7 << 5), 9 - 2 - 7, 0x00];
        assert_eq!(lzf_decompress(&input, 10).unwrap(), b"aaaaaaaaaa");
        assert!(lzf_decompress(&input, 11).is_err());
        assert!(lzf_decompress(&[0x20, 0x00], 3).is_err());
        assert!(lzf_decompress(&[0x00, b'a'], 1000).is_err());
    }

    #[test]
    fn listpack_entries() {
        // 3 entries: 7-bit uint 5, 6-bit string "ab", 13-bit int -1.
        let mut lp = vec![0, 0, 0, 0, 3, 0];
        lp.extend_from_slice(&[0x05, 1]);
        lp.extend_from_slice(&[0x82, b'a', b'b', 3]);
        lp.extend_from_slice(&[0xdf, 0xff, 2]);
        lp.push(0xff);
        let n = lp.len() as u32;
        lp[..4].copy_from_slice(&n.to_le_bytes());
        let mut got = Vec::new();
        listpack(&lp, |e| got.push(e.into_owned())).unwrap();
        assert_eq!(got, vec![b"5".to_vec(), b"ab".to_vec(), b"-1".to_vec()]);
        for cut in 0..lp.len() {
            assert!(listpack(&lp[..cut], |_| {}).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn ziplist_entries() {
        let mut zl = vec![0; 10];
        zl.extend_from_slice(&[0, 0x02, b'h', b'i']);
        zl.extend_from_slice(&[4, 0xf3]); // immediate 2
        zl.extend_from_slice(&[2, 0xc0, 0x00, 0x80]); // int16 -32768
        zl.push(0xff);
        let n = zl.len() as u32;
        zl[..4].copy_from_slice(&n.to_le_bytes());
        let mut got = Vec::new();
        ziplist(&zl, |e| got.push(e.into_owned())).unwrap();
        assert_eq!(got, vec![b"hi".to_vec(), b"2".to_vec(), b"-32768".to_vec()]);
        for cut in 0..zl.len() {
            assert!(ziplist(&zl[..cut], |_| {}).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn intset_members() {
        let mut is = vec![2, 0, 0, 0, 2, 0, 0, 0];
        is.extend_from_slice(&(-3i16).to_le_bytes());
        is.extend_from_slice(&7i16.to_le_bytes());
        let mut got = Vec::new();
        intset(&is, |v| got.push(v)).unwrap();
        assert_eq!(got, vec![-3, 7]);
        assert!(intset(&is[..11], |_| {}).is_err());
        let huge = [8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(intset(&huge, |_| {}).is_err());
    }

    /// Keeps what is loaded.
    #[derive(Default)]
    struct Keep {
        values: std::collections::BTreeMap<Vec<u8>, Value>,
        expires: Vec<(Vec<u8>, u64)>,
    }

    impl LoadSink for Keep {
        fn meta(&mut self, _: &Meta) -> Result<(), String> {
            Ok(())
        }
        fn value(&mut self, _: u32, key: &[u8], v: Value) -> Result<(), String> {
            self.values.insert(key.to_vec(), v);
            Ok(())
        }
        fn expire(&mut self, _: u32, key: &[u8], at: u64) -> Result<(), String> {
            self.expires.push((key.to_vec(), at));
            Ok(())
        }
    }

    /// An RDB string (plain length).
    fn s(out: &mut Vec<u8>, b: &[u8]) {
        assert!(b.len() < 64);
        out.push(b.len() as u8);
        out.extend_from_slice(b);
    }

    /// A ziplist entry: text, or an integer (int16 encoding).
    enum Z<'a> {
        S(&'a [u8]),
        I(i16),
    }

    fn zl(entries: &[Z<'_>]) -> Vec<u8> {
        let mut out = vec![0; 10];
        let mut prev = 0u8;
        for e in entries {
            let start = out.len();
            out.push(prev);
            match e {
                Z::S(b) => {
                    out.push(b.len() as u8);
                    out.extend_from_slice(b);
                }
                Z::I(v) => {
                    out.push(0xc0);
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            prev = (out.len() - start) as u8;
        }
        out.push(0xff);
        let n = out.len() as u32;
        out[..4].copy_from_slice(&n.to_le_bytes());
        out
    }

    fn file(version: u8, keys: &[u8]) -> Vec<u8> {
        let mut f = format!("REDIS{version:04}").into_bytes();
        f.extend_from_slice(&[op::SELECTDB, 0]);
        f.extend_from_slice(keys);
        f.push(op::EOF);
        f.extend_from_slice(&crc64(&f).to_le_bytes());
        f
    }

    fn key(out: &mut Vec<u8>, t: u8, k: &[u8]) {
        out.push(t);
        s(out, k);
    }

    fn list_items(v: &Value) -> Vec<Vec<u8>> {
        let Value::List(l) = v else {
            panic!("not a list")
        };
        l.iter().map(|e| e.into_owned()).collect()
    }

    #[test]
    fn old_encodings_load() {
        let mut k = Vec::new();
        key(&mut k, ty::HASH_ZIPMAP, b"zm");
        // zipmap: count, then "a" -> "1", "bb" -> "22" (1 free byte).
        let zm = [
            2, 1, b'a', 1, 0, b'1', 2, b'b', b'b', 2, 1, b'2', b'2', 0, 0xff,
        ];
        s(&mut k, &zm);
        key(&mut k, ty::HASH_ZIPLIST, b"hz");
        s(
            &mut k,
            &zl(&[Z::S(b"f"), Z::S(b"v"), Z::S(b"n"), Z::I(300)]),
        );
        key(&mut k, ty::ZSET_ZIPLIST, b"zz");
        s(
            &mut k,
            &zl(&[Z::S(b"m1"), Z::S(b"1.5"), Z::S(b"m2"), Z::I(-3)]),
        );
        key(&mut k, ty::LIST_QUICKLIST, b"ql");
        k.push(2);
        s(&mut k, &zl(&[Z::S(b"x"), Z::I(7)]));
        s(&mut k, &zl(&[Z::S(b"y")]));
        key(&mut k, ty::ZSET, b"zt");
        k.extend_from_slice(&[2, 1, b'a', 3, b'2', b'.', b'5', 1, b'b', 254]);
        key(&mut k, ty::SET_INTSET, b"is");
        s(&mut k, &[2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 5, 0]);
        k.extend_from_slice(&[op::EXPIRETIME, 10, 0, 0, 0]);
        key(&mut k, ty::STRING, b"str");
        k.extend_from_slice(&[0xc0, 0xfe]); // int8 -2
        key(&mut k, ty::LIST_ZIPLIST, b"empty");
        s(&mut k, &zl(&[]));
        let mut got = Keep::default();
        load(&file(6, &k), EncodingLimits::default(), &mut got).unwrap();
        let v = &got.values;
        let Value::Hash(h) = &v[&b"zm"[..]] else {
            panic!()
        };
        assert_eq!(
            (h.get(b"a"), h.get(b"bb")),
            (Some(&b"1"[..]), Some(&b"22"[..]))
        );
        let Value::Hash(h) = &v[&b"hz"[..]] else {
            panic!()
        };
        assert_eq!(h.get(b"n"), Some(&b"300"[..]));
        let Value::ZSet(z) = &v[&b"zz"[..]] else {
            panic!()
        };
        assert_eq!((z.score(b"m1"), z.score(b"m2")), (Some(1.5), Some(-3.0)));
        let Value::ZSet(z) = &v[&b"zt"[..]] else {
            panic!()
        };
        assert_eq!(
            (z.score(b"a"), z.score(b"b")),
            (Some(2.5), Some(f64::INFINITY))
        );
        assert_eq!(list_items(&v[&b"ql"[..]]), [&b"x"[..], b"7", b"y"]);
        let Value::Set(st) = &v[&b"is"[..]] else {
            panic!()
        };
        assert!(st.contains(b"1") && st.contains(b"5") && st.len() == 2);
        assert_eq!(v[&b"str"[..]], Value::from_bytes(b"-2"));
        assert!(
            !v.contains_key(&b"empty"[..]),
            "empty collections are skipped"
        );
        assert_eq!(got.expires, [(b"str".to_vec(), 10_000)]);
    }

    #[test]
    fn listpacks_of_redis_7_2_load() {
        // Set listpack (RDB 11): "a", 5.
        let mut lp = vec![0, 0, 0, 0, 2, 0, 0x81, b'a', 2, 5, 1, 0xff];
        let n = lp.len() as u32;
        lp[..4].copy_from_slice(&n.to_le_bytes());
        let mut k = Vec::new();
        key(&mut k, ty::SET_LISTPACK, b"sl");
        s(&mut k, &lp);
        key(&mut k, ty::LIST_QUICKLIST_2, b"l2");
        k.extend_from_slice(&[2, 1]); // two nodes, the first plain
        s(&mut k, b"plain");
        k.push(2);
        s(&mut k, &lp);
        let mut got = Keep::default();
        load(&file(11, &k), EncodingLimits::default(), &mut got).unwrap();
        let Value::Set(st) = &got.values[&b"sl"[..]] else {
            panic!()
        };
        assert!(st.contains(b"a") && st.contains(b"5"));
        assert_eq!(
            list_items(&got.values[&b"l2"[..]]),
            [&b"plain"[..], b"a", b"5"]
        );
        // A duplicate member is refused, naming the key.
        let mut k = Vec::new();
        key(&mut k, ty::SET, b"dup");
        k.extend_from_slice(&[2, 1, b'x', 1, b'x']);
        let e = load(
            &file(9, &k),
            EncodingLimits::default(),
            &mut Keep::default(),
        )
        .unwrap_err();
        assert_eq!(
            (e.offset, e.reason.as_str()),
            (11, "key 'dup': duplicate set member")
        );
    }

    /// A stream DUMPed by redis-server 7.0 (RDB type 19): entries 1-0 a=1, 2-0 b=2 (deleted)
    /// and 3-0 a=3 in nodes of two, and a group `g` whose consumer `alice` holds 1-0 (claimed
    /// with TIME 1700000000000 RETRYCOUNT 2) and whose consumer `bob` holds nothing. Shared
    /// with `rdb_write.rs`'s tests, which write it back.
    pub(crate) fn redis_stream_payload() -> Vec<u8> {
        let hex = concat!(
            "130210000000000000000100000000000000002b2b00000011000101010101018161020001020100",
            "01000101010401010101010001010181620202010601ff1000000000000000030000000000000000",
            "1c1c0000000a00010100010101816102000102010001000103010401ff0203000100020003010167",
            "000081ffffffffffffffff01000000000000000100000000000000000068e5cf8b01000002020561",
            "6c69636516d8e604a2010000010000000000000001000000000000000003626f6216d8e604a20100",
            "00000a00c4cc80db662853a9",
        );
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The payload of [`redis_stream_payload`] loads with its entries, group and consumers.
    #[test]
    fn redis_7_0_stream_payload_loads() {
        let bytes = redis_stream_payload();
        let object = &bytes[..bytes.len() - 10];
        let Value::Stream(s) = dump_object(object, &EncodingLimits::default()).unwrap() else {
            panic!()
        };
        let ids: Vec<String> = s.iter().map(|i| i.id.to_string()).collect();
        assert_eq!(ids, ["1-0", "3-0"]);
        assert_eq!((s.node_count(), s.entries_added, s.last_id), (2, 3, StreamId::new(3, 0)));
        assert_eq!(s.max_deleted_id, StreamId::new(2, 0));
        let g = &s.groups[&b"g"[..]];
        let n = &g.pel[&StreamId::new(1, 0)];
        let got = (&*n.consumer, n.delivery_time, n.delivery_count);
        assert_eq!(got, (&b"alice"[..], 1_700_000_000_000, 2));
        assert!(g.consumers[&b"bob"[..]].pel.is_empty());
        // Damaged copies are refused, never a panic.
        for i in 0..object.len() {
            let mut bad = object.to_vec();
            bad[i] ^= 0x55;
            let _ = dump_object(&bad, &EncodingLimits::default());
            assert!(dump_object(&object[..i], &EncodingLimits::default()).is_err());
        }
    }

    #[test]
    fn bad_magic_and_version() {
        let lim = EncodingLimits::default();
        let e = load(b"REDIS0012\xff", lim, &mut Keep::default()).unwrap_err();
        assert_eq!(
            e.reason,
            "unsupported RDB version 12 (this reader reads 1..=11)"
        );
        let e = load(b"REDIS0009\xff", lim, &mut Keep::default()).unwrap_err();
        assert_eq!(
            (e.offset, e.reason.as_str()),
            (10, "unexpected end of file in checksum")
        );
        let mut ok = b"REDIS0009\xff".to_vec();
        ok.extend_from_slice(&crc64(&ok).to_le_bytes());
        assert!(load(&ok, lim, &mut Keep::default()).is_ok());
        // A huge count in a tiny file is refused before anything is allocated.
        let e = load(b"REDIS0009\x00\x01k\x81\xff", lim, &mut Keep::default()).unwrap_err();
        assert!(e.reason.contains("unexpected end of file"), "{}", e.reason);
        let e = load(
            b"REDIS0009\x01\x01k\x80\xff\xff\xff\xff",
            lim,
            &mut Keep::default(),
        )
        .unwrap_err();
        assert!(
            e.reason.starts_with("element count 4294967295 exceeds"),
            "{}",
            e.reason
        );
    }
}
