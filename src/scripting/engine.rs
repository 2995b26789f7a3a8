//! One Lua interpreter with Redis's API and sandbox (Redis's `luaRegisterRedisAPI` and
//! `scriptingInit`).
//!
//! The interpreter opens only the base, table, string and math libraries (plus the bundled
//! `bit`, `cjson`, `cmsgpack` and `struct`), defines the `redis` table, then runs
//! `sandbox.lua`, which freezes the globals behind read-only proxies. Commands reach the
//! server through the interpreter's "bridge" function, which the call wrappers install in a
//! private table for the duration of an execution (see `sandbox.lua` and [`super::run`]).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use mlua::{ChunkMode, Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};

use super::Busy;

/// Redis version the scripts see (`redis.REDIS_VERSION`).
pub const REDIS_VERSION: &str = "7.0.15";
/// `redis.REDIS_VERSION_NUM`: 0x00MMmmpp.
pub const REDIS_VERSION_NUM: i64 = 0x0007_000f;

/// Source name of our own Lua code; the error handler skips its frames when it looks for the
/// script position an error happened at.
const OWN_SOURCE: &str = "@ferrodis";

/// Instructions between two runs of the busy / kill hook (Redis uses the same count).
const HOOK_EVERY: u32 = 100_000;

/// Handles to one interpreter. Cloning copies handles, not the interpreter.
#[derive(Clone)]
pub struct Engine {
    pub lua: Lua,
    /// Private table shared with `sandbox.lua`: `bridge` and `busy` live here during a call.
    pub private: Table,
    /// Environment every script and library runs in.
    pub env: Table,
    /// The frozen globals the environment reads from (`KEYS` / `ARGV` are set here).
    pub globals: Table,
    /// `function(f, a, b, bridge) -> ok, result`: calls `f(a, b)` under the error handler with
    /// `bridge` in place (FCALL).
    pub invoke: Function,
    /// `function(f, bridge) -> ok, result`: calls `f()` under the error handler with `bridge`
    /// in place, also as `redis.call` (EVAL). Why a second wrapper: EVAL passes nothing, and
    /// this one needs no per-call closure (garbage for the GC).
    pub invoke0: Function,
    /// Interned Lua strings for the keys set on every call (`bridge`, `KEYS`, `ARGV`). Why:
    /// pushing a Rust `&str` key creates (hashes, interns) a Lua string each time, which
    /// profiling showed at several percent of a small EVALSHA.
    pub names: Names,
    /// EVAL's `KEYS` and `ARGV` tables of the last call, kept for the next one when the script
    /// left them as it got them (see [`super::run`]).
    pub spare: std::cell::RefCell<Option<Spare>>,
    /// Memory in use after the last garbage-collection cycle (see `run::collect_garbage`).
    pub gc_floor: Cell<usize>,
    /// Builds the environment a library's top level sees during FUNCTION LOAD.
    pub library_api: Function,
    /// Switches what the environment reads through (nil = the full globals).
    pub set_lookup: Function,
    /// `function(f) -> ok, err`: runs a library's top level under a plain pcall.
    pub run_library: Function,
    /// EVAL's `redis.call` (see [`Op`]), and the execution it and the permanent `redis.*`
    /// functions serve (see `run::Active`).
    pub bridge: Function,
    pub active: super::run::Active,
}

/// A `redis.*` call made through the permanent functions of the `redis` table, which call
/// into Rust (`run::forwarded`). EVAL also installs the bridge itself as `redis.call` for
/// the duration of an execution, which saves the forwarder's argument handling per command.
/// (FCALL keeps the forwarders: a library may keep `redis.call` in an upvalue and call it
/// outside an execution, and the forwarder's error is the one it has always got there.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `redis.call`.
    Call,
    /// `redis.pcall`.
    PCall,
    /// `redis.setresp`.
    SetResp,
    /// `redis.set_repl`.
    SetRepl,
    /// `redis.acl_check_cmd`.
    AclCheck,
}

/// See [`Engine::names`].
#[derive(Clone)]
pub struct Names {
    pub bridge: mlua::String,
    pub keys: mlua::String,
    pub argv: mlua::String,
}

/// See [`Engine::spare`]: the tables and how many items each holds (`1..=n`, nothing else).
#[derive(Clone)]
pub struct Spare {
    pub keys: Table,
    pub nkeys: usize,
    pub args: Table,
    pub nargs: usize,
}

impl Engine {
    /// Creates an interpreter. `rng` is the lrand48 state behind `math.random`, `busy` the
    /// shared busy-script state the instruction hook consults.
    pub fn new(rng: Rc<Cell<u64>>, busy: Rc<Busy>) -> mlua::Result<Engine> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        super::libs::register_all(&lua)?;
        let private = lua.create_table()?;
        let active = super::run::Active::default();
        let names = Names {
            bridge: lua.create_string("bridge")?,
            keys: lua.create_string("KEYS")?,
            argv: lua.create_string("ARGV")?,
        };
        register_redis_api(&lua, &active)?;
        let rand = lua.create_function(move |_, (op, seed): (i64, Option<f64>)| {
            if op == 1 {
                lrand48_seed(&rng, seed.unwrap_or(0.0) as i64 as i32);
                return Ok(0);
            }
            Ok(lrand48_next(&rng))
        })?;
        let errtext = lua.create_function(|lua, v: Value| match v {
            Value::Error(e) => Ok(Value::String(lua.create_string(raised_text(&e))?)),
            other => Ok(other),
        })?;
        let sandbox: Table = lua
            .load(include_str!("sandbox.lua"))
            .set_name(OWN_SOURCE)
            .set_mode(ChunkMode::Text)
            .call((private.clone(), rand, errtext))?;
        let handler = lua.create_function(error_handler)?;
        let redis_api: Table = sandbox.get("redis_api")?;
        let redis_call: Function = redis_api.raw_get("call")?;
        // Why the bridge is installed here rather than from Rust: four table writes from Rust
        // cost more than the Lua that does them (a few percent of a small EVALSHA).
        let invoke: Function = lua
            .load(
                "local handler, priv = ...\n\
                 return function(f, a, b, bridge)\n\
                   priv.bridge = bridge\n\
                   local ok, r = xpcall(function() return f(a, b) end, handler)\n\
                   priv.bridge = nil\n\
                   return ok, r\n\
                 end",
            )
            .set_name(OWN_SOURCE)
            .call((handler.clone(), private.clone()))?;
        let invoke0: Function = lua
            .load(
                "local handler, priv, api, call = ...\n\
                 return function(f, bridge)\n\
                   priv.bridge = bridge\n\
                   api.call = bridge\n\
                   local ok, r = xpcall(f, handler)\n\
                   priv.bridge = nil\n\
                   api.call = call\n\
                   return ok, r\n\
                 end",
            )
            .set_name(OWN_SOURCE)
            .call((handler, private.clone(), redis_api, redis_call))?;
        let bridge = super::run::make_bridge(&lua, &active)?;
        // mlua keeps a pool of pre-allocated error slots for Rust callbacks, and while it is
        // empty a callback creates one on the Lua stack; handing that one back needs two free
        // stack slots, which a `redis.pcall` with ~8000 arguments (Lua's limit, and Redis's)
        // does not leave, so the first such call of a fresh interpreter failed. One callback
        // run here fills the pool.
        let warm = lua.create_function(|_, ()| Ok(()))?;
        lua.load("local f = ... f()").set_name(OWN_SOURCE).call::<()>(warm)?;
        let engine = Engine {
            bridge,
            active,
            env: sandbox.get("env")?,
            globals: sandbox.get("globals")?,
            library_api: sandbox.get("library_api")?,
            set_lookup: sandbox.get("set_lookup")?,
            run_library: sandbox.get("run_library")?,
            spare: Default::default(),
            gc_floor: Cell::new(0),
            invoke,
            invoke0,
            names,
            private,
            lua,
        };
        engine.install_hook(busy);
        Ok(engine)
    }

    /// Compiles `body` as a chunk named `name`, running in the sandbox environment. The error
    /// is Lua's message (`user_script:1: ...`).
    pub fn compile(&self, name: &str, body: &[u8]) -> Result<Function, String> {
        self.lua
            .load(body)
            .set_name(name)
            .set_mode(ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| lua_error_text(&e))
    }

    /// Sets the instruction-count hook that detects slow scripts, serves other clients while
    /// one runs, and kills it on request.
    fn install_hook(&self, busy: Rc<Busy>) {
        let active = self.active.clone();
        self.lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |lua, _| {
            hook(lua, &busy, &active)
        });
    }
}

/// The body of the instruction hook.
fn hook(lua: &Lua, busy: &Busy, active: &super::run::Active) -> mlua::Result<VmState> {
    if let Some(deadline) = busy.load_deadline.get() {
        if Instant::now() > deadline {
            return Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()));
        }
        return Ok(VmState::Continue);
    }
    if busy.started.get().is_none() {
        return Ok(VmState::Continue);
    }
    if busy.killed.get() {
        return killed(lua, busy, active);
    }
    if !busy.timed_out.get() {
        let limit = busy.threshold_ms.get();
        let elapsed = busy.elapsed_ms();
        if limit == 0 || elapsed < limit {
            return Ok(VmState::Continue);
        }
        busy.timed_out.set(true);
        let (cmd, name) = if busy.eval_mode.get() {
            ("SCRIPT KILL", busy.name.borrow().clone())
        } else {
            ("FUNCTION KILL", busy.name.borrow().clone())
        };
        tracing::warn!(
            "Slow script detected: still in execution after {elapsed} milliseconds. You can try \
             killing the script using the {cmd} command. Script name is: {name}."
        );
    }
    super::run::poll(active);
    if busy.killed.get() {
        return killed(lua, busy, active);
    }
    Ok(VmState::Continue)
}

/// Ends a killed script, unless the hook fired in our own wrappers (after the script's
/// protected call returned, where an error would escape the error handler).
fn killed(lua: &Lua, busy: &Busy, active: &super::run::Active) -> mlua::Result<VmState> {
    let own = lua
        .inspect_stack(0)
        .is_some_and(|info| info.source().source.as_deref() == Some(OWN_SOURCE));
    if own && busy.kill_hook_armed.get() {
        return Ok(VmState::Continue);
    }
    Err(killed_error(lua, busy, active))
}

/// The error that ends a killed script. From now on the hook runs on every line too, so a
/// script that catches the error with pcall cannot keep running.
fn killed_error(lua: &Lua, busy: &Busy, active: &super::run::Active) -> mlua::Error {
    if !busy.kill_hook_armed.replace(true) {
        tracing::warn!("Lua script killed by user with SCRIPT KILL.");
        let (b, a) = (busy.clone_rc(), active.clone());
        lua.set_hook(
            HookTriggers::new().every_line().every_nth_instruction(HOOK_EVERY),
            move |lua, _| hook(lua, &b, &a),
        );
    }
    mlua::Error::RuntimeError("Script killed by user with SCRIPT KILL...".into())
}

/// Restores the normal hook after a killed script ended.
pub fn reset_hook(engine: &Engine, busy: &Rc<Busy>) {
    if busy.kill_hook_armed.replace(false) {
        engine.install_hook(busy.clone());
    }
}

/// The error handler of every call (Redis's `__redis__err__handler`): turns the error into a
/// table `{err=..., source=..., line=...}` naming the script position it was raised at.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let table = match err {
        Value::Table(t) => t,
        Value::Error(e) if table_error(&e).is_some() => {
            let carried = table_error_full(&e).unwrap_or(TableError(String::new(), false));
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(&carried.0)?)?;
            if carried.1 {
                t.raw_set("ignore_error_stats_update", true)?;
            }
            t
        }
        other => {
            let t = lua.create_table()?;
            let mut msg = b"ERR ".to_vec();
            msg.extend_from_slice(&value_text(&other));
            t.raw_set("err", lua.create_string(&msg)?)?;
            t
        }
    };
    let mut level = 1;
    while let Some(info) = lua.inspect_stack(level) {
        let src = info.source();
        let own = src.source.as_deref() == Some(OWN_SOURCE);
        if src.what != "C" && !own {
            if let Some(source) = src.source.as_deref() {
                table.raw_set("source", source)?;
            }
            table.raw_set("line", info.curr_line())?;
            break;
        }
        level += 1;
    }
    Ok(table)
}

/// Text of an error value as Lua's `tostring` would give it.
fn value_text(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(i) => i.to_string().into_bytes(),
        Value::Number(n) => crate::util::num::fmt_double_17g(*n).into_bytes(),
        Value::Error(e) => lua_error_text(e).into_bytes(),
        Value::Nil => b"nil".to_vec(),
        Value::Boolean(b) => b.to_string().into_bytes(),
        _ => b"(error object is not a string)".to_vec(),
    }
}

/// The message of an mlua error without mlua's decorations.
pub fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        mlua::Error::MemoryError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Defines the `redis` table. `redis.call`, `pcall`, `setresp` and `set_repl` call into the
/// running execution (`run::forwarded`) as C functions, like Redis's: a Lua wrapper would be
/// tail-called and hide the script line from error messages.
fn register_redis_api(lua: &Lua, active: &super::run::Active) -> mlua::Result<()> {
    let redis = lua.create_table()?;
    for (name, op, what) in [
        ("call", Op::Call, "redis.call/pcall"),
        ("pcall", Op::PCall, "redis.call/pcall"),
        ("setresp", Op::SetResp, "redis.setresp"),
        ("set_repl", Op::SetRepl, "redis.set_repl"),
        ("acl_check_cmd", Op::AclCheck, "redis.acl_check_cmd"),
    ] {
        let active = active.clone();
        let f = lua.create_function(move |lua, mut args: mlua::MultiValue| {
            let outcome = super::run::forwarded(lua, &active, op, args.make_contiguous());
            let Some(outcome) = outcome else {
                return Err(outside_invocation(what));
            };
            let (ok, v) = outcome?;
            if !ok && op != Op::PCall {
                return Err(raised(&v));
            }
            Ok(v)
        })?;
        redis.set(name, f)?;
    }
    redis.set("sha1hex", lua.create_function(sha1hex)?)?;
    redis.set("error_reply", lua.create_function(error_reply)?)?;
    redis.set("status_reply", lua.create_function(status_reply)?)?;
    redis.set("log", lua.create_function(log)?)?;
    for (name, level) in LOG_LEVELS {
        redis.set(*name, *level)?;
    }
    redis.set("REDIS_VERSION", REDIS_VERSION)?;
    redis.set("REDIS_VERSION_NUM", REDIS_VERSION_NUM)?;
    redis.set("REPL_NONE", 0)?;
    redis.set("REPL_AOF", REPL_AOF)?;
    redis.set("REPL_SLAVE", REPL_REPLICA)?;
    redis.set("REPL_REPLICA", REPL_REPLICA)?;
    redis.set("REPL_ALL", REPL_AOF | REPL_REPLICA)?;
    lua.globals().set("redis", redis)?;
    Ok(())
}

/// The Lua error that raises the error table `v` a command answered (it keeps its "already
/// counted in the error statistics" mark).
pub fn raised(v: &Value) -> mlua::Error {
    let Value::Table(t) = v else {
        return mlua::Error::external(TableError(String::new(), false));
    };
    let msg = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.to_string_lossy(),
        _ => String::new(),
    };
    let counted = t.raw_get::<bool>("ignore_error_stats_update").unwrap_or(false);
    mlua::Error::external(TableError(msg, counted))
}

/// `redis.set_repl` flags.
pub const REPL_AOF: i64 = 1;
pub const REPL_REPLICA: i64 = 2;

/// Redis's log levels as scripts name them.
const LOG_LEVELS: &[(&str, i64)] =
    &[("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3)];

/// An error table `{err="ERR <msg>"}` (Redis's `luaPushError`), honouring a `-CODE` prefix.
pub fn error_table(lua: &Lua, msg: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(msg))?)?;
    Ok(t)
}

/// Redis's error-table text: `-CODE msg` keeps its code, anything else gets `ERR`; trailing
/// CR/LF are trimmed.
pub fn error_text(msg: &[u8]) -> Vec<u8> {
    let (code, rest): (&[u8], &[u8]) = match msg.strip_prefix(b"-") {
        Some(body) => match body.iter().position(|&c| c == b' ') {
            Some(sp) => (&body[..sp], &body[sp + 1..]),
            None => (b"ERR", body),
        },
        None => (b"ERR", msg),
    };
    let mut rest = rest;
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'\r' || first == b'\n' {
            rest = tail;
        } else {
            break;
        }
    }
    while let Some((&last, head)) = rest.split_last() {
        if last == b'\r' || last == b'\n' {
            rest = head;
        } else {
            break;
        }
    }
    let mut out = code.to_vec();
    out.push(b' ');
    out.extend_from_slice(rest);
    out
}

/// Raises `msg` as an `{err="ERR msg"}` error table (Redis's `luaPushError` + `luaError`).
fn fail<T>(msg: &str) -> mlua::Result<T> {
    Err(raise_table(msg))
}

/// `redis.sha1hex(s)`.
fn sha1hex(lua: &Lua, args: mlua::MultiValue) -> mlua::Result<Value> {
    if args.len() != 1 {
        return fail("wrong number of arguments");
    }
    let bytes = match lua.coerce_string(args[0].clone())? {
        Some(s) => s.as_bytes().to_vec(),
        None => Vec::new(),
    };
    Ok(Value::String(lua.create_string(super::sha1_hex(&bytes))?))
}

/// `redis.error_reply(msg)`: `{err=msg}`, with a `-` added when missing, or the
/// "wrong number or type of arguments" error table itself when misused.
fn error_reply(lua: &Lua, args: mlua::MultiValue) -> mlua::Result<Table> {
    match single_string(&args) {
        Some(s) => {
            let mut msg = s;
            if !msg.starts_with(b"-") {
                msg.insert(0, b'-');
            }
            error_table(lua, &msg)
        }
        None => error_table(lua, b"wrong number or type of arguments"),
    }
}

/// `redis.status_reply(msg)`: `{ok=msg}`.
fn status_reply(lua: &Lua, args: mlua::MultiValue) -> mlua::Result<Table> {
    match single_string(&args) {
        Some(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(&s)?)?;
            Ok(t)
        }
        None => error_table(lua, b"wrong number or type of arguments"),
    }
}

fn single_string(args: &mlua::MultiValue) -> Option<Vec<u8>> {
    match args.iter().collect::<Vec<_>>().as_slice() {
        [Value::String(s)] => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

/// `redis.log(level, ...)`: the arguments joined by spaces, at Redis's log level.
fn log(lua: &Lua, args: mlua::MultiValue) -> mlua::Result<()> {
    if args.len() < 2 {
        return fail("redis.log() requires two arguments or more.");
    }
    let level = match lua.coerce_number(args[0].clone())? {
        Some(n) => n as i64,
        None => return fail("First argument must be a number (log level)."),
    };
    if !(0..=3).contains(&level) {
        return fail("Invalid debug level.");
    }
    let mut text = Vec::new();
    for (i, a) in args.iter().skip(1).enumerate() {
        let Some(part) = lua.coerce_string(a.clone())? else {
            continue;
        };
        if i > 0 {
            text.push(b' ');
        }
        text.extend_from_slice(&part.as_bytes());
    }
    let text = String::from_utf8_lossy(&text);
    match level {
        0 | 1 => tracing::debug!("{text}"),
        2 => tracing::info!("{text}"),
        _ => tracing::warn!("{text}"),
    }
    Ok(())
}

/// A Lua error carrying an error table `{err=<msg>}` raised from Rust (mlua raises Rust errors
/// as userdata, not tables); the error handler and `pcall` turn it back into the table or its
/// message.
#[derive(Debug, Clone)]
pub struct TableError(pub String, pub bool);

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TableError {}

/// Raises `{err="ERR msg"}` (or `{err="CODE msg"}` for a `-CODE msg`).
/// The error of a `redis.*` function (`what`) called outside a script invocation: by a
/// library at load time, or through a reference a script kept.
pub fn outside_invocation(what: &str) -> mlua::Error {
    raise_table(&format!("{what} can only be called inside a script invocation"))
}

pub fn raise_table(msg: &str) -> mlua::Error {
    let text = String::from_utf8_lossy(&error_text(msg.as_bytes())).into_owned();
    mlua::Error::external(TableError(text, false))
}

/// The error-table message inside an mlua error, if it carries one.
pub fn table_error(e: &mlua::Error) -> Option<String> {
    table_error_full(e).map(|t| t.0)
}

/// The error table carried by an mlua error: message, and whether the error reply was already
/// counted in the error statistics (it came from a command the script ran).
pub fn table_error_full(e: &mlua::Error) -> Option<TableError> {
    match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<TableError>().cloned(),
        mlua::Error::CallbackError { cause, .. } => table_error_full(cause),
        _ => None,
    }
}

/// What `pcall` gives a script for an error raised by Rust code.
fn raised_text(e: &mlua::Error) -> String {
    table_error(e).unwrap_or_else(|| lua_error_text(e))
}

/// lrand48: `x = (0x5DEECE66D * x + 0xB) mod 2^48`, output the top 31 bits.
fn lrand48_next(state: &Cell<u64>) -> i64 {
    let x = state.get().wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & 0xFFFF_FFFF_FFFF;
    state.set(x);
    (x >> 17) as i64
}

/// srand48: the seed in the high 32 bits, 0x330E below.
fn lrand48_seed(state: &Cell<u64>, seed: i32) {
    state.set((u64::from(seed as u32) << 16) | 0x330E);
}

/// The initial lrand48 state (as if never seeded).
pub const LRAND48_INIT: u64 = 0x1234_ABCD_330E;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_keeps_codes() {
        assert_eq!(error_text(b"-WRONGTYPE bad\r\n"), b"WRONGTYPE bad");
        assert_eq!(error_text(b"plain"), b"ERR plain");
        assert_eq!(error_text(b"-NOCODE"), b"ERR NOCODE");
    }

    #[test]
    fn lrand48_matches_redis_sequence() {
        let s = Cell::new(LRAND48_INIT);
        // Redis's rand.c starts from x = 0x1234ABCD330E.
        assert_eq!(lrand48_next(&s), 851401618);
        assert_eq!(lrand48_next(&s), 1804928587);
        lrand48_seed(&s, 0);
        assert_eq!(s.get(), 0x330E);
    }

    #[test]
    fn bridge_outside_an_execution_is_an_error() {
        let engine = Engine::new(Rc::new(Cell::new(LRAND48_INIT)), Busy::new()).unwrap();
        let e = engine.bridge.call::<Value>(("INCR", "x")).unwrap_err();
        assert!(e.to_string().contains("only be called inside a script invocation"), "{e}");
        // An EVAL-style call that kept the bridge as `redis.call` gets the same error.
        let f = engine.lua.load("local call = ... return call('PING')").into_function().unwrap();
        assert!(f.call::<Value>(engine.bridge.clone()).is_err());
    }
}
