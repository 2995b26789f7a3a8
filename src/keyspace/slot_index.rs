//! A segment's hash index: hash -> `u16` slot number, one cache line per probe.
//!
//! Why not `hashbrown`: a SwissTable keeps its control bytes and its values in two arrays, so
//! a lookup in a table bigger than the cache misses twice before it even reaches the slot that
//! holds the key (three misses per lookup in all, measured as a third of the server's time for
//! SET at `-P 16` over 100k keys). Here a bucket group is one 64-byte line holding 20 one-byte
//! tags *and* the 20 slot numbers they belong to: one miss finds the slot. Because the line of
//! a hash is known before it is read, a pipelined batch can also touch the lines of all its
//! keys at once ([`SlotIndex::home_line`], [`SlotIndex::first_candidate`]) and overlap
//! their misses.
//!
//! Layout: a power-of-two number of groups. A hash picks its home group and a non-zero tag;
//! an entry goes to the first group, from home onwards, with a free bucket. A group that was
//! full when an insert passed it has its `over` flag set, and a lookup stops at the first
//! group without it, so a miss usually costs one line too. Removal just frees the bucket (the
//! flags stay, exactly as SwissTable's tombstones, and are cleared by the next rebuild). The
//! load is kept at or below 4/5 of the buckets, and flags are rebuilt away when more than an
//! eighth of the groups carry one beyond what a fresh layout of the same entries needs.

/// Buckets per group: 20 tags + 20 `u16` slots + the flag fill one 64-byte line.
const GROUP: usize = 20;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Group {
    /// 0 marks a free bucket; otherwise the entry's tag.
    tags: [u8; GROUP],
    /// Set when an insert found this group full and went on to the next one.
    over: u8,
    _pad: [u8; 3],
    slots: [u16; GROUP],
}

const EMPTY_GROUP: Group = Group { tags: [0; GROUP], over: 0, _pad: [0; 3], slots: [0; GROUP] };

/// Maps (hash, slot) pairs; the caller compares keys through `eq` closures, since the index
/// stores no keys.
pub struct SlotIndex {
    groups: Vec<Group>,
    len: usize,
    /// Groups whose `over` flag is set.
    overs: usize,
    /// `overs` right after the last rebuild: what a fresh layout of these entries needs.
    base_overs: usize,
    #[cfg(test)]
    rebuilds: usize,
}

/// The index's 32 bits of a hash: the caller's well-mixed hash (see `table::mix`).
#[inline]
fn home_and_tag(m: u64, mask: usize) -> (usize, u8) {
    let g = m as u32;
    // The group takes the low bits, the tag the top byte: independent bits of the same mix.
    ((g as usize) & mask, ((g >> 24) as u8).max(1))
}

/// Bit mask of the buckets of `tags` equal to `tag` (bit `i` for bucket `i`).
#[inline]
fn matches(tags: &[u8; GROUP], tag: u8) -> u32 {
    let mut m = 0u32;
    for (i, &t) in tags.iter().enumerate() {
        m |= u32::from(t == tag) << i;
    }
    m
}

impl SlotIndex {
    /// An index that holds `cap` entries without growing.
    pub fn with_capacity(cap: usize) -> Self {
        let groups = groups_for(cap);
        SlotIndex {
            groups: vec![EMPTY_GROUP; groups],
            len: 0,
            overs: 0,
            base_overs: 0,
            #[cfg(test)]
            rebuilds: 0,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.groups.len().wrapping_sub(1)
    }

    /// The slot whose hash mix is `m` and for which `eq` holds.
    #[inline]
    pub fn find(&self, m: u64, mut eq: impl FnMut(u16) -> bool) -> Option<u16> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let (mut gi, tag) = home_and_tag(m, mask);
        // At most one lap: right after an insert every group may carry a flag (the rebuild
        // that clears them runs before the next insert), so the flags alone may not stop it.
        for _ in 0..self.groups.len() {
            let g = &self.groups[gi];
            let mut hits = matches(&g.tags, tag);
            while hits != 0 {
                let b = hits.trailing_zeros() as usize;
                if eq(g.slots[b]) {
                    return Some(g.slots[b]);
                }
                hits &= hits - 1;
            }
            if g.over == 0 {
                return None;
            }
            gi = (gi + 1) & mask;
        }
        None
    }

    /// The line a lookup of `m` reads first, for [`crate::util::prefetch`].
    #[inline]
    pub fn home_line(&self, m: u64) -> Option<*const u8> {
        if self.groups.is_empty() {
            return None;
        }
        let (gi, _) = home_and_tag(m, self.mask());
        Some(std::ptr::from_ref(&self.groups[gi]).cast())
    }

    /// The slot of the first entry in the home group of `m` whose tag matches: where a lookup
    /// of `m` will most likely end, for prefetching. Reads the home line.
    #[inline]
    pub fn first_candidate(&self, m: u64) -> Option<u16> {
        if self.groups.is_empty() {
            return None;
        }
        let (gi, tag) = home_and_tag(m, self.mask());
        let g = &self.groups[gi];
        let hits = matches(&g.tags, tag);
        (hits != 0).then(|| g.slots[hits.trailing_zeros() as usize])
    }

    /// Adds an entry (the caller knows it is not present). `rehash` gives the mix of a stored
    /// slot, for when the index has to be rebuilt.
    pub fn insert(&mut self, m: u64, slot: u16, rehash: impl Fn(u16) -> u64) {
        if (self.len + 1) * 5 > self.groups.len() * GROUP * 4 {
            self.rebuild(groups_for(self.len + 1).max(self.groups.len() * 2), &rehash);
        } else if self.overs > self.base_overs + self.groups.len() / 8 {
            // Removals leave flags behind; once churn has added many beyond what a fresh
            // layout needs, lay the entries out afresh. Measured against the fresh layout's
            // own count, so a rebuild can never be followed at once by another.
            self.rebuild(self.groups.len(), &rehash);
        }
        self.place(m, slot);
        self.len += 1;
    }

    fn place(&mut self, m: u64, slot: u16) {
        let mask = self.mask();
        let (mut gi, tag) = home_and_tag(m, mask);
        // At most one lap, as in `find`.
        for _ in 0..self.groups.len() {
            let g = &mut self.groups[gi];
            if let Some(b) = g.tags.iter().position(|&t| t == 0) {
                g.tags[b] = tag;
                g.slots[b] = slot;
                return;
            }
            if g.over == 0 {
                g.over = 1;
                self.overs += 1;
            }
            gi = (gi + 1) & mask;
        }
    }

    fn rebuild(&mut self, groups: usize, rehash: &impl Fn(u16) -> u64) {
        let old = std::mem::replace(&mut self.groups, vec![EMPTY_GROUP; groups]);
        self.overs = 0;
        for g in &old {
            for (b, &t) in g.tags.iter().enumerate() {
                if t != 0 {
                    self.place(rehash(g.slots[b]), g.slots[b]);
                }
            }
        }
        self.base_overs = self.overs;
        #[cfg(test)]
        {
            self.rebuilds += 1;
        }
    }

    /// Finds the entry of `slot` (hash mix `m`) and lets `f` rewrite its slot number (a move)
    /// or remove it (`None`). Returns false if there is no such entry.
    pub fn update(&mut self, m: u64, slot: u16, f: impl FnOnce() -> Option<u16>) -> bool {
        if self.len == 0 {
            return false;
        }
        let mask = self.mask();
        let (mut gi, tag) = home_and_tag(m, mask);
        // At most one lap, as in `find`.
        for _ in 0..self.groups.len() {
            let g = &mut self.groups[gi];
            let mut hits = matches(&g.tags, tag);
            while hits != 0 {
                let b = hits.trailing_zeros() as usize;
                if g.slots[b] == slot {
                    match f() {
                        Some(to) => g.slots[b] = to,
                        None => {
                            g.tags[b] = 0;
                            self.len -= 1;
                        }
                    }
                    return true;
                }
                hits &= hits - 1;
            }
            if g.over == 0 {
                return false;
            }
            gi = (gi + 1) & mask;
        }
        false
    }
}

/// Groups for `cap` entries at a load of at most 4/5, a power of two (0 for none).
fn groups_for(cap: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    (cap * 5).div_ceil(4 * GROUP).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A well-scrambled stand-in for a key hash (splitmix64): sequential inputs must not land
    /// in evenly spaced groups, or overflow would never be exercised.
    fn mix(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn group_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Group>(), 64);
        assert_eq!(std::mem::align_of::<Group>(), 64);
    }

    /// Random inserts, moves and removes against a model; keys are slot owners' ids and
    /// deliberately collide in their hashes to exercise tags, overflow and rebuilds.
    #[test]
    fn matches_a_model_under_churn() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for &spread in &[u64::MAX, 4096, 64] {
            // slot -> key id; the index maps mix(key) -> slot.
            let mut slots: Vec<u64> = Vec::new();
            let mut model: HashMap<u64, u16> = HashMap::new();
            let mut ix = SlotIndex::with_capacity(0);
            let hash = |k: u64| mix(k % spread.max(1)) ^ (k / spread.max(1)).wrapping_mul(31);
            for step in 0..60_000u32 {
                let k = rng.gen::<u64>() % 9000;
                let found = {
                    let slots = &slots;
                    ix.find(hash(k), |s| slots[s as usize] == k)
                };
                assert_eq!(found, model.get(&k).copied(), "step {step} key {k}");
                if found.is_none() && slots.len() < 7000 && rng.gen_bool(0.6) {
                    let s = slots.len() as u16;
                    slots.push(k);
                    ix.insert(hash(k), s, |j| hash(slots[j as usize]));
                    model.insert(k, s);
                } else if let Some(s) = found {
                    // Swap-remove, as a segment does.
                    assert!(ix.update(hash(k), s, || None));
                    model.remove(&k);
                    let last = (slots.len() - 1) as u16;
                    if s != last {
                        let lk = slots[last as usize];
                        assert!(ix.update(hash(lk), last, || Some(s)));
                        model.insert(lk, s);
                        slots[s as usize] = lk;
                    }
                    slots.pop();
                }
                assert_eq!(ix.len, model.len());
            }
            for (&k, &s) in &model {
                assert_eq!(ix.find(hash(k), |j| slots[j as usize] == k), Some(s));
            }
        }
    }

    /// Churn at the maximum load (remove one, insert one, 200k times) must not rebuild often:
    /// each rebuild is O(entries).
    #[test]
    fn churn_at_full_load_rebuilds_rarely() {
        let mut ix = SlotIndex::with_capacity(7168);
        let cap = ix.groups.len() * GROUP * 4 / 5;
        // Slot s holds key keys[s]; keys are never reused.
        let mut keys: Vec<u64> = (0..cap as u64).collect();
        for s in 0..cap {
            let k = keys[s];
            ix.insert(mix(k), s as u16, |j| mix(keys[j as usize]));
        }
        let before = ix.rebuilds;
        let mut next = cap as u64;
        for i in 0..200_000usize {
            let s = (i * 7919) % cap;
            assert!(ix.update(mix(keys[s]), s as u16, || None));
            keys[s] = next;
            ix.insert(mix(next), s as u16, |j| mix(keys[j as usize]));
            next += 1;
        }
        assert_eq!(ix.groups.len(), 512, "no growth at a steady size");
        assert!(ix.rebuilds - before < 400, "{} rebuilds", ix.rebuilds - before);
        for (s, &k) in keys.iter().enumerate() {
            assert_eq!(ix.find(mix(k), |j| j as usize == s), Some(s as u16));
        }
    }

    /// Lookups end even when every group carries an overflow flag.
    #[test]
    fn lookups_end_when_every_group_is_flagged() {
        let mut ix = SlotIndex::with_capacity(20);
        ix.insert(mix(1), 0, |_| mix(1));
        for g in &mut ix.groups {
            g.over = 1;
        }
        assert_eq!(ix.find(mix(2), |_| false), None);
        assert!(!ix.update(mix(2), 5, || None));
        assert_eq!(ix.find(mix(1), |s| s == 0), Some(0));
    }

    #[test]
    fn load_stays_bounded() {
        let mut ix = SlotIndex::with_capacity(0);
        let n = 7168u16;
        for s in 0..n {
            ix.insert(mix(u64::from(s)), s, |j| mix(u64::from(j)));
        }
        assert!(ix.len * 5 <= ix.groups.len() * GROUP * 4);
        assert_eq!(SlotIndex::with_capacity(7168).groups.len(), 512);
        for s in 0..n {
            assert_eq!(ix.find(mix(u64::from(s)), |j| j == s), Some(s));
        }
    }
}
