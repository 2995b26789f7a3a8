//! `cjson`: Lua CJSON 2.1.0 as Redis 7.0 bundles it (`lua_cjson.c`), JSON encoding and
//! decoding for Lua values.
//!
//! Encoding turns a table into a JSON array when every key is an integer >= 1 and the array
//! is not "excessively sparse", else into an object; numbers print with `%.14g`; `/` is
//! escaped. Decoding maps `null` to `cjson.null` (a NULL light userdata). Each module table
//! (the global one and every `cjson.new()`) has its own configuration.

use std::cell::RefCell;
use std::ptr;
use std::rc::Rc;

use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value};

use super::{
    arg_err, check_bytes, check_integer, exact_field, f64_to_i32, fmt_g, lua_err, type_name,
    LUA_MAX_CSTACK,
};

/// Our own bound on nesting, whatever `encode_max_depth` / `decode_max_depth` say: every
/// open table holds a couple of mlua references, and mlua's reference stack has room for
/// about 8000. Redis's limits default to 1000, so this only differs from Redis when a script
/// raised them past it.
const HARD_DEPTH: usize = 2500;

/// One module table's settings (`json_config_t`).
#[derive(Debug, Clone)]
struct Config {
    sparse_convert: u8,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0 = off (error), 1 = on (`inf`/`nan`), 2 = `null`.
    encode_invalid_numbers: u8,
    decode_invalid_numbers: u8,
    keep_buffer: u8,
    precision: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: 0,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            keep_buffer: 1,
            precision: 14,
        }
    }
}

type Cfg = Rc<RefCell<Config>>;
type Handler = fn(&Lua, &Cfg, &[Value]) -> mlua::Result<MultiValue>;

/// Installs the `cjson` global.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let next: Function = lua.globals().get("next")?;
    lua.set_named_registry_value(NEXT_KEY, next)?;
    let t = new_module(lua)?;
    lua.globals().set("cjson", t)
}

/// A fresh module table with its own configuration (`cjson.new()`).
fn new_module(lua: &Lua) -> mlua::Result<Table> {
    let cfg: Cfg = Rc::new(RefCell::new(Config::default()));
    let t = lua.create_table()?;
    let handlers: [(&str, Handler); 9] = [
        ("encode", encode),
        ("decode", decode),
        ("encode_sparse_array", cfg_encode_sparse_array),
        ("encode_max_depth", cfg_encode_max_depth),
        ("decode_max_depth", cfg_decode_max_depth),
        ("encode_number_precision", cfg_encode_number_precision),
        ("encode_keep_buffer", cfg_encode_keep_buffer),
        ("encode_invalid_numbers", cfg_encode_invalid_numbers),
        ("decode_invalid_numbers", cfg_decode_invalid_numbers),
    ];
    for (name, handler) in handlers {
        let cfg = cfg.clone();
        let f = lua.create_function(move |lua, args: MultiValue| {
            let args: Vec<Value> = args.into_iter().collect();
            handler(lua, &cfg, &args)
        })?;
        t.set(name, f)?;
    }
    t.set("new", lua.create_function(|lua, ()| new_module(lua))?)?;
    t.set("null", null())?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// `cjson.null`: a light userdata holding NULL.
fn null() -> Value {
    Value::LightUserData(LightUserData(ptr::null_mut()))
}

fn one(v: Value) -> MultiValue {
    MultiValue::from_iter([v])
}

// ---------------------------------------------------------------------------------------------
// Configuration functions
// ---------------------------------------------------------------------------------------------

/// Rejects more than `n` arguments, as every configuration function does.
fn arg_init(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<()> {
    if args.len() > n {
        return Err(arg_err(lua, n + 1, "found too many arguments"));
    }
    Ok(())
}

fn is_set(args: &[Value], idx: usize) -> bool {
    !matches!(args.get(idx - 1), None | Some(Value::Nil))
}

/// An integer setting: updated from argument `idx` when given (range errors always name
/// argument 1, as the C code does), then returned.
fn int_option(
    lua: &Lua,
    args: &[Value],
    idx: usize,
    setting: &mut i32,
    range: (i32, i32),
) -> mlua::Result<Value> {
    if is_set(args, idx) {
        let value = check_integer(lua, args, idx)? as i32;
        if value < range.0 || value > range.1 {
            let msg = format!("expected integer between {} and {}", range.0, range.1);
            return Err(arg_err(lua, 1, &msg));
        }
        *setting = value;
    }
    Ok(Value::Integer(i64::from(*setting)))
}

const BOOL_OPTIONS: [&str; 2] = ["off", "on"];

/// An enumerated setting: a boolean, or one of `options` by name; returned as a boolean
/// while it is off/on, else as its name.
fn enum_option(
    lua: &Lua,
    args: &[Value],
    idx: usize,
    setting: &mut u8,
    options: &[&str],
) -> mlua::Result<Value> {
    if is_set(args, idx) {
        if let Some(Value::Boolean(b)) = args.get(idx - 1) {
            *setting = u8::from(*b);
        } else {
            let name = check_bytes(lua, args, idx)?;
            let pos = options.iter().position(|o| o.as_bytes() == name.as_slice());
            let Some(pos) = pos else {
                let msg = format!("invalid option '{}'", String::from_utf8_lossy(&name));
                return Err(arg_err(lua, idx, &msg));
            };
            *setting = pos as u8;
        }
    }
    if *setting <= 1 {
        Ok(Value::Boolean(*setting == 1))
    } else {
        Ok(Value::String(
            lua.create_string(options[usize::from(*setting)])?,
        ))
    }
}

/// `cjson.encode_sparse_array([convert [, ratio [, safe]]])`.
fn cfg_encode_sparse_array(lua: &Lua, cfg: &Cfg, args: &[Value]) -> mlua::Result<MultiValue> {
    arg_init(lua, args, 3)?;
    let mut c = cfg.borrow_mut();
    let convert = enum_option(lua, args, 1, &mut c.sparse_convert, &BOOL_OPTIONS)?;
    let ratio = int_option(lua, args, 2, &mut c.sparse_ratio, (0, i32::MAX))?;
    let safe = int_option(lua, args, 3, &mut c.sparse_safe, (0, i32::MAX))?;
    Ok(MultiValue::from_iter([convert, ratio, safe]))
}

/// `cjson.encode_max_depth([depth])`.
fn cfg_encode_max_depth(lua: &Lua, cfg: &Cfg, args: &[Value]) -> mlua::Result<MultiValue> {
    arg_init(lua, args, 1)?;
    let mut c = cfg.borrow_mut();
    int_option(lua, args, 1, &mut c.encode_max_depth, (1, i32::MAX)).map(one)
}

/// `cjson.decode_max_depth([depth])`.
fn cfg_decode_max_depth(lua: &Lua, cfg: &Cfg, args: &[Value]) -> mlua::Result<MultiValue> {
    arg_init(lua, args, 1)?;
    let mut c = cfg.borrow_mut();
    int_option(lua, args, 1, &mut c.decode_max_depth, (1, i32::MAX)).map(one)
}

/// `cjson.encode_number_precision([1..14])`.
fn cfg_encode_number_precision(lua: &Lua, cfg: &Cfg, args: &[Value]) -> mlua::Result<MultiValue> {
    arg_init(lua, args, 1)?;
    let mut c = cfg.borrow_mut();
    int_option(lua, args, 1, &mut c.precision, (1, 14)).map(one)
}

/// `cjson.encode_keep_buffer([bool])`: only a setting here (our encoder always builds a
/// fresh buffer), kept so scripts that toggle it behave the same.
fn cfg_encode_keep_buffer(lua: &Lua, cfg: &Cfg, args: &[Value]) -> mlua::Result<MultiValue> {
    arg_init(lua, args, 1)?;
    let mut c = cfg.borrow_mut();
    enum_option(lua, args, 1, &mut c.keep_buffer, &BOOL_OPTIONS).map(one)
}

/// `cjson.encode_invalid_numbers([bool | "null"])`.
fn cfg_encode_invalid_numbers(lua: &Lua, cfg: &Cfg, args: &[Value]) -> mlua::Result<MultiValue> {
    arg_init(lua, args, 1)?;
    let mut c = cfg.borrow_mut();
    let options = ["off", "on", "null"];
    enum_option(lua, args, 1, &mut c.encode_invalid_numbers, &options).map(one)
}

/// `cjson.decode_invalid_numbers([bool])`.
fn cfg_decode_invalid_numbers(lua: &Lua, cfg: &Cfg, args: &[Value]) -> mlua::Result<MultiValue> {
    arg_init(lua, args, 1)?;
    let mut c = cfg.borrow_mut();
    enum_option(lua, args, 1, &mut c.decode_invalid_numbers, &BOOL_OPTIONS).map(one)
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// `cjson.encode(value)`.
fn encode(lua: &Lua, cfg: &Cfg, args: &[Value]) -> mlua::Result<MultiValue> {
    if args.len() != 1 {
        return Err(arg_err(lua, 1, "expected 1 argument"));
    }
    let next: Function = lua.named_registry_value(NEXT_KEY)?;
    let cfg = cfg.borrow().clone();
    let mut enc = Encoder {
        lua,
        cfg,
        next,
        out: Vec::new(),
        stack: Vec::new(),
        slots: 1,
    };
    enc.run(args[0].clone())?;
    Ok(one(Value::String(lua.create_string(&enc.out)?)))
}

/// Registry name under which Lua's own `next` is kept for the encoder's object walks.
const NEXT_KEY: &str = "ferrodis.cjson.next";

/// A table being written: an array with the index of its last element written, or an
/// object with the key of its last pair written (`Nil` before the first).
enum EncFrame {
    Array(Table, i64, i64),
    Object(Table, Value),
}

struct Encoder<'a> {
    lua: &'a Lua,
    cfg: Config,
    /// Lua's `next`, to walk an object one pair at a time without holding all of it.
    next: Function,
    out: Vec<u8>,
    /// Tables being written, outermost first. Iterative so nesting never grows the Rust
    /// stack.
    stack: Vec<EncFrame>,
    /// Lua stack slots the C encoder would be using (the argument, 1 per array and 2 per
    /// object being written); it fails once `lua_checkstack` would.
    slots: usize,
}

impl Encoder<'_> {
    fn fail(&self, v: &Value, reason: &str) -> mlua::Error {
        lua_err(
            self.lua,
            format!("Cannot serialise {}: {reason}", type_name(v)),
        )
    }

    /// Writes `root`, then each element of every table opened along the way.
    fn run(&mut self, root: Value) -> mlua::Result<()> {
        let mut pending = Some(root);
        loop {
            if let Some(v) = pending.take() {
                self.value(v)?;
            }
            pending = match self.stack.last_mut() {
                None => return Ok(()),
                Some(EncFrame::Array(t, i, len)) => {
                    if *i == *len {
                        self.close(b']', 1);
                        continue;
                    }
                    *i += 1;
                    let (t, i) = (t.clone(), *i);
                    if i > 1 {
                        self.out.push(b',');
                    }
                    Some(exact_field(&t, &Value::Integer(i), t.raw_get(i)?))
                }
                Some(EncFrame::Object(t, key)) => {
                    let (t, prev) = (t.clone(), key.clone());
                    let (k, v): (Value, Value) = self.next.call((t.clone(), prev.clone()))?;
                    if k.is_nil() {
                        self.close(b'}', 2);
                        continue;
                    }
                    if !prev.is_nil() {
                        self.out.push(b',');
                    }
                    self.key(&k)?;
                    if let Some(EncFrame::Object(_, key)) = self.stack.last_mut() {
                        *key = k.clone();
                    }
                    Some(exact_field(&t, &k, v))
                }
            };
        }
    }

    fn close(&mut self, bracket: u8, slots: usize) {
        self.out.push(bracket);
        self.stack.pop();
        self.slots -= slots;
    }

    /// Writes a scalar, or opens a table (pushing its frame).
    fn value(&mut self, v: Value) -> mlua::Result<()> {
        match &v {
            Value::String(s) => append_string(&mut self.out, &s.as_bytes()),
            Value::Integer(i) => self.number(*i as f64, &v)?,
            Value::Number(n) => self.number(*n, &v)?,
            Value::Boolean(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Table(t) => self.open(t, &v)?,
            _ => return Err(self.fail(&v, "type not supported")),
        }
        Ok(())
    }

    fn open(&mut self, t: &Table, v: &Value) -> mlua::Result<()> {
        let depth = self.stack.len() + 1;
        let too_deep = depth > self.cfg.encode_max_depth as usize
            || self.slots + 3 > LUA_MAX_CSTACK
            || depth > HARD_DEPTH;
        if too_deep {
            let msg = format!("Cannot serialise, excessive nesting ({depth})");
            return Err(lua_err(self.lua, msg));
        }
        let len = self.array_length(t, v)?;
        if len > 0 {
            self.out.push(b'[');
            self.stack
                .push(EncFrame::Array(t.clone(), 0, i64::from(len)));
            self.slots += 1;
        } else {
            self.out.push(b'{');
            self.stack.push(EncFrame::Object(t.clone(), Value::Nil));
            self.slots += 2;
        }
        Ok(())
    }

    /// An object key followed by `:`; numbers are quoted.
    fn key(&mut self, k: &Value) -> mlua::Result<()> {
        match k {
            Value::Integer(i) => self.quoted_number(*i as f64, k),
            Value::Number(n) => self.quoted_number(*n, k),
            Value::String(s) => {
                append_string(&mut self.out, &s.as_bytes());
                self.out.push(b':');
                Ok(())
            }
            _ => Err(self.fail(k, "table key must be a number or string")),
        }
    }

    fn quoted_number(&mut self, n: f64, k: &Value) -> mlua::Result<()> {
        self.out.push(b'"');
        self.number(n, k)?;
        self.out.extend_from_slice(b"\":");
        Ok(())
    }

    fn number(&mut self, n: f64, v: &Value) -> mlua::Result<()> {
        match self.cfg.encode_invalid_numbers {
            0 if !n.is_finite() => return Err(self.fail(v, "must not be NaN or Inf")),
            1 if n.is_nan() => {
                self.out.extend_from_slice(b"nan");
                return Ok(());
            }
            2 if !n.is_finite() => {
                self.out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
        let text = fmt_g(n, self.cfg.precision as usize);
        self.out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    /// The array length of `t` if every key is an integer >= 1 (its largest key), else a
    /// value <= 0 meaning "encode as an object". The largest key lives in a C `int`, so keys
    /// beyond its range make it negative, as on x86-64.
    fn array_length(&self, t: &Table, tv: &Value) -> mlua::Result<i32> {
        let (mut max, mut items) = (0i32, 0i64);
        for pair in t.pairs::<Value, Value>() {
            let (k, _) = pair?;
            let k = match k {
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                _ => return Ok(-1),
            };
            if k == 0.0 || k.floor() != k || k < 1.0 {
                return Ok(-1);
            }
            if k > f64::from(max) {
                max = f64_to_i32(k);
            }
            items += 1;
        }
        let ratio = i64::from(self.cfg.sparse_ratio);
        if ratio > 0 && i64::from(max) > items * ratio && max > self.cfg.sparse_safe {
            if self.cfg.sparse_convert == 0 {
                return Err(self.fail(tv, "excessively sparse array"));
            }
            return Ok(-1);
        }
        Ok(max)
    }
}

/// A JSON string literal: control characters, `"`, `\`, `/` and DEL are escaped.
fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// A lexical token; `Error` carries the reason shown as "found ...".
#[derive(Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    /// How an unexpected token is named in parse errors.
    fn describe(&self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str(_) => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(why) => why,
        }
    }
}

/// A token and the 0-based offset it was found at (or where its error is).
struct Token {
    tok: Tok,
    index: usize,
}

/// A container being filled: the table, and the next array index or the pending key.
enum Frame {
    Array(Table, i64),
    Object(Table, Option<mlua::String>),
}

struct Parser<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    invalid_numbers: bool,
    max_depth: usize,
    depth: usize,
    /// Lua stack slots the C parser would hold (the argument, plus per open container).
    slots: usize,
}

/// `cjson.decode(text)`.
fn decode(lua: &Lua, cfg: &Cfg, args: &[Value]) -> mlua::Result<MultiValue> {
    if args.len() != 1 {
        return Err(arg_err(lua, 1, "expected 1 argument"));
    }
    let data = check_bytes(lua, args, 1)?;
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(lua_err(
            lua,
            "JSON parser does not support UTF-16 or UTF-32",
        ));
    }
    let cfg = cfg.borrow().clone();
    let mut p = Parser {
        lua,
        data: &data,
        pos: 0,
        invalid_numbers: cfg.decode_invalid_numbers != 0,
        max_depth: cfg.decode_max_depth as usize,
        depth: 0,
        slots: 1,
    };
    p.document().map(one)
}

impl Parser<'_> {
    /// The byte at `i`; the C parser reads a NUL-terminated buffer, so past the end (and at
    /// an embedded NUL) it sees 0, the end of input.
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn parse_error(&self, expected: &str, t: &Token) -> mlua::Error {
        let msg = format!(
            "Expected {expected} but found {} at character {}",
            t.tok.describe(),
            t.index + 1
        );
        lua_err(self.lua, msg)
    }

    /// Opens a container needing `slots` Lua stack slots, enforcing the depth limits.
    fn descend(&mut self, slots: usize) -> mlua::Result<()> {
        self.depth += 1;
        let ok = self.depth <= self.max_depth
            && self.slots + slots <= LUA_MAX_CSTACK
            && self.depth <= HARD_DEPTH;
        if ok {
            self.slots += slots - 1;
            return Ok(());
        }
        let msg = format!(
            "Found too many nested data structures ({}) at character {}",
            self.depth, self.pos
        );
        Err(lua_err(self.lua, msg))
    }

    /// Closes a container opened by [`Parser::descend`].
    fn ascend(&mut self, object: bool) {
        self.depth -= 1;
        self.slots -= if object { 2 } else { 1 };
    }

    /// The whole document: one value, then nothing but whitespace. Iterative (an explicit
    /// stack of open containers), so nesting never grows the Rust stack.
    fn document(&mut self) -> mlua::Result<Value> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut t = self.next_token();
        'value: loop {
            let mut val = match t.tok {
                Tok::Str(s) => Value::String(self.lua.create_string(&s)?),
                Tok::Num(n) => Value::Number(n),
                Tok::Bool(b) => Value::Boolean(b),
                Tok::Null => null(),
                Tok::ObjBegin => {
                    self.descend(3)?;
                    let table = self.lua.create_table()?;
                    t = self.next_token();
                    if let Tok::ObjEnd = t.tok {
                        self.ascend(true);
                        Value::Table(table)
                    } else {
                        let key = self.object_key(&mut t)?;
                        stack.push(Frame::Object(table, Some(key)));
                        continue 'value;
                    }
                }
                Tok::ArrBegin => {
                    self.descend(2)?;
                    let table = self.lua.create_table()?;
                    t = self.next_token();
                    if let Tok::ArrEnd = t.tok {
                        self.ascend(false);
                        Value::Table(table)
                    } else {
                        stack.push(Frame::Array(table, 1));
                        continue 'value;
                    }
                }
                _ => return Err(self.parse_error("value", &t)),
            };
            // Store the finished value in its container, closing containers that end here.
            loop {
                let Some(frame) = stack.last_mut() else {
                    let end = self.next_token();
                    if !matches!(end.tok, Tok::End) {
                        return Err(self.parse_error("the end", &end));
                    }
                    return Ok(val);
                };
                let (closer, what) = match frame {
                    Frame::Array(table, i) => {
                        table.raw_set(*i, val)?;
                        *i += 1;
                        (true, "comma or array end")
                    }
                    Frame::Object(table, key) => {
                        table.raw_set(key.take(), val)?;
                        (false, "comma or object end")
                    }
                };
                t = self.next_token();
                let closes = match t.tok {
                    Tok::ArrEnd => closer,
                    Tok::ObjEnd => !closer,
                    _ => false,
                };
                if closes {
                    self.ascend(!closer);
                    val = match stack.pop() {
                        Some(Frame::Array(table, _) | Frame::Object(table, _)) => {
                            Value::Table(table)
                        }
                        None => Value::Nil,
                    };
                    continue;
                }
                if !matches!(t.tok, Tok::Comma) {
                    return Err(self.parse_error(what, &t));
                }
                t = self.next_token();
                if let Some(Frame::Object(_, key)) = stack.last_mut() {
                    let k = self.object_key(&mut t)?;
                    *key = Some(k);
                }
                continue 'value;
            }
        }
    }

    /// Reads `"key" :` starting at token `t`; leaves the value's first token in `t`.
    fn object_key(&mut self, t: &mut Token) -> mlua::Result<mlua::String> {
        let Tok::Str(s) = &t.tok else {
            return Err(self.parse_error("object key string", t));
        };
        let key = self.lua.create_string(s)?;
        *t = self.next_token();
        if !matches!(t.tok, Tok::Colon) {
            return Err(self.parse_error("colon", t));
        }
        *t = self.next_token();
        Ok(key)
    }

    fn next_token(&mut self) -> Token {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let index = self.pos;
        let c = self.at(index);
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(tok) = single {
            self.pos += 1;
            return Token { tok, index };
        }
        let rest = &self.data[index.min(self.data.len())..];
        match c {
            0 => Token {
                tok: Tok::End,
                index,
            },
            b'"' => self.string_token(),
            b'-' | b'0'..=b'9' => {
                if !self.invalid_numbers && self.is_invalid_number() {
                    return Token {
                        tok: Tok::Error("invalid number"),
                        index,
                    };
                }
                self.number_token()
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                let literal = [
                    (&b"true"[..], Tok::Bool(true)),
                    (b"false", Tok::Bool(false)),
                ]
                .into_iter()
                .chain([(&b"null"[..], Tok::Null)])
                .find(|(word, _)| rest.starts_with(word));
                if let Some((word, tok)) = literal {
                    self.pos += word.len();
                    return Token { tok, index };
                }
                if self.invalid_numbers && self.is_invalid_number() {
                    return self.number_token();
                }
                Token {
                    tok: Tok::Error("invalid token"),
                    index,
                }
            }
            _ => Token {
                tok: Tok::Error("invalid token"),
                index,
            },
        }
    }

    /// Numbers strict JSON forbids but `strtod` reads: leading `+`, hex, leading zeros,
    /// inf and nan.
    fn is_invalid_number(&self) -> bool {
        let mut p = self.pos;
        match self.at(p) {
            b'+' => return true,
            b'-' => p += 1,
            _ => {}
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return c2 | 0x20 == b'x' || c2.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let word = |w: &[u8]| (0..3).all(|i| self.at(p + i).eq_ignore_ascii_case(&w[i]));
        word(b"inf") || word(b"nan")
    }

    fn number_token(&mut self) -> Token {
        let index = self.pos;
        match strtod(self.data, self.pos) {
            Some((n, end)) => {
                self.pos = end;
                Token {
                    tok: Tok::Num(n),
                    index,
                }
            }
            None => Token {
                tok: Tok::Error("invalid number"),
                index,
            },
        }
    }

    fn string_token(&mut self) -> Token {
        let index = self.pos;
        self.pos += 1;
        let mut s = Vec::new();
        loop {
            let c = self.at(self.pos);
            match c {
                b'"' => break,
                0 => return self.token_error("unexpected end of string"),
                b'\\' => {
                    let unescaped = match self.at(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 0x0c,
                        b'r' => b'\r',
                        b'u' => {
                            if self.unicode_escape(&mut s) {
                                continue;
                            }
                            return self.token_error("invalid unicode escape code");
                        }
                        _ => return self.token_error("invalid escape code"),
                    };
                    s.push(unescaped);
                    self.pos += 2;
                }
                _ => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        Token {
            tok: Tok::Str(s),
            index,
        }
    }

    fn token_error(&self, why: &'static str) -> Token {
        Token {
            tok: Tok::Error(why),
            index: self.pos,
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        (0..4).try_fold(0u32, |acc, i| {
            let d = char::from(self.at(at + i)).to_digit(16)?;
            Some(acc << 4 | d)
        })
    }

    /// Decodes `\uXXXX` (a surrogate pair when it is a high surrogate followed by `\uXXXX`
    /// holding a low one) at the cursor into UTF-8; false if malformed.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(mut cp) = self.hex4(self.pos + 2) else {
            return false;
        };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 || self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        match char::from_u32(cp) {
            Some(ch) => out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes()),
            // Lone low surrogates never get here; other surrogates are rejected above.
            None => return false,
        }
        self.pos += len;
        true
    }
}

/// C's `strtod` on `s[start..]` (no leading whitespace to skip here): decimal with optional
/// fraction and exponent, hexadecimal (`0x1p4`), `inf`/`infinity`, `nan`/`nan(...)`.
/// Returns the value and where it ended, or `None` when nothing could be read.
pub(crate) fn strtod(s: &[u8], start: usize) -> Option<(f64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = start;
    let neg = at(i) == b'-';
    if matches!(at(i), b'+' | b'-') {
        i += 1;
    }
    let sign = if neg { -1.0 } else { 1.0 };
    let word = |i: usize, w: &[u8]| (0..w.len()).all(|k| at(i + k).eq_ignore_ascii_case(&w[k]));
    if word(i, b"inf") {
        let end = if word(i + 3, b"inity") { i + 8 } else { i + 3 };
        return Some((sign * f64::INFINITY, end));
    }
    if word(i, b"nan") {
        let mut end = i + 3;
        if at(end) == b'(' {
            let mut k = end + 1;
            while at(k).is_ascii_alphanumeric() || at(k) == b'_' {
                k += 1;
            }
            if at(k) == b')' {
                end = k + 1;
            }
        }
        // Negation (not multiplication) sets a NaN's sign bit reliably.
        return Some((if neg { -f64::NAN } else { f64::NAN }, end));
    }
    if at(i) == b'0' && at(i + 1) | 0x20 == b'x' {
        return Some(hex_float(s, i + 2).map_or((sign * 0.0, i + 1), |(v, e)| (sign * v, e)));
    }
    let mut j = i;
    let mut digits = 0;
    while at(j).is_ascii_digit() {
        j += 1;
        digits += 1;
    }
    if at(j) == b'.' {
        j += 1;
        while at(j).is_ascii_digit() {
            j += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if at(j) | 0x20 == b'e' {
        let mut k = j + 1;
        if matches!(at(k), b'+' | b'-') {
            k += 1;
        }
        if at(k).is_ascii_digit() {
            while at(k).is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[i..j]).ok()?;
    let v: f64 = text.parse().ok()?;
    Some((sign * v, j))
}

/// The hexadecimal part of a `strtod` number after `0x`: digits, optional fraction and
/// optional binary exponent `p[+-]d`. `None` when there is no hex digit at all.
fn hex_float(s: &[u8], start: usize) -> Option<(f64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let (mut mant, mut exp, mut digits, mut j) = (0u64, 0i64, 0, start);
    let mut frac = false;
    loop {
        let c = at(j);
        if c == b'.' && !frac {
            frac = true;
            j += 1;
            continue;
        }
        let Some(d) = char::from(c).to_digit(16) else {
            break;
        };
        digits += 1;
        if mant < 1 << 59 {
            mant = mant << 4 | u64::from(d);
            if frac {
                exp -= 4;
            }
        } else if !frac {
            exp += 4;
        }
        j += 1;
    }
    if digits == 0 {
        return None;
    }
    if at(j) | 0x20 == b'p' {
        let mut k = j + 1;
        let neg = at(k) == b'-';
        if matches!(at(k), b'+' | b'-') {
            k += 1;
        }
        if at(k).is_ascii_digit() {
            let mut e = 0i64;
            while at(k).is_ascii_digit() {
                e = (e * 10 + i64::from(at(k) - b'0')).min(100_000);
                k += 1;
            }
            exp += if neg { -e } else { e };
            j = k;
        }
    }
    let v = mant as f64 * 2f64.powi(exp.clamp(-1200, 1200) as i32);
    Some((v, j))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::check;

    #[test]
    fn encode_matches_redis() {
        check(&[
            // CASES-ENCODE
            ("cjson.encode({1,2,{a=1}})", "[1,2,{\"a\":1}]"),
            ("cjson.encode({})", "{}"),
            ("hex(cjson.encode(\"a\\\"b\\\\c/d\\1\\2\\8\\9\\10\\12\\13\\31\\127\\128\\255\"))", "22615c22625c5c635c2f645c75303030315c75303030325c625c745c6e5c665c725c75303031665c753030376680ff22"),
            ("cjson.encode(0.1)", "0.1"),
            ("cjson.encode(1/3)", "0.33333333333333"),
            ("cjson.encode(100000000000000)", "1e+14"),
            ("cjson.encode(1e15)", "1e+15"),
            ("cjson.encode(123456789012345678)", "1.2345678901235e+17"),
            ("cjson.encode({-0.0})", "[-0]"),
            ("cjson.encode(1e-5)", "1e-05"),
            ("cjson.encode(0.0001)", "0.0001"),
            ("cjson.encode({1e-20})", "[1e-20]"),
            ("cjson.encode({-1.5e300})", "[-1.5e+300]"),
            ("cjson.encode(2^53)", "9.007199254741e+15"),
            ("cjson.encode(true)", "true"),
            ("cjson.encode(nil)", "null"),
            ("cjson.encode(cjson.null)", "null"),
            ("cjson.encode({cjson.null, false})", "[null,false]"),
            ("cjson.encode(string.len)", "ERR:user_script:1: Cannot serialise function: type not supported"),
            ("cjson.encode({f=string.len})", "ERR:user_script:1: Cannot serialise function: type not supported"),
            ("cjson.encode({[true]=1})", "ERR:user_script:1: Cannot serialise boolean: table key must be a number or string"),
            ("cjson.encode(0/0)", "ERR:user_script:1: Cannot serialise number: must not be NaN or Inf"),
            ("cjson.encode({x=1/0})", "ERR:user_script:1: Cannot serialise number: must not be NaN or Inf"),
            ("cjson.encode({[1]=1,[2]=2,[4]=4})", "[1,2,null,4]"),
            ("cjson.encode({[1]=1,[100]=2})", "ERR:user_script:1: Cannot serialise table: excessively sparse array"),
            ("cjson.encode({[11]=1})", "ERR:user_script:1: Cannot serialise table: excessively sparse array"),
            ("cjson.encode({[10]=1})", "[null,null,null,null,null,null,null,null,null,1]"),
            ("cjson.encode({[0]=1})", "{\"0\":1}"),
            ("cjson.encode({[1.5]=1})", "{\"1.5\":1}"),
            ("cjson.encode({[-1]=1})", "{\"-1\":1}"),
            ("cjson.encode({[2^31]=1})", "{\"2147483648\":1}"),
            ("cjson.encode({[2^40]=1, [2]=3})", "[null,3]"),
            ("cjson.encode({[1]='a', x='b'})", "{\"1\":\"a\",\"x\":\"b\"}"),
            ("cjson.encode({[3.25]=1})", "{\"3.25\":1}"),
            ("cjson.encode({a={b={c={}}}})", "{\"a\":{\"b\":{\"c\":{}}}}"),
            ("cjson.encode()", "ERR:user_script:1: bad argument #1 to 'encode' (expected 1 argument)"),
            ("cjson.encode(1, 2)", "ERR:user_script:1: bad argument #1 to 'encode' (expected 1 argument)"),
            ("cjson.encode(coroutine.create(function() end))", "ERR:user_script:1: Cannot serialise thread: type not supported"),
            ("cjson.encode(\"\\0x\")", "\"\\u0000x\""),
            ("cjson.encode({[\"k\\\"/\"]=\"v\"})", "{\"k\\\"\\/\":\"v\"}"),
            ("(function() local t = {} t[1] = t return cjson.encode(t) end)()", "ERR:user_script:1: Cannot serialise, excessive nesting (1001)"),
            ("(function() local t = {} t.a = t return cjson.encode(t) end)()", "ERR:user_script:1: Cannot serialise, excessive nesting (1001)"),
            ("(function() local t = {} for i = 1, 999 do t = {t} end return #cjson.encode(t) end)()", "2000"),
            ("(function() local t = {} for i = 1, 1000 do t = {t} end return #cjson.encode(t) end)()", "ERR:user_script:1: Cannot serialise, excessive nesting (1001)"),
            ("(function() local t = 1 for i = 1, 1001 do t = {t} end return cjson.encode(t) end)()", "ERR:user_script:1: Cannot serialise, excessive nesting (1001)"),
            ("(function() cjson.encode_max_depth(3) local r = cjson.encode({{{1}}}) cjson.encode_max_depth(1000) return r end)()", "[[[1]]]"),
            ("(function() cjson.encode_max_depth(2) local ok, e = pcall(cjson.encode, {{{1}}}) cjson.encode_max_depth(1000) return e end)()", "Cannot serialise, excessive nesting (3)"),
            ("(function() cjson.encode_number_precision(3) local r = cjson.encode({3.14159, 1234567}) cjson.encode_number_precision(14) return r end)()", "[3.14,1.23e+06]"),
            ("(function() cjson.encode_invalid_numbers(true) local r = cjson.encode({1/0, -1/0, 0/0}) cjson.encode_invalid_numbers(false) return r end)()", "[inf,-inf,nan]"),
            ("(function() cjson.encode_invalid_numbers(\"null\") local r = cjson.encode({1/0, -1/0, 0/0}) cjson.encode_invalid_numbers(false) return r end)()", "[null,null,null]"),
            ("(function() cjson.encode_sparse_array(true) local r = cjson.encode({[1]=1,[100]=2}) cjson.encode_sparse_array(false) return r end)()", "{\"1\":1,\"100\":2}"),
            ("(function() cjson.encode_sparse_array(false, 0) local r = cjson.encode({[1]=1,[100]=2}) cjson.encode_sparse_array(false, 2) return r end)()", "[1,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,null,2]"),
            ("(function() local ok, e = pcall(cjson.encode, string.len) return e end)()", "Cannot serialise function: type not supported"),
        ]);
    }

    #[test]
    fn decode_matches_redis() {
        check(&[
            // CASES-DECODE
            ("cjson.decode('[1,2,3]')[3]", "3"),
            ("cjson.encode(cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"x\"}'))", "{\"a\":[1,2,{\"b\":null}],\"c\":\"x\"}"),
            ("cjson.decode('null') == cjson.null", "true"),
            ("type(cjson.decode('null'))", "userdata"),
            ("hex(cjson.decode('\"a\\\\u00e9\\\\ud83d\\\\ude00\\\\n\\\\/\\\\\"x\"'))", "61c3a9f09f98800a2f2278"),
            ("hex(cjson.decode('\"\\\\u0000\\\\u007f\\\\u0800\"'))", "007fe0a080"),
            ("cjson.decode('  12.5e3  ')", "12500"),
            ("cjson.decode('-0')", "-0"),
            ("cjson.decode('1e400')", "inf"),
            ("cjson.decode('0x1F')", "31"),
            ("cjson.decode('012')", "12"),
            ("cjson.decode('+5')", "5"),
            ("cjson.decode('inf')", "inf"),
            ("cjson.decode('-Infinity')", "-inf"),
            ("cjson.decode('nan')", "nan"),
            ("cjson.decode('NaN')", "nan"),
            ("cjson.decode('1.')", "1"),
            ("cjson.decode('.5')", "ERR:user_script:1: Expected value but found invalid token at character 1"),
            ("cjson.decode('-')", "ERR:user_script:1: Expected value but found invalid number at character 1"),
            ("cjson.decode('1.5e')", "ERR:user_script:1: Expected the end but found invalid token at character 4"),
            ("cjson.decode('1e+')", "ERR:user_script:1: Expected the end but found invalid token at character 2"),
            ("cjson.decode('0x')", "ERR:user_script:1: Expected the end but found invalid token at character 2"),
            ("cjson.decode('0x1p4')", "16"),
            ("cjson.decode('0x.8')", "0.5"),
            ("cjson.decode('true')", "true"),
            ("cjson.decode('false')", "false"),
            ("cjson.decode('tru')", "ERR:user_script:1: Expected value but found invalid token at character 1"),
            ("cjson.decode('nul')", "ERR:user_script:1: Expected value but found invalid token at character 1"),
            ("cjson.decode('x')", "ERR:user_script:1: Expected value but found invalid token at character 1"),
            ("cjson.decode('')", "ERR:user_script:1: Expected value but found T_END at character 1"),
            ("cjson.decode('   ')", "ERR:user_script:1: Expected value but found T_END at character 4"),
            ("cjson.decode('[1,2')", "ERR:user_script:1: Expected comma or array end but found T_END at character 5"),
            ("cjson.decode('[1,2,]')", "ERR:user_script:1: Expected value but found T_ARR_END at character 6"),
            ("cjson.decode('[1 2]')", "ERR:user_script:1: Expected comma or array end but found T_NUMBER at character 4"),
            ("cjson.decode('{\"a\" 1}')", "ERR:user_script:1: Expected colon but found T_NUMBER at character 6"),
            ("cjson.decode('{\"a\":1,}')", "ERR:user_script:1: Expected object key string but found T_OBJ_END at character 8"),
            ("cjson.decode('{1:2}')", "ERR:user_script:1: Expected object key string but found T_NUMBER at character 2"),
            ("cjson.decode('{\"a\":1 \"b\"}')", "ERR:user_script:1: Expected comma or object end but found T_STRING at character 8"),
            ("cjson.decode('{\"a\":1}x')", "ERR:user_script:1: Expected the end but found invalid token at character 8"),
            ("cjson.decode('[]]')", "ERR:user_script:1: Expected the end but found T_ARR_END at character 3"),
            ("cjson.decode('\"abc')", "ERR:user_script:1: Expected value but found unexpected end of string at character 5"),
            ("cjson.decode('\"a\\\\qb\"')", "ERR:user_script:1: Expected value but found invalid escape code at character 3"),
            ("cjson.decode('\"\\\\u12\"')", "ERR:user_script:1: Expected value but found invalid unicode escape code at character 2"),
            ("cjson.decode('\"\\\\ud800\"')", "ERR:user_script:1: Expected value but found invalid unicode escape code at character 2"),
            ("cjson.decode('\"\\\\ud800\\\\u0041\"')", "ERR:user_script:1: Expected value but found invalid unicode escape code at character 2"),
            ("cjson.decode('\"\\\\udc00\"')", "ERR:user_script:1: Expected value but found invalid unicode escape code at character 2"),
            ("cjson.decode('\"\\\\uzzzz\"')", "ERR:user_script:1: Expected value but found invalid unicode escape code at character 2"),
            ("cjson.decode('\"a\\0b\"')", "ERR:user_script:1: Expected value but found unexpected end of string at character 3"),
            ("cjson.decode('\\0a')", "ERR:user_script:1: JSON parser does not support UTF-16 or UTF-32"),
            ("cjson.decode('a\\0')", "ERR:user_script:1: JSON parser does not support UTF-16 or UTF-32"),
            ("#cjson.decode('[1]\\0junk')", "1"),
            ("cjson.decode(123)", "123"),
            ("cjson.decode()", "ERR:user_script:1: bad argument #1 to 'decode' (expected 1 argument)"),
            ("cjson.decode(nil)", "ERR:user_script:1: bad argument #1 to 'decode' (string expected, got nil)"),
            ("cjson.decode({})", "ERR:user_script:1: bad argument #1 to 'decode' (string expected, got table)"),
            ("cjson.decode('1', 2)", "ERR:user_script:1: bad argument #1 to 'decode' (expected 1 argument)"),
            ("#cjson.decode('[[[]]]')[1][1]", "0"),
            ("cjson.encode(cjson.decode('{}'))", "{}"),
            ("cjson.encode(cjson.decode('[]'))", "{}"),
            ("cjson.encode(cjson.decode('[null,null]'))", "[null,null]"),
            ("cjson.decode('{\"a\":1,\"a\":2}').a", "2"),
            ("cjson.decode('[1,[2,[3,[4]]]]')[2][2][2][1]", "4"),
            ("(function() local s = string.rep('[', 1000) .. string.rep(']', 1000) local ok = pcall(cjson.decode, s) return ok end)()", "true"),
            ("cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))", "ERR:user_script:1: Found too many nested data structures (1001) at character 1001"),
            ("cjson.decode(string.rep('{\"a\":', 1001) .. '1' .. string.rep('}', 1001))", "ERR:user_script:1: Found too many nested data structures (1001) at character 5001"),
            ("cjson.decode(string.rep('[', 100000))", "ERR:user_script:1: Found too many nested data structures (1001) at character 1001"),
            ("(function() cjson.decode_max_depth(2) local ok, e = pcall(cjson.decode, '[[[1]]]') cjson.decode_max_depth(1000) return e end)()", "Found too many nested data structures (3) at character 3"),
            ("(function() cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, '0x10') cjson.decode_invalid_numbers(true) return e end)()", "Expected value but found invalid number at character 1"),
            ("(function() cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, 'nan') cjson.decode_invalid_numbers(true) return e end)()", "Expected value but found invalid token at character 1"),
            ("(function() cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, '[+1]') cjson.decode_invalid_numbers(true) return e end)()", "Expected value but found invalid token at character 2"),
            ("(function() cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, '-01') cjson.decode_invalid_numbers(true) return e end)()", "Expected value but found invalid number at character 1"),
            ("(function() cjson.decode_invalid_numbers(false) local r = cjson.decode('[-0.5, 10]') cjson.decode_invalid_numbers(true) return r[1] + r[2] end)()", "9.5"),
            ("(function() local ok, e = pcall(cjson.decode, '[') return e end)()", "Expected value but found T_END at character 2"),
        ]);
    }

    /// With the depth limits raised, Redis nests until Lua's stack is full (about 8000
    /// arrays); we stop at our own bound, with the same message, instead of crashing.
    #[test]
    fn raised_limits_stop_at_our_bound() {
        check(&[
            (
                "(function() cjson.decode_max_depth(100000) \
                 local ok, e = pcall(cjson.decode, string.rep('[', 100000)) \
                 cjson.decode_max_depth(1000) return e end)()",
                "Found too many nested data structures (2501) at character 2501",
            ),
            (
                "(function() cjson.encode_max_depth(100000) local t = {} \
                 for i = 1, 10000 do t = {t} end local ok, e = pcall(cjson.encode, t) \
                 cjson.encode_max_depth(1000) return e end)()",
                "Cannot serialise, excessive nesting (2501)",
            ),
            (
                "(function() cjson.decode_max_depth(2000) \
                 local s = string.rep('{\"a\":', 2000) .. '1' .. string.rep('}', 2000) \
                 return cjson.decode(s).a.a.a.a ~= nil end)()",
                "true",
            ),
        ]);
    }

    #[test]
    fn edge_cases_match_redis() {
        check(&[
            // CASES-MORE
            ("(function() local t = {} for i = 0, 255 do t[#t+1] = string.char(i) end return hex(cjson.encode(table.concat(t))) end)()", "225c75303030305c75303030315c75303030325c75303030335c75303030345c75303030355c75303030365c75303030375c625c745c6e5c75303030625c665c725c75303030655c75303030665c75303031305c75303031315c75303031325c75303031335c75303031345c75303031355c75303031365c75303031375c75303031385c75303031395c75303031615c75303031625c75303031635c75303031645c75303031655c753030316620215c22232425262728292a2b2c2d2e5c2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e5c7530303766808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff22"),
            ("(function() local t = {} for i = 0, 255 do t[#t+1] = string.char(i) end local s = table.concat(t) return cjson.decode(cjson.encode(s)) == s end)()", "true"),
            ("(function() local t = {} for i = 1, 255 do t[#t+1] = string.char(i) end return hex(cjson.decode('\"' .. string.gsub(table.concat(t), '[\"\\\\\\\\]', '') .. '\"')) end)()", "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"),
            ("hex(cjson.decode('\"\\\\u00ff\\\\u0100\\\\u07ff\\\\u0800\\\\uffff\\\\ud800\\\\udc00\\\\udbff\\\\udfff\"'))", "c3bfc480dfbfe0a080efbfbff0908080f48fbfbf"),
            ("hex(cjson.decode('\"\\\\uD83D\\\\uDE00\\\\u00E9\"'))", "f09f9880c3a9"),
            ("cjson.decode('\"\\\\ud83d\\\\ude0\"')", "ERR:user_script:1: Expected value but found invalid unicode escape code at character 2"),
            ("cjson.decode('\"\\\\ud83d\\\\x\"')", "ERR:user_script:1: Expected value but found invalid unicode escape code at character 2"),
            ("cjson.decode('\"\\\\ud83d\"')", "ERR:user_script:1: Expected value but found invalid unicode escape code at character 2"),
            ("cjson.decode('\"\\\\')", "ERR:user_script:1: Expected value but found invalid escape code at character 2"),
            ("cjson.decode('[1,{\"a\":[true,false,null,\"x\"]},-2.5e-3]')[2].a[4]", "x"),
            ("cjson.encode(cjson.decode('[1,{\"a\":[true,false,null,\"x\"]},-2.5e-3]'))", "[1,{\"a\":[true,false,null,\"x\"]},-0.0025]"),
            ("cjson.encode(cjson.decode('{\"b\":{\"c\":{\"d\":[[],{}]}}}'))", "{\"b\":{\"c\":{\"d\":[{},{}]}}}"),
            ("cjson.decode('{\"a\":1}   \\n\\t\\r ').a", "1"),
            ("cjson.decode('\\t[\\n1\\r,\\r\\n2 ] ')[2]", "2"),
            ("cjson.decode('[1,2,3,]')", "ERR:user_script:1: Expected value but found T_ARR_END at character 8"),
            ("cjson.decode('{\"a\":}')", "ERR:user_script:1: Expected value but found T_OBJ_END at character 6"),
            ("cjson.decode('{\"a\"')", "ERR:user_script:1: Expected colon but found T_END at character 5"),
            ("cjson.decode('{')", "ERR:user_script:1: Expected object key string but found T_END at character 2"),
            ("cjson.decode('[')", "ERR:user_script:1: Expected value but found T_END at character 2"),
            ("cjson.decode('}')", "ERR:user_script:1: Expected value but found T_OBJ_END at character 1"),
            ("cjson.decode(':')", "ERR:user_script:1: Expected value but found T_COLON at character 1"),
            ("cjson.decode('\"x\":1')", "ERR:user_script:1: Expected the end but found T_COLON at character 4"),
            ("cjson.decode('-inf')", "-inf"),
            ("cjson.decode('-nan')", "-nan"),
            ("cjson.decode('infinity')", "inf"),
            ("cjson.decode('-0x10')", "-16"),
            ("cjson.decode('1e5x')", "ERR:user_script:1: Expected the end but found invalid token at character 4"),
            ("cjson.decode('0.5.5')", "ERR:user_script:1: Expected the end but found invalid token at character 4"),
            ("cjson.decode('--1')", "ERR:user_script:1: Expected value but found invalid number at character 1"),
            ("cjson.decode('1 2')", "ERR:user_script:1: Expected the end but found T_NUMBER at character 3"),
            ("cjson.decode('nulls')", "ERR:user_script:1: Expected the end but found invalid token at character 5"),
            ("cjson.decode('truefalse')", "ERR:user_script:1: Expected the end but found T_BOOLEAN at character 5"),
            ("cjson.decode('[nan]')[1]", "nan"),
            ("cjson.decode('[NaN, Infinity]')[2]", "inf"),
            ("cjson.decode('Nan')", "nan"),
            ("cjson.decode('nan(123)')", "nan"),
            ("cjson.decode('nan(12 3)')", "ERR:user_script:1: Expected the end but found invalid token at character 4"),
            ("cjson.decode('0xg')", "ERR:user_script:1: Expected the end but found invalid token at character 2"),
            ("cjson.decode('0x1.')", "1"),
            ("cjson.decode('0x1p')", "ERR:user_script:1: Expected the end but found invalid token at character 4"),
            ("cjson.decode('1e')", "ERR:user_script:1: Expected the end but found invalid token at character 2"),
            ("cjson.decode('1E+2')", "100"),
            ("cjson.decode('00')", "0"),
            ("cjson.decode('-0.0')", "-0"),
            ("cjson.encode({1, 2, nil, 4})", "[1,2,null,4]"),
            ("cjson.encode({[1]=1, [2]=2, [3]=3, [20]=4})", "ERR:user_script:1: Cannot serialise table: excessively sparse array"),
            ("cjson.encode({[1]='a', [2]='b', n=2})", "{\"1\":\"a\",\"2\":\"b\",\"n\":2}"),
            ("cjson.encode({[2^31-1]=1})", "ERR:user_script:1: Cannot serialise table: excessively sparse array"),
            ("cjson.encode({[1e300]=1})", "{\"1e+300\":1}"),
            ("cjson.encode({[-0.5]=1})", "{\"-0.5\":1}"),
            ("cjson.encode({[0/0 ~= 0/0 and 1 or 2]=true})", "[true]"),
            ("cjson.encode({{}, {{}}, {a={}}})", "[{},[{}],{\"a\":{}}]"),
            ("cjson.encode({x=cjson.null})", "{\"x\":null}"),
            ("cjson.encode(string.rep('a', 10))", "\"aaaaaaaaaa\""),
            ("cjson.encode(\"\\226\\130\\172\")", "\"€\""),
            ("cjson.encode(-1e-7)", "-1e-07"),
            ("cjson.encode(123456.789e3)", "123456789"),
            ("cjson.encode(1e100)", "1e+100"),
            ("cjson.encode(-2^63)", "-9.2233720368548e+18"),
            ("cjson.encode({5e-324})", "[4.9406564584125e-324]"),
        ]);
    }

    #[test]
    fn config_matches_redis() {
        check(&[
            // CASES-CONFIG
            ("cjson.encode_max_depth()", "1000"),
            ("cjson.decode_max_depth()", "1000"),
            ("cjson.encode_number_precision()", "14"),
            ("cjson.encode_keep_buffer()", "true"),
            ("cjson.encode_invalid_numbers()", "false"),
            ("cjson.decode_invalid_numbers()", "true"),
            ("select('#', cjson.encode_sparse_array())", "3"),
            ("table.concat({tostring(cjson.encode_sparse_array())}, ',')", "false"),
            ("(function() local a, b, c = cjson.encode_sparse_array() return tostring(a)..','..b..','..c end)()", "false,2,10"),
            ("(function() local a, b, c = cjson.encode_sparse_array(\"on\", 3, 20) local r = tostring(a)..','..b..','..c cjson.encode_sparse_array(false, 2, 10) return r end)()", "true,3,20"),
            ("cjson.encode_max_depth(0)", "ERR:user_script:1: bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)"),
            ("cjson.encode_max_depth(-5)", "ERR:user_script:1: bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)"),
            ("cjson.encode_max_depth(\"x\")", "ERR:user_script:1: bad argument #1 to 'encode_max_depth' (number expected, got string)"),
            ("cjson.encode_max_depth({})", "ERR:user_script:1: bad argument #1 to 'encode_max_depth' (number expected, got table)"),
            ("cjson.encode_max_depth(1, 2)", "ERR:user_script:1: bad argument #2 to 'encode_max_depth' (found too many arguments)"),
            ("cjson.encode_number_precision(15)", "ERR:user_script:1: bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)"),
            ("cjson.encode_number_precision(0)", "ERR:user_script:1: bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)"),
            ("cjson.encode_sparse_array(nil, -1)", "ERR:user_script:1: bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)"),
            ("cjson.encode_sparse_array(nil, nil, -1)", "ERR:user_script:1: bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)"),
            ("cjson.encode_sparse_array(nil, nil, nil, 1)", "ERR:user_script:1: bad argument #4 to 'encode_sparse_array' (found too many arguments)"),
            ("cjson.encode_keep_buffer(\"maybe\")", "ERR:user_script:1: bad argument #1 to 'encode_keep_buffer' (invalid option 'maybe')"),
            ("cjson.encode_keep_buffer(1)", "ERR:user_script:1: bad argument #1 to 'encode_keep_buffer' (invalid option '1')"),
            ("cjson.encode_keep_buffer({})", "ERR:user_script:1: bad argument #1 to 'encode_keep_buffer' (string expected, got table)"),
            ("(function() local r = cjson.encode_keep_buffer(\"off\") cjson.encode_keep_buffer(true) return r end)()", "false"),
            ("(function() local r = cjson.encode_invalid_numbers(\"null\") cjson.encode_invalid_numbers(false) return r end)()", "null"),
            ("(function() local r = cjson.encode_invalid_numbers(\"on\") cjson.encode_invalid_numbers(false) return r end)()", "true"),
            ("cjson.encode_invalid_numbers(\"bogus\")", "ERR:user_script:1: bad argument #1 to 'encode_invalid_numbers' (invalid option 'bogus')"),
            ("(function() local r = cjson.encode_max_depth(7.9) cjson.encode_max_depth(1000) return r end)()", "7"),
            ("(function() local r = cjson.encode_max_depth(\"12\") cjson.encode_max_depth(1000) return r end)()", "12"),
            ("cjson._NAME", "cjson"),
            ("cjson._VERSION", "2.1.0"),
            ("type(cjson.new)", "function"),
            ("(function() local c = cjson.new() c.encode_max_depth(1) local ok, e = pcall(c.encode, {{}}) return e .. ' ' .. cjson.encode({{}}) .. ' ' .. cjson.encode_max_depth() end)()", "Cannot serialise, excessive nesting (2) [{}] 1000"),
            ("cjson.new().decode('[5]')[1]", "5"),
            ("cjson.null", "userdata: (nil)"),
            ("type(cjson.null)", "userdata"),
            ("(function() local f = cjson.encode local ok, e = pcall(function() return f() end) return e end)()", "user_script:1: bad argument #1 to 'f' (expected 1 argument)"),
            ("(function() local ok, e = pcall(cjson.encode) return e end)()", "bad argument #1 to '?' (expected 1 argument)"),
        ]);
    }
}
