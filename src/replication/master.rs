//! The master side: serving a replica's `SYNC`/`PSYNC` (full or partial resynchronization),
//! writing it the stream, reading its acknowledgements, and the periodic duties (PING in the
//! stream, dropping replicas that stopped acknowledging).
//!
//! **Which payload.** A full sync sends our snapshot format only to a peer that announced
//! `REPLCONF capa ferrodis` (a ferrodis replica). Every other peer (a redis-server replica,
//! `redis-cli --rdb`, an old ferrodis) gets a Redis RDB file of the same point in time
//! (`snapshot::rdb_file`), holding what its `rdb-filter-only` asks for. Peers share one
//! snapshot only when they want the same payload.

use crate::server::connection::write_killable;
use std::cell::{Cell, RefCell};
use std::io::Read;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::{ensure_feed, Announced, ReplicaInfo};
use crate::protocol::decode::ArgSource;
use crate::protocol::RequestParser;
use crate::server::client::{Client, ClientShared};
use crate::server::{Server, ServerState};
use crate::snapshot::engine::{self, Format};
use crate::snapshot::rdb_file::RdbParts;

/// Bytes of the snapshot file written per chunk.
const FILE_CHUNK: usize = 256 * 1024;

/// How the replica is to be synchronized, decided at the `PSYNC`.
enum Plan {
    /// `+CONTINUE`: these backlog bytes, then the live stream.
    Partial(Vec<u8>),
    /// `+FULLRESYNC`: the snapshot at `path` once `wait` says it is complete, then the stream
    /// queued since.
    /// `prefix`: stream bytes since `offset` already produced when the replica joins a
    /// background save another replica started.
    Full { offset: u64, path: std::path::PathBuf, wait: FileWait, prefix: Vec<u8> },
    /// `+CONTINUE` from the append-only log, then the backlog (`aof_resync`).
    Aof(super::aof_resync::Resume),
    /// `+FULLRESYNC` disk-less: the snapshot arrives in `rx` as it is written, framed as
    /// `$EOF:<mark>\r\n<payload><mark>`, then the stream queued since.
    Diskless { offset: u64, session: Rc<Diskless>, rx: Chunks, prefix: Vec<u8> },
}

/// When the file of a [`Plan::Full`] is complete.
enum FileWait {
    /// Written already (a synchronous save); removed once opened.
    Ready,
    /// A BGSAVE of `dbfilename` (our format), the count of completed saves before it: one
    /// more means it succeeded (an aborted one, e.g. by FLUSHALL, does not count).
    Bgsave(u64),
    /// An RDB file a background snapshot writes for the peers that share it.
    Shared(Rc<SyncFile>),
}

/// An RDB file written by a background snapshot for full syncs (our format goes through a
/// BGSAVE to `dbfilename` instead, as Redis's payload does; an RDB must not replace our
/// snapshot file). Peers that want the same parts share it while it is written; it is
/// deleted when the last of them no longer needs it.
struct SyncFile {
    offset: u64,
    parts: RdbParts,
    path: std::path::PathBuf,
    /// The snapshot's outcome, once known: whether the file is complete.
    outcome: Rc<Cell<Option<bool>>>,
}

impl Drop for SyncFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Chunks of a disk-less snapshot on their way to one replica.
type Chunks = tokio::sync::mpsc::Receiver<Rc<Vec<u8>>>;

/// Chunks in flight per replica of a disk-less sync: the snapshot advances at the pace of
/// the slowest replica, with at most this many chunks buffered for each.
const DISKLESS_QUEUE: usize = 8;

/// Bytes per chunk of a disk-less snapshot.
const DISKLESS_CHUNK: usize = 64 * 1024;

/// One disk-less full sync: a snapshot written once, straight to the sockets of the replicas
/// that joined it before its first byte (Redis's "rdb pipe").
pub struct Diskless {
    offset: u64,
    /// What it is written as: only peers wanting the same payload join it.
    format: Format,
    /// The 40 random characters that end the payload (`$EOF:<mark>`).
    mark: String,
    /// Where each member replica reads its chunks.
    members: RefCell<Vec<tokio::sync::mpsc::Sender<Rc<Vec<u8>>>>>,
    /// Set when the first chunk went out: later replicas wait for the next sync.
    started: Cell<bool>,
    /// The snapshot's outcome, once known: whether it is complete.
    outcome: Rc<Cell<Option<bool>>>,
}

thread_local! {
    /// The disk-less sync replicas can still join, if any.
    static DISKLESS: RefCell<Option<Rc<Diskless>>> = const { RefCell::new(None) };
    /// The RDB file being written for full syncs, which replicas can still join, if any.
    static SYNC_FILE: RefCell<Option<Rc<SyncFile>>> = const { RefCell::new(None) };
}

/// What a peer gets, from what it announced (see the module doc).
#[derive(Clone, Copy)]
struct Wants {
    format: Format,
    /// Reads a disk-less payload (`capa eof`).
    eof: bool,
    /// Gets its payload disk-less whenever it can read one: a filtered RDB (Redis sends those
    /// only to sockets, never into a file).
    force_diskless: bool,
    /// The payload only, then the connection ends (`rdb-only 1`).
    rdb_only: bool,
}

impl Wants {
    fn of(a: &Announced) -> Wants {
        let format = match (a.ferrodis, a.filter) {
            (true, None) => Format::Snapshot,
            (_, filter) => Format::Rdb(filter.unwrap_or(RdbParts::ALL)),
        };
        Wants { format, eof: a.eof, force_diskless: a.filter.is_some(), rdb_only: a.rdb_only }
    }

    /// Whether a full sync sends it a disk-less payload.
    fn diskless(&self, state: &ServerState) -> bool {
        self.eof && (diskless_configured(state) || self.force_diskless)
    }
}

/// `repl-diskless-sync yes`: full syncs are disk-less (for peers that read that form), and
/// wait `repl-diskless-sync-delay` for more replicas to share them.
fn diskless_configured(state: &ServerState) -> bool {
    state.config.get_by_name("repl-diskless-sync") == Some("yes")
}

/// Serves a client that ran SYNC (`ask` = `None`) or `PSYNC replid offset` until it
/// disconnects. `inbuf` holds what it sent after its PSYNC.
pub async fn serve_replica(
    server: Rc<RefCell<Server>>,
    stream: &mut TcpStream,
    inbuf: &mut BytesMut,
    client: &Client,
    ask: Option<(String, i64)>,
) {
    let shared = client.shared.clone();
    // Old-style SYNC gets the payload without the `+FULLRESYNC` line.
    let psync = ask.is_some();
    let announced = server.borrow_mut().state.repl.announced.remove(&client.id);
    let announced = announced.unwrap_or_default();
    let wants = Wants::of(&announced);
    if !sync_delay(&server, &shared, ask.as_ref(), wants).await {
        return;
    }
    let Some((info, plan, replid)) = attach(&server, client, ask, &announced, wants) else {
        return;
    };
    // A peer that reads a disk-less RDB finds its end by the mark being the last bytes it
    // read, so (as Redis does) the stream waits for its first `REPLCONF ACK`, which it sends
    // once the payload is loaded. A ferrodis replica needs no such pause.
    let hold_stream = matches!(plan, Plan::Diskless { .. }) && wants.format != Format::Snapshot;
    let ok = match plan {
        Plan::Partial(bytes) => {
            let mut head = format!("+CONTINUE {replid}\r\n").into_bytes();
            head.extend_from_slice(&bytes);
            write_killable(stream, &head, &shared).await
        }
        Plan::Full { offset, path, wait, .. } => {
            let head = format!("+FULLRESYNC {replid} {offset}\r\n");
            (!psync || write_killable(stream, head.as_bytes(), &shared).await)
                && send_snapshot(&server, (stream, inbuf), &shared, &info, &path, wait).await
        }
        Plan::Diskless { offset, session, rx, .. } => {
            let head = format!("+FULLRESYNC {replid} {offset}\r\n");
            (!psync || write_killable(stream, head.as_bytes(), &shared).await)
                && send_diskless((stream, inbuf), &shared, &info, &session, rx).await
        }
        Plan::Aof(r) => super::aof_resync::send(stream, &shared, &replid, r).await,
    };
    if ok && wants.rdb_only {
        let name = replica_name(&info);
        tracing::warn!(
            "RDB transfer completed, rdb only replica ({name}) should be disconnected asap"
        );
    } else if ok {
        info.online.set(true);
        info.state_name.set("online");
        info.ack_time.set(Instant::now());
        let (ip, port) = (&info.ip, info.listening_port.get());
        tracing::warn!("Synchronization with replica {ip}:{port} succeeded");
        stream_to(&server, stream, inbuf, &info, hold_stream).await;
    }
    detach(&server, &info);
}

/// Before a disk-less full sync, waits `repl-diskless-sync-delay` seconds, as Redis does to
/// let more replicas share one snapshot (the replica stays in its handshake meanwhile). Only
/// with `repl-diskless-sync yes` and for replicas that can take a disk-less payload (`capa
/// eof`): the others get the file form at once, and a filtered RDB that is disk-less only
/// because it is filtered starts at once, as in Redis. Returns false if the client was
/// killed.
async fn sync_delay(
    server: &Rc<RefCell<Server>>,
    shared: &ClientShared,
    ask: Option<&(String, i64)>,
    wants: Wants,
) -> bool {
    let delay = {
        let srv = server.borrow();
        let st = &srv.state;
        let delayed = wants.eof && diskless_configured(st);
        if !delayed || partial(st, ask).is_some() || super::aof_resync::covers(st, ask) {
            return true;
        }
        super::config_u64(st, "repl-diskless-sync-delay")
    };
    if delay == 0 {
        return true;
    }
    // `repl-diskless-sync-max-replicas`: stop waiting once that many replicas wait.
    let max = super::config_u64(&server.borrow().state, "repl-diskless-sync-max-replicas");
    let (round, over) = {
        let mut srv = server.borrow_mut();
        srv.state.repl.delaying += 1;
        (srv.state.repl.delay_round, srv.state.repl.delay_over.clone())
    };
    let end = Instant::now() + Duration::from_secs(delay);
    loop {
        // Created before the checks, so that a release between them and the wait below is
        // not missed.
        let released = over.notified();
        {
            let mut srv = server.borrow_mut();
            let repl = &mut srv.state.repl;
            if repl.delay_round != round || shared.killed.get() {
                break;
            }
            if Instant::now() >= end || (max > 0 && repl.delaying as u64 >= max) {
                // This replica's wait is over, and with it every other replica's.
                repl.delay_round += 1;
                over.notify_waiters();
                break;
            }
        }
        // The pause bounds how late a killed client is noticed.
        tokio::select! {
            _ = released => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    server.borrow_mut().state.repl.delaying -= 1;
    !shared.killed.get()
}

/// Registers the replica on the feed and decides between partial and full resync, all in one
/// borrow: the stream bytes queued for it start exactly at the offset it is told.
fn attach(
    server: &Rc<RefCell<Server>>,
    client: &Client,
    ask: Option<(String, i64)>,
    announced: &Announced,
    wants: Wants,
) -> Option<(Rc<ReplicaInfo>, Plan, String)> {
    let mut srv = server.borrow_mut();
    let Server { ks, state, .. } = &mut *srv;
    let feed = ensure_feed(state);
    let peer = client.shared.info.borrow().addr.ip().to_string();
    let info = Rc::new(ReplicaInfo {
        shared: client.shared.clone(),
        ip: announced.ip.clone().unwrap_or(peer),
        listening_port: Cell::new(announced.port),
        online: Cell::new(false),
        state_name: Cell::new("wait_bgsave"),
        ack_offset: Cell::new(0),
        ack_time: Cell::new(Instant::now()),
        acks: Cell::new(0),
        sync_write_since: Cell::new(None),
        rdb_only: wants.rdb_only,
        pre_psync: ask.is_none(),
    });
    client.shared.info.borrow_mut().flags = "S".into();
    let backlog = partial(state, ask.as_ref());
    let from_log = match backlog {
        None => super::aof_resync::resume(state, ask.as_ref()),
        Some(_) => None,
    };
    let plan = match (backlog, from_log) {
        (Some(bytes), _) => {
            state.repl.sync_partial_ok += 1;
            tracing::warn!(
                "Partial resynchronization request from {} accepted, sending {} bytes of backlog",
                info.ip,
                bytes.len()
            );
            Plan::Partial(bytes)
        }
        (None, Some(r)) => {
            state.repl.sync_partial_ok += 1;
            let ip = &info.ip;
            tracing::warn!("Partial resynchronization request from {ip} served from the AOF");
            Plan::Aof(r)
        }
        (None, None) => {
            if ask.as_ref().is_some_and(|(id, _)| id != "?") {
                state.repl.sync_partial_err += 1;
            }
            state.repl.sync_full += 1;
            let name = replica_name(&info);
            log_full_resync_reason(state, ask.as_ref(), &name);
            match wants.diskless(state) {
                true => diskless_snapshot(ks, state, wants.format)?,
                false => full_snapshot(ks, state, wants.format)?,
            }
        }
    };
    if let Plan::Full { prefix, .. } | Plan::Diskless { prefix, .. } = &plan {
        if !prefix.is_empty() && !wants.rdb_only {
            client.shared.push(prefix);
        }
    }
    feed.replicas.borrow_mut().push(info.clone());
    Some((info, plan, state.repl.replid.clone()))
}

/// A replica as Redis's log lines name it: `ip:port`, or the ip alone without a listening
/// port.
fn replica_name(info: &ReplicaInfo) -> String {
    match info.listening_port.get() {
        0 => info.ip.clone(),
        port => format!("{}:{port}", info.ip),
    }
}

/// Says in the log why a replica gets a full resync, in Redis's words.
fn log_full_resync_reason(state: &ServerState, ask: Option<&(String, i64)>, name: &str) {
    let r = &state.repl;
    match ask {
        Some((id, _)) if id == "?" => tracing::warn!("Full resync requested by replica {name}"),
        Some((id, _)) if *id != r.replid && *id != r.replid2 => tracing::warn!(
            "Partial resynchronization not accepted: Replication ID mismatch (Replica asked \
             for '{id}', my replication IDs are '{}' and '{}')",
            r.replid,
            r.replid2
        ),
        Some((id, offset)) if *id != r.replid && *offset > r.second_offset => tracing::warn!(
            "Partial resynchronization not accepted: Requested offset for second ID was \
             {offset}, but I can reply up to {}",
            r.second_offset
        ),
        Some((_, offset)) => tracing::warn!(
            "Unable to partial resync with replica {name} for lack of backlog (Replica request \
             was: {offset})."
        ),
        None => tracing::warn!("Full resync requested by replica {name}"),
    }
}

/// The backlog bytes a `PSYNC replid offset` asks for, if this server can continue there: the
/// id is ours (or our previous one, up to where it ended) and the offset is in the backlog.
fn partial(state: &ServerState, ask: Option<&(String, i64)>) -> Option<Vec<u8>> {
    let (id, offset) = ask?;
    let offset = u64::try_from(*offset).ok()?;
    let ours = *id == state.repl.replid;
    let previous = *id == state.repl.replid2
        && i64::try_from(offset).is_ok_and(|o| o <= state.repl.second_offset);
    if !ours && !previous {
        return None;
    }
    state.repl.feed.as_ref()?.backlog.borrow().since(offset)
}

/// Takes the snapshot a full resync sends: a background save started now when none runs,
/// otherwise a synchronous one to a file of its own. The stream from here on is queued for the
/// replica, starting with a SELECT.
fn full_snapshot(
    ks: &mut crate::keyspace::Keyspace,
    state: &mut ServerState,
    format: Format,
) -> Option<Plan> {
    match format {
        Format::Snapshot => snapshot_file(ks, state),
        Format::Rdb(parts) => rdb_file(ks, state, parts),
    }
}

/// [`full_snapshot`] in our format: a BGSAVE to `dbfilename`.
fn snapshot_file(ks: &mut crate::keyspace::Keyspace, state: &mut ServerState) -> Option<Plan> {
    if let Some(shared) = join_bgsave(state) {
        return Some(shared);
    }
    state.journal.reset_selected_db();
    let offset = state.journal.offset();
    if state.persist.bgsave.is_none() {
        let saves = state.persist.saves;
        let _ = engine::bgsave_start(ks, state);
        if let Some(save) = state.persist.bgsave.as_mut() {
            // The replica waits for this save: it runs at full speed.
            save.hurry();
            let path = engine::snapshot_path(state);
            state.repl.sync_bgsave = Some((offset, saves, path.clone()));
            let wait = FileWait::Bgsave(saves);
            return Some(Plan::Full { offset, path, wait, prefix: Vec::new() });
        }
        return None;
    }
    let path = sync_file_path(state, "snap");
    match engine::save_to(ks, state, &path) {
        Ok(()) => Some(Plan::Full { offset, path, wait: FileWait::Ready, prefix: Vec::new() }),
        Err(e) => {
            tracing::warn!("Can't save the snapshot for a replica: {e}");
            None
        }
    }
}

/// A file of its own in `dir` (beside `dbfilename`, which it never replaces) for a payload
/// that is not a BGSAVE's; `ext`: `rdb` or `snap`. Unique in the process: two replicas may
/// each get a synchronous save in one instant.
fn sync_file_path(state: &ServerState, ext: &str) -> std::path::PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("temp-sync-{}-{n}.{ext}", std::process::id());
    let snapshot = engine::snapshot_path(state);
    snapshot.parent().map_or_else(|| name.clone().into(), |d| d.join(&name))
}

/// [`full_snapshot`] as an RDB holding `parts`: joins the RDB file being written for other
/// peers that want the same, or starts a background snapshot to a file of its own, or (when
/// another snapshot runs) writes one synchronously.
fn rdb_file(
    ks: &mut crate::keyspace::Keyspace,
    state: &mut ServerState,
    parts: RdbParts,
) -> Option<Plan> {
    let open = SYNC_FILE.with(|f| f.borrow().clone());
    if let Some(file) = open.filter(|f| f.parts == parts && f.outcome.get().is_none()) {
        let prefix = state.repl.feed.as_ref()?.backlog.borrow().since(file.offset + 1)?;
        let (offset, path) = (file.offset, file.path.clone());
        tracing::warn!("Waiting for end of BGSAVE for SYNC");
        return Some(Plan::Full { offset, path, wait: FileWait::Shared(file), prefix });
    }
    state.journal.reset_selected_db();
    let offset = state.journal.offset();
    let path = sync_file_path(state, "rdb");
    if state.persist.bgsave.is_some() {
        return match engine::save_rdb_to(ks, state, &path, parts) {
            Ok(()) => Some(Plan::Full { offset, path, wait: FileWait::Ready, prefix: Vec::new() }),
            Err(e) => {
                tracing::warn!("Can't save the RDB for a replica: {e}");
                None
            }
        };
    }
    let outcome = Rc::new(Cell::new(None));
    let file = Rc::new(SyncFile { offset, parts, path: path.clone(), outcome: outcome.clone() });
    let on_done: engine::OnDone = Box::new(move |_, _, r: Result<u64, String>| {
        outcome.set(Some(r.is_ok()));
        SYNC_FILE.with(|f| {
            let mut f = f.borrow_mut();
            if f.as_ref().is_some_and(|s| Rc::ptr_eq(&s.outcome, &outcome)) {
                *f = None;
            }
        });
    });
    let job = engine::SnapshotJob {
        dest: path.clone(),
        is_bgsave: false,
        on_done: Some(on_done),
        incremental_fsync: state.config.rdb_save_incremental_fsync,
        paced: false,
    };
    if let Err(e) = engine::start_snapshot_as(ks, state, job, Format::Rdb(parts)) {
        tracing::warn!("Can't start the RDB snapshot for a replica: {e}");
        return None;
    }
    tracing::warn!("Starting BGSAVE for SYNC with target: disk");
    SYNC_FILE.with(|f| *f.borrow_mut() = Some(file.clone()));
    Some(Plan::Full { offset, path, wait: FileWait::Shared(file), prefix: Vec::new() })
}

/// Joins the disk-less sync that has not started sending yet, or starts one (when no other
/// snapshot runs; otherwise the replica gets a snapshot file, as in [`full_snapshot`]).
fn diskless_snapshot(
    ks: &mut crate::keyspace::Keyspace,
    state: &mut ServerState,
    format: Format,
) -> Option<Plan> {
    let open = DISKLESS.with(|d| d.borrow().clone()).filter(|d| !d.started.get());
    let session = match open {
        Some(session) if session.format == format => session,
        _ if state.persist.bgsave.is_some() => return full_snapshot(ks, state, format),
        _ => start_diskless(ks, state, format)?,
    };
    let prefix = match state.journal.offset() == session.offset {
        true => Vec::new(),
        false => state.repl.feed.as_ref()?.backlog.borrow().since(session.offset + 1)?,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(DISKLESS_QUEUE);
    session.members.borrow_mut().push(tx);
    Some(Plan::Diskless { offset: session.offset, session, rx, prefix })
}

/// Starts a background snapshot whose bytes go to the replicas' sockets, and the task that
/// passes them on ([`pump`]).
fn start_diskless(
    ks: &mut crate::keyspace::Keyspace,
    state: &mut ServerState,
    format: Format,
) -> Option<Rc<Diskless>> {
    state.journal.reset_selected_db();
    let offset = state.journal.offset();
    let mark: String = {
        use rand::Rng;
        (0..40).map(|_| char::from(b"0123456789abcdef"[state.rng.gen_range(0..16)])).collect()
    };
    let outcome = Rc::new(Cell::new(None));
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(DISKLESS_QUEUE);
    let out = ChunkWriter { tx, buf: Vec::with_capacity(DISKLESS_CHUNK) };
    let done = outcome.clone();
    let on_done: engine::OnDone = Box::new(move |_, _, r: Result<u64, String>| {
        match &r {
            Ok(n) => tracing::warn!("Diskless rdb transfer, done writing {n} bytes"),
            Err(e) => tracing::warn!("Diskless rdb transfer failed: {e}"),
        }
        done.set(Some(r.is_ok()));
    });
    let name = "replicas (disk-less sync)";
    let out = (Box::new(out) as Box<dyn std::io::Write + Send>, format);
    if let Err(e) = engine::start_snapshot_stream(ks, state, out, name, Some(on_done)) {
        tracing::warn!("Can't start the disk-less snapshot for the replicas: {e}");
        return None;
    }
    tracing::warn!("Starting BGSAVE for SYNC with target: replicas sockets");
    // No child process here: the transfer runs in this process, on a writer thread.
    tracing::warn!("Background RDB transfer started by pid {}", std::process::id());
    let session = Rc::new(Diskless {
        offset,
        format,
        mark,
        members: RefCell::new(Vec::new()),
        started: Cell::new(false),
        outcome,
    });
    DISKLESS.with(|d| *d.borrow_mut() = Some(session.clone()));
    tokio::task::spawn_local(pump(session.clone(), rx));
    Some(session)
}

/// The writer thread's output for a disk-less snapshot: chunks sent to [`pump`]. Fails once
/// nobody reads them any more (every replica went away), which abandons the snapshot.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = DISKLESS_CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= DISKLESS_CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(DISKLESS_CHUNK));
        self.tx.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "no replica left to send to")
        })
    }
}

/// Passes the disk-less snapshot's chunks to every member replica, at the pace of the slowest;
/// stops the snapshot when none is left. Once the snapshot is complete (or failed), closes
/// the members' queues: each then sends the end mark (or drops its replica).
async fn pump(session: Rc<Diskless>, mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>) {
    // Replicas that waited out the sync delay together arrive within a few milliseconds.
    tokio::time::sleep(Duration::from_millis(100)).await;
    session.started.set(true);
    DISKLESS.with(|d| {
        let mut d = d.borrow_mut();
        if d.as_ref().is_some_and(|s| Rc::ptr_eq(s, &session)) {
            *d = None;
        }
    });
    while let Some(chunk) = rx.recv().await {
        let chunk = Rc::new(chunk);
        let members: Vec<_> = session.members.borrow().clone();
        let mut alive = 0;
        for m in &members {
            if m.send(chunk.clone()).await.is_ok() {
                alive += 1;
            }
        }
        session.members.borrow_mut().retain(|m| !m.is_closed());
        if alive == 0 {
            tracing::warn!("Diskless rdb transfer, last replica dropped, killing fork child.");
            break;
        }
    }
    // Dropping the receiver makes the writer fail if it still writes.
    drop(rx);
    while session.outcome.get().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let left = session.members.borrow().iter().filter(|m| !m.is_closed()).count();
    tracing::warn!("Diskless rdb transfer, done reading from pipe, {left} replicas still up.");
    session.members.borrow_mut().clear();
}

/// Sends one replica its disk-less payload: `$EOF:<mark>\r\n`, the chunks as they come, then
/// the mark if the snapshot completed.
async fn send_diskless(
    (stream, inbuf): (&mut TcpStream, &mut BytesMut),
    shared: &ClientShared,
    info: &ReplicaInfo,
    session: &Diskless,
    mut rx: Chunks,
) -> bool {
    // Redis shows a disk-less transfer as `wait_bgsave` to its end (its RDB child runs).
    info.state_name.set("wait_bgsave");
    let head = format!("$EOF:{}\r\n", session.mark);
    if !write_killable(stream, head.as_bytes(), shared).await {
        return false;
    }
    loop {
        // The snapshot may take long between chunks: a replica that went away meanwhile must
        // leave at once, not at the next chunk.
        let chunk = tokio::select! {
            c = rx.recv() => c,
            _ = shared.wake.notified() => {
                if shared.killed.get() {
                    return false;
                }
                continue;
            }
            r = stream.readable() => {
                if r.is_err() || closed(stream, inbuf) {
                    return false;
                }
                continue;
            }
        };
        let Some(chunk) = chunk else { break };
        info.sync_write_since.set(Some(Instant::now()));
        let written = write_killable(stream, &chunk, shared).await;
        info.sync_write_since.set(None);
        if !written {
            return false;
        }
    }
    if session.outcome.get() != Some(true) {
        tracing::warn!("SYNC failed: the disk-less snapshot did not complete");
        return false;
    }
    write_killable(stream, session.mark.as_bytes(), shared).await
}

/// A replica arriving while a background save for another replica runs shares it (as Redis
/// does): it gets the same snapshot and offset, and the stream produced since then, from the
/// backlog, ahead of the live stream.
fn join_bgsave(state: &ServerState) -> Option<Plan> {
    let (offset, saves, path) = state.repl.sync_bgsave.clone()?;
    if state.persist.bgsave.is_none() || state.persist.saves != saves {
        return None;
    }
    let prefix = state.repl.feed.as_ref()?.backlog.borrow().since(offset + 1)?;
    Some(Plan::Full { offset, path, wait: FileWait::Bgsave(saves), prefix })
}

/// Waits for the background save (sending a newline every second, which a replica skips, so
/// that it does not time out), then sends `$<len>\r\n` and the file.
async fn send_snapshot(
    server: &Rc<RefCell<Server>>,
    (stream, inbuf): (&mut TcpStream, &mut BytesMut),
    shared: &ClientShared,
    info: &ReplicaInfo,
    path: &std::path::Path,
    wait: FileWait,
) -> bool {
    let mut last_newline = Instant::now();
    let open = || std::fs::File::open(path).ok();
    let file = loop {
        let done = {
            let p = &server.borrow().state.persist;
            match &wait {
                FileWait::Ready => Some(open()),
                FileWait::Bgsave(_) if p.bgsave.is_some() => None,
                FileWait::Bgsave(before) => {
                    let ours_ok = p.last_bgsave_ok && p.saves > *before;
                    Some(ours_ok.then(open).flatten())
                }
                FileWait::Shared(f) => f.outcome.get().map(|ok| ok.then(open).flatten()),
            }
        };
        if let Some(file) = done {
            break file;
        }
        if shared.killed.get() || closed(stream, inbuf) {
            return false;
        }
        if last_newline.elapsed() >= Duration::from_secs(1) {
            last_newline = Instant::now();
            if !write_killable(stream, b"\n", shared).await {
                return false;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    match wait {
        FileWait::Ready => {
            let _ = std::fs::remove_file(path);
        }
        // Open, the file stays readable; the last holder's drop deletes it.
        FileWait::Shared(f) => drop(f),
        FileWait::Bgsave(_) => {}
    }
    let Some(mut file) = file else {
        tracing::warn!("SYNC failed. BGSAVE child returned an error");
        return false;
    };
    info.state_name.set("send_bulk");
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if !write_killable(stream, format!("${len}\r\n").as_bytes(), shared).await {
        return false;
    }
    let mut chunk = vec![0u8; FILE_CHUNK];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => n,
            Err(_) => return false,
        };
        if !write_killable(stream, &chunk[..n], shared).await {
            return false;
        }
    }
}

/// Whether the replica closed its connection (what it sent meanwhile is kept in `inbuf`).
fn closed(stream: &TcpStream, inbuf: &mut BytesMut) -> bool {
    match stream.try_read_buf(inbuf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// Writes the stream queued for the replica and reads its `REPLCONF ACK`s until either side
/// closes.
/// `hold`: nothing is written before the replica's first ACK (see `serve_replica`).
async fn stream_to(
    server: &Rc<RefCell<Server>>,
    stream: &mut TcpStream,
    inbuf: &mut BytesMut,
    info: &ReplicaInfo,
    mut hold: bool,
) {
    let shared = info.shared.clone();
    let mut parser = RequestParser::new(1 << 20);
    let acks = info.acks.get();
    loop {
        hold = hold && info.acks.get() == acks;
        let pushed = if hold { Vec::new() } else { shared.take_pushed() };
        if !pushed.is_empty() {
            if !write_killable(stream, &pushed, &shared).await {
                return;
            }
            continue;
        }
        if !read_acks(server, &mut parser, inbuf, info) {
            return;
        }
        if hold && info.acks.get() != acks {
            continue;
        }
        tokio::select! {
            biased;
            _ = shared.wake.notified() => {
                if shared.killed.get() {
                    return;
                }
            }
            r = stream.read_buf(inbuf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// Applies the replica's complete requests: `REPLCONF ACK <offset>` records its offset (and
/// may release WAITing clients); anything else is ignored. False on a protocol error.
fn read_acks(
    server: &Rc<RefCell<Server>>,
    parser: &mut RequestParser,
    inbuf: &mut BytesMut,
    info: &ReplicaInfo,
) -> bool {
    let mut acked = false;
    loop {
        match parser.parse(inbuf, false) {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => return false,
        }
        let argv: Vec<&[u8]> = match parser.args_source() {
            ArgSource::Buffer => parser.ranges().iter().map(|r| &inbuf[r.clone()]).collect(),
            ArgSource::Inline => parser.inline_args().iter().map(Vec::as_slice).collect(),
        };
        let is_ack = argv.len() >= 3
            && argv[0].eq_ignore_ascii_case(b"replconf")
            && argv[1].eq_ignore_ascii_case(b"ack");
        if is_ack {
            if let Some(off) = std::str::from_utf8(argv[2]).ok().and_then(|s| s.parse().ok()) {
                info.ack_offset.set(off);
                info.ack_time.set(Instant::now());
                info.acks.set(info.acks.get() + 1);
                acked = true;
            }
        } else if !argv.is_empty()
            && !argv[0].eq_ignore_ascii_case(b"replconf")
            && !replica_command(server, info, &argv)
        {
            return false;
        }
    }
    let consumed = parser.consumed();
    inbuf.advance(consumed);
    parser.discard_front(consumed);
    if acked {
        super::wake_waiters(&server.borrow().state);
    }
    true
}

/// A command from a replica other than REPLCONF. It runs as from any client, except that a
/// replica may not touch the keyspace (Redis's `processCommand` refuses it); but the link
/// carries no replies, so a command that has one gets the replica disconnected, as Redis
/// does. Returns false when the replica is to be dropped.
fn replica_command(server: &Rc<RefCell<Server>>, info: &ReplicaInfo, argv: &[&[u8]]) -> bool {
    use crate::commands::flags::{MAY_REPLICATE, READONLY, WRITE};
    let mut srv = server.borrow_mut();
    let id = info.shared.info.borrow().id;
    let mut out = crate::protocol::ReplyBuf::new(crate::protocol::Resp::V2);
    let resolved = crate::dispatch::resolve(argv);
    let name = resolved.as_ref().map_or_else(|_| "<unknown>".into(), |(_, s)| s.full_name());
    let keyspace = resolved.as_ref().is_ok_and(|(_, s)| s.has(READONLY | WRITE | MAY_REPLICATE));
    if keyspace {
        out.buf.extend_from_slice(b"-ERR Replica can't interact with the keyspace\r\n");
    } else {
        let mut client = Client::new(id, info.shared.clone(), true);
        crate::dispatch::execute(&mut srv, &mut client, &mut out, argv);
    }
    if out.buf.is_empty() {
        return true;
    }
    let reply = String::from_utf8_lossy(&out.buf).escape_debug().to_string();
    tracing::warn!("Replica generated a reply to command '{name}', disconnecting it: \"{reply}\"");
    if out.buf.first() == Some(&b'-') {
        let line = out.buf[..].split(|&b| b == b'\r').next().unwrap_or(&[]);
        let text = String::from_utf8_lossy(&line[1..]);
        tracing::warn!(
            "== CRITICAL == This master is sending an error to its replica: '{text}' after \
             processing the command '{name}'"
        );
    }
    info.shared.kill();
    false
}

/// Removes a replica that went away from the feed.
fn detach(server: &Rc<RefCell<Server>>, info: &Rc<ReplicaInfo>) {
    let mut srv = server.borrow_mut();
    let Server { ks, state, .. } = &mut *srv;
    let Some(feed) = state.repl.feed.clone() else { return };
    feed.replicas.borrow_mut().retain(|r| !Rc::ptr_eq(r, info));
    tracing::warn!("Connection with replica {}:{} lost.", info.ip, info.listening_port.get());
    // The last replica waiting for a disk-based snapshot taken only for it (no save points):
    // nobody needs it any more (Redis kills its RDB child then).
    let waiting = |r: &ReplicaInfo| !r.online.get() && r.state_name.get() == "wait_bgsave";
    let others = feed.replicas.borrow().iter().any(|r| waiting(r));
    if waiting(info) && !others && state.config.save.is_empty() {
        let ours = state.repl.sync_bgsave.as_ref().is_some_and(|(_, saves, _)| {
            state.persist.bgsave.is_some() && state.persist.saves == *saves
        });
        if ours {
            engine::bgsave_abort(ks, state);
            state.repl.sync_bgsave = None;
        }
    }
    // Likewise an RDB file being written for replicas that all went away (the replicas
    // that still wait for it hold it; the slot is the only other holder).
    let sync_file = SYNC_FILE.with(|f| f.borrow().clone());
    if let Some(file) = sync_file {
        let unwanted = Rc::strong_count(&file) == 2 && file.outcome.get().is_none();
        drop(file);
        if unwanted && state.persist.bgsave.is_some() {
            engine::bgsave_abort(ks, state);
        }
    }
}


/// `repl-backlog-ttl`: a master without replicas for that long frees its backlog and starts a
/// new history (no replica could continue the old one from us anyway).
fn expire_backlog(state: &mut ServerState, alone_since: Instant) {
    let ttl = super::config_u64(state, "repl-backlog-ttl");
    if ttl == 0 || state.is_replica() || alone_since.elapsed().as_secs() < ttl {
        return;
    }
    state.journal.set_tap(None);
    state.repl.feed = None;
    state.repl.replid = super::new_replid(state);
    state.repl.replid2 = super::NULL_REPLID.to_string();
    state.repl.second_offset = -1;
    tracing::warn!("Replication backlog freed after {ttl} seconds without connected replicas.");
}

/// Once a second: a `PING` in the stream every `repl-ping-replica-period` seconds (so replicas
/// can tell a silent master from a dead one); replicas that acknowledged nothing for
/// `repl-timeout` seconds are dropped, and so are replicas of a disk-less sync that have not
/// taken a chunk of it for as long.
pub async fn cron(server: Rc<RefCell<Server>>) {
    let mut last_ping = Instant::now();
    let mut alone_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut srv = server.borrow_mut();
        let state = &mut srv.state;
        let Some(feed) = state.repl.feed.clone() else {
            alone_since = Instant::now();
            continue;
        };
        if feed.replicas.borrow().is_empty() {
            expire_backlog(state, alone_since);
            continue;
        }
        alone_since = Instant::now();
        let period = super::config_u64(state, "repl-ping-replica-period").max(1);
        let pinging = !state.is_replica() && state.repl.failover.is_none();
        if pinging && last_ping.elapsed().as_secs() >= period {
            last_ping = Instant::now();
            let mut ping = Vec::new();
            crate::journal::encode_command(&mut ping, &[b"ping"]);
            state.journal.feed_raw(&ping);
        }
        let timeout = super::config_u64(state, "repl-timeout").max(1);
        for r in feed.replicas.borrow().iter() {
            let name = replica_name(r);
            if r.online.get() && !r.pre_psync && r.ack_time.get().elapsed().as_secs() > timeout {
                tracing::warn!("Disconnecting timedout replica (streaming sync): {name}");
                r.shared.kill();
            } else if r.sync_write_since.get().is_some_and(|t| t.elapsed().as_secs() > timeout) {
                tracing::warn!("Disconnecting timedout replica (full sync): {name}");
                r.shared.kill();
            }
        }
    }
}
