//! Server commands: INFO, CONFIG, COMMAND, DEBUG, FLUSHDB, FLUSHALL, DBSIZE, TIME, SHUTDOWN.

use super::flags::*;
use super::{CmdResult, CommandSpec, Ctx};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("dbsize", 1, READONLY | FAST, 0, 0, 0, dbsize),
];

/// ```text
/// DBSIZE
/// ```
fn dbsize(ctx: &mut Ctx<'_>, _argv: &[&[u8]]) -> CmdResult {
    let n = ctx.ks.dbs[ctx.db].len();
    ctx.out.integer(n as i64);
    Ok(())
}
