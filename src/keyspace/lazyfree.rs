//! Lazy freeing: UNLINK, FLUSHDB / FLUSHALL ASYNC and the `lazyfree-lazy-*` options hand
//! values that are expensive to free to one helper thread, as Redis does, so deleting a key of
//! ten million elements does not stall the event loop while its memory is returned.
//!
//! What counts as expensive is Redis's measure (`lazyfreeGetFreeEffort`): the number of
//! allocations the drop walks, roughly one per element for the large encodings and one for a
//! compact one. Cheap values are freed at once, where the thread hand-off would cost more.
//! INFO's `lazyfree_pending_objects` and `lazyfreed_objects` count what went through here.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

use super::Value;

/// Free effort above which a value is freed on the helper thread (Redis's `LAZYFREE_THRESHOLD`).
pub const THRESHOLD: usize = 64;

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// Something to drop, and how many objects it counts for in INFO.
type Job = (Box<dyn Send>, u64);

fn worker() -> Option<&'static Mutex<Sender<Job>>> {
    static TX: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let spawned = std::thread::Builder::new().name("lazyfree".into()).spawn(move || {
            for (job, objects) in rx {
                drop(job);
                PENDING.fetch_sub(objects, Relaxed);
                FREED.fetch_add(objects, Relaxed);
            }
        });
        spawned.ok().map(|_| Mutex::new(tx))
    })
    .as_ref()
}

/// How many allocations freeing `v` walks (Redis's free effort).
pub fn free_effort(v: &Value) -> usize {
    match v {
        Value::Str(_) => 1,
        Value::List(l) if l.encoding() == "quicklist" => l.chunk_count(),
        Value::Set(s) if s.encoding() == "hashtable" => s.len(),
        Value::Hash(h) if h.encoding() == "hashtable" => h.len(),
        Value::ZSet(z) if z.encoding() == "skiplist" => z.len(),
        Value::Stream(s) => {
            let groups: usize = s.groups.values().map(|g| 1 + g.pel.len()).sum();
            s.node_count() + groups
        }
        _ => 1,
    }
}

/// Frees `v` now if that is cheap, else on the helper thread.
pub fn free(v: Value) {
    if free_effort(&v) > THRESHOLD {
        free_later(Box::new(v), 1);
    }
}

/// Drops `what` on the helper thread, counting it as `objects` objects (a flushed database
/// counts its keys). Falls back to dropping here if the thread cannot run.
pub fn free_later(what: Box<dyn Send>, objects: u64) {
    let Some(tx) = worker() else {
        return;
    };
    PENDING.fetch_add(objects, Relaxed);
    let sent = tx.lock().map(|tx| tx.send((what, objects)));
    if let Ok(Err(failed)) = sent {
        PENDING.fetch_sub(objects, Relaxed);
        drop(failed);
    }
}

/// `lazyfree_pending_objects`: handed over, not yet freed.
pub fn pending() -> u64 {
    PENDING.load(Relaxed)
}

/// `lazyfreed_objects`: freed by the helper thread since start-up (or CONFIG RESETSTAT).
pub fn freed() -> u64 {
    FREED.load(Relaxed)
}

/// CONFIG RESETSTAT.
pub fn reset_stats() {
    FREED.store(0, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::set::SetValue;

    #[test]
    fn big_values_go_to_the_thread_small_ones_do_not() {
        let small = Value::from_bytes(b"x");
        assert_eq!(free_effort(&small), 1);
        let before = (pending() + freed(), freed());
        free(small);
        assert_eq!(pending() + freed(), before.0, "a string is freed in place");
        let mut set = SetValue::intset_from_sorted(&[]);
        for i in 0..1000 {
            set.add(format!("m{i}").as_bytes(), 512);
        }
        let big = Value::Set(set);
        assert!(free_effort(&big) > THRESHOLD);
        free(big);
        let start = std::time::Instant::now();
        while freed() == before.1 && start.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(freed() > before.1);
    }
}
