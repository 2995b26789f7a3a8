//! `cmsgpack`: lua-cmsgpack 0.4.0 as Redis 7.0 bundles it (`lua_cmsgpack.c`), MessagePack
//! encoding and decoding for Lua values.
//!
//! Packing picks the smallest integer format that fits, float32 when the number survives
//! the round trip and float64 otherwise, an array for a table whose keys are exactly 1..n
//! (maps otherwise), and `nil` for anything it cannot represent, including tables nested
//! deeper than 16 (so cyclic tables still pack).

use mlua::{Lua, MultiValue, Table, Value};

use super::{
    arg_err, check_bytes, check_integer, exact_field, f64_to_i32, f64_to_i64, lua_err, opt_integer,
    plain_err, LUA_MAX_CSTACK,
};

/// Tables nested deeper than this pack as `nil`.
const MAX_NESTING: usize = 16;

/// Our own bound on the mlua references `unpack` holds at once (open tables, pending map
/// keys, string and table results): mlua's reference stack has room for about 8000, and
/// running out of it panics. The C library is only stopped by Lua's stack limit (8000
/// slots), so this only differs from Redis on inputs that come close to that limit.
const REF_BUDGET: usize = 6000;

const TOO_MANY_VALUES: &str =
    "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)";

/// Installs the `cmsgpack` global.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set("pack", lua.create_function(pack)?)?;
    let unpack = lua.create_function(|lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        unpack_full(lua, &args, args.len(), 0, 0)
    })?;
    t.set("unpack", unpack)?;
    let unpack_one = lua.create_function(|lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        let offset = opt_integer(lua, &args, 2, 0)?;
        unpack_full(lua, &args, 1, 1, offset)
    })?;
    t.set("unpack_one", unpack_one)?;
    let unpack_limit = lua.create_function(|lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        let limit = check_integer(lua, &args, 2)?;
        let offset = opt_integer(lua, &args, 3, 0)?;
        unpack_full(lua, &args, 1, limit, offset)
    })?;
    t.set("unpack_limit", unpack_limit)?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    lua.globals().set("cmsgpack", t)
}

// ---------------------------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------------------------

/// `cmsgpack.pack(v1, v2, ...)`: the encodings of every argument, concatenated.
fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let n = args.len();
    if n == 0 {
        return Err(arg_err(lua, 0, "MessagePack pack needs input."));
    }
    if n + n > LUA_MAX_CSTACK {
        return Err(arg_err(lua, 0, "Too many arguments for MessagePack pack."));
    }
    let mut out = Vec::new();
    for v in args {
        encode(&mut out, &v, 0)?;
    }
    lua.create_string(&out)
}

/// Appends a header: one byte when `fix` fits `n`, else `codes.0`/`.1`/`.2` followed by `n`
/// in 1/2/4 big-endian bytes (a code of 0 means that width is not used).
fn put_header(out: &mut Vec<u8>, n: usize, fix: Option<u8>, codes: (u8, u8, u8)) {
    if let Some(fix) = fix {
        out.push(fix);
    } else if codes.0 != 0 && n <= 0xff {
        out.extend_from_slice(&[codes.0, n as u8]);
    } else if n <= 0xffff {
        out.push(codes.1);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(codes.2);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let fix = (s.len() < 32).then_some(0xa0 | s.len() as u8);
    put_header(out, s.len(), fix, (0xd9, 0xda, 0xdb));
    out.extend_from_slice(s);
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    match n {
        0..=127 => out.push(n as u8),
        128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        0x1_0000_0000.. => {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        -32..=-1 => out.push(n as u8),
        -128..=-33 => out.extend_from_slice(&[0xd0, n as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(n as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// A Lua number: as an integer when it is one (and fits 64 bits), else float32 when that
/// is exact, else float64.
fn encode_number(out: &mut Vec<u8>, n: f64) {
    if !n.is_infinite() && f64_to_i64(n) as f64 == n {
        encode_int(out, f64_to_i64(n));
        return;
    }
    let f = n as f32;
    if f64::from(f) == n {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode(out: &mut Vec<u8>, v: &Value, level: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_number(out, *i as f64),
        Value::Number(n) => encode_number(out, *n),
        Value::Table(t) if level < MAX_NESTING => {
            if is_array(t)? {
                encode_array(out, t, level)?;
            } else {
                encode_map(out, t, level)?;
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

/// True when the keys are exactly 1..n (an empty table counts as an array).
fn is_array(t: &Table) -> mlua::Result<bool> {
    let (mut count, mut max) = (0i64, 0i32);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(false),
        };
        if n <= 0.0 || f64::from(f64_to_i32(n)) != n {
            return Ok(false);
        }
        if n > f64::from(max) {
            max = f64_to_i32(n);
        }
        count += 1;
    }
    Ok(i64::from(max) == count)
}

fn encode_array(out: &mut Vec<u8>, t: &Table, level: usize) -> mlua::Result<()> {
    let len = t.raw_len();
    let fix = (len <= 15).then_some(0x90 | len as u8);
    put_header(out, len, fix, (0, 0xdc, 0xdd));
    for i in 1..=len as i64 {
        let key = Value::Integer(i);
        let v = exact_field(t, &key, t.get(i)?);
        encode(out, &v, level + 1)?;
    }
    Ok(())
}

fn encode_map(out: &mut Vec<u8>, t: &Table, level: usize) -> mlua::Result<()> {
    let len = t.pairs::<Value, Value>().count();
    let fix = (len <= 15).then_some(0x80 | len as u8);
    put_header(out, len, fix, (0, 0xde, 0xdf));
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        encode(out, &k, level + 1)?;
        let v = exact_field(t, &k, v);
        encode(out, &v, level + 1)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Unpacking
// ---------------------------------------------------------------------------------------------

/// Why decoding stopped.
enum DecodeError {
    /// The input ends inside a value.
    Eof,
    /// A byte that starts no known type (e.g. `0xc1` or the ext types).
    BadFormat,
    /// A Lua error (stack limits, a nil map key, ...).
    Lua(mlua::Error),
}

impl From<mlua::Error> for DecodeError {
    fn from(e: mlua::Error) -> Self {
        DecodeError::Lua(e)
    }
}

/// Decodes up to `limit` values starting at byte `offset` of argument 1 (`limit` 0 with
/// `offset` 0 means all of them, without the leading next-offset result). `base_slots` is
/// how many arguments stay on the Lua stack, which counts against its limit.
fn unpack_full(
    lua: &Lua,
    args: &[Value],
    base_slots: usize,
    limit: i64,
    offset: i64,
) -> mlua::Result<MultiValue> {
    let s = check_bytes(lua, args, 1)?;
    if offset < 0 || limit < 0 {
        let msg = format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32,
            s.len() as i32
        );
        return Err(lua_err(lua, msg));
    }
    if offset as u64 > s.len() as u64 {
        let msg = format!(
            "Start offset {} greater than input length {}.",
            offset as i32,
            s.len() as i32
        );
        return Err(lua_err(lua, msg));
    }
    let decode_all = limit == 0 && offset == 0;
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };
    let mut d = Decoder {
        lua,
        s: &s,
        pos: offset as usize,
        slots: base_slots,
        held: 0,
    };
    let mut results = MultiValue::new();
    let mut count = 0;
    while d.pos < s.len() && count < limit {
        match d.value() {
            Ok(v) => {
                if matches!(v, Value::String(_) | Value::Table(_)) {
                    d.held += 1;
                }
                results.push_back(v);
            }
            Err(DecodeError::Eof) => return Err(lua_err(lua, "Missing bytes in input.")),
            Err(DecodeError::BadFormat) => {
                return Err(lua_err(lua, "Bad data format in input."));
            }
            Err(DecodeError::Lua(e)) => return Err(e),
        }
        d.slots += 1;
        count += 1;
    }
    if !decode_all {
        if d.slots + 1 > LUA_MAX_CSTACK {
            return Err(lua_err(lua, "stack overflow (in function mp_unpack_full)"));
        }
        let next = if d.pos == s.len() { -1 } else { d.pos as i64 };
        results.push_front(Value::Integer(next));
    }
    Ok(results)
}

/// A table being filled: remaining entries, and the next array index or the pending key.
enum Frame {
    Array(Table, i64, usize),
    Map(Table, Option<Value>, usize),
}

struct Decoder<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    /// Lua stack slots the C decoder would be using at this point.
    slots: usize,
    /// mlua references held (see [`REF_BUDGET`]).
    held: usize,
}

impl Decoder<'_> {
    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.s.len() - self.pos < n {
            return Err(DecodeError::Eof);
        }
        Ok(())
    }

    /// The `n` bytes after the type byte, consuming them with it.
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        self.need(1 + n)?;
        let start = self.pos + 1;
        self.pos += 1 + n;
        Ok(&self.s[start..start + n])
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        let bytes = self.take(n)?;
        Ok(bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    fn string(&mut self, header: usize, len: usize) -> Result<Value, DecodeError> {
        self.need(header + len)?;
        let start = self.pos + header;
        self.pos += header + len;
        Ok(Value::String(
            self.lua.create_string(&self.s[start..start + len])?,
        ))
    }

    /// One complete value. Iterative (an explicit stack of open tables), so nesting never
    /// grows the Rust stack.
    fn value(&mut self) -> Result<Value, DecodeError> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            let mut done = self.item(&mut stack)?;
            // Attach finished values to their tables, closing the tables they complete.
            loop {
                let Some(v) = done.take() else { break };
                let Some(frame) = stack.last_mut() else {
                    return Ok(v);
                };
                match frame {
                    Frame::Array(t, index, left) => {
                        t.raw_set(*index, v)?;
                        *index += 1;
                        *left -= 1;
                    }
                    Frame::Map(_, key @ None, _) => {
                        if matches!(v, Value::String(_) | Value::Table(_)) {
                            self.held += 1;
                        }
                        *key = Some(v);
                        self.slots += 1;
                    }
                    Frame::Map(t, key, left) => {
                        let k = key.take().unwrap_or(Value::Nil);
                        if matches!(k, Value::String(_) | Value::Table(_)) {
                            self.held -= 1;
                        }
                        set_field(t, k, v)?;
                        *left -= 1;
                        self.slots -= 1;
                    }
                }
                done = self.close_finished(&mut stack);
            }
        }
    }

    /// Pops the top table when it has all its entries, returning it as the finished value.
    fn close_finished(&mut self, stack: &mut Vec<Frame>) -> Option<Value> {
        let full = match stack.last() {
            Some(Frame::Array(_, _, left)) => *left == 0,
            Some(Frame::Map(_, key, left)) => *left == 0 && key.is_none(),
            None => false,
        };
        if !full {
            return None;
        }
        self.held -= 1;
        match stack.pop() {
            Some(Frame::Array(t, ..)) => {
                self.slots -= 2;
                Some(Value::Table(t))
            }
            Some(Frame::Map(t, ..)) => {
                self.slots -= 1;
                Some(Value::Table(t))
            }
            None => None,
        }
    }

    /// Reads the next item: a scalar (returned), or a table header (pushed on `stack`;
    /// returned at once when empty).
    fn item(&mut self, stack: &mut Vec<Frame>) -> Result<Option<Value>, DecodeError> {
        self.need(1)?;
        if self.slots + 1 > LUA_MAX_CSTACK || self.held >= REF_BUDGET {
            return Err(DecodeError::Lua(lua_err(self.lua, TOO_MANY_VALUES)));
        }
        let c = self.s[self.pos];
        let v = match c {
            0x00..=0x7f => {
                self.pos += 1;
                Value::Number(f64::from(c))
            }
            0xe0..=0xff => {
                self.pos += 1;
                Value::Number(f64::from(c as i8))
            }
            0xa0..=0xbf => return self.string(1, usize::from(c & 0x1f)).map(Some),
            0x80..=0x9f => {
                self.pos += 1;
                return self.open(stack, c < 0x90, usize::from(c & 0xf));
            }
            0xcc => Value::Number(self.be(1)? as f64),
            0xcd => Value::Number(self.be(2)? as f64),
            0xce => Value::Number(self.be(4)? as f64),
            // Pushed through a signed lua_Integer, so the top half reads as negative.
            0xcf => Value::Number(self.be(8)? as i64 as f64),
            0xd0 => Value::Number(f64::from(self.be(1)? as u8 as i8)),
            0xd1 => Value::Number(f64::from(self.be(2)? as u16 as i16)),
            0xd2 => Value::Number(f64::from(self.be(4)? as u32 as i32)),
            0xd3 => Value::Number(self.be(8)? as i64 as f64),
            0xc0 => {
                self.pos += 1;
                Value::Nil
            }
            0xc2 | 0xc3 => {
                self.pos += 1;
                Value::Boolean(c == 0xc3)
            }
            0xca => Value::Number(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Value::Number(f64::from_bits(self.be(8)?)),
            0xd9 => {
                self.need(2)?;
                let len = usize::from(self.s[self.pos + 1]);
                return self.string(2, len).map(Some);
            }
            0xda => {
                self.need(3)?;
                let len = usize::from(u16::from_be_bytes([
                    self.s[self.pos + 1],
                    self.s[self.pos + 2],
                ]));
                return self.string(3, len).map(Some);
            }
            0xdb => {
                let len = self.be(4)? as usize;
                self.pos -= 5;
                return self.string(5, len).map(Some);
            }
            0xdc..=0xdf => {
                let len = self.be(if c & 1 == 0 { 2 } else { 4 })? as usize;
                return self.open(stack, c >= 0xde, len);
            }
            _ => return Err(DecodeError::BadFormat),
        };
        Ok(Some(v))
    }

    /// Starts a table of `len` entries (pairs for a map).
    fn open(
        &mut self,
        stack: &mut Vec<Frame>,
        map: bool,
        len: usize,
    ) -> Result<Option<Value>, DecodeError> {
        // The C decoder checks for one more slot after pushing an array's table.
        if !map && self.slots + 2 > LUA_MAX_CSTACK {
            let msg = "stack overflow (in function mp_decode_to_lua_array)";
            return Err(DecodeError::Lua(lua_err(self.lua, msg)));
        }
        let t = self.lua.create_table()?;
        if len == 0 {
            return Ok(Some(Value::Table(t)));
        }
        // The table stays on the C stack, plus the array index pushed for each element.
        self.slots += if map { 1 } else { 2 };
        self.held += 1;
        stack.push(if map {
            Frame::Map(t, None, len)
        } else {
            Frame::Array(t, 1, len)
        });
        Ok(None)
    }
}

/// `t[k] = v` as `lua_settable` does it on a fresh table, including its errors for nil and
/// NaN keys (raised without position, as Lua's VM raises them inside a C function).
fn set_field(t: &Table, k: Value, v: Value) -> Result<(), DecodeError> {
    match k {
        Value::Nil => Err(DecodeError::Lua(plain_err("table index is nil"))),
        Value::Number(n) if n.is_nan() => Err(DecodeError::Lua(plain_err("table index is NaN"))),
        k => Ok(t.raw_set(k, v)?),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::check;

    #[test]
    fn pack_matches_redis() {
        check(&[
            // CASES-PACK
            ("hex(cmsgpack.pack(0, 1, 127, 128, 255, 256, 65535, 65536, 2^32-1, 2^32, 2^53))", "00017fcc80ccffcd0100cdffffce00010000ceffffffffcf0000000100000000cf0020000000000000"),
            ("hex(cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31-1, -2^53, -2^63))", "ffe0d0dfd080d1ff7fd18000d2ffff7fffd280000000d3ffffffff7fffffffd3ffe0000000000000d38000000000000000"),
            ("hex(cmsgpack.pack(2^63, 2^64, -2^64))", "ca5f000000ca5f800000cadf800000"),
            ("hex(cmsgpack.pack(0.5, 0.1, -1.5, 1e300, 1/0, -1/0))", "ca3f000000cb3fb999999999999acabfc00000cb7e37e43c8800759cca7f800000caff800000"),
            ("hex(cmsgpack.pack(0/0))", "cbfff8000000000000"),
            ("hex(cmsgpack.pack({1e-20, -0.0}))", "92cb3bc79ca10c92422300"),
            ("hex(cmsgpack.pack(true, false, nil))", "c3c2c0"),
            ("hex(cmsgpack.pack(\"\"))", "a0"),
            ("hex(cmsgpack.pack(string.rep(\"a\", 31)))", "bf61616161616161616161616161616161616161616161616161616161616161"),
            ("hex(string.sub(cmsgpack.pack(string.rep(\"a\", 32)), 1, 3))", "d92061"),
            ("hex(string.sub(cmsgpack.pack(string.rep(\"a\", 255)), 1, 3))", "d9ff61"),
            ("hex(string.sub(cmsgpack.pack(string.rep(\"a\", 256)), 1, 4))", "da010061"),
            ("hex(string.sub(cmsgpack.pack(string.rep(\"a\", 65535)), 1, 4))", "daffff61"),
            ("hex(string.sub(cmsgpack.pack(string.rep(\"a\", 65536)), 1, 6))", "db0001000061"),
            ("hex(cmsgpack.pack({}))", "90"),
            ("hex(cmsgpack.pack({1, 2, 3}))", "93010203"),
            ("hex(cmsgpack.pack({1, nil, 3}))", "8201010303"),
            ("hex(cmsgpack.pack({[2]=1}))", "810201"),
            ("hex(cmsgpack.pack({[0]=1}))", "810001"),
            ("hex(cmsgpack.pack({[1.5]=1}))", "81ca3fc0000001"),
            ("hex(cmsgpack.pack({a=1}))", "81a16101"),
            ("hex(cmsgpack.pack({[1]=1, a=2}))", "820101a16102"),
            ("hex(string.sub(cmsgpack.pack({1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}), 1, 4))", "dc001001"),
            ("(function() local t = {} for i = 1, 70000 do t[i] = i end return hex(string.sub(cmsgpack.pack(t), 1, 6)) end)()", "dd0001117001"),
            ("(function() local t = {} for i = 1, 16 do t['k'..i] = i end return hex(string.sub(cmsgpack.pack(t), 1, 3)) end)()", "de0010"),
            ("hex(cmsgpack.pack(string.len))", "c0"),
            ("hex(cmsgpack.pack(cjson.null))", "c0"),
            ("hex(cmsgpack.pack(coroutine.create(function() end)))", "c0"),
            ("(function() local a = {} a[1] = a return hex(cmsgpack.pack(a)) end)()", "91919191919191919191919191919191c0"),
            ("(function() local a = {x = 1} a.y = a return #cmsgpack.pack(a) end)()", "97"),
            ("cmsgpack.pack()", "ERR:user_script:1: bad argument #0 to 'pack' (MessagePack pack needs input.)"),
            ("(function() local ok, e = pcall(cmsgpack.pack) return e end)()", "bad argument #0 to '?' (MessagePack pack needs input.)"),
            ("#cmsgpack.pack(unpack({}, 1, 3999))", "3999"),
            ("#cmsgpack.pack(unpack({}, 1, 4000))", "4000"),
            ("cmsgpack.pack(unpack({}, 1, 4001))", "ERR:user_script:1: bad argument #0 to 'pack' (Too many arguments for MessagePack pack.)"),
            ("cmsgpack._NAME", "cmsgpack"),
            ("cmsgpack._VERSION", "lua-cmsgpack 0.4.0"),
            ("cmsgpack._COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo"),
            ("cmsgpack._DESCRIPTION", "MessagePack C implementation for Lua"),
        ]);
    }

    /// Redis nests maps until Lua's stack is full (about 4000 deep); we stop earlier, at our
    /// reference budget, with the same message, instead of crashing.
    #[test]
    fn deep_maps_stop_at_our_bound() {
        check(&[(
            "(function() local ok, e = pcall(cmsgpack.unpack, \
             string.rep('\\129\\161a', 3500) .. '\\1') return e end)()",
            "stack overflow (too many return values at once; \
             use unpack_one or unpack_limit instead.)",
        )]);
    }

    #[test]
    fn unpack_matches_redis() {
        check(&[
            // CASES-UNPACK
            ("table.concat({cmsgpack.unpack(cmsgpack.pack(1, -1, 300, -300, 70000, -70000, 2^40, -2^40, 0.5, 0.1))}, ',')", "1,-1,300,-300,70000,-70000,1099511627776,-1099511627776,0.5,0.1"),
            ("table.concat({cmsgpack.unpack(cmsgpack.pack(2^63, 2^64))}, ',')", "9.2233720368548e+18,1.844674407371e+19"),
            ("cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255')", "-1"),
            ("cmsgpack.unpack('\\211\\128\\0\\0\\0\\0\\0\\0\\1')", "-9.2233720368548e+18"),
            ("cmsgpack.unpack('\\211\\255\\255\\255\\255\\255\\255\\255\\255')", "-1"),
            ("cmsgpack.unpack('\\202\\127\\128\\0\\0')", "inf"),
            ("cmsgpack.unpack('\\203\\127\\248\\0\\0\\0\\0\\0\\0')", "nan"),
            ("cmsgpack.unpack(cmsgpack.pack(\"hello\"))", "hello"),
            ("#cmsgpack.unpack(cmsgpack.pack(string.rep(\"x\", 70000)))", "70000"),
            ("cmsgpack.unpack(cmsgpack.pack({1, 2, {a = \"b\"}}))[3].a", "b"),
            ("cjson.encode(cmsgpack.unpack(cmsgpack.pack({1, 2, {a = \"b\"}})))", "[1,2,{\"a\":\"b\"}]"),
            ("cjson.encode(cmsgpack.unpack('\\147\\1\\192\\3'))", "[1,null,3]"),
            ("cjson.encode(cmsgpack.unpack('\\130\\1\\2\\161a\\192'))", "[2]"),
            ("cmsgpack.unpack('\\129\\192\\1')", "ERR:table index is nil"),
            ("cmsgpack.unpack('\\129\\203\\127\\248\\0\\0\\0\\0\\0\\0\\1')", "ERR:table index is NaN"),
            ("cmsgpack.unpack('\\129\\203\\255\\248\\0\\0\\0\\0\\0\\0\\1')", "ERR:table index is NaN"),
            ("select('#', cmsgpack.unpack(''))", "0"),
            ("select('#', cmsgpack.unpack('\\192\\192\\192'))", "3"),
            ("cmsgpack.unpack('\\193')", "ERR:user_script:1: Bad data format in input."),
            ("cmsgpack.unpack('\\199\\1\\1\\1')", "ERR:user_script:1: Bad data format in input."),
            ("cmsgpack.unpack('\\212\\1\\1')", "ERR:user_script:1: Bad data format in input."),
            ("cmsgpack.unpack('\\204')", "ERR:user_script:1: Missing bytes in input."),
            ("cmsgpack.unpack('\\165abc')", "ERR:user_script:1: Missing bytes in input."),
            ("cmsgpack.unpack('\\147\\1\\2')", "ERR:user_script:1: Missing bytes in input."),
            ("cmsgpack.unpack('\\218\\0')", "ERR:user_script:1: Missing bytes in input."),
            ("cmsgpack.unpack('\\219\\0\\0\\0\\5ab')", "ERR:user_script:1: Missing bytes in input."),
            ("cmsgpack.unpack('\\1\\193')", "ERR:user_script:1: Bad data format in input."),
            ("cmsgpack.unpack('\\220\\255\\255')", "ERR:user_script:1: Missing bytes in input."),
            ("cmsgpack.unpack(5)", "53"),
            ("cmsgpack.unpack()", "ERR:user_script:1: bad argument #1 to 'unpack' (string expected, got no value)"),
            ("cmsgpack.unpack({})", "ERR:user_script:1: bad argument #1 to 'unpack' (string expected, got table)"),
            ("(function() local s = cmsgpack.pack(1, \"two\", {3}) local off, v = cmsgpack.unpack_one(s) local off2, v2 = cmsgpack.unpack_one(s, off) local off3, v3 = cmsgpack.unpack_one(s, off2) return off..','..v..','..off2..','..v2..','..off3..','..v3[1] end)()", "1,1,5,two,-1,3"),
            ("table.concat({cmsgpack.unpack_one(cmsgpack.pack(7, 8))}, ',')", "1,7"),
            ("table.concat({cmsgpack.unpack_one(cmsgpack.pack(7, 8), 1)}, ',')", "-1,8"),
            ("table.concat({cmsgpack.unpack_one(cmsgpack.pack(7, 8), 2)}, ',')", "-1"),
            ("table.concat({cmsgpack.unpack_one(cmsgpack.pack(7, 8), 3)}, ',')", "ERR:user_script:1: Start offset 3 greater than input length 2."),
            ("cmsgpack.unpack_one(cmsgpack.pack(7, 8), -1)", "ERR:user_script:1: Invalid request to unpack with offset of -1 and limit of 2."),
            ("table.concat({cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 2)}, ',')", "2,1,2"),
            ("table.concat({cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 2, 2)}, ',')", "-1,3,4"),
            ("table.concat({cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 10)}, ',')", "-1,1,2,3,4"),
            ("table.concat({cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 0)}, ',')", "1,2,3,4"),
            ("table.concat({cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 0, 1)}, ',')", "1"),
            ("cmsgpack.unpack_limit(cmsgpack.pack(1, 2), -1)", "ERR:user_script:1: Invalid request to unpack with offset of 0 and limit of 2."),
            ("cmsgpack.unpack_limit(cmsgpack.pack(1, 2), 1, 10)", "ERR:user_script:1: Start offset 10 greater than input length 2."),
            ("cmsgpack.unpack_limit(cmsgpack.pack(1, 2))", "ERR:user_script:1: bad argument #2 to 'unpack_limit' (number expected, got no value)"),
            ("cmsgpack.unpack_limit(cmsgpack.pack(1, 2), \"x\")", "ERR:user_script:1: bad argument #2 to 'unpack_limit' (number expected, got string)"),
            ("cmsgpack.unpack_one(cmsgpack.pack(1, 2), \"x\")", "ERR:user_script:1: bad argument #2 to 'unpack_one' (number expected, got string)"),
            ("table.concat({cmsgpack.unpack_one(cmsgpack.pack(1, 2), \"1\")}, ',')", "-1,2"),
            ("select('#', cmsgpack.unpack(string.rep('\\192', 7998)))", "7998"),
            // 7999 results: Redis returns them all, mlua refuses to return more than 7998
            // from a Rust function.
            ("select('#', cmsgpack.unpack(string.rep('\\192', 8000)))", "ERR:user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"),
            ("select('#', cmsgpack.unpack(string.rep('\\192', 5000), 1))", "5000"),
            ("type(cmsgpack.unpack(string.rep('\\145', 1000) .. '\\1'))", "table"),
            ("type(cmsgpack.unpack(string.rep('\\145', 2000) .. '\\1'))", "table"),
            ("type(cmsgpack.unpack(string.rep('\\145', 3998) .. '\\1'))", "table"),
            ("type(cmsgpack.unpack(string.rep('\\145', 3999) .. '\\1'))", "table"),
            ("type(cmsgpack.unpack(string.rep('\\145', 4000) .. '\\1'))", "ERR:user_script:1: stack overflow (in function mp_decode_to_lua_array)"),
            ("type(cmsgpack.unpack(string.rep('\\145', 100000) .. '\\1'))", "ERR:user_script:1: stack overflow (in function mp_decode_to_lua_array)"),
            ("type(cmsgpack.unpack(string.rep('\\129\\1', 7000) .. '\\1'))", "ERR:user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"),
            ("(function() local ok, e = pcall(cmsgpack.unpack, '\\193') return e end)()", "Bad data format in input."),
        ]);
    }
}
