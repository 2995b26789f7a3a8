//! The hash value type: field/value pairs in one of Redis's two encodings.
//!
//! Small hashes are `listpack`s: a single byte buffer of field/value pairs (see [`Packed`]),
//! kept in insertion order (new fields go to the tail, updates keep their place) so replies
//! list fields in the same order as Redis. Lookups walk the buffer, which for the few dozen entries a listpack holds is faster than hashing and
//! costs no per-field allocation. Past `hash-max-listpack-entries` fields, or once a field or
//! value is longer than `hash-max-listpack-value`, the hash becomes a `hashtable` (a segmented
//! [`Table`] from field to value) and, like Redis, never converts back.

use std::borrow::Cow;

use rand::Rng;

use super::table::Table;

/// Largest packed buffer before conversion, like Redis's listpack safety limit (1 GiB).
const PACKED_MAX_BYTES: usize = 1 << 30;

/// Conversion thresholds, read from the configuration by the commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// `hash-max-listpack-entries`.
    pub max_entries: usize,
    /// `hash-max-listpack-value`.
    pub max_value: usize,
}

/// A hash value.
#[derive(Debug, Clone, PartialEq)]
pub struct HashValue {
    repr: Repr,
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue {
            repr: Repr::Packed(Box::default()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Repr {
    /// Boxed so that a [`Value`](super::Value) stays 24 bytes.
    Packed(Box<Packed>),
    Table(Box<Big>),
}

/// The `hashtable` encoding: field -> value.
#[derive(Default)]
struct Big(Table<Box<[u8]>>);

impl std::fmt::Debug for Big {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl Clone for Big {
    fn clone(&self) -> Self {
        let mut t = Table::new();
        for (k, v) in self.0.iter() {
            t.insert(k, v.clone());
        }
        Big(t)
    }
}

impl PartialEq for Big {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .all(|(k, v)| other.0.get(k).is_some_and(|w| w == v))
    }
}

/// The `listpack` encoding: a sequence of pairs in insertion order, each a header, the field's
/// bytes and the value's bytes. A field that shares a prefix of two or more bytes with the field
/// before it stores only the rest (front coding): hash fields are often numbered or namespaced
/// (`field17`, `user:name`...), so neighbours mostly differ in a byte or two. Header forms:
///
/// - one byte `field_len << 4 | value_len` (field under 15 bytes, value under 16, no prefix);
/// - `0xf0 | suffix_len` then `shared << 4 | value_len` (suffix under 15, 2..=15 shared bytes,
///   value under 16);
/// - [`LONG_PAIR`] then `shared`, `suffix_len` and `value_len` in LEB128 (anything else).
///
/// A short pair costs its bytes plus one or two (a Redis listpack spends two to four per field
/// and per value, and stores every field whole). Pairs are read front to back (see
/// [`PackedCursor`]); removing a pair re-encodes the one after it against its new predecessor.
#[derive(Debug, Clone, PartialEq, Default)]
struct Packed {
    buf: Vec<u8>,
    /// Number of fields.
    n: u32,
}

/// Header byte of a pair with explicit lengths.
const LONG_PAIR: u8 = 0xff;
/// Header tag of a short pair with a shared prefix (low nibble: suffix length).
const SHARED_PAIR: u8 = 0xf0;
/// Shortest shared prefix worth front-coding.
const MIN_SHARED: usize = 2;

/// Reads a length at `pos`; returns (length, position after it).
fn read_len(buf: &[u8], mut pos: usize) -> (usize, usize) {
    let n = super::varint::get(buf, &mut pos) as usize;
    (n, pos)
}

fn write_len(out: &mut Vec<u8>, n: usize) {
    super::varint::put(out, n as u64);
}

fn len_size(n: usize) -> usize {
    super::varint::len(n as u64)
}

/// Upper bound of a pair's encoded size (whatever the field before it).
fn pair_size(field: &[u8], value: &[u8]) -> usize {
    1 + len_size(0) + len_size(field.len()) + len_size(value.len()) + field.len() + value.len()
}

/// Appends an encoded pair, front-coding `field` against `prev` (the field before it, or
/// empty).
fn write_pair(out: &mut Vec<u8>, prev: &[u8], field: &[u8], value: &[u8]) {
    let (fl, vl) = (field.len(), value.len());
    let common = prev.iter().zip(field).take_while(|(a, b)| a == b).count();
    if common >= MIN_SHARED && vl < 16 {
        let shared = common.min(15);
        if fl - shared < 15 {
            out.push(SHARED_PAIR | (fl - shared) as u8);
            out.push(((shared as u8) << 4) | vl as u8);
            out.extend_from_slice(&field[shared..]);
            out.extend_from_slice(value);
            return;
        }
    }
    if common < MIN_SHARED && fl < 15 && vl < 16 {
        out.push(((fl as u8) << 4) | vl as u8);
    } else {
        let shared = if common >= MIN_SHARED { common } else { 0 };
        out.push(LONG_PAIR);
        write_len(out, shared);
        write_len(out, fl - shared);
        write_len(out, vl);
        out.extend_from_slice(&field[shared..]);
        out.extend_from_slice(value);
        return;
    }
    out.extend_from_slice(field);
    out.extend_from_slice(value);
}

/// One pair's position in a packed buffer.
#[derive(Debug, Clone, Copy)]
struct PairAt {
    /// Start of the pair's header.
    start: usize,
    /// One past the value's last byte.
    end: usize,
}

/// One decoded pair: the field is in the cursor's `field`.
struct Pair<'a> {
    value: &'a [u8],
    at: PairAt,
    /// The field when it is stored whole (no shared prefix), borrowed from the buffer.
    whole: Option<&'a [u8]>,
}

/// Walks the pairs of a packed buffer, rebuilding each field into `field`.
struct PackedCursor<'a> {
    buf: &'a [u8],
    pos: usize,
    field: Vec<u8>,
}

impl<'a> PackedCursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        PackedCursor {
            buf,
            pos: 0,
            field: Vec::new(),
        }
    }

    fn next(&mut self) -> Option<Pair<'a>> {
        let start = self.pos;
        let h = *self.buf.get(start)?;
        let (shared, sl, vl, f) = match h {
            LONG_PAIR => {
                let (sh, p) = read_len(self.buf, start + 1);
                let (sl, p) = read_len(self.buf, p);
                let (vl, p) = read_len(self.buf, p);
                (sh, sl, vl, p)
            }
            SHARED_PAIR..=0xfe => {
                let b = self.buf[start + 1];
                (usize::from(b >> 4), usize::from(h & 0x0f), usize::from(b & 0x0f), start + 2)
            }
            _ => (0, usize::from(h >> 4), usize::from(h & 0x0f), start + 1),
        };
        let v = f + sl;
        self.pos = v + vl;
        let suffix = &self.buf[f..v];
        self.field.truncate(shared);
        self.field.extend_from_slice(suffix);
        Some(Pair {
            value: &self.buf[v..self.pos],
            at: PairAt {
                start,
                end: self.pos,
            },
            whole: (shared == 0).then_some(suffix),
        })
    }
}

/// Iterator over packed pairs; a front-coded field comes back owned.
struct PackedIter<'a>(PackedCursor<'a>);

impl<'a> Iterator for PackedIter<'a> {
    type Item = (Cow<'a, [u8]>, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = self.0.next()?;
        let field = match pair.whole {
            Some(f) => Cow::Borrowed(f),
            None => Cow::Owned(self.0.field.clone()),
        };
        Some((field, pair.value))
    }
}

impl Packed {
    fn cursor(&self) -> PackedCursor<'_> {
        PackedCursor::new(&self.buf)
    }

    /// Calls `f(field, value)` for each pair in order.
    fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        let mut c = self.cursor();
        while let Some(p) = c.next() {
            f(&c.field, p.value);
        }
    }

    fn find(&self, field: &[u8]) -> Option<&[u8]> {
        let mut c = self.cursor();
        while let Some(p) = c.next() {
            if c.field == field {
                return Some(p.value);
            }
        }
        None
    }

    /// Finds `field`: its span and the field before it, with the cursor left just after it.
    fn locate<'a>(&'a self, field: &[u8]) -> Option<(PairAt, Vec<u8>, PackedCursor<'a>)> {
        let mut c = self.cursor();
        let mut prev = Vec::new();
        while let Some(p) = c.next() {
            if c.field == field {
                return Some((p.at, prev, c));
            }
            prev.clone_from(&c.field);
        }
        None
    }

    /// Sets a field; returns true if it was new. An update rewrites the pair in place.
    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        let mut c = self.cursor();
        let mut prev = Vec::new();
        while let Some(p) = c.next() {
            if c.field == field {
                let mut enc = Vec::with_capacity(pair_size(field, value));
                write_pair(&mut enc, &prev, field, value);
                let at = p.at;
                self.splice(at.start, at.end, enc);
                return false;
            }
            prev.clone_from(&c.field);
        }
        let mut enc = Vec::with_capacity(pair_size(field, value));
        write_pair(&mut enc, &prev, field, value);
        let end = self.buf.len();
        self.splice(end, end, enc);
        self.n += 1;
        true
    }

    /// Replaces bytes `a..b` with `enc`, growing to the exact size, as a listpack does: a
    /// small hash then wastes no capacity.
    fn splice(&mut self, a: usize, b: usize, enc: Vec<u8>) {
        if enc.len() > b - a {
            self.buf.reserve_exact(enc.len() - (b - a));
        }
        self.buf.splice(a..b, enc);
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let Some((at, prev, mut c)) = self.locate(field) else {
            return false;
        };
        // The next pair was front-coded against the removed field: re-encode it against the
        // field before.
        let mut enc = Vec::new();
        let mut end = at.end;
        if let Some(next) = c.next() {
            write_pair(&mut enc, &prev, &c.field, next.value);
            end = next.at.end;
        }
        self.splice(at.start, end, enc);
        self.n -= 1;
        true
    }

    fn nth(&self, i: usize) -> Option<(Cow<'_, [u8]>, &[u8])> {
        PackedIter(self.cursor()).nth(i)
    }
}

/// Checks a packed buffer of unknown origin: exactly `n` pairs that fill it, every length
/// inside it, every shared prefix no longer than the field before, fields that add up to at
/// most [`expansion_budget`], distinct fields. Returns
/// the longest field or value. Never panics, whatever the bytes.
fn check_packed(buf: &[u8], n: usize) -> Option<usize> {
    use super::varint::get_len;
    if n == 0 || n > buf.len() || buf.len() > PACKED_MAX_BYTES {
        return None;
    }
    let (mut pos, mut longest, mut expanded) = (0, 0, 0usize);
    let budget = expansion_budget(buf.len());
    let (mut field, mut prev) = (Vec::new(), Vec::new());
    let mut hashes = Hashes::new();
    for i in 0..n {
        let h = *buf.get(pos)?;
        let (shared, sl, vl, f) = match h {
            LONG_PAIR => {
                let mut p = pos + 1;
                let sh = get_len(buf, &mut p)?;
                let sl = get_len(buf, &mut p)?;
                (sh, sl, get_len(buf, &mut p)?, p)
            }
            SHARED_PAIR..=0xfe => {
                let b = *buf.get(pos + 1)?;
                (usize::from(b >> 4), usize::from(h & 0x0f), usize::from(b & 0x0f), pos + 2)
            }
            _ => (0, usize::from(h >> 4), usize::from(h & 0x0f), pos + 1),
        };
        let v = f.checked_add(sl)?;
        pos = v.checked_add(vl)?;
        let suffix = buf.get(f..v)?;
        if pos > buf.len() {
            return None;
        }
        std::mem::swap(&mut field, &mut prev);
        field.clear();
        field.extend_from_slice(prev.get(..shared)?);
        field.extend_from_slice(suffix);
        longest = longest.max(field.len()).max(vl);
        expanded = expanded.saturating_add(field.len());
        if expanded > budget {
            return None;
        }
        // The field before is hashed only now, once its bytes have long been written:
        // reading a field right after copying it in stalls on the copy.
        if i > 0 {
            hashes.push(field_hash(&prev));
        }
    }
    hashes.push(field_hash(&field));
    if pos != buf.len() {
        return None;
    }
    // Equal 64-bit hashes are most likely equal fields, but compare them to be sure.
    let distinct = distinct_hashes(&mut hashes) || {
        distinct_sorted(PackedIter(PackedCursor::new(buf)).map(|p| p.0).collect())
    };
    distinct.then_some(longest)
}

/// Most bytes the front-coded fields (or members) of a buffer of `len` bytes may add up to
/// once rebuilt. Front coding lets a few bytes stand for a long field, so a hostile buffer
/// could otherwise make the checks (and a conversion to the table encoding) rebuild gigabytes;
/// real ones expand about 13 times at most under the default 64-byte value limit.
pub(super) fn expansion_budget(len: usize) -> usize {
    len.saturating_mul(64).saturating_add(1 << 20)
}

/// A 64-bit hash of a field or member, for the duplicate checks of snapshot loading: a
/// multiply-rotate over 8-byte words, cheap for short strings. Equal hashes are followed by an
/// exact comparison, so crafted collisions cost time (one sort) but never a wrong answer.
pub(super) fn field_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (b.len() as u64).wrapping_mul(K);
    let mut words = b.chunks_exact(8);
    let mut w = [0u8; 8];
    for c in &mut words {
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    h = (h ^ tail_word(words.remainder())).wrapping_mul(K);
    h ^ (h >> 29)
}

/// The last 0..=7 bytes of a string as one word, by whole loads (two overlapping 4-byte
/// ones, or three single bytes) rather than byte copies into a buffer that is then read back,
/// which stalls the load on the copies.
fn tail_word(r: &[u8]) -> u64 {
    let n = r.len();
    let u32_at = |i: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&r[i..i + 4]);
        u64::from(u32::from_le_bytes(b))
    };
    match n {
        0 => 0,
        1..=3 => u64::from(r[0]) | u64::from(r[n / 2]) << 8 | u64::from(r[n - 1]) << 16,
        _ => u32_at(0) | u32_at(n - 4) << 32,
    }
}

/// Whether the `items` (sorted here) are all different.
pub(super) fn distinct_sorted<T: Ord>(mut items: Vec<T>) -> bool {
    items.sort_unstable();
    items.windows(2).all(|w| w[0] != w[1])
}

/// Hashes of the members of one small collection (a listpack's worth stays on the stack).
pub(super) type Hashes = smallvec::SmallVec<[u64; 128]>;

/// Whether `hashes` are all different. Up to 128 go through an open-addressing table on the
/// stack (one probe each, mostly); more are sorted in place.
pub(super) fn distinct_hashes(hashes: &mut [u64]) -> bool {
    const SLOTS: usize = 256;
    if hashes.len() > SLOTS / 2 {
        hashes.sort_unstable();
        return hashes.windows(2).all(|w| w[0] != w[1]);
    }
    // 0 marks an empty slot, so every hash gets its low bit set (a lost bit only means an
    // extra exact comparison now and then).
    let mut slots = [0u64; SLOTS];
    for &h in hashes.iter() {
        let h = h | 1;
        let mut at = (h >> 56) as usize;
        loop {
            match slots[at] {
                0 => {
                    slots[at] = h;
                    break;
                }
                x if x == h => return false,
                _ => at = (at + 1) % SLOTS,
            }
        }
    }
    true
}

/// Iterator over the pairs of a hash, in storage order. Fields of the compact encoding may be
/// front-coded in storage, so they come back as [`Cow`]; values are always borrowed.
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Packed(PackedIter<'a>),
    Table(Box<dyn Iterator<Item = (&'a [u8], &'a [u8])> + 'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (Cow<'a, [u8]>, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Packed(it) => it.next(),
            IterRepr::Table(it) => it.next().map(|(f, v)| (Cow::Borrowed(f), v)),
        }
    }
}

impl HashValue {
    /// An empty hash in the compact encoding (callers add a field before storing it).
    pub fn new() -> Self {
        Self::default()
    }

    /// Name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Packed(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.n as usize,
            Repr::Table(t) => t.0.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(p) => p.find(field),
            Repr::Table(t) => t.0.get(field).map(|v| &**v),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// A `listpack` hash of `pairs` appended in order, with no per-pair lookup (snapshot
    /// loading). The caller guarantees distinct fields within the listpack limits; `capacity`
    /// is a hint of the bytes needed (an overestimate is trimmed).
    pub fn packed_from_distinct<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        capacity: usize,
    ) -> Self {
        let mut p = Packed {
            buf: Vec::with_capacity(capacity.min(PACKED_MAX_BYTES)),
            n: 0,
        };
        let mut prev: &[u8] = &[];
        for (f, v) in pairs {
            write_pair(&mut p.buf, prev, f, v);
            p.n += 1;
            prev = f;
        }
        p.buf.shrink_to_fit();
        HashValue { repr: Repr::Packed(Box::new(p)) }
    }

    /// The `listpack` buffer and its field count, for a snapshot to store verbatim; `None` for
    /// a `hashtable`.
    pub fn packed_parts(&self) -> Option<(&[u8], usize)> {
        match &self.repr {
            Repr::Packed(p) => Some((&p.buf, p.n as usize)),
            Repr::Table(_) => None,
        }
    }

    /// Adopts a `listpack` buffer of `n` pairs read from a snapshot (one allocation and a
    /// copy), after checking it: `None` unless it is well formed with `n` distinct fields.
    /// A hash beyond `limits` is converted to `hashtable`, as Redis does on load.
    pub fn from_packed(buf: &[u8], n: usize, limits: HashLimits) -> Option<HashValue> {
        let longest = check_packed(buf, n)?;
        let mut h = HashValue {
            repr: Repr::Packed(Box::new(Packed {
                buf: buf.to_vec(),
                n: u32::try_from(n).ok()?,
            })),
        };
        if n > limits.max_entries || longest > limits.max_value {
            h.convert();
        }
        Some(h)
    }

    /// Sets `field` to `value`, converting to `hashtable` first when either is longer than the
    /// listpack limit and afterwards when the field count passes it. Returns true if the field
    /// is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        if let Repr::Packed(p) = &self.repr {
            let too_long = field.len() > limits.max_value || value.len() > limits.max_value;
            if too_long || p.buf.len() + field.len() + value.len() > PACKED_MAX_BYTES {
                self.convert();
            }
        }
        match &mut self.repr {
            Repr::Packed(p) => {
                let created = p.set(field, value);
                if p.n as usize > limits.max_entries {
                    self.convert();
                }
                created
            }
            Repr::Table(t) => t.0.insert(field, value.into()).is_none(),
        }
    }

    /// Sets several pairs (HSET); returns how many fields were new. A `listpack` grows once
    /// for the whole batch instead of once per pair, so a large HSET leaves no trail of
    /// outgrown allocations behind.
    pub fn set_many<'a>(
        &mut self,
        pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
        limits: HashLimits,
    ) -> usize {
        if let Repr::Packed(p) = &mut self.repr {
            let need: usize = pairs.clone().map(|(f, v)| pair_size(f, v)).sum();
            if pairs.len() > 1 && need <= PACKED_MAX_BYTES {
                p.buf.reserve_exact(need);
            }
        }
        let created = pairs.filter(|(f, v)| self.set(f, v, limits)).count();
        if let Repr::Packed(p) = &mut self.repr {
            p.buf.shrink_to_fit();
        }
        created
    }

    /// Removes `field`; returns true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(p) => p.remove(field),
            Repr::Table(t) => t.0.remove(field).is_some(),
        }
    }

    /// Converts to the `hashtable` encoding (Redis's `hashTypeConvert`).
    fn convert(&mut self) {
        let Repr::Packed(p) = &self.repr else {
            return;
        };
        let mut t = Table::new();
        p.for_each(|f, v| {
            t.insert(f, v.into());
        });
        self.repr = Repr::Table(Box::new(Big(t)));
    }

    /// All pairs in storage order (insertion order for `listpack`).
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Packed(p) => Iter(IterRepr::Packed(PackedIter(p.cursor()))),
            Repr::Table(t) => Iter(IterRepr::Table(Box::new(
                t.0.iter().map(|(k, v)| (&**k, &**v)),
            ))),
        }
    }

    /// A uniformly chosen pair, or None if the hash is empty.
    pub fn random_pair<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<(Cow<'_, [u8]>, &[u8])> {
        match &self.repr {
            Repr::Packed(p) if p.n > 0 => p.nth(rng.gen_range(0..p.n as usize)),
            Repr::Packed(_) => None,
            Repr::Table(t) => t.0.random_entry(rng).map(|(k, v)| (Cow::Borrowed(&**k), &**v)),
        }
    }

    /// `count` distinct pairs chosen at random (`count` < len), in random order for
    /// `hashtable` and storage order for `listpack`.
    pub fn random_distinct<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        count: usize,
    ) -> Vec<(Cow<'_, [u8]>, &[u8])> {
        let len = self.len();
        let count = count.min(len);
        // With many pairs wanted, pick indices from the full list; with few, sample the table
        // directly and drop repeats (Redis's CASE 3 / CASE 4 of HRANDFIELD).
        if matches!(self.repr, Repr::Packed(_)) || count.saturating_mul(3) > len {
            let mut all: Vec<_> = self.iter().collect();
            let mut keep: Vec<usize> = rand::seq::index::sample(rng, len, count).into_vec();
            keep.sort_unstable();
            let mut out = Vec::with_capacity(count);
            for i in keep.into_iter().rev() {
                out.push(all.swap_remove(i));
            }
            out.reverse();
            return out;
        }
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            if let Some((f, v)) = self.random_pair(rng) {
                if seen.insert(f.clone()) {
                    out.push((f, v));
                }
            }
        }
        out
    }

    /// Calls `f(field, value)` for every pair in storage order, without copying front-coded
    /// fields (HGETALL, HKEYS, HVALS).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match &self.repr {
            Repr::Packed(p) => p.for_each(f),
            Repr::Table(t) => t.0.iter().for_each(|(k, v)| f(k, v)),
        }
    }

    /// One HSCAN step: a `listpack` hash is returned whole with cursor 0, as in Redis; a
    /// `hashtable` is walked with the table's cursor. Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match &self.repr {
            Repr::Packed(p) => {
                p.for_each(f);
                0
            }
            Repr::Table(t) => t.0.scan(cursor, count, |k, v| f(k, v)),
        }
    }

    /// Feeds the content into a digest (DEBUG DIGEST). Ordered types hash in order; sets and
    /// hashes must give the same digest whatever their internal order.
    pub fn digest_into(&self, h: &mut sha1_smol::Sha1) {
        let mut acc = [0u8; 20];
        self.for_each(|f, v| {
            let mut e = sha1_smol::Sha1::new();
            e.update(&(f.len() as u64).to_le_bytes());
            e.update(f);
            e.update(v);
            for (a, b) in acc.iter_mut().zip(e.digest().bytes()) {
                *a ^= b;
            }
        });
        h.update(&acc);
    }

    /// Bytes this value would take serialized (DEBUG OBJECT's serializedlength): the listpack
    /// blob for the compact encoding, length-prefixed strings for the table.
    pub fn serialized_len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => {
                // Listpack: 6-byte header, per entry an encoding byte(s) + data + backlen,
                // 1-byte terminator; stored as one length-prefixed string.
                let mut body = 7;
                p.for_each(|f, v| body += lp_entry_size(f) + lp_entry_size(v));
                rdb_len_size(body) + body
            }
            Repr::Table(t) => {
                let items: usize = t
                    .0
                    .iter()
                    .map(|(k, v)| rdb_len_size(k.len()) + k.len() + rdb_len_size(v.len()) + v.len())
                    .sum();
                rdb_len_size(t.0.len()) + items
            }
        }
    }

    /// Heap bytes used (for MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.buf.capacity(),
            Repr::Table(t) => {
                let per = std::mem::size_of::<(u32, Box<[u8]>, Box<[u8]>)>() + 2;
                t.0.iter().map(|(k, v)| k.len() + v.len() + per).sum()
            }
        }
    }
}

/// Size of one listpack entry holding `s` (string entries; small integers are shorter).
fn lp_entry_size(s: &[u8]) -> usize {
    let hdr = match s.len() {
        0..=63 => 1,
        64..=4095 => 2,
        _ => 5,
    };
    let data = hdr + s.len();
    let backlen = match data {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    data + backlen
}

/// Size of an RDB length prefix.
fn rdb_len_size(n: usize) -> usize {
    match n {
        0..=63 => 1,
        64..=16383 => 2,
        16384..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::{rngs::SmallRng, SeedableRng};

    use super::*;

    const SMALL: HashLimits = HashLimits {
        max_entries: 4,
        max_value: 8,
    };

    #[test]
    fn packed_front_codes_fields_and_survives_edits() {
        use rand::Rng;
        let lim = HashLimits {
            max_entries: 1000,
            max_value: 64,
        };
        let mut rng = SmallRng::seed_from_u64(11);
        let mut h = HashValue::new();
        let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for _ in 0..3000 {
            let f = match rng.gen_range(0..3) {
                0 => format!("field{}", rng.gen_range(0..40)),
                1 => format!("a-rather-long-common-prefix:{}", rng.gen_range(0..20)),
                _ => format!("f{}", rng.gen_range(0..10)),
            }
            .into_bytes();
            let v = vec![b'v'; rng.gen_range(0..20)];
            if rng.gen_range(0..3) == 0 {
                let pos = model.iter().position(|(x, _)| *x == f);
                assert_eq!(h.remove(&f), pos.is_some());
                if let Some(i) = pos {
                    model.remove(i);
                }
            } else {
                let pos = model.iter().position(|(x, _)| *x == f);
                assert_eq!(h.set(&f, &v, lim), pos.is_none());
                match pos {
                    Some(i) => model[i].1 = v,
                    None => model.push((f, v)),
                }
            }
            let got: Vec<_> = h.iter().map(|(f, v)| (f.into_owned(), v.to_vec())).collect();
            assert_eq!(got, model);
        }
        for (f, v) in &model {
            assert_eq!(h.get(f), Some(&v[..]));
        }
        let mut fresh = HashValue::new();
        model.iter().for_each(|(f, v)| {
            fresh.set(f, v, lim);
        });
        assert_eq!(h, fresh, "edits keep the encoding canonical");
        let Repr::Packed(p) = &fresh.repr else { panic!() };
        let mut seq = HashValue::new();
        for i in 0..100 {
            seq.set(format!("field{i}").as_bytes(), format!("value{i}").as_bytes(), lim);
        }
        let Repr::Packed(q) = &seq.repr else { panic!() };
        assert!(q.buf.len() <= 100 * 10 + 10, "front-coded: {}", q.buf.len());
        assert!(p.n as usize == model.len());
    }

    #[test]
    fn packed_keeps_insertion_order_and_updates_in_place() {
        let mut h = HashValue::new();
        assert!(h.set(b"a", b"1", SMALL));
        assert!(h.set(b"b", b"2", SMALL));
        assert!(!h.set(b"a", b"long-ish", SMALL));
        let pairs: Vec<_> = h.iter().map(|(f, v)| (f.into_owned(), v)).collect();
        assert_eq!(
            pairs,
            vec![(b"a".to_vec(), &b"long-ish"[..]), (b"b".to_vec(), &b"2"[..])]
        );
        assert_eq!(h.encoding(), "listpack");
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(h.len(), 1);
        assert_eq!(h.get(b"b"), Some(&b"2"[..]));
    }

    #[test]
    fn converts_past_entry_and_value_limits() {
        let mut h = HashValue::new();
        for i in 0..4 {
            h.set(format!("f{i}").as_bytes(), b"v", SMALL);
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f4", b"v", SMALL);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 5);
        assert_eq!(h.get(b"f0"), Some(&b"v"[..]));

        let mut h = HashValue::new();
        h.set(b"k", b"123456789", SMALL);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn long_lengths_round_trip() {
        let mut h = HashValue::new();
        let big = vec![b'x'; 70_000];
        let lim = HashLimits {
            max_entries: 10,
            max_value: 1 << 20,
        };
        h.set(&big, &big, lim);
        h.set(b"z", b"", lim);
        assert_eq!(h.encoding(), "listpack");
        assert_eq!(h.get(&big).map(<[u8]>::len), Some(70_000));
        assert_eq!(h.get(b"z"), Some(&b""[..]));
    }

    #[test]
    fn random_distinct_returns_distinct_fields() {
        let mut rng = SmallRng::seed_from_u64(7);
        for lim in [
            SMALL,
            HashLimits {
                max_entries: 1,
                max_value: 64,
            },
        ] {
            let mut h = HashValue::new();
            for i in 0..4 {
                h.set(format!("f{i}").as_bytes(), b"v", lim);
            }
            let got = h.random_distinct(&mut rng, 3);
            let mut fields: Vec<_> = got.iter().map(|p| p.0.clone()).collect();
            fields.sort();
            fields.dedup();
            assert_eq!(fields.len(), 3);
        }
    }

    #[test]
    fn digest_ignores_order() {
        let lim = HashLimits {
            max_entries: 100,
            max_value: 64,
        };
        let (mut a, mut b) = (HashValue::new(), HashValue::new());
        a.set(b"x", b"1", lim);
        a.set(b"y", b"2", lim);
        b.set(b"y", b"2", lim);
        b.set(b"x", b"1", lim);
        let d = |h: &HashValue| {
            let mut s = sha1_smol::Sha1::new();
            h.digest_into(&mut s);
            s.digest().bytes()
        };
        assert_eq!(d(&a), d(&b));
    }

    #[test]
    fn short_and_long_pairs_mix_and_update_across_header_kinds() {
        let lim = HashLimits {
            max_entries: 100,
            max_value: 1000,
        };
        let mut h = HashValue::new();
        h.set(b"short", b"v", lim);
        h.set(b"a-field-of-15-b", b"x", lim);
        h.set(b"k", &[b'y'; 200], lim);
        h.set(b"short", &[b'z'; 16], lim);
        h.set(b"k", b"", lim);
        let got: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(
            got,
            vec![
                (b"short".to_vec(), vec![b'z'; 16]),
                (b"a-field-of-15-b".to_vec(), b"x".to_vec()),
                (b"k".to_vec(), vec![]),
            ]
        );
        assert!(h.remove(b"a-field-of-15-b"));
        assert_eq!(h.len(), 2);
        assert_eq!(h.get(b"k"), Some(&b""[..]));
    }

    /// Every damaged variant of `buf`: each truncation and each byte with each bit flipped.
    pub(crate) fn damaged(buf: &[u8]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = (0..buf.len()).map(|l| buf[..l].to_vec()).collect();
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.to_vec();
                b[i] ^= 1 << bit;
                out.push(b);
            }
        }
        out
    }

    #[test]
    fn from_packed_adopts_sound_buffers_and_refuses_damaged_ones() {
        let lim = HashLimits {
            max_entries: 128,
            max_value: 300,
        };
        let mut h = HashValue::new();
        for (f, v) in [
            (&b"field:1"[..], &b"a"[..]),
            (b"field:2", b""),
            (b"x", &[b'v'; 200]),
            (b"a-field-longer-than-fifteen", b"w"),
            (b"a-field-longer-than-sixteen", b"ww"),
        ] {
            h.set(f, v, lim);
        }
        let (buf, n) = h.packed_parts().unwrap();
        let back = HashValue::from_packed(buf, n, lim).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.encoding(), "listpack");
        // Beyond the limits: converted, same contents.
        let big = HashValue::from_packed(buf, n, SMALL).unwrap();
        assert_eq!((big.encoding(), big.len()), ("hashtable", 5));
        assert_eq!(big.get(b"field:2"), Some(&b""[..]));
        // Wrong counts, trailing bytes, a duplicate field, a prefix longer than the field before.
        assert!(HashValue::from_packed(buf, n - 1, lim).is_none());
        assert!(HashValue::from_packed(buf, n + 1, lim).is_none());
        assert!(HashValue::from_packed(&[buf, &[0x11, b'f', b'v']].concat(), n, lim).is_none());
        let dup = [0x11, b'f', b'v', 0x11, b'f', b'w'];
        assert!(HashValue::from_packed(&dup, 2, lim).is_none());
        assert!(HashValue::from_packed(&dup[..3], 1, lim).is_some());
        let deep = [0x11, b'f', b'v', SHARED_PAIR | 1, 0x21, b'g', b'w'];
        assert!(HashValue::from_packed(&deep, 2, lim).is_none());
        // Whatever the damage: no panic, and what is accepted is usable.
        for b in damaged(buf) {
            if let Some(h) = HashValue::from_packed(&b, n, lim) {
                let fields: Vec<_> = h.iter().map(|(f, _)| f.into_owned()).collect();
                assert_eq!(fields.len(), n);
                assert!(fields.iter().all(|f| h.contains(f)));
            }
        }
    }

    #[test]
    fn distinct_hashes_small_and_large() {
        // Same top byte (same first slot), differing low bits: probed, not confused.
        let mut v = vec![0xab00_0000_0000_0002, 0xab00_0000_0000_0004, 0];
        assert!(distinct_hashes(&mut v));
        v.push(4 | 0xab00_0000_0000_0000);
        assert!(!distinct_hashes(&mut v));
        for n in [1usize, 128, 129, 1000] {
            let mut v: Vec<u64> = (0..n as u64).map(|i| field_hash(&i.to_le_bytes())).collect();
            assert!(distinct_hashes(&mut v.clone()), "{n}");
            v.push(v[n / 2]);
            assert!(!distinct_hashes(&mut v), "{n} + dup");
        }
        assert_ne!(field_hash(b"field1"), field_hash(b"field1\0"));
    }

    #[test]
    fn from_packed_refuses_a_front_coding_bomb() {
        let lim = HashLimits {
            max_entries: 128,
            max_value: 64,
        };
        // One 100 kB field, then fields that repeat it through front coding, 8 bytes each.
        let long = 100_000;
        let bomb = |pairs: u16| {
            let mut b = vec![LONG_PAIR, 0];
            super::write_len(&mut b, long);
            b.push(0);
            b.extend(std::iter::repeat(b'a').take(long));
            for i in 0..pairs {
                b.push(LONG_PAIR);
                super::write_len(&mut b, long);
                b.extend_from_slice(&[2, 0]);
                b.extend_from_slice(&i.to_le_bytes());
            }
            b
        };
        assert!(HashValue::from_packed(&bomb(20), 21, lim).is_some());
        assert!(HashValue::from_packed(&bomb(200), 201, lim).is_none());
    }
}
