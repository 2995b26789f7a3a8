//! Stream commands: XADD, XRANGE, XREAD and friends (Redis `t_stream.c`); the consumer group
//! commands are in `stream_group.rs`.
//!
//! Values are [`StreamValue`]s; this file parses arguments, builds replies and records what
//! Redis propagates: XADD with a generated ID propagates that ID, and an approximate trim
//! (`~`) propagates as the exact trim it turned out to be (`=` with the resulting length or
//! first ID), so that replicas and the log end up with the same stream.

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::stream::{
    parse_id, AppendError, IdSyntax, Item, NodeLimits, StreamId, StreamValue, Trim,
};
use crate::keyspace::{Keyspace, Value};
use crate::protocol::ReplyBuf;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", -5, WRITE | DENYOOM | FAST, 1, 1, 1, xadd),
    CommandSpec::new("xlen", 2, READONLY | FAST, 1, 1, 1, xlen),
    CommandSpec::new("xrange", -4, READONLY, 1, 1, 1, xrange),
    CommandSpec::new("xrevrange", -4, READONLY, 1, 1, 1, xrevrange),
    CommandSpec::new("xdel", -3, WRITE | FAST, 1, 1, 1, xdel),
    CommandSpec::new("xtrim", -4, WRITE, 1, 1, 1, xtrim),
    CommandSpec::new("xsetid", -3, WRITE | DENYOOM | FAST, 1, 1, 1, xsetid),
    CommandSpec::new(
        "xread",
        -4,
        READONLY | BLOCKING | MOVABLE_KEYS,
        0,
        0,
        0,
        xread,
    ),
    CommandSpec::container("xinfo", -2, 0, XINFO_SUBCOMMANDS),
];

const XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::sub("xinfo", "stream", -3, READONLY, 2, 2, 1, xinfo_stream),
    CommandSpec::sub(
        "xinfo",
        "groups",
        3,
        READONLY,
        2,
        2,
        1,
        super::stream_group::xinfo_groups,
    ),
    CommandSpec::sub(
        "xinfo",
        "consumers",
        4,
        READONLY,
        2,
        2,
        1,
        super::stream_group::xinfo_consumers,
    ),
    CommandSpec::sub("xinfo", "help", 2, LOADING | STALE, 0, 0, 0, xinfo_help),
];

/// `ERR Invalid stream ID specified as stream command argument`.
pub(crate) fn invalid_id() -> CmdError {
    CmdError::raw("ERR Invalid stream ID specified as stream command argument")
}

/// Parses an ID argument (`-` and `+` allowed unless `strict`).
pub(crate) fn id_arg(arg: &[u8], missing_seq: u64, strict: bool) -> Result<StreamId, CmdError> {
    let syn = IdSyntax {
        missing_seq,
        strict,
        allow_auto_seq: false,
    };
    parse_id(arg, syn).map(|(id, _)| id).ok_or_else(invalid_id)
}

/// The configured node limits (`stream-node-max-bytes`, `stream-node-max-entries`).
fn node_limits(ctx: &Ctx<'_>) -> NodeLimits {
    let get = |name: &str, dflt: usize| {
        ctx.srv
            .config
            .get_by_name(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(dflt)
    };
    NodeLimits {
        max_bytes: get("stream-node-max-bytes", 4096),
        max_entries: get("stream-node-max-entries", 100),
    }
}

/// Looks a stream up for reading; `Ok(None)` if absent, WRONGTYPE for other types.
pub(crate) fn read_stream<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a StreamValue>, CmdError> {
    match ks.lookup_read(db, key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Looks a stream up for modification; `Ok(None)` if absent.
pub(crate) fn write_stream<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut StreamValue>, CmdError> {
    match ks.lookup_write(db, key, now) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(CmdError::WrongType),
        },
    }
}

/// Creates an empty stream at `key` (which must be absent) and returns it.
pub(crate) fn create_stream<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> &'a mut StreamValue {
    let db = ctx.db;
    ctx.ks.db(db).set(key, Value::Stream(Box::default()));
    ctx.notify('n', "new", db, key);
    match ctx.ks.dbs[db].main.get_mut(key).map(|e| &mut e.value) {
        Some(Value::Stream(s)) => s,
        // Just stored; the table hands the same entry back.
        _ => unreachable!("stream just created"),
    }
}

/// Writes one entry as `[id, [field, value, ...]]`.
pub(crate) fn reply_item(out: &mut ReplyBuf, it: &Item) {
    out.array(2);
    out.bulk(it.id.to_string().as_bytes());
    out.array(it.fields.len());
    for f in &it.fields {
        out.bulk(f);
    }
}

/// Writes an ID as a bulk string.
pub(crate) fn reply_id(out: &mut ReplyBuf, id: StreamId) {
    out.bulk(id.to_string().as_bytes());
}

/// Trimming options shared by XADD and XTRIM (Redis `streamAddTrimArgs`).
#[derive(Debug, Default)]
struct AddTrimArgs {
    trim: Option<Trim>,
    approx: bool,
    /// Most entries to remove (0 = no limit).
    limit: u64,
    /// Index of the MAXLEN / MINID value, for the rewrite of an approximate trim.
    trim_arg: usize,
    /// XADD: the explicit ID and whether its sequence was given.
    id: Option<(StreamId, bool)>,
    no_mkstream: bool,
    /// XADD: index of the ID argument.
    id_pos: usize,
}

/// Parses `MAXLEN|MINID [=|~] threshold [LIMIT n]` (and for XADD `NOMKSTREAM` and the ID),
/// with Redis's checks in Redis's order. `obey` is set for a stream being replayed (the log,
/// a master), where a LIMIT is not enforced.
fn parse_add_trim(
    argv: &[&[u8]],
    xadd: bool,
    obey: bool,
    node_max: usize,
) -> Result<AddTrimArgs, CmdError> {
    let mut a = AddTrimArgs::default();
    let mut limit_given = false;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = argv[i];
        if xadd && opt == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if a.trim.is_some() {
                return Err(CmdError::err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            let next = argv[i + 1];
            a.approx = false;
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let v = argv[i + 1];
            a.trim = Some(if is(opt, "maxlen") {
                let n = args::int(v)?;
                if n < 0 {
                    return Err(CmdError::err("The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(id_arg(v, 0, true)?)
            });
            i += 1;
            a.trim_arg = i;
        } else if is(opt, "limit") && more > 0 {
            let n = args::int(argv[i + 1])?;
            if n < 0 {
                return Err(CmdError::err("The LIMIT argument must be >= 0."));
            }
            a.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            a.no_mkstream = true;
        } else if xadd {
            let syn = IdSyntax {
                missing_seq: 0,
                strict: true,
                allow_auto_seq: true,
            };
            a.id = Some(parse_id(opt, syn).ok_or_else(invalid_id)?);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    a.id_pos = i;
    if a.limit > 0 && a.trim.is_none() {
        return Err(CmdError::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && a.trim.is_none() {
        return Err(CmdError::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if obey {
        a.limit = 0;
    } else if limit_given {
        if !a.approx {
            return Err(CmdError::err(
                "syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if a.approx {
        // At most 100 nodes' worth of work by default, clamped as Redis does.
        let n = (node_max as u64).saturating_mul(100);
        a.limit = if n == 0 { 10_000 } else { n.min(1_000_000) };
    } else {
        a.limit = 0;
    }
    Ok(a)
}

/// The argv to propagate after an approximate trim: `~` becomes `=` and the threshold the
/// resulting length (MAXLEN) or the first ID left, tombstones included (MINID), as Redis's
/// `streamRewriteTrimArgument` does.
fn rewrite_trim(argv: &mut [Vec<u8>], a: &AddTrimArgs, s: &StreamValue) {
    argv[a.trim_arg - 1] = b"=".to_vec();
    argv[a.trim_arg] = match a.trim {
        Some(Trim::MaxLen(_)) => s.len().to_string().into_bytes(),
        _ => s.first_edge_with_tombstones().to_bytes(),
    };
}

/// Appends an entry, creating the stream unless NOMKSTREAM, then trims if asked. Replies with
/// the new ID (null if the key is absent and NOMKSTREAM).
///
/// ```text
/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value
///      [field value ...]
/// ```
fn xadd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let lim = node_limits(ctx);
    let a = parse_add_trim(argv, true, ctx.ks.loading, lim.max_entries)?;
    let field_pos = a.id_pos + 1;
    let nfields = argv.len().saturating_sub(field_pos);
    if nfields < 2 || nfields % 2 == 1 {
        return Err(CmdError::WrongArity("xadd".into()));
    }
    if let Some((id, true)) = a.id {
        if id.is_zero() {
            return Err(CmdError::err(
                "The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let (db, now, key) = (ctx.db, ctx.now, argv[1]);
    let s = match write_stream(ctx.ks, db, key, now)? {
        Some(s) => s,
        None if a.no_mkstream => {
            ctx.out.null();
            return Ok(());
        }
        None => create_stream(ctx, key),
    };
    if s.last_id == StreamId::MAX {
        return Err(CmdError::err(
            "The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let fields = argv[field_pos..].iter().map(|f| Box::from(*f)).collect();
    let id = s.append(a.id, now, fields, lim).map_err(|e| match e {
        AppendError::NotGreater => CmdError::err(
            "The ID specified in XADD is equal or smaller than the target stream top item",
        ),
        AppendError::TooLarge => CmdError::err("Elements are too large to be stored"),
    })?;
    let trimmed = a.trim.map_or(0, |t| s.trim(t, a.approx, a.limit));
    let mut prop: Vec<Vec<u8>> = argv.iter().map(|x| x.to_vec()).collect();
    if a.approx {
        rewrite_trim(&mut prop, &a, s);
    }
    if !matches!(a.id, Some((_, true))) {
        prop[a.id_pos] = id.to_bytes();
    }
    reply_id(ctx.out, id);
    ctx.signal_modified_key(db, key);
    ctx.notify('t', "xadd", db, key);
    ctx.dirty(1);
    if trimmed > 0 {
        ctx.notify('t', "xtrim", db, key);
    }
    ctx.propagate(&prop);
    ctx.srv.signal_key_ready(db, key);
    Ok(())
}

/// Trims a stream, replying with the number of entries removed.
///
/// ```text
/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
/// ```
fn xtrim(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let lim = node_limits(ctx);
    let a = parse_add_trim(argv, false, ctx.ks.loading, lim.max_entries)?;
    let (db, now, key) = (ctx.db, ctx.now, argv[1]);
    let Some(s) = write_stream(ctx.ks, db, key, now)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let Some(trim) = a.trim else {
        return Err(CmdError::Syntax);
    };
    let deleted = s.trim(trim, a.approx, a.limit);
    if deleted > 0 {
        let mut prop: Vec<Vec<u8>> = argv.iter().map(|x| x.to_vec()).collect();
        if a.approx {
            rewrite_trim(&mut prop, &a, s);
        }
        ctx.notify('t', "xtrim", db, key);
        ctx.signal_modified_key(db, key);
        ctx.dirty(deleted);
        ctx.propagate(&prop);
    }
    ctx.out.integer(deleted as i64);
    Ok(())
}

/// The number of entries.
///
/// ```text
/// XLEN key
/// ```
fn xlen(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = read_stream(ctx.ks, ctx.db, argv[1], ctx.now)?.map_or(0, |s| s.len());
    ctx.out.integer(n as i64);
    Ok(())
}

/// Parses a range bound: an ID, `-`, `+`, or `(id` for an exclusive one.
fn range_bound(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((id_arg(&arg[1..], missing_seq, true)?, true))
    } else {
        Ok((id_arg(arg, missing_seq, false)?, false))
    }
}

/// Shared body of XRANGE / XREVRANGE.
fn range_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (argv[3], argv[2])
    } else {
        (argv[2], argv[3])
    };
    let (mut start, ex) = range_bound(start_arg, 0)?;
    if ex {
        start = start
            .incr()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval"))?;
    }
    let (mut end, ex) = range_bound(end_arg, u64::MAX)?;
    if ex {
        end = end
            .decr()
            .ok_or_else(|| CmdError::err("invalid end ID for the interval"))?;
    }
    let mut count: Option<i64> = None;
    let mut j = 4;
    while j < argv.len() {
        if is(argv[j], "count") && j + 1 < argv.len() {
            count = Some(args::int(argv[j + 1])?.max(0));
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let (db, now, out) = (ctx.db, ctx.now, &mut *ctx.out);
    let Some(s) = read_stream(ctx.ks, db, argv[1], now)? else {
        out.array(0);
        return Ok(());
    };
    if count == Some(0) {
        out.null_array();
        return Ok(());
    }
    let limit = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let d = out.defer_len();
    let mut n = 0;
    for it in s.range(start, end, rev).take(limit) {
        reply_item(out, it);
        n += 1;
    }
    out.set_deferred_len(d, b'*', n);
    Ok(())
}

/// Entries between two IDs, ascending.
///
/// ```text
/// XRANGE key start end [COUNT count]
/// ```
fn xrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, false)
}

/// Entries between two IDs, descending.
///
/// ```text
/// XREVRANGE key end start [COUNT count]
/// ```
fn xrevrange(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, true)
}

/// Deletes entries, replying with how many existed. Every ID is checked before any is
/// deleted, as in Redis.
///
/// ```text
/// XDEL key id [id ...]
/// ```
fn xdel(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let ids = argv[2..]
        .iter()
        .map(|a| id_arg(a, 0, true))
        .collect::<Result<Vec<_>, _>>()?;
    let (db, now, key) = (ctx.db, ctx.now, argv[1]);
    let Some(s) = write_stream(ctx.ks, db, key, now)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let mut deleted = 0;
    for id in ids {
        if s.delete(id) {
            if id > s.max_deleted_id {
                s.max_deleted_id = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        ctx.signal_modified_key(db, key);
        ctx.notify('t', "xdel", db, key);
        ctx.dirty(deleted);
    }
    ctx.out.integer(deleted as i64);
    Ok(())
}

/// Sets the stream's last ID, and optionally its entries-added counter and largest deleted
/// ID (used by the log rewrite and replication to carry the metadata).
///
/// ```text
/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
/// ```
fn xsetid(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let id = id_arg(argv[2], 0, true)?;
    let mut added: Option<u64> = None;
    let mut max_del = StreamId::MIN;
    let mut i = 3;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        if is(argv[i], "entriesadded") && more {
            let n = args::int(argv[i + 1])?;
            if n < 0 {
                return Err(CmdError::err("entries_added must be positive"));
            }
            added = Some(n as u64);
        } else if is(argv[i], "maxdeletedid") && more {
            max_del = id_arg(argv[i + 1], 0, true)?;
            if id < max_del {
                return Err(CmdError::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let (db, now, key) = (ctx.db, ctx.now, argv[1]);
    let Some(s) = write_stream(ctx.ks, db, key, now)? else {
        return Err(CmdError::NoSuchKey);
    };
    if !s.is_empty() {
        if id < s.last_valid_id() {
            return Err(CmdError::err(
                "The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if added.is_some_and(|a| s.len() > a) {
            return Err(CmdError::err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    s.last_id = id;
    if let Some(a) = added {
        s.entries_added = a;
    }
    if !max_del.is_zero() {
        s.max_deleted_id = max_del;
    }
    ctx.out.ok();
    ctx.dirty(1);
    ctx.notify('t', "xsetid", db, key);
    Ok(())
}

/// Writes the reply of XINFO STREAM (FULL with `full = Some(count)`).
fn reply_stream_info(out: &mut ReplyBuf, s: &StreamValue, full: Option<usize>) {
    out.map(if full.is_some() { 9 } else { 10 });
    out.bulk(b"length");
    out.integer(s.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.integer(s.node_count() as i64);
    out.bulk(b"radix-tree-nodes");
    out.integer(s.rax_nodes() as i64);
    out.bulk(b"last-generated-id");
    reply_id(out, s.last_id);
    out.bulk(b"max-deleted-entry-id");
    reply_id(out, s.max_deleted_id);
    out.bulk(b"entries-added");
    out.integer(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    reply_id(out, s.first_id);
    let Some(count) = full else {
        out.bulk(b"groups");
        out.integer(s.groups.len() as i64);
        for (name, edge) in [
            ("first-entry", s.first_entry()),
            ("last-entry", s.last_entry()),
        ] {
            out.bulk(name.as_bytes());
            match edge {
                Some(it) => reply_item(out, it),
                None => out.null(),
            }
        }
        return;
    };
    out.bulk(b"entries");
    let take = if count == 0 { usize::MAX } else { count };
    out.array(s.iter().take(take).count());
    for it in s.iter().take(take) {
        reply_item(out, it);
    }
    out.bulk(b"groups");
    super::stream_group::reply_groups_full(out, s, count);
}

/// Information about a stream; FULL adds its entries (COUNT of them, default 10, 0 = all)
/// and its groups with their pending entries and consumers.
///
/// ```text
/// XINFO STREAM key [FULL [COUNT count]]
/// ```
fn xinfo_stream(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (db, now, out) = (ctx.db, ctx.now, &mut *ctx.out);
    let Some(s) = read_stream(ctx.ks, db, argv[2], now)? else {
        return Err(CmdError::NoSuchKey);
    };
    let opts = &argv[3..];
    let full = match opts.len() {
        0 => None,
        1 | 3 if is(opts[0], "full") => {
            if opts.len() == 3 {
                if !is(opts[1], "count") {
                    return Err(subcommand_syntax(argv));
                }
                let n = args::int(opts[2])?;
                Some(if n < 0 {
                    10
                } else {
                    usize::try_from(n).unwrap_or(usize::MAX)
                })
            } else {
                Some(10)
            }
        }
        _ => return Err(subcommand_syntax(argv)),
    };
    reply_stream_info(out, s, full);
    Ok(())
}

/// Redis's `addReplySubcommandSyntaxError`.
pub(crate) fn subcommand_syntax(argv: &[&[u8]]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        args::text(argv[1]),
        args::text(argv[0]).to_uppercase()
    ))
}

/// ```text
/// XINFO HELP
/// ```
fn xinfo_help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::command::reply_help(
        ctx.out,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XREAD

/// Parsed XREAD / XREADGROUP arguments.
pub(crate) struct ReadArgs<'a> {
    /// BLOCK in ms (`None` without BLOCK; 0 = forever).
    pub block: Option<u64>,
    /// COUNT (0 = no limit).
    pub count: usize,
    pub keys: Vec<&'a [u8]>,
    pub ids: Vec<&'a [u8]>,
    pub group: Option<(&'a [u8], &'a [u8])>,
    pub noack: bool,
}

/// Parses the options shared by XREAD and XREADGROUP, with Redis's errors and their order.
pub(crate) fn parse_read<'a>(
    ctx: &Ctx<'_>,
    argv: &[&'a [u8]],
    group_cmd: bool,
) -> Result<ReadArgs<'a>, CmdError> {
    let mut r = ReadArgs {
        block: None,
        count: 0,
        keys: Vec::new(),
        ids: Vec::new(),
        group: None,
        noack: false,
    };
    let mut streams_at = None;
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        let o = argv[i];
        if is(o, "block") && more > 0 {
            if ctx.client.id == crate::scripting::SCRIPT_CLIENT_ID {
                return Err(CmdError::err(format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    args::text(argv[0])
                )));
            }
            i += 1;
            let ms = args::int(argv[i]).map_err(|_| CmdError::Timeout)?;
            if ms < 0 {
                return Err(CmdError::raw("ERR timeout is negative"));
            }
            r.block = Some(ms as u64);
        } else if is(o, "count") && more > 0 {
            i += 1;
            let n = args::int(argv[i])?;
            r.count = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
        } else if is(o, "streams") && more > 0 {
            let n = argv.len() - (i + 1);
            if n % 2 != 0 {
                return Err(CmdError::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be \
                     specified.",
                ));
            }
            streams_at = Some(i + 1);
            break;
        } else if is(o, "group") && more >= 2 {
            if !group_cmd {
                return Err(CmdError::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group = Some((argv[i + 1], argv[i + 2]));
            i += 2;
        } else if is(o, "noack") {
            if !group_cmd {
                return Err(CmdError::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let Some(at) = streams_at else {
        return Err(CmdError::Syntax);
    };
    if group_cmd && r.group.is_none() {
        return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
    }
    let n = (argv.len() - at) / 2;
    r.keys = argv[at..at + n].to_vec();
    r.ids = argv[at + n..].to_vec();
    Ok(r)
}

/// Whether this call is the re-run of a command its client blocked in.
pub(crate) fn rerun(ctx: &Ctx<'_>) -> bool {
    ctx.srv.blocking.is_blocked(ctx.client.id)
}

/// Looks a stream up for XREAD. On a re-run, a key that now holds another type counts as
/// absent: Redis serves a blocked reader only from a stream and keeps it blocked otherwise.
pub(crate) fn read_for_xread<'a>(
    ctx: &'a mut Ctx<'_>,
    key: &[u8],
    rerun: bool,
) -> Result<Option<&'a StreamValue>, CmdError> {
    match read_stream(ctx.ks, ctx.db, key, ctx.now) {
        Err(CmdError::WrongType) if rerun => Ok(None),
        r => r,
    }
}

/// Blocks the client on `keys` (see `list::block`); inside EXEC or a script it answers as a
/// timeout would.
pub(crate) fn block_on(ctx: &mut Ctx<'_>, keys: &[&[u8]], ms: u64) -> CmdResult {
    super::list::block(ctx, keys, ms)
}

/// A fingerprint of what a blocked reader can see of `keys`: each one's type, last ID,
/// entries added and groups' last IDs.
pub(crate) fn fingerprint(ctx: &mut Ctx<'_>, keys: &[&[u8]]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for k in keys {
        match ctx.ks.dbs[ctx.db].peek(k).map(|e| &e.value) {
            Some(Value::Stream(s)) => {
                (1u8, s.last_id, s.entries_added, s.len()).hash(&mut h);
                for (name, g) in &s.groups {
                    (name, g.last_id).hash(&mut h);
                }
            }
            Some(_) => 2u8.hash(&mut h),
            None => 0u8.hash(&mut h),
        }
    }
    h.finish()
}

/// Blocks again a re-run that found nothing to serve. The blocking registry wakes only the
/// first waiter of a key and counts on it to pass the turn on once served; a stream reader
/// woken for entries it does not want (it waits after a later ID, or its group already has
/// them) is not served, so it passes the turn itself: it goes to the back of its keys' queues
/// (keeping its deadline), which wakes the next waiter. It does so once per state of its
/// keys, so a round of readers that all want nothing ends.
pub(crate) fn reblock_unserved(ctx: &mut Ctx<'_>, keys: &[&[u8]], fp: u64) -> CmdResult {
    let id = ctx.client.id;
    let changed = match ctx.srv.blocking.stream_wait(id) {
        Some(wait) => wait.seen.replace(fp) != Some(fp),
        None => false,
    };
    if changed {
        ctx.srv.blocking.requeue(id);
        return Ok(());
    }
    block_on(ctx, keys, 0)
}

/// Reads entries after the given IDs from one or more streams, optionally blocking until
/// some arrive.
///
/// ```text
/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
/// ```
fn xread(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let r = parse_read(ctx, argv, false)?;
    let again = rerun(ctx);
    let remembered = match ctx.srv.blocking.stream_wait(ctx.client.id) {
        Some(wait) if again && wait.ids.len() == r.keys.len() => Some(wait.ids.clone()),
        _ => None,
    };
    let ids = match remembered {
        Some(ids) => ids,
        None => resolve_read_ids(ctx, &r, again)?,
    };
    // A reader served after blocking gets at most 1000 entries unless it asked otherwise, as
    // in Redis.
    let count = if again && r.count == 0 { 1000 } else { r.count };
    if serve_read(ctx, &r.keys, &ids, count, again)? {
        return Ok(());
    }
    match r.block {
        Some(_) if again => {
            let fp = fingerprint(ctx, &r.keys);
            reblock_unserved(ctx, &r.keys, fp)
        }
        Some(ms) if ctx.may_block() => {
            block_on(ctx, &r.keys, ms)?;
            if let Some(wait) = ctx.srv.blocking.stream_wait(ctx.client.id) {
                wait.ids = ids;
            }
            Ok(())
        }
        Some(_) => {
            ctx.out.null_array();
            Ok(())
        }
        None => {
            ctx.out.null_array();
            Ok(())
        }
    }
}

/// Writes XREAD's reply for the streams that have entries after their ID, straight from the
/// streams into the reply (per stream its key and entries; a map in RESP3). Returns false,
/// writing nothing, when none has. A woken reader is served from one stream, as Redis serves
/// it from the key that woke it.
fn serve_read(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    ids: &[StreamId],
    count: usize,
    again: bool,
) -> Result<bool, CmdError> {
    let (db, now, out) = (ctx.db, ctx.now, &mut *ctx.out);
    let resp3 = out.resp == crate::protocol::reply::Resp::V3;
    let take = if count == 0 { usize::MAX } else { count };
    let mut header = None;
    let mut served = 0;
    for (k, &key) in keys.iter().enumerate() {
        let s = match read_stream(ctx.ks, db, key, now) {
            Err(CmdError::WrongType) if again => None,
            r => r?,
        };
        let Some(s) = s.filter(|s| !s.is_empty() && s.last_valid_id() > ids[k]) else {
            continue;
        };
        let Some(start) = ids[k].incr() else {
            continue;
        };
        if header.is_none() {
            header = Some(out.defer_len());
        }
        if !resp3 {
            out.array(2);
        }
        out.bulk(key);
        let n = s.range(start, StreamId::MAX, false).take(take).count();
        out.array(n);
        for it in s.range(start, StreamId::MAX, false).take(take) {
            reply_item(out, it);
        }
        served += 1;
        if again {
            break;
        }
    }
    match header {
        Some(d) => {
            let kind = if resp3 { b'%' } else { b'*' };
            out.set_deferred_len(d, kind, served);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The IDs XREAD reads after: `$` is the stream's last ID now (0-0 if absent).
fn resolve_read_ids(
    ctx: &mut Ctx<'_>,
    r: &ReadArgs<'_>,
    again: bool,
) -> Result<Vec<StreamId>, CmdError> {
    let mut ids = Vec::with_capacity(r.keys.len());
    for (k, &key) in r.keys.iter().enumerate() {
        let s = read_for_xread(ctx, key, again)?;
        let arg = r.ids[k];
        if arg == b"$" {
            ids.push(s.map_or(StreamId::MIN, |s| s.last_id));
        } else if arg == b">" {
            return Err(CmdError::err(
                "The > ID can be specified only when calling XREADGROUP using the GROUP <group> \
                 <consumer> option.",
            ));
        } else {
            ids.push(id_arg(arg, 0, true)?);
        }
    }
    Ok(ids)
}
