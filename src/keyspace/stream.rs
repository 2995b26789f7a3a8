//! The stream value (Redis `t_stream.c`): entries ordered by ID, each with its field/value
//! pairs, plus the stream's metadata and its consumer groups.
//!
//! Entries live in *nodes*, as in Redis (a radix tree of listpacks): a `BTreeMap` keyed by each
//! node's master ID (the ID of its first entry), each node a vector of entries in ID order. A
//! node takes appends until it holds `stream-node-max-entries` entries (deleted ones included)
//! or its listpack would reach `stream-node-max-bytes` (its size is tracked with the exact
//! listpack encoding rules). Deleting an entry only marks it deleted, and a node goes when its
//! last live entry does. This is what makes approximate trimming (`MAXLEN ~`, `MINID ~`)
//! behave exactly as in Redis: it removes whole nodes only. Range reads are O(log n) (find the
//! node, then binary search in it); appends are O(1) amortised.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A stream entry ID: milliseconds and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The next ID, or `None` past the last possible one (Redis `streamIncrID`).
    pub fn incr(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID, or `None` before 0-0 (Redis `streamDecrID`).
    pub fn decr(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// `ms-seq` as bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The 16-byte big-endian form (Redis's radix tree key; also our snapshot order).
    pub fn to_be(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// How [`parse_id`] treats a missing sequence part and the special forms.
#[derive(Debug, Clone, Copy)]
pub struct IdSyntax {
    /// Sequence used when the argument is only `<ms>`.
    pub missing_seq: u64,
    /// Refuse `-` and `+`.
    pub strict: bool,
    /// Accept `<ms>-*` (XADD): the result then says the sequence was not given.
    pub allow_auto_seq: bool,
}

/// Parses a stream ID argument as Redis's `streamGenericParseIDOrReply`: `-`, `+`, `<ms>`,
/// `<ms>-<seq>`, and with `allow_auto_seq` `<ms>-*`. Returns the ID and whether the sequence
/// was given (false only for `<ms>-*`); `None` for anything invalid.
pub fn parse_id(arg: &[u8], syn: IdSyntax) -> Option<(StreamId, bool)> {
    if arg.len() > 127 {
        return None;
    }
    match arg {
        b"-" | b"+" if syn.strict => return None,
        b"-" => return Some((StreamId::MIN, true)),
        b"+" => return Some((StreamId::MAX, true)),
        _ => {}
    }
    let (ms_part, seq_part) = match arg.iter().position(|&c| c == b'-') {
        Some(p) => (&arg[..p], Some(&arg[p + 1..])),
        None => (arg, None),
    };
    let ms = parse_u64(ms_part)?;
    match seq_part {
        None => Some((StreamId::new(ms, syn.missing_seq), true)),
        Some(b"*") if syn.allow_auto_seq => Some((StreamId::new(ms, 0), false)),
        Some(s) => Some((StreamId::new(ms, parse_u64(s)?), true)),
    }
}

/// Redis's `string2ull`: an optional leading `+` is not accepted, digits only, no overflow;
/// like `strtoull` it also takes a leading `-` (wrapping), which Redis's ID parser inherits.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    // Redis first tries a strict signed parse, then strtoull; both accept only digits
    // (strtoull would take spaces and signs, but the result must consume the whole string and
    // a leading '-' would make string2ll succeed only for negative numbers, which string2ull
    // rejects).
    if !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Node limits (`stream-node-max-bytes`, `stream-node-max-entries`).
#[derive(Debug, Clone, Copy)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// Largest total size of one entry's fields and values (Redis's listpack limit).
pub const MAX_ENTRY_BYTES: usize = 1 << 30;

/// One entry of a node. Deleted entries stay (marked) until their node goes, as in Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: StreamId,
    pub deleted: bool,
    /// field, value, field, value, ...
    pub fields: Vec<Box<[u8]>>,
}

impl Item {
    /// The (field, value) pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields.chunks_exact(2).map(|p| (&*p[0], &*p[1]))
    }
}

/// A node: a run of entries (Redis: one listpack under its master ID).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The master entry's field names (the first entry's).
    master_fields: Vec<Box<[u8]>>,
    items: Vec<Item>,
    live: usize,
    /// Listpack bytes of the entries (the master entry is computed from the counts).
    items_bytes: usize,
}

impl Node {
    /// The master ID; `id` for a node still empty (about to take its first entry).
    fn master_or(&self, id: StreamId) -> StreamId {
        self.items.first().map_or(id, |i| i.id)
    }

    fn deleted(&self) -> usize {
        self.items.len() - self.live
    }

    /// Size of this node's listpack in Redis.
    fn lp_bytes(&self) -> usize {
        let mut b = 7 + lp_int_size(self.live as i64) + lp_int_size(self.deleted() as i64);
        b += lp_int_size(self.master_fields.len() as i64);
        b += self
            .master_fields
            .iter()
            .map(|f| lp_str_size(f))
            .sum::<usize>();
        b + lp_int_size(0) + self.items_bytes
    }

    fn same_fields(&self, fields: &[Box<[u8]>]) -> bool {
        fields.len() == self.master_fields.len() * 2
            && fields
                .iter()
                .step_by(2)
                .zip(&self.master_fields)
                .all(|(a, b)| a == b)
    }

    /// Listpack bytes of one entry appended to this node.
    fn item_bytes(&self, id: StreamId, fields: &[Box<[u8]>]) -> usize {
        let master = self.master_or(id);
        let same = self.same_fields(fields);
        let npairs = fields.len() / 2;
        let mut b = lp_int_size(if same { 2 } else { 0 });
        b += lp_int_size(id.ms.wrapping_sub(master.ms) as i64);
        b += lp_int_size(id.seq.wrapping_sub(master.seq) as i64);
        let mut count = npairs + 3;
        if same {
            b += fields
                .iter()
                .skip(1)
                .step_by(2)
                .map(|v| lp_str_size(v))
                .sum::<usize>();
        } else {
            b += lp_int_size(npairs as i64);
            b += fields.iter().map(|v| lp_str_size(v)).sum::<usize>();
            count += npairs + 1;
        }
        b + lp_int_size(count as i64)
    }

    fn last_id(&self) -> StreamId {
        self.items[self.items.len() - 1].id
    }

    fn position(&self, id: StreamId) -> Result<usize, usize> {
        self.items.binary_search_by(|it| it.id.cmp(&id))
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }
}

/// Bytes of a listpack integer element (encoding + backlen).
fn lp_int_size(v: i64) -> usize {
    if (0..=127).contains(&v) {
        2
    } else if (-4096..=4095).contains(&v) {
        3
    } else if (-32768..=32767).contains(&v) {
        4
    } else if (-8_388_608..=8_388_607).contains(&v) {
        5
    } else if (-2_147_483_648..=2_147_483_647).contains(&v) {
        6
    } else {
        10
    }
}

/// Bytes of a listpack element holding `s` (stored as an integer when it is one).
fn lp_str_size(s: &[u8]) -> usize {
    if s.len() <= 20 {
        if let Some(n) = crate::util::num::parse_i64(s) {
            return lp_int_size(n);
        }
    }
    let hdr = match s.len() {
        0..=63 => 1,
        64..=4095 => 2,
        _ => 5,
    };
    let enc = hdr + s.len();
    let back = match enc {
        0..=127 => 1,
        128..=16383 => 2,
        16384..=2_097_151 => 3,
        2_097_152..=268_435_455 => 4,
        _ => 5,
    };
    enc + back
}

/// A pending entry of a consumer group (Redis `streamNACK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub consumer: Box<[u8]>,
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consumer {
    /// Unix ms of the consumer's last interaction.
    pub seen_time: u64,
    /// IDs of its pending entries (the details are in the group's PEL).
    pub pel: BTreeSet<StreamId>,
}

/// `entries_read` value meaning "unknown" (Redis `SCG_INVALID_ENTRIES_READ`).
pub const ENTRIES_READ_INVALID: i64 = -1;

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries read so far (a logical counter), or [`ENTRIES_READ_INVALID`].
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Self {
        Group {
            last_id,
            entries_read,
            ..Default::default()
        }
    }

    /// Looks a consumer up, refreshing its seen time unless `now` is `None`.
    pub fn consumer(&mut self, name: &[u8], now: Option<u64>) -> Option<&mut Consumer> {
        let c = self.consumers.get_mut(name)?;
        if let Some(t) = now {
            c.seen_time = t;
        }
        Some(c)
    }

    /// Creates a consumer; false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            name.into(),
            Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// Gives pending entry `id` to `consumer` (which must exist) with the given delivery time
    /// and count, creating the entry or moving it from its previous owner.
    pub fn assign(&mut self, id: StreamId, consumer: &[u8], time: u64, count: u64) {
        let nack = self.pel.entry(id).or_insert_with(|| Nack {
            consumer: Box::default(),
            delivery_time: time,
            delivery_count: count,
        });
        if let Some(old) = self.consumers.get_mut(&nack.consumer) {
            if &*nack.consumer != consumer {
                old.pel.remove(&id);
            }
        }
        nack.consumer = consumer.into();
        nack.delivery_time = time;
        nack.delivery_count = count;
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Removes a pending entry from the group and its consumer. Returns whether it existed.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(nack) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&nack.consumer) {
            c.pel.remove(&id);
        }
        true
    }

    /// Deletes a consumer and its pending entries; returns how many it had, `None` if absent.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }
}

/// Why an append failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendError {
    /// The ID is not greater than the last one (or no sequence is left for `ms-*`).
    NotGreater,
    /// The fields are too large for one entry.
    TooLarge,
}

/// How to trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// A stream value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamValue {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    pub last_id: StreamId,
    /// First live entry's ID (0-0 when empty), as Redis records it.
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Box<[u8]>, Group>,
}

impl StreamValue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Number of nodes (XINFO's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes in order (for persistence): master ID and entries (deleted ones included).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Number of radix tree nodes Redis's `rax` holds for these node keys (XINFO's
    /// `radix-tree-nodes`): the nodes of the compressed trie of the 16-byte big-endian keys.
    pub fn rax_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.to_be()).collect();
        if keys.is_empty() {
            return 1;
        }
        trie_nodes(&keys, 0)
    }

    /// Appends an entry. `given` is an explicit ID with whether its sequence was given
    /// (`ms-*` gives only the ms); without it the ID derives from `now_ms`.
    pub fn append(
        &mut self,
        given: Option<(StreamId, bool)>,
        now_ms: u64,
        fields: Vec<Box<[u8]>>,
        lim: NodeLimits,
    ) -> Result<StreamId, AppendError> {
        let id = match given {
            Some((id, true)) => id,
            Some((id, false)) if id.ms == self.last_id.ms => {
                let seq = self
                    .last_id
                    .seq
                    .checked_add(1)
                    .ok_or(AppendError::NotGreater)?;
                StreamId::new(id.ms, seq)
            }
            Some((id, false)) => id,
            None if now_ms > self.last_id.ms => StreamId::new(now_ms, 0),
            None => self.last_id.incr().unwrap_or(StreamId::MIN),
        };
        if id <= self.last_id {
            return Err(AppendError::NotGreater);
        }
        let total: usize = fields.iter().map(|f| f.len()).sum();
        if total > MAX_ENTRY_BYTES {
            return Err(AppendError::TooLarge);
        }
        self.push_item(id, fields, lim, total);
        self.length += 1;
        self.entries_added = self.entries_added.wrapping_add(1);
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(id)
    }

    /// Puts an item at the tail, in the last node or a new one per Redis's rule.
    fn push_item(&mut self, id: StreamId, fields: Vec<Box<[u8]>>, lim: NodeLimits, total: usize) {
        self.drop_tombstones_from(id);
        let max_bytes = if lim.max_bytes == 0 || lim.max_bytes > MAX_ENTRY_BYTES {
            MAX_ENTRY_BYTES
        } else {
            lim.max_bytes
        };
        let fits = self.nodes.values().next_back().is_some_and(|n| {
            n.lp_bytes() + total < max_bytes
                && (lim.max_entries == 0 || n.items.len() < lim.max_entries)
        });
        if !fits {
            let master_fields = fields.iter().step_by(2).cloned().collect();
            let node = Node {
                master_fields,
                items: Vec::new(),
                live: 0,
                items_bytes: 0,
            };
            self.nodes.insert(id, node);
        }
        let Some(node) = self.nodes.values_mut().next_back() else {
            return;
        };
        node.items_bytes += node.item_bytes(id, &fields);
        node.items.push(Item {
            id,
            deleted: false,
            fields,
        });
        node.live += 1;
    }

    /// Removes the deleted entries at the tail that are not below `id`, and the last node if
    /// that empties it, so that an entry with `id` can follow.
    ///
    /// Redis lets XSETID go below a deleted entry at the tail (it compares with the last live
    /// entry only), and its next XADD then lands after that entry, out of order in the node.
    /// Redis's readers skip deleted entries before comparing IDs, so the entry is found all the
    /// same; here a node's entries stay in order for binary search, and a tombstone that no
    /// reader ever returns can simply go.
    fn drop_tombstones_from(&mut self, id: StreamId) {
        let Some(mut last) = self.nodes.last_entry() else { return };
        let node = last.get_mut();
        while node.items.last().is_some_and(|it| it.deleted && it.id >= id) {
            if node.items.len() == 1 {
                last.remove();
                return;
            }
            let it = node.items.pop().expect("checked non-empty");
            node.items_bytes -= node.item_bytes(it.id, &it.fields);
        }
    }

    /// Rebuilds a node as stored (loaders): entries in ascending order. Returns false if the
    /// node does not fit after the existing ones or is malformed.
    ///
    /// A node may hold no live entry: Redis's exact XTRIM MINID marks entries deleted inside a
    /// node it cannot drop whole and keeps the node, and saves it so. Deleted entries out of
    /// order (see [`Self::drop_tombstones_from`]) are dropped, here and at the tail of the
    /// node before.
    pub fn load_node(&mut self, mut items: Vec<Item>) -> bool {
        if items.is_empty() {
            return false;
        }
        // Keep a tombstone only between the entries kept before it and the next live one.
        let mut next_live = vec![StreamId::MAX; items.len()];
        let mut after = None;
        for (i, it) in items.iter().enumerate().rev() {
            next_live[i] = after.unwrap_or(StreamId::MAX);
            if !it.deleted {
                after = Some(it.id);
            }
        }
        let mut prev: Option<StreamId> = None;
        let mut i = 0;
        items.retain(|it| {
            let keep = !it.deleted || (prev.is_none_or(|p| p < it.id) && it.id < next_live[i]);
            i += 1;
            if keep {
                prev = Some(it.id);
            }
            keep
        });
        let Some(first) = items.first() else {
            return false;
        };
        self.drop_tombstones_from(first.id);
        if self.nodes.values().next_back().is_some_and(|n| n.last_id() >= first.id) {
            return false;
        }
        if items.windows(2).any(|w| w[0].id >= w[1].id)
            || items.iter().any(|i| i.fields.is_empty() || i.fields.len() % 2 != 0)
        {
            return false;
        }
        let master_fields = first.fields.iter().step_by(2).cloned().collect();
        let mut node = Node {
            master_fields,
            items: Vec::new(),
            live: 0,
            items_bytes: 0,
        };
        for it in items {
            node.items_bytes += node.item_bytes(it.id, &it.fields);
            if !it.deleted {
                node.live += 1;
            }
            node.items.push(it);
        }
        self.length += node.live as u64;
        self.nodes.insert(node.master_or(StreamId::MIN), node);
        true
    }

    /// After loading nodes: checks the metadata against them and sets the first ID. The last
    /// ID may be below a deleted entry (XSETID allows it, as in Redis), not below a live one.
    pub fn finish_load(&mut self) -> bool {
        self.first_id = self.first_entry().map_or(StreamId::MIN, |i| i.id);
        self.last_valid_id() <= self.last_id
    }

    /// The live entries from `start` to `end` inclusive, ascending (or descending with `rev`).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Box<dyn Iterator<Item = &Item> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        // The node holding `start` is the last one whose master ID is <= start.
        let first_key = self
            .nodes
            .range(..=start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        let nodes = self.nodes.range(first_key..=end).map(|(_, n)| n);
        let items = move |n: &'_ Node| {
            let lo = n.position(start).unwrap_or_else(|i| i);
            let hi = match n.position(end) {
                Ok(i) => i + 1,
                Err(i) => i,
            };
            (lo.min(hi), hi)
        };
        if rev {
            Box::new(nodes.rev().flat_map(move |n| {
                let (lo, hi) = items(n);
                n.items[lo..hi].iter().rev().filter(|i| !i.deleted)
            }))
        } else {
            Box::new(nodes.flat_map(move |n| {
                let (lo, hi) = items(n);
                n.items[lo..hi].iter().filter(|i| !i.deleted)
            }))
        }
    }

    /// Every live entry in order.
    pub fn iter(&self) -> impl Iterator<Item = &Item> {
        self.nodes
            .values()
            .flat_map(|n| n.items.iter().filter(|i| !i.deleted))
    }

    pub fn first_entry(&self) -> Option<&Item> {
        self.iter().next()
    }

    pub fn last_entry(&self) -> Option<&Item> {
        self.range(StreamId::MIN, StreamId::MAX, true).next()
    }

    /// The live entry with this ID.
    pub fn get(&self, id: StreamId) -> Option<&Item> {
        let (_, n) = self.nodes.range(..=id).next_back()?;
        let i = n.position(id).ok()?;
        Some(&n.items[i]).filter(|it| !it.deleted)
    }

    /// Deletes one entry. Returns whether it existed.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&key, n)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Ok(i) = n.position(id) else {
            return false;
        };
        if n.items[i].deleted {
            return false;
        }
        n.items[i].deleted = true;
        n.live -= 1;
        if n.live == 0 {
            self.nodes.remove(&key);
        }
        self.length -= 1;
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.first_entry().map_or(StreamId::MIN, |i| i.id);
        }
        true
    }

    /// Trims from the head (Redis `streamTrim`): whole nodes while allowed; with `approx`
    /// stops at the first node that cannot go whole, otherwise marks entries inside it.
    /// `limit` (0 = none) caps the entries removed. Returns how many were removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        while let Some(mut entry) = self.nodes.first_entry() {
            if let Trim::MaxLen(max) = how {
                if self.length <= max {
                    break;
                }
            }
            let live = entry.get().live as u64;
            if limit > 0 && deleted + live > limit {
                break;
            }
            let whole = match how {
                Trim::MaxLen(max) => self.length - live >= max,
                Trim::MinId(min) => entry.get().last_id() < min,
            };
            if whole {
                entry.remove();
                self.length -= live;
                deleted += live;
                continue;
            }
            if approx {
                break;
            }
            let node = entry.get_mut();
            for it in node.items.iter_mut() {
                let stop = match how {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => it.id >= min,
                };
                if stop {
                    break;
                }
                if !it.deleted {
                    it.deleted = true;
                    node.live -= 1;
                    self.length -= 1;
                    deleted += 1;
                }
            }
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.first_entry().map_or(StreamId::MIN, |i| i.id);
        }
        deleted
    }

    /// The first entry's ID counting deleted entries still in the first node, or the maximal
    /// ID when there is no node (Redis `streamGetEdgeID(s, 1, 0)`).
    pub fn first_edge_with_tombstones(&self) -> StreamId {
        self.nodes
            .values()
            .next()
            .map_or(StreamId::MAX, |n| n.items[0].id)
    }

    /// The last live entry's ID, or 0-0 (Redis `streamLastValidID`).
    pub fn last_valid_id(&self) -> StreamId {
        self.last_entry().map_or(StreamId::MIN, |i| i.id)
    }

    /// Whether a deleted entry may lie in `start..=end` (Redis `streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// The logical read counter of `id` (how many entries were added up to it), when it can
    /// be known (Redis `streamEstimateDistanceFromFirstEverEntry`).
    pub fn estimate_distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added.saturating_sub(self.length));
            }
            if id == self.first_id {
                return Some(
                    self.entries_added
                        .saturating_sub(self.length)
                        .saturating_add(1),
                );
            }
        }
        None
    }

    /// A group's lag: entries added after its last delivered one, when known.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != ENTRIES_READ_INVALID
            && !self.range_has_tombstones(g.last_id, StreamId::MAX)
        {
            return Some((self.entries_added as i64).wrapping_sub(g.entries_read));
        }
        self.estimate_distance(g.last_id)
            .map(|r| (self.entries_added as i64).wrapping_sub(r as i64))
    }

    /// Bytes of this stream in an RDB file (DEBUG OBJECT's serializedlength): each node's
    /// key and listpack, the metadata, the groups.
    pub fn serialized_len(&self) -> usize {
        let nodes: usize = self.nodes.values().map(|n| 16 + 2 + n.lp_bytes() + 5).sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| name.len() + 24 + g.pel.len() * 34 + g.consumers.len() * 20)
            .sum();
        5 + nodes + 40 + groups
    }

    /// Heap bytes (MEMORY USAGE): entries, nodes and groups.
    pub fn heap_size(&self) -> usize {
        let item = std::mem::size_of::<Item>();
        let mut total = 0;
        for n in self.nodes.values() {
            total += std::mem::size_of::<Node>() + 32;
            total += n.items.capacity() * item;
            for it in &n.items {
                total +=
                    it.fields.capacity() * 16 + it.fields.iter().map(|f| f.len()).sum::<usize>();
            }
            total += n.master_fields.iter().map(|f| f.len() + 16).sum::<usize>();
        }
        for (name, g) in &self.groups {
            total += name.len() + std::mem::size_of::<Group>() + 32;
            total += g
                .pel
                .iter()
                .map(|(_, n)| 64 + n.consumer.len())
                .sum::<usize>();
            for (c, cons) in &g.consumers {
                total += c.len() + 64 + cons.pel.len() * 24;
            }
        }
        total
    }

    /// Feeds the content into a digest (DEBUG DIGEST): entries, then metadata and groups.
    pub fn digest_into(&self, h: &mut sha1_smol::Sha1) {
        for it in self.iter() {
            h.update(&it.id.to_be());
            for f in &it.fields {
                h.update(&(f.len() as u64).to_le_bytes());
                h.update(f);
            }
        }
        h.update(&self.last_id.to_be());
        h.update(&self.max_deleted_id.to_be());
        h.update(&self.entries_added.to_le_bytes());
        for (name, g) in &self.groups {
            h.update(name);
            h.update(&g.last_id.to_be());
            h.update(&g.entries_read.to_le_bytes());
            for (id, n) in &g.pel {
                h.update(&id.to_be());
                h.update(&n.consumer);
                h.update(&n.delivery_count.to_le_bytes());
            }
            for c in g.consumers.keys() {
                h.update(c);
            }
        }
    }
}

/// Nodes of the compressed trie (Redis `rax`) holding `keys` (sorted, distinct, equal length)
/// from byte `depth` on: a run shared by every key is one compressed node, a branching point
/// one node, and each complete key ends in a leaf node.
fn trie_nodes(keys: &[[u8; 16]], depth: usize) -> usize {
    if depth == 16 {
        return 1;
    }
    let first = &keys[0];
    let last = &keys[keys.len() - 1];
    if first[depth] == last[depth] {
        // Sorted keys: a byte shared by the first and last is shared by all.
        let mut d = depth;
        while d < 16 && first[d] == last[d] {
            d += 1;
        }
        return 1 + trie_nodes(keys, d);
    }
    let mut total = 1;
    let mut start = 0;
    while start < keys.len() {
        let b = keys[start][depth];
        let end = start + keys[start..].iter().take_while(|k| k[depth] == b).count();
        total += trie_nodes(&keys[start..end], depth + 1);
        start = end;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[&str]) -> Vec<Box<[u8]>> {
        pairs.iter().map(|s| s.as_bytes().into()).collect()
    }

    fn lim(n: usize) -> NodeLimits {
        NodeLimits {
            max_bytes: 4096,
            max_entries: n,
        }
    }

    #[test]
    fn ids_parse_like_redis() {
        let syn = IdSyntax {
            missing_seq: 0,
            strict: false,
            allow_auto_seq: false,
        };
        assert_eq!(parse_id(b"5", syn), Some((StreamId::new(5, 0), true)));
        assert_eq!(parse_id(b"5-3", syn), Some((StreamId::new(5, 3), true)));
        assert_eq!(parse_id(b"-", syn), Some((StreamId::MIN, true)));
        assert_eq!(parse_id(b"+", syn), Some((StreamId::MAX, true)));
        assert_eq!(parse_id(b"5-*", syn), None);
        assert_eq!(parse_id(b"a", syn), None);
        assert_eq!(parse_id(b"1-2-3", syn), None);
        assert_eq!(parse_id(b"18446744073709551616", syn), None);
        let strict = IdSyntax {
            missing_seq: 0,
            strict: true,
            allow_auto_seq: true,
        };
        assert_eq!(parse_id(b"-", strict), None);
        assert_eq!(parse_id(b"7-*", strict), Some((StreamId::new(7, 0), false)));
    }

    fn ids(s: &StreamValue) -> Vec<(u64, bool)> {
        s.nodes().flat_map(|n| n.items().iter().map(|it| (it.id.ms, it.deleted))).collect()
    }

    /// XSETID below a deleted tail entry (Redis allows it), then XADD: the new entry is found
    /// by point and range reads, and the tombstone it would follow out of order is gone.
    #[test]
    fn an_entry_below_a_deleted_tail_entry_is_found() {
        let mut s = StreamValue::new();
        for ms in [1, 2] {
            s.append(Some((StreamId::new(ms, 0), true)), 0, f(&["f", "v"]), lim(10)).unwrap();
        }
        assert!(s.delete(StreamId::new(2, 0)));
        s.last_id = StreamId::new(1, 5);
        let id = StreamId::new(1, 6);
        s.append(Some((id, true)), 0, f(&["f", "v"]), lim(10)).unwrap();
        assert!(s.get(id).is_some());
        let found: Vec<StreamId> = s.range(id, StreamId::MAX, false).map(|i| i.id).collect();
        assert_eq!(found, [id]);
        assert_eq!(ids(&s), [(1, false), (1, false)]);
        // A tail node of tombstones only (left by an exact MINID trim) goes whole.
        let mut s = StreamValue::new();
        for ms in 1..=4 {
            s.append(Some((StreamId::new(ms, 0), true)), 0, f(&["f", "v"]), lim(2)).unwrap();
        }
        assert!(s.delete(StreamId::new(4, 0)));
        s.trim(Trim::MinId(StreamId::new(4, 0)), false, 0);
        assert_eq!((s.len(), ids(&s)), (0, vec![(3, true), (4, true)]));
        s.last_id = StreamId::new(2, 5);
        s.append(Some((StreamId::new(2, 6), true)), 0, f(&["f", "v"]), lim(2)).unwrap();
        assert_eq!((s.len(), ids(&s)), (1, vec![(2, false)]));
    }

    /// Nodes as Redis may save them: one of deleted entries only (an exact XTRIM MINID keeps
    /// it), and tombstones out of order after an XSETID below them.
    #[test]
    fn loads_nodes_redis_saves() {
        let item =
            |ms: u64, deleted: bool| Item { id: StreamId::new(ms, 0), deleted, fields: f(&["f", "v"]) };
        let mut s = StreamValue::new();
        assert!(s.load_node(vec![item(1, true), item(2, true)]));
        assert!(s.load_node(vec![item(3, false), item(9, true), item(4, false), item(8, true)]));
        assert!(s.load_node(vec![item(7, false)]));
        s.last_id = StreamId::new(7, 0);
        assert!(s.finish_load());
        assert_eq!(s.len(), 3);
        assert_eq!(ids(&s), [(1, true), (2, true), (3, false), (4, false), (7, false)]);
        assert!(s.get(StreamId::new(4, 0)).is_some());
        // The last ID may be below a tombstone, not below a live entry.
        let mut s = StreamValue::new();
        assert!(s.load_node(vec![item(1, false), item(5, true)]));
        s.last_id = StreamId::new(3, 0);
        assert!(s.finish_load());
        s.last_id = StreamId::new(0, 5);
        assert!(!s.finish_load());
        // Still refused: an empty node, live entries out of order, a node before the last.
        assert!(!StreamValue::new().load_node(Vec::new()));
        assert!(!StreamValue::new().load_node(vec![item(2, false), item(1, false)]));
        let mut s = StreamValue::new();
        assert!(s.load_node(vec![item(5, false)]));
        assert!(!s.load_node(vec![item(4, false)]));
    }

    #[test]
    fn append_range_delete_and_nodes() {
        let mut s = StreamValue::new();
        for i in 1..=10 {
            s.append(Some((StreamId::new(i, 0), true)), 0, f(&["a", "1"]), lim(3))
                .unwrap();
        }
        assert_eq!(s.len(), 10);
        assert_eq!(s.node_count(), 4);
        let ids: Vec<u64> = s
            .range(StreamId::new(3, 0), StreamId::new(7, 0), false)
            .map(|i| i.id.ms)
            .collect();
        assert_eq!(ids, vec![3, 4, 5, 6, 7]);
        let rev: Vec<u64> = s
            .range(StreamId::new(3, 0), StreamId::new(7, 0), true)
            .map(|i| i.id.ms)
            .collect();
        assert_eq!(rev, vec![7, 6, 5, 4, 3]);
        assert!(s.delete(StreamId::new(1, 0)));
        assert!(!s.delete(StreamId::new(1, 0)));
        assert_eq!(s.first_id, StreamId::new(2, 0));
        assert!(s.delete(StreamId::new(2, 0)) && s.delete(StreamId::new(3, 0)));
        assert_eq!(s.node_count(), 3);
        assert_eq!(
            s.append(
                Some((StreamId::new(10, 0), true)),
                0,
                f(&["a", "1"]),
                lim(3)
            ),
            Err(AppendError::NotGreater)
        );
        assert_eq!(
            s.append(
                Some((StreamId::new(10, 0), false)),
                0,
                f(&["a", "1"]),
                lim(3)
            ),
            Ok(StreamId::new(10, 1))
        );
    }

    #[test]
    fn trims_whole_nodes_when_approximate() {
        let mut s = StreamValue::new();
        for i in 1..=10 {
            s.append(Some((StreamId::new(i, 0), true)), 0, f(&["a", "1"]), lim(3))
                .unwrap();
        }
        assert_eq!(s.trim(Trim::MaxLen(5), true, 0), 3);
        assert_eq!(s.len(), 7);
        assert_eq!(s.trim(Trim::MaxLen(5), false, 0), 2);
        assert_eq!(s.first_id, StreamId::new(6, 0));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(9, 0)), false, 0), 3);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn rax_node_count_of_one_key() {
        let mut s = StreamValue::new();
        assert_eq!(s.rax_nodes(), 1);
        s.append(Some((StreamId::new(1, 0), true)), 0, f(&["a", "1"]), lim(3))
            .unwrap();
        assert_eq!(s.rax_nodes(), 2);
    }
}
