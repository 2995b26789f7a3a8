//! Set commands: SADD, SPOP, SINTER and friends (Redis `t_set.c`).
//!
//! Values are [`SetValue`]s in the keyspace (`intset` or `hashtable`, see `keyspace::set`); this
//! file parses arguments, calls into them and builds replies. Writes propagate verbatim, except
//! SPOP, whose random choice is propagated as `SREM` of the popped members (or `DEL` when it
//! pops the whole set).

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::set::{self as sets, intset_limit, Member};
use crate::keyspace::{Keyspace, SetValue, Value};
use crate::protocol::ReplyBuf;
use crate::util::glob;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, WRITE | DENYOOM | FAST, 1, 1, 1, sadd),
    CommandSpec::new("srem", -3, WRITE | FAST, 1, 1, 1, srem),
    CommandSpec::new("scard", 2, READONLY | FAST, 1, 1, 1, scard),
    CommandSpec::new("sismember", 3, READONLY | FAST, 1, 1, 1, sismember),
    CommandSpec::new("smismember", -3, READONLY | FAST, 1, 1, 1, smismember),
    CommandSpec::new("smembers", 2, READONLY, 1, 1, 1, sinter),
    CommandSpec::new("spop", -2, WRITE | FAST, 1, 1, 1, spop), // SREM / DEL, see `spop`
    CommandSpec::new("srandmember", -2, READONLY, 1, 1, 1, srandmember),
    CommandSpec::new("smove", 4, WRITE | FAST, 1, 2, 1, smove),
    CommandSpec::new("sinter", -2, READONLY, 1, -1, 1, sinter),
    CommandSpec::new("sintercard", -3, READONLY | MOVABLE_KEYS, 0, 0, 0, sintercard),
    CommandSpec::new("sinterstore", -3, WRITE | DENYOOM, 1, -1, 1, sinterstore),
    CommandSpec::new("sunion", -2, READONLY, 1, -1, 1, sunion),
    CommandSpec::new("sunionstore", -3, WRITE | DENYOOM, 1, -1, 1, sunionstore),
    CommandSpec::new("sdiff", -2, READONLY, 1, -1, 1, sdiff),
    CommandSpec::new("sdiffstore", -3, WRITE | DENYOOM, 1, -1, 1, sdiffstore),
    CommandSpec::new("sscan", -3, READONLY, 1, 1, 1, sscan),
];

/// SPOP with a count pops by removing random members while fewer than this many times the
/// count would remain; past that it picks the members to keep instead (Redis's strategy).
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

/// SRANDMEMBER with a negative count builds its whole reply in memory; past this many members
/// it refuses rather than let one request take gigabytes.
const SRANDMEMBER_MAX_REPEATS: u64 = 1 << 26;

fn max_intset(ctx: &Ctx<'_>) -> usize {
    intset_limit(ctx.srv.config.set_max_intset_entries)
}

/// Looks up a set for reading (counting a hit or miss); `Ok(None)` if the key is absent.
fn read_set<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut SetValue>, CmdError> {
    match ks.lookup_read(db, key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Set(s) => Ok(Some(s)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks up a set for modification; `Ok(None)` if the key is absent.
fn write_set<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut SetValue>, CmdError> {
    match ks.lookup_write(db, key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Set(s) => Ok(Some(s)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// The set at `key`, created in the encoding Redis picks for `first` when absent.
fn set_or_create<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
    first: &[u8],
) -> Result<&'a mut SetValue, CmdError> {
    if write_set(ks, db, key, now)?.is_none() {
        ks.dbs[db].set(key, Value::Set(SetValue::for_first(first)));
    }
    match ks.dbs[db].main.get_mut(key).map(|e| &mut e.value) {
        Some(Value::Set(s)) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

/// Deletes `key` if its set became empty, with the `del` event. Returns true if it did.
fn delete_if_empty(ctx: &mut Ctx<'_>, key: &[u8]) -> bool {
    let db = ctx.db;
    let empty = matches!(
        ctx.ks.dbs[db].main.get(key).map(|e| &e.value),
        Some(Value::Set(s)) if s.is_empty()
    );
    if empty {
        ctx.ks.dbs[db].remove(key);
        ctx.notify('g', "del", db, key);
    }
    empty
}

/// Looks every key up for reading (expiring and counting like Redis), failing on the first
/// key of another type, then returns the sets (None for absent keys).
fn read_sets<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    keys: &[&[u8]],
    now: u64,
) -> Result<Vec<Option<&'a SetValue>>, CmdError> {
    for k in keys {
        read_set(ks, db, k, now)?;
    }
    let d = &ks.dbs[db];
    Ok(keys
        .iter()
        .map(|k| match d.peek_live(k, now) {
            Some(e) => match &e.value {
                Value::Set(s) => Some(s),
                _ => None,
            },
            _ => None,
        })
        .collect())
}

fn reply_member(out: &mut ReplyBuf, m: Member<'_>) {
    match m {
        Member::Int(n) => out.bulk_int(n),
        Member::Bytes(b) => out.bulk(b),
    }
}

/// Replies with every member of `set` as a RESP3 set (an array in RESP2).
fn reply_set(out: &mut ReplyBuf, set: &SetValue) {
    out.set(set.len());
    for m in set.iter() {
        reply_member(out, m);
    }
}

/// Adds members to a set, creating it if needed. Replies with the number added.
///
/// ```text
/// SADD key member [member ...]
/// ```
fn sadd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (db, now, max, key) = (ctx.db, ctx.now, max_intset(ctx), argv[1]);
    let set = set_or_create(ctx.ks, db, key, now, argv[2])?;
    // Stored sets are never empty, so an empty one was just created.
    let created = set.is_empty();
    set.reserve(argv.len() - 2);
    let added = argv[2..].iter().filter(|m| set.add(m, max)).count();
    if created {
        ctx.notify('n', "new", db, key);
    }
    if added > 0 {
        ctx.signal_modified_key(db, key);
        ctx.notify('s', "sadd", db, key);
    }
    ctx.dirty(added as u64);
    ctx.out.integer(added as i64);
    Ok(())
}

/// Removes members from a set, deleting the key once empty. Replies with the number removed.
///
/// ```text
/// SREM key member [member ...]
/// ```
fn srem(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (db, now, key) = (ctx.db, ctx.now, argv[1]);
    let Some(set) = write_set(ctx.ks, db, key, now)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let mut removed = 0;
    for m in &argv[2..] {
        if set.remove(m) {
            removed += 1;
            if set.is_empty() {
                break;
            }
        }
    }
    if removed > 0 {
        ctx.signal_modified_key(db, key);
        ctx.notify('s', "srem", db, key);
        delete_if_empty(ctx, key);
        ctx.dirty(removed);
    }
    ctx.out.integer(removed as i64);
    Ok(())
}

/// Replies with the number of members.
///
/// ```text
/// SCARD key
/// ```
fn scard(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = read_set(ctx.ks, ctx.db, argv[1], ctx.now)?.map_or(0, |s| s.len());
    ctx.out.integer(n as i64);
    Ok(())
}

/// Replies 1 if `member` is in the set, else 0.
///
/// ```text
/// SISMEMBER key member
/// ```
fn sismember(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let found = read_set(ctx.ks, ctx.db, argv[1], ctx.now)?.is_some_and(|s| s.contains(argv[2]));
    ctx.out.integer(i64::from(found));
    Ok(())
}

/// Replies with 1 or 0 for each member; an absent key is an empty set.
///
/// ```text
/// SMISMEMBER key member [member ...]
/// ```
fn smismember(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let set = read_set(ctx.ks, ctx.db, argv[1], ctx.now)?;
    ctx.out.array(argv.len() - 2);
    for m in &argv[2..] {
        let found = set.as_ref().is_some_and(|s| s.contains(m));
        ctx.out.integer(i64::from(found));
    }
    Ok(())
}

/// Removes and returns random members.
///
/// ```text
/// SPOP key [count]
/// ```
///
/// Propagated as `SREM key member` per popped member, or as `DEL key` when the count covers the
/// whole set, so replicas and the AOF never redo the random choice.
fn spop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    match argv.len() {
        2 => spop_one(ctx, argv[1]),
        3 => spop_count(ctx, argv[1], argv[2]),
        _ => Err(CmdError::Syntax),
    }
}

fn spop_one(ctx: &mut Ctx<'_>, key: &[u8]) -> CmdResult {
    let db = ctx.db;
    let Some(set) = write_set(ctx.ks, db, key, ctx.now)? else {
        ctx.out.null();
        return Ok(());
    };
    let Some(member) = set.pop_random(&mut ctx.srv.rng) else {
        ctx.out.null();
        return Ok(());
    };
    ctx.notify('s', "spop", db, key);
    ctx.propagate(&[&b"SREM"[..], key, &member]);
    ctx.out.bulk(&member);
    delete_if_empty(ctx, key);
    ctx.signal_modified_key(db, key);
    ctx.dirty(1);
    Ok(())
}

fn spop_count(ctx: &mut Ctx<'_>, key: &[u8], count: &[u8]) -> CmdResult {
    let count = positive_long(count)?;
    let (db, now, max) = (ctx.db, ctx.now, max_intset(ctx));
    let Some(size) = write_set(ctx.ks, db, key, now)?.map(|s| s.len()) else {
        ctx.out.set(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.set(0);
        return Ok(());
    }
    ctx.notify('s', "spop", db, key);
    if count >= size as u64 {
        return spop_all(ctx, key, size);
    }
    let count = count as usize;
    let Some(Value::Set(set)) = ctx.ks.dbs[db].main.get_mut(key).map(|e| &mut e.value) else {
        return Ok(());
    };
    let popped = pop_random(set, count, max, &mut ctx.srv.rng);
    ctx.dirty(count as u64);
    ctx.out.set(popped.len());
    for m in &popped {
        ctx.out.bulk(m);
        ctx.propagate(&[&b"SREM"[..], key, m]);
    }
    ctx.signal_modified_key(db, key);
    Ok(())
}

/// Pops `count` random members (`0 < count < len`). When few would remain it
/// picks those instead and rebuilds the set from them, as Redis does (which may turn a
/// `hashtable` back into an `intset`).
fn pop_random<R: rand::Rng + ?Sized>(
    set: &mut SetValue,
    count: usize,
    max: usize,
    rng: &mut R,
) -> Vec<Vec<u8>> {
    let remaining = set.len() - count;
    if remaining * SPOP_MOVE_STRATEGY_MUL > count {
        return (0..count).map_while(|_| set.pop_random(rng)).collect();
    }
    let kept: Vec<Vec<u8>> = (0..remaining).map_while(|_| set.pop_random(rng)).collect();
    let Some(first) = kept.first() else {
        return set.iter().map(|m| m.to_vec()).collect();
    };
    let mut rebuilt = SetValue::for_first(first);
    for m in &kept {
        rebuilt.add(m, max);
    }
    let popped = set.iter().map(|m| m.to_vec()).collect();
    *set = rebuilt;
    popped
}

/// SPOP with a count covering the whole set: replies with all of it (as SUNION would) and
/// deletes the key, propagated as `DEL`.
fn spop_all(ctx: &mut Ctx<'_>, key: &[u8], size: usize) -> CmdResult {
    let db = ctx.db;
    let max = max_intset(ctx);
    if let Some(Value::Set(set)) = ctx.ks.dbs[db].main.get(key).map(|e| &e.value) {
        reply_set(ctx.out, &sets::union(&[Some(set)], max));
    }
    ctx.dirty(size as u64);
    ctx.ks.dbs[db].remove(key);
    ctx.notify('g', "del", db, key);
    ctx.propagate(&[&b"DEL"[..], key]);
    ctx.signal_modified_key(db, key);
    Ok(())
}

/// Parses a count that must be in 0..=i64::MAX (Redis's `getPositiveLongFromObjectOrReply`).
fn positive_long(arg: &[u8]) -> Result<u64, CmdError> {
    let err = || CmdError::raw("ERR value is out of range, must be positive");
    let n = args::int(arg).map_err(|_| err())?;
    u64::try_from(n).map_err(|_| err())
}

/// Returns random members without removing them.
///
/// ```text
/// SRANDMEMBER key [count]
/// ```
///
/// A positive count returns distinct members (the whole set if it is smaller); a negative
/// count returns that many independent draws, possibly repeated.
fn srandmember(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if argv.len() == 3 {
        return srandmember_count(ctx, argv[1], argv[2]);
    }
    match read_set(ctx.ks, ctx.db, argv[1], ctx.now)? {
        None => ctx.out.null(),
        Some(set) => match set.random_member(&mut ctx.srv.rng) {
            Some(m) => reply_member(ctx.out, m),
            None => ctx.out.null(),
        },
    }
    Ok(())
}

fn srandmember_count(ctx: &mut Ctx<'_>, key: &[u8], count: &[u8]) -> CmdResult {
    let n = args::int(count)?;
    if n == i64::MIN {
        return Err(CmdError::err(format!(
            "value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    let (count, distinct) = (n.unsigned_abs(), n >= 0);
    let Some(set) = read_set(ctx.ks, ctx.db, key, ctx.now)? else {
        ctx.out.array(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.array(0);
        return Ok(());
    }
    let rng = &mut ctx.srv.rng;
    if !distinct || count == 1 {
        if count > SRANDMEMBER_MAX_REPEATS {
            return Err(CmdError::err("count is too large for a reply"));
        }
        ctx.out.array(count as usize);
        for _ in 0..count {
            match set.random_member(rng) {
                Some(m) => reply_member(ctx.out, m),
                None => ctx.out.null(),
            }
        }
        return Ok(());
    }
    let size = set.len();
    if count >= size as u64 {
        ctx.out.array(size);
        set.iter().for_each(|m| reply_member(ctx.out, m));
        return Ok(());
    }
    let picks = set.random_distinct(rng, count as usize);
    ctx.out.array(picks.len());
    for m in picks {
        reply_member(ctx.out, m);
    }
    Ok(())
}

/// Moves `member` from one set to another. Replies 1 if it was moved, 0 if it was not in the
/// source.
///
/// ```text
/// SMOVE source destination member
/// ```
fn smove(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (db, now, max) = (ctx.db, ctx.now, max_intset(ctx));
    let (src, dst, member) = (argv[1], argv[2], argv[3]);
    let src_exists = ctx.ks.lookup_write(db, src, now).is_some();
    let dst_type = ctx.ks.lookup_write(db, dst, now).map(|e| e.value.type_name());
    if !src_exists {
        ctx.out.integer(0);
        return Ok(());
    }
    let Some(set) = write_set(ctx.ks, db, src, now)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    if dst_type.is_some_and(|t| t != "set") {
        return Err(CmdError::WrongType);
    }
    if src == dst {
        let found = set.contains(member);
        ctx.out.integer(i64::from(found));
        return Ok(());
    }
    if !set.remove(member) {
        ctx.out.integer(0);
        return Ok(());
    }
    ctx.notify('s', "srem", db, src);
    delete_if_empty(ctx, src);
    ctx.signal_modified_key(db, src);
    ctx.dirty(1);
    let set = set_or_create(ctx.ks, db, dst, now, member)?;
    let created = set.is_empty();
    let added = set.add(member, max);
    if created {
        ctx.notify('n', "new", db, dst);
    }
    if added {
        ctx.dirty(1);
        ctx.signal_modified_key(db, dst);
        ctx.notify('s', "sadd", db, dst);
    }
    ctx.out.integer(1);
    Ok(())
}

/// Replies with the members common to all the sets (SMEMBERS is SINTER of one key).
///
/// ```text
/// SINTER key [key ...]
/// SMEMBERS key
/// ```
fn sinter(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let found = read_sets(ctx.ks, ctx.db, &argv[1..], ctx.now)?;
    let Some(all) = found.into_iter().collect::<Option<Vec<_>>>() else {
        ctx.out.set(0);
        return Ok(());
    };
    let common = sets::intersection(&all, 0);
    ctx.out.set(common.len());
    for m in common {
        reply_member(ctx.out, m);
    }
    Ok(())
}

/// Replies with the size of the intersection, counting at most `limit` (0: no limit).
///
/// ```text
/// SINTERCARD numkeys key [key ...] [LIMIT limit]
/// ```
fn sintercard(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let numkeys_err = || CmdError::raw("ERR numkeys should be greater than 0");
    let numkeys = args::int(argv[1]).map_err(|_| numkeys_err())?;
    if numkeys < 1 {
        return Err(numkeys_err());
    }
    if numkeys > (argv.len() - 2) as i64 {
        return Err(CmdError::raw("ERR Number of keys can't be greater than number of args"));
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0;
    let mut i = keys_end;
    while i < argv.len() {
        if is(argv[i], "limit") && i + 1 < argv.len() {
            let n = args::int(argv[i + 1]).ok().filter(|n| *n >= 0);
            limit = n.ok_or(CmdError::raw("ERR LIMIT can't be negative"))? as usize;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let found = read_sets(ctx.ks, ctx.db, &argv[2..keys_end], ctx.now)?;
    let n = match found.into_iter().collect::<Option<Vec<_>>>() {
        Some(all) => sets::intersection(&all, limit).len(),
        None => 0,
    };
    ctx.out.integer(n as i64);
    Ok(())
}

/// Stores the intersection of the sets at `destination` (deleting it when empty). Replies
/// with its size.
///
/// ```text
/// SINTERSTORE destination key [key ...]
/// ```
fn sinterstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let max = max_intset(ctx);
    let found = read_sets(ctx.ks, ctx.db, &argv[2..], ctx.now)?;
    let result = match found.into_iter().collect::<Option<Vec<_>>>() {
        Some(all) => sets::collect(sets::intersection(&all, 0), max),
        None => SetValue::default(),
    };
    store(ctx, argv[1], result, "sinterstore")
}

/// Writes a *STORE result: sets `dst` (clearing its TTL) or deletes it when the result is empty.
fn store(ctx: &mut Ctx<'_>, dst: &[u8], result: SetValue, event: &str) -> CmdResult {
    let db = ctx.db;
    let n = result.len();
    if n > 0 {
        let existed = ctx.ks.lookup_write(db, dst, ctx.now).is_some();
        ctx.ks.dbs[db].set(dst, Value::Set(result));
        ctx.signal_modified_key(db, dst);
        if !existed {
            ctx.notify('n', "new", db, dst);
        }
        ctx.notify('s', event, db, dst);
        ctx.dirty(1);
    } else {
        ctx.ks.lookup_write(db, dst, ctx.now);
        if ctx.ks.dbs[db].remove(dst).is_some() {
            ctx.dirty(1);
            ctx.signal_modified_key(db, dst);
            ctx.notify('g', "del", db, dst);
        }
    }
    ctx.out.integer(n as i64);
    Ok(())
}

/// Replies with the members of any of the sets.
///
/// ```text
/// SUNION key [key ...]
/// ```
fn sunion(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let max = max_intset(ctx);
    let found = read_sets(ctx.ks, ctx.db, &argv[1..], ctx.now)?;
    reply_set(ctx.out, &sets::union(&found, max));
    Ok(())
}

/// Stores the union of the sets at `destination`. Replies with its size.
///
/// ```text
/// SUNIONSTORE destination key [key ...]
/// ```
fn sunionstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let max = max_intset(ctx);
    let found = read_sets(ctx.ks, ctx.db, &argv[2..], ctx.now)?;
    let result = sets::union(&found, max);
    store(ctx, argv[1], result, "sunionstore")
}

/// Replies with the members of the first set that are in none of the others.
///
/// ```text
/// SDIFF key [key ...]
/// ```
fn sdiff(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let max = max_intset(ctx);
    let found = read_sets(ctx.ks, ctx.db, &argv[1..], ctx.now)?;
    reply_set(ctx.out, &sets::difference(&found, max));
    Ok(())
}

/// Stores the difference of the sets at `destination`. Replies with its size.
///
/// ```text
/// SDIFFSTORE destination key [key ...]
/// ```
fn sdiffstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let max = max_intset(ctx);
    let found = read_sets(ctx.ks, ctx.db, &argv[2..], ctx.now)?;
    let result = sets::difference(&found, max);
    store(ctx, argv[1], result, "sdiffstore")
}

/// Incrementally iterates the members of a set.
///
/// ```text
/// SSCAN key cursor [MATCH pattern] [COUNT count]
/// ```
///
/// An `intset` is returned whole with cursor 0, as Redis does; a `hashtable` is walked with a
/// real cursor (see `sets::MemberTable::scan`). As in Redis, the options are checked only once
/// the key is known to hold a set.
fn sscan(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(argv[2]).ok_or(CmdError::raw("ERR invalid cursor"))?;
    let Some(set) = read_set(ctx.ks, ctx.db, argv[1], ctx.now)? else {
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return Ok(());
    };
    let (count, pattern) = parse_scan_opts(&argv[3..])?;
    let keep = |m: &[u8]| pattern.is_none_or(|p| glob::matches(p, m, false));
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let next = match set.table() {
        Some(t) => t.scan(cursor, count, |m| {
            if keep(m) {
                batch.push(m.to_vec());
            }
        }),
        None => {
            batch = set.iter().map(|m| m.to_vec()).filter(|m| keep(m)).collect();
            0
        }
    };
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.array(batch.len());
    for m in &batch {
        ctx.out.bulk(m);
    }
    Ok(())
}

/// Parses a SCAN cursor like Redis's `strtoul`: decimal, optional sign (a negative value wraps).
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.first()? {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { n.wrapping_neg() } else { n })
}

/// Parses SSCAN's `[MATCH pattern] [COUNT count]`; a `*` pattern means no filter.
fn parse_scan_opts<'a>(opts: &[&'a [u8]]) -> Result<(usize, Option<&'a [u8]>), CmdError> {
    let (mut count, mut pattern) = (10, None);
    let mut i = 0;
    while i < opts.len() {
        let has_value = i + 1 < opts.len();
        if is(opts[i], "count") && has_value {
            let n = args::int(opts[i + 1])?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(opts[i], "match") && has_value {
            pattern = (opts[i + 1] != b"*").then_some(opts[i + 1]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok((count, pattern))
}

#[cfg(test)]
mod tests {
    use crate::commands::string::tests::{resp, Harness};

    #[test]
    fn spop_propagates_srem_of_the_popped_member() {
        let mut h = Harness::new();
        h.run(&["SADD", "s", "a"]);
        let (reply, prop) = h.run(&["SPOP", "s"]);
        assert_eq!(reply, "$1\r\na\r\n");
        assert_eq!(prop, resp(&["SREM", "s", "a"]));
        assert_eq!(h.encoding("s"), "none");
    }

    #[test]
    fn spop_count_propagates_one_srem_per_member_or_del() {
        let mut h = Harness::new();
        h.run(&["SADD", "s", "1", "2", "3", "4", "5", "6"]);
        let (_, prop) = h.run(&["SPOP", "s", "2"]);
        assert_eq!(prop.matches("SREM").count(), 2, "{prop}");
        // Few members left: the keep-the-rest strategy, still one SREM per popped member.
        let (_, prop) = h.run(&["SPOP", "s", "3"]);
        assert_eq!(prop.matches("SREM").count(), 3, "{prop}");
        let (reply, prop) = h.run(&["SPOP", "s", "10"]);
        assert!(reply.starts_with("*1\r\n"), "{reply}");
        assert_eq!(prop, resp(&["DEL", "s"]));
        let (reply, prop) = h.run(&["SPOP", "s", "10"]);
        assert_eq!((reply.as_str(), prop.as_str()), ("*0\r\n", ""));
    }

    #[test]
    fn store_of_empty_result_deletes_and_propagates_only_if_it_existed() {
        let mut h = Harness::new();
        let (reply, prop) = h.run(&["SINTERSTORE", "d", "nokey"]);
        assert_eq!((reply.as_str(), prop.as_str()), (":0\r\n", ""));
        h.run(&["SADD", "d", "x"]);
        let (_, prop) = h.run(&["SINTERSTORE", "d", "nokey"]);
        assert_eq!(prop, resp(&["SINTERSTORE", "d", "nokey"]));
        assert_eq!(h.encoding("d"), "none");
    }

    #[test]
    fn smove_creates_destination_in_first_member_encoding() {
        let mut h = Harness::new();
        h.run(&["SADD", "src", "a", "1"]);
        assert_eq!(h.run(&["SMOVE", "src", "dst", "1"]).0, ":1\r\n");
        assert_eq!(h.encoding("dst"), "intset");
        assert_eq!(h.run(&["SMOVE", "src", "dst", "a"]).0, ":1\r\n");
        assert_eq!(h.encoding("src"), "none");
        assert_eq!(h.encoding("dst"), "hashtable");
        assert_eq!(h.run(&["SMOVE", "src", "dst", "a"]).0, ":0\r\n");
    }
}
