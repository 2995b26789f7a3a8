//! The replica side: the link to the master (connect, handshake, full or partial resync) and
//! the application of its stream.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use smallvec::SmallVec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{LinkState, MasterLink, Transfer};
use crate::keyspace::Keyspace;
use crate::protocol::decode::ArgSource;
use crate::protocol::{ReplyBuf, RequestParser, Resp};
use crate::server::client::{Client, ClientInfo, ClientShared};
use crate::server::{Server, ServerState};
use crate::snapshot::engine;

/// Longest status line accepted from the master during the handshake.
const MAX_LINE: usize = 64 * 1024;

/// Makes this server a replica of `host:port` (REPLICAOF, or `replicaof` at start-up).
pub fn set_master(ks: &mut Keyspace, state: &mut ServerState, host: String, port: u16) {
    let client_id = state.next_client_id;
    state.next_client_id += 1;
    let (db, synced) = state.repl.master.as_ref().map_or((0, true), |m| (m.db, m.synced));
    // CONFIG GET / CONFIG REWRITE show the current master, as in Redis.
    let _ = state.config.set("replicaof", &format!("{host} {port}"));
    state.repl.master = Some(MasterLink {
        host,
        port,
        state: LinkState::Connect,
        last_io: None,
        down_since: None,
        client_id,
        db,
        synced,
        transfer: None,
    });
    state.repl.generation += 1;
    // A replica never expires keys by its own clock: it waits for its master's DELs.
    ks.expire_on_access = false;
    // Our own replicas stay attached: they are dropped only when our history changes (a full
    // sync loaded, or a `+CONTINUE` with a new id), as in Redis 7.0.
    unblock_all(state);
    state.repl.wake.notify_one();
}

/// Clients blocked on keys stop waiting when this server becomes a replica: their writes
/// could no longer happen (Redis's `disconnectAllBlockedClients`).
fn unblock_all(state: &mut ServerState) {
    use crate::server::blocking::UnblockMode;
    let ids: Vec<u64> =
        state.clients.keys().copied().filter(|id| state.blocking.is_blocked(*id)).collect();
    for id in ids {
        if state.blocking.request_unblock(id, UnblockMode::Error) {
            if let Some(c) = state.clients.get(&id) {
                c.wake.notify_one();
            }
        }
    }
}

/// REPLICAOF NO ONE: this server becomes a master, keeping its data and history; the old
/// replication id stays valid as the second one, so that its former fellow replicas can
/// continue from it.
pub fn unset_master(ks: &mut Keyspace, state: &mut ServerState) {
    if state.repl.master.take().is_none() {
        return;
    }
    let _ = state.config.set("replicaof", "");
    state.repl.generation += 1;
    ks.expire_on_access = true;
    // The active expire cycle covers every key from now on.
    state.repl.replica_keys_with_expire.clear();
    super::shift_replid(state);
    super::ensure_feed(state);
    state.journal.reset_selected_db();
    super::drop_replicas(state);
    state.repl.wake.notify_one();
    tracing::warn!("MASTER MODE enabled (user request)");
}

/// The replica task: idles while this server is a master; otherwise keeps a link to the
/// master up, reconnecting after a second when it breaks.
pub async fn run(server: Rc<RefCell<Server>>) {
    let wake = server.borrow().state.repl.wake.clone();
    loop {
        let target = {
            let srv = server.borrow();
            let r = &srv.state.repl;
            r.master.as_ref().map(|m| (m.host.clone(), m.port, r.generation))
        };
        let Some((host, port, generation)) = target else {
            wake.notified().await;
            continue;
        };
        if server.borrow().state.persist.loading.is_some() {
            // Our own snapshot first: it may let us continue where it ends.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        if let Err(e) = link(&server, &host, port, generation).await {
            tracing::warn!("Replication with {host}:{port}: {e}");
        }
        let still = link_down(&server, generation);
        if still {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = wake.notified() => {}
            }
        }
    }
}

/// Marks the link down. Returns whether the target is unchanged (retry after a pause).
fn link_down(server: &Rc<RefCell<Server>>, generation: u64) -> bool {
    let mut srv = server.borrow_mut();
    let r = &mut srv.state.repl;
    if r.generation != generation {
        return false;
    }
    if let Some(m) = r.master.as_mut() {
        if m.state == LinkState::Connected {
            m.down_since = Some(Instant::now());
            tracing::warn!("Connection with master lost.");
        }
        m.state = LinkState::Connect;
    }
    true
}

/// Runs `f` on the master link if it is still the one of `generation`.
fn with_link<T>(
    server: &Rc<RefCell<Server>>,
    generation: u64,
    f: impl FnOnce(&mut MasterLink) -> T,
) -> Result<T, String> {
    let mut srv = server.borrow_mut();
    let r = &mut srv.state.repl;
    match r.master.as_mut() {
        Some(m) if r.generation == generation => Ok(f(m)),
        _ => Err("replication target changed".into()),
    }
}

/// One connection to the master: handshake, resync, then the stream until it breaks.
async fn link(
    server: &Rc<RefCell<Server>>,
    host: &str,
    port: u16,
    generation: u64,
) -> Result<(), String> {
    with_link(server, generation, |m| m.state = LinkState::Connecting)?;
    tracing::warn!("Connecting to MASTER {host}:{port}");
    let timeout = Duration::from_secs(repl_timeout(server));
    let connect = TcpStream::connect((host, port));
    let mut stream = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| "timeout connecting to the master".to_string())?
        .map_err(|e| format!("Error condition on socket for SYNC: {e}"))?;
    let _ = stream.set_nodelay(true);
    with_link(server, generation, |m| m.state = LinkState::Handshake)?;
    tracing::warn!("MASTER <-> REPLICA sync started");
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let ask = handshake(server, &mut stream, &mut buf, timeout).await?;
    let reply = read_line(&mut stream, &mut buf, timeout).await?;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let words: Vec<&str> = reply.split_whitespace().collect();
    match words.as_slice() {
        ["+FULLRESYNC", id, offset] => {
            let offset: u64 = offset.parse().map_err(|_| "bad FULLRESYNC offset")?;
            tracing::warn!("Full resync from master: {id}:{offset}");
            with_link(server, generation, |m| m.state = LinkState::Sync)?;
            let mode = load_mode(server, id);
            let got = receive_snapshot(server, &mut stream, &mut buf, generation, mode).await;
            let loaded = got.and_then(|path| load_snapshot(server, &path, id, offset, generation));
            end_load_mode(server, mode);
            loaded?;
        }
        ["+CONTINUE", rest @ ..] => {
            tracing::warn!("Successful partial resynchronization with master.");
            continue_with(server, rest.first().copied(), generation)?;
        }
        _ => {
            if reply.starts_with('-') {
                failover_rejected(server);
            }
            return Err(format!("unexpected reply to PSYNC '{reply}' (asked {ask})"));
        }
    }
    apply_stream(server, &mut stream, &mut buf, generation).await
}

/// The target of a FAILOVER refused our PSYNC: the failover is off, we are a master again.
fn failover_rejected(server: &Rc<RefCell<Server>>) {
    let mut srv = server.borrow_mut();
    let Server { ks, state, .. } = &mut *srv;
    if state.repl.failover.as_ref().is_some_and(|f| f.in_progress) {
        super::failover::abort(ks, state, "Failover target rejected psync request");
    }
}

fn repl_timeout(server: &Rc<RefCell<Server>>) -> u64 {
    super::config_u64(&server.borrow().state, "repl-timeout").max(1)
}

/// PING, AUTH, REPLCONF listening-port, REPLCONF capa, then PSYNC. Returns the PSYNC sent.
async fn handshake(
    server: &Rc<RefCell<Server>>,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<String, String> {
    let (auth, port, psync, announce_ip) = {
        let srv = server.borrow();
        let st = &srv.state;
        let pass = st.config.get_by_name("masterauth").unwrap_or("").to_string();
        let user = st.config.get_by_name("masteruser").unwrap_or("").to_string();
        let auth = (!pass.is_empty()).then_some((user, pass));
        let announce = super::config_u64(st, "replica-announce-port");
        let port = if announce > 0 { announce } else { u64::from(st.tcp_port) };
        let synced = st.repl.master.as_ref().is_some_and(|m| m.synced);
        let mut psync = if synced {
            vec!["PSYNC".to_string(), st.repl.replid.clone(), (st.journal.offset() + 1).to_string()]
        } else {
            vec!["PSYNC".to_string(), "?".into(), "-1".into()]
        };
        if st.repl.failover.as_ref().is_some_and(|f| f.in_progress) {
            psync.push("FAILOVER".into());
        }
        let ip = st.config.get_by_name("replica-announce-ip").unwrap_or("").to_string();
        (auth, port, psync, (!ip.is_empty()).then_some(ip))
    };
    let pong = command(stream, buf, &["PING".to_string()], timeout).await?;
    if pong.starts_with(b"-") && !pong.starts_with(b"-NOAUTH") && !pong.starts_with(b"-NOPERM") {
        let pong = String::from_utf8_lossy(&pong);
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    if let Some((user, pass)) = auth {
        let mut argv = vec!["AUTH".to_string()];
        if !user.is_empty() {
            argv.push(user);
        }
        argv.push(pass);
        let r = command(stream, buf, &argv, timeout).await?;
        if r.starts_with(b"-") {
            return Err(format!("Unable to AUTH to MASTER: {}", String::from_utf8_lossy(&r)));
        }
    }
    let lp = ["REPLCONF".to_string(), "listening-port".into(), port.to_string()];
    command(stream, buf, &lp, timeout).await?;
    if let Some(ip) = announce_ip {
        command(stream, buf, &["REPLCONF".into(), "ip-address".into(), ip], timeout).await?;
    }
    // `capa ferrodis` asks for the payload in our snapshot format (a master sends everyone
    // else a Redis RDB); a Redis master ignores it, and we load either format anyway.
    let capa = ["REPLCONF", "capa", "eof", "capa", "psync2", "capa", "ferrodis"].map(String::from);
    command(stream, buf, &capa, timeout).await?;
    let mut out = Vec::new();
    crate::journal::encode_command(&mut out, &psync);
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    Ok(psync.join(" "))
}

/// Sends one command and reads its one-line reply.
async fn command(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    argv: &[String],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    crate::journal::encode_command(&mut out, argv);
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    read_line(stream, buf, timeout).await
}

/// Reads one `\r\n`-terminated line, skipping the bare newlines a master sends to keep the link
/// alive while it prepares the snapshot.
async fn read_line(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    read_line_guarded(stream, buf, timeout, None).await
}

/// [`read_line`], giving up as soon as the replication target changes (`guard`: the server
/// and the link's generation): a replica waiting for its master's snapshot must let go of the
/// master at once on REPLICAOF, so that the master can stop a snapshot nobody waits for.
async fn read_line_guarded(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Duration,
    guard: Option<(&Rc<RefCell<Server>>, u64)>,
) -> Result<Vec<u8>, String> {
    loop {
        while buf.first() == Some(&b'\n') {
            buf.advance(1);
        }
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf[..end].to_vec();
            buf.advance(end + 2);
            return Ok(line);
        }
        if buf.len() > MAX_LINE {
            return Err("line from master too long".into());
        }
        let n = read_more(stream, buf, timeout, guard)
            .await?
            .ok_or_else(|| "Timeout connecting to the MASTER...".to_string())?;
        if n == 0 {
            return Err("master closed the connection".into());
        }
    }
}

/// Reads what the master sent; `None` after `timeout` without data. With a `guard`, checks
/// every 100 ms that the link is still the one of its generation.
async fn read_more(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Duration,
    guard: Option<(&Rc<RefCell<Server>>, u64)>,
) -> Result<Option<usize>, String> {
    let Some((server, generation)) = guard else {
        return match tokio::time::timeout(timeout, stream.read_buf(buf)).await {
            Ok(r) => r.map(Some).map_err(|e| e.to_string()),
            Err(_) => Ok(None),
        };
    };
    let end = Instant::now() + timeout;
    loop {
        let slice = end.saturating_duration_since(Instant::now()).min(Duration::from_millis(100));
        if slice.is_zero() {
            return Ok(None);
        }
        if let Ok(r) = tokio::time::timeout(slice, stream.read_buf(buf)).await {
            return r.map(Some).map_err(|e| e.to_string());
        }
        with_link(server, generation, |_| ())?;
    }
}

/// How the replica takes in a full sync's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadMode {
    /// To disk first, then loaded (`repl-diskless-load disabled`): nothing to show meanwhile.
    Disk,
    /// Disk-less (`on-empty-db`, `swapdb`): this server is loading (`-LOADING` to clients)
    /// from the first byte received, though the old dataset stays until the new one is
    /// complete, and comes back if the transfer fails.
    Loading,
    /// `swapdb` with a master continuing our own history: the old dataset is served while the
    /// new one arrives (`async_loading`).
    Async,
}

/// The mode of a full sync from a master whose history is `replid`, entered now.
fn load_mode(server: &Rc<RefCell<Server>>, replid: &str) -> LoadMode {
    let mut srv = server.borrow_mut();
    let Server { ks, state, .. } = &mut *srv;
    let mode = match state.config.get_by_name("repl-diskless-load") {
        Some("swapdb") if state.repl.replid == replid => LoadMode::Async,
        Some("swapdb") => LoadMode::Loading,
        Some("on-empty-db") if ks.dbs.iter().all(|d| d.is_empty()) => LoadMode::Loading,
        _ => LoadMode::Disk,
    };
    match mode {
        LoadMode::Disk => {}
        LoadMode::Async => state.persist.async_loading = true,
        LoadMode::Loading => {
            state.persist.loading = Some(engine::Loading {
                started: Instant::now(),
                start_secs: crate::util::time::now_secs(),
                total_bytes: 0,
                loaded_bytes: Default::default(),
                used_memory: Default::default(),
            });
        }
    }
    mode
}

/// Leaves the state [`load_mode`] entered, the full sync done or failed.
fn end_load_mode(server: &Rc<RefCell<Server>>, mode: LoadMode) {
    let state = &mut server.borrow_mut().state;
    match mode {
        LoadMode::Disk => {}
        LoadMode::Async => state.persist.async_loading = false,
        LoadMode::Loading => state.persist.loading = None,
    }
}

/// How the master frames the payload: `$<len>` or, disk-less, `$EOF:<40-byte mark>` with the
/// mark after the last byte.
enum Framing {
    Len(u64),
    Mark(Vec<u8>),
}

/// The payload's first line.
fn parse_framing(head: &[u8]) -> Result<Framing, String> {
    let bad = || format!("Bad protocol from MASTER: '{}'", String::from_utf8_lossy(head));
    if let Some(mark) = head.strip_prefix(b"$EOF:") {
        return match mark.len() {
            EOF_MARK_LEN => Ok(Framing::Mark(mark.to_vec())),
            _ => Err(bad()),
        };
    }
    let len = head.strip_prefix(b"$").and_then(|d| std::str::from_utf8(d).ok());
    len.and_then(|s| s.parse().ok()).map(Framing::Len).ok_or_else(bad)
}

/// Length of the end mark of a disk-less payload.
const EOF_MARK_LEN: usize = 40;

/// Takes the payload bytes out of `buf` into `file`: up to `left` bytes for a counted payload;
/// up to the mark for a marked one, keeping the last bytes that could be the start of the
/// mark. Returns true once the payload is complete (the mark consumed, not written).
fn take_payload(
    buf: &mut BytesMut,
    file: &mut std::fs::File,
    framing: &Framing,
    left: &mut u64,
) -> Result<bool, String> {
    let io = |e: std::io::Error| e.to_string();
    match framing {
        Framing::Len(_) => {
            let take = (buf.len() as u64).min(*left) as usize;
            file.write_all(&buf[..take]).map_err(io)?;
            buf.advance(take);
            *left -= take as u64;
            Ok(*left == 0)
        }
        Framing::Mark(mark) => {
            if let Some(at) = buf.windows(mark.len()).position(|w| w == mark.as_slice()) {
                file.write_all(&buf[..at]).map_err(io)?;
                buf.advance(at + mark.len());
                return Ok(true);
            }
            let take = buf.len().saturating_sub(mark.len() - 1);
            file.write_all(&buf[..take]).map_err(io)?;
            buf.advance(take);
            Ok(false)
        }
    }
}

/// Receives the snapshot (`$<len>\r\n<bytes>`, or disk-less `$EOF:<mark>\r\n<bytes><mark>`)
/// into a temporary file next to our own snapshot.
async fn receive_snapshot(
    server: &Rc<RefCell<Server>>,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    generation: u64,
    mode: LoadMode,
) -> Result<std::path::PathBuf, String> {
    let timeout = Duration::from_secs(repl_timeout(server));
    let head = read_line_guarded(stream, buf, timeout, Some((server, generation))).await?;
    let framing = parse_framing(&head)?;
    let mut left = match framing {
        Framing::Len(len) => {
            tracing::warn!("MASTER <-> REPLICA sync: receiving {len} bytes from master to disk");
            len
        }
        Framing::Mark(_) if mode == LoadMode::Disk => {
            tracing::warn!("MASTER <-> REPLICA sync: receiving streamed RDB from master to disk");
            0
        }
        Framing::Mark(_) => {
            tracing::warn!("MASTER <-> REPLICA sync: receiving streamed RDB from master disk-less");
            tracing::warn!("MASTER <-> REPLICA sync: Loading DB in memory");
            0
        }
    };
    let size = match framing {
        Framing::Len(len) => i64::try_from(len).unwrap_or(i64::MAX),
        Framing::Mark(_) => -1,
    };
    let mut read = buf.len() as u64;
    let progress = |read: u64| Transfer { size, read, last_io: Instant::now() };
    with_link(server, generation, |m| m.transfer = Some(progress(read)))?;
    let dest = engine::snapshot_path(&server.borrow().state);
    let name = format!("temp-{}-{}.rdb", std::process::id(), crate::util::time::now_ms());
    let path = dest.parent().map_or_else(|| name.clone().into(), |d| d.join(&name));
    let mut file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let result = async {
        loop {
            if take_payload(buf, &mut file, &framing, &mut left)? {
                return Ok(());
            }
            let n = read_more(stream, buf, timeout, Some((server, generation)))
                .await?
                .ok_or_else(|| "Timeout receiving bulk data from MASTER".to_string())?;
            if n == 0 {
                return Err("I/O error trying to sync with MASTER: connection lost".to_string());
            }
            read += n as u64;
            with_link(server, generation, |m| {
                m.last_io = Some(Instant::now());
                m.transfer = Some(progress(read));
            })?;
        }
    }
    .await;
    let _ = with_link(server, generation, |m| m.transfer = None);
    if let Err(e) = result {
        if matches!(framing, Framing::Mark(_)) && mode != LoadMode::Disk {
            // A disk-less load reads the snapshot from the socket as it comes (to the user;
            // here it passes through a temporary file first), so a cut connection is a short
            // read of the snapshot. Redis logs it in these words, and tools that watch the log
            // (Redis's own test suite among them) wait for them.
            tracing::warn!(
                "Internal error in RDB reading offset {read} -> Unexpected EOF reading RDB \
                 file ({e}). Failure loading rdb format from socket, assuming connection \
                 error, resuming operation."
            );
        }
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Replaces the dataset with the received snapshot and adopts the master's id and offset.
fn load_snapshot(
    server: &Rc<RefCell<Server>>,
    path: &std::path::Path,
    replid: &str,
    offset: u64,
    generation: u64,
) -> Result<(), String> {
    with_link(server, generation, |_| ())?;
    let mut srv = server.borrow_mut();
    let Server { ks, state, .. } = &mut *srv;
    tracing::warn!("MASTER <-> REPLICA sync: Flushing old data");
    tracing::warn!("MASTER <-> REPLICA sync: Loading DB in memory");
    let limits = engine::encoding_limits(state);
    let mut fresh = Keyspace::new(ks.dbs.len());
    let opts = engine::LoadOptions::default();
    let loaded = engine::load_file(path, &mut fresh, limits, opts);
    let (_, aux) = match loaded {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(path);
            return Err(format!(
                "Failed trying to load the MASTER synchronization DB from disk: {e}"
            ));
        }
    };
    engine::bgsave_abort(ks, state);
    ks.dbs = fresh.dbs;
    state.repl.replica_keys_with_expire.clear();
    state.modification_epoch += 1;
    // Cached keys are all invalid now, as after FLUSHALL (Redis's emptyData).
    state.tracking_on_flush();
    state.scripting.libs = Default::default();
    if let Err(e) = engine::restore_functions(state, &aux, true) {
        tracing::warn!("Replica: function libraries of the master's snapshot: {e}");
    }
    // Kept as our own snapshot, as Redis does with the file it received.
    let _ = std::fs::rename(path, engine::snapshot_path(state));
    state.repl.replid = replid.to_string();
    state.repl.replid2 = super::NULL_REPLID.to_string();
    state.repl.second_offset = -1;
    state.journal.set_offset(offset);
    super::reset_backlog(state);
    super::drop_replicas(state);
    if let Some(m) = state.repl.master.as_mut() {
        m.synced = true;
        m.db = 0;
    }
    tracing::warn!("MASTER <-> REPLICA sync: Finished with success");
    Ok(())
}

/// `+CONTINUE [newid]`: the master may have a new id (it was promoted); ours follows, and the
/// old one stays valid for our own replicas as the second id.
fn continue_with(
    server: &Rc<RefCell<Server>>,
    new_id: Option<&str>,
    generation: u64,
) -> Result<(), String> {
    with_link(server, generation, |_| ())?;
    let mut srv = server.borrow_mut();
    let state = &mut srv.state;
    if let Some(id) = new_id {
        if id != state.repl.replid {
            state.repl.replid2 = std::mem::replace(&mut state.repl.replid, id.to_string());
            state.repl.second_offset = state.journal.offset() as i64 + 1;
            super::drop_replicas(state);
        }
    }
    super::ensure_feed(state);
    Ok(())
}

/// Applies the master's stream until the link breaks, acknowledging the offset every second
/// and whenever the master asks (`REPLCONF GETACK`).
async fn apply_stream(
    server: &Rc<RefCell<Server>>,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    generation: u64,
) -> Result<(), String> {
    let (client_id, db) = with_link(server, generation, |m| {
        m.state = LinkState::Connected;
        m.last_io = Some(Instant::now());
        m.down_since = None;
        (m.client_id, m.db)
    })?;
    tracing::warn!("MASTER <-> REPLICA sync: Finished with success, streaming from the master.");
    let mut client = master_client(client_id, stream);
    client.db = db;
    // Listed (CLIENT LIST, flags=M) and killable (CLIENT KILL cuts the link) like any client.
    server.borrow_mut().state.clients.insert(client_id, client.shared.clone());
    let result = stream_loop(server, stream, buf, generation, &mut client).await;
    server.borrow_mut().state.clients.remove(&client_id);
    result
}

/// The body of [`apply_stream`].
async fn stream_loop(
    server: &Rc<RefCell<Server>>,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    generation: u64,
    client: &mut Client,
) -> Result<(), String> {
    let shared = client.shared.clone();
    let max_bulk = usize::MAX >> 1;
    let mut parser = RequestParser::new(max_bulk);
    let wake = server.borrow().state.repl.wake.clone();
    let timeout = Duration::from_secs(repl_timeout(server));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let getack = apply_buffered(server, client, &mut parser, buf, generation)?;
        if getack {
            send_ack(server, stream).await?;
        }
        tokio::select! {
            r = stream.read_buf(buf) => match r {
                Ok(0) => return Err("master closed the connection".into()),
                Err(e) => return Err(e.to_string()),
                Ok(_) => {
                    with_link(server, generation, |m| m.last_io = Some(Instant::now()))?;
                }
            },
            _ = tick.tick() => {
                let idle = with_link(server, generation, |m| m.last_io.map(|t| t.elapsed()))?;
                if idle.is_some_and(|d| d > timeout) {
                    return Err("MASTER timeout: no data nor PING received...".into());
                }
                send_ack(server, stream).await?;
            }
            _ = wake.notified() => {
                with_link(server, generation, |_| ())?;
            }
            _ = shared.wake.notified() => {
                if shared.killed.get() {
                    return Err("the master link was killed".into());
                }
            }
        }
    }
}

/// The internal client that runs the master's commands.
fn master_client(id: u64, stream: &TcpStream) -> Client {
    let peer = stream.peer_addr().unwrap_or_else(|_| ([127, 0, 0, 1], 0).into());
    let local = stream.local_addr().unwrap_or(peer);
    let mut info = ClientInfo::new(id, peer, local, -1);
    info.flags = "M".into();
    Client::new(id, Rc::new(ClientShared::new(info)), true)
}

/// Runs every complete command buffered from the master, in loading mode, then counts the
/// bytes in the offset and hands them, unchanged, to this server's own replicas. Returns
/// whether the master asked for an acknowledgement.
fn apply_buffered(
    server: &Rc<RefCell<Server>>,
    client: &mut Client,
    parser: &mut RequestParser,
    buf: &mut BytesMut,
    generation: u64,
) -> Result<bool, String> {
    let mut srv = server.borrow_mut();
    if srv.state.repl.generation != generation {
        return Err("replication target changed".into());
    }
    let srv = &mut *srv;
    srv.state.begin_batch();
    // The bytes go to our replicas verbatim below; the commands must not be re-encoded.
    let tap = srv.state.journal.set_tap(None);
    let offset = srv.state.journal.offset();
    srv.ks.loading = true;
    let mut out = ReplyBuf::new(Resp::V2);
    let mut getack = false;
    let mut failure = None;
    // Without it nearly all of a replica's time went to waiting for the key table's lines.
    let mut prefetch = crate::server::connection::Prefetch::default();
    loop {
        prefetch.before_parse(&srv.ks, client.db, buf, parser);
        match parser.parse(buf, false) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                failure = Some(format!("protocol error from master: {}", e.0));
                break;
            }
        }
        let argv: SmallVec<[&[u8]; 8]> = match parser.args_source() {
            ArgSource::Buffer => parser.ranges().iter().map(|r| &buf[r.clone()]).collect(),
            ArgSource::Inline => parser.inline_args().iter().map(Vec::as_slice).collect(),
        };
        if argv.is_empty() {
            continue;
        }
        let is_getack = argv.len() >= 2
            && argv[0].eq_ignore_ascii_case(b"replconf")
            && argv[1].eq_ignore_ascii_case(b"getack");
        if is_getack {
            getack = true;
            continue;
        }
        out.buf.clear();
        crate::dispatch::execute(srv, client, &mut out, &argv);
        if out.buf.first() == Some(&b'-') {
            log_error_reply(&mut srv.state, &out.buf, &argv);
        }
    }
    srv.ks.loading = false;
    let consumed = parser.consumed();
    srv.state.journal.set_tap(tap);
    srv.state.journal.set_offset(offset);
    srv.state.journal.feed_raw(&buf[..consumed]);
    buf.advance(consumed);
    parser.discard_front(consumed);
    srv.state.wake_ready_clients();
    srv.state.end_batch();
    if let Some(m) = srv.state.repl.master.as_mut() {
        m.db = client.db;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(getack),
    }
}

/// A command from the master failed here: the data may have diverged. Logged as Redis does
/// (`unexpected_error_replies` in INFO stats); the reply itself never reaches the master.
fn log_error_reply(state: &mut ServerState, reply: &[u8], argv: &[&[u8]]) {
    let line = reply.split(|&b| b == b'\r').next().unwrap_or(reply);
    let text = String::from_utf8_lossy(&line[1..line.len().min(4097)]);
    let name =
        crate::dispatch::resolve(argv).map_or_else(|_| "<unknown>".into(), |(_, s)| s.full_name());
    tracing::warn!(
        "== CRITICAL == This replica is sending an error to its master: '{text}' after \
         processing the command '{name}'"
    );
    state.stats.unexpected_error_replies += 1;
}

/// `REPLCONF ACK <offset>`.
async fn send_ack(server: &Rc<RefCell<Server>>, stream: &mut TcpStream) -> Result<(), String> {
    let offset = server.borrow().state.journal.offset().to_string();
    let mut out = Vec::new();
    crate::journal::encode_command(&mut out, &["REPLCONF", "ACK", &offset]);
    stream.write_all(&out).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_of_both_payload_forms() {
        assert!(matches!(parse_framing(b"$123"), Ok(Framing::Len(123))));
        let mark = [b'a'; EOF_MARK_LEN];
        let head = [&b"$EOF:"[..], &mark].concat();
        assert!(matches!(parse_framing(&head), Ok(Framing::Mark(m)) if m == mark));
        let bad = parse_framing(b"$EOF:short").err().unwrap();
        assert_eq!(bad, "Bad protocol from MASTER: '$EOF:short'");
        assert!(parse_framing(b"+OK").is_err());
    }

    /// The mark may arrive split over reads; the payload stops right before it and what
    /// follows it (the stream) stays in the buffer.
    #[test]
    fn marked_payload_ends_at_the_mark_across_reads() {
        let mark = b"0123456789abcdef0123456789abcdef01234567".to_vec();
        let framing = Framing::Mark(mark.clone());
        let payload: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let wire = [&payload[..], &mark, b"*1\r\n$4\r\nPING\r\n"].concat();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut buf = BytesMut::new();
        let mut left = 0;
        let mut done = false;
        let mut fed = 0;
        for piece in wire.chunks(17) {
            assert!(!done, "ended early");
            buf.extend_from_slice(piece);
            fed += piece.len();
            done = take_payload(&mut buf, &mut file, &framing, &mut left).unwrap();
            if done {
                break;
            }
        }
        assert!(done);
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), payload);
        // What followed the mark in the last read stays for the stream.
        let rest_start = payload.len() + mark.len();
        assert_eq!(&buf[..], &wire[rest_start..fed]);
    }
}
