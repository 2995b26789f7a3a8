//! The key table: extendible hashing over small segments, so that growth never stalls.
//!
//! A single hash table of 10 million keys would rehash all of them in one resize (hundreds of
//! milliseconds with the server frozen). Here the table is a directory of up to 2^depth pointers
//! to segments; a segment holds at most [`SEG_MAX`] entries and, when full, splits in two by one
//! more hash bit. Growing the table therefore costs one segment split (about 0.1 ms) at a time,
//! plus an occasional directory doubling that copies only pointers.
//!
//! Inside a segment, entries sit densely in fixed-size chunks (see [`Segment`]) and a small
//! index maps hashes to `u16` slot numbers, one cache line per probe (see `slot_index`). The
//! dense layout gives O(1) random sampling (RANDOMKEY, eviction, active expiry), cheap
//! iteration, and an index that costs 3.2 bytes a bucket instead of a whole entry. Slots do not store hashes: the few operations that need
//! the hash of a stored key (a split, an index rehash, SCAN positions) recompute it.
//!
//! Measured with `examples/growth_stall.rs` (10 million keys, release build): a split costs
//! about 0.13-0.2 ms; no single insert does more table work than one split.
//!
//! **SCAN cursors** are positions in hash space: the position of a key is its 32-bit hash with the
//! bits reversed. Segments select on the *low* hash bits, so every segment covers one contiguous
//! range of positions, and a split only cuts a range in two. A scan walks positions upwards and
//! returns every key whose position lies below the cursor it hands back, so a key that exists for
//! the whole scan is returned exactly once however the table grows in between (Redis gives the
//! same guarantee with its reverse-binary bucket cursor, but may repeat keys).

use std::cell::RefCell;
use std::hash::BuildHasher;

use rand::Rng;

use super::slot_index::SlotIndex;
use crate::util::prefetch::prefetch;

/// Owned key bytes. Keys of up to [`INLINE_KEY`] bytes live inside the slot itself: most keys
/// are short (`user:1042`, `session:9f8e...`), and keeping them inline saves an allocation per
/// key and, more importantly, the cache miss of chasing a pointer on every lookup.
///
/// A key also carries a 32-bit `meta` word that the [`Table`] storing it lends to its user (the
/// keyspace keeps each key's LRU/LFU data and an "has expiry" bit there; 0 elsewhere). It sits
/// in bytes the enum would otherwise pad, so it costs nothing: a main-table slot is this key
/// plus a 24-byte value, 48 bytes. Equality and hashing use the bytes only.
#[derive(Clone)]
pub struct Key(KeyRepr);

#[derive(Clone)]
enum KeyRepr {
    Inline { meta: u32, len: u8, buf: [u8; INLINE_KEY] },
    /// A key a little too long for `Inline`, kept inline without a meta word: tables whose
    /// user never asks for the meta word (hash fields, sorted-set members) store keys of up to
    /// [`INLINE_KEY_NO_META`] bytes without an allocation. Asking for the meta word moves the
    /// key to the heap.
    InlineLong { len: u8, buf: [u8; INLINE_KEY_NO_META] },
    Heap { meta: u32, bytes: Box<[u8]> },
}

/// Longest key stored inline with its meta word (the key is then 24 bytes, like a `Vec`).
pub const INLINE_KEY: usize = 18;
/// Longest key stored inline in a table that does not use the meta word.
pub const INLINE_KEY_NO_META: usize = 22;

impl Key {
    pub fn new(b: &[u8]) -> Key {
        if b.len() <= INLINE_KEY {
            let mut buf = [0u8; INLINE_KEY];
            buf[..b.len()].copy_from_slice(b);
            Key(KeyRepr::Inline { meta: 0, len: b.len() as u8, buf })
        } else if b.len() <= INLINE_KEY_NO_META {
            let mut buf = [0u8; INLINE_KEY_NO_META];
            buf[..b.len()].copy_from_slice(b);
            Key(KeyRepr::InlineLong { len: b.len() as u8, buf })
        } else {
            Key(KeyRepr::Heap { meta: 0, bytes: b.into() })
        }
    }

    /// The meta word (see the type's docs).
    #[inline]
    pub fn meta(&self) -> u32 {
        match &self.0 {
            KeyRepr::Inline { meta, .. } | KeyRepr::Heap { meta, .. } => *meta,
            KeyRepr::InlineLong { .. } => 0,
        }
    }

    #[inline]
    fn meta_mut(&mut self) -> &mut u32 {
        if let KeyRepr::InlineLong { len, buf } = &self.0 {
            let bytes = buf[..usize::from(*len)].into();
            self.0 = KeyRepr::Heap { meta: 0, bytes };
        }
        match &mut self.0 {
            KeyRepr::Inline { meta, .. } | KeyRepr::Heap { meta, .. } => meta,
            KeyRepr::InlineLong { .. } => unreachable!("moved to the heap above"),
        }
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            KeyRepr::Inline { len, buf, .. } => &buf[..*len as usize],
            KeyRepr::InlineLong { len, buf } => &buf[..*len as usize],
            KeyRepr::Heap { bytes, .. } => bytes,
        }
    }

    /// Heap bytes owned beyond the key itself (MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        match &self.0 {
            KeyRepr::Inline { .. } | KeyRepr::InlineLong { .. } => 0,
            KeyRepr::Heap { bytes, .. } => bytes.len(),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Key {
        Key::new(b)
    }
}

impl From<Vec<u8>> for Key {
    fn from(v: Vec<u8>) -> Key {
        if v.len() <= INLINE_KEY_NO_META {
            Key::new(&v)
        } else {
            Key(KeyRepr::Heap { meta: 0, bytes: v.into_boxed_slice() })
        }
    }
}

/// Entries per segment before it splits. With `u16` slot numbers this must stay below 65536; at
/// 7168 a split moves about 3500 entries, which takes on the order of 0.1 ms.
pub const SEG_MAX: usize = 7168;

/// True if `key` was captured by the snapshot whose parity is `parity` (see [`Capture`]).
#[inline]
fn captured(key: &Key, parity: bool) -> bool {
    (key.meta() & SNAP_BIT != 0) == parity
}

#[inline]
fn set_captured(key: &mut Key, parity: bool) {
    let m = key.meta_mut();
    *m = if parity { *m | SNAP_BIT } else { *m & !SNAP_BIT };
}

/// Positions live in a 32-bit space; a cursor equal to this value means "done".
const POS_END: u64 = 1 << 32;

/// Slots per storage chunk: 128 main-table entries (48 bytes each) fill one allocator size class
/// (6 KiB) exactly, and a segment's slack is at most one partly filled chunk.
const CHUNK: usize = 128;

struct Slot<V> {
    /// The key, carrying the slot's meta word (see [`Key`]).
    key: Key,
    val: V,
}

/// A segment's slots sit in fixed-size chunks rather than one `Vec`: a `Vec` doubles, and
/// segments all split at about the same time (hashing spreads keys evenly), so a table of
/// single-`Vec` segments spends up to half its slot memory on capacity nobody uses. With chunks
/// the waste is at most one chunk per segment, and growth never copies slots. Only the first
/// chunk grows gradually, so small tables (a hash's fields) stay small. Every chunk but the last
/// is full, and at most one empty chunk is kept as a spare so that a push and a pop at a chunk
/// boundary don't allocate and free over and over.
struct Segment<V> {
    /// How many low hash bits all keys of this segment share.
    depth: u32,
    /// The running snapshot has not captured this segment yet (see [`Capture`]).
    pending: bool,
    /// Per-key capture: slots `0..unscanned` have not been walked by the snapshot yet. The walk
    /// goes from the end down, so the swap-remove of a slot (the last slot moves into the hole)
    /// only ever moves a walked, captured key into the unwalked part, never the reverse.
    unscanned: u32,
    index: SlotIndex,
    chunks: Vec<Vec<Slot<V>>>,
    len: usize,
}

type Hasher = foldhash::fast::RandomState;

/// The 32-bit hash of a key under a table's hasher.
#[inline]
fn hash32(hs: &Hasher, key: &[u8]) -> u32 {
    hs.hash_one(key) as u32
}

/// The SCAN position of `key` in a table hashing with `hs` (see the module docs), for a
/// container that scans its own small form in the same order before moving into a table.
pub fn scan_position(hs: &Hasher, key: &[u8]) -> u32 {
    hash32(hs, key).reverse_bits()
}

/// Spreads a 32-bit hash over 64 bits for the segment's index. All keys in a segment share their
/// low `depth` bits, so the index must not take its bucket from those bits directly.
#[inline]
fn mix(h: u32) -> u64 {
    (u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15)).rotate_left(32)
}

impl<V> Segment<V> {
    fn new(depth: u32, cap: usize) -> Self {
        Segment {
            depth,
            pending: false,
            unscanned: 0,
            index: SlotIndex::with_capacity(cap),
            chunks: Vec::new(),
            len: 0,
        }
    }

    #[inline]
    fn slot(&self, i: usize) -> &Slot<V> {
        &self.chunks[i / CHUNK][i % CHUNK]
    }

    #[inline]
    fn slot_mut(&mut self, i: usize) -> &mut Slot<V> {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }

    fn slots(&self) -> impl Iterator<Item = &Slot<V>> + '_ {
        self.chunks.iter().flatten()
    }

    #[inline]
    fn find(&self, h: u32, key: &[u8]) -> Option<usize> {
        self.index
            .find(mix(h), |i| &*self.slot(i as usize).key == key)
            .map(usize::from)
    }

    /// Appends a slot at position `len`, opening a new chunk when the last one is full.
    fn push_slot(&mut self, slot: Slot<V>) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => {
                if c.len() == c.capacity() {
                    // Only the first chunk is ever short of capacity: grow it by doubling.
                    let want = (c.capacity() * 2).clamp(4, CHUNK);
                    c.reserve_exact(want - c.len());
                }
                c.push(slot);
            }
            _ => {
                let mut c = Vec::with_capacity(if self.chunks.is_empty() { 4 } else { CHUNK });
                c.push(slot);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    fn push(&mut self, hs: &Hasher, h: u32, key: Key, val: V) -> usize {
        let i = self.len;
        self.push_slot(Slot { key, val });
        let chunks = &self.chunks;
        // The closure only runs when the index grows or rehashes in place (rare: a split gives
        // each half a full-size index), so re-hashing keys there beats storing every hash.
        self.index.insert(mix(h), i as u16, |j| {
            mix(hash32(hs, &chunks[j as usize / CHUNK][j as usize % CHUNK].key))
        });
        i
    }

    /// Removes and returns the last slot, dropping a spare empty chunk first.
    fn pop_slot(&mut self) -> Slot<V> {
        if self.chunks.len() > 1 && self.chunks.last().is_some_and(Vec::is_empty) {
            self.chunks.pop();
        }
        self.len -= 1;
        match self.chunks.last_mut().and_then(Vec::pop) {
            Some(s) => s,
            None => unreachable!("pop from an empty segment"),
        }
    }

    /// Removes slot `i`, whose key hashes to `h`, moving the last slot into its place.
    fn remove_at(&mut self, hs: &Hasher, h: u32, i: usize) -> Slot<V> {
        if !self.index.update(mix(h), i as u16, || None) {
            unreachable!("slot {i} missing from its index");
        }
        let last = self.len - 1;
        if i != last {
            let lh = hash32(hs, &self.slot(last).key);
            self.index.update(mix(lh), last as u16, || Some(i as u16));
        }
        let tail = self.pop_slot();
        if i == last {
            tail
        } else {
            std::mem::replace(self.slot_mut(i), tail)
        }
    }
}

/// A hash table from byte-string keys to `V` that grows one small segment at a time.
pub struct Table<V> {
    /// Segment number for each value of the low `global_depth` hash bits.
    dir: Vec<u32>,
    global_depth: u32,
    segs: Vec<Segment<V>>,
    len: usize,
    hasher: foldhash::fast::RandomState,
    /// Bumped by every insert and removal (which may move slots); see [`ScanMemo`].
    version: u64,
    scan_memo: RefCell<ScanMemo>,
    /// Set while a snapshot is being taken: the write barrier of [`Capture`].
    capture: Option<Box<Capture<V>>>,
    /// Value of [`SNAP_BIT`] that means "captured" (per-key capture): flipped at each start.
    parity: bool,
}

/// A running snapshot's hold on one table: the write barrier that makes a fork-less snapshot
/// point-in-time.
///
/// When a snapshot starts, every segment is marked pending, and the snapshot encodes pending
/// segments on its own, a few at a time, between batches. Before any `&mut` access that could
/// change point-in-time data not encoded yet, the barrier encodes it first, as it is at that
/// instant. Two granularities:
///
/// - **per key** (the main table): each key carries a captured bit ([`SNAP_BIT`] of its meta
///   word, compared with the table's parity, which flips at each snapshot start so that no
///   pass over the keys is needed). A write encodes just the key it touches; keys inserted
///   after the snapshot point are born captured. So what a write load forces out early is
///   only the keys it actually changes, and the extra memory is their records in flight.
/// - **per segment** (the expires table, whose entries are 8 bytes): the first change to a
///   pending segment encodes the whole segment.
///
/// Either way every entry present at the snapshot point is encoded exactly once, as it was at
/// that point. (Dragonfly's versioned-bucket snapshot works the same way.)
pub struct Capture<V> {
    /// Encodes one entry as a snapshot record.
    encode: fn(&Key, &V, &mut Vec<u8>),
    /// Starts loading what `encode` will read of an entry outside its slot (a value's heap
    /// bytes): the capture walk calls it [`WARM_AHEAD`] slots before encoding the entry, so
    /// that encoding is not one cache miss after another.
    warm: fn(&Key, &V),
    /// Records captured and not yet collected by the snapshot.
    pub out: Vec<u8>,
    /// Segments still pending.
    remaining: usize,
    /// What the records are, for the snapshot (its database number).
    pub tag: u32,
    per_key: bool,
}

impl<V> Capture<V> {
    /// Segments not captured yet.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

/// How many slots ahead of the one it encodes the capture walk warms (see [`Capture::warm`]):
/// enough misses in flight to cover a memory round trip while encoding 64-byte values.
const WARM_AHEAD: usize = 16;

/// Meta-word bit a [`Table`] keeps for itself: "captured by the snapshot of parity 1". Users of
/// the meta word must preserve it.
pub const SNAP_BIT: u32 = 1 << 30;

/// SCAN's memo of one segment's slots sorted by position. Slots do not store their hash, so
/// finding the next keys of a segment means hashing all of its keys; a scan with a small COUNT
/// visits the same segment many times in a row, and while the table is unchanged the sorted
/// positions from the first visit serve the rest.
#[derive(Default)]
struct ScanMemo {
    seg: usize,
    version: u64,
    valid: bool,
    /// (position, slot) pairs, ascending.
    pos: Vec<(u32, u32)>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Table<V> {
    pub fn new() -> Self {
        Table {
            dir: vec![0],
            global_depth: 0,
            segs: vec![Segment::new(0, 0)],
            len: 0,
            hasher: foldhash::fast::RandomState::default(),
            version: 0,
            scan_memo: RefCell::default(),
            capture: None,
            parity: false,
        }
    }

    /// An empty table hashing with `hasher`: a set moving from its small form into a table
    /// keeps its hash seed, so SCAN positions (see [`scan_position`]) carry over.
    pub fn with_hasher(hasher: foldhash::fast::RandomState) -> Self {
        Table {
            hasher,
            ..Table::new()
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u32 {
        hash32(&self.hasher, key)
    }

    #[inline]
    fn seg_of(&self, h: u32) -> usize {
        let mask = (1u64 << self.global_depth) - 1;
        self.dir[(u64::from(h) & mask) as usize] as usize
    }

    /// Starts loading what the lookups of `keys` will read, so that a batch's cache misses
    /// overlap instead of being paid one after the other by its commands. Three passes over
    /// the batch, each needing what the one before loaded: every key's index line, then the
    /// slot its lookup will most likely compare, then, for keys too long to be stored in the
    /// slot (see [`INLINE_KEY`]), the stored key's bytes. Each key is hashed once.
    pub fn prefetch_batch(&self, keys: &[&[u8]]) {
        let hashes: smallvec::SmallVec<[u32; 16]> = keys.iter().map(|k| self.hash(k)).collect();
        for &h in &hashes {
            if let Some(line) = self.segs[self.seg_of(h)].index.home_line(mix(h)) {
                prefetch(line);
            }
        }
        // The third pass reuses the slots found here rather than looking them up again.
        let slots: smallvec::SmallVec<[Option<&Slot<V>>; 16]> = hashes
            .iter()
            .map(|&h| {
                let slot = self.candidate_slot(h);
                if let Some(s) = slot {
                    prefetch(s);
                }
                slot
            })
            .collect();
        for (k, slot) in keys.iter().zip(&slots) {
            if let Some(slot) = slot.filter(|_| k.len() > INLINE_KEY) {
                prefetch(slot.key.as_bytes().as_ptr());
            }
        }
    }

    /// The slot a lookup of hash `h` compares first, if any.
    #[inline]
    fn candidate_slot(&self, h: u32) -> Option<&Slot<V>> {
        let seg = &self.segs[self.seg_of(h)];
        let i = usize::from(seg.index.first_candidate(mix(h))?);
        seg.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK))
    }

    #[inline]
    fn locate(&self, key: &[u8]) -> (u32, usize, Option<usize>) {
        let h = self.hash(key);
        let s = self.seg_of(h);
        (h, s, self.segs[s].find(h, key))
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        let (_, s, i) = self.locate(key);
        i.map(|i| &self.segs[s].slot(i).val)
    }

    pub fn get_key_value(&self, key: &[u8]) -> Option<(&Key, &V)> {
        let (_, s, i) = self.locate(key);
        i.map(|i| {
            let slot = self.segs[s].slot(i);
            (&slot.key, &slot.val)
        })
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let (_, s, i) = self.locate(key);
        self.barrier(s, i);
        i.map(move |i| &mut self.segs[s].slot_mut(i).val)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.locate(key).2.is_some()
    }

    /// Inserts or replaces. Returns the previous value; the stored key is kept on replace.
    pub fn insert(&mut self, key: &[u8], val: V) -> Option<V> {
        let (h, s, i) = self.locate(key);
        self.barrier(s, i);
        if let Some(i) = i {
            return Some(std::mem::replace(&mut self.segs[s].slot_mut(i).val, val));
        }
        self.insert_new(h, s, key, val);
        None
    }

    /// Returns the value for `key`, inserting `make()` first if it is absent. The flag says
    /// whether an insert happened.
    pub fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> V) -> (&mut V, bool) {
        let (h, s, i) = self.locate(key);
        self.barrier(s, i);
        match i {
            Some(i) => (&mut self.segs[s].slot_mut(i).val, false),
            None => {
                let (s, i) = self.insert_new(h, s, key, make());
                (&mut self.segs[s].slot_mut(i).val, true)
            }
        }
    }

    /// Looks `key` up once; if `expired(&value)` holds, removes the entry and returns it as
    /// `Err`, otherwise returns the value. This is the single-probe path for lazy expiry.
    /// `expired` sees the slot's meta word and value; a live entry comes back with both.
    #[allow(clippy::type_complexity)]
    pub fn get_mut_unless(
        &mut self,
        key: &[u8],
        expired: impl FnOnce(u32, &V) -> bool,
    ) -> Option<Result<(&mut u32, &mut V), (Key, V)>> {
        let (h, s, i) = self.locate(key);
        let i = i?;
        self.barrier(s, Some(i));
        let sl = self.segs[s].slot(i);
        if expired(sl.key.meta(), &sl.val) {
            let slot = self.segs[s].remove_at(&self.hasher, h, i);
            self.len -= 1;
            self.version += 1;
            return Some(Err((slot.key, slot.val)));
        }
        let sl = self.segs[s].slot_mut(i);
        Some(Ok((sl.key.meta_mut(), &mut sl.val)))
    }

    /// The meta word and value of `key` (see [`Key`] for the meta word).
    pub fn get_meta_mut(&mut self, key: &[u8]) -> Option<(&mut u32, &mut V)> {
        let (_, s, i) = self.locate(key);
        let i = i?;
        self.barrier(s, Some(i));
        let sl = self.segs[s].slot_mut(i);
        Some((sl.key.meta_mut(), &mut sl.val))
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with), also lending the meta word (0
    /// for a new entry).
    pub fn get_or_insert_meta(
        &mut self,
        key: &[u8],
        make: impl FnOnce() -> V,
    ) -> (&mut u32, &mut V, bool) {
        let (h, s, i) = self.locate(key);
        self.barrier(s, i);
        let (s, i, inserted) = match i {
            Some(i) => (s, i, false),
            None => {
                let (s, i) = self.insert_new(h, s, key, make());
                (s, i, true)
            }
        };
        let sl = self.segs[s].slot_mut(i);
        (sl.key.meta_mut(), &mut sl.val, inserted)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    pub fn remove_entry(&mut self, key: &[u8]) -> Option<(Key, V)> {
        let (h, s, i) = self.locate(key);
        let i = i?;
        self.barrier(s, Some(i));
        let slot = self.segs[s].remove_at(&self.hasher, h, i);
        self.len -= 1;
        self.version += 1;
        Some((slot.key, slot.val))
    }

    fn insert_new(&mut self, h: u32, mut s: usize, key: &[u8], val: V) -> (usize, usize) {
        if self.segs[s].len >= SEG_MAX {
            self.split(s);
            s = self.seg_of(h);
        }
        self.len += 1;
        self.version += 1;
        let mut k = Key::new(key);
        if self.parity {
            // Not part of the running (or last) snapshot: see [`Capture`].
            *k.meta_mut() |= SNAP_BIT;
        }
        (s, self.segs[s].push(&self.hasher, h, k, val))
    }

    /// Splits segment `s` on its next hash bit, doubling the directory first if needed.
    fn split(&mut self, s: usize) {
        let depth = self.segs[s].depth;
        if depth == self.global_depth {
            // Directory doubling: entry i + 2^d points where entry i points.
            let old = self.dir.len();
            self.dir.extend_from_within(0..old);
            self.global_depth += 1;
        }
        let bit = 1u32 << depth;
        let old_chunks = std::mem::take(&mut self.segs[s].chunks);
        // Both halves start at full capacity: each holds about SEG_MAX / 2 entries, so a smaller
        // capacity would be outgrown by the very next insert, and that insert would pay for a
        // `Vec` copy and an index rehash on top of the split just done.
        let mut low = Segment::new(depth + 1, SEG_MAX);
        let mut high = Segment::new(depth + 1, SEG_MAX);
        for sl in old_chunks.into_iter().flatten() {
            let h = hash32(&self.hasher, &sl.key);
            if h & bit == 0 {
                low.push(&self.hasher, h, sl.key, sl.val);
            } else {
                high.push(&self.hasher, h, sl.key, sl.val);
            }
        }
        // In per-key capture a pending segment's keys stay pending wherever they go.
        if self.segs[s].pending {
            low.pending = true;
            high.pending = true;
            low.unscanned = low.len as u32;
            high.unscanned = high.len as u32;
            if let Some(c) = self.capture.as_deref_mut() {
                c.remaining += 1;
            }
        }
        let hi_idx = self.segs.len() as u32;
        self.segs[s] = low;
        self.segs.push(high);
        // Every directory entry that pointed at `s` and has the new bit set now points at `high`.
        for (i, d) in self.dir.iter_mut().enumerate() {
            if *d as usize == s && (i as u32) & bit != 0 {
                *d = hi_idx;
            }
        }
    }

    /// Removes everything and releases the memory.
    pub fn clear(&mut self) {
        let capture = self.detach_capture();
        let (hasher, parity) = (std::mem::take(&mut self.hasher), self.parity);
        *self = Table::new();
        self.hasher = hasher;
        self.capture = capture;
        self.parity = parity;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &V)> + '_ {
        self.segs
            .iter()
            .flat_map(|s| s.slots().map(|sl| (&sl.key, &sl.val)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Key, &mut V)> + '_ {
        self.capture_pending(usize::MAX);
        self.segs
            .iter_mut()
            .flat_map(|s| s.chunks.iter_mut().flatten().map(|sl| (&sl.key, &mut sl.val)))
    }

    /// Picks a random entry: a random segment (weighted by the share of hash space it covers,
    /// which tracks its share of keys), then a random slot in it.
    pub fn random_entry<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<(&Key, &V)> {
        if self.len == 0 {
            return None;
        }
        loop {
            let d = rng.gen_range(0..self.dir.len());
            let seg = &self.segs[self.dir[d] as usize];
            if seg.len == 0 {
                continue;
            }
            let sl = seg.slot(rng.gen_range(0..seg.len));
            return Some((&sl.key, &sl.val));
        }
    }

    /// Picks an entry with every entry exactly equally likely (SPOP, SRANDMEMBER), unlike
    /// [`Table::random_entry`], whose pick leans towards entries of emptier segments. A trial
    /// draws a segment uniformly and a slot number below [`SEG_MAX`], and keeps it if that slot
    /// is occupied: each entry has the same chance per trial, and the expected trial count is
    /// the capacity over the fill (under 2 for a grown table). A table left sparse by mass
    /// removal falls back, after a few misses, to an exact pick by rank (one pass over the
    /// segment lengths), so a pick never loops for long.
    pub fn random_entry_uniform<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<(&Key, &V)> {
        const TRIES: usize = 32;
        if self.len == 0 {
            return None;
        }
        let sl = if let [seg] = &self.segs[..] {
            seg.slot(rng.gen_range(0..seg.len))
        } else {
            let n = self.segs.len();
            let hit = (0..TRIES).find_map(|_| {
                let seg = &self.segs[rng.gen_range(0..n)];
                let i = rng.gen_range(0..SEG_MAX);
                (i < seg.len).then(|| seg.slot(i))
            });
            match hit {
                Some(sl) => sl,
                None => self.slot_by_rank(rng.gen_range(0..self.len)),
            }
        };
        Some((&sl.key, &sl.val))
    }

    /// The `r`-th slot (`r < len`) counting segment by segment.
    fn slot_by_rank(&self, mut r: usize) -> &Slot<V> {
        for seg in &self.segs {
            if r < seg.len {
                return seg.slot(r);
            }
            r -= seg.len;
        }
        unreachable!("rank {r} past the table's length")
    }

    /// Visits up to about `count` entries starting at `cursor` in hash-position order and
    /// returns the cursor to continue from (0 when the scan is complete). See the module docs
    /// for the guarantee.
    pub fn scan(&self, cursor: u64, count: usize, f: impl FnMut(&Key, &V)) -> u64 {
        let mut memo = self.scan_memo.borrow_mut();
        let next = self.scan_step(&mut memo, cursor, count, f);
        if next == 0 {
            // A finished scan frees the memo.
            *memo = ScanMemo::default();
        }
        next
    }

    fn scan_step(
        &self,
        memo: &mut ScanMemo,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&Key, &V),
    ) -> u64 {
        let count = count.max(1);
        let mut c = cursor;
        let mut budget = count;
        while c < POS_END {
            let pos = c as u32;
            let si = self.seg_of(pos.reverse_bits());
            let seg = &self.segs[si];
            let lmask = if seg.depth == 0 {
                0
            } else {
                u32::MAX >> (32 - seg.depth)
            };
            let start = u64::from((pos.reverse_bits() & lmask).reverse_bits());
            let end = start + (1u64 << (32 - seg.depth));
            if !(memo.valid && memo.seg == si && memo.version == self.version) {
                memo.pos.clear();
                memo.pos.extend(
                    seg.slots()
                        .enumerate()
                        .map(|(i, sl)| (hash32(&self.hasher, &sl.key).reverse_bits(), i as u32)),
                );
                memo.pos.sort_unstable();
                (memo.seg, memo.version, memo.valid) = (si, self.version, true);
            }
            let from = memo.pos.partition_point(|&(p, _)| u64::from(p) < c);
            let cand = &memo.pos[from..];
            if cand.len() <= budget {
                for &(_, i) in cand {
                    let sl = seg.slot(i as usize);
                    f(&sl.key, &sl.val);
                }
                budget -= cand.len();
                c = end;
                if budget == 0 {
                    break;
                }
                continue;
            }
            // More than the budget left in this segment: emit the `budget` lowest positions
            // (and any ties with the last one), then stop at the next distinct position.
            let cut = cand[budget - 1].0;
            let upto = cand.partition_point(|&(p, _)| p <= cut);
            for &(_, i) in &cand[..upto] {
                let sl = seg.slot(i as usize);
                f(&sl.key, &sl.val);
            }
            // If everything left in the segment tied with the cut (32-bit hash collisions), it
            // has all been emitted: continue after the segment, not at "done".
            return match cand.get(upto) {
                Some(&(p, _)) => u64::from(p),
                None if end >= POS_END => 0,
                None => end,
            };
        }
        if c >= POS_END {
            0
        } else {
            c
        }
    }

    /// Pre-sizes an empty table for about `n` entries (loaders know the count up front), so
    /// that filling it splits no segment: every split would re-hash and move half a segment.
    pub fn reserve(&mut self, n: usize) {
        if self.len != 0 || self.capture.is_some() {
            return;
        }
        // Segments filled to about 3/4 leave room before the first split.
        let per_seg = SEG_MAX * 3 / 4;
        let mut depth = 0;
        while (1usize << depth) * per_seg < n && depth < 24 {
            depth += 1;
        }
        if depth == 0 {
            return;
        }
        let cap = (n >> depth).min(SEG_MAX) + 16;
        self.global_depth = depth;
        self.dir = (0..1u32 << depth).collect();
        self.segs = (0..1usize << depth).map(|_| Segment::new(depth, cap)).collect();
    }

    /// Starts a snapshot's capture of this table (see [`Capture`]): every segment becomes
    /// pending. `tag` is handed back with the records; `per_key` picks the granularity.
    pub fn start_capture(
        &mut self,
        (encode, warm): (fn(&Key, &V, &mut Vec<u8>), fn(&Key, &V)),
        tag: u32,
        per_key: bool,
    ) {
        let mut remaining = 0;
        for seg in &mut self.segs {
            seg.pending = seg.len > 0;
            seg.unscanned = seg.len as u32;
            remaining += usize::from(seg.pending);
        }
        if per_key {
            self.parity = !self.parity;
        }
        let c = Capture { encode, warm, out: Vec::new(), remaining, tag, per_key };
        self.capture = Some(Box::new(c));
    }

    /// The running capture, if any (to collect its records).
    pub fn capture_mut(&mut self) -> Option<&mut Capture<V>> {
        self.capture.as_deref_mut()
    }

    /// Ends the capture, whether complete or abandoned, and returns it (with any records not
    /// collected yet). The keys of segments still pending are marked captured without being
    /// encoded, so that the next snapshot's parity flip finds every key uncaptured.
    pub fn end_capture(&mut self) -> Option<Box<Capture<V>>> {
        let parity = self.parity;
        for seg in &mut self.segs {
            if seg.pending {
                seg.pending = false;
                for sl in seg.chunks.iter_mut().flatten() {
                    set_captured(&mut sl.key, parity);
                }
            }
        }
        self.capture.take()
    }

    /// Captures every pending segment, then hands the capture over (for a table about to be
    /// emptied or moved away: its records must reach the snapshot all the same).
    pub fn detach_capture(&mut self) -> Option<Box<Capture<V>>> {
        self.capture_pending(usize::MAX);
        self.capture.take()
    }

    /// Puts back a capture taken with [`detach_capture`](Self::detach_capture).
    pub fn attach_capture(&mut self, capture: Option<Box<Capture<V>>>) {
        debug_assert!(self.segs.iter().all(|s| !s.pending));
        self.capture = capture;
    }

    /// Captures pending entries until about `max_entries` slots have been looked at. Returns
    /// the number of segments still pending.
    pub fn capture_pending(&mut self, max_entries: usize) -> usize {
        let Some(c) = &self.capture else { return 0 };
        if c.remaining == 0 {
            return 0;
        }
        let per_key = c.per_key;
        let mut budget = max_entries;
        // Splits append segments, so the bound is re-read: a pending segment's keys that a
        // split moved to the end are still reached.
        let mut s = 0;
        while s < self.segs.len() && budget > 0 {
            if self.segs[s].pending {
                if per_key {
                    budget -= self.capture_walk(s, budget);
                } else {
                    budget = budget.saturating_sub(self.segs[s].len);
                    self.capture_segment(s);
                }
            }
            s += 1;
        }
        self.capture.as_ref().map_or(0, |c| c.remaining)
    }

    /// Per-key capture: walks up to `budget` unwalked slots of pending segment `s`, encoding
    /// the uncaptured ones; returns the slots walked. The segment stops being pending once
    /// walked to its start.
    fn capture_walk(&mut self, s: usize, budget: usize) -> usize {
        let Some(c) = self.capture.as_deref_mut() else { return budget };
        let parity = self.parity;
        let seg = &mut self.segs[s];
        let end = (seg.unscanned as usize).min(seg.len);
        let start = end.saturating_sub(budget);
        for i in (start..end).rev() {
            if let Some(a) = i.checked_sub(WARM_AHEAD).filter(|&a| a >= start) {
                let ahead = &seg.chunks[a / CHUNK][a % CHUNK];
                (c.warm)(&ahead.key, &ahead.val);
            }
            let sl = &mut seg.chunks[i / CHUNK][i % CHUNK];
            if !captured(&sl.key, parity) {
                (c.encode)(&sl.key, &sl.val, &mut c.out);
                set_captured(&mut sl.key, parity);
            }
        }
        seg.unscanned = start as u32;
        if start == 0 {
            seg.pending = false;
            c.remaining -= 1;
        }
        (end - start).max(1)
    }

    /// Per-key capture: marks `key` captured without encoding it and returns its value, if
    /// the running snapshot has not captured it yet (so the value is still the one it had at
    /// the snapshot point). An RDB snapshot reads a key's expiry this way when it writes the
    /// key: every later change of that expiry then leaves no record.
    pub fn take_uncaptured(&mut self, key: &[u8]) -> Option<V>
    where
        V: Copy,
    {
        let per_key = self.capture.as_ref()?.per_key;
        let (_, s, i) = self.locate(key);
        let i = i?;
        if !per_key || !self.segs[s].pending {
            return None;
        }
        let parity = self.parity;
        let sl = self.segs[s].slot_mut(i);
        if captured(&sl.key, parity) {
            return None;
        }
        set_captured(&mut sl.key, parity);
        Some(sl.val)
    }

    /// The write barrier: captures what slot `i` of segment `s` (or, per segment, all of `s`)
    /// held at the snapshot point before it changes.
    #[inline]
    fn barrier(&mut self, s: usize, i: Option<usize>) {
        if self.capture.is_some() && self.segs[s].pending {
            self.barrier_slow(s, i);
        }
    }

    #[cold]
    fn barrier_slow(&mut self, s: usize, i: Option<usize>) {
        let Some(c) = self.capture.as_deref_mut() else { return };
        if !c.per_key {
            self.capture_segment(s);
            return;
        }
        let Some(i) = i else { return };
        let parity = self.parity;
        let sl = self.segs[s].slot_mut(i);
        if captured(&sl.key, parity) {
            return;
        }
        (c.encode)(&sl.key, &sl.val, &mut c.out);
        set_captured(&mut sl.key, parity);
    }

    fn capture_segment(&mut self, s: usize) {
        let Some(c) = self.capture.as_deref_mut() else { return };
        let (per_key, parity) = (c.per_key, self.parity);
        let seg = &mut self.segs[s];
        let n = seg.len;
        for i in 0..n {
            if i + WARM_AHEAD < n {
                let a = i + WARM_AHEAD;
                let ahead = &seg.chunks[a / CHUNK][a % CHUNK];
                (c.warm)(&ahead.key, &ahead.val);
            }
            let sl = &mut seg.chunks[i / CHUNK][i % CHUNK];
            if per_key {
                if captured(&sl.key, parity) {
                    continue;
                }
                set_captured(&mut sl.key, parity);
            }
            (c.encode)(&sl.key, &sl.val, &mut c.out);
        }
        seg.pending = false;
        c.remaining -= 1;
    }

    /// Entries in the largest segment (for tests and `DEBUG HTSTATS`).
    pub fn max_segment_len(&self) -> usize {
        self.segs.iter().map(|s| s.len).max().unwrap_or(0)
    }

    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::{rngs::SmallRng, SeedableRng};

    use super::*;

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    /// Encodes `key` and a `usize` value as "key=value;" for the capture tests.
    fn enc(k: &Key, v: &usize, out: &mut Vec<u8>) {
        out.extend_from_slice(k);
        out.extend_from_slice(format!("={v};").as_bytes());
    }

    fn decode(out: &[u8]) -> std::collections::HashMap<Vec<u8>, usize> {
        let mut m = std::collections::HashMap::new();
        for rec in out.split(|&b| b == b';').filter(|r| !r.is_empty()) {
            let eq = rec.iter().position(|&b| b == b'=').unwrap();
            let v = std::str::from_utf8(&rec[eq + 1..]).unwrap().parse().unwrap();
            assert!(m.insert(rec[..eq].to_vec(), v).is_none(), "a key captured twice");
        }
        m
    }

    #[test]
    fn capture_is_point_in_time_under_writes_splits_and_clear() {
        let mut rng = SmallRng::seed_from_u64(11);
        for round in 0..6 {
            let per_key = round % 2 == 0;
            let mut t = Table::new();
            for i in 0..40_000 {
                t.insert(&key(i), i);
            }
            let before: std::collections::HashMap<Vec<u8>, usize> =
                t.iter().map(|(k, v)| (k.to_vec(), *v)).collect();
            t.start_capture((enc, |_, _| {}), 7, per_key);
            let mut out = Vec::new();
            for step in 0..8_000 {
                let k = key(rng.gen_range(0..80_000));
                match rng.gen_range(0..4) {
                    0 => {
                        t.insert(&k, step + 1_000_000);
                    }
                    1 => {
                        t.remove(&k);
                    }
                    2 => {
                        if let Some(v) = t.get_mut(&k) {
                            *v += 1;
                        }
                    }
                    _ => {
                        t.capture_pending(500);
                    }
                }
                if round >= 4 && step == 4_000 {
                    t.clear();
                }
                out.append(&mut t.capture_mut().unwrap().out);
            }
            t.capture_pending(usize::MAX);
            let c = t.end_capture().unwrap();
            assert_eq!(c.remaining(), 0);
            assert_eq!(c.tag, 7);
            out.extend_from_slice(&c.out);
            assert_eq!(decode(&out), before, "round {round}");
            // Without a capture, writes leave no records.
            t.insert(b"after", 1);
            assert!(t.capture_mut().is_none());
            // A second snapshot (after an abandoned one) again captures everything once.
            t.start_capture((enc, |_, _| {}), 7, per_key);
            t.insert(b"x", 1);
            t.end_capture();
            let now: std::collections::HashMap<Vec<u8>, usize> =
                t.iter().map(|(k, v)| (k.to_vec(), *v)).collect();
            t.start_capture((enc, |_, _| {}), 8, per_key);
            t.insert(b"during", 5);
            t.remove(b"x");
            t.capture_pending(usize::MAX);
            let c = t.end_capture().unwrap();
            assert_eq!(decode(&c.out), now, "round {round}, second snapshot");
        }
    }

    #[test]
    fn reserve_presizes_without_splits() {
        let mut t = Table::new();
        t.reserve(100_000);
        let segs = t.segment_count();
        assert!(segs >= 16);
        for i in 0..100_000 {
            t.insert(&key(i), i);
        }
        assert_eq!(t.segment_count(), segs);
        for i in 0..100_000 {
            assert_eq!(t.get(&key(i)), Some(&i));
        }
        let mut n = 0;
        let mut c = 0;
        loop {
            c = t.scan(c, 1000, |_, _| n += 1);
            if c == 0 {
                break;
            }
        }
        assert_eq!(n, 100_000);
    }

    #[test]
    fn insert_get_remove_across_splits() {
        let mut t = Table::new();
        for i in 0..50_000 {
            assert!(t.insert(&key(i), i).is_none());
        }
        assert_eq!(t.len(), 50_000);
        assert!(t.segment_count() > 4);
        assert!(t.max_segment_len() <= SEG_MAX);
        for i in 0..50_000 {
            assert_eq!(t.get(&key(i)), Some(&i));
        }
        for i in (0..50_000).step_by(2) {
            assert_eq!(t.remove(&key(i)), Some(i));
        }
        for i in 0..50_000 {
            assert_eq!(t.get(&key(i)).is_some(), i % 2 == 1);
        }
        assert_eq!(t.len(), 25_000);
        assert_eq!(t.iter().count(), 25_000);
    }

    #[test]
    fn full_scan_returns_each_key_once() {
        let mut t = Table::new();
        for i in 0..20_000 {
            t.insert(&key(i), ());
        }
        for count in [1, 10, 100, 10_000] {
            let mut seen = Vec::new();
            let mut c = 0;
            loop {
                c = t.scan(c, count, |k, _| seen.push(k.clone()));
                if c == 0 {
                    break;
                }
            }
            assert_eq!(seen.len(), 20_000, "count {count}");
            let set: HashSet<_> = seen.into_iter().collect();
            assert_eq!(set.len(), 20_000);
        }
    }

    #[test]
    fn scan_sees_keys_present_throughout_while_table_grows() {
        let mut t = Table::new();
        for i in 0..5_000 {
            t.insert(&key(i), ());
        }
        let mut seen = HashSet::new();
        let mut c = 0;
        let mut next = 5_000;
        loop {
            c = t.scan(c, 10, |k, _| {
                seen.insert(k.clone());
            });
            for _ in 0..50 {
                t.insert(&key(next), ());
                next += 1;
            }
            if c == 0 {
                break;
            }
        }
        for i in 0..5_000 {
            assert!(seen.contains(key(i).as_slice()), "missed key {i}");
        }
    }

    #[test]
    fn keys_carry_a_meta_word() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        let mut t = Table::new();
        let long = b"twenty-byte-field-00";
        t.insert(b"short", 1);
        t.insert(long, 2);
        assert_eq!(t.get_key_value(long).map(|(k, _)| k.heap_size()), Some(0));
        let (m, v) = t.get_meta_mut(long).unwrap();
        assert_eq!((*m, *v), (0, 2));
        *m = 0xABC;
        let (k, v) = t.get_key_value(long).unwrap();
        assert_eq!((k.meta(), k.heap_size(), &**k, *v), (0xABC, 20, &long[..], 2));
        *t.get_meta_mut(b"short").unwrap().0 = 7;
        assert_eq!(t.get_key_value(b"short").map(|(k, _)| k.meta()), Some(7));
        let (m, v, new) = t.get_or_insert_meta(b"fresh", || 9);
        assert_eq!((*m, *v, new), (0, 9, true));
    }

    #[test]
    fn scan_memo_follows_removals() {
        let mut t = Table::new();
        for i in 0..20_000 {
            t.insert(&key(i), ());
        }
        let mut seen = HashSet::new();
        let (mut c, mut gone) = (0, 10_000);
        loop {
            c = t.scan(c, 7, |k, _| {
                seen.insert(k.clone());
            });
            // Removals move slots around inside segments: the memo must not serve stale slots.
            for _ in 0..5 {
                if gone < 20_000 {
                    t.remove(&key(gone));
                    gone += 1;
                }
            }
            if c == 0 {
                break;
            }
        }
        for i in 0..10_000 {
            assert!(seen.contains(key(i).as_slice()), "missed key {i}");
        }
        assert!(t.scan_memo.borrow().pos.is_empty());
    }

    #[test]
    fn random_entry_and_lazy_removal() {
        let mut t = Table::new();
        let mut rng = SmallRng::seed_from_u64(1);
        assert!(t.random_entry(&mut rng).is_none());
        for i in 0..100 {
            t.insert(&key(i), i);
        }
        let (k, v) = t.random_entry(&mut rng).unwrap();
        assert_eq!(&**k, &key(*v)[..]);
        match t.get_mut_unless(&key(5), |_, v| *v == 5) {
            Some(Err((k, 5))) => assert_eq!(&*k, &key(5)[..]),
            _ => panic!("expected removal"),
        }
        assert!(matches!(
            t.get_mut_unless(&key(6), |_, v| *v == 5),
            Some(Ok((&mut 0, &mut 6)))
        ));
        assert_eq!(t.len(), 99);
    }

    #[test]
    fn uniform_pick_ignores_uneven_segments() {
        let mut t = Table::new();
        for i in 0..40_000 {
            t.insert(&key(i), i);
        }
        assert!(t.segment_count() >= 4);
        // Thin out the segments of even hashes to a tenth: their entries become the minority
        // that a segment-weighted pick would favour.
        let even = |t: &Table<usize>, i: usize| t.hash(&key(i)) & 1 == 0;
        for i in 0..40_000 {
            if even(&t, i) && i % 10 != 0 {
                t.remove(&key(i));
            }
        }
        let share = (0..40_000).filter(|&i| even(&t, i) && i % 10 == 0).count() as f64
            / t.len() as f64;
        let mut rng = SmallRng::seed_from_u64(7);
        let picks = 200_000;
        let hits = (0..picks)
            .filter(|_| even(&t, *t.random_entry_uniform(&mut rng).unwrap().1))
            .count();
        let got = hits as f64 / f64::from(picks);
        assert!((got - share).abs() < 0.01, "picked {got}, share {share}");
        // Nearly empty: the rank fallback still finds every survivor.
        for i in 0..40_000 {
            if i % 1000 != 0 {
                t.remove(&key(i));
            }
        }
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            seen.insert(*t.random_entry_uniform(&mut rng).unwrap().1);
        }
        assert_eq!(seen.len(), 40);
    }
}
