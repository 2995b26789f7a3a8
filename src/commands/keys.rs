//! Generic key commands: DEL, EXISTS, EXPIRE*, TTL, TYPE, RENAME, COPY, MOVE, SCAN, KEYS,
//! OBJECT, SWAPDB, FLUSH*, DUMP, RESTORE ... (Redis `db.c`, `expire.c`, `object.c`,
//! `cluster.c`).

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::{expire, Db, Entry, Key, RString, Value, NO_EXPIRE};
use crate::snapshot::rdb_write;
use crate::util::glob;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, 1, -1, 1, del),
    CommandSpec::new("unlink", -2, WRITE | FAST, 1, -1, 1, unlink),
    CommandSpec::new("exists", -2, READONLY | FAST, 1, -1, 1, exists),
    CommandSpec::new("touch", -2, READONLY | FAST, 1, -1, 1, touch),
    CommandSpec::new("type", 2, READONLY | FAST, 1, 1, 1, type_cmd),
    CommandSpec::new("keys", 2, READONLY, 0, 0, 0, keys),
    CommandSpec::new("scan", -2, READONLY | TOUCHES_ARBITRARY_KEYS, 0, 0, 0, scan),
    CommandSpec::new("randomkey", 1, READONLY | TOUCHES_ARBITRARY_KEYS, 0, 0, 0, randomkey),
    CommandSpec::new("rename", 3, WRITE, 1, 2, 1, rename),
    CommandSpec::new("renamenx", 3, WRITE | FAST, 1, 2, 1, renamenx),
    CommandSpec::new("copy", -3, WRITE | DENYOOM, 1, 2, 1, copy),
    CommandSpec::new("move", 3, WRITE | FAST, 1, 1, 1, move_cmd),
    CommandSpec::new("expire", -3, WRITE | FAST, 1, 1, 1, expire_cmd),
    CommandSpec::new("pexpire", -3, WRITE | FAST, 1, 1, 1, pexpire),
    CommandSpec::new("expireat", -3, WRITE | FAST, 1, 1, 1, expireat),
    CommandSpec::new("pexpireat", -3, WRITE | FAST, 1, 1, 1, pexpireat),
    CommandSpec::new("ttl", 2, READONLY | FAST, 1, 1, 1, ttl),
    CommandSpec::new("pttl", 2, READONLY | FAST, 1, 1, 1, pttl),
    CommandSpec::new("expiretime", 2, READONLY | FAST, 1, 1, 1, expiretime),
    CommandSpec::new("pexpiretime", 2, READONLY | FAST, 1, 1, 1, pexpiretime),
    CommandSpec::new("persist", 2, WRITE | FAST, 1, 1, 1, persist),
    CommandSpec::container("object", -2, 0, OBJECT_SUBCOMMANDS),
    CommandSpec::new("swapdb", 3, WRITE | FAST, 0, 0, 0, swapdb),
    CommandSpec::new("flushdb", -1, WRITE, 0, 0, 0, flushdb),
    CommandSpec::new("flushall", -1, WRITE, 0, 0, 0, flushall),
    CommandSpec::new("dump", 2, READONLY, 1, 1, 1, dump),
    CommandSpec::new("restore", -4, WRITE | DENYOOM, 1, 1, 1, restore),
    // MIGRATE's RESTORE in cluster mode; a standalone redis-server runs it as RESTORE.
    CommandSpec::new("restore-asking", -4, WRITE | DENYOOM | ASKING, 1, 1, 1, restore),
];

const OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::sub("object", "encoding", 3, READONLY, 2, 2, 1, object_encoding),
    CommandSpec::sub("object", "freq", 3, READONLY, 2, 2, 1, object_freq),
    CommandSpec::sub("object", "help", 2, LOADING | STALE, 0, 0, 0, object_help),
    CommandSpec::sub("object", "idletime", 3, READONLY, 2, 2, 1, object_idletime),
    CommandSpec::sub("object", "refcount", 3, READONLY, 2, 2, 1, object_refcount),
];

const SAME_OBJECT: &str = "ERR source and destination objects are the same";
const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency \
    not tracked. Please note that when switching between policies at runtime LRU and LFU data \
    will take some time to adjust.";
const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. \
    Please note that when switching between policies at runtime LRU and LFU data will take some \
    time to adjust.";

/// Deletes keys and returns how many existed; with `lazyfree-lazy-user-del`, like UNLINK.
///
/// ```text
/// DEL key [key ...]
/// ```
fn del(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let lazy = ctx.srv.config.lazyfree_lazy_user_del;
    delete_keys(ctx, argv, lazy)
}

/// Deletes keys like DEL, but a value that is expensive to free (a big collection) is freed
/// on the lazy-free thread (`keyspace::lazyfree`), so the reply does not wait for it.
///
/// ```text
/// UNLINK key [key ...]
/// ```
fn unlink(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    delete_keys(ctx, argv, true)
}

fn delete_keys(ctx: &mut Ctx<'_>, argv: &[&[u8]], lazy: bool) -> CmdResult {
    let db = ctx.db;
    let mut n = 0;
    for key in &argv[1..] {
        if ctx.ks.lookup_write(db, key, ctx.now).is_some() {
            let entry = ctx.ks.db(db).remove(key);
            if let (true, Some(e)) = (lazy, entry) {
                crate::keyspace::lazyfree::free(e.value);
            }
            ctx.signal_modified_key(db, key);
            ctx.notify('g', "del", db, key);
            ctx.dirty(1);
            n += 1;
        }
    }
    ctx.out.integer(n);
    Ok(())
}

/// Counts the given keys that exist (a key named twice counts twice).
///
/// ```text
/// EXISTS key [key ...]
/// ```
fn exists(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db;
    let n = argv[1..]
        .iter()
        .filter(|k| ctx.ks.lookup_read_notouch(db, k, ctx.now).is_some());
    let n = n.count();
    ctx.out.integer(n as i64);
    Ok(())
}

/// Refreshes the access time of the given keys and returns how many exist.
///
/// ```text
/// TOUCH key [key ...]
/// ```
fn touch(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db;
    let n = argv[1..]
        .iter()
        .filter(|k| ctx.ks.lookup_read(db, k, ctx.now).is_some())
        .count();
    ctx.out.integer(n as i64);
    Ok(())
}

/// Returns the type of the value at `key`, or `none`.
///
/// ```text
/// TYPE key
/// ```
fn type_cmd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db;
    let name = match ctx.ks.lookup_read_notouch(db, argv[1], ctx.now) {
        Some(e) => e.value.type_name(),
        None => "none",
    };
    ctx.out.simple(name);
    Ok(())
}

/// Returns every key matching a glob pattern. Expired keys are skipped but, as in Redis, not
/// deleted here.
///
/// ```text
/// KEYS pattern
/// ```
fn keys(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let pat = argv[1];
    let all = pat == b"*";
    let found: Vec<&Key> = ctx
        .ks
        .live_keys(ctx.db, ctx.now)
        .filter(|(k, _)| all || glob::matches(pat, k, false))
        .map(|(k, _)| k)
        .collect();
    ctx.out.array(found.len());
    for k in found {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// Parses a SCAN cursor the way Redis does with `strtoul`: optional sign (a negative number
/// wraps), decimal digits, nothing else; an empty string is cursor 0.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let Some(&first) = arg.first() else {
        return Some(0);
    };
    if matches!(first, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        return None;
    }
    let (neg, digits) = match first {
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

/// SCAN options.
struct ScanOpts<'a> {
    count: usize,
    pattern: Option<&'a [u8]>,
    type_name: Option<&'a [u8]>,
}

fn parse_scan_opts<'a>(argv: &[&'a [u8]]) -> Result<ScanOpts<'a>, CmdError> {
    let mut o = ScanOpts {
        count: 10,
        pattern: None,
        type_name: None,
    };
    let mut i = 2;
    while i < argv.len() {
        let has_value = i + 1 < argv.len();
        if is(argv[i], "count") && has_value {
            let n = args::int(argv[i + 1])?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            o.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(argv[i], "match") && has_value {
            let p = argv[i + 1];
            o.pattern = (p != b"*").then_some(p);
        } else if is(argv[i], "type") && has_value {
            o.type_name = Some(argv[i + 1]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

/// Incrementally iterates the keys of the current database.
///
/// ```text
/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
/// ```
///
/// Cursors are positions in hash space (see `keyspace::table`): a key present for the whole
/// iteration is returned exactly once, even if the table grows in between. Filters apply after
/// the keys are gathered, so a call may return fewer than COUNT keys, or none, with a non-zero
/// cursor.
fn scan(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let cursor = parse_cursor(argv[1]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let opts = parse_scan_opts(argv)?;
    let (db, now) = (ctx.db, ctx.now);
    let mut batch: Vec<Key> = Vec::new();
    let next = ctx.ks.dbs[db].main.scan(cursor, opts.count, |k, _| {
        if opts.pattern.is_none_or(|p| glob::matches(p, k, false)) {
            batch.push(k.clone());
        }
    });
    batch.retain(|k| match opts.type_name {
        Some(t) => {
            let name = ctx
                .ks
                .lookup_read_notouch(db, k, now)
                .map_or("none", |e| e.value.type_name());
            t.eq_ignore_ascii_case(name.as_bytes())
        }
        // Deletes the key if it has expired, as Redis's expireIfNeeded does.
        None => ctx.ks.lookup_write(db, k, now).is_some(),
    });
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.array(batch.len());
    for k in &batch {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// Returns a random key of the current database, or nil when it is empty.
///
/// ```text
/// RANDOMKEY
/// ```
fn randomkey(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    match ctx.ks.random_key(ctx.db, ctx.now, &mut ctx.srv.rng) {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
    Ok(())
}

/// Renames a key, overwriting the destination.
///
/// ```text
/// RENAME key newkey
/// ```
fn rename(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    // Always true without NX: renaming a key to itself is a successful no-op.
    rename_generic(ctx, argv[1], argv[2], false)?;
    ctx.out.ok();
    Ok(())
}

/// Renames a key only if the destination does not exist; replies 1 if it did rename.
///
/// ```text
/// RENAMENX key newkey
/// ```
fn renamenx(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let renamed = rename_generic(ctx, argv[1], argv[2], true)?;
    ctx.out.integer(i64::from(renamed));
    Ok(())
}

/// Shared RENAME / RENAMENX logic. Returns whether the key was renamed; renaming a key to
/// itself is a successful no-op for RENAME and a refusal for RENAMENX, as in Redis.
fn rename_generic(ctx: &mut Ctx<'_>, from: &[u8], to: &[u8], nx: bool) -> Result<bool, CmdError> {
    let (db, now) = (ctx.db, ctx.now);
    if ctx.ks.lookup_write(db, from, now).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if from == to {
        return Ok(!nx);
    }
    if nx && ctx.ks.lookup_write(db, to, now).is_some() {
        return Ok(false);
    }
    // Applies lazy expiry to the destination, so an expired one propagates its own DEL first.
    ctx.ks.lookup_write(db, to, now);
    ctx.ks.db(db).rename(from, to);
    ctx.signal_modified_key(db, from);
    ctx.signal_modified_key(db, to);
    ctx.srv.signal_key_ready(db, to);
    // Redis deletes an existing destination and adds the key anew, so `to` is always new.
    ctx.notify('n', "new", db, to);
    ctx.notify('g', "rename_from", db, from);
    ctx.notify('g', "rename_to", db, to);
    ctx.dirty(1);
    Ok(true)
}

/// Parses a database number like Redis's `getIntFromObjectOrReply` followed by `selectDb`:
/// `custom` (when given) replaces both parse errors; then a range check against `databases`.
fn db_index(ctx: &Ctx<'_>, arg: &[u8], custom: Option<&'static str>) -> Result<usize, CmdError> {
    let n = args::int(arg).map_err(|e| custom.map_or(e, CmdError::raw))?;
    if i32::try_from(n).is_err() {
        return Err(CmdError::raw(custom.unwrap_or(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        )));
    }
    usize::try_from(n)
        .ok()
        .filter(|&i| i < ctx.ks.dbs.len())
        .ok_or(CmdError::DbIndexOutOfRange)
}

/// Copies a key's value (and expiry) to another key, possibly in another database.
///
/// ```text
/// COPY source destination [DB destination-db] [REPLACE]
/// ```
fn copy(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (src, now) = (ctx.db, ctx.now);
    let mut dst = src;
    let mut replace = false;
    let mut i = 3;
    while i < argv.len() {
        if is(argv[i], "replace") {
            replace = true;
        } else if is(argv[i], "db") && i + 1 < argv.len() {
            dst = db_index(ctx, argv[i + 1], None)?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let (key, newkey) = (argv[1], argv[2]);
    if src == dst && key == newkey {
        return Err(CmdError::raw(SAME_OBJECT));
    }
    let Some(e) = ctx.ks.lookup_read(src, key, now) else {
        ctx.out.integer(0);
        return Ok(());
    };
    let copy = Entry::new(e.value.clone());
    let expire_at = ctx.ks.dbs[src].expire_of(key).unwrap_or(NO_EXPIRE);
    if ctx.ks.lookup_write(dst, newkey, now).is_some() {
        if !replace {
            ctx.out.integer(0);
            return Ok(());
        }
        ctx.ks.db(dst).remove(newkey);
    }
    let lru = crate::keyspace::evict::new_access();
    ctx.ks.db(dst).insert_entry(newkey, copy, expire_at, lru);
    ctx.signal_modified_key(dst, newkey);
    ctx.srv.signal_key_ready(dst, newkey);
    ctx.notify('n', "new", dst, newkey);
    ctx.notify('g', "copy_to", dst, newkey);
    ctx.dirty(1);
    ctx.out.integer(1);
    Ok(())
}

/// Moves a key to another database, unless it already exists there.
///
/// ```text
/// MOVE key db
/// ```
fn move_cmd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (src, now, key) = (ctx.db, ctx.now, argv[1]);
    let dst = db_index(ctx, argv[2], None)?;
    if src == dst {
        return Err(CmdError::raw(SAME_OBJECT));
    }
    if ctx.ks.lookup_write(src, key, now).is_none() || ctx.ks.lookup_write(dst, key, now).is_some()
    {
        ctx.out.integer(0);
        return Ok(());
    }
    if let Some((entry, at, lru)) = ctx.ks.db(src).take(key) {
        ctx.ks.db(dst).insert_entry(key, entry, at, lru);
    }
    ctx.signal_modified_key(src, key);
    ctx.signal_modified_key(dst, key);
    ctx.srv.signal_key_ready(dst, key);
    ctx.notify('n', "new", dst, key);
    ctx.notify('g', "move_from", src, key);
    ctx.notify('g', "move_to", dst, key);
    ctx.dirty(1);
    ctx.out.integer(1);
    Ok(())
}

/// NX / XX / GT / LT of the EXPIRE family.
#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(opts: &[&[u8]]) -> Result<ExpireFlags, CmdError> {
    let mut f = ExpireFlags::default();
    for o in opts {
        if is(o, "nx") {
            f.nx = true;
        } else if is(o, "xx") {
            f.xx = true;
        } else if is(o, "gt") {
            f.gt = true;
        } else if is(o, "lt") {
            f.lt = true;
        } else {
            return Err(CmdError::err(format!(
                "Unsupported option {}",
                args::text(o)
            )));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(CmdError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if f.gt && f.lt {
        return Err(CmdError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    Ok(f)
}

impl ExpireFlags {
    /// Whether the condition allows replacing expiry `current` (-1 = none) by `when`.
    fn allow(&self, current: i64, when: i64) -> bool {
        !((self.nx && current != -1)
            || (self.xx && current == -1)
            || (self.gt && (current == -1 || when <= current))
            || (self.lt && current != -1 && when >= current))
    }
}

/// Sets a key's expiry in seconds from now.
///
/// ```text
/// EXPIRE key seconds [NX | XX | GT | LT]
/// ```
fn expire_cmd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let now = ctx.now as i64;
    expire_generic(ctx, argv, now, 1000)
}

/// Sets a key's expiry in milliseconds from now.
///
/// ```text
/// PEXPIRE key milliseconds [NX | XX | GT | LT]
/// ```
fn pexpire(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let now = ctx.now as i64;
    expire_generic(ctx, argv, now, 1)
}

/// Sets a key's expiry as a Unix time in seconds.
///
/// ```text
/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
/// ```
fn expireat(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, 0, 1000)
}

/// Sets a key's expiry as a Unix time in milliseconds.
///
/// ```text
/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
/// ```
fn pexpireat(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, argv, 0, 1)
}

/// The EXPIRE family (Redis `expireGenericCommand`): `base` is added to the argument after
/// scaling it by `unit` milliseconds. Negative times are allowed and delete the key.
///
/// Propagated as `PEXPIREAT key <abs-ms> [flags]`, or as `DEL key` (`UNLINK` with
/// lazyfree-lazy-expire) when the time is already past, so replicas never judge the expiry
/// against their own clock.
fn expire_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], base: i64, unit: i64) -> CmdResult {
    let key = argv[1];
    let flags = parse_expire_flags(&argv[3..])?;
    let bad_time = || CmdError::InvalidExpire(ctx.cmd.name.to_string());
    let when = args::int(argv[2])?;
    let when = when.checked_mul(unit).ok_or_else(bad_time)?;
    let when = when.checked_add(base).ok_or_else(bad_time)?;
    let (db, now) = (ctx.db, ctx.now);
    if ctx.ks.lookup_write(db, key, now).is_none() {
        ctx.out.integer(0);
        return Ok(());
    }
    let current = ctx.ks.dbs[db].expire_of(key).map_or(-1, |t| t as i64);
    if !flags.allow(current, when) {
        ctx.out.integer(0);
        return Ok(());
    }
    // A replica keeps the key and waits for its master's DEL.
    if when <= now as i64 && ctx.ks.expire_on_access {
        ctx.ks.db(db).remove(key);
        ctx.dirty(1);
        let del: &[u8] = if ctx.srv.config.lazyfree_lazy_expire {
            b"UNLINK"
        } else {
            b"DEL"
        };
        ctx.propagate(&[del, key]);
        ctx.signal_modified_key(db, key);
        ctx.notify('g', "del", db, key);
        ctx.out.integer(1);
        return Ok(());
    }
    // `when` is positive here: it is later than the current time (or we are a replica and
    // Redis would store it as is; a non-positive time would mean "no expiry" to us).
    ctx.ks.db(db).set_expire(key, when.max(1) as u64);
    let at = itoa::Buffer::new().format(when).as_bytes().to_vec();
    let mut effect: Vec<&[u8]> = vec![b"PEXPIREAT", key, &at];
    effect.extend_from_slice(&argv[3..]);
    ctx.propagate(&effect);
    ctx.signal_modified_key(db, key);
    ctx.notify('g', "expire", db, key);
    ctx.dirty(1);
    ctx.out.integer(1);
    Ok(())
}

/// Shared TTL logic: -2 if the key is absent, -1 if it has no expiry, else the remaining time
/// (`abs` = the absolute expiry instead), in ms or rounded to seconds.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], ms: bool, abs: bool) -> CmdResult {
    let now = ctx.now;
    let reply = match ctx.ks.lookup_read_notouch(ctx.db, key, now) {
        None => -2,
        Some(_) => match ctx.ks.dbs[ctx.db].expire_of(key) {
            None => -1,
            Some(at) => {
                let t = if abs {
                    at as i64
                } else {
                    (at as i64 - now as i64).max(0)
                };
                if ms {
                    t
                } else {
                    // Rounded to the nearest second; widened because `t` may be near i64::MAX.
                    ((i128::from(t) + 500) / 1000) as i64
                }
            }
        },
    };
    ctx.out.integer(reply);
    Ok(())
}

/// Remaining time to live in seconds.
///
/// ```text
/// TTL key
/// ```
fn ttl(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], false, false)
}

/// Remaining time to live in milliseconds.
///
/// ```text
/// PTTL key
/// ```
fn pttl(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], true, false)
}

/// Absolute expiry as a Unix time in seconds.
///
/// ```text
/// EXPIRETIME key
/// ```
fn expiretime(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], false, true)
}

/// Absolute expiry as a Unix time in milliseconds.
///
/// ```text
/// PEXPIRETIME key
/// ```
fn pexpiretime(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, argv[1], true, true)
}

/// Removes a key's expiry; replies 1 if it had one.
///
/// ```text
/// PERSIST key
/// ```
fn persist(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (db, key) = (ctx.db, argv[1]);
    let removed = ctx.ks.lookup_write(db, key, ctx.now).is_some() && ctx.ks.db(db).persist(key);
    if removed {
        ctx.signal_modified_key(db, key);
        ctx.notify('g', "persist", db, key);
        ctx.dirty(1);
    }
    ctx.out.integer(i64::from(removed));
    Ok(())
}

/// Looks a key up for OBJECT; writes nil and returns `None` if it is absent.
fn object_lookup<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Option<&'a mut Entry> {
    let found = ctx.ks.lookup_read_notouch(ctx.db, key, ctx.now).is_some();
    if !found {
        ctx.out.null();
        return None;
    }
    ctx.ks.dbs[ctx.db].main.get_mut(key)
}

fn lfu_policy(ctx: &Ctx<'_>) -> bool {
    ctx.srv.config.maxmemory_policy.contains("lfu")
}

/// Internal encoding of a key's value.
///
/// ```text
/// OBJECT ENCODING key
/// ```
fn object_encoding(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if let Some(e) = object_lookup(ctx, argv[2]) {
        let enc = e.value.encoding();
        ctx.out.bulk_str(enc);
    }
    Ok(())
}

/// Seconds since the key was last accessed; not tracked under an LFU policy.
///
/// ```text
/// OBJECT IDLETIME key
/// ```
fn object_idletime(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let lfu = lfu_policy(ctx);
    if object_lookup(ctx, argv[2]).is_some() {
        if lfu {
            return Err(CmdError::raw(LFU_SELECTED));
        }
        let lru = ctx.ks.dbs[ctx.db].lru_of(argv[2]).unwrap_or(0);
        let idle = expire::idle_ms(lru) / 1000;
        ctx.out.integer(idle as i64);
    }
    Ok(())
}

/// Logarithmic access counter of a key; only tracked under an LFU policy.
///
/// ```text
/// OBJECT FREQ key
/// ```
///
/// The counter is reported with the decay due since the key's last access applied.
fn object_freq(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let lfu = lfu_policy(ctx);
    if object_lookup(ctx, argv[2]).is_some() {
        if !lfu {
            return Err(CmdError::raw(LFU_NOT_SELECTED));
        }
        let lru = ctx.ks.dbs[ctx.db].lru_of(argv[2]).unwrap_or(0);
        let freq = crate::keyspace::evict::lfu_counter(lru);
        ctx.out.integer(i64::from(freq));
    }
    Ok(())
}

/// Reference count of a key's value. Like Redis, small non-negative integers are shared
/// objects (refcount `INT_MAX`) unless an LRU/LFU policy with a memory limit needs per-key
/// access data.
///
/// ```text
/// OBJECT REFCOUNT key
/// ```
fn object_refcount(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let cfg = &ctx.srv.config;
    let shares = cfg.maxmemory == 0
        || !(cfg.maxmemory_policy.contains("lru") || cfg.maxmemory_policy.contains("lfu"));
    if let Some(e) = object_lookup(ctx, argv[2]) {
        let shared =
            shares && matches!(e.value, Value::Str(RString::Int(n)) if (0..10_000).contains(&n));
        ctx.out
            .integer(if shared { i64::from(i32::MAX) } else { 1 });
    }
    Ok(())
}

/// ```text
/// OBJECT HELP
/// ```
fn object_help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    const LINES: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for l in LINES {
        ctx.out.simple(l);
    }
    Ok(())
}

/// Tells WATCH and client-side caching that every key of a database may have changed (Redis
/// `signalFlushedDb` / `touchAllWatchedKeysInDb`).
fn signal_db_changed(ctx: &mut Ctx<'_>, db: usize, other: Option<usize>) {
    ctx.srv.modification_epoch += 1;
    super::multi::touch_db(ctx, db, other);
}

/// Exchanges two databases: clients connected to one see the other's data at once.
///
/// ```text
/// SWAPDB index1 index2
/// ```
fn swapdb(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let a = db_index(ctx, argv[1], Some("ERR invalid first DB index"));
    let b = db_index(ctx, argv[2], Some("ERR invalid second DB index"));
    // Both arguments must be integers before either is range-checked, as in Redis.
    let (a, b) = match (a, b) {
        (Err(e), _) if e != CmdError::DbIndexOutOfRange => return Err(e),
        (_, Err(e)) if e != CmdError::DbIndexOutOfRange => return Err(e),
        (Ok(a), Ok(b)) => (a, b),
        _ => return Err(CmdError::DbIndexOutOfRange),
    };
    signal_db_changed(ctx, a, Some(b));
    signal_db_changed(ctx, b, Some(a));
    ctx.ks.swap_dbs(a, b);
    signal_waited_keys(ctx, a);
    signal_waited_keys(ctx, b);
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

/// After SWAPDB, signals every key of `db` that a blocked client waits on and that now holds
/// a value, so those clients re-run their command against the new data. Expired keys are
/// signalled too, as in Redis: the re-run finds them gone (deleting them) and blocks again.
fn signal_waited_keys(ctx: &mut Ctx<'_>, db: usize) {
    for key in ctx.srv.blocking.keys_waited_in(db) {
        if ctx.ks.db(db).peek(&key).is_some() {
            ctx.srv.signal_key_ready(db, &key);
        }
    }
}

/// Parses the optional ASYNC / SYNC of FLUSHDB and FLUSHALL; true means free asynchronously.
fn flush_async(ctx: &Ctx<'_>, argv: &[&[u8]]) -> Result<bool, CmdError> {
    match argv.len() {
        1 => Ok(ctx.srv.config.lazyfree_lazy_user_flush),
        2 if is(argv[1], "sync") => Ok(false),
        2 if is(argv[1], "async") => Ok(true),
        _ => Err(CmdError::Syntax),
    }
}

/// Empties the given databases and returns how many keys they held. With `lazy`, large
/// contents are freed on one helper thread so the event loop does not stall on millions of
/// frees (Redis's lazyfree of a flushed dictionary).
fn empty_dbs(ctx: &mut Ctx<'_>, dbs: std::ops::Range<usize>, lazy: bool) -> usize {
    // Cached keys are not per database: every tracking client is told all keys are invalid.
    ctx.srv.tracking_on_flush();
    let mut old: Vec<Db> = Vec::with_capacity(dbs.len());
    for db in dbs {
        signal_db_changed(ctx, db, None);
        signal_waited_keys(ctx, db);
        old.push(ctx.ks.db(db).take_all());
    }
    let n: usize = old.iter().map(Db::len).sum();
    if lazy && n > crate::keyspace::lazyfree::THRESHOLD {
        crate::keyspace::lazyfree::free_later(Box::new(old), n as u64);
    }
    n
}

/// Deletes every key of the current database.
///
/// ```text
/// FLUSHDB [ASYNC | SYNC]
/// ```
fn flushdb(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let lazy = flush_async(ctx, argv)?;
    let n = empty_dbs(ctx, ctx.db..ctx.db + 1, lazy);
    ctx.dirty(n as u64);
    // Propagated even when the database was already empty (Redis forces it).
    ctx.propagate(argv);
    ctx.out.ok();
    Ok(())
}

/// Deletes every key of every database.
///
/// ```text
/// FLUSHALL [ASYNC | SYNC]
/// ```
///
/// Counts one extra change on top of the keys removed, as Redis does, so that even a FLUSHALL
/// of an empty dataset marks it dirty.
fn flushall(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let lazy = flush_async(ctx, argv)?;
    let n = empty_dbs(ctx, 0..ctx.ks.dbs.len(), lazy);
    ctx.dirty(n as u64 + 1);
    // As in Redis, a snapshot in progress is abandoned and, with save points configured, the
    // empty dataset is saved at once, so a restart cannot bring the flushed keys back.
    crate::snapshot::engine::bgsave_abort(ctx.ks, ctx.srv);
    if !ctx.srv.config.save.is_empty() {
        let _ = crate::snapshot::engine::save(ctx.ks, ctx.srv);
    }
    ctx.propagate(argv);
    ctx.out.ok();
    Ok(())
}

/// The serialized value of a key, for RESTORE: Redis's payload (`formats/dump.md`), so that
/// redis-server can RESTORE it too.
///
/// ```text
/// DUMP key
/// ```
fn dump(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let opts = dump_options(ctx.srv);
    match ctx.ks.lookup_read(ctx.db, argv[1], ctx.now) {
        Some(e) => {
            let payload = crate::snapshot::dump::payload(&e.value, opts);
            ctx.out.bulk(&payload);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// What the configuration says about DUMP payloads (`rdbcompression`, the list node size).
pub(crate) fn dump_options(srv: &crate::server::ServerState) -> rdb_write::Options {
    rdb_write::Options {
        compress: srv.config.rdbcompression,
        list_fill: crate::snapshot::engine::encoding_limits(srv).list_fill,
    }
}

/// Creates a key from a DUMP payload.
///
/// ```text
/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
/// RESTORE-ASKING key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
/// ```
/// A relative TTL is propagated as an absolute one (`ABSTTL`), so replicas and the log expire
/// the key at the same instant; a TTL already in the past creates nothing (and deletes the key
/// a REPLACE removed, which is what propagates).
fn restore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    use crate::snapshot::dump::{self, PayloadError};
    let (db, key, now) = (ctx.db, argv[1], ctx.now);
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<u64>, Option<u8>) = (None, None);
    let mut j = 4;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        if is(argv[j], "replace") {
            replace = true;
        } else if is(argv[j], "absttl") {
            absttl = true;
        } else if is(argv[j], "idletime") && more && freq.is_none() {
            let v = args::int(argv[j + 1])?;
            if v < 0 {
                return Err(CmdError::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v as u64);
            j += 1;
        } else if is(argv[j], "freq") && more && idle.is_none() {
            let v = args::int(argv[j + 1])?;
            if !(0..=255).contains(&v) {
                return Err(CmdError::err("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(v as u8);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if !replace && ctx.ks.lookup_write(db, key, now).is_some() {
        return Err(CmdError::raw("BUSYKEY Target key name already exists."));
    }
    let ttl = args::int(argv[2])?;
    if ttl < 0 {
        return Err(CmdError::err("Invalid TTL value, must be >= 0"));
    }
    let limits = crate::snapshot::engine::encoding_limits(ctx.srv);
    let value = dump::parse(argv[3], limits).map_err(|e| match e {
        PayloadError::VersionOrChecksum => {
            CmdError::err("DUMP payload version or checksum are wrong")
        }
        PayloadError::BadData => CmdError::err("Bad data format"),
    })?;
    let deleted = replace && ctx.ks.lookup_write(db, key, now).is_some() && {
        ctx.ks.db(db).remove(key);
        true
    };
    let at = match (ttl, absttl) {
        (0, _) => NO_EXPIRE,
        (t, true) => t as u64,
        (t, false) => now.saturating_add(t as u64),
    };
    if at != NO_EXPIRE && at <= now {
        if deleted {
            ctx.signal_modified_key(db, key);
            ctx.notify('g', "del", db, key);
            ctx.dirty(1);
            ctx.propagate(&[&b"DEL"[..], key]);
        }
        ctx.out.ok();
        return Ok(());
    }
    let lru = crate::keyspace::evict::restored_access(freq, idle);
    ctx.ks.db(db).insert_entry(key, Entry::new(value), at, lru);
    if at != NO_EXPIRE && !absttl {
        let at = at.to_string();
        let mut rewritten: Vec<&[u8]> = argv.to_vec();
        rewritten[2] = at.as_bytes();
        rewritten.push(b"ABSTTL");
        ctx.propagate(&rewritten);
    }
    ctx.signal_modified_key(db, key);
    ctx.srv.signal_key_ready(db, key);
    ctx.notify('n', "new", db, key);
    ctx.notify('g', "restore", db, key);
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing_follows_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+12"), Some(12));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"1 "), None);
        assert_eq!(parse_cursor(b"abc"), None);
        assert_eq!(parse_cursor(b"-"), None);
    }

    #[test]
    fn expire_flag_rules() {
        let f = |o: &[&[u8]]| parse_expire_flags(o).map(|_| ()).map_err(|e| e.to_string());
        assert!(f(&[b"nx"]).is_ok());
        assert!(f(&[b"gt", b"xx"]).is_ok());
        assert_eq!(
            f(&[b"nx", b"xx"]).unwrap_err(),
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            f(&[b"gt", b"lt"]).unwrap_err(),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(f(&[b"foo"]).unwrap_err(), "ERR Unsupported option foo");
        let gt = ExpireFlags {
            gt: true,
            ..ExpireFlags::default()
        };
        assert!(!gt.allow(-1, 100));
        assert!(gt.allow(50, 100));
        let lt = ExpireFlags {
            lt: true,
            ..ExpireFlags::default()
        };
        assert!(lt.allow(-1, 100));
        assert!(!lt.allow(50, 100));
    }

    mod propagation {
        use std::rc::Rc;

        use crate::config::Config;
        use crate::dispatch;
        use crate::protocol::{ReplyBuf, Resp};
        use crate::server::client::{Client, ClientInfo, ClientShared};
        use crate::server::Server;

        fn setup() -> (Server, Client) {
            let mut cfg = Config::from_args(&[]).expect("default config");
            // No save points: FLUSHALL would write a snapshot into the working directory.
            cfg.set("save", "").expect("save");
            let mut srv = Server::new(cfg);
            srv.state.journal.attach();
            let addr = "127.0.0.1:1".parse().expect("addr");
            let shared = Rc::new(ClientShared::new(ClientInfo::new(1, addr, addr, -1)));
            (srv, Client::new(1, shared, true))
        }

        /// Runs a command and returns (reply, propagated bytes).
        fn run(srv: &mut Server, c: &mut Client, argv: &[&str]) -> (String, String) {
            let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
            let mut out = ReplyBuf::new(Resp::V2);
            dispatch::execute(srv, c, &mut out, &argv);
            let reply = String::from_utf8_lossy(&out.buf).into_owned();
            let effects = String::from_utf8_lossy(&srv.state.journal.take_pending()).into_owned();
            (reply, effects)
        }

        fn flat(resp: &str) -> String {
            let words = resp
                .split("\r\n")
                .filter(|l| !l.starts_with('*') && !l.starts_with('$'));
            words
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        }

        #[test]
        fn expire_family_propagates_absolute_pexpireat() {
            let (mut srv, mut c) = setup();
            run(&mut srv, &mut c, &["SET", "k", "v"]);
            let (r, e) = run(&mut srv, &mut c, &["EXPIRE", "k", "100", "nx"]);
            assert_eq!(r, ":1\r\n");
            let parts: Vec<String> = flat(&e).split(' ').map(String::from).collect();
            assert_eq!(
                &parts[parts.len() - 4..parts.len() - 2],
                &["PEXPIREAT", "k"]
            );
            let at: u64 = parts[parts.len() - 2].parse().expect("ms");
            let now = crate::util::time::now_ms();
            assert!(at > now + 95_000 && at <= now + 100_000, "{at} vs {now}");
            assert_eq!(parts[parts.len() - 1], "nx");
            // A failed condition propagates nothing.
            let (r, e) = run(&mut srv, &mut c, &["EXPIRE", "k", "100", "nx"]);
            assert_eq!((r.as_str(), e.as_str()), (":0\r\n", ""));
            // A time in the past deletes the key and propagates DEL.
            let (r, e) = run(&mut srv, &mut c, &["PEXPIREAT", "k", "1"]);
            assert_eq!(r, ":1\r\n");
            assert_eq!(flat(&e), "DEL k");
            let (_, e) = run(&mut srv, &mut c, &["EXPIRE", "k", "10"]);
            assert_eq!(e, "");
        }

        #[test]
        fn past_expire_propagates_unlink_with_lazyfree_lazy_expire() {
            let (mut srv, mut c) = setup();
            srv.state.config.lazyfree_lazy_expire = true;
            run(&mut srv, &mut c, &["SET", "k", "v"]);
            let (_, e) = run(&mut srv, &mut c, &["EXPIRE", "k", "-5"]);
            assert!(flat(&e).ends_with("UNLINK k"), "{e}");
        }

        #[test]
        fn flush_propagates_even_when_empty_and_rename_as_sent() {
            let (mut srv, mut c) = setup();
            let (r, e) = run(&mut srv, &mut c, &["FLUSHDB"]);
            assert_eq!(r, "+OK\r\n");
            assert!(flat(&e).ends_with("FLUSHDB"), "{e}");
            let (_, e) = run(&mut srv, &mut c, &["FLUSHALL", "ASYNC"]);
            assert!(flat(&e).ends_with("FLUSHALL ASYNC"), "{e}");
            run(&mut srv, &mut c, &["SET", "a", "1"]);
            let (_, e) = run(&mut srv, &mut c, &["RENAME", "a", "b"]);
            assert_eq!(flat(&e), "RENAME a b");
            let (_, e) = run(&mut srv, &mut c, &["MOVE", "b", "3"]);
            assert_eq!(flat(&e), "MOVE b 3");
            let (_, e) = run(&mut srv, &mut c, &["SWAPDB", "0", "3"]);
            assert_eq!(flat(&e), "SWAPDB 0 3");
            let (r, _) = run(&mut srv, &mut c, &["EXISTS", "b"]);
            assert_eq!(r, ":1\r\n");
            // Nothing changed: nothing propagated.
            let (_, e) = run(&mut srv, &mut c, &["RENAMENX", "b", "b"]);
            assert_eq!(e, "");
            let (_, e) = run(&mut srv, &mut c, &["PERSIST", "b"]);
            assert_eq!(e, "");
        }
    }
}
