//! The list value type: a deque of packed chunks (Redis's quicklist of listpacks).
//!
//! Each [`Chunk`] is one contiguous buffer of entries, each entry laid out as
//! `varint(suffix_len << 1 | coded) [varint(shared)] suffix backlen`. An entry is the chunk's
//! anchor (a copy of the first element the chunk received) cut to `shared` bytes, followed by
//! `suffix`: list elements often share a prefix (`job:1041`, `job:1042`...), which is then
//! stored once per chunk instead of once per element. `coded` is 0 for an entry stored whole.
//! The anchor is at most 32 bytes. `backlen` is the varint of the entry's size up to the
//! suffix's end, stored byte-reversed so that a chunk can be walked from either end (like a
//! listpack). Coding against a fixed anchor
//! rather than against the previous entry keeps every entry decodable on its own, so pops,
//! pushes and walks in either direction stay O(1) per entry. A chunk accepts a new entry
//! while it stays within `list-max-listpack-size` (negative = a byte limit of 4..64 KiB, positive
//! = an entry count capped at 8 KiB), so a small list is one buffer with no per-element
//! allocation, and pushes or pops at either end touch one chunk only.
//!
//! Elements at least [`packed_threshold`] bytes long are *plain*: each lives alone in a chunk
//! flagged [`Chunk::plain`], which never takes another element (Redis's plain quicklist nodes,
//! meant for huge elements; `DEBUG QUICKLIST-PACKED-THRESHOLD` lowers the limit for tests).
//!
//! Redis 7.0 reports every list as `quicklist` (the `listpack` list encoding arrived in 7.2),
//! so [`ListValue::encoding`] does too.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Default size from which an element is stored as a plain chunk (1 GiB, as in Redis).
const DEFAULT_PACKED_THRESHOLD: usize = 1 << 30;
/// Largest accepted threshold: Redis refuses anything above 4 GiB minus 1 MiB.
const MAX_PACKED_THRESHOLD: u64 = (1 << 32) - (1 << 20);

/// The plain-element threshold. It is process-wide, like Redis's `packed_threshold`: a debug
/// knob (`DEBUG QUICKLIST-PACKED-THRESHOLD`) rather than a per-database or per-list setting,
/// and an atomic keeps it out of every push's argument list. It only decides how *new*
/// elements are stored; chunks already built keep their kind. Unit tests run in parallel
/// threads, so under `cfg(test)` each thread has its own copy instead.
#[cfg(not(test))]
static PACKED_THRESHOLD: AtomicUsize = AtomicUsize::new(DEFAULT_PACKED_THRESHOLD);

#[cfg(test)]
thread_local! {
    static PACKED_THRESHOLD: AtomicUsize = const { AtomicUsize::new(DEFAULT_PACKED_THRESHOLD) };
}

/// Sets the plain-element threshold; 0 restores the 1 GiB default. Returns false (and changes
/// nothing) above 4 GiB minus 1 MiB, the range Redis accepts.
pub fn set_packed_threshold(size: u64) -> bool {
    if size > MAX_PACKED_THRESHOLD {
        return false;
    }
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let size = if size == 0 { DEFAULT_PACKED_THRESHOLD } else { size };
    #[cfg(not(test))]
    PACKED_THRESHOLD.store(size, Ordering::Relaxed);
    #[cfg(test)]
    PACKED_THRESHOLD.with(|t| t.store(size, Ordering::Relaxed));
    true
}

/// The current plain-element threshold in bytes.
pub fn packed_threshold() -> usize {
    #[cfg(not(test))]
    return PACKED_THRESHOLD.load(Ordering::Relaxed);
    #[cfg(test)]
    PACKED_THRESHOLD.with(|t| t.load(Ordering::Relaxed))
}

/// Whether an element of `len` bytes is stored as a plain chunk of its own.
fn is_large(len: usize) -> bool {
    len >= packed_threshold()
}

/// Byte limits for negative `list-max-listpack-size` values -1..-5.
const SIZE_LIMITS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// Byte cap on a chunk when the fill is an entry count.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// Per-entry overhead estimate used by the fill rule (Redis's `SIZE_ESTIMATE_OVERHEAD`).
const ENTRY_OVERHEAD: usize = 8;

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// One packed run of entries.
#[derive(Debug, Clone, PartialEq, Default)]
struct Chunk {
    buf: Vec<u8>,
    count: u32,
    /// Prefix source for the entries (see the module docs).
    anchor: Box<[u8]>,
    /// A plain chunk holds exactly one large element and never takes another.
    plain: bool,
}

/// Shortest shared prefix worth coding.
const MIN_SHARED: usize = 2;
/// Longest anchor: prefixes worth sharing are short, and a chunk's byte size (which the fill
/// rule limits) then stays close to the size of its elements.
const ANCHOR_MAX: usize = 32;

fn varint_len(n: usize) -> usize {
    super::varint::len(n as u64)
}

fn put_varint(out: &mut Vec<u8>, n: usize) {
    super::varint::put(out, n as u64);
}

/// Reads a forward varint at `pos`; returns (value, bytes used).
fn get_varint(buf: &[u8], pos: usize) -> (usize, usize) {
    let mut end = pos;
    let n = super::varint::get(buf, &mut end) as usize;
    (n, end - pos)
}

/// Reads a back-length varint that ends just before `end`; returns (value, bytes used).
fn get_backlen(buf: &[u8], end: usize) -> (usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0u32, end);
    loop {
        i -= 1;
        let b = buf[i];
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return (n, end - i);
        }
        shift += 7;
    }
}

/// Checks that the back length of an entry of `size` bytes (its minimal varint, reversed)
/// starts at `at`; returns its length.
fn check_backlen(buf: &[u8], at: usize, size: usize) -> Option<usize> {
    let n = varint_len(size);
    let mut v = size;
    for i in 0..n {
        let more = if i + 1 < n { 0x80 } else { 0 };
        if *buf.get(at + n - 1 - i)? != (v & 0x7f) as u8 | more {
            return None;
        }
        v >>= 7;
    }
    Some(n)
}

/// Appends an entry for `data`, coded against `anchor`.
fn encode_entry(out: &mut Vec<u8>, anchor: &[u8], data: &[u8]) {
    let start = out.len();
    let common = anchor.iter().zip(data).take_while(|(a, b)| a == b).count();
    let shared = if common >= MIN_SHARED { common } else { 0 };
    let suffix = &data[shared..];
    put_varint(out, (suffix.len() << 1) | usize::from(shared > 0));
    if shared > 0 {
        put_varint(out, shared);
    }
    out.extend_from_slice(suffix);
    let body = out.len() - start;
    let b = out.len();
    put_varint(out, body);
    out[b..].reverse();
}

/// Parses the entry starting at `start`: the anchor bytes it shares, its suffix and the
/// position after it.
fn entry_parts(buf: &[u8], start: usize) -> (usize, &[u8], usize) {
    let (h, l1) = get_varint(buf, start);
    let mut p = start + l1;
    let shared = if h & 1 == 1 {
        let (sh, l2) = get_varint(buf, p);
        p += l2;
        sh
    } else {
        0
    };
    let suffix = &buf[p..p + (h >> 1)];
    let end = p + (h >> 1);
    (shared, suffix, end + varint_len(end - start))
}

/// Decodes the entry starting at `start`: its value and the position after it.
fn decode_entry<'a>(buf: &'a [u8], anchor: &'a [u8], start: usize) -> (Cow<'a, [u8]>, usize) {
    let (shared, suffix, end) = entry_parts(buf, start);
    let value = if shared == 0 {
        Cow::Borrowed(suffix)
    } else {
        let mut v = Vec::with_capacity(shared + suffix.len());
        v.extend_from_slice(&anchor[..shared]);
        v.extend_from_slice(suffix);
        Cow::Owned(v)
    };
    (value, end)
}

/// Start of the entry that ends at `end`.
fn entry_start(buf: &[u8], end: usize) -> usize {
    let (body, bl) = get_backlen(buf, end);
    end - bl - body
}

/// Whether a chunk of `sz` bytes and `count` entries may take one more entry of `len` bytes.
fn allows(sz: usize, count: u32, len: usize, fill: i64) -> bool {
    let new_sz = sz + len + ENTRY_OVERHEAD;
    if fill < 0 {
        let idx = usize::try_from(-fill - 1).unwrap_or(usize::MAX);
        return SIZE_LIMITS.get(idx).is_some_and(|&lim| new_sz <= lim);
    }
    new_sz <= SIZE_SAFETY_LIMIT && i64::from(count) < fill
}

impl Chunk {
    /// A chunk holding only `data`, plain if `data` is large.
    fn single(data: &[u8]) -> Chunk {
        let mut c = Chunk { plain: is_large(data.len()), ..Chunk::default() };
        c.push_back(data);
        c
    }

    /// Whether this chunk may take one more element of `len` bytes: never for a plain chunk
    /// or a large element, otherwise as the fill rule says.
    fn allows(&self, len: usize, fill: i64) -> bool {
        !self.plain && !is_large(len) && allows(self.buf.len(), self.count, len, fill)
    }

    /// Makes the first element of an empty chunk (its first [`ANCHOR_MAX`] bytes) its anchor.
    fn anchor_on(&mut self, data: &[u8]) {
        if self.count == 0 {
            self.anchor = data[..data.len().min(ANCHOR_MAX)].into();
        }
    }

    fn push_back(&mut self, data: &[u8]) {
        self.anchor_on(data);
        // Grow to the exact size, as a listpack does (the allocator resizes in place within a
        // size class): a doubling `Vec` would leave up to half of every chunk unused.
        self.buf.reserve_exact(data.len() + 2 * varint_len(data.len() + 10) + 1);
        encode_entry(&mut self.buf, &self.anchor, data);
        self.count += 1;
    }

    fn push_front(&mut self, data: &[u8]) {
        self.anchor_on(data);
        let mut e = Vec::with_capacity(data.len() + 8 + self.buf.len());
        encode_entry(&mut e, &self.anchor, data);
        e.extend_from_slice(&self.buf);
        self.buf = e;
        self.count += 1;
    }

    fn pop_front(&mut self) -> Vec<u8> {
        let (v, end) = decode_entry(&self.buf, &self.anchor, 0);
        let v = v.into_owned();
        self.buf.drain(..end);
        self.count -= 1;
        v
    }

    fn pop_back(&mut self) -> Vec<u8> {
        let start = entry_start(&self.buf, self.buf.len());
        let v = decode_entry(&self.buf, &self.anchor, start).0.into_owned();
        self.buf.truncate(start);
        self.count -= 1;
        v
    }

    fn iter(&self) -> ChunkIter<'_> {
        ChunkIter { buf: &self.buf, anchor: &self.anchor, front: 0, back: self.buf.len() }
    }
}

/// Iterates the entries of one chunk in either direction.
struct ChunkIter<'a> {
    buf: &'a [u8],
    anchor: &'a [u8],
    front: usize,
    back: usize,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = Cow<'a, [u8]>;
    fn next(&mut self) -> Option<Cow<'a, [u8]>> {
        if self.front >= self.back {
            return None;
        }
        let (v, end) = decode_entry(self.buf, self.anchor, self.front);
        self.front = end;
        Some(v)
    }
}

impl<'a> DoubleEndedIterator for ChunkIter<'a> {
    fn next_back(&mut self) -> Option<Cow<'a, [u8]>> {
        if self.front >= self.back {
            return None;
        }
        self.back = entry_start(self.buf, self.back);
        Some(decode_entry(self.buf, self.anchor, self.back).0)
    }
}

/// One chunk as a snapshot stores it (see [`ListValue::raw_chunks`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawChunk<'a> {
    pub plain: bool,
    pub count: u32,
    pub anchor: &'a [u8],
    pub buf: &'a [u8],
}

impl RawChunk<'_> {
    /// Checks a chunk of unknown origin: `count` (at least 1; exactly 1 if plain) entries that
    /// fill the buffer, each suffix inside it, each shared prefix within the anchor (at most
    /// [`ANCHOR_MAX`] bytes), each back length the exact reversed varint of the entry's size
    /// (so the chunk walks backwards too). Never panics, whatever the bytes.
    fn check(&self) -> Option<()> {
        use super::varint::get_len;
        let buf = self.buf;
        let bad_count = self.count == 0 || (self.plain && self.count != 1);
        if bad_count || self.anchor.len() > ANCHOR_MAX {
            return None;
        }
        let (mut pos, mut n) = (0, 0u32);
        while pos < buf.len() {
            let start = pos;
            let h = get_len(buf, &mut pos)?;
            let shared = if h & 1 == 1 { get_len(buf, &mut pos)? } else { 0 };
            let end = pos.checked_add(h >> 1)?;
            if shared > self.anchor.len() || end > buf.len() {
                return None;
            }
            pos = end + check_backlen(buf, end, end - start)?;
            n = n.checked_add(1)?;
        }
        (n == self.count).then_some(())
    }

    /// Whether the chunk is one a list built with `fill` could hold.
    fn fits(&self, fill: i64) -> bool {
        let count = self.count;
        if self.plain || count == 1 {
            return true;
        }
        if fill < 0 {
            let idx = usize::try_from(fill.unsigned_abs() - 1).unwrap_or(usize::MAX);
            return SIZE_LIMITS.get(idx).is_some_and(|&lim| self.buf.len() <= lim);
        }
        i64::from(count) <= fill && self.buf.len() <= SIZE_SAFETY_LIMIT
    }
}

/// A list value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListValue {
    /// Boxed so that a [`Value`](super::Value) stays 24 bytes.
    chunks: Box<VecDeque<Chunk>>,
    len: usize,
}

impl ListValue {
    pub fn new() -> Self {
        ListValue::default()
    }

    /// Builds a list from entries, packed with the given fill.
    pub fn from_iter<'a>(items: impl IntoIterator<Item = &'a [u8]>, fill: i64) -> Self {
        let mut l = ListValue::new();
        for it in items {
            l.push(End::Tail, it, fill);
        }
        l
    }

    /// The chunks as stored, head to tail, for a snapshot to store verbatim.
    pub fn raw_chunks(&self) -> impl Iterator<Item = RawChunk<'_>> + '_ {
        self.chunks.iter().filter(|c| c.count > 0).map(|c| RawChunk {
            plain: c.plain,
            count: c.count,
            anchor: &c.anchor,
            buf: &c.buf,
        })
    }

    /// Adopts chunks read from a snapshot (one allocation and a copy each) after checking
    /// them: `None` if one is malformed. A list with a chunk that `fill` would not allow is
    /// rebuilt with `fill`.
    pub fn from_raw_chunks<'a>(
        raw: impl ExactSizeIterator<Item = RawChunk<'a>>,
        fill: i64,
    ) -> Option<ListValue> {
        let mut chunks = VecDeque::with_capacity(raw.len());
        let (mut len, mut fits) = (0usize, true);
        for r in raw {
            r.check()?;
            fits &= r.fits(fill);
            len = len.checked_add(r.count as usize)?;
            chunks.push_back(Chunk {
                buf: r.buf.to_vec(),
                count: r.count,
                anchor: r.anchor.into(),
                plain: r.plain,
            });
        }
        let l = ListValue {
            chunks: Box::new(chunks),
            len,
        };
        if fits {
            return Some(l);
        }
        let items: Vec<Cow<'_, [u8]>> = l.iter().collect();
        Some(ListValue::from_iter(items.iter().map(|c| &c[..]), fill))
    }

    /// Name OBJECT ENCODING reports (always `quicklist` in Redis 7.0).
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of packed chunks (quicklist nodes), for DEBUG-style introspection and tests.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Adds an element at one end.
    pub fn push(&mut self, end: End, data: &[u8], fill: i64) {
        let chunk = match end {
            End::Head => self.chunks.front_mut(),
            End::Tail => self.chunks.back_mut(),
        };
        match chunk {
            Some(c) if c.allows(data.len(), fill) => match end {
                End::Head => c.push_front(data),
                End::Tail => c.push_back(data),
            },
            _ => {
                let c = Chunk::single(data);
                match end {
                    End::Head => self.chunks.push_front(c),
                    End::Tail => self.chunks.push_back(c),
                }
            }
        }
        self.len += 1;
    }

    /// Removes and returns the element at one end.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let (v, empty) = match end {
            End::Head => {
                let c = self.chunks.front_mut()?;
                (c.pop_front(), c.count == 0)
            }
            End::Tail => {
                let c = self.chunks.back_mut()?;
                (c.pop_back(), c.count == 0)
            }
        };
        if empty {
            match end {
                End::Head => self.chunks.pop_front(),
                End::Tail => self.chunks.pop_back(),
            };
        }
        self.len -= 1;
        Some(v)
    }

    /// Iterates from head to tail. Elements stored with their chunk's prefix come back owned.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Cow<'_, [u8]>> + '_ {
        self.chunks.iter().flat_map(Chunk::iter)
    }

    /// Iterates from element `start` (0-based from the head) to the tail, skipping whole chunks.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = Cow<'_, [u8]>> + '_ {
        let (ci, off) = self.locate(start).unwrap_or((self.chunks.len(), 0));
        self.chunks.range(ci..).flat_map(Chunk::iter).skip(off)
    }

    /// Iterates from element `start` (0-based from the head) towards the head.
    pub fn iter_rev_from(&self, start: usize) -> impl Iterator<Item = Cow<'_, [u8]>> + '_ {
        let (ci, off) = self.locate(start).unwrap_or((0, 0));
        let take = if start < self.len { ci + 1 } else { 0 };
        let skip = if start < self.len { self.chunks[ci].count as usize - 1 - off } else { 0 };
        self.chunks.range(..take).rev().flat_map(|c| c.iter().rev()).skip(skip)
    }

    /// Calls `f` with up to `n` elements from element `start` towards the tail, rebuilding
    /// prefixed elements in one reused buffer (LRANGE: no allocation per element).
    pub fn for_range(&self, start: usize, n: usize, mut f: impl FnMut(&[u8])) {
        let Some((ci, mut off)) = self.locate(start) else {
            return;
        };
        let mut left = n;
        let mut scratch = Vec::new();
        for c in self.chunks.range(ci..) {
            let mut pos = 0;
            while pos < c.buf.len() && left > 0 {
                let (shared, suffix, end) = entry_parts(&c.buf, pos);
                pos = end;
                if off > 0 {
                    off -= 1;
                    continue;
                }
                if shared == 0 {
                    f(suffix);
                } else {
                    scratch.clear();
                    scratch.extend_from_slice(&c.anchor[..shared]);
                    scratch.extend_from_slice(suffix);
                    f(&scratch);
                }
                left -= 1;
            }
            if left == 0 {
                break;
            }
        }
    }

    /// Chunk index and offset inside it of element `idx`.
    fn locate(&self, mut idx: usize) -> Option<(usize, usize)> {
        if idx >= self.len {
            return None;
        }
        for (i, c) in self.chunks.iter().enumerate() {
            let n = c.count as usize;
            if idx < n {
                return Some((i, idx));
            }
            idx -= n;
        }
        None
    }

    /// The element at `idx` (0-based from the head).
    pub fn get(&self, idx: usize) -> Option<Cow<'_, [u8]>> {
        let (ci, off) = self.locate(idx)?;
        self.chunks[ci].iter().nth(off)
    }

    /// Replaces the chunk at `ci` by the given entries, repacked with `fill`.
    fn rebuild_chunk(&mut self, ci: usize, entries: &[&[u8]], fill: i64) {
        let mut fresh: Vec<Chunk> = Vec::new();
        for e in entries {
            match fresh.last_mut() {
                Some(c) if c.allows(e.len(), fill) => c.push_back(e),
                _ => fresh.push(Chunk::single(e)),
            }
        }
        self.chunks.remove(ci);
        for (i, c) in fresh.into_iter().enumerate() {
            self.chunks.insert(ci + i, c);
        }
    }

    /// Applies `edit` to the entries of the chunk holding element `idx` (given its offset in
    /// that chunk) and repacks the chunk.
    fn edit_chunk(
        &mut self,
        idx: usize,
        fill: i64,
        edit: impl FnOnce(&mut Vec<Vec<u8>>, usize),
    ) -> bool {
        let Some((ci, off)) = self.locate(idx) else {
            return false;
        };
        let mut entries: Vec<Vec<u8>> = self.chunks[ci].iter().map(Cow::into_owned).collect();
        let before = entries.len();
        edit(&mut entries, off);
        self.len = self.len + entries.len() - before;
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        self.rebuild_chunk(ci, &refs, fill);
        true
    }

    /// Overwrites the element at `idx`. Returns false if out of range.
    pub fn set(&mut self, idx: usize, data: &[u8], fill: i64) -> bool {
        self.edit_chunk(idx, fill, |v, off| v[off] = data.to_vec())
    }

    /// Heap bytes used (MEMORY USAGE): every chunk's buffer plus its bookkeeping.
    pub fn heap_size(&self) -> usize {
        self.chunks.iter().map(|c| c.buf.capacity() + std::mem::size_of_val(c)).sum()
    }

    /// Inserts `data` before (or after) the element at `idx`.
    pub fn insert(&mut self, idx: usize, after: bool, data: &[u8], fill: i64) -> bool {
        self.edit_chunk(idx, fill, |v, off| v.insert(off + usize::from(after), data.to_vec()))
    }

    /// Position of the first element equal to `pivot`.
    pub fn position(&self, pivot: &[u8]) -> Option<usize> {
        let (mut i, mut found) = (0, None);
        self.for_range(0, self.len, |e| {
            if found.is_none() && e == pivot {
                found = Some(i);
            }
            i += 1;
        });
        found
    }

    /// Removes up to `count` elements equal to `value` (0 = all), scanning from the head, or
    /// from the tail when `from_tail`. Returns how many were removed.
    pub fn remove_matching(&mut self, value: &[u8], count: usize, from_tail: bool, fill: i64) -> usize {
        let mut removed = 0;
        let mut keep: Vec<bool> = Vec::with_capacity(self.len);
        let mut decide = |e: Cow<'_, [u8]>| {
            let hit = *e == *value && (count == 0 || removed < count);
            removed += usize::from(hit);
            !hit
        };
        if from_tail {
            keep.extend(self.iter().rev().map(&mut decide));
            keep.reverse();
        } else {
            keep.extend(self.iter().map(&mut decide));
        }
        if removed > 0 {
            let mut flags = keep.into_iter();
            let kept: Vec<_> = self.iter().filter(|_| flags.next().unwrap_or(true)).collect();
            *self = ListValue::from_iter(kept.iter().map(|e| &**e), fill);
        }
        removed
    }

    /// Keeps only elements `start..=end` (already clamped, `start <= end < len`), or empties
    /// the list when `range` is `None`.
    pub fn trim(&mut self, range: Option<(usize, usize)>) {
        let Some((start, end)) = range else {
            *self = ListValue::new();
            return;
        };
        self.drop_front(start);
        let tail = self.len - (end - start + 1);
        for _ in 0..tail {
            self.pop(End::Tail);
        }
    }

    /// Removes the first `n` elements, dropping whole chunks where possible.
    fn drop_front(&mut self, mut n: usize) {
        while n > 0 {
            let Some(c) = self.chunks.front() else { return };
            let cn = c.count as usize;
            if cn <= n {
                self.chunks.pop_front();
                self.len -= cn;
                n -= cn;
            } else {
                self.pop(End::Head);
                n -= 1;
            }
        }
    }

    /// Feeds the content into a digest (DEBUG DIGEST), in order.
    pub fn digest_into(&self, h: &mut sha1_smol::Sha1) {
        self.for_range(0, self.len, |e| {
            h.update(&(e.len() as u64).to_le_bytes());
            h.update(e);
        });
    }

    /// Bytes this value would take serialized (DEBUG OBJECT's serializedlength): one packed
    /// blob per chunk plus its length header.
    pub fn serialized_len(&self) -> usize {
        1 + self.chunks.iter().map(|c| c.buf.len() + 11 + 5).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(l: &ListValue) -> Vec<String> {
        l.iter().map(|e| String::from_utf8_lossy(&e).into_owned()).collect()
    }

    #[test]
    fn anchor_coding_matches_a_plain_deque() {
        use std::collections::VecDeque;
        let mut l = ListValue::new();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut seed = 7u64;
        let mut rnd = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for i in 0..4000 {
            let v = match rnd(3) {
                0 => format!("item:{}", rnd(1000)),
                1 => format!("x{i}"),
                _ => String::new(),
            }
            .into_bytes();
            match rnd(6) {
                0 => assert_eq!(l.pop(End::Head), model.pop_front()),
                1 => assert_eq!(l.pop(End::Tail), model.pop_back()),
                2 if !model.is_empty() => {
                    let at = rnd(model.len() as u64) as usize;
                    assert!(l.set(at, &v, -2));
                    model[at] = v;
                }
                3 => {
                    l.push(End::Head, &v, 128);
                    model.push_front(v);
                }
                _ => {
                    l.push(End::Tail, &v, -1);
                    model.push_back(v);
                }
            }
            assert_eq!(l.len(), model.len());
        }
        let got: Vec<Vec<u8>> = l.iter().map(Cow::into_owned).collect();
        assert_eq!(got, Vec::from(model.clone()));
        let back: Vec<Vec<u8>> = l.iter().rev().map(Cow::into_owned).collect();
        assert_eq!(back, model.iter().rev().cloned().collect::<Vec<_>>());
        let prefixed = ListValue::from_iter(
            (0..1000).map(|i| format!("item:{i}").into_bytes()).collect::<Vec<_>>().iter().map(
                |v| &v[..],
            ),
            -2,
        );
        let bytes: usize = prefixed.chunks.iter().map(|c| c.buf.len()).sum();
        assert!(bytes < 1000 * 7, "anchor-coded: {bytes}");
        assert_eq!(prefixed.get(999).as_deref(), Some(&b"item:999"[..]));
        let mut seen = Vec::new();
        l.for_range(3, 50, |e| seen.push(e.to_vec()));
        assert_eq!(seen, model.iter().skip(3).take(50).cloned().collect::<Vec<_>>());
        assert_eq!(l.position(&model[7]), model.iter().position(|e| *e == model[7]));
    }

    #[test]
    fn push_pop_both_ends_across_chunks() {
        let mut l = ListValue::new();
        for i in 0..1000 {
            l.push(End::Tail, format!("v{i}").as_bytes(), 5);
            l.push(End::Head, format!("h{i}").as_bytes(), 5);
        }
        assert_eq!(l.len(), 2000);
        assert!(l.chunk_count() >= 400);
        assert_eq!(l.get(0).as_deref(), Some(&b"h999"[..]));
        assert_eq!(l.get(1999).as_deref(), Some(&b"v999"[..]));
        assert_eq!(l.pop(End::Tail).as_deref(), Some(&b"v999"[..]));
        assert_eq!(l.pop(End::Head).as_deref(), Some(&b"h999"[..]));
        assert_eq!(l.iter().rev().next().as_deref(), Some(&b"v998"[..]));
        assert_eq!(l.iter_from(1997).count(), 1);
        assert_eq!(l.iter_rev_from(2).collect::<Vec<_>>(), vec![&b"h996"[..], b"h997", b"h998"]);
    }

    #[test]
    fn large_entries_use_long_varints() {
        let big = vec![b'x'; 100_000];
        let mut l = ListValue::new();
        l.push(End::Tail, b"a", -2);
        l.push(End::Tail, &big, -2);
        l.push(End::Tail, b"b", -2);
        assert_eq!(l.chunk_count(), 3);
        assert_eq!(l.iter().rev().nth(1).map(|e| e.len()), Some(100_000));
        assert_eq!(l.pop(End::Tail).as_deref(), Some(&b"b"[..]));
        assert_eq!(l.pop(End::Tail).map(|v| v.len()), Some(100_000));
    }

    #[test]
    fn set_insert_remove_trim() {
        let mut l = ListValue::from_iter([&b"a"[..], b"b", b"a", b"c", b"a"], 2);
        assert!(l.set(1, b"B", 2));
        assert!(l.insert(3, true, b"d", 2));
        assert_eq!(items(&l), ["a", "B", "a", "c", "d", "a"]);
        assert_eq!(l.remove_matching(b"a", 2, true, 2), 2);
        assert_eq!(items(&l), ["a", "B", "c", "d"]);
        l.trim(Some((1, 2)));
        assert_eq!(items(&l), ["B", "c"]);
        l.trim(None);
        assert!(l.is_empty());
    }

    /// Checks the content against `model` and the chunk invariants: every large element
    /// sits alone in a plain chunk, and a plain chunk holds one element.
    fn check(l: &ListValue, model: &[Vec<u8>], threshold: usize) {
        let got: Vec<Vec<u8>> = l.iter().map(Cow::into_owned).collect();
        assert_eq!(got, model);
        assert_eq!(l.len(), model.len());
        assert_eq!(l.chunks.iter().map(|c| c.count as usize).sum::<usize>(), model.len());
        for c in l.chunks.iter() {
            assert!(c.count > 0);
            if c.plain {
                assert_eq!(c.count, 1);
            }
            for e in c.iter() {
                if e.len() >= threshold {
                    assert!(c.plain && c.count == 1, "large element packed");
                }
            }
        }
    }

    fn element(rng: &mut impl rand::Rng) -> Vec<u8> {
        let len = if rng.gen_bool(0.4) { rng.gen_range(5..40) } else { rng.gen_range(0..5) };
        (0..len).map(|i| b"xyz"[(i + rng.gen_range(0..2)) % 3]).collect()
    }

    #[test]
    fn plain_chunks_match_a_vec_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        assert!(set_packed_threshold(5));
        for fill in [-2i64, 1, 3] {
            let mut l = ListValue::new();
            let mut m: Vec<Vec<u8>> = Vec::new();
            for _ in 0..3000 {
                let e = element(&mut rng);
                let n = m.len();
                match rng.gen_range(0..10) {
                    0 => {
                        l.push(End::Head, &e, fill);
                        m.insert(0, e);
                    }
                    1 | 2 => {
                        l.push(End::Tail, &e, fill);
                        m.push(e);
                    }
                    3 => assert_eq!(l.pop(End::Head), (n > 0).then(|| m.remove(0))),
                    4 => assert_eq!(l.pop(End::Tail), m.pop()),
                    5 if n > 0 => {
                        let i = rng.gen_range(0..n);
                        assert!(l.set(i, &e, fill));
                        m[i] = e;
                    }
                    6 if n > 0 => {
                        let (i, after) = (rng.gen_range(0..n), rng.gen_bool(0.5));
                        assert!(l.insert(i, after, &e, fill));
                        m.insert(i + usize::from(after), e);
                    }
                    7 if n > 0 => {
                        let v = m[rng.gen_range(0..n)].clone();
                        let (count, tail) = (rng.gen_range(0..3), rng.gen_bool(0.5));
                        let removed = l.remove_matching(&v, count, tail, fill);
                        let mut idx: Vec<usize> = (0..n).filter(|&i| m[i] == v).collect();
                        if tail {
                            idx.reverse();
                        }
                        idx.truncate(if count == 0 { n } else { count });
                        assert_eq!(removed, idx.len());
                        idx.sort_unstable();
                        for i in idx.into_iter().rev() {
                            m.remove(i);
                        }
                    }
                    8 if n > 2 && rng.gen_bool(0.1) => {
                        let start = rng.gen_range(0..n);
                        let end = rng.gen_range(start..n);
                        l.trim(Some((start, end)));
                        m = m[start..=end].to_vec();
                    }
                    9 if n > 0 => {
                        let i = rng.gen_range(0..n);
                        assert_eq!(l.get(i).as_deref(), Some(&m[i][..]));
                        assert_eq!(l.position(&m[i]), m.iter().position(|x| *x == m[i]));
                        let fwd: Vec<Vec<u8>> = l.iter_from(i).map(Cow::into_owned).collect();
                        assert_eq!(fwd, m[i..]);
                        let back: Vec<Vec<u8>> =
                            l.iter_rev_from(i).map(Cow::into_owned).collect();
                        let want: Vec<Vec<u8>> = m[..=i].iter().rev().cloned().collect();
                        assert_eq!(back, want);
                        let mut range = Vec::new();
                        l.for_range(i, 3, |e| range.push(e.to_vec()));
                        assert_eq!(range, m[i..(i + 3).min(n)]);
                    }
                    _ => {}
                }
                check(&l, &m, 5);
            }
        }
        assert!(set_packed_threshold(0));
        assert_eq!(packed_threshold(), DEFAULT_PACKED_THRESHOLD);
    }

    #[test]
    fn lset_splits_a_packed_chunk_around_a_plain_element() {
        assert!(set_packed_threshold(5));
        let mut l = ListValue::from_iter([&b"aa"[..], b"bb", b"cc", b"dd", b"ee"], -2);
        assert_eq!(l.chunk_count(), 1);
        assert!(l.set(2, b"eeeeeeeeee", -2));
        assert_eq!(items(&l), ["aa", "bb", "eeeeeeeeee", "dd", "ee"]);
        assert_eq!(l.chunk_count(), 3);
        assert!(l.chunks[1].plain);
        // plain -> packed: the element is stored packed again.
        assert!(l.set(2, b"c", -2));
        assert!(!l.chunks.iter().any(|c| c.plain));
        assert_eq!(items(&l), ["aa", "bb", "c", "dd", "ee"]);
        // A small push never joins a plain chunk.
        let mut p = ListValue::new();
        p.push(End::Tail, b"xxxxxxxxxx", -2);
        p.push(End::Tail, b"a", -2);
        p.push(End::Head, b"b", -2);
        assert_eq!(p.chunk_count(), 3);
        assert!(set_packed_threshold(0));
    }

    #[test]
    fn packed_threshold_range() {
        assert!(!set_packed_threshold((1 << 32) - (1 << 20) + 1));
        assert!(set_packed_threshold((1 << 32) - (1 << 20)));
        assert_eq!(packed_threshold(), (1 << 32) - (1 << 20));
        assert!(set_packed_threshold(1));
        assert_eq!(packed_threshold(), 1);
        assert!(set_packed_threshold(0));
        assert_eq!(packed_threshold(), 1 << 30);
    }

    #[test]
    fn raw_chunks_round_trip_and_damage_is_refused_or_harmless() {
        let items: Vec<Vec<u8>> = (0..300)
            .map(|i| format!("job:{i}:{}", "x".repeat(i % 40)).into_bytes())
            .collect();
        let l = ListValue::from_iter(items.iter().map(|v| &v[..]), -1);
        assert!(l.chunk_count() > 1);
        let raw: Vec<RawChunk<'_>> = l.raw_chunks().collect();
        let back = ListValue::from_raw_chunks(raw.iter().copied(), -1).unwrap();
        assert_eq!(back, l);
        // Chunks too big for a smaller fill: rebuilt with it, same elements.
        let small = ListValue::from_raw_chunks(raw.iter().copied(), 4).unwrap();
        assert!(small.chunk_count() > l.chunk_count());
        assert_eq!(items_of(&small), items_of(&l));
        let mut bad = raw[0];
        bad.count += 1;
        assert!(ListValue::from_raw_chunks([bad].into_iter(), -1).is_none());
        bad = raw[0];
        bad.plain = true;
        assert!(ListValue::from_raw_chunks([bad].into_iter(), -1).is_none());
        bad.anchor = &[b'a'; ANCHOR_MAX + 1];
        assert!(ListValue::from_raw_chunks([bad].into_iter(), -1).is_none());
        let first = raw[0];
        let n = first.count as usize;
        for buf in crate::keyspace::hash::tests::damaged(first.buf) {
            let c = RawChunk { buf: &buf, ..first };
            if let Some(l) = ListValue::from_raw_chunks([c].into_iter(), -1) {
                let fwd = items_of(&l);
                let mut rev: Vec<_> = l.iter().rev().map(|e| e.into_owned()).collect();
                rev.reverse();
                assert_eq!((fwd.len(), &fwd), (n, &rev));
            }
        }
    }

    fn items_of(l: &ListValue) -> Vec<Vec<u8>> {
        l.iter().map(|e| e.into_owned()).collect()
    }
}
