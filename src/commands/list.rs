//! List commands: LPUSH, LRANGE, LMOVE, the blocking pops and friends (Redis `t_list.c`).
//!
//! Values are [`ListValue`]s (packed chunks, see `keyspace::list`). A list emptied by a command
//! is deleted. Pushes signal their key ready so that clients blocked on it (see
//! `server::blocking`) re-run their command once this one completes. Blocking commands that
//! find data behave like their non-blocking twin and propagate as it (BLPOP -> LPOP, BLMOVE ->
//! LMOVE, BLMPOP -> LPOP key count); one that finds nothing blocks the client and replies later.

use std::time::{Duration, Instant};

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::list::End;
use crate::keyspace::{Keyspace, ListValue, Value};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lpush", -3, WRITE | DENYOOM | FAST, 1, 1, 1, lpush),
    CommandSpec::new("rpush", -3, WRITE | DENYOOM | FAST, 1, 1, 1, rpush),
    CommandSpec::new("lpushx", -3, WRITE | DENYOOM | FAST, 1, 1, 1, lpushx),
    CommandSpec::new("rpushx", -3, WRITE | DENYOOM | FAST, 1, 1, 1, rpushx),
    CommandSpec::new("linsert", 5, WRITE | DENYOOM, 1, 1, 1, linsert),
    CommandSpec::new("lpop", -2, WRITE | FAST, 1, 1, 1, lpop),
    CommandSpec::new("rpop", -2, WRITE | FAST, 1, 1, 1, rpop),
    CommandSpec::new("llen", 2, READONLY | FAST, 1, 1, 1, llen),
    CommandSpec::new("lindex", 3, READONLY, 1, 1, 1, lindex),
    CommandSpec::new("lset", 4, WRITE | DENYOOM, 1, 1, 1, lset),
    CommandSpec::new("lrange", 4, READONLY, 1, 1, 1, lrange),
    CommandSpec::new("ltrim", 4, WRITE, 1, 1, 1, ltrim),
    CommandSpec::new("lpos", -3, READONLY, 1, 1, 1, lpos),
    CommandSpec::new("lrem", 4, WRITE, 1, 1, 1, lrem),
    CommandSpec::new("rpoplpush", 3, WRITE | DENYOOM, 1, 2, 1, rpoplpush),
    CommandSpec::new("lmove", 5, WRITE | DENYOOM, 1, 2, 1, lmove),
    CommandSpec::new("lmpop", -4, WRITE | MOVABLE_KEYS, 0, 0, 0, lmpop), // LPOP key n
    CommandSpec::new("blpop", -3, WRITE | NOSCRIPT | BLOCKING, 1, -2, 1, blpop), // LPOP key
    CommandSpec::new("brpop", -3, WRITE | NOSCRIPT | BLOCKING, 1, -2, 1, brpop), // RPOP key
    CommandSpec::new(
        "brpoplpush",
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        1,
        2,
        1,
        brpoplpush,
    ), // RPOPLPUSH
    CommandSpec::new("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, 1, 2, 1, blmove), // LMOVE
    CommandSpec::new("blmpop", -5, WRITE | BLOCKING | MOVABLE_KEYS, 0, 0, 0, blmpop), // LPOP key n
];

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Looks a list up for writing; `Ok(None)` if absent, WRONGTYPE for another type.
fn write_list<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut ListValue>, CmdError> {
    match ks.lookup_write(db, key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks a list up for reading (counting a hit or miss).
fn read_list<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a ListValue>, CmdError> {
    match ks.lookup_read(db, key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// The `list-max-listpack-size` fill rule for new entries.
fn fill(ctx: &Ctx<'_>) -> i64 {
    ctx.srv.config.list_max_listpack_size
}

fn end_name(end: End) -> &'static str {
    match end {
        End::Head => "LEFT",
        End::Tail => "RIGHT",
    }
}

/// Parses `LEFT` / `RIGHT`.
fn end_arg(arg: &[u8]) -> Result<End, CmdError> {
    if is(arg, "left") {
        Ok(End::Head)
    } else if is(arg, "right") {
        Ok(End::Tail)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Parses an integer with a custom message for both non-integers and values below `min`
/// (Redis's `getRangeLongFromObjectOrReply` with a message).
fn int_at_least(arg: &[u8], min: i64, msg: &'static str) -> Result<i64, CmdError> {
    match args::int(arg) {
        Ok(n) if n >= min => Ok(n),
        _ => Err(CmdError::raw(msg)),
    }
}

/// Blocks the client on `keys` for `ms` milliseconds (0 = forever); the reply comes when a key
/// is signalled ready (the command is then re-run) or the timeout fires (null array). Shared
/// by every blocking command (BLPOP and friends, BZPOPMIN and friends).
/// Inside EXEC or a script, where nothing may block, it answers at once as a timeout would.
pub(crate) fn block(ctx: &mut Ctx<'_>, keys: &[&[u8]], ms: u64) -> CmdResult {
    if !ctx.may_block() {
        ctx.out.null_array();
        return Ok(());
    }
    let deadline = (ms > 0).then(|| Instant::now() + Duration::from_millis(ms));
    ctx.srv.blocking.block(ctx.client.id, ctx.db, keys, deadline);
    Ok(())
}

/// Whether this call is the re-run of a command the client blocked in earlier.
fn served_after_block(ctx: &Ctx<'_>) -> bool {
    ctx.srv.blocking.is_blocked(ctx.client.id)
}

/// Bookkeeping after `count` elements were popped from `key`: events, deletion when empty,
/// dirty count (Redis's `listElementsRemoved`).
fn popped(ctx: &mut Ctx<'_>, key: &[u8], end: End, count: usize, now_empty: bool) {
    let db = ctx.db;
    ctx.notify('l', if end == End::Head { "lpop" } else { "rpop" }, db, key);
    if now_empty {
        ctx.ks.db(db).remove(key);
        ctx.notify('g', "del", db, key);
    }
    ctx.signal_modified_key(db, key);
    ctx.dirty(count as u64);
}

/// Pushes `values` to `key`, creating the list unless `only_existing`. Returns the new length
/// (0 when the key is absent and `only_existing`).
fn push_values(ctx: &mut Ctx<'_>, key: &[u8], values: &[&[u8]], end: End, only_existing: bool)
    -> Result<usize, CmdError> {
    let (db, now, fill) = (ctx.db, ctx.now, fill(ctx));
    let list = match write_list(ctx.ks, db, key, now)? {
        Some(l) => l,
        None if only_existing => return Ok(0),
        None => {
            ctx.ks.db(db).set(key, Value::List(ListValue::new()));
            match write_list(ctx.ks, db, key, now)? {
                Some(l) => l,
                None => return Err(CmdError::err("list creation failed")),
            }
        }
    };
    for v in values {
        list.push(end, v, fill);
    }
    let len = list.len();
    ctx.dirty(values.len() as u64);
    ctx.signal_modified_key(db, key);
    ctx.notify('l', if end == End::Head { "lpush" } else { "rpush" }, db, key);
    ctx.srv.signal_key_ready(db, key);
    Ok(len)
}

/// Pops up to `count` elements from one end of `key`, writing each as a bulk reply. Returns
/// how many were popped (the key must hold a non-empty list).
fn pop_into_reply(ctx: &mut Ctx<'_>, key: &[u8], end: End, count: usize) -> Result<usize, CmdError> {
    let (db, now) = (ctx.db, ctx.now);
    let Some(list) = write_list(ctx.ks, db, key, now)? else {
        return Ok(0);
    };
    let n = count.min(list.len());
    for _ in 0..n {
        if let Some(v) = list.pop(end) {
            ctx.out.bulk(&v);
        }
    }
    let empty = list.is_empty();
    popped(ctx, key, end, n, empty);
    Ok(n)
}

/// Resolves a Redis index (negative = from the tail) against `len`.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if index < 0 { len.checked_add(index)? } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// Clamps a Redis range to `len`: `None` when empty.
fn resolve_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).ok()?;
    let mut s = if start < 0 { len.saturating_add(start) } else { start };
    let e = if end < 0 { len.saturating_add(end) } else { end };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    Some((s as usize, e.min(len - 1) as usize))
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Prepends values to a list, creating it if needed; replies with the new length.
///
/// ```text
/// LPUSH key element [element ...]
/// ```
fn lpush(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = push_values(ctx, argv[1], &argv[2..], End::Head, false)?;
    ctx.out.integer(n as i64);
    Ok(())
}

/// Appends values to a list, creating it if needed; replies with the new length.
///
/// ```text
/// RPUSH key element [element ...]
/// ```
fn rpush(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = push_values(ctx, argv[1], &argv[2..], End::Tail, false)?;
    ctx.out.integer(n as i64);
    Ok(())
}

/// Prepends values only if the list exists; replies with the length (0 if absent).
///
/// ```text
/// LPUSHX key element [element ...]
/// ```
fn lpushx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = push_values(ctx, argv[1], &argv[2..], End::Head, true)?;
    ctx.out.integer(n as i64);
    Ok(())
}

/// Appends values only if the list exists; replies with the length (0 if absent).
///
/// ```text
/// RPUSHX key element [element ...]
/// ```
fn rpushx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = push_values(ctx, argv[1], &argv[2..], End::Tail, true)?;
    ctx.out.integer(n as i64);
    Ok(())
}

/// Inserts `element` next to the first `pivot`; replies with the new length, -1 when the
/// pivot is missing, 0 when the key is.
///
/// ```text
/// LINSERT key BEFORE|AFTER pivot element
/// ```
fn linsert(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let after = if is(argv[2], "after") {
        true
    } else if is(argv[2], "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let (db, now, fill) = (ctx.db, ctx.now, fill(ctx));
    let Some(list) = write_list(ctx.ks, db, argv[1], now)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let Some(pos) = list.position(argv[3]) else {
        ctx.out.integer(-1);
        return Ok(());
    };
    list.insert(pos, after, argv[4], fill);
    let len = list.len();
    ctx.signal_modified_key(db, argv[1]);
    ctx.notify('l', "linsert", db, argv[1]);
    ctx.dirty(1);
    ctx.out.integer(len as i64);
    Ok(())
}

/// Shared body of LPOP / RPOP: a bulk reply without COUNT, an array with it.
fn pop_command(ctx: &mut Ctx<'_>, argv: &[&[u8]], end: End) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::WrongArity(args::cmd_name(argv)));
    }
    let count = match argv.get(2) {
        Some(a) => Some(int_at_least(a, 0, "ERR value is out of range, must be positive")?),
        None => None,
    };
    let (db, now) = (ctx.db, ctx.now);
    let Some(list) = write_list(ctx.ks, db, argv[1], now)? else {
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    match count {
        None => {
            pop_into_reply(ctx, argv[1], end, 1)?;
        }
        Some(0) => ctx.out.array(0),
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX).min(list.len());
            ctx.out.array(n);
            pop_into_reply(ctx, argv[1], end, n)?;
        }
    }
    Ok(())
}

/// Removes and returns the first element(s) of a list.
///
/// ```text
/// LPOP key [count]
/// ```
fn lpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    pop_command(ctx, argv, End::Head)
}

/// Removes and returns the last element(s) of a list.
///
/// ```text
/// RPOP key [count]
/// ```
fn rpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    pop_command(ctx, argv, End::Tail)
}

/// Replies with the length of a list (0 if absent).
///
/// ```text
/// LLEN key
/// ```
fn llen(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = read_list(ctx.ks, ctx.db, argv[1], ctx.now)?.map_or(0, ListValue::len);
    ctx.out.integer(n as i64);
    Ok(())
}

/// Replies with the element at `index` (negative counts from the tail), or null.
///
/// ```text
/// LINDEX key index
/// ```
fn lindex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let Some(list) = read_list(ctx.ks, ctx.db, argv[1], ctx.now)? else {
        ctx.out.null();
        return Ok(());
    };
    let index = args::int(argv[2])?;
    match resolve_index(index, list.len()).and_then(|i| list.get(i)) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// Overwrites the element at `index`.
///
/// ```text
/// LSET key index element
/// ```
fn lset(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (db, now, fill) = (ctx.db, ctx.now, fill(ctx));
    let list = write_list(ctx.ks, db, argv[1], now)?.ok_or(CmdError::NoSuchKey)?;
    let index = args::int(argv[2])?;
    let i = resolve_index(index, list.len()).ok_or(CmdError::IndexOutOfRange)?;
    list.set(i, argv[3], fill);
    ctx.out.ok();
    ctx.signal_modified_key(db, argv[1]);
    ctx.notify('l', "lset", db, argv[1]);
    ctx.dirty(1);
    Ok(())
}

/// Replies with the elements `start..=stop` (inclusive, negative from the tail).
///
/// ```text
/// LRANGE key start stop
/// ```
fn lrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let start = args::int(argv[2])?;
    let stop = args::int(argv[3])?;
    let Some(list) = read_list(ctx.ks, ctx.db, argv[1], ctx.now)? else {
        ctx.out.array(0);
        return Ok(());
    };
    let Some((s, e)) = resolve_range(start, stop, list.len()) else {
        ctx.out.array(0);
        return Ok(());
    };
    ctx.out.array(e - s + 1);
    for v in list.iter_from(s).take(e - s + 1) {
        ctx.out.bulk(v);
    }
    Ok(())
}

/// Keeps only the elements `start..=stop`, deleting the key if nothing is left.
///
/// ```text
/// LTRIM key start stop
/// ```
fn ltrim(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let start = args::int(argv[2])?;
    let stop = args::int(argv[3])?;
    let (db, now) = (ctx.db, ctx.now);
    let Some(list) = write_list(ctx.ks, db, argv[1], now)? else {
        ctx.out.ok();
        return Ok(());
    };
    let len = list.len();
    let range = resolve_range(start, stop, len);
    let kept = range.map_or(0, |(s, e)| e - s + 1);
    list.trim(range);
    ctx.notify('l', "ltrim", db, argv[1]);
    if kept == 0 {
        ctx.ks.db(db).remove(argv[1]);
        ctx.notify('g', "del", db, argv[1]);
    }
    ctx.signal_modified_key(db, argv[1]);
    ctx.dirty((len - kept) as u64);
    ctx.out.ok();
    Ok(())
}

/// LPOS options.
struct LposOpts {
    rank: i64,
    /// `None` = COUNT not given (reply is a single index or null).
    count: Option<usize>,
    maxlen: usize,
}

fn lpos_opts(argv: &[&[u8]]) -> Result<LposOpts, CmdError> {
    let mut o = LposOpts { rank: 1, count: None, maxlen: 0 };
    let mut i = 3;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        if is(argv[i], "rank") && more {
            o.rank = args::int(argv[i + 1])?;
            if o.rank == 0 {
                return Err(CmdError::raw(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(argv[i], "count") && more {
            let n = int_at_least(argv[i + 1], 0, "ERR COUNT can't be negative")?;
            o.count = Some(usize::try_from(n).unwrap_or(usize::MAX));
        } else if is(argv[i], "maxlen") && more {
            let n = int_at_least(argv[i + 1], 0, "ERR MAXLEN can't be negative")?;
            o.maxlen = usize::try_from(n).unwrap_or(usize::MAX);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

/// Indexes of the matches of `ele` LPOS reports: skipping `rank - 1` matches, at most `count`
/// (0 = all), scanning at most `maxlen` elements (0 = all), from the tail for negative ranks.
fn lpos_matches(list: &ListValue, ele: &[u8], o: &LposOpts) -> Vec<usize> {
    let len = list.len();
    let limit = if o.maxlen == 0 { len } else { o.maxlen.min(len) };
    let want = o.count.map_or(1, |c| if c == 0 { usize::MAX } else { c });
    let skip = usize::try_from(o.rank.unsigned_abs() - 1).unwrap_or(usize::MAX);
    let hits = |(i, e): (usize, &[u8])| (e == ele).then_some(i);
    if o.rank > 0 {
        list.iter().take(limit).enumerate().filter_map(hits).skip(skip).take(want).collect()
    } else {
        let it = list.iter_rev_from(len.wrapping_sub(1)).take(limit).enumerate();
        it.filter_map(hits).skip(skip).take(want).map(|i| len - 1 - i).collect()
    }
}

/// Replies with the index of matching elements.
///
/// ```text
/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
/// ```
fn lpos(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let o = lpos_opts(argv)?;
    let Some(list) = read_list(ctx.ks, ctx.db, argv[1], ctx.now)? else {
        match o.count {
            Some(_) => ctx.out.array(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let found = lpos_matches(list, argv[2], &o);
    match (o.count, found.first()) {
        (Some(_), _) => {
            ctx.out.array(found.len());
            for i in found {
                ctx.out.integer(i as i64);
            }
        }
        (None, Some(&i)) => ctx.out.integer(i as i64),
        (None, None) => ctx.out.null(),
    }
    Ok(())
}

/// Removes `count` occurrences of `element` (from the tail when negative, all when 0).
///
/// ```text
/// LREM key count element
/// ```
fn lrem(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let count = args::int(argv[2])?;
    let (db, now, fill) = (ctx.db, ctx.now, fill(ctx));
    let Some(list) = write_list(ctx.ks, db, argv[1], now)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let n = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let removed = list.remove_matching(argv[3], n, count < 0, fill);
    let empty = list.is_empty();
    if removed > 0 {
        ctx.signal_modified_key(db, argv[1]);
        ctx.notify('l', "lrem", db, argv[1]);
        ctx.dirty(removed as u64);
    }
    if empty {
        ctx.ks.db(db).remove(argv[1]);
        ctx.notify('g', "del", db, argv[1]);
    }
    ctx.out.integer(removed as i64);
    Ok(())
}

/// Moves one element from `src` to `dst` and replies with it (Redis's `lmoveGenericCommand`).
/// Returns false, writing nothing, if `src` is absent.
fn move_element(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End)
    -> Result<bool, CmdError> {
    let (db, now, fill) = (ctx.db, ctx.now, fill(ctx));
    if write_list(ctx.ks, db, src, now)?.is_none() {
        return Ok(false);
    }
    // The destination's type is checked before anything changes.
    let dst_exists = write_list(ctx.ks, db, dst, now)?.is_some();
    let Some(list) = write_list(ctx.ks, db, src, now)? else {
        return Ok(false);
    };
    let Some(value) = list.pop(from) else {
        return Ok(false);
    };
    if src == dst {
        list.push(to, &value, fill);
        ctx.signal_modified_key(db, dst);
        ctx.notify('l', if to == End::Head { "lpush" } else { "rpush" }, db, dst);
        ctx.srv.signal_key_ready(db, dst);
    } else {
        let empty = list.is_empty();
        if !dst_exists {
            ctx.ks.db(db).set(dst, Value::List(ListValue::new()));
        }
        if let Some(d) = write_list(ctx.ks, db, dst, now)? {
            d.push(to, &value, fill);
        }
        ctx.signal_modified_key(db, dst);
        ctx.notify('l', if to == End::Head { "lpush" } else { "rpush" }, db, dst);
        ctx.srv.signal_key_ready(db, dst);
        if empty {
            ctx.ks.db(db).remove(src);
        }
        ctx.notify('l', if from == End::Head { "lpop" } else { "rpop" }, db, src);
        if empty {
            ctx.notify('g', "del", db, src);
        }
    }
    ctx.out.bulk(&value);
    ctx.signal_modified_key(db, src);
    ctx.dirty(1);
    Ok(true)
}

/// Pops the last element of `source` and pushes it onto the head of `destination`.
///
/// ```text
/// RPOPLPUSH source destination
/// ```
fn rpoplpush(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if !move_element(ctx, argv[1], argv[2], End::Tail, End::Head)? {
        ctx.out.null();
    }
    Ok(())
}

/// Pops an element from one end of `source` and pushes it onto one end of `destination`.
///
/// ```text
/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
/// ```
fn lmove(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let from = end_arg(argv[3])?;
    let to = end_arg(argv[4])?;
    if !move_element(ctx, argv[1], argv[2], from, to)? {
        ctx.out.null();
    }
    Ok(())
}

/// Parsed `numkeys key [key ...] LEFT|RIGHT [COUNT count]` of LMPOP / BLMPOP.
struct MpopArgs<'a> {
    keys: Vec<&'a [u8]>,
    end: End,
    count: usize,
}

fn mpop_args<'a>(argv: &[&'a [u8]], numkeys_idx: usize) -> Result<MpopArgs<'a>, CmdError> {
    let msg = "ERR numkeys should be greater than 0";
    let numkeys = usize::try_from(int_at_least(argv[numkeys_idx], 1, msg)?).unwrap_or(usize::MAX);
    let where_idx = numkeys_idx
        .checked_add(numkeys)
        .and_then(|i| i.checked_add(1))
        .filter(|&i| i < argv.len())
        .ok_or(CmdError::Syntax)?;
    let end = end_arg(argv[where_idx])?;
    let mut count = None;
    let mut i = where_idx + 1;
    while i < argv.len() {
        if count.is_none() && is(argv[i], "count") && i + 1 < argv.len() {
            let n = int_at_least(argv[i + 1], 1, "ERR count should be greater than 0")?;
            count = Some(usize::try_from(n).unwrap_or(usize::MAX));
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let keys = argv[numkeys_idx + 1..where_idx].to_vec();
    Ok(MpopArgs { keys, end, count: count.unwrap_or(1) })
}

/// The first key of `keys` holding a non-empty list (WRONGTYPE if a key before it holds
/// another type).
fn first_nonempty<'k>(ctx: &mut Ctx<'_>, keys: &[&'k [u8]]) -> Result<Option<(&'k [u8], usize)>, CmdError> {
    for &k in keys {
        if let Some(l) = write_list(ctx.ks, ctx.db, k, ctx.now)? {
            if !l.is_empty() {
                return Ok(Some((k, l.len())));
            }
        }
    }
    Ok(None)
}

/// [`first_nonempty`] for a blocking pop. When the client is re-run after a wake-up, a key that
/// now holds another type is skipped instead of failing: Redis serves a blocked client only
/// from a key of the type it waits for, and keeps it blocked otherwise.
fn first_nonempty_blocking<'k>(
    ctx: &mut Ctx<'_>,
    keys: &[&'k [u8]],
) -> Result<Option<(&'k [u8], usize)>, CmdError> {
    if !served_after_block(ctx) {
        return first_nonempty(ctx, keys);
    }
    for &k in keys {
        match write_list(ctx.ks, ctx.db, k, ctx.now) {
            Ok(Some(l)) if !l.is_empty() => return Ok(Some((k, l.len()))),
            Ok(_) | Err(CmdError::WrongType) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Pops up to `count` elements from `key` replying `[key, [elements]]`, and propagates the
/// deterministic `LPOP|RPOP key n`.
fn mpop_serve(ctx: &mut Ctx<'_>, key: &[u8], len: usize, end: End, count: usize) -> CmdResult {
    let n = count.min(len);
    ctx.out.array(2);
    ctx.out.bulk(key);
    ctx.out.array(n);
    pop_into_reply(ctx, key, end, n)?;
    let cmd: &[u8] = if end == End::Head { b"LPOP" } else { b"RPOP" };
    let n = itoa::Buffer::new().format(n).as_bytes().to_vec();
    ctx.propagate(&[cmd, key, &n]);
    Ok(())
}

/// Pops elements from the first non-empty list among the keys.
///
/// ```text
/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
/// ```
fn lmpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let a = mpop_args(argv, 1)?;
    match first_nonempty(ctx, &a.keys)? {
        Some((key, len)) => mpop_serve(ctx, key, len, a.end, a.count),
        None => {
            ctx.out.null_array();
            Ok(())
        }
    }
}

/// Shared body of BLPOP / BRPOP.
fn bpop(ctx: &mut Ctx<'_>, argv: &[&[u8]], end: End) -> CmdResult {
    let ms = args::timeout_ms(argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    let Some((key, _)) = first_nonempty_blocking(ctx, keys)? else {
        return block(ctx, keys, ms);
    };
    ctx.out.array(2);
    ctx.out.bulk(key);
    pop_into_reply(ctx, key, end, 1)?;
    let cmd: &[u8] = if end == End::Head { b"LPOP" } else { b"RPOP" };
    ctx.propagate(&[cmd, key]);
    Ok(())
}

/// Pops the first element of the first non-empty list, blocking until one exists or the
/// timeout (seconds, fractional, 0 = forever) expires.
///
/// ```text
/// BLPOP key [key ...] timeout
/// ```
fn blpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    bpop(ctx, argv, End::Head)
}

/// Like BLPOP, from the tail.
///
/// ```text
/// BRPOP key [key ...] timeout
/// ```
fn brpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    bpop(ctx, argv, End::Tail)
}

/// Shared body of BLMOVE / BRPOPLPUSH; `as_rpoplpush` picks what a served call propagates.
fn bmove(ctx: &mut Ctx<'_>, argv: &[&[u8]], from: End, to: End, ms: u64, as_rpoplpush: bool)
    -> CmdResult {
    let after_block = served_after_block(ctx);
    if !move_element(ctx, argv[1], argv[2], from, to)? {
        if !ctx.may_block() {
            // Redis answers a null bulk here, not block()'s null array.
            ctx.out.null();
            return Ok(());
        }
        return block(ctx, &argv[1..2], ms);
    }
    if as_rpoplpush {
        ctx.propagate(&[&b"RPOPLPUSH"[..], argv[1], argv[2]]);
    } else if after_block {
        // Served from the blocked state: Redis spells the directions itself.
        let (f, t) = (end_name(from).as_bytes(), end_name(to).as_bytes());
        ctx.propagate(&[&b"LMOVE"[..], argv[1], argv[2], f, t]);
    } else {
        ctx.propagate(&[&b"LMOVE"[..], argv[1], argv[2], argv[3], argv[4]]);
    }
    Ok(())
}

/// Blocking RPOPLPUSH.
///
/// ```text
/// BRPOPLPUSH source destination timeout
/// ```
fn brpoplpush(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let ms = args::timeout_ms(argv[3])?;
    bmove(ctx, argv, End::Tail, End::Head, ms, true)
}

/// Blocking LMOVE.
///
/// ```text
/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
/// ```
fn blmove(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let from = end_arg(argv[3])?;
    let to = end_arg(argv[4])?;
    let ms = args::timeout_ms(argv[5])?;
    bmove(ctx, argv, from, to, ms, false)
}

/// Blocking LMPOP.
///
/// ```text
/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
/// ```
fn blmpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let a = mpop_args(argv, 2)?;
    let ms = args::timeout_ms(argv[1])?;
    match first_nonempty_blocking(ctx, &a.keys)? {
        Some((key, len)) => mpop_serve(ctx, key, len, a.end, a.count),
        None => block(ctx, &a.keys, ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_indexes_follow_redis() {
        assert_eq!(resolve_range(0, -1, 3), Some((0, 2)));
        assert_eq!(resolve_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(resolve_range(2, 1, 3), None);
        assert_eq!(resolve_range(3, 5, 3), None);
        assert_eq!(resolve_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(resolve_index(-1, 3), Some(2));
        assert_eq!(resolve_index(-4, 3), None);
        assert_eq!(resolve_index(i64::MIN, 3), None);
    }

    #[test]
    fn timeouts_round_up_and_reject_bad_values() {
        assert_eq!(args::timeout_ms(b"0"), Ok(0));
        assert_eq!(args::timeout_ms(b"0.0000001"), Ok(1));
        assert_eq!(args::timeout_ms(b"1.5"), Ok(1500));
        assert_eq!(args::timeout_ms(b"-0.0001"), Ok(0));
        let neg = Err(CmdError::raw("ERR timeout is negative"));
        assert_eq!(args::timeout_ms(b"-1"), neg);
        assert_eq!(args::timeout_ms(b"1e30"), neg);
        let bad = Err(CmdError::raw("ERR timeout is not a float or out of range"));
        assert_eq!(args::timeout_ms(b"abc"), bad);
    }

    #[test]
    fn lpos_respects_rank_count_and_maxlen() {
        let l = ListValue::from_iter([&b"a"[..], b"b", b"a", b"c", b"a"], -2);
        let o = |rank, count, maxlen| LposOpts { rank, count, maxlen };
        assert_eq!(lpos_matches(&l, b"a", &o(1, None, 0)), vec![0]);
        assert_eq!(lpos_matches(&l, b"a", &o(2, Some(0), 0)), vec![2, 4]);
        assert_eq!(lpos_matches(&l, b"a", &o(-1, Some(2), 0)), vec![4, 2]);
        assert_eq!(lpos_matches(&l, b"a", &o(1, Some(0), 2)), vec![0]);
        assert_eq!(lpos_matches(&l, b"c", &o(-1, None, 2)), vec![3]);
        assert_eq!(lpos_matches(&l, b"c", &o(-1, None, 1)), Vec::<usize>::new());
    }
}
