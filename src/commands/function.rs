//! FUNCTION and FCALL / FCALL_RO: Lua function libraries (Redis `functions.c`).
//!
//! Libraries live in `crate::scripting::functions`; this file parses the commands. FUNCTION
//! LOAD / DELETE / FLUSH / RESTORE change the library set and propagate verbatim like Redis's
//! (they count as a write); FCALL runs like EVAL (its effects are propagated, never itself).

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::scripting::functions::{self, Libraries};
use crate::scripting::{busy, flags as sflags, run};
use crate::util::glob;

const FCALL_FLAGS: u32 = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLE_KEYS;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("fcall", -3, FCALL_FLAGS, 0, 0, 0, fcall),
    CommandSpec::new("fcall_ro", -3, FCALL_FLAGS | READONLY, 0, 0, 0, fcall_ro),
    CommandSpec::container(
        "function",
        -2,
        0,
        &[
            CommandSpec::sub("function", "delete", 3, WRITE | NOSCRIPT, 0, 0, 0, delete),
            CommandSpec::sub("function", "dump", 2, NOSCRIPT, 0, 0, 0, dump),
            CommandSpec::sub("function", "flush", -2, WRITE | NOSCRIPT, 0, 0, 0, flush),
            CommandSpec::sub("function", "help", 2, LOADING | STALE, 0, 0, 0, help),
            CommandSpec::sub("function", "kill", 2, NOSCRIPT | ALLOW_BUSY, 0, 0, 0, kill),
            CommandSpec::sub("function", "list", -2, NOSCRIPT, 0, 0, 0, list),
            CommandSpec::sub("function", "load", -3, WRITE | DENYOOM | NOSCRIPT, 0, 0, 0, load),
            CommandSpec::sub(
                "function",
                "restore",
                -3,
                WRITE | DENYOOM | NOSCRIPT,
                0,
                0,
                0,
                restore,
            ),
            CommandSpec::sub("function", "stats", 2, NOSCRIPT | ALLOW_BUSY, 0, 0, 0, stats),
        ],
    ),
];

/// Calls a library function.
///
/// ```text
/// FCALL function numkeys [key [key ...]] [arg [arg ...]]
/// ```
fn fcall(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    fcall_generic(ctx, argv, false)
}

/// Calls a library function that must not write.
///
/// ```text
/// FCALL_RO function numkeys [key [key ...]] [arg [arg ...]]
/// ```
fn fcall_ro(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    fcall_generic(ctx, argv, true)
}

fn fcall_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], read_only: bool) -> CmdResult {
    ctx.feed_monitors(argv);
    let name = String::from_utf8_lossy(argv[1]).into_owned();
    let Some(f) = ctx.srv.scripting.libs.function(&name) else {
        return Err(CmdError::err("Function not found"));
    };
    let (func, fflags) = (f.func.clone(), f.flags);
    let n = args::int(argv[2]).map_err(|_| CmdError::err("Bad number of keys provided"))?;
    if n > (argv.len() - 3) as i64 {
        return Err(CmdError::err("Number of keys can't be greater than number of args"));
    }
    if n < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    let nkeys = n as usize;
    let inv = run::Invocation {
        argv,
        func,
        keys: &argv[3..3 + nkeys],
        args: &argv[3 + nkeys..],
        eval_mode: false,
        name: &name,
        flags: fflags,
        read_only,
    };
    run::run(ctx, inv)
}

/// Loads a library, replacing one of the same name with REPLACE; replies its name.
///
/// ```text
/// FUNCTION LOAD [REPLACE] function-code
/// ```
fn load(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let mut replace = false;
    let mut i = 2;
    while i < argv.len() - 1 {
        if !is(argv[i], "replace") {
            return Err(CmdError::err(format!(
                "Unknown option given: {}",
                args::text(argv[i])
            )));
        }
        replace = true;
        i += 1;
    }
    let code = argv[argv.len() - 1];
    let sc = &mut ctx.srv.scripting;
    let lib = functions::create(&sc.func, &sc.busy, &sc.libs, code, replace)
        .map_err(CmdError::err)?;
    let name = lib.name.clone();
    sc.libs.unlink(&name);
    sc.libs.link(lib);
    ctx.dirty(1);
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

/// Deletes a library and its functions.
///
/// ```text
/// FUNCTION DELETE library-name
/// ```
fn delete(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let name = String::from_utf8_lossy(argv[2]).into_owned();
    if ctx.srv.scripting.libs.unlink(&name).is_none() {
        return Err(CmdError::err("Library not found"));
    }
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

/// Deletes every library.
///
/// ```text
/// FUNCTION FLUSH [ASYNC | SYNC]
/// ```
fn flush(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    match argv.len() {
        2 => {}
        3 if is(argv[2], "async") || is(argv[2], "sync") => {}
        3 => return Err(CmdError::err("FUNCTION FLUSH only supports SYNC|ASYNC option")),
        _ => return Err(subcommand_syntax(argv)),
    }
    ctx.srv.scripting.libs = Libraries::default();
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

fn subcommand_syntax(argv: &[&[u8]]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
        args::text(argv[1])
    ))
}

/// Lists libraries, optionally filtered by a glob on their name, optionally with their code.
///
/// ```text
/// FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]
/// ```
fn list(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (mut with_code, mut pattern): (bool, Option<&[u8]>) = (false, None);
    let mut i = 2;
    while i < argv.len() {
        if !with_code && is(argv[i], "withcode") {
            with_code = true;
        } else if pattern.is_none() && is(argv[i], "libraryname") {
            if i >= argv.len() - 1 {
                return Err(CmdError::err("library name argument was not given"));
            }
            i += 1;
            pattern = Some(argv[i]);
        } else {
            return Err(CmdError::err(format!("Unknown argument {}", args::text(argv[i]))));
        }
        i += 1;
    }
    let libs: Vec<&functions::Library> = ctx
        .srv
        .scripting
        .libs
        .libs
        .values()
        .filter(|l| pattern.is_none_or(|p| glob::matches(p, l.name.as_bytes(), true)))
        .collect();
    let out = &mut *ctx.out;
    out.array(libs.len());
    for lib in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(lib.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in lib.functions.values() {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            match &f.desc {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<&str> =
                sflags::NAMES.iter().filter(|(b, _)| f.flags & b != 0).map(|(_, n)| *n).collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
    Ok(())
}

/// A payload holding every library, for FUNCTION RESTORE: Redis's (`FUNCTION2` records, the
/// RDB version and a CRC-64; `formats/dump.md`), so that redis-server can restore it too.
///
/// ```text
/// FUNCTION DUMP
/// ```
fn dump(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let codes = ctx.srv.scripting.libs.libs.values().map(|l| &l.code[..]);
    let compress = ctx.srv.config.rdbcompression;
    let payload = crate::snapshot::rdb_write::functions_payload(codes, compress);
    ctx.out.bulk(&payload);
    Ok(())
}

/// The library codes of a FUNCTION DUMP payload: Redis's (what FUNCTION DUMP returns) or our
/// legacy one (`formats/functions.md`, what ferrodis returned before). Errors are Redis's.
fn payload_codes(payload: &[u8]) -> Result<Vec<Vec<u8>>, CmdError> {
    use crate::snapshot::rdb;
    if let Some(codes) = functions::parse_dump(payload) {
        return Ok(codes);
    }
    let wrong = || CmdError::err("DUMP payload version or checksum are wrong");
    if payload.len() < 10 {
        return Err(wrong());
    }
    let (body, crc) = payload.split_at(payload.len() - 8);
    let (records, version) = body.split_at(body.len() - 2);
    let version = u32::from(u16::from_le_bytes([version[0], version[1]]));
    if version > rdb::MAX_VERSION || rdb::crc64(body).to_le_bytes() != crc {
        return Err(wrong());
    }
    rdb::function_records(records).map_err(CmdError::err)
}

/// Loads the libraries of a FUNCTION DUMP payload.
///
/// ```text
/// FUNCTION RESTORE serialized-value [FLUSH | APPEND | REPLACE]
/// ```
fn restore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 4 {
        return Err(subcommand_syntax(argv));
    }
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy = match argv.get(3) {
        None => Policy::Append,
        Some(p) if is(p, "append") => Policy::Append,
        Some(p) if is(p, "replace") => Policy::Replace,
        Some(p) if is(p, "flush") => Policy::Flush,
        Some(_) => {
            return Err(CmdError::err(
                "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ))
        }
    };
    let codes = payload_codes(argv[2])?;
    let sc = &mut ctx.srv.scripting;
    let mut loaded = Libraries::default();
    for code in &codes {
        let lib = functions::create(&sc.func, &sc.busy, &loaded, code, false)
            .map_err(CmdError::err)?;
        loaded.link(lib);
    }
    if policy == Policy::Flush {
        sc.libs = loaded;
    } else {
        functions::join(&mut sc.libs, loaded, policy == Policy::Replace).map_err(CmdError::err)?;
    }
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

/// Information about the running function and the engines. Nothing can be running when a
/// command gets here (a busy function answers FUNCTION STATS from its hook with BUSY only for
/// EVAL scripts), so `running_script` is null.
///
/// ```text
/// FUNCTION STATS
/// ```
fn stats(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let libs = &ctx.srv.scripting.libs;
    let (nlibs, nfuncs) = (libs.libs.len(), libs.function_count());
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    out.null();
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.integer(nlibs as i64);
    out.bulk(b"functions_count");
    out.integer(nfuncs as i64);
    Ok(())
}

/// Kills the running function; nothing runs when a command gets here (see SCRIPT KILL).
///
/// ```text
/// FUNCTION KILL
/// ```
fn kill(_ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    Err(CmdError::raw(busy::NOTBUSY))
}

/// ```text
/// FUNCTION HELP
/// ```
fn help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::command::reply_help(ctx.out, "FUNCTION", FUNCTION_HELP);
    Ok(())
}

const FUNCTION_HELP: &[&str] = &[
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using \
FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore \
policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, \
replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of \
failure",
    "      in case of functions name collision with another library).",
];
