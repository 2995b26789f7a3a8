//! SLOWLOG: reading and clearing the slow log (`server::slowlog`, fed by the dispatcher).

use super::args;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};

pub(crate) const COMMANDS: &[CommandSpec] = &[CommandSpec::container(
    "slowlog",
    -2,
    0,
    &[
        CommandSpec::sub("slowlog", "get", -2, ADMIN | LOADING | STALE, 0, 0, 0, get),
        CommandSpec::sub("slowlog", "help", 2, LOADING | STALE, 0, 0, 0, help),
        CommandSpec::sub("slowlog", "len", 2, ADMIN | LOADING | STALE, 0, 0, 0, len),
        CommandSpec::sub("slowlog", "reset", 2, ADMIN | LOADING | STALE, 0, 0, 0, reset),
    ],
)];

/// The newest `count` entries (10 by default, all with -1), each as
/// `[id, unix time, µs, [args...], "ip:port", client name]`.
///
/// ```text
/// SLOWLOG GET [count]
/// ```
fn get(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            args::text(argv[1])
        )));
    }
    const RANGE: &str = "ERR count should be greater than or equal to -1";
    let count = match argv.get(2) {
        None => 10,
        Some(a) => match args::int(a) {
            Ok(-1) => usize::MAX,
            Ok(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => return Err(CmdError::raw(RANGE)),
        },
    };
    let log = &ctx.srv.slowlog;
    let n = count.min(log.len());
    ctx.out.array(n);
    for e in log.iter().take(n) {
        ctx.out.array(6);
        ctx.out.integer(e.id as i64);
        ctx.out.integer(e.time as i64);
        ctx.out.integer(e.duration as i64);
        ctx.out.array(e.argv.len());
        for a in &e.argv {
            ctx.out.bulk(a);
        }
        ctx.out.bulk(e.peer.as_bytes());
        ctx.out.bulk(&e.name);
    }
    Ok(())
}

/// ```text
/// SLOWLOG LEN
/// ```
fn len(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.integer(ctx.srv.slowlog.len() as i64);
    Ok(())
}

/// Empties the log; entry ids keep counting.
///
/// ```text
/// SLOWLOG RESET
/// ```
fn reset(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.srv.slowlog.reset();
    ctx.out.ok();
    Ok(())
}

/// ```text
/// SLOWLOG HELP
/// ```
fn help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::command::reply_help(
        ctx.out,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
    Ok(())
}
