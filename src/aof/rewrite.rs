//! Rewriting the log (BGREWRITEAOF, automatic rewrites) and switching `appendonly` at runtime.
//!
//! ```text
//!  start (one event-loop step):  feed old writer ─▶ new incr file ─▶ manifest [old.., new incr]
//!                                 ─▶ writer switched ─▶ snapshot of the keyspace (same instant)
//!  snapshot written (on_done):   manifest [new base, new incr] + old files as history
//!                                 ─▶ history files deleted
//! ```
//!
//! The snapshot point and the switch to the new incremental file are the same instant, so the
//! new base plus the new incremental file are exactly the dataset. Every manifest on disk is
//! complete at every instant: before the swap it names the old base, the old incremental files
//! and the new one (written before any write goes there, as Redis 7 does); after it, the new
//! base and the new incremental file. A crash in between leaves at worst unreferenced files,
//! removed at the next start ([`remove_leftovers`]).
//!
//! The base is a ferrodis snapshot (`aof-use-rdb-preamble yes`, the default), or with
//! `aof-use-rdb-preamble no` that snapshot converted to RESP commands on a thread
//! ([`super::resp_base`]) before the manifest swap.
//!
//! `CONFIG SET appendonly yes` opens a temporary incremental file (`temp-<F>.incr`, not in any
//! manifest) and starts a rewrite; the log counts as on (`aof_enabled:1`) once the rewrite has
//! renamed that file into the new manifest, as in Redis.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::manifest::{self, FileEntry, Manifest};
use super::writer::{Policy, Writer};
use super::{feed, param, AofLog};
use crate::commands::flags::*;
use crate::commands::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::Keyspace;
use crate::server::{Server, ServerState};
use crate::snapshot::engine::{self, SnapshotJob};
use crate::util::time::now_secs;

pub(crate) const COMMANDS: &[CommandSpec] = &[CommandSpec::new(
    "bgrewriteaof",
    1,
    ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
    0,
    0,
    0,
    bgrewriteaof,
)];

/// After this many consecutive failures, automatic and scheduled rewrites back off (Redis:
/// one minute, doubling up to an hour).
const LIMIT_THRESHOLD: u64 = 3;
const LIMIT_MAX_MINUTES: u64 = 60;

/// Rewrite statistics and state (`ServerState::aof.rw`).
#[derive(Default)]
pub struct RewriteState {
    /// When the running rewrite started.
    pub running: Option<Instant>,
    /// A rewrite to start as soon as no snapshot runs (`aof_rewrite_scheduled`).
    pub scheduled: bool,
    /// Duration of the last rewrite (`aof_last_rewrite_time_sec`), none before the first.
    pub last_secs: Option<u64>,
    pub last_failed: bool,
    /// Successful rewrites (`aof_rewrites`).
    pub rewrites: u64,
    pub consecutive_failures: u64,
    /// `CONFIG SET appendonly yes` waits for its rewrite: the log is open on the temporary
    /// incremental file but not yet on.
    pub turning_on: bool,
    /// Log size after the last rewrite or at start-up (growth for automatic rewrites).
    pub base_size: u64,
    /// A RESP base being converted from the rewrite's snapshot.
    converting: Option<Converting>,
    /// Back-off after repeated failures: current delay and when the next try may run.
    limit_minutes: u64,
    limit_until: u64,
}

/// A conversion thread's outcome, awaited by [`poll`].
struct Converting {
    rx: std::sync::mpsc::Receiver<Result<u64, String>>,
    base: FileEntry,
}

/// The error a snapshot reports when the server abandoned it (`engine::bgsave_abort`).
const ABANDONED: &str = "snapshot abandoned";

/// Replies of BGREWRITEAOF, Redis's texts.
const ALREADY: &str = "Background append only file rewriting already in progress";
const CANT: &str =
    "Can't execute an AOF background rewriting. Please check the server logs for more information.";

/// Rewrites the log from a point-in-time snapshot, in the background.
///
/// ```text
/// BGREWRITEAOF
/// ```
/// While another snapshot (a BGSAVE) runs, or inside MULTI, the rewrite is scheduled and starts
/// from the cron once possible. Works with `appendonly no` too: a base and a manifest are
/// written, as Redis does.
fn bgrewriteaof(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    if ctx.srv.aof.rw.running.is_some() {
        return Err(CmdError::err(ALREADY));
    }
    if ctx.srv.persist.snapshot_in_progress() || ctx.is_nested() {
        let rw = &mut ctx.srv.aof.rw;
        rw.scheduled = true;
        rw.consecutive_failures = 0;
        ctx.out
            .simple("Background append only file rewriting scheduled");
        return Ok(());
    }
    match start(ctx.ks, ctx.srv) {
        Ok(()) => {
            ctx.out
                .simple("Background append only file rewriting started");
            Ok(())
        }
        Err(_) => Err(CmdError::err(CANT)),
    }
}

/// The append-only directory and `appendfilename`.
fn location(st: &ServerState) -> (PathBuf, String) {
    let fname = st.config.appendfilename.clone();
    let dir = match &st.aof.log {
        Some(log) => log.dir.clone(),
        None => {
            let top = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            top.join(&st.config.appenddirname)
        }
    };
    (dir, fname)
}

/// The manifest now in force: the open log's, or the one on disk (none: empty).
fn current_manifest(st: &ServerState, dir: &Path, fname: &str) -> Manifest {
    if let Some(log) = st.aof.log.as_ref().filter(|_| !st.aof.rw.turning_on) {
        return log.manifest.clone();
    }
    std::fs::read_to_string(dir.join(manifest::manifest_name(fname)))
        .ok()
        .and_then(|t| Manifest::parse(&t).ok())
        .unwrap_or_default()
}

/// Starts a rewrite now (the caller checked that no snapshot runs). Errors are logged and
/// counted as a failed rewrite.
pub fn start(ks: &mut Keyspace, st: &mut ServerState) -> Result<(), String> {
    let r = try_start(ks, st);
    if let Err(e) = &r {
        tracing::warn!("Can't rewrite the append only file: {e}");
        st.aof.rw.last_failed = true;
        st.aof.rw.consecutive_failures += 1;
    }
    r
}

fn try_start(ks: &mut Keyspace, st: &mut ServerState) -> Result<(), String> {
    if st.persist.snapshot_in_progress() {
        return Err("another snapshot is being written".into());
    }
    let (dir, fname) = location(st);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("can't create the AOF directory {}: {e}", dir.display()))?;
    let m = current_manifest(st, &dir, &fname);
    if st.aof.log.is_some() && !st.aof.rw.turning_on {
        switch_incr(st)?;
    }
    let seq = m.next_base_seq();
    let resp = param(&st.config, "aof-use-rdb-preamble") != "yes";
    let base = FileEntry {
        name: if resp {
            format!("{fname}.{seq}.base.aof")
        } else {
            manifest::base_name(&fname, seq)
        },
        seq,
        kind: 'b',
    };
    // A RESP base is converted from a snapshot kept under a temporary name.
    let dest = dir.join(if resp {
        snapshot_for_resp(seq)
    } else {
        base.name.clone()
    });
    let on_done: engine::OnDone = Box::new(move |ks, st, result| done(ks, st, result, base));
    let job = SnapshotJob {
        dest,
        is_bgsave: false,
        on_done: Some(on_done),
        incremental_fsync: st.config.aof_rewrite_incremental_fsync,
        paced: true,
    };
    engine::start_snapshot(ks, st, job)?;
    st.aof.rw.running = Some(Instant::now());
    st.aof.rw.scheduled = false;
    tracing::warn!("Background append only file rewriting started");
    Ok(())
}

/// Opens a new incremental file, records it in the manifest (after the files it follows, so
/// the manifest on disk stays complete), and makes the writer continue there once it has
/// written everything before. Runs in the same event-loop step as the snapshot's start.
fn switch_incr(st: &mut ServerState) -> Result<(), String> {
    feed(st);
    let offset = st.journal.offset();
    let fname = st.config.appendfilename.clone();
    let Some(log) = st.aof.log.as_mut() else {
        return Ok(());
    };
    let seq = log.manifest.next_incr_seq();
    let name = manifest::incr_name(&fname, seq);
    let file = create_append(&log.dir.join(&name))?;
    let mut m = log.manifest.clone();
    m.incrs.push(FileEntry {
        name: name.clone(),
        seq,
        kind: 'i',
    });
    if let Err(e) = manifest::write_atomic(&log.dir, &manifest::manifest_name(&fname), &m.render())
    {
        let _ = std::fs::remove_file(log.dir.join(&name));
        return Err(format!("can't write the AOF manifest: {e}"));
    }
    log.manifest = m;
    // A new file starts with a timestamp annotation (`aof-timestamp-enabled`).
    log.last_ts = 0;
    replace_writer(log, file, offset)?;
    // The new journal consumer position starts a file: it must select its database again.
    st.journal.reset_selected_db();
    tracing::info!("Creating AOF incr file {name} on background rewrite");
    Ok(())
}

/// Swaps the log's writer for one on `file` that follows the old one.
fn replace_writer(log: &mut AofLog, file: File, offset: u64) -> Result<(), String> {
    let sh = &log.writer.shared;
    log.older_incr_size += sh.file_size.load(Relaxed) + sh.queued.load(Relaxed);
    log.writer
        .switch_to(file, offset)
        .map_err(|e| format!("can't start the AOF writer thread: {e}"))
}

/// Creates an empty file for appending.
fn create_append(path: &Path) -> Result<File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .and_then(|f| {
            drop(f);
            std::fs::OpenOptions::new().append(true).open(path)
        })
        .map_err(|e| format!("can't create {}: {e}", path.display()))
}

/// Where the snapshot of a rewrite to a RESP base goes.
fn snapshot_for_resp(seq: u64) -> String {
    format!("temp-rewrite-{seq}.snapshot")
}

/// The snapshot is written (or failed). For a RESP base, the conversion starts on a thread;
/// otherwise the rewrite ends here.
fn done(_ks: &mut Keyspace, st: &mut ServerState, result: Result<u64, String>, base: FileEntry) {
    if st.aof.rw.running.is_none() || !base.name.ends_with(".aof") || result.is_err() {
        finish(st, result, base);
        return;
    }
    let (dir, _) = location(st);
    let snap = dir.join(snapshot_for_resp(base.seq));
    let dest = dir.join(&base.name);
    let ts = (param(&st.config, "aof-timestamp-enabled") == "yes").then(now_secs);
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("aof-resp-base".into())
        .spawn(move || {
            let r = super::resp_base::convert(&snap, &dest, ts);
            let _ = std::fs::remove_file(&snap);
            if tx.send(r.clone()).is_err() && r.is_ok() {
                // Abandoned meanwhile (`appendonly no`).
                let _ = std::fs::remove_file(&dest);
            }
        });
    match spawned {
        Ok(_) => st.aof.rw.converting = Some(Converting { rx, base }),
        Err(e) => finish(
            st,
            Err(format!("can't start the conversion thread: {e}")),
            base,
        ),
    }
}

/// Ends a rewrite whose RESP base conversion has finished (called from the log's task and
/// the cron).
pub fn poll(st: &mut ServerState) {
    let Some(c) = st.aof.rw.converting.as_ref() else {
        return;
    };
    let result = match c.rx.try_recv() {
        Ok(r) => r,
        Err(std::sync::mpsc::TryRecvError::Empty) => return,
        Err(_) => Err("the conversion thread died".into()),
    };
    if let Some(c) = st.aof.rw.converting.take() {
        finish(st, result, c.base);
    }
}

/// Swaps the manifest, or records the failure.
fn finish(st: &mut ServerState, result: Result<u64, String>, base: FileEntry) {
    let Some(started) = st.aof.rw.running.take() else {
        // Abandoned by `appendonly no`: not a failure (Redis kills its child with SIGUSR1).
        remove_base(st, &base);
        return;
    };
    st.aof.rw.last_secs = Some(started.elapsed().as_secs());
    let outcome = result.and_then(|size| commit(st, &base, size));
    match outcome {
        Ok(()) => {
            st.aof.rw.last_failed = false;
            st.aof.rw.consecutive_failures = 0;
            st.aof.rw.rewrites += 1;
            tracing::warn!("Background AOF rewrite finished successfully");
        }
        Err(e) if e == ABANDONED => {
            // FLUSHALL or DEBUG RELOAD abandoned the snapshot, where Redis lets its child
            // finish: not a failure, the rewrite starts over from the cron.
            remove_base(st, &base);
            tracing::warn!("Background AOF rewrite interrupted ({e}): scheduled again");
            st.aof.rw.scheduled = true;
        }
        Err(e) => {
            remove_base(st, &base);
            st.aof.rw.last_failed = true;
            st.aof.rw.consecutive_failures += 1;
            tracing::warn!("Background AOF rewrite terminated with error: {e}");
            if st.aof.rw.turning_on {
                st.aof.rw.scheduled = true;
            }
        }
    }
}

fn remove_base(st: &ServerState, base: &FileEntry) {
    let (dir, _) = location(st);
    let _ = std::fs::remove_file(dir.join(&base.name));
}

/// Makes the new base part of the log: the manifest names it and the incremental file that
/// started at the snapshot point; everything older becomes history and is deleted.
fn commit(st: &mut ServerState, base: &FileEntry, base_size: u64) -> Result<(), String> {
    let (dir, fname) = location(st);
    let old = current_manifest(st, &dir, &fname);
    let mut incr: Option<FileEntry> = None;
    if st.aof.log.is_some() {
        incr = Some(if st.aof.rw.turning_on {
            adopt_temp_incr(&dir, &fname, &old)?
        } else {
            st.aof
                .log
                .as_ref()
                .and_then(|l| l.manifest.incrs.last().cloned())
                .ok_or("no incr")?
        });
    }
    let keep =
        |e: &&FileEntry| incr.as_ref().is_none_or(|i| i.name != e.name) && e.name != base.name;
    let mut m = Manifest {
        base: Some(base.clone()),
        incrs: incr.iter().cloned().collect(),
        history: old.history.clone(),
    };
    m.history.extend(
        old.base
            .iter()
            .chain(&old.incrs)
            .filter(keep)
            .map(|e| FileEntry {
                kind: 'h',
                ..e.clone()
            }),
    );
    manifest::write_atomic(&dir, &manifest::manifest_name(&fname), &m.render())
        .map_err(|e| format!("can't write the AOF manifest: {e}"))?;
    for h in std::mem::take(&mut m.history) {
        let _ = std::fs::remove_file(dir.join(&h.name));
    }
    // Like Redis, the manifest drops them once they are gone (a failure here is harmless:
    // the next start deletes history files again).
    let _ = manifest::write_atomic(&dir, &manifest::manifest_name(&fname), &m.render());
    tracing::info!("Removed the AOF files made obsolete by the rewrite");
    if let Some(log) = st.aof.log.as_mut() {
        log.manifest = m;
        log.base_size = base_size;
        log.older_incr_size = 0;
    }
    st.aof.rw.turning_on = false;
    st.aof.rw.base_size = super::info(st).current_size;
    Ok(())
}

/// `appendonly yes` at runtime: the temporary incremental file becomes the next one of the
/// directory (the rename is made durable by the manifest's directory fsync that follows).
fn adopt_temp_incr(dir: &Path, fname: &str, old: &Manifest) -> Result<FileEntry, String> {
    let seq = old.next_incr_seq();
    let name = manifest::incr_name(fname, seq);
    std::fs::rename(dir.join(temp_incr_name(fname)), dir.join(&name))
        .map_err(|e| format!("can't rename the temporary AOF incr file: {e}"))?;
    Ok(FileEntry {
        name,
        seq,
        kind: 'i',
    })
}

/// Name of the incremental file written while `appendonly yes` waits for its first rewrite.
fn temp_incr_name(fname: &str) -> String {
    format!("temp-{fname}.incr")
}

/// The cron's part (Redis `serverCron`): starts a scheduled rewrite once no snapshot runs,
/// and an automatic one when the log has grown `auto-aof-rewrite-percentage` over its size
/// after the last rewrite and is over `auto-aof-rewrite-min-size`.
pub fn cron(srv: &mut Server) {
    let Server { ks, state: st, .. } = srv;
    poll(st);
    if st.persist.snapshot_in_progress() || st.persist.loading.is_some() {
        return;
    }
    if st.aof.rw.running.is_some() {
        return;
    }
    if st.aof.rw.scheduled {
        if !limited(st) {
            let _ = start(ks, st);
        }
        return;
    }
    if st.aof.log.is_none() || st.aof.rw.turning_on {
        return;
    }
    let perc: u64 = param(&st.config, "auto-aof-rewrite-percentage")
        .parse()
        .unwrap_or(0);
    let min = crate::config::parse_memory(param(&st.config, "auto-aof-rewrite-min-size"))
        .map_or(0, |v| v.max(0) as u64);
    let size = super::info(st).current_size;
    if perc == 0 || size <= min {
        return;
    }
    let base = st.aof.rw.base_size.max(1);
    let growth = (size.saturating_mul(100) / base).saturating_sub(100);
    if growth >= perc && !limited(st) {
        tracing::warn!("Starting automatic rewriting of AOF on {growth}% growth");
        let _ = start(ks, st);
    }
}

/// Redis's back-off after three consecutive failures: one minute, doubling up to an hour.
fn limited(st: &mut ServerState) -> bool {
    let rw = &mut st.aof.rw;
    if rw.consecutive_failures < LIMIT_THRESHOLD {
        rw.limit_minutes = 0;
        rw.limit_until = 0;
        return false;
    }
    let now = now_secs();
    if rw.limit_until != 0 {
        if now < rw.limit_until {
            return true;
        }
        rw.limit_until = 0;
        return false;
    }
    rw.limit_minutes = (rw.limit_minutes * 2).clamp(1, LIMIT_MAX_MINUTES);
    rw.limit_until = now + rw.limit_minutes * 60;
    tracing::warn!(
        "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {} \
         minutes",
        rw.limit_minutes
    );
    true
}

/// CONFIG SET appendonly, once the new value is in the configuration: `yes` opens the log on
/// a temporary incremental file and starts the rewrite that makes its base (scheduled if a
/// snapshot runs); `no` writes out and closes the log and abandons a running rewrite.
pub fn set_appendonly(ks: &mut Keyspace, st: &mut ServerState, on: bool) -> Result<(), String> {
    if !on {
        stop(ks, st);
        return Ok(());
    }
    if st.aof.log.is_some() {
        return Ok(());
    }
    if st.aof.rw.running.is_some() {
        // A rewrite with the log off (BGREWRITEAOF) cannot become the base: it has no
        // incremental file. Like Redis, start over.
        st.aof.rw.running = None;
        st.aof.rw.converting = None;
        engine::bgsave_abort(ks, st);
    }
    open_turning_on(st)?;
    if st.persist.snapshot_in_progress() {
        tracing::warn!(
            "AOF was enabled but there is already another background operation. An AOF \
             background was scheduled to start when possible."
        );
        st.aof.rw.scheduled = true;
        return Ok(());
    }
    if let Err(e) = start(ks, st) {
        super::shutdown(st);
        return Err(e);
    }
    Ok(())
}

/// Opens the log on `temp-<F>.incr`, fed from the journal from now on.
fn open_turning_on(st: &mut ServerState) -> Result<(), String> {
    let (dir, fname) = location(st);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("can't create the AOF directory {}: {e}", dir.display()))?;
    let file = create_append(&dir.join(temp_incr_name(&fname)))?;
    let policy = Policy::parse(&st.config.appendfsync);
    st.journal.attach();
    st.journal.reset_selected_db();
    let writer = match Writer::start(file, 0, st.journal.offset(), policy, None) {
        Ok(w) => w,
        Err(e) => {
            st.journal.detach();
            return Err(format!("can't start the AOF writer thread: {e}"));
        }
    };
    let manifest = current_manifest(st, &dir, &fname);
    st.aof.log = Some(AofLog {
        writer,
        dir,
        manifest,
        base_size: 0,
        older_incr_size: 0,
        header: Vec::with_capacity(32),
        timestamps: param(&st.config, "aof-timestamp-enabled") == "yes",
        last_ts: 0,
        stream: Default::default(),
    });
    st.aof.rw.turning_on = true;
    Ok(())
}

/// `appendonly no` at runtime: everything logged is written and fsynced, the log closed.
fn stop(ks: &mut Keyspace, st: &mut ServerState) {
    st.aof.rw.converting = None;
    if st.aof.rw.running.is_some() {
        // Redis's log line names its child process; there is none here, the same words say
        // that the rewrite's background snapshot is abandoned.
        tracing::info!("Killing running AOF rewrite (no child process: its snapshot is abandoned)");
        st.aof.rw.running = None;
        engine::bgsave_abort(ks, st);
    }
    let turning_on = st.aof.rw.turning_on;
    let (dir, fname) = location(st);
    super::shutdown(st);
    if turning_on {
        let _ = std::fs::remove_file(dir.join(temp_incr_name(&fname)));
    }
    st.aof.rw.scheduled = false;
}

// ---------------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------------

/// Whether `path` is a ferrodis snapshot (a base written by a rewrite).
pub fn is_snapshot(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == crate::snapshot::file::MAGIC)
}

/// Loads a snapshot base into the (empty) keyspace. Expired keys are kept, as Redis keeps
/// them when loading an RDB preamble: the incremental files carry their DELs.
pub fn load_base(server: &mut Server, path: &Path) -> Result<(), String> {
    let limits = engine::encoding_limits(&server.state);
    let opts = engine::LoadOptions::default();
    let (stats, aux) = engine::load_file(path, &mut server.ks, limits, opts)
        .map_err(|e| format!("Can't load the AOF base {e}"))?;
    engine::restore_functions(&mut server.state, &aux, false)
        .map_err(|e| format!("Can't load the function libraries of the AOF base: {e}"))?;
    tracing::info!(
        "Loaded {} keys from the AOF base {}",
        stats.keys_loaded,
        path.display()
    );
    Ok(())
}

/// A fresh directory at start-up: an empty base first (as Redis creates
/// `appendonly.aof.1.base.rdb`, or `.1.base.aof` with `aof-use-rdb-preamble no`, on server
/// start), so that file names follow Redis's.
pub fn create_first_base(server: &Server, dir: &Path, fname: &str) -> Result<FileEntry, String> {
    let resp = param(&server.state.config, "aof-use-rdb-preamble") != "yes";
    let base = FileEntry {
        name: if resp {
            format!("{fname}.1.base.aof")
        } else {
            manifest::base_name(fname, 1)
        },
        seq: 1,
        kind: 'b',
    };
    let path = dir.join(&base.name);
    let made = if resp {
        // The dataset is empty: so is its RESP form.
        File::create(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| e.to_string())
    } else {
        engine::save_to(&server.ks, &server.state, &path)
    };
    made.map_err(|e| format!("Can't create the AOF base file {}: {e}", base.name))?;
    tracing::info!("Creating AOF base file {} on server start", base.name);
    Ok(base)
}

/// At start-up, before loading: deletes the history files a manifest still lists (a crash
/// after a rewrite's manifest swap) and temporary files left by an interrupted rewrite or
/// `appendonly yes`. Nothing else uses the directory yet.
pub fn remove_leftovers(dir: &Path, m: &mut Manifest) {
    for h in std::mem::take(&mut m.history) {
        let _ = std::fs::remove_file(dir.join(&h.name));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("temp-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// DEBUG LOADAOF: writes out the log, empties the dataset and loads it back from the files
/// the manifest on disk names (Redis's test of the whole log path). A running snapshot is
/// abandoned first, as emptying the dataset under its write barrier would.
pub fn debug_loadaof(ks: &mut Keyspace, st: &mut ServerState) -> Result<(), String> {
    if st.aof.rw.converting.take().is_some() {
        st.aof.rw.running = None;
    }
    if st.persist.snapshot_in_progress() {
        st.aof.rw.running = None;
        engine::bgsave_abort(ks, st);
    }
    wait_written(st);
    let (dir, fname) = location(st);
    let m = if st.aof.rw.turning_on || st.aof.log.is_none() {
        current_manifest(st, &dir, &fname)
    } else {
        st.aof
            .log
            .as_ref()
            .map(|l| l.manifest.clone())
            .unwrap_or_default()
    };
    for db in &mut ks.dbs {
        db.clear();
    }
    st.scripting.libs = Default::default();
    // Replay on a server made of the live parts, with a journal of its own: what is replayed
    // is already in the log and must not be logged (or replicated) again.
    let config = st.config.clone();
    let mut tmp = Server::new(config);
    std::mem::swap(&mut tmp.ks, ks);
    std::mem::swap(&mut tmp.state, st);
    let journal = std::mem::take(&mut tmp.state.journal);
    let truncate_ok = param(&tmp.state.config, "aof-load-truncated") == "yes";
    let r = super::load_files(&mut tmp, &dir, &fname, &m, truncate_ok);
    tmp.state.journal = journal;
    std::mem::swap(&mut tmp.ks, ks);
    std::mem::swap(&mut tmp.state, st);
    st.dirty = 0;
    if r.is_ok() {
        tracing::warn!("Append Only File loaded by DEBUG LOADAOF");
    }
    r
}

/// Blocks until the writer has written everything the journal holds (Redis's
/// `flushAppendOnlyFile(1)`), giving up after 10 s of failing writes.
fn wait_written(st: &mut ServerState) {
    feed(st);
    // Bytes only the replicas got (PUBLISH) are never written to the log.
    let target = st.journal.logged_offset();
    let Some(log) = st.aof.log.as_ref() else {
        return;
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while log
        .writer
        .shared
        .written
        .load(std::sync::atomic::Ordering::Acquire)
        < target
        && Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_back_off_like_redis() {
        let mut st = ServerState::new(crate::config::Config::default());
        st.aof.rw.consecutive_failures = 2;
        assert!(!limited(&mut st));
        st.aof.rw.consecutive_failures = 3;
        assert!(limited(&mut st));
        assert_eq!(st.aof.rw.limit_minutes, 1);
        assert!(limited(&mut st), "still within the minute");
        st.aof.rw.limit_until = 1;
        assert!(!limited(&mut st), "the delay passed: one try");
        assert!(limited(&mut st));
        assert_eq!(st.aof.rw.limit_minutes, 2);
        st.aof.rw.consecutive_failures = 0;
        assert!(!limited(&mut st));
        assert_eq!(st.aof.rw.limit_minutes, 0);
    }

    #[test]
    fn leftovers_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "a.1.base.rdb",
            "a.1.incr.aof",
            "a.2.incr.aof",
            "temp-9-9.rdb",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let text = "file a.1.base.rdb seq 1 type h\nfile a.1.incr.aof seq 1 type h\n\
                    file a.2.incr.aof seq 2 type i\n";
        let mut m = Manifest::parse(text).unwrap();
        remove_leftovers(d, &mut m);
        assert!(m.history.is_empty());
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a.2.incr.aof"]);
    }
}
