//! The append-only log (AOF): a consumer of the journal that makes writes durable.
//!
//! ```text
//!  dispatch ─▶ journal.pending ─(feed: one frame per batch)─▶ write ─▶ dir/*.incr.aof
//!                            (event loop, or the writer thread)       │ fsync by policy
//!  connection: reply held until durable >= batch offset ◀── durable (watch) ┘  (always)
//! ```
//!
//! - [`format`]: record framing (`#F <len> <crc32>`), the strict RESP parser and the scanner
//!   that tells a torn tail from a corrupted record.
//! - [`manifest`]: the Redis-7-style manifest naming the base and incremental files.
//! - [`writer`]: the writer and fsync threads; group commit.
//! - [`load`]: replay at start-up.
//! - [`waitaof`]: the WAITAOF command.
//!
//! - [`rewrite`]: BGREWRITEAOF, automatic rewrites, a snapshot as the base, and switching
//!   `appendonly` at runtime.

pub mod format;
pub mod load;
pub mod manifest;
pub mod resp_base;
pub mod rewrite;
pub mod waitaof;
pub mod writer;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::commands::{flags, CommandSpec};
use crate::config::Config;
use crate::error::CmdError;
use crate::server::client::Client;
use crate::server::{Server, ServerState};
use manifest::{FileEntry, Manifest};
use writer::{Policy, Writer};

/// The open log.
pub struct AofLog {
    writer: Writer,
    /// The append-only directory.
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Size of the base file (`aof_base_size`).
    pub base_size: u64,
    /// Size of the incremental files before the current one.
    pub older_incr_size: u64,
    header: Vec<u8>,
    /// `aof-timestamp-enabled` (refreshed by [`run`]), and the last second annotated.
    timestamps: bool,
    last_ts: u64,
    /// Where the payload sits in the replication stream (stream notes, framing 2).
    pub stream: crate::replication::aof_resync::Cursor,
}

impl AofLog {
    /// The journal offset written to the files, to await.
    pub fn written(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writer.shared.written_watch.subscribe()
    }
}

/// A client blocked in WAITAOF.
#[derive(Debug, Clone, Copy)]
pub struct Waiter {
    /// Journal offset that must be durable.
    pub target: u64,
    pub numlocal: i64,
    pub numreplicas: i64,
    pub deadline: Option<Instant>,
}

/// The AOF part of [`ServerState`].
#[derive(Default)]
pub struct AofState {
    /// Some while `appendonly` is on and the log is open.
    pub log: Option<AofLog>,
    /// Clients blocked in WAITAOF, by client id.
    pub waiters: HashMap<u64, Waiter>,
    /// Wakes [`run`] when a waiter was added.
    pub waiter_added: Rc<tokio::sync::Notify>,
    /// Rewrites: the one running, scheduled, statistics.
    pub rw: rewrite::RewriteState,
    /// DEBUG AOF-FLUSH-SLEEP: microseconds the event loop sleeps before it hands a batch to
    /// the log, so tests can catch a reply that would leave before its write.
    pub flush_sleep_us: u64,
    /// A log file is being replayed (start-up or DEBUG LOADAOF): clients that a slow script
    /// in it lets in are told `-LOADING`, as Redis does.
    pub replaying: bool,
}

/// A configuration parameter's current text.
fn param<'c>(config: &'c Config, name: &str) -> &'c str {
    crate::config::find_param(name).map_or("", |p| config.get(p))
}

/// Opens (and first loads) the log when `appendonly yes`. Called before the server accepts
/// connections; an error means the server must not start. The files a manifest names load on
/// a thread of their own while the server answers `-LOADING`, as Redis does between its
/// loading chunks; the log opens once they are loaded (a failure then stops the server).
pub fn startup(server: &Rc<RefCell<Server>>) -> Result<(), String> {
    let mut srv = server.borrow_mut();
    let config = &srv.state.config;
    if !config.appendonly {
        return Ok(());
    }
    let top = PathBuf::from(&config.dir);
    let dir = top.join(&config.appenddirname);
    let fname = config.appendfilename.clone();
    let truncate_ok = param(config, "aof-load-truncated") == "yes";
    let mname = manifest::manifest_name(&fname);
    let started = Instant::now();
    if !dir.join(&mname).exists() {
        let m = migrate_single_file(&mut srv, &top, &dir, &fname, truncate_ok)?;
        return finish_startup(&mut srv, dir, m, &fname, started);
    }
    let text = std::fs::read_to_string(dir.join(&mname))
        .map_err(|e| format!("Can't read the AOF manifest {mname}: {e}"))?;
    let mut m = Manifest::parse(&text)
        .map_err(|e| format!("*** FATAL AOF MANIFEST FILE ERROR *** ({mname}) {e}"))?;
    rewrite::remove_leftovers(&dir, &mut m);
    let size = |e: &FileEntry| std::fs::metadata(dir.join(&e.name)).map_or(0, |md| md.len());
    let total_bytes = m.base.iter().chain(&m.incrs).map(size).sum();
    srv.state.persist.loading = Some(crate::snapshot::engine::Loading {
        started,
        start_secs: crate::util::time::now_secs(),
        total_bytes,
        loaded_bytes: Default::default(),
        used_memory: Default::default(),
    });
    let config = srv.state.config.clone();
    drop(srv);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = (dir.clone(), fname.clone(), m.clone());
    std::thread::Builder::new()
        .name("ferrodis-aof-load".into())
        .spawn(move || {
            let (dir, fname, m) = job;
            let _ = tx.send(load_detached(config, &dir, &fname, &m, truncate_ok));
        })
        .map_err(|e| format!("Can't start the AOF loading thread: {e}"))?;
    let server = server.clone();
    tokio::task::spawn_local(async move {
        let loaded = rx
            .await
            .unwrap_or_else(|_| Err("the AOF loading thread died".into()));
        let mut srv = server.borrow_mut();
        srv.state.persist.loading = None;
        let r = loaded.and_then(|(ks, libs)| {
            srv.ks.dbs = ks.dbs;
            let aux = libs.map(|p| (crate::snapshot::engine::AUX_FUNCTIONS.to_string(), p));
            crate::snapshot::engine::restore_functions(&mut srv.state, aux.as_slice(), false)?;
            finish_startup(&mut srv, dir, m, &fname, started)
        });
        if let Err(e) = r {
            tracing::warn!("{e}");
            std::process::exit(1);
        }
    });
    Ok(())
}

/// Loads a log into a server of its own (on the loading thread); returns its keyspace and
/// its function libraries (a FUNCTION DUMP payload), if any.
fn load_detached(
    config: Config,
    dir: &Path,
    fname: &str,
    m: &Manifest,
    truncate_ok: bool,
) -> Result<(crate::keyspace::Keyspace, Option<Vec<u8>>), String> {
    let mut tmp = Server::new(config);
    load_files(&mut tmp, dir, fname, m, truncate_ok)?;
    let libs = &tmp.state.scripting.libs;
    let dump = (!libs.libs.is_empty()).then(|| crate::scripting::functions::dump(libs));
    Ok((std::mem::replace(&mut tmp.ks, crate::keyspace::Keyspace::new(0)), dump))
}

/// The log is loaded: opens it for appending.
fn finish_startup(
    srv: &mut Server,
    dir: PathBuf,
    mut m: Manifest,
    fname: &str,
    started: Instant,
) -> Result<(), String> {
    if m.base.is_some() || !m.incrs.is_empty() {
        tracing::warn!(
            "DB loaded from append only file: {:.3} seconds",
            started.elapsed().as_secs_f64()
        );
    }
    srv.state.dirty = 0;
    srv.state.reset_stats();
    let policy = Policy::parse(&srv.state.config.appendfsync);
    open_log(&mut srv.state, dir, &mut m, fname, policy)?;
    srv.state.aof.rw.base_size = info(&srv.state).current_size;
    Ok(())
}

/// Loads the base and incremental files a manifest names, in order.
pub(crate) fn load_files(
    server: &mut Server,
    dir: &Path,
    fname: &str,
    m: &Manifest,
    truncate_ok: bool,
) -> Result<(), String> {
    let files: Vec<&FileEntry> = m.base.iter().chain(&m.incrs).collect();
    for (i, f) in files.iter().enumerate() {
        let path = dir.join(&f.name);
        if f.kind == 'b' && f.name == fname && !path.exists() {
            // A migration interrupted after the manifest was written: move the old file in.
            finish_migration(&dir.parent().unwrap_or(dir).join(fname), &path, dir)?;
        }
        if !path.exists() {
            return Err(format!(
                "The append log file {} doesn't exist: No such file or directory",
                f.name
            ));
        }
        let last = i + 1 == files.len();
        if f.kind == 'b' && rewrite::is_snapshot(&path) {
            rewrite::load_base(server, &path)?;
            continue;
        }
        let loaded = load::replay_file(server, &path, last, truncate_ok)?;
        tracing::info!(
            "Loaded {} commands from the AOF file {}",
            loaded.commands,
            f.name
        );
    }
    Ok(())
}

/// No manifest: start from a single-file AOF (Redis before 7.0, or a directory whose
/// migration was interrupted), or from nothing. A single file becomes the base of a new
/// directory, as Redis 7 does on upgrade.
fn migrate_single_file(
    server: &mut Server,
    top: &Path,
    dir: &Path,
    fname: &str,
    truncate_ok: bool,
) -> Result<Manifest, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("Can't create the AOF directory {}: {e}", dir.display()))?;
    let legacy = top.join(fname);
    let moved = dir.join(fname);
    let source = if moved.is_file() {
        Some(moved.clone())
    } else {
        Some(legacy.clone()).filter(|p| p.is_file())
    };
    let Some(source) = source else {
        let base = rewrite::create_first_base(server, dir, fname)?;
        return Ok(Manifest {
            base: Some(base),
            ..Manifest::default()
        });
    };
    load::replay_file(server, &source, true, truncate_ok)?;
    let base = FileEntry {
        name: fname.to_string(),
        seq: 1,
        kind: 'b',
    };
    let m = Manifest {
        base: Some(base),
        ..Manifest::default()
    };
    if source != moved {
        // Like Redis: the manifest first, then the rename, so that a crash in between leaves
        // a state `load_files` completes.
        manifest::write_atomic(dir, &manifest::manifest_name(fname), &m.render())
            .map_err(|e| format!("Can't write the AOF manifest: {e}"))?;
        finish_migration(&source, &moved, dir)?;
    }
    Ok(m)
}

/// Moves an old-style AOF into the append-only directory.
fn finish_migration(from: &Path, to: &Path, dir: &Path) -> Result<(), String> {
    if !from.is_file() {
        return Ok(());
    }
    std::fs::rename(from, to)
        .map_err(|e| format!("Can't move {} into the AOF directory: {e}", from.display()))?;
    let _ = manifest::sync_dir(dir);
    tracing::warn!("Successfully migrated an old-style AOF into the AOF directory");
    Ok(())
}

/// Opens the last incremental file for appending (creating one, and recording it in the
/// manifest, when there is none), attaches to the journal and starts the writer.
fn open_log(
    state: &mut ServerState,
    dir: PathBuf,
    m: &mut Manifest,
    fname: &str,
    policy: Policy,
) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("Can't {what} in {}: {e}", dir.display());
    if m.incrs.is_empty() {
        let seq = m.next_incr_seq();
        let name = manifest::incr_name(fname, seq);
        std::fs::File::create(dir.join(&name)).map_err(|e| io("create the AOF file", e))?;
        m.incrs.push(FileEntry {
            name,
            seq,
            kind: 'i',
        });
        manifest::write_atomic(&dir, &manifest::manifest_name(fname), &m.render())
            .map_err(|e| io("write the AOF manifest", e))?;
    }
    let size = |e: &FileEntry| std::fs::metadata(dir.join(&e.name)).map_or(0, |md| md.len());
    let base_size = m.base.as_ref().map_or(0, size);
    let (current, older) = m.incrs.split_last().ok_or("no incremental file")?;
    let older_incr_size = older.iter().map(size).sum();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(&current.name))
        .map_err(|e| io("open the AOF file", e))?;
    let len = file
        .metadata()
        .map_err(|e| io("stat the AOF file", e))?
        .len();
    state.journal.attach();
    state.journal.reset_selected_db();
    let writer = Writer::start(file, len, state.journal.offset(), policy, None)
        .map_err(|e| format!("Can't start the AOF writer thread: {e}"))?;
    state.aof.log = Some(AofLog {
        writer,
        dir,
        manifest: m.clone(),
        base_size,
        older_incr_size,
        header: Vec::with_capacity(32),
        timestamps: param(&state.config, "aof-timestamp-enabled") == "yes",
        last_ts: 0,
        stream: Default::default(),
    });
    Ok(())
}

/// Hands the journal bytes appended since the last call to the writer, as one frame.
pub fn feed(state: &mut ServerState) {
    let Some(log) = state.aof.log.as_mut() else {
        return;
    };
    if !state.journal.has_pending() {
        return;
    }
    if state.aof.flush_sleep_us > 0 {
        std::thread::sleep(Duration::from_micros(state.aof.flush_sleep_us));
    }
    let payload = state.journal.take_pending();
    log.header.clear();
    if log.timestamps {
        // `aof-timestamp-enabled`: Redis's `#TS:<unix secs>` annotation when the second changed.
        let secs = crate::util::time::now_secs();
        if secs != log.last_ts {
            log.last_ts = secs;
            log.header
                .extend_from_slice(format!("#TS:{secs}\r\n").as_bytes());
        }
    }
    let (marks, lost) = state.journal.take_raw_marks();
    let file = match state.aof.rw.turning_on {
        true => "",
        false => log.manifest.incrs.last().map_or("", |e| e.name.as_str()),
    };
    let batch = crate::replication::aof_resync::Batch {
        payload: &payload,
        marks: &marks,
        lost,
        end: state.journal.offset(),
        replid: &state.repl.replid,
        master: state.repl.master.is_none(),
        file,
    };
    if log.stream.layout(&mut log.header, &batch) {
        log.writer.push(&log.header, &[], batch.end);
        return;
    }
    format::frame_header(&mut log.header, &payload);
    log.writer.push(&log.header, &payload, batch.end);
}

/// What a connection's replies wait for before they are written (see [`commit_point`]).
pub struct Commit {
    rx: tokio::sync::watch::Receiver<u64>,
    target: u64,
    shared: std::sync::Arc<writer::Shared>,
    always: bool,
}

impl Commit {
    /// Waits until the replies may go out. False if the log stopped meanwhile.
    pub async fn wait(mut self) -> bool {
        let Commit {
            shared,
            target,
            always,
            ..
        } = self;
        let failing = move || !always && shared.write_errno.load(Relaxed) != 0;
        self.rx
            .wait_for(|d| *d >= target || failing())
            .await
            .is_ok()
    }
}

/// Called before a connection writes replies: feeds the journal to the writer and returns
/// what the replies must wait for: with `appendfsync always`, the durable (fsynced) offset
/// reaching the journal's current offset, so no reply reveals a write that a power loss could
/// undo; otherwise the written offset, so that a crash of the process loses no acknowledged
/// write (Redis writes before replying too). While writes fail, `everysec` and `no` replies go
/// out unheld, as in Redis (the bytes stay queued and are retried); `always` ones stay held.
pub fn commit_point(state: &mut ServerState) -> Option<Commit> {
    feed(state);
    let shared = &state.aof.log.as_ref()?.writer.shared;
    // Bytes only the replicas got (PUBLISH, pings) are never written to the log.
    let target = state.journal.logged_offset();
    // Read here, not only by `run`, so CONFIG SET appendfsync applies from the next reply on.
    let policy = effective_policy(state);
    if policy != shared.policy() {
        shared.set_policy(policy);
    }
    let always = policy == Policy::Always;
    if !always && shared.write_errno.load(Relaxed) != 0 {
        return None;
    }
    let rx = if always {
        shared.durable.subscribe()
    } else {
        shared.written_watch.subscribe()
    };
    if *rx.borrow() >= target {
        return None;
    }
    if always {
        shared.arrive();
    }
    Some(Commit {
        rx,
        target,
        shared: shared.clone(),
        always,
    })
}

/// `appendfsync`, except that `no-appendfsync-on-rewrite yes` suspends fsyncs (as `no`) while
/// a snapshot (a rewrite's or a BGSAVE's) is being written, as Redis does while it has a child.
fn effective_policy(state: &ServerState) -> Policy {
    let suspend = param(&state.config, "no-appendfsync-on-rewrite") == "yes"
        && state.persist.snapshot_in_progress();
    if suspend {
        Policy::No
    } else {
        Policy::parse(&state.config.appendfsync)
    }
}

/// The journal offset durable now, if the log is open.
pub fn durable_offset(state: &ServerState) -> Option<u64> {
    state
        .aof
        .log
        .as_ref()
        .map(|l| *l.writer.shared.durable.borrow())
}

/// Redis's `-MISCONF` refusal while the log cannot be written or fsynced: writes (and PING,
/// as Redis does on a master) are refused until a write succeeds again.
pub fn write_refusal(state: &ServerState, client: &Client, spec: &CommandSpec) -> Option<CmdError> {
    let shared = &state.aof.log.as_ref()?.writer.shared;
    let errno = match shared.write_errno.load(Relaxed) {
        0 => shared.fsync_errno.load(Relaxed),
        e => e,
    };
    if errno == 0 {
        return None;
    }
    let writes = spec.has(flags::WRITE)
        || spec.name == "ping"
        || (spec.name == "exec"
            && client
                .multi
                .as_ref()
                .is_some_and(|m| m.any_has(flags::WRITE)));
    if !writes {
        return None;
    }
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    Some(CmdError::Msg(
        format!("MISCONF Errors writing to the AOF file: {text}").into(),
    ))
}

/// INFO persistence values.
#[derive(Debug, Default)]
pub struct Info {
    pub enabled: bool,
    pub last_write_ok: bool,
    pub current_size: u64,
    pub base_size: u64,
    pub buffer_length: u64,
    pub pending_bio_fsync: bool,
    pub delayed_fsync: u64,
    pub rewrite_in_progress: bool,
    pub rewrite_scheduled: bool,
    pub last_rewrite_secs: i64,
    pub current_rewrite_secs: i64,
    pub last_rewrite_ok: bool,
    pub rewrites: u64,
    pub rewrite_failures: u64,
}

pub fn info(state: &ServerState) -> Info {
    let rw = &state.aof.rw;
    let rewrites = Info {
        last_write_ok: true,
        rewrite_in_progress: rw.running.is_some(),
        rewrite_scheduled: rw.scheduled,
        last_rewrite_secs: rw.last_secs.map_or(-1, |s| s as i64),
        current_rewrite_secs: rw.running.map_or(-1, |t| t.elapsed().as_secs() as i64),
        last_rewrite_ok: !rw.last_failed,
        rewrites: rw.rewrites,
        rewrite_failures: rw.consecutive_failures,
        ..Info::default()
    };
    let Some(log) = state.aof.log.as_ref() else {
        return rewrites;
    };
    let sh = &log.writer.shared;
    Info {
        enabled: !state.aof.rw.turning_on,
        last_write_ok: sh.write_errno.load(Relaxed) == 0 && sh.fsync_errno.load(Relaxed) == 0,
        current_size: log.base_size + log.older_incr_size + sh.file_size.load(Relaxed),
        base_size: log.base_size,
        buffer_length: sh.queued.load(Relaxed),
        pending_bio_fsync: sh.fsync_pending(),
        delayed_fsync: sh.delayed_fsync.load(Relaxed),
        ..rewrites
    }
}

/// Clean shutdown: everything logged is written and fsynced before the process exits.
pub fn shutdown(state: &mut ServerState) {
    feed(state);
    if let Some(log) = state.aof.log.take() {
        log.writer.stop(Duration::from_secs(10));
        state.journal.detach();
    }
    state.aof.rw.turning_on = false;
}

/// DEBUG AOF-FAIL-WRITES 0|1: makes the log's writes fail with ENOSPC (a full disk) while on.
/// Returns false when the log is not open.
pub fn debug_fail_writes(state: &ServerState, on: bool) -> bool {
    match state.aof.log.as_ref() {
        Some(log) => {
            log.writer.shared.fail_writes.store(on, Relaxed);
            true
        }
        None => false,
    }
}

/// The log's event-loop task: feeds journal bytes no reply flushed (active expiry, clients
/// with CLIENT REPLY OFF), follows CONFIG SET appendfsync, and wakes WAITAOF clients once
/// their offset is durable or their timeout passed.
pub async fn run(server: Rc<RefCell<Server>>) {
    let added = server.borrow().state.aof.waiter_added.clone();
    // The writer followed; a rewrite or CONFIG SET appendonly replaces it.
    let mut followed: Option<std::sync::Arc<writer::Shared>> = None;
    let mut durable: Option<tokio::sync::watch::Receiver<u64>> = None;
    loop {
        let (next, current) = {
            let srv = server.borrow();
            let aof = &srv.state.aof;
            let next = aof.waiters.values().filter_map(|w| w.deadline).min();
            (next, aof.log.as_ref().map(|l| l.writer.shared.clone()))
        };
        let same = match (&followed, &current) {
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            durable = current.as_ref().map(|s| s.durable.subscribe());
            followed = current;
        }
        let tick = Instant::now() + Duration::from_millis(50);
        let until = next.map_or(tick, |d| d.min(tick));
        let changed = async {
            match durable.as_mut() {
                Some(d) => d.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        let mut closed = false;
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = added.notified() => {}
            ok = changed => closed = !ok,
        }
        if closed {
            durable = None;
        }
        let mut srv = server.borrow_mut();
        let st = &mut srv.state;
        feed(st);
        rewrite::poll(st);
        let policy = effective_policy(st);
        if let Some(log) = st.aof.log.as_mut() {
            log.writer.shared.set_policy(policy);
            log.timestamps = param(&st.config, "aof-timestamp-enabled") == "yes";
        }
        wake_waiters(st);
    }
}

/// Wakes WAITAOF clients that can be answered (each re-runs its command).
fn wake_waiters(st: &mut ServerState) {
    if st.aof.waiters.is_empty() {
        return;
    }
    let durable = durable_offset(st);
    let now = Instant::now();
    let blocked = |id: &u64| st.clients.contains_key(id) && st.blocking.is_blocked(*id);
    let gone: Vec<u64> = st
        .aof
        .waiters
        .keys()
        .copied()
        .filter(|id| !blocked(id))
        .collect();
    for id in gone {
        st.aof.waiters.remove(&id);
    }
    for (id, w) in &st.aof.waiters {
        if waitaof::answerable(w, durable, now) {
            if let Some(c) = st.clients.get(id) {
                c.wake.notify_one();
            }
        }
    }
}
