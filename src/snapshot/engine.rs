//! Taking and loading snapshots: SAVE, the fork-less point-in-time BGSAVE, save points, and
//! loading at start-up or for DEBUG RELOAD.
//!
//! **BGSAVE without fork.** Redis forks and lets copy-on-write keep the child's view frozen,
//! which can double memory under write load. Here the snapshot point is the instant BGSAVE
//! runs: every table of every database gets a write barrier ([`crate::keyspace::table::Capture`])
//! that encodes what a write is about to change (per key in the main table, per segment in the
//! expires table) as it was at the snapshot point; between batches, the [`driver`] task walks
//! the untouched entries a couple of thousand at a time. The encoded records go to a writer
//! thread that compresses, checksums and writes them ([`super::file::SnapshotWriter`]), so the
//! event loop never waits on the disk. Extra memory is only the records in flight to that
//! thread, bounded relative to the dataset (see [`HARD_IN_FLIGHT_DIV`]): past the bound the
//! event loop waits for the writer (back-pressure) instead of growing.
//!
//! The same machinery serves other snapshots ([`start_snapshot`]): the append-only log's base
//! and a replica's full sync, each with its own destination and completion callback. A full
//! sync for a peer that is not a ferrodis replica is written as a Redis RDB file instead
//! ([`Format::Rdb`], `rdb_file`): other capture encoders, and a writer that frames the records
//! as RDB with a running CRC-64 instead of lz4 blocks.
//!
//! **Durability of a save.** The file is written under a temporary name, fsynced, renamed over
//! its destination, and the directory fsynced, so a crash at any point leaves either the old
//! file or the new one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::codec::{self, BlockKind, EncodingLimits};
use super::file::{self, DbCount, LoadSink, Meta, SnapshotWriter, WriteOptions};
use super::rdb_file::{self, EarlyExpires, RdbParts, RdbWriter};
use crate::keyspace::{hash::HashLimits, table::Key, zset, Entry, Keyspace, Value, NO_EXPIRE};
use crate::keyspace::value::RString;
use crate::server::{Server, ServerState};
use crate::util::time::{now_ms, now_secs};
use crate::util::prefetch::prefetch;

/// Raw record bytes collected into one block before it is handed to the writer.
const BLOCK_BYTES: usize = 128 * 1024;
/// Entries the driver walks per step, between which clients are served (about 0.1 ms idle,
/// 0.4 ms under a write load that keeps the values out of the caches).
const STEP_ENTRIES: usize = 2048;
/// While clients are being served, a paced save (see [`SnapshotJob::paced`]) waits at least
/// this long after each step, and at least [`BUSY_PAUSE_PER_STEP`] times the step's own
/// duration: the walk then takes at most about a third of the event loop. Measured under
/// `redis-benchmark -t set -P 16` on 17M keys (bench/SNAPSHOT.md), the unpaced walk made a
/// GET's p99 1.4-3.4x its idle value (median about 2x): every request waited for longer
/// event-loop turns, and the writer thread, fed as fast as the walk went, took the second
/// core from the clients. Paced, 0.7-1.9x (median about 1.25x), for a save three times as
/// long (18-22 s, against Redis's 44 s on the same data). With no client commands between two
/// steps the walk does not pause: an idle server's save is as fast as before.
const BUSY_PAUSE: Duration = Duration::from_millis(1);
const BUSY_PAUSE_PER_STEP: u32 = 2;
/// Bounds on the records in flight to the writer, as a fraction of the memory in use when the
/// save starts (the budget for a snapshot is a quarter of the dataset). Past the soft
/// limit the driver stops encoding on its own and leaves the writer to catch up; past the hard
/// limit (barrier captures keep coming while clients write) the event loop waits for the
/// writer, which bounds the extra memory at the price of latency.
const SOFT_IN_FLIGHT_DIV: usize = 40;
const HARD_IN_FLIGHT_DIV: usize = 8;
/// Floors of the two limits, for small datasets.
const MIN_SOFT_IN_FLIGHT: usize = 8 << 20;
const MIN_HARD_IN_FLIGHT: usize = 64 << 20;
/// Redis waits this long after a failed BGSAVE before a save point may try again.
const BGSAVE_RETRY_SECS: u64 = 5;
/// Aux field holding the function libraries (a FUNCTION DUMP payload).
pub const AUX_FUNCTIONS: &str = "functions";

/// What a snapshot is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ferrodis's snapshot file (`formats/snapshot.md`): SAVE, BGSAVE, the append-only base,
    /// full syncs of ferrodis replicas.
    Snapshot,
    /// A Redis RDB file (`rdb_file`) with these parts: full syncs of other peers.
    Rdb(RdbParts),
}

/// Persistence state for INFO and the save logic (`ServerState::persist`).
#[derive(Default)]
pub struct Persistence {
    pub last_bgsave_ok: bool,
    /// Duration of the last BGSAVE in seconds, -1 before the first.
    pub last_bgsave_secs: i64,
    /// Successful saves (`rdb_saves`).
    pub saves: u64,
    /// Unix seconds of the last BGSAVE attempt (the save-point retry delay after a failure).
    pub last_bgsave_try: u64,
    pub bgsave: Option<BgSave>,
    /// BGSAVE SCHEDULE while another save runs: start one as soon as it ends.
    pub bgsave_scheduled: bool,
    /// Set while a start-up load runs on its thread.
    pub loading: Option<Loading>,
    /// Set while a replica receives a disk-less full sync from a master with its own history
    /// (`repl-diskless-load swapdb`): it keeps serving the old dataset meanwhile (INFO
    /// `async_loading`), where a different history would put it in `loading`.
    pub async_loading: bool,
    pub last_load_keys_loaded: u64,
    pub last_load_keys_expired: u64,
    /// Wakes the [`driver`] when a BGSAVE starts.
    pub wake: Rc<tokio::sync::Notify>,
}

impl Persistence {
    pub fn new() -> Self {
        Persistence { last_bgsave_ok: true, last_bgsave_secs: -1, ..Persistence::default() }
    }

    /// A BGSAVE proper is running (`rdb_bgsave_in_progress`).
    pub fn bgsave_in_progress(&self) -> bool {
        self.bgsave.as_ref().is_some_and(BgSave::is_bgsave)
    }

    /// Some snapshot is running (only one can at a time).
    pub fn snapshot_in_progress(&self) -> bool {
        self.bgsave.is_some()
    }
}

/// A background save in progress.
pub struct BgSave {
    tx: mpsc::Sender<Msg>,
    in_flight: Arc<InFlight>,
    /// Set by the writer thread when it stops (done or failed): nobody drains `in_flight` then.
    stopped: Arc<AtomicBool>,
    result: Option<tokio::sync::oneshot::Receiver<Result<u64, String>>>,
    started: Instant,
    /// `dirty` when the save started: changes after it are still unsaved when it ends.
    dirty_at_start: u64,
    /// Keys at the snapshot point (`current_save_keys_total`).
    pub keys_total: u64,
    soft_limit: usize,
    hard_limit: usize,
    /// A snapshot streamed to replicas advances at their pace, which the event loop itself
    /// drives: it must never block waiting for its writer (no hard limit then).
    streamed: bool,
    /// See [`SnapshotJob::paced`].
    paced: bool,
    is_bgsave: bool,
    on_done: Option<OnDone>,
    /// The file being written, for the log.
    dest: PathBuf,
    /// The temporary file it is written to (removed at once when the save is abandoned);
    /// `None` for a snapshot streamed to replicas.
    temp: Option<PathBuf>,
    /// An RDB snapshot's expiries captured ahead of their keys, per capture tag (see
    /// `rdb_file::resolve_expiries`); `None` for our format.
    rdb: Option<RefCell<HashMap<u32, EarlyExpires>>>,
}

impl BgSave {
    pub fn elapsed_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Whether INFO shows it as an RDB save in progress (`rdb_bgsave_in_progress`): a BGSAVE
    /// proper, or a disk-less sync's snapshot (an RDB child in Redis too), rather than a
    /// snapshot for the append-only log or a disk-based sync's file.
    pub fn is_bgsave(&self) -> bool {
        self.is_bgsave || self.streamed
    }

    /// Stops pacing this save (see [`SnapshotJob::paced`]): a replica now waits for its file.
    pub fn hurry(&mut self) {
        self.paced = false;
    }
}

/// A load in progress, for INFO's `loading_*` fields.
pub struct Loading {
    pub started: Instant,
    pub start_secs: u64,
    pub total_bytes: u64,
    pub loaded_bytes: Arc<AtomicU64>,
    /// `used_memory` recorded in the snapshot (`loading_rdb_used_mem`), stored by the loading
    /// thread once it has read the header.
    pub used_memory: Arc<AtomicU64>,
}

/// The blocks handed to the writer thread and not written yet, and the buffers it has
/// finished with. Buffers go round between the two threads instead of being allocated for
/// every block: each one is a large allocation, and jemalloc's bookkeeping of those was a
/// sixth of a save's time on the event loop (perf).
struct InFlight {
    bytes: AtomicUsize,
    spare: std::sync::Mutex<Vec<Vec<u8>>>,
}

/// Written buffers kept for reuse; more would only be held memory (the event loop takes one
/// per block it collects).
const SPARE_BUFFERS: usize = 8;
/// The largest buffer kept for reuse, and the most a new one reserves up front. A step's
/// records are a few hundred kilobytes; a collection after a burst of overwrites can be tens of
/// megabytes, and spare buffers of that size would be memory outside the in-flight bound. So
/// the spares add at most `SPARE_BUFFERS` megabytes to it.
const SPARE_CAPACITY: usize = 1 << 20;

impl InFlight {
    fn new() -> Self {
        InFlight { bytes: AtomicUsize::new(0), spare: std::sync::Mutex::new(Vec::new()) }
    }

    /// Bytes handed over and not yet written: the buffers' capacity, which is the memory they
    /// hold (a buffer grown by doubling holds up to twice its records; counting only the
    /// records let a full overwrite during a save use twice the bound).
    fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// A buffer for the next block, with room for about `want` bytes.
    fn buffer(&self, want: usize) -> Vec<u8> {
        let reused = self.spare.lock().ok().and_then(|mut s| s.pop());
        reused.unwrap_or_else(|| Vec::with_capacity(want.min(SPARE_CAPACITY)))
    }

    fn sent(&self, raw: &Vec<u8>) {
        self.bytes.fetch_add(raw.capacity(), Ordering::AcqRel);
    }

    /// The writer is done with `raw`.
    fn written(&self, mut raw: Vec<u8>) {
        self.bytes.fetch_sub(raw.capacity(), Ordering::AcqRel);
        raw.clear();
        if let Ok(mut s) = self.spare.lock() {
            if s.len() < SPARE_BUFFERS && raw.capacity() <= SPARE_CAPACITY {
                s.push(raw);
            }
        }
    }
}

/// What the event loop sends the writer thread.
enum Msg {
    Block(u32, BlockKind, Vec<u8>),
    Finish,
}

/// The path snapshots are saved to and loaded from: `dbfilename` in `dir` (the process's
/// working directory), made absolute so that a CONFIG SET dir during a BGSAVE does not move
/// the file the writer thread renames into place.
pub fn snapshot_path(srv: &ServerState) -> PathBuf {
    let name = PathBuf::from(&srv.config.dbfilename);
    std::env::current_dir().map_or(name.clone(), |d| d.join(name))
}

/// Encoding thresholds from the configuration, for the loader.
pub fn encoding_limits(srv: &ServerState) -> EncodingLimits {
    config_limits(&srv.config)
}

/// Encoding thresholds from a configuration (before the server state exists).
fn config_limits(c: &crate::config::Config) -> EncodingLimits {
    let us = |v: i64| usize::try_from(v).unwrap_or(0);
    EncodingLimits {
        hash: HashLimits {
            max_entries: us(c.hash_max_listpack_entries),
            max_value: us(c.hash_max_listpack_value),
        },
        zset: zset::Limits {
            max_entries: us(c.zset_max_listpack_entries),
            max_value: us(c.zset_max_listpack_value),
        },
        set_max_intset: crate::keyspace::set::intset_limit(c.set_max_intset_entries),
        list_fill: c.list_max_listpack_size,
    }
}

/// The header of a snapshot of `ks` taken now.
fn meta_for(ks: &Keyspace, srv: &ServerState) -> Meta {
    let dbs = ks
        .dbs
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.is_empty())
        .map(|(i, d)| DbCount { db: i as u32, keys: d.len() as u64, expires: d.expires.len() as u64 })
        .collect();
    let mut aux = Vec::new();
    if !srv.scripting.libs.libs.is_empty() {
        aux.push((AUX_FUNCTIONS.to_string(), crate::scripting::functions::dump(&srv.scripting.libs)));
    }
    aux.extend(crate::replication::snapshot_aux(srv));
    Meta {
        created_ms: now_ms(),
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        repl_id: srv.repl.replid.clone(),
        repl_offset: srv.journal.offset(),
        used_memory: crate::alloc::used_memory() as u64,
        dbs,
        aux,
    }
}

fn write_options(srv: &ServerState) -> WriteOptions {
    WriteOptions { compress: srv.config.rdbcompression, checksum: srv.config.rdbchecksum }
}

/// How an RDB snapshot writes keys, from the configuration (as DUMP does, plus the access
/// data Redis adds under an LRU/LFU policy).
fn rdb_key_options(srv: &ServerState) -> rdb_file::KeyOptions {
    rdb_file::KeyOptions {
        object: crate::commands::keys::dump_options(srv),
        access: rdb_file::Access::for_policy(&srv.config.maxmemory_policy),
    }
}

fn encode_entry(k: &Key, e: &Entry, out: &mut Vec<u8>) {
    codec::encode_value(out, k, &e.value);
}

/// Prefetches a string's heap bytes and a long key's: a save walks millions of entries whose
/// values are scattered over the heap, and waiting for each one in turn was most of its time
/// on the event loop (perf: the copy of a 64-byte value, i.e. its cache miss, was 75%).
fn warm_entry(k: &Key, e: &Entry) {
    prefetch(k.as_bytes().as_ptr());
    match &e.value {
        Value::Str(RString::Emb(b)) => prefetch(b.as_ptr()),
        Value::Str(RString::Raw(v)) => prefetch(v.as_ptr()),
        _ => {}
    }
}

fn encode_expire(k: &Key, at: &u64, out: &mut Vec<u8>) {
    codec::encode_expire(out, k, *at);
}

/// Creates the temporary file a save writes, next to its destination. A synchronous save
/// (nothing else saves meanwhile) uses Redis's name, `temp-<pid>.rdb`, which a second SIGINT
/// removes while it is written; a background one adds a sequence number (a SAVE may run while
/// it writes its own file).
fn temp_file(dest: &Path, background: bool) -> std::io::Result<(PathBuf, File)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = if background {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        format!("temp-{}-{n}.rdb", std::process::id())
    } else {
        format!("temp-{}.rdb", std::process::id())
    };
    let path = dest.parent().map_or_else(|| PathBuf::from(&name), |d| d.join(&name));
    let f = File::create(&path)?;
    Ok((path, f))
}

/// Makes a finished temporary file the snapshot: fsync, rename, fsync the directory.
fn commit_file(file: File, temp: &Path, dest: &Path) -> std::io::Result<()> {
    file.sync_all()?;
    drop(file);
    std::fs::rename(temp, dest)?;
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    File::open(dir)?.sync_all()
}

// ---------------------------------------------------------------------------------------------
// SAVE
// ---------------------------------------------------------------------------------------------

/// Writes a snapshot of `ks` synchronously (SAVE, SHUTDOWN, DEBUG RELOAD). Nothing else runs
/// meanwhile, so no barrier is needed: the tables are simply walked.
pub fn save(ks: &Keyspace, srv: &mut ServerState) -> Result<(), String> {
    let dest = snapshot_path(srv);
    let meta = meta_for(ks, srv);
    let opts = write_options(srv);
    let result = write_sync(ks, &meta, opts, &dest, sync_pace(srv));
    match &result {
        Ok(()) => {
            tracing::warn!("DB saved on disk");
            srv.dirty = 0;
            srv.lastsave = now_secs();
            srv.persist.saves += 1;
        }
        Err(e) => tracing::warn!("Failed saving the DB: {e}"),
    }
    result
}

/// Writes a snapshot of `ks` to `dest` synchronously, leaving the save statistics alone (the
/// file a full resync sends when a background save is already running, the append-only log's
/// first base). It is written out as it grows under `rdb-save-incremental-fsync`, whatever
/// it is for.
pub fn save_to(ks: &Keyspace, srv: &ServerState, dest: &Path) -> Result<(), String> {
    write_sync(ks, &meta_for(ks, srv), write_options(srv), dest, sync_pace(srv))
}

/// How a synchronous save paces its writing: `rdb-key-save-delay` and
/// `rdb-save-incremental-fsync` (see [`write_sync`]).
fn sync_pace(srv: &ServerState) -> (i64, bool) {
    (srv.config.rdb_key_save_delay, srv.config.rdb_save_incremental_fsync)
}

/// Writes an RDB file of `ks` holding `parts` to `dest` synchronously (the payload of a full
/// sync for a peer that is not a ferrodis replica, when another snapshot is running).
pub fn save_rdb_to(
    ks: &Keyspace,
    srv: &ServerState,
    dest: &Path,
    parts: RdbParts,
) -> Result<(), String> {
    let (meta, opts, o) = (meta_for(ks, srv), write_options(srv), rdb_key_options(srv));
    let delay = srv.config.rdb_key_save_delay;
    let (temp, file) = temp_file(dest, true)
        .map_err(|e| format!("Failed opening the temp RDB file for saving: {e}"))?;
    let mut n = 0u64;
    let out = BufWriter::new(SaveFile::new(file, srv.config.rdb_save_incremental_fsync));
    let written = rdb_file::write_keyspace(out, ks, &meta, opts, parts, o, || {
        key_delay(delay, &mut n);
    })
    .and_then(|bw| bw.into_inner().map_err(|e| e.into_error()))
    .map(SaveFile::into_inner);
    let result = written.and_then(|f| commit_file(f, &temp, dest));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(|e| e.to_string())
}

/// `delay`: `rdb-key-save-delay`, applied per key (see [`key_delay`]); `autosync`:
/// `rdb-save-incremental-fsync` (see [`SaveFile`]).
fn write_sync(
    ks: &Keyspace,
    meta: &Meta,
    opts: WriteOptions,
    dest: &Path,
    (delay, autosync): (i64, bool),
) -> Result<(), String> {
    let (temp, file) = temp_file(dest, false)
        .map_err(|e| format!("Failed opening the temp RDB file for saving: {e}"))?;
    let written = (|| -> std::io::Result<File> {
        let out = BufWriter::new(SaveFile::new(file, autosync));
        let mut w = SnapshotWriter::new(out, meta, opts)?;
        let mut buf = Vec::with_capacity(BLOCK_BYTES + 4096);
        for (i, db) in ks.dbs.iter().enumerate() {
            let i = i as u32;
            let mut n = 0u64;
            let entries = db.main.iter().inspect(|_| key_delay(delay, &mut n));
            write_table(&mut w, &mut buf, i, BlockKind::Values, entries, encode_entry)?;
            write_table(&mut w, &mut buf, i, BlockKind::Expires, db.expires.iter(), encode_expire)?;
        }
        let mut bw = w.finish()?;
        bw.flush()?;
        bw.into_inner().map_err(|e| e.into_error()).map(SaveFile::into_inner)
    })();
    let result = written.and_then(|f| commit_file(f, &temp, dest));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(|e| e.to_string())
}

/// `rdb-key-save-delay` in a synchronous save (Redis's test hook): positive, sleep that many
/// microseconds per key; negative, one microsecond every |delay| keys (`n` counts them).
fn key_delay(delay: i64, n: &mut u64) {
    match delay {
        0 => {}
        d if d > 0 => std::thread::sleep(Duration::from_micros(d as u64)),
        d => {
            *n += 1;
            if n.is_multiple_of(d.unsigned_abs()) {
                std::thread::sleep(Duration::from_micros(1));
            }
        }
    }
}

/// Encodes one table's entries into blocks of about [`BLOCK_BYTES`].
fn write_table<'a, V: 'a, W: Write>(
    w: &mut SnapshotWriter<W>,
    buf: &mut Vec<u8>,
    db: u32,
    kind: BlockKind,
    entries: impl Iterator<Item = (&'a Key, &'a V)>,
    encode: fn(&Key, &V, &mut Vec<u8>),
) -> std::io::Result<()> {
    for (k, v) in entries {
        encode(k, v, buf);
        if buf.len() >= BLOCK_BYTES {
            w.write_block(db, kind, buf)?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        w.write_block(db, kind, buf)?;
        buf.clear();
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// BGSAVE
// ---------------------------------------------------------------------------------------------

/// What a background snapshot is for, and what happens when it is complete.
pub struct SnapshotJob {
    /// Where the file goes (written under a temporary name next to it, then renamed).
    pub dest: PathBuf,
    /// A BGSAVE proper: its outcome sets the `rdb_*` statistics, LASTSAVE and the dirty
    /// counter. Snapshots taken for another purpose (an append-only base, a replica's full
    /// sync) leave them alone, as Redis's AOF rewrite and replication do.
    pub is_bgsave: bool,
    /// Runs on the event loop once the file is in place, or the snapshot failed or was
    /// abandoned (then with the error).
    pub on_done: Option<OnDone>,
    /// Write the file out as it grows (`rdb-save-incremental-fsync`, or
    /// `aof-rewrite-incremental-fsync` for an append-only base; see [`SaveFile`]).
    pub incremental_fsync: bool,
    /// Give way to clients: while they keep the event loop busy, the walk pauses between its
    /// steps (see [`BUSY_PAUSE`]). For BGSAVE and append-only bases, whose duration nobody
    /// waits on; not for a replica's full sync, which the replica waits for and whose
    /// duration the backlog and the replica's output buffer have to cover.
    pub paced: bool,
}

/// Completion callback of a [`SnapshotJob`]: the file's size, or why there is no file.
pub type OnDone = Box<dyn FnOnce(&mut Keyspace, &mut ServerState, Result<u64, String>)>;

/// Starts a background save of the dataset to `dbfilename` (BGSAVE, save points).
pub fn bgsave_start(ks: &mut Keyspace, srv: &mut ServerState) -> Result<(), String> {
    let job = SnapshotJob {
        dest: snapshot_path(srv),
        is_bgsave: true,
        on_done: None,
        incremental_fsync: srv.config.rdb_save_incremental_fsync,
        paced: true,
    };
    start_snapshot(ks, srv, job)
}

/// Starts a background snapshot: opens the file on a writer thread and puts the write barrier
/// on every non-empty table. The snapshot point is now. One runs at a time.
pub fn start_snapshot(
    ks: &mut Keyspace,
    srv: &mut ServerState,
    job: SnapshotJob,
) -> Result<(), String> {
    start_snapshot_as(ks, srv, job, Format::Snapshot)
}

/// [`start_snapshot`] in the given format.
pub fn start_snapshot_as(
    ks: &mut Keyspace,
    srv: &mut ServerState,
    job: SnapshotJob,
    format: Format,
) -> Result<(), String> {
    if srv.persist.bgsave.is_some() {
        return Err("Background save already in progress".into());
    }
    let SnapshotJob { dest, is_bgsave, on_done, incremental_fsync, paced } = job;
    let (temp, file) = match temp_file(&dest, true) {
        Ok(f) => f,
        Err(e) => {
            // Redis's forked child would fail the same way after "started" was replied: the
            // save is reported as failed (and MISCONF may follow), not the command.
            tracing::warn!("Failed opening the temp RDB file for saving: {e}");
            if !is_bgsave {
                return Err(e.to_string());
            }
            tracing::warn!("Background saving error");
            srv.persist.last_bgsave_ok = false;
            srv.persist.last_bgsave_try = now_secs();
            return Ok(());
        }
    };
    let (dest_for_info, temp_for_abort) = (dest.clone(), temp.clone());
    let file = SaveFile::new(file, incremental_fsync);
    let write: WriteFn = Box::new(move |meta, opts, rx, counter| {
        let r = writer_thread(file, (&temp, &dest), meta, (opts, format), rx, counter);
        if r.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        r
    });
    let names = (dest_for_info, Some(temp_for_abort));
    let how = Kind { is_bgsave, streamed: false, paced, format };
    start_with(ks, srv, write, how, on_done, names)
}

/// Starts a background snapshot written to `out` instead of a file (a disk-less full sync:
/// `out` passes the bytes to the replicas' sockets). `name` names it in the logs. The
/// completion callback gets the byte count, or the error (`out` failed, or the snapshot was
/// abandoned).
pub fn start_snapshot_stream(
    ks: &mut Keyspace,
    srv: &mut ServerState,
    (out, format): (Box<dyn Write + Send>, Format),
    name: &str,
    on_done: Option<OnDone>,
) -> Result<(), String> {
    if srv.persist.bgsave.is_some() {
        return Err("Background save already in progress".into());
    }
    let write: WriteFn = Box::new(move |meta, opts, rx, counter| {
        let (bytes, _) = write_snapshot(out, meta, (opts, format), rx, counter)?;
        Ok(bytes)
    });
    let how = Kind { is_bgsave: false, streamed: true, paced: false, format };
    start_with(ks, srv, write, how, on_done, (PathBuf::from(name), None))
}

/// What the writer thread runs: writes the snapshot from the blocks it receives.
type WriteFn = Box<
    dyn FnOnce(&Meta, WriteOptions, mpsc::Receiver<Msg>, &InFlight) -> Result<u64, String>
        + Send,
>;

/// What a background snapshot is, for [`start_with`] (see [`BgSave`]'s fields).
struct Kind {
    is_bgsave: bool,
    streamed: bool,
    paced: bool,
    format: Format,
}

/// The common part of [`start_snapshot`] and [`start_snapshot_stream`]: the writer thread and
/// the write barriers.
fn start_with(
    ks: &mut Keyspace,
    srv: &mut ServerState,
    write: WriteFn,
    Kind { is_bgsave, streamed, paced, format }: Kind,
    on_done: Option<OnDone>,
    (dest_for_info, temp_for_abort): (PathBuf, Option<PathBuf>),
) -> Result<(), String> {
    let mut meta = meta_for(ks, srv);
    if let Format::Rdb(parts) = format {
        rdb_file::set_capture_options(rdb_key_options(srv));
        if !parts.keys {
            meta.dbs.clear();
        }
    }
    let opts = write_options(srv);
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let in_flight = Arc::new(InFlight::new());
    let stopped = Arc::new(AtomicBool::new(false));
    let (counter, stop) = (in_flight.clone(), stopped.clone());
    std::thread::Builder::new()
        .name("ferrodis-bgsave".into())
        .spawn(move || {
            lower_priority();
            let r = write(&meta, opts, rx, &counter);
            stop.store(true, Ordering::Release);
            let _ = done_tx.send(r);
        })
        .map_err(|e| e.to_string())?;
    let used = crate::alloc::used_memory();
    let mut keys_total = 0;
    for (i, db) in ks.dbs.iter_mut().enumerate() {
        if db.is_empty() {
            continue;
        }
        let tag = i as u32;
        let no_warm = |_: &Key, _: &u64| {};
        match format {
            Format::Snapshot => {
                db.main.start_capture((encode_entry, warm_entry), tag, true);
                db.expires.start_capture((encode_expire, no_warm), tag, false);
            }
            Format::Rdb(parts) if parts.keys => {
                // The expires table is never walked: its per-key barrier keeps only the
                // expiries that change before their keys are written.
                db.main.start_capture((rdb_file::encode_entry, warm_entry), tag, true);
                db.expires.start_capture((rdb_file::encode_expire, no_warm), tag, true);
            }
            Format::Rdb(_) => continue,
        }
        keys_total += db.len() as u64;
    }
    if is_bgsave {
        srv.persist.last_bgsave_try = now_secs();
    }
    srv.persist.bgsave = Some(BgSave {
        tx,
        in_flight,
        stopped,
        result: Some(done_rx),
        started: Instant::now(),
        dirty_at_start: srv.dirty,
        keys_total,
        is_bgsave,
        on_done,
        dest: dest_for_info.clone(),
        temp: temp_for_abort,
        soft_limit: (used / SOFT_IN_FLIGHT_DIV).max(MIN_SOFT_IN_FLIGHT),
        hard_limit: (used / HARD_IN_FLIGHT_DIV).max(MIN_HARD_IN_FLIGHT),
        streamed,
        paced,
        rdb: matches!(format, Format::Rdb(_)).then(|| RefCell::new(HashMap::new())),
    });
    srv.persist.wake.notify_one();
    if is_bgsave {
        tracing::warn!("Background saving started");
    } else {
        tracing::info!("Background snapshot to {} started", dest_for_info.display());
    }
    Ok(())
}

/// Makes the calling thread yield the CPU to the event loop: on two cores shared with clients,
/// a compressing writer of equal priority would preempt the event loop for whole scheduler
/// slices (milliseconds of latency); at the lowest priority it uses the time the event loop
/// leaves idle, and the in-flight limits throttle the event loop only when it falls behind.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread, with no pointers involved.
    #[allow(unsafe_code)]
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

/// The writer thread: compresses and writes blocks as they come, then commits the file.
fn writer_thread(
    file: SaveFile,
    (temp, dest): (&Path, &Path),
    meta: &Meta,
    opts: (WriteOptions, Format),
    rx: mpsc::Receiver<Msg>,
    in_flight: &InFlight,
) -> Result<u64, String> {
    let io = |e: std::io::Error| e.to_string();
    let out = BufWriter::with_capacity(WRITE_CHUNK, file);
    let (bytes, bw) = write_snapshot(out, meta, opts, rx, in_flight)?;
    let file = bw.into_inner().map_err(|e| e.into_error().to_string())?.into_inner();
    commit_file(file, temp, dest).map_err(io)?;
    Ok(bytes)
}

/// Most bytes a save hands the kernel in one `write()`.
const WRITE_CHUNK: usize = 64 << 10;

/// With `rdb-save-incremental-fsync` (or `aof-rewrite-incremental-fsync` for an append-only
/// base), a save starts writing out every this many bytes as it goes, as Redis does
/// (`REDIS_AUTOSYNC_BYTES`).
const AUTOSYNC_BYTES: u64 = 4 << 20;

/// The file a save writes, as the kernel sees it.
///
/// - Each `write()` passes at most [`WRITE_CHUNK`] bytes, so that the writing thread leaves
///   the kernel often. A kernel without preemption (`PREEMPT_NONE`, the default of many
///   distributions and of this project's VMs) lets a thread in a system call keep its CPU
///   until the call returns, whatever its priority: copying 1 MB into pages the page cache had
///   never used took about 3 ms on a VM that faults them in from its host.
/// - With `autosync`, every [`AUTOSYNC_BYTES`] the range just written is handed to the disk
///   and the range before it waited for (Redis's `rioFileWrite`): the dirty pages of a save
///   stay bounded, and the final fsync has little left to do instead of flushing the whole
///   file at once.
struct SaveFile<W = File> {
    file: W,
    written: u64,
    autosync: bool,
}

impl<W: Write + SyncRange> SaveFile<W> {
    fn new(file: W, autosync: bool) -> Self {
        SaveFile { file, written: 0, autosync }
    }

    fn into_inner(self) -> W {
        self.file
    }
}

impl<W: Write + SyncRange> Write for SaveFile<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut n = buf.len().min(WRITE_CHUNK);
        if self.autosync {
            // Up to the next 4 MB boundary (a short write earlier may have left it off a
            // chunk boundary): each sync then covers exactly the bytes written before it.
            n = n.min((AUTOSYNC_BYTES - self.written % AUTOSYNC_BYTES) as usize);
        }
        let n = self.file.write(&buf[..n])?;
        self.written += n as u64;
        if self.autosync && n > 0 && self.written.is_multiple_of(AUTOSYNC_BYTES) {
            let end = self.written;
            self.file.sync_range(end - AUTOSYNC_BYTES, AUTOSYNC_BYTES, false)?;
            if end >= 2 * AUTOSYNC_BYTES {
                self.file.sync_range(end - 2 * AUTOSYNC_BYTES, AUTOSYNC_BYTES, true)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writing out part of a file (`sync_file_range`).
trait SyncRange {
    /// Starts writing out `len` bytes at `offset`; with `wait`, waits for them to be written
    /// (and for any write-out already under way there).
    fn sync_range(&mut self, offset: u64, len: u64, wait: bool) -> std::io::Result<()>;
}

impl SyncRange for File {
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn sync_range(&mut self, offset: u64, len: u64, wait: bool) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let flags = if wait {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        } else {
            libc::SYNC_FILE_RANGE_WRITE
        };
        let (Ok(off), Ok(n)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len))
        else {
            return Ok(());
        };
        // SAFETY: a system call on a descriptor this `File` owns, with no pointers involved.
        let r = unsafe { libc::sync_file_range(self.as_raw_fd(), off, n, flags) };
        if r == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Without `sync_file_range`, Redis fsyncs the whole file at each step.
    #[cfg(not(target_os = "linux"))]
    fn sync_range(&mut self, _offset: u64, _len: u64, _wait: bool) -> std::io::Result<()> {
        self.sync_data()
    }
}

/// The writer of either format.
enum FileWriter<W: Write> {
    Snapshot(SnapshotWriter<W>),
    Rdb(RdbWriter<W>),
}

impl<W: Write> FileWriter<W> {
    fn new(out: W, meta: &Meta, (opts, format): (WriteOptions, Format)) -> std::io::Result<Self> {
        Ok(match format {
            Format::Snapshot => FileWriter::Snapshot(SnapshotWriter::new(out, meta, opts)?),
            Format::Rdb(parts) => FileWriter::Rdb(RdbWriter::new(out, meta, opts, parts)?),
        })
    }

    fn write_block(&mut self, db: u32, kind: BlockKind, raw: &[u8]) -> std::io::Result<()> {
        match self {
            FileWriter::Snapshot(w) => w.write_block(db, kind, raw),
            // An RDB snapshot's expiries travel inside its value records.
            FileWriter::Rdb(w) => w.write_block(db, raw),
        }
    }

    fn bytes_written(&self) -> u64 {
        match self {
            FileWriter::Snapshot(w) => w.bytes_written(),
            FileWriter::Rdb(w) => w.bytes_written(),
        }
    }

    fn finish(self) -> std::io::Result<W> {
        match self {
            FileWriter::Snapshot(w) => w.finish(),
            FileWriter::Rdb(w) => w.finish(),
        }
    }
}

/// Writes the snapshot's blocks to `out` as they come, then its end; flushes `out`. Returns
/// the byte count and `out`.
fn write_snapshot<W: Write>(
    out: W,
    meta: &Meta,
    opts: (WriteOptions, Format),
    rx: mpsc::Receiver<Msg>,
    in_flight: &InFlight,
) -> Result<(u64, W), String> {
    let io = |e: std::io::Error| e.to_string();
    let mut w = FileWriter::new(out, meta, opts).map_err(io)?;
    loop {
        match rx.recv() {
            Ok(Msg::Block(db, kind, raw)) => {
                let r = w.write_block(db, kind, &raw);
                in_flight.written(raw);
                r.map_err(io)?;
            }
            Ok(Msg::Finish) => break,
            // The server gave up on this save.
            Err(_) => return Err("background save aborted".into()),
        }
    }
    let bytes = w.bytes_written();
    let mut out = w.finish().map_err(io)?;
    out.flush().map_err(io)?;
    Ok((bytes, out))
}

/// Hands every table's captured records to the writer; waits for the writer while too much is
/// in flight. Returns the bytes now in flight.
fn collect(ks: &mut Keyspace, save: &BgSave) -> usize {
    let send = |tag: u32, kind: BlockKind, out: &mut Vec<u8>| {
        if out.is_empty() {
            return;
        }
        // The next step's records go into a buffer with room for as many from the start:
        // growing one from empty by doubling cost a save's event loop about a tenth of its
        // time in reallocations (perf).
        let raw = std::mem::replace(out, save.in_flight.buffer(out.len()));
        save.in_flight.sent(&raw);
        // A send fails only if the writer stopped on an error; the driver then reports it.
        let _ = save.tx.send(Msg::Block(tag, kind, raw));
    };
    for db in &mut ks.dbs {
        if let Some(early) = &save.rdb {
            resolve_rdb_expiries(db, &mut early.borrow_mut());
        }
        if let Some(c) = db.main.capture_mut() {
            send(c.tag, BlockKind::Values, &mut c.out);
        }
        if let Some(c) = db.expires.capture_mut() {
            send(c.tag, BlockKind::Expires, &mut c.out);
        }
    }
    let mut n = save.in_flight.bytes();
    while !save.streamed && n > save.hard_limit && !save.stopped.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_micros(200));
        n = save.in_flight.bytes();
    }
    n
}

/// An RDB snapshot's collection step for one database: fills the expiry slots of the value
/// records captured since the last step (see `rdb_file::resolve_expiries`), consuming the
/// expires table's records.
fn resolve_rdb_expiries(db: &mut crate::keyspace::Db, early: &mut HashMap<u32, EarlyExpires>) {
    let Some(main) = db.main.capture_mut() else { return };
    let tag = main.tag;
    let mut values = std::mem::take(&mut main.out);
    let expires = db.expires.capture_mut().map(|c| std::mem::take(&mut c.out)).unwrap_or_default();
    if values.is_empty() && expires.is_empty() {
        return;
    }
    let early = early.entry(tag).or_default();
    let live = |k: &[u8]| db.expires.take_uncaptured(k);
    let missing = rdb_file::resolve_expiries(&mut values, &expires, early, live);
    if missing > 0 {
        tracing::warn!("RDB snapshot: {missing} keys of db {tag} written without their expiry");
    }
    if let Some(main) = db.main.capture_mut() {
        main.out = values;
    }
}

/// Encodes about `entries` entries of untouched segments. Returns true when every table is
/// fully captured. `rdb`: an RDB snapshot, whose expires tables are not walked.
fn capture_step(ks: &mut Keyspace, entries: usize, rdb: bool) -> bool {
    for db in &mut ks.dbs {
        if db.main.capture_mut().is_some_and(|c| c.remaining() > 0) {
            db.main.capture_pending(entries);
            return false;
        }
        if rdb {
            continue;
        }
        if db.expires.capture_mut().is_some_and(|c| c.remaining() > 0) {
            db.expires.capture_pending(entries);
            return false;
        }
    }
    true
}

/// Entries per driver step, and the pause after it: `rdb-key-save-delay` (Redis's test hook)
/// slows a save down to that many microseconds per key, or, negative, one microsecond every
/// |delay| keys.
fn step_pace(delay: i64) -> (usize, Option<Duration>) {
    match delay {
        0 => (STEP_ENTRIES, None),
        d if d > 0 => {
            let n = (1000 / d).max(1) as usize;
            (n, Some(Duration::from_micros(n as u64 * d as u64)))
        }
        d => (1000, Some(Duration::from_micros((1000 / d.unsigned_abs()).max(1)))),
    }
}

/// The driver's pause after a capture step that took `step`: `rdb-key-save-delay`'s, if set;
/// else, when `busy` (a paced save, and clients were served since the previous step), long
/// enough to leave the event loop to them for most of the time (see [`BUSY_PAUSE`]).
fn pause_after(delay_pause: Option<Duration>, busy: bool, step: Duration) -> Option<Duration> {
    delay_pause.or_else(|| busy.then(|| BUSY_PAUSE.max(step * BUSY_PAUSE_PER_STEP)))
}

/// Removes the barriers from every table.
fn end_captures(ks: &mut Keyspace) {
    for db in &mut ks.dbs {
        db.main.end_capture();
        db.expires.end_capture();
    }
}

/// The task that drives background saves: sleeps until one starts, then alternates capture
/// steps with serving clients until the snapshot is complete, and records the outcome.
pub async fn driver(server: Rc<RefCell<Server>>) {
    let wake = server.borrow().state.persist.wake.clone();
    loop {
        let running = {
            let mut srv = server.borrow_mut();
            start_scheduled(&mut srv);
            srv.state.persist.bgsave.is_some()
        };
        if !running {
            wake.notified().await;
            continue;
        }
        // Capture until complete, yielding to clients between steps.
        let mut commands_seen = server.borrow().state.stats.total_commands_processed;
        loop {
            let (complete, backlogged, pause) = {
                let mut srv = server.borrow_mut();
                let Server { ks, state, .. } = &mut *srv;
                let (entries, delay_pause) = step_pace(state.config.rdb_key_save_delay);
                let Some(save) = state.persist.bgsave.as_ref() else { break };
                if save.stopped.load(Ordering::Acquire) {
                    // The writer gave up (its output failed: a full disk, or no replica left
                    // to read a disk-less sync). Nothing drains the records in flight any more,
                    // so waiting for them to fall below the limit would wait forever.
                    break;
                }
                let step_start = Instant::now();
                let in_flight = collect(ks, save);
                let rdb = save.rdb.is_some();
                let complete = in_flight < save.soft_limit && capture_step(ks, entries, rdb);
                let backlogged = collect(ks, save) >= save.soft_limit;
                let commands = state.stats.total_commands_processed;
                let busy = save.paced && commands != commands_seen;
                commands_seen = commands;
                (complete, backlogged, pause_after(delay_pause, busy, step_start.elapsed()))
            };
            if complete {
                let srv = server.borrow();
                if let Some(save) = srv.state.persist.bgsave.as_ref() {
                    let _ = save.tx.send(Msg::Finish);
                }
                break;
            }
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            } else if backlogged {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        // Wait for the writer to commit the file.
        let rx = server.borrow_mut().state.persist.bgsave.as_mut().and_then(|s| s.result.take());
        let result = match rx {
            Some(rx) => rx.await.unwrap_or_else(|_| Err("background save thread died".into())),
            None => Err("background save aborted".into()),
        };
        let mut srv = server.borrow_mut();
        let Server { ks, state, .. } = &mut *srv;
        end_captures(ks);
        if let Some(f) = finish_bgsave(state, result.clone()) {
            f(ks, state, result);
        }
    }
}

/// Starts the BGSAVE that BGSAVE SCHEDULE (or BGSAVE inside MULTI) asked for, once no other
/// save runs.
fn start_scheduled(srv: &mut Server) {
    let Server { ks, state, .. } = srv;
    if state.persist.bgsave_scheduled && state.persist.bgsave.is_none() {
        state.persist.bgsave_scheduled = false;
        if let Err(e) = bgsave_start(ks, state) {
            tracing::warn!("Can't start the scheduled BGSAVE: {e}");
        }
    }
}

/// Records the outcome of a background save.
fn finish_bgsave(state: &mut ServerState, result: Result<u64, String>) -> Option<OnDone> {
    let mut save = state.persist.bgsave.take()?;
    let on_done = save.on_done.take();
    if !save.is_bgsave {
        match &result {
            Ok(_) => tracing::info!("Background snapshot for {} done", save_name(&save)),
            Err(e) => tracing::warn!("Background snapshot for {} failed: {e}", save_name(&save)),
        }
        return on_done;
    }
    let p = &mut state.persist;
    p.last_bgsave_secs = save.started.elapsed().as_secs() as i64;
    match result {
        Ok(_) => {
            tracing::warn!("Background saving terminated with success");
            p.last_bgsave_ok = true;
            p.saves += 1;
            state.dirty = state.dirty.saturating_sub(save.dirty_at_start);
            state.lastsave = now_secs();
        }
        Err(e) => {
            tracing::warn!("Background saving error: {e}");
            p.last_bgsave_ok = false;
        }
    }
    on_done
}

fn save_name(save: &BgSave) -> String {
    save.dest.display().to_string()
}

/// Abandons a running background save (SHUTDOWN, FLUSHALL, DEBUG RELOAD): the barriers go,
/// the writer thread stops and deletes its temporary file.
/// The completion callback of a non-BGSAVE snapshot runs with the error, so that whoever
/// waited for the file hears of it.
pub fn bgsave_abort(ks: &mut Keyspace, state: &mut ServerState) {
    let Some(mut save) = state.persist.bgsave.take() else { return };
    let on_done = save.on_done.take();
    // Dropping the sender makes the writer thread stop with an error and clean up; the
    // temporary file goes now, so that none is left behind by a process about to exit
    // (SHUTDOWN abandons a running save).
    if let Some(temp) = &save.temp {
        let _ = std::fs::remove_file(temp);
    }
    drop(save);
    end_captures(ks);
    tracing::warn!("Background saving terminated by the server");
    if let Some(f) = on_done {
        f(ks, state, Err("snapshot abandoned".into()));
    }
}

/// The save points (`save <seconds> <changes>`): called from the cron. Starts a BGSAVE when
/// one is due, as Redis's `serverCron` does.
pub fn cron(srv: &mut Server) {
    let Server { ks, state, .. } = srv;
    if state.persist.bgsave.is_some() || state.persist.loading.is_some() {
        return;
    }
    let now = now_secs();
    let p = &state.persist;
    let retry_ok = p.last_bgsave_ok || now.saturating_sub(p.last_bgsave_try) > BGSAVE_RETRY_SECS;
    let since = now.saturating_sub(state.lastsave);
    let due = state.config.save.iter().any(|&(secs, changes)| {
        state.dirty >= changes.max(0) as u64 && since > secs.max(0) as u64
    });
    if due && retry_ok {
        tracing::warn!("{} changes in {since} seconds. Saving...", state.dirty);
        if let Err(e) = bgsave_start(ks, state) {
            tracing::warn!("Can't save in background: {e}");
            state.persist.last_bgsave_ok = false;
            state.persist.last_bgsave_try = now;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// A snapshot's auxiliary fields (name, value), as loaded.
pub type AuxFields = Vec<(String, Vec<u8>)>;

/// Counts of a finished load.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadStats {
    pub keys_loaded: u64,
    pub keys_expired: u64,
}

/// A [`LoadSink`] that fills a keyspace.
pub struct KeyspaceSink<'a> {
    ks: &'a mut Keyspace,
    /// Skip keys already expired (a master does; a replica keeps them for the master's DEL).
    now: Option<u64>,
    /// DEBUG RELOAD MERGE: a key that exists is replaced instead of being an error.
    merge: bool,
    /// Expiries whose key had not been loaded yet (the two tables are captured independently).
    early_expires: Vec<(u32, Vec<u8>, u64)>,
    pub stats: LoadStats,
    pub aux: Vec<(String, Vec<u8>)>,
    progress: Option<Arc<AtomicU64>>,
    /// `key-load-delay`: microseconds to sleep per key (Redis's test hook for slow loads).
    key_delay_us: i64,
    /// LRU/LFU data of every loaded key (read once: the loading thread has no LRU clock of
    /// its own, so each read would be a system call).
    lru: u32,
    /// The keys dropped as already expired, (db, key), when [`LoadOptions::list_expired`]
    /// asks for them: a restarted master sends their DELs to its replicas.
    pub expired_keys: Vec<(usize, Key)>,
    list_expired: bool,
    used_memory_out: Option<Arc<AtomicU64>>,
}

impl<'a> KeyspaceSink<'a> {
    pub fn new(ks: &'a mut Keyspace, now: Option<u64>, merge: bool) -> Self {
        KeyspaceSink {
            ks,
            now,
            merge,
            early_expires: Vec::new(),
            stats: LoadStats::default(),
            aux: Vec::new(),
            progress: None,
            key_delay_us: 0,
            lru: crate::keyspace::evict::new_access(),
            expired_keys: Vec::new(),
            list_expired: false,
            used_memory_out: None,
        }
    }

    fn db(&mut self, db: u32) -> Result<&mut crate::keyspace::Db, String> {
        let n = self.ks.dbs.len();
        self.ks
            .dbs
            .get_mut(db as usize)
            .ok_or_else(|| format!("database {db} out of range (the server has {n})"))
    }

    /// Applies the expiries that arrived before their keys, then drops keys already expired.
    fn finish(&mut self) -> Result<(), String> {
        for (db, key, at) in std::mem::take(&mut self.early_expires) {
            let d = self.db(db)?;
            if !d.set_expire(&key, at) {
                return Err(format!(
                    "expiry for key '{}' in db {db} which the snapshot does not hold",
                    String::from_utf8_lossy(&key)
                ));
            }
        }
        let Some(now) = self.now else { return Ok(()) };
        for (i, d) in self.ks.dbs.iter_mut().enumerate() {
            if d.expires.is_empty() {
                continue;
            }
            let dead: Vec<Key> =
                d.expires.iter().filter(|(_, &at)| at <= now).map(|(k, _)| k.clone()).collect();
            for k in dead {
                d.remove(&k);
                self.stats.keys_expired += 1;
                self.stats.keys_loaded -= 1;
                if self.list_expired {
                    self.expired_keys.push((i, k));
                }
            }
        }
        Ok(())
    }
}

impl LoadSink for KeyspaceSink<'_> {
    fn meta(&mut self, meta: &Meta) -> Result<(), String> {
        // A Redis RDB (see `rdb`) names its writer in the `redis-ver` aux field.
        let by = if meta.aux.iter().any(|(k, _)| k == "redis-ver") { "Redis" } else { "ferrodis" };
        tracing::info!("Loading RDB produced by {by} version {}", meta.server_version);
        let age = now_ms().saturating_sub(meta.created_ms) / 1000;
        tracing::info!("RDB age {age} seconds");
        tracing::info!("RDB memory usage when created {:.2} Mb", meta.used_memory as f64 / 1048576.0);
        if let Some(out) = &self.used_memory_out {
            out.store(meta.used_memory, Ordering::Relaxed);
        }
        for c in &meta.dbs {
            let d = self.db(c.db)?;
            if d.is_empty() {
                d.main.reserve(c.keys as usize);
                d.expires.reserve(c.expires as usize);
            }
        }
        self.aux = meta.aux.clone();
        self.aux.extend(crate::replication::header_aux(meta));
        Ok(())
    }

    fn value(&mut self, db: u32, key: &[u8], value: Value) -> Result<(), String> {
        if self.key_delay_us > 0 {
            std::thread::sleep(Duration::from_micros(self.key_delay_us as u64));
        }
        let (merge, lru) = (self.merge, self.lru);
        let d = self.db(db)?;
        if let Err(entry) = d.insert_new(key, Entry::new(value), lru) {
            if !merge {
                return Err(format!("duplicate key '{}' in db {db}", String::from_utf8_lossy(key)));
            }
            d.insert_entry(key, entry, NO_EXPIRE, lru);
        }
        self.stats.keys_loaded += 1;
        Ok(())
    }

    fn expire(&mut self, db: u32, key: &[u8], at_ms: u64) -> Result<(), String> {
        if at_ms == NO_EXPIRE {
            return Err("expiry time 0".into());
        }
        let d = self.db(db)?;
        if !d.set_expire(key, at_ms) {
            self.early_expires.push((db, key.to_vec(), at_ms));
        }
        Ok(())
    }

    fn progress(&mut self, done: u64, _total: u64) {
        if let Some(p) = &self.progress {
            p.store(done, Ordering::Relaxed);
        }
    }
}

/// Loads the snapshot file at `path` into `ks` (which the caller has emptied, unless merging).
/// `progress`, if given, follows the bytes read. Returns the counts and the aux fields.
pub fn load_file(
    path: &Path,
    ks: &mut Keyspace,
    limits: EncodingLimits,
    opts: LoadOptions,
) -> Result<(LoadStats, AuxFields), String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len == 0 {
        return Err(format!("{}: offset 0: empty file", path.display()));
    }
    // SAFETY: the file is ours (written by a save and renamed into place); nothing truncates it
    // while it is mapped, and the bytes are only read.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    let mut sink = KeyspaceSink::new(ks, opts.skip_expired.then(now_ms), opts.merge);
    sink.progress = opts.progress;
    sink.key_delay_us = opts.key_delay_us;
    sink.list_expired = opts.list_expired;
    sink.used_memory_out = opts.used_memory_out;
    // A Redis RDB (dump.rdb, an append-only base) is read by its own reader; both feed the
    // same sink.
    let loaded = if super::rdb::is_rdb(&map) {
        super::rdb::load(&map, limits, &mut sink)
            .map(|meta| sink.aux = meta.aux)
            .map_err(|e| e.to_string())
    } else {
        file::load(&map, limits, &mut sink).map(|_| ()).map_err(|e| {
            // Say also whether the whole-file checksum holds: a damaged tail usually breaks
            // the end marker's structure before its checksum can be compared, and "CRC error"
            // is what Redis users (and Redis's tests) look for in the log.
            match whole_file_crc_ok(&map) {
                Some(false) => format!("{e} (CRC error: the file checksum does not match)"),
                _ => e.to_string(),
            }
        })
    };
    loaded.map_err(|e| format!("{}: {e}", path.display()))?;
    sink.finish().map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(out) = &opts.expired_out {
        if let Ok(mut o) = out.lock() {
            *o = std::mem::take(&mut sink.expired_keys);
        }
    }
    Ok((sink.stats, std::mem::take(&mut sink.aux)))
}

/// Whether the file's trailing crc32 matches the bytes before it (format: the last four bytes
/// of a snapshot written with checksums); `None` when the file is too short or has no
/// checksums to compare.
fn whole_file_crc_ok(bytes: &[u8]) -> Option<bool> {
    let flags = *bytes.get(10)?;
    if flags & file::FLAG_CHECKSUMS == 0 || bytes.len() < 20 {
        return None;
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    Some(crc32fast::hash(body).to_le_bytes() == crc)
}

/// Where a load leaves the keys it dropped as expired: (db, key).
pub type ExpiredKeys = Arc<std::sync::Mutex<Vec<(usize, Key)>>>;

/// How [`load_file`] treats what it reads.
#[derive(Default, Clone)]
pub struct LoadOptions {
    pub skip_expired: bool,
    pub merge: bool,
    pub progress: Option<Arc<AtomicU64>>,
    pub key_delay_us: i64,
    /// Record the keys dropped as expired (with `skip_expired`) into `expired_out`.
    pub list_expired: bool,
    pub expired_out: Option<ExpiredKeys>,
    /// Where the header's `used_memory` goes as soon as it is read (INFO's
    /// `loading_rdb_used_mem`, which Redis sets from the `used-mem` aux field early in the
    /// load).
    pub used_memory_out: Option<Arc<AtomicU64>>,
}

/// Restores the function libraries saved in a snapshot's aux fields. `replace` lets them
/// replace libraries of the same name (DEBUG RELOAD MERGE).
pub fn restore_functions(
    state: &mut ServerState,
    aux: &[(String, Vec<u8>)],
    replace: bool,
) -> Result<(), String> {
    let Some((_, payload)) = aux.iter().find(|(k, _)| k == AUX_FUNCTIONS) else {
        return Ok(());
    };
    let codes = crate::scripting::functions::parse_dump(payload)
        .ok_or_else(|| "bad function libraries payload".to_string())?;
    let sc = &mut state.scripting;
    let mut loaded = crate::scripting::functions::Libraries::default();
    for code in &codes {
        let lib = crate::scripting::functions::create(&sc.func, &sc.busy, &loaded, code, false)?;
        loaded.link(lib);
    }
    crate::scripting::functions::join(&mut sc.libs, loaded, replace)
}

/// What a start-up load's thread hands back: the loaded keyspace, counts and aux fields.
type LoadResult = Result<(Keyspace, LoadStats, AuxFields), String>;

/// A start-up load under way on its thread.
pub struct StartupLoad {
    started: Instant,
    start_secs: u64,
    total_bytes: u64,
    progress: Arc<AtomicU64>,
    rx: tokio::sync::oneshot::Receiver<LoadResult>,
    /// Keys dropped as expired while loading, for the DELs a master propagates.
    expired: ExpiredKeys,
    used_memory: Arc<AtomicU64>,
}

/// The load [`preload`] started, until [`start_loading`] takes it over.
static PRELOAD: std::sync::Mutex<Option<StartupLoad>> = std::sync::Mutex::new(None);

/// Starts loading the snapshot as soon as the configuration is known, before the server's
/// state, runtime and listeners exist: the file is read while the rest of start-up runs
/// (most of a small snapshot's restart time is otherwise start-up followed by loading).
/// [`start_loading`] then adopts the load; nothing is served from it before it completes.
/// Does nothing when the append-only log is on (it loads its own base) or there is no file.
pub fn preload(config: &crate::config::Config) {
    if config.appendonly {
        return;
    }
    let name = PathBuf::from(&config.dbfilename);
    let path = std::env::current_dir().map_or(name.clone(), |d| d.join(name));
    let dbs = usize::try_from(config.databases).unwrap_or(0);
    // A replica leaves expiry to its master; a master propagates DELs for keys that expired.
    let list_expired = config.get_by_name("replicaof").is_none_or(str::is_empty);
    let delay = config.key_load_delay;
    let load = spawn_loader(path, dbs, config_limits(config), delay, list_expired);
    if let Ok(mut slot) = PRELOAD.lock() {
        *slot = load;
    }
}

/// Starts a thread loading the file at `path` into a keyspace of `dbs` databases; `None` when
/// there is no file. A thread that cannot be started stops the server, as a failed load does.
fn spawn_loader(
    path: PathBuf,
    dbs: usize,
    limits: EncodingLimits,
    key_delay_us: i64,
    list_expired: bool,
) -> Option<StartupLoad> {
    let md = std::fs::metadata(&path).ok()?;
    let progress = Arc::new(AtomicU64::new(0));
    let expired: ExpiredKeys = Arc::new(std::sync::Mutex::new(Vec::new()));
    let used_memory = Arc::new(AtomicU64::new(0));
    let opts = LoadOptions {
        skip_expired: true,
        merge: false,
        progress: Some(progress.clone()),
        key_delay_us,
        list_expired,
        expired_out: Some(expired.clone()),
        used_memory_out: Some(used_memory.clone()),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("ferrodis-load".into()).spawn(move || {
        let mut ks = Keyspace::new(dbs);
        let r = load_file(&path, &mut ks, limits, opts).map(|(stats, aux)| (ks, stats, aux));
        let _ = tx.send(r);
    });
    if let Err(e) = spawned {
        tracing::warn!("Fatal error loading the DB: {e}. Exiting.");
        std::process::exit(1);
    }
    Some(StartupLoad {
        started: Instant::now(),
        start_secs: now_secs(),
        total_bytes: md.len(),
        progress,
        rx,
        expired,
        used_memory,
    })
}

/// Loads the snapshot at start-up, if there is one, on a thread of its own (or adopts the load
/// [`preload`] started): meanwhile the event loop serves connections and answers `-LOADING`
/// (INFO shows the progress), as Redis does between its loading chunks. The loaded keyspace
/// replaces the empty one in one step. A file that cannot be loaded stops the server: it must
/// never run on partial data.
pub fn start_loading(server: &Rc<RefCell<Server>>) {
    let pre = PRELOAD.lock().ok().and_then(|mut p| p.take());
    let load = pre.or_else(|| {
        let srv = server.borrow();
        let st = &srv.state;
        let limits = encoding_limits(st);
        let list_expired = st.config.get_by_name("replicaof").is_none_or(str::is_empty);
        let delay = st.config.key_load_delay;
        spawn_loader(snapshot_path(st), srv.ks.dbs.len(), limits, delay, list_expired)
    });
    let Some(load) = load else { return };
    server.borrow_mut().state.persist.loading = Some(Loading {
        started: load.started,
        start_secs: load.start_secs,
        total_bytes: load.total_bytes,
        loaded_bytes: load.progress,
        used_memory: load.used_memory,
    });
    let server = server.clone();
    let (rx, expired) = (load.rx, load.expired);
    tokio::task::spawn_local(async move {
        let result = wait_logging_progress(&server, rx).await;
        let mut srv = server.borrow_mut();
        let Server { ks, state, .. } = &mut *srv;
        let started = state.persist.loading.take().map(|l| l.started);
        let (loaded, stats, aux) = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("Fatal error loading the DB: {e}. Exiting.");
                std::process::exit(1);
            }
        };
        ks.dbs = loaded.dbs;
        if let Err(e) = restore_functions(state, &aux, false) {
            tracing::warn!("Fatal error loading the DB: function libraries: {e}. Exiting.");
            std::process::exit(1);
        }
        crate::replication::restore_from_snapshot(state, &aux);
        let dead = expired.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
        feed_expired_dels(state, &dead);
        state.persist.last_load_keys_loaded = stats.keys_loaded;
        state.persist.last_load_keys_expired = stats.keys_expired;
        let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        tracing::warn!(
            "Done loading RDB, keys loaded: {}, keys expired: {}.",
            stats.keys_loaded,
            stats.keys_expired
        );
        tracing::warn!("DB loaded from disk: {secs:.3} seconds");
    });
}

/// A master that restarted from a snapshot sends its replicas a DEL for every key the load
/// dropped as expired (Redis's `RDBFLAGS_FEED_REPL`): their copies, loaded before they
/// continue the stream, would otherwise outlive ours. Only the replication backlog gets them
/// (no AOF is involved in a snapshot load).
fn feed_expired_dels(state: &mut ServerState, dead: &[(usize, Key)]) {
    if dead.is_empty() || state.is_replica() || state.repl.feed.is_none() {
        return;
    }
    let mut last_db = None;
    let mut cmd = Vec::new();
    for (db, key) in dead {
        cmd.clear();
        if last_db != Some(*db) {
            let n = db.to_string();
            crate::journal::encode_command(&mut cmd, &[&b"SELECT"[..], n.as_bytes()]);
            last_db = Some(*db);
        }
        let verb: &[u8] = if state.config.lazyfree_lazy_expire { b"UNLINK" } else { b"DEL" };
        crate::journal::encode_command(&mut cmd, &[verb, key.as_ref()]);
        state.journal.feed_raw(&cmd);
    }
    state.journal.reset_selected_db();
}

/// Waits for the loading thread, logging its progress every second as Redis does.
async fn wait_logging_progress<T>(
    server: &Rc<RefCell<Server>>,
    mut rx: tokio::sync::oneshot::Receiver<Result<T, String>>,
) -> Result<T, String> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            r = &mut rx => return r.unwrap_or_else(|_| Err("the loading thread died".into())),
            _ = tick.tick() => {
                let srv = server.borrow();
                if let Some(l) = &srv.state.persist.loading {
                    let done = l.loaded_bytes.load(Ordering::Relaxed);
                    let perc = done as f64 * 100.0 / l.total_bytes.max(1) as f64;
                    tracing::warn!(
                        "Loading the snapshot: {perc:.2}% ({done} of {} bytes)",
                        l.total_bytes
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every `write()` (its offset and length) and every range sync it gets.
    #[derive(Default)]
    struct Calls {
        writes: Vec<(u64, usize)>,
        syncs: Vec<(u64, u64, bool)>,
        data: Vec<u8>,
    }

    impl Write for Calls {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            // Takes less than offered now and then, as a file may.
            let n = if self.writes.len() % 3 == 2 { buf.len().div_ceil(2) } else { buf.len() };
            self.writes.push((self.data.len() as u64, n));
            self.data.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SyncRange for Calls {
        fn sync_range(&mut self, offset: u64, len: u64, wait: bool) -> std::io::Result<()> {
            self.syncs.push((offset, len, wait));
            Ok(())
        }
    }

    /// Writes `data` through a save's buffered file, in pieces both smaller and larger than
    /// the buffer.
    fn save_through(data: &[u8], autosync: bool) -> Calls {
        let mut w =
            BufWriter::with_capacity(WRITE_CHUNK, SaveFile::new(Calls::default(), autosync));
        let cuts = [0, 10, 300_010, 300_100, 5_000_000, data.len()];
        for c in cuts.windows(2) {
            w.write_all(&data[c[0]..c[1]]).unwrap();
        }
        w.into_inner().ok().unwrap().into_inner()
    }

    #[test]
    fn a_save_passes_the_kernel_at_most_a_chunk_per_write() {
        let data: Vec<u8> = (0..9_000_003u32).map(|i| (i * 7 % 251) as u8).collect();
        for autosync in [false, true] {
            let calls = save_through(&data, autosync);
            assert_eq!(calls.data, data);
            assert!(calls.writes.iter().all(|&(_, n)| n > 0 && n <= WRITE_CHUNK));
            assert_eq!(calls.syncs.is_empty(), !autosync);
        }
    }

    #[test]
    fn incremental_fsync_writes_out_each_4mb_and_waits_for_the_one_before() {
        let data = vec![7u8; 9_000_003];
        let calls = save_through(&data, true);
        const A: u64 = AUTOSYNC_BYTES;
        // Redis's rioFileWrite: start the range just filled, wait for the one before it.
        assert_eq!(calls.syncs, [(0, A, false), (A, A, false), (0, A, true)]);
        // No write crosses a 4 MB boundary, so each sync covers exactly what was written.
        assert!(calls.writes.iter().all(|&(at, n)| at / A == (at + n as u64 - 1) / A));
    }

    #[test]
    fn a_paced_save_leaves_busy_clients_about_two_thirds_of_the_loop() {
        let ms = Duration::from_millis;
        // Idle (or unpaced): no pause, the walk runs at full speed.
        assert_eq!(pause_after(None, false, ms(5)), None);
        // Busy: at least the floor, and twice a long step.
        assert_eq!(pause_after(None, true, Duration::from_micros(400)), Some(BUSY_PAUSE));
        assert_eq!(pause_after(None, true, ms(5)), Some(ms(10)));
        // rdb-key-save-delay's own pause wins, busy or not.
        let delay = step_pace(100).1;
        assert_eq!(delay, Some(Duration::from_micros(1000)));
        assert_eq!(pause_after(delay, true, ms(5)), delay);
        assert_eq!(pause_after(delay, false, ms(5)), delay);
    }
}
