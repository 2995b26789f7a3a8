//! FUNCTION: Lua function libraries (Redis `functions.c`).
//!
//! Only FLUSH exists so far. Libraries cannot be loaded until scripting lands, so the library
//! set is always empty and FLUSH deletes nothing. It still behaves as Redis's does (argument
//! checking, propagation), which is what harnesses rely on when they reset a server between
//! test groups. The other subcommands answer Redis's unknown-subcommand error until then.

use super::args::is;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};

pub(crate) const COMMANDS: &[CommandSpec] = &[CommandSpec::container(
    "function",
    -2,
    0,
    &[CommandSpec::sub("function", "flush", -2, NOSCRIPT | WRITE, 0, 0, 0, flush)],
)];

/// Deletes every loaded library.
///
/// ```text
/// FUNCTION FLUSH [ASYNC | SYNC]
/// ```
fn flush(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    match argv.len() {
        2 => {}
        3 if is(argv[2], "async") || is(argv[2], "sync") => {}
        3 => return Err(CmdError::err("FUNCTION FLUSH only supports SYNC|ASYNC option")),
        _ => {
            return Err(CmdError::err(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                String::from_utf8_lossy(argv[1])
            )))
        }
    }
    // The library set is always empty (see module docs); the flush still counts as a write so
    // that it reaches replicas and the log like Redis's does.
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}
