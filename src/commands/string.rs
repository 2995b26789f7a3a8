//! String commands: GET, SET and friends (Redis `t_string.c`).
//!
//! Values are [`RString`]s in the keyspace. Writes that depend on the clock or on arithmetic
//! the replica would redo differently are propagated as their deterministic effect (see `set`).

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::{RString, Value, NO_EXPIRE};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, 1, 1, 1, get),
    CommandSpec::new("set", -3, WRITE | DENYOOM, 1, 1, 1, set),
];

/// Looks up a string value for reading; `Ok(None)` if the key is absent.
pub(crate) fn read_string<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a RString>, CmdError> {
    match ctx.ks.lookup_read(ctx.db, key, ctx.now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(Some(s)),
            #[allow(unreachable_patterns)]
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Returns the string stored at `key`.
///
/// ```text
/// GET key
/// ```
fn get(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db;
    match ctx.ks.lookup_read(db, argv[1], ctx.now) {
        None => ctx.out.null(),
        Some(e) => match &e.value {
            Value::Str(s) => s.with_bytes(|b| ctx.out.bulk(b)),
            #[allow(unreachable_patterns)]
            _ => return Err(CmdError::WrongType),
        },
    }
    Ok(())
}

/// Expiry option of SET / GETEX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpireOpt {
    None,
    /// Absolute Unix milliseconds.
    At(u64),
    KeepTtl,
    Persist,
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
    if n <= 0 {
        return Err(CmdError::InvalidExpire(cmd.to_string()));
    }
    let ms = (n as u64).checked_mul(unit_ms).filter(|&v| v <= i64::MAX as u64);
    let Some(ms) = ms else {
        return Err(CmdError::InvalidExpire(cmd.to_string()));
    };
    if absolute {
        return Ok(ms);
    }
    ms.checked_add(ctx.now)
        .filter(|&v| v <= i64::MAX as u64)
        .ok_or_else(|| CmdError::InvalidExpire(cmd.to_string()))
}

/// Stores a string, with optional expiry and conditions.
///
/// ```text
/// SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds |
///     PXAT unix-time-milliseconds | KEEPTTL]
/// ```
///
/// Propagated as `SET key value PXAT <abs-ms>` (or `KEEPTTL`) so replicas and the log never
/// recompute a relative expiry against their own clock; `GET` is dropped from the effect.
fn set(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (key, val) = (argv[1], argv[2]);
    let mut nx = false;
    let mut xx = false;
    let mut get = false;
    let mut expire = ExpireOpt::None;
    let mut i = 3;
    while i < argv.len() {
        let a = argv[i];
        let has_next = i + 1 < argv.len();
        if is(a, "nx") && !xx {
            nx = true;
        } else if is(a, "xx") && !nx {
            xx = true;
        } else if is(a, "get") {
            get = true;
        } else if is(a, "keepttl") && expire == ExpireOpt::None {
            expire = ExpireOpt::KeepTtl;
        } else if has_next && expire == ExpireOpt::None && (is(a, "ex") || is(a, "px") || is(a, "exat") || is(a, "pxat")) {
            let (unit, abs) = if is(a, "ex") {
                (1000, false)
            } else if is(a, "px") {
                (1, false)
            } else if is(a, "exat") {
                (1000, true)
            } else {
                (1, true)
            };
            expire = ExpireOpt::At(expire_arg(ctx, argv[i + 1], unit, abs, "set")?);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let db = ctx.db;
    let now = ctx.now;
    let existing = ctx.ks.lookup_write(db, key, now);
    let exists = existing.is_some();
    if get {
        match existing {
            None => ctx.out.null(),
            Some(e) => match &e.value {
                Value::Str(s) => s.with_bytes(|b| ctx.out.bulk(b)),
                #[allow(unreachable_patterns)]
                _ => return Err(CmdError::WrongType),
            },
        }
    }
    if (nx && exists) || (xx && !exists) {
        if !get {
            ctx.out.null();
        }
        return Ok(());
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
    ctx.notify('$', "set", db, key);
    if let ExpireOpt::At(at) = expire {
        ctx.notify('g', "expire", db, key);
        let at = itoa::Buffer::new().format(at).as_bytes().to_vec();
        ctx.propagate(&[b"SET".as_slice(), key, val, b"PXAT", &at]);
    } else if expire == ExpireOpt::KeepTtl {
        ctx.propagate(&[b"SET".as_slice(), key, val, b"KEEPTTL"]);
    } else if get || nx || xx {
        ctx.propagate(&[b"SET".as_slice(), key, val]);
    }
    if !get {
        ctx.out.ok();
    }
    Ok(())
}
