//! Active expiry and the LRU clock.
//!
//! Lazy expiry alone would keep keys that are never touched again in memory forever, so the
//! server cron also runs Redis's active expire cycle: sample keys that have an expiry, delete the
//! expired ones, and keep going while a large share of the sample was expired, within a CPU
//! budget per cycle so that a mass expiry cannot stall clients.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;

use super::Keyspace;

/// Keys sampled per database per loop (Redis `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const KEYS_PER_LOOP: usize = 20;
/// Keep sampling a database while more than this percentage of a sample was expired.
pub const ACCEPTABLE_STALE_PERCENT: usize = 10;

/// LRU clock resolution is one second; 24 bits like Redis's `LRU_CLOCK_MAX`.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;

/// The LRU clock as last set by [`set_lru_clock`]. Like Redis's `server.lruclock` it is cached
/// rather than read from the system on every key access: its resolution is one second, and the
/// event loop refreshes it before every batch of commands.
static LRU_CLOCK: AtomicU32 = AtomicU32::new(0);

/// Current LRU clock value.
#[inline]
pub fn lru_clock() -> u32 {
    match LRU_CLOCK.load(Ordering::Relaxed) {
        0 => {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            (secs as u32) & LRU_CLOCK_MAX
        }
        v => v,
    }
}

/// Refreshes the cached LRU clock from a Unix time in milliseconds.
pub fn set_lru_clock(now_ms: u64) {
    LRU_CLOCK.store(((now_ms / 1000) as u32 & LRU_CLOCK_MAX).max(1), Ordering::Relaxed);
}

/// Milliseconds a key with LRU clock `lru` has been idle.
pub fn idle_ms(lru: u32) -> u64 {
    let now = lru_clock();
    let secs = if now >= lru {
        now - lru
    } else {
        (LRU_CLOCK_MAX - lru) + now
    };
    u64::from(secs) * 1000
}

/// Result of one active expire cycle.
#[derive(Debug, Default, Clone, Copy)]
pub struct CycleReport {
    pub sampled: usize,
    pub expired: usize,
    pub time_limit_hit: bool,
}

impl Keyspace {
    /// Runs one active expire cycle over all databases within `budget`. Deleted keys are pushed
    /// to [`Keyspace::expired`] for propagation, exactly like lazily expired ones.
    pub fn active_expire_cycle<R: Rng>(
        &mut self,
        now_ms: u64,
        budget: Duration,
        rng: &mut R,
    ) -> CycleReport {
        let start = Instant::now();
        let mut report = CycleReport::default();
        let ndbs = self.dbs.len();
        for step in 0..ndbs {
            let db = (self.expire_next_db + step) % ndbs;
            loop {
                let d = &mut self.dbs[db];
                let n = d.expires.len();
                if n == 0 {
                    break;
                }
                let samples = KEYS_PER_LOOP.min(n);
                let mut expired = 0;
                let mut ttl_sum = 0u64;
                let mut ttl_samples = 0u64;
                for _ in 0..samples {
                    let Some((k, &at)) = d.expires.random_entry(rng) else {
                        break;
                    };
                    if at <= now_ms {
                        let k = k.clone();
                        d.expires.remove(&k);
                        let entry = d.main.remove(&k);
                        if let (true, Some(e)) = (self.lazy_expire, entry) {
                            super::lazyfree::free(e.value);
                        }
                        self.expired.push((db, k));
                        expired += 1;
                    } else {
                        ttl_sum += at - now_ms;
                        ttl_samples += 1;
                    }
                }
                if let Some(avg) = ttl_sum.checked_div(ttl_samples) {
                    // Same smoothing as Redis: the new sample weighs 2%.
                    d.avg_ttl = if d.avg_ttl == 0 {
                        avg
                    } else {
                        (d.avg_ttl / 50) * 49 + avg / 50
                    };
                }
                report.sampled += samples;
                report.expired += expired;
                self.stats.expired_keys += expired as u64;
                if start.elapsed() >= budget {
                    // Resume with this database next time.
                    self.expire_next_db = db;
                    report.time_limit_hit = true;
                    self.stats.expired_time_cap_reached_count += 1;
                    return report;
                }
                if expired * 100 <= samples * ACCEPTABLE_STALE_PERCENT {
                    break;
                }
            }
        }
        if report.sampled > 0 {
            let perc = report.expired as f64 / report.sampled as f64;
            self.stats.expired_stale_perc = perc * 0.05 + self.stats.expired_stale_perc * 0.95;
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::SmallRng, SeedableRng};

    use super::*;
    use crate::keyspace::Value;

    #[test]
    fn active_cycle_removes_expired_keys_and_keeps_live_ones() {
        let mut ks = Keyspace::new(2);
        for i in 0..1000 {
            let k = format!("k{i}");
            ks.dbs[1].set_with_expire(k.as_bytes(), Value::from_bytes(b"v"), 100);
        }
        for i in 0..10 {
            let k = format!("live{i}");
            ks.dbs[1].set_with_expire(k.as_bytes(), Value::from_bytes(b"v"), 10_000);
        }
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..100 {
            ks.active_expire_cycle(200, Duration::from_secs(1), &mut rng);
        }
        assert_eq!(ks.dbs[1].len(), 10);
        assert_eq!(ks.dbs[1].expires.len(), 10);
        assert_eq!(ks.expired.len(), 1000);
        assert_eq!(ks.stats.expired_keys, 1000);
    }
}
