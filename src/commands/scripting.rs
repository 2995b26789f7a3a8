//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (Redis `eval.c`).
//!
//! Scripts are cached by the SHA1 of their body; EVAL compiles a script the first time it sees
//! it, EVALSHA only runs cached ones. A script body may start with a `#!lua flags=...` shebang
//! (Redis 7 script flags); without one the script keeps the pre-7.0 semantics. The execution
//! itself lives in `crate::scripting::run`.

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::scripting::{self, busy, flags as sflags, run, Script};

const EVAL_FLAGS: u32 = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLE_KEYS;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("eval", -3, EVAL_FLAGS, 0, 0, 0, eval),
    CommandSpec::new("evalsha", -3, EVAL_FLAGS, 0, 0, 0, evalsha),
    CommandSpec::new("eval_ro", -3, EVAL_FLAGS | READONLY, 0, 0, 0, eval_ro),
    CommandSpec::new("evalsha_ro", -3, EVAL_FLAGS | READONLY, 0, 0, 0, evalsha_ro),
    CommandSpec::container(
        "script",
        -2,
        0,
        &[
            CommandSpec::sub("script", "exists", -3, NOSCRIPT, 0, 0, 0, script_exists),
            CommandSpec::sub("script", "flush", -2, NOSCRIPT, 0, 0, 0, script_flush),
            CommandSpec::sub("script", "help", 2, LOADING | STALE, 0, 0, 0, script_help),
            CommandSpec::sub("script", "kill", 2, NOSCRIPT | ALLOW_BUSY, 0, 0, 0, script_kill),
            CommandSpec::sub("script", "load", 3, NOSCRIPT | STALE, 0, 0, 0, script_load),
        ],
    ),
];

/// Runs a script, compiling and caching it first if needed.
///
/// ```text
/// EVAL script numkeys [key [key ...]] [arg [arg ...]]
/// ```
fn eval(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, argv, false, false)
}

/// Runs a cached script by its SHA1.
///
/// ```text
/// EVALSHA sha1 numkeys [key [key ...]] [arg [arg ...]]
/// ```
fn evalsha(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, argv, true, false)
}

/// EVAL for read-only scripts: any write command inside fails.
///
/// ```text
/// EVAL_RO script numkeys [key [key ...]] [arg [arg ...]]
/// ```
fn eval_ro(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, argv, false, true)
}

/// EVALSHA for read-only scripts.
///
/// ```text
/// EVALSHA_RO sha1 numkeys [key [key ...]] [arg [arg ...]]
/// ```
fn evalsha_ro(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, argv, true, true)
}

const NOSCRIPT_ERR: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// Parses `numkeys` against the argument count (shared with FCALL).
pub fn numkeys(argv: &[&[u8]]) -> Result<usize, CmdError> {
    let n = args::int(argv[2])?;
    if n > (argv.len() - 3) as i64 {
        return Err(CmdError::err("Number of keys can't be greater than number of args"));
    }
    if n < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    Ok(n as usize)
}

fn eval_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], by_sha: bool, read_only: bool) -> CmdResult {
    ctx.feed_monitors(argv);
    if by_sha && argv[1].len() != 40 {
        return Err(CmdError::raw(NOSCRIPT_ERR));
    }
    let nkeys = numkeys(argv)?;
    // Why a stack copy: EVALSHA looks its script up on every call, and two `String`s per call
    // (lossy decoding, lowercasing) showed in its profile.
    let mut lower = [0u8; 40];
    let computed;
    let sha: &str = if by_sha {
        scripting::lowercase_sha(argv[1], &mut lower).ok_or_else(|| CmdError::raw(NOSCRIPT_ERR))?
    } else {
        computed = scripting::sha1_hex(argv[1]);
        if !ctx.srv.scripting.scripts.contains_key(&computed) {
            create_script(ctx, &computed, argv[1])?;
        }
        &computed
    };
    let Some(script) = ctx.srv.scripting.scripts.get(sha) else {
        return Err(CmdError::raw(NOSCRIPT_ERR));
    };
    let inv = run::Invocation {
        argv,
        func: script.func.clone(),
        keys: &argv[3..3 + nkeys],
        args: &argv[3 + nkeys..],
        eval_mode: true,
        name: sha,
        flags: script.flags,
        read_only,
    };
    run::run(ctx, inv)
}

/// Whether a script command may write, judged from the script's flags as Redis's
/// `getCommandFlags` does for EVAL / FCALL (CLIENT PAUSE WRITE holds such commands): a script
/// with flags writes unless it declares `no-writes`; one without flags may write unless run
/// with a `_RO` command; an unknown script or function counts by its command alone. `None`
/// for other commands.
pub fn script_may_write<A: AsRef<[u8]>>(
    scripting: &scripting::Scripting,
    argv: &[A],
) -> Option<bool> {
    let name = argv.first()?.as_ref();
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    let ro = is("eval_ro") || is("evalsha_ro") || is("fcall_ro");
    let arg1 = || argv.get(1).map(AsRef::as_ref);
    let flags = if is("eval") || is("eval_ro") {
        arg1().and_then(|b| shebang_flags(b).ok()).map(|f| f.0)
    } else if is("evalsha") || is("evalsha_ro") {
        arg1()
            .and_then(|sha| scripting.scripts.get(scripting::lowercase_sha(sha, &mut [0; 40])?))
            .map(|s| s.flags)
    } else if is("fcall") || is("fcall_ro") {
        arg1().and_then(|f| scripting.libs.function(&String::from_utf8_lossy(f))).map(|f| f.flags)
    } else {
        return None;
    };
    Some(match flags {
        Some(f) if f & sflags::EVAL_COMPAT == 0 => f & sflags::NO_WRITES == 0,
        _ => !ro,
    })
}

/// Compiles `body` and adds it to the cache under `sha`.
fn create_script(ctx: &mut Ctx<'_>, sha: &str, body: &[u8]) -> CmdResult {
    let (flags, shebang_len) = shebang_flags(body).map_err(CmdError::err)?;
    // The shebang line is skipped but its newline kept, so line numbers stay the user's.
    let code = &body[shebang_len..];
    let func = ctx
        .srv
        .scripting
        .eval
        .compile("@user_script", code)
        .map_err(|e| CmdError::err(format!("Error compiling script (new function): {e}")))?;
    let script = Script { body: body.to_vec(), flags, func };
    ctx.srv.scripting.scripts.insert(sha.to_string(), script);
    Ok(())
}

/// Reads a `#!lua flags=a,b` shebang: the script flags and the length of the shebang line.
/// A body without a shebang gets the compatibility flag.
pub fn shebang_flags(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((sflags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts: Vec<String> = crate::protocol::inline::split_args(&body[..end])
        .unwrap_or_default()
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let Some(engine) = parts.first() else {
        return Err("Invalid engine in script shebang".into());
    };
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = 0;
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        for name in list.split(',') {
            if name.is_empty() && list.is_empty() {
                continue;
            }
            flags |= sflags::parse(name.as_bytes())
                .ok_or_else(|| format!("Unexpected flag in script shebang: {name}"))?;
        }
    }
    Ok((flags, end))
}

/// Reports which scripts are cached.
///
/// ```text
/// SCRIPT EXISTS sha1 [sha1 ...]
/// ```
fn script_exists(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let scripts = &ctx.srv.scripting.scripts;
    let found: Vec<bool> = argv[2..]
        .iter()
        .map(|sha| scripts.contains_key(&String::from_utf8_lossy(sha).to_ascii_lowercase()))
        .collect();
    ctx.out.array(found.len());
    for f in found {
        ctx.out.integer(i64::from(f));
    }
    Ok(())
}

/// Empties the script cache.
///
/// ```text
/// SCRIPT FLUSH [ASYNC | SYNC]
/// ```
fn script_flush(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let ok = match argv.len() {
        2 => true,
        3 => is(argv[2], "sync") || is(argv[2], "async"),
        _ => false,
    };
    if !ok {
        return Err(CmdError::err("SCRIPT FLUSH only support SYNC|ASYNC option"));
    }
    ctx.srv.scripting.flush_eval();
    ctx.out.ok();
    Ok(())
}

/// Kills the running script. Nothing can be running when a command gets here (scripts run to
/// completion inside their command), so this is NOTBUSY; while a script is busy the hook
/// answers SCRIPT KILL itself (see `scripting::busy`).
///
/// ```text
/// SCRIPT KILL
/// ```
fn script_kill(_ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    Err(CmdError::raw(busy::NOTBUSY))
}

/// Compiles a script into the cache without running it; replies its SHA1.
///
/// ```text
/// SCRIPT LOAD script
/// ```
fn script_load(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let sha = scripting::sha1_hex(argv[2]);
    if !ctx.srv.scripting.scripts.contains_key(&sha) {
        create_script(ctx, &sha, argv[2])?;
    }
    ctx.out.bulk(sha.as_bytes());
    Ok(())
}

/// ```text
/// SCRIPT HELP
/// ```
fn script_help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::command::reply_help(ctx.out, "SCRIPT", SCRIPT_HELP);
    Ok(())
}

const SCRIPT_HELP: &[&str] = &[
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        assert_eq!(shebang_flags(b"return 1"), Ok((sflags::EVAL_COMPAT, 0)));
        assert_eq!(shebang_flags(b"#!lua\nreturn 1"), Ok((0, 5)));
        assert_eq!(
            shebang_flags(b"#!lua flags=no-writes,allow-oom\nx"),
            Ok((sflags::NO_WRITES | sflags::ALLOW_OOM, 31))
        );
        assert_eq!(shebang_flags(b"#!lua"), Err("Invalid script shebang".into()));
        assert_eq!(
            shebang_flags(b"#!python\n"),
            Err("Unexpected engine in script shebang: #!python".into())
        );
        assert_eq!(
            shebang_flags(b"#!lua flags=bad\n"),
            Err("Unexpected flag in script shebang: bad".into())
        );
        assert_eq!(shebang_flags(b"#!lua x=1\n"), Err("Unknown lua shebang option: x=1".into()));
    }
}
