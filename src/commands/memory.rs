//! MEMORY (Redis `object.c`) and the `maxmemory` enforcement that runs before commands (Redis
//! `performEvictions` in `evict.c`).
//!
//! The choice of which key to evict is pure keyspace logic ([`crate::keyspace::evict`]); this
//! file holds the server side: when to evict, how long one round may run, and what an eviction
//! does beyond deleting the key (the `DEL` in the write stream, `evicted_keys`, the `evicted`
//! keyspace event, WATCH invalidation).

use std::time::{Duration, Instant};

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::alloc::AllocatorStats;
use crate::journal::Effects;
use crate::keyspace::evict::{self, Policy};
use crate::keyspace::{lazyfree, Entry, Key, Keyspace};
use crate::server::{Server, ServerState};

pub(crate) const COMMANDS: &[CommandSpec] = &[CommandSpec::container(
    "memory",
    -2,
    0,
    &[
        CommandSpec::sub("memory", "doctor", 2, 0, 0, 0, 0, doctor),
        CommandSpec::sub("memory", "help", 2, LOADING | STALE, 0, 0, 0, help),
        CommandSpec::sub("memory", "malloc-stats", 2, 0, 0, 0, 0, malloc_stats),
        CommandSpec::sub("memory", "purge", 2, 0, 0, 0, 0, purge),
        CommandSpec::sub("memory", "stats", 2, 0, 0, 0, 0, stats),
        CommandSpec::sub("memory", "usage", -3, READONLY, 2, 2, 1, usage),
    ],
)];

/// Redis's reply to a DENYOOM command that eviction could not make room for.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Outcome of an eviction round (Redis `EVICT_OK`, `EVICT_RUNNING`, `EVICT_FAIL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictStatus {
    /// Under the limit (or no limit).
    Ok,
    /// Still over the limit, but the round ran out of time; the cron carries on.
    Running,
    /// Over the limit and nothing more may be evicted.
    Fail,
}

/// Runs before every command: keeps key access tracking in step with the policy and, under a
/// memory limit, evicts until used memory fits. Returns the error that rejects the command, if
/// any: only commands the dispatcher marks `deny_oom` (DENYOOM ones, anything queued inside
/// MULTI, EXEC of a queue holding a DENYOOM command) are refused when memory cannot be freed,
/// so reads and deletions keep working at the limit.
pub fn before_command(server: &mut Server, deny_oom: bool) -> Option<CmdError> {
    sync_tracking(&mut server.state, false);
    if server.state.config.maxmemory <= 0 {
        return None;
    }
    let failed = perform_evictions(server) == EvictStatus::Fail;
    (failed && deny_oom).then(|| CmdError::raw(OOM_ERROR))
}

/// The cron's share: refreshes the LFU parameters and continues an eviction round that ran
/// out of time (or follows a lowered `maxmemory`) without waiting for the next command.
pub fn cron(server: &mut Server) {
    sync_tracking(&mut server.state, true);
    if server.state.config.maxmemory > 0 {
        perform_evictions(server);
    }
}

/// Switches key access tracking between LRU and LFU when the policy changed. The LFU and
/// eviction tuning values are re-read on a change, and by the cron (`full`), since reading them
/// by name on every command would cost more than the command itself.
fn sync_tracking(state: &mut ServerState, full: bool) {
    if !full && state.eviction_policy_seen == state.config.maxmemory_policy {
        return;
    }
    if state.eviction_policy_seen != state.config.maxmemory_policy {
        state.eviction_policy_seen = state.config.maxmemory_policy.clone();
        state.eviction_pool.clear();
    }
    let lfu = Policy::parse(&state.config.maxmemory_policy).is_lfu();
    let cfg = &state.config;
    let num = |name: &str, default: u32| {
        cfg.get_by_name(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    evict::set_tracking(lfu, num("lfu-log-factor", 10), num("lfu-decay-time", 1));
    state.eviction_pool.tuning = evict::Tuning {
        tenacity: num("maxmemory-eviction-tenacity", 10),
        lazy: cfg.get_by_name("lazyfree-lazy-eviction") == Some("yes"),
    };
}

/// How long one eviction round may run (Redis `evictionTimeLimitUs`): 50 us per tenacity
/// point up to 10, then 15% more per point, and no limit at 100.
fn time_limit(tenacity: u32) -> Option<Duration> {
    match tenacity {
        0..=10 => Some(Duration::from_micros(50 * u64::from(tenacity))),
        11..=99 => Some(Duration::from_micros(
            (500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64,
        )),
        _ => None,
    }
}

/// Evicts keys until used memory is under `maxmemory`. Like Redis it frees the excess measured
/// at the start, counting what each deletion actually released, so that memory taken by the
/// propagated DELs themselves cannot make it evict without end.
pub fn perform_evictions(server: &mut Server) -> EvictStatus {
    evict_with(server, |_| crate::alloc::used_memory())
}

/// [`perform_evictions`] with the memory reading passed in, so that tests of the library (where
/// the counting allocator is not installed) can drive it.
fn evict_with(server: &mut Server, used_memory: impl Fn(&Keyspace) -> usize) -> EvictStatus {
    let Server { ks, state, .. } = server;
    let max = state.config.maxmemory.max(0) as usize;
    // A stream of already executed writes (loading, a master's stream) is never refused.
    if max == 0 || ks.loading {
        return EvictStatus::Ok;
    }
    let used = used_memory(ks);
    if used <= max {
        return EvictStatus::Ok;
    }
    let policy = Policy::parse(&state.config.maxmemory_policy);
    if policy == Policy::NoEviction {
        return EvictStatus::Fail;
    }
    let started = Instant::now();
    let status = evict_until(ks, state, policy, used - max, &used_memory);
    let ms = started.elapsed().as_millis() as u64;
    let threshold = state.config.latency_monitor_threshold;
    state.latency.add_if_needed("eviction-cycle", ms, threshold, crate::util::time::now_secs());
    status
}

/// Evicts keys under `policy` until `to_free` bytes are freed, nothing is left to evict, or
/// the round's time limit passes.
fn evict_until(
    ks: &mut Keyspace,
    state: &mut ServerState,
    policy: Policy,
    to_free: usize,
    used_memory: &impl Fn(&Keyspace) -> usize,
) -> EvictStatus {
    let limit = time_limit(state.eviction_pool.tuning.tenacity);
    let lazy = state.eviction_pool.tuning.lazy;
    let samples = state.config.maxmemory_samples.max(1) as usize;
    let mut freed = 0usize;
    let mut count = 0u64;
    let started = Instant::now();
    // The reading that counts as back under the limit.
    let target = used_memory(ks).saturating_sub(to_free);
    while freed < to_free {
        let before = used_memory(ks);
        let Some((db, key)) =
            ks.evict_one(&mut state.eviction_pool, policy, samples, &mut state.rng)
        else {
            return wait_for_lazy_frees(ks, target, limit, started, used_memory);
        };
        freed += before.saturating_sub(used_memory(ks));
        on_evicted(state, db, key, lazy);
        count += 1;
        // A value handed to the lazy-free thread releases its memory only once that thread
        // has run, so `freed` does not see it. Evicting on regardless would empty the
        // database while the memory is on its way back (the thread needs the CPU this loop
        // holds); the round ends instead, and the next command or cron tick looks again.
        // Like Redis's EVICT_RUNNING, that lets the command run.
        if lazy && lazyfree::pending() > 0 {
            return if used_memory(ks) <= target { EvictStatus::Ok } else { EvictStatus::Running };
        }
        if count % 16 == 0 && limit.is_some_and(|l| started.elapsed() >= l) {
            return EvictStatus::Running;
        }
    }
    EvictStatus::Ok
}

/// Nothing is left to evict: before refusing the command, give values still being freed on
/// the lazy-free thread the rest of the round's time to return their memory, as Redis does.
fn wait_for_lazy_frees(
    ks: &Keyspace,
    target: usize,
    limit: Option<Duration>,
    started: Instant,
    used_memory: &impl Fn(&Keyspace) -> usize,
) -> EvictStatus {
    let limit = limit.unwrap_or(Duration::from_millis(1));
    while lazyfree::pending() > 0 && started.elapsed() < limit {
        if used_memory(ks) <= target {
            return EvictStatus::Ok;
        }
        std::thread::sleep(limit.min(Duration::from_millis(1)));
    }
    if used_memory(ks) <= target {
        EvictStatus::Ok
    } else {
        EvictStatus::Fail
    }
}

/// What an eviction does besides the deletion: it is a write like an expiry, so it goes to the
/// write stream on its own as `DEL` (`UNLINK` with `lazyfree-lazy-eviction`).
fn on_evicted(state: &mut ServerState, db: usize, key: Key, lazy: bool) {
    state.stats.evicted_keys += 1;
    state.touched_keys(db, &key);
    state.notify_keyspace_event('e', "evicted", db, &key);
    if state.journal.is_active() {
        let del: &[u8] = if lazy { b"UNLINK" } else { b"DEL" };
        let mut one = Effects::default();
        one.push(db, &[del, &key]);
        state.journal.append(&one);
    }
}

/// Bytes a key and its value take: the key, the value's heap, the table slot and the entry.
///
/// ```text
/// MEMORY USAGE key [SAMPLES count]
/// ```
///
/// Like Redis, the key is found without expiring it, and SAMPLES is validated but the size is
/// always exact here: every value type reports its own heap size without sampling.
fn usage(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let mut i = 3;
    while i < argv.len() {
        if is(argv[i], "samples") && i + 1 < argv.len() {
            if args::int(argv[i + 1])? < 0 {
                return Err(CmdError::Syntax);
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let key = argv[2];
    match ctx.ks.dbs[ctx.db].peek(key) {
        None => ctx.out.null(),
        Some(e) => {
            // The table slot (32-bit hash, key, entry, index bytes) holds keys of up to
            // INLINE_KEY bytes itself; longer ones own a heap copy.
            let heap_key = if key.len() > crate::keyspace::table::INLINE_KEY { key.len() } else { 0 };
            let total = MAIN_SLOT + heap_key + e.value.heap_size();
            ctx.out.integer(total as i64);
        }
    }
    Ok(())
}

/// ```text
/// MEMORY HELP
/// ```
fn help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::command::reply_help(
        ctx.out,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
    Ok(())
}

/// Table overhead per key of the main table: the slot (key with its metadata, entry) and about 3
/// index bytes (see `keyspace::table`).
const MAIN_SLOT: usize = std::mem::size_of::<Key>() + std::mem::size_of::<Entry>() + 3;
/// The same for the expires table, whose values are `u64`.
const EXPIRES_SLOT: usize = 4 + std::mem::size_of::<Key>() + 8 + 3;

/// The numbers behind MEMORY STATS and MEMORY DOCTOR (Redis `getMemoryOverheadData`).
pub(crate) struct Overhead {
    pub peak: usize,
    pub total: usize,
    pub startup: usize,
    pub clients_normal: usize,
    /// The replication backlog, and the stream queued for replicas.
    pub repl_backlog: usize,
    pub clients_slaves: usize,
    /// The EVAL script cache, and the function libraries.
    lua_caches: usize,
    functions_caches: usize,
    /// (db, main table overhead, expires table overhead) for each non-empty database.
    dbs: Vec<(usize, usize, usize)>,
    pub overhead_total: usize,
    keys: usize,
    pub rss: usize,
    /// jemalloc's figures; where it cannot tell, the counted bytes and the RSS stand in.
    pub alloc: AllocatorStats,
}

impl Overhead {
    /// Measures the server's memory (MEMORY STATS, MEMORY DOCTOR and INFO memory).
    pub(crate) fn measure(ks: &Keyspace, srv: &mut ServerState) -> Overhead {
        let total = crate::alloc::used_memory();
        srv.peak_memory = srv.peak_memory.max(total);
        let startup = srv.startup_memory;
        // Replicas' buffers are counted as `clients_slaves`. The running client's info may be
        // borrowed by its connection; it is skipped then.
        let clients_normal: usize = srv
            .clients
            .values()
            .filter_map(|c| {
                let i = c.info.try_borrow().ok()?;
                (!i.flags.contains('S')).then(|| i.memory(c.pending_output()))
            })
            .sum();
        let dbs: Vec<(usize, usize, usize)> = ks
            .dbs
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.is_empty())
            .map(|(i, d)| (i, d.main.len() * MAIN_SLOT, d.expires.len() * EXPIRES_SLOT))
            .collect();
        let tables: usize = dbs.iter().map(|&(_, m, e)| m + e).sum();
        let (repl_backlog, clients_slaves) = super::server::replication_buffers(srv);
        let sc = &srv.scripting;
        let (lua_caches, functions_caches) = (sc.cache_memory(), sc.functions_memory());
        let buffers = repl_backlog + clients_slaves + lua_caches + functions_caches;
        let rss = crate::alloc::rss_bytes();
        let alloc = crate::alloc::allocator_stats().unwrap_or(AllocatorStats {
            allocated: total,
            active: total,
            resident: rss,
        });
        Overhead {
            peak: srv.peak_memory,
            total,
            startup,
            clients_normal,
            repl_backlog,
            clients_slaves,
            lua_caches,
            functions_caches,
            overhead_total: startup + clients_normal + buffers + tables,
            keys: ks.dbs.iter().map(|d| d.len()).sum(),
            dbs,
            rss,
            alloc,
        }
    }

    /// Redis's three views of the gap between what was allocated and what the process holds:
    /// inside jemalloc's pages (`allocator_frag`), pages jemalloc keeps resident
    /// (`allocator_rss`), and the process beyond jemalloc (`rss_overhead`), each as a ratio and
    /// in bytes.
    pub(crate) fn gaps(&self) -> [(f64, i64); 3] {
        let a = &self.alloc;
        let gap = |num: usize, den: usize| (ratio(num, den), num as i64 - den as i64);
        [gap(a.active, a.allocated), gap(a.resident, a.active), gap(self.rss, a.resident)]
    }

    /// Memory above what the server had allocated once started.
    pub(crate) fn net(&self) -> usize {
        self.total.saturating_sub(self.startup).max(1)
    }

    pub(crate) fn dataset(&self) -> usize {
        self.total.saturating_sub(self.overhead_total)
    }
}

/// A ratio rounded through `f32`, as Redis computes these (its MEMORY STATS prints floats).
fn ratio(a: usize, b: usize) -> f64 {
    f64::from(a as f32 / b.max(1) as f32)
}

/// Memory usage of the server, with Redis's field names.
///
/// ```text
/// MEMORY STATS
/// ```
///
/// The `allocator.*` figures are jemalloc's own. The replication and scripting figures are
/// INFO memory's; there are no cluster links, and the AOF has no buffer of Redis's kind (a
/// batch goes to the file before its replies), so those are 0.
fn stats(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let mh = Overhead::measure(ctx.ks, ctx.srv);
    let [(frag, frag_bytes), (arss, arss_bytes), (rss_over, rss_over_bytes)] = mh.gaps();
    let out = &mut *ctx.out;
    let int = |out: &mut crate::protocol::ReplyBuf, name: &str, v: i64| {
        out.bulk_str(name);
        out.integer(v);
    };
    out.map(27 + mh.dbs.len());
    int(out, "peak.allocated", mh.peak as i64);
    int(out, "total.allocated", mh.total as i64);
    int(out, "startup.allocated", mh.startup as i64);
    int(out, "replication.backlog", mh.repl_backlog as i64);
    int(out, "clients.slaves", mh.clients_slaves as i64);
    int(out, "clients.normal", mh.clients_normal as i64);
    int(out, "cluster.links", 0);
    int(out, "aof.buffer", 0);
    int(out, "lua.caches", mh.lua_caches as i64);
    int(out, "functions.caches", mh.functions_caches as i64);
    for &(db, main, expires) in &mh.dbs {
        out.bulk_str(&format!("db.{db}"));
        out.map(3);
        int(out, "overhead.hashtable.main", main as i64);
        int(out, "overhead.hashtable.expires", expires as i64);
        int(out, "overhead.hashtable.slot-to-keys", 0);
    }
    int(out, "overhead.total", mh.overhead_total as i64);
    int(out, "keys.count", mh.keys as i64);
    let per_key = if mh.keys == 0 { 0 } else { mh.net() / mh.keys };
    int(out, "keys.bytes-per-key", per_key as i64);
    int(out, "dataset.bytes", mh.dataset() as i64);
    out.bulk_str("dataset.percentage");
    out.double(f64::from(mh.dataset() as f32 * 100.0 / mh.net() as f32));
    out.bulk_str("peak.percentage");
    out.double(f64::from(mh.total as f32 * 100.0 / mh.peak.max(1) as f32));
    int(out, "allocator.allocated", mh.alloc.allocated as i64);
    int(out, "allocator.active", mh.alloc.active as i64);
    int(out, "allocator.resident", mh.alloc.resident as i64);
    let rss_extra = mh.rss as i64 - mh.total as i64;
    out.bulk_str("allocator-fragmentation.ratio");
    out.double(frag);
    int(out, "allocator-fragmentation.bytes", frag_bytes);
    out.bulk_str("allocator-rss.ratio");
    out.double(arss);
    int(out, "allocator-rss.bytes", arss_bytes);
    out.bulk_str("rss-overhead.ratio");
    out.double(rss_over);
    int(out, "rss-overhead.bytes", rss_over_bytes);
    out.bulk_str("fragmentation");
    out.double(ratio(mh.rss, mh.total));
    int(out, "fragmentation.bytes", rss_extra);
    Ok(())
}

const DOCTOR_EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my \
    issues detector can't be used in these conditions. Please, leave for your mission on Earth \
    and fill it with some data. The new Sam and I will be back to our programming as soon as I \
    finished rebooting.\n";
const DOCTOR_FINE: &str = "Hi Sam, I can't find any memory issue in your instance. I can only \
    account for what occurs on this base.\n";
const DOCTOR_ISSUES: &str =
    "Sam, I detected a few issues in this Redis instance memory implants:\n\n";
const DOCTOR_BYE: &str = "I'm here to keep you safe, Sam. I want to help you.\n";
const DOCTOR_PEAK: &str = " * Peak memory: In the past this instance used more than 150% the \
    memory that is currently using. The allocator is normally not able to release memory after \
    a peak, so you can expect to see a big fragmentation ratio, however this is actually \
    harmless and is only due to the memory peak, and if the Redis instance Resident Set Size \
    (RSS) is currently bigger than expected, the memory will be used as soon as you fill the \
    Redis instance with more data. If the memory peak was only occasional and you want to try \
    to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is \
    to shutdown and restart the instance.\n\n";
const DOCTOR_FRAG: &str = " * High total RSS: This instance has a memory fragmentation and RSS \
    overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is \
    much larger than the sum of the logical allocations Redis performed). This problem is \
    usually due either to a large peak memory (check if there is a peak memory entry above in \
    the report) or may result from a workload that causes the allocator to fragment memory a \
    lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure \
    you are using the Jemalloc allocator and not the default libc malloc. Note: The currently \
    used allocator is \"";
const DOCTOR_ALLOC_FRAG: &str = " * High allocator fragmentation: This instance has an \
    allocator external fragmentation greater than 1.1. This problem is usually due either to a \
    large peak memory (check if there is a peak memory entry above in the report) or may \
    result from a workload that causes the allocator to fragment memory a lot. You can try \
    enabling 'activedefrag' config option.\n\n";
const DOCTOR_ALLOC_RSS: &str = " * High allocator RSS overhead: This instance has an RSS \
    memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator \
    is much larger than the sum what the allocator actually holds). This problem is usually due \
    to a large peak memory (check if there is a peak memory entry above in the report), you can \
    try the MEMORY PURGE command to reclaim it.\n\n";
const DOCTOR_PROC_RSS: &str = " * High process RSS overhead: This instance has non-allocator \
    RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis \
    process is much larger than the RSS the allocator holds). This problem may be due to Lua \
    scripts or Modules.\n\n";
const DOCTOR_REPLICAS: &str = " * Big replica buffers: The replica output buffers in this \
    instance are greater than 10MB for each replica (on average). This likely means that there \
    is some replica instance that is struggling receiving data, either because it is too slow \
    or because of networking issues. As a result, data piles on the master output buffers. \
    Please try to identify what replica is not receiving data correctly and why. You can use \
    the INFO output in order to check the replicas delays and the CLIENT LIST command to check \
    the output buffers of each replica.\n\n";
const DOCTOR_CLIENTS: &str = " * Big client buffers: The clients output buffers in this \
    instance are greater than 200K per client (on average). This may result from different \
    causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so \
    that data piles on the Redis instance output buffer, or clients sending commands with large \
    replies or very large sequences of commands in the same pipeline. Please use the CLIENT \
    LIST command in order to investigate the issue if it causes problems in your instance, or \
    to understand better why certain clients are using a big amount of memory.\n\n";

/// A human-readable analysis of memory use, in Redis's words.
///
/// ```text
/// MEMORY DOCTOR
/// ```
///
/// Makes Redis's checks on the same figures as MEMORY STATS: peak against current use, total
/// RSS against use, jemalloc's external fragmentation and resident overhead, the process's
/// RSS beyond jemalloc, replica and client output buffers, and the size of the script cache.
fn doctor(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let mh = Overhead::measure(ctx.ks, ctx.srv);
    let replicas = ctx
        .srv
        .clients
        .values()
        .filter(|c| c.info.try_borrow().is_ok_and(|i| i.flags.contains('S')))
        .count();
    let normal = ctx.srv.clients.len().saturating_sub(replicas).max(1);
    let text = doctor_report(&mh, normal, replicas, ctx.srv.scripting.scripts.len());
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// Redis's `getMemoryDoctorReport`: `normal` clients (at least 1), `replicas` connected,
/// `scripts` in the EVAL cache. Like Redis, the replica check compares the replicas' buffers
/// together with 10 MB, though its text speaks of each replica.
fn doctor_report(mh: &Overhead, normal: usize, replicas: usize, scripts: usize) -> String {
    if mh.total < 5 << 20 {
        return DOCTOR_EMPTY.to_string();
    }
    const TEN_MB: i64 = 10 << 20;
    let [(alloc_frag, alloc_frag_bytes), (alloc_rss, alloc_rss_bytes), (proc_rss, proc_rss_bytes)] =
        mh.gaps();
    let frag = format!("{DOCTOR_FRAG}{}\".\n\n", super::server::allocator_name());
    let checks = [
        (mh.peak as f32 / mh.total as f32 > 1.5, DOCTOR_PEAK),
        (ratio(mh.rss, mh.total) > 1.4 && mh.rss.saturating_sub(mh.total) > 10 << 20, &frag),
        (alloc_frag > 1.1 && alloc_frag_bytes > TEN_MB, DOCTOR_ALLOC_FRAG),
        (alloc_rss > 1.1 && alloc_rss_bytes > TEN_MB, DOCTOR_ALLOC_RSS),
        (proc_rss > 1.1 && proc_rss_bytes > TEN_MB, DOCTOR_PROC_RSS),
        (replicas > 0 && mh.clients_slaves > 10 << 20, DOCTOR_REPLICAS),
        (mh.clients_normal / normal > 200 * 1024, DOCTOR_CLIENTS),
        (scripts > 1000, DOCTOR_SCRIPTS),
    ];
    let found: Vec<&str> = checks.iter().filter_map(|&(hit, text)| hit.then_some(text)).collect();
    if found.is_empty() {
        return DOCTOR_FINE.to_string();
    }
    let mut s = String::from(DOCTOR_ISSUES);
    found.iter().for_each(|t| s.push_str(t));
    s.push_str(DOCTOR_BYE);
    s
}

const DOCTOR_SCRIPTS: &str = " * Many scripts: There seem to be many cached scripts in this \
    instance (more than 1000). This may be because scripts are generated and `EVAL`ed, instead \
    of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. Unless \
    `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming most of \
    your memory.\n\n";

/// A short report from the memory allocator.
///
/// ```text
/// MEMORY MALLOC-STATS
/// ```
///
/// jemalloc's own statistics report, as Redis prints it.
fn malloc_stats(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let text = crate::alloc::malloc_stats_text();
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// Asks the allocator to return dirty pages to the system.
///
/// ```text
/// MEMORY PURGE
/// ```
///
/// Every jemalloc arena gives its unused dirty pages back to the system at once.
fn purge(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    if !crate::alloc::purge() {
        return Err(CmdError::err("Error purging dirty pages"));
    }
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overhead(total: usize, peak: usize, rss: usize) -> Overhead {
        Overhead {
            peak,
            total,
            startup: 1 << 20,
            clients_normal: 0,
            repl_backlog: 0,
            clients_slaves: 0,
            lua_caches: 0,
            functions_caches: 0,
            dbs: Vec::new(),
            overhead_total: 1 << 20,
            keys: 0,
            rss,
            alloc: AllocatorStats { allocated: total, active: total, resident: rss },
        }
    }

    /// A report with exactly one finding, `what`.
    fn only(r: String, what: &str) {
        assert!(r.starts_with(DOCTOR_ISSUES) && r.ends_with(DOCTOR_BYE), "{r}");
        assert_eq!(r.lines().filter(|l| l.starts_with(" * ")).count(), 1, "{r}");
        assert!(r.contains(what), "{r}");
    }

    #[test]
    fn doctor_texts() {
        const MB: usize = 1 << 20;
        let report = |mh: &Overhead| doctor_report(mh, 1, 0, 0);
        assert_eq!(report(&overhead(MB, MB, MB)), DOCTOR_EMPTY);
        let fine = overhead(50 * MB, 50 * MB, 55 * MB);
        assert_eq!(report(&fine), DOCTOR_FINE);
        let r = report(&overhead(50 * MB, 100 * MB, 55 * MB));
        only(r, " * Peak memory:");
        // Three gaps of at most 1.1 each cannot make 1.4, so a high total RSS shows at least
        // one of them too, as in Redis.
        let r = report(&overhead(50 * MB, 50 * MB, 100 * MB));
        assert!(r.contains(" * High total RSS:") && !r.contains("Peak memory"), "{r}");
        assert!(r.contains("The currently used allocator is \"jemalloc"), "{r}");
        // Each allocator gap alone: over 1.1 and over 10 MB.
        let gaps = [
            ((50, 61, 61), 62, " * High allocator fragmentation:"),
            ((50, 50, 62), 63, " * High allocator RSS overhead:"),
            ((50, 50, 50), 62, " * High process RSS overhead:"),
        ];
        for ((allocated, active, resident), rss, what) in gaps {
            let mut m = overhead(50 * MB, 50 * MB, rss * MB);
            m.alloc = AllocatorStats {
                allocated: allocated * MB,
                active: active * MB,
                resident: resident * MB,
            };
            only(report(&m), what);
        }
        // Replica buffers: over 10 MB in all, with a replica connected.
        let mut m = overhead(50 * MB, 50 * MB, 55 * MB);
        m.clients_slaves = 11 * MB;
        only(doctor_report(&m, 1, 1, 0), " * Big replica buffers:");
        assert_eq!(doctor_report(&m, 1, 0, 0), DOCTOR_FINE);
        // Client buffers: over 200 KB a normal client on average.
        m.clients_slaves = 0;
        m.clients_normal = 500 * 1024;
        only(doctor_report(&m, 2, 0, 0), " * Big client buffers:");
        assert_eq!(doctor_report(&m, 3, 0, 0), DOCTOR_FINE);
        // The script cache: over 1000 scripts.
        m.clients_normal = 0;
        only(doctor_report(&m, 1, 0, 1001), " * Many scripts:");
        assert_eq!(doctor_report(&m, 1, 0, 1000), DOCTOR_FINE);
    }

    /// A server whose "used memory" is 1000 bytes per key, with a journal consumer attached.
    fn server_with_keys(policy: &str, n: usize) -> Server {
        let mut cfg = crate::config::Config::from_args(&[]).expect("default config");
        cfg.set("maxmemory", "5000").expect("maxmemory");
        cfg.set("save", "").expect("save");
        cfg.set("maxmemory-policy", policy).expect("policy");
        let mut srv = Server::new(cfg);
        srv.state.journal.attach();
        for i in 0..n {
            let k = format!("k{i}");
            let v = crate::keyspace::Value::from_bytes(b"v");
            srv.ks.dbs[i % 2].set_with_expire(k.as_bytes(), v, 10_000_000 + i as u64);
        }
        srv
    }

    fn fake_memory(ks: &Keyspace) -> usize {
        ks.dbs.iter().map(|d| d.len()).sum::<usize>() * 1000
    }

    #[test]
    fn evictions_are_propagated_counted_and_signalled() {
        let mut srv = server_with_keys("volatile-ttl", 8);
        let epoch = srv.state.modification_epoch;
        // Eight keys "use" 8000 bytes against a limit of 5000: three must go, soonest first.
        assert_eq!(evict_with(&mut srv, fake_memory), EvictStatus::Ok);
        assert_eq!(srv.state.stats.evicted_keys, 3);
        assert!(srv.state.modification_epoch > epoch);
        let stream = String::from_utf8(srv.state.journal.take_pending().to_vec()).unwrap();
        assert!(stream.contains("$3\r\nDEL\r\n$2\r\nk0\r\n"), "{stream}");
        assert!(stream.contains("$3\r\nDEL\r\n$2\r\nk2\r\n"), "{stream}");
        assert!(!stream.contains("k3"), "{stream}");
    }

    #[test]
    fn lazy_eviction_propagates_unlink_and_noeviction_fails() {
        let mut srv = server_with_keys("allkeys-random", 8);
        srv.state
            .config
            .set("lazyfree-lazy-eviction", "yes")
            .expect("lazyfree");
        sync_tracking(&mut srv.state, true);
        evict_with(&mut srv, fake_memory);
        let stream = String::from_utf8(srv.state.journal.take_pending().to_vec()).unwrap();
        assert!(stream.contains("UNLINK"), "{stream}");
        let mut srv = server_with_keys("noeviction", 8);
        assert_eq!(evict_with(&mut srv, fake_memory), EvictStatus::Fail);
        assert_eq!(srv.ks.dbs[0].len() + srv.ks.dbs[1].len(), 8);
        assert_eq!(evict_with(&mut srv, |_| 10), EvictStatus::Ok);
    }

    #[test]
    fn eviction_time_limit_follows_tenacity() {
        assert_eq!(time_limit(0), Some(Duration::ZERO));
        assert_eq!(time_limit(10), Some(Duration::from_micros(500)));
        assert_eq!(time_limit(11), Some(Duration::from_micros(575)));
        assert_eq!(time_limit(100), None);
    }
}
