//! One client connection: read bytes, parse requests, dispatch them, write the replies.
//!
//! Pipelining falls out of the structure: everything one read delivered is parsed and executed
//! in a single borrow of the server, the replies accumulate in one output buffer, and that buffer
//! is written with one `write_all` before the next read. A client that pipelines without reading
//! its replies therefore stalls on its own socket instead of growing server memory.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use smallvec::SmallVec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::blocking::UnblockMode;
use super::client::{pause, Client, ClientInfo, ClientShared, ReplyMode};
use crate::scripting::Scripting;
use super::{Server, ServerState};
use crate::dispatch;
use crate::keyspace::table::Table;
use crate::keyspace::Keyspace;
use crate::protocol::decode::{peek_key, ArgSource};
use crate::protocol::{ReplyBuf, RequestParser, Resp};

/// Read granularity, Redis's `PROTO_IOBUF_LEN`.
const READ_CHUNK: usize = 16 * 1024;
/// Input and output buffers grown past this by one large request or reply are released once
/// empty, as Redis shrinks the query buffers of its clients: a connection that once sent a
/// 100k-argument SADD must not hold megabytes for the rest of its life.
const KEEP_BUFFER: usize = 256 * 1024;

/// The outcome of accepting a connection.
pub enum Admission {
    /// Registered in `ServerState::clients`.
    Client { id: u64, shared: Rc<ClientShared>, authed: bool, max_bulk: usize },
    /// Refused with this reply (maxclients, protected mode).
    Refused(&'static str),
    /// The peer was already gone.
    Gone,
}

/// Registers a new connection as a client (Redis's `acceptCommonHandler`). A pure state change,
/// so that a busy script can admit connections too (see `scripting::busy`).
pub fn admit(st: &mut ServerState, stream: &TcpStream) -> Admission {
    let _ = stream.set_nodelay(true);
    keepalive(stream, st.config.tcp_keepalive);
    let Ok(peer) = stream.peer_addr() else {
        return Admission::Gone;
    };
    let local = stream.local_addr().unwrap_or(peer);
    let id = st.next_client_id;
    st.next_client_id += 1;
    st.stats.total_connections_received += 1;
    let refusal = if st.clients.len() as i64 >= st.config.maxclients {
        Some(MAXCLIENTS_REACHED)
    } else if st.config.protected_mode && !st.auth_required() && !is_local(&peer) {
        Some(PROTECTED_MODE_DENIED)
    } else {
        None
    };
    if let Some(msg) = refusal {
        st.stats.rejected_connections += 1;
        return Admission::Refused(msg);
    }
    let shared = Rc::new(ClientShared::new(ClientInfo::new(id, peer, local, raw_fd(stream))));
    shared.sock.set(crate::server::client::SocketId::of(raw_fd(stream)));
    st.clients.insert(id, shared.clone());
    Admission::Client {
        id,
        shared,
        authed: !st.auth_required(),
        max_bulk: st.config.proto_max_bulk_len.max(0) as usize,
    }
}

/// Serves an admitted connection until it closes, then unregisters it.
pub async fn run_admitted(server: Rc<RefCell<Server>>, mut stream: TcpStream, adm: Admission) {
    let (id, shared, authed, max_bulk) = match adm {
        Admission::Client { id, shared, authed, max_bulk } => (id, shared, authed, max_bulk),
        Admission::Refused(msg) => {
            let _ = stream.write_all(msg.as_bytes()).await;
            return;
        }
        Admission::Gone => return,
    };
    let mut conn = Connection {
        server: server.clone(),
        stream,
        inbuf: BytesMut::with_capacity(READ_CHUNK),
        parser: RequestParser::new(max_bulk),
        out: ReplyBuf::new(Resp::V2),
        client: Client::new(id, shared.clone(), authed)
            .with_user(server.borrow().state.acl.default.clone()),
        pending: None,
        blocked: None,
    };
    conn.run().await;
    let mut srv = server.borrow_mut();
    crate::commands::multi::reset(&mut srv.state, &mut conn.client);
    srv.state.blocking.unblock(id);
    srv.state.wake_ready_clients();
    srv.state.tracking_disable(&shared);
    srv.state.clients.remove(&id);
    srv.state.monitors.retain(|m| !Rc::ptr_eq(m, &shared));
    srv.state.pubsub.remove_client(&shared);
    crate::replication::forget_client(&mut srv.state, id);
    super::shutdown::forget_client(&mut srv.state, id);
}

const MAXCLIENTS_REACHED: &str = "-ERR max number of clients reached\r\n";

/// `tcp-keepalive`: probes an idle peer after `secs` seconds, then every third of that, and
/// gives up after 3 unanswered probes (Redis's `anetKeepAlive`), so that connections to peers
/// that vanished without a FIN are eventually closed. 0 leaves the socket as it is.
fn keepalive(stream: &TcpStream, secs: i64) {
    if secs <= 0 {
        return;
    }
    let secs = secs as u64;
    let ka = socket2::TcpKeepalive::new()
        .with_time(std::time::Duration::from_secs(secs))
        .with_interval(std::time::Duration::from_secs((secs / 3).max(1)))
        .with_retries(3);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&ka);
}

/// Redis's refusal for a non-loopback peer while protected mode is on and no password is set.
const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because \
protected mode is enabled and no password is set for the default user. In this mode \
connections are only accepted from the loopback interface. If you want to connect from \
external computers to Redis you may adopt one of the following solutions: 1) Just disable \
protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface \
by connecting to Redis from the same host the server is running, however MAKE SURE Redis is \
not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change \
permanent. 2) Alternatively you can just disable the protected mode by editing the Redis \
configuration file, and setting the protected mode option to 'no', and then restarting the \
server. 3) If you started the server manually just for testing, restart it with the \
'--protected-mode no' option. 4) Setup a an authentication password for the default user. \
NOTE: You only need to do one of the above things in order for the server to start accepting \
connections from the outside.\r\n";

/// Loopback peers (including IPv4-mapped IPv6 ones) are always welcome in protected mode.
fn is_local(peer: &std::net::SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether a command is held by a WRITE pause: Redis holds anything that may replicate,
/// including the EXEC of a transaction that queued such a command, and scripts that may
/// write (judged by their flags).
fn may_write(scripting: &Scripting, client: &Client, argv: &[Vec<u8>]) -> bool {
    use crate::commands::flags::{MAY_REPLICATE, WRITE};
    let Some((_, top)) = crate::commands::registry().lookup(&argv[0]) else {
        return false;
    };
    if let Some(w) = crate::commands::scripting::script_may_write(scripting, argv) {
        return w;
    }
    if top.name == "exec" {
        return client.multi.as_ref().is_some_and(|m| m.any_has(WRITE | MAY_REPLICATE));
    }
    let spec = match argv.get(1).and_then(|a| top.find_sub(a)) {
        Some(s) if !top.subcommands.is_empty() => s,
        _ => top,
    };
    spec.has(WRITE | MAY_REPLICATE)
}

#[cfg(unix)]
fn raw_fd(s: &TcpStream) -> i32 {
    use std::os::fd::AsRawFd;
    s.as_raw_fd()
}

struct Connection {
    server: Rc<RefCell<Server>>,
    stream: TcpStream,
    inbuf: BytesMut,
    parser: RequestParser,
    out: ReplyBuf,
    client: Client,
    /// A command held back by CLIENT PAUSE; it runs before anything else once released.
    pending: Option<Vec<Vec<u8>>>,
    /// The command this client is blocked in (BLPOP, ...); re-run whenever the client is woken.
    blocked: Option<Vec<Vec<u8>>>,
}

impl Connection {
    async fn run(&mut self) {
        loop {
            // SYNC / PSYNC: from here on the connection carries the replication stream.
            if let Some(ask) = crate::replication::take_handoff(&self.server, self.client.id) {
                let server = self.server.clone();
                let (stream, inbuf) = (&mut self.stream, &mut self.inbuf);
                crate::replication::master::serve_replica(server, stream, inbuf, &self.client, ask)
                    .await;
                return;
            }
            if self.blocked.is_some() {
                if !self.flush(true).await || !self.wait_blocked().await {
                    return;
                }
                let keep = self.process(0);
                if !self.flush(keep).await {
                    return;
                }
                continue;
            }
            if self.pending.is_some() {
                if !self.wait_pause().await {
                    return;
                }
                let keep = self.process(0);
                if !self.flush(keep).await {
                    return;
                }
                continue;
            }
            // A buffer given back while idle (capacity 0) is not taken again until the client
            // sends something: the first read then takes a small piece, the next ones a chunk.
            let room = self.inbuf.capacity() - self.inbuf.len();
            if room < READ_CHUNK / 4 && self.inbuf.capacity() > 0 {
                self.inbuf.reserve(READ_CHUNK);
            }
            let shared = self.client.shared.clone();
            if !shared.busy_multi.borrow().is_empty() {
                let server = self.server.clone();
                let mut srv = server.borrow_mut();
                crate::commands::multi::apply_busy_changes(&mut srv.state, &mut self.client);
            }
            let stolen = std::mem::take(&mut *shared.stolen.borrow_mut());
            if !stolen.is_empty() {
                // Input a busy script read from our socket comes before anything read now.
                self.inbuf.extend_from_slice(&stolen);
                let keep = self.process(stolen.len());
                if !self.flush(keep).await {
                    return;
                }
                continue;
            }
            let n = tokio::select! {
                biased;
                _ = shared.wake.notified(), if !shared.killed.get() => {
                    if shared.trim.take() {
                        self.release_idle_buffers();
                    }
                    if shared.killed.get() || !self.write_pushed().await { return; }
                    continue;
                }
                r = self.stream.read_buf(&mut self.inbuf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                },
            };
            if shared.killed.get() {
                return;
            }
            let keep_going = self.process(n);
            super::busypoll::touch();
            if !self.out.is_empty() {
                // Why: like Redis (replies written in `beforeSleep`), let every other client
                // that this event-loop turn made readable run its commands before any reply
                // goes out. The replies then reach the peer in one burst: a benchmark client
                // (or any multiplexing client) is woken once per turn instead of once per
                // reply, and on a 2-core machine each such cross-CPU wake-up costs more than
                // the command itself. `yield_now` re-queues this task behind the others.
                tokio::task::yield_now().await;
            }
            if !self.flush(keep_going).await {
                return;
            }
        }
    }

    /// Gives back the input and output buffers of an idle connection, if empty (Redis frees
    /// the query buffer of a client idle for over two seconds). An idle connection then holds
    /// no buffer memory: 16 KiB each were most of what thousands of pooled, mostly idle
    /// connections cost. The next read allocates them again.
    fn release_idle_buffers(&mut self) {
        if self.inbuf.is_empty() {
            self.inbuf = BytesMut::new();
        }
        if self.out.is_empty() {
            self.out.buf = BytesMut::new();
        }
        self.client.qbuf_free = self.inbuf.capacity() - self.inbuf.len();
        let mut info = self.client.shared.info.borrow_mut();
        info.qbuf_free = self.client.qbuf_free;
        info.rbs = self.out.buf.capacity();
    }

    /// Writes the pending replies. Returns false if the connection must close.
    async fn flush(&mut self, keep_going: bool) -> bool {
        if !self.out.is_empty() {
            if !self.await_durable().await {
                return false;
            }
            let shared = self.client.shared.clone();
            if !write_killable(&mut self.stream, &self.out.buf, &shared).await {
                return false;
            }
            self.out.buf.clear();
            if self.out.buf.capacity() > KEEP_BUFFER {
                self.out.buf = BytesMut::with_capacity(READ_CHUNK);
            }
        }
        keep_going && !self.client.close_after_reply && !self.client.shared.killed.get()
    }

    /// Hands the journal's new bytes to the append-only log and holds the replies until the log
    /// has them up to the journal's current offset: fsynced with `appendfsync always` (group
    /// commit: every client of the event-loop turn waits for the same fsync), written
    /// otherwise. So no reply reveals a write a crash could lose. See `aof::commit_point`.
    /// Returns false if the log stopped (the connection then closes unanswered).
    async fn await_durable(&mut self) -> bool {
        let commit = crate::aof::commit_point(&mut self.server.borrow_mut().state);
        match commit {
            Some(c) => c.wait().await,
            None => true,
        }
    }

    /// Writes what other clients queued for this one (Pub/Sub messages, MONITOR lines) until
    /// nothing is left. Returns false if the connection must close.
    async fn write_pushed(&mut self) -> bool {
        let shared = self.client.shared.clone();
        loop {
            let pushed = shared.take_pushed();
            if pushed.is_empty() {
                return !shared.killed.get();
            }
            if !write_killable(&mut self.stream, &pushed, &shared).await {
                return false;
            }
        }
    }

    /// Waits while CLIENT PAUSE holds the pending command. Returns false if the client was
    /// killed meanwhile.
    async fn wait_pause(&mut self) -> bool {
        let shared = self.client.shared.clone();
        let mut held = None;
        loop {
            let Some(argv) = &self.pending else {
                return true;
            };
            let writes = may_write(&self.server.borrow().state.scripting, &self.client, argv);
            let Some(end) = pause::holds(writes) else {
                return true;
            };
            held.get_or_insert_with(pause::Held::new);
            let changed = pause::changed();
            tokio::select! {
                _ = tokio::time::sleep_until(end.into()) => {}
                _ = changed.notified() => {}
                _ = shared.wake.notified() => {
                    if shared.killed.get() {
                        return false;
                    }
                }
            }
        }
    }

    /// Waits while the client is blocked: until it is woken (its command is then re-run and may
    /// block again), its timeout fires (null reply), or it disconnects. Input that arrives
    /// meanwhile stays buffered. Returns false if the connection must close.
    async fn wait_blocked(&mut self) -> bool {
        let shared = self.client.shared.clone();
        while self.blocked.is_some() {
            // Messages for a blocked (RESP3, subscribed) client go out while it waits.
            if !self.out.is_empty() && !self.flush(true).await {
                return false;
            }
            let deadline = self.server.borrow().state.blocking.get(self.client.id)
                .and_then(|b| b.deadline);
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            if self.inbuf.capacity() - self.inbuf.len() < READ_CHUNK / 4 {
                self.inbuf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                _ = shared.wake.notified() => {
                    if shared.killed.get() {
                        return false;
                    }
                    let unblock = self.server.borrow_mut().state.blocking.take_unblock(self.client.id);
                    match unblock {
                        Some(UnblockMode::Timeout) => self.time_out_blocked(),
                        Some(UnblockMode::Error) => {
                            self.end_block();
                            self.out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
                        }
                        None => self.rerun_blocked(),
                    }
                }
                _ = sleep => self.time_out_blocked(),
                r = self.stream.read_buf(&mut self.inbuf) => match r {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                },
            }
        }
        true
    }

    /// Re-runs the blocked command after a wake-up.
    fn rerun_blocked(&mut self) {
        let Some(argv) = self.blocked.take() else {
            return;
        };
        let server = self.server.clone();
        let mut srv = server.borrow_mut();
        srv.state.begin_batch();
        srv.ks.expiry_paused = pause::holds(true).is_some();
        let out_before = self.out.len();
        let refs: SmallVec<[&[u8]; 8]> = argv.iter().map(Vec::as_slice).collect();
        let again = execute_blocking(&mut srv, &mut self.client, &mut self.out, &refs);
        drop(refs);
        if again {
            self.blocked = Some(argv);
        } else {
            srv.state.blocking.unblock(self.client.id);
            srv.state.wake_ready_clients();
        }
        end_of_batch(&mut srv, &self.client, &mut self.out);
        srv.state.stats.net_output_bytes += (self.out.len() - out_before) as u64;
        srv.state.end_batch();
    }

    /// Ends a block whose timeout fired: Redis replies with a null array.
    /// Ends the block without running the command again (timeout, or CLIENT UNBLOCK).
    fn end_block(&mut self) {
        let argv = self.blocked.take();
        let mut srv = self.server.borrow_mut();
        let first_run = srv.state.blocking.get(self.client.id).map_or(0, |b| b.first_run_us);
        srv.state.blocking.unblock(self.client.id);
        if let Some(argv) = argv {
            let refs: SmallVec<[&[u8]; 8]> = argv.iter().map(Vec::as_slice).collect();
            crate::dispatch::blocked_command_ended(&mut srv.state, &self.client, &refs, first_run);
        }
        srv.state.wake_ready_clients();
    }

    /// The block timed out (or CLIENT UNBLOCK ... TIMEOUT): a null array, like Redis.
    fn time_out_blocked(&mut self) {
        self.end_block();
        self.out.null_array();
    }

    /// Parses and executes everything buffered. Returns false if the connection must close.
    fn process(&mut self, nread: usize) -> bool {
        let server = self.server.clone();
        let mut srv = server.borrow_mut();
        srv.state.begin_batch();
        srv.ks.expiry_paused = pause::holds(true).is_some();
        srv.state.stats.net_input_bytes += nread as u64;
        self.client.qbuf = self.inbuf.len();
        self.client.qbuf_free = self.inbuf.capacity() - self.inbuf.len();
        if self.out.buf.capacity() == 0 {
            // Given back while idle: replies start with a whole buffer again rather than
            // growing one from nothing a few bytes at a time.
            self.out.buf.reserve(READ_CHUNK);
        }
        let out_before = self.out.len();
        let mut keep = true;
        if let Some(argv) = self.pending.take() {
            if pause::holds(may_write(&srv.state.scripting, &self.client, &argv)).is_some() {
                self.pending = Some(argv);
                srv.state.end_batch();
                return true;
            }
            let refs: SmallVec<[&[u8]; 8]> = argv.iter().map(Vec::as_slice).collect();
            let blocked = execute_blocking(&mut srv, &mut self.client, &mut self.out, &refs);
            drop(refs);
            if blocked {
                self.blocked = Some(argv);
            }
        }
        let mut prefetch = Prefetch::default();
        loop {
            if self.pending.is_some() || self.client.close_after_reply || self.blocked.is_some() {
                break;
            }
            prefetch.before_parse(&srv.ks, self.client.db, &self.inbuf, &self.parser);
            let auth_required = !self.client.authenticated;
            // Read per request so CONFIG SET proto-max-bulk-len applies to the next one.
            self.parser.max_bulk_len = srv.state.config.proto_max_bulk_len.max(0) as usize;
            match self.parser.parse(&self.inbuf, auth_required) {
                Ok(true) => {
                    let argv: SmallVec<[&[u8]; 8]> = match self.parser.args_source() {
                        ArgSource::Buffer => self
                            .parser
                            .ranges()
                            .iter()
                            .map(|r| &self.inbuf[r.clone()])
                            .collect(),
                        ArgSource::Inline => self
                            .parser
                            .inline_args()
                            .iter()
                            .map(Vec::as_slice)
                            .collect(),
                    };
                    if pause::holds(true).is_some() {
                        let owned: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
                        if pause::holds(may_write(&srv.state.scripting, &self.client, &owned)).is_some() {
                            self.pending = Some(owned);
                            break;
                        }
                    }
                    if execute_blocking(&mut srv, &mut self.client, &mut self.out, &argv) {
                        self.blocked = Some(argv.iter().map(|a| a.to_vec()).collect());
                        break;
                    }
                    if self.client.close_after_reply || srv.state.shutdown.is_some() {
                        break;
                    }
                    if srv.state.repl.is_handoff(self.client.id) {
                        break;
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    self.out.error(&format!("ERR {}", e.0));
                    tracing::info!(
                        "Protocol error ({}) from client: id={}",
                        e.0,
                        self.client.id
                    );
                    keep = false;
                    break;
                }
            }
        }
        let consumed = self.parser.consumed();
        self.inbuf.advance(consumed);
        self.parser.discard_front(consumed);
        if self.inbuf.is_empty() && self.inbuf.capacity() > KEEP_BUFFER {
            self.inbuf = BytesMut::new();
        }
        let limit = srv.state.config.client_query_buffer_limit as usize;
        if keep && self.inbuf.len() > limit {
            srv.state.stats.client_query_buffer_limit_disconnections += 1;
            tracing::warn!(
                "Closing client that reached max query buffer length: id={} qbuf={}",
                self.client.id,
                self.inbuf.len()
            );
            keep = false;
        }
        end_of_batch(&mut srv, &self.client, &mut self.out);
        srv.state.stats.net_output_bytes += (self.out.len() - out_before) as u64;
        self.out.resp = self.client.resp();
        let mut info = self.client.shared.info.borrow_mut();
        info.last_interaction = Instant::now();
        info.db = self.client.db;
        info.last_cmd = self.client.last_cmd;
        info.qbuf = self.inbuf.len();
        info.qbuf_free = self.inbuf.capacity() - self.inbuf.len();
        info.rbs = self.out.buf.capacity();
        info.rbp = info.rbp.max(self.out.len());
        drop(info);
        srv.state.end_batch();
        if let Some(super::Shutdown::Command { .. }) = srv.state.shutdown {
            srv.state.shutdown_notify.notify_one();
        }
        keep
    }
}

/// Walks ahead of a parser over pipelined input, prefetching the keys of one window of
/// requests at a time (see [`prefetch_ahead`]). Also used by a replica applying its master's
/// stream, which is one long pipeline.
#[derive(Default)]
pub(crate) struct Prefetch {
    /// Input up to this offset has had its keys prefetched.
    ahead: usize,
}

impl Prefetch {
    /// Call before each parse: prefetches the next window once the parser has caught up
    /// with the last one (never in the middle of a request).
    pub(crate) fn before_parse(&mut self, ks: &Keyspace, db: usize, buf: &[u8], p: &RequestParser) {
        let at = p.consumed();
        if at >= self.ahead && !p.in_progress() {
            let db = db.min(ks.dbs.len() - 1);
            self.ahead = prefetch_ahead(&ks.dbs[db].main, buf, at);
        }
    }
}

/// Requests looked at per prefetch window: a `-P 16` batch at once.
const PREFETCH_WINDOW: usize = 16;

/// Prefetches the keys of the next pipelined requests in `buf` from `from` (see
/// [`Table::prefetch_batch`]) so that their lookups, made one after the other by the commands,
/// find the lines in cache. Looks at the second argument of each request, the first key of
/// nearly every command; a guess that is no key costs one useless prefetch. Returns the offset
/// covered; past a lone request (or input it cannot peek at) it returns the end of `buf`, so a
/// batch does at most one useless look.
fn prefetch_ahead<V>(table: &Table<V>, buf: &[u8], from: usize) -> usize {
    let mut keys: SmallVec<[&[u8]; PREFETCH_WINDOW]> = SmallVec::new();
    let mut at = from;
    while keys.len() < PREFETCH_WINDOW {
        let Some((key, next)) = peek_key(buf, at) else { break };
        keys.push(&buf[key]);
        at = next;
    }
    if keys.len() < 2 {
        return buf.len();
    }
    table.prefetch_batch(&keys);
    at
}

/// Runs one command, then wakes the clients its writes can serve. Returns true if the command
/// blocked the client (see [`super::blocking`]); it has written no reply then.
fn execute_blocking(srv: &mut Server, client: &mut Client, out: &mut ReplyBuf, argv: &[&[u8]]) -> bool {
    srv.state.blocking.reset_request();
    execute(srv, client, out, argv);
    let blocked = srv.state.blocking.take_request();
    srv.state.wake_ready_clients();
    blocked
}

/// Writes `buf`, giving up as soon as the client is killed: a peer that stopped reading must
/// not keep a killed connection (and its buffers) alive. While the write is pending its bytes
/// count as the client's pending output (`omem`, output buffer limits). Also the writer of a
/// replica's stream (`replication::master`).
pub(crate) async fn write_killable(stream: &mut TcpStream, buf: &[u8], shared: &ClientShared) -> bool {
    if shared.killed.get() {
        return false;
    }
    shared.inflight.set(buf.len());
    let consumed = std::cell::Cell::new(false);
    let killed = async {
        loop {
            shared.wake.notified().await;
            consumed.set(true);
            if shared.killed.get() {
                return;
            }
        }
    };
    let ok = tokio::select! {
        biased;
        r = stream.write_all(buf) => r.is_ok(),
        _ = killed => false,
    };
    shared.inflight.set(0);
    // A wake-up the kill watcher swallowed may have been meant for queued messages or an
    // unblocked command: hand it back.
    if ok && consumed.get() {
        shared.wake.notify_one();
    }
    ok
}

/// Runs one command and applies CLIENT REPLY to its reply.
///
/// Messages other clients queued for this one before it ran go out first; messages the
/// command itself caused for its own client (a RESP3 client publishing to a channel it listens
/// to, or its own keyspace events) go right before the command's reply, where Redis puts them,
/// and are not silenced by CLIENT REPLY OFF (Redis 7.0 delivers pushes regardless).
fn execute(srv: &mut Server, client: &mut Client, out: &mut ReplyBuf, argv: &[&[u8]]) {
    take_pushed_into(client, out, None);
    let reply_start = out.len();
    let mode_before = client.reply_mode;
    srv.state.tracking.current = client.id;
    if srv.state.tracking.clients > 0 {
        srv.state.tracking_limit();
    }
    dispatch::execute(srv, client, out, argv);
    apply_reply_mode(client, out, mode_before, reply_start);
    take_pushed_into(client, out, Some(reply_start));
    // Invalidations of keys this client changed itself follow its reply (Redis 7.0).
    srv.state.tracking_flush_pending();
    srv.state.tracking.current = 0;
    take_pushed_into(client, out, None);
    if srv.state.tracking.clients > 0 {
        end_caching_override(client, argv);
    }
}

/// CLIENT CACHING applies to the next command only; as in Redis, commands queued in MULTI and
/// CLIENT subcommands keep it.
fn end_caching_override(client: &Client, argv: &[&[u8]]) {
    let is_client = argv.first().is_some_and(|a| a.eq_ignore_ascii_case(b"client"));
    let keep = client.multi.is_some() || is_client;
    if !keep {
        if let Some(t) = client.shared.tracking.borrow_mut().as_mut() {
            t.caching = false;
        }
    }
}

/// End of a batch: BCAST invalidations collected so far go out (Redis's before-sleep step),
/// after the replies of the batch.
fn end_of_batch(srv: &mut Server, client: &Client, out: &mut ReplyBuf) {
    if srv.state.tracking.clients > 0 {
        srv.state.tracking_broadcast();
        take_pushed_into(client, out, None);
    }
}

/// Moves the client's queued messages into its reply buffer, at `at` or at the end.
fn take_pushed_into(client: &Client, out: &mut ReplyBuf, at: Option<usize>) {
    if client.shared.pushed.borrow().is_empty() {
        return;
    }
    let pushed = client.shared.take_pushed();
    match at {
        Some(at) if at < out.len() => {
            let tail = out.buf.split_off(at);
            out.buf.extend_from_slice(&pushed);
            out.buf.extend_from_slice(&tail);
        }
        _ => out.buf.extend_from_slice(&pushed),
    }
}

/// Applies CLIENT REPLY OFF / SKIP to the reply just written.
fn apply_reply_mode(
    client: &mut Client,
    out: &mut ReplyBuf,
    before: ReplyMode,
    reply_start: usize,
) {
    let suppress = match (before, client.reply_mode) {
        (_, ReplyMode::Off) => true,
        (_, ReplyMode::SkipNext) => {
            client.reply_mode = ReplyMode::Skipping;
            true
        }
        (ReplyMode::Skipping, ReplyMode::Skipping) => {
            client.reply_mode = ReplyMode::On;
            true
        }
        _ => false,
    };
    if suppress {
        out.truncate(reply_start);
    }
    // HELLO may have switched protocols mid-batch.
    out.resp = client.resp();
}
