//! Command dispatch: Redis's `processCommand()` + `call()`.
//!
//! Looks a command up, checks arity and authentication, runs the handler with a [`Ctx`], renders
//! an error if it failed, updates per-command statistics, and hands the command's effects to the
//! journal. This is the one place that decides what a command propagates: handlers either let
//! the dispatcher propagate their argv verbatim (the default for a `WRITE` command that changed
//! something) or record their own deterministic effects with [`Ctx::propagate`].

use std::panic::AssertUnwindSafe;

use crate::commands::{self, flags, CommandSpec};
use crate::error::{CmdError, CmdResult};
use crate::journal::Effects;
use crate::keyspace::Keyspace;
use crate::protocol::ReplyBuf;
use crate::server::client::Client;
use crate::server::{Server, ServerState};

/// Everything a handler may touch while it runs.
pub struct Ctx<'a> {
    pub ks: &'a mut Keyspace,
    pub srv: &'a mut ServerState,
    pub client: &'a mut Client,
    pub out: &'a mut ReplyBuf,
    /// Selected database (same as `client.db`; SELECT updates both).
    pub db: usize,
    /// Command time in Unix milliseconds: one value for the whole command, like Redis's cached
    /// `mstime`, so a command never sees a key expire half-way through.
    pub now: u64,
    pub cmd: &'static CommandSpec,
    effects: &'a mut Effects,
    /// Set once a handler records its own effects; disables default propagation of argv.
    custom_propagation: bool,
}

impl<'a> Ctx<'a> {
    /// Records an effect on the current database. Calling this replaces the default
    /// propagation of the command's own argv.
    pub fn propagate<A: AsRef<[u8]>>(&mut self, argv: &[A]) {
        let db = self.db;
        self.propagate_db(db, argv);
    }

    /// Records an effect on database `db`.
    pub fn propagate_db<A: AsRef<[u8]>>(&mut self, db: usize, argv: &[A]) {
        self.custom_propagation = true;
        if self.srv.journal.is_active() {
            self.effects.push(db, argv);
        }
    }

    /// Declares that this call propagates nothing even though it may have dirtied the dataset.
    pub fn propagate_nothing(&mut self) {
        self.custom_propagation = true;
    }

    /// Counts `n` changes to the dataset (`rdb_changes_since_last_save`); a WRITE command that
    /// counts none propagates nothing.
    pub fn dirty(&mut self, n: u64) {
        self.srv.dirty += n;
    }

    /// Tells watchers (WATCH, client-side caching) that `key` in `db` changed.
    pub fn signal_modified_key(&mut self, db: usize, key: &[u8]) {
        self.srv.touched_keys(db, key);
    }

    /// Emits a keyspace notification (`notify-keyspace-events`); `class` is Redis's event class
    /// letter (`g`, `$`, `x`, ...), `event` the event name.
    pub fn notify(&mut self, class: char, event: &str, db: usize, key: &[u8]) {
        self.srv.notify_keyspace_event(class, event, db, key);
    }
}

/// Runs one command from `client` and writes its reply to `out`.
pub fn execute(server: &mut Server, client: &mut Client, out: &mut ReplyBuf, argv: &[&[u8]]) {
    let reg = commands::registry();
    let Some((id, top)) = reg.lookup(argv[0]) else {
        reject(server, out, &unknown_command(argv));
        return;
    };
    let spec: &'static CommandSpec = if top.subcommands.is_empty() || argv.len() < 2 {
        top
    } else {
        match top.find_sub(argv[1]) {
            Some(s) => s,
            None => {
                let err = CmdError::UnknownSubcommand {
                    sub: truncate_arg(argv[1]),
                    cmd: top.name.to_uppercase(),
                };
                reject(server, out, &err);
                return;
            }
        }
    };
    if !spec.arity_ok(argv.len()) {
        reject(server, out, &CmdError::WrongArity(spec.full_name()));
        return;
    }
    if !client.authenticated && !spec.has(flags::NO_AUTH) && server.state.auth_required() {
        reject(server, out, &CmdError::NoAuth);
        return;
    }
    if spec.has(flags::PROTECTED) {
        if let Some(err) = commands::server::protected_refusal(&server.state, client, spec.name) {
            reject(server, out, &err);
            return;
        }
    }
    if let Some(err) = commands::memory::before_command(server, spec) {
        reject(server, out, &err);
        return;
    }
    if let Some(err) = commands::pubsub::subscribed_mode_refusal(client, spec) {
        reject(server, out, &err);
        return;
    }
    call(server, client, out, id, spec, argv);
}

/// Runs an already validated command (also used by MULTI/EXEC and scripts later).
pub fn call(
    server: &mut Server,
    client: &mut Client,
    out: &mut ReplyBuf,
    id: usize,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
) {
    let started = crate::util::clock::stamp();
    let Server { ks, state, effects } = server;
    let dirty_before = state.dirty;
    let now = state.now_ms();
    effects.clear();
    let mut ctx = Ctx {
        ks,
        srv: state,
        db: client.db,
        client,
        out,
        now,
        cmd: spec,
        effects,
        custom_propagation: false,
    };
    let reply_start = ctx.out.len();
    // A panicking handler must not take the server down: unwinding costs nothing until it
    // happens, and then the half-written reply is replaced by an error.
    let result: CmdResult =
        match std::panic::catch_unwind(AssertUnwindSafe(|| (spec.handler)(&mut ctx, argv))) {
            Ok(r) => r,
            Err(payload) => {
                ctx.out.truncate(reply_start);
                handler_panicked(spec, payload.as_ref())
            }
        };
    let custom = ctx.custom_propagation;
    let db = ctx.db;
    if let Err(e) = &result {
        ctx.out.error(&e.to_string());
    }
    let elapsed = crate::util::clock::elapsed_us(started);
    state.stats.total_commands_processed += 1;
    let stats = state.cmd_stats_mut(id, spec);
    stats.calls += 1;
    stats.usec += elapsed;
    if let Err(e) = &result {
        stats.failed_calls += 1;
        state.count_error(e);
    }
    client.last_cmd = spec;
    if !state.monitors.is_empty() && !spec.has(flags::SKIP_MONITOR) && !spec.has(flags::ADMIN) {
        feed_monitors(state, client, spec, argv);
    }
    let wrote = state.dirty != dirty_before;
    if spec.has(flags::WRITE) && wrote && !custom && state.journal.is_active() {
        effects.push(db, argv);
    }
    propagate_call(ks, state, effects);
}

/// Echoes an executed command to MONITOR clients in Redis's format:
/// `+<secs>.<usecs> [<db> <peer>] "arg" "arg"`, with passwords redacted.
fn feed_monitors(state: &mut ServerState, client: &Client, spec: &CommandSpec, argv: &[&[u8]]) {
    let us = crate::util::time::now_us();
    let peer = client.shared.info.borrow().addr;
    let mut line = format!("+{}.{:06} [{} {}]", us / 1_000_000, us % 1_000_000, client.db, peer);
    for (i, a) in argv.iter().enumerate() {
        line.push(' ');
        if redacted(spec, argv, i) {
            line.push_str("\"(redacted)\"");
        } else {
            push_repr(&mut line, a);
        }
    }
    line.push_str("\r\n");
    state.monitors.retain(|m| !m.killed.get());
    for m in &state.monitors {
        if !std::rc::Rc::ptr_eq(m, &client.shared) {
            m.push(line.as_bytes());
        }
    }
}

/// Whether argument `i` is a secret Redis hides from MONITOR (AUTH passwords, HELLO's AUTH
/// pair).
fn redacted(spec: &CommandSpec, argv: &[&[u8]], i: usize) -> bool {
    match spec.name {
        "auth" => i >= 1,
        "hello" => argv[..i].iter().rposition(|a| a.eq_ignore_ascii_case(b"auth")).is_some_and(
            |p| i <= p + 2 && p >= 2,
        ),
        _ => false,
    }
}

/// Quotes bytes like Redis's `sdscatrepr`.
fn push_repr(out: &mut String, a: &[u8]) {
    out.push('"');
    for &c in a {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            0x20..=0x7e => out.push(char::from(c)),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
}

/// Logs a handler panic and turns it into the command's error reply.
#[cold]
fn handler_panicked(spec: &CommandSpec, payload: &(dyn std::any::Any + Send)) -> CmdResult {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    let name = spec.full_name();
    tracing::warn!("Command '{name}' panicked: {what}");
    Err(CmdError::err(format!(
        "internal error while executing '{name}'"
    )))
}

/// Propagates keys deleted by the active expire cycle, each as its own `DEL`.
pub fn propagate_expired(ks: &mut Keyspace, state: &mut ServerState, effects: &mut Effects) {
    for (db, key) in std::mem::take(&mut ks.expired) {
        propagate_deletion(state, db, &key);
    }
    effects.clear();
}

/// Propagates one expired key as `DEL` (`UNLINK` with `lazyfree-lazy-expire`). Like Redis, an
/// expiry found by a command is sent on its own, ahead of and never wrapped with the command's
/// effects: the key was already logically gone before the command ran.
fn propagate_deletion(state: &mut ServerState, db: usize, key: &[u8]) {
    state.on_key_expired(db, key);
    if state.journal.is_active() {
        let del: &[u8] = if state.config.lazyfree_lazy_expire { b"UNLINK" } else { b"DEL" };
        let mut one = Effects::default();
        one.push(db, &[del, key]);
        state.journal.append(&one);
    }
}

/// Appends the effects of a call to the journal, after the deletions of keys that expired
/// during it.
fn propagate_call(ks: &mut Keyspace, state: &mut ServerState, effects: &mut Effects) {
    for (db, key) in ks.expired.drain(..) {
        propagate_deletion(state, db, &key);
    }
    if !effects.is_empty() {
        state.journal.append(effects);
    }
    effects.clear();
}

fn reject(server: &mut Server, out: &mut ReplyBuf, err: &CmdError) {
    out.error(&err.to_string());
    server.state.stats.rejected_calls += 1;
    server.state.count_error(err);
}

fn truncate_arg(a: &[u8]) -> String {
    let s = String::from_utf8_lossy(a);
    s.chars().take(128).collect()
}

/// Redis's unknown-command message, listing the first arguments (128 characters at most).
fn unknown_command(argv: &[&[u8]]) -> CmdError {
    let mut args = String::new();
    for a in &argv[1..] {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        let s = String::from_utf8_lossy(a);
        let s: String = s.chars().take(room).collect();
        args.push('\'');
        args.push_str(&s);
        args.push_str("' ");
    }
    CmdError::err(format!(
        "unknown command '{}', with args beginning with: {}",
        truncate_arg(argv[0]),
        args
    ))
}
