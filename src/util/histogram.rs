//! Per-command latency histograms (LATENCY HISTOGRAM, INFO latencystats).
//!
//! Why this shape: Redis records every command's duration in an HDR histogram with two
//! significant digits over 1 ns .. 1 s, and clients read both its cumulative power-of-two view
//! (LATENCY HISTOGRAM) and its percentiles (INFO latencystats). To give the same numbers for
//! the same durations, this histogram buckets values exactly as that HDR configuration does:
//! 256 sub-buckets for values below 256, then, for each further power of two, 128 sub-buckets
//! whose width doubles from one power to the next. Recording is a few shifts and one increment,
//! cheap enough for every command.

/// Recorded values are clamped into this range (nanoseconds), as Redis does.
const MIN_VALUE: u64 = 1;
const MAX_VALUE: u64 = 1_000_000_000;
/// log2 of the half sub-bucket count (128), from two significant digits: 2 * 10^2 = 200
/// values must be told apart at unit resolution, which takes 256 sub-buckets.
const HALF_MAGNITUDE: u32 = 7;
const HALF_COUNT: usize = 1 << HALF_MAGNITUDE;
const SUB_MASK: u64 = (2 * HALF_COUNT as u64) - 1;
/// Powers of two needed so that the last bucket covers `MAX_VALUE`: 256 << 22 > 10^9.
const BUCKETS: usize = 23;
const COUNTS: usize = (BUCKETS + 1) * HALF_COUNT;

/// A latency histogram over nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; COUNTS]>,
    total: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").field("total", &self.total).finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: Box::new([0; COUNTS]), total: 0 }
    }
}

/// The power-of-two bucket of `v` (0 for values below 256).
fn bucket_of(v: u64) -> u32 {
    (64 - (v | SUB_MASK).leading_zeros()) - (HALF_MAGNITUDE + 1)
}

fn index_of(v: u64) -> usize {
    let b = bucket_of(v);
    let sub = (v >> b) as usize;
    ((b as usize + 1) << HALF_MAGNITUDE) + sub - HALF_COUNT
}

/// The smallest value that lands in slot `idx`.
fn value_at(idx: usize) -> u64 {
    let mut bucket = (idx >> HALF_MAGNITUDE) as i64 - 1;
    let mut sub = (idx & (HALF_COUNT - 1)) + HALF_COUNT;
    if bucket < 0 {
        sub -= HALF_COUNT;
        bucket = 0;
    }
    (sub as u64) << bucket
}

/// The largest value that lands in the same slot as `v`.
fn highest_equivalent(v: u64) -> u64 {
    let b = bucket_of(v);
    ((v >> b) << b) + (1u64 << b) - 1
}

impl Histogram {
    /// Records one duration in microseconds (how commands are timed).
    #[inline]
    pub fn record_us(&mut self, us: u64) {
        let ns = us.saturating_mul(1000).clamp(MIN_VALUE, MAX_VALUE);
        self.counts[index_of(ns)] += 1;
        self.total += 1;
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The value (ns) at `percentile` (0-100): the highest value equivalent to the smallest
    /// recorded one with at least that share of the samples at or below it.
    pub fn value_at_percentile(&self, percentile: f64) -> u64 {
        let p = percentile.min(100.0);
        let wanted = (((p / 100.0) * self.total as f64) + 0.5) as u64;
        let wanted = wanted.max(1);
        let mut seen = 0;
        let mut found = 0;
        for (idx, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= wanted {
                found = value_at(idx);
                break;
            }
        }
        if percentile == 0.0 {
            let b = bucket_of(found);
            return (found >> b) << b;
        }
        highest_equivalent(found)
    }

    /// The cumulative distribution at powers of two from 1024 ns: `(upper bound in µs,
    /// samples at or below it)` for each level whose count grew, up to the level that holds
    /// every sample (LATENCY HISTOGRAM's `histogram_usec`).
    pub fn cdf_usec(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut level: u64 = 1024;
        let mut idx = 0;
        let mut cumulative = 0;
        let mut previous = 0;
        loop {
            let upper = highest_equivalent(level);
            let last = index_of(upper.min(MAX_VALUE)).min(COUNTS - 1);
            while idx <= last {
                cumulative += self.counts[idx];
                idx += 1;
            }
            if cumulative > previous {
                out.push((upper / 1000, cumulative));
            }
            previous = cumulative;
            if cumulative >= self.total || idx >= COUNTS {
                return out;
            }
            level *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_two_significant_digits() {
        assert_eq!(index_of(1), 1);
        assert_eq!(index_of(255), 255);
        assert_eq!(index_of(256), 256);
        assert_eq!(value_at(index_of(1024)), 1024);
        assert_eq!(highest_equivalent(1024), 1031);
        assert_eq!(highest_equivalent(2048), 2063);
        assert_eq!(highest_equivalent(1 << 29), 541_065_215);
        assert!(index_of(MAX_VALUE) < COUNTS);
        for v in [1u64, 7, 300, 1000, 5000, 123_456, 999_999_999] {
            let lo = value_at(index_of(v));
            assert!(lo <= v && v <= highest_equivalent(v), "{v}");
            assert_eq!(index_of(highest_equivalent(v)), index_of(v), "{v}");
        }
    }

    #[test]
    fn cdf_matches_redis_for_a_known_set() {
        // Redis 7.0.15 after three SETs of 5, 12 and 100 µs: 8 1 16 2 132 3.
        let mut h = Histogram::default();
        for us in [5, 12, 100] {
            h.record_us(us);
        }
        assert_eq!(h.cdf_usec(), vec![(8, 1), (16, 2), (132, 3)]);
        // DEBUG SLEEP 0.3 alone: 541065 1.
        let mut h = Histogram::default();
        h.record_us(300_000);
        assert_eq!(h.cdf_usec(), vec![(541_065, 1)]);
        // Sub-microsecond commands count at the first level.
        let mut h = Histogram::default();
        h.record_us(0);
        assert_eq!(h.cdf_usec(), vec![(1, 1)]);
        assert_eq!(Histogram::default().cdf_usec(), vec![]);
    }

    #[test]
    fn percentiles() {
        let mut h = Histogram::default();
        for us in 1..=100 {
            h.record_us(us);
        }
        // 50 samples are at or below 50 µs; 50000 ns has a slot 256 ns wide.
        assert_eq!(h.value_at_percentile(50.0), 50_175);
        assert_eq!(h.value_at_percentile(100.0), highest_equivalent(100_000));
        assert_eq!(h.value_at_percentile(0.0), 1000);
        let mut one = Histogram::default();
        one.record_us(1);
        assert_eq!(one.value_at_percentile(99.9), 1003);
    }
}
