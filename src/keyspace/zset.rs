//! The sorted set value: members ordered by (score, member), in one of Redis's two encodings.
//!
//! * `listpack`: one contiguous byte buffer of entries sorted by (score, member). Each entry is
//!   `varint(len) member score`, where the score is `varint(zigzag(n) << 1)` for small integral
//!   values and `0x01` followed by the 8 bytes of the double otherwise. Every operation is a
//!   linear walk, which is cheap at the sizes this encoding is kept for
//!   (`zset-max-listpack-entries` / `zset-max-listpack-value`).
//! * `skiplist`: an indexed skiplist (each link carries its span, so rank queries are
//!   O(log n)) stored in an arena of nodes addressed by `u32`, plus a member -> score
//!   [`Table`], which also gives ZSCAN its cursor and ZRANDMEMBER its O(1) sampling.
//!
//! Range queries are expressed as *rank* ranges: [`ZSetValue::count_before`] counts the
//! members for which a monotone predicate holds (a prefix of the order), so a score or lex
//! bound becomes a rank, and [`ZSetValue::for_range`] walks a rank range either way.

use std::cmp::Ordering;
use std::fmt;

use rand::Rng;
use smallvec::SmallVec;

use super::{Key, Table};

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
            ZSetValue::Skip(s) => s.list.len,
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
                let nodes: usize = s
                    .list
                    .nodes
                    .iter()
                    .map(|n| {
                        std::mem::size_of::<Node>()
                            + n.member.heap_size()
                            + n.links.len() * std::mem::size_of::<Link>()
                    })
                    .sum();
                let map_slot = std::mem::size_of::<(u32, Box<[u8]>, f64)>() + 3;
                let map: usize = s.map.iter().map(|(k, _)| k.len() + map_slot).sum();
                std::mem::size_of::<SkipSet>() + nodes + map
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
            ZSetValue::Pack(p) => p.find(member).map(|(_, _, s)| s),
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
                if let Some((a, b, _)) = p.find(member) {
                    p.remove_bytes(a, b);
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

    /// Removes `member`; returns its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Pack(p) => {
                let (a, b, s) = p.find(member)?;
                p.remove_bytes(a, b);
                Some(s)
            }
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
            ZSetValue::Pack(p) => p.iter().take_while(|e| before(e.score, e.member)).count(),
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
            ZSetValue::Pack(p) => {
                let items: Vec<Entry<'_>> = p.iter().skip(lo).take(hi - lo).collect();
                if rev {
                    items.iter().rev().for_each(|e| f(e.member, e.score));
                } else {
                    items.iter().for_each(|e| f(e.member, e.score));
                }
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
                let mut span = p.iter().skip(lo).take(hi - lo).map(|e| (e.start, e.end));
                let first = span.next().unwrap_or((0, 0));
                let (start, end) = (first.0, span.last().unwrap_or(first).1);
                p.buf.drain(start..end);
                p.len -= (hi - lo) as u32;
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
                p.iter().for_each(|e| f(e.member, e.score));
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
                .for_range(0, s.list.len, false, |m, _| max = max.max(m.len()));
            if s.list.len <= lim.max_entries && max <= lim.max_value {
                let mut p = Pack::default();
                s.list
                    .for_range(0, s.list.len, false, |m, sc| p.push_back(m, sc));
                *self = ZSetValue::Pack(Box::new(p));
            }
        }
    }

    fn convert_to_skiplist(&mut self) {
        if let ZSetValue::Pack(p) = self {
            let mut s = SkipSet::default();
            for e in p.iter() {
                s.insert(e.member, e.score);
            }
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
                    .for_range(0, s.list.len, false, |m, sc| n.insert(m, sc));
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pack {
    buf: Vec<u8>,
    len: u32,
}

/// One decoded listpack entry with its byte span.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub member: &'a [u8],
    pub score: f64,
    start: usize,
    end: usize,
}

/// Largest magnitude stored as an integer score (exact in a double, and the zigzag shifted by
/// one still fits a u64).
const INT_SCORE_MAX: f64 = 4_503_599_627_370_496.0; // 2^52

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = buf.get(*pos) {
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    v
}

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

/// Appends an entry: `varint(member len) member score`. The score starts with a varint tag
/// whose low bits pick its form: `..0` an integer (zigzag, shifted left once); `..11` a short
/// decimal `m / 10^d` (tag = zigzag(m) << 4 | (d - 1) << 2 | 3), which Redis's listpack would
/// store as a string such as `25.5`; the single byte `1` a raw little-endian double that
/// follows.
fn encode_entry(out: &mut Vec<u8>, member: &[u8], score: f64) {
    put_varint(out, member.len() as u64);
    out.extend_from_slice(member);
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

/// Iterator over listpack entries.
pub struct PackIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let mut p = self.pos;
        let n = get_varint(self.buf, &mut p) as usize;
        let member = self.buf.get(p..p + n)?;
        p += n;
        let tag = get_varint(self.buf, &mut p);
        let score = if tag & 1 == 0 {
            unzigzag(tag >> 1) as f64
        } else if tag & 3 == 3 {
            let d = ((tag >> 2) & 3) as usize + 1;
            unzigzag(tag >> 4) as f64 / POW10[d]
        } else {
            let bytes: [u8; 8] = self.buf.get(p..p + 8)?.try_into().ok()?;
            p += 8;
            f64::from_le_bytes(bytes)
        };
        self.pos = p;
        Some(Entry {
            member,
            score,
            start,
            end: p,
        })
    }
}

impl Pack {
    pub fn iter(&self) -> PackIter<'_> {
        PackIter {
            buf: &self.buf,
            pos: 0,
        }
    }

    fn find(&self, member: &[u8]) -> Option<(usize, usize, f64)> {
        self.iter()
            .find(|e| e.member == member)
            .map(|e| (e.start, e.end, e.score))
    }

    fn insert(&mut self, member: &[u8], score: f64) {
        let at = self
            .iter()
            .find(|e| cmp_entry(e.score, e.member, score, member) == Ordering::Greater)
            .map_or(self.buf.len(), |e| e.start);
        let mut enc = Vec::with_capacity(member.len() + 12);
        encode_entry(&mut enc, member, score);
        self.buf.reserve_exact(enc.len());
        self.buf.splice(at..at, enc);
        self.len += 1;
    }

    /// Appends an entry known to sort after every present one.
    fn push_back(&mut self, member: &[u8], score: f64) {
        encode_entry(&mut self.buf, member, score);
        self.len += 1;
    }

    fn remove_bytes(&mut self, a: usize, b: usize) {
        self.buf.drain(a..b);
        self.len -= 1;
    }
}

// ---------------------------------------------------------------------------------------------
// skiplist

const NIL: u32 = u32::MAX;
const MAX_LEVEL: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Link {
    next: u32,
    span: u32,
}

/// Field order is fixed so that what a search step reads (score, links) comes first, and
/// short members sit inline (`Key`) so comparing equal scores needs no pointer chase.
#[repr(C)]
struct Node {
    score: f64,
    /// Forward links, one per level. Up to 4 levels (all but 1 in 256 nodes at p = 1/4) sit
    /// inside the node, so a search step touches one cache line instead of two.
    links: SmallVec<[Link; 4]>,
    member: Key,
    prev: u32,
}

/// An indexed skiplist over an arena; node 0 is the header.
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    level: usize,
    len: usize,
    tail: u32,
    seed: u64,
}

impl Default for SkipList {
    fn default() -> Self {
        let header = Node {
            member: Key::new(b""),
            score: 0.0,
            prev: NIL,
            links: smallvec::smallvec![Link { next: NIL, span: 0 }; MAX_LEVEL],
        };
        SkipList {
            nodes: vec![header],
            free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
            seed: 0x2545_F491_4F6C_DD1D,
        }
    }
}

impl SkipList {
    fn random_level(&mut self) -> usize {
        let mut lvl = 1;
        loop {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            // Each further level with probability 1/4, as Redis's ZSKIPLIST_P.
            if self.seed & 3 != 0 || lvl >= MAX_LEVEL {
                return lvl;
            }
            lvl += 1;
        }
    }

    #[inline]
    fn link(&self, x: u32, i: usize) -> Link {
        self.nodes[x as usize].links[i]
    }

    #[inline]
    fn precedes(&self, x: u32, score: f64, member: &[u8]) -> bool {
        let n = &self.nodes[x as usize];
        cmp_entry(n.score, &n.member, score, member) == Ordering::Less
    }

    /// For each level, the last node before (score, member) and its rank.
    fn find_update(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], [u32; MAX_LEVEL]) {
        let mut update = [0u32; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = 0u32;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let l = self.link(x, i);
                if l.next != NIL && self.precedes(l.next, score, member) {
                    rank[i] += l.span;
                    x = l.next;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        (update, rank)
    }

    fn alloc(&mut self, node: Node) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn insert(&mut self, score: f64, member: &[u8]) {
        let (mut update, mut rank) = self.find_update(score, member);
        let lvl = self.random_level();
        if lvl > self.level {
            for i in self.level..lvl {
                rank[i] = 0;
                update[i] = 0;
                self.nodes[0].links[i].span = self.len as u32;
            }
            self.level = lvl;
        }
        let links: SmallVec<[Link; 4]> = smallvec::smallvec![Link { next: NIL, span: 0 }; lvl];
        let prev = if update[0] == 0 { NIL } else { update[0] };
        let x = self.alloc(Node {
            member: member.into(),
            score,
            prev,
            links,
        });
        for i in 0..lvl {
            let u = update[i] as usize;
            let ul = self.nodes[u].links[i];
            let moved = rank[0] - rank[i];
            self.nodes[x as usize].links[i] = Link {
                next: ul.next,
                span: ul.span - moved,
            };
            self.nodes[u].links[i] = Link {
                next: x,
                span: moved + 1,
            };
        }
        for i in lvl..self.level {
            self.nodes[update[i] as usize].links[i].span += 1;
        }
        match self.link(x, 0).next {
            NIL => self.tail = x,
            n => self.nodes[n as usize].prev = x,
        }
        self.len += 1;
    }

    fn delete(&mut self, score: f64, member: &[u8]) -> bool {
        let (update, _) = self.find_update(score, member);
        let x = self.link(update[0], 0).next;
        if x == NIL {
            return false;
        }
        let n = &self.nodes[x as usize];
        if n.score != score || &*n.member != member {
            return false;
        }
        for i in 0..self.level {
            let u = update[i] as usize;
            if self.nodes[u].links[i].next == x {
                let xl = self.nodes[x as usize].links[i];
                self.nodes[u].links[i] = Link {
                    next: xl.next,
                    span: self.nodes[u].links[i].span + xl.span - 1,
                };
            } else {
                self.nodes[u].links[i].span -= 1;
            }
        }
        let (next, prev) = (self.link(x, 0).next, self.nodes[x as usize].prev);
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
        while self.level > 1 && self.link(0, self.level - 1).next == NIL {
            self.level -= 1;
        }
        let node = &mut self.nodes[x as usize];
        node.member = Key::new(b"");
        node.links = SmallVec::new();
        self.free.push(x);
        self.len -= 1;
        true
    }

    fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut x = 0u32;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next == NIL {
                    break;
                }
                let n = &self.nodes[l.next as usize];
                if !before(n.score, &n.member) {
                    break;
                }
                rank += l.span as usize;
                x = l.next;
            }
        }
        rank
    }

    /// Node at 0-based rank `r` (which must be < len).
    fn node_at(&self, r: usize) -> u32 {
        let target = r + 1;
        let mut x = 0u32;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next != NIL && traversed + l.span as usize <= target {
                    traversed += l.span as usize;
                    x = l.next;
                } else {
                    break;
                }
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }

    fn for_range(&self, lo: usize, hi: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        let hi = hi.min(self.len);
        if lo >= hi {
            return;
        }
        let mut x = self.node_at(if rev { hi - 1 } else { lo });
        for _ in lo..hi {
            if x == NIL {
                return;
            }
            let n = &self.nodes[x as usize];
            f(&n.member, n.score);
            x = if rev { n.prev } else { n.links[0].next };
        }
    }
}

/// The large encoding: skiplist for order plus member table for lookups.
#[derive(Default)]
pub struct SkipSet {
    list: SkipList,
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
    fn decimal_scores_are_short_and_exact() {
        let mut buf = Vec::new();
        encode_entry(&mut buf, b"m", 25.5);
        assert_eq!(buf.len(), 1 + 1 + 2);
        for s in [0.1, -0.3, 25.5, 1.0001, -1234.5678, 0.1 + 0.2, 1e-5, 3.14159, 1e17 + 0.5] {
            let mut buf = Vec::new();
            encode_entry(&mut buf, b"m", s);
            let got = PackIter { buf: &buf, pos: 0 }.next().unwrap().score;
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
}
