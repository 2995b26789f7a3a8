//! MODULE: ferrodis cannot load Redis modules (they are shared objects written against
//! redis-server's C API), so none is ever loaded. The commands still answer as Redis does with
//! no module: LIST is empty, LOAD and LOADEX fail with Redis's message (the log says why),
//! UNLOAD finds no such module. Tools that probe for modules with MODULE LIST then see the truth
//! instead of an unknown command.

use super::args;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};

const CHANGE: u32 = ADMIN | NOSCRIPT | NO_ASYNC_LOADING | PROTECTED;

pub(crate) const COMMANDS: &[CommandSpec] = &[CommandSpec::container(
    "module",
    -2,
    0,
    &[
        CommandSpec::sub("module", "help", 2, LOADING | STALE, 0, 0, 0, help),
        CommandSpec::sub("module", "list", 2, ADMIN | NOSCRIPT, 0, 0, 0, list),
        CommandSpec::sub("module", "load", -3, CHANGE, 0, 0, 0, load),
        CommandSpec::sub("module", "loadex", -3, CHANGE, 0, 0, 0, load),
        CommandSpec::sub("module", "unload", 3, CHANGE, 0, 0, 0, unload),
    ],
)];

/// No module is ever loaded.
///
/// ```text
/// MODULE LIST
/// ```
fn list(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.array(0);
    Ok(())
}

/// Always fails: ferrodis has no C module API. The reason goes to the log, as Redis logs why
/// a module failed to load.
///
/// ```text
/// MODULE LOAD path [arg ...]
/// MODULE LOADEX path [CONFIG name value ...] [ARGS arg ...]
/// ```
fn load(_ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    tracing::warn!(
        "Module {} failed to load: ferrodis cannot load Redis modules (they are built against \
         redis-server's C module API)",
        args::text(argv[2])
    );
    Err(CmdError::err("Error loading the extension. Please check the server logs."))
}

/// ```text
/// MODULE UNLOAD name
/// ```
fn unload(_ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    Err(CmdError::err("Error unloading module: no such module with that name"))
}

/// ```text
/// MODULE HELP
/// ```
fn help(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    super::command::reply_help(
        ctx.out,
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and \
optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    );
    Ok(())
}
