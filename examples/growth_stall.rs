//! Growth-stall check: grows one database to 10 million keys through the library API, timing
//! every insert, and runs a SCAN across the growth to check that no key present throughout is
//! missed.
//!
//! ```text
//! cargo run --release --example growth_stall [keys]
//! ```
//!
//! Prints the worst single insert, the p99.9 / p99.99 latencies, the inserts slower than 1 ms
//! with the table size at which they happened (to tell segment splits from directory doublings
//! from allocator hiccups), and the SCAN result. Exits non-zero if the SCAN missed a key.

use std::collections::HashSet;
use std::io::Write;
use std::time::Instant;

use ferrodis::keyspace::{Db, Value};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Keys inserted before the SCAN starts; every one of them must be returned.
const SCAN_BASE: usize = 1_000_000;
/// One SCAN step (COUNT) per this many inserts.
const INSERTS_PER_STEP: usize = 1_000;
const SCAN_COUNT: usize = 1_000;

fn key_into(buf: &mut Vec<u8>, i: usize) {
    buf.clear();
    buf.extend_from_slice(b"key:");
    buf.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
}

/// Context switches of this process so far: (voluntary, involuntary). Involuntary ones are
/// preemptions, which show up as multi-millisecond "stalls" on a busy machine.
fn context_switches() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let base = SCAN_BASE.min(total / 2);
    let mut db = Db::default();
    let mut lat_ns: Vec<u32> = Vec::with_capacity(total);
    let mut slow: Vec<(usize, u32, bool)> = Vec::new();
    // Latencies of the inserts that split a segment, kept apart to tell table work from noise
    // (preemption on a shared machine, allocator purges, page faults).
    let mut split_ns: Vec<u32> = Vec::new();
    let mut slow_without_split = 0usize;
    let mut seen: HashSet<ferrodis::keyspace::Key> = HashSet::new();
    let mut cursor = 0u64;
    let mut scanning = false;
    let mut scan_steps = 0usize;
    let mut buf = Vec::with_capacity(32);
    let value = Value::from_bytes(b"v");
    let switches_before = context_switches();
    let started = Instant::now();
    for i in 0..total {
        key_into(&mut buf, i);
        let v = value.clone();
        let segs_before = db.main.segment_count();
        let t = Instant::now();
        db.set(&buf, v);
        let ns = t.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32;
        lat_ns.push(ns);
        let split = db.main.segment_count() != segs_before;
        if split {
            split_ns.push(ns);
        }
        if ns > 1_000_000 {
            slow.push((i, ns, split));
            slow_without_split += usize::from(!split);
        }
        if i + 1 == base {
            scanning = true;
        }
        if scanning && i % INSERTS_PER_STEP == 0 {
            cursor = db.main.scan(cursor, SCAN_COUNT, |k, _| {
                seen.insert(k.clone());
            });
            scan_steps += 1;
            if cursor == 0 {
                scanning = false;
            }
        }
    }
    let grow_secs = started.elapsed().as_secs_f64();
    let switches_after = context_switches();
    // Finish the scan if growth ended first.
    while scanning {
        cursor = db.main.scan(cursor, SCAN_COUNT, |k, _| {
            seen.insert(k.clone());
        });
        scan_steps += 1;
        scanning = cursor != 0;
    }
    let missed = (0..base)
        .filter(|&i| {
            key_into(&mut buf, i);
            !seen.contains(&buf[..])
        })
        .count();

    let mut sorted = lat_ns.clone();
    sorted.sort_unstable();
    let pct = |p: f64| sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)];
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "keys inserted:     {total} in {grow_secs:.1} s");
    let _ = writeln!(
        out,
        "context switches:  {} involuntary, {} voluntary while growing",
        switches_after.1 - switches_before.1,
        switches_after.0 - switches_before.0
    );
    let _ = writeln!(out, "segments:          {}", db.main.segment_count());
    let _ = writeln!(out, "largest segment:   {}", db.main.max_segment_len());
    let _ = writeln!(out, "median insert:     {} ns", pct(0.5));
    let _ = writeln!(out, "p99.9 insert:      {} ns", pct(0.999));
    let _ = writeln!(out, "p99.99 insert:     {} ns", pct(0.9999));
    let _ = writeln!(
        out,
        "worst insert:      {:.3} ms",
        f64::from(sorted[sorted.len() - 1]) / 1e6
    );
    let _ = writeln!(
        out,
        "inserts > 1 ms:    {} ({slow_without_split} without a split)",
        slow.len()
    );
    split_ns.sort_unstable();
    if let (Some(&mid), Some(&max)) = (split_ns.get(split_ns.len() / 2), split_ns.last()) {
        let _ = writeln!(
            out,
            "segment splits:    {} (median {:.3} ms, worst {:.3} ms)",
            split_ns.len(),
            f64::from(mid) / 1e6,
            f64::from(max) / 1e6
        );
    }
    // The ten worst inserts, and whether each did table work (a segment split).
    slow.sort_unstable_by_key(|&(_, ns, _)| std::cmp::Reverse(ns));
    for (i, ns, split) in slow.iter().take(10) {
        let what = if *split { "segment split" } else { "no split" };
        let _ = writeln!(out, "  at key {i}: {:.3} ms ({what})", f64::from(*ns) / 1e6);
    }
    let _ = writeln!(
        out,
        "scan while growing: {scan_steps} steps, {} keys returned, {missed} of the first {base} \
         missed",
        seen.len()
    );
    if missed > 0 {
        std::process::exit(1);
    }
}
