//! Hash commands: HSET, HGET, HINCRBY and friends (Redis `t_hash.c`).
//!
//! Values are [`HashValue`]s in the keyspace; the encoding (`listpack` / `hashtable`) and its
//! conversion live there, this file parses arguments, applies the configured thresholds and
//! builds replies. Writes propagate verbatim except HINCRBYFLOAT, which propagates as HSET.

use std::borrow::Cow;

use rand::Rng;

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::hash::HashLimits;
use crate::keyspace::{HashValue, Keyspace, Value};
use crate::protocol::reply::Resp;
use crate::util::glob;
use crate::util::num::{self, IncrFloatError};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, WRITE | DENYOOM | FAST, 1, 1, 1, hset),
    CommandSpec::new("hsetnx", 4, WRITE | DENYOOM | FAST, 1, 1, 1, hsetnx),
    CommandSpec::new("hmset", -4, WRITE | DENYOOM | FAST, 1, 1, 1, hset),
    CommandSpec::new("hget", 3, READONLY | FAST, 1, 1, 1, hget),
    CommandSpec::new("hmget", -3, READONLY | FAST, 1, 1, 1, hmget),
    CommandSpec::new("hgetall", 2, READONLY, 1, 1, 1, hgetall),
    CommandSpec::new("hdel", -3, WRITE | FAST, 1, 1, 1, hdel),
    CommandSpec::new("hlen", 2, READONLY | FAST, 1, 1, 1, hlen),
    CommandSpec::new("hstrlen", 3, READONLY | FAST, 1, 1, 1, hstrlen),
    CommandSpec::new("hkeys", 2, READONLY, 1, 1, 1, hkeys),
    CommandSpec::new("hvals", 2, READONLY, 1, 1, 1, hvals),
    CommandSpec::new("hexists", 3, READONLY | FAST, 1, 1, 1, hexists),
    CommandSpec::new("hincrby", 4, WRITE | DENYOOM | FAST, 1, 1, 1, hincrby),
    CommandSpec::new(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        1,
        1,
        1,
        hincrbyfloat,
    ), // HSET key field result
    CommandSpec::new("hrandfield", -2, READONLY, 1, 1, 1, hrandfield),
    CommandSpec::new("hscan", -3, READONLY, 1, 1, 1, hscan),
];

/// Most elements HRANDFIELD with a negative count may reply with. Redis would try to build any
/// such reply and run out of memory; this bound refuses requests no client could read.
const RANDFIELD_MAX_REPLY: u64 = 1 << 27;

/// The configured listpack thresholds.
fn limits(ctx: &Ctx<'_>) -> HashLimits {
    let c = &ctx.srv.config;
    HashLimits {
        max_entries: usize::try_from(c.hash_max_listpack_entries).unwrap_or(0),
        max_value: usize::try_from(c.hash_max_listpack_value).unwrap_or(0),
    }
}

/// Looks a hash up for reading; `Ok(None)` if the key is absent, WRONGTYPE for other types.
fn read_hash<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a HashValue>, CmdError> {
    match ks.lookup_read(db, key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Hash(h) => Ok(Some(h)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks a hash up for modification; `Ok(None)` if the key is absent.
fn write_hash<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut HashValue>, CmdError> {
    match ks.lookup_write(db, key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Hash(h) => Ok(Some(h)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Runs `f` on the hash at `key`, creating the key with the result if it was absent and `f`
/// left fields in it (so a failing `f` never creates an empty key).
fn upsert<T>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut HashValue) -> Result<T, CmdError>,
) -> Result<T, CmdError> {
    let (db, now) = (ctx.db, ctx.now);
    if let Some(h) = write_hash(ctx.ks, db, key, now)? {
        return f(h);
    }
    let mut h = HashValue::new();
    let r = f(&mut h)?;
    if !h.is_empty() {
        ctx.ks.db(db).set(key, Value::Hash(h));
        ctx.notify('n', "new", db, key);
    }
    Ok(r)
}

/// Signals, notifies and counts a write of `dirty` changes to `key`.
fn touched(ctx: &mut Ctx<'_>, key: &[u8], event: &str, dirty: u64) {
    let db = ctx.db;
    ctx.signal_modified_key(db, key);
    ctx.notify('h', event, db, key);
    ctx.dirty(dirty);
}

/// Sets fields; HSET replies with the number of new fields, HMSET (deprecated) with OK.
///
/// ```text
/// HSET key field value [field value ...]
/// HMSET key field value [field value ...]
/// ```
fn hset(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() % 2 == 1 {
        return Err(CmdError::WrongArity(ctx.cmd.full_name()));
    }
    let key = argv[1];
    let lim = limits(ctx);
    let created = upsert(ctx, key, |h| {
        Ok(h.set_many(argv[2..].chunks_exact(2).map(|p| (p[0], p[1])), lim))
    })?;
    if ctx.cmd.name == "hset" {
        ctx.out.integer(created as i64);
    } else {
        ctx.out.ok();
    }
    touched(ctx, key, "hset", (argv.len() as u64 - 2) / 2);
    Ok(())
}

/// Sets a field only if it does not exist yet; replies 1 if it was set.
///
/// ```text
/// HSETNX key field value
/// ```
fn hsetnx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (key, field, value) = (argv[1], argv[2], argv[3]);
    let lim = limits(ctx);
    let set = upsert(ctx, key, |h| {
        Ok(!h.contains(field) && h.set(field, value, lim))
    })?;
    ctx.out.integer(i64::from(set));
    if set {
        touched(ctx, key, "hset", 1);
    }
    Ok(())
}

/// Returns the value of a field, or nil.
///
/// ```text
/// HGET key field
/// ```
fn hget(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    match read_hash(ctx.ks, ctx.db, argv[1], ctx.now)?.and_then(|h| h.get(argv[2])) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// Returns the values of several fields (nil for each missing one; a missing key is an empty
/// hash).
///
/// ```text
/// HMGET key field [field ...]
/// ```
fn hmget(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let h = read_hash(ctx.ks, ctx.db, argv[1], ctx.now)?;
    ctx.out.array(argv.len() - 2);
    for f in &argv[2..] {
        match h.and_then(|h| h.get(f)) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// What HGETALL / HKEYS / HVALS return.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Both,
    Fields,
    Values,
}

/// Replies with all fields and/or values: a map for both (RESP3), a flat array otherwise.
fn reply_all(ctx: &mut Ctx<'_>, key: &[u8], part: Part) -> CmdResult {
    let h = read_hash(ctx.ks, ctx.db, key, ctx.now)?;
    let len = h.map_or(0, HashValue::len);
    if part == Part::Both {
        ctx.out.map(len);
    } else {
        ctx.out.array(len);
    }
    let out = &mut *ctx.out;
    h.into_iter().for_each(|h| {
        h.for_each(|f, v| {
            if part != Part::Values {
                out.bulk(f);
            }
            if part != Part::Fields {
                out.bulk(v);
            }
        });
    });
    Ok(())
}

/// Returns all fields and values (a map in RESP3).
///
/// ```text
/// HGETALL key
/// ```
fn hgetall(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    reply_all(ctx, argv[1], Part::Both)
}

/// Deletes fields and replies with how many existed. The key goes away with its last field;
/// like Redis, fields after that point are not looked at.
///
/// ```text
/// HDEL key field [field ...]
/// ```
fn hdel(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (key, db) = (argv[1], ctx.db);
    let Some(h) = write_hash(ctx.ks, db, key, ctx.now)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let mut deleted = 0u64;
    for f in &argv[2..] {
        if h.remove(f) {
            deleted += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    let emptied = h.is_empty();
    if emptied {
        ctx.ks.db(db).remove(key);
    }
    if deleted > 0 {
        touched(ctx, key, "hdel", deleted);
        if emptied {
            ctx.notify('g', "del", db, key);
        }
    }
    ctx.out.integer(deleted as i64);
    Ok(())
}

/// Returns the number of fields.
///
/// ```text
/// HLEN key
/// ```
fn hlen(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = read_hash(ctx.ks, ctx.db, argv[1], ctx.now)?.map_or(0, HashValue::len);
    ctx.out.integer(n as i64);
    Ok(())
}

/// Returns the length of a field's value (0 if absent).
///
/// ```text
/// HSTRLEN key field
/// ```
fn hstrlen(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let h = read_hash(ctx.ks, ctx.db, argv[1], ctx.now)?;
    let n = h.and_then(|h| h.get(argv[2])).map_or(0, <[u8]>::len);
    ctx.out.integer(n as i64);
    Ok(())
}

/// Returns all field names.
///
/// ```text
/// HKEYS key
/// ```
fn hkeys(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    reply_all(ctx, argv[1], Part::Fields)
}

/// Returns all values.
///
/// ```text
/// HVALS key
/// ```
fn hvals(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    reply_all(ctx, argv[1], Part::Values)
}

/// Replies 1 if the field exists, else 0.
///
/// ```text
/// HEXISTS key field
/// ```
fn hexists(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let h = read_hash(ctx.ks, ctx.db, argv[1], ctx.now)?;
    let found = h.is_some_and(|h| h.contains(argv[2]));
    ctx.out.integer(i64::from(found));
    Ok(())
}

/// Adds an integer to a field (missing fields count as 0) and replies with the result.
///
/// ```text
/// HINCRBY key field increment
/// ```
fn hincrby(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (key, field) = (argv[1], argv[2]);
    let incr = args::int(argv[3])?;
    let lim = limits(ctx);
    let n = upsert(ctx, key, |h| {
        let cur = match h.get(field) {
            None => 0,
            Some(v) => num::parse_i64(v).ok_or(CmdError::err("hash value is not an integer"))?,
        };
        let n = cur.checked_add(incr).ok_or(CmdError::Overflow)?;
        h.set(field, itoa::Buffer::new().format(n).as_bytes(), lim);
        Ok(n)
    })?;
    ctx.out.integer(n);
    touched(ctx, key, "hincrby", 1);
    Ok(())
}

/// Adds a float to a field in long double precision and replies with the result.
///
/// ```text
/// HINCRBYFLOAT key field increment
/// ```
///
/// Propagated as `HSET key field result`, so float formatting on a replica or during an AOF
/// reload cannot make the copies diverge.
fn hincrbyfloat(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (key, field, incr) = (argv[1], argv[2], argv[3]);
    // The increment is checked on its own first, before the key is even looked up.
    num::incr_by_float(None, incr).map_err(|e| match e {
        IncrFloatError::NanOrInf => CmdError::err("value is NaN or Infinity"),
        _ => CmdError::NotFloat,
    })?;
    let lim = limits(ctx);
    let result = upsert(ctx, key, |h| {
        let r = num::incr_by_float(h.get(field), incr).map_err(|e| match e {
            IncrFloatError::NotFloat => CmdError::err("hash value is not a float"),
            IncrFloatError::BadIncrement => CmdError::NotFloat,
            IncrFloatError::NanOrInf => CmdError::err("increment would produce NaN or Infinity"),
        })?;
        h.set(field, &r, lim);
        Ok(r)
    })?;
    ctx.out.bulk(&result);
    touched(ctx, key, "hincrbyfloat", 1);
    ctx.propagate(&[b"HSET".as_slice(), key, field, &result]);
    Ok(())
}

/// Returns random fields.
///
/// ```text
/// HRANDFIELD key [count [WITHVALUES]]
/// ```
///
/// Without a count: one field or nil. A positive count gives distinct fields (at most the
/// whole hash), a negative one `-count` independent picks. WITHVALUES pairs each field with
/// its value: flat in RESP2, two-element arrays in RESP3.
fn hrandfield(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() == 2 {
        let h = read_hash(ctx.ks, ctx.db, argv[1], ctx.now)?;
        match h.and_then(|h| h.random_pair(&mut ctx.srv.rng)) {
            Some((f, _)) => ctx.out.bulk(&f),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let count = args::int(argv[2])?;
    if count == i64::MIN {
        return Err(CmdError::err(
            "value is out of range, value must between -9223372036854775807 and \
             9223372036854775807",
        ));
    }
    if argv.len() > 4 || (argv.len() == 4 && !is(argv[3], "withvalues")) {
        return Err(CmdError::Syntax);
    }
    let withvalues = argv.len() == 4;
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::err("value is out of range"));
    }
    randfield_count(ctx, argv[1], count, withvalues)
}

/// HRANDFIELD with a count (see [`hrandfield`]).
fn randfield_count(ctx: &mut Ctx<'_>, key: &[u8], count: i64, withvalues: bool) -> CmdResult {
    let Some(h) = read_hash(ctx.ks, ctx.db, key, ctx.now)? else {
        ctx.out.array(0);
        return Ok(());
    };
    let n = count.unsigned_abs();
    let per = if withvalues { 2 } else { 1 };
    if count < 0 && n.saturating_mul(per) > RANDFIELD_MAX_REPLY {
        return Err(CmdError::err("value is out of range"));
    }
    let rng = &mut ctx.srv.rng;
    let pairs: Vec<(Cow<'_, [u8]>, &[u8])> = if count < 0 && h.encoding() == "listpack" {
        // Index a listpack once rather than walking it for every pick.
        let all: Vec<_> = h.iter().collect();
        (0..n).map(|_| all[rng.gen_range(0..all.len())].clone()).collect()
    } else if count < 0 {
        (0..n).filter_map(|_| h.random_pair(rng)).collect()
    } else if n as usize >= h.len() {
        h.iter().collect()
    } else {
        h.random_distinct(rng, n as usize)
    };
    let resp3 = ctx.out.resp == Resp::V3;
    let nested = withvalues && resp3;
    ctx.out.array(if withvalues && !resp3 {
        pairs.len() * 2
    } else {
        pairs.len()
    });
    for (f, v) in pairs {
        if nested {
            ctx.out.array(2);
        }
        ctx.out.bulk(&f);
        if withvalues {
            ctx.out.bulk(v);
        }
    }
    Ok(())
}

/// Parses a SCAN cursor like Redis's `strtoul`: optional sign (a negative number wraps),
/// decimal digits only; an empty string is cursor 0.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.first() {
        None => return Some(0),
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        Some(_) => (false, arg),
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

/// Parses HSCAN's MATCH / COUNT options; returns (count, pattern).
fn parse_scan_opts<'a>(argv: &[&'a [u8]]) -> Result<(usize, Option<&'a [u8]>), CmdError> {
    let (mut count, mut pattern) = (10usize, None);
    let mut i = 3;
    while i < argv.len() {
        let has_value = i + 1 < argv.len();
        if is(argv[i], "count") && has_value {
            let n = args::int(argv[i + 1])?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(argv[i], "match") && has_value {
            let p = argv[i + 1];
            pattern = (p != b"*").then_some(p);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok((count, pattern))
}

/// Incrementally iterates the fields and values of a hash.
///
/// ```text
/// HSCAN key cursor [MATCH pattern] [COUNT count]
/// ```
///
/// A `listpack` hash comes back whole with cursor 0, as in Redis. Options are parsed only
/// once the key is known to be a hash, so a missing key answers an empty scan whatever they say.
fn hscan(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(argv[2]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let Some(h) = read_hash(ctx.ks, ctx.db, argv[1], ctx.now)? else {
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return Ok(());
    };
    let (count, pattern) = parse_scan_opts(argv)?;
    // The table's scan callback cannot lend its entries out, so the batch is copied.
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let next = h.scan(cursor, count, |f, v| {
        if pattern.is_none_or(|p| glob::matches(p, f, false)) {
            batch.push(f.to_vec());
            batch.push(v.to_vec());
        }
    });
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.bulk_array(batch.into_iter());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing_follows_strtoul() {
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"42"), Some(42));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"99999999999999999999"), None);
    }

    #[test]
    fn scan_options_reject_bad_counts_and_types() {
        let argv: Vec<&[u8]> = vec![b"hscan", b"k", b"0", b"COUNT", b"5", b"MATCH", b"a*"];
        assert_eq!(parse_scan_opts(&argv), Ok((5, Some(&b"a*"[..]))));
        let argv: Vec<&[u8]> = vec![b"hscan", b"k", b"0", b"COUNT", b"0"];
        assert_eq!(parse_scan_opts(&argv), Err(CmdError::Syntax));
        let argv: Vec<&[u8]> = vec![b"hscan", b"k", b"0", b"TYPE", b"string"];
        assert_eq!(parse_scan_opts(&argv), Err(CmdError::Syntax));
        let argv: Vec<&[u8]> = vec![b"hscan", b"k", b"0", b"MATCH"];
        assert_eq!(parse_scan_opts(&argv), Err(CmdError::Syntax));
    }

    #[test]
    fn hincrbyfloat_propagates_as_hset_with_the_result() {
        use crate::commands::string::tests::{resp, Harness};
        let mut h = Harness::new();
        let (reply, prop) = h.run(&["HINCRBYFLOAT", "h", "f", "1.5"]);
        assert_eq!(reply, "$3\r\n1.5\r\n");
        assert_eq!(prop, resp(&["HSET", "h", "f", "1.5"]));
        assert_eq!(
            h.run(&["HINCRBYFLOAT", "h", "f", "0.5"]).1,
            resp(&["HSET", "h", "f", "2"])
        );
        assert_eq!(h.encoding("h"), "listpack");
        let (reply, prop) = h.run(&["HINCRBYFLOAT", "h", "f", "inf"]);
        assert_eq!(reply, "-ERR value is NaN or Infinity\r\n");
        assert_eq!(prop, "");
    }

    #[test]
    fn writes_that_change_nothing_propagate_nothing() {
        use crate::commands::string::tests::{resp, Harness};
        let mut h = Harness::new();
        assert_eq!(
            h.run(&["HSET", "h", "a", "1"]).1,
            resp(&["HSET", "h", "a", "1"])
        );
        assert_eq!(
            h.run(&["HSETNX", "h", "a", "2"]),
            (":0\r\n".into(), String::new())
        );
        assert_eq!(
            h.run(&["HDEL", "h", "zz"]),
            (":0\r\n".into(), String::new())
        );
        assert_eq!(
            h.run(&["HDEL", "h", "a", "b"]).1,
            resp(&["HDEL", "h", "a", "b"])
        );
        assert_eq!(h.encoding("h"), "none");
        let (reply, prop) = h.run(&["HINCRBY", "n", "f", "x"]);
        assert_eq!(reply, "-ERR value is not an integer or out of range\r\n");
        assert_eq!(prop, "");
        assert_eq!(h.encoding("n"), "none");
    }
}
