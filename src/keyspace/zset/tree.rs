//! The order of a large sorted set: a counted B+tree (an order-statistics tree).
//!
//! Redis keeps this order in a skiplist. A skiplist search over 100k members compares against
//! about 30 nodes scattered over the heap, each one a cache miss, and a ZADD that changes a
//! score searches twice (remove, re-insert). This tree keeps up to [`CAP`] entries per node in
//! sorted arrays, so a search visits 3-4 nodes and binary-searches contiguous scores in each:
//! far fewer misses for the same O(log n). Every inner node also keeps the number of entries
//! under each child, so rank queries (ZRANK, ZRANGE by index) stay O(log n), as with Redis's
//! indexed skiplist.
//!
//! Nodes live in two chunked arenas (leaves, inner nodes; see [`Arena`]) addressed by `u32`; leaves
//! are chained both ways for range walks. Separators are lower bounds: every entry of child `j + 1`
//! is at or after `sep[j]`, every entry of child `j` before it. Removing entries keeps that true,
//! so a separator is never rewritten. A node that falls under [`MIN`] entries is merged into a
//! neighbour when the two fit in one node, otherwise left as it is; so only the root leaf can be
//! empty.

use smallvec::SmallVec;

use crate::keyspace::Key;

/// A node splits in two when it reaches this many entries (children for an inner node).
const CAP: usize = 32;
/// A node with fewer entries is merged into a neighbour when they fit together.
const MIN: usize = CAP / 4;
const NIL: u32 = u32::MAX;

/// The descent from the root: each inner node passed and the child taken.
type Path = SmallVec<[(u32, usize); 8]>;

struct Leaf {
    scores: SmallVec<[f64; CAP]>,
    members: SmallVec<[Key; CAP]>,
    prev: u32,
    next: u32,
}

impl Leaf {
    fn new() -> Leaf {
        Leaf {
            scores: SmallVec::new(),
            members: SmallVec::new(),
            prev: NIL,
            next: NIL,
        }
    }

    fn len(&self) -> usize {
        self.scores.len()
    }

    /// Number of entries before (score, member).
    fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        count_below(&self.scores, &self.members, score, |m| m < member)
    }
}

struct Inner {
    sep_scores: SmallVec<[f64; CAP]>,
    sep_members: SmallVec<[Key; CAP]>,
    children: SmallVec<[u32; CAP]>,
    /// Entries under each child.
    counts: SmallVec<[u32; CAP]>,
}

impl Inner {
    /// The child whose range holds (score, member).
    fn route(&self, score: f64, member: &[u8]) -> usize {
        count_below(&self.sep_scores, &self.sep_members, score, |m| m <= member)
    }
}

/// Number of leading entries of sorted (`scores`, `members`) below `score`, or at `score` with
/// a member for which `below` holds.
///
/// A scan rather than a binary search: counting the lower scores is branch-free (vectorized)
/// and reads the node's few cache lines in parallel, where each step of a binary search waits
/// for the line before it. Members are read only on equal scores.
#[inline]
fn count_below(
    scores: &[f64],
    members: &[Key],
    score: f64,
    below: impl Fn(&[u8]) -> bool,
) -> usize {
    let mut n = scores
        .iter()
        .map(|&s| usize::from(s < score))
        .sum::<usize>();
    while scores.get(n) == Some(&score) && members.get(n).is_some_and(|m| below(m)) {
        n += 1;
    }
    n
}

/// Number of leading indices of `0..n` for which `pred` holds (it must hold for a prefix).
#[inline]
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Nodes per chunk of an [`Arena`].
const CHUNK: usize = 64;

/// Nodes addressed by index, stored in chunks of [`CHUNK`] that never move: growing a set of
/// millions of members adds a chunk instead of copying every node (a `Vec` of ~1 KB leaves
/// would copy hundreds of megabytes in one ZADD, stalling the server). The first chunk grows
/// like a `Vec`, so a small set does not pay for a whole chunk.
/// Freed slots are reused before the arena grows.
struct Arena<T> {
    chunks: Vec<Vec<T>>,
    free: Vec<u32>,
}

impl<T> Arena<T> {
    fn new() -> Arena<T> {
        Arena { chunks: Vec::new(), free: Vec::new() }
    }

    /// Stores `v` in a freed slot or a new one, returning its index.
    fn alloc(&mut self, v: T) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self[i as usize] = v;
                i
            }
            None => self.push(v),
        }
    }

    /// Frees slot `i`, leaving `empty` in it, and returns what it held.
    fn release(&mut self, i: u32, empty: T) -> T {
        self.free.push(i);
        std::mem::replace(&mut self[i as usize], empty)
    }

    /// Heap bytes of the slots and the free list.
    fn heap_size(&self) -> usize {
        self.capacity() * std::mem::size_of::<T>() + self.free.capacity() * 4
    }

    fn len(&self) -> usize {
        self.chunks.last().map_or(0, |c| (self.chunks.len() - 1) * CHUNK + c.len())
    }

    /// Appends `v`, returning its index.
    fn push(&mut self, v: T) -> u32 {
        let at = self.len();
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(v),
            _ => {
                let mut c = Vec::with_capacity(if self.chunks.is_empty() { 1 } else { CHUNK });
                c.push(v);
                self.chunks.push(c);
            }
        }
        at as u32
    }

    fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// Nodes the chunks have room for.
    fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }
}

impl<T> std::ops::Index<usize> for Arena<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T> std::ops::IndexMut<usize> for Arena<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

/// Entries (score, member) in ascending order, with O(log n) search, insert, delete and rank.
pub struct Tree {
    leaves: Arena<Leaf>,
    inners: Arena<Inner>,
    root: u32,
    /// Levels of inner nodes above the leaves (0: the root is a leaf).
    height: usize,
    len: usize,
}

impl Default for Tree {
    fn default() -> Self {
        let mut leaves = Arena::new();
        leaves.push(Leaf::new());
        Tree {
            leaves,
            inners: Arena::new(),
            root: 0,
            height: 0,
            len: 0,
        }
    }
}

impl Tree {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held by the nodes and the members they own.
    pub fn heap_size(&self) -> usize {
        let keys = |ks: &[Key]| ks.iter().map(Key::heap_size).sum::<usize>();
        let leaves: usize = self.leaves.iter().map(|l| keys(&l.members)).sum();
        let inners: usize = self.inners.iter().map(|n| keys(&n.sep_members)).sum();
        self.leaves.heap_size() + self.inners.heap_size() + leaves + inners
    }

    /// The path to the leaf whose range holds (score, member), and that leaf.
    fn descend(&self, score: f64, member: &[u8]) -> (Path, u32) {
        let mut path = Path::new();
        let mut x = self.root;
        for _ in 0..self.height {
            let n = &self.inners[x as usize];
            let j = n.route(score, member);
            path.push((x, j));
            x = n.children[j];
        }
        (path, x)
    }

    /// Inserts (score, member), which the caller knows is absent.
    pub fn insert(&mut self, score: f64, member: &[u8]) {
        let (mut path, x) = self.descend(score, member);
        for &(p, j) in &path {
            self.inners[p as usize].counts[j] += 1;
        }
        let leaf = &mut self.leaves[x as usize];
        let at = leaf.rank_of(score, member);
        leaf.scores.insert(at, score);
        leaf.members.insert(at, Key::new(member));
        self.len += 1;
        if leaf.len() == CAP {
            self.split_leaf(x, &mut path);
        }
    }

    /// Removes (score, member); false if it is not there.
    pub fn delete(&mut self, score: f64, member: &[u8]) -> bool {
        let (path, x) = self.descend(score, member);
        let leaf = &mut self.leaves[x as usize];
        let at = leaf.rank_of(score, member);
        if at >= leaf.len() || leaf.scores[at] != score || &*leaf.members[at] != member {
            return false;
        }
        leaf.scores.remove(at);
        leaf.members.remove(at);
        self.len -= 1;
        for &(p, j) in &path {
            self.inners[p as usize].counts[j] -= 1;
        }
        self.rebalance(x, path);
        true
    }

    /// Moves the upper half of full leaf `x` into a new leaf after it.
    fn split_leaf(&mut self, x: u32, path: &mut Path) {
        let half = CAP / 2;
        let l = &mut self.leaves[x as usize];
        let right = Leaf {
            scores: l.scores.drain(half..).collect(),
            members: l.members.drain(half..).collect(),
            prev: x,
            next: l.next,
        };
        let sep = (right.scores[0], right.members[0].clone());
        let counts = (half as u32, right.len() as u32);
        let old_next = right.next;
        let r = self.leaves.alloc(right);
        if old_next != NIL {
            self.leaves[old_next as usize].prev = r;
        }
        self.leaves[x as usize].next = r;
        self.add_child(path, x, r, sep, counts);
    }

    /// Moves the upper half of the children of full inner node `x` into a new node after it.
    fn split_inner(&mut self, x: u32, path: &mut Path) {
        let half = CAP / 2;
        let n = &mut self.inners[x as usize];
        let right = Inner {
            sep_scores: n.sep_scores.drain(half..).collect(),
            sep_members: n.sep_members.drain(half..).collect(),
            children: n.children.drain(half..).collect(),
            counts: n.counts.drain(half..).collect(),
        };
        // `half` children stay with `half` separators: the last one moves up to the parent.
        let up_score = n.sep_scores.remove(half - 1);
        let up_member = n.sep_members.remove(half - 1);
        let left_count = n.counts.iter().sum::<u32>();
        let right_count = right.counts.iter().sum::<u32>();
        let r = self.inners.alloc(right);
        self.add_child(path, x, r, (up_score, up_member), (left_count, right_count));
    }

    /// Links `right`, just split off `left` (the child at the end of `path`, or the root), into
    /// the parent after `left`, splitting the parent in turn when it fills up.
    fn add_child(
        &mut self,
        path: &mut Path,
        left: u32,
        right: u32,
        sep: (f64, Key),
        c: (u32, u32),
    ) {
        let Some((p, j)) = path.pop() else {
            let root = Inner {
                sep_scores: smallvec::smallvec![sep.0],
                sep_members: smallvec::smallvec![sep.1],
                children: smallvec::smallvec![left, right],
                counts: smallvec::smallvec![c.0, c.1],
            };
            self.root = self.inners.alloc(root);
            self.height += 1;
            return;
        };
        let n = &mut self.inners[p as usize];
        n.sep_scores.insert(j, sep.0);
        n.sep_members.insert(j, sep.1);
        n.children.insert(j + 1, right);
        n.counts[j] = c.0;
        n.counts.insert(j + 1, c.1);
        if n.children.len() == CAP {
            self.split_inner(p, path);
        }
    }

    /// After a removal from leaf `x`, merges underfull nodes on `path` into a neighbour where
    /// they fit, and drops root levels left with a single child.
    fn rebalance(&mut self, x: u32, mut path: Path) {
        let mut size = self.leaves[x as usize].len();
        let mut leaf_level = true;
        while let Some((p, j)) = path.pop() {
            if size >= MIN {
                break;
            }
            let n = &self.inners[p as usize];
            if n.children.len() < 2 {
                (size, leaf_level) = (n.children.len(), false);
                continue;
            }
            let l = if j > 0 { j - 1 } else { 0 };
            let (a, b) = (n.children[l], n.children[l + 1]);
            let fits = if leaf_level {
                self.leaves[a as usize].len() + self.leaves[b as usize].len() < CAP
            } else {
                self.inners[a as usize].children.len() + self.inners[b as usize].children.len()
                    < CAP
            };
            if !fits {
                break;
            }
            let n = &mut self.inners[p as usize];
            let sep = (n.sep_scores.remove(l), n.sep_members.remove(l));
            let moved = n.counts.remove(l + 1);
            n.counts[l] += moved;
            n.children.remove(l + 1);
            size = n.children.len();
            if leaf_level {
                self.merge_leaves(a, b);
            } else {
                self.merge_inners(a, b, sep);
            }
            leaf_level = false;
        }
        while self.height > 0 && self.inners[self.root as usize].children.len() == 1 {
            let old = self.root;
            self.root = self.inners[old as usize].children[0];
            self.inners.release(old, Inner::empty());
            self.height -= 1;
        }
    }

    /// Appends leaf `b` (the next one) to leaf `a` and frees `b`.
    fn merge_leaves(&mut self, a: u32, b: u32) {
        let right = self.leaves.release(b, Leaf::new());
        let left = &mut self.leaves[a as usize];
        left.scores.extend(right.scores);
        left.members.extend(right.members);
        left.next = right.next;
        if right.next != NIL {
            self.leaves[right.next as usize].prev = a;
        }
    }

    /// Appends inner node `b` (the next one) to `a`, `sep` between them, and frees `b`.
    fn merge_inners(&mut self, a: u32, b: u32, sep: (f64, Key)) {
        let right = self.inners.release(b, Inner::empty());
        let left = &mut self.inners[a as usize];
        left.sep_scores.push(sep.0);
        left.sep_members.push(sep.1);
        left.sep_scores.extend(right.sep_scores);
        left.sep_members.extend(right.sep_members);
        left.children.extend(right.children);
        left.counts.extend(right.counts);
    }

    /// Number of leading entries for which `before(score, member)` holds (a prefix).
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut x = self.root;
        let mut rank = 0usize;
        for _ in 0..self.height {
            let n = &self.inners[x as usize];
            // Every entry of the children before `j` is below a separator that passes.
            let j = partition(n.sep_scores.len(), |i| {
                before(n.sep_scores[i], &n.sep_members[i])
            });
            rank += n.counts[..j].iter().map(|&c| c as usize).sum::<usize>();
            x = n.children[j];
        }
        let leaf = &self.leaves[x as usize];
        rank + partition(leaf.len(), |i| before(leaf.scores[i], &leaf.members[i]))
    }

    /// The leaf and index of the entry of 0-based rank `r` (which must be < len).
    fn locate(&self, mut r: usize) -> (u32, usize) {
        let mut x = self.root;
        for _ in 0..self.height {
            let n = &self.inners[x as usize];
            let mut j = 0;
            while j + 1 < n.counts.len() && r >= n.counts[j] as usize {
                r -= n.counts[j] as usize;
                j += 1;
            }
            x = n.children[j];
        }
        (x, r)
    }

    /// Calls `f` for the entries of ranks `lo..hi`, ascending or, with `rev`, descending.
    pub fn for_range(&self, lo: usize, hi: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        let hi = hi.min(self.len);
        if lo >= hi {
            return;
        }
        let (mut x, mut i) = self.locate(if rev { hi - 1 } else { lo });
        for _ in lo..hi {
            let leaf = &self.leaves[x as usize];
            let (Some(m), Some(&s)) = (leaf.members.get(i), leaf.scores.get(i)) else {
                return;
            };
            f(m, s);
            if !rev {
                i += 1;
                if i == leaf.len() {
                    (x, i) = (leaf.next, 0);
                }
            } else if i > 0 {
                i -= 1;
            } else {
                x = leaf.prev;
                i = match self.leaves.get(x as usize) {
                    Some(p) => p.len().saturating_sub(1),
                    None => 0,
                };
            }
            if x == NIL {
                return;
            }
        }
    }
}

impl Inner {
    fn empty() -> Inner {
        Inner {
            sep_scores: SmallVec::new(),
            sep_members: SmallVec::new(),
            children: SmallVec::new(),
            counts: SmallVec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use rand::{rngs::SmallRng, Rng, SeedableRng};

    use super::super::cmp_entry;
    use super::*;

    fn all(t: &Tree, rev: bool) -> Vec<(Vec<u8>, f64)> {
        let mut v = Vec::new();
        t.for_range(0, t.len(), rev, |m, s| v.push((m.to_vec(), s)));
        v
    }

    /// Checks the counts, separators and leaf chain against the entries.
    fn check(t: &Tree) {
        fn walk(t: &Tree, x: u32, depth: usize, out: &mut Vec<(f64, Vec<u8>)>) -> usize {
            if depth == 0 {
                let l = &t.leaves[x as usize];
                out.extend(
                    l.scores
                        .iter()
                        .zip(&l.members)
                        .map(|(s, m)| (*s, m.to_vec())),
                );
                return l.len();
            }
            let n = &t.inners[x as usize];
            assert_eq!(n.children.len(), n.counts.len());
            assert_eq!(n.children.len(), n.sep_scores.len() + 1);
            let mut total = 0;
            for (j, &c) in n.children.iter().enumerate() {
                let start = out.len();
                let got = walk(t, c, depth - 1, out);
                assert_eq!(got, n.counts[j] as usize);
                for (s, m) in &out[start..] {
                    if j > 0 {
                        let sep = (n.sep_scores[j - 1], &n.sep_members[j - 1]);
                        assert_ne!(cmp_entry(*s, m, sep.0, sep.1), Ordering::Less);
                    }
                    if j < n.sep_scores.len() {
                        let sep = (n.sep_scores[j], &n.sep_members[j]);
                        assert_eq!(cmp_entry(*s, m, sep.0, sep.1), Ordering::Less);
                    }
                }
                total += got;
            }
            total
        }
        let mut out = Vec::new();
        assert_eq!(walk(t, t.root, t.height, &mut out), t.len());
        let chained = all(t, false);
        assert_eq!(chained.len(), out.len());
        for (a, b) in chained.iter().zip(&out) {
            assert_eq!((a.1, &a.0), (b.0, &b.1));
        }
        let mut back = all(t, true);
        back.reverse();
        assert_eq!(back, chained);
    }

    #[test]
    fn matches_a_sorted_model_through_growth_and_shrinkage() {
        let mut rng = SmallRng::seed_from_u64(11);
        let mut t = Tree::default();
        let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
        for round in 0..40_000 {
            let m = format!("m{}", rng.gen_range(0..3000)).into_bytes();
            let s = f64::from(rng.gen_range(0..50));
            let shrinking = (round / 10_000) % 2 == 1;
            let pos = model.iter().position(|(_, x)| *x == m);
            match pos {
                Some(i) if shrinking || rng.gen_bool(0.3) => {
                    let (os, om) = model.remove(i);
                    assert!(t.delete(os, &om));
                    assert!(!t.delete(os, &om));
                }
                Some(_) => {}
                None if !shrinking => {
                    t.insert(s, &m);
                    let at = model
                        .partition_point(|(ms, mm)| cmp_entry(*ms, mm, s, &m) == Ordering::Less);
                    model.insert(at, (s, m));
                }
                None => {}
            }
            if round % 997 == 0 {
                check(&t);
            }
        }
        check(&t);
        let got: Vec<(f64, Vec<u8>)> = all(&t, false).into_iter().map(|(m, s)| (s, m)).collect();
        assert_eq!(got, model);
        for (i, (s, m)) in model.iter().enumerate().step_by(7) {
            let r = t.count_before(|ts, tm| cmp_entry(ts, tm, *s, m) == Ordering::Less);
            assert_eq!(r, i);
            let mut one = Vec::new();
            t.for_range(i, i + 1, false, |m, s| one.push((s, m.to_vec())));
            assert_eq!(one, vec![(*s, m.clone())]);
        }
        while let Some((s, m)) = model.pop() {
            assert!(t.delete(s, &m));
        }
        check(&t);
        assert_eq!((t.len(), t.height), (0, 0));
    }

    #[test]
    fn equal_scores_order_by_member_and_ranges_cross_leaves() {
        let mut t = Tree::default();
        for i in (0..1000).rev() {
            t.insert(0.0, format!("element:{i:06}").as_bytes());
        }
        check(&t);
        assert!(t.height >= 2);
        let mut got = Vec::new();
        t.for_range(95, 105, true, |m, _| {
            got.push(String::from_utf8_lossy(m).into_owned())
        });
        let want: Vec<String> = (95..105).rev().map(|i| format!("element:{i:06}")).collect();
        assert_eq!(got, want);
        assert_eq!(t.count_before(|_, m| m < b"element:000500".as_slice()), 500);
    }
}
