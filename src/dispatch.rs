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
use crate::journal::{to, Effects};
use crate::keyspace::Keyspace;
use crate::protocol::ReplyBuf;
use crate::server::client::Client;
use crate::server::slowlog::SlowLog;
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
    /// The command's argv goes to the replicas even though it changed nothing (see
    /// [`Ctx::propagate_to_replicas`]).
    force_repl: bool,
    /// Running inside EXEC or a script (see [`Ctx::call_nested`]).
    nested: bool,
}

impl<'a> Ctx<'a> {
    /// Shows this command to MONITOR clients now. For EVAL, EVALSHA and FCALL (flagged
    /// `skip_monitor`), which call it first, so that the commands their script runs come after
    /// them, as in Redis.
    pub fn feed_monitors(&mut self, argv: &[&[u8]]) {
        if !self.srv.monitors.is_empty() {
            feed_monitors(self.srv, self.client, self.cmd, argv);
        }
    }

    /// Records an effect on the current database. Calling this replaces the default
    /// propagation of the command's own argv.
    pub fn propagate<A: AsRef<[u8]>>(&mut self, argv: &[A]) {
        let db = self.db;
        self.propagate_db(db, argv);
    }

    /// Records an effect on database `db`.
    pub fn propagate_db<A: AsRef<[u8]>>(&mut self, db: usize, argv: &[A]) {
        self.custom_propagation = true;
        // A key found expired so far is deleted before this effect, as it was logically gone.
        report_lookups(self.ks, self.srv, self.effects);
        if self.srv.journal.is_active() {
            self.effects.push(db, argv);
        }
    }

    /// Sends this command's argv to the replicas (never to the append-only log) even though
    /// it changes no data: PUBLISH, so that a replica's subscribers get the message too
    /// (Redis's `forceCommandPropagation(c, PROPAGATE_REPL)`).
    pub fn propagate_to_replicas(&mut self) {
        self.force_repl = true;
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

    /// Whether this command may block its client (BLPOP and friends): not inside EXEC or a
    /// script, where Redis answers as if the timeout had already expired.
    pub fn may_block(&self) -> bool {
        !self.nested
    }

    /// Whether this command runs inside EXEC or a script.
    pub fn is_nested(&self) -> bool {
        self.nested
    }

    /// Runs an already validated command inside this one (EXEC's queued commands), as the
    /// same client and into the same reply. Its effects join this command's, so the journal
    /// records the whole EXEC as one atomic unit (wrapped in MULTI/EXEC when it holds more than
    /// one write), and keys it makes ready wake blocked clients only after the outer command
    /// finishes. Returns whether it succeeded.
    pub fn call_nested(&mut self, id: usize, spec: &'static CommandSpec, argv: &[&[u8]]) -> bool {
        // The nested command propagates through `effects` itself (here and in
        // `call_nested_as`); the outer command must not also propagate its own argv.
        self.custom_propagation = true;
        let mut parts = Parts {
            ks: &mut *self.ks,
            srv: &mut *self.srv,
            effects: &mut *self.effects,
            nested: true,
        };
        let ok = run(&mut parts, self.client, self.out, id, spec, argv);
        // A nested SELECT moves the caller.
        self.db = self.client.db;
        ok
    }

    /// Like [`Ctx::call_nested`], but as another client (a script's own) and into another
    /// reply buffer; its effects reach only `readers` (a [`to`] bit set: a script's
    /// `redis.set_repl`), none when it is empty.
    pub fn call_nested_as(
        &mut self,
        client: &mut Client,
        out: &mut ReplyBuf,
        id: usize,
        spec: &'static CommandSpec,
        argv: &[&[u8]],
        readers: u8,
    ) -> bool {
        self.custom_propagation = true;
        let first = self.effects.len();
        let effects = &mut *self.effects;
        let mut parts = Parts { ks: &mut *self.ks, srv: &mut *self.srv, effects, nested: true };
        let ok = run(&mut parts, client, out, id, spec, argv);
        // Deletions of expired keys are pinned: they reach every reader whatever the script
        // asked.
        if readers != to::ALL {
            parts.effects.restrict_from(first, readers);
        }
        ok
    }

    /// Emits a keyspace notification (`notify-keyspace-events`); `class` is Redis's event class
    /// letter (`g`, `$`, `x`, ...), `event` the event name.
    pub fn notify(&mut self, class: char, event: &str, db: usize, key: &[u8]) {
        // What this command's lookups found (expired or missing keys) is reported first, as
        // Redis does at lookup time.
        report_lookups(self.ks, self.srv, self.effects);
        self.srv.notify_keyspace_event(class, event, db, key);
    }
}

/// Runs one command from `client` and writes its reply to `out` (or queues it, inside MULTI).
pub fn execute(server: &mut Server, client: &mut Client, out: &mut ReplyBuf, argv: &[&[u8]]) {
    let (id, spec) = match resolve(argv) {
        Ok(found) => found,
        Err(err) => {
            // A known command with the wrong arity is still that command's rejection (its
            // `rejected_calls`, and EXEC's abort).
            let found = match err {
                CmdError::WrongArity(_) => commands::registry()
                    .lookup(argv[0])
                    .filter(|(_, s)| s.subcommands.is_empty()),
                _ => None,
            };
            reject(server, client, out, found, argv, &err);
            return;
        }
    };
    if !client.authenticated && !spec.has(flags::NO_AUTH) && server.state.auth_required() {
        reject(server, client, out, Some((id, spec)), argv, &CmdError::NoAuth);
        return;
    }
    if let Some(err) = commands::multi::refusal(client, spec) {
        reject(server, client, out, Some((id, spec)), argv, &err);
        return;
    }
    if spec.has(flags::PROTECTED) {
        let name = spec.parent.unwrap_or(spec.name);
        if let Some(err) = commands::server::protected_refusal(&server.state, client, name) {
            reject(server, client, out, Some((id, spec)), argv, &err);
            return;
        }
    }
    // The ACL check, after the protected-command one as in Redis. A user allowed everything
    // (the default user) pays this one branch.
    if !client.user.unrestricted.get() {
        if let Some(err) = commands::acl::refusal(&mut server.state, client, spec, argv) {
            reject(server, client, out, Some((id, spec)), argv, &err);
            return;
        }
    }
    let deny_oom = commands::multi::deny_oom(client, spec);
    let evicted = commands::memory::before_command(server, deny_oom);
    // Invalidations of keys evicted for this command's client reach it before the reply.
    server.state.tracking_flush_pending();
    if let Some(err) = evicted {
        reject(server, client, out, Some((id, spec)), argv, &err);
        return;
    }
    if let Some(err) = commands::persistence::disk_error_refusal(&server.state, client, spec) {
        reject(server, client, out, Some((id, spec)), argv, &err);
        return;
    }
    // The log cannot be written: refuse writes (-MISCONF) until it can again.
    if let Some(err) = crate::aof::write_refusal(&server.state, client, spec) {
        reject(server, client, out, Some((id, spec)), argv, &err);
        return;
    }
    if let Some(err) = crate::replication::refusal(&server.state, client, spec) {
        reject(server, client, out, Some((id, spec)), argv, &err);
        return;
    }
    if let Some(err) = commands::pubsub::subscribed_mode_refusal(client, spec) {
        reject(server, client, out, Some((id, spec)), argv, &err);
        return;
    }
    if let Some(err) = commands::persistence::loading_refusal(&server.state, spec) {
        reject(server, client, out, Some((id, spec)), argv, &err);
        return;
    }
    if commands::multi::queue(&server.state, client, out, id, spec, argv) {
        return;
    }
    call(server, client, out, id, spec, argv);
}

/// Runs an already validated command as a unit of its own: its effects (and the deletions of
/// keys that expired under it) reach the journal before the next command runs.
pub fn call(
    server: &mut Server,
    client: &mut Client,
    out: &mut ReplyBuf,
    id: usize,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
) {
    let Server { ks, state, effects } = server;
    // Misses are only remembered while someone wants `keymiss` events.
    ks.record_misses = state.config.notify_keyspace_events & crate::config::notify::KEY_MISS != 0;
    effects.clear();
    // Redis never wraps the effects of a command that may touch any key (its lazy expiries).
    effects.unwrapped = spec.has(flags::TOUCHES_ARBITRARY_KEYS);
    let mut parts = Parts { ks, srv: state, effects, nested: false };
    run(&mut parts, client, out, id, spec, argv);
    propagate_call(ks, state, effects);
}

/// The server state a command runs against, split so a command can run others inside itself
/// (EXEC, scripts) while holding it.
struct Parts<'p> {
    ks: &'p mut Keyspace,
    srv: &'p mut ServerState,
    effects: &'p mut Effects,
    /// Inside EXEC or a script: effects accumulate with the outer command's, and the command
    /// may not block.
    nested: bool,
}

/// Runs one command: the handler, its error reply, statistics, MONITOR, and the default
/// propagation of its argv. Does not flush effects: the outermost [`call`] does.
fn run(
    p: &mut Parts<'_>,
    client: &mut Client,
    out: &mut ReplyBuf,
    id: usize,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
) -> bool {
    let started = crate::util::clock::stamp();
    let dirty_before = p.srv.dirty;
    let now = p.srv.now_ms();
    let mut ctx = Ctx {
        ks: &mut *p.ks,
        srv: &mut *p.srv,
        db: client.db,
        client,
        out,
        now,
        cmd: spec,
        effects: &mut *p.effects,
        custom_propagation: false,
        force_repl: false,
        nested: p.nested,
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
    let (custom, force_repl) = (ctx.custom_propagation, ctx.force_repl);
    let db = ctx.db;
    if let Err(e) = &result {
        ctx.out.error(&e.to_string());
    }
    let Parts { ks, srv: state, effects, .. } = p;
    // Keys found expired go ahead of the command's own effect, in the same unit.
    report_lookups(ks, state, effects);
    let elapsed = crate::util::clock::elapsed_us(started);
    state.stats.total_commands_processed += 1;
    // A command that blocked is timed again when the run that serves it completes.
    let blocked = state.blocking.requested();
    let tracking = state.config.latency_tracking && !blocked;
    let stats = state.cmd_stats_mut(id, spec);
    // A run that blocks is not a call yet: the run that serves it (or its timeout) is.
    if !blocked {
        stats.calls += 1;
    }
    stats.usec += elapsed;
    if tracking {
        stats.latency.get_or_insert_with(Default::default).record_us(elapsed);
    }
    if let Err(e) = &result {
        stats.failed_calls += 1;
        state.count_error(e);
    }
    client.last_cmd = spec;
    // EVAL_RO, EVALSHA_RO and FCALL_RO are left out, as in Redis: the read commands their
    // script runs remember the script's keys (see `scripting::run`).
    if state.tracking.clients > 0
        && spec.has(flags::READONLY)
        && !matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
    {
        remember_tracked_keys(state, client, spec, argv);
    }
    if blocked {
        state.blocking.note_first_run(client.id, elapsed);
    } else {
        observe_duration(state, client, spec, argv, elapsed);
    }
    if !state.monitors.is_empty() && !spec.has(flags::SKIP_MONITOR) && !spec.has(flags::ADMIN) {
        feed_monitors(state, client, spec, argv);
    }
    let wrote = state.dirty != dirty_before;
    if wrote
        && state.is_replica()
        && state.repl.master.as_ref().is_some_and(|m| m.client_id != client.id)
    {
        remember_replica_expires(ks, state, db, spec, argv);
    }
    if !custom && state.journal.is_active() {
        if spec.has(flags::WRITE) && wrote {
            effects.push(db, argv);
        } else if force_repl && result.is_ok() {
            effects.push_to(db, argv, to::REPLICAS);
        }
    }
    result.is_ok()
}

/// A write by one of a writable replica's own clients: the keys it gave a time to live are
/// remembered, for the replica to expire them itself (see `replication::expire_replica_keys`).
#[inline(never)]
fn remember_replica_expires(
    ks: &Keyspace,
    state: &mut ServerState,
    db: usize,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
) {
    let keys = key_args(spec, argv);
    crate::replication::remember_replica_expires(ks, state, db, &keys);
}

/// The key arguments of a command, found by its key specs (none when it has no metadata or
/// the arguments do not fit them).
fn key_args<'a>(spec: &'static CommandSpec, argv: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let Some(m) = commands::command::meta_of(spec) else {
        return Vec::new();
    };
    let positions = commands::command::command_keys(m, argv).unwrap_or_default();
    positions.iter().filter_map(|&(i, _)| argv.get(i).copied()).collect()
}

/// Client-side caching: a read-only command of a tracking client remembers the keys it read
/// (Redis's `trackingRememberKeys`); for a script that ran a read command, the keys the EVAL or
/// FCALL declared. Pub/Sub commands' shard channels are no keys to cache.
#[inline(never)]
pub fn remember_tracked_keys(
    state: &mut ServerState,
    client: &Client,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
) {
    if client.shared.tracking.borrow().is_none() || spec.has(flags::PUBSUB) {
        return;
    }
    let keys = key_args(spec, argv);
    if !keys.is_empty() {
        state.tracking_remember(&client.shared, &keys);
    }
}

/// A blocked command that ends without a run that serves it (timeout, CLIENT UNBLOCK) still
/// reaches the latency histogram and the slow log, with the duration of the run that blocked,
/// as in Redis.
pub fn blocked_command_ended(state: &mut ServerState, client: &Client, argv: &[&[u8]], us: u64) {
    let Ok((id, spec)) = resolve(argv) else {
        return;
    };
    let tracking = state.config.latency_tracking;
    let stats = state.cmd_stats_mut(id, spec);
    stats.calls += 1;
    if tracking {
        stats.latency.get_or_insert_with(Default::default).record_us(us);
    }
    observe_duration(state, client, spec, argv, us);
}

/// Shows a command's duration to the latency monitor (`command`, or `fast-command` for commands
/// flagged fast) and to the slow log. Commands replayed while a dataset loads are not shown,
/// as in Redis.
#[inline]
fn observe_duration(
    state: &mut ServerState,
    client: &Client,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
    elapsed: u64,
) {
    let cfg = &state.config;
    let slow = SlowLog::wants(cfg.slowlog_log_slower_than, elapsed);
    let threshold = cfg.latency_monitor_threshold;
    let spike = threshold > 0 && elapsed / 1000 >= threshold as u64;
    if !(slow || spike) || state.loading_dataset() {
        return;
    }
    let now = crate::util::time::now_secs();
    if spike {
        let event = if spec.has(flags::FAST) { "fast-command" } else { "command" };
        state.latency.add(event, elapsed / 1000, now);
    }
    if slow && !spec.has(flags::SKIP_SLOWLOG) {
        let (peer, name) = if client.id == crate::scripting::SCRIPT_CLIENT_ID {
            ("?:0".to_string(), Vec::new())
        } else {
            let info = client.shared.info.borrow();
            (info.addr.to_string(), info.name.clone().unwrap_or_default())
        };
        let redact = |i| redacted(spec, argv, i);
        let candidate = crate::server::slowlog::Candidate {
            argv,
            redact: &redact,
            duration: elapsed,
            peer,
            name,
        };
        let max_len = usize::try_from(state.config.slowlog_max_len).unwrap_or(usize::MAX);
        state.slowlog.push(candidate, now, max_len);
    }
}

/// Echoes an executed command to MONITOR clients in Redis's format:
/// `+<secs>.<usecs> [<db> <peer>] "arg" "arg"`, with passwords redacted.
/// Commands a script runs are shown as `[<db> lua]`; nothing is shown while a log or snapshot
/// loads, as in Redis.
fn feed_monitors(state: &mut ServerState, client: &Client, spec: &CommandSpec, argv: &[&[u8]]) {
    if state.loading_dataset() {
        return;
    }
    let us = crate::util::time::now_us();
    let (secs, micros) = (us / 1_000_000, us % 1_000_000);
    let mut line = if client.id == crate::scripting::SCRIPT_CLIENT_ID {
        format!("+{secs}.{micros:06} [{} lua]", client.db)
    } else {
        let peer = client.shared.info.borrow().addr;
        format!("+{secs}.{micros:06} [{} {peer}]", client.db)
    };
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

/// Whether argument `i` is a secret Redis hides from MONITOR and the slow log: AUTH's
/// arguments (unless AUTH was refused for its syntax), HELLO's AUTH pair, the values CONFIG
/// SET gives to `masterauth`, `masteruser` and `requirepass`, MIGRATE's AUTH / AUTH2
/// credentials, and ACL SETUSER's rules.
fn redacted(spec: &CommandSpec, argv: &[&[u8]], i: usize) -> bool {
    match (spec.parent, spec.name) {
        (None, "auth") => i >= 1 && argv.len() <= 3,
        (None, "hello") => argv[..i]
            .iter()
            .rposition(|a| a.eq_ignore_ascii_case(b"auth"))
            .is_some_and(|p| i <= p + 2 && p >= 2),
        (Some("config"), "set") => {
            i >= 3 && i % 2 == 1 && {
                let name = argv[i - 1];
                [&b"masterauth"[..], b"masteruser", b"requirepass"]
                    .iter()
                    .any(|s| name.eq_ignore_ascii_case(s))
            }
        }
        (None, "migrate") => crate::commands::migrate::is_secret(argv, i),
        // Every rule after the user name: passwords and hashes hide among them.
        (Some("acl"), "setuser") => i >= 2,
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

/// Propagates one expired key as `DEL` (`UNLINK` with `lazyfree-lazy-expire`) on its own:
/// the active expire cycle's deletions.
fn propagate_deletion(state: &mut ServerState, db: usize, key: &[u8]) {
    state.on_key_expired(db, key);
    if state.journal.is_active() {
        let mut one = Effects::default();
        push_deletion(state, &mut one, db, key);
        state.journal.append(&one);
    }
}

/// Records the deletion of an expired key. It is pinned: every reader gets it, even from a
/// script that asked `redis.set_repl` for fewer, as a master must tell its replicas.
fn push_deletion(state: &ServerState, effects: &mut Effects, db: usize, key: &[u8]) {
    let del: &[u8] = if state.config.lazyfree_lazy_expire { b"UNLINK" } else { b"DEL" };
    effects.push_to(db, &[del, key], to::ALL | to::PINNED);
}

/// Reports keys that lookups found expired (`expired`, and their deletion recorded in
/// `effects`, so that, like Redis 7.0, it joins the command's unit and is wrapped with its
/// effects) and keys that read lookups missed (`keymiss`).
fn report_lookups(ks: &mut Keyspace, state: &mut ServerState, effects: &mut Effects) {
    if !ks.expired.is_empty() {
        for (db, key) in std::mem::take(&mut ks.expired) {
            state.on_key_expired(db, &key);
            if state.journal.is_active() {
                push_deletion(state, effects, db, &key);
            }
        }
    }
    if !ks.missed.is_empty() {
        for (db, key) in std::mem::take(&mut ks.missed) {
            state.notify_keyspace_event('m', "keymiss", db, &key);
        }
    }
}

/// Appends the effects of a call to the journal, with the deletions of keys that expired
/// during it.
fn propagate_call(ks: &mut Keyspace, state: &mut ServerState, effects: &mut Effects) {
    report_lookups(ks, state, effects);
    if !effects.is_empty() {
        if state.is_replica() {
            // A replica passes on its master's stream only (verbatim, see
            // `replication::replica`): its own writes (a writable replica) reach its log but
            // neither its replicas nor its offset, as in Redis.
            effects.restrict_from(0, to::LOG);
        }
        state.journal.append(effects);
    }
    effects.clear();
}

/// Finds the command (or subcommand) `argv` names and checks its arity: the checks every
/// command passes before anything else, whether it is run, queued by MULTI or called by a script.
pub fn resolve(argv: &[&[u8]]) -> Result<(usize, &'static CommandSpec), CmdError> {
    let reg = commands::registry();
    let Some((id, top)) = reg.lookup(argv[0]) else {
        return Err(unknown_command(argv));
    };
    let spec: &'static CommandSpec = if top.subcommands.is_empty() || argv.len() < 2 {
        top
    } else {
        top.find_sub(argv[1]).ok_or_else(|| CmdError::UnknownSubcommand {
            sub: truncate_arg(argv[1]),
            cmd: top.name.to_uppercase(),
        })?
    };
    if !spec.arity_ok(argv.len()) {
        return Err(CmdError::WrongArity(spec.full_name()));
    }
    Ok((id, spec))
}

/// Answers a command refused before it ran. Inside MULTI the refusal dooms the transaction,
/// and a refused EXEC discards it (answering EXECABORT with the reason, echoed to MONITOR).
fn reject(
    server: &mut Server,
    client: &mut Client,
    out: &mut ReplyBuf,
    found: Option<(usize, &'static CommandSpec)>,
    argv: &[&[u8]],
    err: &CmdError,
) {
    let state = &mut server.state;
    let replaced = commands::multi::rejected(state, client, found.map(|f| f.1), err);
    if let Some((id, spec)) = found {
        state.cmd_stats_mut(id, spec).rejected_calls += 1;
        if replaced.is_some() && !state.monitors.is_empty() {
            feed_monitors(state, client, spec, argv);
        }
    }
    let err = replaced.as_ref().unwrap_or(err);
    out.error(&err.to_string());
    state.stats.rejected_calls += 1;
    state.count_error(err);
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

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::protocol::Resp;
    use crate::server::client::{ClientInfo, ClientShared};

    /// A command whose handler writes part of its reply, then panics.
    fn boom(ctx: &mut commands::Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
        ctx.out.integer(1);
        panic!("boom at {}", ctx.db);
    }

    static BOOM: CommandSpec = CommandSpec::new("boom", 1, flags::WRITE, 0, 0, 0, boom);

    /// A panicking handler does not take the server down: its half-written reply gives way to
    /// an error in Redis's shape, the failure is counted, and the next command runs as usual.
    #[test]
    fn a_panicking_handler_answers_an_error_and_the_server_goes_on() {
        let mut cfg = crate::config::Config::from_args(&[]).expect("default config");
        cfg.set("save", "").expect("save");
        let mut server = Server::new(cfg);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let shared = Rc::new(ClientShared::new(ClientInfo::new(1, addr, addr, -1)));
        let mut client = Client::new(1, shared, true);
        let mut out = ReplyBuf::new(Resp::V2);
        let (id, _) = commands::registry().lookup(b"ping").expect("ping");
        call(&mut server, &mut client, &mut out, id, &BOOM, &[b"boom"]);
        assert_eq!(&out.buf[..], b"-ERR internal error while executing 'boom'\r\n");
        // Counted in the slot of the id it was called with.
        assert_eq!(server.state.cmd_stats_mut(id, &BOOM).failed_calls, 1);
        out.buf.clear();
        execute(&mut server, &mut client, &mut out, &[b"SET", b"k", b"v"]);
        execute(&mut server, &mut client, &mut out, &[b"GET", b"k"]);
        assert_eq!(&out.buf[..], b"+OK\r\n$1\r\nv\r\n");
    }
}
