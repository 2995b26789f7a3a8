//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET, CLIENT.

use super::flags::*;
use super::{args, CmdError, CmdResult, CommandSpec, Ctx};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, FAST | SENTINEL, 0, 0, 0, ping),
    CommandSpec::new("echo", 2, FAST, 0, 0, 0, echo),
    CommandSpec::new("quit", -1, ALLOW_BUSY | NO_AUTH | FAST | LOADING | STALE, 0, 0, 0, quit),
    CommandSpec::new("select", 2, LOADING | STALE | FAST, 0, 0, 0, select),
];

/// Placeholder "last command" of a client that has run none (CLIENT LIST shows `cmd=NULL`).
pub static NULL_COMMAND: &CommandSpec = &CommandSpec::new("NULL", 0, 0, 0, 0, 0, quit);

/// ```text
/// PING [message]
/// ```
fn ping(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 2 {
        return Err(CmdError::WrongArity("ping".into()));
    }
    match argv.get(1) {
        Some(m) => ctx.out.bulk(m),
        None => ctx.out.simple("PONG"),
    }
    Ok(())
}

/// ```text
/// ECHO message
/// ```
fn echo(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    ctx.out.bulk(argv[1]);
    Ok(())
}

/// Replies OK and closes the connection once the reply is written.
///
/// ```text
/// QUIT
/// ```
fn quit(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// ```text
/// SELECT index
/// ```
fn select(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let idx = args::int(argv[1]).map_err(|_| CmdError::err("value is not an integer or out of range"))?;
    if idx < 0 || idx as usize >= ctx.ks.dbs.len() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    ctx.client.db = idx as usize;
    ctx.db = idx as usize;
    ctx.out.ok();
    Ok(())
}
