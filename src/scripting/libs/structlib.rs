//! `struct`: Roberto Ierusalimschy's struct library as Redis 7.0 bundles it
//! (`lua_struct.c`), packing Lua values into binary strings and back.
//!
//! Format characters: `>` / `<` big / little endian (default: native, little on the x86-64
//! and ARM machines Redis runs on), `!n` maximum alignment (default 1, `!` alone = 8),
//! `x` a zero byte, `b B h H l L T` char / short / long / size_t (signed when lower case),
//! `in` / `In` an `n`-byte integer (default 4, at most 32), `f d` float / double, `cn` an
//! `n`-byte string (`c0`: the whole string, or on unpack the length from the previous
//! result), `s` a zero-terminated string; spaces are ignored.

use mlua::{Lua, MultiValue, Value};

use super::{
    arg_err, check_bytes, check_number, f64_to_i64, lua_err, opt_integer, to_number, LUA_MAX_CSTACK,
};

/// Largest `i`/`I` size accepted.
const MAX_INT_SIZE: usize = 32;
/// The alignment `!` alone selects: that of a double on x86-64.
const MAX_ALIGN: usize = 8;

/// Installs the `struct` global.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set("pack", lua.create_function(pack)?)?;
    t.set("unpack", lua.create_function(unpack)?)?;
    t.set("size", lua.create_function(size)?)?;
    lua.globals().set("struct", t)
}

/// Byte order and maximum alignment, changed by control options as the format is read.
struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// A format string being read (it ends at its first NUL, as C sees it).
struct Format {
    bytes: Vec<u8>,
    pos: usize,
}

impl Format {
    fn new(mut bytes: Vec<u8>) -> Self {
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            bytes.truncate(nul);
        }
        Format { bytes, pos: 0 }
    }

    fn next_opt(&mut self) -> Option<u8> {
        let c = self.bytes.get(self.pos).copied();
        self.pos += usize::from(c.is_some());
        c
    }

    /// An optional decimal count after an option, `default` when absent.
    fn number(&mut self, lua: &Lua, default: usize) -> mlua::Result<usize> {
        let mut a: i32 = 0;
        let mut any = false;
        while let Some(d) = self.bytes.get(self.pos).filter(|c| c.is_ascii_digit()) {
            let d = i32::from(d - b'0');
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return Err(lua_err(lua, "integral size overflow"));
            }
            a = a * 10 + d;
            any = true;
            self.pos += 1;
        }
        Ok(if any { a as usize } else { default })
    }

    /// The size of the item option `opt` describes (0 for control options).
    fn opt_size(&mut self, lua: &Lua, opt: u8) -> mlua::Result<usize> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(lua, 1)?,
            b'i' | b'I' => {
                let size = self.number(lua, 4)?;
                if size > MAX_INT_SIZE {
                    let msg =
                        format!("integral size {size} is larger than limit of {MAX_INT_SIZE}");
                    return Err(lua_err(lua, msg));
                }
                size
            }
            _ => 0,
        })
    }

    /// Applies a control option (`<`, `>`, `!n`, space); anything else is an error.
    fn control(&mut self, lua: &Lua, opt: u8, h: &mut Header) -> mlua::Result<()> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.number(lua, MAX_ALIGN)?;
                if !a.is_power_of_two() {
                    return Err(lua_err(lua, format!("alignment {a} is not a power of 2")));
                }
                h.align = a;
            }
            _ => {
                let msg = format!("invalid format option '{}'", char::from(opt));
                return Err(arg_err(lua, 1, &msg));
            }
        }
        Ok(())
    }
}

/// Padding needed before an item of `size` bytes at offset `len` (strings are never
/// aligned). Mirrors the C arithmetic, which assumes power-of-two sizes.
fn padding(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

fn is_integer_opt(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

/// A C double-to-`unsigned long` conversion as x86-64 code performs it.
fn f64_to_u64(n: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || n < TWO_63 {
        f64_to_i64(n) as u64
    } else if n < 2.0 * TWO_63 {
        (f64_to_i64(n - TWO_63) as u64) ^ (1 << 63)
    } else {
        0
    }
}

/// `struct.pack(fmt, v1, v2, ...)`.
fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let mut args: Vec<Value> = args.into_iter().collect();
    let mut fmt = Format::new(check_bytes(lua, &args, 1)?);
    // The C code pushes a nil right after the arguments, so one missing value reads as nil.
    args.push(Value::Nil);
    let mut h = Header::default();
    let mut arg = 2;
    let mut out: Vec<u8> = Vec::new();
    while let Some(opt) = fmt.next_opt() {
        let mut size = fmt.opt_size(lua, opt)?;
        let pad = padding(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            _ if is_integer_opt(opt) => {
                let n = check_number(lua, &args, arg)?;
                arg += 1;
                let value = if n < 0.0 {
                    f64_to_i64(n) as u64
                } else {
                    f64_to_u64(n)
                };
                put_integer(&mut out, value, size, h.little);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = check_number(lua, &args, arg)? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    f.to_le_bytes()
                } else {
                    f.to_be_bytes()
                });
            }
            b'd' => {
                let d = check_number(lua, &args, arg)?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    d.to_le_bytes()
                } else {
                    d.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = check_bytes(lua, &args, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // The C code reports the argument after the string.
                    return Err(arg_err(lua, arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => fmt.control(lua, opt, &mut h)?,
        }
    }
    lua.create_string(&out)
}

/// `size` bytes of `value` in the given order; bytes beyond the 8 a `long` holds are 0.
fn put_integer(out: &mut Vec<u8>, value: u64, size: usize, little: bool) {
    let bytes: Vec<u8> = (0..size)
        .map(|i| if i < 8 { (value >> (8 * i)) as u8 } else { 0 })
        .collect();
    if little {
        out.extend_from_slice(&bytes);
    } else {
        out.extend(bytes.iter().rev());
    }
}

/// Reads a `size`-byte integer; as in C, only the last 8 bytes read survive in the `long`.
fn get_integer(bytes: &[u8], little: bool, signed: bool) -> f64 {
    let size = bytes.len();
    let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
    let l = if little {
        bytes.iter().rev().fold(0, fold)
    } else {
        bytes.iter().fold(0, fold)
    };
    if !signed {
        return l as f64;
    }
    let mask = u64::MAX.wrapping_shl((size as u32).wrapping_mul(8).wrapping_sub(1));
    let l = if l & mask != 0 { l | mask } else { l };
    l as i64 as f64
}

fn float_at(bytes: &[u8], little: bool) -> f64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(bytes);
    f64::from(if little {
        f32::from_le_bytes(b)
    } else {
        f32::from_be_bytes(b)
    })
}

fn double_at(bytes: &[u8], little: bool) -> f64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    if little {
        f64::from_le_bytes(b)
    } else {
        f64::from_be_bytes(b)
    }
}

/// `struct.unpack(fmt, data [, pos])`: the values, then the position after them.
fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let args: Vec<Value> = args.into_iter().collect();
    let mut fmt = Format::new(check_bytes(lua, &args, 1)?);
    let data = check_bytes(lua, &args, 2)?;
    let ld = data.len();
    // A C size_t: negative offsets become huge and fail the length check below.
    let mut pos = opt_integer(lua, &args, 3, 1)? as u64 as usize;
    if pos == 0 {
        return Err(arg_err(lua, 3, "offset must be 1 or greater"));
    }
    pos -= 1;
    let mut h = Header::default();
    let mut results: Vec<Value> = Vec::new();
    let too_short = || arg_err(lua, 2, "data string too short");
    while let Some(opt) = fmt.next_opt() {
        let mut size = fmt.opt_size(lua, opt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if size > ld || pos > ld - size {
            return Err(too_short());
        }
        if args.len() + results.len() + 2 > LUA_MAX_CSTACK {
            return Err(lua_err(lua, "stack overflow (too many results)"));
        }
        match opt {
            _ if is_integer_opt(opt) => {
                let signed = opt.is_ascii_lowercase();
                let n = get_integer(&data[pos..pos + size], h.little, signed);
                results.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => results.push(Value::Number(float_at(&data[pos..pos + size], h.little))),
            b'd' => results.push(Value::Number(double_at(&data[pos..pos + size], h.little))),
            b'c' => {
                if size == 0 {
                    let prev = results.last().and_then(|v| to_number(lua, v));
                    let Some(prev) = prev else {
                        return Err(lua_err(lua, "format 'c0' needs a previous size"));
                    };
                    size = if prev < 0.0 {
                        f64_to_i64(prev) as u64
                    } else {
                        f64_to_u64(prev)
                    } as usize;
                    results.pop();
                    if size > ld || pos > ld - size {
                        return Err(too_short());
                    }
                }
                results.push(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(lua_err(lua, "unfinished string in data"));
                };
                results.push(Value::String(lua.create_string(&data[pos..pos + len])?));
                size = len + 1;
            }
            _ => fmt.control(lua, opt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    results.push(Value::Integer(pos.wrapping_add(1) as i64));
    Ok(MultiValue::from_iter(results))
}

/// `struct.size(fmt)`: the packed size of a format without variable-length items.
fn size(lua: &Lua, args: MultiValue) -> mlua::Result<i64> {
    let args: Vec<Value> = args.into_iter().collect();
    let mut fmt = Format::new(check_bytes(lua, &args, 1)?);
    let mut h = Header::default();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next_opt() {
        let size = fmt.opt_size(lua, opt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if opt == b's' {
            return Err(arg_err(lua, 1, "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(arg_err(lua, 1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            fmt.control(lua, opt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos as i64)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::check;

    #[test]
    fn matches_redis() {
        check(&[
            // CASES-STRUCT
            ("hex(struct.pack('b', -1))", "ff"),
            ("hex(struct.pack('B', 255))", "ff"),
            ("hex(struct.pack('B', 256))", "00"),
            ("hex(struct.pack('h', 258))", "0201"),
            ("hex(struct.pack('>h', 258))", "0102"),
            ("hex(struct.pack('>H', 65535))", "ffff"),
            ("hex(struct.pack('l', -2))", "feffffffffffffff"),
            ("hex(struct.pack('>L', 2^40 + 1))", "0000010000000001"),
            ("hex(struct.pack('T', 5))", "0500000000000000"),
            ("hex(struct.pack('i', 1))", "01000000"),
            ("hex(struct.pack('>i3', 0x010203))", "010203"),
            ("hex(struct.pack('<i3', -1))", "ffffff"),
            ("hex(struct.pack('>i12', -1))", "00000000ffffffffffffffff"),
            ("hex(struct.pack('<I12', 1))", "010000000000000000000000"),
            ("hex(struct.pack('i0', 5))", ""),
            ("hex(struct.pack('<L', 2^64))", "0000000000000000"),
            ("hex(struct.pack('<L', 2^63))", "0000000000000080"),
            ("hex(struct.pack('<L', -1e30))", "0000000000000080"),
            ("hex(struct.pack('<l', 0/0))", "0000000000000080"),
            ("hex(struct.pack('<L', 1.9))", "0100000000000000"),
            ("hex(struct.pack('<L', -1.9))", "ffffffffffffffff"),
            ("hex(struct.pack('f', 1.5))", "0000c03f"),
            ("hex(struct.pack('>f', 1.5))", "3fc00000"),
            ("hex(struct.pack('d', 0.1))", "9a9999999999b93f"),
            ("hex(struct.pack('>d', -2))", "c000000000000000"),
            ("hex(struct.pack('c3', 'abcdef'))", "616263"),
            ("hex(struct.pack('c0', 'abc'))", "616263"),
            ("hex(struct.pack('s', 'ab'))", "616200"),
            ("hex(struct.pack('x x'))", "0000"),
            ("hex(struct.pack('!4 b i', 1, 2))", "0100000002000000"),
            (
                "hex(struct.pack('!b d', 1, 2))",
                "01000000000000000000000000000040",
            ),
            ("hex(struct.pack('!2 b i', 1, 2))", "010002000000"),
            (
                "hex(struct.pack('!8 b h b l', 1, 2, 3, 4))",
                "01000200030000000400000000000000",
            ),
            (
                "hex(struct.pack('!4 b c2 i', 1, 'xy', 3))",
                "0178790003000000",
            ),
            ("hex(struct.pack('!4 b i3', 1, 2))", "010000020000"),
            ("hex(struct.pack('b', '12'))", "0c"),
            ("hex(struct.pack('c2', 12))", "3132"),
            (
                "struct.pack('b')",
                "ERR:user_script:1: bad argument #2 to 'pack' (number expected, got nil)",
            ),
            (
                "struct.pack('b', 'x')",
                "ERR:user_script:1: bad argument #2 to 'pack' (number expected, got string)",
            ),
            (
                "struct.pack('b', {})",
                "ERR:user_script:1: bad argument #2 to 'pack' (number expected, got table)",
            ),
            (
                "struct.pack('c5', 'ab')",
                "ERR:user_script:1: bad argument #3 to 'pack' (string too short)",
            ),
            (
                "struct.pack('b c5', 1, 'ab')",
                "ERR:user_script:1: bad argument #4 to 'pack' (string too short)",
            ),
            (
                "struct.pack('s', nil)",
                "ERR:user_script:1: bad argument #2 to 'pack' (string expected, got nil)",
            ),
            (
                "struct.pack('y', 1)",
                "ERR:user_script:1: bad argument #1 to 'pack' (invalid format option 'y')",
            ),
            (
                "struct.pack('!3', 1)",
                "ERR:user_script:1: alignment 3 is not a power of 2",
            ),
            (
                "struct.pack('!0', 1)",
                "ERR:user_script:1: alignment 0 is not a power of 2",
            ),
            (
                "struct.pack('i33', 1)",
                "ERR:user_script:1: integral size 33 is larger than limit of 32",
            ),
            (
                "struct.pack('i99999999999', 1)",
                "ERR:user_script:1: integral size overflow",
            ),
            (
                "struct.pack('c2147483648', 'a')",
                "ERR:user_script:1: integral size overflow",
            ),
            (
                "struct.pack()",
                "ERR:user_script:1: bad argument #1 to 'pack' (string expected, got no value)",
            ),
            (
                "struct.pack(5)",
                "ERR:user_script:1: bad argument #1 to 'pack' (invalid format option '5')",
            ),
            ("hex(struct.pack('b\\0b', 1, 2))", "01"),
            ("table.concat({struct.unpack('b', '\\255')}, ',')", "-1,2"),
            ("table.concat({struct.unpack('B', '\\255')}, ',')", "255,2"),
            (
                "table.concat({struct.unpack('<h', '\\1\\2')}, ',')",
                "513,3",
            ),
            (
                "table.concat({struct.unpack('>h', '\\255\\254')}, ',')",
                "-2,3",
            ),
            (
                "table.concat({struct.unpack('<i3', '\\255\\255\\255')}, ',')",
                "-1,4",
            ),
            (
                "table.concat({struct.unpack('<I3', '\\255\\255\\255')}, ',')",
                "16777215,4",
            ),
            (
                "table.concat({struct.unpack('<i12', string.rep('\\255', 12))}, ',')",
                "-1,13",
            ),
            (
                "table.concat({struct.unpack('>i12', '\\1' .. string.rep('\\0', 11))}, ',')",
                "0,13",
            ),
            (
                "table.concat({struct.unpack('<i9', '\\1\\0\\0\\0\\0\\0\\0\\0\\128')}, ',')",
                "1,10",
            ),
            (
                "table.concat({struct.unpack('<L', string.rep('\\255', 8))}, ',')",
                "1.844674407371e+19,9",
            ),
            (
                "table.concat({struct.unpack('<l', string.rep('\\255', 8))}, ',')",
                "-1,9",
            ),
            (
                "table.concat({struct.unpack('f', struct.pack('f', 0.1))}, ',')",
                "0.10000000149012,5",
            ),
            (
                "table.concat({struct.unpack('>d', struct.pack('>d', 1/3))}, ',')",
                "0.33333333333333,9",
            ),
            (
                "table.concat({struct.unpack('c3', 'abcdef')}, ',')",
                "abc,4",
            ),
            (
                "table.concat({struct.unpack('b c0', '\\3abcdef')}, ',')",
                "abc,5",
            ),
            (
                "table.concat({struct.unpack('s c0', '2\\0abc')}, ',')",
                "ab,5",
            ),
            (
                "table.concat({struct.unpack('s s', 'ab\\0cd\\0ef')}, ',')",
                "ab,cd,7",
            ),
            (
                "table.concat({struct.unpack('c0', 'abc')}, ',')",
                "ERR:user_script:1: format 'c0' needs a previous size",
            ),
            (
                "table.concat({struct.unpack('s', 'abc')}, ',')",
                "ERR:user_script:1: unfinished string in data",
            ),
            (
                "table.concat({struct.unpack('b c0', '\\9abc')}, ',')",
                "ERR:user_script:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            ("table.concat({struct.unpack('b', 'ab', 2)}, ',')", "98,3"),
            (
                "table.concat({struct.unpack('b', 'ab', 3)}, ',')",
                "ERR:user_script:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            ("table.concat({struct.unpack('<', 'ab', 3)}, ',')", "3"),
            (
                "table.concat({struct.unpack('<', 'ab', 4)}, ',')",
                "ERR:user_script:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "table.concat({struct.unpack('b', 'ab', 0)}, ',')",
                "ERR:user_script:1: bad argument #3 to 'unpack' (offset must be 1 or greater)",
            ),
            (
                "table.concat({struct.unpack('b', 'ab', -1)}, ',')",
                "ERR:user_script:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "table.concat({struct.unpack('b', 'ab', 'x')}, ',')",
                "ERR:user_script:1: bad argument #3 to 'unpack' (number expected, got string)",
            ),
            (
                "table.concat({struct.unpack('!4 b i', '\\1\\0\\0\\0\\2\\0\\0\\0')}, ',')",
                "1,2,9",
            ),
            ("table.concat({struct.unpack('x b', '\\1\\2')}, ',')", "2,3"),
            (
                "table.concat({struct.unpack('i', 'abc')}, ',')",
                "ERR:user_script:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "table.concat({struct.unpack('y', 'abc')}, ',')",
                "ERR:user_script:1: bad argument #1 to 'unpack' (invalid format option 'y')",
            ),
            (
                "table.concat({struct.unpack('b')}, ',')",
                "ERR:user_script:1: bad argument #2 to 'unpack' (string expected, got no value)",
            ),
            ("table.concat({struct.unpack('b', 'a', 1.9)}, ',')", "97,2"),
            (
                "select('#', struct.unpack(string.rep('b', 5000), string.rep('a', 5000)))",
                "5001",
            ),
            (
                "select('#', struct.unpack(string.rep('b', 7998), string.rep('a', 7998)))",
                "ERR:user_script:1: stack overflow (too many results)",
            ),
            ("struct.size('b h i l d')", "23"),
            ("struct.size('!b h i l d')", "24"),
            ("struct.size('!4 b d')", "12"),
            ("struct.size('c10 x i7')", "18"),
            (
                "struct.size('s')",
                "ERR:user_script:1: bad argument #1 to 'size' (option 's' has no fixed size)",
            ),
            (
                "struct.size('c0')",
                "ERR:user_script:1: bad argument #1 to 'size' (option 'c0' has no fixed size)",
            ),
            ("struct.size('c')", "1"),
            ("struct.size('y')", "0"),
            (
                "struct.size('#')",
                "ERR:user_script:1: bad argument #1 to 'size' (invalid format option '#')",
            ),
            ("struct.size('<>! ')", "0"),
            (
                "struct.size('i33')",
                "ERR:user_script:1: integral size 33 is larger than limit of 32",
            ),
            (
                "struct.size()",
                "ERR:user_script:1: bad argument #1 to 'size' (string expected, got no value)",
            ),
        ]);
    }
}
