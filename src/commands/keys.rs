//! Generic key commands: DEL, EXISTS, EXPIRE*, TTL, TYPE, RENAME, SCAN, KEYS, ... (Redis `db.c`,
//! `expire.c`).

use super::flags::*;
use super::{CmdResult, CommandSpec, Ctx};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, 1, -1, 1, del),
];

/// Deletes keys and returns how many existed.
///
/// ```text
/// DEL key [key ...]
/// ```
fn del(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let db = ctx.db;
    let mut n = 0;
    for key in &argv[1..] {
        if ctx.ks.lookup_write(db, key, ctx.now).is_some() {
            ctx.ks.db(db).remove(key);
            ctx.signal_modified_key(db, key);
            ctx.notify('g', "del", db, key);
            ctx.dirty(1);
            n += 1;
        }
    }
    ctx.out.integer(n);
    Ok(())
}
