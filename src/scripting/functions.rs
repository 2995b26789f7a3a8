//! Function libraries (Redis's `functions.c` / `function_lua.c`).
//!
//! A library is Lua code starting with `#!lua name=<lib>`. FUNCTION LOAD runs its top level
//! once in an environment that holds only a reduced `redis` table (`register_function`,
//! `log`, the log levels and the version); every `redis.register_function` call adds a
//! function. FCALL then calls the registered callback with the full script environment.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::engine::{lua_error_text, raise_table, table_error, Engine};
use super::{flags, Busy};

/// How long a library's top level may run during FUNCTION LOAD (Redis's `LOAD_TIMEOUT_MS`).
const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// One registered function.
#[derive(Clone)]
pub struct FunctionDef {
    pub name: String,
    pub desc: Option<Vec<u8>>,
    pub flags: u32,
    pub func: Function,
}

/// One library.
#[derive(Clone)]
pub struct Library {
    pub name: String,
    pub engine: String,
    /// The whole code as loaded, shebang included (FUNCTION LIST WITHCODE, DUMP).
    pub code: Vec<u8>,
    pub functions: BTreeMap<String, FunctionDef>,
}

/// Every loaded library, plus an index of function names. Function names are case-insensitive
/// like Redis's (keyed by the lowercase name); library names are case-sensitive.
#[derive(Default, Clone)]
pub struct Libraries {
    pub libs: BTreeMap<String, Library>,
    /// Function name -> library name.
    pub functions: HashMap<String, String>,
}

impl Libraries {
    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        let key = name.to_ascii_lowercase();
        let lib = self.functions.get(&key)?;
        self.libs.get(lib)?.functions.get(&key)
    }

    /// Adds a library, indexing its functions.
    pub fn link(&mut self, lib: Library) {
        let key = lib.name.clone();
        for f in lib.functions.keys() {
            self.functions.insert(f.clone(), key.clone());
        }
        self.libs.insert(key, lib);
    }

    /// Removes a library and its functions.
    pub fn unlink(&mut self, name: &str) -> Option<Library> {
        let lib = self.libs.remove(name)?;
        for f in lib.functions.keys() {
            self.functions.remove(f);
        }
        Some(lib)
    }

    pub fn function_count(&self) -> usize {
        self.functions.len()
    }
}

/// Library metadata from the shebang line.
struct Metadata {
    engine: String,
    name: String,
    /// Offset of the code after the shebang (its newline kept, for line numbers).
    code_start: usize,
}

fn parse_metadata(code: &[u8]) -> Result<Metadata, String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&c| c == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts: Vec<String> = crate::protocol::inline::split_args(&code[..end])
        .unwrap_or_default()
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let Some(first) = parts.first() else {
        return Err("Invalid library metadata".into());
    };
    let engine = first.get(2..).unwrap_or("").to_string();
    let mut name = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part.is_char_boundary(5) && part[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into()
                );
            }
            name = Some(part[5..].to_string());
            continue;
        }
        return Err(format!("Invalid metadata value given: {part}"));
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    Ok(Metadata { engine, name, code_start: end })
}

/// Letters, digits and underscores, at least one.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and \
must be at least one character long";

/// Compiles and runs a library's code, and checks it against the loaded ones. Returns the new
/// library (not linked yet) or Redis's error text.
pub fn create(
    engine: &Engine,
    busy: &Busy,
    libs: &Libraries,
    code: &[u8],
    replace: bool,
) -> Result<Library, String> {
    let md = parse_metadata(code)?;
    if !valid_name(&md.name) {
        return Err(BAD_NAME.into());
    }
    if !md.engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{}' not found", md.engine));
    }
    let key = md.name.clone();
    if libs.libs.contains_key(&key) && !replace {
        return Err(format!("Library '{}' already exists", md.name));
    }
    let functions = run_library(engine, busy, &code[md.code_start..])?;
    if functions.is_empty() {
        return Err("No functions registered".into());
    }
    for (f, def) in &functions {
        if libs.functions.get(f).is_some_and(|owner| *owner != key) {
            return Err(format!("Function {} already exists", def.name));
        }
    }
    Ok(Library { name: md.name, engine: md.engine, code: code.to_vec(), functions })
}

/// Runs the library's top level with `redis.register_function` available; returns what it
/// registered.
fn run_library(
    engine: &Engine,
    busy: &Busy,
    code: &[u8],
) -> Result<BTreeMap<String, FunctionDef>, String> {
    let chunk = engine
        .compile("@user_function", code)
        .map_err(|e| format!("Error compiling function: {e}"))?;
    let registered: Rc<RefCell<Option<BTreeMap<String, FunctionDef>>>> =
        Rc::new(RefCell::new(Some(BTreeMap::new())));
    let lua = &engine.lua;
    let reg = registered.clone();
    let register = lua
        .create_function(move |lua, args: MultiValue| register_function(lua, &reg, args))
        .map_err(|e| lua_error_text(&e))?;
    let outcome = (|| -> mlua::Result<(bool, Value)> {
        let api: Table = engine.library_api.call(register)?;
        engine.set_lookup.call::<()>(api)?;
        busy.load_deadline.set(Some(Instant::now() + LOAD_TIMEOUT));
        let r = engine.run_library.call::<(bool, Value)>(chunk);
        busy.load_deadline.set(None);
        engine.set_lookup.call::<()>(Value::Nil)?;
        r
    })();
    // Later calls of a saved register_function fail like Redis's outside FUNCTION LOAD.
    let functions = registered.borrow_mut().take().unwrap_or_default();
    match outcome {
        Ok((true, _)) => Ok(functions),
        Ok((false, err)) => Err(format!("Error registering functions: {}", load_error(&err))),
        Err(e) => Err(format!("Error registering functions: ERR {}", lua_error_text(&e))),
    }
}

/// The message of an error raised by a library's top level (Redis's
/// `luaExtractErrorInformation` without a handler).
fn load_error(err: &Value) -> String {
    match err {
        Value::Table(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            _ => String::new(),
        },
        Value::String(s) => format!("ERR {}", String::from_utf8_lossy(&s.as_bytes())),
        Value::Error(e) => match table_error(e) {
            Some(msg) => msg,
            None => format!("ERR {}", lua_error_text(e)),
        },
        _ => String::new(),
    }
}

fn fail(msg: &str) -> mlua::Result<()> {
    Err(raise_table(msg))
}

/// `redis.register_function(name, callback)` or
/// `redis.register_function{function_name=..., callback=..., flags={...}, description=...}`.
fn register_function(
    lua: &Lua,
    registered: &RefCell<Option<BTreeMap<String, FunctionDef>>>,
    args: MultiValue,
) -> mlua::Result<()> {
    if registered.borrow().is_none() {
        return fail("redis.register_function can only be called on FUNCTION LOAD command");
    }
    let def = match args.len() {
        1 => named_args(lua, &args[0])?,
        2 => positional_args(lua, &args[0], &args[1])?,
        _ => Err("wrong number of arguments to redis.register_function"),
    };
    let def = match def {
        Ok(d) => d,
        Err(msg) => return fail(msg),
    };
    if !valid_name(&def.name) {
        return fail(BAD_NAME);
    }
    let mut reg = registered.borrow_mut();
    let Some(map) = reg.as_mut() else {
        return fail("redis.register_function can only be called on FUNCTION LOAD command");
    };
    let key = def.name.to_ascii_lowercase();
    if map.contains_key(&key) {
        return fail("Function already exists in the library");
    }
    map.insert(key, def);
    Ok(())
}

fn lua_string(lua: &Lua, v: &Value) -> mlua::Result<Option<Vec<u8>>> {
    Ok(match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => {
            lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec())
        }
        _ => None,
    })
}

fn positional_args(
    lua: &Lua,
    name: &Value,
    callback: &Value,
) -> mlua::Result<Result<FunctionDef, &'static str>> {
    let Some(name) = lua_string(lua, name)? else {
        return Ok(Err("first argument to redis.register_function must be a string"));
    };
    let Value::Function(func) = callback else {
        return Ok(Err("second argument to redis.register_function must be a function"));
    };
    let name = String::from_utf8_lossy(&name).into_owned();
    Ok(Ok(FunctionDef { name, desc: None, flags: 0, func: func.clone() }))
}

fn named_args(lua: &Lua, arg: &Value) -> mlua::Result<Result<FunctionDef, &'static str>> {
    let Value::Table(t) = arg else {
        return Ok(Err("calling redis.register_function with a single argument is only \
                       applicable to Lua table (representing named arguments)."));
    };
    let (mut name, mut desc, mut func, mut fl) = (None, None, None, 0);
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Some(key) = lua_string(lua, &k)? else {
            return Ok(Err("named argument key given to redis.register_function is not a string"));
        };
        let key = String::from_utf8_lossy(&key).to_ascii_lowercase();
        match key.as_str() {
            "function_name" => match lua_string(lua, &v)? {
                Some(s) => name = Some(String::from_utf8_lossy(&s).into_owned()),
                None => {
                    return Ok(Err(
                        "function_name argument given to redis.register_function must be a string",
                    ))
                }
            },
            "description" => match lua_string(lua, &v)? {
                Some(s) => desc = Some(s),
                None => {
                    return Ok(Err(
                        "description argument given to redis.register_function must be a string",
                    ))
                }
            },
            "callback" => match v {
                Value::Function(f) => func = Some(f),
                _ => {
                    return Ok(Err(
                        "callback argument given to redis.register_function must be a function",
                    ))
                }
            },
            "flags" => {
                let Value::Table(ft) = v else {
                    return Ok(Err("flags argument to redis.register_function must be a table \
                                   representing function flags"));
                };
                match read_flags(lua, &ft)? {
                    Some(f) => fl = f,
                    None => return Ok(Err("unknown flag given")),
                }
            }
            _ => return Ok(Err("unknown argument given to redis.register_function")),
        }
    }
    let Some(name) = name else {
        return Ok(Err("redis.register_function must get a function name argument"));
    };
    let Some(func) = func else {
        return Ok(Err("redis.register_function must get a callback argument"));
    };
    Ok(Ok(FunctionDef { name, desc, flags: fl, func }))
}

/// The flags array of a named registration (`None` for an unknown flag).
fn read_flags(lua: &Lua, t: &Table) -> mlua::Result<Option<u32>> {
    let mut fl = 0;
    let mut i = 1;
    loop {
        let v: Value = t.raw_get(i)?;
        if v.is_nil() {
            return Ok(Some(fl));
        }
        let Some(s) = lua_string(lua, &v)? else {
            return Ok(None);
        };
        let lower = s.to_ascii_lowercase();
        match flags::parse(&lower) {
            Some(f) => fl |= f,
            None => return Ok(None),
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata() {
        let md = parse_metadata(b"#!lua name=mylib\nreturn").unwrap();
        assert_eq!((md.engine.as_str(), md.name.as_str(), md.code_start), ("lua", "mylib", 16));
        assert_eq!(parse_metadata(b"return").err().unwrap(), "Missing library metadata");
        assert_eq!(parse_metadata(b"#!lua name=x").err().unwrap(), "Invalid library metadata");
        assert_eq!(
            parse_metadata(b"#!lua foo=x\n").err().unwrap(),
            "Invalid metadata value given: foo=x"
        );
        assert_eq!(parse_metadata(b"#!lua\n").err().unwrap(), "Library name was not given");
    }
}

/// Magic bytes that open a FUNCTION DUMP payload (see `formats/functions.md`).
const DUMP_MAGIC: &[u8; 4] = b"FDFN";
/// Version of the payload format.
const DUMP_VERSION: u16 = 1;

/// Serializes every library's code (FUNCTION DUMP): magic, version, count, then each code as
/// a length-prefixed string, and a CRC32 of everything before it.
pub fn dump(libs: &Libraries) -> Vec<u8> {
    dump_codes(libs.libs.values().map(|lib| &lib.code[..]))
}

/// The FUNCTION DUMP payload of libraries given by their codes (what a snapshot's
/// `functions` aux field and an RDB's function records carry).
pub fn dump_codes<'a>(codes: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(DUMP_MAGIC);
    out.extend_from_slice(&DUMP_VERSION.to_le_bytes());
    out.extend_from_slice(&(codes.len() as u32).to_le_bytes());
    for code in codes {
        out.extend_from_slice(&(code.len() as u32).to_le_bytes());
        out.extend_from_slice(code);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a FUNCTION DUMP payload back into the libraries' codes; `None` when the magic,
/// version, checksum or structure is wrong.
pub fn parse_dump(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    if payload.len() < 14 || &payload[..4] != DUMP_MAGIC {
        return None;
    }
    let (body, crc) = payload.split_at(payload.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    if u16::from_le_bytes([body[4], body[5]]) != DUMP_VERSION {
        return None;
    }
    let count = u32::from_le_bytes(body[6..10].try_into().ok()?) as usize;
    let mut pos = 10;
    let mut codes = Vec::new();
    for _ in 0..count {
        let len = u32::from_le_bytes(body.get(pos..pos + 4)?.try_into().ok()?) as usize;
        pos += 4;
        codes.push(body.get(pos..pos.checked_add(len)?)?.to_vec());
        pos += len;
    }
    (pos == body.len()).then_some(codes)
}

/// Merges `src` into `dst` (FUNCTION RESTORE APPEND / REPLACE): a library that exists in both
/// is an error unless `replace`; a function name taken by another library always is. On error
/// `dst` is unchanged.
pub fn join(dst: &mut Libraries, src: Libraries, replace: bool) -> Result<(), String> {
    let mut replaced = Vec::new();
    for name in src.libs.keys() {
        if dst.libs.contains_key(name) {
            if !replace {
                restore_all(dst, replaced);
                return Err(format!("Library {} already exists", src.libs[name].name));
            }
            if let Some(old) = dst.unlink(name) {
                replaced.push(old);
            }
        }
    }
    for lib in src.libs.values() {
        if let Some(f) = lib.functions.iter().find(|(f, _)| dst.functions.contains_key(*f)) {
            let err = format!("Function {} already exists", f.1.name);
            restore_all(dst, replaced);
            return Err(err);
        }
    }
    for (_, lib) in src.libs {
        dst.link(lib);
    }
    Ok(())
}

fn restore_all(dst: &mut Libraries, libs: Vec<Library>) {
    for lib in libs {
        dst.link(lib);
    }
}

#[cfg(test)]
mod dump_tests {
    use super::*;

    #[test]
    fn dump_payload_round_trips_and_rejects_garbage() {
        let libs = Libraries::default();
        let payload = dump(&libs);
        assert_eq!(parse_dump(&payload), Some(vec![]));
        assert_eq!(parse_dump(b"garbage"), None);
        let mut bad = payload.clone();
        bad[8] ^= 1;
        assert_eq!(parse_dump(&bad), None);
    }
}
