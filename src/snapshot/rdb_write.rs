//! Writer of Redis's RDB object serialization, the encoder beside `rdb.rs`'s reader: what
//! DUMP and FUNCTION DUMP return (`formats/dump.md`), so that redis-server (and every tool
//! that moves keys with DUMP / RESTORE or MIGRATE) can RESTORE what ferrodis dumps.
//!
//! The bytes follow redis-server 7.0 (RDB version 10): strings with the RDB integer encodings
//! and LZF compression where Redis uses them, small collections as the listpack / intset blobs
//! Redis keeps in memory (so a small value's payload is byte-identical to Redis's), big ones
//! element by element, streams as their listpack nodes with groups, PELs and consumers.
//! Our compact encodings keep Redis's element order, so the packed blobs are rebuilt here
//! from our values entry by entry, with Redis's entry encodings.

use super::rdb::{crc64, op, ty};
use crate::keyspace::stream::{Group, Node};
use crate::keyspace::{HashValue, ListValue, RString, SetValue, StreamValue, Value, ZSetValue};

/// The RDB version Redis 7.0 writes after a DUMP payload's object.
pub const RDB_VERSION: u16 = 10;

/// Choices the server's configuration makes for a payload.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `rdbcompression`: LZF-compress strings longer than 20 bytes when that saves space.
    pub compress: bool,
    /// `list-max-listpack-size`: how a list is cut into quicklist nodes.
    pub list_fill: i64,
}

/// Redis's DUMP payload of `value`: the RDB object, the RDB version and the CRC-64.
pub fn dump_payload(value: &Value, o: Options) -> Vec<u8> {
    let mut out = Vec::new();
    object(&mut out, value, o);
    trailer(&mut out);
    out
}

/// Redis's FUNCTION DUMP payload: one `FUNCTION2` record per library code, the RDB version
/// and the CRC-64.
pub fn functions_payload<'a>(codes: impl IntoIterator<Item = &'a [u8]>, compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(op::FUNCTION2);
        raw_string(&mut out, code, compress);
    }
    trailer(&mut out);
    out
}

/// Appends the RDB version and the CRC-64 of everything before it.
fn trailer(out: &mut Vec<u8>) {
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// One RDB object: the type byte Redis's `rdbSaveObjectType` picks, then the value.
pub fn object(out: &mut Vec<u8>, v: &Value, o: Options) {
    out.push(object_type(v));
    object_value(out, v, o);
}

/// The type byte of `v`'s RDB object (an RDB file puts the key between it and the value).
pub fn object_type(v: &Value) -> u8 {
    match v {
        Value::Str(_) => ty::STRING,
        Value::List(_) => ty::LIST_QUICKLIST_2,
        Value::Hash(h) if hash_packed(h) => ty::HASH_LISTPACK,
        Value::Hash(_) => ty::HASH,
        Value::Set(SetValue::Ints(_)) => ty::SET_INTSET,
        Value::Set(_) => ty::SET,
        Value::ZSet(ZSetValue::Pack(_)) => ty::ZSET_LISTPACK,
        Value::ZSet(_) => ty::ZSET_2,
        Value::Stream(_) => ty::STREAM_LISTPACKS_2,
    }
}

/// The value of `v`'s RDB object, in the form [`object_type`] names.
pub fn object_value(out: &mut Vec<u8>, v: &Value, o: Options) {
    match v {
        Value::Str(s) => string_object(out, s, o.compress),
        Value::List(l) => list(out, l, o),
        Value::Hash(h) => hash(out, h, o.compress),
        Value::Set(s) => set(out, s, o.compress),
        Value::ZSet(z) => zset(out, z, o.compress),
        Value::Stream(s) => stream(out, s, o.compress),
    }
}

// ---------------------------------------------------------------------------------------------
// lengths and strings

/// An RDB length: 6 bits, 14 bits, 32 bits or 64 bits (both big-endian).
pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// The RDB integer encoding of `v` (8, 16 or 32 bits) when it fits one.
fn encode_int(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(b) = i8::try_from(v) {
        out.extend_from_slice(&[0xc0, b as u8]);
    } else if let Ok(h) = i16::try_from(v) {
        out.push(0xc1);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        out.push(0xc2);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// A string value: an `int` string as Redis's `rdbSaveLongLongAsStringObject` (integer
/// encoding, else its digits), any other as [`raw_string`].
fn string_object(out: &mut Vec<u8>, s: &RString, compress: bool) {
    match s {
        RString::Int(n) => {
            if !encode_int(out, *n) {
                let digits = itoa::Buffer::new().format(*n).as_bytes().to_vec();
                put_len(out, digits.len() as u64);
                out.extend_from_slice(&digits);
            }
        }
        _ => s.with_bytes(|b| raw_string(out, b, compress)),
    }
}

/// A string as Redis's `rdbSaveRawString`: integer-encoded when it is a canonical integer of
/// at most 11 bytes that fits 32 bits, LZF-compressed when longer than 20 bytes and
/// compression saves at least 4 bytes, verbatim otherwise.
pub fn raw_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = lp_int(s) {
            if encode_int(out, v) {
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = lzf_compress(s, s.len() - 4) {
            out.push(0xc3);
            put_len(out, c.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

// ---------------------------------------------------------------------------------------------
// LZF

/// Bits of the compressor's hash table index.
const HLOG: u32 = 16;
/// Longest literal run, farthest back reference, longest back reference.
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// The hash slot of the three bytes packed in `h` (liblzf's "very fast" hash).
fn lzf_idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) & ((1 << HLOG) - 1)) as usize
}

/// LZF compression as Redis's bundled liblzf performs it (same hash, same greedy matching,
/// so the same output), into at most `out_len` bytes; `None` when it does not fit. The only
/// difference: Redis's hash table starts uninitialised and ours empty, which can only change
/// which earlier position a match refers to, never whether the output decodes.
pub fn lzf_compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let in_len = input.len();
    if in_len < 3 || out_len == 0 {
        return None;
    }
    // A few spare bytes: the final literal flush may pass `out_len` by one before the size
    // check below refuses the result (liblzf's caller allocates one spare byte too).
    let mut out = vec![0u8; out_len + 4];
    HTAB.with(|t| {
        let mut t = t.borrow_mut();
        t.next_round();
        lzf_run(input, &mut out, out_len, &mut t)
    })
}

/// liblzf's hash table of earlier positions, kept between calls: each call stamps its entries
/// with a new round number instead of clearing 64 Ki slots (which would cost more than
/// compressing a short string).
struct HashTab {
    round: u32,
    slots: Vec<(u32, usize)>,
}

impl HashTab {
    fn next_round(&mut self) {
        if self.slots.is_empty() {
            self.slots = vec![(0, 0); 1 << HLOG];
        }
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            self.slots.iter_mut().for_each(|s| *s = (0, 0));
            self.round = 1;
        }
    }

    fn get(&self, slot: usize) -> Option<usize> {
        let (round, pos) = self.slots[slot];
        (round == self.round).then_some(pos)
    }

    fn set(&mut self, slot: usize, pos: usize) {
        self.slots[slot] = (self.round, pos);
    }
}

thread_local! {
    static HTAB: std::cell::RefCell<HashTab> =
        const { std::cell::RefCell::new(HashTab { round: 0, slots: Vec::new() }) };
}

/// The compression loop of [`lzf_compress`] into `out` (at least `out_len` + 4 bytes).
fn lzf_run(input: &[u8], out: &mut Vec<u8>, out_len: usize, htab: &mut HashTab) -> Option<Vec<u8>> {
    let in_len = input.len();
    let (mut ip, mut op, mut lit) = (0usize, 1usize, 0usize);
    let at = |i: usize| u32::from(input[i]);
    let mut hval = (at(0) << 8) | at(1);
    while ip + 2 < in_len {
        hval = (hval << 8) | at(ip + 2);
        let slot = lzf_idx(hval);
        let r = htab.get(slot).unwrap_or(0);
        htab.set(slot, ip);
        let matched = r > 0
            && r < ip
            && ip - r - 1 < MAX_OFF
            && input[r + 2] == input[ip + 2]
            && input[r..r + 2] == input[ip..ip + 2];
        if !matched {
            if op >= out_len {
                return None;
            }
            lzf_literal(out, &mut op, &mut lit, input[ip]);
            ip += 1;
            continue;
        }
        let off = ip - r - 1;
        let maxlen = (in_len - ip - 2).min(MAX_REF);
        if op + 4 >= out_len && op - usize::from(lit == 0) + 4 >= out_len {
            return None;
        }
        out[op - lit - 1] = (lit as u8).wrapping_sub(1);
        op -= usize::from(lit == 0);
        let len = lzf_match_len(input, r, ip, maxlen) - 2;
        ip += 1;
        if len < 7 {
            out[op] = ((off >> 8) + (len << 5)) as u8;
            op += 1;
        } else {
            out[op] = ((off >> 8) + (7 << 5)) as u8;
            out[op + 1] = (len - 7) as u8;
            op += 2;
        }
        out[op] = off as u8;
        op += 2;
        lit = 0;
        ip += len + 1;
        if ip + 2 >= in_len {
            break;
        }
        // Hash the two positions before the new one, as the "very fast" variant does.
        ip -= 2;
        hval = (at(ip) << 8) | at(ip + 1);
        for _ in 0..2 {
            hval = (hval << 8) | at(ip + 2);
            htab.set(lzf_idx(hval), ip);
            ip += 1;
        }
    }
    if op + 3 > out_len {
        return None;
    }
    while ip < in_len {
        lzf_literal(out, &mut op, &mut lit, input[ip]);
        ip += 1;
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    op -= usize::from(lit == 0);
    if op > out_len + 1 {
        return None;
    }
    out.truncate(op);
    Some(std::mem::take(out))
}

/// Appends one literal byte to the run being written, closing the run (its length byte sits
/// before it) once it reaches LZF's longest literal run and opening the next.
fn lzf_literal(out: &mut [u8], op: &mut usize, lit: &mut usize, byte: u8) {
    *lit += 1;
    out[*op] = byte;
    *op += 1;
    if *lit == MAX_LIT {
        out[*op - *lit - 1] = (*lit - 1) as u8;
        *lit = 0;
        *op += 1;
    }
}

/// Length of the match between `input[r..]` and `input[ip..]` (its first 3 bytes known equal)
/// as liblzf measures it: 16 bytes checked one by one when more than 16 may follow, then up
/// to `maxlen`.
fn lzf_match_len(input: &[u8], r: usize, ip: usize, maxlen: usize) -> usize {
    let mut len = 2;
    if maxlen > 16 {
        for _ in 0..16 {
            len += 1;
            if input[r + len] != input[ip + len] {
                return len;
            }
        }
    }
    loop {
        len += 1;
        if !(len < maxlen && input[r + len] == input[ip + len]) {
            return len;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// listpacks and intsets

/// The integer a listpack stores for `s` (Redis's `lpStringToInt64`): a canonical decimal
/// i64 of at most 20 bytes ("0", no sign on 0, no leading zeros, no `+`).
pub fn lp_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > 1 << 63 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// A listpack being built, entry by entry, with Redis's entry encodings.
pub struct Listpack {
    buf: Vec<u8>,
    n: usize,
}

impl Default for Listpack {
    fn default() -> Self {
        Listpack {
            buf: vec![0; 6],
            n: 0,
        }
    }
}

impl Listpack {
    /// Size Redis's `lpBytes` gives the listpack once finished (header, entries, end byte).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Appends an element as Redis's `lpAppend`: as an integer when it is one.
    pub fn push(&mut self, s: &[u8]) {
        match lp_int(s) {
            Some(v) => self.push_int(v),
            None => {
                let start = self.buf.len();
                let n = s.len();
                if n < 64 {
                    self.buf.push(0x80 | n as u8);
                } else if n < 4096 {
                    self.buf.push(0xe0 | (n >> 8) as u8);
                    self.buf.push(n as u8);
                } else {
                    self.buf.push(0xf0);
                    self.buf.extend_from_slice(&(n as u32).to_le_bytes());
                }
                self.buf.extend_from_slice(s);
                self.end_entry(start);
            }
        }
    }

    /// Appends an integer element in the smallest of Redis's integer encodings.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        let b = &mut self.buf;
        if (0..=127).contains(&v) {
            b.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 { (1 << 13) + v } else { v } as u16;
            b.push(0xc0 | (u >> 8) as u8);
            b.push(u as u8);
        } else if let Ok(h) = i16::try_from(v) {
            b.push(0xf1);
            b.extend_from_slice(&h.to_le_bytes());
        } else if (-8_388_608..=8_388_607).contains(&v) {
            b.push(0xf2);
            b.extend_from_slice(&v.to_le_bytes()[..3]);
        } else if let Ok(w) = i32::try_from(v) {
            b.push(0xf3);
            b.extend_from_slice(&w.to_le_bytes());
        } else {
            b.push(0xf4);
            b.extend_from_slice(&v.to_le_bytes());
        }
        self.end_entry(start);
    }

    /// Writes the back length of the entry that starts at `start` and counts it.
    fn end_entry(&mut self, start: usize) {
        let l = (self.buf.len() - start) as u64;
        let b = &mut self.buf;
        if l <= 127 {
            b.push(l as u8);
        } else if l < 16383 {
            b.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]);
        } else if l < 2_097_151 {
            b.extend_from_slice(&[(l >> 14) as u8, ((l >> 7) & 127) as u8 | 128]);
            b.push((l & 127) as u8 | 128);
        } else if l < 268_435_455 {
            b.extend_from_slice(&[(l >> 21) as u8, ((l >> 14) & 127) as u8 | 128]);
            b.extend_from_slice(&[((l >> 7) & 127) as u8 | 128, (l & 127) as u8 | 128]);
        } else {
            b.extend_from_slice(&[(l >> 28) as u8, ((l >> 21) & 127) as u8 | 128]);
            b.extend_from_slice(&[((l >> 14) & 127) as u8 | 128, ((l >> 7) & 127) as u8 | 128]);
            b.push((l & 127) as u8 | 128);
        }
        self.n += 1;
    }

    /// The finished blob: total bytes (u32), element count (u16, 65535 = too many to say),
    /// the entries and the end byte.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let n = self.n.min(65535) as u16;
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

/// Redis's intset of the ascending `members`: width (2, 4 or 8 bytes, the smallest holding
/// them all), count, then each member little-endian.
fn intset(members: &[i64]) -> Vec<u8> {
    let fits = |w: u32| {
        members
            .iter()
            .all(|&v| v >= -(1 << (w * 8 - 1)) && v < 1 << (w * 8 - 1))
    };
    let width: usize = if fits(2) {
        2
    } else if fits(4) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + members.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for v in members {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// collections

/// A list as `LIST_QUICKLIST_2`: the node count, then each node's container (1 plain, 2
/// packed) and blob. Our chunks do not match Redis's nodes, so the elements are cut into
/// nodes as Redis's `quicklistPushTail` would cut them under `fill`; plain chunks stay plain.
fn list(out: &mut Vec<u8>, l: &ListValue, o: Options) {
    let mut nodes: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut cur: Option<(Listpack, usize)> = None;
    let mut items = l.iter();
    let flush = |cur: &mut Option<(Listpack, usize)>, nodes: &mut Vec<(u64, Vec<u8>)>| {
        if let Some((lp, _)) = cur.take() {
            nodes.push((2, lp.finish()));
        }
    };
    for chunk in l.raw_chunks() {
        for _ in 0..chunk.count {
            let Some(e) = items.next() else { break };
            if chunk.plain {
                flush(&mut cur, &mut nodes);
                nodes.push((1, e.into_owned()));
                continue;
            }
            if !cur
                .as_ref()
                .is_some_and(|(lp, n)| node_allows(lp.bytes(), *n, e.len(), o))
            {
                flush(&mut cur, &mut nodes);
                cur = Some((Listpack::default(), 0));
            }
            if let Some((lp, n)) = cur.as_mut() {
                lp.push(&e);
                *n += 1;
            }
        }
    }
    flush(&mut cur, &mut nodes);
    put_len(out, nodes.len() as u64);
    for (container, blob) in &nodes {
        put_len(out, *container);
        raw_string(out, blob, o.compress);
    }
}

/// Redis's `_quicklistNodeAllowInsert` for a packed node of `sz` bytes and `count` elements
/// taking one of `len` bytes.
fn node_allows(sz: usize, count: usize, len: usize, o: Options) -> bool {
    const LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
    let new_sz = sz + len + 8;
    if o.list_fill < 0 {
        let level = usize::try_from(-o.list_fill - 1)
            .ok()
            .and_then(|i| LEVELS.get(i));
        if level.is_some_and(|&lim| new_sz <= lim) {
            return true;
        }
    }
    new_sz <= 8192 && i64::try_from(count).is_ok_and(|c| c < o.list_fill)
}

/// Whether a hash is written as `HASH_LISTPACK` (it is in our packed form).
fn hash_packed(h: &HashValue) -> bool {
    h.packed_parts().is_some()
}

/// A hash: `HASH_LISTPACK` (field, value, ... in our packed order, which is Redis's) or
/// `HASH` (count, then fields and values).
fn hash(out: &mut Vec<u8>, h: &HashValue, compress: bool) {
    if hash_packed(h) {
        let mut lp = Listpack::default();
        h.for_each(|f, v| {
            lp.push(f);
            lp.push(v);
        });
        raw_string(out, &lp.finish(), compress);
    } else {
        put_len(out, h.len() as u64);
        h.for_each(|f, v| {
            raw_string(out, f, compress);
            raw_string(out, v, compress);
        });
    }
}

/// A set: `SET_INTSET` (Redis's intset blob) or `SET` (count, then members).
fn set(out: &mut Vec<u8>, s: &SetValue, compress: bool) {
    use crate::keyspace::set::Member;
    if let SetValue::Ints(_) = s {
        let ints: Vec<i64> = s
            .iter()
            .filter_map(|m| match m {
                Member::Int(v) => Some(v),
                Member::Bytes(_) => None,
            })
            .collect();
        raw_string(out, &intset(&ints), compress);
        return;
    }
    put_len(out, s.len() as u64);
    for m in s.iter() {
        m.with_bytes(|b| raw_string(out, b, compress));
    }
}

/// A sorted set: `ZSET_LISTPACK` (member, score as Redis's `d2string` text, ascending) or
/// `ZSET_2` (count, then member and binary score from the greatest to the smallest, Redis's
/// order, which makes loading cheap).
fn zset(out: &mut Vec<u8>, z: &ZSetValue, compress: bool) {
    let n = z.len();
    if let ZSetValue::Pack(_) = z {
        let mut lp = Listpack::default();
        z.for_range(0, n, false, |m, s| {
            lp.push(m);
            lp.push(d2string(s).as_bytes());
        });
        raw_string(out, &lp.finish(), compress);
        return;
    }
    put_len(out, n as u64);
    z.for_range(0, n, true, |m, s| {
        raw_string(out, m, compress);
        out.extend_from_slice(&s.to_le_bytes());
    });
}

/// A score as text, as Redis's `d2string`: integers exactly (within ±2^62), `-0`, `inf`,
/// `-inf`, `nan`, anything else as `%.17g`.
fn d2string(d: f64) -> String {
    const LIM: f64 = 4_611_686_018_427_387_904.0; // (LLONG_MAX / 2) as a double
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d < 0.0 { "-inf" } else { "inf" }.into()
    } else if d == 0.0 {
        if d.is_sign_negative() { "-0" } else { "0" }.into()
    } else if (-LIM..=LIM).contains(&d) && (d as i64) as f64 == d {
        (d as i64).to_string()
    } else {
        crate::util::num::fmt_double_17g(d)
    }
}

// ---------------------------------------------------------------------------------------------
// streams

/// Flags of an entry in a stream listpack.
const ENTRY_DELETED: i64 = 1;
const ENTRY_SAMEFIELDS: i64 = 2;

/// A stream as `STREAM_LISTPACKS_2` (what Redis 7.0 writes).
fn stream(out: &mut Vec<u8>, s: &StreamValue, compress: bool) {
    put_len(out, s.node_count() as u64);
    for node in s.nodes() {
        let Some(first) = node.items().first() else {
            continue;
        };
        raw_string(out, &first.id.to_be(), compress);
        raw_string(out, &stream_node(node), compress);
    }
    put_len(out, s.len());
    for id in [s.last_id, s.first_id, s.max_deleted_id] {
        put_len(out, id.ms);
        put_len(out, id.seq);
    }
    put_len(out, s.entries_added);
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        raw_string(out, name, compress);
        stream_group(out, g, compress);
    }
}

/// A group: last ID, read counter, the PEL (raw big-endian IDs, delivery time and count),
/// then each consumer (name, seen time, its pending IDs).
fn stream_group(out: &mut Vec<u8>, g: &Group, compress: bool) {
    put_len(out, g.last_id.ms);
    put_len(out, g.last_id.seq);
    put_len(out, g.entries_read as u64);
    put_len(out, g.pel.len() as u64);
    for (id, nack) in &g.pel {
        out.extend_from_slice(&id.to_be());
        out.extend_from_slice(&nack.delivery_time.to_le_bytes());
        put_len(out, nack.delivery_count);
    }
    put_len(out, g.consumers.len() as u64);
    for (name, c) in &g.consumers {
        raw_string(out, name, compress);
        out.extend_from_slice(&c.seen_time.to_le_bytes());
        put_len(out, c.pel.len() as u64);
        for id in &c.pel {
            out.extend_from_slice(&id.to_be());
        }
    }
}

/// The listpack of one stream node as Redis builds it: the master entry (live count, deleted
/// count, the first entry's field names, 0), then each entry (flags, ID deltas from the
/// master, the values alone when the fields are the master's, else the field count and the
/// pairs, then the entry's element count).
fn stream_node(node: &Node) -> Vec<u8> {
    let items = node.items();
    let master = items.first().map(|i| i.id).unwrap_or_default();
    let master_fields: Vec<&[u8]> = items
        .first()
        .map(|i| i.fields.iter().step_by(2).map(|f| &**f).collect())
        .unwrap_or_default();
    let live = items.iter().filter(|i| !i.deleted).count();
    let mut lp = Listpack::default();
    lp.push_int(live as i64);
    lp.push_int((items.len() - live) as i64);
    lp.push_int(master_fields.len() as i64);
    master_fields.iter().for_each(|f| lp.push(f));
    lp.push_int(0);
    for it in items {
        let same = it.fields.len() == 2 * master_fields.len()
            && it
                .fields
                .iter()
                .step_by(2)
                .zip(&master_fields)
                .all(|(a, b)| **a == **b);
        let flags =
            if it.deleted { ENTRY_DELETED } else { 0 } | if same { ENTRY_SAMEFIELDS } else { 0 };
        lp.push_int(flags);
        lp.push_int(it.id.ms.wrapping_sub(master.ms) as i64);
        lp.push_int(it.id.seq.wrapping_sub(master.seq) as i64);
        let npairs = it.fields.len() / 2;
        if same {
            it.fields.iter().skip(1).step_by(2).for_each(|v| lp.push(v));
            lp.push_int(npairs as i64 + 3);
        } else {
            lp.push_int(npairs as i64);
            it.fields.iter().for_each(|f| lp.push(f));
            lp.push_int(2 * npairs as i64 + 4);
        }
    }
    lp.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lp_int_follows_lp_string_to_int64() {
        assert_eq!(lp_int(b"0"), Some(0));
        assert_eq!(lp_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(lp_int(b"9223372036854775808"), None);
        for bad in [
            &b""[..],
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1a",
            b"-",
            b"123456789012345678901",
        ] {
            assert_eq!(lp_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lengths_and_strings() {
        let mut out = Vec::new();
        for n in [5u64, 300, 70_000, 1 << 33] {
            put_len(&mut out, n);
        }
        assert_eq!(
            out,
            b"\x05\x41\x2c\x80\x00\x01\x11\x70\x81\x00\x00\x00\x02\x00\x00\x00\x00"
        );
        let s = |b: &[u8]| {
            let mut out = Vec::new();
            raw_string(&mut out, b, true);
            out
        };
        assert_eq!(s(b"12345"), b"\xc1\x39\x30");
        assert_eq!(s(b"-1"), b"\xc0\xff");
        assert_eq!(s(b"2147483648"), b"\x0a2147483648");
        assert_eq!(s(b"bar"), b"\x03bar");
        // 30 bytes of 'a' compress (redis-server's bytes: no reference to offset 0).
        assert_eq!(s(&[b'a'; 30]), b"\xc3\x09\x1e\x01aa\xe0\x11\x00\x01aa");
        let mut out = Vec::new();
        string_object(&mut out, &RString::Int(1 << 40), true);
        assert_eq!(out, b"\x0d1099511627776");
    }

    #[test]
    fn lzf_round_trips() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        for _ in 0..2000 {
            let len = rng.gen_range(3..3000);
            let alphabet = rng.gen_range(1..=255u8);
            let input: Vec<u8> = (0..len).map(|_| rng.gen_range(0..=alphabet)).collect();
            let out_len = rng.gen_range(1..len + 40);
            if let Some(c) = lzf_compress(&input, out_len) {
                assert!(c.len() <= out_len + 1);
                assert_eq!(super::super::rdb::lzf_decompress(&c, len).unwrap(), input);
            }
        }
    }

    #[test]
    fn listpack_entries_match_redis() {
        let mut lp = Listpack::default();
        for e in [
            &b"a"[..],
            b"1.5",
            b"b",
            b"2",
            b"-1",
            b"300",
            b"-40000",
            b"5000000",
            b"x",
        ] {
            lp.push(e);
        }
        let want: &[u8] = b"\x81a\x02\x831.5\x04\x81b\x02\x02\x01\xdf\xff\x02\xc1\x2c\x02\
            \xf2\xc0\x63\xff\x04\xf2\x40\x4b\x4c\x04\x81x\x02\xff";
        let got = lp.finish();
        assert_eq!(&got[6..], want);
        assert_eq!(
            u32::from_le_bytes(got[..4].try_into().unwrap()) as usize,
            got.len()
        );
        assert_eq!(u16::from_le_bytes([got[4], got[5]]), 9);
    }

    #[test]
    fn scores_as_d2string() {
        assert_eq!(d2string(1.5), "1.5");
        assert_eq!(d2string(2.0), "2");
        assert_eq!(d2string(-0.0), "-0");
        assert_eq!(d2string(0.1), "0.10000000000000001");
        assert_eq!(d2string(f64::NEG_INFINITY), "-inf");
        assert_eq!(d2string(1e300), "1.0000000000000001e+300");
    }

    /// A stream DUMPed by redis-server 7.0 (two nodes, a deleted entry, a group whose consumer
    /// `alice` holds a claimed entry and whose consumer `bob` holds nothing: the payload of
    /// `rdb.rs`'s stream test) is written back byte for byte.
    #[test]
    fn streams_dump_like_redis() {
        let bytes = super::super::rdb::tests::redis_stream_payload();
        let lim = super::super::codec::EncodingLimits::default();
        let v = super::super::rdb::dump_object(&bytes[..bytes.len() - 10], &lim).unwrap();
        let o = Options {
            compress: true,
            list_fill: -2,
        };
        assert_eq!(dump_payload(&v, o), bytes);
    }

    #[test]
    fn intsets_take_the_narrowest_width() {
        assert_eq!(intset(&[-3, 7]), b"\x02\0\0\0\x02\0\0\0\xfd\xff\x07\0");
        assert_eq!(&intset(&[1, 40_000])[..4], b"\x04\0\0\0");
        assert_eq!(&intset(&[i64::MIN])[..4], b"\x08\0\0\0");
        assert_eq!(intset(&[-32768, 32767]).len(), 12);
    }

    #[test]
    fn function_payloads_read_back() {
        let codes = [&b"#!lua name=a\nreturn 1"[..], b"#!lua name=b\nreturn 2"];
        let p = functions_payload(codes, true);
        assert_eq!(p[0], op::FUNCTION2);
        let records = super::super::rdb::function_records(&p[..p.len() - 10]).unwrap();
        assert_eq!(records, codes);
        assert_eq!(crc64(&p[..p.len() - 8]).to_le_bytes(), p[p.len() - 8..]);
        let e = super::super::rdb::function_records(b"\x00\x01a").unwrap_err();
        assert_eq!(e, "given type is not a function");
        let e = super::super::rdb::function_records(b"\xf5\x05ab").unwrap_err();
        assert_eq!(e, "Failed loading library payload");
    }
}
