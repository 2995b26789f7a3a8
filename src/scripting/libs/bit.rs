//! `bit`: LuaBitOp 1.0.2 (what Redis bundles as `lua_bit.c`), 32-bit bitwise operations on
//! Lua numbers.
//!
//! Every argument is first normalised to a 32-bit integer: the number is added to 2^52+2^51
//! so the low 32 bits of its double representation hold it rounded to an integer modulo
//! 2^32; results come back as signed 32-bit numbers.

use mlua::{Lua, MultiValue, Table, Value};

use super::{to_number, type_err};

/// Installs the `bit` global.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    add_unary(lua, &t, "tobit", |b| b)?;
    add_unary(lua, &t, "bnot", |b| !b)?;
    add_unary(lua, &t, "bswap", u32::swap_bytes)?;
    add_fold(lua, &t, "band", |a, b| a & b)?;
    add_fold(lua, &t, "bor", |a, b| a | b)?;
    add_fold(lua, &t, "bxor", |a, b| a ^ b)?;
    add_shift(lua, &t, "lshift", |b, n| b << n)?;
    add_shift(lua, &t, "rshift", |b, n| b >> n)?;
    add_shift(lua, &t, "arshift", |b, n| ((b as i32) >> n) as u32)?;
    add_shift(lua, &t, "rol", u32::rotate_left)?;
    add_shift(lua, &t, "ror", u32::rotate_right)?;
    t.set("tohex", lua.create_function(tohex)?)?;
    lua.globals().set("bit", t)
}

/// Reads argument `n` (1-based) as a 32-bit pattern. Like the C library, only a result of 0
/// from something that is not a number is an error (so `bit.tobit(nil)` fails).
fn barg(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<u32> {
    let v = args.get(n - 1);
    let num = v.and_then(|v| to_number(lua, v));
    let bits = (num.unwrap_or(0.0) + 6_755_399_441_055_744.0).to_bits() as u32;
    if bits == 0 && num.is_none() {
        return Err(type_err(lua, n, "number", v));
    }
    Ok(bits)
}

/// The number a 32-bit result is returned as (signed).
fn bret(b: u32) -> f64 {
    f64::from(b as i32)
}

fn add_unary(lua: &Lua, t: &Table, name: &'static str, op: fn(u32) -> u32) -> mlua::Result<()> {
    let f = lua.create_function(move |lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        Ok(bret(op(barg(lua, &args, 1)?)))
    })?;
    t.set(name, f)
}

/// `band` / `bor` / `bxor`: fold every argument (the C code reads them last to first, which
/// decides which bad argument is reported).
fn add_fold(lua: &Lua, t: &Table, name: &'static str, op: fn(u32, u32) -> u32) -> mlua::Result<()> {
    let f = lua.create_function(move |lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        let mut acc = barg(lua, &args, 1)?;
        for n in (2..=args.len()).rev() {
            acc = op(acc, barg(lua, &args, n)?);
        }
        Ok(bret(acc))
    })?;
    t.set(name, f)
}

/// Shifts and rotations: the count is taken modulo 32.
fn add_shift(
    lua: &Lua,
    t: &Table,
    name: &'static str,
    op: fn(u32, u32) -> u32,
) -> mlua::Result<()> {
    let f = lua.create_function(move |lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        let b = barg(lua, &args, 1)?;
        let n = barg(lua, &args, 2)? & 31;
        Ok(bret(op(b, n)))
    })?;
    t.set(name, f)
}

/// `bit.tohex(x [, n])`: `n` hex digits (default 8, at most 8), upper case when `n` < 0.
fn tohex(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let args: Vec<Value> = args.into_iter().collect();
    let mut b = barg(lua, &args, 1)?;
    let mut n = if args.len() < 2 {
        8
    } else {
        barg(lua, &args, 2)? as i32
    };
    let digits: &[u8; 16] = if n < 0 {
        n = n.wrapping_neg();
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    // i32::MIN stays negative after negation; Redis's build then prints 8 digits.
    let n = if n < 0 { 8 } else { n.min(8) as usize };
    let mut buf = vec![0u8; n];
    for slot in buf.iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    lua.create_string(&buf)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::check;

    #[test]
    fn matches_redis() {
        check(&[
            // CASES-BIT
            ("bit.tobit(0xffffffff)", "-1"),
            ("bit.tobit(2^32 + 5)", "5"),
            ("bit.tobit(1.5)", "2"),
            ("bit.tobit(2.5)", "2"),
            ("bit.tobit(-1.5)", "-2"),
            ("bit.tobit(\"12\")", "12"),
            ("bit.tobit(\"0x10\")", "16"),
            ("bit.tobit(2^53)", "0"),
            ("bit.tobit(-2^31)", "-2147483648"),
            (
                "bit.tobit()",
                "ERR:user_script:1: bad argument #1 to 'tobit' (number expected, got no value)",
            ),
            (
                "bit.tobit(nil)",
                "ERR:user_script:1: bad argument #1 to 'tobit' (number expected, got nil)",
            ),
            (
                "bit.tobit({})",
                "ERR:user_script:1: bad argument #1 to 'tobit' (number expected, got table)",
            ),
            (
                "bit.tobit(\"abc\")",
                "ERR:user_script:1: bad argument #1 to 'tobit' (number expected, got string)",
            ),
            ("bit.tobit(0/0)", "0"),
            ("bit.tobit(1/0)", "0"),
            ("bit.bnot(0)", "-1"),
            ("bit.bnot(5)", "-6"),
            ("bit.band(0xff, 0x0f, 0x3c)", "12"),
            ("bit.band(1)", "1"),
            ("bit.bor(1, 2, 4, 8)", "15"),
            ("bit.bxor(5, 3)", "6"),
            (
                "bit.band(1, nil, 3)",
                "ERR:user_script:1: bad argument #2 to 'band' (number expected, got nil)",
            ),
            (
                "bit.band(1, \"x\", nil)",
                "ERR:user_script:1: bad argument #3 to 'band' (number expected, got nil)",
            ),
            (
                "bit.bor()",
                "ERR:user_script:1: bad argument #1 to 'bor' (number expected, got no value)",
            ),
            ("bit.lshift(1, 31)", "-2147483648"),
            ("bit.lshift(1, 32)", "1"),
            ("bit.lshift(1, 33)", "2"),
            ("bit.rshift(-1, 28)", "15"),
            ("bit.arshift(-256, 4)", "-16"),
            ("bit.arshift(256, 4)", "16"),
            ("bit.rol(0x12345678, 8)", "878082066"),
            ("bit.ror(0x12345678, 8)", "2014458966"),
            ("bit.rol(1, -1)", "-2147483648"),
            ("bit.bswap(0x12345678)", "2018915346"),
            ("bit.bswap(-1)", "-1"),
            (
                "bit.lshift(1)",
                "ERR:user_script:1: bad argument #2 to 'lshift' (number expected, got no value)",
            ),
            ("bit.tohex(255)", "000000ff"),
            ("bit.tohex(-1)", "ffffffff"),
            ("bit.tohex(255, 2)", "ff"),
            ("bit.tohex(255, -4)", "00FF"),
            ("bit.tohex(0xabcdef, 12)", "00abcdef"),
            ("bit.tohex(0xabcdef, -12)", "00ABCDEF"),
            ("bit.tohex(1, 0)", ""),
            (
                "bit.tohex(1, nil)",
                "ERR:user_script:1: bad argument #2 to 'tohex' (number expected, got nil)",
            ),
            ("bit.tohex(-2^31, -2^31)", "80000000"),
        ]);
    }
}
