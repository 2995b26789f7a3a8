//! Serving other clients while a slow script runs (Redis's `processEventsWhileBlocked` during
//! a script past `busy-reply-threshold`).
//!
//! A script runs inside its command's handler on the event loop thread, so no other
//! connection task can run until it returns. Instead, the instruction hook calls [`poll`]:
//! it reads, without blocking, from a duplicate of each idle client's socket (made the first
//! time, kept in its `ClientShared` until the script ends: see [`end`]), answers every
//! complete command with `-BUSY` (or runs SCRIPT KILL / FUNCTION KILL / SHUTDOWN NOSAVE), and
//! writes the replies straight to the socket.
//! An incomplete trailing command is kept in the client's `stolen` buffer, which its
//! connection task moves in front of its input once it runs again.
//!
//! Clients whose task holds unparsed input, and blocked clients, are left alone: their input
//! waits in the kernel until the script ends, which keeps every client's replies in order.

use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Busy;
use crate::commands::args::is;
use crate::commands::persistence::LOADING_ERROR;
use crate::dispatch::Ctx;
use crate::protocol::decode::ArgSource;
use crate::protocol::{ReplyBuf, RequestParser, Resp};
use crate::server::client::{BusyMulti, ClientShared};
use crate::server::ServerState;

/// Minimum time between two polls of the clients.
const POLL_EVERY: Duration = Duration::from_millis(10);

pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
pub const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands \
against the dataset. You can either wait the script termination or kill the server in a hard \
way using the SHUTDOWN NOSAVE command.";

/// Serves the other clients once (at most every [`POLL_EVERY`]).
pub fn poll(ctx: &mut Ctx<'_>, busy: &Rc<Busy>, argv: &[&[u8]]) {
    let now = Instant::now();
    if busy.last_poll.get().is_some_and(|t| now.duration_since(t) < POLL_EVERY) {
        return;
    }
    busy.last_poll.set(Some(now));
    accept_new_clients(ctx.srv);
    let me = ctx.client.id;
    let clients: Vec<Rc<ClientShared>> = ctx
        .srv
        .clients
        .iter()
        .filter(|(id, _)| **id != me && !ctx.srv.blocking.is_blocked(**id))
        .map(|(_, c)| c.clone())
        .collect();
    let max_bulk = ctx.srv.config.proto_max_bulk_len.max(0) as usize;
    let libs = &ctx.srv.scripting.libs;
    let view = View {
        busy,
        argv,
        libraries: libs.libs.len(),
        functions: libs.function_count(),
        loading: ctx.srv.loading_dataset(),
    };
    for c in clients {
        if c.killed.get() || c.info.borrow().qbuf > 0 {
            continue;
        }
        serve_client(&c, &view, max_bulk);
    }
}

/// After a script that served other clients: closes the duplicates of their sockets.
pub fn end(st: &ServerState, busy: &Busy) {
    if busy.last_poll.get().is_none() {
        return;
    }
    for c in st.clients.values() {
        c.dup.borrow_mut().take();
    }
}

/// Admits connections that arrived while the script runs, so that `redis-cli script kill` from a
/// new shell works as it does with Redis. They are registered clients at once (the loop below
/// answers them); an accept loop starts their connection tasks when the script ends.
fn accept_new_clients(st: &mut ServerState) {
    let mut accepted = Vec::new();
    for l in &st.listener_dups {
        while let Ok((sock, _)) = l.accept() {
            accepted.push(sock);
        }
    }
    if accepted.is_empty() {
        return;
    }
    for sock in accepted {
        if sock.set_nonblocking(true).is_err() {
            continue;
        }
        let Ok(stream) = tokio::net::TcpStream::from_std(sock) else {
            continue;
        };
        let admission = crate::server::connection::admit(st, &stream);
        st.admitted_while_busy.push((stream, admission));
    }
    st.admitted_notify.notify_one();
}

/// What the answers to other clients need to know about the running script.
struct View<'v> {
    busy: &'v Busy,
    argv: &'v [&'v [u8]],
    libraries: usize,
    functions: usize,
    /// The script runs while a log is replayed: Redis refuses commands not allowed during
    /// loading with `-LOADING` before it looks at the script.
    loading: bool,
}

/// Reads what `c` sent, answers its complete commands, keeps the incomplete rest.
fn serve_client(c: &ClientShared, view: &View<'_>, max_bulk: usize) {
    let mut dup = c.dup.borrow_mut();
    if dup.is_none() {
        // The duplicate shares the file description, so it is already non-blocking. Without
        // a descriptor to spare the client is left alone, as a blocked one is.
        *dup = c.sock.get().and_then(|s| s.duplicate());
    }
    let Some(sock) = dup.as_mut() else {
        return;
    };
    let mut stolen = c.stolen.borrow_mut();
    let before = stolen.len();
    let mut chunk = [0u8; 4096];
    loop {
        match sock.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => stolen.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        if stolen.len() > 1 << 20 {
            break;
        }
    }
    if stolen.len() == before {
        return;
    }
    // The connection task must look at the stolen bytes before reading again.
    c.wake.notify_one();
    let mut parser = RequestParser::new(max_bulk);
    let mut replies = Vec::new();
    let authed = true;
    loop {
        match parser.parse(&stolen, !authed) {
            Ok(true) => {
                let argv: Vec<Vec<u8>> = match parser.args_source() {
                    ArgSource::Buffer => {
                        parser.ranges().iter().map(|r| stolen[r.clone()].to_vec()).collect()
                    }
                    ArgSource::Inline => parser.inline_args().to_vec(),
                };
                let resp = if c.info.borrow().resp == 3 { Resp::V3 } else { Resp::V2 };
                if !answer_transaction(c, &argv, view, &mut replies) {
                    answer(&argv, view, resp, &mut replies);
                }
            }
            Ok(false) => break,
            Err(_) => break,
        }
    }
    let consumed = parser.consumed();
    stolen.drain(..consumed);
    write_all(sock, &replies);
}

/// MULTI, EXEC and DISCARD while busy, as Redis treats them: MULTI is allowed (so that a
/// pipelined transaction is never half refused), a command refused inside MULTI dooms the
/// transaction, and EXEC is refused with `EXECABORT`, ending it. The connection applies the
/// recorded changes when it runs again. Returns false for every other command.
fn answer_transaction(c: &ClientShared, argv: &[Vec<u8>], view: &View<'_>, out: &mut Vec<u8>)
    -> bool {
    let name = &argv[0];
    let in_multi = c.in_multi();
    let mut changes = c.busy_multi.borrow_mut();
    if is(name, "multi") && argv.len() == 1 {
        if in_multi {
            out.extend_from_slice(b"-ERR MULTI calls can not be nested\r\n");
        } else {
            changes.push(BusyMulti::Begin);
            out.extend_from_slice(b"+OK\r\n");
        }
        return true;
    }
    if is(name, "discard") && argv.len() == 1 && in_multi {
        changes.push(BusyMulti::End);
        out.extend_from_slice(b"+OK\r\n");
        return true;
    }
    if is(name, "exec") && argv.len() == 1 {
        if in_multi {
            changes.push(BusyMulti::End);
        }
        let busy = if view.busy.eval_mode.get() { BUSY_EVAL } else { BUSY_FUNCTION };
        let line = format!("-EXECABORT Transaction discarded because of: {busy}\r\n");
        out.extend_from_slice(line.as_bytes());
        return true;
    }
    if in_multi && !is_busy_control(argv) {
        // Refused below with -BUSY; inside MULTI that refusal dooms the transaction.
        changes.push(BusyMulti::Doom);
    }
    false
}

/// The commands a busy script runs itself instead of refusing.
fn is_busy_control(argv: &[Vec<u8>]) -> bool {
    let name = &argv[0];
    let sub = argv.get(1).map(Vec::as_slice).unwrap_or(b"");
    (argv.len() == 2 && (is(name, "script") || is(name, "function")) && is(sub, "kill"))
        || (argv.len() == 2 && is(name, "function") && is(sub, "stats"))
        || (argv.len() == 2 && is(name, "shutdown") && is(sub, "nosave"))
}

/// The reply to one command received while busy.
fn answer(argv: &[Vec<u8>], view: &View<'_>, resp: Resp, out: &mut Vec<u8>) {
    if view.loading && refused_while_loading(argv) {
        out.extend_from_slice(format!("-{LOADING_ERROR}\r\n").as_bytes());
        return;
    }
    let busy = view.busy;
    let name = &argv[0];
    let sub = argv.get(1).map(Vec::as_slice).unwrap_or(b"");
    let reply: Option<String> = if (is(name, "script") && is(sub, "kill") && argv.len() == 2)
        || (is(name, "function") && is(sub, "kill") && argv.len() == 2)
    {
        Some(kill(busy, is(name, "script")))
    } else if is(name, "function") && is(sub, "stats") && argv.len() == 2 {
        if busy.eval_mode.get() {
            Some(format!("-{BUSY_EVAL}\r\n"))
        } else {
            out.extend_from_slice(&function_stats(view, resp));
            None
        }
    } else if is(name, "shutdown") && argv.len() == 2 && is(sub, "nosave") {
        busy.shutdown.set(true);
        busy.killed.set(true);
        None
    } else if busy.eval_mode.get() {
        Some(format!("-{BUSY_EVAL}\r\n"))
    } else {
        Some(format!("-{BUSY_FUNCTION}\r\n"))
    };
    if let Some(r) = reply {
        out.extend_from_slice(r.as_bytes());
    }
}

/// Whether a known command lacks the `loading` flag.
fn refused_while_loading(argv: &[Vec<u8>]) -> bool {
    let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    crate::dispatch::resolve(&refs).is_ok_and(|(_, spec)| !spec.has(crate::commands::flags::LOADING))
}

/// FUNCTION STATS while a function runs: its name, command and running time.
fn function_stats(view: &View<'_>, resp: Resp) -> Vec<u8> {
    let mut out = ReplyBuf::new(resp);
    out.map(2);
    out.bulk(b"running_script");
    out.map(3);
    out.bulk(b"name");
    out.bulk(view.busy.name.borrow().as_bytes());
    out.bulk(b"command");
    out.array(view.argv.len());
    for a in view.argv {
        out.bulk(a);
    }
    out.bulk(b"duration_ms");
    let ms = view.busy.elapsed_ms() as i64;
    out.integer(ms);
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.integer(view.libraries as i64);
    out.bulk(b"functions_count");
    out.integer(view.functions as i64);
    out.buf.to_vec()
}

/// SCRIPT KILL / FUNCTION KILL against the running script.
fn kill(busy: &Busy, from_script_kill: bool) -> String {
    if busy.wrote.get() {
        return format!("-{UNKILLABLE}\r\n");
    }
    if from_script_kill && !busy.eval_mode.get() {
        return format!("-{BUSY_FUNCTION}\r\n");
    }
    if !from_script_kill && busy.eval_mode.get() {
        return format!("-{BUSY_EVAL}\r\n");
    }
    busy.killed.set(true);
    "+OK\r\n".into()
}

/// Writes `bytes` to a non-blocking socket, waiting briefly when its buffer is full.
fn write_all(sock: &mut std::net::TcpStream, mut bytes: &[u8]) {
    let deadline = Instant::now() + Duration::from_millis(100);
    while !bytes.is_empty() && Instant::now() < deadline {
        match sock.write(bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
