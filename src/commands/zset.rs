//! Sorted set commands: ZADD, ZRANGE, the blocking pops and friends (Redis `t_zset.c`).
//!
//! Values are [`ZSetValue`]s. Every range query (by rank, score or lex) is turned into a window
//! of ascending ranks (see `keyspace::zset`), then either replied or stored. Writes propagate
//! verbatim, except the pops: ZMPOP / BZMPOP replicate as `ZPOPMIN|ZPOPMAX key count` and
//! BZPOPMIN / BZPOPMAX as `ZPOPMIN|ZPOPMAX key`. Commands that create a sorted set signal the
//! key ready, so clients blocked on it (see `server::blocking`) re-run their command once this
//! one completes; a blocking pop that finds nothing blocks the client and replies later.

use std::collections::HashMap;

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::zset::{cmp_entry, Limits};
use crate::keyspace::{Keyspace, SetValue, Value, ZSetValue};
use crate::protocol::{ReplyBuf, Resp};
use crate::util::{glob, num};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("zadd", -4, WRITE | DENYOOM | FAST, 1, 1, 1, zadd),
    CommandSpec::new("zincrby", 4, WRITE | DENYOOM | FAST, 1, 1, 1, zincrby),
    CommandSpec::new("zrem", -3, WRITE | FAST, 1, 1, 1, zrem),
    CommandSpec::new("zcard", 2, READONLY | FAST, 1, 1, 1, zcard),
    CommandSpec::new("zcount", 4, READONLY | FAST, 1, 1, 1, zcount),
    CommandSpec::new("zlexcount", 4, READONLY | FAST, 1, 1, 1, zlexcount),
    CommandSpec::new("zscore", 3, READONLY | FAST, 1, 1, 1, zscore),
    CommandSpec::new("zmscore", -3, READONLY | FAST, 1, 1, 1, zmscore),
    CommandSpec::new("zrank", 3, READONLY | FAST, 1, 1, 1, zrank),
    CommandSpec::new("zrevrank", 3, READONLY | FAST, 1, 1, 1, zrevrank),
    CommandSpec::new("zrange", -4, READONLY, 1, 1, 1, zrange),
    CommandSpec::new("zrangestore", -5, WRITE | DENYOOM, 1, 2, 1, zrangestore),
    CommandSpec::new("zrevrange", -4, READONLY, 1, 1, 1, zrevrange),
    CommandSpec::new("zrangebyscore", -4, READONLY, 1, 1, 1, zrangebyscore),
    CommandSpec::new("zrevrangebyscore", -4, READONLY, 1, 1, 1, zrevrangebyscore),
    CommandSpec::new("zrangebylex", -4, READONLY, 1, 1, 1, zrangebylex),
    CommandSpec::new("zrevrangebylex", -4, READONLY, 1, 1, 1, zrevrangebylex),
    CommandSpec::new("zremrangebyrank", 4, WRITE, 1, 1, 1, zremrangebyrank),
    CommandSpec::new("zremrangebyscore", 4, WRITE, 1, 1, 1, zremrangebyscore),
    CommandSpec::new("zremrangebylex", 4, WRITE, 1, 1, 1, zremrangebylex),
    CommandSpec::new("zpopmin", -2, WRITE | FAST, 1, 1, 1, zpopmin),
    CommandSpec::new("zpopmax", -2, WRITE | FAST, 1, 1, 1, zpopmax),
    CommandSpec::new("zmpop", -4, WRITE | MOVABLE_KEYS, 0, 0, 0, zmpop), // ZPOPMIN/MAX k n
    // BZPOPMIN / BZPOPMAX propagate as ZPOPMIN / ZPOPMAX key.
    CommandSpec::new("bzpopmin", -3, WRITE | NOSCRIPT | FAST | BLOCKING, 1, -2, 1, bzpopmin),
    CommandSpec::new("bzpopmax", -3, WRITE | NOSCRIPT | FAST | BLOCKING, 1, -2, 1, bzpopmax),
    CommandSpec::new("bzmpop", -5, WRITE | BLOCKING | MOVABLE_KEYS, 0, 0, 0, bzmpop), // k n
    CommandSpec::new("zrandmember", -2, READONLY, 1, 1, 1, zrandmember),
    CommandSpec::new("zunion", -3, READONLY | MOVABLE_KEYS, 0, 0, 0, zunion),
    CommandSpec::new("zinter", -3, READONLY | MOVABLE_KEYS, 0, 0, 0, zinter),
    CommandSpec::new("zdiff", -3, READONLY | MOVABLE_KEYS, 0, 0, 0, zdiff),
    CommandSpec::new(
        "zintercard",
        -3,
        READONLY | MOVABLE_KEYS,
        0,
        0,
        0,
        zintercard,
    ),
    CommandSpec::new(
        "zunionstore",
        -4,
        WRITE | DENYOOM | MOVABLE_KEYS,
        1,
        1,
        1,
        zunionstore,
    ),
    CommandSpec::new(
        "zinterstore",
        -4,
        WRITE | DENYOOM | MOVABLE_KEYS,
        1,
        1,
        1,
        zinterstore,
    ),
    CommandSpec::new(
        "zdiffstore",
        -4,
        WRITE | DENYOOM | MOVABLE_KEYS,
        1,
        1,
        1,
        zdiffstore,
    ),
    CommandSpec::new("zscan", -3, READONLY, 1, 1, 1, zscan),
];

const NAN_ERR: &str = "ERR resulting score is not a number (NaN)";
const SCORE_RANGE_ERR: &str = "ERR min or max is not a float";
const LEX_RANGE_ERR: &str = "ERR min or max not valid string range item";

/// The encoding thresholds from the configuration.
fn limits(ctx: &Ctx<'_>) -> Limits {
    let c = &ctx.srv.config;
    Limits {
        max_entries: usize::try_from(c.zset_max_listpack_entries).unwrap_or(0),
        max_value: usize::try_from(c.zset_max_listpack_value).unwrap_or(0),
    }
}

/// A zset for reading (counting a hit or miss); WRONGTYPE for another type.
pub(crate) fn read_z<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a ZSetValue>, CmdError> {
    match ks.lookup_read(db, key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// A zset for writing; WRONGTYPE for another type.
fn write_z<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut ZSetValue>, CmdError> {
    match ks.lookup_write(db, key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// After `removed` members left `key`: signals, notifies `event`, counts the changes, and
/// deletes the key (with a `del` event) if it is now empty.
fn after_removal(ctx: &mut Ctx<'_>, key: &[u8], event: &str, removed: usize) {
    if removed == 0 {
        return;
    }
    let db = ctx.db;
    let empty = matches!(ctx.ks.db(db).peek(key), Some(e) if matches!(&e.value,
        Value::ZSet(z) if z.is_empty()));
    ctx.signal_modified_key(db, key);
    ctx.notify('z', event, db, key);
    if empty {
        ctx.ks.db(db).remove(key);
        ctx.notify('g', "del", db, key);
    }
    ctx.dirty(removed as u64);
}

/// Writes `n` members with optional scores: a flat array in RESP2, pairs in RESP3.
fn reply_header(out: &mut ReplyBuf, n: usize, withscores: bool) {
    if withscores && out.resp == Resp::V2 {
        out.array(2 * n);
    } else {
        out.array(n);
    }
}

fn reply_item(out: &mut ReplyBuf, m: &[u8], s: f64, withscores: bool) {
    if withscores && out.resp == Resp::V3 {
        out.array(2);
    }
    out.bulk(m);
    if withscores {
        out.double(s);
    }
}

// ---------------------------------------------------------------------------------------------
// ZADD / ZINCRBY

#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// Parses ZADD's flags; returns them with the index of the first score.
fn parse_add_flags(argv: &[&[u8]], incr: bool) -> Result<(AddFlags, usize), CmdError> {
    let mut f = AddFlags {
        incr,
        ..AddFlags::default()
    };
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i];
        match () {
            _ if is(a, "nx") => f.nx = true,
            _ if is(a, "xx") => f.xx = true,
            _ if is(a, "ch") => f.ch = true,
            _ if is(a, "incr") => f.incr = true,
            _ if is(a, "gt") => f.gt = true,
            _ if is(a, "lt") => f.lt = true,
            _ => break,
        }
        i += 1;
    }
    let pairs = argv.len() - i;
    if pairs == 0 || pairs % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CmdError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (f.gt && f.nx) || (f.lt && f.nx) || (f.gt && f.lt) {
        return Err(CmdError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && pairs > 2 {
        return Err(CmdError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    Ok((f, i))
}

/// What adding one member did.
enum AddOutcome {
    Added(f64),
    Updated(f64),
    /// Present and unchanged (same score), still "processed" for INCR's reply.
    Same(f64),
    Nop,
}

/// Applies one score/member pair with Redis's `zsetAdd` rules (one member lookup).
fn add_one(
    z: &mut ZSetValue,
    member: &[u8],
    score: f64,
    f: &AddFlags,
    lim: Limits,
) -> Result<AddOutcome, CmdError> {
    let mut out = Ok(AddOutcome::Nop);
    z.upsert(member, lim, |cur| {
        out = decide_add(cur, score, f);
        match out {
            Ok(AddOutcome::Added(s) | AddOutcome::Updated(s)) => Some(s),
            _ => None,
        }
    });
    out
}

/// What ZADD does to a member whose score is `cur` (`None`: absent) given `score`.
fn decide_add(cur: Option<f64>, score: f64, f: &AddFlags) -> Result<AddOutcome, CmdError> {
    let Some(cur) = cur else {
        return Ok(if f.xx {
            AddOutcome::Nop
        } else {
            AddOutcome::Added(score)
        });
    };
    if f.nx {
        return Ok(AddOutcome::Nop);
    }
    let new = if f.incr { cur + score } else { score };
    if new.is_nan() {
        return Err(CmdError::raw(NAN_ERR));
    }
    if (f.lt && new >= cur) || (f.gt && new <= cur) {
        return Ok(AddOutcome::Nop);
    }
    if new == cur {
        return Ok(AddOutcome::Same(new));
    }
    Ok(AddOutcome::Updated(new))
}

/// Adds members or updates their scores.
///
/// ```text
/// ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]
/// ```
///
/// All scores are parsed before anything changes, so a bad score leaves the set untouched.
fn zadd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, argv, false)
}

/// Increments the score of `member` (creating it at `increment`).
///
/// ```text
/// ZINCRBY key increment member
/// ```
fn zincrby(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    zadd_generic(ctx, argv, true)
}

fn zadd_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], incr: bool) -> CmdResult {
    let key = argv[1];
    let (f, first) = parse_add_flags(argv, incr)?;
    let pairs: Vec<(f64, &[u8])> = argv[first..]
        .chunks(2)
        .map(|p| args::float(p[0]).map(|s| (s, p[1])))
        .collect::<Result<_, _>>()?;
    let (db, now, lim) = (ctx.db, ctx.now, limits(ctx));
    // One key lookup when the set exists; a new one is created, then looked up again.
    let z = match write_z(ctx.ks, db, key, now)? {
        Some(z) => z,
        None if f.xx => return reply_add(ctx, &f, 0, 0, None),
        None => {
            let z = ZSetValue::new_for(pairs[0].1.len(), lim);
            ctx.ks.db(db).set(key, Value::ZSet(z));
            ctx.notify('n', "new", db, key);
            match write_z(ctx.ks, db, key, now)? {
                Some(z) => z,
                None => return Ok(()),
            }
        }
    };
    let (mut added, mut updated, mut last) = (0, 0, None);
    let mut failure = None;
    for (score, member) in &pairs {
        match add_one(z, member, *score, &f, lim) {
            Ok(AddOutcome::Added(s)) => (added, last) = (added + 1, Some(s)),
            Ok(AddOutcome::Updated(s)) => (updated, last) = (updated + 1, Some(s)),
            Ok(AddOutcome::Same(s)) => last = Some(s),
            Ok(AddOutcome::Nop) => {}
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if added + updated > 0 {
        ctx.dirty((added + updated) as u64);
        ctx.signal_modified_key(db, key);
        ctx.notify('z', if f.incr { "zincr" } else { "zadd" }, db, key);
        ctx.srv.signal_key_ready(db, key);
    }
    match failure {
        Some(e) => Err(e),
        None => reply_add(ctx, &f, added, updated, last),
    }
}

fn reply_add(
    ctx: &mut Ctx<'_>,
    f: &AddFlags,
    added: i64,
    upd: i64,
    last: Option<f64>,
) -> CmdResult {
    if f.incr {
        match last {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    } else {
        ctx.out.integer(if f.ch { added + upd } else { added });
    }
    Ok(())
}

/// Removes members.
///
/// ```text
/// ZREM key member [member ...]
/// ```
fn zrem(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let (db, now) = (ctx.db, ctx.now);
    let mut n = 0;
    if let Some(z) = write_z(ctx.ks, db, key, now)? {
        for m in &argv[2..] {
            if z.remove(m).is_some() {
                n += 1;
            }
            if z.is_empty() {
                break;
            }
        }
    }
    after_removal(ctx, key, "zrem", n);
    ctx.out.integer(n as i64);
    Ok(())
}

/// Number of members.
///
/// ```text
/// ZCARD key
/// ```
fn zcard(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = read_z(ctx.ks, ctx.db, argv[1], ctx.now)?.map_or(0, ZSetValue::len);
    ctx.out.integer(n as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Ranges

/// A score bound: value and exclusiveness.
#[derive(Clone, Copy)]
struct ScoreBound(f64, bool);

fn parse_score_bound(a: &[u8]) -> Option<ScoreBound> {
    match a.split_first() {
        // Like strtod on an empty string, a lone "(" reads as an exclusive 0.
        Some((b'(', [])) => Some(ScoreBound(0.0, true)),
        Some((b'(', rest)) => num::parse_f64(rest).map(|v| ScoreBound(v, true)),
        _ => num::parse_f64(a).map(|v| ScoreBound(v, false)),
    }
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<(ScoreBound, ScoreBound), CmdError> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(CmdError::raw(SCORE_RANGE_ERR)),
    }
}

/// Ascending rank window `[lo, hi)` of the members within a score range.
fn score_window(z: &ZSetValue, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
    let lo = z.count_before(|s, _| if min.1 { s <= min.0 } else { s < min.0 });
    let hi = z.count_before(|s, _| if max.1 { s < max.0 } else { s <= max.0 });
    (lo, hi.max(lo))
}

/// A lex bound: `-`, `+`, or a string, inclusive (`[`) or exclusive (`(`).
#[derive(Clone, Copy)]
enum LexBound<'a> {
    Min,
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

fn parse_lex_bound(a: &[u8]) -> Option<LexBound<'_>> {
    match a.split_first()? {
        (b'+', []) => Some(LexBound::Max),
        (b'-', []) => Some(LexBound::Min),
        (b'[', rest) => Some(LexBound::Incl(rest)),
        (b'(', rest) => Some(LexBound::Excl(rest)),
        _ => None,
    }
}

fn parse_lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> Result<[LexBound<'a>; 2], CmdError> {
    match (parse_lex_bound(min), parse_lex_bound(max)) {
        (Some(a), Some(b)) => Ok([a, b]),
        _ => Err(CmdError::raw(LEX_RANGE_ERR)),
    }
}

/// Members strictly before the bound (`upper` = the bound ends a range rather than starts it).
fn lex_rank(z: &ZSetValue, b: LexBound<'_>, upper: bool) -> usize {
    match b {
        LexBound::Min => 0,
        LexBound::Max => z.len(),
        LexBound::Incl(v) if upper => z.count_before(|_, m| m <= v),
        LexBound::Incl(v) => z.count_before(|_, m| m < v),
        LexBound::Excl(v) if upper => z.count_before(|_, m| m < v),
        LexBound::Excl(v) => z.count_before(|_, m| m <= v),
    }
}

fn lex_window(z: &ZSetValue, r: [LexBound<'_>; 2]) -> (usize, usize) {
    let lo = lex_rank(z, r[0], false);
    let hi = lex_rank(z, r[1], true);
    (lo, hi.max(lo))
}

/// Counts members with a score in range.
///
/// ```text
/// ZCOUNT key min max
/// ```
fn zcount(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (min, max) = parse_score_range(argv[2], argv[3])?;
    let n = read_z(ctx.ks, ctx.db, argv[1], ctx.now)?.map_or(0, |z| {
        let (lo, hi) = score_window(z, min, max);
        hi - lo
    });
    ctx.out.integer(n as i64);
    Ok(())
}

/// Counts members in a lex range (meaningful when all scores are equal).
///
/// ```text
/// ZLEXCOUNT key min max
/// ```
fn zlexcount(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let r = parse_lex_range(argv[2], argv[3])?;
    let n = read_z(ctx.ks, ctx.db, argv[1], ctx.now)?.map_or(0, |z| {
        let (lo, hi) = lex_window(z, r);
        hi - lo
    });
    ctx.out.integer(n as i64);
    Ok(())
}

/// Score of a member, or nil.
///
/// ```text
/// ZSCORE key member
/// ```
fn zscore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    match read_z(ctx.ks, ctx.db, argv[1], ctx.now)?.and_then(|z| z.score(argv[2])) {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    }
    Ok(())
}

/// Scores of several members (nil for each one missing).
///
/// ```text
/// ZMSCORE key member [member ...]
/// ```
fn zmscore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let z = read_z(ctx.ks, ctx.db, argv[1], ctx.now)?;
    ctx.out.array(argv.len() - 2);
    for m in &argv[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// 0-based rank of a member by ascending score, or nil.
///
/// ```text
/// ZRANK key member
/// ```
fn zrank(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    rank_generic(ctx, argv, false)
}

/// 0-based rank of a member by descending score, or nil.
///
/// ```text
/// ZREVRANK key member
/// ```
fn zrevrank(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    rank_generic(ctx, argv, true)
}

fn rank_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], rev: bool) -> CmdResult {
    let z = read_z(ctx.ks, ctx.db, argv[1], ctx.now)?;
    match z.and_then(|z| z.rank(argv[2]).map(|(r, _)| (r, z.len()))) {
        Some((r, len)) => ctx.out.integer(if rev { len - 1 - r } else { r } as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum RangeKind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Parsed ZRANGE-family request.
struct RangeReq<'a> {
    kind: RangeKind,
    rev: bool,
    withscores: bool,
    offset: i64,
    limit: i64,
    min: &'a [u8],
    max: &'a [u8],
}

/// Parses the options after `key min max` (starting at `at`) like `zrangeGenericCommand`.
fn parse_range_req<'a>(
    argv: &[&'a [u8]],
    at: usize,
    store: bool,
    kind: RangeKind,
    rev: Option<bool>,
) -> Result<RangeReq<'a>, CmdError> {
    let mut r = RangeReq {
        kind,
        rev: rev.unwrap_or(false),
        withscores: false,
        offset: 0,
        limit: -1,
        min: argv[at],
        max: argv[at + 1],
    };
    let mut j = at + 2;
    while j < argv.len() {
        let a = argv[j];
        let left = argv.len() - j - 1;
        if !store && is(a, "withscores") {
            r.withscores = true;
        } else if is(a, "limit") && left >= 2 {
            r.offset = args::int(argv[j + 1])?;
            r.limit = args::int(argv[j + 2])?;
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            r.rev = true;
        } else if r.kind == RangeKind::Auto && is(a, "bylex") {
            r.kind = RangeKind::Lex;
        } else if r.kind == RangeKind::Auto && is(a, "byscore") {
            r.kind = RangeKind::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if r.kind == RangeKind::Auto {
        r.kind = RangeKind::Rank;
    }
    if r.limit != -1 && r.kind == RangeKind::Rank {
        return Err(CmdError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if r.withscores && r.kind == RangeKind::Lex {
        return Err(CmdError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    if r.rev && r.kind != RangeKind::Rank {
        std::mem::swap(&mut r.min, &mut r.max);
    }
    Ok(r)
}

/// A range request whose bounds are parsed.
enum Bounds<'a> {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex([LexBound<'a>; 2]),
}

fn parse_bounds<'a>(r: &RangeReq<'a>) -> Result<Bounds<'a>, CmdError> {
    Ok(match r.kind {
        RangeKind::Score => {
            let (a, b) = parse_score_range(r.min, r.max)?;
            Bounds::Score(a, b)
        }
        RangeKind::Lex => Bounds::Lex(parse_lex_range(r.min, r.max)?),
        _ => Bounds::Rank(args::int(r.min)?, args::int(r.max)?),
    })
}

/// Ascending window for ranks `start..=end` counted from the low (or, `rev`, high) end.
fn rank_window(len: usize, start: i64, end: i64, rev: bool) -> (usize, usize) {
    let llen = len as i64;
    let mut start = if start < 0 {
        llen.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        llen.saturating_add(end)
    } else {
        end
    };
    start = start.max(0);
    if start > end || start >= llen {
        return (0, 0);
    }
    end = end.min(llen - 1);
    let (s, e) = (start as usize, end as usize);
    if rev {
        (len - 1 - e, len - s)
    } else {
        (s, e + 1)
    }
}

/// The final ascending window `[a, b)` after LIMIT, walked descending when `rev`.
fn window(z: &ZSetValue, b: &Bounds<'_>, rev: bool, offset: i64, limit: i64) -> (usize, usize) {
    let (lo, hi) = match b {
        Bounds::Rank(s, e) => return rank_window(z.len(), *s, *e, rev),
        Bounds::Score(min, max) => score_window(z, *min, *max),
        Bounds::Lex(r) => lex_window(z, *r),
    };
    if offset < 0 {
        return (0, 0);
    }
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let avail = (hi - lo).saturating_sub(offset);
    let n = if limit < 0 {
        avail
    } else {
        avail.min(usize::try_from(limit).unwrap_or(0))
    };
    if rev {
        (hi - offset.min(hi - lo) - n, hi - offset.min(hi - lo))
    } else {
        (lo + offset.min(hi - lo), lo + offset.min(hi - lo) + n)
    }
}

/// Shared body of the ZRANGE family: replies with the members in range.
fn range_reply(ctx: &mut Ctx<'_>, argv: &[&[u8]], kind: RangeKind, rev: Option<bool>) -> CmdResult {
    let r = parse_range_req(argv, 2, false, kind, rev)?;
    let b = parse_bounds(&r)?;
    let Some(z) = read_z(ctx.ks, ctx.db, argv[1], ctx.now)? else {
        ctx.out.array(0);
        return Ok(());
    };
    let (lo, hi) = window(z, &b, r.rev, r.offset, r.limit);
    let out = &mut *ctx.out;
    reply_header(out, hi - lo, r.withscores);
    z.for_range(lo, hi, r.rev, |m, s| reply_item(out, m, s, r.withscores));
    Ok(())
}

/// Members in a range of ranks, scores or lex values.
///
/// ```text
/// ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
/// ```
fn zrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    range_reply(ctx, argv, RangeKind::Auto, None)
}

/// Members in a range of ranks, highest score first.
///
/// ```text
/// ZREVRANGE key start stop [WITHSCORES]
/// ```
fn zrevrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    range_reply(ctx, argv, RangeKind::Rank, Some(true))
}

/// Members with a score in range, lowest first.
///
/// ```text
/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
/// ```
fn zrangebyscore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    range_reply(ctx, argv, RangeKind::Score, Some(false))
}

/// Members with a score in range, highest first.
///
/// ```text
/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
/// ```
fn zrevrangebyscore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    range_reply(ctx, argv, RangeKind::Score, Some(true))
}

/// Members in a lex range.
///
/// ```text
/// ZRANGEBYLEX key min max [LIMIT offset count]
/// ```
fn zrangebylex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    range_reply(ctx, argv, RangeKind::Lex, Some(false))
}

/// Members in a lex range, in reverse order.
///
/// ```text
/// ZREVRANGEBYLEX key max min [LIMIT offset count]
/// ```
fn zrevrangebylex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    range_reply(ctx, argv, RangeKind::Lex, Some(true))
}

/// Stores a range of `src` into `dst` and replies with its size.
///
/// ```text
/// ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]
/// ```
fn zrangestore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (dst, src) = (argv[1], argv[2]);
    let r = parse_range_req(argv, 3, true, RangeKind::Auto, None)?;
    let b = parse_bounds(&r)?;
    let lim = limits(ctx);
    let mut items = Vec::new();
    if let Some(z) = read_z(ctx.ks, ctx.db, src, ctx.now)? {
        let (lo, hi) = window(z, &b, r.rev, r.offset, r.limit);
        z.for_range(lo, hi, r.rev, |m, s| items.push((m.to_vec(), s)));
    }
    let mut z = ZSetValue::for_len(items.len(), lim);
    for (m, s) in &items {
        z.insert_new(m, *s, lim);
    }
    store_result(ctx, dst, z, "zrangestore")
}

/// Writes a computed set to `dst` (replacing it, TTL cleared), or deletes `dst` when the
/// result is empty; replies with the size.
fn store_result(ctx: &mut Ctx<'_>, dst: &[u8], z: ZSetValue, event: &str) -> CmdResult {
    let db = ctx.db;
    let n = z.len();
    if n > 0 {
        let existed = ctx.ks.lookup_write(db, dst, ctx.now).is_some();
        ctx.ks.db(db).set(dst, Value::ZSet(z));
        ctx.signal_modified_key(db, dst);
        if !existed {
            ctx.notify('n', "new", db, dst);
        }
        ctx.notify('z', event, db, dst);
        ctx.srv.signal_key_ready(db, dst);
        ctx.dirty(1);
    } else if ctx.ks.lookup_write(db, dst, ctx.now).is_some() {
        ctx.ks.db(db).remove(dst);
        ctx.signal_modified_key(db, dst);
        ctx.notify('g', "del", db, dst);
        ctx.dirty(1);
    }
    ctx.out.integer(n as i64);
    Ok(())
}

/// Removes the members in a range of ranks.
///
/// ```text
/// ZREMRANGEBYRANK key start stop
/// ```
fn zremrangebyrank(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let b = Bounds::Rank(args::int(argv[2])?, args::int(argv[3])?);
    remrange(ctx, argv[1], &b, "zremrangebyrank")
}

/// Removes the members with a score in range.
///
/// ```text
/// ZREMRANGEBYSCORE key min max
/// ```
fn zremrangebyscore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (min, max) = parse_score_range(argv[2], argv[3])?;
    remrange(ctx, argv[1], &Bounds::Score(min, max), "zremrangebyscore")
}

/// Removes the members in a lex range.
///
/// ```text
/// ZREMRANGEBYLEX key min max
/// ```
fn zremrangebylex(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let r = parse_lex_range(argv[2], argv[3])?;
    remrange(ctx, argv[1], &Bounds::Lex(r), "zremrangebylex")
}

fn remrange(ctx: &mut Ctx<'_>, key: &[u8], b: &Bounds<'_>, event: &str) -> CmdResult {
    let mut n = 0;
    if let Some(z) = write_z(ctx.ks, ctx.db, key, ctx.now)? {
        let (lo, hi) = window(z, b, false, 0, -1);
        n = z.remove_range(lo, hi);
    }
    after_removal(ctx, key, event, n);
    ctx.out.integer(n as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pops and random members

/// Pops up to `count` lowest (or highest, `max`) members of the zset at `key`.
fn pop(ctx: &mut Ctx<'_>, key: &[u8], count: usize, max: bool) -> Vec<(Vec<u8>, f64)> {
    let mut items = Vec::new();
    let Ok(Some(z)) = write_z(ctx.ks, ctx.db, key, ctx.now) else {
        return items;
    };
    let len = z.len();
    let n = count.min(len);
    let (lo, hi) = if max { (len - n, len) } else { (0, n) };
    z.for_range(lo, hi, max, |m, s| items.push((m.to_vec(), s)));
    z.remove_range(lo, hi);
    let event = if max { "zpopmax" } else { "zpopmin" };
    after_removal(ctx, key, event, items.len());
    items
}

/// Removes and returns the lowest-scored members.
///
/// ```text
/// ZPOPMIN key [count]
/// ```
fn zpopmin(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    zpop_generic(ctx, argv, false)
}

/// Removes and returns the highest-scored members.
///
/// ```text
/// ZPOPMAX key [count]
/// ```
fn zpopmax(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    zpop_generic(ctx, argv, true)
}

fn zpop_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], max: bool) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match argv.get(2) {
        Some(a) => Some(match args::int(a) {
            Ok(n) if n >= 0 => n,
            _ => return Err(CmdError::err("value is out of range, must be positive")),
        }),
        None => None,
    };
    if read_z(ctx.ks, ctx.db, argv[1], ctx.now)?.is_none() || count == Some(0) {
        ctx.out.array(0);
        return Ok(());
    }
    let n = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let items = pop(ctx, argv[1], n, max);
    // RESP3 nests the pairs only when a count was given.
    let nested = ctx.out.resp == Resp::V3 && count.is_some();
    let out = &mut *ctx.out;
    out.array(if nested { items.len() } else { items.len() * 2 });
    for (m, s) in &items {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
    Ok(())
}

/// Parsed `numkeys key [key ...] MIN|MAX [COUNT count]` of ZMPOP / BZMPOP.
struct MpopArgs<'a> {
    keys: &'a [&'a [u8]],
    max: bool,
    count: usize,
}

/// Parses the ZMPOP arguments starting with `numkeys` at `at`.
fn parse_mpop<'a>(argv: &'a [&'a [u8]], at: usize) -> Result<MpopArgs<'a>, CmdError> {
    const NUMKEYS: &str = "ERR numkeys should be greater than 0";
    let numkeys = args::int(argv[at]).map_err(|_| CmdError::raw(NUMKEYS))?;
    if numkeys < 1 {
        return Err(CmdError::raw(NUMKEYS));
    }
    let where_at = usize::try_from(numkeys).map_or(usize::MAX, |n| n.saturating_add(at + 1));
    let Some(dir) = argv.get(where_at) else {
        return Err(CmdError::Syntax);
    };
    let max = match () {
        _ if is(dir, "min") => false,
        _ if is(dir, "max") => true,
        _ => return Err(CmdError::Syntax),
    };
    let count = parse_mpop_count(&argv[where_at + 1..])?;
    Ok(MpopArgs { keys: &argv[at + 1..where_at], max, count })
}

/// The first of `keys` holding a non-empty sorted set (WRONGTYPE if a key before it holds
/// another type).
fn first_nonempty<'k>(
    ctx: &mut Ctx<'_>,
    keys: &[&'k [u8]],
) -> Result<Option<&'k [u8]>, CmdError> {
    // Re-run after a wake-up, a key now holding another type is skipped: Redis serves a
    // blocked client only from a sorted set and keeps it blocked otherwise.
    let rerun = ctx.srv.blocking.is_blocked(ctx.client.id);
    for &key in keys {
        match write_z(ctx.ks, ctx.db, key, ctx.now) {
            Ok(Some(z)) if !z.is_empty() => return Ok(Some(key)),
            Err(CmdError::WrongType) if rerun => {}
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    Ok(None)
}

/// Pops up to `count` members of `key` replying `[key, [[member, score] ...]]`, and
/// propagates `ZPOPMIN|ZPOPMAX key n` with the number actually popped.
fn mpop_serve(ctx: &mut Ctx<'_>, key: &[u8], count: usize, max: bool) -> CmdResult {
    let items = pop(ctx, key, count, max);
    let n = itoa::Buffer::new().format(items.len()).to_string();
    let verb: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
    ctx.propagate(&[verb, key, n.as_bytes()]);
    let out = &mut *ctx.out;
    out.array(2);
    out.bulk(key);
    out.array(items.len());
    for (m, s) in &items {
        out.array(2);
        out.bulk(m);
        out.double(*s);
    }
    Ok(())
}

/// Pops from the first non-empty sorted set among the keys.
///
/// ```text
/// ZMPOP numkeys key [key ...] MIN | MAX [COUNT count]
/// ```
///
/// Replicated as `ZPOPMIN|ZPOPMAX key n` with the number actually popped.
fn zmpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let a = parse_mpop(argv, 1)?;
    match first_nonempty(ctx, a.keys)? {
        Some(key) => mpop_serve(ctx, key, a.count, a.max),
        None => {
            ctx.out.null_array();
            Ok(())
        }
    }
}

/// Shared body of BZPOPMIN / BZPOPMAX: replies `[key, member, score]`.
fn bzpop_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], max: bool) -> CmdResult {
    let ms = args::timeout_ms(argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    let Some(key) = first_nonempty(ctx, keys)? else {
        return super::list::block(ctx, keys, ms);
    };
    let items = pop(ctx, key, 1, max);
    let verb: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
    ctx.propagate(&[verb, key]);
    let out = &mut *ctx.out;
    out.array(1 + items.len() * 2);
    out.bulk(key);
    for (m, s) in &items {
        out.bulk(m);
        out.double(*s);
    }
    Ok(())
}

/// Pops the lowest-scored member of the first non-empty sorted set, blocking until one
/// exists or the timeout (seconds, fractional, 0 = forever) expires.
///
/// ```text
/// BZPOPMIN key [key ...] timeout
/// ```
fn bzpopmin(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    bzpop_generic(ctx, argv, false)
}

/// Like BZPOPMIN, for the highest-scored member.
///
/// ```text
/// BZPOPMAX key [key ...] timeout
/// ```
fn bzpopmax(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    bzpop_generic(ctx, argv, true)
}

/// Blocking ZMPOP. The arguments are checked before the timeout, as Redis does.
///
/// ```text
/// BZMPOP timeout numkeys key [key ...] MIN | MAX [COUNT count]
/// ```
fn bzmpop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let a = parse_mpop(argv, 2)?;
    let ms = args::timeout_ms(argv[1])?;
    match first_nonempty(ctx, a.keys)? {
        Some(key) => mpop_serve(ctx, key, a.count, a.max),
        None => super::list::block(ctx, a.keys, ms),
    }
}

fn parse_mpop_count(opts: &[&[u8]]) -> Result<usize, CmdError> {
    const COUNT: &str = "ERR count should be greater than 0";
    let mut count = None;
    let mut i = 0;
    while i < opts.len() {
        if count.is_none() && is(opts[i], "count") && i + 1 < opts.len() {
            let c = args::int(opts[i + 1]).map_err(|_| CmdError::raw(COUNT))?;
            if c < 1 {
                return Err(CmdError::raw(COUNT));
            }
            count = Some(usize::try_from(c).unwrap_or(usize::MAX));
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(count.unwrap_or(1))
}

/// Random members.
///
/// ```text
/// ZRANDMEMBER key [count [WITHSCORES]]
/// ```
///
/// A positive count returns distinct members, a negative one may repeat them.
fn zrandmember(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() == 2 {
        let pick = match read_z(ctx.ks, ctx.db, argv[1], ctx.now)? {
            Some(z) => z.random(&mut ctx.srv.rng),
            None => None,
        };
        match pick {
            Some((m, _)) => ctx.out.bulk(&m),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let l = args::int(argv[2])?;
    if l == i64::MIN {
        return Err(CmdError::raw(concat!(
            "ERR value is out of range, value must between ",
            "-9223372036854775807 and 9223372036854775807"
        )));
    }
    if argv.len() > 4 || (argv.len() == 4 && !is(argv[3], "withscores")) {
        return Err(CmdError::Syntax);
    }
    let withscores = argv.len() == 4;
    if withscores && (l < -(i64::MAX / 2) || l > i64::MAX / 2) {
        return Err(CmdError::err("value is out of range"));
    }
    // A reply can't hold more entries than a bulk string may have bytes: bounds the buffer.
    let cap = ctx.srv.config.proto_max_bulk_len.max(0).unsigned_abs();
    if l.unsigned_abs() > cap {
        return Err(CmdError::err("value is out of range"));
    }
    randmember_count(ctx, argv[1], l, withscores)
}

fn randmember_count(ctx: &mut Ctx<'_>, key: &[u8], l: i64, withscores: bool) -> CmdResult {
    let Some(z) = read_z(ctx.ks, ctx.db, key, ctx.now)? else {
        ctx.out.array(0);
        return Ok(());
    };
    let count = usize::try_from(l.unsigned_abs()).unwrap_or(usize::MAX);
    let rng = &mut ctx.srv.rng;
    let out = &mut *ctx.out;
    if count == 0 || z.is_empty() {
        out.array(0);
        return Ok(());
    }
    if l < 0 {
        reply_header(out, count, withscores);
        for _ in 0..count {
            if let Some((m, s)) = z.random(rng) {
                reply_item(out, &m, s, withscores);
            }
        }
        return Ok(());
    }
    let len = z.len();
    if count >= len {
        // Redis walks the set from its tail here.
        reply_header(out, len, withscores);
        z.for_range(0, len, true, |m, s| reply_item(out, m, s, withscores));
        return Ok(());
    }
    let picks = rand::seq::index::sample(rng, len, count);
    reply_header(out, count, withscores);
    for r in picks.iter() {
        if let Some((m, s)) = z.at(r) {
            reply_item(out, &m, s, withscores);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Set algebra

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(acc: &mut f64, v: f64, a: Aggregate) {
    match a {
        Aggregate::Sum => {
            *acc += v;
            // inf + -inf: Redis keeps 0 rather than NaN.
            if acc.is_nan() {
                *acc = 0.0;
            }
        }
        Aggregate::Min => *acc = acc.min(v),
        Aggregate::Max => *acc = acc.max(v),
    }
}

/// Options of the set-algebra commands.
struct OpOpts {
    weights: Vec<f64>,
    agg: Aggregate,
    withscores: bool,
    limit: usize,
}

/// Parses `numkeys` at `argv[at]`; returns the key range end.
fn parse_numkeys(ctx: &Ctx<'_>, argv: &[&[u8]], at: usize) -> Result<usize, CmdError> {
    let n = args::int(argv[at])?;
    if n < 1 {
        return Err(CmdError::err(format!(
            "at least 1 input key is needed for '{}' command",
            ctx.cmd.name
        )));
    }
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > argv.len() - at - 1 {
        return Err(CmdError::Syntax);
    }
    Ok(at + 1 + n)
}

fn parse_op_opts(
    argv: &[&[u8]],
    nkeys: usize,
    op: SetOp,
    store: bool,
    card: bool,
) -> Result<OpOpts, CmdError> {
    let mut o = OpOpts {
        weights: vec![1.0; nkeys],
        agg: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = 0;
    while j < argv.len() {
        let left = argv.len() - j;
        let a = argv[j];
        if op != SetOp::Diff && !card && left > nkeys && is(a, "weights") {
            for (i, w) in argv[j + 1..=j + nkeys].iter().enumerate() {
                o.weights[i] =
                    num::parse_f64(w).ok_or(CmdError::err("weight value is not a float"))?;
            }
            j += nkeys + 1;
        } else if op != SetOp::Diff && !card && left >= 2 && is(a, "aggregate") {
            let v = argv[j + 1];
            o.agg = match () {
                _ if is(v, "sum") => Aggregate::Sum,
                _ if is(v, "min") => Aggregate::Min,
                _ if is(v, "max") => Aggregate::Max,
                _ => return Err(CmdError::Syntax),
            };
            j += 2;
        } else if !store && !card && is(a, "withscores") {
            o.withscores = true;
            j += 1;
        } else if card && left >= 2 && is(a, "limit") {
            const NEG: &str = "ERR LIMIT can't be negative";
            let l = args::int(argv[j + 1]).map_err(|_| CmdError::raw(NEG))?;
            o.limit = usize::try_from(l).map_err(|_| CmdError::raw(NEG))?;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(o)
}

/// Checks the input keys' types (WRONGTYPE before any option error, as Redis does): sorted
/// sets and plain sets are valid inputs.
fn check_inputs(ctx: &mut Ctx<'_>, keys: &[&[u8]]) -> CmdResult {
    for k in keys {
        if let Some(e) = ctx.ks.lookup_read(ctx.db, k, ctx.now) {
            if !matches!(e.value, Value::ZSet(_) | Value::Set(_)) {
                return Err(CmdError::WrongType);
            }
        }
    }
    Ok(())
}

/// One input of the set algebra: a sorted set, or a plain set whose members all score 1.
#[derive(Clone, Copy)]
enum Src<'a> {
    Z(&'a ZSetValue),
    S(&'a SetValue),
}

impl Src<'_> {
    fn len(&self) -> usize {
        match self {
            Src::Z(z) => z.len(),
            Src::S(s) => s.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Src::Z(z) => z.score(member),
            Src::S(s) => s.contains(member).then_some(1.0),
        }
    }

    /// Calls `f` with every (member, score); plain sets in their storage order.
    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Src::Z(z) => z.for_range(0, z.len(), false, f),
            Src::S(s) => s.iter().for_each(|m| m.with_bytes(|b| f(b, 1.0))),
        }
    }
}

fn src_len(s: &Option<Src<'_>>) -> usize {
    s.as_ref().map_or(0, Src::len)
}

/// Computes the result of `op` over the inputs, sorted by (score, member).
fn compute(srcs: &[Option<Src<'_>>], o: &OpOpts, op: SetOp) -> Vec<(Vec<u8>, f64)> {
    let mut res: Vec<(Vec<u8>, f64)> = match op {
        SetOp::Union => union(srcs, o),
        SetOp::Inter => inter(srcs, o, usize::MAX),
        SetOp::Diff => diff(srcs),
    };
    res.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
    res
}

fn weighted(w: f64, s: f64) -> f64 {
    let v = w * s;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

fn union(srcs: &[Option<Src<'_>>], o: &OpOpts) -> Vec<(Vec<u8>, f64)> {
    let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
    let mut order: Vec<usize> = (0..srcs.len()).collect();
    order.sort_by_key(|&i| src_len(&srcs[i]));
    for i in order {
        let Some(z) = srcs[i] else { continue };
        z.for_each(|m, s| {
            let v = weighted(o.weights[i], s);
            match acc.get_mut(m) {
                Some(cur) => aggregate(cur, v, o.agg),
                None => {
                    acc.insert(m.to_vec(), v);
                }
            }
        });
    }
    acc.into_iter().collect()
}

/// Intersection, stopping after `limit` members (for ZINTERCARD).
fn inter(srcs: &[Option<Src<'_>>], o: &OpOpts, limit: usize) -> Vec<(Vec<u8>, f64)> {
    let mut order: Vec<usize> = (0..srcs.len()).collect();
    order.sort_by_key(|&i| src_len(&srcs[i]));
    let Some(first) = srcs[order[0]] else {
        return Vec::new();
    };
    let mut res = Vec::new();
    first.for_each(|m, s| {
        if res.len() >= limit {
            return;
        }
        let mut score = weighted(o.weights[order[0]], s);
        for &j in &order[1..] {
            match srcs[j].and_then(|z| z.score(m)) {
                Some(v) => aggregate(&mut score, v * o.weights[j], o.agg),
                None => return,
            }
        }
        res.push((m.to_vec(), score));
    });
    res
}

fn diff(srcs: &[Option<Src<'_>>]) -> Vec<(Vec<u8>, f64)> {
    let Some(first) = srcs[0] else {
        return Vec::new();
    };
    let mut res = Vec::new();
    first.for_each(|m, s| {
        if !srcs[1..].iter().flatten().any(|z| z.score(m).is_some()) {
            res.push((m.to_vec(), s));
        }
    });
    res
}

/// Shared body of ZUNION/ZINTER/ZDIFF/ZINTERCARD and their STORE forms. `at` is the index
/// of numkeys; `dst` the destination for the STORE forms.
fn setop(ctx: &mut Ctx<'_>, argv: &[&[u8]], at: usize, op: SetOp, card: bool) -> CmdResult {
    let end = parse_numkeys(ctx, argv, at)?;
    let keys = &argv[at + 1..end];
    check_inputs(ctx, keys)?;
    let store = at == 2;
    let o = parse_op_opts(&argv[end..], keys.len(), op, store, card)?;
    let d = &ctx.ks.dbs[ctx.db];
    let srcs: Vec<Option<Src<'_>>> = keys
        .iter()
        .map(|k| match d.peek_live(k, ctx.now) {
            Some(e) => match &e.value {
                Value::ZSet(z) => Some(Src::Z(z)),
                Value::Set(s) => Some(Src::S(s)),
                _ => None,
            },
            None => None,
        })
        .collect();
    if card {
        let limit = if o.limit == 0 { usize::MAX } else { o.limit };
        let n = inter(&srcs, &o, limit).len();
        ctx.out.integer(n as i64);
        return Ok(());
    }
    let res = compute(&srcs, &o, op);
    if store {
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        let z = build(&res, limits(ctx));
        return store_result(ctx, argv[1], z, event);
    }
    reply_header(ctx.out, res.len(), o.withscores);
    for (m, s) in &res {
        reply_item(ctx.out, m, *s, o.withscores);
    }
    Ok(())
}

/// A zset from sorted items, `listpack` when it fits the limits.
fn build(items: &[(Vec<u8>, f64)], lim: Limits) -> ZSetValue {
    let max = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = if items.len() <= lim.max_entries && max <= lim.max_value {
        ZSetValue::default()
    } else {
        ZSetValue::for_len(usize::MAX, lim)
    };
    for (m, s) in items {
        z.insert_new(m, *s, lim);
    }
    z
}

/// Union of sorted sets.
///
/// ```text
/// ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
/// ```
fn zunion(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    setop(ctx, argv, 1, SetOp::Union, false)
}

/// Intersection of sorted sets.
///
/// ```text
/// ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
/// ```
fn zinter(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    setop(ctx, argv, 1, SetOp::Inter, false)
}

/// Members of the first set absent from the others.
///
/// ```text
/// ZDIFF numkeys key [key ...] [WITHSCORES]
/// ```
fn zdiff(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    setop(ctx, argv, 1, SetOp::Diff, false)
}

/// Size of the intersection, counting at most LIMIT members (0 = no limit).
///
/// ```text
/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
/// ```
fn zintercard(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    setop(ctx, argv, 1, SetOp::Inter, true)
}

/// Stores the union.
///
/// ```text
/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
/// ```
fn zunionstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    setop(ctx, argv, 2, SetOp::Union, false)
}

/// Stores the intersection.
///
/// ```text
/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
/// ```
fn zinterstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    setop(ctx, argv, 2, SetOp::Inter, false)
}

/// Stores the difference.
///
/// ```text
/// ZDIFFSTORE destination numkeys key [key ...]
/// ```
fn zdiffstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    setop(ctx, argv, 2, SetOp::Diff, false)
}

// ---------------------------------------------------------------------------------------------
// ZSCAN

/// Parses a cursor like Redis's `strtoul`-based parser (a negative number wraps).
fn parse_cursor(a: &[u8]) -> Option<u64> {
    let (neg, digits) = match a.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, a),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return (a.is_empty()).then_some(0);
    }
    let mut n: u64 = 0;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { n.wrapping_neg() } else { n })
}

/// Iterates members and scores.
///
/// ```text
/// ZSCAN key cursor [MATCH pattern] [COUNT count]
/// ```
///
/// A listpack-encoded set is returned whole with cursor 0, as in Redis.
fn zscan(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(argv[2]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let (mut count, mut pattern) = (10usize, None);
    let mut i = 3;
    while i < argv.len() {
        if is(argv[i], "count") && i + 1 < argv.len() {
            let n = args::int(argv[i + 1])?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(argv[i], "match") && i + 1 < argv.len() {
            pattern = Some(argv[i + 1]).filter(|p| *p != b"*");
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let mut items = Vec::new();
    let next = match read_z(ctx.ks, ctx.db, argv[1], ctx.now)? {
        Some(z) => z.scan(cursor, count, |m, s| {
            if pattern.is_none_or(|p| glob::matches(p, m, false)) {
                items.push((m.to_vec(), s));
            }
        }),
        None => 0,
    };
    let out = &mut *ctx.out;
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len() * 2);
    for (m, s) in &items {
        out.bulk(m);
        out.bulk(num::fmt_double_17g(*s).as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::string::tests::{resp, Harness};

    #[test]
    fn rank_windows_follow_redis_clamping() {
        assert_eq!(rank_window(5, 0, -1, false), (0, 5));
        assert_eq!(rank_window(5, -100, 1, false), (0, 2));
        assert_eq!(rank_window(5, 3, 1, false), (0, 0));
        assert_eq!(rank_window(5, 0, 0, true), (4, 5));
        assert_eq!(rank_window(5, i64::MIN, i64::MAX, false), (0, 5));
    }

    #[test]
    fn zadd_flags_and_errors() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["ZADD", "z", "1", "a", "2", "b"]).0, ":2\r\n");
        assert_eq!(
            h.run(&["ZADD", "z", "CH", "GT", "0", "a", "3", "b"]).0,
            ":1\r\n"
        );
        assert_eq!(
            h.run(&["ZADD", "z", "NX", "XX", "1", "a"]).0,
            "-ERR XX and NX options at the same time are not compatible\r\n"
        );
        assert_eq!(h.run(&["ZADD", "z", "NX", "1"]).0, "-ERR syntax error\r\n");
        assert_eq!(
            h.run(&["ZADD", "z", "x", "a"]).0,
            "-ERR value is not a valid float\r\n"
        );
        assert_eq!(h.run(&["ZADD", "z", "INCR", "inf", "a"]).0, "$3\r\ninf\r\n");
        assert_eq!(
            h.run(&["ZADD", "z", "INCR", "-inf", "a"]).0,
            format!("-{NAN_ERR}\r\n")
        );
        assert_eq!(h.encoding("z"), "listpack");
    }

    #[test]
    fn blocking_timeouts_parse_like_blpop() {
        assert_eq!(args::timeout_ms(b"0"), Ok(0));
        assert_eq!(args::timeout_ms(b"0.0001"), Ok(1));
        assert_eq!(args::timeout_ms(b"2.5"), Ok(2500));
        let neg = Err(CmdError::raw("ERR timeout is negative"));
        assert_eq!(args::timeout_ms(b"-1"), neg);
        assert_eq!(args::timeout_ms(b"1e30"), neg);
        let bad = Err(CmdError::raw("ERR timeout is not a float or out of range"));
        assert_eq!(args::timeout_ms(b"x"), bad);
        assert_eq!(args::timeout_ms(b"nan"), bad);
    }

    #[test]
    fn zmpop_propagates_as_zpop_with_popped_count() {
        let mut h = Harness::new();
        h.run(&["ZADD", "z", "1", "a", "2", "b"]);
        let (reply, prop) = h.run(&["ZMPOP", "2", "none", "z", "MAX", "COUNT", "5"]);
        assert_eq!(
            reply,
            "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
        );
        assert_eq!(prop, resp(&["ZPOPMAX", "z", "2"]));
        assert_eq!(h.encoding("z"), "none");
    }
}
