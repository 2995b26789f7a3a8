//! One script execution (Redis's `scriptPrepareForRun`, `luaCallFunction`, `scriptCall`).
//!
//! The script's commands run through [`Ctx::call_nested_as`] as the scripts' own client,
//! so their effects join the EVAL / FCALL's: the journal records the script's writes as one
//! atomic unit, and the EVAL itself is never propagated (Redis 7.0's effect replication).
//! `redis.call` reaches [`command`] through the interpreter's "bridge", a Rust function created
//! once ([`make_bridge`]) that finds the running execution's state, and with it the command's
//! `Ctx`, through [`Active`] for exactly the duration of the execution. EVAL's `redis.call` is
//! the bridge itself; the other `redis.*` functions, and FCALL's, are the permanent functions
//! of `engine`, which reach the same state through [`forwarded`] (see [`Op`]).
//!
//! Cost notes (EVALSHA of one `redis.call` is the benchmark): creating anything per call, the
//! tables and every Rust-side Lua access are a visible share of such a call, so the bridge is
//! permanent, `KEYS` / `ARGV` are reused while scripts leave them alone, the bridge is
//! installed by the Lua wrapper, and the collector runs by garbage held rather than by call
//! count ([`collect_garbage`]).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table, Value};
use smallvec::SmallVec;

use super::engine::{self, error_table, Engine, Op, REPL_AOF, REPL_REPLICA};
use super::{convert, flags, Busy};
use crate::commands::flags as cmdflags;
use crate::dispatch::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::protocol::{ReplyBuf, Resp};
use crate::server::client::Client;

/// What to run.
pub struct Invocation<'i> {
    /// The whole EVAL / FCALL command (FUNCTION STATS shows it while busy).
    pub argv: &'i [&'i [u8]],
    pub func: Function,
    pub keys: &'i [&'i [u8]],
    pub args: &'i [&'i [u8]],
    /// EVAL (true) or FCALL (false).
    pub eval_mode: bool,
    /// The script's sha or the function's name (error messages, logs).
    pub name: &'i str,
    /// Script flags ([`flags`]).
    pub flags: u32,
    /// Called as EVAL_RO / EVALSHA_RO / FCALL_RO.
    pub read_only: bool,
}

/// Per-execution state `redis.call` works with.
struct RunState<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    /// The EVAL / FCALL command (FUNCTION STATS shows it while busy).
    argv: &'c [&'c [u8]],
    client: Client,
    /// Reply buffer of the script's commands.
    out: ReplyBuf,
    read_only: bool,
    allow_oom: bool,
    /// The server was over `maxmemory` when the script started.
    oom_at_start: bool,
    /// The script ran a write command (`SCRIPT_WRITE_DIRTY`).
    wrote: bool,
    /// `redis.set_repl` flags.
    repl: i64,
    busy: Rc<Busy>,
}

/// Whether the server is over `maxmemory` now.
pub fn over_maxmemory(ctx: &Ctx<'_>) -> bool {
    let max = ctx.srv.config.maxmemory;
    max > 0 && crate::alloc::used_memory() as i64 > max
}

/// The checks Redis makes before running a script with flags (a shebang or a function).
fn prepare_checks(ctx: &Ctx<'_>, inv: &Invocation<'_>) -> CmdResult {
    if inv.flags & flags::EVAL_COMPAT != 0 {
        return Ok(());
    }
    if inv.flags & flags::NO_WRITES == 0 && inv.read_only {
        return Err(CmdError::err("Can not execute a script with write flag using *_ro command."));
    }
    if inv.flags & flags::NO_WRITES == 0 {
        // Redis's order: a read-only replica, then a disk error, then too few replicas.
        let repl = crate::replication::script_write_refusal(ctx.srv, ctx.client);
        if repl.is_some_and(|e| e.starts_with("-READONLY")) {
            return Err(CmdError::raw("READONLY Can not run script with write flag on readonly replica"));
        }
        if crate::commands::persistence::writes_denied(ctx.srv) {
            return Err(CmdError::raw(crate::commands::persistence::MISCONF_SCRIPT));
        }
        if let Some(e) = repl {
            return Err(CmdError::raw(&e[1..]));
        }
    }
    if inv.flags & (flags::ALLOW_OOM | flags::NO_WRITES) == 0 && over_maxmemory(ctx) {
        return Err(CmdError::raw(
            "OOM allow-oom flag is not set on the script, can not run it when used memory > \
             'maxmemory'",
        ));
    }
    Ok(())
}

/// Runs a script or function and writes its reply (or returns its error).
pub fn run(ctx: &mut Ctx<'_>, inv: Invocation<'_>) -> CmdResult {
    prepare_checks(ctx, &inv)?;
    let scripting = &mut ctx.srv.scripting;
    let engine = if inv.eval_mode { scripting.eval.clone() } else { scripting.func.clone() };
    let busy = scripting.busy.clone();
    let Some(mut client) = scripting.client.take() else {
        return Err(CmdError::err("script already running"));
    };
    client.db = ctx.db;
    client.shared.info.borrow_mut().resp = 2;
    let threshold = ctx.srv.config.busy_reply_threshold.max(0) as u64;
    busy.started.set(Some(crate::util::clock::stamp()));
    busy.eval_mode.set(inv.eval_mode);
    {
        let mut name = busy.name.borrow_mut();
        name.clear();
        name.push_str(inv.name);
    }
    busy.threshold_ms.set(threshold);
    busy.timed_out.set(false);
    busy.killed.set(false);
    busy.wrote.set(false);
    busy.last_poll.set(None);
    let no_flags = inv.flags & flags::EVAL_COMPAT != 0;
    let out = scripting_reply_buf(ctx);
    let state = RunState {
        oom_at_start: over_maxmemory(ctx),
        ctx,
        argv: inv.argv,
        client,
        out,
        read_only: inv.read_only || (!no_flags && inv.flags & flags::NO_WRITES != 0),
        allow_oom: !no_flags && inv.flags & flags::ALLOW_OOM != 0,
        wrote: false,
        repl: REPL_AOF | REPL_REPLICA,
        busy: busy.clone(),
    };
    let cell = RefCell::new(state);
    let result = execute(&engine, &cell, &inv);
    let state = cell.into_inner();
    collect_garbage(&engine);
    busy.started.set(None);
    busy.timed_out.set(false);
    engine::reset_hook(&engine, &busy);
    let resp3 = state.client.shared.info.borrow().resp == 3;
    let ctx = state.ctx;
    super::busy::end(ctx.srv, &busy);
    ctx.srv.scripting.client = Some(state.client);
    if state.out.buf.capacity() <= REPLY_BUF_KEEP {
        ctx.srv.scripting.reply = Some(state.out);
    }
    if busy.shutdown.replace(false) {
        // SHUTDOWN NOSAVE while busy: the server exits without answering the script's caller.
        ctx.srv.shutdown = Some(crate::server::Shutdown::Command { save: Some(false) });
        ctx.client.close_after_reply = true;
        return Ok(());
    }
    match result {
        Ok((true, v)) => match returned_error(&v) {
            Some((msg, counted)) => Err(uncounted(ctx, CmdError::Msg(msg.into()), counted)),
            None => {
                convert::lua_to_reply(ctx.out, &v, resp3);
                Ok(())
            }
        },
        Ok((false, v)) => {
            let counted = match &v {
                Value::Table(t) => t.raw_get::<bool>("ignore_error_stats_update").unwrap_or(false),
                _ => false,
            };
            Err(uncounted(ctx, script_error(&v, inv.name), counted))
        }
        Err(e) => Err(CmdError::err(format!(
            "Error running script {}, {:.100}",
            inv.name,
            engine::lua_error_text(&e)
        ))),
    }
}

/// Largest script reply buffer kept for the next execution (a script that read a large
/// reply does not pin its buffer).
const REPLY_BUF_KEEP: usize = 64 * 1024;

/// The reply buffer of the script's commands: the one the last execution left, or a new one.
/// Why: a fresh 16 KiB buffer per execution showed in EVALSHA profiles.
fn scripting_reply_buf(ctx: &mut Ctx<'_>) -> ReplyBuf {
    match ctx.srv.scripting.reply.take() {
        Some(mut out) => {
            out.buf.clear();
            out.resp = Resp::V2;
            out
        }
        None => ReplyBuf::new(Resp::V2),
    }
}

/// Garbage an interpreter may hold beyond its live size before a collection cycle runs.
const GC_SLACK: usize = 16 * 1024;

/// Lua's collector only runs when allocation reaches twice the live size, and Redis instead
/// steps it every 50 calls, which costs about a full cycle per 75 calls whatever the scripts
/// allocate. Here a cycle runs once the interpreter holds [`GC_SLACK`] bytes more than after
/// the last one: small scripts that make little garbage pay for a cycle rarely, and the
/// interpreter stays within `GC_SLACK` of its live size as with Redis's steps.
fn collect_garbage(engine: &engine::Engine) {
    let used = engine.lua.used_memory();
    if used < engine.gc_floor.get().saturating_add(GC_SLACK) {
        return;
    }
    // A step this large finishes the current cycle (and only it).
    let _ = engine.lua.gc_step_kbytes(1 << 20);
    engine.gc_floor.set(engine.lua.used_memory());
}

/// A top-level `{err=...}` the script returned: its message, and whether it was already counted
/// in the error statistics (a `redis.pcall` error).
fn returned_error(v: &Value) -> Option<(String, bool)> {
    let Value::Table(t) = v else {
        return None;
    };
    let Ok(Value::String(msg)) = t.raw_get::<Value>("err") else {
        return None;
    };
    let counted = t.raw_get::<bool>("ignore_error_stats_update").unwrap_or(false);
    Some((msg.to_string_lossy(), counted))
}

/// The dispatcher counts every error a command returns; an error the script's command already
/// counted must not count twice (Redis's `ignore_err_stats_update`), so take one back first.
fn uncounted(ctx: &mut Ctx<'_>, e: CmdError, counted: bool) -> CmdError {
    if counted {
        let code = e.code();
        let srv = &mut *ctx.srv;
        srv.stats.total_error_replies = srv.stats.total_error_replies.saturating_sub(1);
        if let Some(n) = srv.error_stats.get_mut(&code) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                srv.error_stats.remove(&code);
            }
        }
    }
    e
}

/// The error reply of a failed script: `<err> script: <name>, on <source>:<line>.`
fn script_error(v: &Value, name: &str) -> CmdError {
    let Value::Table(t) = v else {
        return CmdError::err(format!("Error running script {name}, execution failure"));
    };
    let text = |k: &str| -> Option<String> {
        match t.raw_get::<Value>(k) {
            Ok(Value::String(s)) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
            Ok(Value::Integer(i)) => Some(i.to_string()),
            Ok(Value::Number(n)) => Some((n as i64).to_string()),
            _ => None,
        }
    };
    let mut msg = text("err").unwrap_or_default();
    if let (Some(source), Some(line)) = (text("source"), text("line")) {
        msg.push_str(&format!(" script: {name}, on {source}:{line}."));
    }
    CmdError::Msg(msg.into())
}

/// Where the bridge finds the running execution's state: the address of the
/// `RefCell<RunState>` on [`run`]'s stack while [`execute`] runs, null otherwise.
///
/// Why not `Lua::scope`, which would check the borrow for us: a scoped function is created,
/// registered and destroyed on every execution, about 8% of a small EVALSHA (and garbage for
/// the collector). The bridge is created once per interpreter instead ([`make_bridge`]), the
/// permanent `redis.*` functions and the instruction hook call straight into Rust
/// ([`forwarded`], [`poll`]), and only [`Active::enter`] points them at a state, for as long as
/// its guard lives.
#[derive(Clone, Default)]
pub struct Active(Rc<Cell<*const ()>>);

impl Active {
    fn enter<'g>(&'g self, cell: &'g RefCell<RunState<'_, '_>>) -> ActiveGuard<'g> {
        let prev = self.0.replace(std::ptr::from_ref(cell).cast());
        ActiveGuard { active: self, prev }
    }

    /// Runs `f` on the running execution's state; `None` outside an execution (or, which
    /// cannot happen, while the state is already borrowed).
    fn with<R>(&self, f: impl FnOnce(&mut RunState<'_, '_>) -> R) -> Option<R> {
        let at = self.0.get();
        if at.is_null() {
            return None;
        }
        // SAFETY: a non-null `Active` is the address of a `RefCell<RunState>` that outlives
        // the `ActiveGuard` which set it (the guard borrows it), and the guard resets the
        // pointer when it drops, unwinding included. Lua runs our functions on this thread
        // only (`Lua` is not `Send`), so the pointer is read while the guard lives, and the
        // `RefCell` still refuses a second mutable borrow. The lifetimes of `RunState` are
        // erased here, but nothing borrowed from it outlives `f`.
        #[allow(unsafe_code)]
        let cell = unsafe { &*at.cast::<RefCell<RunState<'_, '_>>>() };
        let mut st = cell.try_borrow_mut().ok()?;
        Some(f(&mut st))
    }
}

/// Clears [`Active`] again when the execution ends, also by unwinding.
struct ActiveGuard<'g> {
    active: &'g Active,
    prev: *const (),
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.active.0.set(self.prev);
    }
}

/// Creates an interpreter's bridge: the Rust function EVAL installs as `redis.call` for the
/// duration of an execution. Called outside one (a script that kept it somewhere), it raises
/// an error.
pub(super) fn make_bridge(lua: &Lua, active: &Active) -> mlua::Result<Function> {
    let active = active.clone();
    lua.create_function(move |lua, mut args: MultiValue| {
        let args = args.make_contiguous();
        match active.with(|st| command(lua, st, args)) {
            Some(Ok((true, v))) => Ok(v),
            Some(Ok((false, v))) => Err(engine::raised(&v)),
            Some(Err(e)) => Err(e),
            // The forwarders' error (`engine::register_redis_api`).
            None => Err(engine::outside_invocation("redis.call/pcall")),
        }
    })
}

/// A `redis.*` call made through the interpreter's permanent functions (see [`Op`]): its
/// outcome, or `None` outside an execution. Why straight from Rust rather than through a
/// second Lua call: that call needs Lua stack room next to the arguments already there, and
/// `redis.call` with thousands of arguments (`unpack` of a big table) then ran out of it.
pub(super) fn forwarded(
    lua: &Lua,
    active: &Active,
    op: Op,
    args: &[Value],
) -> Option<mlua::Result<Outcome>> {
    active.with(|st| bridge(lua, st, op, args))
}

/// The instruction hook's turn to serve other clients while a script is busy (see
/// [`super::busy`]); nothing outside an execution.
pub(super) fn poll(active: &Active) {
    active.with(|st| super::busy::poll(st.ctx, &st.busy, st.argv));
}

/// Calls the function with the bridge in place.
fn execute(
    engine: &Engine,
    cell: &RefCell<RunState<'_, '_>>,
    inv: &Invocation<'_>,
) -> mlua::Result<(bool, Value)> {
    let lua = &engine.lua;
    let _active = engine.active.enter(cell);
    let bridge = &engine.bridge;
    let result = if inv.eval_mode {
        let s = eval_tables(engine, inv)?;
        let result = engine.invoke0.call::<(bool, Value)>((&inv.func, bridge));
        if untouched(&s.keys, s.nkeys) && untouched(&s.args, s.nargs) {
            *engine.spare.borrow_mut() = Some(s);
        }
        result
    } else {
        let (keys, args) = (string_array(lua, inv.keys)?, string_array(lua, inv.args)?);
        engine.invoke.call::<(bool, Value)>((&inv.func, keys, args, bridge))
    };
    if result.is_err() {
        // The wrapper did not get to remove the bridge (an error escaped the handler).
        engine.private.raw_set(&engine.names.bridge, Value::Nil)?;
    }
    result
}

fn string_array(lua: &Lua, items: &[&[u8]]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, a) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(a)?)?;
    }
    Ok(t)
}

/// EVAL's `KEYS` and `ARGV`, set as globals: the last call's tables refilled when it left them
/// as it got them, or new ones. Why: two new tables per call were a good part of a small
/// EVALSHA (and of the garbage the collector then walks). An EVAL script has nowhere to keep
/// a table between calls (the globals are frozen), so only its own call sees what it did.
fn eval_tables(engine: &Engine, inv: &Invocation<'_>) -> mlua::Result<engine::Spare> {
    let lua = &engine.lua;
    let Some(s) = engine.spare.borrow_mut().take() else {
        let keys = string_array(lua, inv.keys)?;
        let args = string_array(lua, inv.args)?;
        engine.globals.raw_set(&engine.names.keys, &keys)?;
        engine.globals.raw_set(&engine.names.argv, &args)?;
        return Ok(engine::Spare { keys, nkeys: inv.keys.len(), args, nargs: inv.args.len() });
    };
    refill(lua, &s.keys, s.nkeys, inv.keys)?;
    refill(lua, &s.args, s.nargs, inv.args)?;
    Ok(engine::Spare { nkeys: inv.keys.len(), nargs: inv.args.len(), ..s })
}

/// Largest `KEYS` / `ARGV` table checked for reuse after a call.
const SPARE_MAX: usize = 16;

/// Whether `t` is still a plain array of `n` items: no metatable, no other key.
fn untouched(t: &Table, n: usize) -> bool {
    if n > SPARE_MAX || t.metatable().is_some() {
        return false;
    }
    if n == 0 {
        return t.is_empty();
    }
    let mut count = 0;
    for pair in t.pairs::<Value, Value>() {
        match pair {
            Ok((Value::Integer(i), _)) if i >= 1 && i as usize <= n => count += 1,
            _ => return false,
        }
    }
    count == n
}

/// Sets `items` as `t[1..]`, clearing what is left of the `had` items before.
fn refill(lua: &Lua, t: &Table, had: usize, items: &[&[u8]]) -> mlua::Result<()> {
    for (i, a) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(a)?)?;
    }
    for i in items.len()..had {
        t.raw_set(i + 1, Value::Nil)?;
    }
    Ok(())
}

/// What a `redis.*` call comes to: `(ok, value)`.
pub(super) type Outcome = (bool, Value);

fn fail(lua: &Lua, msg: &str) -> mlua::Result<Outcome> {
    Ok((false, Value::Table(error_table(lua, msg.as_bytes())?)))
}

/// A forwarded `redis.*` call (see [`Op`]).
fn bridge(lua: &Lua, st: &mut RunState<'_, '_>, op: Op, rest: &[Value]) -> mlua::Result<Outcome> {
    match op {
        Op::Call | Op::PCall => command(lua, st, rest),
        Op::SetResp => set_resp(lua, st, rest),
        Op::SetRepl => set_repl(lua, st, rest),
        Op::AclCheck => acl_check(lua, st, rest),
    }
}

/// `redis.acl_check_cmd(cmd, ...)`: whether the script's caller may run the command.
fn acl_check(lua: &Lua, st: &mut RunState<'_, '_>, args: &[Value]) -> mlua::Result<Outcome> {
    let mut nums = Vec::new();
    let mut pieces = SmallVec::new();
    if let Err(msg) = command_pieces(args, &mut nums, &mut pieces) {
        return fail(lua, msg);
    }
    let refs = piece_refs(&pieces, &nums);
    match crate::commands::acl::script_may_run(st.ctx.client, &refs) {
        Some(ok) => Ok((true, Value::Boolean(ok))),
        None => fail(lua, "Invalid command passed to redis.acl_check_cmd()"),
    }
}

/// `redis.setresp(2|3)`.
fn set_resp(lua: &Lua, st: &mut RunState<'_, '_>, args: &[Value]) -> mlua::Result<Outcome> {
    if args.len() != 1 {
        return fail(lua, "redis.setresp() requires one argument.");
    }
    let v = lua.coerce_number(args[0].clone())?.unwrap_or(0.0) as i64;
    if v != 2 && v != 3 {
        return fail(lua, "RESP version must be 2 or 3.");
    }
    st.client.shared.info.borrow_mut().resp = v as u8;
    st.out.resp = if v == 3 { Resp::V3 } else { Resp::V2 };
    Ok((true, Value::Nil))
}

/// `redis.set_repl(flags)`. Our journal feeds the AOF and the replicas from one stream, so
/// any flag other than `REPL_NONE` propagates to both.
fn set_repl(lua: &Lua, st: &mut RunState<'_, '_>, args: &[Value]) -> mlua::Result<Outcome> {
    if args.len() != 1 {
        return fail(lua, "redis.set_repl() requires two arguments.");
    }
    let v = lua.coerce_number(args[0].clone())?.unwrap_or(-1.0) as i64;
    if v & !(REPL_AOF | REPL_REPLICA) != 0 {
        return fail(
            lua,
            "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        );
    }
    st.repl = v;
    Ok((true, Value::Nil))
}

/// The journal's readers of a script's writes under `redis.set_repl` flags `repl`.
fn journal_readers(repl: i64) -> u8 {
    use crate::journal::to;
    let mut readers = 0;
    if repl & REPL_AOF != 0 {
        readers |= to::LOG;
    }
    if repl & REPL_REPLICA != 0 {
        readers |= to::REPLICAS;
    }
    readers
}

/// One `redis.call` argument: a Lua string read in place, or a number's text in the side
/// buffer.
enum Piece<'v> {
    Str(mlua::BorrowedBytes<'v>),
    Num(std::ops::Range<usize>),
}

/// Reads `redis.call` arguments into `pieces`: strings as they are, numbers with `%.17g`
/// (written to `nums`); the error Redis raises when there is none or one is neither. Why not
/// a `Vec<Vec<u8>>`: a copy and an allocation per argument showed in profiles of small
/// scripts.
fn command_pieces<'v>(
    args: &'v [Value],
    nums: &mut Vec<u8>,
    pieces: &mut SmallVec<[Piece<'v>; 6]>,
) -> Result<(), &'static str> {
    if args.is_empty() {
        return Err("Please specify at least one argument for this redis lib call");
    }
    for a in args {
        let text = match a {
            Value::String(s) => {
                pieces.push(Piece::Str(s.as_bytes()));
                continue;
            }
            Value::Integer(i) if i.unsigned_abs() < 1 << 53 => i.to_string(),
            Value::Integer(i) => crate::util::num::fmt_double_17g(*i as f64),
            Value::Number(n) => crate::util::num::fmt_double_17g(*n),
            _ => return Err("Lua redis lib command arguments must be strings or integers"),
        };
        let start = nums.len();
        nums.extend_from_slice(text.as_bytes());
        pieces.push(Piece::Num(start..nums.len()));
    }
    Ok(())
}

/// The command line [`command_pieces`] read, as argument slices.
fn piece_refs<'a>(pieces: &'a [Piece<'_>], nums: &'a [u8]) -> SmallVec<[&'a [u8]; 8]> {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Str(b) => &b[..],
            Piece::Num(r) => &nums[r.clone()],
        })
        .collect()
}

/// `redis.call` / `redis.pcall`: the script-side checks, then the command itself.
fn command(lua: &Lua, st: &mut RunState<'_, '_>, args: &[Value]) -> mlua::Result<Outcome> {
    let mut nums = Vec::new();
    let mut pieces = SmallVec::new();
    if let Err(msg) = command_pieces(args, &mut nums, &mut pieces) {
        return fail(lua, msg);
    }
    let refs = piece_refs(&pieces, &nums);
    let (id, spec) = match crate::dispatch::resolve(&refs) {
        Ok(found) => found,
        Err(CmdError::WrongArity(_)) => {
            return rejected(lua, st, None, "Wrong number of args calling Redis command from script")
        }
        Err(_) => return rejected(lua, st, None, "Unknown Redis command called from script"),
    };
    if let Some(err) = refuse(st, spec, &refs) {
        return rejected(lua, st, Some((id, spec)), err);
    }
    if spec.has(cmdflags::WRITE) {
        st.wrote = true;
        st.busy.wrote.set(true);
    }
    st.out.buf.clear();
    let readers = journal_readers(st.repl);
    st.ctx.call_nested_as(&mut st.client, &mut st.out, id, spec, &refs, readers);
    if spec.has(cmdflags::READONLY) && st.ctx.srv.tracking.clients > 0 {
        // Client-side caching: the caller may cache every key the script declared.
        let (srv, caller, outer) = (&mut *st.ctx.srv, &*st.ctx.client, st.ctx.cmd);
        crate::dispatch::remember_tracked_keys(srv, caller, outer, st.argv);
    }
    let failed = convert::is_error(&st.out.buf);
    let v = convert::reply_to_lua(lua, &st.out.buf)?;
    Ok((!failed, v))
}

/// A command the script may not run: counted like Redis's rejected calls, and returned as an
/// error table marked as already counted.
fn rejected(
    lua: &Lua,
    st: &mut RunState<'_, '_>,
    cmd: Option<(usize, &'static crate::commands::CommandSpec)>,
    msg: &str,
) -> mlua::Result<Outcome> {
    let srv = &mut *st.ctx.srv;
    if let Some((id, spec)) = cmd {
        srv.cmd_stats_mut(id, spec).rejected_calls += 1;
    }
    let text = String::from_utf8_lossy(&engine::error_text(msg.as_bytes())).into_owned();
    srv.count_error(&CmdError::Msg(text.into()));
    let t = error_table(lua, msg.as_bytes())?;
    t.raw_set("ignore_error_stats_update", true)?;
    Ok((false, Value::Table(t)))
}

/// Why a script may not run `spec` now (Redis's `scriptCall` checks), if it may not.
fn refuse(
    st: &mut RunState<'_, '_>,
    spec: &'static crate::commands::CommandSpec,
    argv: &[&[u8]],
) -> Option<&'static str> {
    if spec.has(cmdflags::NOSCRIPT) && !st.ctx.srv.scripting.disable_deny_scripts {
        return Some("This Redis command is not allowed from script");
    }
    if !st.ctx.client.user.unrestricted.get() {
        let (srv, caller) = (&mut *st.ctx.srv, &*st.ctx.client);
        if let Some(err) = crate::commands::acl::script_refusal(srv, caller, spec, argv) {
            return Some(err);
        }
    }
    if st.read_only && spec.has(cmdflags::WRITE | cmdflags::MAY_REPLICATE) {
        return Some("Write commands are not allowed from read-only scripts.");
    }
    if spec.has(cmdflags::WRITE) {
        // Redis's order: a read-only replica, then a disk error, then too few replicas.
        let repl = crate::replication::script_write_refusal(st.ctx.srv, st.ctx.client);
        if let Some(e) = repl.filter(|e| e.starts_with("-READONLY")) {
            return Some(e);
        }
        if crate::commands::persistence::writes_denied(st.ctx.srv) {
            return Some(crate::commands::persistence::MISCONF_RDB_IN_SCRIPT);
        }
        if repl.is_some() {
            return repl;
        }
    }
    if !st.allow_oom
        && !st.wrote
        && st.oom_at_start
        && spec.has(cmdflags::DENYOOM)
        && st.ctx.srv.config.maxmemory > 0
    {
        return Some("-OOM command not allowed when used memory > 'maxmemory'.");
    }
    None
}
