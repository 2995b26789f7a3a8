//! String commands: GET, SET, INCR and friends (Redis `t_string.c`).
//!
//! Values are [`RString`]s in the keyspace. Writes that depend on the clock or on arithmetic
//! the replica would redo differently are propagated as their deterministic effect (see `set`,
//! `getex`, `incrbyfloat`); the rest propagate verbatim.

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::{Keyspace, RString, Value, NO_EXPIRE};
use crate::util::num::{self, IncrFloatError};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, 1, 1, 1, get),
    CommandSpec::new("set", -3, WRITE | DENYOOM, 1, 1, 1, set), // SET .. PXAT, see `set`
    CommandSpec::new("setnx", 3, WRITE | DENYOOM | FAST, 1, 1, 1, setnx),
    CommandSpec::new("setex", 4, WRITE | DENYOOM, 1, 1, 1, setex), // SET .. PXAT
    CommandSpec::new("psetex", 4, WRITE | DENYOOM, 1, 1, 1, psetex), // SET .. PXAT
    CommandSpec::new("getset", 3, WRITE | DENYOOM | FAST, 1, 1, 1, getset), // SET
    CommandSpec::new("getdel", 2, WRITE | FAST, 1, 1, 1, getdel),  // DEL
    CommandSpec::new("getex", -2, WRITE | FAST, 1, 1, 1, getex),   // PEXPIREAT / PERSIST / DEL
    CommandSpec::new("mget", -2, READONLY | FAST, 1, -1, 1, mget),
    CommandSpec::new("mset", -3, WRITE | DENYOOM, 1, -1, 2, mset),
    CommandSpec::new("msetnx", -3, WRITE | DENYOOM, 1, -1, 2, msetnx),
    CommandSpec::new("append", 3, WRITE | DENYOOM | FAST, 1, 1, 1, append),
    CommandSpec::new("strlen", 2, READONLY | FAST, 1, 1, 1, strlen),
    CommandSpec::new("setrange", 4, WRITE | DENYOOM, 1, 1, 1, setrange),
    CommandSpec::new("getrange", 4, READONLY, 1, 1, 1, getrange),
    CommandSpec::new("substr", 4, READONLY, 1, 1, 1, getrange),
    CommandSpec::new("incr", 2, WRITE | DENYOOM | FAST, 1, 1, 1, incr),
    CommandSpec::new("decr", 2, WRITE | DENYOOM | FAST, 1, 1, 1, decr),
    CommandSpec::new("incrby", 3, WRITE | DENYOOM | FAST, 1, 1, 1, incrby),
    CommandSpec::new("decrby", 3, WRITE | DENYOOM | FAST, 1, 1, 1, decrby),
    CommandSpec::new(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        incrbyfloat,
    ), // SET
    CommandSpec::new("lcs", -3, READONLY, 1, 2, 1, lcs),
];

/// Looks up a string value for reading (counting a hit or miss); `Ok(None)` if the key is
/// absent, WRONGTYPE for any other type.
pub(crate) fn read_string<'a>(
    ctx: &'a mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'a RString>, CmdError> {
    match ctx.ks.lookup_read(ctx.db, key, ctx.now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(Some(s)),
            #[allow(unreachable_patterns)]
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks up a string value for modification; `Ok(None)` if the key is absent.
pub(crate) fn write_string<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut RString>, CmdError> {
    match ks.lookup_write(db, key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Str(s) => Ok(Some(s)),
            #[allow(unreachable_patterns)]
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks up a string value for reading through the keyspace alone, so the caller can still
/// write to `ctx.out` while holding it.
pub(crate) fn read_str<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a RString>, CmdError> {
    match ks.lookup_read(db, key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(Some(s)),
            #[allow(unreachable_patterns)]
            _ => Err(CmdError::WrongType),
        },
    }
}

/// The largest string a command may build (`proto-max-bulk-len`).
pub(crate) fn max_len(ctx: &Ctx<'_>) -> u64 {
    u64::try_from(ctx.srv.config.proto_max_bulk_len).unwrap_or(0)
}

/// Redis's `checkStringLength`: refuses results longer than `max`.
pub(crate) fn check_length(len: u64, max: u64) -> Result<(), CmdError> {
    if len > max {
        return Err(CmdError::StringTooLong);
    }
    Ok(())
}

/// Replies with the string at `key` (null if absent): Redis's `getGenericCommand`.
fn reply_value(ctx: &mut Ctx<'_>, key: &[u8]) -> CmdResult {
    let (db, now) = (ctx.db, ctx.now);
    match ctx.ks.lookup_read(db, key, now) {
        None => ctx.out.null(),
        Some(e) => match &e.value {
            Value::Str(s) => s.with_bytes(|b| ctx.out.bulk(b)),
            #[allow(unreachable_patterns)]
            _ => return Err(CmdError::WrongType),
        },
    }
    Ok(())
}

/// Returns the string stored at `key`.
///
/// ```text
/// GET key
/// ```
fn get(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    reply_value(ctx, argv[1])
}

/// Expiry option of SET / GETEX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpireOpt {
    None,
    /// Absolute Unix milliseconds.
    At(u64),
    KeepTtl,
}

/// Converts a relative or absolute expiry argument to absolute milliseconds, with Redis's
/// "invalid expire time" checks (non-positive values and overflow).
pub(crate) fn expire_arg(
    ctx: &Ctx<'_>,
    arg: &[u8],
    unit_ms: u64,
    absolute: bool,
    cmd: &str,
) -> Result<u64, CmdError> {
    let n = args::int(arg)?;
    let invalid = || CmdError::InvalidExpire(cmd.to_string());
    if n <= 0 {
        return Err(invalid());
    }
    let ms = (n as u64)
        .checked_mul(unit_ms)
        .filter(|&v| v <= i64::MAX as u64)
        .ok_or_else(invalid)?;
    if absolute {
        return Ok(ms);
    }
    ms.checked_add(ctx.now)
        .filter(|&v| v <= i64::MAX as u64)
        .ok_or_else(invalid)
}

/// Options shared by SET and GETEX, as parsed from the command line.
#[derive(Debug, Default)]
struct SetOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// EX / PX / EXAT / PXAT: (argument, unit in ms, absolute).
    expire: Option<(&'a [u8], u64, bool)>,
}

/// Parses SET (`for_set`) or GETEX options starting at `argv[from]`, rejecting conflicting
/// combinations with a syntax error like Redis's `parseExtendedStringArgumentsOrReply`.
fn parse_set_opts<'a>(
    argv: &[&'a [u8]],
    from: usize,
    for_set: bool,
) -> Result<SetOpts<'a>, CmdError> {
    let mut o = SetOpts::default();
    let mut i = from;
    while i < argv.len() {
        let a = argv[i];
        let next = argv.get(i + 1).copied();
        let expire_kind = [
            ("ex", 1000, false),
            ("px", 1, false),
            ("exat", 1000, true),
            ("pxat", 1, true),
        ]
        .into_iter()
        .find(|(name, _, _)| is(a, name));
        if for_set && is(a, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && is(a, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && is(a, "get") {
            o.get = true;
        } else if for_set && is(a, "keepttl") && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && is(a, "persist") && o.expire.is_none() {
            o.persist = true;
        } else if let (Some((_, unit, abs)), Some(n)) = (expire_kind, next) {
            // Repeating the same expiry option is allowed (the last one wins), mixing is not.
            let same = o.expire.is_none_or(|(_, u, ab)| (u, ab) == (unit, abs));
            if o.keepttl || o.persist || !same {
                return Err(CmdError::Syntax);
            }
            o.expire = Some((n, unit, abs));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// Stores a string, with optional expiry and conditions.
///
/// ```text
/// SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds |
///     PXAT unix-time-milliseconds | KEEPTTL]
/// ```
///
/// Propagated as `SET key value PXAT <abs-ms>` when it has an expiry, so replicas and the log
/// never recompute a relative expiry against their own clock; otherwise verbatim minus `GET`.
fn set(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let o = parse_set_opts(argv, 3, true)?;
    let expire = match o.expire {
        Some((arg, unit, abs)) => ExpireOpt::At(expire_arg(ctx, arg, unit, abs, "set")?),
        None if o.keepttl => ExpireOpt::KeepTtl,
        None => ExpireOpt::None,
    };
    if o.get {
        reply_value(ctx, argv[1])?;
    }
    let cond = if o.nx {
        Cond::Nx
    } else if o.xx {
        Cond::Xx
    } else {
        Cond::Always
    };
    let done = set_generic(ctx, argv[1], argv[2], expire, cond);
    if !o.get {
        if done {
            ctx.out.ok();
        } else {
            ctx.out.null();
        }
    }
    if done && o.get && o.expire.is_none() {
        let rest = argv
            .iter()
            .enumerate()
            .filter(|(i, a)| *i < 3 || !is(a, "get"));
        let effect: Vec<&[u8]> = rest.map(|(_, a)| *a).collect();
        ctx.propagate(&effect);
    }
    Ok(())
}

/// Write condition of the SET family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    Always,
    Nx,
    Xx,
}

/// Redis's `setGenericCommand` after parsing: stores `val` unless `cond` fails, applies
/// `expire` and records the PXAT rewrite. Returns whether the key was written.
fn set_generic(ctx: &mut Ctx<'_>, key: &[u8], val: &[u8], expire: ExpireOpt, cond: Cond) -> bool {
    let (db, now) = (ctx.db, ctx.now);
    let exists = ctx.ks.lookup_write(db, key, now).is_some();
    if (cond == Cond::Nx && exists) || (cond == Cond::Xx && !exists) {
        return false;
    }
    let value = Value::Str(RString::from_bytes(val));
    let d = ctx.ks.db(db);
    match expire {
        ExpireOpt::KeepTtl if exists => {
            d.replace_value(key, value);
        }
        ExpireOpt::At(at) => {
            d.set_with_expire(key, value, at);
        }
        _ => {
            d.set_with_expire(key, value, NO_EXPIRE);
        }
    }
    ctx.dirty(1);
    ctx.signal_modified_key(db, key);
    if !exists {
        ctx.notify('n', "new", db, key);
    }
    ctx.notify('$', "set", db, key);
    if let ExpireOpt::At(at) = expire {
        ctx.notify('g', "expire", db, key);
        let at = itoa::Buffer::new().format(at).as_bytes().to_vec();
        ctx.propagate(&[b"SET".as_slice(), key, val, b"PXAT", &at]);
    }
    true
}

/// Sets `key` only if it does not exist; replies 1 if it was set.
///
/// ```text
/// SETNX key value
/// ```
fn setnx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let done = set_generic(ctx, argv[1], argv[2], ExpireOpt::None, Cond::Nx);
    ctx.out.integer(i64::from(done));
    Ok(())
}

/// Sets `key` with a time to live in seconds.
///
/// ```text
/// SETEX key seconds value
/// ```
fn setex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let at = expire_arg(ctx, argv[2], 1000, false, "setex")?;
    set_generic(ctx, argv[1], argv[3], ExpireOpt::At(at), Cond::Always);
    ctx.out.ok();
    Ok(())
}

/// Sets `key` with a time to live in milliseconds.
///
/// ```text
/// PSETEX key milliseconds value
/// ```
fn psetex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let at = expire_arg(ctx, argv[2], 1, false, "psetex")?;
    set_generic(ctx, argv[1], argv[3], ExpireOpt::At(at), Cond::Always);
    ctx.out.ok();
    Ok(())
}

/// Sets `key` and returns its old value.
///
/// ```text
/// GETSET key value
/// ```
///
/// Propagated as `SET key value`, which has the same effect (the expiry is cleared).
fn getset(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    reply_value(ctx, argv[1])?;
    set_generic(ctx, argv[1], argv[2], ExpireOpt::None, Cond::Always);
    ctx.propagate(&[b"SET".as_slice(), argv[1], argv[2]]);
    Ok(())
}

/// Returns the value of `key` and deletes it.
///
/// ```text
/// GETDEL key
/// ```
///
/// Propagated as `DEL key` (`UNLINK` with `lazyfree-lazy-user-del`): same effect, and a plain
/// deletion is what replicas and the AOF understand without a string check.
fn getdel(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    reply_value(ctx, key)?;
    let db = ctx.db;
    if ctx.ks.db(db).remove(key).is_some() {
        let verb: &[u8] = if ctx.srv.config.lazyfree_lazy_user_del {
            b"UNLINK"
        } else {
            b"DEL"
        };
        ctx.propagate(&[verb, key]);
        ctx.signal_modified_key(db, key);
        ctx.notify('g', "del", db, key);
        ctx.dirty(1);
    }
    Ok(())
}

/// Returns the value of `key` and optionally changes its expiry.
///
/// ```text
/// GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds |
///     PXAT unix-time-milliseconds | PERSIST]
/// ```
///
/// Propagated as `PEXPIREAT key <abs-ms>`, `PERSIST key`, or `DEL key` when an absolute time
/// is already in the past; a plain GETEX changes nothing and propagates nothing.
fn getex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let o = parse_set_opts(argv, 2, false)?;
    // Redis looks the key up before validating the time, so a missing key wins over a bad one.
    let at = o
        .expire
        .map(|(arg, unit, abs)| expire_arg(ctx, arg, unit, abs, "getex"));
    let (db, now) = (ctx.db, ctx.now);
    let Some(s) = read_str(ctx.ks, db, key, now)? else {
        ctx.out.null();
        return Ok(());
    };
    let at = match (at, o.expire) {
        (Some(at), Some((_, _, abs))) => Some((at?, abs)),
        _ => None,
    };
    s.with_bytes(|b| ctx.out.bulk(b));
    match at {
        // Loading and replicas (expire_on_access off) keep the key: only a master judges time.
        Some((at, true)) if at <= ctx.now && ctx.ks.expire_on_access => {
            ctx.ks.db(db).remove(key);
            let lazy = ctx.srv.config.lazyfree_lazy_expire;
            let verb: &[u8] = if lazy { b"UNLINK" } else { b"DEL" };
            ctx.propagate(&[verb, key]);
            ctx.notify('g', "del", db, key);
        }
        Some((at, _)) => {
            ctx.ks.db(db).set_expire(key, at);
            let ms = itoa::Buffer::new().format(at).as_bytes().to_vec();
            ctx.propagate(&[b"PEXPIREAT".as_slice(), key, &ms]);
            ctx.notify('g', "expire", db, key);
        }
        None if o.persist && ctx.ks.db(db).persist(key) => {
            ctx.propagate(&[b"PERSIST".as_slice(), key]);
            ctx.notify('g', "persist", db, key);
        }
        None => return Ok(()),
    }
    ctx.signal_modified_key(db, key);
    ctx.dirty(1);
    Ok(())
}

/// Returns the values of several keys; non-strings and missing keys are null.
///
/// ```text
/// MGET key [key ...]
/// ```
fn mget(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let keys = &argv[1..];
    ctx.out.array(keys.len());
    let (db, now) = (ctx.db, ctx.now);
    for key in keys {
        match ctx.ks.lookup_read(db, key, now).map(|e| &e.value) {
            Some(Value::Str(s)) => s.with_bytes(|b| ctx.out.bulk(b)),
            #[allow(unreachable_patterns)]
            _ => ctx.out.null(),
        }
    }
    Ok(())
}

/// Sets several keys at once.
///
/// ```text
/// MSET key value [key value ...]
/// ```
fn mset(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    mset_pairs(ctx, argv)?;
    ctx.out.ok();
    Ok(())
}

/// Sets several keys only if none of them exists; replies 1 if they were set.
///
/// ```text
/// MSETNX key value [key value ...]
/// ```
fn msetnx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(args::cmd_name(argv)));
    }
    let (db, now) = (ctx.db, ctx.now);
    for key in argv[1..].iter().step_by(2) {
        if ctx.ks.exists(db, key, now) {
            ctx.out.integer(0);
            return Ok(());
        }
    }
    mset_pairs(ctx, argv)?;
    ctx.out.integer(1);
    Ok(())
}

/// Stores every key/value pair of an MSET-style argv; the whole command propagates verbatim
/// as one effect.
fn mset_pairs(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(args::cmd_name(argv)));
    }
    let (db, now) = (ctx.db, ctx.now);
    for pair in argv[1..].chunks_exact(2) {
        // Looked up first so that an expired key counts as new, as in Redis's `setKey`.
        let existed = ctx.ks.lookup_write(db, pair[0], now).is_some();
        ctx.ks.db(db).set(pair[0], Value::from_bytes(pair[1]));
        ctx.signal_modified_key(db, pair[0]);
        if !existed {
            ctx.notify('n', "new", db, pair[0]);
        }
        ctx.notify('$', "set", db, pair[0]);
    }
    ctx.dirty((argv.len() as u64 - 1) / 2);
    Ok(())
}

/// Appends to the string at `key` (creating it) and returns the new length.
///
/// ```text
/// APPEND key value
/// ```
fn append(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (key, tail) = (argv[1], argv[2]);
    let (db, now, max) = (ctx.db, ctx.now, max_len(ctx));
    let len = match write_string(ctx.ks, db, key, now)? {
        Some(s) => {
            check_length(s.len() as u64 + tail.len() as u64, max)?;
            s.append(tail)
        }
        None => {
            // A new key is stored like SET would store it (possibly `int` / `embstr`).
            ctx.ks.db(db).set(key, Value::from_bytes(tail));
            ctx.notify('n', "new", db, key);
            tail.len()
        }
    };
    ctx.signal_modified_key(db, key);
    ctx.notify('$', "append", db, key);
    ctx.dirty(1);
    ctx.out.integer(len as i64);
    Ok(())
}

/// Returns the length of the string at `key` (0 if absent).
///
/// ```text
/// STRLEN key
/// ```
fn strlen(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = read_string(ctx, argv[1])?.map_or(0, RString::len);
    ctx.out.integer(n as i64);
    Ok(())
}

/// Overwrites part of the string at `key` from `offset`, zero-padding, and returns the new
/// length.
///
/// ```text
/// SETRANGE key offset value
/// ```
fn setrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (key, data) = (argv[1], argv[3]);
    let offset = args::int(argv[2])?;
    let offset = usize::try_from(offset).map_err(|_| CmdError::err("offset is out of range"))?;
    let (db, now, max) = (ctx.db, ctx.now, max_len(ctx));
    let len = match write_string(ctx.ks, db, key, now)? {
        // Nothing to write: report the current length without creating or touching the key.
        Some(s) if data.is_empty() => {
            let len = s.len();
            return reply_len(ctx, len);
        }
        None if data.is_empty() => return reply_len(ctx, 0),
        Some(s) => {
            check_length(offset as u64 + data.len() as u64, max)?;
            s.set_range(offset, data)
        }
        None => {
            check_length(offset as u64 + data.len() as u64, max)?;
            let mut s = RString::Raw(Vec::new());
            let len = s.set_range(offset, data);
            ctx.ks.db(db).set(key, Value::Str(s));
            ctx.notify('n', "new", db, key);
            len
        }
    };
    ctx.signal_modified_key(db, key);
    ctx.notify('$', "setrange", db, key);
    ctx.dirty(1);
    ctx.out.integer(len as i64);
    Ok(())
}

fn reply_len(ctx: &mut Ctx<'_>, len: usize) -> CmdResult {
    ctx.out.integer(len as i64);
    Ok(())
}

/// Returns the substring between two inclusive offsets (negative ones count from the end).
///
/// ```text
/// GETRANGE key start end
/// SUBSTR key start end
/// ```
fn getrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let start = args::int(argv[2])?;
    let end = args::int(argv[3])?;
    let (db, now) = (ctx.db, ctx.now);
    let Some(s) = read_str(ctx.ks, db, argv[1], now)? else {
        ctx.out.bulk(b"");
        return Ok(());
    };
    let out = &mut *ctx.out;
    s.with_bytes(|b| match range_bounds(start, end, b.len()) {
        Some((from, to)) => out.bulk(&b[from..=to]),
        None => out.bulk(b""),
    });
    Ok(())
}

/// Resolves GETRANGE's inclusive `start..=end` (negative = from the end) against `len`;
/// `None` if the range is empty.
fn range_bounds(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 {
        (len + end).max(0)
    } else {
        end.min(len - 1)
    };
    (start <= end).then_some((start as usize, end as usize))
}

/// Increments the integer at `key` by one.
///
/// ```text
/// INCR key
/// ```
fn incr(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    incr_decr(ctx, argv[1], 1)
}

/// Decrements the integer at `key` by one.
///
/// ```text
/// DECR key
/// ```
fn decr(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    incr_decr(ctx, argv[1], -1)
}

/// Increments the integer at `key` by `increment`.
///
/// ```text
/// INCRBY key increment
/// ```
fn incrby(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let by = args::int(argv[2])?;
    incr_decr(ctx, argv[1], by)
}

/// Decrements the integer at `key` by `decrement`.
///
/// ```text
/// DECRBY key decrement
/// ```
fn decrby(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let by = args::int(argv[2])?;
    let neg = by
        .checked_neg()
        .ok_or_else(|| CmdError::err("decrement would overflow"))?;
    incr_decr(ctx, argv[1], neg)
}

/// Adds `by` to the integer at `key` (0 if absent); the result is always `int`-encoded and
/// keeps the key's expiry.
fn incr_decr(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> CmdResult {
    let (db, now) = (ctx.db, ctx.now);
    let n = match write_string(ctx.ks, db, key, now)? {
        Some(s) => {
            let cur = s.as_i64().ok_or(CmdError::NotInteger)?;
            let n = cur.checked_add(by).ok_or(CmdError::Overflow)?;
            *s = RString::Int(n);
            n
        }
        None => {
            ctx.ks.db(db).set(key, Value::Str(RString::Int(by)));
            ctx.notify('n', "new", db, key);
            by
        }
    };
    ctx.signal_modified_key(db, key);
    ctx.notify('$', "incrby", db, key);
    ctx.dirty(1);
    ctx.out.integer(n);
    Ok(())
}

/// Adds a floating point increment to the value at `key`, in C long double like Redis.
///
/// ```text
/// INCRBYFLOAT key increment
/// ```
///
/// Propagated as `SET key <result> KEEPTTL` so float formatting on a replica or a reloaded AOF
/// cannot diverge.
fn incrbyfloat(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let (db, now) = (ctx.db, ctx.now);
    let cur = write_string(ctx.ks, db, key, now)?.map(|s| s.as_bytes().into_owned());
    let result = num::incr_by_float(cur.as_deref(), argv[2]).map_err(|e| match e {
        IncrFloatError::NotFloat | IncrFloatError::BadIncrement => CmdError::NotFloat,
        IncrFloatError::NanOrInf => CmdError::err("increment would produce NaN or Infinity"),
    })?;
    // Redis stores the printed result as a plain string (never `int`).
    let value = Value::Str(RString::from_vec_no_int(result.clone()));
    if cur.is_some() {
        ctx.ks.db(db).replace_value(key, value);
    } else {
        ctx.ks.db(db).set(key, value);
        ctx.notify('n', "new", db, key);
    }
    ctx.signal_modified_key(db, key);
    ctx.notify('$', "incrbyfloat", db, key);
    ctx.dirty(1);
    ctx.out.bulk(&result);
    ctx.propagate(&[b"SET".as_slice(), key, &result, b"KEEPTTL"]);
    Ok(())
}

/// LCS options.
#[derive(Debug, Default)]
struct LcsOpts {
    len: bool,
    idx: bool,
    with_match_len: bool,
    min_match_len: u64,
}

fn parse_lcs_opts(argv: &[&[u8]]) -> Result<LcsOpts, CmdError> {
    let mut o = LcsOpts::default();
    let mut i = 3;
    while i < argv.len() {
        let a = argv[i];
        if is(a, "idx") {
            o.idx = true;
        } else if is(a, "len") {
            o.len = true;
        } else if is(a, "withmatchlen") {
            o.with_match_len = true;
        } else if is(a, "minmatchlen") && i + 1 < argv.len() {
            o.min_match_len = args::int(argv[i + 1])?.max(0) as u64;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if o.len && o.idx {
        return Err(CmdError::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    Ok(o)
}

/// Reads a key for LCS: missing keys are empty, other types are refused.
fn lcs_input(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Vec<u8>, CmdError> {
    match read_string(ctx, key) {
        Ok(s) => Ok(s.map(|s| s.as_bytes().into_owned()).unwrap_or_default()),
        Err(_) => Err(CmdError::err(
            "The specified keys must contain string values",
        )),
    }
}

/// Returns the longest common subsequence of two strings, its length, or its matching ranges.
///
/// ```text
/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]
/// ```
fn lcs(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let a = lcs_input(ctx, argv[1])?;
    let b = lcs_input(ctx, argv[2])?;
    let o = parse_lcs_opts(argv)?;
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Err(CmdError::err("String too long for LCS"));
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells.saturating_mul(4) > ctx.srv.config.proto_max_bulk_len as u64 {
        return Err(CmdError::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let table = LcsTable::build(&a, &b);
    let (seq, ranges) = table.walk(&a, &b);
    if o.idx {
        write_lcs_idx(ctx, &o, &ranges, table.len());
    } else if o.len {
        ctx.out.integer(table.len() as i64);
    } else {
        ctx.out.bulk(&seq);
    }
    Ok(())
}

/// Writes LCS's IDX reply: a map of `matches` (ranges, longest-last-first) and `len`.
fn write_lcs_idx(ctx: &mut Ctx<'_>, o: &LcsOpts, ranges: &[LcsRange], total: usize) {
    let kept: Vec<&LcsRange> = ranges
        .iter()
        .filter(|r| r.len() >= o.min_match_len)
        .collect();
    ctx.out.map(2);
    ctx.out.bulk(b"matches");
    ctx.out.array(kept.len());
    for r in kept {
        ctx.out.array(2 + usize::from(o.with_match_len));
        ctx.out.array(2);
        ctx.out.integer(r.a.0 as i64);
        ctx.out.integer(r.a.1 as i64);
        ctx.out.array(2);
        ctx.out.integer(r.b.0 as i64);
        ctx.out.integer(r.b.1 as i64);
        if o.with_match_len {
            ctx.out.integer(r.len() as i64);
        }
    }
    ctx.out.bulk(b"len");
    ctx.out.integer(total as i64);
}

/// One matching run of the LCS: inclusive ranges in each input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LcsRange {
    a: (usize, usize),
    b: (usize, usize),
}

impl LcsRange {
    fn len(&self) -> u64 {
        (self.a.1 - self.a.0 + 1) as u64
    }
}

/// The dynamic-programming table: `cell(i, j)` is the LCS length of `a[..i]` and `b[..j]`.
struct LcsTable {
    cells: Vec<u32>,
    width: usize,
}

impl LcsTable {
    fn build(a: &[u8], b: &[u8]) -> LcsTable {
        let width = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * width + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * width + j - 1] + 1
                } else {
                    cells[(i - 1) * width + j].max(cells[i * width + j - 1])
                };
            }
        }
        LcsTable { cells, width }
    }

    fn cell(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    fn len(&self) -> usize {
        self.cells.last().copied().unwrap_or(0) as usize
    }

    /// Walks back from the end, collecting the subsequence and its contiguous runs in the
    /// order Redis reports them (from the end of the strings towards the start).
    fn walk(&self, a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<LcsRange>) {
        let mut seq = Vec::with_capacity(self.len());
        let mut ranges = Vec::new();
        let mut cur: Option<LcsRange> = None;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            if a[i - 1] == b[j - 1] {
                seq.push(a[i - 1]);
                match &mut cur {
                    Some(r) if r.a.0 == i && r.b.0 == j => {
                        r.a.0 -= 1;
                        r.b.0 -= 1;
                    }
                    Some(r) => {
                        ranges.push(*r);
                        cur = None;
                    }
                    None => {
                        cur = Some(LcsRange {
                            a: (i - 1, i - 1),
                            b: (j - 1, j - 1),
                        })
                    }
                }
                i -= 1;
                j -= 1;
                if let Some(r) = cur.filter(|r| r.a.0 == 0 || r.b.0 == 0) {
                    ranges.push(r);
                    cur = None;
                }
            } else {
                if self.cell(i - 1, j) > self.cell(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                if let Some(r) = cur.take() {
                    ranges.push(r);
                }
            }
        }
        seq.reverse();
        (seq, ranges)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::protocol::{ReplyBuf, Resp};
    use crate::server::client::{Client, ClientInfo, ClientShared};
    use crate::server::Server;
    use std::rc::Rc;

    /// An in-process server with one client and a journal consumer attached, so tests see
    /// both the reply and the propagated effects of each command.
    pub(crate) struct Harness {
        server: Server,
        client: Client,
    }

    impl Harness {
        pub(crate) fn new() -> Harness {
            let mut cfg = Config::default();
            // No save points: FLUSHALL would write a snapshot into the working directory.
            cfg.set("save", "").expect("save");
            let mut server = Server::new(cfg);
            server.state.journal.attach();
            let addr = "127.0.0.1:1".parse().unwrap();
            let shared = Rc::new(ClientShared::new(ClientInfo::new(1, addr, addr, -1)));
            Harness {
                server,
                client: Client::new(1, shared, true),
            }
        }

        /// Runs one command; returns its raw reply and what it propagated (SELECT excluded).
        pub(crate) fn run(&mut self, args: &[&str]) -> (String, String) {
            let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            let mut out = ReplyBuf::new(Resp::V2);
            crate::dispatch::execute(&mut self.server, &mut self.client, &mut out, &argv);
            let prop = self.server.state.journal.take_pending();
            let prop =
                String::from_utf8_lossy(&prop).replace("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n", "");
            (String::from_utf8_lossy(&out.buf).into_owned(), prop)
        }

        /// The encoding of a key's value.
        pub(crate) fn encoding(&mut self, key: &str) -> &'static str {
            self.server
                .ks
                .db(0)
                .peek(key.as_bytes())
                .map_or("none", |e| e.value.encoding())
        }

        pub(crate) fn expire_at(&mut self, key: &str) -> Option<u64> {
            self.server
                .ks
                .db(0)
                .expire_of(key.as_bytes())
        }
    }

    /// RESP encoding of a command, as the journal writes it.
    pub(crate) fn resp(args: &[&str]) -> String {
        let mut out = Vec::new();
        crate::journal::encode_command(&mut out, args);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn relative_expiry_propagates_as_pxat() {
        let mut h = Harness::new();
        let (reply, prop) = h.run(&["SETEX", "k", "100", "v"]);
        assert_eq!(reply, "+OK\r\n");
        let at = h.expire_at("k").unwrap().to_string();
        assert_eq!(prop, resp(&["SET", "k", "v", "PXAT", &at]));
        let (_, prop) = h.run(&["SET", "k", "v", "NX"]);
        assert_eq!(prop, "");
        let (_, prop) = h.run(&["SET", "k", "w", "XX", "GET", "get"]);
        assert_eq!(prop, resp(&["SET", "k", "w", "XX"]));
        let (_, prop) = h.run(&["SET", "k", "w", "KEEPTTL"]);
        assert_eq!(prop, resp(&["SET", "k", "w", "KEEPTTL"]));
        let (_, prop) = h.run(&["PSETEX", "k", "5000", "x"]);
        let at = h.expire_at("k").unwrap().to_string();
        assert_eq!(prop, resp(&["SET", "k", "x", "PXAT", &at]));
    }

    #[test]
    fn get_variants_propagate_their_effects() {
        let mut h = Harness::new();
        h.run(&["SET", "k", "v"]);
        assert_eq!(
            h.run(&["GETSET", "k", "w"]),
            ("$1\r\nv\r\n".into(), resp(&["SET", "k", "w"]))
        );
        assert_eq!(h.run(&["GETEX", "k"]).1, "");
        let (_, prop) = h.run(&["GETEX", "k", "EX", "100"]);
        let at = h.expire_at("k").unwrap().to_string();
        assert_eq!(prop, resp(&["PEXPIREAT", "k", &at]));
        assert_eq!(h.run(&["GETEX", "k", "PERSIST"]).1, resp(&["PERSIST", "k"]));
        assert_eq!(h.run(&["GETEX", "k", "PERSIST"]).1, "");
        assert_eq!(h.run(&["GETEX", "k", "PXAT", "1"]).1, resp(&["DEL", "k"]));
        h.run(&["SET", "k", "v"]);
        assert_eq!(
            h.run(&["GETDEL", "k"]),
            ("$1\r\nv\r\n".into(), resp(&["DEL", "k"]))
        );
        assert_eq!(h.run(&["GETDEL", "k"]), ("$-1\r\n".into(), String::new()));
    }

    #[test]
    fn incrbyfloat_propagates_as_set_keepttl() {
        let mut h = Harness::new();
        let (reply, prop) = h.run(&["INCRBYFLOAT", "f", "1.5"]);
        assert_eq!(reply, "$3\r\n1.5\r\n");
        assert_eq!(prop, resp(&["SET", "f", "1.5", "KEEPTTL"]));
        assert_eq!(
            h.run(&["INCRBYFLOAT", "f", "0.5"]).1,
            resp(&["SET", "f", "2", "KEEPTTL"])
        );
        assert_eq!(h.encoding("f"), "embstr");
    }

    #[test]
    fn mset_is_one_effect_and_failures_propagate_nothing() {
        let mut h = Harness::new();
        let (reply, prop) = h.run(&["MSET", "a", "1", "b", "2"]);
        assert_eq!(reply, "+OK\r\n");
        assert_eq!(prop, resp(&["MSET", "a", "1", "b", "2"]));
        assert_eq!(
            h.run(&["MSETNX", "a", "1", "c", "2"]),
            (":0\r\n".into(), String::new())
        );
        assert_eq!(
            h.run(&["SETRANGE", "a", "0", ""]),
            (":1\r\n".into(), String::new())
        );
        assert_eq!(
            h.run(&["INCR", "a"]),
            (":2\r\n".into(), resp(&["INCR", "a"]))
        );
        assert_eq!(h.encoding("a"), "int");
    }

    #[test]
    fn encodings_follow_the_writing_command() {
        let mut h = Harness::new();
        h.run(&["APPEND", "n", "12"]);
        assert_eq!(h.encoding("n"), "int");
        h.run(&["APPEND", "n", "3"]);
        assert_eq!(h.encoding("n"), "raw");
        h.run(&["INCR", "n"]);
        assert_eq!(h.encoding("n"), "int");
        h.run(&["SETRANGE", "r", "0", "ab"]);
        assert_eq!(h.encoding("r"), "raw");
        h.run(&["SET", "e", "abc"]);
        assert_eq!(h.encoding("e"), "embstr");
    }

    #[test]
    fn size_limits_are_checked_before_allocating() {
        let mut h = Harness::new();
        let too_long = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
        assert_eq!(h.run(&["SETRANGE", "k", "536870912", "x"]).0, too_long);
        assert_eq!(
            h.run(&["SETRANGE", "k", "-1", "x"]).0,
            "-ERR offset is out of range\r\n"
        );
        assert_eq!(h.encoding("k"), "none");
    }

    #[test]
    fn range_bounds_follow_getrange() {
        assert_eq!(range_bounds(0, -1, 5), Some((0, 4)));
        assert_eq!(range_bounds(-3, -1, 5), Some((2, 4)));
        assert_eq!(range_bounds(2, 100, 5), Some((2, 4)));
        assert_eq!(range_bounds(-100, 1, 5), Some((0, 1)));
        assert_eq!(range_bounds(-1, -2, 5), None);
        assert_eq!(range_bounds(3, 2, 5), None);
        assert_eq!(range_bounds(0, 0, 0), None);
        assert_eq!(range_bounds(10, 20, 5), None);
    }

    #[test]
    fn set_options_conflicts_are_syntax_errors() {
        let argv =
            |s: &'static str| -> Vec<&'static [u8]> { s.split(' ').map(str::as_bytes).collect() };
        assert!(parse_set_opts(&argv("set k v nx xx"), 3, true).is_err());
        assert!(parse_set_opts(&argv("set k v ex 1 px 1"), 3, true).is_err());
        assert!(parse_set_opts(&argv("set k v keepttl ex 1"), 3, true).is_err());
        assert!(parse_set_opts(&argv("set k v ex"), 3, true).is_err());
        assert!(parse_set_opts(&argv("set k v persist"), 3, true).is_err());
        assert!(parse_set_opts(&argv("getex k keepttl"), 2, false).is_err());
        assert!(parse_set_opts(&argv("getex k nx"), 2, false).is_err());
        let o = parse_set_opts(&argv("set k v NX get ex 5 ex 6"), 3, true).unwrap();
        assert!(o.nx && o.get);
        assert_eq!(o.expire, Some((&b"6"[..], 1000, false)));
        assert!(
            parse_set_opts(&argv("getex k persist"), 2, false)
                .unwrap()
                .persist
        );
    }

    #[test]
    fn lcs_matches_redis_example() {
        let (a, b) = (b"ohmytext".as_slice(), b"mynewtext".as_slice());
        let t = LcsTable::build(a, b);
        let (seq, ranges) = t.walk(a, b);
        assert_eq!(seq, b"mytext");
        assert_eq!(
            ranges,
            vec![
                LcsRange {
                    a: (4, 7),
                    b: (5, 8)
                },
                LcsRange {
                    a: (2, 3),
                    b: (0, 1)
                },
            ]
        );
        assert_eq!(LcsTable::build(b"", b"abc").len(), 0);
    }
}
