//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST (Redis `hyperloglog.c`).
//!
//! An HLL is a string value in Redis's exact byte layout (see [`crate::keyspace::hll`], which
//! holds the representation and the estimator); these handlers only look keys up, check that
//! the string is an HLL, and account for the change. Propagation follows Redis: PFADD and
//! PFMERGE go verbatim when they change something, PFCOUNT of one key goes verbatim when it
//! refreshed the cached cardinality stored in the value (so replicas and the log hold the same
//! bytes), PFDEBUG GETREG / TODENSE go verbatim when they changed the encoding.


use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::hll::{self, REGISTERS};
use crate::keyspace::{Keyspace, RString, Value};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("pfadd", -2, WRITE | DENYOOM | FAST, 1, 1, 1, pfadd),
    // Not a write, yet it may store the refreshed cache and then propagates itself.
    CommandSpec::new("pfcount", -2, READONLY | MAY_REPLICATE, 1, -1, 1, pfcount),
    CommandSpec::new("pfmerge", -2, WRITE | DENYOOM, 1, -1, 1, pfmerge),
    CommandSpec::new("pfdebug", 3, WRITE | DENYOOM | ADMIN, 2, 2, 1, pfdebug),
    CommandSpec::new("pfselftest", 1, ADMIN, 0, 0, 0, pfselftest),
];

/// A string that is not an HLL (bad magic, encoding or dense size, or an integer).
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// An HLL whose sparse body does not cover exactly the registers.
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

fn corrupt(_: hll::Corrupt) -> CmdError {
    CmdError::raw(CORRUPT)
}

/// The HLL bytes of a value and their encoding byte, with Redis's errors for other types and
/// for strings that are not HLLs (`isHLLObjectOrReply`).
fn hll_of(value: &Value) -> Result<(&[u8], u8), CmdError> {
    let bytes: &[u8] = match value {
        Value::Str(RString::Emb(b)) => b,
        Value::Str(RString::Raw(v)) => v,
        // An integer-encoded string is never an HLL (Redis checks `sdsEncodedObject`).
        Value::Str(RString::Int(_)) => return Err(CmdError::raw(NOT_HLL)),
        _ => return Err(CmdError::WrongType),
    };
    let enc = hll::encoding(bytes).ok_or(CmdError::raw(NOT_HLL))?;
    Ok((bytes, enc))
}

/// Checks that `value` is an HLL and returns its buffer for modification, converted to `raw`
/// (Redis's `dbUnshareStringValue`).
fn hll_mut(value: &mut Value) -> Result<&mut Vec<u8>, CmdError> {
    hll_of(value)?;
    match value {
        Value::Str(s) => Ok(s.make_raw()),
        _ => Err(CmdError::WrongType),
    }
}

/// The HLL at `key` for modification (looked up for writing), or `None` if the key is absent.
fn lookup_hll_mut<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut Vec<u8>>, CmdError> {
    match ks.lookup_write(db, key, now) {
        None => Ok(None),
        Some(e) => hll_mut(&mut e.value).map(Some),
    }
}

/// Finds the HLL at `key` for modification, creating an empty one (and its `new` event) if
/// the key is absent. Returns whether it was created.
fn hll_or_create(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<bool, CmdError> {
    let (db, now) = (ctx.db, ctx.now);
    if lookup_hll_mut(ctx.ks, db, key, now)?.is_some() {
        return Ok(false);
    }
    let value = Value::Str(RString::Raw(hll::new_sparse()));
    ctx.ks.db(db).set(key, value);
    ctx.notify('n', "new", db, key);
    Ok(true)
}

/// `hll-sparse-max-bytes`: the size past which a sparse HLL is promoted to dense.
fn sparse_max_bytes(ctx: &Ctx<'_>) -> usize {
    usize::try_from(ctx.srv.config.hll_sparse_max_bytes).unwrap_or(0)
}

/// Adds elements to the HLL at `key`, creating it if needed; 1 if a register changed (or the
/// key was created), else 0.
///
/// ```text
/// PFADD key [element [element ...]]
/// ```
///
/// On a corrupted sparse HLL it answers INVALIDOBJ; registers raised before the corruption
/// was met stay raised without being counted as a change, as in Redis.
fn pfadd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let max_bytes = sparse_max_bytes(ctx);
    let mut updated = u64::from(hll_or_create(ctx, key)?);
    let (db, now) = (ctx.db, ctx.now);
    let b = lookup_hll_mut(ctx.ks, db, key, now)?.ok_or(CmdError::NoSuchKey)?;
    for ele in &argv[2..] {
        if hll::add(b, ele, max_bytes).map_err(corrupt)? {
            updated += 1;
        }
    }
    if updated > 0 {
        hll::invalidate(b);
        ctx.signal_modified_key(db, key);
        ctx.notify('$', "pfadd", db, key);
        ctx.dirty(updated);
    }
    ctx.out.integer(i64::from(updated > 0));
    Ok(())
}

/// The estimated number of distinct elements added to the HLL, or to the union of several
/// HLLs (which are left unchanged). Missing keys count as empty HLLs.
///
/// ```text
/// PFCOUNT key [key ...]
/// ```
fn pfcount(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 2 {
        let mut max = [0u8; REGISTERS];
        merge_keys(ctx, &argv[1..], &mut max)?;
        // Redis replies with a signed integer even for the (unreachable in practice) 2^63.
        ctx.out.integer(hll::count_registers(&max) as i64);
        return Ok(());
    }
    let (key, db, now) = (argv[1], ctx.db, ctx.now);
    let Some(entry) = ctx.ks.lookup_read(db, key, now) else {
        ctx.out.integer(0);
        return Ok(());
    };
    let b = hll_mut(&mut entry.value)?;
    if let Some(card) = hll::cached(b) {
        ctx.out.integer(card as i64);
        return Ok(());
    }
    let card = hll::count(b).map_err(corrupt)?;
    hll::set_cached(b, card);
    // The cached value is part of the string: count it as a change and send the command on,
    // so that replicas and the log end up with the same bytes.
    ctx.signal_modified_key(db, key);
    ctx.dirty(1);
    ctx.propagate(argv);
    ctx.out.integer(card as i64);
    Ok(())
}

/// Raises `max` to the registers of every HLL in `keys` (read lookups; missing keys are
/// skipped). Returns whether any of them is dense.
fn merge_keys(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    max: &mut [u8; REGISTERS],
) -> Result<bool, CmdError> {
    let (db, now) = (ctx.db, ctx.now);
    let mut any_dense = false;
    for key in keys {
        let Some(entry) = ctx.ks.lookup_read(db, key, now) else {
            continue;
        };
        let (b, enc) = hll_of(&entry.value)?;
        any_dense |= enc == hll::DENSE;
        hll::merge_into(max, b).map_err(corrupt)?;
    }
    Ok(any_dense)
}

/// Merges the source HLLs (and the destination itself, if it exists) into `destkey`.
///
/// ```text
/// PFMERGE destkey [sourcekey [sourcekey ...]]
/// ```
///
/// The destination is dense if any input is; otherwise it stays sparse and is filled register
/// by register in index order, which gives byte for byte Redis's result.
fn pfmerge(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let mut max = [0u8; REGISTERS];
    let use_dense = merge_keys(ctx, &argv[1..], &mut max)?;
    let max_bytes = sparse_max_bytes(ctx);
    hll_or_create(ctx, key)?;
    let (db, now) = (ctx.db, ctx.now);
    let b = lookup_hll_mut(ctx.ks, db, key, now)?.ok_or(CmdError::NoSuchKey)?;
    if use_dense {
        hll::to_dense(b).map_err(corrupt)?;
    }
    for (i, &m) in max.iter().enumerate() {
        if m != 0 {
            // The destination was validated with the sources, so this cannot fail.
            hll::raise(b, i, m, max_bytes).map_err(corrupt)?;
        }
    }
    hll::invalidate(b);
    ctx.signal_modified_key(db, key);
    // A merge is a mass add: Redis reports it as `pfadd`.
    ctx.notify('$', "pfadd", db, key);
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

/// Debugging views of an HLL's representation.
///
/// ```text
/// PFDEBUG GETREG key      # the 16384 registers (converts a sparse HLL to dense)
/// PFDEBUG DECODE key      # the sparse opcodes as text
/// PFDEBUG ENCODING key    # sparse | dense
/// PFDEBUG TODENSE key     # converts to dense: 1 if it was sparse, else 0
/// ```
///
/// The key is checked before the subcommand, as in Redis, so a missing key wins over an
/// unknown subcommand.
fn pfdebug(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (sub, key) = (argv[1], argv[2]);
    let (db, now) = (ctx.db, ctx.now);
    let Some(b) = lookup_hll_mut(ctx.ks, db, key, now)? else {
        return Err(CmdError::err("The specified key does not exist"));
    };
    let sparse = b[4] == hll::SPARSE;
    match sub.to_ascii_lowercase().as_slice() {
        b"getreg" => {
            // The conversion changes the stored bytes, so it is counted (and propagated).
            let converted = hll::to_dense(b).map_err(corrupt)?;
            let regs: Vec<u8> = (0..REGISTERS)
                .map(|i| hll::dense_get(&b[hll::HDR..], i))
                .collect();
            if converted {
                ctx.dirty(1);
            }
            ctx.out.array(REGISTERS);
            for r in regs {
                ctx.out.integer(i64::from(r));
            }
        }
        b"decode" => {
            if !sparse {
                return Err(CmdError::err("HLL encoding is not sparse"));
            }
            let text = hll::decode_sparse(b);
            ctx.out.bulk(text.as_bytes());
        }
        b"encoding" => ctx.out.simple(if sparse { "sparse" } else { "dense" }),
        b"todense" => {
            let converted = hll::to_dense(b).map_err(corrupt)?;
            if converted {
                ctx.dirty(1);
            }
            ctx.out.integer(i64::from(converted));
        }
        _ => {
            let sub = String::from_utf8_lossy(sub);
            return Err(CmdError::err(format!("Unknown PFDEBUG subcommand '{sub}'")));
        }
    }
    Ok(())
}

/// Largest set the self test estimates (checkpoints at every power of ten up to it).
const SELFTEST_MAX_CARD: u64 = 10_000_000;

/// Tests this server's HLL implementation: packed register round trips, sparse and dense
/// estimates agreeing, and the estimation error over growing random sets. `+OK`, or a
/// `TESTFAILED` error saying what failed.
///
/// ```text
/// PFSELFTEST
/// ```
fn pfselftest(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let max_bytes = sparse_max_bytes(ctx);
    hll::self_test(&mut ctx.srv.rng, max_bytes, SELFTEST_MAX_CARD)
        .map_err(|e| CmdError::Msg(e.into()))?;
    ctx.out.ok();
    Ok(())
}
