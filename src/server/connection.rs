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

use super::client::{Client, ClientInfo, ClientShared, ReplyMode};
use super::Server;
use crate::dispatch;
use crate::protocol::decode::ArgSource;
use crate::protocol::{ReplyBuf, RequestParser, Resp};

/// Read granularity, Redis's `PROTO_IOBUF_LEN`.
const READ_CHUNK: usize = 16 * 1024;

/// Registers the client, runs it to completion, and unregisters it.
pub async fn serve(server: Rc<RefCell<Server>>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let peer = match stream.peer_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let local = stream.local_addr().unwrap_or(peer);
    let (id, shared, authed, max_bulk) = {
        let mut srv = server.borrow_mut();
        let st = &mut srv.state;
        let id = st.next_client_id;
        st.next_client_id += 1;
        st.stats.total_connections_received += 1;
        let now = Instant::now();
        let shared = Rc::new(ClientShared {
            info: RefCell::new(ClientInfo {
                id,
                addr: peer,
                laddr: local,
                fd: raw_fd(&stream),
                name: None,
                lib_name: None,
                lib_ver: None,
                created: now,
                last_interaction: now,
                db: 0,
                last_cmd: "NULL".into(),
                resp: 2,
                qbuf: 0,
                qbuf_free: 0,
                obl: 0,
                omem: 0,
                tot_mem: 0,
                multi: -1,
                no_evict: false,
                flags: "N".into(),
                user: "default".into(),
            }),
            killed: std::cell::Cell::new(false),
            wake: tokio::sync::Notify::new(),
        });
        if st.clients.len() as i64 >= st.config.maxclients {
            st.stats.rejected_connections += 1;
            drop(srv);
            let mut stream = stream;
            let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
            return;
        }
        st.clients.insert(id, shared.clone());
        (id, shared, !st.auth_required(), st.config.proto_max_bulk_len as usize)
    };
    let mut conn = Connection {
        server: server.clone(),
        stream,
        inbuf: BytesMut::with_capacity(READ_CHUNK),
        parser: RequestParser::new(max_bulk),
        out: ReplyBuf::new(Resp::V2),
        client: Client::new(id, shared.clone(), authed),
    };
    conn.run().await;
    server.borrow_mut().state.clients.remove(&id);
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
}

impl Connection {
    async fn run(&mut self) {
        loop {
            if self.inbuf.capacity() - self.inbuf.len() < READ_CHUNK / 4 {
                self.inbuf.reserve(READ_CHUNK);
            }
            let shared = self.client.shared.clone();
            let n = tokio::select! {
                biased;
                _ = shared.wake.notified(), if !shared.killed.get() => {
                    if shared.killed.get() { return; }
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
            if !self.out.is_empty() {
                if self.stream.write_all(&self.out.buf).await.is_err() {
                    return;
                }
                self.out.buf.clear();
            }
            if !keep_going || self.client.close_after_reply || shared.killed.get() {
                return;
            }
        }
    }

    /// Parses and executes everything buffered. Returns false if the connection must close.
    fn process(&mut self, nread: usize) -> bool {
        let server = self.server.clone();
        let mut srv = server.borrow_mut();
        srv.state.stats.net_input_bytes += nread as u64;
        let out_before = self.out.len();
        let mut keep = true;
        loop {
            let auth_required = !self.client.authenticated;
            match self.parser.parse(&self.inbuf, auth_required) {
                Ok(true) => {
                    let argv: SmallVec<[&[u8]; 8]> = match self.parser.args_source() {
                        ArgSource::Buffer => {
                            self.parser.ranges().iter().map(|r| &self.inbuf[r.clone()]).collect()
                        }
                        ArgSource::Inline => {
                            self.parser.inline_args().iter().map(Vec::as_slice).collect()
                        }
                    };
                    let reply_start = self.out.len();
                    let mode_before = self.client.reply_mode;
                    dispatch::execute(&mut srv, &mut self.client, &mut self.out, &argv);
                    apply_reply_mode(&mut self.client, &mut self.out, mode_before, reply_start);
                    if self.client.close_after_reply || srv.state.shutdown.is_some() {
                        break;
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    self.out.error(&e.0);
                    tracing::info!("Protocol error ({}) from client: id={}", e.0, self.client.id);
                    keep = false;
                    break;
                }
            }
        }
        let consumed = self.parser.consumed();
        self.inbuf.advance(consumed);
        self.parser.discard_front(consumed);
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
        srv.state.stats.net_output_bytes += (self.out.len() - out_before) as u64;
        self.out.resp = self.client.resp();
        let mut info = self.client.shared.info.borrow_mut();
        info.last_interaction = Instant::now();
        info.db = self.client.db;
        info.last_cmd = self.client.last_cmd.full_name();
        info.qbuf = self.inbuf.len();
        info.qbuf_free = self.inbuf.capacity() - self.inbuf.len();
        drop(info);
        if let Some(super::Shutdown::Command { .. }) = srv.state.shutdown {
            srv.state.shutdown_notify.notify_one();
        }
        keep
    }
}

/// Applies CLIENT REPLY OFF / SKIP to the reply just written.
fn apply_reply_mode(client: &mut Client, out: &mut ReplyBuf, before: ReplyMode, reply_start: usize) {
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
