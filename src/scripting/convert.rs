//! Conversions between RESP replies and Lua values, with Redis's rules
//! (`redisProtocolToLuaType` and `luaReplyToRedisReply` in `script_lua.c`).
//!
//! RESP to Lua: integer -> number, bulk -> string, null bulk / null array -> false, status ->
//! `{ok=...}`, error -> `{err=...}`, array -> table; with RESP3 also map -> `{map={...}}`, set ->
//! `{set={k=true}}`, null -> nil, boolean, double -> `{double=n}`, big number ->
//! `{big_number=s}`, verbatim -> `{verbatim_string={format=..., string=...}}`.
//!
//! Lua to RESP: string -> bulk, number -> integer (truncated), boolean -> 1 / null (RESP2 script)
//! or a boolean (RESP3 script), table -> the `err` / `ok` / `double` / `big_number` /
//! `verbatim_string` / `map` / `set` forms, or else an array that stops at the first nil.

use mlua::{Lua, Table, Value};

use crate::protocol::{ReplyBuf, Resp};

/// Deepest table nesting converted to a reply (Redis stops at its Lua stack limit).
const MAX_DEPTH: usize = 1000;

/// Parses the first reply in `buf` into a Lua value.
pub fn reply_to_lua(lua: &Lua, buf: &[u8]) -> mlua::Result<Value> {
    let mut pos = 0;
    parse(lua, buf, &mut pos)
}

/// Whether the first reply in `buf` is an error.
pub fn is_error(buf: &[u8]) -> bool {
    buf.first() == Some(&b'-') || buf.first() == Some(&b'!')
}

fn line<'b>(buf: &'b [u8], pos: &mut usize) -> &'b [u8] {
    let start = *pos;
    let end = buf[start..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(buf.len(), |i| start + i);
    *pos = (end + 2).min(buf.len());
    &buf[start..end]
}

fn number(text: &[u8]) -> i64 {
    std::str::from_utf8(text).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn parse(lua: &Lua, buf: &[u8], pos: &mut usize) -> mlua::Result<Value> {
    let Some(&kind) = buf.get(*pos) else {
        return Ok(Value::Nil);
    };
    *pos += 1;
    let head = line(buf, pos);
    Ok(match kind {
        b':' => Value::Number(number(head) as f64),
        b'$' | b'=' => {
            let n = number(head);
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let start = *pos;
            let end = (start + n as usize).min(buf.len());
            *pos = (end + 2).min(buf.len());
            let data = &buf[start..end];
            if kind == b'=' {
                let (format, text) =
                    if data.len() >= 4 { data.split_at(4) } else { (data, &[][..]) };
                let v = lua.create_table()?;
                v.raw_set("string", lua.create_string(text)?)?;
                v.raw_set("format", lua.create_string(&format[..format.len().min(3)])?)?;
                single(lua, "verbatim_string", Value::Table(v))?
            } else {
                Value::String(lua.create_string(data)?)
            }
        }
        b'+' => single(lua, "ok", Value::String(lua.create_string(head)?))?,
        b'-' => {
            let mut msg = b"-".to_vec();
            msg.extend_from_slice(head);
            let t = super::engine::error_table(lua, &msg)?;
            t.raw_set("ignore_error_stats_update", true)?;
            Value::Table(t)
        }
        b'*' | b'~' | b'>' => {
            let n = number(head);
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let t = lua.create_table()?;
            for i in 0..n {
                let v = parse(lua, buf, pos)?;
                if kind == b'~' {
                    t.raw_set(v, true)?;
                } else {
                    t.raw_set(i + 1, v)?;
                }
            }
            if kind == b'~' {
                single(lua, "set", Value::Table(t))?
            } else {
                Value::Table(t)
            }
        }
        b'%' | b'|' => {
            let n = number(head).max(0);
            let t = lua.create_table()?;
            for _ in 0..n {
                let k = parse(lua, buf, pos)?;
                let v = parse(lua, buf, pos)?;
                t.raw_set(k, v)?;
            }
            if kind == b'|' {
                // Attributes are skipped: the value follows.
                return parse(lua, buf, pos);
            }
            single(lua, "map", Value::Table(t))?
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(head == b"t"),
        b',' => {
            let d = crate::util::num::parse_f64(head).unwrap_or(0.0);
            single(lua, "double", Value::Number(d))?
        }
        b'(' => single(lua, "big_number", Value::String(lua.create_string(head)?))?,
        _ => Value::Nil,
    })
}

/// `{<field> = value}`.
fn single(lua: &Lua, field: &str, v: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, v)?;
    Ok(Value::Table(t))
}

/// Writes Lua value `v` as the reply. `script_resp3` is the protocol the script selected with
/// `redis.setresp` (it decides how booleans convert).
pub fn lua_to_reply(out: &mut ReplyBuf, v: &Value, script_resp3: bool) {
    write_value(out, v, script_resp3, 0);
}

fn write_value(out: &mut ReplyBuf, v: &Value, resp3: bool, depth: usize) {
    if depth > MAX_DEPTH {
        out.error("ERR reached lua stack limit");
        return;
    }
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if resp3 {
                out.boolean(*b);
            } else if *b {
                out.integer(1);
            } else {
                out.null();
            }
        }
        Value::Integer(i) => out.integer(*i),
        Value::Number(n) => out.integer(*n as i64),
        Value::Table(t) => write_table(out, t, resp3, depth),
        _ => out.null(),
    }
}

fn string_field(t: &Table, field: &str) -> Option<Vec<u8>> {
    match t.raw_get::<Value>(field) {
        Ok(Value::String(s)) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn write_table(out: &mut ReplyBuf, t: &Table, resp3: bool, depth: usize) {
    if let Some(err) = string_field(t, "err") {
        out.error(&String::from_utf8_lossy(&err));
        return;
    }
    if let Some(mut ok) = string_field(t, "ok") {
        for c in &mut ok {
            if *c == b'\r' || *c == b'\n' {
                *c = b' ';
            }
        }
        out.simple_bytes(&ok);
        return;
    }
    if let Ok(Value::Number(d)) = t.raw_get::<Value>("double") {
        out.double(d);
        return;
    }
    if let Ok(Value::Integer(d)) = t.raw_get::<Value>("double") {
        out.double(d as f64);
        return;
    }
    if let Some(mut big) = string_field(t, "big_number") {
        for c in &mut big {
            if *c == b'\r' || *c == b'\n' {
                *c = b' ';
            }
        }
        big_number(out, &big);
        return;
    }
    if let Ok(Value::Table(vt)) = t.raw_get::<Value>("verbatim_string") {
        let format = string_field(&vt, "format");
        if let (Some(format), Some(text)) = (format, string_field(&vt, "string")) {
            let mut f = format;
            f.resize(3, b' ');
            out.verbatim(&String::from_utf8_lossy(&f), &text);
            return;
        }
    }
    if let Ok(Value::Table(map)) = t.raw_get::<Value>("map") {
        let pairs: Vec<(Value, Value)> = map.pairs::<Value, Value>().flatten().collect();
        out.map(pairs.len());
        for (k, v) in &pairs {
            write_value(out, k, resp3, depth + 1);
            write_value(out, v, resp3, depth + 1);
        }
        return;
    }
    if let Ok(Value::Table(set)) = t.raw_get::<Value>("set") {
        let keys: Vec<Value> = set.pairs::<Value, Value>().flatten().map(|(k, _)| k).collect();
        out.set(keys.len());
        for k in &keys {
            write_value(out, k, resp3, depth + 1);
        }
        return;
    }
    let mut items = Vec::new();
    let mut i = 1;
    while let Ok(v) = t.raw_get::<Value>(i) {
        if v.is_nil() {
            break;
        }
        items.push(v);
        i += 1;
    }
    out.array(items.len());
    for v in &items {
        write_value(out, v, resp3, depth + 1);
    }
}

/// A big number: `(digits` in RESP3, a bulk string in RESP2.
fn big_number(out: &mut ReplyBuf, digits: &[u8]) {
    match out.resp {
        Resp::V2 => out.bulk(digits),
        Resp::V3 => {
            out.raw(b"(");
            out.raw(digits);
            out.raw(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(lua: &Lua, reply: &[u8], resp: Resp) -> Vec<u8> {
        let v = reply_to_lua(lua, reply).unwrap();
        let mut out = ReplyBuf::new(resp);
        lua_to_reply(&mut out, &v, false);
        out.buf.to_vec()
    }

    #[test]
    fn resp2_replies_survive_a_round_trip() {
        let lua = Lua::new();
        assert_eq!(roundtrip(&lua, b":42\r\n", Resp::V2), b":42\r\n");
        assert_eq!(roundtrip(&lua, b"$3\r\nabc\r\n", Resp::V2), b"$3\r\nabc\r\n");
        assert_eq!(roundtrip(&lua, b"+OK\r\n", Resp::V2), b"+OK\r\n");
        assert_eq!(roundtrip(&lua, b"-WRONGTYPE x\r\n", Resp::V2), b"-WRONGTYPE x\r\n");
        // Null bulk becomes false, which a RESP2 script returns as a null bulk.
        assert_eq!(roundtrip(&lua, b"$-1\r\n", Resp::V2), b"$-1\r\n");
        assert_eq!(
            roundtrip(&lua, b"*2\r\n:1\r\n$1\r\na\r\n", Resp::V2),
            b"*2\r\n:1\r\n$1\r\na\r\n"
        );
    }

    #[test]
    fn resp3_types_convert_like_redis() {
        let lua = Lua::new();
        assert_eq!(roundtrip(&lua, b",1.5\r\n", Resp::V3), b",1.5\r\n");
        assert_eq!(roundtrip(&lua, b",1.5\r\n", Resp::V2), b"$3\r\n1.5\r\n");
        let map = b"%1\r\n$1\r\nk\r\n:1\r\n";
        assert_eq!(roundtrip(&lua, map, Resp::V3), map);
        assert_eq!(roundtrip(&lua, b"(123\r\n", Resp::V3), b"(123\r\n");
        assert_eq!(roundtrip(&lua, b"=7\r\ntxt:abc\r\n", Resp::V3), b"=7\r\ntxt:abc\r\n");
        assert!(reply_to_lua(&lua, b"_\r\n").unwrap().is_nil());
    }

    #[test]
    fn numbers_truncate_and_arrays_stop_at_nil() {
        let lua = Lua::new();
        let v: Value = lua.load("return {1.9, -2.9, nil, 4}").eval().unwrap();
        let mut out = ReplyBuf::new(Resp::V2);
        lua_to_reply(&mut out, &v, false);
        assert_eq!(&out.buf[..], b"*2\r\n:1\r\n:-2\r\n");
    }
}
