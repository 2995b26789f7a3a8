//! The set value type (the data side of Redis's `t_set.c`), used by `commands::set`.
//!
//! A set starts as an `intset` when its first member is an integer: a sorted array of
//! little-endian integers packed at the smallest width (2, 4 or 8 bytes) that fits every member,
//! in one allocation. It becomes a `hashtable` for good once a non-integer member arrives or it
//! outgrows `set-max-intset-entries`, exactly where Redis 7.0 converts.
//!
//! The `hashtable` form starts as a small dense array with a hash index and, past
//! `DENSE_MAX` members, moves into the keyspace's segmented [`Table`], which grows one small
//! segment split at a time instead of rehashing everything at once (a 2M-member set grows
//! without any SADD taking over a few milliseconds, where a doubling rehash took 350 ms). Both
//! pick uniformly random members in O(1) (SPOP, SRANDMEMBER) and share a SCAN cursor that
//! returns every member present for the whole scan exactly once (see [`MemberTable`]).

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rand::Rng;

use super::table::{scan_position, Key, Table};
use crate::util::num::parse_i64;

/// Redis limits intsets to 2^30 entries whatever `set-max-intset-entries` says.
const INTSET_MAX_CAP: i64 = 1 << 30;

/// The intset size limit for a `set-max-intset-entries` value.
pub fn intset_limit(config: i64) -> usize {
    config.clamp(0, INTSET_MAX_CAP) as usize
}

/// One member as stored: intset members are integers, the rest are bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Member<'_> {
    /// Calls `f` with the member's bytes (integers are formatted on the stack).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match *self {
            Member::Int(n) => f(itoa::Buffer::new().format(n).as_bytes()),
            Member::Bytes(b) => f(b),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(<[u8]>::to_vec)
    }
}

/// A sorted array of distinct integers (the `intset` encoding), stored frame-of-reference: one
/// buffer holding a width byte, the smallest member as a little-endian `i64` (the base), then
/// each member minus the base in `width` bytes (1, 2, 4 or 8, the fewest that hold the largest
/// difference). A set of nearby integers (ids, timestamps) thus costs one or two bytes a member
/// where Redis's intset spends at least two, and binary search still works. The encoding is
/// kept canonical (base = minimum, smallest width), so equal sets have equal buffers. An empty
/// set has an empty buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntSet {
    data: Box<[u8]>,
}

/// Bytes before the first member: the width byte and the base.
const INTSET_HDR: usize = 9;

/// Smallest width (bytes) that holds the difference `d` between a member and the base.
fn width_for(d: u64) -> u8 {
    if d <= u64::from(u8::MAX) {
        1
    } else if d <= u64::from(u16::MAX) {
        2
    } else if d <= u64::from(u32::MAX) {
        4
    } else {
        8
    }
}

/// An offset of 1, 2, 4 or 8 bytes, by one load of that size (a copy into a zeroed 8-byte
/// buffer read back whole would stall on the copy).
#[inline]
fn read_offset(c: &[u8]) -> u64 {
    match *c {
        [a] => u64::from(a),
        [a, b] => u64::from(u16::from_le_bytes([a, b])),
        [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => 0,
    }
}

impl IntSet {
    fn new() -> Self {
        IntSet { data: Box::new([]) }
    }

    /// Encodes sorted, distinct `members` canonically.
    fn from_sorted(members: &[i64]) -> Self {
        let (Some(&lo), Some(&hi)) = (members.first(), members.last()) else {
            return IntSet::new();
        };
        let width = width_for(hi.wrapping_sub(lo) as u64);
        let w = usize::from(width);
        let mut buf = Vec::with_capacity(INTSET_HDR + members.len() * w);
        buf.push(width);
        buf.extend_from_slice(&lo.to_le_bytes());
        for &v in members {
            buf.extend_from_slice(&(v.wrapping_sub(lo) as u64).to_le_bytes()[..w]);
        }
        IntSet { data: buf.into_boxed_slice() }
    }

    /// Checks an encoded intset of unknown origin and returns its member count: `None` unless
    /// it is canonical (width 1, 2, 4 or 8 and the smallest that holds the largest member's
    /// offset, first offset 0, offsets strictly ascending, largest member within i64) and
    /// holds at least one member. Never panics, whatever the bytes.
    fn check(data: &[u8]) -> Option<usize> {
        let (&width, rest) = data.split_first()?;
        let w = usize::from(width);
        let base = i64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let offsets = &rest[8..];
        if !matches!(w, 1 | 2 | 4 | 8) || offsets.is_empty() || offsets.len() % w != 0 {
            return None;
        }
        let mut prev = None;
        for chunk in offsets.chunks_exact(w) {
            let d = read_offset(chunk);
            if prev.map_or(d != 0, |p| d <= p) {
                return None;
            }
            prev = Some(d);
        }
        let last = prev?;
        let fits = i128::from(base) + i128::from(last) <= i128::from(i64::MAX);
        (fits && width_for(last) == width).then_some(offsets.len() / w)
    }

    fn width(&self) -> usize {
        self.data.first().map_or(1, |&w| usize::from(w))
    }

    fn base(&self) -> i64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.data[1..INTSET_HDR]);
        i64::from_le_bytes(b)
    }

    fn len(&self) -> usize {
        self.data.len().saturating_sub(INTSET_HDR) / self.width()
    }

    fn get(&self, i: usize) -> i64 {
        let w = self.width();
        let at = INTSET_HDR + i * w;
        let mut d = [0u8; 8];
        d[..w].copy_from_slice(&self.data[at..at + w]);
        self.base().wrapping_add(u64::from_le_bytes(d) as i64)
    }

    fn to_vec(&self) -> Vec<i64> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }

    /// Binary search: `Ok(position)` if present, else `Err(insertion point)`.
    fn search(&self, v: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    /// Adds `v`; false if it was already there. Reallocates to the exact size, like Redis. A
    /// member inside the current range is spliced in; a new minimum or maximum re-encodes.
    fn insert(&mut self, v: i64) -> bool {
        let pos = match self.search(v) {
            Ok(_) => return false,
            Err(pos) => pos,
        };
        let n = self.len();
        if pos == 0 || pos == n {
            let mut all = self.to_vec();
            all.insert(pos, v);
            *self = IntSet::from_sorted(&all);
            return true;
        }
        let w = self.width();
        let at = INTSET_HDR + pos * w;
        let d = v.wrapping_sub(self.base()) as u64;
        let mut buf = Vec::with_capacity(self.data.len() + w);
        buf.extend_from_slice(&self.data[..at]);
        buf.extend_from_slice(&d.to_le_bytes()[..w]);
        buf.extend_from_slice(&self.data[at..]);
        self.data = buf.into_boxed_slice();
        true
    }

    fn remove(&mut self, v: i64) -> bool {
        match self.search(v) {
            Ok(pos) => {
                self.remove_at(pos);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes the member at `pos`. Removing the minimum or maximum re-encodes (the base or the
    /// width may shrink); an inner member is simply cut out.
    fn remove_at(&mut self, pos: usize) {
        let n = self.len();
        if pos == 0 || pos + 1 == n {
            let mut all = self.to_vec();
            all.remove(pos);
            *self = IntSet::from_sorted(&all);
            return;
        }
        let w = self.width();
        let at = INTSET_HDR + pos * w;
        let mut buf = Vec::with_capacity(self.data.len() - w);
        buf.extend_from_slice(&self.data[..at]);
        buf.extend_from_slice(&self.data[at + w..]);
        self.data = buf.into_boxed_slice();
    }
}

/// Most members a set keeps in its [`Dense`] small form before moving into a [`Table`]: past
/// about this size the table's fixed cost (a few hundred bytes) is paid back, and moving this
/// many members takes microseconds.
const DENSE_MAX: usize = 128;

/// A small `hashtable` set: members in a `Vec`, with a `hashbrown` index of their positions.
/// A table's fixed cost would more than double the footprint of the many sets that hold a
/// handful of strings (tags, say); at this size a whole-index rehash is a few microseconds.
#[derive(Clone)]
struct Dense {
    members: Vec<Box<[u8]>>,
    index: HashTable<u32>,
    /// Also the seed of the [`Table`] the set moves into, so SSCAN positions carry over.
    hasher: foldhash::fast::RandomState,
}

impl Dense {
    fn new() -> Self {
        Dense {
            members: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn hash(&self, m: &[u8]) -> u64 {
        self.hasher.hash_one(m)
    }

    fn find(&self, m: &[u8]) -> Option<usize> {
        let members = &self.members;
        self.index
            .find(self.hash(m), |&i| &*members[i as usize] == m)
            .map(|&i| i as usize)
    }

    /// Appends `m`, which the caller checked is absent.
    fn push(&mut self, m: &[u8]) {
        let h = self.hash(m);
        // Room for exactly one member at first (most small sets hold one or two), then grow
        // by half rather than doubling: the array is most of a small set's footprint.
        if self.members.len() == self.members.capacity() {
            let more = if self.members.is_empty() { 1 } else { (self.members.len() / 2).max(4) };
            self.members.reserve_exact(more);
        }
        let pos = self.members.len() as u32;
        self.members.push(m.into());
        let (members, hasher) = (&self.members, &self.hasher);
        self.index
            .insert_unique(h, pos, |&i| hasher.hash_one(&*members[i as usize]));
    }

    /// Removes `m` if present, moving the last member into its place.
    fn remove(&mut self, m: &[u8]) -> bool {
        let Some(pos) = self.find(m) else {
            return false;
        };
        if let Ok(e) = self.index.find_entry(self.hash(m), |&i| i as usize == pos) {
            e.remove();
        }
        let last = self.members.len() - 1;
        if pos != last {
            let lh = self.hash(&self.members[last]);
            if let Ok(mut e) = self.index.find_entry(lh, |&i| i as usize == last) {
                *e.get_mut() = pos as u32;
            }
        }
        self.members.swap_remove(pos);
        true
    }

    /// One SSCAN step in the order a [`Table`] with the same seed would use (ascending
    /// [`scan_position`]), so a scan carries on unharmed if the set moves into a table
    /// between two calls. Emits the `count` lowest positions from `cursor` on, plus any ties
    /// with the last one, and returns the next position (0 when done).
    fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        let Ok(c) = u32::try_from(cursor) else {
            return 0;
        };
        let mut cand: Vec<(u32, usize)> = (self.members.iter().enumerate())
            .map(|(i, m)| (scan_position(&self.hasher, m), i))
            .filter(|&(p, _)| p >= c)
            .collect();
        cand.sort_unstable();
        let count = count.max(1);
        let upto = match cand.get(count - 1) {
            Some(&(cut, _)) => cand.partition_point(|&(p, _)| p <= cut),
            None => cand.len(),
        };
        for &(_, i) in &cand[..upto] {
            f(&self.members[i]);
        }
        cand.get(upto).map_or(0, |&(p, _)| u64::from(p))
    }
}

/// The `hashtable` form: a `Dense` array while small, then the keys of a [`Table`] with no
/// values. The table grows one segment split at a time, so adding to a set of millions of
/// members never stalls the server on a whole-table rehash (Redis gets the same from its
/// incremental rehashing). Its members of up to 22 bytes sit inside their slot, without an
/// allocation of their own. A set never moves back to the small form, as in Redis.
#[derive(Clone)]
pub struct MemberTable(Repr);

#[derive(Clone)]
enum Repr {
    Dense(Dense),
    Big(Box<Big>),
}

/// The large form's table (boxed: a small set should not pay for its size).
struct Big(Table<()>);

impl Clone for Big {
    fn clone(&self) -> Self {
        let mut t = Table::new();
        t.reserve(self.0.len());
        for (k, ()) in self.0.iter() {
            t.insert(k, ());
        }
        Big(t)
    }
}

impl std::fmt::Debug for MemberTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Default for MemberTable {
    fn default() -> Self {
        MemberTable(Repr::Dense(Dense::new()))
    }
}

impl MemberTable {
    fn len(&self) -> usize {
        match &self.0 {
            Repr::Dense(d) => d.members.len(),
            Repr::Big(t) => t.0.len(),
        }
    }

    fn contains(&self, m: &[u8]) -> bool {
        match &self.0 {
            Repr::Dense(d) => d.find(m).is_some(),
            Repr::Big(t) => t.0.contains_key(m),
        }
    }

    fn insert(&mut self, m: &[u8]) -> bool {
        if let Repr::Dense(d) = &mut self.0 {
            if d.find(m).is_some() {
                return false;
            }
            if d.members.len() < DENSE_MAX {
                d.push(m);
                return true;
            }
            self.grow(0);
        }
        match &mut self.0 {
            Repr::Big(t) => t.0.get_or_insert_with(m, || ()).1,
            Repr::Dense(_) => unreachable!("moved into a table above"),
        }
    }

    /// Moves a small set into a table sized for `extra` more members.
    fn grow(&mut self, extra: usize) {
        let Repr::Dense(d) = &mut self.0 else {
            return;
        };
        let mut t = Table::with_hasher(d.hasher);
        t.reserve(d.members.len() + extra);
        for m in &d.members {
            t.insert(m, ());
        }
        self.0 = Repr::Big(Box::new(Big(t)));
    }

    /// Prepares for `n` more members: a small set that will outgrow its form moves into a
    /// table sized for them at once (an empty one, when loading, skips the small form).
    fn reserve(&mut self, n: usize) {
        if let Repr::Dense(d) = &self.0 {
            if d.members.len().saturating_add(n) > DENSE_MAX {
                self.grow(n);
            }
        }
    }

    fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.0 {
            Repr::Dense(d) => d.remove(m),
            Repr::Big(t) => t.0.remove(m).is_some(),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &[u8]> + '_> {
        match &self.0 {
            Repr::Dense(d) => Box::new(d.members.iter().map(|m| &**m)),
            Repr::Big(t) => Box::new(t.0.iter().map(|(k, ())| k.as_bytes())),
        }
    }

    /// A member picked uniformly at random, or None if the set is empty.
    fn random(&self, rng: &mut (impl Rng + ?Sized)) -> Option<&[u8]> {
        match &self.0 {
            Repr::Dense(d) if d.members.is_empty() => None,
            Repr::Dense(d) => Some(&d.members[rng.gen_range(0..d.members.len())]),
            Repr::Big(t) => t.0.random_entry_uniform(rng).map(|(k, ())| k.as_bytes()),
        }
    }

    /// `count` distinct random members (`count` < len). Many picks sample positions of the
    /// full member list; few are drawn from the set directly, redrawing repeats.
    fn random_distinct(&self, rng: &mut (impl Rng + ?Sized), count: usize) -> Vec<&[u8]> {
        let len = self.len();
        let count = count.min(len);
        if count.saturating_mul(3) > len {
            let all: Vec<&[u8]> = self.iter().collect();
            return rand::seq::index::sample(rng, len, count)
                .into_iter()
                .map(|i| all[i])
                .collect();
        }
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            if let Some(m) = self.random(rng) {
                if seen.insert(m) {
                    out.push(m);
                }
            }
        }
        out
    }

    /// Heap bytes: per member its bytes plus an array slot and index bucket (small form), or
    /// a table slot (the member inline when short) and about 9 bytes of segment index and chunk
    /// slack (measured: 33 bytes a short member in all, at 1M members).
    fn heap_size(&self) -> usize {
        match &self.0 {
            Repr::Dense(d) => {
                let per = std::mem::size_of::<Box<[u8]>>() + std::mem::size_of::<u32>() + 1;
                d.members.iter().map(|m| m.len() + per).sum()
            }
            Repr::Big(t) => {
                let per = std::mem::size_of::<Key>() + 9;
                let members: usize = t.0.iter().map(|(k, ())| k.heap_size() + per).sum();
                std::mem::size_of::<Big>() + members
            }
        }
    }

    /// One SSCAN step: the cursor is a position in hash order, so a member present for the
    /// whole scan is returned exactly once however the set grows or shrinks meanwhile (even
    /// across its move from the small form into a table). 0 starts a scan; returns the next
    /// cursor, 0 when done.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        match &self.0 {
            Repr::Dense(d) => d.scan(cursor, count, f),
            Repr::Big(t) => t.0.scan(cursor, count, |k, ()| f(k.as_bytes())),
        }
    }
}

/// A set value: `intset` or `hashtable`.
#[derive(Debug, Clone)]
pub enum SetValue {
    Ints(IntSet),
    Table(Box<MemberTable>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue::Ints(IntSet::new())
    }
}

impl PartialEq for SetValue {
    /// Sets are equal when they hold the same members, whatever their encodings.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains_member(m))
    }
}

impl SetValue {
    /// An empty set in the encoding Redis's `setTypeCreate` picks for its first member.
    pub fn for_first(member: &[u8]) -> SetValue {
        if parse_i64(member).is_some() {
            SetValue::default()
        } else {
            SetValue::Table(Box::default())
        }
    }

    /// An `intset` of `members`, which the caller guarantees strictly ascending (snapshot
    /// loading: one encoding pass instead of one insertion per member).
    pub fn intset_from_sorted(members: &[i64]) -> SetValue {
        SetValue::Ints(IntSet::from_sorted(members))
    }

    /// The encoded `intset` bytes, for a snapshot to store verbatim; `None` for a `hashtable`.
    pub fn intset_bytes(&self) -> Option<&[u8]> {
        match self {
            SetValue::Ints(s) => Some(&s.data),
            SetValue::Table(_) => None,
        }
    }

    /// Adopts encoded `intset` bytes read from a snapshot (one allocation and a copy) after
    /// checking them; returns the set and its member count. A set of more than `max_intset`
    /// members is converted to `hashtable`, as Redis does on load.
    pub fn from_intset_bytes(data: &[u8], max_intset: usize) -> Option<(SetValue, usize)> {
        let n = IntSet::check(data)?;
        let mut s = SetValue::Ints(IntSet { data: data.into() });
        if n > max_intset {
            s.convert_to_table(0);
        }
        Some((s, n))
    }

    /// Name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Ints(_) => "intset",
            SetValue::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SetValue::Ints(s) => s.len(),
            SetValue::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            SetValue::Ints(s) => parse_i64(m).is_some_and(|v| s.contains(v)),
            SetValue::Table(t) => t.contains(m),
        }
    }

    pub fn contains_member(&self, m: Member<'_>) -> bool {
        match (self, m) {
            (SetValue::Ints(s), Member::Int(v)) => s.contains(v),
            (_, m) => m.with_bytes(|b| self.contains(b)),
        }
    }

    /// Adds a member; false if it was already there. `max_intset` is the intset size limit
    /// (see [`intset_limit`]).
    pub fn add(&mut self, m: &[u8], max_intset: usize) -> bool {
        if matches!(self, SetValue::Ints(_)) {
            match parse_i64(m) {
                Some(v) => return self.add_int_to_intset(v, max_intset),
                None => self.convert_to_table(1),
            }
        }
        match self {
            SetValue::Table(t) => t.insert(m),
            SetValue::Ints(_) => unreachable!("converted above"),
        }
    }

    fn add_int_to_intset(&mut self, v: i64, max_intset: usize) -> bool {
        let SetValue::Ints(s) = self else {
            return false;
        };
        if !s.insert(v) {
            return false;
        }
        if s.len() > max_intset {
            self.convert_to_table(0);
        }
        true
    }

    pub fn add_member(&mut self, m: Member<'_>, max_intset: usize) -> bool {
        match (&*self, m) {
            (SetValue::Ints(_), Member::Int(v)) => self.add_int_to_intset(v, max_intset),
            (_, m) => m.with_bytes(|b| self.add(b, max_intset)),
        }
    }

    /// Converts an intset to a hash table with room for `extra` more members.
    fn convert_to_table(&mut self, extra: usize) {
        let SetValue::Ints(s) = self else {
            return;
        };
        let mut t = MemberTable::default();
        t.reserve(s.len() + extra);
        let mut buf = itoa::Buffer::new();
        for i in 0..s.len() {
            t.insert(buf.format(s.get(i)).as_bytes());
        }
        *self = SetValue::Table(Box::new(t));
    }

    /// Sizes an empty `hashtable` for `n` members (a hint from snapshot loading or from a
    /// variadic SADD creating the set), so filling it splits no segment. A table already
    /// holding members grows by its usual splits, each small.
    pub fn reserve(&mut self, n: usize) {
        if let SetValue::Table(t) = self {
            t.reserve(n);
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            SetValue::Ints(s) => parse_i64(m).is_some_and(|v| s.remove(v)),
            SetValue::Table(t) => t.remove(m),
        }
    }

    /// A member picked uniformly at random; None if the set is empty.
    pub fn random_member<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<Member<'_>> {
        match self {
            SetValue::Ints(s) if s.len() > 0 => Some(Member::Int(s.get(rng.gen_range(0..s.len())))),
            SetValue::Ints(_) => None,
            SetValue::Table(t) => t.random(rng).map(Member::Bytes),
        }
    }

    /// Removes and returns a member picked uniformly at random; None if the set is empty.
    pub fn pop_random<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<Vec<u8>> {
        let m = self.random_member(rng)?.to_vec();
        self.remove(&m);
        Some(m)
    }

    /// `count` distinct members picked at random (all of them if `count` >= len), in no
    /// particular order.
    pub fn random_distinct<R: Rng + ?Sized>(&self, rng: &mut R, count: usize) -> Vec<Member<'_>> {
        match self {
            SetValue::Ints(s) => {
                let count = count.min(s.len());
                let picks = rand::seq::index::sample(rng, s.len(), count);
                picks.into_iter().map(|i| Member::Int(s.get(i))).collect()
            }
            SetValue::Table(t) => {
                let picks = t.random_distinct(rng, count);
                picks.into_iter().map(Member::Bytes).collect()
            }
        }
    }

    /// Every member: ascending for an `intset`, table order for a `hashtable`.
    pub fn iter(&self) -> impl Iterator<Item = Member<'_>> + '_ {
        let (ints, table) = match self {
            SetValue::Ints(s) => (Some(s), None),
            SetValue::Table(t) => (None, Some(t)),
        };
        let ints = ints.into_iter().flat_map(|s| (0..s.len()).map(|i| Member::Int(s.get(i))));
        ints.chain(table.into_iter().flat_map(|t| t.iter().map(Member::Bytes)))
    }

    /// The hash table form, for SSCAN's cursor; None for intsets (scanned whole).
    pub fn table(&self) -> Option<&MemberTable> {
        match self {
            SetValue::Table(t) => Some(t),
            SetValue::Ints(_) => None,
        }
    }

    /// Feeds the content into a digest (DEBUG DIGEST). Members are hashed one by one and the
    /// hashes XORed, so the digest does not depend on the order or the encoding.
    pub fn digest_into(&self, h: &mut sha1_smol::Sha1) {
        let mut acc = [0u8; 20];
        for m in self.iter() {
            let d = m.with_bytes(|b| sha1_smol::Sha1::from(b).digest().bytes());
            for (a, x) in acc.iter_mut().zip(d) {
                *a ^= x;
            }
        }
        h.update(&acc);
    }

    /// Heap bytes used (MEMORY USAGE): the intset buffer, or every member allocation plus the
    /// array slot and index bucket each one costs.
    pub fn heap_size(&self) -> usize {
        match self {
            SetValue::Ints(i) => i.data.len(),
            SetValue::Table(t) => std::mem::size_of::<MemberTable>() + t.heap_size(),
        }
    }

    /// Bytes this value would take serialized like an RDB set (DEBUG OBJECT's
    /// serializedlength): the intset blob as one string, or a count and every member.
    pub fn serialized_len(&self) -> usize {
        match self {
            SetValue::Ints(s) => {
                let blob = 8 + s.data.len();
                rdb_len_size(blob) + blob
            }
            SetValue::Table(t) => {
                let body: usize = t.iter().map(rdb_string_size).sum();
                rdb_len_size(t.len()) + body
            }
        }
    }
}

/// Size of an RDB length prefix.
fn rdb_len_size(n: usize) -> usize {
    match n {
        0..=63 => 1,
        64..=16383 => 2,
        _ if n <= u32::MAX as usize => 5,
        _ => 9,
    }
}

/// Size of an RDB string: small integers are stored in 2, 3 or 5 bytes.
fn rdb_string_size(s: &[u8]) -> usize {
    if s.len() <= 11 {
        match parse_i64(s) {
            Some(v) if i8::try_from(v).is_ok() => return 2,
            Some(v) if i16::try_from(v).is_ok() => return 3,
            Some(v) if i32::try_from(v).is_ok() => return 5,
            _ => {}
        }
    }
    rdb_len_size(s.len()) + s.len()
}

/// SINTER's members: those of the smallest set found in every other set, in the smallest
/// set's order. Stops after `limit` members (0: no limit).
pub fn intersection<'a>(sets: &[&'a SetValue], limit: usize) -> Vec<Member<'a>> {
    let Some(first) = sets.iter().min_by_key(|s| s.len()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in first.iter() {
        if sets.iter().all(|s| std::ptr::eq(*s, *first) || s.contains_member(m)) {
            out.push(m);
            if limit != 0 && out.len() >= limit {
                break;
            }
        }
    }
    out
}

/// Builds a result set (SINTERSTORE / SUNION / SDIFF) starting as an intset, like Redis, so
/// its encoding follows from its content.
pub fn collect<'a>(members: impl IntoIterator<Item = Member<'a>>, max: usize) -> SetValue {
    let mut out = SetValue::default();
    for m in members {
        out.add_member(m, max);
    }
    out
}

/// SUNION: every member of every set (absent keys are empty sets).
pub fn union(sets: &[Option<&SetValue>], max: usize) -> SetValue {
    collect(sets.iter().flatten().flat_map(|s| s.iter()), max)
}

/// SDIFF: members of the first set found in none of the others. Picks Redis's algorithm for
/// the input sizes, because the two can leave the result in different encodings.
pub fn difference(sets: &[Option<&SetValue>], max: usize) -> SetValue {
    let Some(Some(first)) = sets.first() else {
        return SetValue::default();
    };
    let rest = &sets[1..];
    if rest.iter().flatten().any(|s| std::ptr::eq(*s, *first)) {
        return SetValue::default();
    }
    let present = sets.iter().flatten();
    let work_one: usize = present.clone().map(|_| first.len()).sum::<usize>() / 2;
    let work_two: usize = present.map(|s| s.len()).sum();
    if work_one <= work_two {
        collect(first.iter().filter(|m| !rest.iter().flatten().any(|s| s.contains_member(*m))), max)
    } else {
        let mut out = collect(first.iter(), max);
        for s in rest.iter().flatten() {
            if out.is_empty() {
                break;
            }
            for m in s.iter() {
                m.with_bytes(|b| out.remove(b));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::SmallRng, SeedableRng};

    use super::*;

    fn set_of(members: &[&str], max: usize) -> SetValue {
        let mut s = SetValue::for_first(members[0].as_bytes());
        for m in members {
            s.add(m.as_bytes(), max);
        }
        s
    }

    fn sorted(s: &SetValue) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
        v.sort();
        v
    }

    #[test]
    fn intset_widens_and_stays_sorted() {
        let s = set_of(&["5", "-3", "70000", "-9000000000", "5", "0"], 512);
        assert_eq!(s.encoding(), "intset");
        let SetValue::Ints(is) = &s else { panic!() };
        assert_eq!(is.width(), 8);
        let got: Vec<i64> = (0..is.len()).map(|i| is.get(i)).collect();
        assert_eq!(got, vec![-9_000_000_000, -3, 0, 5, 70000]);
        assert!(s.contains(b"70000") && !s.contains(b"07") && !s.contains(b"x"));
    }

    #[test]
    fn intset_frame_of_reference_is_canonical() {
        let mut a = IntSet::new();
        for v in [1000, 1010, 1005, 999, 1300] {
            assert!(a.insert(v));
        }
        assert!(!a.insert(1005));
        assert_eq!(a.to_vec(), vec![999, 1000, 1005, 1010, 1300]);
        assert_eq!((a.width(), a.base()), (2, 999));
        assert!(a.remove(1300) && a.remove(999) && !a.remove(7));
        assert_eq!(a, IntSet::from_sorted(&[1000, 1005, 1010]));
        assert_eq!((a.width(), a.base(), a.data.len()), (1, 1000, INTSET_HDR + 3));
        a.remove_at(1);
        assert_eq!(a.to_vec(), vec![1000, 1010]);
        let mut x = IntSet::new();
        for v in [i64::MAX, i64::MIN, 0, -1] {
            assert!(x.insert(v));
        }
        assert_eq!(x.to_vec(), vec![i64::MIN, -1, 0, i64::MAX]);
        assert!(x.contains(i64::MIN) && x.contains(-1) && !x.contains(1));
        for v in [i64::MIN, 0, i64::MAX, -1] {
            assert!(x.remove(v));
        }
        assert_eq!((x.len(), x.data.len()), (0, 0));
    }

    #[test]
    fn converts_on_string_member_or_size() {
        let mut s = set_of(&["1", "2"], 512);
        assert!(s.add(b"a", 512));
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(sorted(&s), vec![b"1".to_vec(), b"2".to_vec(), b"a".to_vec()]);
        let mut s = set_of(&["1", "2"], 2);
        assert_eq!(s.encoding(), "intset");
        s.add(b"3", 2);
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.remove(b"3") && s.remove(b"1") && !s.remove(b"1"));
        assert_eq!(s.encoding(), "hashtable");
    }

    #[test]
    fn table_removal_keeps_index_consistent() {
        let mut s = SetValue::for_first(b"a");
        for i in 0..200 {
            s.add(format!("m{i}").as_bytes(), 512);
        }
        for i in (0..200).step_by(3) {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        for i in 0..200 {
            assert_eq!(s.contains(format!("m{i}").as_bytes()), i % 3 != 0, "m{i}");
        }
        let mut rng = SmallRng::seed_from_u64(1);
        while let Some(m) = s.pop_random(&mut rng) {
            assert!(!s.contains(&m));
        }
        assert!(s.is_empty() && s.random_member(&mut rng).is_none());
    }

    fn table_of(s: &SetValue) -> &MemberTable {
        s.table().expect("a hashtable set")
    }

    fn segments(s: &SetValue) -> usize {
        match &table_of(s).0 {
            Repr::Big(t) => t.0.segment_count(),
            Repr::Dense(_) => 0,
        }
    }

    #[test]
    fn grows_across_splits_with_removals_interleaved() {
        let mut s = SetValue::for_first(b"m0");
        let n = 60_000;
        for i in 0..n {
            assert!(s.add(format!("m{i}").as_bytes(), 512));
            if i % 4 == 3 {
                assert!(s.remove(format!("m{}", i - 2).as_bytes()));
            }
        }
        assert!(segments(&s) >= 4, "the table should have split");
        assert_eq!(s.len(), n - n / 4);
        for i in 0..n {
            assert_eq!(s.contains(format!("m{i}").as_bytes()), i % 4 != 1, "m{i}");
        }
        assert!(!s.add(b"m0", 512) && !s.remove(b"m1"));
        assert_eq!(s.iter().count(), s.len());
        let copy = s.clone();
        assert_eq!(copy, s);
        // Members longer than a slot's inline room live on the heap and behave the same.
        let long = [b'x'; 40];
        assert!(s.add(&long, 512) && s.contains(&long) && s.remove(&long));
    }

    #[test]
    fn scan_is_complete_while_the_set_grows() {
        // From the small form across its move into a table, and within a splitting table.
        scan_while_growing(100);
        scan_while_growing(5000);
    }

    fn scan_while_growing(old: usize) {
        let mut s = SetValue::for_first(b"old0");
        for i in 0..old {
            s.add(format!("old{i}").as_bytes(), 512);
        }
        let mut seen = std::collections::HashMap::new();
        let (mut cursor, mut added) = (0, 0);
        loop {
            cursor = table_of(&s).scan(cursor, 20, |m| {
                *seen.entry(m.to_vec()).or_insert(0) += 1;
            });
            // Grow through several segment splits while the scan runs.
            for _ in 0..100 {
                s.add(format!("new{added}").as_bytes(), 512);
                added += 1;
            }
            if cursor == 0 {
                break;
            }
        }
        assert!(segments(&s) >= 1);
        for i in 0..old {
            assert_eq!(seen.get(format!("old{i}").as_bytes()), Some(&1), "old{i}");
        }
        assert!(seen.values().all(|&n| n == 1), "a member was returned twice");
    }

    #[test]
    fn random_picks_cover_the_set_evenly() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut s = SetValue::for_first(b"a");
        for i in 0..300 {
            s.add(format!("m{i}").as_bytes(), 512);
        }
        s.remove(b"a");
        assert!(segments(&s) >= 1, "past the small form");
        let mut hits = std::collections::HashMap::new();
        for _ in 0..300_000 {
            let m = s.random_member(&mut rng).unwrap().to_vec();
            *hits.entry(m).or_insert(0u32) += 1;
        }
        assert_eq!(hits.len(), 300);
        assert!(hits.values().all(|&n| (800..1200).contains(&n)), "{hits:?}");
        for count in [1, 10, 40, 99, 150, 299, 300, 400] {
            let picks = s.random_distinct(&mut rng, count);
            let distinct: std::collections::HashSet<_> = picks.iter().map(Member::to_vec).collect();
            assert_eq!((picks.len(), distinct.len()), (count.min(300), count.min(300)));
            assert!(picks.iter().all(|&m| s.contains_member(m)));
        }
        let names: Vec<String> = (0..50).map(|i| format!("s{i}")).collect();
        let small = set_of(&names.iter().map(String::as_str).collect::<Vec<_>>(), 512);
        assert_eq!(segments(&small), 0, "still in the small form");
        let mut hits = std::collections::HashMap::new();
        for _ in 0..50_000 {
            *hits.entry(small.random_member(&mut rng).unwrap().to_vec()).or_insert(0u32) += 1;
        }
        assert_eq!(hits.len(), 50);
        assert!(hits.values().all(|&n| (800..1200).contains(&n)), "{hits:?}");
        let ints = set_of(&["1", "2", "3", "4", "5"], 512);
        let picks: Vec<Member<'_>> = ints.random_distinct(&mut rng, 3);
        assert_eq!(picks.len(), 3);
        assert!(picks.iter().all(|&m| ints.contains_member(m)));
        assert!(matches!(ints.random_member(&mut rng), Some(Member::Int(1..=5))));
    }

    #[test]
    fn scan_returns_every_stable_member_despite_removals() {
        let mut s = SetValue::for_first(b"a");
        for i in 0..100 {
            s.add(format!("m{i}").as_bytes(), 512);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let t = s.table().unwrap();
            cursor = t.scan(cursor, 7, |m| {
                seen.insert(m.to_vec());
            });
            // Remove a member that is not in the stable range m0..m49 on every round.
            round += 1;
            s.remove(format!("m{}", 50 + round).as_bytes());
            if cursor == 0 {
                break;
            }
        }
        for i in 0..50 {
            assert!(seen.contains(format!("m{i}").as_bytes()), "m{i}");
        }
    }

    #[test]
    fn algebra() {
        let a = set_of(&["1", "2", "3", "x"], 512);
        let b = set_of(&["2", "3", "4"], 512);
        let inter: Vec<Vec<u8>> = intersection(&[&a, &b], 0).iter().map(Member::to_vec).collect();
        assert_eq!(inter.len(), 2);
        let u = union(&[Some(&a), None, Some(&b)], 512);
        assert_eq!(u.len(), 5);
        let d = difference(&[Some(&a), Some(&b)], 512);
        assert_eq!(sorted(&d), vec![b"1".to_vec(), b"x".to_vec()]);
        assert_eq!(difference(&[Some(&a), Some(&a)], 512).len(), 0);
        let ints = union(&[Some(&b)], 512);
        assert_eq!(ints.encoding(), "intset");
        assert_eq!(a, set_of(&["x", "3", "2", "1"], 512));
    }

    #[test]
    fn from_intset_bytes_accepts_only_canonical_intsets() {
        for members in [&[5i64][..], &[-3, 0, 200], &[1, 70_000], &[i64::MIN, i64::MAX]] {
            let s = SetValue::intset_from_sorted(members);
            let data = s.intset_bytes().unwrap();
            let (back, n) = SetValue::from_intset_bytes(data, 512).unwrap();
            assert_eq!((n, &back), (members.len(), &s));
            assert_eq!(back.encoding(), "intset");
            let (big, _) = SetValue::from_intset_bytes(data, 0).unwrap();
            assert_eq!((big.encoding(), &big), ("hashtable", &s));
        }
        let enc = |w: u8, base: i64, offsets: &[u64]| {
            let mut b = vec![w];
            b.extend_from_slice(&base.to_le_bytes());
            for o in offsets {
                b.extend_from_slice(&o.to_le_bytes()[..usize::from(w)]);
            }
            b
        };
        assert!(SetValue::from_intset_bytes(&enc(1, 7, &[0, 3]), 512).is_some());
        for bad in [
            enc(2, 7, &[0, 3]),        // wider than needed
            enc(3, 7, &[0, 3]),        // no such width
            enc(1, 7, &[1, 3]),        // base is not the minimum
            enc(1, 7, &[0, 3, 3]),     // not strictly ascending
            enc(1, 7, &[]),            // empty
            enc(1, i64::MAX, &[0, 1]), // past i64::MAX
            enc(1, 7, &[0, 3])[..5].to_vec(),
        ] {
            assert!(SetValue::from_intset_bytes(&bad, 512).is_none(), "{bad:?}");
        }
        let s = SetValue::intset_from_sorted(&[-1000, 5, 9, 1 << 40]);
        let data = s.intset_bytes().unwrap();
        for b in crate::keyspace::hash::tests::damaged(data) {
            if let Some((s, n)) = SetValue::from_intset_bytes(&b, 512) {
                let m: Vec<_> = s.iter().collect();
                assert_eq!(m.len(), n);
                assert!(m.iter().all(|&m| s.contains_member(m)));
            }
        }
    }
}
