//! Eviction under `maxmemory` and per-key access tracking (Redis `evict.c`).
//!
//! **Access tracking.** Every entry has 24 bits of access data ([`Entry::lru`]), read two ways
//! depending on the policy, exactly as Redis does: under an LRU (or no) policy they hold the LRU
//! clock of the last access; under an LFU policy the high 16 bits hold the last decrement time
//! in minutes and the low 8 bits a logarithmic access counter. A counter grows with probability
//! `1 / ((counter - 5) * lfu-log-factor + 1)` on each access and loses one point per
//! `lfu-decay-time` minutes without access, so it estimates how often a key is used recently.
//! The keyspace is pure, so the mode lives in process-wide atomics set by the server whenever the
//! policy changes (like the cached LRU clock in [`super::expire`]).
//!
//! **Eviction.** Exact LRU would need a list threaded through every key. Like Redis, we sample
//! instead: each round draws `maxmemory-samples` keys from every database (from all keys, or
//! only those with a TTL for `volatile-*`) and merges them into a pool of the 16 best
//! candidates seen so far, kept across rounds; the best live candidate is deleted. With the
//! default 5 samples this approximates true LRU closely at a fraction of the cost.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rand::Rng;

use super::{expire, Entry, Key, Keyspace, NO_EXPIRE};

/// Candidates kept between eviction rounds (Redis `EVPOOL_SIZE`).
pub const POOL_SIZE: usize = 16;
/// Counter given to new keys under LFU, so a new key is not evicted before it had a chance to
/// be accessed (Redis `LFU_INIT_VAL`).
pub const LFU_INIT_VAL: u8 = 5;

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
}

impl Policy {
    /// Parses a configuration value (already validated by CONFIG, so unknown means none).
    pub fn parse(s: &str) -> Policy {
        match s {
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            _ => Policy::NoEviction,
        }
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::VolatileLfu | Policy::AllkeysLfu)
    }

    /// True if only keys with an expiry may be evicted.
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn is_random(self) -> bool {
        matches!(self, Policy::VolatileRandom | Policy::AllkeysRandom)
    }
}

// ---------------------------------------------------------------------------------------------
// Access tracking

static LFU_MODE: AtomicBool = AtomicBool::new(false);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_TIME: AtomicU32 = AtomicU32::new(1);

/// Selects how key accesses are recorded: LFU counters or the LRU clock.
pub fn set_tracking(lfu: bool, log_factor: u32, decay_time: u32) {
    LFU_MODE.store(lfu, Ordering::Relaxed);
    LFU_LOG_FACTOR.store(log_factor, Ordering::Relaxed);
    LFU_DECAY_TIME.store(decay_time, Ordering::Relaxed);
}

/// True when accesses update LFU counters.
#[inline]
pub fn tracking_lfu() -> bool {
    LFU_MODE.load(Ordering::Relaxed)
}

/// Unix time in minutes, on 16 bits (Redis `LFUGetTimeInMinutes`).
fn minutes_now() -> u32 {
    ((crate::util::time::now_secs() / 60) & 0xFFFF) as u32
}

/// Access data for a key created now.
#[inline]
pub fn new_access() -> u32 {
    if tracking_lfu() {
        (minutes_now() << 8) | u32::from(LFU_INIT_VAL)
    } else {
        expire::lru_clock()
    }
}

/// Access data for a key RESTOREd with IDLETIME or FREQ (Redis `objectSetLRUOrLFU`): under an
/// LFU policy `freq` becomes the counter; otherwise `idle_secs` backdates the LRU clock (an idle
/// time longer than the clock can hold lands half a clock period back, as in Redis).
pub fn restored_access(freq: Option<u8>, idle_secs: Option<u64>) -> u32 {
    match (tracking_lfu(), freq, idle_secs) {
        (true, Some(f), _) => (minutes_now() << 8) | u32::from(f),
        (false, _, Some(idle)) => {
            let clock = u64::from(expire::lru_clock());
            let max = u64::from(expire::LRU_CLOCK_MAX);
            match clock.checked_sub(idle) {
                Some(at) => at as u32,
                None => ((clock + max / 2) % max) as u32,
            }
        }
        _ => new_access(),
    }
}

/// Records an access to a key.
#[inline]
pub fn touch(lru: &mut u32) {
    if !tracking_lfu() {
        *lru = expire::lru_clock();
        return;
    }
    let now = minutes_now();
    let decay = LFU_DECAY_TIME.load(Ordering::Relaxed);
    let counter = lfu_decayed(*lru, now, decay);
    let counter = lfu_log_incr(
        counter,
        LFU_LOG_FACTOR.load(Ordering::Relaxed),
        unit_random(),
    );
    *lru = (now << 8) | u32::from(counter);
}

/// The key's LFU counter after applying the decay due by now (OBJECT FREQ, eviction). Like
/// Redis, reading does not store the decayed value: only an access does.
pub fn lfu_counter(lru: u32) -> u8 {
    lfu_decayed(lru, minutes_now(), LFU_DECAY_TIME.load(Ordering::Relaxed))
}

/// Minutes elapsed from the 16-bit time `then` to `now`, assuming at most one wrap.
fn minutes_since(then: u32, now: u32) -> u32 {
    if now >= then {
        now - then
    } else {
        65535 - then + now
    }
}

/// Counter of `lru` minus one per `decay_time` minutes since it was last updated.
pub fn lfu_decayed(lru: u32, now_min: u32, decay_time: u32) -> u8 {
    let counter = (lru & 0xFF) as u8;
    if decay_time == 0 {
        return counter;
    }
    let periods = minutes_since((lru >> 8) & 0xFFFF, now_min) / decay_time;
    counter.saturating_sub(periods.min(255) as u8)
}

/// Logarithmic increment: the higher the counter, the less likely it grows. `r` is uniform in
/// [0, 1).
pub fn lfu_log_incr(counter: u8, log_factor: u32, r: f64) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (base * f64::from(log_factor) + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

thread_local! {
    static XORSHIFT: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
}

/// A cheap uniform number in [0, 1): the LFU increment needs one on every read, and the
/// keyspace has no RNG of its own.
fn unit_random() -> f64 {
    XORSHIFT.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

// ---------------------------------------------------------------------------------------------
// Eviction

/// One eviction candidate: higher `score` means a better key to evict.
#[derive(Debug, Clone)]
struct Candidate {
    score: u64,
    db: usize,
    key: Key,
}

/// Eviction tuning read from the configuration when the policy changes and by the cron, so
/// that a round at the limit does not look parameters up by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// `maxmemory-eviction-tenacity`.
    pub tenacity: u32,
    /// `lazyfree-lazy-eviction`: propagate evictions as `UNLINK`.
    pub lazy: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            tenacity: 10,
            lazy: false,
        }
    }
}

/// Eviction state kept between rounds: the candidate pool and the random policies' database
/// cursor.
#[derive(Debug, Default)]
pub struct EvictionPool {
    /// Sorted by ascending score; the best candidate is last.
    pool: Vec<Candidate>,
    next_random_db: usize,
    pub tuning: Tuning,
}

impl EvictionPool {
    pub fn new() -> Self {
        EvictionPool::default()
    }

    pub fn len(&self) -> usize {
        self.pool.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }

    /// Forgets every candidate (after FLUSHALL or a policy change their scores mean nothing).
    pub fn clear(&mut self) {
        self.pool.clear();
    }

    /// Merges a candidate in, keeping the best [`POOL_SIZE`].
    fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if self.pool.iter().any(|c| c.db == db && &*c.key == key) {
            return;
        }
        let at = self.pool.partition_point(|c| c.score < score);
        if self.pool.len() >= POOL_SIZE {
            if at == 0 {
                return; // worse than everything we hold
            }
            // Drop the worst to make room; the insertion point moves down by one.
            self.pool.remove(0);
            self.pool.insert(
                at - 1,
                Candidate {
                    score,
                    db,
                    key: key.into(),
                },
            );
        } else {
            self.pool.insert(
                at,
                Candidate {
                    score,
                    db,
                    key: key.into(),
                },
            );
        }
    }
}

impl Keyspace {
    /// Deletes one key chosen by `policy` and returns it with its database, or `None` when no key
    /// may be evicted. `samples` is `maxmemory-samples`.
    pub fn evict_one<R: Rng + ?Sized>(
        &mut self,
        pool: &mut EvictionPool,
        policy: Policy,
        samples: usize,
        rng: &mut R,
    ) -> Option<(usize, Key)> {
        let (db, key) = match policy {
            Policy::NoEviction => return None,
            p if p.is_random() => self.random_victim(pool, p, rng)?,
            p => self.pooled_victim(pool, p, samples.max(1), rng)?,
        };
        let entry = self.dbs[db].remove(&key);
        if let (true, Some(e)) = (pool.tuning.lazy, entry) {
            super::lazyfree::free(e.value);
        }
        Some((db, key))
    }

    /// Random policies: a random key of the next non-empty database, rotating between calls.
    fn random_victim<R: Rng + ?Sized>(
        &self,
        pool: &mut EvictionPool,
        policy: Policy,
        rng: &mut R,
    ) -> Option<(usize, Key)> {
        let n = self.dbs.len();
        for _ in 0..n {
            let db = pool.next_random_db % n;
            pool.next_random_db = (db + 1) % n;
            let d = &self.dbs[db];
            let key = if policy.volatile_only() {
                d.expires.random_entry(rng).map(|(k, _)| k.clone())
            } else {
                d.main.random_entry(rng).map(|(k, _)| k.clone())
            };
            if let Some(k) = key {
                return Some((db, k));
            }
        }
        None
    }

    /// LRU, LFU and TTL policies: refill the pool from every database, then take the best
    /// candidate that still exists.
    fn pooled_victim<R: Rng + ?Sized>(
        &self,
        pool: &mut EvictionPool,
        policy: Policy,
        samples: usize,
        rng: &mut R,
    ) -> Option<(usize, Key)> {
        // Candidates were live when sampled, so one refill normally suffices; the bound only
        // guards against looping on a table that keeps yielding nothing usable.
        for _ in 0..4 {
            let mut any = false;
            for db in 0..self.dbs.len() {
                any |= self.sample_into(pool, db, policy, samples, rng);
            }
            if !any {
                return None;
            }
            // Best first; a candidate may have been deleted or lost its TTL since it was sampled.
            while let Some(c) = pool.pool.pop() {
                let d = &self.dbs[c.db];
                let live = if policy.volatile_only() {
                    d.expires.contains_key(&c.key)
                } else {
                    d.main.contains_key(&c.key)
                };
                if live {
                    return Some((c.db, c.key));
                }
            }
        }
        None
    }

    /// Offers `samples` random keys of `db` to the pool. Returns false if `db` has no
    /// candidates at all.
    fn sample_into<R: Rng + ?Sized>(
        &self,
        pool: &mut EvictionPool,
        db: usize,
        policy: Policy,
        samples: usize,
        rng: &mut R,
    ) -> bool {
        let d = &self.dbs[db];
        let volatile = policy.volatile_only();
        let n = if volatile {
            d.expires.len()
        } else {
            d.main.len()
        };
        if n == 0 {
            return false;
        }
        let score = |key: &Key, _: &Entry| match policy {
            Policy::VolatileTtl => u64::MAX - d.expire_of(key).unwrap_or(NO_EXPIRE),
            p if p.is_lfu() => 255 - u64::from(lfu_counter(d.lru_of(key).unwrap_or(0))),
            _ => expire::idle_ms(d.lru_of(key).unwrap_or(0)),
        };
        if samples >= n {
            // A database no bigger than the sample is considered whole: exact, and no
            // duplicate draws.
            if volatile {
                for (key, e) in d
                    .expires
                    .iter()
                    .filter_map(|(k, _)| d.main.get_key_value(k))
                {
                    pool.offer(score(key, e), db, key);
                }
            } else {
                for (key, e) in d.main.iter() {
                    pool.offer(score(key, e), db, key);
                }
            }
            return true;
        }
        for _ in 0..samples {
            let picked = if volatile {
                d.expires
                    .random_entry(rng)
                    .and_then(|(k, _)| d.main.get_key_value(k))
            } else {
                d.main.random_entry(rng)
            };
            if let Some((key, e)) = picked {
                pool.offer(score(key, e), db, key);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::SmallRng, SeedableRng};

    use super::*;
    use crate::keyspace::Value;

    #[test]
    fn policy_names() {
        assert_eq!(Policy::parse("allkeys-lfu"), Policy::AllkeysLfu);
        assert!(Policy::parse("volatile-lfu").is_lfu());
        assert!(Policy::parse("volatile-ttl").volatile_only());
        assert!(!Policy::parse("allkeys-random").volatile_only());
        assert_eq!(Policy::parse("noeviction"), Policy::NoEviction);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        // Below the initial value every access counts.
        assert_eq!(lfu_log_incr(3, 10, 0.99), 4);
        // At 105 with factor 10 the chance is 1/1001.
        assert_eq!(lfu_log_incr(105, 10, 0.002), 105);
        assert_eq!(lfu_log_incr(105, 10, 0.0005), 106);
        assert_eq!(lfu_log_incr(255, 0, 0.0), 255);
        let lru = (100 << 8) | 20;
        assert_eq!(lfu_decayed(lru, 100, 1), 20);
        assert_eq!(lfu_decayed(lru, 107, 1), 13);
        assert_eq!(lfu_decayed(lru, 107, 2), 17);
        assert_eq!(lfu_decayed(lru, 5000, 1), 0);
        assert_eq!(lfu_decayed(lru, 5000, 0), 20);
        // 16-bit minute clock wrapping.
        assert_eq!(lfu_decayed((65530 << 8) | 20, 4, 1), 11);
    }

    #[test]
    fn pool_keeps_the_best_candidates_sorted() {
        let mut p = EvictionPool::new();
        for i in 0..40u64 {
            p.offer(i * 7 % 40, 0, format!("k{i}").as_bytes());
        }
        p.offer(39, 0, b"k17"); // already pooled with score 39: ignored
        assert_eq!(p.len(), POOL_SIZE);
        let scores: Vec<u64> = p.pool.iter().map(|c| c.score).collect();
        assert_eq!(scores, (24..40).collect::<Vec<_>>());
    }

    #[test]
    fn volatile_ttl_evicts_soonest_expiry_and_spares_persistent_keys() {
        let mut ks = Keyspace::new(2);
        for i in 0..10u64 {
            let k = format!("t{i}");
            ks.dbs[1].set_with_expire(k.as_bytes(), Value::from_bytes(b"v"), 1_000_000 + i);
        }
        ks.dbs[0].set(b"keep", Value::from_bytes(b"v"));
        let mut pool = EvictionPool::new();
        let mut rng = SmallRng::seed_from_u64(1);
        let (db, k) = ks
            .evict_one(&mut pool, Policy::VolatileTtl, 10, &mut rng)
            .unwrap();
        assert_eq!((db, &*k), (1, &b"t0"[..]));
        for _ in 0..9 {
            ks.evict_one(&mut pool, Policy::VolatileTtl, 10, &mut rng)
                .unwrap();
        }
        assert!(ks
            .evict_one(&mut pool, Policy::VolatileTtl, 10, &mut rng)
            .is_none());
        assert!(ks
            .evict_one(&mut pool, Policy::VolatileRandom, 5, &mut rng)
            .is_none());
        assert_eq!(ks.dbs[0].len(), 1);
        assert!(ks
            .evict_one(&mut pool, Policy::NoEviction, 5, &mut rng)
            .is_none());
        assert_eq!(
            ks.evict_one(&mut pool, Policy::AllkeysRandom, 5, &mut rng)
                .unwrap()
                .0,
            0
        );
    }

    #[test]
    fn lru_prefers_the_longest_idle_key() {
        let mut ks = Keyspace::new(1);
        let now = expire::lru_clock();
        for i in 0..50u32 {
            let k = format!("k{i}");
            ks.dbs[0].set(k.as_bytes(), Value::from_bytes(b"v"));
            // k0 is the oldest by far; the rest were used recently.
            let lru = if i == 0 {
                now.saturating_sub(1000)
            } else {
                now
            };
            ks.dbs[0].set_lru(k.as_bytes(), lru);
        }
        let mut pool = EvictionPool::new();
        let mut rng = SmallRng::seed_from_u64(9);
        // Sampling every key guarantees the oldest one is seen.
        let (_, k) = ks
            .evict_one(&mut pool, Policy::AllkeysLru, 50, &mut rng)
            .unwrap();
        assert_eq!(&*k, b"k0");
        assert_eq!(ks.dbs[0].len(), 49);
    }
}
