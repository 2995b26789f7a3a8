//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD (Redis `bitops.c`).
//!
//! Bitmaps are strings; these commands read and modify them bit by bit. Bit 0 is the most
//! significant bit of the first byte. The bit arithmetic lives in small pure functions at the
//! top of the file's second half (`bits_*`, `field_*`), which the unit tests cover directly.
//! Every command here propagates verbatim: their effects do not depend on time or floats.

use super::args::{self, is};
use super::flags::*;
use super::string::{max_len, read_str, write_string};
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::{RString, Value};
use crate::util::num::parse_i64;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, WRITE | DENYOOM, 1, 1, 1, setbit),
    CommandSpec::new("getbit", 3, READONLY | FAST, 1, 1, 1, getbit),
    CommandSpec::new("bitcount", -2, READONLY, 1, 1, 1, bitcount),
    CommandSpec::new("bitpos", -3, READONLY, 1, 1, 1, bitpos),
    CommandSpec::new("bitop", -4, WRITE | DENYOOM, 2, -1, 1, bitop),
    CommandSpec::new("bitfield", -2, WRITE | DENYOOM, 1, 1, 1, bitfield),
    CommandSpec::new("bitfield_ro", -2, READONLY | FAST, 1, 1, 1, bitfield_ro),
];

/// Parses a bit offset (`#n` means `n * bits` when `hash_bits` is given) and checks that the
/// byte it falls in stays under `proto-max-bulk-len`, so no request can allocate more.
fn bit_offset(arg: &[u8], hash_bits: Option<u32>, max: u64) -> Result<u64, CmdError> {
    let (digits, mult) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&arg[1..], i64::from(bits)),
        _ => (arg, 1),
    };
    let n = parse_i64(digits)
        .and_then(|n| n.checked_mul(mult))
        .ok_or(CmdError::BitOffset)?;
    let n = u64::try_from(n).map_err(|_| CmdError::BitOffset)?;
    if n >> 3 >= max {
        return Err(CmdError::BitOffset);
    }
    Ok(n)
}

/// Finds or creates the string at `key` for a bit write reaching `max_bit`, converted to `raw`
/// and zero-padded to cover it (Redis's `lookupStringForBitCommand`). Returns whether the key
/// was created or grew.
fn bitmap_for_write<'a>(
    ctx: &'a mut Ctx<'_>,
    key: &[u8],
    max_bit: u64,
) -> Result<(&'a mut Vec<u8>, bool), CmdError> {
    let (db, now) = (ctx.db, ctx.now);
    let need = usize::try_from(max_bit / 8 + 1).map_err(|_| CmdError::BitOffset)?;
    if write_string(ctx.ks, db, key, now)?.is_none() {
        ctx.ks
            .db(db)
            .set(key, Value::Str(RString::Raw(vec![0; need])));
        // Redis creates the key even if no bit ends up written (BITFIELD OVERFLOW FAIL).
        ctx.notify('n', "new", db, key);
        let s = write_string(ctx.ks, db, key, now)?.ok_or(CmdError::NoSuchKey)?;
        return Ok((s.make_raw(), true));
    }
    let s = write_string(ctx.ks, db, key, now)?.ok_or(CmdError::NoSuchKey)?;
    Ok(s.grow_raw(need))
}

/// Sets or clears one bit and returns its previous value.
///
/// ```text
/// SETBIT key offset value
/// ```
fn setbit(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let key = argv[1];
    let offset = bit_offset(argv[2], None, max_len(ctx))?;
    let on = match parse_i64(argv[3]) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return Err(CmdError::err("bit is not an integer or out of range")),
    };
    let (buf, grew) = bitmap_for_write(ctx, key, offset)?;
    let old = bits_get(buf, offset);
    if grew || old != on {
        bits_set(buf, offset, on);
        let db = ctx.db;
        ctx.signal_modified_key(db, key);
        ctx.notify('$', "setbit", db, key);
        ctx.dirty(1);
    }
    ctx.out.integer(i64::from(old));
    Ok(())
}

/// Returns one bit (0 past the end of the string or for a missing key).
///
/// ```text
/// GETBIT key offset
/// ```
fn getbit(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let offset = bit_offset(argv[2], None, max_len(ctx))?;
    let (db, now) = (ctx.db, ctx.now);
    let bit = match read_str(ctx.ks, db, argv[1], now)? {
        Some(s) => s.with_bytes(|b| bits_get(b, offset)),
        None => false,
    };
    ctx.out.integer(i64::from(bit));
    Ok(())
}

/// Parses BITCOUNT/BITPOS's optional `BYTE | BIT` unit; true for BIT.
fn bit_unit(arg: Option<&&[u8]>) -> Result<bool, CmdError> {
    match arg {
        None => Ok(false),
        Some(a) if is(a, "bit") => Ok(true),
        Some(a) if is(a, "byte") => Ok(false),
        Some(_) => Err(CmdError::Syntax),
    }
}

/// Counts the set bits of the string, optionally within a range of bytes or bits.
///
/// ```text
/// BITCOUNT key [start end [BYTE | BIT]]
/// ```
fn bitcount(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (db, now) = (ctx.db, ctx.now);
    // A missing key answers 0 before its arguments are even looked at, as in Redis.
    let Some(s) = read_str(ctx.ks, db, argv[1], now)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let range = match argv.len() {
        2 => None,
        4 | 5 => {
            let start = args::int(argv[2])?;
            let end = args::int(argv[3])?;
            if start < 0 && end < 0 && start > end {
                ctx.out.integer(0);
                return Ok(());
            }
            Some((start, end, bit_unit(argv.get(4))?))
        }
        _ => return Err(CmdError::Syntax),
    };
    let n = s.with_bytes(|b| {
        let (sb, eb) = match range {
            None => (0, (b.len() as i64) * 8 - 1),
            Some((start, end, in_bits)) => bits_range(start, end, b.len(), in_bits),
        };
        if sb > eb {
            0
        } else {
            bits_count(b, sb as u64, eb as u64)
        }
    });
    ctx.out.integer(n as i64);
    Ok(())
}

/// Returns the position of the first bit set to 0 or 1, optionally within a range.
///
/// ```text
/// BITPOS key bit [start [end [BYTE | BIT]]]
/// ```
///
/// Looking for 0 without an explicit end finds the first bit past the string when every bit
/// in range is 1, because a string behaves as if padded with zeroes.
fn bitpos(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let bit = match args::int(argv[2])? {
        b @ (0 | 1) => b == 1,
        _ => return Err(CmdError::err("The bit argument must be 1 or 0.")),
    };
    let (db, now) = (ctx.db, ctx.now);
    let Some(s) = read_str(ctx.ks, db, argv[1], now)? else {
        ctx.out.integer(if bit { -1 } else { 0 });
        return Ok(());
    };
    if argv.len() > 6 {
        return Err(CmdError::Syntax);
    }
    let start = argv.get(3).map(|a| args::int(a)).transpose()?;
    let in_bits = bit_unit(argv.get(5))?;
    let end = argv.get(4).map(|a| args::int(a)).transpose()?;
    let pos = s.with_bytes(|b| {
        let (sb, eb) = bits_range(start.unwrap_or(0), end.unwrap_or(-1), b.len(), in_bits);
        match (sb <= eb).then(|| bits_find(b, bit, sb as u64, eb as u64)) {
            None => -1,
            Some(Some(p)) => p as i64,
            Some(None) if !bit && end.is_none() => b.len() as i64 * 8,
            Some(None) => -1,
        }
    });
    ctx.out.integer(pos);
    Ok(())
}

/// Combines strings bit by bit into `destkey` and returns the result's length.
///
/// ```text
/// BITOP <AND | OR | XOR | NOT> destkey key [key ...]
/// ```
fn bitop(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let op = match argv[1] {
        a if is(a, "and") => BitOp::And,
        a if is(a, "or") => BitOp::Or,
        a if is(a, "xor") => BitOp::Xor,
        a if is(a, "not") => BitOp::Not,
        _ => return Err(CmdError::Syntax),
    };
    if op == BitOp::Not && argv.len() != 4 {
        return Err(CmdError::err(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    let (db, now) = (ctx.db, ctx.now);
    let mut srcs = Vec::with_capacity(argv.len() - 3);
    for key in &argv[3..] {
        let s = read_str(ctx.ks, db, key, now)?;
        srcs.push(s.map(|s| s.as_bytes().into_owned()).unwrap_or_default());
    }
    let dest = argv[2];
    let res = bits_op(op, &srcs);
    let len = res.len();
    if len > 0 {
        let existed = ctx.ks.lookup_write(db, dest, now).is_some();
        ctx.ks.db(db).set(dest, Value::Str(RString::Raw(res)));
        ctx.signal_modified_key(db, dest);
        if !existed {
            ctx.notify('n', "new", db, dest);
        }
        ctx.notify('$', "set", db, dest);
        ctx.dirty(1);
    } else if ctx.ks.lookup_write(db, dest, now).is_some() {
        ctx.ks.db(db).remove(dest);
        ctx.signal_modified_key(db, dest);
        ctx.notify('g', "del", db, dest);
        ctx.dirty(1);
    }
    ctx.out.integer(len as i64);
    Ok(())
}

/// Reads and writes integers of arbitrary width at arbitrary bit offsets.
///
/// ```text
/// BITFIELD key [GET encoding offset | [OVERFLOW <WRAP | SAT | FAIL>]
///     <SET encoding offset value | INCRBY encoding offset increment> ...]
/// ```
fn bitfield(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, argv, false)
}

/// The read-only variant of BITFIELD: only GET is allowed.
///
/// ```text
/// BITFIELD_RO key [GET encoding offset ...]
/// ```
fn bitfield_ro(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, argv, true)
}

/// One BITFIELD operation, fully parsed.
#[derive(Debug, Clone, Copy)]
struct FieldOp {
    kind: FieldOpKind,
    ty: FieldType,
    offset: u64,
    overflow: Overflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldOpKind {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// Parses the BITFIELD subcommands; every error is reported before anything is touched.
fn parse_field_ops(argv: &[&[u8]], max: u64) -> Result<Vec<FieldOp>, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < argv.len() {
        let (sub, rem) = (argv[j], argv.len() - j - 1);
        let needs = if is(sub, "get") && rem >= 2 {
            2
        } else if (is(sub, "set") || is(sub, "incrby")) && rem >= 3 {
            3
        } else if is(sub, "overflow") && rem >= 1 {
            overflow = Overflow::parse(argv[j + 1])?;
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let ty = FieldType::parse(argv[j + 1])?;
        let offset = bit_offset(argv[j + 2], Some(ty.bits), max)?;
        let kind = match needs {
            2 => FieldOpKind::Get,
            _ if is(sub, "set") => FieldOpKind::Set(args::int(argv[j + 3])?),
            _ => FieldOpKind::IncrBy(args::int(argv[j + 3])?),
        };
        ops.push(FieldOp {
            kind,
            ty,
            offset,
            overflow,
        });
        j += 1 + needs;
    }
    Ok(ops)
}

fn bitfield_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], ro: bool) -> CmdResult {
    let key = argv[1];
    let ops = parse_field_ops(argv, max_len(ctx))?;
    let highest = ops
        .iter()
        .filter(|op| op.kind != FieldOpKind::Get)
        .map(|op| op.offset + u64::from(op.ty.bits) - 1)
        .max();
    let Some(highest) = highest else {
        return bitfield_read(ctx, key, &ops);
    };
    if ro {
        return Err(CmdError::err(
            "BITFIELD_RO only supports the GET subcommand",
        ));
    }
    let (buf, grew) = bitmap_for_write(ctx, key, highest)?;
    let mut replies = Vec::with_capacity(ops.len());
    let mut changes = 0;
    for op in &ops {
        let (reply, wrote) = field_apply(buf, op);
        replies.push(reply);
        // Like Redis, any successful write to a key that was just created or grown counts.
        if wrote.is_some_and(|changed| grew || changed) {
            changes += 1;
        }
    }
    ctx.out.array(replies.len());
    for r in replies {
        match r {
            Some(n) => ctx.out.integer(n),
            None => ctx.out.null(),
        }
    }
    if changes > 0 {
        let db = ctx.db;
        ctx.signal_modified_key(db, key);
        ctx.notify('$', "setbit", db, key);
        ctx.dirty(changes);
    }
    Ok(())
}

/// BITFIELD with only GETs: a plain read that never creates the key.
fn bitfield_read(ctx: &mut Ctx<'_>, key: &[u8], ops: &[FieldOp]) -> CmdResult {
    let (db, now) = (ctx.db, ctx.now);
    let s = read_str(ctx.ks, db, key, now)?;
    let out = &mut *ctx.out;
    out.array(ops.len());
    let mut read = |b: &[u8]| {
        for op in ops {
            out.integer(op.ty.to_i64(field_get(b, op.offset, op.ty.bits)));
        }
    };
    match s {
        Some(s) => s.with_bytes(read),
        None => read(&[]),
    }
    Ok(())
}

/// Applies one operation to `buf`, which covers every written field (a GET may read past
/// its end). Returns the reply (`None` when OVERFLOW FAIL refused the write) and, for a
/// write that happened, whether the stored bits changed.
fn field_apply(buf: &mut [u8], op: &FieldOp) -> (Option<i64>, Option<bool>) {
    let old = op.ty.to_i64(field_get(buf, op.offset, op.ty.bits));
    let exact = match op.kind {
        FieldOpKind::Get => return (Some(old), None),
        // An unsigned SET takes the argument's two's complement bits, as Redis's C does.
        FieldOpKind::Set(v) if !op.ty.signed => i128::from(v as u64),
        FieldOpKind::Set(v) => i128::from(v),
        FieldOpKind::IncrBy(d) => i128::from(old) + i128::from(d),
    };
    let Some(new) = op.ty.fit(exact, op.overflow) else {
        return (None, None);
    };
    field_set(buf, op.offset, op.ty.bits, new as u64);
    let reply = if matches!(op.kind, FieldOpKind::Set(_)) {
        old
    } else {
        new
    };
    (Some(reply), Some(new != old))
}

// ---- Pure bit arithmetic -------------------------------------------------------------------

/// BITOP's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// BITFIELD's overflow policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

impl Overflow {
    fn parse(arg: &[u8]) -> Result<Overflow, CmdError> {
        match arg {
            a if is(a, "wrap") => Ok(Overflow::Wrap),
            a if is(a, "sat") => Ok(Overflow::Sat),
            a if is(a, "fail") => Ok(Overflow::Fail),
            _ => Err(CmdError::err("Invalid OVERFLOW type specified")),
        }
    }
}

/// A BITFIELD integer type: `i1`..`i64` or `u1`..`u63`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldType {
    signed: bool,
    bits: u32,
}

impl FieldType {
    fn parse(arg: &[u8]) -> Result<FieldType, CmdError> {
        let bad = || {
            CmdError::err(
                "Invalid bitfield type. Use something like i16 u8. \
                 Note that u64 is not supported but i64 is.",
            )
        };
        let signed = match arg.first() {
            Some(b'i') => true,
            Some(b'u') => false,
            _ => return Err(bad()),
        };
        let bits = parse_i64(&arg[1..]).ok_or_else(bad)?;
        let limit = if signed { 64 } else { 63 };
        if !(1..=limit).contains(&bits) {
            return Err(bad());
        }
        Ok(FieldType {
            signed,
            bits: bits as u32,
        })
    }

    /// The value range as i128.
    fn bounds(self) -> (i128, i128) {
        if self.signed {
            let half = 1i128 << (self.bits - 1);
            (-half, half - 1)
        } else {
            (0, (1i128 << self.bits) - 1)
        }
    }

    /// Interprets raw field bits as this type's value.
    fn to_i64(self, raw: u64) -> i64 {
        if self.signed && self.bits < 64 && raw & (1 << (self.bits - 1)) != 0 {
            (raw | (u64::MAX << self.bits)) as i64
        } else {
            raw as i64
        }
    }

    /// Brings an exact result into range with the overflow policy; `None` for FAIL.
    fn fit(self, exact: i128, ow: Overflow) -> Option<i64> {
        let (min, max) = self.bounds();
        if (min..=max).contains(&exact) {
            return Some(exact as i64);
        }
        match ow {
            Overflow::Fail => None,
            Overflow::Sat => Some(exact.clamp(min, max) as i64),
            Overflow::Wrap => {
                let span = 1i128 << self.bits;
                let w = exact.rem_euclid(span);
                Some(if self.signed && w > max { w - span } else { w } as i64)
            }
        }
    }
}

/// Reads one bit; bits past the end are 0.
fn bits_get(buf: &[u8], off: u64) -> bool {
    usize::try_from(off >> 3)
        .ok()
        .and_then(|i| buf.get(i))
        .is_some_and(|b| b & (0x80 >> (off & 7)) != 0)
}

/// Writes one bit; `buf` must cover it.
fn bits_set(buf: &mut [u8], off: u64, on: bool) {
    let (i, mask) = ((off >> 3) as usize, 0x80u8 >> (off & 7));
    if on {
        buf[i] |= mask;
    } else {
        buf[i] &= !mask;
    }
}

/// Reads a `bits`-wide big-endian field at bit `off` (bits past the end are 0).
fn field_get(buf: &[u8], off: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0u64, |v, i| (v << 1) | u64::from(bits_get(buf, off + i)))
}

/// Writes the low `bits` bits of `v` at bit `off`; `buf` must cover them.
fn field_set(buf: &mut [u8], off: u64, bits: u32, v: u64) {
    for i in 0..bits {
        let bit = (v >> (bits - 1 - i)) & 1 == 1;
        bits_set(buf, off + u64::from(i), bit);
    }
}

/// Resolves BITCOUNT/BITPOS `start`/`end` (negative = from the end) to an inclusive range
/// of bit positions; empty when the first is greater than the second.
fn bits_range(start: i64, end: i64, len: usize, in_bits: bool) -> (i64, i64) {
    let total = if in_bits { len as i64 * 8 } else { len as i64 };
    let fix = |v: i64| if v < 0 { (total + v).max(0) } else { v };
    let (start, end) = (fix(start), fix(end).min(total - 1));
    if in_bits {
        (start, end)
    } else if start > end {
        (0, -1)
    } else {
        (start * 8, end * 8 + 7)
    }
}

/// Counts set bits in the inclusive bit range `sb..=eb` (within `buf`).
fn bits_count(buf: &[u8], sb: u64, eb: u64) -> u64 {
    let (first, last) = ((sb >> 3) as usize, (eb >> 3) as usize);
    let whole: u64 = buf[first..=last]
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum();
    let head = buf[first] & !(0xffu8 >> (sb & 7));
    let tail = buf[last] & (0x7fu8 >> (eb & 7));
    whole - u64::from(head.count_ones()) - u64::from(tail.count_ones())
}

/// Finds the first bit equal to `bit` in the inclusive range `sb..=eb` (within `buf`).
fn bits_find(buf: &[u8], bit: bool, sb: u64, eb: u64) -> Option<u64> {
    let skip = if bit { 0x00 } else { 0xff };
    let mut pos = sb;
    while pos <= eb {
        let byte = buf[(pos >> 3) as usize];
        if pos & 7 == 0 && eb - pos >= 7 && byte == skip {
            pos += 8;
            continue;
        }
        if bits_get(buf, pos) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// BITOP over byte strings; shorter inputs count as zero-padded. The result is as long as the
/// longest input.
fn bits_op(op: BitOp, srcs: &[Vec<u8>]) -> Vec<u8> {
    let len = srcs.iter().map(Vec::len).max().unwrap_or(0);
    let byte = |s: &Vec<u8>, i: usize| s.get(i).copied().unwrap_or(0);
    (0..len)
        .map(|i| {
            let rest = srcs.iter().skip(1).map(|s| byte(s, i));
            let first = byte(&srcs[0], i);
            match op {
                BitOp::And => rest.fold(first, |a, b| a & b),
                BitOp::Or => rest.fold(first, |a, b| a | b),
                BitOp::Xor => rest.fold(first, |a, b| a ^ b),
                BitOp::Not => !first,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn offsets_are_checked_against_the_size_limit() {
        let max = 512 * 1024 * 1024;
        assert_eq!(bit_offset(b"7", None, max), Ok(7));
        assert_eq!(bit_offset(b"#3", Some(8), max), Ok(24));
        assert_eq!(bit_offset(b"#3", None, max), Err(CmdError::BitOffset));
        assert_eq!(bit_offset(b"-1", None, max), Err(CmdError::BitOffset));
        assert_eq!(
            bit_offset(b"4294967296", None, max),
            Err(CmdError::BitOffset)
        );
        assert_eq!(bit_offset(b"4294967295", None, max), Ok(4294967295));
        assert_eq!(
            bit_offset(b"#9223372036854775807", Some(2), max),
            Err(CmdError::BitOffset)
        );
    }

    #[test]
    fn field_types_parse_like_redis() {
        assert_eq!(
            FieldType::parse(b"i64"),
            Ok(FieldType {
                signed: true,
                bits: 64
            })
        );
        assert_eq!(
            FieldType::parse(b"u63"),
            Ok(FieldType {
                signed: false,
                bits: 63
            })
        );
        assert!(FieldType::parse(b"u64").is_err());
        assert!(FieldType::parse(b"i0").is_err());
        assert!(FieldType::parse(b"I8").is_err());
        assert!(FieldType::parse(b"x").is_err());
    }

    #[test]
    fn overflow_policies() {
        let u8t = FieldType {
            signed: false,
            bits: 8,
        };
        let i8t = FieldType {
            signed: true,
            bits: 8,
        };
        assert_eq!(u8t.fit(256, Overflow::Wrap), Some(0));
        assert_eq!(u8t.fit(-1, Overflow::Wrap), Some(255));
        assert_eq!(u8t.fit(300, Overflow::Sat), Some(255));
        assert_eq!(u8t.fit(-5, Overflow::Sat), Some(0));
        assert_eq!(u8t.fit(300, Overflow::Fail), None);
        assert_eq!(i8t.fit(128, Overflow::Wrap), Some(-128));
        assert_eq!(i8t.fit(-129, Overflow::Sat), Some(-128));
        let i64t = FieldType {
            signed: true,
            bits: 64,
        };
        assert_eq!(
            i64t.fit(i128::from(i64::MAX) + 1, Overflow::Wrap),
            Some(i64::MIN)
        );
    }

    #[test]
    fn bit_ranges_match_bitcount() {
        assert_eq!(bits_range(0, -1, 3, false), (0, 23));
        assert_eq!(bits_range(1, 1, 3, false), (8, 15));
        assert_eq!(bits_range(5, 30, 3, true), (5, 23));
        assert!(bits_range(2, 1, 3, false).0 > bits_range(2, 1, 3, false).1);
        assert!(bits_range(0, -1, 0, false).0 > bits_range(0, -1, 0, false).1);
        assert_eq!(bits_count(b"\xff\xf0", 4, 11), 8);
        assert_eq!(bits_find(b"\xff\xf0", false, 0, 15), Some(12));
        assert_eq!(bits_find(b"\x00\x01", true, 0, 15), Some(15));
        assert_eq!(bits_find(b"\x00\x01", true, 0, 14), None);
    }

    #[test]
    fn bitop_pads_with_zeroes() {
        let s = vec![b"\xff\x0f".to_vec(), b"\x0f".to_vec()];
        assert_eq!(bits_op(BitOp::And, &s), b"\x0f\x00");
        assert_eq!(bits_op(BitOp::Or, &s), b"\xff\x0f");
        assert_eq!(bits_op(BitOp::Xor, &s), b"\xf0\x0f");
        assert_eq!(bits_op(BitOp::Not, &s[1..]), b"\xf0");
        assert_eq!(bits_op(BitOp::Or, &[Vec::new()]), b"");
    }

    #[test]
    fn writes_that_change_nothing_propagate_nothing() {
        use crate::commands::string::tests::{resp, Harness};
        let mut h = Harness::new();
        assert_eq!(
            h.run(&["SETBIT", "b", "3", "0"]),
            (":0\r\n".into(), resp(&["SETBIT", "b", "3", "0"]))
        );
        assert_eq!(h.encoding("b"), "raw");
        assert_eq!(h.run(&["SETBIT", "b", "3", "0"]).1, "");
        let (reply, prop) = h.run(&[
            "BITFIELD", "b", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9",
        ]);
        assert_eq!((reply.as_str(), prop.as_str()), ("*1\r\n$-1\r\n", ""));
        assert_eq!(
            h.run(&["BITFIELD", "b", "SET", "u8", "0", "1"]).1,
            resp(&["BITFIELD", "b", "SET", "u8", "0", "1"])
        );
        assert_eq!(
            h.run(&["BITOP", "AND", "d", "none"]),
            (":0\r\n".into(), String::new())
        );
        h.run(&["BITOP", "NOT", "d", "b"]);
        assert_eq!(
            h.run(&["BITOP", "OR", "d", "none"]).1,
            resp(&["BITOP", "OR", "d", "none"])
        );
        assert_eq!(h.encoding("d"), "none");
    }

    #[test]
    fn bitfield_get_past_a_write_reads_zero() {
        use crate::commands::string::tests::{resp, Harness};
        let mut h = Harness::new();
        let args = ["BITFIELD", "k", "SET", "u8", "0", "7", "GET", "u8", "8000", "GET", "u8", "0"];
        assert_eq!(h.run(&args), ("*3\r\n:0\r\n:0\r\n:7\r\n".into(), resp(&args)));
        let args = ["BITFIELD", "k", "GET", "u8", "0", "SET", "u8", "0", "7"];
        assert_eq!(h.run(&args), ("*2\r\n:7\r\n:7\r\n".into(), String::new()));
    }

    proptest! {
        #[test]
        fn field_roundtrip(off in 0u64..64, bits in 1u32..=64, v: u64) {
            let mut buf = vec![0u8; 17];
            let masked = if bits == 64 { v } else { v & ((1u64 << bits) - 1) };
            field_set(&mut buf, off, bits, v);
            prop_assert_eq!(field_get(&buf, off, bits), masked);
            let ones: u32 = buf.iter().map(|b| b.count_ones()).sum();
            prop_assert_eq!(ones, masked.count_ones());
        }

        #[test]
        fn count_and_find_agree_with_naive(buf in proptest::collection::vec(any::<u8>(), 1..12),
                                           a in 0u64..96, b in 0u64..96, bit: bool) {
            let total = buf.len() as u64 * 8;
            let (sb, eb) = (a.min(b) % total, a.max(b) % total);
            prop_assume!(sb <= eb);
            let naive: Vec<bool> = (sb..=eb).map(|i| bits_get(&buf, i)).collect();
            prop_assert_eq!(bits_count(&buf, sb, eb), naive.iter().filter(|x| **x).count() as u64);
            let first = naive.iter().position(|x| *x == bit).map(|p| sb + p as u64);
            prop_assert_eq!(bits_find(&buf, bit, sb, eb), first);
        }

        #[test]
        fn wrap_is_modular(
            bits in 1u32..=63,
            signed: bool,
            exact in -(1i128 << 70)..(1i128 << 70),
        ) {
            let ty = FieldType { signed, bits: if signed { bits + 1 } else { bits } };
            let v = i128::from(ty.fit(exact, Overflow::Wrap).unwrap());
            let (min, max) = ty.bounds();
            prop_assert!(v >= min && v <= max);
            prop_assert_eq!((v - exact).rem_euclid(1i128 << ty.bits), 0);
        }
    }
}
