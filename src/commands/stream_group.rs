//! Stream consumer group commands: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM,
//! XINFO GROUPS / CONSUMERS (Redis `t_stream.c`).
//!
//! What they propagate follows Redis exactly: XREADGROUP, XCLAIM and XAUTOCLAIM never
//! propagate themselves; each entry they hand to a consumer becomes an idempotent
//! `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID last`, a NOACK read
//! moves the group with `XGROUP SETID ... ENTRIESREAD n` (and creates its consumer with
//! `XGROUP CREATECONSUMER`), so replicas and the log get the same group state.

use super::args::{self, is};
use super::flags::*;
use super::stream::{
    block_on, create_stream, fingerprint, id_arg, parse_read, read_stream,
    reblock_unserved, reply_id, reply_item, rerun, subcommand_syntax, write_stream,
};
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::stream::{Group, Item, Nack, StreamId, StreamValue, ENTRIES_READ_INVALID};
use crate::protocol::ReplyBuf;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::container("xgroup", -2, 0, XGROUP_SUBCOMMANDS),
    CommandSpec::new(
        "xreadgroup",
        -7,
        WRITE | BLOCKING | MOVABLE_KEYS,
        0,
        0,
        0,
        xreadgroup,
    ),
    CommandSpec::new("xack", -4, WRITE | FAST, 1, 1, 1, xack),
    CommandSpec::new("xpending", -3, READONLY, 1, 1, 1, xpending),
    CommandSpec::new("xclaim", -6, WRITE | FAST, 1, 1, 1, xclaim),
    CommandSpec::new("xautoclaim", -6, WRITE | FAST, 1, 1, 1, xautoclaim),
];

const XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::sub("xgroup", "create", -5, WRITE | DENYOOM, 2, 2, 1, xgroup),
    CommandSpec::sub("xgroup", "setid", -5, WRITE, 2, 2, 1, xgroup),
    CommandSpec::sub("xgroup", "destroy", 4, WRITE, 2, 2, 1, xgroup),
    CommandSpec::sub(
        "xgroup",
        "createconsumer",
        5,
        WRITE | DENYOOM,
        2,
        2,
        1,
        xgroup,
    ),
    CommandSpec::sub("xgroup", "delconsumer", 5, WRITE, 2, 2, 1, xgroup),
    CommandSpec::sub("xgroup", "help", 2, LOADING | STALE, 0, 0, 0, xgroup_help),
];

/// `NOGROUP No such key '<key>' or consumer group '<group>'<suffix>`.
fn no_group(key: &[u8], group: &[u8], suffix: &str) -> CmdError {
    CmdError::Msg(
        format!(
            "NOGROUP No such key '{}' or consumer group '{}'{suffix}",
            args::text(key),
            args::text(group)
        )
        .into(),
    )
}

/// `NOGROUP No such consumer group '<group>' for key name '<key>'`.
fn no_group_for_key(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Msg(
        format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            args::text(group),
            args::text(key)
        )
        .into(),
    )
}

/// An effect to propagate once the stream is no longer borrowed.
type Effect = Vec<Vec<u8>>;

/// Redis's `streamPropagateXCLAIM`: the idempotent XCLAIM that gives `id` to its consumer.
fn xclaim_effect(key: &[u8], group: &[u8], g: &Group, id: &[u8], nack: &Nack) -> Effect {
    vec![
        b"XCLAIM".to_vec(),
        key.to_vec(),
        group.to_vec(),
        nack.consumer.to_vec(),
        b"0".to_vec(),
        id.to_vec(),
        b"TIME".to_vec(),
        nack.delivery_time.to_string().into_bytes(),
        b"RETRYCOUNT".to_vec(),
        nack.delivery_count.to_string().into_bytes(),
        b"FORCE".to_vec(),
        b"JUSTID".to_vec(),
        b"LASTID".to_vec(),
        g.last_id.to_bytes(),
    ]
}

/// Redis's `streamPropagateGroupID`: `XGROUP SETID key group last ENTRIESREAD n`.
fn setid_effect(key: &[u8], group: &[u8], g: &Group) -> Effect {
    vec![
        b"XGROUP".to_vec(),
        b"SETID".to_vec(),
        key.to_vec(),
        group.to_vec(),
        g.last_id.to_bytes(),
        b"ENTRIESREAD".to_vec(),
        g.entries_read.to_string().into_bytes(),
    ]
}

/// Side effects of a group operation, applied once the stream borrow ends.
#[derive(Default)]
struct Outcome {
    effects: Vec<Effect>,
    dirty: u64,
    /// Consumers created (an `xgroup-createconsumer` event each).
    created: usize,
}

impl Outcome {
    fn apply(self, ctx: &mut Ctx<'_>, key: &[u8]) {
        let db = ctx.db;
        for _ in 0..self.created {
            ctx.notify('t', "xgroup-createconsumer", db, key);
        }
        ctx.dirty(self.dirty);
        for e in &self.effects {
            ctx.propagate(e);
        }
    }
}

/// Takes group `name` out of the stream for the duration of `f` (so that `f` may read the
/// stream while changing the group), then puts it back.
fn with_group<T>(
    s: &mut StreamValue,
    name: &[u8],
    f: impl FnOnce(&StreamValue, &mut Group) -> T,
) -> Option<T> {
    let (k, mut g) = s.groups.remove_entry(name)?;
    let r = f(s, &mut g);
    s.groups.insert(k, g);
    Some(r)
}

/// Looks a consumer up (refreshing its seen time), creating it if needed; returns whether it
/// was created.
fn ensure_consumer(g: &mut Group, name: &[u8], now: u64, out: &mut Outcome) -> bool {
    if g.consumer(name, Some(now)).is_some() {
        return false;
    }
    g.create_consumer(name, now);
    out.dirty += 1;
    out.created += 1;
    true
}

// ---------------------------------------------------------------------------------------------
// XGROUP

/// ```text
/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]
/// XGROUP SETID key group id|$ [ENTRIESREAD entries-read]
/// XGROUP DESTROY key group
/// XGROUP CREATECONSUMER key group consumer
/// XGROUP DELCONSUMER key group consumer
/// ```
///
/// One handler for all, as in Redis: the options, the key and the group are checked in the
/// same order whatever the subcommand.
fn xgroup(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let sub = ctx.cmd.name;
    let (create, setid) = (sub == "create", sub == "setid");
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_INVALID;
    let mut i = 5;
    while i < argv.len() {
        if create && is(argv[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && is(argv[i], "entriesread") && i + 1 < argv.len() {
            entries_read = args::int(argv[i + 1])?;
            if entries_read < 0 && entries_read != ENTRIES_READ_INVALID {
                return Err(CmdError::err(
                    "value for ENTRIESREAD must be positive or -1",
                ));
            }
            i += 2;
        } else {
            return Err(subcommand_syntax(argv));
        }
    }
    let (db, now, key, group) = (ctx.db, ctx.now, argv[2], argv[3]);
    let exists = write_stream(ctx.ks, db, key, now)?.is_some();
    if !mkstream {
        let Some(s) = write_stream(ctx.ks, db, key, now)? else {
            return Err(CmdError::err(
                "The XGROUP subcommand requires the key to exist. Note that for CREATE you may \
                 want to use the MKSTREAM option to create an empty stream automatically.",
            ));
        };
        if !s.groups.contains_key(group)
            && matches!(sub, "setid" | "createconsumer" | "delconsumer")
        {
            return Err(no_group_for_key(key, group));
        }
    }
    match sub {
        "create" if argv.len() <= 8 => xgroup_create(ctx, argv, exists, entries_read),
        "setid" if argv.len() == 5 || argv.len() == 7 => {
            let s = write_stream(ctx.ks, db, key, now)?.ok_or(CmdError::NoSuchKey)?;
            let id = if argv[4] == b"$" {
                s.last_id
            } else {
                id_arg(argv[4], 0, false)?
            };
            if let Some(g) = s.groups.get_mut(group) {
                g.last_id = id;
                g.entries_read = entries_read;
            }
            ctx.out.ok();
            ctx.dirty(1);
            ctx.notify('t', "xgroup-setid", db, key);
            Ok(())
        }
        "destroy" => {
            let s = write_stream(ctx.ks, db, key, now)?.ok_or(CmdError::NoSuchKey)?;
            if s.groups.remove(group).is_none() {
                ctx.out.integer(0);
                return Ok(());
            }
            ctx.out.integer(1);
            ctx.dirty(1);
            ctx.notify('t', "xgroup-destroy", db, key);
            // Readers blocked on the group get their NOGROUP error.
            ctx.srv.signal_key_ready(db, key);
            Ok(())
        }
        "createconsumer" => {
            let s = write_stream(ctx.ks, db, key, now)?.ok_or(CmdError::NoSuchKey)?;
            let created = s
                .groups
                .get_mut(group)
                .is_some_and(|g| g.create_consumer(argv[4], now));
            ctx.out.integer(i64::from(created));
            if created {
                ctx.dirty(1);
                ctx.notify('t', "xgroup-createconsumer", db, key);
            }
            Ok(())
        }
        "delconsumer" => {
            let s = write_stream(ctx.ks, db, key, now)?.ok_or(CmdError::NoSuchKey)?;
            let pending = s
                .groups
                .get_mut(group)
                .and_then(|g| g.delete_consumer(argv[4]));
            ctx.out.integer(pending.unwrap_or(0) as i64);
            if pending.is_some() {
                ctx.dirty(1);
                ctx.notify('t', "xgroup-delconsumer", db, key);
            }
            Ok(())
        }
        _ => Err(subcommand_syntax(argv)),
    }
}

/// XGROUP CREATE once its arguments and the key passed the shared checks.
fn xgroup_create(ctx: &mut Ctx<'_>, argv: &[&[u8]], exists: bool, entries_read: i64) -> CmdResult {
    let (db, now, key, group) = (ctx.db, ctx.now, argv[2], argv[3]);
    let id = if argv[4] == b"$" {
        read_stream(ctx.ks, db, key, now)?.map_or(StreamId::MIN, |s| s.last_id)
    } else {
        id_arg(argv[4], 0, true)?
    };
    if !exists {
        create_stream(ctx, key);
        ctx.signal_modified_key(db, key);
    }
    let s = write_stream(ctx.ks, db, key, now)?.ok_or(CmdError::NoSuchKey)?;
    if s.groups.contains_key(group) {
        return Err(CmdError::raw(
            "BUSYGROUP Consumer Group name already exists",
        ));
    }
    s.groups.insert(group.into(), Group::new(id, entries_read));
    ctx.out.ok();
    ctx.dirty(1);
    ctx.notify('t', "xgroup-create", db, key);
    Ok(())
}

/// ```text
/// XGROUP HELP
/// ```
fn xgroup_help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::command::reply_help(
        ctx.out,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XREADGROUP

/// One stream's part of an XREADGROUP reply: entries, or (history) an ID whose entry is gone.
enum Delivered {
    Entry(Item),
    Gone(StreamId),
}

/// What to read from one stream.
enum ReadFrom {
    /// `>`: entries never delivered to the group.
    New,
    /// An ID: the consumer's own pending entries after it.
    History(StreamId),
}

/// Reads entries from a consumer group, optionally blocking until new ones arrive.
///
/// ```text
/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK]
///     STREAMS key [key ...] id|> [id|> ...]
/// ```
fn xreadgroup(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    // Only the effects recorded below are propagated, never the command itself.
    ctx.propagate_nothing();
    let r = parse_read(ctx, argv, true)?;
    let Some((group, consumer)) = r.group else {
        return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
    };
    let again = rerun(ctx);
    let (db, now) = (ctx.db, ctx.now);
    let mut from = Vec::with_capacity(r.keys.len());
    for (k, &key) in r.keys.iter().enumerate() {
        let found = match read_stream(ctx.ks, db, key, now) {
            Err(CmdError::WrongType) if again => None,
            r => r?,
        };
        let has_group = found.map(|s| s.groups.contains_key(group));
        if again && has_group.is_none() {
            return Err(CmdError::raw("UNBLOCKED the stream key no longer exists"));
        }
        if has_group != Some(true) {
            if again {
                return Err(CmdError::raw(
                    "NOGROUP the consumer group this client was blocked on no longer exists",
                ));
            }
            return Err(no_group(key, group, " in XREADGROUP with GROUP option"));
        }
        from.push(match r.ids[k] {
            b"$" => {
                return Err(CmdError::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the \
                     history of this consumer by specifying a proper ID, or use the > ID to get \
                     new messages. The $ ID would just return an empty result set.",
                ))
            }
            b">" => ReadFrom::New,
            arg => ReadFrom::History(id_arg(arg, 0, true)?),
        });
    }
    let count = if again && r.count == 0 { 1000 } else { r.count };
    let mut served: Vec<(&[u8], Vec<Delivered>)> = Vec::new();
    for (k, &key) in r.keys.iter().enumerate() {
        let Some(s) = write_stream(ctx.ks, db, key, now)? else {
            continue;
        };
        let mut out = Outcome::default();
        let got = with_group(s, group, |s, g| match from[k] {
            ReadFrom::History(after) => {
                reader_consumer(g, (key, group, consumer), r.noack, now, &mut out);
                Some(read_history(s, g, consumer, after, count, now))
            }
            ReadFrom::New => {
                if s.is_empty() || s.last_valid_id() <= g.last_id {
                    return None;
                }
                reader_consumer(g, (key, group, consumer), r.noack, now, &mut out);
                Some(read_new(
                    s,
                    g,
                    (key, group, consumer),
                    count,
                    r.noack,
                    now,
                    &mut out,
                ))
            }
        })
        .flatten();
        let served_here = got.is_some();
        if let Some(items) = got {
            out.dirty += 1;
            served.push((key, items));
        }
        out.apply(ctx, key);
        if served_here && again {
            break;
        }
    }
    if !served.is_empty() {
        reply_delivered(ctx.out, &served);
        return Ok(());
    }
    let res = match r.block {
        Some(_) if again => {
            let fp = fingerprint(ctx, &r.keys);
            reblock_unserved(ctx, &r.keys, fp)
        }
        Some(ms) => block_on(ctx, &r.keys, ms),
        None => {
            ctx.out.null_array();
            return Ok(());
        }
    };
    // A group reader must learn that its key was deleted, overwritten or flushed (it then
    // fails, as in Redis), so any change to its keys wakes it, not only new entries.
    ctx.srv.blocking.wake_on_any_change(ctx.client.id);
    res
}

/// Finds or creates the reading consumer; a consumer a NOACK read creates is propagated
/// with `XGROUP CREATECONSUMER`, since no XCLAIM will carry it.
fn reader_consumer(
    g: &mut Group,
    (key, group, consumer): (&[u8], &[u8], &[u8]),
    noack: bool,
    now: u64,
    out: &mut Outcome,
) {
    if ensure_consumer(g, consumer, now, out) && noack {
        out.effects.push(vec![
            b"XGROUP".to_vec(),
            b"CREATECONSUMER".to_vec(),
            key.to_vec(),
            group.to_vec(),
            consumer.to_vec(),
        ]);
    }
}

/// New entries for the group (Redis `streamReplyWithRange` with a group): advances the
/// group's last ID and read counter, and unless NOACK records each entry as pending for the
/// consumer, with the XCLAIM that replicates it.
fn read_new(
    s: &StreamValue,
    g: &mut Group,
    (key, group, consumer): (&[u8], &[u8], &[u8]),
    count: usize,
    noack: bool,
    now: u64,
    out: &mut Outcome,
) -> Vec<Delivered> {
    let Some(start) = g.last_id.incr() else {
        return Vec::new();
    };
    let take = if count == 0 { usize::MAX } else { count };
    let items: Vec<Item> = s
        .range(start, StreamId::MAX, false)
        .take(take)
        .cloned()
        .collect();
    let mut moved = false;
    for it in &items {
        if it.id > g.last_id {
            advance_group(s, g, it.id);
            moved = true;
        }
        if !noack {
            g.assign(it.id, consumer, now, 1);
            if let Some(nack) = g.pel.get(&it.id) {
                out.effects
                    .push(xclaim_effect(key, group, g, &it.id.to_bytes(), nack));
            }
        }
    }
    if noack && moved {
        out.effects.push(setid_effect(key, group, g));
    }
    items.into_iter().map(Delivered::Entry).collect()
}

/// Moves the group's last delivered ID to `id`, keeping its read counter exact when it can.
fn advance_group(s: &StreamValue, g: &mut Group, id: StreamId) {
    if g.entries_read != ENTRIES_READ_INVALID && !s.range_has_tombstones(id, StreamId::MAX) {
        g.entries_read = g.entries_read.wrapping_add(1);
    } else if s.entries_added > 0 {
        g.entries_read = s
            .estimate_distance(id)
            .map_or(ENTRIES_READ_INVALID, |n| n as i64);
    }
    g.last_id = id;
}

/// The consumer's own pending entries after `after` (its history), each counted as delivered
/// again; entries deleted from the stream come back as their ID with no fields.
fn read_history(
    s: &StreamValue,
    g: &mut Group,
    consumer: &[u8],
    after: StreamId,
    count: usize,
    now: u64,
) -> Vec<Delivered> {
    let Some(start) = after.incr() else {
        return Vec::new();
    };
    let take = if count == 0 { usize::MAX } else { count };
    let ids: Vec<StreamId> = g
        .consumers
        .get(consumer)
        .map(|c| c.pel.range(start..).take(take).copied().collect())
        .unwrap_or_default();
    let mut got = Vec::with_capacity(ids.len());
    for id in ids {
        match s.get(id) {
            Some(it) => {
                if let Some(n) = g.pel.get_mut(&id) {
                    n.delivery_time = now;
                    n.delivery_count = n.delivery_count.wrapping_add(1);
                }
                got.push(Delivered::Entry(it.clone()));
            }
            None => got.push(Delivered::Gone(id)),
        }
    }
    got
}

/// Writes an XREADGROUP reply (a map of streams in RESP3).
fn reply_delivered(out: &mut ReplyBuf, served: &[(&[u8], Vec<Delivered>)]) {
    let resp3 = out.resp == crate::protocol::reply::Resp::V3;
    if resp3 {
        out.map(served.len());
    } else {
        out.array(served.len());
    }
    for (key, items) in served {
        if !resp3 {
            out.array(2);
        }
        out.bulk(key);
        out.array(items.len());
        for d in items {
            match d {
                Delivered::Entry(it) => reply_item(out, it),
                Delivered::Gone(id) => {
                    out.array(2);
                    reply_id(out, *id);
                    out.null_array();
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// XACK, XPENDING

/// Acknowledges pending entries, replying with how many were pending. Every ID is checked
/// first, so the command applies all or nothing.
///
/// ```text
/// XACK key group id [id ...]
/// ```
fn xack(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (db, now, key) = (ctx.db, ctx.now, argv[1]);
    let Some(s) = read_stream(ctx.ks, db, key, now)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    if !s.groups.contains_key(argv[2]) {
        ctx.out.integer(0);
        return Ok(());
    }
    let ids = argv[3..]
        .iter()
        .map(|a| id_arg(a, 0, true))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(s) = write_stream(ctx.ks, db, key, now)? else {
        return Err(CmdError::NoSuchKey);
    };
    let mut acked = 0;
    if let Some(g) = s.groups.get_mut(argv[2]) {
        acked = ids.into_iter().filter(|id| g.ack(*id)).count();
    }
    ctx.dirty(acked as u64);
    ctx.out.integer(acked as i64);
    Ok(())
}

/// Parses an XPENDING / XAUTOCLAIM range start or end (`(` for exclusive).
fn bound(arg: &[u8], missing_seq: u64, start: bool) -> Result<StreamId, CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = id_arg(&arg[1..], missing_seq, true)?;
        if start {
            id.incr()
                .ok_or_else(|| CmdError::err("invalid start ID for the interval"))
        } else {
            id.decr()
                .ok_or_else(|| CmdError::err("invalid end ID for the interval"))
        }
    } else {
        id_arg(arg, missing_seq, false)
    }
}

/// The pending entries of a group: a summary, or the entries in a range (of one consumer,
/// idle for at least IDLE ms).
///
/// ```text
/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
/// ```
fn xpending(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let n = argv.len();
    if n != 3 && !(6..=9).contains(&n) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    if n >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if is(argv[3], "idle") {
            min_idle = args::int(argv[4])?;
            if n < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = args::int(argv[at + 2])?.max(0);
        let start = bound(argv[at], 0, true)?;
        let end = bound(argv[at + 1], u64::MAX, false)?;
        range = Some((min_idle, start, end, count, argv.get(at + 3).copied()));
    }
    let (db, now, out) = (ctx.db, ctx.now, &mut *ctx.out);
    let (key, group) = (argv[1], argv[2]);
    let g = read_stream(ctx.ks, db, key, now)?.and_then(|s| s.groups.get(group));
    let Some(g) = g else {
        return Err(no_group(key, group, ""));
    };
    match range {
        None => pending_summary(out, g),
        Some((min_idle, start, end, count, consumer)) => {
            let pel: Vec<StreamId> = match consumer {
                Some(c) => match g.consumers.get(c) {
                    Some(c) => c
                        .pel
                        .range(start..)
                        .take_while(|id| **id <= end)
                        .copied()
                        .collect(),
                    None => {
                        out.array(0);
                        return Ok(());
                    }
                },
                None => g
                    .pel
                    .range(start..)
                    .take_while(|(id, _)| **id <= end)
                    .map(|(i, _)| *i)
                    .collect(),
            };
            let d = out.defer_len();
            let mut len = 0;
            for id in pel {
                if len >= count {
                    break;
                }
                let Some(nack) = g.pel.get(&id) else { continue };
                let idle = (now as i64).wrapping_sub(nack.delivery_time as i64);
                if min_idle != 0 && idle < min_idle {
                    continue;
                }
                len += 1;
                out.array(4);
                reply_id(out, id);
                out.bulk(&nack.consumer);
                out.integer(idle.max(0));
                out.integer(nack.delivery_count as i64);
            }
            out.set_deferred_len(d, b'*', len as usize);
        }
    }
    Ok(())
}

/// XPENDING's summary: count, smallest and largest pending IDs, and per consumer its count.
fn pending_summary(out: &mut ReplyBuf, g: &Group) {
    out.array(4);
    out.integer(g.pel.len() as i64);
    let (Some(first), Some(last)) = (g.pel.keys().next(), g.pel.keys().next_back()) else {
        out.null();
        out.null();
        out.null_array();
        return;
    };
    reply_id(out, *first);
    reply_id(out, *last);
    let busy: Vec<_> = g
        .consumers
        .iter()
        .filter(|(_, c)| !c.pel.is_empty())
        .collect();
    out.array(busy.len());
    for (name, c) in busy {
        out.array(2);
        out.bulk(name);
        out.bulk(c.pel.len().to_string().as_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// XCLAIM, XAUTOCLAIM

/// XCLAIM's options.
struct ClaimOpts {
    force: bool,
    justid: bool,
    /// Delivery time to set (from IDLE or TIME), or `None` for now.
    time: Option<i64>,
    retrycount: Option<i64>,
    last_id: StreamId,
}

/// Parses XCLAIM's trailing options (after the IDs).
fn claim_opts(argv: &[&[u8]], mut j: usize, now: u64) -> Result<ClaimOpts, CmdError> {
    let mut o = ClaimOpts {
        force: false,
        justid: false,
        time: None,
        retrycount: None,
        last_id: StreamId::MIN,
    };
    let int = |a: &[u8], what: &'static str| args::int(a).map_err(|_| CmdError::err(what));
    while j < argv.len() {
        let more = j + 1 < argv.len();
        let opt = argv[j];
        if is(opt, "force") {
            o.force = true;
        } else if is(opt, "justid") {
            o.justid = true;
        } else if is(opt, "idle") && more {
            j += 1;
            let idle = int(argv[j], "Invalid IDLE option argument for XCLAIM")?;
            o.time = Some((now as i64).wrapping_sub(idle));
        } else if is(opt, "time") && more {
            j += 1;
            o.time = Some(int(argv[j], "Invalid TIME option argument for XCLAIM")?);
        } else if is(opt, "retrycount") && more {
            j += 1;
            o.retrycount = Some(int(
                argv[j],
                "Invalid RETRYCOUNT option argument for XCLAIM",
            )?);
        } else if is(opt, "lastid") && more {
            j += 1;
            o.last_id = id_arg(argv[j], 0, true)?;
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized XCLAIM option '{}'",
                args::text(opt)
            )));
        }
        j += 1;
    }
    Ok(o)
}

/// Changes the owner of pending entries idle for at least `min-idle-time` ms; FORCE creates
/// missing pending entries (of existing stream entries).
///
/// ```text
/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-ms]
///     [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
/// ```
fn xclaim(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    ctx.propagate_nothing();
    let (db, now, key, group) = (ctx.db, ctx.now, argv[1], argv[2]);
    let has = read_stream(ctx.ks, db, key, now)?.is_some_and(|s| s.groups.contains_key(group));
    if !has {
        return Err(no_group(key, group, ""));
    }
    let min_idle = args::int(argv[4])
        .map_err(|_| CmdError::err("Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let syn = crate::keyspace::stream::IdSyntax {
        missing_seq: 0,
        strict: true,
        allow_auto_seq: false,
    };
    let mut j = 5;
    let mut ids = Vec::new();
    while j < argv.len() {
        match crate::keyspace::stream::parse_id(argv[j], syn) {
            Some((id, _)) => ids.push((id, j)),
            None => break,
        }
        j += 1;
    }
    let o = claim_opts(argv, j, now)?;
    let time = match o.time {
        Some(t) if t >= 0 && t <= now as i64 => t as u64,
        _ => now,
    };
    let Some(s) = write_stream(ctx.ks, db, key, now)? else {
        return Err(no_group(key, group, ""));
    };
    let mut out = Outcome::default();
    let claimed = with_group(s, group, |s, g| {
        let mut propagate_last_id = false;
        if o.last_id > g.last_id {
            g.last_id = o.last_id;
            propagate_last_id = true;
        }
        let mut claimed: Vec<Delivered> = Vec::new();
        let mut created = false;
        for &(id, arg) in &ids {
            let exists = s.get(id).is_some();
            if !exists {
                if let Some(nack) = g.pel.get(&id) {
                    out.effects
                        .push(xclaim_effect(key, group, g, argv[arg], nack));
                    propagate_last_id = false;
                    out.dirty += 1;
                    g.ack(id);
                }
                continue;
            }
            let pending = g.pel.get(&id).map(|n| (n.delivery_time, n.delivery_count));
            if pending.is_none() && !o.force {
                continue;
            }
            // An entry FORCE creates has no owner yet, so the idle check does not apply.
            if let Some((t, _)) = pending {
                let idle = (now as i64).wrapping_sub(t as i64);
                if min_idle != 0 && idle < min_idle {
                    continue;
                }
            }
            if !created {
                ensure_consumer(g, argv[3], now, &mut out);
                created = true;
            }
            // A pending entry FORCE creates starts as delivered once.
            let old_count = pending.map_or(1, |(_, c)| c);
            let count = match o.retrycount {
                Some(c) if c >= 0 => c as u64,
                _ if o.justid => old_count,
                _ => old_count.wrapping_add(1),
            };
            g.assign(id, argv[3], time, count);
            if let Some(nack) = g.pel.get(&id) {
                out.effects
                    .push(xclaim_effect(key, group, g, argv[arg], nack));
            }
            propagate_last_id = false;
            out.dirty += 1;
            claimed.push(match s.get(id) {
                Some(it) if !o.justid => Delivered::Entry(it.clone()),
                _ => Delivered::Gone(id),
            });
        }
        if propagate_last_id {
            out.effects.push(setid_effect(key, group, g));
            out.dirty += 1;
        }
        claimed
    })
    .unwrap_or_default();
    reply_claimed(ctx.out, &claimed);
    out.apply(ctx, key);
    Ok(())
}

/// Writes claimed entries: whole entries, or just IDs (JUSTID).
fn reply_claimed(out: &mut ReplyBuf, claimed: &[Delivered]) {
    out.array(claimed.len());
    for d in claimed {
        match d {
            Delivered::Entry(it) => reply_item(out, it),
            Delivered::Gone(id) => reply_id(out, *id),
        }
    }
}

/// Claims pending entries idle for at least `min-idle-time` ms, scanning the group's PEL from
/// `start`; replies with the cursor to continue from, the claimed entries, and the IDs of
/// pending entries whose stream entry was deleted (removed from the PEL).
///
/// ```text
/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
/// ```
fn xautoclaim(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    ctx.propagate_nothing();
    let min_idle = args::int(argv[4])
        .map_err(|_| CmdError::err("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let start = bound(argv[5], 0, true)?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < argv.len() {
        if is(argv[j], "count") && j + 1 < argv.len() {
            let max = i64::MAX / 16;
            count = match args::int(argv[j + 1]) {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => return Err(CmdError::err("COUNT must be > 0")),
            };
            j += 1;
        } else if is(argv[j], "justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let (db, now, key, group) = (ctx.db, ctx.now, argv[1], argv[2]);
    let has = read_stream(ctx.ks, db, key, now)?.is_some_and(|s| s.groups.contains_key(group));
    if !has {
        return Err(no_group(key, group, ""));
    }
    let Some(s) = write_stream(ctx.ks, db, key, now)? else {
        return Err(no_group(key, group, ""));
    };
    let mut out = Outcome::default();
    let consumer = argv[3];
    let r = with_group(s, group, |s, g| {
        autoclaim_scan(
            s,
            g,
            (key, group, consumer),
            start,
            count,
            min_idle,
            justid,
            now,
            &mut out,
        )
    });
    let Some((cursor, claimed, deleted)) = r else {
        return Err(no_group(key, group, ""));
    };
    let o = &mut *ctx.out;
    o.array(3);
    reply_id(o, cursor);
    reply_claimed(o, &claimed);
    o.array(deleted.len());
    for id in deleted {
        reply_id(o, id);
    }
    out.apply(ctx, key);
    Ok(())
}

/// The scan behind XAUTOCLAIM: at most `count` results (claimed or deleted) and 10 × `count`
/// PEL entries looked at. Returns the next cursor (0-0 at the end), the claimed entries and
/// the deleted IDs.
#[allow(clippy::too_many_arguments)]
fn autoclaim_scan(
    s: &StreamValue,
    g: &mut Group,
    (key, group, consumer): (&[u8], &[u8], &[u8]),
    start: StreamId,
    mut count: i64,
    min_idle: i64,
    justid: bool,
    now: u64,
    out: &mut Outcome,
) -> (StreamId, Vec<Delivered>, Vec<StreamId>) {
    let mut attempts = count.saturating_mul(10);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut created = false;
    let mut cursor = Some(start);
    while attempts > 0 && count > 0 {
        let Some(from) = cursor else { break };
        let Some((&id, nack)) = g.pel.range(from..).next() else {
            cursor = None;
            break;
        };
        attempts -= 1;
        cursor = id.incr();
        let Some(it) = s.get(id) else {
            out.effects
                .push(xclaim_effect(key, group, g, &id.to_bytes(), nack));
            out.dirty += 1;
            g.ack(id);
            deleted.push(id);
            count -= 1;
            continue;
        };
        let idle = (now as i64).wrapping_sub(nack.delivery_time as i64);
        if min_idle != 0 && idle < min_idle {
            continue;
        }
        let next_count = if justid {
            nack.delivery_count
        } else {
            nack.delivery_count.wrapping_add(1)
        };
        if !created {
            ensure_consumer(g, consumer, now, out);
            created = true;
        }
        g.assign(id, consumer, now, next_count);
        claimed.push(if justid {
            Delivered::Gone(id)
        } else {
            Delivered::Entry(it.clone())
        });
        count -= 1;
        if let Some(nack) = g.pel.get(&id) {
            out.effects
                .push(xclaim_effect(key, group, g, &id.to_bytes(), nack));
        }
        out.dirty += 1;
    }
    // The cursor is the next pending entry after the last one looked at.
    let next = cursor.and_then(|c| g.pel.range(c..).next().map(|(id, _)| *id));
    (next.unwrap_or(StreamId::MIN), claimed, deleted)
}

// ---------------------------------------------------------------------------------------------
// XINFO GROUPS / CONSUMERS

/// Writes a group's lag (null when it cannot be known).
fn reply_lag(out: &mut ReplyBuf, s: &StreamValue, g: &Group) {
    match s.group_lag(g) {
        Some(lag) => out.integer(lag),
        None => out.null(),
    }
}

/// Writes a group's read counter (null when unknown).
fn reply_entries_read(out: &mut ReplyBuf, g: &Group) {
    if g.entries_read == ENTRIES_READ_INVALID {
        out.null();
    } else {
        out.integer(g.entries_read);
    }
}

/// The groups of a stream.
///
/// ```text
/// XINFO GROUPS key
/// ```
pub(crate) fn xinfo_groups(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (db, now, out) = (ctx.db, ctx.now, &mut *ctx.out);
    let Some(s) = read_stream(ctx.ks, db, argv[2], now)? else {
        return Err(CmdError::NoSuchKey);
    };
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(6);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"consumers");
        out.integer(g.consumers.len() as i64);
        out.bulk(b"pending");
        out.integer(g.pel.len() as i64);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        reply_entries_read(out, g);
        out.bulk(b"lag");
        reply_lag(out, s, g);
    }
    Ok(())
}

/// The consumers of a group.
///
/// ```text
/// XINFO CONSUMERS key group
/// ```
pub(crate) fn xinfo_consumers(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (db, now, out) = (ctx.db, ctx.now, &mut *ctx.out);
    let Some(s) = read_stream(ctx.ks, db, argv[2], now)? else {
        return Err(CmdError::NoSuchKey);
    };
    let Some(g) = s.groups.get(argv[3]) else {
        return Err(no_group_for_key(argv[2], argv[3]));
    };
    out.array(g.consumers.len());
    for (name, c) in &g.consumers {
        out.map(3);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"pending");
        out.integer(c.pel.len() as i64);
        out.bulk(b"idle");
        out.integer((now as i64).wrapping_sub(c.seen_time as i64).max(0));
    }
    Ok(())
}

/// The `groups` part of XINFO STREAM FULL (`count` caps each PEL listed, 0 = all).
pub(crate) fn reply_groups_full(out: &mut ReplyBuf, s: &StreamValue, count: usize) {
    let cap = if count == 0 { usize::MAX } else { count };
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        reply_entries_read(out, g);
        out.bulk(b"lag");
        reply_lag(out, s, g);
        out.bulk(b"pel-count");
        out.integer(g.pel.len() as i64);
        out.bulk(b"pending");
        out.array(g.pel.len().min(cap));
        for (id, n) in g.pel.iter().take(cap) {
            out.array(4);
            reply_id(out, *id);
            out.bulk(&n.consumer);
            out.integer(n.delivery_time as i64);
            out.integer(n.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.integer(c.seen_time as i64);
            out.bulk(b"pel-count");
            out.integer(c.pel.len() as i64);
            out.bulk(b"pending");
            out.array(c.pel.len().min(cap));
            for id in c.pel.iter().take(cap) {
                let n = g.pel.get(id);
                out.array(3);
                reply_id(out, *id);
                out.integer(n.map_or(0, |n| n.delivery_time as i64));
                out.integer(n.map_or(0, |n| n.delivery_count as i64));
            }
        }
    }
}
