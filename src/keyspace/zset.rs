//! The sorted set value: members ordered by (score, member), in one of Redis's two encodings.
//!
//! * `listpack`: one contiguous byte buffer of entries sorted by (score, member). Each entry is
//!   `varint(len) member score`, where the score is `varint(zigzag(n) << 1)` for small integral
//!   values and `0x01` followed by the 8 bytes of the double otherwise. Every operation is a
//!   linear walk, which is cheap at the sizes this encoding is kept for
//!   (`zset-max-listpack-entries` / `zset-max-listpack-value`).
//! * `skiplist` (Redis's name, kept for OBJECT ENCODING): an order-statistics B+tree (see
//!   [`tree`]: entries in sorted arrays of up to 32, subtree counts so that rank queries are
//!   O(log n)), plus a member -> score [`Table`], which also gives ZSCAN its cursor and
//!   ZRANDMEMBER its O(1) sampling.
//!
//! Range queries are expressed as *rank* ranges: [`ZSetValue::count_before`] counts the
//! members for which a monotone predicate holds (a prefix of the order), so a score or lex
//! bound becomes a rank, and [`ZSetValue::for_range`] walks a rank range either way.

use std::cmp::Ordering;
use std::fmt;

use rand::Rng;

use super::Table;
use tree::Tree;

mod tree;

/// Encoding thresholds (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

/// A sorted set value.
pub enum ZSetValue {
    /// Boxed so that a [`Value`](super::Value) stays 24 bytes.
    Pack(Box<Pack>),
    Skip(Box<SkipSet>),
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue::Pack(Box::default())
    }
}

/// Orders `(s1, m1)` against `(s2, m2)` like Redis's skiplist: by score, then member bytes.
#[inline]
pub fn cmp_entry(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    match s1.partial_cmp(&s2) {
        Some(Ordering::Equal) | None => m1.cmp(m2),
        Some(o) => o,
    }
}

impl ZSetValue {
    /// An empty set in the encoding Redis's ZADD picks for a new key whose first member is
    /// `first_len` bytes long.
    pub fn new_for(first_len: usize, lim: Limits) -> ZSetValue {
        if lim.max_entries == 0 || first_len > lim.max_value {
            ZSetValue::Skip(Box::default())
        } else {
            ZSetValue::default()
        }
    }

    /// An empty set for a result of `len` members (ZRANGESTORE's rule).
    pub fn for_len(len: usize, lim: Limits) -> ZSetValue {
        if len > lim.max_entries {
            ZSetValue::Skip(Box::default())
        } else {
            ZSetValue::default()
        }
    }

    /// A `listpack` set of `entries` given in ascending (score, member) order, with no
    /// per-entry search (snapshot loading). The caller guarantees the order, distinct members
    /// and the listpack limits; `capacity` is a hint of the bytes needed (an overestimate is
    /// trimmed).
    pub fn packed_from_sorted<'a>(
        entries: impl IntoIterator<Item = (&'a [u8], f64)>,
        capacity: usize,
    ) -> Self {
        let mut b = PackBuilder::default();
        b.pack.buf.reserve_exact(capacity.min(1 << 30));
        for (m, s) in entries {
            b.push(m, s);
        }
        b.pack.buf.shrink_to_fit();
        ZSetValue::Pack(Box::new(b.pack))
    }

    /// The `listpack` buffer and its entry count, for a snapshot to store verbatim; `None` for
    /// a `skiplist`.
    pub fn packed_parts(&self) -> Option<(&[u8], usize)> {
        match self {
            ZSetValue::Pack(p) => Some((&p.buf, p.len as usize)),
            ZSetValue::Skip(_) => None,
        }
    }

    /// Adopts a `listpack` buffer of `n` entries read from a snapshot (one allocation and a
    /// copy), after checking it: `None` unless it is well formed, strictly ascending by
    /// (score, member), with no NaN score and `n` distinct members. A set beyond `lim` is
    /// converted to `skiplist`, as Redis does on load.
    pub fn from_packed(buf: &[u8], n: usize, lim: Limits) -> Option<ZSetValue> {
        let longest = check_pack(buf, n)?;
        let len = u32::try_from(n).ok()?;
        let pack = Pack {
            buf: buf.to_vec(),
            len,
        };
        let mut z = ZSetValue::Pack(Box::new(pack));
        if n > lim.max_entries || longest > lim.max_value {
            z.convert_to_skiplist();
        }
        Some(z)
    }

    /// Name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            ZSetValue::Pack(_) => "listpack",
            ZSetValue::Skip(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZSetValue::Pack(p) => p.len as usize,
            ZSetValue::Skip(s) => s.list.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feeds the content into a digest (DEBUG DIGEST), in order: member then score as text.
    pub fn digest_into(&self, h: &mut sha1_smol::Sha1) {
        self.for_range(0, self.len(), false, |m, s| {
            h.update(m);
            h.update(crate::util::num::fmt_double_17g(s).as_bytes());
        });
    }

    /// Heap bytes used (MEMORY USAGE): the packed buffer, or for the skiplist form each node
    /// (member, links) plus the member's copy and slot in the lookup table.
    pub fn heap_size(&self) -> usize {
        match self {
            ZSetValue::Pack(p) => p.buf.capacity(),
            ZSetValue::Skip(s) => {
                let map_slot = std::mem::size_of::<(u32, Box<[u8]>, f64)>() + 3;
                let map: usize = s.map.iter().map(|(k, _)| k.len() + map_slot).sum();
                std::mem::size_of::<SkipSet>() + s.list.heap_size() + map
            }
        }
    }

    /// Bytes this value would take serialized (DEBUG OBJECT's serializedlength): an
    /// estimate from the members and their printed scores.
    pub fn serialized_len(&self) -> usize {
        let mut n = 0;
        self.for_range(0, self.len(), false, |m, s| {
            n += m.len() + crate::util::num::fmt_double_17g(s).len() + 2;
        });
        n + 2
    }

    /// Score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Pack(p) => p.find(member).map(|(_, s)| s),
            ZSetValue::Skip(s) => s.map.get(member).copied(),
        }
    }

    /// Inserts a member known to be absent, converting to `skiplist` first when the listpack
    /// would outgrow `lim`.
    pub fn insert_new(&mut self, member: &[u8], score: f64, lim: Limits) {
        if let ZSetValue::Pack(p) = self {
            if p.len as usize + 1 > lim.max_entries || member.len() > lim.max_value {
                self.convert_to_skiplist();
            }
        }
        match self {
            ZSetValue::Pack(p) => p.insert(member, score),
            ZSetValue::Skip(s) => s.insert(member, score),
        }
    }

    /// Changes the score of an existing member from `old` to `new`.
    pub fn update(&mut self, member: &[u8], old: f64, new: f64) {
        match self {
            ZSetValue::Pack(p) => {
                if p.remove(member).is_some() {
                    p.insert(member, new);
                }
            }
            ZSetValue::Skip(s) => {
                s.list.delete(old, member);
                s.list.insert(new, member);
                if let Some(v) = s.map.get_mut(member) {
                    *v = new;
                }
            }
        }
    }

    /// Looks `member` up once and lets `decide` pick its new score from the current one
    /// (`None`: absent); `decide` returning `None` leaves the set as it is. Inserting converts
    /// to `skiplist` when the listpack would outgrow `lim`. ZADD's path: one member lookup
    /// instead of [`score`](Self::score) followed by [`update`](Self::update).
    pub fn upsert(
        &mut self,
        member: &[u8],
        lim: Limits,
        decide: impl FnOnce(Option<f64>) -> Option<f64>,
    ) {
        let ZSetValue::Skip(s) = self else {
            let cur = self.score(member);
            match (cur, decide(cur)) {
                (Some(old), Some(new)) => self.update(member, old, new),
                (None, Some(new)) => self.insert_new(member, new, lim),
                (_, None) => {}
            }
            return;
        };
        let SkipSet { list, map } = &mut **s;
        match map.get_mut(member) {
            Some(v) => {
                if let Some(new) = decide(Some(*v)) {
                    list.delete(*v, member);
                    list.insert(new, member);
                    *v = new;
                }
            }
            None => {
                if let Some(new) = decide(None) {
                    s.insert(member, new);
                }
            }
        }
    }

    /// Removes `member`; returns its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Pack(p) => p.remove(member),
            ZSetValue::Skip(s) => {
                let score = s.map.remove(member)?;
                s.list.delete(score, member);
                Some(score)
            }
        }
    }

    /// Number of leading members (in ascending order) for which `before(score, member)` holds.
    /// `before` must hold for a prefix of the order and fail for the rest.
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSetValue::Pack(p) => p.count_while(before),
            ZSetValue::Skip(s) => s.list.count_before(before),
        }
    }

    /// 0-based ascending rank and score of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        let score = self.score(member)?;
        let r = self.count_before(|s, m| cmp_entry(s, m, score, member) == Ordering::Less);
        Some((r, score))
    }

    /// Calls `f` for the members of ascending ranks `lo..hi`, in ascending order or, with
    /// `rev`, descending. Ranks past the end are ignored.
    pub fn for_range(&self, lo: usize, hi: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        let hi = hi.min(self.len());
        if lo >= hi {
            return;
        }
        match self {
            ZSetValue::Pack(p) if rev => {
                // Entries only decode forwards: collect the range, then replay it backwards.
                let mut items = Vec::with_capacity(hi - lo);
                let mut i = 0;
                p.each(|m, s| {
                    if i >= lo {
                        items.push((m.to_vec(), s));
                    }
                    i += 1;
                    i < hi
                });
                items.iter().rev().for_each(|(m, s)| f(m, *s));
            }
            ZSetValue::Pack(p) => {
                let mut i = 0;
                p.each(|m, s| {
                    if i >= lo {
                        f(m, s);
                    }
                    i += 1;
                    i < hi
                });
            }
            ZSetValue::Skip(s) => s.list.for_range(lo, hi, rev, f),
        }
    }

    /// Removes the members of ascending ranks `lo..hi`; returns how many were removed.
    pub fn remove_range(&mut self, lo: usize, hi: usize) -> usize {
        let hi = hi.min(self.len());
        if lo >= hi {
            return 0;
        }
        match self {
            ZSetValue::Pack(p) => {
                p.remove_ranks(lo, hi);
                p.buf.shrink_to_fit();
            }
            ZSetValue::Skip(s) => {
                let mut victims = Vec::with_capacity(hi - lo);
                s.list
                    .for_range(lo, hi, false, |m, sc| victims.push((m.to_vec(), sc)));
                for (m, sc) in victims {
                    s.map.remove(&m);
                    s.list.delete(sc, &m);
                }
            }
        }
        hi - lo
    }

    /// The member at ascending rank `r`.
    pub fn at(&self, r: usize) -> Option<(Vec<u8>, f64)> {
        let mut out = None;
        self.for_range(r, r + 1, false, |m, s| out = Some((m.to_vec(), s)));
        out
    }

    /// A uniformly random member.
    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<(Vec<u8>, f64)> {
        match self {
            ZSetValue::Pack(p) if p.len > 0 => self.at(rng.gen_range(0..p.len as usize)),
            ZSetValue::Pack(_) => None,
            ZSetValue::Skip(s) => s.map.random_entry(rng).map(|(k, v)| (k.to_vec(), *v)),
        }
    }

    /// Visits members for ZSCAN: a listpack returns everything and cursor 0, a skiplist walks
    /// its member table from `cursor`.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match self {
            ZSetValue::Pack(p) => {
                p.each(|m, s| {
                    f(m, s);
                    true
                });
                0
            }
            ZSetValue::Skip(s) => s.map.scan(cursor, count, |k, v| f(k, *v)),
        }
    }

    /// Converts a `skiplist` back to `listpack` when it fits `lim` (results of the STORE
    /// commands, like Redis's `zsetConvertToListpackIfNeeded`).
    pub fn compact_if_fits(&mut self, lim: Limits) {
        if let ZSetValue::Skip(s) = self {
            let mut max = 0;
            s.list
                .for_range(0, s.list.len(), false, |m, _| max = max.max(m.len()));
            if s.list.len() <= lim.max_entries && max <= lim.max_value {
                let mut b = PackBuilder::default();
                s.list
                    .for_range(0, s.list.len(), false, |m, sc| b.push(m, sc));
                *self = ZSetValue::Pack(Box::new(b.pack));
            }
        }
    }

    fn convert_to_skiplist(&mut self) {
        if let ZSetValue::Pack(p) = self {
            let mut s = SkipSet::default();
            p.each(|m, sc| {
                s.insert(m, sc);
                true
            });
            *self = ZSetValue::Skip(Box::new(s));
        }
    }
}

impl Clone for ZSetValue {
    fn clone(&self) -> Self {
        match self {
            ZSetValue::Pack(p) => ZSetValue::Pack(p.clone()),
            ZSetValue::Skip(s) => {
                let mut n = SkipSet::default();
                s.list
                    .for_range(0, s.list.len(), false, |m, sc| n.insert(m, sc));
                ZSetValue::Skip(Box::new(n))
            }
        }
    }
}

impl PartialEq for ZSetValue {
    fn eq(&self, other: &Self) -> bool {
        if self.len() != other.len() {
            return false;
        }
        let mut a = Vec::new();
        self.for_range(0, self.len(), false, |m, s| {
            a.push((m.to_vec(), s.to_bits()))
        });
        let mut i = 0;
        let mut same = true;
        other.for_range(0, other.len(), false, |m, s| {
            same &= a
                .get(i)
                .is_some_and(|(am, asc)| am == m && *asc == s.to_bits());
            i += 1;
        });
        same
    }
}

impl fmt::Debug for ZSetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZSetValue({}, {} members)", self.encoding(), self.len())
    }
}

// ---------------------------------------------------------------------------------------------
// listpack

/// The compact encoding: entries sorted by (score, member) in one buffer.
///
/// An entry is `varint(suffix_len << 1 | shared_flag) [varint(shared)] suffix score`: a member
/// that shares a prefix of two or more bytes with the previous member stores only the rest (front
/// coding, as in sorted-string tables). Neighbours in a sorted set often share a prefix
/// (`member:17`, `member:18`, ids, timestamps), so they cost a few bytes each, where a listpack
/// stores every member whole. Entries are read front to back, rebuilding each member from the
/// previous one (see [`Cursor`]); an edit re-encodes the entry after it against its new
/// predecessor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pack {
    buf: Vec<u8>,
    len: u32,
}

/// Largest magnitude stored as an integer score (exact in a double, and the zigzag shifted by
/// one still fits a u64).
const INT_SCORE_MAX: f64 = 4_503_599_627_370_496.0; // 2^52

use super::varint::{get as get_varint, put as put_varint};

/// Exact powers of ten for decimal scores (index = number of decimals).
const POW10: [f64; 5] = [1.0, 10.0, 100.0, 1_000.0, 10_000.0];

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(zz: u64) -> i64 {
    ((zz >> 1) as i64) ^ -((zz & 1) as i64)
}

/// `score` as `m / 10^d` with 1 <= d <= 4, if that division gives back exactly the same double
/// (true of the nearest double to any short decimal such as 2.5 or 0.1).
fn as_decimal(score: f64) -> Option<(i64, usize)> {
    (1..POW10.len()).find_map(|d| {
        let m = (score * POW10[d]).round();
        (m.abs() < INT_SCORE_MAX && (m / POW10[d]).to_bits() == score.to_bits())
            .then_some((m as i64, d))
    })
}

/// Appends the encoded score (see [`Pack`]): a varint tag whose low bits pick the form: `..0` an
/// integer (zigzag, shifted left once); `..11` a short decimal `m / 10^d` (tag =
/// zigzag(m) << 4 | (d - 1) << 2 | 3), which Redis's listpack would store as a string such as
/// `25.5`; the single byte `1` a raw little-endian double that follows.
fn encode_score(out: &mut Vec<u8>, score: f64) {
    // -0 is stored as 0, as Redis's listpack keeps the score as the integer 0.
    if score.fract() == 0.0 && score.abs() < INT_SCORE_MAX {
        put_varint(out, zigzag(score as i64) << 1);
    } else if let Some((m, d)) = as_decimal(score) {
        put_varint(out, (zigzag(m) << 4) | ((d as u64 - 1) << 2) | 3);
    } else {
        out.push(1);
        out.extend_from_slice(&score.to_le_bytes());
    }
}

fn decode_score(buf: &[u8], pos: &mut usize) -> Option<f64> {
    let tag = get_varint(buf, pos);
    tagged_score(tag).or_else(|| {
        let bytes: [u8; 8] = buf.get(*pos..*pos + 8)?.try_into().ok()?;
        *pos += 8;
        Some(f64::from_le_bytes(bytes))
    })
}

/// The score a tag holds by itself (integer or short decimal); `None` if a raw double follows.
#[inline]
fn tagged_score(tag: u64) -> Option<f64> {
    if tag & 1 == 0 {
        Some(unzigzag(tag >> 1) as f64)
    } else if tag & 3 == 3 {
        let d = ((tag >> 2) & 3) as usize + 1;
        Some(unzigzag(tag >> 4) as f64 / POW10[d])
    } else {
        None
    }
}

/// Reads a score like [`decode_score`] from bytes of unknown origin: `None` if it is cut
/// short or NaN.
fn check_score(buf: &[u8], pos: &mut usize) -> Option<f64> {
    let tag = super::varint::get_checked(buf, pos)?;
    let score = match tagged_score(tag) {
        Some(s) => s,
        None => {
            let bytes: [u8; 8] = buf.get(*pos..pos.checked_add(8)?)?.try_into().ok()?;
            *pos += 8;
            f64::from_le_bytes(bytes)
        }
    };
    (!score.is_nan()).then_some(score)
}

/// Checks a pack of unknown origin: exactly `n` entries that fill it, every length inside it,
/// every shared prefix no longer than the member before, members adding up to at most
/// [`super::hash::expansion_budget`], scores not NaN, entries strictly ascending, members
/// distinct. Returns the longest member. Never panics, whatever the bytes.
fn check_pack(buf: &[u8], n: usize) -> Option<usize> {
    use super::varint::get_len;
    if n == 0 || n > buf.len() || buf.len() > 1 << 30 {
        return None;
    }
    let (mut pos, mut longest, mut expanded) = (0, 0, 0usize);
    let budget = super::hash::expansion_budget(buf.len());
    // The member being rebuilt. Each entry keeps the first `shared` bytes of the one before
    // and appends its suffix, so only suffixes are copied.
    let mut member = Vec::new();
    let mut prev_score = 0.0;
    let mut hashes = super::hash::Hashes::new();
    for i in 0..n {
        let h = get_len(buf, &mut pos)?;
        let shared = if h & 1 == 1 { get_len(buf, &mut pos)? } else { 0 };
        let end = pos.checked_add(h >> 1)?;
        let suffix = buf.get(pos..end)?;
        pos = end;
        let kept = member.get(shared..)?;
        let score = check_score(buf, &mut pos)?;
        if i > 0 {
            // The two members agree on their first `shared` bytes, so they compare as what
            // follows (scores are never NaN here).
            let order = match prev_score.partial_cmp(&score) {
                Some(Ordering::Equal) | None => kept.cmp(suffix),
                Some(o) => o,
            };
            if order != Ordering::Less {
                return None;
            }
            // The member before is hashed only now, an entry after its bytes were written
            // (see `hash::check_packed`).
            hashes.push(super::hash::field_hash(&member));
        }
        member.truncate(shared);
        member.extend_from_slice(suffix);
        longest = longest.max(member.len());
        expanded = expanded.saturating_add(member.len());
        if expanded > budget {
            return None;
        }
        prev_score = score;
    }
    hashes.push(super::hash::field_hash(&member));
    if pos != buf.len() {
        return None;
    }
    // Equal 64-bit hashes are most likely equal members, but compare them to be sure.
    let distinct = super::hash::distinct_hashes(&mut hashes) || {
        let mut all = Vec::with_capacity(n);
        let mut c = Cursor {
            buf,
            pos: 0,
            member: Vec::new(),
        };
        while c.next().is_some() {
            all.push(c.member.clone());
        }
        super::hash::distinct_sorted(all)
    };
    distinct.then_some(longest)
}

/// Shortest shared prefix worth front-coding (one byte would cost its own length varint).
const MIN_SHARED: usize = 2;

/// Appends an entry for `member`, front-coded against `prev` (the member before it, or empty).
fn encode_entry(out: &mut Vec<u8>, prev: &[u8], member: &[u8], score: f64) {
    let shared = prev.iter().zip(member).take_while(|(a, b)| a == b).count();
    let shared = if shared >= MIN_SHARED { shared } else { 0 };
    let suffix = &member[shared..];
    put_varint(out, ((suffix.len() as u64) << 1) | u64::from(shared > 0));
    if shared > 0 {
        put_varint(out, shared as u64);
    }
    out.extend_from_slice(suffix);
    encode_score(out, score);
}

/// Walks a pack in order, rebuilding each member into `member`.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    member: Vec<u8>,
}

impl Cursor<'_> {
    /// Decodes the next entry (its member into `self.member`); returns its byte span and
    /// score.
    fn next(&mut self) -> Option<(usize, usize, f64)> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let mut p = self.pos;
        let h = get_varint(self.buf, &mut p);
        let shared = if h & 1 == 1 {
            get_varint(self.buf, &mut p) as usize
        } else {
            0
        };
        let n = (h >> 1) as usize;
        let suffix = self.buf.get(p..p + n)?;
        p += n;
        self.member.truncate(shared);
        self.member.extend_from_slice(suffix);
        let score = decode_score(self.buf, &mut p)?;
        self.pos = p;
        Some((start, p, score))
    }
}

/// Where an edit applies: the whole entries in bytes `a..b`, the member before them, and the
/// entry right after them (its end, member and score), which must be re-encoded.
struct Span {
    a: usize,
    b: usize,
    prev: Vec<u8>,
    next: Option<(usize, Vec<u8>, f64)>,
}

impl Pack {
    fn cursor(&self) -> Cursor<'_> {
        Cursor {
            buf: &self.buf,
            pos: 0,
            member: Vec::new(),
        }
    }

    /// Calls `f(member, score)` for each entry in order while it returns true.
    fn each(&self, mut f: impl FnMut(&[u8], f64) -> bool) {
        let mut c = self.cursor();
        while let Some((_, _, s)) = c.next() {
            if !f(&c.member, s) {
                break;
            }
        }
    }

    /// Number of leading entries for which `pred(score, member)` holds.
    fn count_while(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let mut n = 0;
        self.each(|m, s| {
            let go = pred(s, m);
            n += usize::from(go);
            go
        });
        n
    }

    /// Rank and score of `member`.
    fn find(&self, member: &[u8]) -> Option<(usize, f64)> {
        let (mut i, mut found) = (0, None);
        self.each(|m, s| {
            if m == member {
                found = Some((i, s));
                return false;
            }
            i += 1;
            true
        });
        found
    }

    /// The span of the entries of ranks `lo..hi` (`lo == hi`: the insertion point `lo`).
    fn span(&self, lo: usize, hi: usize) -> Span {
        let mut c = self.cursor();
        let mut a = self.buf.len();
        let mut prev = Vec::new();
        let mut i = 0;
        loop {
            if i == lo {
                a = c.pos;
                prev.clone_from(&c.member);
            }
            if i == hi || c.next().is_none() {
                break;
            }
            i += 1;
        }
        let b = c.pos;
        let next = c.next().map(|(_, end, s)| (end, c.member, s));
        Span { a, b, prev, next }
    }

    /// Replaces the entries of `span` with `new` (sorted, and in order with the neighbours),
    /// re-encoding the entry after them.
    fn replace(&mut self, span: Span, new: &[(&[u8], f64)]) {
        let mut enc = Vec::new();
        let mut last: &[u8] = &span.prev;
        for &(m, s) in new {
            encode_entry(&mut enc, last, m, s);
            last = m;
        }
        let end = match &span.next {
            Some((end, m, s)) => {
                encode_entry(&mut enc, last, m, *s);
                *end
            }
            None => span.b,
        };
        // Grow to the exact size, as a listpack does: a small set then wastes no capacity.
        let removed = end - span.a;
        if enc.len() > removed {
            self.buf.reserve_exact(enc.len() - removed);
        }
        self.buf.splice(span.a..end, enc);
    }

    fn insert(&mut self, member: &[u8], score: f64) {
        let at = self.count_while(|s, m| cmp_entry(s, m, score, member) != Ordering::Greater);
        let span = self.span(at, at);
        self.replace(span, &[(member, score)]);
        self.len += 1;
    }

    /// Removes `member`; returns its score.
    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (i, s) = self.find(member)?;
        self.remove_ranks(i, i + 1);
        Some(s)
    }

    /// Removes the entries of ranks `lo..hi` (within the pack).
    fn remove_ranks(&mut self, lo: usize, hi: usize) {
        let span = self.span(lo, hi);
        self.replace(span, &[]);
        self.len -= (hi - lo) as u32;
    }
}

/// Builds a pack from entries in ascending order.
#[derive(Default)]
struct PackBuilder {
    pack: Pack,
    last: Vec<u8>,
}

impl PackBuilder {
    fn push(&mut self, member: &[u8], score: f64) {
        encode_entry(&mut self.pack.buf, &self.last, member, score);
        self.pack.len += 1;
        self.last.clear();
        self.last.extend_from_slice(member);
    }
}

// ---------------------------------------------------------------------------------------------
// skiplist

/// The large encoding (`skiplist` to OBJECT ENCODING, as in Redis): an order-statistics tree
/// for order and ranks (see [`tree`]) plus a member table for lookups.
#[derive(Default)]
pub struct SkipSet {
    list: Tree,
    map: Table<f64>,
}

impl SkipSet {
    fn insert(&mut self, member: &[u8], score: f64) {
        self.list.insert(score, member);
        self.map.insert(member, score);
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::SmallRng, SeedableRng};

    use super::*;

    const SMALL: Limits = Limits {
        max_entries: 128,
        max_value: 64,
    };
    const TINY: Limits = Limits {
        max_entries: 0,
        max_value: 64,
    };

    fn members(z: &ZSetValue, rev: bool) -> Vec<(Vec<u8>, f64)> {
        let mut v = Vec::new();
        z.for_range(0, z.len(), rev, |m, s| v.push((m.to_vec(), s)));
        v
    }

    #[test]
    fn front_coded_pack_survives_edits() {
        use rand::Rng;
        let mut rng = SmallRng::seed_from_u64(7);
        let mut z = ZSetValue::new_for(1, SMALL);
        let mut model: Vec<(Vec<u8>, f64)> = Vec::new();
        for _ in 0..3000 {
            let m = format!("member:{}", rng.gen_range(0..60)).into_bytes();
            let score = f64::from(rng.gen_range(0..8)) * 0.5;
            match rng.gen_range(0..4) {
                0 => {
                    let old = z.remove(&m);
                    let pos = model.iter().position(|(x, _)| *x == m);
                    assert_eq!(old, pos.map(|i| model.remove(i).1));
                }
                1 if model.len() > 3 => {
                    let lo = rng.gen_range(0..model.len() - 2);
                    assert_eq!(z.remove_range(lo, lo + 2), 2);
                    model.drain(lo..lo + 2);
                }
                _ => match z.score(&m) {
                    Some(old) => {
                        z.update(&m, old, score);
                        model.iter_mut().filter(|(x, _)| *x == m).for_each(|e| e.1 = score);
                    }
                    None => {
                        z.insert_new(&m, score, SMALL);
                        model.push((m, score));
                    }
                },
            }
            model.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
            assert_eq!(members(&z, false), model);
        }
        assert_eq!(z.encoding(), "listpack");
        let ZSetValue::Pack(p) = &z else { panic!() };
        let mut b = PackBuilder::default();
        model.iter().for_each(|(m, s)| b.push(m, *s));
        assert_eq!(**p, b.pack, "edits keep the encoding canonical");
        assert!(p.buf.len() < model.len() * 6, "neighbours share their prefix");
    }

    #[test]
    fn decimal_scores_are_short_and_exact() {
        let mut buf = Vec::new();
        encode_entry(&mut buf, b"", b"m", 25.5);
        assert_eq!(buf.len(), 1 + 1 + 2);
        for s in [0.1, -0.3, 25.5, 1.0001, -1234.5678, 0.1 + 0.2, 1e-5, 3.14159, 1e17 + 0.5] {
            let mut buf = Vec::new();
            encode_entry(&mut buf, b"", b"m", s);
            let mut c = Cursor { buf: &buf, pos: 0, member: Vec::new() };
            let got = c.next().unwrap().2;
            assert_eq!(got.to_bits(), s.to_bits(), "{s}");
        }
        assert_eq!(as_decimal(0.1 + 0.2), None);
        assert_eq!(as_decimal(-1234.5678), Some((-12_345_678, 4)));
    }

    #[test]
    fn listpack_scores_round_trip() {
        let mut z = ZSetValue::new_for(1, SMALL);
        let scores = [
            0.0,
            -1.0,
            1.5,
            -7.0,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            4e15,
        ];
        for (i, s) in scores.iter().enumerate() {
            z.insert_new(format!("m{i}").as_bytes(), *s, SMALL);
        }
        for (i, s) in scores.iter().enumerate() {
            let got = z.score(format!("m{i}").as_bytes()).unwrap();
            assert_eq!(got.to_bits(), s.to_bits(), "m{i}");
        }
        assert_eq!(z.encoding(), "listpack");
    }

    #[test]
    fn both_encodings_agree_on_order_rank_and_ranges() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut a = ZSetValue::new_for(1, SMALL);
        let mut b = ZSetValue::new_for(1, TINY);
        assert_eq!(b.encoding(), "skiplist");
        for _ in 0..2000 {
            let m = format!("k{}", rng.gen_range(0..100));
            let s = f64::from(rng.gen_range(-5..5));
            match rng.gen_range(0..3) {
                0 => {
                    a.remove(m.as_bytes());
                    b.remove(m.as_bytes());
                }
                _ => {
                    for z in [&mut a, &mut b] {
                        match z.score(m.as_bytes()) {
                            Some(old) => z.update(m.as_bytes(), old, s),
                            None => z.insert_new(m.as_bytes(), s, SMALL),
                        }
                    }
                }
            }
        }
        assert_eq!(members(&a, false), members(&b, false));
        assert_eq!(members(&a, true), members(&b, true));
        let all = members(&a, false);
        for w in all.windows(2) {
            assert_eq!(cmp_entry(w[0].1, &w[0].0, w[1].1, &w[1].0), Ordering::Less);
        }
        for (i, (m, _)) in all.iter().enumerate() {
            assert_eq!(a.rank(m).unwrap().0, i);
            assert_eq!(b.rank(m).unwrap().0, i);
        }
        let below0 = |s: f64, _: &[u8]| s < 0.0;
        assert_eq!(a.count_before(below0), b.count_before(below0));
        assert_eq!(a.remove_range(2, 5), b.remove_range(2, 5));
        assert_eq!(members(&a, false), members(&b, false));
        assert!(a == b);
    }

    #[test]
    fn converts_past_thresholds_and_back() {
        let lim = Limits {
            max_entries: 4,
            max_value: 8,
        };
        let mut z = ZSetValue::new_for(1, lim);
        for i in 0..4 {
            z.insert_new(&[b'a' + i], f64::from(i), lim);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert_new(b"e", 9.0, lim);
        assert_eq!(z.encoding(), "skiplist");
        z.remove(b"e");
        z.compact_if_fits(lim);
        assert_eq!(z.encoding(), "listpack");
        assert_eq!(z.at(3), Some((b"d".to_vec(), 3.0)));
    }

    #[test]
    fn from_packed_adopts_sound_buffers_and_refuses_damaged_ones() {
        let mut z = ZSetValue::new_for(1, SMALL);
        let entries: [(&[u8], f64); 6] = [
            (b"member:1", 1.0),
            (b"member:2", 2.5),
            (b"m", -0.125),
            (b"x", 1e300),
            (b"inf", f64::INFINITY),
            (b"", -3.0),
        ];
        for (m, s) in entries {
            z.insert_new(m, s, SMALL);
        }
        let (buf, n) = z.packed_parts().unwrap();
        let back = ZSetValue::from_packed(buf, n, SMALL).unwrap();
        assert_eq!(members(&back, false), members(&z, false));
        assert_eq!(back.encoding(), "listpack");
        let big = ZSetValue::from_packed(buf, n, TINY).unwrap();
        assert_eq!(big.encoding(), "skiplist");
        assert_eq!(members(&big, false), members(&z, false));
        assert!(ZSetValue::from_packed(buf, n - 1, SMALL).is_none());
        assert!(ZSetValue::from_packed(buf, n + 1, SMALL).is_none());
        // Out of order, the same member twice, a NaN score.
        let enc = |list: &[(&[u8], f64)]| {
            let mut b = PackBuilder::default();
            for &(m, s) in list {
                b.push(m, s);
            }
            b.pack.buf
        };
        let ok = enc(&[(b"a", 1.0), (b"b", 1.0)]);
        assert!(ZSetValue::from_packed(&ok, 2, SMALL).is_some());
        assert!(ZSetValue::from_packed(&enc(&[(b"b", 1.0), (b"a", 1.0)]), 2, SMALL).is_none());
        assert!(ZSetValue::from_packed(&enc(&[(b"a", 1.0), (b"a", 2.0)]), 2, SMALL).is_none());
        assert!(ZSetValue::from_packed(&enc(&[(b"a", f64::NAN)]), 1, SMALL).is_none());
        // Equal scores order front-coded members by what follows their shared prefix.
        let (m1, m12, m2): (&[u8], &[u8], &[u8]) = (b"member:1", b"member:12", b"member:2");
        for (list, sound) in [
            ([(m1, 1.0), (m12, 1.0)], true),
            ([(m12, 1.0), (m2, 1.0)], true),
            ([(m12, 1.0), (m1, 1.0)], false),
            ([(m2, 1.0), (m12, 1.0)], false),
            ([(m12, 1.0), (m12, 1.0)], false),
            ([(m12, 1.0), (m12, 2.0)], false),
        ] {
            let got = ZSetValue::from_packed(&enc(&list), 2, SMALL);
            assert_eq!(got.is_some(), sound, "{list:?}");
        }
        for b in crate::keyspace::hash::tests::damaged(buf) {
            if let Some(z) = ZSetValue::from_packed(&b, n, SMALL) {
                let got = members(&z, false);
                assert_eq!(got.len(), n);
                assert!(got.iter().all(|(m, s)| z.score(m) == Some(*s)));
            }
        }
    }
}
