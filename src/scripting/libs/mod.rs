//! The libraries Redis preloads into its Lua interpreter besides Lua's own (`bit`, `cjson`,
//! `cmsgpack`, `struct`), written in Rust against the behaviour of Redis 7.0's bundled C ones.
//!
//! Errors are raised as `mlua::Error::RuntimeError` carrying exactly the text the C library
//! would raise (for example `bad argument #1 to 'tobit' (number expected, got nil)`); the
//! engine reaches it through mlua's `CallbackError` cause chain (see [`error_text`]).
//!
//! Every recursive walk (encoding nested tables, decoding nested documents) is bounded by a
//! depth limit, so a hostile script cannot exhaust the Rust stack or mlua's reference stack.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;

use mlua::{Lua, Value};

/// Installs `bit`, `cjson`, `cmsgpack` and `struct` as globals of `lua`.
pub fn register_all(lua: &Lua) -> mlua::Result<()> {
    cjson::register(lua)?;
    structlib::register(lua)?;
    cmsgpack::register(lua)?;
    bit::register(lua)
}

/// The message a library error carries, digging through mlua's `CallbackError` wrappers.
pub fn error_text(err: &mlua::Error) -> String {
    match err {
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::RuntimeError(msg) => msg.clone(),
        other => other.to_string(),
    }
}

/// Lua's stack limit for a C function (`LUAI_MAXCSTACK`): the C libraries fail their
/// `lua_checkstack` calls beyond it, and the limits below reproduce those failures.
pub(crate) const LUA_MAX_CSTACK: usize = 8000;

/// `luaL_error`: `msg` prefixed with the calling Lua function's `chunk:line: ` (nothing when
/// the caller is not a Lua function, e.g. `pcall(cjson.decode, s)`).
pub(crate) fn lua_err(lua: &Lua, msg: impl AsRef<str>) -> mlua::Error {
    let place = lua
        .inspect_stack(1)
        .filter(|ar| ar.curr_line() > 0)
        .map(|ar| {
            let src = ar
                .source()
                .short_src
                .map(|s| s.into_owned())
                .unwrap_or_default();
            format!("{src}:{}: ", ar.curr_line())
        })
        .unwrap_or_default();
    mlua::Error::RuntimeError(format!("{place}{}", msg.as_ref()))
}

/// An error raised without position information (what `luaG_runerror` gives inside a C
/// function, e.g. `table index is nil`).
pub(crate) fn plain_err(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

/// `luaL_argerror`: `bad argument #n to 'func' (msg)`, `func` being the name the running
/// function was called by (`?` when it has none), or `calling 'f' on bad self` for a method
/// call's receiver.
pub(crate) fn arg_err(lua: &Lua, n: usize, msg: &str) -> mlua::Error {
    let (name, method) = lua
        .inspect_stack(0)
        .map(|ar| {
            let names = ar.names();
            let name = names.name.map(|s| s.into_owned());
            let method = names.name_what == Some("method");
            (name, method)
        })
        .unwrap_or((None, false));
    let name = name.unwrap_or_else(|| "?".to_string());
    if method {
        if n == 1 {
            return lua_err(lua, format!("calling '{name}' on bad self ({msg})"));
        }
        return lua_err(lua, format!("bad argument #{} to '{name}' ({msg})", n - 1));
    }
    lua_err(lua, format!("bad argument #{n} to '{name}' ({msg})"))
}

/// `luaL_typerror`: `bad argument #n to 'func' (number expected, got nil)`; a missing
/// argument is reported as `no value`.
pub(crate) fn type_err(lua: &Lua, n: usize, expected: &str, got: Option<&Value>) -> mlua::Error {
    let got = got.map_or("no value", type_name);
    arg_err(lua, n, &format!("{expected} expected, got {got}"))
}

/// Lua's own type names (`lua_typename`), which call light userdata plain `userdata`.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// `lua_tonumber`: numbers, and strings Lua can read as numbers.
pub(crate) fn to_number(lua: &Lua, v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(_) => lua.coerce_number(v.clone()).ok().flatten(),
        _ => None,
    }
}

/// `luaL_checknumber` on argument `n` (1-based) of `args`.
pub(crate) fn check_number(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<f64> {
    let v = args.get(n - 1);
    v.and_then(|v| to_number(lua, v))
        .ok_or_else(|| type_err(lua, n, "number", v))
}

/// `luaL_checkinteger`: a number truncated toward zero, as Lua 5.1 casts it.
pub(crate) fn check_integer(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<i64> {
    check_number(lua, args, n).map(f64_to_i64)
}

/// `luaL_optinteger`: like [`check_integer`] but `default` when absent or nil.
pub(crate) fn opt_integer(lua: &Lua, args: &[Value], n: usize, default: i64) -> mlua::Result<i64> {
    match args.get(n - 1) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(lua, args, n),
    }
}

/// `luaL_checklstring`: a string, or a number converted the way Lua converts it (`%.14g`).
pub(crate) fn check_bytes(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<Vec<u8>> {
    let v = args.get(n - 1);
    match v {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(i)) => Ok(fmt_g(*i as f64, 14).into_bytes()),
        Some(Value::Number(x)) => Ok(fmt_g(*x, 14).into_bytes()),
        _ => Err(type_err(lua, n, "string", v)),
    }
}

/// A C double-to-int64 cast as x86-64 performs it: truncation, and `i64::MIN` for anything
/// out of range (NaN included).
pub(crate) fn f64_to_i64(x: f64) -> i64 {
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&x) {
        x as i64
    } else {
        i64::MIN
    }
}

/// A C double-to-int cast as x86-64 performs it (`i32::MIN` when out of range).
pub(crate) fn f64_to_i32(x: f64) -> i32 {
    if x > -2_147_483_649.0 && x < 2_147_483_648.0 {
        x as i32
    } else {
        i32::MIN
    }
}

/// C's `printf("%.<prec>g", v)` as glibc prints it (also Lua 5.1's number-to-string with
/// `prec` 14).
pub(crate) fn fmt_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let p = prec.max(1);
    let sci = format!("{:.*e}", p - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!(
            "{}e{}{:02}",
            strip_fraction_zeros(mant),
            sign,
            exp.unsigned_abs()
        )
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_fraction_zeros(&format!("{:.*}", decimals, v)).to_string()
    }
}

/// Drops trailing zeros of a fraction, and the point itself when nothing is left after it.
fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Re-reads a number stored in table `t` under `key` exactly: mlua turns numbers that look
/// integral (including `-0` and magnitudes below `f64::EPSILON`) into the integer 0 when it
/// makes a `Value`, while reading an `f64` directly keeps every bit.
pub(crate) fn exact_field(t: &mlua::Table, key: &Value, v: Value) -> Value {
    match v {
        Value::Integer(0) => t.raw_get::<f64>(key.clone()).map_or(v, Value::Number),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Runs snippets the way the tests compare them with Redis: `run` returns what the
    //! snippet evaluates to via `tostring`, or `ERR:` and the error text.

    use mlua::Lua;

    /// A fresh interpreter with the four libraries and a `hex(s)` helper.
    pub fn lua() -> Lua {
        let lua = Lua::new();
        super::register_all(&lua).expect("register");
        lua.load(
            "function hex(s) return (string.gsub(s, '.', function(c) \
             return string.format('%02x', string.byte(c)) end)) end",
        )
        .exec()
        .expect("hex helper");
        // mlua hands Rust errors to Lua as userdata; like the engine, give `pcall` callers the
        // message text instead.
        let pcall = lua
            .create_function(|lua, (f, args): (mlua::Function, mlua::MultiValue)| {
                let mut out = mlua::MultiValue::new();
                match f.call::<mlua::MultiValue>(args) {
                    Ok(vals) => {
                        out.push_back(mlua::Value::Boolean(true));
                        out.extend(vals);
                    }
                    Err(e) => {
                        out.push_back(mlua::Value::Boolean(false));
                        let text = super::error_text(&e);
                        out.push_back(mlua::Value::String(lua.create_string(&text)?));
                    }
                }
                Ok(out)
            })
            .expect("pcall");
        lua.globals().set("pcall", pcall).expect("set pcall");
        lua
    }

    /// Evaluates `expr` in `lua`; `tostring` of its value or `ERR:<message>`.
    pub fn run(lua: &Lua, expr: &str) -> String {
        let code = format!("return tostring({expr})");
        match lua
            .load(&code)
            .set_name("@user_script")
            .eval::<mlua::String>()
        {
            Ok(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            Err(e) => format!("ERR:{}", super::error_text(&e)),
        }
    }

    /// Checks every `(expr, expected)` pair on one fresh interpreter.
    pub fn check(cases: &[(&str, &str)]) {
        let lua = lua();
        for (expr, want) in cases {
            assert_eq!(run(&lua, expr), *want, "snippet: {expr}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::check;

    /// The module tables hold the same names as Redis's, and tables iterate in the same
    /// order (same Lua 5.1 hashing), which decides the order of encoded objects and maps.
    #[test]
    fn module_tables_match_redis() {
        check(&[
            // CASES-TABLES
            ("(function() local k = {} for n in pairs(cjson) do k[#k+1] = n end table.sort(k) return table.concat(k, ' ') end)()", "_NAME _VERSION decode decode_invalid_numbers decode_max_depth encode encode_invalid_numbers encode_keep_buffer encode_max_depth encode_number_precision encode_sparse_array new null"),
            ("(function() local k = {} for n in pairs(cmsgpack) do k[#k+1] = n end table.sort(k) return table.concat(k, ' ') end)()", "_COPYRIGHT _DESCRIPTION _NAME _VERSION pack unpack unpack_limit unpack_one"),
            ("(function() local k = {} for n in pairs(struct) do k[#k+1] = n end table.sort(k) return table.concat(k, ' ') end)()", "pack size unpack"),
            ("(function() local k = {} for n in pairs(bit) do k[#k+1] = n end table.sort(k) return table.concat(k, ' ') end)()", "arshift band bnot bor bswap bxor lshift rol ror rshift tobit tohex"),
            ("cjson.encode({a=1,b=2,c=3,d=4,e=5})", "{\"a\":1,\"c\":3,\"b\":2,\"e\":5,\"d\":4}"),
            ("cjson.encode({[\"1\"]=1, [2]=2})", "{\"1\":1,\"2\":2}"),
            ("cmsgpack.unpack(cmsgpack.pack({a=1,b=2,c=3})).c", "3"),
            ("hex(cmsgpack.pack({a=1,b=2,c=3,d=4,e=5}))", "85a16101a16303a16202a16505a16404"),
        ]);
    }
}
