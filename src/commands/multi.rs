//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis's `multi.c`).
//!
//! Between MULTI and EXEC a client's commands are checked (name, arity, authentication, ...)
//! and queued instead of run; [`queue`] is the dispatcher's hook for that. EXEC runs the queue
//! through [`Ctx::call_nested`], so the whole transaction is one command for every other
//! client and for the write stream (the journal wraps more than one effect in MULTI/EXEC).
//! WATCH registers keys in [`crate::server::watch`]; a change to any of them before EXEC makes
//! EXEC answer a null array without running anything.

use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::ReplyBuf;
use crate::server::client::Client;
use crate::server::watch::Presence;
use crate::server::ServerState;

const TX: u32 = NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("discard", 1, TX, 0, 0, 0, discard),
    CommandSpec::new(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
        0,
        0,
        0,
        exec,
    ),
    CommandSpec::new("multi", 1, TX, 0, 0, 0, multi),
    CommandSpec::new("unwatch", 1, TX, 0, 0, 0, unwatch),
    CommandSpec::new("watch", -2, TX, 1, -1, 1, watch),
];

/// Redis's reply to EXEC after a queue-time error.
const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// One queued command: its arguments are `MultiState::ends[first..first + argc]`.
#[derive(Debug)]
struct Queued {
    id: usize,
    spec: &'static CommandSpec,
    first: usize,
    argc: usize,
}

/// A transaction being queued. Arguments of every queued command are stored back to back in
/// one buffer, so a long transaction costs one allocation per growth step, not one per
/// argument.
#[derive(Debug, Default)]
pub struct MultiState {
    args: Vec<u8>,
    /// End offset in `args` of each argument.
    ends: Vec<usize>,
    cmds: Vec<Queued>,
    /// A command failed to queue: EXEC answers EXECABORT (Redis's `CLIENT_DIRTY_EXEC`).
    aborted: bool,
    /// Union of the queued commands' flags: EXEC is a write (for CLIENT PAUSE, OOM) when any
    /// queued command is.
    flags: u32,
    /// Union of the complements of the queued commands' flags: EXEC is refused on a stale
    /// replica when any queued command lacks `STALE`.
    inv_flags: u32,
}

impl MultiState {
    fn push(&mut self, id: usize, spec: &'static CommandSpec, argv: &[&[u8]], extra_flags: u32) {
        let first = self.ends.len();
        for a in argv {
            self.args.extend_from_slice(a);
            self.ends.push(self.args.len());
        }
        self.cmds.push(Queued {
            id,
            spec,
            first,
            argc: argv.len(),
        });
        self.flags |= spec.flags | extra_flags;
        self.inv_flags |= !spec.flags;
    }

    /// Number of queued commands (CLIENT LIST `multi=`).
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// Whether some queued command has one of `flags`.
    pub fn any_has(&self, flags: u32) -> bool {
        self.flags & flags != 0
    }

    /// Whether some queued command lacks one of `flags`.
    pub fn any_lacks(&self, flags: u32) -> bool {
        self.inv_flags & flags != 0
    }

    /// Bytes the queue holds (counted in the client's memory).
    pub fn memory(&self) -> usize {
        self.args.capacity()
            + self.ends.capacity() * std::mem::size_of::<usize>()
            + self.cmds.capacity() * std::mem::size_of::<Queued>()
    }

    /// Arguments of queued command `q`.
    fn argv(&self, q: &Queued) -> smallvec::SmallVec<[&[u8]; 8]> {
        let mut start = if q.first == 0 {
            0
        } else {
            self.ends[q.first - 1]
        };
        self.ends[q.first..q.first + q.argc]
            .iter()
            .map(|&end| {
                let a = &self.args[start..end];
                start = end;
                a
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatcher hooks

/// Commands that run at once even inside MULTI.
fn runs_in_multi(spec: &CommandSpec) -> bool {
    spec.parent.is_none()
        && matches!(
            spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        )
}

/// Queues the command if the client is in MULTI, answering `+QUEUED`. Returns whether it did;
/// the dispatcher runs the command otherwise. Called after every queue-time check passed.
pub fn queue(
    srv: &ServerState,
    client: &mut Client,
    out: &mut ReplyBuf,
    id: usize,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
) -> bool {
    let Some(m) = client.multi.as_mut() else {
        return false;
    };
    if runs_in_multi(spec) {
        return false;
    }
    // A doomed transaction keeps answering QUEUED but stores nothing.
    if !m.aborted && !srv.watches.is_dirty(client.id) {
        // A script that may write makes the EXEC a write too (CLIENT PAUSE WRITE holds it),
        // as Redis's flags of a queued EVAL / FCALL say.
        let script_writes = super::scripting::script_may_write(&srv.scripting, argv);
        let extra = if script_writes == Some(true) { MAY_REPLICATE } else { 0 };
        m.push(id, spec, argv, extra);
    }
    out.simple("QUEUED");
    refresh_info(client);
    true
}

/// A command refused before it could run or be queued (`NO_MULTI` commands inside MULTI).
pub fn refusal(client: &Client, spec: &CommandSpec) -> Option<CmdError> {
    (client.multi.is_some() && spec.has(NO_MULTI))
        .then(|| CmdError::err("Command not allowed inside a transaction"))
}

/// Whether the command is refused when out of memory: a DENYOOM command, anything but
/// EXEC/DISCARD/QUIT/RESET while queueing (a queue could otherwise grow without bound), and
/// EXEC of a transaction holding a DENYOOM command.
pub fn deny_oom(client: &Client, spec: &CommandSpec) -> bool {
    if spec.has(DENYOOM) {
        return true;
    }
    let Some(m) = client.multi.as_ref() else {
        return false;
    };
    if spec.parent.is_some() {
        return true;
    }
    match spec.name {
        "exec" => m.any_has(DENYOOM),
        "discard" | "quit" | "reset" => false,
        _ => true,
    }
}

/// Whether `spec` is EXEC run by a client in MULTI.
fn is_exec_of<'c>(client: &'c Client, spec: &CommandSpec) -> Option<&'c MultiState> {
    let m = client.multi.as_deref()?;
    (spec.parent.is_none() && spec.name == "exec").then_some(m)
}

/// Whether the command counts as a write for the checks made before it runs (`-NOREPLICAS`,
/// `-READONLY`): a WRITE command, or EXEC of a transaction holding one, since the server's
/// state may have changed since the commands were queued.
pub fn is_write(client: &Client, spec: &CommandSpec) -> bool {
    spec.has(WRITE) || is_exec_of(client, spec).is_some_and(|m| m.any_has(WRITE))
}

/// Whether the command is refused by a replica serving no stale data (`-MASTERDOWN`): one
/// without the `STALE` flag, or EXEC of a transaction holding one.
pub fn denies_stale(client: &Client, spec: &CommandSpec) -> bool {
    !spec.has(STALE) || is_exec_of(client, spec).is_some_and(|m| m.any_lacks(STALE))
}

/// A command was rejected before running: a rejected command dooms the transaction being
/// queued, and a rejected EXEC discards it, answering `EXECABORT` with the reason. Returns the
/// error that replaces `err`, if any.
pub fn rejected(
    srv: &mut ServerState,
    client: &mut Client,
    spec: Option<&CommandSpec>,
    err: &CmdError,
) -> Option<CmdError> {
    // Even outside MULTI, a refused EXEC answers EXECABORT, as in Redis.
    if !spec.is_some_and(|s| s.parent.is_none() && s.name == "exec") {
        if let Some(m) = client.multi.as_mut() {
            m.aborted = true;
        }
        return None;
    }
    end_transaction(srv, client);
    // Redis builds the generic errors without their `ERR` code here; coded ones keep theirs.
    let reason = err.to_string();
    let reason = reason.strip_prefix("ERR ").unwrap_or(&reason);
    Some(CmdError::Msg(
        format!("EXECABORT Transaction discarded because of: {reason}").into(),
    ))
}

/// Applies what a busy script answered on the client's behalf (see `scripting::busy`), in
/// order, before the client runs anything else.
pub fn apply_busy_changes(srv: &mut ServerState, client: &mut Client) {
    use crate::server::client::BusyMulti;
    let changes = std::mem::take(&mut *client.shared.busy_multi.borrow_mut());
    for change in changes {
        match change {
            BusyMulti::Begin => {
                if client.multi.is_none() {
                    client.multi = Some(Box::default());
                }
            }
            BusyMulti::Doom => {
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
            }
            BusyMulti::End => end_transaction(srv, client),
        }
    }
    refresh_info(client);
}

/// RESET and disconnect: drops the transaction and every watch.
pub fn reset(srv: &mut ServerState, client: &mut Client) {
    end_transaction(srv, client);
}

/// Leaves MULTI and forgets the client's watches (Redis's `discardTransaction`).
fn end_transaction(srv: &mut ServerState, client: &mut Client) {
    client.multi = None;
    srv.watches.forget(client.id);
    refresh_info(client);
}

/// Keeps CLIENT LIST's `multi=`, `flags=x` and memory current.
fn refresh_info(client: &Client) {
    let mut info = client.shared.info.borrow_mut();
    let in_multi = client.multi.is_some();
    if info.flags.contains('x') != in_multi {
        let mut flags: String = info
            .flags
            .chars()
            .filter(|&c| c != 'x' && c != 'N')
            .collect();
        if in_multi {
            flags.push('x');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        info.flags = flags;
    }
    match &client.multi {
        Some(m) => {
            info.multi = m.len() as i64;
            info.multi_mem = m.memory();
            // Query buffer, reply buffer and the queue, as Redis's client memory counts them.
            info.tot_mem = client.qbuf + client.qbuf_free + info.rbs + info.multi_mem;
        }
        None => {
            info.multi = -1;
            info.multi_mem = 0;
            info.tot_mem = 0;
        }
    }
}

/// Tells watchers that database `db` is about to be emptied (`replaced` = None: FLUSHDB,
/// FLUSHALL) or swapped with `replaced` (SWAPDB). Call before the change.
pub fn touch_db(ctx: &mut Ctx<'_>, db: usize, replaced: Option<usize>) {
    let (ks, now) = (&*ctx.ks, ctx.now);
    ctx.srv.watches.touch_db(db, replaced, |d, key| {
        match ks.dbs.get(d) {
            Some(x) if x.peek(key).is_some() => {
                if x.is_expired(key, now) {
                    Presence::Stale
                } else {
                    Presence::Live
                }
            }
            _ => Presence::Absent,
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Commands

/// Starts a transaction: the following commands are queued until EXEC or DISCARD.
///
/// ```text
/// MULTI
/// ```
fn multi(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Box::default());
    refresh_info(ctx.client);
    ctx.out.ok();
    Ok(())
}

/// Runs the queued commands as one atomic unit and replies with an array of their replies
/// (errors in place). A queue-time error answers EXECABORT; a watched key changed (or expired)
/// since WATCH answers a null array. Either way the transaction ends and nothing is watched.
///
/// ```text
/// EXEC
/// ```
fn exec(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let Some(state) = ctx.client.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    let id = ctx.client.id;
    // Redis 7.0 fails EXEC when a key that was live at WATCH has expired since, even though
    // nothing deleted it yet.
    if !ctx.srv.watches.is_dirty(id) && watched_key_expired(ctx) {
        ctx.srv.watches.mark_dirty(id);
    }
    let dirty = ctx.srv.watches.is_dirty(id);
    if state.aborted || dirty {
        end_transaction(ctx.srv, ctx.client);
        if state.aborted {
            return Err(CmdError::Msg(EXECABORT.into()));
        }
        ctx.out.null_array();
        return Ok(());
    }
    ctx.srv.watches.forget(id);
    ctx.out.array(state.len());
    for q in &state.cmds {
        let argv = state.argv(q);
        if !ctx.client.user.unrestricted.get() {
            if let Some(err) = super::acl::exec_refusal(ctx.srv, ctx.client, q.spec, &argv) {
                ctx.srv.count_error(&err);
                ctx.out.error(&err.to_string());
                continue;
            }
        }
        ctx.call_nested(q.id, q.spec, &argv);
    }
    // CLIENT LIST still shows the transaction while it runs, as in Redis.
    end_transaction(ctx.srv, ctx.client);
    Ok(())
}

/// Whether a key the client watched while it was live has logically expired since.
fn watched_key_expired(ctx: &Ctx<'_>) -> bool {
    let now = ctx.now;
    ctx.srv
        .watches
        .live_watched(ctx.client.id)
        .into_iter()
        .any(|(db, key)| {
            ctx.ks.dbs.get(db).is_some_and(|d| d.peek(key).is_some() && d.is_expired(key, now))
        })
}

/// Abandons the transaction and unwatches every key.
///
/// ```text
/// DISCARD
/// ```
fn discard(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    end_transaction(ctx.srv, ctx.client);
    ctx.out.ok();
    Ok(())
}

/// Makes the next EXEC conditional on none of the keys changing until then.
///
/// ```text
/// WATCH key [key ...]
/// ```
fn watch(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    let (id, db, now) = (ctx.client.id, ctx.db, ctx.now);
    for key in &argv[1..] {
        // A key already expired but not yet deleted is "stale": its deletion by expiry
        // later is no change.
        let d = &ctx.ks.dbs[db];
        let stale = d.peek(key).is_some() && d.is_expired(key, now);
        ctx.srv.watches.watch(id, db, key, stale);
    }
    ctx.out.ok();
    Ok(())
}

/// Forgets every watched key (and a pending watch failure).
///
/// ```text
/// UNWATCH
/// ```
fn unwatch(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.srv.watches.forget(ctx.client.id);
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> &'static CommandSpec {
        crate::commands::registry()
            .lookup(name.as_bytes())
            .unwrap()
            .1
    }

    #[test]
    fn queue_stores_arguments_back_to_back() {
        let mut m = MultiState::default();
        m.push(1, spec("set"), &[b"SET", b"k", b"v"], 0);
        m.push(2, spec("get"), &[b"GET", b""], 0);
        m.push(3, spec("ping"), &[b"PING"], 0);
        assert_eq!(m.len(), 3);
        let got: Vec<Vec<&[u8]>> = m.cmds.iter().map(|q| m.argv(q).to_vec()).collect();
        assert_eq!(got[0], vec![&b"SET"[..], b"k", b"v"]);
        assert_eq!(got[1], vec![&b"GET"[..], b""]);
        assert_eq!(got[2], vec![&b"PING"[..]]);
        assert!(m.any_has(WRITE) && m.any_has(DENYOOM));
        assert!(m.memory() >= 10);
    }

    #[test]
    fn only_transaction_control_runs_inside_multi() {
        for name in ["exec", "discard", "multi", "watch", "quit", "reset"] {
            assert!(runs_in_multi(spec(name)), "{name}");
        }
        for name in ["unwatch", "get", "ping", "select"] {
            assert!(!runs_in_multi(spec(name)), "{name}");
        }
    }
}
