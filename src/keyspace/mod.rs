//! The data: numbered databases of keys with values and expiry times.
//!
//! This module is pure and synchronous: no I/O, no `async`, no protocol types. Lookups apply
//! lazy expiry (an expired key is deleted when touched) and record each such deletion in
//! [`Keyspace::expired`], from where the dispatcher propagates it as `DEL` ahead of the command's
//! own effects, so the write stream never depends on a replica's clock.

pub mod evict;
pub mod expire;
pub mod hash;
pub mod hll;
pub mod lazyfree;
pub mod list;
pub mod set;
mod slot_index;
pub mod stream;
pub mod table;
pub mod value;
mod varint;
pub mod zset;

pub use table::{Key, Table};
pub use value::{HashValue, ListValue, RString, SetValue, StreamValue, Value, ZSetValue};

/// Expiry time meaning "never".
pub const NO_EXPIRE: u64 = 0;

/// One key's value.
///
/// A key's metadata is not here, to keep the millions of main-table slots small (48 bytes: a
/// 24-byte [`Key`] and this): the expiry time lives only in [`Db::expires`] (as Redis keeps a
/// separate expires dict), and the LRU/LFU data plus a "has expiry" bit live in the meta word
/// that the table keeps inside each stored key (see [`Db::lru_of`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
}

impl Entry {
    pub fn new(value: Value) -> Self {
        Entry { value }
    }
}

/// Bits of a key's meta word holding its LRU clock or LFU data (24, as in Redis).
const LRU_MASK: u32 = 0x00FF_FFFF;
/// Meta bit: the key has an entry in [`Db::expires`], so lookups know when to probe it.
const VOLATILE: u32 = 1 << 31;

/// Whether a stored key (as a table iteration or a snapshot capture sees it) has an expiry,
/// i.e. an entry in [`Db::expires`], without probing that table.
#[inline]
pub fn key_has_expire(key: &Key) -> bool {
    key.meta() & VOLATILE != 0
}

/// The LRU clock or LFU data of a stored key (see [`Db::lru_of`]).
#[inline]
pub fn key_access(key: &Key) -> u32 {
    key.meta() & LRU_MASK
}

/// Meta word with its LRU/LFU bits replaced by `lru`.
#[inline]
fn with_lru(meta: u32, lru: u32) -> u32 {
    (meta & !LRU_MASK) | (lru & LRU_MASK)
}

/// One numbered database.
#[derive(Default)]
pub struct Db {
    pub main: Table<Entry>,
    /// Keys that have an expiry, with that expiry: the sampling set of the active expire cycle
    /// and of the `volatile-*` eviction policies. Holds exactly the keys whose entry has
    /// [`Entry::has_expire`].
    pub expires: Table<u64>,
    /// Running average TTL (ms) of keys seen by the active expire cycle, for INFO keyspace.
    pub avg_ttl: u64,
}

impl Db {
    pub fn len(&self) -> usize {
        self.main.len()
    }

    pub fn is_empty(&self) -> bool {
        self.main.is_empty()
    }

    /// Looks a key up without expiring it (for code that must not have side effects, such as
    /// DEBUG or snapshot writers).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.main.get(key)
    }

    /// Like [`peek`](Self::peek), but treats a key that has expired at `now` as absent (still
    /// without deleting it).
    pub fn peek_live(&self, key: &[u8], now: u64) -> Option<&Entry> {
        self.main.get(key).filter(|_| !self.is_expired(key, now))
    }

    /// The absolute expiry (Unix ms) of `key`, if it exists and has one.
    pub fn expire_of(&self, key: &[u8]) -> Option<u64> {
        if self.expires.is_empty() {
            return None;
        }
        self.expires.get(key).copied()
    }

    /// True if `key` has an expiry at or before `now`.
    #[inline]
    pub fn is_expired(&self, key: &[u8], now: u64) -> bool {
        self.expire_of(key).is_some_and(|at| at <= now)
    }

    /// The LRU clock or LFU data of `key` (OBJECT IDLETIME / FREQ, DEBUG OBJECT).
    pub fn lru_of(&self, key: &[u8]) -> Option<u32> {
        self.main.get_key_value(key).map(|(k, _)| k.meta() & LRU_MASK)
    }

    /// Overwrites the LRU clock or LFU data of `key`.
    pub fn set_lru(&mut self, key: &[u8], lru: u32) {
        if let Some((m, _)) = self.main.get_meta_mut(key) {
            *m = with_lru(*m, lru);
        }
    }

    /// Stores `value` under `key`, clearing any expiry (Redis `setKey`). Returns true if the key
    /// existed.
    pub fn set(&mut self, key: &[u8], value: Value) -> bool {
        self.set_with_expire(key, value, NO_EXPIRE)
    }

    /// Stores `value` under `key` with the given absolute expiry (or [`NO_EXPIRE`]).
    pub fn set_with_expire(&mut self, key: &[u8], value: Value, expire_at: u64) -> bool {
        let (m, e, inserted) = self
            .main
            .get_or_insert_meta(key, || Entry::new(Value::Str(RString::Int(0))));
        let had_expire = *m & VOLATILE != 0;
        e.value = value;
        let mut meta = if expire_at != NO_EXPIRE { *m | VOLATILE } else { *m & !VOLATILE };
        // Like Redis, an overwrite keeps the LFU counter (the key is still as popular).
        if inserted || !evict::tracking_lfu() {
            meta = with_lru(meta, evict::new_access());
        }
        *m = meta;
        if expire_at != NO_EXPIRE {
            self.expires.insert(key, expire_at);
        } else if had_expire {
            self.expires.remove(key);
        }
        !inserted
    }

    /// Replaces the value of an existing key, keeping its expiry (Redis `KEEPTTL`, or an
    /// in-place overwrite such as SETRANGE). Returns false if the key is absent.
    pub fn replace_value(&mut self, key: &[u8], value: Value) -> bool {
        match self.main.get_mut(key) {
            Some(e) => {
                e.value = value;
                true
            }
            None => false,
        }
    }

    /// Sets the expiry of an existing key. Returns false if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], at: u64) -> bool {
        debug_assert!(at != NO_EXPIRE);
        match self.main.get_meta_mut(key) {
            Some((m, _)) => {
                *m |= VOLATILE;
                self.expires.insert(key, at);
                true
            }
            None => false,
        }
    }

    /// Removes the expiry of a key. Returns true if it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        match self.main.get_meta_mut(key) {
            Some((m, _)) if *m & VOLATILE != 0 => {
                *m &= !VOLATILE;
                self.expires.remove(key);
                true
            }
            _ => false,
        }
    }

    /// Deletes a key. Returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.take(key).map(|(e, _, _)| e)
    }

    /// Deletes a key. Returns its entry, its expiry (or [`NO_EXPIRE`]) and its LRU/LFU data, for
    /// moving it elsewhere with [`insert_entry`](Self::insert_entry).
    pub fn take(&mut self, key: &[u8]) -> Option<(Entry, u64, u32)> {
        let (k, e) = self.main.remove_entry(key)?;
        let at = if k.meta() & VOLATILE != 0 {
            self.expires.remove(key).unwrap_or(NO_EXPIRE)
        } else {
            NO_EXPIRE
        };
        Some((e, at, k.meta() & LRU_MASK))
    }

    /// Inserts a whole entry with the given expiry or [`NO_EXPIRE`] and LRU/LFU data (used by
    /// RENAME, MOVE, COPY and loaders).
    pub fn insert_entry(&mut self, key: &[u8], entry: Entry, expire_at: u64, lru: u32) {
        let volatile = expire_at != NO_EXPIRE;
        if volatile {
            self.expires.insert(key, expire_at);
        } else if !self.expires.is_empty() {
            self.expires.remove(key);
        }
        let (m, e, _) = self.main.get_or_insert_meta(key, blank);
        *e = entry;
        // The table's own bit (snapshot capture) is not ours to reset.
        let kept = *m & table::SNAP_BIT;
        *m = with_lru(kept | if volatile { VOLATILE } else { 0 }, lru);
    }

    /// Inserts `key` with `entry`, no expiry and LRU/LFU data `lru`, unless the key exists:
    /// then nothing changes and the entry comes back (a loader's duplicate check and insert in
    /// one probe).
    pub fn insert_new(&mut self, key: &[u8], entry: Entry, lru: u32) -> Result<(), Entry> {
        let mut entry = Some(entry);
        let (m, _, inserted) =
            self.main.get_or_insert_meta(key, || entry.take().unwrap_or_else(blank));
        if !inserted {
            return Err(entry.unwrap_or_else(blank));
        }
        *m = with_lru(*m & table::SNAP_BIT, lru);
        Ok(())
    }

    pub fn clear(&mut self) {
        self.main.clear();
        self.expires.clear();
        self.avg_ttl = 0;
    }

    /// Empties the database and hands back its old contents, so that the caller can free them
    /// wherever it likes (FLUSHALL ASYNC drops them on another thread).
    pub fn take_all(&mut self) -> Db {
        // A running snapshot keeps its hold on this database slot: the old contents are
        // captured before they leave.
        let (main, expires) = (self.main.detach_capture(), self.expires.detach_capture());
        let old = std::mem::take(self);
        self.main.attach_capture(main);
        self.expires.attach_capture(expires);
        old
    }

    /// Moves the entry at `from` to `to` (replacing whatever `to` held), keeping its expiry.
    /// Returns false if `from` is absent. The caller has already applied lazy expiry to both.
    pub fn rename(&mut self, from: &[u8], to: &[u8]) -> bool {
        let Some((entry, at, lru)) = self.take(from) else {
            return false;
        };
        self.remove(to);
        self.insert_entry(to, entry, at, lru);
        true
    }
}

/// A placeholder value for a slot about to be filled.
fn blank() -> Entry {
    Entry::new(Value::Str(RString::Int(0)))
}

/// True if an expiry time (or [`NO_EXPIRE`]) has passed at `now`.
#[inline]
fn expired_at(at: u64, now: u64) -> bool {
    at != NO_EXPIRE && at <= now
}

/// Counters the keyspace keeps for INFO stats.
#[derive(Debug, Default, Clone)]
pub struct KeyspaceStats {
    pub expired_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_stale_perc: f64,
    pub expired_time_cap_reached_count: u64,
    pub expire_cycle_cpu_milliseconds: u64,
}

/// All databases.
pub struct Keyspace {
    pub dbs: Vec<Db>,
    /// Keys deleted by lazy or active expiry since the dispatcher last drained this list, with
    /// their database. Each becomes a propagated `DEL`.
    pub expired: Vec<(usize, Key)>,
    /// Keys that read lookups did not find, recorded only while `record_misses` is set (the `m`
    /// class of `notify-keyspace-events`) for `keymiss` events.
    pub missed: Vec<(usize, Key)>,
    pub record_misses: bool,
    pub stats: KeyspaceStats,
    /// False on replicas: keys are hidden once logically expired but only the master's DEL
    /// removes them.
    pub expire_on_access: bool,
    /// Set while CLIENT PAUSE holds writes: expired keys are hidden but not deleted (a deletion
    /// is a write the pause must hold back), as in Redis.
    pub expiry_paused: bool,
    /// True while a stream of already-executed writes is being applied (loading a log, or the
    /// master's stream on a replica): nothing counts as expired then, as in Redis, because the
    /// stream itself carries the DELs and a later PEXPIREAT may extend a key whose earlier
    /// expiry time has passed since it was written.
    pub loading: bool,
    /// Database the next active expire cycle starts with, so that a cycle cut short by its
    /// time budget does not starve the higher-numbered databases.
    pub(crate) expire_next_db: usize,
    /// `lazyfree-lazy-expire`: expired values that are expensive to free go to the lazy-free
    /// thread. The keyspace does not see the config: the server sets this at start-up and on
    /// CONFIG SET (loads and resyncs replace the databases, never this struct).
    pub lazy_expire: bool,
}

impl Keyspace {
    pub fn new(databases: usize) -> Self {
        Keyspace {
            dbs: (0..databases).map(|_| Db::default()).collect(),
            expired: Vec::new(),
            missed: Vec::new(),
            record_misses: false,
            stats: KeyspaceStats::default(),
            expire_on_access: true,
            expiry_paused: false,
            loading: false,
            expire_next_db: 0,
            lazy_expire: false,
        }
    }

    /// Looks a key up for writing, deleting it first if it has expired, and records the access
    /// (LRU clock or LFU counter) as Redis's `lookupKeyWrite` does.
    #[inline]
    pub fn lookup_write(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.find(db, key, now, Access { count_hit: false, touch: true })
    }

    /// Looks a key up for reading: like [`lookup_write`](Self::lookup_write), and also counts a
    /// keyspace hit or miss.
    #[inline]
    pub fn lookup_read(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.find(db, key, now, Access { count_hit: true, touch: true })
    }

    /// Looks a key up for reading without refreshing its LRU clock (Redis `LOOKUP_NOTOUCH`, used
    /// by TYPE, EXISTS, TTL and OBJECT), still counting a keyspace hit or miss.
    #[inline]
    pub fn lookup_read_notouch(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.find(db, key, now, Access { count_hit: true, touch: false })
    }

    /// The one lookup behind the three above: lazy expiry (none while loading), then the
    /// hit/miss statistics and the access record that `access` asks for.
    #[inline]
    fn find(&mut self, db: usize, key: &[u8], now: u64, access: Access) -> Option<&mut Entry> {
        let now = if self.loading { 0 } else { now };
        let Keyspace { dbs, expired, missed, record_misses, stats, .. } = self;
        let delete = match (self.expire_on_access && !self.expiry_paused, self.lazy_expire) {
            (false, _) => Expiry::Keep,
            (true, false) => Expiry::Delete,
            (true, true) => Expiry::DeleteLazily,
        };
        let found = lookup(&mut dbs[db], db, key, now, delete, expired, stats);
        if access.count_hit {
            if found.is_some() {
                stats.keyspace_hits += 1;
            } else {
                stats.keyspace_misses += 1;
                if *record_misses {
                    missed.push((db, Key::new(key)));
                }
            }
        }
        let (m, e) = found?;
        if access.touch {
            let mut lru = *m & LRU_MASK;
            evict::touch(&mut lru);
            *m = with_lru(*m, lru);
        }
        Some(e)
    }

    /// A random live key of `db`, deleting (and recording) expired keys it draws on the way,
    /// like Redis's `dbRandomKey`. On a replica, where expired keys stay until the master's DEL,
    /// it gives up after 100 expired draws and returns the last one.
    pub fn random_key<R: rand::Rng + ?Sized>(
        &mut self,
        db: usize,
        now: u64,
        rng: &mut R,
    ) -> Option<Key> {
        let mut tries = 100;
        loop {
            let d = &self.dbs[db];
            let all_volatile = d.main.len() == d.expires.len();
            let (k, _) = d.main.random_entry(rng)?;
            if !d.is_expired(k, now) {
                return Some(k.clone());
            }
            let k = k.clone();
            if !self.expire_on_access {
                tries -= 1;
                if all_volatile && tries == 0 {
                    return Some(k);
                }
                continue;
            }
            self.lookup_write(db, &k, now);
        }
    }

    /// Exchanges the contents of two databases (SWAPDB).
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
    }

    /// Keys in `db`, counting only those that have not expired at `now` (without deleting any).
    pub fn live_keys(&self, db: usize, now: u64) -> impl Iterator<Item = (&Key, &Entry)> + '_ {
        let d = &self.dbs[db];
        d.main.iter().filter(move |(k, _)| !d.is_expired(k, now))
    }

    /// Deletes a key whose time to live has passed, as an expiry: counted in `expired_keys`,
    /// freed lazily under `lazyfree-lazy-expire`, and queued in [`Keyspace::expired`] for its
    /// notification and propagation, as the lookups and the active cycle do.
    pub fn delete_expired(&mut self, db: usize, key: &[u8]) {
        let Some(entry) = self.dbs[db].remove(key) else { return };
        if self.lazy_expire {
            lazyfree::free(entry.value);
        }
        self.stats.expired_keys += 1;
        self.expired.push((db, Key::new(key)));
    }

    /// True if the key exists and has not expired (deleting it if it has).
    pub fn exists(&mut self, db: usize, key: &[u8], now: u64) -> bool {
        self.lookup_write(db, key, now).is_some()
    }

    pub fn db(&mut self, db: usize) -> &mut Db {
        &mut self.dbs[db]
    }
}

/// What a lookup records besides finding the key.
#[derive(Clone, Copy)]
struct Access {
    /// Count a keyspace hit or miss (read lookups).
    count_hit: bool,
    /// Refresh the LRU clock / LFU counter.
    touch: bool,
}

/// What a lookup does with a key it finds expired.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// Hide it only (replicas, CLIENT PAUSE).
    Keep,
    /// Delete it and free its value here.
    Delete,
    /// Delete it, freeing an expensive value on the lazy-free thread (`lazyfree-lazy-expire`).
    DeleteLazily,
}

/// Single-probe lookup with lazy expiry.
#[inline]
fn lookup<'a>(
    d: &'a mut Db,
    db: usize,
    key: &[u8],
    now: u64,
    expiry: Expiry,
    expired: &mut Vec<(usize, Key)>,
    stats: &mut KeyspaceStats,
) -> Option<(&'a mut u32, &'a mut Entry)> {
    let expires = &d.expires;
    let dead = |meta: u32, _: &Entry| {
        meta & VOLATILE != 0 && expired_at(expires.get(key).copied().unwrap_or(NO_EXPIRE), now)
    };
    if expiry == Expiry::Keep {
        return d.main.get_meta_mut(key).filter(|(m, e)| !dead(**m, e));
    }
    match d.main.get_mut_unless(key, dead)? {
        Ok(found) => Some(found),
        Err((k, entry)) => {
            d.expires.remove(&k);
            stats.expired_keys += 1;
            expired.push((db, k));
            if expiry == Expiry::DeleteLazily {
                lazyfree::free(entry.value);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::SmallRng, SeedableRng};

    use super::*;

    #[test]
    fn rename_keeps_value_and_expiry_and_replaces_target() {
        let mut d = Db::default();
        d.set_with_expire(b"a", Value::from_bytes(b"1"), 5_000);
        d.set(b"b", Value::from_bytes(b"2"));
        assert!(d.rename(b"a", b"b"));
        assert!(d.peek(b"a").is_none());
        assert_eq!(d.expire_of(b"b"), Some(5_000));
        assert!(d.is_expired(b"b", 5_000) && !d.is_expired(b"b", 4_999));
        assert_eq!(d.expires.len(), 1);
        assert!(d.expires.contains_key(b"b"));
        assert!(!d.rename(b"zz", b"b"));
    }

    #[test]
    fn random_key_skips_and_deletes_expired_keys() {
        let mut ks = Keyspace::new(2);
        for i in 0..50 {
            let k = format!("dead{i}");
            ks.dbs[0].set_with_expire(k.as_bytes(), Value::from_bytes(b"v"), 10);
        }
        ks.dbs[0].set(b"live", Value::from_bytes(b"v"));
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..20 {
            assert_eq!(ks.random_key(0, 100, &mut rng).as_deref(), Some(&b"live"[..]));
        }
        assert!(ks.random_key(1, 100, &mut rng).is_none());
        // Every expired key drawn was deleted and recorded for propagation.
        assert_eq!(ks.dbs[0].len() + ks.expired.len(), 51);
    }

    #[test]
    fn swap_and_take_all() {
        let mut ks = Keyspace::new(3);
        ks.dbs[0].set(b"k", Value::from_bytes(b"v"));
        ks.swap_dbs(0, 2);
        assert!(ks.dbs[0].is_empty());
        assert_eq!(ks.dbs[2].len(), 1);
        let old = ks.dbs[2].take_all();
        assert_eq!(old.len(), 1);
        assert!(ks.dbs[2].is_empty());
    }
}
